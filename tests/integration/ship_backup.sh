#!/bin/bash
# deploy/backup.sh against a running scalexd: a dataset uploaded and an integrate job done,
# backed up while the daemon runs (and while another upload is in flight), restored into a new
# dir, a fresh scalexd started on it: the token still works, the dataset is served with the
# sha256 of the original file (sha256sum), the job is COMPLETE and its UMAP and adata.h5ad are
# byte-identical to what the original daemon served. A damaged backup is refused.
source "$(dirname "$0")/daemon_common.bash"
SRC=${SX_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BK=$SRC/deploy/backup.sh
D=$WORK/data
ALICE=$("$BIN" token create --data-dir "$D" --user alice)
start_daemon "$D" --workers 1 --threads-per-job 1
P=$DATA/pancreas_baron_human_mouse_cider
expect 201 "$(upload "$ALICE" '/v1/datasets?name=human' "$P/reference_human.h5ad")" "upload"
DS=$(jq_ 'd["id"]')
expect 202 "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$DS\"],\"options\":{\"batch_name\":\"Sample\",\"max_iteration\":30,\"min_features\":10,\"seed\":1}}")" "integrate"
JOB=$(jq_ 'd["id"]')
wait_job "$ALICE" "$JOB" 300 COMPLETE EXECUTOR_ERROR SYSTEM_ERROR
[ "$(jq_ 'd["state"]')" = COMPLETE ] || fail "integrate: $(cat "$WORK/body")"
expect 200 "$(req "$ALICE" GET "/v1/jobs/$JOB/results/umap?page_size=100000")" "umap"
cp "$WORK/body" "$WORK/umap1.json"
expect 200 "$(req "$ALICE" GET "/v1/jobs/$JOB/results/adata.h5ad")" "adata"
cp "$WORK/body" "$WORK/adata1.h5ad"

# ---- backup while the daemon runs and another upload is being written ----
curl -sS -o /dev/null -H "Authorization: Bearer $ALICE" -H 'Content-Type: application/octet-stream' \
     --data-binary "@$P/query_mouse.h5ad" "$URL/v1/datasets?name=during-backup" &
UP=$!
bash "$BK" backup "$D" "$WORK/bk" >"$WORK/bk.log" 2>&1 || fail "backup: $(cat "$WORK/bk.log")"
wait "$UP" || fail "upload during the backup"
healthy
stop_daemon
[ -f "$WORK/bk/MANIFEST.sha256" ] && [ ! -e "$WORK/bk/spool" ] && [ ! -e "$WORK/bk/scalexd.port" ] ||
    fail "backup layout: $(ls "$WORK/bk")"

# ---- a damaged copy is refused ----
cp -a "$WORK/bk" "$WORK/bad"
f=$(find "$WORK/bad/datasets" -type f | head -1)
printf 'X' | dd of="$f" bs=1 seek=100 conv=notrunc 2>/dev/null
bash "$BK" restore "$WORK/bad" "$WORK/nope" >/dev/null 2>&1 && fail "a damaged backup was restored"
[ ! -e "$WORK/nope" ] || fail "restore wrote into the target despite a bad manifest"
bash "$BK" restore "$WORK/bk" "$D" 2>/dev/null && fail "restore into a non-empty data dir"

# ---- restore into a new dir and serve from it ----
bash "$BK" restore "$WORK/bk" "$WORK/restored" >"$WORK/rs.log" 2>&1 || fail "restore: $(cat "$WORK/rs.log")"
rm -rf "$D" # the original is gone: everything below comes from the backup
start_daemon "$WORK/restored" --workers 1 --threads-per-job 1
expect 200 "$(req "$ALICE" GET "/v1/datasets/$DS")" "restored dataset (the old token still works)"
[ "$(jq_ 'd["sha256"]')" = "$(sha256sum "$P/reference_human.h5ad" | cut -d' ' -f1)" ] ||
    fail "restored dataset sha256 differs from sha256sum of the original file"
cmp -s "$P/reference_human.h5ad" "$WORK/restored/datasets/$DS.h5ad" || fail "restored dataset bytes"
expect 200 "$(req "$ALICE" GET "/v1/jobs/$JOB")" "restored job"
[ "$(jq_ 'd["state"]')" = COMPLETE ] || fail "restored job state: $(cat "$WORK/body")"
expect 200 "$(req "$ALICE" GET "/v1/jobs/$JOB/results/umap?page_size=100000")" "restored umap"
cmp -s "$WORK/body" "$WORK/umap1.json" || fail "UMAP served after restore differs"
expect 200 "$(req "$ALICE" GET "/v1/jobs/$JOB/results/adata.h5ad")" "restored adata"
cmp -s "$WORK/body" "$WORK/adata1.h5ad" || fail "adata.h5ad served after restore differs"
"$PY" -c "import anndata,sys; a=anndata.read_h5ad(sys.argv[1]); assert 'X_umap' in a.obsm" "$WORK/body" ||
    fail "restored adata.h5ad does not open in anndata"
# the restored registry keeps working: a new job runs on the restored dataset
expect 202 "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$DS\"],\"options\":{\"batch_name\":\"Sample\",\"max_iteration\":10,\"min_features\":10,\"seed\":2,\"ignore_umap\":true}}")" "new job after restore"
wait_job "$ALICE" "$(jq_ 'd["id"]')" 300 COMPLETE
stop_daemon
echo "ship_backup: all checks passed"
