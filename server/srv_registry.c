#include "srv_registry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sx_sha256.h"
#include "srv_embedded.h"
#include "srv_layout.h"
#include "srv_util.h"

#define POOL_MAX 64

struct srv_registry {
    char *data_dir;
    char *db_path;  /* SQLite file, or the PostgreSQL URL */
    srv_db_kind kind;
    char instance[128];
    pthread_mutex_t mu;
    srv_db *idle[POOL_MAX]; /* connections not borrowed right now */
    int n_idle;
};

const char *const srv_job_states[SRV_JOB_N_STATES] = {
    "QUEUED", "INITIALIZING", "RUNNING", "COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR",
    "CANCELING", "CANCELED"};

const char *srv_jstate_name(srv_jstate s)
{
    return (unsigned)s < SRV_JOB_N_STATES ? srv_job_states[s] : "UNKNOWN";
}

int srv_jstate_parse(const char *name, srv_jstate *out, sx_status *st)
{
    for (int i = 0; name && i < SRV_JOB_N_STATES; i++)
        if (!strcmp(name, srv_job_states[i])) {
            *out = (srv_jstate)i;
            return SX_OK;
        }
    return sx_status_set(st, SX_EINVAL, "'%s' is not a job state: use QUEUED, INITIALIZING, "
                         "RUNNING, COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR, CANCELING or CANCELED",
                         name ? name : "");
}

int srv_jstate_terminal(srv_jstate s)
{
    return s == SRV_JOB_COMPLETE || s == SRV_JOB_EXECUTOR_ERROR || s == SRV_JOB_SYSTEM_ERROR ||
           s == SRV_JOB_CANCELED;
}

int srv_job_state_ok(const char *s)
{
    srv_jstate v;
    return srv_jstate_parse(s, &v, NULL) == SX_OK;
}

int srv_job_state_terminal(const char *s)
{
    srv_jstate v;
    return srv_jstate_parse(s, &v, NULL) == SX_OK && srv_jstate_terminal(v);
}

static int db_err(srv_db *db, sx_status *st, const char *what)
{
    return sx_status_set(st, SX_EIO, "registry: %s: %s", what, srv_db_errmsg(db));
}

static int exec_sql(srv_db *db, const char *sql, sx_status *st) { return srv_db_exec(db, sql, st); }

static srv_stmt *prep(srv_db *db, const char *sql, sx_status *st)
{
    return srv_db_prepare(db, sql, st);
}

static srv_db *open_conn(const srv_registry *r, sx_status *st)
{
    srv_db *db = r->kind == SRV_DB_POSTGRES ? srv_db_open_postgres(r->db_path, st)
                                            : srv_db_open_sqlite(r->db_path, st);
    if (db) srv_db_set_tag(db, r->instance);
    return db;
}

int srv_registry_version(srv_db *db)
{
    int v = -1;
    int pg = srv_db_kind_of(db) == SRV_DB_POSTGRES;
    srv_stmt *s = srv_db_prepare(db, pg ? "SELECT coalesce(max(version), 0) FROM schema_version"
                                        : "PRAGMA user_version", NULL);
    if (s && srv_stmt_step(s) == SRV_DB_ROW) v = srv_stmt_column_int(s, 0);
    srv_stmt_done(s);
    return v;
}

/* The migration of version `name` for this database: PostgreSQL takes the variant in
 * schema/postgres/ when there is one (types SQLite spells differently), else the shared
 * portable file. */
static const char *migration_sql(srv_db_kind kind, int i)
{
    if (kind == SRV_DB_POSTGRES)
        for (int k = 0; k < srv_n_migrations_pg; k++)
            if (!strcmp(srv_migrations_pg[k].name, srv_migrations[i].name))
                return srv_migrations_pg[k].sql;
    return srv_migrations[i].sql;
}

static int migrate(srv_db *db, sx_status *st)
{
    srv_db_kind kind = srv_db_kind_of(db);
    if (kind == SRV_DB_POSTGRES) {
        /* under the writer lock: instances starting together create it once */
        if (srv_db_begin(db, st) ||
            exec_sql(db, "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL, "
                         "applied_ms BIGINT NOT NULL)", st) ||
            srv_db_commit(db, st))
            return sx_status_prefix(st, "creating the schema_version table: ");
    }
    /* one writer transaction per migration: two processes starting at once migrate one
     * after the other */
    for (int i = 0; i < srv_n_migrations; i++) {
        int ver = atoi(srv_migrations[i].name);
        if (srv_db_begin(db, st)) return st->code;
        int cur = srv_registry_version(db);
        if (cur < 0) {
            srv_db_rollback(db);
            return db_err(db, st, "reading the schema version");
        }
        if (cur >= ver) {
            srv_db_commit(db, NULL);
            continue;
        }
        char mark[128];
        if (kind == SRV_DB_POSTGRES)
            snprintf(mark, sizeof mark, "INSERT INTO schema_version(version, applied_ms) "
                     "VALUES(%d, %lld)", ver, (long long)srv_now_ms());
        else
            snprintf(mark, sizeof mark, "PRAGMA user_version=%d", ver);
        if (exec_sql(db, migration_sql(kind, i), st) || exec_sql(db, mark, st)) {
            srv_db_rollback(db);
            return sx_status_prefix(st, "migration %s: ", srv_migrations[i].name);
        }
        if (srv_db_commit(db, st)) return st->code;
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
    return srv_registry_open_url(data_dir, NULL, st);
}

srv_registry *srv_registry_open_url(const char *data_dir, const char *url, sx_status *st)
{
    int kind = srv_db_url_kind(url);
    if (!kind) {
        char shown[512];
        srv_db_url_redact(url, shown, sizeof shown);
        sx_status_set(st, SX_EINVAL, "registry '%s' is not a PostgreSQL URL: use "
                      "postgresql://USER@HOST:PORT/DBNAME, or leave it unset for SQLite in the "
                      "data dir", shown);
        return NULL;
    }
    srv_registry *r = calloc(1, sizeof *r);
    if (!r) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    r->kind = (srv_db_kind)kind;
    /* default instance name: the host (one daemon per host unless told otherwise) */
    if (gethostname(r->instance, sizeof r->instance - 1)) snprintf(r->instance, 8, "scalexd");
    r->data_dir = strdup(data_dir);
    r->db_path = malloc(strlen(data_dir) + (url ? strlen(url) : 0) + 32);
    if (!r->data_dir || !r->db_path) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    if (r->kind == SRV_DB_POSTGRES) strcpy(r->db_path, url);
    else if (srv_layout_registry_file(data_dir, r->db_path, strlen(data_dir) + 32, st)) goto fail;
    if (srv_mkdirs(data_dir, st)) goto fail;
    srv_db *db = open_conn(r, st);
    if (!db) goto fail;
    if (migrate(db, st)) {
        srv_db_close(db);
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
    for (int i = 0; i < r->n_idle; i++) srv_db_close(r->idle[i]);
    pthread_mutex_destroy(&r->mu);
    free(r->data_dir);
    free(r->db_path);
    free(r);
}

const char *srv_registry_data_dir(const srv_registry *r) { return r->data_dir; }
srv_db_kind srv_registry_kind(const srv_registry *r) { return r->kind; }

void srv_registry_set_instance(srv_registry *r, const char *name)
{
    pthread_mutex_lock(&r->mu);
    if (name && *name) snprintf(r->instance, sizeof r->instance, "%s", name);
    pthread_mutex_unlock(&r->mu);
}

const char *srv_registry_instance(const srv_registry *r) { return r->instance; }

srv_db *srv_registry_get(srv_registry *r, sx_status *st)
{
    pthread_mutex_lock(&r->mu);
    srv_db *db = r->n_idle ? r->idle[--r->n_idle] : NULL;
    pthread_mutex_unlock(&r->mu);
    if (db) srv_db_set_tag(db, r->instance);
    return db ? db : open_conn(r, st);
}

void srv_registry_put(srv_registry *r, srv_db *db)
{
    if (!db) return;
    if (!srv_db_usable(db)) { /* broken (a PostgreSQL restart): the next get reconnects */
        srv_db_close(db);
        return;
    }
    pthread_mutex_lock(&r->mu);
    if (r->n_idle < POOL_MAX) {
        r->idle[r->n_idle++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    if (db) srv_db_close(db);
}

/* ---- statement helpers ---- */

static void bind_text(srv_stmt *s, int i, const char *v) { srv_stmt_bind_text(s, i, v); }

static const char *col_text(srv_stmt *s, int i)
{
    return srv_stmt_column_text(s, i);
}

static void set_text(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, v ? json_string(v) : json_null());
}

static void set_time(json_t *o, const char *k, srv_stmt *s, int i)
{
    if (srv_stmt_column_null(s, i)) {
        json_object_set_new(o, k, json_null());
        return;
    }
    char iso[32];
    srv_iso_time(srv_stmt_column_int64(s, i), iso);
    json_object_set_new(o, k, json_string(iso));
}

static json_t *parse_json_col(srv_stmt *s, int i)
{
    const char *t = col_text(s, i);
    json_t *j = t ? json_loads(t, 0, NULL) : NULL;
    return j ? j : json_null();
}

/* ---- users and tokens ---- */

int srv_user_ensure(srv_db *db, const char *name, int admin, srv_user *u, sx_status *st)
{
    if (!srv_name_ok(name))
        return sx_status_set(st, SX_EINVAL, "user name '%s' is not valid: use 1-64 letters, "
                             "digits, '.', '_' or '-'", name ? name : "");
    srv_stmt *s = prep(db, "INSERT INTO users(name, is_admin, created_ms) VALUES(?1, ?2, ?3) "
                               "ON CONFLICT(name) DO UPDATE SET is_admin = CASE WHEN ?2 > users.is_admin "
                               "THEN ?2 ELSE users.is_admin END", st);
    if (!s) return st->code;
    bind_text(s, 1, name);
    srv_stmt_bind_int64(s, 2, admin ? 1 : 0);
    srv_stmt_bind_int64(s, 3, srv_now_ms());
    int rc = srv_stmt_step(s) == SRV_DB_DONE ? SX_OK : db_err(db, st, "creating a user");
    srv_stmt_done(s);
    if (rc) return rc;
    s = prep(db, "SELECT id, name, is_admin FROM users WHERE name = ?1", st);
    if (!s) return st->code;
    bind_text(s, 1, name);
    if (srv_stmt_step(s) == SRV_DB_ROW) {
        if (u) {
            u->id = srv_stmt_column_int64(s, 0);
            snprintf(u->name, sizeof u->name, "%s", col_text(s, 1));
            u->admin = srv_stmt_column_int(s, 2);
        }
    } else {
        rc = db_err(db, st, "reading a user back");
    }
    srv_stmt_done(s);
    return rc;
}

static void token_hash(const char *token, char hex[65])
{
    sx_sha256 c;
    sx_sha256_init(&c);
    sx_sha256_update(&c, token, strlen(token));
    sx_sha256_final_hex(&c, hex);
}

int srv_token_create(srv_db *db, const char *name, int admin, char token[80], sx_status *st)
{
    srv_user u;
    unsigned char rnd[24];
    int rc = srv_user_ensure(db, name, admin, &u, st);
    if (rc || (rc = srv_random_bytes(rnd, sizeof rnd, st))) return rc;
    int k = snprintf(token, 80, "sxt_");
    for (size_t i = 0; i < sizeof rnd; i++) k += snprintf(token + k, 80 - k, "%02x", rnd[i]);
    char hex[65];
    token_hash(token, hex);
    srv_stmt *s = prep(db, "INSERT INTO tokens(hash, user_id, created_ms) VALUES(?1, ?2, ?3)", st);
    if (!s) return st->code;
    bind_text(s, 1, hex);
    srv_stmt_bind_int64(s, 2, u.id);
    srv_stmt_bind_int64(s, 3, srv_now_ms());
    rc = srv_stmt_step(s) == SRV_DB_DONE ? SX_OK : db_err(db, st, "storing a token");
    srv_stmt_done(s);
    return rc;
}

int srv_token_lookup(srv_db *db, const char *token, srv_user *u, sx_status *st)
{
    char hex[65];
    token_hash(token, hex);
    return srv_token_lookup_hash(db, hex, u, st);
}

int srv_token_lookup_hash(srv_db *db, const char *hex, srv_user *u, sx_status *st)
{
    srv_stmt *s = prep(db, "SELECT u.id, u.name, u.is_admin FROM tokens t JOIN users u ON "
                               "u.id = t.user_id WHERE t.hash = ?1", st);
    if (!s) return st->code;
    bind_text(s, 1, hex);
    int rc = srv_stmt_step(s);
    if (rc == SRV_DB_ROW) {
        u->id = srv_stmt_column_int64(s, 0);
        snprintf(u->name, sizeof u->name, "%s", col_text(s, 1));
        u->admin = srv_stmt_column_int(s, 2);
        rc = SX_OK;
    } else if (rc == SRV_DB_DONE) {
        rc = sx_status_set(st, SX_ENOTFOUND, "unknown token");
    } else {
        rc = db_err(db, st, "looking up a token");
    }
    srv_stmt_done(s);
    return rc;
}

/* A token's public id: the first 12 hex digits of its sha256 — enough to tell a user's
 * tokens apart and to revoke one, useless for signing in. */
#define TOKEN_ID_LEN 12

json_t *srv_token_list(srv_db *db, const char *user, sx_status *st)
{
    srv_stmt *s = prep(db, "SELECT t.hash, u.name, u.is_admin, t.created_ms FROM tokens t JOIN "
                               "users u ON u.id = t.user_id WHERE ?1 IS NULL OR u.name = ?1 "
                               "ORDER BY u.name, t.created_ms, t.hash", st);
    if (!s) return NULL;
    bind_text(s, 1, user);
    json_t *a = json_array();
    int rc;
    while ((rc = srv_stmt_step(s)) == SRV_DB_ROW) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_stringn(col_text(s, 0), TOKEN_ID_LEN));
        set_text(o, "user", col_text(s, 1));
        json_object_set_new(o, "admin", json_boolean(srv_stmt_column_int(s, 2)));
        set_time(o, "created", s, 3);
        json_array_append_new(a, o);
    }
    if (rc != SRV_DB_DONE) {
        db_err(db, st, "listing tokens");
        json_decref(a);
        a = NULL;
    }
    srv_stmt_done(s);
    return a;
}

int srv_token_revoke(srv_db *db, const char *token, const char *user, int *n, sx_status *st)
{
    *n = 0;
    char hex[65] = "";
    if (token) {
        size_t len = strlen(token);
        if (!strncmp(token, "sxt_", 4)) {
            token_hash(token, hex);
        } else if (len >= 8 && len <= 64 && strspn(token, "0123456789abcdef") == len) {
            snprintf(hex, sizeof hex, "%s", token);
        } else {
            return sx_status_set(st, SX_EINVAL, "'%s' is neither a token (sxt_...) nor a token "
                                 "id (8 to 64 lowercase hex digits, as `scalexd token list` "
                                 "shows)", token);
        }
        /* an id prefix must name exactly one token: never revoke more than was meant */
        srv_stmt *c = prep(db, "SELECT count(*) FROM tokens WHERE hash LIKE ?1 || '%'", st);
        if (!c) return st->code;
        bind_text(c, 1, hex); /* hex digits only: no LIKE wildcards */
        int64_t k = srv_stmt_step(c) == SRV_DB_ROW ? srv_stmt_column_int64(c, 0) : -1;
        srv_stmt_done(c);
        if (k < 0) return db_err(db, st, "looking up a token");
        if (k == 0)
            return sx_status_set(st, SX_ENOTFOUND, "no token matches '%s' (`scalexd token "
                                 "list` shows the ids)", token);
        if (k > 1)
            return sx_status_set(st, SX_EINVAL, "%lld tokens start with '%s': give more of "
                                 "its id", (long long)k, token);
    } else if (!user) {
        return sx_status_set(st, SX_EINVAL, "revoke what: give a token, a token id or a user");
    }
    srv_stmt *s = prep(db, "DELETE FROM tokens WHERE hash LIKE ?1 || '%' AND (?2 IS NULL OR "
                               "user_id = (SELECT id FROM users WHERE name = ?2))", st);
    if (!s) return st->code;
    bind_text(s, 1, hex);
    bind_text(s, 2, user);
    int rc = srv_stmt_step(s) == SRV_DB_DONE ? SX_OK : db_err(db, st, "revoking tokens");
    if (rc == SX_OK) *n = (int)srv_db_changes(db);
    srv_stmt_done(s);
    return rc;
}

/* ---- datasets ---- */

int srv_dataset_insert(srv_db *db, const srv_dataset_rec *d, sx_status *st)
{
    srv_stmt *s = prep(db, "INSERT INTO datasets(id, owner, name, format, path, sha256, "
                               "size_bytes, n_obs, n_vars, obs_columns, created_ms) "
                               "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)", st);
    if (!s) return st->code;
    bind_text(s, 1, d->id);
    srv_stmt_bind_int64(s, 2, d->owner);
    bind_text(s, 3, d->name);
    bind_text(s, 4, d->format);
    bind_text(s, 5, d->path);
    bind_text(s, 6, d->sha256);
    srv_stmt_bind_int64(s, 7, d->size_bytes);
    srv_stmt_bind_int64(s, 8, d->n_obs);
    srv_stmt_bind_int64(s, 9, d->n_vars);
    bind_text(s, 10, d->obs_columns ? d->obs_columns : "[]");
    srv_stmt_bind_int64(s, 11, srv_now_ms());
    int rc = srv_stmt_step(s) == SRV_DB_DONE ? SX_OK : db_err(db, st, "storing a dataset");
    srv_stmt_done(s);
    return rc;
}

#define DS_COLS "d.id, d.name, d.format, d.sha256, d.size_bytes, d.n_obs, d.n_vars, " \
                "d.obs_columns, d.created_ms, u.name"
#define VISIBLE "(d.owner = ?2 OR ?3 = 1)"

static json_t *dataset_json(srv_stmt *s)
{
    json_t *o = json_object();
    set_text(o, "id", col_text(s, 0));
    set_text(o, "name", col_text(s, 1));
    set_text(o, "format", col_text(s, 2));
    set_text(o, "sha256", col_text(s, 3));
    json_object_set_new(o, "size_bytes", json_integer(srv_stmt_column_int64(s, 4)));
    json_object_set_new(o, "n_obs", json_integer(srv_stmt_column_int64(s, 5)));
    json_object_set_new(o, "n_vars", json_integer(srv_stmt_column_int64(s, 6)));
    json_object_set_new(o, "obs_columns", parse_json_col(s, 7));
    set_time(o, "created", s, 8);
    set_text(o, "owner", col_text(s, 9));
    return o;
}

/* Step a prepared single-row query into JSON: the row, or NULL with SX_ENOTFOUND (message
 * `missing` with `key`) or a database error. Finalizes s. */
static json_t *one_row(srv_db *db, srv_stmt *s, json_t *(*row)(srv_stmt *),
                       const char *what, sx_status *st, const char *missing, const char *key)
{
    json_t *o = NULL;
    int rc = srv_stmt_step(s);
    if (rc == SRV_DB_ROW) o = row(s);
    else if (rc == SRV_DB_DONE) sx_status_set(st, SX_ENOTFOUND, missing, key);
    else db_err(db, st, what);
    srv_stmt_done(s);
    return o;
}

static void bind_user(srv_stmt *s, const srv_user *u)
{
    srv_stmt_bind_int64(s, 2, u->id);
    srv_stmt_bind_int64(s, 3, u->admin ? 1 : 0);
}

json_t *srv_dataset_get(srv_db *db, const char *id, const srv_user *u, sx_status *st)
{
    srv_stmt *s = prep(db, "SELECT " DS_COLS " FROM datasets d JOIN users u ON u.id = d.owner "
                               "WHERE d.id = ?1 AND " VISIBLE, st);
    if (!s) return NULL;
    bind_text(s, 1, id);
    bind_user(s, u);
    return one_row(db, s, dataset_json, "reading a dataset", st, "no dataset '%s'", id);
}

/* Step a prepared list query (bound with LIMIT limit + 1) into a JSON array of at most
 * `limit` rows; *more tells whether another page exists. Finalizes s. NULL on error. */
static json_t *page_rows(srv_db *db, srv_stmt *s, int limit, int *more,
                         json_t *(*row)(srv_stmt *), const char *what, sx_status *st)
{
    json_t *a = json_array();
    int rc, n = 0;
    *more = 0;
    while ((rc = srv_stmt_step(s)) == SRV_DB_ROW) {
        if (n++ == limit) {
            *more = 1;
            break;
        }
        json_array_append_new(a, row(s));
    }
    if (rc != SRV_DB_ROW && rc != SRV_DB_DONE) {
        db_err(db, st, what);
        json_decref(a);
        a = NULL;
    }
    srv_stmt_done(s);
    return a;
}

json_t *srv_dataset_list(srv_db *db, const srv_user *u, int64_t offset, int limit, int *more,
                         sx_status *st)
{
    srv_stmt *s = prep(db, "SELECT " DS_COLS " FROM datasets d JOIN users u ON u.id = d.owner "
                               "WHERE ?1 IS NULL AND " VISIBLE " ORDER BY d.created_ms DESC, d.id "
                               "LIMIT ?4 OFFSET ?5", st);
    if (!s) return NULL;
    bind_text(s, 1, NULL); /* keeps ?2.. numbered as in VISIBLE */
    bind_user(s, u);
    srv_stmt_bind_int64(s, 4, limit + 1);
    srv_stmt_bind_int64(s, 5, offset);
    return page_rows(db, s, limit, more, dataset_json, "listing datasets", st);
}

char *srv_dataset_path(srv_db *db, const char *id, const srv_user *u, sx_status *st)
{
    srv_stmt *s = prep(db, "SELECT d.path FROM datasets d WHERE d.id = ?1 AND " VISIBLE, st);
    if (!s) return NULL;
    bind_text(s, 1, id);
    bind_user(s, u);
    char *p = NULL;
    int rc = srv_stmt_step(s);
    if (rc == SRV_DB_ROW) p = strdup(col_text(s, 0));
    else if (rc == SRV_DB_DONE) sx_status_set(st, SX_ENOTFOUND, "no dataset '%s'", id);
    else db_err(db, st, "reading a dataset");
    srv_stmt_done(s);
    return p;
}

int srv_dataset_sha256(srv_db *db, const char *id, char hex[65], sx_status *st)
{
    srv_stmt *s = prep(db, "SELECT d.sha256 FROM datasets d WHERE d.id = ?1", st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    int rc = srv_stmt_step(s), out = SX_ENOTFOUND;
    const char *h = rc == SRV_DB_ROW ? col_text(s, 0) : NULL;
    if (h && strlen(h) == 64 && strspn(h, "0123456789abcdef") == 64) {
        memcpy(hex, h, 65);
        out = SX_OK;
    } else if (rc != SRV_DB_ROW && rc != SRV_DB_DONE) {
        out = db_err(db, st, "reading a dataset");
    } else {
        sx_status_set(st, SX_ENOTFOUND, "dataset '%s' has no recorded digest", id);
    }
    srv_stmt_done(s);
    return out;
}

int srv_dataset_row_get(srv_db *db, const char *id, const srv_user *u, srv_dataset_row *out,
                        sx_status *st)
{
    memset(out, 0, sizeof *out);
    srv_stmt *s = prep(db, "SELECT d.id, d.owner, d.n_obs, d.n_vars, d.path, d.obs_columns "
                               "FROM datasets d WHERE d.id = ?1 AND " VISIBLE, st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    bind_user(s, u);
    int rc = srv_stmt_step(s);
    if (rc == SRV_DB_ROW) {
        snprintf(out->id, sizeof out->id, "%s", col_text(s, 0));
        out->owner = srv_stmt_column_int64(s, 1);
        out->n_obs = srv_stmt_column_int64(s, 2);
        out->n_vars = srv_stmt_column_int64(s, 3);
        out->path = strdup(col_text(s, 4));
        out->obs_columns = strdup(col_text(s, 5));
        rc = out->path && out->obs_columns ? SX_OK : sx_status_set(st, SX_ENOMEM, "out of memory");
    } else if (rc == SRV_DB_DONE) {
        rc = sx_status_set(st, SX_ENOTFOUND, "no dataset '%s'", id);
    } else {
        rc = db_err(db, st, "reading a dataset");
    }
    srv_stmt_done(s);
    if (rc) srv_dataset_row_free(out);
    return rc;
}

void srv_dataset_row_free(srv_dataset_row *r)
{
    free(r->path);
    free(r->obs_columns);
    r->path = r->obs_columns = NULL;
}

int srv_dataset_delete(srv_db *db, const char *id, const srv_user *u, char **path, sx_status *st)
{
    *path = srv_dataset_path(db, id, u, st);
    if (!*path) return st->code;
    /* a queued or running job reads the file: refuse rather than fail that job later */
    /* the one query without a portable spelling: the request's datasets array */
    srv_stmt *s = prep(db, srv_db_kind_of(db) == SRV_DB_POSTGRES
                               ? "SELECT j.id FROM jobs j, jsonb_array_elements_text("
                                 "j.request::jsonb -> 'datasets') e(value) WHERE e.value = ?1 AND "
                                 "j.state IN ('QUEUED','INITIALIZING','RUNNING','CANCELING') LIMIT 1"
                               : "SELECT j.id FROM jobs j, json_each(j.request, '$.datasets') e "
                                 "WHERE e.value = ?1 AND j.state IN ('QUEUED','INITIALIZING',"
                                 "'RUNNING','CANCELING') LIMIT 1", st);
    int rc = SX_OK;
    if (!s) goto fail;
    bind_text(s, 1, id);
    if (srv_stmt_step(s) == SRV_DB_ROW)
        rc = sx_status_set(st, SX_ESTATE, "dataset '%s' is used by unfinished job '%s': wait for "
                           "it to finish or cancel it, then delete again", id, col_text(s, 0));
    srv_stmt_done(s);
    if (rc) goto fail;
    s = prep(db, "DELETE FROM datasets WHERE id = ?1", st);
    if (!s) goto fail;
    bind_text(s, 1, id);
    rc = srv_stmt_step(s) == SRV_DB_DONE ? SX_OK : db_err(db, st, "deleting a dataset");
    srv_stmt_done(s);
    if (rc) goto fail;
    return SX_OK;
fail:
    free(*path);
    *path = NULL;
    return st->code ? st->code : SX_EIO;
}

/* ---- references ---- */

int srv_ref_insert(srv_db *db, const srv_ref_rec *r, sx_status *st)
{
    srv_stmt *s = prep(db, "INSERT INTO refs(name, path, owner, job_id, description, species, "
                               "tissue, summary, created_ms) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)", st);
    if (!s) return st->code;
    bind_text(s, 1, r->name);
    bind_text(s, 2, r->path);
    if (r->owner) srv_stmt_bind_int64(s, 3, r->owner);
    else srv_stmt_bind_null(s, 3);
    bind_text(s, 4, r->job_id);
    bind_text(s, 5, r->description);
    bind_text(s, 6, r->species);
    bind_text(s, 7, r->tissue);
    bind_text(s, 8, r->summary ? r->summary : "{}");
    srv_stmt_bind_int64(s, 9, srv_now_ms());
    int rc = srv_stmt_step(s);
    if (rc == SRV_DB_DONE) rc = SX_OK;
    else if (rc == SRV_DB_CONSTRAINT)
        rc = sx_status_set(st, SX_ESTATE, "a reference named '%s' already exists: choose another "
                           "name", r->name);
    else rc = db_err(db, st, "storing a reference");
    srv_stmt_done(s);
    return rc;
}

#define REF_COLS "r.name, r.job_id, r.description, r.species, r.tissue, r.summary, r.created_ms"

static json_t *ref_json(srv_stmt *s)
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

json_t *srv_ref_get(srv_db *db, const char *name, sx_status *st)
{
    srv_stmt *s = prep(db, "SELECT " REF_COLS " FROM refs r WHERE r.name = ?1", st);
    if (!s) return NULL;
    bind_text(s, 1, name);
    return one_row(db, s, ref_json, "reading a reference", st,
                   "no reference named '%s'", name);
}

char *srv_ref_path(srv_db *db, const char *name, sx_status *st)
{
    srv_stmt *s = prep(db, "SELECT path FROM refs WHERE name = ?1", st);
    if (!s) return NULL;
    bind_text(s, 1, name);
    char *p = NULL;
    int rc = srv_stmt_step(s);
    if (rc == SRV_DB_ROW) p = strdup(col_text(s, 0));
    else if (rc == SRV_DB_DONE)
        sx_status_set(st, SX_ENOTFOUND, "no reference named '%s'", name);
    else db_err(db, st, "reading a reference");
    srv_stmt_done(s);
    return p;
}

json_t *srv_ref_list(srv_db *db, sx_status *st)
{
    srv_stmt *s = prep(db, "SELECT " REF_COLS " FROM refs r ORDER BY r.name", st);
    if (!s) return NULL;
    json_t *a = json_array();
    int rc;
    while ((rc = srv_stmt_step(s)) == SRV_DB_ROW) json_array_append_new(a, ref_json(s));
    if (rc != SRV_DB_DONE) {
        db_err(db, st, "listing references");
        json_decref(a);
        a = NULL;
    }
    srv_stmt_done(s);
    return a;
}

int srv_ref_count(srv_db *db)
{
    srv_stmt *s = prep(db, "SELECT count(*) FROM refs", NULL);
    int n = 0;
    if (s && srv_stmt_step(s) == SRV_DB_ROW) n = srv_stmt_column_int(s, 0);
    srv_stmt_done(s);
    return n;
}

int srv_ref_owner(srv_db *db, const char *name, int64_t *owner, sx_status *st)
{
    srv_stmt *s = prep(db, "SELECT coalesce(owner, 0) FROM refs WHERE name = ?1", st);
    if (!s) return st->code;
    bind_text(s, 1, name);
    int r = srv_stmt_step(s), rc = SX_OK;
    if (r == SRV_DB_ROW) *owner = srv_stmt_column_int64(s, 0);
    else if (r == SRV_DB_DONE) rc = sx_status_set(st, SX_ENOTFOUND, "no reference named '%s'", name);
    else rc = db_err(db, st, "reading a reference");
    srv_stmt_done(s);
    return rc;
}

int srv_ref_delete(srv_db *db, const char *name, sx_status *st)
{
    srv_stmt *s = prep(db, "DELETE FROM refs WHERE name = ?1", st);
    if (!s) return st->code;
    bind_text(s, 1, name);
    int rc = srv_stmt_step(s) == SRV_DB_DONE ? SX_OK : db_err(db, st, "withdrawing a reference");
    srv_stmt_done(s);
    if (rc == SX_OK && srv_db_changes(db) == 0)
        rc = sx_status_set(st, SX_ENOTFOUND, "no reference named '%s'", name);
    return rc;
}

/* ---- jobs ---- */

/* Raised after every write to a job's rows, whether or not it changed one (an extra
 * raise costs a cache miss, a missing one a stale view). */
static atomic_ullong job_gen;

uint64_t srv_job_generation(void) { return atomic_load(&job_gen); }
void srv_job_changed(void) { atomic_fetch_add(&job_gen, 1); }

int srv_job_insert(srv_db *db, const char *id, int64_t owner, const char *type,
                   const char *request_json, sx_status *st)
{
    srv_stmt *s = prep(db, "INSERT INTO jobs(id, owner, type, state, request, created_ms) "
                               "VALUES(?1, ?2, ?3, 'QUEUED', ?4, ?5)", st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    srv_stmt_bind_int64(s, 2, owner);
    bind_text(s, 3, type);
    bind_text(s, 4, request_json);
    srv_stmt_bind_int64(s, 5, srv_now_ms());
    int rc = srv_stmt_step(s) == SRV_DB_DONE ? SX_OK : db_err(db, st, "storing a job");
    srv_stmt_done(s);
    srv_job_changed();
    return rc;
}

#define JOB_COLS "d.id, d.type, d.state, d.stage, d.progress, d.message, d.request, d.error_type, " \
                 "d.error, d.attempts, d.created_ms, d.started_ms, d.finished_ms, u.name, " \
                 "x.executor, x.handle"
/* the executor's own id of a job it ran (Slurm job id; schema/0002_executor.sql) */
#define JOB_FROM "jobs d JOIN users u ON u.id = d.owner LEFT JOIN job_executor x ON x.job_id = d.id"

static json_t *job_json(srv_stmt *s)
{
    json_t *o = json_object();
    const char *id = col_text(s, 0);
    set_text(o, "id", id);
    set_text(o, "type", col_text(s, 1));
    set_text(o, "state", col_text(s, 2));
    set_text(o, "stage", col_text(s, 3));
    json_object_set_new(o, "progress", json_real(srv_stmt_column_double(s, 4)));
    set_text(o, "message", col_text(s, 5));
    json_t *req = parse_json_col(s, 6);
    if (json_is_object(req)) {
        const char *k;
        json_t *v;
        json_object_foreach(req, k, v) json_object_set(o, k, v);
    }
    json_decref(req);
    if (!srv_stmt_column_null(s, 8)) {
        json_t *e = json_object();
        set_text(e, "type", col_text(s, 7));
        set_text(e, "detail", col_text(s, 8));
        json_object_set_new(o, "error", e);
    } else {
        json_object_set_new(o, "error", json_null());
    }
    json_object_set_new(o, "attempts", json_integer(srv_stmt_column_int(s, 9)));
    set_time(o, "created", s, 10);
    set_time(o, "started", s, 11);
    set_time(o, "finished", s, 12);
    json_t *t = json_object();
    int64_t c = srv_stmt_column_int64(s, 10);
    int has_start = !srv_stmt_column_null(s, 11);
    int has_end = !srv_stmt_column_null(s, 12);
    int64_t b = has_start ? srv_stmt_column_int64(s, 11) : 0, e = srv_stmt_column_int64(s, 12);
    int64_t now = srv_now_ms();
    json_object_set_new(t, "queued_seconds", json_real(((has_start ? b : has_end ? e : now) - c) / 1e3));
    json_object_set_new(t, "run_seconds",
                        has_start ? json_real(((has_end ? e : now) - b) / 1e3) : json_null());
    json_object_set_new(o, "timings", t);
    set_text(o, "owner", col_text(s, 13));
    if (!srv_stmt_column_null(s, 14)) {
        json_t *x = json_object();
        set_text(x, "name", col_text(s, 14));
        set_text(x, "id", col_text(s, 15));
        json_object_set_new(o, "executor", x);
    }
    char link[96];
    snprintf(link, sizeof link, "/v1/jobs/%s", id);
    json_object_set_new(o, "self", json_string(link));
    return o;
}

json_t *srv_job_get(srv_db *db, const char *id, const srv_user *u, sx_status *st)
{
    srv_stmt *s = prep(db, "SELECT " JOB_COLS " FROM " JOB_FROM " "
                               "WHERE d.id = ?1 AND " VISIBLE, st);
    if (!s) return NULL;
    bind_text(s, 1, id);
    bind_user(s, u);
    return one_row(db, s, job_json, "reading a job", st, "no job '%s'", id);
}

json_t *srv_job_list(srv_db *db, const srv_user *u, const char *state, int64_t offset, int limit,
                     int *more, sx_status *st)
{
    srv_stmt *s = prep(db, "SELECT " JOB_COLS " FROM " JOB_FROM " "
                               "WHERE (?1 IS NULL OR d.state = ?1) AND " VISIBLE
                               " ORDER BY d.created_ms DESC, d.id LIMIT ?4 OFFSET ?5", st);
    if (!s) return NULL;
    bind_text(s, 1, state);
    bind_user(s, u);
    srv_stmt_bind_int64(s, 4, limit + 1);
    srv_stmt_bind_int64(s, 5, offset);
    return page_rows(db, s, limit, more, job_json, "listing jobs", st);
}

int srv_job_state(srv_db *db, const char *id, const srv_user *u, char state[16], char type[32],
                  sx_status *st)
{
    srv_stmt *s = prep(db, "SELECT d.state, d.type FROM jobs d WHERE d.id = ?1 AND " VISIBLE, st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    bind_user(s, u);
    int rc = srv_stmt_step(s);
    if (rc == SRV_DB_ROW) {
        snprintf(state, 16, "%s", col_text(s, 0));
        if (type) snprintf(type, 32, "%s", col_text(s, 1));
        rc = SX_OK;
    } else if (rc == SRV_DB_DONE) {
        rc = sx_status_set(st, SX_ENOTFOUND, "no job '%s'", id);
    } else {
        rc = db_err(db, st, "reading a job");
    }
    srv_stmt_done(s);
    return rc;
}

static char *dup_col(srv_stmt *s, int i)
{
    return srv_stmt_column_null(s, i) ? NULL : strdup(col_text(s, i));
}

int srv_job_row_get(srv_db *db, const char *id, const srv_user *u, srv_job_row *out,
                    sx_status *st)
{
    memset(out, 0, sizeof *out);
    srv_stmt *s = prep(db, "SELECT d.id, d.type, d.state, d.owner, d.request, d.error_type, "
                               "d.error FROM jobs d WHERE d.id = ?1 AND " VISIBLE, st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    bind_user(s, u);
    int rc = srv_stmt_step(s);
    if (rc == SRV_DB_ROW) {
        snprintf(out->id, sizeof out->id, "%s", col_text(s, 0));
        snprintf(out->type, sizeof out->type, "%s", col_text(s, 1));
        rc = srv_jstate_parse(col_text(s, 2), &out->state, st);
        out->owner = srv_stmt_column_int64(s, 3);
        out->request_json = dup_col(s, 4);
        out->error_type = dup_col(s, 5);
        out->error = dup_col(s, 6);
        if (!rc && !out->request_json) rc = sx_status_set(st, SX_ENOMEM, "out of memory");
    } else if (rc == SRV_DB_DONE) {
        rc = sx_status_set(st, SX_ENOTFOUND, "no job '%s'", id);
    } else {
        rc = db_err(db, st, "reading a job");
    }
    srv_stmt_done(s);
    if (rc) srv_job_row_free(out);
    return rc;
}

void srv_job_row_free(srv_job_row *r)
{
    free(r->request_json);
    free(r->error_type);
    free(r->error);
    r->request_json = r->error_type = r->error = NULL;
}

int srv_job_move(srv_db *db, const char *id, srv_jstate from, srv_jstate to, sx_status *st)
{
    int rc = srv_job_transition(db, id, srv_jstate_name(from), srv_jstate_name(to), st);
    if (rc < 0) return rc;
    return rc == 1 ? SX_OK : SX_ESTATE;
}

int srv_job_counts(srv_db *db, int64_t owner, int *n_active_user, int *n_queued, sx_status *st)
{
    srv_stmt *s = prep(db, "SELECT coalesce(sum(CASE WHEN owner = ?1 THEN 1 ELSE 0 END), 0), "
                               "coalesce(sum(CASE WHEN state = 'QUEUED' THEN 1 ELSE 0 END), 0) "
                               "FROM jobs WHERE state IN ('QUEUED','INITIALIZING','RUNNING',"
                               "'CANCELING')", st);
    if (!s) return st->code;
    srv_stmt_bind_int64(s, 1, owner);
    int rc = srv_stmt_step(s);
    if (rc == SRV_DB_ROW) {
        *n_active_user = srv_stmt_column_int(s, 0);
        *n_queued = srv_stmt_column_int(s, 1);
        rc = SX_OK;
    } else {
        rc = db_err(db, st, "counting jobs");
    }
    srv_stmt_done(s);
    return rc;
}

int srv_job_state_counts(srv_db *db, int64_t counts[SRV_JOB_N_STATES], sx_status *st)
{
    memset(counts, 0, SRV_JOB_N_STATES * sizeof *counts);
    srv_stmt *s = prep(db, "SELECT state, count(*) FROM jobs GROUP BY state", st);
    if (!s) return st->code;
    int rc;
    srv_jstate k;
    while ((rc = srv_stmt_step(s)) == SRV_DB_ROW)
        if (srv_jstate_parse(col_text(s, 0), &k, NULL) == SX_OK)
            counts[k] = srv_stmt_column_int64(s, 1);
    rc = rc == SRV_DB_DONE ? SX_OK : db_err(db, st, "counting jobs");
    srv_stmt_done(s);
    return rc;
}

int srv_job_transition(srv_db *db, const char *id, const char *from, const char *to,
                       sx_status *st)
{
    srv_stmt *s = prep(db, "UPDATE jobs SET state = ?2, finished_ms = CASE WHEN ?2 IN "
                               "('COMPLETE','EXECUTOR_ERROR','SYSTEM_ERROR','CANCELED') THEN ?4 "
                               "ELSE finished_ms END WHERE id = ?1 AND (state = ?3 OR (?3 IS NULL "
                               "AND state IN ('QUEUED','INITIALIZING','RUNNING','CANCELING')))", st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    bind_text(s, 2, to);
    bind_text(s, 3, from);
    srv_stmt_bind_int64(s, 4, srv_now_ms());
    int rc = srv_stmt_step(s) == SRV_DB_DONE ? srv_db_changes(db) > 0
                                            : db_err(db, st, "changing a job's state");
    srv_stmt_done(s);
    srv_job_changed();
    return rc;
}

int srv_job_next_queued(srv_db *db, char id[32], sx_status *st)
{
    /* PostgreSQL, several instances: skip a row another instance is claiming right now
     * (its claim holds the row lock) instead of queueing behind it */
    srv_stmt *s = prep(db, srv_db_kind_of(db) == SRV_DB_POSTGRES
                               ? "SELECT id FROM jobs WHERE state = 'QUEUED' ORDER BY created_ms, "
                                 "id LIMIT 1 FOR UPDATE SKIP LOCKED"
                               : "SELECT id FROM jobs WHERE state = 'QUEUED' ORDER BY created_ms, "
                                 "id LIMIT 1", st);
    if (!s) return st->code;
    int rc = srv_stmt_step(s);
    if (rc == SRV_DB_ROW) {
        snprintf(id, 32, "%s", col_text(s, 0));
        rc = SX_OK;
    } else {
        rc = rc == SRV_DB_DONE ? sx_status_set(st, SX_ENOTFOUND, "no job is queued")
                               : db_err(db, st, "reading the queue");
    }
    srv_stmt_done(s);
    return rc;
}

int srv_job_claim(srv_db *db, const char *id, int *attempts, char **request_json, char type[32],
                  sx_status *st)
{
    /* One statement, so one transaction on both databases. SQLite: the conditional update
     * is atomic (one writer). PostgreSQL: the row is locked with SKIP LOCKED, so of two
     * instances claiming the same job one gets it and the other gets no row (0) at once
     * and moves on; the state test in the outer WHERE is re-checked after the lock. The
     * claiming instance is recorded (runner): start-up reconciliation touches only its own
     * jobs. */
    srv_stmt *s = prep(db, srv_db_kind_of(db) == SRV_DB_POSTGRES
            ? "UPDATE jobs SET state = 'INITIALIZING', attempts = attempts + 1, started_ms = ?2, "
              "stage = NULL, progress = 0, runner = ?3 WHERE id = (SELECT id FROM jobs WHERE id = ?1 "
              "AND state = 'QUEUED' FOR UPDATE SKIP LOCKED) AND state = 'QUEUED' "
              "RETURNING attempts, request, type"
            : "UPDATE jobs SET state = 'INITIALIZING', attempts = attempts + 1, started_ms = ?2, "
              "stage = NULL, progress = 0, runner = ?3 WHERE id = ?1 AND state = 'QUEUED' "
              "RETURNING attempts, request, type", st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    srv_stmt_bind_int64(s, 2, srv_now_ms());
    bind_text(s, 3, srv_db_tag(db));
    *request_json = NULL;
    int rc = srv_stmt_step(s);
    if (rc == SRV_DB_ROW) {
        *attempts = srv_stmt_column_int(s, 0);
        *request_json = strdup(col_text(s, 1));
        snprintf(type, 32, "%s", col_text(s, 2));
        /* SQLite writes the row when the statement runs to its end, after RETURNING gave it:
         * a full disk fails here, and a claim that did not stick must not run the job */
        rc = srv_stmt_step(s) == SRV_DB_DONE ? SX_OK : db_err(db, st, "claiming a job");
        if (!rc && !*request_json) rc = sx_status_set(st, SX_ENOMEM, "out of memory");
        if (rc) {
            free(*request_json);
            *request_json = NULL;
        }
    } else {
        rc = rc == SRV_DB_DONE ? sx_status_set(st, SX_ESTATE, "job '%s' is no longer queued", id)
                               : db_err(db, st, "claiming a job");
    }
    srv_stmt_done(s);
    srv_job_changed();
    return rc;
}

int srv_job_progress(srv_db *db, const char *id, const char *stage, double progress,
                     const char *message, sx_status *st)
{
    /* INITIALIZING -> RUNNING on the first report; CANCELING stays CANCELING */
    srv_stmt *s = prep(db, "UPDATE jobs SET stage = ?2, progress = ?3, message = ?4, "
                               "state = CASE state WHEN 'INITIALIZING' THEN 'RUNNING' ELSE state END "
                               "WHERE id = ?1 AND state IN ('INITIALIZING','RUNNING','CANCELING')", st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    bind_text(s, 2, stage);
    srv_stmt_bind_double(s, 3, progress);
    bind_text(s, 4, message);
    int rc = srv_stmt_step(s) == SRV_DB_DONE ? SX_OK : db_err(db, st, "recording progress");
    srv_stmt_done(s);
    srv_job_changed();
    return rc;
}

int srv_job_finish(srv_db *db, const char *id, const char *state, const char *error_type,
                   const char *error, sx_status *st)
{
    srv_stmt *s = prep(db, "UPDATE jobs SET state = ?2, error_type = ?3, error = ?4, "
                               "finished_ms = ?5, progress = CASE WHEN ?2 = 'COMPLETE' THEN 1 ELSE "
                               "progress END, started_ms = coalesce(started_ms, ?5) WHERE id = ?1", st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    bind_text(s, 2, state);
    bind_text(s, 3, error_type);
    bind_text(s, 4, error);
    srv_stmt_bind_int64(s, 5, srv_now_ms());
    int rc = srv_stmt_step(s) == SRV_DB_DONE ? SX_OK : db_err(db, st, "finishing a job");
    srv_stmt_done(s);
    srv_job_changed();
    return rc;
}

int srv_job_set_result_bytes(srv_db *db, const char *id, int64_t bytes, sx_status *st)
{
    srv_stmt *s = prep(db, "UPDATE jobs SET result_bytes = ?2 WHERE id = ?1", st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    srv_stmt_bind_int64(s, 2, bytes);
    int rc = srv_stmt_step(s) == SRV_DB_DONE ? SX_OK : db_err(db, st, "recording a job's size");
    srv_stmt_done(s);
    return rc;
}

int srv_job_delete(srv_db *db, const char *id, sx_status *st)
{
    /* the terminal states are spelled in the statement: a job still running is never removed */
    srv_stmt *s = prep(db, "DELETE FROM jobs WHERE id = ?1 AND state IN ('COMPLETE',"
                           "'EXECUTOR_ERROR','SYSTEM_ERROR','CANCELED')", st);
    if (!s) return st->code;
    bind_text(s, 1, id);
    int rc = srv_stmt_step(s) == SRV_DB_DONE ? SX_OK : db_err(db, st, "deleting a job");
    srv_stmt_done(s);
    if (rc == SX_OK && srv_db_changes(db) == 0)
        rc = sx_status_set(st, SX_ESTATE, "job '%s' has not finished: cancel it first", id);
    srv_job_changed();
    return rc;
}

int srv_user_storage_bytes(srv_db *db, int64_t user_id, int64_t *bytes, sx_status *st)
{
    srv_stmt *s = prep(db, "SELECT (SELECT coalesce(sum(size_bytes), 0) FROM datasets WHERE "
                           "owner = ?1) + (SELECT coalesce(sum(result_bytes), 0) FROM jobs WHERE "
                           "owner = ?1)", st);
    if (!s) return st->code;
    srv_stmt_bind_int64(s, 1, user_id);
    int rc = srv_stmt_step(s) == SRV_DB_ROW ? SX_OK : db_err(db, st, "summing a user's storage");
    *bytes = rc ? 0 : srv_stmt_column_int64(s, 0);
    srv_stmt_done(s);
    return rc;
}

/* Rows of this instance: SQLite has one instance per registry, so all of them (whatever
 * name the instance had before); PostgreSQL: the rows this instance claimed (runner), and
 * rows claimed before runners were recorded. */
#define MINE "(?9 = 0 OR runner = ?8 OR runner IS NULL)"

static void bind_mine(srv_stmt *s, srv_db *db)
{
    bind_text(s, 8, srv_db_tag(db));
    srv_stmt_bind_int64(s, 9, srv_db_kind_of(db) == SRV_DB_POSTGRES);
}

int srv_job_reconcile(srv_db *db, int max_attempts, int *n_requeued, int *n_failed,
                      sx_status *st)
{
    *n_requeued = *n_failed = 0;
    if (srv_db_begin(db, st)) return st->code;
    srv_stmt *s = prep(db, "UPDATE jobs SET state = 'CANCELED', finished_ms = ?1, message = "
                               "'canceled while the daemon stopped' WHERE state = 'CANCELING' "
                               "AND " MINE, st);
    if (!s) goto fail;
    srv_stmt_bind_int64(s, 1, srv_now_ms());
    bind_mine(s, db);
    if (srv_stmt_step(s) != SRV_DB_DONE) goto fail;
    srv_stmt_done(s);
    s = prep(db, "UPDATE jobs SET state = 'QUEUED', stage = NULL, progress = 0, message = "
                 "'re-queued: the daemon stopped while the job ran (attempt ' || attempts || ')' "
                 "WHERE state IN ('INITIALIZING','RUNNING') AND attempts < ?1 AND " MINE, st);
    if (!s) goto fail;
    srv_stmt_bind_int64(s, 1, max_attempts);
    bind_mine(s, db);
    if (srv_stmt_step(s) != SRV_DB_DONE) goto fail;
    *n_requeued = (int)srv_db_changes(db);
    srv_stmt_done(s);
    s = prep(db, "UPDATE jobs SET state = 'SYSTEM_ERROR', finished_ms = ?2, error_type = "
                 "'interrupted', error = 'the daemon stopped while this job ran, ' || attempts || "
                 "' times (the limit is ' || ?1 || '): it may exhaust memory or crash the daemon; "
                 "submit it again with a smaller input or fewer iterations, and check the daemon log' "
                 "WHERE state IN ('INITIALIZING','RUNNING') AND " MINE, st);
    if (!s) goto fail;
    srv_stmt_bind_int64(s, 1, max_attempts);
    srv_stmt_bind_int64(s, 2, srv_now_ms());
    bind_mine(s, db);
    if (srv_stmt_step(s) != SRV_DB_DONE) goto fail;
    *n_failed = (int)srv_db_changes(db);
    srv_stmt_done(s);
    int rc = srv_db_commit(db, st);
    srv_job_changed();
    if (rc) return st->code;
    return *n_requeued + *n_failed;
fail:
    if (st && st->code == SX_OK) db_err(db, st, "reconciling jobs");
    srv_stmt_done(s);
    srv_db_rollback(db);
    return st ? st->code : SX_EIO;
}
