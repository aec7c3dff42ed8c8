/* srv_service: the job use cases — check, submit (the quota transaction), cancel (the state
 * machine), a job's folder, outcome and wait, and the job views. Datasets are in
 * srv_service_datasets.c, references and map in srv_service_refs.c. */
#include "srv_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_layout.h"
#include "srv_service_internal.h"
#include "srv_util.h"

srv_db *svc_db(const srv_service *svc, srv_why *why, sx_status *st)
{
    srv_db *db = srv_registry_get(svc->reg, st);
    if (!db) {
        sx_status_prefix(st, "the registry cannot be opened");
        svc_why(why, SRV_WHY_BUSY, st->code ? st->code : SX_EIO);
    }
    return db;
}

void svc_put(const srv_service *svc, srv_db *db)
{
    if (db) srv_registry_put(svc->reg, db);
}

int svc_lookup_fail(int code, srv_why not_found, srv_why *why, sx_status *st)
{
    if (code == SX_ENOTFOUND) {
        /* the registry says "no job 'x'"; a client reads "no job 'x' here" */
        size_t n = strlen(st->msg);
        if (n + 5 < sizeof st->msg) memcpy(st->msg + n, " here", 6);
        return svc_why(why, not_found, code);
    }
    return svc_why(why, SRV_WHY_NONE, code);
}

int srv_service_job_check(const srv_service *svc, const srv_user *u, const json_t *datasets,
                          const char *ref, const json_t *opts, srv_why *why, sx_status *st)
{
    srv_db *db = svc_db(svc, why, st);
    if (!db) return st->code;
    int rc = SX_OK;
    size_t i;
    json_t *v;
    json_array_foreach(datasets, i, v) {
        char *p = srv_dataset_path(db, json_string_value(v), u, st);
        if (!p) {
            rc = svc_lookup_fail(st->code ? st->code : SX_EIO, SRV_WHY_NO_DATASET, why, st);
            goto out;
        }
        free(p);
    }
    if (ref) {
        char *p = srv_ref_path(db, ref, st);
        if (!p) {
            rc = st->code == SX_ENOTFOUND
                     ? svc_why(why, SRV_WHY_NO_REFERENCE,
                               sx_status_set(st, SX_ENOTFOUND, "no reference named '%s'", ref))
                     : svc_why(why, SRV_WHY_NONE, st->code ? st->code : SX_EIO);
            goto out;
        }
        free(p);
    }
    const srv_engine *e = svc->eng;
    if (opts && e->check_options && (rc = e->check_options(e->user, opts, st)))
        rc = svc_why(why, SRV_WHY_BAD_OPTIONS, sx_status_prefix(st, "options"));
out:
    svc_put(svc, db);
    return rc;
}

/* Inside the submit's transaction: every input still there. A delete that committed since
 * srv_service_job_check won the race; the submit is the loser (SX_ESTATE). */
static int inputs_still_there(srv_db *db, const srv_user *u, const json_t *request,
                              srv_why *why, sx_status *st)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(request, "datasets"), i, v) {
        char *p = srv_dataset_path(db, json_string_value(v), u, st);
        if (p) {
            free(p);
            continue;
        }
        if (st->code != SX_ENOTFOUND) return svc_why(why, SRV_WHY_NONE, st->code);
        return svc_why(why, SRV_WHY_WRONG_STATE,
                       sx_status_set(st, SX_ESTATE, "dataset '%s' was deleted while the job was "
                                     "submitted: upload it again", json_string_value(v)));
    }
    return SX_OK;
}

/* The input check, the quota check and the insert are one writer transaction, so concurrent
 * submits cannot overshoot the limits and a concurrent delete of an input cannot slip in
 * (srv_service_dataset_delete holds the same lock). */
static int insert_within_quota(const srv_service *svc, srv_db *db, const srv_user *u,
                               const char *id, const char *type, const json_t *request,
                               const char *text, srv_why *why, sx_status *st)
{
    if (srv_db_begin(db, NULL))
        return svc_why(why, SRV_WHY_BUSY, sx_status_set(st, SX_EIO, "the registry is busy"));
    int active = 0, queued = 0, rc;
    if ((rc = inputs_still_there(db, u, request, why, st))) {
        /* why set */
    } else if ((rc = srv_job_counts(db, u->id, &active, &queued, st))) {
        svc_why(why, SRV_WHY_NONE, rc);
    } else if (active >= svc->user_max_jobs) {
        rc = svc_why(why, SRV_WHY_USER_QUOTA,
                     sx_status_set(st, SX_ELIMIT, "you have %d unfinished jobs, the limit per user "
                                   "is %d: wait for one to finish (or cancel one) and retry",
                                   active, svc->user_max_jobs));
    } else if (queued >= svc->queue_cap) {
        rc = svc_why(why, SRV_WHY_QUEUE_FULL,
                     sx_status_set(st, SX_ELIMIT, "the queue holds %d jobs, its limit", queued));
    } else if ((rc = srv_job_insert(db, id, u->id, type, text, st))) {
        svc_why(why, SRV_WHY_NONE, rc);
    } else if (srv_db_commit(db, NULL)) {
        rc = svc_why(why, SRV_WHY_BUSY, sx_status_set(st, SX_EIO, "the registry could not "
                                                      "commit"));
    } else {
        return svc_why(why, SRV_WHY_NONE, SX_OK);
    }
    srv_db_rollback(db);
    return rc;
}

int srv_service_job_submit(const srv_service *svc, const srv_user *u, const char *type,
                           const json_t *request, char id_out[32], json_t **view, srv_why *why,
                           sx_status *st)
{
    if (view) *view = NULL;
    if (svc->draining && atomic_load(svc->draining))
        return svc_why(why, SRV_WHY_DRAINING,
                       sx_status_set(st, SX_ESTATE, "the server is shutting down"));
    char id[32]; /* id_out is only written for a job that exists */
    int rc = svc_check_storage(svc, u, 0, why, st);
    if (rc) return rc;
    if ((rc = srv_random_id("job_", id, sizeof id, st))) return svc_why(why, SRV_WHY_NONE, rc);
    char *text = json_dumps(request, JSON_COMPACT);
    if (!text) return svc_why(why, SRV_WHY_NONE, sx_status_set(st, SX_ENOMEM, "out of memory"));
    srv_db *db = svc_db(svc, why, st);
    rc = db ? insert_within_quota(svc, db, u, id, type, request, text, why, st) : st->code;
    free(text);
    if (!rc) memcpy(id_out, id, sizeof id);
    if (!rc && view) *view = srv_job_get(db, id, u, NULL);
    svc_put(svc, db);
    if (!rc && svc->jobs) srv_jobs_notify(svc->jobs); /* after the row is durable */
    return rc;
}

int srv_service_job_cancel(const srv_service *svc, const srv_user *u, const char *id,
                           srv_jstate *now, srv_why *why, sx_status *st)
{
    srv_db *db = svc_db(svc, why, st);
    if (!db) return st->code;
    srv_job_row row;
    int rc = srv_job_row_get(db, id, u, &row, st);
    if (rc) {
        svc_put(svc, db);
        return svc_lookup_fail(rc, SRV_WHY_NO_JOB, why, st);
    }
    srv_job_row_free(&row);
    /* QUEUED -> CANCELED at once (conditional: the runner may claim it concurrently);
     * running -> CANCELING, then the worker sees the flag and the runner writes CANCELED.
     * A move the registry cannot take (a full disk) still stops a job running here (its
     * worker writes the ending when it can); anything else answers the storage error. */
    int tell = 0, mv = srv_job_move(db, id, SRV_JOB_QUEUED, SRV_JOB_CANCELED, st);
    if (mv == SX_ESTATE) {
        mv = srv_job_move(db, id, SRV_JOB_INITIALIZING, SRV_JOB_CANCELING, st);
        if (mv == SX_ESTATE) mv = srv_job_move(db, id, SRV_JOB_RUNNING, SRV_JOB_CANCELING, st);
        tell = mv != SX_ESTATE || row.state == SRV_JOB_CANCELING;
    }
    int stopped = tell && svc->jobs && srv_jobs_cancel(svc->jobs, id);
    if (mv != SX_OK && mv != SX_ESTATE && !stopped) {
        svc_put(svc, db);
        return svc_why(why, SRV_WHY_NONE, mv);
    }
    rc = srv_job_row_get(db, id, u, &row, st);
    svc_put(svc, db);
    if (rc) return svc_lookup_fail(rc, SRV_WHY_NO_JOB, why, st);
    srv_job_row_free(&row);
    if (now) *now = row.state;
    if (srv_jstate_terminal(row.state) && row.state != SRV_JOB_CANCELED)
        return svc_why(why, SRV_WHY_FINISHED,
                       sx_status_set(st, SX_ESTATE, "job '%s' already finished (%s): nothing to "
                                     "cancel", id, srv_jstate_name(row.state)));
    return svc_why(why, SRV_WHY_NONE, SX_OK);
}

int srv_service_job_dir(const srv_service *svc, const srv_user *u, const char *id,
                        int need_complete, char dir[4200], srv_jstate *state, char type[32],
                        srv_why *why, sx_status *st)
{
    srv_job_row row;
    int rc = svc_job_row(svc, u, id, &row, why, st);
    if (rc) return rc;
    srv_job_row_free(&row);
    if (state) *state = row.state;
    if (type) snprintf(type, 32, "%s", row.type);
    if (need_complete && row.state != SRV_JOB_COMPLETE)
        return svc_why(why, SRV_WHY_WRONG_STATE,
                       sx_status_set(st, SX_ESTATE, "job '%s' is %s: results exist once it is "
                                     "COMPLETE", id, srv_jstate_name(row.state)));
    return svc_why(why, SRV_WHY_NONE, srv_layout_job_dir(svc->data_dir, id, dir, 4200, st));
}

int srv_service_job_outcome(const srv_service *svc, const srv_user *u, const char *id,
                            srv_job_outcome *out, srv_why *why, sx_status *st)
{
    memset(out, 0, sizeof *out);
    out->state = SRV_JOB_UNKNOWN;
    srv_job_row row;
    int rc = svc_job_row(svc, u, id, &row, why, st);
    if (rc) return rc;
    out->state = row.state;
    snprintf(out->error_type, sizeof out->error_type, "%s", row.error_type ? row.error_type : "");
    snprintf(out->error, sizeof out->error, "%s", row.error ? row.error : "");
    srv_job_row_free(&row);
    return svc_why(why, SRV_WHY_NONE, SX_OK);
}

int srv_service_job_wait(const srv_service *svc, const char *id, double timeout_s,
                         srv_job_wait_fn fn, void *user, sx_status *st)
{
    if (!svc->jobs) return sx_status_set(st, SX_ESTATE, "no job runner to wait on");
    int rc = srv_jobs_wait(svc->jobs, id, timeout_s, fn, user);
    return rc ? sx_status_set(st, rc, "cannot wait for job '%s'", id) : SX_OK;
}

json_t *svc_view(const srv_service *svc, svc_getter get, const char *id, const srv_user *u,
                 srv_why not_found, srv_why *why, sx_status *st)
{
    srv_db *db = svc_db(svc, why, st);
    if (!db) return NULL;
    json_t *j = get(db, id, u, st);
    svc_put(svc, db);
    if (!j) svc_lookup_fail(st->code, not_found, why, st);
    else svc_why(why, SRV_WHY_NONE, SX_OK);
    return j;
}

int svc_job_row(const srv_service *svc, const srv_user *u, const char *id, srv_job_row *row,
                srv_why *why, sx_status *st)
{
    srv_db *db = svc_db(svc, why, st);
    if (!db) return st->code;
    int rc = srv_job_row_get(db, id, u, row, st);
    svc_put(svc, db);
    return rc ? svc_lookup_fail(rc, SRV_WHY_NO_JOB, why, st) : SX_OK;
}

json_t *srv_service_job_get(const srv_service *svc, const srv_user *u, const char *id,
                            srv_why *why, sx_status *st)
{
    return svc_view(svc, srv_job_get, id, u, SRV_WHY_NO_JOB, why, st);
}

json_t *srv_service_job_list(const srv_service *svc, const srv_user *u, srv_jstate state,
                             int64_t offset, int limit, int *more, srv_why *why, sx_status *st)
{
    srv_db *db = svc_db(svc, why, st);
    if (!db) return NULL;
    const char *name = state == SRV_JOB_UNKNOWN ? NULL : srv_jstate_name(state);
    json_t *a = srv_job_list(db, u, name, offset, limit, more, st);
    svc_put(svc, db);
    svc_why(why, SRV_WHY_NONE, a ? SX_OK : st->code);
    return a;
}
