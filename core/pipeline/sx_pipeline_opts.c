/* sx_pipeline_opts — the one option table (SCALEX's names and defaults) and typed values. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sx_alloc.h"
#include "sx_pipeline.h"

#define I SX_JOB_INTEGRATE
#define P SX_JOB_PROJECT
#define T SX_JOB_TRANSFER
#define BIG 1e15

/* Defaults verified against ALGORITHM.md (§1.3, §1.5, §2, §4.5, §6.1, §8, §9) and SCALEX.py.
 * min_features / n_top_features: SCALEX's command line passes None, which its RNA routine
 * turns into 600 / 2000 and its ATAC routine into 100 / 100000; the table shows the RNA
 * values and the pipeline applies the ATAC ones when the option was not given. */
static const sx_popt_spec specs[] = {
    {"data_list", SX_POPT_LIST, NULL,
     "input files or folders (h5ad, 10x mtx folder/.h5, csv/txt); one batch per file", I | P,
     NULL, 0, 0},
    {"batch_categories", SX_POPT_LIST, NULL,
     "batch label of each input file, in input order (default: 0, 1, ...)", I | P, NULL, 0, 0},
    {"join", SX_POPT_STRING, "inner",
     "how several inputs combine their genes: inner (intersection) or outer (union); "
     "a projection query always uses outer", I, "inner|outer", 0, 0},
    {"batch_key", SX_POPT_STRING, "batch", "obs column that receives the per-file batch label",
     I | P, NULL, 0, 0},
    {"batch_name", SX_POPT_STRING, "batch",
     "obs column used as the batch (domain); 'a,b' joins two columns", I | P, NULL, 0, 0},
    {"profile", SX_POPT_STRING, "RNA", "data type: RNA or ATAC", I | P, "RNA|ATAC", 0, 0},
    {"min_features", SX_POPT_INT, "600",
     "remove cells with fewer expressed genes (ATAC: 100 unless given)", I | P, NULL, 0, BIG},
    {"min_cells", SX_POPT_INT, "3", "remove genes expressed in fewer cells", I, NULL, 0, BIG},
    {"n_top_features", SX_POPT_INT, "2000",
     "number of highly variable genes (ATAC: 100000 unless given; 0 or less keeps all)", I,
     NULL, 0, 0},
    {"target_sum", SX_POPT_FLOAT, NULL, "counts per cell after normalization (none = 10000)",
     I | P, NULL, 1e-12, BIG},
    {"keep_mt", SX_POPT_BOOL, "false", "keep ERCC/MT- genes (removed by default)", I, NULL, 0, 0},
    {"scale", SX_POPT_STRING, "batch",
     "MaxAbs scaling per batch (the paper, SCALEX <= 1.0.2) or global (SCALEX >= 1.0.3)", I | P,
     "batch|global", 0, 0},
    {"processed", SX_POPT_BOOL, "false", "inputs are already preprocessed (no filters, HVG)",
     I | P, NULL, 0, 0},
    {"use_layer", SX_POPT_STRING, "X", "matrix to use: X, a layer name, or raw (implies processed)",
     I | P, NULL, 0, 0},
    {"fraction", SX_POPT_FLOAT, NULL, "randomly keep this fraction of the cells", I, NULL, 1e-12,
     1},
    {"n_obs", SX_POPT_INT, NULL, "randomly keep this many cells", I, NULL, 1, BIG},
    {"batch_size", SX_POPT_INT, "64", "training minibatch size", I, NULL, 2, 1e7},
    {"lr", SX_POPT_FLOAT, "2e-4", "Adam learning rate", I, NULL, 1e-12, 10},
    {"max_iteration", SX_POPT_INT, "30000",
     "training steps (whole epochs are run: ceil(max_iteration / (N / batch_size)))", I, NULL, 1,
     1e9},
    {"patience", SX_POPT_INT, "10",
     "early stopping: epochs without a lower epoch loss before training stops and the best "
     "epoch is kept (SCALEX: 10; raise it to train all max_iteration steps)", I, NULL, 1, 1e9},
    {"early_stopping", SX_POPT_STRING, "steps",
     "early-stopping rule: steps (a stop also needs patience_steps steps since the best "
     "epoch, so a small set with a few steps per epoch trains enough) or scalex (SCALEX's: "
     "patience epochs only)", I, "steps|scalex", 0, 0},
    {"patience_steps", SX_POPT_INT, "1000",
     "early_stopping steps: optimizer steps since the best epoch a stop also needs (sets of "
     "100 or more steps per epoch stop as SCALEX)", I, NULL, 0, 1e9},
    {"seed", SX_POPT_INT, "124", "random seed (training order, noise, inference order)", I | P,
     NULL, 0, 4294967295.0},
    {"chunk_size", SX_POPT_INT, "20000", "rows per processing chunk (progress and cancel points)",
     I | P, NULL, 1, 1e9},
    {"chunk_cells", SX_POPT_INT, "65536",
     "projection: read and preprocess a single h5ad query with a CSR X this many cells (and "
     "at most 8M stored values) at a time, keeping only its reference-gene matrix: memory "
     "bounded whatever its size, the same result; 0 reads the whole file first", P, NULL, 0,
     1e9},
    {"impute", SX_POPT_STRING, NULL, "impute all cells as if from this batch (layer impute)",
     I | P, NULL, 0, 0},
    {"eval", SX_POPT_BOOL, "false",
     "encode with batch-norm running statistics (deterministic per cell) instead of "
     "SCALEX's default train-mode statistics", I | P, NULL, 0, 0},
    {"ignore_umap", SX_POPT_BOOL, "false", "skip neighbours, UMAP, Leiden and the plots",
     I | P, NULL, 0, 0},
    {"joint_umap", SX_POPT_BOOL, "false",
     "projection: recompute UMAP and Leiden on reference + query as SCALEX does, instead of "
     "placing the query on the reference's fixed UMAP", P, NULL, 0, 0},
    {"repeat", SX_POPT_BOOL, "false", "projection: keep only the query cells in the output", P,
     NULL, 0, 0},
    {"plots", SX_POPT_BOOL, "true",
     "projection: draw umap.png, umap.pdf, qc.png and confusion.png (the daemon's /map "
     "leaves them out: its API draws them on first request)", P, NULL, 0, 0},
    {"leiden", SX_POPT_BOOL, "true",
     "projection: carry the reference's Leiden clusters to the query (the daemon's /map "
     "leaves them out)", P, NULL, 0, 0},
    {"reference_cells", SX_POPT_BOOL, "true",
     "projection: adata.h5ad holds the reference's cells before the query's, as SCALEX writes "
     "it (the daemon's /map leaves them out: its API serves the reference's cells from the "
     "reference)", P, NULL, 0, 0},
    {"assess", SX_POPT_BOOL, "false",
     "compute batch-mixing entropy and cell-type silhouette on the latent and on the UMAP",
     I | P, NULL, 0, 0},
    {"label", SX_POPT_STRING, "celltype",
     "cell-type obs column, or several as 'a,b' (project/transfer): transferred from the reference (project: only when given); "
     "integrate: coloured in the plots and scored by --assess (celltype or cell_type when "
     "not given)", I | P | T, NULL, 0, 0},
    {"k", SX_POPT_INT, "5", "neighbours voting in label transfer", P | T, NULL, 1, 10000},
    {"unknown", SX_POPT_STRING, "on",
     "label transfer: call a cell Unknown when its mapping score or confidence is "
     "below min_mapping_score / min_confidence (off: SCALEX's plain vote for every cell)",
     P | T, "on|off", 0, 0},
    {"min_confidence", SX_POPT_FLOAT, "0.4",
     "label transfer: Unknown below this confidence (measured default: "
     "bench/trust_eval.sh)", P | T, NULL, 0, 1},
    {"confidence", SX_POPT_STRING, "distance",
     "label transfer: the confidence is the distance-weighted probability of the chosen label "
     "among its 15 nearest reference cells (distance), or that refitted by isotonic regression "
     "on held-out reference cells (isotonic: matches the reference's own accuracy, "
     "overconfident on a new batch or species; bench/calib_eval.py)",
     P | T, "distance|isotonic", 0, 0},
    {"min_mapping_score", SX_POPT_FLOAT, "0.01",
     "label transfer: Unknown below this mapping score (0.5: as far from the reference as its "
     "own cells of the label; 0.01: halfway, in log distance, to where cells of other labels "
     "lie; measured default: bench/trust_eval.sh)", P | T, NULL, 0, 1},
    {"rep", SX_POPT_STRING, "latent", "obsm representation label transfer searches in", T, NULL,
     0, 0},
    {"threads", SX_POPT_INT, "0", "compute threads (0 = all cores)", I | P | T, NULL, 0, 4096},
};

#undef I
#undef P
#undef T

#define N_SPECS ((int)(sizeof specs / sizeof specs[0]))

const sx_popt_spec *sx_pipeline_option_specs(int *n)
{
    if (n) *n = N_SPECS;
    return specs;
}

static int spec_index(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < N_SPECS; i++)
        if (strcmp(specs[i].name, name) == 0) return i;
    return -1;
}

const sx_popt_spec *sx_pipeline_option_spec(const char *name)
{
    int i = spec_index(name);
    return i < 0 ? NULL : &specs[i];
}

/* ---- values ---- */

typedef struct opt_val {
    int set;
    char **vals; /* scalar: vals[0]; list: n values */
    int n;
} opt_val;

struct sx_pipeline_opts {
    opt_val v[sizeof specs / sizeof specs[0]];
};

sx_pipeline_opts *sx_pipeline_opts_new(void)
{
    return sx_calloc(1, sizeof(sx_pipeline_opts));
}

static void val_clear(opt_val *v)
{
    for (int k = 0; k < v->n; k++) sx_free(v->vals[k]);
    sx_free(v->vals);
    memset(v, 0, sizeof *v);
}

void sx_pipeline_opts_free(sx_pipeline_opts *o)
{
    if (!o) return;
    for (int i = 0; i < N_SPECS; i++) val_clear(&o->v[i]);
    sx_free(o);
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on", "True"};
    static const char *const no[] = {"0", "false", "no", "off", "False"};
    for (size_t k = 0; k < sizeof yes / sizeof yes[0]; k++)
        if (strcasecmp(s, yes[k]) == 0) { *out = 1; return 0; }
    for (size_t k = 0; k < sizeof no / sizeof no[0]; k++)
        if (strcasecmp(s, no[k]) == 0) { *out = 0; return 0; }
    return -1;
}

static int parse_int(const char *s, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno) {
        /* accept integral floats written like 3e4 (JSON numbers, Python habits) */
        errno = 0;
        double d = strtod(s, &end);
        if (!*s || *end || errno || d != floor(d) || fabs(d) > 9e15) return -1;
        v = (long long)d;
    }
    *out = v;
    return 0;
}

static int parse_float(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int in_choices(const char *choices, const char *v)
{
    size_t n = strlen(v);
    const char *p = choices;
    while (p && *p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0) return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

/* Check a value against its spec; fills st naming the option and the expectation. */
static int check_value(const sx_popt_spec *s, const char *value, sx_status *st)
{
    double num = 0;
    switch (s->type) {
    case SX_POPT_BOOL: {
        int b;
        if (parse_bool(value, &b) != 0)
            return sx_status_set(st, SX_EINVAL, "option '%s' expects true or false, got '%s'",
                                 s->name, value);
        return SX_OK;
    }
    case SX_POPT_INT: {
        long long v;
        if (parse_int(value, &v) != 0)
            return sx_status_set(st, SX_EINVAL, "option '%s' expects a whole number, got '%s'",
                                 s->name, value);
        num = (double)v;
        break;
    }
    case SX_POPT_FLOAT:
        if (parse_float(value, &num) != 0)
            return sx_status_set(st, SX_EINVAL, "option '%s' expects a number, got '%s'", s->name,
                                 value);
        break;
    case SX_POPT_STRING:
        if (s->choices && !in_choices(s->choices, value))
            return sx_status_set(st, SX_EINVAL, "option '%s' must be one of %s, got '%s'",
                                 s->name, s->choices, value);
        return SX_OK;
    case SX_POPT_LIST:
        return SX_OK;
    }
    if (s->lo < s->hi && (num < s->lo || num > s->hi))
        return sx_status_set(st, SX_EINVAL, "option '%s' must be between %g and %g, got '%s'",
                             s->name, s->lo, s->hi, value);
    return SX_OK;
}

int sx_pipeline_opts_set(sx_pipeline_opts *o, const char *name, const char *value, sx_status *st)
{
    int i = spec_index(name);
    if (i < 0)
        return sx_status_set(st, SX_EINVAL, "unknown option '%s'", name ? name : "(null)");
    if (!value)
        return sx_status_set(st, SX_EINVAL, "option '%s' needs a value", name);
    const sx_popt_spec *s = &specs[i];
    if (check_value(s, value, st) != SX_OK) return st->code;
    opt_val *v = &o->v[i];
    char *copy = sx_strdup(value);
    if (!copy) return sx_status_set(st, SX_ENOMEM, "option '%s': out of memory", name);
    if (s->type == SX_POPT_LIST) {
        char **nv = sx_reallocarray(v->vals, (size_t)v->n + 1, sizeof *nv);
        if (!nv) {
            sx_free(copy);
            return sx_status_set(st, SX_ENOMEM, "option '%s': out of memory", name);
        }
        v->vals = nv;
        v->vals[v->n++] = copy;
    } else {
        if (!v->vals) {
            v->vals = sx_calloc(1, sizeof *v->vals);
            if (!v->vals) {
                sx_free(copy);
                return sx_status_set(st, SX_ENOMEM, "option '%s': out of memory", name);
            }
            v->n = 1;
        }
        sx_free(v->vals[0]);
        v->vals[0] = copy;
    }
    v->set = 1;
    return SX_OK;
}

/* The text in force: the value set, else the default, else NULL. */
static const char *text_of(const sx_pipeline_opts *o, const char *name, int *idx)
{
    int i = spec_index(name);
    if (idx) *idx = i;
    if (i < 0) return NULL;
    if (o && o->v[i].set && o->v[i].n > 0) return o->v[i].vals[0];
    return specs[i].def;
}

int sx_pipeline_opts_bool(const sx_pipeline_opts *o, const char *name)
{
    const char *t = text_of(o, name, NULL);
    int b = 0;
    if (t && parse_bool(t, &b) != 0) b = 0;
    return b;
}

long long sx_pipeline_opts_int(const sx_pipeline_opts *o, const char *name)
{
    const char *t = text_of(o, name, NULL);
    long long v = 0;
    if (t && parse_int(t, &v) != 0) v = 0;
    return v;
}

double sx_pipeline_opts_float(const sx_pipeline_opts *o, const char *name)
{
    const char *t = text_of(o, name, NULL);
    double v = 0;
    if (t && parse_float(t, &v) != 0) v = 0;
    return v;
}

const char *sx_pipeline_opts_str(const sx_pipeline_opts *o, const char *name)
{
    return text_of(o, name, NULL);
}

int sx_pipeline_opts_list(const sx_pipeline_opts *o, const char *name, const char *const **vals)
{
    int i = spec_index(name);
    if (vals) *vals = NULL;
    if (i < 0 || !o || !o->v[i].set) return 0;
    if (vals) *vals = (const char *const *)o->v[i].vals;
    return o->v[i].n;
}

int sx_pipeline_opts_is_set(const sx_pipeline_opts *o, const char *name)
{
    int i = spec_index(name);
    return i >= 0 && o && o->v[i].set;
}
