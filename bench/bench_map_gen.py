#!/usr/bin/python3
"""bench_map_gen.py — the measuring instrument of bench/bench_map.sh (never part of the
product; /usr/bin/python3 with numpy, scipy, h5py, anndata). Subcommands:

  gen OUT.h5ad --cells N [--genes 20000] [--nnz 1500] [--batches 4] [--types 8]
      [--world-seed 1] [--seed 2] [--batch-prefix ref] [--check]
      A 10x-style h5ad: CSR X of float32 negative-binomial counts, obs `batch` and
      `cell_type` (categorical), var_names gene symbols (+ gene_ids, feature_types).
      The biology (genes, their means and dispersions, one gene program per cell type) comes
      from --world-seed, so a reference and a query made with the same world share it and the
      labels are learnable; batches (gene-wise and depth effects), type proportions and cells
      come from --seed. Written in chunks: pass 1 streams data/indices to raw side files
      (only indptr, 8 bytes a cell, stays in memory), pass 2 copies them into contiguous
      datasets of the exact size (the layout anndata's write_h5ad makes uncompressed).
      --check reads the file back with anndata (small sizes) and checks it.
  compose OUTDIR --model REFERENCE.h5 --cells PROJ.h5ad [PROJ.h5ad ...]
      A reference folder for an atlas-size bench (bench/bench_ref1m.sh) without training
      on it: OUTDIR/reference.h5 in the format of core/pipeline/sx_pipeline_ref.c (the
      model of REFERENCE.h5 as it is, and a "reference" group: obs_names, latent, umap,
      obs/<column> and obs_columns, attributes format, format_version, umap_a/umap_b copied
      from REFERENCE.h5) whose cells are the query cells (obs projection == "query") of
      `scalex project --leiden` outputs onto that reference (obsm latent and X_umap placed
      on its fixed layout, obs cell_type, batch, leiden, in file order), and
      OUTDIR/result.json with the sizes the catalog shows.
  limits --file F --threads T --inputs NIN [--hidden 1024] [--latent 10]
      The machine's physical limits measured now, as JSON: page-cache read of F (GB/s),
      memory copy (GB/s), sgemm (GFLOP/s, OpenBLAS through numpy, T threads, the encoder's
      first-layer shape; run it with OPENBLAS_NUM_THREADS=T, read when numpy loads) and a
      loopback curl upload of F to a null sink (MB/s).
  sample --pid PID --spool DIR --out FILE --stop FILE
      Samples every 20 ms (FILE.ready once the first sample is taken) until FILE exists: wall time, CPU seconds (utime+stime) and RSS
      of PID and its descendants (jobs in child processes count), and the largest file size
      in the daemon's spool folder (when it reaches the upload's size the upload is done).
  report --run RUN.json --samples FILE --limits FILE --job-dir DIR --daemon-log FILE
      [--json OUT]
      The per-stage table (wall, CPU, peak RSS, throughput, ratio to the physical limit)
      printed and written as JSON.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import numpy as np

# ---------------------------------------------------------------- gen


def gene_names(rng, n):
    """Unique symbol-like names: 13 mitochondrial genes (SCALEX drops MT-), ribosomal
    proteins, families with numbers, a few lncRNA-style ids."""
    mt = ["MT-ND1", "MT-ND2", "MT-CO1", "MT-CO2", "MT-ATP8", "MT-ATP6", "MT-CO3", "MT-ND3",
          "MT-ND4L", "MT-ND4", "MT-ND5", "MT-ND6", "MT-CYB"][:max(0, min(13, n // 100))]
    fams = ["RPL", "RPS", "ZNF", "SLC", "KRT", "CD", "IL", "CCL", "CXCL", "TMEM", "FAM", "KLF",
            "SOX", "HOX", "NDUF", "PSM", "COL", "ADAM", "ATP", "GPR", "OR", "KIF", "DNAJ",
            "HLA-D", "LINC", "ANKRD", "CCDC", "C1orf", "WDR", "TBC1D"]
    out, seen = list(mt), set(mt)
    i = 0
    while len(out) < n:
        f = fams[rng.integers(len(fams))]
        s = "%s%d" % (f, rng.integers(1, 400))
        if rng.random() < 0.2:
            s += "ABCDEFGHJKLP"[rng.integers(12)]
        if s in seen:
            s = "%s-AS%d" % (s, i)
            i += 1
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out[:n]


class World:
    """Genes and cell-type programs shared by a reference and its queries."""

    def __init__(self, seed, n_genes, n_types):
        rng = np.random.default_rng(seed)
        self.names = gene_names(rng, n_genes)
        self.ids = ["ENSG%011d" % (1000 + 7 * i) for i in range(n_genes)]
        # heavy-tailed relative expression; mitochondrial genes high (~5% of counts)
        logmu = rng.normal(0.0, 1.7, n_genes)
        n_mt = sum(1 for s in self.names if s.startswith("MT-"))
        logmu[:n_mt] = rng.normal(5.0, 0.5, n_mt)
        self.logmu = logmu
        self.theta = np.exp(rng.normal(np.log(2.0), 0.5, n_genes))  # NB dispersion per gene
        # one program per type: ~1% of genes up 4-16x, ~1% down 3x
        self.programs = np.zeros((n_types, n_genes))
        k = max(5, n_genes // 100)
        for t in range(n_types):
            up = rng.choice(np.arange(n_mt, n_genes), k, replace=False)
            dn = rng.choice(np.arange(n_mt, n_genes), k, replace=False)
            self.programs[t, up] += rng.normal(np.log(8), 0.5, k)
            self.programs[t, dn] -= np.log(3)
        self.types = ["type_%02d" % t for t in range(n_types)]


def expected_nnz(lib, m, theta):
    """Mean number of expressed genes of cells with relative expression rows m (cells x
    genes) scaled by lib (cells): P(NB > 0) = 1 - (1 + mean/theta)^-theta."""
    return float(np.mean(np.sum(1.0 - (1.0 + lib[:, None] * m / theta) ** (-theta), axis=1)))


def calibrate(m, lib, theta, nnz):
    """Factor f of the library sizes lib such that cells like m express nnz genes on average
    (bisection in log)."""
    lo, hi = 1e-3, 1e9
    for _ in range(50):
        mid = np.sqrt(lo * hi)
        if expected_nnz(mid * lib, m, theta) < nnz:
            lo = mid
        else:
            hi = mid
    return np.sqrt(lo * hi)


def write_str(g, name, values):
    d = g.create_dataset(name, data=np.array(values, dtype=object),
                         dtype=__import__("h5py").string_dtype())
    d.attrs["encoding-type"] = "string-array"
    d.attrs["encoding-version"] = "0.2.0"


def write_cat(g, name, codes, cats):
    c = g.create_group(name)
    c.attrs["encoding-type"] = "categorical"
    c.attrs["encoding-version"] = "0.2.0"
    c.attrs["ordered"] = False
    write_str(c, "categories", cats)
    d = c.create_dataset("codes", data=codes.astype(np.int8 if len(cats) < 128 else np.int16))
    d.attrs["encoding-type"] = "array"
    d.attrs["encoding-version"] = "0.2.0"


def write_frame(f, name, index, cols):
    """cols: list of (name, kind, payload): kind 'str' (list) or 'cat' (codes, categories)."""
    g = f.create_group(name)
    g.attrs["encoding-type"] = "dataframe"
    g.attrs["encoding-version"] = "0.2.0"
    g.attrs["_index"] = "_index"
    g.attrs["column-order"] = np.array([c[0] for c in cols], dtype=object)
    write_str(g, "_index", index)
    for cname, kind, payload in cols:
        if kind == "str":
            write_str(g, cname, payload)
        else:
            write_cat(g, cname, payload[0], payload[1])


def gen(a):
    import h5py
    t0 = time.time()
    w = World(a.world_seed, a.genes, a.types)
    rng = np.random.default_rng(a.seed)
    G, n = a.genes, a.cells
    # cells: batches contiguous (one file per sample, concatenated), types shuffled inside
    props = rng.dirichlet(np.full(a.types, 2.0))
    # --like M: the batches (effects, depths) and type proportions of the M-cell file of this
    # seed (the random stream drawn as for M cells), then n cells of them: more cells of the
    # batches a reference trained on the M-cell file has seen
    batch = np.sort(rng.integers(0, a.batches, a.like or n))
    ctype = rng.choice(a.types, a.like or n, p=props)
    bfac = rng.normal(0.0, 0.3, (a.batches, G))      # gene-wise batch effect
    bdepth = np.exp(rng.normal(0.0, 0.3, a.batches))  # sequencing depth per batch
    if a.like:
        if a.part:  # another draw of cells of the same batches: files made in parallel
            rng = np.random.default_rng([a.seed, a.part])
        batch = np.sort(rng.integers(0, a.batches, n))
        ctype = rng.choice(a.types, n, p=props)
    # relative expression of each (type, batch) combination, float32 rows summing to 1
    P = np.empty((a.types * a.batches, G), dtype=np.float32)
    for t in range(a.types):
        for b in range(a.batches):
            x = np.exp(w.logmu + w.programs[t] + bfac[b])
            P[t * a.batches + b] = x / x.sum()
    lib = bdepth[batch] * np.exp(rng.normal(0.0, 0.25, n))
    pick = rng.choice(n, min(n, 64), replace=False)  # calibrated on a sample of the cells
    lib *= calibrate(P[ctype[pick] * a.batches + batch[pick]].astype(np.float64), lib[pick],
                     w.theta, a.nnz)
    theta = w.theta.astype(np.float32)
    indptr = np.zeros(n + 1, dtype=np.int64)
    tmp_d, tmp_i = a.out + ".data.tmp", a.out + ".indices.tmp"
    nnz = 0
    step = max(1, min(a.chunk, (40 << 20) // (4 * G)))  # ~40 MB of float32 per slab
    with open(tmp_d, "wb") as fd, open(tmp_i, "wb") as fi:
        for s in range(0, n, step):
            e = min(n, s + step)
            m = P[ctype[s:e] * a.batches + batch[s:e]] * lib[s:e, None].astype(np.float32)
            # a gene is expressed when its NB draw is > 0: P(0) = (1 + m/theta)^-theta, i.e.
            # m > theta * expm1(E / theta) for E ~ Exp(1) (one exponential per entry)
            thr = rng.standard_exponential(m.shape, dtype=np.float32)
            thr /= theta
            np.expm1(thr, out=thr)
            thr *= theta
            r, c = np.nonzero(m > thr)
            mu = m[r, c].astype(np.float64)
            th = w.theta[c]
            # zero-truncated NB by redrawing zeros (few remain for low means: set to 1)
            x = rng.poisson(rng.gamma(th, mu / th))
            for _ in range(3):
                z = np.flatnonzero(x == 0)
                if not z.size:
                    break
                x[z] = rng.poisson(rng.gamma(th[z], mu[z] / th[z]))
            x[x == 0] = 1
            x.astype(np.float32).tofile(fd)
            c.astype(np.int32).tofile(fi)
            indptr[s + 1:e + 1] = nnz + np.cumsum(np.bincount(r, minlength=e - s))
            nnz += len(c)
            if a.progress and (s // step) % 50 == 0:
                print("  gen %s: %d / %d cells, %.0f s" % (os.path.basename(a.out), e, n,
                      time.time() - t0), file=sys.stderr)
    with h5py.File(a.out, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        X = f.create_group("X")
        X.attrs["encoding-type"] = "csr_matrix"
        X.attrs["encoding-version"] = "0.1.0"
        X.attrs["shape"] = np.array([n, G], dtype=np.int64)
        # int32 offsets while they fit, as scipy and anndata write them (scipy 1.10 cannot
        # mix int64 offsets with int32 indices in some operations)
        X.create_dataset("indptr", data=indptr.astype(np.int32) if nnz < 2 ** 31 else indptr)
        for name, tmp, dt in (("data", tmp_d, np.float32), ("indices", tmp_i, np.int32)):
            d = X.create_dataset(name, (nnz,), dtype=dt)
            blk = 16 << 20
            with open(tmp, "rb") as fh:
                for s in range(0, nnz, blk):
                    d[s:min(nnz, s + blk)] = np.fromfile(fh, dtype=dt, count=min(blk, nnz - s))
            os.unlink(tmp)
        bnames = ["%s_b%d" % (a.batch_prefix, b) for b in range(a.batches)]
        write_frame(f, "obs", ["%s_%08d" % (a.batch_prefix, a.part * n + i) for i in range(n)],
                    [("batch", "cat", (batch, bnames)), ("cell_type", "cat", (ctype, w.types))])
        write_frame(f, "var", w.names, [("gene_ids", "str", w.ids),
                                        ("feature_types", "str", ["Gene Expression"] * G)])
        for k in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
            g = f.create_group(k)
            g.attrs["encoding-type"] = "dict"
            g.attrs["encoding-version"] = "0.1.0"
    size = os.path.getsize(a.out)
    print("generated %s: %d cells x %d genes, %.0f non-zeros per cell, %.1f MB in %.1f s"
          % (os.path.basename(a.out), n, G, nnz / n, size / 1e6, time.time() - t0))
    if a.check:
        check(a.out, n, G, nnz, a.types, a.batches)


def check(path, n, G, nnz, n_types, n_batches):
    """Read back with anndata (the independent reader) and check what bench_map relies on."""
    import anndata
    import scipy.sparse as sp
    ad = anndata.read_h5ad(path)
    assert ad.shape == (n, G), ad.shape
    assert sp.issparse(ad.X) and ad.X.format == "csr" and ad.X.dtype == np.float32
    assert ad.X.nnz == nnz and ad.X.has_sorted_indices
    assert np.all(ad.X.data >= 1) and np.all(ad.X.data == np.round(ad.X.data))
    assert ad.var_names.is_unique and ad.obs_names.is_unique
    assert ad.obs["cell_type"].dtype.name == "category" and ad.obs["batch"].dtype.name == "category"
    assert ad.obs["batch"].nunique() <= n_batches and ad.obs["cell_type"].nunique() <= n_types
    # the programs make types separable: mean profile of a type's markers differs
    per_cell = np.diff(ad.X.indptr)
    print("anndata %s reads it: %s, X %s csr float32, %.0f +- %.0f genes per cell, "
          "batches %s, %d cell types, MT- genes %d" % (
              anndata.__version__, ad.shape, ad.X.dtype, per_cell.mean(), per_cell.std(),
              list(ad.obs["batch"].cat.categories), ad.obs["cell_type"].nunique(),
              sum(ad.var_names.str.startswith("MT-"))))

# ---------------------------------------------------------------- limits


def compose(a):
    import h5py
    t0 = time.time()
    os.makedirs(a.outdir, exist_ok=True)
    out = os.path.join(a.outdir, "reference.h5")
    tmp = out + ".part"
    vstr = h5py.string_dtype("utf-8")
    with h5py.File(a.model, "r") as src, h5py.File(tmp, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for k in src:
            if k != "reference":
                src.copy(k, dst)  # the model: state, scale, genes, domains, train_log
        cols = [c.decode() if isinstance(c, bytes) else c for c in src["reference/obs_columns"][:]]
        ra = dict(src["reference"].attrs)
        parts = {"names": [], "latent": [], "umap": []}
        obs = {c: [] for c in cols}
        for path in a.cells:
            with h5py.File(path, "r") as f:
                pc = list(f["obs/projection/categories"].asstr()[:])
                q = f["obs/projection/codes"][:] == pc.index("query")  # not the model's cells
                parts["names"].append(f["obs/_index"].asstr()[:][q])
                parts["latent"].append(f["obsm/latent"][:][q].astype(np.float64))
                parts["umap"].append(f["obsm/X_umap"][:][q].astype(np.float32))
                for c in cols:
                    cats = np.array(f["obs/%s/categories" % c].asstr()[:], dtype=object)
                    obs[c].append(cats[f["obs/%s/codes" % c][:][q]])
        names = np.concatenate(parts["names"])
        n = len(names)
        g = dst.create_group("reference")
        for k, v in ra.items():
            g.attrs[k] = v
        kw = dict(compression="gzip", compression_opts=4)
        g.create_dataset("obs_names", data=names.astype(object), dtype=vstr,
                         chunks=(min(n, 4096),), **kw)
        g.create_dataset("latent", data=np.concatenate(parts["latent"]), **kw)
        g.create_dataset("umap", data=np.concatenate(parts["umap"]), **kw)
        go = g.create_group("obs")
        for c in cols:
            go.create_dataset(c, data=np.concatenate(obs[c]).astype(object), dtype=vstr,
                              chunks=(min(n, 4096),), **kw)
        g.create_dataset("obs_columns", data=np.array(cols, dtype=object), dtype=vstr)
        genes = len(src["genes"])
    os.replace(tmp, out)
    with open(os.path.join(a.outdir, "result.json"), "w") as f:
        json.dump({"job": "compose (bench_map_gen.py)", "version": "0.1.0", "n_obs": int(n),
                   "n_vars": int(genes), "model": os.path.abspath(a.model),
                   "cells_from": [os.path.abspath(c) for c in a.cells]}, f, indent=1)
    print("composed %s: %d cells, obs %s, %.1f MB in %.1f s"
          % (out, n, ",".join(cols), os.path.getsize(out) / 1e6, time.time() - t0))


def best_of(k, fn):
    return min(fn() for _ in range(k))


def page_cache_read(path):
    """GB/s of read() of a file that is in the page cache (read once first to warm it)."""
    buf = bytearray(16 << 20)
    mv = memoryview(buf)

    def once():
        t = time.perf_counter()
        with open(path, "rb", buffering=0) as f:
            while f.readinto(mv):
                pass
        return time.perf_counter() - t
    once()
    return os.path.getsize(path) / best_of(3, once) / 1e9


def memcpy_bw():
    """GB/s copied by one thread (256 MiB arrays): the bandwidth a streaming pass can use."""
    src = np.ones(32 << 20, dtype=np.float64)
    dst = np.empty_like(src)

    def once():
        t = time.perf_counter()
        np.copyto(dst, src)
        return time.perf_counter() - t
    once()
    return src.nbytes / best_of(3, once) / 1e9


def sgemm_rate(rows, inputs, hidden):
    """GFLOP/s of a float32 (rows x inputs) @ (inputs x hidden) product through OpenBLAS."""
    rng = np.random.default_rng(0)
    A = rng.random((rows, inputs), dtype=np.float32)
    B = rng.random((inputs, hidden), dtype=np.float32)

    def once():
        t = time.perf_counter()
        A @ B
        return time.perf_counter() - t
    once()
    return 2.0 * rows * inputs * hidden / best_of(3, once) / 1e9


def loopback_upload(path):
    """MB/s of `curl -T FILE` to a loopback HTTP sink that discards the body: what curl and
    the kernel's loopback allow an upload, with no hashing, disk or validation."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def sink():
        conn, _ = srv.accept()
        buf = bytearray(4 << 20)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(65536)
            if not chunk:
                return
            head += chunk
        hdr, _, rest = head.partition(b"\r\n\r\n")
        m = re.search(rb"content-length:\s*(\d+)", hdr, re.I)
        left = int(m.group(1)) - len(rest) if m else 0
        mv = memoryview(buf)
        while left > 0:
            got = conn.recv_into(mv, min(len(buf), left))
            if not got:
                break
            left -= got
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        conn.close()
    th = threading.Thread(target=sink, daemon=True)
    th.start()
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", "-H", "Expect:",
                          "-H", "Content-Type: application/octet-stream", "-X", "POST", "-T", path,
                          "http://127.0.0.1:%d/" % port], capture_output=True, text=True,
                         check=True)
    th.join(10)
    srv.close()
    return os.path.getsize(path) / float(out.stdout) / 1e6


def limits(a):
    r = {"threads": a.threads,
         "page_cache_read_GBps": page_cache_read(a.file),
         "memcpy_GBps": memcpy_bw(),
         "sgemm_GFLOPs": sgemm_rate(4096, a.inputs, a.hidden),
         "loopback_upload_MBps": loopback_upload(a.file),
         "sgemm_shape": [4096, a.inputs, a.hidden]}
    json.dump(r, sys.stdout)
    print()

# ---------------------------------------------------------------- sample


def proc_tree(root):
    """root and its live descendants (jobs that run in child processes)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_rss(pids, root, hz):
    cpu, rss = 0.0, 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                s = f.read()
            v = s[s.rindex(")") + 2:].split()
            cpu += (int(v[11]) + int(v[12])) / hz  # utime, stime
            if p == root:
                cpu += (int(v[13]) + int(v[14])) / hz  # reaped children
            with open("/proc/%d/statm" % p) as f:
                rss += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            pass
    return cpu, rss


def sample(a):
    hz = os.sysconf("SC_CLK_TCK")
    rows, tick = [], 0
    pids = proc_tree(a.pid)
    while not os.path.exists(a.stop):
        if tick % 10 == 0:  # the process tree changes rarely: rescan every 200 ms
            pids = proc_tree(a.pid)
        tick += 1
        cpu, rss = cpu_rss(pids, a.pid, hz)
        spool = 0
        try:  # raw bodies spool to <rid>.part, multipart parts to <rid>.d/<name>
            for e in os.scandir(a.spool):
                if e.is_dir():
                    for x in os.scandir(e.path):
                        spool = max(spool, x.stat().st_size)
                else:
                    spool = max(spool, e.stat().st_size)
        except OSError:
            pass
        rows.append((time.time(), cpu, rss, spool))
        if len(rows) == 1:
            open(a.stop + ".ready", "w").close()
        time.sleep(a.interval)
    with open(a.out, "w") as f:
        json.dump(rows, f)

# ---------------------------------------------------------------- report


def iso_s(s):
    """'2026-12-05T11:09:26.123Z' -> epoch seconds."""
    import calendar
    base, _, frac = s.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))


def window(rows, t0, t1):
    """CPU seconds and peak RSS of the samples in [t0, t1] (CPU: difference of the samples
    that bracket the window, so a short stage still gets the CPU of its 20 ms slot)."""
    if not rows or t1 <= t0:
        return None, None
    before = [r for r in rows if r[0] <= t0]
    after = [r for r in rows if r[0] >= t1]
    a = before[-1] if before else rows[0]
    b = after[0] if after else rows[-1]
    inside = [r[2] for r in rows if t0 <= r[0] <= t1] or [a[2], b[2]]
    return b[1] - a[1], max(inside)


def model_shape(run):
    """The encoder's shape (input genes, hidden units, latent dim) from the reference's
    reference.h5, and the query's nonzeros that fall in the input genes (from the first 20,000
    cells): the work of a sparse first layer."""
    import h5py
    ref = os.path.join(run.get("reference_dir", ""), "reference.h5")
    if os.path.exists(ref):
        with h5py.File(ref, "r") as f:
            genes = set(g.decode() if isinstance(g, bytes) else g for g in f["genes"][:])
            w = f.get("state/encoder.enc.net.0.fc.weight")
            if w is not None:
                run["hidden"], run["ref_genes"] = int(w.shape[0]), int(w.shape[1])
            if "reference/latent" in f:
                run["latent_dim"] = int(f["reference/latent"].shape[1])
        with h5py.File(run["query_path"], "r") as f:
            names = f["var/_index"][:]
            keep = np.array([(n.decode() if isinstance(n, bytes) else n) in genes for n in names])
            ip = f["X/indptr"]
            end = int(ip[min(len(ip) - 1, 20000)])
            idx = f["X/indices"][:end]
        run["query_nnz_in_ref_genes"] = int(run["query_nnz"] * (keep[idx].mean() if end else 0))


def gnu_time(path):
    """wall, CPU and peak RSS of a `/usr/bin/time -v` record."""
    t = {}
    for line in open(path):
        k, _, v = line.strip().rpartition(": ")
        if k == "User time (seconds)" or k == "System time (seconds)":
            t["cpu_s"] = t.get("cpu_s", 0.0) + float(v)
        elif k.startswith("Elapsed (wall clock) time"):
            sec = 0.0
            for part in v.split(":"):
                sec = sec * 60 + float(part)
            t["wall_s"] = sec
        elif k == "Maximum resident set size (kbytes)":
            t["peak_rss_MiB"] = int(v) / 1024
    return t


def metrics_delta(before, after):
    """The daemon's Prometheus series that changed during the map: counters as deltas
    (name -> delta), gauges (memory, references) as their value after it."""
    def load(p):
        d = {}
        try:
            for line in open(p):
                if line.startswith("#") or " " not in line:
                    continue
                k, _, v = line.rstrip().rpartition(" ")
                try:
                    d[k] = float(v)
                except ValueError:
                    pass
        except OSError:
            pass
        return d
    b, e = load(before), load(after)
    gauge = ("_bytes", "_references", "scalexd_references", "_running", "_depth")
    return {k: e[k] if k.endswith(gauge) or k in gauge else e[k] - b.get(k, 0.0)
            for k in e if e[k] != b.get(k, 0.0) or k.endswith(gauge)}


ISSUE_FIRST_S = 27.5  # issue 15: 100k x 5k query onto a 58k reference, job time, quiet machine


def load_run(a):
    """run.json completed with what the answer, the query file and the reference say."""
    import h5py
    run = json.load(open(a.run))
    answer = json.load(open(a.map))
    with h5py.File(run["query_path"], "r") as f:
        run["query_nnz"] = int(f["X/indptr"][-1])
        ct = f["obs/cell_type"]
        cats = [c.decode() if isinstance(c, bytes) else c for c in ct["categories"][:]]
        truth = dict(zip((c.decode() if isinstance(c, bytes) else c for c in f["obs/_index"][:]),
                         (cats[i] for i in ct["codes"][:])))
    labels = answer.get("labels", [])
    hits = sum(truth.get(x["cell"]) == x["label"] for x in labels)
    run["label_accuracy"] = hits / len(labels) if labels else None
    run["labelled_cells"] = len(labels)
    model_shape(run)
    if a.time_file and os.path.exists(a.time_file):
        run["training"] = gnu_time(a.time_file)
    if a.metrics:
        run["metrics"] = metrics_delta(a.metrics[0], a.metrics[1])
    return run, answer["job"]


def stored_time(daemon_log):
    """Time of the last "dataset stored" line of the daemon's JSON log (validation's end)."""
    t = None
    for line in open(daemon_log, errors="replace"):
        if "dataset stored" in line:
            try:
                t = iso_s(json.loads(line)["ts"])
            except (ValueError, KeyError):
                pass
    return t


def stage_limits(run, lim):
    """stage -> (seconds the stage's work takes at the machine's limit measured now, what
    that is): the ratio measured / limit is 1 at the limit."""
    nq, nref, dim = run["query_cells"], run["ref_cells"], run["latent_dim"]
    n_in, hidden, size = run["ref_genes"], run["hidden"], run["query_bytes"]
    csr = run["query_nnz"] * 8 + (nq + 1) * 8
    nnz_in = run.get("query_nnz_in_ref_genes", run["query_nnz"] * n_in / max(1, run["genes"]))
    k, ep = 30, (100 if nq <= 10000 else 30)  # UMAP neighbours (SCALEX), transform epochs
    bw, pc = lim["memcpy_GBps"] * 1e9, lim["page_cache_read_GBps"] * 1e9
    fl, up = lim["sgemm_GFLOPs"] * 1e9, lim["loopback_upload_MBps"] * 1e6
    out = run.get("output_bytes", 0)
    knn = 2.0 * nq * nref * dim / fl
    read = (csr / pc, "CSR %.0f MB at page-cache read %.2f GB/s" % (csr / 1e6, pc / 1e9))
    return {
        "upload": (size / up, "%.0f MB at loopback %.0f MB/s" % (size / 1e6, up / 1e6)),
        "validate": read,
        "read": read,
        "preprocess": (csr / bw, "one pass over %.0f MB at memcpy %.2f GB/s" % (csr / 1e6, bw / 1e9)),
        # the sparse first layer's work (query nonzeros in the model's genes x hidden), then
        # hidden -> mean and variance of the latent, at the dense sgemm rate (a sparse product
        # does not beat it); the dense product's time is in the note
        "encode": ((2.0 * nnz_in * hidden + 2.0 * nq * hidden * 2 * dim) / fl,
                   "sparse 2*%.1fM nnz*%d + head FLOP at sgemm %.0f GFLOP/s (dense %dx%d: %.2f s)"
                   % (nnz_in / 1e6, hidden, fl / 1e9, nq, n_in,
                      2.0 * nq * (n_in * hidden + hidden * 2 * dim) / fl)),
        "knn": (knn, "exact 2*%d*%d*%d FLOP at sgemm" % (nq, nref, dim)),
        "transfer": (knn, "exact kNN 2*%d*%d*%d FLOP at sgemm" % (nq, nref, dim)),
        # exact kNN, then the epochs: each edge and its 5 negative samples move 2 float32
        "umap": (knn + nq * k * ep * 6 * 16 / bw,
                 "exact kNN at sgemm + %d x k %d x %d epochs x 6 moves of 16 B at memcpy"
                 % (nq, k, ep)),
        "write": (out / bw, "%.0f MB of outputs at memcpy" % (out / 1e6)),
    }


KNOWN = ("read", "preprocess", "encode", "write_x", "knn", "transfer", "leiden", "umap", "write")
NOTES = {"upload": "request start -> spool file complete",
         "validate": "streamed check of the upload", "queue": "dataset stored -> job started",
         "umap": "UMAP transform onto the reference layout",
         "write_x": "the query's X into adata.h5ad, then freed (before the kNN)",
         "other": "job time outside the pipeline's stages (executor, results)",
         "answer": "job end -> map response received"}


def stage_table(rows, windows, limits):
    """One row per (name, t0, t1) window: wall, CPU and peak RSS from the samples."""
    table = []
    for name, t0, t1, note in windows:
        if t0 is None or t1 is None:
            table.append({"stage": name, "wall_s": None, "note": note or "not measured"})
            continue
        cpu, rss = window(rows, t0, t1)
        lim_s, what = limits.get(name, (None, ""))
        table.append({"stage": name, "wall_s": t1 - t0, "cpu_s": cpu,
                      "peak_rss_MiB": rss / 2 ** 20 if rss else None, "limit_s": lim_s,
                      "ratio_to_limit": (t1 - t0) / lim_s if lim_s else None, "limit": what,
                      "note": note or NOTES.get(name, "")})
    return table


def report(a):
    run, job = load_run(a)
    rows = json.load(open(a.samples))
    lim = json.load(open(a.limits))
    timings = json.load(open(os.path.join(a.job_dir, "result.json"))).get("timings", {})
    # the pipeline's stages run back to back from the job's start; the upload is over when
    # the spool file reaches the file's size, validation when the dataset is stored
    t_start, t_fin = iso_s(job["started"]), iso_s(job["finished"])
    t_req, size = run["t_request"], run["query_bytes"]
    t_up = next((r[0] for r in rows if r[3] >= size), None)
    t_stored = stored_time(a.daemon_log) or iso_s(job["created"])
    stages, t = {}, t_start
    for name, secs in timings.items():
        stages[name] = (t, t + secs)
        t += secs
    win = [("upload", t_req, t_up, ""), ("validate", t_up, t_stored, ""),
           ("queue", t_stored, t_start, "")]
    for name in KNOWN:
        if name in stages:
            note = "kNN + vote (the job times them as one stage)" \
                if name == "transfer" and "knn" not in stages else ""
            win.append((name, stages[name][0], stages[name][1], note))
        elif name == "knn":
            win.append(("knn", None, None, "inside 'transfer'"))
    win += [(n, b, e, "new stage") for n, (b, e) in stages.items() if n not in KNOWN]
    win += [("other", t, t_fin, ""), ("answer", t_fin, run["t_response"], "")]
    table = stage_table(rows, win, stage_limits(run, lim))
    job_s = job["timings"]["run_seconds"]
    cpu_job, _ = window(rows, t_start, t_fin)
    nq = run["query_cells"]
    csr = run["query_nnz"] * 8 + (nq + 1) * 8
    # a streamed query (chunk_cells) reads X slab by slab inside "preprocess": its read rate is
    # then an upper bound on the time, read + preprocess, not the metadata read alone
    try:
        streamed = "(streamed," in open(os.path.join(a.job_dir, "log.txt")).read()
    except OSError:
        streamed = False
    read_s = (timings.get("read", 0) + timings.get("preprocess", 0)) if streamed else timings.get("read")
    summary = {"query_cells": nq, "ref_cells": run["ref_cells"], "genes": run["genes"],
               "query_nnz_per_cell": run["query_nnz"] / max(1, nq),
               "ref_genes_used": run["ref_genes"], "query_file_MB": size / 1e6, "job_s": job_s,
               "job_cpu_s": cpu_job,
               "daemon_peak_rss_MiB": max(r[2] for r in rows) / 2 ** 20 if rows else None,
               "end_to_end_s": run["t_response"] - t_req,
               "issue_first_measurement_s": ISSUE_FIRST_S,
               "job_over_first": job_s / ISSUE_FIRST_S, "speedup_vs_first": ISSUE_FIRST_S / job_s,
               "upload_MBps": size / 1e6 / (t_up - t_req) if t_up and t_up > t_req else None,
               "read_GBps": csr / 1e9 / read_s if read_s else None,
               "read_streamed": streamed,
               "threads": run["threads"], "load_average": run.get("load_average"),
               "label_accuracy": run.get("label_accuracy"),
               "labelled_cells": run.get("labelled_cells")}
    summary["outputs"] = {e.name: e.stat().st_size for e in os.scandir(a.job_dir) if e.is_file()}
    doc = {"summary": summary, "stages": table, "limits": lim, "timings_result_json": timings,
           "training": run.get("training"), "metrics": run.get("metrics"), "run": run}
    print_table(doc)
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)
        print("written: %s" % a.json)


def fmt(v, f):
    return "-" if v is None else f % v


def print_table(doc):
    s, lim = doc["summary"], doc["limits"]
    print()
    print("bench_map: %d-cell query onto a %d-cell reference, %d genes (%d used by the model), "
          "%.0f nonzeros/cell, %.0f MB h5ad, %d threads, load average %s"
          % (s["query_cells"], s["ref_cells"], s["genes"], s["ref_genes_used"],
             s["query_nnz_per_cell"], s["query_file_MB"], s["threads"], s["load_average"]))
    print("limits measured now: page-cache read %.2f GB/s, memcpy %.2f GB/s, sgemm %.0f GFLOP/s "
          "(%d threads), loopback upload %.0f MB/s"
          % (lim["page_cache_read_GBps"], lim["memcpy_GBps"], lim["sgemm_GFLOPs"], lim["threads"],
             lim["loopback_upload_MBps"]))
    print("%-11s %9s %9s %10s %10s %9s  %s" % ("stage", "wall s", "CPU s", "peak MiB",
                                                "limit s", "x limit", "limit / note"))
    for r in doc["stages"]:
        if r.get("wall_s") is None:
            print("%-11s %9s %9s %10s %10s %9s  %s" % (r["stage"], "-", "-", "-", "-", "-", r["note"]))
            continue
        print("%-11s %9.3f %9s %10s %10s %9s  %s" % (
            r["stage"], r["wall_s"], fmt(r["cpu_s"], "%.2f"), fmt(r["peak_rss_MiB"], "%.0f"),
            fmt(r["limit_s"], "%.3f"), fmt(r["ratio_to_limit"], "%.1f"),
            "; ".join(x for x in (r.get("limit"), r.get("note")) if x)))
    print("job time %.2f s (CPU %s s), peak RSS of the daemon and its children %s MiB; "
          "end to end %.2f s" % (s["job_s"], fmt(s["job_cpu_s"], "%.1f"),
                                fmt(s["daemon_peak_rss_MiB"], "%.0f"), s["end_to_end_s"]))
    print("vs the issue's first measurement (%.1f s, 100k x 5k onto 58k): job time / first = %.3f "
          "(speed-up %.2fx); targets 100k onto 100k <= 5 s, onto 1M <= 8 s, 10k <= 1 s"
          % (s["issue_first_measurement_s"], s["job_over_first"], s["speedup_vs_first"]))
    print("upload %s MB/s (target >= 400), read %s GB/s of CSR (target >= 1)%s"
          % (fmt(s["upload_MBps"], "%.0f"), fmt(s["read_GBps"], "%.2f"),
             " counting read + preprocess: the query was streamed, its X read in slabs while"
             " preprocessing" if s.get("read_streamed") else ""))
    print("job outputs: " + ", ".join("%s %.1f MB" % (k, v / 1e6) for k, v in
                                       sorted(s["outputs"].items(), key=lambda x: -x[1])))
    print("transferred labels: %d cells, accuracy against the query's true cell types %s"
          % (s["labelled_cells"] or 0, fmt(s["label_accuracy"], "%.4f")))
    m = doc.get("metrics") or {}
    if m:
        print("daemon /metrics: job duration %s s, %s MB uploaded, resident %s MiB, references "
              "loaded %s MiB" % (fmt(m.get("scalexd_job_duration_seconds_sum"), "%.2f"),
                                 fmt(m.get("scalexd_upload_bytes_total", 0) / 1e6, "%.0f"),
                                 fmt(m.get("scalexd_resident_memory_bytes", 0) / 2 ** 20, "%.0f"),
                                 fmt(m.get("scalexd_references_loaded_bytes", 0) / 2 ** 20, "%.0f")))
    t = doc.get("training")
    if t:
        print("reference training (scalex integrate, GNU time): wall %s s, CPU %s s, peak RSS %s MiB"
              % (fmt(t.get("wall_s"), "%.1f"), fmt(t.get("cpu_s"), "%.1f"),
                 fmt(t.get("peak_rss_MiB"), "%.0f")))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("out")
    g.add_argument("--cells", type=int, required=True)
    g.add_argument("--genes", type=int, default=20000)
    g.add_argument("--nnz", type=int, default=1500)
    g.add_argument("--batches", type=int, default=4)
    g.add_argument("--types", type=int, default=8)
    g.add_argument("--world-seed", type=int, default=1)
    g.add_argument("--seed", type=int, default=2)
    g.add_argument("--batch-prefix", default="ref")
    g.add_argument("--chunk", type=int, default=2000)
    g.add_argument("--like", type=int, default=0,
                   help="batches and type proportions of the file this seed makes with LIKE cells")
    g.add_argument("--part", type=int, default=0,
                   help="with --like: part P of a set made as several files (other cells, names from P*cells)")
    g.add_argument("--check", action="store_true")
    g.add_argument("--progress", action="store_true")
    co = sub.add_parser("compose")
    co.add_argument("outdir")
    co.add_argument("--model", required=True)
    co.add_argument("--cells", nargs="+", required=True)
    li = sub.add_parser("limits")
    li.add_argument("--file", required=True)
    li.add_argument("--threads", type=int, default=1)
    li.add_argument("--inputs", type=int, default=2000)
    li.add_argument("--hidden", type=int, default=1024)
    sa = sub.add_parser("sample")
    sa.add_argument("--pid", type=int, required=True)
    sa.add_argument("--spool", required=True)
    sa.add_argument("--out", required=True)
    sa.add_argument("--stop", required=True)
    sa.add_argument("--interval", type=float, default=0.02)
    r = sub.add_parser("report")
    for k in ("--run", "--map", "--samples", "--limits", "--job-dir", "--daemon-log"):
        r.add_argument(k, required=True)
    r.add_argument("--metrics", nargs=2)
    r.add_argument("--time-file")
    r.add_argument("--json")
    a = p.parse_args()
    {"gen": gen, "compose": compose, "limits": limits, "sample": sample, "report": report}[a.cmd](a)


if __name__ == "__main__":
    main()
