#include "srv_registry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_sha256.h"
#include "srv_embedded.h"
#include "srv_util.h"

#define POOL_MAX 64

struct srv_registry {
    char *data_dir;
    char *db_path;
    pthread_mutex_t mu;
    sqlite3 *idle[POOL_MAX]; /* connections not borrowed right now */
    int n_idle;
};

const char *const srv_job_states[8] = {"QUEUED",    "INITIALIZING",   "RUNNING",      "COMPLETE",
                                       "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELING", "CANCELED"};

int srv_job_state_ok(const char *s)
{
    for (int i = 0; i < 8; i++)
        if (s && !strcmp(s, srv_job_states[i])) return 1;
    return 0;
}

int srv_job_state_terminal(const char *s)
{
    return !strcmp(s, "COMPLETE") || !strcmp(s, "EXECUTOR_ERROR") || !strcmp(s, "SYSTEM_ERROR") ||
           !strcmp(s, "CANCELED");
}

static int db_err(sqlite3 *db, sx_status *st, const char *what)
{
    return sx_status_set(st, SX_EIO, "registry: %s: %s", what, sqlite3_errmsg(db));
}

static int exec_sql(sqlite3 *db, const char *sql, sx_status *st)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        sx_status_set(st, SX_EIO, "registry: %s", err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return SX_EIO;
    }
    return SX_OK;
}

static sqlite3 *open_conn(const char *path, sx_status *st)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        sx_status_set(st, SX_EIO, "cannot open registry %s: %s; check the data dir", path,
                      db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    /* writers wait for each other instead of failing: the daemon's threads and the CLI
     * share the file */
    sqlite3_busy_timeout(db, 10000);
    if (exec_sql(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
                 st)) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

int srv_registry_version(sqlite3 *db)
{
    sqlite3_stmt *s;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK) return -1;
    if (sqlite3_step(s) == SQLITE_ROW) v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

static int migrate(sqlite3 *db, sx_status *st)
{
    /* BEGIN IMMEDIATE: two processes starting at once migrate one after the other */
    for (int i = 0; i < srv_n_migrations; i++) {
        int ver = atoi(srv_migrations[i].name);
        if (exec_sql(db, "BEGIN IMMEDIATE", st)) return st->code;
        int cur = srv_registry_version(db);
        if (cur < 0) {
            exec_sql(db, "ROLLBACK", NULL);
            return db_err(db, st, "reading the schema version");
        }
        if (cur >= ver) {
            exec_sql(db, "COMMIT", NULL);
            continue;
        }
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", ver);
        if (exec_sql(db, srv_migrations[i].sql, st) || exec_sql(db, pragma, st)) {
            exec_sql(db, "ROLLBACK", NULL);
            return sx_status_prefix(st, "migration %s: ", srv_migrations[i].name);
        }
        if (exec_sql(db, "COMMIT", st)) return st->code;
    }
    int last = srv_n_migrations ? atoi(srv_migrations[srv_n_migrations - 1].name) : 0;
    int cur = srv_registry_version(db);
    if (cur > last)
        return sx_status_set(st, SX_ESTATE, "the registry has schema version %d but this scalexd "
                             "knows only up to %d: run a newer scalexd", cur, last);
    return SX_OK;
}

srv_registry *srv_registry_open(const char *data_dir, sx_status *st)
{
    srv_registry *r = calloc(1, sizeof *r);
    if (!r) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    r->data_dir = strdup(data_dir);
    r->db_path = malloc(strlen(data_dir) + 32);
    if (!r->data_dir || !r->db_path) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    sprintf(r->db_path, "%s/registry.sqlite", data_dir);
    if (srv_mkdirs(data_dir, st)) goto fail;
    sqlite3 *db = open_conn(r->db_path, st);
    if (!db) goto fail;
    if (migrate(db, st)) {
        sqlite3_close(db);
        goto fail;
    }
    r->idle[r->n_idle++] = db;
    return r;
fail:
    srv_registry_close(r);
    return NULL;
}

void srv_registry_close(srv_registry *r)
{
    if (!r) return;
    for (int i = 0; i < r->n_idle; i++) sqlite3_close(r->idle[i]);
    pthread_mutex_destroy(&r->mu);
    free(r->data_dir);
    free(r->db_path);
    free(r);
}

const char *srv_registry_data_dir(const srv_registry *r) { return r->data_dir; }

sqlite3 *srv_registry_get(srv_registry *r, sx_status *st)
{
    pthread_mutex_lock(&r->mu);
    sqlite3 *db = r->n_idle ? r->idle[--r->n_idle] : NULL;
    pthread_mutex_unlock(&r->mu);
    return db ? db : open_conn(r->db_path, st);
}

void srv_registry_put(srv_registry *r, sqlite3 *db)
{
    if (!db) return;
    pthread_mutex_lock(&r->mu);
    if (r->n_idle < POOL_MAX) {
        r->idle[r->n_idle++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    if (db) sqlite3_close(db);
}

/* ---- statement helpers ---- */

static sqlite3_stmt *prep(sqlite3 *db, const char *sql, sx_status *st)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        db_err(db, st, "preparing a statement");
        return NULL;
    }
    return s;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v) sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(s, i);
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

static void set_text(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, v ? json_string(v) : json_null());
}

static void set_time(json_t *o, const char *k, sqlite3_stmt *s, int i)
{
    if (sqlite3_column_type(s, i) == SQLITE_NULL) {
        json_object_set_new(o, k, json_null());
        return;
    }
    char iso[32];
    srv_iso_time(sqlite3_column_int64(s, i), iso);
    json_object_set_new(o, k, json_string(iso));
}

static json_t *parse_json_col(sqlite3_stmt *s, int i)
{
    const char *t = col_text(s, i);
    json_t *j = t ? json_loads(t, 0, NULL) : NULL;
    return j ? j : json_null();
}

/* ---- users and tokens ---- */

int srv_user_ensure(sqlite3 *db, const char *name, int admin, srv_user *u, sx_status *st)
{
    if (!srv_name_ok(name))
        return sx_status_set(st, SX_EINVAL, "user name '%s' is not valid: use 1-64 letters, "
                             "digits, '.', '_' or '-'", name ? name : "");
    sqlite3_stmt *s = prep(db, "INSERT INTO users(name, is_admin, created_ms) VALUES(?1, ?2, ?3) "
                               "ON CONFLICT(name) DO UPDATE SET is_admin = max(is_admin, ?2)", st);
    if (!s) return st->code;
    bind_text(s, 1, name);
    sqlite3_bind_int(s, 2, admin ? 1 : 0);
    sqlite3_bind_int64(s, 3, srv_now_ms());
    int rc = sqlite3_step(s) == SQLITE_DONE ? SX_OK : db_err(db, st, "creating a user");
    sqlite3_finalize(s);
    if (rc) return rc;
    s = prep(db, "SELECT id, name, is_admin FROM users WHERE name = ?1", st);
    if (!s) return st->code;
    bind_text(s, 1, name);
    if (sqlite3_step(s) == SQLITE_ROW) {
        if (u) {
            u->id = sqlite3_column_int64(s, 0);
            snprintf(u->name, sizeof u->name, "%s", col_text(s, 1));
            u->admin = sqlite3_column_int(s, 2);
        }
    } else {
        rc = db_err(db, st, "reading a user back");
    }
    sqlite3_finalize(s);
    return rc;
}

static void token_hash(const char *token, char hex[65])
{
    sx_sha256 c;
    sx_sha256_init(&c);
    sx_sha256_update(&c, token, strlen(token));
    sx_sha256_final_hex(&c, hex);
}

int srv_token_create(sqlite3 *db, const char *name, int admin, char token[80], sx_status *st)
{
    srv_user u;
    unsigned char rnd[24];
    int rc = srv_user_ensure(db, name, admin, &u, st);
    if (rc || (rc = srv_random_bytes(rnd, sizeof rnd, st))) return rc;
    int k = snprintf(token, 80, "sxt_");
    for (size_t i = 0; i < sizeof rnd; i++) k += snprintf(token + k, 80 - k, "%02x", rnd[i]);
    char hex[65];
    token_hash(token, hex);
    sqlite3_stmt *s = prep(db, "INSERT INTO tokens(hash, user_id, created_ms) VALUES(?1, ?2, ?3)", st);
    if (!s) return st->code;
    bind_text(s, 1, hex);
    sqlite3_bind_int64(s, 2, u.id);
    sqlite3_bind_int64(s, 3, srv_now_ms());
    rc = sqlite3_step(s) == SQLITE_DONE ? SX_OK : db_err(db, st, "storing a token");
    sqlite3_finalize(s);
    return rc;
}

int srv_token_lookup(sqlite3 *db, const char *token, srv_user *u, sx_status *st)
{
    char hex[65];
    token_hash(token, hex);
    sqlite3_stmt *s = prep(db, "SELECT u.id, u.name, u.is_admin FROM tokens t JOIN users u ON "
                               "u.id = t.user_id WHERE t.hash = ?1", st);
    if (!s) return st->code;
    bind_text(s, 1, hex);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        u->id = sqlite3_column_int64(s, 0);
        snprintf(u->name, sizeof u->name, "%s", col_text(s, 1));
        u->admin = sqlite3_column_int(s, 2);
        rc = SX_OK;
    } else if (rc == SQLITE_DONE) {
        rc = sx_status_set(st, SX_ENOTFOUND, "unknown token");
    } else {
        rc = db_err(db, st, "looking up a token");
    }
    sqlite3_finalize(s);
    return rc;
}

/* ---- datasets ---- */

int srv_dataset_insert(sqlite3 *db, const srv_dataset_rec *d, sx_status *st)
{
    sqlite3_stmt *s = prep(db, "INSERT INTO datasets(id, owner, name, format, path, sha256, "
                               "size_bytes, n_obs, n_vars, obs_columns, created_ms) "
                               "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)", st);
    if (!s) return st->code;
    bind_text(s, 1, d->id);
    sqlite3_bind_int64(s, 2, d->owner);
    bind_text(s, 3, d->name);
    bind_text(s, 4, d->format);
    bind_text(s, 5, d->path);
    bind_text(s, 6, d->sha256);
    sqlite3_bind_int64(s, 7, d->size_bytes);
    sqlite3_bind_int64(s, 8, d->n_obs);
    sqlite3_bind_int64(s, 9, d->n_vars);
    bind_text(s, 10, d->obs_columns ? d->obs_columns : "[]");
    sqlite3_bind_int64(s, 11, srv_now_ms());
    int rc = sqlite3_step(s) == SQLITE_DONE ? SX_OK : db_err(db, st, "storing a dataset");
    sqlite3_finalize(s);
    return rc;
}

#define DS_COLS "d.id, d.name, d.format, d.sha256, d.size_bytes, d.n_obs, d.n_vars, " \
                "d.obs_columns, d.created_ms, u.name"
#define VISIBLE "(d.owner = ?2 OR ?3)"

static json_t *dataset_json(sqlite3_stmt *s)
{
    json_t *o = json_object();
    set_text(o, "id", col_text(s, 0));
    set_text(o, "name", col_text(s, 1));
    set_text(o, "format", col_text(s, 2));
    set_text(o, "sha256", col_text(s, 3));
    json_object_set_new(o, "size_bytes", json_integer(sqlite3_column_int64(s, 4)));
    json_object_set_new(o, "n_obs", json_integer(sqlite3_column_int64(s, 5)));
    json_object_set_new(o, "n_vars", json_integer(sqlite3_column_int64(s, 6)));
    json_object_set_new(o, "obs_columns", parse_json_col(s, 7));
    set_time(o, "created", s, 8);
    set_text(o, "owner", col_text(s, 9));
    return o;
}

/* Step a prepared single-row query into JSON: the row, or NULL with SX_ENOTFOUND (message
 * `missing` with `key`) or a database error. Finalizes s. */
static json_t *one_row(sqlite3 *db, sqlite3_stmt *s, json_t *(*row)(sqlite3_stmt *),
                       const char *what, sx_status *st, const char *missing, const char *key)
{
    json_t *o = NULL;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) o = row(s);
    else if (rc == SQLITE_DONE) sx_status_set(st, SX_ENOTFOUND, missing, key);
    else db_err(db, st, what);
    sqlite3_finalize(s);
    return o;
}

static void bind_user(sqlite3_stmt *s, const srv_user *u)
{
    sqlite3_bind_int64(s, 2, u->id);
    sqlite3_bind_int(s, 3, u->admin ? 1 : 0);
}

json_t *srv_dataset_get(sqlite3 *db, const char *id, const srv_user *u, sx_status *st)
{
    sqlite3_stmt *s = prep(db, "SELECT " DS_COLS " FROM datasets d JOIN users u ON u.id = d.owner "
                               "WHERE d.id = ?1 AND " VISIBLE, st);
    if (!s) return NULL;
    bind_text(s, 1, id);
    bind_user(s, u);
    return one_row(db, s, dataset_json, "reading a dataset", st, "no dataset '%s'", id);
}

/* Step a prepared list query (bound with LIMIT limit + 1) into a JSON array of at most
 * `limit` rows; *more tells whether another page exists. Finalizes s. NULL on error. */
static json_t *page_rows(sqlite3 *db, sqlite3_stmt *s, int limit, int *more,
                         json_t *(*row)(sqlite3_stmt *), const char *what, sx_status *st)
{
    json_t *a = json_array();
    int rc, n = 0;
    *more = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n++ == limit) {
            *more = 1;
            break;
        }
        json_array_append_new(a, row(s));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        db_err(db, st, what);
        json_decref(a);
        a = NULL;
    }
    sqlite3_finalize(s);
    return a;
}

json_t *srv_dataset_list(sqlite3 *db, const srv_user *u, int64_t offset, int limit, int *more,
                         sx_status *st)
{
    sqlite3_stmt *s = prep(db, "SELECT " DS_COLS " FROM datasets d JOIN users u ON u.id = d.owner "
                               "WHERE ?1 IS NULL AND " VISIBLE " ORDER BY d.created_ms DESC, d.id "
                               "LIMIT ?4 OFFSET ?5", st);
    if (!s) return NULL;
    sqlite3_bind_null(s, 1);
    bind_user(s, u);
    sqlite3_bind_int(s, 4, limit + 1);
    sqlite3_bind_int64(s, 5, offset);
    return page_rows(db, s, limit, more, dataset_json, "listing datasets", st);
}

char *srv_dataset_path(sqlite3 *db, const char *id, const srv_user *u, sx_status *st)
{
    sqlite3_stmt *s = prep(db, "SELECT d.path FROM datasets d WHERE d.id = ?1 AND " VISIBLE, st);
    if (!s) return NULL;
    bind_text(s, 1, id);
    bind_user(s, u);
    char *p = NULL;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) p = strdup(col_text(s, 0));
    else if (rc == SQLITE_DONE) sx_status_set(st, SX_ENOTFOUND, "no dataset '%s'", id);
    else db_err(db, st, "reading a dataset");
    sqlite3_finalize(s);
    return p;
}

int srv_dataset_delete(sqlite3 *db, const char *id, const srv_user *u, char **path, sx_status *st)
{
    *path = srv_dataset_path(db, id, u, st);
    if (!*path) return st->code;
    /* a queued or running job reads the file: refuse rather than fail that job later */
    sqlite3_stmt *s = prep(db, "SELECT j.id FROM jobs j, json_each(j.request, '$.datasets') e "
                               "WHERE e.value = ?1 AND j.state IN ('QUEUED','INITIALIZING',"
                               "'RUNNING','CANCELING') LIMIT 1", st);
    int rc = SX_OK;
    if (!s) goto fail;
    bind_text(s, 1, id);
    if (sqlite3_step(s) == SQLITE_ROW)
        rc = sx_status_set(st, SX_ESTATE, "dataset '%s' is used by unfinished job '%s': wait for "
                           "it to finish or cancel it, then delete again", id, col_text(s, 0));
    sqlite3_finalize(s);
    if (rc) goto fail;
    s = prep(db, "DELETE FROM datasets WHERE id = ?1", st);
    if (!s) goto fail;
    bind_text(s, 1, id);
    rc = sqlite3_step(s) == SQLITE_DONE ? SX_OK : db_err(db, st, "deleting a dataset");
    sqlite3_finalize(s);
    if (rc) goto fail;
    return SX_OK;
fail:
    free(*path);
    *path = NULL;
    return st->code ? st->code : SX_EIO;
}

/* ---- references ---- */

int srv_ref_insert(sqlite3 *db, const srv_ref_rec *r, sx_status *st)
{
    sqlite3_stmt *s = prep(db, "INSERT INTO refs(name, path, owner, job_id, description, species, "
                               "tissue, summary, created_ms) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)", st);
    if (!s) return st->code;
    bind_text(s, 1, r->name);
    bind_text(s, 2, r->path);
    if (r->owner) sqlite3_bind_int64(s, 3, r->owner);
    else sqlite3_bind_null(s, 3);
    bind_text(s, 4, r->job_id);
    bind_text(s, 5, r->description);
    bind_text(s, 6, r->species);
    bind_text(s, 7, r->tissue);
    bind_text(s, 8, r->summary ? r->summary : "{}");
    sqlite3_bind_int64(s, 9, srv_now_ms());
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) rc = SX_OK;
    else if (rc == SQLITE_CONSTRAINT)
        rc = sx_status_set(st, SX_ESTATE, "a reference named '%s' already exists: choose another "
                           "name", r->name);
    else rc = db_err(db, st, "storing a reference");
    sqlite3_finalize(s);
    return rc;
}

#define REF_COLS "r.name, r.job_id, r.description, r.species, r.tissue, r.summary, r.created_ms"

static json_t *ref_json(sqlite3_stmt *s)
{
    json_t *o = json_object();
    set_text(o, "name", col_text(s, 0));
    set_text(o, "job", col_text(s, 1));
    set_text(o, "description", col_text(s, 2));
    set_text(o, "species", col_text(s, 3));
    set_text(o, "tissue", col_text(s, 4));
    json_t *sum = parse_json_col(s, 5);
    if (json_is_object(sum)) json_object_update(o, sum);
    json_decref(sum);
    set_time(o, "created", s, 6);
    return o;
}

json_t *srv_ref_get(sqlite3 *db, const char *name, sx_status *st)
{
    sqlite3_stmt *s = prep(db, "SELECT " REF_COLS " FROM refs r WHERE r.name = ?1", st);
    if (!s) return NULL;
    bind_text(s, 1, name);
    return one_row(db, s, ref_json, "reading a reference", st,
                   "no reference named '%s': GET /v1/references lists them", name);
}

char *srv_ref_path(sqlite3 *db, const char *name, sx_status *st)
{
    sqlite3_stmt *s = prep(db, "SELECT path FROM refs WHERE name = ?1", st);
    if (!s) return NULL;
    bind_text(s, 1, name);
    char *p = NULL;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) p = strdup(col_text(s, 0));
    else if (rc == SQLITE_DONE)
        sx_status_set(st, SX_ENOTFOUND, "no reference named '%s': GET /v1/references lists them",
                      name);
    else db_err(db, st, "reading a reference");
    sqlite3_finalize(s);
    return p;
}

json_t *srv_ref_list(sqlite3 *db, sx_status *st)
{
    sqlite3_stmt *s = prep(db, "SELECT " REF_COLS " FROM refs r ORDER BY r.name", st);
    if (!s) return NULL;
    json_t *a = json_array();
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) json_array_append_new(a, ref_json(s));
    if (rc != SQLITE_DONE) {
        db_err(db, st, "listing references");
        json_decref(a);
        a = NULL;
    }
    sqlite3_finalize(s);
    return a;
}

int srv_ref_count(sqlite3 *db)
{
    sqlite3_stmt *s = prep(db, "SELECT count(*) FROM refs", NULL);
    int n = 0;
    if (s && sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return n;
}

/* ---- jobs ---- */

int srv_job_insert(sqlite3 *db, const char *id, int64_t owner, const char *type,
                   const char *request_json, sx_status *st)
{
    sqlite3_stmt *s = prep(db, "INSERT INTO jobs(id, owner, type, state, request, created_ms) "
                               "VALUES(?1, ?2, ?3, 'QUEUED', ?4, ?5)", st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    sqlite3_bind_int64(s, 2, owner);
    bind_text(s, 3, type);
    bind_text(s, 4, request_json);
    sqlite3_bind_int64(s, 5, srv_now_ms());
    int rc = sqlite3_step(s) == SQLITE_DONE ? SX_OK : db_err(db, st, "storing a job");
    sqlite3_finalize(s);
    return rc;
}

#define JOB_COLS "d.id, d.type, d.state, d.stage, d.progress, d.message, d.request, d.error_type, " \
                 "d.error, d.attempts, d.created_ms, d.started_ms, d.finished_ms, u.name"

static json_t *job_json(sqlite3_stmt *s)
{
    json_t *o = json_object();
    const char *id = col_text(s, 0);
    set_text(o, "id", id);
    set_text(o, "type", col_text(s, 1));
    set_text(o, "state", col_text(s, 2));
    set_text(o, "stage", col_text(s, 3));
    json_object_set_new(o, "progress", json_real(sqlite3_column_double(s, 4)));
    set_text(o, "message", col_text(s, 5));
    json_t *req = parse_json_col(s, 6);
    if (json_is_object(req)) {
        const char *k;
        json_t *v;
        json_object_foreach(req, k, v) json_object_set(o, k, v);
    }
    json_decref(req);
    if (sqlite3_column_type(s, 8) != SQLITE_NULL) {
        json_t *e = json_object();
        set_text(e, "type", col_text(s, 7));
        set_text(e, "detail", col_text(s, 8));
        json_object_set_new(o, "error", e);
    } else {
        json_object_set_new(o, "error", json_null());
    }
    json_object_set_new(o, "attempts", json_integer(sqlite3_column_int(s, 9)));
    set_time(o, "created", s, 10);
    set_time(o, "started", s, 11);
    set_time(o, "finished", s, 12);
    json_t *t = json_object();
    int64_t c = sqlite3_column_int64(s, 10);
    int has_start = sqlite3_column_type(s, 11) != SQLITE_NULL;
    int has_end = sqlite3_column_type(s, 12) != SQLITE_NULL;
    int64_t b = has_start ? sqlite3_column_int64(s, 11) : 0, e = sqlite3_column_int64(s, 12);
    int64_t now = srv_now_ms();
    json_object_set_new(t, "queued_seconds", json_real(((has_start ? b : has_end ? e : now) - c) / 1e3));
    json_object_set_new(t, "run_seconds",
                        has_start ? json_real(((has_end ? e : now) - b) / 1e3) : json_null());
    json_object_set_new(o, "timings", t);
    set_text(o, "owner", col_text(s, 13));
    char link[96];
    snprintf(link, sizeof link, "/v1/jobs/%s", id);
    json_object_set_new(o, "self", json_string(link));
    return o;
}

json_t *srv_job_get(sqlite3 *db, const char *id, const srv_user *u, sx_status *st)
{
    sqlite3_stmt *s = prep(db, "SELECT " JOB_COLS " FROM jobs d JOIN users u ON u.id = d.owner "
                               "WHERE d.id = ?1 AND " VISIBLE, st);
    if (!s) return NULL;
    bind_text(s, 1, id);
    bind_user(s, u);
    return one_row(db, s, job_json, "reading a job", st, "no job '%s'", id);
}

json_t *srv_job_list(sqlite3 *db, const srv_user *u, const char *state, int64_t offset, int limit,
                     int *more, sx_status *st)
{
    sqlite3_stmt *s = prep(db, "SELECT " JOB_COLS " FROM jobs d JOIN users u ON u.id = d.owner "
                               "WHERE (?1 IS NULL OR d.state = ?1) AND " VISIBLE
                               " ORDER BY d.created_ms DESC, d.id LIMIT ?4 OFFSET ?5", st);
    if (!s) return NULL;
    bind_text(s, 1, state);
    bind_user(s, u);
    sqlite3_bind_int(s, 4, limit + 1);
    sqlite3_bind_int64(s, 5, offset);
    return page_rows(db, s, limit, more, job_json, "listing jobs", st);
}

int srv_job_state(sqlite3 *db, const char *id, const srv_user *u, char state[16], char type[32],
                  sx_status *st)
{
    sqlite3_stmt *s = prep(db, "SELECT d.state, d.type FROM jobs d WHERE d.id = ?1 AND " VISIBLE, st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    bind_user(s, u);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        snprintf(state, 16, "%s", col_text(s, 0));
        if (type) snprintf(type, 32, "%s", col_text(s, 1));
        rc = SX_OK;
    } else if (rc == SQLITE_DONE) {
        rc = sx_status_set(st, SX_ENOTFOUND, "no job '%s'", id);
    } else {
        rc = db_err(db, st, "reading a job");
    }
    sqlite3_finalize(s);
    return rc;
}

int srv_job_counts(sqlite3 *db, int64_t owner, int *n_active_user, int *n_queued, sx_status *st)
{
    sqlite3_stmt *s = prep(db, "SELECT coalesce(sum(owner = ?1 AND state IN ('QUEUED','INITIALIZING',"
                               "'RUNNING','CANCELING')), 0), coalesce(sum(state = 'QUEUED'), 0) "
                               "FROM jobs WHERE state IN ('QUEUED','INITIALIZING','RUNNING',"
                               "'CANCELING')", st);
    if (!s) return st->code;
    sqlite3_bind_int64(s, 1, owner);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *n_active_user = sqlite3_column_int(s, 0);
        *n_queued = sqlite3_column_int(s, 1);
        rc = SX_OK;
    } else {
        rc = db_err(db, st, "counting jobs");
    }
    sqlite3_finalize(s);
    return rc;
}

int srv_job_state_counts(sqlite3 *db, int64_t counts[8], sx_status *st)
{
    memset(counts, 0, 8 * sizeof *counts);
    sqlite3_stmt *s = prep(db, "SELECT state, count(*) FROM jobs GROUP BY state", st);
    if (!s) return st->code;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        for (int i = 0; i < 8; i++)
            if (!strcmp(col_text(s, 0), srv_job_states[i])) counts[i] = sqlite3_column_int64(s, 1);
    rc = rc == SQLITE_DONE ? SX_OK : db_err(db, st, "counting jobs");
    sqlite3_finalize(s);
    return rc;
}

int srv_job_transition(sqlite3 *db, const char *id, const char *from, const char *to,
                       sx_status *st)
{
    sqlite3_stmt *s = prep(db, "UPDATE jobs SET state = ?2, finished_ms = CASE WHEN ?2 IN "
                               "('COMPLETE','EXECUTOR_ERROR','SYSTEM_ERROR','CANCELED') THEN ?4 "
                               "ELSE finished_ms END WHERE id = ?1 AND (state = ?3 OR (?3 IS NULL "
                               "AND state IN ('QUEUED','INITIALIZING','RUNNING','CANCELING')))", st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    bind_text(s, 2, to);
    bind_text(s, 3, from);
    sqlite3_bind_int64(s, 4, srv_now_ms());
    int rc = sqlite3_step(s) == SQLITE_DONE ? sqlite3_changes(db) > 0
                                            : db_err(db, st, "changing a job's state");
    sqlite3_finalize(s);
    return rc;
}

int srv_job_next_queued(sqlite3 *db, char id[32], sx_status *st)
{
    sqlite3_stmt *s = prep(db, "SELECT id FROM jobs WHERE state = 'QUEUED' ORDER BY created_ms, id "
                               "LIMIT 1", st);
    if (!s) return st->code;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        snprintf(id, 32, "%s", col_text(s, 0));
        rc = 1;
    } else {
        rc = rc == SQLITE_DONE ? 0 : db_err(db, st, "reading the queue");
    }
    sqlite3_finalize(s);
    return rc;
}

int srv_job_claim(sqlite3 *db, const char *id, int *attempts, char **request_json, char type[32],
                  sx_status *st)
{
    sqlite3_stmt *s = prep(db, "UPDATE jobs SET state = 'INITIALIZING', attempts = attempts + 1, "
                               "started_ms = ?2, stage = NULL, progress = 0 WHERE id = ?1 AND "
                               "state = 'QUEUED' RETURNING attempts, request, type", st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    sqlite3_bind_int64(s, 2, srv_now_ms());
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *attempts = sqlite3_column_int(s, 0);
        *request_json = strdup(col_text(s, 1));
        snprintf(type, 32, "%s", col_text(s, 2));
        rc = 1;
        sqlite3_step(s);
    } else {
        rc = rc == SQLITE_DONE ? 0 : db_err(db, st, "claiming a job");
    }
    sqlite3_finalize(s);
    return rc;
}

int srv_job_progress(sqlite3 *db, const char *id, const char *stage, double progress,
                     const char *message, sx_status *st)
{
    /* INITIALIZING -> RUNNING on the first report; CANCELING stays CANCELING */
    sqlite3_stmt *s = prep(db, "UPDATE jobs SET stage = ?2, progress = ?3, message = ?4, "
                               "state = CASE state WHEN 'INITIALIZING' THEN 'RUNNING' ELSE state END "
                               "WHERE id = ?1 AND state IN ('INITIALIZING','RUNNING','CANCELING')", st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    bind_text(s, 2, stage);
    sqlite3_bind_double(s, 3, progress);
    bind_text(s, 4, message);
    int rc = sqlite3_step(s) == SQLITE_DONE ? SX_OK : db_err(db, st, "recording progress");
    sqlite3_finalize(s);
    return rc;
}

int srv_job_finish(sqlite3 *db, const char *id, const char *state, const char *error_type,
                   const char *error, sx_status *st)
{
    sqlite3_stmt *s = prep(db, "UPDATE jobs SET state = ?2, error_type = ?3, error = ?4, "
                               "finished_ms = ?5, progress = CASE WHEN ?2 = 'COMPLETE' THEN 1 ELSE "
                               "progress END, started_ms = coalesce(started_ms, ?5) WHERE id = ?1", st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    bind_text(s, 2, state);
    bind_text(s, 3, error_type);
    bind_text(s, 4, error);
    sqlite3_bind_int64(s, 5, srv_now_ms());
    int rc = sqlite3_step(s) == SQLITE_DONE ? SX_OK : db_err(db, st, "finishing a job");
    sqlite3_finalize(s);
    return rc;
}

int srv_job_reconcile(sqlite3 *db, int max_attempts, int *n_requeued, int *n_failed,
                      sx_status *st)
{
    *n_requeued = *n_failed = 0;
    if (exec_sql(db, "BEGIN IMMEDIATE", st)) return st->code;
    sqlite3_stmt *s = prep(db, "UPDATE jobs SET state = 'CANCELED', finished_ms = ?1, message = "
                               "'canceled while the daemon stopped' WHERE state = 'CANCELING'", st);
    if (!s || sqlite3_bind_int64(s, 1, srv_now_ms()) || sqlite3_step(s) != SQLITE_DONE) goto fail;
    sqlite3_finalize(s);
    s = prep(db, "UPDATE jobs SET state = 'QUEUED', stage = NULL, progress = 0, message = "
                 "'re-queued: the daemon stopped while the job ran (attempt ' || attempts || ')' "
                 "WHERE state IN ('INITIALIZING','RUNNING') AND attempts < ?1", st);
    if (!s || sqlite3_bind_int(s, 1, max_attempts) || sqlite3_step(s) != SQLITE_DONE) goto fail;
    *n_requeued = sqlite3_changes(db);
    sqlite3_finalize(s);
    s = prep(db, "UPDATE jobs SET state = 'SYSTEM_ERROR', finished_ms = ?2, error_type = "
                 "'interrupted', error = 'the daemon stopped while this job ran, ' || attempts || "
                 "' times (the limit is ' || ?1 || '): it may exhaust memory or crash the daemon; "
                 "submit it again with a smaller input or fewer iterations, and check the daemon log' "
                 "WHERE state IN ('INITIALIZING','RUNNING')", st);
    if (!s || sqlite3_bind_int(s, 1, max_attempts) || sqlite3_bind_int64(s, 2, srv_now_ms()) ||
        sqlite3_step(s) != SQLITE_DONE)
        goto fail;
    *n_failed = sqlite3_changes(db);
    sqlite3_finalize(s);
    if (exec_sql(db, "COMMIT", st)) return st->code;
    return *n_requeued + *n_failed;
fail:
    if (st && st->code == SX_OK) db_err(db, st, "reconciling jobs");
    sqlite3_finalize(s);
    exec_sql(db, "ROLLBACK", NULL);
    return st ? st->code : SX_EIO;
}
