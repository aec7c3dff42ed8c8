/* /v1/references: the shared catalog (read by all users), registration from a finished
 * integrate job, and /map: upload + project + label transfer as one job, optionally waiting
 * for the result in the same response. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "srv_refcache.h"
#include "srv_refs.h"
#include "srv_util.h"

/* whether the reference is in memory now (srv_refcache), and its footprint */
static void add_loaded(api_server *s, json_t *ref)
{
    int64_t bytes = 0;
    const char *name = json_string_value(json_object_get(ref, "name"));
    int loaded = name && srv_refcache_is_loaded(srv_jobs_refcache(s->jobs), name, &bytes);
    json_object_set_new(ref, "loaded", json_boolean(loaded));
    json_object_set_new(ref, "memory_bytes", loaded ? json_integer(bytes) : json_null());
}

int api_h_ref_list(api_req *r, api_resp *o)
{
    srv_db *db = api_db(r, o);
    if (!db) return API_DONE;
    sx_status st;
    json_t *a = srv_ref_list(db, &st);
    api_db_put(r, db);
    if (!a) return api_problem_sx(o, &st);
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) add_loaded(r->srv, x);
    json_t *j = json_object();
    json_object_set_new(j, "references", a);
    return api_json(o, 200, j);
}

int api_h_ref_get(api_req *r, api_resp *o)
{
    srv_db *db = api_db(r, o);
    if (!db) return API_DONE;
    sx_status st;
    json_t *j = srv_ref_get(db, r->params[0], &st);
    api_db_put(r, db);
    if (!j) {
        if (st.code == SX_ENOTFOUND)
            return api_problem(o, 404, "unknown-reference", "no reference named '%s': GET "
                               "/v1/references lists them", r->params[0]);
        return api_problem_sx(o, &st);
    }
    add_loaded(r->srv, j);
    return api_json(o, 200, j);
}

/* Label columns of the job's input datasets: the obs columns a user would transfer as
 * cell labels (GET /v1/references lists them, /map?label= takes one). Kept: categorical
 * columns, other than the job's batch column (its batch_name option, "batch" by default;
 * compared ignoring case, as "Batch" next to "batch" is common), with at least 2 categories
 * (one category labels nothing) and at most half as many categories as the dataset has
 * cells (nearly one category per cell is an identifier, not a label). String columns are
 * free text or identifiers: anndata stores label-like strings as categoricals. A column
 * plausible in any one input is kept. */
static int plausible_label(json_t *c, const char *batch, int64_t n_obs)
{
    const char *kind = json_string_value(json_object_get(c, "kind"));
    const char *name = json_string_value(json_object_get(c, "name"));
    json_t *nc = json_object_get(c, "n_categories");
    if (!name || !kind || strcmp(kind, "categorical") || !json_is_integer(nc)) return 0;
    if (!strcasecmp(name, batch)) return 0;
    int64_t k = json_integer_value(nc);
    return k >= 2 && (n_obs <= 0 || 2 * k <= n_obs);
}

static char *label_columns(srv_db *db, const srv_user *u, json_t *job)
{
    json_t *cols = json_array();
    json_t *ds = json_object_get(job, "datasets");
    const char *batch = json_string_value(json_object_get(json_object_get(job, "options"),
                                                          "batch_name"));
    if (!batch || !*batch) batch = "batch";
    size_t i;
    json_t *v;
    json_array_foreach(ds, i, v) {
        sx_status st;
        json_t *d = srv_dataset_get(db, json_string_value(v), u, &st);
        json_t *oc = json_object_get(d, "obs_columns");
        int64_t n_obs = json_integer_value(json_object_get(d, "n_obs"));
        size_t k;
        json_t *c;
        json_array_foreach(oc, k, c) {
            if (!plausible_label(c, batch, n_obs)) continue;
            const char *name = json_string_value(json_object_get(c, "name"));
            int dup = 0;
            size_t m;
            json_t *x;
            json_array_foreach(cols, m, x) dup |= !strcmp(json_string_value(x), name);
            if (!dup) json_array_append_new(cols, json_string(name));
        }
        json_decref(d);
    }
    char *t = json_dumps(cols, JSON_COMPACT);
    json_decref(cols);
    return t;
}

int api_h_ref_create(api_req *r, api_resp *o)
{
    static const char *const allowed[] = {"name", "job", "description", "species", "tissue"};
    json_error_t err;
    json_t *req = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!req)
        return api_problem(o, 400, "malformed-json", "the body is not valid JSON (line %d, column "
                           "%d: %s): send {\"name\": NAME, \"job\": JOB_ID}", err.line, err.column,
                           err.text);
    srv_db *db = NULL;
    json_t *job = NULL;
    char *cols = NULL;
    if (!json_is_object(req)) {
        api_problem(o, 400, "wrong-type", "the body must be a JSON object {\"name\": NAME, \"job\": "
                    "JOB_ID}");
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(req, k, v) {
        int ok = 0;
        for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) ok |= !strcmp(k, allowed[i]);
        if (!ok) {
            api_problem(o, 400, "unknown-field", "unknown field '%s': a reference takes name, job, "
                        "description, species and tissue", k);
            goto out;
        }
        if (!json_is_string(v)) {
            api_problem(o, 400, "wrong-type", "'%s' must be a string", k);
            goto out;
        }
    }
    const char *name = json_string_value(json_object_get(req, "name"));
    const char *job_id = json_string_value(json_object_get(req, "job"));
    if (!name || !job_id) {
        api_problem(o, 400, "missing-field", "'%s' is required", name ? "job" : "name");
        goto out;
    }
    if (!srv_name_ok(name)) {
        api_problem(o, 400, "invalid-value", "reference name '%s' is not valid: use 1-64 letters, "
                    "digits, '.', '_' or '-'", name);
        goto out;
    }
    db = api_db(r, o);
    if (!db) goto out;
    sx_status st;
    sx_status_clear(&st);
    job = srv_job_get(db, job_id, &r->user, &st);
    if (!job) {
        api_problem(o, 404, "not-found", "no job '%s' here: GET /v1/jobs lists yours", job_id);
        goto out;
    }
    const char *type = json_string_value(json_object_get(job, "type"));
    const char *state = json_string_value(json_object_get(job, "state"));
    if (strcmp(type, "integrate") || strcmp(state, "COMPLETE")) {
        api_problem(o, 409, "conflict", "job '%s' is a %s job in state %s: only a COMPLETE "
                    "integrate job can become a reference", job_id, type, state);
        goto out;
    }
    char src[4200];
    snprintf(src, sizeof src, "%s/jobs/%s", r->srv->cfg->data_dir, job_id);
    cols = label_columns(db, &r->user, job);
    srv_ref_add a = {.name = name, .src_dir = src, .job_id = job_id, .owner = r->user.id,
                     .description = json_string_value(json_object_get(req, "description")),
                     .species = json_string_value(json_object_get(req, "species")),
                     .tissue = json_string_value(json_object_get(req, "tissue")),
                     .label_columns_json = cols};
    if (srv_refs_add(db, r->srv->cfg->data_dir, &a, &st)) {
        if (st.code == SX_ESTATE) api_problem(o, 409, "conflict", "%s", st.msg);
        else if (st.code == SX_ENOTFOUND) api_problem(o, 409, "conflict", "%s", st.msg);
        else api_problem_sx(o, &st);
        goto out;
    }
    json_t *j = srv_ref_get(db, name, &st);
    snprintf(o->location, sizeof o->location, "/v1/references/%s", name);
    if (j) api_json(o, 201, j);
    else api_problem_sx(o, &st);
out:
    if (db) api_db_put(r, db);
    json_decref(job);
    json_decref(req);
    free(cols);
    return API_DONE;
}

int api_h_ref_map(api_req *r, api_resp *o)
{
    const char *w = api_arg(r, "wait"), *label = api_arg(r, "label");
    if (w) {
        char *end;
        double v = strtod(w, &end);
        if (*end || end == w || v < 0 || v > r->srv->cfg->max_wait_s)
            return api_problem(o, 400, "invalid-parameter", "wait must be a number of seconds from "
                               "0 to %g, got '%s'", r->srv->cfg->max_wait_s, w);
    }
    if (label && (!*label || strlen(label) > 128))
        return api_problem(o, 400, "invalid-parameter", "label must name an obs column of the "
                           "reference (1-128 characters)");
    srv_db *db = api_db(r, o);
    if (!db) return API_DONE;
    sx_status st;
    sx_status_clear(&st);
    char *p = srv_ref_path(db, r->params[0], &st);
    api_db_put(r, db);
    if (!p) {
        if (st.code == SX_ENOTFOUND)
            return api_problem(o, 404, "unknown-reference", "no reference named '%s': GET "
                               "/v1/references lists them", r->params[0]);
        return api_problem_sx(o, &st);
    }
    free(p);
    r->map = 1;
    snprintf(r->ref_name, sizeof r->ref_name, "%s", r->params[0]);
    return api_upload_start(r, o);
}

/* The job ended or the wait ran out: answer with what there is. Pool thread. */
static void map_finish(void *arg)
{
    api_req *r = arg;
    api_resp *o = &r->resp;
    srv_db *db = api_db(r, o);
    if (!db) goto done;
    sx_status st;
    json_t *job = srv_job_get(db, r->job_id, &r->user, &st);
    api_db_put(r, db);
    if (!job) {
        api_problem_sx(o, &st);
        goto done;
    }
    const char *state = json_string_value(json_object_get(job, "state"));
    if (!strcmp(state, "COMPLETE")) {
        json_t *labels = api_job_labels_json(r->srv, r->job_id, o);
        if (!labels) {
            json_decref(job);
            goto done;
        }
        json_t *j = json_object();
        json_object_set_new(j, "job", job);
        json_object_set_new(j, "labels", labels);
        snprintf(o->location, sizeof o->location, "/v1/jobs/%s", r->job_id);
        api_json(o, 200, j);
    } else if (!strcmp(state, "EXECUTOR_ERROR") || !strcmp(state, "SYSTEM_ERROR") ||
               !strcmp(state, "CANCELED")) {
        json_t *e = json_object_get(job, "error");
        const char *et = json_string_value(json_object_get(e, "type"));
        const char *ed = json_string_value(json_object_get(e, "detail"));
        int status = !strcmp(state, "CANCELED") ? 409 : !strcmp(state, "SYSTEM_ERROR") ? 500 : 422;
        if (et && !strcmp(et, "invalid-options")) status = 400;
        api_problem(o, status, et ? et : "job-failed", "the mapping job %s ended %s: %s", r->job_id,
                    state, ed ? ed : "canceled");
        /* the problem carries the job, so a client can still inspect it */
        json_t *pj = json_loads(o->body, 0, NULL);
        if (pj) {
            json_object_set_new(pj, "job", job);
            job = NULL;
            free(o->body);
            o->body = json_dumps(pj, JSON_COMPACT);
            o->len = o->body ? strlen(o->body) : 0;
            json_decref(pj);
        }
        json_decref(job);
    } else {
        snprintf(o->location, sizeof o->location, "/v1/jobs/%s", r->job_id);
        json_t *j = json_object();
        json_object_set_new(j, "job", job);
        api_json(o, 202, j);
    }
done:
    api_async_done(r);
}

static void map_waited(void *user, const char *id, const char *state)
{
    api_req *r = user;
    (void)id;
    (void)state;
    if (srv_pool_submit(r->srv->pool, map_finish, r)) map_finish(r);
}

int api_map_after_upload(api_req *r, srv_db *db, const char *ds_id)
{
    api_server *s = r->srv;
    api_resp *o = &r->resp;
    json_t *req = json_object();
    json_object_set_new(req, "type", json_string("project"));
    json_t *ds = json_array();
    json_array_append_new(ds, json_string(ds_id));
    json_object_set_new(req, "datasets", ds);
    json_object_set_new(req, "reference", json_string(r->ref_name));
    json_t *opts = json_object();
    const char *label = api_arg(r, "label");
    if (label && s->eng->label_option) json_object_set_new(opts, s->eng->label_option, json_string(label));
    json_object_set_new(req, "options", opts);
    char id[32];
    int rc = API_DONE;
    if (api_job_validate(s, db, &r->user, req, o) ||
        api_job_submit(s, db, &r->user, "project", req, id, NULL, o))
        goto out;
    snprintf(r->job_id, sizeof r->job_id, "%s", id);
    const char *w = api_arg(r, "wait");
    double wait = w ? strtod(w, NULL) : 0;
    if (wait > 0 && srv_jobs_wait(s->jobs, id, wait, map_waited, r) == SX_OK) {
        rc = API_ASYNC;
        goto out;
    }
    sx_status st;
    json_t *job = srv_job_get(db, id, &r->user, &st);
    if (!job) {
        api_problem_sx(o, &st);
        goto out;
    }
    json_t *j = json_object();
    json_object_set_new(j, "job", job);
    snprintf(o->location, sizeof o->location, "/v1/jobs/%s", id);
    api_json(o, 202, j);
out:
    json_decref(req);
    return rc;
}
