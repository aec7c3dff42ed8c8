/* srv_refs — registering references: copy (hard-link when possible) a finished integrate
 * job's reference files into DATA_DIR/references/<name>/ and insert the catalog row. Used
 * by POST /v1/references and `scalexd reference add`. */
#ifndef SRV_REFS_H
#define SRV_REFS_H

#include "srv_registry.h"

/* What an import found in a foreign folder, for the catalog. */
typedef struct srv_ref_import_info {
    int64_t n_cells, n_genes;
    char version[32]; /* the producing program's version when the folder records one, else "" */
} srv_ref_import_info;

/* A reference folder written by another program (SCALEX's outdir: checkpoint/model.pt,
 * config.pt, adata.h5ad), converted to our reference.h5 when it is registered. server/ does
 * not see core/pipeline: the composition root (daemon/) fills this. The folder itself is kept
 * verbatim (hard-linked or copied) under REFDIR/<source>/, as the reference's provenance. */
typedef struct srv_ref_import {
    const char *source; /* the catalog's "source" for such folders, e.g. "scalex" */
    const char *what;   /* such a folder, as a message names it */
    int (*detect)(const char *dir); /* 1: dir is such a folder */
    int (*convert)(const char *dir, const char *out_h5, srv_ref_import_info *info,
                   sx_status *st);
    const char *const *keep; /* NULL-terminated files (relative to dir) kept as provenance */
} srv_ref_import;

typedef struct srv_ref_add {
    const char *name;        /* srv_name_ok */
    const char *src_dir;     /* an integrate output folder holding reference.h5 */
    const char *job_id;      /* NULL when added from a folder */
    int64_t owner;           /* 0 when added by the CLI */
    const char *description, *species, *tissue;
    const char *label_columns_json; /* JSON array of column names, or NULL */
    const srv_ref_import *import;   /* may be NULL: only our own reference folders */
} srv_ref_add;

/* SX_ESTATE when the name is taken, SX_ENOTFOUND when src_dir has no reference.h5 (and is not
 * a folder a->import detects). The catalog row's "source" is "scalexd" for our own folders,
 * import->source for an imported one, with "source_version" (null when not recorded). */
int srv_refs_add(srv_db *db, const char *data_dir, const srv_ref_add *a, sx_status *st);

#endif
