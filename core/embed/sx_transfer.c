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
}

void sx_transfer_free(sx_transfer_result *r)
{
    if (!r) return;
    sx_labels_free(r->classes, r->n_classes);
    sx_free(r->pred);
    sx_free(r->vote_pred);
    sx_free(r->confidence);
    sx_free(r->prob_distance);
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

sx_transfer_result *sx_transfer_knn(const double *ref, int64_t n_ref,
                                    const char *const *ref_labels, const double *query,
                                    int64_t n_query, int dim, const sx_transfer_opts *opts,
                                    const sx_progress *prog, sx_status *st)
{
    sx_transfer_opts o;
    if (opts) o = *opts;
    else sx_transfer_opts_init(&o);
    sx_transfer_result *r = NULL;
    int32_t *codes = NULL;
    double *votes = NULL, *wvotes = NULL;
    sx_knn *knn = NULL;
    if (o.k < 1 || o.k > n_ref) {
        sx_status_set(st, SX_EINVAL, "label transfer: k = %d but the reference has %lld cells",
                      o.k, (long long)n_ref);
        return NULL;
    }
    if (n_query < 1 || !query) {
        sx_status_set(st, SX_EINVAL, "label transfer: no query cells");
        return NULL;
    }
    r = sx_calloc(1, sizeof *r);
    codes = sx_mallocarray(n_ref, sizeof *codes);
    if (!r || !codes) goto oom;
    if (sx_labels_encode(ref_labels, n_ref, codes, &r->classes, &r->n_classes, st)) goto fail;
    r->n_query = n_query;
    r->k = o.k;
    int nc = r->n_classes;
    r->pred = sx_mallocarray(n_query, sizeof *r->pred);
    r->vote_pred = sx_mallocarray(n_query, sizeof *r->vote_pred);
    r->confidence = sx_mallocarray(n_query, sizeof *r->confidence);
    r->prob_distance = sx_mallocarray(n_query, sizeof *r->prob_distance);
    r->class_count = sx_calloc(nc, sizeof *r->class_count);
    r->class_mean_conf = sx_calloc(nc, sizeof *r->class_mean_conf);
    votes = sx_mallocarray(nc, sizeof *votes);
    wvotes = sx_mallocarray(nc, sizeof *wvotes);
    if (!r->pred || !r->vote_pred || !r->confidence || !r->prob_distance || !r->class_count ||
        !r->class_mean_conf || !votes || !wvotes)
        goto oom;
    sx_knn_opts ko;
    sx_knn_opts_init(&ko);
    ko.n_threads = o.n_threads;
    knn = sx_knn_exact(ref, n_ref, query, n_query, dim, o.k, &ko, prog, st);
    if (!knn) goto fail;
    for (int64_t i = 0; i < n_query; i++) {
        memset(votes, 0, nc * sizeof *votes);
        memset(wvotes, 0, nc * sizeof *wvotes);
        int zero = 0;
        for (int j = 0; j < o.k; j++) zero |= knn->dist[i * o.k + j] == 0;
        for (int j = 0; j < o.k; j++) {
            int c = codes[knn->idx[i * o.k + j]];
            double d = knn->dist[i * o.k + j];
            votes[c] += 1;
            /* sklearn weights='distance': 1/d, and exact matches take all the weight */
            wvotes[c] += zero ? (d == 0 ? 1.0 : 0.0) : 1.0 / d;
        }
        int best = 0; /* argmax: first (sorted) class among ties, as sklearn */
        double wsum = 0;
        for (int c = 0; c < nc; c++) {
            if (votes[c] > votes[best]) best = c;
            wsum += wvotes[c];
        }
        r->vote_pred[i] = best;
        r->confidence[i] = votes[best] / o.k;
        r->prob_distance[i] = wsum > 0 ? wvotes[best] / wsum : 0;
        int unk = o.unknown_below > 0 && r->confidence[i] < o.unknown_below;
        r->pred[i] = unk ? -1 : best;
        if (unk) r->n_unknown++;
        else {
            r->class_count[best]++;
            r->class_mean_conf[best] += r->confidence[i];
        }
    }
    for (int c = 0; c < nc; c++)
        if (r->class_count[c]) r->class_mean_conf[c] /= (double)r->class_count[c];
    r->neighbors = knn->idx;
    r->distances = knn->dist;
    knn->idx = NULL;
    knn->dist = NULL;
    sx_knn_free(knn);
    sx_free(codes);
    sx_free(votes);
    sx_free(wvotes);
    return r;
oom:
    sx_status_set(st, SX_ENOMEM, "label transfer: out of memory for %lld query cells",
                  (long long)n_query);
fail:
    sx_knn_free(knn);
    sx_free(codes);
    sx_free(votes);
    sx_free(wvotes);
    sx_transfer_free(r);
    return NULL;
}
