/* sx_nn_io — the scalexd model file (HDF5): state_dict tensors under SCALEX's key names plus
 * the metadata a reference needs (genes, domains, scaling, preprocessing, training log). */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_h5.h"
#include "sx_nn_internal.h"

#define FORMAT_NAME "scalexd-model"

/* Scalar attribute of file type ft from one value of memory type mt. */
static int attr_scalar(hid_t obj, const char *name, hid_t ft, hid_t mt, const void *v,
                       sx_status *st)
{
    hid_t sp = H5Screate(H5S_SCALAR), a = -1;
    int rc = SX_OK;
    if (sp < 0) goto bad;
    a = H5Acreate2(obj, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, mt, v) < 0) goto bad;
    goto done;
bad:
    rc = sx_status_set(st, SX_EIO, "cannot write attribute '%s' of the model file", name);
done:
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return rc;
}

static int attr_i64(hid_t obj, const char *name, int64_t v, sx_status *st)
{
    return attr_scalar(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, st);
}

static int attr_f64(hid_t obj, const char *name, double v, sx_status *st)
{
    return attr_scalar(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, st);
}

/* 0-d int64 dataset, as h5py writes a PyTorch 0-d tensor. */
static int scalar_i64(hid_t loc, const char *name, int64_t v, sx_status *st)
{
    hid_t sp = H5Screate(H5S_SCALAR), d = -1;
    int rc = SX_OK;
    if (sp < 0) goto bad;
    d = H5Dcreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) < 0) goto bad;
    goto done;
bad:
    rc = sx_status_set(st, SX_EIO, "cannot write '%s' into the model file", name);
done:
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    return rc;
}

int sx_nn_model_save(const sx_nn_model *m, const char *path, sx_status *st)
{
    sx_h5_quiet();
    hid_t f = -1, g = -1, lg = -1;
    double *buf = NULL;
    float *fb = NULL;
    int rc;
    f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return sx_status_set(st, SX_EIO, "cannot create model file '%s'", path);
    if ((rc = sx_h5_set_attr_string(f, "format", FORMAT_NAME, st)) ||
        (rc = attr_i64(f, "format_version", SX_NN_FORMAT_VERSION, st)) ||
        (rc = sx_h5_set_attr_string(f, "dtype", m->dtype == SX_NN_F32 ? "float32" : "float64",
                                    st)) ||
        (rc = sx_h5_set_attr_string(f, "created_by", "scalexd " SX_VERSION, st)) ||
        (rc = attr_i64(f, "n_genes", m->G, st)) || (rc = attr_i64(f, "n_hidden", m->H, st)) ||
        (rc = attr_i64(f, "n_latent", m->Z, st)) || (rc = attr_i64(f, "n_domains", m->D, st)))
        goto fail;
    g = H5Gcreate2(f, "state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        rc = sx_status_set(st, SX_EIO, "cannot create group 'state' in '%s'", path);
        goto fail;
    }
    int64_t maxn = 1;
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tens[i].numel > maxn) maxn = m->tens[i].numel;
    buf = sx_mallocarray((size_t)maxn, sizeof(double));
    fb = sx_mallocarray((size_t)maxn, sizeof(float));
    if (!buf || !fb) {
        rc = sx_status_set(st, SX_ENOMEM, "cannot allocate a tensor buffer for saving");
        goto fail;
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const sx_nn_tensor *t = &m->tens[i];
        if (t->kind == SX_TK_NBT) {
            rc = scalar_i64(g, t->name, m->nbt[t->off], st);
        } else {
            if ((rc = sx_nn_model_get(m, t->name, buf, t->numel, st))) goto fail;
            int64_t d1 = t->ndim == 2 ? t->dims[1] : 0;
            if (m->dtype == SX_NN_F32) {
                for (int64_t j = 0; j < t->numel; j++) fb[j] = (float)buf[j];
                rc = sx_h5_write_f32(g, t->name, fb, t->dims[0], d1, 0, st);
            } else {
                rc = sx_h5_write_f64(g, t->name, buf, t->dims[0], d1, 0, st);
            }
        }
        if (rc) goto fail;
    }
    if (m->genes &&
        (rc = sx_h5_write_strings(f, "genes", (const char *const *)m->genes, m->n_genes_meta, 4,
                                  st)))
        goto fail;
    if (m->domains &&
        (rc = sx_h5_write_strings(f, "domains", (const char *const *)m->domains,
                                  m->n_domain_names, 0, st)))
        goto fail;
    if (m->scale && (rc = sx_h5_write_f64(f, "scale", m->scale, m->D, m->scale_width, 4, st)))
        goto fail;
    if (m->prep_json && (rc = sx_h5_set_attr_string(f, "preprocess", m->prep_json, st)))
        goto fail;
    lg = H5Gcreate2(f, "train_log", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (lg < 0) {
        rc = sx_status_set(st, SX_EIO, "cannot create group 'train_log' in '%s'", path);
        goto fail;
    }
    if ((rc = attr_i64(lg, "n_epochs", m->log_n, st)) ||
        (rc = attr_i64(lg, "steps", m->log_steps, st)) ||
        (rc = attr_i64(lg, "best_epoch", m->log_best_epoch, st)) ||
        (rc = attr_f64(lg, "best_loss", m->log_best_loss, st)) ||
        (rc = attr_i64(lg, "early_stopped", m->log_early_stopped, st)) ||
        (rc = attr_i64(lg, "seed", (int64_t)m->log_seed, st)))
        goto fail;
    if (m->log_n > 0 &&
        ((rc = sx_h5_write_f64(lg, "recon_loss", m->log_recon, m->log_n, 0, 0, st)) ||
         (rc = sx_h5_write_f64(lg, "kl_loss", m->log_kl, m->log_n, 0, 0, st))))
        goto fail;
    rc = SX_OK;
fail:
    sx_free(buf);
    sx_free(fb);
    if (lg >= 0) H5Gclose(lg);
    if (g >= 0) H5Gclose(g);
    if (H5Fclose(f) < 0 && rc == SX_OK)
        rc = sx_status_set(st, SX_EIO, "cannot finish writing model file '%s'", path);
    if (rc) sx_status_prefix(st, "saving model '%s'", path);
    return rc;
}

static int read_attr1_i64(hid_t f, const char *loc, const char *name, int64_t *v, sx_status *st)
{
    int64_t *a = NULL, n = 0;
    int rc = sx_h5_attr_i64(f, loc, name, &a, &n, st);
    if (rc) return rc;
    if (n != 1) {
        sx_free(a);
        return sx_status_set(st, SX_EFORMAT, "attribute '%s' must be one integer", name);
    }
    *v = a[0];
    sx_free(a);
    return SX_OK;
}

sx_nn_model *sx_nn_model_load(const char *path, sx_status *st)
{
    sx_h5_quiet();
    sx_nn_model *m = NULL;
    char *fmt = NULL, *dt = NULL, *prep = NULL;
    char **names = NULL;
    int64_t n_names = 0;
    double *v = NULL;
    int64_t *iv = NULL;
    int rc;
    hid_t f = sx_h5_open_ro(path, st);
    if (f < 0) return NULL;
    if (sx_h5_attr_string(f, ".", "format", &fmt, st) || strcmp(fmt, FORMAT_NAME) != 0) {
        sx_status_set(st, SX_EFORMAT, "'%s' is not a scalexd model file (root attribute "
                      "format is not \"" FORMAT_NAME "\")", path);
        goto fail;
    }
    int64_t ver = 0, G, H, Z, D;
    if (read_attr1_i64(f, ".", "format_version", &ver, st)) goto fail;
    if (ver < 1 || ver > SX_NN_FORMAT_VERSION) {
        sx_status_set(st, SX_EUNSUPPORTED, "model file '%s' has format version %lld; this build "
                      "reads version 1..%d (upgrade scalexd or re-export the model)", path,
                      (long long)ver, SX_NN_FORMAT_VERSION);
        goto fail;
    }
    if (read_attr1_i64(f, ".", "n_genes", &G, st) || read_attr1_i64(f, ".", "n_hidden", &H, st) ||
        read_attr1_i64(f, ".", "n_latent", &Z, st) || read_attr1_i64(f, ".", "n_domains", &D, st))
        goto fail;
    if (sx_h5_attr_string(f, ".", "dtype", &dt, st)) goto fail;
    sx_nn_config c = {G, H, Z, D, SX_NN_F32};
    if (strcmp(dt, "float64") == 0)
        c.dtype = SX_NN_F64;
    else if (strcmp(dt, "float32") != 0) {
        sx_status_set(st, SX_EFORMAT, "unknown dtype '%s'", dt);
        goto fail;
    }
    m = sx_nn_model_alloc(&c, st);
    if (!m) goto fail;
    for (int i = 0; i < m->n_tensors; i++) {
        const sx_nn_tensor *t = &m->tens[i];
        char p[112];
        snprintf(p, sizeof p, "state/%s", t->name);
        int nd = 0;
        int64_t dims[8];
        if (!sx_h5_exists(f, p)) {
            sx_status_set(st, SX_EFORMAT, "tensor '%s' is missing", t->name);
            goto fail;
        }
        if (sx_h5_shape(f, p, &nd, dims, st)) goto fail;
        int ok = nd == t->ndim && (nd < 1 || dims[0] == t->dims[0]) &&
                 (nd < 2 || dims[1] == t->dims[1]);
        if (!ok) {
            sx_status_set(st, SX_EFORMAT, "tensor '%s' has shape %s%lld x %lld, expected %lld x "
                          "%lld for a %lld-gene, %lld-hidden, %lld-latent, %lld-domain network",
                          t->name, nd == t->ndim ? "" : "(rank differs) ",
                          nd > 0 ? (long long)dims[0] : 1LL, nd > 1 ? (long long)dims[1] : 1LL,
                          (long long)t->dims[0], (long long)t->dims[1], (long long)G,
                          (long long)H, (long long)Z, (long long)D);
            goto fail;
        }
        int64_t n = 0;
        if (t->kind == SX_TK_NBT) {
            if (sx_h5_read_i64(f, p, &iv, &n, st)) goto fail;
            m->nbt[t->off] = iv[0];
            sx_free(iv);
            iv = NULL;
        } else {
            if (sx_h5_read_f64(f, p, &v, &n, st)) goto fail;
            if (n != t->numel || sx_nn_model_set(m, t->name, v, n, st)) goto fail;
            sx_free(v);
            v = NULL;
        }
    }
    if (sx_h5_exists(f, "genes")) {
        if (sx_h5_read_strings(f, "genes", &names, &n_names, st) ||
            sx_nn_model_set_genes(m, (const char *const *)names, n_names, st))
            goto fail;
        sx_h5_free_strings(names, n_names);
        names = NULL;
    }
    if (sx_h5_exists(f, "domains")) {
        if (sx_h5_read_strings(f, "domains", &names, &n_names, st) ||
            sx_nn_model_set_domains(m, (const char *const *)names, n_names, st))
            goto fail;
        sx_h5_free_strings(names, n_names);
        names = NULL;
    }
    if (sx_h5_exists(f, "scale")) {
        int nd = 0;
        int64_t dims[8], n = 0;
        if (sx_h5_shape(f, "scale", &nd, dims, st)) goto fail;
        if (nd != 2 || dims[0] != D) {
            sx_status_set(st, SX_EFORMAT, "'scale' must be %lld x width", (long long)D);
            goto fail;
        }
        if (sx_h5_read_f64(f, "scale", &v, &n, st) || sx_nn_model_set_scale(m, v, dims[1], st))
            goto fail;
        sx_free(v);
        v = NULL;
    }
    rc = sx_h5_attr_string(f, ".", "preprocess", &prep, st);
    if (rc == SX_OK) {
        if (sx_nn_model_set_prep_json(m, prep, st)) goto fail;
    } else if (rc != SX_ENOTFOUND) {
        goto fail;
    }
    if (st) sx_status_clear(st);
    if (sx_h5_exists(f, "train_log")) {
        int64_t ne = 0, steps = 0, be = 0, es = 0, seed = 0, n = 0;
        double *bl = NULL;
        if (read_attr1_i64(f, "train_log", "n_epochs", &ne, st) ||
            read_attr1_i64(f, "train_log", "steps", &steps, st) ||
            read_attr1_i64(f, "train_log", "best_epoch", &be, st) ||
            read_attr1_i64(f, "train_log", "early_stopped", &es, st) ||
            read_attr1_i64(f, "train_log", "seed", &seed, st) ||
            sx_h5_attr_f64(f, "train_log", "best_loss", &bl, &n, st))
            goto fail;
        m->log_best_loss = n > 0 ? bl[0] : 0;
        sx_free(bl);
        if (ne > 0) {
            if (sx_h5_read_f64(f, "train_log/recon_loss", &m->log_recon, &n, st) || n != ne ||
                sx_h5_read_f64(f, "train_log/kl_loss", &m->log_kl, &n, st) || n != ne) {
                sx_status_set(st, SX_EFORMAT, "train_log arrays do not have %lld epochs",
                              (long long)ne);
                goto fail;
            }
        }
        m->log_n = ne;
        m->log_steps = steps;
        m->log_best_epoch = be;
        m->log_early_stopped = (int)es;
        m->log_seed = (uint64_t)seed;
    }
    sx_free(fmt);
    sx_free(dt);
    sx_free(prep);
    H5Fclose(f);
    return m;
fail:
    if (st && st->code == SX_OK) sx_status_set(st, SX_EFORMAT, "inconsistent model file");
    sx_status_prefix(st, "loading model '%s'", path);
    sx_h5_free_strings(names, n_names);
    sx_free(v);
    sx_free(iv);
    sx_free(fmt);
    sx_free(dt);
    sx_free(prep);
    sx_nn_model_free(m);
    H5Fclose(f);
    return NULL;
}
