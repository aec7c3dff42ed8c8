/* Registry: migrations, tokens stored as sha256 (checked against coreutils sha256sum),
 * per-user visibility, job state machine and crash reconciliation, concurrent writers. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_embedded.h"
#include "srv_registry.h"
#include "sx_test.h"

static srv_registry *open_fresh(sqlite3 **db)
{
    sx_status st;
    srv_registry *r = srv_registry_open(sx_test_tmpdir(), &st);
    ck_assert_msg(r, "%s", st.msg);
    *db = srv_registry_get(r, &st);
    ck_assert_ptr_nonnull(*db);
    return r;
}

START_TEST(migrations_apply_once)
{
    sx_status st;
    const char *dir = sx_test_tmpdir();
    srv_registry *r = srv_registry_open(dir, &st);
    ck_assert_msg(r, "%s", st.msg);
    sqlite3 *db = srv_registry_get(r, &st);
    int last = atoi(srv_migrations[srv_n_migrations - 1].name);
    ck_assert_int_ge(last, 1);
    ck_assert_int_eq(srv_registry_version(db), last);
    srv_registry_put(r, db);
    srv_registry_close(r);
    /* reopening migrates nothing and keeps data */
    r = srv_registry_open(dir, &st);
    ck_assert_msg(r, "%s", st.msg);
    db = srv_registry_get(r, &st);
    ck_assert_int_eq(srv_registry_version(db), last);
    sqlite3_stmt *s;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    /* a registry from a newer scalexd is refused */
    sqlite3_exec(db, "PRAGMA user_version=9999", NULL, NULL, NULL);
    srv_registry_put(r, db);
    srv_registry_close(r);
    sx_status_clear(&st);
    ck_assert_ptr_null(srv_registry_open(dir, &st));
    ck_assert_int_eq(st.code, SX_ESTATE);
    ck_assert_ptr_nonnull(strstr(st.msg, "newer scalexd"));
}
END_TEST

START_TEST(tokens_are_hashed)
{
    sqlite3 *db;
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
    sqlite3_stmt *s;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT hash FROM tokens", -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), want);
    sqlite3_finalize(s);
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

static void add_ds(sqlite3 *db, const char *id, int64_t owner)
{
    sx_status st;
    srv_dataset_rec d = {.owner = owner, .name = "n", .format = "h5ad", .path = "datasets/x.h5ad",
                         .sha256 = "00", .size_bytes = 10, .n_obs = 3, .n_vars = 4};
    snprintf(d.id, sizeof d.id, "%s", id);
    ck_assert_msg(srv_dataset_insert(db, &d, &st) == SX_OK, "%s", st.msg);
}

START_TEST(visibility)
{
    sqlite3 *db;
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
    sqlite3 *db;
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
        ck_assert_int_eq(srv_job_next_queued(db, id, &st), 1);
        ck_assert_str_eq(id, "job_x");
        ck_assert_int_eq(srv_job_claim(db, id, &attempts, &req, type, &st), 1);
        free(req);
        ck_assert_int_eq(attempts, round);
        ck_assert_int_eq(srv_job_claim(db, id, &attempts, &req, type, &st), 0); /* claimed once */
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
    ck_assert_int_eq(srv_job_claim(db, "job_y", &attempts, &req, type, &st), 0);
    int64_t counts[8];
    ck_assert_int_eq(srv_job_state_counts(db, counts, &st), SX_OK);
    ck_assert_int_eq(counts[5], 1); /* SYSTEM_ERROR */
    ck_assert_int_eq(counts[7], 1); /* CANCELED */
    int act, q;
    ck_assert_int_eq(srv_job_counts(db, a.id, &act, &q, &st), SX_OK);
    ck_assert_int_eq(act, 0);
    srv_registry_put(r, db);
    srv_registry_close(r);
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
    sqlite3 *db = srv_registry_get(c->r, &st);
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
    sqlite3 *db;
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
    tcase_add_test(tc, visibility);
    tcase_add_test(tc, job_states_and_reconcile);
    tcase_add_test(tc, concurrent_writers);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
