/* The route table: method, path pattern, handler, body kind, auth. The OpenAPI document in
 * schema/openapi.json describes exactly these (checked by tests/unit/server/test_api.c). */
#include <stdio.h>
#include <string.h>

#include "api.h"

static const api_route routes[] = {
    {"GET", "/", api_h_static, API_BODY_NONE, 0, "the web page (web/index.html)"},
    {"GET", "/web/{file}", api_h_static, API_BODY_NONE, 0, "the web page's scripts and styles"},
    {"GET", "/healthz", api_h_healthz, API_BODY_NONE, 0, "liveness"},
    {"GET", "/readyz", api_h_readyz, API_BODY_NONE, 0, "readiness (503 while draining)"},
    {"GET", "/metrics", api_h_metrics, API_BODY_NONE, 0, "Prometheus metrics"},
    {"GET", "/v1/openapi.json", api_h_openapi, API_BODY_NONE, 0, "this API as OpenAPI 3.1"},
    {"GET", "/v1/options", api_h_options, API_BODY_NONE, 0, "job options with types and defaults"},
    {"GET", "/v1/me", api_h_me, API_BODY_NONE, 1, "the caller's identity"},
    {"POST", "/v1/datasets", api_h_dataset_create, API_BODY_UPLOAD, 1, "upload a dataset"},
    {"GET", "/v1/datasets", api_h_dataset_list, API_BODY_NONE, 1, "list datasets"},
    {"GET", "/v1/datasets/{id}", api_h_dataset_get, API_BODY_NONE, 1, "one dataset"},
    {"DELETE", "/v1/datasets/{id}", api_h_dataset_delete, API_BODY_NONE, 1, "delete a dataset"},
    {"POST", "/v1/jobs", api_h_job_create, API_BODY_JSON, 1, "submit a job"},
    {"GET", "/v1/jobs", api_h_job_list, API_BODY_NONE, 1, "list jobs"},
    {"GET", "/v1/jobs/{id}", api_h_job_get, API_BODY_NONE, 1, "one job"},
    {"POST", "/v1/jobs/{id}/cancel", api_h_job_cancel, API_BODY_NONE, 1, "cancel a job"},
    {"DELETE", "/v1/jobs/{id}", api_h_job_delete, API_BODY_NONE, 1, "delete a finished job and its results"},
    {"GET", "/v1/jobs/{id}/log", api_h_job_log, API_BODY_NONE, 1, "the job's log"},
    {"GET", "/v1/jobs/{id}/results", api_h_job_results, API_BODY_NONE, 1, "result files"},
    {"GET", "/v1/jobs/{id}/results/labels", api_h_job_labels, API_BODY_NONE, 1, "transferred labels"},
    {"GET", "/v1/jobs/{id}/results/umap", api_h_job_umap, API_BODY_NONE, 1, "UMAP coordinates"},
    {"GET", "/v1/jobs/{id}/results/latent", api_h_job_latent, API_BODY_NONE, 1, "latent coordinates"},
    {"GET", "/v1/jobs/{id}/results/qc", api_h_job_qc, API_BODY_NONE, 1, "the map's QC report"},
    {"GET", "/v1/jobs/{id}/results/{file}", api_h_job_file, API_BODY_NONE, 1, "a result file"},
    {"POST", "/v1/references", api_h_ref_create, API_BODY_JSON, 1, "register a reference"},
    {"GET", "/v1/references", api_h_ref_list, API_BODY_NONE, 1, "reference catalog"},
    {"GET", "/v1/references/{name}", api_h_ref_get, API_BODY_NONE, 1, "one reference"},
    {"DELETE", "/v1/references/{name}", api_h_ref_delete, API_BODY_NONE, 1, "withdraw a reference"},
    {"GET", "/v1/references/{name}/umap", api_h_ref_umap, API_BODY_NONE, 1, "the reference cells on its map (a sample)"},
    {"POST", "/v1/references/{name}/map", api_h_ref_map, API_BODY_UPLOAD, 1, "upload + project + transfer"},
};

const api_route *api_routes(int *n)
{
    *n = (int)(sizeof routes / sizeof routes[0]);
    return routes;
}

/* Does path match pattern? Captures {x} segments into params in order. */
static int match(const char *pat, const char *path, char params[API_MAX_PARAMS][160])
{
    int np = 0;
    while (*pat && *path) {
        if (*pat == '{') {
            const char *pe = strchr(pat, '}');
            const char *se = strchr(path, '/');
            size_t n = se ? (size_t)(se - path) : strlen(path);
            if (!pe || n == 0 || n >= 160 || np >= API_MAX_PARAMS) return 0;
            memcpy(params[np], path, n);
            params[np][n] = 0;
            np++;
            pat = pe + 1;
            path += n;
            continue;
        }
        if (*pat != *path) return 0;
        pat++;
        path++;
    }
    return *pat == 0 && *path == 0;
}

const api_route *api_route_match(const char *method, const char *path,
                                 char params[API_MAX_PARAMS][160], int *path_known)
{
    int n;
    const api_route *rt = api_routes(&n);
    *path_known = 0;
    /* a trailing slash is forgiven: /v1/jobs/ is /v1/jobs */
    char p[1024];
    snprintf(p, sizeof p, "%s", path);
    size_t len = strlen(p);
    if (len > 1 && p[len - 1] == '/') p[len - 1] = 0;
    char tmp[API_MAX_PARAMS][160];
    for (int i = 0; i < n; i++) {
        if (!match(rt[i].pattern, p, tmp)) continue;
        if (strcmp(rt[i].method, method)) {
            *path_known = 1;
            continue;
        }
        memcpy(params, tmp, sizeof tmp);
        return &rt[i];
    }
    return NULL;
}
