#include "sx_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_embed_internal.h"
#include "sx_knn.h"

/* ------------------------------------------------------------- labels ---- */

typedef struct sref {
    const char *s;
    int64_t i;
} sref;

static int sref_cmp(const void *a, const void *b)
{
    const sref *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    if (c) return c;
    return (x->i > y->i) - (x->i < y->i);
}

void sx_labels_free(char **classes, int n_classes)
{
    if (!classes) return;
    for (int i = 0; i < n_classes; i++) sx_free(classes[i]);
    sx_free(classes);
}

int sx_labels_encode(const char *const *s, int64_t n, int32_t *codes, char ***classes,
                     int *n_classes, sx_status *st)
{
    *classes = NULL;
    *n_classes = 0;
    sref *r = sx_mallocarray(n ? n : 1, sizeof *r);
    char **cl = NULL;
    int nc = 0;
    if (!r) goto oom;
    for (int64_t i = 0; i < n; i++) {
        if (!s[i]) {
            sx_free(r);
            return sx_status_set(st, SX_EDATA, "labels: entry %lld is missing", (long long)i);
        }
        r[i] = (sref){s[i], i};
    }
    qsort(r, n, sizeof *r, sref_cmp);
    for (int64_t i = 0; i < n; i++)
        if (i == 0 || strcmp(r[i].s, r[i - 1].s)) nc++;
    cl = sx_calloc(nc ? nc : 1, sizeof *cl);
    if (!cl) goto oom;
    int c = -1;
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(r[i].s, r[i - 1].s)) {
            c++;
            cl[c] = sx_strdup(r[i].s);
            if (!cl[c]) goto oom;
        }
        codes[r[i].i] = c;
    }
    sx_free(r);
    *classes = cl;
    *n_classes = nc;
    return SX_OK;
oom:
    sx_free(r);
    sx_labels_free(cl, nc);
    return sx_status_set(st, SX_ENOMEM, "labels: out of memory encoding %lld labels", (long long)n);
}

/* --------------------------------------------------------------- BEMS ---- */

int sx_metrics_bems(const double *x, int64_t n, int dim, const int32_t *batch, int n_batches,
                    int n_neighbors, int n_pools, int n_samples, const int64_t *sampled,
                    uint64_t seed, int n_threads, double *score, double *score_norm,
                    const sx_progress *prog, sx_status *st)
{
    int rc = SX_OK;
    double *P = NULL, *p = NULL;
    sx_knn *knn = NULL;
    if (n < 2 || n_batches < 2 || n_pools < 1 || n_samples < 1)
        return sx_status_set(st, SX_EINVAL,
                             "batch mixing: need >= 2 cells, >= 2 batches and positive pool sizes");
    P = sx_calloc(n_batches, sizeof *P);
    p = sx_calloc(n_batches, sizeof *p);
    if (!P || !p) {
        rc = sx_status_set(st, SX_ENOMEM, "batch mixing: out of memory");
        goto out;
    }
    for (int64_t i = 0; i < n; i++) {
        if (batch[i] < 0 || batch[i] >= n_batches) {
            rc = sx_status_set(st, SX_EDATA, "batch mixing: batch code %d of cell %lld out of range",
                               batch[i], (long long)i);
            goto out;
        }
        P[batch[i]] += 1;
    }
    int present = 0;
    for (int b = 0; b < n_batches; b++) {
        present += P[b] > 0;
        P[b] /= (double)n;
    }
    if (present < 2) {
        rc = sx_status_set(st, SX_EDATA, "batch mixing: only one batch present; need at least two");
        goto out;
    }
    int k = n_neighbors < n - 1 ? n_neighbors : (int)(n - 1);
    sx_knn_opts ko;
    sx_knn_opts_init(&ko);
    ko.n_threads = n_threads;
    knn = sx_knn_exact(x, n, NULL, 0, dim, k + 1, &ko, prog, st); /* self first, then k */
    if (!knn) {
        rc = st ? st->code : SX_EINTERNAL;
        goto out;
    }
    sx_rng rng;
    sx_rng_seed(&rng, seed, 0xbe35);
    double total = 0;
    for (int t = 0; t < n_pools; t++) {
        double pool = 0;
        for (int s = 0; s < n_samples; s++) {
            int64_t c = sampled ? sampled[(int64_t)t * n_samples + s] : sx_rng_below(&rng, n);
            if (c < 0 || c >= n) {
                rc = sx_status_set(st, SX_EINVAL, "batch mixing: sampled cell %lld out of range",
                                   (long long)c);
                goto out;
            }
            memset(p, 0, n_batches * sizeof *p);
            for (int j = 1; j <= k; j++) p[batch[knn->idx[c * (k + 1) + j]]] += 1;
            double a = 0;
            /* numpy: p = mean(batches == b) over the neighbours; only batches present
             * globally enter (np.unique of the data) */
            for (int b = 0; b < n_batches; b++)
                if (P[b] > 0) {
                    p[b] /= k;
                    a += p[b] / P[b];
                }
            double h = 0;
            for (int b = 0; b < n_batches; b++)
                if (P[b] > 0) {
                    double q = (p[b] / P[b]) / a;
                    h -= q * log(q + 1e-8);
                }
            pool += h;
        }
        total += pool / n_samples;
    }
    double mean_h = total / n_pools;
    if (score) *score = mean_h / log2((double)present);
    if (score_norm) *score_norm = mean_h / log((double)present);
out:
    sx_free(P);
    sx_free(p);
    sx_knn_free(knn);
    return rc;
}

/* --------------------------------------------------------- silhouette ---- */

int sx_metrics_silhouette(const double *x, int64_t n, int dim, const int32_t *labels,
                          int n_labels, double *score, sx_status *st)
{
    int64_t *cnt = sx_calloc(n_labels ? n_labels : 1, sizeof *cnt);
    double *sum = sx_mallocarray(n_labels ? n_labels : 1, sizeof *sum);
    int rc = SX_OK;
    if (!cnt || !sum) {
        rc = sx_status_set(st, SX_ENOMEM, "silhouette: out of memory");
        goto out;
    }
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= n_labels) {
            rc = sx_status_set(st, SX_EDATA, "silhouette: label code %d of cell %lld out of range",
                               labels[i], (long long)i);
            goto out;
        }
        cnt[labels[i]]++;
    }
    int present = 0;
    for (int c = 0; c < n_labels; c++) present += cnt[c] > 0;
    if (present < 2 || present > n - 1) {
        rc = sx_status_set(st, SX_EDATA,
                           "silhouette: %d labels present for %lld cells; need 2 <= labels <= n-1",
                           present, (long long)n);
        goto out;
    }
    double tot = 0;
    for (int64_t i = 0; i < n; i++) {
        memset(sum, 0, n_labels * sizeof *sum);
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int d = 0; d < dim; d++) {
                double t = x[i * dim + d] - x[j * dim + d];
                s += t * t;
            }
            sum[labels[j]] += sqrt(s);
        }
        int li = labels[i];
        if (cnt[li] <= 1) continue; /* s = 0 */
        double a = sum[li] / (double)(cnt[li] - 1), b = INFINITY;
        for (int c = 0; c < n_labels; c++)
            if (c != li && cnt[c] > 0 && sum[c] / cnt[c] < b) b = sum[c] / cnt[c];
        double mx = a > b ? a : b;
        if (mx > 0) tot += (b - a) / mx;
    }
    *score = tot / (double)n;
out:
    sx_free(cnt);
    sx_free(sum);
    return rc;
}

/* ------------------------------------------------------ ARI and NMI ---- */

/* Contingency table as (a, b) -> count over dense relabelled codes. */
typedef struct cont {
    int na, nb;
    int64_t *t; /* na x nb */
    int64_t *ra, *rb;
} cont;

static int cont_build(const int32_t *a, const int32_t *b, int64_t n, cont *c)
{
    memset(c, 0, sizeof *c);
    int32_t ma = -1, mb = -1;
    for (int64_t i = 0; i < n; i++) {
        if (a[i] > ma) ma = a[i];
        if (b[i] > mb) mb = b[i];
    }
    int32_t *mapa = sx_mallocarray(ma + 2, sizeof *mapa), *mapb = sx_mallocarray(mb + 2, sizeof *mapb);
    if (!mapa || !mapb) goto fail;
    for (int32_t i = 0; i <= ma; i++) mapa[i] = -1;
    for (int32_t i = 0; i <= mb; i++) mapb[i] = -1;
    for (int64_t i = 0; i < n; i++) {
        if (mapa[a[i]] < 0) mapa[a[i]] = c->na++;
        if (mapb[b[i]] < 0) mapb[b[i]] = c->nb++;
    }
    c->t = sx_calloc((size_t)(c->na ? c->na : 1) * (c->nb ? c->nb : 1), sizeof *c->t);
    c->ra = sx_calloc(c->na ? c->na : 1, sizeof *c->ra);
    c->rb = sx_calloc(c->nb ? c->nb : 1, sizeof *c->rb);
    if (!c->t || !c->ra || !c->rb) goto fail;
    for (int64_t i = 0; i < n; i++) {
        int x = mapa[a[i]], y = mapb[b[i]];
        c->t[(int64_t)x * c->nb + y]++;
        c->ra[x]++;
        c->rb[y]++;
    }
    sx_free(mapa);
    sx_free(mapb);
    return 0;
fail:
    sx_free(mapa);
    sx_free(mapb);
    sx_free(c->t);
    sx_free(c->ra);
    sx_free(c->rb);
    return -1;
}

static void cont_free(cont *c)
{
    sx_free(c->t);
    sx_free(c->ra);
    sx_free(c->rb);
}

double sx_metrics_ari(const int32_t *a, const int32_t *b, int64_t n)
{
    cont c;
    if (n == 0 || cont_build(a, b, n, &c)) return NAN;
    __int128 ss = 0, ck = 0, kc = 0;
    for (int x = 0; x < c.na; x++)
        for (int y = 0; y < c.nb; y++) {
            __int128 v = c.t[(int64_t)x * c.nb + y];
            ss += v * v;
            ck += v * c.rb[y];
            kc += v * c.ra[x];
        }
    __int128 N = n;
    __int128 tp = ss - N, fp = ck - ss, fn = kc - ss, tn = N * N - fp - fn - ss;
    cont_free(&c);
    if (fn == 0 && fp == 0) return 1.0;
    /* sklearn: 2 (tp tn - fn fp) / ((tp + fn)(fn + tn) + (tp + fp)(fp + tn)) on exact ints */
    long double num = 2.0L * (long double)(tp * tn - fn * fp);
    long double den = (long double)((tp + fn) * (fn + tn)) + (long double)((tp + fp) * (fp + tn));
    return (double)(num / den);
}

static double entropy_counts(const int64_t *cnt, int m)
{
    double s = 0, tot = 0;
    for (int i = 0; i < m; i++) tot += (double)cnt[i];
    if (tot == 0) return 1.0;
    double lt = log(tot);
    for (int i = 0; i < m; i++)
        if (cnt[i] > 0) s -= ((double)cnt[i] / tot) * (log((double)cnt[i]) - lt);
    return s;
}

double sx_metrics_nmi(const int32_t *a, const int32_t *b, int64_t n)
{
    cont c;
    if (n == 0) return 1.0;
    if (cont_build(a, b, n, &c)) return NAN;
    double r;
    if ((c.na == 1 && c.nb == 1) || (c.na == 0 && c.nb == 0)) {
        r = 1.0;
    } else {
        double mi = 0;
        if (c.na > 1 && c.nb > 1) {
            double N = (double)n, lsa = log(N), lsb = log(N);
            for (int x = 0; x < c.na; x++)
                for (int y = 0; y < c.nb; y++) {
                    int64_t v = c.t[(int64_t)x * c.nb + y];
                    if (!v) continue;
                    double cn = (double)v / N;
                    double lo = -log((double)(c.ra[x] * c.rb[y])) + lsa + lsb;
                    double t = cn * (log((double)v) - log(N)) + cn * lo;
                    if (fabs(t) < 2.220446049250313e-16) t = 0;
                    mi += t;
                }
            if (mi < 0) mi = 0;
        }
        if (mi == 0) r = 0.0;
        else {
            double ha = entropy_counts(c.ra, c.na), hb = entropy_counts(c.rb, c.nb);
            r = mi / ((ha + hb) / 2.0);
        }
    }
    cont_free(&c);
    return r;
}

/* ---------------------------------------------------- classification ---- */

double sx_metrics_accuracy(const int32_t *truth, const int32_t *pred, int64_t n)
{
    if (n == 0) return 0;
    int64_t ok = 0;
    for (int64_t i = 0; i < n; i++) ok += pred[i] >= 0 && pred[i] == truth[i];
    return (double)ok / (double)n;
}

double sx_metrics_macro_f1(const int32_t *truth, const int32_t *pred, int64_t n, int nc)
{
    int64_t *tp = sx_calloc(nc ? nc : 1, sizeof *tp), *np = sx_calloc(nc ? nc : 1, sizeof *np),
            *nt = sx_calloc(nc ? nc : 1, sizeof *nt);
    double f = NAN;
    if (!tp || !np || !nt) goto out;
    for (int64_t i = 0; i < n; i++) {
        if (truth[i] >= 0 && truth[i] < nc) nt[truth[i]]++;
        if (pred[i] >= 0 && pred[i] < nc) {
            np[pred[i]]++;
            if (pred[i] == truth[i]) tp[pred[i]]++;
        }
    }
    double s = 0;
    int m = 0;
    for (int c = 0; c < nc; c++) {
        if (!nt[c] && !np[c]) continue;
        m++;
        int64_t den = nt[c] + np[c];
        s += den ? 2.0 * tp[c] / (double)den : 0.0;
    }
    f = m ? s / m : 0.0;
out:
    sx_free(tp);
    sx_free(np);
    sx_free(nt);
    return f;
}

int sx_metrics_confusion(const int32_t *truth, const int32_t *pred, int64_t n, int nc,
                         int64_t *conf, sx_status *st)
{
    memset(conf, 0, (size_t)nc * nc * sizeof *conf);
    for (int64_t i = 0; i < n; i++) {
        if (truth[i] < 0 || truth[i] >= nc || pred[i] >= nc)
            return sx_status_set(st, SX_EDATA, "confusion: code out of range at cell %lld",
                                 (long long)i);
        if (pred[i] >= 0) conf[(int64_t)truth[i] * nc + pred[i]]++;
    }
    return SX_OK;
}

/* ---------------------------------------------------- trustworthiness ---- */

typedef struct tw_job {
    const double *x;
    int dim;
    int64_t n;
    int k;
    const int32_t *nbr; /* n x k embedded neighbours */
    int nth;
} tw_job;

typedef struct tw_worker {
    const tw_job *J;
    int id, failed;
    double t;
} tw_worker;

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void *tw_run(void *arg)
{
    tw_worker *w = arg;
    const tw_job *J = w->J;
    int64_t n = J->n;
    double *row = sx_mallocarray(n, sizeof *row), *srt = sx_mallocarray(n, sizeof *srt);
    if (!row || !srt) {
        w->failed = 1;
        goto out;
    }
    for (int64_t i = w->id; i < n; i += J->nth) {
        int64_t m = 0;
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int d = 0; d < J->dim; d++) {
                double t = J->x[i * J->dim + d] - J->x[j * J->dim + d];
                s += t * t;
            }
            row[j] = s;
            if (j != i) srt[m++] = s;
        }
        qsort(srt, m, sizeof *srt, dcmp);
        for (int q = 0; q < J->k; q++) {
            double dj = row[J->nbr[i * J->k + q]];
            int64_t lo = 0, hi = m; /* count of strictly smaller distances */
            while (lo < hi) {
                int64_t mid = (lo + hi) / 2;
                if (srt[mid] < dj) lo = mid + 1;
                else hi = mid;
            }
            int64_t rank = lo + 1;
            if (rank > J->k) w->t += (double)(rank - J->k);
        }
    }
out:
    sx_free(row);
    sx_free(srt);
    return NULL;
}

int sx_metrics_trustworthiness(const double *x, int dim, const double *e, int edim, int64_t n,
                               int k, int n_threads, double *score, sx_status *st)
{
    if (k < 1 || k >= n / 2)
        return sx_status_set(st, SX_EINVAL, "trustworthiness: n_neighbors %d must be < n/2 (n = %lld)",
                             k, (long long)n);
    sx_knn_opts ko;
    sx_knn_opts_init(&ko);
    ko.n_threads = n_threads;
    ko.exclude_self = 1;
    sx_knn *ek = sx_knn_exact(e, n, NULL, 0, edim, k, &ko, NULL, st);
    if (!ek) return st ? st->code : SX_EINTERNAL;
    tw_job J = {x, dim, n, k, ek->idx, sx_embed_threads(n_threads)};
    tw_worker ws[256];
    pthread_t th[256];
    int started;
    for (int t = 0; t < J.nth; t++) ws[t] = (tw_worker){&J, t, 0, 0};
    for (started = 1; started < J.nth; started++)
        if (pthread_create(&th[started], NULL, tw_run, &ws[started])) break;
    tw_run(&ws[0]);
    for (int t = 1; t < started; t++) pthread_join(th[t], NULL);
    for (int t = started; t < J.nth; t++) tw_run(&ws[t]);
    sx_knn_free(ek);
    double tot = 0;
    for (int t = 0; t < J.nth; t++) {
        if (ws[t].failed) return sx_status_set(st, SX_ENOMEM, "trustworthiness: out of memory");
        tot += ws[t].t;
    }
    double N = (double)n;
    *score = 1.0 - tot * (2.0 / (N * k * (2.0 * N - 3.0 * k - 1.0)));
    return SX_OK;
}
