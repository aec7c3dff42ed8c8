/* sx_inspect — a summary of an input file without loading it whole.
 *
 * For .h5ad the matrix is streamed in row chunks (sum, nnz) and only obs/var are read, so
 * a file larger than memory can be inspected; formats without an inspector of their own
 * (the format table's entries say which have one) are read with their reader.
 * Used by `scalex inspect`. The result is owned by the caller (sx_inspect_free).
 */
#ifndef SX_INSPECT_H
#define SX_INSPECT_H

#include <stdint.h>

#include "sx_io.h"

typedef struct sx_inspect_col {
    char *name;
    const char *type;      /* "categorical", "string", "int", "float", "bool",
                              "nullable-int", "nullable-bool" (static text) */
    int ordered;           /* categorical only */
    int64_t n_categories;  /* categorical only: categories in their stored order ... */
    char **categories;
    int64_t *counts;       /* ... and how many rows carry each */
} sx_inspect_col;

typedef struct sx_inspect_shape {
    char *name;
    int64_t n_rows, n_cols;
} sx_inspect_shape;

typedef struct sx_inspect {
    sx_format format;
    char encoding_version[64];  /* "0.1.0" (anndata >= 0.8), "legacy-0.7", "legacy-0.6", or "" */
    int64_t n_obs, n_vars;
    int has_x;
    int64_t nnz;                /* stored entries of sparse X, nonzeros of dense X */
    double x_sum;               /* sum of X (double accumulation) */
    int64_t n_negative;         /* negative values in X */
    int n_obs_cols, n_var_cols;
    sx_inspect_col *obs, *var;
    int n_obsm, n_layers;
    sx_inspect_shape *obsm, *layers;
} sx_inspect;

/* Summarise one input. opts may be NULL (use_layer selects the matrix summarised). */
sx_inspect *sx_inspect_path(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                            sx_status *st);
/* The same, validating the matrix with bounded memory for .h5ad and 10x .h5 (every stored
 * index and value is read, in slabs, with the readers' structural and NaN/Inf checks); other
 * formats are read whole. For a 10x file only the sizes, nnz, x_sum and n_negative are
 * filled (its obs has no columns). Used by scalexd to check uploads. */
sx_inspect *sx_inspect_stream(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                               sx_status *st);
void sx_inspect_free(sx_inspect *r);

/* Format inspectors (the format table of sx_format.h names them; sx_inspect_path and
 * sx_inspect_stream dispatch to them). An .h5ad summarised by streaming X in row chunks;
 * a 10x .h5 validated in slabs (sizes, nnz, x_sum and n_negative only). */
sx_inspect *sx_inspect_h5ad(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                            sx_status *st);
sx_inspect *sx_inspect_tenx_h5(const char *path, const sx_progress *prog, sx_status *st);

#endif
