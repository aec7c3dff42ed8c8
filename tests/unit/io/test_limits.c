/* The input size budget (sx_io_limits, issue 14): every bomb of ../shared/security is refused
 * cleanly (SX_ELIMIT naming the limit and how to raise it) with bounded memory, custom limits
 * apply exactly at their value (sizes from PROVENANCE.md), and the relative budget refuses a
 * gzip stream that expands beyond max_inflate_ratio x its size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zlib.h>

#include "sx_io.h"
#include "sx_log.h"
#include "sx_test.h"

/* Peak resident memory of this process in kB (VmHWM), or -1. */
static long peak_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

/* Reset the peak to the current RSS (Linux >= 4.0); 0 when it could not be reset. */
static int reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

/* Before the change a bomb could ask for hundreds of GB: keep a regression from taking the
 * machine down (not under ASan, whose shadow memory needs a large address space). */
static void cap_address_space(void)
{
#if !defined(__SANITIZE_ADDRESS__)
    struct rlimit rl = {(rlim_t)8 << 30, (rlim_t)8 << 30};
    setrlimit(RLIMIT_AS, &rl);
#endif
}

/* Read path with lim; expect code and every word of words (NULL-terminated) in the
 * message, and a peak memory growth below 200 MB. */
static void expect_refused(const char *path, const sx_io_limits *lim, int code,
                           const char *const *words)
{
    cap_address_space();
    int reset = reset_peak();
    long base = reset ? rss_kb() : peak_kb();
    sx_read_opts o = {0};
    o.limits = lim;
    sx_status st = {0};
    sx_dataset *d = sx_io_read(path, &o, NULL, &st);
    long grown = peak_kb() - base;
    ck_assert_msg(d == NULL, "%s: read succeeded; expected a refusal", path);
    ck_assert_msg(st.code == code, "%s: code %d (%s), expected %d", path, st.code, st.msg, code);
    for (int i = 0; words[i]; i++)
        ck_assert_msg(strstr(st.msg, words[i]), "%s: message '%s' lacks '%s'", path, st.msg,
                      words[i]);
    ck_assert_msg(grown < 200 * 1024, "%s: peak memory grew by %ld kB refusing it", path, grown);
}

static const char *const cells_words[] = {"max_cells", "--max-cells", "SCALEXD_MAX_CELLS", NULL};
static const char *const inflate_words[] = {"max_inflate_ratio", "--max-inflate-ratio", NULL};

START_TEST(mtx_5e6_dims_refused)
{
    expect_refused(sx_test_shared("security/mtx_dims_5000000.mtx"), NULL, SX_ELIMIT,
                   (const char *const[]){"max_cells", "5000000", "--max-cells", NULL});
}
END_TEST

START_TEST(mtx_int32_max_dims_refused)
{
    expect_refused(sx_test_shared("security/mtx_dims_max.mtx"), NULL, SX_ELIMIT,
                   (const char *const[]){"max_cells", "2147483647", NULL});
    /* raised max_cells: max_genes is the next limit in the way */
    sx_io_limits lim = {.max_cells = 3000000000LL};
    expect_refused(sx_test_shared("security/mtx_dims_max.mtx"), &lim, SX_ELIMIT,
                   (const char *const[]){"max_genes", "--max-genes", NULL});
}
END_TEST

START_TEST(gzip_line_of_commas_refused)
{
    const char *p = sx_test_shared("security/bomb_commas_50M.csv.gz");
    /* 50 MB from a 48 kB file: beyond 100 x 48 kB + 16 MiB */
    expect_refused(p, NULL, SX_ELIMIT, inflate_words);
    /* without the ratio, its 50M fields are more than max_cells + 1 (counted, not stored) */
    sx_io_limits lim = {.max_inflate_ratio = 1e6};
    expect_refused(p, &lim, SX_ELIMIT, cells_words);
    /* and without max_cells, the line length stops it before the line is held */
    lim.max_cells = 1000000000LL;
    lim.max_line_bytes = 1 << 20;
    expect_refused(p, &lim, SX_ELIMIT, (const char *const[]){"max_line_bytes", NULL});
}
END_TEST

START_TEST(h5ad_20M_rows_refused)
{
    const char *p = sx_test_shared("security/h5_manyrows_2e7.h5ad");
    expect_refused(p, NULL, SX_ELIMIT,
                   (const char *const[]){"max_cells", "20000000", "--max-cells", NULL});
    /* a 211 kB file cannot back 20M names and a 160 MB indptr */
    sx_io_limits lim = {.max_cells = 100000000LL};
    expect_refused(p, &lim, SX_ELIMIT, inflate_words);
}
END_TEST

/* ---------------------------------------------------------------- custom limits */

static void expect_read(const char *path, const sx_io_limits *lim, int64_t rows, int64_t cols)
{
    sx_read_opts o = {0};
    o.limits = lim;
    sx_status st = {0};
    sx_dataset *d = sx_io_read(path, &o, NULL, &st);
    ck_assert_msg(d, "%s: %s", path, st.msg);
    ck_assert_int_eq(d->X->n_rows, rows);
    ck_assert_int_eq(d->X->n_cols, cols);
    sx_dataset_free(d);
}

/* Read at exactly the input's size, refused one below, for cells and genes. */
static void at_the_edge(const char *path, int64_t cells, int64_t genes)
{
    sx_io_limits lim = {.max_cells = cells, .max_genes = genes};
    expect_read(path, &lim, cells, genes);
    lim.max_cells = cells - 1;
    expect_refused(path, &lim, SX_ELIMIT, cells_words);
    lim.max_cells = cells;
    lim.max_genes = genes - 1;
    expect_refused(path, &lim, SX_ELIMIT,
                   (const char *const[]){"max_genes", "SCALEXD_MAX_GENES", NULL});
}

START_TEST(h5ad_edge)
{
    /* PROVENANCE.md: Wang 501 cells x 219 genes */
    at_the_edge(sx_test_shared("data/pancreas_xin_wang_scclassify/wang.h5ad"), 501, 219);
}
END_TEST

START_TEST(tenx_h5_edge)
{
    /* PROVENANCE.md: 3.0.0 1,107 cells x 507 genes (23,866 non-zeros) */
    const char *p = sx_test_shared("data/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix.h5");
    at_the_edge(p, 1107, 507);
    sx_io_limits lim = {.max_nnz = 23866};
    expect_read(p, &lim, 1107, 507);
    lim.max_nnz = 23865;
    expect_refused(p, &lim, SX_ELIMIT, (const char *const[]){"max_nnz", "--max-nnz", NULL});
}
END_TEST

START_TEST(mtx_folder_edge)
{
    const char *p = sx_test_shared("data/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix");
    at_the_edge(p, 1107, 507);
    sx_io_limits lim = {.max_nnz = 23866};
    expect_read(p, &lim, 1107, 507);
    lim.max_nnz = 23865;
    expect_refused(p, &lim, SX_ELIMIT, (const char *const[]){"max_nnz", NULL});
}
END_TEST

START_TEST(text_edge)
{
    /* 3 genes x 4 cells on disk: 4 cells x 3 genes read */
    const char *dir = sx_test_tmpdir();
    char p[1024];
    snprintf(p, sizeof p, "%s/t.csv", dir);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(",c1,c2,c3,c4\ng1,1,0,2,0\ng2,0,3,0,0\ng3,4,0,0,5\n", f);
    fclose(f);
    at_the_edge(p, 4, 3);
    sx_io_limits lim = {.max_nnz = 5};
    expect_read(p, &lim, 4, 3);
    lim.max_nnz = 4;
    expect_refused(p, &lim, SX_ELIMIT, (const char *const[]){"max_nnz", NULL});
}
END_TEST

/* A gzip stream just under / over its budget: ratio x compressed size + 16 MiB. */
START_TEST(gzip_inflate_edge)
{
    const char *dir = sx_test_tmpdir();
    char p[1024];
    snprintf(p, sizeof p, "%s/zeros.csv.gz", dir);
    gzFile g = gzopen(p, "wb9");
    ck_assert_ptr_nonnull(g);
    enum { COLS = 2000, ROWS = 12000 }; /* ~24 MB of "0," */
    static char row[COLS * 2 + 16];
    char *q = row;
    for (int j = 0; j < COLS; j++) q += sprintf(q, j ? ",0" : "0");
    *q++ = '\n';
    int64_t raw = 0;
    for (int i = 0; i < ROWS; i++) {
        ck_assert_int_eq(gzwrite(g, row, (unsigned)(q - row)), (int)(q - row));
        raw += q - row;
    }
    gzclose(g);
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    int64_t packed = ftell(f);
    fclose(f);
    /* the ratio at which raw bytes exactly fill the budget */
    double edge = (double)(raw - (16LL << 20)) / (double)packed;
    ck_assert_msg(edge > 100, "test file compresses only %.1f:1", edge);
    sx_io_limits lim = {.max_inflate_ratio = edge * 1.01};
    expect_read(p, &lim, COLS, ROWS);
    lim.max_inflate_ratio = edge * 0.99;
    expect_refused(p, &lim, SX_ELIMIT, inflate_words);
    expect_refused(p, NULL, SX_ELIMIT, inflate_words); /* default 100 */
}
END_TEST

START_TEST(limits_by_name)
{
    sx_io_limits l;
    sx_io_limits_default(&l);
    sx_status st = {0};
    ck_assert_int_eq(sx_io_limits_set(&l, "max-cells", "5000000", &st), SX_OK);
    ck_assert_int_eq(l.max_cells, 5000000);
    ck_assert_int_eq(sx_io_limits_set(&l, "max_inflate_ratio", "250.5", &st), SX_OK);
    ck_assert(l.max_inflate_ratio == 250.5);
    ck_assert_int_eq(sx_io_limits_set(&l, "max_genes", "-3", &st), SX_EINVAL);
    ck_assert_int_eq(sx_io_limits_set(&l, "max_nnz", "1.5", &st), SX_EINVAL);
    ck_assert_int_eq(sx_io_limits_set(&l, "max_bananas", "1", &st), SX_EINVAL);
}
END_TEST

int main(void)
{
    sx_log_set_sink(NULL, NULL, SX_LOG_ERROR);
    Suite *s = suite_create("io_limits");
    TCase *tc = tcase_create("limits");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, mtx_5e6_dims_refused);
    tcase_add_test(tc, mtx_int32_max_dims_refused);
    tcase_add_test(tc, gzip_line_of_commas_refused);
    tcase_add_test(tc, h5ad_20M_rows_refused);
    tcase_add_test(tc, h5ad_edge);
    tcase_add_test(tc, tenx_h5_edge);
    tcase_add_test(tc, mtx_folder_edge);
    tcase_add_test(tc, text_edge);
    tcase_add_test(tc, gzip_inflate_edge);
    tcase_add_test(tc, limits_by_name);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
