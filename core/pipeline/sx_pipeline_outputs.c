/* sx_pipeline_outputs — what a run leaves in its output folder besides the result tables:
 * adata.h5ad with scanpy's records and the scalexd provenance, the UMAP figures, and
 * result.json (written last, by sx_pl_finish). Figures drawn after the run, on request:
 * sx_pipeline_figures.c. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sx_alloc.h"
#include "sx_h5ad_writer.h"
#include "sx_io.h"
#include "sx_jobdir.h"
#include "sx_metrics.h"
#include "sx_pipeline_ctx.h"
#include "sx_pipeline_qc.h"
#include "sx_plot.h"

/* the last component of a path ("a/b/c.h5ad" -> "c.h5ad", "a/ref/" -> "ref") */
static const char *base_name(const char *p)
{
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') n--;
    const char *b = p + n;
    while (b > p && b[-1] != '/') b--;
    return b;
}

const char *const sx_pl_label_like[] = {"celltype", "cell_type", NULL};

/* uns: scanpy's neighbors/umap/leiden parameter records + scalexd provenance. */
void sx_pl_uns_provenance(sx_pl_ctx *c, sx_uns *root, double a, double b, int with_graph)
{
    if (with_graph) {
        sx_uns *nb = sx_uns_set_dict(root, "neighbors");
        if (nb) {
            sx_uns_set_string(nb, "connectivities_key", "connectivities");
            sx_uns_set_string(nb, "distances_key", "distances");
            sx_uns *p = sx_uns_set_dict(nb, "params");
            if (p) {
                sx_uns_set_int(p, "n_neighbors", 30);
                sx_uns_set_string(p, "method", "umap");
                sx_uns_set_int(p, "random_state", 0);
                sx_uns_set_string(p, "metric", "euclidean");
                sx_uns_set_string(p, "use_rep", "latent");
            }
        }
        sx_uns *um = sx_uns_set_dict(root, "umap");
        sx_uns *up = um ? sx_uns_set_dict(um, "params") : NULL;
        if (up) {
            sx_uns_set_float(up, "a", a);
            sx_uns_set_float(up, "b", b);
        }
        sx_uns *ld = sx_uns_set_dict(root, "leiden");
        sx_uns *lp = ld ? sx_uns_set_dict(ld, "params") : NULL;
        if (lp) {
            sx_uns_set_int(lp, "resolution", 1);
            sx_uns_set_int(lp, "random_state", 0);
            sx_uns_set_int(lp, "n_iterations", -1);
        }
    }
    sx_uns *pv = sx_uns_set_dict(root, "scalexd");
    if (!pv) return;
    sx_uns_set_string(pv, "version", SX_VERSION);
    sx_uns_set_string(pv, "job", sx_job_type_name(c->job->type));
    sx_uns_set_int(pv, "threads", c->set.threads);
    sx_uns *set = sx_uns_set_dict(pv, "settings");
    int ns;
    const sx_popt_spec *sp = sx_pipeline_option_specs(&ns);
    for (int i = 0; set && i < ns; i++) {
        if (!(sp[i].jobs & (unsigned)c->job->type)) continue;
        if (sp[i].type == SX_POPT_LIST) {
            const char *const *v;
            int nv = sx_pipeline_opts_list(c->o, sp[i].name, &v);
            if (nv) sx_uns_set_strings(set, sp[i].name, v, nv);
            continue;
        }
        const char *v = sx_pipeline_opts_str(c->o, sp[i].name);
        if (v) sx_uns_set_string(set, sp[i].name, v);
    }
    /* inputs by file name and sha256, never by path: the file travels (a download from a
     * shared server must not show that server's folders), and the digest identifies it */
    if (c->set.n_inputs > 0) {
        const char **nm = sx_calloc((size_t)c->set.n_inputs, sizeof *nm);
        const char **sh = sx_calloc((size_t)c->set.n_inputs, sizeof *sh);
        if (nm && sh) {
            for (int i = 0; i < c->set.n_inputs; i++) {
                nm[i] = base_name(c->set.inputs[i]);
                sh[i] = c->sha[i];
            }
            sx_uns_set_strings(pv, "inputs", nm, c->set.n_inputs);
            sx_uns_set_strings(pv, "inputs_sha256", sh, c->set.n_inputs);
        }
        sx_free(nm);
        sx_free(sh);
    }
    if (c->job->reference) sx_uns_set_string(pv, "reference", base_name(c->job->reference));
}

int sx_pl_on_request(const sx_pl_ctx *c)
{
    return c->job->type == SX_JOB_PROJECT && !c->set.plots;
}

/* adata.h5ad's write options */
static sx_write_opts adata_opts(const sx_pl_ctx *c)
{
    /* deflated on the job's threads; a map whose figures are drawn on request (the
     * daemon's /map) is an answer to a request: the fast strategy there */
    return (sx_write_opts){.compress = 4, .gzip = 1, .threads = sx_pl_threads(c),
                           .fast = sx_pl_on_request(c)};
}

int sx_pl_write_adata(sx_pl_ctx *c, const sx_dataset *d, sx_status *st)
{
    char *p = sx_pl_out_path(c, "adata.h5ad");
    if (!p) return sx_status_set(st, SX_ENOMEM, "out of memory");
    sx_write_opts wo = adata_opts(c);
    int rc = sx_h5ad_write(p, d, &wo, st);
    sx_free(p);
    if (rc == SX_OK) sx_pl_file_out(c, "adata.h5ad");
    return rc;
}

int sx_pl_open_adata(sx_pl_ctx *c, sx_h5ad_writer **h, sx_status *st)
{
    *h = NULL;
    char *p = sx_pl_out_path(c, "adata.h5ad");
    if (!p) return sx_status_set(st, SX_ENOMEM, "out of memory");
    sx_write_opts wo = adata_opts(c);
    int rc = sx_h5ad_writer_open(p, &wo, h, st);
    sx_free(p);
    return rc;
}

int sx_pl_finish_adata(sx_pl_ctx *c, sx_h5ad_writer *h, const sx_dataset *d, sx_status *st)
{
    int rc = sx_h5ad_writer_finish(h, d, st);
    if (rc == SX_OK) sx_pl_file_out(c, "adata.h5ad");
    return rc;
}

/* Category codes of a label column: categorical columns as they are; string, integer and
 * boolean columns (e.g. Seurat's integer seurat_clusters) encoded by sorted distinct text.
 * Float columns are not labels (NULL). *own_codes / *own_cats are set when new memory was
 * made (free with sx_free / sx_labels_free); NULL return with st clear = not a label column. */
const int32_t *sx_pl_label_codes(const sx_column *col, int64_t n, int32_t **own_codes,
                                 char ***own_cats, int *n_cats, const char *const **cats,
                                 sx_status *st)
{
    *own_codes = NULL;
    *own_cats = NULL;
    if (col->kind == SX_COL_CATEGORICAL) {
        *n_cats = col->n_categories;
        *cats = (const char *const *)col->categories;
        return col->codes;
    }
    if (col->kind == SX_COL_FLOAT) return NULL;
    const char **t = sx_calloc((size_t)n + 1, sizeof *t);
    char **own = sx_calloc((size_t)n + 1, sizeof *own);
    int32_t *codes = sx_mallocarray((size_t)n + 1, sizeof *codes);
    int ok = t && own && codes;
    for (int64_t i = 0; ok && i < n; i++) {
        char buf[64];
        const char *x = sx_column_text(col, i, buf, sizeof buf);
        if (x == buf) x = own[i] = sx_strdup(buf);
        t[i] = x ? x : "";
        ok = x != NULL;
    }
    if (!ok) sx_status_set(st, SX_ENOMEM, "out of memory");
    else if (sx_labels_encode(t, n, codes, own_cats, n_cats, st) != SX_OK) ok = 0;
    for (int64_t i = 0; own && i < n; i++) sx_free(own[i]);
    sx_free(own);
    sx_free(t);
    if (!ok) {
        sx_free(codes);
        return NULL;
    }
    *own_codes = codes;
    *cats = (const char *const *)*own_cats;
    return codes;
}

/* UMAP figure in PNG and PDF: one panel per named categorical column present in obs. */
int sx_pl_plot_umap(sx_pl_ctx *c, const sx_dataset *d, const float *umap32, const char *const *cols,
                     int n_cols, const uint8_t *highlight, const char *title, sx_status *st)
{
    int64_t n = sx_dataset_n_obs(d);
    double *xy = sx_mallocarray((size_t)n * 2, sizeof *xy);
    sx_plot_panel pn[8];
    int32_t *own_codes[8] = {0};
    char **own_cats[8] = {0};
    int own_n[8] = {0};
    int np = 0;
    int rc = SX_OK;
    if (!xy) return sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int64_t i = 0; i < 2 * n; i++) xy[i] = umap32[i];
    for (int k = 0; k < n_cols && np < 8; k++) {
        if (!cols[k]) continue;
        int dup = 0;
        for (int j = 0; j < np; j++) dup |= strcmp(pn[j].title, cols[k]) == 0;
        sx_column *col = sx_frame_col(d->obs, cols[k]);
        if (dup || !col) continue;
        memset(&pn[np], 0, sizeof pn[np]);
        pn[np].codes = sx_pl_label_codes(col, n, &own_codes[np], &own_cats[np], &own_n[np],
                                   &pn[np].categories, st);
        if (!pn[np].codes) {
            if (st->code) {
                rc = st->code;
                goto out;
            }
            continue;
        }
        pn[np].title = col->name;
        pn[np].n_categories = col->kind == SX_COL_CATEGORICAL ? col->n_categories : own_n[np];
        if (highlight && strcmp(cols[k], "projection") != 0) {
            pn[np].highlight = highlight;
            pn[np].grey_label = "reference";
        }
        np++;
    }
    if (np == 0) goto out;
    sx_plot_opts po = {.title = title};
    const char *names[2] = {"umap.png", "umap.pdf"};
    for (int f = 0; f < 2 && rc == SX_OK; f++) {
        char *p = sx_pl_out_path(c, names[f]);
        if (!p) {
            rc = sx_status_set(st, SX_ENOMEM, "out of memory");
            break;
        }
        rc = sx_plot_embedding(p, xy, n, pn, np, &po, st);
        sx_free(p);
        if (rc == SX_OK) sx_pl_file_out(c, names[f]);
    }
out:
    for (int k = 0; k < 8; k++) {
        sx_free(own_codes[k]);
        if (own_cats[k]) sx_labels_free(own_cats[k], own_n[k]);
    }
    sx_free(xy);
    return rc;
}

static int write_result_json(sx_pl_ctx *c, const sx_dataset *d, int64_t n_query, sx_status *st)
{
    sx_sb b = {0};
    sx_sb_puts(&b, "{\n  \"job\": ");
    sx_sb_json_str(&b, sx_job_type_name(c->job->type));
    sx_sb_puts(&b, ",\n  \"version\": ");
    sx_sb_json_str(&b, SX_VERSION);
    sx_sb_putf(&b, ",\n  \"n_obs\": %lld,\n  \"n_vars\": %lld", (long long)sx_dataset_n_obs(d),
               (long long)sx_dataset_n_vars(d));
    if (n_query >= 0) sx_sb_putf(&b, ",\n  \"n_query\": %lld", (long long)n_query);
    sx_sb_puts(&b, ",\n  \"metrics\": {");
    if (c->metrics.s) sx_sb_puts(&b, c->metrics.s);
    sx_sb_puts(&b, "},\n  \"files\": [");
    if (c->files.s) sx_sb_puts(&b, c->files.s);
    sx_sb_puts(&b, ", \"" SX_JOBDIR_LOG "\", \"" SX_JOBDIR_RESULT "\"],\n  \"timings\": {");
    for (int i = 0; i < c->n_stages; i++) {
        if (i) sx_sb_puts(&b, ", ");
        sx_sb_json_str(&b, c->stage_name[i]);
        sx_sb_putf(&b, ": %.3f", c->stage_secs[i]);
    }
    sx_sb_putf(&b, "},\n  \"seconds\": %.3f", sx_pl_now() - c->t0);
    if (c->qc.s) sx_sb_putf(&b, ",\n  \"qc\": %s", c->qc.s);
    sx_sb_puts(&b, "\n}\n");
    int rc;
    if (b.oom) rc = sx_status_set(st, SX_ENOMEM, "out of memory");
    else {
        char *p = sx_pl_out_path(c, SX_JOBDIR_RESULT);
        rc = p ? sx_pl_write_file(p, b.s, b.len, st) : sx_status_set(st, SX_ENOMEM, "oom");
        sx_free(p);
    }
    sx_sb_free(&b);
    return rc;
}

int sx_pl_finish(sx_pl_ctx *c, const sx_dataset *d, int64_t n_query, sx_status *st)
{
    char first[256];
    int rc = sx_pl_write_tables(c->outdir, d, sx_pl_first_label(c->set.label, first, sizeof first),
                                c->left_ref.n > 0 ? &c->left_ref : NULL, st);
    if (rc != SX_OK) return rc;
    sx_pl_stage(c, NULL);
    return write_result_json(c, d, n_query, st);
}
