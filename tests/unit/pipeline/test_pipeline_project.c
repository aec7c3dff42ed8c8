/* The projection workflow: the reference's own cells projected onto it land on their
 * reference latent (eval mode: each cell's code does not depend on its minibatch), and the
 * labels transferred to them are the generator's types. */
#include "pipeline_runs.h"
#include "sx_io.h"
#include "sx_transfer.h"
#include "sx_umap.h"

START_TEST(own_cells_land_on_their_latent)
{
    const char *dir = sx_test_tmpdir();
    const char *ref = syn_integrate(dir, 300, 1);
    char out[600], qpath[600];
    snprintf(out, sizeof out, "%s/proj", dir);
    snprintf(qpath, sizeof qpath, "%s/ref.h5ad", dir);
    sx_status st;
    sx_pipeline_opts *o = syn_integrate_opts(1);
    ck_assert_int_eq(sx_pipeline_opts_set(o, "label", "celltype", &st), SX_OK);
    const char *in[1] = {qpath};
    sx_job_spec j = {.type = SX_JOB_PROJECT, .inputs = in, .n_inputs = 1, .reference = ref,
                     .outdir = out, .opts = o, .threads = 1};
    ck_assert_msg(sx_pipeline_run(&j, NULL, &st) == SX_OK, "%s", st.msg);
    sx_pipeline_opts_free(o);
    sx_reference *R = sx_reference_load(ref, &st);
    ck_assert_msg(R != NULL, "%s", st.msg);
    int64_t n;
    double *z = syn_table_nums(out, SX_JOBDIR_LATENT, 1, R->dim, &n);
    /* the query only: the reference's cells are its own tables' (refcells.json says so,
     * with the fingerprint of the reference's cells that the reference's tables state) */
    ck_assert_int_eq(n, R->n_cells);
    sx_jobdir_refcells jc, rc;
    ck_assert_int_eq(sx_jobdir_refcells_read(out, &jc, &st), SX_OK);
    ck_assert_int_eq(sx_reference_tables(R, ref, &st), SX_OK);
    ck_assert_int_eq(sx_jobdir_refcells_read(ref, &rc, &st), SX_OK);
    ck_assert(jc.cells == R->n_cells && rc.cells == R->n_cells);
    ck_assert_str_eq(jc.latent, rc.latent);
    ck_assert_str_eq(jc.umap, rc.umap);
    double worst = 0;
    for (int64_t i = 0; i < R->n_cells * R->dim; i++) {
        double d = fabs(z[i] - R->latent[i]);
        if (d > worst) worst = d;
    }
    ck_assert_msg(worst < 1e-5, "a projected cell is %g away from its reference latent", worst);
    char **cells, **labels;
    double *conf;
    int64_t nl = syn_read_labels(out, &cells, &labels, &conf);
    ck_assert_int_eq(nl, 300);
    for (int64_t i = 0; i < nl; i++) ck_assert_str_eq(labels[i], syn_truth(cells[i]));
    free(cells), free(labels), free(conf), free(z);
    sx_reference_free(R);
}
END_TEST

/* The labels table's label and confidence of label column l (l = 0: the plain names). */
static void read_label_col(const char *outdir, const char *name, int first, int64_t n,
                           char ***labels, double **conf)
{
    char path[700], col[300];
    sx_status st;
    snprintf(path, sizeof path, "%s/%s", outdir, sx_jobdir_table_name(SX_JOBDIR_LABELS));
    sx_jobdir_table *t = NULL;
    ck_assert_msg(sx_jobdir_table_open(path, &t, &st) == SX_OK, "%s", st.msg);
    ck_assert_int_eq(sx_jobdir_table_rows(t), n);
    snprintf(col, sizeof col, first ? "label" : "%s", name);
    int cl = sx_jobdir_table_find(t, col);
    snprintf(col, sizeof col, first ? "confidence" : "%s_confidence", name);
    int cc = sx_jobdir_table_find(t, col);
    ck_assert_msg(cl > 0 && cc > 0, "no columns for label %s", name);
    ck_assert_int_eq(sx_jobdir_table_read_str(t, cl, 0, n, labels, &st), SX_OK);
    *conf = malloc(((size_t)n + 1) * sizeof **conf);
    ck_assert_int_eq(sx_jobdir_table_read_num(t, cc, 0, n, *conf, &st), SX_OK);
    sx_jobdir_table_close(t);
}

/* Reference texts of an obs column (borrowed from the column or buf rows). */
static const char **ref_texts(const sx_column *col, int64_t n, char (*buf)[64])
{
    const char **t = malloc(((size_t)n + 1) * sizeof *t);
    for (int64_t i = 0; i < n; i++) t[i] = sx_column_text(col, i, buf[i], 64);
    return t;
}

/* A projection searches the query's neighbours once for two label columns, the fixed UMAP and
 * the carried clusters: every output equals what each stage's own exact search gives, bit for
 * bit (sx_transfer_knn and sx_umap_transform on the projected latent, run here). */
START_TEST(shared_search_equals_own_searches)
{
    const char *dir = sx_test_tmpdir();
    const char *ref = syn_integrate(dir, 300, 0);
    char out[600];
    snprintf(out, sizeof out, "%s/proj2", dir);
    const char *in[1] = {syn_h5ad(dir, "q", 200, "q", 99, 0)};
    sx_status st;
    sx_pipeline_opts *o = syn_integrate_opts(0);
    const char *kv[][2] = {{"label", "celltype,batch"}, {"k", "5"}, {"unknown", "on"},
                           {"min_confidence", "0.4"}, {"min_mapping_score", "0.01"},
                           {"seed", "124"}, {"leiden", "true"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        ck_assert_msg(sx_pipeline_opts_set(o, kv[i][0], kv[i][1], &st) == SX_OK, "%s", st.msg);
    sx_job_spec j = {.type = SX_JOB_PROJECT, .inputs = in, .n_inputs = 1, .reference = ref,
                     .outdir = out, .opts = o, .threads = 1};
    ck_assert_msg(sx_pipeline_run(&j, NULL, &st) == SX_OK, "%s", st.msg);
    sx_pipeline_opts_free(o);
    sx_reference *R = sx_reference_load(ref, &st);
    ck_assert_msg(R && R->umap, "%s", st.msg);
    int64_t n, nr = R->n_cells, nq = 200;
    double *z = syn_table_nums(out, SX_JOBDIR_LATENT, 1, R->dim, &n);
    ck_assert_int_eq(n, nq); /* the query's rows only (refcells.json) */
    const double *q = z;
    char (*buf)[64] = malloc((size_t)nr * sizeof *buf);
    const char *names[2] = {"celltype", "batch"};
    const sx_column *bcol = sx_frame_col(R->obs, "batch");
    for (int l = 0; l < 2; l++) { /* each label column against its own exact search */
        const char **rl = ref_texts(sx_frame_col(R->obs, names[l]), nr, buf);
        sx_transfer_opts to;
        sx_transfer_opts_init(&to);
        to.k = 5;
        to.n_threads = 1;
        to.seed = 124;
        to.unknown_below = 0.4;
        to.mapping_below = 0.01;
        to.ref_batch = bcol->codes;
        sx_transfer_result *tr = sx_transfer_knn(R->latent, nr, rl, q, nq, R->dim, &to, NULL, &st);
        ck_assert_msg(tr, "%s", st.msg);
        char **lab;
        double *conf;
        read_label_col(out, names[l], l == 0, nq, &lab, &conf);
        for (int64_t i = 0; i < nq; i++) {
            ck_assert_str_eq(lab[i], sx_transfer_label(tr, i));
            ck_assert(conf[i] == tr->confidence[i]);
        }
        sx_transfer_free(tr);
        free(lab), free(conf), free(rl);
    }
    /* the query's place on the reference layout against the transform's own search */
    sx_umap_params up;
    sx_umap_params_init(&up);
    up.a = R->umap_a;
    up.b = R->umap_b;
    up.n_threads = 1;
    float *u = malloc((size_t)nq * 2 * sizeof *u);
    ck_assert_int_eq(sx_umap_transform(R->latent, nr, R->umap, q, nq, R->dim, &up, u, NULL, &st), SX_OK);
    double *xy = syn_table_nums(out, SX_JOBDIR_UMAP, 1, 2, &n);
    ck_assert_int_eq(n, nq);
    for (int64_t i = 0; i < 2 * nq; i++) ck_assert((float)xy[i] == u[i]);
    /* the carried clusters against the vote's own search */
    const sx_column *lc = sx_frame_col(R->obs, "leiden");
    ck_assert_ptr_nonnull(lc);
    const char **rl = ref_texts(lc, nr, buf);
    sx_transfer_opts to;
    sx_transfer_opts_init(&to);
    to.n_threads = 1;
    to.calibrate = 0;
    sx_transfer_result *lt = sx_transfer_knn(R->latent, nr, rl, q, nq, R->dim, &to, NULL, &st);
    ck_assert_msg(lt, "%s", st.msg);
    char ad[700];
    snprintf(ad, sizeof ad, "%s/adata.h5ad", out);
    sx_dataset *d = sx_io_read(ad, NULL, NULL, &st);
    ck_assert_msg(d, "%s", st.msg);
    const sx_column *ol = sx_frame_col(d->obs, "leiden");
    ck_assert_ptr_nonnull(ol);
    char b1[64];
    for (int64_t i = 0; i < nq; i++)
        ck_assert_str_eq(sx_column_text(ol, nr + i, b1, 64), sx_transfer_label(lt, i));
    sx_dataset_free(d);
    sx_transfer_free(lt);
    free(rl), free(buf), free(u), free(xy), free(z);
    sx_reference_free(R);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipeline_project");
    TCase *tc = tcase_create("project");
    tcase_add_test(tc, own_cells_land_on_their_latent);
    tcase_add_test(tc, shared_search_equals_own_searches);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
