/* The transfer workflow on a tiny in-memory reference: three well-separated clusters in a
 * 4-D obsm latent; the query's cells come from the same clusters, so every transferred label
 * must be the generator's type; every held-out reference cell is right too (300 cells held
 * out by batch and 300 one by one), so the confidence refitted with --confidence isotonic is
 * (600 + 1/2) / (600 + 1) (isotonic fit with one pseudo-observation). */
#include "pipeline_synth.h"

static void run_transfer(const char *dir, const char *ref, const char *query, sx_status *st,
                         int *rc)
{
    char out[600];
    snprintf(out, sizeof out, "%s/out", dir);
    sx_pipeline_opts *o = sx_pipeline_opts_new();
    ck_assert_int_eq(sx_pipeline_opts_set(o, "label", "celltype", st), SX_OK);
    ck_assert_int_eq(sx_pipeline_opts_set(o, "k", "5", st), SX_OK);
    /* the refit, whose value below is worked by hand (the default: pipeline_trust.sh) */
    ck_assert_int_eq(sx_pipeline_opts_set(o, "confidence", "isotonic", st), SX_OK);
    const char *in[1] = {query};
    sx_job_spec j = {.type = SX_JOB_TRANSFER, .inputs = in, .n_inputs = 1, .reference = ref,
                     .outdir = out, .opts = o, .threads = 1};
    *rc = sx_pipeline_run(&j, NULL, st);
    sx_pipeline_opts_free(o);
}

START_TEST(labels_of_separated_clusters)
{
    const char *dir = sx_test_tmpdir();
    const char *ref = syn_h5ad(dir, "ref", 300, "r", 7, 1);
    const char *query = syn_h5ad(dir, "query", 90, "q", 99, 1);
    sx_status st;
    int rc;
    run_transfer(dir, ref, query, &st, &rc);
    ck_assert_msg(rc == SX_OK, "%s", st.msg);
    char out[600], **cells, **labels;
    double *conf;
    snprintf(out, sizeof out, "%s/out", dir);
    int64_t n = syn_read_labels(out, &cells, &labels, &conf);
    ck_assert_int_eq(n, 90);
    for (int64_t i = 0; i < n; i++) {
        ck_assert_str_eq(labels[i], syn_truth(cells[i]));
        ck_assert_double_le(fabs(conf[i] - 600.5 / 601), 1e-12);
    }
    /* labels.csv, the command line's file, is the table's text: one row per cell */
    char p[700], line[256];
    snprintf(p, sizeof p, "%s/labels.csv", out);
    FILE *f = fopen(p, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "cell,label,confidence,mapping_score,top3\n");
    for (int64_t i = 0; i < n; i++) {
        char want[128];
        snprintf(want, sizeof want, "%s,%s,0.9992,", cells[i], syn_truth(cells[i]));
        ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
        ck_assert_msg(!strncmp(line, want, strlen(want)), "%s", line);
        double ms = atof(line + strlen(want));
        ck_assert(ms >= 0 && ms <= 1);
        /* top3: the label first, at the confidence */
        char top[128];
        snprintf(top, sizeof top, ",%s:0.9992", syn_truth(cells[i]));
        ck_assert_ptr_nonnull(strstr(line, top));
    }
    ck_assert_ptr_null(fgets(line, sizeof line, f));
    fclose(f);
    free(cells), free(labels), free(conf);
}
END_TEST

START_TEST(missing_label_column_is_named)
{
    const char *dir = sx_test_tmpdir();
    const char *ref = syn_h5ad(dir, "ref", 30, "r", 7, 1);
    sx_status st;
    char out[600];
    snprintf(out, sizeof out, "%s/out", dir);
    sx_pipeline_opts *o = sx_pipeline_opts_new();
    ck_assert_int_eq(sx_pipeline_opts_set(o, "label", "no_such_column", &st), SX_OK);
    const char *in[1] = {ref};
    sx_job_spec j = {.type = SX_JOB_TRANSFER, .inputs = in, .n_inputs = 1, .reference = ref,
                     .outdir = out, .opts = o, .threads = 1};
    ck_assert_int_eq(sx_pipeline_run(&j, NULL, &st), SX_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(st.msg, "no_such_column"));
    sx_pipeline_opts_free(o);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipeline_transfer");
    TCase *tc = tcase_create("transfer");
    tcase_add_test(tc, labels_of_separated_clusters);
    tcase_add_test(tc, missing_label_column_is_named);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
