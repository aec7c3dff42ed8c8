/* sx_io_limits — defaults, setting by name, and the refusal messages of the input budget. */
#include "sx_io_limits.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* One row per limit: the field, and where a user raises it (the message says so). */
typedef struct {
    const char *name;
    size_t off;
    int is_ratio;
    const char *how;
} limit_row;

#define L(x) offsetof(sx_io_limits, x)
/* How a user raises each limit: the daemon's setting, or the scalex command's flag. */
static const limit_row rows[] = {
    [SX_LIM_CELLS] = {"max_cells", L(max_cells), 0,
                      "scalexd --max-cells / SCALEXD_MAX_CELLS; scalex --max_cells"},
    [SX_LIM_GENES] = {"max_genes", L(max_genes), 0,
                      "scalexd --max-genes / SCALEXD_MAX_GENES; scalex --max_genes"},
    [SX_LIM_NNZ] = {"max_nnz", L(max_nnz), 0,
                    "scalexd --max-nnz / SCALEXD_MAX_NNZ; scalex --max_nnz"},
    [SX_LIM_INFLATE] = {"max_inflate_ratio", L(max_inflate_ratio), 1,
                        "scalexd --max-inflate-ratio / SCALEXD_MAX_INFLATE_RATIO; scalex --max_inflate_ratio"},
    [SX_LIM_LINE] = {"max_line_bytes", L(max_line_bytes), 0,
                     "scalexd --max-line-bytes / SCALEXD_MAX_LINE_BYTES; scalex --max_line_bytes"},
    [SX_LIM_FIELDS] = {"max_cells", L(max_cells), 0,
                       "scalexd --max-cells / SCALEXD_MAX_CELLS; scalex --max_cells"},
};
/* the absolute cap behind max_inflate_ratio; set by name only (no dedicated kind) */
static const limit_row inflate_bytes_row = {
    "max_inflate_bytes", L(max_inflate_bytes), 0,
    "scalexd --max-inflate-bytes / SCALEXD_MAX_INFLATE_BYTES; scalex --max_inflate_bytes"};
#undef L

void sx_io_limits_default(sx_io_limits *l)
{
    l->max_cells = SX_IO_MAX_CELLS_DEFAULT;
    l->max_genes = SX_IO_MAX_GENES_DEFAULT;
    l->max_nnz = SX_IO_MAX_NNZ_DEFAULT;
    l->max_inflate_ratio = SX_IO_MAX_INFLATE_RATIO_DEFAULT;
    l->max_inflate_bytes = SX_IO_MAX_INFLATE_BYTES_DEFAULT;
    l->max_line_bytes = SX_IO_MAX_LINE_BYTES_DEFAULT;
}

const sx_io_limits *sx_io_limits_resolve(const sx_io_limits *l, sx_io_limits *tmp)
{
    sx_io_limits_default(tmp);
    if (!l) return tmp;
    if (l->max_cells > 0) tmp->max_cells = l->max_cells;
    if (l->max_genes > 0) tmp->max_genes = l->max_genes;
    if (l->max_nnz > 0) tmp->max_nnz = l->max_nnz;
    if (l->max_inflate_ratio > 0) tmp->max_inflate_ratio = l->max_inflate_ratio;
    if (l->max_inflate_bytes > 0) tmp->max_inflate_bytes = l->max_inflate_bytes;
    if (l->max_line_bytes > 0) tmp->max_line_bytes = l->max_line_bytes;
    return tmp;
}

static int same_name(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (*a != *b && !((*a == '-' || *a == '_') && (*b == '-' || *b == '_'))) return 0;
    return *a == *b;
}

int sx_io_limits_set(sx_io_limits *l, const char *name, const char *value, sx_status *st)
{
    const limit_row *r = same_name(name, inflate_bytes_row.name) ? &inflate_bytes_row : NULL;
    for (size_t i = 0; !r && i < sizeof rows / sizeof rows[0]; i++)
        if (same_name(name, rows[i].name)) r = &rows[i];
    if (!r)
        return sx_status_set(st, SX_EINVAL, "unknown input limit '%s' (max_cells, max_genes, "
                             "max_nnz, max_inflate_ratio, max_inflate_bytes, max_line_bytes)",
                             name);
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (end == value || *end || errno || !(v > 0) || !isfinite(v) ||
        (!r->is_ratio && (v != floor(v) || v > 9e18)))
        return sx_status_set(st, SX_EINVAL, "%s must be a positive %s, not '%s'", r->name,
                             r->is_ratio ? "number" : "integer", value);
    char *field = (char *)l + r->off;
    if (r->is_ratio) *(double *)field = v;
    else *(int64_t *)field = (int64_t)v;
    return SX_OK;
}

int sx_io_limit_check(const sx_io_limits *l, sx_io_limit_kind kind, int64_t value,
                      const char *path, const char *what, sx_status *st)
{
    sx_io_limits tmp;
    l = sx_io_limits_resolve(l, &tmp);
    int64_t lim = kind == SX_LIM_CELLS ? l->max_cells
                  : kind == SX_LIM_GENES ? l->max_genes
                  : kind == SX_LIM_NNZ ? l->max_nnz
                  : kind == SX_LIM_LINE ? l->max_line_bytes
                  : kind == SX_LIM_FIELDS ? l->max_cells + 1
                                          : (int64_t)l->max_inflate_ratio;
    if (value <= lim) return SX_OK;
    const limit_row *r = &rows[kind];
    return sx_status_set(st, SX_ELIMIT,
                         "%s: %lld %s exceeds the limit %s = %lld%s; if the input is genuine, "
                         "raise %s (%s)", path, (long long)value, what, r->name,
                         (long long)(kind == SX_LIM_FIELDS ? lim - 1 : lim),
                         kind == SX_LIM_FIELDS ? " (+1 for the names column)" : "", r->name,
                         r->how);
}

void sx_io_budget_init(sx_io_budget *b, const sx_io_limits *l, int64_t file_bytes)
{
    sx_io_limits_resolve(l, &b->lim);
    b->file_bytes = file_bytes > 0 ? file_bytes : 0;
    double a = b->lim.max_inflate_ratio * (double)b->file_bytes + (double)SX_IO_INFLATE_ALLOWANCE;
    b->allowed = a < (double)b->lim.max_inflate_bytes ? (int64_t)a : b->lim.max_inflate_bytes;
    b->used = 0;
}

int sx_io_budget_add(sx_io_budget *b, double bytes, const char *path, const char *what,
                     sx_status *st)
{
    if (bytes > 0) b->used = (double)b->used + bytes > 9e18 ? INT64_MAX : b->used + (int64_t)bytes;
    if (b->used <= b->allowed) return SX_OK;
    int cap = b->allowed == b->lim.max_inflate_bytes;
    const limit_row *r = cap ? &inflate_bytes_row : &rows[SX_LIM_INFLATE];
    if (cap)
        return sx_status_set(st, SX_ELIMIT,
                             "%s: %s expands to more than %lld bytes, the limit "
                             "max_inflate_bytes; if the input is genuine, raise %s (%s)", path,
                             what, (long long)b->allowed, r->name, r->how);
    return sx_status_set(st, SX_ELIMIT,
                         "%s: %s expands to more than %lld bytes from a file of %lld bytes "
                         "(the limit max_inflate_ratio = %g, plus %lld MiB); a file this "
                         "compressible is a decompression bomb or no count matrix; if the input "
                         "is genuine, raise %s (%s)", path, what, (long long)b->allowed,
                         (long long)b->file_bytes, b->lim.max_inflate_ratio,
                         (long long)(SX_IO_INFLATE_ALLOWANCE >> 20), r->name, r->how);
}
