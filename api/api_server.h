/* api_server — scalexd's HTTP surface (libmicrohttpd + jansson).
 *
 * libmicrohttpd runs its own threads (internal polling, a small thread pool). Handlers only
 * parse, stream uploads to a spool file, read the registry and enqueue; anything slow
 * (validating an upload with the readers, waiting for a job) suspends the connection and
 * resumes it from a pool thread. Errors are RFC 9457 application/problem+json. */
#ifndef API_SERVER_H
#define API_SERVER_H

#include "sx_error.h"
#include "srv_config.h"
#include "srv_engine.h"
#include "srv_jobs.h"
#include "srv_pool.h"
#include "srv_registry.h"

typedef struct api_server api_server;

/* Start listening on cfg->host:cfg->port (port 0 = any free port, see api_server_port).
 * All pointers are borrowed and must outlive the server. */
api_server *api_server_start(const srv_config *cfg, srv_registry *reg, srv_jobs *jobs,
                             srv_pool *pool, const srv_engine *eng, sx_status *st);
int api_server_port(const api_server *s);
/* Stop accepting connections and answer 503 to new work (SIGTERM drain). */
void api_server_quiesce(api_server *s);
void api_server_stop(api_server *s);

#endif
