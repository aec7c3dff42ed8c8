/* The daemon's use cases called directly (srv_service.h), no HTTP: storing an upload (and
 * undoing the move when the row cannot be written), the quota transaction of a submit, the
 * cancel state machine from every state, registering a reference, and map. The engine is a
 * fake (as in test_jobs.c): uploads are judged by their first bytes, jobs by their inputs. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "srv_layout.h"
#include "srv_service.h"
#include "srv_util.h"
#include "sx_test.h"

/* ---- the fake engine ---- */

/* "good..." is a dataset with a label column and a batch column; "big..." is over a limit;
 * anything else is refused with a message naming the file (as the readers do). */
static int fake_validate(void *user, const char *path, srv_dataset_info *info, sx_status *st)
{
    (void)user;
    char head[8] = "";
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(head, 1, sizeof head - 1, f);
        head[n] = 0;
        fclose(f);
    }
    if (!strncmp(head, "big", 3)) return sx_status_set(st, SX_ELIMIT, "too many cells");
    if (strncmp(head, "good", 4))
        return sx_status_set(st, SX_EFORMAT, "%s: not a matrix (line 1)", path);
    snprintf(info->format, sizeof info->format, "csv");
    snprintf(info->ext, sizeof info->ext, "csv");
    info->n_obs = 100;
    info->n_vars = 50;
    info->obs_columns = strdup("[{\"name\":\"cell_type\",\"kind\":\"categorical\",\"n_categories\":3},"
                               "{\"name\":\"Batch\",\"kind\":\"categorical\",\"n_categories\":2},"
                               "{\"name\":\"barcode\",\"kind\":\"categorical\",\"n_categories\":100}]");
    return SX_OK;
}

static int fake_check_options(void *user, const json_t *opts, sx_status *st)
{
    (void)user;
    if (json_object_get(opts, "bad")) return sx_status_set(st, SX_EINVAL, "'bad' is out of range");
    return SX_OK;
}

typedef struct fake_runs {
    atomic_int runs;
    char reference[4400]; /* the reference path the last job was given */
} fake_runs;

/* "forever": until canceled; else writes reference.h5 (so an integrate job can become a
 * reference) and succeeds */
static int fake_run(void *user, const srv_job_run *run, const sx_progress *prog, sx_status *st)
{
    fake_runs *f = user;
    atomic_fetch_add(&f->runs, 1);
    if (run->reference) snprintf(f->reference, sizeof f->reference, "%s", run->reference);
    char p[4400];
    snprintf(p, sizeof p, "%s", run->n_inputs ? run->inputs[0] : "");
    FILE *in = fopen(p, "r");
    char head[16] = "";
    if (in) {
        head[fread(head, 1, sizeof head - 1, in)] = 0;
        fclose(in);
    }
    if (strstr(head, "forever")) {
        while (!sx_progress_cancelled(prog)) { /* the first report makes it RUNNING */
            sx_progress_report(prog, "train", 0.5, "epoch");
            usleep(2000);
        }
        return sx_status_set(st, SX_ECANCELED, "canceled");
    }
    snprintf(p, sizeof p, "%s/reference.h5", run->outdir);
    return srv_write_file_atomic(p, "h5", 2, st);
}

typedef struct env {
    const char *dir;
    srv_registry *reg;
    srv_jobs *jobs;
    srv_engine eng;
    fake_runs f;
    atomic_int draining;
    srv_service svc;
    srv_user alice, bob, root;
} env;

/* runner: start the job runner (else jobs stay where the test puts them) */
static void env_start(env *e, int runner)
{
    memset(e, 0, sizeof *e);
    sx_status st;
    e->dir = sx_test_tmpdir();
    e->reg = srv_registry_open(e->dir, &st);
    ck_assert_msg(e->reg, "%s", st.msg);
    srv_db *db = srv_registry_get(e->reg, &st);
    ck_assert_int_eq(srv_user_ensure(db, "alice", 0, &e->alice, &st), SX_OK);
    ck_assert_int_eq(srv_user_ensure(db, "bob", 0, &e->bob, &st), SX_OK);
    ck_assert_int_eq(srv_user_ensure(db, "root", 1, &e->root, &st), SX_OK);
    srv_registry_put(e->reg, db);
    e->eng = (srv_engine){.run = fake_run, .user = &e->f, .validate = fake_validate,
                          .check_options = fake_check_options, .label_option = "label"};
    if (runner) {
        srv_jobs_config c = {.reg = e->reg, .data_dir = e->dir, .workers = 1, .threads_per_job = 1,
                             .fn = fake_run, .fn_user = &e->f, .poll_s = 0.1};
        e->jobs = srv_jobs_start(&c, &st);
        ck_assert_msg(e->jobs, "%s", st.msg);
    }
    e->svc = (srv_service){.reg = e->reg, .jobs = e->jobs, .eng = &e->eng, .data_dir = e->dir,
                           .user_max_jobs = 2, .queue_cap = 3, .draining = &e->draining,
                           .publish_everyone = 1};
}

static void env_stop(env *e)
{
    if (e->jobs) srv_jobs_stop(e->jobs, 1);
    srv_registry_close(e->reg);
}

/* write a spool file with these bytes, as the HTTP edge leaves an upload */
static const char *spool(env *e, const char *name, const char *bytes)
{
    static char p[8][4400];
    static int k;
    char *out = p[k++ & 7];
    snprintf(out, 4400, "%s/spool", e->dir);
    srv_mkdirs(out, NULL);
    snprintf(out, 4400, "%s/spool/%s.part", e->dir, name);
    sx_status st;
    ck_assert_int_eq(srv_write_file_atomic(out, bytes, strlen(bytes), &st), SX_OK);
    return out;
}

static void store(env *e, const srv_user *u, const char *bytes, char id[32])
{
    srv_upload up = {.spool_path = spool(e, "up", bytes), .sha256 = "ab", .bytes = 10};
    sx_status st;
    srv_why why;
    ck_assert_int_eq(srv_service_dataset_store(&e->svc, u, &up, id, NULL, &why, &st), SX_OK);
}

static int count_entries(const char *dir)
{
    char cmd[4500];
    snprintf(cmd, sizeof cmd, "ls -A '%s' 2>/dev/null | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p && fscanf(p, "%d", &n) != 1) n = -1;
    if (p) pclose(p);
    return n;
}

static srv_jstate state_of(env *e, const char *id)
{
    srv_job_outcome out;
    sx_status st;
    srv_service_job_outcome(&e->svc, &e->alice, id, &out, NULL, &st);
    return out.state;
}

static void wait_state(env *e, const char *id, srv_jstate want)
{
    double t0 = srv_mono_s();
    while (state_of(e, id) != want && srv_mono_s() - t0 < 30) usleep(10000);
    ck_assert_msg(state_of(e, id) == want, "job %s is %s, expected %s", id,
                  srv_jstate_name(state_of(e, id)), srv_jstate_name(want));
}

/* ---- tests ---- */

START_TEST(upload_store)
{
    env e;
    env_start(&e, 0);
    sx_status st;
    srv_why why;
    char id[32], fmt[32], p[4400];
    /* a good upload: moved into the data dir, recorded, the spool file gone */
    const char *sp = spool(&e, "a", "good data");
    srv_upload up = {.spool_path = sp, .name = "pancreas", .sha256 = "ab", .bytes = 9};
    ck_assert_int_eq(srv_service_dataset_store(&e.svc, &e.alice, &up, id, fmt, &why, &st), SX_OK);
    ck_assert_str_eq(fmt, "csv");
    ck_assert(!srv_file_exists(sp));
    snprintf(p, sizeof p, "%s/datasets/%s.csv", e.dir, id);
    ck_assert(srv_file_exists(p));
    json_t *j = srv_service_dataset_get(&e.svc, &e.alice, id, &why, &st);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "pancreas");
    json_decref(j);
    /* another user does not see it */
    ck_assert_ptr_null(srv_service_dataset_get(&e.svc, &e.bob, id, &why, &st));
    ck_assert_int_eq(why, SRV_WHY_NO_DATASET);
    /* refused content: the readers' message, without the spool path; nothing stored */
    sp = spool(&e, "b", "junk");
    up.spool_path = sp;
    ck_assert_int_eq(srv_service_dataset_store(&e.svc, &e.alice, &up, id, NULL, &why, &st),
                     SX_EFORMAT);
    ck_assert_int_eq(why, SRV_WHY_BAD_UPLOAD);
    ck_assert_ptr_null(strstr(st.msg, e.dir));
    ck_assert_ptr_nonnull(strstr(st.msg, "the upload"));
    up.spool_path = spool(&e, "c", "big data");
    ck_assert_int_eq(srv_service_dataset_store(&e.svc, &e.alice, &up, id, NULL, &why, &st),
                     SX_ELIMIT);
    ck_assert_int_eq(why, SRV_WHY_BAD_UPLOAD);
    snprintf(p, sizeof p, "%s/datasets", e.dir);
    ck_assert_int_eq(count_entries(p), 1);
    /* the row cannot be written (a full disk, say): the moved file is removed again */
    srv_db *db = srv_registry_get(e.reg, &st);
    ck_assert_int_eq(srv_db_exec(db, "CREATE TRIGGER no_room BEFORE INSERT ON datasets BEGIN "
                                     "SELECT RAISE(ABORT, 'database or disk is full'); END", &st),
                     SX_OK);
    srv_registry_put(e.reg, db);
    up.spool_path = spool(&e, "d", "good again");
    ck_assert_int_ne(srv_service_dataset_store(&e.svc, &e.alice, &up, id, NULL, &why, &st), SX_OK);
    ck_assert_int_eq(count_entries(p), 1);
    /* delete: row and file */
    db = srv_registry_get(e.reg, &st);
    srv_db_exec(db, "DROP TRIGGER no_room", &st);
    srv_registry_put(e.reg, db);
    json_t *a = srv_service_dataset_list(&e.svc, &e.alice, 0, 10, &(int){0}, &why, &st);
    const char *first = json_string_value(json_object_get(json_array_get(a, 0), "id"));
    snprintf(id, sizeof id, "%s", first);
    json_decref(a);
    ck_assert_int_eq(srv_service_dataset_delete(&e.svc, &e.bob, id, &why, &st), SX_ENOTFOUND);
    ck_assert_int_eq(why, SRV_WHY_NO_DATASET);
    ck_assert_int_eq(srv_service_dataset_delete(&e.svc, &e.alice, id, &why, &st), SX_OK);
    ck_assert_int_eq(count_entries(p), 0);
    env_stop(&e);
}
END_TEST

static json_t *integrate_request(const char *ds)
{
    json_t *r = json_pack("{s:s, s:[s], s:{}}", "type", "integrate", "datasets", ds, "options");
    ck_assert_ptr_nonnull(r);
    return r;
}

START_TEST(submit_and_quota)
{
    env e;
    env_start(&e, 0); /* no runner: jobs stay QUEUED */
    sx_status st;
    srv_why why;
    char ds_a[32], ds_b[32], id[32];
    store(&e, &e.alice, "good a", ds_a);
    store(&e, &e.bob, "good b", ds_b);
    /* checks that need the registry */
    json_t *none = json_pack("[s]", "ds_0000000000000000");
    ck_assert_int_eq(srv_service_job_check(&e.svc, &e.alice, none, NULL, NULL, &why, &st),
                     SX_ENOTFOUND);
    ck_assert_int_eq(why, SRV_WHY_NO_DATASET);
    json_decref(none);
    json_t *theirs = json_pack("[s]", ds_b);
    ck_assert_int_eq(srv_service_job_check(&e.svc, &e.alice, theirs, NULL, NULL, &why, &st),
                     SX_ENOTFOUND);
    json_decref(theirs);
    json_t *mine = json_pack("[s]", ds_a);
    ck_assert_int_eq(srv_service_job_check(&e.svc, &e.alice, mine, "atlas", NULL, &why, &st),
                     SX_ENOTFOUND);
    ck_assert_int_eq(why, SRV_WHY_NO_REFERENCE);
    json_t *bad = json_pack("{s:i}", "bad", 1);
    ck_assert_int_eq(srv_service_job_check(&e.svc, &e.alice, mine, NULL, bad, &why, &st),
                     SX_EINVAL);
    ck_assert_int_eq(why, SRV_WHY_BAD_OPTIONS);
    json_decref(bad);
    ck_assert_int_eq(srv_service_job_check(&e.svc, &e.alice, mine, NULL, NULL, &why, &st), SX_OK);
    json_decref(mine);
    /* quota: 2 unfinished jobs per user, 3 queued in all */
    json_t *ra = integrate_request(ds_a), *rb = integrate_request(ds_b), *view = NULL;
    ck_assert_int_eq(srv_service_job_submit(&e.svc, &e.alice, "integrate", ra, id, &view, &why,
                                            &st), SX_OK);
    ck_assert_str_eq(json_string_value(json_object_get(view, "state")), "QUEUED");
    json_decref(view);
    ck_assert_int_eq(srv_service_job_submit(&e.svc, &e.alice, "integrate", ra, id, NULL, &why,
                                            &st), SX_OK);
    ck_assert_int_eq(srv_service_job_submit(&e.svc, &e.alice, "integrate", ra, id, NULL, &why,
                                            &st), SX_ELIMIT);
    ck_assert_int_eq(why, SRV_WHY_USER_QUOTA);
    char bobs[32];
    ck_assert_int_eq(srv_service_job_submit(&e.svc, &e.bob, "integrate", rb, bobs, NULL, &why,
                                            &st), SX_OK);
    ck_assert_int_eq(srv_service_job_submit(&e.svc, &e.bob, "integrate", rb, id, NULL, &why, &st),
                     SX_ELIMIT);
    ck_assert_int_eq(why, SRV_WHY_QUEUE_FULL);
    /* a canceled job frees its place */
    ck_assert_int_eq(srv_service_job_cancel(&e.svc, &e.bob, bobs, NULL, &why, &st), SX_OK);
    ck_assert_int_eq(srv_service_job_submit(&e.svc, &e.bob, "integrate", rb, id, NULL, &why, &st),
                     SX_OK);
    int more = 0;
    json_t *l = srv_service_job_list(&e.svc, &e.alice, SRV_JOB_QUEUED, 0, 10, &more, &why, &st);
    ck_assert_int_eq(json_array_size(l), 2);
    json_decref(l);
    /* draining: nothing new */
    atomic_store(&e.draining, 1);
    ck_assert_int_eq(srv_service_job_submit(&e.svc, &e.bob, "integrate", rb, id, NULL, &why, &st),
                     SX_ESTATE);
    ck_assert_int_eq(why, SRV_WHY_DRAINING);
    json_decref(ra);
    json_decref(rb);
    env_stop(&e);
}
END_TEST

/* A delete that lands between a submit's checks and its insert wins; the submit gets
 * SX_ESTATE instead of queueing a job whose input is gone (issue 14's race, made
 * deterministic by calling the two halves of a submit around the delete). */
START_TEST(delete_during_submit)
{
    env e;
    env_start(&e, 0);
    sx_status st;
    srv_why why;
    char ds[32], id[32] = "";
    store(&e, &e.alice, "good", ds);
    json_t *rq = integrate_request(ds);
    ck_assert_int_eq(srv_service_job_check(&e.svc, &e.alice, json_object_get(rq, "datasets"), NULL,
                                           NULL, &why, &st), SX_OK);
    ck_assert_int_eq(srv_service_dataset_delete(&e.svc, &e.alice, ds, &why, &st), SX_OK);
    ck_assert_int_eq(srv_service_job_submit(&e.svc, &e.alice, "integrate", rq, id, NULL, &why,
                                            &st), SX_ESTATE);
    ck_assert_int_eq(why, SRV_WHY_WRONG_STATE);
    ck_assert_str_eq(id, "");
    /* and the other order: the job is in, the delete is refused */
    store(&e, &e.alice, "good", ds);
    json_decref(rq);
    rq = integrate_request(ds);
    ck_assert_int_eq(srv_service_job_submit(&e.svc, &e.alice, "integrate", rq, id, NULL, &why,
                                            &st), SX_OK);
    ck_assert_int_eq(srv_service_dataset_delete(&e.svc, &e.alice, ds, &why, &st), SX_ESTATE);
    ck_assert_int_eq(why, SRV_WHY_WRONG_STATE);
    json_decref(rq);
    env_stop(&e);
}
END_TEST

/* put job id into state `to` the way the runner does, from QUEUED */
static void force_state(env *e, const char *id, srv_jstate to)
{
    sx_status st;
    srv_db *db = srv_registry_get(e->reg, &st);
    if (srv_jstate_terminal(to))
        ck_assert_int_eq(srv_job_finish(db, id, srv_jstate_name(to), NULL, NULL, &st), SX_OK);
    else if (to != SRV_JOB_QUEUED)
        ck_assert_int_eq(srv_job_move(db, id, SRV_JOB_QUEUED, to, &st), SX_OK);
    srv_registry_put(e->reg, db);
}

START_TEST(cancel_each_state)
{
    env e;
    env_start(&e, 0);
    e.svc.user_max_jobs = e.svc.queue_cap = 100;
    sx_status st;
    srv_why why;
    char ds[32];
    store(&e, &e.alice, "good", ds);
    json_t *rq = integrate_request(ds);
    static const struct {
        srv_jstate from, now;
        int rc;
    } cases[] = {
        {SRV_JOB_QUEUED, SRV_JOB_CANCELED, SX_OK},
        {SRV_JOB_INITIALIZING, SRV_JOB_CANCELING, SX_OK},
        {SRV_JOB_RUNNING, SRV_JOB_CANCELING, SX_OK},
        {SRV_JOB_CANCELING, SRV_JOB_CANCELING, SX_OK},
        {SRV_JOB_CANCELED, SRV_JOB_CANCELED, SX_OK},
        {SRV_JOB_COMPLETE, SRV_JOB_COMPLETE, SX_ESTATE},
        {SRV_JOB_EXECUTOR_ERROR, SRV_JOB_EXECUTOR_ERROR, SX_ESTATE},
        {SRV_JOB_SYSTEM_ERROR, SRV_JOB_SYSTEM_ERROR, SX_ESTATE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char id[32];
        ck_assert_int_eq(srv_service_job_submit(&e.svc, &e.alice, "integrate", rq, id, NULL, &why,
                                                &st), SX_OK);
        force_state(&e, id, cases[i].from);
        /* invisible to another user */
        ck_assert_int_eq(srv_service_job_cancel(&e.svc, &e.bob, id, NULL, &why, &st),
                         SX_ENOTFOUND);
        ck_assert_int_eq(why, SRV_WHY_NO_JOB);
        srv_jstate now = SRV_JOB_UNKNOWN;
        ck_assert_msg(srv_service_job_cancel(&e.svc, &e.alice, id, &now, &why, &st) == cases[i].rc,
                      "cancel from %s: %s", srv_jstate_name(cases[i].from), st.msg);
        ck_assert_msg(now == cases[i].now, "cancel from %s left %s", srv_jstate_name(cases[i].from),
                      srv_jstate_name(now));
        ck_assert_int_eq(state_of(&e, id), cases[i].now);
        if (cases[i].rc) ck_assert_int_eq(why, SRV_WHY_FINISHED);
    }
    json_decref(rq);
    env_stop(&e);
}
END_TEST

START_TEST(cancel_running_job)
{
    env e;
    env_start(&e, 1);
    sx_status st;
    srv_why why;
    char ds[32], id[32];
    store(&e, &e.alice, "good forever", ds);
    json_t *rq = integrate_request(ds);
    ck_assert_int_eq(srv_service_job_submit(&e.svc, &e.alice, "integrate", rq, id, NULL, &why, &st),
                     SX_OK);
    wait_state(&e, id, SRV_JOB_RUNNING);
    srv_jstate now;
    ck_assert_int_eq(srv_service_job_cancel(&e.svc, &e.alice, id, &now, &why, &st), SX_OK);
    ck_assert_int_eq(now, SRV_JOB_CANCELING);
    wait_state(&e, id, SRV_JOB_CANCELED); /* the worker saw the flag */
    json_decref(rq);
    env_stop(&e);
}
END_TEST

static void on_end(void *user, const char *id, srv_jstate state)
{
    (void)id;
    atomic_store((atomic_int *)user, (int)state + 100);
}

START_TEST(reference_and_map)
{
    env e;
    env_start(&e, 1);
    sx_status st;
    srv_why why;
    char ds[32], job[32], id[32];
    store(&e, &e.alice, "good atlas", ds);
    json_t *rq = json_pack("{s:s, s:[s], s:{s:s}}", "type", "integrate", "datasets", ds,
                           "options", "batch_name", "batch");
    ck_assert_int_eq(srv_service_job_submit(&e.svc, &e.alice, "integrate", rq, job, NULL, &why,
                                            &st), SX_OK);
    json_decref(rq);
    /* not yet a reference: the job is not COMPLETE (or not visible) */
    srv_ref_request ref = {.name = "atlas", .job_id = job, .species = "human"};
    ck_assert_int_eq(srv_service_ref_register(&e.svc, &e.bob, &ref, &why, &st), SX_ENOTFOUND);
    ck_assert_int_eq(why, SRV_WHY_NO_JOB);
    wait_state(&e, job, SRV_JOB_COMPLETE);
    ck_assert_int_eq(srv_service_ref_register(&e.svc, &e.alice, &ref, &why, &st), SX_OK);
    ck_assert_int_eq(srv_service_ref_register(&e.svc, &e.alice, &ref, &why, &st), SX_ESTATE);
    ck_assert_int_eq(why, SRV_WHY_WRONG_STATE);
    json_t *r = srv_service_ref_get(&e.svc, "atlas", &why, &st);
    ck_assert_ptr_nonnull(r);
    /* label columns: categorical, not the batch column (any case), not an identifier */
    json_t *lc = json_object_get(r, "label_columns");
    ck_assert_int_eq(json_array_size(lc), 1);
    ck_assert_str_eq(json_string_value(json_array_get(lc, 0)), "cell_type");
    ck_assert(!json_is_true(json_object_get(r, "loaded")));
    json_decref(r);
    char p[4400];
    snprintf(p, sizeof p, "%s/references/atlas/reference.h5", e.dir);
    ck_assert(srv_file_exists(p));
    /* map: a query stored, a project job onto the reference with the label option */
    char q[32];
    store(&e, &e.alice, "good query", q);
    ck_assert_int_eq(srv_service_map_submit(&e.svc, &e.alice, q, "nowhere", NULL, id, &why, &st),
                     SX_ENOTFOUND);
    ck_assert_int_eq(why, SRV_WHY_NO_REFERENCE);
    ck_assert_int_eq(srv_service_map_submit(&e.svc, &e.alice, q, "atlas", "cell_type", id, &why,
                                            &st), SX_OK);
    atomic_int ended = 0;
    ck_assert_int_eq(srv_service_job_wait(&e.svc, id, 30, on_end, &ended, &st), SX_OK);
    double t0 = srv_mono_s();
    while (!atomic_load(&ended) && srv_mono_s() - t0 < 30) usleep(10000);
    ck_assert_int_eq(atomic_load(&ended), SRV_JOB_COMPLETE + 100);
    srv_job_outcome out;
    ck_assert_int_eq(srv_service_job_outcome(&e.svc, &e.alice, id, &out, &why, &st), SX_OK);
    ck_assert_int_eq(out.state, SRV_JOB_COMPLETE);
    json_t *j = srv_service_job_get(&e.svc, &e.alice, id, &why, &st);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "project");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "options"), "label")),
                     "cell_type");
    json_decref(j);
    snprintf(p, sizeof p, "%s/references/atlas", e.dir);
    ck_assert_str_eq(e.f.reference, p);
    /* its folder, once COMPLETE */
    char dir[4200];
    ck_assert_int_eq(srv_service_job_dir(&e.svc, &e.alice, id, 1, dir, NULL, NULL, &why, &st),
                     SX_OK);
    snprintf(p, sizeof p, "%s/jobs/%s", e.dir, id);
    ck_assert_str_eq(dir, p);
    env_stop(&e);
}
END_TEST

/* an integrate job of u run to COMPLETE (a reference can be made of it) */
static void finished_integrate(env *e, const srv_user *u, char job[32])
{
    char ds[32];
    sx_status st;
    srv_why why;
    store(e, u, "good atlas", ds);
    json_t *rq = json_pack("{s:s, s:[s]}", "type", "integrate", "datasets", ds);
    ck_assert_int_eq(srv_service_job_submit(&e->svc, u, "integrate", rq, job, NULL, &why, &st),
                     SX_OK);
    json_decref(rq);
    double t0 = srv_mono_s();
    srv_job_outcome out = {0};
    while (srv_mono_s() - t0 < 30) {
        srv_service_job_outcome(&e->svc, u, job, &out, NULL, &st);
        if (out.state == SRV_JOB_COMPLETE) break;
        usleep(10000);
    }
    ck_assert_int_eq(out.state, SRV_JOB_COMPLETE);
}

START_TEST(publish_and_withdraw)
{
    env e;
    env_start(&e, 1);
    sx_status st;
    srv_why why;
    char job[32], ref_dir[4400];
    finished_integrate(&e, &e.alice, job);
    srv_ref_request ref = {.name = "atlas", .job_id = job};
    /* admins only (the default of publish_references): alice's own job is refused to her */
    e.svc.publish_everyone = 0;
    ck_assert_int_eq(srv_service_ref_register(&e.svc, &e.alice, &ref, &why, &st), SX_ESTATE);
    ck_assert_int_eq(why, SRV_WHY_FORBIDDEN);
    /* a job bob cannot see stays not-found, whatever the policy */
    ck_assert_int_eq(srv_service_ref_register(&e.svc, &e.bob, &ref, &why, &st), SX_ENOTFOUND);
    ck_assert_int_eq(srv_service_ref_register(&e.svc, &e.root, &ref, &why, &st), SX_OK);
    snprintf(ref_dir, sizeof ref_dir, "%s/references/atlas", e.dir);
    ck_assert_int_eq(count_entries(ref_dir) > 0, 1);
    ck_assert_int_eq(srv_service_ref_withdraw(&e.svc, &e.alice, "atlas", &why, &st), SX_ESTATE);
    ck_assert_int_eq(why, SRV_WHY_FORBIDDEN);
    ck_assert_int_eq(srv_service_ref_withdraw(&e.svc, &e.root, "atlas", &why, &st), SX_OK);
    ck_assert_ptr_null(srv_service_ref_get(&e.svc, "atlas", &why, &st));
    ck_assert_int_eq(why, SRV_WHY_NO_REFERENCE);
    ck_assert_int_ne(access(ref_dir, F_OK), 0); /* its folder is gone */
    ck_assert_int_eq(srv_service_ref_withdraw(&e.svc, &e.root, "atlas", &why, &st), SX_ENOTFOUND);
    /* everyone publishes: each withdraws their own, never another's */
    e.svc.publish_everyone = 1;
    ck_assert_int_eq(srv_service_ref_register(&e.svc, &e.alice, &ref, &why, &st), SX_OK);
    ck_assert_int_eq(srv_service_ref_withdraw(&e.svc, &e.bob, "atlas", &why, &st), SX_ESTATE);
    ck_assert_int_eq(why, SRV_WHY_FORBIDDEN);
    ck_assert_int_eq(srv_service_ref_withdraw(&e.svc, &e.alice, "atlas", &why, &st), SX_OK);
    env_stop(&e);
}
END_TEST

START_TEST(storage_quota)
{
    env e;
    env_start(&e, 1);
    sx_status st;
    srv_why why;
    int64_t used, quota;
    char a[32], b[32], job[32];
    e.svc.storage_quota = 25;
    store(&e, &e.alice, "good one", a); /* store() records 10 bytes an upload */
    store(&e, &e.alice, "good two", b);
    ck_assert_int_eq(srv_service_storage(&e.svc, &e.alice, &used, &quota, &why, &st), SX_OK);
    ck_assert(used == 20 && quota == 25);
    srv_upload up = {.spool_path = spool(&e, "up", "good three"), .sha256 = "ab", .bytes = 10};
    char id[32];
    ck_assert_int_eq(srv_service_dataset_store(&e.svc, &e.alice, &up, id, NULL, &why, &st),
                     SX_ELIMIT);
    ck_assert_int_eq(why, SRV_WHY_STORAGE_QUOTA);
    ck_assert_ptr_nonnull(strstr(st.msg, "user_storage_quota"));
    /* bob's storage is his own */
    store(&e, &e.bob, "good bob", id);
    /* under the quota a job runs, and its results count once it finished */
    e.svc.storage_quota = 1 << 20;
    finished_integrate(&e, &e.alice, job);
    ck_assert_int_eq(srv_service_storage(&e.svc, &e.alice, &used, &quota, &why, &st), SX_OK);
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/jobs/%s", e.dir, job);
    ck_assert_int_eq(used, 30 + srv_tree_bytes(dir));
    /* full: no new job; deleting the finished job frees its results */
    e.svc.storage_quota = used;
    json_t *rq = json_pack("{s:s, s:[s]}", "type", "integrate", "datasets", a);
    ck_assert_int_eq(srv_service_job_submit(&e.svc, &e.alice, "integrate", rq, id, NULL, &why,
                                            &st), SX_ELIMIT);
    ck_assert_int_eq(why, SRV_WHY_STORAGE_FULL);
    json_decref(rq);
    ck_assert_int_eq(srv_service_job_delete(&e.svc, &e.bob, job, &why, &st), SX_ENOTFOUND);
    ck_assert_int_eq(srv_service_job_delete(&e.svc, &e.alice, job, &why, &st), SX_OK);
    ck_assert_int_ne(access(dir, F_OK), 0);
    ck_assert_int_eq(srv_service_storage(&e.svc, &e.alice, &used, &quota, &why, &st), SX_OK);
    ck_assert_int_eq(used, 30);
    env_stop(&e);
}
END_TEST

START_TEST(layout)
{
    char out[64];
    sx_status st;
    ck_assert_int_eq(srv_layout_dataset_rel("ds_1", "h5ad", out, sizeof out, &st), SX_OK);
    ck_assert_str_eq(out, "datasets/ds_1.h5ad");
    ck_assert_int_eq(srv_layout_dataset_rel("ds_1", NULL, out, sizeof out, &st), SX_OK);
    ck_assert_str_eq(out, "datasets/ds_1");
    ck_assert_int_eq(srv_layout_job_dir("/d", "job_1", out, sizeof out, &st), SX_OK);
    ck_assert_str_eq(out, "/d/jobs/job_1");
    char tiny[8];
    ck_assert_int_eq(srv_layout_job_dir("/data", "job_1", tiny, sizeof tiny, &st), SX_ELIMIT);
    ck_assert_ptr_null(strstr(st.msg, "/data")); /* no server path in a message */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server_service");
    TCase *tc = tcase_create("service");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, layout);
    tcase_add_test(tc, upload_store);
    tcase_add_test(tc, submit_and_quota);
    tcase_add_test(tc, delete_during_submit);
    tcase_add_test(tc, cancel_each_state);
    tcase_add_test(tc, cancel_running_job);
    tcase_add_test(tc, reference_and_map);
    tcase_add_test(tc, publish_and_withdraw);
    tcase_add_test(tc, storage_quota);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
