/* sx_nn_ws — minibatch workspace (dense + CSR + CSC copies of the rows, per-domain grouping)
 * and the small worker pool that splits the sparse first layer over hidden units. */
#include <cblas.h>
#include <string.h>
#include <unistd.h>

#include "sx_alloc.h"
#include "sx_nn_internal.h"

/* ---------------- pool ---------------- */

struct sx_nn_pool {
    int n;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv_start, cv_done;
    uint64_t gen;
    int pending, quit, started;
    sx_nn_task fn;
    void *arg;
    int64_t items, align;
};

typedef struct {
    sx_nn_pool *p;
    int idx;
} worker_arg;

static void range_of(const sx_nn_pool *p, int i, int64_t *h0, int64_t *h1)
{
    int64_t chunks = (p->items + p->align - 1) / p->align;
    int64_t per = (chunks + p->n - 1) / p->n;
    int64_t a = (int64_t)i * per * p->align, b = (int64_t)(i + 1) * per * p->align;
    *h0 = a < p->items ? a : p->items;
    *h1 = b < p->items ? b : p->items;
}

static void *worker(void *argp)
{
    worker_arg *wa = argp;
    sx_nn_pool *p = wa->p;
    int idx = wa->idx;
    sx_free(wa);
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->gen == seen && !p->quit) pthread_cond_wait(&p->cv_start, &p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        int64_t h0, h1;
        range_of(p, idx, &h0, &h1);
        if (h1 > h0) p->fn(p->arg, h0, h1);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->cv_done);
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

sx_nn_pool *sx_nn_pool_new(int threads, sx_status *st)
{
    sx_nn_pool *p = sx_calloc(1, sizeof *p);
    if (!p) goto oom;
    if (threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        threads = c > 0 ? (int)c : 1;
    }
    if (threads > 64) threads = 64;
    p->n = threads;
    if (threads <= 1) return p;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_start, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    p->started = 1;
    p->th = sx_calloc((size_t)threads, sizeof(pthread_t));
    if (!p->th) {
        p->n = 1; /* no worker exists yet */
        goto oom;
    }
    for (int i = 1; i < threads; i++) {
        worker_arg *wa = sx_malloc(sizeof *wa);
        if (wa) {
            wa->p = p;
            wa->idx = i;
        }
        if (!wa || pthread_create(&p->th[i], NULL, worker, wa) != 0) {
            sx_free(wa);
            p->n = i; /* workers 1..i-1 exist and are joined by the free */
            goto oom;
        }
    }
    return p;
oom:
    sx_nn_pool_free(p);
    sx_status_set(st, SX_ENOMEM, "cannot start the training thread pool (%d threads)", threads);
    return NULL;
}

void sx_nn_pool_free(sx_nn_pool *p)
{
    if (!p) return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->quit = 1;
        pthread_cond_broadcast(&p->cv_start);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv_start);
        pthread_cond_destroy(&p->cv_done);
    }
    sx_free(p->th);
    sx_free(p);
}

int sx_nn_pool_threads(const sx_nn_pool *p) { return p ? p->n : 1; }

void sx_nn_pool_run(sx_nn_pool *p, sx_nn_task fn, void *arg, int64_t n, int64_t align)
{
    if (!p || p->n <= 1 || n <= align) {
        fn(arg, 0, n);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->items = n;
    p->align = align;
    p->pending = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    int64_t h0, h1;
    range_of(p, 0, &h0, &h1);
    if (h1 > h0) fn(arg, h0, h1);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void sx_nn_set_threads(int threads)
{
    if (threads > 0) openblas_set_num_threads(threads);
}

int sx_nn_blas_threads(void) { return openblas_get_num_threads(); }

/* ---------------- workspace ---------------- */

static int grow(void **p, size_t n, size_t es)
{
    void *q = sx_reallocarray(*p, n ? n : 1, es);
    if (!q) return -1;
    *p = q;
    return 0;
}

int sx_nn_ws_reserve(sx_nn_ws *w, const sx_nn_model *m, int64_t rows, int64_t nnz,
                     sx_status *st)
{
    const size_t es = m->esz;
    const int64_t G = m->G, H = m->H, Z = m->Z, D = m->D;
    if (!w->scratch) {
        int64_t F = G > H ? G : H;
        w->scratch = sx_mallocarray((size_t)(2 * F), sizeof(double));
        w->mean1 = sx_mallocarray((size_t)H, es);
        w->invstd1 = sx_mallocarray((size_t)H, es);
        w->mean2 = sx_calloc((size_t)(D * G), es);
        w->invstd2 = sx_calloc((size_t)(D * G), es);
        w->dom_cnt = sx_calloc((size_t)D, sizeof(int64_t));
        w->dom_start = sx_calloc((size_t)D + 1, sizeof(int64_t));
        w->cptr = sx_calloc((size_t)G + 1, sizeof(int64_t));
        if (!w->scratch || !w->mean1 || !w->invstd1 || !w->mean2 || !w->invstd2 ||
            !w->dom_cnt || !w->dom_start || !w->cptr)
            goto oom;
    }
    if (rows > w->cap) {
        size_t r = (size_t)rows;
        void **bh[] = {&w->a1, &w->xhat1, &w->hbn, &w->h, &w->dh, &w->da1, &w->da1p, &w->a1p};
        void **bz[] = {&w->mu, &w->s, &w->var, &w->sig, &w->z, &w->eps, &w->dz, &w->dmu, &w->ds};
        void **bg[] = {&w->xd, &w->a2, &w->xhat2, &w->y2, &w->p, &w->da2};
        for (size_t i = 0; i < sizeof bh / sizeof bh[0]; i++)
            if (grow(bh[i], r * (size_t)H, es)) goto oom;
        for (size_t i = 0; i < sizeof bz / sizeof bz[0]; i++)
            if (grow(bz[i], r * (size_t)Z, es)) goto oom;
        for (size_t i = 0; i < sizeof bg / sizeof bg[0]; i++)
            if (grow(bg[i], r * (size_t)G, es)) goto oom;
        w->nblk = (G + SX_NN_KB - 1) / SX_NN_KB;
        if (grow((void **)&w->dom_rows, r, sizeof(int64_t)) ||
            grow((void **)&w->bptr, r * (size_t)(w->nblk + 1), sizeof(int64_t)) ||
            grow((void **)&w->rowacc, r, sizeof(double)) ||
            grow((void **)&w->dom, r, sizeof(int32_t)) ||
            grow((void **)&w->rptr, r + 1, sizeof(int64_t)))
            goto oom;
        w->cap = rows;
    }
    if (nnz > w->nnz_cap || !w->ridx) {
        size_t z = (size_t)(nnz > 0 ? nnz : 1);
        if (grow((void **)&w->ridx, z, sizeof(int32_t)) || grow(&w->rval, z, es) ||
            grow((void **)&w->cidx, z, sizeof(int32_t)) || grow(&w->cval, z, es))
            goto oom;
        w->nnz_cap = (int64_t)z;
    }
    return SX_OK;
oom:
    return sx_status_set(st, SX_ENOMEM, "cannot allocate the workspace for a minibatch of %lld "
                         "rows", (long long)rows);
}

void sx_nn_ws_free(sx_nn_ws *w)
{
    void *all[] = {w->xd, w->a1, w->xhat1, w->hbn, w->h, w->mu, w->s, w->var, w->sig, w->z,
                   w->eps, w->a2, w->xhat2, w->y2, w->p, w->da2, w->dh, w->da1, w->da1p, w->dz,
                   w->dmu,
                   w->ds, w->mean1, w->invstd1, w->mean2, w->invstd2, w->scratch, w->dom_cnt,
                   w->dom_rows, w->dom_start, w->dom, w->rptr, w->ridx, w->rval, w->cptr,
                   w->cidx, w->cval, w->rowacc, w->a1p, w->bptr};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) sx_free(all[i]);
    memset(w, 0, sizeof *w);
}

/* Column indices of a minibatch row in increasing order (canonical CSR input already is;
 * anything else is insertion-sorted here) so the sparse kernels add in column order. */
static void sort_row(sx_nn_ws *w, int64_t e0, int64_t e1, int f32)
{
    int32_t *ix = w->ridx;
    int sorted = 1;
    for (int64_t k = e0 + 1; k < e1 && sorted; k++) sorted = ix[k - 1] <= ix[k];
    if (sorted) return;
    for (int64_t k = e0 + 1; k < e1; k++) {
        int32_t c = ix[k];
        int64_t j = k;
        if (f32) {
            float *v = w->rval, vk = v[k];
            for (; j > e0 && ix[j - 1] > c; j--) ix[j] = ix[j - 1], v[j] = v[j - 1];
            v[j] = vk;
        } else {
            double *v = w->rval, vk = v[k];
            for (; j > e0 && ix[j - 1] > c; j--) ix[j] = ix[j - 1], v[j] = v[j - 1];
            v[j] = vk;
        }
        ix[j] = c;
    }
}

/* Row r of x as row b of the workspace's CSR (w->rptr[b] set by the previous row): entries,
 * column order, and with `blocks` the gene-block starts (blocks of SX_NN_KB columns) for the
 * training's sparse forward. */
static void load_row(sx_nn_ws *w, const sx_csr *x, int64_t r, int64_t b, int f32, int blocks)
{
    int64_t e = w->rptr[b];
    for (int64_t k = x->indptr[r]; k < x->indptr[r + 1]; k++, e++) {
        w->ridx[e] = x->indices[k];
        if (f32)
            ((float *)w->rval)[e] = x->data[k];
        else
            ((double *)w->rval)[e] = x->data[k];
    }
    w->rptr[b + 1] = e;
    sort_row(w, w->rptr[b], e, f32);
    if (!blocks) return;
    int64_t *bp = w->bptr + b * (w->nblk + 1), q = w->rptr[b];
    for (int64_t j = 0; j <= w->nblk; j++) {
        while (q < e && w->ridx[q] < j * SX_NN_KB) q++;
        bp[j] = q;
    }
}

int sx_nn_ws_load(sx_nn_ws *w, const sx_nn_model *m, const sx_csr *x, const int64_t *rows,
                  int64_t n, const int32_t *domain, int64_t fixed_domain, sx_status *st)
{
    const int64_t G = m->G, D = m->D;
    int64_t nnz = 0;
    for (int64_t b = 0; b < n; b++) {
        int64_t r = rows ? rows[b] : b;
        nnz += x->indptr[r + 1] - x->indptr[r];
    }
    int rc = sx_nn_ws_reserve(w, m, n, nnz, st);
    if (rc) return rc;
    w->B = n;
    const int f32 = m->dtype == SX_NN_F32;
    memset(w->xd, 0, (size_t)(n * G) * m->esz);
    memset(w->cptr, 0, (size_t)(G + 1) * sizeof(int64_t));
    w->rptr[0] = 0;
    for (int64_t b = 0; b < n; b++) {
        load_row(w, x, rows ? rows[b] : b, b, f32, 1);
        for (int64_t k = w->rptr[b]; k < w->rptr[b + 1]; k++) {
            int32_t c = w->ridx[k];
            if (f32)
                ((float *)w->xd)[b * G + c] = ((float *)w->rval)[k];
            else
                ((double *)w->xd)[b * G + c] = ((double *)w->rval)[k];
            w->cptr[c + 1]++;
        }
    }
    for (int64_t g = 0; g < G; g++) w->cptr[g + 1] += w->cptr[g];
    /* CSC fill: rows visited in increasing order keep each column sorted by row */
    int64_t *fill = (int64_t *)w->scratch; /* G + 1 <= 2 * max(G, H) doubles */
    memcpy(fill, w->cptr, (size_t)G * sizeof(int64_t));
    for (int64_t b = 0; b < n; b++) {
        for (int64_t k = w->rptr[b]; k < w->rptr[b + 1]; k++) {
            int64_t pos = fill[w->ridx[k]]++;
            w->cidx[pos] = (int32_t)b;
            if (f32)
                ((float *)w->cval)[pos] = ((float *)w->rval)[k];
            else
                ((double *)w->cval)[pos] = ((double *)w->rval)[k];
        }
    }
    memset(w->dom_cnt, 0, (size_t)D * sizeof(int64_t));
    for (int64_t b = 0; b < n; b++) {
        int64_t r = rows ? rows[b] : b;
        int32_t d = fixed_domain >= 0 ? (int32_t)fixed_domain : domain[r];
        w->dom[b] = d;
        w->dom_cnt[d]++;
    }
    w->dom_start[0] = 0;
    for (int64_t d = 0; d < D; d++) w->dom_start[d + 1] = w->dom_start[d] + w->dom_cnt[d];
    memcpy(fill, w->dom_start, (size_t)D * sizeof(int64_t));
    for (int64_t b = 0; b < n; b++) w->dom_rows[fill[w->dom[b]]++] = b;
    return SX_OK;
}

int sx_nn_ws_load_csr(sx_nn_ws *w, const sx_nn_model *m, const sx_csr *x, const int64_t *rows,
                      int64_t n, sx_status *st)
{
    const size_t es = m->esz;
    const int64_t H = m->H;
    int64_t nnz = 0;
    for (int64_t b = 0; b < n; b++) nnz += x->indptr[rows[b] + 1] - x->indptr[rows[b]];
    if (!w->scratch) {
        w->scratch = sx_mallocarray(2 * SX_NN_W1_TILE, sizeof(double));
        w->mean1 = sx_mallocarray((size_t)H, es);
        w->invstd1 = sx_mallocarray((size_t)H, es);
        if (!w->scratch || !w->mean1 || !w->invstd1) goto oom;
    }
    if (n > w->cap) {
        size_t r = (size_t)n;
        if (grow(&w->a1, r * SX_NN_W1_TILE, es) || grow(&w->h, r * (size_t)H, es) ||
            grow(&w->mu, r * (size_t)m->Z, es) ||
            grow((void **)&w->rptr, r + 1, sizeof(int64_t)))
            goto oom;
        w->cap = n;
    }
    if (nnz > w->nnz_cap || !w->ridx) {
        size_t z = (size_t)(nnz > 0 ? nnz : 1);
        if (grow((void **)&w->ridx, z, sizeof(int32_t)) || grow(&w->rval, z, es)) goto oom;
        w->nnz_cap = (int64_t)z;
    }
    w->B = n;
    w->rptr[0] = 0;
    for (int64_t b = 0; b < n; b++) {
        /* the rows are scattered over x (the sampler's random order): fetch ahead */
        if (b + 8 < n) {
            const int64_t s = x->indptr[rows[b + 8]];
            __builtin_prefetch(x->indices + s);
            __builtin_prefetch(x->data + s);
        }
        load_row(w, x, rows[b], b, m->dtype == SX_NN_F32, 0);
    }
    return SX_OK;
oom:
    return sx_status_set(st, SX_ENOMEM, "cannot allocate the encoder's workspace for %lld rows",
                         (long long)n);
}
