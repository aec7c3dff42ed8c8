#!/usr/bin/python3
"""Export a projection's latents for bench_knn_ivf (issue 15): the reference and query rows of
obsm/latent in the adata.h5ad of `scalex project --ignore_umap -o OUT`, split by
obs/projection, as raw little-endian float64 files (n x 10), plus the reference's first
label column's codes (int32) when obs has cell_type or celltype.

usage: bench_knn_latents.py OUT/adata.h5ad PREFIX   -> PREFIX.ref.f64 PREFIX.query.f64
then:  nice -n 10 build/bench_knn_ivf 0 0 15 2 PREFIX.ref.f64,PREFIX.query.f64,PREFIX.ref_labels.i32 1 16 0
"""
import sys

import h5py
import numpy as np


def main():
    src, prefix = sys.argv[1], sys.argv[2]
    with h5py.File(src, "r") as f:
        lat = f["obsm"]["latent"][:].astype("<f8")
        p = f["obs"]["projection"]
        cats = [c.decode() if isinstance(c, bytes) else c for c in p["categories"][:]]
        is_ref = p["codes"][:] == cats.index("reference")
        np.ascontiguousarray(lat[is_ref]).tofile(prefix + ".ref.f64")
        np.ascontiguousarray(lat[~is_ref]).tofile(prefix + ".query.f64")
        for col in ("cell_type", "celltype"):
            if col in f["obs"]:
                f["obs"][col]["codes"][:][is_ref].astype("<i4").tofile(prefix + ".ref_labels.i32")
                break
    print(f"{is_ref.sum()} reference and {(~is_ref).sum()} query rows, {lat.shape[1]} dims")


if __name__ == "__main__":
    main()
