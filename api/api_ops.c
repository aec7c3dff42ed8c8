/* Operations routes: health, readiness, Prometheus metrics, the OpenAPI document, the option
 * table, and who-am-i. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "srv_auth.h"
#include "srv_refcache.h"
#include "srv_embedded.h"
#include "srv_util.h"
#include "sx_alloc.h"

int api_h_healthz(api_req *r, api_resp *o)
{
    (void)r;
    json_t *j = json_object();
    json_object_set_new(j, "status", json_string("ok"));
    return api_json(o, 200, j);
}

int api_h_readyz(api_req *r, api_resp *o)
{
    if (atomic_load(&r->srv->draining))
        return api_problem(o, 503, "unavailable", "the server is draining for shutdown");
    srv_jobs_stats js;
    srv_jobs_get_stats(r->srv->jobs, &js);
    if (js.registry_failing) {
        o->retry_after = 30;
        return api_problem(o, 503, "unavailable", "the registry cannot be written (is the disk "
                           "full?): no job starts until it can");
    }
    srv_db *db = api_db(r, o);
    if (!db) return API_DONE;
    int ver = srv_registry_version(db);
    api_db_put(r, db);
    json_t *j = json_object();
    json_object_set_new(j, "status", json_string("ready"));
    json_object_set_new(j, "schema_version", json_integer(ver));
    return api_json(o, 200, j);
}

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

__attribute__((format(printf, 2, 3))) static void bprintf(buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = (b->cap + (size_t)k + 1) * 2;
        char *np = realloc(b->p, cap);
        if (!np) return;
        b->p = np;
        b->cap = cap;
    }
}

/* the job part of /metrics: the registry's counts by state and the runner's stats */
static void metrics_jobs(buf *b, const int64_t counts[SRV_JOB_N_STATES], const srv_jobs_stats *js)
{
    bprintf(b, "# HELP scalexd_jobs Jobs in the registry by state.\n# TYPE scalexd_jobs gauge\n");
    for (int i = 0; i < SRV_JOB_N_STATES; i++)
        bprintf(b, "scalexd_jobs{state=\"%s\"} %lld\n", srv_jstate_name((srv_jstate)i),
                (long long)counts[i]);
    bprintf(b, "# HELP scalexd_queue_depth Jobs waiting for a worker.\n# TYPE scalexd_queue_depth gauge\n"
                "scalexd_queue_depth %lld\n", (long long)counts[SRV_JOB_QUEUED]);
    bprintf(b, "# HELP scalexd_jobs_running Jobs on workers now.\n# TYPE scalexd_jobs_running gauge\n"
                "scalexd_jobs_running %d\n", js->running);
    bprintf(b, "# HELP scalexd_workers Size of the worker pool.\n# TYPE scalexd_workers gauge\n"
                "scalexd_workers %d\n", js->workers);
    bprintf(b, "# HELP scalexd_registry_write_failing 1 while job claims cannot be written (a "
                "full disk): no job starts.\n# TYPE scalexd_registry_write_failing gauge\n"
                "scalexd_registry_write_failing %d\n"
                "# HELP scalexd_registry_write_failures_total Job claims that could not be written.\n"
                "# TYPE scalexd_registry_write_failures_total counter\n"
                "scalexd_registry_write_failures_total %lld\n",
            js->registry_failing, (long long)js->registry_failures);
    /* srv_jobs_stats.finished order */
    static const srv_jstate fin[4] = {SRV_JOB_COMPLETE, SRV_JOB_EXECUTOR_ERROR,
                                      SRV_JOB_SYSTEM_ERROR, SRV_JOB_CANCELED};
    bprintf(b, "# HELP scalexd_jobs_finished_total Jobs finished since start.\n"
                "# TYPE scalexd_jobs_finished_total counter\n");
    for (int i = 0; i < 4; i++)
        bprintf(b, "scalexd_jobs_finished_total{state=\"%s\"} %lld\n", srv_jstate_name(fin[i]),
                (long long)js->finished[i]);
    static const char *const le[6] = {"1", "10", "60", "300", "1800", "+Inf"};
    bprintf(b, "# HELP scalexd_job_duration_seconds Run time of completed jobs.\n"
                "# TYPE scalexd_job_duration_seconds histogram\n");
    for (int i = 0; i < 6; i++)
        bprintf(b, "scalexd_job_duration_seconds_bucket{le=\"%s\"} %lld\n", le[i],
                (long long)js->run_seconds_bucket[i]);
    bprintf(b, "scalexd_job_duration_seconds_sum %.3f\nscalexd_job_duration_seconds_count %lld\n",
            js->run_seconds_sum, (long long)js->run_seconds_count);
}

/* metrics_token set: /metrics answers only that bearer token (compared in constant time, so
 * response times do not reveal how much of a guess was right) */
static int metrics_allowed(api_req *r)
{
    const char *want = r->srv->cfg->metrics_token;
    if (!want[0]) return 1;
    const char *h = api_header(r, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return 0;
    h += 7;
    size_t n = strlen(want), m = strlen(h);
    unsigned diff = (unsigned)(n ^ m);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)want[i] ^ (unsigned char)(i < m ? h[i] : 0);
    return diff == 0;
}

int api_h_metrics(api_req *r, api_resp *o)
{
    api_server *s = r->srv;
    if (!metrics_allowed(r))
        return api_problem(o, 401, "unauthorized", "/metrics needs the operators' metrics token: "
                           "Authorization: Bearer <metrics_token>");
    srv_db *db = api_db(r, o);
    if (!db) return API_DONE;
    int64_t counts[SRV_JOB_N_STATES];
    sx_status st;
    int rc = srv_job_state_counts(db, counts, &st);
    int nref = srv_ref_count(db);
    api_db_put(r, db);
    if (rc) return api_problem_sx(o, &st);
    srv_jobs_stats js;
    srv_jobs_get_stats(s->jobs, &js);
    buf b = {0};
    metrics_jobs(&b, counts, &js);
    bprintf(&b, "# HELP scalexd_http_requests_total Responses by status class.\n"
                "# TYPE scalexd_http_requests_total counter\n");
    for (int c = 1; c <= 5; c++)
        bprintf(&b, "scalexd_http_requests_total{code=\"%dxx\"} %lld\n", c,
                (long long)atomic_load(&s->requests[c]));
    bprintf(&b, "# HELP scalexd_upload_bytes_total Bytes received in uploads.\n"
                "# TYPE scalexd_upload_bytes_total counter\nscalexd_upload_bytes_total %lld\n",
            (long long)atomic_load(&s->upload_bytes));
    bprintf(&b, "# HELP scalexd_uploads_total Uploads stored.\n# TYPE scalexd_uploads_total counter\n"
                "scalexd_uploads_total %lld\n", (long long)atomic_load(&s->uploads));
    bprintf(&b, "# HELP scalexd_uploads_rejected_total Uploads refused (size, format).\n"
                "# TYPE scalexd_uploads_rejected_total counter\nscalexd_uploads_rejected_total %lld\n",
            (long long)atomic_load(&s->uploads_rejected));
    if (s->auth) {
        srv_auth_stats as;
        srv_auth_stats_get(s->auth, &as);
        bprintf(&b, "# HELP scalexd_auth_cache_total Bearer token checks by cache result "
                    "(auth_cache_ttl).\n# TYPE scalexd_auth_cache_total counter\n"
                    "scalexd_auth_cache_total{result=\"hit\"} %lld\n"
                    "scalexd_auth_cache_total{result=\"miss\"} %lld\n", as.hits, as.misses);
    }
    bprintf(&b, "# HELP scalexd_references Registered references.\n# TYPE scalexd_references gauge\n"
                "scalexd_references %d\n", nref);
    {
        int nl = 0;
        int64_t lb = 0, budget = 0;
        srv_refcache_stats(srv_jobs_refcache(s->jobs), &nl, &lb, &budget);
        bprintf(&b, "# HELP scalexd_references_loaded References kept in memory.\n"
                    "# TYPE scalexd_references_loaded gauge\nscalexd_references_loaded %d\n"
                    "# HELP scalexd_references_loaded_bytes Memory of the loaded references.\n"
                    "# TYPE scalexd_references_loaded_bytes gauge\n"
                    "scalexd_references_loaded_bytes %lld\n"
                    "# HELP scalexd_memory_budget_bytes Budget of loaded references (--memory-budget).\n"
                    "# TYPE scalexd_memory_budget_bytes gauge\nscalexd_memory_budget_bytes %lld\n",
                nl, (long long)lb, (long long)budget);
    }
    bprintf(&b, "# HELP scalexd_resident_memory_bytes Resident set size.\n"
                "# TYPE scalexd_resident_memory_bytes gauge\nscalexd_resident_memory_bytes %lld\n",
            (long long)sx_current_rss());
    bprintf(&b, "# HELP scalexd_uptime_seconds Seconds since start.\n# TYPE scalexd_uptime_seconds gauge\n"
                "scalexd_uptime_seconds %.1f\n", srv_mono_s() - s->started);
    if (!b.p) return api_problem(o, 503, "unavailable", "out of memory");
    o->status = 200;
    o->body = b.p;
    o->len = b.n;
    o->ctype = "text/plain; version=0.0.4";
    return API_DONE;
}

int api_h_openapi(api_req *r, api_resp *o)
{
    (void)r;
    o->status = 200;
    o->body = strdup(srv_openapi_json);
    o->len = o->body ? strlen(o->body) : 0;
    o->ctype = "application/json";
    return API_DONE;
}

int api_h_options(api_req *r, api_resp *o)
{
    const srv_engine *e = r->srv->eng;
    static const char *const tn[] = {"boolean", "integer", "number", "string", "array"};
    json_t *a = json_array();
    for (int i = 0; i < e->n_specs; i++) {
        const sx_popt_spec *p = &e->specs[i];
        json_t *x = json_object();
        json_object_set_new(x, "name", json_string(p->name));
        json_object_set_new(x, "type", json_string(tn[p->type]));
        json_object_set_new(x, "default", p->def ? json_string(p->def) : json_null());
        json_object_set_new(x, "help", json_string(p->help ? p->help : ""));
        json_t *jobs = json_array();
        if (p->jobs & SX_JOB_INTEGRATE) json_array_append_new(jobs, json_string("integrate"));
        if (p->jobs & SX_JOB_PROJECT) json_array_append_new(jobs, json_string("project"));
        if (p->jobs & SX_JOB_TRANSFER) json_array_append_new(jobs, json_string("label_transfer"));
        json_object_set_new(x, "jobs", jobs);
        json_array_append_new(a, x);
    }
    json_t *j = json_object();
    json_object_set_new(j, "options", a);
    return api_json(o, 200, j);
}

int api_h_me(api_req *r, api_resp *o)
{
    json_t *j = json_object();
    json_object_set_new(j, "user", json_string(r->user.name));
    json_object_set_new(j, "admin", json_boolean(r->user.admin));
    srv_service svc = api_service(r->srv);
    int64_t used = 0, quota = 0;
    sx_status st;
    if (srv_service_storage(&svc, &r->user, &used, &quota, NULL, &st) == SX_OK) {
        json_t *s = json_object();
        json_object_set_new(s, "used_bytes", json_integer(used));
        json_object_set_new(s, "quota_bytes", quota > 0 ? json_integer(quota) : json_null());
        json_object_set_new(j, "storage", s);
    }
    return api_json(o, 200, j);
}
