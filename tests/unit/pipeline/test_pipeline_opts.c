/* Pipeline option table: SCALEX's names and defaults (ALGORITHM.md §1-§9, SCALEX.py), typed
 * set/get with validation, job type names. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "sx_pipeline.h"
#include "sx_test.h"

START_TEST(defaults_are_scalex)
{
    /* values from ALGORITHM.md: §1.3 join/batch_key, §1.5 batch_name, §2 min_features /
     * min_cells / n_top_features (RNA), §6.1 batch_size / lr / max_iteration / seed, §2.2
     * chunk_size, §9 k and label column, §2.3 use_layer */
    sx_pipeline_opts *o = sx_pipeline_opts_new();
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(sx_pipeline_opts_str(o, "join"), "inner");
    ck_assert_str_eq(sx_pipeline_opts_str(o, "batch_key"), "batch");
    ck_assert_str_eq(sx_pipeline_opts_str(o, "batch_name"), "batch");
    ck_assert_str_eq(sx_pipeline_opts_str(o, "profile"), "RNA");
    ck_assert_int_eq(sx_pipeline_opts_int(o, "min_features"), 600);
    ck_assert_int_eq(sx_pipeline_opts_int(o, "min_cells"), 3);
    ck_assert_int_eq(sx_pipeline_opts_int(o, "n_top_features"), 2000);
    ck_assert_int_eq(sx_pipeline_opts_int(o, "batch_size"), 64);
    ck_assert(fabs(sx_pipeline_opts_float(o, "lr") - 2e-4) < 1e-15);
    ck_assert_int_eq(sx_pipeline_opts_int(o, "max_iteration"), 30000);
    ck_assert_int_eq(sx_pipeline_opts_int(o, "seed"), 124);
    ck_assert_int_eq(sx_pipeline_opts_int(o, "patience"), 10); /* §6.5 */
    ck_assert_int_eq(sx_pipeline_opts_int(o, "chunk_size"), 20000);
    ck_assert_int_eq(sx_pipeline_opts_int(o, "k"), 5);
    ck_assert_str_eq(sx_pipeline_opts_str(o, "label"), "celltype");
    ck_assert_str_eq(sx_pipeline_opts_str(o, "rep"), "latent");
    ck_assert_str_eq(sx_pipeline_opts_str(o, "use_layer"), "X");
    ck_assert_ptr_null(sx_pipeline_opts_str(o, "target_sum")); /* None -> 10000 inside prep */
    ck_assert_ptr_null(sx_pipeline_opts_str(o, "impute"));
    ck_assert_int_eq(sx_pipeline_opts_bool(o, "eval"), 0);
    ck_assert_int_eq(sx_pipeline_opts_bool(o, "ignore_umap"), 0);
    ck_assert_int_eq(sx_pipeline_opts_bool(o, "joint_umap"), 0);
    ck_assert_int_eq(sx_pipeline_opts_bool(o, "repeat"), 0);
    ck_assert_int_eq(sx_pipeline_opts_bool(o, "assess"), 0);
    ck_assert_int_eq(sx_pipeline_opts_bool(o, "processed"), 0);
    ck_assert_int_eq(sx_pipeline_opts_is_set(o, "seed"), 0);
    const char *const *v;
    ck_assert_int_eq(sx_pipeline_opts_list(o, "data_list", &v), 0);
    sx_pipeline_opts_free(o);
}
END_TEST

START_TEST(table_is_complete_and_consistent)
{
    int n;
    const sx_popt_spec *s = sx_pipeline_option_specs(&n);
    ck_assert_int_ge(n, 25);
    const char *need[] = {"data_list", "batch_categories", "batch_name", "batch_key", "profile",
                          "min_features", "min_cells", "n_top_features", "target_sum", "join",
                          "batch_size", "lr", "max_iteration", "seed", "impute", "chunk_size",
                          "ignore_umap", "assess", "processed", "use_layer", "eval", "threads",
                          "label", "k", "repeat", "joint_umap", "rep", "patience", NULL};
    for (int k = 0; need[k]; k++) ck_assert_msg(sx_pipeline_option_spec(need[k]) != NULL,
                                                "option %s missing", need[k]);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(s[i].help && *s[i].help, "option %s has no help", s[i].name);
        ck_assert_msg(s[i].jobs != 0, "option %s applies to no job", s[i].name);
        for (int j = i + 1; j < n; j++) ck_assert_str_ne(s[i].name, s[j].name);
        /* every default passes its own validation */
        if (s[i].def && s[i].type != SX_POPT_LIST) {
            sx_pipeline_opts *o = sx_pipeline_opts_new();
            sx_status st;
            sx_status_clear(&st);
            ck_assert_msg(sx_pipeline_opts_set(o, s[i].name, s[i].def, &st) == SX_OK,
                          "default of %s rejected: %s", s[i].name, st.msg);
            sx_pipeline_opts_free(o);
        }
    }
    ck_assert_ptr_null(sx_pipeline_option_spec("no_such_option"));
    /* integrate scores and plots the cell-type column (--assess, umap.png); only a
     * training job has early stopping */
    ck_assert(sx_pipeline_option_spec("label")->jobs & SX_JOB_INTEGRATE);
    ck_assert_uint_eq(sx_pipeline_option_spec("patience")->jobs, SX_JOB_INTEGRATE);
}
END_TEST

START_TEST(set_get_and_errors)
{
    sx_pipeline_opts *o = sx_pipeline_opts_new();
    sx_status st;
    sx_status_clear(&st);
    ck_assert_int_eq(sx_pipeline_opts_set(o, "max_iteration", "300", &st), SX_OK);
    ck_assert_int_eq(sx_pipeline_opts_int(o, "max_iteration"), 300);
    ck_assert_int_eq(sx_pipeline_opts_is_set(o, "max_iteration"), 1);
    ck_assert_int_eq(sx_pipeline_opts_set(o, "max_iteration", "3e4", &st), SX_OK);
    ck_assert_int_eq(sx_pipeline_opts_int(o, "max_iteration"), 30000);
    ck_assert_int_eq(sx_pipeline_opts_set(o, "lr", "1e-3", &st), SX_OK);
    ck_assert(fabs(sx_pipeline_opts_float(o, "lr") - 1e-3) < 1e-15);
    ck_assert_int_eq(sx_pipeline_opts_set(o, "eval", "true", &st), SX_OK);
    ck_assert_int_eq(sx_pipeline_opts_bool(o, "eval"), 1);
    ck_assert_int_eq(sx_pipeline_opts_set(o, "profile", "ATAC", &st), SX_OK);
    ck_assert_str_eq(sx_pipeline_opts_str(o, "profile"), "ATAC");
    ck_assert_int_eq(sx_pipeline_opts_set(o, "batch_categories", "a", &st), SX_OK);
    ck_assert_int_eq(sx_pipeline_opts_set(o, "batch_categories", "b", &st), SX_OK);
    const char *const *v;
    ck_assert_int_eq(sx_pipeline_opts_list(o, "batch_categories", &v), 2);
    ck_assert_str_eq(v[0], "a");
    ck_assert_str_eq(v[1], "b");

    ck_assert_int_eq(sx_pipeline_opts_set(o, "no_such", "1", &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "unknown option 'no_such'"));
    ck_assert_int_eq(sx_pipeline_opts_set(o, "batch_size", "many", &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "whole number"));
    ck_assert_int_eq(sx_pipeline_opts_set(o, "batch_size", "1.5", &st), SX_EINVAL);
    ck_assert_int_eq(sx_pipeline_opts_set(o, "lr", "fast", &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "number"));
    ck_assert_int_eq(sx_pipeline_opts_set(o, "eval", "maybe", &st), SX_EINVAL);
    ck_assert_int_eq(sx_pipeline_opts_set(o, "profile", "DNA", &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "RNA|ATAC"));
    ck_assert_int_eq(sx_pipeline_opts_set(o, "join", "left", &st), SX_EINVAL);
    ck_assert_int_eq(sx_pipeline_opts_set(o, "k", "0", &st), SX_EINVAL);
    ck_assert_int_eq(sx_pipeline_opts_set(o, "patience", "0", &st), SX_EINVAL); /* nn needs >= 1 */
    ck_assert_int_eq(sx_pipeline_opts_set(o, "batch_size", "-5", &st), SX_EINVAL);
    ck_assert_int_eq(sx_pipeline_opts_set(o, "lr", "nan", &st), SX_EINVAL);
    /* a rejected value leaves the previous one in force */
    ck_assert_int_eq(sx_pipeline_opts_int(o, "batch_size"), 64);
    ck_assert_int_eq(sx_pipeline_opts_int(o, "max_iteration"), 30000);
    sx_pipeline_opts_free(o);
    sx_pipeline_opts_free(NULL);
}
END_TEST

START_TEST(label_list_from_json)
{
    /* a JSON list for a text option (label: ["cell_type", "subtype"]) is the "a,b" text */
    sx_pipeline_opts *o = sx_pipeline_opts_new();
    sx_status st = {0};
    json_t *j = json_pack("{s:[s,s], s:s}", "label", "cell_type", "subtype", "unknown", "off");
    ck_assert_int_eq(sx_pipeline_opts_from_json(o, j, &st), SX_OK);
    ck_assert_str_eq(sx_pipeline_opts_str(o, "label"), "cell_type,subtype");
    ck_assert_str_eq(sx_pipeline_opts_str(o, "unknown"), "off");
    json_decref(j);
    sx_pipeline_opts_free(o);
}
END_TEST

START_TEST(job_types)
{
    ck_assert_int_eq(sx_job_type_parse("integrate"), SX_JOB_INTEGRATE);
    ck_assert_int_eq(sx_job_type_parse("project"), SX_JOB_PROJECT);
    ck_assert_int_eq(sx_job_type_parse("label_transfer"), SX_JOB_TRANSFER);
    ck_assert_int_eq(sx_job_type_parse("bake"), 0);
    ck_assert_int_eq(sx_job_type_parse(NULL), 0);
    ck_assert_str_eq(sx_job_type_name(SX_JOB_INTEGRATE), "integrate");
    ck_assert_str_eq(sx_job_type_name(SX_JOB_PROJECT), "project");
    ck_assert_str_eq(sx_job_type_name(SX_JOB_TRANSFER), "label_transfer");
    for (int t = 1; t <= 4; t <<= 1)
        ck_assert_int_eq(sx_job_type_parse(sx_job_type_name((sx_job_type)t)), t);
}
END_TEST

START_TEST(run_rejects_bad_jobs)
{
    sx_status st;
    sx_status_clear(&st);
    ck_assert_int_eq(sx_pipeline_run(NULL, NULL, &st), SX_EINVAL);
    sx_pipeline_opts *o = sx_pipeline_opts_new();
    char out[600];
    snprintf(out, sizeof out, "%s/out", sx_test_tmpdir());
    const char *in[1] = {"/nonexistent/file.h5ad"};
    sx_job_spec j = {.type = SX_JOB_INTEGRATE, .inputs = in, .n_inputs = 1, .outdir = out,
                     .opts = o};
    int rc = sx_pipeline_run(&j, NULL, &st);
    ck_assert_int_ne(rc, SX_OK);
    ck_assert_ptr_nonnull(strstr(st.msg, "/nonexistent/file.h5ad"));
    j.type = SX_JOB_PROJECT;
    j.reference = "/nonexistent/ref";
    rc = sx_pipeline_run(&j, NULL, &st);
    ck_assert_int_eq(rc, SX_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(st.msg, "reference"));
    sx_pipeline_opts_free(o);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipeline_opts");
    TCase *tc = tcase_create("opts");
    tcase_add_test(tc, defaults_are_scalex);
    tcase_add_test(tc, table_is_complete_and_consistent);
    tcase_add_test(tc, set_get_and_errors);
    tcase_add_test(tc, label_list_from_json);
    tcase_add_test(tc, job_types);
    tcase_add_test(tc, run_rejects_bad_jobs);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
