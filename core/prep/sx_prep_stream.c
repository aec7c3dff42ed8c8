/* sx_prep_stream — sx_prep_apply_reference over slabs of rows (see the header). Every
 * per-cell step below does to a row what the whole-matrix step of sx_prep.c does to the same
 * row, with the same kernels (sx_prep_ops.c), in the same order; the steps that need all
 * cells are sx_prep.c's own, reached through sx_prep_internal.h. */
#include "sx_prep_stream.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_log.h"
#include "sx_prep_internal.h"

/* The pass over the slabs. Owned arrays, freed by stream_free. */
typedef struct stream {
    int atac;
    int64_t min_features;
    float after;          /* normalize_total's float32 target */
    int32_t *map;         /* query column -> reference gene, MAP_OUT outside the reference,
                           * MAP_DROP for an ERCC/MT- column */
    int64_t nc;           /* columns left after the ERCC/MT- removal */
    int monotone;         /* map increasing where kept: reindexed rows stay sorted */
    int64_t missing;      /* reference genes the query lacks */
    sx_csr *K;            /* kept cells x reference genes; K->n_rows = cells kept so far */
    int64_t cap;          /* entries K->indices / K->data hold */
    int64_t *rows;        /* query row of each kept cell */
    int64_t *n_genes;     /* its nonzero features (scanpy's filter_cells n_genes) */
    struct part *parts;   /* one per thread of the pass (fuse_slab) */
    int n_parts;
    int64_t max_ng, n_seen;
} stream;

/* One thread's share of a slab: rows [i0, i1) of it, written from K row r0 and K entry k0 on
 * (the slab's entries before i0 bound what the rows before can write, so the shares never
 * overlap); then nr rows and nk entries written. */
typedef struct part {
    const struct stream *s;
    const sx_csr *v;
    int64_t i0, i1, r0, k0, nr, nk, max_ng;
    float *vals;          /* one row's values without the ERCC/MT- columns (its total) */
    int64_t cap_vals;
    int rc;
    sx_status st;
} part;

enum { MAP_OUT = -1, MAP_DROP = -2 };

static void stream_free(stream *s)
{
    sx_free(s->map);
    sx_csr_free(s->K);
    sx_free(s->rows);
    sx_free(s->n_genes);
    for (int t = 0; t < s->n_parts; t++) sx_free(s->parts[t].vals);
    sx_free(s->parts);
}

int sx_prep_stream_supported(const sx_prep_opts *o)
{
    int layer = o->use_layer && *o->use_layer && strcmp(o->use_layer, "X") != 0;
    return !o->processed && !layer && o->fraction <= 0 && o->n_obs <= 0 && o->target_sum >= 0;
}

/* The gene match, once, on var without the ERCC/MT- genes (the var sx_prep_apply_reference
 * matches on): the reindex report, the overlap check (SX_EGENES before any row is read),
 * the output var (*vout) and the column maps of s. */
static int plan_columns(stream *s, const sx_frame *var, const char *const *ref, int64_t n_ref,
                        const sx_reindex_opts *ro, sx_reindex_report *rep, sx_frame **vout,
                        sx_status *st)
{
    int64_t g = var->n_rows;
    int64_t *cols = sx_mallocarray((size_t)g + 1, sizeof *cols);
    int64_t *src = sx_mallocarray((size_t)n_ref + 1, sizeof *src);
    s->map = sx_mallocarray((size_t)g + 1, sizeof *s->map);
    sx_frame *vf = NULL;
    sx_csr *none = NULL;
    int rc = cols && src && s->map ? SX_OK : sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int64_t j = 0; rc == SX_OK && j < g; j++) {
        int drop = !s->atac && sx_prep__is_control_gene(var->index[j]);
        s->map[j] = drop ? MAP_DROP : MAP_OUT;
        if (!drop) cols[s->nc++] = j;
    }
    if (rc == SX_OK && !(vf = sx_frame_take_rows(var, cols, s->nc, st))) rc = st->code;
    if (rc == SX_OK)
        rc = sx_prep__reindex_build(vf, NULL, ref, n_ref, ro, rep, &none, vout, st);
    if (rc == SX_OK) rc = sx_prep_match_genes(vf, ref, n_ref, src, ro, NULL, st);
    if (rc == SX_OK) {
        for (int64_t k = 0; k < n_ref; k++) {
            if (src[k] < 0) s->missing++;
            else s->map[cols[src[k]]] = (int32_t)k; /* reindex_build refused a gene matched twice */
        }
        int64_t last = -1;
        s->monotone = 1;
        for (int64_t j = 0; j < g; j++)
            if (s->map[j] >= 0) {
                s->monotone &= s->map[j] > last;
                last = s->map[j];
            }
    }
    sx_frame_free(vf);
    sx_free(cols);
    sx_free(src);
    return rc;
}

/* Room in K for n more entries: grown by half (large blocks are remapped, not copied). */
static int reserve(stream *s, int64_t n, sx_status *st)
{
    int64_t need = sx_csr_nnz(s->K) + n;
    if (need <= s->cap) return SX_OK;
    int64_t cap = s->cap + s->cap / 2 > need ? s->cap + s->cap / 2 : need;
    int32_t *ix = sx_reallocarray(s->K->indices, (size_t)cap, sizeof *ix);
    if (ix) s->K->indices = ix;
    float *dv = ix ? sx_reallocarray(s->K->data, (size_t)cap, sizeof *dv) : NULL;
    if (!dv)
        return sx_status_set(st, SX_ENOMEM, "out of memory for the query's reference-gene "
                             "matrix (%lld entries)", (long long)cap);
    s->K->data = dv;
    s->cap = cap;
    return SX_OK;
}

/* A share of a slab's rows in one pass (the steps of sx_prep.c on these rows, fused): per
 * row, the ERCC/MT- columns dropped (ATAC: values binarized first, v1.0.0's X[X > 1] = 1),
 * its nonzero features counted for the min_features filter, the values kept in order in
 * pt->vals for the row total, and the reference-gene entries written to K; then, for a kept
 * RNA row, normalize_total's float32 factor and log1p on those entries only. The same
 * float32 operations on the same values as the whole-matrix steps, but nine in ten values
 * (a 20,000-gene query on 2,000 reference genes) are summed and never scaled nor logged.
 * Branch-free writes: K has room for every entry of the slab (reserve). */
static int fuse_rows(part *pt)
{
    const stream *s = pt->s;
    const sx_csr *v = pt->v;
    sx_csr *K = s->K;
    int64_t k = pt->k0, r = pt->r0;
    const int32_t *map = s->map;
    for (int64_t i = pt->i0; i < pt->i1; i++) {
        int64_t a = v->indptr[i], b = v->indptr[i + 1], w = 0, c = 0, k0 = k;
        if (b - a > pt->cap_vals) {
            sx_free(pt->vals);
            pt->cap_vals = 0;
            if (!(pt->vals = sx_mallocarray((size_t)(b - a), sizeof *pt->vals)))
                return sx_status_set(&pt->st, SX_ENOMEM, "out of memory for a row of %lld "
                                     "values", (long long)(b - a));
            pt->cap_vals = b - a;
        }
        for (int64_t p = a; p < b; p++) {
            float x = v->data[p];
            if (s->atac) x = x > 1.f ? 1.f : x;
            int32_t j = map[v->indices[p]];
            int keep = j != MAP_DROP;
            pt->vals[w] = x;
            w += keep;
            c += keep & (x > 0);
            K->indices[k] = j;
            K->data[k] = x;
            k += j >= 0;
        }
        if (c > pt->max_ng) pt->max_ng = c;
        if (c < s->min_features) {
            k = k0;
            continue;
        }
        s->rows[r] = s->n_seen + i;
        s->n_genes[r] = c;
        if (!s->atac) {
            float f = sx_prep__row_factor(pt->vals, w, s->after, NULL);
            for (int64_t q = k0; q < k; q++) K->data[q] = log1pf(K->data[q] * f);
        }
        K->indptr[++r] = k;
        int64_t rp[2] = {0, k - k0};
        sx_csr row = {1, K->n_cols, rp, K->indices + k0, K->data + k0};
        if (!s->monotone && sx_csr_canonicalize(&row, &pt->st) != SX_OK) return pt->st.code;
    }
    pt->nr = r - pt->r0;
    pt->nk = k - pt->k0;
    return SX_OK;
}

static void *fuse_run(void *arg)
{
    part *pt = arg;
    pt->rc = fuse_rows(pt);
    return NULL;
}

static int pt_start(pthread_t *th, part *pt) { return pthread_create(th, NULL, fuse_run, pt) == 0; }

/* A slab is cut only when each share is worth a thread's start (tens of microseconds). */
enum { SX_PREP_STREAM_MAX_THREADS = 64, SPLIT_MIN_ENTRIES = 1 << 15 };

/* A slab through fuse_rows, its rows cut into s->n_parts shares of about equal entries run
 * on as many threads (this one included); then the shares are moved down to follow each
 * other. K is the same whatever the number of shares: each row is computed alone. */
static int fuse_slab(stream *s, const sx_csr *v, sx_status *st)
{
    if (reserve(s, sx_csr_nnz(v), st) != SX_OK) return st->code;
    int64_t nnz = sx_csr_nnz(v), i = 0;
    int n = nnz >= SPLIT_MIN_ENTRIES * (int64_t)s->n_parts ? s->n_parts : 1, started = 1;
    pthread_t th[SX_PREP_STREAM_MAX_THREADS];
    for (int t = 0; t < n; t++) {
        part *pt = &s->parts[t];
        int64_t goal = nnz / n * (t + 1);
        pt->i0 = i;
        while (i < v->n_rows && (t == n - 1 || v->indptr[i] < goal)) i++;
        pt->i1 = i;
        pt->v = v;
        pt->r0 = s->K->n_rows + pt->i0;
        pt->k0 = sx_csr_nnz(s->K) + v->indptr[pt->i0];
        pt->nr = pt->nk = 0;
        pt->rc = SX_OK;
    }
    for (; started < n && pt_start(&th[started], &s->parts[started]); started++) {}
    for (int t = started; t < n; t++) fuse_run(&s->parts[t]); /* a thread that did not start */
    fuse_run(&s->parts[0]);
    for (int t = 1; t < started; t++) pthread_join(th[t], NULL);
    sx_csr *K = s->K;
    for (int t = 0; t < n; t++) {
        part *pt = &s->parts[t];
        if (pt->rc != SX_OK) {
            *st = pt->st;
            return pt->rc;
        }
        if (pt->max_ng > s->max_ng) s->max_ng = pt->max_ng;
        int64_t r = K->n_rows, k = sx_csr_nnz(K), shift = pt->k0 - k;
        if (t > 0 && pt->nr > 0) {
            memmove(s->rows + r, s->rows + pt->r0, (size_t)pt->nr * sizeof *s->rows);
            memmove(s->n_genes + r, s->n_genes + pt->r0, (size_t)pt->nr * sizeof *s->n_genes);
            memmove(K->indices + k, K->indices + pt->k0, (size_t)pt->nk * sizeof *K->indices);
            memmove(K->data + k, K->data + pt->k0, (size_t)pt->nk * sizeof *K->data);
            for (int64_t j = 1; j <= pt->nr; j++) K->indptr[r + j] = K->indptr[pt->r0 + j] - shift;
        }
        K->n_rows += pt->nr;
    }
    s->n_seen += v->n_rows;
    return SX_OK;
}

/* Every slab of src through filter, normalize_total + log1p (RNA) and the reindex. */
static int pass(stream *s, const sx_prep_rows *src, const sx_progress *p, sx_status *st)
{
    for (;;) {
        sx_csr v;
        if (src->next(src->ctx, &v, st) != SX_OK) return st->code;
        if (v.n_rows == 0 && s->n_seen == src->n_rows) return SX_OK;
        if (v.n_rows == 0 || s->n_seen + v.n_rows > src->n_rows || v.n_cols != src->n_cols)
            return sx_status_set(st, SX_EINTERNAL, "the row source gave other rows or columns "
                                 "than it announced (%lld rows so far of %lld)",
                                 (long long)s->n_seen, (long long)src->n_rows);
        if (fuse_slab(s, &v, st) != SX_OK) return st->code;
        if (sx_progress_cancelled(p))
            return sx_status_set(st, SX_ECANCELED, "preprocessing canceled");
        sx_progress_report(p, "preprocess", 0.7 * (double)s->n_seen / (double)src->n_rows,
                           "read, filter, normalize, log1p, reindex");
    }
}

/* After the pass: the kept cells' obs rows and n_genes (filter_step's frames), no cell
 * left being SX_EDATA as there. */
static int keep_obs(stream *s, sx_dataset *d, int64_t n, sx_status *st)
{
    int64_t nr = s->K->n_rows;
    if (nr == 0)
        return sx_status_set(st, SX_EDATA, "no cell has at least min_features=%lld nonzero "
                             "features (the most any cell has is %lld); lower min_features "
                             "(e.g. --min_features %lld)", (long long)s->min_features,
                             (long long)s->max_ng, (long long)(s->max_ng / 2 > 0 ? s->max_ng / 2 : 1));
    if (nr < n && sx_dataset_take_obs(d, s->rows, nr, st) != SX_OK) return st->code;
    return sx_frame_add_int(d->obs, "n_genes", s->n_genes, st);
}

/* Options, domains on every cell, the column plan and the kept-matrix buffers. */
static int stream_init(stream *s, sx_dataset *d, const sx_prep_rows *src, const char *const *ref,
                       int64_t n_ref, const sx_prep_opts *o, const sx_reindex_opts *ro,
                       sx_reindex_report *rep, sx_frame **vout, sx_status *st)
{
    double target;
    int64_t chunk;
    int rc = sx_prep__resolve(o, &s->min_features, &target, &chunk, st);
    if (rc != SX_OK) return rc;
    if (!sx_prep_stream_supported(o) || d->X || d->obs->n_rows != src->n_rows ||
        d->var->n_rows != src->n_cols)
        return sx_status_set(st, SX_EINVAL, "streamed preprocessing: these options or this "
                             "dataset need the whole matrix (sx_prep_apply_reference)");
    s->atac = o->profile == SX_PROFILE_ATAC;
    s->after = sx_prep__normalize_after(NULL, target); /* fixed target: no matrix needed */
    int32_t *codes = NULL, nn = 0;
    char **names = NULL;
    if ((rc = sx_prep_domains(d->obs, o->batch_name, &codes, &names, &nn, st)) != SX_OK) return rc;
    for (int32_t j = 0; j < nn; j++) sx_free(names[j]);
    sx_free(names);
    sx_free(codes);
    if ((rc = plan_columns(s, d->var, ref, n_ref, ro, rep, vout, st)) != SX_OK) return rc;
    int64_t n = src->n_rows;
    s->n_parts = o->n_threads < 1 ? 1 : o->n_threads > SX_PREP_STREAM_MAX_THREADS
                                                ? SX_PREP_STREAM_MAX_THREADS : o->n_threads;
    if (!(s->parts = sx_calloc((size_t)s->n_parts, sizeof *s->parts)))
        return sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int t = 0; t < s->n_parts; t++) s->parts[t].s = s;
    s->rows = sx_mallocarray((size_t)n + 1, sizeof *s->rows);
    s->n_genes = sx_mallocarray((size_t)n + 1, sizeof *s->n_genes);
    if (!s->rows || !s->n_genes || !(s->K = sx_csr_new(n, n_ref, 0, st)))
        return sx_status_set(st, SX_ENOMEM, "out of memory for %lld cells", (long long)n);
    s->K->n_rows = 0;
    return SX_OK;
}

int sx_prep_apply_reference_rows(sx_dataset *d, const sx_prep_rows *src, const char *const *ref,
                                 int64_t n_ref, const sx_prep_opts *o, const sx_reindex_opts *ro,
                                 sx_prep_result *out, sx_reindex_report *rep,
                                 const sx_progress *p, sx_status *st)
{
    sx_prep_opts def;
    stream s;
    sx_frame *vout = NULL;
    if (!o) {
        sx_prep_opts_init(&def);
        o = &def;
    }
    memset(&s, 0, sizeof s);
    memset(out, 0, sizeof *out);
    int rc = stream_init(&s, d, src, ref, n_ref, o, ro, rep, &vout, st);
    if (rc == SX_OK) rc = pass(&s, src, p, st);
    if (rc == SX_OK) rc = keep_obs(&s, d, src->n_rows, st);
    if (rc == SX_OK) rc = sx_prep__finalize_domains(d, out, st);
    if (rc != SX_OK) goto done;
    sx_csr_shrink(s.K, st);
    d->X = s.K;
    s.K = NULL;
    sx_frame_free(d->var);
    d->var = vout;
    vout = NULL;
    out->n_cells_in = src->n_rows;
    out->n_genes_in = src->n_cols;
    out->n_genes_mt = src->n_cols - s.nc;
    out->n_cells_filtered = src->n_rows - d->X->n_rows;
    out->target_sum_used = s.atac ? NAN : (double)s.after;
    out->n_cells_out = d->X->n_rows;
    out->n_genes_out = d->X->n_cols;
    double t;
    int64_t mf, chunk;
    if ((rc = sx_prep__resolve(o, &mf, &t, &chunk, st)) != SX_OK) goto done;
    /* v1.0.0's reindex builds a float64 matrix when genes are missing: reciprocal in double */
    if ((rc = sx_prep__scale(d, o->scale, s.missing > 0, chunk, p, out, st)) != SX_OK) goto done;
    rc = sx_prep__finish_projection(d, o, out, st);
    SX_INFO("preprocess: %lld of %lld cells kept, reindexed to %lld reference genes (%lld "
            "missing), streamed", (long long)out->n_cells_out, (long long)out->n_cells_in,
            (long long)n_ref, (long long)s.missing);
done:
    sx_frame_free(vout);
    stream_free(&s);
    return rc;
}
