/* sx_prep_reindex — put a query onto a reference's gene list (ALGORITHM.md §5.3 step 3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_prep.h"
#include "sx_prep_internal.h"

void sx_reindex_opts_init(sx_reindex_opts *o)
{
    o->min_fraction = 0.5;
    o->min_genes = 250;
    o->list_missing = 20;
}

void sx_reindex_report_free(sx_reindex_report *r)
{
    if (!r) return;
    for (int64_t i = 0; i < r->n_missing_listed; i++) sx_free(r->missing[i]);
    sx_free(r->missing);
    memset(r, 0, sizeof *r);
}

/* open-addressing string -> first index map (names are borrowed) */
typedef struct strmap {
    int64_t cap;
    const char **key;
    size_t *klen;
    int64_t *val;
} strmap;

static uint64_t hash_n(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int map_init(strmap *m, int64_t n)
{
    m->cap = 16;
    while (m->cap < 2 * n + 16) m->cap *= 2;
    m->key = sx_calloc((size_t)m->cap, sizeof(char *));
    m->klen = sx_calloc((size_t)m->cap, sizeof(size_t));
    m->val = sx_calloc((size_t)m->cap, sizeof(int64_t));
    return m->key && m->klen && m->val ? 0 : -1;
}

static void map_free(strmap *m)
{
    sx_free(m->key);
    sx_free(m->klen);
    sx_free(m->val);
}

/* insert keeping the first index for a repeated key */
static void map_put(strmap *m, const char *k, size_t n, int64_t v)
{
    uint64_t i = hash_n(k, n) & (uint64_t)(m->cap - 1);
    while (m->key[i]) {
        if (m->klen[i] == n && memcmp(m->key[i], k, n) == 0) return;
        i = (i + 1) & (uint64_t)(m->cap - 1);
    }
    m->key[i] = k;
    m->klen[i] = n;
    m->val[i] = v;
}

static int64_t map_get(const strmap *m, const char *k, size_t n)
{
    uint64_t i = hash_n(k, n) & (uint64_t)(m->cap - 1);
    while (m->key[i]) {
        if (m->klen[i] == n && memcmp(m->key[i], k, n) == 0) return m->val[i];
        i = (i + 1) & (uint64_t)(m->cap - 1);
    }
    return -1;
}

/* Ensembl-style id without its ".version" suffix: "ENSG00000141510.16" -> length of the stem */
static size_t id_stem(const char *s)
{
    size_t n = strlen(s);
    if (strncmp(s, "ENS", 3) != 0) return n;
    const char *dot = strrchr(s, '.');
    if (!dot || dot == s) return n;
    for (const char *p = dot + 1; *p; p++)
        if (*p < '0' || *p > '9') return n;
    return (size_t)(dot - s);
}

int sx_prep_match_genes(const sx_frame *var, const char *const *ref, int64_t n_ref, int64_t *src,
                        const sx_reindex_opts *o, sx_reindex_report *rep, sx_status *st)
{
    sx_reindex_opts def;
    if (!o) {
        sx_reindex_opts_init(&def);
        o = &def;
    }
    int64_t g = var->n_rows;
    strmap byname = {0}, byid = {0};
    const sx_column *ids = sx_frame_col(var, "gene_ids");
    if (ids && ids->kind != SX_COL_STRING && ids->kind != SX_COL_CATEGORICAL) ids = NULL;
    int rc = SX_OK;
    if (map_init(&byname, g) || (ids && map_init(&byid, g))) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory matching %lld genes", (long long)g);
        goto fail;
    }
    for (int64_t j = 0; j < g; j++) map_put(&byname, var->index[j], strlen(var->index[j]), j);
    if (ids)
        for (int64_t j = 0; j < g; j++) {
            const char *s = ids->kind == SX_COL_STRING
                                ? ids->str[j]
                                : (ids->codes[j] >= 0 ? ids->categories[ids->codes[j]] : NULL);
            if (s) map_put(&byid, s, id_stem(s), j);
        }
    int64_t present = 0, by_id = 0;
    for (int64_t k = 0; k < n_ref; k++) {
        src[k] = map_get(&byname, ref[k], strlen(ref[k]));
        if (src[k] < 0 && ids) {
            src[k] = map_get(&byid, ref[k], id_stem(ref[k]));
            by_id += src[k] >= 0;
        }
        present += src[k] >= 0;
    }
    if (rep) {
        memset(rep, 0, sizeof *rep);
        rep->n_ref = n_ref;
        rep->n_present = present;
        rep->n_by_id = by_id;
        rep->fraction = n_ref ? (double)present / (double)n_ref : 0;
        rep->n_missing = n_ref - present;
        int64_t lim = o->list_missing > 0 ? o->list_missing : 0;
        if (lim > rep->n_missing) lim = rep->n_missing;
        rep->missing = sx_calloc((size_t)(lim ? lim : 1), sizeof(char *));
        if (!rep->missing) {
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
            goto fail;
        }
        for (int64_t k = 0; k < n_ref && rep->n_missing_listed < lim; k++)
            if (src[k] < 0) {
                if (!(rep->missing[rep->n_missing_listed] = sx_strdup(ref[k]))) {
                    rc = sx_status_set(st, SX_ENOMEM, "out of memory");
                    goto fail;
                }
                rep->n_missing_listed++;
            }
    }
fail:
    map_free(&byname);
    if (ids) map_free(&byid);
    return rc;
}

/* SX_EGENES with the overlap and the first missing names */
static int check_overlap(const sx_reindex_opts *o, const char *const *ref, int64_t n_ref,
                         const int64_t *src, int64_t present, sx_status *st)
{
    int64_t need = o->min_genes < n_ref ? o->min_genes : n_ref;
    double frac = n_ref ? (double)present / (double)n_ref : 0;
    if (present >= need && frac >= o->min_fraction && present > 0) return SX_OK;
    char list[600];
    list[0] = 0;
    int shown = 0, lim = o->list_missing > 0 ? o->list_missing : 20;
    for (int64_t k = 0; k < n_ref && shown < lim; k++) {
        if (src[k] >= 0) continue;
        if (strlen(list) + strlen(ref[k]) + 8 >= sizeof list) break;
        if (shown++) strcat(list, ", ");
        strcat(list, ref[k]);
    }
    return sx_status_set(st, SX_EGENES,
                         "the query shares only %lld of the reference's %lld genes (%.1f%%; "
                         "required: at least %.0f%% and %lld genes). Missing, first %d: %s%s. "
                         "Check that query and reference use the same gene naming (symbols vs "
                         "Ensembl ids, species)",
                         (long long)present, (long long)n_ref, 100.0 * frac,
                         100.0 * o->min_fraction, (long long)need, shown, list,
                         n_ref - present > shown ? ", ..." : "");
}

int sx_prep__reindex_build(const sx_frame *var_in, const sx_csr *Xin, const char *const *ref,
                           int64_t n_ref, const sx_reindex_opts *o, sx_reindex_report *rep,
                           sx_csr **Xout, sx_frame **vout, sx_status *st)
{
    sx_reindex_opts def;
    if (!o) {
        sx_reindex_opts_init(&def);
        o = &def;
    }
    *Xout = NULL;
    *vout = NULL;
    int64_t g = var_in->n_rows;
    int64_t *src = sx_mallocarray((size_t)(n_ref ? n_ref : 1), sizeof(int64_t));
    int64_t *map = sx_mallocarray((size_t)(g ? g : 1), sizeof(int64_t));
    sx_frame *var = NULL;
    sx_csr *X = NULL;
    int rc = SX_OK;
    if (!src || !map) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory reindexing");
        goto fail;
    }
    if ((rc = sx_prep_match_genes(var_in, ref, n_ref, src, o, rep, st)) != SX_OK) goto fail;
    int64_t present = 0;
    for (int64_t j = 0; j < g; j++) map[j] = -1;
    for (int64_t k = 0; k < n_ref; k++) {
        if (src[k] < 0) continue;
        present++;
        if (map[src[k]] >= 0) {
            rc = sx_status_set(st, SX_EINVAL, "reference gene list names '%s' twice (positions "
                               "%lld and %lld); a model's gene list must be unique", ref[k],
                               (long long)map[src[k]], (long long)k);
            goto fail;
        }
        map[src[k]] = k;
    }
    if ((rc = check_overlap(o, ref, n_ref, src, present, st)) != SX_OK) goto fail;
    if (!(var = sx_frame_new(n_ref, ref, st))) {
        rc = st ? st->code : SX_ENOMEM;
        goto fail;
    }
    if (Xin && !(X = sx_csr_remap_cols(Xin, map, n_ref, st))) {
        rc = st ? st->code : SX_ENOMEM;
        goto fail;
    }
    *Xout = X;
    *vout = var;
    X = NULL;
    var = NULL;
fail:
    sx_csr_free(X);
    sx_frame_free(var);
    sx_free(src);
    sx_free(map);
    return rc;
}

int sx_prep_reindex(sx_dataset *d, const char *const *ref, int64_t n_ref,
                    const sx_reindex_opts *o, sx_reindex_report *rep, sx_status *st)
{
    sx_csr *X = NULL;
    sx_frame *var = NULL;
    int rc = sx_prep__reindex_build(d->var, d->X, ref, n_ref, o, rep, &X, &var, st);
    if (rc != SX_OK) return rc;
    /* layers / varm are per query gene: they no longer line up, drop them */
    for (int i = 0; i < d->n_layers; i++) {
        sx_free(d->layers[i].name);
        sx_csr_free(d->layers[i].m);
    }
    d->n_layers = 0;
    for (int i = 0; i < d->n_varm; i++) {
        sx_free(d->varm[i].name);
        sx_free(d->varm[i].v);
    }
    d->n_varm = 0;
    if (X) {
        sx_csr_free(d->X);
        d->X = X;
    }
    sx_frame_free(d->var);
    d->var = var;
    return SX_OK;
}
