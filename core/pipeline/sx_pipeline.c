/* sx_pipeline — one run: resolve the settings, open the output folder and its log, and
 * dispatch to the workflow (sx_pipeline_integrate.c, _project.c, _transfer.c). What the
 * workflows share is described in sx_pipeline_ctx.h. */
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_jobdir.h"
#include "sx_nn.h"
#include "sx_pipeline.h"
#include "sx_pipeline_ctx.h"

/* The output folder and its log.txt. */
static int open_run(sx_pl_ctx *c, sx_status *st)
{
    const char *outdir = c->outdir;
    int rc = sx_pl_mkdirs(outdir, st);
    if (rc != SX_OK) return rc;
    char *lp = sx_pl_join(outdir, SX_JOBDIR_LOG);
    c->log.f = lp ? fopen(lp, "w") : NULL;
    sx_free(lp);
    if (!c->log.f)
        return sx_status_set(st, SX_EIO, "cannot write '%s/%s': check the output folder", outdir,
                             SX_JOBDIR_LOG);
    return SX_OK;
}

static int dispatch(sx_pl_ctx *c, sx_status *st)
{
    switch (c->job->type) {
    case SX_JOB_INTEGRATE: return sx_pl_integrate(c, st);
    case SX_JOB_PROJECT: return sx_pl_project(c, st);
    case SX_JOB_TRANSFER: return sx_pl_transfer(c, st);
    }
    return sx_status_set(st, SX_EINVAL, "unknown job type %d", (int)c->job->type);
}

int sx_pipeline_run(const sx_job_spec *job, const sx_progress *prog, sx_status *st)
{
    sx_pl_ctx c;
    memset(&c, 0, sizeof c);
    if (!job || !job->outdir || !job->opts)
        return sx_status_set(st, SX_EINVAL, "a job needs an output folder and options");
    int rc = sx_pl_settings_resolve(job, &c.set, st);
    if (rc != SX_OK) return rc;
    c.job = job;
    c.o = job->opts;
    c.prog = prog;
    c.outdir = job->outdir;
    c.t0 = c.t_stage = sx_pl_now();
    c.sha = sx_calloc((size_t)c.set.n_inputs + 1, sizeof *c.sha);
    if (!c.sha) return sx_pl_oom(st);
    if ((rc = open_run(&c, st)) != SX_OK) goto out;
    if (c.set.threads > 0) sx_nn_set_threads(c.set.threads);
    sx_pl_log_msg(&c.log, "scalex %s: %s job, output %s", SX_VERSION, sx_job_type_name(job->type),
                  job->outdir);
    sx_pl_log_settings(&c);
    rc = dispatch(&c, st);
    if (rc == SX_OK)
        sx_pl_log_msg(&c.log, "Done in %.1f s", sx_pl_now() - c.t0);
    else
        sx_pl_log_msg(&c.log, "Failed (%s): %s", sx_errname(rc), st->msg);
out:
    if (c.log.f) fclose(c.log.f);
    sx_sb_free(&c.metrics);
    sx_sb_free(&c.files);
    sx_sb_free(&c.qc);
    sx_free(c.sha);
    return rc;
}
