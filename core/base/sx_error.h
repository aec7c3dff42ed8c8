/* sx_error — the one error convention of libscalex.
 *
 * Every fallible function returns int: SX_OK (0) on success, a negative SX_E* code on
 * failure. A caller-provided sx_status carries the code plus a human message that names
 * the file, the element and the problem, and says what to do. No global error state:
 * workers are threads. Functions that create objects return NULL on failure and fill
 * the status passed to them.
 */
#ifndef SX_ERROR_H
#define SX_ERROR_H

#include <stdarg.h>

enum {
    SX_OK = 0,
    SX_EINVAL = -1,       /* bad argument / option value from the caller */
    SX_ENOMEM = -2,       /* allocation failed or a size would overflow */
    SX_EIO = -3,          /* a file could not be opened, read or written */
    SX_EFORMAT = -4,      /* input is not in a format we read, or is corrupt */
    SX_EUNSUPPORTED = -5, /* recognised but not supported (e.g. a blosc filter) */
    SX_EGENES = -6,       /* query and reference genes do not overlap enough */
    SX_ECANCELED = -7,    /* the cancel flag was raised */
    SX_ENOTFOUND = -8,    /* a named element/column/key does not exist */
    SX_EDATA = -9,        /* values are invalid (NaN, negative counts where forbidden...) */
    SX_ESTATE = -10,      /* an object is in the wrong state for the call */
    SX_ELIMIT = -11,      /* a size limit was exceeded (dimensions, memory budget) */
    SX_EINTERNAL = -12    /* an invariant broke: a bug, please report */
};

#define SX_STATUS_MSG 1024

typedef struct sx_status {
    int code;                 /* SX_OK or an SX_E* code */
    char msg[SX_STATUS_MSG];  /* human readable; empty when code == SX_OK */
} sx_status;

/* Reset to SX_OK. */
void sx_status_clear(sx_status *st);

/* Record an error; returns code so callers can `return sx_status_set(...)`.
 * st may be NULL (the message is dropped). */
int sx_status_set(sx_status *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int sx_status_vset(sx_status *st, int code, const char *fmt, va_list ap);

/* Prefix the existing message with context ("reading X: ..."); keeps the code.
 * Returns st->code. */
int sx_status_prefix(sx_status *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Static text of a code ("invalid argument", ...). Never NULL. */
const char *sx_strerror(int code);
/* Short stable name of a code ("EFORMAT"), used for problem types and exit codes. */
const char *sx_errname(int code);

#endif
