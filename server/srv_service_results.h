/* srv_service_results — the read-results use case: a finished job's result tables (labels,
 * latent, umap; sx_jobdir.h), read a page at a time, and their text downloads. The daemon
 * never reopens a job's adata.h5ad for this: the pipeline wrote the tables from memory.
 *
 * The caller (api/) checks the job's owner and state and passes its directory; this module
 * knows nothing of HTTP. Errors: SX_OK or an SX_E* code with st filled (SX_ENOTFOUND when
 * the job has no such table). */
#ifndef SRV_SERVICE_RESULTS_H
#define SRV_SERVICE_RESULTS_H

#include <stdint.h>

#include "sx_error.h"
#include "sx_jobdir.h"

/* One column of a page: numbers (num) or strings (str), n rows. */
typedef struct srv_results_col {
    const char *name; /* borrowed from the table */
    int is_str;
    double *num;
    char **str;       /* one block (sx_jobdir_table_read_str) */
} srv_results_col;

/* A page of rows; free with srv_results_page_free. */
typedef struct srv_results_page {
    int64_t n_rows;
    int n_cols;
    int more;              /* rows follow the page */
    srv_results_col *cols; /* in table order */
} srv_results_page;

/* An open result table (owned; srv_results_close). */
typedef struct srv_results srv_results;

int srv_results_open(const char *jobdir, sx_jobdir_table_id which, srv_results **out,
                     sx_status *st);
void srv_results_close(srv_results *r);
/* Rows, and the identity of the table file (size, mtime) for an ETag. */
int64_t srv_results_rows(const srv_results *r);
void srv_results_stamp(const srv_results *r, int64_t *size, int64_t *mtime);

/* Rows [offset, offset + size) of those whose string column `filter_col` equals
 * `filter_value` (filter_col NULL: every row). page->more tells whether rows follow. */
int srv_results_page_read(srv_results *r, int64_t offset, int size, const char *filter_col,
                          const char *filter_value, srv_results_page *page, sx_status *st);
void srv_results_page_free(srv_results_page *p);

/* The text download of a table (labels.csv, latent.csv, umap.tsv) as a file in the job
 * directory, made from the table on first use (then kept: results never change); its path
 * into path[cap]. */
int srv_results_download(const char *jobdir, sx_jobdir_table_id which, char *path, size_t cap,
                         sx_status *st);

/* The QC report of a map: the "qc" object of the job's result.json (written by the
 * pipeline, see core/pipeline/sx_pipeline_qc.h) as compact JSON text in *json (caller
 * frees with free) and result.json's size and mtime for an ETag. SX_ENOTFOUND when the job
 * wrote no QC report (only projections do), SX_EFORMAT when result.json is unreadable. */
int srv_results_qc(const char *jobdir, char **json, int64_t *size, int64_t *mtime,
                   sx_status *st);

#endif
