/* srv_exec — executor-neutral parts: settings (the executors' keys from the table), the
 * job function the worker threads call (submit / re-attach / poll / cancel loop; the job
 * directory's files are sx_jobdir's), the registry rows that keep executor handles, and
 * running commands. No executor is named here: srv_exec_table.c lists them. */
#include "srv_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sx_jobdir.h"
#include "sx_log.h"
#include "srv_exec_internal.h"
#include "srv_jobs.h"
#include "srv_registry.h"
#include "srv_util.h"

/* ---- settings ---- */

/* the one setting every configuration has: which executor */
static const srv_exec_key executor_key = {"executor", SRV_XKEY_TEXT, "local", NULL};

void srv_exec_config_defaults(srv_exec_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->executor, sizeof c->executor, "%s", executor_key.def);
}

const srv_exec_key *srv_exec_key_at(int i)
{
    if (i == 0) return &executor_key;
    int n = 1;
    for (int t = 0; srv_exec_table_at(t); t++)
        for (const srv_exec_key *k = srv_exec_table_at(t)->keys; k && k->name; k++)
            if (n++ == i) return k;
    return NULL;
}

static const srv_exec_key *find_key(const char *name)
{
    char norm[64];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof norm; i++) norm[i] = name[i] == '-' ? '_' : name[i];
    norm[i] = 0;
    const srv_exec_key *k;
    for (int j = 0; (k = srv_exec_key_at(j)) != NULL; j++)
        if (!strcmp(k->name, norm)) return k;
    return NULL;
}

/* the table's names for messages: "a or b", "a, b or c" */
static const char *names_text(char *buf, size_t cap)
{
    size_t len = 0;
    int n = 0;
    while (srv_exec_table_at(n)) n++;
    buf[0] = 0;
    for (int i = 0; i < n && len < cap; i++) {
        int w = snprintf(buf + len, cap - len, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ",
                         srv_exec_table_at(i)->name);
        if (w > 0) len += (size_t)w;
    }
    return buf;
}

static int bad_executor(const char *name, sx_status *st)
{
    char names[256];
    return sx_status_set(st, SX_EINVAL, "executor: expected %s, got '%s'",
                         names_text(names, sizeof names), name);
}

int srv_exec_config_set(srv_exec_config *c, const char *name, const char *value, sx_status *st)
{
    const srv_exec_key *k = find_key(name);
    if (!k) return SX_ENOTFOUND;
    if (k == &executor_key) {
        if (!srv_exec_table_find(value)) return bad_executor(value, st);
        snprintf(c->executor, sizeof c->executor, "%s", value);
        return SX_OK;
    }
    if (strlen(value) >= SRV_EXEC_VALUE_MAX)
        return sx_status_set(st, SX_EINVAL, "%s: value too long", k->name);
    if (k->kind == SRV_XKEY_SECONDS) {
        char *end;
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end || !(v >= 0) || isinf(v))
            return sx_status_set(st, SX_EINVAL, "%s: expected a number of seconds, got '%s'",
                                 k->name, value);
    }
    int i = 0;
    while (i < c->n_set && c->set[i].key != k) i++;
    if (i == SRV_EXEC_MAX_SETTINGS)
        return sx_status_set(st, SX_EINTERNAL, "more than %d executor settings",
                             SRV_EXEC_MAX_SETTINGS);
    if (i == c->n_set) c->n_set++;
    c->set[i].key = k;
    snprintf(c->set[i].value, sizeof c->set[i].value, "%s", value);
    return SX_OK;
}

const char *srv_exec_config_get(const srv_exec_config *c, const char *name)
{
    const srv_exec_key *k = find_key(name);
    if (!k) return NULL;
    if (k == &executor_key) return c->executor;
    for (int i = 0; i < c->n_set; i++)
        if (c->set[i].key == k) return c->set[i].value;
    return k->def;
}

const char *srv_exec_key_help(const srv_exec_key *k, char *buf, size_t cap)
{
    if (k != &executor_key) return k->help;
    size_t len = (size_t)snprintf(buf, cap, "where jobs run:");
    for (int i = 0; srv_exec_table_at(i) && len < cap; i++) {
        int w = snprintf(buf + len, cap - len, "%s %s (%s)", i ? " |" : "",
                         srv_exec_table_at(i)->name, srv_exec_table_at(i)->summary);
        if (w > 0) len += (size_t)w;
    }
    return buf;
}

int srv_exec_config_in_process(const srv_exec_config *c)
{
    const srv_exec_ops *ops = srv_exec_table_find(c->executor);
    return ops && ops->run;
}

int srv_exec_config_local_cores(const srv_exec_config *c)
{
    const srv_exec_ops *ops = srv_exec_table_find(c->executor);
    return ops && ops->local_cores;
}

const char *srv_xstate_name(srv_xstate s)
{
    static const char *const n[] = {"UNKNOWN", "QUEUED", "RUNNING", "COMPLETE", "EXECUTOR_ERROR",
                                    "SYSTEM_ERROR", "CANCELED"};
    return (unsigned)s < sizeof n / sizeof n[0] ? n[s] : "UNKNOWN";
}

int srv_xstate_terminal(srv_xstate s)
{
    return s == SRV_X_COMPLETE || s == SRV_X_EXECUTOR_ERROR || s == SRV_X_SYSTEM_ERROR ||
           s == SRV_X_CANCELED;
}

srv_exec *srv_exec_new(const srv_exec_config *cfg, struct srv_registry *reg, srv_exec_fn local_fn,
                       void *local_user, srv_exec_fn after, void *after_user, sx_status *st)
{
    const srv_exec_ops *ops = srv_exec_table_find(cfg->executor);
    if (!ops) {
        bad_executor(cfg->executor, st);
        return NULL;
    }
    if (!ops->run && !reg) {
        sx_status_set(st, SX_EINVAL, "executor %s needs the registry to keep its job ids", ops->name);
        return NULL;
    }
    srv_exec *x = calloc(1, sizeof *x);
    if (!x) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    x->cfg = *cfg;
    x->ops = ops;
    x->poll_s = 5;
    x->reg = reg;
    x->local_fn = local_fn;
    x->local_user = local_user;
    x->after = after;
    x->after_user = after_user;
    if (ops->open && ops->open(x, st) != SX_OK) {
        free(x);
        return NULL;
    }
    if (x->poll_s <= 0) x->poll_s = 5;
    return x;
}

void srv_exec_free(srv_exec *x)
{
    if (x && x->ops->close) x->ops->close(x);
    free(x);
}

void srv_exec_set_limits(srv_exec *x, const sx_io_limits *limits)
{
    x->have_limits = limits != NULL;
    if (limits) x->limits = *limits;
}

const char *srv_exec_name(const srv_exec *x) { return x->ops->name; }
int srv_exec_is_local(const srv_exec *x) { return x->ops->run != NULL; }

/* ---- registry rows (schema/0002_executor.sql) ---- */

int srv_exec_handle_set(srv_db *db, const char *job_id, const char *executor, const char *handle,
                        const char *raw_state, sx_status *st)
{
    const char *sql = "INSERT INTO job_executor (job_id, executor, handle, raw_state, done, "
                      "submitted_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5) "
                      "ON CONFLICT (job_id) DO UPDATE SET executor = ?2, handle = ?3, "
                      "raw_state = ?4, done = 0, submitted_ms = CASE WHEN job_executor.handle = ?3 "
                      "THEN job_executor.submitted_ms ELSE ?5 END, updated_ms = ?5";
    srv_stmt *s = srv_db_prepare(db, sql, NULL);
    if (!s) goto fail;
    srv_stmt_bind_text(s, 1, job_id);
    srv_stmt_bind_text(s, 2, executor);
    srv_stmt_bind_text(s, 3, handle);
    srv_stmt_bind_text(s, 4, raw_state);
    srv_stmt_bind_int64(s, 5, srv_now_ms());
    if (srv_stmt_step(s) != SRV_DB_DONE) goto fail;
    srv_stmt_done(s);
    srv_job_changed(); /* the job's view shows the executor's id */
    return SX_OK;
fail:
    sx_status_set(st, SX_EIO, "registry: keeping the %s id of job %s: %s", executor, job_id,
                  srv_db_errmsg(db));
    srv_stmt_done(s);
    return SX_EIO;
}

/* raw_state of a kept handle (without ending it), or the final state (ending it) */
static int handle_update(srv_db *db, const char *job_id, const char *raw_state, int done)
{
    srv_stmt *s = srv_db_prepare(db, "UPDATE job_executor SET raw_state = ?2, done = ?3, "
                                     "updated_ms = ?4 WHERE job_id = ?1", NULL);
    if (!s) return SX_EIO;
    srv_stmt_bind_text(s, 1, job_id);
    srv_stmt_bind_text(s, 2, raw_state);
    srv_stmt_bind_int64(s, 3, done);
    srv_stmt_bind_int64(s, 4, srv_now_ms());
    int rc = srv_stmt_step(s) == SRV_DB_DONE ? SX_OK : SX_EIO;
    srv_stmt_done(s);
    srv_job_changed();
    return rc;
}

int srv_exec_handle_get(srv_db *db, const char *job_id, char executor[16], char handle[64],
                        sx_status *st)
{
    handle[0] = 0;
    if (executor) executor[0] = 0;
    srv_stmt *s = srv_db_prepare(db, "SELECT executor, handle FROM job_executor WHERE job_id = ?1 "
                                     "AND done = 0", st);
    if (!s) return SX_EIO;
    srv_stmt_bind_text(s, 1, job_id);
    int rc = srv_stmt_step(s);
    if (rc == SRV_DB_ROW) {
        if (executor) snprintf(executor, 16, "%s", srv_stmt_column_text(s, 0));
        snprintf(handle, 64, "%s", srv_stmt_column_text(s, 1));
        rc = SX_OK;
    } else if (rc == SRV_DB_DONE) {
        rc = SX_OK;
    } else {
        rc = sx_status_set(st, SX_EIO, "registry: %s", srv_db_errmsg(db));
    }
    srv_stmt_done(s);
    return rc;
}

int srv_exec_handle_clear(srv_db *db, const char *job_id, sx_status *st)
{
    srv_stmt *s = srv_db_prepare(db, "DELETE FROM job_executor WHERE job_id = ?1", st);
    if (!s) return st ? st->code : SX_EIO;
    srv_stmt_bind_text(s, 1, job_id);
    int rc = srv_stmt_step(s) == SRV_DB_DONE
                 ? SX_OK : sx_status_set(st, SX_EIO, "registry: %s", srv_db_errmsg(db));
    srv_stmt_done(s);
    return rc;
}

int srv_exec_keep_jobdir(srv_db *db, const char *job_id)
{
    char h[64];
    return srv_exec_handle_get(db, job_id, NULL, h, NULL) == SX_OK && h[0];
}

/* jobs of this instance (see srv_job_reconcile): on a shared PostgreSQL registry another
 * instance's running jobs are not ours to re-queue */
#define MINE_J "(?9 = 0 OR j.runner = ?8 OR j.runner IS NULL)"

static void bind_mine(srv_stmt *s, srv_db *db)
{
    srv_stmt_bind_text(s, 8, srv_db_tag(db));
    srv_stmt_bind_int64(s, 9, srv_db_kind_of(db) == SRV_DB_POSTGRES);
}

int srv_exec_prepare_reattach(srv_exec *x, srv_db *db, sx_status *st)
{
    if (!x || x->ops->run) return 0;
    /* canceled while no daemon watched (CANCELING, or a drained QUEUED job canceled
     * before this start): stop the unit; srv_job_reconcile records CANCELING as CANCELED */
    int n = 0;
    srv_stmt *s = srv_db_prepare(db, "SELECT e.handle FROM job_executor e JOIN jobs j ON "
                                     "j.id = e.job_id WHERE e.done = 0 AND j.state IN ("
                                     "'CANCELING','CANCELED','COMPLETE','EXECUTOR_ERROR',"
                                     "'SYSTEM_ERROR') AND " MINE_J, NULL);
    if (!s) goto fail;
    bind_mine(s, db);
    while (srv_stmt_step(s) == SRV_DB_ROW) {
        sx_status cst;
        if (x->ops->cancel(x, srv_stmt_column_text(s, 0), &cst))
            SX_WARN("executor %s: %s", x->ops->name, cst.msg);
    }
    srv_stmt_done(s);
    s = srv_db_prepare(db, "UPDATE job_executor SET done = 1 WHERE done = 0 AND job_id IN (SELECT "
                           "j.id FROM jobs j WHERE j.state IN ('CANCELING','CANCELED','COMPLETE',"
                           "'EXECUTOR_ERROR','SYSTEM_ERROR') AND " MINE_J ")", NULL);
    if (!s) goto fail;
    bind_mine(s, db);
    if (srv_stmt_step(s) != SRV_DB_DONE) goto fail;
    srv_stmt_done(s);
    /* running at the executor: back to the queue without consuming an attempt; the next
     * claim finds the kept handle and re-attaches */
    s = srv_db_prepare(db, "UPDATE jobs SET state = 'QUEUED', attempts = CASE WHEN attempts > 0 "
                           "THEN attempts - 1 ELSE 0 END, message = 're-attaching to ' || (SELECT "
                           "executor || ' job ' || handle FROM job_executor e WHERE e.job_id = "
                           "jobs.id) WHERE state IN ('INITIALIZING','RUNNING') AND id IN (SELECT "
                           "job_id FROM job_executor WHERE done = 0) AND id IN (SELECT j.id FROM "
                           "jobs j WHERE " MINE_J ")", NULL);
    if (!s) goto fail;
    bind_mine(s, db);
    if (srv_stmt_step(s) != SRV_DB_DONE) goto fail;
    n = (int)srv_db_changes(db);
    srv_stmt_done(s);
    srv_job_changed();
    return n;
fail:
    sx_status_set(st, SX_EIO, "registry: re-attaching executor jobs: %s", srv_db_errmsg(db));
    srv_stmt_done(s);
    return SX_EIO;
}

/* ---- commands ---- */

int srv_exec_command(char *const argv[], char *out, size_t cap, char *err, size_t errcap)
{
    int po[2], pe[2];
    if (out && cap) out[0] = 0;
    if (err && errcap) err[0] = 0;
    if (pipe(po)) return SX_EIO;
    if (pipe(pe)) {
        close(po[0]);
        close(po[1]);
        return SX_EIO;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
        return SX_EIO;
    }
    if (pid == 0) {
        /* a forked child of a threaded process: only async-signal-safe calls until exec */
        dup2(po[1], 1);
        dup2(pe[1], 2);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, 0);
        for (int fd = 3; fd < 1024; fd++) close(fd);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t n = 0, ne = 0;
    char sink[512];
    /* read both pipes (stderr is small: a diagnostic) */
    int open_o = 1, open_e = 1;
    while (open_o || open_e) {
        if (open_o) {
            ssize_t r = n + 1 < cap ? read(po[0], out + n, cap - 1 - n) : read(po[0], sink, sizeof sink);
            if (r <= 0) open_o = 0;
            else if (n + 1 < cap) n += (size_t)r;
        } else if (open_e) {
            ssize_t r = ne + 1 < errcap ? read(pe[0], err + ne, errcap - 1 - ne)
                                        : read(pe[0], sink, sizeof sink);
            if (r <= 0) open_e = 0;
            else if (ne + 1 < errcap) ne += (size_t)r;
        }
    }
    if (out && cap) out[n] = 0;
    if (err && errcap) {
        err[ne] = 0;
        char *nl = strchr(err, '\n');
        if (nl) *nl = 0;
    }
    close(po[0]);
    close(pe[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (WIFEXITED(status)) return WEXITSTATUS(status) == 127 ? SX_EIO : WEXITSTATUS(status);
    return SX_EIO;
}

/* ---- the job function ---- */

static int sleep_or_cancel(double s, const sx_progress *prog)
{
    for (double t = 0; t < s; t += 0.05) {
        if (prog && sx_progress_cancelled(prog)) return 1;
        usleep(50000);
    }
    return prog && sx_progress_cancelled(prog);
}

/* The executor's own explanation of an ending, or SX_OK when it has none. */
static int explain(srv_exec *x, srv_exec_why why, const srv_job_run *run, const char *handle,
                   const srv_exec_status *es, sx_status *st)
{
    return x->ops->explain ? x->ops->explain(x, why, run, handle, es, st) : SX_OK;
}

/* A unit the executor finished: its outcome from the executor's state and status.json. */
static int outcome(srv_exec *x, const srv_job_run *run, const char *handle,
                   const srv_exec_status *es, int cancel_sent, sx_status *st)
{
    char sstate[16] = "", smsg[512] = "";
    int scode = SX_OK, rc;
    int have_status = sx_jobdir_status_read(run->outdir, sstate, &scode, smsg) == 0;
    switch (es->state) {
    case SRV_X_COMPLETE:
        if (!have_status || strcmp(sstate, "succeeded"))
            return sx_status_set(st, SX_EIO, "%s job %s completed but its status.json %s: is the "
                                 "data dir on a filesystem the executor's workers share?",
                                 x->ops->name, handle,
                                 have_status ? "does not say succeeded" : "is missing");
        if (x->after) {
            sx_status ast;
            sx_status_clear(&ast);
            if (x->after(x->after_user, run, NULL, &ast))
                SX_WARN("job %s: after the %s job: %s", run->id, x->ops->name, ast.msg);
        }
        return SX_OK;
    case SRV_X_CANCELED:
        if (cancel_sent) return sx_status_set(st, SX_ECANCELED, "canceled");
        if ((rc = explain(x, SRV_XW_CANCELED, run, handle, es, st))) return rc;
        return sx_status_set(st, SX_ECANCELED, "canceled outside scalexd (at the %s executor)",
                             x->ops->name);
    case SRV_X_SYSTEM_ERROR:
        if ((rc = explain(x, SRV_XW_SYSTEM, run, handle, es, st))) return rc;
        return sx_status_set(st, SX_EIO, "%s job %s ended %s%s%s: the executor failed, not the "
                             "job; submit it again", x->ops->name, handle, es->raw,
                             es->reason[0] ? " " : "", es->reason);
    default:
        break;
    }
    /* EXECUTOR_ERROR: the job's own failure. The worker's status.json names the cause; the
     * executor explains kills the worker never saw (time limit, memory). */
    if ((rc = explain(x, SRV_XW_FAILED, run, handle, es, st))) return rc;
    if (have_status && scode != SX_OK) {
        /* kept as the worker classified it, except codes the runner would call ours: the
         * executor says the job failed, so it is an executor error */
        int c = (scode == SX_ENOMEM || scode == SX_EIO || scode == SX_EINTERNAL) ? SX_EDATA : scode;
        if (c == SX_ECANCELED) return sx_status_set(st, SX_ECANCELED, "canceled");
        return sx_status_set(st, c, "%s", smsg);
    }
    if ((rc = explain(x, SRV_XW_NO_STATUS, run, handle, es, st))) return rc;
    return sx_status_set(st, SX_EDATA, "%s job %s ended %s%s%s before the worker wrote its status",
                         x->ops->name, handle, es->raw, es->reason[0] ? ", exit " : "", es->reason);
}

static int write_unit(srv_exec *x, const srv_job_run *run, int threads, sx_status *st)
{
    int rc = sx_jobdir_spec_write(run->outdir, run->type, run->inputs, run->n_inputs,
                                  run->reference, run->options, threads,
                                  x->have_limits ? &x->limits : NULL, run->input_sha256, st);
    return rc;
}

/* The worker's status.json as the unit's state, when it says the worker finished: the
 * executor may forget a unit its worker completed. Returns 1 when it set es. */
static int worker_final_state(const char *outdir, srv_exec_status *es)
{
    char s16[16], m[512];
    int c;
    if (sx_jobdir_status_read(outdir, s16, &c, m) != 0 || !strcmp(s16, "running")) return 0;
    es->state = !strcmp(s16, "succeeded") ? SRV_X_COMPLETE
                : !strcmp(s16, "canceled") ? SRV_X_CANCELED : SRV_X_EXECUTOR_ERROR;
    snprintf(es->raw, sizeof es->raw, "%s", s16);
    return 1;
}

/* Re-attach to the unit a previous process submitted (handle and es filled), or submit a
 * fresh one and record its handle. */
static int attach_or_submit(srv_exec *x, srv_db *db, const srv_job_run *run, char handle[64],
                            srv_exec_status *es, sx_status *st)
{
    int rc;
    char exe[16] = "";
    int threads = x->ops->unit_threads ? x->ops->unit_threads(x, run) : run->threads;
    if (threads < 1) threads = 1;
    if ((rc = srv_exec_handle_get(db, run->id, exe, handle, st))) return rc;
    if (handle[0] && !strcmp(exe, x->ops->name)) {
        sx_status pst;
        if (x->ops->poll(x, handle, es, &pst) == SX_OK && es->state != SRV_X_UNKNOWN) {
            SX_INFO("job %s: re-attached to %s job %s (%s)", run->id, x->ops->name, handle, es->raw);
            return SX_OK;
        }
        /* the executor forgot the unit but its worker finished: take its word */
        if (worker_final_state(run->outdir, es)) return SX_OK;
    }
    /* a fresh unit: no leftover status, progress or cancel of a lost one */
    const char *stale[] = {SX_JOBDIR_STATUS, SX_JOBDIR_PROGRESS, SX_JOBDIR_CANCEL};
    for (int i = 0; i < 3; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", run->outdir, stale[i]);
        unlink(p);
    }
    if ((rc = write_unit(x, run, threads, st))) return rc;
    if ((rc = x->ops->submit(x, run, threads, handle, st))) return rc;
    if ((rc = srv_exec_handle_set(db, run->id, x->ops->name, handle, "SUBMITTED", st))) {
        sx_status cst;
        x->ops->cancel(x, handle, &cst); /* a unit nobody could find again */
        return rc;
    }
    SX_INFO("job %s: submitted as %s job %s", run->id, x->ops->name, handle);
    return SX_OK;
}

/* What the poll loop remembers between rounds. */
typedef struct {
    int cancel_sent, reported, unknown, failures;
    double cancel_t;
    char last_raw[48], last_stage[32];
    double last_frac;
} remote_watch;

/* A cancel asked of a unit still going: leave it for the next start while the daemon drains,
 * else ask the worker and the executor to stop, and give up waiting after 2 minutes.
 * Returns non-zero (st set) when the job ends here. */
static int on_cancel(srv_exec *x, const srv_job_run *run, const char *handle, remote_watch *w,
                     sx_status *st)
{
    if (run->drain && atomic_load(run->drain)) {
        /* the daemon stops: leave the unit running, re-attach at the next start */
        return sx_status_set(st, SX_ECANCELED, "left running as %s job %s while the daemon "
                             "restarts", x->ops->name, handle);
    }
    if (!w->cancel_sent) {
        char p[4200];
        snprintf(p, sizeof p, "%s/" SX_JOBDIR_CANCEL, run->outdir);
        srv_write_file_atomic(p, "", 0, NULL); /* the worker stops cleanly */
        sx_status cst;
        if (x->ops->cancel(x, handle, &cst))
            SX_WARN("job %s: %s", run->id, cst.msg);
        w->cancel_sent = 1;
        w->cancel_t = srv_mono_s();
    } else if (srv_mono_s() - w->cancel_t > 120) {
        return sx_status_set(st, SX_ECANCELED, "canceled (the %s job %s did not confirm "
                             "within 2 minutes)", x->ops->name, handle);
    }
    return SX_OK;
}

/* Pass the worker's progress.json on while the unit runs (once "running" before it has one). */
static void report_progress(srv_exec *x, const srv_job_run *run, const sx_progress *prog,
                            const char *handle, const srv_exec_status *es, remote_watch *w)
{
    if (es->state != SRV_X_RUNNING && es->state != SRV_X_QUEUED && es->state != SRV_X_UNKNOWN)
        return;
    char stage[32], msg[256];
    double frac;
    if (es->state == SRV_X_RUNNING &&
        sx_jobdir_progress_read(run->outdir, stage, &frac, msg) == 0 &&
        (strcmp(stage, w->last_stage) || frac != w->last_frac)) {
        if (prog && prog->fn) prog->fn(prog->user, stage, frac, msg);
        snprintf(w->last_stage, sizeof w->last_stage, "%s", stage);
        w->last_frac = frac;
        w->reported = 1;
    } else if (es->state == SRV_X_RUNNING && !w->reported) {
        char m[128];
        snprintf(m, sizeof m, "running as %s job %s", x->ops->name, handle);
        if (prog && prog->fn) prog->fn(prog->user, "read", 0, m); /* INITIALIZING -> RUNNING */
        w->reported = 1;
    }
}

/* One question to the executor: es becomes the unit's new state (unchanged when the executor
 * cannot be asked). Returns non-zero (st set) when the executor lost the unit. */
static int poll_unit(srv_exec *x, const srv_job_run *run, const char *handle,
                     srv_exec_status *es, remote_watch *w, sx_status *st)
{
    sx_status pst;
    sx_status_clear(&pst);
    srv_exec_status ns;
    if (x->ops->poll(x, handle, &ns, &pst) != SX_OK) {
        if (++w->failures % 12 == 1)
            SX_WARN("job %s: cannot ask %s: %s", run->id, x->ops->name, pst.msg);
        return SX_OK;
    }
    w->failures = 0;
    if (ns.state != SRV_X_UNKNOWN) {
        w->unknown = 0;
    } else if (!worker_final_state(run->outdir, &ns)) {
        /* the executor forgot the unit (or does not know it yet), and the worker's
         * status.json, the last word, says nothing yet */
        if (++w->unknown >= 10) {
            int rc = explain(x, SRV_XW_LOST, run, handle, &ns, st);
            if (!rc)
                rc = sx_status_set(st, SX_EIO, "%s lost job %s: it no longer knows the job "
                                   "and the job wrote no final status", x->ops->name, handle);
            return rc;
        }
        ns = *es; /* keep the last known state */
    }
    *es = ns;
    return SX_OK;
}

/* Poll the unit until the executor calls it ended (SX_OK, es terminal), or the job ends here
 * (a cancel the daemon leaves or that was not confirmed, a lost unit). */
static int watch_unit(srv_exec *x, srv_db *db, const srv_job_run *run, const sx_progress *prog,
                      const char *handle, srv_exec_status *es, remote_watch *w, sx_status *st)
{
    int rc;
    for (;;) {
        if (!srv_xstate_terminal(es->state) && sx_progress_cancelled(prog) &&
            (rc = on_cancel(x, run, handle, w, st)))
            return rc;
        if (srv_xstate_terminal(es->state)) return SX_OK;
        report_progress(x, run, prog, handle, es, w);
        if (es->raw[0] && strcmp(es->raw, w->last_raw)) {
            handle_update(db, run->id, es->raw, 0);
            snprintf(w->last_raw, sizeof w->last_raw, "%s", es->raw);
        }
        /* a cancel is confirmed quickly: poll fast while waiting for it */
        if (sleep_or_cancel(w->cancel_sent ? 0.5 : x->poll_s, prog) && !w->cancel_sent) continue;
        if ((rc = poll_unit(x, run, handle, es, w, st))) return rc;
    }
}

static int run_remote(srv_exec *x, const srv_job_run *run, const sx_progress *prog, sx_status *st)
{
    srv_db *db = srv_registry_get(x->reg, st);
    if (!db) return st->code;
    char handle[64] = "";
    srv_exec_status es;
    memset(&es, 0, sizeof es);
    remote_watch w = {.last_frac = -1};
    int rc = attach_or_submit(x, db, run, handle, &es, st);
    if (!rc) rc = watch_unit(x, db, run, prog, handle, &es, &w, st);
    if (!rc) {
        if (es.state == SRV_X_COMPLETE || es.state == SRV_X_RUNNING) {
            char stage[32], msg[256];
            double frac;
            if (prog && prog->fn && sx_jobdir_progress_read(run->outdir, stage, &frac, msg) == 0)
                prog->fn(prog->user, stage, frac, msg);
        }
        rc = outcome(x, run, handle, &es, w.cancel_sent, st);
        handle_update(db, run->id, es.raw[0] ? es.raw : srv_xstate_name(es.state), 1);
    }
    srv_registry_put(x->reg, db);
    return rc;
}

int srv_exec_job_fn(void *user, const srv_job_run *run, const sx_progress *prog, sx_status *st)
{
    srv_exec *x = user;
    if (x->ops->run) return x->ops->run(x, run, prog, st);
    return run_remote(x, run, prog, st);
}
