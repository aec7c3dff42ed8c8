# Shared by the fake sbatch/squeue/sacct/scancel (tests/integration/cluster_slurm.sh): a
# "cluster" kept in files under $FAKE_SLURM_DIR: ID.state (Slurm state word), ID.exit
# (ExitCode), ID.child (pid of the running batch script), ID.cancel (scancel was called),
# ID.done_at (epoch seconds of the final state), next_id, sbatch.log (one line per call).
: "${FAKE_SLURM_DIR:?set FAKE_SLURM_DIR to the state folder of the fake cluster}"
mkdir -p "$FAKE_SLURM_DIR"
put() { echo "$2" >"$FAKE_SLURM_DIR/$1.tmp.$$" && mv "$FAKE_SLURM_DIR/$1.tmp.$$" "$FAKE_SLURM_DIR/$1"; }
get() { cat "$FAKE_SLURM_DIR/$1" 2>/dev/null || true; }
final_state() { case "$1" in COMPLETED|FAILED|TIMEOUT|OUT_OF_MEMORY|NODE_FAIL|CANCELLED*) return 0;; esac; return 1; }
