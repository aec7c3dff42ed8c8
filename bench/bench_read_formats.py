#!/usr/bin/python3
"""bench_read_formats.py DIR [CELLS [GENES [PER_CELL [gzip]]]] -- write one sparse count matrix
as a Cell Ranger v3 .h5 (DIR/tenx.h5: int32 data, int64 indices, uncompressed, as Cell Ranger
writes them apart from gzip; with "gzip" also DIR/tenx_gz.h5, data and indices gzip level 4 in
chunks of 2^16 values as Cell Ranger stores them) and as a 10x MatrixMarket folder (DIR/mtx/),
so that `bench_read --read DIR/tenx.h5 2` (`... DIR/tenx_gz.h5 2 THREADS`) and
`bench_read --read DIR/mtx 2` measure those readers.
A measuring instrument (python3 + numpy + h5py), never the product."""
import os, sys
import numpy as np
import h5py

out = sys.argv[1]
cells = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
genes = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
per = int(sys.argv[4]) if len(sys.argv) > 4 else 1500
gz = len(sys.argv) > 5 and sys.argv[5] == "gzip"
os.makedirs(os.path.join(out, "mtx"), exist_ok=True)
rng = np.random.default_rng(1)
blk = genes // per
indices = (np.arange(per) * blk + rng.integers(0, blk, (cells, per))).astype(np.int64).ravel()
data = rng.integers(1, 20, cells * per).astype(np.int32)
indptr = np.arange(cells + 1, dtype=np.int64) * per
bc = np.array(["cell%d-1" % i for i in range(cells)], dtype="S")
names = np.array(["gene%d" % j for j in range(genes)], dtype="S")
for name, kw in [("tenx.h5", {})] + ([("tenx_gz.h5", dict(compression="gzip", compression_opts=4,
                                                           chunks=(1 << 16,)))] if gz else []):
    with h5py.File(os.path.join(out, name), "w") as f:
        m = f.create_group("matrix")
        m["barcodes"] = bc
        m.create_dataset("data", data=data, **kw)
        m.create_dataset("indices", data=indices, **kw)
        m["indptr"] = indptr
        m["shape"] = np.array([genes, cells], dtype=np.int32)
        ft = m.create_group("features")
        ft["name"] = names
        ft["id"] = np.array(["ENSG%011d" % j for j in range(genes)], dtype="S")
        ft["feature_type"] = np.array([b"Gene Expression"] * genes, dtype="S")
        ft["genome"] = np.array([b"GRCh38"] * genes, dtype="S")
d = os.path.join(out, "mtx")
with open(os.path.join(d, "barcodes.tsv"), "w") as f:
    f.write("\n".join(b.decode() for b in bc) + "\n")
with open(os.path.join(d, "features.tsv"), "w") as f:
    for j in range(genes):
        f.write("ENSG%011d\tgene%d\tGene Expression\n" % (j, j))
with open(os.path.join(d, "matrix.mtx"), "w") as f:
    f.write("%%MatrixMarket matrix coordinate integer general\n")
    f.write("%d %d %d\n" % (genes, cells, cells * per))
    cell = np.repeat(np.arange(1, cells + 1), per)
    step = 1 << 22
    for a in range(0, cells * per, step):
        b = min(cells * per, a + step)
        rows = np.char.add(np.char.add((indices[a:b] + 1).astype(str), " "),
                           np.char.add(np.char.add(cell[a:b].astype(str), " "),
                                       data[a:b].astype(str)))
        f.write("\n".join(rows.tolist()) + "\n")
print("wrote %s/tenx.h5 and %s/mtx: %d cells x %d genes, %d entries" % (out, out, cells, genes,
                                                                     cells * per))
