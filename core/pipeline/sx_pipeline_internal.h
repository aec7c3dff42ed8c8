/* sx_pipeline_internal — helpers private to core/pipeline: a tiny JSON text builder, the job
 * log (log.txt), file helpers (mkdir -p, write-then-rename) and the reference file writer. */
#ifndef SX_PIPELINE_INTERNAL_H
#define SX_PIPELINE_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "sx_dataset.h"
#include "sx_error.h"
#include "sx_pipeline.h"
#include "sx_transfer.h"

/* ---- growable text (JSON / CSV) ---- */
typedef struct sx_sb {
    char *s;
    size_t len, cap;
    int oom;
} sx_sb;

void sx_sb_putf(sx_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sx_sb_puts(sx_sb *b, const char *s);
/* JSON string literal with escapes (NULL -> null). */
void sx_sb_json_str(sx_sb *b, const char *s);
/* JSON number; non-finite -> null. */
void sx_sb_json_num(sx_sb *b, double v);
/* CSV field, quoted when it holds a comma, quote or newline. */
void sx_sb_csv(sx_sb *b, const char *s);
void sx_sb_free(sx_sb *b);

/* Write text to path via "<path>.tmp" + rename. */
int sx_pl_write_file(const char *path, const char *text, size_t len, sx_status *st);
/* mkdir -p. */
int sx_pl_mkdirs(const char *path, sx_status *st);
/* "<dir>/<name>" (caller frees). */
char *sx_pl_join(const char *dir, const char *name);
int sx_pl_is_dir(const char *path);
int sx_pl_exists(const char *path);
double sx_pl_now(void);

/* ---- the job log (log.txt): "<date time,ms> - SCALEX - INFO - msg" lines, as SCALEX ---- */
typedef struct sx_pl_log {
    FILE *f;
} sx_pl_log;
void sx_pl_log_msg(sx_pl_log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write reference.h5: the model file plus the "reference" group (see sx_pipeline.h). obs
 * columns written: every categorical or string column of obs. umap may be NULL. */
int sx_pl_reference_write(const char *path, const sx_nn_model *m, const sx_frame *obs,
                          const double *latent, int dim, const float *umap, double umap_a,
                          double umap_b, sx_status *st);

/* ---- result tables (sx_jobdir.h), written once from memory ---- */
/* labels.sxt and (csv) its labels.csv: cell, then per label column (n_tr results, names[])
 * its label, confidence, mapping_score, top3; the first column's names are plain
 * ("label"...), the others' prefixed with the column name ("subtype", ...). Without csv the
 * CSV is made on request from the table (the daemon: srv_results_download). */
int sx_pl_write_labels(const char *outdir, const char *const *cells,
                       const sx_transfer_result *const *tr, const char *const *names, int n_tr,
                       int csv, sx_status *st);
/* latent.sxt from obsm latent and umap.sxt from obsm X_umap (each only when present); the
 * UMAP label is "<label>_transfer", else label, else leiden. */
/* A projection's reference cells left out of its output (set.reference_cells off): its
 * tables say which reference cells the query was placed among (refcells.json) from these,
 * borrowed from the reference. n = 0: none left out. */
typedef struct sx_pl_refrows {
    int64_t n;
    const char *const *names;
    const double *latent; /* n x dim */
    int dim;
    const float *umap;    /* n x 2: the fixed layout the query was placed on; NULL: none */
} sx_pl_refrows;
/* left: the reference's cells the output left out (NULL: none; its leading "reference" rows
 * are then the ones left to the reference's tables). */
int sx_pl_write_tables(const char *outdir, const sx_dataset *d, const char *label,
                       const sx_pl_refrows *left, sx_status *st);

#endif
