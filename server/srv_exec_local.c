/* srv_exec_local — the default executor: srv_jobs' worker pool runs the unit in-process.
 *
 * The job directory gets the same job.json a cluster worker would read (so any job dir
 * can be re-run by hand with `scalex run-job JOBDIR`), then the engine runs the pipeline
 * on the worker thread: the same sx_pipeline_run call, options and thread count that
 * `scalex run-job` makes, so results are identical to the Slurm path's. Progress and
 * cancel go through memory (sx_progress), not files: nothing to poll, nothing to
 * re-attach to after a restart (an interrupted job is re-run). */
#include <stdlib.h>
#include <string.h>

#include "srv_exec_internal.h"
#include "sx_jobdir.h"
#include "srv_jobs.h"
#include "srv_util.h"

static int local_run(srv_exec *x, const srv_job_run *run, const sx_progress *prog, sx_status *st)
{
    if (!x->local_fn) return sx_status_set(st, SX_EINTERNAL, "local executor without a job function");
    /* a record, not needed to run */
    sx_jobdir_spec_write(run->outdir, run->type, run->inputs, run->n_inputs, run->reference,
                         run->options, run->threads, NULL);
    return x->local_fn(x->local_user, run, prog, st);
}

static int local_submit(srv_exec *x, const char *jobdir, const char *job_id, const srv_exec_res *res,
                        char handle[64], sx_status *st)
{
    (void)x, (void)jobdir, (void)job_id, (void)res, (void)handle;
    return sx_status_set(st, SX_EUNSUPPORTED, "the local executor runs jobs in-process");
}

static int local_poll(srv_exec *x, const char *handle, srv_exec_status *out, sx_status *st)
{
    (void)x, (void)handle, (void)st;
    memset(out, 0, sizeof *out); /* a local unit does not outlive its process */
    return SX_OK;
}

static int local_cancel(srv_exec *x, const char *handle, sx_status *st)
{
    (void)x, (void)handle, (void)st;
    return SX_OK; /* the worker's cancel flag stops it */
}

const srv_exec_ops srv_exec_local_ops = {"local", local_run, local_submit, local_poll, local_cancel};
