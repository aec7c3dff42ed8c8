/* srv_refs — registering references: copy (hard-link when possible) a finished integrate
 * job's reference files into DATA_DIR/references/<name>/ and insert the catalog row. Used
 * by POST /v1/references and `scalexd reference add`. */
#ifndef SRV_REFS_H
#define SRV_REFS_H

#include "srv_registry.h"

typedef struct srv_ref_add {
    const char *name;        /* srv_name_ok */
    const char *src_dir;     /* an integrate output folder holding reference.h5 */
    const char *job_id;      /* NULL when added from a folder */
    int64_t owner;           /* 0 when added by the CLI */
    const char *description, *species, *tissue;
    const char *label_columns_json; /* JSON array of column names, or NULL */
} srv_ref_add;

/* SX_ESTATE when the name is taken, SX_ENOTFOUND when src_dir has no reference.h5. */
int srv_refs_add(srv_db *db, const char *data_dir, const srv_ref_add *a, sx_status *st);

#endif
