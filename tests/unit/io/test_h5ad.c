/* h5ad reader/writer on small synthetic datasets.
 *
 * Truth comes from the test itself: datasets built value by value here, files written here
 * with raw HDF5 calls (including broken ones: not HDF5, truncated, lying shape, index out of
 * range, decreasing indptr, short obs column, lzf filter, NaN, a 10^12-entry header), and
 * the written files inspected with raw HDF5 calls for the encodings anndata 0.8 needs.
 * (That anndata itself opens our files is tests/integration/io_roundtrip.sh.)
 */
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sx_alloc.h"
#include "sx_h5.h"
#include "sx_io.h"
#include "sx_log.h"
#include "sx_test.h"
#include "io_truth.h"

/* ---------- capture warnings */
typedef struct {
    int n;
    char last[1024];
} warnlog;

static void sink(void *user, int level, const char *msg)
{
    warnlog *w = user;
    if (level >= SX_LOG_WARN) {
        w->n++;
        snprintf(w->last, sizeof w->last, "%s", msg);
    }
}

/* ---------- raw HDF5 writers for hand-made files */
static void attr_str(hid_t obj, const char *name, const char *val)
{
    ck_assert_int_eq(sx_h5_set_attr_string(obj, name, val, NULL), SX_OK);
}

static void enc(hid_t obj, const char *t, const char *v)
{
    attr_str(obj, "encoding-type", t);
    attr_str(obj, "encoding-version", v);
}

static void dset(hid_t loc, const char *name, hid_t ft, hid_t mt, const void *buf, hsize_t n)
{
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(loc, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(d >= 0);
    if (n) ck_assert(H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Dclose(d);
    H5Sclose(sp);
}

static void strings(hid_t loc, const char *name, const char *const *v, hsize_t n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    dset(loc, name, t, t, v, n);
    H5Tclose(t);
}

static void frame(hid_t f, const char *name, const char *const *idx, hsize_t n)
{
    hid_t g = H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    enc(g, "dataframe", "0.2.0");
    attr_str(g, "_index", "_index");
    hsize_t z = 0;
    hid_t sp = H5Screate_simple(1, &z, NULL);
    hid_t a = H5Acreate2(g, "column-order", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Aclose(a);
    H5Sclose(sp);
    strings(g, "_index", idx, n);
    H5Gclose(g);
}

typedef struct {
    int64_t shape[2];
    const int64_t *indptr;
    int n_indptr;
    const int32_t *indices;
    const float *data;
    int nnz;
    const char *fmt; /* "csr_matrix" / "csc_matrix" */
} spec;

static const char *obs3[] = {"c0", "c1", "c2"};
static const char *var4[] = {"g0", "g1", "g2", "g3"};

/* A minimal modern h5ad with 3 obs x 4 vars and the given sparse X. */
static void write_sparse(const char *path, const spec *s)
{
    sx_h5_quiet();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(f >= 0);
    enc(f, "anndata", "0.1.0");
    frame(f, "obs", obs3, 3);
    frame(f, "var", var4, 4);
    hid_t g = H5Gcreate2(f, "X", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    enc(g, s->fmt ? s->fmt : "csr_matrix", "0.1.0");
    hsize_t two = 2;
    hid_t sp = H5Screate_simple(1, &two, NULL);
    hid_t a = H5Acreate2(g, "shape", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, s->shape);
    H5Aclose(a);
    H5Sclose(sp);
    dset(g, "indptr", H5T_STD_I64LE, H5T_NATIVE_INT64, s->indptr, (hsize_t)s->n_indptr);
    dset(g, "indices", H5T_STD_I32LE, H5T_NATIVE_INT32, s->indices, (hsize_t)s->nnz);
    dset(g, "data", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, s->data, (hsize_t)s->nnz);
    H5Gclose(g);
    H5Fclose(f);
}

static const int64_t good_ptr[] = {0, 2, 2, 5};
static const int32_t good_ind[] = {0, 3, 0, 1, 2};
static const float good_val[] = {1, 2, 3, 4, 5};

static spec good_spec(void)
{
    spec s = {{3, 4}, good_ptr, 4, good_ind, good_val, 5, NULL};
    return s;
}

static char *tmpfile_in(const char *dir, const char *name)
{
    static char ring[8][1024];
    static int k;
    char *b = ring[k++ & 7];
    snprintf(b, 1024, "%s/%s", dir, name);
    return b;
}

/* Expect reading to fail with `code` and a message naming the file and containing `word`. */
static void expect_fail(const char *path, int code, const char *word)
{
    sx_status st = {0};
    sx_dataset *d = sx_h5ad_read(path, NULL, NULL, &st);
    ck_assert_msg(d == NULL, "reading %s should fail", path);
    if (code) ck_assert_msg(st.code == code, "code %d (%s), expected %d", st.code, st.msg, code);
    else ck_assert_int_ne(st.code, SX_OK);
    ck_assert_msg(strstr(st.msg, path) != NULL, "message does not name the file: %s", st.msg);
    if (word) ck_assert_msg(strstr(st.msg, word) != NULL, "message lacks '%s': %s", word, st.msg);
}

/* ---------- a synthetic dataset with every column kind, obsm, layers, raw, nested uns */
static sx_dataset *build(void)
{
    sx_status st = {0};
    const int64_t n = 5, g = 3;
    sx_dataset *d = sx_dataset_new(n, g, &st);
    ck_assert_ptr_nonnull(d);
    const char *cells[] = {"AAAC-1", "AAAG-1", "ÄÖÜ-ü", "c4", "c5"};
    for (int i = 0; i < n; i++) {
        sx_free(d->obs->index[i]);
        d->obs->index[i] = sx_strdup(cells[i]);
    }
    /* X: integer counts, row 3 empty */
    sx_csr *X = sx_csr_new(n, g, 6, &st);
    int64_t ptr[] = {0, 2, 3, 5, 5, 6};
    int32_t ind[] = {0, 2, 1, 0, 2, 1};
    float val[] = {1, 7, 2, 3, 1, 40};
    memcpy(X->indptr, ptr, sizeof ptr);
    memcpy(X->indices, ind, sizeof ind);
    memcpy(X->data, val, sizeof val);
    d->X = X;
    d->x_was_int = 1;
    const char *sv[] = {"a", "b", "c", "d", "e"};
    ck_assert_int_eq(sx_frame_add_strings(d->obs, "name", sv, &st), SX_OK);
    const char *sm[] = {"x", NULL, "y", "x", NULL};
    ck_assert_int_eq(sx_frame_add_strings(d->obs, "with_missing", sm, &st), SX_OK);
    int32_t codes[] = {1, 0, -1, 1, 2};
    const char *cats[] = {"low", "mid", "high"};
    ck_assert_int_eq(sx_frame_add_categorical(d->obs, "level", codes, cats, 3, 1, &st), SX_OK);
    int64_t iv[] = {1, -2, 3, 4000000000LL, 5};
    ck_assert_int_eq(sx_frame_add_int(d->obs, "n_genes", iv, &st), SX_OK);
    double fv[] = {0.5, NAN, -1e300, 3, 1e-7};
    ck_assert_int_eq(sx_frame_add_float(d->obs, "score", fv, &st), SX_OK);
    uint8_t bv[] = {1, 0, 0, 1, 1};
    ck_assert_int_eq(sx_frame_add_bool(d->obs, "keep", bv, &st), SX_OK);
    int64_t nv[] = {7, 0, 9, 0, 11};
    ck_assert_int_eq(sx_frame_add_int(d->obs, "maybe", nv, &st), SX_OK);
    sx_column *mc = sx_frame_col(d->obs, "maybe");
    mc->mask = sx_calloc(5, 1);
    mc->mask[1] = mc->mask[3] = 1;
    uint8_t hv[] = {0, 1, 1};
    ck_assert_int_eq(sx_frame_add_bool(d->var, "highly_variable", hv, &st), SX_OK);
    /* obsm f32 and f64 */
    double lat[10] = {0.25, -1, 2, 3.5, 4, 5, 6, 7, 8, 9.125};
    ck_assert_int_eq(sx_dataset_set_obsm(d, "X_umap", lat, 5, 2, 1, &st), SX_OK);
    double l64[5] = {1.0 / 3, 2, 3, 4, 5};
    ck_assert_int_eq(sx_dataset_set_obsm(d, "latent", l64, 5, 1, 0, &st), SX_OK);
    ck_assert_int_eq(sx_dataset_set_layer(d, "counts", sx_csr_copy(X, &st), &st), SX_OK);
    /* raw with 4 genes */
    d->raw_X = sx_csr_new(n, 4, 1, &st);
    for (int i = 1; i <= n; i++) d->raw_X->indptr[i] = 1;
    d->raw_X->indices[0] = 3;
    d->raw_X->data[0] = 0.5f;
    const char *rg[] = {"r0", "r1", "r2", "r3"};
    d->raw_var = sx_frame_new(4, rg, &st);
    /* nested uns */
    sx_uns *nb = sx_uns_set_dict(d->uns, "neighbors");
    sx_uns *pr = sx_uns_set_dict(nb, "params");
    sx_uns_set_int(pr, "n_neighbors", 15);
    sx_uns_set_string(pr, "metric", "euclidean");
    sx_uns_set_float(pr, "a", 1.577);
    sx_uns_set_bool(pr, "use_rep", 1);
    sx_uns_set_dict(d->uns, "empty");
    const char *colors[] = {"#1f77b4", "#ff7f0e"};
    sx_uns_set_strings(d->uns, "batch_colors", colors, 2);
    int64_t ai[] = {3, 1, 2};
    sx_uns_set_ints(d->uns, "order", ai, 3);
    double m2[] = {1, 2, 3, 4, 5, 6};
    sx_uns *mm = sx_uns_set_floats(d->uns, "matrix", m2, 6);
    mm->dims[0] = 2;
    mm->dims[1] = 3;
    return d;
}

static int count_tmp(const char *dir)
{
    DIR *dd = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dd)))
        if (strstr(e->d_name, ".tmp-")) n++;
    closedir(dd);
    return n;
}

static H5T_class_t class_of(hid_t f, const char *path)
{
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    ck_assert_msg(d >= 0, "%s missing", path);
    hid_t t = H5Dget_type(d);
    H5T_class_t c = H5Tget_class(t);
    H5Tclose(t);
    H5Dclose(d);
    return c;
}

START_TEST(roundtrip_all_kinds)
{
    const char *dir = sx_test_tmpdir();
    const char *p = tmpfile_in(dir, "all.h5ad");
    sx_dataset *d = build();
    sx_status st = {0};
    ck_assert_msg(sx_h5ad_write(p, d, NULL, &st) == SX_OK, "%s", st.msg);
    ck_assert_int_eq(count_tmp(dir), 0);

    /* the file, read with raw HDF5: encodings anndata 0.8 needs */
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    char *s = NULL;
    ck_assert_int_eq(sx_h5_attr_string(f, ".", "encoding-type", &s, &st), SX_OK);
    ck_assert_str_eq(s, "anndata");
    sx_free(s);
    const char *grp[] = {"obsm", "varm", "obsp", "varp", "layers", "uns", "uns/empty"};
    for (int i = 0; i < 7; i++) {
        ck_assert_int_eq(sx_h5_attr_string(f, grp[i], "encoding-type", &s, &st), SX_OK);
        ck_assert_str_eq(s, "dict");
        sx_free(s);
    }
    ck_assert_int_eq(class_of(f, "obs/keep"), H5T_ENUM);
    ck_assert_int_eq(class_of(f, "var/highly_variable"), H5T_ENUM);
    ck_assert_int_eq(class_of(f, "X/data"), H5T_INTEGER); /* counts stay integer */
    ck_assert_int_eq(sx_h5_attr_string(f, "obs/with_missing", "encoding-type", &s, &st), SX_OK);
    ck_assert_str_eq(s, "categorical"); /* strings with missing values become categorical */
    sx_free(s);
    ck_assert_int_eq(sx_h5_attr_string(f, "obs/maybe", "encoding-type", &s, &st), SX_OK);
    ck_assert_str_eq(s, "nullable-integer");
    sx_free(s);
    hid_t a = H5Aopen_by_name(f, "obs/level", "ordered", H5P_DEFAULT, H5P_DEFAULT);
    hid_t at = H5Aget_type(a);
    ck_assert_int_eq(H5Tget_class(at), H5T_ENUM);
    H5Tclose(at);
    H5Aclose(a);
    H5Fclose(f);

    /* read back: every value as built */
    sx_dataset *r = sx_h5ad_read(p, NULL, NULL, &st);
    ck_assert_msg(r != NULL, "%s", st.msg);
    ck_assert_int_eq(r->x_was_int, 1);
    ck_assert_int_eq(sx_csr_nnz(r->X), 6);
    for (int k = 0; k < 6; k++) {
        ck_assert_int_eq(r->X->indices[k], d->X->indices[k]);
        ck_assert(r->X->data[k] == d->X->data[k]);
    }
    for (int i = 0; i <= 5; i++) ck_assert_int_eq(r->X->indptr[i], d->X->indptr[i]);
    ck_assert_str_eq(r->obs->index[2], "ÄÖÜ-ü");
    ck_assert_int_eq(r->obs->n_cols, d->obs->n_cols);
    for (int c = 0; c < d->obs->n_cols; c++) ck_assert_str_eq(r->obs->cols[c].name, d->obs->cols[c].name);
    sx_column *lv = sx_frame_col(r->obs, "level");
    ck_assert_int_eq(lv->kind, SX_COL_CATEGORICAL);
    ck_assert_int_eq(lv->ordered, 1);
    ck_assert_int_eq(lv->n_categories, 3);
    ck_assert_str_eq(lv->categories[2], "high");
    ck_assert_int_eq(lv->codes[2], -1);
    ck_assert_int_eq(lv->codes[4], 2);
    sx_column *wm = sx_frame_col(r->obs, "with_missing");
    ck_assert_int_eq(wm->kind, SX_COL_CATEGORICAL);
    ck_assert_int_eq(wm->codes[1], -1);
    ck_assert_str_eq(wm->categories[wm->codes[0]], "x");
    ck_assert_str_eq(wm->categories[wm->codes[2]], "y");
    ck_assert_int_eq(sx_frame_col(r->obs, "n_genes")->i64[3], 4000000000LL);
    sx_column *sc = sx_frame_col(r->obs, "score");
    ck_assert(isnan(sc->f64[1]) && sc->f64[2] == -1e300 && sc->f64[4] == 1e-7);
    sx_column *kp = sx_frame_col(r->obs, "keep");
    ck_assert_int_eq(kp->kind, SX_COL_BOOL);
    ck_assert(kp->b[0] == 1 && kp->b[1] == 0 && kp->b[4] == 1);
    sx_column *mb = sx_frame_col(r->obs, "maybe");
    ck_assert_ptr_nonnull(mb->mask);
    ck_assert(mb->mask[1] && mb->mask[3] && !mb->mask[0] && mb->i64[2] == 9);
    ck_assert_int_eq(sx_frame_col(r->var, "highly_variable")->b[1], 1);
    sx_dense *um = sx_dataset_obsm(r, "X_umap");
    ck_assert(um && um->f32 && um->n_cols == 2 && um->v[9] == 9.125 && um->v[1] == -1);
    sx_dense *lt = sx_dataset_obsm(r, "latent");
    ck_assert(lt && !lt->f32 && lt->v[0] == 1.0 / 3);
    ck_assert_ptr_nonnull(sx_dataset_layer(r, "counts"));
    ck_assert(r->raw_X && r->raw_X->n_cols == 4 && r->raw_X->data[0] == 0.5f);
    ck_assert_str_eq(r->raw_var->index[3], "r3");
    ck_assert_int_eq(sx_uns_path(r->uns, "neighbors/params/n_neighbors")->i, 15);
    ck_assert_str_eq(sx_uns_path(r->uns, "neighbors/params/metric")->str, "euclidean");
    ck_assert(sx_uns_path(r->uns, "neighbors/params/a")->f == 1.577);
    ck_assert_int_eq(sx_uns_path(r->uns, "neighbors/params/use_rep")->kind, SX_UNS_BOOL);
    ck_assert_int_eq(sx_uns_path(r->uns, "empty")->kind, SX_UNS_DICT);
    ck_assert_str_eq(sx_uns_get(r->uns, "batch_colors")->as[1], "#ff7f0e");
    sx_uns *mx = sx_uns_get(r->uns, "matrix");
    ck_assert(mx->kind == SX_UNS_ARR_FLOAT && mx->dims[0] == 2 && mx->dims[1] == 3 && mx->af[5] == 6);
    ck_assert_int_eq(sx_uns_get(r->uns, "order")->ai[0], 3);

    /* use_layer: raw replaces X and var; layers/NAME */
    sx_read_opts o = {0};
    o.use_layer = "raw";
    sx_dataset *rr = sx_h5ad_read(p, &o, NULL, &st);
    ck_assert_msg(rr != NULL, "%s", st.msg);
    ck_assert_int_eq(rr->X->n_cols, 4);
    ck_assert_int_eq(rr->var->n_rows, 4);
    sx_dataset_free(rr);
    o.use_layer = "layers/counts";
    rr = sx_h5ad_read(p, &o, NULL, &st);
    ck_assert_msg(rr != NULL, "%s", st.msg);
    ck_assert(rr->X->data[5] == 40);
    sx_dataset_free(rr);
    o.use_layer = "layers/nope";
    ck_assert_ptr_null(sx_h5ad_read(p, &o, NULL, &st));
    ck_assert_int_eq(st.code, SX_ENOTFOUND);
    o.use_layer = "X";
    o.chunk_rows = 1; /* row chunks of one row give the same matrix */
    rr = sx_h5ad_read(p, &o, NULL, &st);
    ck_assert(rr && sx_csr_nnz(rr->X) == 6 && rr->X->data[5] == 40);
    sx_dataset_free(rr);

    /* writing over an existing file replaces it atomically, no temp left */
    r->x_was_int = 0;
    r->X->data[0] = 0.5f;
    ck_assert_int_eq(sx_h5ad_write(p, r, NULL, &st), SX_OK);
    ck_assert_int_eq(count_tmp(dir), 0);
    sx_dataset *r2 = sx_h5ad_read(p, NULL, NULL, &st);
    ck_assert(r2 && r2->X->data[0] == 0.5f && r2->x_was_int == 0);
    sx_dataset_free(r2);
    /* a write that cannot happen leaves nothing behind */
    char bad[1100];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.h5ad", dir);
    ck_assert_int_eq(sx_h5ad_write(bad, r, NULL, &st), SX_EIO);
    ck_assert_int_eq(count_tmp(dir), 0);
    sx_dataset_free(r);
    sx_dataset_free(d);
}
END_TEST

/* Numbers in many chunks, deflated on several threads (sx_h5_zchunk): HDF5's own filters
 * read every value back; incompressible chunks (random bits) are stored as HDF5 stores
 * them, shuffled only; the datasets keep shuffle + deflate for any reader. */
START_TEST(chunks_deflated_on_threads)
{
    const char *dir = sx_test_tmpdir();
    sx_status st = {0};
    const int64_t n = 70000, g = 50, per = 9; /* X: 630k stored values, 3 chunks each */
    sx_dataset *d = sx_dataset_new(n, g, &st);
    ck_assert_ptr_nonnull(d);
    sx_csr *X = sx_csr_new(n, g, n * per, &st);
    uint64_t r = 88172645463325252ULL;
    for (int64_t i = 0; i < n; i++) {
        X->indptr[i + 1] = (i + 1) * per;
        for (int k = 0; k < per; k++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            X->indices[i * per + k] = k * 5 + (int32_t)(r % 5);
            X->data[i * per + k] = (float)(r % 1000) / 7.0f;
        }
    }
    d->X = X;
    double *bits = sx_mallocarray((size_t)n * 3, sizeof *bits), *lat = sx_mallocarray((size_t)n * 3, sizeof *lat);
    int64_t *ri = sx_mallocarray((size_t)n * 3, sizeof *ri); /* incompressible */
    for (int64_t i = 0; i < n * 3; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        ri[i] = (int64_t)(r * 0x9E3779B97F4A7C15ULL);
        uint64_t u = r & ~(0x7ffULL << 52); /* random bits, never NaN or inf */
        memcpy(&bits[i], &u, sizeof u);
        lat[i] = (double)(r % 100000) / 3.0;
    }
    ck_assert_int_eq(sx_dataset_set_obsm(d, "noise", bits, n, 3, 0, &st), SX_OK);
    ck_assert_int_eq(sx_dataset_set_obsm(d, "X_umap", lat, n, 3, 1, &st), SX_OK);
    int32_t *codes = sx_mallocarray((size_t)n, sizeof *codes);
    for (int64_t i = 0; i < n; i++) codes[i] = (int32_t)(i % 3) - 1;
    const char *cats[] = {"a", "b"};
    ck_assert_int_eq(sx_frame_add_categorical(d->obs, "c", codes, cats, 2, 0, &st), SX_OK);
    ck_assert_ptr_nonnull(sx_uns_set_ints(d->uns, "random", ri, n * 3));
    for (int fast = 0; fast < 2; fast++) {
        char name[32];
        snprintf(name, sizeof name, "threads%d.h5ad", fast);
        const char *p = tmpfile_in(dir, name);
        sx_write_opts wo = {.compress = 4, .gzip = 1, .threads = 3, .fast = fast};
        ck_assert_msg(sx_h5ad_write(p, d, &wo, &st) == SX_OK, "%s", st.msg);
        hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
        const char *dsets[] = {"X/data", "X/indices", "obsm/noise", "uns/random", "obs/c/codes"};
        for (int k = 0; k < 5; k++) {
            hid_t ds = H5Dopen2(f, dsets[k], H5P_DEFAULT), pl = H5Dget_create_plist(ds);
            int nf = H5Pget_nfilters(pl);
            ck_assert_int_eq(H5Pget_filter2(pl, nf - 1, NULL, NULL, NULL, 0, NULL, NULL),
                             H5Z_FILTER_DEFLATE);
            ck_assert_int_eq(nf, k == 4 ? 1 : 2); /* shuffle first, but not for bytes */
            H5Pclose(pl);
            H5Dclose(ds);
        }
        H5Fclose(f);
        sx_dataset *b = sx_h5ad_read(p, NULL, NULL, &st);
        ck_assert_msg(b != NULL, "%s", st.msg);
        ck_assert_int_eq(sx_csr_nnz(b->X), n * per);
        ck_assert(!memcmp(b->X->indices, X->indices, (size_t)(n * per) * sizeof *X->indices));
        ck_assert(!memcmp(b->X->data, X->data, (size_t)(n * per) * sizeof *X->data));
        for (int64_t i = 0; i <= n; i++) ck_assert_int_eq(b->X->indptr[i], X->indptr[i]);
        sx_dense *no = sx_dataset_obsm(b, "noise"), *um = sx_dataset_obsm(b, "X_umap");
        ck_assert(no && !no->f32 && !memcmp(no->v, bits, (size_t)n * 3 * sizeof *bits));
        for (int64_t i = 0; i < n * 3; i++) ck_assert(um->v[i] == (double)(float)lat[i]);
        sx_uns *ru = sx_uns_get(b->uns, "random");
        ck_assert(ru && ru->n == n * 3 && !memcmp(ru->ai, ri, (size_t)n * 3 * sizeof *ri));
        sx_column *c = sx_frame_col(b->obs, "c");
        for (int64_t i = 0; i < n; i++) ck_assert_int_eq(c->codes[i], codes[i]);
        sx_dataset_free(b);
    }
    sx_free(bits);
    sx_free(lat);
    sx_free(ri);
    sx_free(codes);
    sx_dataset_free(d);
}
END_TEST

START_TEST(csc_dense_and_int64)
{
    const char *dir = sx_test_tmpdir();
    /* CSC of the good matrix: columns 0:{r0:1,r2:3} 1:{r2:4} 2:{r2:5} 3:{r0:2} */
    const char *p = tmpfile_in(dir, "csc.h5ad");
    int64_t cptr[] = {0, 2, 3, 4, 5};
    int32_t cind[] = {0, 2, 2, 2, 0};
    float cval[] = {1, 3, 4, 5, 2};
    spec s = {{3, 4}, cptr, 5, cind, cval, 5, "csc_matrix"};
    write_sparse(p, &s);
    sx_status st = {0};
    sx_dataset *d = sx_h5ad_read(p, NULL, NULL, &st);
    ck_assert_msg(d != NULL, "%s", st.msg);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(d->X->indptr[i], good_ptr[i]);
    for (int k = 0; k < 5; k++) {
        ck_assert_int_eq(d->X->indices[k], good_ind[k]);
        ck_assert(d->X->data[k] == good_val[k]);
    }
    sx_dataset_free(d);
    /* dense float64 X */
    const char *q = tmpfile_in(dir, "dense.h5ad");
    hid_t f = H5Fcreate(q, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    enc(f, "anndata", "0.1.0");
    frame(f, "obs", obs3, 3);
    frame(f, "var", var4, 4);
    double dv[12] = {1, 0, 0, 2, 0, 0, 0, 0, 3, 4, 5, 0};
    hsize_t dims[2] = {3, 4};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t ds = H5Dcreate2(f, "X", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, dv);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
    sx_read_opts o = {0};
    o.chunk_rows = 2;
    d = sx_h5ad_read(q, &o, NULL, &st);
    ck_assert_msg(d != NULL, "%s", st.msg);
    ck_assert_int_eq(d->x_was_int, 0);
    ck_assert_int_eq(sx_csr_nnz(d->X), 5);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(d->X->indptr[i], good_ptr[i]);
    for (int k = 0; k < 5; k++) ck_assert(d->X->data[k] == good_val[k]);
    sx_dataset_free(d);
}
END_TEST

START_TEST(errors_structure)
{
    const char *dir = sx_test_tmpdir();
    /* not HDF5 */
    const char *p = tmpfile_in(dir, "text.h5ad");
    FILE *fp = fopen(p, "w");
    fputs("cell,gene\n1,2\n", fp);
    fclose(fp);
    expect_fail(p, SX_EFORMAT, "not an HDF5");
    /* missing file */
    expect_fail(tmpfile_in(dir, "absent.h5ad"), SX_EIO, NULL);
    /* lying shape attribute: says 5 x 4, obs has 3 */
    spec s = good_spec();
    s.shape[0] = 5;
    p = tmpfile_in(dir, "shape.h5ad");
    write_sparse(p, &s);
    expect_fail(p, SX_EFORMAT, "indptr");
    int64_t ptr6[] = {0, 2, 2, 5, 5, 5};
    s.indptr = ptr6;
    s.n_indptr = 6;
    write_sparse(p, &s);
    expect_fail(p, SX_EFORMAT, "shape attribute");
    /* out-of-range column index */
    s = good_spec();
    int32_t bad_ind[] = {0, 3, 0, 9, 2};
    s.indices = bad_ind;
    p = tmpfile_in(dir, "index.h5ad");
    write_sparse(p, &s);
    expect_fail(p, SX_EFORMAT, "outside 0..3");
    /* decreasing indptr */
    s = good_spec();
    int64_t dec[] = {0, 3, 2, 5};
    s.indptr = dec;
    p = tmpfile_in(dir, "indptr.h5ad");
    write_sparse(p, &s);
    expect_fail(p, SX_EFORMAT, "decreases");
    /* indptr not ending at nnz */
    int64_t shortp[] = {0, 1, 2, 4};
    s.indptr = shortp;
    write_sparse(p, &s);
    expect_fail(p, SX_EFORMAT, "ends at 4");
    /* obs column of the wrong length */
    s = good_spec();
    p = tmpfile_in(dir, "obslen.h5ad");
    write_sparse(p, &s);
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t g = H5Gopen2(f, "obs", H5P_DEFAULT);
    H5Adelete(g, "column-order");
    const char *cols[] = {"n_genes"};
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hsize_t one = 1;
    hid_t sp = H5Screate_simple(1, &one, NULL);
    hid_t a = H5Acreate2(g, "column-order", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, cols);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    int64_t two[] = {1, 2};
    dset(g, "n_genes", H5T_STD_I64LE, H5T_NATIVE_INT64, two, 2);
    H5Gclose(g);
    H5Fclose(f);
    expect_fail(p, SX_EFORMAT, "obs/n_genes");
    /* truncated file: our own valid file cut in half */
    sx_dataset *d = build();
    sx_status st = {0};
    p = tmpfile_in(dir, "full.h5ad");
    ck_assert_int_eq(sx_h5ad_write(p, d, NULL, &st), SX_OK);
    sx_dataset_free(d);
    struct stat sb;
    stat(p, &sb);
    ck_assert_int_eq(truncate(p, sb.st_size / 2), 0);
    expect_fail(p, 0, NULL);
}
END_TEST

/* A pass-through filter registered as id 32001 (blosc, which hdf5plugin adds to h5py) only
 * while writing, so the file names a filter the reader has no decoder for. */
static size_t passthrough(unsigned flags, size_t cd_nelmts, const unsigned cd[], size_t nbytes,
                          size_t *buf_size, void **buf)
{
    return nbytes;
}

START_TEST(errors_values_and_filters)
{
    const char *dir = sx_test_tmpdir();
    /* NaN */
    spec s = good_spec();
    float nanv[] = {1, 2, NAN, 4, INFINITY};
    s.data = nanv;
    const char *p = tmpfile_in(dir, "nan.h5ad");
    write_sparse(p, &s);
    expect_fail(p, SX_EDATA, "NaN");
    sx_read_opts o = {0};
    o.skip_values_check = 1;
    sx_status st = {0};
    sx_dataset *d = sx_h5ad_read(p, &o, NULL, &st);
    ck_assert_ptr_nonnull(d);
    sx_dataset_free(d);
    /* negative / non-integer among counts: a warning with the numbers */
    warnlog wl = {0};
    sx_log_set_sink(sink, &wl, SX_LOG_WARN);
    float many[200];
    int64_t ptr[4] = {0, 100, 100, 200};
    int32_t ind[200];
    for (int k = 0; k < 200; k++) {
        many[k] = (float)(k % 7 + 1);
        ind[k] = k < 100 ? 0 : 1;
    }
    many[10] = -3;
    /* one entry per row/column pair is needed for canonical input: use a 3 x 200 matrix */
    for (int k = 0; k < 200; k++) ind[k] = k % 100;
    spec w = {{3, 100}, ptr, 4, ind, many, 200, NULL};
    p = tmpfile_in(dir, "neg.h5ad");
    hid_t f;
    {
        /* 3 x 100 file: var needs 100 names */
        static char names[100][8];
        const char *vn[100];
        for (int i = 0; i < 100; i++) {
            snprintf(names[i], 8, "g%d", i);
            vn[i] = names[i];
        }
        write_sparse(p, &w);
        f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
        H5Ldelete(f, "var", H5P_DEFAULT);
        frame(f, "var", vn, 100);
        H5Fclose(f);
    }
    d = sx_h5ad_read(p, NULL, NULL, &st);
    ck_assert_msg(d != NULL, "%s", st.msg);
    ck_assert_int_eq(wl.n, 1);
    ck_assert_msg(strstr(wl.last, "1 negative") && strstr(wl.last, p), "%s", wl.last);
    sx_dataset_free(d);
    sx_log_set_sink(NULL, NULL, SX_LOG_WARN);

    /* blosc (filter 32001): no decoder here */
    H5Z_class2_t cls = {H5Z_CLASS_T_VERS, (H5Z_filter_t)32001, 1, 1, "blosc", NULL, NULL, passthrough};
    ck_assert(H5Zregister(&cls) >= 0);
    p = tmpfile_in(dir, "blosc.h5ad");
    write_sparse(p, &(spec){{3, 4}, good_ptr, 4, good_ind, good_val, 5, NULL});
    f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "X/data", H5P_DEFAULT);
    hsize_t n5 = 5;
    hid_t sp = H5Screate_simple(1, &n5, NULL);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, 1, &n5);
    H5Pset_filter(pl, 32001, H5Z_FLAG_OPTIONAL, 0, NULL);
    hid_t ds = H5Dcreate2(f, "X/data", H5T_IEEE_F32LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, good_val);
    H5Dclose(ds);
    H5Pclose(pl);
    H5Sclose(sp);
    H5Fclose(f);
    ck_assert(H5Zunregister(32001) >= 0);
    expect_fail(p, SX_EUNSUPPORTED, "filter 32001 (blosc)");
    expect_fail(p, SX_EUNSUPPORTED, "compression=\"gzip\"");
    expect_fail(p, SX_EUNSUPPORTED, "X/data");

    /* a header claiming 10^12 entries fails fast, without allocating */
    p = tmpfile_in(dir, "huge.h5ad");
    write_sparse(p, &(spec){{3, 4}, good_ptr, 4, good_ind, good_val, 5, NULL});
    f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "X/data", H5P_DEFAULT);
    H5Ldelete(f, "X/indices", H5P_DEFAULT);
    hsize_t big = 1000000000000ULL, chunk = 65536;
    sp = H5Screate_simple(1, &big, NULL);
    pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, 1, &chunk);
    ds = H5Dcreate2(f, "X/data", H5T_IEEE_F32LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    H5Dclose(ds);
    ds = H5Dcreate2(f, "X/indices", H5T_STD_I32LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    H5Dclose(ds);
    H5Pclose(pl);
    H5Sclose(sp);
    H5Fclose(f);
    int64_t before = sx_peak_rss();
    expect_fail(p, SX_EFORMAT, "claims 1000000000000 entries");
    ck_assert(sx_peak_rss() - before < 64LL * 1024 * 1024);
}
END_TEST

START_TEST(real_files)
{
    /* the anndata 0.7 gzip twin: object-reference categorical in var */
    sx_status st = {0};
    const char *p = sx_test_shared("data/h5ad_versions/pbmc_10k_protein_v3_subset_anndata0.7_gzip.h5ad");
    sx_dataset *d = sx_h5ad_read(p, NULL, NULL, &st);
    ck_assert_msg(d != NULL, "%s", st.msg);
    ck_assert_int_eq(d->obs->n_rows, 200);
    ck_assert_int_eq(d->var->n_rows, 16727);
    sx_column *e = sx_frame_col(d->var, "encode");
    ck_assert(e && e->kind == SX_COL_CATEGORICAL && e->n_categories == 14);
    ck_assert_int_eq(d->x_was_int, 0); /* float32 on disk, integer-valued */
    sx_dense *pe = sx_dataset_obsm(d, "protein_expression");
    ck_assert(pe && pe->n_cols == 14);
    /* the LZF original (h5py's filter, decoded with liblzf) holds the same data */
    sx_dataset *lzf = sx_h5ad_read(
        sx_test_shared("data/h5ad_versions/pbmc_10k_protein_v3_subset_anndata0.7.h5ad"), NULL,
        NULL, &st);
    ck_assert_msg(lzf != NULL, "%s", st.msg);
    same_dataset(d, lzf);
    sx_dense *pl = sx_dataset_obsm(lzf, "protein_expression");
    ck_assert(pl && pl->n_rows == pe->n_rows && pl->n_cols == pe->n_cols);
    ck_assert_mem_eq(pl->v, pe->v, (size_t)(pe->n_rows * pe->n_cols) * sizeof *pe->v);
    sx_column *el = sx_frame_col(lzf->var, "encode");
    ck_assert(el && el->kind == SX_COL_CATEGORICAL && el->n_categories == 14);
    sx_dataset_free(lzf);
    sx_dataset_free(d);
    /* the legacy 0.6 file: compound obs with uns categories, raw.X, compound obsm */
    p = sx_test_shared("data/h5ad_versions/pbmc68k_reduced_2018_legacy_anndata0.6.h5ad");
    d = sx_h5ad_read(p, NULL, NULL, &st);
    ck_assert_msg(d != NULL, "%s", st.msg);
    sx_column *bl = sx_frame_col(d->obs, "bulk_labels");
    ck_assert(bl && bl->kind == SX_COL_CATEGORICAL && bl->n_categories == 10);
    ck_assert_ptr_null(sx_uns_get(d->uns, "bulk_labels_categories")); /* consumed */
    ck_assert(d->raw_X && sx_csr_nnz(d->raw_X) == 174400);
    ck_assert(sx_dataset_obsm(d, "X_pca") && sx_dataset_obsm(d, "X_pca")->n_cols == 50);
    ck_assert_int_eq(sx_frame_col(d->var, "highly_variable")->kind, SX_COL_BOOL);
    sx_dataset_free(d);
    /* int32 counts */
    p = sx_test_shared("data/cellbench_3cl_celseq2_dropseq/dropseq.h5ad");
    d = sx_h5ad_read(p, NULL, NULL, &st);
    ck_assert_msg(d != NULL, "%s", st.msg);
    ck_assert_int_eq(d->x_was_int, 1);
    ck_assert_int_eq(sx_csr_nnz(d->X), 1290921);
    sx_dataset_free(d);
    /* detection */
    sx_format fmt;
    ck_assert_int_eq(sx_io_detect(sx_test_shared("data/pbmc_3tech_symphony/query_3pv1.h5ad"), &fmt, &st), SX_OK);
    ck_assert_int_eq(fmt, SX_FMT_H5AD);
    ck_assert_int_eq(sx_io_detect(sx_test_shared("data/pbmc_3tech_symphony/query_3pv1_mtx"), &fmt, &st), SX_OK);
    ck_assert_int_eq(fmt, SX_FMT_MTX_DIR);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("h5ad");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, roundtrip_all_kinds);
    tcase_add_test(tc, chunks_deflated_on_threads);
    tcase_add_test(tc, csc_dense_and_int64);
    tcase_add_test(tc, errors_structure);
    tcase_add_test(tc, errors_values_and_filters);
    tcase_add_test(tc, real_files);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
