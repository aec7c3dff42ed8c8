#!/bin/bash
# Two scalexd instances on one PostgreSQL registry (issue 9): a throwaway PostgreSQL cluster
# (Debian's postgresql, initdb + pg_ctl, trust auth, listening on 127.0.0.1 only) is started
# here; two scalexd share it and one data dir. A burst of projection jobs submitted
# alternately to both runs each job exactly once: psql reads attempts = 1 and one runner per
# job, both instances ran some, each instance's log has one start line per job it ran and
# none twice, every job's result file is there and its labels are the query's cells
# (python3-anndata). Tokens and datasets made through one instance are used through the
# other; GET /v1/jobs/{id} answers the same on both. Restarting one instance (kill -9) leaves
# the other's running job alone. The registry's unit tests (test_registry) also run on this
# PostgreSQL, with its PostgreSQL-only checks (schema parity with SQLite, claims of two
# instances under row locks).
#
# SX_PG_BENCH=1 also runs the same burst on one SQLite instance with as many workers and
# prints both rates (jobs/minute).
source "$(dirname "$0")/daemon_common.bash"
N=${SX_PG_BURST:-12}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ] ||
    fail "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin: install the Debian package postgresql (scripts/install-deps.sh does)"
command -v psql >/dev/null || fail "psql not found: install the Debian package postgresql-client"

# postgres refuses to run as root: as root, the cluster belongs to the postgres user in a
# folder of its own (WORK is private to root)
PGD=$(mktemp -d "${TMPDIR:-/tmp}/scalexd-pg-XXXXXX")
RUN=()
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || fail "running as root needs the postgres user (package postgresql)"
    chown postgres: "$PGD"
    RUN=(runuser -u postgres --)
fi
PID_a="" PID_b=""
stop_all() {
    local p
    for p in "$PID_a" "$PID_b"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    "${RUN[@]}" "$PGBIN/pg_ctl" -D "$PGD/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PGD"
}
trap 'stop_all; cleanup' EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PGPORT=$(free_port)
"${RUN[@]}" "$PGBIN/initdb" -D "$PGD/data" -U scalexd -A trust -E UTF8 --no-sync >"$PGD/initdb.log" 2>&1 ||
    { cat "$PGD/initdb.log" >&2; fail "initdb"; }
# loopback only, socket in the private folder, durability off (a throwaway cluster)
"${RUN[@]}" "$PGBIN/pg_ctl" -D "$PGD/data" -l "$PGD/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGD -c fsync=off -c synchronous_commit=off" \
    start >/dev/null || { cat "$PGD/server.log" >&2; fail "pg_ctl start"; }
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U scalexd)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE scalexd" || fail "createdb"
REG="postgresql://scalexd@127.0.0.1:$PGPORT/scalexd"
sql() { "${PSQL[@]}" -d scalexd -A -t -c "$1"; }

# the registry's unit tests, on this PostgreSQL (a database of their own)
UT=${SX_BUILD_DIR:?run through ctest}/daemon/test_registry # the daemon layers' unit tests build in daemon/
[ -x "$UT" ] || fail "$UT is not built"
"${PSQL[@]}" -d postgres -c "CREATE DATABASE unit" || fail "createdb unit"
SX_TEST_REGISTRY="postgresql://scalexd@127.0.0.1:$PGPORT/unit" "$UT" >"$WORK/unit.log" 2>&1 ||
    { cat "$WORK/unit.log" >&2; fail "test_registry on PostgreSQL"; }
grep -q "100%: Checks: [1-9]" "$WORK/unit.log" || fail "test_registry on PostgreSQL: $(cat "$WORK/unit.log")"

# a wrong registry URL fails at start with a message naming it and what to check
D=$WORK/data
if "$BIN" --listen 127.0.0.1:0 --data-dir "$D" --registry "postgresql://scalexd:secret@127.0.0.1:1/scalexd" \
    >"$WORK/bad.log" 2>&1; then fail "scalexd started on an unreachable registry"; fi
grep -q "cannot connect to the PostgreSQL registry postgresql://scalexd:\*\*\*@127.0.0.1:1/scalexd" "$WORK/bad.log" ||
    fail "unreachable registry message: $(cat "$WORK/bad.log")"
grep -q secret "$WORK/bad.log" && fail "the password was printed"

ALICE=$("$BIN" token create --data-dir "$D" --registry "$REG" --user alice --admin) || fail "token create" # publishes
[ "$(sql "SELECT count(*) FROM tokens t JOIN users u ON u.id = t.user_id WHERE u.name = 'alice'")" = 1 ] ||
    fail "the token is not in PostgreSQL"
[ "$(sql "SELECT max(version) FROM schema_version")" -ge 3 ] || fail "schema_version"
[ ! -e "$D/registry.sqlite" ] || fail "a SQLite registry was created beside PostgreSQL"

# start_instance NAME PORT: in the background, serving when /healthz answers
start_instance() {
    "$BIN" --listen "127.0.0.1:$2" --data-dir "$D" --registry "$REG" --instance "$1" \
        --workers 1 --threads-per-job 1 --drain-grace 5 >>"$WORK/$1.log" 2>&1 &
    local pid=$!
    printf -v "PID_$1" %s "$pid"
    for _ in $(seq 1 300); do
        curl -sf -o /dev/null "http://127.0.0.1:$2/healthz" && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$WORK/$1.log" >&2; fail "instance $1 exited at start"; }
        sleep 0.1
    done
    fail "instance $1 does not answer"
}
PA=$(free_port)
PB=$(free_port)
start_instance a "$PA"
start_instance b "$PB"
UA=http://127.0.0.1:$PA
UB=http://127.0.0.1:$PB
grep -q '"registry": *"postgresql"' "$WORK/a.log" || fail "instance a does not say it uses PostgreSQL: $(tail -3 "$WORK/a.log")"

# the reference: an integrate job through a, registered through b
P=$DATA/pancreas_baron_human_mouse_cider
URL=$UA
expect 201 "$(upload "$ALICE" '/v1/datasets?name=human' "$P/reference_human.h5ad")" "upload reference"
REF_DS=$(jq_ 'd["id"]')
URL=$UB
expect 200 "$(req "$ALICE" GET "/v1/datasets/$REF_DS")" "dataset of a seen through b"
expect 202 "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$REF_DS\"],\"options\":{\"batch_name\":\"Sample\",\"max_iteration\":30,\"min_features\":10,\"seed\":1}}")" "integrate"
IJ=$(jq_ 'd["id"]')
wait_job "$ALICE" "$IJ" 300 COMPLETE EXECUTOR_ERROR SYSTEM_ERROR
[ "$(jq_ 'd["state"]')" = COMPLETE ] || fail "integrate: $(cat "$WORK/body")"
URL=$UA
expect 201 "$(req "$ALICE" POST /v1/references -d "{\"name\":\"pancreas\",\"job\":\"$IJ\"}")" "register reference"
expect 201 "$(upload "$ALICE" '/v1/datasets?name=mouse' "$P/query_mouse.h5ad")" "upload query"
Q_DS=$(jq_ 'd["id"]')
PROJ="{\"type\":\"project\",\"datasets\":[\"$Q_DS\"],\"reference\":\"pancreas\",\"options\":{\"label\":\"Group\",\"seed\":1}}"

# burst: N projections, alternately to a and b, as fast as they are accepted
burst() { # burst ID_FILE URL1 URL2
    : >"$1"
    local i
    for i in $(seq 1 "$N"); do
        if [ $((i % 2)) = 1 ]; then URL=$2; else URL=$3; fi
        expect 202 "$(req "$ALICE" POST /v1/jobs -d "$PROJ")" "burst job $i"
        jq_ 'd["id"]' >>"$1"
    done
}
wait_all() { # wait_all ID_FILE: every job terminal
    local id
    while read -r id; do wait_job "$ALICE" "$id" 600 COMPLETE EXECUTOR_ERROR SYSTEM_ERROR CANCELED; done <"$1"
}
T0=$(date +%s.%N)
burst "$WORK/ids" "$UA" "$UB"
wait_all "$WORK/ids"
T_PG=$("$PY" -c "import time; print(round(time.time()-$T0,2))")

# exactly once: the registry's view (psql), each instance's own log, the files
IDS=$(sed "s/.*/'&'/" "$WORK/ids" | paste -sd,)
[ "$(sql "SELECT count(*) FROM jobs WHERE id IN ($IDS) AND state = 'COMPLETE' AND attempts = 1")" = "$N" ] ||
    fail "not every burst job COMPLETE after one attempt: $(sql "SELECT id, state, attempts, runner, error FROM jobs WHERE id IN ($IDS)")"
sql "SELECT runner, count(*) FROM jobs WHERE id IN ($IDS) GROUP BY runner ORDER BY runner" >"$WORK/runners"
echo "jobs per instance: $(paste -sd' ' "$WORK/runners")"
[ "$(cut -d'|' -f1 "$WORK/runners" | paste -sd,)" = "a,b" ] || fail "both instances should have run burst jobs: $(cat "$WORK/runners")"
"$PY" - "$WORK/ids" "$WORK/a.log" "$WORK/b.log" "$D" "$DATA/pancreas_baron_human_mouse_cider/query_mouse.h5ad" \
    "$(sql "SELECT id || ' ' || runner FROM jobs WHERE id IN ($IDS)" | paste -sd';')" <<'PY' || fail "exactly once"
import re, sys, os, anndata
ids = open(sys.argv[1]).read().split()
runner = dict(x.split(" ") for x in sys.argv[6].split(";"))
starts = {}
for inst, log in (("a", sys.argv[2]), ("b", sys.argv[3])):
    for line in open(log):
        m = re.search(r"job (job_[0-9a-f]+) \(project\) starts, attempt (\d+)", line)
        if m and m.group(1) in ids:
            starts.setdefault(m.group(1), []).append((inst, int(m.group(2))))
q = anndata.read_h5ad(sys.argv[5])
for j in ids:
    assert starts.get(j) == [(runner[j], 1)], (j, starts.get(j), runner[j])
    out = os.path.join(sys.argv[4], "jobs", j, "adata.h5ad")
    a = anndata.read_h5ad(out, backed="r")
    assert sorted(a.obs_names[a.obs_names.isin(q.obs_names)]) == sorted(q.obs_names), j
print(f"{len(ids)} jobs, each started once:", {k: sum(v[0][0] == k for v in starts.values()) for k in "ab"})
PY
# the API: the same job seen through both instances
J1=$(head -1 "$WORK/ids")
URL=$UA; expect 200 "$(req "$ALICE" GET "/v1/jobs/$J1")" "job through a"; cp "$WORK/body" "$WORK/ja"
URL=$UB; expect 200 "$(req "$ALICE" GET "/v1/jobs/$J1")" "job through b"
"$PY" - "$WORK/ja" "$WORK/body" <<'PY' || fail "job JSON differs between instances"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for d in (a, b):
    d.pop("timings")
assert a == b and a["state"] == "COMPLETE" and a["attempts"] == 1, (a, b)
assert "executor" not in a, a  # the local executor has no id of its own
PY
echo "cluster_postgres: $N projection jobs on 2 instances x 1 worker: ${T_PG}s = $("$PY" -c "print(round(60*$N/$T_PG,1))") jobs/min"

# a restarted instance reconciles its own jobs only: while one instance runs a long job,
# the other is killed (-9) and started again; the job stays RUNNING on its first attempt
LONG="{\"type\":\"integrate\",\"datasets\":[\"$REF_DS\"],\"options\":{\"batch_name\":\"Sample\",\"max_iteration\":1000000,\"patience\":1000000,\"min_features\":10}}"
URL=$UB
expect 202 "$(req "$ALICE" POST /v1/jobs -d "$LONG")" "long job"
LJ=$(jq_ 'd["id"]')
wait_job "$ALICE" "$LJ" 120 RUNNING
RUNNER=$(sql "SELECT runner FROM jobs WHERE id = '$LJ'")
case $RUNNER in a) OTHER=b; OP=$PB; RU=$UA;; b) OTHER=a; OP=$PA; RU=$UB;; *) fail "runner of $LJ: '$RUNNER'";; esac
OPID=PID_$OTHER
kill -9 "${!OPID}"
wait "${!OPID}" 2>/dev/null || true
start_instance "$OTHER" "$OP"
[ "$(sql "SELECT state || ' ' || attempts || ' ' || runner FROM jobs WHERE id = '$LJ'")" = "RUNNING 1 $RUNNER" ] ||
    fail "restarting $OTHER touched $RUNNER's job: $(sql "SELECT state, attempts, runner, message FROM jobs WHERE id = '$LJ'")"
# across instances (the job runner polls a shared registry): a map?wait=600 sent
# to the busy instance is run by the other one and answered when it ends (a projection of
# seconds: within 240 s even on a loaded machine, not at the end of the 600 s wait), and
# a cancel sent to the other instance stops the long job
URL=$RU
expect 200 "$(req "$ALICE" POST "/v1/references/pancreas/map?wait=600&label=Group" --max-time 240 \
    -H 'Content-Type: application/octet-stream' --data-binary "@$P/query_mouse.h5ad")" \
    "map through the busy instance (000: no answer when the job ended elsewhere)"
MJ=$(jq_ 'd["job"]["id"]')
[ "$(sql "SELECT runner FROM jobs WHERE id = '$MJ'")" = "$OTHER" ] || fail "the map job was not run by $OTHER"
URL=http://127.0.0.1:$OP
expect 202 "$(req "$ALICE" POST "/v1/jobs/$LJ/cancel")" "cancel the long job through $OTHER"
wait_job "$ALICE" "$LJ" 120 CANCELED

# a clean drain of both
for p in "$PID_a" "$PID_b"; do kill -TERM "$p"; done
for p in "$PID_a" "$PID_b"; do wait "$p" || fail "an instance exited with status $?"; done
PID_a="" PID_b=""

if [ "${SX_PG_BENCH:-0}" = 1 ]; then
    DS=$WORK/sqlite
    BOB=$("$BIN" token create --data-dir "$DS" --user alice --admin)
    start_daemon "$DS" --workers 2 --threads-per-job 1
    expect 201 "$(upload "$BOB" '/v1/datasets?name=human' "$P/reference_human.h5ad")" "upload reference"
    R2=$(jq_ 'd["id"]')
    expect 202 "$(req "$BOB" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$R2\"],\"options\":{\"batch_name\":\"Sample\",\"max_iteration\":30,\"min_features\":10,\"seed\":1}}")" "integrate"
    I2=$(jq_ 'd["id"]')
    wait_job "$BOB" "$I2" 300 COMPLETE
    expect 201 "$(req "$BOB" POST /v1/references -d "{\"name\":\"pancreas\",\"job\":\"$I2\"}")" "register"
    expect 201 "$(upload "$BOB" '/v1/datasets?name=mouse' "$P/query_mouse.h5ad")" "upload query"
    PROJ="{\"type\":\"project\",\"datasets\":[\"$(jq_ 'd["id"]')\"],\"reference\":\"pancreas\",\"options\":{\"label\":\"Group\",\"seed\":1}}"
    ALICE=$BOB
    T0=$(date +%s.%N)
    burst "$WORK/ids2" "$URL" "$URL"
    wait_all "$WORK/ids2"
    T_SQ=$("$PY" -c "import time; print(round(time.time()-$T0,2))")
    stop_daemon
    echo "cluster_postgres bench: $N projection jobs: PostgreSQL, 2 instances x 1 worker ${T_PG}s = $("$PY" -c "print(round(60*$N/$T_PG,1))") jobs/min; SQLite, 1 instance x 2 workers ${T_SQ}s = $("$PY" -c "print(round(60*$N/$T_SQ,1))") jobs/min"
fi
echo "cluster_postgres: OK"
