#!/usr/bin/env bash
# The two scATAC walk-throughs of docs/tutorials (scatac.md, rna_atac.md) with a short
# --max_iteration: scATAC integration with --profile ATAC (Signac PBMC peaks) and the unpaired
# RNA + gene-activity cross-modality integration (Granja BMMC). python3-anndata opens every
# output; the cells/features kept and the values are checked against the input files read by
# anndata itself (ALGORITHM.md §3: ATAC binarized, no normalization, per-batch MaxAbs; §1.3:
# one batch per file, inner join; §2: RNA path for the gene activity).
set -euo pipefail
: "${SCALEX_BIN:?run through ctest}" "${SX_SHARED:?}" "${SX_PYTHON:?}"
D="$SX_SHARED/data/scatac_small"
ITER=300
[ "${SX_SANITIZE:-0}" = 1 ] && ITER=60
T=$(mktemp -d "${TMPDIR:-/tmp}/sxatac-XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# docs/tutorials/scatac.md
"$SCALEX_BIN" integrate --data_list "$D/signac_atac_small_peaks.h5ad" --profile ATAC \
    --min_features 10 --label seurat_clusters --max_iteration $ITER --assess --threads 1 \
    -o "$T/atac" 2>"$T/l1" || { tail -5 "$T/l1"; fail "ATAC integrate"; }
# docs/tutorials/rna_atac.md
"$SCALEX_BIN" integrate --data_list "$D/bmmc_rna.h5ad" "$D/bmmc_atac_gene_activity.h5ad" \
    --batch_categories RNA ATAC --min_features 5 --max_iteration $ITER --assess --threads 1 \
    -o "$T/cross" 2>"$T/l2" || { tail -5 "$T/l2"; fail "RNA + gene activity integrate"; }
# the default ATAC min_features (100) removes every cell of this small set: a clear error
set +e
"$SCALEX_BIN" integrate --data_list "$D/signac_atac_small_peaks.h5ad" --profile ATAC \
    --max_iteration 10 --threads 1 -o "$T/bad" 2>"$T/err"; rc=$?
set -e
[ $rc -eq 6 ] && grep -q "min_features" "$T/err" || fail "ATAC default min_features: rc $rc $(cat "$T/err")"

for d in atac cross; do
    for f in adata.h5ad checkpoint/model.h5 reference.h5 log.txt umap.png umap.pdf result.json; do
        [ -s "$T/$d/$f" ] || fail "$d/$f missing"
    done
done
grep -q "No total normalization" "$T/atac/log.txt" || fail "ATAC log does not say it skipped normalization"
grep -q "epoch 1:" "$T/cross/log.txt" || fail "no per-epoch losses in log.txt"

"$SX_PYTHON" - "$T" "$D" <<'PY'
import sys, json, struct, zlib
import anndata as ad, numpy as np
T, D = sys.argv[1], sys.argv[2]

# ---- scATAC: binarize, cells with >= 10 peaks, peaks in >= 3 of those cells (§3 v1.0.0)
src = ad.read_h5ad(f"{D}/signac_atac_small_peaks.h5ad")
B = (src.X > 0).astype(np.int64)
keep = np.asarray(B.sum(1)).ravel() >= 10
peaks = np.asarray(B[keep].sum(0)).ravel() >= 3
a = ad.read_h5ad(f"{T}/atac/adata.h5ad")
assert a.n_obs == keep.sum(), (a.n_obs, keep.sum())
assert list(a.obs_names) == list(src.obs_names[keep])
assert list(a.var_names) == list(src.var_names[peaks]), "ATAC keeps every peak when K >= #peaks"
assert a.raw is None, "ATAC stores no raw"
x = a.X.toarray() if hasattr(a.X, "toarray") else np.asarray(a.X)
assert set(np.unique(x)) <= {0.0, 1.0}, "binarized + MaxAbs gives 0/1"
assert np.array_equal(x > 0, B[keep][:, peaks].toarray() > 0)
assert a.obsm["latent"].shape == (a.n_obs, 10) and np.isfinite(a.obsm["latent"]).all()
assert a.obsm["X_umap"].shape == (a.n_obs, 2)
for c in ("batch", "leiden", "seurat_clusters"):
    assert c in a.obs, c
assert a.obs["leiden"].nunique() >= 2
assert a.uns["scalexd"]["settings"]["profile"] == "ATAC"
# --assess: silhouette of the integer label column on the latent, recomputed here
# (sklearn's definition, ALGORITHM.md §10.2); one batch: no mixing score
def silhouette(X, y):
    D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    s = np.zeros(len(y))
    for i in range(len(y)):
        same = y == y[i]
        if same.sum() == 1:
            continue
        ai = D[i, same].sum() / (same.sum() - 1)
        bi = min(D[i, y == l].mean() for l in np.unique(y) if l != y[i])
        s[i] = (bi - ai) / max(ai, bi)
    return s.mean()
ra = json.load(open(f"{T}/atac/result.json"))["metrics"]
sil = silhouette(a.obsm["latent"], a.obs["seurat_clusters"].astype(str).values)
assert abs(ra["silhouette_latent"] - sil) < 1e-6, (ra["silhouette_latent"], sil)
assert "mixing_latent" not in ra

# ---- RNA + gene activity: one batch per file, inner join of genes, RNA preprocessing
r = ad.read_h5ad(f"{D}/bmmc_rna.h5ad")
g = ad.read_h5ad(f"{D}/bmmc_atac_gene_activity.h5ad")
common = [v for v in r.var_names if v in set(g.var_names)]
c = ad.read_h5ad(f"{T}/cross/adata.h5ad")
assert list(c.obs["batch"].cat.categories) == ["RNA", "ATAC"], list(c.obs["batch"].cat.categories)
nf = lambda m: np.asarray((m > 0).sum(1)).ravel()
n_r = (nf(r[:, common].X) >= 5).sum()
n_g = (nf(g[:, common].X) >= 5).sum()
counts = c.obs["batch"].value_counts()
assert counts["RNA"] == n_r and counts["ATAC"] == n_g, (counts, n_r, n_g)
assert set(c.var_names) <= set(common) and c.n_vars >= 0.9 * len(common)
assert c.obsm["latent"].shape == (c.n_obs, 10) and c.obsm["X_umap"].shape == (c.n_obs, 2)
assert "leiden" in c.obs and c.raw is not None
xs = c.X.toarray()
for b in ("RNA", "ATAC"):  # per-batch MaxAbs: every expressed gene reaches exactly 1
    m = (c.obs["batch"] == b).values
    mx = xs[m].max(0)
    assert np.allclose(mx[mx > 0], 1.0), b
res = json.load(open(f"{T}/cross/result.json"))
for k in ("mixing_latent", "batch_entropy_mixing_score"):
    v = res["metrics"][k]
    assert 0 < v <= np.log(2) + 1e-9, (k, v)  # SCALEX's score peaks at ln 2

# ---- figures: PNG valid and not blank (three panels for ATAC), PDF valid with drawing
def png_check(path, min_w):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    w, h = struct.unpack(">II", data[16:24])
    assert w >= min_w and h >= 300, (path, w, h)
    idat, i = b"", 8
    while i < len(data):
        n = struct.unpack(">I", data[i:i + 4])[0]
        if data[i + 4:i + 8] == b"IDAT":
            idat += data[i + 8:i + 8 + n]
        i += 12 + n
    px = zlib.decompress(idat)
    assert sum(1 for b in px if b < 200) > 2000, path
    assert len(set(px[::7])) > 20, path  # colours, not one flat fill
png_check(f"{T}/atac/umap.png", 1200)   # batch, seurat_clusters, leiden
png_check(f"{T}/cross/umap.png", 800)   # batch, leiden
for d in ("atac", "cross"):
    pdf = open(f"{T}/{d}/umap.pdf", "rb").read()
    assert pdf[:5] == b"%PDF-" and b"%%EOF" in pdf[-64:], d
    streams = [zlib.decompress(s.split(b"stream", 1)[1].lstrip(b"\r\n"))
               for s in pdf.split(b"endstream")[:-1] if b"/FlateDecode" in s.split(b"stream", 1)[0]]
    ops = sum(s.count(b" re") + s.count(b" c\n") + s.count(b" f") for s in streams)
    assert ops > 100, (d, ops)
print("pipeline_atac: ok; ATAC %d cells x %d peaks; RNA+ATAC %d cells, mixing (latent) %.3f"
      % (a.n_obs, a.n_vars, c.n_obs, res["metrics"]["mixing_latent"]))
PY
