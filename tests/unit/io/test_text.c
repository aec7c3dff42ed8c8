/* sx_text_read: the original CellBench CSV.gz tables checked against pandas (run at test
 * time) and against the h5ad files built from them; small hand-made tables for each of
 * anndata's read_text rules (FORMATS.md 4) and each failure. */
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "io_truth.h"
#include "sx_io.h"
#include "sx_log.h"

static const char *write_tmp(const char *name, const char *text)
{
    static char ring[8][1024];
    static int next;
    char *p = ring[next++ & 7];
    snprintf(p, 1024, "%s/%s", sx_test_tmpdir(), name);
    if (strcmp(p + strlen(p) - 3, ".gz") == 0) {
        gzFile g = gzopen(p, "wb");
        ck_assert_ptr_nonnull(g);
        gzputs(g, text);
        gzclose(g);
    } else {
        FILE *f = fopen(p, "w");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        fclose(f);
    }
    return p;
}

static sx_dataset *read_ok(const char *path)
{
    sx_status st = {0};
    sx_dataset *d = sx_text_read(path, NULL, NULL, &st);
    ck_assert_msg(d, "%s: %s", path, st.msg);
    return d;
}

static void expect_fail(const char *path, int code, const char *word)
{
    sx_status st = {0};
    sx_dataset *d = sx_text_read(path, NULL, NULL, &st);
    ck_assert_msg(!d, "%s: read succeeded, expected '%s'", path, word);
    ck_assert_msg(st.code == code, "%s: code %d (%s), expected %d", path, st.code, st.msg, code);
    ck_assert_msg(strstr(st.msg, word), "%s: message '%s' lacks '%s'", path, st.msg, word);
}

/* Dense check of a small result: names and values (cells x genes, row-major). */
static void check_small(const sx_dataset *d, int n_obs, int n_vars, const char *const *obs,
                        const char *const *var, const float *dense)
{
    ck_assert_int_eq(sx_dataset_n_obs(d), n_obs);
    ck_assert_int_eq(sx_dataset_n_vars(d), n_vars);
    ck_assert_int_eq(d->X->n_rows, n_obs);
    ck_assert_int_eq(d->X->n_cols, n_vars);
    for (int i = 0; i < n_obs; i++) ck_assert_str_eq(d->obs->index[i], obs[i]);
    for (int j = 0; j < n_vars; j++) ck_assert_str_eq(d->var->index[j], var[j]);
    float got[64] = {0};
    sx_csr_densify_rows(d->X, 0, n_obs, got);
    for (int k = 0; k < n_obs * n_vars; k++)
        ck_assert_msg(got[k] == dense[k], "value %d: %g, expected %g", k, got[k], dense[k]);
    ck_assert_int_eq(sx_csr_validate(d->X, 1, "X", NULL), SX_OK);
}

static void cellbench(const char *csv, const char *h5ad)
{
    const char *p = sx_test_shared(csv);
    io_truth t, h;
    truth_run(&t, "csv", p, NULL);
    sx_dataset *d = read_ok(p);
    truth_check_dataset(&t, d, csv);
    /* the h5ad built from the same table: same values and genes (its cell ids carry a
     * batch prefix, so they are not compared) */
    truth_run(&h, "h5ad", sx_test_shared(h5ad), NULL);
    truth_check_dataset_opt(&h, d, h5ad, 0);
    ck_assert_int_eq(d->x_was_int, 0); /* anndata read_csv parses float32 */
    truth_free(&t);
    truth_free(&h);
    sx_dataset_free(d);
}

START_TEST(cellbench_celseq2)
{
    cellbench("data/cellbench_3cl_celseq2_dropseq/original/sc_celseq2.count.csv.gz",
              "data/cellbench_3cl_celseq2_dropseq/celseq2.h5ad");
}
END_TEST

START_TEST(cellbench_dropseq)
{
    cellbench("data/cellbench_3cl_celseq2_dropseq/original/sc_dropseq.count.csv.gz",
              "data/cellbench_3cl_celseq2_dropseq/dropseq.h5ad");
}
END_TEST

START_TEST(csv_header_rules)
{
    /* corner field + quotes: cells c1 c2, genes g1 g2 */
    sx_dataset *d = read_ok(write_tmp("a.csv", "\"\",\"c1\",\"c2\"\n\"g1\",1,0\n\"g2\",0,2.5\n"));
    const char *o2[] = {"c1", "c2"}, *v2[] = {"g1", "g2"};
    const float x1[] = {1, 0, 0, 2.5f};
    check_small(d, 2, 2, o2, v2, x1);
    sx_dataset_free(d);
    /* R style: header one field short; CRLF line ends; .csv.gz */
    d = read_ok(write_tmp("b.csv.gz", "c1,c2\r\ng1,1,0\r\ng2,0,3\r\n"));
    const float x2[] = {1, 0, 0, 3};
    check_small(d, 2, 2, o2, v2, x2);
    sx_dataset_free(d);
    /* no header, no row names: numbered names; 3 genes x 2 cells */
    d = read_ok(write_tmp("c.csv", "1,0\n0,2\n3,0\n"));
    const char *o3[] = {"0", "1"}, *v3[] = {"0", "1", "2"};
    const float x3[] = {1, 0, 3, 0, 2, 0};
    check_small(d, 2, 3, o3, v3, x3);
    sx_dataset_free(d);
    /* column names from the last comment line */
    d = read_ok(write_tmp("d.csv", "# made by hand\n# cA cB\n1,2\n3,4\n"));
    const char *o4[] = {"cA", "cB"}, *v4[] = {"0", "1"};
    const float x4[] = {1, 3, 2, 4};
    check_small(d, 2, 2, o4, v4, x4);
    sx_dataset_free(d);
    /* numbers in exponent form, blank line ignored */
    d = read_ok(write_tmp("e.csv", "x,c1\ng1,1e2\n\ng2,-0\n"));
    const char *o5[] = {"c1"};
    const float x5[] = {100, 0};
    check_small(d, 1, 2, o5, v2, x5);
    ck_assert_int_eq(sx_csr_nnz(d->X), 1);
    sx_dataset_free(d);
    /* a UTF-8 byte order mark before the header */
    d = read_ok(write_tmp("bom.csv", "\xEF\xBB\xBF" "c1,c2\ng1,1,0\ng2,0,3\n"));
    check_small(d, 2, 2, o2, v2, x2);
    sx_dataset_free(d);
    /* no telling suffix: comma separated content is read as csv, tabs as a table */
    d = read_ok(write_tmp("f.dat", "# counts\nc1,c2\ng1,1,0\ng2,0,3\n"));
    check_small(d, 2, 2, o2, v2, x2);
    sx_dataset_free(d);
    d = read_ok(write_tmp("g.dat", "gene\tc1\tc2\ng1\t1\t0\ng2\t0\t3\n"));
    check_small(d, 2, 2, o2, v2, x2);
    sx_dataset_free(d);
}
END_TEST

START_TEST(tsv_rules)
{
    /* index name in the header; duplicate genes made unique; all integers */
    sx_dataset *d = read_ok(write_tmp("a.tsv", "gene\tc1\tc2\ng1\t1\t0\ng1\t0\t5\n"));
    const char *o[] = {"c1", "c2"}, *v[] = {"g1", "g1-1"};
    const float x[] = {1, 0, 0, 5};
    check_small(d, 2, 2, o, v, x);
    ck_assert_int_eq(d->x_was_int, 1);
    sx_dataset_free(d);
    /* R style header (one short), gz, a real value */
    d = read_ok(write_tmp("b.txt.gz", "c1\tc2\ng1\t1.5\t0\ng2\t0\t5\n"));
    const char *v2[] = {"g1", "g2"};
    const float x2[] = {1.5f, 0, 0, 5};
    check_small(d, 2, 2, o, v2, x2);
    ck_assert_int_eq(d->x_was_int, 0);
    sx_dataset_free(d);
    /* space separated .txt */
    d = read_ok(write_tmp("c.txt", "gene c1 c2\ng1 1 0\ng2 0 5\n"));
    const float x3[] = {1, 0, 0, 5};
    check_small(d, 2, 2, o, v2, x3);
    sx_dataset_free(d);
    /* lines of only spaces are blank lines (fuzz_text found a NULL read on " \n \n", and a
     * use-after-free of the previous line's fields after a real line) */
    d = read_ok(write_tmp("d.txt", "gene c1 c2\n  \ng1 1 0\n \ng2 0 5\n"));
    check_small(d, 2, 2, o, v2, x3);
    sx_dataset_free(d);
}
END_TEST

START_TEST(bad_tables)
{
    expect_fail(write_tmp("r.csv", "c1,c2\ng1,1,0\ng2,0\n"), SX_EFORMAT, "ragged");
    expect_fail(write_tmp("w.csv", "c1,c2\ng1,1,zero\n"), SX_EFORMAT, "'zero' is not a number");
    expect_fail(write_tmp("n.csv", "c1 c2\n"), SX_EFORMAT, "no ','");
    expect_fail(write_tmp("h.csv", "c1,c2\n"), SX_EFORMAT, "no data rows");
    expect_fail(write_tmp("e.csv", ""), SX_EFORMAT, "no data rows");
    expect_fail(write_tmp("sp.txt", " \n \n"), SX_EFORMAT, "");
    expect_fail(write_tmp("m.csv", "a,b,c,d\ng1,1,2\n"), SX_EFORMAT, "header has 4 names");
    expect_fail(write_tmp("na.tsv.gz", "g\tc1\tc2\ng1\t1\tNA\n"), SX_EDATA, "NaN");
    expect_fail(write_tmp("nan.csv", "c1,c2\ng1,1,nan\n"), SX_EDATA, "NaN");
    expect_fail(write_tmp("inf.csv", "c1,c2\ng1,1,inf\n"), SX_EDATA, "infinite");
    expect_fail("/nonexistent/x.csv", SX_EIO, "x.csv");
    /* a 10x barcodes list on its own: names, no values */
    expect_fail(write_tmp("barcodes.tsv", "AAAC-1\nAAAG-1\nAACT-1\n"), SX_EFORMAT, "no values");
    /* a gzip table cut short */
    const char *src = sx_test_shared(
        "data/cellbench_3cl_celseq2_dropseq/original/sc_dropseq.count.csv.gz");
    char cut[1024], cmd[2048];
    snprintf(cut, sizeof cut, "%s/cut.csv.gz", sx_test_tmpdir());
    snprintf(cmd, sizeof cmd, "head -c 200000 '%s' > '%s'", src, cut);
    ck_assert_int_eq(system(cmd), 0);
    expect_fail(cut, SX_EFORMAT, "gzip stream ends early");
    /* negative counts: a warning, not an error */
    sx_log_set_sink(NULL, NULL, SX_LOG_ERROR);
    sx_dataset *d = read_ok(write_tmp("neg.csv", "c1,c2\ng1,-1,2\n"));
    ck_assert_float_eq(d->X->data[0], -1.0f);
    sx_dataset_free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io_text");
    TCase *tc = tcase_create("text");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, cellbench_celseq2);
    tcase_add_test(tc, cellbench_dropseq);
    tcase_add_test(tc, csv_header_rules);
    tcase_add_test(tc, tsv_rules);
    tcase_add_test(tc, bad_tables);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
