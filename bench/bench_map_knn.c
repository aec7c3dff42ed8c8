/* bench_map_knn — the projection's query -> reference neighbour search (issue 15): exact BLAS
 * tiles against the graph index (sx_knn_index) on a synthetic 10-d latent of overlapping
 * cell types (Gaussian clusters of unequal size and shape, centres close enough that types
 * touch, plus a few rare types). Prints build and search times (wall and CPU), recall of the
 * index's k = 30 against exact on a sample of queries, and the share of sampled queries whose
 * 5-NN majority label (ties to the lowest label, as the transfer's vote) equals exact's.
 * Then what a projection pays for its neighbours per job: before, each stage searched on its
 * own (the UMAP transform through a graph index built for the job, the label transfer and the
 * carried clusters each an exact search of k_prob = 15), and now one search of k = 30 through
 * the reference's resident index (built once, kept in reference.map: a job runner only opens
 * and checks it) serves all of them (sx_knn_head). CPU seconds of each part, and the totals
 * per job with one and two label columns. Figures only: never a test.
 *
 * usage: bench_map_knn [n_ref] [n_query] [n_truth] [threads] [ef] [full_exact]
 *   defaults 100000 100000 4000 2 0 1; full_exact 1 also times the exact searches of all
 *   queries (k 30, and k 15 as each label transfer made it; slow on a 1M reference: use 0
 *   there, and the per-job totals leave them out). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "sx_alloc.h"
#include "sx_embed_internal.h"
#include "sx_knn.h"
#include "sx_transfer.h"

#define DIM 10
#define TYPES 24
#define K 30
#define KV 5
#define KP SX_TRANSFER_K_PROB /* the transfer's and the carried clusters' neighbours */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct world {
    double c[TYPES][DIM], s[TYPES][DIM], w[TYPES];
} world;

static void make_world(world *W)
{
    sx_rng r;
    sx_rng_seed(&r, 7, 0);
    double tot = 0;
    for (int t = 0; t < TYPES; t++) {
        for (int j = 0; j < DIM; j++) {
            W->c[t][j] = sx_rng_normal(&r) * 2.5;
            W->s[t][j] = 0.4 + sx_rng_unif(&r);
        }
        W->w[t] = t < 3 ? 0.003 : 0.2 + sx_rng_unif(&r); /* three rare types */
        tot += W->w[t];
    }
    for (int t = 0; t < TYPES; t++) W->w[t] /= tot;
}

static void sample(const world *W, int64_t n, uint64_t seed, double *x, int32_t *lab)
{
    sx_rng r;
    sx_rng_seed(&r, seed, 1);
    for (int64_t i = 0; i < n; i++) {
        double u = sx_rng_unif(&r), acc = 0;
        int t = TYPES - 1;
        for (int a = 0; a < TYPES; a++)
            if ((acc += W->w[a]) > u) {
                t = a;
                break;
            }
        lab[i] = t;
        for (int j = 0; j < DIM; j++) x[i * DIM + j] = W->c[t][j] + sx_rng_normal(&r) * W->s[t][j];
    }
}

static int vote(const int32_t *idx, const int32_t *lab)
{
    int cnt[TYPES] = {0}, best = 0;
    for (int j = 0; j < KV; j++) cnt[lab[idx[j]]]++;
    for (int t = 1; t < TYPES; t++)
        if (cnt[t] > cnt[best]) best = t;
    return best;
}

static int file_put(void *user, const void *p, size_t n)
{
    return fwrite(p, 1, n, (FILE *)user) != n;
}

/* CPU seconds of the exact search of every query with k neighbours (-1 on error) */
static double exact_cpu(const double *xr, int64_t nr, const double *xq, int64_t nq, int k,
                        const sx_knn_opts *o)
{
    sx_status st = {0};
    double t0 = now(), c0 = cpu();
    sx_knn *ex = sx_knn_exact(xr, nr, xq, nq, DIM, k, o, NULL, &st);
    if (!ex) return fprintf(stderr, "%s\n", st.msg), -1;
    double c = cpu() - c0;
    printf("exact search k %d, all queries: %.2f s wall, %.2f s CPU\n", k, now() - t0, c);
    sx_knn_free(ex);
    return c;
}

/* The index as a job runner gets it: written once into a file, mapped and opened (checked)
 * per job. Returns the CPU seconds of one open, -1 on error. */
static double open_cpu(const sx_knn_index *ix, const double *xr, int64_t nr)
{
    sx_status st = {0};
    FILE *f = tmpfile();
    double c0 = cpu();
    if (!f || sx_knn_index_write(ix, file_put, f, &st) || fflush(f))
        return fprintf(stderr, "cannot write the index: %s\n", st.msg), -1;
    double cw = cpu() - c0;
    size_t len = sx_knn_index_serial_size(ix);
    c0 = cpu();
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fileno(f), 0);
    sx_knn_index *back = p != MAP_FAILED ? sx_knn_index_open(p, len, xr, nr, DIM, &st) : NULL;
    double co = cpu() - c0;
    if (!back) return fprintf(stderr, "cannot open the index: %s\n", st.msg), -1;
    printf("index section: %.1f MB, written once in %.3f s CPU, mapped, opened and checked per "
           "job in %.3f s CPU\n", len / 1e6, cw, co);
    sx_knn_index_free(back);
    munmap(p, len);
    fclose(f);
    return co;
}

/* Recall and 5-NN label agreement of the graph search ap against exact, on nt sampled queries */
static int quality(const double *xr, int64_t nr, const int32_t *lr, const double *xq,
                   int64_t nq, const int32_t *lq, int64_t nt, const sx_knn *ap, sx_knn_opts o)
{
    sx_status st = {0};
    double *xs = sx_mallocarray((size_t)nt * DIM, sizeof *xs);
    sx_knn sub = {.n_query = nt, .k = K, .idx = sx_mallocarray((size_t)nt * K, sizeof(int32_t)),
                  .dist = sx_mallocarray((size_t)nt * K, sizeof(double))};
    if (!xs || !sub.idx || !sub.dist) return 1;
    for (int64_t i = 0; i < nt; i++) {
        int64_t q = i * nq / nt;
        for (int j = 0; j < DIM; j++) xs[i * DIM + j] = xq[q * DIM + j];
        for (int j = 0; j < K; j++) {
            sub.idx[i * K + j] = ap->idx[q * K + j];
            sub.dist[i * K + j] = ap->dist[q * K + j];
        }
    }
    o.method = SX_KNN_EXACT;
    sx_knn *tr = sx_knn_exact(xr, nr, xs, nt, DIM, K, &o, NULL, &st);
    if (!tr) return fprintf(stderr, "%s\n", st.msg), 1;
    int64_t agree = 0, rare = 0, rare_agree = 0, rare_hit = 0;
    for (int64_t i = 0; i < nt; i++) {
        int a = vote(sub.idx + i * K, lr), b = vote(tr->idx + i * K, lr);
        agree += a == b;
        if (lq[i * nq / nt] < 3) {
            rare++;
            rare_agree += a == b;
            for (int x = 0; x < K; x++)
                for (int y = 0; y < K; y++) rare_hit += sub.idx[i * K + x] == tr->idx[i * K + y];
        }
    }
    printf("recall@%d vs exact (%lld sampled queries): %.4f; %d-NN label agreement: %.4f "
           "(rare types: %lld of %lld, their recall %.4f)\n", K, (long long)nt,
           sx_knn_recall(&sub, tr), KV, (double)agree / nt, (long long)rare_agree, (long long)rare,
           rare ? (double)rare_hit / ((double)rare * K) : 1.0);
    sx_knn_free(tr);
    sx_free(sub.idx);
    sx_free(sub.dist);
    sx_free(xs);
    return 0;
}

/* CPU seconds the shared search's users spend cutting their columns (sx_knn_head) */
static double heads_cpu(const sx_knn *all)
{
    sx_status st = {0};
    double c0 = cpu();
    sx_knn *h = sx_knn_head(all, KP, &st);
    double c = cpu() - c0;
    sx_knn_free(h);
    return c;
}

static void report(double build, double search, double open, double heads, double ex15)
{
    printf("\nper-job neighbour cost of a projection (CPU s; the index build %.2f s is paid once "
           "per reference load now, per job before):\n", build);
    printf("  now, any number of label columns: resident index opened %.3f + one k %d search "
           "%.2f + heads %.3f = %.2f\n", open, K, search, heads, open + search + heads);
    if (ex15 < 0) {
        printf("  before: index build %.2f + k %d search %.2f + one exact k %d search per label "
               "column and one for the clusters (not timed: full_exact 0)\n", build, K, search,
               KP);
        return;
    }
    for (int labels = 1; labels <= 2; labels++) {
        double before = build + search + (labels + 1) * ex15;
        printf("  before, %d label column%s: index build %.2f + k %d search %.2f + %d exact k %d "
               "searches %.2f = %.2f (saving %.2f, %.1fx)\n", labels, labels > 1 ? "s" : "",
               build, K, search, labels + 1, KP, (labels + 1) * ex15, before,
               before - (open + search + heads), before / (open + search + heads));
    }
}

int main(int argc, char **argv)
{
    int64_t nr = argc > 1 ? atoll(argv[1]) : 100000, nq = argc > 2 ? atoll(argv[2]) : 100000;
    int64_t nt = argc > 3 ? atoll(argv[3]) : 4000;
    int th = argc > 4 ? atoi(argv[4]) : 2, ef = argc > 5 ? atoi(argv[5]) : 0;
    int full = argc > 6 ? atoi(argv[6]) : 1;
    if (nt > nq) nt = nq;
    world W;
    make_world(&W);
    double *xr = sx_mallocarray((size_t)nr * DIM, sizeof *xr), *xq = sx_mallocarray((size_t)nq * DIM, sizeof *xq);
    int32_t *lr = sx_mallocarray((size_t)nr, sizeof *lr), *lq = sx_mallocarray((size_t)nq, sizeof *lq);
    if (!xr || !xq || !lr || !lq) return 1;
    sample(&W, nr, 11, xr, lr);
    sample(&W, nq, 12, xq, lq);
    sx_status st = {0};
    sx_knn_opts o;
    sx_knn_opts_init(&o);
    o.n_threads = th;
    o.ef = ef;
    printf("reference %lld, query %lld, dim %d, k %d, %d threads\n", (long long)nr, (long long)nq,
           DIM, K, th);
    double ex15 = -1;
    if (full && (exact_cpu(xr, nr, xq, nq, K, &o) < 0 || (ex15 = exact_cpu(xr, nr, xq, nq, KP, &o)) < 0))
        return 1;
    o.method = SX_KNN_APPROX;
    double t0 = now(), c0 = cpu();
    sx_knn_index *ix = sx_knn_index_new(xr, nr, DIM, &o, NULL, &st);
    if (!ix) return fprintf(stderr, "%s\n", st.msg), 1;
    double build = cpu() - c0;
    printf("graph index build: %.2f s wall, %.2f s CPU, %.1f MB\n", now() - t0, build,
           sx_knn_index_bytes(ix) / 1e6);
    double open = open_cpu(ix, xr, nr);
    t0 = now();
    c0 = cpu();
    o.method = SX_KNN_AUTO;
    sx_knn *ap = sx_knn_search_with(ix, xr, nr, xq, nq, DIM, K, &o, NULL, &st);
    if (!ap || open < 0) return fprintf(stderr, "%s\n", st.msg), 1;
    double search = cpu() - c0;
    printf("graph search, all queries: %.2f s wall, %.2f s CPU\n", now() - t0, search);
    if (quality(xr, nr, lr, xq, nq, lq, nt, ap, o)) return 1;
    report(build, search, open, heads_cpu(ap), ex15);
    sx_knn_free(ap);
    sx_knn_index_free(ix);
    sx_free(xr);
    sx_free(xq);
    sx_free(lr);
    sx_free(lq);
    return 0;
}
