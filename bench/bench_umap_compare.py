#!/usr/bin/python3
"""bench_umap_compare.py REF_ADATA JOB_A_ADATA JOB_B_ADATA: how far two builds' UMAP transforms
of the same projection differ (a measuring instrument, not the product; kept jobs of
`bench_map.sh --keep`, e.g. before and after a change to sx_umap's transform).

Prints the share of query cells whose 15 nearest reference layout points (X_umap of the
reference's adata.h5ad; a job's adata.h5ad holding the reference first is cut to its queries) carry the same majority cell_type at both builds' positions, and the
mean displacement of the query cells over the reference layout's extent (bounding-box
diagonal)."""
import sys

import h5py
import numpy as np
from scipy.spatial import cKDTree


def labels(f):
    g = f["obs/cell_type"]
    if isinstance(g, h5py.Group):  # categorical
        cats = g["categories"][:]
        return np.asarray(cats)[g["codes"][:]]
    return g[:]


def main():
    ref, a, b = (h5py.File(p, "r") for p in sys.argv[1:4])
    lay = ref["obsm/X_umap"][:].astype(np.float64)
    lab = labels(ref)
    ua = a["obsm/X_umap"][:].astype(np.float64)
    ub = b["obsm/X_umap"][:].astype(np.float64)
    if ua.shape != ub.shape:
        sys.exit("the two jobs hold different cells")
    n = len(lay)
    if len(ua) > n and np.array_equal(ua[:n], lay):  # a projection's adata: reference first
        ua, ub = ua[n:], ub[n:]
    tree = cKDTree(lay)
    _, ia = tree.query(ua, k=15)
    _, ib = tree.query(ub, k=15)

    def majority(idx):
        out = []
        for row in lab[idx]:
            v, c = np.unique(row, return_counts=True)
            out.append(v[np.argmax(c)])
        return np.asarray(out)

    same = np.mean(majority(ia) == majority(ib))
    extent = np.linalg.norm(lay.max(0) - lay.min(0))
    disp = np.mean(np.linalg.norm(ua - ub, axis=1)) / extent
    print(f"{len(ua)} query cells: same majority cell_type of the 15 nearest reference layout "
          f"points {same:.4f}; mean displacement {disp:.2e} of the layout's extent "
          f"({extent:.1f}); max {np.max(np.linalg.norm(ua - ub, axis=1)) / extent:.2e}")


if __name__ == "__main__":
    main()
