#include "sx_umap.h"

#include <float.h>
#include <igraph/igraph.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sx_alloc.h"
#include "sx_embed_internal.h"
#include "sx_log.h"
#include "sx_umap_internal.h"

#define SMOOTH_K_TOLERANCE 1e-5
#define MIN_K_DIST_SCALE 1e-3
#define SGD_CHUNK 4096
#define SGD_MAX_THREADS 64

/* Monotonic and calling-thread CPU seconds for the stage times in sx_umap_info. */
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double thread_cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void sx_umap_params_init(sx_umap_params *p)
{
    memset(p, 0, sizeof *p);
    p->n_neighbors = 30;
    p->min_dist = 0.1;
    p->spread = 1.0;
    p->learning_rate = 1.0;
    p->gamma = 1.0;
    p->negative_sample_rate = 5;
    p->init = SX_UMAP_INIT_SPECTRAL;
}

/* ------------------------------------------------------------- a, b fit ---- */

static double ab_cost(const double *x, const double *y, int n, double a, double b)
{
    double s = 0;
    for (int i = 0; i < n; i++) {
        double f = 1.0 / (1.0 + a * pow(x[i], 2 * b)) - y[i];
        s += f * f;
    }
    return s;
}

int sx_umap_find_ab(double min_dist, double spread, double *a, double *b, sx_status *st)
{
    if (!(spread > 0) || !(min_dist >= 0) || min_dist > spread)
        return sx_status_set(st, SX_EINVAL,
                             "UMAP: min_dist %g / spread %g invalid (need 0 <= min_dist <= spread, "
                             "spread > 0)",
                             min_dist, spread);
    enum { N = 300 };
    double x[N], y[N];
    for (int i = 0; i < N; i++) {
        x[i] = 3.0 * spread * i / (N - 1);
        y[i] = x[i] < min_dist ? 1.0 : exp(-(x[i] - min_dist) / spread);
    }
    /* Levenberg-Marquardt with the analytic Jacobian; converges to the same least-squares
     * minimum scipy's curve_fit finds from (1, 1). */
    double pa = 1.0, pb = 1.0, lam = 1e-3, cost = ab_cost(x, y, N, pa, pb);
    for (int it = 0; it < 500; it++) {
        double JtJ[3] = {0, 0, 0}, Jtr[2] = {0, 0};
        for (int i = 0; i < N; i++) {
            double xb = x[i] > 0 ? pow(x[i], 2 * pb) : 0.0;
            double den = 1.0 + pa * xb;
            double r = 1.0 / den - y[i];
            double ja = -xb / (den * den);
            double jb = x[i] > 0 ? -pa * xb * 2.0 * log(x[i]) / (den * den) : 0.0;
            JtJ[0] += ja * ja;
            JtJ[1] += ja * jb;
            JtJ[2] += jb * jb;
            Jtr[0] += ja * r;
            Jtr[1] += jb * r;
        }
        int improved = 0;
        for (int tries = 0; tries < 30 && !improved; tries++) {
            double m00 = JtJ[0] * (1 + lam), m11 = JtJ[2] * (1 + lam), m01 = JtJ[1];
            double det = m00 * m11 - m01 * m01;
            if (det == 0) break;
            double da = -(m11 * Jtr[0] - m01 * Jtr[1]) / det;
            double db = -(-m01 * Jtr[0] + m00 * Jtr[1]) / det;
            double c2 = ab_cost(x, y, N, pa + da, pb + db);
            if (c2 < cost) {
                double rel = (cost - c2) / (cost > 0 ? cost : 1);
                pa += da;
                pb += db;
                cost = c2;
                lam *= 0.3;
                improved = 1;
                if (rel < 1e-15 && fabs(da) < 1e-13 && fabs(db) < 1e-13) it = 1000;
            } else {
                lam *= 10;
            }
        }
        if (!improved) break;
    }
    if (!isfinite(pa) || !isfinite(pb))
        return sx_status_set(st, SX_EINTERNAL, "UMAP: a/b curve fit diverged");
    *a = pa;
    *b = pb;
    return SX_OK;
}

/* ------------------------------------------------------- fuzzy graph ---- */

/* Mean of all kNN distances (as float32), the floor of sigma for rows with rho 0. */
static double knn_mean_dist(const sx_knn *knn)
{
    int64_t nk = knn->n_query * knn->k;
    double mean_all = 0;
    for (int64_t i = 0; i < nk; i++) mean_all += (float)knn->dist[i];
    return mean_all / (double)nk;
}

/* smooth_knn_dist of rows [i0, i1) (rows are independent given mean_all: threads split them). */
static void smooth_rows(const sx_knn *knn, double target, double local_connectivity,
                        double mean_all, int64_t i0, int64_t i1, float *sigmas, float *rhos)
{
    int k = knn->k;
    for (int64_t i = i0; i < i1; i++) {
        const double *row = knn->dist + i * k;
        float rho = 0;
        /* positive distances in row order (ascending) */
        int n_nz = 0;
        float first_nz[2] = {0, 0}, max_nz = 0;
        for (int j = 0; j < k; j++) {
            float d = (float)row[j];
            if (d > 0) {
                if (n_nz < 2) first_nz[n_nz] = d;
                n_nz++;
                if (d > max_nz) max_nz = d;
            }
        }
        if (n_nz >= local_connectivity) {
            int index = (int)floor(local_connectivity);
            double interp = local_connectivity - index;
            if (index > 0) {
                /* index - 1 = 0 for local_connectivity 1 (the only values scanpy uses) */
                float nz[64];
                int m = 0;
                for (int j = 0; j < k && m < 64; j++)
                    if ((float)row[j] > 0) nz[m++] = (float)row[j];
                if (index - 1 < m) {
                    rho = nz[index - 1];
                    if (interp > SMOOTH_K_TOLERANCE && index < m)
                        rho += (float)(interp * (nz[index] - nz[index - 1]));
                }
            } else {
                rho = (float)(interp * first_nz[0]);
            }
        } else if (n_nz > 0) {
            rho = max_nz;
        }
        double lo = 0, hi = INFINITY, mid = 1.0;
        for (int it = 0; it < 64; it++) {
            double psum = 0;
            for (int j = 1; j < k; j++) {
                float d = (float)row[j] - rho;
                psum += d > 0 ? exp(-((double)d / mid)) : 1.0;
            }
            if (fabs(psum - target) < SMOOTH_K_TOLERANCE) break;
            if (psum > target) {
                hi = mid;
                mid = (lo + hi) / 2.0;
            } else {
                lo = mid;
                if (isinf(hi)) mid *= 2;
                else mid = (lo + hi) / 2.0;
            }
        }
        float sig = (float)mid;
        if (rho > 0) {
            double mr = 0;
            for (int j = 0; j < k; j++) mr += (float)row[j];
            mr /= k;
            if (sig < MIN_K_DIST_SCALE * mr) sig = (float)(MIN_K_DIST_SCALE * mr);
        } else if (sig < MIN_K_DIST_SCALE * mean_all) {
            sig = (float)(MIN_K_DIST_SCALE * mean_all);
        }
        sigmas[i] = sig;
        rhos[i] = rho;
    }
}

void sx_umap_smooth_knn(const sx_knn *knn, double k_target, double local_connectivity,
                        float *sigmas, float *rhos)
{
    smooth_rows(knn, log2(k_target), local_connectivity, knn_mean_dist(knn), 0, knn->n_query,
                sigmas, rhos);
}

static float membership(float d, float rho, float sigma)
{
    float t = d - rho;
    if (t <= 0 || sigma == 0) return 1.0f;
    return expf(-(t / sigma));
}

sx_csr *sx_umap_fuzzy_graph(const sx_knn *knn, float *sigmas, float *rhos, sx_status *st)
{
    int64_t n = knn->n_query;
    int k = knn->k;
    float *sig = NULL, *rho = NULL, *av = NULL, *tv = NULL;
    int64_t *ap = NULL, *tp = NULL, *fill = NULL;
    int32_t *ai = NULL, *ti = NULL;
    sx_csr *W = NULL;
    if (n < 1 || k < 2) {
        sx_status_set(st, SX_EINVAL, "UMAP graph: need >= 1 cell and k >= 2 (got %lld, %d)",
                      (long long)n, k);
        return NULL;
    }
    sig = sx_mallocarray(n, sizeof *sig);
    rho = sx_mallocarray(n, sizeof *rho);
    ap = sx_calloc(n + 1, sizeof *ap);
    ai = sx_mallocarray((size_t)n * k, sizeof *ai);
    av = sx_mallocarray((size_t)n * k, sizeof *av);
    tp = sx_calloc(n + 1, sizeof *tp);
    ti = sx_mallocarray((size_t)n * k, sizeof *ti);
    tv = sx_mallocarray((size_t)n * k, sizeof *tv);
    fill = sx_mallocarray(n, sizeof *fill);
    if (!sig || !rho || !ap || !ai || !av || !tp || !ti || !tv || !fill) goto oom;
    sx_umap_smooth_knn(knn, k, 1.0, sig, rho);
    /* directed memberships A, rows sorted by column */
    for (int64_t i = 0; i < n; i++) {
        int64_t p = ap[i];
        for (int j = 0; j < k; j++) {
            int32_t c = knn->idx[i * k + j];
            if (c < 0 || c == i) continue;
            float v = membership((float)knn->dist[i * k + j], rho[i], sig[i]);
            if (v == 0) continue;
            /* insertion by column (k is small) */
            int64_t q = p;
            while (q > ap[i] && ai[q - 1] > c) {
                ai[q] = ai[q - 1];
                av[q] = av[q - 1];
                q--;
            }
            if (q > ap[i] && ai[q - 1] == c) { /* duplicate neighbour: scipy sums */
                memmove(ai + q, ai + q + 1, (size_t)(p - q) * sizeof *ai);
                memmove(av + q, av + q + 1, (size_t)(p - q) * sizeof *av);
                av[q - 1] += v;
                continue;
            }
            ai[q] = c;
            av[q] = v;
            p++;
        }
        ap[i + 1] = p;
    }
    /* transpose */
    for (int64_t e = 0; e < ap[n]; e++) tp[ai[e] + 1]++;
    for (int64_t i = 0; i < n; i++) tp[i + 1] += tp[i];
    memcpy(fill, tp, n * sizeof *fill);
    for (int64_t i = 0; i < n; i++)
        for (int64_t e = ap[i]; e < ap[i + 1]; e++) {
            int64_t q = fill[ai[e]]++;
            ti[q] = (int32_t)i;
            tv[q] = av[e];
        }
    /* merge: a + b - a*b in float32 as scipy evaluates (result + transpose) - prod */
    W = sx_csr_new(n, n, ap[n] + tp[n], st);
    if (!W) goto fail;
    int64_t w = 0;
    W->indptr[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t x = ap[i], xe = ap[i + 1], y = tp[i], ye = tp[i + 1];
        while (x < xe || y < ye) {
            int32_t c;
            float a = 0, b = 0;
            if (y >= ye || (x < xe && ai[x] < ti[y])) {
                c = ai[x];
                a = av[x++];
            } else if (x >= xe || ti[y] < ai[x]) {
                c = ti[y];
                b = tv[y++];
            } else {
                c = ai[x];
                a = av[x++];
                b = tv[y++];
            }
            float s = a + b, pr = a * b;
            float v = s - pr;
            if (v == 0) continue;
            W->indices[w] = c;
            W->data[w] = v;
            w++;
        }
        W->indptr[i + 1] = w;
    }
    if (sx_csr_shrink(W, st)) goto fail;
    if (sigmas) memcpy(sigmas, sig, n * sizeof *sig);
    if (rhos) memcpy(rhos, rho, n * sizeof *rho);
    goto done;
oom:
    sx_status_set(st, SX_ENOMEM, "UMAP graph: out of memory for %lld x %d memberships",
                  (long long)n, k);
fail:
    sx_csr_free(W);
    W = NULL;
done:
    sx_free(sig);
    sx_free(rho);
    sx_free(ap);
    sx_free(ai);
    sx_free(av);
    sx_free(tp);
    sx_free(ti);
    sx_free(tv);
    sx_free(fill);
    return W;
}

/* ------------------------------------------------------- spectral init ---- */

/* Pruned symmetric graph (CSR over doubles) restricted to a vertex subset. */
typedef struct sgraph {
    int64_t n;
    int64_t *ptr;
    int32_t *ind;
    double *val;
    double *dinv; /* 1/sqrt(degree) */
} sgraph;

static void sgraph_free(sgraph *g)
{
    sx_free(g->ptr);
    sx_free(g->ind);
    sx_free(g->val);
    sx_free(g->dinv);
    memset(g, 0, sizeof *g);
}

/* Sub-graph of vertices with comp[v] == c (comp NULL: all), dropping weights < thr. loc maps
 * global vertex -> local index (filled here for the members). */
static int sgraph_build(const sx_csr *G, double thr, const int32_t *comp, int32_t c,
                        int32_t *loc, sgraph *g)
{
    int64_t n = G->n_rows, m = 0, nnz = 0;
    for (int64_t i = 0; i < n; i++)
        if (!comp || comp[i] == c) loc[i] = (int32_t)m++;
    memset(g, 0, sizeof *g);
    g->n = m;
    g->ptr = sx_calloc(m + 1, sizeof *g->ptr);
    g->dinv = sx_mallocarray(m ? m : 1, sizeof *g->dinv);
    if (!g->ptr || !g->dinv) return -1;
    for (int64_t i = 0; i < n; i++) {
        if (comp && comp[i] != c) continue;
        for (int64_t e = G->indptr[i]; e < G->indptr[i + 1]; e++)
            if ((double)G->data[e] >= thr) nnz++;
    }
    g->ind = sx_mallocarray(nnz ? nnz : 1, sizeof *g->ind);
    g->val = sx_mallocarray(nnz ? nnz : 1, sizeof *g->val);
    if (!g->ind || !g->val) return -1;
    int64_t w = 0;
    for (int64_t i = 0; i < n; i++) {
        if (comp && comp[i] != c) continue;
        double deg = 0;
        for (int64_t e = G->indptr[i]; e < G->indptr[i + 1]; e++) {
            if ((double)G->data[e] < thr) continue;
            /* same component as i by construction */
            g->ind[w] = loc[G->indices[e]];
            g->val[w] = G->data[e];
            deg += G->data[e];
            w++;
        }
        g->ptr[loc[i] + 1] = w;
        g->dinv[loc[i]] = deg > 0 ? 1.0 / sqrt(deg) : 0.0;
    }
    return 0;
}

static igraph_error_t sgraph_matvec(igraph_real_t *to, const igraph_real_t *from, int n,
                                    void *extra)
{
    const sgraph *g = extra;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int64_t e = g->ptr[i]; e < g->ptr[i + 1]; e++) s += g->val[e] * g->dinv[g->ind[e]] * from[g->ind[e]];
        to[i] = g->dinv[i] * s;
    }
    return IGRAPH_SUCCESS;
}

/* Jacobi eigen-decomposition of a small dense symmetric matrix (n x n, row-major, destroyed).
 * Eigenvalues into w, eigenvectors as columns of V. */
static void jacobi_eig(double *A, int n, double *w, double *V)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) V[i * n + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) off += A[i * n + j] * A[i * n + j];
        if (off < 1e-22) break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = A[p * n + q];
                if (fabs(apq) < 1e-300) continue;
                double th = (A[q * n + q] - A[p * n + p]) / (2 * apq);
                double t = (th >= 0 ? 1 : -1) / (fabs(th) + sqrt(th * th + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) {
                    double akp = A[k * n + p], akq = A[k * n + q];
                    A[k * n + p] = c * akp - s * akq;
                    A[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) {
                    double apk = A[p * n + k], aqk = A[q * n + k];
                    A[p * n + k] = c * apk - s * aqk;
                    A[q * n + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < n; k++) {
                    double vkp = V[k * n + p], vkq = V[k * n + q];
                    V[k * n + p] = c * vkp - s * vkq;
                    V[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
    for (int i = 0; i < n; i++) w[i] = A[i * n + i];
}

/* Eigenvectors 2 and 3 (by descending eigenvalue of D^-1/2 W D^-1/2, i.e. ascending of the
 * normalized Laplacian) of g into out (m x 2, stride 2). Returns 0, or -1 on solver failure. */
static int sgraph_spectral(const sgraph *g, double *out)
{
    int64_t m = g->n;
    if (m < 4) return -1;
    if (m <= 256) { /* small: dense and exact */
        double *A = sx_calloc((size_t)m * m, sizeof *A), *V = sx_mallocarray((size_t)m * m, sizeof *V),
               *w = sx_mallocarray(m, sizeof *w);
        int rc = -1;
        if (A && V && w) {
            for (int64_t i = 0; i < m; i++)
                for (int64_t e = g->ptr[i]; e < g->ptr[i + 1]; e++)
                    A[i * m + g->ind[e]] += g->dinv[i] * g->val[e] * g->dinv[g->ind[e]];
            jacobi_eig(A, (int)m, w, V);
            int o[3] = {-1, -1, -1};
            for (int r = 0; r < 3; r++) {
                for (int64_t i = 0; i < m; i++) {
                    int used = 0;
                    for (int s = 0; s < r; s++) used |= o[s] == i;
                    if (!used && (o[r] < 0 || w[i] > w[o[r]])) o[r] = (int)i;
                }
            }
            for (int64_t i = 0; i < m; i++) {
                out[i * 2] = V[i * m + o[1]];
                out[i * 2 + 1] = V[i * m + o[2]];
            }
            rc = 0;
        }
        sx_free(A);
        sx_free(V);
        sx_free(w);
        return rc;
    }
    if (m > INT32_MAX) return -1;
    igraph_arpack_options_t o;
    igraph_arpack_options_init(&o);
    o.n = (int)m;
    o.which[0] = 'L';
    o.which[1] = 'A';
    o.nev = 3;
    o.tol = 1e-4;
    int ncv = (int)floor(sqrt((double)m));
    /* umap uses sqrt(N); the cap bounds the O(n ncv^2) work per restart (1e5 connected
     * cells: init 1.3 s CPU at 32 vs 2.5 s at 128, both converging to tol) */
    if (ncv > 32) ncv = 32;
    if (ncv < 7) ncv = 7;
    if (ncv > m) ncv = (int)m;
    o.ncv = ncv;
    o.mxiter = (int)(m * 5 < 100000 ? m * 5 : 100000);
    o.start = 1;
    igraph_vector_t vals;
    igraph_matrix_t vecs;
    int rc = -1;
    if (igraph_vector_init(&vals, 0)) return -1;
    if (igraph_matrix_init(&vecs, m, 1)) {
        igraph_vector_destroy(&vals);
        return -1;
    }
    for (int64_t i = 0; i < m; i++) MATRIX(vecs, i, 0) = 1.0;
    igraph_error_handler_t *oldh = igraph_set_error_handler(igraph_error_handler_ignore);
    igraph_warning_handler_t *oldw = igraph_set_warning_handler(igraph_warning_handler_ignore);
    igraph_error_t e = igraph_arpack_rssolve(sgraph_matvec, (void *)g, &o, NULL, &vals, &vecs);
    igraph_set_error_handler(oldh);
    igraph_set_warning_handler(oldw);
    if (e == IGRAPH_SUCCESS && igraph_matrix_ncol(&vecs) >= 3 && igraph_vector_size(&vals) >= 3) {
        /* LA returns descending eigenvalues */
        for (int64_t i = 0; i < m; i++) {
            out[i * 2] = MATRIX(vecs, i, 1);
            out[i * 2 + 1] = MATRIX(vecs, i, 2);
        }
        rc = 0;
        for (int64_t i = 0; i < 2 * m; i++)
            if (!isfinite(out[i])) rc = -1;
    }
    igraph_vector_destroy(&vals);
    igraph_matrix_destroy(&vecs);
    return rc;
}

/* Connected components of the pruned graph (union-find); comp[v] in 0..nc-1 numbered by
 * first vertex. Returns nc, or -1 when out of memory. */
static int components(const sx_csr *G, double thr, int32_t *comp)
{
    int64_t n = G->n_rows;
    int32_t *par = sx_mallocarray(n, sizeof *par);
    if (!par) return -1;
    for (int64_t i = 0; i < n; i++) par[i] = (int32_t)i;
    for (int64_t i = 0; i < n; i++)
        for (int64_t e = G->indptr[i]; e < G->indptr[i + 1]; e++) {
            if ((double)G->data[e] < thr) continue;
            int32_t a = (int32_t)i, b = G->indices[e];
            while (par[a] != a) a = par[a] = par[par[a]];
            while (par[b] != b) b = par[b] = par[par[b]];
            if (a < b) par[b] = a;
            else if (b < a) par[a] = b;
        }
    int nc = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t r = (int32_t)i;
        while (par[r] != r) r = par[r];
        /* a root is its component's smallest vertex, so it is labelled before its members */
        comp[i] = r == i ? nc++ : comp[r];
    }
    sx_free(par);
    return nc;
}

static double prune_threshold(const sx_csr *G, int n_epochs)
{
    double wmax = 0;
    for (int64_t e = 0; e < sx_csr_nnz(G); e++)
        if (G->data[e] > wmax) wmax = G->data[e];
    return wmax / (double)n_epochs;
}

int sx_umap_spectral(const sx_csr *graph, int n_epochs, double *out, sx_status *st)
{
    int64_t n = graph->n_rows;
    int32_t *comp = sx_mallocarray(n, sizeof *comp), *loc = sx_mallocarray(n, sizeof *loc);
    sgraph g = {0};
    int rc = SX_OK;
    if (!comp || !loc) {
        rc = sx_status_set(st, SX_ENOMEM, "UMAP spectral: out of memory");
        goto out;
    }
    double thr = prune_threshold(graph, n_epochs);
    if (components(graph, thr, comp) != 1) {
        rc = sx_status_set(st, SX_EDATA, "UMAP spectral: the pruned graph is disconnected");
        goto out;
    }
    if (sgraph_build(graph, thr, NULL, 0, loc, &g)) {
        rc = sx_status_set(st, SX_ENOMEM, "UMAP spectral: out of memory");
        goto out;
    }
    if (sgraph_spectral(&g, out))
        rc = sx_status_set(st, SX_EDATA, "UMAP spectral: the eigen-solver did not converge");
out:
    sgraph_free(&g);
    sx_free(comp);
    sx_free(loc);
    return rc;
}

/* Component-wise layout (umap's multi_component_layout) into res (n x 2). */
static int multi_component(const sx_csr *G, double thr, const int32_t *comp, int nc,
                           const double *data, int dim, sx_rng *rng, double *res)
{
    int64_t n = G->n_rows;
    double *meta = sx_calloc((size_t)nc * 2, sizeof *meta);
    int32_t *loc = sx_mallocarray(n, sizeof *loc);
    double *sub = sx_mallocarray((size_t)n * 2, sizeof *sub);
    int rc = -1;
    if (!meta || !loc || !sub) goto out;
    if (nc <= 4) {
        int k = (nc + 1) / 2;
        for (int c = 0; c < nc; c++) {
            int r = c % k;
            double sgn = c < k ? 1.0 : -1.0;
            meta[c * 2 + r] = sgn; /* k <= 2 = dim */
        }
    } else {
        /* spectral embedding of the centroids' Gaussian affinity (dense, nc small) */
        double *cen = sx_calloc((size_t)nc * (dim > 0 ? dim : 1), sizeof *cen);
        double *A = sx_calloc((size_t)nc * nc, sizeof *A), *V = sx_mallocarray((size_t)nc * nc, sizeof *V);
        double *w = sx_mallocarray(nc, sizeof *w), *deg = sx_calloc(nc, sizeof *deg);
        int64_t *cnt = sx_calloc(nc, sizeof *cnt);
        int ok = cen && A && V && w && deg && cnt;
        if (ok && data) {
            for (int64_t i = 0; i < n; i++) {
                cnt[comp[i]]++;
                for (int j = 0; j < dim; j++) cen[(int64_t)comp[i] * dim + j] += data[i * dim + j];
            }
            for (int c = 0; c < nc; c++)
                for (int j = 0; j < dim; j++) cen[(int64_t)c * dim + j] /= (double)cnt[c];
            for (int a = 0; a < nc; a++)
                for (int b = 0; b < nc; b++) {
                    double d2 = 0;
                    for (int j = 0; j < dim; j++) {
                        double t = cen[(int64_t)a * dim + j] - cen[(int64_t)b * dim + j];
                        d2 += t * t;
                    }
                    A[a * nc + b] = exp(-d2);
                    deg[a] += A[a * nc + b];
                }
            for (int a = 0; a < nc; a++)
                for (int b = 0; b < nc; b++) A[a * nc + b] /= sqrt(deg[a] * deg[b]);
            jacobi_eig(A, nc, w, V);
            int o[3] = {-1, -1, -1};
            for (int r = 0; r < 3; r++)
                for (int i = 0; i < nc; i++) {
                    int used = 0;
                    for (int s = 0; s < r; s++) used |= o[s] == i;
                    if (!used && (o[r] < 0 || w[i] > w[o[r]])) o[r] = i;
                }
            double mx = 0;
            for (int c = 0; c < nc; c++)
                for (int d = 0; d < 2; d++) {
                    meta[c * 2 + d] = V[c * nc + o[d + 1]] / sqrt(deg[c]);
                    if (meta[c * 2 + d] > mx) mx = meta[c * 2 + d];
                }
            if (mx > 0)
                for (int c = 0; c < 2 * nc; c++) meta[c] /= mx;
        } else if (ok) { /* no data: components on a circle */
            for (int c = 0; c < nc; c++) {
                meta[c * 2] = cos(6.283185307179586 * c / nc);
                meta[c * 2 + 1] = sin(6.283185307179586 * c / nc);
            }
        }
        sx_free(cen);
        sx_free(A);
        sx_free(V);
        sx_free(w);
        sx_free(deg);
        sx_free(cnt);
        if (!ok) goto out;
    }
    for (int c = 0; c < nc; c++) {
        double range = INFINITY;
        for (int o2 = 0; o2 < nc; o2++) {
            double dx = meta[c * 2] - meta[o2 * 2], dy = meta[c * 2 + 1] - meta[o2 * 2 + 1];
            double d = sqrt(dx * dx + dy * dy);
            if (d > 0 && d < range) range = d;
        }
        range = isfinite(range) ? range / 2.0 : 1.0;
        sgraph g;
        if (sgraph_build(G, thr, comp, c, loc, &g)) {
            sgraph_free(&g);
            goto out;
        }
        int ok = g.n >= 4 && sgraph_spectral(&g, sub) == 0;
        double mx = 0;
        if (ok) {
            for (int64_t i = 0; i < 2 * g.n; i++)
                if (fabs(sub[i]) > mx) mx = fabs(sub[i]);
            ok = mx > 0;
        }
        for (int64_t i = 0; i < n; i++) {
            if (comp[i] != c) continue;
            int64_t l = loc[i];
            for (int d = 0; d < 2; d++) {
                double v = ok ? sub[l * 2 + d] * range / mx
                              : (sx_rng_unif(rng) * 2.0 - 1.0) * range;
                res[i * 2 + d] = v + meta[c * 2 + d];
            }
        }
        sgraph_free(&g);
    }
    rc = 0;
out:
    sx_free(meta);
    sx_free(loc);
    sx_free(sub);
    return rc;
}

/* ----------------------------------------------------------------- SGD ---- */

/* The epoch loop, umap-learn's optimize_layout_euclidean (epochs_per_sample schedule,
 * negative sampling, gradients clipped to +-4) in float32.
 *
 * Threads and determinism. Edges are stored by head vertex; the fit gives each thread a
 * contiguous range of head vertices ("owned") and their edges. Inside an epoch a thread
 * reads and moves only its own vertices live; the position of a vertex owned by another
 * thread is read from a snapshot taken at the start of the epoch, and the move of such a
 * tail (umap's move_other) is added to the thread's own deferred buffer, applied in thread
 * order after the epoch. No memory is shared between running threads, so a fit depends only
 * on (seed, thread count); with one thread it is umap's sequential algorithm. Random numbers
 * come from one stream per (epoch, chunk of edges), chunks never straddling threads.
 * The transform moves only the queries (the reference is fixed), so its threads never
 * share anything and its result is the same at any thread count; its chunks run in the
 * float32 vector kernel of sx_umap_sgd.c (same schedule and streams, samples of 8 query
 * cells at once, a polynomial pow), the fit's in sgd_chunk below. */
typedef struct sgd_job {
    float *head;       /* moving layout, n_head x 2 */
    const float *tail; /* sampled layout: head itself (fit) or the fixed reference */
    float *snap;       /* fit with > 1 thread: head at the start of the epoch; else NULL */
    float *defer;      /* fit with > 1 thread: nth x n_head x 2 deferred tail moves */
    int64_t n_head, n_tail;
    const int32_t *eh, *et;
    const float *eps;       /* epochs per sample */
    float *next, *next_neg; /* epoch of the next (negative) sample */
    const int64_t *chunk;   /* chunk boundaries, n_chunks + 1 */
    int64_t n_chunks;
    const int64_t *tchunk; /* chunks of thread t: [tchunk[t], tchunk[t + 1]) */
    const int64_t *vown;   /* fit: vertices owned by thread t: [vown[t], vown[t + 1]) */
    int n_epochs, move_other, nth, neg_rate;
    float a, b, gamma;
    double alpha0;
    uint64_t seed;
    const sx_progress *prog;
    const sx_umap_tsgd *tsgd;      /* transform: its kernel (sx_umap_sgd.c); fit: NULL */
    sx_umap_tscratch **tscratch;   /* transform: one per thread */
} sgd_job;

typedef struct sgd_worker {
    sgd_job *J;
    int id, epoch;
    float alpha;
} sgd_worker;

static inline float clip4(float v) { return v > 4.0f ? 4.0f : (v < -4.0f ? -4.0f : v); }

static void sgd_chunk(sgd_job *J, int id, int64_t c, int epoch, float alpha)
{
    sx_rng rng;
    sx_rng_seed(&rng, J->seed, (uint64_t)epoch * (uint64_t)J->n_chunks + (uint64_t)c + 1);
    const float a = J->a, b = J->b, two_gb = 2.0f * J->gamma * b, m2ab = -2.0f * a * b;
    const float n = (float)epoch, inv_neg = 1.0f / (float)J->neg_rate;
    float *head = J->head;
    const float *tail = J->tail;
    /* vertices [lo, lo + span) are read live; others from the snapshot */
    int64_t lo = 0;
    uint64_t span = (uint64_t)J->n_tail;
    const float *other = tail;
    float *defer = NULL;
    if (J->snap) {
        lo = J->vown[id];
        span = (uint64_t)(J->vown[id + 1] - lo);
        other = J->snap;
        defer = J->defer + (size_t)id * 2 * (size_t)J->n_head;
    }
    const int move_other = J->move_other;
    const int32_t *eh = J->eh, *et = J->et;
    const float *eps = J->eps;
    float *next = J->next, *next_neg = J->next_neg;
    const int64_t n_tail = J->n_tail;
    for (int64_t e = J->chunk[c]; e < J->chunk[c + 1]; e++) {
        if (next[e] > n) continue;
        int32_t j = eh[e], k = et[e];
        float *cur = head + 2 * (int64_t)j;
        int own = (uint64_t)(k - lo) < span;
        const float *oth = (own ? tail : other) + 2 * (int64_t)k;
        float c0 = cur[0], c1 = cur[1];
        float dx = c0 - oth[0], dy = c1 - oth[1];
        float d2 = dx * dx + dy * dy;
        float gc = 0;
        if (d2 > 0) {
            float pb = expf(b * logf(d2));
            gc = m2ab * pb / (d2 * (a * pb + 1.0f));
        }
        float g0 = clip4(gc * dx) * alpha, g1 = clip4(gc * dy) * alpha;
        if (move_other) {
            float *mv = own ? head + 2 * (int64_t)k : defer + 2 * (int64_t)k;
            mv[0] -= g0;
            mv[1] -= g1;
        }
        next[e] += eps[e];
        float epn = eps[e] * inv_neg;
        int n_neg = (int)((n - next_neg[e]) / epn);
        /* The attractive move and the negative samples all see the vertex as it was before
         * this sample (umap moves it after each one): independent computations the CPU
         * overlaps, where the sequential chain through pow and divisions was latency-bound. */
        float s0 = 0, s1 = 0;
        for (int p = 0; p < n_neg; p++) {
            int64_t m = sx_umap_rng_index(&rng, n_tail);
            const float *o = ((uint64_t)(m - lo) < span ? tail : other) + 2 * m;
            float ex = c0 - o[0], ey = c1 - o[1];
            float q2 = ex * ex + ey * ey;
            if (q2 > 0) {
                float pb = expf(b * logf(q2));
                float c2 = two_gb / ((0.001f + q2) * (a * pb + 1.0f));
                s0 += clip4(c2 * ex);
                s1 += clip4(c2 * ey);
            } else if (j != m) {
                s0 += 4.0f; /* umap's quirk for coincident points */
                s1 += 4.0f;
            }
        }
        cur[0] = c0 + g0 + s0 * alpha;
        cur[1] = c1 + g1 + s1 * alpha;
        if (n_neg > 0) next_neg[e] += (float)n_neg * epn;
    }
}

static void *sgd_run(void *arg)
{
    sgd_worker *w = arg;
    sgd_job *J = w->J;
    for (int64_t c = J->tchunk[w->id]; c < J->tchunk[w->id + 1]; c++) {
        if (J->tsgd)
            sx_umap_tsgd_chunk(J->tsgd, J->tscratch[w->id], J->chunk[c], J->chunk[c + 1], c,
                               w->epoch, w->alpha);
        else
            sgd_chunk(J, w->id, c, w->epoch, w->alpha);
    }
    return NULL;
}

/* After an epoch of a multi-threaded fit: apply the deferred tail moves (thread order, so
 * the float sums are reproducible) and refresh the snapshot. */
static void sgd_merge(sgd_job *J)
{
    int64_t n2 = 2 * J->n_head;
    for (int t = 0; t < J->nth; t++) {
        float *d = J->defer + (size_t)t * (size_t)n2;
        for (int64_t i = 0; i < n2; i++) {
            J->head[i] += d[i];
            d[i] = 0;
        }
    }
    memcpy(J->snap, J->head, (size_t)n2 * sizeof *J->snap);
}

/* Epoch loop; threads are started per epoch (a few hundred epochs: negligible cost) so a
 * failed pthread_create just runs that worker's share on this thread (same result). */
static int sgd_optimize(sgd_job *J, sx_status *st)
{
    sgd_worker ws[SGD_MAX_THREADS];
    pthread_t th[SGD_MAX_THREADS];
    if (J->snap) memcpy(J->snap, J->head, (size_t)J->n_head * 2 * sizeof *J->snap);
    for (int ep = 0; ep < J->n_epochs; ep++) {
        /* umap lowers alpha after each epoch to alpha0 (1 - n / n_epochs) for the epoch
         * just run, so epochs 0 and 1 both run at alpha0 and epoch ep >= 1 at
         * alpha0 (1 - (ep - 1) / n_epochs) */
        float alpha = (float)(J->alpha0 * (1.0 - (double)(ep > 0 ? ep - 1 : 0) / J->n_epochs));
        for (int t = 0; t < J->nth; t++) ws[t] = (sgd_worker){J, t, ep, alpha};
        int ok[SGD_MAX_THREADS] = {0};
        for (int t = 1; t < J->nth; t++) ok[t] = pthread_create(&th[t], NULL, sgd_run, &ws[t]) == 0;
        sgd_run(&ws[0]);
        for (int t = 1; t < J->nth; t++) {
            if (ok[t]) pthread_join(th[t], NULL);
            else sgd_run(&ws[t]);
        }
        if (J->snap) sgd_merge(J);
        if (sx_progress_cancelled(J->prog))
            return sx_status_set(st, SX_ECANCELED, "UMAP optimization cancelled");
        if ((ep + 1) % 10 == 0 || ep + 1 == J->n_epochs) {
            char msg[64];
            snprintf(msg, sizeof msg, "epoch %d/%d", ep + 1, J->n_epochs);
            sx_progress_report(J->prog, "umap", (double)(ep + 1) / J->n_epochs, msg);
        }
    }
    return SX_OK;
}

/* ---------------------------------------------------------------- fit ---- */

static int resolve_ab(const sx_umap_params *p, double *a, double *b, sx_status *st)
{
    if (p->a > 0 && p->b > 0) {
        *a = p->a;
        *b = p->b;
        return SX_OK;
    }
    return sx_umap_find_ab(p->min_dist, p->spread, a, b, st);
}

int sx_umap_fit(const sx_csr *G, const double *data, int dim, const sx_umap_params *pin,
                float *out, sx_umap_info *info, const sx_progress *prog, sx_status *st)
{
    sx_umap_params p;
    if (pin) p = *pin;
    else sx_umap_params_init(&p);
    int64_t n = G->n_rows;
    int rc = SX_OK;
    int32_t *comp = NULL, *eh = NULL, *et = NULL;
    double *init = NULL;
    float *eps = NULL, *next = NULL, *nneg = NULL, *snap = NULL, *defer = NULL;
    int64_t *chunk = NULL, *vstart = NULL, vown[SGD_MAX_THREADS + 1], tchunk[SGD_MAX_THREADS + 1];
    double a, b, t_start = now_s(), c_start = thread_cpu_s(), t_sgd0 = 0, c_sgd0 = 0;
    if (G->n_cols != n || n < 2)
        return sx_status_set(st, SX_EINVAL, "UMAP fit: graph must be square with >= 2 cells (%lld x %lld)",
                             (long long)G->n_rows, (long long)G->n_cols);
    if ((rc = resolve_ab(&p, &a, &b, st))) return rc;
    int n_epochs = p.n_epochs > 0 ? p.n_epochs : (n <= 10000 ? 500 : 200);
    double wmax = 0;
    for (int64_t e = 0; e < sx_csr_nnz(G); e++) {
        if (!(G->data[e] >= 0) || !isfinite(G->data[e]))
            return sx_status_set(st, SX_EDATA, "UMAP fit: graph weight %lld is %g (need finite >= 0)",
                                 (long long)e, G->data[e]);
        if (G->data[e] > wmax) wmax = G->data[e];
    }
    if (wmax <= 0) return sx_status_set(st, SX_EDATA, "UMAP fit: the graph has no edges");
    double thr = wmax / (double)n_epochs;
    int64_t m = 0;
    for (int64_t e = 0; e < sx_csr_nnz(G); e++) m += (double)G->data[e] >= thr;
    int nth = sx_embed_threads(p.n_threads);
    if (nth > SGD_MAX_THREADS) nth = SGD_MAX_THREADS;
    if (nth > n) nth = (int)n;
    /* the deferred-move buffers are nth x n x 2 floats: keep them under 256 MiB (many cores on
     * millions of cells); the thread count used is reported in info */
    while (nth > 1 && (double)nth * (double)n * 2.0 * sizeof(float) > 256.0 * 1048576.0) nth--;
    comp = sx_mallocarray(n, sizeof *comp);
    init = sx_mallocarray((size_t)n * 2, sizeof *init);
    eh = sx_mallocarray(m, sizeof *eh);
    et = sx_mallocarray(m, sizeof *et);
    eps = sx_mallocarray(m, sizeof *eps);
    next = sx_mallocarray(m, sizeof *next);
    nneg = sx_mallocarray(m, sizeof *nneg);
    vstart = sx_mallocarray(n + 1, sizeof *vstart);
    /* chunks of each thread's edge range: at most m / SGD_CHUNK + nth */
    chunk = sx_mallocarray(m / SGD_CHUNK + nth + 2, sizeof *chunk);
    if (nth > 1) {
        snap = sx_mallocarray((size_t)n * 2, sizeof *snap);
        defer = sx_calloc((size_t)nth * (size_t)n * 2, sizeof *defer);
    }
    if (!comp || !init || !eh || !et || !eps || !next || !nneg || !vstart || !chunk ||
        (nth > 1 && (!snap || !defer))) {
        rc = sx_status_set(st, SX_ENOMEM, "UMAP fit: out of memory for %lld edges", (long long)m);
        goto out;
    }
    int64_t w = 0;
    for (int64_t i = 0; i < n; i++) {
        vstart[i] = w;
        for (int64_t e = G->indptr[i]; e < G->indptr[i + 1]; e++) {
            if ((double)G->data[e] < thr) continue;
            eh[w] = (int32_t)i;
            et[w] = G->indices[e];
            eps[w] = (float)((double)n_epochs / ((double)n_epochs * ((double)G->data[e] / wmax)));
            next[w] = eps[w];
            nneg[w] = eps[w] / (float)p.negative_sample_rate;
            w++;
        }
    }
    vstart[n] = w;
    /* thread t owns the head vertices whose edges start at or after t * m / nth */
    vown[0] = 0;
    for (int t = 1; t < nth; t++) {
        int64_t v = vown[t - 1], target = m * t / nth;
        while (v < n && vstart[v] < target) v++;
        vown[t] = v;
    }
    vown[nth] = n;
    int64_t n_chunks = 0;
    for (int t = 0; t < nth; t++) {
        tchunk[t] = n_chunks;
        for (int64_t e = vstart[vown[t]]; e < vstart[vown[t + 1]]; e += SGD_CHUNK) chunk[n_chunks++] = e;
    }
    tchunk[nth] = n_chunks;
    chunk[n_chunks] = m;
    sx_rng rng;
    sx_rng_seed(&rng, p.seed, 0x5eed);
    int nc = components(G, thr, comp);
    if (nc < 0) {
        rc = sx_status_set(st, SX_ENOMEM, "UMAP fit: out of memory for components");
        goto out;
    }
    int used = SX_UMAP_INIT_RANDOM;
    sx_progress_report(prog, "umap", 0.0, "initialization");
    if (p.init == SX_UMAP_INIT_SPECTRAL) {
        if (nc == 1) {
            sgraph g;
            int32_t *loc = sx_mallocarray(n, sizeof *loc);
            if (loc && sgraph_build(G, thr, NULL, 0, loc, &g) == 0 && sgraph_spectral(&g, init) == 0)
                used = SX_UMAP_INIT_SPECTRAL;
            else
                SX_WARN("UMAP: spectral initialization failed; falling back to random");
            sgraph_free(&g);
            sx_free(loc);
        } else if (multi_component(G, thr, comp, nc, data, dim, &rng, init) == 0) {
            used = 2;
        } else {
            SX_WARN("UMAP: component layout failed; falling back to random");
        }
    }
    if (used == SX_UMAP_INIT_RANDOM) {
        for (int64_t i = 0; i < 2 * n; i++) init[i] = sx_rng_unif(&rng) * 20.0 - 10.0;
    } else {
        double mx = 0;
        for (int64_t i = 0; i < 2 * n; i++)
            if (fabs(init[i]) > mx) mx = fabs(init[i]);
        double expn = mx > 0 ? 10.0 / mx : 1.0;
        for (int64_t i = 0; i < 2 * n; i++)
            init[i] = (float)(init[i] * expn) + (float)(sx_rng_normal(&rng) * 1e-4);
    }
    for (int d = 0; d < 2; d++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int64_t i = 0; i < n; i++) {
            lo = fmin(lo, init[i * 2 + d]);
            hi = fmax(hi, init[i * 2 + d]);
        }
        double sc = hi > lo ? 10.0 / (hi - lo) : 0.0;
        for (int64_t i = 0; i < n; i++) out[i * 2 + d] = (float)((init[i * 2 + d] - lo) * sc);
    }
    if (sx_progress_cancelled(prog)) {
        rc = sx_status_set(st, SX_ECANCELED, "UMAP cancelled");
        goto out;
    }
    t_sgd0 = now_s();
    c_sgd0 = thread_cpu_s();
    sgd_job J = {.head = out, .tail = out, .snap = snap, .defer = defer, .n_head = n, .n_tail = n,
                 .eh = eh, .et = et, .eps = eps, .next = next, .next_neg = nneg, .chunk = chunk,
                 .n_chunks = n_chunks, .tchunk = tchunk, .vown = vown, .n_epochs = n_epochs,
                 .move_other = 1, .nth = nth, .neg_rate = p.negative_sample_rate, .a = (float)a,
                 .b = (float)b, .gamma = (float)p.gamma, .alpha0 = p.learning_rate,
                 .seed = p.seed, .prog = prog};
    rc = sgd_optimize(&J, st);
    if (info) {
        info->a = a;
        info->b = b;
        info->n_epochs = n_epochs;
        info->n_edges = m;
        info->n_components = nc;
        info->init_used = used;
        info->n_threads = nth;
        info->init_seconds = t_sgd0 - t_start;
        info->init_cpu_seconds = c_sgd0 - c_start;
        info->sgd_seconds = now_s() - t_sgd0;
    }
out:
    sx_free(vstart);
    sx_free(snap);
    sx_free(defer);
    sx_free(comp);
    sx_free(init);
    sx_free(eh);
    sx_free(et);
    sx_free(eps);
    sx_free(next);
    sx_free(nneg);
    sx_free(chunk);
    return rc;
}

int sx_umap_fit_data(const double *x, int64_t n, int dim, const sx_umap_params *pin,
                     const sx_knn_opts *kopts, float *out, sx_csr **graph_out,
                     sx_umap_info *info, const sx_progress *prog, sx_status *st)
{
    sx_umap_params p;
    if (pin) p = *pin;
    else sx_umap_params_init(&p);
    int k = p.n_neighbors;
    if (k > n) k = (int)(1 + n / 2); /* scanpy's rule for tiny data */
    sx_knn_opts ko;
    if (kopts) ko = *kopts;
    else {
        sx_knn_opts_init(&ko);
        ko.n_threads = p.n_threads;
        ko.seed = p.seed;
    }
    ko.exclude_self = 0;
    sx_knn *knn = sx_knn_self(x, n, dim, k, &ko, prog, st);
    if (!knn) return st ? st->code : SX_EINTERNAL;
    sx_csr *G = sx_umap_fuzzy_graph(knn, NULL, NULL, st);
    sx_knn_free(knn);
    if (!G) return st ? st->code : SX_EINTERNAL;
    int rc = sx_umap_fit(G, x, dim, &p, out, info, prog, st);
    if (rc == SX_OK && graph_out) *graph_out = G;
    else sx_csr_free(G);
    return rc;
}

/* ---------------------------------------------------------- transform ---- */

int sx_umap_transform(const double *ref, int64_t n_ref, const float *ref_emb,
                      const double *query, int64_t n_query, int dim, const sx_umap_params *pin,
                      float *out, const sx_progress *prog, sx_status *st)
{
    sx_umap_params p;
    if (pin) p = *pin;
    else sx_umap_params_init(&p);
    if (n_query == 0) return SX_OK;
    int k = p.n_neighbors;
    if (k > n_ref) k = (int)n_ref;
    if (k < 2) return sx_status_set(st, SX_EINVAL, "UMAP transform: reference too small (%lld cells)",
                                    (long long)n_ref);
    sx_knn_opts ko;
    sx_knn_opts_init(&ko);
    ko.n_threads = p.n_threads;
    sx_knn *knn = sx_knn_exact(ref, n_ref, query, n_query, dim, k, &ko, prog, st);
    if (!knn) return st ? st->code : SX_EINTERNAL;
    int rc = sx_umap_transform_knn(knn, n_ref, ref_emb, &p, out, prog, st);
    sx_knn_free(knn);
    return rc;
}

/* The first k columns of a wider neighbour table (rows nearest first), transformed. */
static int transform_narrow(const sx_knn *wide, int k, int64_t n_ref, const float *ref_emb,
                            const sx_umap_params *p, float *out, const sx_progress *prog,
                            sx_status *st)
{
    int64_t n = wide->n_query;
    sx_knn nk = {.n_query = n, .k = k, .idx = sx_mallocarray((size_t)n * k, sizeof *nk.idx),
                 .dist = sx_mallocarray((size_t)n * k, sizeof *nk.dist)};
    int rc = nk.idx && nk.dist ? SX_OK
                               : sx_status_set(st, SX_ENOMEM, "UMAP transform: out of memory");
    for (int64_t i = 0; rc == SX_OK && i < n; i++) {
        memcpy(nk.idx + i * k, wide->idx + i * wide->k, (size_t)k * sizeof *nk.idx);
        memcpy(nk.dist + i * k, wide->dist + i * wide->k, (size_t)k * sizeof *nk.dist);
    }
    if (rc == SX_OK) rc = sx_umap_transform_knn(&nk, n_ref, ref_emb, p, out, prog, st);
    sx_free(nk.idx);
    sx_free(nk.dist);
    return rc;
}

/* The transform's per-row preparation on rows [i0, i1): sigma and rho (umap passes the
 * fit's n_neighbors as target and local_connectivity - 1 = 0), the fuzzy weights, their
 * maximum, and the start position. */
typedef struct tprep_job {
    const sx_knn *knn;
    const float *ref_emb;
    double target, mean_all, wmax;
    int64_t i0, i1;
    float *sig, *rho, *wv, *out;
} tprep_job;

static void *tprep_run(void *arg)
{
    tprep_job *J = arg;
    const sx_knn *knn = J->knn;
    const float *ref_emb = J->ref_emb;
    const int k = knn->k;
    float *wv = J->wv, *out = J->out;
    smooth_rows(knn, J->target, 0.0, J->mean_all, J->i0, J->i1, J->sig, J->rho);
    double wmax = 0;
    for (int64_t i = J->i0; i < J->i1; i++) {
        double s = 0;
        for (int j = 0; j < k; j++) {
            float v = membership((float)knn->dist[i * k + j], J->rho[i], J->sig[i]);
            wv[i * k + j] = v;
            s += v;
            if (v > wmax) wmax = v;
        }
        /* start at the l1-normalized weighted mean of the neighbours' positions, or, as
         * umap's init_graph_transform, exactly at a neighbour of weight 1 (a copy of a
         * reference cell; the lowest reference row where several are): a cell that is in
         * the reference starts where the map has it */
        int32_t snap = -1;
        for (int j = 0; j < k; j++) {
            int32_t r = knn->idx[i * k + j];
            if (wv[i * k + j] == 1.0f && (snap < 0 || r < snap)) snap = r;
        }
        double x0 = 0, x1 = 0;
        if (snap >= 0) {
            x0 = ref_emb[2 * (int64_t)snap];
            x1 = ref_emb[2 * (int64_t)snap + 1];
        } else {
            for (int j = 0; j < k; j++) {
                double ww = s > 0 ? wv[i * k + j] / s : 1.0 / k;
                int32_t r = knn->idx[i * k + j];
                x0 += ww * ref_emb[2 * (int64_t)r];
                x1 += ww * ref_emb[2 * (int64_t)r + 1];
            }
        }
        out[2 * i] = (float)x0;
        out[2 * i + 1] = (float)x1;
    }
    J->wmax = wmax;
    return NULL;
}

int sx_umap_transform_knn(const sx_knn *knn, int64_t n_ref, const float *ref_emb,
                          const sx_umap_params *pin, float *out, const sx_progress *prog,
                          sx_status *st)
{
    sx_umap_params p;
    if (pin) p = *pin;
    else sx_umap_params_init(&p);
    int rc = SX_OK;
    int64_t n_query = knn->n_query;
    float *sig = NULL, *rho = NULL, *wv = NULL;
    int32_t *eh = NULL, *et = NULL;
    float *eps = NULL, *next = NULL, *nneg = NULL;
    double a, b;
    int64_t *chunk = NULL, tchunk[SGD_MAX_THREADS + 1];
    sx_umap_tscratch *tscr[SGD_MAX_THREADS] = {0};
    if (n_query == 0) return SX_OK;
    /* the neighbours may come from a wider search (transfer's and UMAP's in one): the first
     * n_neighbors columns of rows sorted nearest first are exactly the narrower search */
    int k = p.n_neighbors;
    if (k > n_ref) k = (int)n_ref;
    if (k < 2 || knn->k < k)
        return sx_status_set(st, SX_EINVAL, "UMAP transform: %d neighbours per query cell given, "
                             "%d needed (reference of %lld cells)", knn->k, k, (long long)n_ref);
    if (knn->k > k) return transform_narrow(knn, k, n_ref, ref_emb, &p, out, prog, st);
    if ((rc = resolve_ab(&p, &a, &b, st))) return rc;
    int64_t m = n_query * k;
    sig = sx_mallocarray(n_query, sizeof *sig);
    rho = sx_mallocarray(n_query, sizeof *rho);
    wv = sx_mallocarray(m, sizeof *wv);
    eh = sx_mallocarray(m, sizeof *eh);
    et = sx_mallocarray(m, sizeof *et);
    eps = sx_mallocarray(m, sizeof *eps);
    next = sx_mallocarray(m, sizeof *next);
    nneg = sx_mallocarray(m, sizeof *nneg);
    chunk = sx_mallocarray(m / SGD_CHUNK + 2, sizeof *chunk);
    if (!sig || !rho || !wv || !eh || !et || !eps || !next || !nneg || !chunk) {
        rc = sx_status_set(st, SX_ENOMEM, "UMAP transform: out of memory for %lld queries",
                           (long long)n_query);
        goto out;
    }
    /* rows are independent: threads split them (the same result at any thread count) */
    int nth = sx_embed_threads(p.n_threads);
    if (nth > SGD_MAX_THREADS) nth = SGD_MAX_THREADS;
    if (nth > n_query) nth = (int)n_query;
    tprep_job tp[SGD_MAX_THREADS];
    pthread_t th[SGD_MAX_THREADS];
    int ok[SGD_MAX_THREADS] = {0};
    double mean_all = knn_mean_dist(knn), wmax = 0;
    for (int t = 0; t < nth; t++)
        tp[t] = (tprep_job){.knn = knn, .ref_emb = ref_emb, .target = log2(p.n_neighbors),
                            .mean_all = mean_all, .i0 = n_query * t / nth,
                            .i1 = n_query * (t + 1) / nth, .sig = sig, .rho = rho, .wv = wv,
                            .out = out};
    for (int t = 1; t < nth; t++) ok[t] = pthread_create(&th[t], NULL, tprep_run, &tp[t]) == 0;
    tprep_run(&tp[0]);
    for (int t = 1; t < nth; t++) {
        if (ok[t]) pthread_join(th[t], NULL);
        else tprep_run(&tp[t]);
    }
    for (int t = 0; t < nth; t++) wmax = tp[t].wmax > wmax ? tp[t].wmax : wmax;
    int n_epochs = p.n_epochs > 0 ? p.n_epochs / 3 : (n_query <= 10000 ? 100 : 30);
    if (n_epochs < 1) n_epochs = 1;
    double thr = wmax / (double)n_epochs;
    int64_t w = 0, n_chunks = 0;
    for (int64_t i = 0; i < n_query; i++) {
        if (w >= n_chunks * SGD_CHUNK) chunk[n_chunks++] = w; /* chunks start at a row */
        for (int j = 0; j < k; j++) {
            double v = wv[i * k + j];
            if (v < thr || v <= 0) continue;
            eh[w] = (int32_t)i;
            et[w] = knn->idx[i * k + j];
            eps[w] = (float)((double)n_epochs / ((double)n_epochs * (v / wmax)));
            next[w] = eps[w];
            nneg[w] = eps[w] / (float)p.negative_sample_rate;
            w++;
        }
    }
    chunk[n_chunks] = w;
    /* chunks start at a query row and threads take contiguous chunk ranges: queries never
     * share a moving vertex, and the streams follow the chunks, not the threads */
    nth = sx_embed_threads(p.n_threads);
    if (nth > SGD_MAX_THREADS) nth = SGD_MAX_THREADS;
    if (nth > n_chunks) nth = n_chunks > 0 ? (int)n_chunks : 1;
    for (int t = 0; t <= nth; t++) tchunk[t] = n_chunks * t / nth;
    for (int t = 0; t < nth; t++)
        if (!(tscr[t] = sx_umap_tscratch_new(p.negative_sample_rate))) {
            rc = sx_status_set(st, SX_ENOMEM, "UMAP transform: out of memory");
            goto out;
        }
    sx_umap_tsgd T = {.head = out, .tail = ref_emb, .n_tail = n_ref, .eh = eh, .et = et,
                      .eps = eps, .next = next, .next_neg = nneg, .n_chunks = n_chunks,
                      .neg_rate = p.negative_sample_rate, .a = (float)a, .b = (float)b,
                      .gamma = (float)p.gamma, .seed = p.seed};
    sgd_job J = {.head = out, .tail = ref_emb, .n_head = n_query, .n_tail = n_ref, .eh = eh,
                 .et = et, .eps = eps, .next = next, .next_neg = nneg, .chunk = chunk,
                 .n_chunks = n_chunks, .tchunk = tchunk, .n_epochs = n_epochs, .move_other = 0,
                 .nth = nth, .neg_rate = p.negative_sample_rate, .a = (float)a, .b = (float)b,
                 .gamma = (float)p.gamma, .alpha0 = p.learning_rate / 4.0, .seed = p.seed,
                 .prog = prog, .tsgd = &T, .tscratch = tscr};
    rc = sgd_optimize(&J, st);
out:
    for (int t = 0; t < SGD_MAX_THREADS; t++) sx_umap_tscratch_free(tscr[t]);
    sx_free(sig);
    sx_free(rho);
    sx_free(wv);
    sx_free(eh);
    sx_free(et);
    sx_free(eps);
    sx_free(next);
    sx_free(nneg);
    sx_free(chunk);
    return rc;
}
