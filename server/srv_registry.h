/* srv_registry — the registry: users + tokens, datasets, references, jobs.
 *
 * The registry is the truth of the daemon (the job queue is rows in `jobs`). By default it
 * lives in DATA_DIR/registry.sqlite in WAL mode with a busy timeout, so the daemon's threads
 * and a concurrent `scalexd token create` can share it. With a PostgreSQL URL (setting
 * `registry`) it lives in that database instead, and several scalexd instances sharing one
 * data dir can serve it together: each claims jobs with row locks (SKIP LOCKED) and records
 * itself as the job's runner, so a job runs once, and a restarted instance reconciles only
 * the jobs it ran (srv_registry_set_instance). Database access goes through srv_db.h.
 *
 * Each thread borrows its own connection from a small pool (srv_registry_get /
 * srv_registry_put); a connection is used by one thread at a time. Migrations
 * (schema/NNNN_*.sql, with PostgreSQL variants in schema/postgres/, embedded at build time)
 * are applied forward-only at open, each in its own writer transaction, recording the
 * version in PRAGMA user_version (SQLite) or the schema_version table (PostgreSQL).
 *
 * Row accessors take a borrowed connection. "Visible" means: the caller's own row,
 * or any row for an admin; invisible rows read as SX_ENOTFOUND so a user never learns that
 * another user's id exists. JSON objects returned are new references (json_decref).
 */
#ifndef SRV_REGISTRY_H
#define SRV_REGISTRY_H

#include <jansson.h>
#include <stdint.h>

#include "sx_error.h"
#include "srv_db.h"

typedef struct srv_registry srv_registry;

typedef struct srv_user {
    int64_t id;
    char name[65];
    int admin;
} srv_user;

/* Open (creating DATA_DIR and the database when missing) and migrate. NULL + st on error.
 * srv_registry_open_url: url NULL or "" = SQLite in the data dir, else a PostgreSQL URL. */
srv_registry *srv_registry_open(const char *data_dir, sx_status *st);
srv_registry *srv_registry_open_url(const char *data_dir, const char *url, sx_status *st);
void srv_registry_close(srv_registry *r);
const char *srv_registry_data_dir(const srv_registry *r);
srv_db_kind srv_registry_kind(const srv_registry *r);
/* This process's name among the instances sharing a PostgreSQL registry (default: the host
 * name); it must stay the same across restarts of one instance and differ between
 * instances. Call before the first srv_registry_get of the job runner. */
void srv_registry_set_instance(srv_registry *r, const char *name);
const char *srv_registry_instance(const srv_registry *r);
/* Borrow a connection (opened on demand); give it back with srv_registry_put. */
srv_db *srv_registry_get(srv_registry *r, sx_status *st);
void srv_registry_put(srv_registry *r, srv_db *db);
/* Schema version (PRAGMA user_version, or the schema_version table). */
int srv_registry_version(srv_db *db);

/* ---- users and tokens ---- */
/* Create the user if missing (admin flag raised, never lowered). */
int srv_user_ensure(srv_db *db, const char *name, int admin, srv_user *u, sx_status *st);
/* New random bearer token for user NAME (created if missing); the clear token is written to
 * token[80] and only its sha256 is stored. */
int srv_token_create(srv_db *db, const char *name, int admin, char token[80], sx_status *st);
/* Resolve a clear token; SX_ENOTFOUND when unknown. */
int srv_token_lookup(srv_db *db, const char *token, srv_user *u, sx_status *st);
/* The same by the token's sha256 (64 lowercase hex digits), for a caller that has it. */
int srv_token_lookup_hash(srv_db *db, const char *hex, srv_user *u, sx_status *st);
/* Tokens as [{id, user, admin, created}] (id: the first 12 hex digits of the stored hash;
 * the clear token is never stored), of one user or of all (user NULL). Caller owns it. */
json_t *srv_token_list(srv_db *db, const char *user, sx_status *st);
/* Delete tokens: the one given in clear (sxt_...), or the one whose id starts with the
 * given hex digits (at least 8; SX_EINVAL when they match more than one), further limited
 * to — or, with token NULL, all tokens of — user when not NULL. *n: how many went.
 * A daemon that cached the token refuses it once auth_cache_ttl passes (srv_auth.h). */
int srv_token_revoke(srv_db *db, const char *token, const char *user, int *n, sx_status *st);

/* ---- datasets ---- */
typedef struct srv_dataset_rec {
    char id[32];
    int64_t owner;
    const char *name, *format, *path, *sha256;
    int64_t size_bytes, n_obs, n_vars;
    const char *obs_columns; /* JSON array text */
} srv_dataset_rec;
int srv_dataset_insert(srv_db *db, const srv_dataset_rec *d, sx_status *st);
json_t *srv_dataset_get(srv_db *db, const char *id, const srv_user *u, sx_status *st);
/* Page of visible datasets, newest first; *more set when another page exists. */
json_t *srv_dataset_list(srv_db *db, const srv_user *u, int64_t offset, int limit, int *more,
                         sx_status *st);
/* A visible dataset's row as typed data: the fields the service decides on. */
typedef struct srv_dataset_row {
    char id[32];
    int64_t owner, n_obs, n_vars;
    char *path;        /* relative to the data dir */
    char *obs_columns; /* JSON array text [{name, kind, n_categories}] */
} srv_dataset_row;
/* SX_ENOTFOUND when not visible to u; release with srv_dataset_row_free. */
int srv_dataset_row_get(srv_db *db, const char *id, const srv_user *u, srv_dataset_row *out,
                        sx_status *st);
void srv_dataset_row_free(srv_dataset_row *r);
/* Path (relative to the data dir) of a visible dataset; caller frees with free(). */
char *srv_dataset_path(srv_db *db, const char *id, const srv_user *u, sx_status *st);
/* The SHA-256 hex digest recorded when dataset id was stored, into hex[65] (the daemon's
 * own lookup: no owner check). SX_ENOTFOUND when there is no such dataset or digest. */
int srv_dataset_sha256(srv_db *db, const char *id, char hex[65], sx_status *st);
/* Delete a visible dataset row; its relative path is returned in *path (free()).
 * SX_ESTATE when an unfinished job uses it. */
int srv_dataset_delete(srv_db *db, const char *id, const srv_user *u, char **path, sx_status *st);

/* ---- references ---- */
typedef struct srv_ref_rec {
    const char *name, *path, *job_id, *description, *species, *tissue, *summary;
    int64_t owner; /* 0 = none (added by the CLI) */
} srv_ref_rec;
int srv_ref_insert(srv_db *db, const srv_ref_rec *r, sx_status *st); /* SX_ESTATE if the name exists */
json_t *srv_ref_get(srv_db *db, const char *name, sx_status *st);
char *srv_ref_path(srv_db *db, const char *name, sx_status *st);
json_t *srv_ref_list(srv_db *db, sx_status *st);
int srv_ref_count(srv_db *db);
/* The user id that registered it (0: added by the CLI); SX_ENOTFOUND when there is none. */
int srv_ref_owner(srv_db *db, const char *name, int64_t *owner, sx_status *st);
/* Remove the catalog row (the folder is the caller's); SX_ENOTFOUND when there is none. */
int srv_ref_delete(srv_db *db, const char *name, sx_status *st);

/* ---- jobs ---- */
/* The job states (GA4GH TES). Code above the registry works with this enum; the names are
 * spelled only by srv_jstate_name / srv_jstate_parse, at the edges (rows, JSON, metrics). */
typedef enum srv_jstate {
    SRV_JOB_UNKNOWN = -1, /* no such job (or it could not be read) */
    SRV_JOB_QUEUED = 0,
    SRV_JOB_INITIALIZING,
    SRV_JOB_RUNNING,
    SRV_JOB_COMPLETE,
    SRV_JOB_EXECUTOR_ERROR,
    SRV_JOB_SYSTEM_ERROR,
    SRV_JOB_CANCELING,
    SRV_JOB_CANCELED,
    SRV_JOB_N_STATES
} srv_jstate;
/* "QUEUED", ...; "UNKNOWN" for a value out of range. Static text. */
const char *srv_jstate_name(srv_jstate s);
/* SX_OK with *out set, or SX_EINVAL (st names the valid states) for an unknown name. */
int srv_jstate_parse(const char *name, srv_jstate *out, sx_status *st);
/* COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR, CANCELED */
int srv_jstate_terminal(srv_jstate s);

/* The state names in enum order (srv_jstate_name(i) == srv_job_states[i]). */
extern const char *const srv_job_states[SRV_JOB_N_STATES];
/* String forms of the above, for rows and tests. */
int srv_job_state_ok(const char *s);
int srv_job_state_terminal(const char *s);

/* Generation of the job rows (jobs, job_executor) as this process wrote them: every
 * function in this process that writes such a row calls srv_job_changed after the
 * statement (after the commit, for the ones that hold their own transaction). A view read
 * after taking generation g shows every write this process made before g; the job status
 * cache (srv_respcache) keeps a body only while the generation is still g. Process-wide,
 * so it holds across connections and registries; any thread. */
uint64_t srv_job_generation(void);
void srv_job_changed(void);

int srv_job_insert(srv_db *db, const char *id, int64_t owner, const char *type,
                   const char *request_json, sx_status *st);
json_t *srv_job_get(srv_db *db, const char *id, const srv_user *u, sx_status *st);
json_t *srv_job_list(srv_db *db, const srv_user *u, const char *state, int64_t offset, int limit,
                     int *more, sx_status *st);
/* State of a visible job into state[16] (and type[32] when not NULL). */
int srv_job_state(srv_db *db, const char *id, const srv_user *u, char state[16], char type[32],
                  sx_status *st);

/* A visible job's row as typed data (what the service decides on; srv_job_get is the JSON
 * view). Strings are owned by the struct: release with srv_job_row_free. */
typedef struct srv_job_row {
    char id[32];
    char type[32];
    srv_jstate state;
    int64_t owner;
    char *request_json;   /* the request as submitted (JSON object text) */
    char *error_type;     /* NULL unless the job failed */
    char *error;
} srv_job_row;
/* SX_ENOTFOUND when the job is not visible to u. */
int srv_job_row_get(srv_db *db, const char *id, const srv_user *u, srv_job_row *out,
                    sx_status *st);
void srv_job_row_free(srv_job_row *r);
/* Typed conditional state change: SX_OK when the job was in `from` and is now in `to`,
 * SX_ESTATE when it was not in `from` (nothing written), another code on error. */
int srv_job_move(srv_db *db, const char *id, srv_jstate from, srv_jstate to, sx_status *st);
/* The size of a finished job's result folder (counted against its owner's storage). */
int srv_job_set_result_bytes(srv_db *db, const char *id, int64_t bytes, sx_status *st);
/* Remove a finished job's row (its folder is the caller's); SX_ESTATE while it has not
 * finished. Visibility is the caller's to check first (srv_job_row_get). */
int srv_job_delete(srv_db *db, const char *id, sx_status *st);
/* Bytes a user stores: datasets' sizes + finished jobs' result folders. */
int srv_user_storage_bytes(srv_db *db, int64_t user_id, int64_t *bytes, sx_status *st);
/* Active (not terminal) jobs of one owner, and QUEUED jobs of everyone. */
int srv_job_counts(srv_db *db, int64_t owner, int *n_active_user, int *n_queued, sx_status *st);
/* Counts by state into counts[8] (srv_job_states order). */
int srv_job_state_counts(srv_db *db, int64_t counts[SRV_JOB_N_STATES], sx_status *st);
/* Conditional state change: only when the current state is `from` (NULL = any non-terminal).
 * Returns 1 when a row changed, 0 when not, < 0 on error. */
int srv_job_transition(srv_db *db, const char *id, const char *from, const char *to,
                       sx_status *st);
/* Oldest QUEUED job into id[32]: SX_OK, or SX_ENOTFOUND when none is queued. */
int srv_job_next_queued(srv_db *db, char id[32], sx_status *st);
/* Claim: QUEUED -> INITIALIZING, attempts + 1, started_ms set, runner = the connection's
 * instance. SX_OK when claimed (*request_json: malloc'd, free()); SX_ESTATE when the job is
 * no longer QUEUED or another instance is claiming it right now; another code when the write
 * failed (a full disk): the job was not claimed and must not run. */
int srv_job_claim(srv_db *db, const char *id, int *attempts, char **request_json, char type[32],
                  sx_status *st);
int srv_job_progress(srv_db *db, const char *id, const char *stage, double progress,
                     const char *message, sx_status *st);
/* Terminal write: state, finished_ms, error (NULL for success). */
int srv_job_finish(srv_db *db, const char *id, const char *state, const char *error_type,
                   const char *error, sx_status *st);
/* Start-up reconciliation of jobs the previous process (on PostgreSQL: of this instance)
 * left INITIALIZING/RUNNING/CANCELING:
 * re-queued while attempts < max_attempts, else SYSTEM_ERROR with the reason. Returns the
 * number of jobs touched. */
int srv_job_reconcile(srv_db *db, int max_attempts, int *n_requeued, int *n_failed,
                      sx_status *st);

#endif
