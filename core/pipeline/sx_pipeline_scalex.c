/* sx_pipeline_scalex — SCALEX's output folder (checkpoint/model.pt + config.pt, adata.h5ad)
 * as an sx_reference. Messages name files relative to the folder, never a server path. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "sx_alloc.h"
#include "sx_io.h"
#include "sx_nn_scalex.h"
#include "sx_pipeline_internal.h"
#include "sx_pipeline_scalex.h"
#include "sx_umap.h"

/* "<dir>/<rel>" (caller frees) */
static char *in_dir(const char *dir, const char *rel)
{
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = sx_malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

static int is_file(const char *dir, const char *rel)
{
    char *p = in_dir(dir, rel);
    struct stat sb;
    int ok = p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
    sx_free(p);
    return ok;
}

int sx_reference_is_scalex(const char *dir)
{
    return dir && is_file(dir, "checkpoint/model.pt") && is_file(dir, "checkpoint/config.pt") &&
           is_file(dir, "adata.h5ad");
}

/* obsm[name] as n x width, NULL when absent or mis-shaped (then st says why if required). */
static const sx_dense *obsm_of(const sx_dataset *d, const char *name, int64_t width)
{
    const sx_dense *o = sx_dataset_obsm(d, name);
    if (!o || o->n_rows != sx_dataset_n_obs(d) || o->n_cols != width) return NULL;
    return o;
}

/* Domain names = categories of obs['batch'] (SCALEX codes domains by them). */
static int set_domains(sx_reference *r, sx_status *st)
{
    sx_nn_config cfg;
    sx_nn_model_get_config(r->model, &cfg);
    const sx_column *b = sx_frame_col(r->obs, "batch");
    if (!b || b->kind != SX_COL_CATEGORICAL || b->n_categories != cfg.n_domains)
        return sx_status_set(st, SX_EFORMAT, "SCALEX folder: adata.h5ad's obs['batch'] should "
                             "be categorical with the model's %lld domains (%d found); is this "
                             "adata.h5ad the one SCALEX wrote with this checkpoint?",
                             (long long)cfg.n_domains, b && b->kind == SX_COL_CATEGORICAL
                                                           ? b->n_categories : 0);
    return sx_nn_model_set_domains(r->model, (const char *const *)b->categories,
                                   b->n_categories, st);
}

/* UMAP curve a, b: scanpy's record of the run, else SCALEX's call (min_dist 0.1, spread 1). */
static void umap_ab(const sx_dataset *d, sx_reference *r)
{
    const sx_uns *a = sx_uns_path(d->uns, "umap/params/a");
    const sx_uns *b = sx_uns_path(d->uns, "umap/params/b");
    if (a && b && a->kind == SX_UNS_FLOAT && b->kind == SX_UNS_FLOAT) {
        r->umap_a = a->f;
        r->umap_b = b->f;
        return;
    }
    sx_status tmp = {0};
    if (sx_umap_find_ab(0.1, 1.0, &r->umap_a, &r->umap_b, &tmp) != SX_OK)
        r->umap_a = r->umap_b = 0; /* 0 = fit again where the layout is used */
}

/* The reference cells of adata.h5ad: latent, X_umap, obs (taken from d). */
static int take_cells(sx_reference *r, sx_dataset *d, sx_status *st)
{
    sx_nn_config cfg;
    sx_nn_model_get_config(r->model, &cfg);
    int64_t n = sx_dataset_n_obs(d);
    const sx_dense *lat = obsm_of(d, "latent", cfg.n_latent), *um = obsm_of(d, "X_umap", 2);
    if (!lat || n < 1)
        return sx_status_set(st, SX_EFORMAT, "SCALEX folder: adata.h5ad lacks obsm['latent'] "
                             "of width %lld (the model's latent) for its %lld cells",
                             (long long)cfg.n_latent, (long long)n);
    r->n_cells = n;
    r->dim = (int)cfg.n_latent;
    r->latent = sx_mallocarray((size_t)(n * cfg.n_latent), sizeof *r->latent);
    r->umap = um ? sx_mallocarray((size_t)n * 2, sizeof *r->umap) : NULL;
    if (!r->latent || (um && !r->umap)) return sx_status_set(st, SX_ENOMEM, "out of memory");
    memcpy(r->latent, lat->v, (size_t)(n * cfg.n_latent) * sizeof *r->latent);
    for (int64_t i = 0; um && i < 2 * n; i++) r->umap[i] = (float)um->v[i];
    umap_ab(d, r);
    r->obs = d->obs; /* taken over; d keeps an empty frame */
    d->obs = sx_frame_new(0, NULL, st);
    return d->obs ? SX_OK : st->code;
}

sx_reference *sx_reference_load_scalex(const char *dir, sx_status *st)
{
    if (!sx_reference_is_scalex(dir)) {
        sx_status_set(st, SX_ENOTFOUND, "not a SCALEX output folder: it needs "
                      "checkpoint/model.pt, checkpoint/config.pt and adata.h5ad, as "
                      "SCALEX(..., outdir=DIR) writes them");
        return NULL;
    }
    sx_reference *r = sx_calloc(1, sizeof *r);
    char *h5 = in_dir(dir, "adata.h5ad");
    sx_dataset *d = NULL;
    if (!r || !h5 || !(r->path = sx_strdup(dir))) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        goto fail;
    }
    if (!(r->model = sx_nn_model_from_scalex(dir, st))) goto fail;
    sx_read_opts ro = {0};
    ro.skip_values_check = 1; /* X is not used: the reference is its latent */
    if (!(d = sx_h5ad_read(h5, &ro, NULL, st))) goto fail;
    if (take_cells(r, d, st) != SX_OK || set_domains(r, st) != SX_OK) goto fail;
    sx_dataset_free(d);
    sx_free(h5);
    return r;
fail:
    sx_dataset_free(d);
    sx_free(h5);
    sx_reference_free(r);
    return NULL;
}

/* the token after "version" in line (":", "=", "v" and blanks skipped), when it starts with a
 * digit */
static int version_in(const char *line, char *out, size_t cap)
{
    for (const char *p = line; *p; p++) {
        if (strncasecmp(p, "version", 7) != 0) continue;
        const char *q = p + 7;
        while (*q == ' ' || *q == ':' || *q == '=' || *q == '\t' || *q == 'v') q++;
        size_t n = 0;
        while (q[n] && (isalnum((unsigned char)q[n]) || q[n] == '.' || q[n] == '+' || q[n] == '-'))
            n++;
        if (n && isdigit((unsigned char)*q) && n < cap) {
            memcpy(out, q, n);
            out[n] = 0;
            return 1;
        }
    }
    return 0;
}

void sx_scalex_folder_version(const char *dir, char *out, size_t cap)
{
    if (!out || !cap) return;
    out[0] = 0;
    char *p = dir ? in_dir(dir, "log.txt") : NULL;
    FILE *f = p ? fopen(p, "r") : NULL;
    sx_free(p);
    char line[1024];
    int lines = 0; /* a log is small; a huge file is not read to its end */
    while (f && lines++ < 10000 && fgets(line, sizeof line, f))
        if (version_in(line, out, cap)) break;
    if (f) fclose(f);
}

int sx_reference_write_scalex(const char *dir, const char *out_path, sx_scalex_info *info,
                              sx_status *st)
{
    sx_reference *r = sx_reference_load_scalex(dir, st);
    if (!r) return st->code;
    int rc = sx_pl_reference_write(out_path, r->model, r->obs, r->latent, r->dim, r->umap,
                                   r->umap_a, r->umap_b, st);
    if (rc == SX_OK && info) {
        info->n_cells = r->n_cells;
        sx_nn_model_genes(r->model, &info->n_genes);
        sx_scalex_folder_version(dir, info->version, sizeof info->version);
    }
    sx_reference_free(r);
    return rc;
}
