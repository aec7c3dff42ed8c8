/* sx_knn_internal — the graph index's layout, shared by its builder and searcher
 * (sx_knn_index.c) and its serialization (sx_knn_index_io.c). Private to core/embed. */
#ifndef SX_KNN_INTERNAL_H
#define SX_KNN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sx_knn.h"
#include "sx_knn_ivf.h"

struct sx_knn_index {
    const double *ref; /* borrowed */
    int64_t n;
    int dim, exact, n_threads, ef;
    int borrowed;      /* 1: xf/off/adj/piv point into a serialized index (sx_knn_index_open)
                        * that the caller keeps; free releases only the struct */
    float *xf;         /* n x dim float copy: the graph search ranks in float */
    int64_t *off;      /* CSR of the search graph: n + 1 offsets */
    int32_t *adj;
    int32_t *piv;      /* entry cells */
    int n_piv;
    sx_knn_ivf *ivf;   /* the cluster-pruned search instead of the graph (AUTO, large) */
    int ivf_bound;     /* clusters visited per query, 0 = exact (sx_knn_ivf_search) */
    size_t bytes;
};

/* An n x k result to fill (idx, dist, and rank when with_rank), owned by the caller
 * (sx_knn_free); NULL with st filled (SX_ENOMEM). Shared by every search of core/embed. */
sx_knn *sx_knn_alloc(int64_t n, int k, int with_rank, sx_status *st);

/* Which scan the cluster index's searches use: the best this CPU has (AUTO, the default),
 * the float32 filter without AVX2, or float64 only (what coordinates beyond float's range
 * get). Results are identical whichever; tests run each (test_embed_knn_ivf.c). */
enum { SX_KNN_IVF_SCAN_AUTO = 0, SX_KNN_IVF_SCAN_PORTABLE = 1, SX_KNN_IVF_SCAN_F64 = 2 };
void sx_knn_ivf_set_scan(sx_knn_ivf *ix, int scan);

/* The graph's bytes besides the struct (the float copy, CSR, entry cells). */
size_t sx_knn_index_graph_bytes(const struct sx_knn_index *ix);

#endif
