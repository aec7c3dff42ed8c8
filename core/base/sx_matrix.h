/* sx_matrix — the sparse cells x features matrix of libscalex, and small dense helpers.
 *
 * CSR with float32 values, int32 column indices and int64 row offsets (a million cells
 * with thousands of nonzeros each overflows int32 offsets). Canonical form: indices
 * sorted and unique within each row. The struct is public so kernels can walk it;
 * it owns its three arrays (freed by sx_csr_free).
 */
#ifndef SX_MATRIX_H
#define SX_MATRIX_H

#include <stdint.h>

#include "sx_error.h"

typedef struct sx_csr {
    int64_t n_rows;
    int64_t n_cols;
    int64_t *indptr;  /* n_rows + 1 entries, indptr[0] == 0, non-decreasing */
    int32_t *indices; /* nnz entries, 0 <= indices[k] < n_cols */
    float *data;      /* nnz entries */
} sx_csr;

static inline int64_t sx_csr_nnz(const sx_csr *m) { return m->indptr[m->n_rows]; }

/* New CSR with room for `nnz` entries; indptr zeroed. Caller frees with sx_csr_free. */
sx_csr *sx_csr_new(int64_t n_rows, int64_t n_cols, int64_t nnz, sx_status *st);
void sx_csr_free(sx_csr *m);
/* Deep copy. */
sx_csr *sx_csr_copy(const sx_csr *m, sx_status *st);
/* Shrink the arrays to indptr[n_rows] entries (after filling fewer than reserved). */
int sx_csr_shrink(sx_csr *m, sx_status *st);

/* Check structure: indptr starts at 0, is non-decreasing and ends at nnz, indices in range.
 * With check_values, also reject NaN/Inf. `what` names the element in the message. */
int sx_csr_validate(const sx_csr *m, int check_values, const char *what, sx_status *st);
/* Sort indices within rows and sum duplicates (makes the matrix canonical). */
int sx_csr_canonicalize(sx_csr *m, sx_status *st);

/* Build CSR from a CSC description (n_rows x n_cols, col offsets, row indices).
 * Two passes, O(nnz) extra memory. */
sx_csr *sx_csr_from_csc(int64_t n_rows, int64_t n_cols, const int64_t *colptr,
                        const int32_t *rowind, const float *vals, sx_status *st);
/* Transpose (returns a new matrix). */
sx_csr *sx_csr_transpose(const sx_csr *m, sx_status *st);
/* Build CSR from a dense row-major float matrix, dropping zeros. */
sx_csr *sx_csr_from_dense(const float *a, int64_t n_rows, int64_t n_cols, sx_status *st);

/* Rows `rows[0..n)` (any order, repeats allowed) as a new matrix. */
sx_csr *sx_csr_take_rows(const sx_csr *m, const int64_t *rows, int64_t n, sx_status *st);
/* Columns remapped: map[j] = new column of old column j, or -1 to drop. new_n_cols is the
 * width of the result. Rows stay canonical if map is increasing on kept columns;
 * otherwise each row is re-sorted. */
sx_csr *sx_csr_remap_cols(const sx_csr *m, const int64_t *map, int64_t new_n_cols, sx_status *st);
/* Stack matrices with equal n_cols vertically. */
sx_csr *sx_csr_vstack(const sx_csr *const *parts, int n, sx_status *st);

/* Dense block of rows [r0, r1) into out (row-major, (r1-r0) x n_cols, zero-filled first). */
void sx_csr_densify_rows(const sx_csr *m, int64_t r0, int64_t r1, float *out);
/* Sum of all values (double accumulation). */
double sx_csr_sum(const sx_csr *m);

#endif
