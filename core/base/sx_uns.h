/* sx_uns — anndata's `uns`: a nested dictionary of scalars, strings and arrays.
 * A tree of nodes; every node owns its children and its key. Keys keep insertion order.
 */
#ifndef SX_UNS_H
#define SX_UNS_H

#include <stdint.h>

#include "sx_error.h"

typedef enum sx_uns_kind {
    SX_UNS_DICT = 0,
    SX_UNS_STRING,     /* str */
    SX_UNS_INT,        /* i */
    SX_UNS_FLOAT,      /* f */
    SX_UNS_BOOL,       /* i (0/1) */
    SX_UNS_ARR_INT,    /* ai[n] */
    SX_UNS_ARR_FLOAT,  /* af[n] (1-D; 2-D arrays keep shape in dims) */
    SX_UNS_ARR_STRING  /* as[n] */
} sx_uns_kind;

typedef struct sx_uns {
    char *key;            /* NULL for the root */
    sx_uns_kind kind;
    char *str;
    int64_t i;
    double f;
    int64_t n;            /* array length (product of dims) */
    int64_t dims[2];      /* array shape; dims[1] == 0 for 1-D */
    int64_t *ai;
    double *af;
    char **as;
    struct sx_uns **kids; /* dict children */
    int n_kids;
} sx_uns;

sx_uns *sx_uns_new_dict(void);
void sx_uns_free(sx_uns *u);
sx_uns *sx_uns_copy(const sx_uns *u);

/* Lookup a child of a dict by key (NULL if absent). */
sx_uns *sx_uns_get(const sx_uns *dict, const char *key);
/* Lookup by slash-separated path ("neighbors/params/n_neighbors"). */
sx_uns *sx_uns_path(const sx_uns *root, const char *path);

/* Setters on a dict: replace an existing key. Return the new node or NULL on OOM.
 * Arrays and strings are copied. */
sx_uns *sx_uns_set_dict(sx_uns *dict, const char *key);
sx_uns *sx_uns_set_string(sx_uns *dict, const char *key, const char *val);
sx_uns *sx_uns_set_int(sx_uns *dict, const char *key, int64_t val);
sx_uns *sx_uns_set_float(sx_uns *dict, const char *key, double val);
sx_uns *sx_uns_set_bool(sx_uns *dict, const char *key, int val);
sx_uns *sx_uns_set_ints(sx_uns *dict, const char *key, const int64_t *v, int64_t n);
sx_uns *sx_uns_set_floats(sx_uns *dict, const char *key, const double *v, int64_t n);
sx_uns *sx_uns_set_strings(sx_uns *dict, const char *key, const char *const *v, int64_t n);
/* Attach an already built node (takes ownership; its key is replaced by `key`). */
sx_uns *sx_uns_attach(sx_uns *dict, const char *key, sx_uns *node);

#endif
