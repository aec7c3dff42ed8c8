/* sx_pipeline_transfer — label transfer: the step project and transfer share (kNN vote of
 * the reference's labels with its calibrated confidence, scores and confusion matrix against
 * the query's own labels) and the transfer workflow (labels onto a query already in the reference's
 * latent space). ALGORITHM.md §9. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_io.h"
#include "sx_jobdir.h"
#include "sx_knn.h"
#include "sx_metrics.h"
#include "sx_pipeline_ctx.h"
#include "sx_plot.h"
#include "sx_sha256.h"

/* STEM.csv and STEM.png (confusion, or confusion_<label> for a further label column) of
 * scored cells (codes over the common classes) */
static int write_confusion(sx_pl_ctx *c, const int32_t *tc, const int32_t *pc, int64_t m,
                           char **classes, int n_classes, const char *title, const char *stem,
                           sx_status *st)
{
    char name[300];
    int64_t *conf = sx_calloc((size_t)n_classes * n_classes, sizeof *conf);
    double *confd = sx_calloc((size_t)n_classes * n_classes, sizeof *confd);
    sx_sb b = {0};
    int rc = conf && confd ? sx_metrics_confusion(tc, pc, m, n_classes, conf, st) : sx_pl_oom(st);
    if (rc != SX_OK) goto out;
    sx_sb_puts(&b, "true\\predicted");
    for (int j = 0; j < n_classes; j++) {
        sx_sb_puts(&b, ",");
        sx_sb_csv(&b, classes[j]);
    }
    sx_sb_puts(&b, "\n");
    for (int i = 0; i < n_classes; i++) {
        sx_sb_csv(&b, classes[i]);
        for (int j = 0; j < n_classes; j++) {
            sx_sb_putf(&b, ",%lld", (long long)conf[(size_t)i * n_classes + j]);
            confd[(size_t)i * n_classes + j] = (double)conf[(size_t)i * n_classes + j];
        }
        sx_sb_puts(&b, "\n");
    }
    snprintf(name, sizeof name, "%s.csv", stem);
    char *p = sx_pl_out_path(c, name);
    rc = b.oom || !p ? sx_pl_oom(st) : sx_pl_write_file(p, b.s, b.len, st);
    sx_free(p);
    if (rc != SX_OK) goto out;
    sx_pl_file_out(c, name);
    snprintf(name, sizeof name, "%s.png", stem);
    /* the daemon's map draws confusion.png on request (sx_pipeline_render_figure) */
    int later = sx_pl_on_request(c) && !strcmp(stem, "confusion");
    p = later ? NULL : sx_pl_out_path(c, name);
    if (!later)
        rc = sx_plot_confusion(p, confd, n_classes, n_classes, (const char *const *)classes,
                               (const char *const *)classes, "true label", "transferred label",
                               title, 1, st);
    sx_free(p);
    if (rc == SX_OK) sx_pl_file_out(c, name);
out:
    sx_free(conf);
    sx_free(confd);
    sx_sb_free(&b);
    return rc;
}

/* Metric NAME of the first label column, <label>_NAME of a further one (prefix "") */
static void label_metric(sx_pl_ctx *c, const char *prefix, const char *name, double v)
{
    char full[300];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    sx_pl_metric(c, full, v);
}

/* Accuracy, macro F1, NMI, ARI of the vote (SCALEX's label, before "Unknown": the figures
 * stay comparable with SCALEX's) against the query's own labels (cells without a true label
 * are not scored), the confusion matrix, and the share of Unknown with the accuracy of the
 * cells that kept a label. Every label column the query holds is scored: the first under
 * the plain names (accuracy, confusion.csv), as SCALEX's one label; a further one under
 * <label>_accuracy ... and confusion_<label>.csv (characters outside [A-Za-z0-9._-] as _). */
static int score(sx_pl_ctx *c, const sx_transfer_result *tr, const sx_column *truth, int64_t nq,
                 const char *label, sx_status *st)
{
    char first[256], pre[270], stem[280];
    int is_first = strcmp(sx_pl_first_label(c->set.label, first, sizeof first), label) == 0;
    snprintf(pre, sizeof pre, "%s_", label);
    snprintf(stem, sizeof stem, "confusion_%s", label);
    for (char *s = stem; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-') *s = '_';
    if (is_first) pre[0] = 0, snprintf(stem, sizeof stem, "confusion");
    /* common codes over truth + prediction labels (sorted, as sklearn's unique) */
    const char **tp = sx_calloc((size_t)(2 * nq) + 1, sizeof *tp);
    int32_t *codes = sx_calloc((size_t)(2 * nq) + 1, sizeof *codes);
    char **classes = NULL;
    int n_classes = 0, rc = tp && codes ? SX_OK : sx_pl_oom(st);
    int64_t m = 0, called = 0, called_ok = 0;
    for (int64_t i = 0; rc == SX_OK && i < nq; i++) {
        char buf[64];
        const char *t = sx_column_text(truth, i, buf, sizeof buf);
        if (t == buf || !*t) continue;
        tp[m] = t;
        tp[nq + m] = tr->classes[tr->vote_pred[i]];
        called += tr->pred[i] >= 0;
        called_ok += tr->pred[i] >= 0 && !strcmp(t, tp[nq + m]);
        m++;
    }
    if (rc != SX_OK || m == 0) goto out;
    memmove(tp + m, tp + nq, (size_t)m * sizeof *tp);
    if ((rc = sx_labels_encode(tp, 2 * m, codes, &classes, &n_classes, st)) != SX_OK) goto out;
    const int32_t *tc = codes, *pc = codes + m;
    double acc = sx_metrics_accuracy(tc, pc, m);
    double f1 = sx_metrics_macro_f1(tc, pc, m, n_classes);
    double nmi = sx_metrics_nmi(tc, pc, m), ari = sx_metrics_ari(tc, pc, m);
    label_metric(c, pre, "accuracy", acc);
    label_metric(c, pre, "macro_f1", f1);
    label_metric(c, pre, "nmi", nmi);
    label_metric(c, pre, "ari", ari);
    label_metric(c, pre, "n_scored", (double)m);
    label_metric(c, pre, "unknown_fraction", 1.0 - (double)called / (double)m);
    if (called) label_metric(c, pre, "accuracy_called", (double)called_ok / (double)called);
    sx_pl_log_msg(&c->log, "Transfer vs query '%s' (%lld cells): accuracy %.4f, macro F1 "
                  "%.4f, NMI %.4f, ARI %.4f", label, (long long)m, acc, f1, nmi, ari);
    char title[160];
    snprintf(title, sizeof title, "%s: accuracy %.3f, macro F1 %.3f", label, acc, f1);
    rc = write_confusion(c, tc, pc, m, classes, n_classes, title, stem, st);
out:
    sx_free(tp);
    sx_free(codes);
    if (classes) sx_labels_free(classes, n_classes);
    return rc;
}

int32_t *sx_pl_batch_codes(const sx_column *col, int64_t n, sx_status *st)
{
    int32_t *own = NULL, *out = col ? sx_mallocarray((size_t)n + 1, sizeof *out) : NULL;
    char **cats = NULL;
    int nc = 0;
    const char *const *cv;
    const int32_t *codes = out ? sx_pl_label_codes(col, n, &own, &cats, &nc, &cv, st) : NULL;
    if (codes) memcpy(out, codes, (size_t)n * sizeof *out);
    sx_free(own);
    if (cats) sx_labels_free(cats, nc);
    if (!codes) {
        sx_free(out);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) out[i] = out[i] < 0 ? 0 : out[i]; /* missing: one batch */
    return out;
}

void sx_pl_transfer_opts(const sx_pl_settings *s, int64_t n_ref, sx_transfer_opts *to)
{
    sx_transfer_opts_init(to);
    to->k = s->k;
    to->n_threads = s->threads;
    to->seed = s->seed;
    to->isotonic = s->isotonic;
    to->unknown_below = s->unknown ? s->min_confidence : 0;
    to->mapping_below = s->unknown ? s->min_mapping_score : 0;
    if (to->k > n_ref) to->k = (int)n_ref;
}

int sx_pl_transfer_k(const sx_pl_ctx *c, int64_t n_ref)
{
    sx_transfer_opts to;
    sx_pl_transfer_opts(&c->set, n_ref, &to);
    return sx_transfer_k_needed(&to, n_ref);
}

void sx_pl_ref_label_texts(const sx_column *col, int64_t n, const char **out)
{
    for (int64_t i = 0; i < n; i++) {
        char buf[64];
        const char *t = sx_column_text(col, i, buf, sizeof buf);
        out[i] = t == buf ? "" : t; /* label columns are categorical/string */
    }
}

int sx_pl_transfer_labels(sx_pl_ctx *c, const sx_pl_transfer_in *in, const char *label,
                          sx_transfer_result **out, sx_status *st)
{
    int rc;
    *out = NULL;
    if ((rc = sx_pl_stage(c, "transfer")) != SX_OK) return sx_status_set(st, rc, "canceled");
    const char **rl = sx_calloc((size_t)in->n_ref + 1, sizeof *rl);
    if (!rl) return sx_pl_oom(st);
    sx_pl_ref_label_texts(in->ref_col, in->n_ref, rl);
    sx_transfer_opts to;
    sx_pl_transfer_opts(&c->set, in->n_ref, &to);
    int32_t *bc = in->ref_batch ? sx_pl_batch_codes(in->ref_batch, in->n_ref, st) : NULL;
    if (in->ref_batch && !bc) {
        sx_free(rl);
        return st->code;
    }
    to.ref_batch = bc;
    to.calib = sx_reference_calib_find(in->ref, label, &to); /* fitted at load, when it was */
    sx_transfer_result *tr =
        in->nb ? sx_transfer_from_knn(in->ref_lat, in->n_ref, rl, in->dim, in->nb, &to, st)
               : sx_transfer_knn(in->ref_lat, in->n_ref, rl, in->q_lat, in->nq, in->dim, &to,
                                 c->prog, st);
    sx_free(rl);
    sx_free(bc);
    if (!tr) return st->code;
    sx_pl_log_msg(&c->log, "Label transfer of '%s': %lld query cells, k %d, %d classes; "
                  "confidence %s; mapping score from %lld held-out reference cells (%s%s); "
                  "query distance shift %.3f SD; %lld Unknown", label, (long long)in->nq, to.k,
                  tr->n_classes,
                  to.isotonic ? "refitted on the held-out cells (isotonic)"
                              : "the distance-weighted probability",
                  (long long)tr->n_calib,
                  tr->calib_by_batch ? "leave-one-batch-out" : "leave-one-out",
                  tr->calib_given ? ", fitted when the reference was loaded" : "",
                  tr->mapping_shift, (long long)tr->n_unknown);
    rc = in->truth ? score(c, tr, in->truth, in->nq, label, st) : SX_OK;
    if (rc != SX_OK) sx_transfer_free(tr);
    else *out = tr;
    return rc;
}

/* ---- the transfer workflow ---- */

typedef struct tref {
    sx_reference *own_ref; /* loaded here (else the daemon's, borrowed) */
    sx_dataset *rd;        /* an h5ad reference with obsm rep */
    const double *lat;
    int64_t n;
    int dim;
    const sx_frame *obs;   /* the reference's cells */
    const sx_reference *ref; /* own_ref or the daemon's; NULL for an h5ad with obsm rep */
} tref;

static void tref_clear(tref *r)
{
    sx_reference_free(r->own_ref);
    sx_dataset_free(r->rd);
}

/* The reference: the daemon's loaded one, a reference.h5 or integrate folder, or any
 * dataset with obsm `rep` and the label column. */
static int transfer_reference(sx_pl_ctx *c, tref *r, sx_status *st)
{
    const sx_reference *R = c->job->reference_obj;
    const char *rp = c->job->reference, *rep = c->set.rep;
    if (!R && !rp) return sx_status_set(st, SX_EINVAL, "label transfer needs a reference (--reference)");
    const char *dot = rp ? strrchr(rp, '.') : NULL;
    if (!R && (sx_pl_is_dir(rp) || (dot && strcmp(dot, ".h5") == 0))) {
        if (!(R = r->own_ref = sx_reference_load(rp, st))) return st->code;
    } else if (!R && !(r->rd = sx_io_read(rp, &(sx_read_opts){.limits = c->job->limits},
                                          c->prog, st))) {
        return st->code;
    }
    if (R) {
        r->ref = R;
        r->lat = R->latent;
        r->n = R->n_cells;
        r->dim = R->dim;
        r->obs = R->obs;
    } else {
        const sx_dense *e = sx_dataset_obsm(r->rd, rep);
        if (!e)
            return sx_status_set(st, SX_ENOTFOUND, "reference '%s' has no obsm '%s': integrate "
                                 "or project it first, or name another representation with "
                                 "--rep", rp, rep);
        r->lat = e->v;
        r->n = e->n_rows;
        r->dim = (int)e->n_cols;
        r->obs = r->rd->obs;
    }
    return SX_OK;
}

/* The query (its sha256 recorded) and its obsm `rep`, which must match the reference's width. */
static int transfer_query(sx_pl_ctx *c, int dim, sx_dataset **q, const sx_dense **qe,
                          sx_status *st)
{
    const char *in = c->set.inputs[0], *rep = c->set.rep;
    if (!(*q = sx_io_read(in, &(sx_read_opts){.limits = c->job->limits}, c->prog, st)))
        return st->code;
    int rc;
    if ((rc = sx_pl_hash_input(c, 0, st))) return rc;
    if (!(*qe = sx_dataset_obsm(*q, rep)))
        return sx_status_set(st, SX_ENOTFOUND, "query '%s' has no obsm '%s': project it onto the "
                             "reference first (scalex project), then transfer", in, rep);
    if ((*qe)->n_cols != dim)
        return sx_status_set(st, SX_EINVAL, "obsm '%s' has %lld columns in the query but %d in "
                             "the reference: both must come from the same model", rep,
                             (long long)(*qe)->n_cols, dim);
    return SX_OK;
}

/* umap.png/.pdf of a query that already has a 2-D X_umap, coloured by the transferred and
 * the true label */
static int transfer_plot(sx_pl_ctx *c, const sx_dataset *q, sx_status *st)
{
    const sx_dense *um = sx_dataset_obsm(q, "X_umap");
    int64_t nq = sx_dataset_n_obs(q);
    if (!um || um->n_cols != 2 || c->set.ignore_umap) return SX_OK;
    float *u = sx_mallocarray((size_t)nq * 2, sizeof *u);
    if (!u) return sx_pl_oom(st);
    for (int64_t i = 0; i < 2 * nq; i++) u[i] = (float)um->v[i];
    char tl[300], first[256];
    sx_pl_first_label(c->set.label, first, sizeof first);
    sx_jobdir_transfer_col(first, 0, tl, sizeof tl);
    const char *cols[] = {tl, first};
    int rc = sx_pl_plot_umap(c, q, u, cols, 2, NULL, NULL, st);
    sx_free(u);
    return rc;
}

int sx_pl_transfer(sx_pl_ctx *c, sx_status *st)
{
    int rc;
    tref r = {0};
    sx_dataset *q = NULL;
    sx_knn *nb = NULL;
    const sx_dense *qe = NULL;
    if ((rc = sx_pl_stage(c, "read")) != SX_OK) goto canceled;
    if (c->set.n_inputs != 1) {
        rc = sx_status_set(st, SX_EINVAL, "label transfer takes one query file (got %d)",
                           c->set.n_inputs);
        goto out;
    }
    if ((rc = transfer_reference(c, &r, st)) || (rc = transfer_query(c, r.dim, &q, &qe, st)))
        goto out;
    int64_t nq = sx_dataset_n_obs(q);
    if ((rc = sx_pl_stage(c, "knn")) != SX_OK) goto canceled;
    /* one exact search for every label column (each cuts its own: sx_knn_head) */
    sx_knn_opts ko;
    sx_knn_opts_init(&ko);
    ko.n_threads = c->set.threads;
    ko.method = SX_KNN_EXACT;
    if (!(nb = sx_knn_search_with(NULL, r.lat, r.n, qe->v, nq, r.dim, sx_pl_transfer_k(c, r.n),
                                  &ko, c->prog, st))) {
        rc = st->code;
        goto out;
    }
    sx_pl_transfer_in in = {r.lat, r.n, NULL, qe->v, nq, r.dim,
                            (const char *const *)q->obs->index, NULL,
                            sx_frame_col(r.obs, "batch"), nb, r.ref};
    if ((rc = sx_pl_transfer_all(c, &in, r.obs, q->obs, c->set.label, q, 0, st))) goto out;
    if ((rc = sx_pl_stage(c, "write")) != SX_OK) goto canceled;
    sx_pl_uns_provenance(c, q->uns, 0, 0, 0);
    if ((rc = sx_pl_write_adata(c, q, st)) || (rc = transfer_plot(c, q, st))) goto out;
    rc = sx_pl_finish(c, q, nq, st);
    goto out;
canceled:
    rc = sx_status_set(st, SX_ECANCELED, "the job was canceled");
out:
    tref_clear(&r);
    sx_dataset_free(q);
    sx_knn_free(nb);
    return rc;
}
