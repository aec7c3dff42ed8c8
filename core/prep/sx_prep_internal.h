/* sx_prep_internal — helpers shared inside core/prep only. */
#ifndef SX_PREP_INTERNAL_H
#define SX_PREP_INTERNAL_H

#include "sx_prep.h"

/* Reindexed copy of X (query columns described by var) onto ref: *Xout (caller frees) and
 * *vout (a frame of the reference names). Thresholds of o are checked (SX_EGENES). X may be
 * NULL (only the frame is built). */
int sx_prep__reindex_build(const sx_frame *var, const sx_csr *X, const char *const *ref,
                           int64_t n_ref, const sx_reindex_opts *o, sx_reindex_report *rep,
                           sx_csr **Xout, sx_frame **vout, sx_status *st);

/* normalize_total in two parts, so the rows can be scaled in chunks: the float32 target
 * (target < 0: median of the nonzero float32 cell totals; 0: 10000; NaN when out of memory)
 * and the scaling of the rows of X (a row view is fine) to it. */
float sx_prep__normalize_after(const sx_csr *X, double target);
void sx_prep__normalize_rows(sx_csr *X, float after, double *totals);
/* The float32 factor normalize_rows multiplies a row of n values by, and (total, may be
 * NULL) the row's float32 total (scipy's sum: first value + numpy's pairwise sum of the
 * rest), for a row held outside a matrix. */
float sx_prep__row_factor(const float *v, int64_t n, float after, float *total);

/* Steps of sx_prep_apply_reference shared with the streamed projection (sx_prep_stream.c):
 * the resolved option values (min_features and target_sum with their defaults, rows per
 * chunk); ERCC/MT-/mt- names; obs "batch" without empty categories into out->domains /
 * domain_of_cell; MaxAbs fit and apply on d->X into out->scale; the settings JSON and uns
 * records of a projection. Codes and messages as sx_prep_apply_reference's. */
int sx_prep__resolve(const sx_prep_opts *o, int64_t *min_features, double *target,
                     int64_t *chunk, sx_status *st);
int sx_prep__is_control_gene(const char *g);
int sx_prep__finalize_domains(sx_dataset *d, sx_prep_result *out, sx_status *st);
int sx_prep__scale(sx_dataset *d, sx_scale_mode mode, int recip_double, int64_t chunk,
                   const sx_progress *p, sx_prep_result *out, sx_status *st);
int sx_prep__finish_projection(sx_dataset *d, const sx_prep_opts *o, sx_prep_result *out,
                               sx_status *st);

#endif
