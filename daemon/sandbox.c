/* sandbox — see sandbox.h. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "srv_exec.h"
#include "srv_util.h"
#include "sx_jobdir.h"
#include "sx_log.h"
#include "sx_pipeline.h"

/* The child's answer is small (a summary and the obs column list); a child that talks more
 * is cut off, and its answer refused. */
#define ANSWER_CAP (8u << 20)

static int answer_error(sx_status *st, const char *what)
{
    return sx_status_set(st, SX_EFORMAT,
                         "the file could not be read safely: %s. It may be corrupt or crafted; "
                         "re-save it with anndata (adata.write_h5ad) or scanpy and upload again",
                         what);
}

/* Parse the child's one JSON line into info / st. */
static int parse_answer(const char *text, srv_dataset_info *info, sx_status *st)
{
    json_error_t je;
    json_t *a = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(a)) {
        json_decref(a);
        return answer_error(st, "the reader gave no answer");
    }
    int rc = SX_OK;
    if (!json_is_true(json_object_get(a, "ok"))) {
        const char *code = json_string_value(json_object_get(a, "code"));
        const char *msg = json_string_value(json_object_get(a, "message"));
        int c = SX_EFORMAT;
        for (int k = SX_EINVAL; k >= SX_EINTERNAL; k--)
            if (code && !strcmp(code, sx_errname(k))) c = k;
        /* it may name the upload's staging path: the service scrubs that for every engine */
        rc = sx_status_set(st, c, "%s", msg ? msg : "the file was refused");
    } else {
        snprintf(info->format, sizeof info->format, "%s",
                 json_string_value(json_object_get(a, "format")) ?: "");
        snprintf(info->ext, sizeof info->ext, "%s",
                 json_string_value(json_object_get(a, "ext")) ?: "");
        info->n_obs = json_integer_value(json_object_get(a, "n_obs"));
        info->n_vars = json_integer_value(json_object_get(a, "n_vars"));
        json_t *cols = json_object_get(a, "obs_columns");
        info->obs_columns = json_is_array(cols) ? json_dumps(cols, JSON_COMPACT) : NULL;
        if (!info->format[0] || info->n_obs < 1 || info->n_vars < 1)
            rc = answer_error(st, "the reader's answer was incomplete");
    }
    json_decref(a);
    return rc;
}

static int validate_in_child(void *user, const char *path, srv_dataset_info *info, sx_status *st)
{
    sandbox *sb = ((engine *)user)->sandbox;
    struct stat sbuf;
    double mb = stat(path, &sbuf) == 0 ? (double)sbuf.st_size / 1e6 : 0;
    srv_child_limits lim = sb->validate;
    lim.wall_seconds += mb / sb->validate_mb_per_s;
    lim.cpu_seconds = (int)lim.wall_seconds + 1;
    /* the budget travels on the command line: the child has no config of its own */
    const sx_io_limits *l = &((engine *)user)->limits;
    char v[6][32];
    snprintf(v[0], 32, "%lld", (long long)l->max_cells);
    snprintf(v[1], 32, "%lld", (long long)l->max_genes);
    snprintf(v[2], 32, "%lld", (long long)l->max_nnz);
    snprintf(v[3], 32, "%.17g", l->max_inflate_ratio);
    snprintf(v[4], 32, "%lld", (long long)l->max_inflate_bytes);
    snprintf(v[5], 32, "%lld", (long long)l->max_line_bytes);
    char *argv[] = {sb->exe, "__validate", (char *)path, "--max_cells", v[0], "--max_genes", v[1],
                    "--max_nnz", v[2], "--max_inflate_ratio", v[3], "--max_inflate_bytes", v[4],
                    "--max_line_bytes", v[5], NULL};
    srv_child_result res;
    int rc = srv_child_run(argv, NULL, &lim, ANSWER_CAP, NULL, &res, st);
    if (rc) return rc;
    if (res.exited && res.exit_code == 0 && res.out && !res.out_truncated) {
        rc = parse_answer(res.out, info, st);
    } else {
        char how[256];
        srv_child_describe(&res, &lim, how, sizeof how);
        SX_WARN("upload validation: the reader %s (%.1f s, %lld MB peak)", how, res.wall_s,
                (long long)(res.max_rss_kb / 1024));
        if (res.timed_out)
            rc = sx_status_set(st, SX_EFORMAT,
                               "reading the file did not finish within %.0f s: it may be "
                               "crafted to loop, or too large for this server (an operator "
                               "can raise validate_timeout)", lim.wall_seconds);
        else {
            char what[320];
            snprintf(what, sizeof what, "the reader %s on it", how);
            rc = answer_error(st, what);
        }
    }
    srv_child_result_free(&res);
    return rc;
}

int sandbox_wrap_validate(sandbox *sb, const srv_config *cfg, srv_engine *eng, sx_status *st)
{
    memset(sb, 0, sizeof *sb);
    ssize_t n = readlink("/proc/self/exe", sb->exe, sizeof sb->exe - 1);
    if (n <= 0 || (size_t)n >= sizeof sb->exe - 1)
        return sx_status_set(st, SX_EIO, "cannot find this program's own path (/proc/self/exe)");
    sb->exe[n] = 0;
    /* A validation streams the matrix in slabs (tens of MB) except text formats, which are
     * parsed whole: the default 4 GiB of address space holds a several-hundred-MB CSV. */
    sb->validate.as_bytes = cfg->validate_memory;
    sb->validate.wall_seconds = cfg->validate_timeout_s;
    sb->validate.cpu_seconds = 0; /* set per upload from its deadline */
    sb->validate.nofile = 256;
    sb->validate.fsize_bytes = 64 << 20; /* it writes nothing but its answer and hard links */
    sb->validate_mb_per_s = 20;
    sb->inner = *eng;
    ((engine *)eng->user)->sandbox = sb;
    eng->validate = validate_in_child;
    return SX_OK;
}

/* ---- jobs ---- */

typedef struct relay {
    const char *jobdir;
    const sx_progress *prog;
} relay;

/* every tick: the child's progress.json, if it changed, to the worker's progress */
static void relay_progress(void *user)
{
    relay *r = user;
    char stage[32], msg[256];
    double frac = -1;
    if (sx_jobdir_progress_read(r->jobdir, stage, &frac, msg) == 0 && stage[0])
        sx_progress_report(r->prog, stage, frac, msg[0] ? msg : NULL);
}

/* What the child left in status.json decides, when it left one; else how it ended does. */
static int job_outcome(const srv_job_run *job, const srv_child_result *res,
                       const srv_child_limits *lim, sx_status *st)
{
    char state[16] = "", msg[512] = "";
    int code = SX_OK;
    /* a final word the runner wrote itself ("running" is its first, not its last) */
    if (sx_jobdir_status_read(job->outdir, state, &code, msg) == 0 && strcmp(state, "running")) {
        if (!strcmp(state, "succeeded")) return SX_OK;
        return sx_status_set(st, code ? code : SX_EINTERNAL, "%s", msg[0] ? msg : "the job failed");
    }
    if (res->cancelled) return sx_status_set(st, SX_ECANCELED, "canceled");
    char how[256];
    srv_child_describe(res, lim, how, sizeof how);
    SX_WARN("job %s: its process %s without a final status (%.1f s, %lld MB peak): %s", job->id,
            how, res->wall_s, (long long)(res->max_rss_kb / 1024), res->err_tail);
    if (res->timed_out)
        return sx_status_set(st, SX_ELIMIT, "the job did not finish within its %.0f s time limit "
                             "(an operator can raise job_timeout)", lim->wall_seconds);
    /* run-job's input/output exit (3) with no final status: it could not write its own job
     * folder (status.json) or read its job.json; the server's storage, not the user's input */
    if (res->exited && res->exit_code == 3)
        return sx_status_set(st, SX_EIO, "the job's process could not read or write its job "
                             "folder (the server's disk may be full); try again later");
    /* crashed, killed, or died before it could say why (a sanitizer's abort exits 1): the
     * job's inputs are the likeliest cause, and the user's to act on */
    return sx_status_set(st, SX_EFORMAT,
                         "the job's process %s before it finished: an input could not be read "
                         "safely (it may be corrupt or crafted), or the job needed more memory "
                         "than the server allows (job_memory). Re-save the inputs with anndata "
                         "and try again", how);
}

/* ---- pre-started runners ---- */

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A ready spare for a job (NULL: none ready, or it died idle); the job counts as running
 * either way, until spare_done. */
static srv_child *spare_take(sandbox_spares *sp)
{
    srv_child *c = NULL;
    if (!sp->started) return NULL;
    pthread_mutex_lock(&sp->mu);
    sp->n_busy++;
    if (sp->n_ready > 0) { /* the oldest: the likeliest to be through its start-up */
        c = sp->ready[0];
        memmove(sp->ready, sp->ready + 1, (size_t)--sp->n_ready * sizeof *sp->ready);
    }
    pthread_mutex_unlock(&sp->mu);
    if (c && !srv_child_alive(c)) {
        SX_WARN("a pre-started job runner had ended before its job; starting one for it");
        srv_child_discard(c);
        c = NULL;
    }
    return c;
}

/* The job's child is gone: the keeper may start the next spare. */
static void spare_done(sandbox_spares *sp)
{
    if (!sp->started) return;
    pthread_mutex_lock(&sp->mu);
    sp->n_busy--;
    pthread_cond_signal(&sp->cv);
    pthread_mutex_unlock(&sp->mu);
}

/* Idle spares that ended (killed from outside, or a runner that cannot start at all) are
 * reaped here; the next is started after a pause, so a broken install does not fork in a
 * loop (its jobs start their own runner and report why it fails). Called with mu held. */
static void spares_reap(sandbox_spares *sp)
{
    for (int i = 0; i < sp->n_ready; i++) {
        if (srv_child_alive(sp->ready[i])) continue;
        SX_WARN("a pre-started job runner ended while idle; the next one starts in 10 s");
        srv_child_discard(sp->ready[i]);
        sp->ready[i--] = sp->ready[--sp->n_ready];
        sp->retry_at = mono_now() + 10;
    }
}

/* Spares run jobs: at the job workers' priority (srv_jobs lowers each worker thread's by
 * job_nice, and a cold-started runner inherits its worker's). Nice is per thread and a fork
 * takes the forking thread's, so the keeper lowers its own. */
static void keeper_nice(int nice)
{
    if (nice <= 0) return;
    id_t tid = (id_t)syscall(SYS_gettid);
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, tid);
    if ((cur != -1 || !errno) && setpriority(PRIO_PROCESS, tid, cur + nice > 19 ? 19 : cur + nice))
        SX_WARN("cannot lower the priority of the pre-started job runners: %s", strerror(errno));
}

static void *spares_keeper(void *arg)
{
    sandbox *sb = arg;
    sandbox_spares *sp = &sb->spares;
    keeper_nice(sp->nice);
    char *argv[] = {sb->worker, "run-job", "--wait-stdin", NULL};
    /* rlimits are per process and set at the start: the spare's start-up counts against
     * RLIMIT_CPU (its idle wait does not), so that limit gets the start-up's share on top */
    srv_child_limits lim = sb->job;
    if (lim.cpu_seconds > 0) lim.cpu_seconds += 10;
    pthread_mutex_lock(&sp->mu);
    while (!sp->stopping) {
        spares_reap(sp);
        double now = mono_now();
        if (sp->n_ready + sp->n_busy < sp->want && now >= sp->retry_at) {
            pthread_mutex_unlock(&sp->mu);
            srv_child *c = NULL;
            sx_status st;
            int rc = srv_child_start(argv, sb->job_env, &lim, 1, &c, &st);
            pthread_mutex_lock(&sp->mu);
            if (rc) {
                SX_WARN("cannot pre-start a job runner (%s); retrying in 10 s", st.msg);
                sp->retry_at = mono_now() + 10;
            } else {
                sp->ready[sp->n_ready++] = c;
            }
            continue;
        }
        /* a job's end signals; the timeout notices spares that died idle */
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&sp->cv, &sp->mu, &until);
    }
    while (sp->n_ready > 0) srv_child_discard(sp->ready[--sp->n_ready]);
    pthread_mutex_unlock(&sp->mu);
    return NULL;
}

int sandbox_start(sandbox *sb, const srv_config *cfg, sx_status *st)
{
    sandbox_spares *sp = &sb->spares;
    if (!sb->worker[0] || !srv_exec_config_in_process(&cfg->exec) || sp->started) return SX_OK;
    sp->want = cfg->workers < SANDBOX_SPARES_MAX ? cfg->workers : SANDBOX_SPARES_MAX;
    sp->nice = cfg->job_nice;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&sp->mu, NULL);
    pthread_cond_init(&sp->cv, &ca);
    pthread_condattr_destroy(&ca);
    /* the keeper forks the spares: their parent-death signal follows this thread, which
     * lives until sandbox_stop */
    if (pthread_create(&sp->keeper, NULL, spares_keeper, sb) != 0) {
        pthread_cond_destroy(&sp->cv);
        pthread_mutex_destroy(&sp->mu);
        return sx_status_set(st, SX_EIO, "cannot start the job runners' keeper thread");
    }
    sp->started = 1;
    return SX_OK;
}

void sandbox_stop(sandbox *sb)
{
    sandbox_spares *sp = &sb->spares;
    for (char **e = sb->job_env; e && *e; e++) free(*e);
    free(sb->job_env);
    sb->job_env = NULL;
    if (!sp->started) return;
    pthread_mutex_lock(&sp->mu);
    sp->stopping = 1;
    pthread_cond_signal(&sp->cv);
    pthread_mutex_unlock(&sp->mu);
    pthread_join(sp->keeper, NULL); /* it kills and reaps the ready spares on its way out */
    pthread_cond_destroy(&sp->cv);
    pthread_mutex_destroy(&sp->mu);
    sp->started = 0;
}

/* SX_RUNJOB_TIMING=FILE: a line per step of handing a job to its child, with CLOCK_MONOTONIC
 * seconds (system-wide), appended to the file the job runners time their own phases in
 * (cli/cmd_run_job.c), so the two line up. A diagnostic for bench/bench_isolation.sh. */
static void job_mark(const srv_job_run *job, const char *what)
{
    const char *t = getenv("SX_RUNJOB_TIMING");
    if (!t || t[0] != '/') return;
    int fd = open(t, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    char line[160];
    int n = snprintf(line, sizeof line, "daemon %s %.6f %s\n", job->id, mono_now(), what);
    ssize_t w = n > 0 ? write(fd, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1)) : 0;
    (void)w; /* a diagnostic: a failed write changes nothing */
    close(fd);
}

/* The job's child: a pre-started runner handed the job directory, or else one started for
 * it now (`scalex run-job JOBDIR`, the form a cluster node runs). */
static int job_child(sandbox *sb, const char *outdir, srv_child **c, sx_status *st)
{
    char line[4100];
    sx_status sent; /* a spare that cannot take the job is replaced, not the job's error */
    *c = spare_take(&sb->spares);
    if (*c && (snprintf(line, sizeof line, "%s\n", outdir) >= (int)sizeof line ||
               srv_child_send(*c, line, &sent) != SX_OK)) {
        srv_child_discard(*c); /* it died since, or the path does not fit its line */
        *c = NULL;
    }
    if (*c) return SX_OK;
    char *argv[] = {sb->worker, "run-job", (char *)outdir, NULL};
    return srv_child_start(argv, sb->job_env, &sb->job, 0, c, st);
}

static int run_in_child(void *user, const srv_job_run *job, const sx_progress *prog, sx_status *st)
{
    sandbox *sb = ((engine *)user)->sandbox;
    job_mark(job, "run");
    /* the spec the child runs from, with the daemon's input budget */
    int rc = engine_spec_write(user, job, st);
    if (rc) return rc;
    srv_child *c;
    job_mark(job, "spec written");
    rc = job_child(sb, job->outdir, &c, st);
    job_mark(job, "child handed the job");
    if (rc == SX_OK) {
        relay r = {job->outdir, prog};
        srv_child_watch w = {.prog = prog, .tick = relay_progress, .user = &r, .tick_s = 0.25};
        srv_child_result res;
        rc = srv_child_wait(c, &sb->job, 64 << 10, &w, &res, st);
        job_mark(job, "child reaped");
        if (rc == SX_OK) rc = job_outcome(job, &res, &sb->job, st);
        srv_child_result_free(&res);
    }
    spare_done(&sb->spares);
    job_mark(job, "outcome");
    return rc;
}

/* The map written anew when there is none current, or it lacks the search index a large
 * reference keeps there (a map of before the index, or a damaged index section). */
static int ref_map_write(sx_reference *r, const char *path, sx_status *st)
{
    if (r->mapped && !sx_reference_index_missing(r) && !sx_reference_calib_missing(r))
        return SX_OK;
    sx_status is;
    sx_status_clear(&is);
    if (sx_reference_index_build(r, NULL, &is))
        SX_WARN("reference %s: no search index in its map (%s); each projection builds its own",
                path, is.msg);
    sx_status_clear(&is);
    if (sx_reference_calib_build(r, 0, &is))
        SX_WARN("reference %s: no label-transfer calibrations in its map (%s); each transfer "
                "fits its own", path, is.msg);
    return sx_reference_map_write(r, path, st);
}

/* srv_refcache's loader when jobs run in children: the daemon only makes sure the reference's
 * flat map (sx_reference_map.c) exists and is current, with the resident search index of a
 * large reference; the children map it. The handle kept is the folder's path, and the
 * footprint counted is the map's size (page cache shared by all). */
int sandbox_ref_prepare(const char *path, sx_status *st)
{
    sx_reference *r = sx_reference_load(path, st);
    if (!r) return st->code;
    int rc = ref_map_write(r, path, st);
    if (rc == SX_OK) engine_ref_table(r, path);
    sx_reference_free(r);
    return rc;
}

static void *ref_prepare(void *user, const char *path, int64_t *bytes, sx_status *st)
{
    (void)user;
    if (sandbox_ref_prepare(path, st)) return NULL;
    char map[4200];
    snprintf(map, sizeof map, "%s/reference.map", path);
    struct stat sbuf;
    *bytes = stat(map, &sbuf) == 0 ? (int64_t)sbuf.st_size : 0;
    return strdup(path);
}

static void ref_forget(void *user, void *obj)
{
    (void)user;
    free(obj);
}

/* A job runner is a fresh process: every page it allocates is faulted in for the first time,
 * where the daemon's in-process jobs reuse a warm heap. On a virtual machine those faults were
 * most of a small job's extra cost. glibc's tunables give the runner transparent huge pages on
 * its heap (madvise mode) and keep freed memory for reuse instead of unmapping it: the process
 * ends after one job, so nothing is held for long. An operator's own GLIBC_TUNABLES go last
 * (they win). The rest of the environment is the daemon's. */
extern char **environ;

#define RUNNER_TUNABLES "glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:" \
                        "glibc.malloc.trim_threshold=1073741824"

static char **runner_env(void)
{
    size_t n = 0;
    while (environ[n]) n++;
    char **env = calloc(n + 2, sizeof *env);
    const char *own = getenv("GLIBC_TUNABLES");
    size_t len = sizeof "GLIBC_TUNABLES=" RUNNER_TUNABLES + (own ? strlen(own) + 1 : 0);
    char *t = env ? malloc(len) : NULL;
    if (!t) {
        free(env);
        return NULL; /* the daemon's environment: slower, not wrong */
    }
    snprintf(t, len, "GLIBC_TUNABLES=%s%s%s", RUNNER_TUNABLES, own ? ":" : "", own ? own : "");
    size_t k = 0;
    env[k++] = t;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "GLIBC_TUNABLES=", 15) && !(env[k++] = strdup(environ[i]))) {
            for (size_t j = 0; j < k - 1; j++) free(env[j]);
            free(env);
            return NULL;
        }
    return env;
}

int sandbox_wrap_run(sandbox *sb, const srv_config *cfg, srv_engine *eng, sx_status *st)
{
    /* the job runner is `scalex run-job`, installed next to scalexd: the same program and
     * job-directory protocol as on a Slurm node */
    snprintf(sb->worker, sizeof sb->worker, "%s", sb->exe);
    char *slash = strrchr(sb->worker, '/');
    if (!slash || (size_t)(slash - sb->worker) + 8 > sizeof sb->worker)
        return sx_status_set(st, SX_EIO, "cannot place the job runner next to scalexd");
    strcpy(slash + 1, "scalex");
    if (access(sb->worker, X_OK) != 0)
        return sx_status_set(st, SX_ENOTFOUND, "the job runner 'scalex' is not installed next to "
                             "scalexd; install both programs in one folder");
    /* A job reads user data too (the readers again, then the numerics): the same containment,
     * with room for a real job (the default 16 GiB of address space leaves OpenBLAS's
     * per-thread buffers and the allocator room above a large integration's needs). */
    sb->job.as_bytes = cfg->job_memory;
    sb->job.wall_seconds = cfg->job_timeout_s;
    sb->job.nofile = 1024;
    sb->job_env = runner_env();
    eng->run = run_in_child;
    eng->ref_load = ref_prepare;
    eng->ref_free = ref_forget;
    return SX_OK;
}

int sandbox_validate_main(const srv_engine *eng, int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: scalexd __validate FILE (internal: run by the daemon)\n");
        return 2;
    }
    srv_dataset_info info;
    memset(&info, 0, sizeof info);
    sx_status st;
    sx_status_clear(&st);
    int rc = eng->validate(eng->user, argv[2], &info, &st);
    json_t *a = json_object();
    json_object_set_new(a, "ok", json_boolean(rc == SX_OK));
    if (rc == SX_OK) {
        json_object_set_new(a, "format", json_string(info.format));
        json_object_set_new(a, "ext", json_string(info.ext));
        json_object_set_new(a, "n_obs", json_integer(info.n_obs));
        json_object_set_new(a, "n_vars", json_integer(info.n_vars));
        json_t *cols = info.obs_columns ? json_loads(info.obs_columns, 0, NULL) : NULL;
        json_object_set_new(a, "obs_columns", cols ? cols : json_array());
    } else {
        json_object_set_new(a, "code", json_string(sx_errname(rc)));
        json_object_set_new(a, "message", json_string(st.msg));
    }
    free(info.obs_columns);
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    if (!text) return 1;
    int ok = printf("%s\n", text) > 0 && fflush(stdout) == 0;
    free(text);
    return ok ? 0 : 1;
}
