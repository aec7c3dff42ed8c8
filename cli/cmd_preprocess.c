/* scalex preprocess --data_list INPUT... -o OUT.h5ad — SCALEX preprocessing only (ALGORITHM.md
 * §1, §2, §3): writes X = processed (scaled HVG) matrix, raw = log-normalized values, var with
 * the HVG columns, obs batch (the domains) and the settings + MaxAbs factors in
 * uns/scalex_preprocess. */
#include <stdio.h>
#include <string.h>

#include "cmd_pipeline.h"
#include "sx_alloc.h"
#include "sx_cli.h"
#include "sx_io.h"
#include "sx_log.h"
#include "sx_prep.h"

static void log_sink(void *user, int level, const char *msg)
{
    (void)user;
    fprintf(stderr, "%s%s\n", level >= SX_LOG_WARN ? "warning: " : "", msg);
}

int sx_cmd_preprocess(int argc, char **argv)
{
    sx_opt opts[] = {
        {.name = "positional", .type = SX_OPT_LIST, .help = "inputs (same as --data_list)"},
        {.name = "data_list", .type = SX_OPT_LIST, .help = "input files/folders, one batch each"},
        {.name = "output", .type = SX_OPT_STR, .help = "output .h5ad (-o)"},
        {.name = "batch_name", .type = SX_OPT_STR, .def = "batch", .help = "obs column of the domains (a,b joins two)"},
        {.name = "batch_key", .type = SX_OPT_STR, .def = "batch", .help = "obs column receiving the per-input label"},
        {.name = "batch_categories", .type = SX_OPT_LIST, .help = "one label per input (default 0..n-1)"},
        {.name = "join", .type = SX_OPT_STR, .def = "inner", .help = "gene set of several inputs: inner or outer"},
        {.name = "profile", .type = SX_OPT_STR, .def = "RNA", .help = "RNA or ATAC (ATAC: SCALEX v1.0.0 binarize profile)"},
        {.name = "min_features", .type = SX_OPT_INT, .help = "min nonzero features per cell (RNA 600, ATAC 100)"},
        {.name = "min_cells", .type = SX_OPT_INT, .def = "3", .help = "min cells per feature"},
        {.name = "n_top_features", .type = SX_OPT_INT, .help = "highly variable features (RNA 2000, ATAC 100000; 0 keeps all)"},
        {.name = "target_sum", .type = SX_OPT_FLOAT, .def = "10000", .help = "normalize_total target; 0 = median of totals (scanpy None)"},
        {.name = "scale", .type = SX_OPT_STR, .def = "batch", .help = "MaxAbs: batch (SCALEX v1.0.0), global (>= 1.0.3) or none"},
        {.name = "hvg", .type = SX_OPT_STR, .def = "subset", .help = "subset (intended) or literal (v1.0.0 on scanpy >= 1.9: no subset)"},
        {.name = "keep_mt", .type = SX_OPT_FLAG, .help = "keep ERCC/MT-/mt- genes"},
        {.name = "processed", .type = SX_OPT_FLAG, .help = "input already preprocessed: no filters/normalize/HVG"},
        {.name = "use_layer", .type = SX_OPT_STR, .def = "X", .help = "matrix to use: X, raw, layers/NAME (implies --processed)"},
        {.name = "fraction", .type = SX_OPT_FLOAT, .def = "0", .help = "subsample this fraction of cells (numpy seed 0)"},
        {.name = "n_obs", .type = SX_OPT_INT, .def = "0", .help = "subsample this many cells (numpy seed 0)"},
        {.name = "seed", .type = SX_OPT_INT, .def = "0", .help = "numpy seed of the subsample"},
        {.name = "chunk_size", .type = SX_OPT_INT, .def = "20000", .help = "rows per chunk (no numerical effect)"},
        {.name = "no_gzip", .type = SX_OPT_FLAG, .help = "write without compression"},
        {.name = "quiet", .type = SX_OPT_FLAG, .help = "no step log on stderr"},
        SX_ARGS_LIMIT_OPTS,
    };
    int n = (int)(sizeof opts / sizeof opts[0]);
    int prc = sx_args_parse("preprocess", "SCALEX preprocessing of input(s) to one processed .h5ad.",
                            opts, n, argc, argv);
    if (prc) return prc == 1 ? 0 : 2;
    sx_opt *pos = sx_args_get(opts, n, "positional");
    sx_opt *dl = sx_args_get(opts, n, "data_list");
    sx_opt *out = sx_args_get(opts, n, "output");
    sx_opt *cats = sx_args_get(opts, n, "batch_categories");
    const char *join = sx_args_get(opts, n, "join")->str;
    const char *prof = sx_args_get(opts, n, "profile")->str;
    const char *scale = sx_args_get(opts, n, "scale")->str;
    const char *hvg = sx_args_get(opts, n, "hvg")->str;
    const char *use_layer = sx_args_get(opts, n, "use_layer")->str;
    int rc = 0, n_in = 0;
    const char **inputs = NULL;
    sx_dataset **parts = NULL;
    sx_dataset *d = NULL;
    sx_prep_result res = {0};
    sx_status st = {0};
    if (!sx_args_get(opts, n, "quiet")->i) sx_log_set_sink(log_sink, NULL, SX_LOG_INFO);
    n_in = pos->n_list + dl->n_list;
    inputs = sx_calloc((size_t)(n_in ? n_in : 1), sizeof(char *));
    if (!inputs) {
        rc = 7;
        goto done;
    }
    for (int i = 0; i < dl->n_list; i++) inputs[i] = dl->list[i];
    for (int i = 0; i < pos->n_list; i++) inputs[dl->n_list + i] = pos->list[i];
#define USAGE(...)                                                                         \
    do {                                                                                   \
        fprintf(stderr, "scalex preprocess: " __VA_ARGS__);                               \
        fputc('\n', stderr);                                                               \
        rc = 2;                                                                            \
        goto done;                                                                         \
    } while (0)
    if (!n_in || !out->str) USAGE("give --data_list INPUT... and -o OUT.h5ad (see --help)");
    if (strcmp(join, "inner") != 0 && strcmp(join, "outer") != 0)
        USAGE("--join must be inner or outer, got '%s'", join);
    if (cats->n_list && cats->n_list != n_in)
        USAGE("--batch_categories has %d labels for %d inputs", cats->n_list, n_in);
    sx_io_limits lim;
    if ((rc = sx_args_limits("preprocess", opts, n, &lim))) goto done;
    sx_prep_opts po;
    sx_prep_opts_init(&po);
    if (strcmp(prof, "RNA") == 0) po.profile = SX_PROFILE_RNA;
    else if (strcmp(prof, "ATAC") == 0) po.profile = SX_PROFILE_ATAC;
    else USAGE("--profile must be RNA or ATAC, got '%s'", prof);
    if (strcmp(scale, "batch") == 0) po.scale = SX_SCALE_BATCH;
    else if (strcmp(scale, "global") == 0) po.scale = SX_SCALE_GLOBAL;
    else if (strcmp(scale, "none") == 0) po.scale = SX_SCALE_NONE;
    else USAGE("--scale must be batch, global or none, got '%s'", scale);
    if (strcmp(hvg, "subset") == 0) po.hvg_mode = SX_HVG_SUBSET;
    else if (strcmp(hvg, "literal") == 0) po.hvg_mode = SX_HVG_LITERAL;
    else USAGE("--hvg must be subset or literal, got '%s'", hvg);
    sx_opt *o;
    if ((o = sx_args_get(opts, n, "min_features"))->set) {
        if (o->i < 0) USAGE("--min_features must be >= 0");
        po.min_features = o->i;
    }
    if ((po.min_cells = sx_args_get(opts, n, "min_cells")->i) < 0) USAGE("--min_cells must be >= 0");
    if ((o = sx_args_get(opts, n, "n_top_features"))->set) {
        if (o->i < 0) USAGE("--n_top_features must be >= 0");
        po.n_top_features = o->i;
    }
    double ts = sx_args_get(opts, n, "target_sum")->f;
    if (!(ts >= 0)) USAGE("--target_sum must be >= 0 (0 = median of the cell totals)");
    po.target_sum = ts == 0 ? -1 : ts;
    po.batch_name = sx_args_get(opts, n, "batch_name")->str;
    po.keep_mt = (int)sx_args_get(opts, n, "keep_mt")->i;
    po.processed = (int)sx_args_get(opts, n, "processed")->i;
    po.fraction = sx_args_get(opts, n, "fraction")->f;
    if (po.fraction < 0 || po.fraction > 1) USAGE("--fraction must be in [0, 1]");
    if ((po.n_obs = sx_args_get(opts, n, "n_obs")->i) < 0) USAGE("--n_obs must be >= 0");
    po.subsample_seed = (uint32_t)sx_args_get(opts, n, "seed")->i;
    po.chunk_size = sx_args_get(opts, n, "chunk_size")->i;
    /* the reader puts the chosen layer in X; the data are then treated as processed */
    if (use_layer && strcmp(use_layer, "X") != 0) po.processed = 1;
#undef USAGE

    parts = sx_calloc((size_t)n_in, sizeof *parts);
    if (!parts) {
        rc = 7;
        goto done;
    }
    sx_read_opts ro = {0};
    ro.use_layer = use_layer;
    ro.limits = &lim;
    for (int i = 0; i < n_in; i++) {
        if (!(parts[i] = sx_io_read(inputs[i], &ro, NULL, &st))) goto fail;
        SX_INFO("read %s: %lld cells x %lld features", inputs[i],
                (long long)sx_dataset_n_obs(parts[i]), (long long)sx_dataset_n_vars(parts[i]));
    }
    if (n_in == 1) {
        d = parts[0];
        parts[0] = NULL;
    } else {
        sx_concat_opts co = {0};
        co.batch_key = sx_args_get(opts, n, "batch_key")->str;
        co.batch_categories = cats->n_list ? cats->list : NULL;
        co.join_outer = strcmp(join, "outer") == 0;
        d = sx_io_concat(parts, n_in, &co, &st);
        for (int i = 0; i < n_in; i++) parts[i] = NULL; /* concat took them */
        if (!d) goto fail;
    }
    if (sx_prep_run(d, &po, &res, NULL, &st) != SX_OK) goto fail;
    sx_write_opts wo = {0};
    wo.gzip = !sx_args_get(opts, n, "no_gzip")->i;
    if (sx_h5ad_write(out->str, d, &wo, &st) != SX_OK) goto fail;
    fprintf(stderr, "scalex preprocess: %lld cells x %lld genes, %d domains -> %s\n",
            (long long)res.n_cells_out, (long long)res.n_genes_out, (int)res.n_domains, out->str);
    goto done;
fail:
    fprintf(stderr, "scalex preprocess: %s\n", st.msg);
    rc = sx_cli_exit_code(st.code);
done:
    if (parts)
        for (int i = 0; i < n_in; i++) sx_dataset_free(parts[i]);
    sx_free(parts);
    sx_free(inputs);
    sx_prep_result_free(&res);
    sx_dataset_free(d);
    sx_args_free(opts, n);
    return rc;
}
