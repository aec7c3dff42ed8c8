/* srv_exec — executors: where a claimed job's work runs.
 *
 * A job's work is a process-shaped unit: the job directory DATA_DIR/jobs/<id> holding
 * job.json (type, absolute input paths on the shared filesystem, reference, options,
 * threads) and, once run, the outputs plus status.json / progress.json, as written by
 * `scalex run-job JOBDIR` (cli/cmd_run_job.c; JOBDIR/cancel stops it).
 *
 * Executors are entries of one table (srv_exec_table.c); each lives in its own file
 * (srv_exec_<name>.c) and brings its name, its operations, its own settings (keys with
 * defaults and help, which srv_config offers as flags, config file lines and SCALEXD_*
 * variables) and its own explanations of failures. This file's neutral part runs either
 * kind of executor:
 *  - in-process (local): the worker pool of srv_jobs runs the unit through the same core
 *    pipeline call `scalex run-job` makes; no process, no polling;
 *  - elsewhere (a cluster, child processes): the unit is submitted, its handle kept in the
 *    registry (table job_executor, schema/0002_executor.sql) so a restarted scalexd
 *    re-attaches to it instead of submitting again, polled, canceled, and its progress
 *    read from JOBDIR/progress.json.
 *
 * srv_exec_job_fn is the srv_job_fn the daemon's worker threads call: for a unit that runs
 * elsewhere a worker thread only waits (polls), so `workers` bounds the units handed out
 * at once.
 */
#ifndef SRV_EXEC_H
#define SRV_EXEC_H

#include <jansson.h>
#include <stdatomic.h>

#include "sx_error.h"
#include "sx_io_limits.h"
#include "sx_progress.h"
#include "srv_db.h"

struct srv_registry;
struct srv_job_run;

/* A setting of an executor: its name is used as is in a config file, as --name (dashes
 * for underscores) and as SCALEXD_NAME; an executor's keys start with its name and '_'. */
typedef enum srv_exec_key_kind {
    SRV_XKEY_TEXT = 0,
    SRV_XKEY_SECONDS,  /* a non-negative number of seconds */
} srv_exec_key_kind;

typedef struct srv_exec_key {
    const char *name;       /* "<executor>_<setting>" */
    srv_exec_key_kind kind;
    const char *def;        /* default value text ("" = none) */
    const char *help;       /* one line for --help, the default in parentheses */
} srv_exec_key;

#define SRV_EXEC_MAX_SETTINGS 32
#define SRV_EXEC_VALUE_MAX 1024

/* Settings: the executor's name and the values set for any executor's keys (unset keys
 * read as their defaults). A plain value: copy it freely, nothing to free. */
typedef struct srv_exec_config {
    char executor[16];        /* an entry of the table ("local") */
    int n_set;
    struct {
        const srv_exec_key *key;
        char value[SRV_EXEC_VALUE_MAX];
    } set[SRV_EXEC_MAX_SETTINGS];
} srv_exec_config;

void srv_exec_config_defaults(srv_exec_config *c);
/* Set "executor" or a key of any executor in the table. SX_ENOTFOUND (st untouched) when no
 * executor has the key; SX_EINVAL with a message for a bad value. */
int srv_exec_config_set(srv_exec_config *c, const char *name, const char *value, sx_status *st);
/* The value of a setting (the one set, else its default); NULL for an unknown name. The
 * pointer is valid while c is unchanged. */
const char *srv_exec_config_get(const srv_exec_config *c, const char *name);
/* Every setting of the executors for --help and the environment: "executor" first, then
 * each executor's keys in table order; NULL past the end. */
const srv_exec_key *srv_exec_key_at(int i);
/* The --help line of a key (the "executor" key lists the table's executors). */
const char *srv_exec_key_help(const srv_exec_key *k, char *buf, size_t cap);
/* Does the configured executor run units in this process (jobs may share loaded
 * references), and on this machine's cores (workers x threads must fit them)? 0 for an
 * unknown executor. */
int srv_exec_config_in_process(const srv_exec_config *c);
int srv_exec_config_local_cores(const srv_exec_config *c);

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
    char reason[128];    /* the executor's reason or exit code, may be "" */
} srv_exec_status;

typedef struct srv_exec srv_exec;

/* The engine's in-process job function and the hook run after a successful job (e.g. the
 * UMAP table the API pages); both as in srv_job_fn. after may be NULL. */
typedef int (*srv_exec_fn)(void *user, const struct srv_job_run *run, const sx_progress *prog,
                           sx_status *st);

/* Create the executor named by cfg->executor. reg is used to keep and find the handles of
 * units that run elsewhere (it may be NULL for an in-process executor). NULL + st on a bad
 * configuration (an unknown executor: the message lists the known ones). Free with
 * srv_exec_free. */
srv_exec *srv_exec_new(const srv_exec_config *cfg, struct srv_registry *reg, srv_exec_fn local_fn,
                       void *local_user, srv_exec_fn after, void *after_user, sx_status *st);
void srv_exec_free(srv_exec *x);
/* The read budget (max_cells, max_genes, ...) written into every unit's job.json, so a job
 * that runs elsewhere (Slurm) reads its inputs under the daemon's limits, as a local child
 * does; copied. Unset (or NULL): the worker's defaults. */
void srv_exec_set_limits(srv_exec *x, const sx_io_limits *limits);
const char *srv_exec_name(const srv_exec *x);
int srv_exec_is_local(const srv_exec *x);

/* The srv_job_fn to give srv_jobs (user = the srv_exec). In-process: runs the unit.
 * Otherwise: writes job.json, submits (or re-attaches to the handle kept in the registry),
 * polls, forwards progress.json, cancels on the cancel flag, and on a daemon drain
 * (run->drain raised) leaves the unit running and returns SX_ECANCELED so the job is
 * re-queued and re-attached at the next start. */
int srv_exec_job_fn(void *user, const struct srv_job_run *run, const sx_progress *prog,
                    sx_status *st);

/* Start-up, before srv_job_reconcile: jobs the previous process left INITIALIZING/RUNNING
 * that have a unit at a remote executor are put back to QUEUED without consuming an
 * attempt (they will be re-attached, not re-run); CANCELING ones are canceled at the
 * executor. Returns the number of jobs re-attached (>= 0) or an SX_E* code (< 0). */
int srv_exec_prepare_reattach(srv_exec *x, srv_db *db, sx_status *st);
/* Should the runner keep the job directory of a claimed job (a unit to re-attach to lives
 * in it)? 1 = keep, 0 = empty it as usual. */
int srv_exec_keep_jobdir(srv_db *db, const char *job_id);

/* ---- registry rows of schema/0002_executor.sql ---- */
int srv_exec_handle_set(srv_db *db, const char *job_id, const char *executor, const char *handle,
                        const char *raw_state, sx_status *st);
/* SX_OK with handle[64] filled when the job has a live kept handle (handle[0] == 0 when
 * none; executor may be NULL), SX_EIO on a registry error. */
int srv_exec_handle_get(srv_db *db, const char *job_id, char executor[16], char handle[64],
                        sx_status *st);
int srv_exec_handle_clear(srv_db *db, const char *job_id, sx_status *st);

/* ---- pieces exposed for unit tests ---- */
/* Run argv (argv[0] found on PATH when it has no '/'), capture stdout (up to cap-1 bytes)
 * and the first line of stderr into err; returns the exit status (>= 0) or SX_EIO when it
 * could not be started. */
int srv_exec_command(char *const argv[], char *out, size_t cap, char *err, size_t errcap);

#endif
