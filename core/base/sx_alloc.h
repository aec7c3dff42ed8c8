/* sx_alloc — every core/ allocation goes through here.
 *
 * Why: sizes are checked for overflow (n * size), and tests can make the Nth allocation
 * fail (sx_alloc_fail_after) to exercise error paths, SQLite style. Memory from these
 * functions is released with sx_free (plain free underneath, so free() is also safe).
 */
#ifndef SX_ALLOC_H
#define SX_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *sx_malloc(size_t size);
void *sx_calloc(size_t n, size_t size);            /* zeroed; NULL on overflow */
void *sx_mallocarray(size_t n, size_t size);       /* NULL on overflow */
void *sx_reallocarray(void *p, size_t n, size_t size);
char *sx_strdup(const char *s);
char *sx_strndup(const char *s, size_t n);
void sx_free(void *p);

/* Test hook: the next `n` allocations succeed, then every one fails until reset with -1.
 * Thread-global; only for single-threaded tests. */
void sx_alloc_fail_after(long n);

/* Peak resident set size of this process in bytes (from /proc), 0 if unknown. */
int64_t sx_peak_rss(void);
int64_t sx_current_rss(void);

#endif
