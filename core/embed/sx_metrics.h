/* sx_metrics — integration and classification metrics with scikit-learn / SCALEX semantics.
 *
 * Labels are int32 codes 0..n_classes-1 (sx_labels_encode makes them from strings in sorted
 * order, as numpy.unique does). Distances are Euclidean in float64.
 */
#ifndef SX_METRICS_H
#define SX_METRICS_H

#include <stdint.h>

#include "sx_error.h"
#include "sx_progress.h"

/* Codes of n strings by sorted distinct value (byte order = numpy's code-point order for
 * UTF-8). codes: n entries. *classes: new array of *n_classes copies (sx_labels_free). */
int sx_labels_encode(const char *const *s, int64_t n, int32_t *codes, char ***classes,
                     int *n_classes, sx_status *st);
void sx_labels_free(char **classes, int n_classes);

/* SCALEX batch_entropy_mixing_score: k = min(n_neighbors, n-1) nearest other cells; n_pools
 * pools of n_samples cells drawn with replacement; per cell the entropy (natural log, +1e-8)
 * of the batch shares re-weighted by the global batch frequencies; mean over cells and
 * pools, divided by log2(#batches) (SCALEX's quirk: the maximum is ln 2, not 1).
 * sampled: n_pools x n_samples cell rows to use (reproduces a recorded run) or NULL to draw
 * with sx's seeded generator. score_norm (may be NULL): the same mean entropy divided by
 * ln(#batches), a true 0..1 score. batch: codes 0..n_batches-1, >= 2 batches present. */
int sx_metrics_bems(const double *x, int64_t n, int dim, const int32_t *batch, int n_batches,
                    int n_neighbors, int n_pools, int n_samples, const int64_t *sampled,
                    uint64_t seed, int n_threads, double *score, double *score_norm,
                    const sx_progress *prog, sx_status *st);

/* sklearn silhouette_score (Euclidean, all cells): mean of (b - a) / max(a, b), 0 for
 * singleton clusters. Needs 2 <= #labels present <= n - 1. O(n^2): subsample large data. */
int sx_metrics_silhouette(const double *x, int64_t n, int dim, const int32_t *labels,
                          int n_labels, double *score, sx_status *st);

/* sklearn adjusted_rand_score and normalized_mutual_info_score (arithmetic mean). Codes of
 * both labellings must be >= 0 (values need not be dense). */
double sx_metrics_ari(const int32_t *a, const int32_t *b, int64_t n);
double sx_metrics_nmi(const int32_t *a, const int32_t *b, int64_t n);

/* Classification on codes 0..n_classes-1 (a prediction may be -1 = "Unknown": counts as
 * wrong and is not a class). confusion (may be NULL): n_classes x n_classes int64,
 * rows = truth, columns = prediction. macro_f1: mean F1 over classes present in truth or
 * prediction (sklearn f1_score(average='macro'), 0 for undefined F1). */
double sx_metrics_accuracy(const int32_t *truth, const int32_t *pred, int64_t n);
double sx_metrics_macro_f1(const int32_t *truth, const int32_t *pred, int64_t n, int n_classes);
int sx_metrics_confusion(const int32_t *truth, const int32_t *pred, int64_t n, int n_classes,
                         int64_t *confusion, sx_status *st);

/* sklearn.manifold.trustworthiness(X, E, n_neighbors=k), Euclidean; X n x dim, E n x edim.
 * O(n^2 log n) time, O(n) memory per thread. */
int sx_metrics_trustworthiness(const double *x, int dim, const double *e, int edim, int64_t n,
                               int k, int n_threads, double *score, sx_status *st);

#endif
