/* Figures drawn on request: a projection with plots off (the daemon's /map) leaves qc.png
 * and confusion.png to be drawn from what it kept (result.json's QC report, labels.sxt,
 * confusion.csv), still listing them; drawn then, each is byte for byte the figure the same
 * projection draws with plots on.
 * labels.csv is not a figure: written either way. */
#include <jansson.h>

#include "pipeline_runs.h"

static void project(const char *ref, const char *query, const char *out, int plots)
{
    sx_status st;
    sx_pipeline_opts *o = syn_integrate_opts(1);
    ck_assert_int_eq(sx_pipeline_opts_set(o, "label", "celltype", &st), SX_OK);
    ck_assert_int_eq(sx_pipeline_opts_set(o, "plots", plots ? "true" : "false", &st), SX_OK);
    const char *in[1] = {query};
    sx_job_spec j = {.type = SX_JOB_PROJECT, .inputs = in, .n_inputs = 1, .reference = ref,
                     .outdir = out, .opts = o, .threads = 1};
    ck_assert_msg(sx_pipeline_run(&j, NULL, &st) == SX_OK, "%s", st.msg);
    sx_pipeline_opts_free(o);
}

static unsigned char *slurp(const char *dir, const char *name, long *n)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)*n + 1);
    ck_assert_int_eq(fread(b, 1, (size_t)*n, f), (size_t)*n);
    fclose(f);
    return b;
}

static int lists_file(const char *dir, const char *name)
{
    char p[700];
    snprintf(p, sizeof p, "%s/result.json", dir);
    json_t *r = json_load_file(p, 0, NULL);
    ck_assert_ptr_nonnull(r);
    size_t i;
    json_t *f;
    int found = 0;
    json_array_foreach(json_object_get(r, "files"), i, f) found |= !strcmp(json_string_value(f), name);
    json_decref(r);
    return found;
}

START_TEST(figures_drawn_on_request_are_the_eager_ones)
{
    const char *dir = sx_test_tmpdir();
    const char *ref = syn_integrate(dir, 300, 1);
    char eager[600], lazy[600], q[600];
    snprintf(eager, sizeof eager, "%s/eager", dir);
    snprintf(lazy, sizeof lazy, "%s/lazy", dir);
    snprintf(q, sizeof q, "%s/ref.h5ad", dir);
    project(ref, q, eager, 1);
    project(ref, q, lazy, 0);
    long ne = 0, nl = 0;
    unsigned char *e = slurp(eager, "qc.png", &ne), *l = slurp(lazy, "qc.png", &nl);
    ck_assert_msg(e != NULL, "plots on: qc.png drawn with the job");
    ck_assert_msg(l == NULL, "plots off: qc.png left to the first request");
    ck_assert(lists_file(lazy, "qc.png") && lists_file(eager, "qc.png"));
    /* labels.csv is not a figure: written with plots on and off alike (a CLI user's table) */
    long nc = 0, nc2 = 0;
    unsigned char *csv = slurp(eager, "labels.csv", &nc), *csv2 = slurp(lazy, "labels.csv", &nc2);
    ck_assert_ptr_nonnull(csv);
    ck_assert_ptr_nonnull(csv2);
    ck_assert(nc == nc2 && memcmp(csv, csv2, (size_t)nc) == 0);
    ck_assert(lists_file(lazy, "labels.csv") && lists_file(eager, "labels.csv"));
    free(csv);
    free(csv2);
    sx_status st;
    ck_assert_msg(sx_pipeline_render_figure(lazy, "qc.png", &st) == SX_OK, "%s", st.msg);
    l = slurp(lazy, "qc.png", &nl);
    ck_assert_ptr_nonnull(l);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    ck_assert(nl > 1000 && memcmp(l, sig, 8) == 0);
    ck_assert_msg(ne == nl && memcmp(e, l, (size_t)ne) == 0,
                  "the figure drawn on request differs from the job's (%ld vs %ld bytes)", nl, ne);
    /* confusion.png likewise (the query holds its true labels), from confusion.csv */
    free(e);
    free(l);
    e = slurp(eager, "confusion.png", &ne);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_null(slurp(lazy, "confusion.png", &nl));
    ck_assert(lists_file(lazy, "confusion.png"));
    ck_assert_msg(sx_pipeline_render_figure(lazy, "confusion.png", &st) == SX_OK, "%s", st.msg);
    l = slurp(lazy, "confusion.png", &nl);
    ck_assert_msg(l && ne == nl && memcmp(e, l, (size_t)ne) == 0,
                  "confusion.png drawn on request differs from the job's (%ld vs %ld bytes)", nl, ne);
    /* nothing to draw it from: not found, and no file left behind */
    ck_assert_int_eq(sx_pipeline_render_figure(ref, "qc.png", &st), SX_ENOTFOUND);
    ck_assert_int_eq(sx_pipeline_render_figure(ref, "confusion.png", &st), SX_ENOTFOUND);
    ck_assert_ptr_null(slurp(ref, "qc.png", &nl));
    ck_assert_ptr_null(slurp(ref, "confusion.png", &nl));
    ck_assert_int_eq(sx_pipeline_render_figure(lazy, "adata.h5ad", &st), SX_EINVAL);
    free(e);
    free(l);
}
END_TEST

int main(void)
{
    (void)syn_table_nums; /* pipeline_runs.h's, for other tests */
    Suite *s = suite_create("pipeline_figures");
    TCase *tc = tcase_create("figures");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, figures_drawn_on_request_are_the_eager_ones);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
