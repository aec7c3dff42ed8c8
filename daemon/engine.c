/* engine — binds the daemon to core/: uploads are checked with the readers (sx_io) and jobs
 * run sx_pipeline_run (which writes the job's result tables itself, see sx_jobdir.h). Only
 * the scalexd binary links this file; tests inject fakes. */
#include "engine.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sx_inspect.h"
#include "sx_io.h"
#include "sx_jobdir.h"
#include "sx_log.h"
#include "sx_nn.h"
#include "sx_pipeline.h"

static int summarise(const engine *e, const char *read_path, srv_dataset_info *info,
                     sx_status *st);

static int validate(void *user, const char *path, srv_dataset_info *info, sx_status *st)
{
    const engine *e = user;
    /* the format table says what the bytes are (inside gzip too) and, for a folder (a
     * multipart upload), checks nothing more: the reader checks its members */
    sx_format fmt = SX_FMT_UNKNOWN;
    int gz = 0;
    int rc = sx_format_sniff(path, &fmt, &gz, st);
    if (rc) return rc;
    const sx_format_info *fi = sx_format_get(fmt);
    snprintf(info->format, sizeof info->format, "%s", fi->name);
    info->ext[0] = 0;
    if (fi->members) return summarise(e, path, info, st);
    /* the readers may also look at the name: give them the table's extension */
    const char *ext = sx_format_ext(fmt, gz);
    if (!ext) return sx_status_set(st, SX_EFORMAT, "%s cannot be read gzip-compressed", fi->label);
    char named[4300];
    snprintf(info->ext, sizeof info->ext, "%s", ext);
    snprintf(named, sizeof named, "%s.%s", path, ext);
    if (link(path, named) != 0) return sx_status_set(st, SX_EIO, "cannot stage the upload");
    rc = summarise(e, named, info, st);
    unlink(named);
    return rc;
}

/* Check the dataset and summarise it: sizes, obs columns. h5ad and 10x h5 are checked by
 * streaming the matrix in bounded slabs (sx_inspect_stream: shapes against dataset lengths,
 * offsets monotone and ending at nnz, every index in range, every value finite), so a
 * multi-GB upload is validated without holding its matrix: the daemon's memory stays flat.
 * Text formats and mtx folders are read whole by the readers (they must be parsed anyway). */
static int summarise(const engine *e, const char *read_path, srv_dataset_info *info,
                     sx_status *st)
{
    int rc = SX_OK;
    sx_read_opts ro = {.limits = &e->limits};
    sx_inspect *d = sx_inspect_stream(read_path, &ro, NULL, st);
    if (!d) return st->code ? st->code : SX_EFORMAT;
    if (!d->has_x) {
        rc = sx_status_set(st, SX_EFORMAT, "the file has no X matrix: store the counts in X");
        goto out;
    }
    info->n_obs = d->n_obs;
    info->n_vars = d->n_vars;
    if (info->n_obs < 1 || info->n_vars < 1) {
        rc = sx_status_set(st, SX_EDATA, "the dataset has %lld cells and %lld genes",
                           (long long)info->n_obs, (long long)info->n_vars);
        goto out;
    }
    /* the reader refuses an obsm/layers element whose rows disagree with obs: so do we */
    for (int k = 0; k < d->n_obsm + d->n_layers; k++) {
        const sx_inspect_shape *el = k < d->n_obsm ? &d->obsm[k] : &d->layers[k - d->n_obsm];
        if (el->n_rows >= 0 && el->n_rows != d->n_obs) {
            rc = sx_status_set(st, SX_EFORMAT, "element '%s/%s' has %lld rows but obs has %lld; "
                               "the file is inconsistent", k < d->n_obsm ? "obsm" : "layers",
                               el->name, (long long)el->n_rows, (long long)d->n_obs);
            goto out;
        }
    }
    if (d->n_negative > 0) /* the readers' policy: allowed (processed data), worth a word */
        SX_WARN("uploaded %s: %lld negative values in X; SCALEX expects raw counts >= 0 (use "
                "the processed option for processed data)", sx_format_name(d->format),
                (long long)d->n_negative);
    json_t *cols = json_array();
    for (int i = 0; i < d->n_obs_cols; i++) {
        const sx_inspect_col *c = &d->obs[i];
        /* the kinds the readers' frames use (nullable int/bool are int/bool with a mask) */
        const char *kind = !strncmp(c->type, "nullable-", 9) ? c->type + 9 : c->type;
        json_t *x = json_object();
        json_object_set_new(x, "name", json_string(c->name));
        json_object_set_new(x, "kind", json_string(kind));
        if (!strcmp(kind, "categorical"))
            json_object_set_new(x, "n_categories", json_integer(c->n_categories));
        json_array_append_new(cols, x);
    }
    info->obs_columns = json_dumps(cols, JSON_COMPACT);
    json_decref(cols);
out:
    sx_inspect_free(d);
    return rc;
}

static int check_options(void *user, const json_t *options, sx_status *st)
{
    (void)user;
    sx_pipeline_opts *po = sx_pipeline_opts_new();
    if (!po) return sx_status_set(st, SX_ENOMEM, "out of memory");
    int rc = sx_pipeline_opts_from_json(po, options, st);
    sx_pipeline_opts_free(po);
    return rc;
}

int engine_spec_write(void *user, const srv_job_run *job, sx_status *st)
{
    const engine *e = user;
    return sx_jobdir_spec_write(job->outdir, job->type, job->inputs, job->n_inputs,
                                job->reference, job->options, job->threads, &e->limits,
                                job->input_sha256, st);
}

static int run(void *user, const srv_job_run *job, const sx_progress *prog, sx_status *st)
{
    const engine *e = user;
    sx_pipeline_opts *po = sx_pipeline_opts_new();
    if (!po) return sx_status_set(st, SX_ENOMEM, "out of memory");
    int rc = engine_spec_write(user, job, st); /* the record of what ran, as a child's */
    if (rc == SX_OK) rc = sx_pipeline_opts_from_json(po, job->options, st);
    if (rc) goto out;
    sx_job_spec spec = {.type = sx_job_type_parse(job->type), .inputs = job->inputs,
                        .n_inputs = job->n_inputs, .reference = job->reference,
                        .outdir = job->outdir, .opts = po, .threads = job->threads,
                        .reference_obj = job->reference_obj, .limits = &e->limits,
                        .input_sha256 = job->input_sha256};
    if (!spec.type) {
        rc = sx_status_set(st, SX_EINVAL, "unknown job type '%s'", job->type);
        goto out;
    }
    rc = sx_pipeline_run(&spec, prog, st); /* it writes the result tables the API pages */
out:
    sx_pipeline_opts_free(po);
    return rc;
}

void engine_ref_table(const sx_reference *r, const char *path)
{
    sx_status ts;
    sx_status_clear(&ts);
    if (sx_reference_tables(r, path, &ts))
        SX_WARN("reference %s: its tables for the API were not written: %s", path, ts.msg);
}

/* srv_refcache loader: the pipeline's in-memory reference, with its resident search index
 * when it is large (built here once unless its map held one). The footprint is counted from
 * what it holds (model tensors in float64, gene names, cells' latent/UMAP/obs, the index). */
static void *ref_load(void *user, const char *path, int64_t *bytes, sx_status *st)
{
    (void)user;
    sx_reference *r = sx_reference_load(path, st);
    if (!r) return NULL;
    engine_ref_table(r, path);
    sx_status is;
    sx_status_clear(&is);
    if (sx_reference_index_build(r, NULL, &is))
        SX_WARN("reference %s: no resident search index (%s); each projection builds its own",
                path, is.msg);
    sx_status_clear(&is);
    if (sx_reference_calib_build(r, 0, &is))
        SX_WARN("reference %s: no label-transfer calibrations (%s); each transfer fits its own",
                path, is.msg);
    int64_t b = (int64_t)sizeof *r + (int64_t)sx_reference_index_bytes(r) +
                (int64_t)sx_reference_calib_bytes(r);
    int nt = sx_nn_model_n_tensors(r->model);
    for (int i = 0; i < nt; i++) {
        int nd = 0;
        int64_t dims[2] = {0, 0};
        sx_status ts;
        if (sx_nn_model_tensor_shape(r->model, sx_nn_model_tensor_name(r->model, i), &nd, dims,
                                     &ts) == SX_OK)
            b += 8 * dims[0] * (nd > 1 ? dims[1] : 1);
    }
    int64_t ng = 0;
    sx_nn_model_genes(r->model, &ng);
    b += ng * 24;
    b += r->n_cells * ((int64_t)r->dim * 8 + (r->umap ? 8 : 0) + 64 +
                       (r->obs ? (int64_t)r->obs->n_cols * 8 : 0));
    *bytes = b;
    return r;
}

static void ref_free(void *user, void *obj)
{
    (void)user;
    sx_reference_free(obj);
}

static int render(void *user, const char *job_dir, const char *name, sx_status *st)
{
    (void)user;
    return sx_pipeline_render_figure(job_dir, name, st);
}

void engine_init(engine *e, srv_engine *out)
{
    memset(e, 0, sizeof *e);
    int n = 0;
    const sx_popt_spec *sp = sx_pipeline_option_specs(&n);
    static const char *const label_names[] = {"label", "label_name", "label_key", "cell_type", NULL};
    for (int k = 0; label_names[k] && !e->label_option; k++)
        for (int i = 0; i < n; i++)
            if (!strcmp(sp[i].name, label_names[k]) && sp[i].type == SX_POPT_STRING)
                e->label_option = sp[i].name;
    memset(out, 0, sizeof *out);
    out->run = run;
    out->user = e;
    out->validate = validate;
    out->check_options = check_options;
    out->specs = sp;
    out->n_specs = n;
    out->label_option = e->label_option;
    out->ref_load = ref_load;
    out->ref_free = ref_free;
    out->render = render;
    hbool_t ts = 0;
    H5is_library_threadsafe(&ts);
    e->hdf5_threadsafe = ts;
}

void engine_configure(engine *e, const srv_config *cfg)
{
    e->limits = (sx_io_limits){.max_cells = cfg->max_cells, .max_genes = cfg->max_genes,
                               .max_nnz = cfg->max_nnz, .max_inflate_ratio = cfg->max_inflate_ratio,
                               .max_inflate_bytes = cfg->max_inflate_bytes,
                               .max_line_bytes = cfg->max_line_bytes};
    sx_io_limits full; /* a setting left at 0 takes the default */
    e->limits = *sx_io_limits_resolve(&e->limits, &full);
}
