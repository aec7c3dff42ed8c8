/* engine — the scalexd binary's srv_engine over core/io and core/pipeline. */
#ifndef ENGINE_H
#define ENGINE_H

#include "srv_engine.h"

typedef struct engine {
    const char *label_option; /* the pipeline option naming the label column */
    int hdf5_threadsafe;
    struct sandbox *sandbox; /* child-process validation (sandbox.h), or NULL: in-process */
} engine;

void engine_init(engine *e, srv_engine *out);

#endif
