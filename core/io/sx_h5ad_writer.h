/* sx_h5ad_writer — an .h5ad written in two steps: X first, the rest later (issue 15: a
 * projection of a million cells writes its query's matrix as soon as it is encoded and frees
 * it, instead of holding 1 GB through the neighbour search and the UMAP transform).
 *
 * The file is the one sx_h5ad_write makes of the same dataset (X is its first element
 * there too): built under PATH.tmp-XXXXXX in the target directory and renamed into place by
 * sx_h5ad_writer_finish, so a reader never sees a half-written file under the real name.
 * Not thread-safe (HDF5): one thread uses a writer, and no other thread makes HDF5 calls
 * while it does.
 */
#ifndef SX_H5AD_WRITER_H
#define SX_H5AD_WRITER_H
#include "sx_dataset.h"
#include "sx_error.h"
#include "sx_io.h"
#include "sx_matrix.h"

typedef struct sx_h5ad_writer sx_h5ad_writer;

/* Create the temporary file next to path (opts as sx_h5ad_write's; NULL: gzip 4).
 * SX_OK with *out (end it with sx_h5ad_writer_finish or sx_h5ad_writer_abort), or SX_EIO /
 * SX_ENOMEM with *out = NULL. */
int sx_h5ad_writer_open(const char *path, const sx_write_opts *opts, sx_h5ad_writer **out,
                        sx_status *st);
/* Write X (the caller keeps and may free X afterwards); as_int: data stored as int32 when
 * every value is an integer (sx_dataset.x_was_int). Once per file. */
int sx_h5ad_writer_put_x(sx_h5ad_writer *h, const sx_csr *X, int as_int, sx_status *st);
/* Write the rest of d, close, rename into place; frees h whatever the outcome (on error the
 * temporary file is removed). When X was written, d->X must be NULL and d's obs and var
 * must match X's shape (SX_EINVAL otherwise); else d->X, if any, is written as by
 * sx_h5ad_write. */
int sx_h5ad_writer_finish(sx_h5ad_writer *h, const sx_dataset *d, sx_status *st);
/* Give up: close, remove the temporary file, free (NULL allowed). */
void sx_h5ad_writer_abort(sx_h5ad_writer *h);

#endif
