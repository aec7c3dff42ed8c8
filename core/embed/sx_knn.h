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

#include <stddef.h>
#include <stdint.h>

#include "sx_error.h"
#include "sx_progress.h"

typedef struct sx_knn {
    int64_t n_query; /* rows */
    int k;           /* neighbours per row */
    int32_t *idx;    /* n_query x k, row-major: reference row of each neighbour */
    double *dist;    /* n_query x k: Euclidean distance */
    int32_t *rank;   /* NULL, or n_query x k (exact searches asked for it, opts->keep_rank):
                      * the order in which the search chose each column. The exact search
                      * chooses by BLAS squared distance, then sorts by the distance recomputed
                      * directly; the two orders can differ by rounding, so the first k' columns
                      * of a wider search are not always a k'-search's: sx_knn_head uses rank to
                      * cut out exactly what a k'-search returns. */
} sx_knn;

enum { SX_KNN_AUTO = 0, SX_KNN_EXACT = 1, SX_KNN_APPROX = 2 };

typedef struct sx_knn_opts {
    int n_threads;      /* 0 = all online CPUs */
    int method;         /* SX_KNN_AUTO: exact below approx_from reference rows, else NN-descent */
    int64_t approx_from;/* AUTO switch point; 0 = 100000 */
    uint64_t seed;      /* NN-descent randomness */
    int exclude_self;   /* self search only: drop the cell itself (k others are returned) */
    int ef;             /* index graph search: beam width; 0 = max(k + 6, 32) */
    int keep_rank;      /* exact search: fill the result's rank (sx_knn_head) */
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

/* A search index over a fixed reference (sx_knn_index.c), built once (e.g. when a reference
 * is loaded) and searched by every query set:
 *  - exact BLAS tiles (as sx_knn_exact) when opts->method is SX_KNN_EXACT or (AUTO) the
 *    reference has fewer than SX_KNN_IVF_FROM rows;
 *  - (AUTO, larger references) the cluster-pruned search of sx_knn_ivf.h: exact brute force's
 *    answer at a fraction of its cost (a real map's 100k x 100k latents, k 15: 1.1-1.2 CPU-s
 *    against 14-15; synthetic, k 30: 1.15), and from SX_KNN_IVF_BOUND_FROM rows its bounded
 *    mode (SX_KNN_IVF_BOUND clusters per query: 1M rows, k 15, recall 0.999 at 2.6 CPU-s;
 *    exact pruning there costs 4.9; bench_knn_ivf.c; test_embed_knn_ivf.c checks recall and
 *    the 5-NN vote against exact at SX_KNN_IVF_BOUND_FROM rows);
 *  - (SX_KNN_APPROX) a best-first search of the reference's NN-descent graph (recall 0.973
 *    to 0.997; kept for comparison: bench/bench_map_knn.c).
 * Searches are deterministic, whatever the thread count, and may run concurrently on one
 * index. */
#define SX_KNN_IVF_FROM 20000         /* reference rows from which AUTO prunes by clusters */
#define SX_KNN_IVF_BOUND_FROM 500000  /* ... and from which it bounds the clusters visited */
#define SX_KNN_IVF_BOUND 16
typedef struct sx_knn_index sx_knn_index;

/* ref: n_ref x dim, BORROWED: it must stay valid and unchanged while the index lives.
 * opts: method, approx_from, seed (the graph's NN-descent), n_threads (build and searches),
 * ef. Returns a new index (sx_knn_index_free) or NULL with st filled. */
sx_knn_index *sx_knn_index_new(const double *ref, int64_t n_ref, int dim, const sx_knn_opts *opts,
                               const sx_progress *prog, sx_status *st);
/* The k nearest reference rows of each query row (n_query x dim), sorted by (distance, row);
 * distances are exact float64. Returns a new result (sx_knn_free) or NULL with st filled. */
sx_knn *sx_knn_index_search(const sx_knn_index *ix, const double *query, int64_t n_query, int k,
                            const sx_progress *prog, sx_status *st);
void sx_knn_index_free(sx_knn_index *ix);   /* NULL allowed */
/* Bytes the index holds besides the borrowed reference (for memory accounting). */
size_t sx_knn_index_bytes(const sx_knn_index *ix);
/* 1 when searches are exact (small reference or SX_KNN_EXACT). */
int sx_knn_index_is_exact(const sx_knn_index *ix);

/* Serialized graph index (sx_knn_index_io.c has the layout): the float copy, search graph and
 * entry cells, not the reference. put appends n bytes and returns 0, nonzero on failure. */
typedef int (*sx_knn_put_fn)(void *user, const void *p, size_t n);
/* Bytes sx_knn_index_write emits for ix (a multiple of 8); 0 for an exact index. */
size_t sx_knn_index_serial_size(const sx_knn_index *ix);
/* Write a graph index through put (SX_EINVAL for an exact one: nothing to keep). */
int sx_knn_index_write(const sx_knn_index *ix, sx_knn_put_fn put, void *user, sx_status *st);
/* An index over ref (n_ref x dim, BORROWED as by sx_knn_index_new) from len serialized bytes
 * at buf (8-byte aligned, e.g. in a mapped file), which are BORROWED too: they must stay
 * mapped and unchanged while the index lives; nothing is copied. Every size is checked
 * against len, every cell id against n_ref, and the float copy against ref: a damaged or
 * foreign section gives NULL with SX_EFORMAT (searches then do without). Searches run on
 * the threads sx_knn_search_with is given. Free with sx_knn_index_free. */
sx_knn_index *sx_knn_index_open(const void *buf, size_t len, const double *ref, int64_t n_ref,
                                int dim, sx_status *st);

/* One search of a reference that has no resident index: exact, or an index built for it
 * (AUTO: a reference of at least SX_KNN_IVF_FROM rows and a query of at least 1/50 of its
 * size, where the cluster index's build pays for itself; APPROX: the graph).
 * Same result contract as sx_knn_index_search; an exact search keeps its choice order (rank),
 * so one search can serve users of different widths (sx_knn_head). */
sx_knn *sx_knn_search(const double *ref, int64_t n_ref, const double *query, int64_t n_query,
                      int dim, int k, const sx_knn_opts *opts, const sx_progress *prog,
                      sx_status *st);
/* As sx_knn_search, through ix when it is a graph index of ref (n_ref x dim; the reference's
 * resident index, built once when the reference was loaded: any query size then uses it,
 * unless opts->method is SX_KNN_EXACT). ix NULL or exact: exactly sx_knn_search. The search
 * runs on opts->n_threads (not the index's). */
sx_knn *sx_knn_search_with(const sx_knn_index *ix, const double *ref, int64_t n_ref,
                           const double *query, int64_t n_query, int dim, int k,
                           const sx_knn_opts *opts, const sx_progress *prog, sx_status *st);

/* The neighbours a search of k columns would have returned, cut from a wider result nb
 * (1 <= k <= nb->k): with nb->rank (an exact search), the k it chose first, in their
 * (distance, row) order: bit for bit what sx_knn_exact with k returns (same reference, query
 * and tiles; tests/unit/embed/test_embed_knn.c). Without rank (a graph search), the first k
 * columns: a graph search's beam does not shrink with k, so they are at least as near.
 * Returns a new result (sx_knn_free; with rank when nb has it) or NULL with st filled. */
sx_knn *sx_knn_head(const sx_knn *nb, int k, sx_status *st);

/* Mean share of exact neighbours found by approx (both n x k, same queries): the recall. */
double sx_knn_recall(const sx_knn *approx, const sx_knn *exact);

#endif
