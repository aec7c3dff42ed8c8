/* sx_nn_encode — inference: SCALEX's domain-pure chunk sampler, latent (mu) and imputation. */
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

/* Shared driver: latent (target < 0) or imputation into domain `target`. */
static int infer(sx_nn_model *m, const sx_csr *x, const int32_t *domain, int64_t target,
                 const sx_nn_infer_opts *opts, double *out, const sx_progress *p, sx_status *st)
{
    sx_nn_infer_opts o;
    if (opts)
        o = *opts;
    else
        sx_nn_infer_opts_default(&o);
    if (!x || !domain || !out)
        return sx_status_set(st, SX_EINVAL, "input matrix, domains and output are required");
    if (x->n_cols != m->G)
        return sx_status_set(st, SX_EINVAL, "input has %lld genes but the network expects %lld "
                             "(reindex the data to the model's gene list)",
                             (long long)x->n_cols, (long long)m->G);
    if (target >= m->D)
        return sx_status_set(st, SX_EINVAL, "imputation domain %lld does not exist (the model "
                             "has %lld domains)", (long long)target, (long long)m->D);
    if (o.batch_size < 1)
        return sx_status_set(st, SX_EINVAL, "inference batch size must be positive");
    int64_t *idx = NULL, *off = NULL, nc = 0;
    sx_nn_ws w;
    memset(&w, 0, sizeof w);
    sx_nn_pool *pool = NULL;
    int blas_prev = 0; /* 0: nothing to restore */
    int rc;
    /* Cells of the query may carry domains the model does not know (projection): the sampler
     * needs in-range codes only, so the encoder path accepts any non-negative code. */
    int64_t nd = m->D;
    for (int64_t i = 0; i < x->n_rows; i++) {
        if (domain[i] < 0)
            return sx_status_set(st, SX_EINVAL, "cell %lld has a negative domain code %d",
                                 (long long)i, domain[i]);
        if (domain[i] >= nd) nd = (int64_t)domain[i] + 1;
    }
    rc = sx_nn_domain_chunks(domain, x->n_rows, nd, o.perm, o.batch_size, &idx, &off, &nc, st);
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

int sx_nn_encode(sx_nn_model *m, const sx_csr *x, const int32_t *domain,
                 const sx_nn_infer_opts *o, double *latent, const sx_progress *p, sx_status *st)
{
    return infer(m, x, domain, -1, o, latent, p, st);
}

int sx_nn_impute(sx_nn_model *m, const sx_csr *x, const int32_t *domain, int64_t target_domain,
                 const sx_nn_infer_opts *o, double *out, const sx_progress *p, sx_status *st)
{
    if (target_domain < 0)
        return sx_status_set(st, SX_EINVAL, "imputation domain must be >= 0");
    return infer(m, x, domain, target_domain, o, out, p, st);
}
