/* The full-width first-layer kernels. The golden network has 16 hidden units, narrower than
 * one register tile, so its tests never reach the vectorized paths (64-unit W1 tiles, gene
 * blocks, two-row interleave, packed da1, the fused gradient + Adam pass). Here the network
 * is wide and ragged (H = 200: three full tiles and an 8-wide one; G = 300: a partial gene
 * block), the minibatch has an odd number of rows, and some rows list their columns out of
 * order. Truth: a naive double-precision first layer from the PyTorch-layout weights,
 * central finite differences (float64), and the dense first layer (OpenBLAS GEMMs). */
#include "nn_golden_util.h"

enum { WG = 300, WH = 200, WZ = 4, WD = 3, WB = 33 };

/* Random sparse minibatch (~30% nonzero, gene 7 never expressed), rows with b % 5 == 0
 * stored with descending column indices. */
static sx_csr *wide_x(int64_t n, int64_t g, int32_t **dom, uint64_t seed)
{
    sx_status st = {0};
    sx_csr *c = sx_csr_new(n, g, n * g, &st);
    ck_assert_ptr_nonnull(c);
    uint64_t s = seed;
    int64_t e = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t e0 = e;
        for (int64_t j = 0; j < g; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            double u = (double)(s >> 11) * 0x1.0p-53;
            if (u < 0.3 && j != 7) {
                c->indices[e] = (int32_t)j;
                c->data[e] = (float)(0.05 + u / 0.3 * 0.95);
                e++;
            }
        }
        if (i % 5 == 0)
            for (int64_t a = e0, b = e - 1; a < b; a++, b--) {
                int32_t ti = c->indices[a];
                float tv = c->data[a];
                c->indices[a] = c->indices[b];
                c->data[a] = c->data[b];
                c->indices[b] = ti;
                c->data[b] = tv;
            }
        c->indptr[i + 1] = e;
    }
    *dom = sx_mallocarray((size_t)n, sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) (*dom)[i] = (int32_t)((i * 7) % WD);
    return c;
}

static float *wide_eps(int64_t n)
{
    float *eps = sx_mallocarray((size_t)(n * WZ), sizeof(float));
    for (int64_t i = 0; i < n * WZ; i++) eps[i] = (float)sin(0.37 * (double)i);
    return eps;
}

static sx_nn_trainer *trainer(sx_nn_model *m, int first_layer, int keep, int threads)
{
    sx_status st = {0};
    sx_nn_train_opts o;
    sx_nn_train_opts_default(&o);
    o.threads = threads;
    o.first_layer = first_layer;
    o.keep_grads = keep;
    sx_nn_trainer *t = sx_nn_trainer_new(m, &o, &st);
    ck_assert_msg(t != NULL, "%s", st.msg);
    return t;
}

/* enc_linear of the sparse kernel against a naive sum over the PyTorch-layout weights. */
static void check_forward(int dtype, int threads)
{
    sx_status st = {0};
    int32_t *dom;
    sx_csr *x = wide_x(WB, WG, &dom, 99);
    float *eps = wide_eps(WB);
    sx_nn_config c = {WG, WH, WZ, WD, dtype};
    sx_nn_model *m = sx_nn_model_new(&c, 5, &st);
    ck_assert_ptr_nonnull(m);
    sx_nn_trainer *t = trainer(m, SX_NN_FIRST_SPARSE, 0, threads);
    ck_assert(sx_nn_trainer_forward(t, x, NULL, WB, dom, eps, 0, NULL, &st) == SX_OK);
    double *w = sx_mallocarray(WH * WG, sizeof(double)), *b1 = sx_mallocarray(WH, 8);
    double *a1 = sx_mallocarray(WB * WH, sizeof(double));
    ck_assert(sx_nn_model_get(m, "encoder.enc.net.0.fc.weight", w, WH * WG, &st) == SX_OK);
    ck_assert(sx_nn_model_get(m, "encoder.enc.net.0.fc.bias", b1, WH, &st) == SX_OK);
    ck_assert(sx_nn_trainer_activation(t, "enc_linear", a1, WB * WH, &st) == SX_OK);
    double worst = 0, tol = dtype == SX_NN_F32 ? 1e-5 : 1e-13;
    for (int64_t b = 0; b < WB; b++)
        for (int64_t h = 0; h < WH; h++) {
            double ref = b1[h], mag = fabs(b1[h]);
            for (int64_t e = x->indptr[b]; e < x->indptr[b + 1]; e++) {
                ref += (double)x->data[e] * w[h * WG + x->indices[e]];
                mag += fabs((double)x->data[e] * w[h * WG + x->indices[e]]);
            }
            double err = fabs(a1[b * WH + h] - ref) / fmax(mag, 1e-3);
            ck_assert_msg(err < tol, "enc_linear[%lld, %lld]: %.10g, naive %.10g",
                          (long long)b, (long long)h, a1[b * WH + h], ref);
            worst = fmax(worst, err);
        }
    fprintf(stderr, "wide forward (%s, %d threads): worst relative error %.3g\n",
            dtype == SX_NN_F32 ? "f32" : "f64", threads, worst);
    sx_free(w);
    sx_free(b1);
    sx_free(a1);
    sx_nn_trainer_free(t);
    sx_nn_model_free(m);
    sx_csr_free(x);
    sx_free(dom);
    sx_free(eps);
}

START_TEST(wide_forward_naive)
{
    check_forward(SX_NN_F32, 1);
    check_forward(SX_NN_F32, 2);
    check_forward(SX_NN_F64, 2);
}
END_TEST

static double loss_at(const sx_nn_model *m, const sx_csr *x, const int32_t *dom, int64_t n,
                      const float *eps)
{
    sx_status st = {0};
    sx_nn_model *c = sx_nn_model_clone(m, SX_NN_F64, &st);
    sx_nn_trainer *t = trainer(c, SX_NN_FIRST_SPARSE, 0, 1);
    sx_nn_losses l;
    ck_assert(sx_nn_trainer_forward(t, x, NULL, n, dom, eps, 0, &l, &st) == SX_OK);
    sx_nn_trainer_free(t);
    sx_nn_model_free(c);
    return l.total;
}

/* float64 first-layer gradients (sparse CSC kernel over packed da1; 32-wide sub-tiles of the
 * 64-wide W1 tiles) against central differences, on a sample of elements in every tile. */
START_TEST(wide_gradient_fd_f64)
{
    sx_status st = {0};
    const int64_t G = 150, H = 72, B = 9;
    int32_t *dom;
    sx_csr *x = wide_x(B, G, &dom, 7);
    float *eps = wide_eps(B);
    sx_nn_config c = {G, H, WZ, WD, SX_NN_F64};
    sx_nn_model *m = sx_nn_model_new(&c, 11, &st);
    sx_nn_trainer *t = trainer(m, SX_NN_FIRST_SPARSE, 1, 2);
    ck_assert(sx_nn_trainer_forward_backward(t, x, NULL, B, dom, eps, NULL, &st) == SX_OK);
    const char *names[2] = {"encoder.enc.net.0.fc.weight", "encoder.enc.net.0.fc.bias"};
    const int64_t sizes[2] = {H * G, H};
    double worst = 0;
    for (int p = 0; p < 2; p++) {
        int64_t k = sizes[p];
        double *v = sx_mallocarray((size_t)k, sizeof(double)), *g = sx_mallocarray((size_t)k, 8);
        ck_assert(sx_nn_model_get(m, names[p], v, k, &st) == SX_OK);
        ck_assert(sx_nn_trainer_get(t, SX_NN_WHAT_GRAD, names[p], g, k, &st) == SX_OK);
        for (int64_t j = 0; j < k; j += p == 0 ? 97 : 5) {
            int64_t jj = p == 0 && (j / 97) % 4 == 0 ? (j / G) * G + 7 : j; /* gene 7: zero */
            double h = 1e-5 * fmax(1.0, fabs(v[jj])), v0 = v[jj];
            v[jj] = v0 + h;
            sx_nn_model_set(m, names[p], v, k, &st);
            double lp = loss_at(m, x, dom, B, eps);
            v[jj] = v0 - h;
            sx_nn_model_set(m, names[p], v, k, &st);
            double lm = loss_at(m, x, dom, B, eps);
            v[jj] = v0;
            sx_nn_model_set(m, names[p], v, k, &st);
            double fd = (lp - lm) / (2 * h), err = fabs(fd - g[jj]) / fmax(1e-2, fabs(fd));
            ck_assert_msg(err < 1e-5, "%s[%lld]: analytic %.10g, finite difference %.10g",
                          names[p], (long long)jj, g[jj], fd);
            if (p == 0 && jj % G == 7) ck_assert(g[jj] == 0.0);
            worst = fmax(worst, err);
        }
        sx_free(v);
        sx_free(g);
    }
    fprintf(stderr, "wide finite differences: worst relative error %.3g\n", worst);
    sx_nn_trainer_free(t);
    sx_nn_model_free(m);
    sx_csr_free(x);
    sx_free(dom);
    sx_free(eps);
}
END_TEST

/* float32: the sparse W1 gradient (keep_grads) equals the dense GEMM gradient, and five
 * training steps through the fused gradient + Adam pass (2 threads) land on the weights the
 * dense first layer (materialized gradient, plain Adam) reaches. */
START_TEST(wide_sparse_matches_dense_f32)
{
    sx_status st = {0};
    int32_t *dom;
    sx_csr *x = wide_x(4 * WB, WG, &dom, 3);
    float *eps = wide_eps(WB);
    sx_nn_config c = {WG, WH, WZ, WD, SX_NN_F32};
    sx_nn_model *ms = sx_nn_model_new(&c, 21, &st), *md = sx_nn_model_clone(ms, SX_NN_F32, &st);
    sx_nn_model *mk = sx_nn_model_clone(ms, SX_NN_F32, &st);
    sx_nn_trainer *ts = trainer(ms, SX_NN_FIRST_SPARSE, 0, 2);
    sx_nn_trainer *td = trainer(md, SX_NN_FIRST_DENSE, 0, 1);
    sx_nn_trainer *tk = trainer(mk, SX_NN_FIRST_SPARSE, 1, 2);
    const char *w1 = "encoder.enc.net.0.fc.weight";
    double *a = sx_mallocarray(WH * WG, sizeof(double)), *b = sx_mallocarray(WH * WG, 8);
    ck_assert(sx_nn_trainer_forward_backward(td, x, NULL, WB, dom, eps, NULL, &st) == SX_OK);
    ck_assert(sx_nn_trainer_forward_backward(tk, x, NULL, WB, dom, eps, NULL, &st) == SX_OK);
    ck_assert(sx_nn_trainer_get(td, SX_NN_WHAT_GRAD, w1, a, WH * WG, &st) == SX_OK);
    ck_assert(sx_nn_trainer_get(tk, SX_NN_WHAT_GRAD, w1, b, WH * WG, &st) == SX_OK);
    double gmax = 0;
    for (int64_t i = 0; i < WH * WG; i++) gmax = fmax(gmax, fabs(a[i]));
    ck_assert(gmax > 0);
    for (int64_t i = 0; i < WH * WG; i++)
        ck_assert_msg(fabs(a[i] - b[i]) <= 1e-5 * gmax, "W1 grad[%lld]: sparse %.9g dense %.9g",
                      (long long)i, b[i], a[i]);
    ck_assert(sx_nn_trainer_adam(td, &st) == SX_OK);
    int64_t rows[WB];
    for (int s = 0; s < 5; s++) {
        for (int64_t i = 0; i < WB; i++) rows[i] = (s * 29 + i * 3) % (4 * WB);
        if (s > 0) {
            ck_assert(sx_nn_trainer_forward_backward(td, x, rows, WB, dom, eps, NULL, &st) == 0);
            ck_assert(sx_nn_trainer_adam(td, &st) == SX_OK);
        }
        if (s == 0) /* same first minibatch as the dense trainer's (all 33 first rows) */
            ck_assert(sx_nn_trainer_forward_backward(ts, x, NULL, WB, dom, eps, NULL, &st) == 0);
        else
            ck_assert(sx_nn_trainer_forward_backward(ts, x, rows, WB, dom, eps, NULL, &st) == 0);
        ck_assert(sx_nn_trainer_adam(ts, &st) == SX_OK);
    }
    ck_assert(sx_nn_model_get(md, w1, a, WH * WG, &st) == SX_OK);
    ck_assert(sx_nn_model_get(ms, w1, b, WH * WG, &st) == SX_OK);
    /* Adam divides by sqrt(v): where a gradient nearly cancels, rounding differences of the two
     * summation orders become lr-sized steps, so single elements may differ by a few 1e-5;
     * a wrong kernel moves most elements by ~ lr per step (5 steps: ~1e-3). */
    double worst = 0, moved = 0, mean = 0;
    double *w0 = sx_mallocarray(WH * WG, sizeof(double));
    ck_assert(sx_nn_model_get(mk, w1, w0, WH * WG, &st) == SX_OK); /* untouched: initial */
    for (int64_t i = 0; i < WH * WG; i++) {
        worst = fmax(worst, fabs(a[i] - b[i]));
        mean += fabs(a[i] - b[i]) / (double)(WH * WG);
        moved = fmax(moved, fabs(a[i] - w0[i]));
        ck_assert_msg(fabs(a[i] - b[i]) <= 1e-4, "W1[%lld] after 5 steps: sparse %.9g dense %.9g",
                      (long long)i, b[i], a[i]);
    }
    ck_assert_msg(moved > 5e-4, "training should move W1 (max change %g)", moved);
    ck_assert_msg(mean < 1e-6, "W1 after 5 steps: mean difference %g", mean);
    fprintf(stderr, "wide sparse vs dense: W1 after 5 steps differs by at most %.3g, mean %.3g "
            "(moved %.3g)\n", worst, mean, moved);
    sx_free(a);
    sx_free(b);
    sx_free(w0);
    sx_nn_trainer_free(ts);
    sx_nn_trainer_free(td);
    sx_nn_trainer_free(tk);
    sx_nn_model_free(ms);
    sx_nn_model_free(md);
    sx_nn_model_free(mk);
    sx_csr_free(x);
    sx_free(dom);
    sx_free(eps);
}
END_TEST

int main(void)
{
    sx_h5_quiet();
    Suite *s = suite_create("nn_wide");
    TCase *tc = tcase_create("wide");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, wide_forward_naive);
    tcase_add_test(tc, wide_gradient_fd_f64);
    tcase_add_test(tc, wide_sparse_matches_dense_f32);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
