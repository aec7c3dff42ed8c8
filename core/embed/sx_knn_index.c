/* sx_knn_index — a search index over a fixed reference latent (sx_knn.h): either the exact
 * BLAS tiles of sx_knn_exact, or, for large references, a best-first beam search over the
 * reference's own kNN graph (NN-descent's 24 nearest cut to 12 diverse ones, made undirected by
 * adding reverse edges), entered
 * from the nearest of a few hundred pivot cells (at least one per connected component of
 * the graph, so a query near a small isolated cell type still reaches it). Each query is
 * searched on its own, so results do not depend on the thread count.
 *
 * Why a graph and not faiss: Debian's libfaiss-dev (1.7.3) ships the C API's headers but
 * not the library behind them (libfaiss.a has no faiss_* symbols), and a C++ shim would
 * make the project a C++ build; the latent is 10-dimensional, where a kNN graph searched
 * best-first reaches recall >= 0.99 at a few hundred distance evaluations per query
 * (bench/bench_map_knn.c measures it against exact). */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_embed_internal.h"
#include "sx_knn.h"
#include "sx_knn_internal.h"

#define IX_GRAPH_K 12   /* out-neighbours per cell before reverse edges (16: recall +0.006 for
                         * 40% more build time; 10: recall 0.984; measured before diversify) */
#define IX_CAND_K 24   /* NN-descent candidates each cell's out-neighbours are chosen from
                        * (bench_map_knn, 100k cells: build 2.5 -> 5.3 CPU-s, paid once per
                        * reference; recall 0.991 -> 0.994, rare types' 0.56 -> 0.86; 32: no
                        * better for twice the build) */
#define IX_MAX_DEG 32   /* out + reverse edges kept per cell */
#define IX_PIVOTS 256   /* sampled entry points (plus one per graph component) */
#define IX_SEEDS 4      /* nearest pivots a search starts from */
#define IX_BLOCK 256    /* queries a worker takes at a time */

void sx_knn_index_free(sx_knn_index *ix)
{
    if (!ix) return;
    sx_knn_ivf_free(ix->ivf);
    if (!ix->borrowed) {
        sx_free(ix->xf);
        sx_free(ix->off);
        sx_free(ix->adj);
        sx_free(ix->piv);
    }
    sx_free(ix);
}

size_t sx_knn_index_graph_bytes(const sx_knn_index *ix)
{
    if (ix->exact || ix->ivf) return 0;
    return (size_t)ix->n * ix->dim * sizeof *ix->xf + ((size_t)ix->n + 1) * sizeof *ix->off +
           (size_t)ix->off[ix->n] * sizeof *ix->adj + (size_t)ix->n_piv * sizeof *ix->piv;
}

size_t sx_knn_index_bytes(const sx_knn_index *ix) { return ix ? ix->bytes : 0; }
int sx_knn_index_is_exact(const sx_knn_index *ix) { return ix ? ix->exact : 1; }

static double d2(const double *a, const double *b, int dim)
{
    double s = 0;
    for (int j = 0; j < dim; j++) s += (a[j] - b[j]) * (a[j] - b[j]);
    return s;
}

/* Each cell's IX_GRAPH_K out-neighbours from its IX_CAND_K nearest: first those in directions
 * no nearer chosen one covers (the relative-neighbourhood rule of HNSW and NSG: keep c unless
 * a chosen p lies nearer to c than the cell does), then the nearest left. A small cell type
 * whose nearest cells are all its own keeps an edge toward the cells around it, and through
 * the reverse edges those lead searches into it (with plain nearest neighbours, queries of
 * ~20-cell types in a 100k reference found 56% of their true neighbours). */
static sx_knn *diversify(const double *ref, int dim, const sx_knn *g, sx_status *st)
{
    int K = g->k, G = IX_GRAPH_K;
    sx_knn *o = sx_calloc(1, sizeof *o);
    uint8_t used[IX_CAND_K];
    if (o) {
        o->n_query = g->n_query;
        o->k = G;
        o->idx = sx_mallocarray((size_t)g->n_query * G + 1, sizeof *o->idx);
        o->dist = sx_mallocarray((size_t)g->n_query * G + 1, sizeof *o->dist);
    }
    if (!o || !o->idx || !o->dist) {
        sx_knn_free(o);
        sx_status_set(st, SX_ENOMEM, "kNN index: out of memory choosing the graph's edges");
        return NULL;
    }
    for (int64_t u = 0; u < g->n_query; u++) {
        const int32_t *c = g->idx + u * K;
        const double *dc = g->dist + u * K; /* nearest first */
        int32_t *out = o->idx + u * G;
        int m = 0;
        for (int j = 0; j < K; j++) {
            int ok = m < G;
            for (int p = 0; p < m && ok; p++)
                ok = d2(ref + (int64_t)out[p] * dim, ref + (int64_t)c[j] * dim, dim) >= dc[j] * dc[j];
            used[j] = (uint8_t)ok;
            if (ok) out[m++] = c[j];
        }
        for (int j = 0; j < K && m < G; j++)
            if (!used[j]) out[m++] = c[j];
        for (int j = 0; j < G; j++) o->dist[u * G + j] = 0; /* unused by build_graph */
    }
    return o;
}

/* Undirected search graph: each cell's out-neighbours, then cells that have it as an
 * out-neighbour (in source order), up to IX_MAX_DEG, no repeats. */
static int build_graph(sx_knn_index *ix, const sx_knn *g, sx_status *st)
{
    int64_t n = ix->n;
    int K = g->k;
    int64_t *roff = sx_calloc((size_t)n + 1, sizeof *roff);
    int32_t *rev = sx_mallocarray((size_t)n * K + 1, sizeof *rev);
    ix->off = sx_mallocarray((size_t)n + 1, sizeof *ix->off);
    ix->adj = sx_mallocarray((size_t)n * IX_MAX_DEG + 1, sizeof *ix->adj);
    int rc = SX_OK;
    if (!roff || !rev || !ix->off || !ix->adj) {
        rc = sx_status_set(st, SX_ENOMEM, "kNN index: out of memory for the search graph of "
                           "%lld cells", (long long)n);
        goto out;
    }
    for (int64_t i = 0; i < n * K; i++) roff[g->idx[i] + 1]++;
    for (int64_t i = 0; i < n; i++) roff[i + 1] += roff[i];
    for (int64_t u = 0; u < n; u++) /* sources in increasing order: reverse lists sorted */
        for (int j = 0; j < K; j++) rev[roff[g->idx[u * K + j]]++] = (int32_t)u;
    for (int64_t i = n; i > 0; i--) roff[i] = roff[i - 1];
    roff[0] = 0;
    int64_t w = 0;
    for (int64_t u = 0; u < n; u++) {
        ix->off[u] = w;
        int64_t start = w;
        for (int j = 0; j < K; j++) ix->adj[w++] = g->idx[u * K + j];
        for (int64_t r = roff[u]; r < roff[u + 1] && w - start < IX_MAX_DEG; r++) {
            int32_t v = rev[r];
            int dup = 0;
            for (int j = 0; j < K && !dup; j++) dup = g->idx[u * K + j] == v;
            if (!dup) ix->adj[w++] = v;
        }
    }
    ix->off[n] = w;
out:
    sx_free(roff);
    sx_free(rev);
    return rc;
}

static int64_t uf_find(int64_t *p, int64_t x)
{
    while (p[x] != x) x = p[x] = p[p[x]];
    return x;
}

/* Pivots: an even stride over the cells, plus the first cell of every graph component that
 * has none (disconnected cell types are reachable only through their own pivot). */
static int choose_pivots(sx_knn_index *ix, sx_status *st)
{
    int64_t n = ix->n;
    int64_t *par = sx_mallocarray((size_t)n, sizeof *par);
    uint8_t *has = sx_calloc((size_t)n, 1);
    int cap = IX_PIVOTS + 1024;
    ix->piv = sx_mallocarray(cap, sizeof *ix->piv);
    if (!par || !has || !ix->piv) {
        sx_free(par);
        sx_free(has);
        return sx_status_set(st, SX_ENOMEM, "kNN index: out of memory for entry points");
    }
    for (int64_t i = 0; i < n; i++) par[i] = i;
    for (int64_t u = 0; u < n; u++)
        for (int64_t e = ix->off[u]; e < ix->off[u + 1]; e++) {
            int64_t a = uf_find(par, u), b = uf_find(par, ix->adj[e]);
            if (a != b) par[a < b ? b : a] = a < b ? a : b;
        }
    int np = 0;
    int64_t step = n > IX_PIVOTS ? n / IX_PIVOTS : 1;
    for (int64_t i = 0; i < n && np < IX_PIVOTS; i += step) {
        ix->piv[np++] = (int32_t)i;
        has[uf_find(par, i)] = 1;
    }
    for (int64_t i = 0; i < n && np < cap; i++) {
        int64_t r = uf_find(par, i);
        if (has[r]) continue;
        has[r] = 1;
        ix->piv[np++] = (int32_t)i;
    }
    ix->n_piv = np;
    sx_free(par);
    sx_free(has);
    return SX_OK;
}

/* ix (its reference set) with a cluster index instead of the graph; ix freed on failure */
static sx_knn_index *ivf_build(sx_knn_index *ix, const sx_knn_opts *o, const sx_progress *prog,
                               sx_status *st)
{
    ix->exact = 0;
    ix->ivf_bound = ix->n >= SX_KNN_IVF_BOUND_FROM ? SX_KNN_IVF_BOUND : 0;
    if (!(ix->ivf = sx_knn_ivf_new(ix->ref, ix->n, ix->dim, 0, o->n_threads, o->seed, prog, st))) {
        sx_knn_index_free(ix);
        return NULL;
    }
    ix->bytes += sx_knn_ivf_bytes(ix->ivf);
    return ix;
}

sx_knn_index *sx_knn_index_new(const double *ref, int64_t n_ref, int dim, const sx_knn_opts *opts,
                               const sx_progress *prog, sx_status *st)
{
    sx_knn_opts o;
    if (opts) o = *opts;
    else sx_knn_opts_init(&o);
    int64_t from = o.approx_from > 0 ? o.approx_from : 100000;
    if (n_ref < 1 || dim < 1 || !ref) {
        sx_status_set(st, SX_EINVAL, "kNN index: empty reference (%lld rows, %d dims)",
                      (long long)n_ref, dim);
        return NULL;
    }
    sx_knn_index *ix = sx_calloc(1, sizeof *ix);
    if (!ix) {
        sx_status_set(st, SX_ENOMEM, "kNN index: out of memory");
        return NULL;
    }
    ix->ref = ref;
    ix->n = n_ref;
    ix->dim = dim;
    ix->n_threads = o.n_threads;
    ix->ef = o.ef;
    /* a graph needs enough cells to be worth it (and NN-descent 4k + 8 of them) */
    ix->exact = o.method == SX_KNN_EXACT || (o.method == SX_KNN_AUTO && n_ref < from) ||
                n_ref < 8 * IX_CAND_K;
    ix->bytes = sizeof *ix;
    if (o.method == SX_KNN_AUTO && n_ref >= SX_KNN_IVF_FROM) return ivf_build(ix, &o, prog, st);
    if (ix->exact) return ix;
    o.exclude_self = 1;
    sx_knn *cand = sx_knn_nndescent(ref, n_ref, dim, IX_CAND_K, &o, prog, st);
    sx_knn *g = cand ? diversify(ref, dim, cand, st) : NULL;
    sx_knn_free(cand);
    if (!g) goto fail;
    int rc = build_graph(ix, g, st);
    sx_knn_free(g);
    if (rc || choose_pivots(ix, st)) goto fail;
    if (!(ix->xf = sx_mallocarray((size_t)n_ref * dim, sizeof *ix->xf))) {
        sx_status_set(st, SX_ENOMEM, "kNN index: out of memory for the float copy");
        goto fail;
    }
    for (int64_t i = 0; i < n_ref * dim; i++) ix->xf[i] = (float)ref[i];
    ix->bytes += sx_knn_index_graph_bytes(ix);
    return ix;
fail:
    sx_knn_index_free(ix);
    return NULL;
}

/* ------------------------------------------------------------- search ---- */

typedef struct hent {
    float d;
    int32_t v;
} hent;

/* Binary heap on (d, v) whose top is the largest s * d (s = 1: max-heap, -1: min-heap);
 * equal keys are ordered by v so a search never depends on memory layout. */
static inline int hbefore(hent a, hent b, float s)
{
    return a.d != b.d ? s * a.d > s * b.d : a.v > b.v;
}

static void hpush(hent *h, int *n, hent e, float s)
{
    int i = (*n)++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!hbefore(e, h[p], s)) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static hent hpop(hent *h, int *n, float s)
{
    hent top = h[0], e = h[--(*n)];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, c;
        if (l >= *n) break;
        c = r < *n && hbefore(h[r], h[l], s) ? r : l;
        if (!hbefore(h[c], e, s)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = e;
    return top;
}

static inline float d2q(const float *a, const float *b, int dim)
{
    float s = 0;
    for (int j = 0; j < dim; j++) {
        float t = a[j] - b[j];
        s += t * t;
    }
    return s;
}

typedef struct search_job {
    const sx_knn_index *ix;
    const double *query;
    int64_t n_query;
    const int32_t *qorder; /* queries grouped by nearest pivot: neighbouring searches share
                            * graph regions in cache */
    int k, ef;
    sx_knn *res;
    atomic_llong next, done;
    atomic_int stop, failed;
    const sx_progress *prog;
} search_job;

/* per-worker scratch */
typedef struct scratch {
    uint32_t *seen, tag; /* seen[v] == tag: visited by the current query */
    hent *cand, *best;
    int cand_cap;
    float *q;
    double *dd;
} scratch;

static int cmp_dist_idx(const void *a, const void *b)
{
    const double *x = a, *y = b; /* (distance, index) pairs */
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

/* Every cell ranked (float): for a query whose search reached fewer than k cells (its seeds'
 * graph components were smaller; possible with tiny isolated cell types, or a damaged graph
 * read from a file), so every result column is a real cell. */
static void scan_all(const sx_knn_index *ix, scratch *S, int ef, int *nb)
{
    *nb = 0;
    for (int64_t v = 0; v < ix->n; v++) {
        hent h = {d2q(S->q, ix->xf + v * ix->dim, ix->dim), (int32_t)v};
        if (*nb < ef) hpush(S->best, nb, h, 1.0f);
        else if (hbefore(S->best[0], h, 1.0f)) {
            hpop(S->best, nb, 1.0f);
            hpush(S->best, nb, h, 1.0f);
        }
    }
}

/* Best-first search of one query; its k nearest found, by exact double distance. */
static int search_one(const search_job *J, scratch *S, const double *qd, int32_t *oi, double *od)
{
    const sx_knn_index *ix = J->ix;
    int dim = ix->dim, ef = J->ef, nc = 0, nb = 0;
    for (int j = 0; j < dim; j++) S->q[j] = (float)qd[j];
    if (++S->tag == 0) { /* wrapped: clear the marks once every 4 billion queries */
        memset(S->seen, 0, (size_t)ix->n * sizeof *S->seen);
        S->tag = 1;
    }
    hent seeds[IX_SEEDS];
    int ns = 0;
    for (int p = 0; p < ix->n_piv; p++) {
        hent e = {d2q(S->q, ix->xf + (int64_t)ix->piv[p] * dim, dim), ix->piv[p]};
        if (ns < IX_SEEDS) hpush(seeds, &ns, e, 1.0f);
        else if (hbefore(seeds[0], e, 1.0f)) {
            hpop(seeds, &ns, 1.0f);
            hpush(seeds, &ns, e, 1.0f);
        }
    }
    for (int i = 0; i < ns; i++) {
        S->seen[seeds[i].v] = S->tag;
        hpush(S->cand, &nc, seeds[i], -1.0f);
        hpush(S->best, &nb, seeds[i], 1.0f);
    }
    while (nc > 0) {
        hent c = hpop(S->cand, &nc, -1.0f);
        if (nb >= ef && c.d > S->best[0].d) break;
        for (int64_t e = ix->off[c.v]; e < ix->off[c.v + 1]; e++) {
            int32_t v = ix->adj[e];
            if (S->seen[v] == S->tag) continue;
            S->seen[v] = S->tag;
            hent h = {d2q(S->q, ix->xf + (int64_t)v * dim, dim), v};
            if (nb >= ef && !hbefore(S->best[0], h, 1.0f)) continue;
            if (nc == S->cand_cap) {
                hent *g = sx_reallocarray(S->cand, (size_t)S->cand_cap * 2, sizeof *g);
                if (!g) return SX_ENOMEM;
                S->cand = g;
                S->cand_cap *= 2;
            }
            hpush(S->cand, &nc, h, -1.0f);
            hpush(S->best, &nb, h, 1.0f);
            if (nb > ef) hpop(S->best, &nb, 1.0f);
        }
    }
    if (nb < J->k) scan_all(ix, S, ef, &nb);
    /* the float ranking chose the set; distances and order come from doubles, ties by index */
    for (int i = 0; i < nb; i++) {
        const double *r = ix->ref + (int64_t)S->best[i].v * dim;
        double s = 0;
        for (int j = 0; j < dim; j++) s += (qd[j] - r[j]) * (qd[j] - r[j]);
        S->dd[2 * i] = sqrt(s);
        S->dd[2 * i + 1] = S->best[i].v;
    }
    qsort(S->dd, nb, 2 * sizeof *S->dd, cmp_dist_idx);
    for (int j = 0; j < J->k; j++) {
        od[j] = S->dd[2 * j];
        oi[j] = (int32_t)S->dd[2 * j + 1];
    }
    return SX_OK;
}

static void *search_run(void *arg)
{
    search_job *J = arg;
    const sx_knn_index *ix = J->ix;
    int64_t n_blocks = (J->n_query + IX_BLOCK - 1) / IX_BLOCK;
    scratch S = {.tag = 0, .cand_cap = 4 * J->ef + IX_MAX_DEG};
    S.seen = sx_calloc((size_t)ix->n, sizeof *S.seen);
    S.cand = sx_mallocarray(S.cand_cap, sizeof *S.cand);
    S.best = sx_mallocarray((size_t)J->ef + 1, sizeof *S.best);
    S.q = sx_mallocarray(ix->dim, sizeof *S.q);
    S.dd = sx_mallocarray(2 * ((size_t)J->ef + 1), sizeof *S.dd);
    int rc = S.seen && S.cand && S.best && S.q && S.dd ? SX_OK : SX_ENOMEM;
    while (rc == SX_OK && !atomic_load(&J->stop)) {
        if (sx_progress_cancelled(J->prog)) {
            atomic_store(&J->stop, 1);
            break;
        }
        int64_t b = atomic_fetch_add(&J->next, 1);
        if (b >= n_blocks) break;
        int64_t q1 = (b + 1) * IX_BLOCK < J->n_query ? (b + 1) * IX_BLOCK : J->n_query;
        for (int64_t p = b * IX_BLOCK; p < q1 && rc == SX_OK; p++) {
            int64_t q = J->qorder[p];
            rc = search_one(J, &S, J->query + q * ix->dim, J->res->idx + q * J->k,
                            J->res->dist + q * J->k);
        }
        long long done = atomic_fetch_add(&J->done, 1) + 1;
        sx_progress_report(J->prog, "knn", (double)done / n_blocks, NULL);
    }
    if (rc != SX_OK) {
        atomic_store(&J->failed, 1);
        atomic_store(&J->stop, 1);
    }
    sx_free(S.seen);
    sx_free(S.cand);
    sx_free(S.best);
    sx_free(S.q);
    sx_free(S.dd);
    return NULL;
}

/* Query rows ordered by their nearest pivot (a counting sort; stable, so deterministic). */
static int32_t *group_queries(const sx_knn_index *ix, const double *query, int64_t n_query)
{
    int32_t *near = sx_mallocarray((size_t)n_query + 1, sizeof *near);
    int32_t *order = sx_mallocarray((size_t)n_query + 1, sizeof *order);
    int64_t *cnt = sx_calloc((size_t)ix->n_piv + 1, sizeof *cnt);
    if (!near || !order || !cnt) {
        sx_free(near);
        sx_free(order);
        sx_free(cnt);
        return NULL;
    }
    int dim = ix->dim;
    for (int64_t q = 0; q < n_query; q++) {
        float qf[64], best = FLT_MAX;
        int dd = dim < 64 ? dim : 64;
        for (int j = 0; j < dd; j++) qf[j] = (float)query[q * dim + j];
        near[q] = 0;
        for (int p = 0; p < ix->n_piv; p++) {
            float d = d2q(qf, ix->xf + (int64_t)ix->piv[p] * dim, dd);
            if (d < best) {
                best = d;
                near[q] = p;
            }
        }
        cnt[near[q] + 1]++;
    }
    for (int p = 0; p < ix->n_piv; p++) cnt[p + 1] += cnt[p];
    for (int64_t q = 0; q < n_query; q++) order[cnt[near[q]]++] = (int32_t)q;
    sx_free(near);
    sx_free(cnt);
    return order;
}

/* The graph search of every query on nth workers (the index's own threads when 0). */
static sx_knn *graph_search(const sx_knn_index *ix, const double *query, int64_t n_query, int k,
                            int nth, const sx_progress *prog, sx_status *st)
{
    if (k < 1 || k > ix->n) {
        sx_status_set(st, SX_EINVAL, "kNN: k = %d neighbours requested but the reference has "
                      "%lld rows; use a smaller k", k, (long long)ix->n);
        return NULL;
    }
    sx_knn *res = sx_knn_alloc(n_query, k, 0, st);
    if (!res) return NULL;
    /* beam k + 6, at least 32: recall 0.995 at k 30 on clustered 10-d latents (0.998 at 2 k
     * for twice the time; bench/bench_map_knn.c) */
    int ef = ix->ef > 0 ? ix->ef : k + 6;
    if (ef < 32) ef = 32;
    if (ef < k) ef = k;
    if (ef > ix->n) ef = (int)ix->n;
    int32_t *qorder = group_queries(ix, query, n_query);
    if (!qorder) {
        sx_knn_free(res);
        sx_status_set(st, SX_ENOMEM, "kNN index search: out of memory ordering the queries");
        return NULL;
    }
    search_job J = {.ix = ix, .query = query, .n_query = n_query, .qorder = qorder, .k = k,
                    .ef = ef, .res = res, .prog = prog};
    atomic_init(&J.next, 0);
    atomic_init(&J.done, 0);
    atomic_init(&J.stop, 0);
    atomic_init(&J.failed, 0);
    nth = sx_embed_threads(nth);
    int64_t n_blocks = (n_query + IX_BLOCK - 1) / IX_BLOCK;
    if (nth > n_blocks) nth = (int)n_blocks;
    if (nth > 256) nth = 256;
    pthread_t th[256];
    int started;
    for (started = 1; started < nth; started++)
        if (pthread_create(&th[started], NULL, search_run, &J)) break;
    search_run(&J);
    for (int t = 1; t < started; t++) pthread_join(th[t], NULL);
    sx_free(qorder);
    if (atomic_load(&J.failed)) {
        sx_status_set(st, SX_ENOMEM, "kNN index search: out of memory for search lists");
        goto fail;
    }
    if (atomic_load(&J.done) * IX_BLOCK < n_query) {
        sx_status_set(st, SX_ECANCELED, "kNN search cancelled");
        goto fail;
    }
    return res;
fail:
    sx_knn_free(res);
    return NULL;
}

/* Exact search of ix's reference (query NULL: the reference's rows as queries, not a self
 * search), the choice order kept when keep_rank. */
static sx_knn *exact_search(const double *ref, int64_t n_ref, const double *query,
                            int64_t n_query, int dim, int k, int nth, int keep_rank,
                            const sx_progress *prog, sx_status *st)
{
    sx_knn_opts ko;
    sx_knn_opts_init(&ko);
    ko.n_threads = nth;
    ko.keep_rank = keep_rank;
    return sx_knn_exact(ref, n_ref, query ? query : ref, n_query, dim, k, &ko, prog, st);
}

sx_knn *sx_knn_index_search(const sx_knn_index *ix, const double *query, int64_t n_query, int k,
                            const sx_progress *prog, sx_status *st)
{
    if (!ix || (!query && n_query > 0) || n_query < 0) {
        sx_status_set(st, SX_EINVAL, "kNN index search: no index or no query");
        return NULL;
    }
    if (ix->exact || n_query == 0) /* n_query 0 still goes through the argument checks */
        return exact_search(ix->ref, ix->n, query, n_query, ix->dim, k, ix->n_threads, 0, prog,
                            st);
    if (ix->ivf)
        return sx_knn_ivf_search(ix->ivf, query, n_query, k, ix->ivf_bound, ix->n_threads, prog,
                                 NULL, st);
    return graph_search(ix, query, n_query, k, ix->n_threads, prog, st);
}

sx_knn *sx_knn_search_with(const sx_knn_index *ix, const double *ref, int64_t n_ref,
                           const double *query, int64_t n_query, int dim, int k,
                           const sx_knn_opts *opts, const sx_progress *prog, sx_status *st)
{
    sx_knn_opts o;
    if (opts) o = *opts;
    else sx_knn_opts_init(&o);
    if (!ref || (!query && n_query > 0) || n_query < 0) {
        sx_status_set(st, SX_EINVAL, "kNN search: no reference or no query");
        return NULL;
    }
    if (ix && !ix->exact && o.method != SX_KNN_EXACT && n_query > 0) {
        if (ix->ref != ref || ix->n != n_ref || ix->dim != dim) {
            sx_status_set(st, SX_EINVAL, "kNN search: the index is not of this reference");
            return NULL;
        }
        if (ix->ivf)
            return sx_knn_ivf_search(ix->ivf, query, n_query, k, ix->ivf_bound, o.n_threads,
                                     prog, NULL, st);
        return graph_search(ix, query, n_query, k, o.n_threads, prog, st);
    }
    /* a cluster index built for one search pays off when the queries are more than a fiftieth
     * of the reference (build 0.15-0.25 CPU-s at 100k rows, about what 2,000 queries cost
     * searched exactly: bench/bench_knn_ivf.c); the graph only when asked for */
    int build = o.method == SX_KNN_APPROX ||
                (o.method == SX_KNN_AUTO && n_ref >= SX_KNN_IVF_FROM && n_query >= n_ref / 50);
    if (!build || n_query == 0)
        return exact_search(ref, n_ref, query, n_query, dim, k, o.n_threads, 1, prog, st);
    sx_knn_index *own = sx_knn_index_new(ref, n_ref, dim, &o, prog, st);
    if (!own) return NULL;
    sx_knn *r = sx_knn_index_search(own, query, n_query, k, prog, st);
    sx_knn_index_free(own);
    return r;
}

sx_knn *sx_knn_search(const double *ref, int64_t n_ref, const double *query, int64_t n_query,
                      int dim, int k, const sx_knn_opts *opts, const sx_progress *prog,
                      sx_status *st)
{
    return sx_knn_search_with(NULL, ref, n_ref, query, n_query, dim, k, opts, prog, st);
}
