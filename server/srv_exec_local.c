/* srv_exec_local — the default executor: srv_jobs' worker pool runs the unit in-process.
 *
 * The job directory gets the same job.json a cluster worker would read (so any job dir
 * can be re-run by hand with `scalex run-job JOBDIR`), then the engine runs the pipeline
 * on the worker thread: the same sx_pipeline_run call, options and thread count that
 * `scalex run-job` makes, so results are identical to other executors'. Progress and
 * cancel go through memory (sx_progress), not files: nothing to poll, nothing to
 * re-attach to after a restart (an interrupted job is re-run). */
#include <stdlib.h>
#include <string.h>

#include "srv_exec_internal.h"
#include "srv_jobs.h"
#include "srv_util.h"

static int local_run(srv_exec *x, const srv_job_run *run, const sx_progress *prog, sx_status *st)
{
    if (!x->local_fn) return sx_status_set(st, SX_EINTERNAL, "local executor without a job function");
    char *js = srv_exec_job_json(run, run->threads);
    if (js) {
        char path[4200];
        snprintf(path, sizeof path, "%s/job.json", run->outdir);
        srv_write_file_atomic(path, js, strlen(js), NULL); /* a record, not needed to run */
        free(js);
    }
    return x->local_fn(x->local_user, run, prog, st);
}

const srv_exec_ops srv_exec_local_ops = {
    .name = "local",
    .summary = "in-process worker pool",
    .local_cores = 1,
    .run = local_run, /* no submit/poll/cancel: the worker's cancel flag stops the unit */
};
