/* sx_genematch — query genes onto reference genes by named rules (see sx_genematch.h). */
#include "sx_genematch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_genematch_internal.h"

/* ---------------------------------------------------------------- keys */

enum { K_EXACT, K_STEM, K_UPPER };

int sx_genematch_is_ensembl(const char *s)
{
    if (!s || strncmp(s, "ENS", 3) != 0) return 0;
    const char *p = s + 3;
    while (*p >= 'A' && *p <= 'Z') p++;
    const char *d = p;
    while (*p >= '0' && *p <= '9') p++;
    if (p - d < 5) return 0;
    if (*p == '.') {
        const char *v = ++p;
        while (*p >= '0' && *p <= '9') p++;
        if (p == v) return 0;
    }
    return *p == 0;
}

/* length without an Ensembl ".version" suffix ("ENSG00000141510.16" -> 15) */
static size_t stem_len(const char *s)
{
    size_t n = strlen(s);
    if (!sx_genematch_is_ensembl(s)) return n;
    const char *dot = strrchr(s, '.');
    return dot ? (size_t)(dot - s) : n;
}

/* the key of a name under a mode (owned; NULL when out of memory) */
static char *make_key(const char *s, int mode)
{
    if (mode == K_EXACT) return sx_strdup(s);
    char *k = sx_strndup(s, stem_len(s));
    if (k && mode == K_UPPER)
        for (char *p = k; *p; p++)
            if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    return k;
}

/* ---------------------------------------------------------------- key -> (first, count) */

typedef struct kmap {
    size_t cap, used;
    const char **key; /* borrowed */
    int64_t *first, *count;
} kmap;

static uint64_t hash_s(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int kmap_init(kmap *m, int64_t n)
{
    m->cap = 16;
    m->used = 0;
    while (m->cap < (size_t)n * 2 + 16) m->cap *= 2;
    m->key = sx_calloc(m->cap, sizeof *m->key);
    m->first = sx_calloc(m->cap, sizeof *m->first);
    m->count = sx_calloc(m->cap, sizeof *m->count);
    return m->key && m->first && m->count ? 0 : -1;
}

static void kmap_free(kmap *m)
{
    sx_free(m->key);
    sx_free(m->first);
    sx_free(m->count);
    memset(m, 0, sizeof *m);
}

static size_t kmap_slot(const kmap *m, const char *k)
{
    size_t i = hash_s(k) & (m->cap - 1);
    while (m->key[i] && strcmp(m->key[i], k) != 0) i = (i + 1) & (m->cap - 1);
    return i;
}

/* 0, or -1 out of memory (the map is unchanged then) */
static int kmap_add(kmap *m, const char *k, int64_t v)
{
    if (2 * (m->used + 1) > m->cap) { /* sized for its expected keys; grows when passed */
        kmap g;
        if (kmap_init(&g, (int64_t)m->cap)) return -1;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->key[i]) continue;
            size_t s = kmap_slot(&g, m->key[i]);
            g.key[s] = m->key[i], g.first[s] = m->first[i], g.count[s] = m->count[i];
        }
        g.used = m->used;
        kmap_free(m);
        *m = g;
    }
    size_t i = kmap_slot(m, k);
    if (!m->key[i]) {
        m->key[i] = k;
        m->first[i] = v;
        m->used++;
    }
    m->count[i]++;
    return 0;
}

/* count of k (0 when absent); *first = its first value */
static int64_t kmap_get(const kmap *m, const char *k, int64_t *first)
{
    size_t i = kmap_slot(m, k);
    if (!m->key[i]) return 0;
    *first = m->first[i];
    return m->count[i];
}

/* ---------------------------------------------------------------- query name lists */

/* one list of query names: var names or an identifier column, made unique; NULL = missing */
typedef struct namelist {
    const char *rule; /* borrowed: "var_names" or the column name */
    char **v;
    int ens;
} namelist;

typedef struct ctx {
    const char *const *ref;
    int64_t n_ref, nq;
    int64_t *src;
    uint8_t *qtaken;
    namelist *lists;
    int n_lists;
    sx_genematch_report *rep;
    sx_status *st;
    kmap seen;         /* ambiguous keys already counted (a key recurs in later passes) */
    char **seen_key;   /* their owned text */
    int64_t n_seen;
} ctx;

static const char *col_text(const sx_column *c, int64_t j)
{
    if (c->kind == SX_COL_STRING) return c->str[j];
    return c->codes[j] >= 0 ? c->categories[c->codes[j]] : NULL;
}

/* Identifier column by content: at least half the rows present, at least half of those
 * distinct, mostly not numbers. -1 out of memory, 0 no, 1 yes (*ens: mostly Ensembl ids). */
static int id_column(const sx_column *c, int64_t n, int *ens)
{
    if (c->kind != SX_COL_STRING && c->kind != SX_COL_CATEGORICAL) return 0;
    if (c->kind == SX_COL_CATEGORICAL && c->n_categories * 2 < n) return 0;
    kmap m;
    if (kmap_init(&m, n)) return -1;
    int64_t present = 0, num = 0, en = 0, distinct = 0, first;
    for (int64_t j = 0; j < n; j++) {
        const char *s = col_text(c, j);
        if (!s || !*s) continue;
        present++;
        char *end;
        strtod(s, &end);
        num += *end == 0;
        en += sx_genematch_is_ensembl(s);
        distinct += kmap_get(&m, s, &first) == 0;
        kmap_add(&m, s, j);
    }
    kmap_free(&m);
    *ens = en * 2 > present;
    return present > 0 && present * 2 >= n && distinct * 2 >= present && num * 2 < present;
}

/* copies of the names (missing stay NULL), the present ones made unique as anndata does */
static int list_fill(namelist *L, const char *rule, const char *const *names, int64_t n,
                     sx_status *st)
{
    L->rule = rule;
    L->v = sx_calloc((size_t)n + 1, sizeof *L->v);
    char **dense = sx_calloc((size_t)n + 1, sizeof *dense);
    int64_t *where = sx_calloc((size_t)n + 1, sizeof *where);
    int64_t m = 0, en = 0;
    int rc = L->v && dense && where ? SX_OK : SX_ENOMEM;
    for (int64_t j = 0; rc == SX_OK && j < n; j++) {
        if (!names[j] || !*names[j]) continue;
        en += sx_genematch_is_ensembl(names[j]);
        if (!(dense[m] = sx_strdup(names[j]))) rc = SX_ENOMEM;
        where[m++] = j;
    }
    if (rc == SX_OK && sx_names_make_unique(dense, m, st) < 0) rc = SX_ENOMEM;
    for (int64_t i = 0; i < m; i++) {
        if (rc == SX_OK) L->v[where[i]] = dense[i];
        else sx_free(dense[i]);
    }
    L->ens = en * 2 > m;
    sx_free(dense);
    sx_free(where);
    return rc == SX_OK ? SX_OK : sx_status_set(st, SX_ENOMEM, "out of memory matching genes");
}

static void list_free(namelist *L, int64_t n)
{
    for (int64_t j = 0; L->v && j < n; j++) sx_free(L->v[j]);
    sx_free(L->v);
}

/* var names, then identifier columns: those of the reference's kind (Ensembl or symbols)
 * first, in frame order */
static int build_lists(ctx *c, const sx_frame *var, sx_status *st)
{
    int64_t n = var->n_rows;
    c->lists = sx_calloc((size_t)var->n_cols + 1, sizeof *c->lists);
    if (!c->lists) return sx_status_set(st, SX_ENOMEM, "out of memory matching genes");
    int rc = list_fill(&c->lists[0], "var_names", (const char *const *)var->index, n, st);
    if (rc) return rc;
    c->n_lists = 1;
    int64_t ref_en = 0;
    for (int64_t k = 0; k < c->n_ref; k++) ref_en += sx_genematch_is_ensembl(c->ref[k]);
    int ref_ens = ref_en * 2 > c->n_ref;
    const char **vals = sx_calloc((size_t)n + 1, sizeof *vals);
    if (!vals) return sx_status_set(st, SX_ENOMEM, "out of memory matching genes");
    for (int pass = 0; pass < 2 && rc == SX_OK; pass++)
        for (int ci = 0; ci < var->n_cols && rc == SX_OK; ci++) {
            const sx_column *col = &var->cols[ci];
            int ens = 0, ok = id_column(col, n, &ens);
            if (ok < 0) rc = sx_status_set(st, SX_ENOMEM, "out of memory matching genes");
            if (ok <= 0 || (ens == ref_ens) != (pass == 0)) continue;
            for (int64_t j = 0; j < n; j++) vals[j] = col_text(col, j);
            if ((rc = list_fill(&c->lists[c->n_lists], col->name, vals, n, st)) == SX_OK)
                c->n_lists++;
        }
    sx_free(vals);
    return rc;
}

/* ---------------------------------------------------------------- report */

static int rule_add(sx_genematch_report *r, const char *name)
{
    char **nr = sx_reallocarray(r->rule, (size_t)r->n_rules + 1, sizeof *nr);
    if (nr) r->rule = nr;
    int64_t *nn = nr ? sx_reallocarray(r->rule_n, (size_t)r->n_rules + 1, sizeof *nn) : NULL;
    if (nn) r->rule_n = nn;
    if (!nn || !(r->rule[r->n_rules] = sx_strdup(name))) return -1;
    r->rule_n[r->n_rules] = 0;
    return r->n_rules++;
}

/* 1 when "side:key" was met before; else remembers it (-1 out of memory) */
static int seen_before(ctx *c, const char *side, const char *key)
{
    size_t n = strlen(side) + strlen(key) + 2;
    char *k = sx_mallocarray(n, 1);
    char **nk = k ? sx_reallocarray(c->seen_key, (size_t)c->n_seen + 1, sizeof *nk) : NULL;
    if (nk) c->seen_key = nk;
    if (!nk || (!c->seen.cap && kmap_init(&c->seen, 64))) {
        sx_free(k);
        return -1;
    }
    snprintf(k, n, "%s:%s", side, key);
    int64_t first;
    if (kmap_get(&c->seen, k, &first)) {
        sx_free(k);
        return 1;
    }
    if (kmap_add(&c->seen, k, 0)) {
        sx_free(k);
        return -1;
    }
    c->seen_key[c->n_seen++] = k;
    return 0;
}

/* one ambiguous key (side: whose names collide): counted once, and listed while fewer than
 * SX_GENEMATCH_LISTED are */
static int ambiguous(ctx *c, const char *key, const char *side, const char *const *names,
                     int n_names, int64_t total, const char *rule)
{
    sx_genematch_report *r = c->rep;
    int seen = seen_before(c, side, key);
    if (seen < 0) return sx_status_set(c->st, SX_ENOMEM, "out of memory");
    if (seen) return SX_OK;
    r->n_ambiguous++;
    if (r->n_listed >= SX_GENEMATCH_LISTED) return SX_OK;
    if (!r->ambiguous && !(r->ambiguous = sx_calloc(SX_GENEMATCH_LISTED, sizeof(char *))))
        return sx_status_set(c->st, SX_ENOMEM, "out of memory");
    char buf[512];
    int len = snprintf(buf, sizeof buf, "%s: %s ", key, side);
    for (int i = 0; i < n_names && len < (int)sizeof buf; i++)
        len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%s", i ? ", " : "", names[i]);
    if (len < (int)sizeof buf)
        snprintf(buf + len, sizeof buf - (size_t)len, "%s (%s)", total > n_names ? ", ..." : "",
                 rule);
    if (!(r->ambiguous[r->n_listed] = sx_strdup(buf)))
        return sx_status_set(c->st, SX_ENOMEM, "out of memory");
    r->n_listed++;
    return SX_OK;
}

/* the names (up to 4) whose key equals key, of the query list L or of the free reference */
static int names_with_key(ctx *c, const namelist *L, const char *key, int mode,
                          const char *out[4])
{
    int n = 0;
    int64_t lim = L ? c->nq : c->n_ref;
    for (int64_t j = 0; j < lim && n < 4; j++) {
        const char *s = L ? (c->qtaken[j] ? NULL : L->v[j]) : (c->src[j] >= 0 ? NULL : c->ref[j]);
        if (!s) continue;
        char *k = make_key(s, mode);
        if (k && strcmp(k, key) == 0) out[n++] = s;
        sx_free(k);
    }
    return n;
}

/* ---------------------------------------------------------------- one rule pass */

/* Reference genes still free matched to free names of L under a key mode; a key with two
 * free query names or two free reference genes is ambiguous. */
static int pass(ctx *c, const namelist *L, int mode, int rule)
{
    int64_t nq = c->nq, nr = c->n_ref;
    char **qk = sx_calloc((size_t)nq + 1, sizeof *qk), **rk = sx_calloc((size_t)nr + 1, sizeof *rk);
    kmap qm = {0}, rm = {0};
    int rc = qk && rk && !kmap_init(&qm, nq) && !kmap_init(&rm, nr) ? SX_OK : SX_ENOMEM;
    for (int64_t j = 0; rc == SX_OK && j < nq; j++) {
        if (c->qtaken[j] || !L->v[j]) continue;
        if (!(qk[j] = make_key(L->v[j], mode))) rc = SX_ENOMEM;
        else kmap_add(&qm, qk[j], j);
    }
    for (int64_t k = 0; rc == SX_OK && k < nr; k++) {
        if (c->src[k] >= 0) continue;
        if (!(rk[k] = make_key(c->ref[k], mode))) rc = SX_ENOMEM;
        else kmap_add(&rm, rk[k], k);
    }
    if (rc) rc = sx_status_set(c->st, SX_ENOMEM, "out of memory matching genes");
    const char *rname = c->rep->rule[rule];
    for (int64_t k = 0; rc == SX_OK && k < nr; k++) {
        if (!rk[k]) continue;
        int64_t jq = -1, k0 = -1;
        int64_t cq = kmap_get(&qm, rk[k], &jq), cr = kmap_get(&rm, rk[k], &k0);
        if (cq == 0) continue;
        if (cq == 1 && cr == 1) {
            c->src[k] = jq;
            c->rep->rule_n[rule]++;
            continue;
        }
        if (k0 != k) continue; /* one entry per ambiguous key */
        /* the names are looked up (a scan) only while the list has room */
        const char *names[4];
        int listing = c->rep->n_listed < SX_GENEMATCH_LISTED;
        if (cq > 1)
            rc = ambiguous(c, rk[k], "query", names,
                           listing ? names_with_key(c, L, rk[k], mode, names) : 0, cq, rname);
        else
            rc = ambiguous(c, rk[k], "reference", names,
                           listing ? names_with_key(c, NULL, rk[k], mode, names) : 0, cr, rname);
    }
    for (int64_t k = 0; k < nr; k++)
        if (rk && rk[k] && c->src[k] >= 0) c->qtaken[c->src[k]] = 1;
    for (int64_t j = 0; qk && j < nq; j++) sx_free(qk[j]);
    for (int64_t k = 0; rk && k < nr; k++) sx_free(rk[k]);
    sx_free(qk);
    sx_free(rk);
    kmap_free(&qm);
    kmap_free(&rm);
    return rc;
}

/* ---------------------------------------------------------------- gene table */

typedef struct pair {
    int64_t k, j;
} pair;

static int pair_cmp(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->k != y->k) return x->k < y->k ? -1 : 1;
    return x->j < y->j ? -1 : x->j > y->j;
}

/* The query row a table id names: the first list (exact, then stem) holding it once;
 * -1 absent, -2 ambiguous within a list. */
static int64_t resolve_id(const kmap *maps, int n_maps, const char *id, char *stem)
{
    for (int m = 0; m < n_maps; m++) {
        int64_t j = -1, n = kmap_get(&maps[m], id, &j);
        if (n == 0 && stem) n = kmap_get(&maps[m], stem, &j);
        if (n == 1) return j;
        if (n > 1) return -2;
    }
    return -1;
}

/* pairs (reference gene, query row) the table names, duplicates removed */
static int table_pairs(ctx *c, const sx_gene_table *t, pair **out, int64_t *n_out)
{
    int nm = 2 * c->n_lists;
    kmap *maps = sx_calloc((size_t)nm, sizeof *maps), rm = {0};
    char **keys = sx_calloc((size_t)c->nq * (size_t)c->n_lists + 1, sizeof *keys);
    pair *p = sx_mallocarray((size_t)t->n + 1, sizeof *p);
    int64_t np = 0;
    int rc = maps && keys && p && !kmap_init(&rm, c->n_ref) ? SX_OK : SX_ENOMEM;
    /* per list: exact names, then their stems (the table may carry versions or not) */
    for (int L = 0; rc == SX_OK && L < c->n_lists; L++) {
        if (kmap_init(&maps[2 * L], c->nq) || kmap_init(&maps[2 * L + 1], c->nq)) rc = SX_ENOMEM;
        for (int64_t j = 0; rc == SX_OK && j < c->nq; j++) {
            const char *s = c->lists[L].v[j];
            if (!s) continue;
            kmap_add(&maps[2 * L], s, j);
            char **kk = &keys[(size_t)L * (size_t)c->nq + (size_t)j];
            if (!(*kk = make_key(s, K_STEM))) rc = SX_ENOMEM;
            else kmap_add(&maps[2 * L + 1], *kk, j);
        }
    }
    for (int64_t k = 0; rc == SX_OK && k < c->n_ref; k++) kmap_add(&rm, c->ref[k], k);
    for (int64_t i = 0; rc == SX_OK && i < t->n; i++) {
        int64_t k = -1;
        if (kmap_get(&rm, t->r[i], &k) != 1) continue; /* not (once) in the reference */
        char *stem = make_key(t->q[i], K_STEM);
        if (!stem) rc = SX_ENOMEM;
        int64_t j = stem ? resolve_id(maps, nm, t->q[i], stem) : -1;
        sx_free(stem);
        if (j >= 0) p[np++] = (pair){k, j};
    }
    qsort(p, (size_t)np, sizeof *p, pair_cmp);
    int64_t u = 0;
    for (int64_t i = 0; i < np; i++)
        if (u == 0 || p[i].k != p[u - 1].k || p[i].j != p[u - 1].j) p[u++] = p[i];
    for (size_t i = 0; keys && i < (size_t)c->nq * (size_t)c->n_lists; i++) sx_free(keys[i]);
    sx_free(keys);
    for (int m = 0; maps && m < nm; m++) kmap_free(&maps[m]);
    sx_free(maps);
    kmap_free(&rm);
    if (rc) {
        sx_free(p);
        return sx_status_set(c->st, SX_ENOMEM, "out of memory matching genes");
    }
    *out = p;
    *n_out = u;
    return SX_OK;
}

/* one-to-one pairs of the table taken; one-to-many either way listed as ambiguous */
static int table_pass(ctx *c, const sx_gene_table *t, int rule)
{
    pair *p = NULL;
    int64_t np = 0;
    int rc = table_pairs(c, t, &p, &np);
    if (rc) return rc;
    int64_t *degj = sx_calloc((size_t)c->nq + 1, sizeof *degj);
    if (!degj) rc = sx_status_set(c->st, SX_ENOMEM, "out of memory matching genes");
    for (int64_t i = 0; rc == SX_OK && i < np; i++) degj[p[i].j]++;
    for (int64_t i = 0; rc == SX_OK && i < np;) {
        int64_t e = i;
        while (e < np && p[e].k == p[i].k) e++;
        int one = e - i == 1 && degj[p[i].j] == 1;
        if (one) {
            c->src[p[i].k] = p[i].j;
            c->qtaken[p[i].j] = 1;
            c->rep->rule_n[rule]++;
        } else if (e - i > 1) { /* two query genes for one reference gene */
            const char *names[4];
            int nn = 0;
            for (int64_t x = i; x < e && nn < 4; x++) names[nn++] = c->lists[0].v[p[x].j];
            rc = ambiguous(c, c->ref[p[i].k], "query", names, nn, e - i, "gene_table");
        }
        i = e;
    }
    /* one query gene for two reference genes: listed once, at its first pair */
    for (int64_t i = 0; rc == SX_OK && i < np; i++) {
        if (degj[p[i].j] < 2) continue;
        const char *names[4];
        int nn = 0;
        for (int64_t x = 0; x < np && nn < 4; x++)
            if (p[x].j == p[i].j) names[nn++] = c->ref[p[x].k];
        rc = ambiguous(c, c->lists[0].v[p[i].j], "reference", names, nn, degj[p[i].j],
                       "gene_table");
        degj[p[i].j] = 0;
    }
    sx_free(degj);
    sx_free(p);
    return rc;
}

/* ---------------------------------------------------------------- entry */

void sx_genematch_report_free(sx_genematch_report *r)
{
    if (!r) return;
    for (int i = 0; i < r->n_rules; i++) sx_free(r->rule[i]);
    for (int i = 0; i < r->n_listed; i++) sx_free(r->ambiguous[i]);
    sx_free(r->rule);
    sx_free(r->rule_n);
    sx_free(r->ambiguous);
    memset(r, 0, sizeof *r);
}

int64_t sx_genematch_rule_count(const sx_genematch_report *r, const char *rule)
{
    for (int i = 0; r && i < r->n_rules; i++)
        if (strcmp(r->rule[i], rule) == 0) return r->rule_n[i];
    return 0;
}

/* every rule in order; returns the first error */
static int run_rules(ctx *c, const sx_gene_table *table)
{
    sx_genematch_report *r = c->rep;
    int rc = SX_OK, ri;
    if (table) {
        if ((ri = rule_add(r, "gene_table")) < 0) goto oom;
        if ((rc = table_pass(c, table, ri)) != SX_OK) return rc;
    }
    for (int L = 0; L < c->n_lists; L++) {
        if ((ri = rule_add(r, c->lists[L].rule)) < 0) goto oom;
        if ((rc = pass(c, &c->lists[L], K_EXACT, ri)) != SX_OK) return rc;
        if ((rc = pass(c, &c->lists[L], K_STEM, ri)) != SX_OK) return rc;
    }
    if ((ri = rule_add(r, "case_insensitive")) < 0) goto oom;
    for (int L = 0; L < c->n_lists && rc == SX_OK; L++) rc = pass(c, &c->lists[L], K_UPPER, ri);
    return rc;
oom:
    return sx_status_set(c->st, SX_ENOMEM, "out of memory matching genes");
}

int sx_genematch_run(const sx_frame *var, const char *const *ref, int64_t n_ref,
                     const sx_gene_table *table, int64_t *src, sx_genematch_report *rep,
                     sx_status *st)
{
    sx_genematch_report own;
    if (!rep) rep = &own;
    memset(rep, 0, sizeof *rep);
    ctx c = {ref, n_ref, var->n_rows, src, NULL, NULL, 0, rep, st, {0}, NULL, 0};
    for (int64_t k = 0; k < n_ref; k++) src[k] = -1;
    c.qtaken = sx_calloc((size_t)c.nq + 1, 1);
    int rc = c.qtaken ? build_lists(&c, var, st)
                      : sx_status_set(st, SX_ENOMEM, "out of memory matching genes");
    if (rc == SX_OK) rc = run_rules(&c, table);
    rep->n_ref = n_ref;
    rep->n_query = c.nq;
    for (int64_t k = 0; k < n_ref; k++) rep->n_matched += src[k] >= 0;
    for (int L = 0; L < c.n_lists; L++) list_free(&c.lists[L], c.nq);
    for (int64_t i = 0; i < c.n_seen; i++) sx_free(c.seen_key[i]);
    sx_free(c.seen_key);
    kmap_free(&c.seen);
    sx_free(c.lists);
    sx_free(c.qtaken);
    if (rep == &own || rc != SX_OK) sx_genematch_report_free(rep);
    return rc;
}
