/* sx_pipeline_settings — every option a run reads, resolved once into sx_pl_settings. Each
 * name is checked against the option table with its type, so a misspelt name here fails
 * the run (SX_EINTERNAL) instead of silently reading 0. */
#include <string.h>

#include "sx_pipeline_ctx.h"

typedef struct reader {
    const sx_pipeline_opts *o;
    sx_status *st;
    int rc;
} reader;

/* 1 when `name` is a table option of `type`; else records the bug once and returns 0 */
static int known(reader *r, const char *name, sx_popt_type type)
{
    const sx_popt_spec *s = sx_pipeline_option_spec(name);
    if (s && s->type == type) return 1;
    if (r->rc == SX_OK)
        r->rc = sx_status_set(r->st, SX_EINTERNAL, "the pipeline reads option '%s' %s: this is "
                              "a bug, please report it", name,
                              s ? "with another type than the option table's" :
                                  "that the option table does not define");
    return 0;
}

static int is_set(reader *r, const char *name, sx_popt_type type)
{
    return known(r, name, type) && sx_pipeline_opts_is_set(r->o, name);
}

static const char *str(reader *r, const char *name)
{
    return known(r, name, SX_POPT_STRING) ? sx_pipeline_opts_str(r->o, name) : NULL;
}

static long long num(reader *r, const char *name)
{
    return known(r, name, SX_POPT_INT) ? sx_pipeline_opts_int(r->o, name) : 0;
}

static double real(reader *r, const char *name)
{
    return known(r, name, SX_POPT_FLOAT) ? sx_pipeline_opts_float(r->o, name) : 0;
}

static int flag(reader *r, const char *name)
{
    return known(r, name, SX_POPT_BOOL) ? sx_pipeline_opts_bool(r->o, name) : 0;
}

static int same(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static void resolve_prep(reader *r, int n_inputs, sx_prep_opts *po)
{
    sx_prep_opts_init(po);
    po->profile = same(str(r, "profile"), "ATAC") ? SX_PROFILE_ATAC : SX_PROFILE_RNA;
    po->batch_name = str(r, "batch_name");
    /* several files without an explicit batch_name: the per-file label is the domain
     * (SCALEX's documented intent; HEAD's constant "batch" is S1 in ALGORITHM.md) */
    if (n_inputs > 1 && !is_set(r, "batch_name", SX_POPT_STRING))
        po->batch_name = str(r, "batch_key");
    po->min_features = is_set(r, "min_features", SX_POPT_INT) ? num(r, "min_features") : -1;
    po->min_cells = num(r, "min_cells");
    po->n_top_features = is_set(r, "n_top_features", SX_POPT_INT) ? num(r, "n_top_features") : -1;
    if (is_set(r, "n_top_features", SX_POPT_INT) && po->n_top_features <= 0)
        po->n_top_features = 0;
    po->target_sum = is_set(r, "target_sum", SX_POPT_FLOAT) ? real(r, "target_sum") : 0;
    po->keep_mt = flag(r, "keep_mt");
    po->scale = same(str(r, "scale"), "global") ? SX_SCALE_GLOBAL : SX_SCALE_BATCH;
    po->processed = flag(r, "processed");
    const char *layer = str(r, "use_layer");
    po->use_layer = layer && strcmp(layer, "X") != 0 ? layer : NULL;
    if (is_set(r, "fraction", SX_POPT_FLOAT)) po->fraction = real(r, "fraction");
    if (is_set(r, "n_obs", SX_POPT_INT)) po->n_obs = num(r, "n_obs");
    po->chunk_size = num(r, "chunk_size");
}

int sx_pl_settings_resolve(const sx_job_spec *job, sx_pl_settings *s, sx_status *st)
{
    const sx_pipeline_opts *o = job->opts;
    reader r = {o, st, SX_OK};
    memset(s, 0, sizeof *s);
    s->inputs = job->inputs;
    s->n_inputs = job->n_inputs;
    if (s->n_inputs == 0 && known(&r, "data_list", SX_POPT_LIST))
        s->n_inputs = sx_pipeline_opts_list(o, "data_list", &s->inputs);
    resolve_prep(&r, s->n_inputs, &s->prep);
    s->atac = s->prep.profile == SX_PROFILE_ATAC;
    if (known(&r, "batch_categories", SX_POPT_LIST))
        s->n_batch_categories = sx_pipeline_opts_list(o, "batch_categories", &s->batch_categories);
    s->batch_key = str(&r, "batch_key");
    s->join_outer = same(str(&r, "join"), "outer");
    s->seed = (uint64_t)num(&r, "seed");
    s->chunk_cells = num(&r, "chunk_cells");
    s->threads = job->threads > 0 ? job->threads : (int)num(&r, "threads");
    s->eval = flag(&r, "eval");
    s->ignore_umap = flag(&r, "ignore_umap");
    s->joint_umap = flag(&r, "joint_umap");
    s->plots = flag(&r, "plots");
    s->leiden = flag(&r, "leiden");
    s->reference_cells = flag(&r, "reference_cells");
    s->repeat = flag(&r, "repeat");
    s->assess = flag(&r, "assess");
    s->batch_size = num(&r, "batch_size");
    s->max_iteration = num(&r, "max_iteration");
    s->lr = real(&r, "lr");
    s->patience = (int)num(&r, "patience");
    s->early_stopping_scalex = same(str(&r, "early_stopping"), "scalex");
    s->patience_steps = num(&r, "patience_steps");
    s->impute = str(&r, "impute");
    s->label = str(&r, "label");
    s->label_given = is_set(&r, "label", SX_POPT_STRING) ? s->label : NULL;
    s->k = (int)num(&r, "k");
    s->unknown = !same(str(&r, "unknown"), "off");
    s->min_confidence = real(&r, "min_confidence");
    s->isotonic = same(str(&r, "confidence"), "isotonic");
    s->min_mapping_score = real(&r, "min_mapping_score");
    s->rep = str(&r, "rep");
    return r.rc;
}
