#!/bin/bash
# smallref_eval.sh — early-stopping rules measured on the shared pairs (issue 16, "small
# references train enough"). For every rule, dataset and seed: `scalex integrate` the pair's
# reference file (max_iteration ITER, one thread) and `scalex project --label` its query
# through it, as bench/quality.sh's transfer half does; prints each run (accuracy, macro F1,
# epochs/steps, early stop) and per rule and dataset the mean and SD over the seeds.
# MODE=integrate instead integrates the whole dataset (quality.sh's first half) and prints
# mixing and silhouette on the latent: a rule changes a run only where SCALEX's rule stopped
# it early, so the "(early stop)" column says which runs can differ at all.
#
# Usage: nice -n 10 bench/smallref_eval.sh [OUTDIR]
#   env: RULES (default "scalex steps"): scalex = --early_stopping scalex; steps[:P] = the
#        default rule with --patience_steps P; full = no early stop (--patience 1000000000);
#        SEEDS ("124 1 2 3 4"), DATASETS (quality.json names; default the three pairs),
#        ITER (3000, as quality.sh), MODE (transfer|integrate), SCALEX_BIN, SX_SHARED, SX_PYTHON.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${SCALEX_BIN:-$ROOT/build/scalex}
SHARED=${SX_SHARED:-$(cd "$ROOT/.." && pwd)/shared}
PY=${SX_PYTHON:-/usr/bin/python3}
OUT=${1:-smallref-out}
RULES=${RULES:-scalex steps}
SEEDS=${SEEDS:-124 1 2 3 4}
DATASETS=${DATASETS:-pancreas_baron_human_mouse cellbench_3cl pbmc_3tech}
ITER=${ITER:-3000}
MODE=${MODE:-transfer}
Q=$SHARED/golden/quality.json
D=$SHARED/data
mkdir -p "$OUT"
RES=$OUT/runs.tsv
: >"$RES"

field() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k]
print(d)' "$Q" "$1"; }
metric() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["metrics"].get(sys.argv[2], "nan"))' "$1/result.json" "$2"; }
rule_flags() {
    case $1 in
    scalex) echo "--early_stopping scalex" ;;
    steps) echo "--early_stopping steps" ;;
    steps:*) echo "--early_stopping steps --patience_steps ${1#steps:}" ;;
    full) echo "--patience 1000000000" ;;
    *) echo "unknown rule '$1' (scalex, steps, steps:P, full)" >&2; exit 2 ;;
    esac
}
pair_files() { # the shared folder's reference/query pairing of each dataset (as quality.sh)
    case $1 in
    pbmc_3tech) echo "pbmc_3tech_symphony/reference_3pv2_5p.h5ad pbmc_3tech_symphony/query_3pv1.h5ad" ;;
    cellbench_3cl) echo "cellbench_3cl_celseq2_dropseq/celseq2.h5ad cellbench_3cl_celseq2_dropseq/dropseq.h5ad" ;;
    pancreas_baron_human_mouse) echo "pancreas_baron_human_mouse_cider/reference_human.h5ad pancreas_baron_human_mouse_cider/query_mouse.h5ad" ;;
    esac
}

echo "early-stopping rules on the shared data: mode $MODE, max_iteration $ITER, seeds $SEEDS"
for rule in $RULES; do
    flags=$(rule_flags "$rule")
    for ds in $DATASETS; do
        batch=$(field datasets.$ds.batch)
        label=$(field datasets.$ds.label)
        mf=$(field datasets.$ds.min_features)
        for seed in $SEEDS; do
            o=$OUT/$rule/$ds/$seed
            common=(--batch_name "$batch" --label "$label" --min_features "$mf" --threads 1)
            mkdir -p "$o"
            if [ "$MODE" = integrate ]; then
                # shellcheck disable=SC2086
                "$BIN" integrate --data_list "$D/$(field datasets.$ds.file)" "${common[@]}" \
                    --max_iteration "$ITER" --seed "$seed" --assess --ignore_umap $flags \
                    -o "$o/ref" >"$o/integrate.log" 2>&1
                a=$(metric "$o/ref" mixing_latent) f=$(metric "$o/ref" silhouette_latent)
            else
                read -r ref qry <<<"$(pair_files "$ds")"
                # shellcheck disable=SC2086
                "$BIN" integrate --data_list "$D/$ref" "${common[@]}" --max_iteration "$ITER" \
                    --seed "$seed" --ignore_umap $flags -o "$o/ref" >"$o/integrate.log" 2>&1
                "$BIN" project --data_list "$D/$qry" --projection "$o/ref" "${common[@]}" \
                    --ignore_umap -o "$o/project" >"$o/project.log" 2>&1
                a=$(metric "$o/project" accuracy) f=$(metric "$o/project" macro_f1)
            fi
            tr=$(grep -o 'Trained.*' "$o/ref/log.txt")
            es=$(case $tr in *"early stop"*) echo yes ;; *) echo no ;; esac)
            steps=$(sed -n 's/.* \([0-9]*\) steps in.*/\1/p' <<<"$tr")
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rule" "$ds" "$seed" "$a" "$f" "$steps" "$es" >>"$RES"
            printf '  %-10s %-28s seed %-4s %s %.4f  %s %.4f  steps %-5s early stop %s\n' "$rule" \
                "$ds" "$seed" "$([ "$MODE" = integrate ] && echo mixing || echo acc)" "$a" \
                "$([ "$MODE" = integrate ] && echo silh || echo F1)" "$f" "$steps" "$es"
        done
    done
done
echo "summary (mean +- SD over seeds; $([ "$MODE" = integrate ] && echo "mixing / silhouette on the latent" || echo "projection accuracy / macro F1"))"
"$PY" - "$RES" <<'PY'
import sys, statistics as S
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
keys = []
for r in rows:
    if (r[0], r[1]) not in keys: keys.append((r[0], r[1]))
sd = lambda v: S.stdev(v) if len(v) > 1 else 0.0
for rule, ds in keys:
    g = [r for r in rows if r[0] == rule and r[1] == ds]
    a = [float(r[3]) for r in g]; f = [float(r[4]) for r in g]; s = [int(r[5]) for r in g]
    print("  %-10s %-28s %.3f +- %.3f   %.3f +- %.3f   steps %5.0f   early stops %d/%d"
          % (rule, ds, S.mean(a), sd(a), S.mean(f), sd(f), S.mean(s),
             sum(r[6] == "yes" for r in g), len(g)))
PY
