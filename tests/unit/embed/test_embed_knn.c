/* Exact kNN against scikit-learn's NearestNeighbors(30) on the golden latents; NN-descent
 * recall against exact; threading and float32 paths; argument errors; the search index
 * (exact and graph) against a brute-force scan. */
#include "embed_golden.h"
#include "sx_embed_internal.h"
#include "sx_knn.h"

/* Share of golden neighbour sets matched; a mismatch is accepted only as a distance tie at
 * the k-th position (sklearn leaves those unspecified). */
static void compare_sets(const sx_knn *r, const int64_t *gi, const double *gd, int64_t n, int k,
                         int *n_bad_out, int *n_tie_out)
{
    int bad = 0, ties = 0;
    for (int64_t i = 0; i < n; i++) {
        for (int a = 0; a < k; a++) {
            int64_t v = gi[i * k + a];
            int found = 0;
            for (int b = 0; b < k && !found; b++) found = r->idx[i * k + b] == v;
            if (found) continue;
            /* a tie: the missing neighbour is at the k-th distance of our list */
            double dk = r->dist[i * k + k - 1];
            if (fabs(gd[i * k + a] - dk) <= 1e-12 * (1 + dk)) ties++;
            else bad++;
        }
    }
    *n_bad_out = bad;
    *n_tie_out = ties;
}

START_TEST(exact_matches_sklearn)
{
    for (int s = 0; s < EG_NSETS; s++) {
        eg g;
        eg_load(&g, EG_SETS[s]);
        int64_t m;
        int64_t *gi = eg_i64(g.f, "knn_sklearn/indices", &m);
        double *gd = eg_f64(g.f, "knn_sklearn/distances", &m);
        int k = (int)(m / g.n);
        ck_assert_int_eq(k, 30);
        sx_status st = {0};
        sx_knn_opts o;
        sx_knn_opts_init(&o);
        o.n_threads = 2;
        sx_knn *r = sx_knn_exact(g.latent, g.n, NULL, 0, g.dim, k, &o, NULL, &st);
        ck_assert_msg(r, "%s", st.msg);
        int bad, ties;
        compare_sets(r, gi, gd, g.n, k, &bad, &ties);
        double maxd = 0;
        int self_first = 1;
        for (int64_t i = 0; i < g.n; i++) {
            self_first &= r->idx[i * k] == i && r->dist[i * k] == 0.0;
            for (int j = 0; j < k; j++) {
                double d = fabs(r->dist[i * k + j] - gd[i * k + j]);
                if (d > maxd) maxd = d;
            }
        }
        printf("[%s] exact kNN k=30: %d neighbours differ beyond ties, %d tie swaps, max |d - "
               "sklearn| = %.2e\n",
               g.name, bad, ties, maxd);
        ck_assert_int_eq(bad, 0);
        ck_assert(self_first);
        ck_assert_double_le(maxd, 1e-12);
        /* one thread gives the identical table */
        o.n_threads = 1;
        sx_knn *r1 = sx_knn_exact(g.latent, g.n, NULL, 0, g.dim, k, &o, NULL, &st);
        ck_assert(r1);
        ck_assert(memcmp(r1->idx, r->idx, (size_t)g.n * k * sizeof *r->idx) == 0);
        /* float32 latent: same sets except float rounding near ties */
        float *xf = sx_mallocarray(g.n * g.dim, sizeof *xf);
        for (int64_t i = 0; i < g.n * g.dim; i++) xf[i] = (float)g.latent[i];
        sx_knn *rf = sx_knn_exact_f32(xf, g.n, NULL, 0, g.dim, k, &o, NULL, &st);
        ck_assert(rf);
        ck_assert_double_ge(sx_knn_recall(rf, r), 0.995);
        /* excluding self gives the next k */
        o.exclude_self = 1;
        sx_knn *rx = sx_knn_exact(g.latent, g.n, NULL, 0, g.dim, k - 1, &o, NULL, &st);
        ck_assert(rx);
        for (int64_t i = 0; i < g.n; i++)
            for (int j = 0; j < k - 1; j++) ck_assert_int_eq(rx->idx[i * (k - 1) + j], r->idx[i * k + j + 1]);
        sx_knn_free(rx);
        sx_knn_free(rf);
        sx_free(xf);
        sx_knn_free(r1);
        sx_knn_free(r);
        sx_free(gi);
        sx_free(gd);
        eg_close(&g);
    }
}
END_TEST

START_TEST(query_vs_reference)
{
    /* the label-transfer neighbours: 5 nearest reference cells of each query cell */
    for (int s = 0; s < EG_NSETS; s++) {
        eg g;
        eg_load(&g, EG_SETS[s]);
        int64_t nr, nq, m;
        int64_t *ri = eg_i64(g.f, "label_transfer/ref_index", &nr);
        int64_t *qi = eg_i64(g.f, "label_transfer/query_index", &nq);
        int64_t *gi = eg_i64(g.f, "label_transfer/neighbor_ref_rows", &m);
        double *gd = eg_f64(g.f, "label_transfer/neighbor_distances", &m);
        double *R = eg_rows(&g, ri, nr), *Q = eg_rows(&g, qi, nq);
        sx_status st = {0};
        sx_knn *r = sx_knn_exact(R, nr, Q, nq, g.dim, 5, NULL, NULL, &st);
        ck_assert_msg(r, "%s", st.msg);
        int bad, ties;
        compare_sets(r, gi, gd, nq, 5, &bad, &ties);
        printf("[%s] query->reference 5-NN: %d differ, %d tie swaps\n", g.name, bad, ties);
        ck_assert_int_eq(bad, 0);
        sx_knn_free(r);
        sx_free(R);
        sx_free(Q);
        sx_free(ri);
        sx_free(qi);
        sx_free(gi);
        sx_free(gd);
        eg_close(&g);
    }
}
END_TEST

/* Clustered Gaussian data (what the bench uses at scale). */
static double *clustered(int64_t n, int dim, int n_clusters, uint64_t seed)
{
    double *x = sx_mallocarray(n * dim, sizeof *x);
    double *cen = sx_mallocarray(n_clusters * dim, sizeof *cen);
    sx_rng r;
    sx_rng_seed(&r, seed, 1);
    for (int i = 0; i < n_clusters * dim; i++) cen[i] = sx_rng_normal(&r) * 5.0;
    for (int64_t i = 0; i < n; i++) {
        int c = (int)sx_rng_below(&r, n_clusters);
        for (int d = 0; d < dim; d++) x[i * dim + d] = cen[c * dim + d] + sx_rng_normal(&r);
    }
    sx_free(cen);
    return x;
}

START_TEST(nndescent_recall)
{
    int64_t n = 20000;
    int dim = 10, k = 30;
    double *x = clustered(n, dim, 20, 7);
    sx_status st = {0};
    sx_knn_opts o;
    sx_knn_opts_init(&o);
    o.n_threads = 2;
    sx_knn *ex = sx_knn_exact(x, n, NULL, 0, dim, k, &o, NULL, &st);
    ck_assert_msg(ex, "%s", st.msg);
    sx_knn *ap = sx_knn_nndescent(x, n, dim, k, &o, NULL, &st);
    ck_assert_msg(ap, "%s", st.msg);
    double rec = sx_knn_recall(ap, ex);
    printf("NN-descent recall vs exact (20000 x 10, k=30, 20 clusters): %.4f\n", rec);
    ck_assert_double_ge(rec, 0.95);
    for (int64_t i = 0; i < n; i++) {
        ck_assert_int_eq(ap->idx[i * k], i);
        for (int j = 1; j < k; j++) ck_assert(ap->dist[i * k + j] >= ap->dist[i * k + j - 1]);
    }
    /* deterministic for a seed and thread count */
    sx_knn *ap2 = sx_knn_nndescent(x, n, dim, k, &o, NULL, &st);
    ck_assert(memcmp(ap->idx, ap2->idx, (size_t)n * k * sizeof *ap->idx) == 0);
    sx_knn_free(ap2);
    /* on a real latent as well */
    eg g;
    eg_load(&g, "pbmc_3tech");
    sx_knn *e2 = sx_knn_exact(g.latent, g.n, NULL, 0, g.dim, k, &o, NULL, &st);
    sx_knn *a2 = sx_knn_nndescent(g.latent, g.n, g.dim, k, &o, NULL, &st);
    ck_assert(e2 && a2);
    double rec2 = sx_knn_recall(a2, e2);
    printf("NN-descent recall vs exact (pbmc_3tech latent, k=30): %.4f\n", rec2);
    ck_assert_double_ge(rec2, 0.95);
    sx_knn_free(e2);
    sx_knn_free(a2);
    eg_close(&g);
    sx_knn_free(ex);
    sx_knn_free(ap);
    sx_free(x);
}
END_TEST

/* Independent truth for the index: a plain O(n_ref) scan per query keeping the k smallest
 * (squared distance, row) pairs by insertion. */
static void naive_knn(const double *R, int64_t nr, const double *Q, int64_t nq, int dim, int k,
                      int32_t *oi, double *od)
{
    for (int64_t q = 0; q < nq; q++) {
        int32_t *ix = oi + q * k;
        double *d = od + q * k;
        int c = 0;
        for (int64_t r = 0; r < nr; r++) {
            double s = 0;
            for (int j = 0; j < dim; j++) s += (Q[q * dim + j] - R[r * dim + j]) * (Q[q * dim + j] - R[r * dim + j]);
            if (c == k && s >= d[k - 1]) continue;
            int p = c < k ? c++ : k - 1;
            while (p > 0 && d[p - 1] > s) {
                d[p] = d[p - 1];
                ix[p] = ix[p - 1];
                p--;
            }
            d[p] = s;
            ix[p] = (int32_t)r;
        }
        for (int j = 0; j < k; j++) d[j] = sqrt(d[j]);
    }
}

/* Overlapping cell types: centres close enough that types touch (labels = type). */
static double *typed(int64_t n, int dim, int n_types, uint64_t seed, int32_t *lab)
{
    double *x = sx_mallocarray(n * dim, sizeof *x);
    sx_rng cr, r;
    sx_rng_seed(&cr, 99, 0); /* one world for reference and query */
    sx_rng_seed(&r, seed, 1);
    double cen[32 * 16];
    for (int i = 0; i < n_types * dim; i++) cen[i] = sx_rng_normal(&cr) * 2.0;
    for (int64_t i = 0; i < n; i++) {
        int c = (int)sx_rng_below(&r, n_types);
        lab[i] = c;
        for (int d = 0; d < dim; d++) x[i * dim + d] = cen[c * dim + d] + sx_rng_normal(&r);
    }
    return x;
}

static int vote5(const int32_t *idx, const int32_t *lab)
{
    int cnt[32] = {0}, best = 0;
    for (int j = 0; j < 5; j++) cnt[lab[idx[j]]]++;
    for (int t = 1; t < 32; t++)
        if (cnt[t] > cnt[best]) best = t;
    return best;
}

START_TEST(index_against_brute_force)
{
    int64_t nr = 30000, nq = 3000;
    int dim = 10, k = 30, nt = 16;
    int32_t *lr = sx_mallocarray(nr, sizeof *lr), *lq = sx_mallocarray(nq, sizeof *lq);
    double *R = typed(nr, dim, nt, 5, lr), *Q = typed(nq, dim, nt, 6, lq);
    for (int64_t i = 0; i < 50; i++) /* copies of reference cells: distance 0 */
        memcpy(Q + i * dim, R + (i * 397) * dim, dim * sizeof *Q);
    int32_t *ti = sx_mallocarray(nq * k, sizeof *ti);
    double *td = sx_mallocarray(nq * k, sizeof *td);
    naive_knn(R, nr, Q, nq, dim, k, ti, td);
    sx_status st = {0};
    sx_knn_opts o;
    sx_knn_opts_init(&o);
    o.n_threads = 2;
    sx_knn truth = {.n_query = nq, .k = k, .idx = ti, .dist = td};
    for (int method = SX_KNN_EXACT; method <= SX_KNN_APPROX; method++) {
        o.method = method;
        sx_knn_index *ix = sx_knn_index_new(R, nr, dim, &o, NULL, &st);
        ck_assert_msg(ix, "%s", st.msg);
        ck_assert_int_eq(sx_knn_index_is_exact(ix), method == SX_KNN_EXACT);
        sx_knn *a = sx_knn_index_search(ix, Q, nq, k, NULL, &st);
        ck_assert_msg(a, "%s", st.msg);
        int64_t agree = 0;
        for (int64_t q = 0; q < nq; q++) {
            agree += vote5(a->idx + q * k, lr) == vote5(ti + q * k, lr);
            for (int j = 0; j < k; j++) { /* sorted, and each distance the true one */
                const double *r = R + (int64_t)a->idx[q * k + j] * dim;
                double s = 0;
                for (int d = 0; d < dim; d++) s += (Q[q * dim + d] - r[d]) * (Q[q * dim + d] - r[d]);
                ck_assert(fabs(a->dist[q * k + j] - sqrt(s)) <= 1e-12 * (1 + sqrt(s)));
                if (j) ck_assert(a->dist[q * k + j] >= a->dist[q * k + j - 1]);
            }
            if (q < 50) ck_assert(a->dist[q * k] == 0.0);
        }
        double rec = sx_knn_recall(a, &truth), agr = (double)agree / nq;
        printf("index (%s) vs brute force, 30000 x 10, k=30: recall %.4f, 5-NN label agreement %.4f\n",
               method == SX_KNN_EXACT ? "exact" : "graph", rec, agr);
        if (method == SX_KNN_EXACT) {
            int bad, ties;
            int64_t *gi = sx_mallocarray(nq * k, sizeof *gi);
            for (int64_t i = 0; i < nq * k; i++) gi[i] = ti[i];
            compare_sets(a, gi, td, nq, k, &bad, &ties);
            ck_assert_int_eq(bad, 0);
            sx_free(gi);
        } else {
            ck_assert_double_ge(rec, 0.98);
            ck_assert_double_ge(agr, 0.995);
            /* each query searched on its own: the thread count changes nothing */
            sx_knn_opts o1 = o;
            o1.n_threads = 1;
            sx_knn_index *ix1 = sx_knn_index_new(R, nr, dim, &o1, NULL, &st);
            sx_knn *b = ix1 ? sx_knn_index_search(ix1, Q, nq, k, NULL, &st) : NULL;
            ck_assert_msg(b, "%s", st.msg);
            ck_assert(memcmp(a->idx, b->idx, (size_t)nq * k * sizeof *a->idx) == 0);
            ck_assert(memcmp(a->dist, b->dist, (size_t)nq * k * sizeof *a->dist) == 0);
            sx_knn_free(b);
            sx_knn_index_free(ix1);
            ck_assert_uint_gt(sx_knn_index_bytes(ix), (size_t)nr * dim * sizeof(float));
        }
        /* the bad request is refused, not searched */
        ck_assert_ptr_null(sx_knn_index_search(ix, Q, nq, (int)nr + 1, NULL, &st));
        ck_assert_int_eq(st.code, SX_EINVAL);
        sx_knn_free(a);
        sx_knn_index_free(ix);
    }
    /* the one-shot search picks the graph for a large query on a large reference */
    o.method = SX_KNN_AUTO;
    o.approx_from = 20000;
    sx_knn *c = sx_knn_search(R, nr, Q, nq, dim, 5, &o, NULL, &st);
    ck_assert_msg(c, "%s", st.msg);
    ck_assert_int_eq(c->k, 5);
    sx_knn_free(c);
    sx_free(ti);
    sx_free(td);
    sx_free(R);
    sx_free(Q);
    sx_free(lr);
    sx_free(lq);
}
END_TEST

START_TEST(errors_and_ties)
{
    double x[8] = {0, 0, 1, 0, 0, 1, 1, 1}; /* unit square: every cell has two neighbours at 1 */
    sx_status st = {0};
    ck_assert_ptr_null(sx_knn_exact(x, 4, NULL, 0, 2, 5, NULL, NULL, &st));
    ck_assert_int_eq(st.code, SX_EINVAL);
    sx_knn *r = sx_knn_exact(x, 4, NULL, 0, 2, 3, NULL, NULL, &st);
    ck_assert(r);
    /* ties at distance 1 resolved by lower index */
    ck_assert_int_eq(r->idx[0], 0);
    ck_assert_int_eq(r->idx[1], 1);
    ck_assert_int_eq(r->idx[2], 2);
    ck_assert_int_eq(r->idx[3 * 3], 3);
    ck_assert_int_eq(r->idx[3 * 3 + 1], 1);
    ck_assert_int_eq(r->idx[3 * 3 + 2], 2);
    sx_knn_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("embed_knn");
    TCase *tc = tcase_create("knn");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, exact_matches_sklearn);
    tcase_add_test(tc, query_vs_reference);
    tcase_add_test(tc, nndescent_recall);
    tcase_add_test(tc, errors_and_ties);
    tcase_add_test(tc, index_against_brute_force);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
