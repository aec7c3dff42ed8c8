/* srv_service_results — pages and downloads of a job's result tables (see the header). */
#include "srv_service_results.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct srv_results {
    sx_jobdir_table *t;
    int64_t size, mtime;
};

int srv_results_open(const char *jobdir, sx_jobdir_table_id which, srv_results **out,
                     sx_status *st)
{
    char path[4400];
    *out = NULL;
    const char *name = sx_jobdir_table_name(which);
    if (!name) return sx_status_set(st, SX_EINVAL, "no such result table");
    int rc = sx_jobdir_path(jobdir, name, path, sizeof path, st);
    if (rc) return rc;
    srv_results *r = calloc(1, sizeof *r);
    if (!r) return sx_status_set(st, SX_ENOMEM, "out of memory");
    struct stat sb;
    if ((rc = sx_jobdir_table_open(path, &r->t, st)) || stat(path, &sb) != 0) {
        free(r);
        return rc ? rc : sx_status_set(st, SX_ENOTFOUND, "the result table does not exist");
    }
    r->size = (int64_t)sb.st_size;
    r->mtime = (int64_t)sb.st_mtime;
    *out = r;
    return SX_OK;
}

void srv_results_close(srv_results *r)
{
    if (!r) return;
    sx_jobdir_table_close(r->t);
    free(r);
}

int64_t srv_results_rows(const srv_results *r) { return sx_jobdir_table_rows(r->t); }

void srv_results_stamp(const srv_results *r, int64_t *size, int64_t *mtime)
{
    *size = r->size;
    *mtime = r->mtime;
}

void srv_results_page_free(srv_results_page *p)
{
    for (int k = 0; p->cols && k < p->n_cols; k++) {
        free(p->cols[k].num);
        free(p->cols[k].str);
    }
    free(p->cols);
    memset(p, 0, sizeof *p);
}

enum { SCAN = 65536 };

/* Rows matching the filter: the (offset)th to the (offset + size)th, into rows[size];
 * *n of them, *more when another match follows. */
static int select_rows(srv_results *r, int fc, const char *value, int64_t offset, int size,
                       int64_t *rows, int64_t *n, int *more, sx_status *st)
{
    int64_t total = sx_jobdir_table_rows(r->t), seen = 0;
    *n = 0;
    *more = 0;
    for (int64_t r0 = 0; r0 < total; r0 += SCAN) {
        int64_t m = total - r0 < SCAN ? total - r0 : SCAN;
        char **v = NULL;
        int rc = sx_jobdir_table_read_str(r->t, fc, r0, m, &v, st);
        if (rc) return rc;
        for (int64_t i = 0; i < m; i++) {
            if (strcmp(v[i], value) || seen++ < offset) continue;
            if (*n == size) {
                *more = 1;
                break;
            }
            rows[(*n)++] = r0 + i;
        }
        free(v);
        if (*more) break;
    }
    return SX_OK;
}

/* Column k at the given rows (ascending): the span [rows[0], rows[n-1]] is read once. */
static int read_col(srv_results *r, int k, const int64_t *rows, int64_t n, srv_results_col *c,
                    sx_status *st)
{
    int64_t lo = n ? rows[0] : 0, span = n ? rows[n - 1] - lo + 1 : 0;
    c->name = sx_jobdir_table_col_name(r->t, k);
    c->is_str = sx_jobdir_table_col_type(r->t, k) == SX_JOBDIR_STR;
    if (c->is_str) {
        char **v = NULL;
        int rc = sx_jobdir_table_read_str(r->t, k, lo, span, &v, st);
        if (rc) return rc;
        for (int64_t i = 0; i < n; i++) v[i] = v[rows[i] - lo]; /* ascending: in place */
        c->str = v;
        return SX_OK;
    }
    double *v = malloc(((size_t)span + 1) * sizeof *v);
    if (!v) return sx_status_set(st, SX_ENOMEM, "out of memory");
    int rc = sx_jobdir_table_read_num(r->t, k, lo, span, v, st);
    for (int64_t i = 0; i < n; i++) v[i] = v[rows[i] - lo];
    c->num = v;
    return rc;
}

int srv_results_page_read(srv_results *r, int64_t offset, int size, const char *filter_col,
                          const char *filter_value, srv_results_page *p, sx_status *st)
{
    memset(p, 0, sizeof *p);
    if (offset < 0 || size < 0) return sx_status_set(st, SX_EINVAL, "a page needs offset >= 0, size >= 0");
    int64_t total = sx_jobdir_table_rows(r->t), n = 0;
    int64_t *rows = malloc(((size_t)size + 1) * sizeof *rows);
    int nc = sx_jobdir_table_cols(r->t), rc = SX_OK;
    p->cols = calloc((size_t)nc, sizeof *p->cols);
    if (!rows || !p->cols) rc = sx_status_set(st, SX_ENOMEM, "out of memory");
    else if (filter_col) {
        int fc = sx_jobdir_table_find(r->t, filter_col);
        if (fc < 0 || sx_jobdir_table_col_type(r->t, fc) != SX_JOBDIR_STR)
            rc = sx_status_set(st, SX_ENOTFOUND, "the result table has no column '%s'", filter_col);
        else
            rc = select_rows(r, fc, filter_value, offset, size, rows, &n, &p->more, st);
    } else {
        for (int64_t i = offset; i < total && n < size; i++) rows[n++] = i;
        p->more = offset + n < total;
    }
    p->n_cols = nc;
    p->n_rows = n;
    for (int k = 0; rc == SX_OK && k < nc; k++) rc = read_col(r, k, rows, n, &p->cols[k], st);
    free(rows);
    if (rc) srv_results_page_free(p);
    return rc;
}

/* ---- views: the reference's rows, then the query's ---- */

struct srv_results_view {
    srv_results *job, *ref;  /* ref: the reference's table (NULL: its rows are in job's) */
    srv_results_set set;
    int legacy;              /* no refcells.json: job's table filtered by its "set" column */
    int64_t r0, rn, q0, qn;  /* reference rows [r0, r0 + rn) of ref (else job), query rows */
    int64_t ref_cells;
};

int srv_results_needs_reference(const char *jobdir, sx_jobdir_table_id which)
{
    sx_jobdir_refcells rc;
    sx_status st;
    if ((which != SX_JOBDIR_UMAP && which != SX_JOBDIR_LATENT) ||
        sx_jobdir_refcells_read(jobdir, &rc, &st))
        return 0;
    return *(which == SX_JOBDIR_UMAP ? rc.umap : rc.latent) != 0;
}

static int ref_changed(sx_status *st)
{
    return sx_status_set(st, SX_ESTATE, "the reference this job mapped onto has changed since "
                         "(it was registered again)");
}

/* The reference's own table of `which` when it holds the cells the job left to it. */
static int open_ref_table(const char *refdir, sx_jobdir_table_id which, const char *fp,
                          int64_t cells, srv_results **out, sx_status *st)
{
    sx_jobdir_refcells now;
    if (!refdir) return sx_status_set(st, SX_EINTERNAL, "the job's reference folder is needed");
    int rc = sx_jobdir_refcells_read(refdir, &now, st);
    if (rc == SX_ENOTFOUND) return ref_changed(st);
    if (rc) return rc;
    if (strcmp(which == SX_JOBDIR_UMAP ? now.umap : now.latent, fp) || now.cells != cells)
        return ref_changed(st);
    rc = srv_results_open(refdir, which, out, st);
    if (rc == SX_ENOTFOUND || (rc == SX_OK && srv_results_rows(*out) != cells)) {
        srv_results_close(*out);
        *out = NULL;
        return ref_changed(st);
    }
    return rc;
}

int srv_results_view_open(const char *jobdir, const char *refdir, sx_jobdir_table_id which,
                          srv_results_set set, int64_t sample, srv_results_view **out,
                          sx_status *st)
{
    *out = NULL;
    srv_results_view *v = calloc(1, sizeof *v);
    if (!v) return sx_status_set(st, SX_ENOMEM, "out of memory");
    v->set = set;
    int rc = srv_results_open(jobdir, which, &v->job, st);
    sx_jobdir_refcells c;
    sx_status ign;
    if (rc == SX_OK && sx_jobdir_refcells_read(jobdir, &c, &ign) != SX_OK) v->legacy = 1;
    int64_t rows = rc == SX_OK ? srv_results_rows(v->job) : 0;
    if (rc == SX_OK && !v->legacy) {
        const char *fp = which == SX_JOBDIR_UMAP ? c.umap : c.latent;
        v->ref_cells = c.cells;
        if (*fp && set != SRV_SET_QUERY)
            rc = open_ref_table(refdir, which, fp, c.cells, &v->ref, st);
        if (*fp) v->rn = c.cells;                          /* in the reference's table */
        else if (which == SX_JOBDIR_UMAP) v->q0 = v->rn = c.cells; /* the job's own, first */
        /* else a latent table that holds no reference row */
        if (v->q0 > rows) rc = sx_status_set(st, SX_EFORMAT, "the job's tables disagree: run it again");
        v->qn = rows - v->q0;
        if (set == SRV_SET_QUERY) v->rn = 0;
        if (set == SRV_SET_REFERENCE) v->qn = 0;
        if (sample > 0 && v->rn > sample) v->rn = sample;
    }
    if (rc) {
        srv_results_view_close(v);
        return rc;
    }
    *out = v;
    return SX_OK;
}

void srv_results_view_close(srv_results_view *v)
{
    if (!v) return;
    srv_results_close(v->job);
    srv_results_close(v->ref);
    free(v);
}

int64_t srv_results_view_rows(const srv_results_view *v) { return v->rn + v->qn; }
int64_t srv_results_view_reference_rows(const srv_results_view *v) { return v->rn; }
int64_t srv_results_view_reference_cells(const srv_results_view *v) { return v->ref_cells; }
int srv_results_view_cols(const srv_results_view *v) { return sx_jobdir_table_cols(v->job->t); }

void srv_results_view_stamp(const srv_results_view *v, int64_t *size, int64_t *mtime)
{
    srv_results_stamp(v->job, size, mtime);
    if (!v->ref) return;
    int64_t s2, m2;
    srv_results_stamp(v->ref, &s2, &m2);
    *size += s2;
    if (m2 > *mtime) *mtime = m2;
}

static const char *set_word(srv_results_set s)
{
    return s == SRV_SET_QUERY ? "query" : s == SRV_SET_REFERENCE ? "reference" : NULL;
}

int srv_results_view_read(srv_results_view *v, int64_t off, int size, srv_results_page parts[2],
                          int *n_parts, int *more, sx_status *st)
{
    *n_parts = 0;
    *more = 0;
    if (v->legacy) {
        int rc = srv_results_page_read(v->job, off, size, set_word(v->set) ? "set" : NULL,
                                       set_word(v->set), &parts[0], st);
        if (rc == SX_OK) *n_parts = 1, *more = parts[0].more;
        return rc;
    }
    if (off < 0 || size < 0) return sx_status_set(st, SX_EINVAL, "a page needs offset >= 0, size >= 0");
    int64_t total = v->rn + v->qn, end = off + size < total ? off + size : total;
    int rc = SX_OK;
    if (off < v->rn) {
        int64_t n = (end < v->rn ? end : v->rn) - off;
        rc = srv_results_page_read(v->ref ? v->ref : v->job, v->r0 + off, (int)n, NULL, NULL,
                                   &parts[(*n_parts)++], st);
    }
    if (rc == SX_OK && end > v->rn) {
        int64_t q = off > v->rn ? off - v->rn : 0;
        rc = srv_results_page_read(v->job, v->q0 + q, (int)(end - v->rn - q), NULL, NULL,
                                   &parts[(*n_parts)++], st);
    }
    if (rc) {
        for (int k = 0; k < *n_parts; k++) srv_results_page_free(&parts[k]);
        *n_parts = 0;
        return rc;
    }
    *more = end < total;
    return SX_OK;
}

int srv_results_view_text(srv_results_view *v, sx_jobdir_table_id which, FILE *f, sx_status *st)
{
    if (v->legacy) return sx_jobdir_table_download_text(v->job->t, which, f, st);
    sx_jobdir_table *rt = v->ref ? v->ref->t : v->job->t;
    int rc = sx_jobdir_table_download_rows(rt, which, v->r0, v->rn, 1, f, st);
    if (rc == SX_OK)
        rc = sx_jobdir_table_download_rows(v->job->t, which, v->q0, v->qn, 0, f, st);
    return rc;
}

/* Write a job's download at path: a temporary name each (concurrent requests), renamed. */
static int make_download(const char *jobdir, const char *refdir, sx_jobdir_table_id which,
                         const char *path, sx_status *st)
{
    const char *name = sx_jobdir_table_download(which);
    srv_results_view *v = NULL;
    int rc = srv_results_view_open(jobdir, refdir, which, SRV_SET_ALL, 0, &v, st);
    if (rc) return rc;
    char tmp[4500];
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0) close(fd), unlink(tmp);
        srv_results_view_close(v);
        return sx_status_set(st, SX_EIO, "cannot write the job's %s", name);
    }
    fchmod(fd, 0644);
    rc = srv_results_view_text(v, which, f, st);
    if ((fclose(f) != 0 || rename(tmp, path) != 0) && rc == SX_OK)
        rc = sx_status_set(st, SX_EIO, "cannot write the job's %s (disk full?)", name);
    if (rc) unlink(tmp);
    srv_results_view_close(v);
    return rc;
}

int srv_results_download(const char *jobdir, const char *refdir, sx_jobdir_table_id which,
                         int make, char *path, size_t cap, sx_status *st)
{
    const char *name = sx_jobdir_table_download(which);
    if (!name) return sx_status_set(st, SX_EINVAL, "no such result table");
    int rc = sx_jobdir_path(jobdir, name, path, cap, st);
    if (rc || access(path, R_OK) == 0) return rc; /* made before (or by the pipeline) */
    if (!make) return sx_status_set(st, SX_ENOTFOUND, "%s is made on request", name);
    return make_download(jobdir, refdir, which, path, st);
}

int srv_results_qc(const char *jobdir, char **json, int64_t *size, int64_t *mtime,
                   sx_status *st)
{
    char path[4400];
    *json = NULL;
    int rc = sx_jobdir_path(jobdir, SX_JOBDIR_RESULT, path, sizeof path, st);
    if (rc) return rc;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return sx_status_set(st, SX_ENOTFOUND, "the job wrote no result.json");
    *size = (int64_t)sb.st_size;
    *mtime = (int64_t)sb.st_mtime;
    json_t *root = json_load_file(path, 0, NULL);
    if (!root) return sx_status_set(st, SX_EFORMAT, "the job's result.json cannot be read");
    json_t *qc = json_object_get(root, "qc");
    if (qc) *json = json_dumps(qc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!qc)
        return sx_status_set(st, SX_ENOTFOUND, "no QC report: projections write one (a project "
                             "job or /map), integrate and label_transfer jobs do not");
    return *json ? SX_OK : sx_status_set(st, SX_ENOMEM, "out of memory");
}
