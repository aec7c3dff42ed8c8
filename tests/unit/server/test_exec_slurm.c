/* The executor layer: Slurm state mapping (the table of issue 9), parsing of sbatch / squeue
 * / sacct outputs recorded on a real Slurm 22.05 (tests/data/slurm/), resources and
 * job.json, and the Slurm job function end to end against the fake commands of
 * tests/data/slurm/fake (states, progress forwarding, scancel, error codes, a drain that
 * leaves the unit running, and re-attaching to it by the id kept in the registry). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv_exec.h"
#include "srv_exec_slurm.h"
#include "srv_jobs.h"
#include "srv_registry.h"
#include "srv_util.h"
#include "sx_jobdir.h"
#include "sx_test.h"

static char *slurp(const char *rel)
{
    sx_status st;
    char *s = srv_read_file(sx_test_source(rel), 1 << 20, NULL, &st);
    ck_assert_msg(s != NULL, "%s: %s", rel, st.msg);
    return s;
}

START_TEST(state_map)
{
    /* the mapping the issue asks for */
    ck_assert_int_eq(srv_slurm_map_state("PENDING"), SRV_X_QUEUED);
    ck_assert_int_eq(srv_slurm_map_state("RUNNING"), SRV_X_RUNNING);
    ck_assert_int_eq(srv_slurm_map_state("COMPLETED"), SRV_X_COMPLETE);
    ck_assert_int_eq(srv_slurm_map_state("FAILED"), SRV_X_EXECUTOR_ERROR);
    ck_assert_int_eq(srv_slurm_map_state("TIMEOUT"), SRV_X_EXECUTOR_ERROR);
    ck_assert_int_eq(srv_slurm_map_state("OUT_OF_MEMORY"), SRV_X_EXECUTOR_ERROR);
    ck_assert_int_eq(srv_slurm_map_state("NODE_FAIL"), SRV_X_SYSTEM_ERROR);
    ck_assert_int_eq(srv_slurm_map_state("CANCELLED"), SRV_X_CANCELED);
    /* as sacct and squeue print them */
    ck_assert_int_eq(srv_slurm_map_state("CANCELLED by 1000"), SRV_X_CANCELED);
    ck_assert_int_eq(srv_slurm_map_state("CANCELLED+"), SRV_X_CANCELED);
    ck_assert_int_eq(srv_slurm_map_state("COMPLETING"), SRV_X_RUNNING);
    ck_assert_int_eq(srv_slurm_map_state("PD"), SRV_X_QUEUED);
    ck_assert_int_eq(srv_slurm_map_state("OOM"), SRV_X_EXECUTOR_ERROR);
    ck_assert_int_eq(srv_slurm_map_state("BOOT_FAIL"), SRV_X_SYSTEM_ERROR);
    ck_assert_int_eq(srv_slurm_map_state("PENDINGX"), SRV_X_UNKNOWN);
    ck_assert_int_eq(srv_slurm_map_state(""), SRV_X_UNKNOWN);
    ck_assert_int_eq(srv_slurm_map_state(NULL), SRV_X_UNKNOWN);
    ck_assert_str_eq(srv_xstate_name(SRV_X_EXECUTOR_ERROR), "EXECUTOR_ERROR");
    ck_assert(srv_xstate_terminal(SRV_X_CANCELED) && !srv_xstate_terminal(SRV_X_QUEUED));
}
END_TEST

START_TEST(parse_sbatch)
{
    char h[64];
    sx_status st;
    char *s = slurp("tests/data/slurm/sbatch_parsable.txt");
    ck_assert_int_eq(srv_slurm_parse_sbatch(s, h, &st), SX_OK);
    ck_assert_str_eq(h, "1");
    free(s);
    s = slurp("tests/data/slurm/sbatch_federation.txt");
    ck_assert_int_eq(srv_slurm_parse_sbatch(s, h, &st), SX_OK);
    ck_assert_str_eq(h, "1234");
    free(s);
    s = slurp("tests/data/slurm/sbatch_warning.txt");
    ck_assert_int_eq(srv_slurm_parse_sbatch(s, h, &st), SX_OK);
    ck_assert_str_eq(h, "77");
    free(s);
    ck_assert_int_eq(srv_slurm_parse_sbatch("sbatch: error: Batch job submission failed\n", h, &st),
                     SX_EIO);
    ck_assert_ptr_nonnull(strstr(st.msg, "no job id"));
    ck_assert_int_eq(srv_slurm_parse_sbatch("", h, &st), SX_EIO);
}
END_TEST

START_TEST(parse_squeue)
{
    srv_exec_status s;
    char *o = slurp("tests/data/slurm/squeue_running_pending.txt");
    ck_assert_int_eq(srv_slurm_parse_squeue(o, "2", &s), 1);
    ck_assert_int_eq(s.state, SRV_X_QUEUED);
    ck_assert_str_eq(s.raw, "PENDING");
    ck_assert_str_eq(s.reason, "Resources");
    ck_assert_int_eq(srv_slurm_parse_squeue(o, "1", &s), 1);
    ck_assert_int_eq(s.state, SRV_X_RUNNING);
    ck_assert_str_eq(s.reason, "");
    ck_assert_int_eq(srv_slurm_parse_squeue(o, "3", &s), 0); /* not "31", not a prefix */
    free(o);
    o = slurp("tests/data/slurm/squeue_final.txt");
    ck_assert_int_eq(srv_slurm_parse_squeue(o, "1", &s), 1);
    ck_assert_int_eq(s.state, SRV_X_COMPLETE);
    ck_assert_int_eq(srv_slurm_parse_squeue(o, "2", &s), 1);
    ck_assert_int_eq(s.state, SRV_X_CANCELED);
    ck_assert_int_eq(srv_slurm_parse_squeue(o, "3", &s), 1);
    ck_assert_int_eq(s.state, SRV_X_EXECUTOR_ERROR);
    ck_assert_str_eq(s.raw, "FAILED");
    ck_assert_str_eq(s.reason, "NonZeroExitCode");
    free(o);
    o = slurp("tests/data/slurm/squeue_cancelled.txt");
    ck_assert_int_eq(srv_slurm_parse_squeue(o, "4", &s), 1);
    ck_assert_int_eq(s.state, SRV_X_CANCELED);
    free(o);
    o = slurp("tests/data/slurm/squeue_timeout.txt");
    ck_assert_int_eq(srv_slurm_parse_squeue(o, "5", &s), 1);
    ck_assert_int_eq(s.state, SRV_X_EXECUTOR_ERROR);
    ck_assert_str_eq(s.raw, "TIMEOUT");
    free(o);
    ck_assert_int_eq(srv_slurm_parse_squeue("", "1", &s), 0);
}
END_TEST

START_TEST(parse_sacct)
{
    static const struct { const char *id; srv_xstate st; const char *raw, *exit; } want[] = {
        {"101", SRV_X_COMPLETE, "COMPLETED", "0:0"},
        {"102", SRV_X_EXECUTOR_ERROR, "FAILED", "4:0"},
        {"103", SRV_X_EXECUTOR_ERROR, "TIMEOUT", "0:0"},
        {"104", SRV_X_EXECUTOR_ERROR, "OUT_OF_MEMORY", "0:125"},
        {"105", SRV_X_SYSTEM_ERROR, "NODE_FAIL", "0:0"},
        {"106", SRV_X_CANCELED, "CANCELLED", "0:15"},
        {"107", SRV_X_QUEUED, "PENDING", "0:0"},
        {"108", SRV_X_RUNNING, "RUNNING", "0:0"},
    };
    char *o = slurp("tests/data/slurm/sacct_final.txt");
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        srv_exec_status s;
        ck_assert_int_eq(srv_slurm_parse_sacct(o, want[i].id, &s), 1);
        ck_assert_int_eq(s.state, want[i].st);
        ck_assert_str_eq(s.raw, want[i].raw);
        ck_assert_str_eq(s.reason, want[i].exit);
    }
    srv_exec_status s;
    ck_assert_int_eq(srv_slurm_parse_sacct(o, "10", &s), 0);
    free(o);
}
END_TEST

START_TEST(resources_and_job_json)
{
    srv_slurm_res r;
    sx_status st;
    ck_assert_int_eq(srv_slurm_parse_res("cpus=8,mem=32G,time=04:00:00,partition=big", &r, &st), SX_OK);
    ck_assert_int_eq(r.cpus, 8);
    ck_assert_str_eq(r.mem, "32G");
    ck_assert_str_eq(r.time, "04:00:00");
    ck_assert_str_eq(r.partition, "big");
    ck_assert_int_eq(srv_slurm_parse_res("", &r, &st), SX_OK);
    ck_assert_int_eq(r.cpus, 0);
    ck_assert_int_eq(srv_slurm_parse_res("cpus=0", &r, &st), SX_EINVAL);
    ck_assert_int_eq(srv_slurm_parse_res("mem=1G;rm -rf /", &r, &st), SX_EINVAL);
    ck_assert_int_eq(srv_slurm_parse_res("gpus=1", &r, &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "cpus=N"));

    /* options become the strings / string arrays `scalex run-job` reads */
    json_t *opts = json_pack("{s:i, s:b, s:f, s:s, s:[s,i]}", "max_iteration", 20, "ignore_umap", 1,
                             "lr", 0.5, "label", "Group", "keep", "a", 3);
    const char *in[] = {"/data/a.h5ad", "/data/b.h5ad"};
    srv_job_run run = {.id = "j1", .type = "project", .outdir = "/x", .inputs = in, .n_inputs = 2,
                       .reference = "/data/refs/p", .options = opts, .threads = 3};
    char *js = sx_jobdir_spec_dumps(run.type, run.inputs, run.n_inputs, run.reference, run.options, 4, NULL, NULL);
    json_t *o = json_loads(js, 0, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_string_value(json_object_get(o, "type")), "project");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(o, "inputs"), 1)), "/data/b.h5ad");
    ck_assert_str_eq(json_string_value(json_object_get(o, "reference")), "/data/refs/p");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "threads")), 4);
    json_t *oo = json_object_get(o, "options");
    ck_assert_str_eq(json_string_value(json_object_get(oo, "max_iteration")), "20");
    ck_assert_str_eq(json_string_value(json_object_get(oo, "ignore_umap")), "true");
    ck_assert_str_eq(json_string_value(json_object_get(oo, "lr")), "0.5");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(oo, "keep"), 1)), "3");
    json_decref(o);
    free(js);
    json_decref(opts);
}
END_TEST

/* ---- the job function against the fake cluster ---- */

typedef struct rec {
    int calls;
    char last_stage[32];
    double last_frac;
    int cancel_at;   /* raise the cancel flag at this many progress reports (0 = never) */
    atomic_int cancel, drain;
} rec;

static void rec_fn(void *user, const char *stage, double frac, const char *msg)
{
    rec *r = user;
    (void)msg;
    r->calls++;
    snprintf(r->last_stage, sizeof r->last_stage, "%s", stage);
    r->last_frac = frac;
    if (r->cancel_at && r->calls >= r->cancel_at) atomic_store(&r->cancel, 1);
}

typedef struct env {
    char dir[512], fake[512];
    srv_registry *reg;
    srv_db *db;
    srv_exec *x;
    int after_calls;
} env;

static int after_fn(void *user, const srv_job_run *run, const sx_progress *p, sx_status *st)
{
    (void)run, (void)p, (void)st;
    ((env *)user)->after_calls++;
    return SX_OK;
}

static void env_open(env *e)
{
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "%.500s", sx_test_tmpdir());
    snprintf(e->fake, sizeof e->fake, "%.500s", sx_test_source("tests/data/slurm/fake"));
    char p[4200];
    snprintf(p, sizeof p, "%s/cluster", e->dir);
    setenv("FAKE_SLURM_DIR", p, 1);
    setenv("FAKE_SLURM_PENDING_S", "0.3", 1);
    setenv("FAKE_WORKER_STEP_S", "0.1", 1);
    sx_status st;
    e->reg = srv_registry_open(e->dir, &st);
    ck_assert_msg(e->reg != NULL, "%s", st.msg);
    e->db = srv_registry_get(e->reg, &st);
    ck_assert_int_ge(srv_registry_version(e->db), 2); /* job_executor exists */
    srv_exec_config c;
    srv_exec_config_defaults(&c);
    /* the settings by their config names, as a config file or --slurm-* flags give them */
    static const char *const cmds[] = {"sbatch", "squeue", "sacct", "scancel", "worker"};
    for (int i = 0; i < 5; i++) {
        char key[64];
        snprintf(key, sizeof key, "slurm_%s", cmds[i]);
        snprintf(p, sizeof p, "%s/%s", e->fake, cmds[i]);
        ck_assert_int_eq(srv_exec_config_set(&c, key, p, &st), SX_OK);
    }
    ck_assert_int_eq(srv_exec_config_set(&c, "executor", "slurm", &st), SX_OK);
    ck_assert_int_eq(srv_exec_config_set(&c, "slurm_project",
                                         "cpus=2,mem=1G,time=00:10:00,partition=debug", &st), SX_OK);
    ck_assert_int_eq(srv_exec_config_set(&c, "slurm-poll", "0.1", &st), SX_OK);
    e->x = srv_exec_new(&c, e->reg, NULL, NULL, after_fn, e, &st);
    ck_assert_msg(e->x != NULL, "%s", st.msg);
    ck_assert(!srv_exec_is_local(e->x));
}

static void env_close(env *e)
{
    srv_exec_free(e->x);
    srv_registry_put(e->reg, e->db);
    srv_registry_close(e->reg);
}

/* a registry row and its job dir; returns the run (outdir in buf) */
static srv_job_run make_job(env *e, const char *id, json_t *opts, char *outdir, size_t n)
{
    sx_status st;
    srv_user u;
    ck_assert_int_eq(srv_user_ensure(e->db, "alice", 0, &u, &st), SX_OK);
    ck_assert_int_eq(srv_job_insert(e->db, id, u.id, "project", "{}", &st), SX_OK);
    snprintf(outdir, n, "%s/jobs/%s", e->dir, id);
    ck_assert_int_eq(srv_mkdirs(outdir, &st), SX_OK);
    srv_job_run run = {.id = id, .type = "project", .outdir = outdir, .options = opts, .threads = 1};
    return run;
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, c;
    if (!f) return 0;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

START_TEST(slurm_job_complete)
{
    env e;
    env_open(&e);
    char out[4200], p[4300];
    json_t *opts = json_pack("{s:s}", "mode", "ok");
    srv_job_run run = make_job(&e, "jok", opts, out, sizeof out);
    /* the daemon's read budget travels to the cluster worker in job.json */
    sx_io_limits lim = {.max_cells = 1234, .max_genes = 567};
    srv_exec_set_limits(e.x, &lim);
    rec r = {0};
    sx_progress prog = {.fn = rec_fn, .user = &r, .cancel = &r.cancel};
    sx_status st;
    sx_status_clear(&st);
    ck_assert_int_eq(srv_exec_job_fn(e.x, &run, &prog, &st), SX_OK);
    snprintf(p, sizeof p, "%s/result.txt", out);
    ck_assert(srv_file_exists(p));
    ck_assert_int_eq(e.after_calls, 1);
    /* progress came from progress.json, up to the worker's last report */
    ck_assert_int_ge(r.calls, 2);
    ck_assert_str_eq(r.last_stage, "train");
    ck_assert(r.last_frac > 0.85);
    /* sbatch got the per-type resources */
    snprintf(p, sizeof p, "%s/cluster/sbatch.log", e.dir);
    char *log = srv_read_file(p, 1 << 16, NULL, &st);
    ck_assert_ptr_nonnull(log);
    ck_assert_ptr_nonnull(strstr(log, "--cpus-per-task=2"));
    ck_assert_ptr_nonnull(strstr(log, "--mem=1G"));
    ck_assert_ptr_nonnull(strstr(log, "--time=00:10:00"));
    ck_assert_ptr_nonnull(strstr(log, "--partition=debug"));
    ck_assert_ptr_nonnull(strstr(log, "--job-name=scalex-jok"));
    free(log);
    snprintf(p, sizeof p, "%s/job.json", out);
    json_t *spec = json_load_file(p, 0, NULL);
    ck_assert_ptr_nonnull(spec);
    json_t *jl = json_object_get(spec, "limits");
    ck_assert_int_eq(json_integer_value(json_object_get(jl, "max_cells")), 1234);
    ck_assert_int_eq(json_integer_value(json_object_get(jl, "max_genes")), 567);
    json_decref(spec);
    /* the Slurm id is kept, final */
    char exe[16], h[64];
    ck_assert_int_eq(srv_exec_handle_get(e.db, "jok", exe, h, &st), SX_OK);
    ck_assert_str_eq(h, ""); /* done: not live */
    ck_assert(!srv_exec_keep_jobdir(e.db, "jok"));
    json_decref(opts);
    env_close(&e);
}
END_TEST

START_TEST(slurm_job_failed_keeps_cause)
{
    env e;
    env_open(&e);
    char out[4200];
    json_t *opts = json_pack("{s:s}", "mode", "fail");
    srv_job_run run = make_job(&e, "jfail", opts, out, sizeof out);
    rec r = {0};
    sx_progress prog = {.fn = rec_fn, .user = &r, .cancel = &r.cancel};
    sx_status st;
    sx_status_clear(&st);
    /* Slurm FAILED + the worker's status.json: the worker's code and message */
    ck_assert_int_eq(srv_exec_job_fn(e.x, &run, &prog, &st), SX_EGENES);
    ck_assert_ptr_nonnull(strstr(st.msg, "reference genes"));
    ck_assert_int_eq(e.after_calls, 0);
    json_decref(opts);
    env_close(&e);
}
END_TEST

static void *cancel_later(void *arg)
{
    usleep(500000);
    atomic_store((atomic_int *)arg, 1);
    return NULL;
}

START_TEST(slurm_job_cancel)
{
    env e;
    env_open(&e);
    char out[4200], p[4300];
    json_t *opts = json_pack("{s:s}", "mode", "ok");
    /* canceled while PENDING: only scancel can stop it */
    setenv("FAKE_SLURM_PENDING_S", "2", 1);
    srv_job_run run = make_job(&e, "jcan", opts, out, sizeof out);
    rec r = {0};
    sx_progress prog = {.fn = rec_fn, .user = &r, .cancel = &r.cancel};
    run.drain = &r.drain;
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, &r.cancel);
    sx_status st;
    sx_status_clear(&st);
    ck_assert_int_eq(srv_exec_job_fn(e.x, &run, &prog, &st), SX_ECANCELED);
    pthread_join(t, NULL);
    snprintf(p, sizeof p, "%s/cluster/scancel.log", e.dir);
    ck_assert_int_eq(count_lines(p), 1);
    snprintf(p, sizeof p, "%s/cluster/1000.state", e.dir);
    char *state = srv_read_file(p, 100, NULL, &st);
    ck_assert_ptr_nonnull(strstr(state, "CANCELLED"));
    free(state);
    ck_assert_int_eq(r.calls, 0); /* never RUNNING */
    snprintf(p, sizeof p, "%s/result.txt", out);
    ck_assert(!srv_file_exists(p));

    /* canceled while RUNNING: the worker stops (JOBDIR/cancel or scancel, whichever first) */
    setenv("FAKE_SLURM_PENDING_S", "0.2", 1);
    srv_job_run run2 = make_job(&e, "jcan2", opts, out, sizeof out);
    rec r2 = {0};
    r2.cancel_at = 2;
    sx_progress prog2 = {.fn = rec_fn, .user = &r2, .cancel = &r2.cancel};
    run2.drain = &r2.drain;
    sx_status_clear(&st);
    ck_assert_int_eq(srv_exec_job_fn(e.x, &run2, &prog2, &st), SX_ECANCELED);
    snprintf(p, sizeof p, "%s/result.txt", out);
    ck_assert(!srv_file_exists(p));
    json_decref(opts);
    env_close(&e);
}
END_TEST

START_TEST(slurm_drain_then_reattach)
{
    env e;
    env_open(&e);
    char out[4200], p[4300];
    setenv("FAKE_WORKER_STEP_S", "0.3", 1);
    json_t *opts = json_pack("{s:s}", "mode", "ok");
    srv_job_run run = make_job(&e, "jre", opts, out, sizeof out);
    rec r = {0};
    r.cancel_at = 2;
    atomic_store(&r.drain, 1); /* the daemon stops: leave the unit at Slurm */
    sx_progress prog = {.fn = rec_fn, .user = &r, .cancel = &r.cancel};
    run.drain = &r.drain;
    sx_status st;
    sx_status_clear(&st);
    ck_assert_int_eq(srv_exec_job_fn(e.x, &run, &prog, &st), SX_ECANCELED);
    ck_assert_ptr_nonnull(strstr(st.msg, "left running"));
    snprintf(p, sizeof p, "%s/cluster/scancel.log", e.dir);
    ck_assert_int_eq(count_lines(p), 0);
    char exe[16], h[64];
    ck_assert_int_eq(srv_exec_handle_get(e.db, "jre", exe, h, &st), SX_OK);
    ck_assert_str_ne(h, "");
    ck_assert_str_eq(exe, "slurm");
    ck_assert(srv_exec_keep_jobdir(e.db, "jre"));

    /* the start-up pass: a RUNNING row with a live unit goes back to QUEUED, attempt kept */
    ck_assert_int_eq(srv_job_transition(e.db, "jre", NULL, "RUNNING", &st), 1);
    srv_db_exec(e.db, "UPDATE jobs SET attempts = 1 WHERE id = 'jre'", NULL);
    ck_assert_int_eq(srv_exec_prepare_reattach(e.x, e.db, &st), 1);
    srv_user admin = {.id = 0, .admin = 1};
    char state[16];
    ck_assert_int_eq(srv_job_state(e.db, "jre", &admin, state, NULL, &st), SX_OK);
    ck_assert_str_eq(state, "QUEUED");
    json_t *j = srv_job_get(e.db, "jre", &admin, &st);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "attempts")), 0);
    json_decref(j);

    /* the next run re-attaches: no second sbatch, the same unit completes */
    rec r2 = {0};
    sx_progress prog2 = {.fn = rec_fn, .user = &r2, .cancel = &r2.cancel};
    run.drain = &r2.drain;
    sx_status_clear(&st);
    ck_assert_int_eq(srv_exec_job_fn(e.x, &run, &prog2, &st), SX_OK);
    snprintf(p, sizeof p, "%s/cluster/sbatch.log", e.dir);
    ck_assert_int_eq(count_lines(p), 1);
    snprintf(p, sizeof p, "%s/result.txt", out);
    ck_assert(srv_file_exists(p));
    json_decref(opts);
    env_close(&e);
}
END_TEST

START_TEST(slurm_canceled_while_down)
{
    env e;
    env_open(&e);
    char out[4200], p[4300];
    setenv("FAKE_WORKER_STEP_S", "0.5", 1);
    json_t *opts = json_pack("{s:s}", "mode", "ok");
    srv_job_run run = make_job(&e, "jdown", opts, out, sizeof out);
    rec r = {0};
    r.cancel_at = 1;
    atomic_store(&r.drain, 1);
    sx_progress prog = {.fn = rec_fn, .user = &r, .cancel = &r.cancel};
    run.drain = &r.drain;
    sx_status st;
    sx_status_clear(&st);
    ck_assert_int_eq(srv_exec_job_fn(e.x, &run, &prog, &st), SX_ECANCELED); /* left running */
    /* the drained job was canceled before the next start: the start-up pass scancels it */
    ck_assert_int_eq(srv_job_finish(e.db, "jdown", "CANCELED", NULL, NULL, &st), SX_OK);
    ck_assert_int_eq(srv_exec_prepare_reattach(e.x, e.db, &st), 0);
    snprintf(p, sizeof p, "%s/cluster/scancel.log", e.dir);
    ck_assert_int_eq(count_lines(p), 1);
    char h[64];
    ck_assert_int_eq(srv_exec_handle_get(e.db, "jdown", NULL, h, &st), SX_OK);
    ck_assert_str_eq(h, "");
    json_decref(opts);
    env_close(&e);
}
END_TEST

START_TEST(bad_config)
{
    srv_exec_config c;
    sx_status st;
    srv_exec_config_defaults(&c);
    ck_assert_str_eq(c.executor, "local");
    snprintf(c.executor, sizeof c.executor, "pbs");
    ck_assert_ptr_null(srv_exec_new(&c, NULL, NULL, NULL, NULL, NULL, &st));
    ck_assert_ptr_nonnull(strstr(st.msg, "local or slurm"));
    ck_assert_int_eq(srv_exec_config_set(&c, "executor", "slurm", &st), SX_OK);
    /* a bad resources value is taken as text, refused when the executor starts */
    ck_assert_int_eq(srv_exec_config_set(&c, "slurm_integrate", "cpus=lots", &st), SX_OK);
    srv_registry *reg = srv_registry_open(sx_test_tmpdir(), &st);
    ck_assert_ptr_null(srv_exec_new(&c, reg, NULL, NULL, NULL, NULL, &st));
    ck_assert_ptr_nonnull(strstr(st.msg, "cpus=lots"));
    srv_registry_close(reg);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("exec_slurm");
    TCase *t = tcase_create("parse");
    tcase_add_test(t, state_map);
    tcase_add_test(t, parse_sbatch);
    tcase_add_test(t, parse_squeue);
    tcase_add_test(t, parse_sacct);
    tcase_add_test(t, resources_and_job_json);
    tcase_add_test(t, bad_config);
    suite_add_tcase(s, t);
    TCase *f = tcase_create("fake_cluster");
    tcase_set_timeout(f, 120);
    tcase_add_test(f, slurm_job_complete);
    tcase_add_test(f, slurm_job_failed_keeps_cause);
    tcase_add_test(f, slurm_job_cancel);
    tcase_add_test(f, slurm_drain_then_reattach);
    tcase_add_test(f, slurm_canceled_while_down);
    suite_add_tcase(s, f);
    return s;
}

int main(void) { return sx_test_run(suite()); }
