/* The job runner with a fake job function (unit tests only): completion with progress,
 * failures mapped to states, cancel, waiters, the worker bound, and drain re-queueing. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv_db.h"
#include "srv_jobs.h"
#include "srv_util.h"
#include "sx_test.h"

typedef struct fake {
    atomic_int running, max_running, calls;
    int threads_seen;
} fake;

/* behaviour by the job's first input name: "ok", "genes", "forever" */
static int fake_run(void *user, const srv_job_run *run, const sx_progress *prog, sx_status *st)
{
    fake *f = user;
    atomic_fetch_add(&f->calls, 1);
    int now = atomic_fetch_add(&f->running, 1) + 1;
    int prev = atomic_load(&f->max_running);
    while (now > prev && !atomic_compare_exchange_weak(&f->max_running, &prev, now)) {}
    f->threads_seen = run->threads;
    int rc = SX_OK;
    const char *what = run->n_inputs ? strrchr(run->inputs[0], '/') + 1 : "ok";
    if (!strncmp(what, "forever", 7)) {
        for (int i = 0; i < 3000 && !sx_progress_cancelled(prog); i++) {
            sx_progress_report(prog, "train", i / 3000.0, "epoch");
            usleep(2000);
        }
        rc = sx_progress_cancelled(prog) ? sx_status_set(st, SX_ECANCELED, "canceled") : SX_OK;
    } else if (!strncmp(what, "genes", 5)) {
        rc = sx_status_set(st, SX_EGENES, "only 2 of 2000 reference genes in the query");
    } else {
        sx_progress_report(prog, "read", 1, NULL);
        sx_progress_report(prog, "train", 0.5, "epoch 5/10");
        usleep(150000);
        char p[4200];
        snprintf(p, sizeof p, "%s/result.json", run->outdir);
        srv_write_file_atomic(p, "{}", 2, st);
    }
    atomic_fetch_sub(&f->running, 1);
    return rc;
}

typedef struct env {
    srv_registry *reg;
    srv_db *db;
    srv_jobs *jobs;
    fake f;
    srv_user u;
    const char *dir;
} env;

static void env_start(env *e, int workers)
{
    sx_status st;
    memset(e, 0, sizeof *e);
    e->dir = sx_test_tmpdir();
    e->reg = srv_registry_open(e->dir, &st);
    ck_assert_msg(e->reg, "%s", st.msg);
    e->db = srv_registry_get(e->reg, &st);
    srv_user_ensure(e->db, "u", 0, &e->u, &st);
    const char *names[] = {"ok", "genes", "forever1", "forever2", "forever3"};
    for (int i = 0; i < 5; i++) {
        srv_dataset_rec d = {.owner = e->u.id, .name = names[i], .format = "h5ad",
                             .sha256 = "00", .size_bytes = 1, .n_obs = 1, .n_vars = 1};
        char path[64];
        snprintf(path, sizeof path, "datasets/%s", names[i]);
        d.path = path;
        snprintf(d.id, sizeof d.id, "ds_%s", names[i]);
        ck_assert_int_eq(srv_dataset_insert(e->db, &d, &st), SX_OK);
    }
    srv_jobs_config c = {.reg = e->reg, .data_dir = e->dir, .workers = workers,
                         .threads_per_job = 3, .fn = fake_run, .fn_user = &e->f, .poll_s = 0.2};
    e->jobs = srv_jobs_start(&c, &st);
    ck_assert_msg(e->jobs, "%s", st.msg);
}

static void env_stop(env *e, double grace)
{
    srv_jobs_stop(e->jobs, grace);
    srv_registry_put(e->reg, e->db);
    srv_registry_close(e->reg);
}

static void submit(env *e, const char *id, const char *input)
{
    sx_status st;
    char req[128];
    snprintf(req, sizeof req, "{\"datasets\":[\"ds_%s\"],\"options\":{}}", input);
    ck_assert_int_eq(srv_job_insert(e->db, id, e->u.id, "integrate", req, &st), SX_OK);
    srv_jobs_notify(e->jobs);
}

static const char *state_of(env *e, const char *id, char buf[16])
{
    sx_status st;
    ck_assert_int_eq(srv_job_state(e->db, id, &e->u, buf, NULL, &st), SX_OK);
    return buf;
}

static void wait_state(env *e, const char *id, const char *want, double timeout)
{
    char s[16];
    double t0 = srv_mono_s();
    while (strcmp(state_of(e, id, s), want) && srv_mono_s() - t0 < timeout) usleep(20000);
    ck_assert_msg(!strcmp(s, want), "job %s is %s, expected %s", id, s, want);
}

START_TEST(complete_and_fail)
{
    env e;
    env_start(&e, 1);
    submit(&e, "job_ok", "ok");
    submit(&e, "job_genes", "genes");
    wait_state(&e, "job_ok", "COMPLETE", 10);
    wait_state(&e, "job_genes", "EXECUTOR_ERROR", 10);
    sx_status st;
    json_t *j = srv_job_get(e.db, "job_ok", &e.u, &st);
    ck_assert_double_eq(json_real_value(json_object_get(j, "progress")), 1.0);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "attempts")), 1);
    ck_assert_ptr_nonnull(json_object_get(json_object_get(j, "timings"), "run_seconds"));
    json_decref(j);
    char p[600];
    snprintf(p, sizeof p, "%s/jobs/job_ok/result.json", e.dir);
    ck_assert(srv_file_exists(p));
    j = srv_job_get(e.db, "job_genes", &e.u, &st);
    json_t *err = json_object_get(j, "error");
    ck_assert_str_eq(json_string_value(json_object_get(err, "type")), "gene-mismatch");
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(err, "detail")), "2 of 2000"));
    json_decref(j);
    ck_assert_int_eq(e.f.threads_seen, 3);
    srv_jobs_stats s;
    srv_jobs_get_stats(e.jobs, &s);
    ck_assert_int_eq(s.finished[0], 1);
    ck_assert_int_eq(s.finished[1], 1);
    env_stop(&e, 1);
}
END_TEST

START_TEST(progress_visible_while_running)
{
    env e;
    env_start(&e, 1);
    submit(&e, "job_f", "forever1");
    wait_state(&e, "job_f", "RUNNING", 10);
    usleep(400000);
    sx_status st;
    json_t *j = srv_job_get(e.db, "job_f", &e.u, &st);
    double p = json_real_value(json_object_get(j, "progress"));
    ck_assert_str_eq(json_string_value(json_object_get(j, "stage")), "train");
    ck_assert(p > 0.1 && p < 0.8); /* inside the train slice */
    json_decref(j);
    /* cancel: the row says CANCELING, the worker stops, the runner writes CANCELED */
    ck_assert_int_eq(srv_job_transition(e.db, "job_f", "RUNNING", "CANCELING", &st), 1);
    ck_assert_int_eq(srv_jobs_cancel(e.jobs, "job_f"), 1);
    wait_state(&e, "job_f", "CANCELED", 10);
    env_stop(&e, 1);
}
END_TEST

static void on_wait(void *user, const char *id, srv_jstate state)
{
    char *out = user;
    snprintf(out, 16, "%s", srv_jstate_name(state));
    (void)id;
}

START_TEST(waiters)
{
    env e;
    env_start(&e, 1);
    char got1[16] = "", got2[16] = "";
    submit(&e, "job_ok", "ok");
    ck_assert_int_eq(srv_jobs_wait(e.jobs, "job_ok", 30, on_wait, got1), SX_OK);
    double t0 = srv_mono_s();
    while (!got1[0] && srv_mono_s() - t0 < 10) usleep(10000);
    ck_assert_str_eq(got1, "COMPLETE");
    ck_assert(srv_mono_s() - t0 < 5); /* woken by completion, not by the 30 s timeout */
    submit(&e, "job_f", "forever1");
    ck_assert_int_eq(srv_jobs_wait(e.jobs, "job_f", 0.3, on_wait, got2), SX_OK);
    t0 = srv_mono_s();
    while (!got2[0] && srv_mono_s() - t0 < 10) usleep(10000);
    ck_assert(!strcmp(got2, "RUNNING") || !strcmp(got2, "INITIALIZING") || !strcmp(got2, "QUEUED"));
    env_stop(&e, 0.1);
}
END_TEST

START_TEST(worker_bound_and_drain)
{
    env e;
    env_start(&e, 2);
    submit(&e, "job_1", "forever1");
    submit(&e, "job_2", "forever2");
    submit(&e, "job_3", "forever3");
    wait_state(&e, "job_1", "RUNNING", 10);
    wait_state(&e, "job_2", "RUNNING", 10);
    usleep(300000);
    char s[16];
    ck_assert_str_eq(state_of(&e, "job_3", s), "QUEUED"); /* 2 workers: the third waits */
    ck_assert_int_eq(atomic_load(&e.f.max_running), 2);
    /* drain with a short grace: running jobs are canceled and recorded QUEUED again */
    srv_registry *reg = e.reg;
    srv_db *db = e.db;
    srv_jobs_stop(e.jobs, 0.2);
    srv_user u = e.u;
    ck_assert_int_eq(srv_job_state(db, "job_1", &u, s, NULL, NULL), SX_OK);
    ck_assert_str_eq(s, "QUEUED");
    ck_assert_int_eq(srv_job_state(db, "job_2", &u, s, NULL, NULL), SX_OK);
    ck_assert_str_eq(s, "QUEUED");
    ck_assert_int_eq(srv_job_state(db, "job_3", &u, s, NULL, NULL), SX_OK);
    ck_assert_str_eq(s, "QUEUED");
    srv_registry_put(reg, db);
    srv_registry_close(reg);
}
END_TEST

/* A claim whose write fails when the statement ends (as SQLITE_FULL does on a full disk,
 * after RETURNING gave the row): the job must not run, the failure shows in the stats, and
 * once the registry can be written again the job runs, once. The late failure is made with
 * a deferred foreign key that the claim's UPDATE breaks through a trigger. */
START_TEST(failed_claim_stops_dispatch)
{
    env e;
    env_start(&e, 1);
    sx_status st;
    ck_assert_int_eq(srv_db_exec(e.db, "CREATE TABLE guard_parent(id TEXT PRIMARY KEY); "
                                       "CREATE TABLE guard(p TEXT REFERENCES guard_parent(id) "
                                       "DEFERRABLE INITIALLY DEFERRED); "
                                       "CREATE TRIGGER no_room AFTER UPDATE OF state ON jobs "
                                       "WHEN NEW.state = 'INITIALIZING' BEGIN "
                                       "INSERT INTO guard VALUES('x'); END", &st), SX_OK);
    submit(&e, "job_ok", "ok");
    srv_jobs_stats s;
    double t0 = srv_mono_s();
    do {
        usleep(20000);
        srv_jobs_get_stats(e.jobs, &s);
    } while (!s.registry_failing && srv_mono_s() - t0 < 10);
    ck_assert_int_eq(s.registry_failing, 1);
    usleep(500000); /* a few polls: the runner retries the claim, never the job */
    ck_assert_int_eq(atomic_load(&e.f.calls), 0);
    char buf[16];
    ck_assert_str_eq(state_of(&e, "job_ok", buf), "QUEUED");
    ck_assert_int_eq(srv_db_exec(e.db, "DROP TRIGGER no_room", &st), SX_OK);
    wait_state(&e, "job_ok", "COMPLETE", 10);
    srv_jobs_get_stats(e.jobs, &s);
    ck_assert_int_eq(s.registry_failing, 0);
    ck_assert_int_ge(s.registry_failures, 1);
    ck_assert_int_eq(atomic_load(&e.f.calls), 1);
    env_stop(&e, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server_jobs");
    TCase *tc = tcase_create("jobs");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, complete_and_fail);
    tcase_add_test(tc, progress_visible_while_running);
    tcase_add_test(tc, waiters);
    tcase_add_test(tc, worker_bound_and_drain);
    tcase_add_test(tc, failed_claim_stops_dispatch);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
