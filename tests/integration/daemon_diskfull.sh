#!/usr/bin/env bash
# A full disk is survived (issue 14; the scenario of ../shared/security/diskfull_loop.sh): with
# the data dir on a small tmpfs filled to the last byte, a job is never re-run in a loop, its
# state stays visible, cancel answers (or says 503 with Retry-After), uploads get 507 and
# /readyz says not ready; once space returns, work resumes by itself and a new job completes.
# Needs a tmpfs mount (root, as CI runs): elsewhere it says why and skips.
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

# fill the file system to the last byte (the registry's WAL and pages included)
dd if=/dev/zero of="$M/ballast" bs=64k 2>/dev/null || true
avail=$(df -k --output=avail "$M" | tail -1 | tr -d ' ')
[ "$avail" -le 64 ] || fail "the tmpfs still has ${avail} KiB free"

code=$(upload "$TOK" '/v1/datasets?name=q2' "$Q")
expect_problem 507 insufficient-storage "$code" "upload on a full disk"
grep -qi '^retry-after: [0-9]' "$WORK/hdr" || fail "507 without Retry-After"

code=$(req "$TOK" POST /v1/jobs -H 'Content-Type: application/json' \
    -d "{\"type\":\"integrate\",\"datasets\":[\"$DS\"],\"options\":{\"batch_name\":\"batch\",\"min_features\":10,\"max_iteration\":20}}")
case "$code" in
202)
    J=$(jq_ 'd["id"]')
    # the runner cannot record a claim: /readyz says so once it has tried (generous deadline)...
    for _ in $(seq 1 600); do # 60 s
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" = 503 ] && break
        sleep 0.1
    done
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" = 503 ] || fail "/readyz is ready while no claim can be written"
    # ...and the job must not run (and run, and run): a loop restarts it every poll (1 s)
    sleep 5 # an observation window for a loop, not a wait for a state: load only lowers the count
    runs=$(grep -c "job $J (integrate) starts" "$WORK/daemon.log" || true)
    [ "$runs" -le 1 ] || fail "job $J started $runs times on a full disk (a re-claim loop)"
    expect 200 "$(req "$TOK" GET "/v1/jobs/$J")" "the job's state stays visible"
    echo "job on a full disk: $(jq_ 'd["state"]'), started $runs time(s)"
    code=$(req "$TOK" POST "/v1/jobs/$J/cancel")
    case "$code" in
        20[02]) echo "cancel on a full disk: $code" ;;
        503|507) grep -qi '^retry-after: [0-9]' "$WORK/hdr" || fail "cancel $code without Retry-After" ;;
        *) fail "cancel on a full disk: HTTP $code: $(head -c 300 "$WORK/body")" ;;
    esac
    ;;
503|507)
    grep -qi '^retry-after: [0-9]' "$WORK/hdr" || fail "submit $code without Retry-After"
    echo "submit on a full disk: $code (refused before it was queued)"
    ;;
*) fail "submit on a full disk: HTTP $code: $(head -c 300 "$WORK/body")" ;;
esac
healthy

# space returns: readiness and work resume by themselves
rm -f "$M/ballast"
for _ in $(seq 1 600); do # 60 s
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" = 200 ] && break
    sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" = 200 ] || fail "/readyz not ready 60 s after space returned"
expect 202 "$(req "$TOK" POST /v1/jobs -H 'Content-Type: application/json' \
    -d "{\"type\":\"integrate\",\"datasets\":[\"$DS\"],\"options\":{\"batch_name\":\"batch\",\"min_features\":10,\"max_iteration\":20}}")" "submit after space returned"
J2=$(jq_ 'd["id"]')
wait_job "$TOK" "$J2" 300 COMPLETE
expect 201 "$(upload "$TOK" '/v1/datasets?name=q3' "$Q")" "upload after space returned"
stop_daemon
echo "daemon_diskfull: ok"
