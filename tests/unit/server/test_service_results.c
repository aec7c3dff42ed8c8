/* srv_service_results: pages of a job's result table (with and without the set filter the
 * UMAP route uses), the text download made from it, and a view joining a reference's table
 * to a job's, against the rows the test wrote. */
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


/* a umap table in dir of n rows "<p>i", x = x0 + i, y = 0, set `set` */
static void umap_rows(const char *dir, const char *pfx, int n, float x0, const char *set)
{
    char **cells = calloc((size_t)n, sizeof *cells);
    const char **sets = calloc((size_t)n, sizeof *sets);
    float *xy = calloc((size_t)n * 2, sizeof *xy);
    for (int i = 0; i < n; i++) {
        char b[32];
        snprintf(b, sizeof b, "%s%d", pfx, i);
        cells[i] = strdup(b);
        sets[i] = set;
        xy[2 * i] = x0 + (float)i;
    }
    sx_jobdir_col cols[3] = {
        {.name = "cell", .type = SX_JOBDIR_STR, .str = (const char *const *)cells},
        {.name = "x", .type = SX_JOBDIR_F32, .csv_prec = 7, .f32 = xy, .stride = 2},
        {.name = "set", .type = SX_JOBDIR_STR, .str = sets}};
    char p[700];
    sx_status st;
    snprintf(p, sizeof p, "%s/%s", dir, sx_jobdir_table_name(SX_JOBDIR_UMAP));
    ck_assert_int_eq(sx_jobdir_table_write(p, n, cols, 3, &st), SX_OK);
    for (int i = 0; i < n; i++) free(cells[i]);
    free(cells), free(sets), free(xy);
}

/* every row of a view, paged by 25: "cell" names joined by spaces */
static void view_cells(srv_results_view *v, char *out, size_t cap)
{
    sx_status st;
    *out = 0;
    for (int64_t off = 0;; off += 25) {
        srv_results_page parts[2];
        int np = 0, more = 0;
        ck_assert_int_eq(srv_results_view_read(v, off, 25, parts, &np, &more, &st), SX_OK);
        for (int k = 0; k < np; k++) {
            for (int64_t i = 0; i < parts[k].n_rows; i++)
                snprintf(out + strlen(out), cap - strlen(out), "%s ", parts[k].cols[0].str[i]);
            srv_results_page_free(&parts[k]);
        }
        if (!more) break;
    }
}

/* A job whose reference rows are its reference's table: the reference's first `sample` rows,
 * then the job's query rows; each side alone; the download holds every row; a reference
 * whose cells are not the job's any more is SX_ESTATE. */
START_TEST(view_joins_reference)
{
    char job[600], ref[600], want[8192], got[8192];
    snprintf(job, sizeof job, "%s/job", sx_test_tmpdir());
    snprintf(ref, sizeof ref, "%s/ref", sx_test_tmpdir());
    mkdir(job, 0755), mkdir(ref, 0755);
    umap_rows(ref, "r", 100, 0, "reference");
    umap_rows(job, "q", 30, 1000, "query");
    sx_status st;
    sx_jobdir_refcells c = {.cells = 100};
    strcpy(c.umap, "0123456789abcdef");
    ck_assert_int_eq(sx_jobdir_refcells_write(job, &c, &st), SX_OK);
    ck_assert_int_eq(sx_jobdir_refcells_write(ref, &c, &st), SX_OK);
    ck_assert(srv_results_needs_reference(job, SX_JOBDIR_UMAP));
    srv_results_view *v = NULL;
    ck_assert_int_eq(srv_results_view_open(job, ref, SX_JOBDIR_UMAP, SRV_SET_ALL, 40, &v, &st), SX_OK);
    ck_assert_int_eq(srv_results_view_rows(v), 70);
    ck_assert_int_eq(srv_results_view_reference_cells(v), 100);
    view_cells(v, got, sizeof got);
    *want = 0;
    for (int i = 0; i < 40; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "r%d ", i);
    for (int i = 0; i < 30; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "q%d ", i);
    ck_assert_str_eq(got, want);
    srv_results_view_close(v);
    ck_assert_int_eq(srv_results_view_open(job, NULL, SX_JOBDIR_UMAP, SRV_SET_QUERY, 40, &v, &st), SX_OK);
    ck_assert_int_eq(srv_results_view_rows(v), 30);
    srv_results_view_close(v);
    ck_assert_int_eq(srv_results_view_open(job, ref, SX_JOBDIR_UMAP, SRV_SET_REFERENCE, 0, &v, &st), SX_OK);
    ck_assert_int_eq(srv_results_view_rows(v), 100);
    srv_results_view_close(v);
    char path[800], line[256];
    ck_assert_int_eq(srv_results_download(job, ref, SX_JOBDIR_UMAP, 0, path, sizeof path, &st), SX_ENOTFOUND);
    ck_assert_int_eq(srv_results_download(job, ref, SX_JOBDIR_UMAP, 1, path, sizeof path, &st), SX_OK);
    FILE *f = fopen(path, "r");
    int lines = 0;
    while (fgets(line, sizeof line, f)) lines++;
    fclose(f);
    ck_assert_int_eq(lines, 1 + 100 + 30);
    /* registered again with other cells */
    strcpy(c.umap, "fedcba9876543210");
    ck_assert_int_eq(sx_jobdir_refcells_write(ref, &c, &st), SX_OK);
    ck_assert_int_eq(srv_results_view_open(job, ref, SX_JOBDIR_UMAP, SRV_SET_ALL, 40, &v, &st), SX_ESTATE);
    ck_assert_int_eq(srv_results_view_open(job, ref, SX_JOBDIR_UMAP, SRV_SET_QUERY, 40, &v, &st), SX_OK);
    srv_results_view_close(v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service_results");
    TCase *tc = tcase_create("results");
    tcase_add_test(tc, pages_and_filter);
    tcase_add_test(tc, view_joins_reference);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
