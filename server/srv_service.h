/* srv_service — the daemon's use cases, one typed call each: store and delete a dataset,
 * submit and cancel a job, register a reference, map a query onto one; the get/list views.
 *
 * api/ parses requests, authenticates, calls one of these and shapes the answer; the CLI
 * and unit tests call them directly. The quota transaction of a submit, the cancel state
 * machine and the storage of an upload (ids, rename into place, rollback) live here and
 * nowhere else. Paths come from srv_layout.h; job states are srv_jstate values.
 *
 * Errors: SX_OK or an SX_E* code with st filled (a message a client may read: it never
 * holds a server path), and *why (when why is not NULL) says which refusal it was, so the
 * edge can answer it (api_problem.c maps (why, code) to a status in one table).
 *
 * Threads: any thread; each call borrows its own registry connection. */
#ifndef SRV_SERVICE_H
#define SRV_SERVICE_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>

#include "sx_error.h"
#include "srv_engine.h"
#include "srv_jobs.h"
#include "srv_registry.h"

/* The dependencies of the use cases, all borrowed (they outlive every call). A value:
 * build one on the stack where needed. */
typedef struct srv_service {
    srv_registry *reg;
    srv_jobs *jobs;              /* woken after a submit, told of cancels; may be NULL */
    const srv_engine *eng;       /* validate, check_options, specs, label_option */
    const char *data_dir;
    int user_max_jobs;           /* unfinished jobs per user */
    int queue_cap;               /* QUEUED jobs of everyone */
    const atomic_int *draining;  /* raised at shutdown: no new jobs; may be NULL */
    int publish_everyone;        /* 0: only admins register and withdraw references */
    int64_t storage_quota;       /* bytes of datasets + results per user; 0 = none */
} srv_service;

/* Which refusal a failed call was (the code alone does not tell a quota from a full queue). */
typedef enum srv_why {
    SRV_WHY_NONE = 0,       /* a plain error: the code says it all */
    SRV_WHY_NO_DATASET,     /* SX_ENOTFOUND: no such dataset visible to the user */
    SRV_WHY_NO_REFERENCE,   /* SX_ENOTFOUND: no reference of that name */
    SRV_WHY_NO_JOB,         /* SX_ENOTFOUND: no such job visible to the user */
    SRV_WHY_USER_QUOTA,     /* SX_ELIMIT: the user's unfinished jobs are at user_max_jobs */
    SRV_WHY_QUEUE_FULL,     /* SX_ELIMIT: queue_cap jobs are QUEUED */
    SRV_WHY_BUSY,           /* the registry could not be reached or commit: retry soon */
    SRV_WHY_DRAINING,       /* SX_ESTATE: the daemon is shutting down */
    SRV_WHY_FINISHED,       /* SX_ESTATE: the job already finished (cancel) */
    SRV_WHY_WRONG_STATE,    /* SX_ESTATE: the object is not in a state the call needs */
    SRV_WHY_BAD_OPTIONS,    /* SX_EINVAL: option values the pipeline refuses */
    SRV_WHY_BAD_UPLOAD,     /* the readers refused the upload (EFORMAT, EUNSUPPORTED, ELIMIT) */
    SRV_WHY_UNSTORABLE,     /* SX_EIO: the upload could not be moved into place: retry */
    SRV_WHY_FORBIDDEN,      /* SX_ESTATE: the user may not do this (publish_references) */
    SRV_WHY_STORAGE_QUOTA,  /* SX_ELIMIT: the upload would pass user_storage_quota */
    SRV_WHY_STORAGE_FULL    /* SX_ELIMIT: the user's storage is at user_storage_quota */
} srv_why;

/* ---- datasets ---- */

typedef struct srv_upload {
    const char *spool_path;  /* the received file, or an mtx folder (is_dir) */
    int is_dir;
    const char *name;        /* NULL or "": "upload-<id>" */
    const char *sha256;      /* hex digest of the bytes received */
    int64_t bytes;
} srv_upload;

/* Validate the upload with the readers, give it an id, move it to its place in the data dir
 * and insert its row; on any failure after the move the file is removed again (the spool
 * file is then the caller's to remove; on success it is gone). id_out[32], format_out[32]
 * (may be NULL): the new dataset's id and format. */
int srv_service_dataset_store(const srv_service *svc, const srv_user *u, const srv_upload *up,
                              char id_out[32], char format_out[32], srv_why *why,
                              sx_status *st);
/* Delete a visible dataset's row and its file (or folder). SX_ESTATE (SRV_WHY_WRONG_STATE)
 * while an unfinished job uses it. */
int srv_service_dataset_delete(const srv_service *svc, const srv_user *u, const char *id,
                               srv_why *why, sx_status *st);

/* ---- jobs ---- */

/* What a submit needs checked against the registry: every dataset visible to u, the
 * reference (when ref is not NULL) registered, the option values accepted by the engine.
 * opts may be NULL. The request's JSON shape is the caller's to check first. */
int srv_service_job_check(const srv_service *svc, const srv_user *u, const json_t *datasets,
                          const char *ref, const json_t *opts, srv_why *why, sx_status *st);
/* Insert a QUEUED job (request: the JSON object as it will be stored) with the quota check
 * and the insert in one transaction, then wake the runner. id_out[32]. With view not NULL,
 * *view is the job as inserted (QUEUED; srv_job_get's JSON, caller decrefs; NULL when that
 * read failed), read before the runner is woken so it never races the worker. */
int srv_service_job_submit(const srv_service *svc, const srv_user *u, const char *type,
                           const json_t *request, char id_out[32], json_t **view, srv_why *why,
                           sx_status *st);
/* Cancel: QUEUED -> CANCELED at once; INITIALIZING/RUNNING -> CANCELING and the worker is
 * told (the runner writes CANCELED when it stops); CANCELING: told again; CANCELED: nothing
 * to do. A finished job: SX_ESTATE with SRV_WHY_FINISHED. *now: the state after the call. */
int srv_service_job_cancel(const srv_service *svc, const srv_user *u, const char *id,
                           srv_jstate *now, srv_why *why, sx_status *st);
/* The folder of a visible job (need_complete: only once it is COMPLETE, else SX_ESTATE with
 * SRV_WHY_WRONG_STATE and *state says where it is). dir[4200]; state, type[32] may be NULL. */
int srv_service_job_dir(const srv_service *svc, const srv_user *u, const char *id,
                        int need_complete, char dir[4200], srv_jstate *state, char type[32],
                        srv_why *why, sx_status *st);
/* Delete a finished job visible to u: its row and its result folder (what frees storage
 * under user_storage_quota). SX_ESTATE (SRV_WHY_WRONG_STATE) while it has not finished. */
int srv_service_job_delete(const srv_service *svc, const srv_user *u, const char *id,
                           srv_why *why, sx_status *st);
/* The job's log (log.txt) as text with the data dir's path taken out (malloc'd, *len bytes;
 * "" when the job has written none yet). */
int srv_service_job_log(const srv_service *svc, const srv_user *u, const char *id, char **text,
                        size_t *len, srv_why *why, sx_status *st);
/* Bytes u stores (datasets + finished jobs' results) and the quota (0 = none). */
int srv_service_storage(const srv_service *svc, const srv_user *u, int64_t *used,
                        int64_t *quota, srv_why *why, sx_status *st);
/* Views (srv_registry's JSON; caller decrefs): one job, one page of jobs (state may be
 * SRV_JOB_UNKNOWN: all), one dataset, one page of datasets. */
json_t *srv_service_job_get(const srv_service *svc, const srv_user *u, const char *id,
                            srv_why *why, sx_status *st);
json_t *srv_service_job_list(const srv_service *svc, const srv_user *u, srv_jstate state,
                             int64_t offset, int limit, int *more, srv_why *why, sx_status *st);
json_t *srv_service_dataset_get(const srv_service *svc, const srv_user *u, const char *id,
                                srv_why *why, sx_status *st);
json_t *srv_service_dataset_list(const srv_service *svc, const srv_user *u, int64_t offset,
                                 int limit, int *more, srv_why *why, sx_status *st);

/* ---- references ---- */

typedef struct srv_ref_request {
    const char *name;        /* srv_name_ok */
    const char *job_id;      /* a COMPLETE integrate job visible to the user */
    const char *description, *species, *tissue; /* may be NULL */
} srv_ref_request;
/* Register a reference from a finished integrate job: its files are placed under the
 * references folder with the plausible label columns of its inputs. SX_ENOTFOUND
 * (SRV_WHY_NO_JOB) for an invisible job, SX_ESTATE (SRV_WHY_WRONG_STATE) for a job that is
 * not a COMPLETE integrate job or a name that is taken. */
int srv_service_ref_register(const srv_service *svc, const srv_user *u,
                             const srv_ref_request *rq, srv_why *why, sx_status *st);
/* Withdraw a reference from the catalog: its row, its folder and its loaded copy. Admins may
 * withdraw any; with publish_everyone, a user the ones they registered (SRV_WHY_FORBIDDEN
 * otherwise). A job already running keeps its mapped copy; later ones find no reference. */
int srv_service_ref_withdraw(const srv_service *svc, const srv_user *u, const char *name,
                             srv_why *why, sx_status *st);
/* One reference (with whether it is loaded in memory) or the catalog; caller decrefs. */
json_t *srv_service_ref_get(const srv_service *svc, const char *name, srv_why *why,
                            sx_status *st);
json_t *srv_service_ref_list(const srv_service *svc, srv_why *why, sx_status *st);
/* The folder of reference `name` (absolute, into dir[cap]), loaded once so that its tables
 * for the API (REFDIR/umap.sxt, latent.sxt, refcells.json: sx_reference_tables) are written. SRV_WHY_NO_REFERENCE
 * when no such reference. */
int srv_service_ref_dir(const srv_service *svc, const char *name, char *dir, size_t cap,
                        srv_why *why, sx_status *st);
/* SX_OK when a reference of that name is registered (SRV_WHY_NO_REFERENCE when not). */
int srv_service_ref_exists(const srv_service *svc, const char *name, srv_why *why,
                           sx_status *st);

/* ---- map: a stored upload projected onto a reference, labels transferred ---- */

/* Submit the project job of POST /v1/references/{ref}/map for dataset ds_id (label: the
 * reference's obs column to transfer, may be NULL). id_out[32]. */
int srv_service_map_submit(const srv_service *svc, const srv_user *u, const char *ds_id,
                           const char *ref, const char *label, char id_out[32], srv_why *why,
                           sx_status *st);
/* The same with the project job's options (label included, under the engine's label option
 * name; NULL = defaults), as /map?min_features=0&label=... gives them. */
int srv_service_map_submit_opts(const srv_service *svc, const srv_user *u, const char *ds_id,
                                const char *ref, const json_t *options, char id_out[32],
                                srv_why *why, sx_status *st);
/* Where a job stands for an answer: its state and, for a job that failed, its error. */
typedef struct srv_job_outcome {
    srv_jstate state;
    char error_type[64];     /* "" when none */
    char error[1024];        /* "" when none */
} srv_job_outcome;
int srv_service_job_outcome(const srv_service *svc, const srv_user *u, const char *id,
                            srv_job_outcome *out, srv_why *why, sx_status *st);
/* Call fn once when job id ends or timeout_s passes (srv_jobs_wait). */
int srv_service_job_wait(const srv_service *svc, const char *id, double timeout_s,
                         srv_job_wait_fn fn, void *user, sx_status *st);

#endif
