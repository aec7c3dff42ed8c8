/* api_edge — the HTTP edge's defences that libmicrohttpd does not give: deadlines a trickle
 * cannot extend, and the checks of a request's framing and query before any handler runs.
 *
 * libmicrohttpd's connection timeout is an idle timeout: every byte resets it, so a client
 * that sends one header line every few seconds holds its connection forever (slowloris).
 * The tracker follows each connection through its phases (waiting for headers, receiving a
 * body, busy in a handler or sending, lingering after an early answer) and a reaper thread
 * cuts (shutdown(2)) a connection whose headers take longer than http_header_timeout in
 * total, whose body averages less than http_body_min_rate over http_body_timeout, or whose
 * linger after an early answer is over. Cutting wakes the connection's event loop, which
 * closes it the usual way. */
#ifndef API_EDGE_H
#define API_EDGE_H

#include <stdarg.h>
#include <stddef.h>

#include "api.h"

typedef struct api_edge api_edge;

enum {
    API_EDGE_HEADERS = 0, /* waiting for a request's line and headers (or idle keep-alive) */
    API_EDGE_BODY,        /* receiving a request body */
    API_EDGE_BUSY,        /* in a handler, suspended, or sending the answer: never cut here */
    API_EDGE_LINGER       /* answered early; the rest of the body is discarded for a moment */
};

/* Start the reaper thread for the limits in cfg (borrowed, must outlive the tracker).
 * NULL when out of memory or no thread could be started. */
api_edge *api_edge_new(const srv_config *cfg);
/* Stop the reaper; call after MHD_stop_daemon (no connection is tracked any more). */
void api_edge_free(api_edge *e);
/* MHD_OPTION_NOTIFY_CONNECTION callback (cls = the api_edge): tracks every connection from
 * its start (phase HEADERS) to its close. Any libmicrohttpd thread. */
void api_edge_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode toe);
/* Move the connection to a phase (API_EDGE_*); the phase's clock starts now. The
 * connection's own thread. */
void api_edge_phase(struct MHD_Connection *c, int phase);
/* Count n body bytes received toward the minimum rate. The connection's own thread. */
void api_edge_body(struct MHD_Connection *c, size_t n);

/* MHD_OPTION_EXTERNAL_LOGGER (cls = the api_edge): libmicrohttpd's messages as warnings, at
 * most 20 a minute and then a count, since a client can cause one per connection (issue
 * 14: 941 "connection limit" lines for one burst). Any libmicrohttpd thread. */
void api_edge_mhd_log(void *cls, const char *fmt, va_list ap);

/* Checks of a request before its handler, in the order a client should fix them:
 * Content-Length framing (two different values, a value that is no number, or one beside
 * Transfer-Encoding), every query parameter's name and value (valid UTF-8 without NUL), and
 * `wait` (a finite number of seconds >= 0). 0, or 1 with a 400 problem written. */
int api_edge_check_request(api_req *r, api_resp *o);
/* Is s[0..n) valid UTF-8 (shortest forms, no surrogates) without a NUL byte? */
int api_edge_text_ok(const char *s, size_t n);
/* The problem for an upload that could not be stored, from the errno of the failing call:
 * no space or quota left (ENOSPC, EDQUOT) is 507 with a Retry-After (space may be freed),
 * anything else 503. Returns API_DONE. */
int api_edge_store_problem(api_resp *o, int err);

#endif
