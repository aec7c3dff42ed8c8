/* api — internal header of the HTTP layer: request context, responses, problems, routes. */
#ifndef API_H
#define API_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "sx_format.h"
#include "sx_sha256.h"
#include "api_server.h"
#include "srv_service.h"

enum { API_BODY_NONE = 0, API_BODY_JSON, API_BODY_UPLOAD };
/* What a handler returns (API_DONE: o is filled; API_ASYNC: a pool thread will fill it), and
 * what a request check returns when it refused: API_REFUSED with the problem in o. */
enum { API_REFUSED = -1, API_DONE = 0, API_ASYNC = 1 };

typedef struct api_resp {
    int status;
    char *body;             /* malloc'd, owned */
    size_t len;
    const char *ctype;
    int fd;                 /* >= 0: send this file (owned) */
    int64_t fd_len;
    char location[160];
    char etag[400];
    char disposition[200];
    int retry_after;        /* seconds, 0 = none */
} api_resp;

typedef struct api_req api_req;
typedef int (*api_handler)(api_req *r, api_resp *out);

typedef struct api_route {
    const char *method;
    const char *pattern;    /* "/v1/jobs/{id}/results/labels"; {x} matches one segment */
    api_handler fn;
    int body;               /* API_BODY_* */
    int auth;               /* 1 = bearer token required */
    const char *summary;
} api_route;

struct api_server {
    const srv_config *cfg;
    srv_registry *reg;
    srv_jobs *jobs;
    srv_pool *pool;
    const srv_engine *eng;
    struct MHD_Daemon *mhd;
    int port;
    atomic_int draining;
    srv_user local_user;      /* the identity of every request under --no-auth */
    struct srv_auth *auth;    /* bearer tokens -> users, cached (srv_auth.h; owned) */
    struct srv_respcache *views; /* recent GET /v1/jobs/{id} bodies (srv_respcache.h; owned) */
    struct api_edge *edge;    /* connection deadlines (api_edge.h; owned) */
    char **cors;              /* allowed origins */
    int n_cors;
    double started;
    /* metrics */
    atomic_llong requests[6]; /* by status class: 1xx..5xx, [0] unused */
    atomic_llong upload_bytes;
    atomic_llong uploads;
    atomic_llong uploads_rejected;
};

#define API_MAX_PARAMS 3

struct api_req {
    api_server *srv;
    struct MHD_Connection *conn;
    char method[16];
    char path[1024];
    const api_route *route;
    char params[API_MAX_PARAMS][160];
    char rid[40];
    double t0;
    srv_user user;
    int first_done;
    /* body */
    char *body;
    size_t body_len, body_cap;
    int spool_fd;
    char spool_path[4300];
    sx_sha256 sha;
    int64_t received;
    int too_large;
    /* async: a pool thread fills resp then resumes the connection */
    int suspended;
    int resp_ready;
    api_resp resp;
    /* multipart/form-data: each file part streams to its own file in srv_layout_spool_parts */
    struct MHD_PostProcessor *pp;
    char spool_dir[4300];
    int n_parts;
    char parts[SX_FORMAT_MAX_MEMBERS][128]; /* stored file names, in arrival order */
    char part_key[64], part_file[256];
    int part_fd;
    int64_t part_written, part_bytes;
    char form_name[201];      /* a "name" form field */
    char mp_err[256];         /* why the multipart body was refused ("" = fine) */
    int is_dir;               /* the upload is an mtx folder (spool_path is a folder) */
    /* after the upload was stored as dataset ds_id: answer (API_DONE, r->resp filled) or
     * let a waiter answer later (API_ASYNC); NULL: answer with the dataset (map sets it) */
    int (*after_store)(api_req *r, const char *ds_id);
    /* map?wait= */
    char job_id[32];
    char ref_name[160];
};

/* The use cases behind the routes (srv_service.h), bound to this server. */
static inline srv_service api_service(const api_server *s)
{
    srv_service v = {.reg = s->reg, .jobs = s->jobs, .eng = s->eng, .data_dir = s->cfg->data_dir,
                     .user_max_jobs = s->cfg->user_max_jobs, .queue_cap = s->cfg->queue_cap,
                     .draining = &s->draining,
                     .publish_everyone = !strcmp(s->cfg->publish_references, "everyone"),
                     .storage_quota = s->cfg->user_storage_quota};
    return v;
}

/* ---- responses ---- */
void api_resp_init(api_resp *o);
void api_resp_free(api_resp *o);
/* JSON body (takes ownership of j). */
int api_json(api_resp *o, int status, json_t *j);
/* RFC 9457 problem: type slug (urn:scalexd:problem:SLUG), title from the status. */
int api_problem(api_resp *o, int status, const char *slug, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Problem from an sx status code (SX_EGENES -> 422 gene-mismatch, ...). */
int api_problem_sx(api_resp *o, const sx_status *st);
/* Problem from a service refusal: the one table of (why, code) -> status, type, Retry-After
 * (api_problem.c). Returns API_DONE. */
int api_problem_svc(api_resp *o, srv_why why, const sx_status *st);
/* The same for request checks: write the problem, return API_REFUSED. */
int api_refuse(api_resp *o, int status, const char *slug, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int api_refuse_svc(api_resp *o, srv_why why, const sx_status *st);
int api_status_of(int sx_code);
const char *api_status_title(int status);

/* ---- routes ---- */
const api_route *api_routes(int *n);
/* Match method+path: the route, with params filled; NULL + *path_known = 1 when the path
 * exists for another method (405). */
const api_route *api_route_match(const char *method, const char *path,
                                 char params[API_MAX_PARAMS][160], int *path_known);

/* ---- request helpers ---- */
const char *api_arg(api_req *r, const char *name);
const char *api_header(api_req *r, const char *name);
srv_db *api_db(api_req *r, api_resp *o); /* borrow; NULL after writing a 503 problem */
void api_db_put(api_req *r, srv_db *db);
/* Parse page_size / page_token; 0 or a 400 problem written. */
int api_page(api_req *r, api_resp *o, int def, int max, int *size, int64_t *offset);
void api_next_token(json_t *o, int more, int64_t offset, int size);
/* ?NAME=count of cells (>= 0) into *v, left as is when absent; 0 with a 400 answered. */
int api_count_arg(api_req *r, api_resp *o, const char *name, int64_t *v);
/* Finish an async request: resp is filled, resume the connection. Pool thread. */
void api_async_done(api_req *r);

/* ---- handlers ---- */
int api_h_healthz(api_req *r, api_resp *o);
int api_h_readyz(api_req *r, api_resp *o);
int api_h_metrics(api_req *r, api_resp *o);
int api_h_openapi(api_req *r, api_resp *o);
int api_h_options(api_req *r, api_resp *o);
int api_h_me(api_req *r, api_resp *o);
int api_h_dataset_create(api_req *r, api_resp *o);
int api_h_dataset_list(api_req *r, api_resp *o);
int api_h_dataset_get(api_req *r, api_resp *o);
int api_h_dataset_delete(api_req *r, api_resp *o);
int api_h_job_create(api_req *r, api_resp *o);
int api_h_job_list(api_req *r, api_resp *o);
int api_h_job_get(api_req *r, api_resp *o);
int api_h_job_cancel(api_req *r, api_resp *o);
int api_h_job_results(api_req *r, api_resp *o);
int api_h_job_labels(api_req *r, api_resp *o);
int api_h_job_umap(api_req *r, api_resp *o);
int api_h_job_latent(api_req *r, api_resp *o);
int api_h_job_qc(api_req *r, api_resp *o);
int api_h_job_file(api_req *r, api_resp *o);
int api_h_job_log(api_req *r, api_resp *o);
int api_h_ref_create(api_req *r, api_resp *o);
int api_h_ref_list(api_req *r, api_resp *o);
int api_h_ref_get(api_req *r, api_resp *o);
int api_h_ref_delete(api_req *r, api_resp *o);
int api_h_ref_umap(api_req *r, api_resp *o);
int api_h_job_delete(api_req *r, api_resp *o);
int api_h_ref_map(api_req *r, api_resp *o);
int api_h_static(api_req *r, api_resp *o); /* api_static.c: the web page */

/* Check an upload body and queue its storing (API_ASYNC; r->after_store then answers). */
int api_upload_start(api_req *r, api_resp *o);
/* The labels of a finished job as a JSON array, or NULL + problem. */
json_t *api_job_labels_json(api_server *s, const char *job_id, api_resp *o);

#endif
