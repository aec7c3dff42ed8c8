#include "sx_h5x.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sx_alloc.h"
#include "sx_h5.h"
#include "sx_log.h"

/* A declared dataset may be this many times larger than its bytes on disk (deflate tops
 * out near 1032:1) plus a slack for tiny files before we call it a lie. */
#define H5X_MAX_RATIO 1100.0
#define H5X_SLACK (64.0 * 1024 * 1024)

int h5x_open(h5x_ctx *c, const char *path, const sx_progress *prog, sx_status *st)
{
    memset(c, 0, sizeof *c);
    c->path = path;
    c->prog = prog;
    c->f = -1;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return sx_status_set(st, SX_EIO, "%s: cannot open: no such file or not readable", path);
    c->file_size = (int64_t)sb.st_size;
    sx_io_budget_init(&c->budget, NULL, c->file_size);
    c->f = sx_h5_open_ro(path, st);
    if (c->f < 0) return st ? st->code : SX_EFORMAT;
    char enc[64];
    h5x_attr_str(c->f, ".", "encoding-type", enc, sizeof enc);
    if (enc[0]) {
        c->layout = H5X_MODERN;
    } else if (h5x_objtype(c->f, "obs") == H5O_TYPE_DATASET ||
               h5x_objtype(c->f, "raw.X") != H5O_TYPE_UNKNOWN) {
        c->layout = H5X_LEGACY06;
    } else {
        c->layout = H5X_LEGACY07;
    }
    return SX_OK;
}

void h5x_set_limits(h5x_ctx *c, const sx_io_limits *lim)
{
    int64_t used = c->budget.used;
    sx_io_budget_init(&c->budget, lim, c->file_size);
    c->budget.used = used;
}

int h5x_check_rows(h5x_ctx *c, const char *elem, int64_t n, sx_status *st)
{
    int obs = strcmp(elem, "obs") == 0;
    char what[64];
    snprintf(what, sizeof what, "rows in %s (%s)", elem, obs ? "cells" : "genes");
    return sx_io_limit_check(&c->budget.lim, obs ? SX_LIM_CELLS : SX_LIM_GENES, n, c->path, what,
                             st);
}

void h5x_close(h5x_ctx *c)
{
    if (c->f >= 0) H5Fclose(c->f);
    c->f = -1;
}

void h5x_attr_str(hid_t loc, const char *path, const char *name, char *buf, size_t n)
{
    buf[0] = '\0';
    char *s = NULL;
    if (sx_h5_attr_string(loc, path, name, &s, NULL) == SX_OK && s) {
        snprintf(buf, n, "%s", s);
    }
    sx_free(s);
}

H5O_type_t h5x_objtype(hid_t loc, const char *path)
{
    if (strcmp(path, ".") != 0 && !sx_h5_exists(loc, path)) return H5O_TYPE_UNKNOWN;
    H5O_info_t info;
#if H5_VERSION_GE(1, 12, 0)
    if (H5Oget_info_by_name3(loc, path, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
        return H5O_TYPE_UNKNOWN;
#else
    if (H5Oget_info_by_name2(loc, path, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
        return H5O_TYPE_UNKNOWN;
#endif
    return info.type;
}

int h5x_attr_strings(hid_t loc, const char *path, const char *name, char ***out, int64_t *n,
                     sx_status *st)
{
    *out = NULL;
    *n = 0;
    if (H5Aexists_by_name(loc, path, name, H5P_DEFAULT) <= 0) return SX_ENOTFOUND;
    hid_t a = H5Aopen_by_name(loc, path, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return sx_status_set(st, SX_EFORMAT, "attribute '%s' of '%s' unreadable", name, path);
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
    hssize_t cnt = H5Sget_simple_extent_npoints(sp);
    int rc = SX_OK;
    char **res = NULL;
    if (cnt <= 0 || H5Sget_simple_extent_type(sp) == H5S_NULL) goto done; /* "no columns" */
    if (H5Tget_class(ft) != H5T_STRING) {
        rc = sx_status_set(st, SX_EFORMAT, "attribute '%s' of '%s' should hold strings", name, path);
        goto done;
    }
    res = sx_calloc((size_t)cnt, sizeof(char *));
    if (!res) {
        rc = sx_status_set(st, SX_ENOMEM, "attribute '%s': out of memory", name);
        goto done;
    }
    if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        char **tmp = sx_calloc((size_t)cnt, sizeof(char *));
        if (!tmp || H5Aread(a, mt, tmp) < 0) {
            rc = sx_status_set(st, SX_EFORMAT, "attribute '%s' of '%s': read failed", name, path);
        } else {
            for (hssize_t i = 0; i < cnt; i++) {
                res[i] = sx_strdup(tmp[i] ? tmp[i] : "");
                if (!res[i]) rc = sx_status_set(st, SX_ENOMEM, "out of memory");
                H5free_memory(tmp[i]);
            }
        }
        sx_free(tmp);
        H5Tclose(mt);
    } else {
        size_t sz = H5Tget_size(ft);
        H5T_str_t pad = H5Tget_strpad(ft);
        char *tmp = sx_malloc(sz * (size_t)cnt + 1);
        if (!tmp || H5Aread(a, ft, tmp) < 0) {
            rc = sx_status_set(st, SX_EFORMAT, "attribute '%s' of '%s': read failed", name, path);
        } else {
            for (hssize_t i = 0; i < cnt; i++) {
                const char *p = tmp + (size_t)i * sz;
                size_t len = strnlen(p, sz);
                if (pad == H5T_STR_SPACEPAD)
                    while (len > 0 && p[len - 1] == ' ') len--;
                res[i] = sx_strndup(p, len);
                if (!res[i]) rc = sx_status_set(st, SX_ENOMEM, "out of memory");
            }
        }
        sx_free(tmp);
    }
    if (rc == SX_OK) {
        *out = res;
        *n = cnt;
        res = NULL;
    }
done:
    if (res) sx_h5_free_strings(res, cnt);
    H5Sclose(sp);
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

/* Integer value of element buf[i] of native integer storage of size sz. */
static int64_t native_int(const void *buf, size_t sz, int sign, int64_t i)
{
    switch (sz) {
    case 1: return sign ? (int64_t)((const int8_t *)buf)[i] : (int64_t)((const uint8_t *)buf)[i];
    case 2: return sign ? (int64_t)((const int16_t *)buf)[i] : (int64_t)((const uint16_t *)buf)[i];
    case 4: return sign ? (int64_t)((const int32_t *)buf)[i] : (int64_t)((const uint32_t *)buf)[i];
    default: return ((const int64_t *)buf)[i];
    }
}

int h5x_attr_bool(hid_t loc, const char *path, const char *name, int def)
{
    if (H5Aexists_by_name(loc, path, name, H5P_DEFAULT) <= 0) return def;
    hid_t a = H5Aopen_by_name(loc, path, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return def;
    hid_t ft = H5Aget_type(a);
    int res = def;
    H5T_class_t cls = H5Tget_class(ft);
    if (cls == H5T_ENUM || cls == H5T_INTEGER) {
        /* h5py's bool is an int8 enum: read it with its own native type (HDF5 does not
         * convert enum to integer). */
        hid_t nt = H5Tget_native_type(ft, H5T_DIR_DEFAULT);
        size_t sz = H5Tget_size(nt);
        unsigned char b[8] = {0};
        if (sz <= 8 && H5Sget_simple_extent_npoints(H5Aget_space(a)) >= 1) {
            hid_t sp = H5Aget_space(a);
            if (H5Sget_simple_extent_npoints(sp) == 1 && H5Aread(a, nt, b) >= 0)
                res = native_int(b, sz, 1, 0) != 0;
            H5Sclose(sp);
        }
        H5Tclose(nt);
    } else if (cls == H5T_STRING) {
        char s[16];
        h5x_attr_str(loc, path, name, s, sizeof s);
        res = (strcmp(s, "True") == 0 || strcmp(s, "true") == 0 || strcmp(s, "1") == 0);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return res;
}

hid_t h5x_dopen(h5x_ctx *c, hid_t loc, const char *path, const char *elem, sx_status *st)
{
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
    if (d < 0) {
        sx_status_set(st, SX_EFORMAT, "%s: element '%s': dataset missing or unreadable", c->path,
                      elem);
        return -1;
    }
    if (sx_h5_check_filters(d, c->path, elem, 1, st) != SX_OK) {
        H5Dclose(d);
        return -1;
    }
    if (h5x_check_size(c, d, elem, st) != SX_OK) {
        H5Dclose(d);
        return -1;
    }
    return d;
}

int h5x_check_size(h5x_ctx *c, hid_t d, const char *elem, sx_status *st)
{
    hid_t pl = H5Dget_create_plist(d);
    /* Plausibility: the declared size must fit what the file can hold. */
    hid_t sp = H5Dget_space(d), ft = H5Dget_type(d);
    double declared = (double)H5Sget_simple_extent_npoints(sp) * (double)H5Tget_size(ft);
    double stored = (double)H5Dget_storage_size(d);
    H5D_layout_t lay = pl >= 0 ? H5Pget_layout(pl) : H5D_CONTIGUOUS;
    int bad = 0;
    if (lay == H5D_CONTIGUOUS && stored > (double)c->file_size) bad = 1;
    if (declared > stored * H5X_MAX_RATIO + H5X_SLACK) bad = 1;
    if (H5Tis_variable_str(ft) > 0 && declared > (double)c->file_size * H5X_MAX_RATIO + H5X_SLACK)
        bad = 1;
    if (bad)
        sx_status_set(st, SX_EFORMAT,
                      "%s: element '%s' claims %.0f entries (%.0f bytes) but the file stores "
                      "only %.0f bytes for it (file size %lld); the header is corrupt or the "
                      "file is truncated", c->path, elem,
                      (double)H5Sget_simple_extent_npoints(sp), declared, stored,
                      (long long)c->file_size);
    else if (sx_io_budget_add(&c->budget, declared, c->path, elem, st) != SX_OK)
        bad = 1;
    H5Tclose(ft);
    H5Sclose(sp);
    if (pl >= 0) H5Pclose(pl);
    return bad ? (st ? st->code : SX_EFORMAT) : SX_OK;
}

int64_t h5x_npoints(hid_t d, int *ndim, int64_t dims[8])
{
    hid_t sp = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(sp);
    hsize_t hd[8] = {0};
    if (nd >= 0 && nd <= 8) H5Sget_simple_extent_dims(sp, hd, NULL);
    if (ndim) *ndim = nd;
    if (dims)
        for (int i = 0; i < 8; i++) dims[i] = i < nd ? (int64_t)hd[i] : 0;
    int64_t n = (int64_t)H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    return n;
}

int h5x_read_slab1(hid_t d, hid_t mt, int64_t off, int64_t cnt, void *buf)
{
    if (cnt <= 0) return 0;
    hid_t fs = H5Dget_space(d);
    hsize_t o = (hsize_t)off, n = (hsize_t)cnt;
    herr_t e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &o, NULL, &n, NULL);
    hid_t ms = H5Screate_simple(1, &n, NULL);
    if (e >= 0) e = H5Dread(d, mt, ms, fs, H5P_DEFAULT, buf);
    H5Sclose(ms);
    H5Sclose(fs);
    return e < 0 ? -1 : 0;
}

int h5x_read_rows2(hid_t d, hid_t mt, int64_t r0, int64_t r1, int64_t ncol, void *buf)
{
    if (r1 <= r0 || ncol <= 0) return 0;
    hid_t fs = H5Dget_space(d);
    hsize_t o[2] = {(hsize_t)r0, 0}, n[2] = {(hsize_t)(r1 - r0), (hsize_t)ncol};
    herr_t e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, o, NULL, n, NULL);
    hid_t ms = H5Screate_simple(2, n, NULL);
    if (e >= 0) e = H5Dread(d, mt, ms, fs, H5P_DEFAULT, buf);
    H5Sclose(ms);
    H5Sclose(fs);
    return e < 0 ? -1 : 0;
}

/* Read the whole open dataset d as int64 (want_f64 = 0) or double (1), enums included. */
static int read_num(h5x_ctx *c, hid_t d, const char *elem, int want_f64, void **out, int64_t *n,
                    sx_status *st)
{
    *out = NULL;
    *n = 0;
    int64_t cnt = h5x_npoints(d, NULL, NULL);
    hid_t ft = H5Dget_type(d);
    H5T_class_t cls = H5Tget_class(ft);
    int rc = SX_OK;
    void *buf = NULL, *raw = NULL;
    hid_t nt = -1;
    if (cls != H5T_INTEGER && cls != H5T_FLOAT && cls != H5T_ENUM) {
        rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s' is not numeric", c->path, elem);
        goto fail;
    }
    /* widened to 8 bytes a value: 20M int8 codes in a small file are 160 MB here */
    if ((rc = sx_io_budget_add(&c->budget, (double)cnt * 8.0, c->path, elem, st)) != SX_OK)
        goto fail;
    buf = sx_mallocarray((size_t)(cnt > 0 ? cnt : 1), 8);
    if (!buf) {
        rc = sx_status_set(st, SX_ENOMEM, "%s: element '%s': cannot allocate %lld values", c->path,
                           elem, (long long)cnt);
        goto fail;
    }
    if (cnt > 0) {
        herr_t e;
        if (cls == H5T_ENUM) {
            nt = H5Tget_native_type(ft, H5T_DIR_DEFAULT);
            size_t sz = H5Tget_size(nt);
            hid_t base = H5Tget_super(ft);
            int sign = H5Tget_sign(base) == H5T_SGN_2;
            H5Tclose(base);
            raw = sz <= 8 ? sx_mallocarray((size_t)cnt, sz) : NULL;
            e = raw ? H5Dread(d, nt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) : -1;
            for (int64_t i = 0; e >= 0 && i < cnt; i++) {
                int64_t v = native_int(raw, sz, sign, i);
                if (want_f64) ((double *)buf)[i] = (double)v;
                else ((int64_t *)buf)[i] = v;
            }
        } else {
            e = H5Dread(d, want_f64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64, H5S_ALL, H5S_ALL,
                        H5P_DEFAULT, buf);
        }
        if (e < 0) {
            rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s': read failed (truncated or "
                               "corrupt file)", c->path, elem);
            goto fail;
        }
    }
    *out = buf;
    *n = cnt;
    buf = NULL;
fail:
    sx_free(raw);
    sx_free(buf);
    if (nt >= 0) H5Tclose(nt);
    H5Tclose(ft);
    return rc;
}

int h5x_read_i64(h5x_ctx *c, hid_t loc, const char *path, const char *elem, int64_t **out,
                 int64_t *n, sx_status *st)
{
    hid_t d = h5x_dopen(c, loc, path, elem, st);
    if (d < 0) return st->code;
    int rc = read_num(c, d, elem, 0, (void **)out, n, st);
    H5Dclose(d);
    return rc;
}

int h5x_read_f64(h5x_ctx *c, hid_t loc, const char *path, const char *elem, double **out,
                 int64_t *n, sx_status *st)
{
    hid_t d = h5x_dopen(c, loc, path, elem, st);
    if (d < 0) return st->code;
    int rc = read_num(c, d, elem, 1, (void **)out, n, st);
    H5Dclose(d);
    return rc;
}

/* Variable-length strings live in the global heap, outside the declared size, and several
 * entries may point at one long string (a bomb: 20M entries x one 1 MiB string). libhdf5
 * asks this allocator for each string's bytes before it copies the string, so the budget
 * is charged, and a read past it refused, before the memory exists. (Sizing first with
 * H5Dvlen_get_buf_size did the same check but ran one dataset read per element: 9 us a
 * string, most of the time of reading an h5ad with 300k cell names.) */
typedef struct {
    h5x_ctx *c;
    const char *elem;
    sx_status *st;
    int refused;
} vlen_budget;

static void *vlen_alloc(size_t n, void *info)
{
    vlen_budget *b = info;
    if (b->refused ||
        sx_io_budget_add(&b->c->budget, (double)n, b->c->path, b->elem, b->st) != SX_OK) {
        b->refused = 1;
        return NULL;
    }
    return sx_malloc(n ? n : 1);
}

static void vlen_free(void *p, void *info)
{
    (void)info;
    sx_free(p);
}

/* The whole variable-length string dataset d into out[n]: each string an sx_malloc'ed
 * allocation of the caller's (the allocator above made it; no second copy). */
static int read_vlen_strings(h5x_ctx *c, hid_t d, hid_t ft, int64_t n, const char *elem,
                             char ***out, sx_status *st)
{
    char **v = sx_calloc((size_t)(n ? n : 1), sizeof(char *));
    if (!v) return sx_status_set(st, SX_ENOMEM, "%s: element '%s': out of memory for %lld "
                                 "strings", c->path, elem, (long long)n);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(ft));
    hid_t dx = H5Pcreate(H5P_DATASET_XFER);
    vlen_budget b = {c, elem, st, 0};
    int rc = SX_OK;
    if (n > 0 && (dx < 0 || H5Pset_vlen_mem_manager(dx, vlen_alloc, &b, vlen_free, NULL) < 0 ||
                  H5Dread(d, mt, H5S_ALL, H5S_ALL, dx, v) < 0)) {
        rc = b.refused ? st->code
                       : sx_status_set(st, SX_EFORMAT, "%s: element '%s': cannot read strings "
                                       "(truncated or corrupt)", c->path, elem);
    }
    /* an empty string may come back as NULL: the caller gets "" (and on failure, whatever
     * was allocated before the refusal is freed) */
    for (int64_t i = 0; i < n; i++) {
        if (rc != SX_OK) {
            sx_free(v[i]);
            v[i] = NULL;
        } else if (!v[i] && !(v[i] = sx_strdup(""))) {
            rc = sx_status_set(st, SX_ENOMEM, "%s: element '%s': out of memory", c->path, elem);
        }
    }
    if (dx >= 0) H5Pclose(dx);
    H5Tclose(mt);
    if (rc != SX_OK) {
        sx_h5_free_strings(v, n);
        return rc;
    }
    *out = v;
    return SX_OK;
}

int h5x_read_strings(h5x_ctx *c, hid_t loc, const char *path, const char *elem, char ***out,
                     int64_t *n, sx_status *st)
{
    *out = NULL;
    *n = 0;
    hid_t d = h5x_dopen(c, loc, path, elem, st);
    if (d < 0) return st->code;
    /* Each string becomes a pointer and an allocation of its own: count that memory, so a
     * compressed column of 20M one-byte names is seen as the gigabyte it becomes. */
    hid_t ft = H5Dget_type(d);
    hid_t sp = H5Dget_space(d);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    int rc = sx_io_budget_add(&c->budget, (double)np * 40.0, c->path, elem, st);
    int vlen = H5Tget_class(ft) == H5T_STRING && H5Tis_variable_str(ft) > 0 && np >= 0;
    if (rc == SX_OK && vlen) {
        rc = read_vlen_strings(c, d, ft, (int64_t)np, elem, out, st);
        if (rc == SX_OK) *n = (int64_t)np;
    }
    H5Sclose(sp);
    H5Tclose(ft);
    H5Dclose(d);
    if (rc != SX_OK || vlen) return rc;
    rc = sx_h5_read_strings(loc, path, out, n, st);
    if (rc != SX_OK) sx_status_prefix(st, "%s: element '%s': ", c->path, elem);
    return rc;
}

/* ---------------------------------------------------------------- matrices */

void h5x_mat_close(h5x_mat *m)
{
    if (m->data > 0) H5Dclose(m->data);
    if (m->indices > 0) H5Dclose(m->indices);
    sx_free(m->ptr);
    m->data = m->indices = -1;
    m->ptr = NULL;
}

static int is_int_dtype(hid_t d)
{
    hid_t ft = H5Dget_type(d);
    int r = H5Tget_class(ft) == H5T_INTEGER || H5Tget_class(ft) == H5T_ENUM;
    H5Tclose(ft);
    return r;
}

int h5x_mat_open(h5x_ctx *c, hid_t loc, const char *path, const char *elem, h5x_mat *m,
                 sx_status *st)
{
    memset(m, 0, sizeof *m);
    m->data = m->indices = -1;
    snprintf(m->elem, sizeof m->elem, "%s", elem);
    H5O_type_t ot = h5x_objtype(loc, path);
    int rc = SX_OK;
    int64_t *shape = NULL;
    if (ot == H5O_TYPE_DATASET) {
        m->kind = H5X_DENSE;
        m->data = h5x_dopen(c, loc, path, elem, st);
        if (m->data < 0) return st->code;
        int nd;
        int64_t dims[8];
        h5x_npoints(m->data, &nd, dims);
        hid_t ft = H5Dget_type(m->data);
        H5T_class_t cls = H5Tget_class(ft);
        H5Tclose(ft);
        if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
            rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s': dense matrix is not numeric",
                               c->path, elem);
            goto fail;
        }
        if (nd != 2) {
            rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s': dense matrix has %d dimensions, "
                               "expected 2", c->path, elem, nd);
            goto fail;
        }
        m->n_rows = dims[0];
        m->n_cols = dims[1];
        m->data_int = cls == H5T_INTEGER;
        if ((rc = sx_io_limit_check(&c->budget.lim, SX_LIM_CELLS, m->n_rows, c->path,
                                    "rows (cells) in a dense matrix", st)) != SX_OK)
            goto fail;
        return SX_OK;
    }
    if (ot != H5O_TYPE_GROUP)
        return sx_status_set(st, SX_ENOTFOUND, "%s: element '%s' does not exist", c->path, elem);
    char enc[64], fmt[16];
    h5x_attr_str(loc, path, "encoding-type", enc, sizeof enc);
    h5x_attr_str(loc, path, "h5sparse_format", fmt, sizeof fmt);
    const char *shape_attr = "shape";
    if (strcmp(enc, "csr_matrix") == 0 || (!enc[0] && strcmp(fmt, "csr") == 0)) {
        m->kind = H5X_CSR;
    } else if (strcmp(enc, "csc_matrix") == 0 || (!enc[0] && strcmp(fmt, "csc") == 0)) {
        m->kind = H5X_CSC;
    } else {
        return sx_status_set(st, SX_EFORMAT, "%s: element '%s' has encoding '%s', not a matrix "
                             "(csr_matrix, csc_matrix or a dense array)", c->path, elem,
                             enc[0] ? enc : (fmt[0] ? fmt : "none"));
    }
    if (!enc[0]) shape_attr = "h5sparse_shape";
    int64_t ns = 0;
    if (sx_h5_attr_i64(loc, path, shape_attr, &shape, &ns, st) != SX_OK || ns != 2 ||
        shape[0] < 0 || shape[1] < 0) {
        rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s': attribute '%s' missing or not 2 "
                           "non-negative integers", c->path, elem, shape_attr);
        goto fail;
    }
    m->n_rows = shape[0];
    m->n_cols = shape[1];
    /* before indptr (8 bytes a row) is read; obsp is cells x cells, so columns may be cells */
    {
        const sx_io_limits *lim = &c->budget.lim;
        sx_io_limit_kind ck = lim->max_cells > lim->max_genes ? SX_LIM_CELLS : SX_LIM_GENES;
        char what[400];
        snprintf(what, sizeof what, "rows (cells) in '%s'", elem);
        if ((rc = sx_io_limit_check(lim, SX_LIM_CELLS, m->n_rows, c->path, what, st)) != SX_OK)
            goto fail;
        snprintf(what, sizeof what, "columns in '%s'", elem);
        if ((rc = sx_io_limit_check(lim, ck, m->n_cols, c->path, what, st)) != SX_OK) goto fail;
    }
    if (m->n_cols > INT32_MAX || m->n_rows > INT32_MAX * 64LL) {
        rc = sx_status_set(st, SX_ELIMIT, "%s: element '%s': shape %lld x %lld is beyond what "
                           "scalexd supports", c->path, elem, (long long)m->n_rows,
                           (long long)m->n_cols);
        goto fail;
    }
    char sub[1200];
    snprintf(sub, sizeof sub, "%s/%s", elem, "data");
    char p[1200];
    snprintf(p, sizeof p, "%s/data", path);
    if ((m->data = h5x_dopen(c, loc, p, sub, st)) < 0) { rc = st->code; goto fail; }
    snprintf(p, sizeof p, "%s/indices", path);
    snprintf(sub, sizeof sub, "%s/indices", elem);
    if ((m->indices = h5x_dopen(c, loc, p, sub, st)) < 0) { rc = st->code; goto fail; }
    int64_t nd_data = h5x_npoints(m->data, NULL, NULL);
    int64_t nd_ind = h5x_npoints(m->indices, NULL, NULL);
    if (nd_data != nd_ind) {
        rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s': data has %lld entries but indices "
                           "%lld; the file is corrupt", c->path, elem, (long long)nd_data,
                           (long long)nd_ind);
        goto fail;
    }
    m->nnz = nd_data;
    char nw[400];
    snprintf(nw, sizeof nw, "stored entries in '%s'", elem);
    if ((rc = sx_io_limit_check(&c->budget.lim, SX_LIM_NNZ, m->nnz, c->path, nw, st)) != SX_OK)
        goto fail;
    m->data_int = is_int_dtype(m->data);
    int64_t outer = m->kind == H5X_CSR ? m->n_rows : m->n_cols;
    int64_t inner = m->kind == H5X_CSR ? m->n_cols : m->n_rows;
    snprintf(p, sizeof p, "%s/indptr", path);
    snprintf(sub, sizeof sub, "%s/indptr", elem);
    hid_t dp = h5x_dopen(c, loc, p, sub, st);
    if (dp < 0) { rc = st->code; goto fail; }
    int64_t np = h5x_npoints(dp, NULL, NULL);
    if (np != outer + 1) {
        H5Dclose(dp);
        rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s': indptr has %lld entries but the "
                           "shape attribute (%lld x %lld) needs %lld; the shape attribute or the "
                           "matrix is wrong", c->path, elem, (long long)np, (long long)m->n_rows,
                           (long long)m->n_cols, (long long)outer + 1);
        goto fail;
    }
    int64_t nptr = 0;
    rc = read_num(c, dp, sub, 0, (void **)&m->ptr, &nptr, st);
    H5Dclose(dp);
    if (rc != SX_OK) goto fail;
    if (m->ptr[0] != 0) {
        rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s': indptr[0] is %lld, expected 0",
                           c->path, elem, (long long)m->ptr[0]);
        goto fail;
    }
    for (int64_t i = 0; i < outer; i++)
        if (m->ptr[i + 1] < m->ptr[i]) {
            rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s': indptr decreases at position "
                               "%lld (%lld -> %lld); the file is corrupt", c->path, elem,
                               (long long)i, (long long)m->ptr[i], (long long)m->ptr[i + 1]);
            goto fail;
        }
    if (m->ptr[outer] != m->nnz) {
        rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s': indptr ends at %lld but data holds "
                           "%lld entries; the file is corrupt", c->path, elem,
                           (long long)m->ptr[outer], (long long)m->nnz);
        goto fail;
    }
    if (m->nnz > 0 && inner == 0) {
        rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s' has entries but a zero dimension",
                           c->path, elem);
        goto fail;
    }
    sx_free(shape);
    return SX_OK;
fail:
    sx_free(shape);
    h5x_mat_close(m);
    return rc;
}

int64_t h5x_mat_chunk_rows(const h5x_ctx *c, const h5x_mat *m)
{
    if (c->chunk_rows > 0) return c->chunk_rows;
    /* ~4M values per chunk: 16-32 MiB of working memory whatever the shape. */
    double per_row = m->kind == H5X_DENSE ? (double)m->n_cols
                                          : (m->n_rows ? (double)m->nnz / (double)m->n_rows : 1);
    if (per_row < 1) per_row = 1;
    int64_t r = (int64_t)(4194304.0 / per_row);
    return r < 1 ? 1 : r;
}

/* Over ind[0..n): whether an index is outside 0..lim-1 (the return), and in *falls the
 * steps k where ind[k] <= ind[k - 1]. Written as fixed blocks of 16 lanes because GCC at
 * -O2 vectorises only loops whose trip count the vector width divides: the row-by-row
 * loops this replaced ran scalar, a tenth of the read's time (issue 15). Lane counters are
 * flushed before they could wrap. */
static int scan_indices(const int32_t *ind, int64_t n, uint32_t lim, int64_t *falls)
{
    enum { L = 16 };
    const uint32_t *u = (const uint32_t *)ind;
    uint32_t out[L] = {0}, fall[L] = {0};
    int64_t k = 1, total = 0, blocks = 0;
    uint32_t any = n > 0 && u[0] >= lim;
    for (; k + L <= n; k += L) {
        for (int j = 0; j < L; j++) {
            out[j] |= u[k + j] >= lim;
            fall[j] += ind[k + j] <= ind[k + j - 1];
        }
        if (++blocks == (1 << 24)) {
            for (int j = 0; j < L; j++) total += fall[j], fall[j] = 0;
            blocks = 0;
        }
    }
    for (; k < n; k++) {
        any |= u[k] >= lim;
        total += ind[k] <= ind[k - 1];
    }
    for (int j = 0; j < L; j++) {
        any |= out[j];
        total += fall[j];
    }
    *falls = total;
    return any != 0;
}

int h5x_mat_csr_rows(h5x_ctx *c, h5x_mat *m, int64_t r0, int64_t r1, int32_t *ind, float *val,
                     sx_status *st)
{
    int64_t a = m->ptr[r0], b = m->ptr[r1];
    if (b == a) return SX_OK;
    if (h5x_read_slab1_mt(m->indices, H5T_NATIVE_INT32, a, b - a, ind, c->threads) < 0 ||
        h5x_read_slab1_mt(m->data, H5T_NATIVE_FLOAT, a, b - a, val, c->threads) < 0)
        return sx_status_set(st, SX_EFORMAT, "%s: element '%s': cannot read entries %lld..%lld "
                             "(truncated or corrupt file)", c->path, m->elem, (long long)a,
                             (long long)b);
    /* One pass while the chunk is in cache, without branches (it vectorises): every index
     * in 0..n_cols-1 (a negative one is a huge unsigned one), and whether a row is not
     * strictly increasing (then the caller sorts). The bad entry is located only on failure. */
    int64_t n = b - a, falls = 0;
    int out = scan_indices(ind, n, (uint32_t)m->n_cols, &falls);
    /* falls counted every step down over the whole run; those from one row's last entry to
     * the next row's first are no disorder (one per nonempty row after the first entry) */
    for (int64_t r = r0; r < r1; r++)
        if (m->ptr[r] > a && m->ptr[r + 1] > m->ptr[r])
            falls -= ind[m->ptr[r] - a] <= ind[m->ptr[r] - a - 1];
    m->unsorted |= falls > 0;
    if (!out) return SX_OK;
    for (int64_t k = 0; k < n; k++)
        if (ind[k] < 0 || ind[k] >= m->n_cols) {
            int64_t row = r0;
            while (row < r1 && m->ptr[row + 1] <= a + k) row++;
            return sx_status_set(st, SX_EFORMAT, "%s: element '%s': column index %d in row %lld "
                                 "(entry %lld) is outside 0..%lld; the file is corrupt", c->path,
                                 m->elem, ind[k], (long long)row, (long long)(a + k),
                                 (long long)m->n_cols - 1);
        }
    return SX_OK;
}

/* The exact statistics of n values that hold a NaN or an infinity (rare: an error follows). */
static void vstats_slow(h5x_vstats *s, const float *v, int64_t n)
{
    double sum = 0;
    for (int64_t k = 0; k < n; k++) {
        float x = v[k];
        if (!isfinite(x)) {
            if (s->n_nan + s->n_inf == 0) s->first_bad = s->n + k;
            if (isnan(x)) s->n_nan++;
            else s->n_inf++;
            continue;
        }
        sum += x;
        if (x < 0) s->n_neg++;
        if (x != floorf(x)) s->n_nonint++;
    }
    s->sum += sum;
    s->n += n;
}

void h5x_vstats_count(h5x_vstats *s, const float *v, int64_t n)
{
    /* h5x_vstats_add's counts in blocks of 16 lanes (see scan_indices: so -O2 vectorises),
     * without its sum: a serial chain of double additions, 4 cycles a value. */
    enum { L = 16 };
    uint32_t bad[L] = {0}, neg[L] = {0}, nonint[L] = {0};
    int64_t k = 0, blocks = 0, nb = 0, nn = 0, ni = 0;
    for (; k + L <= n; k += L) {
        /* on the bits, so nothing is a float comparison GCC will not if-convert: finite is
         * an exponent below 255, negative a set sign over a nonzero magnitude, and a value
         * under 2^23 in magnitude (others are integers or not finite) is tested by the
         * int32 round trip */
        for (int j = 0; j < L; j++) {
            uint32_t u, ys;
            memcpy(&u, &v[k + j], sizeof u);
            uint32_t fin = (u & 0x7f800000u) != 0x7f800000u;
            uint32_t small = (u & 0x7fffffffu) < 0x4b000000u;
            ys = u & (0u - small);
            float y;
            memcpy(&y, &ys, sizeof y);
            bad[j] += !fin;
            neg[j] += fin & (u > 0x80000000u);
            nonint[j] += (float)(int32_t)y != y;
        }
        if (++blocks == (1 << 24)) {
            for (int j = 0; j < L; j++) {
                nb += bad[j], nn += neg[j], ni += nonint[j];
                bad[j] = neg[j] = nonint[j] = 0;
            }
            blocks = 0;
        }
    }
    for (int j = 0; j < L; j++) nb += bad[j], nn += neg[j], ni += nonint[j];
    for (; k < n; k++) {
        float x = v[k];
        uint32_t u;
        memcpy(&u, &x, sizeof u);
        int fin = (u & 0x7f800000u) != 0x7f800000u;
        float y = fabsf(x) < 8388608.0f ? x : 0.0f;
        nb += !fin;
        nn += fin & (x < 0);
        ni += (float)(int32_t)y != y;
    }
    if (nb) {
        double sum = s->sum;
        vstats_slow(s, v, n);
        s->sum = sum;
        return;
    }
    s->n_neg += nn;
    s->n_nonint += ni;
    s->n += n;
}

void h5x_vstats_add(h5x_vstats *s, const float *v, int64_t n)
{
    /* Branch-free counts: floorf was a libm call per value and the branches mispredicted
     * on real counts; this pass costs about a memory read. Beyond 2^23 every float is an
     * integer, and below it the int32 round trip tells. */
    int64_t bad = 0, neg = 0, nonint = 0;
    double sum = 0;
    for (int64_t k = 0; k < n; k++) {
        float x = v[k];
        uint32_t u;
        memcpy(&u, &x, sizeof u);
        int fin = (u & 0x7f800000u) != 0x7f800000u;
        float y = fabsf(x) < 8388608.0f ? x : 0.0f; /* NaN compares false: 0 */
        bad += !fin;
        neg += fin & (x < 0);
        nonint += (float)(int32_t)y != y;
        sum += fin ? x : 0.0f;
    }
    if (bad) {
        vstats_slow(s, v, n);
        return;
    }
    s->n_neg += neg;
    s->n_nonint += nonint;
    s->sum += sum;
    s->n += n;
}

/* ---------------------------------------------------------------- uns helpers */

void h5x_uns_remove(sx_uns *dict, const char *key)
{
    if (!dict || dict->kind != SX_UNS_DICT) return;
    for (int i = 0; i < dict->n_kids; i++) {
        if (strcmp(dict->kids[i]->key, key) != 0) continue;
        sx_uns_free(dict->kids[i]);
        memmove(&dict->kids[i], &dict->kids[i + 1], (size_t)(dict->n_kids - i - 1) * sizeof(sx_uns *));
        dict->n_kids--;
        return;
    }
}

/* ---------------------------------------------------------------- dataframes */

/* Python's str() of a number, close enough for category labels: integers plain, floats the
 * shortest round-tripping form with ".0" for whole values. */
static char *num_label(double v, int is_int)
{
    char b[64];
    if (is_int) {
        snprintf(b, sizeof b, "%lld", (long long)v);
        return sx_strdup(b);
    }
    if (isnan(v)) return sx_strdup("nan");
    for (int p = 1; p <= 17; p++) {
        snprintf(b, sizeof b, "%.*g", p, v);
        if (strtod(b, NULL) == v) break;
    }
    if (!strpbrk(b, ".eEn")) strncat(b, ".0", sizeof b - strlen(b) - 1);
    return sx_strdup(b);
}

/* Categories dataset (strings, or numbers turned into their text). */
static int read_categories(h5x_ctx *c, hid_t loc, const char *path, const char *elem,
                           char ***out, int64_t *n, sx_status *st)
{
    hid_t d = h5x_dopen(c, loc, path, elem, st);
    if (d < 0) return st->code;
    hid_t ft = H5Dget_type(d);
    H5T_class_t cls = H5Tget_class(ft);
    H5Tclose(ft);
    if (cls == H5T_STRING) {
        H5Dclose(d);
        return h5x_read_strings(c, loc, path, elem, out, n, st);
    }
    double *v = NULL;
    int rc = read_num(c, d, elem, 1, (void **)&v, n, st);
    H5Dclose(d);
    if (rc != SX_OK) return rc;
    char **s = sx_calloc((size_t)(*n ? *n : 1), sizeof(char *));
    if (!s) {
        sx_free(v);
        return sx_status_set(st, SX_ENOMEM, "%s: out of memory", elem);
    }
    for (int64_t i = 0; i < *n; i++)
        if (!(s[i] = num_label(v[i], cls != H5T_FLOAT))) {
            sx_h5_free_strings(s, *n);
            sx_free(v);
            return sx_status_set(st, SX_ENOMEM, "%s: out of memory", elem);
        }
    sx_free(v);
    *out = s;
    return SX_OK;
}

static int len_error(h5x_ctx *c, const char *elem, int64_t got, int64_t want, sx_status *st)
{
    return sx_status_set(st, SX_EFORMAT, "%s: element '%s' has %lld values but its table has "
                         "%lld rows; the file is corrupt", c->path, elem, (long long)got,
                         (long long)want);
}

static int add_categorical(h5x_ctx *c, sx_frame *f, const char *name, const char *elem,
                           const int64_t *codes64, char **cats, int64_t ncat, int ordered,
                           sx_status *st)
{
    int64_t n = f->n_rows;
    if (ncat > INT32_MAX) return sx_status_set(st, SX_ELIMIT, "%s: '%s': too many categories",
                                               c->path, elem);
    int32_t *codes = sx_mallocarray((size_t)(n ? n : 1), sizeof(int32_t));
    if (!codes) return sx_status_set(st, SX_ENOMEM, "%s: '%s': out of memory", c->path, elem);
    for (int64_t i = 0; i < n; i++) {
        if (codes64[i] < -1 || codes64[i] >= ncat) {
            sx_free(codes);
            return sx_status_set(st, SX_EFORMAT, "%s: element '%s': category code %lld at row %lld "
                                 "is outside -1..%lld; the file is corrupt", c->path, elem,
                                 (long long)codes64[i], (long long)i, (long long)ncat - 1);
        }
        codes[i] = (int32_t)codes64[i];
    }
    int rc = sx_frame_add_categorical(f, name, codes, (const char *const *)cats, (int32_t)ncat,
                                      ordered, st);
    sx_free(codes);
    return rc;
}

/* One column of a dataframe group (any encoding anndata 0.7 .. today writes). */
static int read_column(h5x_ctx *c, hid_t g, const char *name, sx_frame *f, const char *felem,
                       sx_status *st)
{
    char elem[700], p[700], e2[800];
    snprintf(elem, sizeof elem, "%s/%s", felem, name);
    int64_t n = f->n_rows, m = 0, m2 = 0;
    int64_t *iv = NULL, *mask = NULL;
    double *fv = NULL;
    char **sv = NULL, **cats = NULL;
    int64_t ncat = 0;
    int rc = SX_OK;
    H5O_type_t ot = h5x_objtype(g, name);
    if (ot == H5O_TYPE_GROUP) {
        char enc[64];
        h5x_attr_str(g, name, "encoding-type", enc, sizeof enc);
        if (strcmp(enc, "categorical") == 0) {
            snprintf(p, sizeof p, "%s/codes", name);
            snprintf(e2, sizeof e2, "%s/codes", elem);
            if ((rc = h5x_read_i64(c, g, p, e2, &iv, &m, st))) goto done;
            if (m != n) { rc = len_error(c, e2, m, n, st); goto done; }
            snprintf(p, sizeof p, "%s/categories", name);
            snprintf(e2, sizeof e2, "%s/categories", elem);
            if ((rc = read_categories(c, g, p, e2, &cats, &ncat, st))) goto done;
            rc = add_categorical(c, f, name, elem, iv, cats, ncat, h5x_attr_bool(g, name, "ordered", 0),
                                 st);
        } else if (strcmp(enc, "nullable-integer") == 0 || strcmp(enc, "nullable-boolean") == 0) {
            snprintf(p, sizeof p, "%s/values", name);
            snprintf(e2, sizeof e2, "%s/values", elem);
            if ((rc = h5x_read_i64(c, g, p, e2, &iv, &m, st))) goto done;
            if (m != n) { rc = len_error(c, e2, m, n, st); goto done; }
            snprintf(p, sizeof p, "%s/mask", name);
            snprintf(e2, sizeof e2, "%s/mask", elem);
            if ((rc = h5x_read_i64(c, g, p, e2, &mask, &m2, st))) goto done;
            if (m2 != n) { rc = len_error(c, e2, m2, n, st); goto done; }
            if (enc[9] == 'b') {
                uint8_t *b = sx_mallocarray((size_t)(n ? n : 1), 1);
                if (!b) { rc = sx_status_set(st, SX_ENOMEM, "out of memory"); goto done; }
                for (int64_t i = 0; i < n; i++) b[i] = iv[i] != 0;
                rc = sx_frame_add_bool(f, name, b, st);
                sx_free(b);
            } else {
                rc = sx_frame_add_int(f, name, iv, st);
            }
            if (rc == SX_OK) {
                sx_column *col = sx_frame_col(f, name);
                uint8_t *mk = sx_mallocarray((size_t)(n ? n : 1), 1);
                if (!mk) { rc = sx_status_set(st, SX_ENOMEM, "out of memory"); goto done; }
                for (int64_t i = 0; i < n; i++) mk[i] = mask[i] != 0;
                col->mask = mk;
            }
        } else {
            rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s' has encoding '%s', which is not a "
                               "column type scalexd reads (categorical, nullable-integer, "
                               "nullable-boolean, array, string-array)", c->path, elem,
                               enc[0] ? enc : "none");
        }
        goto done;
    }
    if (ot != H5O_TYPE_DATASET) {
        rc = sx_status_set(st, SX_EFORMAT, "%s: column '%s' is listed in column-order but missing",
                           c->path, elem);
        goto done;
    }
    hid_t d = h5x_dopen(c, g, name, elem, st);
    if (d < 0) { rc = st->code; goto done; }
    int nd;
    int64_t dims[8];
    int64_t cnt = h5x_npoints(d, &nd, dims);
    hid_t ft = H5Dget_type(d);
    H5T_class_t cls = H5Tget_class(ft);
    H5Tclose(ft);
    int has_ref = H5Aexists(d, "categories") > 0;
    H5Dclose(d);
    if (nd != 1 || cnt != n) { rc = len_error(c, elem, cnt, n, st); goto done; }
    if (cls == H5T_STRING) {
        if ((rc = h5x_read_strings(c, g, name, elem, &sv, &m, st))) goto done;
        rc = sx_frame_add_strings(f, name, (const char *const *)sv, st);
    } else if (cls == H5T_ENUM) {
        if ((rc = h5x_read_i64(c, g, name, elem, &iv, &m, st))) goto done;
        uint8_t *b = sx_mallocarray((size_t)(n ? n : 1), 1);
        if (!b) { rc = sx_status_set(st, SX_ENOMEM, "out of memory"); goto done; }
        for (int64_t i = 0; i < n; i++) b[i] = iv[i] != 0;
        rc = sx_frame_add_bool(f, name, b, st);
        sx_free(b);
    } else if (cls == H5T_INTEGER && has_ref) {
        /* anndata 0.7: codes with an object reference to __categories/<name>. */
        if ((rc = h5x_read_i64(c, g, name, elem, &iv, &m, st))) goto done;
        hid_t dd = H5Dopen2(g, name, H5P_DEFAULT);
        hid_t a = H5Aopen(dd, "categories", H5P_DEFAULT);
        hobj_ref_t ref;
        hid_t cd = -1;
        if (a >= 0 && H5Aread(a, H5T_STD_REF_OBJ, &ref) >= 0)
            cd = H5Rdereference2(dd, H5P_DEFAULT, H5R_OBJECT, &ref);
        char cpath[1024] = "";
        if (cd >= 0) H5Iget_name(cd, cpath, sizeof cpath);
        if (a >= 0) H5Aclose(a);
        if (cd >= 0) H5Oclose(cd);
        H5Dclose(dd);
        if (!cpath[0]) {
            rc = sx_status_set(st, SX_EFORMAT, "%s: element '%s': its 'categories' reference does "
                               "not resolve; the file is corrupt", c->path, elem);
            goto done;
        }
        snprintf(e2, sizeof e2, "%s (categories)", elem);
        if ((rc = read_categories(c, c->f, cpath, e2, &cats, &ncat, st))) goto done;
        rc = add_categorical(c, f, name, elem, iv, cats, ncat, h5x_attr_bool(c->f, cpath, "ordered", 0),
                             st);
    } else if (cls == H5T_INTEGER) {
        if ((rc = h5x_read_i64(c, g, name, elem, &iv, &m, st))) goto done;
        rc = sx_frame_add_int(f, name, iv, st);
    } else if (cls == H5T_FLOAT) {
        if ((rc = h5x_read_f64(c, g, name, elem, &fv, &m, st))) goto done;
        rc = sx_frame_add_float(f, name, fv, st);
    } else {
        rc = sx_status_set(st, SX_EFORMAT, "%s: column '%s' has an HDF5 type scalexd does not read",
                           c->path, elem);
    }
done:
    sx_free(iv);
    sx_free(mask);
    sx_free(fv);
    sx_h5_free_strings(sv, m);
    sx_h5_free_strings(cats, ncat);
    return rc;
}

/* Read one field of a compound dataset with memory type mt (of size msz per record). */
static int read_field(hid_t d, const char *field, hid_t mt, size_t msz, void *buf)
{
    hid_t comp = H5Tcreate(H5T_COMPOUND, msz);
    herr_t e = H5Tinsert(comp, field, 0, mt);
    if (e >= 0) e = H5Dread(d, comp, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Tclose(comp);
    return e < 0 ? -1 : 0;
}

/* Strings of a compound field (fixed or vlen); NULL on failure. */
static char **field_strings(hid_t d, const char *field, hid_t mtype, int64_t n)
{
    char **res = sx_calloc((size_t)(n ? n : 1), sizeof(char *));
    if (!res) return NULL;
    int ok = 1;
    if (H5Tis_variable_str(mtype) > 0) {
        hid_t vt = H5Tcopy(H5T_C_S1);
        H5Tset_size(vt, H5T_VARIABLE);
        char **tmp = sx_calloc((size_t)(n ? n : 1), sizeof(char *));
        ok = tmp && read_field(d, field, vt, sizeof(char *), tmp) == 0;
        for (int64_t i = 0; ok && i < n; i++) ok = (res[i] = sx_strdup(tmp[i] ? tmp[i] : "")) != NULL;
        if (tmp)
            for (int64_t i = 0; i < n; i++) H5free_memory(tmp[i]);
        sx_free(tmp);
        H5Tclose(vt);
    } else {
        size_t sz = H5Tget_size(mtype);
        hid_t ct = H5Tcopy(mtype);
        char *tmp = sx_mallocarray((size_t)(n ? n : 1), sz);
        ok = tmp && read_field(d, field, ct, sz, tmp) == 0;
        for (int64_t i = 0; ok && i < n; i++) {
            const char *p = tmp + (size_t)i * sz;
            size_t len = strnlen(p, sz);
            while (len > 0 && p[len - 1] == ' ' && H5Tget_strpad(mtype) == H5T_STR_SPACEPAD) len--;
            ok = (res[i] = sx_strndup(p, len)) != NULL;
        }
        sx_free(tmp);
        H5Tclose(ct);
    }
    if (!ok) {
        sx_h5_free_strings(res, n);
        return NULL;
    }
    return res;
}

/* Numeric compound field as int64 (integer/enum) or double (float). */
static int field_num(hid_t d, const char *field, hid_t mtype, int64_t n, int want_f64, void *out)
{
    H5T_class_t cls = H5Tget_class(mtype);
    if (cls == H5T_ENUM) {
        hid_t nt = H5Tget_native_type(mtype, H5T_DIR_DEFAULT);
        size_t sz = H5Tget_size(nt);
        hid_t base = H5Tget_super(mtype);
        int sign = H5Tget_sign(base) == H5T_SGN_2;
        H5Tclose(base);
        void *raw = sz <= 8 ? sx_mallocarray((size_t)(n ? n : 1), sz) : NULL;
        int r = raw ? read_field(d, field, nt, sz, raw) : -1;
        for (int64_t i = 0; r == 0 && i < n; i++) {
            int64_t v = native_int(raw, sz, sign, i);
            if (want_f64) ((double *)out)[i] = (double)v;
            else ((int64_t *)out)[i] = v;
        }
        sx_free(raw);
        H5Tclose(nt);
        return r;
    }
    return read_field(d, field, want_f64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64, 8, out);
}

/* uns/<col>_categories of the oldest layout as strings (NULL when absent/unusable). */
static char **legacy_cats(sx_uns *uns, const char *col, int64_t *ncat)
{
    char key[600];
    snprintf(key, sizeof key, "%s_categories", col);
    sx_uns *u = sx_uns_get(uns, key);
    if (!u) return NULL;
    char **s = NULL;
    if (u->kind == SX_UNS_ARR_STRING) {
        s = sx_calloc((size_t)(u->n ? u->n : 1), sizeof(char *));
        for (int64_t i = 0; s && i < u->n; i++) s[i] = sx_strdup(u->as[i]);
    } else if (u->kind == SX_UNS_ARR_INT || u->kind == SX_UNS_ARR_FLOAT) {
        s = sx_calloc((size_t)(u->n ? u->n : 1), sizeof(char *));
        for (int64_t i = 0; s && i < u->n; i++)
            s[i] = u->kind == SX_UNS_ARR_INT ? num_label((double)u->ai[i], 1) : num_label(u->af[i], 0);
    } else if (u->kind == SX_UNS_STRING) {
        s = sx_calloc(1, sizeof(char *));
        if (s) s[0] = sx_strdup(u->str);
        *ncat = 1;
        return s;
    }
    *ncat = s ? u->n : 0;
    return s;
}

/* anndata < 0.7: obs/var as one compound dataset, first field = index. */
static sx_frame *read_compound_frame(h5x_ctx *c, const char *path, const char *elem, sx_uns *uns,
                                     sx_status *st)
{
    sx_frame *f = NULL;
    hid_t d = h5x_dopen(c, c->f, path, elem, st);
    if (d < 0) return NULL;
    hid_t ft = H5Dget_type(d);
    int64_t n = h5x_npoints(d, NULL, NULL);
    int nm = H5Tget_class(ft) == H5T_COMPOUND ? H5Tget_nmembers(ft) : 0;
    void *buf = NULL;
    char **sv = NULL;
    int ok = 1;
    if (h5x_check_rows(c, elem, n, st) != SX_OK) goto fail;
    if (nm < 1) {
        sx_status_set(st, SX_EFORMAT, "%s: element '%s' is a dataset but not a compound table "
                      "(anndata < 0.7 layout expected)", c->path, elem);
        goto fail;
    }
    buf = sx_mallocarray((size_t)(n ? n : 1), 8);
    if (!buf) {
        sx_status_set(st, SX_ENOMEM, "%s: '%s': out of memory", c->path, elem);
        goto fail;
    }
    for (int i = 0; i < nm; i++) {
        char *fname = H5Tget_member_name(ft, (unsigned)i);
        hid_t mtp = H5Tget_member_type(ft, (unsigned)i);
        H5T_class_t cls = H5Tget_class(mtp);
        char ce[700];
        snprintf(ce, sizeof ce, "%s/%s", elem, fname);
        int rc = SX_OK;
        if (i == 0) {
            /* the index */
            if (cls == H5T_STRING) {
                sv = field_strings(d, fname, mtp, n);
            } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
                sv = sx_calloc((size_t)(n ? n : 1), sizeof(char *));
                if (sv && field_num(d, fname, mtp, n, 1, buf) == 0)
                    for (int64_t r = 0; r < n; r++)
                        sv[r] = num_label(((double *)buf)[r], cls == H5T_INTEGER);
            }
            if (!sv) rc = sx_status_set(st, SX_EFORMAT, "%s: cannot read the index field '%s'",
                                        c->path, ce);
            else if (!(f = sx_frame_new(n, (const char *const *)sv, st))) rc = st->code;
            else {
                sx_free(f->index_name);
                f->index_name = sx_strdup(fname);
            }
            sx_h5_free_strings(sv, n);
            sv = NULL;
        } else if (cls == H5T_STRING) {
            char **s = field_strings(d, fname, mtp, n);
            if (!s) rc = sx_status_set(st, SX_EFORMAT, "%s: cannot read column '%s'", c->path, ce);
            else rc = sx_frame_add_strings(f, fname, (const char *const *)s, st);
            sx_h5_free_strings(s, n);
        } else if (cls == H5T_ENUM || cls == H5T_INTEGER) {
            int64_t *v = buf;
            if (field_num(d, fname, mtp, n, 0, v) != 0) {
                rc = sx_status_set(st, SX_EFORMAT, "%s: cannot read column '%s'", c->path, ce);
            } else if (cls == H5T_ENUM) {
                uint8_t *b = sx_mallocarray((size_t)(n ? n : 1), 1);
                for (int64_t r = 0; b && r < n; r++) b[r] = v[r] != 0;
                rc = b ? sx_frame_add_bool(f, fname, b, st) : sx_status_set(st, SX_ENOMEM, "oom");
                sx_free(b);
            } else {
                int64_t ncat = 0;
                char **cats = legacy_cats(uns, fname, &ncat);
                int fits = cats != NULL;
                for (int64_t r = 0; fits && r < n; r++) fits = v[r] >= -1 && v[r] < ncat;
                if (fits) {
                    rc = add_categorical(c, f, fname, ce, v, cats, ncat, 0, st);
                    char key[600];
                    snprintf(key, sizeof key, "%s_categories", fname);
                    if (rc == SX_OK) h5x_uns_remove(uns, key);
                } else {
                    rc = sx_frame_add_int(f, fname, v, st);
                }
                sx_h5_free_strings(cats, ncat);
            }
        } else if (cls == H5T_FLOAT) {
            if (field_num(d, fname, mtp, n, 1, buf) != 0)
                rc = sx_status_set(st, SX_EFORMAT, "%s: cannot read column '%s'", c->path, ce);
            else rc = sx_frame_add_float(f, fname, (double *)buf, st);
        } else {
            SX_WARN("%s: column '%s' has an HDF5 type scalexd does not read; skipped", c->path, ce);
        }
        H5Tclose(mtp);
        H5free_memory(fname);
        if (rc != SX_OK) {
            ok = 0;
            break;
        }
    }
    if (!ok) goto fail;
    sx_free(buf);
    H5Tclose(ft);
    H5Dclose(d);
    return f;
fail:
    sx_free(buf);
    sx_frame_free(f);
    H5Tclose(ft);
    H5Dclose(d);
    return NULL;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Child names of a group, in creation order when tracked, else by name. */
static char **group_children(hid_t g, int64_t *n)
{
    H5G_info_t info;
    *n = 0;
    if (H5Gget_info(g, &info) < 0) return NULL;
    char **names = sx_calloc(info.nlinks ? info.nlinks : 1, sizeof(char *));
    if (!names) return NULL;
    H5_index_t idx = H5_INDEX_CRT_ORDER;
    for (hsize_t i = 0; i < info.nlinks; i++) {
        ssize_t len = H5Lget_name_by_idx(g, ".", idx, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
        if (len < 0 && idx == H5_INDEX_CRT_ORDER) {
            idx = H5_INDEX_NAME;
            len = H5Lget_name_by_idx(g, ".", idx, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
        }
        if (len < 0) break;
        names[i] = sx_malloc((size_t)len + 1);
        if (!names[i]) break;
        H5Lget_name_by_idx(g, ".", idx, H5_ITER_INC, i, names[i], (size_t)len + 1, H5P_DEFAULT);
        (*n)++;
    }
    return names;
}

sx_frame *h5x_read_frame(h5x_ctx *c, const char *path, const char *elem, sx_uns *uns,
                         sx_status *st)
{
    H5O_type_t ot = h5x_objtype(c->f, path);
    if (ot == H5O_TYPE_DATASET) return read_compound_frame(c, path, elem, uns, st);
    if (ot != H5O_TYPE_GROUP) {
        sx_status_set(st, SX_EFORMAT, "%s: element '%s' is missing; an .h5ad needs obs and var",
                      c->path, elem);
        return NULL;
    }
    char enc[64], idx[512];
    h5x_attr_str(c->f, path, "encoding-type", enc, sizeof enc);
    if (enc[0] && strcmp(enc, "dataframe") != 0) {
        sx_status_set(st, SX_EFORMAT, "%s: element '%s' has encoding '%s', expected dataframe",
                      c->path, elem, enc);
        return NULL;
    }
    h5x_attr_str(c->f, path, "_index", idx, sizeof idx);
    hid_t g = H5Gopen2(c->f, path, H5P_DEFAULT);
    if (!idx[0]) snprintf(idx, sizeof idx, "%s", H5Lexists(g, "_index", H5P_DEFAULT) > 0 ? "_index" : "index");
    sx_frame *f = NULL;
    char **names = NULL, **cols = NULL;
    int64_t n = 0, ncols = 0;
    char ie[700];
    snprintf(ie, sizeof ie, "%s/%s", elem, idx);
    if (H5Lexists(g, idx, H5P_DEFAULT) <= 0) {
        sx_status_set(st, SX_EFORMAT, "%s: element '%s' has no index dataset '%s'", c->path, elem,
                      idx);
        goto fail;
    }
    hid_t id = H5Dopen2(g, idx, H5P_DEFAULT);
    int64_t nidx = id >= 0 ? h5x_npoints(id, NULL, NULL) : 0;
    if (id >= 0) H5Dclose(id);
    if (h5x_check_rows(c, elem, nidx, st) != SX_OK) goto fail; /* before the names are read */
    if (h5x_read_strings(c, g, idx, ie, &names, &n, st) != SX_OK) goto fail;
    if (!(f = sx_frame_new(n, (const char *const *)names, st))) goto fail;
    sx_free(f->index_name);
    f->index_name = sx_strdup(idx);
    int rc = h5x_attr_strings(g, ".", "column-order", &cols, &ncols, st);
    if (rc == SX_ENOTFOUND) {
        /* no column-order: every child but the index and reserved groups, by name */
        cols = group_children(g, &ncols);
        int64_t k = 0;
        for (int64_t i = 0; i < ncols; i++) {
            if (strcmp(cols[i], idx) == 0 || strcmp(cols[i], "__categories") == 0) {
                sx_free(cols[i]);
                continue;
            }
            cols[k++] = cols[i];
        }
        ncols = k;
        qsort(cols, (size_t)ncols, sizeof(char *), cmp_cstr);
    } else if (rc != SX_OK) {
        sx_status_prefix(st, "%s: element '%s': ", c->path, elem);
        goto fail;
    }
    for (int64_t i = 0; i < ncols; i++) {
        if (sx_progress_cancelled(c->prog)) {
            sx_status_set(st, SX_ECANCELED, "canceled");
            goto fail;
        }
        if (read_column(c, g, cols[i], f, elem, st) != SX_OK) goto fail;
    }
    sx_h5_free_strings(names, n);
    sx_h5_free_strings(cols, ncols);
    H5Gclose(g);
    return f;
fail:
    sx_h5_free_strings(names, n);
    sx_h5_free_strings(cols, ncols);
    sx_frame_free(f);
    H5Gclose(g);
    return NULL;
}

/* ---------------------------------------------------------------- uns */

static int read_uns_group(h5x_ctx *c, hid_t g, const char *upath, sx_uns *dict, sx_status *st);

static int read_uns_dataset(h5x_ctx *c, hid_t g, const char *name, const char *elem, sx_uns *dict,
                            sx_status *st)
{
    sx_status tmp = {0};
    hid_t d = h5x_dopen(c, g, name, elem, &tmp);
    if (d < 0) {
        if (tmp.code == SX_EUNSUPPORTED) {
            if (st) *st = tmp;
            return tmp.code;
        }
        SX_WARN("%s; skipped", tmp.msg);
        return SX_OK;
    }
    int nd;
    int64_t dims[8];
    int64_t cnt = h5x_npoints(d, &nd, dims);
    hid_t ft = H5Dget_type(d);
    H5T_class_t cls = H5Tget_class(ft);
    H5Tclose(ft);
    H5Dclose(d);
    char enc[64];
    h5x_attr_str(g, name, "encoding-type", enc, sizeof enc);
    int rc = SX_OK;
    sx_uns *u = NULL;
    if (cls == H5T_STRING) {
        char **s = NULL;
        int64_t n = 0;
        if ((rc = h5x_read_strings(c, g, name, elem, &s, &n, st))) return rc;
        if (nd == 0 || (!enc[0] && n == 1)) u = sx_uns_set_string(dict, name, n ? s[0] : "");
        else if (nd <= 2) {
            u = sx_uns_set_strings(dict, name, (const char *const *)s, n);
            if (u && nd == 2) { u->dims[0] = dims[0]; u->dims[1] = dims[1]; }
        } else {
            SX_WARN("%s: uns element '%s' is a %d-d string array; skipped", c->path, elem, nd);
            u = dict;
        }
        sx_h5_free_strings(s, n);
    } else if (cls == H5T_INTEGER || cls == H5T_ENUM || cls == H5T_FLOAT) {
        if (nd > 2) {
            SX_WARN("%s: uns element '%s' has %d dimensions; skipped", c->path, elem, nd);
            return SX_OK;
        }
        if (cls == H5T_FLOAT) {
            double *v = NULL;
            int64_t n = 0;
            if ((rc = h5x_read_f64(c, g, name, elem, &v, &n, st))) return rc;
            u = nd == 0 ? sx_uns_set_float(dict, name, v[0]) : sx_uns_set_floats(dict, name, v, n);
            sx_free(v);
        } else {
            int64_t *v = NULL, n = 0;
            if ((rc = h5x_read_i64(c, g, name, elem, &v, &n, st))) return rc;
            if (nd == 0) u = cls == H5T_ENUM ? sx_uns_set_bool(dict, name, (int)v[0])
                                             : sx_uns_set_int(dict, name, v[0]);
            else u = sx_uns_set_ints(dict, name, v, n);
            sx_free(v);
        }
        if (u && nd == 2) {
            u->dims[0] = dims[0];
            u->dims[1] = dims[1];
        }
        (void)cnt;
    } else {
        SX_WARN("%s: uns element '%s' (%s) is not kept by scalexd; skipped", c->path, elem,
                cls == H5T_COMPOUND ? "record array" : "unsupported HDF5 type");
        return SX_OK;
    }
    if (!u) return sx_status_set(st, SX_ENOMEM, "%s: '%s': out of memory", c->path, elem);
    return SX_OK;
}

static int read_uns_group(h5x_ctx *c, hid_t g, const char *upath, sx_uns *dict, sx_status *st)
{
    int64_t n = 0;
    char **kids = group_children(g, &n);
    int rc = SX_OK;
    for (int64_t i = 0; i < n && rc == SX_OK; i++) {
        char elem[1024];
        snprintf(elem, sizeof elem, "%s/%s", upath, kids[i]);
        H5O_type_t ot = h5x_objtype(g, kids[i]);
        if (ot == H5O_TYPE_DATASET) {
            rc = read_uns_dataset(c, g, kids[i], elem, dict, st);
        } else if (ot == H5O_TYPE_GROUP) {
            char enc[64], fmt[16];
            h5x_attr_str(g, kids[i], "encoding-type", enc, sizeof enc);
            h5x_attr_str(g, kids[i], "h5sparse_format", fmt, sizeof fmt);
            if ((enc[0] && strcmp(enc, "dict") != 0) || fmt[0]) {
                SX_WARN("%s: uns element '%s' (encoding '%s') is not kept by scalexd; skipped",
                        c->path, elem, enc[0] ? enc : fmt);
                continue;
            }
            sx_uns *sub = sx_uns_set_dict(dict, kids[i]);
            hid_t sg = H5Gopen2(g, kids[i], H5P_DEFAULT);
            if (!sub || sg < 0) rc = sx_status_set(st, SX_EFORMAT, "%s: cannot open '%s'", c->path, elem);
            else rc = read_uns_group(c, sg, elem, sub, st);
            if (sg >= 0) H5Gclose(sg);
        }
    }
    sx_h5_free_strings(kids, n);
    return rc;
}

sx_uns *h5x_read_uns(h5x_ctx *c, const char *path, sx_status *st)
{
    sx_uns *root = sx_uns_new_dict();
    if (!root) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    if (h5x_objtype(c->f, path) != H5O_TYPE_GROUP) return root;
    hid_t g = H5Gopen2(c->f, path, H5P_DEFAULT);
    int rc = read_uns_group(c, g, path, root, st);
    H5Gclose(g);
    if (rc != SX_OK) {
        sx_uns_free(root);
        return NULL;
    }
    return root;
}
