#include "sx_h5.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"

void sx_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static const char *filter_name(H5Z_filter_t id, const char *stored)
{
    switch (id) {
    case 32000: return "lzf";
    case 32001: return "blosc";
    case 32004: return "lz4";
    case 32008: return "bitshuffle";
    case 32015: return "zstd";
    case 4: return "szip";
    default: return stored && *stored ? stored : "unknown";
    }
}

int sx_h5_check_filters(hid_t dset, const char *file, const char *elem, int h5ad, sx_status *st)
{
    sx_h5_register_filters();
    hid_t pl = H5Dget_create_plist(dset);
    int nf = pl >= 0 ? H5Pget_nfilters(pl) : 0, rc = SX_OK;
    for (int i = 0; i < nf; i++) {
        unsigned flags = 0, cd[8];
        size_t ncd = 8;
        char name[64] = "";
        H5Z_filter_t id = H5Pget_filter2(pl, (unsigned)i, &flags, &ncd, cd, sizeof name, name, NULL);
        if (id < 0 || H5Zfilter_avail(id) <= 0) {
            if (h5ad)
                rc = sx_status_set(st, SX_EUNSUPPORTED,
                                   "%s: element '%s' uses HDF5 filter %d (%s) which this build "
                                   "cannot decode; re-save the file with gzip compression, e.g. "
                                   "in Python: adata = anndata.read_h5ad(\"%s\"); "
                                   "adata.write_h5ad(\"out.h5ad\", compression=\"gzip\")",
                                   file, elem, (int)id, filter_name(id, name), file);
            else
                rc = sx_status_set(st, SX_EUNSUPPORTED,
                                   "%s: element '%s' uses HDF5 filter %d (%s) which this build "
                                   "cannot decode; re-save the file with gzip compression "
                                   "(h5repack -f GZIP=4)", file, elem, (int)id,
                                   filter_name(id, name));
            break;
        }
    }
    if (pl >= 0) H5Pclose(pl);
    return rc;
}

hid_t sx_h5_open_ro(const char *path, sx_status *st)
{
    sx_h5_quiet();
    sx_h5_register_filters();
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) {
        sx_status_set(st, SX_EFORMAT, "%s: not an HDF5 file (or unreadable); check the path and that "
                      "the file is complete", path);
        return -1;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) sx_status_set(st, SX_EIO, "%s: cannot open HDF5 file (truncated or corrupt?)", path);
    return f;
}

int sx_h5_exists(hid_t loc, const char *path)
{
    /* H5Lexists needs each intermediate link checked in turn. */
    char buf[1024];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) return 0;
    if (strcmp(path, ".") == 0 || strcmp(path, "/") == 0) return 1;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char save = buf[i];
            buf[i] = '\0';
            if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return 0;
            buf[i] = save;
        }
    }
    return 1;
}

int sx_h5_shape(hid_t loc, const char *path, int *ndim, int64_t dims[8], sx_status *st)
{
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
    if (d < 0) return sx_status_set(st, SX_ENOTFOUND, "dataset '%s' not found", path);
    hid_t sp = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(sp);
    int rc = SX_OK;
    if (nd < 0 || nd > 8) {
        rc = sx_status_set(st, SX_EFORMAT, "dataset '%s' has an unreadable or >8-d shape", path);
    } else {
        hsize_t hd[8];
        H5Sget_simple_extent_dims(sp, hd, NULL);
        for (int i = 0; i < nd; i++) dims[i] = (int64_t)hd[i];
        *ndim = nd;
    }
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

/* Read an enum-typed dataset or attribute as integers widened into mt (double/float/int64).
 * The enum's base must be a signed or unsigned integer of 1, 2, 4 or 8 bytes. */
static herr_t read_enum(hid_t obj, int is_attr, hid_t ft, hssize_t cnt, hid_t mt, void *out)
{
    hid_t nt = H5Tget_native_type(ft, H5T_DIR_ASCEND);
    size_t es = H5Tget_size(nt);
    hid_t base = H5Tget_super(ft);
    int sgn = H5Tget_sign(base) == H5T_SGN_2;
    H5Tclose(base);
    unsigned char *tmp = (es == 1 || es == 2 || es == 4 || es == 8)
                             ? sx_mallocarray((size_t)(cnt ? cnt : 1), es) : NULL;
    herr_t e = -1;
    if (tmp) e = is_attr ? H5Aread(obj, nt, tmp) : H5Dread(obj, nt, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp);
    for (hssize_t i = 0; e >= 0 && i < cnt; i++) {
        int64_t v = 0;
        const unsigned char *p = tmp + (size_t)i * es;
        if (es == 1) v = sgn ? *(const int8_t *)p : *(const uint8_t *)p;
        else if (es == 2) { int16_t a; uint16_t b; memcpy(&a, p, 2); memcpy(&b, p, 2); v = sgn ? a : b; }
        else if (es == 4) { int32_t a; uint32_t b; memcpy(&a, p, 4); memcpy(&b, p, 4); v = sgn ? a : (int64_t)b; }
        else memcpy(&v, p, 8);
        if (mt == H5T_NATIVE_DOUBLE) ((double *)out)[i] = (double)v;
        else if (mt == H5T_NATIVE_FLOAT) ((float *)out)[i] = (float)v;
        else ((int64_t *)out)[i] = v;
    }
    sx_free(tmp);
    H5Tclose(nt);
    return e;
}

/* Read the whole dataset with memory type mt into a fresh buffer of elem-size es. */
static int read_all(hid_t loc, const char *path, hid_t mt, size_t es, void **out, int64_t *n,
                    sx_status *st)
{
    *out = NULL;
    *n = 0;
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
    if (d < 0) return sx_status_set(st, SX_ENOTFOUND, "dataset '%s' not found", path);
    int rc = SX_OK;
    hid_t sp = H5Dget_space(d);
    hssize_t cnt = H5Sget_simple_extent_npoints(sp);
    hid_t ft = H5Dget_type(d);
    H5T_class_t cls = H5Tget_class(ft);
    void *buf = NULL;
    if (cnt < 0) {
        rc = sx_status_set(st, SX_EFORMAT, "dataset '%s': unreadable dataspace", path);
        goto fail;
    }
    if (cls != H5T_INTEGER && cls != H5T_FLOAT && cls != H5T_ENUM) {
        rc = sx_status_set(st, SX_EFORMAT, "dataset '%s' is not numeric", path);
        goto fail;
    }
    buf = sx_mallocarray((size_t)(cnt ? cnt : 1), es);
    if (!buf) {
        rc = sx_status_set(st, SX_ENOMEM, "dataset '%s': cannot allocate %lld values", path,
                           (long long)cnt);
        goto fail;
    }
    if (cnt > 0) {
        herr_t e;
        if (cls == H5T_ENUM) {
            /* h5py booleans are int8 enums (FALSE/TRUE); HDF5 converts enum only to enum,
             * so read with the native enum type and widen its integer values. */
            e = read_enum(d, 0, ft, cnt, mt, buf);
        } else {
            e = H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        }
        if (e < 0) {
            rc = sx_status_set(st, SX_EFORMAT,
                               "dataset '%s': read failed (truncated file, or a compression "
                               "filter this build lacks, e.g. blosc)", path);
            goto fail;
        }
    }
    *out = buf;
    *n = (int64_t)cnt;
    buf = NULL;
fail:
    sx_free(buf);
    H5Tclose(ft);
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

int sx_h5_read_f64(hid_t loc, const char *path, double **out, int64_t *n, sx_status *st)
{
    return read_all(loc, path, H5T_NATIVE_DOUBLE, sizeof(double), (void **)out, n, st);
}

int sx_h5_read_f32(hid_t loc, const char *path, float **out, int64_t *n, sx_status *st)
{
    return read_all(loc, path, H5T_NATIVE_FLOAT, sizeof(float), (void **)out, n, st);
}

int sx_h5_read_i64(hid_t loc, const char *path, int64_t **out, int64_t *n, sx_status *st)
{
    return read_all(loc, path, H5T_NATIVE_INT64, sizeof(int64_t), (void **)out, n, st);
}

void sx_h5_free_strings(char **s, int64_t n)
{
    if (!s) return;
    for (int64_t i = 0; i < n; i++) sx_free(s[i]);
    sx_free(s);
}

/* Copy a fixed-length string, dropping padding. */
static char *fixed_copy(const char *p, size_t sz, H5T_str_t pad)
{
    size_t len = strnlen(p, sz);
    if (pad == H5T_STR_SPACEPAD)
        while (len > 0 && p[len - 1] == ' ') len--;
    return sx_strndup(p, len);
}

/* Read strings from an object (dataset or attribute) given its type and count. */
static int read_strings_obj(hid_t obj, int is_attr, hid_t ft, int64_t cnt, char ***out,
                            const char *what, sx_status *st)
{
    char **res = sx_calloc((size_t)(cnt ? cnt : 1), sizeof(char *));
    if (!res) return sx_status_set(st, SX_ENOMEM, "%s: out of memory for %lld strings", what,
                                   (long long)cnt);
    int rc = SX_OK;
    if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        char **tmp = sx_calloc((size_t)(cnt ? cnt : 1), sizeof(char *));
        herr_t e = tmp ? (is_attr ? H5Aread(obj, mt, tmp)
                                  : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp))
                       : -1;
        if (e < 0) {
            rc = sx_status_set(st, SX_EFORMAT, "%s: cannot read strings (truncated or corrupt)",
                               what);
        } else {
            for (int64_t i = 0; i < cnt; i++) {
                res[i] = sx_strdup(tmp[i] ? tmp[i] : "");
                if (!res[i]) rc = sx_status_set(st, SX_ENOMEM, "%s: out of memory", what);
            }
            /* release HDF5's vlen buffers */
            for (int64_t i = 0; i < cnt; i++) H5free_memory(tmp[i]);
        }
        sx_free(tmp);
        H5Tclose(mt);
    } else {
        size_t sz = H5Tget_size(ft);
        H5T_str_t pad = H5Tget_strpad(ft);
        char *tmp = sz && (size_t)cnt <= SIZE_MAX / sz ? sx_malloc(sz * (size_t)cnt + 1) : NULL;
        hid_t mt = H5Tcopy(ft);
        herr_t e = tmp ? (is_attr ? H5Aread(obj, mt, tmp)
                                  : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp))
                       : -1;
        if (e < 0) {
            rc = sx_status_set(st, SX_EFORMAT, "%s: cannot read fixed-length strings", what);
        } else {
            for (int64_t i = 0; i < cnt; i++) {
                res[i] = fixed_copy(tmp + (size_t)i * sz, sz, pad);
                if (!res[i]) rc = sx_status_set(st, SX_ENOMEM, "%s: out of memory", what);
            }
        }
        H5Tclose(mt);
        sx_free(tmp);
    }
    if (rc != SX_OK) {
        sx_h5_free_strings(res, cnt);
        return rc;
    }
    *out = res;
    return SX_OK;
}

int sx_h5_read_strings(hid_t loc, const char *path, char ***out, int64_t *n, sx_status *st)
{
    *out = NULL;
    *n = 0;
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
    if (d < 0) return sx_status_set(st, SX_ENOTFOUND, "dataset '%s' not found", path);
    hid_t ft = H5Dget_type(d);
    hid_t sp = H5Dget_space(d);
    hssize_t cnt = H5Sget_simple_extent_npoints(sp);
    int rc;
    if (H5Tget_class(ft) != H5T_STRING)
        rc = sx_status_set(st, SX_EFORMAT, "dataset '%s' is not a string array", path);
    else if (cnt < 0)
        rc = sx_status_set(st, SX_EFORMAT, "dataset '%s': unreadable dataspace", path);
    else {
        char what[600];
        snprintf(what, sizeof what, "dataset '%s'", path);
        rc = read_strings_obj(d, 0, ft, cnt, out, what, st);
        if (rc == SX_OK) *n = cnt;
    }
    H5Sclose(sp);
    H5Tclose(ft);
    H5Dclose(d);
    return rc;
}

static hid_t open_attr(hid_t loc, const char *path, const char *name)
{
    if (!path || !*path) path = ".";
    if (H5Aexists_by_name(loc, path, name, H5P_DEFAULT) <= 0) return -1;
    return H5Aopen_by_name(loc, path, name, H5P_DEFAULT, H5P_DEFAULT);
}

int sx_h5_attr_string(hid_t loc, const char *path, const char *name, char **out, sx_status *st)
{
    *out = NULL;
    hid_t a = open_attr(loc, path, name);
    if (a < 0) return SX_ENOTFOUND; /* absence is not an error worth a message */
    hid_t ft = H5Aget_type(a);
    hid_t sp = H5Aget_space(a);
    hssize_t cnt = H5Sget_simple_extent_npoints(sp);
    int rc;
    if (H5Tget_class(ft) != H5T_STRING || cnt < 1) {
        rc = sx_status_set(st, SX_EFORMAT, "attribute '%s' of '%s' is not a string", name, path);
    } else {
        char **v = NULL;
        char what[600];
        snprintf(what, sizeof what, "attribute '%s' of '%s'", name, path);
        rc = read_strings_obj(a, 1, ft, cnt, &v, what, st);
        if (rc == SX_OK) {
            *out = v[0];
            for (hssize_t i = 1; i < cnt; i++) sx_free(v[i]);
            sx_free(v);
        }
    }
    H5Sclose(sp);
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

static int attr_num(hid_t loc, const char *path, const char *name, hid_t mt, size_t es,
                    void **out, int64_t *n, sx_status *st)
{
    *out = NULL;
    *n = 0;
    hid_t a = open_attr(loc, path, name);
    if (a < 0) return SX_ENOTFOUND;
    hid_t ft = H5Aget_type(a);
    hid_t sp = H5Aget_space(a);
    hssize_t cnt = H5Sget_simple_extent_npoints(sp);
    H5T_class_t cls = H5Tget_class(ft);
    int rc = SX_OK;
    void *buf = NULL;
    if (cnt < 0 || (cls != H5T_INTEGER && cls != H5T_FLOAT && cls != H5T_ENUM)) {
        rc = sx_status_set(st, SX_EFORMAT, "attribute '%s' of '%s' is not numeric", name, path);
    } else {
        buf = sx_mallocarray((size_t)(cnt ? cnt : 1), es);
        if (!buf)
            rc = sx_status_set(st, SX_ENOMEM, "attribute '%s': out of memory", name);
        else if (cnt > 0) {
            herr_t e;
            if (cls == H5T_ENUM)
                e = read_enum(a, 1, ft, cnt, mt, buf);
            else
                e = H5Aread(a, mt, buf);
            if (e < 0) rc = sx_status_set(st, SX_EFORMAT, "attribute '%s' of '%s': read failed",
                                          name, path);
        }
    }
    if (rc == SX_OK) {
        *out = buf;
        *n = cnt;
    } else {
        sx_free(buf);
    }
    H5Sclose(sp);
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

int sx_h5_attr_f64(hid_t loc, const char *path, const char *name, double **out, int64_t *n,
                   sx_status *st)
{
    return attr_num(loc, path, name, H5T_NATIVE_DOUBLE, sizeof(double), (void **)out, n, st);
}

int sx_h5_attr_i64(hid_t loc, const char *path, const char *name, int64_t **out, int64_t *n,
                   sx_status *st)
{
    return attr_num(loc, path, name, H5T_NATIVE_INT64, sizeof(int64_t), (void **)out, n, st);
}

static int write_num(hid_t loc, const char *name, hid_t ft, hid_t mt, const void *v, int64_t d0,
                     int64_t d1, int gzip, sx_status *st)
{
    hsize_t dims[2] = {(hsize_t)d0, (hsize_t)d1};
    int rank = d1 > 0 ? 2 : 1;
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int64_t total = d0 * (rank == 2 ? d1 : 1);
    if (gzip > 0 && total >= 16) {
        hsize_t chunk[2];
        /* ~256 KiB chunks: whole rows for 2-D arrays. */
        size_t es = H5Tget_size(mt);
        if (rank == 1) {
            chunk[0] = (hsize_t)(d0 < (int64_t)(262144 / es) ? d0 : (int64_t)(262144 / es));
        } else {
            int64_t rows = (int64_t)(262144 / es) / (d1 ? d1 : 1);
            if (rows < 1) rows = 1;
            chunk[0] = (hsize_t)(rows < d0 ? rows : d0);
            chunk[1] = (hsize_t)d1;
        }
        if (chunk[0] == 0) chunk[0] = 1;
        H5Pset_chunk(dcpl, rank, chunk);
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, (unsigned)gzip);
    }
    hid_t d = H5Dcreate2(loc, name, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = SX_OK;
    if (d < 0 || (total > 0 && H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0))
        rc = sx_status_set(st, SX_EIO, "cannot write dataset '%s' (disk full?)", name);
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return rc;
}

int sx_h5_write_f64(hid_t loc, const char *name, const double *v, int64_t d0, int64_t d1,
                    int gzip, sx_status *st)
{
    return write_num(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v, d0, d1, gzip, st);
}

int sx_h5_write_f32(hid_t loc, const char *name, const float *v, int64_t d0, int64_t d1,
                    int gzip, sx_status *st)
{
    return write_num(loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, v, d0, d1, gzip, st);
}

int sx_h5_write_i64(hid_t loc, const char *name, const int64_t *v, int64_t d0, int64_t d1,
                    int gzip, sx_status *st)
{
    return write_num(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v, d0, d1, gzip, st);
}

int sx_h5_write_i32(hid_t loc, const char *name, const int32_t *v, int64_t d0, int64_t d1,
                    int gzip, sx_status *st)
{
    return write_num(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT32, v, d0, d1, gzip, st);
}

int sx_h5_write_strings(hid_t loc, const char *name, const char *const *v, int64_t n, int gzip,
                        sx_status *st)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (gzip > 0 && n >= 16) {
        hsize_t chunk[1] = {(hsize_t)(n < 4096 ? n : 4096)};
        H5Pset_chunk(dcpl, 1, chunk);
        H5Pset_deflate(dcpl, (unsigned)gzip);
    }
    hid_t d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = SX_OK;
    /* HDF5 wants non-NULL pointers for vlen strings: write "" for missing. */
    const char **tmp = sx_calloc((size_t)(n ? n : 1), sizeof(char *));
    if (!tmp) {
        rc = sx_status_set(st, SX_ENOMEM, "writing '%s': out of memory", name);
    } else {
        for (int64_t i = 0; i < n; i++) tmp[i] = v[i] ? v[i] : "";
        if (d < 0 || (n > 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp) < 0))
            rc = sx_status_set(st, SX_EIO, "cannot write string dataset '%s'", name);
    }
    sx_free(tmp);
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(t);
    return rc;
}

int sx_h5_set_attr_string(hid_t obj, const char *name, const char *val, sx_status *st)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = SX_OK;
    if (a < 0 || H5Awrite(a, t, &val) < 0)
        rc = sx_status_set(st, SX_EIO, "cannot write attribute '%s'", name);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return rc;
}
