/* The UMAP neighbour graph against scanpy 1.9.8 / umap-learn 0.5.3 (golden neighbors_scanpy):
 * sigmas, rhos, connectivities from our own exact kNN; the a/b curve fit. */
#include "embed_golden.h"
#include "sx_knn.h"
#include "sx_umap.h"

START_TEST(connectivities_match_scanpy)
{
    for (int s = 0; s < EG_NSETS; s++) {
        eg g;
        eg_load(&g, EG_SETS[s]);
        sx_status st = {0};
        sx_knn *knn = sx_knn_exact(g.latent, g.n, NULL, 0, g.dim, 30, NULL, NULL, &st);
        ck_assert_msg(knn, "%s", st.msg);
        float *sig = sx_mallocarray(g.n, sizeof *sig), *rho = sx_mallocarray(g.n, sizeof *rho);
        sx_csr *W = sx_umap_fuzzy_graph(knn, sig, rho, &st);
        ck_assert_msg(W, "%s", st.msg);
        int64_t m;
        double *gs = eg_f64(g.f, "neighbors_scanpy/sigmas", &m);
        double *gr = eg_f64(g.f, "neighbors_scanpy/rhos", &m);
        double ds = 0, dr = 0;
        for (int64_t i = 0; i < g.n; i++) {
            ds = fmax(ds, sx_test_reldiff(sig[i], gs[i], 1e-6));
            dr = fmax(dr, sx_test_reldiff(rho[i], gr[i], 1e-6));
        }
        eg_csr c;
        eg_csr_load(g.f, "neighbors_scanpy/connectivities", &c);
        ck_assert_int_eq(c.n, g.n);
        int64_t struct_diff = 0;
        double dw = 0;
        for (int64_t i = 0; i < g.n; i++) {
            /* union of both patterns, missing = 0 */
            int64_t a = W->indptr[i], ae = W->indptr[i + 1], b = c.indptr[i], be = c.indptr[i + 1];
            while (a < ae || b < be) {
                double va = 0, vb = 0;
                if (b >= be || (a < ae && W->indices[a] < c.indices[b])) {
                    va = W->data[a++];
                    struct_diff++;
                } else if (a >= ae || c.indices[b] < W->indices[a]) {
                    vb = c.data[b++];
                    struct_diff++;
                } else {
                    va = W->data[a++];
                    vb = c.data[b++];
                }
                dw = fmax(dw, fabs(va - vb));
            }
        }
        /* symmetric */
        int sym = 1;
        for (int64_t i = 0; i < g.n && sym; i++)
            for (int64_t e = W->indptr[i]; e < W->indptr[i + 1]; e++) {
                int32_t j = W->indices[e];
                int found = 0;
                for (int64_t f = W->indptr[j]; f < W->indptr[j + 1]; f++)
                    if (W->indices[f] == i) found = W->data[f] == W->data[e];
                sym &= found;
            }
        printf("[%s] sigmas max rel %.2e, rhos max rel %.2e, connectivities nnz %lld vs %lld, "
               "pattern diffs %lld, max |w - scanpy| %.2e\n",
               g.name, ds, dr, (long long)sx_csr_nnz(W), (long long)c.nnz, (long long)struct_diff, dw);
        ck_assert_double_le(ds, 1e-5);
        ck_assert_double_le(dr, 1e-6);
        ck_assert_double_le(dw, 1e-5);
        ck_assert(sym);
        eg_csr_free(&c);
        sx_free(gs);
        sx_free(gr);
        sx_free(sig);
        sx_free(rho);
        sx_csr_free(W);
        sx_knn_free(knn);
        eg_close(&g);
    }
}
END_TEST

START_TEST(ab_fit)
{
    hid_t f = eg_open_file("pbmc_3tech");
    double ga = eg_attr(f, "umap", "a"), gb = eg_attr(f, "umap", "b");
    H5Fclose(f);
    double a, b;
    sx_status st = {0};
    ck_assert_int_eq(sx_umap_find_ab(0.1, 1.0, &a, &b, &st), SX_OK);
    printf("a = %.10f (scanpy %.10f), b = %.10f (scanpy %.10f)\n", a, ga, b, gb);
    ck_assert_double_le(fabs(a - ga), 1e-6);
    ck_assert_double_le(fabs(b - gb), 1e-6);
    ck_assert_int_eq(sx_umap_find_ab(2.0, 1.0, &a, &b, &st), SX_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("embed_graph");
    TCase *tc = tcase_create("graph");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, connectivities_match_scanpy);
    tcase_add_test(tc, ab_fit);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
