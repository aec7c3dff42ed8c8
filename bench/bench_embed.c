/* bench_embed — UMAP fit on 100,000 x 10 clustered Gaussian cells, transform of 10,000 new
 * cells onto it, and a 1,000,000 x 10 kNN graph (k = 30, NN-descent, recall sampled against
 * exact). Prints wall times, peak RSS and the ratio to umap-learn 0.5.3's times on the
 * project's 2-core machine (golden/quality.json: fit 73.3 s, transform 26.5 s).
 *
 * With both f and t it also prints how consistently the transform places cells of the fitted
 * map (see the loop after the transform).
 *
 * Wall time misleads on the shared machine, so every stage also prints process CPU time (all
 * threads) and the CPU-based ratio; the wall ratio is what the target is stated in.
 *
 * Part x times the transform's SGD alone (sx_umap_transform_knn from neighbours found
 * beforehand, as the daemon's projection calls it) at the mapping bench's sizes: 10k query
 * cells onto a 100k-cell reference layout (100 epochs), 100k onto 100k and 100k onto 1M
 * (30 epochs). The neighbours are searched once and kept in $TMPDIR (bench_embed_knn_*.bin)
 * for later runs. SX_BENCH_SAVE=DIR writes each size's coordinates there, SX_BENCH_CMP=DIR
 * compares with coordinates written by another build (the kernel before a change): the
 * share of query cells whose 15 nearest reference layout points carry the same majority
 * cluster as at the other build's positions, and the mean displacement over the layout's
 * extent.
 *
 * usage: bench_embed [scale] [threads] [parts] [knn] [spread]
 *   scale multiplies all sizes (default 1.0); threads 0 = all CPUs; parts: letters of
 *   f (fit), t (transform), b (1M kNN graph), x (transform SGD at mapping sizes), default
 *   "ftb"; knn: method of the fit's kNN,
 *   auto | exact | approx (default auto); spread: sd of the 30 cluster centres (default 6:
 *   separated clusters, a disconnected graph with component-wise init; 0.7 gives one
 *   connected graph and the spectral init). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "sx_alloc.h"
#include "sx_embed_internal.h"
#include "sx_knn.h"
#include "sx_metrics.h"
#include "sx_umap.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* process CPU seconds (all threads): on a shared machine wall time alone misleads */
static double cpu(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec * 1e-6;
}

static void gen(double *x, int64_t n, int dim, const double *cen, int nc, sx_rng *r, int32_t *lab)
{
    for (int64_t i = 0; i < n; i++) {
        int c = (int)sx_rng_below(r, nc);
        if (lab) lab[i] = c;
        for (int d = 0; d < dim; d++) x[i * dim + d] = cen[c * dim + d] + sx_rng_normal(r);
    }
}

/* Neighbours of the n_q query cells among the n_r reference cells, searched once per size
 * (cluster index, as the daemon's resident one) and cached in $TMPDIR. */
static sx_knn *bench_knn(const double *ref, int64_t n_r, const double *q, int64_t n_q, int dim,
                         int k, int nth)
{
    char path[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/bench_embed_knn_%lld_%lld_%d.bin", tmp ? tmp : "/tmp",
             (long long)n_q, (long long)n_r, k);
    sx_knn *r = sx_calloc(1, sizeof *r);
    r->n_query = n_q;
    r->k = k;
    r->idx = sx_mallocarray((size_t)n_q * k, sizeof *r->idx);
    r->dist = sx_mallocarray((size_t)n_q * k, sizeof *r->dist);
    FILE *f = fopen(path, "rb");
    if (f && fread(r->idx, sizeof *r->idx, (size_t)n_q * k, f) == (size_t)n_q * k &&
        fread(r->dist, sizeof *r->dist, (size_t)n_q * k, f) == (size_t)n_q * k) {
        fclose(f);
        return r;
    }
    if (f) fclose(f);
    sx_knn_free(r);
    sx_knn_opts ko;
    sx_knn_opts_init(&ko);
    ko.n_threads = nth;
    sx_status st = {0};
    double t0 = now();
    r = sx_knn_search(ref, n_r, q, n_q, dim, k, &ko, NULL, &st);
    if (!r) {
        fprintf(stderr, "kNN: %s\n", st.msg);
        exit(1);
    }
    printf("  (neighbours %lld onto %lld searched in %.1f s, cached in %s)\n", (long long)n_q,
           (long long)n_r, now() - t0, path);
    if ((f = fopen(path, "wb"))) {
        fwrite(r->idx, sizeof *r->idx, (size_t)n_q * k, f);
        fwrite(r->dist, sizeof *r->dist, (size_t)n_q * k, f);
        fclose(f);
    }
    return r;
}

/* Compare out (n_q x 2) with the coordinates another build saved (SX_BENCH_CMP) and save
 * ours (SX_BENCH_SAVE): majority cluster of the 15 nearest layout points, displacement. */
static void bench_compare(const char *tag, const float *out, int64_t n_q, const float *lay,
                          int64_t n_r, const int32_t *lab, int nc)
{
    char path[512];
    const char *save = getenv("SX_BENCH_SAVE"), *cmp = getenv("SX_BENCH_CMP");
    if (save) {
        snprintf(path, sizeof path, "%s/transform_%s.f32", save, tag);
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(out, sizeof *out, (size_t)n_q * 2, f);
            fclose(f);
        }
    }
    if (!cmp) return;
    snprintf(path, sizeof path, "%s/transform_%s.f32", cmp, tag);
    float *old = sx_mallocarray((size_t)n_q * 2, sizeof *old);
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(old, sizeof *old, (size_t)n_q * 2, f) : 0;
    if (f) fclose(f);
    if (got != (size_t)n_q * 2) {
        printf("  compare: %s missing\n", path);
        sx_free(old);
        return;
    }
    float lo[2] = {lay[0], lay[1]}, hi[2] = {lay[0], lay[1]};
    for (int64_t i = 0; i < n_r; i++)
        for (int d = 0; d < 2; d++) {
            if (lay[2 * i + d] < lo[d]) lo[d] = lay[2 * i + d];
            if (lay[2 * i + d] > hi[d]) hi[d] = lay[2 * i + d];
        }
    double extent = hypot(hi[0] - lo[0], hi[1] - lo[1]), disp = 0;
    for (int64_t i = 0; i < n_q; i++) disp += hypot(out[2 * i] - old[2 * i], out[2 * i + 1] - old[2 * i + 1]);
    sx_status st = {0};
    sx_knn *ka = sx_knn_exact_f32(lay, n_r, out, n_q, 2, 15, NULL, NULL, &st);
    sx_knn *kb = ka ? sx_knn_exact_f32(lay, n_r, old, n_q, 2, 15, NULL, NULL, &st) : NULL;
    if (!kb) {
        fprintf(stderr, "compare: %s\n", st.msg);
        exit(1);
    }
    int *ca = sx_calloc(nc, sizeof *ca), *cb = sx_calloc(nc, sizeof *cb);
    int64_t same = 0;
    for (int64_t i = 0; i < n_q; i++) {
        memset(ca, 0, nc * sizeof *ca);
        memset(cb, 0, nc * sizeof *cb);
        for (int j = 0; j < 15; j++) {
            ca[lab[ka->idx[i * 15 + j]]]++;
            cb[lab[kb->idx[i * 15 + j]]]++;
        }
        int ma = 0, mb = 0;
        for (int c = 1; c < nc; c++) {
            if (ca[c] > ca[ma]) ma = c;
            if (cb[c] > cb[mb]) mb = c;
        }
        same += ma == mb;
    }
    printf("  vs %s: same majority cluster of the 15 nearest layout points %.4f, mean "
           "displacement %.2e of the layout's extent\n",
           cmp, (double)same / n_q, disp / n_q / extent);
    sx_knn_free(ka);
    sx_knn_free(kb);
    sx_free(ca);
    sx_free(cb);
    sx_free(old);
}

/* Part x: the transform's SGD from cached neighbours, onto a layout with cluster structure
 * (cluster centres in 2-D plus the cells' own first two coordinates). */
static void bench_transform_sizes(double scale, int nth, const double *cen, int nc, int dim)
{
    const int64_t sz[3][2] = {{10000, 100000}, {100000, 100000}, {100000, 1000000}};
    for (int s = 0; s < 3; s++) {
        int64_t n_q = (int64_t)(sz[s][0] * scale), n_r = (int64_t)(sz[s][1] * scale);
        sx_rng r;
        sx_rng_seed(&r, 7, (uint64_t)s);
        double *x = sx_mallocarray((size_t)n_r * dim, sizeof *x), *q = sx_mallocarray((size_t)n_q * dim, sizeof *q);
        int32_t *lab = sx_mallocarray(n_r, sizeof *lab);
        gen(x, n_r, dim, cen, nc, &r, lab);
        gen(q, n_q, dim, cen, nc, &r, NULL);
        float *lay = sx_mallocarray((size_t)n_r * 2, sizeof *lay), *out = sx_mallocarray((size_t)n_q * 2, sizeof *out);
        for (int64_t i = 0; i < n_r; i++)
            for (int d = 0; d < 2; d++)
                lay[2 * i + d] = (float)(cen[lab[i] * dim + d] * 3.0 + x[i * dim + d] - cen[lab[i] * dim + d]);
        sx_knn *kn = bench_knn(x, n_r, q, n_q, dim, 30, nth);
        sx_umap_params p;
        sx_umap_params_init(&p);
        p.n_threads = nth;
        sx_status st = {0};
        double t0 = now(), c0 = cpu();
        if (sx_umap_transform_knn(kn, n_r, lay, &p, out, NULL, &st)) {
            fprintf(stderr, "transform: %s\n", st.msg);
            exit(1);
        }
        double t = now() - t0, c = cpu() - c0;
        printf("transform SGD %lld onto %lld (%d epochs): wall %.3f s, CPU %.3f s\n", (long long)n_q,
               (long long)n_r, n_q <= 10000 ? 100 : 30, t, c);
        char tag[64];
        snprintf(tag, sizeof tag, "%lld_%lld", (long long)n_q, (long long)n_r);
        bench_compare(tag, out, n_q, lay, n_r, lab, nc);
        sx_knn_free(kn);
        sx_free(x);
        sx_free(q);
        sx_free(lab);
        sx_free(lay);
        sx_free(out);
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    double scale = argc > 1 ? atof(argv[1]) : 1.0;
    int nth = argc > 2 ? atoi(argv[2]) : 0;
    const char *parts = argc > 3 ? argv[3] : "ftb";
    const char *kmeth = argc > 4 ? argv[4] : "auto";
    double spread = argc > 5 ? atof(argv[5]) : 6.0;
    const int dim = 10, nc = 30;
    int64_t n_fit = (int64_t)(100000 * scale), n_tr = (int64_t)(10000 * scale),
            n_knn = (int64_t)(1000000 * scale);
    sx_rng r;
    sx_rng_seed(&r, 42, 0);
    double *cen = sx_mallocarray(nc * dim, sizeof *cen);
    for (int i = 0; i < nc * dim; i++) cen[i] = sx_rng_normal(&r) * spread;
    double *x = sx_mallocarray(n_fit * dim, sizeof *x), *q = sx_mallocarray(n_tr * dim, sizeof *q);
    gen(x, n_fit, dim, cen, nc, &r, NULL);
    gen(q, n_tr, dim, cen, nc, &r, NULL);
    sx_status st = {0};
    printf("bench_embed: scale %.3g, threads %d (0 = all = %d)\n", scale, nth, sx_embed_threads(nth));

    /* ---- UMAP fit: kNN + graph + spectral + SGD ---- */
    sx_umap_params p;
    sx_umap_params_init(&p);
    p.n_threads = nth;
    sx_knn_opts ko;
    sx_knn_opts_init(&ko);
    ko.n_threads = nth;
    ko.method = !strcmp(kmeth, "exact") ? SX_KNN_EXACT : !strcmp(kmeth, "approx") ? SX_KNN_APPROX : SX_KNN_AUTO;
    float *emb = NULL;
    double t0, c0;
    if (strchr(parts, 'x')) bench_transform_sizes(scale, nth, cen, nc, dim);
    if (!strchr(parts, 'f')) goto transform;
    t0 = now();
    c0 = cpu();
    sx_knn *knn = sx_knn_self(x, n_fit, dim, p.n_neighbors, &ko, NULL, &st);
    double t_knn = now() - t0, c_knn = cpu() - c0;
    if (!knn) {
        fprintf(stderr, "kNN: %s\n", st.msg);
        return 1;
    }
    sx_csr *G = sx_umap_fuzzy_graph(knn, NULL, NULL, &st);
    double t_graph = now() - t0 - t_knn, c_graph = cpu() - c0 - c_knn;
    emb = sx_mallocarray(n_fit * 2, sizeof *emb);
    sx_umap_info info = {0};
    int rc = G ? sx_umap_fit(G, x, dim, &p, emb, &info, NULL, &st) : st.code;
    double t_fit = now() - t0, c_fit = cpu() - c0;
    if (rc) {
        fprintf(stderr, "UMAP fit: %s\n", st.msg);
        return 1;
    }
    const char *kname = ko.method == SX_KNN_EXACT ? "exact" : ko.method == SX_KNN_APPROX ? "NN-descent"
                        : n_fit >= 100000 ? "NN-descent (auto)" : "exact (auto)";
    printf("UMAP fit %lld x %d: wall %.2f s, CPU %.2f s (all threads; %d SGD threads)\n", (long long)n_fit,
           dim, t_fit, c_fit, info.n_threads);
    double c_init = info.init_cpu_seconds, c_sgd = c_fit - c_knn - c_graph - c_init;
    printf("  stages wall/CPU: kNN %s %.2f/%.2f s, graph %.2f/%.2f s, init %.2f/%.2f s, SGD %.2f/%.2f s\n",
           kname, t_knn, c_knn, t_graph, c_graph, info.init_seconds, c_init, info.sgd_seconds, c_sgd);
    printf("  CPU shares: kNN %.0f%%, graph %.0f%%, init %.0f%%, SGD %.0f%%\n", 100 * c_knn / c_fit,
           100 * c_graph / c_fit, 100 * c_init / c_fit, 100 * c_sgd / c_fit);
    printf("  %d epochs, %lld edges, %d components, init %s\n", info.n_epochs, (long long)info.n_edges,
           info.n_components,
           info.init_used == 0 ? "spectral" : info.init_used == 2 ? "multi-component" : "random");
    if (scale == 1.0)
        printf("  vs umap-learn 73.3 s: wall ratio %.3f, CPU/%d-core ratio %.3f (target <= 0.333)\n",
               t_fit / 73.3, 2, c_fit / 2 / 73.3);
    /* quality on a subsample: trustworthiness needs O(n^2) */
    {
        int64_t ns = n_fit < 3000 ? n_fit : 3000;
        double *xs = sx_mallocarray(ns * dim, sizeof *xs), *es = sx_mallocarray(ns * 2, sizeof *es);
        for (int64_t i = 0; i < ns; i++) {
            int64_t j = i * (n_fit / ns);
            for (int d = 0; d < dim; d++) xs[i * dim + d] = x[j * dim + d];
            es[2 * i] = emb[2 * j];
            es[2 * i + 1] = emb[2 * j + 1];
        }
        double tw = 0;
        if (sx_metrics_trustworthiness(xs, dim, es, 2, ns, 15, nth, &tw, &st) == SX_OK)
            printf("  trustworthiness(15) on a %lld-cell subsample: %.4f\n", (long long)ns, tw);
        sx_free(xs);
        sx_free(es);
    }
    sx_knn_free(knn);
    sx_csr_free(G);

transform:
    if (!strchr(parts, 't')) goto big;
    if (!strchr(parts, 'f')) { /* a layout to transform onto: the data's first two columns */
        emb = sx_mallocarray(n_fit * 2, sizeof *emb);
        for (int64_t i = 0; i < n_fit; i++) {
            emb[2 * i] = (float)x[i * dim];
            emb[2 * i + 1] = (float)x[i * dim + 1];
        }
    }
    float *et = sx_mallocarray(n_tr * 2, sizeof *et);
    t0 = now();
    c0 = cpu();
    rc = sx_umap_transform(x, n_fit, emb, q, n_tr, dim, &p, et, NULL, &st);
    double t_tr = now() - t0;
    if (rc) {
        fprintf(stderr, "transform: %s\n", st.msg);
        return 1;
    }
    printf("UMAP transform %lld cells onto %lld: %.2f s (CPU %.2f s)\n", (long long)n_tr,
           (long long)n_fit, t_tr, cpu() - c0);
    if (scale == 1.0) printf("  vs umap-learn 26.5 s: ratio %.3f\n", t_tr / 26.5);
    if (strchr(parts, 'f')) {
        /* placement consistency at this size (the unit test's readings on the golden
         * latents): the first nh fitted cells transformed (a) onto the map fitted with them,
         * as umap-learn's transform of training cells, and (b) onto the other cells' fitted
         * positions only; share of their 15 nearest other cells in 2-D that agree with those
         * at their fitted positions */
        int64_t nh = n_tr < n_fit / 2 ? n_tr : n_fit / 2, no = n_fit - nh;
        const float *rest = emb + 2 * nh;
        float *ea = sx_mallocarray(nh * 2, sizeof *ea), *eb = sx_mallocarray(nh * 2, sizeof *eb);
        sx_knn *fk = NULL, *ak = NULL, *bk = NULL;
        if (sx_umap_transform(x, n_fit, emb, x, nh, dim, &p, ea, NULL, &st) == SX_OK &&
            sx_umap_transform(x + nh * dim, no, rest, x, nh, dim, &p, eb, NULL, &st) == SX_OK &&
            (fk = sx_knn_exact_f32(rest, no, emb, nh, 2, 15, NULL, NULL, &st)) &&
            (ak = sx_knn_exact_f32(rest, no, ea, nh, 2, 15, NULL, NULL, &st)) &&
            (bk = sx_knn_exact_f32(rest, no, eb, nh, 2, 15, NULL, NULL, &st)))
            printf("  placement of %lld fitted cells, 15 nearest other cells in 2-D as at their fitted "
                   "positions: transformed with the map's own cells %.3f, onto the map without "
                   "them %.3f\n",
                   (long long)nh, sx_knn_recall(ak, fk), sx_knn_recall(bk, fk));
        else
            fprintf(stderr, "placement check: %s\n", st.msg);
        sx_knn_free(fk);
        sx_knn_free(ak);
        sx_knn_free(bk);
        sx_free(ea);
        sx_free(eb);
    }
    printf("peak RSS after UMAP: %.1f MiB\n", sx_peak_rss() / 1048576.0);
    sx_free(et);
big:
    sx_free(emb);
    sx_free(x);
    sx_free(q);
    if (!strchr(parts, 'b')) {
        sx_free(cen);
        return 0;
    }

    /* ---- kNN graph of 1M x 10 ---- */
    double *big = sx_mallocarray(n_knn * dim, sizeof *big);
    gen(big, n_knn, dim, cen, nc, &r, NULL);
    ko.method = SX_KNN_APPROX;
    t0 = now();
    c0 = cpu();
    sx_knn *bk = sx_knn_self(big, n_knn, dim, 30, &ko, NULL, &st);
    double t_big = now() - t0, c_big = cpu() - c0;
    if (!bk) {
        fprintf(stderr, "kNN 1M: %s\n", st.msg);
        return 1;
    }
    /* recall on 1000 sampled cells against exact search */
    int64_t ns = 1000;
    double *qs = sx_mallocarray(ns * dim, sizeof *qs);
    sx_knn sub = {ns, 30, sx_mallocarray(ns * 30, sizeof(int32_t)), sx_mallocarray(ns * 30, sizeof(double)), NULL};
    for (int64_t i = 0; i < ns; i++) {
        int64_t j = i * (n_knn / ns);
        for (int d = 0; d < dim; d++) qs[i * dim + d] = big[j * dim + d];
        for (int c = 0; c < 30; c++) {
            sub.idx[i * 30 + c] = bk->idx[j * 30 + c];
            sub.dist[i * 30 + c] = bk->dist[j * 30 + c];
        }
    }
    t0 = now();
    sx_knn_opts_init(&ko);
    ko.n_threads = nth;
    sx_knn *ex = sx_knn_exact(big, n_knn, qs, ns, dim, 30, &ko, NULL, &st);
    double t_ex = now() - t0;
    printf("kNN graph %lld x %d (k = 30, NN-descent): %.2f s (CPU %.2f s); recall vs exact on %lld cells %.4f "
           "(exact for those: %.2f s -> %.0f s extrapolated for all)\n",
           (long long)n_knn, dim, t_big, c_big, (long long)ns, ex ? sx_knn_recall(&sub, ex) : -1.0, t_ex,
           t_ex * n_knn / ns);
    printf("peak RSS: %.1f MiB\n", sx_peak_rss() / 1048576.0);
    sx_knn_free(ex);
    sx_free(sub.idx);
    sx_free(sub.dist);
    sx_free(qs);
    sx_knn_free(bk);
    sx_free(big);
    sx_free(cen);
    return 0;
}
