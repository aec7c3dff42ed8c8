/* sx_tenx_h5_read: genuine Cell Ranger v3 / v2 .h5 files checked against h5py (run at test
 * time) and against the MatrixMarket folders of the same runs; corrupt copies made with
 * h5py must fail with a message naming the problem. */
#include <stdio.h>
#include <string.h>

#include "io_truth.h"
#include "sx_io.h"

#define V3_H5 "data/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix.h5"
#define V3_DIR "data/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix"
#define V2_H5 "data/tenx_pbmc_chr21_scanpy/1.2.0/filtered_gene_bc_matrices_h5.h5"
#define V2_DIR "data/tenx_pbmc_chr21_scanpy/1.2.0/filtered_gene_bc_matrices/hg19_chr21"
#define MULTI_H5 "data/tenx_pbmc_chr21_scanpy/1.2.0/multiple_genomes.h5"

static sx_dataset *read_h5(const char *path, const char *genome)
{
    sx_read_opts o = {0};
    o.genome = genome;
    sx_status st = {0};
    sx_dataset *d = sx_tenx_h5_read(path, &o, NULL, &st);
    ck_assert_msg(d, "%s: %s", path, st.msg);
    return d;
}

static void expect_fail(const char *path, const char *genome, int code, const char *word)
{
    sx_read_opts o = {0};
    o.genome = genome;
    sx_status st = {0};
    sx_dataset *d = sx_tenx_h5_read(path, &o, NULL, &st);
    ck_assert_msg(!d, "%s: read succeeded, expected '%s'", path, word);
    ck_assert_msg(st.code == code, "%s: code %d (%s), expected %d", path, st.code, st.msg, code);
    ck_assert_msg(strstr(st.msg, word), "%s: message '%s' lacks '%s'", path, st.msg, word);
}

static void same_string_col(const sx_dataset *a, const sx_dataset *b, const char *name)
{
    const sx_column *x = sx_frame_col(a->var, name), *y = sx_frame_col(b->var, name);
    ck_assert_msg(x && y, "column %s missing", name);
    int64_t bad = -1;
    for (int64_t j = 0; j < a->var->n_rows && bad < 0; j++)
        if (strcmp(x->str[j], y->str[j]) != 0) bad = j;
    ck_assert_msg(bad < 0, "column %s differs at %lld", name, (long long)bad);
}

START_TEST(v3_matches_h5py_and_folder)
{
    const char *p = sx_test_shared(V3_H5);
    io_truth t;
    truth_run(&t, "h5", p, NULL);
    sx_dataset *d = read_h5(p, NULL);
    truth_check_dataset(&t, d, "v3 h5");
    truth_check_var_col(&t, d, "gene_ids");
    truth_check_var_col(&t, d, "feature_types");
    truth_check_var_col(&t, d, "genome");
    ck_assert_int_eq(d->x_was_int, 1);
    sx_status st = {0};
    sx_dataset *m = sx_mtx_read(sx_test_shared(V3_DIR), NULL, NULL, &st);
    ck_assert_msg(m, "%s", st.msg);
    same_dataset(d, m); /* the two Cell Ranger outputs of one run agree exactly */
    same_string_col(d, m, "gene_ids");
    same_string_col(d, m, "feature_types");
    /* genome filter: the only genome keeps everything, another keeps nothing */
    sx_dataset *g = read_h5(p, "GRCh38_chr21");
    same_dataset(d, g);
    expect_fail(p, "mm10", SX_ENOTFOUND, "no features of genome 'mm10'");
    truth_free(&t);
    sx_dataset_free(d);
    sx_dataset_free(m);
    sx_dataset_free(g);
}
END_TEST

START_TEST(v2_matches_h5py_and_folder)
{
    const char *p = sx_test_shared(V2_H5);
    io_truth t;
    truth_run(&t, "h5", p, NULL);
    sx_dataset *d = read_h5(p, NULL);
    truth_check_dataset(&t, d, "v2 h5");
    truth_check_var_col(&t, d, "gene_ids");
    ck_assert_ptr_null(sx_frame_col(d->var, "genome")); /* one genome: no tag column */
    sx_status st = {0};
    sx_dataset *m = sx_mtx_read(sx_test_shared(V2_DIR), NULL, NULL, &st);
    ck_assert_msg(m, "%s", st.msg);
    same_dataset(d, m);
    same_string_col(d, m, "gene_ids");
    truth_free(&t);
    sx_dataset_free(d);
    sx_dataset_free(m);
}
END_TEST

START_TEST(two_genomes)
{
    const char *p = sx_test_shared(MULTI_H5);
    io_truth t;
    /* each genome alone */
    sx_dataset *hg = read_h5(p, "hg19_chr21");
    sx_dataset *single = read_h5(sx_test_shared(V2_H5), NULL);
    same_dataset(hg, single);
    truth_run(&t, "h5", p, "another_genome");
    sx_dataset *an = read_h5(p, "another_genome");
    truth_check_dataset(&t, an, "another_genome");
    truth_free(&t);
    /* both, side by side, tagged with their genome */
    truth_run(&t, "h5", p, NULL);
    sx_dataset *all = read_h5(p, NULL);
    truth_check_dataset(&t, all, "all genomes");
    truth_check_var_col(&t, all, "genome");
    truth_check_var_col(&t, all, "gene_ids");
    ck_assert_int_eq(sx_dataset_n_vars(all), 686);
    ck_assert_int_eq(sx_csr_nnz(all->X), sx_csr_nnz(hg->X) + sx_csr_nnz(an->X));
    expect_fail(p, "mm10", SX_ENOTFOUND, "available: another_genome, hg19_chr21");
    truth_free(&t);
    sx_dataset_free(hg);
    sx_dataset_free(an);
    sx_dataset_free(all);
    sx_dataset_free(single);
}
END_TEST

/* Copy the v3 file and damage it with h5py. */
static const char *damaged(const char *dir, const char *name, const char *py_edit)
{
    static char out[1024];
    snprintf(out, sizeof out, "%s/%s", dir, name);
    const char *py = getenv("SX_PYTHON");
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cp '%s' '%s' && chmod u+w '%s' && '%s' -c \"import h5py, numpy as np\n"
             "f = h5py.File('%s', 'r+')\n%s\nf.close()\"",
             sx_test_shared(V3_H5), out, out, py && *py ? py : "/usr/bin/python3", out, py_edit);
    ck_assert_msg(system(cmd) == 0, "could not make %s", name);
    return out;
}

START_TEST(corrupt_files)
{
    const char *dir = sx_test_tmpdir();
    expect_fail(damaged(dir, "noindptr.h5", "del f['matrix/indptr']"), NULL, SX_EFORMAT,
                "matrix/indptr is missing");
    expect_fail(damaged(dir, "nofeat.h5", "del f['matrix/features/name']"), NULL, SX_EFORMAT,
                "matrix/features/name is missing");
    expect_fail(damaged(dir, "range.h5",
                        "d = f['matrix/indices'][:]; d[7] = 9999; del f['matrix/indices']; "
                        "f['matrix/indices'] = d"),
                NULL, SX_EFORMAT, "indices[7] = 9999 is outside");
    expect_fail(damaged(dir, "decr.h5",
                        "d = f['matrix/indptr'][:]; d[5] = d[6] + 3; del f['matrix/indptr']; "
                        "f['matrix/indptr'] = d"),
                NULL, SX_EFORMAT, "indptr decreases");
    expect_fail(damaged(dir, "shape.h5",
                        "del f['matrix/shape']; f['matrix/shape'] = np.array([507, 2000], "
                        "dtype='int32')"),
                NULL, SX_EFORMAT, "barcodes has 1107 entries, expected 2000");
    /* LZF (h5py's filter) reads as the original; blosc (no decoder here) is refused */
    sx_dataset *lzf = read_h5(damaged(dir, "lzf.h5",
                                      "d = f['matrix/data'][:]; del f['matrix/data']; "
                                      "f.create_dataset('matrix/data', data=d, compression='lzf')"),
                              NULL);
    sx_dataset *orig = read_h5(sx_test_shared(V3_H5), NULL);
    same_dataset(orig, lzf);
    sx_dataset_free(orig);
    sx_dataset_free(lzf);
    expect_fail(damaged(dir, "blosc.h5",
                        "d = f['matrix/data'][:]; del f['matrix/data']\n"
                        "pl = h5py.h5p.create(h5py.h5p.DATASET_CREATE); pl.set_chunk((4096,))\n"
                        "pl.set_filter(32001, h5py.h5z.FLAG_OPTIONAL, (0, 0, 0, 0))\n"
                        "ds = h5py.h5d.create(f['matrix'].id, b'data', h5py.h5t.STD_I32LE, "
                        "h5py.h5s.create_simple((len(d),)), dcpl=pl)\n"
                        "ds.write(h5py.h5s.ALL, h5py.h5s.ALL, d.astype('int32'))"),
                NULL, SX_EUNSUPPORTED, "'matrix/data' uses HDF5 filter 32001 (blosc) which "
                "this build cannot decode; re-save the file with gzip compression (h5repack");
    expect_fail(damaged(dir, "nan.h5",
                        "d = f['matrix/data'][:].astype('float32'); d[3] = np.nan; "
                        "del f['matrix/data']; f['matrix/data'] = d"),
                NULL, SX_EDATA, "NaN");
    expect_fail(damaged(dir, "empty.h5", "del f['matrix']; f.create_group('nothing')"), NULL,
                SX_EFORMAT, "nothing/shape is missing");
    char p[1024];
    snprintf(p, sizeof p, "%s/plain.h5", dir);
    FILE *fp = fopen(p, "w");
    fputs("not hdf5\n", fp);
    fclose(fp);
    expect_fail(p, NULL, SX_EFORMAT, "not an HDF5 file");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io_tenx_h5");
    TCase *tc = tcase_create("tenx_h5");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, v3_matches_h5py_and_folder);
    tcase_add_test(tc, v2_matches_h5py_and_folder);
    tcase_add_test(tc, two_genomes);
    tcase_add_test(tc, corrupt_files);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
