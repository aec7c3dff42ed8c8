/* sx_pipeline_scalex — a folder written by the original Python SCALEX (SCALEX(...,
 * outdir=DIR)) served as a reference, without retraining.
 *
 * DIR/checkpoint/model.pt and config.pt give the network and its gene list (sx_nn_scalex.h);
 * DIR/adata.h5ad gives the reference cells: obsm['latent'] (SCALEX's train-mode latent, as
 * it stored it), obsm['X_umap'], the obs columns (batch, leiden, labels), uns['umap']['params']
 * a and b. The domain names are the categories of obs['batch'], in order (SCALEX's domain ids
 * are those category codes).
 *
 * The UMAP layout served for a fixed-map projection is SCALEX's own X_umap with the reference
 * latent: queries are placed on it by our transform (as for references we trained). That is
 * an approximation of what SCALEX itself shows, since SCALEX recomputes one UMAP over
 * reference + query after a projection. */
#ifndef SX_PIPELINE_SCALEX_H
#define SX_PIPELINE_SCALEX_H

#include "sx_error.h"
#include "sx_pipeline.h"

/* 1 when dir holds checkpoint/model.pt, checkpoint/config.pt and adata.h5ad. */
int sx_reference_is_scalex(const char *dir);

/* Load a SCALEX output folder as a reference. r->path is dir. Caller frees with
 * sx_reference_free. Errors: SX_ENOTFOUND (not a SCALEX folder), the checkpoint reader's
 * codes, SX_EFORMAT when adata.h5ad lacks obsm['latent'] or its shapes disagree with the
 * model (latent width, cells), or obs['batch'] does not name the model's domains. */
sx_reference *sx_reference_load_scalex(const char *dir, sx_status *st);

/* The inference sampler's walk order as SCALEX draws it: numpy's
 * RandomState(seed).permutation(n) (legacy MT19937; seed's low 32 bits). perm: n entries. The
 * pipeline's train-mode encoding walks this, so its chunks are SCALEX's for the same seed. */
void sx_scalex_permutation(int64_t *perm, int64_t n, uint64_t seed);

/* What a SCALEX folder holds, for a catalog. */
typedef struct sx_scalex_info {
    int64_t n_cells, n_genes;
    char version[32]; /* SCALEX's version when the folder records one, else "" */
} sx_scalex_info;

/* SCALEX's version as the folder records it, into out (cap bytes; "" when none). SCALEX 1.0.x
 * writes no version anywhere: log.txt only has the run's messages and config.pt four keys. A
 * log.txt line saying "version X" (a wrapper's or a later SCALEX's) is taken, where X starts
 * with a digit; nothing else is guessed. */
void sx_scalex_folder_version(const char *dir, char *out, size_t cap);

/* Convert a SCALEX folder into our single-file reference (reference.h5 at out_path, replaced
 * if present; the format of sx_pipeline.h, which sx_reference_load reads), e.g. for a daemon
 * registry that stores one file per reference. The model's prep_json names the source.
 * info (may be NULL) receives the cells, genes and version. */
int sx_reference_write_scalex(const char *dir, const char *out_path, sx_scalex_info *info,
                              sx_status *st);

#endif
