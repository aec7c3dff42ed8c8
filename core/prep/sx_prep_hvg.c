/* sx_prep_hvg — scanpy's highly_variable_genes(flavor='seurat', n_top_genes=K,
 * batch_key='batch') as of scanpy 1.9.8 (ALGORITHM.md §2.1; golden/prep/<case>/hvg.h5).
 *
 * Per batch: expm1 of the float32 log values (float32, like np.expm1 on the data), mean and
 * unbiased variance accumulated in float64 in CSR order (scanpy's numba kernel), dispersion,
 * pandas cut into 20 bins, bin-normalised dispersion, top-K cut. Combined: nan-means over
 * batches (absent genes contribute 0), batch counts, ranking by (nbatches desc, dispersion
 * desc, NaN last) stable over the lexicographic gene order.
 * No per-batch copy of the matrix is made: every batch accumulates into its own rows of
 * n_batches x n_genes arrays in one sweep over X.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_prep.h"

void sx_hvg_table_free(sx_hvg_table *t)
{
    if (!t) return;
    sx_free(t->b_means);
    sx_free(t->b_disp);
    sx_free(t->b_disp_norm);
    sx_free(t->b_hv);
    sx_free(t->b_present);
    sx_free(t->b_bin);
    sx_free(t->b_cutoff);
    sx_free(t->b_edges);
    sx_free(t->means);
    sx_free(t->dispersions);
    sx_free(t->dispersions_norm);
    sx_free(t->nbatches);
    sx_free(t->intersection);
    sx_free(t->highly_variable);
    sx_free(t->rank_order);
    sx_free(t);
}

/* numpy's float32 expm1 (SIMD, as on the machine that made the golden files) is closer to
 * the correctly rounded value than glibc's expm1f: round a double result instead. Above 1e-3
 * exp(x) - 1 in double is accurate far beyond float32 and about twice as fast as expm1. */
static inline float expm1_f32(float x)
{
    double d = (double)x;
    return (float)(fabs(d) < 1e-3 ? expm1(d) : exp(d) - 1.0);
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* One batch's table over its present genes (pres[0..m) = gene indices). */
static int single_batch(sx_hvg_table *t, int32_t b, const int64_t *pres, int64_t m, int64_t n_cells,
                        const double *mean_raw, const double *var_raw, int64_t n_top, int nan_neginf,
                        double *scratch)
{
    int64_t G = t->n_genes;
    double *mb = t->b_means + b * G, *db = t->b_disp + b * G, *nb = t->b_disp_norm + b * G;
    uint8_t *hv = t->b_hv + b * G;
    int32_t *bin = t->b_bin + b * G;
    double *edges = t->b_edges + b * 21;
    if (m == 0) {
        t->b_cutoff[b] = NAN;
        return SX_OK;
    }
    double mn = INFINITY, mx = -INFINITY;
    for (int64_t k = 0; k < m; k++) {
        int64_t g = pres[k];
        double mean = mean_raw[g], var = var_raw[g];
        /* var *= n / (n - 1) (R convention); a 1-cell batch keeps the biased value */
        if (n_cells > 1) var *= (double)n_cells / (double)(n_cells - 1);
        if (mean == 0) mean = 1e-12;
        double disp = var / mean;
        if (disp == 0) disp = NAN;
        disp = log(disp);
        mean = log1p(mean);
        mb[g] = mean;
        db[g] = disp;
        if (mean < mn) mn = mean;
        if (mean > mx) mx = mean;
    }
    /* pandas.cut(x, bins=20): linspace edges; range widened when flat; first edge lowered */
    const int nb_bins = 20;
    if (mn == mx) {
        mn -= mn != 0 ? 0.001 * fabs(mn) : 0.001;
        mx += mx != 0 ? 0.001 * fabs(mx) : 0.001;
        double step = (mx - mn) / nb_bins;
        for (int i = 0; i <= nb_bins; i++) edges[i] = (double)i * step + mn;
        edges[nb_bins] = mx;
    } else {
        double step = (mx - mn) / nb_bins;
        for (int i = 0; i <= nb_bins; i++) edges[i] = (double)i * step + mn;
        edges[nb_bins] = mx;
        edges[0] -= (mx - mn) * 0.001;
    }
    /* bin = searchsorted(edges, x, 'left') - 1; (a, b] intervals */
    double sum[20] = {0}, avg[20], dev[20];
    int64_t cnt[20] = {0};
    for (int64_t k = 0; k < m; k++) {
        int64_t g = pres[k];
        int lo = 0, hi = nb_bins + 1; /* first edge index with edges[i] >= x */
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (edges[mid] < mb[g]) lo = mid + 1; else hi = mid;
        }
        int bi = lo - 1;
        if (bi < 0 || bi >= nb_bins) bi = -1; /* outside: pandas gives NaN (cannot happen) */
        bin[g] = bi;
        if (bi >= 0 && !isnan(db[g])) {
            sum[bi] += db[g];
            cnt[bi]++;
        }
    }
    for (int i = 0; i < nb_bins; i++) avg[i] = cnt[i] ? sum[i] / (double)cnt[i] : NAN;
    double ss[20] = {0};
    for (int64_t k = 0; k < m; k++) {
        int64_t g = pres[k];
        if (bin[g] >= 0 && !isnan(db[g])) {
            double d = db[g] - avg[bin[g]];
            ss[bin[g]] += d * d;
        }
    }
    for (int i = 0; i < nb_bins; i++) {
        dev[i] = cnt[i] > 1 ? sqrt(ss[i] / (double)(cnt[i] - 1)) : NAN;
        /* a bin whose std is NaN (one gene, or all NaN): std = mean, mean = 0 */
        if (isnan(dev[i])) {
            dev[i] = avg[i];
            avg[i] = 0;
        }
    }
    int64_t nn = 0;
    for (int64_t k = 0; k < m; k++) {
        int64_t g = pres[k];
        nb[g] = bin[g] >= 0 ? (db[g] - avg[bin[g]]) / dev[bin[g]] : NAN;
        if (!isnan(nb[g])) scratch[nn++] = nb[g];
    }
    /* top-K cut among the non-NaN normalised dispersions */
    int64_t k_top = n_top;
    if (k_top > m) k_top = m;
    if (k_top > nn) k_top = nn;
    if (k_top <= 0) {
        t->b_cutoff[b] = NAN;
        return SX_OK;
    }
    qsort(scratch, (size_t)nn, sizeof(double), cmp_desc);
    double cut = scratch[k_top - 1];
    t->b_cutoff[b] = cut;
    for (int64_t k = 0; k < m; k++) {
        int64_t g = pres[k];
        double v = nb[g];
        if (isnan(v)) v = nan_neginf ? -INFINITY : 0.0;
        else if (!nan_neginf && isinf(v)) v = v > 0 ? DBL_MAX : -DBL_MAX; /* np.nan_to_num */
        hv[g] = v >= cut;
    }
    return SX_OK;
}

/* stable merge sort of gene indices with a comparison over the table */
typedef struct rank_ctx {
    const char *const *names;
    const int64_t *nbatches;
    const double *dn;
} rank_ctx;

static int by_name(const rank_ctx *c, int64_t a, int64_t b)
{
    return strcmp(c->names[a], c->names[b]);
}

static int by_rank(const rank_ctx *c, int64_t a, int64_t b)
{
    if (c->nbatches[a] != c->nbatches[b]) return c->nbatches[a] > c->nbatches[b] ? -1 : 1;
    double x = c->dn[a], y = c->dn[b];
    int xn = isnan(x), yn = isnan(y);
    if (xn || yn) return xn - yn; /* NaN last */
    return (x < y) - (x > y);
}

static void merge_sort(int64_t *v, int64_t *tmp, int64_t n, const rank_ctx *c,
                       int (*cmp)(const rank_ctx *, int64_t, int64_t))
{
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = cmp(c, v[j], v[i]) < 0 ? v[j++] : v[i++];
            while (i < mid) tmp[k++] = v[i++];
            while (j < hi) tmp[k++] = v[j++];
        }
        memcpy(v, tmp, sizeof(int64_t) * (size_t)n);
    }
}

sx_hvg_table *sx_prep_hvg(const sx_csr *X, const int32_t *domain, int32_t n_batches,
                          const char *const *gene_names, int64_t n_top, int nan_neginf,
                          sx_status *st)
{
    int64_t G = X->n_cols, N = X->n_rows;
    size_t bg = (size_t)(n_batches > 0 ? n_batches : 1) * (size_t)(G ? G : 1);
    sx_hvg_table *t = sx_calloc(1, sizeof *t);
    double *sum = NULL, *ssd = NULL, *scratch = NULL;
    int64_t *nnzc = NULL, *ncell = NULL, *pres = NULL, *tmp = NULL, *stored = NULL;
    if (!t) goto oom;
    t->n_genes = G;
    t->n_batches = n_batches;
    t->b_means = sx_calloc(bg, sizeof(double));
    t->b_disp = sx_calloc(bg, sizeof(double));
    t->b_disp_norm = sx_calloc(bg, sizeof(double));
    t->b_hv = sx_calloc(bg, 1);
    t->b_present = sx_calloc(bg, 1);
    t->b_bin = sx_mallocarray(bg, sizeof(int32_t));
    t->b_cutoff = sx_calloc((size_t)(n_batches > 0 ? n_batches : 1), sizeof(double));
    t->b_edges = sx_calloc((size_t)(n_batches > 0 ? n_batches : 1) * 21, sizeof(double));
    size_t g1 = (size_t)(G ? G : 1);
    t->means = sx_calloc(g1, sizeof(double));
    t->dispersions = sx_calloc(g1, sizeof(double));
    t->dispersions_norm = sx_calloc(g1, sizeof(double));
    t->nbatches = sx_calloc(g1, sizeof(int64_t));
    t->intersection = sx_calloc(g1, 1);
    t->highly_variable = sx_calloc(g1, 1);
    t->rank_order = sx_mallocarray(g1, sizeof(int64_t));
    sum = sx_calloc(bg, sizeof(double));
    ssd = sx_calloc(bg, sizeof(double));
    nnzc = sx_calloc(bg, sizeof(int64_t));
    stored = sx_calloc(bg, sizeof(int64_t)); /* stored entries: the implicit zeros' share */
    ncell = sx_calloc((size_t)(n_batches > 0 ? n_batches : 1), sizeof(int64_t));
    pres = sx_mallocarray(g1, sizeof(int64_t));
    tmp = sx_mallocarray(g1, sizeof(int64_t));
    scratch = sx_mallocarray(g1, sizeof(double));
    if (!t->b_means || !t->b_disp || !t->b_disp_norm || !t->b_hv || !t->b_present || !t->b_bin ||
        !t->b_cutoff || !t->b_edges || !t->means || !t->dispersions || !t->dispersions_norm ||
        !t->nbatches || !t->intersection || !t->highly_variable || !t->rank_order || !sum ||
        !ssd || !nnzc || !stored || !ncell || !pres || !tmp || !scratch)
        goto oom;
    for (size_t i = 0; i < bg; i++) t->b_bin[i] = -1;

    /* pass 1: sums of expm1 values (float32 expm1, float64 accumulation), per batch */
    for (int64_t i = 0; i < N; i++) {
        int32_t b = domain[i];
        ncell[b]++;
        double *s = sum + (int64_t)b * G;
        int64_t *c = nnzc + (int64_t)b * G;
        for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) {
            float y = expm1_f32(X->data[k]);
            s[X->indices[k]] += (double)y;
            c[X->indices[k]] += X->data[k] > 0; /* filter_genes(min_cells=1): X > 0 */
            stored[(int64_t)b * G + X->indices[k]]++;
        }
    }
    for (int32_t b = 0; b < n_batches; b++)
        for (int64_t g = 0; g < G; g++)
            if (ncell[b] > 0) sum[(int64_t)b * G + g] /= (double)ncell[b];
    /* pass 2: squared deviations from the mean over the stored entries */
    for (int64_t i = 0; i < N; i++) {
        int32_t b = domain[i];
        const double *mu = sum + (int64_t)b * G;
        double *q = ssd + (int64_t)b * G;
        for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) {
            double d = (double)expm1_f32(X->data[k]) - mu[X->indices[k]];
            q[X->indices[k]] += d * d;
        }
    }
    for (int32_t b = 0; b < n_batches; b++) {
        int64_t m = 0;
        double *mu = sum + (int64_t)b * G, *q = ssd + (int64_t)b * G;
        for (int64_t g = 0; g < G; g++) {
            int64_t o = (int64_t)b * G + g;
            q[g] += (double)(ncell[b] - stored[o]) * (mu[g] * mu[g]);
            if (ncell[b] > 0) q[g] /= (double)ncell[b];
            if (nnzc[o] > 0) {
                t->b_present[o] = 1;
                pres[m++] = g;
            }
        }
        single_batch(t, b, pres, m, ncell[b], mu, q, n_top, nan_neginf, scratch);
    }

    /* combine: nan-mean over batches (absent genes count as 0), batch counts */
    for (int64_t g = 0; g < G; g++) {
        double s[3] = {0, 0, 0};
        int64_t c[3] = {0, 0, 0};
        int64_t nbh = 0;
        for (int32_t b = 0; b < n_batches; b++) {
            int64_t o = (int64_t)b * G + g;
            double v[3] = {t->b_means[o], t->b_disp[o], t->b_disp_norm[o]};
            for (int j = 0; j < 3; j++)
                if (!isnan(v[j])) {
                    s[j] += v[j];
                    c[j]++;
                }
            nbh += t->b_hv[o];
        }
        t->means[g] = c[0] ? s[0] / (double)c[0] : NAN;
        t->dispersions[g] = c[1] ? s[1] / (double)c[1] : NAN;
        t->dispersions_norm[g] = c[2] ? s[2] / (double)c[2] : NAN;
        t->nbatches[g] = nbh;
        t->intersection[g] = nbh == n_batches;
    }
    /* ranking: groupby('gene') sorts by name; then a stable sort by the two keys */
    rank_ctx rc = {gene_names, t->nbatches, t->dispersions_norm};
    for (int64_t g = 0; g < G; g++) t->rank_order[g] = g;
    merge_sort(t->rank_order, tmp, G, &rc, by_name);
    merge_sort(t->rank_order, tmp, G, &rc, by_rank);
    int64_t k = n_top < G ? n_top : G;
    for (int64_t r = 0; r < k; r++) t->highly_variable[t->rank_order[r]] = 1;
    t->n_selected = k;
    sx_free(sum);
    sx_free(ssd);
    sx_free(nnzc);
    sx_free(stored);
    sx_free(ncell);
    sx_free(pres);
    sx_free(tmp);
    sx_free(scratch);
    return t;
oom:
    sx_status_set(st, SX_ENOMEM, "out of memory computing highly variable genes (%lld genes x %d "
                  "batches)", (long long)G, (int)n_batches);
    sx_hvg_table_free(t);
    sx_free(sum);
    sx_free(ssd);
    sx_free(nnzc);
    sx_free(stored);
    sx_free(ncell);
    sx_free(pres);
    sx_free(tmp);
    sx_free(scratch);
    return NULL;
}
