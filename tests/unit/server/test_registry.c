/* Registry: migrations, tokens stored as sha256 (checked against coreutils sha256sum),
 * per-user visibility, job state machine and crash reconciliation, concurrent writers,
 * the executor's id in a job, the statement cache.
 *
 * With SX_TEST_REGISTRY=postgresql://... (tests/integration/cluster_postgres.sh sets it on
 * a throwaway PostgreSQL) every test runs on that database instead of SQLite, emptied
 * before each test, plus the PostgreSQL-only tests: the schema matches SQLite's table for
 * table and column for column, claims of two instances, reconciliation per instance. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_embedded.h"
#include "srv_exec.h"
#include "srv_registry.h"
#include "sx_test.h"

static const char *pg_url(void)
{
    const char *u = getenv("SX_TEST_REGISTRY");
    return u && *u ? u : NULL;
}

/* the registry under test: SQLite in a new temp dir, or the PostgreSQL database emptied */
static srv_registry *open_registry(const char *dir, int fresh, sx_status *st)
{
    const char *url = pg_url();
    if (url && fresh) {
        srv_db *db = srv_db_open_postgres(url, st);
        ck_assert_msg(db, "%s", st->msg);
        ck_assert_msg(srv_db_exec(db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public", st) ==
                      SX_OK, "%s", st->msg);
        srv_db_close(db);
    }
    return srv_registry_open_url(dir, url, st);
}

static srv_registry *open_fresh(srv_db **db)
{
    sx_status st;
    srv_registry *r = open_registry(sx_test_tmpdir(), 1, &st);
    ck_assert_msg(r, "%s", st.msg);
    *db = srv_registry_get(r, &st);
    ck_assert_ptr_nonnull(*db);
    return r;
}

START_TEST(migrations_apply_once)
{
    sx_status st;
    const char *dir = sx_test_tmpdir();
    srv_registry *r = open_registry(dir, 1, &st);
    ck_assert_msg(r, "%s", st.msg);
    srv_db *db = srv_registry_get(r, &st);
    int last = atoi(srv_migrations[srv_n_migrations - 1].name);
    ck_assert_int_ge(last, 1);
    ck_assert_int_eq(srv_registry_version(db), last);
    srv_registry_put(r, db);
    srv_registry_close(r);
    /* reopening migrates nothing and keeps data */
    r = open_registry(dir, 0, &st);
    ck_assert_msg(r, "%s", st.msg);
    db = srv_registry_get(r, &st);
    ck_assert_int_eq(srv_registry_version(db), last);
    if (pg_url()) { /* each version recorded once */
        srv_stmt *s = srv_db_prepare(db, "SELECT count(*), count(DISTINCT version) FROM "
                                         "schema_version", &st);
        ck_assert_int_eq(srv_stmt_step(s), SRV_DB_ROW);
        ck_assert_int_eq(srv_stmt_column_int(s, 0), srv_n_migrations);
        ck_assert_int_eq(srv_stmt_column_int(s, 1), srv_n_migrations);
        srv_stmt_done(s);
        ck_assert_int_eq(srv_db_exec(db, "INSERT INTO schema_version VALUES (9999, 0)", &st), SX_OK);
    } else {
        srv_stmt *s = srv_db_prepare(db, "PRAGMA journal_mode", &st);
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(srv_stmt_step(s), SRV_DB_ROW);
        ck_assert_str_eq(srv_stmt_column_text(s, 0), "wal");
        srv_stmt_done(s);
        /* a registry from a newer scalexd is refused */
        ck_assert_int_eq(srv_db_exec(db, "PRAGMA user_version=9999", &st), SX_OK);
    }
    srv_registry_put(r, db);
    srv_registry_close(r);
    sx_status_clear(&st);
    ck_assert_ptr_null(open_registry(dir, 0, &st));
    ck_assert_int_eq(st.code, SX_ESTATE);
    ck_assert_ptr_nonnull(strstr(st.msg, "newer scalexd"));
}
END_TEST

START_TEST(tokens_are_hashed)
{
    srv_db *db;
    srv_registry *r = open_fresh(&db);
    sx_status st;
    char tok[80];
    ck_assert_int_eq(srv_token_create(db, "alice", 0, tok, &st), SX_OK);
    ck_assert_int_eq(strncmp(tok, "sxt_", 4), 0);
    ck_assert_int_ge(strlen(tok), 40);
    srv_user u;
    ck_assert_int_eq(srv_token_lookup(db, tok, &u, &st), SX_OK);
    ck_assert_str_eq(u.name, "alice");
    ck_assert_int_eq(u.admin, 0);
    /* the stored value is sha256(token) as coreutils computes it, never the token */
    char cmd[256], want[65] = {0};
    snprintf(cmd, sizeof cmd, "printf %%s '%s' | sha256sum", tok);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%64s", want), 1);
    pclose(p);
    srv_stmt *s = srv_db_prepare(db, "SELECT hash FROM tokens", &st);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(srv_stmt_step(s), SRV_DB_ROW);
    ck_assert_str_eq(srv_stmt_column_text(s, 0), want);
    srv_stmt_done(s);
    /* unknown and near-miss tokens fail */
    ck_assert_int_eq(srv_token_lookup(db, "sxt_nope", &u, &st), SX_ENOTFOUND);
    tok[10] ^= 1;
    ck_assert_int_eq(srv_token_lookup(db, tok, &u, &st), SX_ENOTFOUND);
    /* admin flag is raised for an existing user, and bad names refused */
    ck_assert_int_eq(srv_token_create(db, "alice", 1, tok, &st), SX_OK);
    ck_assert_int_eq(srv_token_lookup(db, tok, &u, &st), SX_OK);
    ck_assert_int_eq(u.admin, 1);
    ck_assert_int_eq(srv_token_create(db, "bad name", 0, tok, &st), SX_EINVAL);
    srv_registry_put(r, db);
    srv_registry_close(r);
}
END_TEST

/* sha256 of a token as coreutils computes it: the independent truth for its id */
static void sha256sum_of(const char *tok, char want[65])
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "printf %%s '%s' | sha256sum", tok);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%64s", want), 1);
    pclose(p);
}

/* `scalexd token list|revoke`: ids are the first 12 hex digits of sha256(token); a revoke
 * by clear token, by id or by user removes exactly those tokens; what matches nothing or is
 * not a token is refused by name. */
START_TEST(tokens_list_and_revoke)
{
    srv_db *db;
    srv_registry *r = open_fresh(&db);
    sx_status st;
    char a1[80], a2[80], b1[80], h[65];
    srv_user u;
    ck_assert_int_eq(srv_token_create(db, "alice", 0, a1, &st), SX_OK);
    ck_assert_int_eq(srv_token_create(db, "alice", 0, a2, &st), SX_OK);
    ck_assert_int_eq(srv_token_create(db, "bob", 1, b1, &st), SX_OK);
    json_t *all = srv_token_list(db, NULL, &st);
    ck_assert_ptr_nonnull(all);
    ck_assert_int_eq(json_array_size(all), 3);
    json_decref(all);
    json_t *al = srv_token_list(db, "alice", &st);
    ck_assert_int_eq(json_array_size(al), 2);
    sha256sum_of(a2, h);
    char id2[16] = "";
    for (size_t i = 0; i < 2; i++) {
        const char *id = json_string_value(json_object_get(json_array_get(al, i), "id"));
        ck_assert_uint_eq(strlen(id), 12);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(al, i), "user")), "alice");
        if (!strncmp(id, h, 12)) snprintf(id2, sizeof id2, "%s", id);
    }
    json_decref(al);
    ck_assert_msg(id2[0], "no listed id is the start of sha256sum(token)");
    int n = -1;
    /* by clear token: that one goes, the other still works */
    ck_assert_int_eq(srv_token_revoke(db, a1, NULL, &n, &st), SX_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(srv_token_lookup(db, a1, &u, &st), SX_ENOTFOUND);
    ck_assert_int_eq(srv_token_lookup(db, a2, &u, &st), SX_OK);
    /* refused: not a token, an id of another user, an id that matches nothing */
    ck_assert_int_eq(srv_token_revoke(db, "hello", NULL, &n, &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "token list"));
    ck_assert_int_eq(srv_token_revoke(db, id2, "bob", &n, &st), SX_OK);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(srv_token_revoke(db, a1, NULL, &n, &st), SX_ENOTFOUND);
    /* by id (8 digits are enough) */
    id2[8] = 0;
    ck_assert_int_eq(srv_token_revoke(db, id2, NULL, &n, &st), SX_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(srv_token_lookup(db, a2, &u, &st), SX_ENOTFOUND);
    ck_assert_int_eq(srv_token_lookup(db, b1, &u, &st), SX_OK);
    /* all of a user's */
    ck_assert_int_eq(srv_token_create(db, "bob", 0, a1, &st), SX_OK);
    ck_assert_int_eq(srv_token_revoke(db, NULL, "bob", &n, &st), SX_OK);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(srv_token_lookup(db, b1, &u, &st), SX_ENOTFOUND);
    ck_assert_int_eq(srv_token_lookup(db, a1, &u, &st), SX_ENOTFOUND);
    all = srv_token_list(db, NULL, &st);
    ck_assert_int_eq(json_array_size(all), 0);
    json_decref(all);
    srv_registry_put(r, db);
    srv_registry_close(r);
}
END_TEST

static void add_ds(srv_db *db, const char *id, int64_t owner)
{
    sx_status st;
    srv_dataset_rec d = {.owner = owner, .name = "n", .format = "h5ad", .path = "datasets/x.h5ad",
                         .sha256 = "00", .size_bytes = 10, .n_obs = 3, .n_vars = 4};
    snprintf(d.id, sizeof d.id, "%s", id);
    ck_assert_msg(srv_dataset_insert(db, &d, &st) == SX_OK, "%s", st.msg);
}

START_TEST(visibility)
{
    srv_db *db;
    srv_registry *r = open_fresh(&db);
    sx_status st;
    srv_user a, b, adm;
    ck_assert_int_eq(srv_user_ensure(db, "a", 0, &a, &st), SX_OK);
    ck_assert_int_eq(srv_user_ensure(db, "b", 0, &b, &st), SX_OK);
    ck_assert_int_eq(srv_user_ensure(db, "root", 1, &adm, &st), SX_OK);
    add_ds(db, "ds_a1", a.id);
    add_ds(db, "ds_a2", a.id);
    add_ds(db, "ds_b1", b.id);
    json_t *j = srv_dataset_get(db, "ds_a1", &a, &st);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "owner")), "a");
    json_decref(j);
    sx_status_clear(&st);
    ck_assert_ptr_null(srv_dataset_get(db, "ds_a1", &b, &st));
    ck_assert_int_eq(st.code, SX_ENOTFOUND);
    j = srv_dataset_get(db, "ds_a1", &adm, &st);
    ck_assert_ptr_nonnull(j);
    json_decref(j);
    int more;
    j = srv_dataset_list(db, &b, 0, 100, &more, &st);
    ck_assert_int_eq(json_array_size(j), 1);
    json_decref(j);
    j = srv_dataset_list(db, &adm, 0, 2, &more, &st);
    ck_assert_int_eq(json_array_size(j), 2);
    ck_assert_int_eq(more, 1);
    json_decref(j);
    j = srv_dataset_list(db, &adm, 2, 2, &more, &st);
    ck_assert_int_eq(json_array_size(j), 1);
    ck_assert_int_eq(more, 0);
    json_decref(j);
    char *path = NULL;
    ck_assert_int_eq(srv_dataset_delete(db, "ds_a1", &b, &path, &st), SX_ENOTFOUND);
    /* a queued job holds its input */
    ck_assert_int_eq(srv_job_insert(db, "job_1", a.id, "integrate", "{\"datasets\":[\"ds_a1\"]}", &st), SX_OK);
    ck_assert_int_eq(srv_dataset_delete(db, "ds_a1", &a, &path, &st), SX_ESTATE);
    ck_assert_ptr_nonnull(strstr(st.msg, "job_1"));
    ck_assert_int_eq(srv_dataset_delete(db, "ds_a2", &a, &path, &st), SX_OK);
    ck_assert_str_eq(path, "datasets/x.h5ad");
    free(path);
    /* jobs: same rule */
    char state[16];
    ck_assert_int_eq(srv_job_state(db, "job_1", &b, state, NULL, &st), SX_ENOTFOUND);
    ck_assert_int_eq(srv_job_state(db, "job_1", &adm, state, NULL, &st), SX_OK);
    ck_assert_str_eq(state, "QUEUED");
    j = srv_job_list(db, &b, NULL, 0, 10, &more, &st);
    ck_assert_int_eq(json_array_size(j), 0);
    json_decref(j);
    srv_registry_put(r, db);
    srv_registry_close(r);
}
END_TEST

START_TEST(job_states_and_reconcile)
{
    srv_db *db;
    srv_registry *r = open_fresh(&db);
    sx_status st;
    srv_user a;
    srv_user_ensure(db, "a", 0, &a, &st);
    ck_assert_int_eq(srv_job_insert(db, "job_x", a.id, "integrate", "{}", &st), SX_OK);
    ck_assert_int_eq(srv_job_insert(db, "job_y", a.id, "integrate", "{}", &st), SX_OK);
    int attempts;
    char *req, type[32], id[32], state[16];
    for (int round = 1; round <= 3; round++) {
        /* the oldest queued job runs, then the daemon "dies" */
        ck_assert_int_eq(srv_job_next_queued(db, id, &st), SX_OK);
        ck_assert_str_eq(id, "job_x");
        ck_assert_int_eq(srv_job_claim(db, id, &attempts, &req, type, &st), SX_OK);
        free(req);
        ck_assert_int_eq(attempts, round);
        ck_assert_int_eq(srv_job_claim(db, id, &attempts, &req, type, &st), SX_ESTATE); /* claimed once */
        ck_assert_int_eq(srv_job_progress(db, id, "train", 0.5, "epoch 1", &st), SX_OK);
        ck_assert_int_eq(srv_job_state(db, id, &a, state, NULL, &st), SX_OK);
        ck_assert_str_eq(state, "RUNNING");
        int nq, nf;
        ck_assert_int_eq(srv_job_reconcile(db, 3, &nq, &nf, &st), 1);
        ck_assert_int_eq(nq, round < 3);
        ck_assert_int_eq(nf, round == 3);
    }
    json_t *j = srv_job_get(db, "job_x", &a, &st);
    ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "SYSTEM_ERROR");
    json_t *e = json_object_get(j, "error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "type")), "interrupted");
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(e, "detail")), "3 times"));
    json_decref(j);
    /* conditional transitions: cancel of a queued job wins once */
    ck_assert_int_eq(srv_job_transition(db, "job_y", "QUEUED", "CANCELED", &st), 1);
    ck_assert_int_eq(srv_job_transition(db, "job_y", "QUEUED", "CANCELED", &st), 0);
    ck_assert_int_eq(srv_job_claim(db, "job_y", &attempts, &req, type, &st), SX_ESTATE);
    int64_t counts[8];
    ck_assert_int_eq(srv_job_state_counts(db, counts, &st), SX_OK);
    ck_assert_int_eq(counts[5], 1); /* SYSTEM_ERROR */
    ck_assert_int_eq(counts[7], 1); /* CANCELED */
    int act, q;
    ck_assert_int_eq(srv_job_counts(db, a.id, &act, &q, &st), SX_OK);
    ck_assert_int_eq(act, 0);
    ck_assert_int_eq(srv_job_insert(db, "job_z", a.id, "integrate", "{}", &st), SX_OK);
    ck_assert_int_eq(srv_job_counts(db, a.id, &act, &q, &st), SX_OK);
    ck_assert_int_eq(act, 1);
    ck_assert_int_eq(q, 1);
    srv_registry_put(r, db);
    srv_registry_close(r);
}
END_TEST

/* GET /v1/jobs/{id}: a job that went through an executor with ids of its own shows it */
START_TEST(job_shows_executor_id)
{
    srv_db *db;
    srv_registry *r = open_fresh(&db);
    sx_status st;
    srv_user a;
    srv_user_ensure(db, "a", 0, &a, &st);
    ck_assert_int_eq(srv_job_insert(db, "job_s", a.id, "project", "{}", &st), SX_OK);
    ck_assert_int_eq(srv_job_insert(db, "job_l", a.id, "project", "{}", &st), SX_OK);
    ck_assert_int_eq(srv_exec_handle_set(db, "job_s", "slurm", "4711", "PENDING", &st), SX_OK);
    json_t *j = srv_job_get(db, "job_s", &a, &st);
    json_t *x = json_object_get(j, "executor");
    ck_assert_str_eq(json_string_value(json_object_get(x, "name")), "slurm");
    ck_assert_str_eq(json_string_value(json_object_get(x, "id")), "4711");
    json_decref(j);
    j = srv_job_get(db, "job_l", &a, &st);
    ck_assert_ptr_null(json_object_get(j, "executor"));
    json_decref(j);
    int more;
    j = srv_job_list(db, &a, NULL, 0, 10, &more, &st);
    ck_assert_int_eq(json_array_size(j), 2);
    json_decref(j);
    srv_registry_put(r, db);
    srv_registry_close(r);
}
END_TEST

/* The job status cache's rule (srv_respcache, api_http.c): a view read after taking
 * generation g is current while the generation is g. So every write that changes what
 * GET /v1/jobs/{id} shows must raise it. Each step of a job's life below is checked by
 * its effect on the view itself, not by knowing which functions raise it. */
static char *job_view(srv_db *db, const char *id, const srv_user *u)
{
    sx_status st;
    json_t *j = srv_job_get(db, id, u, &st);
    if (!j) return strdup("(none)");
    json_object_del(j, "timings"); /* computed at read time, bounded by the TTL instead */
    char *s = json_dumps(j, JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

#define VIEW_STEP(id, call)                                                                \
    do {                                                                                   \
        char *before_ = job_view(db, id, &a);                                              \
        uint64_t g_ = srv_job_generation();                                                \
        call;                                                                              \
        char *after_ = job_view(db, id, &a);                                               \
        ck_assert_msg(strcmp(before_, after_) != 0, "step %s changed nothing", #call);     \
        ck_assert_msg(srv_job_generation() != g_, "%s changed the view of %s without "      \
                      "raising the generation", #call, id);                                \
        free(before_);                                                                     \
        free(after_);                                                                      \
    } while (0)

START_TEST(job_writes_raise_generation)
{
    srv_db *db;
    srv_registry *r = open_fresh(&db);
    sx_status st;
    srv_user a;
    srv_user_ensure(db, "a", 0, &a, &st);
    int att, nq, nf;
    char *req = NULL, type[32];
    VIEW_STEP("job_g", srv_job_insert(db, "job_g", a.id, "project", "{}", &st));
    VIEW_STEP("job_g", srv_job_claim(db, "job_g", &att, &req, type, &st));
    free(req);
    VIEW_STEP("job_g", srv_exec_handle_set(db, "job_g", "slurm", "17", "PENDING", &st));
    VIEW_STEP("job_g", srv_job_progress(db, "job_g", "train", 0.5, "epoch 1", &st));
    VIEW_STEP("job_g", srv_job_reconcile(db, 3, &nq, &nf, &st));           /* re-queued */
    VIEW_STEP("job_g", srv_job_transition(db, "job_g", "QUEUED", "CANCELED", &st));
    VIEW_STEP("job_h", srv_job_insert(db, "job_h", a.id, "project", "{}", &st));
    VIEW_STEP("job_h", srv_job_finish(db, "job_h", "EXECUTOR_ERROR", "bad-input", "no", &st));
    srv_registry_put(r, db);
    srv_registry_close(r);
}
END_TEST

/* the per-connection statement cache: the same SQL gives the same statement back once it
 * is done; a nested use of the same SQL gets a private one; bindings do not leak */
START_TEST(statement_cache)
{
    srv_db *db;
    srv_registry *r = open_fresh(&db);
    sx_status st;
    const char *sql = "SELECT ?1 || 'x'";
    srv_stmt *a = srv_db_prepare(db, sql, &st);
    srv_stmt_bind_text(a, 1, "a");
    ck_assert_int_eq(srv_stmt_step(a), SRV_DB_ROW);
    srv_stmt *b = srv_db_prepare(db, sql, &st);
    ck_assert_ptr_ne(a, b);
    srv_stmt_bind_text(b, 1, "b");
    ck_assert_int_eq(srv_stmt_step(b), SRV_DB_ROW);
    ck_assert_str_eq(srv_stmt_column_text(b, 0), "bx");
    ck_assert_str_eq(srv_stmt_column_text(a, 0), "ax");
    srv_stmt_done(b);
    srv_stmt_done(a);
    srv_stmt *c = srv_db_prepare(db, sql, &st);
    ck_assert_ptr_eq(c, a);
    srv_stmt_bind_text(c, 1, "c");
    ck_assert_int_eq(srv_stmt_step(c), SRV_DB_ROW);
    ck_assert_str_eq(srv_stmt_column_text(c, 0), "cx");
    ck_assert_int_eq(srv_stmt_step(c), SRV_DB_DONE);
    srv_stmt_done(c);
    /* an error names the problem and leaves the connection usable */
    srv_stmt *bad = srv_db_prepare(db, "SELECT no_such_column FROM jobs", &st);
    ck_assert_int_lt(bad ? srv_stmt_step(bad) : SRV_DB_ERROR, 0);
    ck_assert_ptr_nonnull(strstr(srv_db_errmsg(db), "no_such_column"));
    srv_stmt_done(bad);
    ck_assert_int_eq(srv_ref_count(db), 0);
    srv_registry_put(r, db);
    srv_registry_close(r);
}
END_TEST

/* PostgreSQL only: schema/postgres/ and the portable files give the same tables and columns
 * as the SQLite schema (names; SQLite's declared types differ by spelling only) */
START_TEST(schema_parity)
{
    if (!pg_url()) return;
    srv_db *pg;
    srv_registry *r = open_fresh(&pg);
    sx_status st;
    char lite_dir[4200];
    snprintf(lite_dir, sizeof lite_dir, "%s/lite", sx_test_tmpdir());
    srv_registry *lr = srv_registry_open(lite_dir, &st);
    ck_assert_msg(lr, "%s", st.msg);
    srv_db *lite = srv_registry_get(lr, &st);
    srv_stmt *s = srv_db_prepare(pg, "SELECT c FROM (SELECT table_name || '.' || column_name || "
                                     "' ' || is_nullable AS c FROM information_schema.columns "
                                     "WHERE table_schema = 'public' AND table_name <> "
                                     "'schema_version') t ORDER BY c COLLATE \"C\"", &st);
    srv_stmt *l = srv_db_prepare(lite, "SELECT m.name || '.' || p.name || ' ' || CASE WHEN "
                                       "p.\"notnull\" OR p.pk > 0 THEN 'NO' ELSE 'YES' END FROM "
                                       "sqlite_master m, pragma_table_info(m.name) p WHERE "
                                       "m.type = 'table' ORDER BY 1", &st);
    ck_assert_msg(s && l, "%s", st.msg);
    int n = 0;
    for (;;) {
        int a = srv_stmt_step(s), b = srv_stmt_step(l);
        ck_assert_msg(a == b, "PostgreSQL %d (%s), SQLite %d (%s)", a, srv_db_errmsg(pg), b,
                      srv_db_errmsg(lite));
        if (a != SRV_DB_ROW) break;
        ck_assert_str_eq(srv_stmt_column_text(s, 0), srv_stmt_column_text(l, 0));
        n++;
    }
    ck_assert_int_gt(n, 40);
    srv_stmt_done(s);
    srv_stmt_done(l);
    /* indexes by name */
    s = srv_db_prepare(pg, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND "
                           "indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key' ORDER BY "
                           "indexname COLLATE \"C\"", &st);
    l = srv_db_prepare(lite, "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT "
                             "LIKE 'sqlite_autoindex%' ORDER BY 1", &st);
    for (;;) {
        int a = srv_stmt_step(s), b = srv_stmt_step(l);
        ck_assert_int_eq(a, b);
        if (a != SRV_DB_ROW) break;
        ck_assert_str_eq(srv_stmt_column_text(s, 0), srv_stmt_column_text(l, 0));
    }
    srv_stmt_done(s);
    srv_stmt_done(l);
    srv_registry_put(lr, lite);
    srv_registry_close(lr);
    srv_registry_put(r, pg);
    srv_registry_close(r);
}
END_TEST

/* PostgreSQL only: two instances on one registry. A job is claimed by one of them; while
 * one claim holds the row, the other instance skips it (next_queued gives the next job and
 * claim gives 0 at once, SKIP LOCKED); start-up reconciliation of one instance leaves the
 * other's running jobs alone. */
START_TEST(two_instances)
{
    if (!pg_url()) return;
    srv_db *a;
    srv_registry *ra = open_fresh(&a);
    sx_status st;
    srv_registry *rb = open_registry(sx_test_tmpdir(), 0, &st);
    ck_assert_msg(rb, "%s", st.msg);
    srv_registry_set_instance(ra, "ia");
    srv_registry_set_instance(rb, "ib");
    srv_registry_put(ra, a);
    a = srv_registry_get(ra, &st);
    srv_db *b = srv_registry_get(rb, &st);
    srv_db *lock = srv_registry_get(rb, &st);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(lock);
    srv_user u;
    srv_user_ensure(a, "u", 0, &u, &st);
    ck_assert_int_eq(srv_job_insert(a, "job_1", u.id, "integrate", "{}", &st), SX_OK);
    ck_assert_int_eq(srv_job_insert(b, "job_2", u.id, "integrate", "{}", &st), SX_OK);
    /* a third connection holds job_1's row lock, as a claim in progress does */
    ck_assert_int_eq(srv_db_exec(lock, "BEGIN; SELECT id FROM jobs WHERE id = 'job_1' FOR UPDATE",
                                 &st), SX_OK);
    char id[32], type[32], *req;
    int att;
    ck_assert_int_eq(srv_job_claim(a, "job_1", &att, &req, type, &st), SX_ESTATE); /* no wait */
    ck_assert_int_eq(srv_job_next_queued(a, id, &st), SX_OK);
    ck_assert_str_eq(id, "job_2");
    ck_assert_int_eq(srv_job_claim(a, id, &att, &req, type, &st), SX_OK);
    free(req);
    srv_db_rollback(lock);
    ck_assert_int_eq(srv_job_next_queued(b, id, &st), SX_OK);
    ck_assert_str_eq(id, "job_1");
    ck_assert_int_eq(srv_job_claim(b, id, &att, &req, type, &st), SX_OK);
    free(req);
    ck_assert_int_eq(srv_job_claim(a, "job_1", &att, &req, type, &st), SX_ESTATE);
    ck_assert_int_eq(srv_job_next_queued(a, id, &st), SX_ENOTFOUND);
    /* instance a restarts: only job_2 (its own) is re-queued */
    int nq, nf;
    ck_assert_int_eq(srv_job_reconcile(a, 3, &nq, &nf, &st), 1);
    srv_user adm = {.id = 0, .admin = 1};
    char state[16];
    ck_assert_int_eq(srv_job_state(a, "job_2", &adm, state, NULL, &st), SX_OK);
    ck_assert_str_eq(state, "QUEUED");
    ck_assert_int_eq(srv_job_state(a, "job_1", &adm, state, NULL, &st), SX_OK);
    ck_assert_str_eq(state, "INITIALIZING");
    srv_registry_put(rb, lock);
    srv_registry_put(rb, b);
    srv_registry_close(rb);
    srv_registry_put(ra, a);
    srv_registry_close(ra);
}
END_TEST

typedef struct {
    srv_registry *r;
    int k;
    int64_t owner;
    int fails;
} wctx;

static void *writer(void *arg)
{
    wctx *c = arg;
    sx_status st;
    srv_db *db = srv_registry_get(c->r, &st);
    for (int i = 0; i < 40; i++) {
        srv_dataset_rec d = {.owner = c->owner, .name = "n", .format = "h5ad", .path = "p",
                             .sha256 = "00", .size_bytes = 1, .n_obs = 1, .n_vars = 1};
        snprintf(d.id, sizeof d.id, "ds_%d_%d", c->k, i);
        if (srv_dataset_insert(db, &d, &st)) c->fails++;
    }
    srv_registry_put(c->r, db);
    return NULL;
}

START_TEST(concurrent_writers)
{
    srv_db *db;
    srv_registry *r = open_fresh(&db);
    sx_status st;
    srv_user a;
    srv_user_ensure(db, "root", 1, &a, &st);
    srv_registry_put(r, db);
    pthread_t t[4];
    wctx c[4];
    for (int k = 0; k < 4; k++) {
        c[k] = (wctx){r, k, a.id, 0};
        pthread_create(&t[k], NULL, writer, &c[k]);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(t[k], NULL);
        ck_assert_int_eq(c[k].fails, 0);
    }
    db = srv_registry_get(r, &st);
    int more;
    json_t *j = srv_dataset_list(db, &a, 0, 1000, &more, &st);
    ck_assert_int_eq(json_array_size(j), 160);
    json_decref(j);
    srv_registry_put(r, db);
    srv_registry_close(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server_registry");
    TCase *tc = tcase_create("registry");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, migrations_apply_once);
    tcase_add_test(tc, tokens_are_hashed);
    tcase_add_test(tc, tokens_list_and_revoke);
    tcase_add_test(tc, visibility);
    tcase_add_test(tc, job_states_and_reconcile);
    tcase_add_test(tc, concurrent_writers);
    tcase_add_test(tc, job_shows_executor_id);
    tcase_add_test(tc, job_writes_raise_generation);
    tcase_add_test(tc, statement_cache);
    tcase_add_test(tc, schema_parity);
    tcase_add_test(tc, two_instances);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
