/* RFC 9457 problem details: every error the API returns is one of these, with a stable type
 * per kind of error (clients switch on it) and a detail that says what to do. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"

void api_resp_init(api_resp *o)
{
    memset(o, 0, sizeof *o);
    o->fd = -1;
}

void api_resp_free(api_resp *o)
{
    free(o->body);
    if (o->fd >= 0) close(o->fd);
    api_resp_init(o);
}

int api_json(api_resp *o, int status, json_t *j)
{
    free(o->body);
    /* 15 digits: a value the handler rounded (0.8) prints as written, not 0.80000000000000004 */
    o->body = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(j);
    o->len = o->body ? strlen(o->body) : 0;
    o->status = status;
    o->ctype = "application/json";
    return API_DONE;
}

const char *api_status_title(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return "Error";
    }
}

/* Details quote readers' messages, which may hold bytes of a corrupt upload (or a sequence cut
 * by truncation): replace what is not UTF-8 with '?' so that the detail is never dropped. */
static void utf8_fix(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2
              : (*p & 0xF8) == 0xF0 ? 3 : -1;
        int ok = n >= 0 && !(n == 1 && *p < 0xC2) && !(n == 3 && *p > 0xF4);
        for (int k = 1; ok && k <= n; k++) ok = (p[k] & 0xC0) == 0x80;
        if (ok && n == 2) ok = !(p[0] == 0xE0 && p[1] < 0xA0) && !(p[0] == 0xED && p[1] >= 0xA0);
        if (ok && n == 3) ok = !(p[0] == 0xF0 && p[1] < 0x90) && !(p[0] == 0xF4 && p[1] >= 0x90);
        if (!ok) {
            *p++ = '?';
            continue;
        }
        if (n == 0 && *p < 0x20 && *p != '\t') *p = ' ';
        p += n + 1;
    }
}

static int vproblem(api_resp *o, int status, const char *slug, const char *fmt, va_list ap)
{
    char detail[2048];
    vsnprintf(detail, sizeof detail, fmt, ap);
    utf8_fix(detail);
    char type[128];
    snprintf(type, sizeof type, "urn:scalexd:problem:%s", slug);
    json_t *j = json_object();
    json_object_set_new(j, "type", json_string(type));
    json_object_set_new(j, "title", json_string(api_status_title(status)));
    json_object_set_new(j, "status", json_integer(status));
    json_object_set_new(j, "detail", json_string(detail));
    api_json(o, status, j);
    o->ctype = "application/problem+json";
    return API_DONE;
}

int api_problem(api_resp *o, int status, const char *slug, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vproblem(o, status, slug, fmt, ap);
    va_end(ap);
    return API_DONE;
}

int api_refuse(api_resp *o, int status, const char *slug, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vproblem(o, status, slug, fmt, ap);
    va_end(ap);
    return API_REFUSED;
}

int api_status_of(int code)
{
    switch (code) {
    case SX_EINVAL: return 400;
    case SX_ENOMEM: return 503;
    case SX_EFORMAT:
    case SX_EUNSUPPORTED:
    case SX_EGENES:
    case SX_EDATA: return 422;
    case SX_ENOTFOUND: return 404;
    case SX_ESTATE: return 409;
    case SX_ELIMIT: return 413;
    default: return 500;
    }
}

int api_problem_sx(api_resp *o, const sx_status *st)
{
    int status = api_status_of(st->code);
    const char *what = st->msg[0] ? st->msg : sx_strerror(st->code);
    if (status == 500)
        return api_problem(o, 500, srv_error_type(st->code), "%s; this is a server problem: retry "
                           "later, and report it with the request id if it persists", what);
    return api_problem(o, status, srv_error_type(st->code), "%s", what);
}

/* The one table of service refusals: status, problem type, the hint a client needs next,
 * and how long to wait before a retry. */
static const struct {
    srv_why why;
    int status;
    const char *slug, *hint;
    int retry_after;
} svc_answers[] = {
    {SRV_WHY_NO_DATASET, 404, "not-found", ": GET /v1/datasets lists yours", 0},
    {SRV_WHY_NO_REFERENCE, 404, "unknown-reference", ": GET /v1/references lists them", 0},
    {SRV_WHY_NO_JOB, 404, "not-found", ": GET /v1/jobs lists yours", 0},
    {SRV_WHY_USER_QUOTA, 429, "quota", "", 30},
    {SRV_WHY_QUEUE_FULL, 429, "queue-full", ": retry later", 60},
    {SRV_WHY_BUSY, 503, "unavailable", ": retry", 1},
    {SRV_WHY_DRAINING, 503, "unavailable", ": retry in a minute", 30},
    {SRV_WHY_FINISHED, 409, "conflict", "", 0},
    {SRV_WHY_WRONG_STATE, 409, "conflict", "", 0},
    {SRV_WHY_BAD_OPTIONS, 400, "invalid-value", "", 0},
    {SRV_WHY_UNSTORABLE, 503, "unavailable", ": retry later", 0},
    {SRV_WHY_FORBIDDEN, 403, "forbidden", "", 0},
    {SRV_WHY_STORAGE_QUOTA, 413, "storage-quota", "", 0},
    {SRV_WHY_STORAGE_FULL, 507, "storage-quota", "", 0},
};

int api_problem_svc(api_resp *o, srv_why why, const sx_status *st)
{
    const char *what = st->msg[0] ? st->msg : sx_strerror(st->code);
    if (why == SRV_WHY_BAD_UPLOAD) /* the readers' verdict: its code says which */
        return st->code == SX_ELIMIT ? api_problem(o, 413, "too-large", "%s", what)
                                     : api_problem(o, 422, st->code == SX_EUNSUPPORTED
                                                               ? "unsupported" : "bad-format",
                                                   "%s", what);
    for (size_t i = 0; i < sizeof svc_answers / sizeof *svc_answers; i++) {
        if (svc_answers[i].why != why) continue;
        api_problem(o, svc_answers[i].status, svc_answers[i].slug, "%s%s", what,
                    svc_answers[i].hint);
        if (svc_answers[i].retry_after) o->retry_after = svc_answers[i].retry_after;
        return API_DONE;
    }
    return api_problem_sx(o, st);
}

int api_refuse_svc(api_resp *o, srv_why why, const sx_status *st)
{
    api_problem_svc(o, why, st);
    return API_REFUSED;
}
