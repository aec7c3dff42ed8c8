#include "srv_db.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"

/* statements kept per connection: the registry has a few dozen distinct SQL texts */
#define CACHE_MAX 128
/* PostgreSQL prepared variants of one SQL text (bound type signatures) */
#define PG_PREP_MAX 4
/* the key of the advisory lock a writer transaction takes ("sxrg") */
#define PG_WRITER_LOCK "1937273447"

typedef struct pg_prep {
    char sig[64];  /* one letter per parameter: i d t n (bound NULL) u (unbound) */
    char name[24]; /* server-side statement name */
} pg_prep;

struct srv_stmt {
    srv_db *db;
    char *sql;      /* the caller's text: the cache key */
    uint64_t hash;
    int cached, in_use;
    sqlite3_stmt *lite;
    /* PostgreSQL */
    char *pgsql;    /* with $N placeholders */
    int nparams;
    char **vals;    /* text of each parameter (NULL = SQL NULL) */
    char *kinds;    /* signature letters, nparams + 1 */
    pg_prep preps[PG_PREP_MAX];
    int nprep;
    unsigned gen;   /* connection generation the preps belong to */
    PGresult *res;
    int row, nrows, executed;
};

struct srv_db {
    srv_db_kind kind;
    sqlite3 *lite;
    PGconn *pg;
    char err[512];
    int64_t changes;
    const char *tag;
    srv_stmt *cache[CACHE_MAX];
    int ncache;
    int in_tx;
    unsigned gen, seq; /* PostgreSQL: reconnects, prepared-statement names */
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void set_err(srv_db *db, const char *msg)
{
    snprintf(db->err, sizeof db->err, "%s", msg ? msg : "unknown error");
    size_t n = strlen(db->err);
    while (n && (db->err[n - 1] == '\n' || db->err[n - 1] == ' ')) db->err[--n] = 0;
}

int srv_db_url_kind(const char *url)
{
    if (!url || !*url) return SRV_DB_SQLITE;
    if (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11) ||
        strstr(url, "dbname=") || strstr(url, "host="))
        return SRV_DB_POSTGRES;
    return 0;
}

void srv_db_url_redact(const char *url, char *out, size_t n)
{
    snprintf(out, n, "%s", url ? url : "");
    /* URI form: scheme://user:password@host */
    char *scheme = strstr(out, "://");
    if (scheme) {
        char *at = strchr(scheme + 3, '@');
        char *colon = strchr(scheme + 3, ':');
        if (at && colon && colon < at) {
            char rest[1024];
            snprintf(rest, sizeof rest, "%s", at);
            snprintf(colon, n - (size_t)(colon - out), ":***%s", rest);
        }
    }
    /* password=... (key=value form or a URI query parameter) */
    char *p = strstr(out, "password=");
    if (p) {
        char *end = p + 9;
        while (*end && *end != ' ' && *end != '&') end++;
        char rest[1024];
        snprintf(rest, sizeof rest, "%s", end);
        snprintf(p + 9, n - (size_t)(p + 9 - out), "***%s", rest);
    }
}

/* ---- connections ---- */

srv_db *srv_db_open_sqlite(const char *path, sx_status *st)
{
    srv_db *db = sx_calloc(1, sizeof *db);
    if (!db) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    db->kind = SRV_DB_SQLITE;
    if (sqlite3_open_v2(path, &db->lite,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        sx_status_set(st, SX_EIO, "cannot open registry %s: %s; check the data dir", path,
                      db->lite ? sqlite3_errmsg(db->lite) : "out of memory");
        srv_db_close(db);
        return NULL;
    }
    /* writers wait for each other instead of failing: the daemon's threads and the CLI
     * share the file */
    sqlite3_busy_timeout(db->lite, 10000);
    if (srv_db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                        "PRAGMA foreign_keys=ON;", st)) {
        srv_db_close(db);
        return NULL;
    }
    return db;
}

static void pg_quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg; /* NOTICEs ("relation exists, skipping") are not the daemon's log */
}

srv_db *srv_db_open_postgres(const char *url, sx_status *st)
{
    char shown[1024];
    srv_db_url_redact(url, shown, sizeof shown);
    srv_db *db = sx_calloc(1, sizeof *db);
    if (!db) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    db->kind = SRV_DB_POSTGRES;
    db->pg = PQconnectdb(url);
    if (!db->pg || PQstatus(db->pg) != CONNECTION_OK) {
        set_err(db, db->pg ? PQerrorMessage(db->pg) : "out of memory");
        sx_status_set(st, SX_EIO, "cannot connect to the PostgreSQL registry %s: %s; check that "
                      "the server runs and listens there, that this user may connect from this "
                      "host (pg_hba.conf) and that the database exists (createdb)", shown, db->err);
        srv_db_close(db);
        return NULL;
    }
    PQsetNoticeProcessor(db->pg, pg_quiet, NULL);
    return db;
}

static void stmt_free(srv_stmt *s)
{
    if (!s) return;
    if (s->lite) sqlite3_finalize(s->lite);
    if (s->res) PQclear(s->res);
    for (int i = 0; s->vals && i < s->nparams; i++) sx_free(s->vals[i]);
    sx_free(s->vals);
    sx_free(s->kinds);
    sx_free(s->pgsql);
    sx_free(s->sql);
    sx_free(s);
}

void srv_db_close(srv_db *db)
{
    if (!db) return;
    for (int i = 0; i < db->ncache; i++) stmt_free(db->cache[i]);
    if (db->lite) sqlite3_close(db->lite);
    if (db->pg) PQfinish(db->pg);
    sx_free(db);
}

srv_db_kind srv_db_kind_of(const srv_db *db) { return db->kind; }
const char *srv_db_errmsg(const srv_db *db) { return db->err; }
int64_t srv_db_changes(const srv_db *db) { return db->changes; }
void srv_db_set_tag(srv_db *db, const char *tag) { db->tag = tag; }
const char *srv_db_tag(const srv_db *db) { return db->tag; }

/* PostgreSQL: a broken connection (server restarted) is reset once, outside transactions;
 * its prepared statements are gone with it */
static int pg_revive(srv_db *db)
{
    if (PQstatus(db->pg) == CONNECTION_OK || db->in_tx) return 0;
    PQreset(db->pg);
    db->gen++;
    return PQstatus(db->pg) == CONNECTION_OK;
}

int srv_db_usable(srv_db *db)
{
    if (db->kind == SRV_DB_SQLITE) return 1;
    if (PQstatus(db->pg) != CONNECTION_OK) return 0;
    if (PQtransactionStatus(db->pg) != PQTRANS_IDLE) { /* a transaction left open: end it */
        PGresult *r = PQexec(db->pg, "ROLLBACK");
        PQclear(r);
        db->in_tx = 0;
    }
    return PQtransactionStatus(db->pg) == PQTRANS_IDLE;
}

static int pg_exec_plain(srv_db *db, const char *sql, sx_status *st)
{
    PGresult *r = PQexec(db->pg, sql);
    if (!r && pg_revive(db)) r = PQexec(db->pg, sql);
    ExecStatusType es = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int ok = es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK;
    if (!ok && PQstatus(db->pg) != CONNECTION_OK && pg_revive(db)) {
        PQclear(r);
        r = PQexec(db->pg, sql);
        es = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        ok = es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK;
    }
    if (!ok) {
        set_err(db, r ? PQresultErrorMessage(r) : PQerrorMessage(db->pg));
        sx_status_set(st, SX_EIO, "registry: %s", db->err);
    }
    PQclear(r);
    return ok ? SX_OK : SX_EIO;
}

int srv_db_exec(srv_db *db, const char *sql, sx_status *st)
{
    if (db->kind == SRV_DB_POSTGRES) return pg_exec_plain(db, sql, st);
    char *err = NULL;
    if (sqlite3_exec(db->lite, sql, NULL, NULL, &err) != SQLITE_OK) {
        set_err(db, err ? err : sqlite3_errmsg(db->lite));
        sqlite3_free(err);
        return sx_status_set(st, SX_EIO, "registry: %s", db->err);
    }
    return SX_OK;
}

int srv_db_begin(srv_db *db, sx_status *st)
{
    int rc;
    if (db->kind == SRV_DB_SQLITE) {
        rc = srv_db_exec(db, "BEGIN IMMEDIATE", st);
    } else {
        rc = srv_db_exec(db, "BEGIN; SELECT pg_advisory_xact_lock(" PG_WRITER_LOCK ")", st);
        if (rc) srv_db_rollback(db);
    }
    if (!rc) db->in_tx = 1;
    return rc;
}

int srv_db_commit(srv_db *db, sx_status *st)
{
    if (db->kind == SRV_DB_SQLITE) {
        int rc = srv_db_exec(db, "COMMIT", st);
        if (!rc) db->in_tx = 0;
        return rc;
    }
    PGresult *r = PQexec(db->pg, "COMMIT");
    /* COMMIT of a failed transaction "succeeds" with the tag ROLLBACK */
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK && !strcmp(PQcmdStatus(r), "COMMIT");
    if (!ok) set_err(db, r && PQresultStatus(r) != PGRES_COMMAND_OK ? PQresultErrorMessage(r)
                                                                     : "the transaction was "
                                                                       "rolled back");
    PQclear(r);
    db->in_tx = 0;
    return ok ? SX_OK : sx_status_set(st, SX_EIO, "registry: commit: %s", db->err);
}

void srv_db_rollback(srv_db *db)
{
    if (db->kind == SRV_DB_SQLITE) {
        sqlite3_exec(db->lite, "ROLLBACK", NULL, NULL, NULL);
    } else if (PQstatus(db->pg) == CONNECTION_OK) {
        PGresult *r = PQexec(db->pg, "ROLLBACK");
        PQclear(r);
    }
    db->in_tx = 0;
}

/* ---- statements ---- */

/* ?N and ? -> $N outside quotes and comments; returns the highest parameter number */
static char *pg_translate(const char *sql, int *nparams)
{
    size_t n = strlen(sql);
    char *out = sx_malloc(n * 3 + 1); /* "?" -> "$NN" at most triples */
    if (!out) return NULL;
    size_t k = 0;
    int next = 1, maxp = 0;
    for (size_t i = 0; i < n; i++) {
        char c = sql[i];
        if (c == '\'' || c == '"') {
            out[k++] = c;
            for (i++; i < n; i++) {
                out[k++] = sql[i];
                if (sql[i] == c) break; /* a doubled quote re-enters on the next char */
            }
        } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
            while (i < n && sql[i] != '\n') out[k++] = sql[i++];
            if (i < n) out[k++] = '\n';
        } else if (c == '?') {
            int num = 0;
            size_t j = i + 1;
            while (j < n && sql[j] >= '0' && sql[j] <= '9') num = num * 10 + (sql[j++] - '0');
            if (j == i + 1) num = next;
            next = num + 1;
            if (num > maxp) maxp = num;
            k += (size_t)sprintf(out + k, "$%d", num);
            i = j - 1;
        } else {
            out[k++] = c;
        }
    }
    out[k] = 0;
    *nparams = maxp;
    return out;
}

static srv_stmt *stmt_new(srv_db *db, const char *sql, uint64_t h, sx_status *st)
{
    srv_stmt *s = sx_calloc(1, sizeof *s);
    if (!s || !(s->sql = sx_strdup(sql))) goto oom;
    s->db = db;
    s->hash = h;
    if (db->kind == SRV_DB_SQLITE) {
        if (sqlite3_prepare_v3(db->lite, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->lite, NULL) !=
            SQLITE_OK) {
            set_err(db, sqlite3_errmsg(db->lite));
            sx_status_set(st, SX_EIO, "registry: preparing a statement: %s", db->err);
            stmt_free(s);
            return NULL;
        }
        return s;
    }
    if (!(s->pgsql = pg_translate(sql, &s->nparams))) goto oom;
    s->vals = sx_calloc((size_t)s->nparams + 1, sizeof *s->vals);
    s->kinds = sx_calloc((size_t)s->nparams + 2, 1);
    if (!s->vals || !s->kinds) goto oom;
    if (s->nparams >= (int)sizeof s->preps[0].sig) {
        sx_status_set(st, SX_EINTERNAL, "registry: a statement has %d parameters", s->nparams);
        stmt_free(s);
        return NULL;
    }
    memset(s->kinds, 'u', (size_t)s->nparams);
    return s;
oom:
    stmt_free(s);
    sx_status_set(st, SX_ENOMEM, "out of memory");
    return NULL;
}

srv_stmt *srv_db_prepare(srv_db *db, const char *sql, sx_status *st)
{
    uint64_t h = fnv1a(sql);
    int busy = 0;
    for (int i = 0; i < db->ncache; i++) {
        srv_stmt *s = db->cache[i];
        if (s->hash != h || strcmp(s->sql, sql)) continue;
        if (s->in_use) {
            busy = 1; /* nested use of the same SQL: a private copy below */
            break;
        }
        s->in_use = 1;
        return s;
    }
    srv_stmt *s = stmt_new(db, sql, h, st);
    if (!s) return NULL;
    s->in_use = 1;
    if (!busy && db->ncache < CACHE_MAX) {
        s->cached = 1;
        db->cache[db->ncache++] = s;
    }
    return s;
}

static int pg_param(srv_stmt *s, int i)
{
    if (i < 1 || i > s->nparams) return 0;
    sx_free(s->vals[i - 1]);
    s->vals[i - 1] = NULL;
    return 1;
}

void srv_stmt_bind_int64(srv_stmt *s, int i, int64_t v)
{
    if (s->lite) {
        sqlite3_bind_int64(s->lite, i, v);
        return;
    }
    if (!pg_param(s, i)) return;
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    s->vals[i - 1] = sx_strdup(b);
    s->kinds[i - 1] = 'i';
}

void srv_stmt_bind_double(srv_stmt *s, int i, double v)
{
    if (s->lite) {
        sqlite3_bind_double(s->lite, i, v);
        return;
    }
    if (!pg_param(s, i)) return;
    char b[40];
    snprintf(b, sizeof b, "%.17g", v);
    s->vals[i - 1] = sx_strdup(b);
    s->kinds[i - 1] = 'd';
}

void srv_stmt_bind_text(srv_stmt *s, int i, const char *v)
{
    if (s->lite) {
        if (v) sqlite3_bind_text(s->lite, i, v, -1, SQLITE_TRANSIENT);
        else sqlite3_bind_null(s->lite, i);
        return;
    }
    if (!pg_param(s, i)) return;
    s->vals[i - 1] = v ? sx_strdup(v) : NULL;
    s->kinds[i - 1] = 't';
}

void srv_stmt_bind_null(srv_stmt *s, int i)
{
    if (s->lite) {
        sqlite3_bind_null(s->lite, i);
        return;
    }
    if (!pg_param(s, i)) return;
    s->kinds[i - 1] = 'n';
}

static Oid pg_oid(char k)
{
    switch (k) {
    case 'i': return 20;  /* int8 */
    case 'd': return 701; /* float8 */
    case 't': return 25;  /* text */
    case 'u': return 25;  /* never bound (a number SQLite skips): any type, NULL */
    default: return 0;    /* bound NULL: the type is inferred by the server */
    }
}

static int pg_result_code(srv_db *db, PGresult *r)
{
    set_err(db, r ? PQresultErrorMessage(r) : PQerrorMessage(db->pg));
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return state && !strncmp(state, "23", 2) ? SRV_DB_CONSTRAINT : SRV_DB_ERROR;
}

/* Run the statement once: the prepared variant of this type signature (made on first use),
 * executed with text parameters. */
static int pg_run(srv_stmt *s)
{
    srv_db *db = s->db;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s->gen != db->gen) {
            s->nprep = 0;
            s->gen = db->gen;
        }
        pg_prep *p = NULL;
        for (int i = 0; i < s->nprep && !p; i++)
            if (!strcmp(s->preps[i].sig, s->kinds)) p = &s->preps[i];
        if (!p) {
            Oid types[64];
            for (int i = 0; i < s->nparams; i++) types[i] = pg_oid(s->kinds[i]);
            if (s->nprep == PG_PREP_MAX) s->nprep--; /* rare: reuse the last slot */
            p = &s->preps[s->nprep];
            snprintf(p->sig, sizeof p->sig, "%s", s->kinds);
            snprintf(p->name, sizeof p->name, "sx%u", ++db->seq);
            PGresult *r = PQprepare(db->pg, p->name, s->pgsql, s->nparams, types);
            if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
                int rc = pg_result_code(db, r);
                PQclear(r);
                if (attempt == 0 && pg_revive(db)) continue;
                return rc;
            }
            PQclear(r);
            s->nprep++;
        }
        s->res = PQexecPrepared(db->pg, p->name, s->nparams, (const char *const *)s->vals, NULL,
                                NULL, 0);
        ExecStatusType es = s->res ? PQresultStatus(s->res) : PGRES_FATAL_ERROR;
        if (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK) {
            s->nrows = PQntuples(s->res);
            s->row = 0;
            const char *ch = PQcmdTuples(s->res);
            db->changes = ch && *ch ? atoll(ch) : 0;
            return SRV_DB_DONE;
        }
        int rc = pg_result_code(db, s->res);
        PQclear(s->res);
        s->res = NULL;
        if (attempt == 0 && pg_revive(db)) continue;
        return rc;
    }
    return SRV_DB_ERROR;
}

int srv_stmt_step(srv_stmt *s)
{
    if (!s) return SRV_DB_ERROR;
    srv_db *db = s->db;
    if (s->lite) {
        int rc = sqlite3_step(s->lite);
        if (rc == SQLITE_ROW) return SRV_DB_ROW;
        if (rc == SQLITE_DONE) {
            db->changes = sqlite3_changes(db->lite);
            return SRV_DB_DONE;
        }
        set_err(db, sqlite3_errmsg(db->lite));
        return (rc & 0xff) == SQLITE_CONSTRAINT ? SRV_DB_CONSTRAINT : SRV_DB_ERROR;
    }
    if (!s->executed) {
        s->executed = 1;
        int rc = pg_run(s);
        if (rc < 0) return rc;
    }
    if (!s->res || s->row >= s->nrows) return SRV_DB_DONE;
    s->row++;
    return SRV_DB_ROW;
}

int srv_stmt_column_null(srv_stmt *s, int i)
{
    if (s->lite) return sqlite3_column_type(s->lite, i) == SQLITE_NULL;
    return !s->res || s->row < 1 || PQgetisnull(s->res, s->row - 1, i);
}

const char *srv_stmt_column_text(srv_stmt *s, int i)
{
    if (s->lite) return (const char *)sqlite3_column_text(s->lite, i);
    if (srv_stmt_column_null(s, i)) return NULL;
    return PQgetvalue(s->res, s->row - 1, i);
}

int64_t srv_stmt_column_int64(srv_stmt *s, int i)
{
    if (s->lite) return sqlite3_column_int64(s->lite, i);
    const char *t = srv_stmt_column_text(s, i);
    return t ? strtoll(t, NULL, 10) : 0;
}

int srv_stmt_column_int(srv_stmt *s, int i) { return (int)srv_stmt_column_int64(s, i); }

double srv_stmt_column_double(srv_stmt *s, int i)
{
    if (s->lite) return sqlite3_column_double(s->lite, i);
    const char *t = srv_stmt_column_text(s, i);
    return t ? strtod(t, NULL) : 0;
}

void srv_stmt_done(srv_stmt *s)
{
    if (!s) return;
    if (s->lite) {
        sqlite3_reset(s->lite);
        sqlite3_clear_bindings(s->lite);
    } else {
        if (s->res) PQclear(s->res);
        s->res = NULL;
        s->executed = s->row = s->nrows = 0;
        for (int i = 0; i < s->nparams; i++) {
            sx_free(s->vals[i]);
            s->vals[i] = NULL;
            s->kinds[i] = 'u';
        }
    }
    if (s->cached) s->in_use = 0;
    else stmt_free(s);
}
