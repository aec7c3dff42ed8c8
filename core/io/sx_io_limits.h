/* sx_io_limits — the size budget every reader applies to an input before it allocates.
 *
 * Two kinds of bound (issue 14):
 * - absolute, configurable: cells, genes, stored entries (max_cells / max_genes / max_nnz);
 * - relative to the input's bytes: the bytes a reader may decompress (gzip text) or declare
 *   (HDF5 datasets it reads) are at most max_inflate_ratio x the file's size plus a small
 *   fixed allowance, and never more than max_inflate_bytes; a text line is at most
 *   max_line_bytes and holds at most max_cells + 1 fields (text tables are genes x cells).
 * A refusal is SX_ELIMIT with a message naming the limit, the value and how to raise it;
 * a declared size the file's bytes cannot back is SX_EFORMAT (checked by each reader).
 * Plain values, no ownership: callers keep the struct; readers only read it.
 */
#ifndef SX_IO_LIMITS_H
#define SX_IO_LIMITS_H

#include <stdint.h>

#include "sx_error.h"

typedef struct sx_io_limits {
    int64_t max_cells;          /* cells (obs rows / barcodes / text columns) */
    int64_t max_genes;          /* genes, features or peaks (var rows) */
    int64_t max_nnz;            /* stored entries of one matrix */
    double max_inflate_ratio;   /* decompressed (or declared) bytes per byte of the file */
    int64_t max_inflate_bytes;  /* absolute cap of those bytes for one input */
    int64_t max_line_bytes;     /* longest text line */
} sx_io_limits;

/* Defaults sized for a million-cell atlas and for scATAC peak sets (several 100k peaks). */
#define SX_IO_MAX_CELLS_DEFAULT 2000000LL
#define SX_IO_MAX_GENES_DEFAULT 1000000LL
#define SX_IO_MAX_NNZ_DEFAULT 4000000000LL
#define SX_IO_MAX_INFLATE_RATIO_DEFAULT 100.0
#define SX_IO_MAX_INFLATE_BYTES_DEFAULT (64LL << 30)
#define SX_IO_MAX_LINE_BYTES_DEFAULT (64LL << 20)
/* Bytes any input may expand to whatever its size: tiny files are never refused for their
 * ratio alone (a 2 kB barcodes.tsv.gz of one batch compresses 50:1). */
#define SX_IO_INFLATE_ALLOWANCE (16LL << 20)

void sx_io_limits_default(sx_io_limits *l);
/* l itself when not NULL, else the defaults written into *tmp. Fields <= 0 in l take their
 * default too, so a partly filled struct ({.max_cells = N}) works. */
const sx_io_limits *sx_io_limits_resolve(const sx_io_limits *l, sx_io_limits *tmp);

/* Set one limit by name ("max_cells", "max-cells", ..., the names of the fields); SX_EINVAL
 * with a message for an unknown name or a value that is not a positive number. */
int sx_io_limits_set(sx_io_limits *l, const char *name, const char *value, sx_status *st);

typedef enum {
    SX_LIM_CELLS = 0,
    SX_LIM_GENES,
    SX_LIM_NNZ,
    SX_LIM_INFLATE,      /* max_inflate_ratio (and the absolute max_inflate_bytes) */
    SX_LIM_LINE,
    SX_LIM_FIELDS        /* fields per text line: max_cells + 1 */
} sx_io_limit_kind;

/* SX_OK when value <= the limit of kind; else SX_ELIMIT, message "PATH: WHAT VALUE exceeds
 * the limit NAME = N; raise it with ..." (what: "cells", "genes in var", ...). */
int sx_io_limit_check(const sx_io_limits *l, sx_io_limit_kind kind, int64_t value,
                      const char *path, const char *what, sx_status *st);

/* Bytes an input may expand to: the decompressed text of a gzip file, or the declared bytes
 * of the HDF5 datasets a reader opens. Counted with sx_io_budget_add. */
typedef struct sx_io_budget {
    sx_io_limits lim;           /* resolved copy of the limits */
    int64_t file_bytes;         /* size of the input on disk */
    int64_t allowed;            /* min(ratio x file_bytes + allowance, max_inflate_bytes) */
    int64_t used;
} sx_io_budget;

void sx_io_budget_init(sx_io_budget *b, const sx_io_limits *l, int64_t file_bytes);
/* Count bytes; SX_ELIMIT (naming max_inflate_ratio, or max_inflate_bytes when that cap is
 * the one hit) once the total passes the budget. `what` names the element in messages. */
int sx_io_budget_add(sx_io_budget *b, double bytes, const char *path, const char *what,
                     sx_status *st);

#endif
