/* sandbox — the daemon's work on untrusted bytes, moved into child processes.
 *
 * Upload validation opens a user's file with libhdf5 and the text readers. libhdf5 1.10
 * segfaults and loops forever on crafted files (../shared/security/fuzz), so the daemon
 * process never does that itself: sandbox_wrap_validate() replaces the engine's in-process
 * validate with one that runs `scalexd __validate FILE` (this same binary) under
 * srv_child's limits and reads its one-line JSON answer. A child that crashes, runs out of
 * memory or time costs that upload a 422, never the service.
 *
 * Jobs run as `scalex run-job` children too. Starting one costs its exec, dynamic loading and
 * OpenBLAS's start-up (~0.17 s), so each local worker keeps one runner pre-started
 * (`scalex run-job --wait-stdin`, blocked reading its job directory from a pipe): a job takes
 * a spare, writes its path, and is then watched like any child (deadline from the job's start,
 * cancel, progress, its ending). A spare runs exactly one job; a keeper thread starts the next
 * one after each job ends, so nothing is carried from one job to the next. A job that finds
 * no ready spare starts `scalex run-job JOBDIR` itself, as before.
 *
 * Ownership: the sandbox struct is the caller's (static or on main's stack) and must outlive
 * the engine it wraps; sandbox_stop before it goes.
 */
#ifndef SANDBOX_H
#define SANDBOX_H

#include <pthread.h>
#include <stdint.h>

#include "srv_child.h"
#include "srv_config.h"
#include "srv_engine.h"

#define SANDBOX_SPARES_MAX 64

/* The pre-started runners (guarded by mu): ready ones, and the jobs now running. */
typedef struct sandbox_spares {
    pthread_mutex_t mu;
    pthread_cond_t cv;           /* the keeper waits on it: a job ended, or stop */
    srv_child *ready[SANDBOX_SPARES_MAX];
    int n_ready;
    int n_busy;                  /* jobs running in a child (from a spare or not) */
    int want;                    /* spares + running jobs kept: one per worker */
    int nice;                    /* job_nice: the spares run at the job workers' priority */
    int stopping, started;
    double retry_at;             /* no new spare before (monotonic s): after a failure */
    pthread_t keeper;
} sandbox_spares;

typedef struct sandbox {
    char exe[4096];               /* absolute path of this binary (/proc/self/exe at start) */
    char worker[4096];            /* the job runner: `scalex` next to exe */
    srv_child_limits validate;    /* limits of a validation child (wall: the base deadline) */
    double validate_mb_per_s;     /* + size / this many MB/s to the deadline (large uploads) */
    srv_child_limits job;         /* limits of a job's child (wall 0: no deadline) */
    char **job_env;               /* a job runner's environment (sandbox_wrap_run; NULL: the
                                   * daemon's), malloc'd, freed by sandbox_stop */
    srv_engine inner;             /* the in-process engine, run inside the child */
    sandbox_spares spares;        /* pre-started job runners (sandbox_start) */
} sandbox;

/* Fill sb with the limits of cfg (validate_*, job_*) and the in-process engine *eng (whose user is the daemon's `engine`),
 * then point eng->validate at the child-process version. Returns SX_EIO when the binary's own path cannot be found. */
int sandbox_wrap_validate(sandbox *sb, const srv_config *cfg, srv_engine *eng, sx_status *st);

/* Point eng->run at the child-process version too: each job runs as `scalex run-job JOBDIR`
 * (the job-directory protocol, as on a Slurm node) under sb->job's limits; progress is relayed
 * from the job directory, a cancel kills the child's process group, and a child that crashes or
 * is killed ends the job with a message instead of the daemon. References are prepared for the
 * children (their flat map written once) instead of loaded into the daemon. Call after
 * sandbox_wrap_validate; SX_ENOTFOUND when `scalex` is not installed next to scalexd. */
int sandbox_wrap_run(sandbox *sb, const srv_config *cfg, srv_engine *eng, sx_status *st);

/* Keep one pre-started job runner per worker (cfg->workers, sized) when jobs run as children
 * on this machine (isolation=process with the local executor); nothing otherwise. Call once
 * the workers are sized. SX_EIO when the keeper thread cannot start. */
int sandbox_start(sandbox *sb, const srv_config *cfg, sx_status *st);
/* Stop the keeper and kill (and reap) every spare, and free job_env. Call after the job
 * workers stopped (a running job keeps its own child); safe when sandbox_start was not called. */
void sandbox_stop(sandbox *sb);

/* `scalexd __validate FILE`: run the in-process validation of eng on FILE and print one JSON
 * line ({"ok":true,"format",...} or {"ok":false,"code","message"}) on stdout. Exit 0 when an
 * answer was printed. */
int sandbox_validate_main(const srv_engine *eng, int argc, char **argv);

/* Prepare the reference folder at path for job runners: its reference.map (cells, model,
 * search index, label-transfer calibrations) and the API's tables, unless current. Done when
 * a reference is registered (`scalexd reference add`: the heavy part, 10 s for 1M cells) and
 * again when the daemon loads it (then only a check, when nothing changed). */
int sandbox_ref_prepare(const char *path, sx_status *st);

#endif
