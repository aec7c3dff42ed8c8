/* sx_knn_ivf — exact kNN by cluster pruning (see sx_knn_ivf.h): k-means build, the
 * bounded search, and the flat layout shared by the in-memory index and its serialized
 * form (an index built here IS a serialized buffer, so writing it is one copy and loading
 * one is a validation pass plus pointer arithmetic). */
#include "sx_knn_ivf.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_embed_internal.h"
#include "sx_knn_internal.h"

/* As in sx_knn.c: dgemm tiles stay under OpenBLAS's own threading threshold (m*n*k <=
 * 65536 * 4) so that our workers, not BLAS, own the cores. */
#define IVF_GEMM_MNK 262144
#define IVF_BQ 64        /* rows (queries or points) per dgemm block */
#define IVF_SAMPLE 32    /* k-means sample rows per cluster (16: 2% more rows visited) */
#define IVF_ITERS 6      /* Lloyd iterations on the sample: the partition only has to be
                          * compact, not optimal; the search is exact whatever it is */
#define IVF_ORDER_KEYS 128 /* centroids whose nearest orders the queries (locality only) */
#define IVF_COARSE_FROM 256 /* from this many clusters on, rows are assigned through coarse
                             * groups of clusters (1M rows: 5 CPU-s -> well under 1) */
#define IVF_PROBE 3         /* coarse groups whose clusters a row is compared with */
#define IVF_MAX_DIM 4096
/* Relative slack on every pruning test: the bounds are computed in floating point, so a
 * row is skipped only when it is beyond the k-th distance by far more than rounding. */
#define IVF_TOL 1e-11

static const char IVF_MAGIC[8] = {'S', 'X', 'K', 'N', 'N', 'I', 'V', 'F'};
#define IVF_VERSION 1u
#define IVF_HEADER 64

struct sx_knn_ivf {
    int64_t n;
    int dim, nc;
    const int64_t *off;  /* nc + 1: cluster c holds sorted rows off[c] .. off[c+1]-1 */
    const double *cen;   /* nc x dim centroids */
    const double *rad;   /* nc: largest member distance to the centroid */
    const double *x;     /* the reference rows in cluster order, by blocks of 4 rows stored
                          * coordinate-major (ivf_xat): one vector load per coordinate */
    const double *pd;    /* n: each row's distance to its centroid, ascending per cluster */
    const int32_t *row;  /* n: original reference row of each stored row */
    double *caug;        /* nc x (dim + 1): [-2 centroid, |centroid|^2] (allocated here) */
    float *xf;           /* x in float32, by blocks of 8 rows coordinate-major (ivf_xfat;
                          * allocated here, not serialized): the scan's first filter, twice
                          * the lanes and half the bytes of x; NULL when coordinates are too
                          * large for float (then the scan filters in float64) */
    double xnorm;        /* largest row norm: bounds the float conversion's error */
    int scan;            /* which scan searches use (sx_knn_ivf_set_scan; tests) */
    float *pdg;          /* per cluster, the centroid distance of every 8th row's group end
                          * (rows 7, 15, ... and the last), rounded up to float: the ring's
                          * start is found by counting entries, no search through pd */
    int64_t *goff;       /* nc + 1: cluster c's entries are pdg[goff[c]] .. pdg[goff[c+1]-1] */
    double rmax;         /* largest radius */
    const void *base;    /* the flat layout (header + sections) */
    size_t size;
    void *own;           /* == base when built here; NULL when borrowed (from_mem) */
};

/* ------------------------------------------------------------------ layout ---- */

typedef struct ivf_layout {
    size_t off, cen, rad, x, pd, row, total;
} ivf_layout;

static size_t al8(size_t v) { return (v + 7) & ~(size_t)7; }

/* Section offsets; the caller has bounded n <= INT32_MAX, dim <= IVF_MAX_DIM, nc <= n, so
 * no product overflows 64 bits. */
static void ivf_layout_of(int64_t n, int dim, int64_t nc, ivf_layout *L)
{
    size_t p = IVF_HEADER;
    L->off = p;
    p += 8 * (size_t)(nc + 1);
    L->cen = p;
    p += 8 * (size_t)nc * (size_t)dim;
    L->rad = p;
    p += 8 * (size_t)nc;
    L->x = p;
    p += 8 * (size_t)((n + 3) & ~(int64_t)3) * (size_t)dim;
    L->pd = p;
    p += 8 * (size_t)n;
    L->row = p;
    p += al8(4 * (size_t)n);
    L->total = p;
}

static void ivf_bind(sx_knn_ivf *ix, const void *base, const ivf_layout *L)
{
    const char *b = base;
    ix->off = (const int64_t *)(b + L->off);
    ix->cen = (const double *)(b + L->cen);
    ix->rad = (const double *)(b + L->rad);
    ix->x = (const double *)(b + L->x);
    ix->pd = (const double *)(b + L->pd);
    ix->row = (const int32_t *)(b + L->row);
    ix->base = base;
    ix->size = L->total;
}

/* Where coordinate j of stored row p lives in the blocked copy. */
static inline size_t ivf_xat(int64_t p, int j, int dim)
{
    return (size_t)(p >> 2) * 4 * (size_t)dim + (size_t)j * 4 + (size_t)(p & 3);
}

/* Where coordinate j of stored row p lives in the float copy (blocks of 8 rows). */
static inline size_t ivf_xfat(int64_t p, int j, int dim)
{
    return (size_t)(p >> 3) * 8 * (size_t)dim + (size_t)j * 8 + (size_t)(p & 7);
}

/* Largest |coordinate| the float filter accepts: squares and their sums stay finite in
 * float32 (2 * 1e15 squared times 4096 dimensions < FLT_MAX). */
#define IVF_F32_MAX 1e15

static double ivf_dist(const double *a, const double *b, int dim)
{
    /* Same arithmetic, in the same order, as sx_knn.c's dist_exact: the distances this
     * search reports are bit-identical to sx_knn_exact's. */
    double s = 0;
    for (int j = 0; j < dim; j++) {
        double t = a[j] - b[j];
        s += t * t;
    }
    return sqrt(s);
}

/* Centroids augmented so that one dgemm of [p, 1] rows gives |c|^2 - 2 p.c directly. */
static void km_aug(const double *cen, int nc, int dim, double *aug)
{
    for (int c = 0; c < nc; c++) {
        const double *cc = cen + (int64_t)c * dim;
        double *a = aug + (int64_t)c * (dim + 1), s = 0;
        for (int j = 0; j < dim; j++) {
            s += cc[j] * cc[j];
            a[j] = -2.0 * cc[j];
        }
        a[dim] = s;
    }
}

/* The float copy of the stored rows and the largest row norm (ix->xf stays NULL when a
 * coordinate exceeds IVF_F32_MAX). Padding lanes of the last block are zero, never offered. */
static int ivf_float_copy(sx_knn_ivf *ix)
{
    const int dim = ix->dim;
    ix->xnorm = 0;
    for (int64_t p = 0; p < ix->n; p++) {
        double s = 0;
        for (int j = 0; j < dim; j++) {
            double v = ix->x[ivf_xat(p, j, dim)];
            if (fabs(v) > IVF_F32_MAX) return SX_OK;
            s += v * v;
        }
        if (s > ix->xnorm) ix->xnorm = s;
    }
    ix->xnorm = sqrt(ix->xnorm);
    ix->xf = sx_calloc((size_t)((ix->n + 7) >> 3) * 8 * dim, sizeof *ix->xf);
    if (!ix->xf) return SX_ENOMEM;
    for (int64_t p = 0; p < ix->n; p++)
        for (int j = 0; j < dim; j++) ix->xf[ivf_xfat(p, j, dim)] = (float)ix->x[ivf_xat(p, j, dim)];
    return SX_OK;
}

/* ix->pdg and ix->goff (see the struct). */
static int ivf_groups(sx_knn_ivf *ix)
{
    ix->goff = sx_mallocarray((size_t)ix->nc + 1, sizeof *ix->goff);
    ix->pdg = sx_mallocarray((size_t)(ix->n / 8 + ix->nc), sizeof *ix->pdg);
    if (!ix->goff || !ix->pdg) return SX_ENOMEM;
    int64_t g = 0;
    for (int c = 0; c < ix->nc; c++) {
        ix->goff[c] = g;
        for (int64_t p = ix->off[c]; p < ix->off[c + 1]; p += 8) {
            int64_t e = p + 7 < ix->off[c + 1] ? p + 7 : ix->off[c + 1] - 1;
            float f = (float)ix->pd[e];
            ix->pdg[g++] = (double)f < ix->pd[e] ? nextafterf(f, INFINITY) : f;
        }
    }
    ix->goff[ix->nc] = g;
    return SX_OK;
}

static int ivf_finish(sx_knn_ivf *ix, sx_status *st)
{
    ix->caug = sx_mallocarray((size_t)ix->nc * (ix->dim + 1), sizeof *ix->caug);
    if (!ix->caug || ivf_float_copy(ix) || ivf_groups(ix)) return sx_status_set(st, SX_ENOMEM, "kNN index: out of memory");
    ix->rmax = 0;
    km_aug(ix->cen, ix->nc, ix->dim, ix->caug);
    for (int c = 0; c < ix->nc; c++) {
        if (ix->rad[c] > ix->rmax) ix->rmax = ix->rad[c];
    }
    return SX_OK;
}

void sx_knn_ivf_free(sx_knn_ivf *ix)
{
    if (!ix) return;
    sx_free(ix->own);
    sx_free(ix->caug);
    sx_free(ix->xf);
    sx_free(ix->pdg);
    sx_free(ix->goff);
    sx_free(ix);
}

int64_t sx_knn_ivf_rows(const sx_knn_ivf *ix) { return ix->n; }
int sx_knn_ivf_dim(const sx_knn_ivf *ix) { return ix->dim; }
int sx_knn_ivf_clusters(const sx_knn_ivf *ix) { return ix->nc; }

size_t sx_knn_ivf_bytes(const sx_knn_ivf *ix)
{
    if (!ix) return 0;
    size_t xf = ix->xf ? (size_t)((ix->n + 7) >> 3) * 8 * ix->dim * sizeof *ix->xf : 0;
    size_t groups = (size_t)(ix->n / 8 + ix->nc) * sizeof *ix->pdg + (ix->nc + 1) * sizeof *ix->goff;
    return sizeof *ix + (size_t)ix->nc * (ix->dim + 1) * sizeof *ix->caug + xf + groups +
           (ix->own ? ix->size : 0);
}

/* ------------------------------------------------------------ thread pool ---- */

/* Chunks 0..n_chunks-1 handed out by an atomic counter; fn returns SX_OK or an error that
 * stops the others. Which worker runs a chunk never changes its result. */
typedef int (*ivf_fn)(void *ctx, int64_t chunk, int worker);

typedef struct ivf_pool {
    ivf_fn fn;
    void *ctx;
    int64_t n_chunks;
    atomic_llong next, done;
    atomic_int err;
    const sx_progress *prog;
    const char *stage;
} ivf_pool;

typedef struct ivf_worker {
    ivf_pool *P;
    int id;
} ivf_worker;

static void *ivf_pool_run(void *arg)
{
    ivf_worker *w = arg;
    ivf_pool *P = w->P;
    for (;;) {
        if (atomic_load(&P->err)) break;
        if (sx_progress_cancelled(P->prog)) {
            atomic_store(&P->err, SX_ECANCELED);
            break;
        }
        int64_t c = atomic_fetch_add(&P->next, 1);
        if (c >= P->n_chunks) break;
        int rc = P->fn(P->ctx, c, w->id);
        if (rc) {
            atomic_store(&P->err, rc);
            break;
        }
        long long d = atomic_fetch_add(&P->done, 1) + 1;
        if (w->id == 0 && P->stage) sx_progress_report(P->prog, P->stage, (double)d / P->n_chunks, NULL);
    }
    return NULL;
}

/* Runs fn over every chunk on nth workers (the caller's thread is worker 0). */
static int ivf_parallel(ivf_fn fn, void *ctx, int64_t n_chunks, int nth, const sx_progress *prog,
                        const char *stage)
{
    ivf_pool P = {.fn = fn, .ctx = ctx, .n_chunks = n_chunks, .prog = prog, .stage = stage};
    atomic_init(&P.next, 0);
    atomic_init(&P.done, 0);
    atomic_init(&P.err, 0);
    ivf_worker ws[256];
    pthread_t th[256];
    if (nth > n_chunks) nth = (int)(n_chunks > 0 ? n_chunks : 1);
    if (nth > 256) nth = 256;
    int started;
    for (int t = 0; t < nth; t++) ws[t] = (ivf_worker){.P = &P, .id = t};
    for (started = 1; started < nth; started++)
        if (pthread_create(&th[started], NULL, ivf_pool_run, &ws[started])) break;
    ivf_pool_run(&ws[0]);
    for (int t = 1; t < started; t++) pthread_join(th[t], NULL);
    return atomic_load(&P.err);
}

/* G[i][c] = |c|^2 - 2 p_i.c for np rows Pa = [p_i, 1] (np x (dim + 1)) against the
 * augmented centroids, by dgemm tiles. */
static void ivf_gemm(const double *Pa, int np, const double *aug, int nc, int dim, double *G)
{
    int bc = IVF_GEMM_MNK / (IVF_BQ * (dim + 1));
    if (bc < 32) bc = 32;
    for (int c0 = 0; c0 < nc; c0 += bc) {
        int ncb = nc - c0 < bc ? nc - c0 : bc;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, np, ncb, dim + 1, 1.0, Pa, dim + 1,
                    aug + (int64_t)c0 * (dim + 1), dim + 1, 0.0, G + c0, nc);
    }
}

/* Rows i0.. of pts (dim wide) copied to Pa with a 1 appended; returns the row count. */
static int ivf_rows_aug(const double *pts, const int32_t *order, int64_t m, int64_t i0, int dim,
                        double *Pa)
{
    int np = (int)(m - i0 < IVF_BQ ? m - i0 : IVF_BQ);
    for (int i = 0; i < np; i++) {
        int64_t r = order ? order[i0 + i] : i0 + i;
        memcpy(Pa + (int64_t)i * (dim + 1), pts + r * dim, (size_t)dim * sizeof *Pa);
        Pa[(int64_t)i * (dim + 1) + dim] = 1.0;
    }
    return np;
}

/* ---------------------------------------------------------------- k-means ---- */

typedef struct km_ctx {
    const double *pts;  /* m x dim */
    int64_t m;
    const double *aug; /* nc x (dim + 1) augmented centroids (km_aug) */
    int nc, dim;
    int32_t *lab;
    double **G;         /* per worker: IVF_BQ x nc */
} km_ctx;

static int km_assign_chunk(void *ctx, int64_t chunk, int worker)
{
    km_ctx *K = ctx;
    double *G = K->G[worker], *Pa = G + (size_t)IVF_BQ * K->nc;
    int64_t i0 = chunk * IVF_BQ;
    int np = ivf_rows_aug(K->pts, NULL, K->m, i0, K->dim, Pa);
    ivf_gemm(Pa, np, K->aug, K->nc, K->dim, G);
    for (int i = 0; i < np; i++) {
        const double *g = G + (int64_t)i * K->nc;
        int best = 0;
        double bv = g[0];
        for (int c = 1; c < K->nc; c++)
            if (g[c] < bv) {
                bv = g[c];
                best = c;
            }
        K->lab[i0 + i] = best;
    }
    return SX_OK;
}

static int km_assign(km_ctx *K, int nth, const sx_progress *prog)
{
    return ivf_parallel(km_assign_chunk, K, (K->m + IVF_BQ - 1) / IVF_BQ, nth, prog, NULL);
}

/* Centroids = member means, in row order (deterministic); empty clusters keep theirs. */
static void km_update(const double *pts, int64_t m, int dim, const int32_t *lab, int nc,
                      double *cen, int64_t *cnt)
{
    double *sum = cen; /* reused: cleared only for clusters with members */
    memset(cnt, 0, (size_t)nc * sizeof *cnt);
    for (int64_t i = 0; i < m; i++) cnt[lab[i]]++;
    for (int c = 0; c < nc; c++)
        if (cnt[c]) memset(sum + (int64_t)c * dim, 0, (size_t)dim * sizeof *sum);
    for (int64_t i = 0; i < m; i++)
        for (int j = 0; j < dim; j++) sum[(int64_t)lab[i] * dim + j] += pts[i * dim + j];
    for (int c = 0; c < nc; c++)
        if (cnt[c])
            for (int j = 0; j < dim; j++) sum[(int64_t)c * dim + j] /= (double)cnt[c];
}

typedef struct km_work {
    double *S, *cen, *aug, *Gbuf;
    double *G[256];
    int32_t *perm, *lab, *slab;
    int64_t *cnt;
} km_work;

static void km_work_free(km_work *w)
{
    sx_free(w->S);
    sx_free(w->cen);
    sx_free(w->aug);
    sx_free(w->Gbuf);
    sx_free(w->perm);
    sx_free(w->lab);
    sx_free(w->slab);
    sx_free(w->cnt);
}

/* Coarse groups of the fine centroids, so that a row is compared with the clusters of
 * its IVF_PROBE nearest groups only (about 3 sqrt(nc) + sqrt(nc) centroids instead of nc).
 * A row may then miss its very nearest centroid near a group border: the partition is a
 * little less compact there, the search stays exact. */
typedef struct km_coarse {
    km_ctx K;            /* rows -> groups */
    int ng;
    double *gcen, *gaug; /* ng x dim, ng x (dim + 1) */
    int32_t *glab, *gmem;/* group of each fine centroid; fine centroids grouped */
    int64_t *goff;       /* ng + 1 */
    const double *aug;   /* fine centroids, augmented */
    int nc;
} km_coarse;

static void km_coarse_free(km_coarse *C)
{
    sx_free(C->gcen);
    sx_free(C->gaug);
    sx_free(C->glab);
    sx_free(C->gmem);
    sx_free(C->goff);
}

/* The nearest of the listed centroids (ranked by |c|^2 - 2 p.c, ties to the lower id) if it
 * beats (*bv, *best). Four centroids at a time: independent sums overlap in the pipeline. */
static void km_nearest_of(const double *aug, const int32_t *ids, int64_t m, const double *p,
                          int dim, double *bv, int *best)
{
    for (int64_t e = 0; e < m; e += 4) {
        int c[4], nb = m - e < 4 ? (int)(m - e) : 4;
        for (int u = 0; u < 4; u++) c[u] = ids[e + (u < nb ? u : 0)];
        const double *a0 = aug + (int64_t)c[0] * (dim + 1), *a1 = aug + (int64_t)c[1] * (dim + 1);
        const double *a2 = aug + (int64_t)c[2] * (dim + 1), *a3 = aug + (int64_t)c[3] * (dim + 1);
        double v[4] = {a0[dim], a1[dim], a2[dim], a3[dim]};
        for (int j = 0; j < dim; j++) {
            v[0] += a0[j] * p[j];
            v[1] += a1[j] * p[j];
            v[2] += a2[j] * p[j];
            v[3] += a3[j] * p[j];
        }
        for (int u = 0; u < nb; u++)
            if (v[u] < *bv || (v[u] == *bv && c[u] < *best)) {
                *bv = v[u];
                *best = c[u];
            }
    }
}

static int km_rows_chunk(void *ctx, int64_t chunk, int worker)
{
    km_coarse *C = ctx;
    const km_ctx *K = &C->K;
    const int dim = K->dim, ng = C->ng;
    double *G = K->G[worker], *Pa = G + (size_t)IVF_BQ * ng;
    int64_t i0 = chunk * IVF_BQ;
    int np = ivf_rows_aug(K->pts, NULL, K->m, i0, dim, Pa);
    ivf_gemm(Pa, np, C->gaug, ng, dim, G);
    for (int i = 0; i < np; i++) {
        const double *g = G + (int64_t)i * ng, *p = Pa + (int64_t)i * (dim + 1);
        int top[IVF_PROBE], nt = 0;
        /* the IVF_PROBE nearest non-empty groups (ties to the lower group): at least one
         * exists, so every row gets a cluster */
        for (int a = 0; a < ng; a++) {
            if (C->goff[a] == C->goff[a + 1]) continue;
            if (nt == IVF_PROBE && !(g[a] < g[top[IVF_PROBE - 1]])) continue;
            int at = nt < IVF_PROBE ? nt++ : IVF_PROBE - 1;
            while (at > 0 && g[top[at - 1]] > g[a]) {
                top[at] = top[at - 1];
                at--;
            }
            top[at] = a;
        }
        int best = -1;
        double bv = INFINITY;
        for (int t = 0; t < nt; t++)
            km_nearest_of(C->aug, C->gmem + C->goff[top[t]], C->goff[top[t] + 1] - C->goff[top[t]], p,
                          dim, &bv, &best);
        K->lab[i0 + i] = best;
    }
    return SX_OK;
}

/* Rows of K (fine centroids in K->aug) labelled through coarse groups of the centroids. */
static int km_assign_coarse(const km_ctx *K, const double *cen, int nth, int64_t *cnt,
                            const sx_progress *prog)
{
    const int nc = K->nc, dim = K->dim;
    km_coarse C = {.ng = (int)ceil(sqrt((double)nc)), .aug = K->aug, .nc = nc};
    C.gcen = sx_mallocarray((size_t)C.ng * dim, sizeof *C.gcen);
    C.gaug = sx_mallocarray((size_t)C.ng * (dim + 1), sizeof *C.gaug);
    C.glab = sx_mallocarray((size_t)nc, sizeof *C.glab);
    C.gmem = sx_mallocarray((size_t)nc, sizeof *C.gmem);
    C.goff = sx_calloc((size_t)C.ng + 1, sizeof *C.goff);
    int rc = SX_ENOMEM;
    if (C.gcen && C.gaug && C.glab && C.gmem && C.goff) {
        for (int a = 0; a < C.ng; a++)
            memcpy(C.gcen + (int64_t)a * dim, cen + ((int64_t)a * nc / C.ng) * dim, (size_t)dim * sizeof *C.gcen);
        km_ctx Kg = {.pts = cen, .m = nc, .aug = C.gaug, .nc = C.ng, .dim = dim, .lab = C.glab,
                     .G = K->G};
        rc = SX_OK;
        for (int it = 0; it <= IVF_ITERS && !rc; it++) {
            if (it) km_update(cen, nc, dim, C.glab, C.ng, C.gcen, cnt);
            km_aug(C.gcen, C.ng, dim, C.gaug);
            rc = km_assign(&Kg, nth, prog);
        }
    }
    if (!rc) {
        for (int c = 0; c < nc; c++) C.goff[C.glab[c] + 1]++;
        for (int a = 0; a < C.ng; a++) C.goff[a + 1] += C.goff[a];
        for (int c = 0; c < nc; c++) C.gmem[C.goff[C.glab[c]]++] = c;
        for (int a = C.ng; a > 0; a--) C.goff[a] = C.goff[a - 1];
        C.goff[0] = 0;
        C.K = *K;
        rc = ivf_parallel(km_rows_chunk, &C, (K->m + IVF_BQ - 1) / IVF_BQ, nth, prog, NULL);
    }
    km_coarse_free(&C);
    return rc;
}

/* Partition ref into nc clusters: labels of all n rows into w->lab, centroids in w->cen. */
static int km_partition(const double *ref, int64_t n, int dim, int nc, int nth, uint64_t seed,
                        km_work *w, const sx_progress *prog, sx_status *st)
{
    int64_t m = (int64_t)IVF_SAMPLE * nc < n ? (int64_t)IVF_SAMPLE * nc : n;
    w->S = sx_mallocarray((size_t)m * dim, sizeof *w->S);
    w->cen = sx_mallocarray((size_t)nc * dim, sizeof *w->cen);
    w->aug = sx_mallocarray((size_t)nc * (dim + 1), sizeof *w->aug);
    w->Gbuf = sx_mallocarray((size_t)nth * IVF_BQ * (nc + dim + 1), sizeof *w->Gbuf);
    w->perm = sx_mallocarray((size_t)n, sizeof *w->perm);
    w->lab = sx_mallocarray((size_t)n, sizeof *w->lab);
    w->slab = sx_mallocarray((size_t)m, sizeof *w->slab);
    w->cnt = sx_mallocarray((size_t)nc, sizeof *w->cnt);
    if (!w->S || !w->cen || !w->aug || !w->Gbuf || !w->perm || !w->lab || !w->slab || !w->cnt)
        return sx_status_set(st, SX_ENOMEM, "kNN index: out of memory for %lld rows",
                             (long long)n);
    for (int t = 0; t < nth; t++) w->G[t] = w->Gbuf + (size_t)t * IVF_BQ * (nc + dim + 1);
    /* seeded sample without replacement (partial Fisher-Yates); its first nc rows seed
     * the centroids */
    sx_rng r;
    sx_rng_seed(&r, seed, 0x1f5);
    for (int64_t i = 0; i < n; i++) w->perm[i] = (int32_t)i;
    for (int64_t i = 0; i < m; i++) {
        int64_t j = i + sx_rng_below(&r, n - i);
        int32_t t = w->perm[i];
        w->perm[i] = w->perm[j];
        w->perm[j] = t;
        memcpy(w->S + i * dim, ref + (int64_t)w->perm[i] * dim, (size_t)dim * sizeof *w->S);
    }
    memcpy(w->cen, w->S, (size_t)nc * dim * sizeof *w->cen);
    km_ctx K = {.pts = w->S, .m = m, .aug = w->aug, .nc = nc, .dim = dim,
                .lab = w->slab, .G = w->G};
    for (int it = 0; it < IVF_ITERS && m > nc; it++) {
        km_aug(w->cen, nc, dim, w->aug);
        int rc = km_assign(&K, nth, prog);
        if (rc) return sx_status_set(st, rc, "kNN index build cancelled");
        km_update(w->S, m, dim, w->slab, nc, w->cen, w->cnt);
    }
    K.pts = ref;
    K.m = n;
    K.lab = w->lab;
    km_aug(w->cen, nc, dim, w->aug);
    int rc = nc >= IVF_COARSE_FROM ? km_assign_coarse(&K, w->cen, nth, w->cnt, prog)
                                   : km_assign(&K, nth, prog);
    if (rc == SX_ECANCELED) return sx_status_set(st, rc, "kNN index build cancelled");
    if (rc) return sx_status_set(st, rc, "kNN index: out of memory for %lld rows", (long long)n);
    return SX_OK;
}

/* ------------------------------------------------------------------ build ---- */

/* A (value, id) pair sorted by value, then id: rows by centroid distance, clusters by
 * lower bound. */
typedef struct ivf_key {
    double v;
    int32_t id;
} ivf_key;

static int ivf_key_cmp(const void *a, const void *b)
{
    const ivf_key *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Lay the clustered rows out: non-empty clusters renumbered in order, member means as
 * centroids, rows sorted by (centroid distance, row) inside each cluster. */
static sx_knn_ivf *ivf_lay_out(const double *ref, int64_t n, int dim, int nc, const int32_t *lab,
                               km_work *w, sx_status *st)
{
    int64_t *cnt = w->cnt;
    memset(cnt, 0, (size_t)nc * sizeof *cnt);
    for (int64_t i = 0; i < n; i++) cnt[lab[i]]++;
    int ne = 0;
    int32_t *newid = w->slab; /* sample labels no longer needed; m >= nc */
    for (int c = 0; c < nc; c++) newid[c] = cnt[c] ? ne++ : -1;
    ivf_layout L;
    ivf_layout_of(n, dim, ne, &L);
    sx_knn_ivf *ix = sx_calloc(1, sizeof *ix);
    void *own = ix ? sx_calloc(1, L.total) : NULL;
    ivf_key *pr = own ? sx_mallocarray((size_t)n, sizeof *pr) : NULL;
    if (!pr) {
        sx_free(own);
        sx_free(ix);
        sx_status_set(st, SX_ENOMEM, "kNN index: out of memory for %lld rows", (long long)n);
        return NULL;
    }
    ix->own = own;
    ix->n = n;
    ix->dim = dim;
    ix->nc = ne;
    ivf_bind(ix, own, &L);
    char *b = own;
    memcpy(b, IVF_MAGIC, 8);
    uint32_t ver = IVF_VERSION, d32 = (uint32_t)dim;
    int64_t nc64 = ne;
    memcpy(b + 8, &ver, 4);
    memcpy(b + 12, &d32, 4);
    memcpy(b + 16, &n, 8);
    memcpy(b + 24, &nc64, 8);
    int64_t *off = (int64_t *)(b + L.off);
    double *cen = (double *)(b + L.cen), *rad = (double *)(b + L.rad);
    double *x = (double *)(b + L.x), *pd = (double *)(b + L.pd);
    int32_t *row = (int32_t *)(b + L.row);
    off[0] = 0;
    for (int c = 0; c < nc; c++)
        if (newid[c] >= 0) off[newid[c] + 1] = cnt[c];
    for (int c = 0; c < ne; c++) off[c + 1] += off[c];
    /* stable counting sort of rows by cluster; cnt becomes the fill cursor */
    for (int c = 0; c < nc; c++)
        if (newid[c] >= 0) cnt[c] = off[newid[c]];
    for (int64_t i = 0; i < n; i++) row[cnt[lab[i]]++] = (int32_t)i;
    for (int c = 0; c < ne; c++) {
        double *cc = cen + (int64_t)c * dim;
        for (int64_t p = off[c]; p < off[c + 1]; p++)
            for (int j = 0; j < dim; j++) cc[j] += ref[(int64_t)row[p] * dim + j];
        for (int j = 0; j < dim; j++) cc[j] /= (double)(off[c + 1] - off[c]);
        for (int64_t p = off[c]; p < off[c + 1]; p++)
            pr[p] = (ivf_key){ivf_dist(ref + (int64_t)row[p] * dim, cc, dim), row[p]};
        qsort(pr + off[c], (size_t)(off[c + 1] - off[c]), sizeof *pr, ivf_key_cmp);
        for (int64_t p = off[c]; p < off[c + 1]; p++) {
            row[p] = pr[p].id;
            for (int j = 0; j < dim; j++) x[ivf_xat(p, j, dim)] = ref[(int64_t)pr[p].id * dim + j];
            pd[p] = pr[p].v; /* the stored row's own distance: a loaded buffer is checked
                               * against it bit for bit */
        }
        rad[c] = pd[off[c + 1] - 1];
    }
    sx_free(pr);
    if (ivf_finish(ix, st)) {
        sx_knn_ivf_free(ix);
        return NULL;
    }
    return ix;
}

sx_knn_ivf *sx_knn_ivf_new(const double *ref, int64_t n_ref, int dim, int n_clusters,
                           int n_threads, uint64_t seed, const sx_progress *prog, sx_status *st)
{
    if (!ref || n_ref < 1 || dim < 1 || dim > IVF_MAX_DIM || n_clusters < 0) {
        sx_status_set(st, SX_EINVAL, "kNN index: empty or invalid reference (%lld rows, %d dims)",
                      (long long)n_ref, dim);
        return NULL;
    }
    if (n_ref > INT32_MAX) {
        sx_status_set(st, SX_ELIMIT, "kNN index: %lld reference rows exceed the int32 index limit",
                      (long long)n_ref);
        return NULL;
    }
    for (int64_t i = 0; i < n_ref * dim; i++)
        if (!isfinite(ref[i])) {
            sx_status_set(st, SX_EDATA, "kNN index: reference row %lld has a non-finite "
                          "coordinate; check the latent", (long long)(i / dim));
            return NULL;
        }
    int64_t nc = n_clusters > 0 ? n_clusters : llround(sqrt((double)n_ref));
    if (nc > n_ref) nc = n_ref;
    if (nc < 1) nc = 1;
    int nth = sx_embed_threads(n_threads);
    km_work w = {0};
    sx_knn_ivf *ix = NULL;
    if (km_partition(ref, n_ref, dim, (int)nc, nth, seed, &w, prog, st) == SX_OK)
        ix = ivf_lay_out(ref, n_ref, dim, (int)nc, w.lab, &w, st);
    km_work_free(&w);
    return ix;
}

/* ----------------------------------------------------------------- search ---- */

typedef double ivf_v2 __attribute__((vector_size(16))); /* SSE2 / NEON width */
typedef long long ivf_m2 __attribute__((vector_size(16)));

typedef struct ivf_top {
    int k, n;
    double *d;     /* sorted by (d, row) */
    int32_t *r;
    double w, whi; /* k-th distance (inf until full) and the squared-sum test bound */
    int64_t evals;
    ivf_v2 *qv;    /* the query, each coordinate in both lanes */
    float *qf;     /* the query in float32 (the float filter) */
    double qslack; /* bound on the distance error of the float conversion (ivf_limf) */
    float limf;    /* float filter: a row whose float sum exceeds it is beyond whi */
    char pad[64];  /* the threads' tops lie side by side: no cache line holds two of them */
} ivf_top;

/* Offer one row: ranked by (sqrt of the directly computed sum, row) exactly as the final
 * sort of sx_knn_exact, so the kept set is brute force's. */
static inline void top_offer(ivf_top *T, double s, int32_t row)
{
    if (s > T->whi) return;
    double d = sqrt(s);
    int p = T->n;
    if (p == T->k) {
        if (d > T->w || (d == T->w && row > T->r[p - 1])) return;
        p--;
    } else {
        T->n++;
    }
    while (p > 0 && (T->d[p - 1] > d || (T->d[p - 1] == d && T->r[p - 1] > row))) {
        T->d[p] = T->d[p - 1];
        T->r[p] = T->r[p - 1];
        p--;
    }
    T->d[p] = d;
    T->r[p] = row;
    if (T->n == T->k) {
        T->w = T->d[T->k - 1];
        /* every s whose square root rounds to <= w lies below w^2 (1 + 4 eps) */
        T->whi = T->w * T->w * (1.0 + 8.0 * DBL_EPSILON);
    }
}

/* Squared distances of q to the four rows of block xb into out[4]: each lane sums in
 * sx_knn_exact's order (0 + t0^2 + t1^2 ...), so the result is bit-identical to the scalar
 * sum while the rows share vector instructions. Returns 0 when none is <= lim (the usual
 * case once k rows are held: one branch per block instead of four). */
static inline __attribute__((always_inline)) int sums4(const ivf_v2 *qv, const double *xb,
                                                       int dim, double lim, double *out)
{
    ivf_v2 a = {0, 0}, b = {0, 0};
#pragma GCC unroll 10
    for (int j = 0; j < dim; j++) {
        ivf_v2 x0, x1;
        memcpy(&x0, xb + 4 * j, sizeof x0);
        memcpy(&x1, xb + 4 * j + 2, sizeof x1);
        ivf_v2 t0 = qv[j] - x0, t1 = qv[j] - x1;
        a += t0 * t0;
        b += t1 * t1;
    }
    memcpy(out, &a, sizeof a);
    memcpy(out + 2, &b, sizeof b);
    ivf_v2 l = {lim, lim};
    ivf_m2 m = (a <= l) | (b <= l);
    return (m[0] | m[1]) != 0;
}

/* Scan cluster c: only rows whose centroid distance is within w of the query's (the
 * triangle inequality bounds every other row beyond the k-th distance). */
static int64_t ivf_scan_from(const sx_knn_ivf *ix, int c, const double *q, const ivf_top *T,
                             double *dqc_out, double *slack_out)
{
    const int dim = ix->dim;
    double dqc = ivf_dist(q, ix->cen + (int64_t)c * dim, dim);
    int64_t lo = ix->off[c], hi = ix->off[c + 1];
    double slack = IVF_TOL * (dqc + ix->rad[c]);
    *dqc_out = dqc;
    *slack_out = slack;
    if (T->n == T->k) {
        double from = dqc - T->w - slack - IVF_TOL * T->w;
        /* skip the groups of 8 rows whose last (largest) centroid distance is below from:
         * a count over the cluster's compact, sorted group table (a binary search through
         * pd missed the cache at every halving: a sixth of the search); the few rows of the
         * first group kept that lie below from are only scanned for nothing */
        float fr = (float)from;
        if ((double)fr > from) fr = nextafterf(fr, -INFINITY);
        const float *g = ix->pdg + ix->goff[c];
        int64_t ng = ix->goff[c + 1] - ix->goff[c], skip = 0;
        for (int64_t i = 0; i < ng; i++) skip += g[i] < fr;
        lo += 8 * skip;
        if (lo > hi) lo = hi;
    }
    return lo;
}

/* Scan cluster c in float64 only (coordinates too large for the float filter). */
static void ivf_scan(const sx_knn_ivf *ix, int c, const double *q, ivf_top *T)
{
    const int dim = ix->dim;
    double dqc, slack;
    int64_t lo = ivf_scan_from(ix, c, q, T, &dqc, &slack), hi = ix->off[c + 1];
    /* a block of four rows at a time (sums4); only rows inside [lo, hi) are offered */
    for (int64_t p = lo; p < hi;) {
        if (ix->pd[p] > dqc + T->w * (1 + IVF_TOL) + slack) break;
        int64_t b0 = p & ~(int64_t)3, e = b0 + 4 < hi ? b0 + 4 : hi;
        const double *xb = ix->x + (size_t)(p >> 2) * 4 * dim;
        double sv[4];
        int any = dim == 10 ? sums4(T->qv, xb, 10, T->whi, sv) /* the latent: unrolled */
                            : sums4(T->qv, xb, dim, T->whi, sv);
        T->evals += e - p;
        if (!any) {
            p = e;
            continue;
        }
        for (; p < e; p++) top_offer(T, sv[p & 3], ix->row[p]);
    }
}

/* The float filter's limit for the current whi. A row's true distance d and its float sum
 * sf satisfy d >= sqrt(sf) (1 - (dim + 4) u) - u (|q| + |x|) (u = 2^-24: the conversion
 * of both rows to float moves them by at most u |row|, and the float subtractions and sum
 * add (dim + 2) roundings), so a row with sf above this limit (4x those margins) has
 * d^2 > whi and would be refused by top_offer anyway. */
static inline void ivf_limf(ivf_top *T, int dim)
{
    if (T->whi == INFINITY) {
        T->limf = INFINITY;
        return;
    }
    const double u = 1.0 / 16777216.0;
    double l = (sqrt(T->whi) + T->qslack + 1e-30) * (1 + 4 * (dim + 4) * u);
    T->limf = (float)(l * l * (1 + 8 * u));
}

typedef float ivf_f8 __attribute__((vector_size(32)));
typedef int ivf_i8 __attribute__((vector_size(32)));

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
/* The lanes' sign bits in one instruction (the portable reduction below takes eight). By
 * pointer: a 32-byte vector passed by value to an AVX2 function from code compiled without
 * AVX changes the calling convention (clang refuses it). */
__attribute__((target("avx2"))) static inline unsigned mask8_avx2(const ivf_i8 *m)
{
    __m256 v;
    memcpy(&v, m, sizeof v);
    return (unsigned)_mm256_movemask_ps(v);
}
#define IVF_X86 1
#else
#define IVF_X86 0
#endif

/* Lanes (bits 0..7) of the 8-row float block xb whose float squared distance to q is <= lim
 * (avx2: a constant, 1 only in the AVX2 scan). */
static inline __attribute__((always_inline)) unsigned sums8f(const float *qf, const float *xb,
                                                             int dim, float lim, int avx2)
{
    ivf_f8 a = {0};
#pragma GCC unroll 10
    for (int j = 0; j < dim; j++) {
        ivf_f8 x, qj = {qf[j], qf[j], qf[j], qf[j], qf[j], qf[j], qf[j], qf[j]};
        memcpy(&x, xb + 8 * j, sizeof x);
        ivf_f8 t = qj - x;
        a += t * t;
    }
    ivf_f8 l = {lim, lim, lim, lim, lim, lim, lim, lim};
    ivf_i8 m = a <= l;
#if IVF_X86
    if (avx2) return mask8_avx2(&m);
#endif
    unsigned bits = 0;
    for (int i = 0; i < 8; i++) bits |= (unsigned)(m[i] & 1) << i;
    return bits;
}

/* Scan cluster c through the float filter: 8 rows per block in float32, and only the rows
 * that pass get their float64 sum (in sx_knn_exact's order) and are offered, so the kept
 * set is the float64 scan's, bit for bit. */
static inline __attribute__((always_inline)) void ivf_scan_f_body(const sx_knn_ivf *ix, int c,
                                                                  const double *q, ivf_top *T,
                                                                  int dim, int avx2)
{
    double dqc, slack;
    int64_t lo = ivf_scan_from(ix, c, q, T, &dqc, &slack), hi = ix->off[c + 1];
    for (int64_t p = lo; p < hi;) {
        if (ix->pd[p] > dqc + T->w * (1 + IVF_TOL) + slack) break;
        int64_t b0 = p & ~(int64_t)7, e = b0 + 8 < hi ? b0 + 8 : hi;
        unsigned bits = sums8f(T->qf, ix->xf + (size_t)(p >> 3) * 8 * dim, dim, T->limf, avx2);
        bits &= (0xffu << (p - b0)) & (0xffu >> (8 - (e - b0)));
        T->evals += e - p;
        for (; bits; bits &= bits - 1) {
            int64_t r = b0 + __builtin_ctz(bits);
            double sum = 0;
            for (int j = 0; j < dim; j++) {
                double t = q[j] - ix->x[ivf_xat(r, j, dim)];
                sum += t * t;
            }
            double whi = T->whi;
            top_offer(T, sum, ix->row[r]);
            if (T->whi != whi) ivf_limf(T, dim);
        }
        p = e;
    }
}

static void ivf_scan_f(const sx_knn_ivf *ix, int c, const double *q, ivf_top *T)
{
    if (ix->dim == 10) ivf_scan_f_body(ix, c, q, T, 10, 0); /* the latent: unrolled */
    else ivf_scan_f_body(ix, c, q, T, ix->dim, 0);
}

#if defined(__x86_64__) || defined(__i386__)
/* The same scan with 256-bit vectors where the CPU has them (no FMA: the float64 sums stay
 * sx_knn_exact's roundings). */
__attribute__((target("avx2"))) static void ivf_scan_f_avx2(const sx_knn_ivf *ix, int c,
                                                            const double *q, ivf_top *T)
{
    if (ix->dim == 10) ivf_scan_f_body(ix, c, q, T, 10, 1);
    else ivf_scan_f_body(ix, c, q, T, ix->dim, 1);
}
#endif

typedef void (*ivf_scan_fn)(const sx_knn_ivf *ix, int c, const double *q, ivf_top *T);

static ivf_scan_fn ivf_pick_scan(const sx_knn_ivf *ix)
{
    if (!ix->xf || ix->scan == SX_KNN_IVF_SCAN_F64) return ivf_scan;
#if defined(__x86_64__) || defined(__i386__)
    if (ix->scan == SX_KNN_IVF_SCAN_AUTO && __builtin_cpu_supports("avx2")) return ivf_scan_f_avx2;
#endif
    return ivf_scan_f;
}

void sx_knn_ivf_set_scan(sx_knn_ivf *ix, int scan) { ix->scan = scan; }

typedef struct search_ctx {
    const sx_knn_ivf *ix;
    const double *query;
    const int32_t *order; /* query rows in visiting order (NULL = as given) */
    int64_t n_query;
    int k, max_clusters;
    ivf_scan_fn scan;
    sx_knn *res;
    double **G;
    ivf_key **cand;
    ivf_top *top;
} search_ctx;

/* Clusters (besides the first) whose centroid distance d(q,c) may not exceed w + r_c,
 * sorted by d(q,c) (the bounded mode's order). d2[c] is a lower bound of d(q,c)^2; the
 * square root is taken only for clusters that pass the squared test. */
static int ivf_candidates(const sx_knn_ivf *ix, const double *d2, int first, const ivf_top *T,
                          ivf_key *cand)
{
    int m = 0;
    for (int c = 0; c < ix->nc; c++) {
        double thr = (T->w + ix->rad[c]) * (1 + 2 * IVF_TOL) + 2 * IVF_TOL * ix->rmax;
        if (c != first && d2[c] <= thr * thr)
            cand[m++] = (ivf_key){sqrt(d2[c]), c};
    }
    qsort(cand, (size_t)m, sizeof *cand, ivf_key_cmp);
    return m;
}

/* The bounded mode's candidates: the `keep` clusters nearest by centroid distance among
 * those whose lower bound may not exceed w (insertion into a short sorted list: no sort of
 * all candidates, which cost half the bounded search at 2000 clusters). */
static int ivf_nearest_clusters(const sx_knn_ivf *ix, const double *d2, int first,
                                const ivf_top *T, int keep, ivf_key *cand)
{
    int m = 0;
    for (int c = 0; c < ix->nc; c++) {
        double thr = (T->w + ix->rad[c]) * (1 + 2 * IVF_TOL) + 2 * IVF_TOL * ix->rmax;
        if (c == first || d2[c] > thr * thr || (m == keep && !(d2[c] < cand[m - 1].v))) continue;
        int at = m < keep ? m++ : keep - 1;
        while (at > 0 && cand[at - 1].v > d2[c]) {
            cand[at] = cand[at - 1];
            at--;
        }
        cand[at] = (ivf_key){d2[c], c};
    }
    for (int i = 0; i < m; i++) cand[i].v = sqrt(cand[i].v);
    return m;
}

/* The exact search after the first cluster: every other cluster in index order, skipped
 * when its lower bound max(0, d(q,c) - r_c) exceeds the current k-th distance w (w only
 * shrinks, so a skipped cluster holds no neighbour). Visiting by increasing bound instead,
 * to stop at the first bound beyond w, scans 7% fewer rows but its sort cost more (the
 * real map of bench_knn_ivf: 10% slower). */
static void ivf_rest(search_ctx *S, const double *d2, int first, const double *q, ivf_top *T)
{
    const sx_knn_ivf *ix = S->ix;
    for (int c = 0; c < ix->nc; c++) {
        double thr = (T->w + ix->rad[c]) * (1 + 2 * IVF_TOL) + 2 * IVF_TOL * ix->rmax;
        if (c == first || d2[c] > thr * thr) continue;
        double b = sqrt(d2[c]) - ix->rad[c];
        if (T->n == T->k && b > T->w + IVF_TOL * (fabs(b) + 2 * ix->rmax + T->w)) continue;
        S->scan(ix, c, q, T);
    }
}

/* The bounded mode after the first cluster: at most max_clusters - 1 more, nearest centroid
 * first (finds more true neighbours in the few clusters allowed than the lower bound's order:
 * 100k rows, 16 clusters: recall 0.996 instead of 0.979). */
static void ivf_bounded(search_ctx *S, const double *d2, int first, const double *q,
                        ivf_key *cand, ivf_top *T)
{
    const sx_knn_ivf *ix = S->ix;
    int keep = S->max_clusters < ix->nc / 2 ? 2 * S->max_clusters : ix->nc, m;
    if (T->n == T->k) m = ivf_nearest_clusters(ix, d2, first, T, keep, cand);
    else m = ivf_candidates(ix, d2, first, T, cand); /* first cluster under k rows: all
                                                      * clusters listed, so k rows fill */
    int visited = 1;
    for (int i = 0; i < m; i++) {
        if (visited >= S->max_clusters && T->n == T->k) break;
        double b = cand[i].v - ix->rad[cand[i].id];
        if (T->n == T->k && b > T->w + IVF_TOL * (fabs(b) + 2 * ix->rmax + T->w)) continue;
        S->scan(ix, cand[i].id, q, T);
        visited++;
    }
}

static void ivf_query(search_ctx *S, const double *q, double *d2, ivf_key *cand, ivf_top *T)
{
    const sx_knn_ivf *ix = S->ix;
    double qn = 0;
    for (int j = 0; j < ix->dim; j++) qn += q[j] * q[j];
    int first = 0;
    double best = INFINITY;
    for (int c = 0; c < ix->nc; c++) {
        /* d2 arrives as |c|^2 - 2 q.c; the margin covers the rounding of that sum */
        double cn = ix->caug[(int64_t)c * (ix->dim + 1) + ix->dim];
        double v = d2[c] + qn - (4.0 * ix->dim + 16) * DBL_EPSILON * (qn + cn);
        d2[c] = v > 0 ? v : 0;
        if (d2[c] < best) {
            best = d2[c];
            first = c;
        }
    }
    for (int j = 0; j < ix->dim; j++) {
        T->qv[j] = (ivf_v2){q[j], q[j]};
        T->qf[j] = (float)q[j];
    }
    T->qslack = 4.0 / 16777216.0 * (sqrt(qn) + ix->xnorm);
    T->n = 0;
    T->w = T->whi = T->limf = INFINITY;
    S->scan(ix, first, q, T);
    if (S->max_clusters > 0) ivf_bounded(S, d2, first, q, cand, T);
    else ivf_rest(S, d2, first, q, T);
}

static int search_chunk(void *ctx, int64_t chunk, int worker)
{
    search_ctx *S = ctx;
    const sx_knn_ivf *ix = S->ix;
    const int dim = ix->dim, k = S->k;
    int64_t i0 = chunk * IVF_BQ;
    double *G = S->G[worker];
    double *Qb = G + (size_t)IVF_BQ * ix->nc;
    int nq = ivf_rows_aug(S->query, S->order, S->n_query, i0, dim, Qb);
    ivf_gemm(Qb, nq, ix->caug, ix->nc, dim, G);
    ivf_top *T = &S->top[worker];
    for (int i = 0; i < nq; i++) {
        int64_t qi = S->order ? S->order[i0 + i] : i0 + i;
        ivf_query(S, Qb + (int64_t)i * (dim + 1), G + (int64_t)i * ix->nc, S->cand[worker], T);
        memcpy(S->res->idx + qi * k, T->r, (size_t)k * sizeof *T->r);
        memcpy(S->res->dist + qi * k, T->d, (size_t)k * sizeof *T->d);
    }
    return SX_OK;
}

typedef struct search_work {
    double *Gbuf, *tdist;
    ivf_v2 *qvbuf;
    float *qfbuf;
    ivf_key *cbuf;
    int32_t *trow, *order, *lab;
    double *G[256];
    ivf_key *cand[256];
    ivf_top top[256];
} search_work;

static void search_work_free(search_work *w)
{
    sx_free(w->Gbuf);
    sx_free(w->tdist);
    sx_free(w->qvbuf);
    sx_free(w->qfbuf);
    sx_free(w->cbuf);
    sx_free(w->trow);
    sx_free(w->order);
    sx_free(w->lab);
    sx_free(w);
}

/* Each thread's slice of a shared scratch array is followed by 64 bytes it never touches:
 * the slices are written for every row offered, and two threads writing one cache line made
 * a 2-thread search cost twice the CPU of one thread's (measured: 100k rows, k 30, 37.8
 * against 17.0 CPU-us a query). */
#define IVF_GAP(es) (64 / (es))

static search_work *search_work_new(const sx_knn_ivf *ix, int64_t n_query, int k, int nth)
{
    search_work *w = sx_calloc(1, sizeof *w);
    if (!w) return NULL;
    size_t kd = (size_t)k + IVF_GAP(sizeof(double)), kr = (size_t)k + IVF_GAP(sizeof(int32_t));
    size_t qv = (size_t)ix->dim + IVF_GAP(sizeof(ivf_v2)), qf = (size_t)ix->dim + IVF_GAP(sizeof(float));
    w->Gbuf = sx_mallocarray((size_t)nth * IVF_BQ * (ix->nc + ix->dim + 1), sizeof *w->Gbuf);
    w->cbuf = sx_mallocarray((size_t)nth * ix->nc, sizeof *w->cbuf);
    w->tdist = sx_mallocarray((size_t)nth * kd, sizeof *w->tdist);
    w->qvbuf = sx_mallocarray((size_t)nth * qv, sizeof *w->qvbuf); /* malloc: 16-aligned */
    w->qfbuf = sx_mallocarray((size_t)nth * qf, sizeof *w->qfbuf);
    w->trow = sx_mallocarray((size_t)nth * kr, sizeof *w->trow);
    w->order = sx_mallocarray((size_t)n_query, sizeof *w->order);
    w->lab = sx_mallocarray((size_t)n_query, sizeof *w->lab);
    if (!w->Gbuf || !w->cbuf || !w->tdist || !w->qvbuf || !w->qfbuf || !w->trow || !w->order || !w->lab) {
        search_work_free(w);
        return NULL;
    }
    for (int t = 0; t < nth; t++) {
        w->G[t] = w->Gbuf + (size_t)t * IVF_BQ * (ix->nc + ix->dim + 1);
        w->cand[t] = w->cbuf + (size_t)t * ix->nc;
        w->top[t] = (ivf_top){.k = k, .d = w->tdist + (size_t)t * kd, .r = w->trow + (size_t)t * kr,
                              .qv = w->qvbuf + (size_t)t * qv, .qf = w->qfbuf + (size_t)t * qf};
    }
    return w;
}

/* Queries grouped by the nearest of the first IVF_ORDER_KEYS centroids (stable): queries
 * searched one after another then scan nearby clusters, so the reference rows they touch
 * stay in cache (measured: 10-20% faster than query order; grouping by the nearest of
 * all centroids costs a second full centroid pass for no further gain). */
static int ivf_order(const sx_knn_ivf *ix, const double *query, int64_t n_query, int nth,
                     search_work *w, const sx_progress *prog)
{
    int nk = IVF_ORDER_KEYS;
    if (nk > ix->nc) nk = ix->nc;
    km_ctx K = {.pts = query, .m = n_query, .aug = ix->caug, .nc = nk,
                .dim = ix->dim, .lab = w->lab, .G = w->G};
    int rc = km_assign(&K, nth, prog);
    if (rc) return rc;
    int64_t *cur = sx_calloc((size_t)ix->nc + 1, sizeof *cur);
    if (!cur) return SX_ENOMEM;
    for (int64_t i = 0; i < n_query; i++) cur[w->lab[i] + 1]++;
    for (int c = 0; c < ix->nc; c++) cur[c + 1] += cur[c];
    for (int64_t i = 0; i < n_query; i++) w->order[cur[w->lab[i]]++] = (int32_t)i;
    sx_free(cur);
    return SX_OK;
}

static int ivf_check_query(const sx_knn_ivf *ix, const double *query, int64_t n_query, int k,
                           int max_clusters, sx_status *st)
{
    if (!ix || (!query && n_query > 0) || n_query < 0 || n_query > INT32_MAX || max_clusters < 0)
        return sx_status_set(st, SX_EINVAL, "kNN: invalid query (%lld rows)", (long long)n_query);
    if (k < 1 || k > ix->n)
        return sx_status_set(st, SX_EINVAL,
                             "kNN: k = %d neighbours requested but the reference has %lld rows; "
                             "use a smaller k", k, (long long)ix->n);
    for (int64_t i = 0; i < n_query * ix->dim; i++)
        if (!isfinite(query[i]))
            return sx_status_set(st, SX_EDATA, "kNN: query row %lld has a non-finite coordinate; "
                                 "check the latent", (long long)(i / ix->dim));
    return SX_OK;
}

sx_knn *sx_knn_ivf_search(const sx_knn_ivf *ix, const double *query, int64_t n_query, int k,
                          int max_clusters, int n_threads, const sx_progress *prog,
                          double *visited, sx_status *st)
{
    if (visited) *visited = 0;
    if (ivf_check_query(ix, query, n_query, k, max_clusters, st)) return NULL;
    sx_knn *res = sx_knn_alloc(n_query, k, 0, st);
    if (!res || n_query == 0) return res;
    int nth = sx_embed_threads(n_threads);
    int64_t n_chunks = (n_query + IVF_BQ - 1) / IVF_BQ;
    if (nth > n_chunks) nth = (int)n_chunks;
    search_work *w = search_work_new(ix, n_query, k, nth);
    int rc = w ? ivf_order(ix, query, n_query, nth, w, prog) : SX_ENOMEM;
    if (rc == SX_OK) {
        search_ctx S = {.ix = ix, .query = query, .order = w->order, .n_query = n_query, .k = k,
                        .max_clusters = max_clusters, .scan = ivf_pick_scan(ix), .res = res, .G = w->G, .cand = w->cand,
                        .top = w->top};
        rc = ivf_parallel(search_chunk, &S, n_chunks, nth, prog, "knn");
    }
    if (rc == SX_OK && visited) {
        int64_t ev = 0;
        for (int t = 0; t < nth; t++) ev += w->top[t].evals;
        *visited = (double)ev / ((double)n_query * (double)ix->n);
    }
    if (w) search_work_free(w);
    if (rc == SX_OK) return res;
    sx_knn_free(res);
    if (rc == SX_ECANCELED) sx_status_set(st, rc, "kNN search cancelled");
    else sx_status_set(st, SX_ENOMEM, "kNN: out of memory for the search of %lld rows",
                       (long long)n_query);
    return NULL;
}

/* ---------------------------------------------------------- serialization ---- */

size_t sx_knn_ivf_serialized_size(const sx_knn_ivf *ix) { return ix ? ix->size : 0; }

int sx_knn_ivf_write(const sx_knn_ivf *ix, void *buf, size_t cap, sx_status *st)
{
    if (!ix || !buf) return sx_status_set(st, SX_EINVAL, "kNN index: nothing to write");
    if (cap < ix->size)
        return sx_status_set(st, SX_ELIMIT, "kNN index: %zu bytes needed, %zu given", ix->size, cap);
    memcpy(buf, ix->base, ix->size);
    return SX_OK;
}

static int ivf_bad(sx_status *st, const char *what)
{
    return sx_status_set(st, SX_EFORMAT, "kNN index data is damaged (%s); rebuild the reference "
                         "index", what);
}

/* Clusters: offsets cover 0..n in order; every stored row a distinct reference row; every
 * stored centroid distance equal, bit for bit, to the one recomputed from the stored row,
 * ascending, and the radius the last of them (so the search's bounds hold). */
static int ivf_check(const sx_knn_ivf *ix, sx_status *st)
{
    const int64_t n = ix->n, nc = ix->nc;
    if (ix->off[0] != 0 || ix->off[nc] != n) return ivf_bad(st, "cluster offsets");
    for (int64_t c = 0; c < nc; c++)
        if (ix->off[c + 1] <= ix->off[c]) return ivf_bad(st, "cluster offsets");
    for (int64_t i = 0; i < nc * ix->dim; i++)
        if (!isfinite(ix->cen[i])) return ivf_bad(st, "centroids");
    uint8_t *seen = sx_calloc((size_t)n / 8 + 1, 1);
    if (!seen) return sx_status_set(st, SX_ENOMEM, "kNN index: out of memory");
    int rc = SX_OK;
    for (int64_t p = 0; p < n && !rc; p++) {
        int32_t r = ix->row[p];
        if (r < 0 || r >= n || (seen[r >> 3] >> (r & 7) & 1)) rc = ivf_bad(st, "row numbers");
        else seen[r >> 3] |= (uint8_t)(1u << (r & 7));
    }
    sx_free(seen);
    double *xr = sx_mallocarray((size_t)ix->dim, sizeof *xr);
    if (!xr && !rc) rc = sx_status_set(st, SX_ENOMEM, "kNN index: out of memory");
    for (int64_t c = 0; c < nc && !rc; c++) {
        const double *cc = ix->cen + c * ix->dim;
        double prev = 0;
        for (int64_t p = ix->off[c]; p < ix->off[c + 1] && !rc; p++) {
            for (int j = 0; j < ix->dim; j++) xr[j] = ix->x[ivf_xat(p, j, ix->dim)];
            double d = ivf_dist(xr, cc, ix->dim);
            if (!(d == ix->pd[p]) || d < prev) rc = ivf_bad(st, "row distances");
            prev = d;
        }
        if (!rc && ix->rad[c] != ix->pd[ix->off[c + 1] - 1]) rc = ivf_bad(st, "cluster radii");
    }
    sx_free(xr);
    return rc;
}

sx_knn_ivf *sx_knn_ivf_from_mem(const void *buf, size_t len, sx_status *st)
{
    const unsigned char *b = buf;
    if (!b || ((uintptr_t)b & 7) || len < IVF_HEADER || memcmp(b, IVF_MAGIC, 8)) {
        sx_status_set(st, SX_EFORMAT, "kNN index data is missing, misaligned or not an index; "
                      "rebuild the reference index");
        return NULL;
    }
    uint32_t ver, dim;
    int64_t n, nc;
    memcpy(&ver, b + 8, 4);
    memcpy(&dim, b + 12, 4);
    memcpy(&n, b + 16, 8);
    memcpy(&nc, b + 24, 8);
    if (ver != IVF_VERSION) {
        sx_status_set(st, SX_EUNSUPPORTED, "kNN index format %u is not supported (expected %u); "
                      "rebuild the reference index", ver, IVF_VERSION);
        return NULL;
    }
    if (dim < 1 || dim > IVF_MAX_DIM || n < 1 || n > INT32_MAX || nc < 1 || nc > n) {
        ivf_bad(st, "sizes");
        return NULL;
    }
    ivf_layout L;
    ivf_layout_of(n, (int)dim, nc, &L);
    if (L.total > len) {
        ivf_bad(st, "truncated");
        return NULL;
    }
    sx_knn_ivf *ix = sx_calloc(1, sizeof *ix);
    if (!ix) {
        sx_status_set(st, SX_ENOMEM, "kNN index: out of memory");
        return NULL;
    }
    ix->n = n;
    ix->dim = (int)dim;
    ix->nc = (int)nc;
    ivf_bind(ix, buf, &L);
    if (ivf_check(ix, st) || ivf_finish(ix, st)) {
        sx_knn_ivf_free(ix);
        return NULL;
    }
    return ix;
}

int sx_knn_ivf_matches(const sx_knn_ivf *ix, const double *ref, int64_t n_ref, int dim)
{
    if (!ix || !ref || ix->n != n_ref || ix->dim != dim) return 0;
    for (int64_t p = 0; p < ix->n; p++) {
        int64_t r = ix->row[p];
        if (r < 0 || r >= n_ref) return 0;
        for (int j = 0; j < dim; j++)
            if (ix->x[ivf_xat(p, j, dim)] != ref[r * dim + j]) return 0;
    }
    return 1;
}
