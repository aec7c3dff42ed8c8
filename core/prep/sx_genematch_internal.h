/* sx_genematch_internal — the gene table's layout, shared by the matcher and the table
 * reader inside core/prep only. */
#ifndef SX_GENEMATCH_INTERNAL_H
#define SX_GENEMATCH_INTERNAL_H

#include "sx_genematch.h"

/* pairs in file order: q[i] (query id) -> r[i] (reference gene), both owned */
struct sx_gene_table {
    int64_t n;
    char **q, **r;
};

#endif
