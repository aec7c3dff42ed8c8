#!/bin/bash
# A map job's reference cells are written once, by the reference, not by every job (issue
# 15): the job's adata.h5ad, umap.sxt and latent.sxt hold its query only (the tables' row
# counts read from the files' headers here), and the API serves the reference's rows from the
# reference's own tables. Checked with python3-anndata against the map's adata.h5ad (the
# query) and the reference's integrate job's adata.h5ad (the reference cells on their
# layout): ?set=reference serves at most --reference-sample cells
# (here 100), distinct reference cells at their coordinates; ?sample=0 pages every one;
# set=all is that sample then the whole query; umap.tsv and latent.csv hold every cell;
# umap.png is drawn. A reference withdrawn since is a 410 reference-withdrawn problem, one
# registered again under the same name with other cells a 410 reference-changed; the
# query's rows, the labels and downloads made before are still served.
source "$(dirname "$0")/daemon_common.bash"
D=$WORK/data
ADMIN=$("$BIN" token create --data-dir "$D" --user curator --admin)
start_daemon "$D" --workers 1 --threads-per-job 1 --reference-sample 100
P=$DATA/pancreas_baron_human_mouse_cider
expect 201 "$(upload "$ADMIN" '/v1/datasets?name=human' "$P/reference_human.h5ad")" "upload reference"
REF_DS=$(jq_ 'd["id"]')
integrate() { # integrate SEED: the finished job's id in $JOB
    expect 202 "$(req "$ADMIN" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$REF_DS\"],\"options\":{\"batch_name\":\"Sample\",\"max_iteration\":40,\"min_features\":10,\"seed\":$1}}")" "integrate"
    JOB=$(jq_ 'd["id"]')
    wait_job "$ADMIN" "$JOB" 600 COMPLETE EXECUTOR_ERROR SYSTEM_ERROR
    [ "$(jq_ 'd["state"]')" = COMPLETE ] || fail "integrate: $(cat "$WORK/body")"
}
integrate 1
expect 200 "$(req "$ADMIN" GET "/v1/jobs/$JOB/results/adata.h5ad")" "reference adata"
cp "$WORK/body" "$WORK/ref.h5ad"
expect 201 "$(req "$ADMIN" POST /v1/references -d "{\"name\":\"pancreas\",\"job\":\"$JOB\"}")" "register reference"
expect 200 "$(upload "$ADMIN" '/v1/references/pancreas/map?wait=600&label=Group' "$P/query_mouse.h5ad")" "map?wait"
MJ=$(jq_ 'd["job"]["id"]')
expect 200 "$(req "$ADMIN" GET "/v1/jobs/$MJ/results/adata.h5ad")" "adata"
cp "$WORK/body" "$WORK/out.h5ad"

# the job's own tables: the query's rows only
"$PY" - "$WORK/out.h5ad" "$D/jobs/$MJ" <<'PY' || fail "the job's tables hold more than its query"
import sys, struct, anndata
a = anndata.read_h5ad(sys.argv[1], backed="r")
nq = a.n_obs
assert nq > 0 and set(a.obs["projection"]) == {"query"}, set(a.obs["projection"])
for t in ("umap.sxt", "latent.sxt"):
    h = open(sys.argv[2] + "/" + t, "rb").read(24)
    assert h[:8] == b"SXTABLE\0", t
    rows = struct.unpack("<Q", h[16:24])[0]
    assert rows == nq, (t, rows, nq)
PY

# the reference's rows served: the cap, then every one, against the h5ad
expect 200 "$(req "$ADMIN" GET "/v1/jobs/$MJ/results/umap?set=reference")" "reference sample"
cp "$WORK/body" "$WORK/sample.json"
PT="" NP=0
while :; do
    expect 200 "$(req "$ADMIN" GET "/v1/jobs/$MJ/results/umap?set=reference&sample=0&page_size=1000&page_token=$PT")" "reference page $NP"
    cp "$WORK/body" "$WORK/ref$NP.json"
    NP=$((NP + 1))
    PT=$(jq_ 'd["next_page_token"]')
    [ "$PT" = None ] && break
    [ "$NP" -lt 1000 ] || fail "reference paging does not end"
done
expect 200 "$(req "$ADMIN" GET "/v1/jobs/$MJ/results/umap?page_size=200000")" "umap, all"
cp "$WORK/body" "$WORK/all.json"
expect 200 "$(req "$ADMIN" GET "/v1/jobs/$MJ/results/umap.tsv")" "umap.tsv"
cp "$WORK/body" "$WORK/umap.tsv"
expect 200 "$(req "$ADMIN" GET "/v1/jobs/$MJ/results/latent?format=csv")" "latent.csv"
cp "$WORK/body" "$WORK/latent.csv"
expect 200 "$(req "$ADMIN" GET "/v1/jobs/$MJ/results/latent?set=query&page_size=100000")" "latent, query"
cp "$WORK/body" "$WORK/latq.json"
"$PY" - "$WORK" "$NP" <<'PY' || fail "served reference rows do not match the h5ad"
import sys, json, csv, anndata, numpy as np
w, npages = sys.argv[1], int(sys.argv[2])
a = anndata.read_h5ad(w + "/out.h5ad")
r = anndata.read_h5ad(w + "/ref.h5ad")
xy, lat = {}, {}
for b in (r, a):
    xy.update({c: np.asarray(u, dtype=np.float32) for c, u in zip(b.obs_names, b.obsm["X_umap"][:, :2])})
    lat.update(zip(b.obs_names, np.asarray(b.obsm["latent"], dtype=float)))
ref = set(r.obs_names); qry = set(a.obs_names)
assert not ref & qry
def same_xy(c):
    assert np.allclose([c["x"], c["y"]], xy[c["cell"]], rtol=1e-6, atol=1e-6), c
s = json.load(open(w + "/sample.json"))
assert s["reference_cells"] == len(ref) and s["reference_sampled"] == 100 < len(ref), s
assert len(s["cells"]) == 100 and s.get("next_page_token") is None, len(s["cells"])
names = [c["cell"] for c in s["cells"]]
assert len(set(names)) == 100 and set(names) <= ref
for c in s["cells"]:
    assert c["set"] == "reference"; same_xy(c)
cells = [c for p in range(npages) for c in json.load(open(w + "/ref%d.json" % p))["cells"]]
assert sorted(c["cell"] for c in cells) == sorted(ref), (len(cells), len(ref))
for c in cells: same_xy(c)
assert [c["cell"] for c in cells[:100]] == names  # the sample is the first rows: the same cells
al = json.load(open(w + "/all.json"))["cells"]
assert [c["cell"] for c in al[:100]] == names and all(c["set"] == "reference" for c in al[:100])
assert sorted(c["cell"] for c in al[100:]) == sorted(qry) and all(c["set"] == "query" for c in al[100:])
for c in al: same_xy(c)
rows = list(csv.reader(open(w + "/umap.tsv"), delimiter="\t"))
assert rows[0] == ["cell", "x", "y", "batch", "label", "set"], rows[0]
assert sorted(r[0] for r in rows[1:]) == sorted(ref | qry)
for r in rows[1:]:
    assert (r[5] == "reference") == (r[0] in ref), r
    assert np.allclose([float(r[1]), float(r[2])], xy[r[0]], rtol=1e-6, atol=1e-6), r
rows = list(csv.reader(open(w + "/latent.csv")))
assert sorted(r[0] for r in rows[1:]) == sorted(ref | qry)
for r in rows[1:]:
    assert np.allclose([float(x) for x in r[1:]], lat[r[0]], rtol=1e-6, atol=1e-6), r[0]
lq = json.load(open(w + "/latq.json"))["cells"]
assert sorted(c["cell"] for c in lq) == sorted(qry)
for c in lq: assert np.allclose(c["latent"], lat[c["cell"]], rtol=1e-6, atol=1e-6), c["cell"]
print("daemon_refrows: %d reference cells (100 sampled), %d query cells" % (len(ref), len(qry)))
PY
expect 200 "$(req "$ADMIN" GET "/v1/jobs/$MJ/results/umap.png")" "umap.png"
head -c 8 "$WORK/body" | od -An -tx1 | grep -q '89 50 4e 47' || fail "umap.png is not a PNG"

# the reference registered again under its name, with other cells: the job's reference rows
# are not its any more; the query's still are
integrate 2
expect 204 "$(req "$ADMIN" DELETE /v1/references/pancreas)" "withdraw"
expect_problem 410 reference-withdrawn "$(req "$ADMIN" GET "/v1/jobs/$MJ/results/umap?set=reference")" "umap of a withdrawn reference"
expect 200 "$(req "$ADMIN" GET "/v1/jobs/$MJ/results/umap?set=query")" "query rows after the withdrawal"
expect 200 "$(req "$ADMIN" GET "/v1/jobs/$MJ/results/labels?format=csv")" "labels.csv after the withdrawal"
expect 200 "$(req "$ADMIN" GET "/v1/jobs/$MJ/results/umap.tsv")" "umap.tsv made before the withdrawal"
expect 201 "$(req "$ADMIN" POST /v1/references -d "{\"name\":\"pancreas\",\"job\":\"$JOB\"}")" "register again"
expect_problem 410 reference-changed "$(req "$ADMIN" GET "/v1/jobs/$MJ/results/umap")" "umap of a changed reference"
expect_problem 410 reference-changed "$(req "$ADMIN" GET "/v1/jobs/$MJ/results/latent")" "latent of a changed reference"
expect 200 "$(req "$ADMIN" GET "/v1/jobs/$MJ/results/latent?set=query")" "query latent after the change"
echo "daemon_refrows: all checks passed"
