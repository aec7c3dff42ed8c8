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
#include <stdio.h>

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
 * into path[cap]. refdir: as srv_results_view_open (the download holds every reference row).
 * make 0: only the path, SX_OK when the download exists, SX_ENOTFOUND when not made yet. */
int srv_results_download(const char *jobdir, const char *refdir, sx_jobdir_table_id which,
                         int make, char *path, size_t cap, sx_status *st);

/* ---- a job's rows of one table, its reference's included ----
 * A projection's tables hold its query (sx_jobdir.h, refcells.json): its reference cells are
 * read from the reference's own tables (REFDIR/umap.sxt in a seeded random order, so the
 * first N rows are a uniform sample of the layout; REFDIR/latent.sxt). A view joins them:
 * the reference's rows (at most `sample` of them), then the query's. A job without
 * refcells.json (integrate, or older versions) is its table, filtered by its "set" column. */
typedef enum { SRV_SET_ALL, SRV_SET_QUERY, SRV_SET_REFERENCE } srv_results_set;
typedef struct srv_results_view srv_results_view;

/* 1 when the job's rows of `which` need its reference's folder (refdir of _view_open). */
int srv_results_needs_reference(const char *jobdir, sx_jobdir_table_id which);
/* Open the rows of `set` of a job's table `which` (SX_JOBDIR_UMAP or SX_JOBDIR_LATENT).
 * refdir: the folder of the reference the job mapped onto as the registry has it now (NULL
 * when srv_results_needs_reference says 0, or for set = query); sample: most reference rows (0 = all).
 * SX_ENOTFOUND: no such table; SX_ESTATE: the reference's cells are not the job's any more
 * (registered again since), the message says what to do. Owned: srv_results_view_close. */
int srv_results_view_open(const char *jobdir, const char *refdir, sx_jobdir_table_id which,
                          srv_results_set set, int64_t sample, srv_results_view **out,
                          sx_status *st);
void srv_results_view_close(srv_results_view *v);
/* Rows of the view, of them the reference's; the job's reference cells (all of them,
 * whatever `sample`; 0 for a job without refcells.json); the table's columns. */
int64_t srv_results_view_rows(const srv_results_view *v);
int64_t srv_results_view_reference_rows(const srv_results_view *v);
int64_t srv_results_view_reference_cells(const srv_results_view *v);
int srv_results_view_cols(const srv_results_view *v);
/* Rows [offset, offset + size) of the view as up to two pages (the reference's rows, then
 * the query's), each freed with srv_results_page_free; *more when rows follow. */
int srv_results_view_read(srv_results_view *v, int64_t offset, int size,
                          srv_results_page parts[2], int *n_parts, int *more, sx_status *st);
/* Identity of the files behind the view (for an ETag). */
void srv_results_view_stamp(const srv_results_view *v, int64_t *size, int64_t *mtime);
/* The download of a view (every row; umap.tsv / latent.csv dialect) into out. */
int srv_results_view_text(srv_results_view *v, sx_jobdir_table_id which, FILE *out,
                          sx_status *st);

/* The QC report of a map: the "qc" object of the job's result.json (written by the
 * pipeline, see core/pipeline/sx_pipeline_qc.h) as compact JSON text in *json (caller
 * frees with free) and result.json's size and mtime for an ETag. SX_ENOTFOUND when the job
 * wrote no QC report (only projections do), SX_EFORMAT when result.json is unreadable. */
int srv_results_qc(const char *jobdir, char **json, int64_t *size, int64_t *mtime,
                   sx_status *st);

#endif
