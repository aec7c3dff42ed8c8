#!/bin/bash
# bench_isolation.sh — what running each job in a child process costs (issue 14). Printed
# figures, never pass/fail.
#
# A reference is trained once from data/demo (scalex integrate) and registered; a 1,000-cell
# query (the demo mouse query's cells repeated, with new names) is uploaded once; then the same
# map job (project + label transfer) runs N times under isolation=thread (in the daemon, the old
# way) and N times under isolation=process (`scalex run-job` in a child under limits, the
# reference mapped from its flat map), on two daemons at once, their jobs alternating. For each:
# the median and mean job time from the API's own timings, and the daemon's RSS. The rounds'
# difference is the per-job overhead of process isolation: handing the job to the worker's pre-started runner (`scalex run-job
# --wait-stdin`, whose fork, exec and library start-up happened before the job; a job that finds
# none ready starts one itself) + mapping the reference (cells and model) + reading the job spec
# + a fresh process's first use of its memory + its exit. For the cost a pre-start hides, it
# also times the runner's start-up alone (`scalex run-job --help`). The process-mode daemon and
# its runners run with SX_RUNJOB_TIMING=FILE (cli/cmd_run_job.c, daemon/sandbox.c): the last
# table is where a process-mode job's time goes, step by step.
# Usage: bench/bench_isolation.sh [BUILD_DIR] [N]   (defaults: build, 10)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
N=${2:-10}
BIN=$BUILD/scalexd
PY=${SX_PYTHON:-/usr/bin/python3}
W=$(mktemp -d "${TMPDIR:-/tmp}/bench_isolation.XXXXXX")
trap 'rm -rf "$W"' EXIT
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

# Both daemons run at once, each on its own copy of the data dir, and their jobs alternate
# (thread, process, thread, ...): a shared machine's load then weighs on both alike, and the
# per-round difference is the overhead.
PIDS=()
trap '[ ${#PIDS[@]} -gt 0 ] && { kill -9 "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null || true; }; rm -rf "$W"' EXIT
start_mode() { # start_mode ISOLATION: prints the URL
    local d=$W/d_$1
    cp -a "$W/d" "$d"
    # the process-mode daemon and its runners time each job's phases (SX_RUNJOB_TIMING)
    [ "$1" = process ] && export SX_RUNJOB_TIMING=$W/timing.log
    "$BIN" --listen 127.0.0.1:0 --data-dir "$d" --isolation "$1" --workers 1 \
        --log-level warn 2>>"$W/daemon.log" &
    PIDS+=($!)
    unset SX_RUNJOB_TIMING
    echo $! >"$W/pid_$1"
    for _ in $(seq 1200); do [ -s "$d/scalexd.port" ] && break; sleep 0.05; done
}
url() { echo "http://127.0.0.1:$(cat "$W/d_$1/scalexd.port")"; }
run_job() { # run_job ISOLATION DATASET: prints the job's run_seconds
    local u body id
    u=$(url "$1")
    body=$(curl -sS -H "$H" -H 'Content-Type: application/json' -d \
        "{\"type\":\"project\",\"datasets\":[\"$2\"],\"reference\":\"demo\",\"options\":{\"label\":\"Group\"}}" \
        "$u/v1/jobs")
    id=$(echo "$body" | json 'd["id"]')
    for _ in $(seq 6000); do
        body=$(curl -sS -H "$H" "$u/v1/jobs/$id")
        case $(echo "$body" | json 'd["state"]') in COMPLETE) break ;; EXECUTOR_ERROR|SYSTEM_ERROR|CANCELED) echo "job failed: $body" >&2; exit 1 ;; esac
        sleep 0.05
    done
    echo "$body" | json 'd["timings"]["run_seconds"]'
}
start_mode thread
start_mode process
declare -A DS
for m in thread process; do
    DS[$m]=$(curl -sS -H "$H" -H 'Content-Type: application/octet-stream' \
        --data-binary @"$W/q1000.h5ad" "$(url $m)/v1/datasets?name=q1000" | json 'd["id"]')
done
for i in $(seq 0 "$N"); do # round 0 warms the page cache and is not counted
    for m in thread process; do
        secs=$(run_job "$m" "${DS[$m]}")
        [ "$i" -gt 0 ] && echo "$m $secs" >>"$W/times"
    done
done
for m in thread process; do
    echo "$m $(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$(cat "$W/pid_$m")/status")" >>"$W/rss"
done
"$PY" - "$BUILD/scalex" <<'PY'
import subprocess, sys, time, statistics as s
t = []
for _ in range(20):
    t0 = time.perf_counter()
    subprocess.run([sys.argv[1], "run-job", "--help"], stdout=subprocess.DEVNULL, check=True)
    t.append(time.perf_counter() - t0)
print(f"runner start-up alone (exec, loading, OpenBLAS/HDF5 start; what a pre-start hides): median {s.median(t)*1000:.0f} ms of 20")
PY
"$PY" - "$W/times" "$W/rss" "$N" <<'PY'
import sys, statistics as s
t = {"thread": [], "process": []}
for l in open(sys.argv[1]):
    m, v = l.split()
    t[m].append(float(v))
rss = dict(l.split() for l in open(sys.argv[2]))
print(f"1,000-cell map job (project + transfer onto the demo reference), {sys.argv[3]} rounds, the two modes alternating:")
print(f"{'isolation':<10} {'median s':>9} {'mean s':>8} {'min s':>7} {'max s':>7} {'daemon RSS MB':>14}")
for k in ("thread", "process"):
    v = t[k]
    print(f"{k:<10} {s.median(v):9.3f} {s.mean(v):8.3f} {min(v):7.3f} {max(v):7.3f} {float(rss[k]):14.1f}")
d = [p - q for p, q in zip(t["process"], t["thread"])]
print(f"per-job overhead of process isolation: median of the rounds' differences {s.median(d)*1000:.0f} ms, "
      f"difference of the medians {(s.median(t['process']) - s.median(t['thread']))*1000:.0f} ms")
PY
# Where a process-mode job's time goes: the daemon's steps and its runner's phases, lined up
# by CLOCK_MONOTONIC (median over the counted rounds of the time from each step to the next).
[ -s "$W/timing.log" ] && "$PY" - "$W/timing.log" "$N" <<'PY'
import re, sys, statistics as s, collections
lines = [l.split(None, 3) for l in open(sys.argv[1])]
jobs, cur = [], None
for who, ident, t, what in sorted(lines, key=lambda x: float(x[2])):
    what = what.strip()
    if who == "daemon" and what == "run": cur = [("daemon: run", float(t))]; jobs.append(cur)
    elif cur is not None and what != "ready":
        what = re.sub(r"\d+(\.\d+)?", "#", what)[:70] # "Done in 0.6 s": one step in every job
        cur.append((("daemon: " if who == "daemon" else "runner: ") + what, float(t)))
jobs = jobs[-int(sys.argv[2]):]
steps = collections.OrderedDict()
for j in jobs:
    for (a, ta), (b, tb) in zip(j, j[1:]):
        steps.setdefault(b, []).append(tb - ta)
print(f"process-mode job, step by step (median ms since the previous step, {len(jobs)} jobs):")
for k, v in steps.items():
    if len(v) == len(jobs): print(f"  {s.median(v)*1000:8.1f}  {k}")
print(f"  {s.median([j[-1][1] - j[0][1] for j in jobs])*1000:8.1f}  total (daemon's run to outcome)")
PY