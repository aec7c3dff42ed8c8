#!/usr/bin/python3
"""bench_gzip_copy.py SRC.h5ad DST.h5ad [shuffle] -- the same h5ad with X's data and indices
gzip-compressed (level 4) in chunks of 2^16 values, as anndata's write_h5ad(compression="gzip")
stores them (shuffle: with HDF5's shuffle filter too), for `bench_read --read DST N THREADS`:
the threaded chunk inflate against libhdf5's one-thread filter. Copied in slices, so a 1 GB
matrix never sits in Python's memory. A measuring instrument (h5py), never the product."""
import sys

import h5py

src, dst = sys.argv[1], sys.argv[2]
shuffle = len(sys.argv) > 3 and sys.argv[3] == "shuffle"
STEP = 1 << 24
with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
    for k, v in f.attrs.items():
        g.attrs[k] = v
    for key in f:
        if key != "X":
            f.copy(key, g)
    X = g.create_group("X")
    for k, v in f["X"].attrs.items():
        X.attrs[k] = v
    for k in ("data", "indices", "indptr"):
        s = f["X"][k]
        d = X.create_dataset(k, shape=s.shape, dtype=s.dtype, chunks=(min(1 << 16, s.shape[0]),),
                             compression="gzip", compression_opts=4, shuffle=shuffle)
        for a in range(0, s.shape[0], STEP):
            d[a:a + STEP] = s[a:a + STEP]
print(dst)
