#!/bin/bash
# bench_stream.sh — memory of a projection, whole-file against streamed (issue 15: "a 1M-cell
# query maps with peak RSS <= 1.5 GB"). Figures only: never a timed pass/fail test.
#
# Runs `scalex project` on a query h5ad (CSR X) onto a trained reference twice under GNU
# time: --chunk_cells 0 (the query read whole, then preprocessed) and --chunk_cells N (read
# and preprocessed N cells at a time, only the reference-gene matrix kept), and prints for
# each: peak RSS, wall time, CPU time (user + sys), the job's stage timings (result.json),
# and whether the two outputs' X and latent are identical; then the resident memory at each
# stage boundary of the run (SX_PROJECT_RSS=1: VmRSS then, VmHWM the peak so far), which
# says which stage holds the peak.
#
# Usage: bench/bench_stream.sh --ref DIR (--query FILE | --cells N) [--nnz N] [--genes N]
#          [--tile K] [--chunk N] [--threads N] [--build DIR] [--cache DIR] [--only whole|stream]
#   --ref: a trained `scalex integrate -o` folder (e.g. bench_map.sh's cache
#     model-100000-g20000-n1500-it2000-t2); its genes must be the generated world's.
#   --cells: generate the query with bench/bench_map_gen.py (world seed 1, as bench_map.sh;
#     2 batches; cached as CACHE/stream-query-N-gG-nNNZ.h5ad). N takes k/M suffixes.
#   --tile K: the query is K copies of --query FILE end to end (cells renamed NAME-tI; h5py
#     block copies: a 1M-cell query from the 100k one in minutes, where generating it takes
#     over an hour on 2 cores); cached as CACHE/stream-tileK-FILE.
#   --chunk: cells per slab of the streamed run (default 65536, the option's default).
#   --cache: generated and tiled queries (default BUILD/bench/cache, as bench_map.sh).
#   --only: run one of the two (the whole-file run of a 1M x 20,000 query needs ~30 GB).
# The runs are niced (NICE, default 10), with plots off (figures are not what is measured).
# Measured 2026-12-05 (2 shared cores, load 5-7; 100k-cell reference of 2,000 genes; query
# 20,000 genes, ~1,490 values a cell; --tile 10 for 1M; peak RSS / wall):
#   100k  whole 1298 MB / 240 s   streamed  343 MB / 208 s   (main before: 1626 MB)
#   1M    whole 12498 MB / 341 s  streamed 1914 MB / 159 s   (PROJECT_ARGS=--ignore_umap)
#   1M    streamed with the UMAP transform and Leiden carry: 2608 MB / 1400 s
# Later the same day (load 4-9), streamed, with the UMAP transform and Leiden carry, peak RSS
# (MiB) before / after X was written to adata.h5ad right after encoding and freed (issue 15):
#   100k  386 -> 220 (wall 25 -> 21 s)
#   1M    2937 (kNN + transfer 2255, UMAP transform 2937) -> 1351 (encode 1339: the kept
#         matrix, 1.05 GiB; UMAP transform 1351: its edges, ~0.85 GiB); outputs identical
# env: SX_PYTHON (/usr/bin/python3), PROJECT_ARGS (more scalex project options).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${SX_PYTHON:-/usr/bin/python3}
BUILD=$ROOT/build REF="" QUERY="" CELLS="" NNZ=1500 GENES=20000 CHUNK=65536 THREADS=2
CACHE="" ONLY="" TILE=1
num() { case $1 in *k|*K) echo $((${1%?} * 1000)) ;; *m|*M) echo $((${1%?} * 1000000)) ;; *) echo "$1" ;; esac; }
while [ $# -gt 0 ]; do
    case $1 in
    --ref) REF=$2; shift ;;
    --query) QUERY=$2; shift ;;
    --cells) CELLS=$(num "$2"); shift ;;
    --nnz) NNZ=$2; shift ;;
    --genes) GENES=$2; shift ;;
    --chunk) CHUNK=$2; shift ;;
    --tile) TILE=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --build) BUILD=$(cd "$2" && pwd); shift ;;
    --cache) CACHE=$2; shift ;;
    --only) ONLY=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_stream.sh: unknown argument '$1' (--help lists them)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$REF" ] && [ -s "$REF/result.json" ] || { echo "bench_stream.sh: --ref DIR (a trained reference) is required" >&2; exit 2; }
[ -x "$BUILD/scalex" ] || { echo "bench_stream.sh: no $BUILD/scalex: build first" >&2; exit 3; }
CACHE=${CACHE:-$BUILD/bench/cache} # bench_map.sh's cache: its generated files are reused
mkdir -p "$CACHE"
N="nice -n ${NICE:-10}"
if [ -z "$QUERY" ]; then
    [ -n "$CELLS" ] || { echo "bench_stream.sh: give --query FILE or --cells N" >&2; exit 2; }
    QUERY=$CACHE/stream-query-$CELLS-g$GENES-n$NNZ.h5ad
    if [ ! -s "$QUERY" ]; then
        echo "generating $(basename "$QUERY")"
        $N "$PY" "$ROOT/bench/bench_map_gen.py" gen "${QUERY%.h5ad}.part.h5ad" --cells "$CELLS" \
            --genes "$GENES" --nnz "$NNZ" --world-seed 1 --seed 5 --batch-prefix query --batches 2
        mv "${QUERY%.h5ad}.part.h5ad" "$QUERY"
    fi
fi
if [ "$TILE" -gt 1 ]; then
    T=$CACHE/stream-tile$TILE-$(basename "$QUERY")
    if [ ! -s "$T" ]; then
        echo "tiling $(basename "$QUERY") $TILE times into $(basename "$T")"
        $N "$PY" - "$QUERY" "$T.part" "$TILE" <<'PY'
import sys
import h5py, numpy as np
src, dst, K = sys.argv[1], sys.argv[2], int(sys.argv[3])
with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
    for k, v in f.attrs.items():
        g.attrs[k] = v
    for k in f:
        if k not in ("X", "obs"):
            f.copy(f[k], g, name=k)
    n, G = (int(x) for x in f["X"].attrs["shape"])
    ptr = f["X/indptr"][()].astype(np.int64)
    nnz = int(ptr[-1])
    X = g.create_group("X")
    for k, v in f["X"].attrs.items():
        X.attrs[k] = v
    X.attrs["shape"] = np.array([n * K, G], dtype=np.int64)
    X["indptr"] = np.concatenate([ptr[:1]] + [ptr[1:] + t * nnz for t in range(K)])
    blk = 32 << 20
    for name in ("data", "indices"):
        d = X.create_dataset(name, (nnz * K,), dtype=f["X/" + name].dtype)
        for s in range(0, nnz, blk):
            b = f["X/" + name][s:min(nnz, s + blk)]
            for t in range(K):
                d[t * nnz + s:t * nnz + s + len(b)] = b
    O = g.create_group("obs")
    for k, v in f["obs"].attrs.items():
        O.attrs[k] = v
    idx = f["obs/_index"].asstr()[()]
    O.create_dataset("_index", data=np.array(["%s-t%d" % (c, t) for t in range(K) for c in idx],
                                              dtype=object), dtype=h5py.string_dtype())
    for k, v in f["obs/_index"].attrs.items():
        O["_index"].attrs[k] = v
    def tiled(src, dst, name):  # arrays tiled, categorical codes tiled, categories copied
        o = src[name]
        if isinstance(o, h5py.Group):
            grp = dst.create_group(name)
            for k, v in o.attrs.items():
                grp.attrs[k] = v
            for k in o:
                if k == "codes":
                    tiled(o, grp, k)
                else:
                    src.copy(o[k], grp, name=k)
            return
        v = o[()]
        dst.create_dataset(name, data=np.concatenate([v] * K))
        for k, a in o.attrs.items():
            dst[name].attrs[k] = a
    for c in f["obs"]:
        if c != "_index":
            tiled(f["obs"], O, c)
PY
        mv "$T.part" "$T"
    fi
    QUERY=$T
fi
W=$(mktemp -d "${TMPDIR:-/tmp}/bench_stream.XXXXXX")
trap 'rm -rf "$W"' EXIT
echo "query $(basename "$QUERY") ($(du -h "$QUERY" | cut -f1)), reference $REF, $THREADS threads;" \
     "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
run() { # run NAME CHUNK
    SX_PROJECT_RSS=1 $N /usr/bin/time -v -o "$W/$1.time" "$BUILD/scalex" project --data_list "$QUERY" \
        --projection "$REF" --label cell_type --plots=false --threads "$THREADS" \
        --chunk_cells "$2" ${PROJECT_ARGS:-} -o "$W/$1" >"$W/$1.log" 2>&1 || { tail -5 "$W/$1.log" >&2; exit 1; }
    "$PY" - "$W/$1.time" "$W/$1/result.json" "$1" "$2" <<'PY'
import json, re, sys
t = open(sys.argv[1]).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1)
secs = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall.split(":"))))
cpu = sum(float(re.search(k + r": ([0-9.]+)", t).group(1)) for k in ("User time \(seconds\)", "System time \(seconds\)"))
r = json.load(open(sys.argv[2]))
st = " ".join("%s %.1f" % kv for kv in r.get("timings", {}).items())
print("%-6s chunk_cells %-7s peak RSS %7.0f MB  wall %6.1f s  CPU %6.1f s  | %s" %
      (sys.argv[3], sys.argv[4], rss / 1024, secs, cpu, st))
PY
    grep '^rss ' "$W/$1.log" | sed 's/^rss /    after /' || true
}
[ "$ONLY" != stream ] && run whole 0
[ "$ONLY" != whole ] && run stream "$CHUNK"
if [ -z "$ONLY" ]; then
    "$PY" - "$W/whole/adata.h5ad" "$W/stream/adata.h5ad" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
same = all(np.array_equal(a[k][()], b[k][()]) for k in ("X/data", "X/indices", "X/indptr", "obsm/latent"))
print("outputs: X and latent %s" % ("identical" if same else "DIFFER"))
PY
fi
