/* sx_io_internal — helpers shared by the text-based readers of core/io (not public API).
 *
 * sx_lines: a line reader over zlib's gzFile, so one code path reads plain and gzip files
 * (gzopen is transparent for uncompressed input). A gzip stream that stops early is an
 * error, never a silent end of file. Lines come back without their "\n" / "\r\n".
 */
#ifndef SX_IO_INTERNAL_H
#define SX_IO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sx_error.h"
#include "sx_h5.h"

typedef struct sx_lines sx_lines;

/* Open path for reading line by line. Returns NULL and fills st on failure. The reader
 * owns its buffers; close with sx_lines_close. */
sx_lines *sx_lines_open(const char *path, sx_status *st);
/* Next line: 1 with *line (NUL-terminated, valid until the next call; the reader owns it,
 * the caller may modify it in place) and *len; 0 at the end; a negative SX_E* code on a
 * read error (message names the file and the line). */
int sx_lines_next(sx_lines *lr, char **line, size_t *len, sx_status *st);
/* Apply an input budget (sx_io_limits.h; NULL = defaults, which sx_lines_open applies):
 * the longest line, and the decompressed bytes of a gzip input against its file size. */
struct sx_io_limits;
void sx_lines_set_limits(sx_lines *lr, const struct sx_io_limits *lim);
/* 1-based number of the line returned last. */
int64_t sx_lines_lineno(const sx_lines *lr);
/* Compressed bytes consumed so far (for progress), and whether the input is gzip. */
int64_t sx_lines_offset(const sx_lines *lr);
int sx_lines_is_gzip(const sx_lines *lr);
void sx_lines_close(sx_lines *lr);

/* Advise the kernel to back [p, p+bytes) with huge pages before a reader fills it (fewer
 * page faults; sx_io_mem.c says why). Only whole 2 MiB pages inside the range; a no-op
 * where unsupported. The memory stays the caller's. */
void sx_io_advise_huge(void *p, size_t bytes);
/* Size of a file in bytes, or -1 (st filled) when it cannot be stat'ed. */
int64_t sx_io_file_size(const char *path, sx_status *st);
/* Does path end with suffix (exact, case-sensitive)? */
int sx_io_ends_with(const char *path, const char *suffix);
/* Strip one pair of surrounding double quotes in place; returns s. */
char *sx_io_unquote(char *s);

/* Fields of one line: pointers into the line, valid while the line is. */
typedef struct sx_fields {
    char **v;
    int64_t n, cap;
} sx_fields;
/* Split s in place at delim (or at runs of blanks/tabs when delim == 0, ignoring leading
 * and trailing blanks). Returns SX_OK or SX_ENOMEM. */
int sx_io_split(char *s, char delim, sx_fields *f, sx_status *st);
void sx_fields_free(sx_fields *f);
/* sx_io_split within the input budget: the fields are counted before a pointer is stored
 * for each, and more than max_cells + 1 (a table is genes x cells: the values of every
 * cell and a names column) is SX_ELIMIT. ln (> 0) names the line in the message. */
int sx_io_split_limited(char *line, char delim, sx_fields *f, const struct sx_io_limits *lim,
                        const char *path, int64_t ln, sx_status *st);

/* Parse a whole field as a number the way Python's float() does (surrounding blanks
 * allowed, nan/inf accepted, no hex). Returns 1 and *v on success, 0 otherwise. */
int sx_io_parse_number(const char *s, double *v);

struct sx_csr;
/* Value checks shared by the readers: NaN/Inf is an error (SX_EDATA) unless skip is set;
 * negative values only log a warning (counts are expected, but it is not fatal). `path`
 * names the file in messages. */
int sx_io_check_values(const struct sx_csr *m, const char *path, int skip, sx_status *st);

/* Make the dataset's var names unique (FORMATS 4.3); logs how many were renamed. */
struct sx_dataset;
int sx_io_unique_var_names(struct sx_dataset *d, const char *path, sx_status *st);

/* A 10x h5 checked as sx_tenx_h5_read would read it (no genome chosen), streaming indices
 * and data in slabs: sizes, stored entries, their sum and negative count, or the reader's
 * error. Memory stays bounded by the names and indptr, never the matrix. */
struct sx_progress;
int sx_tenx_h5_check(const char *path, const struct sx_progress *prog, int64_t *n_obs,
                     int64_t *n_vars, int64_t *nnz, double *sum, int64_t *n_neg, sx_status *st);

/* sx_h5_zchunk: a whole numeric dataset written with its chunks shuffled and deflated on
 * `threads` threads (sx_h5_zchunk.c says why). The dataset must be created chunked with
 * whole rows per chunk (rank 1, or rank 2 with chunk[1] == dims[1]) and the same filters:
 * H5Pset_shuffle (when `shuffle`) then H5Pset_deflate. rle: deflate's run-length strategy
 * (Z_RLE: a standard deflate stream any inflater reads, about 3x faster than level 4 on
 * numbers, and as small on them); 0: zlib's default strategy, byte for byte what HDF5's own
 * filter writes. buf holds dims[0] rows of mtype values (borrowed). 0, or -1 on failure. */
typedef struct sx_h5_zchunk_opts {
    int level;   /* deflate level 1..9 */
    int rle;     /* Z_RLE instead of the default strategy */
    int threads; /* compressing threads, the caller's included (< 1: 1; at most 16) */
} sx_h5_zchunk_opts;
int sx_h5_zchunk_write(hid_t dset, hid_t mtype, const void *buf, int rank, const hsize_t *dims,
                       const hsize_t *chunk, int shuffle, const sx_h5_zchunk_opts *o);

#endif
