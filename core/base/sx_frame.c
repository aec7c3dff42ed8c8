#include "sx_frame.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"

static void free_strs(char **s, int64_t n)
{
    if (!s) return;
    for (int64_t i = 0; i < n; i++) sx_free(s[i]);
    sx_free(s);
}

static char **copy_strs(const char *const *s, int64_t n)
{
    char **o = sx_calloc((size_t)(n ? n : 1), sizeof(char *));
    if (!o) return NULL;
    for (int64_t i = 0; i < n; i++) {
        if (!s[i]) continue;
        o[i] = sx_strdup(s[i]);
        if (!o[i]) {
            free_strs(o, n);
            return NULL;
        }
    }
    return o;
}

static void column_clear(sx_column *c, int64_t n_rows)
{
    sx_free(c->name);
    free_strs(c->str, n_rows);
    sx_free(c->codes);
    sx_free(c->i64);
    sx_free(c->f64);
    sx_free(c->b);
    free_strs(c->categories, c->n_categories);
    sx_free(c->mask);
    memset(c, 0, sizeof *c);
}

sx_frame *sx_frame_new(int64_t n_rows, const char *const *names, sx_status *st)
{
    sx_frame *f = sx_calloc(1, sizeof *f);
    if (!f) goto oom;
    f->n_rows = n_rows;
    f->index_name = sx_strdup("_index");
    if (!f->index_name) goto oom;
    if (names) {
        f->index = copy_strs(names, n_rows);
        if (!f->index) goto oom;
        for (int64_t i = 0; i < n_rows; i++)
            if (!f->index[i] && !(f->index[i] = sx_strdup(""))) goto oom;
    } else {
        f->index = sx_calloc((size_t)(n_rows ? n_rows : 1), sizeof(char *));
        if (!f->index) goto oom;
        for (int64_t i = 0; i < n_rows; i++) {
            char b[32];
            snprintf(b, sizeof b, "%" PRId64, i);
            if (!(f->index[i] = sx_strdup(b))) goto oom;
        }
    }
    return f;
oom:
    sx_frame_free(f);
    sx_status_set(st, SX_ENOMEM, "cannot allocate a table of %lld rows", (long long)n_rows);
    return NULL;
}

void sx_frame_free(sx_frame *f)
{
    if (!f) return;
    free_strs(f->index, f->n_rows);
    sx_free(f->index_name);
    for (int i = 0; i < f->n_cols; i++) column_clear(&f->cols[i], f->n_rows);
    sx_free(f->cols);
    sx_free(f);
}

sx_column *sx_frame_col(const sx_frame *f, const char *name)
{
    int i = sx_frame_col_index(f, name);
    return i < 0 ? NULL : &f->cols[i];
}

int sx_frame_col_index(const sx_frame *f, const char *name)
{
    for (int i = 0; i < f->n_cols; i++)
        if (strcmp(f->cols[i].name, name) == 0) return i;
    return -1;
}

void sx_frame_drop(sx_frame *f, const char *name)
{
    int i = sx_frame_col_index(f, name);
    if (i < 0) return;
    column_clear(&f->cols[i], f->n_rows);
    memmove(&f->cols[i], &f->cols[i + 1], (size_t)(f->n_cols - i - 1) * sizeof(sx_column));
    f->n_cols--;
}

/* Slot for a new column named `name` (replacing one of that name); NULL on OOM. */
static sx_column *new_slot(sx_frame *f, const char *name)
{
    sx_frame_drop(f, name);
    sx_column *nc = sx_reallocarray(f->cols, (size_t)f->n_cols + 1, sizeof(sx_column));
    if (!nc) return NULL;
    f->cols = nc;
    sx_column *c = &f->cols[f->n_cols];
    memset(c, 0, sizeof *c);
    c->name = sx_strdup(name);
    if (!c->name) return NULL;
    f->n_cols++;
    return c;
}

static int fail_slot(sx_frame *f, const char *name, sx_status *st)
{
    sx_frame_drop(f, name);
    return sx_status_set(st, SX_ENOMEM, "out of memory adding column '%s'", name);
}

int sx_frame_add_strings(sx_frame *f, const char *name, const char *const *vals, sx_status *st)
{
    sx_column *c = new_slot(f, name);
    if (!c) return sx_status_set(st, SX_ENOMEM, "out of memory adding column '%s'", name);
    c->kind = SX_COL_STRING;
    c->str = copy_strs(vals, f->n_rows);
    return c->str ? SX_OK : fail_slot(f, name, st);
}

int sx_frame_add_categorical(sx_frame *f, const char *name, const int32_t *codes,
                             const char *const *cats, int32_t n_cats, int ordered, sx_status *st)
{
    for (int64_t i = 0; i < f->n_rows; i++)
        if (codes[i] < -1 || codes[i] >= n_cats)
            return sx_status_set(st, SX_EFORMAT,
                                 "column '%s': category code %d at row %lld is outside "
                                 "-1..%d", name, codes[i], (long long)i, n_cats - 1);
    sx_column *c = new_slot(f, name);
    if (!c) return sx_status_set(st, SX_ENOMEM, "out of memory adding column '%s'", name);
    c->kind = SX_COL_CATEGORICAL;
    c->ordered = ordered;
    c->n_categories = n_cats;
    c->codes = sx_mallocarray((size_t)(f->n_rows ? f->n_rows : 1), sizeof(int32_t));
    c->categories = copy_strs(cats, n_cats);
    if (!c->codes || !c->categories) return fail_slot(f, name, st);
    memcpy(c->codes, codes, (size_t)f->n_rows * sizeof(int32_t));
    return SX_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int sx_frame_add_categorical_from_strings(sx_frame *f, const char *name, const char *const *vals,
                                          int sort_cats, sx_status *st)
{
    int64_t n = f->n_rows;
    int rc = SX_OK;
    const char **cats = sx_calloc((size_t)(n ? n : 1), sizeof(char *));
    int32_t *codes = sx_mallocarray((size_t)(n ? n : 1), sizeof(int32_t));
    int64_t *order = sx_mallocarray((size_t)(n ? n : 1), sizeof(int64_t));
    if (!cats || !codes || !order) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory building categorical '%s'", name);
        goto fail;
    }
    /* Distinct values in first-appearance order via a sorted index (O(n log n)). */
    const char **sorted = cats; /* reuse as scratch first */
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (vals[i]) sorted[m++] = vals[i];
    qsort(sorted, (size_t)m, sizeof(char *), cmp_str);
    int64_t u = 0;
    for (int64_t i = 0; i < m; i++)
        if (u == 0 || strcmp(sorted[u - 1], sorted[i]) != 0) sorted[u++] = sorted[i];
    /* sorted[0..u) are the distinct values in sorted order */
    int32_t *rank = codes; /* codes[i] = index in sorted list */
    for (int64_t i = 0; i < n; i++) {
        if (!vals[i]) {
            rank[i] = -1;
            continue;
        }
        int64_t lo = 0, hi = u - 1;
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if (strcmp(sorted[mid], vals[i]) < 0) lo = mid + 1; else hi = mid;
        }
        rank[i] = (int32_t)lo;
    }
    if (!sort_cats) {
        /* renumber by first appearance */
        for (int64_t j = 0; j < u; j++) order[j] = -1;
        int32_t next = 0;
        for (int64_t i = 0; i < n; i++)
            if (rank[i] >= 0 && order[rank[i]] < 0) order[rank[i]] = next++;
        const char **firsts = sx_calloc((size_t)(u ? u : 1), sizeof(char *));
        if (!firsts) {
            rc = sx_status_set(st, SX_ENOMEM, "out of memory building categorical '%s'", name);
            goto fail;
        }
        for (int64_t j = 0; j < u; j++) firsts[order[j]] = sorted[j];
        for (int64_t i = 0; i < n; i++)
            if (rank[i] >= 0) rank[i] = (int32_t)order[rank[i]];
        for (int64_t j = 0; j < u; j++) sorted[j] = firsts[j];
        sx_free(firsts);
    }
    if (u > INT32_MAX) {
        rc = sx_status_set(st, SX_ELIMIT, "column '%s' has too many categories", name);
        goto fail;
    }
    rc = sx_frame_add_categorical(f, name, codes, sorted, (int32_t)u, 0, st);
fail:
    sx_free(cats);
    sx_free(codes);
    sx_free(order);
    return rc;
}

#define ADD_NUM(fn, kind_, field, type)                                                    \
    int fn(sx_frame *f, const char *name, const type *vals, sx_status *st)                 \
    {                                                                                      \
        sx_column *c = new_slot(f, name);                                                  \
        if (!c) return sx_status_set(st, SX_ENOMEM, "out of memory adding column '%s'", name); \
        c->kind = kind_;                                                                   \
        c->field = sx_mallocarray((size_t)(f->n_rows ? f->n_rows : 1), sizeof(type));      \
        if (!c->field) return fail_slot(f, name, st);                                      \
        memcpy(c->field, vals, (size_t)f->n_rows * sizeof(type));                          \
        return SX_OK;                                                                      \
    }

ADD_NUM(sx_frame_add_int, SX_COL_INT, i64, int64_t)
ADD_NUM(sx_frame_add_float, SX_COL_FLOAT, f64, double)
ADD_NUM(sx_frame_add_bool, SX_COL_BOOL, b, uint8_t)

const char *sx_column_text(const sx_column *c, int64_t i, char *buf, int bufsz)
{
    if (c->mask && c->mask[i]) return "";
    switch (c->kind) {
    case SX_COL_STRING:
        return c->str[i] ? c->str[i] : "";
    case SX_COL_CATEGORICAL:
        return c->codes[i] >= 0 ? c->categories[c->codes[i]] : "";
    case SX_COL_INT:
        snprintf(buf, (size_t)bufsz, "%" PRId64, c->i64[i]);
        return buf;
    case SX_COL_FLOAT:
        if (isnan(c->f64[i])) return "";
        snprintf(buf, (size_t)bufsz, "%.17g", c->f64[i]);
        return buf;
    case SX_COL_BOOL:
        return c->b[i] ? "True" : "False";
    }
    return "";
}

static int copy_column_rows(const sx_column *src, sx_column *dst, const int64_t *rows, int64_t n)
{
    memset(dst, 0, sizeof *dst);
    dst->name = sx_strdup(src->name);
    dst->kind = src->kind;
    dst->ordered = src->ordered;
    if (!dst->name) return -1;
    size_t cnt = (size_t)(n ? n : 1);
    switch (src->kind) {
    case SX_COL_STRING:
        if (!(dst->str = sx_calloc(cnt, sizeof(char *)))) return -1;
        for (int64_t i = 0; i < n; i++)
            if (src->str[rows[i]] && !(dst->str[i] = sx_strdup(src->str[rows[i]]))) return -1;
        break;
    case SX_COL_CATEGORICAL:
        if (!(dst->codes = sx_mallocarray(cnt, sizeof(int32_t)))) return -1;
        for (int64_t i = 0; i < n; i++) dst->codes[i] = src->codes[rows[i]];
        dst->n_categories = src->n_categories;
        if (!(dst->categories = copy_strs((const char *const *)src->categories,
                                          src->n_categories)))
            return -1;
        break;
    case SX_COL_INT:
        if (!(dst->i64 = sx_mallocarray(cnt, sizeof(int64_t)))) return -1;
        for (int64_t i = 0; i < n; i++) dst->i64[i] = src->i64[rows[i]];
        break;
    case SX_COL_FLOAT:
        if (!(dst->f64 = sx_mallocarray(cnt, sizeof(double)))) return -1;
        for (int64_t i = 0; i < n; i++) dst->f64[i] = src->f64[rows[i]];
        break;
    case SX_COL_BOOL:
        if (!(dst->b = sx_mallocarray(cnt, 1))) return -1;
        for (int64_t i = 0; i < n; i++) dst->b[i] = src->b[rows[i]];
        break;
    }
    if (src->mask) {
        if (!(dst->mask = sx_mallocarray(cnt, 1))) return -1;
        for (int64_t i = 0; i < n; i++) dst->mask[i] = src->mask[rows[i]];
    }
    return 0;
}

sx_frame *sx_frame_take_rows(const sx_frame *f, const int64_t *rows, int64_t n, sx_status *st)
{
    sx_frame *o = sx_calloc(1, sizeof *o);
    if (!o) goto oom;
    o->n_rows = n;
    if (f->index_name && !(o->index_name = sx_strdup(f->index_name))) goto oom;
    if (!(o->index = sx_calloc((size_t)(n ? n : 1), sizeof(char *)))) goto oom;
    for (int64_t i = 0; i < n; i++) {
        if (rows[i] < 0 || rows[i] >= f->n_rows) {
            sx_frame_free(o);
            sx_status_set(st, SX_EINVAL, "row %lld out of range", (long long)rows[i]);
            return NULL;
        }
        if (!(o->index[i] = sx_strdup(f->index[rows[i]]))) goto oom;
    }
    if (f->n_cols) {
        if (!(o->cols = sx_calloc((size_t)f->n_cols, sizeof(sx_column)))) goto oom;
        for (int c = 0; c < f->n_cols; c++) {
            o->n_cols = c + 1; /* so a partial column is freed */
            if (copy_column_rows(&f->cols[c], &o->cols[c], rows, n) != 0) goto oom;
        }
    }
    return o;
oom:
    sx_frame_free(o);
    sx_status_set(st, SX_ENOMEM, "out of memory copying a table of %lld rows", (long long)n);
    return NULL;
}

sx_frame *sx_frame_copy(const sx_frame *f, sx_status *st)
{
    int64_t *rows = sx_mallocarray((size_t)(f->n_rows ? f->n_rows : 1), sizeof(int64_t));
    if (!rows) {
        sx_status_set(st, SX_ENOMEM, "out of memory copying a table");
        return NULL;
    }
    for (int64_t i = 0; i < f->n_rows; i++) rows[i] = i;
    sx_frame *o = sx_frame_take_rows(f, rows, f->n_rows, st);
    sx_free(rows);
    return o;
}

/* Open-addressing string set used by make_unique. */
typedef struct {
    const char **slot;
    size_t cap;
} strset;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static int set_has(const strset *s, const char *k)
{
    for (size_t i = hash_str(k) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->slot[i]) return 0;
        if (strcmp(s->slot[i], k) == 0) return 1;
    }
}

static void set_add(strset *s, const char *k)
{
    for (size_t i = hash_str(k) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->slot[i]) {
            s->slot[i] = k;
            return;
        }
        if (strcmp(s->slot[i], k) == 0) return;
    }
}

int64_t sx_names_make_unique(char **names, int64_t n, sx_status *st)
{
    /* Set of all original names + every generated one, so "name-k" never collides. */
    strset all = {0};
    size_t cap = 16;
    while (cap < (size_t)n * 4 + 16) cap <<= 1;
    all.cap = cap;
    all.slot = sx_calloc(cap, sizeof(char *));
    strset seen = {sx_calloc(cap, sizeof(char *)), cap};
    char **made = sx_calloc((size_t)(n ? n : 1), sizeof(char *));
    int64_t renamed = 0;
    if (!all.slot || !seen.slot || !made) {
        renamed = sx_status_set(st, SX_ENOMEM, "make_unique: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++) set_add(&all, names[i]);
    /* anndata: for each duplicated name, occurrences after the first get -1, -2, ... with
     * a counter per name, skipping candidates that already exist. */
    for (int64_t i = 0; i < n; i++) {
        if (!set_has(&seen, names[i])) {
            set_add(&seen, names[i]);
            continue;
        }
        int64_t k = 1;
        /* count earlier duplicates of this name to continue its counter */
        for (int64_t j = 0; j < i; j++)
            if (made[j] && strcmp(made[j], names[i]) == 0) k++;
        char buf[4096];
        for (;; k++) {
            snprintf(buf, sizeof buf, "%s-%lld", names[i], (long long)k);
            if (!set_has(&all, buf)) break;
        }
        char *nn = sx_strdup(buf);
        if (!nn) {
            renamed = sx_status_set(st, SX_ENOMEM, "make_unique: out of memory");
            goto done;
        }
        made[i] = names[i]; /* remember the original for the counter */
        names[i] = nn;
        set_add(&all, nn);
        renamed++;
    }
done:
    for (int64_t i = 0; i < n; i++) sx_free(made ? made[i] : NULL);
    sx_free(made);
    sx_free(all.slot);
    sx_free(seen.slot);
    return renamed;
}
