#!/usr/bin/env bash
# Untrusted uploads never take the daemon down (issue 14): every crash/hang reproducer in
# ../shared/security/fuzz and every resource bomb is uploaded to a real scalexd; each must get
# a 4xx problem within 60 s while the daemon keeps its pid, its RSS stays under 400 MB and a
# valid upload still returns 201 right after. The reproducers crash or hang libhdf5 1.10 itself:
# what holds them is the validation child process (daemon/sandbox.c), not a fix in a reader.
source "$(dirname "$0")/daemon_common.bash"
SEC=${SX_SHARED}/security
[ -d "$SEC/fuzz" ] || { echo "SKIP: no $SEC/fuzz"; exit 0; }
D=$WORK/data
mkdir -p "$D"
TOK=$("$BIN" token create --data-dir "$D" --user mallory)
# a small reference for the /map half (trained briefly: only its existence matters here)
"$SCALEX_BIN" integrate --data_list "$SX_SOURCE_DIR/data/demo/reference_human.h5ad" \
    --batch_name Sample --min_features 10 --max_iteration 30 --seed 1 -o "$WORK/ref" \
    >"$WORK/train.log" 2>&1 || fail "training the reference: $(tail -3 "$WORK/train.log")"
"$BIN" reference add "$WORK/ref" --name demo --data-dir "$D" >/dev/null
# two validation threads: the two hang files would wedge both in an unconfined daemon
start_daemon "$D" --workers 1
PID0=$DPID
rss_mb() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$DPID/status"; }
# the daemon's pre-started job runners: its children started as `scalex run-job --wait-stdin`
# (the argv stays while one runs its job)
spares() {
    local p
    for p in $(pgrep -P "$DPID" || true); do
        tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q 'run-job --wait-stdin' && echo "$p"
    done
    return 0
}
wait_spare() { # wait_spare [OLD_PID]: a runner other than OLD_PID, within 60 s
    local s
    for _ in $(seq 1 600); do
        s=$(spares | grep -vx "${1:-0}" | head -1 || true)
        [ -n "$s" ] && { echo "$s"; return 0; }
        sleep 0.1
    done
    fail "no pre-started job runner within 60 s"
}
gone() { ! kill -0 "$1" 2>/dev/null; } # neither running nor a zombie (kill -0 answers for one)
SPARE1=$(wait_spare)
n=0
HOSTILE=()
for f in "$SEC"/fuzz/*.h5ad "$SEC"/mtx_dims_5000000.mtx "$SEC"/mtx_dims_max.mtx \
         "$SEC"/bomb_commas_50M.csv.gz "$SEC"/h5_manyrows_2e7.h5ad; do
    [ -f "$f" ] || continue
    HOSTILE+=("$f")
    name=$(basename "$f")
    t0=$(date +%s)
    code=$(upload "$TOK" "/v1/datasets?name=bad" "$f" --max-time 120) || code=timeout
    dt=$(( $(date +%s) - t0 ))
    case "$code" in 4??) ;; *) fail "$name: HTTP $code, expected a 4xx: $(head -c 300 "$WORK/body")" ;; esac
    [ "$dt" -le 60 ] || fail "$name: answered after ${dt}s (limit 60 s)"
    grep -q '/tmp\|/work\|data-dir\|scalexd-it' "$WORK/body" && fail "$name: the error shows a server path: $(cat "$WORK/body")"
    kill -0 "$PID0" 2>/dev/null || fail "$name: the daemon died"
    [ "$DPID" = "$PID0" ] || fail "$name: the daemon changed pid"
    r=$(rss_mb)
    [ "$r" -lt 400 ] || fail "$name: daemon RSS ${r} MB (limit 400)"
    echo "ok $name -> $code in ${dt}s: $(jq_ 'd.get("detail","")[:160]') (RSS ${r} MB)"
    code=$(upload "$TOK" "/v1/datasets?name=good" "$SEC/small.csv")
    expect 201 "$code" "valid upload right after $name"
    n=$((n + 1))
done
[ "$n" -ge 9 ] || fail "only $n reproducers found under $SEC"
healthy

# ---- the same through /map (upload + project + transfer in one call) ----
for f in "${HOSTILE[@]}"; do
    name=$(basename "$f")
    t0=$(date +%s)
    code=$(upload "$TOK" "/v1/references/demo/map?wait=60&label=Group" "$f" --max-time 120) || code=timeout
    dt=$(( $(date +%s) - t0 ))
    case "$code" in 4??) ;; *) fail "map $name: HTTP $code, expected a 4xx: $(head -c 300 "$WORK/body")" ;; esac
    [ "$dt" -le 60 ] || fail "map $name: answered after ${dt}s (limit 60 s)"
    kill -0 "$PID0" 2>/dev/null || fail "map $name: the daemon died"
    r=$(rss_mb)
    [ "$r" -lt 400 ] || fail "map $name: daemon RSS ${r} MB (limit 400)"
done
echo "ok: ${#HOSTILE[@]} hostile maps refused"
SPARE1=$(wait_spare)
expect 200 "$(upload "$TOK" '/v1/references/demo/map?wait=300&label=Group' "$SX_SOURCE_DIR/data/demo/query_mouse.h5ad")" "a valid map right after"
# the job ran on the pre-started runner: that one ended with its one job and was reaped, and
# the next one was started after it
SPARE2=$(wait_spare "$SPARE1")
for _ in $(seq 1 600); do gone "$SPARE1" && break; sleep 0.1; done
gone "$SPARE1" || fail "the runner $SPARE1 is still there (or a zombie) after its job: $(ps -o pid,stat,args -p "$SPARE1")"
echo "ok: the map ran on pre-started runner $SPARE1, reaped after it; $SPARE2 waits for the next job"

# ---- a job whose input crashes the reader: the stored file is replaced after validation
# (what a reader bug that validation does not reach, or a corrupted disk, would do) ----
expect 201 "$(upload "$TOK" '/v1/datasets?name=victim' "$SX_SOURCE_DIR/data/demo/query_mouse.h5ad")" "upload"
DS=$(jq_ 'd["id"]')
stored=$(ls "$D"/datasets/"$DS"*)
cp "$SEC/fuzz/crash-3338a0f887.h5ad" "$stored"
expect 202 "$(req "$TOK" POST /v1/jobs -H 'Content-Type: application/json' \
    -d "{\"type\":\"project\",\"datasets\":[\"$DS\"],\"reference\":\"demo\"}")" "submit the job"
J=$(jq_ 'd["id"]')
wait_job "$TOK" "$J" 300 EXECUTOR_ERROR COMPLETE SYSTEM_ERROR
req "$TOK" GET "/v1/jobs/$J" >/dev/null
[ "$(jq_ 'd["state"]')" = EXECUTOR_ERROR ] || fail "the crashing job ended $(jq_ 'd["state"]'), expected EXECUTOR_ERROR: $(cat "$WORK/body")"
jq_ 'd["error"]["detail"]' | grep -qi 'could not be read safely\|corrupt' ||
    fail "the job's error does not say the input could not be read: $(cat "$WORK/body")"
grep -q "$D\|/tmp/" "$WORK/body" && fail "the job's error shows a server path: $(cat "$WORK/body")"
kill -0 "$PID0" 2>/dev/null || fail "the daemon died with the job"
# what the user reads of a job shows no server path: the log, and the h5ad's provenance
expect 200 "$(upload "$TOK" '/v1/references/demo/map?wait=300&label=Group' "$SX_SOURCE_DIR/data/demo/query_mouse.h5ad")" "map for the log check"
MJ=$(jq_ 'd["job"]["id"]')
expect 200 "$(req "$TOK" GET "/v1/jobs/$MJ/log")" "the job's log"
grep -q "$D" "$WORK/body" && fail "the job log shows the data dir: $(grep -m1 "$D" "$WORK/body")"
grep -q 'datasets/' "$WORK/body" || fail "the job log does not name its input at all: $(head -c 300 "$WORK/body")"
expect 200 "$(req "$TOK" GET "/v1/jobs/$MJ/results/adata.h5ad")" "the result h5ad"
"$PY" - "$WORK/body" "$D" <<'PY' || fail "the result h5ad's provenance shows a server path"
import sys, anndata as ad
a = ad.read_h5ad(sys.argv[1])
prov = repr(a.uns)
assert sys.argv[2] not in prov, prov[:400]
PY
echo "ok: the crashing job ended EXECUTOR_ERROR: $(jq_ 'str(d.get("error"))[:200]')"
healthy
# a 153-cell dataset stored while the budget allowed it, for the job below
expect 201 "$(upload "$TOK" '/v1/datasets?name=q153' "$SX_SOURCE_DIR/data/demo/query_mouse.h5ad")" "upload"
DS153=$(jq_ 'd["id"]')
# a drained daemon leaves no runner behind: every child killed and reaped (no zombie)
KIDS=$(pgrep -P "$DPID" || true)
[ -n "$(spares)" ] || fail "no pre-started runner before the stop"
stop_daemon
for k in $KIDS; do gone "$k" || fail "child $k outlived the daemon: $(ps -o pid,stat,args -p "$k")"; done
echo "ok: the stop took its $(echo $KIDS | wc -w) child process(es) with it"
# the budget is the operator's: a daemon with --max-cells 100 refuses the 153-cell query, by name
start_daemon "$D" --workers 1 --max-cells 100
code=$(upload "$TOK" "/v1/datasets?name=over" "$SX_SOURCE_DIR/data/demo/query_mouse.h5ad")
expect_problem 413 too-large "$code" "an upload over --max-cells"
grep -q 'max_cells = 100' "$WORK/body" || fail "the 413 does not name the configured limit: $(cat "$WORK/body")"
# ...and its jobs read their inputs under the same budget (job.json carries it to the runner)
expect 202 "$(req "$TOK" POST /v1/jobs -H 'Content-Type: application/json' \
    -d "{\"type\":\"project\",\"datasets\":[\"$DS153\"],\"reference\":\"demo\"}")" "submit over --max-cells"
J=$(jq_ 'd["id"]')
wait_job "$TOK" "$J" 300 EXECUTOR_ERROR COMPLETE SYSTEM_ERROR
req "$TOK" GET "/v1/jobs/$J" >/dev/null
[ "$(jq_ 'd["state"]')" = EXECUTOR_ERROR ] || fail "a job over --max-cells ended $(jq_ 'd["state"]'): $(cat "$WORK/body")"
jq_ 'd["error"]["detail"]' | grep -q 'max_cells = 100' ||
    fail "the job's error does not name the configured limit: $(cat "$WORK/body")"
grep -q "$D\|/tmp/" "$WORK/body" && fail "the job's error shows a server path: $(cat "$WORK/body")"
echo "ok: a job over the budget: $(jq_ 'd["error"]["detail"][:160]')"
KIDS=$(pgrep -P "$DPID" || true)
stop_daemon
for k in $KIDS; do gone "$k" || fail "child $k outlived the daemon: $(ps -o pid,stat,args -p "$k")"; done
echo "PASS: $n hostile uploads and maps refused; daemon pid $PID0 stayed up through them"
