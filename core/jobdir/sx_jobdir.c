/* sx_jobdir — file names of a job directory, job.json, status.json, progress.json, cancel
 * (the format is described in sx_jobdir.h). */
#include "sx_jobdir.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const sx_jobdir_file files[] = {
    {"adata.h5ad", "application/x-hdf5", -1},
    {"labels.csv", "text/csv", SX_JOBDIR_LABELS},
    {"result.json", "application/json", -1},
    {"umap.png", "image/png", -1},
    {"qc.png", "image/png", -1},
    {"umap.pdf", "application/pdf", -1},
    {"umap.svg", "image/svg+xml", -1},
    {"confusion.png", "image/png", -1},
    {"confusion.csv", "text/csv", -1},
    {"reference.h5", "application/x-hdf5", -1},
    {"umap.tsv", "text/tab-separated-values", SX_JOBDIR_UMAP},
    {"latent.csv", "text/csv", SX_JOBDIR_LATENT},
    {SX_JOBDIR_LOG, "text/plain; charset=utf-8", -1},
};

static const char *const table_names[SX_JOBDIR_N_TABLES] = {"labels.sxt", "latent.sxt",
                                                             "umap.sxt"};
static const char *const table_downloads[SX_JOBDIR_N_TABLES] = {"labels.csv", "latent.csv",
                                                                 "umap.tsv"};

const sx_jobdir_file *sx_jobdir_files(int *n)
{
    if (n) *n = (int)(sizeof files / sizeof files[0]);
    return files;
}

const char *sx_jobdir_table_name(sx_jobdir_table_id id)
{
    return (unsigned)id < SX_JOBDIR_N_TABLES ? table_names[id] : NULL;
}

const char *sx_jobdir_table_download(sx_jobdir_table_id id)
{
    return (unsigned)id < SX_JOBDIR_N_TABLES ? table_downloads[id] : NULL;
}

int sx_jobdir_path(const char *dir, const char *name, char *out, size_t cap, sx_status *st)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return sx_status_set(st, SX_ELIMIT, "the job folder path is too long for '%s'", name);
    return SX_OK;
}

void sx_jobdir_transfer_col(const char *label, int confidence, char *out, size_t cap)
{
    snprintf(out, cap, "%s_transfer%s", label ? label : "", confidence ? "_confidence" : "");
}

/* ---- job.json ---- */

const char *sx_jobdir_option_text(const json_t *v, char *buf, size_t cap)
{
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_boolean(v)) return json_is_true(v) ? "true" : "false";
    if (json_is_integer(v)) {
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        /* the same text the in-process engine hands the option parser */
        snprintf(buf, cap, "%.17g", json_real_value(v));
        return buf;
    }
    return NULL;
}

static json_t *text_value(const json_t *v)
{
    char buf[64];
    const char *t = sx_jobdir_option_text(v, buf, sizeof buf);
    return t ? json_string(t) : NULL;
}

static json_t *flat_options(const json_t *options)
{
    json_t *opts = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)options, k, v) {
        json_t *t;
        if (json_is_array(v)) {
            t = json_array();
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) {
                json_t *x = text_value(e);
                if (x) json_array_append_new(t, x);
            }
        } else {
            t = text_value(v);
        }
        if (t) json_object_set_new(opts, k, t);
    }
    return opts;
}

/* The limits set (> 0) as a JSON object; integers stay integers (a cell count reads back
 * exactly), the ratio is a real. */
static json_t *limits_json(const sx_io_limits *l)
{
    json_t *o = json_object();
    const struct {
        const char *name;
        int64_t v;
    } ints[] = {{"max_cells", l->max_cells}, {"max_genes", l->max_genes},
                {"max_nnz", l->max_nnz}, {"max_inflate_bytes", l->max_inflate_bytes},
                {"max_line_bytes", l->max_line_bytes}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].v > 0) json_object_set_new(o, ints[i].name, json_integer(ints[i].v));
    if (l->max_inflate_ratio > 0)
        json_object_set_new(o, "max_inflate_ratio", json_real(l->max_inflate_ratio));
    return o;
}

char *sx_jobdir_spec_dumps(const char *type, const char *const *inputs, int n_inputs,
                           const char *reference, const json_t *options, int threads,
                           const sx_io_limits *limits, const char *const *input_sha256)
{
    json_t *o = json_object(), *in = json_array();
    json_object_set_new(o, "type", json_string(type ? type : ""));
    for (int i = 0; i < n_inputs; i++) json_array_append_new(in, json_string(inputs[i]));
    json_object_set_new(o, "inputs", in);
    json_object_set_new(o, "reference", reference ? json_string(reference) : json_null());
    json_object_set_new(o, "options", flat_options(options));
    json_object_set_new(o, "threads", json_integer(threads));
    if (limits) json_object_set_new(o, "limits", limits_json(limits));
    if (input_sha256) {
        json_t *h = json_array();
        for (int i = 0; i < n_inputs; i++) json_array_append_new(h, json_string(input_sha256[i]));
        json_object_set_new(o, "input_sha256", h);
    }
    char *s = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

/* Write text to DIR/NAME via NAME.tmp + rename (a reader never sees half a file). */
static int write_text(const char *dir, const char *name, const char *text, sx_status *st)
{
    char path[4400], tmp[4500];
    int rc = sx_jobdir_path(dir, name, path, sizeof path, st);
    if (rc) return rc;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return sx_status_set(st, SX_EIO, "cannot write the job's %s: %s", name, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return sx_status_set(st, SX_EIO, "cannot write the job's %s (disk full?)", name);
    }
    return SX_OK;
}

int sx_jobdir_spec_write(const char *dir, const char *type, const char *const *inputs,
                         int n_inputs, const char *reference, const json_t *options,
                         int threads, const sx_io_limits *limits,
                         const char *const *input_sha256, sx_status *st)
{
    char *s = sx_jobdir_spec_dumps(type, inputs, n_inputs, reference, options, threads, limits,
                                   input_sha256);
    if (!s) return sx_status_set(st, SX_ENOMEM, "out of memory");
    int rc = write_text(dir, SX_JOBDIR_SPEC, s, st);
    free(s);
    return rc;
}

void sx_jobdir_spec_clear(sx_jobdir_spec *s)
{
    if (!s) return;
    for (int i = 0; i < s->n_inputs; i++) free(s->inputs[i]);
    free(s->inputs);
    for (int i = 0; s->input_sha256 && s->input_sha256[i]; i++) free(s->input_sha256[i]);
    free(s->input_sha256);
    free(s->type);
    free(s->reference);
    json_decref(s->options);
    memset(s, 0, sizeof *s);
}

static int spec_inputs(const json_t *in, sx_jobdir_spec *s, sx_status *st)
{
    if (!json_is_array(in))
        return sx_status_set(st, SX_EINVAL, "job.json: 'inputs' must be an array of paths");
    size_t n = json_array_size(in);
    s->inputs = calloc(n + 1, sizeof *s->inputs);
    if (!s->inputs) return sx_status_set(st, SX_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *p = json_string_value(json_array_get(in, i));
        if (!p) return sx_status_set(st, SX_EINVAL, "job.json: input %zu is not a string", i);
        if (!(s->inputs[s->n_inputs++] = strdup(p)))
            return sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    return SX_OK;
}

/* "input_sha256": an array of 64-digit lowercase hex strings (their count is checked against
 * the inputs' after the whole object is read) */
static int spec_sha256(const json_t *v, sx_jobdir_spec *s, sx_status *st)
{
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n > 1 << 20)
        return sx_status_set(st, SX_EINVAL, "job.json: 'input_sha256' must be an array of digests");
    s->input_sha256 = calloc(n + 1, sizeof *s->input_sha256);
    if (!s->input_sha256) return sx_status_set(st, SX_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *h = json_string_value(json_array_get(v, i));
        if (!h || strlen(h) != 64 || strspn(h, "0123456789abcdef") != 64)
            return sx_status_set(st, SX_EINVAL, "job.json: input_sha256 %zu is not a SHA-256 "
                                 "hex digest", i);
        if (!(s->input_sha256[i] = strdup(h))) return sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    return SX_OK;
}

/* "limits": each member a positive number named as an sx_io_limits field (the setter checks
 * both: a misspelt limit must not be ignored). */
static int spec_limits(const json_t *v, sx_jobdir_spec *s, sx_status *st)
{
    if (!json_is_object(v)) return sx_status_set(st, SX_EINVAL, "job.json: 'limits' must be an object");
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) {
        char text[64];
        if (json_is_integer(x)) snprintf(text, sizeof text, "%lld", (long long)json_integer_value(x));
        else if (json_is_real(x)) snprintf(text, sizeof text, "%.17g", json_real_value(x));
        else return sx_status_set(st, SX_EINVAL, "job.json: limit '%s' must be a number", k);
        int rc = sx_io_limits_set(&s->limits, k, text, st);
        if (rc) {
            if (st) sx_status_prefix(st, "job.json");
            return rc;
        }
    }
    return SX_OK;
}

static int spec_field(const char *key, json_t *v, sx_jobdir_spec *s, sx_status *st)
{
    if (!strcmp(key, "type")) {
        if (!json_is_string(v)) return sx_status_set(st, SX_EINVAL, "job.json: 'type' must be a string");
        s->type = strdup(json_string_value(v));
        return s->type ? SX_OK : sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    if (!strcmp(key, "reference")) {
        if (json_is_null(v)) return SX_OK;
        if (!json_is_string(v)) return sx_status_set(st, SX_EINVAL, "job.json: 'reference' must be a path or null");
        s->reference = strdup(json_string_value(v));
        return s->reference ? SX_OK : sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    if (!strcmp(key, "threads")) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1 << 20)
            return sx_status_set(st, SX_EINVAL, "job.json: 'threads' must be a whole number >= 0");
        s->threads = (int)json_integer_value(v);
        return SX_OK;
    }
    if (!strcmp(key, "inputs")) return spec_inputs(v, s, st);
    if (!strcmp(key, "limits")) return spec_limits(v, s, st);
    if (!strcmp(key, "input_sha256")) return spec_sha256(v, s, st);
    if (!strcmp(key, "options")) {
        if (!json_is_object(v)) return sx_status_set(st, SX_EINVAL, "job.json: 'options' must be an object");
        s->options = flat_options(v);
        return s->options ? SX_OK : sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    return sx_status_set(st, SX_EINVAL, "job.json: unknown field '%s'", key);
}

int sx_jobdir_spec_read(const char *dir, sx_jobdir_spec *s, sx_status *st)
{
    char path[4400];
    memset(s, 0, sizeof *s);
    int rc = sx_jobdir_path(dir, SX_JOBDIR_SPEC, path, sizeof path, st);
    if (rc) return rc;
    json_error_t je;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        struct stat sb;
        if (stat(path, &sb) != 0) return sx_status_set(st, SX_EIO, "cannot read the job's job.json");
        return sx_status_set(st, SX_EINVAL, "job.json: %s (line %d)", je.text, je.line);
    }
    if (!json_is_object(o)) rc = sx_status_set(st, SX_EINVAL, "job.json: not a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (rc == SX_OK) rc = spec_field(k, v, s, st);
    }
    json_decref(o);
    if (rc == SX_OK && !s->options && !(s->options = json_object()))
        rc = sx_status_set(st, SX_ENOMEM, "out of memory");
    int nh = 0;
    while (s->input_sha256 && s->input_sha256[nh]) nh++;
    if (rc == SX_OK && s->input_sha256 && nh != s->n_inputs)
        rc = sx_status_set(st, SX_EINVAL, "job.json: %d input_sha256 digests for %d inputs", nh,
                           s->n_inputs);
    if (rc != SX_OK) sx_jobdir_spec_clear(s);
    return rc;
}

/* ---- status / progress / cancel ---- */

int sx_jobdir_status_write(const char *dir, const char *state, int exit_code, int code,
                           const char *msg, sx_status *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "state", json_string(state));
    json_object_set_new(o, "exit_code", json_integer(exit_code));
    if (code == SX_OK) {
        json_object_set_new(o, "error", json_null());
    } else {
        json_t *e = json_object();
        json_object_set_new(e, "code", json_string(sx_errname(code)));
        json_object_set_new(e, "message", json_string(msg ? msg : ""));
        json_object_set_new(o, "error", e);
    }
    char *s = json_dumps(o, JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) return sx_status_set(st, SX_ENOMEM, "out of memory");
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (t) memcpy(t + n, "\n", 2);
    int rc = write_text(dir, SX_JOBDIR_STATUS, t ? t : s, st);
    free(t ? t : s);
    return rc;
}

static json_t *load(const char *dir, const char *name)
{
    char path[4400];
    if (sx_jobdir_path(dir, name, path, sizeof path, NULL)) return NULL;
    json_t *o = json_load_file(path, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int code_of_name(const char *name)
{
    for (int c = SX_EINTERNAL; c <= SX_EINVAL; c++)
        if (!strcmp(sx_errname(c), name)) return c;
    return SX_EINTERNAL;
}

int sx_jobdir_status_read(const char *dir, char state[16], int *code, char msg[512])
{
    json_t *o = load(dir, SX_JOBDIR_STATUS);
    if (!o) return SX_ENOTFOUND;
    const char *s = json_string_value(json_object_get(o, "state"));
    snprintf(state, 16, "%s", s ? s : "");
    json_t *e = json_object_get(o, "error");
    *code = SX_OK;
    msg[0] = 0;
    if (json_is_object(e)) {
        const char *c = json_string_value(json_object_get(e, "code"));
        const char *m = json_string_value(json_object_get(e, "message"));
        *code = c ? code_of_name(c) : SX_EINTERNAL;
        snprintf(msg, 512, "%s", m ? m : "");
    }
    json_decref(o);
    return SX_OK;
}

int sx_jobdir_progress_write(const char *dir, const char *stage, double fraction,
                             const char *msg, sx_status *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "stage", json_string(stage ? stage : ""));
    json_object_set_new(o, "fraction", json_real(fraction));
    json_object_set_new(o, "message", json_string(msg ? msg : ""));
    char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (!s) return sx_status_set(st, SX_ENOMEM, "out of memory");
    int rc = write_text(dir, SX_JOBDIR_PROGRESS, s, st);
    free(s);
    return rc;
}

int sx_jobdir_progress_read(const char *dir, char stage[32], double *fraction, char msg[256])
{
    json_t *o = load(dir, SX_JOBDIR_PROGRESS);
    if (!o) return SX_ENOTFOUND;
    const char *s = json_string_value(json_object_get(o, "stage"));
    const char *m = json_string_value(json_object_get(o, "message"));
    snprintf(stage, 32, "%s", s ? s : "");
    snprintf(msg, 256, "%s", m ? m : "");
    *fraction = json_number_value(json_object_get(o, "fraction"));
    json_decref(o);
    return SX_OK;
}

int sx_jobdir_cancel_requested(const char *dir)
{
    char path[4400];
    struct stat sb;
    return sx_jobdir_path(dir, SX_JOBDIR_CANCEL, path, sizeof path, NULL) == SX_OK &&
           stat(path, &sb) == 0;
}
