#!/usr/bin/env python3
"""Independent reading of an input with scipy / h5py / pandas, for the io unit tests.

Usage: io_truth.py KIND PATH OUTDIR [GENOME]
  KIND: mtx (10x folder or bare .mtx[.gz]), h5 (10x Cell Ranger .h5, v2 or v3),
        csv (genes x cells table, first column gene names), h5ad (X/obs/var read with h5py),
        concat (PATH = "JOIN|KIND:PATH|KIND:PATH...": anndata's AnnData.concatenate of the
        inputs read as above; var_columns.txt lists the resulting var columns in order).
Writes to OUTDIR: shape.txt ("n_obs n_vars nnz sum"), indptr.bin (int64), indices.bin
(int32), data.bin (float32) of the cells x genes CSR with sorted indices, duplicates summed
and zeros dropped; obs.txt / var.txt (one name per line, var names made unique with
anndata's rule) and var_<column>.txt for the var columns scanpy would create.
Run with the Debian interpreter ($SX_PYTHON).
"""
import gzip
import os
import sys

import h5py
import numpy as np
import scipy.io
import scipy.sparse as sp


def make_unique(names):
    # anndata.utils.make_index_unique, written out so that the truth does not depend on
    # the anndata version: k-th repeat -> name-k, skipping names that already exist.
    import pandas as pd
    from anndata.utils import make_index_unique
    return list(make_index_unique(pd.Index(list(names))))


def read_lines(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rt") as f:
        return [l.rstrip("\r\n") for l in f if l.strip()]


def find(folder, base):
    for cand in (base, base + ".gz"):
        p = os.path.join(folder, cand)
        if os.path.exists(p):
            return p
    return None


def out_csr(m):
    m = sp.csr_matrix(m, dtype=np.float32)
    m.sum_duplicates()
    m.eliminate_zeros()
    m.sort_indices()
    return m


def decode(a):
    return [x.decode() if isinstance(x, bytes) else str(x) for x in a]


def read_input(kind, path, genome):
    cols = {}
    if kind == "mtx":
        if os.path.isdir(path):
            mpath = find(path, "matrix.mtx")
            feat = find(path, "features.tsv") or find(path, "genes.tsv")
            bc = find(path, "barcodes.tsv")
        else:
            mpath, feat, bc = path, None, None
        m = scipy.io.mmread(mpath)
        X = out_csr(sp.coo_matrix(m).T)
        if feat:
            rows = [l.split("\t") for l in read_lines(feat)]
            var = [r[1] if len(r) > 1 else r[0] for r in rows]
            cols["gene_ids"] = [r[0] for r in rows]
            if all(len(r) > 2 for r in rows) and "features" in os.path.basename(feat):
                cols["feature_types"] = [r[2] for r in rows]
            obs = [l.split("\t")[-1] for l in read_lines(bc)]
        else:
            obs = [str(i) for i in range(X.shape[0])]
            var = [str(i) for i in range(X.shape[1])]
    elif kind == "h5":
        f = h5py.File(path, "r")
        if "matrix" in f:
            g = f["matrix"]
            nf, nb = g["shape"][:]
            X = out_csr(sp.csr_matrix((g["data"][:], g["indices"][:], g["indptr"][:]),
                                      shape=(nb, nf)))
            obs = decode(g["barcodes"][:])
            var = decode(g["features/name"][:])
            cols["gene_ids"] = decode(g["features/id"][:])
            cols["feature_types"] = decode(g["features/feature_type"][:])
            cols["genome"] = decode(g["features/genome"][:])
            if genome:
                keep = np.array([x == genome for x in cols["genome"]])
                X = out_csr(X[:, keep])
                var = [v for v, k in zip(var, keep) if k]
                cols = {c: [v for v, k in zip(vals, keep) if k] for c, vals in cols.items()}
        else:
            groups = sorted(k for k in f.keys() if isinstance(f[k], h5py.Group))
            if genome:
                groups = [genome]
            mats, var, ids, gen = [], [], [], []
            for name in groups:
                g = f[name]
                nf, nb = g["shape"][:]
                mats.append(sp.csr_matrix((g["data"][:], g["indices"][:], g["indptr"][:]),
                                          shape=(nb, nf)))
                obs = decode(g["barcodes"][:])
                var += decode(g["gene_names"][:])
                ids += decode(g["genes"][:])
                gen += [name] * int(nf)
            X = out_csr(sp.hstack(mats))
            cols["gene_ids"] = ids
            if len(groups) > 1:
                cols["genome"] = gen
    elif kind == "csv":
        import pandas as pd
        df = pd.read_csv(path, index_col=0)
        X = out_csr(df.values.T.astype(np.float32))
        obs = [str(c) for c in df.columns]
        var = [str(i) for i in df.index]
    elif kind == "h5ad":
        f = h5py.File(path, "r")
        g = f["X"]
        n, m = g.attrs["shape"]
        X = out_csr(sp.csr_matrix((g["data"][:].astype(np.float32), g["indices"][:],
                                   g["indptr"][:]), shape=(n, m)))
        obs = decode(f["obs"][f["obs"].attrs["_index"]][:])
        var = decode(f["var"][f["var"].attrs["_index"]][:])
    else:
        sys.exit("unknown kind " + kind)
    if kind != "h5ad":
        var = make_unique(var)
    return X, obs, var, cols


def concat(spec):
    """spec = JOIN|KIND:PATH|KIND:PATH...: anndata 0.8 AnnData.concatenate of the inputs
    (batch_categories b0, b1, ...; index_unique=None), as SCALEX v1.0.0 calls it."""
    import warnings
    import anndata
    import pandas as pd
    join, *inputs = spec.split("|")
    ads = []
    for item in inputs:
        kind, path = item.split(":", 1)
        X, obs, var, cols = read_input(kind, path, None)
        ads.append(anndata.AnnData(X, obs=pd.DataFrame(index=obs),
                                   var=pd.DataFrame(cols, index=var)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = ads[0].concatenate(*ads[1:], join=join, index_unique=None,
                               batch_categories=[f"b{i}" for i in range(len(ads))])
    cols = {k: [str(v) for v in c.var[k]] for k in c.var.columns}
    with open("var_columns.txt", "w") as fh:
        fh.write("".join(k + "\n" for k in c.var.columns))
    return out_csr(c.X), list(c.obs_names), list(c.var_names), cols


def main():
    kind, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    genome = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] != "-" else None
    os.makedirs(out, exist_ok=True)
    if kind == "concat":
        os.chdir(out)
        X, obs, var, cols = concat(path)
    else:
        X, obs, var, cols = read_input(kind, path, genome)
    with open(os.path.join(out, "shape.txt"), "w") as fh:
        fh.write("%d %d %d %.17g\n" % (X.shape[0], X.shape[1], X.nnz,
                                       float(X.data.astype(np.float64).sum())))
    X.indptr.astype(np.int64).tofile(os.path.join(out, "indptr.bin"))
    X.indices.astype(np.int32).tofile(os.path.join(out, "indices.bin"))
    X.data.astype(np.float32).tofile(os.path.join(out, "data.bin"))
    for name, vals in [("obs", obs), ("var", var)] + [("var_" + c, v) for c, v in cols.items()]:
        with open(os.path.join(out, name + ".txt"), "w") as fh:
            fh.write("".join(v + "\n" for v in vals))


if __name__ == "__main__":
    main()
