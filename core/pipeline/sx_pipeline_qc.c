/* sx_pipeline_qc — the QC report of a map: numbers from the gene match and the output obs,
 * warnings that say what to do, the log paragraph and qc.png (see sx_pipeline_qc.h). */
#include "sx_pipeline_qc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_plot_qc.h"

/* Warning thresholds. They flag a map worth a second look; they are not calibrated cut-offs
 * (the mapping score's own thresholds belong to label transfer). */
#define QC_GENE_FRACTION 0.8   /* reference genes found in the query */
#define QC_CELLS_MAPPED 0.9    /* query cells that passed the cell filter */
#define QC_POOR_SCORE 0.2      /* a mapping score below this is a poorly mapped cell */
#define QC_POOR_FRACTION 0.1   /* ... and more than this share of them is worth a warning */
#define QC_UNKNOWN_FRACTION 0.25
#define QC_MAX_WARNINGS 12
#define TRANSFER_SUFFIX "_transfer"
#define UNKNOWN "Unknown"

typedef struct qc_label {
    char *name;                /* the label column (obs name without "_transfer") */
    const sx_column *col;      /* <label>_transfer, categorical */
    const sx_column *conf;     /* <label>_transfer_confidence or NULL */
    int64_t *count;            /* query cells per category */
    double *conf_sum;
} qc_label;

typedef struct qc_stats {
    qc_label lab[16];
    int n_lab;
    double *score;             /* mapping scores of the query cells, sorted */
    int64_t n_score;
    double mean, q[5], unknown;
    const char *score_label;
    char **batches;            /* borrowed texts of the batch column (first appearance order) */
    int n_batches;
    const char *wcode[QC_MAX_WARNINGS];
    char *wmsg[QC_MAX_WARNINGS];
    int n_warn;
} qc_stats;

static const int qc_pct[5] = {5, 25, 50, 75, 95};

static void stats_free(qc_stats *s)
{
    for (int i = 0; i < s->n_lab; i++) {
        sx_free(s->lab[i].name);
        sx_free(s->lab[i].count);
        sx_free(s->lab[i].conf_sum);
    }
    sx_free(s->score);
    sx_free(s->batches);
    for (int i = 0; i < s->n_warn; i++) sx_free(s->wmsg[i]);
}

static void warn(qc_stats *s, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(qc_stats *s, const char *code, const char *fmt, ...)
{
    if (s->n_warn >= QC_MAX_WARNINGS) return;
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    s->wcode[s->n_warn] = code;
    if ((s->wmsg[s->n_warn] = sx_strdup(buf))) s->n_warn++;
}

static const sx_column *float_col(const sx_frame *obs, const char *label, const char *suffix)
{
    char name[512];
    snprintf(name, sizeof name, "%s%s", label, suffix);
    const sx_column *c = sx_frame_col(obs, name);
    return c && c->kind == SX_COL_FLOAT ? c : NULL;
}

/* every categorical <label>_transfer column: cells and summed confidence per class */
static int gather_labels(const sx_pl_qc_in *in, qc_stats *s)
{
    const sx_frame *obs = in->obs;
    size_t sl = strlen(TRANSFER_SUFFIX);
    for (int ci = 0; ci < obs->n_cols && s->n_lab < 16; ci++) {
        const sx_column *col = &obs->cols[ci];
        size_t n = strlen(col->name);
        if (col->kind != SX_COL_CATEGORICAL || n <= sl ||
            strcmp(col->name + n - sl, TRANSFER_SUFFIX) != 0)
            continue;
        qc_label *L = &s->lab[s->n_lab];
        L->name = sx_strndup(col->name, n - sl);
        L->count = sx_calloc((size_t)col->n_categories + 1, sizeof *L->count);
        L->conf_sum = sx_calloc((size_t)col->n_categories + 1, sizeof *L->conf_sum);
        s->n_lab++;
        if (!L->name || !L->count || !L->conf_sum) return SX_ENOMEM;
        L->col = col;
        L->conf = float_col(obs, L->name, "_transfer_confidence");
        for (int64_t i = in->row0; i < in->row0 + in->n_query; i++) {
            int32_t k = col->codes[i];
            if (k < 0) continue;
            L->count[k]++;
            if (L->conf && isfinite(L->conf->f64[i])) L->conf_sum[k] += L->conf->f64[i];
        }
    }
    return SX_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* the first label with a mapping score: its distribution (numpy's linear quantiles) and
 * the share of its Unknown answers */
static int gather_score(const sx_pl_qc_in *in, qc_stats *s)
{
    s->unknown = NAN;
    for (int l = 0; l < s->n_lab && !s->score_label; l++) {
        const sx_column *ms = float_col(in->obs, s->lab[l].name, "_mapping_score");
        if (!ms) continue;
        s->score_label = s->lab[l].name;
        if (!(s->score = sx_mallocarray((size_t)in->n_query + 1, sizeof *s->score))) return SX_ENOMEM;
        double sum = 0;
        for (int64_t i = in->row0; i < in->row0 + in->n_query; i++)
            if (isfinite(ms->f64[i])) sum += s->score[s->n_score++] = ms->f64[i];
        qsort(s->score, (size_t)s->n_score, sizeof *s->score, cmp_double);
        s->mean = s->n_score ? sum / (double)s->n_score : NAN;
        for (int p = 0; p < 5; p++) {
            double pos = qc_pct[p] / 100.0 * (double)(s->n_score - 1);
            int64_t lo = (int64_t)floor(pos), hi = (int64_t)ceil(pos);
            s->q[p] = s->n_score ? s->score[lo] + (s->score[hi] - s->score[lo]) * (pos - (double)lo)
                                 : NAN;
        }
        const sx_column *c = s->lab[l].col;
        int64_t unk = 0;
        for (int k = 0; k < c->n_categories; k++)
            if (strcmp(c->categories[k], UNKNOWN) == 0) unk += s->lab[l].count[k];
        s->unknown = in->n_query ? (double)unk / (double)in->n_query : NAN;
    }
    return SX_OK;
}

/* distinct values of obs "batch" among the query rows, in order of first appearance */
static int gather_batches(const sx_pl_qc_in *in, qc_stats *s)
{
    const sx_column *b = sx_frame_col(in->obs, "batch");
    if (!b || (b->kind != SX_COL_CATEGORICAL && b->kind != SX_COL_STRING)) return SX_OK;
    int cap = b->kind == SX_COL_CATEGORICAL ? b->n_categories : 64;
    if (!(s->batches = sx_calloc((size_t)cap + 1, sizeof *s->batches))) return SX_ENOMEM;
    for (int64_t i = in->row0; i < in->row0 + in->n_query && s->n_batches < cap; i++) {
        char *t = b->kind == SX_COL_STRING ? b->str[i]
                  : b->codes[i] >= 0       ? b->categories[b->codes[i]]
                                           : NULL;
        int seen = !t;
        for (int k = 0; k < s->n_batches && !seen; k++) seen = strcmp(s->batches[k], t) == 0;
        if (!seen) s->batches[s->n_batches++] = t;
    }
    return SX_OK;
}

static void gene_warnings(const sx_genematch_report *g, qc_stats *s)
{
    double frac = g->n_ref ? (double)g->n_matched / (double)g->n_ref : 0;
    if (frac < QC_GENE_FRACTION)
        warn(s, "low_gene_overlap", "only %lld of the reference's %lld genes (%.0f%%) were found "
             "in the query; the missing ones are zero-filled, which weakens the map. Check the "
             "gene naming (symbols vs Ensembl ids, species) and give a gene table (query gene, "
             "reference gene: scalex --gene_table FILE, or genes.tsv in the reference folder)",
             (long long)g->n_matched, (long long)g->n_ref, 100 * frac);
    if (g->n_ambiguous)
        warn(s, "ambiguous_genes", "%lld gene names matched more than one gene and were left "
             "unmatched (listed under genes.ambiguous); say which is which in a gene table",
             (long long)g->n_ambiguous);
    int64_t ci = sx_genematch_rule_count(g, "case_insensitive");
    if (ci)
        warn(s, "case_insensitive_genes", "%lld genes matched only when case is ignored (e.g. "
             "mouse symbols onto a human reference); for another species an ortholog gene table "
             "also maps the genes whose names differ", (long long)ci);
}

static void cell_warnings(const sx_pl_qc_in *in, qc_stats *s)
{
    if (in->n_query_read > 0 && (double)in->n_query < QC_CELLS_MAPPED * (double)in->n_query_read)
        warn(s, "cells_filtered", "%lld of %lld query cells were mapped; the others had fewer "
             "expressed genes than min_features. Lower min_features if they are real cells",
             (long long)in->n_query, (long long)in->n_query_read);
    if (s->n_score) {
        int64_t poor = 0;
        while (poor < s->n_score && s->score[poor] < QC_POOR_SCORE) poor++;
        if ((double)poor > QC_POOR_FRACTION * (double)s->n_score)
            warn(s, "poorly_mapped", "%lld of %lld query cells (%.0f%%) have a mapping score "
                 "below %.1f: the reference may lack their cell types, or the query differs "
                 "strongly from it (tissue, chemistry, species). Compare them on qc.png and the "
                 "UMAP, or use a reference that covers them", (long long)poor,
                 (long long)s->n_score, 100.0 * (double)poor / (double)s->n_score, QC_POOR_SCORE);
    }
    if (isfinite(s->unknown) && s->unknown > QC_UNKNOWN_FRACTION)
        warn(s, "many_unknown", "%.0f%% of the query cells are labelled Unknown for %s: the "
             "reference may not contain these cell types; check the mapping score, or lower "
             "the Unknown thresholds to see the nearest reference label", 100 * s->unknown,
             s->score_label);
    for (int l = 0; l < s->n_lab; l++) {
        int used = 0, k1 = -1;
        for (int k = 0; k < s->lab[l].col->n_categories; k++)
            if (s->lab[l].count[k]) used++, k1 = k;
        if (used == 1 && in->n_query > 1)
            warn(s, "single_class", "every query cell got the same %s, '%s': check that the "
                 "reference's %s column has several classes and that the query resembles it",
                 s->lab[l].name, s->lab[l].col->categories[k1], s->lab[l].name);
    }
}

static int gather(const sx_pl_qc_in *in, qc_stats *s)
{
    memset(s, 0, sizeof *s);
    int rc = gather_labels(in, s);
    if (rc == SX_OK) rc = gather_score(in, s);
    if (rc == SX_OK) rc = gather_batches(in, s);
    if (rc != SX_OK) return rc;
    if (in->genes) gene_warnings(in->genes, s);
    cell_warnings(in, s);
    return SX_OK;
}

/* ---- JSON ---- */

static void json_genes(sx_sb *b, const sx_genematch_report *g)
{
    sx_sb_putf(b, "\"genes\": {\"reference\": %lld, \"query\": %lld, \"matched\": %lld, "
               "\"by_rule\": {", (long long)g->n_ref, (long long)g->n_query,
               (long long)g->n_matched);
    for (int i = 0; i < g->n_rules; i++) {
        if (i) sx_sb_puts(b, ", ");
        sx_sb_json_str(b, g->rule[i]);
        sx_sb_putf(b, ": %lld", (long long)g->rule_n[i]);
    }
    sx_sb_puts(b, "}, \"ambiguous\": [");
    for (int i = 0; i < g->n_listed; i++) {
        if (i) sx_sb_puts(b, ", ");
        sx_sb_json_str(b, g->ambiguous[i]);
    }
    sx_sb_puts(b, "]}, ");
}

static void json_labels(sx_sb *b, const qc_stats *s)
{
    sx_sb_puts(b, "\"labels\": {");
    for (int l = 0; l < s->n_lab; l++) {
        const qc_label *L = &s->lab[l];
        if (l) sx_sb_puts(b, ", ");
        sx_sb_json_str(b, L->name);
        sx_sb_puts(b, ": [");
        int first = 1;
        for (int k = 0; k < L->col->n_categories; k++) {
            if (!L->count[k]) continue;
            sx_sb_puts(b, first ? "{\"label\": " : ", {\"label\": ");
            first = 0;
            sx_sb_json_str(b, L->col->categories[k]);
            sx_sb_putf(b, ", \"cells\": %lld, \"mean_confidence\": ", (long long)L->count[k]);
            sx_sb_json_num(b, L->conf ? L->conf_sum[k] / (double)L->count[k] : NAN);
            sx_sb_puts(b, "}");
        }
        sx_sb_puts(b, "]");
    }
    sx_sb_puts(b, "}");
}

static char *to_json(const sx_pl_qc_in *in, const qc_stats *s, sx_status *st)
{
    sx_sb b = {0};
    sx_sb_puts(&b, "{");
    if (in->genes) json_genes(&b, in->genes);
    sx_sb_putf(&b, "\"cells\": {\"query\": %lld, \"mapped\": %lld}, \"batches\": [",
               (long long)(in->n_query_read > 0 ? in->n_query_read : in->n_query),
               (long long)in->n_query);
    for (int i = 0; i < s->n_batches; i++) {
        if (i) sx_sb_puts(&b, ", ");
        sx_sb_json_str(&b, s->batches[i]);
    }
    sx_sb_puts(&b, "], ");
    if (s->score_label) {
        sx_sb_puts(&b, "\"mapping_score\": {\"mean\": ");
        sx_sb_json_num(&b, s->mean);
        sx_sb_puts(&b, ", \"quantiles\": {");
        for (int p = 0; p < 5; p++) {
            sx_sb_putf(&b, "%s\"%d\": ", p ? ", " : "", qc_pct[p]);
            sx_sb_json_num(&b, s->q[p]);
        }
        sx_sb_puts(&b, "}}, \"unknown_fraction\": ");
        sx_sb_json_num(&b, s->unknown);
        sx_sb_puts(&b, ", ");
    }
    json_labels(&b, s);
    sx_sb_puts(&b, ", \"warnings\": [");
    for (int i = 0; i < s->n_warn; i++) {
        sx_sb_puts(&b, i ? ", {\"code\": " : "{\"code\": ");
        sx_sb_json_str(&b, s->wcode[i]);
        sx_sb_puts(&b, ", \"message\": ");
        sx_sb_json_str(&b, s->wmsg[i]);
        sx_sb_puts(&b, "}");
    }
    sx_sb_puts(&b, "]}");
    if (b.oom) {
        sx_sb_free(&b);
        sx_status_set(st, SX_ENOMEM, "out of memory writing the QC report");
        return NULL;
    }
    return b.s;
}

char *sx_pl_qc_json(const sx_pl_qc_in *in, sx_status *st)
{
    qc_stats s;
    char *j = NULL;
    if (gather(in, &s) != SX_OK) sx_status_set(st, SX_ENOMEM, "out of memory in the QC report");
    else j = to_json(in, &s, st);
    stats_free(&s);
    return j;
}

/* ---- log and figure ---- */

static void log_paragraph(sx_pl_ctx *c, const sx_pl_qc_in *in, const qc_stats *s)
{
    sx_sb b = {0};
    sx_sb_puts(&b, "QC:");
    const sx_genematch_report *g = in->genes;
    if (g) {
        sx_sb_putf(&b, " %lld of %lld reference genes matched (", (long long)g->n_matched,
                   (long long)g->n_ref);
        for (int i = 0, shown = 0; i < g->n_rules; i++)
            if (g->rule_n[i])
                sx_sb_putf(&b, "%s%s %lld", shown++ ? ", " : "", g->rule[i], (long long)g->rule_n[i]);
        sx_sb_putf(&b, "), %lld ambiguous;", (long long)g->n_ambiguous);
    }
    sx_sb_putf(&b, " %lld of %lld query cells mapped", (long long)in->n_query,
               (long long)(in->n_query_read > 0 ? in->n_query_read : in->n_query));
    for (int i = 0; i < s->n_batches; i++) sx_sb_putf(&b, "%s%s", i ? ", " : " (batches: ", s->batches[i]);
    sx_sb_puts(&b, s->n_batches ? ");" : ";");
    if (s->score_label && s->n_score)
        sx_sb_putf(&b, " mapping score mean %.3f, median %.3f, 5%% %.3f; Unknown %.1f%%;", s->mean,
                   s->q[2], s->q[0], 100 * s->unknown);
    for (int l = 0; l < s->n_lab; l++) {
        int used = 0, big = -1;
        for (int k = 0; k < s->lab[l].col->n_categories; k++) {
            if (!s->lab[l].count[k]) continue;
            used++;
            if (big < 0 || s->lab[l].count[k] > s->lab[l].count[big]) big = k;
        }
        if (big >= 0)
            sx_sb_putf(&b, " %s: %d classes, largest %s (%lld cells);", s->lab[l].name, used,
                       s->lab[l].col->categories[big], (long long)s->lab[l].count[big]);
    }
    sx_sb_putf(&b, " %d warning%s%s", s->n_warn, s->n_warn == 1 ? "" : "s", s->n_warn ? ": " : ".");
    for (int i = 0; i < s->n_warn; i++) sx_sb_putf(&b, "%s[%s] %s", i ? "; " : "", s->wcode[i], s->wmsg[i]);
    if (!b.oom) sx_pl_log_msg(&c->log, "%s", b.s);
    sx_sb_free(&b);
}

/* The figure shows what the report says: classes with cells (the report lists only those),
 * so the figure drawn on request from result.json (sx_pipeline_figures.c) is this one. */
static void draw(sx_pl_ctx *c, const sx_pl_qc_in *in, const qc_stats *s)
{
    sx_plot_qc_data d = {.title = "map QC"};
    const sx_genematch_report *g = in->genes;
    if (g) {
        d.n_rules = g->n_rules;
        d.rule = (const char *const *)g->rule;
        d.rule_n = g->rule_n;
        d.n_missing = g->n_ref - g->n_matched;
    }
    d.score = s->score;
    d.n_score = s->n_score;
    const char **cls = NULL;
    int64_t *cls_n = NULL;
    if (s->n_lab) {
        const qc_label *L = &s->lab[0];
        int nc = L->col->n_categories;
        cls = sx_calloc((size_t)nc + 1, sizeof *cls);
        cls_n = sx_calloc((size_t)nc + 1, sizeof *cls_n);
        for (int k = 0; cls && cls_n && k < nc; k++)
            if (L->count[k]) {
                cls[d.n_classes] = L->col->categories[k];
                cls_n[d.n_classes++] = L->count[k];
            }
        d.label = L->name;
        d.classes = cls;
        d.class_n = cls_n;
    }
    char *p = NULL;
    sx_status st;
    sx_status_clear(&st);
    if (!d.n_rules && !d.n_score && !d.n_classes) goto out;
    /* plots off (the daemon's /map): drawn on first request from the report, see above */
    if (sx_pl_on_request(c)) sx_pl_file_out(c, "qc.png");
    else if ((p = sx_pl_out_path(c, "qc.png")) && sx_plot_qc(p, &d, &st) == SX_OK)
        sx_pl_file_out(c, "qc.png");
    else sx_pl_log_msg(&c->log, "QC figure not drawn: %s", p ? st.msg : "out of memory");
out:
    sx_free(p);
    sx_free(cls);
    sx_free(cls_n);
}

int sx_pl_qc(sx_pl_ctx *c, const sx_pl_qc_in *in, sx_status *st)
{
    qc_stats s;
    int rc = gather(in, &s);
    char *j = rc == SX_OK ? to_json(in, &s, st) : NULL;
    if (rc != SX_OK) rc = sx_status_set(st, SX_ENOMEM, "out of memory in the QC report");
    else if (!j) rc = st->code;
    if (rc == SX_OK) {
        sx_sb_free(&c->qc);
        sx_sb_puts(&c->qc, j);
        log_paragraph(c, in, &s);
        draw(c, in, &s);
    }
    sx_free(j);
    stats_free(&s);
    return rc;
}
