/* srv_auth — bearer tokens resolved through a small in-memory cache.
 *
 * Every authenticated request used to cost a sha256 and a registry transaction; under
 * status polling (GET /v1/jobs/{id} from many clients) that was most of the request's CPU.
 * The cache maps sha256(token) -> user for at most `ttl_s` seconds, in a fixed number of
 * entries (least-soon-to-expire entry replaced when a bucket is full), so:
 *  - the clear token is never kept, only its hash (like the registry);
 *  - a token revoked or a user changed by another process (`scalexd token ...` on the same
 *    data dir, another daemon) is honoured within ttl_s: the bound is documented as the
 *    `auth_cache_ttl` setting (docs/guide);
 *  - unknown tokens are not cached: a token created a moment ago works on its first use,
 *    and random guesses cannot evict real entries.
 * ttl_s <= 0 disables the cache (every request reads the registry).
 * Thread-safe (one mutex, held only to copy an entry). Functions taking `a` accept NULL
 * except srv_auth_check. */
#ifndef SRV_AUTH_H
#define SRV_AUTH_H

#include "sx_error.h"
#include "srv_registry.h"

typedef struct srv_auth srv_auth;

typedef struct srv_auth_stats {
    long long hits, misses, entries;
} srv_auth_stats;

/* capacity: entries kept (rounded up to a power of two, at least 16). NULL when out of
 * memory. The registry is borrowed and must outlive the cache. */
srv_auth *srv_auth_new(srv_registry *reg, int capacity, double ttl_s);
void srv_auth_free(srv_auth *a);

/* Resolve a clear bearer token: SX_OK and *u, SX_ENOTFOUND for an unknown token, another
 * SX_E* with st when the registry cannot be read. Hashes the token once; reads the registry
 * only on a miss or an expired entry. (There is no revoke command yet: when one comes, it
 * must drop the user's entries here too, or revocation waits for the TTL.) */
int srv_auth_check(srv_auth *a, const char *token, srv_user *u, sx_status *st);

void srv_auth_stats_get(srv_auth *a, srv_auth_stats *out);

#endif
