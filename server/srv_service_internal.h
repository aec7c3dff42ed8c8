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

/* SX_OK when u may add `adding` bytes (0: when u is under the quota at all) under
 * user_storage_quota; SRV_WHY_STORAGE_QUOTA / _FULL with a message saying what to delete. */
int svc_check_storage(const srv_service *svc, const srv_user *u, int64_t adding, srv_why *why,
                      sx_status *st);

#endif
