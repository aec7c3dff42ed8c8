/* /v1/references: the shared catalog (read by all users), registration from a finished
 * integrate job, and /map: upload + project + label transfer as one job, optionally waiting
 * for the result in the same response. The use cases are srv_service's; this file parses
 * and answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "srv_service_results.h"
#include "srv_util.h"

int api_h_ref_list(api_req *r, api_resp *o)
{
    srv_service svc = api_service(r->srv);
    sx_status st;
    srv_why why;
    json_t *a = srv_service_ref_list(&svc, &why, &st);
    if (!a) return api_problem_svc(o, why, &st);
    json_t *j = json_object();
    json_object_set_new(j, "references", a);
    return api_json(o, 200, j);
}

int api_h_ref_get(api_req *r, api_resp *o)
{
    srv_service svc = api_service(r->srv);
    sx_status st;
    srv_why why;
    json_t *j = srv_service_ref_get(&svc, r->params[0], &why, &st);
    if (!j) return api_problem_svc(o, why, &st);
    return api_json(o, 200, j);
}

/* The body of POST /v1/references: {name, job[, description, species, tissue]}, all strings. */
static int parse_ref_body(json_t *req, srv_ref_request *rq, api_resp *o)
{
    static const char *const allowed[] = {"name", "job", "description", "species", "tissue"};
    if (!json_is_object(req))
        return api_refuse(o, 400, "wrong-type", "the body must be a JSON object {\"name\": NAME, "
                          "\"job\": JOB_ID}");
    const char *k;
    json_t *v;
    json_object_foreach(req, k, v) {
        int ok = 0;
        for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) ok |= !strcmp(k, allowed[i]);
        if (!ok)
            return api_refuse(o, 400, "unknown-field", "unknown field '%s': a reference takes "
                              "name, job, description, species and tissue", k);
        if (!json_is_string(v)) return api_refuse(o, 400, "wrong-type", "'%s' must be a string", k);
    }
    rq->name = json_string_value(json_object_get(req, "name"));
    rq->job_id = json_string_value(json_object_get(req, "job"));
    rq->description = json_string_value(json_object_get(req, "description"));
    rq->species = json_string_value(json_object_get(req, "species"));
    rq->tissue = json_string_value(json_object_get(req, "tissue"));
    if (!rq->name || !rq->job_id)
        return api_refuse(o, 400, "missing-field", "'%s' is required", rq->name ? "job" : "name");
    if (!srv_name_ok(rq->name))
        return api_refuse(o, 400, "invalid-value", "reference name '%s' is not valid: use 1-64 "
                          "letters, digits, '.', '_' or '-'", rq->name);
    return API_DONE;
}

int api_h_ref_create(api_req *r, api_resp *o)
{
    json_error_t err;
    json_t *req = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!req)
        return api_problem(o, 400, "malformed-json", "the body is not valid JSON (line %d, column "
                           "%d: %s): send {\"name\": NAME, \"job\": JOB_ID}", err.line, err.column,
                           err.text);
    srv_ref_request rq;
    if (parse_ref_body(req, &rq, o) == API_REFUSED) goto out;
    srv_service svc = api_service(r->srv);
    sx_status st;
    sx_status_clear(&st);
    srv_why why;
    json_t *j = NULL;
    if (!srv_service_ref_register(&svc, &r->user, &rq, &why, &st))
        j = srv_service_ref_get(&svc, rq.name, &why, &st);
    if (!j) {
        api_problem_svc(o, why, &st);
        goto out;
    }
    snprintf(o->location, sizeof o->location, "/v1/references/%s", rq.name);
    api_json(o, 201, j);
out:
    json_decref(req);
    return API_DONE;
}

/* One query parameter as the JSON value of its option's type; NULL when it does not parse. */
static json_t *typed_arg(const sx_popt_spec *p, const char *v)
{
    char *end;
    switch (p->type) {
    case SX_POPT_BOOL:
        return !strcmp(v, "true") || !strcmp(v, "1") ? json_true()
             : !strcmp(v, "false") || !strcmp(v, "0") ? json_false() : NULL;
    case SX_POPT_INT: {
        long long n = strtoll(v, &end, 10);
        return *v && !*end ? json_integer(n) : NULL;
    }
    case SX_POPT_FLOAT: {
        double d = strtod(v, &end);
        return *v && !*end ? json_real(d) : NULL;
    }
    default: return json_string(v);
    }
}

/* The project job's options of a /map request: ?label= and any project option given as a
 * query parameter (?min_features=0&eval=true: a query whose cells are smaller than SCALEX's
 * defaults expect, or SCALEX's settings of a reference it wrote), typed by the pipeline's
 * table; their values are the service's to check. List options and threads are not taken.
 * NULL after a 400 problem. */
static json_t *map_options(api_req *r, api_resp *o)
{
    const srv_engine *e = r->srv->eng;
    json_t *opts = json_object();
    const char *label = api_arg(r, "label");
    if (label && e->label_option) json_object_set_new(opts, e->label_option, json_string(label));
    for (int i = 0; i < e->n_specs; i++) {
        const sx_popt_spec *p = &e->specs[i];
        const char *v = api_arg(r, p->name);
        if (!v || !(p->jobs & SX_JOB_PROJECT) || p->type == SX_POPT_LIST ||
            !strcmp(p->name, "threads") || json_object_get(opts, p->name))
            continue;
        json_t *x = typed_arg(p, v);
        if (!x) {
            json_decref(opts);
            api_problem(o, 400, "invalid-parameter", "%s must be %s, got '%s'", p->name,
                        p->type == SX_POPT_BOOL ? "true or false"
                        : p->type == SX_POPT_INT ? "an integer" : "a number", v);
            return NULL;
        }
        json_object_set_new(opts, p->name, x);
    }
    return opts;
}

/* The job ended or the wait ran out: answer with what there is. Pool thread. */
static void map_finish(void *arg)
{
    api_req *r = arg;
    api_resp *o = &r->resp;
    srv_service svc = api_service(r->srv);
    sx_status st;
    srv_why why;
    srv_job_outcome out;
    json_t *job = NULL;
    if (srv_service_job_outcome(&svc, &r->user, r->job_id, &out, &why, &st) ||
        !(job = srv_service_job_get(&svc, &r->user, r->job_id, &why, &st))) {
        api_problem_svc(o, why, &st);
        goto done;
    }
    snprintf(o->location, sizeof o->location, "/v1/jobs/%s", r->job_id);
    json_t *j = json_object();
    json_object_set_new(j, "job", job);
    if (out.state == SRV_JOB_COMPLETE) {
        json_t *labels = api_job_labels_json(r->srv, r->job_id, o);
        if (!labels) {
            o->location[0] = 0;
            json_decref(j);
            goto done;
        }
        json_object_set_new(j, "labels", labels);
        api_json(o, 200, j);
    } else if (srv_jstate_terminal(out.state)) {
        o->location[0] = 0;
        int status = out.state == SRV_JOB_CANCELED ? 409
                   : out.state == SRV_JOB_SYSTEM_ERROR ? 500 : 422;
        if (!strcmp(out.error_type, "invalid-options")) status = 400;
        api_problem(o, status, out.error_type[0] ? out.error_type : "job-failed",
                    "the mapping job %s ended %s: %s", r->job_id, srv_jstate_name(out.state),
                    out.error[0] ? out.error : "canceled");
        /* the problem carries the job, so a client can still inspect it */
        json_t *pj = json_loads(o->body, 0, NULL);
        if (pj) {
            json_object_set(pj, "job", job);
            free(o->body);
            o->body = json_dumps(pj, JSON_COMPACT);
            o->len = o->body ? strlen(o->body) : 0;
            json_decref(pj);
        }
        json_decref(j);
    } else {
        api_json(o, 202, j);
    }
done:
    api_async_done(r);
}

static void map_waited(void *user, const char *id, srv_jstate state)
{
    api_req *r = user;
    (void)id;
    (void)state;
    if (srv_pool_submit(r->srv->pool, map_finish, r)) map_finish(r);
}

/* r->after_store of the map route: submit the project job of the stored query, then answer
 * now or once the job ends (?wait=). Pool thread. */
static int map_after_store(api_req *r, const char *ds_id)
{
    api_resp *o = &r->resp;
    srv_service svc = api_service(r->srv);
    sx_status st;
    sx_status_clear(&st);
    srv_why why;
    char id[32];
    json_t *opts = map_options(r, o);
    if (!opts) return API_DONE;
    int rc = srv_service_map_submit_opts(&svc, &r->user, ds_id, r->ref_name, opts, id, &why, &st);
    json_decref(opts);
    if (rc) return api_problem_svc(o, why, &st);
    snprintf(r->job_id, sizeof r->job_id, "%s", id);
    const char *w = api_arg(r, "wait");
    double wait = w ? strtod(w, NULL) : 0;
    if (wait > 0 && srv_service_job_wait(&svc, id, wait, map_waited, r, &st) == SX_OK)
        return API_ASYNC;
    json_t *job = srv_service_job_get(&svc, &r->user, id, &why, &st);
    if (!job) return api_problem_svc(o, why, &st);
    json_t *j = json_object();
    json_object_set_new(j, "job", job);
    snprintf(o->location, sizeof o->location, "/v1/jobs/%s", id);
    return api_json(o, 202, j);
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
    json_t *opts = map_options(r, o); /* refused before the upload is read */
    if (!opts) return API_DONE;
    json_decref(opts);
    srv_service svc = api_service(r->srv);
    sx_status st;
    sx_status_clear(&st);
    srv_why why;
    if (srv_service_ref_exists(&svc, r->params[0], &why, &st)) return api_problem_svc(o, why, &st);
    r->after_store = map_after_store;
    snprintf(r->ref_name, sizeof r->ref_name, "%s", r->params[0]);
    return api_upload_start(r, o);
}

/* The reference cells on its map: at most `sample` of them (default 50,000; 0 = all),
 * a uniform sample (the table's rows are in a seeded random order: sx_reference_tables),
 * paged like a job's umap table. Every signed-in user reads the catalog, so this too. */
int api_h_ref_umap(api_req *r, api_resp *o)
{
    srv_service svc = api_service(r->srv);
    sx_status st;
    sx_status_clear(&st);
    srv_why why;
    char dir[4400];
    if (srv_service_ref_dir(&svc, r->params[0], dir, sizeof dir, &why, &st))
        return api_problem_svc(o, why, &st);
    int size;
    int64_t off, sample = 50000;
    if (api_page(r, o, 10000, 200000, &size, &off) || !api_count_arg(r, o, "sample", &sample))
        return API_DONE;
    srv_results *t = NULL;
    int rc = srv_results_open(dir, SX_JOBDIR_UMAP, &t, &st);
    if (rc == SX_ENOTFOUND)
        return api_problem(o, 404, "not-found", "reference '%s' has no UMAP layout (it was "
                           "built without one)", r->params[0]);
    if (rc) return api_problem_sx(o, &st);
    int64_t total = srv_results_rows(t), upto = sample && sample < total ? sample : total;
    int64_t tsize, tmtime;
    srv_results_stamp(t, &tsize, &tmtime);
    snprintf(o->etag, sizeof o->etag, "\"ref-%s-%lld-%lld-%lld-%lld-%d\"", r->params[0],
             (long long)tsize, (long long)tmtime, (long long)sample, (long long)off, size);
    const char *inm = api_header(r, "If-None-Match");
    if (inm && strstr(inm, o->etag)) {
        srv_results_close(t);
        o->status = 304;
        return API_DONE;
    }
    srv_results_page p;
    memset(&p, 0, sizeof p);
    int want = off < upto ? (int)(upto - off < size ? upto - off : size) : 0;
    rc = want ? srv_results_page_read(t, off, want, NULL, NULL, &p, &st) : SX_OK;
    srv_results_close(t);
    if (rc) return api_problem_sx(o, &st);
    json_t *cells = json_array();
    for (int64_t i = 0; p.n_cols >= 5 && i < p.n_rows; i++) {
        json_t *x = json_object();
        json_object_set_new(x, "cell", json_string(p.cols[0].str[i]));
        json_object_set_new(x, "x", json_real(p.cols[1].num[i]));
        json_object_set_new(x, "y", json_real(p.cols[2].num[i]));
        json_object_set_new(x, "batch", *p.cols[3].str[i] ? json_string(p.cols[3].str[i]) : json_null());
        json_object_set_new(x, "label", *p.cols[4].str[i] ? json_string(p.cols[4].str[i]) : json_null());
        json_array_append_new(cells, x);
    }
    json_t *j = json_object();
    json_object_set_new(j, "reference", json_string(r->params[0]));
    json_object_set_new(j, "total", json_integer(total));
    json_object_set_new(j, "sampled", json_integer(upto));
    json_object_set_new(j, "cells", cells);
    api_next_token(j, off + p.n_rows < upto, off, size);
    srv_results_page_free(&p);
    char etag[400];
    memcpy(etag, o->etag, sizeof etag);
    api_json(o, 200, j);
    memcpy(o->etag, etag, sizeof etag);
    return API_DONE;
}
