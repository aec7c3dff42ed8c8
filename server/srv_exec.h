/* srv_exec — executors: where a claimed job's work runs.
 *
 * A job's work is a process-shaped unit: the job directory DATA_DIR/jobs/<id> holding
 * job.json (type, absolute input paths on the shared filesystem, reference, options,
 * threads) and, once run, the outputs plus status.json / progress.json, as written by
 * `scalex run-job JOBDIR` (cli/cmd_run_job.c; JOBDIR/cancel stops it).
 *
 *  - local (default): the worker pool of srv_jobs runs the unit in-process, through the
 *    same core pipeline call `scalex run-job` makes (ops->run); no process, no polling.
 *  - slurm: the unit is handed to Slurm (`sbatch --parsable` of a script that execs the
 *    worker binary `scalex run-job JOBDIR`), tracked with squeue then sacct, canceled with
 *    scancel; progress comes from JOBDIR/progress.json. The Slurm job id is kept in the
 *    registry (table job_executor, schema/0002_executor.sql) so a restarted scalexd
 *    re-attaches to it instead of submitting the job again.
 *
 * srv_exec_job_fn is the srv_job_fn the daemon's worker threads call: for slurm a worker
 * thread only waits (polls), so `workers` bounds the jobs handed to Slurm at once.
 */
#ifndef SRV_EXEC_H
#define SRV_EXEC_H

#include <jansson.h>
#include <stdatomic.h>

#include "sx_error.h"
#include "sx_progress.h"
#include "srv_db.h"

struct srv_registry;
struct srv_job_run;

/* Settings (srv_config keys executor, slurm_*; see srv_exec_config_defaults). */
typedef struct srv_exec_config {
    char executor[16];        /* "local" | "slurm" */
    char sbatch[1024], squeue[1024], sacct[1024], scancel[1024]; /* commands (PATH lookup) */
    char worker[1024];        /* the scalex binary as the compute nodes see it */
    char partition[128];      /* default partition ("" = the cluster's default) */
    char account[128];        /* --account ("" = none) */
    double poll_s;            /* seconds between squeue/sacct polls (5) */
    /* per job type: "cpus=N,mem=SIZE,time=LIMIT[,partition=P]" ("" = defaults) */
    char res_integrate[256], res_project[256], res_label_transfer[256];
} srv_exec_config;

void srv_exec_config_defaults(srv_exec_config *c);

/* Executor-neutral job states (a subset of the GA4GH TES names the registry uses). */
typedef enum srv_xstate {
    SRV_X_UNKNOWN = 0,  /* the executor does not know the job (any more) */
    SRV_X_QUEUED,
    SRV_X_RUNNING,
    SRV_X_COMPLETE,
    SRV_X_EXECUTOR_ERROR,
    SRV_X_SYSTEM_ERROR,
    SRV_X_CANCELED,
} srv_xstate;

const char *srv_xstate_name(srv_xstate s); /* TES name, "UNKNOWN" for SRV_X_UNKNOWN */
int srv_xstate_terminal(srv_xstate s);

typedef struct srv_exec_status {
    srv_xstate state;
    char raw[48];        /* the executor's own state word ("PENDING", "OUT_OF_MEMORY"...) */
    char reason[128];    /* squeue reason / sacct exit code, may be "" */
} srv_exec_status;

typedef struct srv_exec srv_exec;

/* Resources of one submission (from the per-type config spec). */
typedef struct srv_exec_res {
    int cpus;            /* 0 = the job's thread budget */
    char mem[32];        /* "16G", "" = cluster default */
    char time[32];       /* "04:00:00", "" = partition default */
    char partition[128]; /* "" = srv_exec_config.partition */
} srv_exec_res;

typedef struct srv_exec_ops {
    const char *name;
    /* In-process run (local): NULL for executors that run the unit elsewhere. */
    int (*run)(srv_exec *x, const struct srv_job_run *run, const sx_progress *prog, sx_status *st);
    /* Hand JOBDIR (job.json already written) to the executor; the handle (e.g. the Slurm
     * job id) is written into handle[64]. */
    int (*submit)(srv_exec *x, const char *jobdir, const char *job_id, const srv_exec_res *res,
                  char handle[64], sx_status *st);
    /* Current state of a submitted unit. SX_OK with state SRV_X_UNKNOWN when the executor
     * has no record of it; < 0 when the executor could not be asked (try again later). */
    int (*poll)(srv_exec *x, const char *handle, srv_exec_status *out, sx_status *st);
    /* Ask the executor to stop the unit (asynchronous: poll until CANCELED). */
    int (*cancel)(srv_exec *x, const char *handle, sx_status *st);
} srv_exec_ops;

/* The engine's in-process job function and the hook run after a successful job (e.g. the
 * UMAP table the API pages); both as in srv_job_fn. after may be NULL. */
typedef int (*srv_exec_fn)(void *user, const struct srv_job_run *run, const sx_progress *prog,
                           sx_status *st);

/* Create the executor named by cfg->executor. reg is used to keep and find Slurm ids (it
 * may be NULL for local). NULL + st on a bad configuration. Free with srv_exec_free. */
srv_exec *srv_exec_new(const srv_exec_config *cfg, struct srv_registry *reg, srv_exec_fn local_fn,
                       void *local_user, srv_exec_fn after, void *after_user, sx_status *st);
void srv_exec_free(srv_exec *x);
const char *srv_exec_name(const srv_exec *x);
int srv_exec_is_local(const srv_exec *x);

/* The srv_job_fn to give srv_jobs (user = the srv_exec). Local: runs the unit in-process.
 * Otherwise: writes job.json, submits (or re-attaches to the handle kept in the registry),
 * polls, forwards progress.json, cancels on the cancel flag, and on a daemon drain
 * (run->drain raised) leaves the unit running and returns SX_ECANCELED so the job is
 * re-queued and re-attached at the next start. */
int srv_exec_job_fn(void *user, const struct srv_job_run *run, const sx_progress *prog,
                    sx_status *st);

/* Start-up, before srv_job_reconcile: jobs the previous process left INITIALIZING/RUNNING
 * that have a unit at a remote executor are put back to QUEUED without consuming an
 * attempt (they will be re-attached, not re-run); CANCELING ones are canceled at the
 * executor. Returns the number of jobs re-attached (>= 0) or < 0 on error. */
int srv_exec_prepare_reattach(srv_exec *x, srv_db *db, sx_status *st);
/* Should the runner keep the job directory of a claimed job (a unit to re-attach to lives
 * in it)? 1 = keep, 0 = empty it as usual. */
int srv_exec_keep_jobdir(srv_db *db, const char *job_id);

/* ---- registry rows of schema/0002_executor.sql ---- */
int srv_exec_handle_set(srv_db *db, const char *job_id, const char *executor, const char *handle,
                        const char *raw_state, sx_status *st);
/* 1 with handle[64] filled when the job has a kept handle, 0 when none, < 0 on error. */
int srv_exec_handle_get(srv_db *db, const char *job_id, char executor[16], char handle[64],
                        sx_status *st);
int srv_exec_handle_clear(srv_db *db, const char *job_id, sx_status *st);

/* ---- pieces exposed for unit tests ---- */
/* Slurm state word (squeue %T / sacct State, e.g. "CANCELLED by 0", "OUT_OF_MEMORY") ->
 * executor state. Unknown words map to SRV_X_UNKNOWN. */
srv_xstate srv_slurm_map_state(const char *slurm_state);
/* `sbatch --parsable` output ("1234" or "1234;cluster") -> id into handle[64]. */
int srv_slurm_parse_sbatch(const char *out, char handle[64], sx_status *st);
/* `squeue -h -j ID -o %i|%T|%r` output -> status of ID; returns 1 when ID is listed, 0 when
 * not. */
int srv_slurm_parse_squeue(const char *out, const char *id, srv_exec_status *s);
/* `sacct -n -P -X -j ID -o JobIDRaw,State,ExitCode` output -> status of ID; 1 when listed. */
int srv_slurm_parse_sacct(const char *out, const char *id, srv_exec_status *s);
/* "cpus=4,mem=16G,time=04:00:00,partition=p" -> res (SX_EINVAL with a message if bad). */
int srv_exec_parse_res(const char *spec, srv_exec_res *res, sx_status *st);
/* Run argv (argv[0] found on PATH when it has no '/'), capture stdout (up to cap-1 bytes)
 * and the first line of stderr into err; returns the exit status (>= 0) or < 0 when it
 * could not be started. */
int srv_exec_command(char *const argv[], char *out, size_t cap, char *err, size_t errcap);

#endif
