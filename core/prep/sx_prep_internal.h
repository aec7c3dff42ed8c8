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

#endif
