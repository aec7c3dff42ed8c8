/* bench_train — training speed of the SCALEX network shape (G genes -> 1024 -> 10, 3 domains,
 * batch 64) on sparse synthetic data: the production sparse first layer against a plain dense
 * sgemm first layer, in the same run, and against PyTorch 1.13's 70.3 it/s (quality.json).
 *
 * usage: bench_train [--genes G] [--cells N] [--density d] [--steps S] [--threads T]
 *                    [--hidden H] [--f64]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sx_alloc.h"
#include "sx_matrix.h"
#include "sx_nn.h"

#define PYTORCH_IT_S 70.3 /* quality.json speed.pytorch_1_13_scalex_shape_it_per_s best */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rs = 88172645463325252ULL;
static uint64_t xr(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}
static double ur(void) { return (xr() >> 11) * 0x1.0p-53; }

/* Counts-like data after log1p + MaxAbs: nonzero with probability ~density (varying per gene),
 * values in (0, 1]. */
static sx_csr *synth(int64_t n, int64_t g, double density, sx_status *st)
{
    sx_csr *m = sx_csr_new(n, g, (int64_t)(n * g * density * 1.3) + g, st);
    if (!m) return NULL;
    double *pg = malloc((size_t)g * sizeof(double));
    for (int64_t j = 0; j < g; j++) pg[j] = fmin(1.0, density * (0.3 + 1.4 * ur()));
    int64_t e = 0, cap = (int64_t)(n * g * density * 1.3) + g;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < g && e < cap; j++) {
            if (ur() < pg[j]) {
                m->indices[e] = (int32_t)j;
                m->data[e] = (float)(log1p(1.0 + 30.0 * ur() * ur()) / log1p(31.0));
                e++;
            }
        }
        m->indptr[i + 1] = e;
    }
    free(pg);
    return m;
}

static double run(sx_nn_model *m, const sx_csr *x, const int32_t *dom, int first_layer,
                  int threads, int64_t steps, double *loss_out)
{
    sx_status st = {0};
    sx_nn_train_opts o;
    sx_nn_train_opts_default(&o);
    o.first_layer = first_layer;
    o.threads = threads;
    sx_nn_trainer *t = sx_nn_trainer_new(m, &o, &st);
    if (!t) {
        fprintf(stderr, "trainer: %s\n", st.msg);
        exit(1);
    }
    int64_t B = 64, n = x->n_rows;
    int64_t *rows = malloc((size_t)B * sizeof(int64_t));
    double t0 = 0, last = 0;
    for (int64_t s = 0; s < steps + 20; s++) {
        if (s == 20) t0 = now_s(); /* warm-up excluded, as the PyTorch figure */
        for (int64_t b = 0; b < B; b++) rows[b] = (int64_t)(xr() % (uint64_t)n);
        sx_nn_losses l;
        if (sx_nn_trainer_forward_backward(t, x, rows, B, dom, NULL, &l, &st) ||
            sx_nn_trainer_adam(t, &st)) {
            fprintf(stderr, "step: %s\n", st.msg);
            exit(1);
        }
        last = l.total;
    }
    double el = now_s() - t0;
    free(rows);
    sx_nn_trainer_free(t);
    *loss_out = last;
    return (double)steps / el;
}

int main(int argc, char **argv)
{
    int64_t G = 2000, N = 8000, steps = 300, H = 1024;
    double density = 0.35;
    int threads = 2, dtype = SX_NN_F32;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--genes") && i + 1 < argc) G = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--cells") && i + 1 < argc) N = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--density") && i + 1 < argc) density = atof(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hidden") && i + 1 < argc) H = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--f64")) dtype = SX_NN_F64;
        else {
            fprintf(stderr, "usage: %s [--genes G] [--cells N] [--density d] [--steps S] "
                            "[--threads T] [--hidden H] [--f64]\n", argv[0]);
            return 2;
        }
    }
    sx_status st = {0};
    sx_csr *x = synth(N, G, density, &st);
    if (!x) {
        fprintf(stderr, "%s\n", st.msg);
        return 1;
    }
    int32_t *dom = malloc((size_t)N * sizeof(int32_t));
    for (int64_t i = 0; i < N; i++) dom[i] = (int32_t)(xr() % 3);
    double dens = (double)sx_csr_nnz(x) / ((double)N * G);
    printf("data: %lld cells x %lld genes, density %.3f, 3 domains; network %lld-%lld-10, "
           "batch 64, %s, %d threads, %lld timed steps\n", (long long)N, (long long)G, dens,
           (long long)G, (long long)H, dtype == SX_NN_F32 ? "float32" : "float64", threads,
           (long long)steps);
    sx_nn_config c = {G, H, 10, 3, dtype};
    double ls, ld;
    sx_nn_model *m = sx_nn_model_new(&c, 124, &st);
    double sparse = run(m, x, dom, SX_NN_FIRST_SPARSE, threads, steps, &ls);
    sx_nn_model_free(m);
    m = sx_nn_model_new(&c, 124, &st);
    double dense = run(m, x, dom, SX_NN_FIRST_DENSE, threads, steps, &ld);
    sx_nn_model_free(m);
    printf("sparse first layer : %8.1f it/s (last loss %.3f)\n", sparse, ls);
    printf("dense sgemm layer  : %8.1f it/s (last loss %.3f)\n", dense, ld);
    printf("sparse / dense     : %8.2f x\n", sparse / dense);
    printf("sparse / PyTorch   : %8.2f x  (PyTorch 1.13 best config %.1f it/s, quality.json)\n",
           sparse / PYTORCH_IT_S, PYTORCH_IT_S);
    printf("dense  / PyTorch   : %8.2f x\n", dense / PYTORCH_IT_S);
    printf("peak RSS           : %8.1f MiB\n", (double)sx_peak_rss() / (1024.0 * 1024.0));
    free(dom);
    sx_csr_free(x);
    return 0;
}
