#!/bin/bash
# Upload validation streams h5ad / 10x h5 matrices in slabs (daemon/engine.c ->
# sx_inspect_stream) instead of reading them whole. This checks that it still refuses every
# kind of lying or corrupt file the readers refuse (files written with h5py, so the defect is
# exactly the one named), with a problem+json that says what is wrong, and that the summary
# of a good upload matches what anndata / h5py read from the same file.
source "$(dirname "$0")/daemon_common.bash"
D=$WORK/data
ALICE=$("$BIN" token create --data-dir "$D" --user alice)
start_daemon "$D" --workers 1 --threads-per-job 1
T3=$DATA/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix.h5
T2=$DATA/tenx_pbmc_chr21_scanpy/1.2.0/multiple_genomes.h5

"$PY" - "$WORK" "$T3" <<'PY'
# good.h5ad: CSR counts, categorical + numeric obs columns; then one defect per file
import sys, shutil, h5py, numpy as np
w, t3 = sys.argv[1], sys.argv[2]
import anndata, pandas as pd, scipy.sparse as sp
rng = np.random.default_rng(3)
n, g = 300, 120
X = sp.random(n, g, density=0.2, format="csr", random_state=3, dtype=np.float32)
X.data = np.ceil(X.data * 10).astype(np.float32)
obs = pd.DataFrame({"batch": pd.Categorical(rng.choice(["a", "b"], n)),
                    "cell_type": pd.Categorical(rng.choice(["T", "B", "NK"], n)),
                    "n_counts": np.asarray(X.sum(1)).ravel().astype(np.float64)},
                   index=["c%d" % i for i in range(n)])
var = pd.DataFrame(index=["g%d" % j for j in range(g)])
anndata.AnnData(X, obs=obs, var=var).write_h5ad(w + "/good.h5ad")

def variant(name, fn):
    shutil.copy(w + "/good.h5ad", w + "/" + name)
    with h5py.File(w + "/" + name, "r+") as f:
        fn(f)

def shape_lie(f):
    f["X"].attrs["shape"] = np.array([n + 5, g], dtype=np.int64)
def indptr_down(f):
    p = f["X/indptr"][:]
    p[10], p[11] = p[11], p[10] - 1 if p[10] > 0 else 0
    p[10] = p[12] + 1
    f["X/indptr"][:] = p
def indptr_short(f):
    p = f["X/indptr"][:]
    p[-1] -= 3
    f["X/indptr"][:] = p
def index_out(f):
    ix = f["X/indices"][:]
    ix[len(ix) // 2] = g + 7
    f["X/indices"][:] = ix
def nan_value(f):
    d = f["X/data"][:]
    d[5] = np.nan
    f["X/data"][:] = d
variant("shape_lie.h5ad", shape_lie)
variant("indptr_down.h5ad", indptr_down)
variant("indptr_short.h5ad", indptr_short)
variant("index_out.h5ad", index_out)
variant("nan.h5ad", nan_value)
def obsm_rows(f):
    f["obsm"].create_dataset("X_pca", data=np.zeros((n - 1, 5), dtype=np.float32))
variant("obsm_rows.h5ad", obsm_rows)

def tvariant(name, fn):
    shutil.copy(t3, w + "/" + name)
    with h5py.File(w + "/" + name, "r+") as f:
        fn(f["matrix"])
def t_index(m):
    ix = m["indices"][:]
    ix[-1] = m["shape"][0] + 1
    m["indices"][:] = ix
def t_inf(m):  # Cell Ranger stores integer counts: a float copy can hold inf
    d = m["data"][:].astype(np.float32)
    d[len(d) // 3] = np.inf
    del m["data"]
    m.create_dataset("data", data=d)
def t_indptr(m):
    p = m["indptr"][:]
    p[3] = p[5] + 10
    m["indptr"][:] = p
tvariant("index_out.h5", t_index)
tvariant("inf.h5", t_inf)
tvariant("indptr_down.h5", t_indptr)
PY

# ---- a good h5ad: summary against anndata ----
expect 201 "$(upload "$ALICE" /v1/datasets "$WORK/good.h5ad")" "good h5ad"
"$PY" -c "
import anndata, json
a = anndata.read_h5ad('$WORK/good.h5ad'); d = json.load(open('$WORK/body'))
assert (d['n_obs'], d['n_vars']) == a.shape, (d, a.shape)
cols = {c['name']: c for c in d['obs_columns']}
assert list(cols) == list(a.obs.columns), (cols, a.obs.columns)
for k in ('batch', 'cell_type'):
    assert cols[k]['kind'] == 'categorical' and cols[k]['n_categories'] == len(a.obs[k].cat.categories), cols[k]
assert cols['n_counts']['kind'] == 'float', cols['n_counts']
" || fail "h5ad summary against anndata: $(cat "$WORK/body")"

# ---- good 10x files (v3, and v2 with two genomes side by side): sizes against h5py ----
for t in "$T3" "$T2"; do
    expect 201 "$(upload "$ALICE" /v1/datasets "$t")" "10x $(basename "$t")"
    "$PY" -c "
import h5py, json
d = json.load(open('$WORK/body'))
with h5py.File('$t') as f:
    groups = ['matrix'] if 'matrix' in f else sorted(f.keys())
    nf = sum(int(f[g]['shape'][0]) for g in groups)
    nb = int(f[groups[0]]['shape'][1])
assert d['format'] == '10x_h5' and (d['n_obs'], d['n_vars']) == (nb, nf), (d, nb, nf)
assert d['obs_columns'] == [], d
" || fail "10x summary against h5py ($t): $(cat "$WORK/body")"
done

# ---- lying or corrupt files: 422 naming the defect ----
# refused FILE WORD...: 422 bad-format whose detail contains every WORD
refused() {
    local f=$1; shift
    expect_problem 422 bad-format "$(upload "$ALICE" /v1/datasets "$WORK/$f")" "$f"
    for w in "$@"; do
        grep -qi -- "$w" "$WORK/body" || fail "$f: the detail does not say '$w': $(cat "$WORK/body")"
    done
}
refused shape_lie.h5ad "shape attribute"
refused indptr_down.h5ad "indptr"
refused indptr_short.h5ad "indptr"
refused index_out.h5ad "outside"
refused nan.h5ad "NaN"
refused obsm_rows.h5ad "obsm/X_pca"
refused index_out.h5 "indices" "outside"
refused inf.h5 "infinite"
refused indptr_down.h5 "indptr decreases"
ls "$D/spool" | grep -q . && fail "spool files left behind: $(ls "$D/spool")"
req "$ALICE" GET "/v1/datasets?page_size=100" >/dev/null
[ "$(jq_ 'len(d["datasets"])')" = 3 ] || fail "refused uploads were registered: $(cat "$WORK/body")"
stop_daemon
echo "daemon_validate: all checks passed"
