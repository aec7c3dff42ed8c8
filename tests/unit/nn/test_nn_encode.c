/* The blocked inference encoder (sx_nn_encode) against (1) SCALEX's encoder written plainly
 * here in double precision, chunk by chunk (dense first layer, BN1 with the chunk's batch
 * statistics or the running ones, ReLU, mu head), and (2) the chunk-at-a-time path through
 * the training forward (sx_nn_infer_minibatch): bit for bit when the hidden width is a
 * multiple of the 64-unit W1 tile (SCALEX's 1024), for 1 to 3 threads, float32 and float64,
 * train mode and --eval, running-statistics updates included. A narrower last tile is summed
 * by a plain loop that the compiler vectorizes differently in the two paths (fused or not):
 * there the two agree to float rounding. The data has what the blocks must get right: chunks
 * of 64, leftovers, a one-row chunk (no BN), a query domain the model does not know, empty
 * rows, rows with unsorted column indices. */
#include <math.h>
#include <string.h>

#include "nn_golden_util.h"
#include "sx_nn_internal.h"

enum { TG = 300, TZ = 5, TD = 3, TN = 1500 };

static uint64_t rs = 0x9E3779B97F4A7C15ULL;
static double ur(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (double)(rs >> 11) * 0x1.0p-53;
}

/* TN cells: ~8% dense, values in (0, 1]; every 97th row empty, every 13th row's first two
 * entries swapped (unsorted). Domains 0..2 plus one cell of domain 3 (a one-row chunk). */
static sx_csr *make_data(int32_t *dom, int64_t *perm)
{
    sx_status st = {0};
    sx_csr *x = sx_csr_new(TN, TG, (int64_t)TN * TG / 5, &st);
    ck_assert(x != NULL);
    int64_t e = 0;
    for (int64_t i = 0; i < TN; i++) {
        int64_t e0 = e;
        for (int64_t g = 0; g < TG && i % 97 != 5; g++)
            if (ur() < 0.08) {
                x->indices[e] = (int32_t)g;
                x->data[e++] = (float)(0.05 + 0.95 * ur());
            }
        if (i % 13 == 0 && e - e0 >= 2) {
            int32_t t = x->indices[e0];
            x->indices[e0] = x->indices[e0 + 1];
            x->indices[e0 + 1] = t;
            float v = x->data[e0];
            x->data[e0] = x->data[e0 + 1];
            x->data[e0 + 1] = v;
        }
        x->indptr[i + 1] = e;
        dom[i] = i == 700 ? 3 : (int32_t)(ur() * TD);
        perm[i] = i;
    }
    for (int64_t i = TN - 1; i > 0; i--) {
        int64_t j = (int64_t)(ur() * (double)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    return x;
}

/* Random BN1 affine and running statistics, so that neither is the identity. */
static sx_nn_model *make_model(int dtype, int64_t H)
{
    sx_status st = {0};
    sx_nn_config c = {TG, H, TZ, TD, dtype};
    sx_nn_model *m = sx_nn_model_new(&c, 11, &st);
    ck_assert_msg(m != NULL, "%s", st.msg);
    double *v = sx_mallocarray((size_t)H, sizeof(double));
    const char *names[] = {"encoder.enc.net.0.norm.weight", "encoder.enc.net.0.norm.bias",
                           "encoder.enc.net.0.norm.running_mean",
                           "encoder.enc.net.0.norm.running_var"};
    for (int k = 0; k < 4; k++) {
        for (int j = 0; j < H; j++)
            v[j] = k == 0 ? 0.5 + ur() : k == 3 ? 0.05 + 0.3 * ur() : 0.4 * (ur() - 0.5);
        ck_assert(sx_nn_model_set(m, names[k], v, H, &st) == SX_OK);
    }
    sx_free(v);
    return m;
}

static double *get(const sx_nn_model *m, const char *name, int64_t n)
{
    sx_status st = {0};
    double *v = sx_mallocarray((size_t)n, sizeof(double));
    ck_assert_msg(sx_nn_model_get(m, name, v, n, &st) == SX_OK, "%s: %s", name, st.msg);
    return v;
}

/* SCALEX's encoder per chunk, in double, from the PyTorch-layout tensors. */
static double *reference(const sx_nn_model *m, const sx_csr *x, const int32_t *dom,
                         const int64_t *perm, int eval, int64_t H)
{
    sx_status st = {0};
    double *W1 = get(m, "encoder.enc.net.0.fc.weight", H * TG);
    double *b1 = get(m, "encoder.enc.net.0.fc.bias", H);
    double *ga = get(m, "encoder.enc.net.0.norm.weight", H);
    double *be = get(m, "encoder.enc.net.0.norm.bias", H);
    double *rm = get(m, "encoder.enc.net.0.norm.running_mean", H);
    double *rv = get(m, "encoder.enc.net.0.norm.running_var", H);
    double *Wm = get(m, "encoder.mu_enc.net.0.fc.weight", TZ * H);
    double *bm = get(m, "encoder.mu_enc.net.0.fc.bias", TZ);
    int64_t *idx, *off, nc;
    ck_assert(sx_nn_domain_chunks(dom, TN, TD + 1, perm, 64, &idx, &off, &nc, &st) == SX_OK);
    double *out = sx_mallocarray((size_t)TN * TZ, sizeof(double));
    double *a = sx_mallocarray((size_t)64 * H, sizeof(double));
    for (int64_t c = 0; c < nc; c++) {
        const int64_t *rows = idx + off[c], n = off[c + 1] - off[c];
        for (int64_t b = 0; b < n; b++)
            for (int64_t h = 0; h < H; h++) {
                double s = b1[h];
                for (int64_t e = x->indptr[rows[b]]; e < x->indptr[rows[b] + 1]; e++)
                    s += x->data[e] * W1[h * TG + x->indices[e]];
                a[b * H + h] = s;
            }
        for (int64_t h = 0; h < H && n >= 2; h++) {
            double mean = rm[h], var = rv[h];
            if (!eval) {
                mean = var = 0;
                for (int64_t b = 0; b < n; b++) mean += a[b * H + h] / (double)n;
                for (int64_t b = 0; b < n; b++)
                    var += (a[b * H + h] - mean) * (a[b * H + h] - mean) / (double)n;
            }
            for (int64_t b = 0; b < n; b++)
                a[b * H + h] = (a[b * H + h] - mean) / sqrt(var + 1e-5) * ga[h] + be[h];
        }
        for (int64_t b = 0; b < n; b++)
            for (int64_t z = 0; z < TZ; z++) {
                double s = bm[z];
                for (int64_t h = 0; h < H; h++) s += Wm[z * H + h] * fmax(a[b * H + h], 0);
                out[rows[b] * TZ + z] = s;
            }
    }
    double *all[] = {W1, b1, ga, be, rm, rv, Wm, bm, a};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) sx_free(all[i]);
    sx_free(idx);
    sx_free(off);
    return out;
}

/* |a - b| <= tol * max(1, |b|) for n values, or bitwise equality when tol == 0 */
static void same(const double *a, const double *b, int64_t n, double tol, const char *what,
                 int dtype, int eval, int threads)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(tol > 0 ? fabs(a[i] - b[i]) <= tol * fmax(1, fabs(b[i]))
                              : memcmp(&a[i], &b[i], sizeof(double)) == 0,
                      "%s %s, %d threads: %s %lld is %.17g, the chunk-at-a-time path gives "
                      "%.17g", dtype == SX_NN_F32 ? "f32" : "f64", eval ? "eval" : "train",
                      threads, what, (long long)i, a[i], b[i]);
}

/* One precision, BN mode and hidden width: reference, then agreement of every thread count
 * with the chunk-at-a-time path, latent and (train mode) the running statistics it moved. */
static void check(int dtype, int eval, int64_t H)
{
    sx_status st = {0};
    int32_t *dom = sx_mallocarray(TN, sizeof(int32_t));
    int64_t *perm = sx_mallocarray(TN, sizeof(int64_t));
    sx_csr *x = make_data(dom, perm);
    sx_nn_model *m = make_model(dtype, H);
    double *ref = reference(m, x, dom, perm, eval, H);
    /* bitwise for whole tiles; float rounding of a few sums otherwise */
    const double ptol = H % 64 == 0 ? 0 : dtype == SX_NN_F32 ? 1e-5 : 1e-13;
    sx_nn_infer_opts o;
    sx_nn_infer_opts_default(&o);
    o.eval = eval;
    o.perm = perm;
    o.update_running_stats = 1;
    o.threads = 1;
    sx_nn_model *mo = sx_nn_model_clone(m, dtype, &st);
    double *old = sx_mallocarray((size_t)TN * TZ, sizeof(double));
    ck_assert_msg(sx_nn_infer_minibatch(mo, x, dom, -1, &o, old, NULL, &st) == SX_OK, "%s",
                  st.msg);
    double mag = 0, err = 0;
    for (int64_t i = 0; i < TN * TZ; i++) mag = fmax(mag, fabs(ref[i]));
    const char *bufs[] = {"encoder.enc.net.0.norm.running_mean",
                          "encoder.enc.net.0.norm.running_var",
                          "encoder.enc.net.0.norm.num_batches_tracked"};
    for (int threads = 1; threads <= 3; threads++) {
        o.threads = threads;
        sx_nn_model *mn = sx_nn_model_clone(m, dtype, &st);
        double *lat = sx_mallocarray((size_t)TN * TZ, sizeof(double));
        ck_assert_msg(sx_nn_encode(mn, x, dom, &o, lat, NULL, &st) == SX_OK, "%s", st.msg);
        for (int64_t i = 0; i < TN * TZ; i++) err = fmax(err, fabs(lat[i] - ref[i]));
        same(lat, old, TN * TZ, ptol, "latent", dtype, eval, threads);
        for (int k = 0; k < 3; k++) {
            int64_t n = k == 2 ? 1 : H;
            double *a = get(mn, bufs[k], n), *b = get(mo, bufs[k], n);
            same(a, b, n, k == 2 ? 0 : ptol, bufs[k], dtype, eval, threads);
            sx_free(a);
            sx_free(b);
        }
        sx_free(lat);
        sx_nn_model_free(mn);
    }
    /* float32: sums of ~25 products and a division by a chunk's standard deviation */
    double tol = dtype == SX_NN_F32 ? 1e-5 : 1e-12;
    ck_assert_msg(err <= tol * mag, "latent differs from the plain formula by %g (max |latent| "
                  "%g)", err, mag);
    sx_free(old);
    sx_free(ref);
    sx_nn_model_free(mo);
    sx_nn_model_free(m);
    sx_csr_free(x);
    sx_free(dom);
    sx_free(perm);
}

START_TEST(train_f32) { check(SX_NN_F32, 0, 256); }
END_TEST
START_TEST(eval_f32) { check(SX_NN_F32, 1, 256); }
END_TEST
START_TEST(train_f64) { check(SX_NN_F64, 0, 256); }
END_TEST
START_TEST(eval_f64) { check(SX_NN_F64, 1, 256); }
END_TEST
/* 200 = three whole tiles and one of 8 units */
START_TEST(narrow_tile_f32) { check(SX_NN_F32, 0, 200); check(SX_NN_F32, 1, 200); }
END_TEST
START_TEST(narrow_tile_f64) { check(SX_NN_F64, 0, 200); check(SX_NN_F64, 1, 200); }
END_TEST

/* No cells, and a single cell (one one-row chunk): both paths agree. */
START_TEST(tiny_inputs)
{
    sx_status st = {0};
    sx_nn_model *m = make_model(SX_NN_F32, 128);
    for (int64_t n = 0; n <= 1; n++) {
        sx_csr *x = sx_csr_new(n, TG, 4, &st);
        ck_assert(x != NULL);
        if (n) {
            x->indices[0] = 3, x->data[0] = 0.5f, x->indices[1] = 250, x->data[1] = 1;
            x->indptr[1] = 2;
        }
        int32_t dom[1] = {1};
        double a[TZ] = {0}, b[TZ] = {0};
        ck_assert_msg(sx_nn_encode(m, x, dom, NULL, a, NULL, &st) == SX_OK, "%s", st.msg);
        ck_assert(sx_nn_infer_minibatch(m, x, dom, -1, NULL, b, NULL, &st) == SX_OK);
        same(a, b, TZ, 0, "latent", SX_NN_F32, 0, 0);
        sx_csr_free(x);
    }
    sx_nn_model_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nn_encode");
    TCase *tc = tcase_create("encode");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, train_f32);
    tcase_add_test(tc, eval_f32);
    tcase_add_test(tc, train_f64);
    tcase_add_test(tc, eval_f64);
    tcase_add_test(tc, narrow_tile_f32);
    tcase_add_test(tc, narrow_tile_f64);
    tcase_add_test(tc, tiny_inputs);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
