/* sx_transfer — label transfer from reference cells to query cells by a kNN vote in the
 * latent space, as SCALEX's label_transfer (scikit-learn KNeighborsClassifier(), k = 5,
 * uniform weights, Euclidean): the most frequent label among the k nearest reference cells,
 * a vote tie going to the label first in sorted order. Extensions: per-cell confidence (vote
 * share of the winner), a distance-weighted probability of the winner (weights 1/d, an exact
 * match takes all the weight, as sklearn's weights='distance'), an optional "Unknown" when
 * the confidence is below a threshold, and a per-class summary.
 */
#ifndef SX_TRANSFER_H
#define SX_TRANSFER_H

#include <stdint.h>

#include "sx_error.h"
#include "sx_progress.h"

#define SX_TRANSFER_UNKNOWN "Unknown"

typedef struct sx_transfer_opts {
    int k;                     /* neighbours voting (5) */
    double unknown_below;      /* confidence threshold for "Unknown"; 0 = never */
    int n_threads;             /* 0 = all */
} sx_transfer_opts;

typedef struct sx_transfer_result {
    int64_t n_query;
    int k;
    int n_classes;
    char **classes;        /* sorted distinct reference labels */
    int32_t *pred;         /* class per query cell; -1 = Unknown */
    int32_t *vote_pred;    /* the vote winner before the Unknown threshold */
    double *confidence;    /* vote share of the winner (0..1) */
    double *prob_distance; /* distance-weighted probability of the winner */
    int32_t *neighbors;    /* n_query x k reference rows, nearest first */
    double *distances;     /* n_query x k */
    /* summary per class (n_classes): predicted count, mean confidence of those cells */
    int64_t *class_count;
    double *class_mean_conf;
    int64_t n_unknown;
} sx_transfer_result;

void sx_transfer_opts_init(sx_transfer_opts *o);

/* ref: n_ref x dim latent with labels ref_labels[n_ref]; query: n_query x dim. Returns a new
 * result (sx_transfer_free) or NULL with st filled. */
sx_transfer_result *sx_transfer_knn(const double *ref, int64_t n_ref,
                                    const char *const *ref_labels, const double *query,
                                    int64_t n_query, int dim, const sx_transfer_opts *opts,
                                    const sx_progress *prog, sx_status *st);
void sx_transfer_free(sx_transfer_result *r);

/* Label text of query cell i ("Unknown" for -1). Valid while r lives. */
const char *sx_transfer_label(const sx_transfer_result *r, int64_t i);

#endif
