/* sx_transfer_calib — the calibration behind sx_transfer's confidence and mapping score,
 * fitted on held-out reference cells (see sx_transfer.h): each held-out cell is predicted as
 * a query cell would be, from reference cells of other batches (or all other cells), giving
 * (raw probability of its chosen class, whether that class is its own label) pairs for an
 * isotonic fit (only with the option isotonic), and its mean distance to its k neighbours
 * for the mapping score: per class,
 * the median log distance (the location) and a scale from the gap between that and the
 * median log distance at which held-out cells of *other* classes lie from the class (see
 * gap_scales). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_embed_internal.h"
#include "sx_knn.h"
#include "sx_metrics.h"
#include "sx_transfer.h"

typedef struct held {
    int64_t n;
    double *x;    /* raw probability of the chosen class */
    double *y;    /* 1 when the chosen class is the cell's own */
    double *d;    /* mean distance to its k nearest neighbours */
    int32_t *cls; /* its own class */
} held;

/* Which reference cells are held out: all, or calib_max of them drawn with the seed. */
static int64_t *pick_cells(int64_t n_ref, int64_t max, uint64_t seed, int64_t *n)
{
    int64_t *ix = sx_mallocarray(n_ref, sizeof *ix);
    if (!ix) return NULL;
    for (int64_t i = 0; i < n_ref; i++) ix[i] = i;
    *n = max > 0 && max < n_ref ? max : n_ref;
    sx_rng r;
    sx_rng_seed(&r, seed, 0x7472757374ULL);
    for (int64_t i = 0; i < *n && *n < n_ref; i++) { /* partial Fisher-Yates */
        int64_t j = i + sx_rng_below(&r, n_ref - i);
        int64_t t = ix[i];
        ix[i] = ix[j];
        ix[j] = t;
    }
    return ix;
}

/* A copy of rows[0..n) of ref (n x dim), or NULL when out of memory. */
static double *gather(const double *ref, int dim, const int64_t *rows, int64_t n)
{
    double *x = sx_mallocarray((size_t)n * dim + 1, sizeof *x);
    for (int64_t i = 0; x && i < n; i++)
        memcpy(x + i * dim, ref + rows[i] * dim, (size_t)dim * sizeof *x);
    return x;
}

/* Score held-out cells cells[0..m) against the reference rows in pool[0..np) (indices into
 * ref); skip = a cell's own row in pool (leave-one-out) or -1. */
static int score_held(const double *ref, const int32_t *codes, int nc, int dim,
                      const sx_transfer_opts *o, int kp, const int64_t *cells, int64_t m,
                      const int64_t *pool, int64_t np, int loo, held *h, sx_status *st)
{
    int kk = kp + (loo ? 1 : 0);
    if (kk > np) kk = (int)np;
    if (m == 0 || kk - (loo ? 1 : 0) < o->k) return SX_OK; /* too few cells to vote */
    double *P = gather(ref, dim, pool, np), *Q = gather(ref, dim, cells, m);
    int32_t *nb = sx_mallocarray(kk, sizeof *nb);
    double *w = sx_mallocarray(nc, sizeof *w), *dd = sx_mallocarray(kk, sizeof *dd);
    sx_knn *knn = NULL;
    int rc = P && Q && nb && w && dd ? SX_OK : sx_status_set(st, SX_ENOMEM, "out of memory");
    sx_knn_opts ko;
    sx_knn_opts_init(&ko);
    ko.n_threads = o->n_threads;
    if (rc == SX_OK && !(knn = sx_knn_exact(P, np, Q, m, dim, kk, &ko, NULL, st))) rc = st->code;
    for (int64_t i = 0; rc == SX_OK && i < m; i++) {
        int n = 0, self = 0;
        for (int j = 0; j < kk; j++) {
            int64_t r = pool[knn->idx[i * kk + j]];
            if (loo && !self && r == cells[i]) { self = 1; continue; } /* the cell itself */
            if (n == kk - (loo ? 1 : 0)) break;
            nb[n] = codes[r];
            dd[n++] = knn->dist[i * kk + j];
        }
        int best = sx_transfer_vote(nb, o->k, nc, w);
        double md = 0;
        for (int j = 0; j < o->k; j++) md += dd[j] / o->k;
        sx_transfer_raw_prob(nb, dd, n, nc, w);
        h->x[h->n] = w[best];
        h->y[h->n] = best == codes[cells[i]];
        h->d[h->n] = md;
        h->cls[h->n++] = codes[cells[i]];
    }
    sx_knn_free(knn);
    sx_free(P);
    sx_free(Q);
    sx_free(nb);
    sx_free(w);
    sx_free(dd);
    return rc;
}

/* Leave-one-batch-out over the held-out cells (by_batch), else leave-one-out. */
static int hold_out(const double *ref, int64_t n_ref, const int32_t *codes, int nc, int dim,
                    const sx_transfer_opts *o, int kp, const int64_t *sel, int64_t ns,
                    int by_batch, int32_t n_batch, held *h, sx_status *st)
{
    int64_t *pool = sx_mallocarray(n_ref, sizeof *pool);
    int64_t *cells = sx_mallocarray(ns, sizeof *cells);
    int rc = pool && cells ? SX_OK : sx_status_set(st, SX_ENOMEM, "out of memory");
    if (rc == SX_OK && !by_batch) {
        for (int64_t i = 0; i < n_ref; i++) pool[i] = i;
        rc = score_held(ref, codes, nc, dim, o, kp, sel, ns, pool, n_ref, 1, h, st);
    }
    for (int32_t b = 0; rc == SX_OK && by_batch && b < n_batch; b++) {
        int64_t np = 0, m = 0;
        for (int64_t i = 0; i < n_ref; i++)
            if (o->ref_batch[i] != b) pool[np++] = i;
        for (int64_t i = 0; i < ns; i++)
            if (o->ref_batch[sel[i]] == b) cells[m++] = sel[i];
        rc = score_held(ref, codes, nc, dim, o, kp, cells, m, pool, np, 0, h, st);
    }
    sx_free(pool);
    sx_free(cells);
    return rc;
}

typedef struct pt {
    double x, y;
} pt;

static int cmp_pt(const void *a, const void *b)
{
    double x = ((const pt *)a)->x, y = ((const pt *)b)->x;
    return (x > y) - (x < y);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Isotonic (non-decreasing) regression of y on x by pool-adjacent-violators; equal x values
 * share one block. Knots at each block's mean x; values shrunk towards 1/2 by one pseudo-
 * observation (a block of a few cells never says 0 or 1). */
static int isotonic_fit(const held *h, sx_transfer_calib *cal)
{
    int64_t n = h->n;
    pt *p = sx_mallocarray(n + 1, sizeof *p);
    double *sx = sx_mallocarray(n + 1, sizeof *sx), *sy = sx_mallocarray(n + 1, sizeof *sy);
    double *cnt = sx_mallocarray(n + 1, sizeof *cnt);
    if (!p || !sx || !sy || !cnt) {
        sx_free(p), sx_free(sx), sx_free(sy), sx_free(cnt);
        return 0;
    }
    for (int64_t i = 0; i < n; i++) p[i] = (pt){h->x[i], h->y[i]};
    qsort(p, (size_t)n, sizeof *p, cmp_pt);
    int64_t nb = 0;
    for (int64_t i = 0; i < n; i++) {
        if (nb && p[i].x == sx[nb - 1] / cnt[nb - 1]) { /* tie with the last block's x */
            sx[nb - 1] += p[i].x, sy[nb - 1] += p[i].y, cnt[nb - 1] += 1;
        } else {
            sx[nb] = p[i].x, sy[nb] = p[i].y, cnt[nb] = 1;
            nb++;
        }
        while (nb > 1 && sy[nb - 2] / cnt[nb - 2] >= sy[nb - 1] / cnt[nb - 1]) {
            sx[nb - 2] += sx[nb - 1], sy[nb - 2] += sy[nb - 1], cnt[nb - 2] += cnt[nb - 1];
            nb--;
        }
    }
    for (int64_t b = 0; b < nb; b++) {
        sx[b] /= cnt[b];
        sy[b] = (sy[b] + 0.5) / (cnt[b] + 1.0);
        if (b && sy[b] < sy[b - 1]) sy[b] = sy[b - 1]; /* the shrinkage may not un-sort */
    }
    sx_free(p);
    sx_free(cnt);
    cal->knot_x = sx;
    cal->knot_y = sy;
    cal->n_knots = (int)nb;
    return 1;
}

double sx_transfer_median(double *a, int64_t n)
{
    qsort(a, (size_t)n, sizeof *a, cmp_dbl);
    return n % 2 ? a[n / 2] : 0.5 * (a[n / 2 - 1] + a[n / 2]);
}

/* Robust location and scale of the log distances of cells cls == c (c < 0: all): median and
 * 1.4826 x MAD (the normal's SD), the scale at least SX_TRANSFER_MIN_LOG_SD; 0 when fewer
 * than 5 cells. */
static int log_stats(const held *h, int c, double *tmp, double *loc, double *scale)
{
    int64_t m = 0;
    for (int64_t i = 0; i < h->n; i++)
        if (c < 0 || h->cls[i] == c) tmp[m++] = log(h->d[i] > 1e-300 ? h->d[i] : 1e-300);
    if (m < 5) return 0;
    *loc = sx_transfer_median(tmp, m);
    for (int64_t i = 0; i < m; i++) tmp[i] = fabs(tmp[i] - *loc);
    *scale = 1.4826 * sx_transfer_median(tmp, m);
    if (*scale < SX_TRANSFER_MIN_LOG_SD) *scale = SX_TRANSFER_MIN_LOG_SD;
    return 1;
}

/* Per class (and for all cells, at index nc) the log-distance location and scale. */
static int distance_stats(const held *h, int nc, sx_transfer_calib *cal)
{
    cal->loc = sx_calloc((size_t)nc + 1, sizeof *cal->loc);
    cal->scale = sx_calloc((size_t)nc + 1, sizeof *cal->scale);
    double *tmp = sx_mallocarray((size_t)h->n + 1, sizeof *tmp);
    if (!cal->loc || !cal->scale || !tmp) {
        sx_free(tmp);
        return 0;
    }
    if (!log_stats(h, -1, tmp, &cal->loc[nc], &cal->scale[nc])) cal->scale[nc] = -1;
    for (int c = 0; c < nc; c++)
        if (!log_stats(h, c, tmp, &cal->loc[c], &cal->scale[c])) {
            /* a class with under 5 held-out cells has no distribution of its own */
            cal->loc[c] = cal->loc[nc];
            cal->scale[c] = cal->scale[nc];
        }
    sx_free(tmp);
    return 1;
}

/* Appends to out[*n...] the log mean distance of each of cells[0..m) to its k nearest rows
 * among pool[0..np) (indices into ref); nothing when the pool has under k rows. */
static int pool_log_dists(const double *ref, int dim, const int64_t *pool, int64_t np,
                          const int64_t *cells, int64_t m, const sx_transfer_opts *o,
                          double *out, int64_t *n, sx_status *st)
{
    if (m == 0 || np < o->k) return SX_OK;
    double *P = gather(ref, dim, pool, np), *Q = gather(ref, dim, cells, m);
    sx_knn *knn = NULL;
    int rc = P && Q ? SX_OK : sx_status_set(st, SX_ENOMEM, "out of memory");
    sx_knn_opts ko;
    sx_knn_opts_init(&ko);
    ko.n_threads = o->n_threads;
    if (rc == SX_OK && !(knn = sx_knn_exact(P, np, Q, m, dim, o->k, &ko, NULL, st))) rc = st->code;
    for (int64_t i = 0; rc == SX_OK && i < m; i++) {
        double md = 0;
        for (int j = 0; j < o->k; j++) md += knn->dist[i * o->k + j] / o->k;
        out[(*n)++] = log(md > 1e-300 ? md : 1e-300);
    }
    sx_knn_free(knn);
    sx_free(P);
    sx_free(Q);
    return rc;
}

/* Log distances of the held-out cells sel[0..ns) of classes other than c to the cells of
 * class c (of the other batches, by_batch, as the held-out distances are taken) into out;
 * their count in *n. */
static int other_class_dists(const double *ref, int64_t n_ref, const int32_t *codes, int dim,
                             const sx_transfer_opts *o, const int64_t *sel, int64_t ns,
                             int by_batch, int32_t n_batch, int c, int64_t *pool,
                             int64_t *cells, double *out, int64_t *n, sx_status *st)
{
    int rc = SX_OK;
    *n = 0;
    for (int32_t b = 0; rc == SX_OK && b < (by_batch ? n_batch : 1); b++) {
        int64_t np = 0, m = 0;
        for (int64_t i = 0; i < n_ref; i++)
            if (codes[i] == c && (!by_batch || o->ref_batch[i] != b)) pool[np++] = i;
        for (int64_t i = 0; i < ns; i++)
            if (codes[sel[i]] != c && (!by_batch || o->ref_batch[sel[i]] == b))
                cells[m++] = sel[i];
        rc = pool_log_dists(ref, dim, pool, np, cells, m, o, out, n, st);
    }
    return rc;
}

#define SX_GAP_Z 4.6526957480816815 /* 2 x the normal's 99% quantile */

/* The scale of each class's log distances from the gap to the other classes: how far cells
 * of other classes lie from class c (the median of their log distances to c's cells, B_c)
 * less c's own location, over SX_GAP_Z: a cell halfway (in log distance) from its label's
 * typical held-out cell to where other labels' cells lie gets z = 2.33, mapping score 0.01.
 * Why not the spread (MAD) of the held-out distances themselves: the longer the training,
 * the wider each class spreads in the latent while the distance between classes stays
 * (cellbench_3cl: log distances within a class -0.22 at 3000 steps, 0.42 at the default
 * budget; between classes about 1.2 at both), so a fixed tail of the spread called 90% of
 * a left-out type's cells Unknown at 3000 steps and 38% at the default budget; the gap
 * keeps 83% and 95% (bench/unknown_eval.py, docs/tutorials/label_transfer_trust.md). A class with under 5 cells or no other class at hand takes the
 * median scale of the others (the spread's scale when none has one). */
static int gap_scales(const double *ref, int64_t n_ref, const int32_t *codes, int nc, int dim,
                      const sx_transfer_opts *o, const int64_t *sel, int64_t ns, int by_batch,
                      int32_t n_batch, const held *hd, sx_transfer_calib *cal, sx_status *st)
{
    int64_t *pool = sx_mallocarray(n_ref, sizeof *pool), *cells = sx_mallocarray(ns, sizeof *cells);
    double *logs = sx_mallocarray(ns + 1, sizeof *logs), *gap = sx_mallocarray(nc, sizeof *gap);
    int64_t *own = sx_calloc(nc, sizeof *own);
    int rc = pool && cells && logs && gap && own ? SX_OK
                                                : sx_status_set(st, SX_ENOMEM, "out of memory");
    int ng = 0;
    for (int64_t i = 0; rc == SX_OK && i < hd->n; i++) own[hd->cls[i]]++;
    for (int c = 0; rc == SX_OK && c < nc; c++) {
        int64_t n = 0;
        rc = other_class_dists(ref, n_ref, codes, dim, o, sel, ns, by_batch, n_batch, c, pool,
                               cells, logs, &n, st);
        if (rc || n < 5 || own[c] < 5) {
            own[c] = -1; /* no gap of its own */
            continue;
        }
        double s = (sx_transfer_median(logs, n) - cal->loc[c]) / SX_GAP_Z;
        cal->scale[c] = s > SX_TRANSFER_MIN_LOG_SD ? s : SX_TRANSFER_MIN_LOG_SD;
        gap[ng++] = cal->scale[c];
    }
    double fallback = ng ? sx_transfer_median(gap, ng) : 0;
    for (int c = 0; rc == SX_OK && ng && c < nc; c++)
        if (own[c] < 0) cal->scale[c] = fallback;
    sx_free(pool);
    sx_free(cells);
    sx_free(logs);
    sx_free(gap);
    sx_free(own);
    return rc;
}

int sx_transfer_calib_fit(const double *ref, int64_t n_ref, const int32_t *codes, int nc,
                          int dim, const sx_transfer_opts *o, int kp, sx_transfer_calib *cal,
                          sx_status *st)
{
    memset(cal, 0, sizeof *cal);
    cal->n_classes = nc;
    int32_t n_batch = 0;
    for (int64_t i = 0; o->ref_batch && i < n_ref; i++)
        if (o->ref_batch[i] >= n_batch) n_batch = o->ref_batch[i] + 1;
    int by_batch = n_batch >= 2;
    int64_t ns = 0;
    int64_t *sel = pick_cells(n_ref, o->calib_max, o->seed, &ns);
    held h = {0};
    /* room for both passes: leave-one-batch-out, then leave-one-out */
    h.x = sx_mallocarray(2 * ns + 1, sizeof *h.x);
    h.y = sx_mallocarray(2 * ns + 1, sizeof *h.y);
    h.d = sx_mallocarray(2 * ns + 1, sizeof *h.d);
    h.cls = sx_mallocarray(2 * ns + 1, sizeof *h.cls);
    int rc = sel && h.x && h.y && h.d && h.cls ? SX_OK
                                                : sx_status_set(st, SX_ENOMEM, "out of memory");
    if (rc == SX_OK)
        rc = hold_out(ref, n_ref, codes, nc, dim, o, kp, sel, ns, by_batch, n_batch, &h, st);
    if (rc == SX_OK && h.n == 0) /* every batch too small to predict from the others */
        rc = hold_out(ref, n_ref, codes, nc, dim, o, kp, sel, ns, by_batch = 0, 0, &h, st);
    /* the mapping distances: the first pass's (a new batch lies as far as another batch) */
    held hd = h;
    /* the confidence: leave-one-batch-out answers too few right (half the reference, and
     * the reference's two most different batches), leave-one-out too many (the same batch):
     * pooled, they bracket a new batch (pbmc_3tech: ECE 0.043 against 0.052 and 0.053) */
    if (rc == SX_OK && by_batch && o->isotonic)
        rc = hold_out(ref, n_ref, codes, nc, dim, o, kp, sel, ns, 0, 0, &h, st);
    cal->n_calib = h.n;
    cal->by_batch = by_batch;
    if (rc == SX_OK && ((o->isotonic && !isotonic_fit(&h, cal)) || !distance_stats(&hd, nc, cal)))
        rc = sx_status_set(st, SX_ENOMEM, "out of memory");
    if (rc == SX_OK)
        rc = gap_scales(ref, n_ref, codes, nc, dim, o, sel, ns, by_batch, n_batch, &hd, cal, st);
    sx_free(sel);
    sx_free(h.x);
    sx_free(h.y);
    sx_free(h.d);
    sx_free(h.cls);
    if (rc) sx_transfer_calib_clear(cal);
    return rc;
}

double sx_transfer_calib_conf(const sx_transfer_calib *cal, double raw)
{
    int n = cal->n_knots;
    if (n == 0) return raw;
    if (raw <= cal->knot_x[0]) return cal->knot_y[0];
    if (raw >= cal->knot_x[n - 1]) return cal->knot_y[n - 1];
    int j = 1;
    while (cal->knot_x[j] < raw) j++;
    double t = (raw - cal->knot_x[j - 1]) / (cal->knot_x[j] - cal->knot_x[j - 1]);
    return cal->knot_y[j - 1] + t * (cal->knot_y[j] - cal->knot_y[j - 1]);
}

double sx_transfer_calib_z(const sx_transfer_calib *cal, int c, double mean_dist)
{
    double scale = cal->scale[c];
    if (scale <= 0 || mean_dist <= 0) return -INFINITY; /* nothing to compare with / exact */
    return (log(mean_dist) - cal->loc[c]) / scale;
}

void sx_transfer_calib_clear(sx_transfer_calib *cal)
{
    sx_free(cal->knot_x);
    sx_free(cal->knot_y);
    sx_free(cal->loc);
    sx_free(cal->scale);
    memset(cal, 0, sizeof *cal);
}

int sx_transfer_calibrate(const double *ref, int64_t n_ref, const char *const *ref_labels,
                          int dim, const sx_transfer_opts *o, sx_transfer_calib *cal,
                          sx_status *st)
{
    memset(cal, 0, sizeof *cal);
    if (!o->calibrate || n_ref <= o->k)
        return sx_status_set(st, SX_EINVAL, "label transfer: nothing to calibrate (%lld "
                             "reference cells, k %d)", (long long)n_ref, o->k);
    int32_t *codes = sx_mallocarray((size_t)n_ref + 1, sizeof *codes);
    char **classes = NULL;
    int nc = 0;
    int rc = codes ? sx_labels_encode(ref_labels, n_ref, codes, &classes, &nc, st)
                   : sx_status_set(st, SX_ENOMEM, "out of memory");
    /* the kp of a transfer with these options (sx_transfer_from_knn) */
    if (rc == SX_OK)
        rc = sx_transfer_calib_fit(ref, n_ref, codes, nc, dim, o, sx_transfer_k_needed(o, n_ref),
                                   cal, st);
    if (classes) sx_labels_free(classes, nc);
    sx_free(codes);
    return rc;
}

typedef struct calib_head {
    int32_t n_classes, n_knots;
    int64_t n_calib;
    int32_t by_batch, pad;
} calib_head;

size_t sx_transfer_calib_serial_size(const sx_transfer_calib *cal)
{
    return sizeof(calib_head) +
           sizeof(double) * (2 * (size_t)cal->n_knots + 2 * ((size_t)cal->n_classes + 1));
}

int sx_transfer_calib_write(const sx_transfer_calib *cal,
                            int (*put)(void *user, const void *p, size_t n), void *user)
{
    calib_head h = {cal->n_classes, cal->n_knots, cal->n_calib, cal->by_batch, 0};
    size_t nk = (size_t)cal->n_knots, nc1 = (size_t)cal->n_classes + 1;
    int rc = put(user, &h, sizeof h);
    if (!rc && nk) rc = put(user, cal->knot_x, nk * sizeof(double));
    if (!rc && nk) rc = put(user, cal->knot_y, nk * sizeof(double));
    if (!rc) rc = put(user, cal->loc, nc1 * sizeof(double));
    if (!rc) rc = put(user, cal->scale, nc1 * sizeof(double));
    return rc;
}

/* n doubles from *p (advanced), each finite, into a new array; NULL when out of memory */
static double *read_doubles(const unsigned char **p, size_t n, int *bad)
{
    double *a = sx_mallocarray(n + 1, sizeof *a);
    if (!a) return NULL;
    memcpy(a, *p, n * sizeof *a);
    *p += n * sizeof *a;
    for (size_t i = 0; i < n; i++) *bad |= !isfinite(a[i]);
    return a;
}

int sx_transfer_calib_read(const void *bytes, size_t len, sx_transfer_calib *cal, sx_status *st)
{
    memset(cal, 0, sizeof *cal);
    calib_head h;
    if (len < sizeof h) return sx_status_set(st, SX_EFORMAT, "calibration: truncated");
    memcpy(&h, bytes, sizeof h);
    if (h.n_classes < 1 || h.n_classes > (1 << 24) || h.n_knots < 0 || h.n_knots > (1 << 26) ||
        h.n_calib < 0 || (h.by_batch != 0 && h.by_batch != 1))
        return sx_status_set(st, SX_EFORMAT, "calibration: bad sizes");
    cal->n_classes = h.n_classes;
    cal->n_knots = h.n_knots;
    if (sx_transfer_calib_serial_size(cal) != len) {
        memset(cal, 0, sizeof *cal);
        return sx_status_set(st, SX_EFORMAT, "calibration: %zu bytes, not its size", len);
    }
    const unsigned char *p = (const unsigned char *)bytes + sizeof h;
    int bad = 0;
    size_t nk = (size_t)h.n_knots, nc1 = (size_t)h.n_classes + 1;
    cal->knot_x = read_doubles(&p, nk, &bad);
    cal->knot_y = read_doubles(&p, nk, &bad);
    cal->loc = read_doubles(&p, nc1, &bad);
    cal->scale = read_doubles(&p, nc1, &bad);
    cal->n_calib = h.n_calib;
    cal->by_batch = h.by_batch;
    if (!cal->knot_x || !cal->knot_y || !cal->loc || !cal->scale) {
        sx_transfer_calib_clear(cal);
        return sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    for (size_t i = 1; i < nk; i++) /* sx_transfer_calib_conf interpolates between knots */
        bad |= cal->knot_x[i] < cal->knot_x[i - 1] || cal->knot_y[i] < cal->knot_y[i - 1];
    if (bad) {
        sx_transfer_calib_clear(cal);
        return sx_status_set(st, SX_EFORMAT, "calibration: values out of order or not finite");
    }
    return SX_OK;
}
