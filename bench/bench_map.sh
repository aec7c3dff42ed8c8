#!/bin/bash
# bench_map.sh — atlas-scale mapping through a real scalexd (issue 15), figures only: never a
# timed pass/fail test, never run by ctest.
#
#  1. Generates (bench/bench_map_gen.py, python3 + numpy/h5py: a measuring instrument, not
#     the product) a reference and a query from one "world" of ~20,000 genes with
#     cell-type gene programs: negative-binomial counts, ~1,500 expressed genes per cell,
#     4 reference batches and 2 new query batches, 8 cell types, as 10x-style h5ad files
#     (CSR float32 counts, obs batch + cell_type, gene symbols). Cached in CACHE.
#  2. Trains the reference once (`scalex integrate`, bounded --max_iteration, GNU time for
#     its wall, CPU and peak RSS; cached in CACHE) or takes --ref-dir, registers it with
#     `scalexd reference add`, starts scalexd, and maps a 500-cell query first (the first
#     map loads the reference: its time is printed as the reference load).
#  3. Measures the machine's limits now: page-cache read of the query file, one-thread
#     memcpy, OpenBLAS sgemm at the encoder's shape, curl upload over loopback to a null sink.
#  4. Uploads and maps the query with one `POST /v1/references/bench/map?wait=&label=cell_type`
#     while the daemon and its children are sampled every 20 ms (CPU, RSS, spool size), then
#     prints per stage (upload, validate, queue, read, preprocess, encode, kNN, transfer,
#     UMAP transform, write, answer) wall time, CPU time, peak RSS, the time the stage's work
#     takes at the measured limit and the ratio to it, the job time against the issue's
#     first measurement (27.5 s), and the accuracy of the transferred labels against the
#     query's true cell types. Stage times are the job's result.json "timings"; the upload
#     ends when the spool file is complete, validation when the daemon logs "dataset stored".
#
# Usage: bench/bench_map.sh [--quick] [--query N] [--ref N] [--genes N] [--nnz N]
#          [--max-iteration N] [--threads N] [--build DIR] [--cache DIR] [--ref-dir DIR]
#          [--out FILE.json] [--no-warm] [--keep]
#   N takes k/M suffixes: --query 10k|100k|1M, --ref 100k|1M (defaults 10k onto 100k).
#   --quick: 2k reference, 1k query, 200 training steps (checks the script in a minute).
#   --max-iteration: training steps of the reference (default 2000: 100k cells in minutes;
#     SCALEX's 30000 is for quality, not for timing the mapping).
#   --cache: generated files and trained references, reused by later runs (default
#     BUILD/bench/cache; a 1M reference is trained once). --ref-dir: a trained `scalex
#     integrate -o` folder to register instead (its genes must be the generated world's).
#   SCALEXD_ARGS: extra daemon flags, e.g. "--isolation thread" to compare with in-process jobs.
#   --out: the table as JSON (default BUILD/bench/out/bench_map-Q-on-R-DATE.json).
# env: SX_PYTHON (/usr/bin/python3), NICE (10: the bench runs niced on a shared machine),
#      WAIT (3600: seconds the map request waits for its job; a longer job fails the bench).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${SX_PYTHON:-/usr/bin/python3}
GEN=$ROOT/bench/bench_map_gen.py
BUILD=$ROOT/build QCELLS=10k RCELLS=100k GENES=20000 NNZ=1500 ITER=2000 THREADS=2
CACHE="" REFDIR="" OUTJSON="" WARM=1 KEEP=0 WAIT=${WAIT:-3600}
num() { # 10k -> 10000, 1M -> 1000000
    case $1 in *k|*K) echo $((${1%?} * 1000)) ;; *m|*M) echo $((${1%?} * 1000000)) ;; *) echo "$1" ;; esac
}
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QCELLS=1000 RCELLS=2000 ITER=200 ;;
    --query) QCELLS=$2; shift ;;
    --ref) RCELLS=$2; shift ;;
    --genes) GENES=$2; shift ;;
    --nnz) NNZ=$2; shift ;;
    --max-iteration) ITER=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --build) BUILD=$(cd "$2" && pwd); shift ;;
    --cache) CACHE=$2; shift ;;
    --ref-dir) REFDIR=$(cd "$2" && pwd); shift ;;
    --out) OUTJSON=$2; shift ;;
    --no-warm) WARM=0 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_map.sh: unknown argument '$1' (--help lists them)" >&2; exit 2 ;;
    esac
    shift
done
QN=$(num "$QCELLS") RN=$(num "$RCELLS")
CACHE=${CACHE:-$BUILD/bench/cache}
# a --ref-dir reference is named after its folder (its size is the catalog's, known later)
RTAG=$RN
[ -n "$REFDIR" ] && RTAG=$(basename "$REFDIR")
OUTJSON=${OUTJSON:-$BUILD/bench/out/bench_map-$QN-on-$RTAG-$(date -u +%Y%m%dT%H%M%S).json}
for b in scalex scalexd; do
    [ -x "$BUILD/$b" ] || { echo "bench_map.sh: no $BUILD/$b: build first (cmake --build $BUILD)" >&2; exit 3; }
done
N="nice -n ${NICE:-10}"
mkdir -p "$CACHE"
W=$(mktemp -d "${TMPDIR:-/tmp}/bench_map.XXXXXX")
PID="" SPID=""
cleanup() {
    [ -n "$SPID" ] && { touch "$W/stop"; wait "$SPID" 2>/dev/null || true; }
    [ -n "$PID" ] && { kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; }
    if [ "$KEEP" = 1 ]; then echo "kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 2^20}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg) (figures from a shared machine are indicative)"

# ---- 1. data (cached): one world (seed 1) for the reference and its queries ----
gen() { # gen FILE CELLS SEED PREFIX BATCHES
    [ -s "$1" ] && return 0
    local check=()
    [ "$2" -le 5000 ] && check=(--check) # anndata reads small files back
    echo "generating $(basename "$1") ($2 cells x $GENES genes, ~$NNZ per cell)"
    $N "$PY" "$GEN" gen "${1%.h5ad}.part.h5ad" --cells "$2" --genes "$GENES" --nnz "$NNZ" --world-seed 1 \
        --seed "$3" --batch-prefix "$4" --batches "$5" --progress "${check[@]}"
    mv "${1%.h5ad}.part.h5ad" "$1"
}
REF=$CACHE/ref-$RN-g$GENES-n$NNZ.h5ad
QRY=$CACHE/query-$QN-g$GENES-n$NNZ.h5ad
WRM=$CACHE/warm-500-g$GENES-n$NNZ.h5ad
[ -n "$REFDIR" ] || gen "$REF" "$RN" 2 ref 4
gen "$QRY" "$QN" 3 query 2
[ "$WARM" = 1 ] && gen "$WRM" 500 4 warm 1

# ---- 2. reference: trained once per size, iterations and threads ----
TRAIN_TIME=""
if [ -z "$REFDIR" ]; then
    REFDIR=$CACHE/model-$RN-g$GENES-n$NNZ-it$ITER-t$THREADS
    if [ ! -s "$REFDIR/result.json" ]; then
        echo "training the reference: scalex integrate, $RN cells, --max_iteration $ITER, $THREADS threads"
        rm -rf "$REFDIR"
        $N /usr/bin/time -v -o "$CACHE/time-$(basename "$REFDIR").txt" \
            "$BUILD/scalex" integrate --data_list "$REF" --batch_name batch --label cell_type \
            --max_iteration "$ITER" --threads "$THREADS" -o "$REFDIR" >"$W/train.log" 2>&1 ||
            { tail -20 "$W/train.log" >&2; exit 1; }
    fi
    TRAIN_TIME=$CACHE/time-$(basename "$REFDIR").txt
fi

# ---- 3. daemon with the reference registered ----
D=$W/d
TOK=$("$BUILD/scalexd" token create --data-dir "$D" --user bench)
"$BUILD/scalexd" reference add "$REFDIR" --name bench --data-dir "$D" >/dev/null
QBYTES=$(stat -c %s "$QRY")
$N "$BUILD/scalexd" --listen 127.0.0.1:0 --data-dir "$D" --workers 1 --threads-per-job "$THREADS" \
    --max-upload-bytes $((QBYTES + (256 << 20))) --memory-budget 16G --max-wait "$WAIT" --log-level info \
    --drain-grace 1 ${SCALEXD_ARGS:-} 2>"$W/daemon.log" &
PID=$!
for _ in $(seq 600); do
    [ -s "$D/scalexd.port" ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$W/daemon.log" >&2; exit 1; }
    sleep 0.05
done
URL=http://127.0.0.1:$(cat "$D/scalexd.port")
H="Authorization: Bearer $TOK"
map() { # map FILE RESPONSE: prints the HTTP status
    curl -sS -o "$2" -w '%{http_code}' -H "$H" -H 'Content-Type: application/octet-stream' \
        -H 'Expect:' -X POST -T "$1" "$URL/v1/references/bench/map?wait=$WAIT&label=cell_type"
}
json() { "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
curl -sS -H "$H" "$URL/v1/references" >"$W/catalog.json"
REF_GENES=$(json "$W/catalog.json" 'd["references"][0].get("genes", 2000)')
REF_CELLS=$(json "$W/catalog.json" 'd["references"][0].get("cells", d["references"][0].get("n_cells", 0))')
[ "$REF_CELLS" != 0 ] || REF_CELLS=$RN
if [ "$WARM" = 1 ]; then
    T0=$(date +%s.%N)
    code=$(map "$WRM" "$W/warm.json")
    T1=$(date +%s.%N)
    [ "$code" = 200 ] || { echo "warm-up map: HTTP $code: $(head -c 600 "$W/warm.json")" >&2; exit 1; }
    echo "first map (500 cells; loads the reference into memory): $(awk -v a="$T0" -v b="$T1" 'BEGIN {printf "%.2f", b - a}') s end to end, job $(json "$W/warm.json" '"%.2f" % d["job"]["timings"]["run_seconds"]') s"
fi

# ---- 4. the machine's limits, measured now ----
echo "measuring limits (page-cache read, memcpy, sgemm at ${REF_GENES}x1024, loopback upload)"
OPENBLAS_NUM_THREADS=$THREADS $N "$PY" "$GEN" limits --file "$QRY" --threads "$THREADS" \
    --inputs "$REF_GENES" >"$W/limits.json"

# ---- 5. the measured map ----
curl -sS "$URL/metrics" >"$W/metrics0.txt" || true
mkdir -p "$D/spool"
$N "$PY" "$GEN" sample --pid "$PID" --spool "$D/spool" --out "$W/samples.json" --stop "$W/stop" &
SPID=$!
for _ in $(seq 600); do [ -e "$W/stop.ready" ] && break; sleep 0.05; done
LOAD=$(cut -d' ' -f1 /proc/loadavg)
T_REQ=$(date +%s.%N)
code=$(map "$QRY" "$W/map.json")
T_RESP=$(date +%s.%N)
touch "$W/stop"
wait "$SPID"
SPID=""
[ "$code" = 200 ] || { echo "map: HTTP $code: $(head -c 600 "$W/map.json")" >&2; tail -5 "$W/daemon.log" >&2; exit 1; }
curl -sS "$URL/metrics" >"$W/metrics1.txt" || true
JOB=$(json "$W/map.json" 'd["job"]["id"]')
JD=$D/jobs/$JOB
OUT_BYTES=$(du -sb "$JD" | cut -f1)
cat >"$W/run.json" <<EOF
{"query_cells": $QN, "ref_cells": $REF_CELLS, "genes": $GENES, "threads": $THREADS,
 "query_bytes": $QBYTES, "ref_genes": $REF_GENES, "latent_dim": 10, "hidden": 1024,
 "t_request": $T_REQ, "t_response": $T_RESP, "load_average": "$LOAD",
 "output_bytes": $OUT_BYTES, "query_path": "$QRY", "max_iteration": $ITER,
 "reference_dir": "$REFDIR"}
EOF
$N "$PY" "$GEN" report --run "$W/run.json" --map "$W/map.json" --samples "$W/samples.json" \
    --limits "$W/limits.json" --job-dir "$JD" --daemon-log "$W/daemon.log" \
    --metrics "$W/metrics0.txt" "$W/metrics1.txt" ${TRAIN_TIME:+--time-file "$TRAIN_TIME"} \
    --json "$OUTJSON"
