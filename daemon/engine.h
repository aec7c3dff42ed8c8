/* engine — the scalexd binary's srv_engine over core/io and core/pipeline. */
#ifndef ENGINE_H
#define ENGINE_H

#include "srv_config.h"
#include "srv_engine.h"
#include "sx_io_limits.h"

typedef struct engine {
    const char *label_option; /* the pipeline option naming the label column */
    int hdf5_threadsafe;
    struct sandbox *sandbox; /* child-process validation (sandbox.h), or NULL: in-process */
    sx_io_limits limits;     /* every upload's size budget (max_cells, ...: the settings) */
} engine;

void engine_init(engine *e, srv_engine *out);
/* The settings the engine itself applies: every upload's size budget (max_cells, max_genes,
 * max_nnz, max_inflate_ratio/_bytes, max_line_bytes). */
void engine_configure(engine *e, const srv_config *cfg);
/* After a reference is loaded (either loader): its tables for the API next to it
 * (sx_reference_tables); a failure is logged, never fatal to the load. */
struct sx_reference;
void engine_ref_table(const struct sx_reference *r, const char *path);
/* Write the job's job.json (sx_jobdir) into job->outdir, with e's input budget, which the
 * runner applies to every input it reads. user: the engine (srv_engine.user). */
int engine_spec_write(void *user, const srv_job_run *job, sx_status *st);

#endif
