/* sx_nn_encode — inference: SCALEX's domain-pure chunk sampler, latent (mu) and imputation. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_nn_internal.h"

void sx_nn_infer_opts_default(sx_nn_infer_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch_size = 64;
}

int sx_nn_domain_chunks(const int32_t *domain, int64_t n, int64_t n_domains,
                        const int64_t *perm, int64_t batch_size, int64_t **idx_out,
                        int64_t **off_out, int64_t *n_chunks, sx_status *st)
{
    int64_t *idx = NULL, *off = NULL, *open = NULL, *first = NULL, *order = NULL;
    int64_t *cnt = NULL, *slot = NULL;
    int rc = SX_OK;
    *idx_out = *off_out = NULL;
    *n_chunks = 0;
    if (n < 0 || n_domains < 1 || batch_size < 1)
        return sx_status_set(st, SX_EINVAL, "bad sampler arguments (n %lld, domains %lld, "
                             "batch %lld)", (long long)n, (long long)n_domains,
                             (long long)batch_size);
    /* open list of domain d lives in slot[d*batch_size ...], cnt[d] entries */
    idx = sx_mallocarray((size_t)(n ? n : 1), sizeof(int64_t));
    off = sx_mallocarray((size_t)n + 2, sizeof(int64_t));
    cnt = sx_calloc((size_t)n_domains, sizeof(int64_t));
    first = sx_mallocarray((size_t)n_domains, sizeof(int64_t));
    order = sx_mallocarray((size_t)n_domains, sizeof(int64_t));
    slot = sx_mallocarray((size_t)(n_domains * batch_size), sizeof(int64_t));
    if (!idx || !off || !cnt || !first || !order || !slot) {
        rc = sx_status_set(st, SX_ENOMEM, "cannot allocate the inference sampler");
        goto fail;
    }
    for (int64_t d = 0; d < n_domains; d++) first[d] = -1;
    int64_t nc = 0, pos = 0, n_order = 0;
    off[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t c = perm ? perm[i] : i;
        if (c < 0 || c >= n) {
            rc = sx_status_set(st, SX_EINVAL, "permutation entry %lld is out of range",
                               (long long)c);
            goto fail;
        }
        int32_t d = domain[c];
        if (d < 0 || d >= n_domains) {
            rc = sx_status_set(st, SX_EINVAL, "cell %lld has domain %d outside 0..%lld",
                               (long long)c, d, (long long)n_domains - 1);
            goto fail;
        }
        if (first[d] < 0) {
            first[d] = i;
            order[n_order++] = d;
        }
        slot[d * batch_size + cnt[d]++] = c;
        if (cnt[d] == batch_size) {
            memcpy(idx + pos, slot + d * batch_size, (size_t)batch_size * sizeof(int64_t));
            pos += batch_size;
            off[++nc] = pos;
            cnt[d] = 0;
        }
    }
    /* leftovers in order of first appearance of their domain */
    for (int64_t j = 0; j < n_order; j++) {
        int64_t d = order[j];
        if (cnt[d] == 0) continue;
        memcpy(idx + pos, slot + d * batch_size, (size_t)cnt[d] * sizeof(int64_t));
        pos += cnt[d];
        off[++nc] = pos;
    }
    *idx_out = idx;
    *off_out = off;
    *n_chunks = nc;
    idx = off = NULL;
fail:
    sx_free(idx);
    sx_free(off);
    sx_free(cnt);
    sx_free(first);
    sx_free(order);
    sx_free(slot);
    sx_free(open);
    return rc;
}

/* Options, argument checks and SCALEX's chunks (caller frees *idx and *off), shared by the
 * two drivers below. */
static int infer_setup(const sx_nn_model *m, const sx_csr *x, const int32_t *domain,
                       int64_t target, const sx_nn_infer_opts *opts, double *out,
                       sx_nn_infer_opts *o, int64_t **idx, int64_t **off, int64_t *nc,
                       sx_status *st)
{
    if (opts)
        *o = *opts;
    else
        sx_nn_infer_opts_default(o);
    if (!x || !domain || !out)
        return sx_status_set(st, SX_EINVAL, "input matrix, domains and output are required");
    if (x->n_cols != m->G)
        return sx_status_set(st, SX_EINVAL, "input has %lld genes but the network expects %lld "
                             "(reindex the data to the model's gene list)",
                             (long long)x->n_cols, (long long)m->G);
    if (target >= m->D)
        return sx_status_set(st, SX_EINVAL, "imputation domain %lld does not exist (the model "
                             "has %lld domains)", (long long)target, (long long)m->D);
    if (o->batch_size < 1)
        return sx_status_set(st, SX_EINVAL, "inference batch size must be positive");
    /* Cells of the query may carry domains the model does not know (projection): the sampler
     * needs in-range codes only, so the encoder path accepts any non-negative code. */
    int64_t nd = m->D;
    for (int64_t i = 0; i < x->n_rows; i++) {
        if (domain[i] < 0)
            return sx_status_set(st, SX_EINVAL, "cell %lld has a negative domain code %d",
                                 (long long)i, domain[i]);
        if (domain[i] >= nd) nd = (int64_t)domain[i] + 1;
    }
    return sx_nn_domain_chunks(domain, x->n_rows, nd, o->perm, o->batch_size, idx, off, nc, st);
}

/* Minibatch driver: latent (target < 0) or imputation into domain `target`, one training-kernel
 * forward per chunk. */
int sx_nn_infer_minibatch(sx_nn_model *m, const sx_csr *x, const int32_t *domain,
                          int64_t target, const sx_nn_infer_opts *opts, double *out,
                          const sx_progress *p, sx_status *st)
{
    sx_nn_infer_opts o;
    int64_t *idx = NULL, *off = NULL, nc = 0;
    sx_nn_ws w;
    memset(&w, 0, sizeof w);
    sx_nn_pool *pool = NULL;
    int blas_prev = 0; /* 0: nothing to restore */
    int rc = infer_setup(m, x, domain, target, opts, out, &o, &idx, &off, &nc, st);
    if (rc) return rc;
    blas_prev = sx_nn_blas_threads();
    sx_nn_set_threads(1); /* the pool splits the sparse layer; BLAS calls left are small */
    pool = sx_nn_pool_new(o.threads, st);
    if (!pool) {
        rc = st ? st->code : SX_ENOMEM;
        goto fail;
    }
    const int64_t W = target < 0 ? m->Z : m->G;
    for (int64_t c = 0; c < nc; c++) {
        if (sx_progress_cancelled(p)) {
            rc = sx_status_set(st, SX_ECANCELED, "inference canceled");
            goto fail;
        }
        const int64_t *rows = idx + off[c];
        int64_t n = off[c + 1] - off[c];
        /* the encoder ignores domains; imputation puts every row in the target domain */
        if ((rc = sx_nn_ws_load(&w, m, x, rows, n, domain, target < 0 ? 0 : target, st)))
            goto fail;
        int flags = target < 0 ? SX_FWD_ENC_ONLY : 0;
        int upd = !o.eval && o.update_running_stats;
        if (m->dtype == SX_NN_F32)
            sx_nn_fwd_f32(m, &w, pool, o.eval, upd, flags, 0);
        else
            sx_nn_fwd_f64(m, &w, pool, o.eval, upd, flags, 0);
        const void *src = target < 0 ? w.mu : w.p;
        for (int64_t b = 0; b < n; b++)
            for (int64_t j = 0; j < W; j++)
                out[rows[b] * W + j] = m->dtype == SX_NN_F32
                                           ? ((const float *)src)[b * W + j]
                                           : ((const double *)src)[b * W + j];
        if (p && p->fn && (c % 64 == 63 || c == nc - 1))
            sx_progress_report(p, target < 0 ? "encode" : "impute", (double)(c + 1) / nc, NULL);
    }
    rc = SX_OK;
fail:
    sx_nn_set_threads(blas_prev); /* the caller's OpenBLAS setting back */
    sx_nn_pool_free(pool);
    sx_nn_ws_free(&w);
    sx_free(idx);
    sx_free(off);
    return rc;
}

/* ---- blocked encoder (sx_nn_encode) ----
 * Consecutive chunks are grouped into blocks of about ENC_BLOCK_ROWS rows; a block is one
 * sx_nn_enc_rows call on one thread (first layer of all its rows at once, then each chunk's
 * BN1, ReLU and mu head). The pool is dispatched once per ENC_BLOCKS_PER_RUN blocks per thread
 * and its threads take blocks from a shared counter. Every row's latent depends only on its
 * chunk, never on the block or thread that computed it, so the result is the same for any
 * thread count and equals the chunk-at-a-time driver's bit for bit (whole W1 tiles, see
 * sx_nn_kernels.inc). */

/* 512 rows: a W1 tile (512 KiB) is fetched once for 8 chunks, and the block's packed tile of
 * pre-activations (128 KiB) is still in L2 when BN1 reads it (the real 100k query of
 * bench_encode: 0.63 CPU s; 256 rows 0.72, 1024 rows 0.66). */
#define ENC_BLOCK_ROWS 512
#define ENC_BLOCKS_PER_RUN 8

typedef struct {
    sx_nn_model *m;
    const sx_csr *x;
    const int64_t *idx, *off; /* the sampler's chunks */
    const int64_t *blk;       /* block j = chunks [blk[j], blk[j + 1]) */
    int64_t c_base;           /* first chunk of this dispatch (row 0 of stats) */
    int64_t j_end;            /* end of this dispatch's blocks */
    atomic_llong next;        /* next block to take */
    atomic_int rc;            /* first error (SX_OK while none) */
    sx_nn_ws *ws;             /* one per thread */
    int64_t *cs;              /* per thread: cs_cap chunk starts of its block */
    int64_t cs_cap;
    sx_status *st;            /* one per thread */
    int eval;
    double *stats;            /* train mode with running-statistics updates: chunk x 2H */
    double *out;
} enc_job;

/* One pool slot per thread: take blocks until this dispatch's are gone. */
static void enc_slot(void *argp, int64_t t0, int64_t t1)
{
    enc_job *J = argp;
    sx_nn_model *m = J->m;
    const int64_t Z = m->Z;
    for (int64_t t = t0; t < t1; t++) {
        sx_nn_ws *w = &J->ws[t];
        int64_t *cs = J->cs + t * J->cs_cap;
        for (;;) {
            int64_t j = (int64_t)atomic_fetch_add(&J->next, 1);
            if (j >= J->j_end || atomic_load(&J->rc) != SX_OK) break;
            const int64_t c0 = J->blk[j], c1 = J->blk[j + 1], r0 = J->off[c0];
            const int64_t *rows = J->idx + r0;
            int rc = sx_nn_ws_load_csr(w, m, J->x, rows, J->off[c1] - r0, &J->st[t]);
            if (rc) {
                atomic_store(&J->rc, rc);
                break;
            }
            for (int64_t c = c0; c <= c1; c++) cs[c - c0] = J->off[c] - r0;
            double *stats = J->stats ? J->stats + (c0 - J->c_base) * 2 * m->H : NULL;
            if (m->dtype == SX_NN_F32)
                sx_nn_enc_rows_f32(m, w, cs, c1 - c0, J->eval, stats);
            else
                sx_nn_enc_rows_f64(m, w, cs, c1 - c0, J->eval, stats);
            for (int64_t b = 0; b < w->B; b++)
                for (int64_t k = 0; k < Z; k++)
                    J->out[rows[b] * Z + k] = m->dtype == SX_NN_F32
                                                  ? ((const float *)w->mu)[b * Z + k]
                                                  : ((const double *)w->mu)[b * Z + k];
        }
    }
}

/* Blocks of about ENC_BLOCK_ROWS rows of whole chunks: *blk (n_blocks + 1 entries, caller
 * frees), the largest block's chunk count in *max_chunks. */
static int64_t *make_blocks(const int64_t *off, int64_t nc, int64_t *n_blocks,
                            int64_t *max_chunks)
{
    int64_t *blk = sx_mallocarray((size_t)nc + 1, sizeof(int64_t)), nb = 0;
    if (!blk) return NULL;
    blk[0] = 0;
    *max_chunks = 1;
    for (int64_t c = 0; c < nc;) {
        int64_t c1 = c + 1;
        while (c1 < nc && off[c1 + 1] - off[c] <= ENC_BLOCK_ROWS) c1++;
        if (c1 - c > *max_chunks) *max_chunks = c1 - c;
        blk[++nb] = c = c1;
    }
    *n_blocks = nb;
    return blk;
}

/* Runs the blocks of [j0, j1) on the pool, then moves BN1's running statistics chunk by chunk
 * in the sampler's order when asked to. */
static int enc_run(enc_job *J, sx_nn_pool *pool, int64_t j0, int64_t j1, sx_status *st)
{
    J->c_base = J->blk[j0];
    J->j_end = j1;
    atomic_store(&J->next, j0);
    int nt = sx_nn_pool_threads(pool);
    sx_nn_pool_run(pool, enc_slot, J, nt, 1);
    int rc = atomic_load(&J->rc);
    if (rc) {
        for (int t = 0; t < nt; t++)
            if (J->st[t].code) return sx_status_set(st, rc, "%s", J->st[t].msg);
        return sx_status_set(st, rc, "the encoder failed");
    }
    if (J->stats)
        for (int64_t c = J->blk[j0]; c < J->blk[j1]; c++) {
            int64_t n = J->off[c + 1] - J->off[c];
            if (n < 2) continue;
            const double *sc = J->stats + (c - J->c_base) * 2 * J->m->H;
            if (J->m->dtype == SX_NN_F32)
                sx_nn_bn1_running_f32(J->m, sc, n);
            else
                sx_nn_bn1_running_f64(J->m, sc, n);
        }
    return SX_OK;
}

int sx_nn_encode(sx_nn_model *m, const sx_csr *x, const int32_t *domain,
                 const sx_nn_infer_opts *opts, double *latent, const sx_progress *p,
                 sx_status *st)
{
    sx_nn_infer_opts o;
    int64_t *idx = NULL, *off = NULL, nc = 0, nb = 0, maxc = 0;
    enc_job J;
    memset(&J, 0, sizeof J);
    sx_nn_pool *pool = NULL;
    int nt = 0, blas_prev = sx_nn_blas_threads();
    int rc = infer_setup(m, x, domain, -1, opts, latent, &o, &idx, &off, &nc, st);
    if (rc) return rc;
    sx_nn_set_threads(1); /* the pool's threads share the work; the head GEMMs are small */
    if (!(pool = sx_nn_pool_new(o.threads, st))) {
        rc = st ? st->code : SX_ENOMEM;
        goto fail;
    }
    nt = sx_nn_pool_threads(pool);
    const int64_t per_run = (int64_t)nt * ENC_BLOCKS_PER_RUN;
    J.blk = make_blocks(off, nc, &nb, &maxc);
    J.ws = sx_calloc((size_t)nt, sizeof *J.ws);
    J.cs = sx_mallocarray((size_t)nt * (size_t)(maxc + 1), sizeof(int64_t));
    J.st = sx_calloc((size_t)nt, sizeof *J.st);
    if (!o.eval && o.update_running_stats)
        J.stats = sx_mallocarray((size_t)(per_run * maxc) * 2 * (size_t)m->H, sizeof(double));
    if (!J.blk || !J.ws || !J.cs || !J.st || (!o.eval && o.update_running_stats && !J.stats)) {
        rc = sx_status_set(st, SX_ENOMEM, "cannot allocate the encoder's block lists");
        goto fail;
    }
    J.m = m;
    J.x = x;
    J.idx = idx;
    J.off = off;
    J.cs_cap = maxc + 1;
    J.eval = o.eval;
    J.out = latent;
    atomic_init(&J.rc, SX_OK);
    for (int64_t j = 0; j < nb; j += per_run) {
        if (sx_progress_cancelled(p)) {
            rc = sx_status_set(st, SX_ECANCELED, "inference canceled");
            goto fail;
        }
        if ((rc = enc_run(&J, pool, j, j + per_run < nb ? j + per_run : nb, st))) goto fail;
        if (p && p->fn)
            sx_progress_report(p, "encode", (double)J.blk[j + per_run < nb ? j + per_run : nb] /
                                                (double)(nc ? nc : 1), NULL);
    }
    rc = SX_OK;
fail:
    sx_nn_set_threads(blas_prev); /* the caller's OpenBLAS setting back */
    sx_nn_pool_free(pool);
    for (int t = 0; J.ws && t < nt; t++) sx_nn_ws_free(&J.ws[t]);
    sx_free(J.ws);
    sx_free(J.cs);
    sx_free(J.st);
    sx_free(J.stats);
    sx_free((int64_t *)J.blk);
    sx_free(idx);
    sx_free(off);
    return rc;
}

int sx_nn_impute(sx_nn_model *m, const sx_csr *x, const int32_t *domain, int64_t target_domain,
                 const sx_nn_infer_opts *o, double *out, const sx_progress *p, sx_status *st)
{
    if (target_domain < 0)
        return sx_status_set(st, SX_EINVAL, "imputation domain must be >= 0");
    return sx_nn_infer_minibatch(m, x, domain, target_domain, o, out, p, st);
}
