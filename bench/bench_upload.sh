#!/bin/bash
# bench_upload.sh — upload + validation throughput of scalexd over loopback (issue 15:
# >= 400 MB/s with the daemon's RSS flat). Figures only, never a pass/fail test.
#   For each FILE (default: 512 MiB of random bytes, streamed + hashed and then refused by
#   the readers): POST /v1/datasets as a raw body and as multipart/form-data; prints MB/s end
#   to end (upload, sha256, validation, answer), the daemon's CPU seconds for it (user +
#   system: what the code costs, whatever else the machine runs) and MB per daemon CPU
#   second, and its RSS before / peak during / after. CPU includes the validation children
#   the daemon has waited for.
# Usage: bench/bench_upload.sh [BUILD_DIR] [FILE...]    (default build; e.g. an .h5ad)
# env: MB (512) size of the random file; NICE (10).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
shift || true
BIN=$BUILD/scalexd
W=$(mktemp -d "${TMPDIR:-/tmp}/bench_upload.XXXXXX")
PID=""
trap '[ -n "$PID" ] && { kill -9 $PID 2>/dev/null; wait $PID 2>/dev/null || true; }; rm -rf "$W"' EXIT
FILES=("$@")
if [ ${#FILES[@]} -eq 0 ]; then
    head -c $((${MB:-512} << 20)) /dev/urandom >"$W/noise.bin"
    FILES=("$W/noise.bin")
fi
BIG=0
for f in "${FILES[@]}"; do s=$(stat -c %s "$f"); [ "$s" -gt "$BIG" ] && BIG=$s; done
TOK=$("$BIN" token create --data-dir "$W/d" --user bench)
nice -n "${NICE:-10}" "$BIN" --listen 127.0.0.1:0 --data-dir "$W/d" \
    --max-upload-bytes $((BIG + (256 << 20))) --log-level warn 2>"$W/log" &
PID=$!
for _ in $(seq 600); do [ -s "$W/d/scalexd.port" ] && break; sleep 0.1; done
URL=http://127.0.0.1:$(cat "$W/d/scalexd.port")
H="Authorization: Bearer $TOK"
TCK=$(getconf CLK_TCK)
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' /proc/$PID/status; }
cpu() { awk '{print $14 + $15 + $16 + $17}' /proc/$PID/stat; } # + waited-for children (validation)
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
upload() {
    local label=$1 file=$2; shift 2
    local size; size=$(stat -c %s "$file")
    cat "$file" >/dev/null # page cache: the client's reads are not measured
    local r0 c0; r0=$(rss); c0=$(cpu)
    ( peak=0; while kill -0 $PID 2>/dev/null; do
        v=$(awk '/VmRSS/ {print $2}' /proc/$PID/status); [ "$v" -gt "$peak" ] && peak=$v
        echo "$peak" >"$W/peak"; sleep 0.05; done ) &
    local mon=$!
    curl -s -o "$W/resp" -w '%{http_code} %{time_total}\n' -H "$H" "$@" "$URL/v1/datasets" >"$W/t"
    kill $mon 2>/dev/null; wait $mon 2>/dev/null || true
    local r1 c1; r1=$(rss); c1=$(cpu)
    read -r code total <"$W/t"
    awk -v l="$label" -v s="$size" -v c="$code" -v t="$total" -v r0="$r0" -v r1="$r1" \
        -v pk="$(cat "$W/peak")" -v dc="$(( c1 - c0 ))" -v tck="$TCK" 'BEGIN {
        cs = dc / tck;
        printf "%s: %.0f MB, HTTP %s in %.2f s = %.0f MB/s end to end; daemon CPU %.2f s = %s MB per CPU second\n",
               l, s / 1e6, c, t, s / 1e6 / t, cs, (cs > 0 ? sprintf("%.0f", s / 1e6 / cs) : "inf");
        printf "  daemon RSS before %.1f MiB, peak %.1f MiB, after %.1f MiB\n", r0, pk / 1024, r1 }'
}
for f in "${FILES[@]}"; do
    upload "$(basename "$f"), raw body" "$f" -H 'Content-Type: application/octet-stream' -X POST -T "$f"
    upload "$(basename "$f"), multipart" "$f" -F "file=@$f"
done
