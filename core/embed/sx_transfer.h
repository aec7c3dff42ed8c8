/* sx_transfer — label transfer from reference cells to query cells by a kNN vote in the
 * latent space, as SCALEX's label_transfer (scikit-learn KNeighborsClassifier(), k = 5,
 * uniform weights, Euclidean): the most frequent label among the k nearest reference cells,
 * a vote tie going to the label first in sorted order. That vote stays the chosen label.
 *
 * Per-cell trust, added on top of the vote (docs/guide/label-transfer-trust.md):
 * - class probabilities: a distance-weighted vote of the k_prob nearest reference cells
 *   (weights 1/d as sklearn's weights='distance', an exact match taking all the weight);
 * - confidence: that distance-weighted probability of the chosen class as it is (default), or
 *   (isotonic 1) refitted by isotonic regression (pool-adjacent-violators; Zadrozny & Elkan,
 *   KDD 2002) on held-out reference cells: each cell predicted from the others
 *   (leave-one-out) and, with several batches, also each batch in turn from the other
 *   batches (leave-one-batch-out), pooled. Why not the refit by default: held-out reference
 *   cells show the reference's own accuracy, and a query from another batch, technology or
 *   species maps less accurately; with the default training the refit was overconfident
 *   where the distance-weighted probability was not (bench/trust_eval.sh and
 *   bench/calib_eval.py, expected calibration error over 5 seeds: pancreas human -> mouse
 *   0.079 against 0.125, pbmc_3tech 0.031 against 0.048; cellbench 0.026 against 0.023,
 *   and at 3000 training steps pbmc 0.042 against 0.031: docs/tutorials). The other
 *   classes share 1 - confidence in proportion to their raw weight, so every row of
 *   probabilities sums to 1 (with the default it is the raw row);
 * - mapping score: the query cell's mean distance to its k nearest reference cells, as a
 *   z-score on the log scale: less the chosen label's median held-out log distance (held-out
 *   reference cells of that label, predicted from the others), over a scale taken from the
 *   gap between that median and where held-out cells of OTHER labels lie from the label
 *   (median of their log distances; gap / (2 x 2.326)), so the scale does not grow with
 *   training length as the label's own spread does (sx_transfer_calib.c gap_scales). The
 *   query's median z, when positive, is subtracted first (a query from another technology
 *   lies farther from the reference as a whole; this moves every cell alike and changes no
 *   ranking). Score = 1 - Phi(z): 0.5 = as close as the label's own reference cells, 0.01 =
 *   about halfway (in log distance) to where other labels' cells lie;
 * - "Unknown" when the mapping score or the confidence is below its threshold (0 = off).
 */
#ifndef SX_TRANSFER_H
#define SX_TRANSFER_H

#include <stddef.h>
#include <stdint.h>

#include "sx_error.h"
#include "sx_progress.h"

#define SX_TRANSFER_UNKNOWN "Unknown"

/* measured defaults (bench/trust_eval.sh; docs/guide/label-transfer-trust.md) */
#define SX_TRANSFER_K_PROB 15
#define SX_TRANSFER_MIN_CONFIDENCE 0.4
#define SX_TRANSFER_MIN_MAPPING 0.01
#define SX_TRANSFER_MIN_LOG_SD 0.1 /* floor of the log-distance scale (10% in distance) */

/* The calibration fitted on held-out reference cells (sx_transfer_calib.c): the mapping
 * score's per-label log-distance location and scale and, with isotonic, the confidence's
 * refit. Its arrays are owned by the struct (sx_transfer_calib_clear frees them). */
typedef struct sx_transfer_calib {
    int n_knots;       /* isotonic map: raw probability knots -> calibrated value (0: none) */
    double *knot_x, *knot_y;
    int n_classes;
    double *loc, *scale; /* per class, then all cells (index n_classes): log-distance median
                            and scale of held-out mean k-NN distances; scale < 0: none */
    int64_t n_calib;
    int by_batch;
} sx_transfer_calib;

typedef struct sx_transfer_opts {
    int k;                     /* neighbours voting (5) */
    int k_prob;                /* neighbours behind the probabilities (15; at least k) */
    double unknown_below;      /* confidence threshold for "Unknown"; 0 = never */
    double mapping_below;      /* mapping-score threshold for "Unknown"; 0 = never */
    int isotonic;              /* 1: the confidence refitted on held-out reference cells by
                                  isotonic regression; 0: the distance-weighted probability
                                  as it is (default; see above) */
    int calibrate;             /* 1: fit the calibration and mapping distributions (default);
                                  0: SCALEX's plain vote only (confidence = vote share,
                                  mapping_score = 1, probabilities = distance-weighted) */
    const int32_t *ref_batch;  /* n_ref batch codes (>= 0) for leave-one-batch-out, or NULL */
    int64_t calib_max;         /* held-out reference cells used to calibrate (2000) */
    const sx_transfer_calib *calib; /* fitted before by sx_transfer_calibrate on the same
                                  reference cells, labels and options (the daemon keeps one
                                  per label column of a loaded reference): used instead of
                                  fitting again; NULL (default): fitted per call. Borrowed. */
    uint64_t seed;             /* which held-out cells when the reference is larger */
    int n_threads;             /* 0 = all */
} sx_transfer_opts;

typedef struct sx_transfer_result {
    int64_t n_query;
    int k;
    int n_classes;
    char **classes;        /* sorted distinct reference labels */
    int32_t *pred;         /* class per query cell; -1 = Unknown */
    int32_t *vote_pred;    /* the vote winner before the Unknown thresholds */
    double *vote_share;    /* share of the k votes the winner got (SCALEX's score) */
    double *confidence;    /* probability of vote_pred (isotonic: refitted; vote share when
                              calibrate 0) */
    double *prob_distance; /* distance-weighted probability of the winner (k neighbours) */
    double *prob;          /* n_query x n_classes probabilities, rows sum to 1 */
    double *mapping_score; /* in [0, 1] */
    double mapping_shift;  /* the query's median standardised log distance, when above 0 */
    int32_t *neighbors;    /* n_query x k reference rows, nearest first */
    double *distances;     /* n_query x k */
    /* summary per class (n_classes): predicted count, mean confidence of those cells */
    int64_t *class_count;
    double *class_mean_conf;
    int64_t n_unknown;
    int64_t n_calib;       /* held-out reference cells behind the calibration */
    int calib_by_batch;    /* 1 leave-one-batch-out pooled with leave-one-out, 0 the latter */
    int calib_given;       /* 1: opts.calib served (not fitted in this call) */
} sx_transfer_result;

void sx_transfer_opts_init(sx_transfer_opts *o);

/* ref: n_ref x dim latent with labels ref_labels[n_ref]; query: n_query x dim. Returns a new
 * result (sx_transfer_free) or NULL with st filled. */
sx_transfer_result *sx_transfer_knn(const double *ref, int64_t n_ref,
                                    const char *const *ref_labels, const double *query,
                                    int64_t n_query, int dim, const sx_transfer_opts *opts,
                                    const sx_progress *prog, sx_status *st);
/* As sx_transfer_knn, from neighbours searched beforehand (one search of the query shared by
 * the UMAP transform, every label column and the carried clusters): nb (borrowed) holds per
 * query cell at least sx_transfer_k_needed(opts, n_ref) nearest reference rows of ref, as
 * sx_knn_search gives them; the transfer takes the ones a search of its own width would have
 * found (sx_knn_head: bit for bit sx_transfer_knn's when nb is an exact search). ref is still
 * read: the calibration holds reference cells out of it. Same ownership as sx_transfer_knn. */
struct sx_knn;
sx_transfer_result *sx_transfer_from_knn(const double *ref, int64_t n_ref,
                                         const char *const *ref_labels, int dim,
                                         const struct sx_knn *nb, const sx_transfer_opts *opts,
                                         sx_status *st);
/* Neighbours per query cell the transfer uses with opts (NULL: defaults) on a reference of
 * n_ref cells: k_prob, at least k, at most n_ref - 1 unless k needs more. */
int sx_transfer_k_needed(const sx_transfer_opts *opts, int64_t n_ref);
void sx_transfer_free(sx_transfer_result *r);

/* Label text of query cell i ("Unknown" for -1). Valid while r lives. */
const char *sx_transfer_label(const sx_transfer_result *r, int64_t i);

/* Hierarchy between a fine and a coarse label column of the same reference cells: fills
 * parent[n_fine] with the coarse class of each fine class and returns 1 when every fine
 * class lies within one coarse class (0 otherwise, parent undefined). Class indices are
 * those of the results' sorted classes. */
int sx_transfer_hierarchy(const char *const *fine_labels, const char *const *coarse_labels,
                          int64_t n_ref, const sx_transfer_result *fine,
                          const sx_transfer_result *coarse, int32_t *parent);

/* Fit the calibration a transfer with options o from these reference cells would fit (the
 * same held-out cells, searches and result), once, for later transfers' opts.calib. cal is
 * filled (caller clears it with sx_transfer_calib_clear); on error it is left empty. */
int sx_transfer_calibrate(const double *ref, int64_t n_ref, const char *const *ref_labels,
                          int dim, const sx_transfer_opts *o, sx_transfer_calib *cal,
                          sx_status *st);
/* A calibration as bytes (little-endian: i32 n_classes, i32 n_knots, i64 n_calib, i32
 * by_batch, i32 0, f64 knot_x[n_knots], knot_y[n_knots], loc[n_classes + 1],
 * scale[n_classes + 1]): its size, and writing it through put (sx_knn.h's writer type;
 * nonzero from put stops and is returned). */
size_t sx_transfer_calib_serial_size(const sx_transfer_calib *cal);
int sx_transfer_calib_write(const sx_transfer_calib *cal,
                            int (*put)(void *user, const void *p, size_t n), void *user);
/* Read len bytes written by sx_transfer_calib_write into cal (arrays copied, owned by cal);
 * every size checked against len, knots non-decreasing, values finite: SX_EFORMAT otherwise. */
int sx_transfer_calib_read(const void *p, size_t len, sx_transfer_calib *cal, sx_status *st);
void sx_transfer_calib_clear(sx_transfer_calib *cal);

/* ---- internal to sx_transfer*.c ---- */


/* Raw distance-weighted class weights of one cell from its kp neighbours (labels codes[],
 * distances d[] nearest first) into w[nc] normalised to sum 1. */
void sx_transfer_raw_prob(const int32_t *nb_codes, const double *d, int kp, int nc, double *w);
/* The first-k vote winner (ties to the first class) of nb_codes; votes[nc] is scratch. */
int sx_transfer_vote(const int32_t *nb_codes, int k, int nc, double *votes);
int sx_transfer_calib_fit(const double *ref, int64_t n_ref, const int32_t *codes, int nc,
                          int dim, const sx_transfer_opts *o, int kp, sx_transfer_calib *cal,
                          sx_status *st);
double sx_transfer_calib_conf(const sx_transfer_calib *cal, double raw);
/* Standardised log distance of a cell of class c ((log d - location) / scale; -inf: none). */
double sx_transfer_calib_z(const sx_transfer_calib *cal, int c, double mean_dist);
/* median of a[0..n), n >= 1 (sorts a) */
double sx_transfer_median(double *a, int64_t n);

#endif
