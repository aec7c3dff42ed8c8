/* sx_prep — the preprocessing pipeline (ALGORITHM.md §1.5, §2, §3, §5.3). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_log.h"
#include "sx_prep.h"
#include "sx_prep_internal.h"

void sx_prep_opts_init(sx_prep_opts *o)
{
    memset(o, 0, sizeof *o);
    o->profile = SX_PROFILE_RNA;
    o->batch_name = "batch";
    o->min_features = -1;
    o->min_cells = -1;
    o->n_top_features = -1;
    o->target_sum = 0;
    o->scale = SX_SCALE_BATCH;
    o->hvg_mode = SX_HVG_SUBSET;
}

void sx_prep_result_free(sx_prep_result *r)
{
    if (!r) return;
    for (int32_t i = 0; i < r->n_domains; i++) sx_free(r->domains[i]);
    sx_free(r->domains);
    sx_free(r->domain_of_cell);
    sx_free(r->scale);
    sx_free(r->settings_json);
    memset(r, 0, sizeof *r);
}

static const char *profile_name(sx_profile p) { return p == SX_PROFILE_ATAC ? "ATAC" : "RNA"; }
static const char *scale_name(sx_scale_mode s)
{
    return s == SX_SCALE_GLOBAL ? "global" : s == SX_SCALE_NONE ? "none" : "batch";
}

static void report(const sx_progress *p, double frac, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report(const sx_progress *p, double frac, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    SX_INFO("preprocess: %s", msg);
    sx_progress_report(p, "preprocess", frac, msg);
}

#define CHECK_CANCEL()                                                                     \
    do {                                                                                   \
        if (sx_progress_cancelled(p)) {                                                    \
            rc = sx_status_set(st, SX_ECANCELED, "preprocessing canceled");                \
            goto fail;                                                                     \
        }                                                                                  \
    } while (0)

/* The row-wise passes over the whole matrix run in blocks of chunk_size rows (SCALEX
 * v1.0.0 applied its scaler in such chunks; no numerical effect): between blocks the cancel
 * flag is polled and progress reported, so a large job stops or shows movement within one
 * block instead of one whole pass. */
typedef enum chunk_op { OP_NORMALIZE_LOG1P, OP_BINARIZE, OP_MAXABS } chunk_op;

typedef struct chunk_args {
    float after;                /* OP_NORMALIZE_LOG1P */
    const int32_t *group;       /* OP_MAXABS: per-row group or NULL */
    const double *maxabs;
    int recip_double;
} chunk_args;

static int chunked(sx_csr *X, chunk_op op, const chunk_args *a, int64_t chunk,
                   const sx_progress *p, double f0, double f1, const char *what, sx_status *st)
{
    int64_t n = X->n_rows;
    for (int64_t r0 = 0; r0 < n; r0 += chunk) {
        int64_t r1 = n - r0 > chunk ? r0 + chunk : n;
        /* rows [r0, r1) sharing X's arrays: indptr values stay absolute */
        sx_csr v = *X;
        v.n_rows = r1 - r0;
        v.indptr = X->indptr + r0;
        switch (op) {
        case OP_NORMALIZE_LOG1P:
            sx_prep__normalize_rows(&v, a->after, NULL);
            sx_prep_log1p(&v);
            break;
        case OP_BINARIZE: sx_prep_binarize(&v); break;
        case OP_MAXABS:
            sx_prep_maxabs_apply(&v, a->group ? a->group + r0 : NULL, a->maxabs, a->recip_double);
            break;
        }
        if (sx_progress_cancelled(p))
            return sx_status_set(st, SX_ECANCELED, "preprocessing canceled");
        if (r1 < n && p && p->fn) {
            char msg[160];
            snprintf(msg, sizeof msg, "%s: %lld of %lld cells", what, (long long)r1,
                     (long long)n);
            sx_progress_report(p, "preprocess", f0 + (f1 - f0) * (double)r1 / (double)n, msg);
        }
    }
    return SX_OK;
}

/* normalize_total to target (resolved value) and log1p, in chunks; the target used. */
static int normalize_log1p(sx_csr *X, double target, int64_t chunk, const sx_progress *p,
                           double f0, double f1, double *used, sx_status *st)
{
    chunk_args a = {0};
    a.after = sx_prep__normalize_after(X, target);
    if (isnan(a.after)) return sx_status_set(st, SX_ENOMEM, "out of memory normalizing");
    *used = a.after;
    return chunked(X, OP_NORMALIZE_LOG1P, &a, chunk, p, f0, f1, "normalize, log1p", st);
}

/* Resolved option values. */
typedef struct resolved {
    int64_t min_features, min_cells, n_top, chunk;
    double target_sum;
} resolved;

static int resolve(const sx_prep_opts *o, resolved *r, sx_status *st)
{
    if (o->profile != SX_PROFILE_RNA && o->profile != SX_PROFILE_ATAC)
        return sx_status_set(st, SX_EINVAL, "profile must be RNA or ATAC");
    if (o->scale < SX_SCALE_BATCH || o->scale > SX_SCALE_NONE)
        return sx_status_set(st, SX_EINVAL, "scale must be batch, global or none");
    if (o->fraction < 0 || o->fraction > 1)
        return sx_status_set(st, SX_EINVAL, "fraction must be in [0, 1], got %g", o->fraction);
    if (o->n_obs < 0) return sx_status_set(st, SX_EINVAL, "n_obs must be >= 0");
    if (o->chunk_size < 0)
        return sx_status_set(st, SX_EINVAL, "chunk_size must be >= 0 (0: 20000), got %lld",
                             (long long)o->chunk_size);
    int atac = o->profile == SX_PROFILE_ATAC;
    r->min_features = o->min_features >= 0 ? o->min_features : (atac ? 100 : 600);
    r->min_cells = o->min_cells >= 0 ? o->min_cells : 3;
    r->n_top = o->n_top_features >= 0 ? o->n_top_features : (atac ? 100000 : 2000);
    r->target_sum = o->target_sum;
    r->chunk = o->chunk_size > 0 ? o->chunk_size : 20000;
    if (isnan(r->target_sum))
        return sx_status_set(st, SX_EINVAL, "target_sum is NaN");
    return SX_OK;
}

/* Keep rows with keep_row[i] and columns with colmap[j] >= 0 (renumbered, increasing),
 * in place: writes never overtake reads. */
static void csr_compact(sx_csr *X, const uint8_t *keep_row, const int64_t *colmap, int64_t new_cols)
{
    int64_t w = 0, r = 0, start = X->indptr[0];
    for (int64_t i = 0; i < X->n_rows; i++) {
        int64_t end = X->indptr[i + 1];
        if (keep_row[i]) {
            for (int64_t k = start; k < end; k++) {
                int64_t c = colmap[X->indices[k]];
                if (c < 0) continue;
                X->indices[w] = (int32_t)c;
                X->data[w] = X->data[k];
                w++;
            }
            X->indptr[++r] = w;
        }
        start = end;
    }
    X->n_rows = r;
    X->n_cols = new_cols;
    X->indptr[0] = 0;
    sx_csr_shrink(X, NULL);
}

static int is_control_gene(const char *g)
{
    return strncmp(g, "ERCC", 4) == 0 || strncmp(g, "MT-", 3) == 0 || strncmp(g, "mt-", 3) == 0;
}

/* Apply the same row / column selection to obs, var and everything but X (X detached). */
static int subset_frames(sx_dataset *d, const int64_t *rows, int64_t nr, const int64_t *cols,
                         int64_t nc, sx_status *st)
{
    sx_csr *X = d->X;
    d->X = NULL;
    int rc = SX_OK;
    if (rows && (rc = sx_dataset_take_obs(d, rows, nr, st)) != SX_OK) goto done;
    if (cols && (rc = sx_dataset_take_vars(d, cols, nc, st)) != SX_OK) goto done;
done:
    d->X = X;
    return rc;
}

/* obs "batch" without empty categories; fills out->domains / domain_of_cell. */
static int finalize_domains(sx_dataset *d, sx_prep_result *out, sx_status *st)
{
    sx_column *bc = sx_frame_col(d->obs, "batch");
    int64_t n = d->obs->n_rows;
    int32_t nc = bc->n_categories;
    int64_t *cnt = sx_calloc((size_t)(nc ? nc : 1), sizeof(int64_t));
    int32_t *remap = sx_mallocarray((size_t)(nc ? nc : 1), sizeof(int32_t));
    int32_t *codes = sx_mallocarray((size_t)(n ? n : 1), sizeof(int32_t));
    char **names = sx_calloc((size_t)(nc ? nc : 1), sizeof(char *));
    int rc = SX_OK;
    int32_t m = 0;
    if (!cnt || !remap || !codes || !names) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    for (int64_t i = 0; i < n; i++) cnt[bc->codes[i]]++;
    for (int32_t j = 0; j < nc; j++) {
        remap[j] = -1;
        if (cnt[j] == 0) continue;
        if (!(names[m] = sx_strdup(bc->categories[j]))) {
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
            goto fail;
        }
        remap[j] = m++;
    }
    for (int64_t i = 0; i < n; i++) codes[i] = remap[bc->codes[i]];
    int ordered = bc->ordered;
    if ((rc = sx_frame_add_categorical(d->obs, "batch", codes, (const char *const *)names, m,
                                       ordered, st)) != SX_OK)
        goto fail;
    out->n_domains = m;
    out->domains = names;
    out->domain_of_cell = codes;
    names = NULL;
    codes = NULL;
fail:
    if (names)
        for (int32_t j = 0; j < m; j++) sx_free(names[j]);
    sx_free(names);
    sx_free(codes);
    sx_free(cnt);
    sx_free(remap);
    return rc;
}

/* ERCC/MT removal (RNA), cell filter on min_features, gene filter on min_cells, in place. */
static int filter_step(sx_dataset *d, int drop_controls, int64_t min_features, int64_t min_cells,
                       sx_prep_result *out, sx_status *st)
{
    sx_csr *X = d->X;
    int64_t n = X->n_rows, g = X->n_cols;
    uint8_t *gene_ok = sx_mallocarray((size_t)(g ? g : 1), 1);
    uint8_t *keep_row = sx_mallocarray((size_t)(n ? n : 1), 1);
    int64_t *n_genes = sx_calloc((size_t)(n ? n : 1), sizeof(int64_t));
    int64_t *n_cells = sx_calloc((size_t)(g ? g : 1), sizeof(int64_t));
    int64_t *colmap = sx_mallocarray((size_t)(g ? g : 1), sizeof(int64_t));
    int64_t *rows = sx_mallocarray((size_t)(n ? n : 1), sizeof(int64_t));
    int64_t *cols = sx_mallocarray((size_t)(g ? g : 1), sizeof(int64_t));
    int64_t *kept_ng = NULL, *kept_nc = NULL;
    int rc = SX_OK;
    if (!gene_ok || !keep_row || !n_genes || !n_cells || !colmap || !rows || !cols) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory filtering %lld x %lld", (long long)n,
                           (long long)g);
        goto fail;
    }
    int64_t n_ctrl = 0;
    for (int64_t j = 0; j < g; j++) {
        gene_ok[j] = !(drop_controls && is_control_gene(d->var->index[j]));
        n_ctrl += !gene_ok[j];
    }
    out->n_genes_mt = n_ctrl;
    /* filter_cells(min_genes): count of values > 0 over the remaining genes */
    int64_t nr = 0, max_ng = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t c = 0;
        for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++)
            c += gene_ok[X->indices[k]] && X->data[k] > 0;
        n_genes[i] = c;
        if (c > max_ng) max_ng = c;
        keep_row[i] = c >= min_features;
        if (keep_row[i]) rows[nr++] = i;
    }
    out->n_cells_filtered = n - nr;
    if (nr == 0) {
        rc = sx_status_set(st, SX_EDATA, "no cell has at least min_features=%lld nonzero "
                           "features (the most any cell has is %lld); lower min_features "
                           "(e.g. --min_features %lld)", (long long)min_features,
                           (long long)max_ng, (long long)(max_ng / 2 > 0 ? max_ng / 2 : 1));
        goto fail;
    }
    /* filter_genes(min_cells) on the kept cells */
    for (int64_t i = 0; i < n; i++) {
        if (!keep_row[i]) continue;
        for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++)
            n_cells[X->indices[k]] += X->data[k] > 0;
    }
    int64_t nc = 0;
    for (int64_t j = 0; j < g; j++) {
        colmap[j] = -1;
        if (gene_ok[j] && n_cells[j] >= min_cells) {
            colmap[j] = nc;
            cols[nc++] = j;
        }
    }
    out->n_genes_filtered = g - n_ctrl - nc;
    if (nc == 0) {
        rc = sx_status_set(st, SX_EDATA, "no gene is nonzero in at least min_cells=%lld of the "
                           "%lld kept cells; lower min_cells", (long long)min_cells,
                           (long long)nr);
        goto fail;
    }
    kept_ng = sx_mallocarray((size_t)nr, sizeof(int64_t));
    kept_nc = sx_mallocarray((size_t)nc, sizeof(int64_t));
    if (!kept_ng || !kept_nc) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    for (int64_t i = 0; i < nr; i++) kept_ng[i] = n_genes[rows[i]];
    for (int64_t j = 0; j < nc; j++) kept_nc[j] = n_cells[cols[j]];
    csr_compact(X, keep_row, colmap, nc);
    if ((rc = subset_frames(d, nr < n ? rows : NULL, nr, nc < g ? cols : NULL, nc, st)) != SX_OK)
        goto fail;
    if ((rc = sx_frame_add_int(d->obs, "n_genes", kept_ng, st)) != SX_OK) goto fail;
    if ((rc = sx_frame_add_int(d->var, "n_cells", kept_nc, st)) != SX_OK) goto fail;
fail:
    sx_free(gene_ok);
    sx_free(keep_row);
    sx_free(n_genes);
    sx_free(n_cells);
    sx_free(colmap);
    sx_free(rows);
    sx_free(cols);
    sx_free(kept_ng);
    sx_free(kept_nc);
    return rc;
}

/* Fit and apply MaxAbs on d->X according to mode; fills out->scale. */
static int scale_step(sx_dataset *d, sx_scale_mode mode, int recip_double, int64_t chunk,
                      const sx_progress *p, sx_prep_result *out, sx_status *st)
{
    out->scale_mode = mode;
    if (mode == SX_SCALE_NONE) return SX_OK;
    int32_t rows = mode == SX_SCALE_BATCH ? out->n_domains : 1;
    int64_t g = d->X->n_cols;
    double *s = sx_calloc((size_t)(rows ? rows : 1) * (size_t)(g ? g : 1), sizeof(double));
    if (!s) return sx_status_set(st, SX_ENOMEM, "out of memory for the scale factors");
    const int32_t *grp = mode == SX_SCALE_BATCH ? out->domain_of_cell : NULL;
    sx_prep_maxabs_fit(d->X, grp, rows, s);
    /* the factors belong to the result even if the apply is canceled */
    sx_free(out->scale);
    out->scale = s;
    out->scale_rows = rows;
    chunk_args a = {0};
    a.group = grp;
    a.maxabs = s;
    a.recip_double = recip_double;
    return chunked(d->X, OP_MAXABS, &a, chunk, p, 0.7, 0.95, "MaxAbs", st);
}

static int make_settings(const sx_prep_opts *o, const resolved *r, sx_prep_result *out,
                         int projection, sx_status *st)
{
    char buf[2048];
    char bn[300];
    /* batch_name is a column name: escape quotes and backslashes for JSON */
    const char *b = o->batch_name ? o->batch_name : "batch";
    size_t w = 0;
    for (const char *c = b; *c && w + 3 < sizeof bn; c++) {
        if (*c == '"' || *c == '\\') bn[w++] = '\\';
        bn[w++] = (unsigned char)*c < 0x20 ? ' ' : *c;
    }
    bn[w] = 0;
    snprintf(buf, sizeof buf,
             "{\"profile\":\"%s\",\"batch_name\":\"%s\",\"min_features\":%lld,"
             "\"min_cells\":%lld,\"n_top_features\":%lld,\"target_sum\":%.17g,"
             "\"target_sum_option\":\"%s\",\"keep_mt\":%s,\"scale\":\"%s\",\"hvg\":\"%s\","
             "\"hvg_nan_rule\":\"%s\",\"processed\":%s,\"use_layer\":%s%s%s,\"fraction\":%.17g,"
             "\"n_obs\":%lld,\"subsample_seed\":%u,\"chunk_size\":%lld,\"projection\":%s,"
             "\"n_domains\":%d,"
             "\"reference\":\"SCALEX v1.0.0 + scanpy 1.9.8\"}",
             profile_name(o->profile), bn, (long long)r->min_features, (long long)r->min_cells,
             (long long)r->n_top, out->target_sum_used,
             o->target_sum < 0 ? "median" : "fixed", o->keep_mt ? "true" : "false",
             scale_name(o->scale), o->hvg_mode == SX_HVG_LITERAL ? "literal" : "hvg_subset",
             o->hvg_nan_neginf ? "nan_is_neginf" : "nan_is_zero",
             o->processed ? "true" : "false", o->use_layer ? "\"" : "",
             o->use_layer ? o->use_layer : "null", o->use_layer ? "\"" : "", o->fraction,
             (long long)o->n_obs, o->subsample_seed, (long long)r->chunk,
             projection ? "true" : "false",
             (int)out->n_domains);
    sx_free(out->settings_json);
    out->settings_json = sx_strdup(buf);
    if (!out->settings_json) return sx_status_set(st, SX_ENOMEM, "out of memory");
    return SX_OK;
}

static int set_uns(sx_dataset *d, const sx_prep_result *out, int lognorm, int hvg, sx_status *st)
{
    if (lognorm) {
        sx_uns *l = sx_uns_set_dict(d->uns, "log1p");
        if (!l) return sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    if (hvg) {
        sx_uns *h = sx_uns_set_dict(d->uns, "hvg");
        if (!h || !sx_uns_set_string(h, "flavor", "seurat"))
            return sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    sx_uns *s = sx_uns_set_dict(d->uns, "scalex_preprocess");
    if (!s || !sx_uns_set_string(s, "settings", out->settings_json) ||
        !sx_uns_set_strings(s, "domains", (const char *const *)out->domains, out->n_domains) ||
        !sx_uns_set_string(s, "scale_mode", scale_name(out->scale_mode)))
        return sx_status_set(st, SX_ENOMEM, "out of memory");
    if (out->scale_rows > 0) {
        sx_uns *a = sx_uns_set_floats(s, "scale_maxabs", out->scale,
                                      (int64_t)out->scale_rows * out->n_genes_out);
        if (!a) return sx_status_set(st, SX_ENOMEM, "out of memory");
        a->dims[0] = out->scale_rows;
        a->dims[1] = out->n_genes_out;
    }
    int64_t counts[9] = {out->n_cells_in, out->n_genes_in, out->n_genes_mt,
                         out->n_cells_filtered, out->n_genes_filtered,
                         out->n_cells_subsampled_out, out->n_cells_out, out->n_genes_out,
                         out->n_hvg};
    if (!sx_uns_set_ints(s, "counts", counts, 9) ||
        !sx_uns_set_string(s, "counts_names", "n_cells_in,n_genes_in,n_genes_mt_ercc,"
                           "n_cells_filtered,n_genes_filtered,n_cells_subsampled_out,"
                           "n_cells_out,n_genes_out,n_hvg"))
        return sx_status_set(st, SX_ENOMEM, "out of memory");
    return SX_OK;
}

/* Move d->X into raw (with a copy of var) and leave X pointing to nothing. */
static int move_to_raw(sx_dataset *d, sx_status *st)
{
    sx_frame *rv = sx_frame_copy(d->var, st);
    if (!rv) return st ? st->code : SX_ENOMEM;
    sx_csr_free(d->raw_X);
    sx_frame_free(d->raw_var);
    d->raw_X = d->X;
    d->raw_var = rv;
    d->X = NULL;
    return SX_OK;
}

static int add_hvg_columns(sx_frame *var, const sx_hvg_table *t, const int64_t *cols, int64_t n,
                           sx_status *st)
{
    double *f = sx_mallocarray((size_t)(n ? n : 1), sizeof(double));
    int64_t *iv = sx_mallocarray((size_t)(n ? n : 1), sizeof(int64_t));
    uint8_t *b = sx_mallocarray((size_t)(n ? n : 1), 1);
    int rc = SX_OK;
    if (!f || !iv || !b) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
#define GATHER(dst, src) for (int64_t k = 0; k < n; k++) dst[k] = src[cols ? cols[k] : k]
    GATHER(b, t->highly_variable);
    if ((rc = sx_frame_add_bool(var, "highly_variable", b, st))) goto fail;
    GATHER(f, t->means);
    if ((rc = sx_frame_add_float(var, "means", f, st))) goto fail;
    GATHER(f, t->dispersions);
    if ((rc = sx_frame_add_float(var, "dispersions", f, st))) goto fail;
    GATHER(f, t->dispersions_norm);
    if ((rc = sx_frame_add_float(var, "dispersions_norm", f, st))) goto fail;
    GATHER(iv, t->nbatches);
    if ((rc = sx_frame_add_int(var, "highly_variable_nbatches", iv, st))) goto fail;
    GATHER(b, t->intersection);
    if ((rc = sx_frame_add_bool(var, "highly_variable_intersection", b, st))) goto fail;
#undef GATHER
fail:
    sx_free(f);
    sx_free(iv);
    sx_free(b);
    return rc;
}

static int use_layer_step(sx_dataset *d, const char *name, sx_status *st)
{
    const char *ln = strncmp(name, "layers/", 7) == 0 ? name + 7 : name;
    for (int i = 0; i < d->n_layers; i++) {
        if (strcmp(d->layers[i].name, ln) != 0) continue;
        sx_csr_free(d->X);
        d->X = d->layers[i].m;
        sx_free(d->layers[i].name);
        memmove(&d->layers[i], &d->layers[i + 1], sizeof(sx_layer) * (size_t)(d->n_layers - i - 1));
        d->n_layers--;
        return SX_OK;
    }
    char avail[512] = "";
    for (int i = 0; i < d->n_layers && strlen(avail) + 4 < sizeof avail; i++) {
        if (i) strncat(avail, ", ", sizeof avail - strlen(avail) - 1);
        strncat(avail, d->layers[i].name, sizeof avail - strlen(avail) - 1);
    }
    return sx_status_set(st, SX_ENOTFOUND, "use_layer '%s': the dataset has no such layer "
                         "(layers: %s)", name, d->n_layers ? avail : "none");
}

static int subsample_step(sx_dataset *d, const sx_prep_opts *o, sx_prep_result *out,
                          sx_status *st)
{
    int64_t n = sx_dataset_n_obs(d), k;
    if (o->n_obs > 0) k = o->n_obs;
    else if (o->fraction > 0) k = (int64_t)(o->fraction * (double)n);
    else return SX_OK;
    if (k > n)
        return sx_status_set(st, SX_EINVAL, "n_obs=%lld is larger than the %lld cells of the "
                             "data", (long long)k, (long long)n);
    int64_t *idx = sx_mallocarray((size_t)(n ? n : 1), sizeof(int64_t));
    if (!idx) return sx_status_set(st, SX_ENOMEM, "out of memory subsampling");
    int rc = sx_prep_subsample_indices(n, o->subsample_seed, idx, st);
    if (rc == SX_OK) rc = sx_dataset_take_obs(d, idx, k, st);
    sx_free(idx);
    if (rc == SX_OK) out->n_cells_subsampled_out = n - k;
    return rc;
}

/* Shared front part: options, layer, subsample, domains. */
static int front(sx_dataset *d, const sx_prep_opts *o, resolved *r, int *processed,
                 sx_prep_result *out, sx_status *st)
{
    int rc;
    if ((rc = resolve(o, r, st)) != SX_OK) return rc;
    *processed = o->processed;
    if (o->use_layer && *o->use_layer && strcmp(o->use_layer, "X") != 0) {
        if ((rc = use_layer_step(d, o->use_layer, st)) != SX_OK) return rc;
        *processed = 1;
    }
    if (!d->X)
        return sx_status_set(st, SX_EINVAL, "the dataset has no X matrix to preprocess");
    out->n_cells_in = d->X->n_rows;
    out->n_genes_in = d->X->n_cols;
    if ((rc = subsample_step(d, o, out, st)) != SX_OK) return rc;
    int32_t *codes = NULL, nn = 0;
    char **names = NULL;
    if ((rc = sx_prep_domains(d->obs, o->batch_name, &codes, &names, &nn, st)) != SX_OK)
        return rc;
    for (int32_t j = 0; j < nn; j++) sx_free(names[j]);
    sx_free(names);
    sx_free(codes);
    return SX_OK;
}

int sx_prep_run(sx_dataset *d, const sx_prep_opts *o, sx_prep_result *out, const sx_progress *p,
                sx_status *st)
{
    sx_prep_opts def;
    resolved r;
    int processed = 0, rc = SX_OK;
    sx_hvg_table *hv = NULL;
    int64_t *sel = NULL, *map = NULL;
    if (!o) {
        sx_prep_opts_init(&def);
        o = &def;
    }
    memset(out, 0, sizeof *out);
    if ((rc = front(d, o, &r, &processed, out, st)) != SX_OK) goto fail;
    int atac = o->profile == SX_PROFILE_ATAC;
    report(p, 0.05, "%lld cells x %lld features, profile %s%s", (long long)d->X->n_rows,
           (long long)d->X->n_cols, profile_name(o->profile),
           processed ? " (already processed: no filtering, normalization or HVG)" : "");
    CHECK_CANCEL();
    if (processed) {
        if ((rc = finalize_domains(d, out, st)) != SX_OK) goto fail;
        out->n_cells_out = d->X->n_rows;
        out->n_genes_out = d->X->n_cols;
        out->target_sum_used = NAN;
        if ((rc = scale_step(d, o->processed_scale ? SX_SCALE_GLOBAL : SX_SCALE_NONE, 0,
                             r.chunk, p, out, st)) != SX_OK)
            goto fail;
        if ((rc = make_settings(o, &r, out, 0, st)) != SX_OK) goto fail;
        if ((rc = set_uns(d, out, 0, 0, st)) != SX_OK) goto fail;
        return SX_OK;
    }
    if (atac && (rc = chunked(d->X, OP_BINARIZE, &(chunk_args){0}, r.chunk, p, 0.05, 0.1,
                              "binarize", st)) != SX_OK) /* v1.0.0: X[X > 1] = 1 */
        goto fail;
    if ((rc = filter_step(d, !atac && !o->keep_mt, r.min_features, r.min_cells, out, st)) != SX_OK)
        goto fail;
    if ((rc = finalize_domains(d, out, st)) != SX_OK) goto fail;
    report(p, 0.3, "removed %lld ERCC/MT genes, %lld cells with < %lld features, %lld genes in "
           "< %lld cells: %lld cells x %lld genes left", (long long)out->n_genes_mt,
           (long long)out->n_cells_filtered, (long long)r.min_features,
           (long long)out->n_genes_filtered, (long long)r.min_cells, (long long)d->X->n_rows,
           (long long)d->X->n_cols);
    CHECK_CANCEL();
    if (!atac) {
        if ((rc = normalize_log1p(d->X, r.target_sum, r.chunk, p, 0.3, 0.45,
                                  &out->target_sum_used, st)) != SX_OK)
            goto fail;
        report(p, 0.45, "normalized to %g per cell, log1p", out->target_sum_used);
    } else {
        out->target_sum_used = NAN;
    }
    CHECK_CANCEL();
    int64_t g = d->X->n_cols, nsel = g;
    if (r.n_top > 0) {
        hv = sx_prep_hvg(d->X, out->domain_of_cell, out->n_domains,
                         (const char *const *)d->var->index, r.n_top, o->hvg_nan_neginf, st);
        if (!hv) {
            rc = st ? st->code : SX_ENOMEM;
            goto fail;
        }
        out->n_hvg = hv->n_selected;
        report(p, 0.7, "%lld highly variable genes (seurat, %d batches, n_top_features %lld)%s",
               (long long)hv->n_selected, (int)out->n_domains, (long long)r.n_top,
               o->hvg_mode == SX_HVG_LITERAL ? "; literal v1.0.0 mode: all genes kept" : "");
    }
    CHECK_CANCEL();
    /* selected columns (original order) */
    sel = sx_mallocarray((size_t)(g ? g : 1), sizeof(int64_t));
    map = sx_mallocarray((size_t)(g ? g : 1), sizeof(int64_t));
    if (!sel || !map) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    if (hv && o->hvg_mode == SX_HVG_SUBSET) {
        nsel = 0;
        for (int64_t j = 0; j < g; j++) {
            map[j] = hv->highly_variable[j] ? nsel : -1;
            if (hv->highly_variable[j]) sel[nsel++] = j;
        }
    } else {
        for (int64_t j = 0; j < g; j++) sel[j] = map[j] = j;
    }
    if (hv && (rc = add_hvg_columns(d->var, hv, NULL, g, st)) != SX_OK) goto fail;
    if (!atac) {
        /* raw = log-normalized matrix over all filtered genes; X = (subset) copy of it */
        if ((rc = move_to_raw(d, st)) != SX_OK) goto fail;
        sx_csr *X = nsel == g ? sx_csr_copy(d->raw_X, st)
                              : sx_csr_remap_cols(d->raw_X, map, nsel, st);
        if (!X) {
            rc = st ? st->code : SX_ENOMEM;
            goto fail;
        }
        d->X = X;
        if (nsel < g) {
            sx_frame *v = sx_frame_take_rows(d->var, sel, nsel, st);
            if (!v) {
                rc = st ? st->code : SX_ENOMEM;
                goto fail;
            }
            sx_frame_free(d->var);
            d->var = v;
        }
    } else if (nsel < g) {
        if ((rc = sx_dataset_take_vars(d, sel, nsel, st)) != SX_OK) goto fail;
    }
    out->n_cells_out = d->X->n_rows;
    out->n_genes_out = d->X->n_cols;
    if ((rc = scale_step(d, o->scale, 0, r.chunk, p, out, st)) != SX_OK) goto fail;
    report(p, 0.95, "MaxAbs scaling (%s): %lld cells x %lld genes", scale_name(o->scale),
           (long long)out->n_cells_out, (long long)out->n_genes_out);
    if ((rc = make_settings(o, &r, out, 0, st)) != SX_OK) goto fail;
    if ((rc = set_uns(d, out, !atac, hv != NULL, st)) != SX_OK) goto fail;
    report(p, 1.0, "done");
fail:
    sx_hvg_table_free(hv);
    sx_free(sel);
    sx_free(map);
    return rc;
}

int sx_prep_apply_reference(sx_dataset *d, const char *const *ref, int64_t n_ref,
                            const sx_prep_opts *o, const sx_reindex_opts *ro,
                            sx_prep_result *out, sx_reindex_report *rep, const sx_progress *p,
                            sx_status *st)
{
    sx_prep_opts def;
    sx_reindex_opts rdef;
    resolved r;
    int processed = 0, rc = SX_OK;
    int64_t *src = NULL;
    if (!o) {
        sx_prep_opts_init(&def);
        o = &def;
    }
    if (!ro) {
        sx_reindex_opts_init(&rdef);
        ro = &rdef;
    }
    memset(out, 0, sizeof *out);
    if ((rc = front(d, o, &r, &processed, out, st)) != SX_OK) goto fail;
    int atac = o->profile == SX_PROFILE_ATAC;
    CHECK_CANCEL();
    if (processed) {
        rc = sx_status_set(st, SX_EINVAL, "projection needs raw counts: processed/use_layer "
                           "input cannot be reindexed and normalized like the reference");
        goto fail;
    }
    if (atac && (rc = chunked(d->X, OP_BINARIZE, &(chunk_args){0}, r.chunk, p, 0.05, 0.1,
                              "binarize", st)) != SX_OK)
        goto fail;
    /* no gene filter (min_cells = 0); MT/ERCC always removed for RNA (keep_mt not forwarded) */
    if ((rc = filter_step(d, !atac, r.min_features, 0, out, st)) != SX_OK) goto fail;
    if ((rc = finalize_domains(d, out, st)) != SX_OK) goto fail;
    /* fail fast on a poor overlap, before any heavy work */
    src = sx_mallocarray((size_t)(n_ref ? n_ref : 1), sizeof(int64_t));
    if (!src) {
        rc = sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    sx_reindex_report tmp;
    if ((rc = sx_prep_match_genes(d->var, ref, n_ref, src, ro, &tmp, st)) != SX_OK) goto fail;
    int64_t missing = tmp.n_missing;
    report(p, 0.3, "query shares %lld of %lld reference genes (%.1f%%)", (long long)tmp.n_present,
           (long long)n_ref, 100.0 * tmp.fraction);
    sx_reindex_report_free(&tmp);
    CHECK_CANCEL();
    if (!atac) {
        if ((rc = normalize_log1p(d->X, r.target_sum, r.chunk, p, 0.3, 0.5,
                                  &out->target_sum_used, st)) != SX_OK)
            goto fail;
        /* raw = the log-normalized query over all its genes; X = its reindexed copy */
        if ((rc = move_to_raw(d, st)) != SX_OK) goto fail;
    } else {
        out->target_sum_used = NAN;
    }
    {
        sx_csr *X = NULL;
        sx_frame *v = NULL;
        const sx_csr *from = atac ? d->X : d->raw_X;
        if ((rc = sx_prep__reindex_build(d->var, from, ref, n_ref, ro, rep, &X, &v, st)) != SX_OK)
            goto fail;
        if (atac) sx_csr_free(d->X);
        d->X = X;
        sx_frame_free(d->var);
        d->var = v;
        /* layers are per query gene: drop them */
        for (int i = 0; i < d->n_layers; i++) {
            sx_free(d->layers[i].name);
            sx_csr_free(d->layers[i].m);
        }
        d->n_layers = 0;
        for (int i = 0; i < d->n_varm; i++) {
            sx_free(d->varm[i].name);
            sx_free(d->varm[i].v);
        }
        d->n_varm = 0;
    }
    out->n_cells_out = d->X->n_rows;
    out->n_genes_out = d->X->n_cols;
    /* v1.0.0's reindex builds a float64 matrix when genes are missing: reciprocal in double */
    if ((rc = scale_step(d, o->scale, missing > 0, r.chunk, p, out, st)) != SX_OK) goto fail;
    report(p, 0.95, "reindexed to %lld reference genes (%lld missing, zero-filled), MaxAbs "
           "(%s) with the query's own maxima", (long long)n_ref, (long long)missing,
           scale_name(o->scale));
    if ((rc = make_settings(o, &r, out, 1, st)) != SX_OK) goto fail;
    if ((rc = set_uns(d, out, !atac, 0, st)) != SX_OK) goto fail;
    report(p, 1.0, "done");
fail:
    sx_free(src);
    return rc;
}

/* ---- for sx_prep_stream.c: the steps it shares with sx_prep_apply_reference, so both
 * paths give the same result by construction (sx_prep_internal.h) ---- */

int sx_prep__resolve(const sx_prep_opts *o, int64_t *min_features, double *target,
                     int64_t *chunk, sx_status *st)
{
    resolved r;
    int rc = resolve(o, &r, st);
    if (rc != SX_OK) return rc;
    *min_features = r.min_features;
    *target = r.target_sum;
    *chunk = r.chunk;
    return SX_OK;
}

int sx_prep__is_control_gene(const char *g) { return is_control_gene(g); }

int sx_prep__finalize_domains(sx_dataset *d, sx_prep_result *out, sx_status *st)
{
    return finalize_domains(d, out, st);
}

int sx_prep__scale(sx_dataset *d, sx_scale_mode mode, int recip_double, int64_t chunk,
                   const sx_progress *p, sx_prep_result *out, sx_status *st)
{
    return scale_step(d, mode, recip_double, chunk, p, out, st);
}

int sx_prep__finish_projection(sx_dataset *d, const sx_prep_opts *o, sx_prep_result *out,
                               sx_status *st)
{
    resolved r;
    int rc = resolve(o, &r, st);
    if (rc == SX_OK) rc = make_settings(o, &r, out, 1, st);
    if (rc == SX_OK) rc = set_uns(d, out, o->profile != SX_PROFILE_ATAC, 0, st);
    return rc;
}
