#!/bin/bash
# bench_daemon.sh — scalexd figures (printed, never pass/fail):
#  1. GET /v1/jobs/{id} while a training job runs, 64 concurrent connections: requests/s and
#     p50/p99 latency (wrk when installed, else a curl-based load of N x 64 parallel requests).
#  2. Upload throughput (MB/s) of a large h5ad-sized body and the daemon's RSS before/after
#     (streamed to disk: RSS should stay flat).
# Usage: bench/bench_daemon.sh [BUILD_DIR] [UPLOAD_MB]   (defaults: build-srv, 1024)
set -euo pipefail
BUILD=${1:-build-srv}
MB=${2:-1024}
BIN=$BUILD/scalexd
SHARED=${SX_SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
W=$(mktemp -d)
trap 'kill -9 $PID 2>/dev/null || true; rm -rf "$W"' EXIT
TOK=$("$BIN" token create --data-dir "$W/d" --user bench)
"$BIN" --listen 127.0.0.1:0 --data-dir "$W/d" --max-upload-bytes $(((MB + 64) << 20)) --user-max-jobs 100 2>"$W/log" &
PID=$!
for _ in $(seq 100); do [ -s "$W/d/scalexd.port" ] && break; sleep 0.05; done
URL=http://127.0.0.1:$(cat "$W/d/scalexd.port")
H="Authorization: Bearer $TOK"
rss() { awk '/VmRSS/ {print $2 / 1024}' /proc/$PID/status; }

DS=$(curl -s -H "$H" -H 'Content-Type: application/octet-stream' \
     --data-binary @"$SHARED/data/pancreas_baron_human_mouse_cider/reference_human.h5ad" "$URL/v1/datasets" |
     python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
JOB=$(curl -s -H "$H" -d "{\"type\":\"integrate\",\"datasets\":[\"$DS\"],\"options\":{\"batch_name\":\"Sample\",\"max_iteration\":1000000,\"min_features\":10}}" \
      "$URL/v1/jobs" | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
sleep 2
echo "== GET /v1/jobs/$JOB with a training job running, 64 connections"
if command -v wrk >/dev/null; then
    printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$TOK" >"$W/auth.lua"
    wrk -t4 -c64 -d10s --latency -s "$W/auth.lua" "$URL/v1/jobs/$JOB" | grep -E 'Requests/sec|50%|99%'
else
    N=${N:-3000}
    seq "$N" | xargs -P 64 -I{} curl -s -o /dev/null -w '%{time_total}\n' -H "$H" "$URL/v1/jobs/$JOB" >"$W/lat" &
    T0=$(date +%s.%N); wait $!; T1=$(date +%s.%N)
    sort -n "$W/lat" | awk -v n="$N" -v t="$(echo "$T1 - $T0" | bc)" '
        {a[NR] = $1} END {printf "requests/s %.0f (curl clients, process start dominates)\np50 %.2f ms\np99 %.2f ms\n",
        n / t, a[int(NR * 0.5)] * 1000, a[int(NR * 0.99)] * 1000}'
fi
curl -s -H "$H" -X POST "$URL/v1/jobs/$JOB/cancel" >/dev/null

echo "== upload of ${MB} MiB"
head -c $((MB << 20)) /dev/urandom >"$W/big.bin"
R0=$(rss)
T0=$(date +%s.%N)
curl -s -o /dev/null -H "$H" -H 'Content-Type: application/octet-stream' --data-binary @"$W/big.bin" "$URL/v1/datasets"
T1=$(date +%s.%N)
R1=$(rss)
echo "$MB $T0 $T1 $R0 $R1" | awk '{printf "upload %.1f MB/s (%.1f s, streamed + sha256; rejected by the readers as not a dataset)\nRSS before %.1f MiB, after %.1f MiB\n", $1 * 1.048576 / ($3 - $2), $3 - $2, $4, $5}'
