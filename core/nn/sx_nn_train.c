/* sx_nn_train — trainer (Adam state + workspace), step API and SCALEX's training loop. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sx_alloc.h"
#include "sx_log.h"
#include "sx_nn_internal.h"

void sx_nn_train_opts_default(sx_nn_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch_size = 64;
    o->max_iteration = 30000;
    o->lr = 2e-4;
    o->weight_decay = 5e-4;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->adam_eps = 1e-8;
    o->patience = 10;
    o->early_stopping = SX_NN_STOP_STEPS;
    o->patience_steps = 1000;
    o->seed = 124;
    o->threads = 0;
    o->adam_mode = SX_NN_ADAM_TORCH2;
    o->first_layer = SX_NN_FIRST_SPARSE;
    o->final_weights = SX_NN_FINAL_BEST;
}

static int check_opts(const sx_nn_train_opts *o, sx_status *st)
{
    if (o->batch_size < 1 || o->batch_size > (1 << 20))
        return sx_status_set(st, SX_EINVAL, "batch size %lld is out of range (1..1048576)",
                             (long long)o->batch_size);
    if (o->max_iteration < 1)
        return sx_status_set(st, SX_EINVAL, "max_iteration must be at least 1 (got %lld)",
                             (long long)o->max_iteration);
    if (!(o->lr > 0) || !(o->weight_decay >= 0) || !(o->beta1 >= 0 && o->beta1 < 1) ||
        !(o->beta2 >= 0 && o->beta2 < 1) || !(o->adam_eps > 0))
        return sx_status_set(st, SX_EINVAL, "Adam settings out of range (lr %g, weight decay %g, "
                             "betas %g/%g, eps %g)", o->lr, o->weight_decay, o->beta1, o->beta2,
                             o->adam_eps);
    if (o->patience < 1)
        return sx_status_set(st, SX_EINVAL, "patience must be at least 1 (got %d)", o->patience);
    if (o->early_stopping != SX_NN_STOP_STEPS && o->early_stopping != SX_NN_STOP_SCALEX)
        return sx_status_set(st, SX_EINVAL, "unknown early-stopping rule %d", o->early_stopping);
    if (o->patience_steps < 0)
        return sx_status_set(st, SX_EINVAL, "patience_steps must be at least 0 (got %lld)",
                             (long long)o->patience_steps);
    if (o->adam_mode != SX_NN_ADAM_TORCH2 && o->adam_mode != SX_NN_ADAM_TORCH113)
        return sx_status_set(st, SX_EINVAL, "unknown Adam mode %d", o->adam_mode);
    if (o->first_layer != SX_NN_FIRST_SPARSE && o->first_layer != SX_NN_FIRST_DENSE)
        return sx_status_set(st, SX_EINVAL, "unknown first-layer mode %d", o->first_layer);
    return SX_OK;
}

sx_nn_trainer *sx_nn_trainer_new(sx_nn_model *m, const sx_nn_train_opts *o, sx_status *st)
{
    sx_nn_trainer *t = sx_calloc(1, sizeof *t);
    if (!t) goto oom;
    t->m = m;
    if (o)
        t->o = *o;
    else
        sx_nn_train_opts_default(&t->o);
    if (check_opts(&t->o, st)) goto fail;
    /* Sparse first layer: our pool splits all the large work, the GEMMs left are small, and
     * OpenBLAS threads would spin against the pool's; the dense first layer is one big GEMM. */
    t->blas_prev = sx_nn_blas_threads();
    sx_nn_set_threads(t->o.first_layer == SX_NN_FIRST_DENSE ? t->o.threads : 1);
    t->pool = sx_nn_pool_new(t->o.threads, st);
    if (!t->pool) goto fail;
    /* The model's initial weights were drawn from this seed's stream; PyTorch draws the
     * shuffles and the reparameterization noise from where the init left off, never from the
     * same numbers again. Jump past them: without it, the permutations and noise of the first
     * epochs (as many draws as there are weights) re-used the initial weights' own uniforms. */
    sx_nn_rng_seed(&t->rng, t->o.seed);
    sx_nn_rng_jump(&t->rng);
    t->grad = sx_calloc((size_t)m->n_param_el, m->esz);
    t->m1 = sx_calloc((size_t)m->n_param_el, m->esz);
    t->m2 = sx_calloc((size_t)m->n_param_el, m->esz);
    t->steps = sx_calloc((size_t)m->n_params, sizeof(int64_t));
    t->ever = sx_calloc((size_t)m->n_params, 1);
    t->gstate = sx_calloc((size_t)m->n_params, 1);
    if (!t->grad || !t->m1 || !t->m2 || !t->steps || !t->ever || !t->gstate) goto oom;
    if (sx_nn_ws_reserve(&t->w, m, t->o.batch_size, 0, st)) goto fail;
    return t;
oom:
    sx_status_set(st, SX_ENOMEM, "cannot allocate the optimizer state (%lld parameters)",
                  (long long)m->n_param_el);
fail:
    sx_nn_trainer_free(t);
    return NULL;
}

void sx_nn_trainer_free(sx_nn_trainer *t)
{
    if (!t) return;
    sx_nn_set_threads(t->blas_prev); /* 0 (never set): left as is */
    sx_nn_pool_free(t->pool);
    sx_nn_ws_free(&t->w);
    sx_free(t->grad);
    sx_free(t->m1);
    sx_free(t->m2);
    sx_free(t->steps);
    sx_free(t->ever);
    sx_free(t->gstate);
    sx_free(t);
}

/* Validate a minibatch request: shapes, row indices, domains. */
static int check_batch(const sx_nn_model *m, const sx_csr *x, const int64_t *rows, int64_t n,
                       const int32_t *domain, sx_status *st)
{
    if (!x || !domain)
        return sx_status_set(st, SX_EINVAL, "input matrix and domain array are required");
    if (x->n_cols != m->G)
        return sx_status_set(st, SX_EINVAL, "input has %lld genes but the network expects %lld",
                             (long long)x->n_cols, (long long)m->G);
    if (n < 1) return sx_status_set(st, SX_EINVAL, "a minibatch needs at least one row");
    for (int64_t b = 0; b < n; b++) {
        int64_t r = rows ? rows[b] : b;
        if (r < 0 || r >= x->n_rows)
            return sx_status_set(st, SX_EINVAL, "minibatch row %lld is outside the %lld input "
                                 "rows", (long long)r, (long long)x->n_rows);
        if (domain[r] < 0 || domain[r] >= m->D)
            return sx_status_set(st, SX_EINVAL, "row %lld has domain %d; the network has %lld "
                                 "domains (0..%lld)", (long long)r, domain[r], (long long)m->D,
                                 (long long)m->D - 1);
    }
    return SX_OK;
}

static void set_eps(sx_nn_trainer *t, const float *eps)
{
    const int64_t n = t->w.B * t->m->Z;
    for (int64_t i = 0; i < n; i++) {
        double e = eps ? eps[i] : sx_nn_rng_normal(&t->rng);
        if (t->m->dtype == SX_NN_F32)
            ((float *)t->w.eps)[i] = (float)e;
        else
            ((double *)t->w.eps)[i] = e;
    }
}

static void run_fwd(sx_nn_trainer *t, int eval, int update, sx_nn_losses *loss)
{
    int dense = t->o.first_layer == SX_NN_FIRST_DENSE;
    if (t->m->dtype == SX_NN_F32) {
        sx_nn_fwd_f32(t->m, &t->w, t->pool, eval, update, SX_FWD_EPS, dense);
        sx_nn_loss_f32(t->m, &t->w, t->pool, loss);
    } else {
        sx_nn_fwd_f64(t->m, &t->w, t->pool, eval, update, SX_FWD_EPS, dense);
        sx_nn_loss_f64(t->m, &t->w, t->pool, loss);
    }
}

int sx_nn_trainer_forward(sx_nn_trainer *t, const sx_csr *x, const int64_t *rows, int64_t n,
                          const int32_t *domain, const float *eps, int eval,
                          sx_nn_losses *loss, sx_status *st)
{
    int rc = check_batch(t->m, x, rows, n, domain, st);
    if (rc) return rc;
    if ((rc = sx_nn_ws_load(&t->w, t->m, x, rows, n, domain, -1, st))) return rc;
    set_eps(t, eps);
    sx_nn_losses l;
    run_fwd(t, eval, !eval, &l);
    if (loss) *loss = l;
    t->have_fb = 0;
    return SX_OK;
}

int sx_nn_trainer_forward_backward(sx_nn_trainer *t, const sx_csr *x, const int64_t *rows,
                                   int64_t n, const int32_t *domain, const float *eps,
                                   sx_nn_losses *loss, sx_status *st)
{
    int rc = check_batch(t->m, x, rows, n, domain, st);
    if (rc) return rc;
    if ((rc = sx_nn_ws_load(&t->w, t->m, x, rows, n, domain, -1, st))) return rc;
    set_eps(t, eps);
    sx_nn_losses l;
    run_fwd(t, 0, 1, &l);
    if (loss) *loss = l;

    /* Which parameters take part: BN1 needs >= 2 rows, DSBN unit d needs >= 2 rows of d.
     * An absent one is None (skipped by Adam) unless PyTorch 1.13 mode and it has had a
     * gradient before, in which case zero_grad() left a zero tensor (ALGORITHM §13.2). */
    sx_nn_model *m = t->m;
    const int b113 = t->o.adam_mode == SX_NN_ADAM_TORCH113;
    for (int p = 0; p < m->n_params; p++) {
        int part = 1;
        if (p == SX_P_G1 || p == SX_P_BE1) part = n >= 2;
        if (p >= SX_P_DSBN0) part = n >= 2 && t->w.dom_cnt[(p - SX_P_DSBN0) / 2] >= 2;
        if (part)
            t->gstate[p] = SX_NN_GRAD_VALUE;
        else if (b113 && t->ever[p]) {
            t->gstate[p] = SX_NN_GRAD_ZERO;
            memset((char *)t->grad + m->param_off[p] * m->esz, 0, (size_t)m->param_n[p] * m->esz);
        } else
            t->gstate[p] = SX_NN_GRAD_NONE;
    }
    if (m->dtype == SX_NN_F32)
        sx_nn_bwd_f32(t);
    else
        sx_nn_bwd_f64(t);
    for (int p = 0; p < m->n_params; p++)
        if (t->gstate[p] == SX_NN_GRAD_VALUE) t->ever[p] = 1;
    t->have_fb = 1;
    return SX_OK;
}

int sx_nn_trainer_adam(sx_nn_trainer *t, sx_status *st)
{
    if (!t->have_fb)
        return sx_status_set(st, SX_ESTATE, "Adam step without a preceding forward_backward");
    if (t->m->dtype == SX_NN_F32)
        sx_nn_adam_f32(t);
    else
        sx_nn_adam_f64(t);
    t->have_fb = 0;
    return SX_OK;
}

int sx_nn_trainer_grad_state(const sx_nn_trainer *t, const char *param)
{
    int p = sx_nn_param_index(t->m, param);
    return p < 0 ? -1 : t->gstate[p];
}

int64_t sx_nn_trainer_adam_steps(const sx_nn_trainer *t, const char *param)
{
    int p = sx_nn_param_index(t->m, param);
    return p < 0 ? -1 : t->steps[p];
}

int sx_nn_trainer_get(const sx_nn_trainer *t, int what, const char *param, double *out,
                      int64_t n, sx_status *st)
{
    const sx_nn_model *m = t->m;
    int p = sx_nn_param_index(m, param);
    if (p < 0) return sx_status_set(st, SX_ENOTFOUND, "'%s' is not a network parameter", param);
    const sx_nn_tensor *tn = &m->tens[m->param_tensor[p]];
    if (n != tn->numel)
        return sx_status_set(st, SX_EINVAL, "'%s' has %lld elements, not %lld", param,
                             (long long)tn->numel, (long long)n);
    const void *base;
    if (what == SX_NN_WHAT_GRAD) {
        if (t->gstate[p] == SX_NN_GRAD_NONE)
            return sx_status_set(st, SX_ENOTFOUND, "gradient of '%s' is None", param);
        if (p == SX_P_W1 && !t->w1_grad_ready)
            return sx_status_set(st, SX_ESTATE, "the first-layer gradient is fused into Adam; "
                                 "set keep_grads to inspect it");
        base = t->grad;
    } else if (what == SX_NN_WHAT_EXP_AVG || what == SX_NN_WHAT_EXP_AVG_SQ) {
        if (t->steps[p] == 0)
            return sx_status_set(st, SX_ENOTFOUND, "'%s' has no optimizer state", param);
        base = what == SX_NN_WHAT_EXP_AVG ? t->m1 : t->m2;
    } else {
        return sx_status_set(st, SX_EINVAL, "unknown trainer quantity %d", what);
    }
    for (int64_t j = 0; j < n; j++) {
        int64_t idx = tn->off + j;
        if (tn->transposed) {
            int64_t r = j / tn->dims[1], c = j % tn->dims[1];
            idx = tn->off + sx_nn_w1_index(tn->dims[1], tn->dims[0], c, r);
        }
        out[j] = m->dtype == SX_NN_F32 ? ((const float *)base)[idx]
                                       : ((const double *)base)[idx];
    }
    return SX_OK;
}

int sx_nn_trainer_activation(const sx_nn_trainer *t, const char *name, double *out, int64_t n,
                             sx_status *st)
{
    const sx_nn_ws *w = &t->w;
    const sx_nn_model *m = t->m;
    struct {
        const char *name;
        const void *a;
        int64_t width;
        int present;
    } tab[] = {{"enc_linear", w->a1, m->H, 1},   {"enc_bn", w->hbn, m->H, w->enc_bn_applied},
               {"enc_relu", w->h, m->H, 1},      {"mu", w->mu, m->Z, 1},
               {"var_head", w->s, m->Z, 1},      {"var", w->var, m->Z, 1},
               {"z", w->z, m->Z, 1},             {"dec_linear", w->a2, m->G, 1},
               {"dec_dsbn", w->y2, m->G, w->dec_dsbn_applied},
               {"recon", w->p, m->G, 1}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (strcmp(tab[i].name, name) != 0) continue;
        if (!tab[i].present)
            return sx_status_set(st, SX_ENOTFOUND, "'%s' was skipped in the last forward", name);
        if (n != w->B * tab[i].width)
            return sx_status_set(st, SX_EINVAL, "'%s' has %lld elements, not %lld", name,
                                 (long long)(w->B * tab[i].width), (long long)n);
        for (int64_t j = 0; j < n; j++)
            out[j] = m->dtype == SX_NN_F32 ? ((const float *)tab[i].a)[j]
                                           : ((const double *)tab[i].a)[j];
        return SX_OK;
    }
    return sx_status_set(st, SX_ENOTFOUND, "unknown activation '%s'", name);
}

/* ---------------- training loop ---------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fmt_eta(char *b, size_t n, double s)
{
    if (!(s >= 0) || s > 1e7)
        snprintf(b, n, "?");
    else if (s >= 3600)
        snprintf(b, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60)
        snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(b, n, "%.0fs", s);
}

/* Whether training stops after an epoch that did not improve: `counter` epochs and `since`
 * steps since the best epoch. SCALEX counts epochs only; a 175-cell set has 2 steps per
 * epoch, so its noisy 2-step epoch loss missed 10 records in a row after ~100 steps and the
 * encoder was barely trained (docs/tutorials/quality.md, "Small references"). */
static int stop_now(const sx_nn_train_opts *o, int64_t counter, int64_t since)
{
    if (counter < o->patience) return 0;
    return o->early_stopping == SX_NN_STOP_SCALEX || since >= o->patience_steps;
}

int sx_nn_train(sx_nn_model *m, const sx_csr *x, const int32_t *domain,
                const sx_nn_train_opts *opts, const sx_progress *p, sx_status *st)
{
    sx_nn_train_opts o;
    if (opts)
        o = *opts;
    else
        sx_nn_train_opts_default(&o);
    int rc = check_opts(&o, st);
    if (rc) return rc;
    if (!x || !domain) return sx_status_set(st, SX_EINVAL, "input matrix and domains required");
    if (x->n_cols != m->G)
        return sx_status_set(st, SX_EINVAL, "input has %lld genes but the network expects %lld",
                             (long long)x->n_cols, (long long)m->G);
    const int64_t N = x->n_rows, B = o.batch_size, Z = m->Z;
    if (N < B)
        return sx_status_set(st, SX_EINVAL, "%lld cells are fewer than one minibatch of %lld; "
                             "training needs at least batch_size cells (SCALEX drops the "
                             "incomplete last minibatch)", (long long)N, (long long)B);
    for (int64_t i = 0; i < N; i++)
        if (domain[i] < 0 || domain[i] >= m->D)
            return sx_status_set(st, SX_EINVAL, "cell %lld has domain %d; the network has %lld "
                                 "domains", (long long)i, domain[i], (long long)m->D);
    for (int64_t k = 0; k < x->indptr[N]; k++)
        if (!(x->data[k] >= 0.0f && x->data[k] <= 1.0f))
            return sx_status_set(st, SX_EDATA, "input value %g (entry %lld) is outside [0, 1]; "
                                 "scale the data (MaxAbs) before training", (double)x->data[k],
                                 (long long)k);

    const int64_t I = N / B;
    const int64_t n_epoch = (o.max_iteration + I - 1) / I;
    sx_nn_trainer *t = NULL;
    int64_t *perm = NULL;
    void *best_param = NULL, *best_buf = NULL;
    int64_t *best_nbt = NULL;
    double *lr_ = NULL, *lk_ = NULL;
    t = sx_nn_trainer_new(m, &o, st);
    if (!t) return st ? st->code : SX_ENOMEM;
    perm = sx_mallocarray((size_t)N, sizeof(int64_t));
    best_param = sx_mallocarray((size_t)m->n_param_el, m->esz);
    best_buf = sx_mallocarray((size_t)m->n_buf_el, m->esz);
    best_nbt = sx_mallocarray((size_t)m->D + 1, sizeof(int64_t));
    lr_ = sx_calloc((size_t)n_epoch, sizeof(double));
    lk_ = sx_calloc((size_t)n_epoch, sizeof(double));
    if (!perm || !best_param || !best_buf || !best_nbt || !lr_ || !lk_) {
        rc = sx_status_set(st, SX_ENOMEM, "cannot allocate training buffers for %lld cells",
                           (long long)N);
        goto fail;
    }
    double best = 0, t0 = now_s();
    int64_t best_epoch = -1, best_step = 0, counter = 0, step = 0, e;
    int stopped = 0;
    SX_INFO("training: %lld cells, %lld domains, %lld steps per epoch, %lld epochs",
            (long long)N, (long long)m->D, (long long)I, (long long)n_epoch);
    for (e = 0; e < n_epoch; e++) {
        if (o.replay_perm) {
            memcpy(perm, o.replay_perm + e * N, (size_t)N * sizeof(int64_t));
        } else {
            for (int64_t i = 0; i < N; i++) perm[i] = i;
            for (int64_t i = N - 1; i > 0; i--) {
                int64_t j = (int64_t)sx_nn_rng_below(&t->rng, (uint64_t)i + 1);
                int64_t tmp = perm[i];
                perm[i] = perm[j];
                perm[j] = tmp;
            }
        }
        double sr = 0, sk = 0;
        for (int64_t i = 0; i < I; i++, step++) {
            if (sx_progress_cancelled(p)) {
                rc = sx_status_set(st, SX_ECANCELED, "training canceled at epoch %lld",
                                   (long long)e + 1);
                goto fail;
            }
            sx_nn_losses l;
            const float *eps = o.replay_eps ? o.replay_eps + step * B * Z : NULL;
            if ((rc = sx_nn_trainer_forward_backward(t, x, perm + i * B, B, domain, eps, &l, st)))
                goto fail;
            if ((rc = sx_nn_trainer_adam(t, st))) goto fail;
            sr += l.recon;
            sk += l.kl;
        }
        lr_[e] = sr / (double)I;
        lk_[e] = sk / (double)I;
        double E = lr_[e] + lk_[e];
        if (isnan(E)) {
            rc = sx_status_set(st, SX_EDATA, "training diverged: the loss became NaN in epoch "
                               "%lld; check that the input is finite and scaled to [0, 1]",
                               (long long)e + 1);
            goto fail;
        }
        if (best_epoch < 0 || E < best) {
            best = E;
            best_epoch = e;
            best_step = step;
            counter = 0;
            memcpy(best_param, m->param, (size_t)m->n_param_el * m->esz);
            memcpy(best_buf, m->buf, (size_t)m->n_buf_el * m->esz);
            memcpy(best_nbt, m->nbt, (size_t)(m->D + 1) * sizeof(int64_t));
        } else {
            stopped = stop_now(&o, ++counter, step - best_step);
        }
        if (p && p->fn) {
            double el = now_s() - t0, ips = el > 0 ? (double)step / el : 0;
            char eta[32], msg[256];
            fmt_eta(eta, sizeof eta, ips > 0 ? (double)(n_epoch * I - step) / ips : -1);
            snprintf(msg, sizeof msg, "epoch %lld/%lld recon_loss %.3f kl_loss %.3f %.1f it/s ETA %s",
                     (long long)e + 1, (long long)n_epoch, lr_[e], lk_[e], ips, eta);
            sx_progress_report(p, "train", (double)(e + 1) / (double)n_epoch, msg);
        }
        if (stopped) {
            e++;
            break;
        }
    }
    /* Early stop reloads the best state (SCALEX); at the natural end the reference keeps the
     * last epoch, scalexd by default the best one (so model file and latent agree). */
    if (stopped || (o.final_weights == SX_NN_FINAL_BEST && best_epoch != e - 1)) {
        memcpy(m->param, best_param, (size_t)m->n_param_el * m->esz);
        memcpy(m->buf, best_buf, (size_t)m->n_buf_el * m->esz);
        memcpy(m->nbt, best_nbt, (size_t)(m->D + 1) * sizeof(int64_t));
    }
    sx_free(m->log_recon);
    sx_free(m->log_kl);
    m->log_recon = lr_;
    m->log_kl = lk_;
    lr_ = lk_ = NULL;
    m->log_n = e;
    m->log_steps = step;
    m->log_best_epoch = best_epoch;
    m->log_best_loss = best;
    m->log_early_stopped = stopped;
    m->log_seed = o.seed;
    SX_INFO("training done: %lld epochs, %lld steps, best epoch %lld (loss %.4f)%s",
            (long long)e, (long long)step, (long long)best_epoch + 1, best,
            stopped ? ", stopped early" : "");
    rc = SX_OK;
fail:
    sx_nn_trainer_free(t);
    sx_free(perm);
    sx_free(best_param);
    sx_free(best_buf);
    sx_free(best_nbt);
    sx_free(lr_);
    sx_free(lk_);
    return rc;
}
