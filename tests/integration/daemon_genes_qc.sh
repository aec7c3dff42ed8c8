#!/bin/bash
# Gene matching and the QC report through the API (issue 16): a registered reference with
# a genes.tsv in its folder; a mouse-cased query and an opaque-id query mapped with /map;
# GET /v1/jobs/{id}/results/qc (same owner rules as every results route, ETag, 404 for a
# job without one) read by python against the query file and the labels route; qc.png; a
# query sharing too few genes is a 422 gene-mismatch whose detail says what to do.
source "$(dirname "$0")/daemon_common.bash"
D=$WORK/data
ALICE=$("$BIN" token create --data-dir "$D" --user alice)
BOB=$("$BIN" token create --data-dir "$D" --user bob)
CURATOR=$("$BIN" token create --data-dir "$D" --user curator --admin)
start_daemon "$D" --workers 1 --threads-per-job 1
P=$DATA/pancreas_baron_human_mouse_cider
expect 201 "$(upload "$ALICE" '/v1/datasets?name=human' "$P/reference_human.h5ad")" "upload reference"
REF_DS=$(jq_ 'd["id"]')
expect 202 "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$REF_DS\"],\"options\":{\"batch_name\":\"Sample\",\"max_iteration\":60,\"min_features\":10,\"seed\":1}}")" "integrate"
JOB=$(jq_ 'd["id"]')
wait_job "$ALICE" "$JOB" 300 COMPLETE EXECUTOR_ERROR SYSTEM_ERROR
[ "$(jq_ 'd["state"]')" = COMPLETE ] || fail "integrate: $(cat "$WORK/body")"
expect_problem 404 not-found "$(req "$ALICE" GET "/v1/jobs/$JOB/results/qc")" "an integrate job has no QC report"
expect 201 "$(req "$CURATOR" POST /v1/references -d "{\"name\":\"pancreas\",\"job\":\"$JOB\"}")" "register reference"

# the queries, and the reference's gene table (opaque ids -> the reference's symbols)
"$PY" - "$P/query_mouse.h5ad" "$WORK" <<'PY'
import sys, anndata as ad
q, W = ad.read_h5ad(sys.argv[1]), sys.argv[2]
sym = list(q.var_names)
m = q.copy()
m.var_names = [g[0].upper() + g[1:].lower() for g in sym]
m.write_h5ad(f"{W}/mouse.h5ad")
t = q.copy()
t.var_names = ["id%05d" % i for i in range(len(sym))]
t.write_h5ad(f"{W}/ids.h5ad")
with open(f"{W}/genes.tsv", "w") as f:
    for i, g in enumerate(sym):
        f.write("id%05d\t%s\n" % (i, g))
PY
RDIR=$(ls -d "$D"/references/pancreas* | head -1)
[ -f "$RDIR/reference.h5" ] || fail "no reference folder under $D/references"
cp "$WORK/genes.tsv" "$RDIR/genes.tsv"

check_qc() { # check_qc JOB QUERY RULE
    expect 200 "$(req "$ALICE" GET "/v1/jobs/$1/results/qc")" "qc of $1"
    cp "$WORK/body" "$WORK/qc.json"
    grep -qi '^etag:' "$WORK/hdr" || fail "qc without ETag"
    expect 200 "$(req "$ALICE" GET "/v1/jobs/$1/results/labels")" "labels of $1"
    cp "$WORK/body" "$WORK/labels.json"
    expect 200 "$(req "$ALICE" GET "/v1/jobs/$1/results/adata.h5ad")" "adata of $1"
    cp "$WORK/body" "$WORK/out.h5ad"
    "$PY" - "$WORK/qc.json" "$WORK/labels.json" "$2" "$RDIR/reference.h5" "$3" "$WORK/out.h5ad" <<'PY' || fail "qc of $1: $(cat "$WORK/qc.json")"
import json, sys, h5py, anndata as ad, collections
qc = json.load(open(sys.argv[1])); lab = json.load(open(sys.argv[2]))["labels"]
q = ad.read_h5ad(sys.argv[3]); rule = sys.argv[5]; out = ad.read_h5ad(sys.argv[6])
import numpy as np  # the map's adata.h5ad (chunks deflated by the job's threads) as anndata reads it
assert out.X.nnz > 0 and np.isfinite(out.obsm["latent"]).all() and out.obsm["X_umap"].shape == (out.n_obs, 2)
import hashlib  # provenance: the digest the daemon recorded at upload, passed to the job
assert out.uns["scalexd"]["inputs_sha256"][0] == hashlib.sha256(open(sys.argv[3], "rb").read()).hexdigest()
nq = int((out.obs["projection"] == "query").sum())
assert nq == len(lab) and list(out.obs_names[-nq:]) == [x["cell"] for x in lab], (nq, len(lab))
with h5py.File(sys.argv[4], "r") as f:
    ref = [g.decode() for g in f["genes"][:]]
g = qc["genes"]
up = {n.upper() for n in q.var_names}
want = sum(r.upper() in up for r in ref) if rule == "case_insensitive" else len(ref)
exact = sum(r in set(q.var_names) for r in ref)
assert g["reference"] == len(ref) and g["matched"] == want, g
assert g["by_rule"]["gene_table"] == (want if rule == "gene_table" else 0), g
assert g["by_rule"][rule] == want - (exact if rule == "case_insensitive" else 0), g
assert qc["cells"]["query"] == q.n_obs and qc["cells"]["mapped"] == len(lab), qc["cells"]
assert qc["batches"] == sorted(set(out.obs["batch"][out.obs["projection"] == "query"].astype(str))), qc["batches"]
got = {r["label"]: r["cells"] for r in qc["labels"]["Group"]}
assert got == dict(collections.Counter(x["label"] for x in lab)), (got, lab[:3])
for w in qc["warnings"]:
    assert w["code"] and len(w["message"]) > 20, w
print("qc:", rule, g["by_rule"], [w["code"] for w in qc["warnings"]])
PY
}

expect 200 "$(upload "$ALICE" '/v1/references/pancreas/map?wait=300&label=Group' "$WORK/mouse.h5ad")" "map mouse-cased"
MJ=$(jq_ 'd["job"]["id"]')
# the job was handed the upload's digest (job.json), so it did not hash the file again
"$PY" -c "import json, hashlib, sys; j = json.load(open(sys.argv[1]))
assert j['input_sha256'] == [hashlib.sha256(open(sys.argv[2], 'rb').read()).hexdigest()], j" \
    "$D/jobs/$MJ/job.json" "$WORK/mouse.h5ad" || fail "job.json without the upload's digest"
check_qc "$MJ" "$WORK/mouse.h5ad" case_insensitive
ETAG=$(grep -i '^etag:' "$WORK/hdr" | head -1 | cut -d' ' -f2- | tr -d '\r')
expect 200 "$(req "$ALICE" GET "/v1/jobs/$MJ/results/qc")" "qc again"
ETAG=$(grep -i '^etag:' "$WORK/hdr" | cut -d' ' -f2- | tr -d '\r')
expect 304 "$(req "$ALICE" GET "/v1/jobs/$MJ/results/qc" -H "If-None-Match: $ETAG")" "qc 304"
expect_problem 404 not-found "$(req "$BOB" GET "/v1/jobs/$MJ/results/qc")" "bob reads alice's qc"
expect_problem 401 unauthorized "$(req "" GET "/v1/jobs/$MJ/results/qc")" "qc without a token"
# qc.png: a map does not draw it; the first request does (the results listing shows it as
# before, so listing draws it), and later requests get the kept file
for f in qc.png confusion.png; do
    [ -d "$D/jobs/$MJ" ] && [ ! -e "$D/jobs/$MJ/$f" ] || fail "the map job wrote $f itself"
done
expect 200 "$(req "$ALICE" GET "/v1/jobs/$MJ/results")" "results listing"
"$PY" -c "
import json; d = json.load(open('$WORK/body'))
f = {x['name']: x['size_bytes'] for x in d['files']}
assert f.get('qc.png', 0) > 1000 and 'qc.png' in d['summary']['files'], d
assert 'confusion.csv' in f and f.get('confusion.png', 0) > 1000, d  # the query has its Group
assert 'labels.csv' in f and 'labels.csv' in d['summary']['files'], d
" || fail "listing without qc.png / confusion.png / labels.csv: $(cat "$WORK/body")"
expect 200 "$(req "$ALICE" GET "/v1/jobs/$MJ/results/confusion.png")" "confusion.png"
head -c 8 "$WORK/body" | od -An -tx1 | tr -d ' \n' | grep -q '^89504e470d0a1a0a' || fail "confusion.png is not a PNG"
expect 200 "$(req "$ALICE" GET "/v1/jobs/$MJ/results/qc.png")" "qc.png"
grep -qi '^content-type: image/png' "$WORK/hdr" || fail "qc.png content type"
head -c 8 "$WORK/body" | od -An -tx1 | tr -d ' \n' | grep -q '^89504e470d0a1a0a' || fail "qc.png is not a PNG"
cp "$WORK/body" "$WORK/qc1.png"
expect 200 "$(req "$ALICE" GET "/v1/jobs/$MJ/results/qc.png")" "qc.png again"
cmp -s "$WORK/body" "$WORK/qc1.png" || fail "qc.png changed between requests"
cmp -s "$D/jobs/$MJ/qc.png" "$WORK/qc1.png" || fail "qc.png not kept in the job folder"

expect 200 "$(upload "$ALICE" '/v1/references/pancreas/map?wait=300&label=Group' "$WORK/ids.h5ad")" "map opaque ids"
check_qc "$(jq_ 'd["job"]["id"]')" "$WORK/ids.h5ad" gene_table

# too few shared genes: 422 with what to do
"$PY" -c "
print('gene,' + ','.join('c%d' % j for j in range(30)))
for i in range(700): print('NOTAGENE%d,' % i + ','.join(str(1 + (i * j) % 7) for j in range(30)))
" >"$WORK/nogenes.csv"
expect_problem 422 gene-mismatch "$(upload "$ALICE" '/v1/references/pancreas/map?wait=300&label=Group' "$WORK/nogenes.csv")" "no shared genes"
"$PY" -c "
import json,sys; d=json.load(open('$WORK/body'))['detail']
assert 'What to do' in d and 'gene table' in d and 'genes.tsv' in d, d
assert '$D' not in d and '/references/' not in d, d
" || fail "422 detail: $(cat "$WORK/body")"
stop_daemon
echo "daemon_genes_qc: all checks passed"
