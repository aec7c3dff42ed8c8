/* srv_service_results: pages of a job's result table (with and without the set filter the
 * UMAP route uses) and the text download made from it, against the rows the test wrote. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "srv_service_results.h"
#include "sx_test.h"

enum { N = 250 };

/* a umap-like table: cell i, x = i, y = -i, set "reference" for i % 3 == 0 */
static void write_umap(const char *dir, char **cells, const char **set, float *xy)
{
    for (int i = 0; i < N; i++) {
        char b[32];
        snprintf(b, sizeof b, "c%d", i);
        cells[i] = strdup(b);
        set[i] = i % 3 == 0 ? "reference" : "query";
        xy[2 * i] = (float)i, xy[2 * i + 1] = (float)(-i);
    }
    sx_jobdir_col cols[4] = {
        {.name = "cell", .type = SX_JOBDIR_STR, .str = (const char *const *)cells},
        {.name = "x", .type = SX_JOBDIR_F32, .csv_prec = 7, .f32 = xy, .stride = 2},
        {.name = "y", .type = SX_JOBDIR_F32, .csv_prec = 7, .f32 = xy + 1, .stride = 2},
        {.name = "set", .type = SX_JOBDIR_STR, .str = set}};
    char p[700];
    sx_status st;
    snprintf(p, sizeof p, "%s/%s", dir, sx_jobdir_table_name(SX_JOBDIR_UMAP));
    ck_assert_int_eq(sx_jobdir_table_write(p, N, cols, 4, &st), SX_OK);
}

START_TEST(pages_and_filter)
{
    const char *dir = sx_test_tmpdir();
    char *cells[N];
    const char *set[N];
    float xy[2 * N];
    write_umap(dir, cells, set, xy);
    sx_status st;
    srv_results *r = NULL;
    ck_assert_int_eq(srv_results_open(dir, SX_JOBDIR_LATENT, &r, &st), SX_ENOTFOUND);
    ck_assert_int_eq(srv_results_open(dir, SX_JOBDIR_UMAP, &r, &st), SX_OK);
    ck_assert_int_eq(srv_results_rows(r), N);
    /* every page of 40, unfiltered: rows in order, more until the last */
    int64_t seen = 0;
    for (int64_t off = 0;; off += 40) {
        srv_results_page p;
        ck_assert_int_eq(srv_results_page_read(r, off, 40, NULL, NULL, &p, &st), SX_OK);
        ck_assert_int_eq(p.n_cols, 4);
        for (int64_t i = 0; i < p.n_rows; i++, seen++) {
            ck_assert_str_eq(p.cols[0].str[i], cells[seen]);
            ck_assert(p.cols[1].num[i] == seen && p.cols[2].num[i] == -seen);
        }
        int more = p.more;
        srv_results_page_free(&p);
        if (!more) break;
    }
    ck_assert_int_eq(seen, N);
    /* the reference rows only, pages of 7 from offset 10: the 10th.. matching rows */
    srv_results_page p;
    ck_assert_int_eq(srv_results_page_read(r, 10, 7, "set", "reference", &p, &st), SX_OK);
    ck_assert_int_eq(p.n_rows, 7);
    ck_assert(p.more);
    for (int64_t i = 0; i < 7; i++) {
        ck_assert_str_eq(p.cols[3].str[i], "reference");
        ck_assert(p.cols[1].num[i] == 3 * (10 + i));
    }
    srv_results_page_free(&p);
    /* the last reference rows: no more */
    int n_ref = (N + 2) / 3;
    ck_assert_int_eq(srv_results_page_read(r, n_ref - 2, 7, "set", "reference", &p, &st), SX_OK);
    ck_assert_int_eq(p.n_rows, 2);
    ck_assert(!p.more);
    srv_results_page_free(&p);
    ck_assert_int_eq(srv_results_page_read(r, 0, 7, "nope", "x", &p, &st), SX_ENOTFOUND);
    srv_results_close(r);
    /* the TSV download, made once from the table */
    char path[700];
    ck_assert_int_eq(srv_results_download(dir, NULL, SX_JOBDIR_UMAP, 1, path, sizeof path, &st), SX_OK);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[128], want[128];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "cell\tx\ty\tset\n");
    for (int i = 0; i < N; i++) {
        snprintf(want, sizeof want, "%s\t%d\t%d\t%s\n", cells[i], i, -i, set[i]);
        ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
        ck_assert_str_eq(line, want);
    }
    fclose(f);
    for (int i = 0; i < N; i++) free(cells[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service_results");
    TCase *tc = tcase_create("results");
    tcase_add_test(tc, pages_and_filter);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
