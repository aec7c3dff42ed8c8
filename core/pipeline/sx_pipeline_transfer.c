/* sx_pipeline_transfer — label transfer: the step project and transfer share (kNN vote of
 * the reference's labels, the labels table, scores and confusion matrix against the query's
 * own labels) and the transfer workflow (labels onto a query already in the reference's
 * latent space). ALGORITHM.md §9. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_io.h"
#include "sx_jobdir.h"
#include "sx_metrics.h"
#include "sx_pipeline_ctx.h"
#include "sx_plot.h"
#include "sx_sha256.h"

/* confusion.csv and confusion.png of scored cells (codes over the common classes) */
static int write_confusion(sx_pl_ctx *c, const int32_t *tc, const int32_t *pc, int64_t m,
                           char **classes, int n_classes, const char *title, sx_status *st)
{
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
    char *p = sx_pl_out_path(c, "confusion.csv");
    rc = b.oom || !p ? sx_pl_oom(st) : sx_pl_write_file(p, b.s, b.len, st);
    sx_free(p);
    if (rc != SX_OK) goto out;
    sx_pl_file_out(c, "confusion.csv");
    p = sx_pl_out_path(c, "confusion.png");
    rc = sx_plot_confusion(p, confd, n_classes, n_classes, (const char *const *)classes,
                           (const char *const *)classes, "true label", "transferred label", title,
                           1, st);
    sx_free(p);
    if (rc == SX_OK) sx_pl_file_out(c, "confusion.png");
out:
    sx_free(conf);
    sx_free(confd);
    sx_sb_free(&b);
    return rc;
}

/* Accuracy, macro F1, NMI, ARI of the transferred labels against the query's own (cells
 * without a true label are not scored), and the confusion matrix. */
static int score(sx_pl_ctx *c, const sx_transfer_result *tr, const sx_column *truth, int64_t nq,
                 const char *label, sx_status *st)
{
    /* common codes over truth + prediction labels (sorted, as sklearn's unique) */
    const char **tp = sx_calloc((size_t)(2 * nq) + 1, sizeof *tp);
    int32_t *codes = sx_calloc((size_t)(2 * nq) + 1, sizeof *codes);
    char **classes = NULL;
    int n_classes = 0, rc = tp && codes ? SX_OK : sx_pl_oom(st);
    int64_t m = 0;
    for (int64_t i = 0; rc == SX_OK && i < nq; i++) {
        char buf[64];
        const char *t = sx_column_text(truth, i, buf, sizeof buf);
        if (t == buf || !*t) continue;
        tp[m] = t;
        tp[nq + m] = sx_transfer_label(tr, i);
        m++;
    }
    if (rc != SX_OK || m == 0) goto out;
    memmove(tp + m, tp + nq, (size_t)m * sizeof *tp);
    if ((rc = sx_labels_encode(tp, 2 * m, codes, &classes, &n_classes, st)) != SX_OK) goto out;
    const int32_t *tc = codes, *pc = codes + m;
    double acc = sx_metrics_accuracy(tc, pc, m);
    double f1 = sx_metrics_macro_f1(tc, pc, m, n_classes);
    double nmi = sx_metrics_nmi(tc, pc, m), ari = sx_metrics_ari(tc, pc, m);
    sx_pl_metric(c, "accuracy", acc);
    sx_pl_metric(c, "macro_f1", f1);
    sx_pl_metric(c, "nmi", nmi);
    sx_pl_metric(c, "ari", ari);
    sx_pl_metric(c, "n_scored", (double)m);
    sx_pl_log_msg(&c->log, "Transfer vs query '%s' (%lld cells): accuracy %.4f, macro F1 "
                  "%.4f, NMI %.4f, ARI %.4f", label, (long long)m, acc, f1, nmi, ari);
    char title[160];
    snprintf(title, sizeof title, "%s: accuracy %.3f, macro F1 %.3f", label, acc, f1);
    rc = write_confusion(c, tc, pc, m, classes, n_classes, title, st);
out:
    sx_free(tp);
    sx_free(codes);
    if (classes) sx_labels_free(classes, n_classes);
    return rc;
}

int sx_pl_transfer_labels(sx_pl_ctx *c, const sx_pl_transfer_in *in, const char *label,
                          sx_transfer_result **out, sx_status *st)
{
    int rc;
    *out = NULL;
    if ((rc = sx_pl_stage(c, "transfer")) != SX_OK) return sx_status_set(st, rc, "canceled");
    const char **rl = sx_calloc((size_t)in->n_ref + 1, sizeof *rl);
    if (!rl) return sx_pl_oom(st);
    for (int64_t i = 0; i < in->n_ref; i++) {
        char buf[64];
        const char *t = sx_column_text(in->ref_col, i, buf, sizeof buf);
        rl[i] = t == buf ? "" : t; /* label columns are categorical/string */
    }
    sx_transfer_opts to;
    sx_transfer_opts_init(&to);
    to.k = c->set.k;
    to.n_threads = c->set.threads;
    if (to.k > in->n_ref) to.k = (int)in->n_ref;
    sx_transfer_result *tr = sx_transfer_knn(in->ref_lat, in->n_ref, rl, in->q_lat, in->nq,
                                             in->dim, &to, c->prog, st);
    sx_free(rl);
    if (!tr) return st->code;
    sx_pl_log_msg(&c->log, "Label transfer of '%s': %lld query cells, k %d, %d classes", label,
                  (long long)in->nq, to.k, tr->n_classes);
    if ((rc = sx_pl_write_labels(c->outdir, in->q_names, tr, st)) == SX_OK) {
        sx_pl_file_out(c, "labels.csv");
        if (in->truth) rc = score(c, tr, in->truth, in->nq, label, st);
    }
    if (rc != SX_OK) sx_transfer_free(tr);
    else *out = tr;
    return rc;
}

/* Add <label>_transfer (categorical over the reference classes) and _confidence to obs for
 * rows [row0, row0 + nq); other rows missing. */
int sx_pl_add_transfer_cols(sx_frame *obs, int64_t row0, const sx_transfer_result *tr,
                            const char *label, sx_status *st)
{
    int64_t n = obs->n_rows;
    int32_t *codes = sx_mallocarray((size_t)n, sizeof *codes);
    double *conf = sx_mallocarray((size_t)n, sizeof *conf);
    const char **cats = sx_calloc((size_t)tr->n_classes + 1, sizeof *cats);
    int rc = SX_OK;
    char name[256];
    if (!codes || !conf || !cats) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory");
        goto out;
    }
    int n_cats = tr->n_classes, unknown = -1;
    for (int k = 0; k < n_cats; k++) cats[k] = tr->classes[k];
    if (tr->n_unknown > 0) {
        unknown = n_cats;
        cats[n_cats++] = SX_TRANSFER_UNKNOWN;
    }
    for (int64_t i = 0; i < n; i++) {
        codes[i] = -1;
        conf[i] = NAN;
    }
    for (int64_t i = 0; i < tr->n_query; i++) {
        codes[row0 + i] = tr->pred[i] >= 0 ? tr->pred[i] : unknown;
        conf[row0 + i] = tr->confidence[i];
    }
    sx_jobdir_transfer_col(label, 0, name, sizeof name);
    if ((rc = sx_frame_add_categorical(obs, name, codes, cats, n_cats, 0, st)) != SX_OK) goto out;
    sx_jobdir_transfer_col(label, 1, name, sizeof name);
    rc = sx_frame_add_float(obs, name, conf, st);
out:
    sx_free(codes);
    sx_free(conf);
    sx_free(cats);
    return rc;
}

/* ---- the transfer workflow ---- */

typedef struct tref {
    sx_reference *own_ref; /* loaded here (else the daemon's, borrowed) */
    sx_dataset *rd;        /* an h5ad reference with obsm rep */
    const double *lat;
    int64_t n;
    int dim;
    const sx_column *lc;   /* the label column */
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
        r->lat = R->latent;
        r->n = R->n_cells;
        r->dim = R->dim;
        r->lc = sx_frame_col(R->obs, c->set.label);
    } else {
        const sx_dense *e = sx_dataset_obsm(r->rd, rep);
        if (!e)
            return sx_status_set(st, SX_ENOTFOUND, "reference '%s' has no obsm '%s': integrate "
                                 "or project it first, or name another representation with "
                                 "--rep", rp, rep);
        r->lat = e->v;
        r->n = e->n_rows;
        r->dim = (int)e->n_cols;
        r->lc = sx_frame_col(r->rd->obs, c->set.label);
    }
    if (!r->lc)
        return sx_status_set(st, SX_ENOTFOUND, "the reference has no obs column '%s' (give the "
                             "label column with --label)", c->set.label);
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
    if (!sx_pl_is_dir(in) && (rc = sx_sha256_file(in, c->sha[0], st))) return rc;
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
    char tl[300];
    sx_jobdir_transfer_col(c->set.label, 0, tl, sizeof tl);
    const char *cols[] = {tl, c->set.label};
    int rc = sx_pl_plot_umap(c, q, u, cols, 2, NULL, NULL, st);
    sx_free(u);
    return rc;
}

int sx_pl_transfer(sx_pl_ctx *c, sx_status *st)
{
    int rc;
    tref r = {0};
    sx_dataset *q = NULL;
    const sx_dense *qe = NULL;
    sx_transfer_result *tr = NULL;
    const char *label = c->set.label;
    if ((rc = sx_pl_stage(c, "read")) != SX_OK) goto canceled;
    if (c->set.n_inputs != 1) {
        rc = sx_status_set(st, SX_EINVAL, "label transfer takes one query file (got %d)",
                           c->set.n_inputs);
        goto out;
    }
    if ((rc = transfer_reference(c, &r, st)) || (rc = transfer_query(c, r.dim, &q, &qe, st)))
        goto out;
    int64_t nq = sx_dataset_n_obs(q);
    sx_pl_transfer_in in = {r.lat, r.n, r.lc, qe->v, nq, r.dim,
                            (const char *const *)q->obs->index, sx_frame_col(q->obs, label)};
    if ((rc = sx_pl_transfer_labels(c, &in, label, &tr, st)) ||
        (rc = sx_pl_add_transfer_cols(q->obs, 0, tr, label, st)))
        goto out;
    if ((rc = sx_pl_stage(c, "write")) != SX_OK) goto canceled;
    sx_pl_uns_provenance(c, q->uns, 0, 0, 0);
    if ((rc = sx_pl_write_adata(c, q, st)) || (rc = transfer_plot(c, q, st))) goto out;
    rc = sx_pl_finish(c, q, nq, st);
    goto out;
canceled:
    rc = sx_status_set(st, SX_ECANCELED, "the job was canceled");
out:
    sx_transfer_free(tr);
    tref_clear(&r);
    sx_dataset_free(q);
    return rc;
}
