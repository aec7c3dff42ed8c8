/* srv_respcache — recent response bodies of one GET route (GET /v1/jobs/{id}), per user.
 *
 * Status polling is the daemon's hottest path: many clients asking for the same few jobs
 * several times a second. A body is kept while
 *  - the generation it was read under is still current: every write of a job row made by
 *    this process (the runner's progress and state changes, the executor's ids,
 *    submissions and cancels through the API) raises it (srv_job_generation), so a client
 *    never sees an older state than one this process wrote before it answered; and
 *  - it is younger than ttl_s: the bound on what is not seen first-hand (another daemon
 *    sharing a PostgreSQL registry) and on the "timings" fields computed at read time.
 * Key: (user id, resource id) — visibility is per user, so one user's view is never served
 * to another. Only successful bodies are stored (a 404 may become a 200 at any moment).
 * Fixed capacity; a full bucket drops its oldest entry. Thread-safe. */
#ifndef SRV_RESPCACHE_H
#define SRV_RESPCACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct srv_respcache srv_respcache;

/* NULL when out of memory or when ttl_s <= 0 (no cache: every call below accepts NULL). */
srv_respcache *srv_respcache_new(int capacity, double ttl_s);
void srv_respcache_free(srv_respcache *c);
/* A malloc'd copy of the body (NUL-terminated, *len set) stored for (user, id) under
 * generation gen and still fresh, else NULL. */
char *srv_respcache_get(srv_respcache *c, int64_t user, const char *id, uint64_t gen, size_t *len);
/* Store a copy of body, read from the registry after the generation was gen (take gen
 * BEFORE reading, so a change made meanwhile makes this entry stale, never current). */
void srv_respcache_put(srv_respcache *c, int64_t user, const char *id, uint64_t gen,
                       const char *body, size_t len);

#endif
