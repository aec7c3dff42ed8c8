/* sx_io — reading any supported input into an sx_dataset, and writing h5ad.
 *
 * Formats (FORMATS.md): h5ad (anndata 0.6 .. today), 10x MatrixMarket folders (v2/v3) and
 * bare .mtx, 10x Cell Ranger .h5 (v2 per-genome, v3), and text matrices (.csv/.txt/.tsv,
 * optionally .gz); the table of sx_format.h lists them and answers every question about
 * them (names, extensions, sniffing, readers). Readers validate before they trust: every
 * failure names the file, the element and the problem. Returned datasets are owned by the
 * caller (sx_dataset_free).
 */
#ifndef SX_IO_H
#define SX_IO_H

#include <stdint.h>

#include "sx_dataset.h"
#include "sx_format.h"
#include "sx_io_limits.h"
#include "sx_progress.h"

typedef struct sx_read_opts {
    const char *use_layer;   /* NULL or "X": X; "layers/NAME"; "raw" or "raw/X" */
    const char *genome;      /* 10x .h5 v2 with several genomes: one name, or NULL = all */
    int64_t chunk_rows;      /* rows per streamed chunk (0 = default) */
    int skip_values_check;   /* do not scan for NaN/Inf (trusted internal files) */
    const struct sx_io_limits *limits; /* input size budget; NULL = defaults (sx_io_limits.h) */
    int threads;             /* threads inflating a compressed matrix (0 or 1: one) */
} sx_read_opts;

/* Detect the format from the bytes (magic numbers, headers), falling back to the name
 * (sx_format_sniff without the gzip flag). */
int sx_io_detect(const char *path, sx_format *fmt, sx_status *st);

/* Read one input with the reader its format's table entry names; opts may be NULL. */
sx_dataset *sx_io_read(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                       sx_status *st);

/* Format readers (sx_io_read dispatches to them through the table of sx_format.h). */
sx_dataset *sx_h5ad_read(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                         sx_status *st);
sx_dataset *sx_mtx_read(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                        sx_status *st);
sx_dataset *sx_tenx_h5_read(const char *path, const sx_read_opts *opts,
                            const sx_progress *prog, sx_status *st);
sx_dataset *sx_text_read(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                         sx_status *st);

typedef struct sx_write_opts {
    int compress;            /* gzip level 0..9 (default 4 when 0 and `gzip` set) */
    int gzip;                /* compress datasets with deflate */
    int threads;             /* threads deflating numeric chunks (0 = 1); same file content */
    int fast;                /* deflate's run-length strategy: the same gzip filter any reader
                              * inflates, ~3x faster than level 4 on numbers, about as small
                              * (a job's answer; files meant to be kept stay at the default) */
} sx_write_opts;

/* Write an h5ad that anndata 0.8 and current anndata read (FORMATS.md 1.5). The file is
 * written to PATH.tmp-XXXX and renamed into place, so a crash never leaves a file that
 * looks whole. */
int sx_h5ad_write(const char *path, const sx_dataset *d, const sx_write_opts *opts,
                  sx_status *st);

/* Concatenate inputs along cells, one batch each (ALGORITHM.md 1.3). */
typedef struct sx_concat_opts {
    const char *batch_key;                /* default "batch" */
    const char *const *batch_categories;  /* n labels, or NULL for "0".."n-1" */
    int join_outer;                       /* 0 = inner (default), 1 = outer */
} sx_concat_opts;

/* Takes ownership of parts[0..n) (freed, even on error); returns the concatenation. */
sx_dataset *sx_io_concat(sx_dataset **parts, int n, const sx_concat_opts *opts, sx_status *st);

#endif
