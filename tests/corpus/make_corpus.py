#!/usr/bin/env python3
"""Generate the broken-input corpus for tests/integration/io_corpus.sh.

Usage: make_corpus.py SHARED_DIR OUTDIR
Run with the Debian interpreter ($SX_PYTHON: h5py, numpy, scipy, anndata 0.8).

Every case is derived from a real file under SHARED_DIR/data (copied, then damaged) or
written from scratch, and listed in OUTDIR/cases.tsv as
    name <TAB> expect <TAB> regex
expect: "error"  - scalex must exit 1..127 and stderr must match regex (grep -E -i);
        "warn"   - scalex must exit 0 and stderr must match regex;
        "ok"     - scalex must exit 0;
        "any"    - either exit 0, or exit 1..127 with stderr matching regex.
No case may end in a signal, a timeout, or a sanitizer report.
"""
import gzip
import os
import shutil
import sys

import h5py
import numpy as np

shared, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
data = os.path.join(shared, "data")
H5AD = os.path.join(data, "pbmc_3tech_symphony", "query_3pv1.h5ad")  # anndata 0.8, CSR float32
TENX = os.path.join(data, "tenx_pbmc_chr21_scanpy", "3.0.0")
V3_H5 = os.path.join(TENX, "filtered_feature_bc_matrix.h5")
V3_MTX = os.path.join(TENX, "filtered_feature_bc_matrix", "matrix.mtx.gz")
cases = []


def case(name, expect, regex):
    cases.append((name, expect, regex))
    return os.path.join(out, name)


def copy(src, name):
    dst = os.path.join(out, name)
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)
    return dst


def replace(f, path, values, **kw):
    del f[path]
    f.create_dataset(path, data=values, **kw)


# ---- h5ad --------------------------------------------------------------------------
# truncated: the first 40 % of a real file (superblock intact, objects cut off)
p = case("truncated.h5ad", "error", "truncat|corrupt|cannot (open|read)")
with open(H5AD, "rb") as f:
    blob = f.read()
with open(p, "wb") as f:
    f.write(blob[: int(len(blob) * 0.4)])

# not HDF5 at all, with an .h5ad name
p = case("not_hdf5.h5ad", "error", "not an HDF5 file")
with open(p, "w") as f:
    f.write("cell,gene,count\nA,B,1\n")

# X/shape attribute lies about the number of genes
p = copy(H5AD, case("lying_shape.h5ad", "error", "shape|var|columns|n_vars"))
with h5py.File(p, "r+") as f:
    n, m = f["X"].attrs["shape"]
    f["X"].attrs["shape"] = np.array([n, m + 500], dtype=np.int64)

# a column index beyond n_vars
p = copy(H5AD, case("index_out_of_range.h5ad", "error", "outside|out of range|index"))
with h5py.File(p, "r+") as f:
    ind = f["X/indices"][:]
    ind[len(ind) // 2] = f["X"].attrs["shape"][1] + 7
    replace(f, "X/indices", ind)

# indptr goes down
p = copy(H5AD, case("decreasing_indptr.h5ad", "error", "indptr"))
with h5py.File(p, "r+") as f:
    ptr = f["X/indptr"][:]
    ptr[10] = ptr[11] + 5
    replace(f, "X/indptr", ptr)

# an obs column shorter than obs
p = copy(H5AD, case("obs_wrong_length.h5ad", "error", "obs|rows|length|entries"))
with h5py.File(p, "r+") as f:
    codes = f["obs/donor/codes"][:]
    replace(f, "obs/donor/codes", codes[:-3])

# X/data compressed with LZF (h5py's filter; scalex decodes it with liblzf)
p = copy(H5AD, case("lzf.h5ad", "ok", ""))
with h5py.File(p, "r+") as f:
    replace(f, "X/data", f["X/data"][:], compression="lzf")

# an LZF chunk with garbage in the middle: liblzf must refuse it (bounds-checked), the read
# fail by name
p = copy(H5AD, case("lzf_corrupt.h5ad", "error", "X/data|read failed|corrupt"))
with h5py.File(p, "r+") as f:
    replace(f, "X/data", f["X/data"][:], compression="lzf", chunks=(4096,))
    info = f["X/data"].id.get_chunk_info(0)
with open(p, "r+b") as fh:
    fh.seek(info.byte_offset + 16)
    fh.write(bytes([0xE0, 0xFF, 0xFF, 0xFF] * 64))

# X/data through a filter scalex has no decoder for (blosc, 32001: hdf5plugin's). h5py
# takes an unregistered filter when it is optional and skips it on write, so the file
# names the filter as one that hdf5plugin wrote would.
p = copy(H5AD, case("blosc.h5ad", "error", "filter 32001 \\(blosc\\).*gzip"))
with h5py.File(p, "r+") as f:
    vals = f["X/data"][:]
    del f["X/data"]
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((min(len(vals), 4096),))
    dcpl.set_filter(32001, h5py.h5z.FLAG_OPTIONAL, (0, 0, 0, 0))
    space = h5py.h5s.create_simple((len(vals),))
    ds = h5py.h5d.create(f["X"].id, b"data", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
    ds.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(vals, dtype=np.float32))

# NaN among the counts
p = copy(H5AD, case("nan.h5ad", "error", "NaN|non-finite"))
with h5py.File(p, "r+") as f:
    d = f["X/data"][:]
    d[3] = np.nan
    replace(f, "X/data", d)

# negative counts: accepted with a warning
p = copy(H5AD, case("negative.h5ad", "any", "negative"))
with h5py.File(p, "r+") as f:
    d = f["X/data"][:]
    d[3] = -2
    replace(f, "X/data", d)

# anndata-written empty dataset (0 cells) and duplicate names
import anndata  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

p = case("empty_0_cells.h5ad", "any", "0 cells|empty|no cells")
anndata.AnnData(X=sp.csr_matrix((0, 5), dtype=np.float32),
                var=pd.DataFrame(index=[f"g{i}" for i in range(5)])).write_h5ad(p)
p = case("duplicate_names.h5ad", "ok", "")
ad = anndata.AnnData(X=sp.csr_matrix(np.arange(12, dtype=np.float32).reshape(3, 4)),
                     obs=pd.DataFrame(index=["c", "c", "d"]),
                     var=pd.DataFrame(index=["G", "G", "H", "G"]))
import warnings  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    ad.write_h5ad(p)

# ---- MatrixMarket -----------------------------------------------------------------
# a gzip matrix cut short (real Cell Ranger file, first 30 kB of 74 kB)
p = case("cut_short.mtx.gz", "error", "gzip stream ends early|truncat")
with open(V3_MTX, "rb") as f:
    blob = f.read()
with open(p, "wb") as f:
    f.write(blob[:30000])

# header claims 10^12 entries in a tiny file
p = case("huge_header.mtx", "error", "claims 1000000000000 entries")
with open(p, "w") as f:
    f.write("%%MatrixMarket matrix coordinate integer general\n30000 1000000 1000000000000\n"
            "1 1 1\n")

p = case("nan.mtx", "error", "NaN")
with open(p, "w") as f:
    f.write("%%MatrixMarket matrix coordinate real general\n3 2 2\n1 1 nan\n2 2 1\n")

p = case("out_of_range.mtx", "error", "outside the 3 x 2 matrix")
with open(p, "w") as f:
    f.write("%%MatrixMarket matrix coordinate integer general\n3 2 2\n1 1 1\n9 2 1\n")

p = case("negative.mtx", "warn", "negative")
with open(p, "w") as f:
    f.write("%%MatrixMarket matrix coordinate integer general\n3 2 2\n1 1 -4\n2 2 1\n")

# a 10x folder without its barcodes
d = case("tenx_no_barcodes", "error", "barcodes")
os.makedirs(d, exist_ok=True)
for fn in ("matrix.mtx.gz", "features.tsv.gz"):
    shutil.copyfile(os.path.join(TENX, "filtered_feature_bc_matrix", fn), os.path.join(d, fn))

# ---- text --------------------------------------------------------------------------
p = case("ragged.csv", "error", "ragged")
with open(p, "w") as f:
    f.write("c1,c2,c3\ng1,1,0,2\ng2,0,3\ng3,1,1,1\n")

p = case("ragged.tsv.gz", "error", "ragged")
with gzip.open(p, "wt") as f:
    f.write("gene\tc1\tc2\ng1\t1\t0\ng2\t0\n")

# ---- 10x HDF5 ----------------------------------------------------------------------
p = copy(V3_H5, case("tenx_missing_indices.h5", "error", "matrix/indices is missing"))
with h5py.File(p, "r+") as f:
    del f["matrix/indices"]

p = copy(V3_H5, case("tenx_bad_indptr.h5", "error", "indptr"))
with h5py.File(p, "r+") as f:
    ptr = f["matrix/indptr"][:]
    ptr[-1] += 100
    replace(f, "matrix/indptr", ptr)

# ---- size budget (issue 14): small files that declare or expand to far more -----------
# (the bombs of ../shared/security, smaller, made here: refused before they are allocated)
p = case("budget_dims.mtx", "error", "max_cells")
with open(p, "w") as f:
    f.write("%%MatrixMarket matrix coordinate integer general\n5000000 5000000 1\n1 1 1\n")

p = case("budget_commas.csv.gz", "error", "max_inflate_ratio")
with gzip.open(p, "wb", compresslevel=9) as f:
    f.write(b"," * (20 << 20))

p = copy(V3_H5, case("budget_shape.h5", "error", "max_cells"))
with h5py.File(p, "r+") as f:
    replace(f, "matrix/shape", np.array([507, 3_000_000], dtype=np.int32))

# an h5ad of 3M cells in a few kB: one-byte names and a zero indptr, gzip-9
p = copy(H5AD, case("budget_rows.h5ad", "error", "max_cells"))
N, CH = 3_000_000, 1 << 20
with h5py.File(p, "r+") as f:
    idx = f["obs"].attrs["_index"]
    del f["obs"][idx]
    f["obs"].create_dataset(idx, data=np.full(N, b"a", dtype="S1"), chunks=(CH,),
                            compression="gzip", compression_opts=9)

# a categorical column of 20M int8 codes (a few kB) in front of a 290-cell index
p = copy(H5AD, case("budget_codes.h5ad", "error", "max_inflate_ratio"))
with h5py.File(p, "r+") as f:
    col = next(k for k in f["obs"] if k != f["obs"].attrs["_index"])
    replace(f, f"obs/{col}/codes", np.zeros(20_000_000, dtype=np.int8), chunks=(1 << 20,),
            compression="gzip", compression_opts=9)

# a 10x file whose barcodes outnumber its shape 1000-fold (read only if the lengths agree)
p = copy(V3_H5, case("budget_barcodes.h5", "error", "matrix/barcodes has 20000000 entries"))
with h5py.File(p, "r+") as f:
    replace(f, "matrix/barcodes", np.full(20_000_000, b"a", dtype="S1"), chunks=(1 << 20,),
            compression="gzip", compression_opts=9)

with open(os.path.join(out, "cases.tsv"), "w") as f:
    for c in cases:
        f.write("\t".join(c) + "\n")
print(f"{len(cases)} cases in {out}")
