#!/bin/bash
# trust_eval.sh — the per-cell trust of label transfer (issue 16) on the shared reference ->
# query pairs, over several seeds: figures, not pass/fail (minutes of CPU; never a ctest).
#
# Per dataset and seed: train the reference split (`scalex integrate`, ITER iterations) and
# project the query through it (`scalex project`, no label): one latent per seed. Then, on
# that latent, `scalex transfer` (the product's kNN, calibration and mapping score) from the
# reference cells to the query cells:
#  - full reference, --unknown off: expected calibration error (10 bins) of the confidence,
#    beside that of SCALEX's 5-NN vote share; with the defaults: the share of Unknown;
#  - leave one cell type out of the reference in turn (the same latent: leaving a type out
#    changes only the reference cells the kNN searches, not the trained encoder, which saw
#    that type — so the figures are, if anything, pessimistic for novelty detection):
#    AUROC of 1 - mapping score (and of 1 - vote share) separating the left-out type's query
#    cells from the rest, and the Unknown shares of left-out and known cells.
# bench/trust_eval.py only splits files (anndata) and computes the figures.
#
# Usage: bench/trust_eval.sh [OUTDIR]   env: SCALEX_BIN (build/scalex), SX_SHARED (../shared),
#        SX_PYTHON (/usr/bin/python3), SEEDS ("1 2 3 4 5"), ITER (3000; "default" = the
#        CLI's own training budget and early-stopping rule, as a user gets them), THREADS (1),
#        DATASETS ("cellbench_3cl pbmc_3tech pancreas_baron_human_mouse"), LOO (1; 0 skips
#        the leave-one-type-out runs), EXTRA (more options for every transfer, e.g.
#        "--min_confidence 0.4").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${SCALEX_BIN:-$ROOT/build/scalex}
SHARED=${SX_SHARED:-$(cd "$ROOT/.." && pwd)/shared}
PY=${SX_PYTHON:-/usr/bin/python3}
H=$ROOT/bench/trust_eval.py
SEEDS=${SEEDS:-1 2 3 4 5}
ITER=${ITER:-3000}
LOO=${LOO:-1}
THREADS=${THREADS:-1}
OUT=${1:-trust-out}
D=$SHARED/data
DATASETS=${DATASETS:-cellbench_3cl pbmc_3tech pancreas_baron_human_mouse}
mkdir -p "$OUT"
budget=(--max_iteration "$ITER")
[ "$ITER" = default ] && budget=()

# reference file, query file, label column, min_features (bench/quality.sh's pairs)
pair() {
    case $1 in
    pbmc_3tech) echo "pbmc_3tech_symphony/reference_3pv2_5p.h5ad pbmc_3tech_symphony/query_3pv1.h5ad cell_type 100" ;;
    cellbench_3cl) echo "cellbench_3cl_celseq2_dropseq/celseq2.h5ad cellbench_3cl_celseq2_dropseq/dropseq.h5ad cell_line 600" ;;
    pancreas_baron_human_mouse) echo "pancreas_baron_human_mouse_cider/reference_human.h5ad pancreas_baron_human_mouse_cider/query_mouse.h5ad Group 600" ;;
    esac
}

transfer() { # splitdir outdir label [options]
    local s=$1 o=$2 l=$3
    shift 3
    "$BIN" transfer --reference "$s/ref.h5ad" --query "$s/query.h5ad" --label "$l" \
        --threads "$THREADS" ${EXTRA:-} "$@" -o "$o" >"$o.log" 2>&1
}

for ds in $DATASETS; do
    read -r ref qry label mf <<<"$(pair "$ds")"
    : >"$OUT/$ds.full.jsonl"
    : >"$OUT/$ds.loo.jsonl"
    for seed in $SEEDS; do
        w=$OUT/$ds/seed$seed
        mkdir -p "$w"
        if [ ! -f "$w/project/adata.h5ad" ]; then
            nice -n 10 "$BIN" integrate --data_list "$D/$ref" --batch_name batch --label "$label" \
                --min_features "$mf" "${budget[@]}" --threads "$THREADS" --seed "$seed" \
                --ignore_umap -o "$w/reference" >"$w/reference.log" 2>&1
            nice -n 10 "$BIN" project --data_list "$D/$qry" --projection "$w/reference" \
                --min_features "$mf" --threads "$THREADS" --seed "$seed" --ignore_umap \
                -o "$w/project" >"$w/project.log" 2>&1
        fi
        mkdir -p "$w/full"
        "$PY" "$H" split "$w/project/adata.h5ad" "$w/full" "$label"
        transfer "$w/full" "$w/full/off" "$label" --unknown off
        transfer "$w/full" "$w/full/on" "$label"
        "$PY" "$H" full "$w/full" "$w/full/off" "$w/full/on" "$label" |
            sed "s/^{/{\"seed\": $seed, /" >>"$OUT/$ds.full.jsonl"
        types=$("$PY" -c 'import sys, anndata as ad
a = ad.read_h5ad(sys.argv[1]); print("\n".join(sorted(set(a.obs[sys.argv[2]].astype(str)))))' \
            "$w/full/query.h5ad" "$label")
        [ "$LOO" = 0 ] && types=""
        while IFS= read -r t; do
            [ -n "$t" ] || continue
            s=$w/loo_$(echo "$t" | tr -c 'A-Za-z0-9_\n' _)
            mkdir -p "$s"
            "$PY" "$H" split "$w/project/adata.h5ad" "$s" "$label" "$t"
            transfer "$s" "$s/run" "$label"
            "$PY" "$H" loo "$s" "$s/run" "$label" "$t" |
                sed "s/^{/{\"seed\": $seed, /" >>"$OUT/$ds.loo.jsonl"
        done <<<"$types"
    done
    echo "$ds ($label; seeds $SEEDS; max_iteration $ITER): full reference"
    "$PY" "$H" summary "$OUT/$ds.full.jsonl"
    [ "$LOO" = 0 ] && continue
    echo "$ds: leave one cell type out"
    "$PY" "$H" summary "$OUT/$ds.loo.jsonl"
done
