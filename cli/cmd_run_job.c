/* scalex run-job JOBDIR — run one job directory, as a cluster executor does (sbatch of the
 * CLI on a shared filesystem). Reads JOBDIR/job.json:
 *   {"type": "integrate"|"project"|"label_transfer", "inputs": ["file", ...],
 *    "reference": "path" | null, "options": {"name": value, ...}, "threads": n}
 * (option values: strings, numbers, booleans, or arrays of strings for list options), writes
 * the results into JOBDIR, keeps JOBDIR/status.json ({"state", "exit_code", "error"}) and
 * JOBDIR/progress.json ({"stage", "fraction", "message"}) current, and stops with state
 * "canceled" when a file JOBDIR/cancel appears. Exit code as the other commands.
 * Every file of the job directory is read and written by sx_jobdir.
 *
 * `scalex run-job --wait-stdin` is the pre-started form a daemon keeps ready (daemon/sandbox.c):
 * exec, dynamic loading and the libraries' start-up (OpenBLAS's thread pool, HDF5) are done
 * before any job exists; the process then blocks reading one line, the job directory, from
 * stdin, and runs that one job as above. EOF without a line means it was dismissed (exit 0).
 * It ends with _exit as soon as its final status.json is written.
 *
 * SX_RUNJOB_TIMING=1 (stderr) or =FILE (appended) prints a line per phase with CLOCK_MONOTONIC
 * stamps (bench/bench_isolation.sh). */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd_pipeline.h"
#include "sx_alloc.h"
#include "sx_cli.h"
#include "sx_jobdir.h"
#include "sx_log.h"

/* ---- status / progress files ---- */

typedef struct rj {
    const char *dir;
    atomic_int cancel;
    double last;
    sx_cli_progress cli;
    int timing_fd;        /* SX_RUNJOB_TIMING's file (or stderr), -1: not timed */
    char stage[32];       /* the last stage timed */
} rj;

static void status_file(const char *dir, const char *state, int exit_code, int code,
                        const char *msg)
{
    sx_status st;
    if (sx_jobdir_status_write(dir, state, exit_code, code, msg, &st))
        fprintf(stderr, "scalex run-job: %s\n", st.msg);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* SX_RUNJOB_TIMING=1 (stderr) or =FILE (appended): one line per phase of the job, with
 * CLOCK_MONOTONIC seconds, which is system-wide: the daemon's lines (daemon/sandbox.c) in the
 * same file line up with these (bench/bench_isolation.sh). A diagnostic, off by default. */
static int timing_open(void)
{
    const char *t = getenv("SX_RUNJOB_TIMING");
    if (!t || !t[0] || !strcmp(t, "0")) return -1;
    if (!strcmp(t, "1")) return 2;
    return open(t, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static void timing_mark(int fd, const char *what)
{
    if (fd < 0) return;
    char line[160];
    int n = snprintf(line, sizeof line, "run-job %d %.6f %s\n", (int)getpid(), now_s(), what);
    if (n <= 0) return;
    ssize_t w = write(fd, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
    (void)w; /* a diagnostic: a failed write changes nothing */
}

static void rj_log_sink(void *user, int level, const char *msg)
{
    rj *r = user;
    char what[140];
    snprintf(what, sizeof what, "log: %.120s", msg);
    timing_mark(r->timing_fd, what);
    sx_cli_log_sink(&r->cli, level, msg);
}

static void rj_progress(void *user, const char *stage, double frac, const char *msg)
{
    rj *r = user;
    if (r->timing_fd >= 0 && stage && strncmp(r->stage, stage, sizeof r->stage - 1)) {
        snprintf(r->stage, sizeof r->stage, "%s", stage);
        char what[64];
        snprintf(what, sizeof what, "stage %s", r->stage);
        timing_mark(r->timing_fd, what);
    }
    sx_cli_progress_fn(&r->cli, stage, frac, msg);
    double t = now_s();
    if (t - r->last < 1.0 && frac != 0) return;
    r->last = t;
    sx_jobdir_progress_write(r->dir, stage, frac, msg, NULL); /* best effort: progress only */
    if (sx_jobdir_cancel_requested(r->dir)) atomic_store(&r->cancel, 1);
}

/* --wait-stdin: the job directory, one line on stdin, into buf; 0 when none came (EOF). */
static int wait_jobdir(char *buf, size_t cap)
{
    /* what a pre-start saves is done by now: loading, OpenBLAS's start-up (at load) and
     * HDF5's (main's sx_h5_quiet) */
    if (!fgets(buf, (int)cap, stdin)) return 0;
    buf[strcspn(buf, "\n")] = 0;
    return buf[0] != 0;
}

SX_CMD(run_job)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        FILE *to = argc < 2 ? stderr : stdout;
        fprintf(to, "usage: scalex run-job JOBDIR\n       scalex run-job --wait-stdin\n"
                    "Run the job described by JOBDIR/job.json (type, inputs, reference, "
                    "options, threads, limits); results, status.json and progress.json are "
                    "written into JOBDIR; create JOBDIR/cancel to stop it. --wait-stdin: start "
                    "up, then read JOBDIR as one line from stdin (a pre-started runner).\n");
        return argc < 2 ? 2 : 0;
    }
    char waited[4096];
    int tfd = timing_open();
    timing_mark(tfd, "ready");
    if (!strcmp(argv[1], "--wait-stdin") && !wait_jobdir(waited, sizeof waited)) return 0;
    timing_mark(tfd, "job received");
    const char *dir = !strcmp(argv[1], "--wait-stdin") ? waited : argv[1];
    sx_status st;
    sx_status_clear(&st);
    sx_jobdir_spec j;
    memset(&j, 0, sizeof j);
    sx_pipeline_opts *po = sx_pipeline_opts_new();
    int rc = SX_OK, exit_code;
    if (!po) {
        rc = sx_status_set(&st, SX_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = sx_jobdir_spec_read(dir, &j, &st)) != SX_OK) {
        if (rc == SX_EIO) {
            fprintf(stderr, "scalex run-job: cannot read %s/%s\n", dir, SX_JOBDIR_SPEC);
            sx_pipeline_opts_free(po);
            if (tfd > 2) close(tfd);
            return 3;
        }
        goto done;
    }
    timing_mark(tfd, "spec read");
    if ((rc = sx_pipeline_opts_from_json(po, j.options, &st)) != SX_OK) goto done;
    sx_job_type type = sx_job_type_parse(j.type);
    if (!type) {
        rc = sx_status_set(&st, SX_EINVAL, "job.json: unknown type '%s' (integrate, project, "
                           "label_transfer)", j.type ? j.type : "(none)");
        goto done;
    }
    rj r;
    memset(&r, 0, sizeof r);
    r.dir = dir;
    r.timing_fd = tfd;
    atomic_init(&r.cancel, 0);
    sx_cli_progress_init(&r.cli);
    status_file(dir, "running", 0, SX_OK, NULL);
    timing_mark(tfd, "status running");
    sx_log_set_sink(rj_log_sink, &r, SX_LOG_INFO);
    sx_progress prog = {.fn = rj_progress, .user = &r, .cancel = &r.cancel};
    sx_job_spec js = {.type = type, .inputs = (const char *const *)j.inputs,
                      .n_inputs = j.n_inputs, .reference = j.reference, .outdir = dir,
                      .opts = po, .threads = j.threads, .limits = &j.limits,
                      .input_sha256 = (const char *const *)j.input_sha256};
    rc = sx_pipeline_run(&js, &prog, &st);
    sx_log_set_sink(NULL, NULL, SX_LOG_WARN);
    timing_mark(tfd, "pipeline done");
done:
    exit_code = sx_cli_exit_code(rc);
    status_file(dir, rc == SX_OK ? "succeeded" : rc == SX_ECANCELED ? "canceled" : "failed",
                exit_code, rc, st.msg);
    timing_mark(tfd, "status final");
    if (rc != SX_OK) fprintf(stderr, "scalex run-job: error (%s): %s\n", sx_errname(rc), st.msg);
    timing_mark(tfd, "exit");
    if (tfd > 2) close(tfd);
    /* A pre-started runner's job is over once status.json says so (every output is closed by
     * now): it ends at once, without freeing what the job built or the libraries' exit
     * handlers (HDF5's close, OpenBLAS's thread join), which its daemon would wait for. */
    if (dir == waited) {
        fflush(NULL);
        _exit(exit_code);
    }
    sx_jobdir_spec_clear(&j);
    sx_pipeline_opts_free(po);
    return exit_code;
}
