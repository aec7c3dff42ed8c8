/* The cluster-pruned exact search (sx_knn_ivf) against independent truth: a brute-force
 * scan written here (every distance, sorted by (distance, row)), scikit-learn's neighbours
 * of the golden query/reference splits, and sx_knn_exact (identical except where BLAS
 * rounding reorders a near tie at the k-th place). Plus threads, edge cases, ties and
 * duplicates, the float32 filter's margins, the bounded-effort mode, and serialized buffers (round trip; damaged and
 * hostile ones refused). */
#include "embed_golden.h"
#include "sx_embed_internal.h"
#include "sx_knn.h"
#include "sx_knn_internal.h"
#include "sx_knn_ivf.h"

typedef struct dr {
    double d;
    int32_t r;
} dr;

static int dr_cmp(const void *a, const void *b)
{
    const dr *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return (x->r > y->r) - (x->r < y->r);
}

/* Brute force: every reference row's distance from coordinate differences. */
static sx_knn *brute(const double *R, int64_t nr, const double *Q, int64_t nq, int dim, int k)
{
    sx_knn *o = sx_calloc(1, sizeof *o);
    o->n_query = nq;
    o->k = k;
    o->idx = sx_mallocarray(nq * k, sizeof *o->idx);
    o->dist = sx_mallocarray(nq * k, sizeof *o->dist);
    dr *all = sx_mallocarray(nr, sizeof *all);
    for (int64_t i = 0; i < nq; i++) {
        for (int64_t r = 0; r < nr; r++) {
            double s = 0;
            for (int j = 0; j < dim; j++) {
                double t = Q[i * dim + j] - R[r * dim + j];
                s += t * t;
            }
            all[r] = (dr){sqrt(s), (int32_t)r};
        }
        qsort(all, nr, sizeof *all, dr_cmp);
        for (int j = 0; j < k; j++) {
            o->idx[i * k + j] = all[j].r;
            o->dist[i * k + j] = all[j].d;
        }
    }
    sx_free(all);
    return o;
}

static void assert_same(const sx_knn *a, const sx_knn *b)
{
    ck_assert_int_eq(a->n_query, b->n_query);
    ck_assert_int_eq(a->k, b->k);
    size_t m = (size_t)a->n_query * a->k;
    ck_assert(memcmp(a->idx, b->idx, m * sizeof *a->idx) == 0);
    ck_assert(memcmp(a->dist, b->dist, m * sizeof *a->dist) == 0);
}

/* Against sx_knn_exact: identical tables except rows where a near tie (distances within
 * 1e-9 relative) was ordered differently by BLAS rounding; returns how many rows differ. */
static int64_t vs_exact(const sx_knn *a, const sx_knn *e)
{
    int64_t rows = 0;
    for (int64_t i = 0; i < a->n_query; i++) {
        int diff = 0;
        for (int j = 0; j < a->k; j++) {
            int64_t p = i * a->k + j;
            if (a->idx[p] != e->idx[p]) diff = 1;
            /* the same rank's distance agrees even when the row swapped */
            ck_assert_double_le(fabs(a->dist[p] - e->dist[p]), 1e-9 * (1 + e->dist[p]));
            /* ours is brute force's, so never farther than exact's at any rank */
            ck_assert_double_le(a->dist[p], e->dist[p] * (1 + 1e-12) + 1e-300);
        }
        rows += diff;
    }
    return rows;
}

static double *clustered(int64_t n, int dim, int n_clusters, double spread, uint64_t seed)
{
    double *x = sx_mallocarray(n * dim, sizeof *x), *cen = sx_mallocarray(n_clusters * dim, sizeof *cen);
    sx_rng r;
    sx_rng_seed(&r, seed, 3);
    for (int64_t i = 0; i < n_clusters * dim; i++) cen[i] = 3.0 * sx_rng_normal(&r);
    for (int64_t i = 0; i < n; i++) {
        int64_t c = sx_rng_below(&r, n_clusters);
        for (int j = 0; j < dim; j++) x[i * dim + j] = cen[c * dim + j] + spread * (0.3 + j % 3) * sx_rng_normal(&r);
    }
    sx_free(cen);
    return x;
}

static sx_knn *ivf_search(const double *R, int64_t nr, const double *Q, int64_t nq, int dim, int k,
                          int nc, int threads)
{
    sx_status st = {0};
    sx_knn_ivf *ix = sx_knn_ivf_new(R, nr, dim, nc, threads, 42, NULL, &st);
    ck_assert_msg(ix, "%s", st.msg);
    sx_knn *a = sx_knn_ivf_search(ix, Q, nq, k, 0, threads, NULL, NULL, &st);
    ck_assert_msg(a, "%s", st.msg);
    sx_knn_ivf_free(ix);
    return a;
}

START_TEST(synthetic_matches_brute_force)
{
    const int dim = 10, ks[] = {1, 5, 15, 30};
    const int64_t nr = 3000, nq = 400;
    double *R = clustered(nr, dim, 12, 0.5, 1), *Q = clustered(nq, dim, 12, 0.5, 1 + 1000);
    sx_knn_opts o;
    sx_knn_opts_init(&o);
    o.n_threads = 2;
    sx_status st = {0};
    for (int a = 0; a < 4; a++) {
        int k = ks[a];
        sx_knn *truth = brute(R, nr, Q, nq, dim, k);
        sx_knn *ex = sx_knn_exact(R, nr, Q, nq, dim, k, &o, NULL, &st);
        ck_assert_msg(ex, "%s", st.msg);
        /* automatic, one, few and one-row-per-cluster partitions; 1 and 2 threads */
        const int ncs[] = {0, 1, 7, 3000};
        for (int b = 0; b < 4; b++)
            for (int th = 1; th <= 2; th++) {
                sx_knn *r = ivf_search(R, nr, Q, nq, dim, k, ncs[b], th);
                assert_same(r, truth);
                sx_knn_free(r);
            }
        int64_t rows = vs_exact(truth, ex);
        printf("synthetic k=%d: %lld of %lld rows differ from sx_knn_exact (near ties)\n", k,
               (long long)rows, (long long)nq);
        ck_assert_int_le(rows, nq / 100);
        sx_knn_free(truth);
        sx_knn_free(ex);
    }
    /* a query subset gives the same rows as the full search */
    sx_knn *full = ivf_search(R, nr, Q, nq, dim, 15, 0, 2);
    sx_knn *sub = ivf_search(R, nr, Q + 100 * dim, 37, dim, 15, 0, 2);
    ck_assert(memcmp(sub->idx, full->idx + 100 * 15, 37 * 15 * sizeof *sub->idx) == 0);
    sx_knn_free(full);
    sx_knn_free(sub);
    sx_free(R);
    sx_free(Q);
}
END_TEST

START_TEST(golden_latents_match_sklearn)
{
    for (int s = 0; s < EG_NSETS; s++) {
        eg g;
        eg_load(&g, EG_SETS[s]);
        /* SCALEX's own query/reference split, with scikit-learn's 5 neighbours */
        int64_t nr, nq, m;
        int64_t *ri = eg_i64(g.f, "label_transfer/ref_index", &nr);
        int64_t *qi = eg_i64(g.f, "label_transfer/query_index", &nq);
        double *gd = eg_f64(g.f, "label_transfer/neighbor_distances", &m);
        ck_assert_int_eq(m, nq * 5);
        int64_t *gi = eg_i64(g.f, "label_transfer/neighbor_ref_rows", &m);
        double *R = eg_rows(&g, ri, nr), *Q = eg_rows(&g, qi, nq);
        /* scikit-learn's 5-NN: same sets (a swap only at an exact distance tie) */
        sx_knn *r5 = ivf_search(R, nr, Q, nq, g.dim, 5, 0, 2);
        int64_t bad = 0;
        for (int64_t i = 0; i < nq; i++)
            for (int a = 0; a < 5; a++) {
                int found = 0;
                for (int b = 0; b < 5 && !found; b++) found = r5->idx[i * 5 + b] == gi[i * 5 + a];
                double dk = r5->dist[i * 5 + 4];
                if (!found && fabs(gd[i * 5 + a] - dk) > 1e-12 * (1 + dk)) bad++;
                ck_assert_double_le(fabs(r5->dist[i * 5 + a] - gd[i * 5 + a]), 1e-9);
            }
        ck_assert_int_eq(bad, 0);
        /* k = 30 against sx_knn_exact on all queries and brute force on a subset */
        sx_status st = {0};
        sx_knn *r30 = ivf_search(R, nr, Q, nq, g.dim, 30, 0, 2);
        sx_knn *e30 = sx_knn_exact(R, nr, Q, nq, g.dim, 30, NULL, NULL, &st);
        ck_assert_msg(e30, "%s", st.msg);
        int64_t rows = vs_exact(r30, e30);
        int64_t ns = nq < 300 ? nq : 300;
        sx_knn *b30 = brute(R, nr, Q, ns, g.dim, 30);
        ck_assert(memcmp(b30->idx, r30->idx, ns * 30 * sizeof *b30->idx) == 0);
        ck_assert(memcmp(b30->dist, r30->dist, ns * 30 * sizeof *b30->dist) == 0);
        printf("[%s] ivf: 5-NN = sklearn's; k=30: %lld of %lld rows differ from sx_knn_exact "
               "(near ties)\n", g.name, (long long)rows, (long long)nq);
        ck_assert_int_le(rows, nq / 100 + 1);
        sx_knn_free(b30);
        sx_knn_free(e30);
        sx_knn_free(r30);
        sx_knn_free(r5);
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

START_TEST(ties_duplicates_and_edges)
{
    /* integer grid points, each present three times: distances tie exactly, so the order
     * is by row and every path (brute force, BLAS tiles, pruning) must agree exactly */
    const int dim = 3;
    int64_t nr = 0;
    double *R = sx_mallocarray(6 * 6 * 6 * 3 * dim, sizeof *R);
    for (int rep = 0; rep < 3; rep++)
        for (int a = 0; a < 6; a++)
            for (int b = 0; b < 6; b++)
                for (int c = 0; c < 6; c++, nr++) {
                    R[nr * dim] = a;
                    R[nr * dim + 1] = b;
                    R[nr * dim + 2] = c;
                }
    double Q[4 * 3] = {0, 0, 0, 2.5, 2.5, 2.5, 3, 1, 4, -7, 9, 0.5};
    sx_status st = {0};
    for (int k = 1; k <= 30; k += 29) {
        sx_knn *truth = brute(R, nr, Q, 4, dim, k);
        sx_knn *ex = sx_knn_exact(R, nr, Q, 4, dim, k, NULL, NULL, &st);
        ck_assert(ex);
        assert_same(ex, truth);
        for (int nc = 0; nc <= 40; nc += 20) {
            sx_knn *r = ivf_search(R, nr, Q, 4, dim, k, nc, 2);
            assert_same(r, truth);
            sx_knn_free(r);
        }
        sx_knn_free(truth);
        sx_knn_free(ex);
    }
    /* one row; k = n_ref; k > n_ref refused like sx_knn_exact; zero queries */
    sx_knn_ivf *one = sx_knn_ivf_new(R, 1, dim, 0, 1, 1, NULL, &st);
    ck_assert(one);
    sx_knn *r1 = sx_knn_ivf_search(one, Q, 4, 1, 0, 2, NULL, NULL, &st);
    ck_assert(r1);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(r1->idx[i], 0);
    sx_knn_free(r1);
    ck_assert_ptr_null(sx_knn_ivf_search(one, Q, 4, 2, 0, 2, NULL, NULL, &st));
    ck_assert_int_eq(st.code, SX_EINVAL);
    ck_assert_ptr_null(sx_knn_exact(R, 1, Q, 4, dim, 2, NULL, NULL, &st));
    sx_knn *r0 = sx_knn_ivf_search(one, Q, 0, 1, 0, 2, NULL, NULL, &st);
    ck_assert(r0 && r0->n_query == 0);
    sx_knn_free(r0);
    sx_knn_ivf_free(one);
    sx_knn_ivf *ix = sx_knn_ivf_new(R, 20, dim, 0, 2, 1, NULL, &st);
    ck_assert(ix);
    sx_knn *all = sx_knn_ivf_search(ix, Q, 4, 20, 0, 2, NULL, NULL, &st);
    sx_knn *t20 = brute(R, 20, Q, 4, dim, 20);
    assert_same(all, t20);
    sx_knn_free(all);
    sx_knn_free(t20);
    /* non-finite query / reference refused */
    double bad[3] = {0, NAN, 1};
    ck_assert_ptr_null(sx_knn_ivf_search(ix, bad, 1, 1, 0, 1, NULL, NULL, &st));
    ck_assert_int_eq(st.code, SX_EDATA);
    ck_assert_ptr_null(sx_knn_ivf_new(bad, 1, dim, 0, 1, 1, NULL, &st));
    ck_assert_int_eq(st.code, SX_EDATA);
    ck_assert_ptr_null(sx_knn_ivf_new(R, 0, dim, 0, 1, 1, NULL, &st));
    ck_assert_int_eq(st.code, SX_EINVAL);
    sx_knn_ivf_free(ix);
    sx_free(R);
}
END_TEST

/* The scan filters rows in float32 before their float64 distance: where float32 cannot
 * resolve the distances at all (clusters of width 1e-3 at 1e6 from the origin, float's step
 * there 0.06) or only roughly (width 2e-4 at 1e3: without its margin the filter drops true
 * neighbours here), the filter must let every candidate through, and coordinates too
 * large for float32 (1e30) take the float64 path; all equal brute force bit for bit, with
 * 1 and 2 threads, on 10 dimensions (the unrolled kernel) and on 7, through each scan (AVX2
 * where the CPU has it, the portable float filter, float64 only). */
START_TEST(float_filter_is_exact)
{
    const int64_t nr = 3000, nq = 120;
    const double shift[4] = {0, 1e6, 1e3, 1e30}, scale[4] = {1, 1e-3, 2e-4, 1e28};
    for (int dim = 7; dim <= 10; dim += 3)
        for (int v = 0; v < 4; v++) {
            double *R = clustered(nr, dim, 12, 0.5, 21), *Q = clustered(nq, dim, 12, 0.5, 22);
            for (int64_t i = 0; i < nr * dim; i++) R[i] = shift[v] + scale[v] * R[i];
            for (int64_t i = 0; i < nq * dim; i++) Q[i] = shift[v] + scale[v] * Q[i];
            sx_knn *t = brute(R, nr, Q, nq, dim, 15);
            sx_status st = {0};
            sx_knn_ivf *ix = sx_knn_ivf_new(R, nr, dim, 0, 2, 42, NULL, &st);
            ck_assert_msg(ix, "%s", st.msg);
            for (int scan = SX_KNN_IVF_SCAN_AUTO; scan <= SX_KNN_IVF_SCAN_F64; scan++)
                for (int th = 1; th <= 2; th++) {
                    sx_knn_ivf_set_scan(ix, scan);
                    sx_knn *a = sx_knn_ivf_search(ix, Q, nq, 15, 0, th, NULL, NULL, &st);
                    ck_assert_msg(a, "%s", st.msg);
                    assert_same(a, t);
                    sx_knn_free(a);
                }
            sx_knn_ivf_free(ix);
            sx_knn_free(t);
            sx_free(R);
            sx_free(Q);
        }
}
END_TEST

START_TEST(one_cluster_and_bounded_mode)
{
    /* a reference that is one tight blob, queries inside and far outside it */
    const int dim = 10;
    const int64_t nr = 2000, nq = 200;
    double *R = clustered(nr, dim, 1, 0.2, 5), *Q = clustered(nq, dim, 3, 0.5, 6);
    sx_knn *truth = brute(R, nr, Q, nq, dim, 15);
    sx_knn *r = ivf_search(R, nr, Q, nq, dim, 15, 0, 2);
    assert_same(r, truth);
    sx_knn_free(r);
    /* bounded effort: approximate but full rows, better with more clusters visited */
    sx_status st = {0};
    double *R2 = clustered(20000, dim, 30, 0.6, 8), *Q2 = clustered(500, dim, 30, 0.6, 9);
    sx_knn_ivf *ix = sx_knn_ivf_new(R2, 20000, dim, 0, 2, 3, NULL, &st);
    ck_assert(ix);
    sx_knn *ex = sx_knn_ivf_search(ix, Q2, 500, 15, 0, 2, NULL, NULL, &st);
    double v_exact, v4;
    sx_knn *b4 = sx_knn_ivf_search(ix, Q2, 500, 15, 16, 2, NULL, &v4, &st);
    sx_knn *b1 = sx_knn_ivf_search(ix, Q2, 500, 15, 1, 2, NULL, NULL, &st);
    sx_knn *e2 = sx_knn_ivf_search(ix, Q2, 500, 15, 0, 1, NULL, &v_exact, &st);
    ck_assert(ex && b4 && b1 && e2);
    assert_same(ex, e2);
    double rec4 = sx_knn_recall(b4, ex), rec1 = sx_knn_recall(b1, ex);
    printf("bounded mode recall@15: 1 cluster %.4f, 16 clusters %.4f (visited %.4f vs exact "
           "%.4f)\n", rec1, rec4, v4, v_exact);
    ck_assert_double_ge(rec4, rec1);
    ck_assert_double_ge(rec4, 0.95);
    ck_assert_double_le(v4, v_exact);
    ck_assert_double_lt(v_exact, 0.5); /* the pruning prunes */
    for (int64_t i = 0; i < 500 * 15; i++) ck_assert(b1->idx[i] >= 0 && b1->idx[i] < 20000);
    /* one row per cluster, k = 30 > the clusters allowed: still k distinct rows, sorted */
    sx_knn_ivf *tiny = sx_knn_ivf_new(R2, 40, dim, 40, 1, 3, NULL, &st);
    ck_assert(tiny);
    sx_knn *bt = sx_knn_ivf_search(tiny, Q2, 50, 30, 2, 2, NULL, NULL, &st);
    ck_assert(bt);
    for (int64_t i = 0; i < 50; i++)
        for (int a = 0; a < 30; a++) {
            ck_assert(bt->idx[i * 30 + a] >= 0 && bt->idx[i * 30 + a] < 40);
            if (a) ck_assert_double_le(bt->dist[i * 30 + a - 1], bt->dist[i * 30 + a]);
            for (int b = 0; b < a; b++) ck_assert_int_ne(bt->idx[i * 30 + a], bt->idx[i * 30 + b]);
        }
    sx_knn_free(bt);
    sx_knn_ivf_free(tiny);
    sx_knn_free(ex);
    sx_knn_free(e2);
    sx_knn_free(b4);
    sx_knn_free(b1);
    sx_knn_ivf_free(ix);
    sx_free(R2);
    sx_free(Q2);
    sx_knn_free(truth);
    sx_free(R);
    sx_free(Q);
}
END_TEST

/* A damaged copy must be refused or, where the damage keeps every invariant the search
 * relies on, searchable without a wild access (ASan checks the latter). */
static int try_load(const void *buf, size_t len, const double *Q, int64_t nq)
{
    sx_status st = {0};
    sx_knn_ivf *ix = sx_knn_ivf_from_mem(buf, len, &st);
    if (!ix) {
        ck_assert(st.code == SX_EFORMAT || st.code == SX_EUNSUPPORTED);
        ck_assert(strstr(st.msg, "/") == NULL || strstr(st.msg, "index") != NULL);
        return 0;
    }
    sx_knn *r = sx_knn_ivf_search(ix, Q, nq, 3, 0, 1, NULL, NULL, &st);
    ck_assert(r);
    for (int64_t i = 0; i < nq * 3; i++) ck_assert(r->idx[i] >= 0 && r->idx[i] < sx_knn_ivf_rows(ix));
    sx_knn_free(r);
    sx_knn_ivf_free(ix);
    return 1;
}

/* The majority label of row i's 5 nearest (ties to the lowest label, as the transfer's vote). */
static int vote5(const sx_knn *r, int64_t i, const int32_t *lab)
{
    int best = -1, bc = 0;
    for (int a = 0; a < 5; a++) {
        int l = lab[r->idx[i * r->k + a]], c = 0;
        for (int b = 0; b < 5; b++) c += lab[r->idx[i * r->k + b]] == l;
        if (c > bc || (c == bc && l < best)) {
            bc = c;
            best = l;
        }
    }
    return best;
}

/* What a reference of SX_KNN_IVF_BOUND_FROM rows gets by default (sx_knn_index, AUTO): the
 * bounded mode, approximate. Against the exact search (itself brute force's, tests above) on
 * overlapping cell types (centres 1.2 apart per dimension, spreads 0.3-0.9: many kNN balls
 * span two types): recall of k = 15 >= 0.98 and the 5-NN vote equal on >= 99.5% of queries
 * (issue 15's bar). */
START_TEST(bounded_default_at_atlas_size)
{
    const int dim = 10, types = 40;
    const int64_t nr = SX_KNN_IVF_BOUND_FROM, nq = 3000;
    double mu[40][10], sd[40][10];
    sx_rng r;
    sx_rng_seed(&r, 77, 1);
    for (int t = 0; t < types; t++)
        for (int j = 0; j < dim; j++) {
            mu[t][j] = 1.2 * sx_rng_normal(&r);
            sd[t][j] = 0.3 + 0.6 * sx_rng_unif(&r);
        }
    double *R = sx_mallocarray((size_t)(nr + nq) * dim, sizeof *R);
    int32_t *lab = sx_mallocarray((size_t)(nr + nq), sizeof *lab);
    ck_assert(R && lab);
    for (int64_t i = 0; i < nr + nq; i++) {
        int t = (int)sx_rng_below(&r, types);
        lab[i] = t;
        for (int j = 0; j < dim; j++) R[i * dim + j] = mu[t][j] + sd[t][j] * sx_rng_normal(&r);
    }
    const double *Q = R + nr * dim;
    sx_status st = {0};
    sx_knn_opts o;
    sx_knn_opts_init(&o);
    o.n_threads = 2;
    sx_knn_index *ix = sx_knn_index_new(R, nr, dim, &o, NULL, &st);
    ck_assert_msg(ix, "%s", st.msg);
    ck_assert(!sx_knn_index_is_exact(ix));
    sx_knn *b = sx_knn_index_search(ix, Q, nq, 15, NULL, &st);
    ck_assert_msg(b, "%s", st.msg);
    sx_knn_ivf *iv = sx_knn_ivf_new(R, nr, dim, 0, 2, 5, NULL, &st);
    ck_assert_msg(iv, "%s", st.msg);
    sx_knn *ex = sx_knn_ivf_search(iv, Q, nq, 15, 0, 2, NULL, NULL, &st);
    ck_assert_msg(ex, "%s", st.msg);
    int64_t same = 0;
    for (int64_t i = 0; i < nq; i++) same += vote5(b, i, lab) == vote5(ex, i, lab);
    double rec = sx_knn_recall(b, ex), agree = (double)same / nq;
    printf("bounded default at %lld rows: recall@15 %.4f, 5-NN vote = exact's on %.4f\n",
           (long long)nr, rec, agree);
    ck_assert_double_ge(rec, 0.98);
    ck_assert_double_ge(agree, 0.995);
    sx_knn_free(b);
    sx_knn_free(ex);
    sx_knn_ivf_free(iv);
    sx_knn_index_free(ix);
    sx_free(R);
    sx_free(lab);
}
END_TEST

START_TEST(serialized_round_trip_and_hostile)
{
    const int dim = 4;
    const int64_t nr = 300, nq = 50;
    double *R = clustered(nr, dim, 5, 0.4, 11), *Q = clustered(nq, dim, 5, 0.4, 12);
    sx_status st = {0};
    sx_knn_ivf *ix = sx_knn_ivf_new(R, nr, dim, 0, 2, 9, NULL, &st);
    ck_assert(ix);
    size_t len = sx_knn_ivf_serialized_size(ix);
    ck_assert_uint_gt(len, 64);
    ck_assert_uint_ge(sx_knn_ivf_bytes(ix), len);
    uint64_t *store = sx_calloc(len / 8 + 2, 8);
    unsigned char *buf = (unsigned char *)store;
    ck_assert_int_eq(sx_knn_ivf_write(ix, buf, len - 1, &st), SX_ELIMIT);
    ck_assert_int_eq(sx_knn_ivf_write(ix, buf, len, &st), SX_OK);
    sx_knn_ivf *lx = sx_knn_ivf_from_mem(buf, len, &st);
    ck_assert_msg(lx, "%s", st.msg);
    ck_assert_int_eq(sx_knn_ivf_clusters(lx), sx_knn_ivf_clusters(ix));
    sx_knn *a = sx_knn_ivf_search(ix, Q, nq, 7, 0, 2, NULL, NULL, &st);
    sx_knn *b = sx_knn_ivf_search(lx, Q, nq, 7, 0, 2, NULL, NULL, &st);
    sx_knn *t = brute(R, nr, Q, nq, dim, 7);
    assert_same(a, b);
    assert_same(a, t);
    /* borrows the buffer: holds only its tables and the float copy (half of the rows' bytes) */
    ck_assert_uint_lt(sx_knn_ivf_bytes(lx), 4096 + (size_t)nr * dim * sizeof(float) + 32 * dim);
    sx_knn_free(a);
    sx_knn_free(b);
    sx_knn_free(t);
    sx_knn_ivf_free(lx);
    /* the build does not depend on the thread count: byte-identical index */
    sx_knn_ivf *i1 = sx_knn_ivf_new(R, nr, dim, 0, 1, 9, NULL, &st);
    ck_assert(i1 && sx_knn_ivf_serialized_size(i1) == len);
    unsigned char *b1 = sx_malloc(len + 8);
    ck_assert_int_eq(sx_knn_ivf_write(i1, b1, len, &st), SX_OK);
    ck_assert(memcmp(b1, buf, len) == 0);
    sx_free(b1);
    sx_knn_ivf_free(i1);
    /* a raised cancel flag stops the search */
    atomic_int cancel = 1;
    sx_progress pg = {.cancel = &cancel};
    ck_assert_ptr_null(sx_knn_ivf_search(ix, Q, nq, 3, 0, 2, &pg, NULL, &st));
    ck_assert_int_eq(st.code, SX_ECANCELED);
    ck_assert_ptr_null(sx_knn_ivf_new(R, nr, dim, 0, 2, 9, &pg, &st));
    ck_assert_int_eq(st.code, SX_ECANCELED);
    /* truncated at every length; misaligned */
    for (size_t l = 0; l < len; l += (l < 200 ? 1 : 37)) ck_assert_int_eq(try_load(buf, l, Q, nq), 0);
    ck_assert_ptr_null(sx_knn_ivf_from_mem(buf + 1, len - 1, &st));
    ck_assert_ptr_null(sx_knn_ivf_from_mem(NULL, len, &st));
    /* header fields: magic, version, dim, n, clusters */
    unsigned char *bad = (unsigned char *)sx_calloc(len / 8 + 2, 8);
    const size_t fields[] = {0, 8, 12, 16, 24};
    const int64_t vals[] = {0, -1, 1, 2, 1 << 20, INT32_MAX, (int64_t)INT32_MAX + 1, INT64_MAX};
    for (int f = 0; f < 5; f++)
        for (int v = 0; v < 8; v++) {
            memcpy(bad, buf, len);
            memcpy(bad + fields[f], &vals[v], f >= 3 ? 8 : 4);
            try_load(bad, len, Q, nq);
        }
    /* every byte of the sections flipped in turn (a sample of them) */
    int refused = 0, tried = 0;
    sx_rng r;
    sx_rng_seed(&r, 77, 0);
    for (size_t p = 64; p < len; p += 1 + sx_rng_below(&r, 5)) {
        memcpy(bad, buf, len);
        bad[p] ^= (unsigned char)(1u << sx_rng_below(&r, 8));
        refused += !try_load(bad, len, Q, nq);
        tried++;
    }
    printf("hostile buffers: %d of %d single-bit flips refused (the rest keep every invariant)\n",
           refused, tried);
    ck_assert_int_gt(refused, tried / 2);
    sx_free(bad);
    sx_free(store);
    sx_knn_ivf_free(ix);
    sx_free(R);
    sx_free(Q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("embed_knn_ivf");
    TCase *tc = tcase_create("knn_ivf");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, synthetic_matches_brute_force);
    tcase_add_test(tc, golden_latents_match_sklearn);
    tcase_add_test(tc, ties_duplicates_and_edges);
    tcase_add_test(tc, one_cluster_and_bounded_mode);
    tcase_add_test(tc, float_filter_is_exact);
    tcase_add_test(tc, bounded_default_at_atlas_size);
    tcase_add_test(tc, serialized_round_trip_and_hostile);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
