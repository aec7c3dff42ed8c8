/* sx_reference_index — a reference's resident neighbour search index. A projection onto a
 * large reference searches a graph index (sx_knn_index); built per job it cost 2.4-3.4 CPU-s
 * at 100k reference cells, more than the search of a 100k-cell query through it. Built once
 * here when the reference is loaded or registered, then kept: in the daemon's in-memory
 * reference, and in reference.map for job runners that map it (sx_reference_map.c). */
#include "sx_knn.h"
#include "sx_pipeline.h"

/* the threshold a one-shot search uses to pick the graph (sx_knn_search) */
static int wants_index(const sx_reference *r, const sx_knn_opts *o)
{
    int64_t from = o->approx_from > 0 ? o->approx_from : 100000;
    return o->method == SX_KNN_APPROX || (o->method == SX_KNN_AUTO && r->n_cells >= from);
}

int sx_reference_index_build(sx_reference *r, const sx_knn_opts *opts, sx_status *st)
{
    sx_knn_opts o;
    if (opts) o = *opts;
    else sx_knn_opts_init(&o);
    if (!r || r->index || !r->latent || !wants_index(r, &o)) return SX_OK;
    o.method = SX_KNN_APPROX;
    sx_knn_index *ix = sx_knn_index_new(r->latent, r->n_cells, r->dim, &o, NULL, st);
    if (!ix) return st->code;
    if (sx_knn_index_is_exact(ix)) /* too few cells for a graph: searches stay exact */
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
