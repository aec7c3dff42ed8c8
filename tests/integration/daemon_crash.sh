#!/bin/bash
# Crash safety: kill -9 during a running job, restart: the job is re-queued (attempt 2) and
# runs again; a job that keeps dying ends SYSTEM_ERROR with a reason; uploads and finished
# results survive intact (sha256). SIGTERM drains: a job cut by the grace period is
# re-queued. Per-user limit: 429 with Retry-After.
source "$(dirname "$0")/daemon_common.bash"
D=$WORK/data
ALICE=$("$BIN" token create --data-dir "$D" --user alice)
start_daemon "$D" --workers 1 --threads-per-job 1 --user-max-jobs 2
P=$DATA/pancreas_baron_human_mouse_cider
expect 201 "$(upload "$ALICE" /v1/datasets "$P/reference_human.h5ad")" "upload"
DS=$(jq_ 'd["id"]')
DS_SHA=$(jq_ 'd["sha256"]')
# a short job that finishes, whose result must survive the crashes
expect 202 "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$DS\"],\"options\":{\"batch_name\":\"Sample\",\"max_iteration\":20,\"min_features\":10,\"ignore_umap\":true}}")" "short job"
DONE=$(jq_ 'd["id"]')
wait_job "$ALICE" "$DONE" 300 COMPLETE
RES_SHA=$(sha256sum "$D/jobs/$DONE/adata.h5ad" | cut -d' ' -f1)
# a long job, killed while it runs
LONG_REQ="{\"type\":\"integrate\",\"datasets\":[\"$DS\"],\"options\":{\"batch_name\":\"Sample\",\"max_iteration\":1000000,\"patience\":1000000,\"min_features\":10}}"
expect 202 "$(req "$ALICE" POST /v1/jobs -d "$LONG_REQ")" "long job"
LONG=$(jq_ 'd["id"]')
expect 202 "$(req "$ALICE" POST /v1/jobs -d "$LONG_REQ")" "second long job (queued)"
SECOND=$(jq_ 'd["id"]')
expect_problem 429 quota "$(req "$ALICE" POST /v1/jobs -d "$LONG_REQ")" "over the per-user limit"
grep -qi '^retry-after: [0-9]' "$WORK/hdr" || fail "429 without Retry-After"
expect 202 "$(req "$ALICE" POST "/v1/jobs/$SECOND/cancel")" "cancel queued"
[ "$(jq_ 'd["state"]')" = CANCELED ] || fail "cancel of a queued job"
wait_job "$ALICE" "$LONG" 120 RUNNING
kill9_daemon

start_daemon "$D" --workers 1 --threads-per-job 1
grep -q '1 re-queued' "$WORK/daemon.log" || fail "no reconciliation logged"
wait_job "$ALICE" "$LONG" 120 RUNNING
[ "$(jq_ 'd["attempts"]')" = 2 ] || fail "re-queued job attempts: $(cat "$WORK/body")"
expect 200 "$(req "$ALICE" GET "/v1/datasets/$DS")" "dataset after crash"
[ "$(sha256sum "$D/datasets/$DS.h5ad" | cut -d' ' -f1)" = "$DS_SHA" ] || fail "dataset changed"
[ "$(sha256sum "$D/jobs/$DONE/adata.h5ad" | cut -d' ' -f1)" = "$RES_SHA" ] || fail "result changed"
expect 200 "$(req "$ALICE" GET "/v1/jobs/$DONE/results/adata.h5ad")" "finished result after crash"
kill9_daemon

# third start allows 2 attempts: the job that died twice is failed, with the reason
start_daemon "$D" --workers 1 --threads-per-job 1 --max-attempts 2
expect 200 "$(req "$ALICE" GET "/v1/jobs/$LONG")" "get failed job"
[ "$(jq_ 'd["state"]')" = SYSTEM_ERROR ] || fail "after two crashes: $(cat "$WORK/body")"
[ "$(jq_ 'd["error"]["type"]')" = interrupted ] || fail "error type"
jq_ 'd["error"]["detail"]' | grep -q 'daemon stopped' || fail "no reason"

# SIGTERM drain: a running job cut by the grace period is re-queued, not lost
expect 202 "$(req "$ALICE" POST /v1/jobs -d "$LONG_REQ")" "job for the drain"
DRAIN=$(jq_ 'd["id"]')
wait_job "$ALICE" "$DRAIN" 120 RUNNING
kill -TERM "$DPID"
sleep 0.3
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" = 000 ] || fail "still accepting while draining"
wait "$DPID" || fail "drain exit status"
DPID=""
start_daemon "$D" --workers 1 --threads-per-job 1 --drain-grace 0.5
expect 200 "$(req "$ALICE" GET "/v1/jobs/$DRAIN")" "drained job"
S=$(jq_ 'd["state"]')
[ "$S" = QUEUED ] || [ "$S" = INITIALIZING ] || [ "$S" = RUNNING ] || fail "drained job is $S"
expect 202 "$(req "$ALICE" POST "/v1/jobs/$DRAIN/cancel")" "cancel running"
wait_job "$ALICE" "$DRAIN" 60 CANCELED
stop_daemon
echo "daemon_crash: all checks passed"
