/* api — internal header of the HTTP layer: request context, responses, problems, routes. */
#ifndef API_H
#define API_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdint.h>

#include "sx_sha256.h"
#include "api_server.h"

enum { API_BODY_NONE = 0, API_BODY_JSON, API_BODY_UPLOAD };
enum { API_DONE = 0, API_ASYNC = 1 };

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
    /* multipart/form-data: each file part streams to spool/<rid>.d/<its file name> */
    struct MHD_PostProcessor *pp;
    char spool_dir[4300];
    int n_parts;
    char parts[3][128];       /* stored file names, in arrival order */
    char part_key[64], part_file[256];
    int part_fd;
    int64_t part_written, part_bytes;
    char form_name[201];      /* a "name" form field */
    char mp_err[256];         /* why the multipart body was refused ("" = fine) */
    int is_dir;               /* the upload is an mtx folder (spool_path is a folder) */
    /* map?wait= */
    char job_id[32];
    char ref_name[160];
    int map;
};

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
int api_h_job_file(api_req *r, api_resp *o);
int api_h_job_log(api_req *r, api_resp *o);
int api_h_ref_create(api_req *r, api_resp *o);
int api_h_ref_list(api_req *r, api_resp *o);
int api_h_ref_get(api_req *r, api_resp *o);
int api_h_ref_map(api_req *r, api_resp *o);
int api_h_static(api_req *r, api_resp *o); /* api_static.c: the web page */

/* jobs shared with map: validate a request object (type, datasets, reference, options) for
 * user u; 0 or a 4xx problem written. */
int api_job_validate(api_server *s, srv_db *db, const srv_user *u, json_t *req, api_resp *o);
/* Insert a QUEUED job (quota checked: 429) and wake the runner; id_out[32]. With view
 * non-NULL, *view is the job as inserted (QUEUED), read before the runner is woken, so the
 * answer to a submit never races the worker that starts it (NULL if that read failed). */
int api_job_submit(api_server *s, srv_db *db, const srv_user *u, const char *type, json_t *req,
                   char id_out[32], json_t **view, api_resp *o);
/* Check an upload body and queue its validation (API_ASYNC). */
int api_upload_start(api_req *r, api_resp *o);
/* map: after the upload was stored as dataset ds_id, create the job and answer or wait.
 * Pool thread; returns API_ASYNC when a waiter will finish the request. */
int api_map_after_upload(api_req *r, srv_db *db, const char *ds_id);
/* The labels of a finished job as a JSON array, or NULL + problem. */
json_t *api_job_labels_json(api_server *s, const char *job_id, api_resp *o);

#endif
