/* Leiden on scanpy's connectivities vs leidenalg 0.9.1 (golden leiden/): weighted modularity
 * at least leidenalg's minus 0.01, agreement (ARI) reported; our modularity of leidenalg's
 * partition equals the golden value. */
#include "embed_golden.h"
#include "sx_knn.h"
#include "sx_leiden.h"
#include "sx_metrics.h"
#include "sx_umap.h"

START_TEST(leiden_vs_leidenalg)
{
    for (int s = 0; s < EG_NSETS; s++) {
        eg g;
        eg_load(&g, EG_SETS[s]);
        sx_csr *W = eg_conn(g.f);
        int64_t m;
        int64_t *gm = eg_i64(g.f, "leiden/membership", &m);
        double gq = eg_attr(g.f, "leiden", "modularity_numpy");
        double gqual = eg_attr(g.f, "leiden", "leidenalg_quality");
        int gk = (int)eg_attr(g.f, "leiden", "n_clusters");
        int32_t *gm32 = sx_mallocarray(g.n, sizeof *gm32);
        for (int64_t i = 0; i < g.n; i++) gm32[i] = (int32_t)gm[i];
        double q_of_golden = sx_leiden_modularity(W, gm32, 1.0);
        ck_assert_double_le(fabs(q_of_golden - gq), 1e-9);
        sx_leiden_result r;
        sx_status st = {0};
        ck_assert_msg(sx_leiden(W, 1.0, -1, 0, &r, NULL, &st) == SX_OK, "%s", st.msg);
        double ari = sx_metrics_ari(gm32, r.membership, g.n);
        double nmi = sx_metrics_nmi(gm32, r.membership, g.n);
        /* sizes non-increasing: 0 = largest */
        int64_t *cnt = sx_calloc(r.n_clusters, sizeof *cnt);
        for (int64_t i = 0; i < g.n; i++) cnt[r.membership[i]]++;
        for (int c = 1; c < r.n_clusters; c++) ck_assert(cnt[c] <= cnt[c - 1]);
        printf("[%s] Leiden: %d clusters, modularity %.5f (quality %.2f); leidenalg %d clusters, "
               "%.5f (%.2f); ARI vs leidenalg %.4f, NMI %.4f\n",
               g.name, r.n_clusters, r.modularity, r.quality, gk, gq, gqual, ari, nmi);
        ck_assert_double_ge(r.modularity, gq - 0.01);
        /* same seed, same partition */
        sx_leiden_result r2;
        ck_assert(sx_leiden(W, 1.0, -1, 0, &r2, NULL, &st) == SX_OK);
        ck_assert(memcmp(r.membership, r2.membership, g.n * sizeof *r.membership) == 0);
        sx_leiden_result_clear(&r2);
        /* on our own graph from our own kNN as well */
        sx_knn *knn = sx_knn_exact(g.latent, g.n, NULL, 0, g.dim, 30, NULL, NULL, &st);
        sx_csr *W2 = sx_umap_fuzzy_graph(knn, NULL, NULL, &st);
        ck_assert(W2);
        ck_assert(sx_leiden(W2, 1.0, -1, 0, &r2, NULL, &st) == SX_OK);
        ck_assert_double_ge(r2.modularity, gq - 0.01);
        sx_leiden_result_clear(&r2);
        sx_csr_free(W2);
        sx_knn_free(knn);
        sx_free(cnt);
        sx_leiden_result_clear(&r);
        sx_free(gm32);
        sx_free(gm);
        sx_csr_free(W);
        eg_close(&g);
    }
}
END_TEST

START_TEST(leiden_errors)
{
    sx_status st = {0};
    sx_csr *W = sx_csr_new(3, 3, 0, &st);
    sx_leiden_result r;
    ck_assert_int_eq(sx_leiden(W, 1.0, -1, 0, &r, NULL, &st), SX_EDATA);
    ck_assert_int_eq(sx_leiden(W, 0.0, -1, 0, &r, NULL, &st), SX_EINVAL);
    sx_csr_free(W);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("embed_leiden");
    TCase *tc = tcase_create("leiden");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, leiden_vs_leidenalg);
    tcase_add_test(tc, leiden_errors);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
