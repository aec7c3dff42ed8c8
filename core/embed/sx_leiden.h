/* sx_leiden — Leiden communities on the UMAP connectivities, as scanpy 1.9 runs leidenalg:
 * modularity objective (RBConfiguration, resolution 1), edge weights from the graph,
 * iterated until an iteration changes nothing, seeded. Implemented with igraph 0.10's
 * igraph_community_leiden on the undirected graph (each stored pair once) with node weights
 * = weighted degree and resolution / 2m, which is modularity. Communities are renumbered by
 * decreasing size (0 = largest), ties by the smallest member, as leidenalg does.
 * igraph's Leiden stops a little below leidenalg's optimum from one start, so the best of 8
 * seeded restarts (seeds derived from `seed`) is kept: deterministic for a seed.
 * igraph's RNG is process-global: calls are serialized internally.
 */
#ifndef SX_LEIDEN_H
#define SX_LEIDEN_H

#include <stdint.h>

#include "sx_error.h"
#include "sx_matrix.h"
#include "sx_progress.h"

typedef struct sx_leiden_result {
    int64_t n;            /* cells */
    int32_t *membership;  /* community per cell, 0 = largest */
    int n_clusters;
    double modularity;    /* weighted Newman-Girvan modularity (sum over the symmetric W) */
    double quality;       /* unnormalised objective = modularity * sum(W), leidenalg's quality() */
} sx_leiden_result;

/* Leiden on a symmetric weighted graph (e.g. sx_umap_fuzzy_graph). resolution 1 = modularity;
 * n_iterations < 0 iterates until stable (scanpy/leidenalg's -1). Fills *out (caller frees
 * with sx_leiden_result_clear). */
int sx_leiden(const sx_csr *graph, double resolution, int n_iterations, uint64_t seed,
              sx_leiden_result *out, const sx_progress *prog, sx_status *st);
void sx_leiden_result_clear(sx_leiden_result *r);

/* Weighted modularity sum_c [W_cc / 2m - resolution (k_c / 2m)^2] of any labelling
 * (membership values >= 0). */
double sx_leiden_modularity(const sx_csr *graph, const int32_t *membership, double resolution);

#endif
