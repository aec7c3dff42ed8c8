/* sx_umap_internal — the UMAP transform's epoch kernel (sx_umap_sgd.c), private to
 * core/embed: sx_umap.c builds the edge arrays and runs the epochs on its threads, this
 * kernel does one chunk of edges in one epoch.
 *
 * Why a kernel of its own: the transform moves only query cells against a fixed reference
 * layout, so which edges are due and which reference cells are drawn as negative samples in
 * an epoch do not depend on any position. The kernel therefore draws a chunk's samples first
 * (the same random stream and order as the fit's per-edge loop), then computes them in
 * float32 vectors (one edge sample and its negative samples in the lanes of one vector, a
 * polynomial pow) on several query cells at once, prefetching the drawn reference points.
 */
#ifndef SX_UMAP_INTERNAL_H
#define SX_UMAP_INTERNAL_H

#include <stdint.h>

#include "sx_embed_internal.h"

/* Uniform index below n (< 2^31) from the upper 32 bits of one draw (the fit's and the
 * transform's negative samples). */
static inline int64_t sx_umap_rng_index(sx_rng *r, int64_t n)
{
    return (int64_t)(((sx_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* One transform's SGD state, shared read-only by the threads except head/next/next_neg,
 * of which each chunk owns its edges' entries and its query rows (chunks start at a row). */
typedef struct sx_umap_tsgd {
    float *head;             /* query positions, n_query x 2 (moved) */
    const float *tail;       /* fixed reference layout, n_tail x 2 */
    int64_t n_tail;
    const int32_t *eh, *et;  /* edge head (query row) and tail (reference row) */
    const float *eps;        /* epochs per sample of each edge */
    float *next, *next_neg;  /* epoch of each edge's next (negative) sample */
    int64_t n_chunks;        /* the random stream of (epoch, chunk) is epoch * n_chunks + c + 1 */
    int neg_rate;
    float a, b, gamma;
    uint64_t seed;
} sx_umap_tsgd;

/* Per-thread buffers of drawn samples (opaque). NULL when out of memory. Free with
 * sx_umap_tscratch_free (NULL allowed). */
typedef struct sx_umap_tscratch sx_umap_tscratch;
sx_umap_tscratch *sx_umap_tscratch_new(int neg_rate);
void sx_umap_tscratch_free(sx_umap_tscratch *w);

/* Edges [e0, e1) (chunk c, starting at a query row and holding whole rows) in epoch `epoch`
 * at learning rate alpha. The result depends only on (seed, epoch, c) and the state, never
 * on the thread that runs it. */
void sx_umap_tsgd_chunk(const sx_umap_tsgd *T, sx_umap_tscratch *w, int64_t e0, int64_t e1,
                        int64_t c, int epoch, float alpha);

#endif
