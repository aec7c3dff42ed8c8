/* sx_transfer — the kNN vote and the per-cell trust of each query cell (see the header). */
#include "sx_transfer.h"

#include <math.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_knn.h"
#include "sx_metrics.h"

void sx_transfer_opts_init(sx_transfer_opts *o)
{
    memset(o, 0, sizeof *o);
    o->k = 5;
    o->k_prob = SX_TRANSFER_K_PROB;
    o->calibrate = 1;
    o->calib_max = 2000;
}

void sx_transfer_free(sx_transfer_result *r)
{
    if (!r) return;
    sx_labels_free(r->classes, r->n_classes);
    sx_free(r->pred);
    sx_free(r->vote_pred);
    sx_free(r->vote_share);
    sx_free(r->confidence);
    sx_free(r->prob_distance);
    sx_free(r->prob);
    sx_free(r->mapping_score);
    sx_free(r->neighbors);
    sx_free(r->distances);
    sx_free(r->class_count);
    sx_free(r->class_mean_conf);
    sx_free(r);
}

const char *sx_transfer_label(const sx_transfer_result *r, int64_t i)
{
    int32_t c = r->pred[i];
    return c < 0 ? SX_TRANSFER_UNKNOWN : r->classes[c];
}

void sx_transfer_raw_prob(const int32_t *nb_codes, const double *d, int kp, int nc, double *w)
{
    memset(w, 0, (size_t)nc * sizeof *w);
    int zero = 0;
    for (int j = 0; j < kp; j++) zero |= d[j] == 0;
    double sum = 0;
    for (int j = 0; j < kp; j++) {
        /* sklearn weights='distance': 1/d, and exact matches take all the weight */
        double x = zero ? (d[j] == 0 ? 1.0 : 0.0) : 1.0 / d[j];
        w[nb_codes[j]] += x;
        sum += x;
    }
    for (int c = 0; c < nc; c++) w[c] = sum > 0 ? w[c] / sum : 1.0 / nc;
}

int sx_transfer_vote(const int32_t *nb_codes, int k, int nc, double *votes)
{
    memset(votes, 0, (size_t)nc * sizeof *votes);
    for (int j = 0; j < k; j++) votes[nb_codes[j]] += 1;
    int best = 0; /* argmax: first (sorted) class among ties, as sklearn */
    for (int c = 1; c < nc; c++)
        if (votes[c] > votes[best]) best = c;
    return best;
}

static int alloc_result(sx_transfer_result *r, int64_t nq, int nc)
{
    r->pred = sx_mallocarray(nq, sizeof *r->pred);
    r->vote_pred = sx_mallocarray(nq, sizeof *r->vote_pred);
    r->vote_share = sx_mallocarray(nq, sizeof *r->vote_share);
    r->confidence = sx_mallocarray(nq, sizeof *r->confidence);
    r->prob_distance = sx_mallocarray(nq, sizeof *r->prob_distance);
    r->prob = sx_mallocarray((size_t)nq * nc, sizeof *r->prob);
    r->mapping_score = sx_mallocarray(nq, sizeof *r->mapping_score);
    r->class_count = sx_calloc(nc, sizeof *r->class_count);
    r->class_mean_conf = sx_calloc(nc, sizeof *r->class_mean_conf);
    return r->pred && r->vote_pred && r->vote_share && r->confidence && r->prob_distance &&
           r->prob && r->mapping_score && r->class_count && r->class_mean_conf;
}

/* Calibrated probabilities of one row: the chosen class gets conf, the others share 1 - conf
 * in proportion to their raw weight (evenly when they have none). */
static void calibrated_row(const double *raw, int nc, int best, double conf, double *p)
{
    double rest = 1.0 - raw[best];
    for (int c = 0; c < nc; c++) {
        if (c == best) p[c] = conf;
        else if (rest > 1e-12) p[c] = (1.0 - conf) * raw[c] / rest;
        else p[c] = nc > 1 ? (1.0 - conf) / (nc - 1) : 0;
    }
    if (nc == 1) p[0] = 1.0;
}

/* One query cell from its kp neighbours: vote, probabilities, confidence, and in
 * mapping_score for now the standardised log distance z (finish_cells turns it into the
 * score). */
static void score_cell(sx_transfer_result *r, int64_t i, const sx_knn *knn, const int32_t *codes,
                       int kp, const sx_transfer_opts *o, const sx_transfer_calib *cal,
                       int32_t *nb, double *votes, double *raw)
{
    int nc = r->n_classes, k = o->k;
    const double *d = knn->dist + i * kp;
    for (int j = 0; j < kp; j++) nb[j] = codes[knn->idx[i * kp + j]];
    int best = sx_transfer_vote(nb, k, nc, votes);
    r->vote_pred[i] = best;
    r->vote_share[i] = votes[best] / k;
    sx_transfer_raw_prob(nb, d, k, nc, raw);
    r->prob_distance[i] = raw[best];
    sx_transfer_raw_prob(nb, d, kp, nc, raw);
    double mean_d = 0;
    for (int j = 0; j < k; j++) mean_d += d[j] / k;
    double conf = !cal ? r->vote_share[i]
                  : o->isotonic ? sx_transfer_calib_conf(cal, raw[best]) : raw[best];
    r->confidence[i] = nc == 1 ? 1.0 : conf;
    r->mapping_score[i] = cal ? sx_transfer_calib_z(cal, best, mean_d) : -INFINITY;
    if (cal) calibrated_row(raw, nc, best, r->confidence[i], r->prob + i * nc);
    else memcpy(r->prob + i * nc, raw, (size_t)nc * sizeof *raw);
}

/* The query's shift: the median z of its cells when above 0 (a query from another batch or
 * technology lies farther from the reference than held-out reference cells do; the median
 * assumes most query cells are of types the reference knows). 0 when z is unknown. */
static int query_shift(const sx_transfer_result *r, double *shift)
{
    int64_t n = r->n_query;
    *shift = 0;
    if (n == 0 || r->mapping_score[0] == -INFINITY) return 1;
    double *z = sx_mallocarray(n, sizeof *z);
    if (!z) return 0;
    memcpy(z, r->mapping_score, (size_t)n * sizeof *z);
    double m = sx_transfer_median(z, n);
    sx_free(z);
    *shift = isfinite(m) && m > 0 ? m : 0;
    return 1;
}

/* Mapping scores from z less the query's shift, the Unknown thresholds, the class summary. */
static int finish_cells(sx_transfer_result *r, const sx_transfer_opts *o)
{
    if (!query_shift(r, &r->mapping_shift)) return 0;
    for (int64_t i = 0; i < r->n_query; i++) {
        double z = r->mapping_score[i] - r->mapping_shift;
        r->mapping_score[i] = 0.5 * erfc(z / sqrt(2.0)); /* 1 - Phi(z); z = -inf: 1 */
        int best = r->vote_pred[i];
        int unk = (o->unknown_below > 0 && r->confidence[i] < o->unknown_below) ||
                  (o->mapping_below > 0 && r->mapping_score[i] < o->mapping_below);
        r->pred[i] = unk ? -1 : best;
        if (unk) r->n_unknown++;
        else {
            r->class_count[best]++;
            r->class_mean_conf[best] += r->confidence[i];
        }
    }
    for (int c = 0; c < r->n_classes; c++)
        if (r->class_count[c]) r->class_mean_conf[c] /= (double)r->class_count[c];
    return 1;
}

/* Keep the first k of each row's kp neighbours as the result's neighbour lists. */
static int keep_first_k(sx_transfer_result *r, const sx_knn *knn, int kp)
{
    int k = r->k;
    int64_t n = r->n_query;
    r->neighbors = sx_mallocarray((size_t)n * k, sizeof *r->neighbors);
    r->distances = sx_mallocarray((size_t)n * k, sizeof *r->distances);
    if (!r->neighbors || !r->distances) return 0;
    for (int64_t i = 0; i < n; i++) {
        memcpy(r->neighbors + i * k, knn->idx + i * kp, (size_t)k * sizeof *r->neighbors);
        memcpy(r->distances + i * k, knn->dist + i * kp, (size_t)k * sizeof *r->distances);
    }
    return 1;
}

static int check_args(const sx_transfer_opts *o, int64_t n_ref, const double *query,
                      int64_t n_query, sx_status *st)
{
    if (o->k < 1 || o->k > n_ref)
        return sx_status_set(st, SX_EINVAL, "label transfer: k = %d but the reference has %lld "
                             "cells", o->k, (long long)n_ref);
    if (n_query < 1 || !query)
        return sx_status_set(st, SX_EINVAL, "label transfer: no query cells");
    return SX_OK;
}

int sx_transfer_k_needed(const sx_transfer_opts *opts, int64_t n_ref)
{
    sx_transfer_opts o;
    if (opts) o = *opts;
    else sx_transfer_opts_init(&o);
    /* probabilities from kp >= k neighbours; the held-out fit needs one cell to spare */
    int kp = o.k_prob > o.k ? o.k_prob : o.k;
    if (kp > n_ref - 1) kp = o.k > n_ref - 1 ? o.k : (int)n_ref - 1;
    return kp;
}

/* The vote, probabilities and trust of every query cell from its kp neighbours (knn). */
static sx_transfer_result *transfer_cells(const double *ref, int64_t n_ref,
                                          const char *const *ref_labels, int dim,
                                          const sx_knn *knn, int kp, const sx_transfer_opts *o,
                                          sx_status *st)
{
    int64_t n_query = knn->n_query;
    sx_transfer_result *r = sx_calloc(1, sizeof *r);
    int32_t *codes = sx_mallocarray(n_ref, sizeof *codes), *nb = NULL;
    double *votes = NULL, *raw = NULL;
    sx_transfer_calib cal = {0};
    if (!r || !codes) goto oom;
    if (sx_labels_encode(ref_labels, n_ref, codes, &r->classes, &r->n_classes, st)) goto fail;
    r->n_query = n_query;
    r->k = o->k;
    int nc = r->n_classes;
    votes = sx_mallocarray(nc, sizeof *votes);
    raw = sx_mallocarray(nc, sizeof *raw);
    nb = sx_mallocarray(kp, sizeof *nb);
    if (!alloc_result(r, n_query, nc) || !votes || !raw || !nb) goto oom;
    const sx_transfer_calib *use = NULL;
    if (o->calibrate && n_ref > o->k) {
        /* a calibration fitted before (sx_transfer_calibrate with these options) serves as
         * it is; its class count guards against one fitted on another label column */
        if (o->calib && o->calib->n_classes == nc) {
            use = o->calib;
            r->calib_given = 1;
        } else {
            if (sx_transfer_calib_fit(ref, n_ref, codes, nc, dim, o, kp, &cal, st)) goto fail;
            use = &cal;
        }
        r->n_calib = use->n_calib;
        r->calib_by_batch = use->by_batch;
    }
    for (int64_t i = 0; i < n_query; i++)
        score_cell(r, i, knn, codes, kp, o, use, nb, votes, raw);
    if (!finish_cells(r, o) || !keep_first_k(r, knn, kp)) goto oom;
    goto done;
oom:
    sx_status_set(st, SX_ENOMEM, "label transfer: out of memory for %lld query cells",
                  (long long)n_query);
fail:
    sx_transfer_free(r);
    r = NULL;
done:
    sx_transfer_calib_clear(&cal);
    sx_free(codes);
    sx_free(nb);
    sx_free(votes);
    sx_free(raw);
    return r;
}

sx_transfer_result *sx_transfer_from_knn(const double *ref, int64_t n_ref,
                                         const char *const *ref_labels, int dim,
                                         const sx_knn *nb, const sx_transfer_opts *opts,
                                         sx_status *st)
{
    sx_transfer_opts o;
    if (opts) o = *opts;
    else sx_transfer_opts_init(&o);
    if (check_args(&o, n_ref, nb ? ref : NULL, nb ? nb->n_query : 0, st)) return NULL;
    int kp = sx_transfer_k_needed(&o, n_ref);
    if (nb->k < kp) {
        sx_status_set(st, SX_EINVAL, "label transfer: %d neighbours per query cell given, %d "
                      "needed", nb->k, kp);
        return NULL;
    }
    /* a wider search (shared with the UMAP transform): the kp a kp-search would have found */
    sx_knn *head = nb->k > kp ? sx_knn_head(nb, kp, st) : NULL;
    if (nb->k > kp && !head) return NULL;
    sx_transfer_result *r = transfer_cells(ref, n_ref, ref_labels, dim, head ? head : nb, kp,
                                           &o, st);
    sx_knn_free(head);
    return r;
}

sx_transfer_result *sx_transfer_knn(const double *ref, int64_t n_ref,
                                    const char *const *ref_labels, const double *query,
                                    int64_t n_query, int dim, const sx_transfer_opts *opts,
                                    const sx_progress *prog, sx_status *st)
{
    sx_transfer_opts o;
    if (opts) o = *opts;
    else sx_transfer_opts_init(&o);
    if (check_args(&o, n_ref, query, n_query, st)) return NULL;
    sx_knn_opts ko;
    sx_knn_opts_init(&ko);
    ko.n_threads = o.n_threads;
    sx_knn *knn = sx_knn_exact(ref, n_ref, query, n_query, dim, sx_transfer_k_needed(&o, n_ref),
                               &ko, prog, st);
    if (!knn) return NULL;
    sx_transfer_result *r = sx_transfer_from_knn(ref, n_ref, ref_labels, dim, knn, &o, st);
    sx_knn_free(knn);
    return r;
}

/* index of label in the sorted classes, -1 when absent */
static int class_index(const sx_transfer_result *r, const char *label)
{
    int lo = 0, hi = r->n_classes - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, s = strcmp(r->classes[mid], label);
        if (!s) return mid;
        if (s < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int sx_transfer_hierarchy(const char *const *fine_labels, const char *const *coarse_labels,
                          int64_t n_ref, const sx_transfer_result *fine,
                          const sx_transfer_result *coarse, int32_t *parent)
{
    for (int f = 0; f < fine->n_classes; f++) parent[f] = -1;
    for (int64_t i = 0; i < n_ref; i++) {
        int f = class_index(fine, fine_labels[i]), c = class_index(coarse, coarse_labels[i]);
        if (f < 0 || c < 0 || (parent[f] >= 0 && parent[f] != c)) return 0;
        parent[f] = c;
    }
    return 1;
}
