/* The QC report of a map (sx_pipeline_qc.h, contract 2): numbers checked against values
 * computed by hand from a small obs frame (numpy's linear quantiles of 0, 0.1, ..., 1 are
 * the quantile levels themselves), columns found by name, warnings by code. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_pipeline_qc.h"
#include "sx_test.h"

/* obs: one reference row (row 0), then 11 query rows */
static sx_frame *obs_frame(int with_score, int one_class)
{
    sx_status st = {0};
    sx_frame *f = sx_frame_new(12, NULL, &st);
    ck_assert_ptr_nonnull(f);
    int32_t codes[12], bc[12];
    double conf[12], ms[12];
    const char *cats[] = {"A", "B", "Unknown"}, *batches[] = {"ref", "q2", "q1"};
    for (int i = 0; i < 12; i++) {
        codes[i] = i == 0 ? -1 : one_class ? 0 : i <= 6 ? 0 : i <= 9 ? 1 : 2;
        conf[i] = i == 0 ? NAN : 0.5 + 0.05 * i;
        ms[i] = i == 0 ? NAN : (i - 1) / 10.0;
        bc[i] = i == 0 ? 0 : i <= 4 ? 1 : 2;
    }
    ck_assert_int_eq(sx_frame_add_categorical(f, "cell_type_transfer", codes, cats, 3, 0, &st), SX_OK);
    ck_assert_int_eq(sx_frame_add_float(f, "cell_type_transfer_confidence", conf, &st), SX_OK);
    if (with_score) ck_assert_int_eq(sx_frame_add_float(f, "cell_type_mapping_score", ms, &st), SX_OK);
    ck_assert_int_eq(sx_frame_add_categorical(f, "batch", bc, batches, 3, 0, &st), SX_OK);
    return f;
}

static json_t *qc_of(const sx_pl_qc_in *in)
{
    sx_status st = {0};
    char *s = sx_pl_qc_json(in, &st);
    ck_assert_msg(s != NULL, "%s", st.msg);
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    ck_assert_msg(j != NULL, "not JSON (%s): %s", e.text, s);
    sx_free(s);
    return j;
}

static int has_warning(json_t *qc, const char *code)
{
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(qc, "warnings"), i, w)
        if (strcmp(json_string_value(json_object_get(w, "code")), code) == 0) return 1;
    return 0;
}

static double num(json_t *o, const char *path)
{
    char buf[200];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *x = o;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        x = json_object_get(x, k);
    ck_assert_msg(json_is_number(x), "%s is not a number", path);
    return json_number_value(x);
}

START_TEST(test_report_numbers)
{
    /* genes: 3 of 5 by names and case, one ambiguous */
    const char *q[] = {"GCG", "ins", "Sst", "SST2", "sst2"};
    const char *ref[] = {"GCG", "INS", "SST2", "PPY", "TTR"};
    sx_status st = {0};
    sx_frame *var = sx_frame_new(5, q, &st);
    int64_t src[5];
    sx_genematch_report g;
    ck_assert_int_eq(sx_genematch_run(var, ref, 5, NULL, src, &g, &st), SX_OK);
    sx_frame *obs = obs_frame(1, 0);
    sx_pl_qc_in in = {&g, obs, 1, 11, 20};
    json_t *qc = qc_of(&in);
    ck_assert_int_eq((int)num(qc, "genes.reference"), 5);
    ck_assert_int_eq((int)num(qc, "genes.query"), 5);
    ck_assert_int_eq((int)num(qc, "genes.matched"), 3);
    ck_assert_int_eq((int)num(qc, "genes.by_rule.var_names"), 2);
    ck_assert_int_eq((int)num(qc, "genes.by_rule.case_insensitive"), 1);
    ck_assert_int_eq(json_array_size(json_object_get(json_object_get(qc, "genes"), "ambiguous")), 0);
    ck_assert_int_eq((int)num(qc, "cells.query"), 20);
    ck_assert_int_eq((int)num(qc, "cells.mapped"), 11);
    json_t *b = json_object_get(qc, "batches");
    ck_assert_int_eq(json_array_size(b), 2);
    ck_assert_str_eq(json_string_value(json_array_get(b, 0)), "q2");
    ck_assert_str_eq(json_string_value(json_array_get(b, 1)), "q1");
    /* scores 0, 0.1, ..., 1.0: mean 0.5, the p-th linear quantile is p/100 */
    ck_assert(fabs(num(qc, "mapping_score.mean") - 0.5) < 1e-6);
    const char *pct[] = {"5", "25", "50", "75", "95"};
    for (int p = 0; p < 5; p++) {
        char path[64];
        snprintf(path, sizeof path, "mapping_score.quantiles.%s", pct[p]);
        ck_assert_msg(fabs(num(qc, path) - atoi(pct[p]) / 100.0) < 1e-6, "%s", path);
    }
    ck_assert(fabs(num(qc, "unknown_fraction") - 2.0 / 11) < 1e-6);
    /* labels: A rows 1..6, B 7..9, Unknown 10..11; confidence 0.5 + 0.05 i */
    json_t *L = json_object_get(json_object_get(qc, "labels"), "cell_type");
    ck_assert_int_eq(json_array_size(L), 3);
    double want_conf[3] = {0.5 + 0.05 * 3.5, 0.5 + 0.05 * 8, 0.5 + 0.05 * 10.5};
    int want_n[3] = {6, 3, 2};
    for (int k = 0; k < 3; k++) {
        json_t *r = json_array_get(L, (size_t)k);
        ck_assert_int_eq((int)num(r, "cells"), want_n[k]);
        ck_assert(fabs(num(r, "mean_confidence") - want_conf[k]) < 1e-6);
    }
    /* 3 of 5 genes, 11 of 20 cells: both warned about */
    ck_assert(has_warning(qc, "low_gene_overlap"));
    ck_assert(has_warning(qc, "cells_filtered"));
    ck_assert(has_warning(qc, "case_insensitive_genes"));
    ck_assert(has_warning(qc, "poorly_mapped")); /* 0 and 0.1: 2 of 11 = 18% */
    ck_assert(!has_warning(qc, "many_unknown"));
    ck_assert(!has_warning(qc, "single_class"));
    json_decref(qc);
    sx_frame_free(obs);
    sx_frame_free(var);
    sx_genematch_report_free(&g);
}
END_TEST

/* without contract 1's mapping score: no mapping_score / unknown_fraction; one class warned */
START_TEST(test_report_without_scores)
{
    sx_frame *obs = obs_frame(0, 1);
    sx_pl_qc_in in = {NULL, obs, 1, 11, 11};
    json_t *qc = qc_of(&in);
    ck_assert_ptr_null(json_object_get(qc, "genes"));
    ck_assert_ptr_null(json_object_get(qc, "mapping_score"));
    ck_assert_ptr_null(json_object_get(qc, "unknown_fraction"));
    ck_assert(has_warning(qc, "single_class"));
    ck_assert(!has_warning(qc, "cells_filtered"));
    json_t *L = json_object_get(json_object_get(qc, "labels"), "cell_type");
    ck_assert_int_eq(json_array_size(L), 1);
    ck_assert_int_eq((int)num(json_array_get(L, 0), "cells"), 11);
    json_decref(qc);
    sx_frame_free(obs);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipeline_qc");
    TCase *tc = tcase_create("qc");
    tcase_add_test(tc, test_report_numbers);
    tcase_add_test(tc, test_report_without_scores);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
