/* srv_jobs — the job runner: one libuv loop thread that owns job state changes, and a
 * bounded pool of worker pthreads that run jobs (redis bio.c shape).
 *
 * The registry is the queue's truth: HTTP threads insert QUEUED rows and call
 * srv_jobs_notify; the loop claims the oldest QUEUED row (QUEUED -> INITIALIZING, written
 * before a worker sees it), resolves its inputs to paths and hands it to an idle worker.
 * Workers report progress into their slot (mutex, no I/O); the loop flushes progress to
 * the row every 200 ms and writes the terminal state when the worker is done, then wakes
 * anyone waiting on the job (srv_jobs_wait). Workers never touch SQLite.
 *
 * The function that runs a job is injected (srv_job_fn): the daemon passes the core
 * pipeline (server/engine.c); unit tests pass a fake.
 */
#ifndef SRV_JOBS_H
#define SRV_JOBS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>

#include "sx_error.h"
#include "sx_progress.h"
#include "srv_registry.h"

typedef struct srv_job_run {
    const char *id;
    const char *type;               /* "integrate" | "project" | "label_transfer" */
    const char *outdir;             /* DATA_DIR/jobs/<id>, emptied before each attempt */
    const char *const *inputs;      /* absolute paths of the input datasets */
    int n_inputs;
    const char *const *input_sha256; /* their SHA-256 digests recorded at upload, or NULL */
    const char *reference;          /* absolute path of the reference folder, or NULL */
    const json_t *options;          /* the request's "options" object (validated) */
    int threads;                    /* compute threads budgeted to this job */
    int attempt;                    /* 1 for the first run */
    /* the reference already in memory (srv_refcache; the pipeline's sx_reference), borrowed
     * for the run; NULL when the job has none or no cache is configured */
    const void *reference_obj;
    /* raised with the cancel flag when a daemon drain (not a user) stops the job: an
     * executor whose unit outlives the daemon (Slurm) leaves it running (srv_exec.h) */
    const atomic_int *drain;
} srv_job_run;

/* Runs one job on a worker thread; returns SX_OK or an SX_E* code with st filled. */
typedef int (*srv_job_fn)(void *user, const srv_job_run *run, const sx_progress *prog,
                          sx_status *st);

typedef struct srv_jobs_config {
    srv_registry *reg;
    const char *data_dir;
    int workers;          /* concurrent jobs (>= 1) */
    int threads_per_job;  /* compute threads each */
    srv_job_fn fn;
    void *fn_user;
    double poll_s;        /* how often the loop re-reads the queue without a wake-up (default 1) */
    struct srv_refcache *refs; /* loaded references (borrowed; may be NULL) */
    int nice;             /* added to the worker threads' nice value (0 = unchanged) */
} srv_jobs_config;

typedef struct srv_jobs srv_jobs;

typedef struct srv_jobs_stats {
    int running;          /* jobs on workers now */
    int workers;
    int64_t finished[4];  /* COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR, CANCELED since start */
    double run_seconds_sum;
    int64_t run_seconds_count;
    int64_t run_seconds_bucket[6]; /* <= 1, 10, 60, 300, 1800, +Inf (cumulative) */
    int registry_failing; /* the last claim could not be written (a full disk?): dispatching
                             waits, and retries at each poll until a claim sticks */
    int64_t registry_failures; /* claims that could not be written, since start */
} srv_jobs_stats;

/* Start the loop and the workers. Reconciliation of a previous crash is done before this
 * (srv_job_reconcile). NULL + st on error. */
srv_jobs *srv_jobs_start(const srv_jobs_config *cfg, sx_status *st);
/* A job row was inserted: look at the queue now. Any thread. */
void srv_jobs_notify(srv_jobs *j);
/* Raise the cancel flag of a running job (the row is already CANCELING). Any thread.
 * Returns 1 when the job was on a worker. */
int srv_jobs_cancel(srv_jobs *j, const char *id);
/* Call fn(user, state) once on the loop thread when job `id` reaches a terminal state or
 * timeout_s passes (state is then the current non-terminal state), or when the runner stops
 * (SRV_JOB_UNKNOWN when the state could not be read).
 * Any thread. fn must be quick (e.g. resume an HTTP connection). */
typedef void (*srv_job_wait_fn)(void *user, const char *id, srv_jstate state);
int srv_jobs_wait(srv_jobs *j, const char *id, double timeout_s, srv_job_wait_fn fn, void *user);
void srv_jobs_get_stats(srv_jobs *j, srv_jobs_stats *s);
/* The reference cache the runner was configured with (NULL when none, or j is NULL). */
struct srv_refcache *srv_jobs_refcache(srv_jobs *j);
/* Drain and stop: dispatch no more jobs, let running ones finish for up to grace_s, then
 * cancel them and record them QUEUED again (they rerun at the next start); stop the loop,
 * join the threads, free. */
void srv_jobs_stop(srv_jobs *j, double grace_s);

/* The problem-type slug of a core error code ("gene-mismatch", "bad-format", ...). */
const char *srv_error_type(int code);

#endif
