#!/bin/bash
# scalexd over HTTP: uploads (sha256 and shape checked against sha256sum and h5py), dataset
# list/get/delete, two users' isolation, bad requests answered with problem+json 4xx while
# the daemon keeps serving, limits, CORS, metrics, OpenAPI.
source "$(dirname "$0")/daemon_common.bash"
D=$WORK/data
ALICE=$("$BIN" token create --data-dir "$D" --user alice)
BOB=$("$BIN" token create --data-dir "$D" --user bob)
[[ $ALICE == sxt_* ]] || fail "token create printed '$ALICE'"
start_daemon "$D" --max-upload-bytes 3000000 --cors-origin https://portal.example
ROOT=$("$BIN" token create --data-dir "$D" --user root --admin) # while the daemon runs

Q=$DATA/pancreas_baron_human_mouse_cider/query_mouse.h5ad
read -r QOBS QVARS < <("$PY" -c "import h5py,sys; f=h5py.File('$Q','r'); print(len(f['obs']['_index']), len(f['var']['_index']))")

# ---- upload + get + list ----
expect 201 "$(upload "$ALICE" '/v1/datasets?name=mouse%20query' "$Q")" "upload h5ad"
ID=$(jq_ 'd["id"]')
[ "$(jq_ 'd["sha256"]')" = "$(sha256sum "$Q" | cut -d' ' -f1)" ] || fail "sha256 differs from sha256sum"
[ "$(jq_ 'd["n_obs"]')" = "$QOBS" ] && [ "$(jq_ 'd["n_vars"]')" = "$QVARS" ] || fail "shape $(cat "$WORK/body") vs h5py $QOBS x $QVARS"
[ "$(jq_ 'd["name"]')" = "mouse query" ] || fail "name"
grep -qi "^location: /v1/datasets/$ID" "$WORK/hdr" || fail "no Location"
expect 200 "$(req "$ALICE" GET "/v1/datasets/$ID")" "get dataset"
[ "$(jq_ 'd["format"]')" = h5ad ] || fail "format"
cmp -s "$Q" "$D/datasets/$ID.h5ad" || fail "stored file differs from the upload"
# other formats are detected from the bytes: 10x v3 .h5 and a gzip'd MatrixMarket
expect 201 "$(upload "$ALICE" /v1/datasets "$DATA/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix.h5")" "upload 10x h5"
[ "$(jq_ 'd["n_obs"]')" = 1107 ] && [ "$(jq_ 'd["n_vars"]')" = 507 ] || fail "10x h5 shape: $(cat "$WORK/body")"
TENX=$(jq_ 'd["id"]')

# ---- two users: bob sees none of alice's data, on every dataset route ----
expect_problem 404 not-found "$(req "$BOB" GET "/v1/datasets/$ID")" "bob get"
expect_problem 404 not-found "$(req "$BOB" DELETE "/v1/datasets/$ID")" "bob delete"
expect 200 "$(req "$BOB" GET /v1/datasets)" "bob list"
[ "$(jq_ 'len(d["datasets"])')" = 0 ] || fail "bob lists alice's datasets"
expect_problem 404 not-found "$(req "$BOB" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$ID\"]}")" "bob job on alice's data"
expect 200 "$(req "$ROOT" GET "/v1/datasets/$ID")" "admin get"
expect 200 "$(req "$ALICE" GET '/v1/datasets?page_size=1')" "alice page 1"
[ "$(jq_ 'len(d["datasets"])')" = 1 ] || fail "page size"
TOKEN=$(jq_ 'd["next_page_token"]')
expect 200 "$(req "$ALICE" GET "/v1/datasets?page_size=1&page_token=$TOKEN")" "alice page 2"
[ "$(jq_ 'd["next_page_token"]')" = None ] || fail "page 2 should be last"

# ---- bad requests: problem+json 4xx, daemon keeps serving ----
expect_problem 401 unauthorized "$(req "" GET /v1/datasets)" "missing token"
expect_problem 401 unauthorized "$(req "sxt_wrong" GET /v1/datasets)" "unknown token"
expect_problem 404 not-found "$(req "$ALICE" GET /v1/nope)" "unknown route"
expect_problem 405 method-not-allowed "$(req "$ALICE" PUT /v1/jobs)" "wrong method"
expect_problem 400 malformed-json "$(req "$ALICE" POST /v1/jobs -d '{"type": "integrate",')" "malformed JSON"
expect_problem 400 wrong-type "$(req "$ALICE" POST /v1/jobs -d '[1,2]')" "array body"
expect_problem 400 unknown-field "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$ID\"],\"colour\":1}")" "unknown field"
expect_problem 400 unknown-field "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$ID\"],\"options\":{\"max_iterations\":5}}")" "unknown option"
expect_problem 400 unknown-field "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$ID\"],\"options\":{\"data_list\":[\"/etc/passwd\"]}}")" "server-owned option"
expect_problem 400 wrong-type "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$ID\"],\"options\":{\"max_iteration\":\"many\"}}")" "option type"
expect_problem 400 wrong-type "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":\"$ID\"}")" "datasets type"
expect_problem 400 invalid-value "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"cluster\",\"datasets\":[\"$ID\"]}")" "job type"
expect_problem 400 invalid-value "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$ID\"],\"options\":{\"profile\":\"DNA\"}}")" "option choice"
expect_problem 400 missing-field "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"project\",\"datasets\":[\"$ID\"]}")" "project without reference"
expect_problem 404 unknown-reference "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"project\",\"datasets\":[\"$ID\"],\"reference\":\"atlas\"}")" "unknown reference"
expect_problem 404 unknown-reference "$(upload "$ALICE" '/v1/references/atlas/map?wait=1' "$Q")" "map onto unknown reference"
head -c 300000 "$Q" >"$WORK/trunc.h5ad"
expect_problem 422 bad-format "$(upload "$ALICE" /v1/datasets "$WORK/trunc.h5ad")" "truncated h5ad"
head -c 200000 /dev/urandom >"$WORK/noise.bin"
expect_problem 422 bad-format "$(upload "$ALICE" /v1/datasets "$WORK/noise.bin")" "random bytes"
printf 'gene,c1,c2\nA,1,x\n' >"$WORK/bad.csv"
expect_problem 422 bad-format "$(upload "$ALICE" /v1/datasets "$WORK/bad.csv")" "corrupt csv"
: >"$WORK/empty"
expect_problem 400 empty-body "$(upload "$ALICE" /v1/datasets "$WORK/empty")" "empty upload"
head -c 3500000 /dev/zero >"$WORK/big.bin"
expect_problem 413 too-large "$(upload "$ALICE" /v1/datasets "$WORK/big.bin")" "upload over the limit"
expect_problem 413 too-large "$(upload "$ALICE" /v1/datasets "$WORK/big.bin" -H 'Transfer-Encoding: chunked')" "chunked upload over the limit"
expect_problem 415 unsupported-media-type "$(req "$ALICE" POST /v1/datasets -H 'Content-Type: multipart/mixed; boundary=x' --data-binary "@$Q")" "multipart/mixed"
expect_problem 400 invalid-parameter "$(req "$ALICE" GET '/v1/jobs?state=DONE')" "bad state filter"
expect_problem 400 invalid-parameter "$(req "$ALICE" GET '/v1/jobs?page_size=0')" "bad page size"
ls "$D/spool" | grep -q . && fail "spool files left behind: $(ls "$D/spool")"

# ---- delete ----
expect 204 "$(req "$ALICE" DELETE "/v1/datasets/$TENX")" "delete"
expect_problem 404 not-found "$(req "$ALICE" GET "/v1/datasets/$TENX")" "get deleted"
[ ! -e "$D/datasets/$TENX.h5" ] || fail "deleted dataset file still on disk"

# ---- operations ----
expect 200 "$(req "" GET /readyz)" "readyz"
expect 200 "$(req "" GET /metrics)" "metrics"
grep -q '^scalexd_jobs{state="QUEUED"} ' "$WORK/body" || fail "metrics: jobs by state"
grep -q '^scalexd_upload_bytes_total [1-9]' "$WORK/body" || fail "metrics: upload bytes"
grep -q '^scalexd_resident_memory_bytes [1-9]' "$WORK/body" || fail "metrics: rss"
expect 200 "$(req "" GET /v1/openapi.json)" "openapi"
[ "$(jq_ 'd["openapi"]')" = 3.1.0 ] || fail "openapi version"
expect 200 "$(req "" GET /v1/options)" "options"
[ "$(jq_ '[o["type"] for o in d["options"] if o["name"]=="max_iteration"][0]')" = integer ] || fail "options table"
expect 200 "$(req "$ALICE" GET /v1/me)" "me"
[ "$(jq_ 'd["user"]')" = alice ] || fail "me"
# CORS: allowed origin echoed, others not; preflight needs no token
code=$(curl -s -o /dev/null -D "$WORK/hdr" -w '%{http_code}' -X OPTIONS -H 'Origin: https://portal.example' \
       -H 'Access-Control-Request-Method: POST' "$URL/v1/jobs")
[ "$code" = 204 ] && grep -qi '^access-control-allow-origin: https://portal.example' "$WORK/hdr" || fail "CORS preflight"
req "$ALICE" GET /v1/datasets -H 'Origin: https://evil.example' >/dev/null
grep -qi '^access-control-allow-origin' "$WORK/hdr" && fail "CORS allowed an unlisted origin"
# logs are JSON lines with request ids
"$PY" -c "
import json
n = 0
for line in open('$WORK/daemon.log'):
    d = json.loads(line); n += 1
    assert 'ts' in d and 'level' in d and 'msg' in d
    if d['msg'] == 'request': assert d['request_id']
assert n > 20
" || fail "daemon log is not JSON lines"
# --no-auth is refused off loopback
"$BIN" --listen 0.0.0.0:0 --data-dir "$WORK/x" --no-auth 2>/dev/null && fail "--no-auth accepted on 0.0.0.0"
stop_daemon
grep -q '"msg":"stopped"' "$WORK/daemon.log" || fail "no clean stop"
echo "daemon_api: all checks passed"
