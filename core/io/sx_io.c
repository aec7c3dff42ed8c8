/* sx_io — reading any input: the format table (sx_format.c) detects the format and names
 * the reader, so this file knows no format. */
#include "sx_io.h"

int sx_io_detect(const char *path, sx_format *fmt, sx_status *st)
{
    return sx_format_sniff(path, fmt, NULL, st);
}

sx_dataset *sx_io_read(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                       sx_status *st)
{
    sx_format fmt;
    if (sx_format_sniff(path, &fmt, NULL, st) != SX_OK) return NULL;
    const sx_format_info *fi = sx_format_get(fmt);
    if (!fi || !fi->read) {
        sx_status_set(st, SX_EINTERNAL, "%s: format %s has no reader", path, sx_format_name(fmt));
        return NULL;
    }
    return fi->read(path, opts, prog, st);
}
