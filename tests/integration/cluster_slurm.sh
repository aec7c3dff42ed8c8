#!/bin/bash
# scalexd with the Slurm executor (issue 9): a projection job through Slurm gives the same
# result as through the local executor, with its states observed (INITIALIZING while Slurm
# has it PENDING, RUNNING, COMPLETE); cancel reaches Slurm; a scalexd killed mid-job
# re-attaches to the Slurm job after its restart (no second sbatch, attempt not consumed),
# and a SIGTERM drain leaves the Slurm job running for the next start.
#
# The cluster: a single-node Slurm (Debian slurmctld + slurmd + munge) configured for
# loopback in $WORK, started and stopped here. It is installed (apt-get) only when
# SX_SLURM_TEST=1; otherwise used when already installed. When slurmd cannot run (not
# installed, not root, ...), the reason is printed and the same scenario runs against the
# fake sbatch/squeue/sacct/scancel of tests/data/slurm/fake, which must then pass.
source "$(dirname "$0")/daemon_common.bash"
SRC=${SX_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
FAKE=$SRC/tests/data/slurm/fake
SCALEX=${SCALEX_BIN:?run through ctest}
S=$WORK/slurm
MODE=fake
REASON=""

stop_slurm() {
    local pids=() p
    for p in slurmd slurmctld munged; do
        [ -s "$S/$p.pid" ] && pids+=("$(cat "$S/$p.pid")")
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    kill "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 50); do  # they write their state into $WORK: gone before it is removed
        kill -0 "${pids[@]}" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$S"/*.pid
}
trap 'stop_slurm; cleanup' EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_real_slurm() {
    if [ "$(id -u)" != 0 ]; then REASON="slurmd must run as root and this test runs as $(id -un)"; return 1; fi
    if ! command -v slurmd >/dev/null || ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null \
        || ! command -v sbatch >/dev/null; then
        if [ "${SX_SLURM_TEST:-0}" = 1 ]; then
            echo "installing slurmctld slurmd slurm-client munge (SX_SLURM_TEST=1)"
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
                slurmctld slurmd slurm-client munge >"$WORK/apt.log" 2>&1 \
                || { REASON="apt-get install of Slurm failed: $(tail -1 "$WORK/apt.log")"; return 1; }
        else
            REASON="Slurm is not installed (SX_SLURM_TEST=1 installs slurmctld, slurmd, munge)"
            return 1
        fi
    fi
    local host; host=$(hostname -s)
    getent hosts "$host" >/dev/null || { REASON="the host name $host does not resolve"; return 1; }
    mkdir -p "$S/state" "$S/spool" "$S/munge"
    chmod 700 "$S/munge"
    head -c 1024 /dev/urandom >"$S/munge/munge.key"
    chmod 600 "$S/munge/munge.key"
    munged -f -S "$S/munge/sock" --key-file="$S/munge/munge.key" --log-file="$S/munge/log" \
        --pid-file="$S/munged.pid" --seed-file="$S/munge/seed" 2>"$S/munged.err" \
        || { REASON="munged does not start: $(head -1 "$S/munged.err")"; return 1; }
    cat >"$S/slurm.conf" <<EOF
ClusterName=sxtest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$S/munge/sock
CredType=cred/munge
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/slurmctld.log
SlurmdLogFile=$S/slurmd.log
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 RealMemory=2000 State=UNKNOWN
PartitionName=sxdebug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF=$S/slurm.conf
    slurmctld -f "$S/slurm.conf" 2>"$S/ctld.err" || { REASON="slurmctld does not start: $(head -1 "$S/ctld.err")"; return 1; }
    slurmd -f "$S/slurm.conf" 2>"$S/slurmd.err" || { REASON="slurmd does not start: $(head -1 "$S/slurmd.err")"; return 1; }
    for _ in $(seq 1 50); do
        sinfo -h -o %t 2>/dev/null | grep -q idle && return 0
        sleep 0.2
    done
    REASON="the node never became idle: $(tail -2 "$S/slurmd.log" 2>/dev/null | tr '\n' ' ')"
    return 1
}

# SX_SLURM_FAKE=1 runs the fake cluster even where a real one could start
REAL=0
if [ "${SX_SLURM_FAKE:-0}" = 1 ]; then
    REASON="SX_SLURM_FAKE=1 asks for the fake cluster"
elif start_real_slurm; then
    REAL=1
fi
if [ "$REAL" = 1 ]; then
    MODE=real
    echo "cluster_slurm: running against a real single-node Slurm ($(sbatch --version))"
    SLURM_FLAGS=(--executor slurm --slurm-worker "$SCALEX" --slurm-poll 0.3 --slurm-partition sxdebug)
    SQ() { squeue -h -t all -j "$1" -o '%T'; }
    SBATCH_COUNT() { squeue -h -t all -o %i | wc -l; }
    # keep the next jobs PENDING: a job of someone else takes both CPUs of the node
    HOLD() {
        BLOCKER=$(sbatch --parsable -p sxdebug --cpus-per-task=2 -o /dev/null --wrap 'sleep 600')
        for _ in $(seq 1 100); do [ "$(SQ "$BLOCKER")" = RUNNING ] && return 0; sleep 0.1; done
        fail "the blocking job $BLOCKER does not start"
    }
    RELEASE() { scancel "$BLOCKER"; }
else
    stop_slurm
    unset SLURM_CONF
    echo "cluster_slurm: slurmd cannot run here: $REASON"
    echo "cluster_slurm: running the same scenario against tests/data/slurm/fake"
    export FAKE_SLURM_DIR=$WORK/fakecluster FAKE_SLURM_PENDING_S=1.5
    SLURM_FLAGS=(--executor slurm --slurm-worker "$SCALEX" --slurm-poll 0.3
                 --slurm-sbatch "$FAKE/sbatch" --slurm-squeue "$FAKE/squeue"
                 --slurm-sacct "$FAKE/sacct" --slurm-scancel "$FAKE/scancel")
    SQ() { cat "$FAKE_SLURM_DIR/$1.state"; }
    SBATCH_COUNT() { cat "$FAKE_SLURM_DIR/sbatch.log" 2>/dev/null | wc -l; }
    HOLD() { touch "$FAKE_SLURM_DIR/hold"; }
    RELEASE() { rm -f "$FAKE_SLURM_DIR/hold"; }
fi
slurm_id() { "$PY" -c "import sqlite3,sys; r=sqlite3.connect('$D/registry.sqlite').execute(\"select handle from job_executor where job_id=?\",(sys.argv[1],)).fetchone(); print(r[0] if r else '')" "$1"; }
job_field() { req "$ALICE" GET "/v1/jobs/$1" >/dev/null; jq_ "d[\"$2\"]"; }

D=$WORK/data
ALICE=$("$BIN" token create --data-dir "$D" --user alice --admin) # publishes the reference
P=$DATA/pancreas_baron_human_mouse_cider

# ---- the local executor: reference + projection ----
start_daemon "$D" --workers 1 --threads-per-job 1
expect 201 "$(upload "$ALICE" '/v1/datasets?name=human' "$P/reference_human.h5ad")" "upload reference"
REF_DS=$(jq_ 'd["id"]')
expect 202 "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$REF_DS\"],\"options\":{\"batch_name\":\"Sample\",\"max_iteration\":30,\"min_features\":10,\"seed\":1}}")" "integrate"
IJ=$(jq_ 'd["id"]')
wait_job "$ALICE" "$IJ" 300 COMPLETE EXECUTOR_ERROR SYSTEM_ERROR
[ "$(jq_ 'd["state"]')" = COMPLETE ] || fail "integrate: $(cat "$WORK/body")"
expect 201 "$(req "$ALICE" POST /v1/references -d "{\"name\":\"pancreas\",\"job\":\"$IJ\"}")" "register reference"
expect 201 "$(upload "$ALICE" '/v1/datasets?name=mouse' "$P/query_mouse.h5ad")" "upload query"
Q_DS=$(jq_ 'd["id"]')
PROJ="{\"type\":\"project\",\"datasets\":[\"$Q_DS\"],\"reference\":\"pancreas\",\"options\":{\"label\":\"Group\",\"seed\":1}}"
LONG="{\"type\":\"integrate\",\"datasets\":[\"$REF_DS\"],\"options\":{\"batch_name\":\"Sample\",\"max_iteration\":1000000,\"patience\":1000000,\"min_features\":10}}"
expect 202 "$(req "$ALICE" POST /v1/jobs -d "$PROJ")" "local project"
LJ=$(jq_ 'd["id"]')
T0=$(date +%s.%N)
wait_job "$ALICE" "$LJ" 300 COMPLETE EXECUTOR_ERROR SYSTEM_ERROR
T_LOCAL=$("$PY" -c "import time; print(round(time.time()-$T0,2))")
[ "$(jq_ 'd["state"]')" = COMPLETE ] || fail "local project: $(cat "$WORK/body")"
[ -z "$(slurm_id "$LJ")" ] || fail "a local job has a Slurm id"
stop_daemon

# ---- the Slurm executor: same projection, states observed ----
start_daemon "$D" --workers 4 --threads-per-job 1 "${SLURM_FLAGS[@]}"
expect 202 "$(req "$ALICE" POST /v1/jobs -d "$PROJ")" "slurm project"
SJ=$(jq_ 'd["id"]')
T0=$(date +%s.%N)
SEEN=""
for _ in $(seq 1 1500); do
    s=$(job_field "$SJ" state)
    case " $SEEN " in *" $s "*) ;; *) SEEN="$SEEN $s";; esac
    case $s in COMPLETE|EXECUTOR_ERROR|SYSTEM_ERROR|CANCELED) break;; esac
    sleep 0.1
done
T_SLURM=$("$PY" -c "import time; print(round(time.time()-$T0,2))")
[ "$s" = COMPLETE ] || fail "slurm project ended $s: $(cat "$WORK/body")"
echo "cluster_slurm: states seen: $SEEN (local ${T_LOCAL}s, slurm ${T_SLURM}s)"
# a projection runs ~2 s: a poll on a loaded machine may step over its RUNNING, so here a
# state before the end is required; RUNNING itself is observed on the long job below
case "$SEEN" in *INITIALIZING*COMPLETE*|*RUNNING*COMPLETE*) ;; *) fail "states seen: $SEEN";; esac
ID=$(slurm_id "$SJ")
[[ "$ID" =~ ^[0-9]+$ ]] || fail "no Slurm id kept for $SJ: '$ID'"
[ "$(SQ "$ID")" = COMPLETED ] || fail "Slurm says $(SQ "$ID") for $ID"
[ -f "$D/jobs/$SJ/slurm-$ID.out" ] || fail "no slurm-$ID.out in the job dir"
[ -s "$D/jobs/$SJ/umap.sxt" ] || fail "no UMAP table after the Slurm job"
expect 200 "$(req "$ALICE" GET "/v1/jobs/$SJ/results/labels")" "labels of the Slurm job"
# identical to the local executor's result: latent, UMAP and transferred labels
"$PY" - "$D/jobs/$LJ/adata.h5ad" "$D/jobs/$SJ/adata.h5ad" <<'PY' || fail "Slurm result differs from the local one"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert set(a["obsm"]) == set(b["obsm"]) and len(a["obsm"]) > 0, (list(a["obsm"]), list(b["obsm"]))
bad = []
for k in a["obsm"]:
    x, y = np.asarray(a["obsm"][k]), np.asarray(b["obsm"][k])
    # NaN where a value does not apply (the reference cells' transfer probabilities)
    if x.shape != y.shape or not np.array_equal(x, y, equal_nan=True):
        bad.append(k)
        print(k, "differs:", x.shape, y.shape, np.abs(x - y).max() if x.shape == y.shape else "")
assert not bad, bad
def col(f, name):
    g = f["obs"][name]
    if isinstance(g, h5py.Group):  # categorical
        return np.asarray(g["categories"]).astype(str)[np.asarray(g["codes"])]
    return np.asarray(g).astype(str)
cols = [c for c in a["obs"].keys() if c != "_index"]
assert any("transfer" in c for c in cols), cols
for c in cols:
    assert np.array_equal(col(a, c), col(b, c)), c
print("identical:", sorted(a["obsm"]), len(cols), "obs columns")
PY

# ---- cancel reaches Slurm ----
expect 202 "$(req "$ALICE" POST /v1/jobs -d "$LONG")" "long job"
CJ=$(jq_ 'd["id"]')
wait_job "$ALICE" "$CJ" 120 RUNNING
echo "cluster_slurm: long job $CJ RUNNING through Slurm"
CID=$(slurm_id "$CJ")
expect 202 "$(req "$ALICE" POST "/v1/jobs/$CJ/cancel")" "cancel"
wait_job "$ALICE" "$CJ" 60 CANCELED
for _ in $(seq 1 50); do case "$(SQ "$CID")" in CANCELLED*|FAILED) break;; esac; sleep 0.2; done
case "$(SQ "$CID")" in CANCELLED*) ;;
    FAILED) grep -q '"canceled"' "$D/jobs/$CJ/status.json" || fail "job $CID failed instead of stopping";;
    *) fail "Slurm job $CID is $(SQ "$CID") after the cancel";; esac
pgrep -f "run-job $D/jobs/$CJ" >/dev/null && fail "the worker of $CJ still runs"

# ---- scalexd killed mid-job: re-attach, same Slurm job, result identical ----
# the cluster is busy, so the job waits PENDING at Slurm across the restart
mkdir -p "${FAKE_SLURM_DIR:-$WORK}"
HOLD
N0=$(SBATCH_COUNT)
expect 202 "$(req "$ALICE" POST /v1/jobs -d "$PROJ")" "project to re-attach"
RJ=$(jq_ 'd["id"]')
for _ in $(seq 1 100); do [ -n "$(slurm_id "$RJ")" ] && break; sleep 0.1; done
RID=$(slurm_id "$RJ")
[ -n "$RID" ] || fail "no Slurm id before the kill"
[ "$(SQ "$RID")" = PENDING ] || fail "Slurm job $RID is $(SQ "$RID"), expected PENDING"
[ "$(job_field "$RJ" state)" = INITIALIZING ] || fail "a job PENDING at Slurm: $(cat "$WORK/body")"
kill9_daemon
start_daemon "$D" --workers 4 --threads-per-job 1 "${SLURM_FLAGS[@]}"
grep -q "re-attach" "$WORK/daemon.log" || fail "no re-attach logged"
wait_job "$ALICE" "$RJ" 30 INITIALIZING
RELEASE
wait_job "$ALICE" "$RJ" 300 COMPLETE EXECUTOR_ERROR SYSTEM_ERROR
[ "$(jq_ 'd["state"]')" = COMPLETE ] || fail "re-attached job: $(cat "$WORK/body")"
[ "$(jq_ 'd["attempts"]')" = 1 ] || fail "re-attach consumed an attempt: $(cat "$WORK/body")"
[ "$(slurm_id "$RJ")" = "$RID" ] || fail "a new Slurm job $(slurm_id "$RJ") instead of $RID"
[ "$(SBATCH_COUNT)" = $((N0 + 1)) ] || fail "sbatch ran $(( $(SBATCH_COUNT) - N0 )) times for one job"
"$PY" - "$D/jobs/$LJ/adata.h5ad" "$D/jobs/$RJ/adata.h5ad" <<'PY' || fail "re-attached result differs"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
for k in a["obsm"]:
    assert np.array_equal(np.asarray(a["obsm"][k]), np.asarray(b["obsm"][k]), equal_nan=True), k
PY

# ---- SIGTERM drain: the Slurm job is left running and re-attached ----
expect 202 "$(req "$ALICE" POST /v1/jobs -d "$LONG")" "job for the drain"
DJ=$(jq_ 'd["id"]')
wait_job "$ALICE" "$DJ" 120 RUNNING
DID=$(slurm_id "$DJ")
stop_daemon
[ "$(SQ "$DID")" = RUNNING ] || fail "the drain stopped Slurm job $DID: $(SQ "$DID")"
start_daemon "$D" --workers 4 --threads-per-job 1 "${SLURM_FLAGS[@]}"
wait_job "$ALICE" "$DJ" 60 RUNNING
[ "$(slurm_id "$DJ")" = "$DID" ] || fail "drained job resubmitted"
expect 202 "$(req "$ALICE" POST "/v1/jobs/$DJ/cancel")" "cancel after re-attach"
wait_job "$ALICE" "$DJ" 60 CANCELED
stop_daemon

# SX_SLURM_BENCH=N: a burst of N projection jobs through each executor (2 at a time both
# ways: 2 local workers, a 2-CPU node), for the figures in docs/slurm-executor.md
burst() { # burst N -> seconds until all N are COMPLETE
    local ids=() t0 i
    t0=$(date +%s.%N)
    for i in $(seq 1 "$1"); do
        expect 202 "$(req "$ALICE" POST /v1/jobs -d "$PROJ")" "burst job $i"
        ids+=("$(jq_ 'd["id"]')")
    done
    for i in "${ids[@]}"; do wait_job "$ALICE" "$i" 600 COMPLETE; done
    "$PY" -c "import time; print(round(time.time()-$t0,2))"
}
if [ "${SX_SLURM_BENCH:-0}" -gt 0 ]; then
    N=$SX_SLURM_BENCH
    start_daemon "$D" --workers 2 --threads-per-job 1
    TL=$(burst "$N")
    stop_daemon
    start_daemon "$D" --workers "$N" --threads-per-job 1 "${SLURM_FLAGS[@]}"
    TS=$(burst "$N")
    stop_daemon
    "$PY" -c "
n=$N; tl=$TL; ts=$TS
print(f'cluster_slurm bench ($MODE): {n} projection jobs, 2 at a time: local {tl}s = {60*n/tl:.1f} jobs/min, '
      f'slurm {ts}s = {60*n/ts:.1f} jobs/min; single job local $T_LOCAL s, slurm $T_SLURM s '
      f'(overhead {$T_SLURM-$T_LOCAL:.2f} s/job)')"
fi
echo "cluster_slurm ($MODE): all checks passed"
