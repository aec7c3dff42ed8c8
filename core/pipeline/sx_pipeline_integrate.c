/* sx_pipeline_integrate — the integrate workflow (ALGORITHM.md §11): read and preprocess the
 * inputs, train the VAE, encode every cell, embed (UMAP, Leiden), and write adata.h5ad, the
 * checkpoint, reference.h5, the figures and the tables. --assess scores the mixing. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_metrics.h"
#include "sx_nn.h"
#include "sx_pipeline_ctx.h"

/* What the stages hand on; freed by integ_clear. */
typedef struct integ {
    sx_dataset *d;
    sx_prep_result pr;
    sx_nn_model *m;
    int dim;
    double *latent;
    int64_t *perm;
    sx_nn_infer_opts io;
    float *umap;
    int32_t *leiden;
    double a, b;
} integ;

static void integ_clear(integ *s)
{
    sx_free(s->latent);
    sx_free(s->perm);
    sx_free(s->umap);
    sx_free(s->leiden);
    sx_nn_model_free(s->m);
    sx_prep_result_free(&s->pr);
    sx_dataset_free(s->d);
}

static int canceled(sx_status *st) { return sx_status_set(st, SX_ECANCELED, "the job was canceled"); }

static int read_prep(sx_pl_ctx *c, integ *s, sx_status *st)
{
    if (sx_pl_stage(c, "read") != SX_OK) return canceled(st);
    if (!(s->d = sx_pl_read_inputs(c, c->set.join_outer, st))) return st->code;
    if (sx_pl_stage(c, "preprocess") != SX_OK) return canceled(st);
    int rc = sx_prep_run(s->d, &c->set.prep, &s->pr, c->prog, st);
    if (rc == SX_OK) sx_pl_log_prep(c, &s->pr, s->d);
    return rc;
}

/* A new model over the processed genes and domains, with the scaling and prep records. */
static int new_model(sx_pl_ctx *c, integ *s, sx_status *st)
{
    int64_t G = sx_dataset_n_vars(s->d);
    sx_nn_config cfg;
    sx_nn_config_default(&cfg, G, s->pr.n_domains);
    s->dim = (int)cfg.n_latent;
    if (!(s->m = sx_nn_model_new(&cfg, c->set.seed, st))) return st->code;
    int rc;
    if ((rc = sx_nn_model_set_genes(s->m, (const char *const *)s->d->var->index, G, st)) ||
        (rc = sx_nn_model_set_domains(s->m, (const char *const *)s->pr.domains, s->pr.n_domains, st)))
        return rc;
    if (s->pr.scale_rows == s->pr.n_domains && s->pr.scale &&
        (rc = sx_nn_model_set_scale(s->m, s->pr.scale, G, st)) != SX_OK)
        return rc;
    if (s->pr.settings_json && (rc = sx_nn_model_set_prep_json(s->m, s->pr.settings_json, st)))
        return rc;
    return SX_OK;
}

/* The epochs and the training summary: log and metrics. */
static void log_training(sx_pl_ctx *c, const sx_nn_model *m, double t_train)
{
    sx_nn_train_log tl;
    sx_nn_model_train_log(m, &tl);
    for (int64_t e = 0; e < tl.n_epochs; e++)
        sx_pl_log_msg(&c->log, "epoch %lld: recon_loss %.4f kl_loss %.4f", (long long)e + 1,
                      tl.recon ? tl.recon[e] : NAN, tl.kl ? tl.kl[e] : NAN);
    sx_pl_log_msg(&c->log, "Trained %lld epochs, %lld steps in %.1f s (%.1f it/s); best epoch "
                  "%lld, loss %.4f%s", (long long)tl.n_epochs, (long long)tl.steps, t_train,
                  t_train > 0 ? tl.steps / t_train : 0.0, (long long)tl.best_epoch + 1,
                  tl.best_loss, tl.early_stopped ? " (early stop)" : "");
    sx_pl_metric(c, "epochs", (double)tl.n_epochs);
    sx_pl_metric(c, "steps", (double)tl.steps);
    sx_pl_metric(c, "final_loss", tl.n_epochs ? tl.recon[tl.n_epochs - 1] + tl.kl[tl.n_epochs - 1] : NAN);
    sx_pl_metric(c, "train_it_per_s", t_train > 0 ? tl.steps / t_train : NAN);
}

static int train(sx_pl_ctx *c, integ *s, sx_status *st)
{
    if (sx_pl_stage(c, "train") != SX_OK) return canceled(st);
    int rc = new_model(c, s, st);
    if (rc) return rc;
    int64_t N = sx_dataset_n_obs(s->d), G = sx_dataset_n_vars(s->d);
    sx_nn_train_opts to;
    sx_nn_train_opts_default(&to);
    to.batch_size = c->set.batch_size;
    to.max_iteration = c->set.max_iteration;
    to.lr = c->set.lr;
    to.patience = c->set.patience;
    to.early_stopping = c->set.early_stopping_scalex ? SX_NN_STOP_SCALEX : SX_NN_STOP_STEPS;
    to.patience_steps = c->set.patience_steps;
    to.seed = c->set.seed;
    to.threads = c->set.threads;
    if (N < to.batch_size)
        return sx_status_set(st, SX_EDATA, "only %lld cells are left after preprocessing, fewer "
                             "than one training minibatch (batch_size %lld): lower "
                             "--min_features or --batch_size, or give more cells", (long long)N,
                             (long long)to.batch_size);
    sx_pl_log_msg(&c->log, "Training: %lld cells x %lld genes, %d domains, batch_size %lld, lr "
                  "%g, max_iteration %lld, seed %llu, threads %d", (long long)N, (long long)G,
                  s->pr.n_domains, (long long)to.batch_size, to.lr, (long long)to.max_iteration,
                  (unsigned long long)c->set.seed, c->set.threads);
    double t_train = sx_pl_now();
    if ((rc = sx_nn_train(s->m, s->d->X, s->pr.domain_of_cell, &to, c->prog, st)) != SX_OK)
        return rc;
    log_training(c, s->m, sx_pl_now() - t_train);
    return SX_OK;
}

/* checkpoint/model.h5, under a temporary name then renamed */
static int save_checkpoint(sx_pl_ctx *c, const sx_nn_model *m, sx_status *st)
{
    char *dir = sx_pl_out_path(c, "checkpoint");
    char *mp = dir ? sx_pl_join(dir, "model.h5") : NULL;
    char *tmp = mp ? sx_pl_join(dir, "model.h5.tmp") : NULL;
    int rc = !tmp ? sx_pl_oom(st) : sx_pl_mkdirs(dir, st);
    if (rc == SX_OK) rc = sx_nn_model_save(m, tmp, st);
    if (rc == SX_OK && rename(tmp, mp) != 0)
        rc = sx_status_set(st, SX_EIO, "cannot rename '%s' into place", tmp);
    if (rc != SX_OK && tmp) remove(tmp);
    sx_free(dir);
    sx_free(mp);
    sx_free(tmp);
    if (rc == SX_OK) sx_pl_file_out(c, "checkpoint/model.h5");
    return rc;
}

/* layer "impute": every cell decoded as if from batch `impute` */
static int impute(sx_pl_ctx *c, integ *s, sx_status *st)
{
    int64_t N = sx_dataset_n_obs(s->d), G = sx_dataset_n_vars(s->d), t = 0;
    for (int k = 0; k < s->pr.n_domains; k++)
        if (strcmp(s->pr.domains[k], c->set.impute) == 0) t = k;
    double *x = sx_mallocarray((size_t)N * (size_t)G, sizeof *x);
    float *xf = sx_mallocarray((size_t)N * (size_t)G, sizeof *xf);
    if (!x || !xf) {
        sx_free(x);
        sx_free(xf);
        return sx_status_set(st, SX_ENOMEM, "out of memory for imputation (%lld x %lld dense)",
                             (long long)N, (long long)G);
    }
    int rc = sx_nn_impute(s->m, s->d->X, s->pr.domain_of_cell, t, &s->io, x, c->prog, st);
    for (int64_t i = 0; rc == SX_OK && i < N * G; i++) xf[i] = (float)x[i];
    sx_free(x);
    sx_csr *im = rc == SX_OK ? sx_csr_from_dense(xf, N, G, st) : NULL;
    sx_free(xf);
    if (!im) return st->code;
    if ((rc = sx_dataset_set_layer(s->d, "impute", im, st)) == SX_OK)
        sx_pl_log_msg(&c->log, "Imputed every cell as batch '%s'", s->pr.domains[t]);
    return rc;
}

static int encode(sx_pl_ctx *c, integ *s, sx_status *st)
{
    if (sx_pl_stage(c, "encode") != SX_OK) return canceled(st);
    int64_t N = sx_dataset_n_obs(s->d);
    s->latent = sx_mallocarray((size_t)N * s->dim, sizeof *s->latent);
    s->perm = sx_mallocarray((size_t)N, sizeof *s->perm);
    if (!s->latent || !s->perm)
        return sx_status_set(st, SX_ENOMEM, "out of memory for the latent (%lld cells)", (long long)N);
    sx_pl_infer_opts(c, &s->io, s->perm, N);
    int rc = sx_nn_encode(s->m, s->d->X, s->pr.domain_of_cell, &s->io, s->latent, c->prog, st);
    if (rc == SX_OK) rc = sx_dataset_set_obsm(s->d, "latent", s->latent, N, s->dim, 0, st);
    if (rc == SX_OK && c->set.impute) rc = impute(c, s, st);
    return rc;
}

static int embed(sx_pl_ctx *c, integ *s, sx_status *st)
{
    int64_t N = sx_dataset_n_obs(s->d);
    int n_clusters = 0, rc;
    if (!c->set.ignore_umap) {
        if (!(s->umap = sx_mallocarray((size_t)N * 2, sizeof *s->umap))) return sx_pl_oom(st);
        if ((rc = sx_pl_embed_graph(c, s->latent, N, s->dim, s->umap, &s->leiden, &n_clusters,
                                    &s->a, &s->b, st)) ||
            (rc = sx_pl_set_umap(s->d, s->umap, N, st)) ||
            (rc = sx_pl_add_leiden(s->d->obs, s->leiden, n_clusters, st)))
            return rc;
    }
    if (c->set.assess) sx_pl_assess(c, s->d, s->latent, s->dim, c->set.ignore_umap ? NULL : s->umap);
    return SX_OK;
}

static int write_outputs(sx_pl_ctx *c, integ *s, sx_status *st)
{
    if (sx_pl_stage(c, "write") != SX_OK) return canceled(st);
    sx_pl_uns_provenance(c, s->d->uns, s->a, s->b, !c->set.ignore_umap);
    int rc = sx_pl_write_adata(c, s->d, st);
    if (rc) return rc;
    char *p = sx_pl_out_path(c, "reference.h5");
    if (!p) return sx_pl_oom(st);
    rc = sx_pl_reference_write(p, s->m, s->d->obs, s->latent, s->dim, s->umap, s->a, s->b, st);
    sx_free(p);
    if (rc) return rc;
    sx_pl_file_out(c, "reference.h5");
    if (!c->set.ignore_umap) {
        const char *cols[] = {"batch", sx_pl_label_like[0], sx_pl_label_like[1], c->set.label,
                              "leiden"};
        if ((rc = sx_pl_plot_umap(c, s->d, s->umap, cols, 5, NULL, NULL, st)) != SX_OK) return rc;
    }
    return sx_pl_finish(c, s->d, -1, st);
}

int sx_pl_integrate(sx_pl_ctx *c, sx_status *st)
{
    integ s;
    memset(&s, 0, sizeof s);
    int rc = read_prep(c, &s, st);
    if (rc == SX_OK) rc = train(c, &s, st);
    if (rc == SX_OK) rc = save_checkpoint(c, s.m, st);
    if (rc == SX_OK) rc = encode(c, &s, st);
    if (rc == SX_OK) rc = embed(c, &s, st);
    if (rc == SX_OK) rc = write_outputs(c, &s, st);
    integ_clear(&s);
    return rc;
}

void sx_pl_assess(sx_pl_ctx *c, sx_dataset *d, const double *latent, int dim, const float *umap)
{
    int64_t N = sx_dataset_n_obs(d);
    sx_status st;
    sx_status_clear(&st);
    sx_column *bc = sx_frame_col(d->obs, "batch");
    const char *lab = c->set.label_given;
    sx_column *lc = lab ? sx_frame_col(d->obs, lab) : NULL;
    for (int k = 0; !lab && !lc && sx_pl_label_like[k]; k++) lc = sx_frame_col(d->obs, sx_pl_label_like[k]);
    int32_t *own_codes = NULL;
    char **own_cats = NULL;
    int n_lab = 0;
    const char *const *lab_cats = NULL;
    const int32_t *lab_codes =
        lc ? sx_pl_label_codes(lc, N, &own_codes, &own_cats, &n_lab, &lab_cats, &st) : NULL;
    sx_status_clear(&st);
    if (lab && !lab_codes)
        sx_pl_log_msg(&c->log, "assess: no label obs column '%s': silhouette skipped", lab);
    double *xy = umap ? sx_mallocarray((size_t)N * 2, sizeof *xy) : NULL;
    if (xy)
        for (int64_t i = 0; i < 2 * N; i++) xy[i] = umap[i];
    struct {
        const char *suffix;
        const double *x;
        int dim;
    } reps[2] = {{"latent", latent, dim}, {"umap", xy, 2}};
    for (int r = 0; r < 2; r++) {
        if (!reps[r].x) continue;
        char name[64];
        double s = NAN, sn = NAN;
        if (bc && bc->kind == SX_COL_CATEGORICAL && bc->n_categories >= 2 &&
            sx_metrics_bems(reps[r].x, N, reps[r].dim, bc->codes, bc->n_categories, 100, 100, 100,
                            NULL, 0, c->set.threads, &s, &sn, c->prog, &st) == SX_OK) {
            /* the UMAP figure keeps its first name (result.json readers rely on it) */
            snprintf(name, sizeof name, r ? "batch_entropy_mixing_score" : "mixing_latent");
            sx_pl_metric(c, name, s);
            sx_pl_log_msg(&c->log, "batch_entropy_mixing_score on the %s: %.4f", reps[r].suffix, s);
        } else if (st.code) {
            sx_pl_log_msg(&c->log, "assess: mixing on the %s skipped: %s", reps[r].suffix, st.msg);
        }
        sx_status_clear(&st);
        if (lab_codes && N <= 50000 &&
            sx_metrics_silhouette(reps[r].x, N, reps[r].dim, lab_codes, n_lab, &s, &st) ==
                SX_OK) {
            snprintf(name, sizeof name, r ? "silhouette_score" : "silhouette_latent");
            sx_pl_metric(c, name, s);
            sx_pl_log_msg(&c->log, "silhouette (%s) on the %s: %.4f", lc->name, reps[r].suffix, s);
        } else if (st.code) {
            sx_pl_log_msg(&c->log, "assess: silhouette on the %s skipped: %s", reps[r].suffix,
                          st.msg);
        }
        sx_status_clear(&st);
    }
    sx_free(xy);
    sx_free(own_codes);
    if (own_cats) sx_labels_free(own_cats, n_lab);
}
