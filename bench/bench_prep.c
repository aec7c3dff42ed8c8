/* bench_prep — preprocessing speed and memory on a synthetic sparse dataset.
 *
 * usage: bench_prep [n_cells=200000] [n_genes=20000] [density=0.05] [n_batches=4]
 *                   [literal=0]
 * Generates integer counts (float32 CSR, about density * n_genes nonzeros per cell, gene-wise
 * varying means so the HVG step has something to rank, 13 "MT-" genes), runs sx_prep_run with
 * SCALEX defaults (600 / 3 / 2000, per-batch MaxAbs), prints the time of each step and the
 * peak RSS against the size of the input CSR (target: peak <= 2.5 x input).
 *
 *        bench_prep --project QUERY.h5ad REFERENCE [threads=2] [chunk_cells=65536] [reps=1]
 *                   [prep_threads=threads]
 * The projection's read + preprocess of a CSR h5ad query as `scalex project` streams it
 * (sx_h5ad_rows + sx_prep_apply_reference_rows onto REFERENCE's genes): wall and CPU
 * seconds of the metadata read, of the slab reads alone (GB/s of CSR) and of the fused
 * pass, each against one-thread memcpy of the same bytes (the page-cache limit, issue 15).
 * threads > 1 reads ahead (one slab read on the reader's thread while the last is
 * preprocessed, as `scalex project` does) and cuts each slab's rows over prep_threads.
 * Run it twice: the first read may come from disk.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "sx_alloc.h"
#include "sx_dataset.h"
#include "sx_h5ad_rows.h"
#include "sx_pipeline.h"
#include "sx_prep.h"
#include "sx_prep_stream.h"
#include "sx_nn.h"

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

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* One-thread memcpy of bytes between touched buffers, bytes per second, best of 3. */
static double memcpy_rate(size_t bytes)
{
    char *a = malloc(bytes), *b = malloc(bytes);
    double best = 0;
    if (a && b) {
        memset(a, 1, bytes);
        memset(b, 2, bytes);
        for (int i = 0; i < 3; i++) {
            double t0 = now();
            memcpy(b, a, bytes);
            double dt = now() - t0;
            if (dt > 0 && (double)bytes / dt > best) best = (double)bytes / dt;
            a[i] = b[bytes - 1 - (size_t)i];
        }
    }
    free(a);
    free(b);
    return best;
}

typedef struct slab_src {
    sx_h5ad_rows *r;
    int64_t cells;
} slab_src;

static int next_slab(void *ctx, sx_csr *slab, sx_status *st)
{
    slab_src *ss = ctx;
    return sx_h5ad_rows_next(ss->r, ss->cells, 0, slab, NULL, st);
}

static void line(const char *what, double w, double c, double bytes, double lim)
{
    printf("  %-34s %6.3f s wall %6.3f s CPU", what, w, c);
    if (bytes > 0)
        printf("  %5.2f GB/s of CSR per wall s (%.2f x memcpy), %5.2f per CPU s", bytes / w / 1e9,
               bytes / w / lim, c > 0 ? bytes / c / 1e9 : 0.0);
    printf("\n");
}

/* The streamed projection read + preprocess (see the header comment). */
static int bench_project(const char *query, const char *refpath, int threads, int64_t chunk,
                         int prep_threads)
{
    sx_status st = {0};
    sx_reference *R = sx_reference_load(refpath, &st);
    int64_t G = 0;
    const char *const *genes = R ? sx_nn_model_genes(R->model, &G) : NULL;
    if (!genes) {
        fprintf(stderr, "reference: %s\n", st.msg);
        return 1;
    }
    double t0 = now(), c0 = cpu_now();
    slab_src ss = {NULL, chunk};
    if (sx_h5ad_rows_open(query, NULL, NULL, &ss.r, &st) != SX_OK || !ss.r) {
        fprintf(stderr, "%s: %s\n", query, ss.r ? st.msg : "no CSR h5ad");
        return 1;
    }
    double tm = now() - t0, cm = cpu_now() - c0;
    int64_t n = sx_h5ad_rows_n_obs(ss.r), nnz = 0;
    t0 = now(), c0 = cpu_now();
    sx_csr v;
    do {
        if (next_slab(&ss, &v, &st) != SX_OK) {
            fprintf(stderr, "%s\n", st.msg);
            return 1;
        }
        nnz += sx_csr_nnz(&v);
    } while (v.n_rows > 0);
    double tr = now() - t0, cr = cpu_now() - c0;
    sx_h5ad_rows_close(ss.r);
    double bytes = (double)nnz * 8.0 + (double)(n + 1) * 8.0, lim = memcpy_rate((size_t)(64 << 20));
    printf("bench_prep --project: %lld cells, %lld stored values (%.2f GB of CSR), %lld "
           "reference genes, %d threads (%d preprocessing), %lld cells a slab; memcpy %.2f GB/s\n",
           (long long)n, (long long)nnz, bytes / 1e9, (long long)G, threads, prep_threads,
           (long long)chunk, lim / 1e9);
    line("open (obs, var, uns, indptr)", tm, cm, 0, lim);
    line("slab reads alone", tr, cr, bytes, lim);
    t0 = now(), c0 = cpu_now();
    if (sx_h5ad_rows_open(query, NULL, NULL, &ss.r, &st) != SX_OK || !ss.r) return 1;
    sx_dataset *d = sx_dataset_new(0, 0, &st);
    sx_frame_free(d->obs);
    sx_frame_free(d->var);
    sx_uns_free(d->uns);
    d->obs = sx_h5ad_rows_take_obs(ss.r);
    d->uns = sx_h5ad_rows_take_uns(ss.r);
    d->var = sx_frame_copy(sx_h5ad_rows_var(ss.r), &st);
    if (threads != 1 && sx_h5ad_rows_read_ahead(ss.r, chunk, 0, &st) != SX_OK) return 1;
    sx_prep_rows src = {n, sx_h5ad_rows_n_vars(ss.r), next_slab, &ss};
    sx_prep_opts o;
    sx_prep_opts_init(&o);
    o.n_threads = prep_threads;
    sx_prep_result pr;
    sx_reindex_opts ro;
    sx_reindex_opts_init(&ro);
    double t1 = now(), c1 = cpu_now();
    int rc = sx_prep_apply_reference_rows(d, &src, genes, G, &o, &ro, &pr, NULL, NULL, &st);
    double tp = now() - t1, cp = cpu_now() - c1;
    sx_h5ad_rows_close(ss.r);
    if (rc != SX_OK) {
        fprintf(stderr, "preprocess: %s\n", st.msg);
        return 1;
    }
    line("read + preprocess (fused pass)", tp, cp, bytes, lim);
    line("open + read + preprocess", now() - t0, cpu_now() - c0, bytes, lim);
    printf("  kept %lld cells x %lld genes, %lld stored; peak RSS %.0f MiB\n",
           (long long)d->X->n_rows, (long long)d->X->n_cols, (long long)sx_csr_nnz(d->X),
           (double)sx_peak_rss() / 1048576.0);
    sx_prep_result_free(&pr);
    sx_dataset_free(d);
    sx_reference_free(R);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "--project") == 0) {
        int reps = argc > 6 ? atoi(argv[6]) : 1, rc = 0, th = argc > 4 ? atoi(argv[4]) : 2;
        for (int i = 0; i < reps && rc == 0; i++)
            rc = bench_project(argv[2], argv[3], th, argc > 5 ? atoll(argv[5]) : 65536,
                               argc > 7 ? atoi(argv[7]) : th);
        return rc;
    }
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
