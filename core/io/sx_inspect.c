#include "sx_inspect.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_h5.h"
#include "sx_h5x.h"
#include "sx_io_internal.h"

static void free_cols(sx_inspect_col *c, int n)
{
    for (int i = 0; c && i < n; i++) {
        sx_free(c[i].name);
        sx_h5_free_strings(c[i].categories, c[i].n_categories);
        sx_free(c[i].counts);
    }
    sx_free(c);
}

static void free_shapes(sx_inspect_shape *s, int n)
{
    for (int i = 0; s && i < n; i++) sx_free(s[i].name);
    sx_free(s);
}

void sx_inspect_free(sx_inspect *r)
{
    if (!r) return;
    free_cols(r->obs, r->n_obs_cols);
    free_cols(r->var, r->n_var_cols);
    free_shapes(r->obsm, r->n_obsm);
    free_shapes(r->layers, r->n_layers);
    sx_free(r);
}

static int summarise_frame(const sx_frame *f, sx_inspect_col **out, int *n, sx_status *st)
{
    *out = sx_calloc((size_t)f->n_cols + 1, sizeof(sx_inspect_col));
    if (!*out) return sx_status_set(st, SX_ENOMEM, "out of memory");
    *n = f->n_cols;
    for (int i = 0; i < f->n_cols; i++) {
        const sx_column *c = &f->cols[i];
        sx_inspect_col *o = &(*out)[i];
        if (!(o->name = sx_strdup(c->name))) return sx_status_set(st, SX_ENOMEM, "out of memory");
        switch (c->kind) {
        case SX_COL_STRING: o->type = "string"; break;
        case SX_COL_CATEGORICAL: o->type = "categorical"; break;
        case SX_COL_INT: o->type = c->mask ? "nullable-int" : "int"; break;
        case SX_COL_FLOAT: o->type = "float"; break;
        case SX_COL_BOOL: o->type = c->mask ? "nullable-bool" : "bool"; break;
        }
        if (c->kind != SX_COL_CATEGORICAL) continue;
        o->ordered = c->ordered;
        o->n_categories = c->n_categories;
        o->categories = sx_calloc((size_t)c->n_categories + 1, sizeof(char *));
        o->counts = sx_calloc((size_t)c->n_categories + 1, sizeof(int64_t));
        if (!o->categories || !o->counts) return sx_status_set(st, SX_ENOMEM, "out of memory");
        for (int32_t k = 0; k < c->n_categories; k++)
            if (!(o->categories[k] = sx_strdup(c->categories[k])))
                return sx_status_set(st, SX_ENOMEM, "out of memory");
        for (int64_t r = 0; r < f->n_rows; r++)
            if (c->codes[r] >= 0) o->counts[c->codes[r]]++;
    }
    return SX_OK;
}

static int add_shape(sx_inspect_shape **a, int *n, const char *name, int64_t r, int64_t c)
{
    sx_inspect_shape *na = sx_reallocarray(*a, (size_t)*n + 1, sizeof **a);
    if (!na) return -1;
    *a = na;
    na[*n].name = sx_strdup(name);
    na[*n].n_rows = r;
    na[*n].n_cols = c;
    if (!na[*n].name) return -1;
    (*n)++;
    return 0;
}

/* Shapes of the children of an obsm / layers group (or legacy compound obsm fields). */
static int h5_shapes(h5x_ctx *c, const char *key, sx_inspect_shape **a, int *n, int64_t nrows,
                     sx_status *st)
{
    H5O_type_t ot = h5x_objtype(c->f, key);
    if (ot == H5O_TYPE_DATASET) {
        hid_t d = H5Dopen2(c->f, key, H5P_DEFAULT);
        hid_t ft = H5Dget_type(d);
        int nm = H5Tget_class(ft) == H5T_COMPOUND ? H5Tget_nmembers(ft) : 0;
        for (int i = 0; i < nm; i++) {
            char *fn = H5Tget_member_name(ft, (unsigned)i);
            hid_t mt = H5Tget_member_type(ft, (unsigned)i);
            hsize_t ad[1] = {1};
            if (H5Tget_class(mt) == H5T_ARRAY && H5Tget_array_ndims(mt) == 1)
                H5Tget_array_dims2(mt, ad);
            int r = add_shape(a, n, fn, nrows, (int64_t)ad[0]);
            H5Tclose(mt);
            H5free_memory(fn);
            if (r < 0) break;
        }
        H5Tclose(ft);
        H5Dclose(d);
        return SX_OK;
    }
    if (ot != H5O_TYPE_GROUP) return SX_OK;
    hid_t g = H5Gopen2(c->f, key, H5P_DEFAULT);
    H5G_info_t info;
    H5Gget_info(g, &info);
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char name[512];
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                               H5P_DEFAULT) < 0)
            continue;
        int64_t r = -1, cc = -1;
        if (h5x_objtype(g, name) == H5O_TYPE_DATASET) {
            int nd;
            int64_t dims[8];
            hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
            h5x_npoints(d, &nd, dims);
            H5Dclose(d);
            r = dims[0];
            cc = nd >= 2 ? dims[1] : 1;
        } else {
            int64_t *shape = NULL, ns = 0;
            if (sx_h5_attr_i64(g, name, "shape", &shape, &ns, NULL) == SX_OK && ns == 2) {
                r = shape[0];
                cc = shape[1];
            } else if (sx_h5_attr_i64(g, name, "h5sparse_shape", &shape, &ns, NULL) == SX_OK &&
                       ns == 2) {
                r = shape[0];
                cc = shape[1];
            }
            sx_free(shape);
        }
        if (add_shape(a, n, name, r, cc) < 0) {
            H5Gclose(g);
            return sx_status_set(st, SX_ENOMEM, "out of memory");
        }
    }
    H5Gclose(g);
    return SX_OK;
}

/* Stream the matrix at xpath: nnz and sum, never holding more than one chunk. */
static int stream_x(h5x_ctx *c, const char *xpath, const char *elem, int64_t rows, int64_t cols,
                    const char *cols_from, sx_inspect *r, sx_status *st)
{
    h5x_mat m;
    if (h5x_mat_open(c, c->f, xpath, elem, &m, st) != SX_OK) return st->code;
    int rc = SX_OK;
    int32_t *ind = NULL;
    float *val = NULL;
    h5x_vstats vs = {0};
    vs.first_bad = -1;
    if (m.n_rows != rows || m.n_cols != cols) {
        rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s' is %lld x %lld (shape attribute) but "
                           "obs has %lld rows and %s %lld; the file is inconsistent", c->path, elem,
                           (long long)m.n_rows, (long long)m.n_cols, (long long)rows, cols_from,
                           (long long)cols);
        goto done;
    }
    int64_t step = h5x_mat_chunk_rows(c, &m);
    if (m.kind == H5X_CSR || m.kind == H5X_CSC) {
        /* stored entries in fixed slabs, whatever the rows: memory stays bounded even when a
         * few rows hold most entries. h5x_mat_open checked the offsets (monotone, ending at
         * nnz); here each index is checked against the other dimension. */
        int csr = m.kind == H5X_CSR;
        int64_t bound = csr ? m.n_cols : m.n_rows;
        int64_t cap = 4194304;
        ind = sx_mallocarray((size_t)cap, sizeof(int32_t));
        val = sx_mallocarray((size_t)cap, sizeof(float));
        if (!ind || !val) {
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
            goto done;
        }
        for (int64_t a = 0; a < m.nnz; a += cap) {
            int64_t b = a + cap < m.nnz ? a + cap : m.nnz;
            if (h5x_read_slab1(m.indices, H5T_NATIVE_INT32, a, b - a, ind) < 0 ||
                h5x_read_slab1(m.data, H5T_NATIVE_FLOAT, a, b - a, val) < 0) {
                rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s': cannot read entries "
                                   "%lld..%lld (truncated or corrupt file)", c->path, elem,
                                   (long long)a, (long long)b);
                goto done;
            }
            for (int64_t k = 0; k < b - a; k++)
                if (ind[k] < 0 || ind[k] >= bound) {
                    rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s': %s index %d at entry "
                                       "%lld is outside 0..%lld; the file is corrupt", c->path,
                                       elem, csr ? "column" : "row", ind[k], (long long)(a + k),
                                       (long long)bound - 1);
                    goto done;
                }
            h5x_vstats_add(&vs, val, b - a);
            sx_progress_report(c->prog, "inspect", (double)b / (double)m.nnz, NULL);
            if (sx_progress_cancelled(c->prog)) {
                rc = sx_status_set(st, SX_ECANCELED, "canceled");
                goto done;
            }
        }
        r->nnz = m.nnz;
    } else {
        size_t per = (size_t)(m.n_cols ? m.n_cols : 1);
        val = sx_mallocarray((size_t)step * per, sizeof(float));
        if (!val) {
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
            goto done;
        }
        int64_t nz = 0;
        for (int64_t r0 = 0; r0 < m.n_rows; r0 += step) {
            int64_t r1 = r0 + step < m.n_rows ? r0 + step : m.n_rows;
            if (h5x_read_rows2(m.data, H5T_NATIVE_FLOAT, r0, r1, m.n_cols, val) < 0) {
                rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s': cannot read rows %lld..%lld "
                                   "(truncated or corrupt file)", c->path, elem, (long long)r0,
                                   (long long)r1);
                goto done;
            }
            int64_t cnt = (r1 - r0) * m.n_cols;
            for (int64_t k = 0; k < cnt; k++) nz += val[k] != 0;
            h5x_vstats_add(&vs, val, cnt);
        }
        r->nnz = nz;
    }
    if (vs.n_nan + vs.n_inf > 0) {
        rc = sx_status_set(st, SX_EDATA, "%s: element '%s' holds %lld NaN and %lld infinite values",
                           c->path, elem, (long long)vs.n_nan, (long long)vs.n_inf);
        goto done;
    }
    r->x_sum = vs.sum;
    r->n_negative = vs.n_neg;
    r->has_x = 1;
done:
    sx_free(ind);
    sx_free(val);
    h5x_mat_close(&m);
    return rc;
}

sx_inspect *sx_inspect_h5ad(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                            sx_status *st)
{
    h5x_ctx c;
    sx_inspect *r = NULL;
    sx_uns *uns = NULL;
    sx_frame *obs = NULL, *var = NULL, *rvar = NULL;
    if (h5x_open(&c, path, prog, st) != SX_OK) goto fail;
    c.chunk_rows = opts ? opts->chunk_rows : 0;
    h5x_set_limits(&c, opts ? opts->limits : NULL); /* the same budget as the reader's */
    if (!(r = sx_calloc(1, sizeof *r))) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    r->format = SX_FMT_H5AD;
    if (c.layout == H5X_MODERN)
        h5x_attr_str(c.f, ".", "encoding-version", r->encoding_version, sizeof r->encoding_version);
    else
        snprintf(r->encoding_version, sizeof r->encoding_version, "legacy-0.%d", c.layout);
    if (!(uns = h5x_read_uns(&c, "uns", st))) goto fail;
    if (!(obs = h5x_read_frame(&c, "obs", "obs", uns, st))) goto fail;
    if (!(var = h5x_read_frame(&c, "var", "var", uns, st))) goto fail;
    r->n_obs = obs->n_rows;
    r->n_vars = var->n_rows;
    if (summarise_frame(obs, &r->obs, &r->n_obs_cols, st)) goto fail;
    if (summarise_frame(var, &r->var, &r->n_var_cols, st)) goto fail;
    const char *ul = opts && opts->use_layer && *opts->use_layer ? opts->use_layer : "X";
    const char *xpath = ul, *cols_from = "var";
    int64_t ncols = var->n_rows;
    if (strcmp(ul, "raw") == 0 || strcmp(ul, "raw/X") == 0) {
        int legacy = c.layout == H5X_LEGACY06 && h5x_objtype(c.f, "raw.X") != H5O_TYPE_UNKNOWN;
        xpath = legacy ? "raw.X" : "raw/X";
        if (!(rvar = h5x_read_frame(&c, legacy ? "raw.var" : "raw/var", "raw/var", uns, st)))
            goto fail;
        ncols = rvar->n_rows;
        r->n_vars = ncols;
        cols_from = "raw/var";
    }
    if (h5x_objtype(c.f, xpath) != H5O_TYPE_UNKNOWN) {
        if (stream_x(&c, xpath, strcmp(xpath, "raw.X") == 0 ? "raw/X" : xpath, obs->n_rows, ncols,
                     cols_from, r, st) != SX_OK)
            goto fail;
    } else if (strcmp(ul, "X") != 0) {
        sx_status_set(st, SX_ENOTFOUND, "%s: element '%s' does not exist", path, xpath);
        goto fail;
    }
    if (h5_shapes(&c, "obsm", &r->obsm, &r->n_obsm, obs->n_rows, st)) goto fail;
    if (h5_shapes(&c, "layers", &r->layers, &r->n_layers, obs->n_rows, st)) goto fail;
    sx_uns_free(uns);
    sx_frame_free(obs);
    sx_frame_free(var);
    sx_frame_free(rvar);
    h5x_close(&c);
    return r;
fail:
    sx_uns_free(uns);
    sx_frame_free(obs);
    sx_frame_free(var);
    sx_frame_free(rvar);
    sx_inspect_free(r);
    h5x_close(&c);
    return NULL;
}

/* Any format: read it whole with its reader and summarise the dataset. */
static sx_inspect *inspect_read(const sx_format_info *fi, const char *path,
                                const sx_read_opts *opts, const sx_progress *prog, sx_status *st)
{
    sx_dataset *d = fi->read(path, opts, prog, st);
    if (!d) return NULL;
    sx_inspect *r = sx_calloc(1, sizeof *r);
    if (!r) {
        sx_dataset_free(d);
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    r->format = fi->id;
    r->n_obs = d->obs->n_rows;
    r->n_vars = d->var->n_rows;
    if (d->X) {
        r->has_x = 1;
        r->nnz = sx_csr_nnz(d->X);
        r->x_sum = sx_csr_sum(d->X);
        for (int64_t k = 0; k < r->nnz; k++) r->n_negative += d->X->data[k] < 0;
    }
    int rc = summarise_frame(d->obs, &r->obs, &r->n_obs_cols, st);
    if (!rc) rc = summarise_frame(d->var, &r->var, &r->n_var_cols, st);
    for (int i = 0; !rc && i < d->n_obsm; i++)
        if (add_shape(&r->obsm, &r->n_obsm, d->obsm[i].name, d->obsm[i].n_rows, d->obsm[i].n_cols))
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < d->n_layers; i++)
        if (add_shape(&r->layers, &r->n_layers, d->layers[i].name, d->layers[i].m->n_rows,
                      d->layers[i].m->n_cols))
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
    sx_dataset_free(d);
    if (rc) {
        sx_inspect_free(r);
        return NULL;
    }
    return r;
}

/* The table's entry of the file's format, or NULL (st filled). */
static const sx_format_info *detect(const char *path, sx_status *st)
{
    sx_format fmt;
    sx_status_clear(st);
    if (sx_format_sniff(path, &fmt, NULL, st) != SX_OK) return NULL;
    const sx_format_info *fi = sx_format_get(fmt);
    if (!fi || !fi->read)
        sx_status_set(st, SX_EINTERNAL, "%s: format %s has no reader", path, sx_format_name(fmt));
    return fi && fi->read ? fi : NULL;
}

sx_inspect *sx_inspect_path(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                            sx_status *st)
{
    const sx_format_info *fi = detect(path, st);
    if (!fi) return NULL;
    if (fi->inspect) return fi->inspect(path, opts, prog, st);
    return inspect_read(fi, path, opts, prog, st);
}

sx_inspect *sx_inspect_stream(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                               sx_status *st)
{
    const sx_format_info *fi = detect(path, st);
    if (!fi) return NULL;
    if (fi->check) return fi->check(path, prog, st); /* 10x .h5: its default budget (no opts) */
    if (fi->inspect) return fi->inspect(path, opts, prog, st);
    return inspect_read(fi, path, opts, prog, st);
}

sx_inspect *sx_inspect_tenx_h5(const char *path, const sx_progress *prog, sx_status *st)
{
    sx_inspect *r = sx_calloc(1, sizeof *r);
    if (!r) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    r->format = SX_FMT_10X_H5;
    if (sx_tenx_h5_check(path, prog, &r->n_obs, &r->n_vars, &r->nnz, &r->x_sum, &r->n_negative,
                         st) != SX_OK) {
        sx_inspect_free(r);
        return NULL;
    }
    r->has_x = 1;
    return r; /* a 10x file's obs is its barcodes: no columns */
}
