/* srv_registry — the SQLite registry: users + tokens, datasets, references, jobs.
 *
 * The registry is the truth of the daemon (the job queue is rows in `jobs`). It lives in
 * DATA_DIR/registry.sqlite in WAL mode with a busy timeout, so the daemon's threads and a
 * concurrent `scalexd token create` can share it. Each thread borrows its own connection
 * from a small pool (srv_registry_get / srv_registry_put); a connection is used by one
 * thread at a time. Migrations (schema/NNNN_*.sql, embedded at build time) are applied
 * forward-only at open, each in its own transaction, with PRAGMA user_version = NNNN.
 *
 * Row accessors take a borrowed sqlite3 connection. "Visible" means: the caller's own row,
 * or any row for an admin; invisible rows read as SX_ENOTFOUND so a user never learns that
 * another user's id exists. JSON objects returned are new references (json_decref).
 */
#ifndef SRV_REGISTRY_H
#define SRV_REGISTRY_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>

#include "sx_error.h"

typedef struct srv_registry srv_registry;

typedef struct srv_user {
    int64_t id;
    char name[65];
    int admin;
} srv_user;

/* Open (creating DATA_DIR and the database when missing) and migrate. NULL + st on error. */
srv_registry *srv_registry_open(const char *data_dir, sx_status *st);
void srv_registry_close(srv_registry *r);
const char *srv_registry_data_dir(const srv_registry *r);
/* Borrow a connection (opened on demand); give it back with srv_registry_put. */
sqlite3 *srv_registry_get(srv_registry *r, sx_status *st);
void srv_registry_put(srv_registry *r, sqlite3 *db);
/* Schema version (PRAGMA user_version). */
int srv_registry_version(sqlite3 *db);

/* ---- users and tokens ---- */
/* Create the user if missing (admin flag raised, never lowered). */
int srv_user_ensure(sqlite3 *db, const char *name, int admin, srv_user *u, sx_status *st);
/* New random bearer token for user NAME (created if missing); the clear token is written to
 * token[80] and only its sha256 is stored. */
int srv_token_create(sqlite3 *db, const char *name, int admin, char token[80], sx_status *st);
/* Resolve a clear token; SX_ENOTFOUND when unknown. */
int srv_token_lookup(sqlite3 *db, const char *token, srv_user *u, sx_status *st);

/* ---- datasets ---- */
typedef struct srv_dataset_rec {
    char id[32];
    int64_t owner;
    const char *name, *format, *path, *sha256;
    int64_t size_bytes, n_obs, n_vars;
    const char *obs_columns; /* JSON array text */
} srv_dataset_rec;
int srv_dataset_insert(sqlite3 *db, const srv_dataset_rec *d, sx_status *st);
json_t *srv_dataset_get(sqlite3 *db, const char *id, const srv_user *u, sx_status *st);
/* Page of visible datasets, newest first; *more set when another page exists. */
json_t *srv_dataset_list(sqlite3 *db, const srv_user *u, int64_t offset, int limit, int *more,
                         sx_status *st);
/* Path (relative to the data dir) of a visible dataset; caller frees with free(). */
char *srv_dataset_path(sqlite3 *db, const char *id, const srv_user *u, sx_status *st);
/* Delete a visible dataset row; its relative path is returned in *path (free()).
 * SX_ESTATE when an unfinished job uses it. */
int srv_dataset_delete(sqlite3 *db, const char *id, const srv_user *u, char **path, sx_status *st);

/* ---- references ---- */
typedef struct srv_ref_rec {
    const char *name, *path, *job_id, *description, *species, *tissue, *summary;
    int64_t owner; /* 0 = none (added by the CLI) */
} srv_ref_rec;
int srv_ref_insert(sqlite3 *db, const srv_ref_rec *r, sx_status *st); /* SX_ESTATE if the name exists */
json_t *srv_ref_get(sqlite3 *db, const char *name, sx_status *st);
char *srv_ref_path(sqlite3 *db, const char *name, sx_status *st);
json_t *srv_ref_list(sqlite3 *db, sx_status *st);
int srv_ref_count(sqlite3 *db);

/* ---- jobs ---- */
/* The GA4GH TES state names. */
extern const char *const srv_job_states[8];
int srv_job_state_ok(const char *s);
int srv_job_state_terminal(const char *s);

int srv_job_insert(sqlite3 *db, const char *id, int64_t owner, const char *type,
                   const char *request_json, sx_status *st);
json_t *srv_job_get(sqlite3 *db, const char *id, const srv_user *u, sx_status *st);
json_t *srv_job_list(sqlite3 *db, const srv_user *u, const char *state, int64_t offset, int limit,
                     int *more, sx_status *st);
/* State of a visible job into state[16] (and type[32] when not NULL). */
int srv_job_state(sqlite3 *db, const char *id, const srv_user *u, char state[16], char type[32],
                  sx_status *st);
/* Active (not terminal) jobs of one owner, and QUEUED jobs of everyone. */
int srv_job_counts(sqlite3 *db, int64_t owner, int *n_active_user, int *n_queued, sx_status *st);
/* Counts by state into counts[8] (srv_job_states order). */
int srv_job_state_counts(sqlite3 *db, int64_t counts[8], sx_status *st);
/* Conditional state change: only when the current state is `from` (NULL = any non-terminal).
 * Returns 1 when a row changed, 0 when not, < 0 on error. */
int srv_job_transition(sqlite3 *db, const char *id, const char *from, const char *to,
                       sx_status *st);
/* Oldest QUEUED job into id[32]; returns 1 when one was found, 0 when none. */
int srv_job_next_queued(sqlite3 *db, char id[32], sx_status *st);
/* Claim: QUEUED -> INITIALIZING, attempts + 1, started_ms set. 1 when claimed. */
int srv_job_claim(sqlite3 *db, const char *id, int *attempts, char **request_json, char type[32],
                  sx_status *st);
int srv_job_progress(sqlite3 *db, const char *id, const char *stage, double progress,
                     const char *message, sx_status *st);
/* Terminal write: state, finished_ms, error (NULL for success). */
int srv_job_finish(sqlite3 *db, const char *id, const char *state, const char *error_type,
                   const char *error, sx_status *st);
/* Start-up reconciliation of jobs the previous process left INITIALIZING/RUNNING/CANCELING:
 * re-queued while attempts < max_attempts, else SYSTEM_ERROR with the reason. Returns the
 * number of jobs touched. */
int srv_job_reconcile(sqlite3 *db, int max_attempts, int *n_requeued, int *n_failed,
                      sx_status *st);

#endif
