/* sx_pipeline_trust — every label column of a transfer in one job ("cell_type,subtype"):
 * the transfer of each (sx_pipeline_transfer.c), its per-cell trust in the output (contract:
 * obs <label>_transfer with "Unknown", <label>_transfer_confidence, <label>_mapping_score;
 * obsm <label>_probabilities float32 with uns <label>_classes), the labels table, and a flag
 * for cells whose fine and coarse answers disagree when the two columns nest. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_jobdir.h"
#include "sx_pipeline_ctx.h"
#include "sx_pipeline_internal.h"

#define MAX_LABELS 8

const char *sx_pl_first_label(const char *labels, char *buf, size_t cap)
{
    size_t n = strcspn(labels ? labels : "", ",");
    if (n >= cap) n = cap - 1;
    memcpy(buf, labels ? labels : "", n);
    buf[n] = 0;
    return buf;
}

/* "a, b" -> {"a", "b"} in buf (spaces around names dropped, repeats once); the count, -1
 * when too many */
static int split_labels(const char *labels, char *buf, size_t cap, const char **names)
{
    snprintf(buf, cap, "%s", labels ? labels : "");
    int n = 0;
    for (char *p = buf; *p;) {
        char *e = p + strcspn(p, ",");
        int last = *e == 0;
        *e = 0;
        while (*p == ' ') p++;
        for (char *t = e; t > p && t[-1] == ' ';) *--t = 0;
        int dup = 0;
        for (int k = 0; k < n; k++) dup |= strcmp(names[k], p) == 0;
        if (*p && !dup) {
            if (n == MAX_LABELS) return -1;
            names[n++] = p;
        }
        if (last) break;
        p = e + 1;
    }
    return n;
}

int sx_pl_label_listed(const char *labels, const char *name)
{
    char buf[1024];
    const char *names[MAX_LABELS];
    int n = split_labels(labels, buf, sizeof buf, names);
    for (int k = 0; k < n; k++)
        if (strcmp(names[k], name) == 0) return 1;
    return 0;
}

static int no_column(const sx_frame *obs, const char *label, sx_status *st)
{
    sx_sb cols = {0};
    for (int k = 0; k < obs->n_cols; k++) {
        if (k) sx_sb_puts(&cols, ", ");
        sx_sb_puts(&cols, obs->cols[k].name);
    }
    int rc = sx_status_set(st, SX_ENOTFOUND, "the reference has no obs column '%s' to transfer "
                           "(columns: %s); give the label column(s) with --label",
                           label, cols.s ? cols.s : "none");
    sx_sb_free(&cols);
    return rc;
}

/* obs <label>_transfer (categorical over the classes, + Unknown when used), _confidence and
 * <label>_mapping_score for rows [row0, row0 + n_query), other rows missing. */
static int add_obs(sx_frame *obs, int64_t row0, const sx_transfer_result *tr, const char *label,
                   sx_status *st)
{
    int64_t n = obs->n_rows;
    int32_t *codes = sx_mallocarray((size_t)n + 1, sizeof *codes);
    double *conf = sx_mallocarray((size_t)n + 1, sizeof *conf);
    double *ms = sx_mallocarray((size_t)n + 1, sizeof *ms);
    const char **cats = sx_calloc((size_t)tr->n_classes + 1, sizeof *cats);
    char name[300];
    int rc = codes && conf && ms && cats ? SX_OK : sx_pl_oom(st);
    int n_cats = tr->n_classes, unknown = -1;
    for (int k = 0; rc == SX_OK && k < n_cats; k++) cats[k] = tr->classes[k];
    if (rc == SX_OK && tr->n_unknown > 0) {
        unknown = n_cats;
        cats[n_cats++] = SX_TRANSFER_UNKNOWN;
    }
    for (int64_t i = 0; rc == SX_OK && i < n; i++) {
        int64_t q = i - row0;
        int in = q >= 0 && q < tr->n_query;
        codes[i] = !in ? -1 : tr->pred[q] >= 0 ? tr->pred[q] : unknown;
        conf[i] = in ? tr->confidence[q] : NAN;
        ms[i] = in ? tr->mapping_score[q] : NAN;
    }
    sx_jobdir_transfer_col(label, 0, name, sizeof name);
    if (rc == SX_OK) rc = sx_frame_add_categorical(obs, name, codes, cats, n_cats, 0, st);
    sx_jobdir_transfer_col(label, 1, name, sizeof name);
    if (rc == SX_OK) rc = sx_frame_add_float(obs, name, conf, st);
    snprintf(name, sizeof name, "%s_mapping_score", label);
    if (rc == SX_OK) rc = sx_frame_add_float(obs, name, ms, st);
    sx_free(codes);
    sx_free(conf);
    sx_free(ms);
    sx_free(cats);
    return rc;
}

/* obsm <label>_probabilities (float32; rows outside the query NaN), uns <label>_classes */
static int add_probabilities(sx_dataset *d, int64_t row0, const sx_transfer_result *tr,
                             const char *label, sx_status *st)
{
    int64_t n = sx_dataset_n_obs(d), nc = tr->n_classes;
    double *p = sx_mallocarray((size_t)(n * nc) + 1, sizeof *p);
    if (!p) return sx_pl_oom(st);
    for (int64_t i = 0; i < n * nc; i++) p[i] = NAN;
    memcpy(p + row0 * nc, tr->prob, (size_t)(tr->n_query * nc) * sizeof *p);
    char name[300];
    snprintf(name, sizeof name, "%s_probabilities", label);
    int rc = sx_dataset_set_obsm(d, name, p, n, nc, 1, st);
    sx_free(p);
    snprintf(name, sizeof name, "%s_classes", label);
    if (rc == SX_OK && !sx_uns_set_strings(d->uns, name, (const char *const *)tr->classes, nc))
        rc = sx_pl_oom(st);
    return rc;
}

/* Reference label texts of a column (borrowed or in own[], freed by the caller). */
static const char **ref_texts(const sx_column *col, int64_t n, char (*own)[64])
{
    const char **t = sx_calloc((size_t)n + 1, sizeof *t);
    for (int64_t i = 0; t && i < n; i++) {
        const char *x = sx_column_text(col, i, own[i], sizeof own[i]);
        t[i] = x ? x : "";
    }
    return t;
}

/* <fine>_hierarchy_conflict: for each pair (fine, coarse) where every fine reference class
 * lies within one coarse class (and the fine column has more classes), query cells whose
 * fine answer's parent is not their coarse answer (Unknown on either side: no conflict). */
static int add_conflicts(sx_dataset *d, int64_t row0, const sx_pl_transfer_in *b,
                         const sx_frame *ref_obs, const char **names, sx_transfer_result **tr,
                         int n, sx_status *st)
{
    int64_t nr = b->n_ref, nobs = sx_dataset_n_obs(d);
    char (*own)[64] = sx_mallocarray((size_t)(2 * nr) + 1, sizeof *own);
    uint8_t *flag = sx_mallocarray((size_t)nobs + 1, sizeof *flag);
    int rc = own && flag ? SX_OK : sx_pl_oom(st);
    for (int f = 0; rc == SX_OK && f < n; f++) {
        for (int g = 0; rc == SX_OK && g < n; g++) {
            if (f == g || tr[f]->n_classes <= tr[g]->n_classes) continue;
            const char **ft = ref_texts(sx_frame_col(ref_obs, names[f]), nr, own);
            const char **ct = ref_texts(sx_frame_col(ref_obs, names[g]), nr, own + nr);
            int32_t *parent = sx_mallocarray((size_t)tr[f]->n_classes, sizeof *parent);
            int nest = ft && ct && parent ?
                       sx_transfer_hierarchy(ft, ct, nr, tr[f], tr[g], parent) : -1;
            if (nest < 0) rc = sx_pl_oom(st);
            if (nest == 1) {
                memset(flag, 0, (size_t)nobs);
                for (int64_t i = 0; i < tr[f]->n_query; i++) {
                    int32_t pf = tr[f]->pred[i], pc = tr[g]->pred[i];
                    flag[row0 + i] = pf >= 0 && pc >= 0 && parent[pf] != pc;
                }
                char name[300];
                snprintf(name, sizeof name, "%s_hierarchy_conflict", names[f]);
                rc = sx_frame_add_bool(d->obs, name, flag, st);
            }
            sx_free(ft), sx_free(ct), sx_free(parent);
        }
    }
    sx_free(own);
    sx_free(flag);
    return rc;
}

static int transfer_each(sx_pl_ctx *c, const sx_pl_transfer_in *base, const sx_frame *ref_obs,
                         const sx_frame *q_obs, const char **names, int n,
                         sx_transfer_result **tr, sx_dataset *out, int64_t row0, sx_status *st)
{
    int rc = SX_OK;
    for (int l = 0; rc == SX_OK && l < n; l++) {
        sx_pl_transfer_in in = *base;
        if (!(in.ref_col = sx_frame_col(ref_obs, names[l])))
            return no_column(ref_obs, names[l], st);
        /* scores and a confusion matrix for every label column the query holds */
        in.truth = q_obs ? sx_frame_col(q_obs, names[l]) : NULL;
        rc = sx_pl_transfer_labels(c, &in, names[l], &tr[l], st);
        if (rc == SX_OK) rc = add_obs(out->obs, row0, tr[l], names[l], st);
        if (rc == SX_OK) rc = add_probabilities(out, row0, tr[l], names[l], st);
    }
    return rc;
}

int sx_pl_transfer_all(sx_pl_ctx *c, const sx_pl_transfer_in *base, const sx_frame *ref_obs,
                       const sx_frame *q_obs, const char *labels, sx_dataset *out, int64_t row0,
                       sx_status *st)
{
    char buf[1024];
    const char *names[MAX_LABELS];
    sx_transfer_result *tr[MAX_LABELS] = {0};
    int n = split_labels(labels, buf, sizeof buf, names);
    if (n < 1)
        return sx_status_set(st, SX_EINVAL, "give one to %d label columns to transfer (got "
                             "'%s')", MAX_LABELS, labels ? labels : "");
    int rc = transfer_each(c, base, ref_obs, q_obs, names, n, tr, out, row0, st);
    if (rc == SX_OK && n > 1) rc = add_conflicts(out, row0, base, ref_obs, names, tr, n, st);
    if (rc == SX_OK)
        rc = sx_pl_write_labels(c->outdir, base->q_names, (const sx_transfer_result *const *)tr,
                                names, n, 1, st); /* labels.csv also with plots off: a CLI
                                                     user's table (50 ms at 100k cells) */
    if (rc == SX_OK) sx_pl_file_out(c, "labels.csv");
    for (int l = 0; l < n; l++) sx_transfer_free(tr[l]);
    return rc;
}
