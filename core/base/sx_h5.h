/* sx_h5 — small HDF5 helpers shared by the h5ad reader/writer, the model file and tests.
 *
 * All functions silence HDF5's own error printing (we report through sx_status) and
 * return SX_OK / SX_E*. Arrays returned through out-pointers are allocated with sx_alloc
 * and owned by the caller.
 */
#ifndef SX_H5_H
#define SX_H5_H

#include <hdf5.h>
#include <stdint.h>

#include "sx_error.h"

/* Turn off HDF5's automatic error stack printing (idempotent, process-wide). */
void sx_h5_quiet(void);

/* Register the filters libhdf5 lacks but anndata files use (LZF, 32000: sx_h5_lzf.c).
 * Idempotent, thread-safe; sx_h5_open_ro and sx_h5_check_filters call it. */
void sx_h5_register_filters(void);

/* Refuse a dataset whose filter pipeline holds a filter this process cannot decode (blosc,
 * zstd, ... from hdf5plugin): SX_EUNSUPPORTED naming the file, the element, the filter and
 * how to re-save the file (with anndata's call when `h5ad`; a 10x .h5 is no anndata file).
 * SX_OK otherwise. */
int sx_h5_check_filters(hid_t dset, const char *file, const char *elem, int h5ad, sx_status *st);

/* Open a file read-only; names the file in the error. Returns a negative hid on error. */
hid_t sx_h5_open_ro(const char *path, sx_status *st);

/* Does a link exist at path (intermediate groups checked)? */
int sx_h5_exists(hid_t loc, const char *path);

/* Shape of a dataset: ndim (0 for scalar) and dims[0..ndim). Up to 8 dims. */
int sx_h5_shape(hid_t loc, const char *path, int *ndim, int64_t dims[8], sx_status *st);

/* Read a whole numeric dataset converted to the wanted type. *n = element count. */
int sx_h5_read_f64(hid_t loc, const char *path, double **out, int64_t *n, sx_status *st);
int sx_h5_read_f32(hid_t loc, const char *path, float **out, int64_t *n, sx_status *st);
int sx_h5_read_i64(hid_t loc, const char *path, int64_t **out, int64_t *n, sx_status *st);
/* Read a 1-D string dataset (vlen or fixed, any padding) as NUL-terminated copies. */
int sx_h5_read_strings(hid_t loc, const char *path, char ***out, int64_t *n, sx_status *st);
void sx_h5_free_strings(char **s, int64_t n);

/* String attribute (vlen or fixed) of the object at path ("." = loc itself).
 * *out is NULL (and SX_ENOTFOUND returned) when absent. */
int sx_h5_attr_string(hid_t loc, const char *path, const char *name, char **out, sx_status *st);
/* Numeric attribute array (converted to double / int64). */
int sx_h5_attr_f64(hid_t loc, const char *path, const char *name, double **out, int64_t *n,
                   sx_status *st);
int sx_h5_attr_i64(hid_t loc, const char *path, const char *name, int64_t **out, int64_t *n,
                   sx_status *st);

/* Writers: create a dataset of rank 1 or 2 (dims[1] == 0 means 1-D) under loc,
 * gzip-compressed + chunked when gzip > 0 and the array has >= 16 elements. */
int sx_h5_write_f64(hid_t loc, const char *name, const double *v, int64_t d0, int64_t d1,
                    int gzip, sx_status *st);
int sx_h5_write_f32(hid_t loc, const char *name, const float *v, int64_t d0, int64_t d1,
                    int gzip, sx_status *st);
int sx_h5_write_i64(hid_t loc, const char *name, const int64_t *v, int64_t d0, int64_t d1,
                    int gzip, sx_status *st);
int sx_h5_write_i32(hid_t loc, const char *name, const int32_t *v, int64_t d0, int64_t d1,
                    int gzip, sx_status *st);
int sx_h5_write_strings(hid_t loc, const char *name, const char *const *v, int64_t n, int gzip,
                        sx_status *st);
/* Scalar string attribute (vlen UTF-8, as h5py writes it). */
int sx_h5_set_attr_string(hid_t obj, const char *name, const char *val, sx_status *st);

#endif
