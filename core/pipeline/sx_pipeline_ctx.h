/* sx_pipeline_ctx — what the workflows of one run share (private to core/pipeline):
 *   settings   every option the run reads, resolved once at its start (sx_pl_settings_resolve;
 *              an option name the table does not define is an error there, never a 0 here)
 *   context    stage timing and progress, the log, metrics and files for result.json, inputs
 *              (sx_pipeline_context.c)
 *   graph      neighbours + UMAP + Leiden shared by integrate and project (sx_pipeline_graph.c)
 *   outputs    adata.h5ad with provenance, plots, result.json (sx_pipeline_outputs.c) and the
 *              result tables (sx_pipeline_tables.c)
 *   workflows  sx_pl_integrate / sx_pl_project / sx_pl_transfer (one file each); the label
 *              transfer step shared by project and transfer (sx_pipeline_transfer.c)
 * sx_pipeline.c only resolves, opens the run and dispatches. */
#ifndef SX_PIPELINE_CTX_H
#define SX_PIPELINE_CTX_H

#include <stdint.h>

#include "sx_dataset.h"
#include "sx_pipeline_internal.h"
#include "sx_prep.h"
#include "sx_transfer.h"

/* ---- settings ---- */
typedef struct sx_pl_settings {
    const char *const *inputs;    /* the job's, else the data_list option (borrowed) */
    int n_inputs;
    sx_prep_opts prep;            /* preprocessing, resolved (ATAC defaults applied in prep) */
    int atac;                     /* profile ATAC: no MT filter logged */
    const char *const *batch_categories; /* borrowed from the options */
    int n_batch_categories;
    const char *batch_key;
    int join_outer;
    uint64_t seed;
    int threads;                  /* the job's, else the option (0 = all cores) */
    int eval;                     /* inference with running statistics */
    int ignore_umap, joint_umap, repeat, assess;
    int plots, leiden;          /* projection: figures, Leiden carried to the query */
    int reference_cells;        /* projection: the output holds the reference's cells too */
    long long chunk_cells;        /* projection: cells per streamed slab (0 = whole file) */
    /* training */
    long long batch_size, max_iteration;
    double lr;
    int patience;
    int early_stopping_scalex;    /* SCALEX's rule instead of scalexd's (patience_steps too) */
    long long patience_steps;
    const char *impute;           /* NULL = none */
    /* labels */
    const char *label;            /* the option's value or its default ("celltype") */
    const char *label_given;      /* NULL unless the option was set */
    int k;                        /* neighbours voting */
    int unknown;                  /* "Unknown" thresholds applied (--unknown on) */
    double min_confidence, min_mapping_score; /* the thresholds */
    int isotonic;                 /* --confidence isotonic: refitted on held-out cells */
    const char *rep;              /* obsm searched by label transfer */
} sx_pl_settings;

/* Resolve the settings of a job from its options, once (the number of inputs decides the
 * batch column of several files). SX_EINTERNAL when the pipeline asks for an option the
 * table lacks or with another type (a misspelt name in the code). */
int sx_pl_settings_resolve(const sx_job_spec *job, sx_pl_settings *s, sx_status *st);

/* ---- context ---- */
#define SX_PL_MAX_STAGES 16


typedef struct sx_pl_ctx {
    const sx_job_spec *job;
    const sx_pipeline_opts *o;  /* only for the settings-in-force records (log, uns) */
    sx_pl_settings set;
    const sx_progress *prog;
    sx_pl_log log;
    const char *outdir;
    double t0, t_stage;
    const char *stage_name[SX_PL_MAX_STAGES];
    double stage_secs[SX_PL_MAX_STAGES];
    int n_stages;
    sx_sb metrics;   /* JSON members for result.json ("name": value, ...) */
    sx_sb files;     /* JSON array members */
    sx_sb qc;        /* the QC report object for result.json (sx_pipeline_qc.h); empty: none */
    char (*sha)[65]; /* per input (set.inputs); "" for folders */
    sx_pl_refrows left_ref; /* a projection's reference cells not in its output */
} sx_pl_ctx;

/* Start the next stage (closes the timing of the previous one; NULL: just close) and
 * report it; SX_ECANCELED when the job was canceled. */
int sx_pl_stage(sx_pl_ctx *c, const char *name);
/* A named number for result.json's metrics, a file for its files list. */
void sx_pl_metric(sx_pl_ctx *c, const char *name, double v);
void sx_pl_file_out(sx_pl_ctx *c, const char *name);
/* "<outdir>/<name>" (caller frees). */
char *sx_pl_out_path(const sx_pl_ctx *c, const char *name);
/* The job's threads resolved: the option, or every online core when it is 0. */
int sx_pl_threads(const sx_pl_ctx *c);
/* Read every input (sha256 of files recorded) and concatenate them, one batch each. */
sx_dataset *sx_pl_read_inputs(sx_pl_ctx *c, int join_outer, sx_status *st);
/* The preprocessing record in the log, as SCALEX prints it. */
void sx_pl_log_prep(sx_pl_ctx *c, const sx_prep_result *pr, const sx_dataset *d);
/* Inference options of the run; perm (n) receives the seeded walk order. */
void sx_pl_infer_opts(const sx_pl_ctx *c, sx_nn_infer_opts *io, int64_t *perm, int64_t n);
/* The settings in force as one log line. */
void sx_pl_log_settings(sx_pl_ctx *c);
/* An SX_ENOMEM status. */
int sx_pl_oom(sx_status *st);

/* ---- graph ---- */
/* Neighbours (k = 30), fuzzy graph, UMAP and Leiden on a latent: umap (n x 2), *leiden
 * (owned, n codes) and the curve parameters a, b. */
int sx_pl_embed_graph(sx_pl_ctx *c, const double *latent, int64_t n, int dim, float *umap,
                      int32_t **leiden, int *n_clusters, double *a, double *b, sx_status *st);
/* obs "leiden": categorical "0".."n_clusters-1". */
int sx_pl_add_leiden(sx_frame *obs, const int32_t *codes, int n_clusters, sx_status *st);
/* obsm X_umap and X_scalex_umap from a float layout. */
int sx_pl_set_umap(sx_dataset *d, const float *umap, int64_t n, sx_status *st);

/* ---- outputs ---- */
extern const char *const sx_pl_label_like[]; /* "celltype", "cell_type", NULL */
/* uns: scanpy's neighbors/umap/leiden records (with_graph) + scalexd provenance. */
void sx_pl_uns_provenance(sx_pl_ctx *c, sx_uns *root, double a, double b, int with_graph);
int sx_pl_write_adata(sx_pl_ctx *c, const sx_dataset *d, sx_status *st);
/* adata.h5ad in two steps (sx_h5ad_writer.h), with sx_pl_write_adata's options: opened (and
 * X put) early, then the rest of d written, renamed into place and listed in result.json by
 * sx_pl_finish_adata, which frees h whatever the outcome (sx_h5ad_writer_abort otherwise). */
struct sx_h5ad_writer;
int sx_pl_open_adata(sx_pl_ctx *c, struct sx_h5ad_writer **h, sx_status *st);
int sx_pl_finish_adata(sx_pl_ctx *c, struct sx_h5ad_writer *h, const sx_dataset *d,
                       sx_status *st);
/* 1 when the run's figures (qc.png, confusion.png, umap.*) and labels.csv are made on
 * request rather than with the run: a projection with plots off (the daemon's /map, whose
 * API draws and makes them from what the run kept: sx_pipeline_render_figure,
 * srv_results_download).
 * Such a run still lists them in result.json, and writes adata.h5ad for speed. */
int sx_pl_on_request(const sx_pl_ctx *c);
/* Category codes of a label column (see sx_pipeline_outputs.c). */
const int32_t *sx_pl_label_codes(const sx_column *col, int64_t n, int32_t **own_codes,
                                 char ***own_cats, int *n_cats, const char *const **cats,
                                 sx_status *st);
/* umap.png/.pdf: one panel per named column present in obs (NULL names skipped). */
int sx_pl_plot_umap(sx_pl_ctx *c, const sx_dataset *d, const float *umap32,
                    const char *const *cols, int n_cols, const uint8_t *highlight,
                    const char *title, sx_status *st);
/* The result tables, then result.json (n_query < 0: none). The last step of every run. */
int sx_pl_finish(sx_pl_ctx *c, const sx_dataset *d, int64_t n_query, sx_status *st);

/* Input i's SHA-256 into c->sha[i] (provenance): the digest the job spec carries for it
 * (job->input_sha256, the daemon's record of the upload) when there is one, else the file
 * hashed now; folders get none. */
int sx_pl_hash_input(sx_pl_ctx *c, int i, sx_status *st);
/* The job spec's digest of input i (valid hex), or NULL when the job must hash the file. */
const char *sx_pl_given_sha(const sx_pl_ctx *c, int i);

/* ---- label transfer (shared by project and transfer) ---- */
/* Transfer the reference's labels (ref_col) onto the query cells; scores against truth (the
 * query's own labels, may be NULL). *out: owned result. */
typedef struct sx_pl_transfer_in {
    const double *ref_lat;
    int64_t n_ref;
    const sx_column *ref_col;
    const double *q_lat;
    int64_t nq;
    int dim;
    const char *const *q_names;
    const sx_column *truth;
    const sx_column *ref_batch;   /* reference batches: leave-one-batch-out calibration */
    const struct sx_knn *nb;      /* q_lat's neighbours in ref_lat, searched once for every
                                     label column (at least sx_pl_transfer_k columns;
                                     borrowed), or NULL: each transfer searches its own */
    const sx_reference *ref;      /* the reference ref_lat is from, when its calibrations
                                     may serve (sx_reference_calib_find), or NULL */
} sx_pl_transfer_in;
int sx_pl_transfer_labels(sx_pl_ctx *c, const sx_pl_transfer_in *in, const char *label,
                          sx_transfer_result **out, sx_status *st);
/* The transfer options of settings s on a reference of n_ref cells (ref_batch NULL). */
void sx_pl_transfer_opts(const sx_pl_settings *s, int64_t n_ref, sx_transfer_opts *to);
/* Batch codes (>= 0, missing: 0) of col's n cells, owned by the caller; NULL on error. */
int32_t *sx_pl_batch_codes(const sx_column *col, int64_t n, sx_status *st);
/* The label texts of col's n cells into out[n] (borrowed from col; "" for a number). */
void sx_pl_ref_label_texts(const sx_column *col, int64_t n, const char **out);
/* Neighbours per query cell sx_pl_transfer_labels uses on a reference of n_ref cells. */
int sx_pl_transfer_k(const sx_pl_ctx *c, int64_t n_ref);
/* Every label column of the label option ("a,b"; sx_pipeline_trust.c): transfer each from
 * ref_obs, write the labels table, add to out's rows [row0, row0 + nq) obs
 * "<label>_transfer", "_transfer_confidence", "<label>_mapping_score", obsm
 * "<label>_probabilities", uns "<label>_classes", and "<fine>_hierarchy_conflict" for a
 * fine/coarse pair that nests in the reference. base: the latents, cells and ref_batch
 * (ref_col/truth ignored). */
int sx_pl_transfer_all(sx_pl_ctx *c, const sx_pl_transfer_in *base, const sx_frame *ref_obs,
                       const sx_frame *q_obs, const char *labels, sx_dataset *out, int64_t row0,
                       sx_status *st);
/* 1 when name is one of the columns of a label option "a,b". */
int sx_pl_label_listed(const char *labels, const char *name);
/* The first label of a label option "a,b" into buf ("a"). */
const char *sx_pl_first_label(const char *labels, char *buf, size_t cap);

/* ---- workflows ---- */
int sx_pl_integrate(sx_pl_ctx *c, sx_status *st);
void sx_pl_assess(sx_pl_ctx *c, sx_dataset *d, const double *latent, int dim, const float *umap);
int sx_pl_project(sx_pl_ctx *c, sx_status *st);
int sx_pl_transfer(sx_pl_ctx *c, sx_status *st);

#endif
