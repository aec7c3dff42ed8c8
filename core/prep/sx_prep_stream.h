/* sx_prep_stream — the projection preprocessing (ALGORITHM.md §5.3) over a query read in
 * slabs of rows, so a query of any size is prepared in the memory of its result (issue 15).
 *
 * sx_prep_apply_reference needs the whole query matrix over all its genes, and keeps the
 * log-normalized copy as raw: a 1M x 20,000 query with 1,500 entries per cell is 12 GB
 * read and as much again in raw. Here every step that looks at one cell is done slab by
 * slab (ATAC binarize, ERCC/MT- removal, the min_features cell filter, normalize_total to a
 * fixed target, log1p, the reindex to the reference genes with the gene match computed once
 * from var), and only the reference-gene columns of the kept cells are appended to the
 * result. The steps that need every cell run on that (small) result afterwards with the
 * very code of sx_prep_apply_reference: the batch categories of the kept cells and the
 * per-batch (or global) MaxAbs. So the result is the same as sx_prep_apply_reference's, bit
 * for bit: X, the cells kept, obs, var, uns and the sx_prep_result / sx_reindex_report;
 * only raw_X / raw_var (the query over all its genes) are not kept.
 *
 * Speed (issue 15): one fused pass per row, in which normalize_total's factor and log1p touch
 * only the reference-gene entries; with o->n_threads > 1 a slab's rows are cut in shares
 * run on that many threads, each row computed alone, so the result does not depend on the
 * thread count. The slabs are only read.
 */
#ifndef SX_PREP_STREAM_H
#define SX_PREP_STREAM_H

#include <stdint.h>

#include "sx_prep.h"

/* The query's rows, in order, a slab at a time (core/io's sx_h5ad_rows behind a callback,
 * so core/prep knows no file format). next fills *slab with a view of the next rows
 * (n_cols = the query's genes, indptr from 0; the values may be modified in place; valid
 * until the next call) and returns SX_OK with slab->n_rows == 0 at the end, or an error
 * code with st filled. */
typedef struct sx_prep_rows {
    int64_t n_rows, n_cols;
    int (*next)(void *ctx, sx_csr *slab, sx_status *st);
    void *ctx;
} sx_prep_rows;

/* Can these options be streamed? Not with processed / use_layer input, subsampling or a
 * median target_sum (they need the whole matrix first): then read the query whole and call
 * sx_prep_apply_reference. */
int sx_prep_stream_supported(const sx_prep_opts *o);

/* sx_prep_apply_reference on the rows of src. d holds the query without its matrix (obs
 * with src->n_rows rows, var with src->n_cols, uns; d->X NULL); on success it is left as
 * sx_prep_apply_reference leaves it (X the reindexed, scaled kept cells; obs their rows with
 * batch and n_genes; var the reference names; uns with log1p and scalex_preprocess), raw_X
 * NULL. out and rep (may be NULL) as there. Errors as there, with two differences: a poor
 * gene overlap (SX_EGENES) is found before the matrix is read, and SX_EINVAL when the
 * options are not streamable (sx_prep_stream_supported). On error d may be partly processed
 * and must be freed. */
int sx_prep_apply_reference_rows(sx_dataset *d, const sx_prep_rows *src, const char *const *ref,
                                 int64_t n_ref, const sx_prep_opts *o, const sx_reindex_opts *ro,
                                 sx_prep_result *out, sx_reindex_report *rep,
                                 const sx_progress *p, sx_status *st);

#endif
