/* sx_knn — k nearest neighbours in a latent space (Euclidean).
 *
 * Two searches:
 *  - exact: distance tiles by BLAS (|q|^2 - 2 q.r + |r|^2), top-k kept per query, then the
 *    chosen k distances recomputed directly from coordinate differences (so a cell's
 *    distance to itself is exactly 0, as scikit-learn reports). Multithreaded over query
 *    tiles with pthreads; each dgemm tile is sized below OpenBLAS's own threading threshold
 *    so our workers, not BLAS, own the cores.
 *  - approximate (NN-descent, random-projection-forest start) for large references; recall
 *    against exact is >= 0.95 on clustered data (tests/unit/embed/test_embed_knn.c).
 *
 * Results are sorted per query by (distance, index) with the query cell itself first when
 * searching a set against itself, so ties are resolved deterministically: equal distances
 * keep the lower reference index (scikit-learn leaves such ties unspecified).
 */
#ifndef SX_KNN_H
#define SX_KNN_H

#include <stdint.h>

#include "sx_error.h"
#include "sx_progress.h"

typedef struct sx_knn {
    int64_t n_query; /* rows */
    int k;           /* neighbours per row */
    int32_t *idx;    /* n_query x k, row-major: reference row of each neighbour */
    double *dist;    /* n_query x k: Euclidean distance */
} sx_knn;

enum { SX_KNN_AUTO = 0, SX_KNN_EXACT = 1, SX_KNN_APPROX = 2 };

typedef struct sx_knn_opts {
    int n_threads;      /* 0 = all online CPUs */
    int method;         /* SX_KNN_AUTO: exact below approx_from reference rows, else NN-descent */
    int64_t approx_from;/* AUTO switch point; 0 = 100000 */
    uint64_t seed;      /* NN-descent randomness */
    int exclude_self;   /* self search only: drop the cell itself (k others are returned) */
} sx_knn_opts;

/* Defaults: all threads, AUTO, approx_from 100000, seed 0, self included. */
void sx_knn_opts_init(sx_knn_opts *o);

/* Free a result (NULL allowed). */
void sx_knn_free(sx_knn *r);

/* Exact k nearest reference rows of every query row. ref: n_ref x dim row-major; query:
 * n_query x dim, or NULL to search ref against itself (then the cell itself is neighbour 0
 * unless opts->exclude_self). k <= n_ref (k <= n_ref - 1 with exclude_self).
 * Returns a new result owned by the caller (sx_knn_free), NULL on error with st filled. */
sx_knn *sx_knn_exact(const double *ref, int64_t n_ref, const double *query, int64_t n_query,
                     int dim, int k, const sx_knn_opts *opts, const sx_progress *prog,
                     sx_status *st);

/* Approximate self search by NN-descent (self included as neighbour 0, or excluded with
 * opts->exclude_self). Deterministic for a given seed and thread count. Same ownership. */
sx_knn *sx_knn_nndescent(const double *x, int64_t n, int dim, int k, const sx_knn_opts *opts,
                         const sx_progress *prog, sx_status *st);

/* Self search choosing exact or NN-descent by opts->method / approx_from. */
sx_knn *sx_knn_self(const double *x, int64_t n, int dim, int k, const sx_knn_opts *opts,
                    const sx_progress *prog, sx_status *st);

/* float32 input: converted to float64 internally (the latent is 10-dimensional, so the copy
 * is small next to the result). Same semantics as sx_knn_exact / sx_knn_self. */
sx_knn *sx_knn_exact_f32(const float *ref, int64_t n_ref, const float *query, int64_t n_query,
                         int dim, int k, const sx_knn_opts *opts, const sx_progress *prog,
                         sx_status *st);
sx_knn *sx_knn_self_f32(const float *x, int64_t n, int dim, int k, const sx_knn_opts *opts,
                        const sx_progress *prog, sx_status *st);

/* Mean share of exact neighbours found by approx (both n x k, same queries): the recall. */
double sx_knn_recall(const sx_knn *approx, const sx_knn *exact);

#endif
