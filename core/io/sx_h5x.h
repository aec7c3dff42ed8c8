/* sx_h5x — HDF5 internals of the h5ad reader, writer and streaming inspector (core/io only).
 *
 * Why not only sx_h5.h: the h5ad code needs checks sx_h5 does not do (compression filters
 * this HDF5 cannot decode, declared sizes that the file cannot hold), h5py's boolean enum,
 * partial (row-chunk) reads, and an element-naming context for every message.
 * Arrays returned through out-pointers are sx_alloc'ed and owned by the caller.
 */
#ifndef SX_H5X_H
#define SX_H5X_H

#include <hdf5.h>
#include <stdint.h>

#include "sx_frame.h"
#include "sx_io.h"
#include "sx_uns.h"

/* Layout generations we read (FORMATS.md 1 and 2). */
enum { H5X_MODERN = 0, H5X_LEGACY07 = 7, H5X_LEGACY06 = 6 };

typedef struct h5x_ctx {
    const char *path;       /* file name, for messages */
    hid_t f;                /* open file */
    int64_t file_size;      /* bytes on disk */
    int layout;             /* H5X_MODERN / H5X_LEGACY07 / H5X_LEGACY06 */
    const sx_progress *prog;
    int64_t chunk_rows;     /* 0 = choose from the row width */
    sx_io_budget budget;    /* limits, and the declared bytes of the datasets opened so far */
    int threads;            /* threads inflating deflated chunks of X (< 2: one) */
} h5x_ctx;

/* Open PATH read-only and classify its layout. Fills c (default limits); close with
 * h5x_close. */
int h5x_open(h5x_ctx *c, const char *path, const sx_progress *prog, sx_status *st);
/* Use these limits (NULL = defaults) from now on; call right after h5x_open. */
void h5x_set_limits(h5x_ctx *c, const sx_io_limits *lim);
/* SX_OK when n rows fit the limit of frame `elem` ("obs": max_cells, else max_genes). */
int h5x_check_rows(h5x_ctx *c, const char *elem, int64_t n, sx_status *st);
void h5x_close(h5x_ctx *c);

/* encoding-type / encoding-version attribute of loc/path into buf ("" when absent). */
void h5x_attr_str(hid_t loc, const char *path, const char *name, char *buf, size_t n);
/* Object type at loc/path: H5O_TYPE_GROUP, H5O_TYPE_DATASET, or H5O_TYPE_UNKNOWN if absent. */
H5O_type_t h5x_objtype(hid_t loc, const char *path);
/* Attribute as a list of strings (vlen or fixed; a zero-length attribute of any type
 * gives n = 0). SX_ENOTFOUND when absent. */
int h5x_attr_strings(hid_t loc, const char *path, const char *name, char ***out, int64_t *n,
                     sx_status *st);
/* Boolean-ish attribute (h5py enum, integer, or "True"/"False" string); def when absent. */
int h5x_attr_bool(hid_t loc, const char *path, const char *name, int def);

/* Open a dataset and check that (a) every filter in its pipeline can be decoded here,
 * (b) its declared size is plausible for the file size (SX_EFORMAT), and (c) the declared
 * bytes of every dataset opened so far fit the input budget (SX_ELIMIT, sx_io_limits.h).
 * Returns < 0 and fills st otherwise.
 * `elem` names the element in messages. */
hid_t h5x_dopen(h5x_ctx *c, hid_t loc, const char *path, const char *elem, sx_status *st);
/* Checks (b) and (c) of h5x_dopen on an open dataset; SX_OK or the code set in st. */
int h5x_check_size(h5x_ctx *c, hid_t d, const char *elem, sx_status *st);
/* Element count and rank of an open dataset. */
int64_t h5x_npoints(hid_t d, int *ndim, int64_t dims[8]);

/* Whole numeric dataset (integer, float or enum/bool) as int64 / double / uint8. */
int h5x_read_i64(h5x_ctx *c, hid_t loc, const char *path, const char *elem, int64_t **out,
                 int64_t *n, sx_status *st);
int h5x_read_f64(h5x_ctx *c, hid_t loc, const char *path, const char *elem, double **out,
                 int64_t *n, sx_status *st);
/* Whole string dataset (after the filter check). */
int h5x_read_strings(h5x_ctx *c, hid_t loc, const char *path, const char *elem, char ***out,
                     int64_t *n, sx_status *st);
/* Read elements [off, off+cnt) of a 1-D dataset, converting to memory type mt. */
int h5x_read_slab1(hid_t d, hid_t mt, int64_t off, int64_t cnt, void *buf);
/* The same, with a deflated dataset's chunks inflated by `threads` threads where its layout
 * allows (sx_h5_unzchunk.c: which layouts; anything else is h5x_read_slab1). HDF5 is called
 * from the calling thread only. 0, or -1 on failure. */
int h5x_read_slab1_mt(hid_t d, hid_t mt, int64_t off, int64_t cnt, void *buf, int threads);
/* Its threaded path alone (tests): 0 read, -1 failed, 1 not taken (h5x_read_slab1's work). */
int h5x_unz_read(hid_t d, hid_t mt, int64_t off, int64_t cnt, void *buf, int threads);
/* Read rows [r0, r1) of a 2-D dataset (all columns), converting to mt. */
int h5x_read_rows2(hid_t d, hid_t mt, int64_t r0, int64_t r1, int64_t ncol, void *buf);
/* Memory type to read an open dataset's values as int64 (handles enum bases). */

/* A matrix element (csr/csc group, h5sparse legacy group, or dense 2-D dataset), opened and
 * validated structurally: shape, offsets monotone and ending at nnz, lengths consistent,
 * sizes plausible. Values and indices are read later in row chunks. */
typedef enum { H5X_CSR = 0, H5X_CSC, H5X_DENSE } h5x_mat_kind;
typedef struct h5x_mat {
    h5x_mat_kind kind;
    int64_t n_rows, n_cols, nnz;  /* nnz = stored entries (sparse) */
    hid_t data, indices;          /* dense: data only */
    int64_t *ptr;                 /* CSR: n_rows+1 / CSC: n_cols+1 offsets */
    int data_int;                 /* values stored with an integer dtype */
    int unsorted;                 /* CSR: h5x_mat_csr_rows saw a row not strictly increasing */
    char elem[300];               /* "X", "layers/counts", "raw/X" ... for messages */
} h5x_mat;

int h5x_mat_open(h5x_ctx *c, hid_t loc, const char *path, const char *elem, h5x_mat *m,
                 sx_status *st);
void h5x_mat_close(h5x_mat *m);
/* CSR only: entries of rows [r0, r1) into ind/val (room for ptr[r1]-ptr[r0]); checks the
 * column indices are in range and sets m->unsorted when a row's are not increasing. */
int h5x_mat_csr_rows(h5x_ctx *c, h5x_mat *m, int64_t r0, int64_t r1, int32_t *ind, float *val,
                     sx_status *st);
/* Rows per chunk for this matrix (bounded working memory). */
int64_t h5x_mat_chunk_rows(const h5x_ctx *c, const h5x_mat *m);

/* Value statistics gathered while reading X (for NaN/Inf errors and counts warnings). */
typedef struct h5x_vstats {
    int64_t n, n_nan, n_inf, n_neg, n_nonint, first_bad;
    double sum;
} h5x_vstats;
void h5x_vstats_add(h5x_vstats *s, const float *v, int64_t n);
/* The same counts (n, n_nan, n_inf, n_neg, n_nonint, first_bad) without the sum (left as it
 * is): several times faster, for readers that only check and warn. */
void h5x_vstats_count(h5x_vstats *s, const float *v, int64_t n);

/* obs / var / raw/var: modern dataframe group, 0.7 dataframe, or <0.7 compound dataset.
 * uns (may be NULL) supplies legacy `<col>_categories`; used entries are removed from it. */
sx_frame *h5x_read_frame(h5x_ctx *c, const char *path, const char *elem, sx_uns *uns,
                         sx_status *st);
/* The uns tree (unknown encodings skipped with a warning). */
sx_uns *h5x_read_uns(h5x_ctx *c, const char *path, sx_status *st);

/* Remove a key from a uns dict (frees it). */
void h5x_uns_remove(sx_uns *dict, const char *key);

#endif
