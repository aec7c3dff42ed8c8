/* sx_nn_scalex — SCALEX's checkpoint (model.pt + config.pt) into an sx_nn_model. */
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_nn_scalex.h"
#include "sx_torch.h"

/* SCALEX's VAE: enc = [['fc', H, 1, 'relu'], ['fc', Z, '', '']],
 * dec = [['fc', G, n_domain, 'sigmoid']]. Anything else is another network. */
static int check_arch(const sx_scalex_config *c, sx_nn_config *cfg, sx_status *st)
{
    const sx_torch_layer *e = c->enc, *d = c->dec;
    if (c->n_enc != 2 || strcmp(e[0].kind, "fc") || e[0].norm != 1 || strcmp(e[0].act, "relu") ||
        strcmp(e[1].kind, "fc") || e[1].norm != 0 || e[1].act[0])
        return sx_status_set(st, SX_EUNSUPPORTED, "config.pt: the encoder is not SCALEX's "
                             "default [['fc', H, 1, 'relu'], ['fc', Z, '', '']]; this network "
                             "is not supported");
    if (c->n_dec != 1 || strcmp(d[0].kind, "fc") || d[0].norm != c->n_domain ||
        strcmp(d[0].act, "sigmoid"))
        return sx_status_set(st, SX_EUNSUPPORTED, "config.pt: the decoder is not SCALEX's "
                             "default [['fc', n_genes, n_domain, 'sigmoid']]; this network is "
                             "not supported");
    if (c->n_genes < 1 || d[0].width != c->n_genes)
        return sx_status_set(st, SX_EFORMAT, "config.pt: %lld genes but a decoder of width "
                             "%lld; the config is inconsistent", (long long)c->n_genes,
                             (long long)d[0].width);
    sx_nn_config_default(cfg, c->n_genes, c->n_domain);
    cfg->n_hidden = e[0].width;
    cfg->n_latent = e[1].width;
    return SX_OK;
}

/* One tensor of the model from the checkpoint, shape checked, values exact. */
static int copy_tensor(sx_nn_model *m, const sx_torch *t, const char *name, sx_status *st)
{
    int i = sx_torch_find(t, name), nd;
    int64_t dims[2];
    sx_torch_info in;
    if (i < 0)
        return sx_status_set(st, SX_EFORMAT, "model.pt lacks '%s' that config.pt's network "
                             "needs; the checkpoint does not match its config", name);
    sx_torch_info_get(t, i, &in);
    int rc = sx_nn_model_tensor_shape(m, name, &nd, dims, st);
    if (rc != SX_OK) return rc;
    int same = in.ndim == nd;
    for (int d = 0; same && d < nd; d++) same = in.shape[d] == dims[d];
    if (!same)
        return sx_status_set(st, SX_EFORMAT, "model.pt: '%s' has a shape that config.pt's "
                             "network does not have; the checkpoint does not match its config",
                             name);
    double *v = sx_mallocarray((size_t)(in.numel ? in.numel : 1), sizeof *v);
    if (!v) return sx_status_set(st, SX_ENOMEM, "out of memory");
    rc = sx_torch_tensor_f64(t, i, v, in.numel, st);
    if (rc == SX_OK) rc = sx_nn_model_set(m, name, v, in.numel, st);
    sx_free(v);
    return rc;
}

/* Every model tensor from the checkpoint, and no checkpoint tensor left over. */
static int copy_all(sx_nn_model *m, const sx_torch *t, sx_status *st)
{
    for (int i = 0; i < sx_nn_model_n_tensors(m); i++) {
        int rc = copy_tensor(m, t, sx_nn_model_tensor_name(m, i), st);
        if (rc != SX_OK) return rc;
    }
    if (sx_torch_n_tensors(t) != sx_nn_model_n_tensors(m)) {
        for (int i = 0; i < sx_torch_n_tensors(t); i++) {
            sx_torch_info in;
            sx_torch_info_get(t, i, &in);
            if (sx_nn_model_tensor_shape(m, in.name, &(int){0}, (int64_t[2]){0}, NULL) != SX_OK)
                return sx_status_set(st, SX_EUNSUPPORTED, "model.pt has '%.100s', which "
                                     "SCALEX's network does not; this network is not supported",
                                     in.name);
        }
    }
    return SX_OK;
}

/* float64 only when the checkpoint's weights are float64 (model.double() before saving). */
static int checkpoint_dtype(const sx_torch *t)
{
    sx_torch_info in;
    int i = sx_torch_find(t, "encoder.enc.net.0.fc.weight");
    return i >= 0 && sx_torch_info_get(t, i, &in) == SX_OK && in.dtype == SX_TORCH_F64
               ? SX_NN_F64 : SX_NN_F32;
}

sx_nn_model *sx_nn_model_from_torch(const char *model_pt, const char *config_pt, sx_status *st)
{
    sx_scalex_config c;
    sx_nn_config cfg;
    sx_nn_model *m = NULL;
    sx_torch *t = NULL;
    if (sx_scalex_config_read(config_pt, &c, st) != SX_OK) return NULL;
    if (check_arch(&c, &cfg, st) != SX_OK || !(t = sx_torch_open(model_pt, st))) goto fail;
    cfg.dtype = checkpoint_dtype(t);
    if (!(m = sx_nn_model_new(&cfg, 0, st))) goto fail;
    /* the origin travels with the model (and into a reference.h5 made from it): SCALEX's
     * folders record no SCALEX version, so the source is all we can say */
    if (copy_all(m, t, st) != SX_OK ||
        sx_nn_model_set_genes(m, (const char *const *)c.genes, c.n_genes, st) != SX_OK ||
        sx_nn_model_set_prep_json(m, "{\"source\": \"scalex\", \"checkpoint\": \"pytorch\"}",
                                  st) != SX_OK)
        goto fail;
    sx_torch_close(t);
    sx_scalex_config_clear(&c);
    return m;
fail:
    sx_nn_model_free(m);
    sx_torch_close(t);
    sx_scalex_config_clear(&c);
    return NULL;
}

sx_nn_model *sx_nn_model_from_scalex(const char *folder, sx_status *st)
{
    size_t n = strlen(folder) + 32;
    char *mp = sx_malloc(n), *cp = sx_malloc(n);
    sx_nn_model *m = NULL;
    if (!mp || !cp) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
    } else {
        snprintf(mp, n, "%s/checkpoint/model.pt", folder);
        snprintf(cp, n, "%s/checkpoint/config.pt", folder);
        m = sx_nn_model_from_torch(mp, cp, st);
    }
    sx_free(mp);
    sx_free(cp);
    return m;
}
