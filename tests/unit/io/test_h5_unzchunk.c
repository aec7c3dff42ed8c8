/* h5x_read_slab1_mt: ranges of deflated datasets inflated on threads are byte for byte what
 * libhdf5's own filter pipeline (H5Dread) gives, for deflate and shuffle + deflate, float32,
 * int32, int64 read as int32 (saturating as libhdf5 does) and int32 / int64 counts read as
 * float32 (rounded as libhdf5 does), ranges starting and ending
 * inside chunks, across many chunks, in the padded edge chunk, at 1 to 4 threads; layouts
 * the path does not take (a chunk never written, fletcher32, contiguous) give libhdf5's
 * answer; a damaged chunk is an error either way, never a crash. */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sx_h5x.h"
#include "sx_test.h"

enum { N = 100003, CHUNK = 4096 };

static char path[64];

/* A 1-D dataset of n values of file type ft from buf (memory type mt). */
static void put(hid_t f, const char *name, hid_t ft, hid_t mt, const void *buf, hsize_t n,
                int shuffle, int deflate, int fletcher, int chunked)
{
    hid_t sp = H5Screate_simple(1, &n, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t c = CHUNK;
    if (chunked) H5Pset_chunk(pl, 1, &c);
    if (shuffle) H5Pset_shuffle(pl);
    if (deflate) H5Pset_deflate(pl, 4);
    if (fletcher) H5Pset_fletcher32(pl);
    hid_t d = H5Dcreate2(f, name, ft, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    ck_assert(d >= 0);
    if (buf) ck_assert(H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Dclose(d);
    H5Pclose(pl);
    H5Sclose(sp);
}

static void make_file(void)
{
    snprintf(path, sizeof path, "/tmp/sx_unz_%d.h5", (int)getpid());
    float *fv = malloc(N * sizeof *fv);
    int32_t *iv = malloc(N * sizeof *iv);
    int64_t *lv = malloc(N * sizeof *lv);
    uint64_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        /* count-like values: runs of zeros and small integers, some noise */
        fv[i] = (x >> 60) < 6 ? 0.0f : (float)((x >> 33) % 50) + (float)(x >> 40) * 1e-9f;
        /* gene indices, and now and then a value float32 must round (> 2^24) */
        iv[i] = (x >> 61) == 0 ? (int32_t)(x >> 34) - (1 << 29) : (int32_t)((x >> 20) % 20000);
        lv[i] = (x >> 58) == 0 ? (int64_t)5e9 : (x >> 58) == 1 ? -(int64_t)5e9 : (int64_t)(x % 30000);
    }
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(f >= 0);
    put(f, "f_sd", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, fv, N, 1, 1, 0, 1);
    put(f, "f_d", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, fv, N, 0, 1, 0, 1);
    put(f, "i_sd", H5T_STD_I32LE, H5T_NATIVE_INT32, iv, N, 1, 1, 0, 1);
    put(f, "l_sd", H5T_STD_I64LE, H5T_NATIVE_INT64, lv, N, 1, 1, 0, 1);
    put(f, "f_fl", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, fv, N, 1, 1, 1, 1);
    put(f, "f_plain", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, fv, N, 0, 0, 0, 0);
    /* only the first chunk written: the rest are unallocated (fill value 0) */
    put(f, "f_sparse", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, NULL, N, 1, 1, 0, 1);
    hid_t d = H5Dopen2(f, "f_sparse", H5P_DEFAULT);
    hsize_t o = 0, n = CHUNK;
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, &n, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &o, NULL, &n, NULL);
    ck_assert(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, fv) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    /* chunk 3 replaced by bytes that are no deflate stream */
    put(f, "f_bad", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, fv, N, 1, 1, 0, 1);
    d = H5Dopen2(f, "f_bad", H5P_DEFAULT);
    unsigned char junk[100];
    for (int i = 0; i < 100; i++) junk[i] = (unsigned char)(i * 37 + 11);
    hsize_t co = 3 * CHUNK;
    ck_assert(H5Dwrite_chunk(d, H5P_DEFAULT, 0, &co, sizeof junk, junk) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    free(fv);
    free(iv);
    free(lv);
}

/* [off, off + cnt) of dataset name as mt: ours at `threads` against H5Dread's; taken: whether
 * the threaded path must read it itself (1), must leave it to libhdf5 (0), either (-1). */
static void same(hid_t f, const char *name, hid_t mt, int64_t off, int64_t cnt, int threads,
                 int taken)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    ck_assert(d >= 0);
    size_t es = H5Tget_size(mt);
    unsigned char *a = malloc((size_t)cnt * es + 1), *b = malloc((size_t)cnt * es + 1);
    memset(a, 0xA5, (size_t)cnt * es);
    memset(b, 0x5A, (size_t)cnt * es);
    int ra = h5x_read_slab1_mt(d, mt, off, cnt, a, threads);
    int rb = h5x_read_slab1(d, mt, off, cnt, b);
    if (taken >= 0) {
        int ru = h5x_unz_read(d, mt, off, cnt, a, threads);
        ck_assert_msg(taken ? ru != 1 : ru == 1, "%s as %d-byte values: threaded path %s",
                      name, (int)es, taken ? "not taken" : "taken");
    }
    ck_assert_msg(ra == rb, "%s [%lld, +%lld) %d threads: %d vs libhdf5 %d", name,
                  (long long)off, (long long)cnt, threads, ra, rb);
    if (ra == 0)
        ck_assert_msg(!memcmp(a, b, (size_t)cnt * es), "%s [%lld, +%lld) %d threads differs",
                      name, (long long)off, (long long)cnt, threads);
    free(a);
    free(b);
    H5Dclose(d);
}

START_TEST(ranges_equal_libhdf5)
{
    make_file();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    const int64_t R[][2] = {{0, N},          {0, 1},           {17, 5},
                            {CHUNK - 3, 7},  {CHUNK, CHUNK},   {1000, 50000},
                            {N - 1, 1},      {N - 5000, 5000}, {CHUNK * 24 + 9, N - CHUNK * 24 - 9}};
    const struct {
        const char *name;
        hid_t mt;
        int taken;
    } D[] = {{"f_sd", H5T_NATIVE_FLOAT, 1},    {"f_d", H5T_NATIVE_FLOAT, 1},
             {"i_sd", H5T_NATIVE_INT32, 1},    {"l_sd", H5T_NATIVE_INT32, 1},
             {"l_sd", H5T_NATIVE_INT64, 1},    {"f_fl", H5T_NATIVE_FLOAT, 0},
             {"f_plain", H5T_NATIVE_FLOAT, 0}, {"f_sparse", H5T_NATIVE_FLOAT, -1},
             {"i_sd", H5T_NATIVE_FLOAT, 1},    {"l_sd", H5T_NATIVE_FLOAT, 1},
             {"i_sd", H5T_NATIVE_DOUBLE, 0}};
    for (size_t i = 0; i < sizeof D / sizeof *D; i++)
        for (size_t r = 0; r < sizeof R / sizeof *R; r++)
            for (int t = 1; t <= 4; t++)
                same(f, D[i].name, D[i].mt, R[r][0], R[r][1], t, D[i].taken);
    /* the first chunk of f_sparse is written: read by the threaded path */
    same(f, "f_sparse", H5T_NATIVE_FLOAT, 10, CHUNK - 20, 2, 1);
    H5Fclose(f);
    unlink(path);
}
END_TEST

START_TEST(damaged_chunk_is_an_error)
{
    make_file();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "f_bad", H5P_DEFAULT);
    float *v = malloc(N * sizeof *v);
    for (int t = 1; t <= 3; t++) {
        ck_assert_int_eq(h5x_read_slab1_mt(d, H5T_NATIVE_FLOAT, 0, N, v, t), -1);
        /* chunks before the damaged one still read */
        ck_assert_int_eq(h5x_read_slab1_mt(d, H5T_NATIVE_FLOAT, 0, 3 * CHUNK, v, t), 0);
    }
    same(f, "f_bad", H5T_NATIVE_FLOAT, 0, 3 * CHUNK, 2, 1);
    free(v);
    H5Dclose(d);
    H5Fclose(f);
    unlink(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("h5_unzchunk");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ranges_equal_libhdf5);
    tcase_add_test(tc, damaged_chunk_is_an_error);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
