/* Metrics vs SCALEX / scikit-learn (golden bems_*, silhouette, leiden ARI/NMI, umap
 * trustworthiness): batch entropy mixing reproduced from the recorded samples, silhouette,
 * ARI, NMI within 1e-6. */
#include "embed_golden.h"
#include "sx_knn.h"
#include "sx_metrics.h"

static void bems_case(eg *g, const char *grp, const double *x, int dim)
{
    char p[128];
    snprintf(p, sizeof p, "%s/sampled_indices", grp);
    int64_t m;
    int64_t *smp = eg_i64(g->f, p, &m);
    snprintf(p, sizeof p, "%s/neighbors", grp);
    int64_t *gn = eg_i64(g->f, p, NULL);
    double gs = eg_attr(g->f, grp, "score");
    int32_t *codes = sx_mallocarray(g->n, sizeof *codes);
    char **cls;
    int nc;
    sx_status st = {0};
    ck_assert(sx_labels_encode((const char *const *)g->batch, g->n, codes, &cls, &nc, &st) == SX_OK);
    double sc = 0, sn = 0;
    ck_assert_msg(sx_metrics_bems(x, g->n, dim, codes, nc, 100, 100, 100, smp, 0, 2, &sc, &sn,
                                  NULL, &st) == SX_OK,
                  "%s", st.msg);
    /* our 100 neighbours vs the recorded ones */
    sx_knn_opts o;
    sx_knn_opts_init(&o);
    o.exclude_self = 1;
    sx_knn *k = sx_knn_exact(x, g->n, NULL, 0, dim, 100, &o, NULL, &st);
    ck_assert(k);
    int64_t miss = 0;
    for (int64_t i = 0; i < g->n; i++)
        for (int a = 0; a < 100; a++) {
            int f = 0;
            for (int b = 0; b < 100 && !f; b++) f = k->idx[i * 100 + b] == gn[i * 100 + a];
            miss += !f;
        }
    double sr = 0, sn2 = 0;
    ck_assert(sx_metrics_bems(x, g->n, dim, codes, nc, 100, 100, 100, NULL, 0, 2, &sr, &sn2, NULL, &st) == SX_OK);
    printf("[%s] %s: score %.10f (SCALEX %.10f, |d| %.1e), normalized 0-1 %.4f; own sampling "
           "%.4f; neighbour mismatches %lld\n",
           g->name, grp, sc, gs, fabs(sc - gs), sn, sr, (long long)miss);
    ck_assert_double_le(fabs(sc - gs), 1e-6);
    ck_assert_double_le(fabs(sn - sc * log2((double)nc) / log((double)nc)), 1e-12);
    ck_assert_double_le(fabs(sr - gs), 0.02); /* another sample of the same quantity */
    sx_knn_free(k);
    sx_labels_free(cls, nc);
    sx_free(codes);
    sx_free(smp);
    sx_free(gn);
}

START_TEST(batch_mixing)
{
    for (int s = 0; s < EG_NSETS; s++) {
        eg g;
        eg_load(&g, EG_SETS[s]);
        bems_case(&g, "bems_latent", g.latent, g.dim);
        double *u = eg_f64(g.f, "umap/X_umap", NULL);
        bems_case(&g, "bems_umap", u, 2);
        sx_free(u);
        eg_close(&g);
    }
}
END_TEST

START_TEST(silhouette_ari_nmi)
{
    for (int s = 0; s < EG_NSETS; s++) {
        eg g;
        eg_load(&g, EG_SETS[s]);
        int64_t *lc = eg_i64(g.f, "silhouette/label_codes", NULL);
        int32_t *ct = sx_mallocarray(g.n, sizeof *ct), *bt = sx_mallocarray(g.n, sizeof *bt);
        char **cls, **bcl;
        int nc, nb;
        sx_status st = {0};
        ck_assert(sx_labels_encode((const char *const *)g.ctype, g.n, ct, &cls, &nc, &st) == SX_OK);
        ck_assert(sx_labels_encode((const char *const *)g.batch, g.n, bt, &bcl, &nb, &st) == SX_OK);
        for (int64_t i = 0; i < g.n; i++) ck_assert_int_eq(ct[i], lc[i]);
        double *u = eg_f64(g.f, "umap/X_umap", NULL);
        double s1, s2, s3;
        ck_assert(sx_metrics_silhouette(g.latent, g.n, g.dim, ct, nc, &s1, &st) == SX_OK);
        ck_assert(sx_metrics_silhouette(u, g.n, 2, ct, nc, &s2, &st) == SX_OK);
        ck_assert(sx_metrics_silhouette(g.latent, g.n, g.dim, bt, nb, &s3, &st) == SX_OK);
        double g1 = eg_attr(g.f, "silhouette", "latent_cell_type");
        double g2 = eg_attr(g.f, "silhouette", "umap_cell_type");
        double g3 = eg_attr(g.f, "silhouette", "latent_batch");
        int64_t *lm = eg_i64(g.f, "leiden/membership", NULL);
        int32_t *lm32 = sx_mallocarray(g.n, sizeof *lm32);
        for (int64_t i = 0; i < g.n; i++) lm32[i] = (int32_t)lm[i];
        double ari = sx_metrics_ari(ct, lm32, g.n), nmi = sx_metrics_nmi(ct, lm32, g.n);
        double gari = eg_attr(g.f, "leiden", "ari_vs_label"), gnmi = eg_attr(g.f, "leiden", "nmi_vs_label");
        printf("[%s] silhouette latent/cell type %.8f (%.8f), umap %.8f (%.8f), latent/batch "
               "%.8f (%.8f); ARI %.10f (%.10f), NMI %.10f (%.10f)\n",
               g.name, s1, g1, s2, g2, s3, g3, ari, gari, nmi, gnmi);
        ck_assert_double_le(fabs(s1 - g1), 1e-6);
        ck_assert_double_le(fabs(s2 - g2), 1e-6);
        ck_assert_double_le(fabs(s3 - g3), 1e-6);
        ck_assert_double_le(fabs(ari - gari), 1e-6);
        ck_assert_double_le(fabs(nmi - gnmi), 1e-6);
        /* identities */
        ck_assert_double_eq(sx_metrics_ari(ct, ct, g.n), 1.0);
        ck_assert_double_le(fabs(sx_metrics_nmi(ct, ct, g.n) - 1.0), 1e-12);
        sx_free(lm);
        sx_free(lm32);
        sx_free(u);
        sx_free(lc);
        sx_free(ct);
        sx_free(bt);
        sx_labels_free(cls, nc);
        sx_labels_free(bcl, nb);
        eg_close(&g);
    }
}
END_TEST

START_TEST(small_cases)
{
    /* sklearn: adjusted_rand_score([0,0,1,1],[0,0,1,2]) = 0.5714285714285715,
     * normalized_mutual_info_score(...) = 0.8000000000000002, f1 macro of
     * ([0,1,2,2],[0,2,2,1]) = 0.5 (classes 0: 1, 1: 0, 2: 0.5) */
    int32_t a[4] = {0, 0, 1, 1}, b[4] = {0, 0, 1, 2};
    ck_assert_double_le(fabs(sx_metrics_ari(a, b, 4) - 0.5714285714285715), 1e-15);
    ck_assert_double_le(fabs(sx_metrics_nmi(a, b, 4) - 0.8), 1e-12);
    int32_t t[4] = {0, 1, 2, 2}, p[4] = {0, 2, 2, 1};
    ck_assert_double_le(fabs(sx_metrics_macro_f1(t, p, 4, 3) - 0.5), 1e-15);
    ck_assert_double_eq(sx_metrics_accuracy(t, p, 4), 0.5);
    double sc;
    sx_status st = {0};
    double x[3] = {0, 1, 2};
    int32_t one[3] = {0, 0, 0};
    ck_assert_int_eq(sx_metrics_silhouette(x, 3, 1, one, 1, &sc, &st), SX_EDATA);
    ck_assert_int_eq(sx_metrics_bems(x, 3, 1, one, 1, 100, 10, 10, NULL, 0, 1, &sc, NULL, NULL, &st),
                     SX_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("embed_metrics");
    TCase *tc = tcase_create("metrics");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, batch_mixing);
    tcase_add_test(tc, silhouette_ari_nmi);
    tcase_add_test(tc, small_cases);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
