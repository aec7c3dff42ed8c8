#!/bin/bash
# The README's main command, minus the build: scripts/demo.sh trains the demo pancreas
# reference at first start (few steps here), registers it, starts scalexd and prints a token
# and a curl line. The test runs that exact curl line and checks the labels against the mouse
# query's own Group column (python3-anndata), the catalog entry (loaded in memory at start-up),
# the latent results (JSON pages and CSV against obsm latent of the job's adata.h5ad, read by
# anndata), umap.png and the log; a second start reuses the reference and the token.
source "$(dirname "$0")/daemon_common.bash"
SRC=${SX_SOURCE_DIR:?run through ctest}
cd "$SRC"
DEMO=$WORK/demo
start_demo() {
    # the last start's output must not be read as this one's (the background shell truncates
    # it only when it gets to run)
    rm -f "$WORK/demo.out"
    SX_DEMO_NO_BUILD=1 BUILD=$(dirname "$BIN") DEMO_DIR=$DEMO LISTEN=127.0.0.1:0 DEMO_ITER=150 \
        scripts/demo.sh >"$WORK/demo.out" 2>"$WORK/daemon.log" &
    DEMO_PID=$!
    for _ in $(seq 1 1200); do
        grep -qs '^curl ' "$WORK/demo.out" && break
        kill -0 "$DEMO_PID" 2>/dev/null || { cat "$WORK/demo.out" >&2; fail "demo.sh exited"; }
        sleep 0.25
    done
    grep -q '^curl ' "$WORK/demo.out" || fail "demo.sh printed no curl line"
    URL=$(sed -n 's/^scalexd is serving at \(http[^ ]*\).*/\1/p' "$WORK/demo.out")
    TOKEN=$(sed -n 's/^token: //p' "$WORK/demo.out")
    [ -n "$URL" ] && [ -n "$TOKEN" ] || fail "demo.sh output: $(cat "$WORK/demo.out")"
}
stop_demo() { kill -TERM "$DEMO_PID"; wait "$DEMO_PID" || fail "demo.sh exit status $?"; }

start_demo
grep -q 'reference trained in' "$WORK/daemon.log" || fail "first start did not train"
# the printed line, as a user pastes it
bash -c "$(grep '^curl ' "$WORK/demo.out") -o '$WORK/map.json' -w '%{http_code}' -D '$WORK/hdr'" >"$WORK/code"
[ "$(cat "$WORK/code")" = 200 ] || fail "demo curl line: HTTP $(cat "$WORK/code"): $(head -c 400 "$WORK/map.json")"
"$PY" - "$WORK/map.json" data/demo/query_mouse.h5ad data/demo/reference_human.h5ad <<'PY' || fail "demo labels"
import json, sys, anndata
d = json.load(open(sys.argv[1]))
assert d["job"]["state"] == "COMPLETE", d["job"]
lab = d["labels"]
q = anndata.read_h5ad(sys.argv[2]); r = anndata.read_h5ad(sys.argv[3])
assert sorted(x["cell"] for x in lab) == sorted(q.obs_names)
assert {x["label"] for x in lab} <= set(r.obs["Group"].astype(str)) | {"Unknown"}
truth = dict(zip(q.obs_names, q.obs["Group"].astype(str)))
called = [x for x in lab if x["label"] != "Unknown"]  # Unknown: poorly mapped, not scored
assert len(called) >= 5, f"{len(called)} of {len(lab)} cells kept a label"
acc = sum(truth[x["cell"]] == x["label"] for x in called) / len(called)
print("demo label accuracy vs the query's Group:", round(acc, 3))
assert acc > 0.3, acc
PY
JOB=$("$PY" -c "import json; print(json.load(open('$WORK/map.json'))['job']['id'])")

# catalog: the demo reference, described and loaded in memory
expect 200 "$(req "$TOKEN" GET /v1/references)" "catalog"
"$PY" - "$WORK/body" data/demo/reference_human.h5ad <<'PY' || fail "catalog entry: $(cat "$WORK/body")"
import json, sys, anndata
d = json.load(open(sys.argv[1]))["references"]
ref = [x for x in d if x["name"] == "pancreas"][0]
a = anndata.read_h5ad(sys.argv[2])
assert ref["cells"] == a.n_obs, ref
assert 0 < ref["genes"] <= a.n_vars, ref
assert "Group" in ref["label_columns"], ref
assert ref["species"] == "human" and ref["tissue"] == "pancreas" and ref["description"], ref
assert ref["model_version"] and ref["created"], ref
assert ref["loaded"] is True and ref["memory_bytes"] > 0, ref
PY
expect 200 "$(req "" GET /metrics)" "metrics"
grep -q '^scalexd_references_loaded 1$' "$WORK/body" || fail "metrics: references loaded"

# latent: JSON pages and CSV, against obsm latent of the job's adata.h5ad (the query: a map
# leaves the reference's cells to the reference) and of the demo reference's own adata.h5ad
expect 200 "$(req "$TOKEN" GET "/v1/jobs/$JOB/results/adata.h5ad")" "adata"
cp "$WORK/body" "$WORK/out.h5ad"
# every page of 100 (more than one page: paging is exercised)
PT="" NP=0
while :; do
    expect 200 "$(req "$TOKEN" GET "/v1/jobs/$JOB/results/latent?page_size=100&page_token=$PT")" "latent page $NP"
    cp "$WORK/body" "$WORK/lat$NP.json"
    NP=$((NP + 1))
    PT=$(jq_ 'd["next_page_token"]')
    [ "$PT" = None ] && break
    [ "$NP" -lt 100 ] || fail "latent paging does not end"
done
[ "$NP" -ge 2 ] || fail "latent fitted on one page of 100"
expect 200 "$(req "$TOKEN" GET "/v1/jobs/$JOB/results/latent?format=csv")" "latent csv"
grep -qi '^etag:' "$WORK/hdr" || fail "latent csv without ETag"
cp "$WORK/body" "$WORK/lat.csv"
"$PY" - "$WORK" "$DEMO/references/pancreas/adata.h5ad" <<'PY' || fail "latent does not match the h5ad"
import json, sys, csv, anndata, numpy as np
w = sys.argv[1]
q = anndata.read_h5ad(w + "/out.h5ad")
r = anndata.read_h5ad(sys.argv[2])
assert set(q.obs["projection"]) == {"query"}, "the map's adata.h5ad holds more than its query"
a = anndata.concat([r, q])
z = np.asarray(a.obsm["latent"], dtype=float)
want = dict(zip(a.obs_names, z))
import glob
pages = [json.load(open(p)) for p in sorted(glob.glob(w + "/lat*.json"), key=lambda p: int(p[len(w) + 4:-5]))]
cells = [c for p in pages for c in p["cells"]]
assert all(p["dim"] == z.shape[1] for p in pages)
assert all(len(p["cells"]) == 100 for p in pages[:-1])
assert len(cells) == a.n_obs and len({c["cell"] for c in cells}) == a.n_obs
for c in cells:
    assert np.allclose(c["latent"], want[c["cell"]], rtol=1e-6, atol=1e-6), c["cell"]
rows = list(csv.reader(open(w + "/lat.csv")))
assert rows[0] == ["cell"] + ["latent_%d" % k for k in range(z.shape[1])]
assert len(rows) == a.n_obs + 1
for r in rows[1:]:
    assert np.allclose([float(x) for x in r[1:]], want[r[0]], rtol=1e-6, atol=1e-6), r[0]
PY
expect 200 "$(req "$TOKEN" GET "/v1/jobs/$JOB/results/umap.png")" "umap.png"
head -c 8 "$WORK/body" | od -An -tx1 | grep -q '89 50 4e 47' || fail "umap.png is not a PNG"
expect 200 "$(req "$TOKEN" GET "/v1/jobs/$JOB/results/umap?set=reference&page_size=1000")" "reference points for the overlay"
[ "$(jq_ 'len(d["cells"])')" = 175 ] || fail "reference overlay points: $(jq_ 'len(d["cells"])')"
expect 200 "$(req "$TOKEN" GET "/v1/jobs/$JOB/log")" "log"
stop_demo

# second start: no training, same token
cp "$WORK/demo.out" "$WORK/demo1.out"
: >"$WORK/daemon.log"
start_demo
grep -q 'reference trained in' "$WORK/daemon.log" && fail "second start trained again"
[ "$(sed -n 's/^token: //p' "$WORK/demo1.out")" = "$TOKEN" ] || fail "second start printed another token"
expect 200 "$(req "$TOKEN" GET /v1/references/pancreas)" "reference after restart"
[ "$(jq_ 'd["loaded"]')" = True ] || fail "reference not preloaded at start-up"
stop_demo
echo "daemon_demo: all checks passed"
