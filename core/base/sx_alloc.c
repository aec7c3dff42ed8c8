#include "sx_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long fail_after = -1;

static int should_fail(void)
{
    if (fail_after < 0) return 0;
    if (fail_after == 0) return 1;
    fail_after--;
    return 0;
}

void sx_alloc_fail_after(long n) { fail_after = n; }

void *sx_malloc(size_t size)
{
    if (should_fail()) return NULL;
    return malloc(size ? size : 1);
}

void *sx_calloc(size_t n, size_t size)
{
    if (should_fail()) return NULL;
    if (n == 0 || size == 0) return calloc(1, 1);
    return calloc(n, size);
}

void *sx_mallocarray(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    return sx_malloc(n * size);
}

void *sx_reallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    if (should_fail()) return NULL;
    size_t bytes = n * size;
    return realloc(p, bytes ? bytes : 1);
}

char *sx_strdup(const char *s)
{
    if (!s) return NULL;
    return sx_strndup(s, strlen(s));
}

char *sx_strndup(const char *s, size_t n)
{
    char *d = sx_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void sx_free(void *p) { free(p); }

static int64_t status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    int64_t kb = 0;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0) {
            kb = strtoll(line + klen, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb * 1024;
}

int64_t sx_peak_rss(void) { return status_kb("VmHWM:"); }
int64_t sx_current_rss(void) { return status_kb("VmRSS:"); }
