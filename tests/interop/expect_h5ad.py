"""Independent truth for `scalex inspect --json` on an .h5ad, computed with anndata/scipy.

usage: expect_h5ad.py FILE.h5ad OURS.json [FILE.h5ad OURS.json ...]
Reads FILE with python3-anndata (any layout anndata 0.8 reads: 0.6 compound tables, 0.7
object references, >= 0.8 encodings), computes n_obs, n_vars, nnz (stored entries of a
sparse X, nonzeros of a dense X), the sum of X (float64 accumulation) and every categorical
obs/var column's categories with counts, and compares them with OURS (the inspect output).
Exit status 0 when everything agrees, 1 otherwise (each difference printed).
"""
import json
import sys
import warnings

import anndata
import numpy as np
import scipy.sparse as sp

warnings.filterwarnings("ignore")


def expected(path):
    ad = anndata.read_h5ad(path)
    X = ad.X
    if X is None:
        nnz, total = None, None
    elif sp.issparse(X):
        nnz, total = int(X.nnz), float(X.sum(dtype=np.float64))
    else:
        X = np.asarray(X)
        nnz, total = int(np.count_nonzero(X)), float(X.sum(dtype=np.float64))

    def cats(df):
        out = {}
        for name in df.columns:
            col = df[name]
            if str(col.dtype) == "category":
                c = [str(x) for x in col.cat.categories]
                counts = col.value_counts(sort=False).reindex(col.cat.categories).fillna(0)
                out[name] = (c, [int(v) for v in counts.values], bool(col.cat.ordered))
        return out

    return {
        "n_obs": ad.n_obs,
        "n_vars": ad.n_vars,
        "nnz": nnz,
        "x_sum": total,
        "obs_cols": list(ad.obs.columns),
        "var_cols": list(ad.var.columns),
        "obs_cats": cats(ad.obs),
        "var_cats": cats(ad.var),
        "obsm": {k: list(np.shape(v)) for k, v in ad.obsm.items()},
    }


def check(path_a, path_b):
    path, ours_path = path_a, path_b
    exp = expected(path)
    with open(ours_path) as fh:
        ours = json.load(fh)
    need = {"format", "encoding_version", "n_obs", "n_vars", "nnz", "x_sum", "obs", "var", "obsm",
            "layers"}
    errs = []
    if set(ours) != need:
        errs.append(f"keys {sorted(ours)} != {sorted(need)}")
    if ours.get("format") != "h5ad":
        errs.append(f"format {ours.get('format')}")
    for k in ("n_obs", "n_vars", "nnz"):
        if ours.get(k) != exp[k]:
            errs.append(f"{k}: ours {ours.get(k)} expected {exp[k]}")
    if exp["x_sum"] is not None:
        got = ours.get("x_sum")
        tol = 1e-6 * max(abs(exp["x_sum"]), 1.0)
        if got is None or abs(got - exp["x_sum"]) > tol:
            errs.append(f"x_sum: ours {got} expected {exp['x_sum']!r} (tolerance rel 1e-6)")
    for side in ("obs", "var"):
        cols = {c["name"]: c for c in ours.get(side, [])}
        if list(cols) != exp[side + "_cols"]:
            errs.append(f"{side} columns: ours {list(cols)} expected {exp[side + '_cols']}")
        for name, (cats, counts, ordered) in exp[side + "_cats"].items():
            c = cols.get(name)
            if c is None or c.get("type") != "categorical":
                errs.append(f"{side}/{name}: expected categorical, ours {c and c.get('type')}")
                continue
            if c["categories"] != cats or c["counts"] != counts or c["ordered"] != ordered:
                errs.append(f"{side}/{name}: categories/counts differ: ours "
                            f"{list(zip(c['categories'], c['counts']))[:5]}... expected "
                            f"{list(zip(cats, counts))[:5]}...")
    obsm = {k: v for k, v in ours.get("obsm", {}).items()}
    for k, shape in exp["obsm"].items():
        if obsm.get(k) != (shape if len(shape) == 2 else shape + [1]):
            errs.append(f"obsm/{k}: ours {obsm.get(k)} expected {shape}")
    for e in errs:
        print(f"{path}: {e}")
    if not errs:
        print(f"{path}: ok (n_obs {exp['n_obs']}, n_vars {exp['n_vars']}, nnz {exp['nnz']}, "
              f"x_sum {exp['x_sum']:.10g}, {len(exp['obs_cats'])} obs categoricals)")
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
