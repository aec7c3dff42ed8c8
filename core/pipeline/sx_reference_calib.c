/* sx_reference_calib — a reference's label-transfer calibrations, fitted once per label
 * column and kept with the reference.
 *
 * Every transfer fits the mapping score's distributions (and, with --confidence isotonic,
 * the confidence's refit) on up to 2000 held-out reference cells: exact searches of those
 * cells against the reference, per batch and per label. On a 100k-cell reference that was
 * 0.8 CPU-s of every map job whatever the query's size (a third of a 10k-cell job), spent
 * again on the same reference cells with the same options. Fitted here once, when the daemon
 * loads or prepares a reference, with the options a job gets by default; a job whose options
 * match (label column, k, k_prob, calib_max, seed, isotonic, batches) uses it, and any other
 * fits its own as before. The result is the same bytes either way (test_reference_calib).
 *
 * In reference.map (sx_reference_map.c) as one section: u32 count, u32 0, then per entry
 * i64 entry_bytes (all of it, this field included), i32 k, i32 k_prob, i64 calib_max,
 * u64 seed, i32 isotonic, i32 has_batch, i64 name_len, the name (padded to 8), then the
 * calibration as sx_transfer_calib_write writes it (the rest of the entry). */
#include <string.h>

#include "sx_alloc.h"
#include "sx_log.h"
#include "sx_pipeline_ctx.h"
#include "sx_pipeline_internal.h"
#include "sx_transfer.h"

typedef struct sx_ref_calib {
    char *label;
    int32_t k, k_prob, isotonic, has_batch;
    int64_t calib_max;
    uint64_t seed;
    sx_transfer_calib cal;
} sx_ref_calib;

typedef struct entry_head {
    int64_t bytes;
    int32_t k, k_prob;
    int64_t calib_max;
    uint64_t seed;
    int32_t isotonic, has_batch;
    int64_t name_len;
} entry_head;

void sx_reference_calib_free(sx_reference *r)
{
    for (int i = 0; r && i < r->n_calibs; i++) {
        sx_free(r->calibs[i].label);
        sx_transfer_calib_clear(&r->calibs[i].cal);
    }
    if (r) {
        sx_free(r->calibs);
        r->calibs = NULL;
        r->n_calibs = 0;
    }
}

/* Columns a user transfers: categorical ones other than the batches and the clusters (the
 * carried Leiden clusters use the plain vote, without calibration). */
static int is_label_column(const sx_column *col)
{
    return col->kind == SX_COL_CATEGORICAL && strcmp(col->name, "batch") &&
           strcmp(col->name, "leiden");
}

/* The transfer options a job gets by default (the option table's values). */
static int default_opts(int64_t n_ref, int threads, sx_transfer_opts *to, sx_status *st)
{
    sx_pipeline_opts *po = sx_pipeline_opts_new();
    if (!po) return sx_status_set(st, SX_ENOMEM, "out of memory");
    sx_job_spec job = {.type = SX_JOB_PROJECT, .opts = po, .threads = threads};
    sx_pl_settings set;
    int rc = sx_pl_settings_resolve(&job, &set, st);
    if (rc == SX_OK) sx_pl_transfer_opts(&set, n_ref, to);
    sx_pipeline_opts_free(po);
    return rc;
}

static size_t name_pad(size_t n) { return (n + 7) & ~(size_t)7; }

static int fit_column(sx_reference *r, const sx_column *col, const sx_transfer_opts *to,
                      sx_ref_calib *e, sx_status *st)
{
    const char **rl = sx_calloc((size_t)r->n_cells + 1, sizeof *rl);
    if (!rl) return sx_status_set(st, SX_ENOMEM, "out of memory");
    sx_pl_ref_label_texts(col, r->n_cells, rl);
    int rc = sx_transfer_calibrate(r->latent, r->n_cells, rl, r->dim, to, &e->cal, st);
    sx_free(rl);
    if (rc) return rc;
    e->label = sx_strdup(col->name);
    e->k = to->k;
    e->k_prob = to->k_prob;
    e->calib_max = to->calib_max;
    e->seed = to->seed;
    e->isotonic = to->isotonic;
    e->has_batch = to->ref_batch != NULL;
    if (!e->label) {
        sx_transfer_calib_clear(&e->cal);
        return sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    return SX_OK;
}

int sx_reference_calib_build(sx_reference *r, int threads, sx_status *st)
{
    if (!r || r->calibs || !r->latent || !r->obs) return SX_OK;
    sx_transfer_opts to;
    int rc = default_opts(r->n_cells, threads, &to, st);
    if (rc || to.k >= r->n_cells) return rc; /* too few cells to hold any out */
    int n = 0;
    for (int c = 0; c < r->obs->n_cols; c++) n += is_label_column(&r->obs->cols[c]);
    if (n == 0) return SX_OK;
    sx_ref_calib *all = sx_calloc((size_t)n, sizeof *all);
    int32_t *bc = NULL;
    const sx_column *batch = sx_frame_col(r->obs, "batch");
    if (!all) return sx_status_set(st, SX_ENOMEM, "out of memory");
    if (batch && !(bc = sx_pl_batch_codes(batch, r->n_cells, st))) {
        sx_free(all);
        return st->code;
    }
    to.ref_batch = bc;
    int m = 0;
    for (int c = 0; rc == SX_OK && c < r->obs->n_cols; c++) {
        if (!is_label_column(&r->obs->cols[c])) continue;
        rc = fit_column(r, &r->obs->cols[c], &to, &all[m], st);
        if (rc == SX_OK) m++;
        else if (rc != SX_ENOMEM) rc = SX_OK; /* that column's jobs fit their own */
    }
    sx_free(bc);
    r->calibs = all; /* a failed entry holds nothing (fit_column leaves it empty) */
    r->n_calibs = m;
    if (rc) sx_reference_calib_free(r);
    return rc;
}

int sx_reference_calib_missing(const sx_reference *r)
{
    if (!r || r->n_calibs || !r->obs) return 0;
    for (int c = 0; c < r->obs->n_cols; c++)
        if (is_label_column(&r->obs->cols[c])) return 1;
    return 0;
}

const sx_transfer_calib *sx_reference_calib_find(const sx_reference *r, const char *label,
                                                 const sx_transfer_opts *o)
{
    for (int i = 0; r && label && i < r->n_calibs; i++) {
        const sx_ref_calib *e = &r->calibs[i];
        if (!strcmp(e->label, label) && e->k == o->k && e->k_prob == o->k_prob &&
            e->calib_max == o->calib_max && e->seed == o->seed && e->isotonic == o->isotonic &&
            e->has_batch == (o->ref_batch != NULL) && o->calibrate)
            return &e->cal;
    }
    return NULL;
}

size_t sx_reference_calib_bytes(const sx_reference *r)
{
    size_t b = 0;
    for (int i = 0; r && i < r->n_calibs; i++)
        b += sizeof(entry_head) + name_pad(strlen(r->calibs[i].label)) +
             sx_transfer_calib_serial_size(&r->calibs[i].cal);
    return r && r->n_calibs ? b + 8 : 0;
}

int sx_reference_calib_write(const sx_reference *r, int (*put)(void *, const void *, size_t),
                             void *user)
{
    uint32_t head[2] = {(uint32_t)r->n_calibs, 0};
    int rc = put(user, head, sizeof head);
    static const char zeros[8];
    for (int i = 0; !rc && i < r->n_calibs; i++) {
        const sx_ref_calib *e = &r->calibs[i];
        size_t nl = strlen(e->label);
        entry_head h = {(int64_t)(sizeof h + name_pad(nl) + sx_transfer_calib_serial_size(&e->cal)),
                        e->k, e->k_prob, e->calib_max, e->seed, e->isotonic, e->has_batch,
                        (int64_t)nl};
        rc = put(user, &h, sizeof h);
        if (!rc) rc = put(user, e->label, nl);
        if (!rc && name_pad(nl) > nl) rc = put(user, zeros, name_pad(nl) - nl);
        if (!rc) rc = sx_transfer_calib_write(&e->cal, put, user);
    }
    return rc;
}

/* One entry at p (len bytes left): into e, its size in *used. */
static int read_entry(const unsigned char *p, size_t len, sx_ref_calib *e, size_t *used,
                      sx_status *st)
{
    entry_head h;
    if (len < sizeof h) return sx_status_set(st, SX_EFORMAT, "calibrations: truncated");
    memcpy(&h, p, sizeof h);
    if (h.bytes < (int64_t)sizeof h || (uint64_t)h.bytes > len || h.name_len < 1 ||
        h.name_len > 4096 || (size_t)h.bytes < sizeof h + name_pad((size_t)h.name_len) ||
        memchr(p + sizeof h, 0, (size_t)h.name_len))
        return sx_status_set(st, SX_EFORMAT, "calibrations: bad entry");
    size_t off = sizeof h + name_pad((size_t)h.name_len);
    int rc = sx_transfer_calib_read(p + off, (size_t)h.bytes - off, &e->cal, st);
    if (rc) return rc;
    e->label = sx_strndup((const char *)p + sizeof h, (size_t)h.name_len);
    if (!e->label) {
        sx_transfer_calib_clear(&e->cal);
        return sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    e->k = h.k;
    e->k_prob = h.k_prob;
    e->calib_max = h.calib_max;
    e->seed = h.seed;
    e->isotonic = h.isotonic;
    e->has_batch = h.has_batch;
    *used = (size_t)h.bytes;
    return SX_OK;
}

int sx_reference_calib_open(sx_reference *r, const void *bytes, size_t len, sx_status *st)
{
    uint32_t head[2];
    if (len < sizeof head) return sx_status_set(st, SX_EFORMAT, "calibrations: truncated");
    memcpy(head, bytes, sizeof head);
    if (head[0] == 0 || head[0] > 4096 || head[1])
        return sx_status_set(st, SX_EFORMAT, "calibrations: bad count");
    sx_ref_calib *all = sx_calloc(head[0], sizeof *all);
    if (!all) return sx_status_set(st, SX_ENOMEM, "out of memory");
    const unsigned char *p = (const unsigned char *)bytes + sizeof head;
    size_t left = len - sizeof head;
    int rc = SX_OK;
    uint32_t n = 0;
    for (; rc == SX_OK && n < head[0]; n++) {
        size_t used = 0;
        rc = read_entry(p, left, &all[n], &used, st);
        p += used;
        left -= used;
    }
    if (rc == SX_OK && left)
        rc = sx_status_set(st, SX_EFORMAT, "calibrations: %zu bytes after the last", left);
    sx_reference_calib_free(r);
    r->calibs = all; /* a failed entry holds nothing (read_entry leaves it empty) */
    r->n_calibs = (int)n;
    if (rc) sx_reference_calib_free(r);
    return rc;
}
