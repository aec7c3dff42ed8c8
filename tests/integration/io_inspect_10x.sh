#!/usr/bin/env bash
# `scalex inspect --json` on the genuine 10x inputs (MatrixMarket v2/v3 folders, a bare
# matrix.mtx.gz, Cell Ranger .h5 v2/v3 and the two-genome v2 file) and on the original
# CellBench CSV.gz tables must report what scipy.io.mmread / h5py / pandas compute here,
# independently: n_obs, n_vars, nnz, the sum of X, and the var columns scanpy would create.
set -u
: "${SX_SHARED:?run through ctest}" "${SCALEX_BIN:?}" "${SX_PYTHON:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
D="$SX_SHARED/data"
T="$D/tenx_pbmc_chr21_scanpy"
cat >"$tmp/expect.py" <<'PY'
import gzip, json, os, sys
import numpy as np, scipy.io, scipy.sparse as sp, h5py

kind, path, got = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
cols = []
if kind == "mtx":
    mpath = path
    if os.path.isdir(path):
        mpath = [os.path.join(path, f) for f in os.listdir(path) if f.startswith("matrix.mtx")][0]
        feat = [f for f in os.listdir(path) if f.startswith(("features.tsv", "genes.tsv"))][0]
        op = gzip.open if feat.endswith(".gz") else open
        with op(os.path.join(path, feat), "rt") as fh:
            ncol = len(fh.readline().split("\t"))
        cols = ["gene_ids"] + (["feature_types"] if feat.startswith("features") and ncol > 2 else [])
    elif os.path.exists(os.path.join(os.path.dirname(path), "features.tsv.gz")):
        cols = ["gene_ids", "feature_types"]
    X = sp.csr_matrix(scipy.io.mmread(mpath).T)
elif kind == "h5":
    f = h5py.File(path, "r")
    if "matrix" in f:
        g = f["matrix"]
        nf, nb = g["shape"][:]
        X = sp.csr_matrix((g["data"][:], g["indices"][:], g["indptr"][:]), shape=(nb, nf))
        cols = ["gene_ids", "feature_types", "genome"]
    else:
        groups = sorted(k for k in f if isinstance(f[k], h5py.Group))
        mats = []
        for k in groups:
            g = f[k]
            nf, nb = g["shape"][:]
            mats.append(sp.csr_matrix((g["data"][:], g["indices"][:], g["indptr"][:]), shape=(nb, nf)))
        X = sp.csr_matrix(sp.hstack(mats))
        cols = ["gene_ids"] + (["genome"] if len(groups) > 1 else [])
elif kind == "csv":
    import pandas as pd
    X = sp.csr_matrix(pd.read_csv(path, index_col=0).values.T.astype(np.float32))
X.sum_duplicates()
X.eliminate_zeros()
want = {"n_obs": X.shape[0], "n_vars": X.shape[1], "nnz": int(X.nnz),
        "x_sum": float(X.data.astype(np.float64).sum())}
bad = []
for k in ("n_obs", "n_vars", "nnz"):
    if got[k] != want[k]:
        bad.append(f"{k}: scalex {got[k]} python {want[k]}")
if abs(got["x_sum"] - want["x_sum"]) > 1e-9 * max(1.0, abs(want["x_sum"])):
    bad.append(f"x_sum: scalex {got['x_sum']} python {want['x_sum']}")
names = [c["name"] for c in got["var"]]
if names != cols:
    bad.append(f"var columns: scalex {names} python/scanpy {cols}")
if bad:
    print(f"FAIL {path}: " + "; ".join(bad))
    sys.exit(1)
print(f"ok   {path}: {want['n_obs']} x {want['n_vars']}, nnz {want['nnz']}, sum {want['x_sum']:.0f}, var {cols}")
PY
fail=0
check() {
    local kind=$1 path=$2
    if ! "$SCALEX_BIN" inspect --json "$path" >"$tmp/got.json" 2>"$tmp/err.txt"; then
        echo "FAIL $path: inspect failed: $(cat "$tmp/err.txt")"
        fail=1
        return
    fi
    "$SX_PYTHON" "$tmp/expect.py" "$kind" "$path" "$tmp/got.json" || fail=1
}
check mtx "$T/3.0.0/filtered_feature_bc_matrix"
check mtx "$T/3.0.0/filtered_feature_bc_matrix/matrix.mtx.gz"
check mtx "$T/1.2.0/filtered_gene_bc_matrices/hg19_chr21"
check mtx "$D/pbmc_3tech_symphony/query_3pv1_mtx"
check h5 "$T/3.0.0/filtered_feature_bc_matrix.h5"
check h5 "$T/1.2.0/filtered_gene_bc_matrices_h5.h5"
check h5 "$T/1.2.0/multiple_genomes.h5"
check csv "$D/cellbench_3cl_celseq2_dropseq/original/sc_celseq2.count.csv.gz"
check csv "$D/cellbench_3cl_celseq2_dropseq/original/sc_dropseq.count.csv.gz"
# the format each input is detected as
fmt() { "$SCALEX_BIN" inspect --json "$1" | "$SX_PYTHON" -c "import json,sys; print(json.load(sys.stdin)['format'])"; }
for pair in "$T/3.0.0/filtered_feature_bc_matrix.h5=10x_h5" "$T/1.2.0/multiple_genomes.h5=10x_h5" \
            "$T/3.0.0/filtered_feature_bc_matrix=10x_mtx" \
            "$T/1.2.0/filtered_gene_bc_matrices/hg19_chr21=10x_mtx" \
            "$T/3.0.0/filtered_feature_bc_matrix/matrix.mtx.gz=mtx" \
            "$D/cellbench_3cl_celseq2_dropseq/original/sc_celseq2.count.csv.gz=csv"; do
    got=$(fmt "${pair%=*}")
    [ "$got" = "${pair##*=}" ] || { echo "FAIL ${pair%=*}: format '$got', expected ${pair##*=}"; fail=1; }
done
exit $fail
