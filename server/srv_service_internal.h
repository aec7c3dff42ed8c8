/* srv_service_internal — helpers shared by the srv_service_*.c files (not for callers). */
#ifndef SRV_SERVICE_INTERNAL_H
#define SRV_SERVICE_INTERNAL_H

#include "srv_service.h"

/* Record the refusal kind and return code (code is SX_OK or an SX_E* already in st). */
static inline int svc_why(srv_why *why, srv_why w, int code)
{
    if (why) *why = code ? w : SRV_WHY_NONE;
    return code;
}

/* Borrow a registry connection; NULL with SRV_WHY_BUSY when none can be opened. */
srv_db *svc_db(const srv_service *svc, srv_why *why, sx_status *st);
void svc_put(const srv_service *svc, srv_db *db);

/* A not-found from the registry, reworded for a client ("no dataset 'x' here") with its why;
 * other codes pass through with SRV_WHY_NONE. */
int svc_lookup_fail(int code, srv_why not_found, srv_why *why, sx_status *st);

/* One object's JSON view through a registry getter, a not-found reworded with its why. */
typedef json_t *(*svc_getter)(srv_db *db, const char *id, const srv_user *u, sx_status *st);
json_t *svc_view(const srv_service *svc, svc_getter get, const char *id, const srv_user *u,
                 srv_why not_found, srv_why *why, sx_status *st);
/* A visible job's typed row (SRV_WHY_NO_JOB when not visible); free with srv_job_row_free. */
int svc_job_row(const srv_service *svc, const srv_user *u, const char *id, srv_job_row *row,
                srv_why *why, sx_status *st);

/* SX_OK when u may add `adding` bytes (0: when u is under the quota at all) under
 * user_storage_quota; SRV_WHY_STORAGE_QUOTA / _FULL with a message saying what to delete. */
int svc_check_storage(const srv_service *svc, const srv_user *u, int64_t adding, srv_why *why,
                      sx_status *st);

#endif
