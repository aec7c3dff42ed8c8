/* srv_exec_internal — the executor object and the operations an executor implements,
 * shared by srv_exec*.c (not for other files).
 *
 * Adding an executor: write srv_exec_<name>.c defining `const srv_exec_ops
 * srv_exec_<name>_ops` and add it to the table in srv_exec_table.c; nothing else names it.
 * An executor either runs units in-process (`run`) or hands them elsewhere (`submit`,
 * `poll`, `cancel`), in which case the neutral loop of srv_exec.c writes job.json, keeps
 * the handle in the registry, polls, forwards progress.json, cancels and re-attaches. */
#ifndef SRV_EXEC_INTERNAL_H
#define SRV_EXEC_INTERNAL_H

#include "srv_exec.h"

struct srv_job_run;

/* Why the neutral loop asks an executor to explain an ending (its `explain`). */
typedef enum srv_exec_why {
    SRV_XW_FAILED,    /* ended EXECUTOR_ERROR: asked first (a kill the worker never saw) */
    SRV_XW_NO_STATUS, /* ended EXECUTOR_ERROR and the worker wrote no status of its own */
    SRV_XW_SYSTEM,    /* ended SYSTEM_ERROR (the executor failed, not the job) */
    SRV_XW_CANCELED,  /* ended CANCELED without scalexd asking */
    SRV_XW_LOST,      /* the executor forgot the unit and the unit wrote no final status */
} srv_exec_why;

typedef struct srv_exec_ops {
    const char *name;     /* the value of the `executor` setting */
    const char *summary;  /* a few words for --help ("in-process worker pool") */
    int local_cores;      /* units use this machine's cores (workers x threads <= cores) */
    const srv_exec_key *keys; /* its settings ({NULL}-terminated; names start "<name>_") */
    /* Read x->cfg's settings into x->impl (and x->poll_s); NULL = nothing to read. Called
     * by srv_exec_new; SX_EINVAL with a message naming the setting when one is bad. */
    int (*open)(srv_exec *x, sx_status *st);
    void (*close)(srv_exec *x); /* frees x->impl; NULL = nothing */
    /* In-process run; NULL for executors that run the unit elsewhere. */
    int (*run)(srv_exec *x, const struct srv_job_run *run, const sx_progress *prog,
               sx_status *st);
    /* Threads of a unit (written to job.json); NULL = run->threads. */
    int (*unit_threads)(srv_exec *x, const struct srv_job_run *run);
    /* Hand the job directory (run->outdir, job.json written) to the executor; its handle
     * (e.g. a cluster job id) goes to handle[64]. */
    int (*submit)(srv_exec *x, const struct srv_job_run *run, int threads, char handle[64],
                  sx_status *st);
    /* Current state of a submitted unit. SX_OK with state SRV_X_UNKNOWN when the executor
     * has no record of it; an SX_E* code when it could not be asked (try again later). */
    int (*poll)(srv_exec *x, const char *handle, srv_exec_status *out, sx_status *st);
    /* Ask the executor to stop the unit (asynchronous: poll until CANCELED). */
    int (*cancel)(srv_exec *x, const char *handle, sx_status *st);
    /* Explain an ending in the executor's own words: fill st and return its code, or
     * return SX_OK to let the neutral explanation stand. NULL = neutral words only. */
    int (*explain)(srv_exec *x, srv_exec_why why, const struct srv_job_run *run,
                   const char *handle, const srv_exec_status *es, sx_status *st);
} srv_exec_ops;

struct srv_exec {
    srv_exec_config cfg;
    const srv_exec_ops *ops;
    void *impl;           /* the executor's own state (ops->open) */
    double poll_s;        /* seconds between polls of a unit (ops->open; default 5) */
    struct srv_registry *reg;
    srv_exec_fn local_fn, after;
    void *local_user, *after_user;
    sx_io_limits limits;  /* written into each unit's job.json (srv_exec_set_limits) */
    int have_limits;
};

/* The table (srv_exec_table.c): the i-th executor, NULL past the end; by name, NULL if
 * none. */
const srv_exec_ops *srv_exec_table_at(int i);
const srv_exec_ops *srv_exec_table_find(const char *name);

#endif
