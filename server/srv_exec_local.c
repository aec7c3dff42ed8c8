/* srv_exec_local — the default executor: srv_jobs' worker pool runs the unit on this machine.
 *
 * The engine's run function takes the worker thread. In scalexd it writes the same job.json a
 * cluster worker reads (with the daemon's input budget, which only the engine knows), then
 * hands the job directory to a `scalex run-job` child process under limits (daemon/sandbox.c,
 * isolation=process: a pre-started runner when one is ready) and relays its progress; with
 * isolation=thread (and in unit tests' fakes) it runs the pipeline in the worker thread.
 * Either way nothing outlives the daemon: an interrupted job is re-run. */
#include <stdlib.h>
#include <string.h>

#include "srv_exec_internal.h"
#include "srv_jobs.h"
#include "srv_util.h"

static int local_run(srv_exec *x, const srv_job_run *run, const sx_progress *prog, sx_status *st)
{
    if (!x->local_fn) return sx_status_set(st, SX_EINTERNAL, "local executor without a job function");
    return x->local_fn(x->local_user, run, prog, st);
}

const srv_exec_ops srv_exec_local_ops = {
    .name = "local",
    .summary = "in-process worker pool",
    .local_cores = 1,
    .run = local_run, /* no submit/poll/cancel: the worker's cancel flag stops the unit */
};
