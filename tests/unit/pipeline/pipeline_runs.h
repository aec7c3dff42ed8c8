/* pipeline_runs — a tiny integrate run shared by the integrate and project tests. */
#ifndef PIPELINE_RUNS_H
#define PIPELINE_RUNS_H

#include "pipeline_synth.h"

/* Options of a few-step integration that keeps every synthetic cell and gene. */
static sx_pipeline_opts *syn_integrate_opts(int ignore_umap)
{
    sx_status st;
    sx_pipeline_opts *o = sx_pipeline_opts_new();
    const char *kv[][2] = {{"min_features", "1"}, {"min_cells", "1"}, {"n_top_features", "0"},
                           {"max_iteration", "40"}, {"batch_size", "64"}, {"eval", "true"},
                           {"ignore_umap", ignore_umap ? "true" : "false"}};
    for (size_t k = 0; k < sizeof kv / sizeof kv[0]; k++)
        ck_assert_msg(sx_pipeline_opts_set(o, kv[k][0], kv[k][1], &st) == SX_OK, "%s", st.msg);
    return o;
}

/* integrate DIR/ref.h5ad (n cells) into DIR/ref_out; returns that folder */
static const char *syn_integrate(const char *dir, int64_t n, int ignore_umap)
{
    static char out[600];
    snprintf(out, sizeof out, "%s/ref_out", dir);
    const char *in[1] = {syn_h5ad(dir, "ref", n, "r", 7, 0)};
    sx_pipeline_opts *o = syn_integrate_opts(ignore_umap);
    sx_status st;
    sx_job_spec j = {.type = SX_JOB_INTEGRATE, .inputs = in, .n_inputs = 1, .outdir = out,
                     .opts = o, .threads = 1};
    ck_assert_msg(sx_pipeline_run(&j, NULL, &st) == SX_OK, "%s", st.msg);
    sx_pipeline_opts_free(o);
    return out;
}

/* A numeric column of a job's table (rows x cols from col0), row-major into a new array. */
static double *syn_table_nums(const char *outdir, sx_jobdir_table_id id, int col0, int ncol,
                              int64_t *rows)
{
    char path[700];
    sx_status st;
    snprintf(path, sizeof path, "%s/%s", outdir, sx_jobdir_table_name(id));
    sx_jobdir_table *t = NULL;
    ck_assert_msg(sx_jobdir_table_open(path, &t, &st) == SX_OK, "%s", st.msg);
    int64_t n = *rows = sx_jobdir_table_rows(t);
    double *v = malloc(((size_t)n * ncol + 1) * sizeof *v), *c = malloc(((size_t)n + 1) * sizeof *c);
    for (int k = 0; k < ncol; k++) {
        ck_assert_int_eq(sx_jobdir_table_read_num(t, col0 + k, 0, n, c, &st), SX_OK);
        for (int64_t i = 0; i < n; i++) v[i * ncol + k] = c[i];
    }
    free(c);
    sx_jobdir_table_close(t);
    return v;
}

#endif
