/* sx_pipeline_figures — the figures of a finished job drawn after it, on request (the
 * daemon's maps run with plots off: sx_pl_on_request), from what the job kept: umap.png /
 * umap.pdf from its umap table (and its reference's, which holds the reference cells of a
 * query placed on the reference's layout: refcells.json), qc.png from result.json's QC
 * report and labels.sxt, confusion.png from confusion.csv. qc.png and confusion.png are
 * byte for byte the figures the job would have drawn; each is stored in the job folder and
 * served from there. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sx_alloc.h"
#include "sx_jobdir.h"
#include "sx_metrics.h"
#include "sx_pipeline_ctx.h"
#include "sx_plot.h"
#include "sx_plot_qc.h"

/* A figure drawn on request goes beside its final name first (tmp[cap], with the same
 * extension), then is renamed into place: concurrent first requests each write their own
 * copy and nobody serves half a file. */
static void figure_tmp(const char *path, char *tmp, size_t cap)
{
    const char *dot = strrchr(path, '.');
    size_t stem = dot ? (size_t)(dot - path) : strlen(path);
    snprintf(tmp, cap, "%.*s.%lx.tmp%s", (int)stem, path,
             (unsigned long)getpid() ^ (unsigned long)(uintptr_t)&tmp, dot ? dot : "");
}

/* rc of drawing to tmp: on success tmp renamed to path; on failure tmp removed. The
 * message never holds a path (users see it). */
static int figure_publish(int rc, const char *tmp, const char *path, const char *name,
                          sx_status *st)
{
    if (rc != SX_OK && rc != SX_ENOTFOUND && rc != SX_ENOMEM)
        sx_status_set(st, rc, "cannot draw %s for this job (disk full?)", name);
    if (rc == SX_OK && rename(tmp, path) != 0)
        rc = sx_status_set(st, SX_EIO, "cannot store %s in the job folder (disk full?)", name);
    if (rc) remove(tmp);
    return rc;
}

/* The reference's own umap table when the job left its reference rows to it (refcells.json:
 * the query placed on the reference's layout) and it still holds those cells; NULL when the
 * job's table holds every row. A reference withdrawn or registered again since: NULL, the
 * figure shows the job's own rows (the query). */
static sx_jobdir_table *reference_table(const char *outdir)
{
    sx_jobdir_refcells jc, now;
    sx_jobdir_spec spec;
    sx_jobdir_table *t = NULL;
    sx_status st;
    char tp[4400];
    sx_status_clear(&st);
    if (sx_jobdir_refcells_read(outdir, &jc, &st) || !jc.umap[0]) return NULL;
    memset(&spec, 0, sizeof spec);
    if (sx_jobdir_spec_read(outdir, &spec, &st) == SX_OK && spec.reference &&
        sx_jobdir_refcells_read(spec.reference, &now, &st) == SX_OK &&
        !strcmp(now.umap, jc.umap) &&
        sx_jobdir_path(spec.reference, sx_jobdir_table_name(SX_JOBDIR_UMAP), tp, sizeof tp,
                       &st) == SX_OK &&
        sx_jobdir_table_open(tp, &t, &st) == SX_OK && sx_jobdir_table_rows(t) != jc.cells) {
        sx_jobdir_table_close(t);
        t = NULL;
    }
    sx_jobdir_spec_clear(&spec);
    return t;
}

/* One string column of the umap table (the reference's rows first, when rt) as category
 * codes (sorted categories). */
static int table_codes(sx_jobdir_table *rt, sx_jobdir_table *t, const char *name, int64_t n,
                       int32_t *codes, char ***cats, int *n_cats, sx_status *st)
{
    int col = sx_jobdir_table_find(t, name), rcol = rt ? sx_jobdir_table_find(rt, name) : -1;
    if (col < 0 || (rt && rcol < 0)) return SX_ENOTFOUND;
    int64_t nr = rt ? sx_jobdir_table_rows(rt) : 0;
    char **v = NULL, **rv = NULL;
    const char **all = sx_mallocarray((size_t)n + 1, sizeof *all);
    int rc = all ? SX_OK : sx_status_set(st, SX_ENOMEM, "out of memory drawing the UMAP");
    if (rc == SX_OK && rt) rc = sx_jobdir_table_read_str(rt, rcol, 0, nr, &rv, st);
    if (rc == SX_OK) rc = sx_jobdir_table_read_str(t, col, 0, n - nr, &v, st);
    for (int64_t i = 0; rc == SX_OK && i < n; i++) all[i] = i < nr ? rv[i] : v[i - nr];
    if (rc == SX_OK) rc = sx_labels_encode(all, n, codes, cats, n_cats, st);
    free(v);
    free(rv);
    sx_free((void *)all);
    return rc;
}

/* x, y of both tables (the reference's rows first) into xy[2n]; tmpv: scratch of n */
static int table_xy(sx_jobdir_table *rt, sx_jobdir_table *t, int64_t n, double *xy,
                    double *tmpv, sx_status *st)
{
    int64_t nr = rt ? sx_jobdir_table_rows(rt) : 0;
    int rc = SX_OK;
    for (int s = rt ? 0 : 1; rc == SX_OK && s < 2; s++) {
        sx_jobdir_table *x = s ? t : rt;
        int64_t o = s ? nr : 0, m = s ? n - nr : nr;
        int cx = sx_jobdir_table_find(x, "x"), cy = sx_jobdir_table_find(x, "y");
        if (cx < 0 || cy < 0) return sx_status_set(st, SX_EFORMAT, "the UMAP table has no x, y columns");
        for (int d = 0; rc == SX_OK && d < 2; d++) {
            rc = sx_jobdir_table_read_num(x, d ? cy : cx, 0, m, tmpv, st);
            for (int64_t i = 0; rc == SX_OK && i < m; i++) xy[2 * (o + i) + d] = tmpv[i];
        }
    }
    return rc;
}

int sx_pipeline_render_umap(const char *outdir, const char *name, sx_status *st)
{
    int pdf = !strcmp(name, "umap.pdf");
    if (!pdf && strcmp(name, "umap.png"))
        return sx_status_set(st, SX_EINVAL, "no figure named '%s' (umap.png or umap.pdf)", name);
    char tp[4400], path[4400], tmp[4500];
    int rc = sx_jobdir_path(outdir, sx_jobdir_table_name(SX_JOBDIR_UMAP), tp, sizeof tp, st);
    if (!rc) rc = sx_jobdir_path(outdir, name, path, sizeof path, st);
    if (rc) return rc;
    sx_jobdir_table *t = NULL;
    if ((rc = sx_jobdir_table_open(tp, &t, st))) return rc;
    sx_jobdir_table *rt = reference_table(outdir); /* the grey reference under the query */
    int64_t n = sx_jobdir_table_rows(t) + (rt ? sx_jobdir_table_rows(rt) : 0);
    double *xy = sx_mallocarray((size_t)n * 2 + 2, sizeof *xy), *tmpv = NULL;
    int32_t *codes[3] = {0};
    char **cats[3] = {0};
    int ncat[3] = {0}, np = 0;
    uint8_t *hl = sx_mallocarray((size_t)n + 1, 1);
    if (!xy || !hl || !(tmpv = sx_mallocarray((size_t)n + 1, sizeof *tmpv)))
        rc = sx_status_set(st, SX_ENOMEM, "out of memory drawing %s", name);
    if (rc == SX_OK) rc = table_xy(rt, t, n, xy, tmpv, st);
    /* the panels the job would have drawn: projection (reference | query), batch, label */
    static const char *const cols[3] = {"set", "batch", "label"};
    static const char *const titles[3] = {"projection", "batch", "label"};
    sx_plot_panel pn[3];
    int has_ref = 0;
    for (int k = 0; rc == SX_OK && k < 3; k++) {
        if (!(codes[k] = sx_mallocarray((size_t)n + 1, sizeof *codes[k]))) {
            rc = sx_status_set(st, SX_ENOMEM, "out of memory drawing %s", name);
            break;
        }
        int r = table_codes(rt, t, cols[k], n, codes[k], &cats[k], &ncat[k], st);
        if (r == SX_ENOTFOUND) continue;
        if ((rc = r)) break;
        if (k == 0)
            for (int64_t i = 0; i < n; i++) {
                hl[i] = strcmp(cats[0][codes[0][i]], "reference") != 0;
                has_ref |= !hl[i];
            }
        pn[np] = (sx_plot_panel){.title = titles[k], .codes = codes[k],
                                 .categories = (const char *const *)cats[k],
                                 .n_categories = ncat[k]};
        if (k > 0 && has_ref) {
            pn[np].highlight = hl;
            pn[np].grey_label = "reference";
        }
        np++;
    }
    sx_jobdir_table_close(t);
    sx_jobdir_table_close(rt);
    figure_tmp(path, tmp, sizeof tmp);
    sx_plot_opts po = {0};
    if (rc == SX_OK && np == 0) rc = sx_status_set(st, SX_EFORMAT, "the UMAP table has no labels to draw");
    if (rc == SX_OK) rc = figure_publish(sx_plot_embedding(tmp, xy, n, pn, np, &po, st), tmp,
                                         path, name, st);
    for (int k = 0; k < 3; k++) {
        sx_free(codes[k]);
        if (cats[k]) sx_labels_free(cats[k], ncat[k]);
    }
    sx_free(xy);
    sx_free(tmpv);
    sx_free(hl);
    return rc;
}

/* The mapping scores of the first label column (labels.sxt "mapping_score"), finite only;
 * *n = 0 when the job has none. */
static int table_scores(const char *outdir, double **score, int64_t *n, sx_status *st)
{
    char tp[4400];
    sx_jobdir_table *t = NULL;
    *score = NULL;
    *n = 0;
    int rc = sx_jobdir_path(outdir, sx_jobdir_table_name(SX_JOBDIR_LABELS), tp, sizeof tp, st);
    if (rc == SX_OK && (rc = sx_jobdir_table_open(tp, &t, st)) == SX_ENOTFOUND) return SX_OK;
    if (rc) return rc;
    int col = sx_jobdir_table_find(t, "mapping_score");
    int64_t rows = sx_jobdir_table_rows(t), m = 0;
    double *v = col < 0 ? NULL : sx_mallocarray((size_t)rows + 1, sizeof *v);
    if (col >= 0 && !v) rc = sx_status_set(st, SX_ENOMEM, "out of memory drawing qc.png");
    else if (col >= 0) rc = sx_jobdir_table_read_num(t, col, 0, rows, v, st);
    for (int64_t i = 0; rc == SX_OK && v && i < rows; i++)
        if (isfinite(v[i])) v[m++] = v[i];
    sx_jobdir_table_close(t);
    if (rc) sx_free(v);
    else *score = v, *n = m;
    return rc;
}

/* rule names and counts of qc.genes.by_rule (borrowed from the JSON; arrays owned) */
static int json_rules(const json_t *genes, sx_plot_qc_data *d, const char ***rule,
                      int64_t **rule_n)
{
    const json_t *by = json_object_get(genes, "by_rule");
    size_t nr = json_object_size(by);
    *rule = sx_calloc(nr + 1, sizeof **rule);
    *rule_n = sx_calloc(nr + 1, sizeof **rule_n);
    if (!*rule || !*rule_n) return SX_ENOMEM;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)by, k, v) {
        (*rule)[d->n_rules] = k;
        (*rule_n)[d->n_rules++] = json_integer_value(v);
    }
    d->rule = *rule;
    d->rule_n = *rule_n;
    d->n_missing = json_integer_value(json_object_get(genes, "reference")) -
                   json_integer_value(json_object_get(genes, "matched"));
    return SX_OK;
}

/* classes and cells of the report's first label column (borrowed; arrays owned) */
static int json_classes(const json_t *labels, sx_plot_qc_data *d, const char ***cls,
                        int64_t **cls_n)
{
    void *it = json_object_iter((json_t *)labels);
    if (!it) return SX_OK;
    const json_t *a = json_object_iter_value(it);
    size_t n = json_array_size(a);
    *cls = sx_calloc(n + 1, sizeof **cls);
    *cls_n = sx_calloc(n + 1, sizeof **cls_n);
    if (!*cls || !*cls_n) return SX_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(a, i);
        const char *name = json_string_value(json_object_get(e, "label"));
        if (!name) continue;
        (*cls)[d->n_classes] = name;
        (*cls_n)[d->n_classes++] = json_integer_value(json_object_get(e, "cells"));
    }
    d->label = json_object_iter_key(it);
    d->classes = *cls;
    d->class_n = *cls_n;
    return SX_OK;
}

/* qc.png to path from result.json's "qc" report and the scores of labels.sxt: the figure
 * sx_pl_qc draws (sx_pipeline_qc.c). SX_ENOTFOUND: no report, or nothing to draw. */
static int render_qc(const char *outdir, const char *path, sx_status *st)
{
    char rp[4400];
    int rc = sx_jobdir_path(outdir, SX_JOBDIR_RESULT, rp, sizeof rp, st);
    if (rc) return rc;
    json_t *root = json_load_file(rp, 0, NULL);
    const json_t *qc = json_object_get(root, "qc");
    if (!json_is_object(qc)) {
        json_decref(root);
        return sx_status_set(st, SX_ENOTFOUND, "this job wrote no QC report (only maps do)");
    }
    sx_plot_qc_data d = {.title = "map QC"};
    const char **rule = NULL, **cls = NULL;
    int64_t *rule_n = NULL, *cls_n = NULL;
    double *score = NULL;
    const json_t *genes = json_object_get(qc, "genes");
    if (json_is_object(genes)) rc = json_rules(genes, &d, &rule, &rule_n);
    if (rc == SX_OK) rc = json_classes(json_object_get(qc, "labels"), &d, &cls, &cls_n);
    if (rc == SX_ENOMEM) sx_status_set(st, rc, "out of memory drawing qc.png");
    if (rc == SX_OK && json_object_get(qc, "mapping_score"))
        rc = table_scores(outdir, &score, &d.n_score, st);
    d.score = score;
    if (rc == SX_OK && !d.n_rules && !d.n_score && !d.n_classes)
        rc = sx_status_set(st, SX_ENOTFOUND, "this job's QC report has nothing to draw");
    if (rc == SX_OK) rc = sx_plot_qc(path, &d, st);
    sx_free(rule);
    sx_free(rule_n);
    sx_free(cls);
    sx_free(cls_n);
    sx_free(score);
    json_decref(root);
    return rc;
}

/* One record (line) of a CSV text as sx_sb_csv writes its fields (quoted when they hold
 * , " or a line break; "" inside quotes): the fields, unquoted, into f (owned strings, *n
 * of them; the caller frees each and f); *p moves past the record. -1 out of memory. */
static int csv_record(const char **p, char ***f, int *n)
{
    const char *q = *p;
    int cap = 0;
    *f = NULL;
    *n = 0;
    for (int more = *q != 0; more;) {
        sx_sb b = {0};
        sx_sb_puts(&b, "");
        if (*q == '"') {
            for (q++; *q && !(*q == '"' && q[1] != '"'); q++) {
                if (*q == '"') q++; /* "" -> " */
                sx_sb_putf(&b, "%c", *q);
            }
            if (*q == '"') q++;
        } else {
            size_t k = strcspn(q, ",\n");
            sx_sb_putf(&b, "%.*s", (int)k, q);
            q += k;
        }
        more = *q == ',';
        if (*q) q++;
        char **g = *n < cap ? *f : sx_reallocarray(*f, (size_t)(cap = 2 * cap + 8), sizeof *g);
        if (b.oom || !g) {
            sx_sb_free(&b);
            return -1;
        }
        *f = g;
        g[(*n)++] = b.s;
    }
    *p = q;
    return 0;
}

static void fields_free(char **f, int n)
{
    for (int i = 0; i < n; i++) sx_free(f[i]);
    sx_free(f);
}

/* confusion.csv as the transfer step writes it: a header "true\predicted,<classes>", then
 * per class its name and counts. classes (owned, n; fields_free) and counts (n x n). */
static int read_confusion(const char *path, char ***classes, int *n, double **m, sx_status *st)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sx_status_set(st, SX_ENOTFOUND, "this job scored no labels (no confusion.csv)");
    sx_sb text = {0};
    char buf[65536];
    for (size_t k; (k = fread(buf, 1, sizeof buf, f)) > 0;) sx_sb_putf(&text, "%.*s", (int)k, buf);
    fclose(f);
    const char *p = text.s ? text.s : "";
    char **hd = NULL, **row = NULL;
    int nh = 0, nr = 0, rc = text.oom || csv_record(&p, &hd, &nh) ? SX_ENOMEM : SX_OK;
    int nc = nh - 1;
    double *v = rc == SX_OK && nc > 0 ? sx_calloc((size_t)nc * nc, sizeof *v) : NULL;
    if (rc == SX_OK && !v) rc = SX_EFORMAT;
    for (int i = 0; rc == SX_OK && i < nc; i++) {
        if (csv_record(&p, &row, &nr)) rc = SX_ENOMEM;
        else if (nr != nc + 1) rc = SX_EFORMAT;
        for (int j = 0; rc == SX_OK && j < nc; j++) v[(size_t)i * nc + j] = strtod(row[j + 1], NULL);
        fields_free(row, nr);
    }
    sx_sb_free(&text);
    if (rc) {
        fields_free(hd, nh);
        sx_free(v);
        return sx_status_set(st, rc, rc == SX_ENOMEM ? "out of memory drawing confusion.png"
                                                     : "this job's confusion.csv is unreadable");
    }
    sx_free(hd[0]); /* "true\predicted" */
    memmove(hd, hd + 1, (size_t)nc * sizeof *hd);
    *classes = hd, *n = nc, *m = v;
    return SX_OK;
}

/* The title the transfer step gives its figure: the first label column (the QC report's
 * first), accuracy and macro F1 of the cells the matrix counts, computed again from them
 * by the same functions, so the text is the job's to the last digit. */
static int confusion_title(const char *outdir, const double *m, int nc, char *title, size_t cap,
                           sx_status *st)
{
    char rp[4400];
    int rc = sx_jobdir_path(outdir, SX_JOBDIR_RESULT, rp, sizeof rp, st);
    if (rc) return rc;
    json_t *root = json_load_file(rp, 0, NULL);
    void *it = json_object_iter(json_object_get(json_object_get(root, "qc"), "labels"));
    const char *label = it ? json_object_iter_key(it) : NULL;
    int64_t total = 0;
    for (int k = 0; k < nc * nc; k++) total += (int64_t)m[k];
    int32_t *tc = label ? sx_mallocarray((size_t)total + 1, sizeof *tc) : NULL;
    int32_t *pc = label ? sx_mallocarray((size_t)total + 1, sizeof *pc) : NULL;
    if (!label) rc = sx_status_set(st, SX_ENOTFOUND, "this job has no transferred labels");
    else if (!tc || !pc) rc = sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int64_t k = 0, c = 0; rc == SX_OK && k < (int64_t)nc * nc; k++)
        for (int64_t r = 0; r < (int64_t)m[k]; r++, c++) {
            tc[c] = (int32_t)(k / nc);
            pc[c] = (int32_t)(k % nc);
        }
    if (rc == SX_OK)
        snprintf(title, cap, "%s: accuracy %.3f, macro F1 %.3f", label,
                 sx_metrics_accuracy(tc, pc, total), sx_metrics_macro_f1(tc, pc, total, nc));
    sx_free(tc);
    sx_free(pc);
    json_decref(root);
    return rc;
}

/* confusion.png from confusion.csv, drawn to tmp (see sx_pipeline_transfer.c's figure) */
static int render_confusion(const char *outdir, const char *tmp, sx_status *st)
{
    char cp[4400], title[400];
    char **cls = NULL;
    double *m = NULL;
    int nc = 0;
    int rc = sx_jobdir_path(outdir, "confusion.csv", cp, sizeof cp, st);
    if (rc == SX_OK) rc = read_confusion(cp, &cls, &nc, &m, st);
    if (rc == SX_OK) rc = confusion_title(outdir, m, nc, title, sizeof title, st);
    if (rc == SX_OK)
        rc = sx_plot_confusion(tmp, m, nc, nc, (const char *const *)cls,
                               (const char *const *)cls, "true label", "transferred label",
                               title, 1, st);
    fields_free(cls, nc);
    sx_free(m);
    return rc;
}

int sx_pipeline_render_figure(const char *outdir, const char *name, sx_status *st)
{
    if (!strcmp(name, "umap.png") || !strcmp(name, "umap.pdf"))
        return sx_pipeline_render_umap(outdir, name, st);
    int qc = !strcmp(name, "qc.png");
    if (!qc && strcmp(name, "confusion.png"))
        return sx_status_set(st, SX_EINVAL, "no figure named '%s' is drawn on request", name);
    char path[4400], tmp[4500];
    int rc = sx_jobdir_path(outdir, name, path, sizeof path, st);
    if (rc) return rc;
    figure_tmp(path, tmp, sizeof tmp);
    rc = qc ? render_qc(outdir, tmp, st) : render_confusion(outdir, tmp, st);
    return figure_publish(rc, tmp, path, name, st);
}
