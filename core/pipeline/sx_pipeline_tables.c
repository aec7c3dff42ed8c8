/* sx_pipeline_tables — the result tables of a job (sx_jobdir.h), made once from memory at
 * the end of a run: labels (cell, label, confidence, mapping_score, top3, then the same four
 * for each further label column), latent (cell, latent_0..), umap (cell,
 * x, y, batch, label, set). The daemon pages them without reading adata.h5ad again.
 * A projection's reference cells stay in the reference's own tables (refcells.json says
 * so); adata.h5ad still holds them (SCALEX's output: reference and query). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_jobdir.h"
#include "sx_pipeline_internal.h"
#include "sx_pipeline_scalex.h"

/* Text of every row of a column (NULL column: all ""). *own holds the copies made for
 * values printed into a buffer; free both with texts_free. */
static const char **col_texts(const sx_column *c, int64_t n, char ***own, sx_status *st)
{
    const char **t = sx_calloc((size_t)n + 1, sizeof *t);
    *own = sx_calloc((size_t)n + 1, sizeof **own);
    if (!t || !*own) {
        sx_free(t);
        sx_free(*own);
        *own = NULL;
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        char buf[64];
        const char *x = c ? sx_column_text(c, i, buf, sizeof buf) : "";
        if (x == buf) x = (*own)[i] = sx_strdup(buf);
        t[i] = x ? x : "";
    }
    return t;
}

static void texts_free(const char **t, char **own, int64_t n)
{
    for (int64_t i = 0; own && i < n; i++) sx_free(own[i]);
    sx_free(own);
    sx_free((void *)t);
}

static int table_path(const char *outdir, sx_jobdir_table_id id, char path[4400], sx_status *st)
{
    return sx_jobdir_path(outdir, sx_jobdir_table_name(id), path, 4400, st);
}

/* The download text of a table next to it (labels.csv for the command line). */
static int write_download(const char *outdir, sx_jobdir_table_id id, sx_status *st)
{
    char tp[4400], path[4400], tmp[4500];
    int rc = table_path(outdir, id, tp, st);
    if (!rc) rc = sx_jobdir_path(outdir, sx_jobdir_table_download(id), path, sizeof path, st);
    if (rc) return rc;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    sx_jobdir_table *t = NULL;
    if ((rc = sx_jobdir_table_open(tp, &t, st))) return rc;
    FILE *f = fopen(tmp, "w");
    if (!f) rc = sx_status_set(st, SX_EIO, "cannot write '%s'", tmp);
    else {
        rc = sx_jobdir_table_download_text(t, id, f, st);
        if ((fclose(f) != 0 || rename(tmp, path) != 0) && rc == SX_OK)
            rc = sx_status_set(st, SX_EIO, "cannot write '%s' (disk full?)", path);
        if (rc) remove(tmp);
    }
    sx_jobdir_table_close(t);
    return rc;
}

/* "A:0.91;B:0.05;C:0.04": the three most probable classes of each cell (fewer when there
 * are fewer classes), NULL on out of memory; free with texts_free(t, own, n). */
static const char **top3_texts(const sx_transfer_result *tr, char ***own)
{
    int64_t n = tr->n_query;
    int nc = tr->n_classes;
    const char **t = sx_calloc((size_t)n + 1, sizeof *t);
    *own = sx_calloc((size_t)n + 1, sizeof **own);
    for (int64_t i = 0; t && *own && i < n; i++) {
        const double *p = tr->prob + i * nc;
        int top[3] = {-1, -1, -1};
        for (int c = 0; c < nc; c++)
            for (int r = 0; r < 3; r++) {
                if (top[r] >= 0 && p[c] <= p[top[r]]) continue;
                for (int s = 2; s > r; s--) top[s] = top[s - 1];
                top[r] = c;
                break;
            }
        sx_sb b = {0};
        for (int r = 0; r < 3 && top[r] >= 0; r++)
            sx_sb_putf(&b, "%s%s:%.4g", r ? ";" : "", tr->classes[top[r]], p[top[r]]);
        t[i] = (*own)[i] = b.s ? b.s : sx_strdup("");
        if (!t[i]) break;
    }
    return t;
}

int sx_pl_write_labels(const char *outdir, const char *const *cells,
                       const sx_transfer_result *const *tr, const char *const *names, int n_tr,
                       int csv, sx_status *st)
{
    int64_t n = tr[0]->n_query;
    int nc = 1 + 4 * n_tr, rc = SX_OK;
    sx_jobdir_col *cols = sx_calloc((size_t)nc, sizeof *cols);
    char (*cn)[300] = sx_calloc((size_t)nc, sizeof *cn);
    const char **lab[8] = {0}, **top[8] = {0};
    char **own[8] = {0};
    if (!cols || !cn || n_tr > 8) rc = sx_status_set(st, SX_ENOMEM, "out of memory");
    if (rc == SX_OK) cols[0] = (sx_jobdir_col){.name = "cell", .type = SX_JOBDIR_STR, .str = cells};
    for (int l = 0; rc == SX_OK && l < n_tr; l++) {
        lab[l] = sx_calloc((size_t)n + 1, sizeof *lab[l]);
        top[l] = top3_texts(tr[l], &own[l]);
        if (!lab[l] || !top[l]) rc = sx_status_set(st, SX_ENOMEM, "out of memory");
        for (int64_t i = 0; rc == SX_OK && i < n; i++) lab[l][i] = sx_transfer_label(tr[l], i);
        /* the first label column keeps the plain names (cell,label,confidence,...) */
        const char *sfx[4] = {"", "_confidence", "_mapping_score", "_top3"};
        const char *plain[4] = {"label", "confidence", "mapping_score", "top3"};
        for (int k = 0; k < 4; k++) {
            if (l == 0) snprintf(cn[1 + k], sizeof cn[0], "%s", plain[k]);
            else snprintf(cn[1 + 4 * l + k], sizeof cn[0], "%s%s", names[l], sfx[k]);
        }
        sx_jobdir_col *c = cols + 1 + 4 * l;
        c[0] = (sx_jobdir_col){.name = cn[1 + 4 * l], .type = SX_JOBDIR_STR, .str = lab[l]};
        c[1] = (sx_jobdir_col){.name = cn[2 + 4 * l], .type = SX_JOBDIR_F64,
                               .csv_prec = SX_JOBDIR_FIXED | 4, .f64 = tr[l]->confidence};
        c[2] = (sx_jobdir_col){.name = cn[3 + 4 * l], .type = SX_JOBDIR_F64,
                               .csv_prec = SX_JOBDIR_FIXED | 4, .f64 = tr[l]->mapping_score};
        c[3] = (sx_jobdir_col){.name = cn[4 + 4 * l], .type = SX_JOBDIR_STR, .str = top[l]};
    }
    char path[4400];
    if (!rc) rc = table_path(outdir, SX_JOBDIR_LABELS, path, st);
    if (!rc) rc = sx_jobdir_table_write(path, n, cols, nc, st);
    for (int l = 0; l < 8; l++) {
        sx_free((void *)lab[l]);
        texts_free(top[l], own[l], n);
    }
    sx_free(cols);
    sx_free(cn);
    return rc || !csv ? rc : write_download(outdir, SX_JOBDIR_LABELS, st);
}

/* The rows of a projection's output that are the reference's cells: the leading n_ref rows
 * of obs "projection" = "reference" (sx_pl_project puts them first); 0 when none. */
static int64_t reference_rows(const sx_dataset *d)
{
    const sx_column *p = sx_frame_col(d->obs, "projection");
    int64_t n = sx_dataset_n_obs(d), k = 0;
    if (!p || p->kind != SX_COL_CATEGORICAL) return 0;
    int32_t ref = -1;
    for (int c = 0; c < p->n_categories; c++)
        if (!strcmp(p->categories[c], "reference")) ref = c;
    while (k < n && ref >= 0 && p->codes[k] == ref) k++;
    for (int64_t i = k; i < n; i++)
        if (p->codes[i] == ref) return 0; /* not leading: keep every row in the tables */
    return k;
}

/* 1 when the output's reference cells sit on the reference's own layout (the query was
 * placed on it: uns scalexd/umap = "fixed"), so their coordinates are the reference's. */
static int fixed_layout(const sx_dataset *d)
{
    const sx_uns *u = sx_uns_path(d->uns, "scalexd/umap");
    return u && u->kind == SX_UNS_STRING && u->str && !strcmp(u->str, "fixed");
}

/* latent.sxt: cell, latent_0..latent_{Z-1} from obsm "latent" of rows [r0, n) (none:
 * nothing written) */
static int write_latent(const char *outdir, const sx_dataset *d, int64_t r0, sx_status *st)
{
    const sx_dense *z = sx_dataset_obsm(d, "latent");
    if (!z || z->n_rows != sx_dataset_n_obs(d) || z->n_cols < 1 || z->n_cols >= SX_JOBDIR_MAX_COLS)
        return SX_OK;
    int nc = (int)z->n_cols + 1;
    sx_jobdir_col *cols = sx_calloc((size_t)nc, sizeof *cols);
    char (*names)[32] = sx_calloc((size_t)nc, sizeof *names);
    int rc = SX_OK;
    if (!cols || !names) rc = sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int k = 0; rc == SX_OK && k < nc; k++) {
        if (k == 0) {
            cols[0] = (sx_jobdir_col){.name = "cell", .type = SX_JOBDIR_STR,
                                      .str = (const char *const *)d->obs->index + r0};
            continue;
        }
        snprintf(names[k], sizeof names[k], "latent_%d", k - 1);
        cols[k] = (sx_jobdir_col){.name = names[k], .type = SX_JOBDIR_F64, .csv_prec = 9,
                                  .f64 = z->v + r0 * z->n_cols + (k - 1), .stride = z->n_cols};
    }
    char path[4400];
    if (rc == SX_OK) rc = table_path(outdir, SX_JOBDIR_LATENT, path, st);
    if (rc == SX_OK) rc = sx_jobdir_table_write(path, z->n_rows - r0, cols, nc, st);
    sx_free(cols);
    sx_free(names);
    return rc;
}
/* The label a UMAP point is coloured by: the transferred label, else the cell's own label
 * (reference cells), else its Leiden cluster. */
static const sx_column *first_col(const sx_frame *f, const char *const *names, int n)
{
    for (int k = 0; k < n; k++) {
        const sx_column *c = names[k] ? sx_frame_col(f, names[k]) : NULL;
        if (c) return c;
    }
    return NULL;
}

/* The rows umap.sxt holds: the query's (r0 = n_ref: the reference's cells are the
 * reference's own table), or every row with the n_ref reference rows first in the seeded
 * random order of a reference's table (any prefix a uniform sample). *n_out of them. */
static int64_t *umap_rows(int64_t n, int64_t n_ref, int64_t r0, int64_t *n_out)
{
    int64_t *rows = sx_mallocarray((size_t)(n - r0) + 1, sizeof *rows);
    if (!rows) return NULL;
    if (r0 == 0 && n_ref > 0) sx_scalex_permutation(rows, n_ref, 0);
    for (int64_t i = r0 == 0 ? n_ref : r0; i < n; i++) rows[i - r0] = i;
    *n_out = n - r0;
    return rows;
}

/* umap.sxt: cell, x, y (float32), batch, label, set ("reference" | "query") */
static int write_umap(const char *outdir, const sx_dataset *d, const char *label, int64_t n_ref,
                      int64_t r0, sx_status *st)
{
    const sx_dense *um = sx_dataset_obsm(d, "X_umap");
    int64_t n = sx_dataset_n_obs(d), m = 0;
    if (!um || um->n_cols < 2 || um->n_rows != n) return SX_OK; /* --ignore_umap */
    char lt[300];
    sx_jobdir_transfer_col(label, 0, lt, sizeof lt);
    const char *lnames[] = {label ? lt : NULL, label ? label : "leiden", "leiden"};
    const char *onames[] = {label ? label : "leiden"};
    const char *bnames[] = {"batch"}, *snames[] = {"projection"};
    char **own[4] = {0};
    const char **t[4] = {0}, **sel[5] = {0};
    const sx_column *src[4] = {first_col(d->obs, bnames, 1), first_col(d->obs, lnames, 3),
                               first_col(d->obs, onames, 1), first_col(d->obs, snames, 1)};
    int64_t *rows = umap_rows(n, n_ref, r0, &m);
    float *xy = sx_mallocarray((size_t)m * 2 + 1, sizeof *xy);
    int rc = xy && rows ? SX_OK : sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int k = 0; rc == SX_OK && k < 4; k++)
        if (!(t[k] = col_texts(src[k], n, &own[k], st))) rc = st->code;
    for (int k = 0; rc == SX_OK && k < 5; k++)
        if (!(sel[k] = sx_mallocarray((size_t)m + 1, sizeof *sel[k])))
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int64_t j = 0; rc == SX_OK && j < m; j++) {
        int64_t i = rows[j];
        xy[2 * j] = (float)um->v[i * um->n_cols];
        xy[2 * j + 1] = (float)um->v[i * um->n_cols + 1];
        sel[0][j] = d->obs->index[i];
        sel[1][j] = t[0][i];
        sel[2][j] = *t[1][i] ? t[1][i] : t[2][i];
        sel[3][j] = !strcmp(t[3][i], "reference") ? "reference" : "query";
    }
    sx_jobdir_col cols[6] = {
        {.name = "cell", .type = SX_JOBDIR_STR, .str = sel[0]},
        {.name = "x", .type = SX_JOBDIR_F32, .csv_prec = 7, .f32 = xy, .stride = 2},
        {.name = "y", .type = SX_JOBDIR_F32, .csv_prec = 7, .f32 = xy ? xy + 1 : NULL, .stride = 2},
        {.name = "batch", .type = SX_JOBDIR_STR, .str = sel[1]},
        {.name = "label", .type = SX_JOBDIR_STR, .str = sel[2]},
        {.name = "set", .type = SX_JOBDIR_STR, .str = sel[3]}};
    char path[4400];
    if (rc == SX_OK) rc = table_path(outdir, SX_JOBDIR_UMAP, path, st);
    if (rc == SX_OK) rc = sx_jobdir_table_write(path, m, cols, 6, st);
    for (int k = 0; k < 4; k++) texts_free(t[k], own[k], n);
    for (int k = 0; k < 5; k++) sx_free((void *)sel[k]);
    sx_free(rows);
    sx_free(xy);
    return rc;
}

/* refcells.json of a projection: the fingerprints of the reference cells its tables left
 * to the reference's own (latent always; the layout when the query was placed on it), from
 * the output's first n_ref rows or, when the output left them out, from the reference. A
 * float and the double holding it fingerprint alike, so both give the same file. */
static int write_refcells(const char *outdir, const sx_dataset *d, int64_t n_ref, int fixed,
                          const sx_pl_refrows *left, sx_status *st)
{
    const sx_dense *z = sx_dataset_obsm(d, "latent"), *um = sx_dataset_obsm(d, "X_umap");
    sx_pl_refrows r = {n_ref, (const char *const *)d->obs->index, z ? z->v : NULL,
                       z ? (int)z->n_cols : 0, NULL};
    const double *umd = fixed && um && um->n_cols == 2 ? um->v : NULL;
    if (left) {
        r = *left;
        umd = NULL;
    }
    sx_jobdir_refcells rc = {.cells = r.n};
    if (r.latent) sx_jobdir_fingerprint(r.names, r.n, r.latent, NULL, r.dim, rc.latent);
    if (fixed && (umd || r.umap)) sx_jobdir_fingerprint(r.names, r.n, umd, r.umap, 2, rc.umap);
    return sx_jobdir_refcells_write(outdir, &rc, st);
}

int sx_pl_write_tables(const char *outdir, const sx_dataset *d, const char *label,
                       const sx_pl_refrows *left, sx_status *st)
{
    /* the reference's cells (a projection's first rows) are written by the reference's
     * tables once (sx_reference_tables), not by each job: a job's tables hold its query, and
     * the reference's rows only where they are its own (a layout computed with the query).
     * left: the output holds no reference cells at all (a map's adata.h5ad), the query was
     * placed among these. */
    int64_t n_ref = reference_rows(d);
    if (n_ref > 0) left = NULL; /* the output's own rows are the reference's cells */
    const sx_dense *um = sx_dataset_obsm(d, "X_umap");
    int fixed = (n_ref > 0 || left) && fixed_layout(d) && um && um->n_cols == 2;
    int rc = write_latent(outdir, d, n_ref, st);
    if (rc == SX_OK) rc = write_umap(outdir, d, label, n_ref, fixed ? n_ref : 0, st);
    return rc || (n_ref == 0 && !left) ? rc : write_refcells(outdir, d, n_ref, fixed, left, st);
}
