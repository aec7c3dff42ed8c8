/* sx_reference_index — a reference's resident neighbour search index. A projection onto a
 * large reference searches an index (sx_knn_index: the cluster-pruned search from 20k cells);
 * built per job its cost (0.2-0.3 CPU-s at 100k cells for the clusters, 5 for a graph) is
 * paid again by every job. Built once here when the reference is loaded or registered, then
 * kept: in the daemon's in-memory reference, and in reference.map for job runners that map
 * it (sx_reference_map.c). */
#include "sx_knn.h"
#include "sx_pipeline.h"

/* the size from which a search index beats exact tiles (sx_knn.h: SX_KNN_IVF_FROM) */
static int wants_index(const sx_reference *r, const sx_knn_opts *o)
{
    return o->method == SX_KNN_APPROX ||
           (o->method == SX_KNN_AUTO && r->n_cells >= SX_KNN_IVF_FROM);
}

int sx_reference_index_build(sx_reference *r, const sx_knn_opts *opts, sx_status *st)
{
    sx_knn_opts o;
    if (opts) o = *opts;
    else sx_knn_opts_init(&o);
    if (!r || r->index || !r->latent || !wants_index(r, &o)) return SX_OK;
    sx_knn_index *ix = sx_knn_index_new(r->latent, r->n_cells, r->dim, &o, NULL, st);
    if (!ix) return st->code;
    if (sx_knn_index_is_exact(ix)) /* too few cells for an index: searches stay exact */
        sx_knn_index_free(ix);
    else
        r->index = ix;
    return SX_OK;
}

int sx_reference_index_missing(const sx_reference *r)
{
    sx_knn_opts o;
    sx_knn_opts_init(&o);
    return r && !r->index && wants_index(r, &o);
}

size_t sx_reference_index_bytes(const sx_reference *r)
{
    return r ? sx_knn_index_bytes(r->index) : 0;
}
