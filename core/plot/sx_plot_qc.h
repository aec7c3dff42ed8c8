/* sx_plot_qc — the QC panel of a map (qc.png): genes matched per rule, the mapping-score
 * histogram when there is one, and the cells per transferred label. PNG only, written to
 * "<path>.tmp" and renamed into place; deterministic. */
#ifndef SX_PLOT_QC_H
#define SX_PLOT_QC_H

#include <stdint.h>

#include "sx_error.h"

/* Everything borrowed. A panel is drawn when it has data: n_rules > 0, n_score > 0,
 * n_classes > 0. */
typedef struct sx_plot_qc_data {
    const char *title;            /* figure title (NULL = none) */
    int n_rules;                  /* genes: one bar per rule, then "not found" */
    const char *const *rule;
    const int64_t *rule_n;
    int64_t n_missing;
    const double *score;          /* mapping score per query cell, in [0, 1] */
    int64_t n_score;
    const char *label;            /* cells per class of this label column */
    int n_classes;
    const char *const *classes;
    const int64_t *class_n;
} sx_plot_qc_data;

/* Errors: SX_EINVAL (nothing to draw or not a .png path), SX_EIO (cannot write). */
int sx_plot_qc(const char *path, const sx_plot_qc_data *d, sx_status *st);

#endif
