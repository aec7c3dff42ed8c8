#!/bin/bash
# A folder the original SCALEX wrote, served by the daemon (issue 17): `scalexd reference add
# DIR` detects it (checkpoint/model.pt + config.pt + adata.h5ad), converts it and keeps SCALEX's
# files as provenance; the catalog says "source": "scalex" (no version: SCALEX 1.0.7 records
# none). Then the raw golden query is mapped onto it through POST /v1/references/{name}/map with
# the golden run's min_features=0 (and unknown=off: SCALEX's plain vote) as query parameters: labels and UMAP come back for every
# query cell, python3-anndata opens the result, and the labels equal SCALEX's label_transfer
# (scikit-learn's default 5-NN on SCALEX's own projection, tests/tools/scalex_label_transfer.py)
# on >= 98% of the cells. A folder that is neither ours nor SCALEX's is refused by name.
source "$(dirname "$0")/daemon_common.bash"
G=${SX_SHARED}/golden/scalex_outdir
[ -f "$G/ref/checkpoint/model.pt" ] || { echo "SKIP: no $G"; exit 0; }
SRC=${SX_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
Q=$DATA/pbmc_3tech_symphony/query_3pv1.h5ad
D=$WORK/data
TOK=$("$BIN" token create --data-dir "$D" --user alice)
"$BIN" reference add "$G/ref" --name pbmc-scalex --data-dir "$D" --labels cell_type,cell_type_broad \
    --species human >"$WORK/add.out" 2>&1 || fail "reference add: $(cat "$WORK/add.out")"
mkdir -p "$WORK/empty"
"$BIN" reference add "$WORK/empty" --name nothing --data-dir "$D" >"$WORK/add2.out" 2>&1 &&
    fail "a folder without a reference was registered"
grep -q "SCALEX wrote" "$WORK/add2.out" || fail "refusal does not name SCALEX folders: $(cat "$WORK/add2.out")"
# provenance: SCALEX's own files, byte for byte, under the reference's scalex/
R=$D/references/pbmc-scalex
[ -f "$R/reference.h5" ] || fail "no reference.h5 in the registered reference"
# prepared at registration, before any daemon runs: the map (with the calibrations of both
# label columns) and the tables the API serves
[ -s "$R/reference.map" ] && [ -s "$R/umap.sxt" ] || fail "reference add did not prepare the map"
for f in checkpoint/model.pt checkpoint/config.pt adata.h5ad log.txt; do
    cmp -s "$G/ref/$f" "$R/scalex/$f" || fail "provenance: scalex/$f differs from SCALEX's"
done
start_daemon "$D" --workers 1 --threads-per-job 1
expect 200 "$(req "$TOK" GET /v1/references)" "catalog"
"$PY" - "$WORK/body" <<'PY' || fail "catalog: $(cat "$WORK/body")"
import json, sys
r = {x["name"]: x for x in json.load(open(sys.argv[1]))["references"]}["pbmc-scalex"]
assert r["source"] == "scalex", r
assert "source_version" in r and r["source_version"] is None, r  # log.txt records no version
assert r["cells"] == 910 and r["genes"] == 1467, r               # README: 910 x 1467 genes
assert r["label_columns"] == ["cell_type", "cell_type_broad"], r
PY
expect 200 "$(req "$TOK" GET /v1/references/pbmc-scalex)" "one reference"
[ "$(jq_ 'd["source"]')" = scalex ] || fail "reference: $(cat "$WORK/body")"
expect_problem 400 invalid-parameter "$(upload "$TOK" '/v1/references/pbmc-scalex/map?min_features=few' "$Q")" "a mistyped option"

# the reference's own layout (catalog thumbnails, the overlay): every cell at the X_umap SCALEX
# stored (float32), its cell_type; a sample is a subset of the same points, the same each time
expect 200 "$(req "$TOK" GET '/v1/references/pbmc-scalex/umap?sample=0&page_size=100000')" "reference umap"
cp "$WORK/body" "$WORK/refumap.json"
expect 200 "$(req "$TOK" GET '/v1/references/pbmc-scalex/umap?sample=200&page_size=150')" "reference umap sample"
cp "$WORK/body" "$WORK/refsample.json"
TOKEN2=$("$PY" -c "import json; print(json.load(open('$WORK/refsample.json'))['next_page_token'])")
expect 200 "$(req "$TOK" GET "/v1/references/pbmc-scalex/umap?sample=200&page_size=150&page_token=$TOKEN2")" "sample page 2"
cp "$WORK/body" "$WORK/refsample2.json"
expect 200 "$(req "$TOK" GET '/v1/references/pbmc-scalex/umap?sample=200&page_size=150')" "reference umap sample again"
cmp -s "$WORK/body" "$WORK/refsample.json" || fail "the sample differs between two requests"
expect_problem 400 invalid-parameter "$(req "$TOK" GET '/v1/references/pbmc-scalex/umap?sample=-1')" "a negative sample"
expect_problem 404 unknown-reference "$(req "$TOK" GET '/v1/references/nothing/umap')" "an unknown reference's layout"
"$PY" - "$WORK" "$G/ref/adata.h5ad" <<'PY' || fail "reference umap: $(head -c 300 "$WORK/refumap.json")"
import json, sys
import anndata as ad, numpy as np
W, A = sys.argv[1:]
a = ad.read_h5ad(A)
full = json.load(open(f"{W}/refumap.json"))
assert full["total"] == a.n_obs == full["sampled"] == len(full["cells"]), (full["total"], a.n_obs)
assert "next_page_token" not in full or not full["next_page_token"]
pos = {c: i for i, c in enumerate(a.obs_names)}
xy = np.array([(c["x"], c["y"]) for c in full["cells"]])
idx = np.array([pos[c["cell"]] for c in full["cells"]])
assert sorted(idx) == list(range(a.n_obs))
truth = a.obsm["X_umap"][idx].astype(np.float32).astype(np.float64)
assert np.abs(xy - truth).max() <= 1e-6 * max(1.0, np.abs(truth).max()), np.abs(xy - truth).max()
ct = a.obs["cell_type"].astype(str).values
assert all(c["label"] == ct[pos[c["cell"]]] for c in full["cells"])
s1, s2 = json.load(open(f"{W}/refsample.json")), json.load(open(f"{W}/refsample2.json"))
assert s1["sampled"] == 200 and len(s1["cells"]) == 150 and len(s2["cells"]) == 50
cells = [c["cell"] for c in s1["cells"] + s2["cells"]]
assert len(set(cells)) == 200 and set(cells) <= set(pos)
# a uniform sample, not the first cells: spread over the whole obs order, its labels in about
# the reference's proportions (total variation distance)
at = np.array([pos[c] for c in cells])
assert at.min() < a.n_obs // 4 and at.max() > 3 * a.n_obs // 4, (at.min(), at.max())
import collections
fs, fa = collections.Counter(ct[at]), collections.Counter(ct)
tv = 0.5 * sum(abs(fs[k] / len(at) - fa[k] / a.n_obs) for k in fa)
assert tv < 0.12, tv
print("reference layout: %d cells at SCALEX's X_umap; a 200-cell sample, label TV distance %.3f"
      % (a.n_obs, tv))
PY

# the map, with the golden run's setting (its cells have < 600 genes, SCALEX's default)
code=$(upload "$TOK" '/v1/references/pbmc-scalex/map?wait=600&label=cell_type&min_features=0&unknown=off&name=q' "$Q")
if [ "$code" = 202 ]; then # the wait ran out on a slow machine: poll
    MJ=$(jq_ 'd["job"]["id"]')
    wait_job "$TOK" "$MJ" 1200 COMPLETE EXECUTOR_ERROR SYSTEM_ERROR
    [ "$(jq_ 'd["state"]')" = COMPLETE ] || fail "map job: $(cat "$WORK/body")"
    expect 200 "$(req "$TOK" GET "/v1/jobs/$MJ/results/labels")" "labels"
    "$PY" -c "import json; json.dump({'labels': json.load(open('$WORK/body'))['labels']}, open('$WORK/map.json', 'w'))"
else
    expect 200 "$code" "map?wait"
    MJ=$(jq_ 'd["job"]["id"]')
    cp "$WORK/body" "$WORK/map.json"
fi
expect 200 "$(req "$TOK" GET "/v1/jobs/$MJ/results/umap?set=query&page_size=100000")" "umap"
cp "$WORK/body" "$WORK/umap.json"
expect 200 "$(req "$TOK" GET "/v1/jobs/$MJ/results/adata.h5ad")" "adata.h5ad"
cp "$WORK/body" "$WORK/out.h5ad"
PYTHONPATH="$SRC/tests/tools" "$PY" - "$WORK" "$G" "$Q" <<'PY' || fail "map results"
import json, sys
import anndata as ad, numpy as np
from scalex_label_transfer import scalex_truth
W, G, Q = sys.argv[1:]
q = ad.read_h5ad(Q)
lab = {x["cell"]: x["label"] for x in json.load(open(f"{W}/map.json"))["labels"]}
um = {c["cell"]: (c["x"], c["y"]) for c in json.load(open(f"{W}/umap.json"))["cells"]}
assert set(lab) == set(q.obs_names), (len(lab), q.n_obs)
assert set(um) == set(q.obs_names), (len(um), q.n_obs)
assert all(np.isfinite(v).all() for v in um.values())
a = ad.read_h5ad(f"{W}/out.h5ad")
assert set(q.obs_names) <= set(a.obs_names) and "latent" in a.obsm and "X_umap" in a.obsm
truth = scalex_truth(f"{G}/proj/adata.h5ad", "cell_type")
agree = np.mean([lab[c] == truth[c] for c in truth])
print("daemon map onto SCALEX's folder: %d cells, labels = SCALEX label_transfer on %.1f%%"
      % (len(lab), 100 * agree))
assert agree >= 0.98, agree
PY
stop_daemon
echo "daemon_scalex_ref: all checks passed"
