#!/usr/bin/env bash
# Summarising a file larger than the memory it may use: `scalex inspect` streams X in fixed
# slabs, so its peak RSS (getrusage of the child, measured by python) depends on the number
# of cells (names, row offsets), not on the stored values. Two generated h5ad files with the
# same 100,000 cells: 10 M and 100 M stored values (80 MB and 800 MB of CSR). The larger
# may cost at most 48 MiB more, and at most an eighth of its CSR size above the program's own
# start-up footprint (which a sanitizer build makes larger); the counts must equal
# what numpy computes from the same arrays.
set -u
: "${SX_SHARED:?run through ctest}" "${SCALEX_BIN:?}" "${SX_PYTHON:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# ASan keeps freed blocks in a quarantine (256 MB by default) that would count as RSS
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}:quarantine_size_mb=16"
"$SX_PYTHON" - "$SCALEX_BIN" "$tmp" <<'PY'
import json, os, resource, subprocess, sys
import h5py, numpy as np

scalex, tmp = sys.argv[1], sys.argv[2]
N, M = 100_000, 20_000


def generate(path, per):
    """N x M CSR, `per` values a row at evenly spaced columns with a random offset."""
    rng = np.random.default_rng(per)
    total = 0.0
    with h5py.File(path, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        X = f.create_group("X")
        X.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0",
                        "shape": [N, M]})
        X["indptr"] = np.arange(0, (N + 1) * per, per, dtype=np.int64)
        d = X.create_dataset("data", (N * per,), dtype="f4", chunks=(1 << 20,))
        ix = X.create_dataset("indices", (N * per,), dtype="i4", chunks=(1 << 20,))
        base = np.arange(per, dtype=np.int32) * (M // per)
        step = max(1, 10_000_000 // per)  # rows per block written
        for r0 in range(0, N, step):
            r1 = min(N, r0 + step)
            off = rng.integers(0, M // per, size=(r1 - r0, 1), dtype=np.int32)
            vals = rng.integers(1, 20, size=(r1 - r0) * per).astype(np.float32)
            ix[r0 * per:r1 * per] = (base[None, :] + off).ravel()
            d[r0 * per:r1 * per] = vals
            total += float(vals.sum(dtype=np.float64))
        for grp, size in (("obs", N), ("var", M)):
            g = f.create_group(grp)
            g.attrs.update({"encoding-type": "dataframe", "encoding-version": "0.2.0",
                            "_index": "_index", "column-order": np.array([], dtype="S1")})
            g.create_dataset("_index", data=np.char.add(grp[0].encode(), np.arange(size).astype("S8")),
                             dtype=h5py.string_dtype())
    return total


def peak_of(args):
    """Run scalex ARGS in a child of its own: (its result, its peak RSS in bytes)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: run scalex, report its own children's peak
        os.close(r)
        out = subprocess.run([scalex] + args, capture_output=True, text=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        os.write(w, json.dumps({"rc": out.returncode, "out": out.stdout, "err": out.stderr[-400:],
                                "peak": peak}).encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 1 << 16)
        if not b:
            break
        chunks.append(b)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


def inspect(path, per, total):
    """inspect path; its peak RSS in bytes."""
    res = peak_of(["inspect", "--json", path])
    if res["rc"] != 0:
        sys.exit(f"FAIL inspect exited {res['rc']}: {res['err']}")
    got = json.loads(res["out"])
    if (got["n_obs"], got["n_vars"], got["nnz"]) != (N, M, N * per):
        sys.exit(f"FAIL {path}: {got['n_obs']} x {got['n_vars']}, nnz {got['nnz']}")
    if abs(got["x_sum"] - total) > 1e-9 * total:
        sys.exit(f"FAIL {path}: x_sum {got['x_sum']} vs numpy {total}")
    csr = N * per * 8 + (N + 1) * 8
    print(f"inspect {N} x {M}, {N * per} values: CSR {csr / 2**20:.0f} MiB, "
          f"peak RSS {res['peak'] / 2**20:.1f} MiB")
    return res["peak"], csr


# the program's own footprint (code, libraries, a sanitizer's runtime) is no cost of the file:
# the bound below is on what the file adds to it
p_start = peak_of(["--version"])["peak"]
print(f"scalex --version: peak RSS {p_start / 2**20:.1f} MiB")
small = os.path.join(tmp, "small.h5ad")
p_small, _ = inspect(small, 100, generate(small, 100))
os.remove(small)
big = os.path.join(tmp, "big.h5ad")
p_big, csr_big = inspect(big, 1000, generate(big, 1000))
bad = []
if p_big - p_small > 48 * 2**20:
    bad.append(f"10x the values cost {(p_big - p_small) / 2**20:.1f} MiB more: not streaming")
if p_big - p_start > csr_big / 8:
    bad.append(f"peak {p_big / 2**20:.1f} MiB ({(p_big - p_start) / 2**20:.1f} above the "
               f"program's start) is over an eighth of the CSR size")
if bad:
    sys.exit("FAIL " + "; ".join(bad))
print("io_streaming: ok")
PY
