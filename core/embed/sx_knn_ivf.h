/* sx_knn_ivf — exact k-nearest-neighbour search of a fixed reference latent by cluster
 * pruning (an "inverted file" whose lists are scanned exhaustively until a bound proves the
 * rest cannot hold a neighbour).
 *
 * Build: a seeded k-means (Lloyd iterations on a sample, then every row assigned once)
 * partitions the reference; each cluster's rows are stored contiguously (a copy), sorted by
 * their distance to the cluster centroid, with the cluster's radius. Search: per query the
 * clusters are visited in increasing lower bound max(0, d(q,c) - r_c); the search stops
 * when the bound exceeds the current k-th distance, and inside a cluster only the rows
 * whose centroid distance lies within [d(q,c) - w, d(q,c) + w] are scanned (w = current
 * k-th distance; triangle inequality), 8 rows at a time through a float32 filter whose
 * margin covers float's rounding, the rows that pass then ranked by their float64 distance. Why: the latent is ~10-dimensional, where these
 * bounds skip most of the reference, while brute-force BLAS tiles touch all of it.
 *
 * Result contract = sx_knn_exact's (sx_knn.h): neighbours sorted by (distance, reference
 * row), distances recomputed from coordinate differences in float64, so the idx tables are
 * identical to sx_knn_exact's except where two candidates' distances differ by BLAS
 * rounding at the k-th place (this search ranks by the directly computed distance, i.e. it
 * is exact brute force's answer). Searches are deterministic whatever the thread count and
 * may run concurrently on one index. A bounded-effort mode (max_clusters > 0) visits at
 * most that many clusters per query, nearest centroid first, and is then approximate
 * (bench/bench_knn_ivf.c measures recall).
 */
#ifndef SX_KNN_IVF_H
#define SX_KNN_IVF_H

#include <stddef.h>
#include <stdint.h>

#include "sx_error.h"
#include "sx_knn.h"
#include "sx_progress.h"

typedef struct sx_knn_ivf sx_knn_ivf;

/* Build an index over ref (n_ref x dim, row-major). ref is COPIED (in cluster order): the
 * caller may free it after the call. n_clusters 0 = automatic (about sqrt(n_ref): with the
 * float32 filter a row costs less than a cluster visit, so fewer, larger clusters win);
 * n_threads 0 = all online CPUs; the result depends on seed only, not on the thread count.
 * Non-finite coordinates are refused (SX_EDATA). Returns a new index (sx_knn_ivf_free) or
 * NULL with st filled. */
sx_knn_ivf *sx_knn_ivf_new(const double *ref, int64_t n_ref, int dim, int n_clusters,
                           int n_threads, uint64_t seed, const sx_progress *prog, sx_status *st);

/* The k nearest reference rows of each query row (n_query x dim, same dim as the index),
 * sorted by (distance, row); k <= n_ref. max_clusters 0 = exact; > 0 = visit at most that
 * many clusters per query (approximate). visited (NULL allowed) receives the mean share of
 * reference rows whose distance was computed per query (benchmarks). Returns a new result
 * (sx_knn_free) or NULL with st filled (SX_EINVAL bad arguments, SX_EDATA non-finite query,
 * SX_ECANCELED, SX_ENOMEM). */
sx_knn *sx_knn_ivf_search(const sx_knn_ivf *ix, const double *query, int64_t n_query, int k,
                          int max_clusters, int n_threads, const sx_progress *prog,
                          double *visited, sx_status *st);

int64_t sx_knn_ivf_rows(const sx_knn_ivf *ix);
int sx_knn_ivf_dim(const sx_knn_ivf *ix);
int sx_knn_ivf_clusters(const sx_knn_ivf *ix);
/* Bytes the index holds (its reference copy included; for memory accounting). An index
 * from sx_knn_ivf_from_mem counts only what it allocated itself. */
size_t sx_knn_ivf_bytes(const sx_knn_ivf *ix);
void sx_knn_ivf_free(sx_knn_ivf *ix); /* NULL allowed */

/* Flat serialization (little-endian host layout, 8-byte aligned sections): the size
 * sx_knn_ivf_write needs, then the write itself into buf (cap bytes; SX_ELIMIT when
 * short). Returns SX_OK or an SX_E* code with st filled. */
size_t sx_knn_ivf_serialized_size(const sx_knn_ivf *ix);
int sx_knn_ivf_write(const sx_knn_ivf *ix, void *buf, size_t cap, sx_status *st);

/* An index over a serialized buffer (e.g. a read-only mapping), BORROWING it: buf must be
 * 8-byte aligned and stay valid and unchanged while the index lives; only small tables
 * are allocated. Every size, offset, row number and stored distance is checked (a damaged
 * or hostile buffer gives SX_EFORMAT, never a wild read). NULL with st filled on error. */
sx_knn_ivf *sx_knn_ivf_from_mem(const void *buf, size_t len, sx_status *st);
/* Is ix an index of exactly this reference (same shape, every stored row equal to its
 * original row of ref)? 1 yes, 0 no. An index opened from a file is checked with it before
 * use: an index of another latent would answer with wrong cells. */
int sx_knn_ivf_matches(const sx_knn_ivf *ix, const double *ref, int64_t n_ref, int dim);

#endif
