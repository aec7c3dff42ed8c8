/* sx_frame — obs / var tables: typed columns plus an index of row names.
 *
 * Column kinds follow anndata: string, categorical (ordered flag, category order kept,
 * code -1 = missing), int64, float64, bool. A frame owns its index strings and columns.
 * Strings are UTF-8, NUL-terminated; NULL in a string column means missing.
 */
#ifndef SX_FRAME_H
#define SX_FRAME_H

#include <stdint.h>

#include "sx_error.h"

typedef enum sx_col_kind {
    SX_COL_STRING = 0,
    SX_COL_CATEGORICAL,
    SX_COL_INT,
    SX_COL_FLOAT,
    SX_COL_BOOL
} sx_col_kind;

typedef struct sx_column {
    char *name;
    sx_col_kind kind;
    /* one of these is used, by kind (length = frame n_rows) */
    char **str;      /* SX_COL_STRING */
    int32_t *codes;  /* SX_COL_CATEGORICAL: index into categories, -1 = missing */
    int64_t *i64;    /* SX_COL_INT */
    double *f64;     /* SX_COL_FLOAT (NaN = missing) */
    uint8_t *b;      /* SX_COL_BOOL: 0/1 */
    /* categorical only */
    char **categories;
    int32_t n_categories;
    int ordered;
    /* int columns read from a nullable-integer/boolean: mask[i] = 1 means missing; may be NULL */
    uint8_t *mask;
} sx_column;

typedef struct sx_frame {
    int64_t n_rows;
    char **index;       /* n_rows names (owned) */
    char *index_name;   /* name of the index dataset, usually "_index" (owned, may be NULL) */
    int n_cols;
    sx_column *cols;    /* n_cols columns (owned) */
} sx_frame;

/* Empty frame with n_rows rows and index names "0".."n-1" when names is NULL (copied
 * otherwise). */
sx_frame *sx_frame_new(int64_t n_rows, const char *const *names, sx_status *st);
void sx_frame_free(sx_frame *f);
sx_frame *sx_frame_copy(const sx_frame *f, sx_status *st);

/* Find a column by name; NULL if absent. */
sx_column *sx_frame_col(const sx_frame *f, const char *name);
int sx_frame_col_index(const sx_frame *f, const char *name);
/* Remove (and free) a column if present. */
void sx_frame_drop(sx_frame *f, const char *name);

/* Add columns. The frame takes copies; a column of the same name is replaced. */
int sx_frame_add_strings(sx_frame *f, const char *name, const char *const *vals, sx_status *st);
int sx_frame_add_categorical(sx_frame *f, const char *name, const int32_t *codes,
                             const char *const *cats, int32_t n_cats, int ordered, sx_status *st);
/* Categorical from per-row strings; categories in first-appearance order, or sorted
 * when sort_cats is set (pandas' default for a new Categorical). */
int sx_frame_add_categorical_from_strings(sx_frame *f, const char *name, const char *const *vals,
                                          int sort_cats, sx_status *st);
int sx_frame_add_int(sx_frame *f, const char *name, const int64_t *vals, sx_status *st);
int sx_frame_add_float(sx_frame *f, const char *name, const double *vals, sx_status *st);
int sx_frame_add_bool(sx_frame *f, const char *name, const uint8_t *vals, sx_status *st);

/* Value of row i as text (category label, number printed, "" for missing). Returns a
 * pointer into buf or into the frame; valid until the frame changes. */
const char *sx_column_text(const sx_column *c, int64_t i, char *buf, int bufsz);

/* New frame with rows rows[0..n) (repeats allowed). */
sx_frame *sx_frame_take_rows(const sx_frame *f, const int64_t *rows, int64_t n, sx_status *st);

/* anndata's make_unique on a list of names, in place (ALGORITHM.md 1.4): the k-th repeat
 * becomes name-k, skipping names that already exist. Returns the number renamed. */
int64_t sx_names_make_unique(char **names, int64_t n, sx_status *st);

#endif
