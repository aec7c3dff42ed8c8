#!/usr/bin/env bash
# scalex integrate + project on pbmc_3tech (reference 3pv2+5p -> query 3pv1): outputs exist,
# anndata reads them with the expected obsm/obs/var, figures are valid and not blank, the same
# seed + threads give identical numbers, --help and bad options behave.
set -euo pipefail
: "${SCALEX_BIN:?run through ctest}" "${SX_SHARED:?}" "${SX_PYTHON:?}"
D="$SX_SHARED/data/pbmc_3tech_symphony"
ITER=200
[ "${SX_SANITIZE:-0}" = 1 ] && ITER=60
T=$(mktemp -d "${TMPDIR:-/tmp}/sxpipe-XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# --help lists every option with its default, exits 0
"$SCALEX_BIN" integrate --help >"$T/help.txt" || fail "integrate --help exited $?"
for o in data_list batch_name min_features n_top_features max_iteration seed lr batch_size eval ignore_umap; do
  grep -q -- "--$o" "$T/help.txt" || fail "--help does not list --$o"
done
grep -q "default: 30000" "$T/help.txt" || fail "--help does not show max_iteration's default"
# (to a file: `| grep -q` exits at its match, and under pipefail the writer's SIGPIPE fails it)
"$SCALEX_BIN" project --help >"$T/help_p.txt" || fail "project --help exited $?"
grep -q -- "--projection" "$T/help_p.txt" || fail "project --help does not list --projection"
"$SCALEX_BIN" transfer --help >"$T/help_t.txt" || fail "transfer --help exited $?"
grep -q -- "--reference" "$T/help_t.txt" || fail "transfer --help does not list --reference"

# bad options: non-zero exit and a message naming the problem
set +e
"$SCALEX_BIN" integrate --data_list "$D/query_3pv1.h5ad" --no_such_option 1 -o "$T/x" 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q "no_such_option" "$T/err" || fail "unknown option: rc $rc, $(cat "$T/err")"
"$SCALEX_BIN" integrate --data_list "$D/query_3pv1.h5ad" --max_iteration lots -o "$T/x" 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q "whole number" "$T/err" || fail "bad int: rc $rc"
"$SCALEX_BIN" integrate --data_list "$D/query_3pv1.h5ad" --profile DNA -o "$T/x" 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q "RNA|ATAC" "$T/err" || fail "bad choice: rc $rc"
"$SCALEX_BIN" integrate --data_list "$T/missing.h5ad" -o "$T/x" 2>"$T/err"; rc=$?
[ $rc -ne 0 ] && grep -q "missing.h5ad" "$T/err" || fail "missing input: rc $rc"
# min_features 600 (the default) removes every pbmc_3tech cell: a clear error, not a crash
"$SCALEX_BIN" integrate --data_list "$D/reference_3pv2_5p.h5ad" --max_iteration 10 -o "$T/x" 2>"$T/err"; rc=$?
[ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qi "min_features" "$T/err" || fail "default min_features: rc $rc $(tail -2 "$T/err")"
"$SCALEX_BIN" project --data_list "$D/query_3pv1.h5ad" --projection "$T/nothere" -o "$T/x" 2>"$T/err"; rc=$?
[ $rc -eq 3 ] || fail "missing reference: rc $rc"
set -e

# integrate the reference twice (same seed, one thread) and project the query
for r in a b; do
  "$SCALEX_BIN" integrate --data_list "$D/reference_3pv2_5p.h5ad" --min_features 100 \
      --max_iteration $ITER --threads 1 -o "$T/ref_$r" 2>"$T/log_$r" || { tail -5 "$T/log_$r"; fail "integrate $r"; }
done
for f in adata.h5ad checkpoint/model.h5 reference.h5 log.txt umap.png umap.pdf result.json; do
  [ -s "$T/ref_a/$f" ] || fail "integrate did not write $f"
done
grep -q "Processed dataset shape" "$T/ref_a/log.txt" || fail "log.txt lacks the shapes"
grep -q "epoch 1: recon_loss" "$T/ref_a/log.txt" || fail "log.txt lacks the per-epoch losses"
"$SCALEX_BIN" project --data_list "$D/query_3pv1.h5ad" --projection "$T/ref_a" --min_features 100 \
    --label cell_type --unknown off --threads 1 -o "$T/proj" 2>"$T/log_p" || { tail -5 "$T/log_p"; fail "project"; }
for f in adata.h5ad labels.csv confusion.csv confusion.png umap.png umap.pdf result.json log.txt; do
  [ -s "$T/proj/$f" ] || fail "project did not write $f"
done
"$SCALEX_BIN" project --data_list "$D/query_3pv1.h5ad" --projection "$T/ref_a/reference.h5" --min_features 100 \
    --joint_umap --ignore_umap --threads 1 -o "$T/proj2" 2>"$T/log_p2" || { tail -5 "$T/log_p2"; fail "project reference.h5"; }

"$SX_PYTHON" - "$T" "$D" <<'PY'
import sys, json, struct, zlib
import anndata as ad, h5py, numpy as np
T, D = sys.argv[1], sys.argv[2]
raw = ad.read_h5ad(f"{D}/reference_3pv2_5p.h5ad")
a = ad.read_h5ad(f"{T}/ref_a/adata.h5ad")
# expected content (ALGORITHM.md 7.3)
assert a.obsm["latent"].shape == (a.n_obs, 10), a.obsm["latent"].shape
assert a.obsm["X_umap"].shape == (a.n_obs, 2)
assert np.isfinite(a.obsm["latent"]).all() and np.isfinite(a.obsm["X_umap"]).all()
for c in ("batch", "leiden", "n_genes", "cell_type"):
    assert c in a.obs, c
assert list(a.obs["batch"].cat.categories) == sorted(set(raw.obs["batch"])), a.obs["batch"].cat.categories
assert a.obs["leiden"].nunique() >= 2
assert "n_cells" in a.var and "highly_variable" in a.var
assert set(a.obs_names) <= set(raw.obs_names) and a.n_obs > 800
assert set(a.var_names) <= set(raw.var_names)
X = a.X.toarray() if hasattr(a.X, "toarray") else a.X
assert X.min() >= 0 and X.max() <= 1.0 + 1e-6
p = a.uns["scalexd"]
assert p["job"] == "integrate" and p["settings"]["max_iteration"] in ("200", "60")
assert len(p["inputs_sha256"][0]) == 64
import hashlib
assert p["inputs_sha256"][0] == hashlib.sha256(open(f"{D}/reference_3pv2_5p.h5ad", "rb").read()).hexdigest()
# determinism: same seed + threads -> identical numbers
b = ad.read_h5ad(f"{T}/ref_b/adata.h5ad")
assert np.array_equal(a.obsm["latent"], b.obsm["latent"]), "latent differs between identical runs"
assert np.array_equal(a.obsm["X_umap"], b.obsm["X_umap"]), "X_umap differs between identical runs"
assert (a.obs["leiden"].astype(str).values == b.obs["leiden"].astype(str).values).all()
# reference.h5: the model tensors + the reference cells
with h5py.File(f"{T}/ref_a/reference.h5", "r") as f:
    g = f["reference"]
    assert g.attrs["format"] in (b"scalexd-reference", "scalexd-reference")
    assert g["latent"].shape == (a.n_obs, 10)
    assert np.allclose(g["latent"][:], a.obsm["latent"])
    assert "cell_type" in g["obs"]
    assert "state" in f
# projection output
q = ad.read_h5ad(f"{D}/query_3pv1.h5ad")
pj = ad.read_h5ad(f"{T}/proj/adata.h5ad")
vc = pj.obs["projection"].value_counts()
assert vc["reference"] == a.n_obs and 0 < vc["query"] <= q.n_obs, vc
assert list(pj.var_names) == list(a.var_names)
qm = (pj.obs["projection"] == "query").values
# the reference keeps its fixed UMAP layout; the query lands inside its range
assert np.allclose(pj.obsm["X_umap"][~qm], a.obsm["X_umap"], atol=1e-6)
lo, hi = a.obsm["X_umap"].min(0), a.obsm["X_umap"].max(0)
span = hi - lo
assert (pj.obsm["X_umap"][qm] >= lo - 0.2 * span).all() and (pj.obsm["X_umap"][qm] <= hi + 0.2 * span).all()
assert np.allclose(pj.obsm["latent"][~qm], a.obsm["latent"])
t = pj.obs["cell_type_transfer"][qm].astype(str)
assert set(t) <= set(a.obs["cell_type"].astype(str))
conf = pj.obs["cell_type_transfer_confidence"][qm].values
assert ((conf > 0) & (conf <= 1)).all()
# accuracy recomputed from labels.csv against the query's own labels == result.json
import csv
rows = list(csv.DictReader(open(f"{T}/proj/labels.csv")))
truth = q.obs["cell_type"].astype(str).to_dict()
acc = np.mean([truth[r["cell"]] == r["label"] for r in rows])
res = json.load(open(f"{T}/proj/result.json"))
assert abs(res["metrics"]["accuracy"] - acc) < 1e-4, (res["metrics"]["accuracy"], acc)
assert acc > 0.3, acc   # a short training; the full run reaches ~0.8 (quality.json)
cm = np.loadtxt(f"{T}/proj/confusion.csv", delimiter=",", skiprows=1, usecols=None, dtype=str)
assert sum(int(x) for row in cm for x in row[1:]) == len(rows)
# second projection: joint mode, no UMAP
p2 = ad.read_h5ad(f"{T}/proj2/adata.h5ad")
assert "X_umap" not in p2.obsm and p2.obsm["latent"].shape[0] == pj.n_obs
# figures: PNG header, size, not blank; PDF header
def png_check(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    w, h = struct.unpack(">II", data[16:24])
    assert w >= 300 and h >= 300, (path, w, h)
    # decode IDAT (8-bit RGB/RGBA, filter bytes ignored) and count non-white pixels
    idat = b"".join(data[i + 8:i + 8 + struct.unpack(">I", data[i:i + 4])[0]]
                    for i in range(8, len(data)) if data[i + 4:i + 8] == b"IDAT")
    px = zlib.decompress(idat)
    nonwhite = sum(1 for b in px if b < 200)
    assert nonwhite > 2000, (path, nonwhite)
for f in ("ref_a/umap.png", "proj/umap.png", "proj/confusion.png"):
    png_check(f"{T}/{f}")
for f in ("ref_a/umap.pdf", "proj/umap.pdf"):
    d = open(f"{T}/{f}", "rb").read()
    assert d[:5] == b"%PDF-" and len(d) > 5000, f
print("pipeline_pbmc: ok; projection accuracy %.3f on %d cells" % (acc, len(rows)))
PY
