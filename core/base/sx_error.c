#include "sx_error.h"

#include <stdio.h>
#include <string.h>

void sx_status_clear(sx_status *st)
{
    if (!st) return;
    st->code = SX_OK;
    st->msg[0] = '\0';
}

int sx_status_vset(sx_status *st, int code, const char *fmt, va_list ap)
{
    if (!st) return code;
    st->code = code;
    vsnprintf(st->msg, sizeof st->msg, fmt, ap);
    return code;
}

int sx_status_set(sx_status *st, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sx_status_vset(st, code, fmt, ap);
    va_end(ap);
    return code;
}

int sx_status_prefix(sx_status *st, const char *fmt, ...)
{
    if (!st) return SX_EINTERNAL;
    char pre[SX_STATUS_MSG], old[SX_STATUS_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, st->msg, sizeof old);
    size_t lp = strlen(pre);
    if (lp > sizeof st->msg - 3) lp = sizeof st->msg - 3;
    memcpy(st->msg, pre, lp);
    memcpy(st->msg + lp, ": ", 2);
    size_t room = sizeof st->msg - lp - 3;
    size_t lo = strnlen(old, room);
    memcpy(st->msg + lp + 2, old, lo);
    st->msg[lp + 2 + lo] = '\0';
    return st->code;
}

static const struct { int code; const char *name, *text; } errs[] = {
    {SX_OK, "OK", "success"},
    {SX_EINVAL, "EINVAL", "invalid argument"},
    {SX_ENOMEM, "ENOMEM", "out of memory"},
    {SX_EIO, "EIO", "input/output error"},
    {SX_EFORMAT, "EFORMAT", "bad or unrecognised file format"},
    {SX_EUNSUPPORTED, "EUNSUPPORTED", "unsupported feature"},
    {SX_EGENES, "EGENES", "gene sets do not match"},
    {SX_ECANCELED, "ECANCELED", "canceled"},
    {SX_ENOTFOUND, "ENOTFOUND", "not found"},
    {SX_EDATA, "EDATA", "invalid data values"},
    {SX_ESTATE, "ESTATE", "invalid state"},
    {SX_ELIMIT, "ELIMIT", "limit exceeded"},
    {SX_EINTERNAL, "EINTERNAL", "internal error"},
};

const char *sx_strerror(int code)
{
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++)
        if (errs[i].code == code) return errs[i].text;
    return "unknown error";
}

const char *sx_errname(int code)
{
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++)
        if (errs[i].code == code) return errs[i].name;
    return "EUNKNOWN";
}
