#!/usr/bin/env bash
# The streamed projection on several threads (issue 15: slab i+1 read on the reader's thread
# while slab i is preprocessed, a slab's rows cut in shares over the job's threads) gives the
# preprocessed query of one thread, bit for bit, and the numpy truth of ALGORITHM.md §5.3:
# the PBMC 3-technology query with its genes stored in reverse order (the reindex map is
# decreasing: every kept row is re-sorted inside its thread's share) and 3 batches, read 500
# cells at a time (3 slabs of ~100k entries, enough for every share to run on its own thread)
# with --threads 1, 2 and 3, and whole (--chunk_cells 0). X, obs and var of the query must
# be equal in every run; X must match numpy.
set -euo pipefail
: "${SCALEX_BIN:?run through ctest}" "${SX_SHARED:?}" "${SX_PYTHON:?}"
D="$SX_SHARED/data/pbmc_3tech_symphony"
ITER=60
[ "${SX_SANITIZE:-0}" = 1 ] && ITER=20
T=$(mktemp -d "${TMPDIR:-/tmp}/sxthreads-XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$SCALEX_BIN" integrate --data_list "$D/reference_3pv2_5p.h5ad" --min_features 100 \
    --max_iteration $ITER --ignore_umap --threads 1 -o "$T/ref" 2>"$T/l0" || { tail -5 "$T/l0"; fail integrate; }

"$SX_PYTHON" - "$D/pbmc_3tech.h5ad" "$T/rev.h5ad" <<'PY'
import sys
import anndata as ad
q = ad.read_h5ad(sys.argv[1])
q[:, q.var_names[::-1]].copy().write_h5ad(sys.argv[2])   # CSR X, genes reversed
PY

run() { # run NAME THREADS CHUNK
    "$SCALEX_BIN" project --data_list "$T/rev.h5ad" --projection "$T/ref" --min_features 100 \
        --repeat --ignore_umap --threads "$2" --chunk_cells "$3" -o "$T/$1" 2>"$T/$1.log" ||
        { tail -5 "$T/$1.log"; fail "project $1"; }
}
run t1 1 500
run t2 2 500
run t3 3 500
run whole 2 0
grep -q "streamed, 500 cells at a time" "$T/t2.log" || fail "--chunk_cells 500 did not stream"

"$SX_PYTHON" - "$T" <<'PY'
import sys
import h5py, numpy as np, anndata as ad
T = sys.argv[1]

def query_parts(name):
    out = {}
    with h5py.File(f"{T}/{name}/adata.h5ad", "r") as f:
        for g in ("X", "obs", "var"):
            f[g].visititems(lambda n, o: out.__setitem__(f"{g}/{n}", np.asarray(o[()]))
                            if isinstance(o, h5py.Dataset) else None)
    return out

base = query_parts("t1")
assert "X/data" in base and len(base["X/data"]) > 0
for other in ("t2", "t3", "whole"):
    o = query_parts(other)
    assert set(o) == set(base), (other, set(o) ^ set(base))
    for k in base:
        x, y = base[k], o[k]
        same = x.shape == y.shape and x.dtype == y.dtype and (
            np.array_equal(x, y, equal_nan=True) if x.dtype.kind == "f" else np.array_equal(x, y))
        assert same, f"t1 vs {other}: {k} differs"

# §5.3 from the file, independently of our code
q = ad.read_h5ad(f"{T}/rev.h5ad")
with h5py.File(f"{T}/ref/checkpoint/model.h5", "r") as f:
    genes = [g.decode() if isinstance(g, bytes) else str(g) for g in f["genes"][:]]
X = q.X.toarray().astype(np.float64)
names = np.array(q.var_names)
keep_g = ~np.array([str(n).startswith(("ERCC", "MT-", "mt-")) for n in names])
X, names = X[:, keep_g], names[keep_g]
keep_c = (X > 0).sum(1) >= 100
X = X[keep_c]
tot = X.sum(1, keepdims=True); tot[tot == 0] = 1
X = np.log1p(X * 1e4 / tot)
col = {n: j for j, n in enumerate(names)}
R = np.zeros((X.shape[0], len(genes)))
for k, g in enumerate(genes):
    if g in col:
        R[:, k] = X[:, col[g]]
batch = np.array(q.obs["batch"])[keep_c]
for b in set(batch):
    m = batch == b
    mx = R[m].max(0); mx[mx == 0] = 1
    R[m] /= mx
s = ad.read_h5ad(f"{T}/t3/adata.h5ad")
assert list(s.obs_names) == list(q.obs_names[keep_c]), "cells kept differ from min_features"
assert list(s.var_names) == genes
err = np.abs(s.X.toarray() - R).max()
assert err < 2e-5, err
print(f"pipeline_stream_threads: ok; {len(base)} query datasets equal for 1, 2, 3 threads and "
      f"the whole file; {s.n_obs} cells kept of {q.n_obs}, X max err {err:.1e}")
PY
