/* sx_pipeline_graph — neighbours, fuzzy graph, UMAP and Leiden on a latent: the embedding
 * step integrate and a joint projection share. */
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_knn.h"
#include "sx_leiden.h"
#include "sx_pipeline_ctx.h"
#include "sx_umap.h"

/* Neighbours (k = 30, self included), fuzzy graph, UMAP (deterministic for a seed and thread
 * count) and Leiden (resolution 1, until stable, seed 0) on a latent. */
int sx_pl_embed_graph(sx_pl_ctx *c, const double *latent, int64_t n, int dim, float *umap,
                       int32_t **leiden, int *n_clusters, double *a, double *b, sx_status *st)
{
    int rc;
    sx_knn *knn = NULL;
    sx_csr *graph = NULL;
    sx_leiden_result lr = {0};
    int k = 30;
    if (k > n) k = (int)(1 + n / 2);
    sx_knn_opts ko;
    sx_knn_opts_init(&ko);
    ko.n_threads = c->set.threads;
    if ((rc = sx_pl_stage(c, "umap")) != SX_OK) return sx_status_set(st, rc, "canceled");
    knn = sx_knn_self(latent, n, dim, k, &ko, c->prog, st);
    if (!knn) return st->code;
    graph = sx_umap_fuzzy_graph(knn, NULL, NULL, st);
    sx_knn_free(knn);
    if (!graph) return st->code;
    sx_umap_params up;
    sx_umap_params_init(&up);
    up.n_threads = c->set.threads; /* deterministic for a given seed and thread count */
    sx_umap_info info = {0};
    if ((rc = sx_umap_fit(graph, latent, dim, &up, umap, &info, c->prog, st)) != SX_OK) goto out;
    *a = info.a;
    *b = info.b;
    sx_pl_log_msg(&c->log, "UMAP: %lld cells, %d neighbours, %d epochs, a %.5f b %.5f",
                  (long long)n, k, info.n_epochs, info.a, info.b);
    if ((rc = sx_pl_stage(c, "leiden")) != SX_OK) {
        sx_status_set(st, rc, "canceled");
        goto out;
    }
    if ((rc = sx_leiden(graph, 1.0, -1, 0, &lr, c->prog, st)) != SX_OK) goto out;
    *leiden = lr.membership;
    lr.membership = NULL;
    *n_clusters = lr.n_clusters;
    sx_pl_log_msg(&c->log, "Leiden: %d clusters, modularity %.4f", lr.n_clusters, lr.modularity);
    sx_pl_metric(c, "leiden_clusters", lr.n_clusters);
    sx_pl_metric(c, "leiden_modularity", lr.modularity);
out:
    sx_leiden_result_clear(&lr);
    sx_csr_free(graph);
    return rc;
}

int sx_pl_add_leiden(sx_frame *obs, const int32_t *codes, int n_clusters, sx_status *st)
{
    char **cats = sx_calloc((size_t)n_clusters + 1, sizeof *cats);
    int rc = SX_OK;
    if (!cats) return sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int i = 0; i < n_clusters; i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", i);
        cats[i] = sx_strdup(buf);
        if (!cats[i]) rc = sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    if (rc == SX_OK)
        rc = sx_frame_add_categorical(obs, "leiden", codes, (const char *const *)cats, n_clusters,
                                      0, st);
    for (int i = 0; i < n_clusters; i++) sx_free(cats[i]);
    sx_free(cats);
    return rc;
}

int sx_pl_set_umap(sx_dataset *d, const float *umap, int64_t n, sx_status *st)
{
    double *u = sx_mallocarray((size_t)n * 2 + 1, sizeof *u);
    if (!u) return sx_pl_oom(st);
    for (int64_t i = 0; i < 2 * n; i++) u[i] = umap[i];
    int rc = sx_dataset_set_obsm(d, "X_umap", u, n, 2, 1, st);
    if (rc == SX_OK) rc = sx_dataset_set_obsm(d, "X_scalex_umap", u, n, 2, 1, st);
    sx_free(u);
    return rc;
}
