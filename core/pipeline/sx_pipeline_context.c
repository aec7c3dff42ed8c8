/* sx_pipeline_context — the run context: stage timing and progress, metrics and files for
 * result.json, reading the inputs, the preprocessing and settings records of the log. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sx_alloc.h"
#include "sx_io.h"
#include "sx_pipeline_ctx.h"
#include "sx_pipeline_scalex.h"
#include "sx_sha256.h"

int sx_pl_oom(sx_status *st) { return sx_status_set(st, SX_ENOMEM, "out of memory"); }

int sx_pl_stage(sx_pl_ctx *c, const char *name)
{
    double now = sx_pl_now();
    if (c->n_stages > 0) c->stage_secs[c->n_stages - 1] = now - c->t_stage;
    if (name && c->n_stages < SX_PL_MAX_STAGES) {
        c->stage_name[c->n_stages] = name;
        c->stage_secs[c->n_stages] = 0;
        c->n_stages++;
    }
    c->t_stage = now;
    if (name) sx_progress_report(c->prog, name, 0, NULL);
    if (sx_progress_cancelled(c->prog)) return SX_ECANCELED;
    return SX_OK;
}

int sx_pl_threads(const sx_pl_ctx *c)
{
    if (c->set.threads > 0) return c->set.threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void sx_pl_metric(sx_pl_ctx *c, const char *name, double v)
{
    if (c->metrics.len) sx_sb_puts(&c->metrics, ", ");
    sx_sb_json_str(&c->metrics, name);
    sx_sb_puts(&c->metrics, ": ");
    sx_sb_json_num(&c->metrics, v);
}

void sx_pl_file_out(sx_pl_ctx *c, const char *name)
{
    if (c->files.len) sx_sb_puts(&c->files, ", ");
    sx_sb_json_str(&c->files, name);
}

char *sx_pl_out_path(const sx_pl_ctx *c, const char *name) { return sx_pl_join(c->outdir, name); }

/* Read every input (sha256 of files recorded) and concatenate them, one batch each. */
sx_dataset *sx_pl_read_inputs(sx_pl_ctx *c, int join_outer, sx_status *st)
{
    sx_dataset **parts = NULL;
    sx_dataset *d = NULL;
    int n = c->set.n_inputs;
    if (n <= 0) {
        sx_status_set(st, SX_EINVAL, "no input data: give --data_list FILE...");
        return NULL;
    }
    const char *const *cats = c->set.batch_categories;
    int n_cats = c->set.n_batch_categories;
    if (n_cats && n_cats != n) {
        sx_status_set(st, SX_EINVAL, "batch_categories has %d labels for %d inputs: give one "
                      "label per input file", n_cats, n);
        return NULL;
    }
    parts = sx_calloc((size_t)n, sizeof *parts);
    if (!parts) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const char *p = c->set.inputs[i];
        if (sx_pl_hash_input(c, i, st) != SX_OK) goto fail;
        parts[i] = sx_io_read(p, &(sx_read_opts){.limits = c->job->limits, .threads = sx_pl_threads(c)},
                              c->prog, st);
        if (!parts[i]) goto fail;
        sx_pl_log_msg(&c->log, "Read %s: %lld cells x %lld genes", p,
                      (long long)sx_dataset_n_obs(parts[i]), (long long)sx_dataset_n_vars(parts[i]));
        if (sx_progress_cancelled(c->prog)) {
            sx_status_set(st, SX_ECANCELED, "canceled while reading the inputs");
            goto fail;
        }
    }
    if (n == 1) {
        d = parts[0];
        sx_free(parts);
        return d;
    }
    sx_concat_opts co = {.batch_key = c->set.batch_key,
                         .batch_categories = n_cats ? cats : NULL,
                         .join_outer = join_outer};
    d = sx_io_concat(parts, n, &co, st); /* takes the parts */
    sx_free(parts);
    return d;
fail:
    for (int i = 0; i < n; i++) sx_dataset_free(parts[i]);
    sx_free(parts);
    return NULL;
}

void sx_pl_log_prep(sx_pl_ctx *c, const sx_prep_result *pr, const sx_dataset *d)
{
    sx_pl_log_msg(&c->log, "Raw dataset shape: (%lld, %lld)", (long long)pr->n_cells_in,
                  (long long)pr->n_genes_in);
    if (!c->set.atac) /* peaks: no MT filter */
        sx_pl_log_msg(&c->log, "Filtering out MT genes: %lld removed", (long long)pr->n_genes_mt);
    sx_pl_log_msg(&c->log, "Filtering cells: %lld removed (min_features)",
                  (long long)pr->n_cells_filtered);
    sx_pl_log_msg(&c->log, "Filtering features: %lld removed (min_cells)",
                  (long long)pr->n_genes_filtered);
    if (pr->n_cells_subsampled_out)
        sx_pl_log_msg(&c->log, "Subsampling: %lld cells left out",
                      (long long)pr->n_cells_subsampled_out);
    if (isnan(pr->target_sum_used)) /* ATAC as SCALEX v1.0.0: binarized, no normalization */
        sx_pl_log_msg(&c->log, "No total normalization or log1p (ATAC profile or processed "
                      "input)");
    else
        sx_pl_log_msg(&c->log, "Normalizing total per cell (target_sum %g), log1p",
                      pr->target_sum_used);
    if (pr->n_hvg) sx_pl_log_msg(&c->log, "Finding variable features: %lld", (long long)pr->n_hvg);
    int64_t *cnt = sx_calloc((size_t)pr->n_domains + 1, sizeof *cnt);
    if (cnt) {
        for (int64_t i = 0; i < pr->n_cells_out; i++)
            if (pr->domain_of_cell[i] >= 0 && pr->domain_of_cell[i] < pr->n_domains)
                cnt[pr->domain_of_cell[i]]++;
        for (int b = 0; b < pr->n_domains; b++)
            sx_pl_log_msg(&c->log, "batch %s: %lld cells", pr->domains[b], (long long)cnt[b]);
        sx_free(cnt);
    }
    sx_pl_log_msg(&c->log, "%s maxabs scaling",
                  pr->scale_mode == SX_SCALE_BATCH ? "Batch specific" :
                  pr->scale_mode == SX_SCALE_GLOBAL ? "Global" : "No");
    sx_pl_log_msg(&c->log, "Processed dataset shape: (%lld, %lld)",
                  (long long)sx_dataset_n_obs(d), (long long)sx_dataset_n_vars(d));
}

void sx_pl_infer_opts(const sx_pl_ctx *c, sx_nn_infer_opts *io, int64_t *perm, int64_t n)
{
    sx_nn_infer_opts_default(io);
    io->eval = c->set.eval;
    io->threads = c->set.threads;
    sx_scalex_permutation(perm, n, c->set.seed); /* SCALEX's chunks for the same seed */
    io->perm = perm;
}

/* The settings in force, one line (the provenance also goes into uns). The option table is
 * walked, so no name is spelt here. */
void sx_pl_log_settings(sx_pl_ctx *c)
{
    sx_sb b = {0};
    int ns;
    const sx_popt_spec *sp = sx_pipeline_option_specs(&ns);
    for (int i = 0; i < ns; i++) {
        if (!(sp[i].jobs & (unsigned)c->job->type)) continue;
        if (sp[i].type == SX_POPT_LIST) {
            const char *const *v;
            int nv = sx_pipeline_opts_list(c->o, sp[i].name, &v);
            if (!nv) continue;
            sx_sb_putf(&b, "%s%s=", b.len ? " " : "", sp[i].name);
            for (int k = 0; k < nv; k++) sx_sb_putf(&b, "%s%s", k ? "," : "", v[k]);
            continue;
        }
        const char *v = sx_pipeline_opts_str(c->o, sp[i].name);
        if (v) sx_sb_putf(&b, "%s%s=%s", b.len ? " " : "", sp[i].name, v);
    }
    sx_pl_log_msg(&c->log, "Settings: %s", b.s ? b.s : "");
    sx_sb_free(&b);
}

const char *sx_pl_given_sha(const sx_pl_ctx *c, int i)
{
    const sx_job_spec *j = c->job;
    if (!j->input_sha256 || c->set.inputs != j->inputs || i >= j->n_inputs) return NULL;
    const char *h = j->input_sha256[i];
    return h && strlen(h) == 64 && strspn(h, "0123456789abcdef") == 64 ? h : NULL;
}

int sx_pl_hash_input(sx_pl_ctx *c, int i, sx_status *st)
{
    const char *p = c->set.inputs[i], *given = sx_pl_given_sha(c, i);
    if (sx_pl_is_dir(p)) return SX_OK;
    if (given) {
        memcpy(c->sha[i], given, 65);
        return SX_OK;
    }
    return sx_sha256_file(p, c->sha[i], st);
}
