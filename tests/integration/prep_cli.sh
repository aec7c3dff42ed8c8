#!/bin/bash
# scalex preprocess end to end: the two cellbench technology files, concatenated by the CLI,
# must give SCALEX v1.0.0's preprocessing of the combined dataset (golden/prep/cellbench_3cl,
# hvg_subset variant), as read back by anndata (SX_PYTHON). Also checks the exit code and
# message when min_features removes every cell.
set -euo pipefail
: "${SCALEX_BIN:?run through ctest}" "${SX_SHARED:?}" "${SX_PYTHON:=/usr/bin/python3}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
D="$SX_SHARED/data/cellbench_3cl_celseq2_dropseq"
"$SCALEX_BIN" preprocess --quiet --data_list "$D/celseq2.h5ad" "$D/dropseq.h5ad" \
    --batch_categories celseq2 dropseq -o "$tmp/cb.h5ad"
"$SX_PYTHON" - "$tmp/cb.h5ad" "$SX_SHARED/golden/prep/cellbench_3cl" <<'PY'
import sys, warnings
warnings.filterwarnings("ignore")
import anndata as ad, h5py, numpy as np, scipy.sparse as sp
a = ad.read_h5ad(sys.argv[1])
g = h5py.File(sys.argv[2] + "/scaled_hvg_subset.h5", "r")
ln = h5py.File(sys.argv[2] + "/lognorm.h5", "r")
s = lambda d: [x.decode() for x in d[:]]
gv, go = s(g["var_names"]), s(g["obs_names"])
assert list(a.obs_names) == go, "cells differ"
assert sorted(a.var_names) == sorted(gv), "HVG set differs"
assert list(a.obs["batch"].cat.categories) == ["celseq2", "dropseq"]
assert sorted(a.raw.var_names) == sorted(s(ln["var_names"])), "raw genes differ"
X = sp.csr_matrix(a.X)[:, [list(a.var_names).index(v) for v in gv]].toarray()
G = sp.csr_matrix((g["X/data"][:], g["X/indices"][:], g["X/indptr"][:]), shape=X.shape).toarray()
d = np.abs(X - G).max()
assert d <= 1e-5, d
for c in ["highly_variable", "means", "dispersions", "dispersions_norm",
          "highly_variable_nbatches", "highly_variable_intersection"]:
    assert c in a.var.columns, c
m = np.asarray(a.uns["scalex_preprocess"]["scale_maxabs"])
assert m.shape == (2, 2000), m.shape
print("prep_cli: 499 x 2000 matches golden, max abs diff %.3g" % d)
PY
set +e
"$SCALEX_BIN" preprocess --quiet "$SX_SHARED/data/pbmc_3tech_symphony/pbmc_3tech.h5ad" -o "$tmp/x.h5ad" 2>"$tmp/err"
rc=$?
set -e
[ "$rc" -eq 6 ] || { echo "expected exit 6 (data problem), got $rc"; exit 1; }
grep -q "min_features" "$tmp/err" || { cat "$tmp/err"; exit 1; }
[ ! -e "$tmp/x.h5ad" ] || { echo "output written despite the error"; exit 1; }
echo "prep_cli: ok"
