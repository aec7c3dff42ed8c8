#include "srv_jobs.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include "sx_log.h"
#include "srv_layout.h"
#include "srv_util.h"
#include "srv_refcache.h"
#include "srv_exec.h"

enum { SLOT_IDLE = 0, SLOT_ASSIGNED, SLOT_DONE };

typedef struct slot {
    struct srv_jobs *owner;
    pthread_t thread;
    int started;
    /* under mu */
    int state;
    char id[32];
    char type[32];
    char outdir[4096];
    char **inputs;
    int n_inputs;
    char **input_sha256; /* the datasets' recorded digests, one per input (or NULL) */
    char *reference;
    char *ref_name;    /* catalog name of reference (srv_refcache key) */
    json_t *request;
    int attempt;
    double t_start;
    char stage[32];
    double progress;   /* overall 0..1 */
    char message[256];
    int dirty;
    int rc;
    sx_status st;
    atomic_int cancel;
    atomic_int drain;  /* cancel was raised by a drain: re-queue instead of CANCELED */
    int unrecorded;    /* its ending could not be written yet (a full disk): retried */
} slot;

typedef struct waiter {
    char id[32];
    double deadline;
    srv_job_wait_fn fn;
    void *user;
    struct waiter *next;
} waiter;

struct srv_jobs {
    srv_jobs_config cfg;
    char *data_dir;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t tick;
    pthread_t loop_thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* workers wait here for an assignment */
    slot *slots;
    waiter *pending;     /* registered by other threads, adopted by the loop (under mu) */
    waiter *waiters;     /* loop thread only */
    int quit;            /* under mu: workers exit, loop stops */
    atomic_int draining;
    atomic_int running;
    double last_poll;
    srv_db *db;         /* the loop thread's connection */
    srv_jobs_stats stats; /* under mu */
};

const char *srv_error_type(int code)
{
    switch (code) {
    case SX_EINVAL: return "invalid-options";
    case SX_ENOMEM: return "out-of-memory";
    case SX_EIO: return "io-error";
    case SX_EFORMAT: return "bad-format";
    case SX_EUNSUPPORTED: return "unsupported";
    case SX_EGENES: return "gene-mismatch";
    case SX_ECANCELED: return "canceled";
    case SX_ENOTFOUND: return "not-found";
    case SX_EDATA: return "bad-data";
    case SX_ESTATE: return "conflict";
    case SX_ELIMIT: return "too-large";
    default: return "internal";
    }
}

/* Overall progress: each pipeline stage owns a slice of 0..1 (training dominates), in a
 * projection's order (its X written after encoding, the clusters carried before the UMAP
 * transform, the longest of its later stages); an integration's Leiden, after its UMAP,
 * holds the bar where the UMAP left it (the value never goes back). */
static double overall(const char *stage, double frac, double prev)
{
    static const struct { const char *name; double lo, hi; } w[] = {
        {"read", 0.00, 0.05},     {"preprocess", 0.05, 0.10}, {"train", 0.10, 0.80},
        {"encode", 0.80, 0.85},   {"write_x", 0.85, 0.86},    {"knn", 0.86, 0.88},
        {"transfer", 0.88, 0.90}, {"leiden", 0.90, 0.91},     {"umap", 0.91, 0.98},
        {"write", 0.98, 1.00}};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        if (strcmp(stage, w[i].name)) continue;
        double f = frac < 0 ? 0 : frac > 1 ? 1 : frac;
        double v = w[i].lo + f * (w[i].hi - w[i].lo);
        return v > prev ? v : prev;
    }
    return prev;
}

static void on_progress(void *user, const char *stage, double frac, const char *msg)
{
    slot *s = user;
    pthread_mutex_lock(&s->owner->mu);
    snprintf(s->stage, sizeof s->stage, "%s", stage ? stage : "");
    s->progress = overall(s->stage, frac, s->progress);
    if (msg) snprintf(s->message, sizeof s->message, "%s", msg);
    s->dirty = 1;
    pthread_mutex_unlock(&s->owner->mu);
}

static void free_slot_inputs(slot *s)
{
    for (int i = 0; i < s->n_inputs; i++) free(s->inputs[i]);
    free(s->inputs);
    for (int i = 0; s->input_sha256 && s->input_sha256[i]; i++) free(s->input_sha256[i]);
    free(s->input_sha256);
    s->inputs = NULL;
    s->input_sha256 = NULL;
    s->n_inputs = 0;
    free(s->reference);
    s->reference = NULL;
    free(s->ref_name);
    s->ref_name = NULL;
    json_decref(s->request);
    s->request = NULL;
}

/* Lower this worker thread's priority by `nice` (Linux: nice is per thread, and threads
 * the job starts — the training pool, UMAP, kNN — inherit it). A job keeps every core
 * busy for minutes; at the same priority the HTTP threads wait behind it for whole
 * scheduler slices and status polls see tens of ms. At nice 10 a job still gets all the
 * CPU nobody else wants, but a woken HTTP thread preempts it at once. Unprivileged
 * processes may raise their nice value, never lower it back: done once per worker. */
static void lower_priority(int nice)
{
    if (nice <= 0) return;
    pid_t tid = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, (id_t)tid);
    if (cur == -1 && errno) return;
    int want = cur + nice > 19 ? 19 : cur + nice;
    if (setpriority(PRIO_PROCESS, (id_t)tid, want) != 0)
        SX_WARN("cannot lower the priority of a job worker (nice %d): %s", want, strerror(errno));
}

static void *worker_main(void *arg)
{
    slot *s = arg;
    srv_jobs *j = s->owner;
    lower_priority(j->cfg.nice);
    pthread_mutex_lock(&j->mu);
    for (;;) {
        while (!j->quit && s->state != SLOT_ASSIGNED) pthread_cond_wait(&j->cv, &j->mu);
        if (s->state != SLOT_ASSIGNED) break;
        srv_job_run run = {.id = s->id, .type = s->type, .outdir = s->outdir,
                           .inputs = (const char *const *)s->inputs, .n_inputs = s->n_inputs,
                           .input_sha256 = (const char *const *)s->input_sha256,
                           .reference = s->reference,
                           .options = json_object_get(s->request, "options"),
                           .threads = j->cfg.threads_per_job, .attempt = s->attempt,
                           .drain = &s->drain};
        const char *ref_name = s->ref_name;
        pthread_mutex_unlock(&j->mu);
        sx_progress prog = {.fn = on_progress, .user = s, .cancel = &s->cancel};
        sx_status st;
        sx_status_clear(&st);
        /* the loaded reference is borrowed here, on the worker: a first load of a large
         * reference must not stall the loop thread */
        void *ref_obj = NULL;
        int rc = SX_OK;
        if (j->cfg.refs && ref_name && s->reference) {
            ref_obj = srv_refcache_acquire(j->cfg.refs, ref_name, s->reference, &st);
            if (!ref_obj) rc = st.code ? st.code : SX_EIO;
        }
        run.reference_obj = ref_obj;
        if (rc == SX_OK) rc = j->cfg.fn(j->cfg.fn_user, &run, &prog, &st);
        srv_refcache_release(j->cfg.refs, ref_obj);
        if (rc != SX_OK && st.code == SX_OK) sx_status_set(&st, rc, "%s", sx_strerror(rc));
        pthread_mutex_lock(&j->mu);
        s->rc = rc;
        s->st = st;
        s->state = SLOT_DONE;
        pthread_mutex_unlock(&j->mu);
        uv_async_send(&j->wake);
        pthread_mutex_lock(&j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* ---- loop thread ---- */

static void fire_waiters(srv_jobs *j, const char *id, srv_jstate state, int all)
{
    waiter **pp = &j->waiters;
    while (*pp) {
        waiter *w = *pp;
        if (all || !strcmp(w->id, id)) {
            *pp = w->next;
            w->fn(w->user, w->id, state);
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

static srv_jstate current_state(srv_jobs *j, const char *id)
{
    srv_user admin = {.id = 0, .admin = 1};
    srv_job_row row;
    if (srv_job_row_get(j->db, id, &admin, &row, NULL)) return SRV_JOB_UNKNOWN;
    srv_job_row_free(&row);
    return row.state;
}

/* a waiter is answered once its job ended, or is gone */
static int settled(srv_jstate s) { return s == SRV_JOB_UNKNOWN || srv_jstate_terminal(s); }

static void flush_progress(srv_jobs *j)
{
    int n = j->cfg.workers;
    for (int i = 0; i < n; i++) {
        slot *s = &j->slots[i];
        char id[32], stage[32], msg[256];
        double p;
        pthread_mutex_lock(&j->mu);
        int dirty = s->state == SLOT_ASSIGNED && s->dirty;
        s->dirty = 0;
        memcpy(id, s->id, sizeof id);
        memcpy(stage, s->stage, sizeof stage);
        memcpy(msg, s->message, sizeof msg);
        p = s->progress;
        pthread_mutex_unlock(&j->mu);
        if (!dirty) continue;
        sx_status st;
        if (srv_job_progress(j->db, id, stage, p, msg[0] ? msg : NULL, &st))
            SX_WARN("job %s: %s", id, st.msg);
    }
}

static int claim_failed(srv_jobs *j, const char *id, int rc, const sx_status *st);

static void finish_slot(srv_jobs *j, slot *s)
{
    srv_jstate state;
    const char *etype = NULL, *err = NULL;
    int drained = atomic_load(&s->drain);
    if (s->rc == SX_OK) {
        state = SRV_JOB_COMPLETE;
    } else if (s->rc == SX_ECANCELED) {
        state = drained ? SRV_JOB_QUEUED : SRV_JOB_CANCELED;
    } else {
        /* input problems are the executor's (the job's) failure; resources and bugs are ours */
        state = (s->rc == SX_ENOMEM || s->rc == SX_EIO || s->rc == SX_EINTERNAL)
                    ? SRV_JOB_SYSTEM_ERROR : SRV_JOB_EXECUTOR_ERROR;
        etype = srv_error_type(s->rc);
        srv_redact_dir(s->st.msg, j->cfg.data_dir); /* the owner reads it: no server paths */
        err = s->st.msg;
    }
    flush_progress(j);
    /* count before the row changes: whoever sees the terminal state sees it counted too */
    double dt = srv_mono_s() - s->t_start;
    pthread_mutex_lock(&j->mu);
    /* srv_jobs_stats.finished order */
    int k = state == SRV_JOB_COMPLETE ? 0 : state == SRV_JOB_EXECUTOR_ERROR ? 1
          : state == SRV_JOB_SYSTEM_ERROR ? 2 : state == SRV_JOB_CANCELED ? 3 : -1;
    if (s->unrecorded) k = -1; /* counted at the first try */
    if (k >= 0) j->stats.finished[k]++;
    if (k == 0) {
        static const double le[6] = {1, 10, 60, 300, 1800, 1e300};
        j->stats.run_seconds_sum += dt;
        j->stats.run_seconds_count++;
        for (int b = 0; b < 6; b++)
            if (dt <= le[b]) j->stats.run_seconds_bucket[b]++;
    }
    pthread_mutex_unlock(&j->mu);
    sx_status st;
    int rc, recorded;
    if (drained && s->rc == SX_ECANCELED) {
        rc = srv_job_transition(j->db, s->id, NULL, srv_jstate_name(SRV_JOB_QUEUED), &st) < 0
                 ? st.code : SX_OK;
        recorded = rc == SX_OK;
    } else {
        rc = srv_job_finish(j->db, s->id, srv_jstate_name(state), etype, err, &st);
        recorded = rc == SX_OK;
        /* what the results take counts against the owner's storage (user_storage_quota) */
        if (!rc) rc = srv_job_set_result_bytes(j->db, s->id, srv_tree_bytes(s->outdir), &st);
    }
    /* An ending the registry cannot take (a full disk) stays on the slot and is written when
     * it can be (each poll, on_tick): the row must not stay RUNNING for good, and the slot
     * takes no job meanwhile. Like a failed claim, it stops dispatching visibly. */
    if (!recorded && rc == SX_EIO && !atomic_load(&j->draining)) {
        claim_failed(j, s->id, rc, &st);
        s->unrecorded = 1;
        return;
    }
    if (s->unrecorded && recorded) claim_failed(j, s->id, SX_OK, &st);
    if (rc) SX_WARN("job %s: cannot record %s: %s", s->id, srv_jstate_name(state), st.msg);
    sx_log(s->rc == SX_OK || s->rc == SX_ECANCELED ? SX_LOG_INFO : SX_LOG_WARN,
           "job %s %s after %.2f s%s%s", s->id, srv_jstate_name(state), dt, err ? ": " : "",
           err ? err : "");
    char id[32];
    memcpy(id, s->id, sizeof id);
    pthread_mutex_lock(&j->mu);
    free_slot_inputs(s);
    s->state = SLOT_IDLE;
    s->id[0] = 0;
    s->unrecorded = 0;
    atomic_store(&s->cancel, 0);
    atomic_store(&s->drain, 0);
    pthread_mutex_unlock(&j->mu);
    atomic_fetch_sub(&j->running, 1);
    fire_waiters(j, id, state, 0);
}

/* Resolve a claimed job's request into paths on the slot; on failure the job is failed. */
static int resolve_inputs(srv_jobs *j, slot *s, sx_status *st)
{
    srv_user admin = {.id = 0, .admin = 1};
    json_t *ds = json_object_get(s->request, "datasets");
    size_t n = json_array_size(ds);
    s->inputs = calloc(n ? n : 1, sizeof *s->inputs);
    s->input_sha256 = calloc(n + 1, sizeof *s->input_sha256);
    if (!s->inputs || !s->input_sha256) return sx_status_set(st, SX_ENOMEM, "out of memory");
    int all_sha = 1;
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_array_get(ds, i));
        char *rel = id ? srv_dataset_path(j->db, id, &admin, st) : NULL;
        if (!rel) return sx_status_set(st, SX_ENOTFOUND, "input dataset '%s' no longer exists: "
                                       "upload it again and resubmit", id ? id : "?");
        /* the digest recorded when the upload was stored: the job's provenance without a
         * second pass over the file (a dataset without one is hashed by the job) */
        char hex[65];
        if (srv_dataset_sha256(j->db, id, hex, st) == SX_OK) s->input_sha256[i] = strdup(hex);
        all_sha &= s->input_sha256[i] != NULL;
        char abs[4400];
        int rc = srv_layout_abs(j->data_dir, rel, abs, sizeof abs, st);
        free(rel);
        if (rc) return rc;
        if (!(s->inputs[i] = strdup(abs))) return sx_status_set(st, SX_ENOMEM, "out of memory");
        s->n_inputs++;
    }
    if (!all_sha) { /* all or none */
        for (size_t i = 0; i < n; i++) free(s->input_sha256[i]);
        free(s->input_sha256);
        s->input_sha256 = NULL;
        sx_status_clear(st);
    }
    const char *ref = json_string_value(json_object_get(s->request, "reference"));
    if (ref) {
        char *rel = srv_ref_path(j->db, ref, st);
        if (!rel) return st->code;
        char abs[4400];
        int rc = srv_layout_abs(j->data_dir, rel, abs, sizeof abs, st);
        free(rel);
        if (rc) return rc;
        if (!(s->reference = strdup(abs))) return sx_status_set(st, SX_ENOMEM, "out of memory");
        s->ref_name = strdup(ref);
        if (!s->ref_name) return sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    int rc = srv_layout_job_dir(j->data_dir, s->id, s->outdir, sizeof s->outdir, st);
    if (rc) return rc;
    /* a re-run starts from an empty folder: no half-written file of the last attempt;
     * but a unit still at a remote executor (re-attached after a restart) keeps its own */
    if (!srv_exec_keep_jobdir(j->db, s->id)) srv_rmtree(s->outdir);
    return srv_mkdirs(s->outdir, st);
}

/* A claim that could not be written stops this round of dispatching: running the job would
 * leave its row QUEUED and run it again at every poll. Said once per failing spell, counted,
 * and shown in the stats until a claim sticks again. Returns 1 when dispatching must stop. */
static int claim_failed(srv_jobs *j, const char *id, int rc, const sx_status *st)
{
    pthread_mutex_lock(&j->mu);
    int was = j->stats.registry_failing;
    j->stats.registry_failing = rc != SX_OK;
    if (rc) j->stats.registry_failures++;
    pthread_mutex_unlock(&j->mu);
    if (rc && !was)
        SX_WARN("job %s: %s; no job starts until the registry can be written again", id, st->msg);
    if (!rc && was) SX_INFO("the registry can be written again: jobs start");
    return rc != SX_OK;
}

static void dispatch(srv_jobs *j)
{
    if (atomic_load(&j->draining)) return;
    for (;;) {
        slot *free_slot = NULL;
        pthread_mutex_lock(&j->mu);
        for (int i = 0; i < j->cfg.workers && !free_slot; i++)
            if (j->slots[i].state == SLOT_IDLE) free_slot = &j->slots[i];
        pthread_mutex_unlock(&j->mu);
        if (!free_slot) return;
        sx_status st;
        char id[32];
        int r = srv_job_next_queued(j->db, id, &st);
        if (r) {
            if (r != SX_ENOTFOUND) SX_WARN("job queue: %s", st.msg);
            return;
        }
        int attempts = 0;
        char *req = NULL, type[32];
        r = srv_job_claim(j->db, id, &attempts, &req, type, &st);
        if (r == SX_ESTATE) continue; /* canceled between the two statements */
        if (claim_failed(j, id, r, &st)) return;
        slot *s = free_slot;
        /* the slot is IDLE and only this thread assigns, so filling it unlocked is safe */
        snprintf(s->id, sizeof s->id, "%s", id);
        snprintf(s->type, sizeof s->type, "%s", type);
        s->request = json_loads(req, 0, NULL);
        free(req);
        s->attempt = attempts;
        s->stage[0] = s->message[0] = 0;
        s->progress = 0;
        s->dirty = 0;
        sx_status_clear(&st);
        if (!s->request || resolve_inputs(j, s, &st)) {
            if (!st.code) sx_status_set(&st, SX_EINTERNAL, "job %s: its stored request is not JSON", id);
            srv_job_finish(j->db, id, srv_jstate_name(SRV_JOB_EXECUTOR_ERROR),
                           srv_error_type(st.code), st.msg, NULL);
            free_slot_inputs(s);
            s->id[0] = 0;
            fire_waiters(j, id, SRV_JOB_EXECUTOR_ERROR, 0);
            continue;
        }
        SX_INFO("job %s (%s) starts, attempt %d, %d threads", id, type, attempts,
                j->cfg.threads_per_job);
        s->t_start = srv_mono_s();
        atomic_fetch_add(&j->running, 1);
        pthread_mutex_lock(&j->mu);
        s->state = SLOT_ASSIGNED;
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
    }
}

static void adopt_waiters(srv_jobs *j)
{
    pthread_mutex_lock(&j->mu);
    waiter *w = j->pending;
    j->pending = NULL;
    pthread_mutex_unlock(&j->mu);
    while (w) {
        waiter *next = w->next;
        srv_jstate state = current_state(j, w->id);
        if (settled(state)) {
            w->fn(w->user, w->id, state);
            free(w);
        } else {
            w->next = j->waiters;
            j->waiters = w;
        }
        w = next;
    }
}

static void expire_waiters(srv_jobs *j)
{
    double now = srv_mono_s();
    waiter **pp = &j->waiters;
    while (*pp) {
        waiter *w = *pp;
        if (w->deadline <= now) {
            *pp = w->next;
            w->fn(w->user, w->id, current_state(j, w->id));
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

/* The jobs whose run ended (or whose ending is still to be written). */
static void finish_done(srv_jobs *j)
{
    for (int i = 0; i < j->cfg.workers; i++) {
        pthread_mutex_lock(&j->mu);
        int done = j->slots[i].state == SLOT_DONE;
        pthread_mutex_unlock(&j->mu);
        if (done) finish_slot(j, &j->slots[i]);
    }
}

static void on_wake(uv_async_t *h)
{
    srv_jobs *j = h->data;
    finish_done(j);
    adopt_waiters(j);
    pthread_mutex_lock(&j->mu);
    int quit = j->quit;
    pthread_mutex_unlock(&j->mu);
    if (quit) {
        flush_progress(j);
        fire_waiters(j, NULL, SRV_JOB_QUEUED, 1);
        uv_close((uv_handle_t *)&j->tick, NULL);
        uv_close((uv_handle_t *)&j->wake, NULL);
        return;
    }
    dispatch(j);
}

/* A registry shared with other instances (PostgreSQL): a job another instance runs ends
 * there, and a cancel of one of ours may be recorded there. Once per poll: waiters of jobs
 * that ended are answered, and our jobs whose row turned CANCELING are stopped. */
static void poll_shared(srv_jobs *j)
{
    if (srv_registry_kind(j->cfg.reg) != SRV_DB_POSTGRES) return;
    waiter **pp = &j->waiters;
    while (*pp) {
        waiter *w = *pp;
        srv_jstate state = current_state(j, w->id);
        if (settled(state)) {
            *pp = w->next;
            w->fn(w->user, w->id, state);
            free(w);
        } else {
            pp = &w->next;
        }
    }
    for (int i = 0; i < j->cfg.workers; i++) {
        char id[32] = "";
        pthread_mutex_lock(&j->mu);
        if (j->slots[i].state == SLOT_ASSIGNED && !atomic_load(&j->slots[i].cancel))
            snprintf(id, sizeof id, "%s", j->slots[i].id);
        pthread_mutex_unlock(&j->mu);
        if (!id[0]) continue;
        if (current_state(j, id) == SRV_JOB_CANCELING) srv_jobs_cancel(j, id);
    }
}

static void on_tick(uv_timer_t *t)
{
    srv_jobs *j = t->data;
    flush_progress(j);
    expire_waiters(j);
    double now = srv_mono_s();
    if (now - j->last_poll >= j->cfg.poll_s) {
        j->last_poll = now;
        finish_done(j); /* endings a full disk kept from the registry */
        dispatch(j); /* rows inserted by another process, or a missed wake-up */
        poll_shared(j);
    }
}

static void *loop_main(void *arg)
{
    srv_jobs *j = arg;
    dispatch(j);
    uv_run(&j->loop, UV_RUN_DEFAULT);
    return NULL;
}

srv_jobs *srv_jobs_start(const srv_jobs_config *cfg, sx_status *st)
{
    srv_jobs *j = calloc(1, sizeof *j);
    if (!j) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    j->cfg = *cfg;
    if (j->cfg.workers < 1) j->cfg.workers = 1;
    if (j->cfg.threads_per_job < 1) j->cfg.threads_per_job = 1;
    if (j->cfg.poll_s <= 0) j->cfg.poll_s = 1;
    j->data_dir = strdup(cfg->data_dir);
    j->slots = calloc((size_t)j->cfg.workers, sizeof *j->slots);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->stats.workers = j->cfg.workers;
    if (!j->data_dir || !j->slots) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    j->db = srv_registry_get(cfg->reg, st);
    if (!j->db) goto fail;
    if (uv_loop_init(&j->loop)) {
        sx_status_set(st, SX_EINTERNAL, "cannot create the job loop");
        goto fail;
    }
    uv_async_init(&j->loop, &j->wake, on_wake);
    j->wake.data = j;
    uv_timer_init(&j->loop, &j->tick);
    j->tick.data = j;
    uv_timer_start(&j->tick, on_tick, 100, 100);
    for (int i = 0; i < j->cfg.workers; i++) {
        j->slots[i].owner = j;
        if (pthread_create(&j->slots[i].thread, NULL, worker_main, &j->slots[i]) != 0) {
            sx_status_set(st, SX_EINTERNAL, "cannot start worker thread %d", i);
            goto fail;
        }
        j->slots[i].started = 1;
    }
    if (pthread_create(&j->loop_thread, NULL, loop_main, j) != 0) {
        sx_status_set(st, SX_EINTERNAL, "cannot start the job loop thread");
        goto fail;
    }
    return j;
fail:
    /* only reached before the loop thread exists */
    pthread_mutex_lock(&j->mu);
    j->quit = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    for (int i = 0; j->slots && i < j->cfg.workers; i++)
        if (j->slots[i].started) pthread_join(j->slots[i].thread, NULL);
    if (j->db) srv_registry_put(cfg->reg, j->db);
    free(j->slots);
    free(j->data_dir);
    free(j);
    return NULL;
}

void srv_jobs_notify(srv_jobs *j) { uv_async_send(&j->wake); }

int srv_jobs_cancel(srv_jobs *j, const char *id)
{
    int found = 0;
    pthread_mutex_lock(&j->mu);
    for (int i = 0; i < j->cfg.workers; i++) {
        slot *s = &j->slots[i];
        if (s->state == SLOT_ASSIGNED && !strcmp(s->id, id)) {
            atomic_store(&s->cancel, 1);
            found = 1;
        }
    }
    pthread_mutex_unlock(&j->mu);
    return found;
}

int srv_jobs_wait(srv_jobs *j, const char *id, double timeout_s, srv_job_wait_fn fn, void *user)
{
    waiter *w = calloc(1, sizeof *w);
    if (!w) return SX_ENOMEM;
    snprintf(w->id, sizeof w->id, "%s", id);
    w->deadline = srv_mono_s() + timeout_s;
    w->fn = fn;
    w->user = user;
    pthread_mutex_lock(&j->mu);
    w->next = j->pending;
    j->pending = w;
    pthread_mutex_unlock(&j->mu);
    uv_async_send(&j->wake);
    return SX_OK;
}

struct srv_refcache *srv_jobs_refcache(srv_jobs *j) { return j ? j->cfg.refs : NULL; }

void srv_jobs_get_stats(srv_jobs *j, srv_jobs_stats *s)
{
    pthread_mutex_lock(&j->mu);
    *s = j->stats;
    pthread_mutex_unlock(&j->mu);
    s->running = atomic_load(&j->running);
}

void srv_jobs_stop(srv_jobs *j, double grace_s)
{
    if (!j) return;
    atomic_store(&j->draining, 1);
    double t0 = srv_mono_s();
    while (atomic_load(&j->running) > 0 && srv_mono_s() - t0 < grace_s) usleep(20000);
    int stuck = 0;
    if (atomic_load(&j->running) > 0) {
        SX_WARN("drain: %d job(s) still running after %.0f s: canceling them, they will be "
                "re-queued", atomic_load(&j->running), grace_s);
        pthread_mutex_lock(&j->mu);
        for (int i = 0; i < j->cfg.workers; i++) {
            if (j->slots[i].state != SLOT_ASSIGNED) continue;
            atomic_store(&j->slots[i].drain, 1);
            atomic_store(&j->slots[i].cancel, 1);
        }
        pthread_mutex_unlock(&j->mu);
        double t1 = srv_mono_s();
        while (atomic_load(&j->running) > 0 && srv_mono_s() - t1 < 30) usleep(20000);
        stuck = atomic_load(&j->running) > 0;
    }
    pthread_mutex_lock(&j->mu);
    j->quit = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    uv_async_send(&j->wake);
    pthread_join(j->loop_thread, NULL);
    uv_loop_close(&j->loop);
    for (int i = 0; i < j->cfg.workers; i++) {
        slot *s = &j->slots[i];
        if (s->state == SLOT_ASSIGNED) {
            /* a job that ignores its cancel flag: record it re-queued and leave the thread */
            srv_job_transition(j->db, s->id, NULL, srv_jstate_name(SRV_JOB_QUEUED), NULL);
            pthread_detach(s->thread);
            continue;
        }
        pthread_join(s->thread, NULL);
        free_slot_inputs(s);
    }
    srv_registry_put(j->cfg.reg, j->db);
    if (stuck) return; /* the process is about to exit; a detached worker may still use j */
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->slots);
    free(j->data_dir);
    free(j);
}
