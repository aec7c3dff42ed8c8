/* sx_h5ad_read — AnnData .h5ad (anndata 0.6 .. today) into an sx_dataset.
 *
 * Order of work: uns first (the oldest layout keeps categorical labels there), then obs and
 * var (they fix the shape every matrix is checked against), then X in row chunks straight
 * into the final CSR arrays (no second copy of X), then obsm/varm/layers/raw.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_h5.h"
#include "sx_h5x.h"
#include "sx_io.h"
#include "sx_io_internal.h"
#include "sx_log.h"

/* Counts are "expected" when nearly every value is a non-negative integer: then the few
 * that are not are worth a warning (a scaled or log matrix is not warned about). */
static void warn_counts(const h5x_ctx *c, const char *elem, const h5x_vstats *s)
{
    if (s->n == 0) return;
    int64_t bad = s->n_neg > s->n_nonint ? s->n_neg : s->n_nonint;
    if (bad == 0 || (double)bad > 0.01 * (double)s->n) return;
    SX_WARN("%s: element '%s' looks like counts but has %lld negative and %lld non-integer "
            "values out of %lld stored; check that this is the raw count matrix", c->path, elem,
            (long long)s->n_neg, (long long)s->n_nonint, (long long)s->n);
}

static int check_values(const h5x_ctx *c, const char *elem, const h5x_vstats *s, sx_status *st)
{
    if (s->n_nan + s->n_inf == 0) return SX_OK;
    return sx_status_set(st, SX_EDATA, "%s: element '%s' holds %lld NaN and %lld infinite "
                         "values (first at stored entry %lld); replace them (e.g. with 0) "
                         "before loading", c->path, elem, (long long)s->n_nan,
                         (long long)s->n_inf, (long long)s->first_bad);
}

static int sorted_rows(const sx_csr *m)
{
    for (int64_t i = 0; i < m->n_rows; i++)
        for (int64_t k = m->indptr[i] + 1; k < m->indptr[i + 1]; k++)
            if (m->indices[k] <= m->indices[k - 1]) return 0;
    return 1;
}

/* Dense rows appended to a growing CSR (zeros dropped). */
typedef struct {
    sx_csr *m;
    int64_t cap;
} grow_csr;

static int grow_push(grow_csr *g, const float *row, int64_t ncol, int64_t r)
{
    int64_t nz = 0;
    for (int64_t j = 0; j < ncol; j++) nz += row[j] != 0;
    int64_t at = g->m->indptr[r];
    if (at + nz > g->cap) {
        int64_t nc = g->cap + g->cap / 2 + nz + 1024;
        int32_t *ni = sx_reallocarray(g->m->indices, (size_t)nc, sizeof(int32_t));
        if (!ni) return -1;
        g->m->indices = ni;
        float *nd = sx_reallocarray(g->m->data, (size_t)nc, sizeof(float));
        if (!nd) return -1;
        g->m->data = nd;
        g->cap = nc;
    }
    for (int64_t j = 0; j < ncol; j++)
        if (row[j] != 0) {
            g->m->indices[at] = (int32_t)j;
            g->m->data[at++] = row[j];
        }
    g->m->indptr[r + 1] = at;
    return 0;
}

/* Read a matrix element as canonical CSR, checking its shape against (rows, cols). */
static sx_csr *read_matrix(h5x_ctx *c, const char *path, const char *elem, int64_t rows,
                           int64_t cols, const char *rows_from, const char *cols_from,
                           int check_vals, int *was_int, sx_status *st)
{
    h5x_mat m;
    sx_csr *out = NULL;
    float *dense = NULL;
    int32_t *rowind = NULL;
    float *vals = NULL;
    h5x_vstats vs = {0};
    vs.first_bad = -1;
    if (h5x_mat_open(c, c->f, path, elem, &m, st) != SX_OK) return NULL;
    if (m.n_rows != rows || m.n_cols != cols) {
        sx_status_set(st, SX_EFORMAT, "%s: element '%s' is %lld x %lld (shape attribute) but %s has "
                      "%lld rows and %s %lld; the file is inconsistent", c->path, elem,
                      (long long)m.n_rows, (long long)m.n_cols, rows_from, (long long)rows, cols_from,
                      (long long)cols);
        goto fail;
    }
    if (was_int) *was_int = m.data_int;
    int64_t step = h5x_mat_chunk_rows(c, &m);
    if (m.kind == H5X_CSR) {
        if (!(out = sx_csr_new(m.n_rows, m.n_cols, m.nnz, st))) goto fail;
        sx_io_advise_huge(out->indices, (size_t)m.nnz * sizeof(int32_t));
        sx_io_advise_huge(out->data, (size_t)m.nnz * sizeof(float));
        memcpy(out->indptr, m.ptr, (size_t)(m.n_rows + 1) * sizeof(int64_t));
        for (int64_t r0 = 0; r0 < m.n_rows; r0 += step) {
            int64_t r1 = r0 + step < m.n_rows ? r0 + step : m.n_rows;
            if (h5x_mat_csr_rows(c, &m, r0, r1, out->indices + m.ptr[r0], out->data + m.ptr[r0], st))
                goto fail;
            h5x_vstats_count(&vs, out->data + m.ptr[r0], m.ptr[r1] - m.ptr[r0]);
            sx_progress_report(c->prog, "read", (double)r1 / (double)m.n_rows, NULL);
            if (sx_progress_cancelled(c->prog)) {
                sx_status_set(st, SX_ECANCELED, "reading %s canceled", c->path);
                goto fail;
            }
        }
    } else if (m.kind == H5X_CSC) {
        rowind = sx_mallocarray((size_t)(m.nnz ? m.nnz : 1), sizeof(int32_t));
        vals = sx_mallocarray((size_t)(m.nnz ? m.nnz : 1), sizeof(float));
        if (!rowind || !vals) {
            sx_status_set(st, SX_ENOMEM, "%s: '%s': cannot allocate %lld entries", c->path, elem,
                          (long long)m.nnz);
            goto fail;
        }
        if (h5x_read_slab1_mt(m.indices, H5T_NATIVE_INT32, 0, m.nnz, rowind, c->threads) < 0 ||
            h5x_read_slab1_mt(m.data, H5T_NATIVE_FLOAT, 0, m.nnz, vals, c->threads) < 0) {
            sx_status_set(st, SX_EFORMAT, "%s: element '%s': read failed (truncated or corrupt file)",
                          c->path, elem);
            goto fail;
        }
        for (int64_t k = 0; k < m.nnz; k++)
            if (rowind[k] < 0 || rowind[k] >= m.n_rows) {
                sx_status_set(st, SX_EFORMAT, "%s: element '%s': row index %d at entry %lld is "
                              "outside 0..%lld; the file is corrupt", c->path, elem, rowind[k],
                              (long long)k, (long long)m.n_rows - 1);
                goto fail;
            }
        h5x_vstats_count(&vs, vals, m.nnz);
        if (!(out = sx_csr_from_csc(m.n_rows, m.n_cols, m.ptr, rowind, vals, st))) {
            sx_status_prefix(st, "%s: element '%s': ", c->path, elem);
            goto fail;
        }
    } else {
        if (!(out = sx_csr_new(m.n_rows, m.n_cols, 0, st))) goto fail;
        grow_csr g = {out, 1};
        size_t per = (size_t)(m.n_cols ? m.n_cols : 1);
        dense = sx_mallocarray((size_t)step * per, sizeof(float));
        if (!dense) {
            sx_status_set(st, SX_ENOMEM, "%s: '%s': out of memory for a row chunk", c->path, elem);
            goto fail;
        }
        for (int64_t r0 = 0; r0 < m.n_rows; r0 += step) {
            int64_t r1 = r0 + step < m.n_rows ? r0 + step : m.n_rows;
            if (h5x_read_rows2(m.data, H5T_NATIVE_FLOAT, r0, r1, m.n_cols, dense) < 0) {
                sx_status_set(st, SX_EFORMAT, "%s: element '%s': cannot read rows %lld..%lld "
                              "(truncated or corrupt file)", c->path, elem, (long long)r0,
                              (long long)r1);
                goto fail;
            }
            for (int64_t r = r0; r < r1; r++) {
                const float *row = dense + (size_t)(r - r0) * per;
                int64_t before = vs.n;
                /* stats over the nonzeros, as for sparse input */
                for (int64_t j = 0; j < m.n_cols; j++)
                    if (row[j] != 0) h5x_vstats_add(&vs, &row[j], 1);
                (void)before;
                if (grow_push(&g, row, m.n_cols, r) < 0) {
                    sx_status_set(st, SX_ENOMEM, "%s: '%s': out of memory", c->path, elem);
                    goto fail;
                }
            }
            sx_progress_report(c->prog, "read", (double)r1 / (double)m.n_rows, NULL);
            if (sx_progress_cancelled(c->prog)) {
                sx_status_set(st, SX_ECANCELED, "reading %s canceled", c->path);
                goto fail;
            }
        }
        sx_csr_shrink(out, st);
    }
    if (check_vals && check_values(c, elem, &vs, st) != SX_OK) goto fail;
    if (strcmp(elem, "X") == 0 || strcmp(elem, "raw/X") == 0 || strncmp(elem, "layers/", 7) == 0)
        warn_counts(c, elem, &vs);
    /* CSR: h5x_mat_csr_rows checked the order while each chunk was in cache */
    int sorted = m.kind == H5X_CSR ? !m.unsorted : sorted_rows(out);
    if (!sorted && sx_csr_canonicalize(out, st) != SX_OK) goto fail;
    sx_free(dense);
    sx_free(rowind);
    sx_free(vals);
    h5x_mat_close(&m);
    return out;
fail:
    sx_free(dense);
    sx_free(rowind);
    sx_free(vals);
    sx_csr_free(out);
    h5x_mat_close(&m);
    return NULL;
}

/* Dense 2-D (or 1-D as n x 1) numeric dataset as double. */
static int read_dense(h5x_ctx *c, hid_t loc, const char *name, const char *elem, double **v,
                      int64_t *rows, int64_t *cols, int *f32, sx_status *st)
{
    hid_t d = h5x_dopen(c, loc, name, elem, st);
    if (d < 0) return st->code;
    int nd;
    int64_t dims[8];
    h5x_npoints(d, &nd, dims);
    hid_t ft = H5Dget_type(d);
    *f32 = H5Tget_class(ft) == H5T_FLOAT && H5Tget_size(ft) == 4;
    H5Tclose(ft);
    H5Dclose(d);
    if (nd != 1 && nd != 2)
        return sx_status_set(st, SX_EFORMAT, "%s: element '%s' has %d dimensions, expected 2",
                             c->path, elem, nd);
    int64_t n = 0;
    int rc = h5x_read_f64(c, loc, name, elem, v, &n, st);
    if (rc != SX_OK) return rc;
    *rows = dims[0];
    *cols = nd == 2 ? dims[1] : 1;
    return SX_OK;
}

/* obsm / varm: a dict group of arrays (sparse and dataframes skipped), or the oldest
 * layout's compound dataset whose fields are the matrices. */
static int read_mdict(h5x_ctx *c, sx_dataset *d, const char *key, int is_obs, sx_status *st)
{
    H5O_type_t ot = h5x_objtype(c->f, key);
    if (ot == H5O_TYPE_UNKNOWN) return SX_OK;
    int64_t want = is_obs ? d->obs->n_rows : d->var->n_rows;
    int rc = SX_OK;
    if (ot == H5O_TYPE_DATASET) {
        hid_t ds = h5x_dopen(c, c->f, key, key, st);
        if (ds < 0) return st->code;
        hid_t ft = H5Dget_type(ds);
        int64_t n = h5x_npoints(ds, NULL, NULL);
        int nm = H5Tget_class(ft) == H5T_COMPOUND ? H5Tget_nmembers(ft) : 0;
        for (int i = 0; i < nm && rc == SX_OK; i++) {
            char *fname = H5Tget_member_name(ft, (unsigned)i);
            hid_t mt = H5Tget_member_type(ft, (unsigned)i);
            int64_t k = 1;
            int f32 = 0;
            hid_t base = -1;
            if (H5Tget_class(mt) == H5T_ARRAY && H5Tget_array_ndims(mt) == 1) {
                hsize_t ad[1];
                H5Tget_array_dims2(mt, ad);
                k = (int64_t)ad[0];
                base = H5Tget_super(mt);
            } else if (H5Tget_class(mt) == H5T_FLOAT || H5Tget_class(mt) == H5T_INTEGER) {
                base = H5Tcopy(mt);
            }
            if (base < 0 || (H5Tget_class(base) != H5T_FLOAT && H5Tget_class(base) != H5T_INTEGER)) {
                SX_WARN("%s: %s field '%s' is not a numeric matrix; skipped", c->path, key, fname);
            } else {
                f32 = H5Tget_class(base) == H5T_FLOAT && H5Tget_size(base) == 4;
                double *v = sx_mallocarray((size_t)(n ? n : 1) * (size_t)k, sizeof(double));
                hid_t mem = k > 1 || H5Tget_class(mt) == H5T_ARRAY
                                ? H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, (hsize_t[]){(hsize_t)k})
                                : H5Tcopy(H5T_NATIVE_DOUBLE);
                hid_t comp = H5Tcreate(H5T_COMPOUND, (size_t)k * sizeof(double));
                H5Tinsert(comp, fname, 0, mem);
                if (!v || H5Dread(ds, comp, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
                    rc = sx_status_set(st, SX_EFORMAT, "%s: cannot read %s field '%s'", c->path,
                                       key, fname);
                else if (n != want)
                    rc = sx_status_set(st, SX_EFORMAT, "%s: %s/%s has %lld rows, expected %lld",
                                       c->path, key, fname, (long long)n, (long long)want);
                else
                    rc = is_obs ? sx_dataset_set_obsm(d, fname, v, n, k, f32, st)
                                : sx_dataset_set_varm(d, fname, v, n, k, f32, st);
                H5Tclose(comp);
                H5Tclose(mem);
                sx_free(v);
            }
            if (base >= 0) H5Tclose(base);
            H5Tclose(mt);
            H5free_memory(fname);
        }
        H5Tclose(ft);
        H5Dclose(ds);
        return rc;
    }
    hid_t g = H5Gopen2(c->f, key, H5P_DEFAULT);
    H5G_info_t info;
    H5Gget_info(g, &info);
    for (hsize_t i = 0; i < info.nlinks && rc == SX_OK; i++) {
        char name[512], elem[1100];
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                               H5P_DEFAULT) < 0)
            continue;
        snprintf(elem, sizeof elem, "%s/%s", key, name);
        if (h5x_objtype(g, name) != H5O_TYPE_DATASET) {
            char enc[64];
            h5x_attr_str(g, name, "encoding-type", enc, sizeof enc);
            SX_WARN("%s: element '%s' (%s) is not a dense array; skipped", c->path, elem,
                    enc[0] ? enc : "group");
            continue;
        }
        double *v = NULL;
        int64_t r = 0, k = 0;
        int f32 = 0;
        hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
        hid_t ft = H5Dget_type(ds);
        H5T_class_t cls = H5Tget_class(ft);
        H5Tclose(ft);
        H5Dclose(ds);
        if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
            SX_WARN("%s: element '%s' is not numeric; skipped", c->path, elem);
            continue;
        }
        rc = read_dense(c, g, name, elem, &v, &r, &k, &f32, st);
        if (rc == SX_OK) {
            if (r != want)
                rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s' has %lld rows but %s has %lld",
                                   c->path, elem, (long long)r, is_obs ? "obs" : "var",
                                   (long long)want);
            else
                rc = is_obs ? sx_dataset_set_obsm(d, name, v, r, k, f32, st)
                            : sx_dataset_set_varm(d, name, v, r, k, f32, st);
        }
        sx_free(v);
    }
    H5Gclose(g);
    return rc;
}

/* Read every CSR/CSC/dense child of `group` (layers: n_obs x n_vars; obsp: n_obs x n_obs). */
static int read_csr_dict(h5x_ctx *c, sx_dataset *d, const char *group, const char *skip,
                         int check_vals, sx_status *st)
{
    if (h5x_objtype(c->f, group) != H5O_TYPE_GROUP) return SX_OK;
    int is_obsp = strcmp(group, "obsp") == 0;
    hid_t g = H5Gopen2(c->f, group, H5P_DEFAULT);
    H5G_info_t info;
    H5Gget_info(g, &info);
    int rc = SX_OK;
    for (hsize_t i = 0; i < info.nlinks && rc == SX_OK; i++) {
        char name[512], path[600];
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                               H5P_DEFAULT) < 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", group, name);
        if (skip && strcmp(skip, path) == 0) continue;
        sx_csr *m = read_matrix(c, path, path, d->obs->n_rows,
                                is_obsp ? d->obs->n_rows : d->var->n_rows, "obs",
                                is_obsp ? "obs" : "var", check_vals, NULL, st);
        if (!m) rc = st->code;
        else if (is_obsp) rc = sx_dataset_set_obsp(d, name, m, st);
        else rc = sx_dataset_set_layer(d, name, m, st);
    }
    H5Gclose(g);
    return rc;
}

/* anndata < 0.7 kept the neighbour graphs in uns/neighbors/{connectivities,distances};
 * anndata moves them to obsp on reading, and so do we (when obsp does not have them). */
static int read_legacy_graphs(h5x_ctx *c, sx_dataset *d, int check_vals, sx_status *st)
{
    static const char *const names[] = {"connectivities", "distances"};
    for (int i = 0; i < 2; i++) {
        char path[64];
        snprintf(path, sizeof path, "uns/neighbors/%s", names[i]);
        if (sx_dataset_obsp(d, names[i]) || h5x_objtype(c->f, path) != H5O_TYPE_GROUP) continue;
        sx_csr *m = read_matrix(c, path, path, d->obs->n_rows, d->obs->n_rows, "obs", "obs",
                                check_vals, NULL, st);
        if (!m) return st->code;
        if (sx_dataset_set_obsp(d, names[i], m, st) != SX_OK) return st->code;
    }
    return SX_OK;
}

sx_dataset *sx_h5ad_read(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                         sx_status *st)
{
    h5x_ctx c;
    sx_dataset *d = NULL;
    sx_frame *raw_var = NULL;
    sx_status_clear(st);
    if (h5x_open(&c, path, prog, st) != SX_OK) goto fail;
    c.chunk_rows = opts ? opts->chunk_rows : 0;
    c.threads = opts ? opts->threads : 1;
    h5x_set_limits(&c, opts ? opts->limits : NULL);
    int check_vals = !(opts && opts->skip_values_check);
    const char *ul = opts && opts->use_layer && *opts->use_layer ? opts->use_layer : "X";
    int use_raw = strcmp(ul, "raw") == 0 || strcmp(ul, "raw/X") == 0;
    if (strcmp(ul, "X") != 0 && !use_raw && strncmp(ul, "layers/", 7) != 0) {
        sx_status_set(st, SX_EINVAL, "use_layer '%s' is not one of X, raw, raw/X, layers/NAME", ul);
        goto fail;
    }
    d = sx_calloc(1, sizeof *d);
    if (!d) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    if (!(d->uns = h5x_read_uns(&c, "uns", st))) goto fail;
    if (!(d->obs = h5x_read_frame(&c, "obs", "obs", d->uns, st))) goto fail;
    if (!(d->var = h5x_read_frame(&c, "var", "var", d->uns, st))) goto fail;
    const char *raw_x = c.layout == H5X_LEGACY06 && h5x_objtype(c.f, "raw.X") != H5O_TYPE_UNKNOWN
                            ? "raw.X" : "raw/X";
    const char *raw_v = strcmp(raw_x, "raw.X") == 0 ? "raw.var" : "raw/var";
    int has_raw = h5x_objtype(c.f, raw_x) != H5O_TYPE_UNKNOWN;
    if (has_raw) {
        if (!(raw_var = h5x_read_frame(&c, raw_v, "raw/var", d->uns, st))) goto fail;
    }
    /* X */
    const char *xpath = use_raw ? raw_x : ul;
    if (h5x_objtype(c.f, xpath) == H5O_TYPE_UNKNOWN) {
        if (strcmp(ul, "X") != 0) {
            sx_status_set(st, SX_ENOTFOUND, "%s: use_layer '%s': element '%s' does not exist", path,
                          ul, xpath);
            goto fail;
        }
    } else {
        sx_frame *xv = use_raw ? raw_var : d->var;
        d->X = read_matrix(&c, xpath, use_raw ? "raw/X" : ul, d->obs->n_rows, xv->n_rows, "obs",
                           use_raw ? "raw/var" : "var", check_vals, &d->x_was_int, st);
        if (!d->X) goto fail;
        if (use_raw) {
            /* raw replaces X and var: its genes are the columns now */
            sx_frame_free(d->var);
            d->var = raw_var;
            raw_var = NULL;
            has_raw = 0;
        }
    }
    if (has_raw) {
        d->raw_X = read_matrix(&c, raw_x, "raw/X", d->obs->n_rows, raw_var->n_rows, "obs",
                               "raw/var", check_vals, NULL, st);
        if (!d->raw_X) goto fail;
        d->raw_var = raw_var;
        raw_var = NULL;
    }
    if (read_mdict(&c, d, "obsm", 1, st) != SX_OK) goto fail;
    if (!use_raw && read_mdict(&c, d, "varm", 0, st) != SX_OK) goto fail;
    /* layers share X's genes; with raw as X they no longer fit and are left out */
    if (read_csr_dict(&c, d, "obsp", NULL, check_vals, st) != SX_OK) goto fail;
    if (read_legacy_graphs(&c, d, check_vals, st) != SX_OK) goto fail;
    if (!use_raw && read_csr_dict(&c, d, "layers", strcmp(ul, "X") ? ul : NULL, check_vals, st) != SX_OK)
        goto fail;
    if (sx_dataset_validate(d, path, st) != SX_OK) goto fail;
    h5x_close(&c);
    return d;
fail:
    sx_frame_free(raw_var);
    sx_dataset_free(d);
    h5x_close(&c);
    return NULL;
}
