/* The projection workflow: the reference's own cells projected onto it land on their
 * reference latent (eval mode: each cell's code does not depend on its minibatch), and the
 * labels transferred to them are the generator's types. */
#include "pipeline_runs.h"

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
    ck_assert_int_eq(n, 2 * R->n_cells); /* reference cells, then the query */
    double worst = 0;
    for (int64_t i = 0; i < R->n_cells * R->dim; i++) {
        ck_assert(z[i] == R->latent[i]);
        double d = fabs(z[R->n_cells * R->dim + i] - R->latent[i]);
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

int main(void)
{
    Suite *s = suite_create("pipeline_project");
    TCase *tc = tcase_create("project");
    tcase_add_test(tc, own_cells_land_on_their_latent);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
