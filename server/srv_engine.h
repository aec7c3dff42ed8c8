/* srv_engine — what the daemon needs from core/, as function pointers.
 *
 * The daemon binary fills this from core/io and core/pipeline (server/engine.c); unit
 * tests fill it with fakes, so server/ and api/ build and test without the numerics. */
#ifndef SRV_ENGINE_H
#define SRV_ENGINE_H

#include <jansson.h>
#include <stdint.h>

#include "sx_error.h"
#include "sx_jobtypes.h"
#include "srv_jobs.h"

typedef struct srv_dataset_info {
    char format[32];     /* "h5ad", "10x_h5", "mtx", "csv", "txt" */
    char ext[16];        /* file name extension to store it under: "h5ad", "csv.gz", ... */
    int64_t n_obs, n_vars;
    char *obs_columns;   /* JSON array text [{name, kind, n_categories}], malloc'd (free()) */
} srv_dataset_info;

typedef struct srv_engine {
    /* run one job (srv_jobs worker thread) */
    srv_job_fn run;
    void *user;
    /* detect + read an uploaded file at path (no extension) to check it and summarise it;
     * runs on a pool thread. SX_EFORMAT/SX_EDATA/... with a message on a bad file. */
    int (*validate)(void *user, const char *path, srv_dataset_info *info, sx_status *st);
    /* check option values (ranges, choices) as the job will see them; may be NULL */
    int (*check_options)(void *user, const json_t *options, sx_status *st);
    /* the pipeline's option table (request validation, GET /v1/options) */
    const sx_popt_spec *specs;
    int n_specs;
    /* name of the option that holds the label column for transfer ("label" in ?label=) */
    const char *label_option;
    /* load / free a reference kept in memory (srv_refcache); may be NULL: no cache */
    void *(*ref_load)(void *user, const char *path, int64_t *bytes, sx_status *st);
    void (*ref_free)(void *user, void *obj);
    /* draw a figure a finished job did not write (umap.png / umap.pdf / qc.png) and
     * store it in job_dir; may be NULL: such a figure is simply absent */
    int (*render)(void *user, const char *job_dir, const char *name, sx_status *st);
} srv_engine;

#endif
