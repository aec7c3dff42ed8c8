#!/usr/bin/env bash
# The streamed projection (issue 15: an h5ad query with CSR X read and preprocessed a slab of
# --chunk_cells cells at a time) gives the same output as the whole-file path, bit for bit:
#  - on the PBMC 3-technology file (3 query batches: per-batch MaxAbs over slabs);
#  - on a query made awkward here from it: genes shuffled (the reindex map is not increasing,
#    rows are re-sorted), 15% of the reference genes removed (missing genes: the reciprocal in
#    double), a few names in lower case (the case-insensitive match rule, QC "genes" report),
#    rows stored unsorted and with split duplicate entries (the reader sorts and sums them),
#    and cells below min_features;
#  - on a small scATAC peak matrix with --profile ATAC (binarized, no normalization);
# with a tiny slab (7 or 5 cells) against --chunk_cells 0. Every dataset of adata.h5ad (X,
# obs, latent, UMAP, labels...) must be equal except the recorded chunk_cells setting, and
# result.json's qc and metrics and labels.csv too. Independently of our code, the streamed X
# of the awkward query is recomputed in numpy from the file (ALGORITHM.md §5.3) and the
# reference rows must be empty. A NaN in the query is refused by the streamed reader.
set -euo pipefail
: "${SCALEX_BIN:?run through ctest}" "${SX_SHARED:?}" "${SX_PYTHON:?}"
D="$SX_SHARED/data/pbmc_3tech_symphony"
ITER=100
[ "${SX_SANITIZE:-0}" = 1 ] && ITER=30
T=$(mktemp -d "${TMPDIR:-/tmp}/sxstream-XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$SCALEX_BIN" integrate --data_list "$D/reference_3pv2_5p.h5ad" --min_features 100 \
    --max_iteration $ITER --ignore_umap --threads 1 -o "$T/ref" 2>"$T/l0" || { tail -5 "$T/l0"; fail integrate; }

"$SX_PYTHON" - "$D/pbmc_3tech.h5ad" "$T/awkward.h5ad" "$T/nan.h5ad" <<'PY'
import sys, shutil
import h5py, numpy as np
src, out, nan = sys.argv[1:4]
rng = np.random.default_rng(7)
with h5py.File(src, "r") as f:
    data, ind, ptr = f["X/data"][()], f["X/indices"][()], f["X/indptr"][()]
    names = np.array([n.decode() for n in f["var/_index"][()]], dtype=object)
G = len(names)
newcols = rng.permutation(G)[: int(0.85 * G)]   # new column c holds old gene newcols[c]
G2 = len(newcols)
old2new = np.full(G, -1); old2new[newcols] = np.arange(G2)
newnames = names[newcols]
for c in rng.choice(G2, 20, replace=False):
    newnames[c] = newnames[c].lower()
D2, I2, P2 = [], [], [0]
for r in range(len(ptr) - 1):
    a, b = ptr[r], ptr[r + 1]
    cols, vals = old2new[ind[a:b]], data[a:b].astype(np.float32)
    cols, vals = cols[cols >= 0], vals[cols >= 0]
    if r % 2 and len(vals) > 3:              # unsorted rows
        cols, vals = cols[::-1], vals[::-1]
    if r % 5 == 0 and len(vals) > 1 and vals[0] >= 2:   # a value split in two entries
        h = np.float32(np.floor(vals[0] / 2))
        cols = np.concatenate([cols, cols[:1]]); vals = np.concatenate([vals, [vals[0] - h]])
        vals[0] = h
    D2.append(vals); I2.append(cols); P2.append(P2[-1] + len(vals))
shutil.copy(src, out)
with h5py.File(out, "r+") as f:
    for k in ("data", "indices", "indptr"):
        del f["X/" + k]
    f["X/data"] = np.concatenate(D2).astype(np.float32)
    f["X/indices"] = np.concatenate(I2).astype(np.int32)
    f["X/indptr"] = np.array(P2, dtype=np.int64)
    f["X"].attrs["shape"] = np.array([len(P2) - 1, G2])
    del f["var/_index"]
    f.create_dataset("var/_index", data=np.array(newnames, dtype=object),
                     dtype=h5py.string_dtype())
# the same file with one NaN near its end
shutil.copy(src, nan)
with h5py.File(nan, "r+") as f:
    f["X/data"][len(f["X/data"]) - 3] = np.nan
PY

run() { # run NAME QUERY CHUNK [more options]
    local name=$1 q=$2 ch=$3
    shift 3
    "$SCALEX_BIN" project --data_list "$q" --projection "$T/ref" --min_features 100 --label cell_type \
        --threads 1 ${ch:+--chunk_cells $ch} "$@" -o "$T/$name" 2>"$T/$name.log" ||
        { tail -5 "$T/$name.log"; fail "project $name"; }
}
run whole "$D/pbmc_3tech.h5ad" 0
run slab7 "$D/pbmc_3tech.h5ad" 7
run default "$D/pbmc_3tech.h5ad" ""
run awk_whole "$T/awkward.h5ad" 0 --repeat
run awk_slab5 "$T/awkward.h5ad" 5 --repeat
# ATAC: binarized, no normalization, every peak kept (no MT filter)
A="$SX_SHARED/data/scatac_small/signac_atac_small_peaks.h5ad"
"$SCALEX_BIN" integrate --data_list "$A" --profile ATAC --min_features 10 --max_iteration $ITER \
    --ignore_umap --threads 1 -o "$T/aref" 2>"$T/la" || { tail -5 "$T/la"; fail "ATAC integrate"; }
for ch in 0 3; do
    "$SCALEX_BIN" project --data_list "$A" --projection "$T/aref" --profile ATAC --min_features 10 \
        --label orig.ident --threads 1 --chunk_cells $ch -o "$T/atac$ch" 2>"$T/atac$ch.log" ||
        { tail -5 "$T/atac$ch.log"; fail "ATAC project --chunk_cells $ch"; }
done
grep -q "streamed, 3 cells at a time" "$T/atac3.log" || fail "ATAC --chunk_cells 3 did not stream"
grep -q "streamed, 7 cells at a time" "$T/slab7.log" || fail "--chunk_cells 7 did not stream"
grep -q "streamed, 65536 cells at a time" "$T/default.log" || fail "the default did not stream"
grep -q "streamed" "$T/whole.log" && fail "--chunk_cells 0 streamed"
grep -q "case_insensitive" "$T/awk_slab5/result.json" || fail "the lower-case names were not matched by case"

"$SX_PYTHON" - "$T" "$D/pbmc_3tech.h5ad" <<'PY'
import sys, json
import h5py, numpy as np, anndata as ad
T, src = sys.argv[1], sys.argv[2]

def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, np.asarray(o[()])) if isinstance(o, h5py.Dataset) else None)
    return out

def same(a, b):
    A, B = datasets(f"{T}/{a}/adata.h5ad"), datasets(f"{T}/{b}/adata.h5ad")
    assert set(A) == set(B), set(A) ^ set(B)
    skip = {"uns/scalexd/settings/chunk_cells"}
    for k in sorted(set(A) - skip):
        x, y = A[k], B[k]
        eq = x.shape == y.shape and x.dtype == y.dtype and (
            np.array_equal(x, y, equal_nan=True) if x.dtype.kind == "f" else np.array_equal(x, y))
        assert eq, f"{a} vs {b}: {k} differs"
    ra, rb = (json.load(open(f"{T}/{n}/result.json")) for n in (a, b))
    assert ra["qc"] == rb["qc"], (a, b, "qc")
    assert ra["metrics"] == rb["metrics"], (a, b, ra["metrics"], rb["metrics"])
    assert open(f"{T}/{a}/labels.csv").read() == open(f"{T}/{b}/labels.csv").read()
    assert "X/data" in A and len(A["X/data"]) > 0
    return len(A)

n = same("whole", "slab7") and same("whole", "default") and same("awk_whole", "awk_slab5") \
    and same("atac0", "atac3")

# the reference rows of a non-repeat projection are empty; its query rows are the repeat's
w = ad.read_h5ad(f"{T}/whole/adata.h5ad")
nref = int((w.obs["projection"] == "reference").sum())
assert nref > 0 and w.X[:nref].nnz == 0, "reference rows must be all zero"

# §5.3 from the awkward file, independently of our code
q = ad.read_h5ad(f"{T}/awkward.h5ad")
with h5py.File(f"{T}/ref/checkpoint/model.h5", "r") as f:
    genes = [g.decode() if isinstance(g, bytes) else str(g) for g in f["genes"][:]]
X = q.X.toarray().astype(np.float64)      # duplicates summed by scipy
names = np.array(q.var_names)
keep_g = ~np.array([str(n).startswith(("ERCC", "MT-", "mt-")) for n in names])
X, names = X[:, keep_g], names[keep_g]
keep_c = (X > 0).sum(1) >= 100
X = X[keep_c]
tot = X.sum(1, keepdims=True); tot[tot == 0] = 1
X = np.log1p(X * 1e4 / tot)
col = {n: j for j, n in enumerate(names)}
low = {str(n).lower(): j for j, n in enumerate(names)}
R = np.zeros((X.shape[0], len(genes)))
missing = 0
for k, g in enumerate(genes):
    j = col.get(g, low.get(g.lower()))
    if j is None:
        missing += 1
    else:
        R[:, k] = X[:, j]
batch = np.array(q.obs["batch"])[keep_c]
assert len(set(batch)) == 3 and missing > 0
for b in set(batch):
    m = batch == b
    mx = R[m].max(0); mx[mx == 0] = 1
    R[m] /= mx
s = ad.read_h5ad(f"{T}/awk_slab5/adata.h5ad")
assert list(s.obs_names) == list(q.obs_names[keep_c]), "cells kept differ from min_features"
assert list(s.var_names) == genes
err = np.abs(s.X.toarray() - R).max()
assert err < 2e-5, err
print(f"pipeline_stream: ok; {n} datasets equal per pair, {s.n_obs} awkward cells kept of "
      f"{q.n_obs}, {missing} reference genes missing, X max err {err:.1e}")
PY

if "$SCALEX_BIN" project --data_list "$T/nan.h5ad" --projection "$T/ref" --min_features 100 \
    --ignore_umap --threads 1 --chunk_cells 7 -o "$T/nan" 2>"$T/nan.log"; then
    fail "a NaN in the query was accepted"
fi
grep -q "NaN" "$T/nan.log" || { tail -3 "$T/nan.log"; fail "the NaN error does not say NaN"; }
