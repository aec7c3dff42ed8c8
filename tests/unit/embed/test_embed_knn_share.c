/* One neighbour search shared by a projection's users (sx_knn_head, sx_knn_search_with,
 * sx_transfer_from_knn): the columns cut from one wide exact search equal, bit for bit, an
 * exact search of that width, ties and near-ties included; a label transfer from a shared
 * search equals sx_transfer_knn's own search in every output. */
#include "embed_golden.h"
#include "sx_embed_internal.h"
#include "sx_knn.h"
#include "sx_transfer.h"

#define KW 30 /* the wide search: the UMAP transform's n_neighbors */

/* a and b hold the same neighbours and distances, bit for bit */
static int same_knn(const sx_knn *a, const sx_knn *b)
{
    if (a->n_query != b->n_query || a->k != b->k) return 0;
    size_t m = (size_t)a->n_query * a->k;
    return memcmp(a->idx, b->idx, m * sizeof *a->idx) == 0 &&
           memcmp(a->dist, b->dist, m * sizeof *a->dist) == 0;
}

/* For every k in 1..KW: the head of one wide exact search equals an exact k-search. Returns
 * how many (query, k) rows differ between the naive first-k columns and the k-search (the
 * rounding the choice order protects against; printed, not asserted: it depends on BLAS). */
static int64_t check_heads(const double *R, int64_t nr, const double *Q, int64_t nq, int dim)
{
    sx_status st = {0};
    sx_knn_opts o;
    sx_knn_opts_init(&o);
    o.n_threads = 2;
    o.keep_rank = 1;
    sx_knn *wide = sx_knn_exact(R, nr, Q, nq, dim, KW, &o, NULL, &st);
    ck_assert_msg(wide && wide->rank, "%s", st.msg);
    /* the search the projection makes below the index threshold is that same exact search */
    sx_knn *shared = sx_knn_search(R, nr, Q, nq, dim, KW, &o, NULL, &st);
    ck_assert_msg(shared && shared->rank && same_knn(shared, wide), "%s", st.msg);
    int64_t naive_diff = 0;
    o.keep_rank = 0;
    for (int k = 1; k <= KW; k++) {
        sx_knn *own = sx_knn_exact(R, nr, Q, nq, dim, k, &o, NULL, &st);
        sx_knn *head = sx_knn_head(wide, k, &st);
        ck_assert_msg(own && head, "%s", st.msg);
        ck_assert_msg(same_knn(head, own), "k = %d: the head of a %d-search is not a %d-search",
                      k, KW, k);
        for (int64_t i = 0; i < nq; i++)
            naive_diff += memcmp(wide->idx + i * KW, own->idx + i * k, (size_t)k * sizeof(int32_t)) != 0;
        sx_knn_free(own);
        sx_knn_free(head);
    }
    sx_knn_free(shared);
    sx_knn_free(wide);
    return naive_diff;
}

START_TEST(head_equals_narrow_search_golden)
{
    for (int s = 0; s < EG_NSETS; s++) { /* real latents: reference = even cells, query = odd */
        eg g;
        eg_load(&g, EG_SETS[s]);
        int64_t nr = (g.n + 1) / 2, nq = g.n / 2;
        double *R = sx_mallocarray(nr * g.dim, sizeof *R), *Q = sx_mallocarray(nq * g.dim, sizeof *Q);
        for (int64_t i = 0; i < g.n; i++)
            memcpy((i & 1 ? Q : R) + (i / 2) * g.dim, g.latent + i * g.dim, g.dim * sizeof *R);
        int64_t nd = check_heads(R, nr, Q, nq, g.dim);
        printf("[%s] heads of one k=%d search equal k-searches for k = 1..%d (naive prefixes "
               "differing: %lld rows)\n", g.name, KW, KW, (long long)nd);
        sx_free(R);
        sx_free(Q);
        eg_close(&g);
    }
}
END_TEST

/* Exact ties: points on a small integer lattice (many duplicates, many equal distances,
 * all computed exactly) must keep the lower row first whatever the width. */
START_TEST(head_equals_narrow_search_ties)
{
    int64_t nr = 3000, nq = 400;
    int dim = 6;
    double *R = sx_mallocarray(nr * dim, sizeof *R), *Q = sx_mallocarray(nq * dim, sizeof *Q);
    sx_rng r;
    sx_rng_seed(&r, 3, 0);
    for (int64_t i = 0; i < nr * dim; i++) R[i] = (double)sx_rng_below(&r, 3);
    for (int64_t i = 0; i < nq * dim; i++) Q[i] = 0.5 * (double)sx_rng_below(&r, 6);
    int64_t nd = check_heads(R, nr, Q, nq, dim);
    ck_assert_int_eq(nd, 0); /* exact arithmetic: the two orders agree, prefixes are searches */
    sx_free(R);
    sx_free(Q);
}
END_TEST

/* Near-ties: reference cells on a unit sphere around a point far from the origin, where the
 * BLAS form |q|^2 - 2 q.r + |r|^2 rounds at about 1e-9 and the true distances differ by less:
 * the choice order and the distance order disagree, so only the rank makes heads exact. */
START_TEST(head_equals_narrow_search_near_ties)
{
    int64_t nr = 2000, nq = 200;
    int dim = 10;
    double *R = sx_mallocarray(nr * dim, sizeof *R), *Q = sx_mallocarray(nq * dim, sizeof *Q);
    sx_rng r;
    sx_rng_seed(&r, 4, 0);
    for (int64_t i = 0; i < nr; i++) {
        double v[16], n2 = 0;
        for (int d = 0; d < dim; d++) {
            v[d] = sx_rng_normal(&r);
            n2 += v[d] * v[d];
        }
        for (int d = 0; d < dim; d++) R[i * dim + d] = 3000.0 + v[d] / sqrt(n2);
    }
    for (int64_t i = 0; i < nq * dim; i++) Q[i] = 3000.0 + 1e-7 * sx_rng_normal(&r);
    int64_t nd = check_heads(R, nr, Q, nq, dim);
    printf("near-ties: naive prefixes of one k=%d search differ from k-searches in %lld rows; "
           "heads in none\n", KW, (long long)nd);
    sx_free(R);
    sx_free(Q);
}
END_TEST

static void same_transfer(const sx_transfer_result *a, const sx_transfer_result *b)
{
    int64_t n = a->n_query;
    int nc = a->n_classes;
    ck_assert_int_eq(n, b->n_query);
    ck_assert_int_eq(nc, b->n_classes);
    ck_assert_int_eq(a->k, b->k);
    ck_assert(memcmp(a->pred, b->pred, n * sizeof *a->pred) == 0);
    ck_assert(memcmp(a->vote_share, b->vote_share, n * sizeof(double)) == 0);
    ck_assert(memcmp(a->confidence, b->confidence, n * sizeof(double)) == 0);
    ck_assert(memcmp(a->prob_distance, b->prob_distance, n * sizeof(double)) == 0);
    ck_assert(memcmp(a->mapping_score, b->mapping_score, n * sizeof(double)) == 0);
    ck_assert(memcmp(a->prob, b->prob, n * nc * sizeof(double)) == 0);
    ck_assert(memcmp(a->neighbors, b->neighbors, n * a->k * sizeof(int32_t)) == 0);
    ck_assert(memcmp(a->distances, b->distances, n * a->k * sizeof(double)) == 0);
}

/* The transfer from the projection's one wide search equals its own kp-search, calibrated
 * and plain, on the golden latents with their cell types. */
START_TEST(transfer_from_shared_search)
{
    for (int s = 0; s < EG_NSETS; s++) {
        eg g;
        eg_load(&g, EG_SETS[s]);
        int64_t nr = (g.n + 1) / 2, nq = g.n / 2;
        double *R = sx_mallocarray(nr * g.dim, sizeof *R), *Q = sx_mallocarray(nq * g.dim, sizeof *Q);
        const char **rl = sx_mallocarray(nr, sizeof *rl);
        for (int64_t i = 0; i < g.n; i++) {
            memcpy((i & 1 ? Q : R) + (i / 2) * g.dim, g.latent + i * g.dim, g.dim * sizeof *R);
            if (!(i & 1)) rl[i / 2] = g.ctype[i];
        }
        sx_status st = {0};
        sx_knn_opts ko;
        sx_knn_opts_init(&ko);
        ko.n_threads = 2;
        sx_knn *nb = sx_knn_search(R, nr, Q, nq, g.dim, KW, &ko, NULL, &st);
        ck_assert_msg(nb, "%s", st.msg);
        for (int cal = 0; cal <= 1; cal++) {
            sx_transfer_opts o;
            sx_transfer_opts_init(&o);
            o.n_threads = 2;
            o.calibrate = cal;
            o.unknown_below = 0.5;
            ck_assert_int_eq(sx_transfer_k_needed(&o, nr), SX_TRANSFER_K_PROB);
            sx_transfer_result *own = sx_transfer_knn(R, nr, rl, Q, nq, g.dim, &o, NULL, &st);
            sx_transfer_result *shr = sx_transfer_from_knn(R, nr, rl, g.dim, nb, &o, &st);
            ck_assert_msg(own && shr, "%s", st.msg);
            same_transfer(own, shr);
            sx_transfer_free(own);
            sx_transfer_free(shr);
        }
        /* too narrow a search is refused */
        sx_knn *narrow = sx_knn_head(nb, 4, &st);
        ck_assert_ptr_null(sx_transfer_from_knn(R, nr, rl, g.dim, narrow, NULL, &st));
        ck_assert_int_eq(st.code, SX_EINVAL);
        sx_knn_free(narrow);
        sx_knn_free(nb);
        sx_free(R);
        sx_free(Q);
        sx_free(rl);
        eg_close(&g);
    }
}
END_TEST

START_TEST(head_errors)
{
    double x[8] = {0, 0, 1, 0, 0, 1, 1, 1};
    sx_status st = {0};
    sx_knn *r = sx_knn_exact(x, 4, x, 4, 2, 3, NULL, NULL, &st);
    ck_assert(r && !r->rank);
    ck_assert_ptr_null(sx_knn_head(r, 4, &st));
    ck_assert_int_eq(st.code, SX_EINVAL);
    ck_assert_ptr_null(sx_knn_head(r, 0, &st));
    sx_knn *h = sx_knn_head(r, 2, &st); /* no rank: the first columns */
    ck_assert(h && !h->rank);
    for (int i = 0; i < 4; i++)
        ck_assert(memcmp(h->idx + i * 2, r->idx + i * 3, 2 * sizeof *h->idx) == 0);
    sx_knn_free(h);
    sx_knn_free(r);
}
END_TEST

/* ---- the graph index as bytes ---- */

/* sx_knn_put_fn into a buffer of sx_knn_index_serial_size bytes (*user: the write cursor) */
static int cursor_put(void *user, const void *p, size_t n)
{
    unsigned char **at = user;
    memcpy(*at, p, n);
    *at += n;
    return 0;
}

/* clustered 10-d cells: the graph index of a mapped reference */
static double *cells(int64_t n, uint64_t seed)
{
    double *x = sx_mallocarray(n * 10, sizeof *x);
    sx_rng r, c;
    sx_rng_seed(&r, seed, 1);
    sx_rng_seed(&c, 77, 0);
    double cen[8 * 10];
    for (int i = 0; i < 80; i++) cen[i] = 3 * sx_rng_normal(&c);
    for (int64_t i = 0; i < n; i++) {
        int t = (int)sx_rng_below(&r, 8);
        for (int d = 0; d < 10; d++) x[i * 10 + d] = cen[t * 10 + d] + sx_rng_normal(&r);
    }
    return x;
}

/* Layout offsets of the serialized parts (sx_knn_index_io.c): header 40 bytes, then xf. */
static size_t p8(size_t n) { return (n + 7) & ~(size_t)7; }

START_TEST(index_bytes_round_trip_and_refusal)
{
    int64_t nr = 4000, nq = 500;
    double *R = cells(nr, 1), *Q = cells(nq, 2);
    sx_status st = {0};
    sx_knn_opts o;
    sx_knn_opts_init(&o);
    o.n_threads = 2;
    o.method = SX_KNN_APPROX;
    sx_knn_index *ix = sx_knn_index_new(R, nr, 10, &o, NULL, &st);
    ck_assert_msg(ix && !sx_knn_index_is_exact(ix), "%s", st.msg);
    struct {
        unsigned char *p;
        size_t len;
    } m = {NULL, sx_knn_index_serial_size(ix)};
    unsigned char *at = m.p = malloc(m.len);
    ck_assert_int_eq(sx_knn_index_write(ix, cursor_put, &at, &st), SX_OK);
    ck_assert_uint_eq((size_t)(at - m.p), m.len); /* as announced */
    ck_assert_uint_eq(m.len % 8, 0);
    /* opened in place, it searches exactly as the built one, on any thread count */
    sx_knn_index *back = sx_knn_index_open(m.p, m.len, R, nr, 10, &st);
    ck_assert_msg(back, "%s", st.msg);
    ck_assert_uint_eq(sx_knn_index_bytes(back), sx_knn_index_bytes(ix));
    sx_knn *a = sx_knn_index_search(ix, Q, nq, KW, NULL, &st);
    o.method = SX_KNN_AUTO;
    o.n_threads = 1;
    sx_knn *b = sx_knn_search_with(back, R, nr, Q, nq, 10, KW, &o, NULL, &st);
    ck_assert_msg(a && b && same_knn(a, b), "%s", st.msg);
    sx_knn_free(b);
    /* an index of another reference is refused by the search */
    double *R2 = cells(nr, 3);
    ck_assert_ptr_null(sx_knn_search_with(back, R2, nr, Q, nq, 10, KW, &o, NULL, &st));
    ck_assert_int_eq(st.code, SX_EINVAL);
    sx_knn_index_free(back);
    /* hostile sections: each refused with SX_EFORMAT, nothing read out of bounds (ASan) */
    size_t off_at = 40 + p8((size_t)nr * 10 * 4), adj_at = off_at + (size_t)(nr + 1) * 8;
    int64_t n_adj;
    memcpy(&n_adj, m.p + 24, 8);
    size_t piv_at = adj_at + p8((size_t)n_adj * 4);
    int32_t bad_ids[3] = {(int32_t)nr, -1, INT32_MAX};
    for (int c = 0; c < 11; c++) {
        unsigned char *h = malloc(m.len);
        memcpy(h, m.p, m.len);
        size_t len = m.len;
        const double *ref = R;
        int64_t one = 1;
        switch (c) {
        case 0: len = m.len - 8; break;                     /* cut short */
        case 1: len = m.len / 2; break;
        case 2: len = 39; break;                            /* not even a header */
        case 3: case 4: case 5:                             /* a graph edge to no cell */
            memcpy(h + adj_at + 4 * 1234, &bad_ids[c - 3], 4);
            break;
        case 6: memcpy(h + piv_at, &bad_ids[0], 4); break;  /* an entry point to no cell */
        case 7: memcpy(h + off_at + 8 * 100, &one, 8); break;  /* offsets that fall back */
        case 8: memcpy(h + 24, &(int64_t){(int64_t)1 << 60}, 8); break; /* n_adj huge */
        case 9: h[0] ^= 1; break;                            /* magic */
        case 10: ref = R2; break;                            /* another latent */
        }
        sx_status hs = {0};
        ck_assert_msg(!sx_knn_index_open(h, len, ref, nr, 10, &hs), "hostile case %d opened", c);
        ck_assert_int_eq(hs.code, SX_EFORMAT);
        free(h);
    }
    ck_assert_ptr_null(sx_knn_index_open(m.p, m.len, R, nr - 1, 10, &st)); /* another size */
    ck_assert_ptr_null(sx_knn_index_open(m.p, m.len, R, nr, 9, &st));
    ck_assert_ptr_null(sx_knn_index_open(m.p + 4, m.len - 8, R, nr, 10, &st)); /* misaligned */
    /* a valid but edgeless graph: searches reach only their entry cells, and then rank every
     * cell instead, so each result column is still a true neighbour */
    unsigned char *e = calloc(1, m.len);
    memcpy(e, m.p, off_at);
    int32_t n_piv;
    memcpy(&n_piv, m.p + 32, 4);
    memcpy(e + 24, &(int64_t){0}, 8);
    memcpy(e + off_at + (size_t)(nr + 1) * 8, m.p + piv_at, (size_t)n_piv * 4);
    sx_knn_index *bare = sx_knn_index_open(e, m.len, R, nr, 10, &st);
    ck_assert_msg(bare, "%s", st.msg);
    sx_knn *c = sx_knn_search_with(bare, R, nr, Q, nq, 10, KW, &o, NULL, &st);
    o.method = SX_KNN_EXACT;
    sx_knn *x = sx_knn_exact(R, nr, Q, nq, 10, KW, &o, NULL, &st);
    ck_assert_msg(c && x, "%s", st.msg);
    double rec = sx_knn_recall(c, x);
    printf("edgeless graph index: recall %.4f against exact (every cell ranked)\n", rec);
    ck_assert_double_ge(rec, 0.999);
    sx_knn_free(c), sx_knn_free(x), sx_knn_free(a);
    sx_knn_index_free(bare);
    sx_knn_index_free(ix);
    free(e), free(m.p);
    sx_free(R), sx_free(R2), sx_free(Q);
}
END_TEST

/* AUTO from SX_KNN_IVF_FROM rows: the cluster-pruned index. Its neighbours are a brute-force
 * scan's (checked against sx_knn_exact: continuous data, so no rounding ties), it survives
 * its bytes, and a section of another latent, cut short or with a bad header is refused. */
START_TEST(index_auto_prunes_by_clusters)
{
    int64_t nr = SX_KNN_IVF_FROM, nq = 300;
    double *R = cells(nr, 5), *Q = cells(nq, 6);
    sx_status st = {0};
    sx_knn_opts o;
    sx_knn_opts_init(&o);
    o.n_threads = 2;
    sx_knn_index *ix = sx_knn_index_new(R, nr, 10, &o, NULL, &st);
    ck_assert_msg(ix && !sx_knn_index_is_exact(ix), "%s", st.msg);
    sx_knn *want = sx_knn_exact(R, nr, Q, nq, 10, KW, &o, NULL, &st);
    sx_knn *a = sx_knn_index_search(ix, Q, nq, KW, NULL, &st);
    ck_assert_msg(want && a && same_knn(a, want), "%s", st.msg);
    /* a one-shot search of a query this size builds the same index */
    sx_knn *one = sx_knn_search(R, nr, Q, nq, 10, KW, &o, NULL, &st);
    ck_assert_msg(one && same_knn(one, want), "%s", st.msg);
    size_t len = sx_knn_index_serial_size(ix);
    ck_assert_uint_gt(len, (size_t)nr * 10 * sizeof(double));
    unsigned char *buf = malloc(len), *at = buf;
    ck_assert_int_eq(sx_knn_index_write(ix, cursor_put, &at, &st), SX_OK);
    ck_assert_uint_eq((size_t)(at - buf), len);
    sx_knn_index *back = sx_knn_index_open(buf, len, R, nr, 10, &st);
    ck_assert_msg(back, "%s", st.msg);
    o.n_threads = 1;
    sx_knn *b = sx_knn_search_with(back, R, nr, Q, nq, 10, KW, &o, NULL, &st);
    ck_assert_msg(b && same_knn(b, want), "%s", st.msg);
    sx_knn_index_free(back);
    double *R2 = cells(nr, 5);
    R2[12345] += 1e-9; /* one coordinate of another latent */
    sx_status hs = {0};
    ck_assert_ptr_null(sx_knn_index_open(buf, len, R2, nr, 10, &hs));
    ck_assert_int_eq(hs.code, SX_EFORMAT);
    ck_assert_ptr_null(sx_knn_index_open(buf, len - 8, R, nr, 10, &hs));
    ck_assert_int_eq(hs.code, SX_EFORMAT);
    ck_assert_ptr_null(sx_knn_index_open(buf, 20, R, nr, 10, &hs));
    buf[12] = 1; /* the header's zero word */
    ck_assert_ptr_null(sx_knn_index_open(buf, len, R, nr, 10, &hs));
    ck_assert_int_eq(hs.code, SX_EFORMAT);
    free(buf);
    sx_knn_free(want);
    sx_knn_free(a);
    sx_knn_free(one);
    sx_knn_free(b);
    sx_knn_index_free(ix);
    sx_free(R);
    sx_free(R2);
    sx_free(Q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("embed_knn_share");
    TCase *tc = tcase_create("share");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, head_equals_narrow_search_golden);
    tcase_add_test(tc, head_equals_narrow_search_ties);
    tcase_add_test(tc, head_equals_narrow_search_near_ties);
    tcase_add_test(tc, transfer_from_shared_search);
    tcase_add_test(tc, head_errors);
    tcase_add_test(tc, index_bytes_round_trip_and_refusal);
    tcase_add_test(tc, index_auto_prunes_by_clusters);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
