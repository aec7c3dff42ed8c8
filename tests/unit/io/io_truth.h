/* io_truth — shared by the io unit tests: run tests/unit/io/io_truth.py (scipy/h5py/pandas
 * under $SX_PYTHON) on an input and compare a dataset we read with what Python read.
 * Header-only (static functions) because every test file is its own executable. */
#ifndef IO_TRUTH_H
#define IO_TRUTH_H

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_dataset.h"
#include "sx_test.h"

typedef struct {
    int64_t n_obs, n_vars, nnz;
    double sum;
    int64_t *indptr;
    int32_t *indices;
    float *data;
    char **obs, **var;
    char dir[512];
} io_truth;

static inline void *truth_slurp(const char *dir, const char *name, size_t *size)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (b) b[n] = '\0';
    fclose(f);
    *size = (size_t)n;
    return b;
}

/* Lines of a text file as an array (the buffer is kept inside line 0's allocation). */
static inline char **truth_lines(const char *dir, const char *name, int64_t *n)
{
    size_t sz;
    char *b = truth_slurp(dir, name, &sz);
    *n = 0;
    if (!b) return NULL;
    int64_t cnt = 0;
    for (size_t i = 0; i < sz; i++) cnt += b[i] == '\n';
    char **v = calloc((size_t)cnt + 1, sizeof(char *));
    char *p = b;
    for (int64_t i = 0; i < cnt; i++) {
        v[i] = p;
        p = strchr(p, '\n');
        *p++ = '\0';
    }
    v[cnt] = b; /* remember the block for free */
    *n = cnt;
    return v;
}

static inline void truth_free_lines(char **v, int64_t n)
{
    if (!v) return;
    free(v[n]);
    free(v);
}

/* Run the Python reader; fails the test when it does not succeed. */
static inline void truth_run(io_truth *t, const char *kind, const char *path, const char *genome)
{
    const char *py = getenv("SX_PYTHON");
    memset(t, 0, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "%s/truth", sx_test_tmpdir());
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' '%s' %s '%s' '%s' %s", py && *py ? py : "/usr/bin/python3",
             sx_test_source("tests/unit/io/io_truth.py"), kind, path, t->dir,
             genome ? genome : "-");
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "python truth failed (%d): %s", rc, cmd);
    size_t sz;
    char *s = truth_slurp(t->dir, "shape.txt", &sz);
    ck_assert_ptr_nonnull(s);
    long long a, b, c;
    ck_assert_int_eq(sscanf(s, "%lld %lld %lld %lf", &a, &b, &c, &t->sum), 4);
    free(s);
    t->n_obs = a;
    t->n_vars = b;
    t->nnz = c;
    t->indptr = truth_slurp(t->dir, "indptr.bin", &sz);
    ck_assert_uint_eq(sz, (size_t)(a + 1) * 8);
    t->indices = truth_slurp(t->dir, "indices.bin", &sz);
    ck_assert_uint_eq(sz, (size_t)c * 4);
    t->data = truth_slurp(t->dir, "data.bin", &sz);
    ck_assert_uint_eq(sz, (size_t)c * 4);
    int64_t n;
    t->obs = truth_lines(t->dir, "obs.txt", &n);
    ck_assert_int_eq(n, a);
    t->var = truth_lines(t->dir, "var.txt", &n);
    ck_assert_int_eq(n, b);
}

static inline void truth_free(io_truth *t)
{
    free(t->indptr);
    free(t->indices);
    free(t->data);
    truth_free_lines(t->obs, t->n_obs);
    truth_free_lines(t->var, t->n_vars);
}

/* X, var names and (when check_obs) obs names must equal the truth exactly. */
static inline void truth_check_dataset_opt(const io_truth *t, const sx_dataset *d, const char *what,
                                    int check_obs)
{
    ck_assert_msg(d->X, "%s: no X", what);
    ck_assert_msg(d->X->n_rows == t->n_obs && d->X->n_cols == t->n_vars,
                  "%s: shape %lld x %lld, python %lld x %lld", what, (long long)d->X->n_rows,
                  (long long)d->X->n_cols, (long long)t->n_obs, (long long)t->n_vars);
    ck_assert_int_eq(sx_dataset_n_obs(d), t->n_obs);
    ck_assert_int_eq(sx_dataset_n_vars(d), t->n_vars);
    ck_assert_msg(sx_csr_nnz(d->X) == t->nnz, "%s: nnz %lld, python %lld", what,
                  (long long)sx_csr_nnz(d->X), (long long)t->nnz);
    /* Check's asserts report each pass through a pipe: compare first, assert once. */
    int64_t bad = -1;
    for (int64_t i = 0; i <= t->n_obs && bad < 0; i++)
        if (d->X->indptr[i] != t->indptr[i]) bad = i;
    ck_assert_msg(bad < 0, "%s: indptr[%lld] %lld vs %lld", what, (long long)bad,
                  (long long)(bad < 0 ? 0 : d->X->indptr[bad]),
                  (long long)(bad < 0 ? 0 : t->indptr[bad]));
    for (int64_t k = 0; k < t->nnz && bad < 0; k++)
        if (d->X->indices[k] != t->indices[k] || d->X->data[k] != t->data[k]) bad = k;
    ck_assert_msg(bad < 0, "%s: entry %lld: column %d value %g vs python column %d value %g",
                  what, (long long)bad, bad < 0 ? 0 : d->X->indices[bad],
                  bad < 0 ? 0.0 : d->X->data[bad], bad < 0 ? 0 : t->indices[bad],
                  bad < 0 ? 0.0 : t->data[bad]);
    ck_assert_msg(fabs(sx_csr_sum(d->X) - t->sum) <= 1e-9 * (1 + fabs(t->sum)),
                  "%s: sum %.17g vs %.17g", what, sx_csr_sum(d->X), t->sum);
    for (int64_t i = 0; check_obs && i < t->n_obs && bad < 0; i++)
        if (strcmp(d->obs->index[i], t->obs[i]) != 0) bad = i;
    ck_assert_msg(bad < 0, "%s: obs[%lld] '%s' vs '%s'", what, (long long)bad,
                  bad < 0 ? "" : d->obs->index[bad], bad < 0 ? "" : t->obs[bad]);
    for (int64_t j = 0; j < t->n_vars && bad < 0; j++)
        if (strcmp(d->var->index[j], t->var[j]) != 0) bad = j;
    ck_assert_msg(bad < 0, "%s: var[%lld] '%s' vs '%s'", what, (long long)bad,
                  bad < 0 ? "" : d->var->index[bad], bad < 0 ? "" : t->var[bad]);
}

static inline void truth_check_dataset(const io_truth *t, const sx_dataset *d, const char *what)
{
    truth_check_dataset_opt(t, d, what, 1);
}

/* A string var column must equal var_<name>.txt of the truth. */
static inline void truth_check_var_col(const io_truth *t, const sx_dataset *d, const char *name)
{
    char fn[256];
    snprintf(fn, sizeof fn, "var_%s.txt", name);
    int64_t n;
    char **v = truth_lines(t->dir, fn, &n);
    ck_assert_msg(v, "python produced no var column %s", name);
    ck_assert_int_eq(n, t->n_vars);
    const sx_column *c = sx_frame_col(d->var, name);
    ck_assert_msg(c, "var column %s missing", name);
    ck_assert_int_eq(c->kind, SX_COL_STRING);
    int64_t bad = -1;
    for (int64_t j = 0; j < n && bad < 0; j++)
        if (!c->str[j] || strcmp(c->str[j], v[j]) != 0) bad = j;
    ck_assert_msg(bad < 0, "var %s[%lld] '%s' vs '%s'", name, (long long)bad,
                  bad < 0 || !c->str[bad] ? "(null)" : c->str[bad], bad < 0 ? "" : v[bad]);
    truth_free_lines(v, n);
}

/* Two datasets read from different files must agree exactly (X, names). */
static inline void same_dataset(const sx_dataset *a, const sx_dataset *b)
{
    ck_assert_int_eq(sx_dataset_n_obs(a), sx_dataset_n_obs(b));
    ck_assert_int_eq(sx_dataset_n_vars(a), sx_dataset_n_vars(b));
    int64_t nnz = sx_csr_nnz(a->X);
    ck_assert_int_eq(nnz, sx_csr_nnz(b->X));
    ck_assert_mem_eq(a->X->indptr, b->X->indptr, (size_t)(a->X->n_rows + 1) * 8);
    ck_assert_mem_eq(a->X->indices, b->X->indices, (size_t)nnz * 4);
    ck_assert_mem_eq(a->X->data, b->X->data, (size_t)nnz * 4);
    int64_t bad = -1;
    for (int64_t i = 0; i < sx_dataset_n_obs(a) && bad < 0; i++)
        if (strcmp(a->obs->index[i], b->obs->index[i]) != 0) bad = i;
    ck_assert_msg(bad < 0, "obs name %lld differs", (long long)bad);
    for (int64_t j = 0; j < sx_dataset_n_vars(a) && bad < 0; j++)
        if (strcmp(a->var->index[j], b->var->index[j]) != 0) bad = j;
    ck_assert_msg(bad < 0, "var name %lld differs", (long long)bad);
}

#endif
