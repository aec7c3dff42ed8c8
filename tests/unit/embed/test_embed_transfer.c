/* Label transfer vs scikit-learn KNeighborsClassifier(5) (golden label_transfer/): predicted
 * labels, accuracy and macro-F1; confidence, Unknown threshold and per-class summary. */
#include "embed_golden.h"
#include "sx_metrics.h"
#include "sx_transfer.h"

START_TEST(transfer_vs_sklearn)
{
    for (int s = 0; s < EG_NSETS; s++) {
        eg g;
        eg_load(&g, EG_SETS[s]);
        int64_t nr, nq, m;
        int64_t *ri = eg_i64(g.f, "label_transfer/ref_index", &nr);
        int64_t *qi = eg_i64(g.f, "label_transfer/query_index", &nq);
        char **gp = eg_str(g.f, "label_transfer/predicted", &m);
        char **gt = eg_str(g.f, "label_transfer/truth", &m);
        char **gc = eg_str(g.f, "label_transfer/classes", &m);
        double gacc = eg_attr(g.f, "label_transfer", "accuracy");
        double gf1 = eg_attr(g.f, "label_transfer", "macro_f1");
        double *R = sx_mallocarray(nr * g.dim, sizeof *R), *Q = sx_mallocarray(nq * g.dim, sizeof *Q);
        const char **rl = sx_mallocarray(nr, sizeof *rl);
        for (int64_t i = 0; i < nr; i++) {
            memcpy(R + i * g.dim, g.latent + ri[i] * g.dim, g.dim * sizeof *R);
            rl[i] = g.ctype[ri[i]];
        }
        for (int64_t i = 0; i < nq; i++) memcpy(Q + i * g.dim, g.latent + qi[i] * g.dim, g.dim * sizeof *Q);
        sx_status st = {0};
        sx_transfer_result *r = sx_transfer_knn(R, nr, rl, Q, nq, g.dim, NULL, NULL, &st);
        ck_assert_msg(r, "%s", st.msg);
        ck_assert_int_eq(r->n_classes, m);
        for (int c = 0; c < r->n_classes; c++) ck_assert_str_eq(r->classes[c], gc[c]);
        int64_t diff = 0;
        for (int64_t i = 0; i < nq; i++) diff += strcmp(sx_transfer_label(r, i), gp[i]) != 0;
        /* metrics over truth and prediction on one code space */
        const char **all = sx_mallocarray(2 * nq, sizeof *all);
        for (int64_t i = 0; i < nq; i++) {
            all[i] = gt[i];
            all[nq + i] = sx_transfer_label(r, i);
        }
        int32_t *codes = sx_mallocarray(2 * nq, sizeof *codes);
        char **cls;
        int ncls;
        ck_assert(sx_labels_encode(all, 2 * nq, codes, &cls, &ncls, &st) == SX_OK);
        double acc = sx_metrics_accuracy(codes, codes + nq, nq);
        double f1 = sx_metrics_macro_f1(codes, codes + nq, nq, ncls);
        int64_t *conf = sx_mallocarray(ncls * ncls, sizeof *conf);
        ck_assert(sx_metrics_confusion(codes, codes + nq, nq, ncls, conf, &st) == SX_OK);
        int64_t diag = 0, tot = 0;
        for (int a = 0; a < ncls; a++)
            for (int b = 0; b < ncls; b++) {
                tot += conf[a * ncls + b];
                if (a == b) diag += conf[a * ncls + b];
            }
        ck_assert_int_eq(tot, nq);
        ck_assert_double_le(fabs((double)diag / nq - acc), 1e-12);
        double mc = 0;
        for (int64_t i = 0; i < nq; i++) mc += r->confidence[i];
        printf("[%s] label transfer: %lld/%lld predictions differ from sklearn; accuracy %.5f "
               "(sklearn %.5f), macro-F1 %.5f (sklearn %.5f); mean confidence %.3f\n",
               g.name, (long long)diff, (long long)nq, acc, gacc, f1, gf1, mc / nq);
        ck_assert_int_eq(diff, 0);
        ck_assert_double_le(fabs(acc - gacc), 1e-12);
        ck_assert_double_le(fabs(f1 - gf1), 1e-12);
        /* confidence and distance-weighted probability are shares */
        int64_t sum = 0;
        for (int64_t i = 0; i < nq; i++) {
            ck_assert(r->confidence[i] >= 0.2 - 1e-12 && r->confidence[i] <= 1.0);
            ck_assert(r->prob_distance[i] > 0 && r->prob_distance[i] <= 1.0 + 1e-12);
        }
        for (int c = 0; c < r->n_classes; c++) sum += r->class_count[c];
        ck_assert_int_eq(sum + r->n_unknown, nq);
        ck_assert_int_eq(r->n_unknown, 0);
        /* Unknown below 0.8: exactly the cells with fewer than 4 of 5 votes */
        sx_transfer_opts o;
        sx_transfer_opts_init(&o);
        o.unknown_below = 0.8;
        sx_transfer_result *u = sx_transfer_knn(R, nr, rl, Q, nq, g.dim, &o, NULL, &st);
        ck_assert(u);
        int64_t expect = 0;
        for (int64_t i = 0; i < nq; i++) {
            int unk = r->confidence[i] < 0.8;
            expect += unk;
            ck_assert_str_eq(sx_transfer_label(u, i), unk ? "Unknown" : gp[i]);
        }
        ck_assert_int_eq(u->n_unknown, expect);
        sx_transfer_free(u);
        sx_labels_free(cls, ncls);
        sx_free(conf);
        sx_free(codes);
        sx_free(all);
        sx_transfer_free(r);
        sx_free(rl);
        sx_free(R);
        sx_free(Q);
        sx_free(ri);
        sx_free(qi);
        sx_h5_free_strings(gp, nq);
        sx_h5_free_strings(gt, nq);
        sx_h5_free_strings(gc, m);
        eg_close(&g);
    }
}
END_TEST

START_TEST(vote_ties_go_to_first_class)
{
    /* query at 0; neighbours at distances 1..4: labels b, a, b, a -> 2:2 tie -> "a" (first
     * sorted class) with k = 4, as sklearn's mode picks the lowest class index */
    double ref[4] = {1, 2, 3, 4}, q[1] = {0};
    const char *lab[4] = {"b", "a", "b", "a"};
    sx_transfer_opts o;
    sx_transfer_opts_init(&o);
    o.k = 4;
    sx_status st = {0};
    sx_transfer_result *r = sx_transfer_knn(ref, 4, lab, q, 1, 1, &o, NULL, &st);
    ck_assert(r);
    ck_assert_str_eq(sx_transfer_label(r, 0), "a");
    ck_assert_double_eq(r->confidence[0], 0.5);
    /* distance weights: b gets 1 + 1/3, a gets 1/2 + 1/4 */
    ck_assert_double_le(fabs(r->prob_distance[0] - 0.75 / (0.75 + 4.0 / 3.0)), 1e-12);
    sx_transfer_free(r);
    o.k = 5;
    ck_assert_ptr_null(sx_transfer_knn(ref, 4, lab, q, 1, 1, &o, NULL, &st));
    ck_assert_int_eq(st.code, SX_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("embed_transfer");
    TCase *tc = tcase_create("transfer");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, transfer_vs_sklearn);
    tcase_add_test(tc, vote_ties_go_to_first_class);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
