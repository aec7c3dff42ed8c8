/* sx_h5ad_rows — an h5ad whose X is CSR, read in row slabs (issue 15: a query of any size
 * is preprocessed with bounded memory).
 *
 * sx_h5ad_read holds the whole X (a 1M x 20,000 query with 1,500 entries per cell is 12 GB)
 * before anything is done with it. This reader reads uns, obs and var whole (they are
 * small), X's indptr whole (8 bytes a cell) after the checks of the whole-file reader, and
 * then hands out slabs of consecutive rows: indices and data read with HDF5 hyperslabs into
 * buffers the reader owns and reuses, so the working memory is one slab whatever the file.
 * Each slab is checked as sx_h5ad_read checks X (column indices in range, NaN/Inf refused,
 * rows sorted and duplicates summed), so a slab's rows are byte for byte the rows of the
 * whole-file X. Only X is read: raw, layers, obsm and obsp are left on disk.
 */
#ifndef SX_H5AD_ROWS_H
#define SX_H5AD_ROWS_H

#include <stdint.h>

#include "sx_frame.h"
#include "sx_io.h"
#include "sx_matrix.h"
#include "sx_uns.h"

typedef struct sx_h5ad_rows sx_h5ad_rows;

/* Open path for slab reads. SX_OK with *out = NULL when the file is no h5ad or its X is not
 * a CSR matrix (dense, CSC, absent, or opts->use_layer names another matrix): the caller
 * reads it with sx_io_read instead. Otherwise SX_OK with *out (close with
 * sx_h5ad_rows_close), or the error sx_h5ad_read would give for the same metadata (limits
 * of opts->limits applied). prog (may be NULL) is polled for cancellation by
 * sx_h5ad_rows_next (the consumer reports progress: it knows its stage). */
int sx_h5ad_rows_open(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                      sx_h5ad_rows **out, sx_status *st);
void sx_h5ad_rows_close(sx_h5ad_rows *r);

int64_t sx_h5ad_rows_n_obs(const sx_h5ad_rows *r);
int64_t sx_h5ad_rows_n_vars(const sx_h5ad_rows *r);
/* var of the file (owned by the reader). */
const sx_frame *sx_h5ad_rows_var(const sx_h5ad_rows *r);
/* obs and uns of the file; ownership passes to the caller (NULL after the first call). */
sx_frame *sx_h5ad_rows_take_obs(sx_h5ad_rows *r);
sx_uns *sx_h5ad_rows_take_uns(sx_h5ad_rows *r);

/* The next rows, at most max_rows of them (<= 0: 65536) and at most max_entries stored
 * entries (<= 0: 8M) unless one row alone holds more: *slab becomes a view (n_rows, n_cols,
 * indptr from 0, indices, data) into the reader's buffers, valid until the next call or
 * close; slab->n_rows == 0 at the end. *row0 (may be NULL) = file row of the slab's first
 * row. SX_EFORMAT / SX_EDATA for a corrupt slab (naming the file and the entry),
 * SX_ECANCELED, SX_ENOMEM. After the last slab a counts warning may be logged, as
 * sx_h5ad_read does. */
int sx_h5ad_rows_next(sx_h5ad_rows *r, int64_t max_rows, int64_t max_entries, sx_csr *slab,
                      int64_t *row0, sx_status *st);

/* Read ahead: from now on a thread of the reader reads the next slab (at most max_rows and
 * max_entries as above: sx_h5ad_rows_next's own limits are then ignored) while the caller
 * works on the current one, so a slab's read and its processing overlap on two cores; the
 * slabs, views and errors are those of sx_h5ad_rows_next without it. Memory: two slabs'
 * buffers. Every HDF5 call of the slab reads moves to that thread, so until
 * sx_h5ad_rows_close (which stops and joins it) the caller's thread must make no HDF5 call
 * (the library is not thread-safe). Call it before the first sx_h5ad_rows_next (a view
 * given before becomes invalid). SX_OK; when the thread cannot start the reads stay on the
 * caller's thread. */
int sx_h5ad_rows_read_ahead(sx_h5ad_rows *r, int64_t max_rows, int64_t max_entries,
                            sx_status *st);

#endif
