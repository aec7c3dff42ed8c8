/* sx_h5ad_writer: an h5ad written in two steps (X first, freed, the rest later) holds what
 * sx_h5ad_write makes of the same dataset, element by element and value by value, and its X
 * reads back as the matrix given (a real file's, read with sx_h5ad_read: itself checked
 * against anndata in test_h5ad.c / io_roundtrip.sh). Misuse (X twice, a second X in the
 * dataset, another shape) is refused, and an aborted or refused file leaves nothing behind. */
#include <dirent.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_h5ad_writer.h"
#include "sx_io.h"
#include "sx_test.h"

static const char *in_dir(const char *dir, const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int n_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

/* every element of file a is in file b with the same attribute names and, for datasets,
 * the same type, shape and values (strings compared as text) */
typedef struct visit {
    hid_t other;
    int n_datasets;
} visit;

static herr_t same_elem(hid_t a, const char *name, const H5O_info_t *info, void *op)
{
    visit *v = op;
    hid_t fb = v->other;
    ck_assert_msg(H5Lexists(fb, name, H5P_DEFAULT) > 0 || strcmp(name, ".") == 0,
                  "element %s missing", name);
    hid_t oa = H5Oopen(a, name, H5P_DEFAULT), ob = H5Oopen(fb, name, H5P_DEFAULT);
    ck_assert_int_eq(H5Aget_num_attrs(oa), H5Aget_num_attrs(ob));
    if (info->type == H5O_TYPE_DATASET) {
        v->n_datasets++;
        hid_t ta = H5Dget_type(oa), tb = H5Dget_type(ob);
        ck_assert_msg(H5Tequal(ta, tb) > 0, "%s: types differ", name);
        hid_t sa = H5Dget_space(oa);
        hssize_t n = H5Sget_simple_extent_npoints(sa);
        int str = H5Tis_variable_str(ta) > 0;
        hid_t mt = str ? H5Tcopy(ta) : H5Tget_native_type(ta, H5T_DIR_DEFAULT);
        size_t es = str ? sizeof(char *) : H5Tget_size(mt);
        char *va = calloc((size_t)n + 1, es), *vb = calloc((size_t)n + 1, es);
        ck_assert(H5Dread(oa, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, va) >= 0);
        ck_assert(H5Dread(ob, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, vb) >= 0);
        for (hssize_t i = 0; str && i < n; i++)
            ck_assert_str_eq(((char **)va)[i], ((char **)vb)[i]);
        ck_assert_msg(str || memcmp(va, vb, (size_t)n * es) == 0, "%s: values differ", name);
        if (str) {
            H5Dvlen_reclaim(mt, sa, H5P_DEFAULT, va);
            H5Dvlen_reclaim(mt, sa, H5P_DEFAULT, vb);
        }
        free(va);
        free(vb);
        H5Tclose(mt);
        H5Sclose(sa);
        H5Tclose(ta);
        H5Tclose(tb);
    }
    H5Oclose(oa);
    H5Oclose(ob);
    return 0;
}

static void same_file(const char *pa, const char *pb)
{
    hid_t fa = H5Fopen(pa, H5F_ACC_RDONLY, H5P_DEFAULT), fb = H5Fopen(pb, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(fa >= 0 && fb >= 0);
    visit va = {fb, 0}, vb = {fa, 0};
    ck_assert(H5Ovisit2(fa, H5_INDEX_NAME, H5_ITER_INC, same_elem, &va, H5O_INFO_BASIC) >= 0);
    ck_assert(H5Ovisit2(fb, H5_INDEX_NAME, H5_ITER_INC, same_elem, &vb, H5O_INFO_BASIC) >= 0);
    /* X (3), obs (index + 7 columns, two categorical), var, obsm/latent, ... */
    ck_assert_int_ge(va.n_datasets, 14);
    ck_assert_int_eq(va.n_datasets, vb.n_datasets);
    H5Fclose(fa);
    H5Fclose(fb);
}

START_TEST(x_first_same_file)
{
    sx_status st = {0};
    const char *dir = sx_test_tmpdir();
    sx_dataset *d = sx_h5ad_read(sx_test_shared("data/pbmc_3tech_symphony/query_3pv1.h5ad"), NULL,
                                 NULL, &st);
    ck_assert_msg(d && d->X, "%s", st.msg);
    int64_t n = d->obs->n_rows;
    double *lat = malloc((size_t)n * 3 * sizeof *lat);
    for (int64_t i = 0; i < n * 3; i++) lat[i] = (double)(i % 97) / 7.0;
    ck_assert_int_eq(sx_dataset_set_obsm(d, "latent", lat, n, 3, 0, &st), SX_OK);
    free(lat);
    for (int fast = 0; fast < 2; fast++) {
        sx_write_opts wo = {.compress = 4, .gzip = 1, .threads = 2, .fast = fast};
        const char *pa = in_dir(dir, fast ? "a1.h5ad" : "a0.h5ad");
        const char *pb = in_dir(dir, fast ? "b1.h5ad" : "b0.h5ad");
        ck_assert_msg(sx_h5ad_write(pa, d, &wo, &st) == SX_OK, "%s", st.msg);
        sx_h5ad_writer *h;
        ck_assert_msg(sx_h5ad_writer_open(pb, &wo, &h, &st) == SX_OK, "%s", st.msg);
        ck_assert_int_eq(sx_h5ad_writer_put_x(h, d->X, d->x_was_int, &st), SX_OK);
        sx_csr *X = d->X; /* what a projection frees after writing it */
        d->X = NULL;
        ck_assert_msg(sx_h5ad_writer_finish(h, d, &st) == SX_OK, "%s", st.msg);
        d->X = X;
        same_file(pa, pb);
        sx_dataset *b = sx_h5ad_read(pb, NULL, NULL, &st);
        ck_assert_msg(b && b->X, "%s", st.msg);
        int64_t nnz = sx_csr_nnz(X);
        ck_assert_int_eq(sx_csr_nnz(b->X), nnz);
        ck_assert(!memcmp(b->X->indptr, X->indptr, (size_t)(n + 1) * sizeof *X->indptr));
        ck_assert(!memcmp(b->X->indices, X->indices, (size_t)nnz * sizeof *X->indices));
        ck_assert(!memcmp(b->X->data, X->data, (size_t)nnz * sizeof *X->data));
        sx_dataset_free(b);
    }
    ck_assert_int_eq(n_files(dir), 4); /* no temporary file left */
    sx_dataset_free(d);
}
END_TEST

START_TEST(misuse_refused_nothing_left)
{
    sx_status st = {0};
    const char *dir = sx_test_tmpdir();
    sx_dataset *d = sx_h5ad_read(sx_test_shared("data/pbmc_3tech_symphony/query_3pv1.h5ad"), NULL,
                                 NULL, &st);
    ck_assert_msg(d && d->X, "%s", st.msg);
    const char *p = in_dir(dir, "out.h5ad");
    sx_h5ad_writer *h;
    /* aborted: nothing */
    ck_assert_int_eq(sx_h5ad_writer_open(p, NULL, &h, &st), SX_OK);
    ck_assert_int_eq(sx_h5ad_writer_put_x(h, d->X, 0, &st), SX_OK);
    ck_assert_int_eq(n_files(dir), 1); /* the temporary file, under another name */
    sx_h5ad_writer_abort(h);
    sx_h5ad_writer_abort(NULL);
    ck_assert_int_eq(n_files(dir), 0);
    /* X twice; then a dataset that still has its X */
    ck_assert_int_eq(sx_h5ad_writer_open(p, NULL, &h, &st), SX_OK);
    ck_assert_int_eq(sx_h5ad_writer_put_x(h, d->X, 0, &st), SX_OK);
    ck_assert_int_eq(sx_h5ad_writer_put_x(h, d->X, 0, &st), SX_EINVAL);
    ck_assert_int_eq(sx_h5ad_writer_finish(h, d, &st), SX_EINVAL);
    ck_assert_int_eq(n_files(dir), 0);
    /* an X of another shape than obs x var */
    ck_assert_int_eq(sx_h5ad_writer_open(p, NULL, &h, &st), SX_OK);
    sx_csr *X = d->X;
    X->n_rows--;
    ck_assert_int_eq(sx_h5ad_writer_put_x(h, X, 0, &st), SX_OK);
    X->n_rows++;
    d->X = NULL;
    ck_assert_int_eq(sx_h5ad_writer_finish(h, d, &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "is not the dataset's"));
    ck_assert_int_eq(n_files(dir), 0);
    /* a folder that cannot be written: an error, no writer */
    ck_assert_int_eq(sx_h5ad_writer_open(in_dir(dir, "no/such/dir/x.h5ad"), NULL, &h, &st), SX_EIO);
    ck_assert_ptr_null(h);
    d->X = X;
    sx_dataset_free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("h5ad_writer");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, x_first_same_file);
    tcase_add_test(tc, misuse_refused_nothing_left);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
