/* srv_db — the registry's database layer: one small API over two drivers.
 *
 *  - sqlite3 (the embedded default): DATA_DIR/registry.sqlite in WAL mode with a busy
 *    timeout, foreign keys on; a writer transaction is BEGIN IMMEDIATE.
 *  - PostgreSQL (libpq), for several scalexd instances on one database: a registry URL
 *    `postgresql://user@host:5432/dbname` (libpq's connection URI or key=value string).
 *    A writer transaction is BEGIN plus a transaction-scoped advisory lock, so writers that
 *    must see a stable count (quota checks, migrations, start-up reconciliation) run one
 *    after the other across all instances, as they do on SQLite.
 *
 * SQL is written once with `?N` (or `?`) placeholders; the PostgreSQL driver rewrites them
 * to `$N`. A parameter's PostgreSQL type is the type it is bound with (int64 -> bigint,
 * double -> double precision, text -> text; srv_stmt_bind_null leaves it to the server),
 * so `?1 IS NULL` works when ?1 is bound as text. SQL must be portable (no SQLite-only
 * functions such as scalar max() or json_each; srv_db_kind tells the caller which dialect
 * to use where none is portable).
 *
 * Statements are cached per connection, keyed by the SQL text: a prepare of a statement
 * seen before on the connection costs a hash lookup (SQLite: the compiled sqlite3_stmt;
 * PostgreSQL: the server-side prepared statement, one per bound type signature). A
 * connection and its statements are used by one thread at a time.
 *
 * Ownership: srv_db_open* returns a connection the caller closes with srv_db_close, which
 * also frees its cached statements. srv_db_prepare returns a statement owned by the
 * connection; the caller hands it back with srv_stmt_done (NULL is fine) before preparing
 * the same SQL again is useful (a second prepare of SQL in use gets a private copy).
 * Column text pointers stay valid until the next step or srv_stmt_done.
 */
#ifndef SRV_DB_H
#define SRV_DB_H

#include <stddef.h>
#include <stdint.h>

#include "sx_error.h"

typedef struct srv_db srv_db;
typedef struct srv_stmt srv_stmt;

typedef enum srv_db_kind { SRV_DB_SQLITE = 1, SRV_DB_POSTGRES = 2 } srv_db_kind;

/* srv_stmt_step results: a row, the end, an error (message in srv_db_errmsg), or a
 * constraint violation (unique, foreign key, check: also an error). */
enum { SRV_DB_ROW = 1, SRV_DB_DONE = 0, SRV_DB_ERROR = -1, SRV_DB_CONSTRAINT = -2 };

/* Which driver a registry setting selects: NULL or "" -> SQLite, postgres:// or
 * postgresql:// URIs and "host=... dbname=..." strings -> PostgreSQL; 0 when neither. */
int srv_db_url_kind(const char *url);
/* The URL with any password replaced by "***" into out (for messages and logs). */
void srv_db_url_redact(const char *url, char *out, size_t n);

/* Open the SQLite database file `path` (created when missing). NULL + st on error. */
srv_db *srv_db_open_sqlite(const char *path, sx_status *st);
/* Connect to PostgreSQL. NULL + st on error (the message names the redacted URL, the
 * server's answer and what to check). */
srv_db *srv_db_open_postgres(const char *url, sx_status *st);
void srv_db_close(srv_db *db);
srv_db_kind srv_db_kind_of(const srv_db *db);
/* Is the connection still usable (PostgreSQL: not broken by a server restart)? */
int srv_db_usable(srv_db *db);
/* Message of the last failure on this connection ("" when none). */
const char *srv_db_errmsg(const srv_db *db);
/* Rows changed by the last INSERT/UPDATE/DELETE step. */
int64_t srv_db_changes(const srv_db *db);

/* A tag the owner attaches to the connection (the registry: this instance's name); the
 * string is borrowed and must outlive the connection's use. */
void srv_db_set_tag(srv_db *db, const char *tag);
const char *srv_db_tag(const srv_db *db);

/* One or more statements without parameters (migrations, PRAGMAs). */
int srv_db_exec(srv_db *db, const char *sql, sx_status *st);
/* Writer transaction (see above), commit, rollback (rollback never fails loudly). */
int srv_db_begin(srv_db *db, sx_status *st);
int srv_db_commit(srv_db *db, sx_status *st);
void srv_db_rollback(srv_db *db);

srv_stmt *srv_db_prepare(srv_db *db, const char *sql, sx_status *st);
/* Parameters are 1-based, as in ?N. Text is copied. */
void srv_stmt_bind_int64(srv_stmt *s, int i, int64_t v);
void srv_stmt_bind_double(srv_stmt *s, int i, double v);
void srv_stmt_bind_text(srv_stmt *s, int i, const char *v); /* NULL binds a text NULL */
void srv_stmt_bind_null(srv_stmt *s, int i);                /* NULL of the column's type */
/* SRV_DB_ROW, SRV_DB_DONE or < 0 (see above). The first step runs the statement. */
int srv_stmt_step(srv_stmt *s);
/* Columns of the current row, 0-based. NULL reads as 0 / NULL text. */
int srv_stmt_column_null(srv_stmt *s, int i);
int64_t srv_stmt_column_int64(srv_stmt *s, int i);
int srv_stmt_column_int(srv_stmt *s, int i);
double srv_stmt_column_double(srv_stmt *s, int i);
const char *srv_stmt_column_text(srv_stmt *s, int i);
/* Reset, clear the bindings and give the statement back to the connection's cache. */
void srv_stmt_done(srv_stmt *s);

#endif
