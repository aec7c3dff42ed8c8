/* scalex inspect PATH... [--json] — format, shape, nnz, sum of X, columns, obsm, layers.
 * JSON is written by hand (core/ and cli/ carry no JSON library): one object per input, an
 * array of them when several inputs are given. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sx_cli.h"
#include "sx_inspect.h"
#include "sx_io.h"

/* JSON string literal: quotes, backslash and control characters escaped; UTF-8 passes. */
static void json_str(FILE *o, const char *s)
{
    fputc('"', o);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", o); break;
        case '\\': fputs("\\\\", o); break;
        case '\n': fputs("\\n", o); break;
        case '\r': fputs("\\r", o); break;
        case '\t': fputs("\\t", o); break;
        case '\b': fputs("\\b", o); break;
        case '\f': fputs("\\f", o); break;
        default:
            if (*p < 0x20) fprintf(o, "\\u%04x", *p);
            else fputc(*p, o);
        }
    }
    fputc('"', o);
}

static void json_num(FILE *o, double v)
{
    if (!isfinite(v)) fputs("null", o);
    else if (v == floor(v) && fabs(v) < 9e15) fprintf(o, "%.0f", v);
    else fprintf(o, "%.17g", v);
}

static void json_cols(FILE *o, const sx_inspect_col *c, int n)
{
    fputc('[', o);
    for (int i = 0; i < n; i++) {
        fputs(i ? ", {\"name\": " : "{\"name\": ", o);
        json_str(o, c[i].name);
        fputs(", \"type\": ", o);
        json_str(o, c[i].type);
        if (c[i].categories) {
            fprintf(o, ", \"ordered\": %s, \"categories\": [", c[i].ordered ? "true" : "false");
            for (int64_t k = 0; k < c[i].n_categories; k++) {
                if (k) fputs(", ", o);
                json_str(o, c[i].categories[k]);
            }
            fputs("], \"counts\": [", o);
            for (int64_t k = 0; k < c[i].n_categories; k++)
                fprintf(o, "%s%lld", k ? ", " : "", (long long)c[i].counts[k]);
            fputc(']', o);
        }
        fputc('}', o);
    }
    fputc(']', o);
}

static void json_shapes(FILE *o, const sx_inspect_shape *s, int n)
{
    fputc('{', o);
    for (int i = 0; i < n; i++) {
        if (i) fputs(", ", o);
        json_str(o, s[i].name);
        fprintf(o, ": [%lld, %lld]", (long long)s[i].n_rows, (long long)s[i].n_cols);
    }
    fputc('}', o);
}

static void print_json(FILE *o, const sx_inspect *r)
{
    fputs("{\"format\": ", o);
    json_str(o, sx_format_name(r->format));
    fputs(", \"encoding_version\": ", o);
    if (r->encoding_version[0]) json_str(o, r->encoding_version);
    else fputs("null", o);
    fprintf(o, ", \"n_obs\": %lld, \"n_vars\": %lld, \"nnz\": ", (long long)r->n_obs,
            (long long)r->n_vars);
    if (r->has_x) fprintf(o, "%lld", (long long)r->nnz);
    else fputs("null", o);
    fputs(", \"x_sum\": ", o);
    if (r->has_x) json_num(o, r->x_sum);
    else fputs("null", o);
    fputs(", \"obs\": ", o);
    json_cols(o, r->obs, r->n_obs_cols);
    fputs(", \"var\": ", o);
    json_cols(o, r->var, r->n_var_cols);
    fputs(", \"obsm\": ", o);
    json_shapes(o, r->obsm, r->n_obsm);
    fputs(", \"layers\": ", o);
    json_shapes(o, r->layers, r->n_layers);
    fputc('}', o);
}

static void print_cols(FILE *o, const char *what, const sx_inspect_col *c, int n)
{
    fprintf(o, "  %s columns: %d\n", what, n);
    for (int i = 0; i < n; i++) {
        fprintf(o, "    %-24s %s", c[i].name, c[i].type);
        if (c[i].categories) {
            fprintf(o, " (%lld%s):", (long long)c[i].n_categories, c[i].ordered ? ", ordered" : "");
            int64_t show = c[i].n_categories < 20 ? c[i].n_categories : 20;
            for (int64_t k = 0; k < show; k++)
                fprintf(o, " %s=%lld", c[i].categories[k], (long long)c[i].counts[k]);
            if (show < c[i].n_categories) fputs(" ...", o);
        }
        fputc('\n', o);
    }
}

static void print_text(FILE *o, const char *path, const sx_inspect *r)
{
    fprintf(o, "%s\n  format: %s%s%s\n  shape: %lld cells x %lld features\n", path,
            sx_format_name(r->format), r->encoding_version[0] ? " " : "", r->encoding_version,
            (long long)r->n_obs, (long long)r->n_vars);
    if (r->has_x) fprintf(o, "  X: %lld stored values, sum %.10g\n", (long long)r->nnz, r->x_sum);
    else fputs("  X: absent\n", o);
    print_cols(o, "obs", r->obs, r->n_obs_cols);
    print_cols(o, "var", r->var, r->n_var_cols);
    for (int i = 0; i < r->n_obsm; i++)
        fprintf(o, "  obsm %s: %lld x %lld\n", r->obsm[i].name, (long long)r->obsm[i].n_rows,
                (long long)r->obsm[i].n_cols);
    for (int i = 0; i < r->n_layers; i++)
        fprintf(o, "  layer %s: %lld x %lld\n", r->layers[i].name, (long long)r->layers[i].n_rows,
                (long long)r->layers[i].n_cols);
}

int sx_cmd_inspect(int argc, char **argv)
{
    sx_opt opts[] = {
        {.name = "positional", .type = SX_OPT_LIST, .def = NULL, .help = "input files or 10x folders"},
        {.name = "json", .type = SX_OPT_FLAG, .def = NULL, .help = "print JSON (one object per input; an array for several)"},
        {.name = "use_layer", .type = SX_OPT_STR, .def = "X", .help = "matrix to summarise: X, raw, layers/NAME"},
        SX_ARGS_LIMIT_OPTS,
    };
    int n = (int)(sizeof opts / sizeof opts[0]);
    int prc = sx_args_parse("inspect", "Summarise input files without loading them whole.", opts,
                            n, argc, argv);
    if (prc) return prc == 1 ? 0 : 2;
    sx_opt *pos = sx_args_get(opts, n, "positional");
    int json = (int)sx_args_get(opts, n, "json")->i;
    sx_io_limits lim;
    if (!pos->n_list) fprintf(stderr, "scalex inspect: give at least one input (see --help)\n");
    if (!pos->n_list || sx_args_limits("inspect", opts, n, &lim)) {
        sx_args_free(opts, n);
        return 2;
    }
    sx_read_opts ro = {0};
    ro.use_layer = sx_args_get(opts, n, "use_layer")->str;
    ro.limits = &lim;
    int rc = 0;
    int first = 1;
    if (json && pos->n_list > 1) fputc('[', stdout);
    for (int i = 0; i < pos->n_list; i++) {
        sx_status st = {0};
        sx_inspect *r = sx_inspect_path(pos->list[i], &ro, NULL, &st);
        if (!r) {
            fprintf(stderr, "scalex inspect: %s\n", st.msg);
            rc = 1;
            continue;
        }
        if (json) {
            if (!first) fputs(",\n", stdout);
            print_json(stdout, r);
        } else {
            print_text(stdout, pos->list[i], r);
        }
        first = 0;
        sx_inspect_free(r);
    }
    if (json && pos->n_list > 1) fputc(']', stdout);
    if (json) fputc('\n', stdout);
    sx_args_free(opts, n);
    return rc;
}
