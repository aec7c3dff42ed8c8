/* srv_service: the reference use cases — register one from a finished integrate job (with
 * the label columns its inputs plausibly hold), the catalog views, and map: the project job
 * of an uploaded query. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "srv_layout.h"
#include "srv_refcache.h"
#include "srv_refs.h"
#include "srv_service_internal.h"
#include "srv_util.h"
#include "sx_jobdir.h"

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

/* add the plausible label columns of one dataset to cols (no duplicates) */
static void add_label_columns(json_t *cols, const srv_dataset_row *d, const char *batch)
{
    json_t *oc = json_loads(d->obs_columns ? d->obs_columns : "[]", 0, NULL);
    size_t k, m;
    json_t *c, *x;
    json_array_foreach(oc, k, c) {
        if (!plausible_label(c, batch, d->n_obs)) continue;
        const char *name = json_string_value(json_object_get(c, "name"));
        int dup = 0;
        json_array_foreach(cols, m, x) dup |= !strcmp(json_string_value(x), name);
        if (!dup) json_array_append_new(cols, json_string(name));
    }
    json_decref(oc);
}

/* JSON array text of the label columns of a job's inputs (malloc'd; NULL: out of memory) */
static char *label_columns(srv_db *db, const srv_user *u, const srv_job_row *job)
{
    json_t *req = json_loads(job->request_json, 0, NULL);
    json_t *cols = json_array();
    const char *batch = json_string_value(json_object_get(json_object_get(req, "options"),
                                                          "batch_name"));
    if (!batch || !*batch) batch = "batch";
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(req, "datasets"), i, v) {
        srv_dataset_row d;
        if (srv_dataset_row_get(db, json_string_value(v), u, &d, NULL)) continue;
        add_label_columns(cols, &d, batch);
        srv_dataset_row_free(&d);
    }
    char *t = json_dumps(cols, JSON_COMPACT);
    json_decref(cols);
    json_decref(req);
    return t;
}

static int register_from(const srv_service *svc, srv_db *db, const srv_user *u,
                         const srv_ref_request *rq, const srv_job_row *job, srv_why *why,
                         sx_status *st)
{
    if (strcmp(job->type, "integrate") || job->state != SRV_JOB_COMPLETE)
        return svc_why(why, SRV_WHY_WRONG_STATE,
                       sx_status_set(st, SX_ESTATE, "job '%s' is a %s job in state %s: only a "
                                     "COMPLETE integrate job can become a reference", job->id,
                                     job->type, srv_jstate_name(job->state)));
    char src[4200];
    int rc = srv_layout_job_dir(svc->data_dir, job->id, src, sizeof src, st);
    if (rc) return svc_why(why, SRV_WHY_NONE, rc);
    char *cols = label_columns(db, u, job);
    srv_ref_add a = {.name = rq->name, .src_dir = src, .job_id = job->id, .owner = u->id,
                     .description = rq->description, .species = rq->species,
                     .tissue = rq->tissue, .label_columns_json = cols};
    rc = srv_refs_add(db, svc->data_dir, &a, st);
    free(cols);
    /* a taken name, or a job folder without reference.h5: the job cannot become this one */
    return svc_why(why, rc == SX_ESTATE || rc == SX_ENOTFOUND ? SRV_WHY_WRONG_STATE
                                                              : SRV_WHY_NONE, rc);
}

int srv_service_ref_register(const srv_service *svc, const srv_user *u,
                             const srv_ref_request *rq, srv_why *why, sx_status *st)
{
    if (!srv_name_ok(rq->name))
        return svc_why(why, SRV_WHY_NONE,
                       sx_status_set(st, SX_EINVAL, "reference name '%s' is not valid: use 1-64 "
                                     "letters, digits, '.', '_' or '-'", rq->name ? rq->name : ""));
    srv_db *db = svc_db(svc, why, st);
    if (!db) return st->code;
    srv_job_row job;
    int rc = srv_job_row_get(db, rq->job_id, u, &job, st);
    if (rc) {
        svc_put(svc, db);
        return svc_lookup_fail(rc, SRV_WHY_NO_JOB, why, st);
    }
    /* after the lookup: a job the user cannot see stays a 404 whatever the policy */
    if (!svc->publish_everyone && !u->admin)
        rc = svc_why(why, SRV_WHY_FORBIDDEN,
                     sx_status_set(st, SX_ESTATE, "only administrators add references to this "
                                   "server's shared catalog (publish_references = admins): ask "
                                   "one to register job '%s'", rq->job_id));
    else
        rc = register_from(svc, db, u, rq, &job, why, st);
    srv_job_row_free(&job);
    svc_put(svc, db);
    return rc;
}

/* where the reference came from: rows registered before the catalog recorded it were all
 * trained here */
static void add_source(json_t *ref)
{
    if (json_object_get(ref, "source")) return;
    json_object_set_new(ref, "source", json_string("scalexd"));
    json_t *v = json_object_get(ref, "model_version");
    json_object_set(ref, "source_version", v ? v : json_null());
}

/* whether the reference is in memory now (srv_refcache), and its footprint; its source */
static void add_loaded(const srv_service *svc, json_t *ref)
{
    add_source(ref);
    int64_t bytes = 0;
    const char *name = json_string_value(json_object_get(ref, "name"));
    int loaded = name && svc->jobs &&
                 srv_refcache_is_loaded(srv_jobs_refcache(svc->jobs), name, &bytes);
    json_object_set_new(ref, "loaded", json_boolean(loaded));
    json_object_set_new(ref, "memory_bytes", loaded ? json_integer(bytes) : json_null());
}

json_t *srv_service_ref_get(const srv_service *svc, const char *name, srv_why *why,
                            sx_status *st)
{
    srv_db *db = svc_db(svc, why, st);
    if (!db) return NULL;
    json_t *j = srv_ref_get(db, name, st);
    svc_put(svc, db);
    if (!j) {
        if (st->code == SX_ENOTFOUND)
            svc_why(why, SRV_WHY_NO_REFERENCE,
                    sx_status_set(st, SX_ENOTFOUND, "no reference named '%s'", name));
        else svc_why(why, SRV_WHY_NONE, st->code);
        return NULL;
    }
    add_loaded(svc, j);
    svc_why(why, SRV_WHY_NONE, SX_OK);
    return j;
}

int srv_service_ref_dir(const srv_service *svc, const char *name, char *dir, size_t cap,
                        srv_why *why, sx_status *st)
{
    srv_db *db = svc_db(svc, why, st);
    if (!db) return st->code;
    char *rel = srv_ref_path(db, name, st);
    svc_put(svc, db);
    if (!rel)
        return st->code == SX_ENOTFOUND
                   ? svc_why(why, SRV_WHY_NO_REFERENCE,
                             sx_status_set(st, SX_ENOTFOUND, "no reference named '%s'", name))
                   : svc_why(why, SRV_WHY_NONE, st->code ? st->code : SX_EIO);
    int rc = srv_layout_abs(svc->data_dir, rel, dir, cap, st);
    free(rel);
    if (rc) return svc_why(why, SRV_WHY_NONE, rc);
    /* loading it (or finding it loaded) is what writes its tables (see the engine's loaders):
     * done once, not per request (with memory_budget 0 every acquire would load it anew); a
     * re-registered reference is a new folder, so an existing table is its own */
    char table[4600];
    snprintf(table, sizeof table, "%s/%s", dir, SX_JOBDIR_REFCELLS); /* written last */
    if (svc->jobs && !srv_file_exists(table)) {
        srv_refcache *c = srv_jobs_refcache(svc->jobs);
        void *obj = srv_refcache_acquire(c, name, dir, st);
        if (!obj) return svc_why(why, SRV_WHY_NONE, st->code ? st->code : SX_EIO);
        srv_refcache_release(c, obj);
    }
    return svc_why(why, SRV_WHY_NONE, SX_OK);
}

json_t *srv_service_ref_list(const srv_service *svc, srv_why *why, sx_status *st)
{
    srv_db *db = svc_db(svc, why, st);
    if (!db) return NULL;
    json_t *a = srv_ref_list(db, st);
    svc_put(svc, db);
    svc_why(why, SRV_WHY_NONE, a ? SX_OK : st->code);
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) add_loaded(svc, x);
    return a;
}

int srv_service_ref_exists(const srv_service *svc, const char *name, srv_why *why,
                           sx_status *st)
{
    return srv_service_job_check(svc, NULL, NULL, name, NULL, why, st);
}

int srv_service_map_submit_opts(const srv_service *svc, const srv_user *u, const char *ds_id,
                                const char *ref, const json_t *options, char id_out[32],
                                srv_why *why, sx_status *st)
{
    json_t *req = json_object(), *ds = json_array();
    json_t *opts = options ? json_deep_copy(options) : json_object();
    json_object_set_new(req, "type", json_string("project"));
    json_array_append_new(ds, json_string(ds_id));
    json_object_set_new(req, "datasets", ds);
    json_object_set_new(req, "reference", json_string(ref));
    /* a map answers with labels and coordinates: figures (drawn by the API on request), the
     * reference's Leiden clusters carried over and the reference's own cells in adata.h5ad
     * (the API serves them from the reference: a 1M-cell atlas is not copied into every
     * map) are left to a full project job, unless the caller asked for them (when the
     * engine has these options) */
    static const char *const extras[] = {"plots", "leiden", "reference_cells"};
    for (int e = 0; e < 3; e++)
        for (int i = 0; i < svc->eng->n_specs; i++)
            if (!strcmp(svc->eng->specs[i].name, extras[e]) &&
                svc->eng->specs[i].type == SX_POPT_BOOL && !json_object_get(opts, extras[e]))
                json_object_set_new(opts, extras[e], json_false());
    json_object_set_new(req, "options", opts);
    int rc = srv_service_job_check(svc, u, ds, ref, opts, why, st);
    if (!rc) rc = srv_service_job_submit(svc, u, "project", req, id_out, NULL, why, st);
    json_decref(req);
    return rc;
}

int srv_service_map_submit(const srv_service *svc, const srv_user *u, const char *ds_id,
                           const char *ref, const char *label, char id_out[32], srv_why *why,
                           sx_status *st)
{
    json_t *opts = json_object();
    if (label && svc->eng->label_option)
        json_object_set_new(opts, svc->eng->label_option, json_string(label));
    int rc = srv_service_map_submit_opts(svc, u, ds_id, ref, opts, id_out, why, st);
    json_decref(opts);
    return rc;
}
