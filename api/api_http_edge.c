/* The HTTP edge: connection deadlines (reaper thread) and request framing/query checks.
 * See api_edge.h for why libmicrohttpd's own timeout is not enough. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "api_edge.h"
#include "srv_util.h"
#include "sx_log.h"

/* an answer sent before the body ended: how long the rest of the body is read and dropped,
 * so that closing does not reset the connection before the client has read the answer */
#define EDGE_LINGER_S 2.0

typedef struct edge_conn {
    struct edge_conn *prev, *next;
    struct api_edge *edge;
    int fd;
    int phase;
    int cut;          /* shutdown already: do not cut twice */
    double since;     /* the phase's start (monotonic seconds) */
    double win_start; /* BODY: the current rate window */
    int64_t win_bytes;
} edge_conn;

struct api_edge {
    const srv_config *cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    edge_conn *head;
    pthread_t thread;
    /* libmicrohttpd's messages (api_edge_mhd_log): a budget per minute */
    double log_window;
    int log_lines, log_dropped;
};

/* libmicrohttpd messages kept per minute; the rest are counted, then summarised */
#define EDGE_LOG_PER_MIN 20

/* Why the connection must be cut now, or NULL. Caller holds the mutex. */
static const char *overdue(const api_edge *e, edge_conn *k, double now)
{
    const srv_config *c = e->cfg;
    switch (k->phase) {
    case API_EDGE_HEADERS:
        if (c->http_header_timeout_s > 0 && now - k->since > c->http_header_timeout_s)
            return "headers not complete within http_header_timeout";
        return NULL;
    case API_EDGE_BODY:
        if (c->http_body_timeout_s <= 0 || c->http_body_min_rate <= 0 ||
            now - k->win_start < c->http_body_timeout_s)
            return NULL;
        if ((double)k->win_bytes < c->http_body_min_rate * (now - k->win_start))
            return "body slower than http_body_min_rate";
        k->win_start = now; /* kept up: judge the next window on its own */
        k->win_bytes = 0;
        return NULL;
    case API_EDGE_LINGER:
        return now - k->since > EDGE_LINGER_S ? "linger after an early answer is over" : NULL;
    default:
        return NULL;
    }
}

static void *reaper(void *arg)
{
    api_edge *e = arg;
    pthread_mutex_lock(&e->mu);
    while (!e->stop) {
        /* a quarter second: deadlines are whole seconds, and an idle daemon wakes 4x/s */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&e->cv, &e->mu, &ts);
        double now = srv_mono_s();
        for (edge_conn *k = e->head; k && !e->stop; k = k->next) {
            const char *why = k->cut ? NULL : overdue(e, k, now);
            if (!why) continue;
            /* the fd is still open: CLOSED removes the entry under this mutex before
             * libmicrohttpd closes it. shutdown wakes the connection's event loop, which
             * reads end-of-file and closes the connection the usual way. */
            shutdown(k->fd, SHUT_RDWR);
            k->cut = 1;
            sx_log(SX_LOG_DEBUG, "http: a connection was cut: %s", why);
        }
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

api_edge *api_edge_new(const srv_config *cfg)
{
    api_edge *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->cfg = cfg;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    if (pthread_create(&e->thread, NULL, reaper, e) != 0) {
        pthread_mutex_destroy(&e->mu);
        pthread_cond_destroy(&e->cv);
        free(e);
        return NULL;
    }
    return e;
}

void api_edge_free(api_edge *e)
{
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    e->stop = 1;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    while (e->head) { /* none after MHD_stop_daemon; defensive */
        edge_conn *k = e->head;
        e->head = k->next;
        free(k);
    }
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

void api_edge_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode toe)
{
    api_edge *e = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
                                                                     MHD_CONNECTION_INFO_CONNECTION_FD);
        edge_conn *k = ci ? calloc(1, sizeof *k) : NULL;
        if (!k) return; /* untracked: libmicrohttpd's idle timeout still applies */
        k->edge = e;
        k->fd = ci->connect_fd;
        k->phase = API_EDGE_HEADERS;
        k->since = srv_mono_s();
        pthread_mutex_lock(&e->mu);
        k->next = e->head;
        if (e->head) e->head->prev = k;
        e->head = k;
        pthread_mutex_unlock(&e->mu);
        *socket_context = k;
        return;
    }
    edge_conn *k = *socket_context;
    if (!k) return;
    pthread_mutex_lock(&e->mu);
    if (k->prev) k->prev->next = k->next;
    else e->head = k->next;
    if (k->next) k->next->prev = k->prev;
    pthread_mutex_unlock(&e->mu);
    free(k);
    *socket_context = NULL;
}

/* The connection's tracker (NULL if it could not be allocated). */
static edge_conn *tracked(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
                                                                 MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void api_edge_phase(struct MHD_Connection *c, int phase)
{
    edge_conn *k = tracked(c);
    if (!k) return;
    pthread_mutex_lock(&k->edge->mu);
    k->phase = phase;
    k->since = k->win_start = srv_mono_s();
    k->win_bytes = 0;
    pthread_mutex_unlock(&k->edge->mu);
}

void api_edge_body(struct MHD_Connection *c, size_t n)
{
    edge_conn *k = tracked(c);
    if (!k) return;
    pthread_mutex_lock(&k->edge->mu);
    k->win_bytes += (int64_t)n;
    pthread_mutex_unlock(&k->edge->mu);
}

/* ---- request checks ---- */

int api_edge_text_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p++;
        if (c == 0) return 0;
        if (c < 0x80) continue;
        int more;
        unsigned cp, min;
        if ((c & 0xE0) == 0xC0) more = 1, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0) more = 2, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0) more = 3, cp = c & 0x07, min = 0x10000;
        else return 0;
        if (end - p < more) return 0;
        for (int i = 0; i < more; i++, p++) {
            if ((*p & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (*p & 0x3F);
        }
        /* overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8 */
        if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
    }
    return 1;
}

typedef struct framing {
    long long length; /* the Content-Length seen first, -1 = none */
    int conflict;     /* two different values, or one that is no number */
    int chunked;      /* a Transfer-Encoding header */
} framing;

static int all_digits(const char *s, size_t n)
{
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* Every Content-Length value (a header may also hold a list "5, 5") must be the same number. */
static enum MHD_Result scan_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_size, const char *value, size_t value_size)
{
    framing *f = cls;
    (void)kind;
    (void)key_size;
    if (!strcasecmp(key, "Transfer-Encoding")) f->chunked = 1;
    if (strcasecmp(key, "Content-Length")) return MHD_YES;
    const char *p = value ? value : "", *end = p + (value ? value_size : 0);
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end, *b = p;
        while (b < e && (*b == ' ' || *b == '\t')) b++;
        const char *t = e;
        while (t > b && (t[-1] == ' ' || t[-1] == '\t')) t--;
        if (!all_digits(b, (size_t)(t - b)) || t - b > 18) {
            f->conflict = 1;
            return MHD_NO;
        }
        long long v = strtoll(b, NULL, 10);
        if (f->length >= 0 && v != f->length) {
            f->conflict = 1;
            return MHD_NO;
        }
        f->length = v;
        if (!comma) break;
        p = comma + 1;
    }
    return MHD_YES;
}

typedef struct query_scan {
    char bad[64]; /* the first parameter that is not text ("" = all fine) */
    int bad_name; /* its name itself is not text */
} query_scan;

static enum MHD_Result scan_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    query_scan *q = cls;
    (void)kind;
    if (!api_edge_text_ok(key, key_size)) {
        q->bad_name = 1;
        return MHD_NO;
    }
    if (value && !api_edge_text_ok(value, value_size)) {
        snprintf(q->bad, sizeof q->bad, "%.*s", (int)(key_size < 60 ? key_size : 60), key);
        return MHD_NO;
    }
    return MHD_YES;
}

int api_edge_check_request(api_req *r, api_resp *o)
{
    framing f = {.length = -1};
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, scan_framing, &f);
    if (f.conflict)
        return api_problem(o, 400, "bad-request", "the request's Content-Length headers disagree "
                           "or are not a number: send exactly one Content-Length (or chunked "
                           "Transfer-Encoding without one)"), 1;
    if (f.chunked && f.length >= 0)
        return api_problem(o, 400, "bad-request", "the request has both Content-Length and "
                           "Transfer-Encoding: send one of them"), 1;
    query_scan q = {.bad = ""};
    MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, scan_query, &q);
    if (q.bad_name)
        return api_problem(o, 400, "invalid-parameter", "a query parameter's name is not UTF-8 "
                           "text (or holds a NUL byte, %%00)"), 1;
    if (q.bad[0])
        return api_problem(o, 400, "invalid-parameter", "query parameter '%s' must be UTF-8 text "
                           "without NUL bytes (%%00): percent-encode the text's UTF-8 bytes",
                           q.bad), 1;
    const char *w = api_arg(r, "wait");
    if (w) {
        char *end;
        double v = strtod(w, &end);
        if (end == w || *end || !isfinite(v) || v < 0)
            return api_problem(o, 400, "invalid-parameter", "wait must be a finite number of "
                               "seconds from 0 to %g, got '%s'", r->srv->cfg->max_wait_s, w), 1;
    }
    return 0;
}

int api_edge_store_problem(api_resp *o, int err)
{
    if (err == ENOSPC || err == EDQUOT) {
        api_problem(o, 507, "insufficient-storage", "the server has no space left to store the "
                    "upload: retry later, once the operator (or deleting your old datasets and "
                    "jobs) has freed space");
        o->retry_after = 300;
        return API_DONE;
    }
    api_problem(o, 503, "unavailable", "the upload could not be stored (an I/O error on the "
                "server): retry later");
    o->retry_after = 30;
    return API_DONE;
}

void api_edge_mhd_log(void *cls, const char *fmt, va_list ap)
{
    api_edge *e = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
    double now = srv_mono_s();
    int dropped = 0, keep;
    pthread_mutex_lock(&e->mu);
    if (now - e->log_window >= 60) {
        dropped = e->log_dropped;
        e->log_window = now;
        e->log_lines = e->log_dropped = 0;
    }
    keep = e->log_lines < EDGE_LOG_PER_MIN;
    if (keep) e->log_lines++;
    else e->log_dropped++;
    pthread_mutex_unlock(&e->mu);
    if (dropped)
        sx_log(SX_LOG_WARN, "http: %d more libmicrohttpd messages in the last minute were not "
               "logged", dropped);
    if (keep) sx_log(SX_LOG_WARN, "http: %s", msg);
}
