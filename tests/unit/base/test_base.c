/* Unit tests of the core data model: CSR construction and conversions, frames, uns,
 * datasets, and the error convention. Expected values come from the definitions
 * (dense reference computations, anndata's make_unique rule in ALGORITHM.md 1.4). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_dataset.h"
#include "sx_error.h"
#include "sx_test.h"

/* A random dense matrix with ~30% nonzeros. */
static float *rand_dense(int64_t r, int64_t c, unsigned seed)
{
    float *a = calloc((size_t)(r * c), sizeof(float));
    srand(seed);
    for (int64_t i = 0; i < r * c; i++)
        if (rand() % 10 < 3) a[i] = (float)(rand() % 100) / 7.0f;
    return a;
}

static void expect_equal_dense(const sx_csr *m, const float *a)
{
    float *d = calloc((size_t)(m->n_rows * m->n_cols), sizeof(float));
    sx_csr_densify_rows(m, 0, m->n_rows, d);
    for (int64_t i = 0; i < m->n_rows * m->n_cols; i++) ck_assert_float_eq(d[i], a[i]);
    free(d);
}

START_TEST(csr_from_dense_and_back)
{
    sx_status st;
    float *a = rand_dense(37, 23, 1);
    sx_csr *m = sx_csr_from_dense(a, 37, 23, &st);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(sx_csr_validate(m, 1, "m", &st), SX_OK);
    expect_equal_dense(m, a);
    double s = 0;
    for (int i = 0; i < 37 * 23; i++) s += a[i];
    ck_assert_double_eq_tol(sx_csr_sum(m), s, 1e-6);
    sx_csr_free(m);
    free(a);
}
END_TEST

START_TEST(csr_transpose_matches_dense_transpose)
{
    sx_status st;
    float *a = rand_dense(19, 31, 2), *t = calloc(19 * 31, sizeof(float));
    for (int i = 0; i < 19; i++)
        for (int j = 0; j < 31; j++) t[j * 19 + i] = a[i * 31 + j];
    sx_csr *m = sx_csr_from_dense(a, 19, 31, &st);
    sx_csr *mt = sx_csr_transpose(m, &st);
    ck_assert_int_eq(mt->n_rows, 31);
    ck_assert_int_eq(sx_csr_validate(mt, 1, "mt", &st), SX_OK);
    expect_equal_dense(mt, t);
    sx_csr_free(m);
    sx_csr_free(mt);
    free(a);
    free(t);
}
END_TEST

START_TEST(csr_take_rows_remap_vstack)
{
    sx_status st;
    float *a = rand_dense(10, 8, 3);
    sx_csr *m = sx_csr_from_dense(a, 10, 8, &st);
    int64_t rows[3] = {7, 2, 7};
    sx_csr *r = sx_csr_take_rows(m, rows, 3, &st);
    float expect[24];
    for (int k = 0; k < 3; k++) memcpy(expect + k * 8, a + rows[k] * 8, 8 * sizeof(float));
    expect_equal_dense(r, expect);
    /* reverse and drop columns: result must be re-sorted (canonical) */
    int64_t map[8] = {3, -1, 2, -1, 1, -1, 0, -1};
    sx_csr *c = sx_csr_remap_cols(m, map, 4, &st);
    ck_assert_int_eq(sx_csr_validate(c, 1, "c", &st), SX_OK);
    for (int64_t i = 0; i < c->n_rows; i++)
        for (int64_t p = c->indptr[i] + 1; p < c->indptr[i + 1]; p++)
            ck_assert_int_lt(c->indices[p - 1], c->indices[p]);
    float *cd = calloc(40, sizeof(float));
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 8; j++)
            if (map[j] >= 0) cd[i * 4 + map[j]] = a[i * 8 + j];
    expect_equal_dense(c, cd);
    const sx_csr *parts[2] = {m, r};
    sx_csr *v = sx_csr_vstack(parts, 2, &st);
    ck_assert_int_eq(v->n_rows, 13);
    ck_assert_double_eq_tol(sx_csr_sum(v), sx_csr_sum(m) + sx_csr_sum(r), 1e-4);
    sx_csr_free(v);
    sx_csr_free(c);
    sx_csr_free(r);
    sx_csr_free(m);
    free(cd);
    free(a);
}
END_TEST

START_TEST(csr_validate_rejects_corruption)
{
    sx_status st;
    sx_csr *m = sx_csr_new(2, 3, 3, &st);
    m->indptr[1] = 2;
    m->indptr[2] = 1; /* decreasing */
    ck_assert_int_eq(sx_csr_validate(m, 0, "X", &st), SX_EFORMAT);
    ck_assert_ptr_nonnull(strstr(st.msg, "decreases"));
    m->indptr[2] = 3;
    m->indices[0] = 0;
    m->indices[1] = 5; /* out of range */
    m->indices[2] = 1;
    ck_assert_int_eq(sx_csr_validate(m, 0, "X", &st), SX_EFORMAT);
    ck_assert_ptr_nonnull(strstr(st.msg, "outside"));
    m->indices[1] = 2;
    m->data[0] = NAN;
    ck_assert_int_eq(sx_csr_validate(m, 1, "X", &st), SX_EDATA);
    ck_assert_ptr_nonnull(strstr(st.msg, "NaN"));
    sx_csr_free(m);
}
END_TEST

START_TEST(csr_canonicalize_sums_duplicates)
{
    sx_status st;
    sx_csr *m = sx_csr_new(1, 4, 4, &st);
    int32_t ix[4] = {3, 1, 3, 0};
    float v[4] = {1, 2, 3, 4};
    memcpy(m->indices, ix, sizeof ix);
    memcpy(m->data, v, sizeof v);
    m->indptr[1] = 4;
    ck_assert_int_eq(sx_csr_canonicalize(m, &st), SX_OK);
    ck_assert_int_eq(sx_csr_nnz(m), 3);
    ck_assert_int_eq(m->indices[0], 0);
    ck_assert_int_eq(m->indices[2], 3);
    ck_assert_float_eq(m->data[2], 4.0f);
    sx_csr_free(m);
}
END_TEST

START_TEST(make_unique_as_anndata)
{
    /* ALGORITHM.md 1.4: first keeps its name, later ones get -1, -2; an existing "a-1"
     * pushes the counter on. */
    const char *in[] = {"a", "b", "a", "a-1", "a", "b"};
    char *names[6];
    for (int i = 0; i < 6; i++) names[i] = sx_strdup(in[i]);
    sx_status st;
    ck_assert_int_eq(sx_names_make_unique(names, 6, &st), 3);
    ck_assert_str_eq(names[0], "a");
    ck_assert_str_eq(names[2], "a-2");
    ck_assert_str_eq(names[3], "a-1");
    ck_assert_str_eq(names[4], "a-3");
    ck_assert_str_eq(names[5], "b-1");
    for (int i = 0; i < 6; i++) sx_free(names[i]);
}
END_TEST

START_TEST(frame_columns_and_take)
{
    sx_status st;
    const char *idx[] = {"c0", "c1", "c2", "c3"};
    sx_frame *f = sx_frame_new(4, idx, &st);
    const char *batch[] = {"y", "x", "y", NULL};
    ck_assert_int_eq(sx_frame_add_categorical_from_strings(f, "batch", batch, 0, &st), SX_OK);
    sx_column *c = sx_frame_col(f, "batch");
    ck_assert_int_eq(c->n_categories, 2);
    ck_assert_str_eq(c->categories[0], "y"); /* first-appearance order */
    ck_assert_int_eq(c->codes[3], -1);
    ck_assert_int_eq(sx_frame_add_categorical_from_strings(f, "sorted", batch, 1, &st), SX_OK);
    ck_assert_str_eq(sx_frame_col(f, "sorted")->categories[0], "x");
    int64_t n_genes[4] = {5, 6, 7, 8};
    ck_assert_int_eq(sx_frame_add_int(f, "n_genes", n_genes, &st), SX_OK);
    int64_t rows[2] = {3, 1};
    sx_frame *t = sx_frame_take_rows(f, rows, 2, &st);
    ck_assert_str_eq(t->index[0], "c3");
    ck_assert_int_eq(sx_frame_col(t, "n_genes")->i64[1], 6);
    char buf[32];
    ck_assert_str_eq(sx_column_text(sx_frame_col(t, "batch"), 1, buf, 32), "x");
    ck_assert_str_eq(sx_column_text(sx_frame_col(t, "batch"), 0, buf, 32), "");
    sx_frame_drop(f, "sorted");
    ck_assert_ptr_null(sx_frame_col(f, "sorted"));
    int32_t bad[4] = {0, 5, 0, 0};
    const char *cats[] = {"a"};
    ck_assert_int_eq(sx_frame_add_categorical(f, "bad", bad, cats, 1, 0, &st), SX_EFORMAT);
    sx_frame_free(t);
    sx_frame_free(f);
}
END_TEST

START_TEST(uns_tree)
{
    sx_uns *u = sx_uns_new_dict();
    sx_uns *p = sx_uns_set_dict(sx_uns_set_dict(u, "neighbors"), "params");
    sx_uns_set_int(p, "n_neighbors", 30);
    sx_uns_set_string(p, "metric", "euclidean");
    ck_assert_int_eq(sx_uns_path(u, "neighbors/params/n_neighbors")->i, 30);
    sx_uns_set_int(p, "n_neighbors", 15); /* replaces */
    ck_assert_int_eq(p->n_kids, 2);
    sx_uns *c = sx_uns_copy(u);
    ck_assert_str_eq(sx_uns_path(c, "neighbors/params/metric")->str, "euclidean");
    ck_assert_ptr_null(sx_uns_path(c, "neighbors/nope"));
    sx_uns_free(c);
    sx_uns_free(u);
}
END_TEST

START_TEST(dataset_subset_and_validate)
{
    sx_status st;
    float *a = rand_dense(6, 5, 4);
    sx_dataset *d = sx_dataset_new(6, 5, &st);
    d->X = sx_csr_from_dense(a, 6, 5, &st);
    double lat[12];
    for (int i = 0; i < 12; i++) lat[i] = i;
    ck_assert_int_eq(sx_dataset_set_obsm(d, "latent", lat, 6, 2, 0, &st), SX_OK);
    ck_assert_int_eq(sx_dataset_set_obsm(d, "bad", lat, 5, 2, 0, &st), SX_EINVAL);
    ck_assert_int_eq(sx_dataset_validate(d, "d", &st), SX_OK);
    int64_t rows[2] = {4, 0};
    ck_assert_int_eq(sx_dataset_take_obs(d, rows, 2, &st), SX_OK);
    ck_assert_double_eq(sx_dataset_obsm(d, "latent")->v[0], 8);
    int64_t cols[2] = {3, 1};
    ck_assert_int_eq(sx_dataset_take_vars(d, cols, 2, &st), SX_OK);
    ck_assert_int_eq(d->X->n_cols, 2);
    float expect[4] = {a[4 * 5 + 3], a[4 * 5 + 1], a[0 * 5 + 3], a[0 * 5 + 1]};
    expect_equal_dense(d->X, expect);
    ck_assert_str_eq(d->var->index[0], "3");
    ck_assert_int_eq(sx_dataset_validate(d, "d", &st), SX_OK);
    int64_t dup[2] = {1, 1};
    ck_assert_int_eq(sx_dataset_take_vars(d, dup, 2, &st), SX_EINVAL);
    sx_dataset_free(d);
    free(a);
}
END_TEST

START_TEST(status_messages_and_alloc_failures)
{
    sx_status st;
    sx_status_clear(&st);
    ck_assert_int_eq(sx_status_set(&st, SX_EGENES, "only %d genes", 12), SX_EGENES);
    sx_status_prefix(&st, "query %s", "q.h5ad");
    ck_assert_str_eq(st.msg, "query q.h5ad: only 12 genes");
    ck_assert_str_eq(sx_errname(SX_EGENES), "EGENES");
    /* every allocation failing must give NULL + ENOMEM, never a crash */
    for (long k = 0; k < 12; k++) {
        sx_alloc_fail_after(k);
        sx_dataset *d = sx_dataset_new(50, 20, &st);
        sx_alloc_fail_after(-1);
        if (d) sx_dataset_free(d);
        else ck_assert_int_eq(st.code, SX_ENOMEM);
    }
    ck_assert_ptr_null(sx_mallocarray(SIZE_MAX / 2, 4));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("base");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, csr_from_dense_and_back);
    tcase_add_test(tc, csr_transpose_matches_dense_transpose);
    tcase_add_test(tc, csr_take_rows_remap_vstack);
    tcase_add_test(tc, csr_validate_rejects_corruption);
    tcase_add_test(tc, csr_canonicalize_sums_duplicates);
    tcase_add_test(tc, make_unique_as_anndata);
    tcase_add_test(tc, frame_columns_and_take);
    tcase_add_test(tc, uns_tree);
    tcase_add_test(tc, dataset_subset_and_validate);
    tcase_add_test(tc, status_messages_and_alloc_failures);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
