/* sx_pipeline — integrate / project / label transfer composed from io, prep, nn, embed, plot.
 * Order of operations: ALGORITHM.md §11 (integration), §5.3 (projection), §9 (transfer). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sx_alloc.h"
#include "sx_io.h"
#include "sx_knn.h"
#include "sx_leiden.h"
#include "sx_log.h"
#include "sx_metrics.h"
#include "sx_nn.h"
#include "sx_pipeline.h"
#include "sx_pipeline_internal.h"
#include "sx_plot.h"
#include "sx_prep.h"
#include "sx_sha256.h"
#include "sx_transfer.h"
#include "sx_umap.h"

#define MAX_STAGES 16

typedef struct pl {
    const sx_job_spec *job;
    const sx_pipeline_opts *o;
    const sx_progress *prog;
    sx_pl_log log;
    const char *outdir;
    int threads;
    uint64_t seed;
    double t0, t_stage;
    const char *stage_name[MAX_STAGES];
    double stage_secs[MAX_STAGES];
    int n_stages;
    sx_sb metrics;   /* JSON members for result.json ("name": value, ...) */
    sx_sb files;     /* JSON array members */
    const char *const *inputs;
    int n_inputs;
    char (*sha)[65]; /* per input; "" for folders */
} pl;

/* ---- small helpers ---- */

static int stage(pl *c, const char *name)
{
    double now = sx_pl_now();
    if (c->n_stages > 0) c->stage_secs[c->n_stages - 1] = now - c->t_stage;
    if (name && c->n_stages < MAX_STAGES) {
        c->stage_name[c->n_stages] = name;
        c->stage_secs[c->n_stages] = 0;
        c->n_stages++;
    }
    c->t_stage = now;
    if (name) sx_progress_report(c->prog, name, 0, NULL);
    if (sx_progress_cancelled(c->prog)) return SX_ECANCELED;
    return SX_OK;
}

static void metric(pl *c, const char *name, double v)
{
    if (c->metrics.len) sx_sb_puts(&c->metrics, ", ");
    sx_sb_json_str(&c->metrics, name);
    sx_sb_puts(&c->metrics, ": ");
    sx_sb_json_num(&c->metrics, v);
}

static void file_out(pl *c, const char *name)
{
    if (c->files.len) sx_sb_puts(&c->files, ", ");
    sx_sb_json_str(&c->files, name);
}

static char *out_path(pl *c, const char *name) { return sx_pl_join(c->outdir, name); }

static sx_prep_opts prep_opts(pl *c)
{
    const sx_pipeline_opts *o = c->o;
    sx_prep_opts po;
    sx_prep_opts_init(&po);
    po.profile = strcmp(sx_pipeline_opts_str(o, "profile"), "ATAC") == 0 ? SX_PROFILE_ATAC
                                                                          : SX_PROFILE_RNA;
    po.batch_name = sx_pipeline_opts_str(o, "batch_name");
    /* several files without an explicit batch_name: the per-file label is the domain
     * (SCALEX's documented intent; HEAD's constant "batch" is S1 in ALGORITHM.md) */
    if (c->n_inputs > 1 && !sx_pipeline_opts_is_set(o, "batch_name"))
        po.batch_name = sx_pipeline_opts_str(o, "batch_key");
    po.min_features = sx_pipeline_opts_is_set(o, "min_features")
                          ? sx_pipeline_opts_int(o, "min_features") : -1;
    po.min_cells = sx_pipeline_opts_int(o, "min_cells");
    po.n_top_features = sx_pipeline_opts_is_set(o, "n_top_features")
                            ? sx_pipeline_opts_int(o, "n_top_features") : -1;
    if (sx_pipeline_opts_is_set(o, "n_top_features") && po.n_top_features <= 0)
        po.n_top_features = 0;
    po.target_sum = sx_pipeline_opts_is_set(o, "target_sum") ? sx_pipeline_opts_float(o, "target_sum")
                                                              : 0;
    po.keep_mt = sx_pipeline_opts_bool(o, "keep_mt");
    po.scale = strcmp(sx_pipeline_opts_str(o, "scale"), "global") == 0 ? SX_SCALE_GLOBAL
                                                                       : SX_SCALE_BATCH;
    po.processed = sx_pipeline_opts_bool(o, "processed");
    const char *layer = sx_pipeline_opts_str(o, "use_layer");
    po.use_layer = layer && strcmp(layer, "X") != 0 ? layer : NULL;
    if (sx_pipeline_opts_is_set(o, "fraction")) po.fraction = sx_pipeline_opts_float(o, "fraction");
    if (sx_pipeline_opts_is_set(o, "n_obs")) po.n_obs = sx_pipeline_opts_int(o, "n_obs");
    po.chunk_size = sx_pipeline_opts_int(o, "chunk_size");
    return po;
}

/* Read every input (sha256 of files recorded) and concatenate them, one batch each. */
static sx_dataset *read_inputs(pl *c, int join_outer, sx_status *st)
{
    sx_dataset **parts = NULL;
    sx_dataset *d = NULL;
    int n = c->n_inputs;
    if (n <= 0) {
        sx_status_set(st, SX_EINVAL, "no input data: give --data_list FILE...");
        return NULL;
    }
    const char *const *cats = NULL;
    int n_cats = sx_pipeline_opts_list(c->o, "batch_categories", &cats);
    if (n_cats && n_cats != n) {
        sx_status_set(st, SX_EINVAL, "batch_categories has %d labels for %d inputs: give one "
                      "label per input file", n_cats, n);
        return NULL;
    }
    parts = sx_calloc((size_t)n, sizeof *parts);
    if (!parts) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const char *p = c->inputs[i];
        if (!sx_pl_is_dir(p) && sx_sha256_file(p, c->sha[i], st) != SX_OK) goto fail;
        parts[i] = sx_io_read(p, NULL, c->prog, st);
        if (!parts[i]) goto fail;
        sx_pl_log_msg(&c->log, "Read %s: %lld cells x %lld genes", p,
                      (long long)sx_dataset_n_obs(parts[i]), (long long)sx_dataset_n_vars(parts[i]));
        if (sx_progress_cancelled(c->prog)) {
            sx_status_set(st, SX_ECANCELED, "canceled while reading the inputs");
            goto fail;
        }
    }
    if (n == 1) {
        d = parts[0];
        sx_free(parts);
        return d;
    }
    sx_concat_opts co = {.batch_key = sx_pipeline_opts_str(c->o, "batch_key"),
                         .batch_categories = n_cats ? cats : NULL,
                         .join_outer = join_outer};
    d = sx_io_concat(parts, n, &co, st); /* takes the parts */
    sx_free(parts);
    return d;
fail:
    for (int i = 0; i < n; i++) sx_dataset_free(parts[i]);
    sx_free(parts);
    return NULL;
}

static void log_prep(pl *c, const sx_prep_result *pr, const sx_dataset *d)
{
    sx_pl_log_msg(&c->log, "Raw dataset shape: (%lld, %lld)", (long long)pr->n_cells_in,
                  (long long)pr->n_genes_in);
    if (strcmp(sx_pipeline_opts_str(c->o, "profile"), "ATAC") != 0) /* peaks: no MT filter */
        sx_pl_log_msg(&c->log, "Filtering out MT genes: %lld removed", (long long)pr->n_genes_mt);
    sx_pl_log_msg(&c->log, "Filtering cells: %lld removed (min_features)",
                  (long long)pr->n_cells_filtered);
    sx_pl_log_msg(&c->log, "Filtering features: %lld removed (min_cells)",
                  (long long)pr->n_genes_filtered);
    if (pr->n_cells_subsampled_out)
        sx_pl_log_msg(&c->log, "Subsampling: %lld cells left out",
                      (long long)pr->n_cells_subsampled_out);
    if (isnan(pr->target_sum_used)) /* ATAC as SCALEX v1.0.0: binarized, no normalization */
        sx_pl_log_msg(&c->log, "No total normalization or log1p (ATAC profile or processed "
                      "input)");
    else
        sx_pl_log_msg(&c->log, "Normalizing total per cell (target_sum %g), log1p",
                      pr->target_sum_used);
    if (pr->n_hvg) sx_pl_log_msg(&c->log, "Finding variable features: %lld", (long long)pr->n_hvg);
    int64_t *cnt = sx_calloc((size_t)pr->n_domains + 1, sizeof *cnt);
    if (cnt) {
        for (int64_t i = 0; i < pr->n_cells_out; i++)
            if (pr->domain_of_cell[i] >= 0 && pr->domain_of_cell[i] < pr->n_domains)
                cnt[pr->domain_of_cell[i]]++;
        for (int b = 0; b < pr->n_domains; b++)
            sx_pl_log_msg(&c->log, "batch %s: %lld cells", pr->domains[b], (long long)cnt[b]);
        sx_free(cnt);
    }
    sx_pl_log_msg(&c->log, "%s maxabs scaling",
                  pr->scale_mode == SX_SCALE_BATCH ? "Batch specific" :
                  pr->scale_mode == SX_SCALE_GLOBAL ? "Global" : "No");
    sx_pl_log_msg(&c->log, "Processed dataset shape: (%lld, %lld)",
                  (long long)sx_dataset_n_obs(d), (long long)sx_dataset_n_vars(d));
}

static void infer_opts(pl *c, sx_nn_infer_opts *io, int64_t *perm, int64_t n)
{
    sx_nn_infer_opts_default(io);
    io->eval = sx_pipeline_opts_bool(c->o, "eval");
    io->threads = c->threads;
    sx_pl_permutation(perm, n, c->seed);
    io->perm = perm;
}

/* Neighbours (k = 30, self included), fuzzy graph, UMAP (1 thread: deterministic) and
 * Leiden (resolution 1, until stable, seed 0) on a latent. */
static int embed_graph(pl *c, const double *latent, int64_t n, int dim, float *umap,
                       int32_t **leiden, int *n_clusters, double *a, double *b, sx_status *st)
{
    int rc;
    sx_knn *knn = NULL;
    sx_csr *graph = NULL;
    sx_leiden_result lr = {0};
    int k = 30;
    if (k > n) k = (int)(1 + n / 2);
    sx_knn_opts ko;
    sx_knn_opts_init(&ko);
    ko.n_threads = c->threads;
    if ((rc = stage(c, "umap")) != SX_OK) return sx_status_set(st, rc, "canceled");
    knn = sx_knn_self(latent, n, dim, k, &ko, c->prog, st);
    if (!knn) return st->code;
    graph = sx_umap_fuzzy_graph(knn, NULL, NULL, st);
    sx_knn_free(knn);
    if (!graph) return st->code;
    sx_umap_params up;
    sx_umap_params_init(&up);
    up.n_threads = c->threads; /* deterministic for a given seed and thread count */
    sx_umap_info info = {0};
    if ((rc = sx_umap_fit(graph, latent, dim, &up, umap, &info, c->prog, st)) != SX_OK) goto out;
    *a = info.a;
    *b = info.b;
    sx_pl_log_msg(&c->log, "UMAP: %lld cells, %d neighbours, %d epochs, a %.5f b %.5f",
                  (long long)n, k, info.n_epochs, info.a, info.b);
    if ((rc = stage(c, "leiden")) != SX_OK) {
        sx_status_set(st, rc, "canceled");
        goto out;
    }
    if ((rc = sx_leiden(graph, 1.0, -1, 0, &lr, c->prog, st)) != SX_OK) goto out;
    *leiden = lr.membership;
    lr.membership = NULL;
    *n_clusters = lr.n_clusters;
    sx_pl_log_msg(&c->log, "Leiden: %d clusters, modularity %.4f", lr.n_clusters, lr.modularity);
    metric(c, "leiden_clusters", lr.n_clusters);
    metric(c, "leiden_modularity", lr.modularity);
out:
    sx_leiden_result_clear(&lr);
    sx_csr_free(graph);
    return rc;
}

static int add_leiden(sx_frame *obs, const int32_t *codes, int n_clusters, sx_status *st)
{
    char **cats = sx_calloc((size_t)n_clusters + 1, sizeof *cats);
    int rc = SX_OK;
    if (!cats) return sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int i = 0; i < n_clusters; i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", i);
        cats[i] = sx_strdup(buf);
        if (!cats[i]) rc = sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    if (rc == SX_OK)
        rc = sx_frame_add_categorical(obs, "leiden", codes, (const char *const *)cats, n_clusters,
                                      0, st);
    for (int i = 0; i < n_clusters; i++) sx_free(cats[i]);
    sx_free(cats);
    return rc;
}

/* uns: scanpy's neighbors/umap/leiden parameter records + scalexd provenance. */
static void uns_provenance(pl *c, sx_uns *root, double a, double b, int with_graph)
{
    if (with_graph) {
        sx_uns *nb = sx_uns_set_dict(root, "neighbors");
        if (nb) {
            sx_uns_set_string(nb, "connectivities_key", "connectivities");
            sx_uns_set_string(nb, "distances_key", "distances");
            sx_uns *p = sx_uns_set_dict(nb, "params");
            if (p) {
                sx_uns_set_int(p, "n_neighbors", 30);
                sx_uns_set_string(p, "method", "umap");
                sx_uns_set_int(p, "random_state", 0);
                sx_uns_set_string(p, "metric", "euclidean");
                sx_uns_set_string(p, "use_rep", "latent");
            }
        }
        sx_uns *um = sx_uns_set_dict(root, "umap");
        sx_uns *up = um ? sx_uns_set_dict(um, "params") : NULL;
        if (up) {
            sx_uns_set_float(up, "a", a);
            sx_uns_set_float(up, "b", b);
        }
        sx_uns *ld = sx_uns_set_dict(root, "leiden");
        sx_uns *lp = ld ? sx_uns_set_dict(ld, "params") : NULL;
        if (lp) {
            sx_uns_set_int(lp, "resolution", 1);
            sx_uns_set_int(lp, "random_state", 0);
            sx_uns_set_int(lp, "n_iterations", -1);
        }
    }
    sx_uns *pv = sx_uns_set_dict(root, "scalexd");
    if (!pv) return;
    sx_uns_set_string(pv, "version", SX_VERSION);
    sx_uns_set_string(pv, "job", sx_job_type_name(c->job->type));
    sx_uns_set_int(pv, "threads", c->threads);
    sx_uns *set = sx_uns_set_dict(pv, "settings");
    int ns;
    const sx_popt_spec *sp = sx_pipeline_option_specs(&ns);
    for (int i = 0; set && i < ns; i++) {
        if (!(sp[i].jobs & (unsigned)c->job->type)) continue;
        if (sp[i].type == SX_POPT_LIST) {
            const char *const *v;
            int nv = sx_pipeline_opts_list(c->o, sp[i].name, &v);
            if (nv) sx_uns_set_strings(set, sp[i].name, v, nv);
            continue;
        }
        const char *v = sx_pipeline_opts_str(c->o, sp[i].name);
        if (v) sx_uns_set_string(set, sp[i].name, v);
    }
    if (c->n_inputs > 0) {
        sx_uns_set_strings(pv, "inputs", c->inputs, c->n_inputs);
        const char **sh = sx_calloc((size_t)c->n_inputs, sizeof *sh);
        if (sh) {
            for (int i = 0; i < c->n_inputs; i++) sh[i] = c->sha[i];
            sx_uns_set_strings(pv, "inputs_sha256", sh, c->n_inputs);
            sx_free(sh);
        }
    }
    if (c->job->reference) sx_uns_set_string(pv, "reference", c->job->reference);
}

static int write_adata(pl *c, const sx_dataset *d, sx_status *st)
{
    char *p = out_path(c, "adata.h5ad");
    if (!p) return sx_status_set(st, SX_ENOMEM, "out of memory");
    sx_write_opts wo = {.compress = 4, .gzip = 1};
    int rc = sx_h5ad_write(p, d, &wo, st);
    sx_free(p);
    if (rc == SX_OK) file_out(c, "adata.h5ad");
    return rc;
}

static const char *const label_like[] = {"celltype", "cell_type", NULL};

/* Category codes of a label column: categorical columns as they are; string, integer and
 * boolean columns (e.g. Seurat's integer seurat_clusters) encoded by sorted distinct text.
 * Float columns are not labels (NULL). *own_codes / *own_cats are set when new memory was
 * made (free with sx_free / sx_labels_free); NULL return with st clear = not a label column. */
static const int32_t *label_codes(const sx_column *col, int64_t n, int32_t **own_codes,
                                  char ***own_cats, int *n_cats, const char *const **cats,
                                  sx_status *st)
{
    *own_codes = NULL;
    *own_cats = NULL;
    if (col->kind == SX_COL_CATEGORICAL) {
        *n_cats = col->n_categories;
        *cats = (const char *const *)col->categories;
        return col->codes;
    }
    if (col->kind == SX_COL_FLOAT) return NULL;
    const char **t = sx_calloc((size_t)n + 1, sizeof *t);
    char **own = sx_calloc((size_t)n + 1, sizeof *own);
    int32_t *codes = sx_mallocarray((size_t)n + 1, sizeof *codes);
    int ok = t && own && codes;
    for (int64_t i = 0; ok && i < n; i++) {
        char buf[64];
        const char *x = sx_column_text(col, i, buf, sizeof buf);
        if (x == buf) x = own[i] = sx_strdup(buf);
        t[i] = x ? x : "";
        ok = x != NULL;
    }
    if (!ok) sx_status_set(st, SX_ENOMEM, "out of memory");
    else if (sx_labels_encode(t, n, codes, own_cats, n_cats, st) != SX_OK) ok = 0;
    for (int64_t i = 0; own && i < n; i++) sx_free(own[i]);
    sx_free(own);
    sx_free(t);
    if (!ok) {
        sx_free(codes);
        return NULL;
    }
    *own_codes = codes;
    *cats = (const char *const *)*own_cats;
    return codes;
}

/* UMAP figure in PNG and PDF: one panel per named categorical column present in obs. */
static int plot_umap(pl *c, const sx_dataset *d, const float *umap32, const char *const *cols,
                     int n_cols, const uint8_t *highlight, const char *title, sx_status *st)
{
    int64_t n = sx_dataset_n_obs(d);
    double *xy = sx_mallocarray((size_t)n * 2, sizeof *xy);
    sx_plot_panel pn[8];
    int32_t *own_codes[8] = {0};
    char **own_cats[8] = {0};
    int own_n[8] = {0};
    int np = 0;
    int rc = SX_OK;
    if (!xy) return sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int64_t i = 0; i < 2 * n; i++) xy[i] = umap32[i];
    for (int k = 0; k < n_cols && np < 8; k++) {
        if (!cols[k]) continue;
        int dup = 0;
        for (int j = 0; j < np; j++) dup |= strcmp(pn[j].title, cols[k]) == 0;
        sx_column *col = sx_frame_col(d->obs, cols[k]);
        if (dup || !col) continue;
        memset(&pn[np], 0, sizeof pn[np]);
        pn[np].codes = label_codes(col, n, &own_codes[np], &own_cats[np], &own_n[np],
                                   &pn[np].categories, st);
        if (!pn[np].codes) {
            if (st->code) {
                rc = st->code;
                goto out;
            }
            continue;
        }
        pn[np].title = col->name;
        pn[np].n_categories = col->kind == SX_COL_CATEGORICAL ? col->n_categories : own_n[np];
        if (highlight && strcmp(cols[k], "projection") != 0) {
            pn[np].highlight = highlight;
            pn[np].grey_label = "reference";
        }
        np++;
    }
    if (np == 0) goto out;
    sx_plot_opts po = {.title = title};
    const char *names[2] = {"umap.png", "umap.pdf"};
    for (int f = 0; f < 2 && rc == SX_OK; f++) {
        char *p = out_path(c, names[f]);
        if (!p) {
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
            break;
        }
        rc = sx_plot_embedding(p, xy, n, pn, np, &po, st);
        sx_free(p);
        if (rc == SX_OK) file_out(c, names[f]);
    }
out:
    for (int k = 0; k < 8; k++) {
        sx_free(own_codes[k]);
        if (own_cats[k]) sx_labels_free(own_cats[k], own_n[k]);
    }
    sx_free(xy);
    return rc;
}

static int write_result_json(pl *c, const sx_dataset *d, int64_t n_query, sx_status *st)
{
    sx_sb b = {0};
    sx_sb_puts(&b, "{\n  \"job\": ");
    sx_sb_json_str(&b, sx_job_type_name(c->job->type));
    sx_sb_puts(&b, ",\n  \"version\": ");
    sx_sb_json_str(&b, SX_VERSION);
    sx_sb_putf(&b, ",\n  \"n_obs\": %lld,\n  \"n_vars\": %lld", (long long)sx_dataset_n_obs(d),
               (long long)sx_dataset_n_vars(d));
    if (n_query >= 0) sx_sb_putf(&b, ",\n  \"n_query\": %lld", (long long)n_query);
    sx_sb_puts(&b, ",\n  \"metrics\": {");
    if (c->metrics.s) sx_sb_puts(&b, c->metrics.s);
    sx_sb_puts(&b, "},\n  \"files\": [");
    if (c->files.s) sx_sb_puts(&b, c->files.s);
    sx_sb_puts(&b, ", \"log.txt\", \"result.json\"],\n  \"timings\": {");
    for (int i = 0; i < c->n_stages; i++) {
        if (i) sx_sb_puts(&b, ", ");
        sx_sb_json_str(&b, c->stage_name[i]);
        sx_sb_putf(&b, ": %.3f", c->stage_secs[i]);
    }
    sx_sb_putf(&b, "},\n  \"seconds\": %.3f\n}\n", sx_pl_now() - c->t0);
    int rc;
    if (b.oom) rc = sx_status_set(st, SX_ENOMEM, "out of memory");
    else {
        char *p = out_path(c, "result.json");
        rc = p ? sx_pl_write_file(p, b.s, b.len, st) : sx_status_set(st, SX_ENOMEM, "oom");
        sx_free(p);
    }
    sx_sb_free(&b);
    return rc;
}

/* ---- label transfer (shared by project and transfer) ---- */

typedef struct transfer_out {
    sx_transfer_result *tr;
} transfer_out;

/* Transfer `label` of the reference onto query cells; writes labels.csv; when truth (query
 * labels of the same column) is given, confusion.csv/png and the metrics. */
static int do_transfer(pl *c, const double *ref_lat, int64_t n_ref, const sx_column *ref_col,
                       const double *q_lat, int64_t nq, int dim, const char *const *q_names,
                       const sx_column *truth, const char *label, sx_transfer_result **out,
                       sx_status *st)
{
    int rc = SX_OK;
    const char **rl = NULL, **tp = NULL;
    int32_t *codes = NULL;
    char **classes = NULL;
    int n_classes = 0;
    int64_t *conf = NULL;
    double *confd = NULL;
    sx_sb b = {0};
    sx_transfer_result *tr = NULL;
    if ((rc = stage(c, "transfer")) != SX_OK) return sx_status_set(st, rc, "canceled");
    rl = sx_calloc((size_t)n_ref + 1, sizeof *rl);
    if (!rl) return sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int64_t i = 0; i < n_ref; i++) {
        char buf[64];
        const char *t = sx_column_text(ref_col, i, buf, sizeof buf);
        rl[i] = t == buf ? "" : t; /* label columns are categorical/string */
    }
    sx_transfer_opts to;
    sx_transfer_opts_init(&to);
    to.k = (int)sx_pipeline_opts_int(c->o, "k");
    to.n_threads = c->threads;
    if (to.k > n_ref) to.k = (int)n_ref;
    tr = sx_transfer_knn(ref_lat, n_ref, rl, q_lat, nq, dim, &to, c->prog, st);
    if (!tr) {
        rc = st->code;
        goto out;
    }
    sx_pl_log_msg(&c->log, "Label transfer of '%s': %lld query cells, k %d, %d classes", label,
                  (long long)nq, to.k, tr->n_classes);
    if ((rc = sx_pl_write_labels(c->outdir, q_names, tr, st)) != SX_OK) goto out;
    file_out(c, "labels.csv");
    if (truth) {
        /* common codes over truth + prediction labels (sorted, as sklearn's unique) */
        tp = sx_calloc((size_t)(2 * nq) + 1, sizeof *tp);
        codes = sx_calloc((size_t)(2 * nq) + 1, sizeof *codes);
        if (!tp || !codes) {
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
            goto out;
        }
        int64_t m = 0;
        for (int64_t i = 0; i < nq; i++) {
            char buf[64];
            const char *t = sx_column_text(truth, i, buf, sizeof buf);
            if (t == buf || !*t) continue; /* cells without a true label are not scored */
            tp[m] = t;
            tp[nq + m] = sx_transfer_label(tr, i);
            m++;
        }
        if (m > 0) {
            memmove(tp + m, tp + nq, (size_t)m * sizeof *tp);
            if ((rc = sx_labels_encode(tp, 2 * m, codes, &classes, &n_classes, st)) != SX_OK)
                goto out;
            const int32_t *tc = codes, *pc = codes + m;
            double acc = sx_metrics_accuracy(tc, pc, m);
            double f1 = sx_metrics_macro_f1(tc, pc, m, n_classes);
            double nmi = sx_metrics_nmi(tc, pc, m), ari = sx_metrics_ari(tc, pc, m);
            metric(c, "accuracy", acc);
            metric(c, "macro_f1", f1);
            metric(c, "nmi", nmi);
            metric(c, "ari", ari);
            metric(c, "n_scored", (double)m);
            sx_pl_log_msg(&c->log, "Transfer vs query '%s' (%lld cells): accuracy %.4f, macro F1 "
                          "%.4f, NMI %.4f, ARI %.4f", label, (long long)m, acc, f1, nmi, ari);
            conf = sx_calloc((size_t)n_classes * n_classes, sizeof *conf);
            confd = sx_calloc((size_t)n_classes * n_classes, sizeof *confd);
            if (!conf || !confd) {
                rc = sx_status_set(st, SX_ENOMEM, "out of memory");
                goto out;
            }
            if ((rc = sx_metrics_confusion(tc, pc, m, n_classes, conf, st)) != SX_OK) goto out;
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
            char *p = out_path(c, "confusion.csv");
            rc = b.oom ? sx_status_set(st, SX_ENOMEM, "out of memory")
                       : sx_pl_write_file(p, b.s, b.len, st);
            sx_free(p);
            if (rc != SX_OK) goto out;
            file_out(c, "confusion.csv");
            char title[160];
            snprintf(title, sizeof title, "%s: accuracy %.3f, macro F1 %.3f", label, acc, f1);
            p = out_path(c, "confusion.png");
            rc = sx_plot_confusion(p, confd, n_classes, n_classes,
                                   (const char *const *)classes, (const char *const *)classes,
                                   "true label", "transferred label", title, 1, st);
            sx_free(p);
            if (rc != SX_OK) goto out;
            file_out(c, "confusion.png");
        }
    }
    *out = tr;
    tr = NULL;
out:
    sx_transfer_free(tr);
    sx_free(rl);
    sx_free(tp);
    sx_free(codes);
    if (classes) sx_labels_free(classes, n_classes);
    sx_free(conf);
    sx_free(confd);
    sx_sb_free(&b);
    return rc;
}

/* Add <label>_transfer (categorical over the reference classes) and _confidence to obs for
 * rows [row0, row0 + nq); other rows missing. */
static int add_transfer_cols(sx_frame *obs, int64_t row0, const sx_transfer_result *tr,
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
    snprintf(name, sizeof name, "%s_transfer", label);
    if ((rc = sx_frame_add_categorical(obs, name, codes, cats, n_cats, 0, st)) != SX_OK) goto out;
    snprintf(name, sizeof name, "%s_transfer_confidence", label);
    rc = sx_frame_add_float(obs, name, conf, st);
out:
    sx_free(codes);
    sx_free(conf);
    sx_free(cats);
    return rc;
}

/* --assess (ALGORITHM.md §10): SCALEX's batch_entropy_mixing_score (max ln 2) and the
 * cell-type silhouette, on the latent (how quality.json and the paper's latent comparisons
 * score an integration) and on the UMAP (what SCALEX's assess=True prints). Metrics that
 * cannot be computed (one label, too many cells) are skipped with a log line, never fatal. */
static void assess(pl *c, sx_dataset *d, const double *latent, int dim, const float *umap)
{
    int64_t N = sx_dataset_n_obs(d);
    sx_status st;
    sx_status_clear(&st);
    sx_column *bc = sx_frame_col(d->obs, "batch");
    const char *lab = sx_pipeline_opts_is_set(c->o, "label") ? sx_pipeline_opts_str(c->o, "label")
                                                             : NULL;
    sx_column *lc = lab ? sx_frame_col(d->obs, lab) : NULL;
    for (int k = 0; !lab && !lc && label_like[k]; k++) lc = sx_frame_col(d->obs, label_like[k]);
    int32_t *own_codes = NULL;
    char **own_cats = NULL;
    int n_lab = 0;
    const char *const *lab_cats = NULL;
    const int32_t *lab_codes =
        lc ? label_codes(lc, N, &own_codes, &own_cats, &n_lab, &lab_cats, &st) : NULL;
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
                            NULL, 0, c->threads, &s, &sn, c->prog, &st) == SX_OK) {
            /* the UMAP figure keeps its first name (result.json readers rely on it) */
            snprintf(name, sizeof name, r ? "batch_entropy_mixing_score" : "mixing_latent");
            metric(c, name, s);
            sx_pl_log_msg(&c->log, "batch_entropy_mixing_score on the %s: %.4f", reps[r].suffix, s);
        } else if (st.code) {
            sx_pl_log_msg(&c->log, "assess: mixing on the %s skipped: %s", reps[r].suffix, st.msg);
        }
        sx_status_clear(&st);
        if (lab_codes && N <= 50000 &&
            sx_metrics_silhouette(reps[r].x, N, reps[r].dim, lab_codes, n_lab, &s, &st) ==
                SX_OK) {
            snprintf(name, sizeof name, r ? "silhouette_score" : "silhouette_latent");
            metric(c, name, s);
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

/* ---- integrate ---- */

static int run_integrate(pl *c, sx_status *st)
{
    int rc;
    sx_dataset *d = NULL;
    sx_prep_result pr;
    memset(&pr, 0, sizeof pr);
    sx_nn_model *m = NULL;
    double *latent = NULL;
    int64_t *perm = NULL;
    float *umap = NULL;
    int32_t *leiden = NULL;
    int n_clusters = 0;
    double a = 0, b = 0;
    char *p = NULL;

    if ((rc = stage(c, "read")) != SX_OK) goto canceled;
    d = read_inputs(c, strcmp(sx_pipeline_opts_str(c->o, "join"), "outer") == 0, st);
    if (!d) return st->code;
    if ((rc = stage(c, "preprocess")) != SX_OK) goto canceled;
    sx_prep_opts po = prep_opts(c);
    if ((rc = sx_prep_run(d, &po, &pr, c->prog, st)) != SX_OK) goto fail;
    log_prep(c, &pr, d);
    int64_t N = sx_dataset_n_obs(d), G = sx_dataset_n_vars(d);

    if ((rc = stage(c, "train")) != SX_OK) goto canceled;
    sx_nn_config cfg;
    sx_nn_config_default(&cfg, G, pr.n_domains);
    if (!(m = sx_nn_model_new(&cfg, c->seed, st))) {
        rc = st->code;
        goto fail;
    }
    if ((rc = sx_nn_model_set_genes(m, (const char *const *)d->var->index, G, st)) ||
        (rc = sx_nn_model_set_domains(m, (const char *const *)pr.domains, pr.n_domains, st)))
        goto fail;
    if (pr.scale_rows == pr.n_domains && pr.scale &&
        (rc = sx_nn_model_set_scale(m, pr.scale, G, st)) != SX_OK)
        goto fail;
    if (pr.settings_json && (rc = sx_nn_model_set_prep_json(m, pr.settings_json, st)) != SX_OK)
        goto fail;
    sx_nn_train_opts to;
    sx_nn_train_opts_default(&to);
    to.batch_size = sx_pipeline_opts_int(c->o, "batch_size");
    to.max_iteration = sx_pipeline_opts_int(c->o, "max_iteration");
    to.lr = sx_pipeline_opts_float(c->o, "lr");
    to.patience = (int)sx_pipeline_opts_int(c->o, "patience");
    to.seed = c->seed;
    to.threads = c->threads;
    if (N < to.batch_size) {
        rc = sx_status_set(st, SX_EDATA, "only %lld cells are left after preprocessing, fewer than "
                           "one training minibatch (batch_size %lld): lower --min_features or "
                           "--batch_size, or give more cells", (long long)N,
                           (long long)to.batch_size);
        goto fail;
    }
    sx_pl_log_msg(&c->log, "Training: %lld cells x %lld genes, %d domains, batch_size %lld, lr "
                  "%g, max_iteration %lld, seed %llu, threads %d", (long long)N, (long long)G,
                  pr.n_domains, (long long)to.batch_size, to.lr, (long long)to.max_iteration,
                  (unsigned long long)c->seed, c->threads);
    double t_train = sx_pl_now();
    if ((rc = sx_nn_train(m, d->X, pr.domain_of_cell, &to, c->prog, st)) != SX_OK) goto fail;
    t_train = sx_pl_now() - t_train;
    sx_nn_train_log tl;
    sx_nn_model_train_log(m, &tl);
    for (int64_t e = 0; e < tl.n_epochs; e++)
        sx_pl_log_msg(&c->log, "epoch %lld: recon_loss %.4f kl_loss %.4f", (long long)e + 1,
                      tl.recon ? tl.recon[e] : NAN, tl.kl ? tl.kl[e] : NAN);
    sx_pl_log_msg(&c->log, "Trained %lld epochs, %lld steps in %.1f s (%.1f it/s); best epoch "
                  "%lld, loss %.4f%s", (long long)tl.n_epochs, (long long)tl.steps, t_train,
                  t_train > 0 ? tl.steps / t_train : 0.0, (long long)tl.best_epoch + 1,
                  tl.best_loss, tl.early_stopped ? " (early stop)" : "");
    metric(c, "epochs", (double)tl.n_epochs);
    metric(c, "steps", (double)tl.steps);
    metric(c, "final_loss", tl.n_epochs ? tl.recon[tl.n_epochs - 1] + tl.kl[tl.n_epochs - 1] : NAN);
    metric(c, "train_it_per_s", t_train > 0 ? tl.steps / t_train : NAN);
    {
        char *dir = out_path(c, "checkpoint");
        char *mp = dir ? sx_pl_join(dir, "model.h5") : NULL;
        char *tmp = mp ? sx_pl_join(dir, "model.h5.tmp") : NULL;
        rc = !tmp ? sx_status_set(st, SX_ENOMEM, "out of memory") : sx_pl_mkdirs(dir, st);
        if (rc == SX_OK) rc = sx_nn_model_save(m, tmp, st);
        if (rc == SX_OK && rename(tmp, mp) != 0)
            rc = sx_status_set(st, SX_EIO, "cannot rename '%s' into place", tmp);
        if (rc != SX_OK && tmp) remove(tmp);
        sx_free(dir);
        sx_free(mp);
        sx_free(tmp);
        if (rc != SX_OK) goto fail;
        file_out(c, "checkpoint/model.h5");
    }

    if ((rc = stage(c, "encode")) != SX_OK) goto canceled;
    latent = sx_mallocarray((size_t)N * cfg.n_latent, sizeof *latent);
    perm = sx_mallocarray((size_t)N, sizeof *perm);
    if (!latent || !perm) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory for the latent (%lld cells)", (long long)N);
        goto fail;
    }
    sx_nn_infer_opts io;
    infer_opts(c, &io, perm, N);
    if ((rc = sx_nn_encode(m, d->X, pr.domain_of_cell, &io, latent, c->prog, st)) != SX_OK)
        goto fail;
    if ((rc = sx_dataset_set_obsm(d, "latent", latent, N, cfg.n_latent, 0, st)) != SX_OK) goto fail;
    const char *imp = sx_pipeline_opts_str(c->o, "impute");
    if (imp) {
        int64_t t = 0;
        for (int k = 0; k < pr.n_domains; k++)
            if (strcmp(pr.domains[k], imp) == 0) t = k;
        double *x = sx_mallocarray((size_t)N * (size_t)G, sizeof *x);
        float *xf = sx_mallocarray((size_t)N * (size_t)G, sizeof *xf);
        if (!x || !xf) {
            sx_free(x);
            sx_free(xf);
            rc = sx_status_set(st, SX_ENOMEM, "out of memory for imputation (%lld x %lld dense)",
                               (long long)N, (long long)G);
            goto fail;
        }
        rc = sx_nn_impute(m, d->X, pr.domain_of_cell, t, &io, x, c->prog, st);
        for (int64_t i = 0; rc == SX_OK && i < N * G; i++) xf[i] = (float)x[i];
        sx_free(x);
        sx_csr *im = rc == SX_OK ? sx_csr_from_dense(xf, N, G, st) : NULL;
        sx_free(xf);
        if (!im) {
            rc = st->code;
            goto fail;
        }
        if ((rc = sx_dataset_set_layer(d, "impute", im, st)) != SX_OK) goto fail;
        sx_pl_log_msg(&c->log, "Imputed every cell as batch '%s'", pr.domains[t]);
    }

    int ignore_umap = sx_pipeline_opts_bool(c->o, "ignore_umap");
    if (!ignore_umap) {
        umap = sx_mallocarray((size_t)N * 2, sizeof *umap);
        if (!umap) {
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
            goto fail;
        }
        if ((rc = embed_graph(c, latent, N, (int)cfg.n_latent, umap, &leiden, &n_clusters, &a, &b,
                              st)) != SX_OK)
            goto fail;
        double *u = sx_mallocarray((size_t)N * 2, sizeof *u);
        if (!u) {
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
            goto fail;
        }
        for (int64_t i = 0; i < 2 * N; i++) u[i] = umap[i];
        rc = sx_dataset_set_obsm(d, "X_umap", u, N, 2, 1, st);
        if (rc == SX_OK) rc = sx_dataset_set_obsm(d, "X_scalex_umap", u, N, 2, 1, st);
        sx_free(u);
        if (rc != SX_OK) goto fail;
        if ((rc = add_leiden(d->obs, leiden, n_clusters, st)) != SX_OK) goto fail;
    }
    if (sx_pipeline_opts_bool(c->o, "assess"))
        assess(c, d, latent, (int)cfg.n_latent, ignore_umap ? NULL : umap);

    if ((rc = stage(c, "write")) != SX_OK) goto canceled;
    uns_provenance(c, d->uns, a, b, !ignore_umap);
    if ((rc = write_adata(c, d, st)) != SX_OK) goto fail;
    p = out_path(c, "reference.h5");
    if (!p) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = sx_pl_reference_write(p, m, d->obs, latent, (int)cfg.n_latent, umap, a, b, st)))
        goto fail;
    file_out(c, "reference.h5");
    if (!ignore_umap) {
        const char *lab = sx_pipeline_opts_str(c->o, "label");
        const char *cols[] = {"batch", label_like[0], label_like[1], lab, "leiden"};
        if ((rc = plot_umap(c, d, umap, cols, 5, NULL, NULL, st)) != SX_OK) goto fail;
    }
    if ((rc = sx_pl_write_tables(c->outdir, d, sx_pipeline_opts_str(c->o, "label"), st))) goto fail;
    stage(c, NULL);
    rc = write_result_json(c, d, -1, st);
    goto done;
canceled:
    rc = sx_status_set(st, SX_ECANCELED, "the job was canceled");
fail:
done:
    sx_free(p);
    sx_free(latent);
    sx_free(perm);
    sx_free(umap);
    sx_free(leiden);
    sx_nn_model_free(m);
    sx_prep_result_free(&pr);
    sx_dataset_free(d);
    return rc;
}

/* ---- project ---- */

/* Categorical column over reference rows + query rows from two text sources. */
static int add_combined_col(sx_frame *obs, const char *name, const sx_column *rc_, int64_t n_ref,
                            const sx_column *qc, int64_t nq, sx_status *st)
{
    const char **v = sx_calloc((size_t)(n_ref + nq) + 1, sizeof *v);
    char **own = sx_calloc((size_t)(n_ref + nq) + 1, sizeof *own);
    int rc;
    if (!v || !own) {
        sx_free(v);
        sx_free(own);
        return sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    for (int64_t i = 0; i < n_ref + nq; i++) {
        const sx_column *col = i < n_ref ? rc_ : qc;
        int64_t r = i < n_ref ? i : i - n_ref;
        if (!col) continue;
        char buf[64];
        const char *t = sx_column_text(col, r, buf, sizeof buf);
        if (t == buf) t = own[i] = sx_strdup(buf);
        v[i] = t && *t ? t : NULL;
    }
    /* NULL = missing; sorted categories (pandas' default for a new Categorical) */
    rc = sx_frame_add_categorical_from_strings(obs, name, v, 1, st);
    for (int64_t i = 0; i < n_ref + nq; i++) sx_free(own[i]);
    sx_free(own);
    sx_free(v);
    return rc;
}

static int run_project(pl *c, sx_status *st)
{
    int rc;
    sx_reference *own_ref = NULL;
    const sx_reference *R = c->job->reference_obj;
    sx_dataset *q = NULL, *out = NULL;
    sx_prep_result pr;
    memset(&pr, 0, sizeof pr);
    sx_reindex_report rep;
    memset(&rep, 0, sizeof rep);
    double *qlat = NULL, *all_lat = NULL;
    int64_t *perm = NULL;
    float *all_umap = NULL;
    int32_t *leiden = NULL;
    sx_transfer_result *tr = NULL, *ltr = NULL;
    uint8_t *hl = NULL;
    char **names = NULL;
    sx_csr *X = NULL, *zero = NULL;
    int n_clusters = 0;
    double a = 0, b = 0;

    if ((rc = stage(c, "read")) != SX_OK) goto canceled;
    if (!R) {
        if (!c->job->reference) {
            rc = sx_status_set(st, SX_EINVAL, "a projection needs a reference (--projection DIR)");
            goto fail;
        }
        if (!(own_ref = sx_reference_load(c->job->reference, st))) {
            rc = st->code;
            goto fail;
        }
        R = own_ref;
    }
    int64_t G = 0;
    const char *const *genes = sx_nn_model_genes(R->model, &G);
    if (!genes || G <= 0) {
        rc = sx_status_set(st, SX_EFORMAT, "reference '%s' has no gene list in its model",
                           R->path ? R->path : "(memory)");
        goto fail;
    }
    sx_pl_log_msg(&c->log, "Reference %s: %lld cells, %lld genes", R->path ? R->path : "(memory)",
                  (long long)R->n_cells, (long long)G);
    /* several query files are concatenated with an outer join (ALGORITHM.md §5.3) */
    if (!(q = read_inputs(c, 1, st))) {
        rc = st->code;
        goto fail;
    }
    if ((rc = stage(c, "preprocess")) != SX_OK) goto canceled;
    sx_prep_opts po = prep_opts(c);
    if ((rc = sx_prep_apply_reference(q, genes, G, &po, NULL, &pr, &rep, c->prog, st)) != SX_OK)
        goto fail;
    log_prep(c, &pr, q);
    sx_pl_log_msg(&c->log, "Reference genes found in the query: %lld of %lld (%.1f%%)",
                  (long long)rep.n_present, (long long)rep.n_ref, 100 * rep.fraction);
    metric(c, "genes_present", (double)rep.n_present);
    metric(c, "genes_fraction", rep.fraction);
    int64_t nq = sx_dataset_n_obs(q);

    if ((rc = stage(c, "encode")) != SX_OK) goto canceled;
    sx_nn_config cfg;
    sx_nn_model_get_config(R->model, &cfg);
    int dim = (int)cfg.n_latent;
    if (dim != R->dim) {
        rc = sx_status_set(st, SX_EFORMAT, "reference latent has %d columns, the model %d", R->dim,
                           dim);
        goto fail;
    }
    qlat = sx_mallocarray((size_t)nq * dim, sizeof *qlat);
    perm = sx_mallocarray((size_t)nq + 1, sizeof *perm);
    if (!qlat || !perm) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    sx_nn_infer_opts io;
    infer_opts(c, &io, perm, nq);
    /* encode a copy of the model: inference in train mode updates running statistics and
     * a cached reference must stay as loaded */
    sx_nn_model *mc = sx_nn_model_clone(R->model, cfg.dtype, st);
    if (!mc) {
        rc = st->code;
        goto fail;
    }
    rc = sx_nn_encode(mc, q->X, pr.domain_of_cell, &io, qlat, c->prog, st);
    sx_nn_model_free(mc);
    if (rc != SX_OK) goto fail;

    int repeat = sx_pipeline_opts_bool(c->o, "repeat");
    int64_t n_ref = repeat ? 0 : R->n_cells;
    int64_t n = n_ref + nq;
    all_lat = sx_mallocarray((size_t)n * dim, sizeof *all_lat);
    if (!all_lat) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    if (n_ref) memcpy(all_lat, R->latent, (size_t)n_ref * dim * sizeof *all_lat);
    memcpy(all_lat + (size_t)n_ref * dim, qlat, (size_t)nq * dim * sizeof *qlat);

    /* combined dataset: reference cells first (X all zero: the reference's own adata.h5ad
     * holds its matrix), then the query */
    names = sx_calloc((size_t)n + 1, sizeof *names);
    if (!names) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    for (int64_t i = 0; i < n; i++) names[i] = i < n_ref ? R->obs->index[i] : q->obs->index[i - n_ref];
    if (!(out = sx_dataset_new(n, G, st))) {
        rc = st->code;
        goto fail;
    }
    {
        sx_frame *ob = sx_frame_new(n, (const char *const *)names, st);
        sx_frame *vr = sx_frame_copy(q->var, st);
        if (!ob || !vr) {
            sx_frame_free(ob);
            sx_frame_free(vr);
            rc = st->code;
            goto fail;
        }
        sx_frame_free(out->obs);
        out->obs = ob;
        sx_frame_free(out->var);
        out->var = vr;
    }
    if (n_ref) {
        if (!(zero = sx_csr_new(n_ref, G, 0, st))) {
            rc = st->code;
            goto fail;
        }
        const sx_csr *parts[2] = {zero, q->X};
        if (!(X = sx_csr_vstack(parts, 2, st))) {
            rc = st->code;
            goto fail;
        }
        out->X = X;
        X = NULL;
    } else {
        out->X = q->X;
        q->X = NULL;
    }
    {
        int32_t *pc = sx_mallocarray((size_t)n + 1, sizeof *pc);
        if (!pc) {
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
            goto fail;
        }
        for (int64_t i = 0; i < n; i++) pc[i] = i < n_ref ? 0 : 1;
        const char *pcats[2] = {"reference", "query"};
        rc = sx_frame_add_categorical(out->obs, "projection", pc, pcats, 2, 0, st);
        sx_free(pc);
        if (rc != SX_OK) goto fail;
    }
    /* obs columns: batch, the label, and every column present in both (as strings, S18) */
    for (int k = 0; k < R->obs->n_cols; k++) {
        const sx_column *rcol = &R->obs->cols[k];
        if (strcmp(rcol->name, "leiden") == 0 || strcmp(rcol->name, "projection") == 0) continue;
        const sx_column *qcol = sx_frame_col(q->obs, rcol->name);
        const char *lab = sx_pipeline_opts_str(c->o, "label");
        int keep = qcol || strcmp(rcol->name, "batch") == 0 || (lab && strcmp(lab, rcol->name) == 0);
        if (!keep || n_ref == 0) {
            if (!qcol) continue;
        }
        if ((rc = add_combined_col(out->obs, rcol->name, n_ref ? rcol : NULL, n_ref, qcol, nq, st)))
            goto fail;
    }
    if (!sx_frame_col(out->obs, "batch"))
        if ((rc = add_combined_col(out->obs, "batch", NULL, n_ref, sx_frame_col(q->obs, "batch"),
                                   nq, st)) != SX_OK)
            goto fail;

    /* label transfer */
    const char *label = sx_pipeline_opts_is_set(c->o, "label") ? sx_pipeline_opts_str(c->o, "label")
                                                               : NULL;
    if (label) {
        const sx_column *lc = sx_frame_col(R->obs, label);
        if (!lc) {
            sx_sb cols = {0};
            for (int k = 0; k < R->obs->n_cols; k++) {
                if (k) sx_sb_puts(&cols, ", ");
                sx_sb_puts(&cols, R->obs->cols[k].name);
            }
            rc = sx_status_set(st, SX_ENOTFOUND, "the reference has no obs column '%s' to transfer "
                               "(columns: %s)", label, cols.s ? cols.s : "none");
            sx_sb_free(&cols);
            goto fail;
        }
        if ((rc = do_transfer(c, R->latent, R->n_cells, lc, qlat, nq, dim,
                              (const char *const *)q->obs->index, sx_frame_col(q->obs, label),
                              label, &tr, st)) != SX_OK)
            goto fail;
        if ((rc = add_transfer_cols(out->obs, n_ref, tr, label, st)) != SX_OK) goto fail;
    }

    int ignore_umap = sx_pipeline_opts_bool(c->o, "ignore_umap");
    int joint = sx_pipeline_opts_bool(c->o, "joint_umap") || !R->umap || repeat;
    if (!ignore_umap) {
        all_umap = sx_mallocarray((size_t)n * 2, sizeof *all_umap);
        if (!all_umap) {
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
            goto fail;
        }
        if (joint) {
            if ((rc = embed_graph(c, all_lat, n, dim, all_umap, &leiden, &n_clusters, &a, &b, st)))
                goto fail;
            if ((rc = add_leiden(out->obs, leiden, n_clusters, st)) != SX_OK) goto fail;
        } else {
            /* the query on the reference's fixed map (umap-learn transform) */
            if ((rc = stage(c, "umap")) != SX_OK) goto canceled;
            sx_umap_params up;
            sx_umap_params_init(&up);
            up.a = R->umap_a;
            up.b = R->umap_b;
            up.n_threads = c->threads;
            memcpy(all_umap, R->umap, (size_t)n_ref * 2 * sizeof *all_umap);
            if ((rc = sx_umap_transform(R->latent, R->n_cells, R->umap, qlat, nq, dim, &up,
                                        all_umap + 2 * n_ref, c->prog, st)) != SX_OK)
                goto fail;
            a = R->umap_a;
            b = R->umap_b;
            sx_pl_log_msg(&c->log, "UMAP: %lld query cells placed on the reference layout",
                          (long long)nq);
            /* clusters: the reference's Leiden labels, carried to the query by the kNN vote */
            const sx_column *lc = sx_frame_col(R->obs, "leiden");
            if (lc) {
                if ((rc = stage(c, "leiden")) != SX_OK) goto canceled;
                const char **rl = sx_calloc((size_t)R->n_cells + 1, sizeof *rl);
                char **cl = sx_calloc((size_t)n + 1, sizeof *cl);
                if (!rl || !cl) {
                    sx_free(rl);
                    sx_free(cl);
                    rc = sx_status_set(st, SX_ENOMEM, "out of memory");
                    goto fail;
                }
                for (int64_t i = 0; i < R->n_cells; i++) {
                    char buf[64];
                    rl[i] = sx_column_text(lc, i, buf, sizeof buf);
                }
                sx_transfer_opts to;
                sx_transfer_opts_init(&to);
                to.n_threads = c->threads;
                ltr = sx_transfer_knn(R->latent, R->n_cells, rl, qlat, nq, dim, &to, c->prog, st);
                if (ltr) {
                    for (int64_t i = 0; i < n; i++)
                        cl[i] = (char *)(i < n_ref ? rl[i] : sx_transfer_label(ltr, i - n_ref));
                    /* numeric order of cluster names ("2" before "10") */
                    int32_t *codes = sx_mallocarray((size_t)n + 1, sizeof *codes);
                    int32_t ncl = 0;
                    for (int64_t i = 0; i < R->n_cells; i++) {
                        int v = atoi(rl[i]);
                        if (v + 1 > ncl) ncl = v + 1;
                    }
                    if (codes) {
                        for (int64_t i = 0; i < n; i++) codes[i] = cl[i] ? atoi(cl[i]) : -1;
                        rc = add_leiden(out->obs, codes, ncl, st);
                    } else {
                        rc = sx_status_set(st, SX_ENOMEM, "out of memory");
                    }
                    sx_free(codes);
                } else {
                    rc = st->code;
                }
                sx_free(rl);
                sx_free(cl);
                if (rc != SX_OK) goto fail;
            }
        }
        double *u = sx_mallocarray((size_t)n * 2, sizeof *u);
        if (!u) {
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
            goto fail;
        }
        for (int64_t i = 0; i < 2 * n; i++) u[i] = all_umap[i];
        rc = sx_dataset_set_obsm(out, "X_umap", u, n, 2, 1, st);
        if (rc == SX_OK) rc = sx_dataset_set_obsm(out, "X_scalex_umap", u, n, 2, 1, st);
        sx_free(u);
        if (rc != SX_OK) goto fail;
    }
    if ((rc = sx_dataset_set_obsm(out, "latent", all_lat, n, dim, 0, st)) != SX_OK) goto fail;

    if ((rc = stage(c, "write")) != SX_OK) goto canceled;
    uns_provenance(c, out->uns, a, b, !ignore_umap && joint);
    {
        sx_uns *pv = sx_uns_get(out->uns, "scalexd");
        if (pv) sx_uns_set_string(pv, "umap", ignore_umap ? "none" : joint ? "joint" : "fixed");
    }
    if ((rc = write_adata(c, out, st)) != SX_OK) goto fail;
    if (!ignore_umap) {
        hl = sx_mallocarray((size_t)n + 1, sizeof *hl);
        if (!hl) {
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
            goto fail;
        }
        for (int64_t i = 0; i < n; i++) hl[i] = i >= n_ref;
        char tl[64] = "";
        if (label) snprintf(tl, sizeof tl, "%s_transfer", label);
        const char *cols[] = {"projection", "batch", label, label ? tl : NULL};
        if ((rc = plot_umap(c, out, all_umap, cols, 4, n_ref ? hl : NULL, NULL, st)) != SX_OK)
            goto fail;
    }
    if ((rc = sx_pl_write_tables(c->outdir, out, sx_pipeline_opts_str(c->o, "label"), st)))
        goto fail;
    stage(c, NULL);
    rc = write_result_json(c, out, nq, st);
    goto done;
canceled:
    rc = sx_status_set(st, SX_ECANCELED, "the job was canceled");
fail:
done:
    sx_reference_free(own_ref);
    sx_dataset_free(q);
    sx_dataset_free(out);
    sx_prep_result_free(&pr);
    sx_reindex_report_free(&rep);
    sx_free(qlat);
    sx_free(all_lat);
    sx_free(perm);
    sx_free(all_umap);
    sx_free(leiden);
    sx_transfer_free(tr);
    sx_transfer_free(ltr);
    sx_free(hl);
    sx_free(names);
    sx_csr_free(X);
    sx_csr_free(zero);
    return rc;
}

/* ---- transfer: labels from a reference (h5ad with obsm rep, or a reference.h5) ---- */

static int run_transfer(pl *c, sx_status *st)
{
    int rc;
    sx_dataset *rd = NULL, *q = NULL;
    sx_reference *own_ref = NULL;
    const sx_reference *R = c->job->reference_obj;
    sx_transfer_result *tr = NULL;
    const char *rep = sx_pipeline_opts_str(c->o, "rep");
    const char *label = sx_pipeline_opts_str(c->o, "label");
    const double *rlat = NULL;
    int64_t n_ref = 0;
    int dim = 0;
    const sx_column *lc = NULL;

    if ((rc = stage(c, "read")) != SX_OK) goto canceled;
    if (c->n_inputs != 1) {
        rc = sx_status_set(st, SX_EINVAL, "label transfer takes one query file (got %d)",
                           c->n_inputs);
        goto fail;
    }
    if (!R) {
        const char *rp = c->job->reference;
        if (!rp) {
            rc = sx_status_set(st, SX_EINVAL, "label transfer needs a reference (--reference)");
            goto fail;
        }
        const char *dot = strrchr(rp, '.');
        if (sx_pl_is_dir(rp) || (dot && strcmp(dot, ".h5") == 0)) {
            if (!(own_ref = sx_reference_load(rp, st))) {
                rc = st->code;
                goto fail;
            }
            R = own_ref;
        } else {
            if (!(rd = sx_io_read(rp, NULL, c->prog, st))) {
                rc = st->code;
                goto fail;
            }
        }
    }
    if (R) {
        rlat = R->latent;
        n_ref = R->n_cells;
        dim = R->dim;
        lc = sx_frame_col(R->obs, label);
    } else {
        const sx_dense *e = sx_dataset_obsm(rd, rep);
        if (!e) {
            rc = sx_status_set(st, SX_ENOTFOUND, "reference '%s' has no obsm '%s': integrate or "
                               "project it first, or name another representation with --rep",
                               c->job->reference, rep);
            goto fail;
        }
        rlat = e->v;
        n_ref = e->n_rows;
        dim = (int)e->n_cols;
        lc = sx_frame_col(rd->obs, label);
    }
    if (!lc) {
        rc = sx_status_set(st, SX_ENOTFOUND, "the reference has no obs column '%s' (give the "
                           "label column with --label)", label);
        goto fail;
    }
    if (!(q = sx_io_read(c->inputs[0], NULL, c->prog, st))) {
        rc = st->code;
        goto fail;
    }
    if (!sx_pl_is_dir(c->inputs[0]) && (rc = sx_sha256_file(c->inputs[0], c->sha[0], st))) goto fail;
    const sx_dense *qe = sx_dataset_obsm(q, rep);
    if (!qe) {
        rc = sx_status_set(st, SX_ENOTFOUND, "query '%s' has no obsm '%s': project it onto the "
                           "reference first (scalex project), then transfer", c->inputs[0], rep);
        goto fail;
    }
    if (qe->n_cols != dim) {
        rc = sx_status_set(st, SX_EINVAL, "obsm '%s' has %lld columns in the query but %d in the "
                           "reference: both must come from the same model", rep,
                           (long long)qe->n_cols, dim);
        goto fail;
    }
    int64_t nq = sx_dataset_n_obs(q);
    if ((rc = do_transfer(c, rlat, n_ref, lc, qe->v, nq, dim, (const char *const *)q->obs->index,
                          sx_frame_col(q->obs, label), label, &tr, st)) != SX_OK)
        goto fail;
    if ((rc = add_transfer_cols(q->obs, 0, tr, label, st)) != SX_OK) goto fail;
    if ((rc = stage(c, "write")) != SX_OK) goto canceled;
    uns_provenance(c, q->uns, 0, 0, 0);
    if ((rc = write_adata(c, q, st)) != SX_OK) goto fail;
    const sx_dense *um = sx_dataset_obsm(q, "X_umap");
    if (um && um->n_cols == 2 && !sx_pipeline_opts_bool(c->o, "ignore_umap")) {
        float *u = sx_mallocarray((size_t)nq * 2, sizeof *u);
        if (!u) {
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
            goto fail;
        }
        for (int64_t i = 0; i < 2 * nq; i++) u[i] = (float)um->v[i];
        char tl[300];
        snprintf(tl, sizeof tl, "%s_transfer", label);
        const char *cols[] = {tl, label};
        rc = plot_umap(c, q, u, cols, 2, NULL, NULL, st);
        sx_free(u);
        if (rc != SX_OK) goto fail;
    }
    if ((rc = sx_pl_write_tables(c->outdir, q, label, st))) goto fail;
    stage(c, NULL);
    rc = write_result_json(c, q, nq, st);
    goto done;
canceled:
    rc = sx_status_set(st, SX_ECANCELED, "the job was canceled");
fail:
done:
    sx_transfer_free(tr);
    sx_dataset_free(rd);
    sx_dataset_free(q);
    sx_reference_free(own_ref);
    return rc;
}

int sx_pipeline_run(const sx_job_spec *job, const sx_progress *prog, sx_status *st)
{
    pl c;
    memset(&c, 0, sizeof c);
    int rc;
    if (!job || !job->outdir || !job->opts)
        return sx_status_set(st, SX_EINVAL, "a job needs an output folder and options");
    c.job = job;
    c.o = job->opts;
    c.prog = prog;
    c.outdir = job->outdir;
    c.t0 = c.t_stage = sx_pl_now();
    c.seed = (uint64_t)sx_pipeline_opts_int(c.o, "seed");
    c.threads = job->threads > 0 ? job->threads : (int)sx_pipeline_opts_int(c.o, "threads");
    c.inputs = job->inputs;
    c.n_inputs = job->n_inputs;
    if (c.n_inputs == 0) c.n_inputs = sx_pipeline_opts_list(c.o, "data_list", &c.inputs);
    c.sha = sx_calloc((size_t)c.n_inputs + 1, sizeof *c.sha);
    if (!c.sha) return sx_status_set(st, SX_ENOMEM, "out of memory");
    if ((rc = sx_pl_mkdirs(job->outdir, st)) != SX_OK) goto out;
    char *lp = sx_pl_join(job->outdir, "log.txt");
    c.log.f = lp ? fopen(lp, "w") : NULL;
    if (!c.log.f) {
        rc = sx_status_set(st, SX_EIO, "cannot write '%s/log.txt': check the output folder",
                           job->outdir);
        sx_free(lp);
        goto out;
    }
    sx_free(lp);
    if (c.threads > 0) sx_nn_set_threads(c.threads);
    sx_pl_log_msg(&c.log, "scalex %s: %s job, output %s", SX_VERSION, sx_job_type_name(job->type),
                  job->outdir);
    {
        /* the settings in force, one line (the provenance also goes into uns) */
        sx_sb b = {0};
        int ns;
        const sx_popt_spec *sp = sx_pipeline_option_specs(&ns);
        for (int i = 0; i < ns; i++) {
            if (!(sp[i].jobs & (unsigned)job->type)) continue;
            if (sp[i].type == SX_POPT_LIST) {
                const char *const *v;
                int nv = sx_pipeline_opts_list(c.o, sp[i].name, &v);
                if (!nv) continue;
                sx_sb_putf(&b, "%s%s=", b.len ? " " : "", sp[i].name);
                for (int k = 0; k < nv; k++) sx_sb_putf(&b, "%s%s", k ? "," : "", v[k]);
                continue;
            }
            const char *v = sx_pipeline_opts_str(c.o, sp[i].name);
            if (v) sx_sb_putf(&b, "%s%s=%s", b.len ? " " : "", sp[i].name, v);
        }
        sx_pl_log_msg(&c.log, "Settings: %s", b.s ? b.s : "");
        sx_sb_free(&b);
    }
    switch (job->type) {
    case SX_JOB_INTEGRATE: rc = run_integrate(&c, st); break;
    case SX_JOB_PROJECT: rc = run_project(&c, st); break;
    case SX_JOB_TRANSFER: rc = run_transfer(&c, st); break;
    default: rc = sx_status_set(st, SX_EINVAL, "unknown job type %d", (int)job->type);
    }
    if (rc == SX_OK)
        sx_pl_log_msg(&c.log, "Done in %.1f s", sx_pl_now() - c.t0);
    else
        sx_pl_log_msg(&c.log, "Failed (%s): %s", sx_errname(rc), st->msg);
out:
    if (c.log.f) fclose(c.log.f);
    sx_sb_free(&c.metrics);
    sx_sb_free(&c.files);
    sx_free(c.sha);
    return rc;
}
