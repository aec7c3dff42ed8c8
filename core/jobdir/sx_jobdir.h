/* sx_jobdir — the job directory: the one interface between the engine (sx_pipeline), the
 * `scalex run-job` worker, the daemon's executors and its HTTP results. This module alone
 * knows the names and formats of the files in a job directory:
 *
 *   job.json       the job spec (written by the daemon, read by run-job):
 *                  {"type": "integrate"|"project"|"label_transfer", "inputs": ["path", ...],
 *                   "reference": "path"|null, "options": {"name": "text"|["text", ...]},
 *                   "threads": n, "limits": {"max_cells": n, ...}}; option values are
 *                  flattened to text (numbers as %lld / %.17g, booleans true/false), the text
 *                  the option parser takes; "limits" (optional) is the size budget the job's
 *                  readers apply (sx_io_limits.h field names, positive numbers; absent
 *                  fields take the defaults)
 *   status.json    {"state": "running"|"succeeded"|"failed"|"canceled", "exit_code": n,
 *                   "error": null | {"code": "EINVAL", "message": "..."}} (run-job writes)
 *   progress.json  {"stage": "...", "fraction": f, "message": "..."} (run-job writes)
 *   cancel         its existence asks the worker to stop
 *   log.txt        the job log (sx_pipeline)
 *   labels.sxt, latent.sxt, umap.sxt   result tables (below), written once by the pipeline
 *                  from memory; labels.csv is their CSV form for the command line, and the
 *                  daemon makes labels.csv / latent.csv / umap.tsv from them on demand
 *   refcells.json  (a projection onto a reference) {"cells": n, "latent": FP|null,
 *                  "umap": FP|null}: the reference's n cells are not copied into the job's
 *                  tables where they are the reference's own: latent.sxt holds the query
 *                  cells only when "latent" is set, umap.sxt when "umap" is set (the query
 *                  on the reference's fixed layout); otherwise umap.sxt holds the n reference
 *                  rows first (the job's own layout), in the seeded random order of the
 *                  reference's table. FP is sx_jobdir_fingerprint of those cells, which the
 *                  reference folder's refcells.json states for its own tables (REFDIR/
 *                  latent.sxt in the reference's order, REFDIR/umap.sxt in a seeded random
 *                  order): equal fingerprints = the same cells. No refcells.json: the
 *                  tables hold every row (an integrate job, or a job of an older version).
 *
 * Result table format (".sxt", version 1; all integers little-endian):
 *   0   char[8]  magic "SXTABLE\0"
 *   8   u32      version (1)
 *   12  u32      n_cols (1..SX_JOBDIR_MAX_COLS)
 *   16  u64      n_rows
 *   24  u64      header_bytes (the header incl. the column records, a multiple of 8)
 *   32  n_cols column records, each:
 *         u8 type (1 float32, 2 float64, 3 string), u8 csv precision (printf digits; bit 7
 *         set = fixed "%.Nf", clear = "%.Ng"), u16 name_len (1..SX_JOBDIR_MAX_NAME),
 *         u32 zero, u64 data_offset, u64 data_bytes, name bytes, zero padding to 8
 *   data, per column at data_offset (8-aligned): float32/float64: n_rows values; string:
 *         (n_rows + 1) u64 offsets into the blob that follows them (offs[0] = 0,
 *         non-decreasing, offs[n_rows] = blob length), then the blob (no terminators).
 * A reader reads the header once and then pread()s only the rows asked for, so a page of
 * a million-row table costs a page. The reader trusts nothing: every count, offset and
 * length is checked against the file size (and against overflow) before it is used, and
 * the string offsets of the rows read are checked as they are read.
 *
 * Errors: SX_OK or an SX_E* code with the status filled (sx_error.h). Messages name files
 * by their base name only (a user may see them). */
#ifndef SX_JOBDIR_H
#define SX_JOBDIR_H

#include <stdint.h>
#include <stdio.h>

#include "sx_error.h"
#include "sx_io_limits.h"

struct json_t;

#define SX_JOBDIR_SPEC "job.json"
#define SX_JOBDIR_STATUS "status.json"
#define SX_JOBDIR_PROGRESS "progress.json"
#define SX_JOBDIR_CANCEL "cancel"
#define SX_JOBDIR_LOG "log.txt"
#define SX_JOBDIR_RESULT "result.json"
#define SX_JOBDIR_REFCELLS "refcells.json"

#define SX_JOBDIR_MAX_COLS 4096
#define SX_JOBDIR_MAX_NAME 1024

/* ---- names ---- */

/* "<dir>/<name>" into out[cap]; SX_ELIMIT when it does not fit. */
int sx_jobdir_path(const char *dir, const char *name, char *out, size_t cap, sx_status *st);

/* The obs column that receives the labels transferred from `label`: "<label>_transfer"
 * (and "<label>_transfer_confidence" for their confidence), into out[cap]. */
void sx_jobdir_transfer_col(const char *label, int confidence, char *out, size_t cap);

/* The files a finished job may hold, for listing and download. `table` names the result
 * table a download is made from (-1: the file itself). Static storage. */
typedef enum { SX_JOBDIR_LABELS, SX_JOBDIR_LATENT, SX_JOBDIR_UMAP, SX_JOBDIR_N_TABLES } sx_jobdir_table_id;
typedef struct sx_jobdir_file {
    const char *name;       /* e.g. "adata.h5ad", "umap.tsv" */
    const char *media_type; /* e.g. "application/x-hdf5" */
    int table;              /* an sx_jobdir_table_id, or -1 */
} sx_jobdir_file;
const sx_jobdir_file *sx_jobdir_files(int *n);
/* The table file ("labels.sxt") and its text download ("labels.csv") of a table. */
const char *sx_jobdir_table_name(sx_jobdir_table_id id);
const char *sx_jobdir_table_download(sx_jobdir_table_id id);

/* ---- spec (job.json) ---- */

/* Text of job.json (caller frees with free()); NULL when out of memory. options: a JSON
 * object of option values (strings, numbers, booleans, arrays of those), may be NULL.
 * limits: the inputs' size budget (its fields > 0 are written); NULL = none (defaults).
 * input_sha256: n_inputs SHA-256 hex digests of the inputs as the daemon recorded them when
 * it stored them ("input_sha256"; the job's provenance then needs no second pass over the
 * files), or NULL (the job hashes them). */
char *sx_jobdir_spec_dumps(const char *type, const char *const *inputs, int n_inputs,
                           const char *reference, const struct json_t *options, int threads,
                           const sx_io_limits *limits, const char *const *input_sha256);
/* Write DIR/job.json (temporary name, then renamed). */
int sx_jobdir_spec_write(const char *dir, const char *type, const char *const *inputs,
                         int n_inputs, const char *reference, const struct json_t *options,
                         int threads, const sx_io_limits *limits,
                         const char *const *input_sha256, sx_status *st);

/* A job spec as read; every member owned, freed by sx_jobdir_spec_clear. */
typedef struct sx_jobdir_spec {
    char *type;
    char **inputs;
    int n_inputs;
    char *reference;        /* NULL = none */
    struct json_t *options; /* object: name -> string | [string, ...] */
    int threads;
    sx_io_limits limits;    /* fields job.json does not set are 0 (= the defaults) */
    char **input_sha256;    /* n_inputs lowercase 64-digit hex digests, or NULL */
} sx_jobdir_spec;
/* Read DIR/job.json: SX_EIO when unreadable, SX_EINVAL naming the field when malformed
 * (unknown fields are refused, as a misspelt field must not be ignored). */
int sx_jobdir_spec_read(const char *dir, sx_jobdir_spec *spec, sx_status *st);
void sx_jobdir_spec_clear(sx_jobdir_spec *spec);

/* An option value as the text the option parser takes: string as is, integer %lld, real
 * %.17g, boolean true/false; NULL for other JSON types (buf: scratch of >= 32 bytes). */
const char *sx_jobdir_option_text(const struct json_t *v, char *buf, size_t cap);

/* ---- refcells.json ---- */

#define SX_JOBDIR_FP_LEN 17 /* 16 hex digits and the terminator */
/* Where a projection's reference cells live (the format above). "" = not set. */
typedef struct sx_jobdir_refcells {
    int64_t cells;
    char latent[SX_JOBDIR_FP_LEN];
    char umap[SX_JOBDIR_FP_LEN];
} sx_jobdir_refcells;
/* Write / read DIR/refcells.json; read: SX_ENOTFOUND when absent, SX_EFORMAT when damaged. */
int sx_jobdir_refcells_write(const char *dir, const sx_jobdir_refcells *r, sx_status *st);
int sx_jobdir_refcells_read(const char *dir, sx_jobdir_refcells *r, sx_status *st);
/* The fingerprint of n cells: their names and rows of dim values (vd doubles, else vf
 * floats; row-major), hashed at up to 4096 evenly spaced rows, as 16 hex digits into out.
 * A float and the double holding it give the same fingerprint. */
void sx_jobdir_fingerprint(const char *const *names, int64_t n, const double *vd,
                           const float *vf, int dim, char out[SX_JOBDIR_FP_LEN]);

/* ---- status.json / progress.json / cancel ---- */

/* Write status.json: state word, process exit code, code (SX_OK: no error) and message. */
int sx_jobdir_status_write(const char *dir, const char *state, int exit_code, int code,
                           const char *msg, sx_status *st);
/* Read status.json: state word, the SX_E* code of its error (SX_OK if none), message.
 * SX_ENOTFOUND when absent or unreadable. */
int sx_jobdir_status_read(const char *dir, char state[16], int *code, char msg[512]);
int sx_jobdir_progress_write(const char *dir, const char *stage, double fraction,
                             const char *msg, sx_status *st);
int sx_jobdir_progress_read(const char *dir, char stage[32], double *fraction, char msg[256]);
/* 1 when DIR/cancel exists. */
int sx_jobdir_cancel_requested(const char *dir);

/* ---- result tables ---- */

typedef enum { SX_JOBDIR_F32 = 1, SX_JOBDIR_F64 = 2, SX_JOBDIR_STR = 3 } sx_jobdir_type;

/* One column to write, borrowed: the i-th value is f32[i * stride] / f64[i * stride] /
 * str[i] (NULL = empty); stride 0 means 1. csv_prec: see the format above. */
typedef struct sx_jobdir_col {
    const char *name;
    sx_jobdir_type type;
    int csv_prec;
    const float *f32;
    const double *f64;
    const char *const *str;
    int64_t stride;
} sx_jobdir_col;
#define SX_JOBDIR_FIXED 0x80 /* csv_prec flag: "%.Nf" */

/* Write a table to path (temporary name, then renamed). */
int sx_jobdir_table_write(const char *path, int64_t n_rows, const sx_jobdir_col *cols,
                          int n_cols, sx_status *st);

/* An open table (opaque; one reader, not shared between threads). */
typedef struct sx_jobdir_table sx_jobdir_table;
/* Open and check the header: SX_ENOTFOUND when absent, SX_EFORMAT when not a valid table. */
int sx_jobdir_table_open(const char *path, sx_jobdir_table **out, sx_status *st);
void sx_jobdir_table_close(sx_jobdir_table *t);
int64_t sx_jobdir_table_rows(const sx_jobdir_table *t);
int sx_jobdir_table_cols(const sx_jobdir_table *t);
const char *sx_jobdir_table_col_name(const sx_jobdir_table *t, int col);
sx_jobdir_type sx_jobdir_table_col_type(const sx_jobdir_table *t, int col);
/* Index of a column by name, -1 when absent. */
int sx_jobdir_table_find(const sx_jobdir_table *t, const char *name);
/* Rows [row0, row0 + n) of a numeric column, as doubles, into out[n]. */
int sx_jobdir_table_read_num(sx_jobdir_table *t, int col, int64_t row0, int64_t n, double *out,
                             sx_status *st);
/* Rows [row0, row0 + n) of a string column: *out = n NUL-terminated strings in one block
 * (the caller frees the block with free(*out)). */
int sx_jobdir_table_read_str(sx_jobdir_table *t, int col, int64_t row0, int64_t n, char ***out,
                             sx_status *st);
/* The whole table as delimited text: a header of the column names, then one line per row.
 * sep ',': CSV, strings quoted when they hold a comma, quote or line break (quote_all: always,
 * line breaks turned to spaces); sep '\t': TSV, tabs and line breaks turned to spaces.
 * Numbers with each column's csv precision. */
int sx_jobdir_table_text(sx_jobdir_table *t, char sep, int quote_all, FILE *out, sx_status *st);
/* The same for rows [row0, row0 + n_rows) only, the header line when `header` (a text made
 * of several tables: the reference's rows, then the job's). */
int sx_jobdir_table_text_rows(sx_jobdir_table *t, char sep, int quote_all, int64_t row0,
                              int64_t n_rows, int header, FILE *out, sx_status *st);
/* The download form of a known table (labels.csv, latent.csv, umap.tsv dialects); _rows:
 * of rows [row0, row0 + n_rows), the header line when `header`. */
int sx_jobdir_table_download_text(sx_jobdir_table *t, sx_jobdir_table_id id, FILE *out,
                                  sx_status *st);
int sx_jobdir_table_download_rows(sx_jobdir_table *t, sx_jobdir_table_id id, int64_t row0,
                                  int64_t n_rows, int header, FILE *out, sx_status *st);

#endif
