/* sx_pipeline — SCALEX's workflows (integrate, project, label transfer) as one module
 * shared by the `scalex` CLI and the scalexd daemon. Both are thin callers: the CLI turns
 * argv into sx_pipeline_opts, the daemon turns a job's JSON "options" object into the
 * same, and both call sx_pipeline_run with an output directory.
 *
 * Options are validated against one table (sx_pipeline_option_specs) that carries
 * SCALEX's names, types, defaults and help, so `--help`, the API's request validation
 * ("unknown field", "wrong type") and the OpenAPI document all come from one place.
 *
 * Output directory (what SCALEX writes, plus the single-file reference):
 *   OUTDIR/adata.h5ad          obsm latent, X_umap; obs batch, leiden, projection, <label>_transfer,
 *                              <label>_transfer_confidence; uns provenance (version, settings,
 *                              inputs + sha256)
 *   OUTDIR/checkpoint/model.h5 the model file (weights, BN stats, genes, domains, scale factors)
 *   OUTDIR/reference.h5        (integrate) model + reference latent + UMAP layout + obs labels:
 *                              what a daemon loads as a reference
 *   OUTDIR/labels.csv          (project/transfer with a label) cell,label,confidence
 *   OUTDIR/labels.sxt, latent.sxt, umap.sxt  the result tables the daemon pages (sx_jobdir.h);
 *                              a projection's hold its query, refcells.json says where its
 *                              reference cells are (the reference's tables: sx_reference_tables)
 *   OUTDIR/log.txt, umap.png, umap.pdf, confusion.png/.csv (when true labels exist)
 *   OUTDIR/result.json         small summary: job type, n_obs, metrics, files, timings; a
 *                              projection adds "qc" (sx_pipeline_qc.h)
 *   OUTDIR/qc.png              (project) the QC figure: genes matched per rule, mapping score,
 *                              cells per label
 * A projection with plots off (the daemon's /map) leaves umap.*, qc.png, confusion.png and
 * labels.csv to be made on request from the tables, confusion.csv and result.json
 * (sx_pipeline_render_figure; the daemon's srv_results_download), still listing them (but
 * umap.*) in result.json.
 */
#ifndef SX_PIPELINE_H
#define SX_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "sx_error.h"
#include "sx_frame.h"
#include "sx_nn.h"
#include "sx_jobtypes.h"
#include "sx_progress.h"

/* The spec of one option by name (NULL when unknown). */
const sx_popt_spec *sx_pipeline_option_spec(const char *name);

/* The table of every option; *n receives its length. Static storage. */
const sx_popt_spec *sx_pipeline_option_specs(int *n);

/* A set of option values (opaque). Owned by the caller: sx_pipeline_opts_free. */
typedef struct sx_pipeline_opts sx_pipeline_opts;
sx_pipeline_opts *sx_pipeline_opts_new(void);
void sx_pipeline_opts_free(sx_pipeline_opts *o);
/* Set from text (CLI) with type checking against the table: unknown name -> SX_EINVAL
 * "unknown option 'x'", bad value -> SX_EINVAL naming the expected type. LIST values are
 * appended one by one. */
int sx_pipeline_opts_set(sx_pipeline_opts *o, const char *name, const char *value, sx_status *st);
/* Typed getters: the value set, else the table default. */
int sx_pipeline_opts_bool(const sx_pipeline_opts *o, const char *name);
long long sx_pipeline_opts_int(const sx_pipeline_opts *o, const char *name);
double sx_pipeline_opts_float(const sx_pipeline_opts *o, const char *name);
const char *sx_pipeline_opts_str(const sx_pipeline_opts *o, const char *name); /* NULL if unset, no default */
int sx_pipeline_opts_list(const sx_pipeline_opts *o, const char *name, const char *const **vals);
int sx_pipeline_opts_is_set(const sx_pipeline_opts *o, const char *name);
/* Set every member of a JSON object of options (strings, numbers, booleans, arrays of those;
 * null = not set) through sx_pipeline_opts_set: the daemon's and job.json's path. */
struct json_t;
int sx_pipeline_opts_from_json(sx_pipeline_opts *o, const struct json_t *options, sx_status *st);

typedef struct sx_job_spec {
    sx_job_type type;
    const char *const *inputs;  /* input files/folders (any format sx_io reads) */
    int n_inputs;
    const char *reference;      /* project/transfer: a reference (an integrate OUTDIR, or its reference.h5) */
    const char *outdir;         /* created if missing; results written under temp names + renamed */
    const sx_pipeline_opts *opts;
    int threads;                /* compute threads for this job (0 = all cores) */
    /* added: an already loaded reference (the daemon's cache); when set it is used instead
     * of loading `reference` (borrowed, not modified) */
    const struct sx_reference *reference_obj;
    /* added: project: a gene table file (query gene, reference gene; sx_genematch.h) applied
     * before the reference folder's genes.tsv would be; NULL = that file when present */
    const char *gene_table;
    /* the size budget every input is read under (sx_io_limits.h; borrowed); NULL = defaults */
    const struct sx_io_limits *limits;
    /* per input, the SHA-256 hex digest its store recorded (the daemon hashes an upload as it
     * arrives): the outputs' provenance uses it instead of hashing the file again (1.4 CPU-s
     * for 1.2 GB); NULL: each input is hashed by the job (borrowed) */
    const char *const *input_sha256;
} sx_job_spec;

/* A trained reference as a daemon keeps it in memory: the model plus the reference cells'
 * latent, UMAP layout and obs labels. Written by integrate as OUTDIR/reference.h5 (the model
 * file of sx_nn_model_save, which sx_nn_model_load also reads, plus a group "reference":
 * obs_names, latent (n x Z float64), umap (n x 2 float32, absent with ignore_umap),
 * obs/<column> (strings) listed by obs_columns, attributes format="scalexd-reference",
 * format_version, umap_a, umap_b). */
typedef struct sx_reference {
    sx_nn_model *model;
    int64_t n_cells;
    int dim;              /* latent width */
    double *latent;       /* n_cells x dim */
    float *umap;          /* n_cells x 2, or NULL */
    sx_frame *obs;        /* index = cell names; categorical columns (batch, leiden, labels) */
    double umap_a, umap_b;
    char *path;           /* the file it was read from */
    void *mapped;         /* non-NULL: latent/umap point into this read-only map (munmap'd by free) */
    size_t mapped_len;
    /* resident search index of latent (sx_knn.h), owned; NULL: none (a small reference, whose
     * searches are exact, or not built). Built once (sx_reference_index_build), kept in
     * reference.map, so a projection searches it instead of building a graph per job. */
    struct sx_knn_index *index;
    /* label-transfer calibrations fitted once per label column with a job's default options
     * (sx_reference_calib_build; kept in reference.map), owned; NULL / 0: none */
    struct sx_ref_calib *calibs;
    int n_calibs;
} sx_reference;

/* Load from a reference.h5, or from an integrate OUTDIR holding one (from its reference.map when
 * that is present and current: the cells mapped read-only). Caller frees. */
sx_reference *sx_reference_load(const char *path, sx_status *st);
/* Write DIR/reference.map, the flat read-only form of r's cells that sx_reference_load maps
 * (format: sx_reference_map.c). DIR must hold the reference.h5 r was loaded from. */
int sx_reference_map_write(const sx_reference *r, const char *dir, sx_status *st);
/* Open DIR/reference.map (SX_ENOTFOUND when absent, SX_ESTATE when older than reference.h5). */
sx_reference *sx_reference_map_open(const char *dir, sx_status *st);
/* Write r's cells as result tables (sx_jobdir.h): DIR/umap.sxt, its layout (the umap columns,
 * set = "reference", label = the reference's cell-type column; none when r has no layout),
 * rows in a seeded random order so any prefix is a uniform sample; DIR/latent.sxt, its latent
 * in r's order; then DIR/refcells.json, their fingerprints, which a job's refcells.json
 * matches when its reference rows are these. Kept while newer than DIR/reference.h5. */
int sx_reference_tables(const sx_reference *r, const char *dir, sx_status *st);
void sx_reference_free(sx_reference *r);

/* Fit r's label-transfer calibrations (sx_reference_calib.c): one per categorical obs column
 * other than batch and leiden, with the transfer options a job gets by default, on threads
 * threads (0 = all). Call when a reference is loaded or registered, before it is shared; a
 * job with those options on that column then skips its own fit. SX_OK also when r has none
 * to fit or already has them; a column that cannot be fitted is left to its jobs. */
int sx_reference_calib_build(sx_reference *r, int threads, sx_status *st);
/* 1 when r has a label column and no calibrations (its map was written without them). */
int sx_reference_calib_missing(const sx_reference *r);
/* The calibration fitted for label column `label` with exactly the options o, or NULL. */
struct sx_transfer_opts;
struct sx_transfer_calib;
const struct sx_transfer_calib *sx_reference_calib_find(const sx_reference *r, const char *label,
                                                        const struct sx_transfer_opts *o);
/* Bytes of r's calibrations as reference.map keeps them (0: none); written through put. */
size_t sx_reference_calib_bytes(const sx_reference *r);
int sx_reference_calib_write(const sx_reference *r, int (*put)(void *, const void *, size_t),
                             void *user);
/* Read calibrations written by sx_reference_calib_write into r (replacing its own); every
 * size checked against len (SX_EFORMAT, r then holds none). */
int sx_reference_calib_open(sx_reference *r, const void *bytes, size_t len, sx_status *st);
void sx_reference_calib_free(sx_reference *r);

/* Build r->index when r is large enough that a search would build a graph of its own (opts
 * NULL: sx_knn_opts_init's approx_from cells; method SX_KNN_APPROX: whatever its size) and it
 * has none; the graph's seed is opts->seed (0 by default), so every job searches the same one.
 * Call when a reference is loaded or registered, before it is shared. SX_OK also when none is
 * wanted; on error r is unchanged (searches then build their own). */
struct sx_knn_opts;
int sx_reference_index_build(sx_reference *r, const struct sx_knn_opts *opts, sx_status *st);
/* 1 when r is large enough to want a resident index (default opts) and has none: e.g. its map
 * was written without one, or the map's index section was damaged and ignored. */
int sx_reference_index_missing(const sx_reference *r);
/* Bytes of r's resident index (0 without one), for the reference's memory footprint. */
size_t sx_reference_index_bytes(const sx_reference *r);

/* Run one job to completion. Progress stages: "read", "preprocess", "train", "encode",
 * "knn" (a projection's one neighbour search), "umap", "leiden", "transfer", "write". Returns SX_OK or an SX_E* code with st filled
 * (SX_EGENES when a query shares too few genes with the reference, SX_ECANCELED on cancel). */
int sx_pipeline_run(const sx_job_spec *job, const sx_progress *prog, sx_status *st);

/* Draw name ("umap.png" or "umap.pdf") of a finished job in outdir from its UMAP table
 * (panels projection, batch, label; query over the grey reference) and store it there, for
 * jobs run without plots (the daemon's maps). SX_ENOTFOUND when the job has no UMAP table. */
int sx_pipeline_render_umap(const char *outdir, const char *name, sx_status *st);
/* Draw a figure a finished job in outdir left to be drawn on request and store it there:
 * umap.png / umap.pdf (sx_pipeline_render_umap), qc.png (from result.json's QC report and
 * labels.sxt) or confusion.png (from confusion.csv): the figure the job would have drawn.
 * SX_ENOTFOUND when the job has nothing to draw it from, SX_EINVAL for another name. */
int sx_pipeline_render_figure(const char *outdir, const char *name, sx_status *st);

#endif
