#!/bin/bash
# multipart/form-data uploads to POST /v1/datasets: one file (its sha256 is the file's, as
# sha256sum computes it), an mtx folder's three files (sizes checked against scipy reading the
# same files), the "name" form field; refused bodies are problem+json 4xx and leave no spool
# files; an uploaded mtx folder is usable by a job (the engine reads the folder) and is deleted
# as a whole.
source "$(dirname "$0")/daemon_common.bash"
D=$WORK/data
ALICE=$("$BIN" token create --data-dir "$D" --user alice)
BOB=$("$BIN" token create --data-dir "$D" --user bob)
start_daemon "$D" --max-upload-bytes 3000000 --workers 1 --threads-per-job 1
Q=$DATA/pancreas_baron_human_mouse_cider/query_mouse.h5ad
M=$DATA/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix

# ---- one file ----
expect 201 "$(req "$ALICE" POST /v1/datasets -F "file=@$Q")" "multipart one file"
[ "$(jq_ 'd["sha256"]')" = "$(sha256sum "$Q" | cut -d' ' -f1)" ] || fail "multipart sha256"
[ "$(jq_ 'd["size_bytes"]')" = "$(stat -c %s "$Q")" ] || fail "multipart size"
[ "$(jq_ 'd["format"]')" = h5ad ] || fail "multipart format"
"$PY" -c "
import anndata, json
a = anndata.read_h5ad('$Q'); d = json.load(open('$WORK/body'))
assert (d['n_obs'], d['n_vars']) == a.shape, (d, a.shape)
" || fail "multipart h5ad summary"

# ---- an mtx folder (three files) with a name field ----
expect 201 "$(req "$ALICE" POST /v1/datasets -F "m=@$M/matrix.mtx.gz" -F "f=@$M/features.tsv.gz" \
             -F "b=@$M/barcodes.tsv.gz" -F name=pbmc-chr21)" "multipart mtx folder"
MTX=$(jq_ 'd["id"]')
[ "$(jq_ 'd["name"]')" = pbmc-chr21 ] || fail "name form field"
"$PY" -c "
import json, scipy.io, gzip
d = json.load(open('$WORK/body'))
m = scipy.io.mmread(gzip.open('$M/matrix.mtx.gz'))   # genes x cells
nb = sum(1 for _ in gzip.open('$M/barcodes.tsv.gz'))
assert (d['n_obs'], d['n_vars']) == (m.shape[1], m.shape[0]) == (nb, m.shape[0]), (d, m.shape, nb)
" || fail "mtx folder summary against scipy"
[ -f "$D/datasets/$MTX/matrix.mtx.gz" ] || fail "mtx folder not stored as a folder"
expect 404 "$(req "$BOB" GET "/v1/datasets/$MTX")" "bob cannot see alice's mtx upload"

# a job reads the stored folder (integrate, tiny)
expect 202 "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$MTX\"],\"options\":{\"max_iteration\":20,\"min_features\":1,\"min_cells\":1,\"ignore_umap\":true}}")" "integrate on the mtx folder"
JOB=$(jq_ 'd["id"]')
wait_job "$ALICE" "$JOB" 300 COMPLETE EXECUTOR_ERROR SYSTEM_ERROR
[ "$(jq_ 'd["state"]')" = COMPLETE ] || fail "job on the mtx folder: $(cat "$WORK/body")"

# ---- refused bodies ----
expect_problem 400 bad-multipart "$(req "$ALICE" POST /v1/datasets -F "m=@$M/matrix.mtx.gz" -F "b=@$M/barcodes.tsv.gz")" "two files"
cp "$M/matrix.mtx.gz" "$WORK/other.gz"
expect_problem 400 bad-multipart "$(req "$ALICE" POST /v1/datasets -F "m=@$WORK/other.gz" -F "f=@$M/features.tsv.gz" -F "b=@$M/barcodes.tsv.gz")" "wrong file names"
expect_problem 400 bad-multipart "$(req "$ALICE" POST /v1/datasets -F "a=@$M/matrix.mtx.gz" -F "b=@$M/features.tsv.gz" -F "c=@$M/barcodes.tsv.gz" -F "d=@$Q")" "four files"
expect_problem 400 bad-multipart "$(req "$ALICE" POST /v1/datasets -F name=x)" "no file part"
expect_problem 400 bad-multipart "$(req "$ALICE" POST /v1/datasets -H 'Content-Type: multipart/form-data' --data-binary "@$Q")" "no boundary"
mkdir -p "$WORK/cut"
gzip -dc "$M/matrix.mtx.gz" >"$WORK/full.mtx"
head -c 20000 "$WORK/full.mtx" | gzip >"$WORK/cut/matrix.mtx.gz"
expect_problem 422 bad-format "$(req "$ALICE" POST /v1/datasets -F "m=@$WORK/cut/matrix.mtx.gz" -F "f=@$M/features.tsv.gz" -F "b=@$M/barcodes.tsv.gz")" "truncated matrix.mtx"
head -c 3500000 /dev/zero >"$WORK/big.bin"
expect_problem 413 too-large "$(req "$ALICE" POST /v1/datasets -F "file=@$WORK/big.bin")" "multipart over the limit"
ls "$D/spool" | grep -q . && fail "spool files left behind: $(ls "$D/spool")"

# ---- delete removes the folder ----
expect 204 "$(req "$ALICE" DELETE "/v1/datasets/$MTX")" "delete mtx folder"
[ ! -e "$D/datasets/$MTX" ] || fail "deleted mtx folder still on disk"
stop_daemon
echo "daemon_uploads: all checks passed"
