/* Label transfer vs scikit-learn KNeighborsClassifier(5) (golden label_transfer/): predicted
 * labels, accuracy and macro-F1; vote share, Unknown thresholds and per-class summary; the
 * calibrated confidence, probabilities and mapping score on small cases worked by hand. */
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
        double *R = eg_rows(&g, ri, nr), *Q = eg_rows(&g, qi, nq);
        const char **rl = sx_mallocarray(nr, sizeof *rl);
        for (int64_t i = 0; i < nr; i++) rl[i] = g.ctype[ri[i]];
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
        for (int64_t i = 0; i < nq; i++) mc += r->vote_share[i];
        printf("[%s] label transfer: %lld/%lld predictions differ from sklearn; accuracy %.5f "
               "(sklearn %.5f), macro-F1 %.5f (sklearn %.5f); mean confidence %.3f\n",
               g.name, (long long)diff, (long long)nq, acc, gacc, f1, gf1, mc / nq);
        ck_assert_int_eq(diff, 0);
        ck_assert_double_le(fabs(acc - gacc), 1e-12);
        ck_assert_double_le(fabs(f1 - gf1), 1e-12);
        /* vote share and distance-weighted probability are shares; probabilities sum to 1
         * with the chosen class at the confidence; mapping scores in [0, 1] */
        int64_t sum = 0;
        for (int64_t i = 0; i < nq; i++) {
            ck_assert(r->vote_share[i] >= 0.2 - 1e-12 && r->vote_share[i] <= 1.0);
            ck_assert(r->prob_distance[i] > 0 && r->prob_distance[i] <= 1.0 + 1e-12);
            double ps = 0;
            for (int c = 0; c < r->n_classes; c++) {
                double p = r->prob[i * r->n_classes + c];
                ck_assert(p >= 0 && p <= 1);
                ps += p;
            }
            ck_assert_double_le(fabs(ps - 1), 1e-9);
            ck_assert_double_eq(r->prob[i * r->n_classes + r->vote_pred[i]], r->confidence[i]);
            ck_assert(r->mapping_score[i] >= 0 && r->mapping_score[i] <= 1);
        }
        for (int c = 0; c < r->n_classes; c++) sum += r->class_count[c];
        ck_assert_int_eq(sum + r->n_unknown, nq);
        ck_assert_int_eq(r->n_unknown, 0);
        /* Unknown below confidence 0.8 or mapping score 0.1: exactly those cells */
        sx_transfer_opts o;
        sx_transfer_opts_init(&o);
        o.unknown_below = 0.8;
        o.mapping_below = 0.1;
        sx_transfer_result *u = sx_transfer_knn(R, nr, rl, Q, nq, g.dim, &o, NULL, &st);
        ck_assert(u);
        int64_t expect = 0;
        for (int64_t i = 0; i < nq; i++) {
            int unk = r->confidence[i] < 0.8 || r->mapping_score[i] < 0.1;
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
    ck_assert_double_eq(r->vote_share[0], 0.5);
    /* distance weights: b gets 1 + 1/3, a gets 1/2 + 1/4 */
    ck_assert_double_le(fabs(r->prob_distance[0] - 0.75 / (0.75 + 4.0 / 3.0)), 1e-12);
    sx_transfer_free(r);
    o.k = 5;
    ck_assert_ptr_null(sx_transfer_knn(ref, 4, lab, q, 1, 1, &o, NULL, &st));
    ck_assert_int_eq(st.code, SX_EINVAL);
}
END_TEST

/* 1-D reference, k = 1: every held-out cell's raw probability is 1, so the isotonic map is
 * one block worth (correct + 1/2) / (held-out cells + 1). */
static sx_transfer_result *one_d(const double *ref, int64_t n, const char *const *lab,
                                 const int32_t *batch, const double *q, int64_t nq, double mb)
{
    sx_transfer_opts o;
    sx_transfer_opts_init(&o);
    o.isotonic = 1; /* the refit, worked by hand below */
    o.k = 1;
    o.k_prob = 1;
    o.ref_batch = batch;
    o.mapping_below = mb;
    sx_status st = {0};
    sx_transfer_result *r = sx_transfer_knn(ref, n, lab, q, nq, 1, &o, NULL, &st);
    ck_assert_msg(r, "%s", st.msg);
    return r;
}

START_TEST(calibration_by_hand)
{
    /* batch 0: a 0, a 0.5, b 10; batch 1: a 4, b 6. Leave-one-batch-out: 0->4 a, 0.5->4 a,
     * 10->6 b, 4->0.5 a, 6->10 b: 5 of 5 right. Leave-one-out: 4->6 b and 6->4 a are wrong:
     * 3 of 5. With batches both pool: 8 of 10, confidence 8.5 / 11; without, 3.5 / 6. */
    double ref[5] = {0, 0.5, 10, 4, 6}, q[2] = {1, 9};
    const char *lab[5] = {"a", "a", "b", "a", "b"};
    int32_t batch[5] = {0, 0, 0, 1, 1};
    sx_transfer_result *r = one_d(ref, 5, lab, batch, q, 2, 0);
    ck_assert_int_eq(r->calib_by_batch, 1);
    ck_assert_int_eq(r->n_calib, 10);
    for (int i = 0; i < 2; i++) {
        ck_assert_double_le(fabs(r->confidence[i] - 8.5 / 11), 1e-12);
        /* two classes: the other one gets the rest */
        ck_assert_double_le(fabs(r->prob[2 * i + (1 - r->vote_pred[i])] - 2.5 / 11), 1e-12);
    }
    ck_assert_str_eq(sx_transfer_label(r, 0), "a");
    ck_assert_str_eq(sx_transfer_label(r, 1), "b");
    sx_transfer_free(r);
    r = one_d(ref, 5, lab, NULL, q, 2, 0);
    ck_assert_int_eq(r->calib_by_batch, 0);
    ck_assert_double_le(fabs(r->confidence[0] - 3.5 / 6), 1e-12);
    sx_transfer_free(r);
}
END_TEST

START_TEST(distance_confidence_by_hand)
{
    /* The default confidence is the distance-weighted probability itself. Query 0 with
     * a at 1, b at 2 and 4 (a far one at 100): weights 1, 1/2, 1/4; the 3-vote goes to b
     * (2 of 3) and its confidence is 0.75 / 1.75 = 3/7, a keeps 4/7; no refit, and the
     * held-out cells are scored once, for the mapping score: each batch has too few cells
     * to vote from the other, so one by one (leave-one-out, 4 cells). */
    double ref[4] = {1, 2, 4, 100}, q[1] = {0};
    const char *lab[4] = {"a", "b", "b", "a"};
    int32_t batch[4] = {0, 1, 0, 1};
    sx_transfer_opts o;
    sx_transfer_opts_init(&o);
    o.k = 3;
    o.k_prob = 3;
    o.ref_batch = batch;
    sx_status st = {0};
    sx_transfer_result *r = sx_transfer_knn(ref, 4, lab, q, 1, 1, &o, NULL, &st);
    ck_assert_msg(r, "%s", st.msg);
    ck_assert_str_eq(sx_transfer_label(r, 0), "b");
    ck_assert_double_le(fabs(r->vote_share[0] - 2.0 / 3), 1e-12);
    ck_assert_double_le(fabs(r->confidence[0] - 3.0 / 7), 1e-12);
    ck_assert_double_le(fabs(r->prob[0] - 4.0 / 7), 1e-12); /* a */
    ck_assert_double_le(fabs(r->prob[1] - 3.0 / 7), 1e-12); /* b */
    ck_assert_int_eq(r->calib_by_batch, 0);
    ck_assert_int_eq(r->n_calib, 4);
    sx_transfer_free(r);
}
END_TEST

START_TEST(mapping_score_by_hand)
{
    /* a at 0 1 3 7 15: leave-one-out nearest distances 1 1 2 4 8, logs 0 0 L 2L 3L (L = ln 2):
     * location L. b at 100..104: distances 1, location 0. The b cells lie 85..89 from the
     * nearest a (15), median 87; the a cells 100, 99, 97, 93, 85 from the nearest b (100),
     * median 97. Scale = (log of that median - location) / (2 x 2.3263...), the normal's
     * 99% quantile twice: halfway (in log distance) to the other class scores 0.01.
     * Query 5 (a, distance 2): z = 0 -> 0.5; query 2 (distance 1) and -4 (distance 4):
     * z = -+L / scale_a; query 15 + sqrt(2 x 87) (distance sqrt(2 x 87), halfway from 2 to
     * 87): 0.01; query 50 (a, 35): z = ln(17.5) / scale_a = 3.5 -> Unknown under a 0.1
     * threshold; query 102.5 (b, distance 0.5): z = -L / scale_b; query 0.5 (distance 0.5):
     * z = -2L / scale_a. */
    double ref[10] = {0, 1, 3, 7, 15, 100, 101, 102, 103, 104};
    double q[7] = {5, -4, 2, 50, 102.5, 15 + sqrt(174.0), 0.5};
    const char *lab[10] = {"a", "a", "a", "a", "a", "b", "b", "b", "b", "b"};
    sx_transfer_result *r = one_d(ref, 10, lab, NULL, q, 7, 0.1);
    double L = log(2.0), gz = 2 * 2.3263478740408408;
    double sa = (log(87.0) - L) / gz, sb = log(97.0) / gz;
    double z[7] = {0, L / sa, -L / sa, log(17.5) / sa, -L / sb, gz / 2, -2 * L / sa};
    for (int i = 0; i < 7; i++)
        ck_assert_double_le(fabs(r->mapping_score[i] - 0.5 * erfc(z[i] / sqrt(2.0))), 1e-9);
    ck_assert_double_le(fabs(r->mapping_score[5] - 0.01), 1e-9);
    ck_assert_str_eq(sx_transfer_label(r, 0), "a");
    ck_assert_str_eq(sx_transfer_label(r, 3), "Unknown");
    ck_assert_str_eq(sx_transfer_label(r, 4), "b");
    ck_assert_int_eq(r->n_unknown, 2); /* 50 and the halfway query (0.01 < 0.1) */
    /* every held-out cell right: confidence (10 + 1/2) / 11 */
    ck_assert_double_le(fabs(r->confidence[0] - 10.5 / 11), 1e-12);
    ck_assert_double_eq(r->mapping_shift, 0); /* median z of the seven queries: 0 */
    sx_transfer_free(r);
    /* a query lying farther as a whole: -4 and 19 (15 + 4), both at distance 4, z = L / sa:
     * the median is subtracted, both score 0.5 */
    double far[2] = {-4, 19};
    r = one_d(ref, 10, lab, NULL, far, 2, 0.1);
    ck_assert_double_le(fabs(r->mapping_shift - L / sa), 1e-9);
    for (int i = 0; i < 2; i++) ck_assert_double_le(fabs(r->mapping_score[i] - 0.5), 1e-9);
    sx_transfer_free(r);
}
END_TEST

START_TEST(probabilities_by_hand)
{
    /* k = 3 votes, k_prob = 3, no calibration: neighbours of 0 at 1 (a), 2 (b), 4 (b):
     * weights 1, 1/2, 1/4 -> a 4/7, b 3/7; the vote says b (2 of 3). */
    double ref[3] = {1, 2, 4}, q[1] = {0};
    const char *lab[3] = {"a", "b", "b"};
    sx_transfer_opts o;
    sx_transfer_opts_init(&o);
    o.k = 3;
    o.k_prob = 3;
    o.calibrate = 0;
    sx_status st = {0};
    sx_transfer_result *r = sx_transfer_knn(ref, 3, lab, q, 1, 1, &o, NULL, &st);
    ck_assert(r);
    ck_assert_str_eq(sx_transfer_label(r, 0), "b");
    ck_assert_double_le(fabs(r->prob[0] - 4.0 / 7), 1e-12);
    ck_assert_double_le(fabs(r->prob[1] - 3.0 / 7), 1e-12);
    ck_assert_double_le(fabs(r->confidence[0] - 2.0 / 3), 1e-12); /* the vote share */
    ck_assert_double_eq(r->mapping_score[0], 1.0);
    sx_transfer_free(r);
}
END_TEST

START_TEST(hierarchy_by_hand)
{
    double ref[4] = {0, 1, 2, 3}, q[1] = {0};
    const char *fine[4] = {"a1", "a2", "b1", "b1"}, *coarse[4] = {"A", "A", "B", "B"};
    const char *cross[4] = {"A", "B", "B", "B"}; /* a1 in A, a2 in B: still nests */
    const char *bad[4] = {"A", "A", "A", "B"};   /* b1 in A and B: does not */
    sx_transfer_opts o;
    sx_transfer_opts_init(&o);
    o.k = 1;
    o.calibrate = 0;
    sx_status st = {0};
    sx_transfer_result *f = sx_transfer_knn(ref, 4, fine, q, 1, 1, &o, NULL, &st);
    sx_transfer_result *c = sx_transfer_knn(ref, 4, coarse, q, 1, 1, &o, NULL, &st);
    ck_assert(f && c);
    int32_t parent[3];
    ck_assert_int_eq(sx_transfer_hierarchy(fine, coarse, 4, f, c, parent), 1);
    ck_assert_int_eq(parent[0], 0);
    ck_assert_int_eq(parent[1], 0);
    ck_assert_int_eq(parent[2], 1);
    ck_assert_int_eq(sx_transfer_hierarchy(fine, cross, 4, f, c, parent), 1);
    ck_assert_int_eq(parent[1], 1);
    ck_assert_int_eq(sx_transfer_hierarchy(fine, bad, 4, f, c, parent), 0);
    sx_transfer_free(f);
    sx_transfer_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("embed_transfer");
    TCase *tc = tcase_create("transfer");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, transfer_vs_sklearn);
    tcase_add_test(tc, vote_ties_go_to_first_class);
    tcase_add_test(tc, calibration_by_hand);
    tcase_add_test(tc, distance_confidence_by_hand);
    tcase_add_test(tc, mapping_score_by_hand);
    tcase_add_test(tc, probabilities_by_hand);
    tcase_add_test(tc, hierarchy_by_hand);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
