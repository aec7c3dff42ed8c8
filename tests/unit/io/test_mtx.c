/* sx_mtx_read: real 10x MatrixMarket folders checked entry by entry against scipy.io.mmread
 * (run at test time), plus small hand-made files for each rule and each failure. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "io_truth.h"
#include "sx_io.h"
#include "sx_log.h"

static void write_file(const char *path, const char *text)
{
    if (strlen(path) > 3 && strcmp(path + strlen(path) - 3, ".gz") == 0) {
        gzFile g = gzopen(path, "wb");
        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(gzputs(g, text), (int)strlen(text));
        gzclose(g);
        return;
    }
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static const char *tmpfile_in(const char *dir, const char *name)
{
    static char ring[8][1024];
    static int next;
    char *b = ring[next++ & 7];
    snprintf(b, 1024, "%s/%s", dir, name);
    return b;
}

/* Read and expect failure with code and a word in the message. */
static void expect_fail(const char *path, int code, const char *word)
{
    sx_status st = {0};
    sx_dataset *d = sx_mtx_read(path, NULL, NULL, &st);
    ck_assert_msg(d == NULL, "%s: read succeeded, expected '%s'", path, word);
    ck_assert_msg(st.code == code, "%s: code %d (%s), expected %d", path, st.code, st.msg, code);
    ck_assert_msg(strstr(st.msg, word), "%s: message '%s' lacks '%s'", path, st.msg, word);
}

static sx_dataset *read_ok(const char *path)
{
    sx_status st = {0};
    sx_dataset *d = sx_mtx_read(path, NULL, NULL, &st);
    ck_assert_msg(d, "%s: %s", path, st.msg);
    return d;
}

START_TEST(v3_folder_matches_scipy)
{
    const char *p = sx_test_shared("data/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix");
    io_truth t;
    truth_run(&t, "mtx", p, NULL);
    sx_dataset *d = read_ok(p);
    truth_check_dataset(&t, d, "v3 folder");
    truth_check_var_col(&t, d, "gene_ids");
    truth_check_var_col(&t, d, "feature_types");
    /* PROVENANCE.md: 1,107 cells x 507 genes, 23,866 non-zeros, integer counts */
    ck_assert_int_eq(d->X->n_rows, 1107);
    ck_assert_int_eq(d->X->n_cols, 507);
    ck_assert_int_eq(sx_csr_nnz(d->X), 23866);
    ck_assert_int_eq(d->x_was_int, 1);
    ck_assert_str_eq(d->obs->index[0], "AAACCCAAGGAGAGTA-1");
    truth_free(&t);
    sx_dataset_free(d);
}
END_TEST

START_TEST(v2_folder_matches_scipy)
{
    const char *p =
        sx_test_shared("data/tenx_pbmc_chr21_scanpy/1.2.0/filtered_gene_bc_matrices/hg19_chr21");
    io_truth t;
    truth_run(&t, "mtx", p, NULL);
    sx_dataset *d = read_ok(p);
    truth_check_dataset(&t, d, "v2 folder");
    truth_check_var_col(&t, d, "gene_ids");
    ck_assert_ptr_null(sx_frame_col(d->var, "feature_types"));
    ck_assert_int_eq(d->X->n_rows, 12);
    ck_assert_int_eq(d->X->n_cols, 343);
    truth_free(&t);
    sx_dataset_free(d);
}
END_TEST

START_TEST(query_folder_matches_scipy_and_h5ad)
{
    const char *p = sx_test_shared("data/pbmc_3tech_symphony/query_3pv1_mtx");
    io_truth t, h;
    truth_run(&t, "mtx", p, NULL);
    sx_dataset *d = read_ok(p);
    truth_check_dataset(&t, d, "query mtx");
    /* the same cells as the h5ad written by anndata (values and names) */
    truth_run(&h, "h5ad", sx_test_shared("data/pbmc_3tech_symphony/query_3pv1.h5ad"), NULL);
    truth_check_dataset(&h, d, "query mtx vs h5ad");
    truth_free(&t);
    truth_free(&h);
    sx_dataset_free(d);
}
END_TEST

START_TEST(bare_file_uses_companions_or_defaults)
{
    const char *dir =
        sx_test_shared("data/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix");
    char mpath[1024];
    snprintf(mpath, sizeof mpath, "%s/matrix.mtx.gz", dir);
    sx_dataset *a = read_ok(dir), *b = read_ok(mpath);
    same_dataset(a, b); /* matrix.mtx.gz next to its barcodes/features = the folder */
    /* alone in a folder: numbered names, same matrix */
    const char *tmp = sx_test_tmpdir();
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/counts.mtx.gz'", mpath, tmp);
    ck_assert_int_eq(system(cmd), 0);
    sx_dataset *c = read_ok(tmpfile_in(tmp, "counts.mtx.gz"));
    ck_assert_int_eq(sx_csr_nnz(c->X), sx_csr_nnz(a->X));
    ck_assert_mem_eq(c->X->data, a->X->data, (size_t)sx_csr_nnz(a->X) * 4);
    ck_assert_str_eq(c->obs->index[5], "5");
    ck_assert_str_eq(c->var->index[506], "506");
    /* a folder whose only matrix is counts.mtx.gz needs its barcodes */
    expect_fail(tmp, SX_EFORMAT, "barcodes");
    sx_dataset_free(a);
    sx_dataset_free(b);
    sx_dataset_free(c);
}
END_TEST

START_TEST(unsorted_duplicates_zeros)
{
    const char *dir = sx_test_tmpdir();
    /* 3 features x 2 barcodes; entries out of barcode order, one duplicate, one zero */
    write_file(tmpfile_in(dir, "s_matrix.mtx"),
               "%%MatrixMarket matrix coordinate real general\n"
               "% a comment\n"
               "3 2 6\n"
               "3 2 1.5\n"
               "1 1 2\n"
               "2 2 0\n"
               "1 2 4\n"
               "3 2 0.25\n"
               "2 1 -1\n");
    write_file(tmpfile_in(dir, "s_features.tsv"),
               "ENSG1\tGENE\tGene Expression\nENSG2\tGENE\tGene Expression\n"
               "ENSG3\tOTHER\tAntibody Capture\n");
    write_file(tmpfile_in(dir, "s_barcodes.tsv"), "AAA-1\nCCC-1\n");
    sx_log_set_sink(NULL, NULL, SX_LOG_ERROR); /* the negative value warns */
    sx_dataset *d = read_ok(dir);
    /* cells x genes: cell0 = {g0: 2, g1: -1}; cell1 = {g0: 4, g2: 1.75} (zero dropped) */
    ck_assert_int_eq(d->X->n_rows, 2);
    ck_assert_int_eq(d->X->n_cols, 3);
    ck_assert_int_eq(sx_csr_nnz(d->X), 4);
    const int64_t ip[] = {0, 2, 4};
    const int32_t ix[] = {0, 1, 0, 2};
    const float dv[] = {2, -1, 4, 1.75f};
    ck_assert_mem_eq(d->X->indptr, ip, sizeof ip);
    ck_assert_mem_eq(d->X->indices, ix, sizeof ix);
    ck_assert_mem_eq(d->X->data, dv, sizeof dv);
    ck_assert_int_eq(d->x_was_int, 0);
    ck_assert_str_eq(d->var->index[0], "GENE");
    ck_assert_str_eq(d->var->index[1], "GENE-1"); /* made unique */
    ck_assert_str_eq(d->var->index[2], "OTHER");
    ck_assert_str_eq(sx_frame_col(d->var, "feature_types")->str[2], "Antibody Capture");
    ck_assert_str_eq(sx_frame_col(d->var, "gene_ids")->str[1], "ENSG2");
    ck_assert_str_eq(d->obs->index[1], "CCC-1");
    sx_dataset_free(d);
}
END_TEST

START_TEST(pattern_and_array_fields)
{
    const char *dir = sx_test_tmpdir();
    write_file(tmpfile_in(dir, "p.mtx"),
               "%%MatrixMarket matrix coordinate pattern general\n2 3 3\n1 1\n2 3\n1 3\n");
    sx_dataset *d = read_ok(tmpfile_in(dir, "p.mtx"));
    const int64_t ip[] = {0, 1, 1, 3};
    const int32_t ix[] = {0, 0, 1};
    const float dv[] = {1, 1, 1};
    ck_assert_int_eq(d->X->n_rows, 3);
    ck_assert_mem_eq(d->X->indptr, ip, sizeof ip);
    ck_assert_mem_eq(d->X->indices, ix, sizeof ix);
    ck_assert_mem_eq(d->X->data, dv, sizeof dv);
    sx_dataset_free(d);
    /* array: column-major, 2 features x 2 barcodes -> cells x genes */
    write_file(tmpfile_in(dir, "a.mtx.gz"),
               "%%MatrixMarket matrix array integer general\n2 2\n5\n0\n0\n7\n");
    d = read_ok(tmpfile_in(dir, "a.mtx.gz"));
    const int64_t ip2[] = {0, 1, 2};
    const int32_t ix2[] = {0, 1};
    const float dv2[] = {5, 7};
    ck_assert_mem_eq(d->X->indptr, ip2, sizeof ip2);
    ck_assert_mem_eq(d->X->indices, ix2, sizeof ix2);
    ck_assert_mem_eq(d->X->data, dv2, sizeof dv2);
    ck_assert_int_eq(d->x_was_int, 1);
    sx_dataset_free(d);
}
END_TEST

START_TEST(huge_header_fails_fast)
{
    const char *dir = sx_test_tmpdir();
    const char *p = tmpfile_in(dir, "huge.mtx.gz");
    write_file(p, "%%MatrixMarket matrix coordinate integer general\n"
                  "30000 1000000 1000000000000\n1 1 1\n");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    expect_fail(p, SX_EFORMAT, "claims 1000000000000 entries");
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    ck_assert_msg(s < 1.0, "took %.2f s: the header must be rejected before allocating", s);
    const char *q = tmpfile_in(dir, "wide.mtx");
    write_file(q, "%%MatrixMarket matrix coordinate integer general\n"
                  "3000000000 10 1\n1 1 1\n");
    expect_fail(q, SX_ELIMIT, "exceeds");
}
END_TEST

START_TEST(malformed_files)
{
    const char *dir = sx_test_tmpdir();
    const char *hdr = "%%MatrixMarket matrix coordinate integer general\n";
    char buf[512];
    snprintf(buf, sizeof buf, "%s3 2 2\n1 1 1\n4 2 1\n", hdr);
    write_file(tmpfile_in(dir, "range.mtx"), buf);
    expect_fail(tmpfile_in(dir, "range.mtx"), SX_EFORMAT, "outside the 3 x 2 matrix");
    snprintf(buf, sizeof buf, "%s3 2 2\n1 0 1\n1 1 1\n", hdr);
    write_file(tmpfile_in(dir, "zero.mtx"), buf);
    expect_fail(tmpfile_in(dir, "zero.mtx"), SX_EFORMAT, "1-based");
    snprintf(buf, sizeof buf, "%s3 2 3\n1 1 1\n2 2 1\n", hdr);
    write_file(tmpfile_in(dir, "short.mtx"), buf);
    expect_fail(tmpfile_in(dir, "short.mtx"), SX_EFORMAT, "ends after 2 of the 3 entries");
    snprintf(buf, sizeof buf, "%s3 2 1\n1 1 1\n2 2 1\n", hdr);
    write_file(tmpfile_in(dir, "long.mtx"), buf);
    expect_fail(tmpfile_in(dir, "long.mtx"), SX_EFORMAT, "more entries than the 1");
    snprintf(buf, sizeof buf, "%s3 2 2\n1 1 nan\n2 2 1\n",
             "%%MatrixMarket matrix coordinate real general\n");
    write_file(tmpfile_in(dir, "nan.mtx"), buf);
    expect_fail(tmpfile_in(dir, "nan.mtx"), SX_EDATA, "NaN");
    /* with the values check skipped the NaN goes through */
    sx_read_opts o = {0};
    o.skip_values_check = 1;
    sx_status st = {0};
    sx_dataset *d = sx_mtx_read(tmpfile_in(dir, "nan.mtx"), &o, NULL, &st);
    ck_assert_msg(d, "%s", st.msg);
    sx_dataset_free(d);
    snprintf(buf, sizeof buf, "%s3 2 1\n1 1 x\n", hdr);
    write_file(tmpfile_in(dir, "word.mtx"), buf);
    expect_fail(tmpfile_in(dir, "word.mtx"), SX_EFORMAT, "malformed entry");
    write_file(tmpfile_in(dir, "sym.mtx"),
               "%%MatrixMarket matrix coordinate real symmetric\n2 2 1\n1 1 1\n");
    expect_fail(tmpfile_in(dir, "sym.mtx"), SX_EUNSUPPORTED, "symmetric");
    write_file(tmpfile_in(dir, "cplx.mtx"),
               "%%MatrixMarket matrix coordinate complex general\n2 2 1\n1 1 1 0\n");
    expect_fail(tmpfile_in(dir, "cplx.mtx"), SX_EUNSUPPORTED, "complex");
    write_file(tmpfile_in(dir, "text.mtx"), "hello\n");
    expect_fail(tmpfile_in(dir, "text.mtx"), SX_EFORMAT, "not a MatrixMarket file");
    snprintf(buf, sizeof buf, "%s3 2\n", hdr);
    write_file(tmpfile_in(dir, "size.mtx"), buf);
    expect_fail(tmpfile_in(dir, "size.mtx"), SX_EFORMAT, "bad size line");
    expect_fail(tmpfile_in(dir, "missing.mtx"), SX_EIO, "missing.mtx");
}
END_TEST

START_TEST(truncated_gzip)
{
    /* the real v3 matrix cut in half: zlib must report the early end */
    const char *src = sx_test_shared(
        "data/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix/matrix.mtx.gz");
    const char *dir = sx_test_tmpdir();
    const char *p = tmpfile_in(dir, "cut.mtx.gz");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "head -c 30000 '%s' > '%s'", src, p);
    ck_assert_int_eq(system(cmd), 0);
    expect_fail(p, SX_EFORMAT, "gzip stream ends early");
}
END_TEST

START_TEST(folder_mismatch_and_ambiguity)
{
    const char *dir = sx_test_tmpdir();
    write_file(tmpfile_in(dir, "matrix.mtx"),
               "%%MatrixMarket matrix coordinate integer general\n2 2 1\n1 1 3\n");
    write_file(tmpfile_in(dir, "genes.tsv"), "a\tA\nb\tB\n");
    write_file(tmpfile_in(dir, "barcodes.tsv"), "x\ny\nz\n");
    expect_fail(dir, SX_EFORMAT, "do not belong together");
    write_file(tmpfile_in(dir, "barcodes.tsv"), "x\ny\n");
    sx_dataset *d = read_ok(dir);
    ck_assert_str_eq(d->var->index[1], "B");
    sx_dataset_free(d);
    write_file(tmpfile_in(dir, "features.tsv.gz"), "a\tA\tGene Expression\nb\tB\tGene Expression\n");
    expect_fail(dir, SX_EFORMAT, "more than one of");
    const char *empty = sx_test_tmpdir();
    expect_fail(empty, SX_EFORMAT, "no matrix.mtx");
}
END_TEST

START_TEST(peaks_names)
{
    const char *dir = sx_test_tmpdir();
    write_file(tmpfile_in(dir, "matrix.mtx"),
               "%%MatrixMarket matrix coordinate integer general\n2 1 1\n2 1 3\n");
    write_file(tmpfile_in(dir, "peaks.bed"), "chr1\t100\t200\nchr2\t5\t50\n");
    write_file(tmpfile_in(dir, "barcodes.tsv"), "cellA\n");
    sx_dataset *d = read_ok(dir);
    ck_assert_str_eq(d->var->index[0], "chr1:100-200");
    ck_assert_str_eq(d->var->index[1], "chr2:5-50");
    ck_assert_int_eq(d->X->indices[0], 1);
    sx_dataset_free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io_mtx");
    TCase *tc = tcase_create("mtx");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, v3_folder_matches_scipy);
    tcase_add_test(tc, v2_folder_matches_scipy);
    tcase_add_test(tc, query_folder_matches_scipy_and_h5ad);
    tcase_add_test(tc, bare_file_uses_companions_or_defaults);
    tcase_add_test(tc, unsorted_duplicates_zeros);
    tcase_add_test(tc, pattern_and_array_fields);
    tcase_add_test(tc, huge_header_fails_fast);
    tcase_add_test(tc, malformed_files);
    tcase_add_test(tc, truncated_gzip);
    tcase_add_test(tc, folder_mismatch_and_ambiguity);
    tcase_add_test(tc, peaks_names);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
