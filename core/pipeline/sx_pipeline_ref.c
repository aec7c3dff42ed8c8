/* sx_pipeline_ref — the single-file reference (reference.h5): model + reference cells. */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_h5.h"
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

int sx_pl_reference_write(const char *path, const sx_nn_model *m, const sx_frame *obs,
                          const double *latent, int dim, const float *umap, double umap_a,
                          double umap_b, sx_status *st)
{
    int rc = SX_OK;
    hid_t f = -1, g = -1, go = -1;
    char **vals = NULL;
    const char **cols = NULL;
    int n_cols = 0;
    int64_t n = obs->n_rows;
    size_t plen = strlen(path) + 5;
    char *tmp = sx_malloc(plen);
    if (!tmp) return sx_status_set(st, SX_ENOMEM, "out of memory");
    snprintf(tmp, plen, "%s.tmp", path);
    if ((rc = sx_nn_model_save(m, tmp, st)) != SX_OK) goto fail;
    f = H5Fopen(tmp, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) {
        rc = sx_status_set(st, SX_EIO, "reference '%s': cannot reopen the model file", tmp);
        goto fail;
    }
    g = H5Gcreate2(f, "reference", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        rc = sx_status_set(st, SX_EIO, "reference '%s': cannot create group 'reference'", tmp);
        goto fail;
    }
    if ((rc = sx_h5_set_attr_string(g, "format", REF_FORMAT, st)) != SX_OK) goto fail;
    {
        hid_t sp = H5Screate(H5S_SCALAR);
        int v = REF_VERSION;
        hid_t a = H5Acreate2(g, "format_version", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) {
            H5Awrite(a, H5T_NATIVE_INT, &v);
            H5Aclose(a);
        }
        H5Sclose(sp);
    }
    if ((rc = set_attr_f64(g, "umap_a", umap_a, st)) != SX_OK) goto fail;
    if ((rc = set_attr_f64(g, "umap_b", umap_b, st)) != SX_OK) goto fail;
    if ((rc = sx_h5_write_strings(g, "obs_names", (const char *const *)obs->index, n, 4, st)))
        goto fail;
    if ((rc = sx_h5_write_f64(g, "latent", latent, n, dim, 4, st)) != SX_OK) goto fail;
    if (umap && (rc = sx_h5_write_f32(g, "umap", umap, n, 2, 4, st)) != SX_OK) goto fail;
    go = H5Gcreate2(g, "obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (go < 0) {
        rc = sx_status_set(st, SX_EIO, "reference '%s': cannot create group 'reference/obs'", tmp);
        goto fail;
    }
    vals = sx_calloc((size_t)(n > 0 ? n : 1), sizeof *vals);
    cols = sx_calloc((size_t)obs->n_cols + 1, sizeof *cols);
    if (!vals || !cols) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    for (int c = 0; c < obs->n_cols; c++) {
        const sx_column *col = &obs->cols[c];
        if (col->kind != SX_COL_CATEGORICAL && col->kind != SX_COL_STRING) continue;
        for (int64_t i = 0; i < n; i++) {
            char buf[64];
            const char *t = sx_column_text(col, i, buf, sizeof buf);
            vals[i] = (char *)(t == buf ? NULL : t);
            if (t == buf) {
                /* text lives in a temporary buffer: keep a copy (rare: numbers) */
                vals[i] = sx_strdup(buf);
            }
        }
        /* write, then free the copies we made for numbers */
        int r2 = sx_h5_write_strings(go, col->name, (const char *const *)vals, n, 4, st);
        for (int64_t i = 0; i < n; i++) {
            char buf[64];
            if (sx_column_text(col, i, buf, sizeof buf) == buf) sx_free(vals[i]);
            vals[i] = NULL;
        }
        if (r2 != SX_OK) {
            rc = r2;
            goto fail;
        }
        cols[n_cols++] = col->name;
    }
    if ((rc = sx_h5_write_strings(g, "obs_columns", cols, n_cols, 0, st)) != SX_OK) goto fail;
    H5Gclose(go);
    go = -1;
    H5Gclose(g);
    g = -1;
    if (H5Fclose(f) < 0) {
        f = -1;
        rc = sx_status_set(st, SX_EIO, "reference '%s': cannot close (disk full?)", tmp);
        goto fail;
    }
    f = -1;
    if (rename(tmp, path) != 0) {
        rc = sx_status_set(st, SX_EIO, "cannot rename '%s' into place", tmp);
        goto fail;
    }
    sx_free(vals);
    sx_free(cols);
    sx_free(tmp);
    return SX_OK;
fail:
    if (go >= 0) H5Gclose(go);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    remove(tmp);
    sx_free(vals);
    sx_free(cols);
    sx_free(tmp);
    return rc ? rc : SX_EIO;
}

void sx_reference_free(sx_reference *r)
{
    if (!r) return;
    sx_nn_model_free(r->model);
    sx_free(r->latent);
    sx_free(r->umap);
    sx_frame_free(r->obs);
    sx_free(r->path);
    sx_free(r);
}

sx_reference *sx_reference_load(const char *path, sx_status *st)
{
    sx_reference *r = NULL;
    hid_t f = -1;
    char **names = NULL, **cols = NULL, **vals = NULL;
    int64_t n_names = 0, n_cols = 0, n_vals = 0;
    char *file = NULL;
    if (!path) {
        sx_status_set(st, SX_EINVAL, "no reference given");
        return NULL;
    }
    if (sx_pl_is_dir(path) && sx_reference_is_scalex(path)) /* a folder SCALEX wrote */
        return sx_reference_load_scalex(path, st);
    file = sx_pl_is_dir(path) ? sx_pl_join(path, "reference.h5") : sx_strdup(path);
    if (!file) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    if (!sx_pl_exists(file)) {
        sx_status_set(st, SX_ENOTFOUND,
                      "reference '%s' not found: give an integrate output folder (it holds "
                      "reference.h5) or the path of a reference.h5", file);
        goto fail;
    }
    r = sx_calloc(1, sizeof *r);
    if (!r) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    r->path = file;
    file = NULL;
    f = sx_h5_open_ro(r->path, st);
    if (f < 0) goto fail;
    char *fmt = NULL;
    sx_status tmp;
    sx_status_clear(&tmp);
    if (sx_h5_attr_string(f, "reference", "format", &fmt, &tmp) != SX_OK || !fmt ||
        strcmp(fmt, REF_FORMAT) != 0) {
        sx_free(fmt);
        sx_status_set(st, SX_EFORMAT,
                      "'%s' is not a scalexd reference (no group 'reference' with "
                      "format=%s): use the reference.h5 written by scalex integrate", r->path,
                      REF_FORMAT);
        goto fail;
    }
    sx_free(fmt);
    if (sx_h5_read_strings(f, "reference/obs_names", &names, &n_names, st) != SX_OK) goto fail;
    int ndim;
    int64_t dims[8];
    if (sx_h5_shape(f, "reference/latent", &ndim, dims, st) != SX_OK) goto fail;
    if (ndim != 2 || dims[0] != n_names) {
        sx_status_set(st, SX_EFORMAT, "reference '%s': latent has shape %lld x %lld for %lld cells",
                      r->path, (long long)dims[0], (long long)(ndim > 1 ? dims[1] : 0),
                      (long long)n_names);
        goto fail;
    }
    r->n_cells = n_names;
    r->dim = (int)dims[1];
    int64_t cnt;
    if (sx_h5_read_f64(f, "reference/latent", &r->latent, &cnt, st) != SX_OK) goto fail;
    if (sx_h5_exists(f, "reference/umap")) {
        if (sx_h5_read_f32(f, "reference/umap", &r->umap, &cnt, st) != SX_OK) goto fail;
        if (cnt != 2 * n_names) {
            sx_status_set(st, SX_EFORMAT, "reference '%s': umap has %lld values for %lld cells",
                          r->path, (long long)cnt, (long long)n_names);
            goto fail;
        }
    }
    {
        double *v = NULL;
        int64_t nv = 0;
        if (sx_h5_attr_f64(f, "reference", "umap_a", &v, &nv, &tmp) == SX_OK && nv == 1)
            r->umap_a = v[0];
        sx_free(v);
        v = NULL;
        if (sx_h5_attr_f64(f, "reference", "umap_b", &v, &nv, &tmp) == SX_OK && nv == 1)
            r->umap_b = v[0];
        sx_free(v);
    }
    r->obs = sx_frame_new(n_names, (const char *const *)names, st);
    if (!r->obs) goto fail;
    if (sx_h5_read_strings(f, "reference/obs_columns", &cols, &n_cols, st) != SX_OK) goto fail;
    for (int64_t c = 0; c < n_cols; c++) {
        char p[512];
        snprintf(p, sizeof p, "reference/obs/%s", cols[c]);
        if (sx_h5_read_strings(f, p, &vals, &n_vals, st) != SX_OK) goto fail;
        if (n_vals != n_names) {
            sx_status_set(st, SX_EFORMAT, "reference '%s': obs column '%s' has %lld values for "
                          "%lld cells", r->path, cols[c], (long long)n_vals, (long long)n_names);
            goto fail;
        }
        /* categories in first-appearance order would depend on cell order; sorted is stable */
        if (sx_frame_add_categorical_from_strings(r->obs, cols[c], (const char *const *)vals, 1,
                                                  st) != SX_OK)
            goto fail;
        sx_h5_free_strings(vals, n_vals);
        vals = NULL;
    }
    H5Fclose(f);
    f = -1;
    r->model = sx_nn_model_load(r->path, st);
    if (!r->model) goto fail;
    sx_h5_free_strings(names, n_names);
    sx_h5_free_strings(cols, n_cols);
    return r;
fail:
    if (f >= 0) H5Fclose(f);
    sx_h5_free_strings(names, n_names);
    sx_h5_free_strings(cols, n_cols);
    if (vals) sx_h5_free_strings(vals, n_vals);
    sx_free(file);
    sx_reference_free(r);
    return NULL;
}
