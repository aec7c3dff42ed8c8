/* sx_prep_domain — the domain (batch) column, ALGORITHM.md §1.5. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_prep.h"

/* Python's str() of a float: shortest round-trip digits, fixed notation for exponents in
 * [-4, 16), ".0" appended to integral values (what pandas shows for a float category). */
static void py_float_str(double v, char *buf, size_t n)
{
    if (isnan(v)) {
        snprintf(buf, n, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, n, v > 0 ? "inf" : "-inf");
        return;
    }
    int p;
    char tmp[64];
    for (p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v) break;
    }
    int ex = atoi(strchr(tmp, 'e') + 1);
    if (ex >= -4 && ex < 16) {
        int dec = p - 1 - ex;
        snprintf(buf, n, "%.*f", dec > 0 ? dec : 0, v);
        if (!strchr(buf, '.')) strncat(buf, ".0", n - strlen(buf) - 1);
    } else {
        /* C prints e+16 / e-07 like Python */
        snprintf(buf, n, "%s", tmp);
    }
}

/* Text of row i of a non-categorical column as Python's str() gives it. */
static int cell_text(const sx_column *c, int64_t i, char *buf, size_t n)
{
    if (c->mask && c->mask[i]) return 0;
    switch (c->kind) {
    case SX_COL_STRING:
        if (!c->str[i]) return 0;
        snprintf(buf, n, "%s", c->str[i]);
        return 1;
    case SX_COL_CATEGORICAL:
        if (c->codes[i] < 0) return 0;
        snprintf(buf, n, "%s", c->categories[c->codes[i]]);
        return 1;
    case SX_COL_INT:
        snprintf(buf, n, "%" PRId64, c->i64[i]);
        return 1;
    case SX_COL_FLOAT:
        if (isnan(c->f64[i])) return 0;
        py_float_str(c->f64[i], buf, n);
        return 1;
    case SX_COL_BOOL:
        snprintf(buf, n, "%s", c->b[i] ? "True" : "False");
        return 1;
    }
    return 0;
}

typedef struct numkey {
    double v;
    int64_t row;
} numkey;

static int cmp_numkey(const void *a, const void *b)
{
    double x = ((const numkey *)a)->v, y = ((const numkey *)b)->v;
    return (x > y) - (x < y);
}

/* Categorical from a numeric or bool column: categories sorted numerically. */
static int numeric_categorical(sx_frame *obs, const sx_column *c, sx_status *st)
{
    int64_t n = obs->n_rows;
    numkey *k = sx_mallocarray((size_t)(n ? n : 1), sizeof(numkey));
    int32_t *codes = sx_mallocarray((size_t)(n ? n : 1), sizeof(int32_t));
    char **cats = sx_calloc((size_t)(n ? n : 1), sizeof(char *));
    int32_t nc = 0;
    int rc = SX_OK;
    if (!k || !codes || !cats) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory building the batch categories");
        goto fail;
    }
    for (int64_t i = 0; i < n; i++) {
        k[i].row = i;
        k[i].v = c->kind == SX_COL_INT ? (double)c->i64[i]
                 : c->kind == SX_COL_BOOL ? (double)c->b[i] : c->f64[i];
    }
    qsort(k, (size_t)n, sizeof(numkey), cmp_numkey);
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || k[i].v != k[i - 1].v) {
            char buf[64];
            cell_text(c, k[i].row, buf, sizeof buf);
            if (!(cats[nc++] = sx_strdup(buf))) {
                rc = sx_status_set(st, SX_ENOMEM, "out of memory building the batch categories");
                goto fail;
            }
        }
        codes[k[i].row] = nc - 1;
    }
    rc = sx_frame_add_categorical(obs, "batch", codes, (const char *const *)cats, nc, 0, st);
fail:
    for (int32_t j = 0; j < nc; j++) sx_free(cats[j]);
    sx_free(cats);
    sx_free(codes);
    sx_free(k);
    return rc;
}

static int count_missing(const sx_column *c, int64_t n)
{
    char buf[64];
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) m += !cell_text(c, i, buf, sizeof buf);
    return m > INT32_MAX ? INT32_MAX : (int)m;
}

static int list_columns(const sx_frame *f, char *buf, size_t n)
{
    buf[0] = 0;
    for (int i = 0; i < f->n_cols && strlen(buf) + 4 < n; i++) {
        if (i) strncat(buf, ", ", n - strlen(buf) - 1);
        strncat(buf, f->cols[i].name, n - strlen(buf) - 1);
    }
    return 0;
}

int sx_prep_domains(sx_frame *obs, const char *batch_name, int32_t **codes_out, char ***names_out,
                    int32_t *n_out, sx_status *st)
{
    int64_t n = obs->n_rows;
    const char *name = batch_name && *batch_name ? batch_name : "batch";
    char **vals = NULL;
    int rc = SX_OK;
    *codes_out = NULL;
    *names_out = NULL;
    *n_out = 0;
    const char *comma = strchr(name, ',');
    if (comma) {
        /* "c1,c2": label = str(c1) + "_" + str(c2) (SCALEX >= 1.0.4), categories sorted */
        char n1[256], n2[256];
        const char *c3 = strchr(comma + 1, ',');
        size_t l1 = (size_t)(comma - name), l2 = c3 ? (size_t)(c3 - comma - 1) : strlen(comma + 1);
        if (l1 >= sizeof n1 || l2 >= sizeof n2)
            return sx_status_set(st, SX_EINVAL, "batch_name '%s': column names too long", name);
        memcpy(n1, name, l1);
        n1[l1] = 0;
        memcpy(n2, comma + 1, l2);
        n2[l2] = 0;
        const sx_column *a = sx_frame_col(obs, n1), *b = sx_frame_col(obs, n2);
        if (!a || !b) {
            char cols[512];
            list_columns(obs, cols, sizeof cols);
            return sx_status_set(st, SX_ENOTFOUND, "batch_name '%s': obs has no column '%s'; "
                                 "obs columns are: %s", name, !a ? n1 : n2, cols);
        }
        vals = sx_calloc((size_t)(n ? n : 1), sizeof(char *));
        if (!vals) return sx_status_set(st, SX_ENOMEM, "out of memory joining batch columns");
        for (int64_t i = 0; i < n; i++) {
            char x[256], y[256];
            if (!cell_text(a, i, x, sizeof x)) snprintf(x, sizeof x, "nan");
            if (!cell_text(b, i, y, sizeof y)) snprintf(y, sizeof y, "nan");
            size_t l = strlen(x) + strlen(y) + 2;
            if (!(vals[i] = sx_malloc(l))) {
                rc = sx_status_set(st, SX_ENOMEM, "out of memory joining batch columns");
                goto fail;
            }
            snprintf(vals[i], l, "%s_%s", x, y);
        }
        if ((rc = sx_frame_add_categorical_from_strings(obs, "batch", (const char *const *)vals, 1,
                                                        st)) != SX_OK)
            goto fail;
    } else {
        const sx_column *c = sx_frame_col(obs, name);
        if (!c && strcmp(name, "batch") != 0) {
            char cols[512];
            list_columns(obs, cols, sizeof cols);
            return sx_status_set(st, SX_ENOTFOUND, "batch_name '%s' is not an obs column; obs "
                                 "columns are: %s", name, cols);
        }
        if (!c) {
            /* no batch column: one domain named "batch" */
            int32_t *z = sx_calloc((size_t)(n ? n : 1), sizeof(int32_t));
            const char *one[1] = {"batch"};
            if (!z) return sx_status_set(st, SX_ENOMEM, "out of memory");
            rc = sx_frame_add_categorical(obs, "batch", z, one, 1, 0, st);
            sx_free(z);
            if (rc != SX_OK) return rc;
        } else {
            int miss = count_missing(c, n);
            if (miss > 0)
                return sx_status_set(st, SX_EDATA, "obs column '%s' (the batch column) has %d "
                                     "missing values; fill them or choose another batch_name",
                                     name, miss);
            if (c->kind == SX_COL_CATEGORICAL) {
                /* keep the category order (e.g. the input order of a concatenation) */
                if (strcmp(c->name, "batch") != 0) {
                    int32_t *cp = sx_mallocarray((size_t)(n ? n : 1), sizeof(int32_t));
                    if (!cp) return sx_status_set(st, SX_ENOMEM, "out of memory");
                    memcpy(cp, c->codes, sizeof(int32_t) * (size_t)n);
                    rc = sx_frame_add_categorical(obs, "batch", cp,
                                                  (const char *const *)c->categories,
                                                  c->n_categories, c->ordered, st);
                    sx_free(cp);
                    if (rc != SX_OK) return rc;
                }
            } else if (c->kind == SX_COL_STRING) {
                /* own copies: replacing "batch" frees the source column's strings */
                vals = sx_calloc((size_t)(n ? n : 1), sizeof(char *));
                if (!vals) return sx_status_set(st, SX_ENOMEM, "out of memory");
                for (int64_t i = 0; i < n; i++)
                    if (!(vals[i] = sx_strdup(c->str[i]))) {
                        rc = sx_status_set(st, SX_ENOMEM, "out of memory");
                        goto fail;
                    }
                if ((rc = sx_frame_add_categorical_from_strings(obs, "batch",
                                                                (const char *const *)vals, 1,
                                                                st)) != SX_OK)
                    goto fail;
            } else {
                if ((rc = numeric_categorical(obs, c, st)) != SX_OK) return rc;
            }
        }
    }
    {
        const sx_column *bc = sx_frame_col(obs, "batch");
        int32_t *codes = sx_mallocarray((size_t)(n ? n : 1), sizeof(int32_t));
        char **names = sx_calloc((size_t)(bc->n_categories ? bc->n_categories : 1), sizeof(char *));
        if (!codes || !names) {
            sx_free(codes);
            sx_free(names);
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
            goto fail;
        }
        memcpy(codes, bc->codes, sizeof(int32_t) * (size_t)n);
        for (int32_t j = 0; j < bc->n_categories; j++) {
            if (!(names[j] = sx_strdup(bc->categories[j]))) {
                for (int32_t q = 0; q < j; q++) sx_free(names[q]);
                sx_free(names);
                sx_free(codes);
                rc = sx_status_set(st, SX_ENOMEM, "out of memory");
                goto fail;
            }
        }
        *codes_out = codes;
        *names_out = names;
        *n_out = bc->n_categories;
    }
fail:
    if (vals) {
        for (int64_t i = 0; i < n; i++) sx_free(vals[i]);
        sx_free(vals);
    }
    return rc;
}
