#!/usr/bin/env bash
# A full disk is survived (issue 14; the scenario of ../shared/security/diskfull_loop.sh): with
# the data dir on a small tmpfs filled to the last byte, no job is run again and again, every
# job's state stays visible, cancel answers (or says 503 with Retry-After), uploads get 507 and
# /readyz says not ready; once space returns, work resumes by itself.
# Two paths meet the full disk: the submit (refused, or queued when its insert still fits), and
# the claim of a job queued while there was room (its claim cannot be written: it must wait,
# not run). Needs a tmpfs mount (root, as CI runs): elsewhere it says why and skips.
# Every wait is for a state, with a generous deadline.
source "$(dirname "$0")/daemon_common.bash"
M=$WORK/small
mkdir -p "$M"
if ! mount -t tmpfs -o size=48m tmpfs "$M" 2>"$WORK/mount.err"; then
    echo "SKIP: cannot mount a tmpfs for a small data dir ($(head -c 200 "$WORK/mount.err")); run as root"
    exit 0
fi
trap 'if [ -n "$DPID" ]; then kill -9 "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; fi; umount "$M" 2>/dev/null || umount -l "$M"; rm -rf "$WORK"' EXIT
D=$M/d
TOK=$("$BIN" token create --data-dir "$D" --user alice)
start_daemon "$D" --workers 1 --threads-per-job 1
Q=$SX_SOURCE_DIR/data/demo/query_mouse.h5ad
expect 201 "$(upload "$TOK" '/v1/datasets?name=q' "$Q")" "upload while there is room"
DS=$(jq_ 'd["id"]')
SHORT="{\"type\":\"integrate\",\"datasets\":[\"$DS\"],\"options\":{\"batch_name\":\"batch\",\"min_features\":10,\"max_iteration\":20}}"
# a job that trains until it is canceled (no early stop within any test's time)
LONG="{\"type\":\"integrate\",\"datasets\":[\"$DS\"],\"options\":{\"batch_name\":\"batch\",\"min_features\":10,\"max_iteration\":100000000,\"patience\":100000000}}"
field() { # field JOB EXPR: a field of the job as the API shows it
    req "$TOK" GET "/v1/jobs/$1" >/dev/null
    jq_ "$2"
}
readyz_is() { # readyz_is CODE: wait (60 s) until /readyz answers CODE
    for _ in $(seq 1 600); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" = "$1" ] && return 0
        sleep 0.1
    done
    fail "/readyz is not $1 after 60 s"
}

# with room: job A runs (it holds the only worker) and job B waits in the queue behind it
expect 202 "$(req "$TOK" POST /v1/jobs -H 'Content-Type: application/json' -d "$LONG")" "submit A"
JA=$(jq_ 'd["id"]')
wait_job "$TOK" "$JA" 300 RUNNING
expect 202 "$(req "$TOK" POST /v1/jobs -H 'Content-Type: application/json' -d "$SHORT")" "submit B"
JB=$(jq_ 'd["id"]')
[ "$(field "$JB" 'd["state"]')" = QUEUED ] || fail "B is $(jq_ 'd["state"]') behind a running A, expected QUEUED"

# fill the file system to the last byte (the registry's WAL and pages included)
dd if=/dev/zero of="$M/ballast" bs=64k 2>/dev/null || true
avail=$(df -k --output=avail "$M" | tail -1 | tr -d ' ')
[ "$avail" -le 64 ] || fail "the tmpfs still has ${avail} KiB free"

code=$(upload "$TOK" '/v1/datasets?name=q2' "$Q")
expect_problem 507 insufficient-storage "$code" "upload on a full disk"
grep -qi '^retry-after: [0-9]' "$WORK/hdr" || fail "507 without Retry-After"

# the submit path: refused with Retry-After, or queued when its insert still fits
code=$(req "$TOK" POST /v1/jobs -H 'Content-Type: application/json' -d "$SHORT")
JC=""
case "$code" in
202) JC=$(jq_ 'd["id"]'); echo "submit on a full disk: 202 (the insert fit)" ;;
503|507)
    grep -qi '^retry-after: [0-9]' "$WORK/hdr" || fail "submit $code without Retry-After"
    echo "submit on a full disk: $code (refused before it was queued)"
    ;;
*) fail "submit on a full disk: HTTP $code: $(head -c 300 "$WORK/body")" ;;
esac

# the claim path: cancel A; the worker is free, but B's claim cannot be written
code=$(req "$TOK" POST "/v1/jobs/$JA/cancel")
case "$code" in
    20[02]) echo "cancel of the running A on a full disk: $code" ;;
    503|507) grep -qi '^retry-after: [0-9]' "$WORK/hdr" || fail "cancel $code without Retry-After" ;;
    *) fail "cancel on a full disk: HTTP $code: $(head -c 300 "$WORK/body")" ;;
esac
readyz_is 503 # the dispatcher tried to claim B and stopped: no claim is written
for J in $JA $JB $JC; do
    expect 200 "$(req "$TOK" GET "/v1/jobs/$J")" "job $J's state stays visible on a full disk"
done
echo "on a full disk: A $(field "$JA" 'd["state"], d["attempts"]'), B $(field "$JB" 'd["state"], d["attempts"]')"
[ "$(field "$JB" 'd["state"]')" = QUEUED ] || fail "B left the queue on a full disk: $(cat "$WORK/body")"
[ "$(field "$JB" 'd["attempts"]')" = 0 ] || fail "B was claimed on a full disk: $(cat "$WORK/body")"
[ "$(field "$JA" 'd["attempts"]')" = 1 ] || fail "A was started again on a full disk: $(cat "$WORK/body")"
healthy

# space returns: readiness and work resume by themselves; A stays canceled, B runs once
rm -f "$M/ballast"
readyz_is 200
wait_job "$TOK" "$JA" 300 CANCELED
wait_job "$TOK" "$JB" 300 COMPLETE
[ "$(field "$JB" 'd["attempts"]')" = 1 ] || fail "B ran more than once: $(cat "$WORK/body")"
[ "$(field "$JA" 'd["attempts"]')" = 1 ] || fail "A ran again after the disk was freed: $(cat "$WORK/body")"
for J in $JA $JB; do
    runs=$(grep -c "job $J (integrate) starts" "$WORK/daemon.log" || true)
    [ "$runs" = 1 ] || fail "job $J started $runs times"
done
if [ -n "$JC" ]; then
    wait_job "$TOK" "$JC" 300 COMPLETE
    [ "$(field "$JC" 'd["attempts"]')" = 1 ] || fail "C (queued on a full disk) ran more than once"
fi
expect 202 "$(req "$TOK" POST /v1/jobs -H 'Content-Type: application/json' -d "$SHORT")" "submit after space returned"
J2=$(jq_ 'd["id"]')
wait_job "$TOK" "$J2" 300 COMPLETE
expect 201 "$(upload "$TOK" '/v1/datasets?name=q3' "$Q")" "upload after space returned"
stop_daemon
echo "daemon_diskfull: ok"
