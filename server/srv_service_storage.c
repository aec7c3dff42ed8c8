/* srv_service: what a shared server's operators control — each user's storage (datasets +
 * job results, against user_storage_quota), deleting finished jobs to free it, and who may
 * withdraw a reference from the shared catalog (publish_references). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_layout.h"
#include "sx_jobdir.h"
#include "srv_refcache.h"
#include "srv_service_internal.h"
#include "srv_util.h"

int srv_service_storage(const srv_service *svc, const srv_user *u, int64_t *used,
                        int64_t *quota, srv_why *why, sx_status *st)
{
    *used = 0;
    *quota = svc->storage_quota;
    srv_db *db = svc_db(svc, why, st);
    if (!db) return st->code;
    int rc = srv_user_storage_bytes(db, u->id, used, st);
    svc_put(svc, db);
    return svc_why(why, SRV_WHY_NONE, rc);
}

/* human-readable bytes for messages */
static void fmt_bytes(int64_t b, char out[32])
{
    if (b >= (int64_t)1 << 30) snprintf(out, 32, "%.1f GiB", (double)b / (1 << 30));
    else snprintf(out, 32, "%.1f MiB", (double)b / (1 << 20));
}

int svc_check_storage(const srv_service *svc, const srv_user *u, int64_t adding, srv_why *why,
                      sx_status *st)
{
    if (svc->storage_quota <= 0 || !u) return SX_OK;
    int64_t used, quota;
    int rc = srv_service_storage(svc, u, &used, &quota, why, st);
    if (rc) return rc;
    if (adding > 0 ? used + adding <= quota : used < quota) return SX_OK;
    char u_s[32], q_s[32], a_s[32];
    fmt_bytes(used, u_s);
    fmt_bytes(quota, q_s);
    fmt_bytes(adding, a_s);
    if (adding > 0)
        return svc_why(why, SRV_WHY_STORAGE_QUOTA,
                       sx_status_set(st, SX_ELIMIT, "this upload (%s) would take your storage past "
                                     "its quota: %s used of %s. Delete datasets (DELETE "
                                     "/v1/datasets/{id}) or finished jobs (DELETE /v1/jobs/{id}), "
                                     "or ask an operator to raise user_storage_quota", a_s, u_s, q_s));
    return svc_why(why, SRV_WHY_STORAGE_FULL,
                   sx_status_set(st, SX_ELIMIT, "your storage is full: %s used of %s, and a job's "
                                 "results need room. Delete datasets or finished jobs (DELETE "
                                 "/v1/jobs/{id}), or ask an operator to raise user_storage_quota",
                                 u_s, q_s));
}

int srv_service_job_log(const srv_service *svc, const srv_user *u, const char *id, char **text,
                        size_t *len, srv_why *why, sx_status *st)
{
    char dir[4200], path[4400];
    *text = NULL;
    *len = 0;
    int rc = srv_service_job_dir(svc, u, id, 0, dir, NULL, NULL, why, st);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/" SX_JOBDIR_LOG, dir);
    if (!srv_file_exists(path)) {
        *text = strdup("");
        return svc_why(why, SRV_WHY_NONE, *text ? SX_OK : SX_ENOMEM);
    }
    /* a log is lines of progress: 64 MiB is far beyond any job's, and bounds the read */
    *text = srv_read_file(path, (size_t)64 << 20, len, st);
    if (!*text) return svc_why(why, SRV_WHY_NONE, st->code);
    srv_redact_dir(*text, svc->data_dir);
    *len = strlen(*text);
    return svc_why(why, SRV_WHY_NONE, SX_OK);
}

int srv_service_job_delete(const srv_service *svc, const srv_user *u, const char *id,
                           srv_why *why, sx_status *st)
{
    srv_job_row job;
    int rc = svc_job_row(svc, u, id, &job, why, st);
    if (rc) return rc;
    srv_job_row_free(&job);
    srv_db *db = svc_db(svc, why, st);
    if (!db) return st->code;
    rc = srv_job_delete(db, id, st);
    svc_put(svc, db);
    if (rc) return svc_why(why, rc == SX_ESTATE ? SRV_WHY_WRONG_STATE : SRV_WHY_NONE, rc);
    char dir[4200];
    if (srv_layout_job_dir(svc->data_dir, id, dir, sizeof dir, st) == SX_OK) srv_rmtree(dir);
    return svc_why(why, SRV_WHY_NONE, SX_OK);
}

int srv_service_ref_withdraw(const srv_service *svc, const srv_user *u, const char *name,
                             srv_why *why, sx_status *st)
{
    srv_db *db = svc_db(svc, why, st);
    if (!db) return st->code;
    int64_t owner = 0;
    int rc = srv_ref_owner(db, name, &owner, st);
    if (rc == SX_OK && !u->admin && !(svc->publish_everyone && owner == u->id))
        rc = svc_why(why, SRV_WHY_FORBIDDEN,
                     sx_status_set(st, SX_ESTATE, "only an administrator%s may withdraw reference "
                                   "'%s' from the shared catalog", svc->publish_everyone
                                   ? " or the user who registered it" : "", name));
    else if (rc == SX_OK) rc = srv_ref_delete(db, name, st);
    svc_put(svc, db);
    if (rc) {
        if (why && *why == SRV_WHY_FORBIDDEN) return rc;
        return svc_why(why, rc == SX_ENOTFOUND ? SRV_WHY_NO_REFERENCE : SRV_WHY_NONE, rc);
    }
    if (svc->jobs) srv_refcache_forget(srv_jobs_refcache(svc->jobs), name);
    char rel[512], dir[4300];
    if (srv_layout_reference_rel(name, rel, sizeof rel, st) == SX_OK &&
        srv_layout_abs(svc->data_dir, rel, dir, sizeof dir, st) == SX_OK)
        srv_rmtree(dir);
    return svc_why(why, SRV_WHY_NONE, SX_OK);
}
