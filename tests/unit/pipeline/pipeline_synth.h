/* pipeline_synth — tiny synthetic inputs for the workflow tests: three well-separated cell
 * types (each expresses its own block of genes), two batches; the truth is the generator's
 * own cell type of each cell. */
#ifndef PIPELINE_SYNTH_H
#define PIPELINE_SYNTH_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_io.h"
#include "sx_jobdir.h"
#include "sx_pipeline.h"
#include "sx_test.h"

enum { SYN_TYPES = 3, SYN_BLOCK = 20, SYN_GENES = SYN_TYPES * SYN_BLOCK };
static const char *const syn_type_names[SYN_TYPES] = {"B", "NK", "T"};

static __attribute__((unused)) uint64_t syn_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Cell i's type (the truth): round robin, so any prefix holds every type. */
static int syn_type(int64_t i) { return (int)(i % SYN_TYPES); }

static void syn_cell_name(const char *prefix, int64_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%04lld", prefix, (long long)i);
}

/* An sx_dataset of n cells: counts 4..11 on the cell type's gene block, 0..1 elsewhere;
 * obs celltype, batch (a/b); names PREFIX0000... With latent != 0, also obsm "latent"
 * (dim 4): the type's corner plus noise of +-0.1. */
static sx_dataset *syn_dataset(int64_t n, const char *prefix, uint64_t seed, int latent)
{
    sx_status st;
    float *x = calloc((size_t)n * SYN_GENES, sizeof *x);
    char **cells = calloc((size_t)n, sizeof *cells), *genes[SYN_GENES];
    const char **ct = calloc((size_t)n, sizeof *ct), **bt = calloc((size_t)n, sizeof *bt);
    double *z = calloc((size_t)n * 4, sizeof *z);
    for (int64_t i = 0; i < n; i++) {
        char b[64];
        syn_cell_name(prefix, i, b, sizeof b);
        cells[i] = strdup(b);
        ct[i] = syn_type_names[syn_type(i)];
        bt[i] = i % 2 ? "b" : "a";
        for (int g = 0; g < SYN_GENES; g++) {
            int on = g / SYN_BLOCK == syn_type(i);
            x[i * SYN_GENES + g] = (float)(on ? 4 + syn_next(&seed) % 8 : syn_next(&seed) % 2);
        }
        for (int k = 0; k < 4; k++)
            z[i * 4 + k] = (k == syn_type(i) ? 3.0 : 0.0) + ((double)(syn_next(&seed) % 2001) / 10000 - 0.1);
    }
    for (int g = 0; g < SYN_GENES; g++) {
        char b[32];
        snprintf(b, sizeof b, "gene%02d", g);
        genes[g] = strdup(b);
    }
    sx_dataset *d = sx_dataset_new(n, SYN_GENES, &st);
    ck_assert_ptr_nonnull(d);
    sx_frame_free(d->obs);
    sx_frame_free(d->var);
    d->obs = sx_frame_new(n, (const char *const *)cells, &st);
    d->var = sx_frame_new(SYN_GENES, (const char *const *)genes, &st);
    d->X = sx_csr_from_dense(x, n, SYN_GENES, &st);
    ck_assert(d->obs && d->var && d->X);
    ck_assert_int_eq(sx_frame_add_categorical_from_strings(d->obs, "celltype", ct, 1, &st), SX_OK);
    ck_assert_int_eq(sx_frame_add_categorical_from_strings(d->obs, "batch", bt, 1, &st), SX_OK);
    if (latent) ck_assert_int_eq(sx_dataset_set_obsm(d, "latent", z, n, 4, 0, &st), SX_OK);
    for (int64_t i = 0; i < n; i++) free(cells[i]);
    for (int g = 0; g < SYN_GENES; g++) free(genes[g]);
    free(cells), free(ct), free(bt), free(x), free(z);
    return d;
}

/* syn_dataset written to DIR/NAME.h5ad; returns the path (static ring of 4). */
static __attribute__((unused)) const char *syn_h5ad(const char *dir, const char *name, int64_t n, const char *prefix,
                            uint64_t seed, int latent)
{
    static char ring[4][600];
    static int at;
    char *p = ring[at++ % 4];
    snprintf(p, 600, "%s/%s.h5ad", dir, name);
    sx_status st;
    sx_dataset *d = syn_dataset(n, prefix, seed, latent);
    sx_write_opts wo = {0};
    ck_assert_msg(sx_h5ad_write(p, d, &wo, &st) == SX_OK, "%s", st.msg);
    sx_dataset_free(d);
    return p;
}

/* The labels table of a job folder: *cells and *labels (blocks to free()), its row count. */
static __attribute__((unused)) int64_t syn_read_labels(const char *outdir, char ***cells, char ***labels, double **conf)
{
    char path[700];
    sx_status st;
    snprintf(path, sizeof path, "%s/%s", outdir, sx_jobdir_table_name(SX_JOBDIR_LABELS));
    sx_jobdir_table *t = NULL;
    ck_assert_msg(sx_jobdir_table_open(path, &t, &st) == SX_OK, "%s", st.msg);
    int64_t n = sx_jobdir_table_rows(t);
    ck_assert_int_eq(sx_jobdir_table_find(t, "cell"), 0);
    ck_assert_int_eq(sx_jobdir_table_find(t, "label"), 1);
    ck_assert_int_eq(sx_jobdir_table_find(t, "confidence"), 2);
    ck_assert_int_eq(sx_jobdir_table_read_str(t, 0, 0, n, cells, &st), SX_OK);
    ck_assert_int_eq(sx_jobdir_table_read_str(t, 1, 0, n, labels, &st), SX_OK);
    *conf = malloc(((size_t)n + 1) * sizeof **conf);
    ck_assert_int_eq(sx_jobdir_table_read_num(t, 2, 0, n, *conf, &st), SX_OK);
    sx_jobdir_table_close(t);
    return n;
}

/* The truth of a synthetic cell name ("q0042" -> type of 42). */
static __attribute__((unused)) const char *syn_truth(const char *cell)
{
    const char *d = cell;
    while (*d && (*d < '0' || *d > '9')) d++;
    return syn_type_names[syn_type(atoll(d))];
}

#endif
