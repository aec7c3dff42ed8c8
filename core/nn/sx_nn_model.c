/* sx_nn_model — the network's tensors (state_dict naming), init, metadata slots, RNG. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_nn_internal.h"

/* ---------------- RNG ---------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sx_nn_rng_seed(sx_nn_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sx_nn_rng_next(sx_nn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

void sx_nn_rng_jump(sx_nn_rng *r)
{
    static const uint64_t J[] = {0x180ec6d33cfd0abaULL, 0xd5a61266f0c9392cULL,
                                 0xa9582618e03fc9aaULL, 0x39abdc4529b1661cULL};
    uint64_t a[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 64; b++) {
            if (J[i] & ((uint64_t)1 << b))
                for (int k = 0; k < 4; k++) a[k] ^= r->s[k];
            sx_nn_rng_next(r);
        }
    memcpy(r->s, a, sizeof a);
}

double sx_nn_rng_uniform(sx_nn_rng *r) { return (sx_nn_rng_next(r) >> 11) * 0x1.0p-53; }

double sx_nn_rng_normal(sx_nn_rng *r)
{
    /* Box-Muller; one value per call keeps the stream position independent of caching */
    double u1, u2;
    do u1 = sx_nn_rng_uniform(r);
    while (u1 <= 0);
    u2 = sx_nn_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint64_t sx_nn_rng_below(sx_nn_rng *r, uint64_t n)
{
    /* rejection of the biased tail (Lemire would be faster; this runs once per cell/epoch) */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, v;
    do v = sx_nn_rng_next(r);
    while (v >= lim);
    return v % n;
}

/* ---------------- tensor table ---------------- */

static void add_tensor(sx_nn_model *m, const char *name, int kind, int ndim, int64_t d0,
                       int64_t d1, int64_t off, int transposed, int pidx)
{
    sx_nn_tensor *t = &m->tens[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = kind;
    t->ndim = ndim;
    t->dims[0] = d0;
    t->dims[1] = d1;
    t->numel = ndim == 0 ? 1 : ndim == 1 ? d0 : d0 * d1;
    t->off = off;
    t->transposed = transposed;
    t->pidx = pidx;
    if (kind == SX_TK_PARAM) {
        m->param_tensor[pidx] = m->n_tensors - 1;
        m->param_off[pidx] = off;
        m->param_n[pidx] = t->numel;
    }
}

static int build_table(sx_nn_model *m, sx_status *st)
{
    const int64_t G = m->G, H = m->H, Z = m->Z, D = m->D;
    m->n_params = SX_P_DSBN0 + 2 * (int)D;
    int nt = 7 + 4 + 2 + 5 * (int)D;
    m->tens = sx_calloc((size_t)nt, sizeof *m->tens);
    m->param_tensor = sx_calloc((size_t)m->n_params, sizeof(int));
    m->param_off = sx_calloc((size_t)m->n_params, sizeof(int64_t));
    m->param_n = sx_calloc((size_t)m->n_params, sizeof(int64_t));
    if (!m->tens || !m->param_tensor || !m->param_off || !m->param_n)
        return sx_status_set(st, SX_ENOMEM, "cannot allocate the network's tensor table");
    int64_t o = 0;
    add_tensor(m, "encoder.enc.net.0.fc.weight", SX_TK_PARAM, 2, H, G, o, 1, SX_P_W1);
    o += H * G;
    add_tensor(m, "encoder.enc.net.0.fc.bias", SX_TK_PARAM, 1, H, 0, o, 0, SX_P_B1);
    o += H;
    add_tensor(m, "encoder.enc.net.0.norm.weight", SX_TK_PARAM, 1, H, 0, o, 0, SX_P_G1);
    o += H;
    add_tensor(m, "encoder.enc.net.0.norm.bias", SX_TK_PARAM, 1, H, 0, o, 0, SX_P_BE1);
    o += H;
    add_tensor(m, "encoder.enc.net.0.norm.running_mean", SX_TK_BUF, 1, H, 0, 0, 0, -1);
    add_tensor(m, "encoder.enc.net.0.norm.running_var", SX_TK_BUF, 1, H, 0, H, 0, -1);
    add_tensor(m, "encoder.enc.net.0.norm.num_batches_tracked", SX_TK_NBT, 0, 0, 0, 0, 0, -1);
    add_tensor(m, "encoder.mu_enc.net.0.fc.weight", SX_TK_PARAM, 2, Z, H, o, 0, SX_P_WMU);
    o += Z * H;
    add_tensor(m, "encoder.mu_enc.net.0.fc.bias", SX_TK_PARAM, 1, Z, 0, o, 0, SX_P_BMU);
    o += Z;
    add_tensor(m, "encoder.var_enc.net.0.fc.weight", SX_TK_PARAM, 2, Z, H, o, 0, SX_P_WV);
    o += Z * H;
    add_tensor(m, "encoder.var_enc.net.0.fc.bias", SX_TK_PARAM, 1, Z, 0, o, 0, SX_P_BV);
    o += Z;
    add_tensor(m, "decoder.net.0.fc.weight", SX_TK_PARAM, 2, G, Z, o, 0, SX_P_WD);
    o += G * Z;
    add_tensor(m, "decoder.net.0.fc.bias", SX_TK_PARAM, 1, G, 0, o, 0, SX_P_BD);
    o += G;
    for (int64_t d = 0; d < D; d++) {
        char pre[48], nm[80];
        /* D == 1: SCALEX builds a plain BatchNorm1d, whose keys have no "bns.d" */
        if (D == 1)
            snprintf(pre, sizeof pre, "decoder.net.0.norm");
        else
            snprintf(pre, sizeof pre, "decoder.net.0.norm.bns.%lld", (long long)d);
        int pg = SX_P_DSBN0 + 2 * (int)d;
        snprintf(nm, sizeof nm, "%s.weight", pre);
        add_tensor(m, nm, SX_TK_PARAM, 1, G, 0, o, 0, pg);
        o += G;
        snprintf(nm, sizeof nm, "%s.bias", pre);
        add_tensor(m, nm, SX_TK_PARAM, 1, G, 0, o, 0, pg + 1);
        o += G;
        snprintf(nm, sizeof nm, "%s.running_mean", pre);
        add_tensor(m, nm, SX_TK_BUF, 1, G, 0, sx_nn_boff_rm(m, d), 0, -1);
        snprintf(nm, sizeof nm, "%s.running_var", pre);
        add_tensor(m, nm, SX_TK_BUF, 1, G, 0, sx_nn_boff_rv(m, d), 0, -1);
        snprintf(nm, sizeof nm, "%s.num_batches_tracked", pre);
        add_tensor(m, nm, SX_TK_NBT, 0, 0, 0, 1 + d, 0, -1);
    }
    m->n_param_el = o;
    m->n_buf_el = 2 * H + 2 * D * G;
    return SX_OK;
}

void sx_nn_config_default(sx_nn_config *c, int64_t n_genes, int64_t n_domains)
{
    c->n_genes = n_genes;
    c->n_hidden = 1024;
    c->n_latent = 10;
    c->n_domains = n_domains;
    c->dtype = SX_NN_F32;
}

sx_nn_model *sx_nn_model_alloc(const sx_nn_config *cfg, sx_status *st)
{
    if (!cfg || cfg->n_genes < 1 || cfg->n_hidden < 1 || cfg->n_latent < 1 ||
        cfg->n_domains < 1 || (cfg->dtype != SX_NN_F32 && cfg->dtype != SX_NN_F64)) {
        sx_status_set(st, SX_EINVAL,
                      "network sizes must be positive (genes %lld, hidden %lld, latent %lld, "
                      "domains %lld) and dtype float32 or float64",
                      cfg ? (long long)cfg->n_genes : 0LL, cfg ? (long long)cfg->n_hidden : 0LL,
                      cfg ? (long long)cfg->n_latent : 0LL,
                      cfg ? (long long)cfg->n_domains : 0LL);
        return NULL;
    }
    if (cfg->n_genes > INT32_MAX / 2 || cfg->n_hidden > 1 << 20 || cfg->n_latent > 1 << 16 ||
        cfg->n_domains > 1 << 16 || cfg->n_genes * cfg->n_hidden > ((int64_t)1 << 31)) {
        sx_status_set(st, SX_ELIMIT, "network of %lld genes x %lld hidden units is too large",
                      (long long)cfg->n_genes, (long long)cfg->n_hidden);
        return NULL;
    }
    sx_nn_model *m = sx_calloc(1, sizeof *m);
    if (!m) goto oom;
    m->G = cfg->n_genes;
    m->H = cfg->n_hidden;
    m->Z = cfg->n_latent;
    m->D = cfg->n_domains;
    m->dtype = cfg->dtype;
    m->esz = cfg->dtype == SX_NN_F32 ? sizeof(float) : sizeof(double);
    if (build_table(m, st) != SX_OK) goto fail;
    m->param = sx_calloc((size_t)m->n_param_el, m->esz);
    m->buf = sx_calloc((size_t)m->n_buf_el, m->esz);
    m->nbt = sx_calloc((size_t)m->D + 1, sizeof(int64_t));
    if (!m->param || !m->buf || !m->nbt) goto oom;
    return m;
oom:
    sx_status_set(st, SX_ENOMEM, "cannot allocate a network of %lld genes x %lld hidden units",
                  (long long)cfg->n_genes, (long long)cfg->n_hidden);
fail:
    sx_nn_model_free(m);
    return NULL;
}

sx_nn_model *sx_nn_model_new(const sx_nn_config *cfg, uint64_t seed, sx_status *st)
{
    sx_nn_model *m = sx_nn_model_alloc(cfg, st);
    if (!m) return NULL;
    sx_nn_rng r;
    sx_nn_rng_seed(&r, seed);
    if (m->dtype == SX_NN_F32)
        sx_nn_init_f32(m, &r);
    else
        sx_nn_init_f64(m, &r);
    return m;
}

sx_nn_model *sx_nn_model_new_zero(const sx_nn_config *cfg, sx_status *st)
{
    return sx_nn_model_alloc(cfg, st);
}

static void free_strings(char **s, int64_t n)
{
    if (!s) return;
    for (int64_t i = 0; i < n; i++) sx_free(s[i]);
    sx_free(s);
}

void sx_nn_model_free(sx_nn_model *m)
{
    if (!m) return;
    sx_free(m->tens);
    sx_free(m->param_tensor);
    sx_free(m->param_off);
    sx_free(m->param_n);
    sx_free(m->param);
    sx_free(m->buf);
    sx_free(m->nbt);
    free_strings(m->genes, m->n_genes_meta);
    free_strings(m->domains, m->n_domain_names);
    sx_free(m->scale);
    sx_free(m->prep_json);
    sx_free(m->log_recon);
    sx_free(m->log_kl);
    sx_free(m);
}

void sx_nn_model_get_config(const sx_nn_model *m, sx_nn_config *out)
{
    out->n_genes = m->G;
    out->n_hidden = m->H;
    out->n_latent = m->Z;
    out->n_domains = m->D;
    out->dtype = m->dtype;
}

int sx_nn_model_n_tensors(const sx_nn_model *m) { return m->n_tensors; }

const char *sx_nn_model_tensor_name(const sx_nn_model *m, int i)
{
    return i >= 0 && i < m->n_tensors ? m->tens[i].name : NULL;
}

const sx_nn_tensor *sx_nn_find_tensor(const sx_nn_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tens[i].name, name) == 0) return &m->tens[i];
    return NULL;
}

int sx_nn_param_index(const sx_nn_model *m, const char *name)
{
    const sx_nn_tensor *t = sx_nn_find_tensor(m, name);
    return t && t->kind == SX_TK_PARAM ? t->pidx : -1;
}

int sx_nn_model_tensor_shape(const sx_nn_model *m, const char *name, int *ndim, int64_t dims[2],
                             sx_status *st)
{
    const sx_nn_tensor *t = sx_nn_find_tensor(m, name);
    if (!t) return sx_status_set(st, SX_ENOTFOUND, "the network has no tensor '%s'", name);
    *ndim = t->ndim;
    dims[0] = t->dims[0];
    dims[1] = t->dims[1];
    return SX_OK;
}

static inline double ld(const void *a, int64_t i, int dtype)
{
    return dtype == SX_NN_F32 ? (double)((const float *)a)[i] : ((const double *)a)[i];
}

static inline void st_(void *a, int64_t i, int dtype, double v)
{
    if (dtype == SX_NN_F32)
        ((float *)a)[i] = (float)v;
    else
        ((double *)a)[i] = v;
}

/* Element j (PyTorch row-major index) of a tensor -> index in its storage. */
static inline int64_t storage_index(const sx_nn_tensor *t, int64_t j)
{
    if (!t->transposed) return t->off + j;
    int64_t r = j / t->dims[1], c = j % t->dims[1]; /* PyTorch (H x G): r = h, c = g */
    return t->off + sx_nn_w1_index(t->dims[1], t->dims[0], c, r);
}

int sx_nn_model_get(const sx_nn_model *m, const char *name, double *out, int64_t n,
                    sx_status *st)
{
    const sx_nn_tensor *t = sx_nn_find_tensor(m, name);
    if (!t) return sx_status_set(st, SX_ENOTFOUND, "the network has no tensor '%s'", name);
    if (n != t->numel)
        return sx_status_set(st, SX_EINVAL, "tensor '%s' has %lld elements, not %lld", name,
                             (long long)t->numel, (long long)n);
    if (t->kind == SX_TK_NBT) {
        out[0] = (double)m->nbt[t->off];
        return SX_OK;
    }
    const void *base = t->kind == SX_TK_PARAM ? m->param : m->buf;
    for (int64_t j = 0; j < n; j++) out[j] = ld(base, storage_index(t, j), m->dtype);
    return SX_OK;
}

int sx_nn_model_set(sx_nn_model *m, const char *name, const double *v, int64_t n,
                    sx_status *st)
{
    const sx_nn_tensor *t = sx_nn_find_tensor(m, name);
    if (!t) return sx_status_set(st, SX_ENOTFOUND, "the network has no tensor '%s'", name);
    if (n != t->numel)
        return sx_status_set(st, SX_EINVAL, "tensor '%s' has %lld elements, not %lld", name,
                             (long long)t->numel, (long long)n);
    if (t->kind == SX_TK_NBT) {
        if (!(v[0] >= 0) || v[0] > 9e15)
            return sx_status_set(st, SX_EDATA, "'%s' must be a non-negative count", name);
        m->nbt[t->off] = (int64_t)v[0];
        return SX_OK;
    }
    void *base = t->kind == SX_TK_PARAM ? m->param : m->buf;
    for (int64_t j = 0; j < n; j++) st_(base, storage_index(t, j), m->dtype, v[j]);
    return SX_OK;
}

static int copy_strings(char ***dst, int64_t *dn, const char *const *src, int64_t n,
                        sx_status *st)
{
    char **s = NULL;
    if (src && n > 0) {
        s = sx_calloc((size_t)n, sizeof *s);
        if (!s) goto oom;
        for (int64_t i = 0; i < n; i++) {
            s[i] = sx_strdup(src[i] ? src[i] : "");
            if (!s[i]) {
                free_strings(s, n);
                goto oom;
            }
        }
    }
    free_strings(*dst, *dn);
    *dst = s;
    *dn = s ? n : 0;
    return SX_OK;
oom:
    return sx_status_set(st, SX_ENOMEM, "cannot copy %lld names into the model", (long long)n);
}

int sx_nn_model_set_genes(sx_nn_model *m, const char *const *genes, int64_t n, sx_status *st)
{
    if (genes && n != m->G)
        return sx_status_set(st, SX_EINVAL, "gene list has %lld names but the network has %lld "
                             "inputs", (long long)n, (long long)m->G);
    return copy_strings(&m->genes, &m->n_genes_meta, genes, n, st);
}

int sx_nn_model_set_domains(sx_nn_model *m, const char *const *names, int64_t n, sx_status *st)
{
    if (names && n != m->D)
        return sx_status_set(st, SX_EINVAL, "%lld domain names given but the network has %lld "
                             "domains", (long long)n, (long long)m->D);
    return copy_strings(&m->domains, &m->n_domain_names, names, n, st);
}

int sx_nn_model_set_scale(sx_nn_model *m, const double *v, int64_t width, sx_status *st)
{
    double *c = NULL;
    if (v && width > 0) {
        c = sx_mallocarray((size_t)(m->D * width), sizeof(double));
        if (!c) return sx_status_set(st, SX_ENOMEM, "cannot copy the scale factors");
        memcpy(c, v, (size_t)(m->D * width) * sizeof(double));
    }
    sx_free(m->scale);
    m->scale = c;
    m->scale_width = c ? width : 0;
    return SX_OK;
}

int sx_nn_model_set_prep_json(sx_nn_model *m, const char *json, sx_status *st)
{
    char *c = NULL;
    if (json && !(c = sx_strdup(json)))
        return sx_status_set(st, SX_ENOMEM, "cannot copy the preprocessing settings");
    sx_free(m->prep_json);
    m->prep_json = c;
    return SX_OK;
}

const char *const *sx_nn_model_genes(const sx_nn_model *m, int64_t *n)
{
    if (n) *n = m->n_genes_meta;
    return (const char *const *)m->genes;
}

const char *const *sx_nn_model_domains(const sx_nn_model *m, int64_t *n)
{
    if (n) *n = m->n_domain_names;
    return (const char *const *)m->domains;
}

const double *sx_nn_model_scale(const sx_nn_model *m, int64_t *width)
{
    if (width) *width = m->scale_width;
    return m->scale;
}

const char *sx_nn_model_prep_json(const sx_nn_model *m) { return m->prep_json; }

void sx_nn_model_train_log(const sx_nn_model *m, sx_nn_train_log *out)
{
    out->n_epochs = m->log_n;
    out->recon = m->log_recon;
    out->kl = m->log_kl;
    out->steps = m->log_steps;
    out->best_epoch = m->log_best_epoch;
    out->best_loss = m->log_best_loss;
    out->early_stopped = m->log_early_stopped;
    out->seed = m->log_seed;
}

sx_nn_model *sx_nn_model_clone(const sx_nn_model *src, int dtype, sx_status *st)
{
    sx_nn_config c;
    sx_nn_model_get_config(src, &c);
    c.dtype = dtype;
    sx_nn_model *m = sx_nn_model_alloc(&c, st);
    if (!m) return NULL;
    for (int64_t i = 0; i < m->n_param_el; i++)
        st_(m->param, i, m->dtype, ld(src->param, i, src->dtype));
    for (int64_t i = 0; i < m->n_buf_el; i++)
        st_(m->buf, i, m->dtype, ld(src->buf, i, src->dtype));
    memcpy(m->nbt, src->nbt, (size_t)(m->D + 1) * sizeof(int64_t));
    if (sx_nn_model_set_genes(m, (const char *const *)src->genes, src->n_genes_meta, st) ||
        sx_nn_model_set_domains(m, (const char *const *)src->domains, src->n_domain_names, st) ||
        sx_nn_model_set_scale(m, src->scale, src->scale_width, st) ||
        sx_nn_model_set_prep_json(m, src->prep_json, st))
        goto fail;
    if (src->log_n > 0) {
        m->log_recon = sx_mallocarray((size_t)src->log_n, sizeof(double));
        m->log_kl = sx_mallocarray((size_t)src->log_n, sizeof(double));
        if (!m->log_recon || !m->log_kl) {
            sx_status_set(st, SX_ENOMEM, "cannot copy the training log");
            goto fail;
        }
        memcpy(m->log_recon, src->log_recon, (size_t)src->log_n * sizeof(double));
        memcpy(m->log_kl, src->log_kl, (size_t)src->log_n * sizeof(double));
    }
    m->log_n = src->log_n;
    m->log_steps = src->log_steps;
    m->log_best_epoch = src->log_best_epoch;
    m->log_best_loss = src->log_best_loss;
    m->log_early_stopped = src->log_early_stopped;
    m->log_seed = src->log_seed;
    return m;
fail:
    sx_nn_model_free(m);
    return NULL;
}
