/* /v1/datasets: streamed uploads validated by the readers on a pool thread, list, get,
 * delete. The upload was hashed while it streamed to DATA_DIR/spool; once the readers
 * accept it, it is renamed to DATA_DIR/datasets/<id>.<ext> and its row inserted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "srv_log.h"
#include "srv_util.h"
#include "sx_log.h"

/* Readers name the file in their messages; the client knows no spool path: say "the upload". */
static void scrub_path(char *msg, const char *path)
{
    size_t n = strlen(path);
    char *p;
    while (n && (p = strstr(msg, path))) {
        const char *rest = p + n;
        while (*rest && *rest != ':' && *rest != ' ' && *rest != ',') rest++; /* .h5ad suffix */
        static const char word[] = "the upload";
        memmove(p + sizeof word - 1, rest, strlen(rest) + 1);
        memcpy(p, word, sizeof word - 1);
    }
}

static void upload_task(void *arg)
{
    api_req *r = arg;
    api_server *s = r->srv;
    api_resp *o = &r->resp;
    srv_dataset_info info;
    memset(&info, 0, sizeof info);
    sx_status st;
    sx_status_clear(&st);
    char sha[65], id[32], rel[128], abs[4300];
    srv_db *db = NULL;
    sx_sha256_final_hex(&r->sha, sha);
    int rc = s->eng->validate(s->eng->user, r->spool_path, &info, &st);
    if (rc) {
        scrub_path(st.msg, r->spool_path);
        atomic_fetch_add(&s->uploads_rejected, 1);
        /* EIO here means the reader could not make sense of bytes we just wrote: the content */
        if (rc == SX_ENOMEM || rc == SX_EINTERNAL) api_problem_sx(o, &st);
        else if (rc == SX_ELIMIT) api_problem(o, 413, "too-large", "%s", st.msg);
        else
            api_problem(o, 422, rc == SX_EUNSUPPORTED ? "unsupported" : "bad-format",
                        "the upload (%lld bytes, sha256 %s) is not a dataset this server can read: "
                        "%s. Send an h5ad, 10x .h5, MatrixMarket .mtx or .csv/.txt matrix "
                        "(optionally gzip) as the raw body, complete and unmodified",
                        (long long)r->received, sha, st.msg);
        goto done;
    }
    if (srv_random_id("ds_", id, sizeof id, &st)) {
        api_problem_sx(o, &st);
        goto done;
    }
    if (r->is_dir) snprintf(rel, sizeof rel, "datasets/%s", id); /* an mtx folder */
    else snprintf(rel, sizeof rel, "datasets/%s.%s", id, info.ext[0] ? info.ext : "bin");
    snprintf(abs, sizeof abs, "%s/datasets", s->cfg->data_dir);
    if (srv_mkdirs(abs, &st)) {
        api_problem_sx(o, &st);
        goto done;
    }
    snprintf(abs, sizeof abs, "%s/%s", s->cfg->data_dir, rel);
    if (rename(r->spool_path, abs) != 0) {
        api_problem(o, 503, "unavailable", "cannot store the upload: retry later");
        goto done;
    }
    r->spool_path[0] = 0; /* kept: on_completed must not unlink it */
    const char *name = api_arg(r, "name");
    if ((!name || !*name) && r->form_name[0]) name = r->form_name; /* multipart field */
    char defname[64];
    if (!name || !*name) {
        snprintf(defname, sizeof defname, "upload-%s", id + 3);
        name = defname;
    }
    srv_dataset_rec rec = {.owner = r->user.id, .name = name, .format = info.format, .path = rel,
                           .sha256 = sha, .size_bytes = r->received, .n_obs = info.n_obs,
                           .n_vars = info.n_vars, .obs_columns = info.obs_columns};
    snprintf(rec.id, sizeof rec.id, "%s", id);
    db = api_db(r, o);
    if (!db) {
        srv_rmtree(abs);
        goto done;
    }
    if (srv_dataset_insert(db, &rec, &st)) {
        srv_rmtree(abs);
        api_problem_sx(o, &st);
        goto done;
    }
    atomic_fetch_add(&s->uploads, 1);
    json_t *f = json_object();
    json_object_set_new(f, "request_id", json_string(r->rid));
    json_object_set_new(f, "dataset", json_string(id));
    json_object_set_new(f, "bytes", json_integer(r->received));
    json_object_set_new(f, "format", json_string(info.format));
    srv_log_event(SX_LOG_INFO, "dataset stored", f);
    if (r->map) {
        if (api_map_after_upload(r, db, id) == API_ASYNC) {
            api_db_put(r, db);
            free(info.obs_columns);
            return; /* a job waiter finishes this request */
        }
        goto done;
    }
    json_t *j = srv_dataset_get(db, id, &r->user, &st);
    if (!j) {
        api_problem_sx(o, &st);
        goto done;
    }
    snprintf(o->location, sizeof o->location, "/v1/datasets/%s", id);
    api_json(o, 201, j);
done:
    if (db) api_db_put(r, db);
    free(info.obs_columns);
    api_async_done(r);
}

/* Shared by POST /v1/datasets and the map route: check the body, queue validation. */
int api_upload_start(api_req *r, api_resp *o)
{
    const char *name = api_arg(r, "name");
    if ((!name || !*name) && r->form_name[0]) name = r->form_name;
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
    srv_db *db = api_db(r, o);
    if (!db) return API_DONE;
    sx_status st;
    json_t *a = srv_dataset_list(db, &r->user, off, size, &more, &st);
    api_db_put(r, db);
    if (!a) return api_problem_sx(o, &st);
    json_t *j = json_object();
    json_object_set_new(j, "datasets", a);
    api_next_token(j, more, off, size);
    return api_json(o, 200, j);
}

int api_h_dataset_get(api_req *r, api_resp *o)
{
    srv_db *db = api_db(r, o);
    if (!db) return API_DONE;
    sx_status st;
    json_t *j = srv_dataset_get(db, r->params[0], &r->user, &st);
    api_db_put(r, db);
    if (!j) {
        if (st.code == SX_ENOTFOUND)
            return api_problem(o, 404, "not-found", "no dataset '%s' here: GET /v1/datasets lists "
                               "yours", r->params[0]);
        return api_problem_sx(o, &st);
    }
    return api_json(o, 200, j);
}

int api_h_dataset_delete(api_req *r, api_resp *o)
{
    srv_db *db = api_db(r, o);
    if (!db) return API_DONE;
    sx_status st;
    sx_status_clear(&st);
    char *rel = NULL;
    int rc = srv_dataset_delete(db, r->params[0], &r->user, &rel, &st);
    api_db_put(r, db);
    if (rc == SX_ENOTFOUND)
        return api_problem(o, 404, "not-found", "no dataset '%s' here: GET /v1/datasets lists "
                           "yours", r->params[0]);
    if (rc) return api_problem_sx(o, &st);
    char abs[4300];
    snprintf(abs, sizeof abs, "%s/%s", r->srv->cfg->data_dir, rel);
    srv_rmtree(abs); /* a file, or an mtx folder */
    free(rel);
    o->status = 204;
    return API_DONE;
}
