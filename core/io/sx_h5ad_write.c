/* sx_h5ad_write — an sx_dataset as an .h5ad that anndata 0.8.0 and current anndata read
 * (FORMATS.md 1.5): encoding attributes on every element, h5py's boolean enum, vlen UTF-8
 * strings, deflate only. The file is built under a temporary name in the target directory
 * and renamed into place, so readers never see a half-written file under the real name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sx_alloc.h"
#include "sx_h5.h"
#include "sx_h5ad_writer.h"
#include "sx_io.h"
#include "sx_io_internal.h"
#include "sx_log.h"

typedef struct wctx {
    const char *path;  /* final name, for messages */
    int gzip;          /* deflate level, 0 = none */
    int rle;           /* deflate's run-length strategy (sx_write_opts.fast) */
    int threads;       /* threads deflating chunks */
    hid_t booltype;    /* h5py's bool: int8 enum FALSE=0 TRUE=1 */
    hid_t strtype;     /* vlen UTF-8 */
} wctx;

static int werr(const wctx *w, const char *elem, sx_status *st)
{
    return sx_status_set(st, SX_EIO, "%s: cannot write element '%s' (disk full or not writable?)",
                         w->path, elem);
}

static int set_attr_str(hid_t obj, const char *name, const char *val)
{
    return sx_h5_set_attr_string(obj, name, val, NULL) == SX_OK ? 0 : -1;
}

static int set_enc(hid_t obj, const char *type, const char *ver)
{
    return set_attr_str(obj, "encoding-type", type) | set_attr_str(obj, "encoding-version", ver);
}

static hid_t new_group(hid_t loc, const char *name, const char *type, const char *ver)
{
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return -1;
    if (type && set_enc(g, type, ver) < 0) {
        H5Gclose(g);
        return -1;
    }
    return g;
}

/* Dataset of rank 0 (scalar), 1 or 2, chunked and deflated when non-empty and gzip is on;
 * sets encoding attrs (enc may be NULL) and closes it. */
static int put(const wctx *w, hid_t loc, const char *name, hid_t ftype, hid_t mtype,
               const void *buf, int rank, int64_t d0, int64_t d1, const char *enc)
{
    hsize_t dims[2] = {(hsize_t)d0, (hsize_t)d1}, chunk[2] = {0, 0};
    hid_t sp = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int64_t total = rank == 0 ? 1 : d0 * (rank == 2 ? d1 : 1);
    if (rank > 0 && w->gzip > 0 && total > 0) {
        size_t es = H5Tis_variable_str(ftype) > 0 ? 16 : H5Tget_size(ftype);
        if (rank == 1) {
            int64_t c = (1 << 20) / (int64_t)es; /* ~1 MiB chunks */
            chunk[0] = (hsize_t)(d0 < c ? d0 : c);
        } else {
            int64_t rows = ((1 << 20) / (int64_t)es) / (d1 > 0 ? d1 : 1);
            if (rows < 1) rows = 1;
            chunk[0] = (hsize_t)(rows < d0 ? rows : d0);
            chunk[1] = (hsize_t)(d1 > 0 ? d1 : 1);
        }
        if (chunk[0] < 1) chunk[0] = 1;
        H5Pset_chunk(dcpl, rank, chunk);
        if (H5Tget_class(ftype) != H5T_STRING && es > 1) H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, (unsigned)w->gzip);
    }
    hid_t d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int ok = d >= 0;
    /* numbers: their chunks deflated on the writer's threads (strings live in HDF5's heap) */
    if (ok && total > 0 && chunk[0] > 0 && H5Tget_class(ftype) != H5T_STRING) {
        sx_h5_zchunk_opts zo = {.level = w->gzip, .rle = w->rle, .threads = w->threads};
        ok = sx_h5_zchunk_write(d, mtype, buf, rank, dims, chunk, 1, &zo) == 0;
    } else if (ok && total > 0) {
        ok = H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
    }
    if (ok && enc) ok = set_enc(d, enc, "0.2.0") == 0;
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return ok ? 0 : -1;
}

static int put_strings(const wctx *w, hid_t loc, const char *name, char *const *v, int64_t n,
                       const char *enc)
{
    const char **tmp = sx_calloc((size_t)(n ? n : 1), sizeof(char *));
    if (!tmp) return -1;
    for (int64_t i = 0; i < n; i++) tmp[i] = v[i] ? v[i] : "";
    int r = put(w, loc, name, w->strtype, w->strtype, tmp, 1, n, 0, enc);
    sx_free(tmp);
    return r;
}

static int put_bools(const wctx *w, hid_t loc, const char *name, const uint8_t *b, int64_t n)
{
    int8_t *t = sx_mallocarray((size_t)(n ? n : 1), 1);
    if (!t) return -1;
    for (int64_t i = 0; i < n; i++) t[i] = b[i] ? 1 : 0;
    int r = put(w, loc, name, w->booltype, w->booltype, t, 1, n, 0, "array");
    sx_free(t);
    return r;
}

static int set_attr_bool(const wctx *w, hid_t obj, const char *name, int v)
{
    int8_t b = v ? 1 : 0;
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, w->booltype, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, w->booltype, &b) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return ok ? 0 : -1;
}

/* column-order: vlen strings, or (no columns) the zero-length float64 array h5py writes. */
static int set_attr_strings(const wctx *w, hid_t obj, const char *name, const char *const *v,
                            int64_t n)
{
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t t = n > 0 ? w->strtype : H5T_IEEE_F64LE;
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0;
    if (ok && n > 0) ok = H5Awrite(a, t, v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return ok ? 0 : -1;
}

/* CSR matrix as a csr_matrix group. as_int: data written as int32 (integer counts). */
static int put_csr(const wctx *w, hid_t loc, const char *name, const sx_csr *m, int as_int)
{
    hid_t g = new_group(loc, name, "csr_matrix", "0.1.0");
    if (g < 0) return -1;
    int64_t nnz = sx_csr_nnz(m);
    int64_t shape[2] = {m->n_rows, m->n_cols};
    hsize_t two = 2;
    hid_t sp = H5Screate_simple(1, &two, NULL);
    hid_t a = H5Acreate2(g, "shape", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, shape) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    if (ok && as_int) {
        for (int64_t k = 0; k < nnz; k++)
            if (m->data[k] != floorf(m->data[k]) || fabsf(m->data[k]) > 2147483647.0f) {
                as_int = 0;
                break;
            }
    }
    ok = ok && put(w, g, "data", as_int ? H5T_STD_I32LE : H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, m->data,
                   1, nnz, 0, NULL) == 0;
    ok = ok && put(w, g, "indices", H5T_STD_I32LE, H5T_NATIVE_INT32, m->indices, 1, nnz, 0, NULL) == 0;
    /* int32 offsets while they fit, as scipy does: scipy (1.10) cannot row-subset a matrix
     * whose indptr is int64 but indices int32 ("Output dtype not compatible"), so adata[mask]
     * would fail on our files. HDF5 narrows the int64 offsets on write. */
    hid_t ptr_t = nnz <= INT32_MAX ? H5T_STD_I32LE : H5T_STD_I64LE;
    ok = ok && put(w, g, "indptr", ptr_t, H5T_NATIVE_INT64, m->indptr, 1, m->n_rows + 1, 0,
                   NULL) == 0;
    H5Gclose(g);
    return ok ? 0 : -1;
}

static int valid_key(const char *k)
{
    return k && *k && !strchr(k, '/') && strcmp(k, ".") != 0 && strcmp(k, "..") != 0;
}

static int put_categorical(const wctx *w, hid_t g, const char *name, const sx_column *c, int64_t n)
{
    hid_t cg = new_group(g, name, "categorical", "0.2.0");
    if (cg < 0) return -1;
    int ok = set_attr_bool(w, cg, "ordered", c->ordered) == 0;
    /* pandas' smallest signed code type */
    hid_t ct = c->n_categories < 128 ? H5T_STD_I8LE
               : c->n_categories < 32768 ? H5T_STD_I16LE : H5T_STD_I32LE;
    ok = ok && put(w, cg, "codes", ct, H5T_NATIVE_INT32, c->codes, 1, n, 0, "array") == 0;
    ok = ok && put_strings(w, cg, "categories", c->categories, c->n_categories, "string-array") == 0;
    H5Gclose(cg);
    return ok ? 0 : -1;
}

static int put_column(const wctx *w, hid_t g, const sx_column *c, int64_t n, sx_status *st)
{
    int ok = 1;
    switch (c->kind) {
    case SX_COL_STRING: {
        int missing = 0;
        for (int64_t i = 0; i < n && !missing; i++) missing = c->str[i] == NULL;
        if (!missing) {
            ok = put_strings(w, g, c->name, c->str, n, "string-array") == 0;
            break;
        }
        /* anndata has no nullable strings before 0.11: a categorical with code -1 */
        sx_frame *tmp = sx_frame_new(n, NULL, st);
        if (!tmp) return -1;
        ok = sx_frame_add_categorical_from_strings(tmp, c->name, (const char *const *)c->str, 1,
                                                   st) == SX_OK &&
             put_categorical(w, g, c->name, &tmp->cols[0], n) == 0;
        sx_frame_free(tmp);
        break;
    }
    case SX_COL_CATEGORICAL:
        ok = put_categorical(w, g, c->name, c, n) == 0;
        break;
    case SX_COL_INT:
    case SX_COL_BOOL:
        if (c->mask) {
            hid_t ng = new_group(g, c->name,
                                 c->kind == SX_COL_INT ? "nullable-integer" : "nullable-boolean",
                                 "0.1.0");
            ok = ng >= 0;
            if (ok && c->kind == SX_COL_INT)
                ok = put(w, ng, "values", H5T_STD_I64LE, H5T_NATIVE_INT64, c->i64, 1, n, 0, "array") == 0;
            else if (ok)
                ok = put_bools(w, ng, "values", c->b, n) == 0;
            ok = ok && put_bools(w, ng, "mask", c->mask, n) == 0;
            if (ng >= 0) H5Gclose(ng);
        } else if (c->kind == SX_COL_INT) {
            ok = put(w, g, c->name, H5T_STD_I64LE, H5T_NATIVE_INT64, c->i64, 1, n, 0, "array") == 0;
        } else {
            ok = put_bools(w, g, c->name, c->b, n) == 0;
        }
        break;
    case SX_COL_FLOAT:
        ok = put(w, g, c->name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, c->f64, 1, n, 0, "array") == 0;
        break;
    }
    return ok ? 0 : -1;
}

static int put_frame(const wctx *w, hid_t loc, const char *name, const sx_frame *f, sx_status *st)
{
    hid_t g = new_group(loc, name, "dataframe", "0.2.0");
    if (g < 0) return werr(w, name, st);
    const char *idx = f->index_name && valid_key(f->index_name) ? f->index_name : "_index";
    /* a column may not share the index dataset's name: fall back to "_index" */
    if (sx_frame_col(f, idx)) idx = "_index";
    const char **order = sx_calloc((size_t)f->n_cols + 1, sizeof(char *));
    int64_t no = 0;
    int rc = SX_OK;
    if (!order) {
        H5Gclose(g);
        return sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    for (int i = 0; i < f->n_cols; i++) {
        const char *cn = f->cols[i].name;
        if (!valid_key(cn) || strcmp(cn, "_index") == 0 || strcmp(cn, idx) == 0) {
            SX_WARN("%s: %s column '%s' has a name anndata cannot store; not written", w->path,
                    name, cn ? cn : "");
            continue;
        }
        order[no++] = cn;
    }
    if (set_attr_str(g, "_index", idx) < 0 || set_attr_strings(w, g, "column-order", order, no) < 0 ||
        put_strings(w, g, idx, f->index, f->n_rows, "string-array") < 0) {
        rc = werr(w, name, st);
        goto done;
    }
    for (int i = 0; i < f->n_cols; i++) {
        const sx_column *c = &f->cols[i];
        int listed = 0;
        for (int64_t k = 0; k < no && !listed; k++) listed = order[k] == c->name;
        if (!listed) continue;
        if (put_column(w, g, c, f->n_rows, st) < 0) {
            char e[600];
            snprintf(e, sizeof e, "%s/%s", name, c->name);
            if (!st || st->code == SX_OK) werr(w, e, st);
            else sx_status_prefix(st, "%s: %s: ", w->path, e);
            rc = st ? st->code : SX_EIO;
            goto done;
        }
    }
done:
    sx_free(order);
    H5Gclose(g);
    return rc;
}

static int put_uns(const wctx *w, hid_t loc, const sx_uns *u, const char *name, const char *upath,
                   sx_status *st)
{
    int ok = 1;
    int rank = u->dims[1] > 0 ? 2 : 1;
    int64_t d0 = rank == 2 ? u->dims[0] : u->n, d1 = rank == 2 ? u->dims[1] : 0;
    if (rank == 2 && d0 * d1 != u->n) {
        rank = 1;
        d0 = u->n;
        d1 = 0;
    }
    switch (u->kind) {
    case SX_UNS_DICT: {
        hid_t g = new_group(loc, name, "dict", "0.1.0");
        if (g < 0) return werr(w, upath, st);
        for (int i = 0; i < u->n_kids; i++) {
            const sx_uns *k = u->kids[i];
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", upath, k->key ? k->key : "");
            if (!valid_key(k->key)) {
                SX_WARN("%s: uns key '%s' cannot be stored in HDF5; not written", w->path, sub);
                continue;
            }
            if (put_uns(w, g, k, k->key, sub, st) != SX_OK) {
                H5Gclose(g);
                return st ? st->code : SX_EIO;
            }
        }
        H5Gclose(g);
        return SX_OK;
    }
    case SX_UNS_STRING: {
        const char *s = u->str ? u->str : "";
        ok = put(w, loc, name, w->strtype, w->strtype, &s, 0, 0, 0, "string") == 0;
        break;
    }
    case SX_UNS_INT:
        ok = put(w, loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &u->i, 0, 0, 0, "numeric-scalar") == 0;
        break;
    case SX_UNS_FLOAT:
        ok = put(w, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &u->f, 0, 0, 0, "numeric-scalar") == 0;
        break;
    case SX_UNS_BOOL: {
        int8_t b = u->i ? 1 : 0;
        ok = put(w, loc, name, w->booltype, w->booltype, &b, 0, 0, 0, "numeric-scalar") == 0;
        break;
    }
    case SX_UNS_ARR_INT:
        ok = put(w, loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, u->ai, rank, d0, d1, "array") == 0;
        break;
    case SX_UNS_ARR_FLOAT:
        ok = put(w, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, u->af, rank, d0, d1, "array") == 0;
        break;
    case SX_UNS_ARR_STRING:
        ok = put_strings(w, loc, name, u->as, u->n, "string-array") == 0;
        break;
    }
    return ok ? SX_OK : werr(w, upath, st);
}

static int put_dense_dict(const wctx *w, hid_t root, const char *name, const sx_dense *a, int n,
                          sx_status *st)
{
    hid_t g = new_group(root, name, "dict", "0.1.0");
    if (g < 0) return werr(w, name, st);
    int rc = SX_OK;
    for (int i = 0; i < n && rc == SX_OK; i++) {
        char e[600];
        snprintf(e, sizeof e, "%s/%s", name, a[i].name);
        if (!valid_key(a[i].name)) {
            SX_WARN("%s: '%s' cannot be stored in HDF5; not written", w->path, e);
            continue;
        }
        if (put(w, g, a[i].name, a[i].f32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                a[i].v, 2, a[i].n_rows, a[i].n_cols, "array") < 0)
            rc = werr(w, e, st);
    }
    H5Gclose(g);
    return rc;
}

/* A dict group of named CSR matrices (layers, obsp). */
static int put_csr_dict(const wctx *w, hid_t f, const char *group, const sx_layer *a, int n,
                        sx_status *st)
{
    hid_t g = new_group(f, group, "dict", "0.1.0");
    if (g < 0) return werr(w, group, st);
    for (int i = 0; i < n; i++) {
        if (!valid_key(a[i].name)) continue;
        if (put_csr(w, g, a[i].name, a[i].m, 0) < 0) {
            H5Gclose(g);
            char e[600];
            snprintf(e, sizeof e, "%s/%s", group, a[i].name);
            return werr(w, e, st);
        }
    }
    H5Gclose(g);
    return SX_OK;
}

/* Everything of d but X (x: write d->X too). */
static int write_all(const wctx *w, hid_t f, const sx_dataset *d, int x, sx_status *st)
{
    if (x && d->X && put_csr(w, f, "X", d->X, d->x_was_int) < 0) return werr(w, "X", st);
    if (put_frame(w, f, "obs", d->obs, st) != SX_OK) return st ? st->code : SX_EIO;
    if (put_frame(w, f, "var", d->var, st) != SX_OK) return st ? st->code : SX_EIO;
    if (put_dense_dict(w, f, "obsm", d->obsm, d->n_obsm, st) != SX_OK) return st->code;
    if (put_dense_dict(w, f, "varm", d->varm, d->n_varm, st) != SX_OK) return st->code;
    hid_t vp = new_group(f, "varp", "dict", "0.1.0");
    if (vp < 0) return werr(w, "varp", st);
    H5Gclose(vp);
    if (put_csr_dict(w, f, "obsp", d->obsp, d->n_obsp, st) != SX_OK) return st ? st->code : SX_EIO;
    if (put_csr_dict(w, f, "layers", d->layers, d->n_layers, st) != SX_OK)
        return st ? st->code : SX_EIO;
    if (d->raw_X && d->raw_var) {
        hid_t rg = new_group(f, "raw", "raw", "0.1.0");
        if (rg < 0) return werr(w, "raw", st);
        int ok = put_csr(w, rg, "X", d->raw_X, 0) == 0;
        if (ok && put_frame(w, rg, "var", d->raw_var, st) != SX_OK) {
            H5Gclose(rg);
            return st ? st->code : SX_EIO;
        }
        hid_t vm = ok ? new_group(rg, "varm", "dict", "0.1.0") : -1;
        if (vm >= 0) H5Gclose(vm);
        H5Gclose(rg);
        if (!ok || vm < 0) return werr(w, "raw", st);
    }
    static const sx_uns empty_uns = {.kind = SX_UNS_DICT};
    return put_uns(w, f, d->uns ? d->uns : &empty_uns, "uns", "uns", st);
}

/* A file being written (sx_h5ad_writer.h): the open temporary file and what went in. */
struct sx_h5ad_writer {
    wctx w;
    char *path;           /* final name (w.path points here) */
    char *tmp;            /* the temporary file's name; "" once renamed into place */
    hid_t f;
    int x_done;           /* X written by sx_h5ad_writer_put_x */
    int64_t x_rows, x_cols;
};

void sx_h5ad_writer_abort(sx_h5ad_writer *h)
{
    if (!h) return;
    if (h->f >= 0) H5Fclose(h->f);
    if (h->tmp && h->tmp[0]) unlink(h->tmp);
    sx_free(h->tmp);
    sx_free(h->path);
    if (h->w.booltype >= 0) H5Tclose(h->w.booltype);
    if (h->w.strtype >= 0) H5Tclose(h->w.strtype);
    sx_free(h);
}

int sx_h5ad_writer_open(const char *path, const sx_write_opts *opts, sx_h5ad_writer **out,
                        sx_status *st)
{
    *out = NULL;
    sx_h5_quiet();
    sx_h5ad_writer *h = sx_calloc(1, sizeof *h);
    size_t plen = strlen(path);
    if (!h || !(h->path = sx_strdup(path)) || !(h->tmp = sx_malloc(plen + 16))) {
        if (h) sx_free(h->path);
        sx_free(h);
        return sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    h->f = -1;
    wctx *w = &h->w;
    w->path = h->path;
    w->gzip = !opts ? 4 : (opts->gzip ? (opts->compress > 0 ? opts->compress : 4) : 0);
    if (w->gzip > 9) w->gzip = 9;
    w->rle = opts && opts->fast;
    w->threads = opts ? opts->threads : 1;
    w->booltype = H5Tenum_create(H5T_NATIVE_INT8);
    int8_t v0 = 0, v1 = 1;
    H5Tenum_insert(w->booltype, "FALSE", &v0);
    H5Tenum_insert(w->booltype, "TRUE", &v1);
    w->strtype = H5Tcopy(H5T_C_S1);
    H5Tset_size(w->strtype, H5T_VARIABLE);
    H5Tset_cset(w->strtype, H5T_CSET_UTF8);
    /* temp name in the same directory, so rename() is atomic */
    snprintf(h->tmp, plen + 16, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(h->tmp);
    if (fd < 0) {
        sx_status_set(st, SX_EIO, "%s: cannot create a temporary file next to it: %s", path,
                      strerror(errno));
        h->tmp[0] = '\0';
        sx_h5ad_writer_abort(h);
        return st->code;
    }
    fchmod(fd, 0644); /* mkstemp makes 0600; results are meant to be shared */
    close(fd);
    h->f = H5Fcreate(h->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (h->f < 0 || set_enc(h->f, "anndata", "0.1.0") < 0) {
        sx_status_set(st, SX_EIO, "%s: cannot create HDF5 file '%s'", path, h->tmp);
        sx_h5ad_writer_abort(h);
        return st->code;
    }
    *out = h;
    return SX_OK;
}

int sx_h5ad_writer_put_x(sx_h5ad_writer *h, const sx_csr *X, int as_int, sx_status *st)
{
    if (h->x_done)
        return sx_status_set(st, SX_EINVAL, "%s: X was written already", h->path);
    if (put_csr(&h->w, h->f, "X", X, as_int) < 0) return werr(&h->w, "X", st);
    h->x_done = 1;
    h->x_rows = X->n_rows;
    h->x_cols = X->n_cols;
    return SX_OK;
}

int sx_h5ad_writer_finish(sx_h5ad_writer *h, const sx_dataset *d, sx_status *st)
{
    int rc = SX_OK;
    if (!d || !d->obs || !d->var)
        rc = sx_status_set(st, SX_EINVAL, "%s: nothing to write (dataset without obs/var)",
                           h->path);
    else if (h->x_done && (d->X || h->x_rows != d->obs->n_rows || h->x_cols != d->var->n_rows))
        rc = sx_status_set(st, SX_EINVAL, "%s: the X written (%lld x %lld) is not the dataset's "
                           "(%lld cells x %lld genes%s)", h->path, (long long)h->x_rows,
                           (long long)h->x_cols, (long long)d->obs->n_rows,
                           (long long)d->var->n_rows, d->X ? ", and a second X" : "");
    else if (sx_dataset_validate(d, h->path, st) == SX_OK)
        rc = write_all(&h->w, h->f, d, !h->x_done, st);
    else
        rc = st->code;
    herr_t ce = H5Fclose(h->f);
    h->f = -1;
    if (rc == SX_OK && ce < 0)
        rc = sx_status_set(st, SX_EIO, "%s: closing failed (disk full?)", h->path);
    if (rc == SX_OK && rename(h->tmp, h->path) != 0)
        rc = sx_status_set(st, SX_EIO, "%s: cannot rename the temporary file into place: %s",
                           h->path, strerror(errno));
    if (rc == SX_OK) h->tmp[0] = '\0';
    sx_h5ad_writer_abort(h); /* frees; removes the temporary file unless it was renamed */
    return rc;
}

int sx_h5ad_write(const char *path, const sx_dataset *d, const sx_write_opts *opts,
                  sx_status *st)
{
    sx_status_clear(st);
    if (!d || !d->obs || !d->var)
        return sx_status_set(st, SX_EINVAL, "%s: nothing to write (dataset without obs/var)", path);
    if (sx_dataset_validate(d, path, st) != SX_OK) return st->code;
    sx_h5ad_writer *h;
    int rc = sx_h5ad_writer_open(path, opts, &h, st);
    return rc ? rc : sx_h5ad_writer_finish(h, d, st);
}
