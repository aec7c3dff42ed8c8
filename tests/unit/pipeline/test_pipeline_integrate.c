/* The integrate workflow on 300 synthetic cells of three well-separated types: the latent
 * keeps the types apart (nearest type centroid recovers the generator's type), the result
 * tables hold what reference.h5 holds, and the UMAP table colours cells by their label. */
#include "pipeline_runs.h"

START_TEST(latent_separates_types_and_tables_match_reference)
{
    const char *dir = sx_test_tmpdir();
    const char *out = syn_integrate(dir, 300, 0);
    sx_status st;
    sx_reference *R = sx_reference_load(out, &st);
    ck_assert_msg(R != NULL, "%s", st.msg);
    ck_assert_int_eq(R->n_cells, 300);
    /* the latent table equals the reference's latent, row for row */
    int64_t n;
    double *z = syn_table_nums(out, SX_JOBDIR_LATENT, 1, R->dim, &n);
    ck_assert_int_eq(n, 300);
    for (int64_t i = 0; i < n * R->dim; i++) ck_assert(z[i] == R->latent[i]);
    /* nearest type centroid in the latent recovers the generator's type */
    double cen[SYN_TYPES][64] = {{0}};
    int cnt[SYN_TYPES] = {0};
    for (int64_t i = 0; i < n; i++) {
        cnt[syn_type(i)]++;
        for (int k = 0; k < R->dim; k++) cen[syn_type(i)][k] += z[i * R->dim + k];
    }
    for (int t = 0; t < SYN_TYPES; t++)
        for (int k = 0; k < R->dim; k++) cen[t][k] /= cnt[t];
    int right = 0;
    for (int64_t i = 0; i < n; i++) {
        int best = 0;
        double bd = INFINITY;
        for (int t = 0; t < SYN_TYPES; t++) {
            double d = 0;
            for (int k = 0; k < R->dim; k++) d += pow(z[i * R->dim + k] - cen[t][k], 2);
            if (d < bd) bd = d, best = t;
        }
        right += best == syn_type(i);
    }
    ck_assert_msg(right >= 285, "only %d of 300 cells nearest their type's centroid", right);
    /* the UMAP table: the reference layout, every cell labelled by its own cell type */
    double *xy = syn_table_nums(out, SX_JOBDIR_UMAP, 1, 2, &n);
    ck_assert_int_eq(n, 300);
    for (int64_t i = 0; i < 2 * n; i++) ck_assert(xy[i] == R->umap[i]);
    char path[700], **cells, **labels, **set;
    snprintf(path, sizeof path, "%s/%s", out, sx_jobdir_table_name(SX_JOBDIR_UMAP));
    sx_jobdir_table *t = NULL;
    ck_assert_int_eq(sx_jobdir_table_open(path, &t, &st), SX_OK);
    ck_assert_int_eq(sx_jobdir_table_read_str(t, sx_jobdir_table_find(t, "cell"), 0, n, &cells, &st), SX_OK);
    ck_assert_int_eq(sx_jobdir_table_read_str(t, sx_jobdir_table_find(t, "label"), 0, n, &labels, &st), SX_OK);
    ck_assert_int_eq(sx_jobdir_table_read_str(t, sx_jobdir_table_find(t, "set"), 0, n, &set, &st), SX_OK);
    for (int64_t i = 0; i < n; i++) {
        ck_assert_str_eq(labels[i], syn_truth(cells[i]));
        ck_assert_str_eq(set[i], "query"); /* an integration has no reference part */
    }
    free(cells), free(labels), free(set);
    sx_jobdir_table_close(t);
    free(z), free(xy);
    sx_reference_free(R);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipeline_integrate");
    TCase *tc = tcase_create("integrate");
    tcase_add_test(tc, latent_separates_types_and_tables_match_reference);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
