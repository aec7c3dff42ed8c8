/* sx_umap — the UMAP neighbour graph, layout fit and transform, as umap-learn 0.5 does them
 * when called by scanpy (`pp.neighbors(n_neighbors=30)`, `tl.umap(min_dist=0.1)`).
 *
 * Steps (docs ALGORITHM.md §8.1-8.2):
 *  1. sx_umap_fuzzy_graph: per-cell sigma/rho by bisection (smooth_knn_dist), directed
 *     memberships, fuzzy union W = A + A^T - A o A^T in float32 -> scanpy's `connectivities`.
 *  2. sx_umap_fit: prune W below max/n_epochs, spectral initialization (normalized-Laplacian
 *     eigenvectors through ARPACK, component-wise layout for disconnected graphs, uniform
 *     random fallback), scale + noise + [0,10] rescale, then the epochs_per_sample SGD with
 *     negative sampling in float32. Deterministic: the layout depends only on (seed,
 *     n_threads). Each thread owns a fixed range of vertices and their edges; within an
 *     epoch it sees other threads' vertices as they were at the epoch start and defers its
 *     moves of them to the epoch end (applied in thread order), so no memory is shared
 *     while threads run. n_threads = 1 is umap-learn's sequential algorithm; different
 *     thread counts give different (equally good) layouts. The attractive move and the
 *     negative samples of one edge sample are all computed from the vertex as it was before
 *     that sample and then applied together (umap applies them one after another): the CPU
 *     overlaps them instead of waiting on a chain of pow and divisions (2x faster SGD,
 *     trustworthiness within 0.0002 of umap-learn's or above on the golden sets). Memory: nth x n x 2 floats of deferred moves, capped at
 *     256 MiB by using fewer threads (info->n_threads).
 *  3. sx_umap_transform: new cells onto a fixed reference layout (umap-learn `transform`):
 *     the same schedule and random streams, computed in float32 vectors of 8 query cells
 *     with a polynomial pow (relative error <= 1.3e-6; sx_umap_sgd.c). Where the CPU has
 *     AVX2 and FMA the last bits differ from the portable path's; on one machine the
 *     result depends only on the seed.
 * The SGD is not bit-identical to umap-learn (numba, tau88 streams); quality is checked by
 * trustworthiness against umap-learn's on the same latent.
 */
#ifndef SX_UMAP_H
#define SX_UMAP_H

#include <stdint.h>

#include "sx_error.h"
#include "sx_knn.h"
#include "sx_matrix.h"
#include "sx_progress.h"

typedef struct sx_umap_params {
    int n_neighbors;          /* k including self (30) */
    double min_dist;          /* 0.1 */
    double spread;            /* 1.0 */
    double a, b;              /* curve parameters; 0 = fit from min_dist/spread */
    double learning_rate;     /* initial alpha, 1.0 */
    double gamma;             /* repulsion strength, 1.0 */
    int negative_sample_rate; /* 5 */
    int n_epochs;             /* 0 = 500 for <= 10000 cells else 200 (fit); transform: 100 / 30 */
    int init;                 /* SX_UMAP_INIT_SPECTRAL or SX_UMAP_INIT_RANDOM */
    uint64_t seed;            /* 0 */
    int n_threads;            /* 0 = all online CPUs; 1 = deterministic */
} sx_umap_params;

enum { SX_UMAP_INIT_SPECTRAL = 0, SX_UMAP_INIT_RANDOM = 1 };

/* What a fit did (filled by sx_umap_fit when non-NULL). */
typedef struct sx_umap_info {
    double a, b;
    int n_epochs;
    int64_t n_edges;      /* directed edges after pruning */
    int n_components;     /* connected components of the pruned graph */
    int init_used;        /* 0 spectral, 1 random (asked or eigen-solver failure), 2 multi-component */
    int n_threads;        /* SGD threads used */
    double init_seconds;  /* wall: pruning, components, initialization */
    double init_cpu_seconds; /* CPU of the same (single-threaded) */
    double sgd_seconds;   /* wall: the epoch loop */
} sx_umap_info;

/* SCALEX / scanpy defaults (above). */
void sx_umap_params_init(sx_umap_params *p);

/* Fit a, b of 1 / (1 + a x^(2b)) to the min_dist/spread target curve (Levenberg-Marquardt,
 * 300 points on [0, 3 spread], as umap's find_ab_params). */
int sx_umap_find_ab(double min_dist, double spread, double *a, double *b, sx_status *st);

/* smooth_knn_dist: sigma and rho per row of a self-including kNN table (distances ascending,
 * column 0 skipped in the sum exactly as umap does). target = log2(k_target);
 * local_connectivity 1 for the fit graph, 0 for transform. sigmas/rhos: n_query floats. */
void sx_umap_smooth_knn(const sx_knn *knn, double k_target, double local_connectivity,
                        float *sigmas, float *rhos);

/* Fuzzy simplicial set of a self-including kNN table (knn->idx[i*k] == i): the symmetric
 * float32 `connectivities` (canonical CSR, zeros dropped). sigmas/rhos may be NULL, else
 * receive n floats each. Returns a new matrix (sx_csr_free) or NULL with st filled. */
sx_csr *sx_umap_fuzzy_graph(const sx_knn *knn, float *sigmas, float *rhos, sx_status *st);

/* Raw spectral layout of the graph pruned for n_epochs (as umap's spectral_layout: unit
 * eigenvectors 2 and 3 of the normalized Laplacian), n x 2 doubles into out. Returns SX_OK,
 * or SX_EDATA when the pruned graph is disconnected or the eigen-solver fails (out then
 * undefined). Sign of each column is arbitrary. */
int sx_umap_spectral(const sx_csr *graph, int n_epochs, double *out, sx_status *st);

/* Layout of `graph` (n x n symmetric, e.g. from sx_umap_fuzzy_graph). data (n x dim, may be
 * NULL) is only used to place components of a disconnected graph. out: n x 2 floats.
 * Returns SX_OK / SX_E* (SX_ECANCELED when cancelled). */
int sx_umap_fit(const sx_csr *graph, const double *data, int dim, const sx_umap_params *p,
                float *out, sx_umap_info *info, const sx_progress *prog, sx_status *st);

/* Convenience: kNN (exact or NN-descent per kopts) + fuzzy graph + fit on a latent.
 * graph_out (may be NULL) receives the connectivities (caller frees). */
int sx_umap_fit_data(const double *x, int64_t n, int dim, const sx_umap_params *p,
                     const sx_knn_opts *kopts, float *out, sx_csr **graph_out,
                     sx_umap_info *info, const sx_progress *prog, sx_status *st);

/* Place n_query new cells (query, n_query x dim) onto the fixed layout ref_emb (n_ref x 2) of
 * the reference cells ref (n_ref x dim), as umap-learn 0.5.3's UMAP.transform: the
 * p->n_neighbors nearest reference cells (exact; umap-learn is exact below 4096 reference
 * cells), fuzzy weights with local_connectivity 0, start at the weighted mean of their
 * positions or exactly on a neighbour of weight 1 (a copy of a reference cell:
 * init_graph_transform), weights below max / n_epochs dropped, SGD with the reference fixed
 * (alpha = learning_rate / 4, n_epochs 100 for <= 10000 queries else 30, or p->n_epochs / 3;
 * p->n_epochs 3 gives one epoch in which no edge is due: the start itself).
 * Deterministic for a seed at any thread count (queries never share a moving vertex).
 * out: n_query x 2 floats. */
int sx_umap_transform(const double *ref, int64_t n_ref, const float *ref_emb,
                      const double *query, int64_t n_query, int dim, const sx_umap_params *p,
                      float *out, const sx_progress *prog, sx_status *st);

/* The same transform from neighbours already found (e.g. sx_knn_index_search, shared with
 * label transfer): knn holds, per query cell, at least min(p->n_neighbors, n_ref) reference
 * rows sorted nearest first with their distances (extra columns are ignored). ref_emb:
 * n_ref x 2. Threaded over query cells (p->n_threads) and deterministic for a seed at any
 * thread count. out: knn->n_query x 2 floats. */
int sx_umap_transform_knn(const sx_knn *knn, int64_t n_ref, const float *ref_emb,
                          const sx_umap_params *p, float *out, const sx_progress *prog,
                          sx_status *st);

#endif
