/* Finite-difference gradient check (float64) of every parameter, determinism, model file
 * roundtrip and rejection of corrupt / unknown-version files. */
#include <unistd.h>

#include "nn_golden_util.h"

/* Loss of one training-mode forward on a copy of m (running stats do not feed the loss). */
static double loss_at(sx_nn_model *m, const sx_csr *x, const int32_t *dom, int64_t n,
                      const float *eps)
{
    sx_status st = {0};
    sx_nn_model *c = sx_nn_model_clone(m, SX_NN_F64, &st);
    sx_nn_train_opts o;
    sx_nn_train_opts_default(&o);
    o.threads = 1;
    sx_nn_trainer *t = sx_nn_trainer_new(c, &o, &st);
    sx_nn_losses l;
    ck_assert(sx_nn_trainer_forward(t, x, NULL, n, dom, eps, 0, &l, &st) == SX_OK);
    sx_nn_trainer_free(t);
    sx_nn_model_free(c);
    return l.total;
}

/* Central differences on every element of every parameter (sizes kept tiny), on the golden
 * train_step batch (domain 2 has one row: its DSBN unit must have no gradient). */
START_TEST(finite_difference_f64)
{
    sx_status st = {0};
    hid_t f = gopen("train_step.h5");
    sx_nn_model *m = gmodel(f, "init_state", SX_NN_F64);
    int64_t n;
    float *x = gread_f32(f, "inputs/x", NULL);
    int32_t *dom = gread_dom(f, "inputs/domain", &n);
    float *eps = gread_f32(f, "inputs/eps", NULL);
    sx_csr *csr = dense_csr(x, n, NN_G);
    sx_nn_model *work = sx_nn_model_clone(m, SX_NN_F64, &st);
    sx_nn_train_opts o;
    sx_nn_train_opts_default(&o);
    o.threads = 1;
    o.keep_grads = 1;
    sx_nn_trainer *t = sx_nn_trainer_new(work, &o, &st);
    ck_assert(sx_nn_trainer_forward_backward(t, csr, NULL, n, dom, eps, NULL, &st) == SX_OK);
    double worst = 0;
    for (int i = 0; i < sx_nn_model_n_tensors(m); i++) {
        const char *nm = sx_nn_model_tensor_name(m, i);
        if (!is_param(nm)) continue;
        int nd;
        int64_t dims[2];
        ck_assert(sx_nn_model_tensor_shape(m, nm, &nd, dims, &st) == SX_OK);
        int64_t k = nd == 2 ? dims[0] * dims[1] : dims[0];
        double *v = sx_mallocarray((size_t)k, sizeof(double));
        double *g = sx_mallocarray((size_t)k, sizeof(double));
        ck_assert(sx_nn_model_get(m, nm, v, k, &st) == SX_OK);
        if (sx_nn_trainer_grad_state(t, nm) == SX_NN_GRAD_NONE) {
            for (int64_t j = 0; j < k; j++) g[j] = 0; /* the loss must not depend on it */
        } else {
            ck_assert(sx_nn_trainer_get(t, SX_NN_WHAT_GRAD, nm, g, k, &st) == SX_OK);
        }
        for (int64_t j = 0; j < k; j++) {
            double h = 1e-5 * fmax(1.0, fabs(v[j])), v0 = v[j];
            v[j] = v0 + h;
            sx_nn_model_set(m, nm, v, k, &st);
            double lp = loss_at(m, csr, dom, n, eps);
            v[j] = v0 - h;
            sx_nn_model_set(m, nm, v, k, &st);
            double lm = loss_at(m, csr, dom, n, eps);
            v[j] = v0;
            sx_nn_model_set(m, nm, v, k, &st);
            double fd = (lp - lm) / (2 * h);
            /* central differences on a loss of ~30 carry ~1e-9 absolute roundoff: relative error
             * with a floor of 1e-2 on the gradient scale */
            double err = fabs(fd - g[j]) / fmax(1e-2, fabs(fd));
            ck_assert_msg(err < 1e-5, "%s[%lld]: analytic %.10g, finite difference %.10g", nm,
                          (long long)j, g[j], fd);
            worst = fmax(worst, err);
        }
        sx_free(v);
        sx_free(g);
    }
    fprintf(stderr, "finite differences: worst relative error %.3g\n", worst);
    sx_nn_trainer_free(t);
    sx_nn_model_free(work);
    sx_nn_model_free(m);
    sx_csr_free(csr);
    sx_free(x);
    sx_free(dom);
    sx_free(eps);
    H5Fclose(f);
}
END_TEST

/* Small random data set for the loop tests. */
static sx_csr *toy(int64_t n, int32_t **dom)
{
    float *a = sx_calloc((size_t)(n * NN_G), sizeof(float));
    uint64_t s = 12345;
    for (int64_t i = 0; i < n * NN_G; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(s >> 11) * 0x1.0p-53;
        if (u < 0.35) a[i] = (float)(u / 0.35);
    }
    *dom = sx_mallocarray((size_t)n, sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) (*dom)[i] = (int32_t)(i % NN_D);
    sx_csr *c = dense_csr(a, n, NN_G);
    sx_free(a);
    return c;
}

static sx_nn_model *trained(const sx_csr *x, const int32_t *dom, uint64_t seed, int threads)
{
    sx_status st = {0};
    sx_nn_config c = {NN_G, NN_H, NN_Z, NN_D, SX_NN_F32};
    sx_nn_model *m = sx_nn_model_new(&c, seed, &st);
    sx_nn_train_opts o;
    sx_nn_train_opts_default(&o);
    o.seed = seed;
    o.threads = threads;
    o.batch_size = 16;
    o.max_iteration = 60;
    ck_assert_msg(sx_nn_train(m, x, dom, &o, NULL, &st) == SX_OK, "%s", st.msg);
    return m;
}

static int same_weights(const sx_nn_model *a, const sx_nn_model *b)
{
    sx_status st = {0};
    for (int i = 0; i < sx_nn_model_n_tensors(a); i++) {
        const char *nm = sx_nn_model_tensor_name(a, i);
        int nd;
        int64_t d[2];
        sx_nn_model_tensor_shape(a, nm, &nd, d, &st);
        int64_t k = nd == 2 ? d[0] * d[1] : nd == 1 ? d[0] : 1;
        double *u = sx_mallocarray((size_t)k, sizeof(double)), *v = sx_mallocarray((size_t)k, 8);
        sx_nn_model_get(a, nm, u, k, &st);
        sx_nn_model_get(b, nm, v, k, &st);
        int eq = memcmp(u, v, (size_t)k * sizeof(double)) == 0;
        sx_free(u);
        sx_free(v);
        if (!eq) return 0;
    }
    return 1;
}

START_TEST(determinism)
{
    int32_t *dom;
    sx_csr *x = toy(100, &dom);
    sx_nn_model *a = trained(x, dom, 7, 1), *b = trained(x, dom, 7, 1), *c = trained(x, dom, 8, 1);
    ck_assert_msg(same_weights(a, b), "same seed must give identical weights");
    ck_assert_msg(!same_weights(a, c), "another seed must give other weights");
    /* two worker threads split hidden units without changing any sum's order */
    sx_nn_model *d = trained(x, dom, 7, 2);
    ck_assert_msg(same_weights(a, d), "2 threads must equal 1 thread");
    sx_nn_train_log lg;
    sx_nn_model_train_log(a, &lg);
    ck_assert_int_eq(lg.n_epochs, 10); /* 100/16 = 6 steps per epoch, ceil(60/6) = 10 */
    ck_assert_int_eq(lg.steps, 60);
    sx_nn_model_free(a);
    sx_nn_model_free(b);
    sx_nn_model_free(c);
    sx_nn_model_free(d);
    sx_csr_free(x);
    sx_free(dom);
}
END_TEST

START_TEST(save_load_roundtrip)
{
    sx_status st = {0};
    int32_t *dom;
    sx_csr *x = toy(100, &dom);
    sx_nn_model *m = trained(x, dom, 3, 1);
    const char *genes[NN_G];
    char gb[NN_G][16];
    for (int i = 0; i < NN_G; i++) {
        snprintf(gb[i], sizeof gb[i], "GENE%d", i);
        genes[i] = gb[i];
    }
    const char *doms[] = {"batchA", "batchB", "batchC"};
    double scale[NN_D * NN_G];
    for (int i = 0; i < NN_D * NN_G; i++) scale[i] = 1.0 + i;
    ck_assert(sx_nn_model_set_genes(m, genes, NN_G, &st) == SX_OK);
    ck_assert(sx_nn_model_set_domains(m, doms, NN_D, &st) == SX_OK);
    ck_assert(sx_nn_model_set_scale(m, scale, NN_G, &st) == SX_OK);
    ck_assert(sx_nn_model_set_prep_json(m, "{\"min_cells\": 3}", &st) == SX_OK);
    char path[600];
    snprintf(path, sizeof path, "%s/model.h5", sx_test_tmpdir());
    ck_assert_msg(sx_nn_model_save(m, path, &st) == SX_OK, "%s", st.msg);
    sx_nn_model *r = sx_nn_model_load(path, &st);
    ck_assert_msg(r != NULL, "%s", st.msg);
    ck_assert(same_weights(m, r));
    int64_t n;
    ck_assert_str_eq(sx_nn_model_genes(r, &n)[5], "GENE5");
    ck_assert_str_eq(sx_nn_model_domains(r, &n)[2], "batchC");
    ck_assert_double_eq(sx_nn_model_scale(r, &n)[NN_G + 1], scale[NN_G + 1]);
    ck_assert_str_eq(sx_nn_model_prep_json(r), "{\"min_cells\": 3}");
    sx_nn_train_log a, b;
    sx_nn_model_train_log(m, &a);
    sx_nn_model_train_log(r, &b);
    ck_assert_int_eq(a.n_epochs, b.n_epochs);
    ck_assert_double_eq(a.recon[a.n_epochs - 1], b.recon[b.n_epochs - 1]);
    /* bit-identical latent in both inference modes */
    for (int ev = 0; ev < 2; ev++) {
        sx_nn_infer_opts o;
        sx_nn_infer_opts_default(&o);
        o.eval = ev;
        o.threads = 1;
        double *l1 = sx_mallocarray(100 * NN_Z, sizeof(double));
        double *l2 = sx_mallocarray(100 * NN_Z, sizeof(double));
        ck_assert(sx_nn_encode(m, x, dom, &o, l1, NULL, &st) == SX_OK);
        ck_assert(sx_nn_encode(r, x, dom, &o, l2, NULL, &st) == SX_OK);
        ck_assert(memcmp(l1, l2, 100 * NN_Z * sizeof(double)) == 0);
        sx_free(l1);
        sx_free(l2);
    }
    /* unknown version -> EUNSUPPORTED */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert(f >= 0);
    int64_t ver = 99;
    hid_t at = H5Aopen(f, "format_version", H5P_DEFAULT);
    H5Awrite(at, H5T_NATIVE_INT64, &ver);
    H5Aclose(at);
    H5Fclose(f);
    sx_status_clear(&st);
    ck_assert(sx_nn_model_load(path, &st) == NULL);
    ck_assert_int_eq(st.code, SX_EUNSUPPORTED);
    ck_assert_msg(strstr(st.msg, "version 99") != NULL, "%s", st.msg);
    /* inconsistent shape -> EFORMAT naming the tensor */
    ck_assert(sx_nn_model_save(m, path, &st) == SX_OK);
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "state/decoder.net.0.fc.bias", H5P_DEFAULT);
    float bad[5] = {0};
    hsize_t d5 = 5;
    hid_t sp = H5Screate_simple(1, &d5, NULL);
    hid_t ds = H5Dcreate2(f, "state/decoder.net.0.fc.bias", H5T_NATIVE_FLOAT, sp, H5P_DEFAULT,
                          H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, bad);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
    sx_status_clear(&st);
    ck_assert(sx_nn_model_load(path, &st) == NULL);
    ck_assert_int_eq(st.code, SX_EFORMAT);
    ck_assert_msg(strstr(st.msg, "decoder.net.0.fc.bias") != NULL, "%s", st.msg);
    /* not HDF5 at all */
    FILE *fp = fopen(path, "wb");
    fputs("this is not a model", fp);
    fclose(fp);
    sx_status_clear(&st);
    ck_assert(sx_nn_model_load(path, &st) == NULL);
    ck_assert(st.code != SX_OK && st.msg[0]);
    unlink(path);
    sx_nn_model_free(m);
    sx_nn_model_free(r);
    sx_csr_free(x);
    sx_free(dom);
}
END_TEST

START_TEST(rejects_bad_input)
{
    sx_status st = {0};
    int32_t *dom;
    sx_csr *x = toy(10, &dom);
    sx_nn_config c = {NN_G, NN_H, NN_Z, NN_D, SX_NN_F32};
    sx_nn_model *m = sx_nn_model_new(&c, 1, &st);
    sx_nn_train_opts o;
    sx_nn_train_opts_default(&o); /* batch 64 > 10 cells */
    ck_assert_int_eq(sx_nn_train(m, x, dom, &o, NULL, &st), SX_EINVAL);
    ck_assert_msg(strstr(st.msg, "fewer than one minibatch") != NULL, "%s", st.msg);
    o.batch_size = 4;
    dom[3] = 7;
    ck_assert_int_eq(sx_nn_train(m, x, dom, &o, NULL, &st), SX_EINVAL);
    dom[3] = 0;
    x->data[0] = 2.0f;
    ck_assert_int_eq(sx_nn_train(m, x, dom, &o, NULL, &st), SX_EDATA);
    sx_nn_model_free(m);
    sx_csr_free(x);
    sx_free(dom);
}
END_TEST

/* The trainer's random stream (minibatch shuffles, reparameterization noise) must not re-use
 * the draws that made the initial weights: PyTorch continues one generator after the init.
 * Truth: an independent Python re-statement of xoshiro256** (checked against the reference
 * C code's known answer: state {1,2,3,4} gives 11520, 0, 1509978240), seeded through
 * splitmix64 with 124 and advanced by the published jump, then Box-Muller (cosine). */
START_TEST(noise_stream_after_init)
{
    static const double jumped[8] = {-0.275340808, -0.570944788, -0.664197546, -0.953505625,
                                     0.627312833,  1.13967995,   0.28055552,   -1.1816524};
    static const double plain[8] = {0.149391017, 0.589968186,  -1.41081222,   -0.377243955,
                                    -1.40422503, -0.81711133,  -0.0981925846, -0.570724315};
    sx_status st = {0};
    sx_nn_config c = {NN_G, NN_H, NN_Z, NN_D, SX_NN_F32};
    sx_nn_model *m = sx_nn_model_new(&c, 124, &st);
    ck_assert_msg(m != NULL, "%s", st.msg);
    sx_nn_train_opts o;
    sx_nn_train_opts_default(&o);
    o.seed = 124;
    o.threads = 1;
    sx_nn_trainer *t = sx_nn_trainer_new(m, &o, &st);
    ck_assert_msg(t != NULL, "%s", st.msg);
    int32_t *dom;
    sx_csr *x = toy(2, &dom);
    ck_assert_msg(sx_nn_trainer_forward(t, x, NULL, 2, dom, NULL, 0, NULL, &st) == SX_OK, "%s",
                  st.msg);
    double z[8], mu[8], var[8], eps[8];
    ck_assert(sx_nn_trainer_activation(t, "z", z, 8, &st) == SX_OK);
    ck_assert(sx_nn_trainer_activation(t, "mu", mu, 8, &st) == SX_OK);
    ck_assert(sx_nn_trainer_activation(t, "var", var, 8, &st) == SX_OK);
    for (int i = 0; i < 8; i++) eps[i] = (z[i] - mu[i]) / sqrt(var[i]);
    /* the unjumped stream is the one W1 was drawn from: its uniforms come back from W1 */
    double *w1 = sx_mallocarray(NN_H * NN_G, sizeof(double));
    ck_assert(sx_nn_model_get(m, "encoder.enc.net.0.fc.weight", w1, NN_H * NN_G, &st) == SX_OK);
    double from_w1_max = 0, vs_jumped = 0, vs_w1_min = 1e9;
    for (int i = 0; i < 8; i++) {
        double u1 = (w1[2 * i] * sqrt((double)NN_G) + 1) / 2;
        double u2 = (w1[2 * i + 1] * sqrt((double)NN_G) + 1) / 2;
        double e_w1 = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
        from_w1_max = fmax(from_w1_max, fabs(e_w1 - plain[i]));
        vs_jumped = fmax(vs_jumped, fabs(eps[i] - jumped[i]));
        vs_w1_min = fmin(vs_w1_min, fabs(eps[i] - e_w1));
    }
    ck_assert_msg(from_w1_max < 1e-4, "W1 is not the seed's plain stream (%g)", from_w1_max);
    ck_assert_msg(vs_jumped < 1e-4, "training noise is not the jumped stream (%g)", vs_jumped);
    ck_assert_msg(vs_w1_min > 1e-3, "training noise re-uses W1's draws (%g)", vs_w1_min);
    sx_free(w1);
    sx_nn_trainer_free(t);
    sx_nn_model_free(m);
    sx_csr_free(x);
    sx_free(dom);
}
END_TEST

int main(void)
{
    sx_h5_quiet();
    Suite *s = suite_create("nn_model");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, finite_difference_f64);
    tcase_add_test(tc, determinism);
    tcase_add_test(tc, noise_stream_after_init);
    tcase_add_test(tc, save_load_roundtrip);
    tcase_add_test(tc, rejects_bad_input);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
