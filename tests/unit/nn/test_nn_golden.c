/* Golden checks of one training step against PyTorch 1.13 running SCALEX's network
 * (golden/nn: train_step, one_row, adam_absent, eval), float32 within 1e-5 relative and
 * float64 within 1e-10. */
#include "nn_golden_util.h"

static const char *ACTS[] = {"enc_linear", "enc_bn", "enc_relu", "mu", "var_head", "var",
                             "z", "dec_linear", "dec_dsbn", "recon"};

typedef struct {
    int dtype;
    const char *prec; /* "float32" / "float64" */
    double tol;
    double floor;     /* floor as a fraction of the tensor's largest magnitude */
} prec_t;

/* Parameters after Adam steps: float32 normwise (relative to the tensor's largest magnitude,
 * at least 1e-2, i.e. 1e-7 absolute, for BN betas that start at 0 and move by ~lr per step;
 * the SSE and AVX-512 builds round differently over 5 steps); float64 elementwise
 * with a 1e-8 floor. */
#define PARAM_FLOOR(pr) ((pr)->dtype == SX_NN_F32 ? 1e-2 : 1e-8)
#define PARAM_FRAC(pr) ((pr)->dtype == SX_NN_F32 ? 1.0 : (pr)->floor)

/* Float32: normwise relative error (|ours - golden| over the tensor's largest magnitude) —
 * values with cancellation (BN outputs near 0, BN over 4 rows with a tiny variance) carry
 * ~1e-7..1e-6 absolute noise on O(1) tensors in PyTorch and here alike. Float64: elementwise
 * relative error with a floor of 0.1% of the tensor's largest magnitude. */
static const prec_t PRECS[2] = {{SX_NN_F32, "float32", 1e-5, 1.0},
                                {SX_NN_F64, "float64", 1e-10, 1e-3}};

static void check_forward(hid_t f, const char *grp, sx_nn_trainer *t, int64_t B,
                          const prec_t *pr)
{
    sx_status st = {0};
    char p[256];
    snprintf(p, sizeof p, "%s/forward", grp);
    int64_t enc_applied = gattr_i64(f, p, "enc_bn_applied");
    int64_t dec_applied = gattr_i64(f, p, "dec_dsbn_applied");
    for (size_t i = 0; i < sizeof ACTS / sizeof ACTS[0]; i++) {
        snprintf(p, sizeof p, "%s/forward/%s", grp, ACTS[i]);
        int64_t width = strstr(ACTS[i], "enc") ? NN_H
                        : (!strcmp(ACTS[i], "mu") || !strcmp(ACTS[i], "var_head") ||
                           !strcmp(ACTS[i], "var") || !strcmp(ACTS[i], "z"))
                            ? NN_Z
                            : NN_G;
        double *ours = sx_mallocarray((size_t)(B * width), sizeof(double));
        int rc = sx_nn_trainer_activation(t, ACTS[i], ours, B * width, &st);
        if (!sx_h5_exists(f, p)) {
            /* absent in the golden = BN skipped; we must have skipped it too */
            ck_assert_msg(rc == SX_ENOTFOUND, "%s: golden skipped it, we did not", p);
            ck_assert_int_eq(!strcmp(ACTS[i], "enc_bn") ? enc_applied : dec_applied, 0);
        } else {
            ck_assert_msg(rc == SX_OK, "%s: %s", p, st.msg);
            int64_t n;
            double *g = gread(f, p, &n);
            ck_assert_int_eq(n, B * width);
            cmp_arrays(p, ours, g, n, pr->tol, pr->floor, 0);
            sx_free(g);
        }
        sx_free(ours);
    }
}

static void check_loss(hid_t f, const char *grp, const sx_nn_losses *l, const prec_t *pr)
{
    char p[256];
    const char *names[] = {"recon_loss", "kl_raw", "kl_loss", "total"};
    double ours[] = {l->recon, l->kl_raw, l->kl, l->total};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/loss/%s", grp, names[i]);
        double *g = gread(f, p, NULL);
        cmp_arrays(p, &ours[i], g, 1, pr->tol, 0, 0);
        sx_free(g);
    }
}

/* Every running stat / counter of the model against a golden group of state_dict entries. */
static void check_buffers(hid_t f, const char *grp, const sx_nn_model *m, const prec_t *pr,
                          int params_too)
{
    sx_status st = {0};
    for (int i = 0; i < sx_nn_model_n_tensors(m); i++) {
        const char *nm = sx_nn_model_tensor_name(m, i);
        if (!params_too && is_param(nm)) continue;
        char p[256];
        snprintf(p, sizeof p, "%s/%s", grp, nm);
        int64_t n;
        double *g = gread(f, p, &n);
        double *o = sx_mallocarray((size_t)n, sizeof(double));
        ck_assert_msg(sx_nn_model_get(m, nm, o, n, &st) == SX_OK, "%s", st.msg);
        if (strstr(nm, "num_batches_tracked"))
            ck_assert_msg(o[0] == g[0], "%s: %g vs golden %g", p, o[0], g[0]);
        else
            cmp_arrays(p, o, g, n, pr->tol, PARAM_FRAC(pr), PARAM_FLOOR(pr));
        sx_free(g);
        sx_free(o);
    }
}

static void check_grads(hid_t f, const char *grp, const sx_nn_trainer *t,
                        const sx_nn_model *m, const prec_t *pr, int fused)
{
    sx_status st = {0};
    char p[256];
    snprintf(p, sizeof p, "%s/grad", grp);
    char *none = gattr(f, p, "grad_is_None");
    char *zero = gattr(f, p, "grad_all_zero");
    /* A gradient that is zero in exact arithmetic (the first-layer bias before a batch norm)
     * is float noise in both codes: compare it on the scale of the whole step's gradients. */
    double gmax = 0;
    for (int i = 0; i < sx_nn_model_n_tensors(m); i++) {
        const char *nm = sx_nn_model_tensor_name(m, i);
        snprintf(p, sizeof p, "%s/grad/%s", grp, nm);
        if (!is_param(nm) || !sx_h5_exists(f, p)) continue;
        int64_t n;
        double *g = gread(f, p, &n);
        for (int64_t j = 0; j < n; j++) gmax = fmax(gmax, fabs(g[j]));
        sx_free(g);
    }
    for (int i = 0; i < sx_nn_model_n_tensors(m); i++) {
        const char *nm = sx_nn_model_tensor_name(m, i);
        if (!is_param(nm)) continue;
        int gs = sx_nn_trainer_grad_state(t, nm);
        if (json_has(none, nm)) {
            ck_assert_msg(gs == SX_NN_GRAD_NONE, "%s: golden grad None, ours state %d", nm, gs);
            continue;
        }
        ck_assert_msg(gs == (json_has(zero, nm) ? SX_NN_GRAD_ZERO : SX_NN_GRAD_VALUE),
                      "%s: grad state %d disagrees with golden", nm, gs);
        if (fused && !strcmp(nm, "encoder.enc.net.0.fc.weight")) continue;
        snprintf(p, sizeof p, "%s/grad/%s", grp, nm);
        int64_t n;
        double *g = gread(f, p, &n);
        double *o = sx_mallocarray((size_t)n, sizeof(double));
        ck_assert_msg(sx_nn_trainer_get(t, SX_NN_WHAT_GRAD, nm, o, n, &st) == SX_OK, "%s: %s",
                      nm, st.msg);
        cmp_arrays(p, o, g, n, pr->tol, pr->floor, pr->tol < 1e-8 ? 1e-4 * gmax : 1e-1 * gmax);
        sx_free(g);
        sx_free(o);
    }
    sx_free(none);
    sx_free(zero);
}

static void check_adam(hid_t f, const char *grp, const sx_nn_trainer *t, const sx_nn_model *m,
                       const prec_t *pr)
{
    sx_status st = {0};
    char p[256];
    snprintf(p, sizeof p, "%s/adam", grp);
    char *steps = gattr(f, p, "step");
    /* moments inherit the gradients' float noise (see check_grads): floor on the step's
     * largest moment of the same kind */
    double mmax[2] = {0, 0};
    const char *mom[] = {"exp_avg", "exp_avg_sq"};
    for (int i = 0; i < sx_nn_model_n_tensors(m); i++) {
        const char *nm = sx_nn_model_tensor_name(m, i);
        for (int k = 0; k < 2 && is_param(nm); k++) {
            snprintf(p, sizeof p, "%s/adam/%s/%s", grp, mom[k], nm);
            if (!sx_h5_exists(f, p)) continue;
            int64_t n;
            double *g = gread(f, p, &n);
            for (int64_t j = 0; j < n; j++) mmax[k] = fmax(mmax[k], fabs(g[j]));
            sx_free(g);
        }
    }
    for (int i = 0; i < sx_nn_model_n_tensors(m); i++) {
        const char *nm = sx_nn_model_tensor_name(m, i);
        if (!is_param(nm)) continue;
        long gstep = json_int(steps, nm);
        ck_assert_msg(sx_nn_trainer_adam_steps(t, nm) == gstep, "%s: Adam step %lld, golden %ld",
                      nm, (long long)sx_nn_trainer_adam_steps(t, nm), gstep);
        int64_t n;
        snprintf(p, sizeof p, "%s/adam/param_after/%s", grp, nm);
        double *g = gread(f, p, &n);
        double *o = sx_mallocarray((size_t)n, sizeof(double));
        ck_assert(sx_nn_model_get(m, nm, o, n, &st) == SX_OK);
        cmp_arrays(p, o, g, n, pr->tol, PARAM_FRAC(pr), PARAM_FLOOR(pr));
        sx_free(g);
        for (int k = 0; k < 2; k++) {
            snprintf(p, sizeof p, "%s/adam/%s/%s", grp, mom[k], nm);
            if (!sx_h5_exists(f, p)) {
                ck_assert_int_eq(gstep, 0);
                continue;
            }
            g = gread(f, p, &n);
            ck_assert_msg(sx_nn_trainer_get(t, k ? SX_NN_WHAT_EXP_AVG_SQ : SX_NN_WHAT_EXP_AVG, nm,
                                            o, n, &st) == SX_OK, "%s", st.msg);
            cmp_arrays(p, o, g, n, pr->tol, pr->floor,
                       (pr->dtype == SX_NN_F32 ? 1e-1 : 1e-4) * mmax[k]);
            sx_free(g);
        }
        sx_free(o);
    }
    sx_free(steps);
}

/* One step of golden group grp/<prec>/<sub> on inputs x/domain/eps. */
static void run_step(hid_t f, sx_nn_trainer *t, sx_nn_model *m, const char *xs, const char *ds,
                     const char *es, const char *grp, const prec_t *pr, int fused)
{
    sx_status st = {0};
    int64_t nx, nd;
    float *x = gread_f32(f, xs, &nx);
    int32_t *dom = gread_dom(f, ds, &nd);
    float *eps = gread_f32(f, es, NULL);
    sx_csr *csr = dense_csr(x, nd, NN_G);
    sx_nn_losses l;
    ck_assert_msg(sx_nn_trainer_forward_backward(t, csr, NULL, nd, dom, eps, &l, &st) == SX_OK,
                  "%s", st.msg);
    check_forward(f, grp, t, nd, pr);
    check_loss(f, grp, &l, pr);
    char p[256];
    snprintf(p, sizeof p, "%s/buffers_after_forward", grp);
    if (sx_h5_exists(f, p)) check_buffers(f, p, m, pr, 0);
    check_grads(f, grp, t, m, pr, fused);
    ck_assert_msg(sx_nn_trainer_adam(t, &st) == SX_OK, "%s", st.msg);
    check_adam(f, grp, t, m, pr);
    sx_csr_free(csr);
    sx_free(x);
    sx_free(dom);
    sx_free(eps);
}

static sx_nn_trainer *mk_trainer(sx_nn_model *m, int mode, int keep)
{
    sx_status st = {0};
    sx_nn_train_opts o;
    sx_nn_train_opts_default(&o);
    o.adam_mode = mode;
    o.keep_grads = keep;
    o.threads = 1;
    sx_nn_trainer *t = sx_nn_trainer_new(m, &o, &st);
    ck_assert_msg(t != NULL, "%s", st.msg);
    return t;
}

static void single_case(const char *file, int pi, int fused)
{
    const prec_t *pr = &PRECS[pi];
    hid_t f = gopen(file);
    sx_nn_model *m = gmodel(f, "init_state", pr->dtype);
    /* one step: PyTorch 1.13 and 2.x agree (no parameter has had a gradient before) */
    sx_nn_trainer *t = mk_trainer(m, SX_NN_ADAM_TORCH2, !fused);
    run_step(f, t, m, "inputs/x", "inputs/domain", "inputs/eps", pr->prec, pr, fused);
    sx_nn_trainer_free(t);
    sx_nn_model_free(m);
    H5Fclose(f);
}

START_TEST(train_step_f32) { single_case("train_step.h5", 0, 0); }
END_TEST
START_TEST(train_step_f64) { single_case("train_step.h5", 1, 0); }
END_TEST
START_TEST(train_step_fused_f32) { single_case("train_step.h5", 0, 1); }
END_TEST
START_TEST(one_row_f32) { single_case("one_row.h5", 0, 0); }
END_TEST
START_TEST(one_row_f64) { single_case("one_row.h5", 1, 1); }
END_TEST

static void adam_absent_case(int pi)
{
    const prec_t *pr = &PRECS[pi];
    hid_t f = gopen("adam_absent.h5");
    sx_nn_model *m = gmodel(f, "init_state", pr->dtype);
    sx_nn_trainer *t = mk_trainer(m, SX_NN_ADAM_TORCH113, 1);
    char g1[64], g2[64], p[256];
    snprintf(g1, sizeof g1, "%s/step1", pr->prec);
    snprintf(g2, sizeof g2, "%s/step2", pr->prec);
    run_step(f, t, m, "inputs/x_step1", "inputs/domain_step1", "inputs/eps_step1", g1, pr, 0);
    run_step(f, t, m, "inputs/x_step2", "inputs/domain_step2", "inputs/eps_step2", g2, pr, 0);
    snprintf(p, sizeof p, "%s/state_after", pr->prec);
    check_buffers(f, p, m, pr, 1);
    sx_nn_trainer_free(t);
    sx_nn_model_free(m);

    /* PyTorch 2.x rule: the absent unit bns.2 keeps its step-1 values, moments and count */
    m = gmodel(f, "init_state", pr->dtype);
    t = mk_trainer(m, SX_NN_ADAM_TORCH2, 1);
    sx_status st = {0};
    const char *xs[] = {"inputs/x_step1", "inputs/x_step2"};
    const char *dsn[] = {"inputs/domain_step1", "inputs/domain_step2"};
    const char *es[] = {"inputs/eps_step1", "inputs/eps_step2"};
    for (int s = 0; s < 2; s++) {
        int64_t nd;
        float *x = gread_f32(f, xs[s], NULL);
        int32_t *dom = gread_dom(f, dsn[s], &nd);
        float *eps = gread_f32(f, es[s], NULL);
        sx_csr *csr = dense_csr(x, nd, NN_G);
        ck_assert(sx_nn_trainer_forward_backward(t, csr, NULL, nd, dom, eps, NULL, &st) == 0);
        ck_assert(sx_nn_trainer_adam(t, &st) == SX_OK);
        sx_csr_free(csr);
        sx_free(x);
        sx_free(dom);
        sx_free(eps);
    }
    const char *bn2[] = {"decoder.net.0.norm.bns.2.weight", "decoder.net.0.norm.bns.2.bias"};
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(sx_nn_trainer_grad_state(t, bn2[k]), SX_NN_GRAD_NONE);
        ck_assert_int_eq(sx_nn_trainer_adam_steps(t, bn2[k]), 1);
        double o[NN_G];
        int64_t n;
        snprintf(p, sizeof p, "%s/step1/adam/param_after/%s", pr->prec, bn2[k]);
        double *g = gread(f, p, &n);
        ck_assert(sx_nn_model_get(m, bn2[k], o, n, &st) == SX_OK);
        cmp_arrays(p, o, g, n, pr->tol, pr->floor, 0);
        sx_free(g);
        snprintf(p, sizeof p, "%s/step1/adam/exp_avg/%s", pr->prec, bn2[k]);
        g = gread(f, p, &n);
        ck_assert(sx_nn_trainer_get(t, SX_NN_WHAT_EXP_AVG, bn2[k], o, n, &st) == SX_OK);
        cmp_arrays(p, o, g, n, pr->tol, pr->floor, 0);
        sx_free(g);
    }
    /* and the 1.13 result for the same unit differs (decayed): the modes are distinct */
    snprintf(p, sizeof p, "%s/step2/adam/param_after/%s", pr->prec, bn2[1]);
    int64_t n;
    double *g2v = gread(f, p, &n), o[NN_G], diff = 0;
    ck_assert(sx_nn_model_get(m, bn2[1], o, n, &st) == SX_OK);
    for (int64_t j = 0; j < n; j++) diff = fmax(diff, fabs(o[j] - g2v[j]));
    ck_assert_msg(diff > 1e-6, "2.x and 1.13 results for bns.2 should differ (%g)", diff);
    sx_free(g2v);
    sx_nn_trainer_free(t);
    sx_nn_model_free(m);
    H5Fclose(f);
}

START_TEST(adam_absent_f32) { adam_absent_case(0); }
END_TEST
START_TEST(adam_absent_f64) { adam_absent_case(1); }
END_TEST

static void eval_case(int pi)
{
    const prec_t *pr = &PRECS[pi];
    sx_status st = {0};
    hid_t f = gopen("eval.h5");
    sx_nn_model *m = gmodel(f, "init_state", pr->dtype);
    sx_nn_trainer *t = mk_trainer(m, SX_NN_ADAM_TORCH113, 0);
    int64_t n;
    float *wx = gread_f32(f, "inputs/warm_x", &n);
    int32_t *wd = gread_dom(f, "inputs/warm_domain", NULL);
    float *we = gread_f32(f, "inputs/warm_eps", NULL);
    for (int k = 0; k < 5; k++) {
        sx_csr *csr = dense_csr(wx + k * 12 * NN_G, 12, NN_G);
        ck_assert(sx_nn_trainer_forward_backward(t, csr, NULL, 12, wd + k * 12, we + k * 12 * NN_Z,
                                                 NULL, &st) == SX_OK);
        ck_assert(sx_nn_trainer_adam(t, &st) == SX_OK);
        sx_csr_free(csr);
    }
    char p[256], grp[64];
    snprintf(p, sizeof p, "%s/state_before_eval", pr->prec);
    /* 5 Adam steps: float32 drift is amplified by Adam's m/sqrt(v) on gradients that are
     * float noise (biases before a BN), so the warm state is held to the multi-step tolerance
     * (1e-4, as the 50-step losses); the eval forwards then start from the golden state so
     * they are checked at 1e-5 on their own. */
    prec_t warm = *pr;
    if (pr->dtype == SX_NN_F32) warm.tol = 1e-4;
    check_buffers(f, p, m, &warm, 1);
    sx_nn_model *gm = gmodel(f, p, pr->dtype);
    for (int i = 0; i < sx_nn_model_n_tensors(m); i++) {
        const char *nm = sx_nn_model_tensor_name(m, i);
        int nd;
        int64_t dd[2];
        sx_nn_model_tensor_shape(m, nm, &nd, dd, &st);
        int64_t k = nd == 2 ? dd[0] * dd[1] : nd == 1 ? dd[0] : 1;
        double *v = sx_mallocarray((size_t)k, sizeof(double));
        ck_assert(sx_nn_model_get(gm, nm, v, k, &st) == SX_OK);
        ck_assert(sx_nn_model_set(m, nm, v, k, &st) == SX_OK);
        sx_free(v);
    }
    sx_nn_model_free(gm);
    const char *sub[] = {"batch", "one_row"};
    const char *xs[] = {"inputs/x", "inputs/x_one_row"};
    const char *dsn[] = {"inputs/domain", "inputs/domain_one_row"};
    const char *es[] = {"inputs/eps", "inputs/eps_one_row"};
    for (int s = 0; s < 2; s++) {
        int64_t nd;
        float *x = gread_f32(f, xs[s], NULL);
        int32_t *dom = gread_dom(f, dsn[s], &nd);
        float *eps = gread_f32(f, es[s], NULL);
        sx_csr *csr = dense_csr(x, nd, NN_G);
        sx_nn_losses l;
        ck_assert_msg(sx_nn_trainer_forward(t, csr, NULL, nd, dom, eps, 1, &l, &st) == SX_OK,
                      "%s", st.msg);
        snprintf(grp, sizeof grp, "%s/%s", pr->prec, sub[s]);
        check_forward(f, grp, t, nd, pr);
        check_loss(f, grp, &l, pr);
        sx_csr_free(csr);
        sx_free(x);
        sx_free(dom);
        sx_free(eps);
    }
    /* eval forwards change nothing */
    check_buffers(f, p, m, pr, 1);
    sx_free(wx);
    sx_free(wd);
    sx_free(we);
    sx_nn_trainer_free(t);
    sx_nn_model_free(m);
    H5Fclose(f);
}

START_TEST(eval_f32) { eval_case(0); }
END_TEST
START_TEST(eval_f64) { eval_case(1); }
END_TEST

int main(void)
{
    sx_h5_quiet();
    Suite *s = suite_create("nn_golden");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, train_step_f32);
    tcase_add_test(tc, train_step_f64);
    tcase_add_test(tc, train_step_fused_f32);
    tcase_add_test(tc, one_row_f32);
    tcase_add_test(tc, one_row_f64);
    tcase_add_test(tc, adam_absent_f32);
    tcase_add_test(tc, adam_absent_f64);
    tcase_add_test(tc, eval_f32);
    tcase_add_test(tc, eval_f64);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
