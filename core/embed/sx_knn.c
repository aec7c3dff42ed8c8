#include "sx_knn.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_embed_internal.h"
#include "sx_knn_internal.h"

/* OpenBLAS 0.3.21 runs a dgemm single-threaded when m*n*k <= 65536 * 4; tiles stay under
 * that so concurrent calls from our workers never queue on BLAS's own thread server. */
#define SX_KNN_GEMM_MNK 262144
#define SX_KNN_BQ 64

void sx_knn_opts_init(sx_knn_opts *o)
{
    memset(o, 0, sizeof *o);
    o->approx_from = 100000;
}

void sx_knn_free(sx_knn *r)
{
    if (!r) return;
    sx_free(r->idx);
    sx_free(r->dist);
    sx_free(r->rank);
    sx_free(r);
}

sx_knn *sx_knn_alloc(int64_t n, int k, int with_rank, sx_status *st)
{
    sx_knn *r = sx_calloc(1, sizeof *r);
    if (!r) goto fail;
    r->n_query = n;
    r->k = k;
    r->idx = sx_mallocarray((size_t)n * (size_t)k + 1, sizeof *r->idx); /* + 1: n may be 0 */
    r->dist = sx_mallocarray((size_t)n * (size_t)k + 1, sizeof *r->dist);
    if (with_rank) r->rank = sx_mallocarray((size_t)n * (size_t)k + 1, sizeof *r->rank);
    if (!r->idx || !r->dist || (with_rank && !r->rank)) goto fail;
    return r;
fail:
    sx_knn_free(r);
    sx_status_set(st, SX_ENOMEM, "kNN: cannot allocate %lld x %d neighbour table", (long long)n, k);
    return NULL;
}

static double dist_exact(const double *a, const double *b, int dim)
{
    double s = 0;
    for (int j = 0; j < dim; j++) {
        double t = a[j] - b[j];
        s += t * t;
    }
    return sqrt(s);
}

/* Sort one row's (dist, idx) by distance, the query itself first among zeros, then index;
 * rk (NULL allowed) moves along: the rank of each entry before the sort. */
static void sort_row(double *d, int32_t *ix, int32_t *rk, int m, int64_t self)
{
    for (int i = 1; i < m; i++) {
        double dv = d[i];
        int32_t iv = ix[i], rv = rk ? rk[i] : 0;
        int j = i;
        while (j > 0) {
            double dp = d[j - 1];
            int32_t ip = ix[j - 1];
            int before;
            if (dv != dp) before = dv < dp;
            else if (iv == self || ip == self) before = (iv == self);
            else before = iv < ip;
            if (!before) break;
            d[j] = dp;
            ix[j] = ip;
            if (rk) rk[j] = rk[j - 1];
            j--;
        }
        d[j] = dv;
        ix[j] = iv;
        if (rk) rk[j] = rv;
    }
}

static int check_args(int64_t n_ref, int dim, int k, int exclude, sx_status *st)
{
    if (n_ref < 1 || dim < 1)
        return sx_status_set(st, SX_EINVAL, "kNN: empty reference (%lld rows, %d dims)",
                             (long long)n_ref, dim);
    if (n_ref > INT32_MAX)
        return sx_status_set(st, SX_ELIMIT, "kNN: %lld reference rows exceed the int32 index limit",
                             (long long)n_ref);
    if (k < 1 || (int64_t)k + (exclude ? 1 : 0) > n_ref)
        return sx_status_set(st, SX_EINVAL,
                             "kNN: k = %d neighbours%s requested but the reference has %lld rows; "
                             "use a smaller k",
                             k, exclude ? " (self excluded)" : "", (long long)n_ref);
    return SX_OK;
}

/* ---------------------------------------------------------------- exact ---- */

typedef struct exact_job {
    const double *ref, *query, *rnorm;
    int64_t n_ref, n_query, n_tiles;
    int dim, k, kk, self, exclude, br;
    int32_t *idx, *rank; /* rank: NULL unless asked (opts->keep_rank) */
    double *dist;
    atomic_llong next, done;
    atomic_int stop;
    const sx_progress *prog;
} exact_job;

typedef struct exact_worker {
    exact_job *job;
    int id, failed;
} exact_worker;

/* The chosen lists of queries q0.. (nq of them, in choice order: BLAS squared distance, then
 * row) into the result: distances recomputed directly, sorted, the choice order kept. */
static void finish_rows(const exact_job *J, const double *Q, int64_t q0, int nq, double *td,
                        int32_t *ti, int32_t *rk)
{
    int kk = J->kk, dim = J->dim;
    for (int i = 0; i < nq; i++) {
        int64_t qi = q0 + i;
        double *d = td + (int64_t)i * kk;
        int32_t *ix = ti + (int64_t)i * kk;
        for (int j = 0; j < kk; j++) {
            d[j] = dist_exact(Q + (int64_t)i * dim, J->ref + (int64_t)ix[j] * dim, dim);
            rk[j] = j;
        }
        sort_row(d, ix, rk, kk, J->self ? qi : -1);
        memcpy(J->idx + qi * J->k, ix, (size_t)J->k * sizeof *ix);
        memcpy(J->dist + qi * J->k, d, (size_t)J->k * sizeof *d);
        if (J->rank) memcpy(J->rank + qi * J->k, rk, (size_t)J->k * sizeof *rk);
    }
}

static void *exact_run(void *arg)
{
    exact_worker *w = arg;
    exact_job *J = w->job;
    const int bq = SX_KNN_BQ, br = J->br, kk = J->kk, dim = J->dim;
    double *G = sx_mallocarray((size_t)bq * br, sizeof *G);
    double *td = sx_mallocarray((size_t)bq * kk, sizeof *td);
    int32_t *ti = sx_mallocarray((size_t)bq * kk, sizeof *ti);
    double *qn = sx_mallocarray(bq, sizeof *qn);
    int *cnt = sx_mallocarray(bq, sizeof *cnt);
    int32_t *rk = sx_mallocarray(kk, sizeof *rk);
    if (!G || !td || !ti || !qn || !cnt || !rk) {
        w->failed = 1;
        atomic_store(&J->stop, 1);
        goto out;
    }
    for (;;) {
        if (atomic_load(&J->stop)) break;
        if (sx_progress_cancelled(J->prog)) {
            atomic_store(&J->stop, 1);
            break;
        }
        int64_t t = atomic_fetch_add(&J->next, 1);
        if (t >= J->n_tiles) break;
        int64_t q0 = t * bq, q1 = q0 + bq < J->n_query ? q0 + bq : J->n_query;
        int nq = (int)(q1 - q0);
        const double *Q = J->query + q0 * dim;
        for (int i = 0; i < nq; i++) {
            double s = 0;
            for (int j = 0; j < dim; j++) s += Q[(int64_t)i * dim + j] * Q[(int64_t)i * dim + j];
            qn[i] = s;
            cnt[i] = 0;
        }
        for (int64_t r0 = 0; r0 < J->n_ref; r0 += br) {
            int nr = (int)(J->n_ref - r0 < br ? J->n_ref - r0 : br);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nr, dim, 1.0, Q, dim,
                        J->ref + r0 * dim, dim, 0.0, G, nr);
            for (int i = 0; i < nq; i++) {
                double *d = td + (int64_t)i * kk;
                int32_t *ix = ti + (int64_t)i * kk;
                int c = cnt[i];
                double worst = c == kk ? d[kk - 1] : DBL_MAX;
                const double *g = G + (int64_t)i * nr;
                const double *rn = J->rnorm + r0;
                int64_t qi = q0 + i;
                for (int r = 0; r < nr; r++) {
                    double d2 = qn[i] + rn[r] - 2.0 * g[r];
                    if (J->self && r0 + r == qi) {
                        if (J->exclude) continue;
                        d2 = -1.0; /* the cell itself always first */
                    }
                    if (d2 >= worst) continue;
                    int p = c < kk ? c++ : kk - 1;
                    while (p > 0 && d[p - 1] > d2) {
                        d[p] = d[p - 1];
                        ix[p] = ix[p - 1];
                        p--;
                    }
                    d[p] = d2;
                    ix[p] = (int32_t)(r0 + r);
                    if (c == kk) worst = d[kk - 1];
                }
                cnt[i] = c;
            }
        }
        finish_rows(J, Q, q0, nq, td, ti, rk);
        long long done = atomic_fetch_add(&J->done, 1) + 1;
        if (w->id == 0) sx_progress_report(J->prog, "knn", (double)done / J->n_tiles, NULL);
    }
out:
    sx_free(G);
    sx_free(td);
    sx_free(ti);
    sx_free(qn);
    sx_free(cnt);
    sx_free(rk);
    return NULL;
}

sx_knn *sx_knn_exact(const double *ref, int64_t n_ref, const double *query, int64_t n_query,
                     int dim, int k, const sx_knn_opts *opts, const sx_progress *prog,
                     sx_status *st)
{
    sx_knn_opts dflt;
    if (!opts) {
        sx_knn_opts_init(&dflt);
        opts = &dflt;
    }
    int self = query == NULL;
    int exclude = self && opts->exclude_self;
    sx_knn *res = NULL;
    double *rnorm = NULL;
    exact_worker *ws = NULL;
    pthread_t *th = NULL;
    int nth = 0, started = 0;
    if (!self && n_query < 0) {
        sx_status_set(st, SX_EINVAL, "kNN: negative query count");
        goto fail;
    }
    if (check_args(n_ref, dim, k, exclude, st)) goto fail;
    if (self) {
        query = ref;
        n_query = n_ref;
    }
    res = sx_knn_alloc(n_query, k, opts->keep_rank, st);
    if (!res) goto fail;
    if (n_query == 0) return res;
    rnorm = sx_mallocarray((size_t)n_ref, sizeof *rnorm);
    if (!rnorm) {
        sx_status_set(st, SX_ENOMEM, "kNN: out of memory for reference norms");
        goto fail;
    }
    for (int64_t i = 0; i < n_ref; i++) {
        double s = 0;
        for (int j = 0; j < dim; j++) s += ref[i * dim + j] * ref[i * dim + j];
        rnorm[i] = s;
    }
    exact_job J = {.ref = ref, .query = query, .rnorm = rnorm, .n_ref = n_ref,
                   .n_query = n_query, .dim = dim, .k = k, .self = self,
                   .exclude = exclude, .idx = res->idx, .rank = res->rank, .dist = res->dist,
                   .prog = prog};
    J.kk = k; /* with exclude_self the self pair is skipped, so k slots still suffice */
    J.br = SX_KNN_GEMM_MNK / (SX_KNN_BQ * dim);
    if (J.br < 32) J.br = 32;
    J.n_tiles = (n_query + SX_KNN_BQ - 1) / SX_KNN_BQ;
    atomic_init(&J.next, 0);
    atomic_init(&J.done, 0);
    atomic_init(&J.stop, 0);
    nth = sx_embed_threads(opts->n_threads);
    if (nth > J.n_tiles) nth = (int)J.n_tiles;
    ws = sx_calloc(nth, sizeof *ws);
    th = sx_calloc(nth, sizeof *th);
    if (!ws || !th) {
        sx_status_set(st, SX_ENOMEM, "kNN: out of memory for workers");
        goto fail;
    }
    for (int t = 0; t < nth; t++) {
        ws[t].job = &J;
        ws[t].id = t;
    }
    for (started = 1; started < nth; started++)
        if (pthread_create(&th[started], NULL, exact_run, &ws[started])) break;
    exact_run(&ws[0]);
    for (int t = 1; t < started; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < nth; t++)
        if (ws[t].failed) {
            sx_status_set(st, SX_ENOMEM, "kNN: out of memory for distance tiles");
            goto fail;
        }
    if (sx_progress_cancelled(prog) || atomic_load(&J.done) != J.n_tiles) {
        sx_status_set(st, SX_ECANCELED, "kNN search cancelled");
        goto fail;
    }
    sx_free(rnorm);
    sx_free(ws);
    sx_free(th);
    return res;
fail:
    sx_free(rnorm);
    sx_free(ws);
    sx_free(th);
    sx_knn_free(res);
    return NULL;
}

/* ----------------------------------------------------------- NN-descent ---- */

typedef struct nnd {
    const float *x; /* n x dim float copy: distances only rank candidates */
    int64_t n;
    int dim, K, mc, nth;
    int32_t *hi;  /* n x K max-heaps of neighbour ids (-1 empty) */
    float *hd;    /* squared distances (FLT_MAX empty) */
    uint8_t *hf;  /* 1 = new (not yet used in a local join) */
    int32_t *nc, *oc; /* candidate lists n x mc */
    int *nn, *on;
    const sx_progress *prog;
} nnd;

static inline float d2f(const float *a, const float *b, int dim)
{
    float s = 0;
    for (int j = 0; j < dim; j++) {
        float t = a[j] - b[j];
        s += t * t;
    }
    return s;
}

/* Push v into u's heap if closer than the current worst and not present. */
static int heap_push(nnd *N, int64_t u, int32_t v, float d)
{
    int K = N->K;
    int32_t *ix = N->hi + u * K;
    float *dd = N->hd + u * K;
    uint8_t *ff = N->hf + u * K;
    if (d >= dd[0]) return 0;
    for (int j = 0; j < K; j++)
        if (ix[j] == v) return 0;
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, s;
        if (l >= K) break;
        s = (r < K && dd[r] > dd[l]) ? r : l;
        if (dd[s] <= d) break;
        dd[i] = dd[s];
        ix[i] = ix[s];
        ff[i] = ff[s];
        i = s;
    }
    dd[i] = d;
    ix[i] = v;
    ff[i] = 1;
    return 1;
}

typedef struct upd {
    int32_t p, q;
    float d;
} upd;

typedef struct nnd_worker {
    nnd *N;
    int id;
    int64_t a, b; /* vertex range of this phase */
    /* join output */
    upd *u;
    size_t nu, cap;
    int failed;
    /* apply input */
    struct nnd_worker *all;
    long long pushed;
    /* candidate sampling */
    float *np, *op;
    uint64_t hseed;
    /* rp-tree leaves for init */
    const int32_t *leaf_perm;
    const int64_t *leaf_off;
    int64_t n_leaves;
} nnd_worker;

static int emit(nnd_worker *w, int32_t p, int32_t q, float d)
{
    if (w->nu == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 65536;
        upd *t = sx_reallocarray(w->u, nc, sizeof *t);
        if (!t) return -1;
        w->u = t;
        w->cap = nc;
    }
    w->u[w->nu++] = (upd){p, q, d};
    return 0;
}

static void *join_run(void *arg)
{
    nnd_worker *w = arg;
    nnd *N = w->N;
    int mc = N->mc, dim = N->dim;
    w->nu = 0;
    for (int64_t u = w->a; u < w->b; u++) {
        const int32_t *nw = N->nc + u * mc, *od = N->oc + u * mc;
        int nn = N->nn[u], on = N->on[u];
        for (int i = 0; i < nn; i++) {
            int32_t p = nw[i];
            const float *xp = N->x + (int64_t)p * dim;
            float tp = N->hd[(int64_t)p * N->K];
            for (int j = i + 1; j < nn; j++) {
                int32_t q = nw[j];
                float d = d2f(xp, N->x + (int64_t)q * dim, dim);
                if (d < tp || d < N->hd[(int64_t)q * N->K])
                    if (emit(w, p, q, d)) goto oom;
            }
            for (int j = 0; j < on; j++) {
                int32_t q = od[j];
                if (q == p) continue;
                float d = d2f(xp, N->x + (int64_t)q * dim, dim);
                if (d < tp || d < N->hd[(int64_t)q * N->K])
                    if (emit(w, p, q, d)) goto oom;
            }
        }
    }
    return NULL;
oom:
    w->failed = 1;
    return NULL;
}

static inline int owner(int64_t v, int64_t n, int nth) { return (int)((v * nth) / n); }

static void *apply_run(void *arg)
{
    nnd_worker *w = arg;
    nnd *N = w->N;
    long long c = 0;
    for (int t = 0; t < N->nth; t++) {
        const nnd_worker *s = &w->all[t];
        for (size_t i = 0; i < s->nu; i++) {
            upd e = s->u[i];
            if (e.p == e.q) continue;
            if (owner(e.p, N->n, N->nth) == w->id) c += heap_push(N, e.p, e.q, e.d);
            if (owner(e.q, N->n, N->nth) == w->id) c += heap_push(N, e.q, e.p, e.d);
        }
    }
    w->pushed = c;
    return NULL;
}

/* Leaf joins of the random-projection forest: each worker fills only the heaps it owns. */
static void *leaf_run(void *arg)
{
    nnd_worker *w = arg;
    nnd *N = w->N;
    for (int64_t l = 0; l < w->n_leaves; l++) {
        const int32_t *m = w->leaf_perm + w->leaf_off[l];
        int64_t L = w->leaf_off[l + 1] - w->leaf_off[l];
        for (int64_t i = 0; i < L; i++) {
            if (owner(m[i], N->n, N->nth) != w->id) continue;
            const float *xp = N->x + (int64_t)m[i] * N->dim;
            for (int64_t j = 0; j < L; j++) {
                if (j == i) continue;
                heap_push(N, m[i], m[j], d2f(xp, N->x + (int64_t)m[j] * N->dim, N->dim));
            }
        }
    }
    return NULL;
}

/* Run fn on nth workers (worker 0 on this thread). */
static void run_workers(nnd_worker *ws, int nth, void *(*fn)(void *))
{
    pthread_t th[256];
    int started;
    for (started = 1; started < nth; started++)
        if (pthread_create(&th[started], NULL, fn, &ws[started])) break;
    fn(&ws[0]);
    for (int t = 1; t < started; t++) pthread_join(th[t], NULL);
    for (int t = started; t < nth; t++) fn(&ws[t]); /* thread creation failed: run inline */
}

/* One random-projection tree: permutation of 0..n-1 cut into leaves of <= leaf rows. */
static int rp_tree(nnd *N, sx_rng *rng, int leaf, int32_t *perm, int64_t *off, int64_t *n_off,
                   uint8_t *side)
{
    int64_t n = N->n;
    int dim = N->dim;
    for (int64_t i = 0; i < n; i++) perm[i] = (int32_t)i;
    /* explicit stack of ranges */
    int64_t cap = 2 * (n / leaf + 2) + 64, sp = 0;
    int64_t *stk = sx_mallocarray((size_t)cap * 2, sizeof *stk);
    float *nrm = sx_mallocarray(dim, sizeof *nrm);
    int32_t *scratch = sx_mallocarray((size_t)n, sizeof *scratch);
    if (!stk || !nrm || !scratch) goto fail;
    *n_off = 0;
    off[(*n_off)++] = 0;
    stk[sp++] = 0;
    stk[sp++] = n;
    while (sp) {
        int64_t hi = stk[--sp], lo = stk[--sp];
        int64_t L = hi - lo;
        if (L <= leaf) {
            /* leaves are produced left to right, so offsets are increasing */
            off[(*n_off)++] = hi;
            continue;
        }
        int32_t a = perm[lo + sx_rng_below(rng, L)], b = perm[lo + sx_rng_below(rng, L)];
        const float *xa = N->x + (int64_t)a * dim, *xb = N->x + (int64_t)b * dim;
        float c = 0;
        for (int j = 0; j < dim; j++) {
            nrm[j] = xa[j] - xb[j];
            c += nrm[j] * 0.5f * (xa[j] + xb[j]);
        }
        int64_t nl = 0;
        for (int64_t i = lo; i < hi; i++) {
            const float *xi = N->x + (int64_t)perm[i] * dim;
            float s = -c;
            for (int j = 0; j < dim; j++) s += nrm[j] * xi[j];
            side[i - lo] = s == 0 ? (uint8_t)(sx_rng_next(rng) & 1) : (uint8_t)(s > 0);
            nl += side[i - lo];
        }
        if (nl == 0 || nl == L) { /* degenerate (duplicates): split at random */
            nl = 0;
            for (int64_t i = 0; i < L; i++) {
                side[i] = (uint8_t)(sx_rng_next(rng) & 1);
                nl += side[i];
            }
            if (nl == 0 || nl == L) {
                for (int64_t i = 0; i < L; i++) side[i] = i < L / 2;
                nl = L / 2;
            }
        }
        /* stable partition through the scratch copy: side 1 first */
        int64_t w1 = lo, w0 = lo + nl;
        memcpy(scratch, perm + lo, (size_t)L * sizeof *scratch);
        for (int64_t i = 0; i < L; i++) {
            if (side[i]) perm[w1++] = scratch[i];
            else perm[w0++] = scratch[i];
        }
        if (sp + 4 > cap * 2) {
            int64_t *t2 = sx_reallocarray(stk, (size_t)cap * 4, sizeof *stk);
            if (!t2) goto fail;
            stk = t2;
            cap *= 2;
        }
        /* push right half first so the left half is processed (and emitted) first */
        stk[sp++] = lo + nl;
        stk[sp++] = hi;
        stk[sp++] = lo;
        stk[sp++] = lo + nl;
    }
    sx_free(stk);
    sx_free(nrm);
    sx_free(scratch);
    return 0;
fail:
    sx_free(stk);
    sx_free(nrm);
    sx_free(scratch);
    return -1;
}

/* Add v to u's candidate list with random priority pr, keeping the mc lowest priorities. */
static void cand_add(int32_t *list, float *prio, int *cnt, int mc, int32_t v, float pr)
{
    int c = *cnt;
    for (int j = 0; j < c; j++)
        if (list[j] == v) return;
    if (c < mc) {
        list[c] = v;
        prio[c] = pr;
        *cnt = c + 1;
        return;
    }
    int worst = 0;
    for (int j = 1; j < c; j++)
        if (prio[j] > prio[worst]) worst = j;
    if (pr < prio[worst]) {
        list[worst] = v;
        prio[worst] = pr;
    }
}

/* Sampling priority in [0, 1) of the heap entry u -> v in one iteration. */
static inline float cand_prio(uint64_t hseed, int64_t u, int32_t v)
{
    uint64_t z = hseed ^ ((uint64_t)u * 0xbf58476d1ce4e5b9ULL) ^ ((uint64_t)(uint32_t)v * 0x94d049bb133111ebULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (float)(z >> 40) * 0x1.0p-24f;
}

/* Candidate lists of the vertices [a, b) this worker owns: forward entries of its own heaps,
 * and reverse entries found by scanning every heap (read-only). */
static void *cand_run(void *arg)
{
    nnd_worker *w = arg;
    nnd *N = w->N;
    int K = N->K, mc = N->mc;
    int64_t a = w->a, b = w->b;
    for (int64_t u = a; u < b; u++) N->nn[u] = N->on[u] = 0;
    for (int64_t u = 0; u < N->n; u++) {
        int own_u = u >= a && u < b;
        for (int j = 0; j < K; j++) {
            int32_t v = N->hi[u * K + j];
            if (v < 0) continue;
            int own_v = v >= a && v < b;
            if (!own_u && !own_v) continue;
            float pr = cand_prio(w->hseed, u, v);
            int32_t *lst = N->hf[u * K + j] ? N->nc : N->oc;
            float *pri = N->hf[u * K + j] ? w->np : w->op;
            int *cnt = N->hf[u * K + j] ? N->nn : N->on;
            if (own_u) cand_add(lst + u * mc, pri + u * mc, &cnt[u], mc, v, pr);
            if (own_v)
                cand_add(lst + (int64_t)v * mc, pri + (int64_t)v * mc, &cnt[v], mc, (int32_t)u, pr);
        }
    }
    return NULL;
}

/* After every worker's cand_run (the flags are read there): sampled new entries become old. */
static void *mark_run(void *arg)
{
    nnd_worker *w = arg;
    nnd *N = w->N;
    int K = N->K, mc = N->mc;
    for (int64_t u = w->a; u < w->b; u++)
        for (int j = 0; j < K; j++) {
            if (!N->hf[u * K + j]) continue;
            int32_t v = N->hi[u * K + j];
            for (int c = 0; c < N->nn[u]; c++)
                if (N->nc[u * mc + c] == v) {
                    N->hf[u * K + j] = 0;
                    break;
                }
        }
    return NULL;
}

sx_knn *sx_knn_nndescent(const double *x, int64_t n, int dim, int k, const sx_knn_opts *opts,
                         const sx_progress *prog, sx_status *st)
{
    sx_knn_opts dflt;
    if (!opts) {
        sx_knn_opts_init(&dflt);
        opts = &dflt;
    }
    int exclude = opts->exclude_self != 0;
    nnd N = {0};
    sx_knn *res = NULL;
    float *xf = NULL, *np = NULL, *op = NULL;
    int32_t *perm = NULL;
    int64_t *off = NULL;
    uint8_t *side = NULL;
    nnd_worker *ws = NULL;
    if (check_args(n, dim, k, exclude, st)) goto fail;
    N.K = exclude ? k : k - 1;
    if (N.K < 1 || n < 4 * (int64_t)k + 8) /* tiny: exact is cheaper and exact */
        return sx_knn_exact(x, n, NULL, 0, dim, k, opts, prog, st);
    N.n = n;
    N.dim = dim;
    N.mc = N.K < 16 ? N.K : 16; /* candidates per round: recall stays > 0.99 at 16 */
    N.nth = sx_embed_threads(opts->n_threads);
    if (N.nth > 256) N.nth = 256;
    N.prog = prog;
    xf = sx_mallocarray((size_t)n * dim, sizeof *xf);
    N.hi = sx_mallocarray((size_t)n * N.K, sizeof *N.hi);
    N.hd = sx_mallocarray((size_t)n * N.K, sizeof *N.hd);
    N.hf = sx_mallocarray((size_t)n * N.K, sizeof *N.hf);
    N.nc = sx_mallocarray((size_t)n * N.mc, sizeof *N.nc);
    N.oc = sx_mallocarray((size_t)n * N.mc, sizeof *N.oc);
    N.nn = sx_mallocarray((size_t)n, sizeof *N.nn);
    N.on = sx_mallocarray((size_t)n, sizeof *N.on);
    np = sx_mallocarray((size_t)n * N.mc, sizeof *np);
    op = sx_mallocarray((size_t)n * N.mc, sizeof *op);
    ws = sx_calloc(N.nth, sizeof *ws);
    int leaf = 2 * k > 48 ? 2 * k : 48;
    perm = sx_mallocarray((size_t)n, sizeof *perm);
    off = sx_mallocarray((size_t)(n / 1 + 2), sizeof *off);
    side = sx_mallocarray((size_t)n, 1);
    if (!xf || !N.hi || !N.hd || !N.hf || !N.nc || !N.oc || !N.nn || !N.on || !np || !op || !ws ||
        !perm || !off || !side) {
        sx_status_set(st, SX_ENOMEM, "NN-descent: out of memory for %lld points", (long long)n);
        goto fail;
    }
    N.x = xf;
    for (int64_t i = 0; i < n * dim; i++) xf[i] = (float)x[i];
    for (int64_t i = 0; i < n * N.K; i++) {
        N.hi[i] = -1;
        N.hd[i] = FLT_MAX;
        N.hf[i] = 1;
    }
    for (int t = 0; t < N.nth; t++) {
        ws[t].N = &N;
        ws[t].id = t;
        ws[t].all = ws;
    }
    sx_rng rng;
    sx_rng_seed(&rng, opts->seed, 0x4e4e44);
    /* forest start: few trees suffice because NN-descent repairs the rest */
    int n_trees = (int)(5 + llround(sqrt((double)n) / 20.0));
    if (n_trees > 8) n_trees = 8;
    for (int tr = 0; tr < n_trees; tr++) {
        int64_t n_off = 0;
        if (rp_tree(&N, &rng, leaf, perm, off, &n_off, side)) {
            sx_status_set(st, SX_ENOMEM, "NN-descent: out of memory building trees");
            goto fail;
        }
        for (int t = 0; t < N.nth; t++) {
            ws[t].leaf_perm = perm;
            ws[t].leaf_off = off;
            ws[t].n_leaves = n_off - 1;
        }
        run_workers(ws, N.nth, leaf_run);
        if (sx_progress_cancelled(prog)) goto cancel;
    }
    int n_iters = (int)llround(log2((double)n));
    if (n_iters < 5) n_iters = 5;
    const int64_t block = 16384;
    for (int it = 0; it < n_iters; it++) {
        /* candidates: sampled new/old forward and reverse neighbours. Each worker fills the
         * lists of the vertices it owns; the sampling priority of heap entry (u, j) is a hash
         * of (seed, iteration, u, v), so the lists do not depend on the thread count. */
        for (int t = 0; t < N.nth; t++) {
            ws[t].a = n * t / N.nth;
            ws[t].b = n * (t + 1) / N.nth;
            ws[t].np = np;
            ws[t].op = op;
            ws[t].hseed = opts->seed * 0x9e3779b97f4a7c15ULL + (uint64_t)it * 0xd1b54a32d192ed03ULL;
        }
        run_workers(ws, N.nth, cand_run);
        run_workers(ws, N.nth, mark_run);
        long long changed = 0;
        for (int64_t b0 = 0; b0 < n; b0 += block) {
            int64_t b1 = b0 + block < n ? b0 + block : n;
            for (int t = 0; t < N.nth; t++) {
                ws[t].a = b0 + (b1 - b0) * t / N.nth;
                ws[t].b = b0 + (b1 - b0) * (t + 1) / N.nth;
            }
            run_workers(ws, N.nth, join_run);
            for (int t = 0; t < N.nth; t++)
                if (ws[t].failed) {
                    sx_status_set(st, SX_ENOMEM, "NN-descent: out of memory for updates");
                    goto fail;
                }
            run_workers(ws, N.nth, apply_run);
            for (int t = 0; t < N.nth; t++) changed += ws[t].pushed;
            if (sx_progress_cancelled(prog)) goto cancel;
        }
        char msg[96];
        snprintf(msg, sizeof msg, "NN-descent iteration %d: %lld updates", it + 1, changed);
        sx_progress_report(prog, "knn", (double)(it + 1) / n_iters, msg);
        if ((double)changed <= 0.001 * N.K * (double)n) break;
    }
    res = sx_knn_alloc(n, k, 0, st);
    if (!res) goto fail;
    for (int64_t u = 0; u < n; u++) {
        int32_t *ix = res->idx + u * k;
        double *d = res->dist + u * k;
        int m = 0;
        if (!exclude) {
            ix[0] = (int32_t)u;
            d[0] = 0;
            m = 1;
        }
        for (int j = 0; j < N.K; j++) {
            int32_t v = N.hi[u * N.K + j];
            if (v < 0) v = (int32_t)((u + 1 + j) % n); /* unreachable for connected data */
            ix[m] = v;
            d[m] = dist_exact(x + u * dim, x + (int64_t)v * dim, dim);
            m++;
        }
        sort_row(d, ix, NULL, k, exclude ? -1 : u);
    }
    goto done;
cancel:
    sx_status_set(st, SX_ECANCELED, "NN-descent cancelled");
fail:
    sx_knn_free(res);
    res = NULL;
done:
    if (ws)
        for (int t = 0; t < N.nth; t++) sx_free(ws[t].u);
    sx_free(ws);
    sx_free(xf);
    sx_free(N.hi);
    sx_free(N.hd);
    sx_free(N.hf);
    sx_free(N.nc);
    sx_free(N.oc);
    sx_free(N.nn);
    sx_free(N.on);
    sx_free(np);
    sx_free(op);
    sx_free(perm);
    sx_free(off);
    sx_free(side);
    return res;
}

sx_knn *sx_knn_self(const double *x, int64_t n, int dim, int k, const sx_knn_opts *opts,
                    const sx_progress *prog, sx_status *st)
{
    int method = opts ? opts->method : SX_KNN_AUTO;
    int64_t from = opts && opts->approx_from > 0 ? opts->approx_from : 100000;
    if (method == SX_KNN_APPROX || (method == SX_KNN_AUTO && n >= from))
        return sx_knn_nndescent(x, n, dim, k, opts, prog, st);
    return sx_knn_exact(x, n, NULL, 0, dim, k, opts, prog, st);
}

static double *to_f64(const float *a, int64_t n, int dim, sx_status *st)
{
    double *d = sx_mallocarray((size_t)n * (size_t)dim, sizeof *d);
    if (!d) {
        sx_status_set(st, SX_ENOMEM, "kNN: out of memory converting %lld x %d to float64",
                      (long long)n, dim);
        return NULL;
    }
    for (int64_t i = 0; i < n * dim; i++) d[i] = a[i];
    return d;
}

sx_knn *sx_knn_exact_f32(const float *ref, int64_t n_ref, const float *query, int64_t n_query,
                         int dim, int k, const sx_knn_opts *opts, const sx_progress *prog,
                         sx_status *st)
{
    sx_knn *r = NULL;
    double *rd = to_f64(ref, n_ref, dim, st), *qd = NULL;
    if (!rd) return NULL;
    if (query) {
        qd = to_f64(query, n_query, dim, st);
        if (!qd) goto out;
    }
    r = sx_knn_exact(rd, n_ref, qd, n_query, dim, k, opts, prog, st);
out:
    sx_free(rd);
    sx_free(qd);
    return r;
}

sx_knn *sx_knn_self_f32(const float *x, int64_t n, int dim, int k, const sx_knn_opts *opts,
                        const sx_progress *prog, sx_status *st)
{
    double *xd = to_f64(x, n, dim, st);
    if (!xd) return NULL;
    sx_knn *r = sx_knn_self(xd, n, dim, k, opts, prog, st);
    sx_free(xd);
    return r;
}

sx_knn *sx_knn_head(const sx_knn *nb, int k, sx_status *st)
{
    if (!nb || k < 1 || k > nb->k) {
        sx_status_set(st, SX_EINVAL, "kNN: %d neighbours asked of a search that found %d", k,
                      nb ? nb->k : 0);
        return NULL;
    }
    int64_t n = nb->n_query;
    int K = nb->k;
    sx_knn *h = sx_knn_alloc(n, k, nb->rank != NULL, st);
    for (int64_t i = 0; h && i < n; i++) {
        const int32_t *rk = nb->rank ? nb->rank + i * K : NULL;
        /* the row stays in (distance, row) order: the k chosen first, sorted, are a k-search */
        for (int j = 0, m = 0; j < K && m < k; j++) {
            if (rk && rk[j] >= k) continue;
            h->idx[i * k + m] = nb->idx[i * K + j];
            h->dist[i * k + m] = nb->dist[i * K + j];
            if (rk) h->rank[i * k + m] = rk[j];
            m++;
        }
    }
    return h;
}

double sx_knn_recall(const sx_knn *approx, const sx_knn *exact)
{
    if (!approx || !exact || approx->n_query != exact->n_query || exact->n_query == 0) return 0;
    int k = exact->k < approx->k ? exact->k : approx->k;
    int64_t hit = 0;
    for (int64_t i = 0; i < exact->n_query; i++)
        for (int a = 0; a < k; a++) {
            int32_t v = exact->idx[i * exact->k + a];
            for (int b = 0; b < k; b++)
                if (approx->idx[i * approx->k + b] == v) {
                    hit++;
                    break;
                }
        }
    return (double)hit / ((double)exact->n_query * k);
}
