/* sx_prep_ops — the element-wise preprocessing kernels, written to round exactly like the
 * numpy / scipy / scikit-learn code SCALEX calls (float32 where they use float32). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_prep.h"
#include "sx_prep_internal.h"

/* numpy's pairwise summation for float32 (numpy/core/src/umath/loops_utils.h.src): blocks
 * of 128 summed with 8 accumulators, larger runs split in halves. Reproduced so the cell
 * totals are numpy's float32 totals bit for bit. */
static float pairwise_sum_f32(const float *a, int64_t n)
{
    if (n < 8) {
        float res = 0.f;
        for (int64_t i = 0; i < n; i++) res += a[i];
        return res;
    } else if (n <= 128) {
        float r[8], res;
        int64_t i;
        for (int k = 0; k < 8; k++) r[k] = a[k];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int k = 0; k < 8; k++) r[k] += a[i + k];
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    } else {
        int64_t n2 = n / 2;
        n2 -= n2 % 8;
        return pairwise_sum_f32(a, n2) + pairwise_sum_f32(a + n2, n - n2);
    }
}

/* scipy's csr.sum(axis=1) = np.add.reduceat(data, indptr[:-1]) in float32: the first value
 * of the row, then the pairwise sum of the rest added to it. */
static float total_f32(const float *v, int64_t n)
{
    if (n <= 0) return 0.f;
    float s = v[0];
    if (n > 1) s += pairwise_sum_f32(v + 1, n - 1);
    return s;
}

static float row_total_f32(const sx_csr *X, int64_t i)
{
    return total_f32(X->data + X->indptr[i], X->indptr[i + 1] - X->indptr[i]);
}

float sx_prep__row_factor(const float *v, int64_t n, float after, float *total)
{
    float c = total_f32(v, n);
    if (total) *total = c;
    c += (c == 0.f);            /* counts += counts == 0 */
    c = c / after;              /* float32 / float32 scalar */
    return 1.f / c;             /* 1 / counts, float32 */
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

float sx_prep__normalize_after(const sx_csr *X, double target)
{
    if (target >= 0) return (float)(target > 0 ? target : 10000.0);
    /* np.median(counts[counts > 0]) on float32: middle value, or the float32 mean of the two
     * middle values */
    int64_t n = X->n_rows, m = 0;
    float *pos = sx_mallocarray((size_t)(n ? n : 1), sizeof(float));
    if (!pos) return NAN;
    for (int64_t i = 0; i < n; i++) {
        float t = row_total_f32(X, i);
        if (t > 0) pos[m++] = t;
    }
    qsort(pos, (size_t)m, sizeof(float), cmp_float);
    float after;
    if (m == 0) after = 1.f;
    else if (m % 2) after = pos[m / 2];
    else after = (pos[m / 2 - 1] + pos[m / 2]) / 2.f;
    sx_free(pos);
    return after;
}

void sx_prep__normalize_rows(sx_csr *X, float after, double *totals)
{
    for (int64_t i = 0; i < X->n_rows; i++) {
        float c, r = sx_prep__row_factor(X->data + X->indptr[i], X->indptr[i + 1] - X->indptr[i],
                                         after, &c);
        if (totals) totals[i] = c;
        for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) X->data[k] *= r;
    }
}

double sx_prep_normalize_total(sx_csr *X, double target, double *totals)
{
    float after = sx_prep__normalize_after(X, target);
    if (isnan(after)) return NAN;
    sx_prep__normalize_rows(X, after, totals);
    return (double)after;
}

/* Element-wise kernels walk indptr[0]..indptr[n_rows], so they also work on a row view
 * (sx_prep.c processes the matrix in chunk_size row blocks). */
void sx_prep_log1p(sx_csr *X)
{
    for (int64_t k = X->indptr[0]; k < X->indptr[X->n_rows]; k++) X->data[k] = log1pf(X->data[k]);
}

void sx_prep_binarize(sx_csr *X)
{
    for (int64_t k = X->indptr[0]; k < X->indptr[X->n_rows]; k++)
        if (X->data[k] > 1.f) X->data[k] = 1.f;
}

void sx_prep_maxabs_fit(const sx_csr *X, const int32_t *group, int32_t n_groups, double *out)
{
    int64_t g = X->n_cols;
    memset(out, 0, sizeof(double) * (size_t)g * (size_t)(n_groups > 0 ? n_groups : 1));
    for (int64_t i = 0; i < X->n_rows; i++) {
        double *row = out + (group ? group[i] : 0) * g;
        for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) {
            double v = fabs((double)X->data[k]);
            if (v > row[X->indices[k]]) row[X->indices[k]] = v;
        }
    }
}

void sx_prep_maxabs_apply(sx_csr *X, const int32_t *group, const double *maxabs, int recip_double)
{
    int64_t g = X->n_cols;
    for (int64_t i = 0; i < X->n_rows; i++) {
        const double *row = maxabs + (group ? group[i] : 0) * g;
        for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++) {
            double a = row[X->indices[k]];
            if (a == 0) a = 1; /* sklearn _handle_zeros_in_scale */
            if (recip_double) {
                X->data[k] = (float)((double)X->data[k] * (1.0 / a));
            } else {
                float r = 1.f / (float)a; /* float32 reciprocal, as sklearn on float32 */
                X->data[k] = X->data[k] * r;
            }
        }
    }
}

/* ---- numpy legacy RandomState (MT19937) for scanpy's subsample ---- */

typedef struct mt19937 {
    uint32_t mt[624];
    int pos;
} mt19937;

static void mt_seed(mt19937 *s, uint32_t seed)
{
    s->mt[0] = seed;
    for (int i = 1; i < 624; i++)
        s->mt[i] = 1812433253u * (s->mt[i - 1] ^ (s->mt[i - 1] >> 30)) + (uint32_t)i;
    s->pos = 624;
}

static uint32_t mt_next(mt19937 *s)
{
    if (s->pos >= 624) {
        for (int i = 0; i < 624; i++) {
            uint32_t y = (s->mt[i] & 0x80000000u) | (s->mt[(i + 1) % 624] & 0x7fffffffu);
            s->mt[i] = s->mt[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        s->pos = 0;
    }
    uint32_t y = s->mt[s->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* numpy random_interval: smallest all-ones mask >= max, rejection on 32- or 64-bit draws */
static uint64_t mt_interval(mt19937 *s, uint64_t max)
{
    if (max == 0) return 0;
    uint64_t mask = max, v;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    mask |= mask >> 32;
    if (max <= 0xffffffffull) {
        while ((v = (mt_next(s) & mask)) > max) {}
    } else {
        for (;;) {
            uint64_t hi = mt_next(s), lo = mt_next(s);
            v = ((hi << 32) | lo) & mask;
            if (v <= max) break;
        }
    }
    return v;
}

int sx_prep_subsample_indices(int64_t n, uint32_t seed, int64_t *idx, sx_status *st)
{
    if (n < 0) return sx_status_set(st, SX_EINVAL, "subsample: negative number of cells");
    mt19937 *s = sx_malloc(sizeof *s);
    if (!s) return sx_status_set(st, SX_ENOMEM, "out of memory seeding the subsample");
    mt_seed(s, seed);
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    /* RandomState.permutation -> shuffle: for i in reversed(range(1, n)) */
    for (int64_t i = n - 1; i >= 1; i--) {
        int64_t j = (int64_t)mt_interval(s, (uint64_t)i);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    sx_free(s);
    return SX_OK;
}
