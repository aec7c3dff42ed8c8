#!/usr/bin/env bash
# `scalex project --projection DIR` on a folder the original SCALEX wrote
# (../shared/golden/scalex_outdir/ref: checkpoint/model.pt, config.pt, adata.h5ad), with the raw
# query and the settings of the golden run (min_features 0), read back with python3-anndata:
#  - --eval: the query's latent = SCALEX's eval-mode latent (proj_eval/adata.h5ad) to 1e-4;
#  - SCALEX's default (train-mode BN over domain-pure chunks, drawn by our pipeline as SCALEX
#    draws them for the same seed, 124 by default): the latent = SCALEX's (proj/adata.h5ad) to
#    1e-4, and the transferred labels (--label cell_type, 5 neighbours, --unknown off: SCALEX's plain vote) = SCALEX's
#    label_transfer (scikit-learn's default 5-NN, restated in
#    tests/tools/scalex_label_transfer.py) applied to SCALEX's own projection on >= 98% of the
#    query cells;
#  - the SCALEX folder is only read: nothing is added to it.
set -euo pipefail
: "${SCALEX_BIN:?run through ctest}" "${SX_SHARED:?}" "${SX_PYTHON:?}"
G="$SX_SHARED/golden/scalex_outdir"
Q="$SX_SHARED/data/pbmc_3tech_symphony/query_3pv1.h5ad"
[ -f "$G/ref/checkpoint/model.pt" ] || { echo "SKIP: no $G"; exit 0; }
SRC=${SX_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
T=$(mktemp -d "${TMPDIR:-/tmp}/sxscalexdir-XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
before=$(find "$G/ref" | sort | md5sum)

"$SCALEX_BIN" project --data_list "$Q" --projection "$G/ref" --min_features 0 --eval \
    --label cell_type --unknown off --threads 1 -o "$T/eval" 2>"$T/l1" || { tail -5 "$T/l1"; fail "project --eval"; }
"$SCALEX_BIN" project --data_list "$Q" --projection "$G/ref" --min_features 0 \
    --label cell_type --unknown off --k 5 --threads 1 -o "$T/train" 2>"$T/l2" || { tail -5 "$T/l2"; fail project; }
[ "$(find "$G/ref" | sort | md5sum)" = "$before" ] || fail "the SCALEX folder was written to"

PYTHONPATH="$SRC/tests/tools" "$SX_PYTHON" - "$T" "$G" <<'PY'
import sys
import anndata as ad, numpy as np
from scalex_label_transfer import scalex_truth
T, G = sys.argv[1], sys.argv[2]

def query_rows(path):
    a = ad.read_h5ad(path)
    return a[np.asarray(a.obs["projection"] == "query")]

# eval mode: SCALEX's latent, by cell name
ours, gold = query_rows(f"{T}/eval/adata.h5ad"), query_rows(f"{G}/proj_eval/adata.h5ad")
assert sorted(ours.obs_names) == sorted(gold.obs_names), "query cells differ"
g = gold[ours.obs_names]
lat, want = np.asarray(ours.obsm["latent"]), np.asarray(g.obsm["latent"])
rel = np.abs(lat - want).max() / np.abs(want).max()
assert rel < 1e-4, rel
assert "X_umap" in ours.obsm and np.isfinite(ours.obsm["X_umap"]).all()

# train mode (SCALEX's default): latent and labels against SCALEX's
tr = query_rows(f"{T}/train/adata.h5ad")
g = query_rows(f"{G}/proj/adata.h5ad")[tr.obs_names]
want = np.asarray(g.obsm["latent"])
rel_t = np.abs(np.asarray(tr.obsm["latent"]) - want).max() / np.abs(want).max()
assert rel_t < 1e-4, rel_t
truth = scalex_truth(f"{G}/proj/adata.h5ad", "cell_type")
got = dict(zip(tr.obs_names, tr.obs["cell_type_transfer"].astype(str)))
assert set(got) == set(truth), "query cells differ"
agree = np.mean([got[c] == truth[c] for c in truth])
print("eval latent: worst relative %.2g; train-mode latent %.2g, labels = SCALEX "
      "label_transfer on %.1f%% of %d cells" % (rel, rel_t, 100 * agree, len(truth)))
assert agree >= 0.98, agree
PY
echo "pipeline_scalex_folder: all checks passed"
