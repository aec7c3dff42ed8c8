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
#include "srv_layout.h"
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

/* One option's value against its type in the table; API_DONE or API_REFUSED. */
static int check_option_type(const sx_popt_spec *p, const char *k, json_t *v, api_resp *o)
{
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
        return api_refuse(o, 400, "wrong-type", "option 'options.%s' must be %s, not %s", k, want,
                          json_type_name(v));
    return API_DONE;
}

/* The options object's names and value types against the pipeline's table (its values are
 * the service's to check). */
static int check_options(const srv_engine *e, const char *type, json_t *opts, api_resp *o)
{
    if (!opts) return API_DONE;
    if (!json_is_object(opts))
        return api_refuse(o, 400, "wrong-type", "'options' must be an object of SCALEX option "
                          "names to values, not %s", json_type_name(opts));
    unsigned bit = job_bit(type);
    const char *k;
    json_t *v;
    json_object_foreach(opts, k, v) {
        const sx_popt_spec *p = NULL;
        for (int i = 0; i < e->n_specs && !p; i++)
            if (!strcmp(e->specs[i].name, k)) p = &e->specs[i];
        if (!strcmp(k, "data_list") || !strcmp(k, "threads"))
            return api_refuse(o, 400, "unknown-field", "option 'options.%s' is set by the server "
                              "(inputs come from 'datasets'; threads from --threads-per-job): "
                              "remove it", k);
        if (!p)
            return api_refuse(o, 400, "unknown-field", "unknown option 'options.%s': GET "
                              "/v1/options lists the options with their types", k);
        if (!(p->jobs & bit))
            return api_refuse(o, 400, "unknown-field", "option 'options.%s' does not apply to %s "
                              "jobs: GET /v1/options says which jobs take it", k, type);
        if (check_option_type(p, k, v, o)) return API_REFUSED;
    }
    return API_DONE;
}

/* The fields of a job request: known names, type, name. */
static int check_job_fields(json_t *req, api_resp *o)
{
    static const char *const allowed[] = {"type", "datasets", "reference", "options", "name"};
    if (!json_is_object(req))
        return api_refuse(o, 400, "wrong-type", "the body must be a JSON object like {\"type\": "
                          "\"integrate\", \"datasets\": [ID], \"options\": {}}, not %s",
                          json_type_name(req));
    const char *k;
    json_t *v;
    json_object_foreach(req, k, v) {
        int ok = 0;
        for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) ok |= !strcmp(k, allowed[i]);
        if (!ok)
            return api_refuse(o, 400, "unknown-field", "unknown field '%s': a job takes type, "
                              "datasets, reference, options and name", k);
    }
    json_t *type = json_object_get(req, "type");
    if (!type)
        return api_refuse(o, 400, "missing-field", "'type' is required: integrate, project or "
                          "label_transfer");
    if (!json_is_string(type))
        return api_refuse(o, 400, "wrong-type", "'type' must be a string, not %s",
                          json_type_name(type));
    if (!job_bit(json_string_value(type)))
        return api_refuse(o, 400, "invalid-value", "'type' is '%s'; use integrate, project or "
                          "label_transfer", json_string_value(type));
    json_t *name = json_object_get(req, "name");
    if (name && !json_is_string(name))
        return api_refuse(o, 400, "wrong-type", "'name' must be a string, not %s",
                          json_type_name(name));
    return API_DONE;
}

/* 'datasets' and 'reference' as the job type wants them. */
static int check_job_inputs(json_t *req, const char *t, api_resp *o)
{
    json_t *ds = json_object_get(req, "datasets"), *v;
    if (!ds)
        return api_refuse(o, 400, "missing-field", "'datasets' is required: a list of dataset "
                          "ids from POST /v1/datasets");
    if (!json_is_array(ds))
        return api_refuse(o, 400, "wrong-type", "'datasets' must be an array of dataset ids, not "
                          "%s", json_type_name(ds));
    if (json_array_size(ds) == 0 || json_array_size(ds) > 256)
        return api_refuse(o, 400, "invalid-value", "'datasets' must list 1 to 256 dataset ids");
    size_t i;
    json_array_foreach(ds, i, v) if (!json_is_string(v))
        return api_refuse(o, 400, "wrong-type", "'datasets[%zu]' must be a dataset id string, not "
                          "%s", i, json_type_name(v));
    json_t *ref = json_object_get(req, "reference");
    if (ref && !json_is_string(ref))
        return api_refuse(o, 400, "wrong-type", "'reference' must be a reference name, not %s",
                          json_type_name(ref));
    if (!strcmp(t, "integrate") && ref)
        return api_refuse(o, 400, "invalid-value", "integrate jobs take no 'reference': use a "
                          "project or label_transfer job to map onto one");
    if (strcmp(t, "integrate") && !ref)
        return api_refuse(o, 400, "missing-field", "%s jobs need 'reference': GET "
                          "/v1/references lists them", t);
    return API_DONE;
}

/* A job request: its shape here, then what needs the registry (srv_service_job_check). */
static int check_job_request(api_server *s, const srv_user *u, json_t *req, api_resp *o)
{
    if (check_job_fields(req, o)) return API_REFUSED;
    const char *t = json_string_value(json_object_get(req, "type"));
    if (check_job_inputs(req, t, o) || check_options(s->eng, t, json_object_get(req, "options"), o))
        return API_REFUSED;
    srv_service svc = api_service(s);
    sx_status st;
    sx_status_clear(&st);
    srv_why why;
    if (srv_service_job_check(&svc, u, json_object_get(req, "datasets"),
                              json_string_value(json_object_get(req, "reference")),
                              json_object_get(req, "options"), &why, &st))
        return api_refuse_svc(o, why, &st);
    return API_DONE;
}

int api_h_job_create(api_req *r, api_resp *o)
{
    json_error_t err;
    json_t *req = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!req)
        return api_problem(o, 400, "malformed-json", "the body is not valid JSON (line %d, column "
                           "%d: %s): send {\"type\": \"integrate\", \"datasets\": [ID]}", err.line,
                           err.column, err.text);
    srv_service svc = api_service(r->srv);
    sx_status st;
    sx_status_clear(&st);
    srv_why why;
    char id[32];
    json_t *j = NULL;
    if (check_job_request(r->srv, &r->user, req, o) == API_REFUSED) goto out;
    if (srv_service_job_submit(&svc, &r->user, json_string_value(json_object_get(req, "type")),
                               req, id, &j, &why, &st)) {
        api_problem_svc(o, why, &st);
        goto out;
    }
    snprintf(r->job_id, sizeof r->job_id, "%s", id);
    snprintf(o->location, sizeof o->location, "/v1/jobs/%s", id);
    if (j) api_json(o, 202, j);
    else api_problem(o, 500, "internal", "job %s was queued but could not be read back: GET %s "
                     "shows it", id, o->location);
out:
    json_decref(req);
    return API_DONE;
}

int api_h_job_list(api_req *r, api_resp *o)
{
    const char *name = api_arg(r, "state");
    srv_jstate state = SRV_JOB_UNKNOWN;
    sx_status st;
    if (name && srv_jstate_parse(name, &state, &st))
        return api_problem(o, 400, "invalid-parameter", "state %s", st.msg);
    int size, more = 0;
    int64_t off;
    if (api_page(r, o, 50, 1000, &size, &off)) return API_DONE;
    srv_service svc = api_service(r->srv);
    srv_why why;
    json_t *a = srv_service_job_list(&svc, &r->user, state, off, size, &more, &why, &st);
    if (!a) return api_problem_svc(o, why, &st);
    json_t *j = json_object();
    json_object_set_new(j, "jobs", a);
    api_next_token(j, more, off, size);
    return api_json(o, 200, j);
}

int api_h_job_get(api_req *r, api_resp *o)
{
    srv_service svc = api_service(r->srv);
    sx_status st;
    srv_why why;
    json_t *j = srv_service_job_get(&svc, &r->user, r->params[0], &why, &st);
    if (!j) return api_problem_svc(o, why, &st);
    return api_json(o, 200, j);
}

int api_h_job_cancel(api_req *r, api_resp *o)
{
    srv_service svc = api_service(r->srv);
    sx_status st;
    sx_status_clear(&st);
    srv_why why;
    json_t *j = NULL;
    if (srv_service_job_cancel(&svc, &r->user, r->params[0], NULL, &why, &st) ||
        !(j = srv_service_job_get(&svc, &r->user, r->params[0], &why, &st)))
        return api_problem_svc(o, why, &st);
    return api_json(o, 202, j);
}

/* ---- results ---- */

/* The job's folder when it is visible and COMPLETE (log: any state); else a problem. */
#include "srv_service_results.h" /* the results half of this file (below) */

static int job_dir(api_req *r, api_resp *o, int need_complete, char dir[4200], char type[32])
{
    srv_service svc = api_service(r->srv);
    sx_status st;
    sx_status_clear(&st);
    srv_why why;
    srv_jstate state;
    snprintf(r->job_id, sizeof r->job_id, "%.31s", r->params[0]);
    if (!srv_service_job_dir(&svc, &r->user, r->params[0], need_complete, dir, &state, type, &why,
                             &st))
        return API_DONE;
    if (why != SRV_WHY_WRONG_STATE) return api_refuse_svc(o, why, &st);
    if (!srv_jstate_terminal(state)) o->retry_after = 5;
    return api_refuse(o, 409, "not-ready", "job '%s' is %s: results exist once it is COMPLETE "
                      "(poll GET /v1/jobs/%s)", r->params[0], srv_jstate_name(state), r->params[0]);
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

/* A problem for a job's rows that cannot be served: no table, or a reference that is not
 * the one the job mapped onto any more. */
static int rows_problem(api_req *r, api_resp *o, int rc, const sx_status *st, const char *what)
{
    const char *id = r->params[0];
    if (rc == SX_ENOTFOUND)
        return api_problem(o, 404, "not-found", "job '%s' has no %s: GET /v1/jobs/%s/results "
                           "lists what it produced", id, what, id);
    if (rc == SX_ESTATE)
        return api_problem(o, 410, "reference-changed", "job '%s': %s, so its reference cells "
                           "cannot be served from it: they are in the job's adata.h5ad (GET "
                           "/v1/jobs/%s/results/adata.h5ad), the query's with ?set=query; map "
                           "the query again to place it on the reference as it is now", id,
                           st->msg, id);
    return api_problem_sx(o, st);
}

/* The folder of the reference whose own tables hold the job's reference rows of `which`
 * into refdir[cap] ("" when the job's tables hold them); 0 with the problem answered when
 * that reference has been withdrawn. */
static int job_refdir(api_req *r, api_resp *o, const char *dir, sx_jobdir_table_id which,
                      char *refdir, size_t cap)
{
    *refdir = 0;
    if (!srv_results_needs_reference(dir, which)) return 1;
    srv_service svc = api_service(r->srv);
    sx_status st;
    sx_status_clear(&st);
    srv_why why;
    json_t *j = srv_service_job_get(&svc, &r->user, r->params[0], &why, &st);
    char name[256];
    snprintf(name, sizeof name, "%s", j ? json_string_value(json_object_get(j, "reference")) ?
             json_string_value(json_object_get(j, "reference")) : "" : "");
    json_decref(j);
    if (!j) return api_problem_svc(o, why, &st), 0;
    if (*name && srv_service_ref_dir(&svc, name, refdir, cap, &why, &st) == SX_OK) return 1;
    if (*name && why != SRV_WHY_NO_REFERENCE) return api_problem_svc(o, why, &st), 0;
    api_problem(o, 410, "reference-withdrawn", "job '%s' was mapped onto reference '%s', which "
                "has been withdrawn since: its reference cells are in the job's adata.h5ad (GET "
                "/v1/jobs/%s/results/adata.h5ad), the query's with ?set=query", r->params[0],
                name, r->params[0]);
    return 0;
}

/* A download made from a result table (labels.csv, latent.csv, umap.tsv; every reference
 * row included): its path, made on first use; 0 when there is none (problem answered). */
static int table_download(api_req *r, api_resp *o, const char *dir, int table, char *path,
                          size_t cap)
{
    char refdir[4400];
    sx_status st;
    sx_status_clear(&st);
    /* made before: served whatever became of the reference since */
    if (srv_results_download(dir, NULL, (sx_jobdir_table_id)table, 0, path, cap, &st) == SX_OK)
        return 1;
    if (!job_refdir(r, o, dir, (sx_jobdir_table_id)table, refdir, sizeof refdir)) return 0;
    int rc = srv_results_download(dir, *refdir ? refdir : NULL, (sx_jobdir_table_id)table, 1,
                                  path, cap, &st);
    if (rc == SX_OK) return 1;
    rows_problem(r, o, rc, &st, sx_jobdir_table_download(table));
    return 0;
}

/* The figures a job leaves to be drawn on request that its listing shows as always: drawn
 * (once) when first listed. umap.png / umap.pdf are listed once drawn. */
static int listed_figure(const char *name)
{
    return !strcmp(name, "qc.png") || !strcmp(name, "confusion.png");
}

/* Draw a figure the job left to be drawn on request into its folder: SX_OK, SX_ENOTFOUND
 * (nothing to draw it from, or not a figure drawn on request), or an error in st. */
static int draw_figure(api_req *r, const char *dir, const char *name, sx_status *st)
{
    srv_service svc = api_service(r->srv);
    sx_status_clear(st);
    if (!svc.eng || !svc.eng->render ||
        (strcmp(name, "umap.png") && strcmp(name, "umap.pdf") && !listed_figure(name)))
        return SX_ENOTFOUND;
    return svc.eng->render(svc.eng->user, dir, name, st);
}

/* 1 when the job wrote the result table `which` */
static int table_present(const char *dir, sx_jobdir_table_id which)
{
    char p[4400];
    sx_status st;
    return sx_jobdir_path(dir, sx_jobdir_table_name(which), p, sizeof p, &st) == SX_OK &&
           access(p, R_OK) == 0;
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
        /* umap.tsv / latent.csv hold every reference cell: made when downloaded, not when
         * listed (listed with no size until then) */
        int lazy = rf[i].table >= 0 && rf[i].table != SX_JOBDIR_LABELS;
        if (rf[i].table >= 0 &&
            srv_results_download(dir, NULL, (sx_jobdir_table_id)rf[i].table, !lazy, path,
                                 sizeof path, &st) &&
            (!lazy || !table_present(dir, (sx_jobdir_table_id)rf[i].table)))
            continue;
        struct stat sb;
        if (stat(path, &sb) != 0 && listed_figure(rf[i].name))
            draw_figure(r, dir, rf[i].name, &st); /* cannot: left out, as a missing file */
        int made = stat(path, &sb) == 0;
        if (!made && !lazy) continue;
        json_t *f = json_object();
        char href[200];
        snprintf(href, sizeof href, "/v1/jobs/%s/results/%s", r->params[0], rf[i].name);
        json_object_set_new(f, "name", json_string(rf[i].name));
        json_object_set_new(f, "size_bytes", made ? json_integer(sb.st_size) : json_null());
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

/* A map job writes no figures: umap.png / umap.pdf / qc.png / confusion.png are drawn on first
 * request and kept in the job folder. 0 with the problem answered when drawing fails. */
static int render_figure(api_req *r, api_resp *o, const char *dir, const char *name)
{
    sx_status st;
    int rc = draw_figure(r, dir, name, &st);
    if (rc == SX_OK || rc == SX_ENOTFOUND) return 1; /* absent: send_file answers 404 */
    api_problem_sx(o, &st);
    return 0;
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
        if (access(path, F_OK) != 0 && !render_figure(r, o, dir, name)) return API_DONE;
        return send_file(r, o, path, rf[i].media_type, name, 1);
    }
    return api_problem(o, 404, "not-found", "no result named '%s': GET /v1/jobs/%s/results lists "
                       "them", name, r->params[0]);
}

int api_h_job_log(api_req *r, api_resp *o)
{
    srv_service svc = api_service(r->srv);
    sx_status st;
    sx_status_clear(&st);
    srv_why why;
    char *text = NULL;
    size_t len = 0;
    if (srv_service_job_log(&svc, &r->user, r->params[0], &text, &len, &why, &st))
        return api_problem_svc(o, why, &st);
    o->status = 200;
    o->ctype = "text/plain; charset=utf-8";
    o->body = text;
    o->len = len;
    return API_DONE;
}

/* Open a job's result table; 0 with the problem answered when it cannot. */
static srv_results *open_table(api_resp *o, const char *dir, sx_jobdir_table_id which,
                               const char *job_id, const char *missing)
{
    srv_results *t = NULL;
    sx_status st;
    sx_status_clear(&st);
    int rc = srv_results_open(dir, which, &t, &st);
    if (rc == SX_ENOTFOUND && which == SX_JOBDIR_LABELS)
        api_problem(o, 404, "no-labels", "job '%s' %s", job_id, missing);
    else if (rc == SX_ENOTFOUND)
        api_problem(o, 404, "not-found", "job '%s' %s", job_id, missing);
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

/* Numbers as people write them: jansson prints a double with up to 17 digits (0.8 as
 * 0.80000000000000004); the API prints 15 (api_json), so a value rounded here to the
 * shortest text that keeps its precision prints as that text. */
static json_t *num_short(double v, int sig)
{
    char b[40];
    snprintf(b, sizeof b, "%.*g", sig, v);
    return json_real(strtod(b, NULL));
}

/* a float32 value (coordinates, latent): the shortest text that reads back as that float */
static json_t *num_f32(double v)
{
    float f = (float)v;
    char b[40];
    for (int sig = 1; sig <= 9; sig++) {
        snprintf(b, sizeof b, "%.*g", sig, (double)f);
        if (strtof(b, NULL) == f) break;
    }
    return json_real(strtod(b, NULL));
}

/* "A:0.91;B:0.05" -> [{"label": "A", "probability": 0.91}, ...] */
static json_t *top3_json(const char *t)
{
    json_t *a = json_array();
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", t);
    for (char *save = NULL, *x = strtok_r(buf, ";", &save); x; x = strtok_r(NULL, ";", &save)) {
        char *colon = strrchr(x, ':');
        if (!colon) continue;
        *colon = 0;
        json_t *o = json_object();
        json_object_set_new(o, "label", json_string(x));
        json_object_set_new(o, "probability", num_short(strtod(colon + 1, NULL), 6));
        json_array_append_new(a, o);
    }
    return a;
}

/* label, confidence, mapping_score (+ top3) of one label column from table columns c0.. */
static void label_fields(json_t *x, const srv_results_page *p, int c0, int64_t i, int top3)
{
    json_object_set_new(x, "label", json_string(p->cols[c0].str[i]));
    json_object_set_new(x, "confidence", num_short(p->cols[c0 + 1].num[i], 6));
    if (c0 + 2 < p->n_cols)
        json_object_set_new(x, "mapping_score", num_short(p->cols[c0 + 2].num[i], 6));
    if (top3 && c0 + 3 < p->n_cols)
        json_object_set_new(x, "top3", top3_json(p->cols[c0 + 3].str[i]));
}

static json_t *labels_json(api_server *s, const char *job_id, int top3, api_resp *o)
{
    char dir[4200];
    sx_status st;
    if (srv_layout_job_dir(s->cfg->data_dir, job_id, dir, sizeof dir, &st)) {
        api_problem_sx(o, &st);
        return NULL;
    }
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
    /* columns (sx_jobdir's labels table): cell, label, confidence, mapping_score, top3, then
     * the same four for each further label column, named after it ("subtype", ...); a table
     * of an older run has cell, label, confidence only */
    for (int64_t i = 0; p.n_cols >= 3 && i < p.n_rows; i++) {
        json_t *x = json_object();
        json_object_set_new(x, "cell", json_string(p.cols[0].str[i]));
        label_fields(x, &p, 1, i, top3);
        json_t *lv = p.n_cols >= 9 ? json_object() : NULL;
        for (int c0 = 5; lv && c0 + 3 < p.n_cols; c0 += 4) {
            json_t *y = json_object();
            label_fields(y, &p, c0, i, top3);
            json_object_set_new(lv, p.cols[c0].name, y);
        }
        if (lv) json_object_set_new(x, "levels", lv);
        json_array_append_new(a, x);
    }
    srv_results_page_free(&p);
    return a;
}

json_t *api_job_labels_json(api_server *s, const char *job_id, api_resp *o)
{
    return labels_json(s, job_id, 0, o);
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
    const char *t3 = api_arg(r, "top3");
    json_t *a = labels_json(r->srv, r->params[0], t3 && (!strcmp(t3, "1") || !strcmp(t3, "true")),
                            o);
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

/* ?set= of a job's rows: query | reference | all (default); 0 with the problem answered */
static int set_arg(api_req *r, api_resp *o, srv_results_set *set)
{
    const char *want = api_arg(r, "set");
    *set = SRV_SET_ALL;
    if (want && !strcmp(want, "query")) *set = SRV_SET_QUERY;
    else if (want && !strcmp(want, "reference")) *set = SRV_SET_REFERENCE;
    else if (want && strcmp(want, "all"))
        return api_problem(o, 400, "invalid-parameter", "set must be query, reference or all"), 0;
    return 1;
}

int api_count_arg(api_req *r, api_resp *o, const char *name, int64_t *v)
{
    const char *a = api_arg(r, name);
    if (!a) return 1;
    char *end;
    long long x = strtoll(a, &end, 10);
    if (!*a || *end || x < 0)
        return api_problem(o, 400, "invalid-parameter", "%s must be a number of cells (0 for "
                           "all of them)", name), 0;
    *v = x;
    return 1;
}

/* The rows of `set` of a job's table `which` (its reference's included); NULL with the
 * problem answered. */
static srv_results_view *open_view(api_req *r, api_resp *o, const char *dir,
                                   sx_jobdir_table_id which, srv_results_set set,
                                   int64_t sample, const char *what)
{
    char refdir[4400] = "";
    if (set != SRV_SET_QUERY && !job_refdir(r, o, dir, which, refdir, sizeof refdir))
        return NULL;
    srv_results_view *v = NULL;
    sx_status st;
    sx_status_clear(&st);
    int rc = srv_results_view_open(dir, *refdir ? refdir : NULL, which, set, sample, &v, &st);
    if (rc) rows_problem(r, o, rc, &st, what);
    return v;
}

/* A page of a view as JSON cells (row(p, i) each), with next_page_token; NULL with the
 * problem answered. */
static json_t *view_page(api_resp *o, srv_results_view *v, int64_t off, int size,
                         json_t *(*row)(const srv_results_page *, int64_t), json_t *j)
{
    srv_results_page parts[2];
    int np = 0, more = 0;
    sx_status st;
    sx_status_clear(&st);
    if (srv_results_view_read(v, off, size, parts, &np, &more, &st)) {
        json_decref(j);
        api_problem_sx(o, &st);
        return NULL;
    }
    json_t *cells = json_array();
    for (int k = 0; k < np; k++) {
        for (int64_t i = 0; i < parts[k].n_rows; i++) {
            json_t *x = row(&parts[k], i);
            if (x) json_array_append_new(cells, x);
        }
        srv_results_page_free(&parts[k]);
    }
    json_object_set_new(j, "cells", cells);
    api_next_token(j, more, off, size);
    return j;
}

/* one row of the umap table: cell, x, y, batch, label, set */
static json_t *umap_row(const srv_results_page *p, int64_t i)
{
    if (p->n_cols < 6) return NULL;
    json_t *x = json_object();
    json_object_set_new(x, "cell", json_string(p->cols[0].str[i]));
    json_object_set_new(x, "x", num_f32(p->cols[1].num[i]));
    json_object_set_new(x, "y", num_f32(p->cols[2].num[i]));
    json_object_set_new(x, "batch", text_or_null(p->cols[3].str[i]));
    json_object_set_new(x, "label", text_or_null(p->cols[4].str[i]));
    json_object_set_new(x, "set", json_string(*p->cols[5].str[i] ? p->cols[5].str[i] : "query"));
    return x;
}

/* The umap table. The reference's cells: at most `sample` (default --reference-sample), the
 * first rows of the reference's table, a uniform sample of its layout; every cell with
 * sample=0, or in umap.tsv. */
int api_h_job_umap(api_req *r, api_resp *o)
{
    char dir[4200], type[32];
    if (job_dir(r, o, 1, dir, type)) return API_DONE;
    int size;
    int64_t off, sample = r->srv->cfg->reference_sample;
    srv_results_set set;
    if (api_page(r, o, 10000, 200000, &size, &off) || !set_arg(r, o, &set) ||
        !api_count_arg(r, o, "sample", &sample))
        return API_DONE;
    srv_results_view *v = open_view(r, o, dir, SX_JOBDIR_UMAP, set, sample, "UMAP coordinates "
                                    "(it computed none, or the result table could not be "
                                    "written: see its log)");
    if (!v) return API_DONE;
    json_t *j = json_object();
    json_object_set_new(j, "job", json_string(r->params[0]));
    if (srv_results_view_reference_cells(v) > 0 && set != SRV_SET_QUERY) {
        json_object_set_new(j, "reference_cells", json_integer(srv_results_view_reference_cells(v)));
        json_object_set_new(j, "reference_sampled",
                            json_integer(srv_results_view_reference_rows(v)));
    }
    j = view_page(o, v, off, size, umap_row, j);
    srv_results_view_close(v);
    return j ? api_json(o, 200, j) : API_DONE;
}

/* one row of the latent table: {cell, latent: [...]} */
static json_t *latent_row(const srv_results_page *p, int64_t i)
{
    json_t *x = json_object(), *v = json_array();
    for (int k = 1; k < p->n_cols; k++) json_array_append_new(v, num_f32(p->cols[k].num[i]));
    json_object_set_new(x, "cell", json_string(p->cols[0].str[i]));
    json_object_set_new(x, "latent", v);
    return x;
}

/* the latent table: cell, latent_0, ...; JSON pages of {cell, latent: [...]} (the
 * reference's cells, then the query's; ?set= one of them), or every row as CSV */
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
    srv_results_set set;
    if (api_page(r, o, 1000, 100000, &size, &off) || !set_arg(r, o, &set)) return API_DONE;
    srv_results_view *v = open_view(r, o, dir, SX_JOBDIR_LATENT, set, 0, "latent coordinates "
                                    "(its output has no obsm latent, or the table could not be "
                                    "written: see its log)");
    if (!v) return API_DONE;
    json_t *j = json_object();
    json_object_set_new(j, "job", json_string(r->params[0]));
    json_object_set_new(j, "dim", json_integer(srv_results_view_cols(v) - 1));
    j = view_page(o, v, off, size, latent_row, j);
    srv_results_view_close(v);
    return j ? api_json(o, 200, j) : API_DONE;
}

/* the QC report: result.json's "qc" object; ETag from result.json (results never change) */
int api_h_job_qc(api_req *r, api_resp *o)
{
    char dir[4200], type[32];
    if (job_dir(r, o, 1, dir, type)) return API_DONE;
    sx_status st;
    sx_status_clear(&st);
    char *text = NULL;
    int64_t size = 0, mtime = 0;
    int rc = srv_results_qc(dir, &text, &size, &mtime, &st);
    if (rc == SX_ENOTFOUND)
        return api_problem(o, 404, "not-found", "job '%s' has %s", r->params[0], st.msg);
    if (rc) return api_problem_sx(o, &st);
    json_t *qc = json_loads(text, 0, NULL);
    free(text);
    if (!qc) return api_problem(o, 500, "internal", "job '%s': the QC report cannot be read",
                                r->params[0]);
    snprintf(o->etag, sizeof o->etag, "\"%s-qc-%lld-%lld\"", r->params[0], (long long)size,
             (long long)mtime);
    const char *inm = api_header(r, "If-None-Match");
    if (inm && strstr(inm, o->etag)) {
        json_decref(qc);
        o->status = 304;
        return API_DONE;
    }
    char etag[400];
    memcpy(etag, o->etag, sizeof etag);
    api_json(o, 200, qc);
    memcpy(o->etag, etag, sizeof etag);
    return API_DONE;
}
