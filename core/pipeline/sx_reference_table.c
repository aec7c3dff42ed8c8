/* sx_reference_table — the reference cells as result tables, written once per reference:
 * REFDIR/umap.sxt (the layout, the same columns as a job's umap table: cell, x, y, batch,
 * label, set = "reference"), REFDIR/latent.sxt (cell, latent_0.., in the reference's order)
 * and REFDIR/refcells.json (their fingerprints, sx_jobdir.h), so the daemon serves a
 * reference's map (catalog thumbnails, the browser's overlay, downloads) and the reference
 * rows of every job mapped onto it from files it pages, without holding the reference in
 * the HTTP process and without a copy per job.
 *
 * Rows are in a seeded random order: any prefix is a uniform sample of the cells, so "at
 * most N points" is the first N rows (a sample that keeps the layout's density), and the
 * full set is every row, paged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sx_alloc.h"
#include "sx_jobdir.h"
#include "sx_pipeline.h"
#include "sx_pipeline_internal.h"
#include "sx_pipeline_scalex.h"

/* The label a reference's map is coloured by: a column people name for cell types, else the
 * first categorical column that is not the batch or a clustering. */
static const sx_column *label_column(const sx_frame *obs)
{
    static const char *const named[] = {"cell_type", "celltype", "CellType", "cell_types",
                                        "Group", "labels", "label", "annotation"};
    for (size_t k = 0; k < sizeof named / sizeof *named; k++) {
        const sx_column *c = sx_frame_col(obs, named[k]);
        if (c && c->kind == SX_COL_CATEGORICAL) return c;
    }
    for (int c = 0; c < obs->n_cols; c++) {
        const sx_column *col = &obs->cols[c];
        if (col->kind == SX_COL_CATEGORICAL && strcmp(col->name, "batch") &&
            strcmp(col->name, "leiden") && strcmp(col->name, "domain"))
            return col;
    }
    return NULL;
}

/* 1 when DIR/umap.sxt exists and is not older than DIR/reference.h5 */
static int table_current(const char *table, const char *dir)
{
    char *h5 = sx_pl_join(dir, "reference.h5");
    struct stat a, b;
    int ok = h5 && stat(table, &a) == 0 && stat(h5, &b) == 0 &&
             (a.st_mtim.tv_sec > b.st_mtim.tv_sec ||
              (a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec >= b.st_mtim.tv_nsec));
    sx_free(h5);
    return ok;
}

/* Every row's text of a categorical column (NULL column: ""), in perm order. */
static const char **texts(const sx_column *c, const int64_t *perm, int64_t n)
{
    const char **t = sx_mallocarray((size_t)n + 1, sizeof *t);
    for (int64_t i = 0; t && i < n; i++) {
        int32_t code = c ? c->codes[perm[i]] : -1;
        t[i] = code >= 0 && code < c->n_categories ? c->categories[code] : "";
    }
    return t;
}

/* A table written under a name of its own, then renamed over path: two daemons may write
 * it at once. */
static int place_table(const char *path, int64_t n, const sx_jobdir_col *cols, int nc,
                       sx_status *st)
{
    char tmp[4400];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(tmp, sizeof tmp, "%s.%ld.%ld", path, (long)getpid(), (long)now.tv_nsec);
    int rc = sx_jobdir_table_write(tmp, n, cols, nc, st);
    if (rc == SX_OK && rename(tmp, path) != 0) {
        unlink(tmp);
        rc = sx_status_set(st, SX_EIO, "cannot place the reference's %s table",
                           strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
    }
    return rc;
}

/* REFDIR/umap.sxt: the layout, rows in a seeded random order */
static int umap_table(const sx_reference *r, const char *path, sx_status *st)
{
    int64_t n = r->n_cells;
    int64_t *perm = sx_mallocarray((size_t)n, sizeof *perm);
    float *xy = sx_mallocarray((size_t)n * 2, sizeof *xy);
    const char **names = sx_mallocarray((size_t)n, sizeof *names);
    const sx_column *bc = sx_frame_col(r->obs, "batch");
    const char **batch = NULL, **label = NULL, **set = NULL;
    int rc = SX_OK;
    if (perm && xy && names) {
        sx_scalex_permutation(perm, n, 0); /* seeded: the same sample on every load */
        for (int64_t i = 0; i < n; i++) {
            xy[2 * i] = r->umap[2 * perm[i]];
            xy[2 * i + 1] = r->umap[2 * perm[i] + 1];
            names[i] = r->obs->index[perm[i]];
        }
        batch = texts(bc && bc->kind == SX_COL_CATEGORICAL ? bc : NULL, perm, n);
        label = texts(label_column(r->obs), perm, n);
        set = sx_mallocarray((size_t)n, sizeof *set);
        for (int64_t i = 0; set && i < n; i++) set[i] = "reference";
    }
    if (!perm || !xy || !names || !batch || !label || !set)
        rc = sx_status_set(st, SX_ENOMEM, "out of memory writing the reference's map table");
    if (rc == SX_OK) {
        sx_jobdir_col cols[6] = {
            {.name = "cell", .type = SX_JOBDIR_STR, .str = names},
            {.name = "x", .type = SX_JOBDIR_F32, .csv_prec = 7, .f32 = xy, .stride = 2},
            {.name = "y", .type = SX_JOBDIR_F32, .csv_prec = 7, .f32 = xy + 1, .stride = 2},
            {.name = "batch", .type = SX_JOBDIR_STR, .str = batch},
            {.name = "label", .type = SX_JOBDIR_STR, .str = label},
            {.name = "set", .type = SX_JOBDIR_STR, .str = set}};
        rc = place_table(path, n, cols, 6, st);
    }
    sx_free(perm), sx_free(xy), sx_free((void *)names);
    sx_free((void *)batch), sx_free((void *)label), sx_free((void *)set);
    return rc;
}

/* REFDIR/latent.sxt: cell, latent_0.. (float64, as a job's latent table), reference order */
static int latent_table(const sx_reference *r, const char *path, sx_status *st)
{
    int nc = r->dim + 1;
    sx_jobdir_col *cols = sx_calloc((size_t)nc, sizeof *cols);
    char (*cn)[32] = sx_calloc((size_t)nc, sizeof *cn);
    int rc = cols && cn ? SX_OK : sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int k = 0; rc == SX_OK && k < nc; k++) {
        snprintf(cn[k], sizeof cn[k], k ? "latent_%d" : "cell", k - 1);
        cols[k] = k ? (sx_jobdir_col){.name = cn[k], .type = SX_JOBDIR_F64, .csv_prec = 9,
                                      .f64 = r->latent + (k - 1), .stride = r->dim}
                    : (sx_jobdir_col){.name = cn[0], .type = SX_JOBDIR_STR,
                                      .str = (const char *const *)r->obs->index};
    }
    if (rc == SX_OK) rc = place_table(path, r->n_cells, cols, nc, st);
    sx_free(cols);
    sx_free(cn);
    return rc;
}

int sx_reference_tables(const sx_reference *r, const char *dir, sx_status *st)
{
    if (r->n_cells < 1 || r->dim < 1 || r->dim >= SX_JOBDIR_MAX_COLS) return SX_OK;
    char *um = sx_pl_join(dir, sx_jobdir_table_name(SX_JOBDIR_UMAP));
    char *lat = sx_pl_join(dir, sx_jobdir_table_name(SX_JOBDIR_LATENT));
    char *rcj = sx_pl_join(dir, SX_JOBDIR_REFCELLS);
    int rc = um && lat && rcj ? SX_OK : sx_status_set(st, SX_ENOMEM, "out of memory");
    /* refcells.json is written last: present and current = every table is */
    if (rc == SX_OK && !table_current(rcj, dir)) {
        if (r->umap) rc = umap_table(r, um, st);
        if (rc == SX_OK) rc = latent_table(r, lat, st);
        sx_jobdir_refcells c = {.cells = r->n_cells};
        const char *const *names = (const char *const *)r->obs->index;
        sx_jobdir_fingerprint(names, r->n_cells, r->latent, NULL, r->dim, c.latent);
        if (r->umap) sx_jobdir_fingerprint(names, r->n_cells, NULL, r->umap, 2, c.umap);
        if (rc == SX_OK) rc = sx_jobdir_refcells_write(dir, &c, st);
    }
    sx_free(um), sx_free(lat), sx_free(rcj);
    return rc;
}
