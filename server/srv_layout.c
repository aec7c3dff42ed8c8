#include "srv_layout.h"

#include <stdarg.h>
#include <stdio.h>

__attribute__((format(printf, 4, 5))) static int fit(char *out, size_t n, sx_status *st,
                                                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= n) {
        if (n) out[0] = 0;
        /* no path in the message: it may reach a client */
        return sx_status_set(st, SX_ELIMIT, "a path under the data dir is longer than %zu bytes: "
                             "use a shorter --data-dir", n ? n - 1 : 0);
    }
    return SX_OK;
}

int srv_layout_dataset_rel(const char *id, const char *ext, char *out, size_t n, sx_status *st)
{
    if (!ext) return fit(out, n, st, "datasets/%s", id);
    return fit(out, n, st, "datasets/%s.%s", id, ext);
}

int srv_layout_reference_rel(const char *name, char *out, size_t n, sx_status *st)
{
    return fit(out, n, st, "references/%s", name);
}

int srv_layout_abs(const char *data_dir, const char *rel, char *out, size_t n, sx_status *st)
{
    return fit(out, n, st, "%s/%s", data_dir, rel);
}

int srv_layout_datasets_dir(const char *data_dir, char *out, size_t n, sx_status *st)
{
    return fit(out, n, st, "%s/datasets", data_dir);
}

int srv_layout_references_dir(const char *data_dir, char *out, size_t n, sx_status *st)
{
    return fit(out, n, st, "%s/references", data_dir);
}

int srv_layout_spool_dir(const char *data_dir, char *out, size_t n, sx_status *st)
{
    return fit(out, n, st, "%s/spool", data_dir);
}

int srv_layout_spool_file(const char *data_dir, const char *rid, char *out, size_t n,
                          sx_status *st)
{
    return fit(out, n, st, "%s/spool/%s.part", data_dir, rid);
}

int srv_layout_spool_parts(const char *data_dir, const char *rid, char *out, size_t n,
                           sx_status *st)
{
    return fit(out, n, st, "%s/spool/%s.d", data_dir, rid);
}

int srv_layout_job_dir(const char *data_dir, const char *job_id, char *out, size_t n,
                       sx_status *st)
{
    return fit(out, n, st, "%s/jobs/%s", data_dir, job_id);
}

int srv_layout_registry_file(const char *data_dir, char *out, size_t n, sx_status *st)
{
    return fit(out, n, st, "%s/registry.sqlite", data_dir);
}

int srv_layout_port_file(const char *data_dir, char *out, size_t n, sx_status *st)
{
    return fit(out, n, st, "%s/scalexd.port", data_dir);
}
