/* Golden checks of inference (encode.h5: SCALEX's encodeBatch, sampler chunks, latent in
 * train/eval mode, imputation) and of the training loop (steps.h5: 50 steps of VAE.fit under
 * PyTorch 1.13). */
#include "nn_golden_util.h"

static void encode_case(const char *run, int dtype, int eval, int64_t impute)
{
    sx_status st = {0};
    hid_t f = gopen("encode.h5");
    sx_nn_model *m32 = gmodel(f, "state", SX_NN_F32);
    sx_nn_model *m = dtype == SX_NN_F32 ? m32 : sx_nn_model_clone(m32, SX_NN_F64, &st);
    ck_assert_msg(m != NULL, "%s", st.msg);
    int64_t n;
    float *x = gread_f32(f, "inputs/x", NULL);
    int32_t *dom = gread_dom(f, "inputs/domain", &n);
    sx_csr *csr = dense_csr(x, n, NN_G);
    char p[256];
    snprintf(p, sizeof p, "%s/permutation", run);
    int64_t *perm = NULL, np, *gi = NULL, *go = NULL, ngi, ngo;
    ck_assert(sx_h5_read_i64(f, p, &perm, &np, &st) == SX_OK);
    snprintf(p, sizeof p, "%s/chunk_indices", run);
    ck_assert(sx_h5_read_i64(f, p, &gi, &ngi, &st) == SX_OK);
    snprintf(p, sizeof p, "%s/chunk_offsets", run);
    ck_assert(sx_h5_read_i64(f, p, &go, &ngo, &st) == SX_OK);
    /* sampler: same chunks as SCALEX's BatchSampler on the same permutation */
    int64_t *idx, *off, nc;
    ck_assert(sx_nn_domain_chunks(dom, n, NN_D, perm, 64, &idx, &off, &nc, &st) == SX_OK);
    ck_assert_int_eq(nc + 1, ngo);
    for (int64_t c = 0; c <= nc; c++) ck_assert_int_eq(off[c], go[c]);
    for (int64_t i = 0; i < n; i++) ck_assert_int_eq(idx[i], gi[i]);
    sx_free(idx);
    sx_free(off);

    sx_nn_infer_opts o;
    sx_nn_infer_opts_default(&o);
    o.eval = eval;
    o.perm = perm;
    o.update_running_stats = 1;
    o.threads = 1;
    int64_t W = impute >= 0 ? NN_G : NN_Z;
    double *out = sx_mallocarray((size_t)(n * W), sizeof(double));
    if (impute >= 0)
        ck_assert_msg(sx_nn_impute(m, csr, dom, impute, &o, out, NULL, &st) == SX_OK, "%s",
                      st.msg);
    else
        ck_assert_msg(sx_nn_encode(m, csr, dom, &o, out, NULL, &st) == SX_OK, "%s", st.msg);
    const char *prec = dtype == SX_NN_F32 ? "float32" : "float64";
    double tol = dtype == SX_NN_F32 ? 1e-5 : 1e-10, frac = dtype == SX_NN_F32 ? 1.0 : 1e-3;
    snprintf(p, sizeof p, "%s/%s/output", run, prec);
    int64_t ng;
    double *g = gread(f, p, &ng);
    ck_assert_int_eq(ng, n * W);
    cmp_arrays(p, out, g, ng, tol, frac, 0);
    sx_free(g);
    /* running statistics after the pass (train mode moves them once per chunk of >= 2) */
    for (int i = 0; i < sx_nn_model_n_tensors(m); i++) {
        const char *nm = sx_nn_model_tensor_name(m, i);
        if (is_param(nm)) continue;
        snprintf(p, sizeof p, "%s/%s/buffers_after/%s", run, prec, nm);
        g = gread(f, p, &ng);
        double *ov = sx_mallocarray((size_t)ng, sizeof(double));
        ck_assert(sx_nn_model_get(m, nm, ov, ng, &st) == SX_OK);
        if (strstr(nm, "num_batches_tracked"))
            ck_assert_msg(ov[0] == g[0], "%s: %g vs %g", p, ov[0], g[0]);
        else
            cmp_arrays(p, ov, g, ng, tol, frac, 0);
        sx_free(ov);
        sx_free(g);
    }
    sx_free(out);
    sx_free(perm);
    sx_free(gi);
    sx_free(go);
    sx_csr_free(csr);
    sx_free(x);
    sx_free(dom);
    if (m != m32) sx_nn_model_free(m);
    sx_nn_model_free(m32);
    H5Fclose(f);
}

START_TEST(encode_train_f32) { encode_case("latent_train", SX_NN_F32, 0, -1); }
END_TEST
START_TEST(encode_train_f64) { encode_case("latent_train", SX_NN_F64, 0, -1); }
END_TEST
START_TEST(encode_eval_f32) { encode_case("latent_eval", SX_NN_F32, 1, -1); }
END_TEST
START_TEST(encode_eval_f64) { encode_case("latent_eval", SX_NN_F64, 1, -1); }
END_TEST
START_TEST(impute_f32) { encode_case("impute_train_d1", SX_NN_F32, 0, 1); }
END_TEST
START_TEST(impute_f64) { encode_case("impute_train_d1", SX_NN_F64, 0, 1); }
END_TEST

/* 50 steps one by one through the step API: per-step losses. */
static void steps_case(int dtype)
{
    sx_status st = {0};
    hid_t f = gopen("steps.h5");
    sx_nn_model *m = gmodel(f, "init_state", dtype);
    int64_t n, np;
    float *x = gread_f32(f, "inputs/x", NULL);
    int32_t *dom = gread_dom(f, "inputs/domain", &n);
    float *eps = gread_f32(f, "inputs/eps", NULL);
    int64_t *perm = NULL;
    ck_assert(sx_h5_read_i64(f, "inputs/epoch_permutations", &perm, &np, &st) == SX_OK);
    sx_csr *csr = dense_csr(x, n, NN_G);
    sx_nn_train_opts o;
    sx_nn_train_opts_default(&o);
    o.adam_mode = SX_NN_ADAM_TORCH113;
    o.threads = 1;
    o.batch_size = 10;
    sx_nn_trainer *t = sx_nn_trainer_new(m, &o, &st);
    ck_assert(t != NULL);
    const char *prec = dtype == SX_NN_F32 ? "float32" : "float64";
    char p[128];
    snprintf(p, sizeof p, "%s/recon_loss", prec);
    double *grec = gread(f, p, NULL);
    snprintf(p, sizeof p, "%s/kl_loss", prec);
    double *gkl = gread(f, p, NULL);
    snprintf(p, sizeof p, "%s/total", prec);
    double *gtot = gread(f, p, NULL);
    double tol = dtype == SX_NN_F32 ? 1e-4 : 1e-10, worst = 0;
    for (int s = 0; s < 50; s++) {
        int e = s / 5, i = s % 5;
        sx_nn_losses l;
        ck_assert(sx_nn_trainer_forward_backward(t, csr, perm + e * 50 + 10 * i, 10, dom,
                                                 eps + s * 10 * NN_Z, &l, &st) == SX_OK);
        ck_assert(sx_nn_trainer_adam(t, &st) == SX_OK);
        double r[3] = {sx_test_reldiff(l.recon, grec[s], 0), sx_test_reldiff(l.kl, gkl[s], 0),
                       sx_test_reldiff(l.total, gtot[s], 0)};
        for (int k = 0; k < 3; k++) {
            ck_assert_msg(r[k] <= tol, "%s step %d loss %d: rel diff %.3g (ours %.10g/%.10g/%.10g "
                          "golden %.10g/%.10g/%.10g)", prec, s, k, r[k], l.recon, l.kl, l.total,
                          grec[s], gkl[s], gtot[s]);
            worst = fmax(worst, r[k]);
        }
    }
    /* final state and Adam moments after 50 steps (1.13 rule: every unit has 50 steps) */
    for (int i = 0; i < sx_nn_model_n_tensors(m); i++) {
        const char *nm = sx_nn_model_tensor_name(m, i);
        snprintf(p, sizeof p, "%s/final_state/%s", prec, nm);
        int64_t ng;
        double *g = gread(f, p, &ng);
        double *ov = sx_mallocarray((size_t)ng, sizeof(double));
        ck_assert(sx_nn_model_get(m, nm, ov, ng, &st) == SX_OK);
        if (strstr(nm, "num_batches_tracked"))
            ck_assert_msg(ov[0] == g[0], "%s", p);
        else
            cmp_arrays(p, ov, g, ng, tol, dtype == SX_NN_F32 ? 1.0 : 1e-3,
                       dtype == SX_NN_F32 ? 1e-3 : 1e-8);
        if (is_param(nm)) ck_assert_int_eq(sx_nn_trainer_adam_steps(t, nm), 50);
        sx_free(ov);
        sx_free(g);
    }
    fprintf(stderr, "steps %s: worst per-step loss relative difference %.3g\n", prec, worst);
    sx_nn_trainer_free(t);
    sx_free(grec);
    sx_free(gkl);
    sx_free(gtot);
    sx_free(perm);
    sx_free(eps);
    sx_csr_free(csr);
    sx_free(x);
    sx_free(dom);
    sx_nn_model_free(m);
    H5Fclose(f);
}

START_TEST(steps_f32) { steps_case(SX_NN_F32); }
END_TEST
START_TEST(steps_f64) { steps_case(SX_NN_F64); }
END_TEST

/* The whole loop (sx_nn_train) replaying the golden minibatches and noise: epoch count from
 * max_iteration, monitored epoch losses, and VAE.fit's final state (last epoch, no stop). */
START_TEST(fit_loop_f32)
{
    sx_status st = {0};
    hid_t f = gopen("steps.h5");
    sx_nn_model *m = gmodel(f, "init_state", SX_NN_F32);
    int64_t n, np;
    float *x = gread_f32(f, "inputs/x", NULL);
    int32_t *dom = gread_dom(f, "inputs/domain", &n);
    float *eps = gread_f32(f, "inputs/eps", NULL);
    int64_t *perm = NULL;
    ck_assert(sx_h5_read_i64(f, "inputs/epoch_permutations", &perm, &np, &st) == SX_OK);
    sx_csr *csr = dense_csr(x, n, NN_G);
    sx_nn_train_opts o;
    sx_nn_train_opts_default(&o);
    o.adam_mode = SX_NN_ADAM_TORCH113;
    o.threads = 1;
    o.batch_size = 10;
    o.max_iteration = 50;
    o.final_weights = SX_NN_FINAL_LAST;
    o.early_stopping = SX_NN_STOP_SCALEX; /* the golden run is SCALEX's VAE.fit */
    o.replay_perm = perm;
    o.replay_eps = eps;
    ck_assert_msg(sx_nn_train(m, csr, dom, &o, NULL, &st) == SX_OK, "%s", st.msg);
    sx_nn_train_log lg;
    sx_nn_model_train_log(m, &lg);
    ck_assert_int_eq(lg.n_epochs, 10);
    ck_assert_int_eq(lg.steps, 50);
    ck_assert_int_eq(lg.early_stopped, 0);
    double *gm = gread(f, "fit_float32/epoch_monitored_loss", NULL), mon[10];
    for (int e = 0; e < 10; e++) mon[e] = lg.recon[e] + lg.kl[e];
    cmp_arrays("epoch_monitored_loss", mon, gm, 10, 1e-4, 0, 0);
    int best = 0;
    for (int e = 1; e < 10; e++)
        if (gm[e] < gm[best]) best = e;
    ck_assert_int_eq(lg.best_epoch, best);
    for (int i = 0; i < sx_nn_model_n_tensors(m); i++) {
        const char *nm = sx_nn_model_tensor_name(m, i);
        char p[160];
        snprintf(p, sizeof p, "fit_float32/%s", nm);
        int64_t ng;
        double *g = gread(f, p, &ng);
        double *ov = sx_mallocarray((size_t)ng, sizeof(double));
        ck_assert(sx_nn_model_get(m, nm, ov, ng, &st) == SX_OK);
        if (strstr(nm, "num_batches_tracked"))
            ck_assert_msg(ov[0] == g[0], "%s", p);
        else
            cmp_arrays(p, ov, g, ng, 1e-4, 1.0, 1e-3);
        sx_free(ov);
        sx_free(g);
    }
    sx_free(gm);
    sx_free(perm);
    sx_free(eps);
    sx_csr_free(csr);
    sx_free(x);
    sx_free(dom);
    sx_nn_model_free(m);
    H5Fclose(f);
}
END_TEST

int main(void)
{
    sx_h5_quiet();
    Suite *s = suite_create("nn_golden_loop");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, encode_train_f32);
    tcase_add_test(tc, encode_train_f64);
    tcase_add_test(tc, encode_eval_f32);
    tcase_add_test(tc, encode_eval_f64);
    tcase_add_test(tc, impute_f32);
    tcase_add_test(tc, impute_f64);
    tcase_add_test(tc, steps_f32);
    tcase_add_test(tc, steps_f64);
    tcase_add_test(tc, fit_loop_f32);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
