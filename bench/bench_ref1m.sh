#!/bin/bash
# bench_ref1m.sh — a 1M-cell reference in scalexd (issue 15: "References at atlas size"), figures
# only: never a timed pass/fail test, never run by ctest. bench/README.md says why the
# reference is composed rather than trained and why its figures still measure the issue's.
#
#  1. Generates (cached) 1,000,000 reference cells of bench_map.sh's world: two files of
#     500,000 cells made in parallel (`bench_map_gen.py gen --like 100000 --part P`: the
#     batches, batch effects and type proportions of the 100k reference the model was trained
#     on, other cells).
#  2. Encodes them with the trained 100k model: `scalex project --leiden` of each part
#     (streamed, one thread each, GNU time): latent, UMAP layout placed by the product's UMAP
#     transform on the model's layout, the model's Leiden clusters carried. Not --repeat:
#     that recomputes a UMAP of the part alone (sx_pipeline_project.c), a layout of its own.
#  3. Composes the reference folder (`bench_map_gen.py compose`): reference.h5 = the model's
#     file with a "reference" group of the 1M cells, plus result.json for the catalog.
#  4. Registration (`scalexd reference add`), the daemon's first load (its log's "reference
#     loaded": builds the search index and the label calibrations and writes reference.map),
#     the catalog's loaded/memory_bytes (GET /v1/references) against the daemon's RSS, a 10k
#     map (its latent is kept for step 5), then a restart: the later load (maps reference.map)
#     and the catalog and RSS again.
#  5. bench_ref1m_knn: the resident index's recall@30 and 5-NN label agreement against exact
#     search on 2,000 sampled query cells of that 10k map.
#  6. bench_map.sh --ref-dir onto the composed reference: the per-stage tables of a 100k and a
#     10k query (skip with --no-maps).
#
# Usage: bench/bench_ref1m.sh [--build DIR] [--cache DIR] [--model DIR] [--threads N]
#          [--no-maps] [--keep]
#   --build: where scalex, scalexd and bench_ref1m_knn are (default BUILD=build).
#   --cache: bench_map.sh's cache holding the trained 100k model and the queries (default
#     BUILD/bench/cache); the 1M parts, their projections and the composed
#     reference are kept there too (~12 GB; the generation needs as much again while it runs).
#   --model: the trained reference folder whose model encodes the cells (default
#     CACHE/model-100000-g20000-n1500-it2000-t2, which bench_map.sh --ref 100k trains).
# env: SX_PYTHON (/usr/bin/python3), NICE (10), SCALEXD_ARGS (extra daemon flags).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${SX_PYTHON:-/usr/bin/python3}
GEN=$ROOT/bench/bench_map_gen.py
BUILD=$ROOT/build CACHE="" MODEL="" THREADS=2 MAPS=1 KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift ;;
    --cache) CACHE=$2; shift ;;
    --model) MODEL=$(cd "$2" && pwd); shift ;;
    --threads) THREADS=$2; shift ;;
    --no-maps) MAPS=0 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_ref1m.sh: unknown argument '$1' (--help lists them)" >&2; exit 2 ;;
    esac
    shift
done
CACHE=${CACHE:-$BUILD/bench/cache}
CACHE=$(cd "$CACHE" && pwd)
MODEL=${MODEL:-$CACHE/model-100000-g20000-n1500-it2000-t2}
for b in scalex scalexd bench_ref1m_knn; do
    [ -x "$BUILD/$b" ] || { echo "bench_ref1m.sh: no $BUILD/$b: build first" >&2; exit 3; }
done
[ -s "$MODEL/reference.h5" ] ||
    { echo "bench_ref1m.sh: no $MODEL/reference.h5: run bench/bench_map.sh --ref 100k first" >&2; exit 3; }
N="nice -n ${NICE:-10}"
T="/usr/bin/time -f %e_s_wall_%U_s_user_%S_s_sys_%M_KB_peak"
W=$(mktemp -d "${TMPDIR:-/tmp}/bench_ref1m.XXXXXX")
PID=""
stop_daemon() {
    [ -n "$PID" ] && { kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; }
    PID=""
}
cleanup() {
    stop_daemon
    if [ "$KEEP" = 1 ]; then echo "kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), free $(free -g | awk '/Mem:/ {print $7}') GiB available"

# ---- 1. 1M reference cells, two parts in parallel (cached) ----
pids=()
for p in 0 1; do
    f=$CACHE/ref1m-part$p-g20000-n1500.h5ad
    [ -s "$f" ] && continue
    echo "generating $(basename "$f") (500,000 cells like the 100k reference's, part $p)"
    ( $N $T -o "$W/gen$p.time" "$PY" "$GEN" gen "${f%.h5ad}.part.h5ad" --cells 500000 \
        --world-seed 1 --seed 2 --batch-prefix ref --batches 4 --like 100000 --part $p \
        >"$W/gen$p.log" 2>&1 && mv "${f%.h5ad}.part.h5ad" "$f" && echo "  part $p: $(cat "$W/gen$p.time")" ) &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

# ---- 2. encoded by the trained model (cached) ----
pids=()
for p in 0 1; do
    o=$CACHE/ref1m-part$p-proj
    [ -s "$o/result.json" ] && continue
    echo "projecting part $p onto $(basename "$MODEL") (1 thread, streamed)"
    ( rm -rf "$o" && $N $T -o "$CACHE/ref1m-part$p-proj.time" "$BUILD/scalex" project \
        --projection "$MODEL" --data_list "$CACHE/ref1m-part$p-g20000-n1500.h5ad" \
        --batch_name batch --leiden --threads 1 -o "$o" >"$W/proj$p.log" 2>&1 &&
        echo "  part $p: $(cat "$CACHE/ref1m-part$p-proj.time")" ) &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || { tail -5 "$W"/proj*.log >&2; exit 1; }; done
for p in 0 1; do
    echo "projection part $p: $(cat "$CACHE/ref1m-part$p-proj.time") | $("$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print(d.get('n_obs'), 'cells;', ' '.join('%s %.1f' % kv for kv in d.get('timings', {}).items()))" "$CACHE/ref1m-part$p-proj/result.json")"
done

# ---- 3. the composed reference folder ----
REF=$CACHE/ref1m-on-$(basename "$MODEL")
if [ ! -s "$REF/reference.h5" ]; then
    $N "$PY" "$GEN" compose "$REF" --model "$MODEL/reference.h5" \
        --cells "$CACHE/ref1m-part0-proj/adata.h5ad" "$CACHE/ref1m-part1-proj/adata.h5ad"
fi
echo "reference: $REF/reference.h5, $(du -m "$REF/reference.h5" | cut -f1) MB"

# ---- 4. registration, first load, catalog against RSS, restart ----
D=$W/d
TOK=$("$BUILD/scalexd" token create --data-dir "$D" --user bench)
t0=$(date +%s.%N)
"$BUILD/scalexd" reference add "$REF" --name bench --data-dir "$D" >/dev/null
t1=$(date +%s.%N)
echo "registration (scalexd reference add): $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s"
RDIR=$(dirname "$(find "$D" -name reference.h5 | head -1)")
start_daemon() { # start_daemon LOG
    $N "$BUILD/scalexd" --listen 127.0.0.1:0 --data-dir "$D" --workers 1 --threads-per-job "$THREADS" \
        --max-upload-bytes $((2 << 30)) --memory-budget 16G --max-wait 3600 --log-level info \
        --drain-grace 1 ${SCALEXD_ARGS:-} 2>"$1" &
    PID=$!
    local a b
    a=$(date +%s.%N)
    rm -f "$D/scalexd.port"
    for _ in $(seq 2400); do
        [ -s "$D/scalexd.port" ] && break
        kill -0 "$PID" 2>/dev/null || { cat "$1" >&2; exit 1; }
        sleep 0.05
    done
    b=$(date +%s.%N)
    URL=http://127.0.0.1:$(cat "$D/scalexd.port")
    echo "daemon start to listening: $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b - a}') s (references are preloaded before it listens)"
    echo "  daemon log: $(loaded_line "$1")"
}
H() { curl -sS -H "Authorization: Bearer $TOK" "$@"; }
map() { # map FILE RESPONSE: prints "HTTP-status seconds"
    local a b c
    a=$(date +%s.%N)
    c=$(H -o "$2" -w '%{http_code}' -H 'Content-Type: application/octet-stream' -H 'Expect:' \
        -X POST -T "$1" "$URL/v1/references/bench/map?wait=3600&label=cell_type")
    b=$(date +%s.%N)
    echo "$c $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b - a}')"
}
state() { # state WHEN: the catalog's loaded/memory_bytes and the daemon's memory now
    H "$URL/v1/references" >"$W/catalog.json"
    "$PY" - "$W/catalog.json" "$PID" "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))["references"][0]
st = {}
for line in open("/proc/%s/status" % sys.argv[2]):
    k, v = line.split(":", 1)
    st[k] = v.strip()
mb = d.get("memory_bytes")
print("%s: catalog loaded=%s memory_bytes=%s (%s MB); daemon VmRSS %s (anon %s, file %s), VmHWM %s"
      % (sys.argv[3], d.get("loaded"), mb, "%.1f" % (mb / 1e6) if mb else "-", st.get("VmRSS"),
         st.get("RssAnon"), st.get("RssFile"), st.get("VmHWM")))
EOF
}
loaded_line() { # the daemon log's "reference loaded" fields
    grep -h '"reference loaded"\|reference loaded' "$1" | tail -1 || echo "(no 'reference loaded' line)"
}
WRM=$CACHE/warm-500-g20000-n1500.h5ad
Q10=$CACHE/query-10000-g20000-n1500.h5ad
for f in "$WRM" "$Q10"; do
    [ -s "$f" ] || { echo "bench_ref1m.sh: no $f: run bench/bench_map.sh first (it generates the queries)" >&2; exit 3; }
done
start_daemon "$W/daemon1.log"
sleep 1
state "started"
read -r code secs < <(map "$WRM" "$W/warm1.json")
[ "$code" = 200 ] || { echo "first map: HTTP $code: $(head -c 600 "$W/warm1.json")" >&2; tail -5 "$W/daemon1.log" >&2; exit 1; }
echo "first map (500 cells): $secs s end to end"
echo "  daemon log: $(loaded_line "$W/daemon1.log")"
state "after the first load"
ls -l "$RDIR"/reference.map 2>/dev/null | awk '{printf "  reference.map: %.1f MB\n", $5 / 1e6}' || echo "  no reference.map written"
read -r code secs < <(map "$Q10" "$W/map10k.json")
[ "$code" = 200 ] || { echo "10k map: HTTP $code: $(head -c 600 "$W/map10k.json")" >&2; exit 1; }
JOB=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['job']['id'])" "$W/map10k.json")
echo "10k map: $secs s end to end, job $("$PY" -c "import json,sys; print('%.2f' % json.load(open(sys.argv[1]))['job']['timings']['run_seconds'])" "$W/map10k.json") s"
state "after the 10k map"
stop_daemon
start_daemon "$W/daemon2.log"
sleep 1
state "restarted"
read -r code secs < <(map "$WRM" "$W/warm2.json")
[ "$code" = 200 ] || { echo "map after restart: HTTP $code" >&2; exit 1; }
echo "map after the restart (500 cells): $secs s end to end"
echo "  daemon log: $(loaded_line "$W/daemon2.log")"
state "after the later load"

# ---- 5. the resident index against exact ----
QL=$(find "$D/jobs/$JOB" -name adata.h5ad | head -1)
echo "neighbour search on the 1M reference (2,000 cells of the 10k query):"
$N "$BUILD/bench_ref1m_knn" "$RDIR" "$QL" 2000 "$THREADS" cell_type | sed 's/^/  /'
stop_daemon

# ---- 6. per-stage tables ----
if [ "$MAPS" = 1 ]; then
    for q in 100k 10k; do
        echo
        echo "==== bench_map.sh --query $q onto the composed 1M reference ===="
        "$ROOT/bench/bench_map.sh" --build "$BUILD" --cache "$CACHE" --ref-dir "$REF" --query "$q" \
            --threads "$THREADS"
    done
fi
