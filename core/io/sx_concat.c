/* sx_concat — several inputs stacked along cells, one batch each (ALGORITHM.md 1.3), with
 * the semantics of SCALEX v1.0.0's AnnData.concatenate(join, batch_key, batch_categories,
 * index_unique=None):
 *   - var names are made unique within each input first;
 *   - inner join: genes = pairwise intersection, in the first input's order;
 *     outer join: pairwise pandas union: kept as is when both sides are equal (or one is
 *     empty), otherwise sorted; genes missing from an input are zeros;
 *   - obs: union of the inputs' columns, missing values filled (NaN / missing category);
 *     the batch column is categorical, categories = labels in input order, added last;
 *   - var: a column equal across inputs is kept once; otherwise one copy per input, named
 *     "<column>-<label>", placed after the shared ones ordered by label;
 *   - obsm keys present in every input with the same width are stacked; layers present in
 *     every input are joined like X; uns, varm and raw are dropped; cell names are kept.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_io.h"
#include "sx_log.h"

/* ---------------------------------------------------------------- string -> index map */

typedef struct {
    const char **key;
    int64_t *val;
    size_t cap;
} strmap;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static int map_init(strmap *m, int64_t n)
{
    size_t cap = 16;
    while (cap < (size_t)n * 2 + 16) cap <<= 1;
    m->cap = cap;
    m->key = sx_calloc(cap, sizeof(char *));
    m->val = sx_mallocarray(cap, sizeof(int64_t));
    return m->key && m->val ? 0 : -1;
}

static void map_free(strmap *m)
{
    sx_free(m->key);
    sx_free(m->val);
    memset(m, 0, sizeof *m);
}

/* Index of k, or -1. */
static int64_t map_get(const strmap *m, const char *k)
{
    for (size_t i = hash_str(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->key[i]) return -1;
        if (strcmp(m->key[i], k) == 0) return m->val[i];
    }
}

/* Insert k -> v unless present (first insertion wins). */
static void map_put(strmap *m, const char *k, int64_t v)
{
    for (size_t i = hash_str(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->key[i]) {
            m->key[i] = k;
            m->val[i] = v;
            return;
        }
        if (strcmp(m->key[i], k) == 0) return;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---------------------------------------------------------------- gene sets */

/* names (borrowed pointers) -> a new array; n in *n_out. NULL on OOM. */
static const char **join_names(const char **cur, int64_t nc, char **next, int64_t nn, int outer,
                               int64_t *n_out)
{
    strmap m = {0};
    const char **res = NULL;
    int64_t k = 0;
    int equal = nc == nn;
    for (int64_t i = 0; equal && i < nc; i++) equal = strcmp(cur[i], next[i]) == 0;
    res = sx_mallocarray((size_t)(nc + nn + 1), sizeof(char *));
    if (!res) return NULL;
    if (equal || (outer && nn == 0)) {
        memcpy(res, cur, (size_t)nc * sizeof(char *));
        *n_out = nc;
        return res;
    }
    if (outer && nc == 0) {
        memcpy(res, next, (size_t)nn * sizeof(char *));
        *n_out = nn;
        return res;
    }
    if (map_init(&m, nc + nn) != 0) {
        sx_free(res);
        return NULL;
    }
    if (!outer) {
        /* pandas intersection keeps the left order */
        for (int64_t j = 0; j < nn; j++) map_put(&m, next[j], j);
        for (int64_t i = 0; i < nc; i++)
            if (map_get(&m, cur[i]) >= 0) res[k++] = cur[i];
    } else {
        for (int64_t i = 0; i < nc; i++) {
            if (map_get(&m, cur[i]) < 0) res[k++] = cur[i];
            map_put(&m, cur[i], i);
        }
        for (int64_t j = 0; j < nn; j++) {
            if (map_get(&m, next[j]) < 0) res[k++] = next[j];
            map_put(&m, next[j], j);
        }
        qsort(res, (size_t)k, sizeof(char *), cmp_str);
    }
    map_free(&m);
    *n_out = k;
    return res;
}

/* ---------------------------------------------------------------- column building */

/* Value of row i of c as text, NULL when missing. */
static const char *col_text(const sx_column *c, int64_t i, char *buf, int bufsz)
{
    if (c->mask && c->mask[i]) return NULL;
    switch (c->kind) {
    case SX_COL_STRING: return c->str[i];
    case SX_COL_CATEGORICAL: if (c->codes[i] < 0) return NULL; break;
    case SX_COL_FLOAT: if (isnan(c->f64[i])) return NULL; break;
    default: break;
    }
    return sx_column_text(c, i, buf, bufsz);
}

/* Build column `name` of out (n rows): row r comes from cols[part[r]] row row[r], or is
 * missing when part[r] < 0 or that part lacks the column (cols[p] == NULL). Kind rules
 * follow pandas concat: a kind shared by all sources is kept (int/bool become float/text
 * when values are missing), mixed kinds become text. */
static int build_column(sx_frame *out, const char *name, sx_column *const *cols, int n_parts,
                        const int *part, const int64_t *row, sx_status *st)
{
    int64_t n = out->n_rows;
    const sx_column *first = NULL;
    int same = 1, complete = 1, rc = SX_OK;
    for (int p = 0; p < n_parts; p++) {
        if (!cols[p]) continue;
        if (!first) first = cols[p];
        else if (cols[p]->kind != first->kind) same = 0;
    }
    if (!first) return SX_OK;
    for (int64_t r = 0; r < n; r++)
        if (part[r] < 0 || !cols[part[r]]) complete = 0;
    size_t cnt = (size_t)(n ? n : 1);
    char buf[64];

    if (same && first->kind == SX_COL_CATEGORICAL) {
        /* categories: kept when identical everywhere, else the sorted union */
        int ident = 1, ordered = first->ordered;
        int64_t total = 0;
        for (int p = 0; p < n_parts; p++) {
            if (!cols[p]) continue;
            total += cols[p]->n_categories;
            ordered = ordered && cols[p]->ordered;
            if (cols[p]->n_categories != first->n_categories) ident = 0;
            for (int32_t c = 0; ident && c < first->n_categories; c++)
                if (strcmp(cols[p]->categories[c], first->categories[c]) != 0) ident = 0;
        }
        const char **cats = sx_mallocarray((size_t)(total ? total : 1), sizeof(char *));
        int32_t *codes = sx_mallocarray(cnt, sizeof(int32_t));
        strmap m = {0};
        int32_t nc = 0;
        if (!cats || !codes || map_init(&m, total) != 0) goto cat_oom;
        for (int p = 0; p < n_parts; p++) {
            if (!cols[p]) continue;
            for (int32_t c = 0; c < cols[p]->n_categories; c++)
                if (map_get(&m, cols[p]->categories[c]) < 0) {
                    map_put(&m, cols[p]->categories[c], nc);
                    cats[nc++] = cols[p]->categories[c];
                }
            if (ident) break;
        }
        if (!ident) {
            qsort(cats, (size_t)nc, sizeof(char *), cmp_str);
            ordered = 0;
            map_free(&m);
            if (map_init(&m, nc) != 0) goto cat_oom;
            for (int32_t c = 0; c < nc; c++) map_put(&m, cats[c], c);
        }
        for (int64_t r = 0; r < n; r++) {
            const sx_column *c = part[r] >= 0 ? cols[part[r]] : NULL;
            int32_t code = c ? c->codes[row[r]] : -1;
            codes[r] = code < 0 ? -1 : (int32_t)map_get(&m, c->categories[code]);
        }
        rc = sx_frame_add_categorical(out, name, codes, cats, nc, ordered, st);
        goto cat_done;
    cat_oom:
        rc = sx_status_set(st, SX_ENOMEM, "concatenate: out of memory for column '%s'", name);
    cat_done:
        sx_free(cats);
        sx_free(codes);
        map_free(&m);
        return rc;
    }
    if (same && (first->kind == SX_COL_FLOAT || first->kind == SX_COL_INT) &&
        !(first->kind == SX_COL_INT && complete)) {
        double *v = sx_mallocarray(cnt, sizeof(double));
        if (!v) return sx_status_set(st, SX_ENOMEM, "concatenate: out of memory");
        for (int64_t r = 0; r < n; r++) {
            const sx_column *c = part[r] >= 0 ? cols[part[r]] : NULL;
            if (!c || (c->mask && c->mask[row[r]])) v[r] = NAN;
            else v[r] = c->kind == SX_COL_FLOAT ? c->f64[row[r]] : (double)c->i64[row[r]];
        }
        rc = sx_frame_add_float(out, name, v, st);
        sx_free(v);
        return rc;
    }
    if (same && first->kind == SX_COL_INT) { /* complete */
        int64_t *v = sx_mallocarray(cnt, sizeof(int64_t));
        uint8_t *mask = NULL;
        int any_mask = 0;
        for (int p = 0; p < n_parts; p++) any_mask |= cols[p] && cols[p]->mask;
        if (!v || (any_mask && !(mask = sx_calloc(cnt, 1)))) {
            sx_free(v);
            return sx_status_set(st, SX_ENOMEM, "concatenate: out of memory");
        }
        for (int64_t r = 0; r < n; r++) {
            const sx_column *c = cols[part[r]];
            v[r] = c->i64[row[r]];
            if (mask && c->mask) mask[r] = c->mask[row[r]];
        }
        rc = sx_frame_add_int(out, name, v, st);
        if (rc == SX_OK && mask) {
            sx_frame_col(out, name)->mask = mask;
            mask = NULL;
        }
        sx_free(v);
        sx_free(mask);
        return rc;
    }
    if (same && first->kind == SX_COL_BOOL && complete) {
        uint8_t *v = sx_mallocarray(cnt, 1);
        if (!v) return sx_status_set(st, SX_ENOMEM, "concatenate: out of memory");
        for (int64_t r = 0; r < n; r++) v[r] = cols[part[r]]->b[row[r]];
        rc = sx_frame_add_bool(out, name, v, st);
        sx_free(v);
        return rc;
    }
    /* strings: string columns, and every mixture (pandas gives an object column) */
    char **v = sx_calloc(cnt, sizeof(char *));
    if (!v) return sx_status_set(st, SX_ENOMEM, "concatenate: out of memory");
    for (int64_t r = 0; r < n && rc == SX_OK; r++) {
        const sx_column *c = part[r] >= 0 ? cols[part[r]] : NULL;
        const char *t = c ? col_text(c, row[r], buf, sizeof buf) : NULL;
        if (t && !(v[r] = sx_strdup(t)))
            rc = sx_status_set(st, SX_ENOMEM, "concatenate: out of memory");
    }
    if (rc == SX_OK) rc = sx_frame_add_strings(out, name, (const char *const *)v, st);
    for (int64_t r = 0; r < n; r++) sx_free(v[r]);
    sx_free(v);
    return rc;
}

/* Column names over all frames, first-appearance order (borrowed), skipping `skip`. */
static const char **union_columns(sx_frame *const *frames, int n, const char *skip, int *n_out)
{
    int total = 0;
    for (int p = 0; p < n; p++) total += frames[p]->n_cols;
    const char **names = sx_mallocarray((size_t)(total ? total : 1), sizeof(char *));
    if (!names) return NULL;
    int k = 0;
    for (int p = 0; p < n; p++)
        for (int c = 0; c < frames[p]->n_cols; c++) {
            const char *nm = frames[p]->cols[c].name;
            int dup = skip && strcmp(nm, skip) == 0;
            for (int q = 0; q < k && !dup; q++) dup = strcmp(names[q], nm) == 0;
            if (!dup) names[k++] = nm;
        }
    *n_out = k;
    return names;
}

/* ---------------------------------------------------------------- var columns */

typedef struct {
    const char *label;
    int part;
    const char *col;
} suffixed;

static int cmp_suffixed(const void *a, const void *b)
{
    const suffixed *x = a, *y = b;
    int c = strcmp(x->label, y->label);
    return c ? c : (x->part - y->part); /* stable within a label */
}

static int build_var(sx_frame *var, sx_dataset **parts, int n, int64_t **gmap,
                     const char *const *labels, sx_status *st)
{
    int64_t g = var->n_rows;
    int n_names = 0, n_suf = 0, rc = SX_OK;
    sx_frame **frames = sx_mallocarray((size_t)n, sizeof(sx_frame *));
    /* where each result gene sits in each part (-1 absent) */
    int64_t *pos = sx_mallocarray((size_t)n * (size_t)(g ? g : 1), sizeof(int64_t));
    int *src_part = sx_mallocarray((size_t)(g ? g : 1), sizeof(int));
    int64_t *src_row = sx_mallocarray((size_t)(g ? g : 1), sizeof(int64_t));
    sx_column **cols = sx_calloc((size_t)n, sizeof(sx_column *));
    const char **names = NULL;
    suffixed *suf = NULL;
    if (!frames || !pos || !src_part || !src_row || !cols) goto oom;
    for (int p = 0; p < n; p++) frames[p] = parts[p]->var;
    for (int64_t i = 0; i < (int64_t)n * g; i++) pos[i] = -1;
    for (int p = 0; p < n; p++)
        for (int64_t j = 0; j < parts[p]->var->n_rows; j++)
            if (gmap[p][j] >= 0) pos[(int64_t)p * g + gmap[p][j]] = j;
    if (!(names = union_columns(frames, n, NULL, &n_names))) goto oom;
    if (!(suf = sx_mallocarray((size_t)n_names * (size_t)n + 1, sizeof(suffixed)))) goto oom;
    for (int c = 0; c < n_names; c++) {
        int in_all = 1, equal = 1;
        for (int p = 0; p < n; p++) {
            cols[p] = sx_frame_col(parts[p]->var, names[c]);
            in_all = in_all && cols[p];
        }
        /* shared when every input has it and inputs holding a gene agree on its value */
        for (int64_t r = 0; in_all && equal && r < g; r++) {
            const char *ref = NULL;
            int have = 0;
            char b1[64], b2[64];
            for (int p = 0; p < n && equal; p++) {
                int64_t j = pos[(int64_t)p * g + r];
                if (j < 0) continue;
                const char *t = col_text(cols[p], j, have ? b2 : b1, 64);
                if (!have) {
                    ref = t;
                    have = 1;
                } else if ((ref == NULL) != (t == NULL) || (ref && strcmp(ref, t) != 0)) {
                    equal = 0;
                }
            }
        }
        if (in_all && equal) {
            for (int64_t r = 0; r < g; r++) {
                src_part[r] = -1;
                for (int p = 0; p < n && src_part[r] < 0; p++)
                    if (pos[(int64_t)p * g + r] >= 0) {
                        src_part[r] = p;
                        src_row[r] = pos[(int64_t)p * g + r];
                    }
            }
            if ((rc = build_column(var, names[c], cols, n, src_part, src_row, st)) != SX_OK)
                goto out;
        } else {
            for (int p = 0; p < n; p++)
                if (cols[p]) suf[n_suf++] = (suffixed){labels[p], p, names[c]};
        }
    }
    qsort(suf, (size_t)n_suf, sizeof(suffixed), cmp_suffixed);
    for (int s = 0; s < n_suf; s++) {
        int p = suf[s].part;
        for (int q = 0; q < n; q++) cols[q] = q == p ? sx_frame_col(parts[p]->var, suf[s].col) : NULL;
        for (int64_t r = 0; r < g; r++) {
            src_row[r] = pos[(int64_t)p * g + r];
            src_part[r] = src_row[r] >= 0 ? p : -1;
        }
        char nm[512];
        snprintf(nm, sizeof nm, "%s-%s", suf[s].col, suf[s].label);
        if ((rc = build_column(var, nm, cols, n, src_part, src_row, st)) != SX_OK) goto out;
    }
    goto out;
oom:
    rc = sx_status_set(st, SX_ENOMEM, "concatenate: out of memory merging var");
out:
    sx_free(frames);
    sx_free(pos);
    sx_free(src_part);
    sx_free(src_row);
    sx_free(cols);
    sx_free(names);
    sx_free(suf);
    return rc;
}

/* ---------------------------------------------------------------- entry point */

sx_dataset *sx_io_concat(sx_dataset **parts, int n, const sx_concat_opts *opts, sx_status *st)
{
    const char *key = opts && opts->batch_key ? opts->batch_key : "batch";
    int outer = opts ? opts->join_outer : 0;
    sx_dataset *d = NULL;
    const char **genes = NULL;
    int64_t n_genes = 0, n_cells = 0;
    int64_t **gmap = NULL;
    sx_csr **mats = NULL;
    char **labels = NULL;
    int *cpart = NULL;
    int64_t *crow = NULL;
    const char **ocols = NULL;
    sx_frame **oframes = NULL;
    sx_column **cols = NULL;
    strmap gm = {0};
    int rc = SX_OK;

    if (n < 1 || !parts) {
        sx_status_set(st, SX_EINVAL, "concatenate: no inputs");
        goto fail;
    }
    for (int p = 0; p < n; p++) {
        if (!parts[p] || !parts[p]->X) {
            sx_status_set(st, SX_EINVAL, "concatenate: input %d has no X matrix", p);
            goto fail;
        }
        n_cells += parts[p]->X->n_rows;
    }
    /* labels */
    if (!(labels = sx_calloc((size_t)n, sizeof(char *)))) goto oom;
    for (int p = 0; p < n; p++) {
        char b[32];
        snprintf(b, sizeof b, "%d", p);
        const char *l = opts && opts->batch_categories ? opts->batch_categories[p] : b;
        if (!l) {
            sx_status_set(st, SX_EINVAL, "concatenate: batch category %d is missing", p);
            goto fail;
        }
        for (int q = 0; q < p; q++)
            if (strcmp(labels[q], l) == 0) {
                sx_status_set(st, SX_EINVAL, "concatenate: batch category '%s' is given twice; "
                              "labels must be distinct", l);
                goto fail;
            }
        if (!(labels[p] = sx_strdup(l))) goto oom;
    }
    /* var names unique within each input, then the joined gene list */
    for (int p = 0; p < n; p++)
        if (sx_names_make_unique(parts[p]->var->index, parts[p]->var->n_rows, st) < 0) goto fail;
    n_genes = parts[0]->var->n_rows;
    if (!(genes = sx_mallocarray((size_t)(n_genes ? n_genes : 1), sizeof(char *)))) goto oom;
    memcpy(genes, parts[0]->var->index, (size_t)n_genes * sizeof(char *));
    for (int p = 1; p < n; p++) {
        int64_t k;
        const char **nx = join_names(genes, n_genes, parts[p]->var->index,
                                     parts[p]->var->n_rows, outer, &k);
        if (!nx) goto oom;
        sx_free(genes);
        genes = nx;
        n_genes = k;
    }
    if (n_genes == 0 && !outer)
        SX_WARN("concatenate: the inputs share no gene names (inner join is empty); check that "
                "they use the same gene identifiers (symbols vs Ensembl ids)");
    if (map_init(&gm, n_genes) != 0) goto oom;
    for (int64_t j = 0; j < n_genes; j++) map_put(&gm, genes[j], j);
    if (!(gmap = sx_calloc((size_t)n, sizeof(int64_t *)))) goto oom;
    if (!(mats = sx_calloc((size_t)n, sizeof(sx_csr *)))) goto oom;
    for (int p = 0; p < n; p++) {
        int64_t g = parts[p]->var->n_rows;
        if (!(gmap[p] = sx_mallocarray((size_t)(g ? g : 1), sizeof(int64_t)))) goto oom;
        for (int64_t j = 0; j < g; j++) gmap[p][j] = map_get(&gm, parts[p]->var->index[j]);
        if (!(mats[p] = sx_csr_remap_cols(parts[p]->X, gmap[p], n_genes, st))) goto fail;
    }

    /* the result: X, names */
    if (!(d = sx_dataset_new(0, 0, st))) goto fail;
    sx_frame_free(d->var);
    d->var = sx_frame_new(n_genes, genes, st);
    if (!d->var) goto fail;
    if (!(d->X = sx_csr_vstack((const sx_csr *const *)mats, n, st))) goto fail;
    d->x_was_int = 1;
    for (int p = 0; p < n; p++) d->x_was_int = d->x_was_int && parts[p]->x_was_int;
    if (!(cpart = sx_mallocarray((size_t)(n_cells ? n_cells : 1), sizeof(int)))) goto oom;
    if (!(crow = sx_mallocarray((size_t)(n_cells ? n_cells : 1), sizeof(int64_t)))) goto oom;
    {
        char **cn = sx_mallocarray((size_t)(n_cells ? n_cells : 1), sizeof(char *));
        if (!cn) goto oom;
        int64_t r = 0;
        for (int p = 0; p < n; p++)
            for (int64_t i = 0; i < parts[p]->obs->n_rows; i++, r++) {
                cn[r] = parts[p]->obs->index[i];
                cpart[r] = p;
                crow[r] = i;
            }
        sx_frame_free(d->obs);
        d->obs = sx_frame_new(n_cells, (const char *const *)cn, st);
        sx_free(cn);
        if (!d->obs) goto fail;
    }

    /* obs columns: union, then the batch column last */
    if (!(oframes = sx_mallocarray((size_t)n, sizeof(sx_frame *)))) goto oom;
    if (!(cols = sx_calloc((size_t)n, sizeof(sx_column *)))) goto oom;
    for (int p = 0; p < n; p++) oframes[p] = parts[p]->obs;
    int n_ocols = 0;
    if (!(ocols = union_columns(oframes, n, key, &n_ocols))) goto oom;
    for (int c = 0; c < n_ocols; c++) {
        for (int p = 0; p < n; p++) cols[p] = sx_frame_col(parts[p]->obs, ocols[c]);
        if (build_column(d->obs, ocols[c], cols, n, cpart, crow, st) != SX_OK) goto fail;
    }
    {
        int32_t *codes = sx_mallocarray((size_t)(n_cells ? n_cells : 1), sizeof(int32_t));
        if (!codes) goto oom;
        for (int64_t r = 0; r < n_cells; r++) codes[r] = cpart[r];
        rc = sx_frame_add_categorical(d->obs, key, codes, (const char *const *)labels, n, 0, st);
        sx_free(codes);
        if (rc != SX_OK) goto fail;
    }
    if (build_var(d->var, parts, n, gmap, (const char *const *)labels, st) != SX_OK) goto fail;

    /* obsm: keys in every input with one width */
    for (int k = 0; k < parts[0]->n_obsm; k++) {
        const sx_dense *a = &parts[0]->obsm[k];
        int ok = 1, f32 = 1;
        for (int p = 0; p < n && ok; p++) {
            const sx_dense *b = sx_dataset_obsm(parts[p], a->name);
            ok = b && b->n_cols == a->n_cols;
            if (ok) f32 = f32 && b->f32;
        }
        if (!ok) continue;
        double *v = sx_mallocarray((size_t)(n_cells ? n_cells : 1) * (size_t)(a->n_cols ? a->n_cols : 1),
                                   sizeof(double));
        if (!v) goto oom;
        int64_t r = 0;
        for (int p = 0; p < n; p++) {
            const sx_dense *b = sx_dataset_obsm(parts[p], a->name);
            memcpy(v + r * a->n_cols, b->v, (size_t)(b->n_rows * b->n_cols) * sizeof(double));
            r += b->n_rows;
        }
        rc = sx_dataset_set_obsm(d, a->name, v, n_cells, a->n_cols, f32, st);
        sx_free(v);
        if (rc != SX_OK) goto fail;
    }
    /* layers present everywhere, joined like X */
    for (int k = 0; k < parts[0]->n_layers; k++) {
        const char *ln = parts[0]->layers[k].name;
        int ok = 1;
        for (int p = 0; p < n && ok; p++) ok = sx_dataset_layer(parts[p], ln) != NULL;
        if (!ok) continue;
        for (int p = 0; p < n; p++) {
            sx_csr_free(mats[p]);
            mats[p] = sx_csr_remap_cols(sx_dataset_layer(parts[p], ln), gmap[p], n_genes, st);
            if (!mats[p]) goto fail;
        }
        sx_csr *l = sx_csr_vstack((const sx_csr *const *)mats, n, st);
        if (!l || sx_dataset_set_layer(d, ln, l, st) != SX_OK) goto fail;
    }
    if (sx_dataset_validate(d, "concatenation", st) != SX_OK) goto fail;
    goto done;
oom:
    sx_status_set(st, SX_ENOMEM, "concatenate: out of memory");
fail:
    sx_dataset_free(d);
    d = NULL;
done:
    for (int p = 0; p < n; p++) {
        if (mats) sx_csr_free(mats[p]);
        if (gmap) sx_free(gmap[p]);
        if (labels) sx_free(labels[p]);
    }
    sx_free(mats);
    sx_free(gmap);
    sx_free(labels);
    sx_free(genes);
    sx_free(cpart);
    sx_free(crow);
    sx_free(ocols);
    sx_free(oframes);
    sx_free(cols);
    map_free(&gm);
    /* genes pointed into the parts' names: free the parts last */
    for (int p = 0; parts && p < n; p++) sx_dataset_free(parts[p]);
    return d;
}
