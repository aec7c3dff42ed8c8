#!/bin/bash
# bench_isolation.sh — what running each job in a child process costs (issue 14). Printed
# figures, never pass/fail.
#
# A reference is trained once from data/demo (scalex integrate) and registered; a 1,000-cell
# query (the demo mouse query's cells repeated, with new names) is uploaded once; then the same
# map job (project + label transfer) runs N times under isolation=thread (in the daemon, the old
# way) and N times under isolation=process (`scalex run-job` in a child under limits, the
# reference mapped from its flat map). For each: the median and mean job time from the API's
# own timings, and the daemon's RSS. The difference of the medians is the per-job overhead of
# process isolation: fork + exec + mapping the reference + reading the job spec.
# Usage: bench/bench_isolation.sh [BUILD_DIR] [N]   (defaults: build, 10)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
N=${2:-10}
BIN=$BUILD/scalexd
PY=${SX_PYTHON:-/usr/bin/python3}
W=$(mktemp -d "${TMPDIR:-/tmp}/bench_isolation.XXXXXX")
PID=""
trap '[ -n "$PID" ] && { kill -9 $PID 2>/dev/null; wait $PID 2>/dev/null || true; }; rm -rf "$W"' EXIT
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (figures are indicative on a shared machine)"

"$BUILD/scalex" integrate --data_list data/demo/reference_human.h5ad --batch_name Sample \
    --min_features 10 --max_iteration 300 --seed 1 -o "$W/ref" >"$W/train.log" 2>&1
"$PY" - "$W/q1000.h5ad" <<'PY'
import sys, anndata as ad
q = ad.read_h5ad("data/demo/query_mouse.h5ad")
reps = -(-1000 // q.n_obs)
parts = []
for r in range(reps):
    p = q.copy(); p.obs_names = [f"{n}-r{r}" for n in q.obs_names]; parts.append(p)
out = ad.concat(parts)[:1000].copy()
out.write_h5ad(sys.argv[1])
print(f"query: {out.n_obs} cells x {out.n_vars} genes")
PY

TOK=$("$BIN" token create --data-dir "$W/d" --user bench)
"$BIN" reference add "$W/ref" --name demo --data-dir "$W/d" >/dev/null
H="Authorization: Bearer $TOK"
json() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

run_mode() { # run_mode ISOLATION
    rm -f "$W/d/scalexd.port"
    "$BIN" --listen 127.0.0.1:0 --data-dir "$W/d" --isolation "$1" --workers 1 \
        --log-level warn 2>>"$W/daemon.log" &
    PID=$!
    for _ in $(seq 600); do [ -s "$W/d/scalexd.port" ] && break; sleep 0.05; done
    URL=http://127.0.0.1:$(cat "$W/d/scalexd.port")
    local ds times=()
    ds=$(curl -sS -H "$H" -H 'Content-Type: application/octet-stream' \
        --data-binary @"$W/q1000.h5ad" "$URL/v1/datasets?name=q1000" | json 'd["id"]')
    for i in $(seq 0 "$N"); do # run 0 warms the page cache and is not counted
        local body secs
        body=$(curl -sS -H "$H" -H 'Content-Type: application/json' -d \
            "{\"type\":\"project\",\"datasets\":[\"$ds\"],\"reference\":\"demo\",\"options\":{\"label\":\"Group\"}}" \
            "$URL/v1/jobs")
        local id; id=$(echo "$body" | json 'd["id"]')
        for _ in $(seq 3000); do
            body=$(curl -sS -H "$H" "$URL/v1/jobs/$id")
            case $(echo "$body" | json 'd["state"]') in COMPLETE) break ;; EXECUTOR_ERROR|SYSTEM_ERROR|CANCELED) echo "job failed: $body" >&2; exit 1 ;; esac
            sleep 0.05
        done
        secs=$(echo "$body" | json 'd["timings"]["run_seconds"]')
        [ "$i" -gt 0 ] && times+=("$secs")
    done
    local rss; rss=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' /proc/$PID/status)
    kill -TERM $PID; wait $PID 2>/dev/null || true; PID=""
    printf '%s\n' "${times[@]}" | "$PY" -c "
import sys, statistics as s
t = [float(x) for x in sys.stdin.read().split()]
print(f'$1 {s.median(t):.4f} {s.mean(t):.4f} {min(t):.4f} {max(t):.4f} $rss')"
}
{ run_mode thread; run_mode process; } >"$W/res"
"$PY" - "$W/res" "$N" <<'PY'
import sys
rows = {l.split()[0]: [float(x) for x in l.split()[1:]] for l in open(sys.argv[1])}
print(f"1,000-cell map job (project + transfer onto the demo reference), {sys.argv[2]} runs each:")
print(f"{'isolation':<10} {'median s':>9} {'mean s':>8} {'min s':>7} {'max s':>7} {'daemon RSS MB':>14}")
for k in ("thread", "process"):
    m, a, lo, hi, rss = rows[k]
    print(f"{k:<10} {m:9.3f} {a:8.3f} {lo:7.3f} {hi:7.3f} {rss:14.1f}")
d = rows["process"][0] - rows["thread"][0]
print(f"per-job overhead of process isolation (median): {d*1000:.0f} ms ({rows['process'][0]/rows['thread'][0]:.2f}x)")
PY
