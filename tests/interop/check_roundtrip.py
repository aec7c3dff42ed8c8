"""An .h5ad written by `scalex convert` must open in python3-anndata 0.8 and hold the same
data as the original: X values and sparsity, obs/var (index, columns, values, dtype kind,
category order), obsm, obsp.

usage: check_roundtrip.py ORIGINAL.h5ad CONVERTED.h5ad [ORIGINAL CONVERTED ...]
Exact dtype widths may change (int32 columns are written as int64, float32 columns as
float64, the data model keeps int64/float64 columns); the dtype *kind* must not. Numeric
category labels come back as strings (documented). Exit 0 when equal, 1 otherwise.
"""
import sys
import warnings

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp

warnings.filterwarnings("ignore")


def as_csr(X):
    if sp.issparse(X):
        m = sp.csr_matrix(X)
    else:
        m = sp.csr_matrix(np.asarray(X))
    m.sort_indices()
    return m


def same_matrix(a, b, what, errs):
    if a.shape != b.shape:
        errs.append(f"{what}: shape {b.shape} != {a.shape}")
        return
    A, B = as_csr(a), as_csr(b)
    A.eliminate_zeros()  # a dense original has no stored zeros; compare the nonzero pattern
    if sp.issparse(b):
        if B.nnz != as_csr(b).nnz:
            errs.append(f"{what}: converted file stores explicit zeros")
    B.eliminate_zeros()
    if A.nnz != B.nnz or not np.array_equal(A.indptr, B.indptr) or not np.array_equal(A.indices, B.indices):
        errs.append(f"{what}: sparsity differs (nnz {B.nnz} vs {A.nnz})")
        return
    if not np.array_equal(A.data.astype(np.float32), B.data.astype(np.float32)):
        d = np.abs(A.data.astype(np.float64) - B.data.astype(np.float64)).max()
        errs.append(f"{what}: values differ (max abs diff {d})")


def same_frame(a, b, what, errs):
    if not a.index.equals(b.index):
        errs.append(f"{what}: index differs")
    if list(a.columns) != list(b.columns):
        errs.append(f"{what}: columns {list(b.columns)} != {list(a.columns)}")
        return
    for c in a.columns:
        x, y = a[c], b[c]
        if str(x.dtype) == "category":
            if str(y.dtype) != "category":
                errs.append(f"{what}/{c}: dtype {y.dtype}, expected category")
                continue
            cx = [str(v) for v in x.cat.categories]
            cy = [str(v) for v in y.cat.categories]
            if cx != cy or bool(x.cat.ordered) != bool(y.cat.ordered):
                errs.append(f"{what}/{c}: categories {cy[:5]} (ordered {y.cat.ordered}) != "
                            f"{cx[:5]} (ordered {x.cat.ordered})")
            elif not np.array_equal(x.cat.codes.values, y.cat.codes.values):
                errs.append(f"{what}/{c}: codes differ")
            continue
        if x.dtype.kind != y.dtype.kind:
            errs.append(f"{what}/{c}: dtype {y.dtype} (kind {y.dtype.kind}) != {x.dtype} (kind {x.dtype.kind})")
            continue
        if x.dtype.kind == "f":
            if not np.array_equal(x.values.astype(np.float64), y.values.astype(np.float64), equal_nan=True):
                errs.append(f"{what}/{c}: float values differ")
        elif not np.array_equal(x.values, y.values):
            errs.append(f"{what}/{c}: values differ")


def check(path_a, path_b):
    orig, conv = path_a, path_b
    a = anndata.read_h5ad(orig)
    b = anndata.read_h5ad(conv)
    errs = []
    if a.X is None:
        if b.X is not None:
            errs.append("X: present in converted but not in original")
    else:
        same_matrix(a.X, b.X, "X", errs)
        if not sp.isspmatrix_csr(b.X):
            errs.append(f"X: converted X is {type(b.X).__name__}, expected csr_matrix")
        # what a user does next: subset cells; scipy refuses mixed int32/int64 index arrays
        try:
            mask = np.arange(b.n_obs) % 2 == 0
            sub = b[mask].copy()
            same_matrix(as_csr(a.X)[mask], sub.X, "X[mask]", errs)
        except Exception as e:  # noqa: BLE001 - report any failure of the subset
            errs.append(f"X: subsetting cells of the converted file fails: {e}")
    same_frame(a.obs, b.obs, "obs", errs)
    same_frame(a.var, b.var, "var", errs)
    for k in a.obsm.keys():
        v = a.obsm[k]
        if isinstance(v, pd.DataFrame) or sp.issparse(v):
            continue  # sparse / dataframe obsm are skipped by design (reader warns)
        if k not in b.obsm:
            errs.append(f"obsm/{k}: missing")
            continue
        va, vb = np.asarray(v), np.asarray(b.obsm[k])
        if va.ndim == 1:
            va = va.reshape(-1, 1)
        # integer obsm comes back as float64 (sx_dense holds doubles with only a float32
        # flag); the values must still be identical
        kinds_ok = va.dtype.kind == vb.dtype.kind or (va.dtype.kind in "iu" and vb.dtype.kind == "f")
        if va.shape != vb.shape or not kinds_ok or not np.array_equal(va.astype(np.float64), vb.astype(np.float64)):
            errs.append(f"obsm/{k}: differs ({vb.shape} {vb.dtype} vs {va.shape} {va.dtype})")
    for k in a.obsp.keys():
        if k not in b.obsp:
            errs.append(f"obsp/{k}: missing")
            continue
        same_matrix(a.obsp[k], b.obsp[k], f"obsp/{k}", errs)
    if a.raw is not None:
        if b.raw is None:
            errs.append("raw: missing")
        else:
            same_matrix(a.raw.X, b.raw.X, "raw/X", errs)
            same_frame(a.raw.var, b.raw.var, "raw/var", errs)
    for e in errs:
        print(f"{orig}: {e}")
    if not errs:
        print(f"{orig}: roundtrip ok ({a.n_obs} x {a.n_vars}, {len(a.obs.columns)} obs columns, "
              f"obsm {list(b.obsm.keys())}, anndata {anndata.__version__})")
    return 1 if errs else 0


def main():
    """Pairs of arguments, so one interpreter start checks many files."""
    args = sys.argv[1:]
    if len(args) < 2 or len(args) % 2:
        print(__doc__)
        return 2
    bad = 0
    for i in range(0, len(args), 2):
        bad |= check(args[i], args[i + 1])
    return bad


if __name__ == "__main__":
    sys.exit(main())
