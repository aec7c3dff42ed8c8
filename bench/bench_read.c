/* bench_read — write a large sparse .h5ad with sx_h5ad_write, read it back with
 * sx_h5ad_read; print write/read throughput, peak RSS of the reading process and its ratio
 * to the in-memory CSR size (target <= 1.3x).
 * The read is the second touch of the file, so it comes from page cache; its MB/s of CSR is
 * compared with the physical limit measured in the same process: one-thread memcpy of a
 * buffer the size of the CSR's arrays (target >= 1 GB/s, issue 15). Both are given per
 * wall second and per CPU second (user + system): on a shared machine the second is what
 * the code costs, the first what the load left of it.
 *
 * usage: bench_read [ROWS [COLS [DENSITY [GZIP_LEVEL [PATH]]]]]   (write, then read)
 *        bench_read --read PATH [N [THREADS]]  (N reads of PATH: any input format, e.g. a
 *                                         10x .h5 or mtx folder that bench/bench_read_formats.py
 *                                         wrote; THREADS inflate a gzip matrix's chunks)
 *        defaults 1000000 2000 0.10 0 /tmp/bench_read.h5ad
 * The read runs in a fresh process (re-exec of this binary) so its peak RSS is not
 * inflated by the generator's copy of the matrix.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sx_alloc.h"
#include "sx_io.h"
#include "sx_io_internal.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* One-thread memcpy rates over `bytes`, per wall second and per CPU second, best of 3:
 * warm[] into a buffer already touched (the memory's bandwidth), fresh[] into memory just
 * allocated (what producing a new array of that size costs at least: the kernel zeroes
 * every new page first (huge pages, as the readers ask), and on a virtual machine the host may fault it in too; a reader's
 * output is always new memory). Run after the read's matrix is freed, so these buffers do
 * not raise the read's peak RSS. */
static void memcpy_rate(size_t bytes, double warm[2], double fresh[2])
{
    warm[0] = warm[1] = fresh[0] = fresh[1] = 0;
    char *a = malloc(bytes);
    if (!a) return;
    memset(a, 1, bytes);
    for (int pass = 0; pass < 6; pass++) {
        int is_fresh = pass >= 3;
        char *b = malloc(bytes);
        if (!b) break;
        sx_io_advise_huge(b, bytes); /* as the readers do */
        if (!is_fresh) memset(b, 2, bytes);
        double t0 = now(), c0 = cpu_now();
        memcpy(b, a, bytes);
        double dt = now() - t0, dc = cpu_now() - c0;
        double *r = is_fresh ? fresh : warm;
        if (dt > 0 && (double)bytes / dt > r[0]) r[0] = (double)bytes / dt;
        if (dc > 0 && (double)bytes / dc > r[1]) r[1] = (double)bytes / dc;
        a[pass] = b[bytes - 1 - (size_t)pass]; /* keep the copy observable */
        free(b);
    }
    free(a);
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int do_read(const char *path, int threads)
{
    int64_t base = sx_current_rss();
    sx_status st = {0};
    double t0 = now(), c0 = cpu_now();
    /* any format: h5ad, 10x .h5, mtx; threads inflate a compressed matrix's chunks */
    sx_dataset *d = sx_io_read(path, &(sx_read_opts){.threads = threads}, NULL, &st);
    double dt = now() - t0, dc = cpu_now() - c0;
    if (!d) {
        fprintf(stderr, "read failed: %s\n", st.msg);
        return 1;
    }
    int64_t nnz = sx_csr_nnz(d->X);
    double csr = (double)nnz * 8.0 + (double)(d->X->n_rows + 1) * 8.0;
    struct stat sb;
    stat(path, &sb);
    int64_t peak = sx_peak_rss();
    printf("read (%d thread%s):  %lld x %lld, nnz %lld in %.2f s wall, %.2f s CPU: %.0f MB/s of CSR per wall "
           "second, %.0f per CPU second (%.0f MB/s of file)\n", threads, threads == 1 ? "" : "s",
           (long long)d->X->n_rows,
           (long long)d->X->n_cols, (long long)nnz, dt, dc, csr / dt / 1e6,
           dc > 0 ? csr / dc / 1e6 : 0.0, (double)sb.st_size / dt / 1e6);
    printf("memory: CSR %.1f MB, peak RSS %.1f MB (baseline before read %.1f MB), "
           "peak/CSR %.3f, (peak-baseline)/CSR %.3f\n", csr / 1e6, (double)peak / 1e6,
           (double)base / 1e6, (double)peak / csr, (double)(peak - base) / csr);
    sx_dataset_free(d);
    double warm[2], fresh[2];
    memcpy_rate((size_t)csr, warm, fresh);
    double rw = csr / dt, rc = dc > 0 ? csr / dc : 0;
    printf("limit: one-thread memcpy into touched memory %.0f MB/s per wall second, %.0f per "
           "CPU second; into fresh memory %.0f and %.0f\n", warm[0] / 1e6, warm[1] / 1e6,
           fresh[0] / 1e6, fresh[1] / 1e6);
    if (warm[0] > 0 && warm[1] > 0 && fresh[0] > 0 && fresh[1] > 0)
        printf("ratio: the read is %.2f x (wall) and %.2f x (CPU) of memcpy into touched memory, "
               "%.2f x and %.2f x of memcpy into fresh memory\n", rw / warm[0], rc / warm[1],
               rw / fresh[0], rc / fresh[1]);
    return 0;
}

int main(int argc, char **argv)
{
    /* --read PATH [N [THREADS]]: N reads in this process; the second and later ones get
     * memory the first freed (on a virtual machine the host has backed it already: the
     * steady state of a daemon that reads one input after another); THREADS (default 1)
     * inflate a gzip matrix's chunks */
    if (argc >= 3 && argc <= 5 && strcmp(argv[1], "--read") == 0) {
        int reps = argc >= 4 ? atoi(argv[3]) : 1, rc = 0, threads = argc == 5 ? atoi(argv[4]) : 1;
        for (int i = 0; i < reps && rc == 0; i++) rc = do_read(argv[2], threads);
        return rc;
    }
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
    sx_write_opts wo = {.compress = gz, .gzip = gz > 0};
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
    if (n <= 0) return do_read(path, 1);
    self[n] = '\0';
    execl(self, self, "--read", path, (char *)NULL);
    perror("exec");
    return 1;
}
