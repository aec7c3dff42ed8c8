/* sx_pipeline_ref — the single-file reference (reference.h5): model + reference cells. */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "sx_alloc.h"
#include "sx_h5.h"
#include "sx_knn.h"
#include "sx_pipeline_internal.h"
#include "sx_pipeline_scalex.h"

#define REF_FORMAT "scalexd-reference"
#define REF_VERSION 1

static int set_attr_f64(hid_t obj, const char *name, double v, sx_status *st)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    if (e < 0) return sx_status_set(st, SX_EIO, "reference: cannot write attribute '%s'", name);
    return SX_OK;
}

/* attributes of the "reference" group: format, version, UMAP curve */
static int write_attrs(hid_t g, double umap_a, double umap_b, sx_status *st)
{
    int rc = sx_h5_set_attr_string(g, "format", REF_FORMAT, st);
    if (rc != SX_OK) return rc;
    hid_t sp = H5Screate(H5S_SCALAR);
    int v = REF_VERSION;
    hid_t a = H5Acreate2(g, "format_version", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        H5Awrite(a, H5T_NATIVE_INT, &v);
        H5Aclose(a);
    }
    H5Sclose(sp);
    if ((rc = set_attr_f64(g, "umap_a", umap_a, st)) != SX_OK) return rc;
    return set_attr_f64(g, "umap_b", umap_b, st);
}

/* reference/obs/<column> (text) for every categorical or string column, then the list of
 * them as reference/obs_columns */
static int write_obs(hid_t g, const sx_frame *obs, const char *tmp, sx_status *st)
{
    int64_t n = obs->n_rows;
    int n_cols = 0, rc = SX_OK;
    hid_t go = H5Gcreate2(g, "obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (go < 0) return sx_status_set(st, SX_EIO, "reference '%s': cannot create group 'reference/obs'", tmp);
    char **vals = sx_calloc((size_t)(n > 0 ? n : 1), sizeof *vals);
    const char **cols = sx_calloc((size_t)obs->n_cols + 1, sizeof *cols);
    if (!vals || !cols) rc = sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int c = 0; rc == SX_OK && c < obs->n_cols; c++) {
        const sx_column *col = &obs->cols[c];
        if (col->kind != SX_COL_CATEGORICAL && col->kind != SX_COL_STRING) continue;
        for (int64_t i = 0; i < n; i++) {
            char buf[64];
            const char *t = sx_column_text(col, i, buf, sizeof buf);
            /* text in a temporary buffer (rare: numbers) is copied */
            vals[i] = t == buf ? sx_strdup(buf) : (char *)t;
        }
        rc = sx_h5_write_strings(go, col->name, (const char *const *)vals, n, 4, st);
        for (int64_t i = 0; i < n; i++) {
            char buf[64];
            if (sx_column_text(col, i, buf, sizeof buf) == buf) sx_free(vals[i]);
            vals[i] = NULL;
        }
        cols[n_cols++] = col->name;
    }
    if (rc == SX_OK) rc = sx_h5_write_strings(g, "obs_columns", cols, n_cols, 0, st);
    H5Gclose(go);
    sx_free(vals);
    sx_free(cols);
    return rc;
}

/* the "reference" group of an open model file */
static int write_group(hid_t f, const sx_frame *obs, const double *latent, int dim,
                       const float *umap, double umap_a, double umap_b, const char *tmp,
                       sx_status *st)
{
    int64_t n = obs->n_rows;
    hid_t g = H5Gcreate2(f, "reference", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return sx_status_set(st, SX_EIO, "reference '%s': cannot create group 'reference'", tmp);
    int rc = write_attrs(g, umap_a, umap_b, st);
    if (rc == SX_OK) rc = sx_h5_write_strings(g, "obs_names", (const char *const *)obs->index, n, 4, st);
    if (rc == SX_OK) rc = sx_h5_write_f64(g, "latent", latent, n, dim, 4, st);
    if (rc == SX_OK && umap) rc = sx_h5_write_f32(g, "umap", umap, n, 2, 4, st);
    if (rc == SX_OK) rc = write_obs(g, obs, tmp, st);
    H5Gclose(g);
    return rc;
}

int sx_pl_reference_write(const char *path, const sx_nn_model *m, const sx_frame *obs,
                          const double *latent, int dim, const float *umap, double umap_a,
                          double umap_b, sx_status *st)
{
    size_t plen = strlen(path) + 5;
    char *tmp = sx_malloc(plen);
    if (!tmp) return sx_status_set(st, SX_ENOMEM, "out of memory");
    snprintf(tmp, plen, "%s.tmp", path);
    int rc = sx_nn_model_save(m, tmp, st);
    hid_t f = rc == SX_OK ? H5Fopen(tmp, H5F_ACC_RDWR, H5P_DEFAULT) : -1;
    if (rc == SX_OK && f < 0)
        rc = sx_status_set(st, SX_EIO, "reference '%s': cannot reopen the model file", tmp);
    if (rc == SX_OK) rc = write_group(f, obs, latent, dim, umap, umap_a, umap_b, tmp, st);
    if (f >= 0 && H5Fclose(f) < 0 && rc == SX_OK)
        rc = sx_status_set(st, SX_EIO, "reference '%s': cannot close (disk full?)", tmp);
    if (rc == SX_OK && rename(tmp, path) != 0)
        rc = sx_status_set(st, SX_EIO, "cannot rename '%s' into place", tmp);
    if (rc != SX_OK) remove(tmp);
    sx_free(tmp);
    return rc;
}

void sx_reference_free(sx_reference *r)
{
    if (!r) return;
    sx_nn_model_free(r->model);
    sx_knn_index_free(r->index); /* before the map its arrays may point into */
    sx_reference_calib_free(r);
    if (r->mapped) { /* latent and umap point into the read-only map (sx_reference_map.c) */
        munmap(r->mapped, r->mapped_len);
    } else {
        sx_free(r->latent);
        sx_free(r->umap);
    }
    sx_frame_free(r->obs);
    sx_free(r->path);
    sx_free(r);
}

/* 0 when the file's "reference" group says format=scalexd-reference */
static int check_format(hid_t f, const char *path, sx_status *st)
{
    char *fmt = NULL;
    sx_status tmp;
    sx_status_clear(&tmp);
    int ok = sx_h5_attr_string(f, "reference", "format", &fmt, &tmp) == SX_OK && fmt &&
             strcmp(fmt, REF_FORMAT) == 0;
    sx_free(fmt);
    if (ok) return SX_OK;
    return sx_status_set(st, SX_EFORMAT, "'%s' is not a scalexd reference (no group 'reference' "
                         "with format=%s): use the reference.h5 written by scalex integrate", path,
                         REF_FORMAT);
}

/* latent, UMAP layout and curve of the n cells */
static int read_cells(hid_t f, sx_reference *r, int64_t n, sx_status *st)
{
    int ndim;
    int64_t dims[8], cnt;
    if (sx_h5_shape(f, "reference/latent", &ndim, dims, st) != SX_OK) return st->code;
    if (ndim != 2 || dims[0] != n)
        return sx_status_set(st, SX_EFORMAT, "reference '%s': latent has shape %lld x %lld for "
                             "%lld cells", r->path, (long long)dims[0],
                             (long long)(ndim > 1 ? dims[1] : 0), (long long)n);
    r->n_cells = n;
    r->dim = (int)dims[1];
    if (sx_h5_read_f64(f, "reference/latent", &r->latent, &cnt, st) != SX_OK) return st->code;
    if (sx_h5_exists(f, "reference/umap")) {
        if (sx_h5_read_f32(f, "reference/umap", &r->umap, &cnt, st) != SX_OK) return st->code;
        if (cnt != 2 * n)
            return sx_status_set(st, SX_EFORMAT, "reference '%s': umap has %lld values for %lld "
                                 "cells", r->path, (long long)cnt, (long long)n);
    }
    sx_status tmp;
    double *v = NULL;
    int64_t nv = 0;
    if (sx_h5_attr_f64(f, "reference", "umap_a", &v, &nv, &tmp) == SX_OK && nv == 1) r->umap_a = v[0];
    sx_free(v);
    v = NULL;
    if (sx_h5_attr_f64(f, "reference", "umap_b", &v, &nv, &tmp) == SX_OK && nv == 1) r->umap_b = v[0];
    sx_free(v);
    return SX_OK;
}

/* obs: the cell names and every column listed in reference/obs_columns (categorical) */
static int read_obs(hid_t f, sx_reference *r, char **names, int64_t n, sx_status *st)
{
    char **cols = NULL, **vals = NULL;
    int64_t n_cols = 0, n_vals = 0;
    int rc = SX_OK;
    if (!(r->obs = sx_frame_new(n, (const char *const *)names, st))) return st->code;
    if (sx_h5_read_strings(f, "reference/obs_columns", &cols, &n_cols, st) != SX_OK) return st->code;
    for (int64_t c = 0; rc == SX_OK && c < n_cols; c++) {
        char p[512];
        snprintf(p, sizeof p, "reference/obs/%s", cols[c]);
        if ((rc = sx_h5_read_strings(f, p, &vals, &n_vals, st)) != SX_OK) break;
        if (n_vals != n)
            rc = sx_status_set(st, SX_EFORMAT, "reference '%s': obs column '%s' has %lld values "
                               "for %lld cells", r->path, cols[c], (long long)n_vals, (long long)n);
        /* categories in first-appearance order would depend on cell order; sorted is stable */
        else
            rc = sx_frame_add_categorical_from_strings(r->obs, cols[c], (const char *const *)vals,
                                                       1, st);
        sx_h5_free_strings(vals, n_vals);
        vals = NULL;
    }
    sx_h5_free_strings(cols, n_cols);
    return rc;
}

sx_reference *sx_reference_load(const char *path, sx_status *st)
{
    if (!path) {
        sx_status_set(st, SX_EINVAL, "no reference given");
        return NULL;
    }
    if (sx_pl_is_dir(path)) {
        /* the flat map next to reference.h5, when the daemon wrote one and it is current:
         * cells mapped read-only instead of read (sx_reference_map.c) */
        sx_status ms;
        sx_status_clear(&ms);
        sx_reference *mapped = sx_reference_map_open(path, &ms);
        if (mapped) return mapped;
        if (sx_reference_is_scalex(path)) /* a folder SCALEX wrote */
            return sx_reference_load_scalex(path, st);
    }
    char *file = sx_pl_is_dir(path) ? sx_pl_join(path, "reference.h5") : sx_strdup(path);
    if (!file) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    if (!sx_pl_exists(file)) {
        sx_status_set(st, SX_ENOTFOUND,
                      "reference '%s' not found: give an integrate output folder (it holds "
                      "reference.h5) or the path of a reference.h5", file);
        sx_free(file);
        return NULL;
    }
    sx_reference *r = sx_calloc(1, sizeof *r);
    if (!r) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        sx_free(file);
        return NULL;
    }
    r->path = file;
    char **names = NULL;
    int64_t n_names = 0;
    hid_t f = sx_h5_open_ro(r->path, st);
    int rc = f < 0 ? st->code : check_format(f, r->path, st);
    if (rc == SX_OK && sx_h5_read_strings(f, "reference/obs_names", &names, &n_names, st) != SX_OK)
        rc = st->code;
    if (rc == SX_OK) rc = read_cells(f, r, n_names, st);
    if (rc == SX_OK) rc = read_obs(f, r, names, n_names, st);
    if (f >= 0) H5Fclose(f);
    sx_h5_free_strings(names, n_names);
    if (rc == SX_OK && !(r->model = sx_nn_model_load(r->path, st))) rc = st->code;
    if (rc == SX_OK) return r;
    sx_reference_free(r);
    return NULL;
}
