#include "sx_matrix.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"

sx_csr *sx_csr_new(int64_t n_rows, int64_t n_cols, int64_t nnz, sx_status *st)
{
    if (n_rows < 0 || n_cols < 0 || nnz < 0 || n_cols > INT32_MAX) {
        sx_status_set(st, SX_EINVAL, "matrix shape %lld x %lld with %lld entries is invalid",
                      (long long)n_rows, (long long)n_cols, (long long)nnz);
        return NULL;
    }
    sx_csr *m = sx_calloc(1, sizeof *m);
    if (!m) goto oom;
    m->n_rows = n_rows;
    m->n_cols = n_cols;
    m->indptr = sx_calloc((size_t)n_rows + 1, sizeof(int64_t));
    m->indices = sx_mallocarray((size_t)(nnz ? nnz : 1), sizeof(int32_t));
    m->data = sx_mallocarray((size_t)(nnz ? nnz : 1), sizeof(float));
    if (!m->indptr || !m->indices || !m->data) goto oom;
    return m;
oom:
    sx_csr_free(m);
    sx_status_set(st, SX_ENOMEM, "cannot allocate a %lld x %lld matrix with %lld entries",
                  (long long)n_rows, (long long)n_cols, (long long)nnz);
    return NULL;
}

void sx_csr_free(sx_csr *m)
{
    if (!m) return;
    sx_free(m->indptr);
    sx_free(m->indices);
    sx_free(m->data);
    sx_free(m);
}

sx_csr *sx_csr_copy(const sx_csr *m, sx_status *st)
{
    int64_t nnz = sx_csr_nnz(m);
    sx_csr *c = sx_csr_new(m->n_rows, m->n_cols, nnz, st);
    if (!c) return NULL;
    memcpy(c->indptr, m->indptr, (size_t)(m->n_rows + 1) * sizeof(int64_t));
    memcpy(c->indices, m->indices, (size_t)nnz * sizeof(int32_t));
    memcpy(c->data, m->data, (size_t)nnz * sizeof(float));
    return c;
}

int sx_csr_shrink(sx_csr *m, sx_status *st)
{
    int64_t nnz = sx_csr_nnz(m);
    size_t n = (size_t)(nnz ? nnz : 1);
    int32_t *ix = sx_reallocarray(m->indices, n, sizeof(int32_t));
    if (ix) m->indices = ix;
    float *d = sx_reallocarray(m->data, n, sizeof(float));
    if (d) m->data = d;
    (void)st; /* shrinking never fails in a way that matters: the old blocks stay valid */
    return SX_OK;
}

int sx_csr_validate(const sx_csr *m, int check_values, const char *what, sx_status *st)
{
    if (!what) what = "matrix";
    if (m->indptr[0] != 0)
        return sx_status_set(st, SX_EFORMAT, "%s: indptr[0] is %lld, expected 0", what,
                             (long long)m->indptr[0]);
    for (int64_t i = 0; i < m->n_rows; i++) {
        if (m->indptr[i + 1] < m->indptr[i])
            return sx_status_set(st, SX_EFORMAT,
                                 "%s: indptr decreases at row %lld (%lld -> %lld); the file is "
                                 "corrupt", what, (long long)i, (long long)m->indptr[i],
                                 (long long)m->indptr[i + 1]);
    }
    int64_t nnz = sx_csr_nnz(m);
    for (int64_t k = 0; k < nnz; k++) {
        if (m->indices[k] < 0 || m->indices[k] >= m->n_cols)
            return sx_status_set(st, SX_EFORMAT,
                                 "%s: index %d at entry %lld is outside 0..%lld (n_vars); the "
                                 "file is corrupt", what, m->indices[k], (long long)k,
                                 (long long)m->n_cols - 1);
    }
    if (check_values) {
        for (int64_t k = 0; k < nnz; k++)
            if (!isfinite(m->data[k]))
                return sx_status_set(st, SX_EDATA,
                                     "%s: value %lld is %s; remove or replace non-finite values "
                                     "before loading", what, (long long)k,
                                     isnan(m->data[k]) ? "NaN" : "infinite");
    }
    return SX_OK;
}

typedef struct {
    int32_t j;
    float v;
} entry;

static int cmp_entry(const void *a, const void *b)
{
    int32_t x = ((const entry *)a)->j, y = ((const entry *)b)->j;
    return (x > y) - (x < y);
}

int sx_csr_canonicalize(sx_csr *m, sx_status *st)
{
    entry *buf = NULL;
    size_t cap = 0;
    int64_t out = 0;
    for (int64_t i = 0; i < m->n_rows; i++) {
        int64_t a = m->indptr[i], b = m->indptr[i + 1];
        int sorted = 1;
        for (int64_t k = a + 1; k < b; k++)
            if (m->indices[k] <= m->indices[k - 1]) { sorted = 0; break; }
        m->indptr[i] = out;
        if (sorted) {
            if (out != a) {
                memmove(m->indices + out, m->indices + a, (size_t)(b - a) * sizeof(int32_t));
                memmove(m->data + out, m->data + a, (size_t)(b - a) * sizeof(float));
            }
            out += b - a;
            continue;
        }
        if ((size_t)(b - a) > cap) {
            cap = (size_t)(b - a);
            entry *nb = sx_reallocarray(buf, cap, sizeof(entry));
            if (!nb) {
                sx_free(buf);
                return sx_status_set(st, SX_ENOMEM, "canonicalize: out of memory");
            }
            buf = nb;
        }
        for (int64_t k = a; k < b; k++) buf[k - a] = (entry){m->indices[k], m->data[k]};
        qsort(buf, (size_t)(b - a), sizeof(entry), cmp_entry);
        for (int64_t k = 0; k < b - a; k++) {
            if (k > 0 && buf[k].j == buf[k - 1].j) {
                m->data[out - 1] += buf[k].v;
            } else {
                m->indices[out] = buf[k].j;
                m->data[out] = buf[k].v;
                out++;
            }
        }
    }
    m->indptr[m->n_rows] = out;
    sx_free(buf);
    return SX_OK;
}

sx_csr *sx_csr_from_csc(int64_t n_rows, int64_t n_cols, const int64_t *colptr,
                        const int32_t *rowind, const float *vals, sx_status *st)
{
    int64_t nnz = colptr[n_cols];
    sx_csr *m = sx_csr_new(n_rows, n_cols, nnz, st);
    if (!m) return NULL;
    for (int64_t k = 0; k < nnz; k++) {
        if (rowind[k] < 0 || rowind[k] >= n_rows) {
            sx_csr_free(m);
            sx_status_set(st, SX_EFORMAT, "csc matrix: row index %d out of range 0..%lld",
                          rowind[k], (long long)n_rows - 1);
            return NULL;
        }
        m->indptr[rowind[k] + 1]++;
    }
    for (int64_t i = 0; i < n_rows; i++) m->indptr[i + 1] += m->indptr[i];
    int64_t *pos = sx_mallocarray((size_t)n_rows + 1, sizeof(int64_t));
    if (!pos) {
        sx_csr_free(m);
        sx_status_set(st, SX_ENOMEM, "csc to csr: out of memory");
        return NULL;
    }
    memcpy(pos, m->indptr, (size_t)(n_rows + 1) * sizeof(int64_t));
    for (int64_t j = 0; j < n_cols; j++) {
        for (int64_t k = colptr[j]; k < colptr[j + 1]; k++) {
            int64_t p = pos[rowind[k]]++;
            m->indices[p] = (int32_t)j;
            m->data[p] = vals[k];
        }
    }
    sx_free(pos);
    return m;
}

sx_csr *sx_csr_transpose(const sx_csr *m, sx_status *st)
{
    /* A CSR of m is a CSC of m^T: reuse the CSC conversion with roles swapped. */
    return sx_csr_from_csc(m->n_cols, m->n_rows, m->indptr, m->indices, m->data, st);
}

sx_csr *sx_csr_from_dense(const float *a, int64_t n_rows, int64_t n_cols, sx_status *st)
{
    int64_t nnz = 0;
    for (int64_t i = 0; i < n_rows * n_cols; i++) nnz += a[i] != 0.0f;
    sx_csr *m = sx_csr_new(n_rows, n_cols, nnz, st);
    if (!m) return NULL;
    int64_t k = 0;
    for (int64_t i = 0; i < n_rows; i++) {
        const float *row = a + i * n_cols;
        for (int64_t j = 0; j < n_cols; j++)
            if (row[j] != 0.0f) {
                m->indices[k] = (int32_t)j;
                m->data[k++] = row[j];
            }
        m->indptr[i + 1] = k;
    }
    return m;
}

sx_csr *sx_csr_take_rows(const sx_csr *m, const int64_t *rows, int64_t n, sx_status *st)
{
    int64_t nnz = 0;
    for (int64_t r = 0; r < n; r++) {
        if (rows[r] < 0 || rows[r] >= m->n_rows) {
            sx_status_set(st, SX_EINVAL, "row %lld out of range", (long long)rows[r]);
            return NULL;
        }
        nnz += m->indptr[rows[r] + 1] - m->indptr[rows[r]];
    }
    sx_csr *o = sx_csr_new(n, m->n_cols, nnz, st);
    if (!o) return NULL;
    int64_t k = 0;
    for (int64_t r = 0; r < n; r++) {
        int64_t a = m->indptr[rows[r]], b = m->indptr[rows[r] + 1];
        memcpy(o->indices + k, m->indices + a, (size_t)(b - a) * sizeof(int32_t));
        memcpy(o->data + k, m->data + a, (size_t)(b - a) * sizeof(float));
        k += b - a;
        o->indptr[r + 1] = k;
    }
    return o;
}

sx_csr *sx_csr_remap_cols(const sx_csr *m, const int64_t *map, int64_t new_n_cols, sx_status *st)
{
    int64_t nnz = 0, total = sx_csr_nnz(m);
    for (int64_t k = 0; k < total; k++) nnz += map[m->indices[k]] >= 0;
    sx_csr *o = sx_csr_new(m->n_rows, new_n_cols, nnz, st);
    if (!o) return NULL;
    int64_t k = 0;
    int monotone = 1;
    int64_t last = -1;
    for (int64_t j = 0; j < m->n_cols; j++)
        if (map[j] >= 0) {
            if (map[j] <= last) monotone = 0;
            last = map[j];
        }
    for (int64_t i = 0; i < m->n_rows; i++) {
        for (int64_t p = m->indptr[i]; p < m->indptr[i + 1]; p++) {
            int64_t nj = map[m->indices[p]];
            if (nj < 0) continue;
            o->indices[k] = (int32_t)nj;
            o->data[k++] = m->data[p];
        }
        o->indptr[i + 1] = k;
    }
    if (!monotone && sx_csr_canonicalize(o, st) != SX_OK) {
        sx_csr_free(o);
        return NULL;
    }
    return o;
}

sx_csr *sx_csr_vstack(const sx_csr *const *parts, int n, sx_status *st)
{
    int64_t rows = 0, nnz = 0, cols = n > 0 ? parts[0]->n_cols : 0;
    for (int i = 0; i < n; i++) {
        if (parts[i]->n_cols != cols) {
            sx_status_set(st, SX_EINVAL, "vstack: part %d has %lld columns, expected %lld", i,
                          (long long)parts[i]->n_cols, (long long)cols);
            return NULL;
        }
        rows += parts[i]->n_rows;
        nnz += sx_csr_nnz(parts[i]);
    }
    sx_csr *o = sx_csr_new(rows, cols, nnz, st);
    if (!o) return NULL;
    int64_t r = 0, k = 0;
    for (int i = 0; i < n; i++) {
        const sx_csr *p = parts[i];
        int64_t pn = sx_csr_nnz(p);
        memcpy(o->indices + k, p->indices, (size_t)pn * sizeof(int32_t));
        memcpy(o->data + k, p->data, (size_t)pn * sizeof(float));
        for (int64_t j = 0; j < p->n_rows; j++) o->indptr[r + j + 1] = k + p->indptr[j + 1];
        r += p->n_rows;
        k += pn;
    }
    return o;
}

void sx_csr_densify_rows(const sx_csr *m, int64_t r0, int64_t r1, float *out)
{
    memset(out, 0, (size_t)(r1 - r0) * (size_t)m->n_cols * sizeof(float));
    for (int64_t i = r0; i < r1; i++) {
        float *row = out + (i - r0) * m->n_cols;
        for (int64_t p = m->indptr[i]; p < m->indptr[i + 1]; p++) row[m->indices[p]] = m->data[p];
    }
}

double sx_csr_sum(const sx_csr *m)
{
    double s = 0;
    int64_t nnz = sx_csr_nnz(m);
    for (int64_t k = 0; k < nnz; k++) s += m->data[k];
    return s;
}
