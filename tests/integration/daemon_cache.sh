#!/bin/bash
# The daemon's two caches (docs/guide: auth_cache_ttl, job_cache_ttl) keep their promises:
#  - job status served from memory is never older than a change made through this daemon:
#    with a 1-hour job_cache_ttl a polled job still shows its cancel at once, and a job polled
#    while queued is seen running and then finished. Every job-row writer raises one
#    generation (srv_job_generation); that each writer does is checked in
#    tests/unit/server/test_registry.c (job_writes_raise_generation), the cache's own rule in
#    tests/unit/server/test_api.c;
#  - a token revoked by another process (`scalexd token revoke`) is refused once
#    auth_cache_ttl has passed; the user's other token still works.
source "$(dirname "$0")/daemon_common.bash"
D=$WORK/data
ALICE=$("$BIN" token create --data-dir "$D" --user alice)
start_daemon "$D" --workers 1 --threads-per-job 1 --job-cache-ttl 3600 --auth-cache-ttl 1
P=$DATA/pancreas_baron_human_mouse_cider
expect 201 "$(upload "$ALICE" /v1/datasets "$P/reference_human.h5ad")" "upload"
DS=$(jq_ 'd["id"]')
job() { # job MAX_ITER: submit an integrate job, print its id
    expect 202 "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$DS\"],\"options\":{\"batch_name\":\"Sample\",\"max_iteration\":$1,\"min_features\":10,\"ignore_umap\":true}}")" "submit"
    jq_ 'd["id"]'
}
A=$(job 1000000) # keeps the only worker busy
B=$(job 30)      # queued behind A
# poll B while queued (its view is cached), then cancel it: the next GET shows the cancel
for _ in 1 2 3; do expect 200 "$(req "$ALICE" GET "/v1/jobs/$B")" "poll B"; done
[ "$(jq_ 'd["state"]')" = QUEUED ] || fail "B should wait behind A: $(cat "$WORK/body")"
expect 202 "$(req "$ALICE" POST "/v1/jobs/$B/cancel")" "cancel B"
expect 200 "$(req "$ALICE" GET "/v1/jobs/$B")" "B after cancel"
[ "$(jq_ 'd["state"]')" = CANCELED ] || fail "B after its cancel: $(cat "$WORK/body")"
# A: polled while it starts; running, then canceled — each change shows without the TTL
wait_job "$ALICE" "$A" 120 RUNNING
expect 202 "$(req "$ALICE" POST "/v1/jobs/$A/cancel")" "cancel A"
expect 200 "$(req "$ALICE" GET "/v1/jobs/$A")" "A after cancel"
case "$(jq_ 'd["state"]')" in CANCELING | CANCELED) ;; *) fail "A after its cancel: $(cat "$WORK/body")" ;; esac
wait_job "$ALICE" "$A" 120 CANCELED
# a short job polled until it finishes: the runner's writes reach the pollers
C=$(job 30)
wait_job "$ALICE" "$C" 300 COMPLETE EXECUTOR_ERROR SYSTEM_ERROR
[ "$(jq_ 'd["state"]')" = COMPLETE ] || fail "C: $(cat "$WORK/body")"
[ "$(jq_ 'd["progress"]')" = 1.0 ] || fail "C progress: $(cat "$WORK/body")"

# ---- a token revoked by another process ----
expect 200 "$(req "$ALICE" GET /v1/me)" "me"
expect 200 "$(req "" GET /metrics)" "metrics"
grep -q '^scalexd_auth_cache_total{result="hit"} [1-9]' "$WORK/body" || fail "metrics: auth cache hits: $(grep auth_cache "$WORK/body")"
# `scalexd token revoke` in another process, by the id `token list` shows; alice's second
# token stays valid
ALICE2=$("$BIN" token create --data-dir "$D" --user alice)
id=$("$PY" -c "import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest()[:12])" "$ALICE")
"$BIN" token list --data-dir "$D" --user alice >"$WORK/list" || fail "token list"
grep -q "^$id  *alice " "$WORK/list" || fail "token list lacks $id: $(cat "$WORK/list")"
[ "$(grep -c alice "$WORK/list")" = 2 ] || fail "token list: $(cat "$WORK/list")"
"$BIN" token revoke --data-dir "$D" "$id" >"$WORK/revoke" || fail "token revoke: $(cat "$WORK/revoke")"
grep -q "revoked 1 token" "$WORK/revoke" || fail "token revoke said: $(cat "$WORK/revoke")"
code=200
for _ in $(seq 1 100); do # the TTL is 1 s; a loaded machine gets 20 s
    code=$(req "$ALICE" GET /v1/me)
    [ "$code" = 401 ] && break
    sleep 0.2
done
expect_problem 401 unauthorized "$code" "revoked token"
expect 200 "$(req "$ALICE2" GET /v1/me)" "the other token"
stop_daemon
echo "daemon_cache: all checks passed"
