#!/bin/bash
# bench_daemon.sh — scalexd figures (printed, never pass/fail):
#  1. GET /v1/jobs/{id} while a training job runs, 64 concurrent connections (wrk, Debian
#     package; scripts/install-deps.sh --bench installs it): requests/s, p50/p99 latency
#     (target p99 < 10 ms). Without wrk a curl-based load is used and says so.
#     The same without a job. Each run also prints the daemon's CPU time per request (what
#     the load of a shared machine does not change) and the load average at the time.
#  2. Upload throughput (MB/s) of a ~1 GB h5ad (a real one, generated with python3-h5py under
#     the temp dir and deleted after: a CSR matrix of random counts) as a raw body and as
#     multipart/form-data, with the daemon's RSS before, its peak during the request, and
#     after. The peak includes the validation that follows the upload, which streams the
#     matrix in bounded slabs (daemon/engine.c -> sx_inspect_stream): it should stay flat.
#  3. The same with 1 GB of random bytes (streamed, hashed, then refused): the pure
#     streaming path.
# Usage: bench/bench_daemon.sh [BUILD_DIR] [UPLOAD_MB]   (defaults: build-srv, 1024)
# JOB_NICE=N passes --job-nice N (default: the daemon's, 10) to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-srv}
MB=${2:-1024}
BIN=$BUILD/scalexd
PY=${SX_PYTHON:-/usr/bin/python3}
W=$(mktemp -d "${TMPDIR:-/tmp}/bench_daemon.XXXXXX")
PID=""
trap '[ -n "$PID" ] && { kill -9 $PID 2>/dev/null; wait $PID 2>/dev/null || true; }; rm -rf "$W"' EXIT
TOK=$("$BIN" token create --data-dir "$W/d" --user bench)
"$BIN" --listen 127.0.0.1:0 --data-dir "$W/d" --max-upload-bytes $(((MB + 256) << 20)) \
    --user-max-jobs 100 --workers 1 --threads-per-job 1 --log-level warn \
    ${JOB_NICE:+--job-nice "$JOB_NICE"} 2>"$W/log" &
PID=$!
for _ in $(seq 200); do [ -s "$W/d/scalexd.port" ] && break; sleep 0.05; done
URL=http://127.0.0.1:$(cat "$W/d/scalexd.port")
H="Authorization: Bearer $TOK"
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' /proc/$PID/status; }
cpu() { awk '{print $14 + $15}' /proc/$PID/stat; } # utime + stime, clock ticks
json() { "$PY" -c "import json,sys; print(json.load(sys.stdin)$1)"; }
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (shared machine: figures are indicative)"

# ---- 1. status polling under load while a job trains ----
DS=$(curl -s -H "$H" -H 'Content-Type: application/octet-stream' \
     --data-binary @data/demo/reference_human.h5ad "$URL/v1/datasets" | json '["id"]')
JOB=$(curl -s -H "$H" -d "{\"type\":\"integrate\",\"datasets\":[\"$DS\"],\"options\":{\"batch_name\":\"Sample\",\"max_iteration\":1000000,\"min_features\":10}}" \
      "$URL/v1/jobs" | json '["id"]')
for _ in $(seq 100); do
    [ "$(curl -s -H "$H" "$URL/v1/jobs/$JOB" | json '["stage"]')" = train ] && break
    sleep 0.2
done
echo "== GET /v1/jobs/$JOB, 64 connections, 10 s, job $(curl -s -H "$H" "$URL/v1/jobs/$JOB" | json '["state"]')"
echo "  daemon threads by nice value (count nice): $(awk '{print $19}' /proc/$PID/task/*/stat | sort -n | uniq -c | xargs)"
# run_wrk SECONDS: wrk figures, then the daemon's CPU time per request (load-independent)
run_wrk() {
    local c0 c1 n
    c0=$(cpu)
    wrk -t2 -c64 -d"$1"s --latency -s "$W/auth.lua" "$URL/v1/jobs/$JOB" >"$W/wrk.txt"
    c1=$(cpu)
    echo "  load average during the run: $(cut -d' ' -f1 /proc/loadavg)"
    grep -E 'Requests/sec|Non-2xx|Socket errors' "$W/wrk.txt" || true
    awk '/Latency Distribution/ {on = 1; next} on && /%/ {print "  p" $1 " " $2} /requests in/ {on = 0}' "$W/wrk.txt"
    n=$(awk '/requests in/ {print $1}' "$W/wrk.txt")
    awk -v c0="$c0" -v c1="$c1" -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN {
        printf "  daemon CPU %.2f s for %d requests = %.0f us/request\n", (c1 - c0) / hz, n, (c1 - c0) / hz / n * 1e6 }'
}
if command -v wrk >/dev/null; then
    printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$TOK" >"$W/auth.lua"
    run_wrk 10
    echo "  (the CPU figure includes the training thread: compare with the run without it below)"
else
    echo "(wrk not installed: scripts/install-deps.sh --bench; curl clients instead, process start dominates)"
    N=${N:-3000}
    T0=$(date +%s.%N)
    seq "$N" | xargs -P 64 -I{} curl -s -o /dev/null -w '%{time_total}\n' -H "$H" "$URL/v1/jobs/$JOB" >"$W/lat"
    T1=$(date +%s.%N)
    sort -n "$W/lat" | awk -v n="$N" -v t="$(echo "$T1 - $T0" | bc)" '{a[NR] = $1} END {
        printf "requests/s %.0f\np50 %.2f ms\np99 %.2f ms\n", n / t, a[int(NR * 0.5)] * 1000, a[int(NR * 0.99)] * 1000}'
fi
echo "job still $(curl -s -H "$H" "$URL/v1/jobs/$JOB" | json '["state"]') at $(curl -s -H "$H" "$URL/v1/jobs/$JOB" | json '["progress"]') progress"
curl -s -H "$H" -X POST "$URL/v1/jobs/$JOB/cancel" >/dev/null
for _ in $(seq 100); do
    [ "$(curl -s -H "$H" "$URL/v1/jobs/$JOB" | json '["state"]')" = CANCELED ] && break
    sleep 0.2
done
if command -v wrk >/dev/null; then
    echo "== the same, no job running (5 s)"
    run_wrk 5
fi

# ---- 2./3. uploads ----
# upload LABEL FILE CURL-ARGS...: MB/s, RSS before / peak while streaming / after
upload() {
    local label=$1 file=$2; shift 2
    local size; size=$(stat -c %s "$file")
    local r0; r0=$(rss)
    ( peak=0; while kill -0 $PID 2>/dev/null; do
        v=$(awk '/VmRSS/ {print $2}' /proc/$PID/status); [ "$v" -gt "$peak" ] && peak=$v
        echo "$peak" >"$W/peak"; sleep 0.05; done ) &
    local mon=$!
    curl -s -o "$W/resp" -w '%{http_code} %{time_total}\n' \
        -H "$H" "$@" "$URL/v1/datasets" >"$W/t"
    kill $mon 2>/dev/null; wait $mon 2>/dev/null || true
    local r1; r1=$(rss)
    read -r code total <"$W/t"
    awk -v l="$label" -v s="$size" -v c="$code" -v t="$total" \
        -v r0="$r0" -v r1="$r1" -v pk="$(cat "$W/peak")" 'BEGIN {
        printf "%s: %.0f MB, HTTP %s in %.1f s = %.0f MB/s end to end\n", l, s / 1e6, c, t, s / 1e6 / t;
        printf "  daemon RSS before %.1f MiB, peak during the request %.1f MiB, after %.1f MiB\n", r0, pk / 1024, r1 }'
}
echo "== uploads (${MB} MiB)"
head -c $((MB << 20)) /dev/urandom >"$W/noise.bin"
upload "random bytes, raw body (streamed + sha256, refused by the readers)" "$W/noise.bin" \
    -H 'Content-Type: application/octet-stream' -X POST -T "$W/noise.bin"
upload "random bytes, multipart/form-data" "$W/noise.bin" -F "file=@$W/noise.bin"
rm -f "$W/noise.bin"
"$PY" - "$W/big.h5ad" "$MB" <<'PY'
# a valid h5ad of about MB MiB: CSR float32 counts + int32 indices (8 bytes per non-zero)
import sys, h5py, numpy as np
path, mb = sys.argv[1], int(sys.argv[2])
n_vars, per_cell = 20000, 2000
n_obs = max(1, (mb << 20) // (8 * per_cell))
rng = np.random.default_rng(1)
with h5py.File(path, "w") as f:
    f.attrs["encoding-type"] = "anndata"; f.attrs["encoding-version"] = "0.1.0"
    X = f.create_group("X")
    X.attrs["encoding-type"] = "csr_matrix"; X.attrs["encoding-version"] = "0.1.0"
    X.attrs["shape"] = np.array([n_obs, n_vars], dtype=np.int64)
    X.create_dataset("indptr", data=np.arange(n_obs + 1, dtype=np.int64) * per_cell)
    d = X.create_dataset("data", (n_obs * per_cell,), dtype=np.float32)
    ix = X.create_dataset("indices", (n_obs * per_cell,), dtype=np.int32)
    step = 4096
    for s in range(0, n_obs, step):
        e = min(n_obs, s + step)
        d[s * per_cell:e * per_cell] = rng.integers(1, 20, (e - s) * per_cell).astype(np.float32)
        # one column in each block of n_vars / per_cell genes: sorted and distinct
        blk = n_vars // per_cell
        cols = np.arange(per_cell) * blk + rng.integers(0, blk, (e - s, per_cell))
        ix[s * per_cell:e * per_cell] = cols.astype(np.int32).ravel()
    for name, n, pre in (("obs", n_obs, "cell"), ("var", n_vars, "gene")):
        g = f.create_group(name)
        g.attrs["encoding-type"] = "dataframe"; g.attrs["encoding-version"] = "0.2.0"
        g.attrs["_index"] = "_index"; g.attrs["column-order"] = np.array([], dtype="S")
        g.create_dataset("_index", data=np.array(["%s%d" % (pre, i) for i in range(n)], dtype="S"))
    for k in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
        f.create_group(k)
print("generated h5ad: %d cells x %d genes, %d non-zeros" % (n_obs, n_vars, n_obs * per_cell))
PY
upload "h5ad, raw body (then validated by streaming X in slabs)" "$W/big.h5ad" \
    -H 'Content-Type: application/octet-stream' -X POST -T "$W/big.h5ad"
head -c 300 "$W/resp" | grep -o '"n_obs":[0-9]*' || echo "  reply: $(head -c 300 "$W/resp")"
upload "h5ad, multipart/form-data" "$W/big.h5ad" -F "file=@$W/big.h5ad"
head -c 300 "$W/resp" | grep -o '"n_obs":[0-9]*' || echo "  reply: $(head -c 300 "$W/resp")"
