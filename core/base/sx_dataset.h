/* sx_dataset — an AnnData in C: X (CSR) + obs + var + obsm + layers + raw + uns.
 *
 * The dataset owns everything it points to. X may be NULL (an AnnData without X).
 * obsm entries are dense row-major float64 (n_obs x k); SCALEX's latent is float64 and
 * X_umap float32 in scanpy, both fit losslessly in double. The `f32` flag records the
 * dtype to write back.
 */
#ifndef SX_DATASET_H
#define SX_DATASET_H

#include <stdint.h>

#include "sx_frame.h"
#include "sx_matrix.h"
#include "sx_uns.h"

typedef struct sx_dense {
    char *name;
    int64_t n_rows, n_cols;
    double *v;   /* n_rows * n_cols, row-major */
    int f32;     /* stored as float32 on disk */
} sx_dense;

typedef struct sx_layer {
    char *name;
    sx_csr *m;
} sx_layer;

typedef struct sx_dataset {
    sx_csr *X;          /* n_obs x n_vars, may be NULL */
    int x_was_int;      /* X came from an integer dtype on disk (counts) */
    sx_frame *obs;      /* n_obs rows, never NULL */
    sx_frame *var;      /* n_vars rows, never NULL */
    int n_obsm;
    sx_dense *obsm;
    int n_varm;
    sx_dense *varm;
    int n_layers;
    sx_layer *layers;
    int n_obsp;         /* pairwise cell graphs (n_obs x n_obs), e.g. connectivities, distances */
    sx_layer *obsp;
    sx_csr *raw_X;      /* optional raw: n_obs x raw_var->n_rows */
    sx_frame *raw_var;
    sx_uns *uns;        /* root dict, never NULL */
} sx_dataset;

static inline int64_t sx_dataset_n_obs(const sx_dataset *d) { return d->obs->n_rows; }
static inline int64_t sx_dataset_n_vars(const sx_dataset *d) { return d->var->n_rows; }

/* Empty dataset with n_obs x n_vars shape (default index names), no X. */
sx_dataset *sx_dataset_new(int64_t n_obs, int64_t n_vars, sx_status *st);
void sx_dataset_free(sx_dataset *d);

/* obsm/varm: find by name, or add (copying v; replaces an existing entry). */
sx_dense *sx_dataset_obsm(const sx_dataset *d, const char *name);
int sx_dataset_set_obsm(sx_dataset *d, const char *name, const double *v, int64_t n_rows,
                        int64_t n_cols, int f32, sx_status *st);
int sx_dataset_set_varm(sx_dataset *d, const char *name, const double *v, int64_t n_rows,
                        int64_t n_cols, int f32, sx_status *st);
/* layers: find by name, or add (takes ownership of m). */
sx_csr *sx_dataset_layer(const sx_dataset *d, const char *name);
int sx_dataset_set_layer(sx_dataset *d, const char *name, sx_csr *m, sx_status *st);

/* obsp: find by name, or add (takes ownership of m, which must be n_obs x n_obs). */
sx_csr *sx_dataset_obsp(const sx_dataset *d, const char *name);
int sx_dataset_set_obsp(sx_dataset *d, const char *name, sx_csr *m, sx_status *st);

/* Consistency: X shape vs obs/var, obsm rows, layer shapes, raw rows. */
int sx_dataset_validate(const sx_dataset *d, const char *what, sx_status *st);

/* Keep the rows (cells) rows[0..n) in that order: X, obs, obsm, layers, raw, and obsp
 * (rows and columns; obsp is dropped when rows repeat a cell, since a graph cannot hold
 * two copies of a node). */
int sx_dataset_take_obs(sx_dataset *d, const int64_t *rows, int64_t n, sx_status *st);
/* Keep the columns (features) cols[0..n) in that order: X, var, varm, layers (raw kept). */
int sx_dataset_take_vars(sx_dataset *d, const int64_t *cols, int64_t n, sx_status *st);

#endif
