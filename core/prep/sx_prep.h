/* sx_prep — SCALEX preprocessing (ALGORITHM.md §1.5, §2, §3, §5.3), sparse end to end.
 *
 * Reproduces SCALEX v1.0.0 + scanpy 1.9.8 step by step (golden/prep/ is the oracle):
 *   RNA : drop ERCC/MT-/mt- genes, filter cells (min_features) and genes (min_cells),
 *         normalize_total (float32 like scanpy), log1p, raw = log-normalized, seurat HVG per
 *         batch with the batch-count ranking, subset, MaxAbs per batch (or global).
 *   ATAC: v1.0.0 profile: binarize (x > 1 -> 1), filters, the same HVG, MaxAbs. No raw.
 * Where scanpy computes in float32 we do too (normalize, log1p, expm1, MaxAbs with a float32
 * reciprocal); where it accumulates in float64 (HVG means/variances) we accumulate in double
 * in the same order, so results agree to rounding.
 *
 * HVG variants (ALGORITHM.md S3, §13.5): SCALEX v1.0.0 asks scanpy for a subset with
 * inplace=False; scanpy >= 1.9 then returns a table and leaves the data alone, so v1.0.0
 * really trains on every filtered gene. SX_HVG_SUBSET (default) is the intended behaviour
 * (HEAD, scanpy < 1.9); SX_HVG_LITERAL reproduces what v1.0.0 does on scanpy >= 1.9. Both
 * compute and report the HVG table.
 *
 * Memory: the input matrix is filtered, normalized and log-transformed in place and then
 * becomes `raw`; the model matrix is the (smaller) HVG subset, scaled. No dense copy is made.
 */
#ifndef SX_PREP_H
#define SX_PREP_H

#include <stdint.h>

#include "sx_dataset.h"
#include "sx_error.h"
#include "sx_genematch.h"
#include "sx_progress.h"

typedef enum sx_profile { SX_PROFILE_RNA = 0, SX_PROFILE_ATAC = 1 } sx_profile;

/* MaxAbs scaling group: per batch (SCALEX v1.0.0-1.0.2, the paper; default), one global
 * scaler (SCALEX >= 1.0.3), or none. */
typedef enum sx_scale_mode { SX_SCALE_BATCH = 0, SX_SCALE_GLOBAL = 1, SX_SCALE_NONE = 2 } sx_scale_mode;

typedef enum sx_hvg_mode { SX_HVG_SUBSET = 0, SX_HVG_LITERAL = 1 } sx_hvg_mode;

typedef struct sx_prep_opts {
    sx_profile profile;
    const char *batch_name;   /* obs column of the domains; NULL = "batch". "a,b" joins two */
    int64_t min_features;     /* < 0: profile default (RNA 600, ATAC 100) */
    int64_t min_cells;        /* < 0: 3 */
    int64_t n_top_features;   /* < 0: profile default (RNA 2000, ATAC 100000); 0: keep all */
    double target_sum;        /* 0: 10000 (what SCALEX passes for None); < 0: scanpy's None =
                               * median of the nonzero cell totals */
    int keep_mt;              /* keep ERCC/MT-/mt- genes (HEAD option; v1.0.0 always drops) */
    sx_scale_mode scale;
    sx_hvg_mode hvg_mode;
    int hvg_nan_neginf;       /* per-batch HVG cut: NaN counts as -inf (scanpy >= 1.10)
                               * instead of 0 (scanpy <= 1.9, default) */
    int processed;            /* input already preprocessed: no filter/normalize/HVG */
    int processed_scale;      /* with processed/use_layer: 0 = no scaling (v1.0.0),
                               * 1 = global MaxAbs (v1.0.4/HEAD) */
    const char *use_layer;    /* NULL or "X": X; else a layer name (implies processed) */
    double fraction;          /* > 0: keep int(fraction * n) cells (scanpy subsample) */
    int64_t n_obs;            /* > 0: keep n_obs cells (wins over fraction) */
    uint32_t subsample_seed;  /* numpy seed of the subsample (scanpy default 0) */
    int64_t chunk_size;       /* rows between progress reports / cancel polls (0: 20000) */
    int n_threads;            /* sx_prep_apply_reference_rows: threads of the streamed pass
                               * (<= 1: the caller's alone); the result does not depend on it */
} sx_prep_opts;

/* Defaults: RNA, batch_name "batch", per-batch scaling, HVG subset, everything else off. */
void sx_prep_opts_init(sx_prep_opts *o);

/* What the preprocessing did and produced. Owned arrays; free with sx_prep_result_free. */
typedef struct sx_prep_result {
    /* domains, in category order (ALGORITHM.md §1.5): index = DSBN unit */
    int32_t n_domains;
    char **domains;
    int32_t *domain_of_cell;  /* n_cells_out codes into domains */
    /* MaxAbs maxima: scale_rows x n_genes_out (row d = domain d for per-batch scaling, one
     * row for global, 0 rows for none); 0 where a gene is all-zero in the group (the scaler
     * then uses 1). Widened float32 values. */
    int32_t scale_rows;
    double *scale;
    sx_scale_mode scale_mode;
    /* counts of the steps (the removal log) */
    int64_t n_cells_in, n_genes_in;
    int64_t n_genes_mt;        /* ERCC/MT-/mt- genes dropped */
    int64_t n_cells_filtered;  /* cells below min_features */
    int64_t n_genes_filtered;  /* genes below min_cells */
    int64_t n_cells_subsampled_out;
    int64_t n_cells_out, n_genes_out;
    int64_t n_hvg;             /* genes flagged highly_variable (0 when no HVG step) */
    double target_sum_used;
    /* settings as one JSON object (for uns and the model file) */
    char *settings_json;
} sx_prep_result;

void sx_prep_result_free(sx_prep_result *r);

/* Preprocess a concatenated raw dataset in place.
 * On success d holds: X = processed matrix (float32 CSR, values in [0, 1] when scaled), var =
 * its genes with n_cells and the HVG columns (means, dispersions, dispersions_norm,
 * highly_variable, highly_variable_nbatches, highly_variable_intersection), obs = kept cells
 * with n_genes and `batch` (categorical, the domains), raw_X/raw_var = the log-normalized
 * matrix over every gene that passed the filters (RNA only), uns log1p/hvg/scalex_preprocess.
 * `out` (zeroed first) receives domains, scale factors and counts. Steps are logged through
 * SX_INFO and reported to p as stage "preprocess".
 * Errors: SX_EINVAL (options), SX_ENOTFOUND (batch column / layer), SX_EDATA (no cell or gene
 * survives: the message says which threshold to lower), SX_ECANCELED. On error d may be
 * partly processed and must be freed. */
int sx_prep_run(sx_dataset *d, const sx_prep_opts *o, sx_prep_result *out, const sx_progress *p,
                sx_status *st);

/* ---- reindexing onto a reference gene list (projection) ---- */

typedef struct sx_reindex_opts {
    double min_fraction;  /* error below this fraction of reference genes present (0.5) */
    int64_t min_genes;    /* ... or fewer than min(min_genes, n_ref) present (250) */
    int list_missing;     /* how many missing names the message/report lists (20) */
    const sx_gene_table *gene_table; /* applied first (sx_genematch.h); NULL = none (borrowed) */
} sx_reindex_opts;

void sx_reindex_opts_init(sx_reindex_opts *o);

typedef struct sx_reindex_report {
    int64_t n_ref;        /* reference genes */
    int64_t n_present;    /* found in the query (any rule of sx_genematch.h) */
    int64_t n_by_id;      /* of those, found through a var identifier column */
    double fraction;      /* n_present / n_ref */
    int64_t n_missing;
    char **missing;       /* first list_missing missing names (owned) */
    int64_t n_missing_listed;
    sx_genematch_report match; /* how many genes each rule matched, ambiguous keys (owned) */
} sx_reindex_report;

void sx_reindex_report_free(sx_reindex_report *r);

/* Match reference genes to the query's columns: src[k] = query column of reference gene k or
 * -1, by the rules of sx_genematch.h (o->gene_table first, var names, identifier columns
 * such as gene_ids or gene_symbols found by content, Ensembl versions ignored, then case).
 * Fills rep (may be NULL). Never fails on low overlap. */
int sx_prep_match_genes(const sx_frame *var, const char *const *ref, int64_t n_ref, int64_t *src,
                        const sx_reindex_opts *o, sx_reindex_report *rep, sx_status *st);

/* Reindex X of d onto the reference list: columns = reference genes in reference order,
 * absent genes all-zero, other query genes dropped. var becomes the reference names.
 * Returns SX_EGENES (naming the first missing genes) when the overlap is below the thresholds
 * of o (NULL = defaults); d is unchanged then. */
int sx_prep_reindex(sx_dataset *d, const char *const *ref, int64_t n_ref,
                    const sx_reindex_opts *o, sx_reindex_report *rep, sx_status *st);

/* Projection preprocessing (ALGORITHM.md §5.3): domain column, ERCC/MT removal, cell filter
 * (min_features), no gene filter, normalize_total, log1p, raw = all query genes, reindex to
 * `ref` (no HVG), MaxAbs with the query's own maxima (o->scale: per query batch or global).
 * As in SCALEX v1.0.0, when some reference genes are missing the scaling reciprocal is taken
 * in double (its reindex builds a float64 matrix). Same outputs as sx_prep_run. */
int sx_prep_apply_reference(sx_dataset *d, const char *const *ref, int64_t n_ref,
                            const sx_prep_opts *o, const sx_reindex_opts *ro,
                            sx_prep_result *out, sx_reindex_report *rep, const sx_progress *p,
                            sx_status *st);

/* ---- building blocks (exposed for tests, the CLI and the benchmark) ---- */

/* Domain column (ALGORITHM.md §1.5): sets obs "batch" to a categorical (category order kept
 * if it was categorical, else sorted: strings lexicographic, numbers numeric), "batch" for
 * every cell when absent. Returns codes (n_obs, owned) and names (owned). */
int sx_prep_domains(sx_frame *obs, const char *batch_name, int32_t **codes, char ***names,
                    int32_t *n_names, sx_status *st);

/* scanpy subsample: np.random.seed(seed); np.random.choice(n, k, replace=False), i.e. the
 * first k of the legacy MT19937 permutation of 0..n-1. idx must hold n entries (the whole
 * permutation is written; the first k are the sample, in numpy's order). */
int sx_prep_subsample_indices(int64_t n, uint32_t seed, int64_t *idx, sx_status *st);

/* Per-batch seurat HVG tables and the combined ranking (ALGORITHM.md §2.1), scanpy 1.9.8. */
typedef struct sx_hvg_table {
    int64_t n_genes;
    int32_t n_batches;
    /* per batch b, gene g at [b * n_genes + g] */
    double *b_means, *b_disp, *b_disp_norm;
    uint8_t *b_hv, *b_present;
    int32_t *b_bin;           /* -1 when absent */
    double *b_cutoff;         /* n_batches */
    double *b_edges;          /* n_batches x 21 (pandas cut edges, first lowered) */
    /* combined */
    double *means, *dispersions, *dispersions_norm;
    int64_t *nbatches;
    uint8_t *intersection, *highly_variable;
    int64_t *rank_order;      /* all genes in final ranking order */
    int64_t n_selected;
} sx_hvg_table;

/* X: cells x genes log data; domain: code per row in [0, n_batches). n_top > 0.
 * nan_neginf: scanpy >= 1.10 per-batch rule. gene_names fix the tie order. */
sx_hvg_table *sx_prep_hvg(const sx_csr *X, const int32_t *domain, int32_t n_batches,
                          const char *const *gene_names, int64_t n_top, int nan_neginf,
                          sx_status *st);
void sx_hvg_table_free(sx_hvg_table *t);

/* In-place kernels. */
/* normalize_total exactly as scanpy 1.9.8 on float32: total = numpy float32 row sum, x *=
 * fl32(1 / fl32(total / target)) (total 0 -> 1). target < 0: median of nonzero totals.
 * totals (may be NULL) receives the float32 totals widened. Returns the target used. */
double sx_prep_normalize_total(sx_csr *X, double target, double *totals);
void sx_prep_log1p(sx_csr *X);
void sx_prep_binarize(sx_csr *X);
/* MaxAbs maxima of each group: out[g * n_cols + j] (zeroed first); group[i] per row, or NULL
 * for one group. */
void sx_prep_maxabs_fit(const sx_csr *X, const int32_t *group, int32_t n_groups, double *out);
/* Scale: x = fl32(x * fl32(1 / a)) (sklearn), or with recip_double x = fl32(x * (1.0 / a)). */
void sx_prep_maxabs_apply(sx_csr *X, const int32_t *group, const double *maxabs, int recip_double);

#endif
