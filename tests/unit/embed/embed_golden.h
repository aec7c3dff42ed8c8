/* embed_golden — shared loading code for the core/embed unit tests: the golden files in
 * $SX_SHARED/golden/embed/<dataset>/embed.h5 (see shared/golden/README.md section C). */
#ifndef EMBED_GOLDEN_H
#define EMBED_GOLDEN_H

#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_h5.h"
#include "sx_matrix.h"
#include "sx_test.h"

static const char *const EG_SETS[] = {"pbmc_3tech", "cellbench_3cl", "pancreas_baron_human_mouse"};
#define EG_NSETS 3

typedef struct eg {
    const char *name;
    hid_t f;
    int64_t n;
    int dim;
    double *latent;
    char **batch, **ctype;
    int64_t nbatch_s, nctype_s;
} eg;

static inline hid_t eg_open_file(const char *set)
{
    char rel[256];
    snprintf(rel, sizeof rel, "golden/embed/%s/embed.h5", set);
    sx_status st = {0};
    hid_t f = sx_h5_open_ro(sx_test_shared(rel), &st);
    ck_assert_msg(f >= 0, "open %s: %s", rel, st.msg);
    return f;
}

static inline double *eg_f64(hid_t f, const char *path, int64_t *n)
{
    sx_status st = {0};
    double *v = NULL;
    int64_t m = 0;
    ck_assert_msg(sx_h5_read_f64(f, path, &v, &m, &st) == SX_OK, "%s: %s", path, st.msg);
    if (n) *n = m;
    return v;
}

static inline int64_t *eg_i64(hid_t f, const char *path, int64_t *n)
{
    sx_status st = {0};
    int64_t *v = NULL, m = 0;
    ck_assert_msg(sx_h5_read_i64(f, path, &v, &m, &st) == SX_OK, "%s: %s", path, st.msg);
    if (n) *n = m;
    return v;
}

static inline char **eg_str(hid_t f, const char *path, int64_t *n)
{
    sx_status st = {0};
    char **v = NULL;
    int64_t m = 0;
    ck_assert_msg(sx_h5_read_strings(f, path, &v, &m, &st) == SX_OK, "%s: %s", path, st.msg);
    if (n) *n = m;
    return v;
}

static inline double eg_attr(hid_t f, const char *path, const char *name)
{
    sx_status st = {0};
    double *v = NULL;
    int64_t m = 0;
    ck_assert_msg(sx_h5_attr_f64(f, path, name, &v, &m, &st) == SX_OK && m >= 1, "%s@%s: %s",
                  path, name, st.msg);
    double x = v[0];
    sx_free(v);
    return x;
}

static inline void eg_load(eg *g, const char *set)
{
    memset(g, 0, sizeof *g);
    g->name = set;
    g->f = eg_open_file(set);
    int64_t m = 0;
    g->latent = eg_f64(g->f, "latent", &m);
    g->batch = eg_str(g->f, "batch", &g->nbatch_s);
    g->ctype = eg_str(g->f, "cell_type", &g->nctype_s);
    g->n = g->nbatch_s;
    g->dim = (int)(m / g->n);
    ck_assert_int_eq(g->dim * g->n, m);
}

/* The latent rows idx[0..n-1] gathered into a new n x dim matrix (sx_free). */
static inline double *eg_rows(const eg *g, const int64_t *idx, int64_t n)
{
    double *x = sx_mallocarray((size_t)n * g->dim, sizeof *x);
    ck_assert(x);
    for (int64_t i = 0; i < n; i++) memcpy(x + i * g->dim, g->latent + idx[i] * g->dim, g->dim * sizeof *x);
    return x;
}

static inline void eg_close(eg *g)
{
    sx_free(g->latent);
    sx_h5_free_strings(g->batch, g->nbatch_s);
    sx_h5_free_strings(g->ctype, g->nctype_s);
    H5Fclose(g->f);
}

/* Golden CSR (data as float, indices, indptr) */
typedef struct eg_csr {
    int64_t n, nnz;
    double *data;
    int64_t *indices, *indptr;
} eg_csr;

static inline void eg_csr_load(hid_t f, const char *grp, eg_csr *c)
{
    char p[256];
    int64_t m;
    snprintf(p, sizeof p, "%s/data", grp);
    c->data = eg_f64(f, p, &c->nnz);
    snprintf(p, sizeof p, "%s/indices", grp);
    c->indices = eg_i64(f, p, &m);
    snprintf(p, sizeof p, "%s/indptr", grp);
    c->indptr = eg_i64(f, p, &m);
    c->n = m - 1;
}

static inline void eg_csr_free(eg_csr *c)
{
    sx_free(c->data);
    sx_free(c->indices);
    sx_free(c->indptr);
}

/* Golden connectivities as an sx_csr (float32 values as stored). */
static inline sx_csr *eg_conn(hid_t f)
{
    eg_csr c;
    eg_csr_load(f, "neighbors_scanpy/connectivities", &c);
    sx_status st = {0};
    sx_csr *m = sx_csr_new(c.n, c.n, c.nnz, &st);
    ck_assert_msg(m != NULL, "%s", st.msg);
    for (int64_t i = 0; i <= c.n; i++) m->indptr[i] = c.indptr[i];
    for (int64_t e = 0; e < c.nnz; e++) {
        m->indices[e] = (int32_t)c.indices[e];
        m->data[e] = (float)c.data[e];
    }
    eg_csr_free(&c);
    return m;
}

#endif
