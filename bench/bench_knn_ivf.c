/* bench_knn_ivf — query -> reference neighbour search (issue 15): the cluster-pruned exact
 * search (sx_knn_ivf) against sx_knn_exact's BLAS tiles and the NN-descent graph index
 * (sx_knn_index), on a synthetic 10-d latent of cell types (Gaussian, unequal sizes, three
 * rare types). Two shapes: "iso" spreads every type over all 10 dimensions (0.4-1.4 per
 * dimension, the shape of bench_map_knn.c: the hard case for any exact method, as the kNN
 * ball is nearly as wide as a type); "flat" keeps that spread on 3 dimensions of each type
 * and a quarter of it on the other 7 (a latent whose types are low-dimensional locally).
 * Prints build and search times (wall and CPU), the share of reference rows whose distance
 * the pruned search computed, the bounded mode's recall, the graph's recall, and checks
 * the pruned search against sx_knn_exact on a sample of queries. Figures only: never a test.
 *
 * usage: bench_knn_ivf [n_ref] [n_query] [k] [threads] [iso|flat] [full_exact] [max_clusters]
 *                      [graph] [n_clusters] [reps]
 *   defaults 100000 100000 30 2 iso 1 0 1; full_exact 0 times sx_knn_exact on the sample only
 *   and scales it to all queries (use 0 for a 1M reference); max_clusters > 0 also runs the
 *   bounded mode; graph 0 skips the graph index (its 1M build takes ~40 CPU-s); n_clusters 0 = the index's
 *   default; reps > 1 times the exact search that often and prints the fastest. Run niced
 *   on a shared machine.
 * A real map's latents instead of the synthetic world: give the shape as REF,QUERY[,LABELS],
 * two raw little-endian float64 files of 10 columns (n_ref and n_query 0 = every row of the
 * file) and the reference's int32 labels (the bounded mode's 5-NN vote against exact's),
 * e.g. the obsm latent of `scalex project --ignore_umap`'s adata.h5ad split by
 * obs/projection (bench/bench_knn_latents.py writes them). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sx_alloc.h"
#include "sx_embed_internal.h"
#include "sx_knn.h"
#include "sx_knn_ivf.h"

#define DIM 10
#define NTYPE 24
#define NSAMPLE 2000

typedef struct clock2 {
    double wall, cpu;
} clock2;

static clock2 tick(void)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    return (clock2){a.tv_sec + a.tv_nsec * 1e-9, b.tv_sec + b.tv_nsec * 1e-9};
}

static void tock(const char *what, clock2 t0)
{
    clock2 t = tick();
    printf("  %-34s %7.2f s wall %7.2f s CPU\n", what, t.wall - t0.wall, t.cpu - t0.cpu);
}

/* n rows of the world (types fixed by seed 7; rows by seed) */
static double *latent(int64_t n, int flat, uint64_t seed)
{
    double mu[NTYPE][DIM], sd[NTYPE][DIM], cum[NTYPE], acc = 0;
    sx_rng r;
    sx_rng_seed(&r, 7, 0);
    for (int t = 0; t < NTYPE; t++) {
        int k0 = (int)sx_rng_below(&r, DIM); /* first of the type's 3 wide dimensions */
        for (int j = 0; j < DIM; j++) {
            mu[t][j] = 2.5 * sx_rng_normal(&r);
            int wide = (j - k0 + DIM) % DIM < 3;
            sd[t][j] = (0.4 + sx_rng_unif(&r)) * (flat && !wide ? 0.25 : 1.0);
        }
        acc += t < 3 ? 0.003 : 0.2 + sx_rng_unif(&r);
        cum[t] = acc;
    }
    double *x = sx_mallocarray((size_t)n * DIM, sizeof *x);
    if (!x) return NULL;
    sx_rng_seed(&r, seed, 1);
    for (int64_t i = 0; i < n; i++) {
        double u = sx_rng_unif(&r) * acc;
        int t = 0;
        while (t < NTYPE - 1 && cum[t] <= u) t++;
        for (int j = 0; j < DIM; j++) x[i * DIM + j] = mu[t][j] + sd[t][j] * sx_rng_normal(&r);
    }
    return x;
}

/* Up to *n rows (0 = all) of a raw float64 file of DIM columns; *n receives the count. */
static double *load_rows(const char *path, int64_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    int64_t rows = ftell(f) / (DIM * (int64_t)sizeof(double));
    fseek(f, 0, SEEK_SET);
    if (*n <= 0 || *n > rows) *n = rows;
    double *x = sx_mallocarray((size_t)*n * DIM, sizeof *x);
    if (x && fread(x, sizeof *x * DIM, (size_t)*n, f) != (size_t)*n) {
        sx_free(x);
        x = NULL;
    }
    fclose(f);
    return x;
}

/* n int32 labels from a raw file (the reference's, in row order), or NULL. */
static int32_t *load_labels(const char *path, int64_t n)
{
    FILE *f = fopen(path, "rb");
    int32_t *l = f ? sx_mallocarray((size_t)n, sizeof *l) : NULL;
    if (l && fread(l, sizeof *l, (size_t)n, f) != (size_t)n) {
        sx_free(l);
        l = NULL;
    }
    if (f) fclose(f);
    return l;
}

/* The majority label of a query's 5 nearest (ties to the lowest label, as the transfer). */
static int vote5(const sx_knn *r, int64_t i, const int32_t *lab)
{
    int best = -1, bc = 0;
    for (int a = 0; a < 5 && a < r->k; a++) {
        int l = lab[r->idx[i * r->k + a]], c = 0;
        for (int b = 0; b < 5 && b < r->k; b++) c += lab[r->idx[i * r->k + b]] == l;
        if (c > bc || (c == bc && l < best)) {
            bc = c;
            best = l;
        }
    }
    return best;
}

/* Share of queries whose 5-NN vote through a equals the vote through e. */
static double vote_agree(const sx_knn *a, const sx_knn *e, const int32_t *lab)
{
    int64_t same = 0;
    for (int64_t i = 0; i < a->n_query; i++) same += vote5(a, i, lab) == vote5(e, i, lab);
    return (double)same / (double)a->n_query;
}

/* The rows of r at the sample's queries. */
static sx_knn sample_rows(const sx_knn *r, int64_t nq, int64_t ns)
{
    int k = r->k;
    sx_knn s = {.n_query = ns, .k = k, .idx = sx_mallocarray((size_t)ns * k, sizeof(int32_t)),
                .dist = sx_mallocarray((size_t)ns * k, sizeof(double))};
    for (int64_t i = 0; i < ns && s.idx && s.dist; i++) {
        memcpy(s.idx + i * k, r->idx + (i * nq / ns) * k, (size_t)k * sizeof *s.idx);
        memcpy(s.dist + i * k, r->dist + (i * nq / ns) * k, (size_t)k * sizeof *s.dist);
    }
    return s;
}

int main(int argc, char **argv)
{
    int64_t nr = argc > 1 ? atoll(argv[1]) : 100000, nq = argc > 2 ? atoll(argv[2]) : 100000;
    int k = argc > 3 ? atoi(argv[3]) : 30, th = argc > 4 ? atoi(argv[4]) : 2;
    int flat = argc > 5 && strcmp(argv[5], "flat") == 0;
    const char *files = argc > 5 && strchr(argv[5], ',') ? argv[5] : NULL;
    int full = argc > 6 ? atoi(argv[6]) : 1, mc = argc > 7 ? atoi(argv[7]) : 0;
    int graph = argc > 8 ? atoi(argv[8]) : 1, ncl = argc > 9 ? atoi(argv[9]) : 0;
    int reps = argc > 10 ? atoi(argv[10]) : 1;
    int64_t ns = nq < NSAMPLE ? nq : NSAMPLE;
    double *xr, *xq;
    int32_t *lab = NULL;
    if (files) {
        char rp[4096], qp[4096];
        const char *c1 = strchr(files, ','), *c2 = strchr(c1 + 1, ',');
        snprintf(rp, sizeof rp, "%.*s", (int)(c1 - files), files);
        snprintf(qp, sizeof qp, "%.*s", (int)(c2 ? c2 - c1 - 1 : (int)strlen(c1 + 1)), c1 + 1);
        xr = load_rows(rp, &nr);
        xq = load_rows(qp, &nq);
        if (c2) lab = load_labels(c2 + 1, nr);
        ns = nq < NSAMPLE ? nq : NSAMPLE;
    } else {
        xr = latent(nr, flat, 11);
        xq = latent(nq, flat, 12);
    }
    double *xs = sx_mallocarray((size_t)ns * DIM, sizeof *xs);
    if (!xr || !xq || !xs || nr < k || ns < 1) return fprintf(stderr, "bad sizes\n"), 1;
    for (int64_t i = 0; i < ns; i++) memcpy(xs + i * DIM, xq + (i * nq / ns) * DIM, DIM * sizeof *xs);
    printf("reference %lld, query %lld, dim %d, k %d, %d threads, %s latent\n", (long long)nr,
           (long long)nq, DIM, k, th, files ? files : flat ? "flat" : "iso");
    sx_status st = {0};
    sx_knn_opts o;
    sx_knn_opts_init(&o);
    o.n_threads = th;

    clock2 t0 = tick();
    sx_knn_ivf *ix = sx_knn_ivf_new(xr, nr, DIM, ncl, th, 1, NULL, &st);
    if (!ix) return fprintf(stderr, "%s\n", st.msg), 1;
    tock("ivf build", t0);
    printf("  ivf: %d clusters, %.1f MB\n", sx_knn_ivf_clusters(ix), sx_knn_ivf_bytes(ix) / 1e6);
    double vis = 0;
    sx_knn *iv = NULL;
    clock2 best = {INFINITY, INFINITY};
    for (int rep = 0; rep < reps; rep++) { /* the fastest of reps: a shared machine's noise */
        sx_knn_free(iv);
        t0 = tick();
        iv = sx_knn_ivf_search(ix, xq, nq, k, 0, th, NULL, &vis, &st);
        if (!iv) return fprintf(stderr, "%s\n", st.msg), 1;
        clock2 t = tick();
        if (t.cpu - t0.cpu < best.cpu) best = (clock2){t.wall - t0.wall, t.cpu - t0.cpu};
    }
    printf("  %-34s %7.2f s wall %7.2f s CPU (fastest of %d)\n", "ivf exact search, all queries",
           best.wall, best.cpu, reps);
    printf("  ivf: distances computed for %.2f%% of the reference per query\n", 100 * vis);
    sx_knn truth = sample_rows(iv, nq, ns);

    /* the pruned search against sx_knn_exact on the sample */
    t0 = tick();
    sx_knn *ex = sx_knn_exact(xr, nr, xs, ns, DIM, k, &o, NULL, &st);
    if (!ex) return fprintf(stderr, "%s\n", st.msg), 1;
    clock2 t1 = tick();
    int64_t rows = 0;
    for (int64_t i = 0; i < ns; i++) rows += memcmp(ex->idx + i * k, truth.idx + i * k, k * sizeof(int32_t)) != 0;
    printf("  sx_knn_exact on %lld sampled queries: %.2f s CPU (x%.0f = %.2f s CPU for all); "
           "ivf rows differing: %lld (near ties), recall %.6f\n", (long long)ns,
           t1.cpu - t0.cpu, (double)nq / ns, (t1.cpu - t0.cpu) * nq / ns, (long long)rows,
           sx_knn_recall(&truth, ex));
    sx_knn_free(ex);
    if (full) {
        t0 = tick();
        ex = sx_knn_exact(xr, nr, xq, nq, DIM, k, &o, NULL, &st);
        if (!ex) return fprintf(stderr, "%s\n", st.msg), 1;
        tock("sx_knn_exact, all queries", t0);
        int64_t diff = 0;
        for (int64_t i = 0; i < nq; i++) diff += memcmp(ex->idx + i * k, iv->idx + i * k, k * sizeof(int32_t)) != 0;
        printf("  ivf rows differing from sx_knn_exact: %lld of %lld\n", (long long)diff, (long long)nq);
        sx_knn_free(ex);
    }
    if (mc > 0) {
        t0 = tick();
        sx_knn *b = sx_knn_ivf_search(ix, xq, nq, k, mc, th, NULL, &vis, &st);
        if (!b) return fprintf(stderr, "%s\n", st.msg), 1;
        tock("ivf bounded search, all queries", t0);
        sx_knn bs = sample_rows(b, nq, ns);
        printf("  bounded (%d clusters): recall@%d %.4f, %.2f%% of the reference per query\n", mc,
               k, sx_knn_recall(&bs, &truth), 100 * vis);
        printf("  bounded: recall@%d over all queries %.4f", k, sx_knn_recall(b, iv));
        if (lab) printf(", 5-NN vote = exact's on %.4f of queries", vote_agree(b, iv, lab));
        printf("\n");
        sx_free(bs.idx);
        sx_free(bs.dist);
        sx_knn_free(b);
    }
    sx_knn_ivf_free(ix);

    o.method = SX_KNN_APPROX;
    t0 = tick();
    if (!graph) goto done;
    sx_knn_index *gx = sx_knn_index_new(xr, nr, DIM, &o, NULL, &st);
    if (!gx) return fprintf(stderr, "%s\n", st.msg), 1;
    tock("graph index build", t0);
    t0 = tick();
    sx_knn *g = sx_knn_index_search(gx, xq, nq, k, NULL, &st);
    if (!g) return fprintf(stderr, "%s\n", st.msg), 1;
    tock("graph search, all queries", t0);
    sx_knn gs = sample_rows(g, nq, ns);
    printf("  graph: recall@%d %.4f (%.1f MB)\n", k, sx_knn_recall(&gs, &truth),
           sx_knn_index_bytes(gx) / 1e6);
    sx_free(gs.idx);
    sx_free(gs.dist);
    sx_knn_free(g);
    sx_knn_index_free(gx);
done:
    sx_free(truth.idx);
    sx_free(truth.dist);
    sx_knn_free(iv);
    sx_free(xr);
    sx_free(xq);
    sx_free(xs);
    sx_free(lab);
    return 0;
}
