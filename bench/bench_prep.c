/* bench_prep — preprocessing speed and memory on a synthetic sparse dataset.
 *
 * usage: bench_prep [n_cells=200000] [n_genes=20000] [density=0.05] [n_batches=4]
 *                   [literal=0]
 * Generates integer counts (float32 CSR, about density * n_genes nonzeros per cell, gene-wise
 * varying means so the HVG step has something to rank, 13 "MT-" genes), runs sx_prep_run with
 * SCALEX defaults (600 / 3 / 2000, per-batch MaxAbs), prints the time of each step and the
 * peak RSS against the size of the input CSR (target: peak <= 2.5 x input).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sx_alloc.h"
#include "sx_dataset.h"
#include "sx_prep.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* xorshift64*: fast, reproducible */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static inline uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}
static inline double unif(void) { return ((double)(rnd() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

typedef struct timing {
    double t0, last;
} timing;

static void on_progress(void *user, const char *stage, double frac, const char *msg)
{
    timing *t = user;
    double n = now();
    printf("  %-10s %5.1f%%  +%7.3f s  %s\n", stage, 100 * frac, n - t->last, msg ? msg : "");
    fflush(stdout);
    t->last = n;
}

int main(int argc, char **argv)
{
    int64_t n = argc > 1 ? atoll(argv[1]) : 200000;
    int64_t g = argc > 2 ? atoll(argv[2]) : 20000;
    double dens = argc > 3 ? atof(argv[3]) : 0.05;
    int nb = argc > 4 ? atoi(argv[4]) : 4;
    int literal = argc > 5 ? atoi(argv[5]) : 0;
    sx_status st = {0};
    printf("bench_prep: %lld cells x %lld genes, density %.3f, %d batches, %s\n", (long long)n,
           (long long)g, dens, nb, literal ? "literal (no HVG subset)" : "hvg_subset");
    double t0 = now();
    sx_dataset *d = sx_dataset_new(n, g, &st);
    if (!d) {
        fprintf(stderr, "%s\n", st.msg);
        return 1;
    }
    /* gene names: 13 MT- genes, the rest G<j> */
    for (int64_t j = 0; j < g; j++) {
        char b[32];
        if (j < 13) snprintf(b, sizeof b, "MT-%lld", (long long)j);
        else snprintf(b, sizeof b, "G%06lld", (long long)j);
        sx_free(d->var->index[j]);
        d->var->index[j] = sx_strdup(b);
    }
    /* per gene mean in (0.3, 8), per batch shift so batches differ */
    double *gm = sx_mallocarray((size_t)g, sizeof(double));
    for (int64_t j = 0; j < g; j++) gm[j] = 0.3 + 7.7 * pow(unif(), 3);
    int64_t cap = (int64_t)((double)n * (double)g * dens * 1.05) + 1024;
    sx_csr *X = sx_csr_new(n, g, cap, &st);
    int32_t *codes = sx_mallocarray((size_t)n, sizeof(int32_t));
    if (!X || !codes || !gm) {
        fprintf(stderr, "out of memory generating the data (%lld nonzeros)\n", (long long)cap);
        return 1;
    }
    double lq = log(1 - dens);
    int64_t w = 0;
    for (int64_t i = 0; i < n; i++) {
        codes[i] = (int32_t)(i % nb);
        double bshift = 1.0 + 0.25 * codes[i];
        /* Bernoulli(dens) columns by geometric gaps */
        int64_t j = (int64_t)floor(log(unif()) / lq);
        while (j < g && w < cap) {
            double mean = gm[j] * bshift;
            double v = 1 + floor(-log(unif()) * mean);
            X->indices[w] = (int32_t)j;
            X->data[w] = (float)v;
            w++;
            j += 1 + (int64_t)floor(log(unif()) / lq);
        }
        X->indptr[i + 1] = w;
    }
    sx_csr_shrink(X, &st);
    d->X = X;
    char **labels = sx_mallocarray((size_t)nb, sizeof(char *));
    for (int b = 0; b < nb; b++) {
        char s[16];
        snprintf(s, sizeof s, "batch%d", b);
        labels[b] = sx_strdup(s);
    }
    if (sx_frame_add_categorical(d->obs, "batch", codes, (const char *const *)labels, nb, 0,
                                 &st) != SX_OK) {
        fprintf(stderr, "%s\n", st.msg);
        return 1;
    }
    for (int b = 0; b < nb; b++) sx_free(labels[b]);
    sx_free(labels);
    sx_free(codes);
    sx_free(gm);
    int64_t nnz = sx_csr_nnz(X);
    double in_bytes = (double)nnz * (sizeof(float) + sizeof(int32_t)) +
                      (double)(n + 1) * sizeof(int64_t);
    int64_t rss_before = sx_current_rss();
    printf("generated %lld nonzeros (%.2f per cell) in %.2f s; input CSR %.1f MiB; RSS %.1f MiB\n",
           (long long)nnz, (double)nnz / (double)n, now() - t0, in_bytes / 1048576.0,
           (double)rss_before / 1048576.0);

    sx_prep_opts o;
    sx_prep_opts_init(&o);
    o.hvg_mode = literal ? SX_HVG_LITERAL : SX_HVG_SUBSET;
    timing tm = {now(), now()};
    sx_progress p = {on_progress, &tm, NULL};
    sx_prep_result res;
    double t1 = now();
    int rc = sx_prep_run(d, &o, &res, &p, &st);
    double t2 = now();
    if (rc != SX_OK) {
        fprintf(stderr, "sx_prep_run: %s\n", st.msg);
        return 1;
    }
    int64_t peak = sx_peak_rss();
    printf("preprocess total %.2f s: %lld cells x %lld genes, %d domains, raw %lld x %lld\n",
           t2 - t1, (long long)res.n_cells_out, (long long)res.n_genes_out, (int)res.n_domains,
           (long long)d->raw_X->n_rows, (long long)d->raw_X->n_cols);
    printf("peak RSS %.1f MiB = %.2f x input CSR (target <= 2.5); RSS before preprocessing "
           "%.1f MiB\n", (double)peak / 1048576.0, (double)peak / in_bytes,
           (double)rss_before / 1048576.0);
    sx_prep_result_free(&res);
    sx_dataset_free(d);
    return 0;
}
