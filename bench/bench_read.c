/* bench_read — write a large sparse .h5ad with sx_h5ad_write, read it back with
 * sx_h5ad_read; print write/read throughput, peak RSS of the reading process and its ratio
 * to the in-memory CSR size (target <= 1.3x).
 *
 * usage: bench_read [ROWS [COLS [DENSITY [GZIP_LEVEL [PATH]]]]]
 *        defaults 1000000 2000 0.10 0 /tmp/bench_read.h5ad
 * The read runs in a fresh process (re-exec of this binary) so its peak RSS is not
 * inflated by the generator's copy of the matrix.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sx_alloc.h"
#include "sx_io.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int do_read(const char *path)
{
    int64_t base = sx_current_rss();
    sx_status st = {0};
    double t0 = now();
    sx_dataset *d = sx_h5ad_read(path, NULL, NULL, &st);
    double dt = now() - t0;
    if (!d) {
        fprintf(stderr, "read failed: %s\n", st.msg);
        return 1;
    }
    int64_t nnz = sx_csr_nnz(d->X);
    double csr = (double)nnz * 8.0 + (double)(d->X->n_rows + 1) * 8.0;
    struct stat sb;
    stat(path, &sb);
    int64_t peak = sx_peak_rss();
    printf("read:  %lld x %lld, nnz %lld in %.2f s: %.0f MB/s of CSR (%.0f MB/s of file)\n",
           (long long)d->X->n_rows, (long long)d->X->n_cols, (long long)nnz, dt, csr / dt / 1e6,
           (double)sb.st_size / dt / 1e6);
    printf("memory: CSR %.1f MB, peak RSS %.1f MB (baseline before read %.1f MB), "
           "peak/CSR %.3f, (peak-baseline)/CSR %.3f\n", csr / 1e6, (double)peak / 1e6,
           (double)base / 1e6, (double)peak / csr, (double)(peak - base) / csr);
    sx_dataset_free(d);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--read") == 0) return do_read(argv[2]);
    int64_t rows = argc > 1 ? atoll(argv[1]) : 1000000;
    int64_t cols = argc > 2 ? atoll(argv[2]) : 2000;
    double dens = argc > 3 ? atof(argv[3]) : 0.10;
    int gz = argc > 4 ? atoi(argv[4]) : 0;
    const char *path = argc > 5 ? argv[5] : "/tmp/bench_read.h5ad";
    int64_t per = (int64_t)((double)cols * dens);
    if (per < 1 || per > cols) per = 1;
    sx_status st = {0};
    sx_dataset *d = sx_dataset_new(rows, cols, &st);
    sx_csr *X = d ? sx_csr_new(rows, cols, rows * per, &st) : NULL;
    if (!X) {
        fprintf(stderr, "allocation failed: %s\n", st.msg);
        return 1;
    }
    /* per columns per row, evenly spaced with a random offset: sorted, unique */
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    double t0 = now();
    int64_t k = 0;
    int64_t stride = cols / per;
    for (int64_t i = 0; i < rows; i++) {
        int64_t off = (int64_t)(rng(&s) % (uint64_t)stride);
        for (int64_t j = 0; j < per; j++) {
            X->indices[k] = (int32_t)(j * stride + off);
            X->data[k++] = (float)(1 + rng(&s) % 16);
        }
        X->indptr[i + 1] = k;
    }
    d->X = X;
    printf("generate: %lld x %lld, nnz %lld (%.1f%% dense) in %.2f s\n", (long long)rows,
           (long long)cols, (long long)k, 100.0 * (double)per / (double)cols, now() - t0);
    sx_write_opts wo = {gz, gz > 0};
    t0 = now();
    if (sx_h5ad_write(path, d, &wo, &st) != SX_OK) {
        fprintf(stderr, "write failed: %s\n", st.msg);
        return 1;
    }
    double dt = now() - t0;
    struct stat sb;
    stat(path, &sb);
    double csr = (double)k * 8.0 + (double)(rows + 1) * 8.0;
    printf("write: %.2f s, %.0f MB/s of CSR, file %.1f MB (gzip level %d)\n", dt, csr / dt / 1e6,
           (double)sb.st_size / 1e6, gz);
    sx_dataset_free(d);
    fflush(stdout);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return do_read(path);
    self[n] = '\0';
    execl(self, self, "--read", path, (char *)NULL);
    perror("exec");
    return 1;
}
