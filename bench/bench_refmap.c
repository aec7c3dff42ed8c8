/* bench_refmap — the fixed cost a job pays for running in its own process (issue 14): starting
 * the job runner (`scalex`, fork + exec + dynamic loading) and opening the reference from its
 * flat read-only map, against opening it from reference.h5 (what a child would do without the
 * map) and against nothing (the in-process run borrowed the daemon's loaded copy). Printed
 * figures, never pass/fail.
 *
 * Usage: bench_refmap REFDIR [RUNS] [SCALEX_BIN]
 *   REFDIR: an integrate output folder (reference.h5); its reference.map is written when
 *   missing. SCALEX_BIN (default: `scalex` next to this program) is exec'd with --version.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sx_alloc.h"
#include "sx_pipeline.h"
#include "sx_pipeline_internal.h"

extern char **environ;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* median seconds of one sx_reference_load(path) */
static double time_load(const char *path, int runs, int *mapped)
{
    double *t = calloc((size_t)runs, sizeof *t);
    for (int i = 0; i < runs; i++) {
        sx_status st;
        double t0 = now_s();
        sx_reference *r = sx_reference_load(path, &st);
        t[i] = now_s() - t0;
        if (!r) {
            fprintf(stderr, "bench_refmap: %s\n", st.msg);
            exit(1);
        }
        *mapped = r->mapped != NULL;
        sx_reference_free(r);
    }
    double m = median(t, runs);
    free(t);
    return m;
}

/* median seconds of fork + exec + exit of `bin --version` */
static double time_spawn(const char *bin, int runs)
{
    double *t = calloc((size_t)runs, sizeof *t);
    for (int i = 0; i < runs; i++) {
        char *argv[] = {(char *)bin, "--version", NULL};
        pid_t pid;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0);
        double t0 = now_s();
        if (posix_spawn(&pid, bin, &fa, NULL, argv, environ) != 0) {
            fprintf(stderr, "bench_refmap: cannot run %s\n", bin);
            exit(1);
        }
        int status;
        waitpid(pid, &status, 0);
        t[i] = now_s() - t0;
        posix_spawn_file_actions_destroy(&fa);
    }
    double m = median(t, runs);
    free(t);
    return m;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_refmap REFDIR [RUNS] [SCALEX_BIN]\n");
        return 2;
    }
    const char *dir = argv[1];
    int runs = argc > 2 ? atoi(argv[2]) : 10;
    if (runs < 1) runs = 1;
    char bin[4096];
    if (argc > 3) snprintf(bin, sizeof bin, "%s", argv[3]);
    else {
        ssize_t n = readlink("/proc/self/exe", bin, sizeof bin - 16);
        bin[n > 0 ? n : 0] = 0;
        char *slash = strrchr(bin, '/');
        if (slash) strcpy(slash + 1, "scalex");
    }
    char *h5 = sx_pl_join(dir, "reference.h5");
    sx_status st;
    sx_reference *r = sx_reference_load(dir, &st);
    if (!r) {
        fprintf(stderr, "bench_refmap: %s\n", st.msg);
        return 1;
    }
    if (!r->mapped && sx_reference_map_write(r, dir, &st)) {
        fprintf(stderr, "bench_refmap: %s\n", st.msg);
        return 1;
    }
    long long cells = (long long)r->n_cells;
    sx_reference_free(r);
    int mapped_h5 = 0, mapped_map = 0;
    double t_h5 = time_load(h5, runs, &mapped_h5);     /* a file path: the HDF5 reader */
    double t_map = time_load(dir, runs, &mapped_map);  /* the folder: its map */
    double t_exec = time_spawn(bin, runs);
    double load = 0;
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf", &load) != 1) load = 0;
        fclose(la);
    }
    printf("reference: %lld cells; %d runs each, medians (load average %.2f)\n", cells, runs, load);
    printf("%-44s %10s\n", "what a job in its own process pays", "ms");
    printf("%-44s %10.1f\n", "start the runner (fork + exec + exit)", 1e3 * t_exec);
    printf("%-44s %10.1f%s\n", "open the reference from reference.map", 1e3 * t_map,
           mapped_map ? "" : "  (NOT mapped)");
    printf("%-44s %10.1f%s\n", "  (from reference.h5 instead)", 1e3 * t_h5,
           mapped_h5 ? "  (unexpectedly mapped)" : "");
    printf("per-job overhead of process isolation: %.1f ms (runner + map); the map saves %.1f ms "
           "(%.1fx) against reading reference.h5\n", 1e3 * (t_exec + t_map), 1e3 * (t_h5 - t_map),
           t_map > 0 ? t_h5 / t_map : 0.0);
    sx_free(h5);
    return 0;
}
