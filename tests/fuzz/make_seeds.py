#!/usr/bin/env python3
"""Seed corpora for the libFuzzer drivers, generated into the build dir at test time.

Usage: make_seeds.py SHARED_DIR OUTDIR     (the Debian python3: h5py, numpy, anndata)

OUTDIR/<driver>/ gets, per driver: the small real files of SHARED_DIR/data in its format,
the broken-file corpus of tests/corpus/make_corpus.py (OUTDIR/corpus), a few tiny AnnData
files written here (one per storage layout the reader has a branch for), and the hand-made
seeds of tests/fuzz/seeds/<driver>/. Nothing is copied into the repository.
"""
import glob
import gzip
import os
import shutil
import subprocess
import sys

import anndata
import h5py
import numpy as np
import scipy.sparse as sp

shared, out = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(shared, "data")
MAX_SEED = 260 * 1024  # bigger files only slow the mutator down


def dest(driver, name):
    d = os.path.join(out, driver)
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, name.replace("/", "_"))


def add(driver, path, prefix=""):
    if os.path.isfile(path) and os.path.getsize(path) <= MAX_SEED:
        shutil.copyfile(path, dest(driver, prefix + os.path.basename(path)))


def add_bytes(driver, name, b):
    with open(dest(driver, name), "wb") as f:
        f.write(b[:MAX_SEED])


corpus = os.path.join(out, "corpus")
subprocess.run([sys.executable, os.path.join(here, "..", "corpus", "make_corpus.py"), shared,
                corpus], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

# real files from ../shared/data
for p in glob.glob(os.path.join(data, "**", "*"), recursive=True):
    n = os.path.basename(p)
    if n.endswith(".h5ad"):
        add("h5ad", p)
    elif n.endswith(".h5"):
        add("tenx_h5", p)
    elif n.endswith(".gz") and os.path.isfile(p):
        if os.path.getsize(p) <= 40 * 1024:
            add("gzip", p)
        raw = gzip.open(p).read(16 * 1024)  # the head of the text inside, cut at a line
        raw = raw[: raw.rfind(b"\n") + 1]
        if n.endswith(".mtx.gz"):
            add_bytes("mtx", "head_" + n[:-3], raw)
        elif n.endswith((".csv.gz", ".tsv.gz")):
            add_bytes("text", "head_" + n[:-3], raw)
    elif n.endswith(".mtx"):
        add("mtx", p)

# the broken-file corpus
for p in glob.glob(os.path.join(corpus, "*")):
    n = os.path.basename(p)
    if n.endswith(".h5ad"):
        add("h5ad", p, "corpus_")
    elif n.endswith(".h5"):
        add("tenx_h5", p, "corpus_")
    elif n.endswith(".gz"):
        add("gzip", p, "corpus_")
    elif n.endswith(".mtx"):
        add("mtx", p, "corpus_")
    elif n.endswith((".csv", ".tsv", ".txt")):
        add("text", p, "corpus_")

# tiny AnnData files, one per layout the reader branches on (20 cells x 30 genes)
rng = np.random.default_rng(1)
X = rng.poisson(0.6, (20, 30)).astype(np.float32)
obs = {"batch": np.array(["a", "b"] * 10), "n": np.arange(20), "ok": np.arange(20) % 3 == 0}
import pandas as pd  # noqa: E402 (only needed here)
obs_df = pd.DataFrame(obs, index=[f"c{i}" for i in range(20)])
obs_df["batch"] = obs_df["batch"].astype("category")
var_df = pd.DataFrame(index=[f"g{i}" for i in range(30)])
tmp = os.path.join(out, "tmp")
os.makedirs(tmp, exist_ok=True)
for name, x, comp in [("dense", X, None), ("csr", sp.csr_matrix(X), None),
                      ("csc", sp.csc_matrix(X), None), ("gzip", sp.csr_matrix(X), "gzip"),
                      ("lzf", sp.csr_matrix(X), "lzf")]:  # lzf: our own decoder (sx_h5_lzf.c)
    a = anndata.AnnData(X=x, obs=obs_df.copy(), var=var_df.copy())
    if name == "csr":
        a.layers["counts"] = sp.csr_matrix(X)
        a.obsm["X_pca"] = rng.normal(size=(20, 2)).astype(np.float32)
    p = os.path.join(tmp, f"tiny_{name}.h5ad")
    a.write_h5ad(p, compression=comp)
    add("h5ad", p)
    # the same numbers as text for the text, gzip and mtx drivers
    if name == "dense":
        lines = ["," + ",".join(a.obs_names)]
        for j, g in enumerate(a.var_names):
            lines.append(g + "," + ",".join(str(int(v)) for v in X[:, j]))
        csv = ("\n".join(lines) + "\n").encode()
        add_bytes("text", "tiny.csv", csv)
        add_bytes("text", "tiny.tsv", csv.replace(b",", b"\t"))
        add_bytes("gzip", "tiny.csv.gz", gzip.compress(csv))
        r, c = np.nonzero(X.T)
        mtx = ["%%MatrixMarket matrix coordinate integer general", f"30 20 {len(r)}"]
        mtx += [f"{i + 1} {j + 1} {int(X[j, i])}" for i, j in zip(r, c)]
        add_bytes("mtx", "tiny.mtx", ("\n".join(mtx) + "\n").encode())
        add_bytes("gzip", "tiny.mtx.gz", gzip.compress(("\n".join(mtx) + "\n").encode()) + b"\x02")
shutil.rmtree(tmp)

# PyTorch checkpoints (SCALEX folders): the golden config.pt whole, and model.pt's zip with its
# pickle whole but every tensor storage cut to a few bytes (the real one is 6 MB)
import zipfile
ckpt = os.path.join(shared, "golden", "scalex_outdir", "ref", "checkpoint")
if os.path.isfile(os.path.join(ckpt, "config.pt")):
    add("torch", os.path.join(ckpt, "config.pt"))
    buf = os.path.join(out, "torch", "model_small.pt")
    os.makedirs(os.path.dirname(buf), exist_ok=True)
    with zipfile.ZipFile(os.path.join(ckpt, "model.pt")) as zin, \
            zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            b = zin.read(info)
            zout.writestr(info.filename, b if "/data/" not in info.filename else b[:64])

# hand-made seeds
for d in glob.glob(os.path.join(here, "seeds", "*")):
    for p in glob.glob(os.path.join(d, "*")):
        add(os.path.basename(d), p, "hand_")
for d in sorted(os.listdir(out)):
    if d != "corpus":
        print(f"{d}: {len(os.listdir(os.path.join(out, d)))} seeds")
