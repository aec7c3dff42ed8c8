/* sx_h5ad_rows: the slabs of an h5ad's CSR X, laid end to end, are the X the whole-file
 * reader gives (itself checked against anndata in test_h5ad.c / io_roundtrip.sh), for
 * every slab shape (one row, a few rows, bounded entries, the defaults), read on the
 * caller's thread or ahead on the reader's; files whose X is not CSR are declined (NULL, no
 * error); a corrupt index in a slab is an error naming it, with or without read-ahead; a
 * reader closed while its thread reads ahead stops (no hang, nothing leaked under ASan). */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "sx_h5ad_rows.h"
#include "sx_io.h"
#include "sx_test.h"

/* Slabs of (rows, entries) against X of sx_h5ad_read, read ahead or not; returns 1 when
 * path was streamed. */
static int check_file(const char *path, int64_t max_rows, int64_t max_entries, int ahead)
{
    sx_status st = {0};
    sx_h5ad_rows *r = NULL;
    ck_assert_msg(sx_h5ad_rows_open(path, NULL, NULL, &r, &st) == SX_OK, "%s", st.msg);
    if (!r) return 0;
    if (ahead) ck_assert_int_eq(sx_h5ad_rows_read_ahead(r, max_rows, max_entries, &st), SX_OK);
    sx_dataset *d = sx_h5ad_read(path, NULL, NULL, &st);
    ck_assert_msg(d && d->X, "%s", st.msg);
    const sx_csr *X = d->X;
    ck_assert_int_eq(sx_h5ad_rows_n_obs(r), X->n_rows);
    ck_assert_int_eq(sx_h5ad_rows_n_vars(r), X->n_cols);
    ck_assert_int_eq(sx_h5ad_rows_var(r)->n_rows, d->var->n_rows);
    int64_t row = 0;
    for (;;) {
        sx_csr v;
        int64_t r0 = -1;
        ck_assert_msg(sx_h5ad_rows_next(r, max_rows, max_entries, &v, &r0, &st) == SX_OK, "%s",
                      st.msg);
        ck_assert_int_eq(r0, row);
        if (v.n_rows == 0) break;
        ck_assert(max_rows <= 0 || v.n_rows <= max_rows);
        ck_assert(max_entries <= 0 || v.n_rows == 1 || sx_csr_nnz(&v) <= max_entries);
        ck_assert_int_eq(v.n_cols, X->n_cols);
        for (int64_t i = 0; i < v.n_rows; i++, row++) {
            int64_t a = X->indptr[row], n = X->indptr[row + 1] - a;
            ck_assert_int_eq(v.indptr[i + 1] - v.indptr[i], n);
            ck_assert(!memcmp(v.indices + v.indptr[i], X->indices + a, (size_t)n * sizeof(int32_t)));
            ck_assert(!memcmp(v.data + v.indptr[i], X->data + a, (size_t)n * sizeof(float)));
        }
    }
    ck_assert_int_eq(row, X->n_rows);
    sx_frame *obs = sx_h5ad_rows_take_obs(r);
    ck_assert(obs && obs->n_rows == X->n_rows && !sx_h5ad_rows_take_obs(r));
    sx_frame_free(obs);
    sx_h5ad_rows_close(r);
    sx_dataset_free(d);
    return 1;
}

START_TEST(slabs_equal_whole_x)
{
    static const char *files[] = {
        "data/pbmc_3tech_symphony/pbmc_3tech.h5ad",
        "data/pancreas_baron_human_mouse_cider/query_mouse.h5ad",
        "data/h5ad_versions/pbmc68k_reduced_2018_legacy_anndata0.6.h5ad",
        "data/h5ad_versions/pbmc68k_reduced_2025_encoded.h5ad",
        "data/h5ad_versions/pbmc_10k_protein_v3_subset_anndata0.7.h5ad",
        "data/h5ad_versions/pbmc_10k_protein_v3_subset_anndata0.7_gzip.h5ad",
    };
    static const int64_t shapes[][2] = {{1, 0}, {13, 500}, {0, 0}, {5000, 1}, {64, 100000}};
    int streamed = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++)
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
            for (int ahead = 0; ahead < 2; ahead++)
                streamed += check_file(sx_test_shared(files[f]), shapes[k][0], shapes[k][1], ahead);
    ck_assert_int_ge(streamed, 2 * 5 * 2); /* the PBMC and pancreas files have a CSR X */
    /* closed after one slab while the thread reads the next ones */
    sx_status st = {0};
    sx_h5ad_rows *r = NULL;
    sx_csr v;
    ck_assert_int_eq(sx_h5ad_rows_open(sx_test_shared(files[0]), NULL, NULL, &r, &st), SX_OK);
    ck_assert_int_eq(sx_h5ad_rows_read_ahead(r, 3, 0, &st), SX_OK);
    ck_assert_int_eq(sx_h5ad_rows_next(r, 0, 0, &v, NULL, &st), SX_OK);
    ck_assert_int_eq(v.n_rows, 3);
    sx_h5ad_rows_close(r);
}
END_TEST

START_TEST(declined_and_corrupt)
{
    sx_status st = {0};
    sx_h5ad_rows *r = NULL;
    /* a 10x .h5 is no h5ad: declined, the whole-file path reads it */
    r = (sx_h5ad_rows *)1;
    ck_assert_int_eq(sx_h5ad_rows_open(sx_test_shared("data/tenx_pbmc_chr21_scanpy/3.0.0/"
                                                      "filtered_feature_bc_matrix.h5"),
                                       NULL, NULL, &r, &st), SX_OK);
    ck_assert(!r);
    const char *dir = sx_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/bad.h5ad", dir);
    sx_dataset *d = sx_h5ad_read(sx_test_shared("data/pbmc_3tech_symphony/query_3pv1.h5ad"), NULL,
                                 NULL, &st);
    ck_assert_msg(d, "%s", st.msg);
    ck_assert_int_eq(sx_h5ad_write(path, d, NULL, &st), SX_OK);
    int64_t nnz = sx_csr_nnz(d->X);
    sx_dataset_free(d);
    /* one column index out of range, near the end */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "X/indices", H5P_DEFAULT);
    hsize_t at = (hsize_t)(nnz - 2), one = 1;
    hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(1, &one, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &at, NULL, &one, NULL);
    int32_t bad = 1 << 30;
    ck_assert(H5Dwrite(ds, H5T_NATIVE_INT32, ms, fs, H5P_DEFAULT, &bad) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(ds);
    H5Fclose(f);
    for (int ahead = 0; ahead < 2; ahead++) {
        ck_assert_int_eq(sx_h5ad_rows_open(path, NULL, NULL, &r, &st), SX_OK);
        ck_assert(r);
        if (ahead) ck_assert_int_eq(sx_h5ad_rows_read_ahead(r, 50, 0, &st), SX_OK);
        sx_csr v;
        int rc;
        while ((rc = sx_h5ad_rows_next(r, 50, 0, &v, NULL, &st)) == SX_OK && v.n_rows) {}
        ck_assert_int_eq(rc, SX_EFORMAT);
        ck_assert_msg(strstr(st.msg, "column index") && strstr(st.msg, "bad.h5ad"), "%s", st.msg);
        ck_assert_int_eq(sx_h5ad_rows_next(r, 50, 0, &v, NULL, &st), SX_EFORMAT); /* and stays */
        sx_h5ad_rows_close(r);
    }
    /* use_layer names another matrix: declined */
    sx_read_opts o = {.use_layer = "layers/counts"};
    r = (sx_h5ad_rows *)1;
    ck_assert_int_eq(sx_h5ad_rows_open(path, &o, NULL, &r, &st), SX_OK);
    ck_assert(!r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("h5ad_rows");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, slabs_equal_whole_x);
    tcase_add_test(tc, declined_and_corrupt);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
