/* /v1/jobs: submit (validated against the pipeline's option table), list, get, cancel,
 * and results (labels JSON/CSV, UMAP JSON paged, files with ETag). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "srv_util.h"

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static unsigned job_bit(const char *type)
{
    if (!strcmp(type, "integrate")) return SX_JOB_INTEGRATE;
    if (!strcmp(type, "project")) return SX_JOB_PROJECT;
    if (!strcmp(type, "label_transfer")) return SX_JOB_TRANSFER;
    return 0;
}

static int check_options(const srv_engine *e, const char *type, json_t *opts, api_resp *o)
{
    if (!opts) return 0;
    if (!json_is_object(opts))
        return api_problem(o, 400, "wrong-type", "'options' must be an object of SCALEX option "
                           "names to values, not %s", json_type_name(opts)), -1;
    unsigned bit = job_bit(type);
    const char *k;
    json_t *v;
    json_object_foreach(opts, k, v) {
        const sx_popt_spec *p = NULL;
        for (int i = 0; i < e->n_specs && !p; i++)
            if (!strcmp(e->specs[i].name, k)) p = &e->specs[i];
        if (!strcmp(k, "data_list") || !strcmp(k, "threads"))
            return api_problem(o, 400, "unknown-field", "option 'options.%s' is set by the server "
                               "(inputs come from 'datasets'; threads from --threads-per-job): "
                               "remove it", k), -1;
        if (!p)
            return api_problem(o, 400, "unknown-field", "unknown option 'options.%s': GET "
                               "/v1/options lists the options with their types", k), -1;
        if (!(p->jobs & bit))
            return api_problem(o, 400, "unknown-field", "option 'options.%s' does not apply to %s "
                               "jobs: GET /v1/options says which jobs take it", k, type), -1;
        int ok;
        const char *want;
        switch (p->type) {
        case SX_POPT_BOOL: ok = json_is_boolean(v); want = "a boolean"; break;
        case SX_POPT_INT: ok = json_is_integer(v); want = "an integer"; break;
        case SX_POPT_FLOAT: ok = json_is_number(v); want = "a number"; break;
        case SX_POPT_STRING: ok = json_is_string(v); want = "a string"; break;
        default: {
            ok = json_is_array(v) || json_is_string(v);
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) if (!json_is_string(x) && !json_is_number(x)) ok = 0;
            want = "an array of strings";
        }
        }
        if (!ok)
            return api_problem(o, 400, "wrong-type", "option 'options.%s' must be %s, not %s", k,
                               want, json_type_name(v)), -1;
    }
    sx_status st;
    sx_status_clear(&st);
    if (e->check_options && e->check_options(e->user, opts, &st))
        return api_problem(o, 400, "invalid-value", "options: %s", st.msg), -1;
    return 0;
}

int api_job_validate(api_server *s, srv_db *db, const srv_user *u, json_t *req, api_resp *o)
{
    static const char *const allowed[] = {"type", "datasets", "reference", "options", "name"};
    if (!json_is_object(req))
        return api_problem(o, 400, "wrong-type", "the body must be a JSON object like {\"type\": "
                           "\"integrate\", \"datasets\": [ID], \"options\": {}}, not %s",
                           json_type_name(req)), -1;
    const char *k;
    json_t *v;
    json_object_foreach(req, k, v) {
        int ok = 0;
        for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) ok |= !strcmp(k, allowed[i]);
        if (!ok)
            return api_problem(o, 400, "unknown-field", "unknown field '%s': a job takes type, "
                               "datasets, reference, options and name", k), -1;
    }
    json_t *type = json_object_get(req, "type");
    if (!type)
        return api_problem(o, 400, "missing-field", "'type' is required: integrate, project or "
                           "label_transfer"), -1;
    if (!json_is_string(type))
        return api_problem(o, 400, "wrong-type", "'type' must be a string, not %s",
                           json_type_name(type)), -1;
    const char *t = json_string_value(type);
    if (!job_bit(t))
        return api_problem(o, 400, "invalid-value", "'type' is '%s'; use integrate, project or "
                           "label_transfer", t), -1;
    json_t *name = json_object_get(req, "name");
    if (name && !json_is_string(name))
        return api_problem(o, 400, "wrong-type", "'name' must be a string, not %s",
                           json_type_name(name)), -1;
    json_t *ds = json_object_get(req, "datasets");
    if (!ds)
        return api_problem(o, 400, "missing-field", "'datasets' is required: a list of dataset "
                           "ids from POST /v1/datasets"), -1;
    if (!json_is_array(ds))
        return api_problem(o, 400, "wrong-type", "'datasets' must be an array of dataset ids, not "
                           "%s", json_type_name(ds)), -1;
    if (json_array_size(ds) == 0 || json_array_size(ds) > 256)
        return api_problem(o, 400, "invalid-value", "'datasets' must list 1 to 256 dataset ids"), -1;
    size_t i;
    json_array_foreach(ds, i, v) {
        if (!json_is_string(v))
            return api_problem(o, 400, "wrong-type", "'datasets[%zu]' must be a dataset id string, "
                               "not %s", i, json_type_name(v)), -1;
        sx_status st;
        sx_status_clear(&st);
        char *p = srv_dataset_path(db, json_string_value(v), u, &st);
        if (!p) {
            if (st.code == SX_ENOTFOUND)
                return api_problem(o, 404, "not-found", "no dataset '%s' here: upload it with POST "
                                   "/v1/datasets, GET /v1/datasets lists yours",
                                   json_string_value(v)), -1;
            return api_problem_sx(o, &st), -1;
        }
        free(p);
    }
    json_t *ref = json_object_get(req, "reference");
    if (ref && !json_is_string(ref))
        return api_problem(o, 400, "wrong-type", "'reference' must be a reference name, not %s",
                           json_type_name(ref)), -1;
    if (!strcmp(t, "integrate") && ref)
        return api_problem(o, 400, "invalid-value", "integrate jobs take no 'reference': use a "
                           "project or label_transfer job to map onto one"), -1;
    if (strcmp(t, "integrate")) {
        if (!ref)
            return api_problem(o, 400, "missing-field", "%s jobs need 'reference': GET "
                               "/v1/references lists them", t), -1;
        sx_status st;
        sx_status_clear(&st);
        char *p = srv_ref_path(db, json_string_value(ref), &st);
        if (!p) {
            if (st.code == SX_ENOTFOUND)
                return api_problem(o, 404, "unknown-reference", "no reference named '%s': GET "
                                   "/v1/references lists them", json_string_value(ref)), -1;
            return api_problem_sx(o, &st), -1;
        }
        free(p);
    }
    return check_options(s->eng, t, json_object_get(req, "options"), o);
}

int api_job_submit(api_server *s, srv_db *db, const srv_user *u, const char *type, json_t *req,
                   char id_out[32], json_t **view, api_resp *o)
{
    sx_status st;
    sx_status_clear(&st);
    if (atomic_load(&s->draining)) {
        o->retry_after = 30;
        return api_problem(o, 503, "unavailable", "the server is shutting down: retry in a minute"), -1;
    }
    if (srv_random_id("job_", id_out, 32, &st)) return api_problem_sx(o, &st), -1;
    char *text = json_dumps(req, JSON_COMPACT);
    if (!text) return api_problem(o, 503, "unavailable", "out of memory"), -1;
    int rc = -1;
    /* the quota check and the insert are one transaction, so concurrent submits cannot
     * overshoot the limits */
    if (srv_db_begin(db, NULL)) {
        api_problem(o, 503, "unavailable", "the registry is busy: retry");
        o->retry_after = 1;
        goto out;
    }
    int active = 0, queued = 0;
    if (srv_job_counts(db, u->id, &active, &queued, &st)) {
        api_problem_sx(o, &st);
        goto rollback;
    }
    if (active >= s->cfg->user_max_jobs) {
        o->retry_after = 30;
        api_problem(o, 429, "quota", "you have %d unfinished jobs, the limit per user is %d: wait "
                    "for one to finish (or cancel one) and retry", active, s->cfg->user_max_jobs);
        goto rollback;
    }
    if (queued >= s->cfg->queue_cap) {
        o->retry_after = 60;
        api_problem(o, 429, "queue-full", "the queue holds %d jobs, its limit: retry later", queued);
        goto rollback;
    }
    if (srv_job_insert(db, id_out, u->id, type, text, &st)) {
        api_problem_sx(o, &st);
        goto rollback;
    }
    if (srv_db_commit(db, NULL)) {
        api_problem(o, 503, "unavailable", "the registry could not commit: retry");
        goto rollback;
    }
    if (view) *view = srv_job_get(db, id_out, u, NULL);
    srv_jobs_notify(s->jobs); /* after the row is durable */
    rc = 0;
    goto out;
rollback:
    srv_db_rollback(db);
out:
    free(text);
    return rc;
}

static int job_not_found(api_resp *o, const char *id)
{
    return api_problem(o, 404, "not-found", "no job '%s' here: GET /v1/jobs lists yours", id);
}

int api_h_job_create(api_req *r, api_resp *o)
{
    json_error_t err;
    json_t *req = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!req)
        return api_problem(o, 400, "malformed-json", "the body is not valid JSON (line %d, column "
                           "%d: %s): send {\"type\": \"integrate\", \"datasets\": [ID]}", err.line,
                           err.column, err.text);
    srv_db *db = api_db(r, o);
    if (!db) {
        json_decref(req);
        return API_DONE;
    }
    char id[32];
    json_t *j = NULL;
    if (!api_job_validate(r->srv, db, &r->user, req, o) &&
        !api_job_submit(r->srv, db, &r->user, json_string_value(json_object_get(req, "type")), req,
                        id, &j, o)) {
        snprintf(r->job_id, sizeof r->job_id, "%s", id);
        snprintf(o->location, sizeof o->location, "/v1/jobs/%s", id);
        if (j) api_json(o, 202, j);
        else api_problem(o, 500, "internal", "job %s was queued but could not be read back: "
                         "GET %s shows it", id, o->location);
    }
    api_db_put(r, db);
    json_decref(req);
    return API_DONE;
}

int api_h_job_list(api_req *r, api_resp *o)
{
    const char *state = api_arg(r, "state");
    if (state && !srv_job_state_ok(state))
        return api_problem(o, 400, "invalid-parameter", "state '%s' is not a job state: use QUEUED, "
                           "INITIALIZING, RUNNING, COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR, "
                           "CANCELING or CANCELED", state);
    int size, more = 0;
    int64_t off;
    if (api_page(r, o, 50, 1000, &size, &off)) return API_DONE;
    srv_db *db = api_db(r, o);
    if (!db) return API_DONE;
    sx_status st;
    json_t *a = srv_job_list(db, &r->user, state, off, size, &more, &st);
    api_db_put(r, db);
    if (!a) return api_problem_sx(o, &st);
    json_t *j = json_object();
    json_object_set_new(j, "jobs", a);
    api_next_token(j, more, off, size);
    return api_json(o, 200, j);
}

int api_h_job_get(api_req *r, api_resp *o)
{
    srv_db *db = api_db(r, o);
    if (!db) return API_DONE;
    sx_status st;
    json_t *j = srv_job_get(db, r->params[0], &r->user, &st);
    api_db_put(r, db);
    if (!j) return st.code == SX_ENOTFOUND ? job_not_found(o, r->params[0]) : api_problem_sx(o, &st);
    return api_json(o, 200, j);
}

int api_h_job_cancel(api_req *r, api_resp *o)
{
    srv_db *db = api_db(r, o);
    if (!db) return API_DONE;
    sx_status st;
    sx_status_clear(&st);
    char state[16];
    const char *id = r->params[0];
    if (srv_job_state(db, id, &r->user, state, NULL, &st)) {
        api_db_put(r, db);
        return st.code == SX_ENOTFOUND ? job_not_found(o, id) : api_problem_sx(o, &st);
    }
    /* QUEUED -> CANCELED at once (conditional: the runner may claim it concurrently);
     * running -> CANCELING, then the worker sees the flag and the runner writes CANCELED */
    if (srv_job_transition(db, id, "QUEUED", "CANCELED", &st) == 0 &&
        (srv_job_transition(db, id, "INITIALIZING", "CANCELING", &st) == 1 ||
         srv_job_transition(db, id, "RUNNING", "CANCELING", &st) == 1))
        srv_jobs_cancel(r->srv->jobs, id);
    else if (!strcmp(state, "CANCELING"))
        srv_jobs_cancel(r->srv->jobs, id);
    json_t *j = srv_job_get(db, id, &r->user, &st);
    api_db_put(r, db);
    if (!j) return api_problem_sx(o, &st);
    const char *now = json_string_value(json_object_get(j, "state"));
    if (now && (!strcmp(now, "COMPLETE") || !strcmp(now, "EXECUTOR_ERROR") ||
                !strcmp(now, "SYSTEM_ERROR"))) {
        /* `now` points into j: answer first, then let go of j */
        int rc = api_problem(o, 409, "conflict", "job '%s' already finished (%s): nothing to cancel",
                             id, now);
        json_decref(j);
        return rc;
    }
    return api_json(o, 202, j);
}

/* ---- results ---- */

/* The job's folder when it is visible and COMPLETE (log: any state); else a problem. */
#include "srv_service_results.h" /* the results half of this file (below) */

static int job_dir(api_req *r, api_resp *o, int need_complete, char dir[4200], char type[32])
{
    srv_db *db = api_db(r, o);
    if (!db) return -1;
    sx_status st;
    sx_status_clear(&st);
    char state[16];
    int rc = srv_job_state(db, r->params[0], &r->user, state, type, &st);
    api_db_put(r, db);
    if (rc) return (st.code == SX_ENOTFOUND ? job_not_found(o, r->params[0]) : api_problem_sx(o, &st)), -1;
    snprintf(r->job_id, sizeof r->job_id, "%.31s", r->params[0]);
    if (need_complete && strcmp(state, "COMPLETE")) {
        if (!strcmp(state, "QUEUED") || !strcmp(state, "INITIALIZING") || !strcmp(state, "RUNNING"))
            o->retry_after = 5;
        return api_problem(o, 409, "not-ready", "job '%s' is %s: results exist once it is COMPLETE "
                           "(poll GET /v1/jobs/%s)", r->params[0], state, r->params[0]), -1;
    }
    snprintf(dir, 4200, "%s/jobs/%s", r->srv->cfg->data_dir, r->params[0]);
    return 0;
}

/* Serve a file; ETag for immutable results; If-None-Match -> 304. */
static int send_file(api_req *r, api_resp *o, const char *path, const char *ctype, const char *name,
                     int immutable)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0) close(fd);
        return api_problem(o, 404, "not-found", "job '%s' has no %s: GET /v1/jobs/%s/results lists "
                           "what it produced", r->params[0], name, r->params[0]);
    }
    if (immutable) {
        snprintf(o->etag, sizeof o->etag, "\"%s-%s-%lld-%lld\"", r->params[0], name,
                 (long long)sb.st_size, (long long)sb.st_mtime);
        const char *inm = api_header(r, "If-None-Match");
        if (inm && strstr(inm, o->etag)) {
            close(fd);
            o->status = 304;
            return API_DONE;
        }
    }
    o->fd = fd;
    o->fd_len = sb.st_size;
    o->status = 200;
    o->ctype = ctype;
    if (name && strchr(name, '.'))
        snprintf(o->disposition, sizeof o->disposition, "attachment; filename=\"%s_%s\"",
                 r->params[0], name);
    return API_DONE;
}

/* A download made from a result table (labels.csv, latent.csv, umap.tsv): its path, made
 * on first use; 0 when there is none (404 answered). */
static int table_download(api_req *r, api_resp *o, const char *dir, int table, char *path,
                          size_t cap)
{
    sx_status st;
    sx_status_clear(&st);
    int rc = srv_results_download(dir, (sx_jobdir_table_id)table, path, cap, &st);
    if (rc == SX_OK) return 1;
    if (rc == SX_ENOTFOUND)
        api_problem(o, 404, "not-found", "job '%s' has no %s: GET /v1/jobs/%s/results lists "
                    "what it produced", r->params[0], sx_jobdir_table_download(table), r->params[0]);
    else
        api_problem_sx(o, &st);
    return 0;
}

int api_h_job_results(api_req *r, api_resp *o)
{
    char dir[4200], type[32], path[4400];
    if (job_dir(r, o, 1, dir, type)) return API_DONE;
    int nf;
    const sx_jobdir_file *rf = sx_jobdir_files(&nf);
    json_t *files = json_array();
    for (int i = 0; i < nf; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, rf[i].name);
        sx_status st;
        if (rf[i].table >= 0 &&
            srv_results_download(dir, (sx_jobdir_table_id)rf[i].table, path, sizeof path, &st))
            continue;
        struct stat sb;
        if (stat(path, &sb) != 0) continue;
        json_t *f = json_object();
        char href[200];
        snprintf(href, sizeof href, "/v1/jobs/%s/results/%s", r->params[0], rf[i].name);
        json_object_set_new(f, "name", json_string(rf[i].name));
        json_object_set_new(f, "size_bytes", json_integer(sb.st_size));
        json_object_set_new(f, "href", json_string(href));
        json_array_append_new(files, f);
    }
    json_t *j = json_object();
    json_object_set_new(j, "files", files);
    snprintf(path, sizeof path, "%s/%s", dir, SX_JOBDIR_RESULT);
    json_t *summary = json_load_file(path, 0, NULL);
    json_object_set_new(j, "summary", summary ? summary : json_null());
    return api_json(o, 200, j);
}

int api_h_job_file(api_req *r, api_resp *o)
{
    const char *name = r->params[1];
    int nf;
    const sx_jobdir_file *rf = sx_jobdir_files(&nf);
    for (int i = 0; i < nf; i++) {
        if (strcmp(name, rf[i].name)) continue;
        char dir[4200], type[32], path[4400];
        if (job_dir(r, o, 1, dir, type)) return API_DONE;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (rf[i].table >= 0 && !table_download(r, o, dir, rf[i].table, path, sizeof path))
            return API_DONE;
        return send_file(r, o, path, rf[i].media_type, name, 1);
    }
    return api_problem(o, 404, "not-found", "no result named '%s': GET /v1/jobs/%s/results lists "
                       "them", name, r->params[0]);
}

int api_h_job_log(api_req *r, api_resp *o)
{
    char dir[4200], type[32], path[4400];
    if (job_dir(r, o, 0, dir, type)) return API_DONE;
    snprintf(path, sizeof path, "%s/%s", dir, SX_JOBDIR_LOG);
    if (!srv_file_exists(path)) {
        o->status = 200;
        o->ctype = "text/plain; charset=utf-8";
        o->body = strdup("");
        return API_DONE;
    }
    return send_file(r, o, path, "text/plain; charset=utf-8", "log", 0);
}

/* Open a job's result table; 0 with the problem answered when it cannot. */
static srv_results *open_table(api_resp *o, const char *dir, sx_jobdir_table_id which,
                               const char *job_id, const char *missing)
{
    srv_results *t = NULL;
    sx_status st;
    sx_status_clear(&st);
    int rc = srv_results_open(dir, which, &t, &st);
    if (rc == SX_ENOTFOUND) api_problem(o, 404, which == SX_JOBDIR_LABELS ? "no-labels" : "not-found",
                                        "job '%s' %s", job_id, missing);
    else if (rc) api_problem_sx(o, &st);
    return t;
}

/* A page of a table (answered as a problem when it cannot be read). */
static int read_page(api_resp *o, srv_results *t, int64_t off, int size, const char *fcol,
                     const char *fval, srv_results_page *p)
{
    sx_status st;
    sx_status_clear(&st);
    if (srv_results_page_read(t, off, size, fcol, fval, p, &st) == SX_OK) return 1;
    api_problem_sx(o, &st);
    return 0;
}

static json_t *text_or_null(const char *s) { return *s ? json_string(s) : json_null(); }

json_t *api_job_labels_json(api_server *s, const char *job_id, api_resp *o)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/jobs/%s", s->cfg->data_dir, job_id);
    srv_results *t = open_table(o, dir, SX_JOBDIR_LABELS, job_id,
                                "wrote no labels: run a project or label_transfer job with a "
                                "label column (?label=COLUMN on /map, or the label option)");
    if (!t) return NULL;
    srv_results_page p;
    int64_t n = srv_results_rows(t);
    int ok = n <= INT32_MAX && read_page(o, t, 0, (int)n, NULL, NULL, &p);
    srv_results_close(t);
    if (!ok) return NULL;
    json_t *a = json_array();
    /* columns: cell, label, confidence (sx_jobdir's labels table) */
    for (int64_t i = 0; p.n_cols >= 3 && i < p.n_rows; i++) {
        json_t *x = json_object();
        json_object_set_new(x, "cell", json_string(p.cols[0].str[i]));
        json_object_set_new(x, "label", json_string(p.cols[1].str[i]));
        json_object_set_new(x, "confidence", json_real(p.cols[2].num[i]));
        json_array_append_new(a, x);
    }
    srv_results_page_free(&p);
    return a;
}

/* ETag of a table's JSON form; 1 when If-None-Match matched (304 answered). */
static int table_etag(api_req *r, api_resp *o, const char *dir, sx_jobdir_table_id which,
                      const char *what)
{
    srv_results *t = NULL;
    sx_status st;
    if (srv_results_open(dir, which, &t, &st)) return 0;
    int64_t size, mtime;
    srv_results_stamp(t, &size, &mtime);
    srv_results_close(t);
    snprintf(o->etag, sizeof o->etag, "\"%s-%s-%lld-%lld\"", r->params[0], what,
             (long long)size, (long long)mtime);
    const char *inm = api_header(r, "If-None-Match");
    if (!inm || !strstr(inm, o->etag)) return 0;
    o->status = 304;
    return 1;
}

int api_h_job_labels(api_req *r, api_resp *o)
{
    char dir[4200], type[32], path[4400];
    if (job_dir(r, o, 1, dir, type)) return API_DONE;
    const char *accept = api_header(r, "Accept");
    const char *fmt = api_arg(r, "format");
    if ((accept && strstr(accept, "text/csv")) || (fmt && !strcmp(fmt, "csv"))) {
        if (!table_download(r, o, dir, SX_JOBDIR_LABELS, path, sizeof path)) return API_DONE;
        return send_file(r, o, path, "text/csv", sx_jobdir_table_download(SX_JOBDIR_LABELS), 1);
    }
    json_t *a = api_job_labels_json(r->srv, r->params[0], o);
    if (!a) return API_DONE;
    if (table_etag(r, o, dir, SX_JOBDIR_LABELS, "labels")) {
        json_decref(a);
        return API_DONE;
    }
    json_t *j = json_object();
    json_object_set_new(j, "job", json_string(r->params[0]));
    json_object_set_new(j, "labels", a);
    char etag[400];
    memcpy(etag, o->etag, sizeof etag);
    api_json(o, 200, j);
    memcpy(o->etag, etag, sizeof etag);
    return API_DONE;
}

/* the umap table: cell, x, y, batch, label, set */
int api_h_job_umap(api_req *r, api_resp *o)
{
    char dir[4200], type[32];
    if (job_dir(r, o, 1, dir, type)) return API_DONE;
    int size;
    int64_t off;
    if (api_page(r, o, 10000, 200000, &size, &off)) return API_DONE;
    const char *want = api_arg(r, "set"); /* query | reference | all (default) */
    if (want && strcmp(want, "query") && strcmp(want, "reference") && strcmp(want, "all"))
        return api_problem(o, 400, "invalid-parameter", "set must be query, reference or all");
    if (want && !strcmp(want, "all")) want = NULL;
    srv_results *t = open_table(o, dir, SX_JOBDIR_UMAP, r->params[0],
                                "has no UMAP coordinates (it computed none, or the result table "
                                "could not be written: see its log)");
    if (!t) return API_DONE;
    srv_results_page p;
    int ok = read_page(o, t, off, size, want ? "set" : NULL, want, &p);
    srv_results_close(t);
    if (!ok) return API_DONE;
    json_t *cells = json_array();
    for (int64_t i = 0; p.n_cols >= 6 && i < p.n_rows; i++) {
        json_t *x = json_object();
        json_object_set_new(x, "cell", json_string(p.cols[0].str[i]));
        json_object_set_new(x, "x", json_real(p.cols[1].num[i]));
        json_object_set_new(x, "y", json_real(p.cols[2].num[i]));
        json_object_set_new(x, "batch", text_or_null(p.cols[3].str[i]));
        json_object_set_new(x, "label", text_or_null(p.cols[4].str[i]));
        json_object_set_new(x, "set", json_string(*p.cols[5].str[i] ? p.cols[5].str[i] : "query"));
        json_array_append_new(cells, x);
    }
    json_t *j = json_object();
    json_object_set_new(j, "job", json_string(r->params[0]));
    json_object_set_new(j, "cells", cells);
    api_next_token(j, p.more, off, size);
    srv_results_page_free(&p);
    return api_json(o, 200, j);
}

/* the latent table: cell, latent_0, ...; JSON pages of {cell, latent: [...]}, or the whole
 * table as CSV */
int api_h_job_latent(api_req *r, api_resp *o)
{
    char dir[4200], type[32], path[4400];
    if (job_dir(r, o, 1, dir, type)) return API_DONE;
    const char *accept = api_header(r, "Accept");
    const char *fmt = api_arg(r, "format");
    if (fmt && strcmp(fmt, "csv") && strcmp(fmt, "json"))
        return api_problem(o, 400, "invalid-parameter", "format must be json or csv, got '%s'", fmt);
    if ((fmt && !strcmp(fmt, "csv")) || (!fmt && accept && strstr(accept, "text/csv"))) {
        if (!table_download(r, o, dir, SX_JOBDIR_LATENT, path, sizeof path)) return API_DONE;
        return send_file(r, o, path, "text/csv", sx_jobdir_table_download(SX_JOBDIR_LATENT), 1);
    }
    int size;
    int64_t off;
    if (api_page(r, o, 1000, 100000, &size, &off)) return API_DONE;
    srv_results *t = open_table(o, dir, SX_JOBDIR_LATENT, r->params[0],
                                "has no latent coordinates (its output has no obsm latent, or the "
                                "table could not be written: see its log)");
    if (!t) return API_DONE;
    srv_results_page p;
    int ok = read_page(o, t, off, size, NULL, NULL, &p);
    srv_results_close(t);
    if (!ok) return API_DONE;
    json_t *cells = json_array();
    for (int64_t i = 0; i < p.n_rows; i++) {
        json_t *x = json_object();
        json_t *v = json_array();
        for (int k = 1; k < p.n_cols; k++) json_array_append_new(v, json_real(p.cols[k].num[i]));
        json_object_set_new(x, "cell", json_string(p.cols[0].str[i]));
        json_object_set_new(x, "latent", v);
        json_array_append_new(cells, x);
    }
    json_t *j = json_object();
    json_object_set_new(j, "job", json_string(r->params[0]));
    json_object_set_new(j, "dim", json_integer(p.n_cols - 1));
    json_object_set_new(j, "cells", cells);
    api_next_token(j, p.more, off, size);
    srv_results_page_free(&p);
    return api_json(o, 200, j);
}
