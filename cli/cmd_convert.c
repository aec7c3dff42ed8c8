/* scalex convert INPUT... -o OUT.h5ad — read any supported input(s), concatenate several
 * (one batch each, ALGORITHM.md 1.3), and write an .h5ad that anndata opens. */
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_cli.h"
#include "sx_io.h"

/* ALGORITHM.md 1.5 step 2: obs "batch" taken from another column (or "a,b" -> a_b). */
static int set_batch_from(sx_dataset *d, const char *batch_name, sx_status *st)
{
    char first[256] = "", second[256] = "";
    const char *comma = strchr(batch_name, ',');
    if (comma) {
        snprintf(first, sizeof first, "%.*s", (int)(comma - batch_name), batch_name);
        snprintf(second, sizeof second, "%s", comma + 1);
        char *c2 = strchr(second, ',');
        if (c2) *c2 = '\0';
    } else {
        snprintf(first, sizeof first, "%s", batch_name);
    }
    sx_column *a = sx_frame_col(d->obs, first);
    sx_column *b = second[0] ? sx_frame_col(d->obs, second) : NULL;
    if (!a || (second[0] && !b))
        return sx_status_set(st, SX_ENOTFOUND, "--batch_name: obs has no column '%s'",
                             !a ? first : second);
    if (!b && a->kind == SX_COL_CATEGORICAL) {
        /* keep the category order */
        return sx_frame_add_categorical(d->obs, "batch", a->codes,
                                        (const char *const *)a->categories, a->n_categories,
                                        a->ordered, st);
    }
    int64_t n = d->obs->n_rows;
    char **vals = sx_calloc((size_t)(n ? n : 1), sizeof(char *));
    if (!vals) return sx_status_set(st, SX_ENOMEM, "out of memory");
    int rc = SX_OK;
    for (int64_t i = 0; i < n && rc == SX_OK; i++) {
        char b1[64], b2[64], buf[1024];
        const char *x = sx_column_text(a, i, b1, sizeof b1);
        if (b) snprintf(buf, sizeof buf, "%s_%s", x, sx_column_text(b, i, b2, sizeof b2));
        else snprintf(buf, sizeof buf, "%s", x);
        if (!(vals[i] = sx_strdup(buf))) rc = sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    if (rc == SX_OK)
        rc = sx_frame_add_categorical_from_strings(d->obs, "batch", (const char *const *)vals, 1, st);
    for (int64_t i = 0; i < n; i++) sx_free(vals[i]);
    sx_free(vals);
    return rc;
}

int sx_cmd_convert(int argc, char **argv)
{
    sx_opt opts[] = {
        {.name = "positional", .type = SX_OPT_LIST, .def = NULL, .help = "inputs (.h5ad, 10x .h5, 10x folder, .mtx, .csv, .txt)"},
        {.name = "output", .type = SX_OPT_STR, .def = NULL, .help = "output .h5ad (-o)"},
        {.name = "batch_name", .type = SX_OPT_STR, .def = "batch", .help = "obs column that holds the batch (a,b joins two)"},
        {.name = "batch_key", .type = SX_OPT_STR, .def = "batch", .help = "obs column receiving the per-input label"},
        {.name = "batch_categories", .type = SX_OPT_LIST, .def = NULL, .help = "one label per input (default 0..n-1)"},
        {.name = "join", .type = SX_OPT_STR, .def = "inner", .help = "gene set of several inputs: inner or outer"},
        {.name = "use_layer", .type = SX_OPT_STR, .def = "X", .help = "matrix to take as X: X, raw, layers/NAME"},
        {.name = "no_gzip", .type = SX_OPT_FLAG, .def = NULL, .help = "write without compression"},
        SX_ARGS_LIMIT_OPTS,
    };
    int n = (int)(sizeof opts / sizeof opts[0]);
    int prc = sx_args_parse("convert", "Convert input(s) to one .h5ad.", opts, n, argc, argv);
    if (prc) return prc == 1 ? 0 : 2;
    sx_opt *pos = sx_args_get(opts, n, "positional");
    sx_opt *out = sx_args_get(opts, n, "output");
    sx_opt *cats = sx_args_get(opts, n, "batch_categories");
    const char *join = sx_args_get(opts, n, "join")->str;
    int rc = 0;
    sx_dataset **parts = NULL;
    sx_dataset *d = NULL;
    sx_status st = {0};
    if (!pos->n_list || !out->str) {
        fprintf(stderr, "scalex convert: give at least one input and -o OUT.h5ad (see --help)\n");
        rc = 2;
        goto done;
    }
    if (strcmp(join, "inner") != 0 && strcmp(join, "outer") != 0) {
        fprintf(stderr, "scalex convert: --join must be inner or outer, got '%s'\n", join);
        rc = 2;
        goto done;
    }
    if (cats->n_list && cats->n_list != pos->n_list) {
        fprintf(stderr, "scalex convert: --batch_categories has %d labels for %d inputs\n",
                cats->n_list, pos->n_list);
        rc = 2;
        goto done;
    }
    sx_io_limits lim;
    if ((rc = sx_args_limits("convert", opts, n, &lim))) goto done;
    parts = sx_calloc((size_t)pos->n_list, sizeof *parts);
    if (!parts) {
        fprintf(stderr, "scalex convert: out of memory\n");
        rc = 1;
        goto done;
    }
    sx_read_opts ro = {0};
    ro.use_layer = sx_args_get(opts, n, "use_layer")->str;
    ro.limits = &lim;
    for (int i = 0; i < pos->n_list; i++) {
        if (!(parts[i] = sx_io_read(pos->list[i], &ro, NULL, &st))) {
            fprintf(stderr, "scalex convert: %s\n", st.msg);
            rc = 1;
            goto done;
        }
    }
    if (pos->n_list == 1) {
        d = parts[0];
        parts[0] = NULL;
    } else {
        sx_concat_opts co = {0};
        co.batch_key = sx_args_get(opts, n, "batch_key")->str;
        co.batch_categories = cats->n_list ? cats->list : NULL;
        co.join_outer = strcmp(join, "outer") == 0;
        d = sx_io_concat(parts, pos->n_list, &co, &st);
        for (int i = 0; i < pos->n_list; i++) parts[i] = NULL; /* concat took them */
        if (!d) {
            fprintf(stderr, "scalex convert: %s\n", st.msg);
            rc = 1;
            goto done;
        }
    }
    const char *bn = sx_args_get(opts, n, "batch_name")->str;
    if (bn && strcmp(bn, "batch") != 0 && set_batch_from(d, bn, &st) != SX_OK) {
        fprintf(stderr, "scalex convert: %s\n", st.msg);
        rc = 1;
        goto done;
    }
    sx_write_opts wo = {0};
    wo.gzip = !sx_args_get(opts, n, "no_gzip")->i;
    if (sx_h5ad_write(out->str, d, &wo, &st) != SX_OK) {
        fprintf(stderr, "scalex convert: %s\n", st.msg);
        rc = 1;
        goto done;
    }
done:
    if (parts)
        for (int i = 0; i < pos->n_list; i++) sx_dataset_free(parts[i]);
    sx_free(parts);
    sx_dataset_free(d);
    sx_args_free(opts, n);
    return rc;
}
