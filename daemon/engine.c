/* engine — binds the daemon to core/: uploads are checked with the readers (sx_io), jobs run
 * sx_pipeline_run, and after a job the UMAP table the API pages (umap.tsv) is extracted from
 * the job's adata.h5ad. Only the scalexd binary links this file; tests inject fakes. */
#include "engine.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sx_inspect.h"
#include "sx_io.h"
#include "sx_log.h"
#include "sx_nn.h"
#include "sx_pipeline.h"

static int summarise(const char *read_path, srv_dataset_info *info, sx_status *st);

static int validate(void *user, const char *path, srv_dataset_info *info, sx_status *st)
{
    (void)user;
    /* the format table says what the bytes are (inside gzip too) and, for a folder (a
     * multipart upload), checks nothing more: the reader checks its members */
    sx_format fmt = SX_FMT_UNKNOWN;
    int gz = 0;
    int rc = sx_format_sniff(path, &fmt, &gz, st);
    if (rc) return rc;
    const sx_format_info *fi = sx_format_get(fmt);
    snprintf(info->format, sizeof info->format, "%s", fi->name);
    info->ext[0] = 0;
    if (fi->members) return summarise(path, info, st);
    /* the readers may also look at the name: give them the table's extension */
    const char *ext = sx_format_ext(fmt, gz);
    if (!ext) return sx_status_set(st, SX_EFORMAT, "%s cannot be read gzip-compressed", fi->label);
    char named[4300];
    snprintf(info->ext, sizeof info->ext, "%s", ext);
    snprintf(named, sizeof named, "%s.%s", path, ext);
    if (link(path, named) != 0) return sx_status_set(st, SX_EIO, "cannot stage the upload");
    rc = summarise(named, info, st);
    unlink(named);
    return rc;
}

/* Check the dataset and summarise it: sizes, obs columns. h5ad and 10x h5 are checked by
 * streaming the matrix in bounded slabs (sx_inspect_stream: shapes against dataset lengths,
 * offsets monotone and ending at nnz, every index in range, every value finite), so a
 * multi-GB upload is validated without holding its matrix: the daemon's memory stays flat.
 * Text formats and mtx folders are read whole by the readers (they must be parsed anyway). */
static int summarise(const char *read_path, srv_dataset_info *info, sx_status *st)
{
    int rc = SX_OK;
    sx_inspect *d = sx_inspect_stream(read_path, NULL, st);
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
        const sx_inspect_shape *e = k < d->n_obsm ? &d->obsm[k] : &d->layers[k - d->n_obsm];
        if (e->n_rows >= 0 && e->n_rows != d->n_obs) {
            rc = sx_status_set(st, SX_EFORMAT, "element '%s/%s' has %lld rows but obs has %lld; "
                               "the file is inconsistent", k < d->n_obsm ? "obsm" : "layers",
                               e->name, (long long)e->n_rows, (long long)d->n_obs);
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

/* JSON options -> sx_pipeline_opts through the same text path the CLI uses */
static int set_opts(sx_pipeline_opts *po, const json_t *opts, sx_status *st)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)opts, k, v) {
        char buf[64];
        int rc = SX_OK;
        if (json_is_array(v)) {
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) {
                const char *t = json_is_string(x) ? json_string_value(x) : buf;
                if (json_is_integer(x)) snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(x));
                else if (json_is_real(x)) snprintf(buf, sizeof buf, "%.17g", json_real_value(x));
                if ((rc = sx_pipeline_opts_set(po, k, t, st))) return rc;
            }
            continue;
        }
        const char *t = buf;
        if (json_is_string(v)) t = json_string_value(v);
        else if (json_is_boolean(v)) t = json_is_true(v) ? "true" : "false";
        else if (json_is_integer(v)) snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        else if (json_is_real(v)) snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
        else continue;
        if ((rc = sx_pipeline_opts_set(po, k, t, st))) return rc;
    }
    return SX_OK;
}

static int check_options(void *user, const json_t *options, sx_status *st)
{
    (void)user;
    sx_pipeline_opts *po = sx_pipeline_opts_new();
    if (!po) return sx_status_set(st, SX_ENOMEM, "out of memory");
    int rc = set_opts(po, options, st);
    sx_pipeline_opts_free(po);
    return rc;
}

static const sx_column *find_col(const sx_frame *f, const char *const *names)
{
    for (; *names; names++) {
        const sx_column *c = sx_frame_col(f, *names);
        if (c) return c;
    }
    return NULL;
}

static void tsv_field(FILE *f, const char *s)
{
    for (; s && *s; s++) fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

/* OUTDIR/latent.csv: cell,latent_0..latent_{Z-1} from obsm "latent" (what the API pages and
 * serves as CSV); written under a temporary name and renamed. No latent: nothing written. */
static int write_latent(const sx_dataset *d, const char *outdir, sx_status *st)
{
    const sx_dense *z = sx_dataset_obsm(d, "latent");
    if (!z || z->n_rows != sx_dataset_n_obs(d) || z->n_cols < 1) return SX_OK;
    char path[4200], tmp[4300];
    snprintf(tmp, sizeof tmp, "%s/latent.csv.tmp", outdir);
    FILE *f = fopen(tmp, "w");
    if (!f) return sx_status_set(st, SX_EIO, "cannot write %s", tmp);
    fputs("cell", f);
    for (int64_t k = 0; k < z->n_cols; k++) fprintf(f, ",latent_%lld", (long long)k);
    fputc('\n', f);
    for (int64_t i = 0; i < z->n_rows; i++) {
        /* RFC 4180: quote every name, double its quotes */
        fputc('"', f);
        for (const char *c = d->obs->index[i]; *c; c++) {
            if (*c == '"') fputc('"', f);
            fputc(*c == '\n' || *c == '\r' ? ' ' : *c, f);
        }
        fputc('"', f);
        for (int64_t k = 0; k < z->n_cols; k++) fprintf(f, ",%.9g", z->v[i * z->n_cols + k]);
        fputc('\n', f);
    }
    int bad = fclose(f) != 0;
    snprintf(path, sizeof path, "%s/latent.csv", outdir);
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return sx_status_set(st, SX_EIO, "cannot write %s", path);
    }
    return SX_OK;
}

int engine_write_umap_table(const char *outdir, const char *label, sx_status *st)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/adata.h5ad", outdir);
    sx_dataset *d = sx_io_read(path, NULL, NULL, st);
    if (!d) return st->code;
    int rc = write_latent(d, outdir, st);
    if (rc) goto out;
    const sx_dense *um = sx_dataset_obsm(d, "X_umap");
    if (!um || um->n_cols < 2 || um->n_rows != sx_dataset_n_obs(d)) {
        rc = sx_status_set(st, SX_ENOTFOUND, "%s has no 2-D obsm X_umap", path);
        goto out;
    }
    char lt[200];
    snprintf(lt, sizeof lt, "%s_transfer", label ? label : "");
    const char *const batch_names[] = {"batch", NULL};
    const char *const label_names[] = {label ? lt : "leiden", label ? label : "leiden", "leiden", NULL};
    const char *const set_names[] = {"projection", NULL};
    const sx_column *cb = find_col(d->obs, batch_names);
    const sx_column *cl = find_col(d->obs, label_names);
    /* reference cells carry their own label, query cells the transferred one */
    const char *const own_names[] = {label ? label : "leiden", NULL};
    const sx_column *co = find_col(d->obs, own_names);
    const sx_column *cs = find_col(d->obs, set_names);
    snprintf(tmp, sizeof tmp, "%s/umap.tsv.tmp", outdir);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        rc = sx_status_set(st, SX_EIO, "cannot write %s", tmp);
        goto out;
    }
    fputs("cell\tx\ty\tbatch\tlabel\tset\n", f);
    char b1[64], b2[64], b3[64];
    for (int64_t i = 0; i < um->n_rows; i++) {
        tsv_field(f, d->obs->index[i]);
        fprintf(f, "\t%.7g\t%.7g\t", um->v[i * um->n_cols], um->v[i * um->n_cols + 1]);
        if (cb) tsv_field(f, sx_column_text(cb, i, b1, sizeof b1));
        fputc('\t', f);
        const char *lab = cl ? sx_column_text(cl, i, b2, sizeof b2) : NULL;
        if ((!lab || !*lab) && co) lab = sx_column_text(co, i, b2, sizeof b2);
        tsv_field(f, lab);
        fputc('\t', f);
        const char *set = cs ? sx_column_text(cs, i, b3, sizeof b3) : "query";
        fputs(set && !strcmp(set, "reference") ? "reference" : "query", f);
        fputc('\n', f);
    }
    int bad = fclose(f) != 0;
    snprintf(path, sizeof path, "%s/umap.tsv", outdir);
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        rc = sx_status_set(st, SX_EIO, "cannot write %s", path);
    }
out:
    sx_dataset_free(d);
    return rc;
}

static int run(void *user, const srv_job_run *job, const sx_progress *prog, sx_status *st)
{
    engine *e = user;
    sx_pipeline_opts *po = sx_pipeline_opts_new();
    if (!po) return sx_status_set(st, SX_ENOMEM, "out of memory");
    int rc = job->options ? set_opts(po, job->options, st) : SX_OK;
    if (rc) goto out;
    sx_job_spec spec = {.type = sx_job_type_parse(job->type), .inputs = job->inputs,
                        .n_inputs = job->n_inputs, .reference = job->reference,
                        .outdir = job->outdir, .opts = po, .threads = job->threads,
                        .reference_obj = job->reference_obj};
    if (!spec.type) {
        rc = sx_status_set(st, SX_EINVAL, "unknown job type '%s'", job->type);
        goto out;
    }
    rc = sx_pipeline_run(&spec, prog, st);
    if (rc) goto out;
    const char *label = e->label_option ? sx_pipeline_opts_str(po, e->label_option) : NULL;
    sx_status ust;
    sx_status_clear(&ust);
    if (engine_write_umap_table(job->outdir, label, &ust))
        SX_WARN("job %s: no UMAP table for the API: %s", job->id, ust.msg);
out:
    sx_pipeline_opts_free(po);
    return rc;
}

/* srv_refcache loader: the pipeline's in-memory reference. The footprint is counted from
 * what it holds (model tensors in float64, gene names, cells' latent/UMAP/obs). */
static void *ref_load(void *user, const char *path, int64_t *bytes, sx_status *st)
{
    (void)user;
    sx_reference *r = sx_reference_load(path, st);
    if (!r) return NULL;
    int64_t b = (int64_t)sizeof *r;
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
    hbool_t ts = 0;
    H5is_library_threadsafe(&ts);
    e->hdf5_threadsafe = ts;
}
