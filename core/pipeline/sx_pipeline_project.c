/* sx_pipeline_project — the projection workflow (ALGORITHM.md §5.3): a query encoded by a
 * trained reference's model, placed on the reference's UMAP (or a joint one), labels
 * transferred when a label column is given; the output holds reference + query cells. */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sx_alloc.h"
#include "sx_h5ad_rows.h"
#include "sx_h5ad_writer.h"
#include "sx_jobdir.h"
#include "sx_knn.h"
#include "sx_nn.h"
#include "sx_pipeline_ctx.h"
#include "sx_pipeline_qc.h"
#include "sx_prep_stream.h"
#include "sx_sha256.h"
#include "sx_umap.h"

/* What the stages hand on; freed by proj_clear. */
typedef struct proj {
    sx_reference *own_ref;  /* loaded here; else the daemon's (borrowed) */
    const sx_reference *R;
    const char *const *genes;
    int64_t G;
    sx_dataset *q, *out;
    sx_prep_result pr;
    sx_reindex_report rep;
    sx_gene_table *gt;      /* --gene_table, or the reference folder's genes.tsv; NULL: none */
    int dim;
    int64_t nq, n_ref, n;   /* n = n_ref + nq rows of the output */
    double *qlat, *all_lat; /* qlat: a view into all_lat once combine_latent made it */
    int qlat_view;
    int64_t *perm;
    float *all_umap;
    int32_t *leiden;
    sx_transfer_result *tr;
    sx_knn *nb;             /* the query's reference neighbours, searched once (neighbours()) */
    sx_h5ad_writer *adata;  /* adata.h5ad, open from write_x() to write_outputs() */
    double a, b;
    int joint;              /* UMAP and Leiden recomputed on reference + query */
} proj;

static void proj_clear(proj *s)
{
    sx_reference_free(s->own_ref);
    sx_dataset_free(s->q);
    sx_dataset_free(s->out);
    sx_prep_result_free(&s->pr);
    sx_reindex_report_free(&s->rep);
    sx_gene_table_free(s->gt);
    if (!s->qlat_view) sx_free(s->qlat);
    sx_free(s->all_lat);
    sx_free(s->perm);
    sx_free(s->all_umap);
    sx_free(s->leiden);
    sx_transfer_free(s->tr);
    sx_knn_free(s->nb);
    sx_h5ad_writer_abort(s->adata);
}

/* SX_PROJECT_RSS=1: the process's resident memory at each stage boundary on stderr (VmRSS
 * now, VmHWM the peak so far), to find which stage holds a large query's peak (issue 15:
 * bench/bench_stream.sh); off otherwise. */
static void rss_mark(const char *where)
{
    const char *e = getenv("SX_PROJECT_RSS");
    if (!e || !*e || strcmp(e, "0") == 0) return;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    long rss = -1, hwm = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) rss = atol(line + 6);
        if (strncmp(line, "VmHWM:", 6) == 0) hwm = atol(line + 6);
    }
    fclose(f);
    fprintf(stderr, "rss %-16s VmRSS %6ld MiB  VmHWM %6ld MiB\n", where, rss / 1024, hwm / 1024);
}

/* Freed heap memory back to the system: glibc keeps freed blocks under its mmap threshold
 * (which rises to 32 MB as large blocks are freed: a million-cell column of doubles is 8 MB)
 * in the heap, resident, unless trimmed; called after a stage frees what it no longer needs
 * and before the next allocates, so the freed pages do not add to the next stage's peak. */
static void release_freed(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static int canceled(sx_status *st) { return sx_status_set(st, SX_ECANCELED, "the job was canceled"); }

static int load_reference(sx_pl_ctx *c, proj *s, sx_status *st)
{
    if (sx_pl_stage(c, "read") != SX_OK) return canceled(st);
    s->R = c->job->reference_obj;
    if (!s->R) {
        if (!c->job->reference)
            return sx_status_set(st, SX_EINVAL, "a projection needs a reference (--projection DIR)");
        if (!(s->R = s->own_ref = sx_reference_load(c->job->reference, st))) return st->code;
    }
    const sx_reference *R = s->R;
    s->genes = sx_nn_model_genes(R->model, &s->G);
    if (!s->genes || s->G <= 0)
        return sx_status_set(st, SX_EFORMAT, "reference '%s' has no gene list in its model",
                             R->path ? R->path : "(memory)");
    sx_pl_log_msg(&c->log, "Reference %s: %lld cells, %lld genes", R->path ? R->path : "(memory)",
                  (long long)R->n_cells, (long long)s->G);
    return SX_OK;
}

/* Stored entries a slab holds at most: 16 MB of indices and values, two slabs in flight with
 * the read ahead, and as much again of room the preprocessing reserves in the kept matrix.
 * The reader's own default (8M) cost 190 MB at the peak of a 1M-cell map, which the kept
 * matrix (1.1 GB) already brings near its 1.5 GB bound; smaller slabs read as fast (a slab
 * is still ~1,400 cells of 1,500 entries). */
enum { SLAB_ENTRIES = 2 << 20 };

/* core/io's slab reader as the row source of the streamed preprocessing */
typedef struct slab_src {
    sx_h5ad_rows *r;
    int64_t cells;
} slab_src;

static int next_slab(void *ctx, sx_csr *slab, sx_status *st)
{
    slab_src *ss = ctx;
    return sx_h5ad_rows_next(ss->r, ss->cells, SLAB_ENTRIES, slab, NULL, st);
}

/* The input's SHA-256 (provenance), on a thread of its own when the job has more than one:
 * hashing 1.2 GB costs more than reading and preprocessing it, and needs no HDF5. */
typedef struct hash_job {
    const char *path;
    char *hex;
    int rc, bg;
    pthread_t th;
    sx_status st;
} hash_job;

static void *hash_run(void *arg)
{
    hash_job *h = arg;
    h->rc = sx_sha256_file(h->path, h->hex, &h->st);
    return NULL;
}

static void hash_start(hash_job *h, int threads)
{
    h->bg = threads != 1 && pthread_create(&h->th, NULL, hash_run, h) == 0;
    if (!h->bg) hash_run(h);
}

/* rc, or the hash's error when rc is SX_OK */
static int hash_join(hash_job *h, int rc, sx_status *st)
{
    if (h->bg) pthread_join(h->th, NULL);
    if (rc == SX_OK && h->rc != SX_OK) {
        *st = h->st;
        rc = h->rc;
    }
    return rc;
}

/* A single h5ad query whose X is CSR is read and preprocessed chunk_cells cells at a time
 * (sx_prep_stream.h: the same result in the memory of the reference-gene matrix); *done
 * stays 0 for any other input or options, which the whole-file path reads. */
static int stream_prep(sx_pl_ctx *c, proj *s, const sx_reindex_opts *ro, int *done,
                       sx_status *st)
{
    const char *path = c->set.n_inputs == 1 ? c->set.inputs[0] : NULL;
    *done = 0;
    if (!path || c->set.chunk_cells <= 0 || sx_pl_is_dir(path) ||
        !sx_prep_stream_supported(&c->set.prep))
        return SX_OK;
    slab_src ss = {NULL, c->set.chunk_cells};
    int rc = sx_h5ad_rows_open(path, &(sx_read_opts){.limits = c->job->limits, .threads = sx_pl_threads(c)},
                               c->prog, &ss.r, st);
    if (rc || !ss.r) return rc;
    *done = 1;
    hash_job h = {.path = path, .hex = c->sha[0]};
    const char *given = sx_pl_given_sha(c, 0); /* the daemon's record: no second pass */
    if (given) memcpy(c->sha[0], given, 65);
    else hash_start(&h, c->set.threads);
    /* more than one thread: slab i+1 is read while slab i is preprocessed (the same slabs;
     * this thread makes no HDF5 call until the reader is closed below) */
    if (c->set.threads != 1) rc = sx_h5ad_rows_read_ahead(ss.r, ss.cells, SLAB_ENTRIES, st);
    sx_prep_rows src = {sx_h5ad_rows_n_obs(ss.r), sx_h5ad_rows_n_vars(ss.r), next_slab, &ss};
    if (rc == SX_OK && !(s->q = sx_dataset_new(0, 0, st))) rc = st->code;
    if (rc == SX_OK) {
        sx_frame_free(s->q->obs);
        sx_frame_free(s->q->var);
        sx_uns_free(s->q->uns);
        s->q->obs = sx_h5ad_rows_take_obs(ss.r);
        s->q->uns = sx_h5ad_rows_take_uns(ss.r);
        if (!(s->q->var = sx_frame_copy(sx_h5ad_rows_var(ss.r), st))) rc = st->code;
    }
    if (rc == SX_OK) {
        sx_pl_log_msg(&c->log, "Read %s: %lld cells x %lld genes (streamed, %lld cells at a time)",
                      path, (long long)src.n_rows, (long long)src.n_cols, c->set.chunk_cells);
        if (sx_pl_stage(c, "preprocess") != SX_OK) rc = canceled(st);
    }
    /* the slab's rows are preprocessed on the job's threads too (the same result) */
    sx_prep_opts po = c->set.prep;
    po.n_threads = sx_pl_threads(c);
    if (rc == SX_OK)
        rc = sx_prep_apply_reference_rows(s->q, &src, s->genes, s->G, &po, ro, &s->pr, &s->rep,
                                          c->prog, st);
    sx_h5ad_rows_close(ss.r);
    return hash_join(&h, rc, st);
}

/* several query files are concatenated with an outer join (ALGORITHM.md §5.3), then put on
 * the reference's genes */
static int read_prep(sx_pl_ctx *c, proj *s, sx_status *st)
{
    sx_reindex_opts ro;
    sx_reindex_opts_init(&ro);
    int rc = sx_gene_table_find(c->job->gene_table, c->job->reference ? c->job->reference
                                                                      : s->R->path, &s->gt, st);
    if (rc) return rc;
    if ((ro.gene_table = s->gt))
        sx_pl_log_msg(&c->log, "Gene table: %lld pairs (query gene -> reference gene)",
                      (long long)sx_gene_table_size(s->gt));
    int streamed = 0;
    if ((rc = stream_prep(c, s, &ro, &streamed, st)) != SX_OK) return rc;
    if (!streamed) {
        if (!(s->q = sx_pl_read_inputs(c, 1, st))) return st->code;
        if (sx_pl_stage(c, "preprocess") != SX_OK) return canceled(st);
        rc = sx_prep_apply_reference(s->q, s->genes, s->G, &c->set.prep, &ro, &s->pr, &s->rep,
                                     c->prog, st);
        if (rc) return rc;
    }
    /* raw (the query over all its genes) is no output of a projection: free it now */
    sx_csr_free(s->q->raw_X);
    sx_frame_free(s->q->raw_var);
    s->q->raw_X = NULL;
    s->q->raw_var = NULL;
    sx_pl_log_prep(c, &s->pr, s->q);
    sx_pl_log_msg(&c->log, "Reference genes found in the query: %lld of %lld (%.1f%%)",
                  (long long)s->rep.n_present, (long long)s->rep.n_ref, 100 * s->rep.fraction);
    sx_pl_metric(c, "genes_present", (double)s->rep.n_present);
    sx_pl_metric(c, "genes_fraction", s->rep.fraction);
    s->nq = sx_dataset_n_obs(s->q);
    return SX_OK;
}

static int encode(sx_pl_ctx *c, proj *s, sx_status *st)
{
    if (sx_pl_stage(c, "encode") != SX_OK) return canceled(st);
    sx_nn_config cfg;
    sx_nn_model_get_config(s->R->model, &cfg);
    s->dim = (int)cfg.n_latent;
    if (s->dim != s->R->dim)
        return sx_status_set(st, SX_EFORMAT, "reference latent has %d columns, the model %d",
                             s->R->dim, s->dim);
    s->qlat = sx_mallocarray((size_t)s->nq * s->dim, sizeof *s->qlat);
    s->perm = sx_mallocarray((size_t)s->nq + 1, sizeof *s->perm);
    if (!s->qlat || !s->perm) return sx_pl_oom(st);
    sx_nn_infer_opts io;
    sx_pl_infer_opts(c, &io, s->perm, s->nq);
    /* encode a copy of the model: inference in train mode updates running statistics and
     * a cached reference must stay as loaded */
    sx_nn_model *mc = sx_nn_model_clone(s->R->model, cfg.dtype, st);
    if (!mc) return st->code;
    int rc = sx_nn_encode(mc, s->q->X, s->pr.domain_of_cell, &io, s->qlat, c->prog, st);
    sx_nn_model_free(mc);
    return rc;
}

/* The output dataset: reference cells first, then the query (X: write_x wrote it). */
static int combine_cells(proj *s, sx_status *st)
{
    int64_t n = s->n, n_ref = s->n_ref;
    char **names = sx_calloc((size_t)n + 1, sizeof *names);
    if (!names) return sx_pl_oom(st);
    for (int64_t i = 0; i < n; i++)
        names[i] = i < n_ref ? s->R->obs->index[i] : s->q->obs->index[i - n_ref];
    sx_frame *ob = NULL, *vr = NULL;
    if (!(s->out = sx_dataset_new(n, s->G, st)) ||
        !(ob = sx_frame_new(n, (const char *const *)names, st)) ||
        !(vr = sx_frame_copy(s->q->var, st))) {
        sx_frame_free(ob);
        sx_free(names);
        return st->code;
    }
    sx_free(names);
    sx_frame_free(s->out->obs);
    s->out->obs = ob;
    sx_frame_free(s->out->var);
    s->out->var = vr;
    return SX_OK;
}

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

/* The latent of reference + query; the query's own copy becomes a view into it. Made after
 * write_x freed X: the two together were the peak of a 1M-cell map's early stages. */
static int combine_latent(proj *s, sx_status *st)
{
    int64_t n = s->n, n_ref = s->n_ref;
    int dim = s->dim;
    if (!(s->all_lat = sx_mallocarray((size_t)n * dim, sizeof *s->all_lat))) return sx_pl_oom(st);
    if (n_ref) memcpy(s->all_lat, s->R->latent, (size_t)n_ref * dim * sizeof *s->all_lat);
    memcpy(s->all_lat + (size_t)n_ref * dim, s->qlat, (size_t)s->nq * dim * sizeof *s->qlat);
    sx_free(s->qlat); /* the same values, once */
    s->qlat = s->all_lat + (size_t)n_ref * dim;
    s->qlat_view = 1;
    return SX_OK;
}

/* obsm "latent" from all_lat, which is freed (and the view qlat with it): the obsm copy is
 * what the writer reads, and nothing else reads the latent after the neighbour search. */
static int keep_latent(proj *s, sx_status *st)
{
    int rc = sx_dataset_set_obsm(s->out, "latent", s->all_lat, s->n, s->dim, 0, st);
    sx_free(s->all_lat);
    s->all_lat = NULL;
    s->qlat = NULL;
    return rc;
}

/* The output's X: reference cells first (all zero: the reference's own adata.h5ad holds
 * their matrix), then the query's. It goes into adata.h5ad (its first element) as soon as
 * the query is encoded, and is freed: nothing reads it after the encoder, and a million-cell
 * query's reference-gene matrix is 1.1 GB that the neighbour search, the UMAP transform and
 * the writers would otherwise hold on top of their own memory (issue 15: a 1M-cell map in
 * 1.5 GB). Written before the output's obs is built, so the two are never held together. */
static int write_x(sx_pl_ctx *c, proj *s, sx_status *st)
{
    if (sx_pl_stage(c, "write_x") != SX_OK) return canceled(st);
    /* the reference's all-zero rows are only row offsets in front of the query's rows, so no
     * entry is copied (a vstack held the query's matrix twice) */
    sx_csr *X = s->q->X;
    int64_t n = s->n, n_ref = s->n_ref;
    if (n_ref) {
        int64_t *ip = sx_reallocarray(X->indptr, (size_t)n + 1, sizeof *ip);
        if (!ip) return sx_pl_oom(st);
        memmove(ip + n_ref, ip, (size_t)(s->nq + 1) * sizeof *ip);
        memset(ip, 0, (size_t)n_ref * sizeof *ip);
        X->indptr = ip;
        X->n_rows = n;
    }
    int rc = sx_pl_open_adata(c, &s->adata, st);
    if (rc == SX_OK) rc = sx_h5ad_writer_put_x(s->adata, X, 0, st); /* log values: float */
    if (rc != SX_OK) return rc;
    sx_csr_free(X);
    s->q->X = NULL;
    release_freed();
    return SX_OK;
}

/* obs of the output: "projection" (reference | query), batch, the label, and every column
 * present in both (as strings, S18) */
static int combine_obs(sx_pl_ctx *c, proj *s, sx_status *st)
{
    int64_t n = s->n, n_ref = s->n_ref;
    const sx_reference *R = s->R;
    int32_t *pc = sx_mallocarray((size_t)n + 1, sizeof *pc);
    if (!pc) return sx_pl_oom(st);
    for (int64_t i = 0; i < n; i++) pc[i] = i < n_ref ? 0 : 1;
    const char *pcats[2] = {"reference", "query"};
    int rc = sx_frame_add_categorical(s->out->obs, "projection", pc, pcats, 2, 0, st);
    sx_free(pc);
    for (int k = 0; rc == SX_OK && k < R->obs->n_cols; k++) {
        const sx_column *rcol = &R->obs->cols[k];
        if (strcmp(rcol->name, "leiden") == 0 || strcmp(rcol->name, "projection") == 0) continue;
        const sx_column *qcol = sx_frame_col(s->q->obs, rcol->name);
        const char *lab = c->set.label;
        int keep = qcol || strcmp(rcol->name, "batch") == 0 ||
                   (lab && sx_pl_label_listed(lab, rcol->name));
        if ((!keep || n_ref == 0) && !qcol) continue;
        rc = add_combined_col(s->out->obs, rcol->name, n_ref ? rcol : NULL, n_ref, qcol, s->nq, st);
    }
    if (rc == SX_OK && !sx_frame_col(s->out->obs, "batch"))
        rc = add_combined_col(s->out->obs, "batch", NULL, n_ref, sx_frame_col(s->q->obs, "batch"),
                              s->nq, st);
    return rc;
}

/* Options of the vote that carries the reference's clusters to the query. */
static void leiden_opts(const sx_pl_ctx *c, sx_transfer_opts *to)
{
    sx_transfer_opts_init(to);
    to->n_threads = c->set.threads;
    to->calibrate = 0; /* clusters: the vote alone */
}

/* Neighbours the fixed UMAP transform takes: its n_neighbors, at most the reference. */
static int umap_k(const sx_reference *R)
{
    sx_umap_params up;
    sx_umap_params_init(&up);
    return up.n_neighbors < R->n_cells ? up.n_neighbors : (int)R->n_cells;
}

/* The query's reference neighbours, searched once on first use, as wide as the widest user
 * needs: each label column's transfer, the fixed UMAP transform and the carried clusters
 * (each cuts its own columns: sx_knn_head). Searching per user cost one exact search per
 * label column plus one per UMAP and Leiden; under the index threshold the search is exact and
 * every user gets bit for bit its own search's neighbours. Above it, the reference's resident
 * graph index (R->index) is searched when it has one. A stage of its own ("knn"): callers
 * start theirs after it. */
static const sx_knn *neighbours(sx_pl_ctx *c, proj *s, sx_status *st)
{
    if (s->nb) return s->nb;
    if (sx_pl_stage(c, "knn") != SX_OK) {
        canceled(st);
        return NULL;
    }
    const sx_reference *R = s->R;
    int k = c->set.label_given ? sx_pl_transfer_k(c, R->n_cells) : 0;
    if (!c->set.ignore_umap && !s->joint) {
        int ku = umap_k(R);
        k = ku > k ? ku : k;
        if (c->set.leiden && sx_frame_col(R->obs, "leiden")) {
            sx_transfer_opts to;
            leiden_opts(c, &to);
            int kl = sx_transfer_k_needed(&to, R->n_cells);
            k = kl > k ? kl : k;
        }
    }
    if (k > R->n_cells) k = (int)R->n_cells; /* a tiny reference: each user reports its limit */
    sx_knn_opts ko;
    sx_knn_opts_init(&ko);
    ko.n_threads = c->set.threads;
    ko.seed = c->set.seed;
    s->nb = sx_knn_search_with(R->index, R->latent, R->n_cells, s->qlat, s->nq, s->dim, k, &ko,
                               c->prog, st);
    return s->nb;
}

/* label transfer, when a label column (or several, "a,b") was given */
static int transfer(sx_pl_ctx *c, proj *s, sx_status *st)
{
    const char *label = c->set.label_given;
    if (!label) return SX_OK;
    const sx_reference *R = s->R;
    const sx_knn *nb = neighbours(c, s, st); /* each label's transfer starts its stage */
    if (!nb) return st->code;
    sx_pl_transfer_in in = {R->latent, R->n_cells, NULL, s->qlat, s->nq, s->dim,
                            (const char *const *)s->q->obs->index, NULL,
                            sx_frame_col(R->obs, "batch"), nb, R};
    return sx_pl_transfer_all(c, &in, R->obs, s->q->obs, label, s->out, s->n_ref, st);
}

/* Leiden codes of reference + query: the reference's clusters, carried to the query by the
 * kNN vote; codes in numeric order of the cluster names ("2" before "10"). */
static int carry_leiden(sx_pl_ctx *c, proj *s, const sx_column *lc, sx_status *st)
{
    const sx_reference *R = s->R;
    int64_t n = s->n, n_ref = s->n_ref;
    const char **rl = sx_calloc((size_t)R->n_cells + 1, sizeof *rl);
    int32_t *codes = sx_mallocarray((size_t)n + 1, sizeof *codes);
    sx_transfer_result *ltr = NULL;
    int rc = rl && codes ? SX_OK : sx_pl_oom(st);
    for (int64_t i = 0; rc == SX_OK && i < R->n_cells; i++) {
        char buf[64];
        rl[i] = sx_column_text(lc, i, buf, sizeof buf);
    }
    sx_transfer_opts to;
    leiden_opts(c, &to);
    const sx_knn *nb = rc == SX_OK ? neighbours(c, s, st) : NULL;
    if (rc == SX_OK &&
        (!nb || !(ltr = sx_transfer_from_knn(R->latent, R->n_cells, rl, s->dim, nb, &to, st))))
        rc = st->code;
    if (rc == SX_OK) {
        int32_t ncl = 0;
        for (int64_t i = 0; i < R->n_cells; i++) {
            int v = atoi(rl[i]);
            if (v + 1 > ncl) ncl = v + 1;
        }
        for (int64_t i = 0; i < n; i++) {
            const char *t = i < n_ref ? rl[i] : sx_transfer_label(ltr, i - n_ref);
            codes[i] = t ? atoi(t) : -1;
        }
        rc = sx_pl_add_leiden(s->out->obs, codes, ncl, st);
    }
    sx_transfer_free(ltr);
    sx_free(rl);
    sx_free(codes);
    return rc;
}

/* the query on the reference's fixed map (umap-learn transform), clusters carried over */
static int fixed_umap(sx_pl_ctx *c, proj *s, sx_status *st)
{
    const sx_reference *R = s->R;
    const sx_knn *all = neighbours(c, s, st);
    if (!all) return st->code;
    /* the clusters are carried first, so that the search's result (as wide as the vote
     * needs: 30) is freed before the transform, which needs its own 15 columns and as much
     * memory again for its edges (issue 15: a 1M-cell map in 1.5 GB) */
    const sx_column *lc = sx_frame_col(R->obs, "leiden");
    if (lc && c->set.leiden) {
        if (sx_pl_stage(c, "leiden") != SX_OK) return canceled(st);
        int rc = carry_leiden(c, s, lc, st);
        if (rc != SX_OK) return rc;
    }
    sx_knn *nb = sx_knn_head(all, umap_k(R), st);
    if (!nb) return st->code;
    sx_knn_free(s->nb);
    s->nb = NULL;
    /* obsm "latent" now (it comes before X_umap in obsm: readers list obsm by name) */
    int rc = keep_latent(s, st);
    release_freed();
    if (rc == SX_OK && sx_pl_stage(c, "umap") != SX_OK) rc = canceled(st);
    if (rc != SX_OK) {
        sx_knn_free(nb);
        return rc;
    }
    sx_umap_params up;
    sx_umap_params_init(&up);
    up.a = R->umap_a;
    up.b = R->umap_b;
    up.n_threads = c->set.threads;
    memcpy(s->all_umap, R->umap, (size_t)s->n_ref * 2 * sizeof *s->all_umap);
    rc = sx_umap_transform_knn(nb, R->n_cells, R->umap, &up, s->all_umap + 2 * s->n_ref,
                                   c->prog, st);
    sx_knn_free(nb);
    if (rc) return rc;
    s->a = R->umap_a;
    s->b = R->umap_b;
    sx_pl_log_msg(&c->log, "UMAP: %lld query cells placed on the reference layout",
                  (long long)s->nq);
    return SX_OK;
}

static int embed(sx_pl_ctx *c, proj *s, sx_status *st)
{
    int rc, n_clusters = 0;
    if (!c->set.ignore_umap) {
        if (!(s->all_umap = sx_mallocarray((size_t)s->n * 2, sizeof *s->all_umap)))
            return sx_pl_oom(st);
        if (s->joint)
            rc = sx_pl_embed_graph(c, s->all_lat, s->n, s->dim, s->all_umap, &s->leiden,
                                   &n_clusters, &s->a, &s->b, st);
        else
            rc = fixed_umap(c, s, st);
        if (rc == SX_OK && s->joint) rc = sx_pl_add_leiden(s->out->obs, s->leiden, n_clusters, st);
        if (rc == SX_OK) rc = sx_pl_set_umap(s->out, s->all_umap, s->n, st);
        if (rc) return rc;
    }
    return s->all_lat ? keep_latent(s, st) : SX_OK; /* fixed_umap kept it already */
}

static int write_outputs(sx_pl_ctx *c, proj *s, sx_status *st)
{
    if (sx_pl_stage(c, "write") != SX_OK) return canceled(st);
    int ignore = c->set.ignore_umap;
    sx_pl_uns_provenance(c, s->out->uns, s->a, s->b, !ignore && s->joint);
    sx_uns *pv = sx_uns_get(s->out->uns, "scalexd");
    if (pv) sx_uns_set_string(pv, "umap", ignore ? "none" : s->joint ? "joint" : "fixed");
    int rc = sx_pl_finish_adata(c, s->adata, s->out, st);
    s->adata = NULL;
    rss_mark("adata.h5ad");
    if (rc || ignore || !c->set.plots) return rc ? rc : sx_pl_finish(c, s->out, s->nq, st);
    uint8_t *hl = sx_mallocarray((size_t)s->n + 1, sizeof *hl);
    if (!hl) return sx_pl_oom(st);
    for (int64_t i = 0; i < s->n; i++) hl[i] = i >= s->n_ref;
    char first[256], tl[300] = "";
    const char *label = c->set.label_given ? sx_pl_first_label(c->set.label_given, first,
                                                                sizeof first) : NULL;
    if (label) sx_jobdir_transfer_col(label, 0, tl, sizeof tl);
    const char *cols[] = {"projection", "batch", label, label ? tl : NULL};
    rc = sx_pl_plot_umap(c, s->out, s->all_umap, cols, 4, s->n_ref ? hl : NULL, NULL, st);
    sx_free(hl);
    return rc ? rc : sx_pl_finish(c, s->out, s->nq, st);
}

int sx_pl_project(sx_pl_ctx *c, sx_status *st)
{
    proj s;
    memset(&s, 0, sizeof s);
    int rc = load_reference(c, &s, st);
    rss_mark("reference");
    if (rc == SX_OK) rc = read_prep(c, &s, st);
    release_freed(); /* the slabs' buffers, before the encoder allocates */
    rss_mark("read+prep");
    if (rc == SX_OK) rc = encode(c, &s, st);
    rss_mark("encode");
    if (rc == SX_OK) {
        s.joint = c->set.joint_umap || !s.R->umap || c->set.repeat;
        /* the reference's cells lead the output (SCALEX's file), unless asked to leave them
         * to the reference (a map: a 1M-cell atlas is not copied into every answer); a
         * joint layout is computed with them, so they stay */
        int leave = !c->set.repeat && !c->set.reference_cells && !s.joint;
        s.n_ref = c->set.repeat || leave ? 0 : s.R->n_cells;
        s.n = s.n_ref + s.nq;
        if (leave)
            c->left_ref = (sx_pl_refrows){s.R->n_cells, (const char *const *)s.R->obs->index,
                                          s.R->latent, s.R->dim,
                                          c->set.ignore_umap ? NULL : s.R->umap};
        rc = write_x(c, &s, st);
    }
    rss_mark("write_x");
    if (rc == SX_OK) rc = combine_cells(&s, st);
    if (rc == SX_OK) rc = combine_latent(&s, st);
    if (rc == SX_OK) rc = combine_obs(c, &s, st);
    rss_mark("combine");
    if (rc == SX_OK) rc = transfer(c, &s, st);
    rss_mark("knn+transfer");
    sx_pl_qc_in qi = {&s.rep.match, s.out ? s.out->obs : NULL, s.n_ref, s.nq, s.pr.n_cells_in};
    if (rc == SX_OK) rc = sx_pl_qc(c, &qi, st);
    /* the query's own dataset (its obs) has been carried into the output by now */
    sx_dataset_free(s.q);
    s.q = NULL;
    release_freed();
    rss_mark("qc");
    if (rc == SX_OK) rc = embed(c, &s, st);
    rss_mark("leiden+umap");
    if (rc == SX_OK) rc = write_outputs(c, &s, st);
    rss_mark("tables");
    proj_clear(&s);
    return rc;
}
