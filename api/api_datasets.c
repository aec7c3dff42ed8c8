/* /v1/datasets: streamed uploads stored by the service on a pool thread (srv_service.h:
 * validated by the readers, then moved into the data dir and recorded), list, get, delete. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "srv_log.h"
#include "sx_log.h"

static const char *upload_name(api_req *r)
{
    const char *name = api_arg(r, "name");
    if ((!name || !*name) && r->form_name[0]) name = r->form_name; /* multipart field */
    return name;
}

static void log_stored(api_req *r, const char *id, const char *format)
{
    json_t *f = json_object();
    json_object_set_new(f, "request_id", json_string(r->rid));
    json_object_set_new(f, "dataset", json_string(id));
    json_object_set_new(f, "bytes", json_integer(r->received));
    json_object_set_new(f, "format", json_string(format));
    srv_log_event(SX_LOG_INFO, "dataset stored", f);
}

static void upload_task(void *arg)
{
    api_req *r = arg;
    api_server *s = r->srv;
    api_resp *o = &r->resp;
    srv_service svc = api_service(s);
    sx_status st;
    sx_status_clear(&st);
    srv_why why;
    char sha[65], id[32], format[32];
    if (sx_sha256_final_hex(&r->sha, sha) != SX_OK) {
        api_problem(o, 503, "unavailable", "the server ran out of memory checksumming the "
                    "upload: retry in a minute");
        goto done;
    }
    srv_upload up = {.spool_path = r->spool_path, .is_dir = r->is_dir, .name = upload_name(r),
                     .sha256 = sha, .bytes = r->received};
    if (srv_service_dataset_store(&svc, &r->user, &up, id, format, &why, &st)) {
        if (why == SRV_WHY_BAD_UPLOAD) atomic_fetch_add(&s->uploads_rejected, 1);
        api_problem_svc(o, why, &st);
        goto done;
    }
    r->spool_path[0] = 0; /* moved: on_completed must not unlink it */
    atomic_fetch_add(&s->uploads, 1);
    log_stored(r, id, format);
    if (r->after_store) {
        if (r->after_store(r, id) == API_ASYNC) return; /* a job waiter finishes this request */
        goto done;
    }
    json_t *j = srv_service_dataset_get(&svc, &r->user, id, &why, &st);
    if (!j) {
        api_problem_svc(o, why, &st);
        goto done;
    }
    snprintf(o->location, sizeof o->location, "/v1/datasets/%s", id);
    api_json(o, 201, j);
done:
    api_async_done(r);
}

/* Shared by POST /v1/datasets and the map route: check the body, queue validation. */
int api_upload_start(api_req *r, api_resp *o)
{
    const char *name = upload_name(r);
    if (name && strlen(name) > 200)
        return api_problem(o, 400, "invalid-parameter", "name is longer than 200 characters");
    for (const char *p = name; p && *p; p++)
        if ((unsigned char)*p < 0x20)
            return api_problem(o, 400, "invalid-parameter", "name contains control characters");
    if (r->received == 0)
        return api_problem(o, 400, "empty-body", "the upload is empty: send the file as the raw "
                           "body (curl --data-binary @FILE -H 'Content-Type: "
                           "application/octet-stream')");
    if (srv_pool_submit(r->srv->pool, upload_task, r))
        return api_problem(o, 503, "unavailable", "the server is shutting down: retry later");
    return API_ASYNC;
}

int api_h_dataset_create(api_req *r, api_resp *o) { return api_upload_start(r, o); }

int api_h_dataset_list(api_req *r, api_resp *o)
{
    int size, more = 0;
    int64_t off;
    if (api_page(r, o, 100, 1000, &size, &off)) return API_DONE;
    srv_service svc = api_service(r->srv);
    sx_status st;
    srv_why why;
    json_t *a = srv_service_dataset_list(&svc, &r->user, off, size, &more, &why, &st);
    if (!a) return api_problem_svc(o, why, &st);
    json_t *j = json_object();
    json_object_set_new(j, "datasets", a);
    api_next_token(j, more, off, size);
    return api_json(o, 200, j);
}

int api_h_dataset_get(api_req *r, api_resp *o)
{
    srv_service svc = api_service(r->srv);
    sx_status st;
    srv_why why;
    json_t *j = srv_service_dataset_get(&svc, &r->user, r->params[0], &why, &st);
    if (!j) return api_problem_svc(o, why, &st);
    return api_json(o, 200, j);
}

/* DELETE of a dataset, a finished job, a reference: one shape, the use case differs */
typedef int (*delete_fn)(const srv_service *, const srv_user *, const char *, srv_why *,
                         sx_status *);

static int delete_with(api_req *r, api_resp *o, delete_fn fn)
{
    srv_service svc = api_service(r->srv);
    sx_status st;
    sx_status_clear(&st);
    srv_why why;
    if (fn(&svc, &r->user, r->params[0], &why, &st)) return api_problem_svc(o, why, &st);
    o->status = 204;
    return API_DONE;
}

int api_h_job_delete(api_req *r, api_resp *o) { return delete_with(r, o, srv_service_job_delete); }
int api_h_ref_delete(api_req *r, api_resp *o) { return delete_with(r, o, srv_service_ref_withdraw); }

int api_h_dataset_delete(api_req *r, api_resp *o)
{
    return delete_with(r, o, srv_service_dataset_delete);
}
