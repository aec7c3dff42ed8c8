/* sx_jobdir: job.json through jansson, status/progress round trips, the cancel flag, and
 * the result tables: values back as written, pages, text dialects, and hostile files (a
 * truncated, garbage or lying header, bad string offsets) refused. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_jobdir.h"
#include "sx_test.h"

START_TEST(spec_round_trip)
{
    const char *dir = sx_test_tmpdir();
    sx_status st;
    json_t *opts = json_pack("{s:i, s:b, s:f, s:s, s:[s,i], s:n}", "max_iteration", 20,
                             "ignore_umap", 1, "lr", 0.5, "label", "Gro\"up", "batch_categories",
                             "a", 3, "impute");
    const char *in[] = {"/d/a b.h5ad", "/d/ü.h5ad"};
    ck_assert_int_eq(sx_jobdir_spec_write(dir, "project", in, 2, "/refs/p", opts, 3, NULL, NULL, &st), SX_OK);
    sx_jobdir_spec s;
    ck_assert_msg(sx_jobdir_spec_read(dir, &s, &st) == SX_OK, "%s", st.msg);
    ck_assert_str_eq(s.type, "project");
    ck_assert_int_eq(s.n_inputs, 2);
    ck_assert_str_eq(s.inputs[0], in[0]);
    ck_assert_str_eq(s.inputs[1], in[1]);
    ck_assert_str_eq(s.reference, "/refs/p");
    ck_assert_int_eq(s.threads, 3);
    /* values as the option parser's text; null is "not set" */
    ck_assert_str_eq(json_string_value(json_object_get(s.options, "max_iteration")), "20");
    ck_assert_str_eq(json_string_value(json_object_get(s.options, "ignore_umap")), "true");
    ck_assert_str_eq(json_string_value(json_object_get(s.options, "lr")), "0.5");
    ck_assert_str_eq(json_string_value(json_object_get(s.options, "label")), "Gro\"up");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(s.options, "batch_categories"), 1)), "3");
    ck_assert_ptr_null(json_object_get(s.options, "impute"));
    /* no limits written: every field 0, the readers' defaults */
    ck_assert_int_eq(s.limits.max_cells, 0);
    ck_assert(s.limits.max_inflate_ratio == 0);
    sx_jobdir_spec_clear(&s);
    /* no reference: null */
    ck_assert_int_eq(sx_jobdir_spec_write(dir, "integrate", in, 1, NULL, NULL, 0, NULL, NULL, &st), SX_OK);
    ck_assert_int_eq(sx_jobdir_spec_read(dir, &s, &st), SX_OK);
    ck_assert_ptr_null(s.reference);
    ck_assert_int_eq(json_object_size(s.options), 0);
    ck_assert_ptr_null(s.input_sha256);
    sx_jobdir_spec_clear(&s);
    json_decref(opts);
}
END_TEST

/* The inputs' recorded digests travel in job.json; a digest that is not 64 lowercase hex
 * digits, or a count that differs from the inputs', is refused naming the field. */
START_TEST(spec_sha256_round_trip)
{
    const char *dir = sx_test_tmpdir();
    sx_status st;
    const char *in[] = {"/d/a.h5ad", "/d/b.h5ad"};
    const char *h[] = {"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                       "0000000000000000000000000000000000000000000000000000000000000001"};
    ck_assert_int_eq(sx_jobdir_spec_write(dir, "project", in, 2, "/r", NULL, 1, NULL, h, &st), SX_OK);
    sx_jobdir_spec s;
    ck_assert_msg(sx_jobdir_spec_read(dir, &s, &st) == SX_OK, "%s", st.msg);
    ck_assert_ptr_nonnull(s.input_sha256);
    ck_assert_str_eq(s.input_sha256[0], h[0]);
    ck_assert_str_eq(s.input_sha256[1], h[1]);
    sx_jobdir_spec_clear(&s);
    const char *bad[] = {"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", h[1]};
    ck_assert_int_eq(sx_jobdir_spec_write(dir, "project", in, 2, "/r", NULL, 1, NULL, bad, &st), SX_OK);
    ck_assert_int_eq(sx_jobdir_spec_read(dir, &s, &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "input_sha256"));
    ck_assert_int_eq(sx_jobdir_spec_write(dir, "project", in, 1, "/r", NULL, 1, NULL, h, &st), SX_OK);
    char path[700];
    snprintf(path, sizeof path, "%s/job.json", dir);
    json_t *o = json_load_file(path, 0, NULL);
    json_array_append_new(json_object_get(o, "input_sha256"), json_string(h[1]));
    ck_assert_int_eq(json_dump_file(o, path, 0), 0);
    json_decref(o);
    ck_assert_int_eq(sx_jobdir_spec_read(dir, &s, &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "2 input_sha256 digests for 1 inputs"));
}
END_TEST

/* The daemon's input budget travels in job.json: the fields set come back as written (as JSON
 * numbers of the documented names), the others stay 0 (defaults). */
START_TEST(spec_limits_round_trip)
{
    const char *dir = sx_test_tmpdir();
    sx_status st;
    const char *in[] = {"/d/q.h5ad"};
    sx_io_limits lim = {.max_cells = 100, .max_nnz = 5000000000LL, .max_inflate_ratio = 2.5,
                        .max_line_bytes = 1 << 20};
    ck_assert_int_eq(sx_jobdir_spec_write(dir, "project", in, 1, "/r", NULL, 1, &lim, NULL, &st), SX_OK);
    char path[700];
    snprintf(path, sizeof path, "%s/job.json", dir);
    json_t *o = json_load_file(path, 0, NULL);
    json_t *l = json_object_get(o, "limits");
    ck_assert(json_is_integer(json_object_get(l, "max_cells")));
    ck_assert_int_eq(json_integer_value(json_object_get(l, "max_cells")), 100);
    ck_assert_int_eq(json_integer_value(json_object_get(l, "max_nnz")), 5000000000LL);
    ck_assert(json_real_value(json_object_get(l, "max_inflate_ratio")) == 2.5);
    ck_assert_ptr_null(json_object_get(l, "max_genes"));
    json_decref(o);
    sx_jobdir_spec s;
    ck_assert_msg(sx_jobdir_spec_read(dir, &s, &st) == SX_OK, "%s", st.msg);
    ck_assert_int_eq(s.limits.max_cells, 100);
    ck_assert_int_eq(s.limits.max_nnz, 5000000000LL);
    ck_assert(s.limits.max_inflate_ratio == 2.5);
    ck_assert_int_eq(s.limits.max_line_bytes, 1 << 20);
    ck_assert_int_eq(s.limits.max_genes, 0);
    ck_assert_int_eq(s.limits.max_inflate_bytes, 0);
    sx_jobdir_spec_clear(&s);
}
END_TEST

static void put(const char *dir, const char *name, const char *text)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(spec_errors)
{
    const char *dir = sx_test_tmpdir();
    sx_status st;
    sx_jobdir_spec s;
    ck_assert_int_eq(sx_jobdir_spec_read(dir, &s, &st), SX_EIO); /* none */
    put(dir, "job.json", "{\"type\": \"integrate\", \"inptus\": []}");
    ck_assert_int_eq(sx_jobdir_spec_read(dir, &s, &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "inptus"));
    put(dir, "job.json", "{\"type\": \"integrate\", \"inputs\": [1]}");
    ck_assert_int_eq(sx_jobdir_spec_read(dir, &s, &st), SX_EINVAL);
    put(dir, "job.json", "{\"type\": \"integrate\",");
    ck_assert_int_eq(sx_jobdir_spec_read(dir, &s, &st), SX_EINVAL);
    put(dir, "job.json", "{\"threads\": -1}");
    ck_assert_int_eq(sx_jobdir_spec_read(dir, &s, &st), SX_EINVAL);
    /* a limit misspelt, not positive, or not a number is refused, never ignored */
    put(dir, "job.json", "{\"limits\": {\"max_cels\": 5}}");
    ck_assert_int_eq(sx_jobdir_spec_read(dir, &s, &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "max_cels"));
    put(dir, "job.json", "{\"limits\": {\"max_cells\": 0}}");
    ck_assert_int_eq(sx_jobdir_spec_read(dir, &s, &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "max_cells"));
    put(dir, "job.json", "{\"limits\": {\"max_cells\": \"100\"}}");
    ck_assert_int_eq(sx_jobdir_spec_read(dir, &s, &st), SX_EINVAL);
    put(dir, "job.json", "{\"limits\": [100]}");
    ck_assert_int_eq(sx_jobdir_spec_read(dir, &s, &st), SX_EINVAL);
}
END_TEST

START_TEST(status_progress_cancel)
{
    const char *dir = sx_test_tmpdir();
    sx_status st;
    char state[16], msg[512], stage[32], pmsg[256];
    int code;
    double frac;
    ck_assert_int_eq(sx_jobdir_status_read(dir, state, &code, msg), SX_ENOTFOUND);
    ck_assert_int_eq(sx_jobdir_status_write(dir, "running", 0, SX_OK, NULL, &st), SX_OK);
    ck_assert_int_eq(sx_jobdir_status_read(dir, state, &code, msg), SX_OK);
    ck_assert_str_eq(state, "running");
    ck_assert_int_eq(code, SX_OK);
    const char *m = "query shares 3 of 2000 genes: \"x\"\nuse the reference's genes";
    ck_assert_int_eq(sx_jobdir_status_write(dir, "failed", 5, SX_EGENES, m, &st), SX_OK);
    ck_assert_int_eq(sx_jobdir_status_read(dir, state, &code, msg), SX_OK);
    ck_assert_str_eq(state, "failed");
    ck_assert_int_eq(code, SX_EGENES);
    ck_assert_str_eq(msg, m);
    json_t *o = json_load_file(strcat(strcpy(msg, dir), "/status.json"), 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "exit_code")), 5);
    json_decref(o);
    ck_assert_int_eq(sx_jobdir_progress_read(dir, stage, &frac, pmsg), SX_ENOTFOUND);
    ck_assert_int_eq(sx_jobdir_progress_write(dir, "train", 0.25, "epoch 3", &st), SX_OK);
    ck_assert_int_eq(sx_jobdir_progress_read(dir, stage, &frac, pmsg), SX_OK);
    ck_assert_str_eq(stage, "train");
    ck_assert(fabs(frac - 0.25) < 1e-12);
    ck_assert_str_eq(pmsg, "epoch 3");
    ck_assert_int_eq(sx_jobdir_cancel_requested(dir), 0);
    put(dir, "cancel", "");
    ck_assert_int_eq(sx_jobdir_cancel_requested(dir), 1);
}
END_TEST

/* ---- tables ---- */

enum { NR = 1000 };

static const char *tpath(const char *dir)
{
    static char p[700];
    snprintf(p, sizeof p, "%s/t.sxt", dir);
    return p;
}

/* a table of NR rows: cell names (some with commas, quotes, empty), x/y float32 interleaved,
 * a float64 column */
static void write_sample(const char *dir, char **names, float *xy, double *v)
{
    for (int i = 0; i < NR; i++) {
        char b[64];
        if (i % 97 == 5) snprintf(b, sizeof b, "c,\"%d\"", i);
        else if (i % 101 == 7) b[0] = 0;
        else snprintf(b, sizeof b, "cell%d", i);
        names[i] = strdup(b);
        xy[2 * i] = (float)i / 3, xy[2 * i + 1] = -(float)i * 1.5f;
        v[i] = 1.0 / (i + 1);
    }
    sx_jobdir_col cols[4] = {
        {.name = "cell", .type = SX_JOBDIR_STR, .str = (const char *const *)names},
        {.name = "x", .type = SX_JOBDIR_F32, .csv_prec = 7, .f32 = xy, .stride = 2},
        {.name = "y", .type = SX_JOBDIR_F32, .csv_prec = 7, .f32 = xy + 1, .stride = 2},
        {.name = "v", .type = SX_JOBDIR_F64, .csv_prec = SX_JOBDIR_FIXED | 4, .f64 = v}};
    sx_status st;
    ck_assert_int_eq(sx_jobdir_table_write(tpath(dir), NR, cols, 4, &st), SX_OK);
}

START_TEST(table_round_trip_and_pages)
{
    const char *dir = sx_test_tmpdir();
    char *names[NR];
    float xy[2 * NR];
    double v[NR], got[NR];
    write_sample(dir, names, xy, v);
    sx_status st;
    sx_jobdir_table *t = NULL;
    ck_assert_int_eq(sx_jobdir_table_open(tpath(dir), &t, &st), SX_OK);
    ck_assert_int_eq(sx_jobdir_table_rows(t), NR);
    ck_assert_int_eq(sx_jobdir_table_cols(t), 4);
    ck_assert_int_eq(sx_jobdir_table_find(t, "y"), 2);
    ck_assert_int_eq(sx_jobdir_table_find(t, "z"), -1);
    ck_assert_int_eq(sx_jobdir_table_col_type(t, 3), SX_JOBDIR_F64);
    /* pages anywhere, including the last row and an empty page */
    const int64_t starts[] = {0, 1, 499, 990, NR};
    for (int p = 0; p < 5; p++) {
        int64_t r0 = starts[p], n = r0 + 10 <= NR ? 10 : NR - r0;
        char **s = NULL;
        ck_assert_int_eq(sx_jobdir_table_read_str(t, 0, r0, n, &s, &st), SX_OK);
        ck_assert_int_eq(sx_jobdir_table_read_num(t, 1, r0, n, got, &st), SX_OK);
        for (int64_t i = 0; i < n; i++) {
            ck_assert_str_eq(s[i], names[r0 + i]);
            ck_assert(got[i] == (double)xy[2 * (r0 + i)]);
        }
        free(s);
    }
    ck_assert_int_eq(sx_jobdir_table_read_num(t, 3, 0, NR, got, &st), SX_OK);
    for (int i = 0; i < NR; i++) ck_assert(got[i] == v[i]);
    /* out of range, wrong kind */
    ck_assert_int_eq(sx_jobdir_table_read_num(t, 1, NR - 5, 10, got, &st), SX_EINVAL);
    ck_assert_int_eq(sx_jobdir_table_read_num(t, 0, 0, 1, got, &st), SX_EINVAL);
    /* CSV: header of names, then rows as printf formats them */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_int_eq(sx_jobdir_table_text(t, ',', 0, f, &st), SX_OK);
    fclose(f);
    char want[256], *line = strtok(text, "\n");
    ck_assert_str_eq(line, "cell,x,y,v");
    for (int i = 0; i < 8; i++) {
        line = strtok(NULL, "\n");
        snprintf(want, sizeof want, "%s,%.7g,%.7g,%.4f", names[i][0] == 'c' && names[i][1] == ','
                 ? "\"c,\"\"5\"\"\"" : names[i], (double)xy[2 * i], (double)xy[2 * i + 1], v[i]);
        ck_assert_str_eq(line, want);
    }
    free(text);
    sx_jobdir_table_close(t);
    for (int i = 0; i < NR; i++) free(names[i]);
}
END_TEST

static unsigned char *slurp(const char *p, long *n)
{
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)*n);
    ck_assert_int_eq(fread(b, 1, (size_t)*n, f), *n);
    fclose(f);
    return b;
}

static int open_bytes(const char *dir, const unsigned char *b, long n, sx_status *st)
{
    char p[700];
    snprintf(p, sizeof p, "%s/bad.sxt", dir);
    FILE *f = fopen(p, "wb");
    fwrite(b, 1, (size_t)n, f);
    fclose(f);
    sx_jobdir_table *t = NULL;
    int rc = sx_jobdir_table_open(p, &t, st);
    if (rc == SX_OK) {
        /* a header that passes must still not read outside: read every row of every column */
        double *num = malloc(sizeof(double) * (size_t)(sx_jobdir_table_rows(t) + 1));
        for (int k = 0; rc == SX_OK && k < sx_jobdir_table_cols(t); k++) {
            char **s = NULL;
            rc = sx_jobdir_table_col_type(t, k) == SX_JOBDIR_STR
                     ? sx_jobdir_table_read_str(t, k, 0, sx_jobdir_table_rows(t), &s, st)
                     : sx_jobdir_table_read_num(t, k, 0, sx_jobdir_table_rows(t), num, st);
            free(s);
        }
        free(num);
        sx_jobdir_table_close(t);
    }
    return rc;
}

START_TEST(hostile_tables_refused)
{
    const char *dir = sx_test_tmpdir();
    char *names[NR];
    float xy[2 * NR];
    double v[NR];
    write_sample(dir, names, xy, v);
    for (int i = 0; i < NR; i++) free(names[i]);
    long n;
    unsigned char *good = slurp(tpath(dir), &n), *b = malloc((size_t)n);
    sx_status st;
    ck_assert_int_eq(open_bytes(dir, good, n, &st), SX_OK);
    /* every truncation is refused */
    for (long cut = 0; cut < n; cut += cut < 200 ? 1 : 997)
        ck_assert_msg(open_bytes(dir, good, cut, &st) != SX_OK, "a table cut at %ld was read", cut);
    /* garbage */
    for (long i = 0; i < n; i++) b[i] = (unsigned char)(i * 131 + 7);
    ck_assert_int_ne(open_bytes(dir, b, n, &st), SX_OK);
    /* lying header fields: n_cols, n_rows, header size, column type, name length, data
     * offset, data size */
    struct { long at; int width; uint64_t value; } lies[] = {
        {12, 4, 0}, {12, 4, 5000}, {16, 8, (uint64_t)1 << 62}, {16, 8, NR + 1},
        {24, 8, 8}, {24, 8, (uint64_t)1 << 40}, {32, 1, 9}, {34, 2, 60000},
        {40, 8, (uint64_t)-8}, {48, 8, (uint64_t)1 << 50}};
    for (size_t k = 0; k < sizeof lies / sizeof lies[0]; k++) {
        memcpy(b, good, (size_t)n);
        memcpy(b + lies[k].at, &lies[k].value, (size_t)lies[k].width);
        ck_assert_msg(open_bytes(dir, b, n, &st) != SX_OK, "lie %zu accepted", k);
    }
    /* string offsets that go backwards or past the blob: refused when read */
    uint64_t off;
    memcpy(&off, good + 40, 8); /* column 0 (cell) data offset */
    memcpy(b, good, (size_t)n);
    uint64_t big = (uint64_t)1 << 40;
    memcpy(b + off + 8 * 3, &big, 8);
    ck_assert_int_ne(open_bytes(dir, b, n, &st), SX_OK);
    ck_assert_ptr_nonnull(strstr(st.msg, "damaged"));
    free(good);
    free(b);
}
END_TEST

START_TEST(names_and_files)
{
    char b[64];
    sx_jobdir_transfer_col("Group", 0, b, sizeof b);
    ck_assert_str_eq(b, "Group_transfer");
    sx_jobdir_transfer_col("Group", 1, b, sizeof b);
    ck_assert_str_eq(b, "Group_transfer_confidence");
    int n;
    const sx_jobdir_file *f = sx_jobdir_files(&n);
    int tables = 0;
    for (int i = 0; i < n; i++)
        if (f[i].table >= 0) {
            tables++;
            ck_assert_str_eq(f[i].name, sx_jobdir_table_download(f[i].table));
        }
    ck_assert_int_eq(tables, SX_JOBDIR_N_TABLES);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jobdir");
    TCase *tc = tcase_create("jobdir");
    tcase_add_test(tc, spec_round_trip);
    tcase_add_test(tc, spec_sha256_round_trip);
    tcase_add_test(tc, spec_errors);
    tcase_add_test(tc, spec_limits_round_trip);
    tcase_add_test(tc, status_progress_cancel);
    tcase_add_test(tc, table_round_trip_and_pages);
    tcase_add_test(tc, hostile_tables_refused);
    tcase_add_test(tc, names_and_files);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
