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
    o->gene_table = NULL;
}

void sx_reindex_report_free(sx_reindex_report *r)
{
    if (!r) return;
    for (int64_t i = 0; i < r->n_missing_listed; i++) sx_free(r->missing[i]);
    sx_free(r->missing);
    sx_genematch_report_free(&r->match);
    memset(r, 0, sizeof *r);
}

int sx_prep_match_genes(const sx_frame *var, const char *const *ref, int64_t n_ref, int64_t *src,
                        const sx_reindex_opts *o, sx_reindex_report *rep, sx_status *st)
{
    sx_reindex_opts def;
    if (!o) {
        sx_reindex_opts_init(&def);
        o = &def;
    }
    sx_genematch_report m;
    int rc = sx_genematch_run(var, ref, n_ref, o->gene_table, src, &m, st);
    if (rc != SX_OK) return rc;
    if (!rep) {
        sx_genematch_report_free(&m);
        return SX_OK;
    }
    memset(rep, 0, sizeof *rep);
    rep->match = m;
    rep->n_ref = n_ref;
    rep->n_present = m.n_matched;
    /* through identifier columns: every rule but the table, var names and case */
    rep->n_by_id = m.n_matched - sx_genematch_rule_count(&m, "gene_table") -
                   sx_genematch_rule_count(&m, "var_names") -
                   sx_genematch_rule_count(&m, "case_insensitive");
    rep->fraction = n_ref ? (double)m.n_matched / (double)n_ref : 0;
    rep->n_missing = n_ref - m.n_matched;
    int64_t lim = o->list_missing > 0 ? o->list_missing : 0;
    if (lim > rep->n_missing) lim = rep->n_missing;
    rep->missing = sx_calloc((size_t)(lim ? lim : 1), sizeof(char *));
    if (!rep->missing) goto oom;
    for (int64_t k = 0; k < n_ref && rep->n_missing_listed < lim; k++)
        if (src[k] < 0) {
            if (!(rep->missing[rep->n_missing_listed] = sx_strdup(ref[k]))) goto oom;
            rep->n_missing_listed++;
        }
    return SX_OK;
oom:
    sx_reindex_report_free(rep);
    return sx_status_set(st, SX_ENOMEM, "out of memory");
}

/* SX_EGENES with the overlap, the rules that matched, the first missing names and what to do */
static int check_overlap(const sx_reindex_opts *o, const char *const *ref, int64_t n_ref,
                         const int64_t *src, int64_t present, const sx_genematch_report *m,
                         sx_status *st)
{
    int64_t need = o->min_genes < n_ref ? o->min_genes : n_ref;
    double frac = n_ref ? (double)present / (double)n_ref : 0;
    if (present >= need && frac >= o->min_fraction && present > 0) return SX_OK;
    char list[300], rules[200];
    list[0] = rules[0] = 0;
    int shown = 0, lim = o->list_missing > 0 ? o->list_missing : 20;
    for (int64_t k = 0; k < n_ref && shown < lim; k++) {
        if (src[k] >= 0) continue;
        if (strlen(list) + strlen(ref[k]) + 8 >= sizeof list) break;
        if (shown++) strcat(list, ", ");
        strcat(list, ref[k]);
    }
    size_t len = 0;
    for (int i = 0; m && i < m->n_rules && len + 40 < sizeof rules; i++)
        len += (size_t)snprintf(rules + len, sizeof rules - len, "%s%.24s %lld", i ? ", " : "; by rule: ",
                                m->rule[i], (long long)m->rule_n[i]);
    return sx_status_set(st, SX_EGENES,
                         "the query shares only %lld of the reference's %lld genes (%.1f%%; "
                         "required: at least %.0f%% and %lld genes%s). What to do: use the "
                         "reference's gene naming (symbols vs Ensembl ids; a var column of them "
                         "is used by itself), or give a gene table (two columns: query gene, "
                         "reference gene; scalex --gene_table FILE, or genes.tsv in the "
                         "reference's folder). Missing, first %d: %s%s",
                         (long long)present, (long long)n_ref, 100.0 * frac,
                         100.0 * o->min_fraction, (long long)need, rules, shown, list,
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
    sx_reindex_report own; /* the report when the caller wants none */
    memset(&own, 0, sizeof own);
    int rc = SX_OK;
    if (!src || !map) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory reindexing");
        goto fail;
    }
    if ((rc = sx_prep_match_genes(var_in, ref, n_ref, src, o, rep ? rep : &own, st)) != SX_OK)
        goto fail;
    const sx_genematch_report *m = rep ? &rep->match : &own.match;
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
    if ((rc = check_overlap(o, ref, n_ref, src, present, m, st)) != SX_OK) goto fail;
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
    sx_reindex_report_free(&own);
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
