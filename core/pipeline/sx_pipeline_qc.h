/* sx_pipeline_qc — the QC report of a map (SHARED CONTRACT 2 in the project notes):
 *   {"genes": {"reference", "query", "matched", "by_rule": {rule: n}, "ambiguous": [..20]},
 *    "cells": {"query", "mapped"}, "batches": [..],
 *    "mapping_score": {"mean", "quantiles": {"5","25","50","75","95"}}, "unknown_fraction",
 *    "labels": {label: [{"label", "cells", "mean_confidence"}]},
 *    "warnings": [{"code", "message"}]}
 * Built from the gene-matching report and the output obs, whose per-cell transfer columns
 * (contract 1: <label>_transfer, <label>_transfer_confidence, <label>_mapping_score) are
 * read BY NAME when present, so the report works with whatever columns a run wrote.
 * mapping_score and unknown_fraction appear only when a <label>_mapping_score column does.
 * Private to core/pipeline. */
#ifndef SX_PIPELINE_QC_H
#define SX_PIPELINE_QC_H

#include <stdint.h>

#include "sx_frame.h"
#include "sx_genematch.h"
#include "sx_pipeline_ctx.h"

typedef struct sx_pl_qc_in {
    const sx_genematch_report *genes; /* NULL: no gene matching in this run ("genes" left out) */
    const sx_frame *obs;              /* output obs (borrowed) */
    int64_t row0, n_query;            /* the query's rows: [row0, row0 + n_query) */
    int64_t n_query_read;             /* query cells read, before the cell filter */
} sx_pl_qc_in;

/* The report as JSON text (caller frees with sx_free); NULL with st set on error. */
char *sx_pl_qc_json(const sx_pl_qc_in *in, sx_status *st);

/* The whole QC step of a run: the report kept for result.json's "qc" (c->qc), one
 * readable paragraph in the log, and qc.png in the output folder (a figure that cannot
 * be drawn is logged, never fails the run); with plots off (the daemon's /map) qc.png is
 * listed but drawn on first request (sx_pipeline_render_figure). */
int sx_pl_qc(sx_pl_ctx *c, const sx_pl_qc_in *in, sx_status *st);

#endif
