/* sx_pipeline_util — text building, files and the job log for core/pipeline. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "sx_alloc.h"
#include "sx_log.h"
#include "sx_pipeline_internal.h"

static void sb_grow(sx_sb *b, size_t extra)
{
    if (b->oom) return;
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *ns = sx_reallocarray(b->s, cap, 1);
    if (!ns) {
        b->oom = 1;
        return;
    }
    b->s = ns;
    b->cap = cap;
}

void sx_sb_putf(sx_sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sb_grow(b, (size_t)n);
        if (b->oom) return;
        memcpy(b->s + b->len, tmp, (size_t)n + 1);
        b->len += (size_t)n;
        return;
    }
    sb_grow(b, (size_t)n);
    if (b->oom) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sx_sb_puts(sx_sb *b, const char *s)
{
    size_t n = strlen(s);
    sb_grow(b, n);
    if (b->oom) return;
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

void sx_sb_json_str(sx_sb *b, const char *s)
{
    if (!s) {
        sx_sb_puts(b, "null");
        return;
    }
    sx_sb_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"') sx_sb_puts(b, "\\\"");
        else if (*p == '\\') sx_sb_puts(b, "\\\\");
        else if (*p == '\n') sx_sb_puts(b, "\\n");
        else if (*p == '\t') sx_sb_puts(b, "\\t");
        else if (*p == '\r') sx_sb_puts(b, "\\r");
        else if (*p < 0x20) sx_sb_putf(b, "\\u%04x", *p);
        else {
            char c[2] = {(char)*p, 0};
            sx_sb_puts(b, c);
        }
    }
    sx_sb_puts(b, "\"");
}

void sx_sb_json_num(sx_sb *b, double v)
{
    if (!isfinite(v)) sx_sb_puts(b, "null");
    else if (v == floor(v) && fabs(v) < 1e15) sx_sb_putf(b, "%.0f", v);
    else sx_sb_putf(b, "%.6g", v);
}

void sx_sb_csv(sx_sb *b, const char *s)
{
    if (!s) return;
    if (!strpbrk(s, ",\"\n\r")) {
        sx_sb_puts(b, s);
        return;
    }
    sx_sb_puts(b, "\"");
    for (const char *p = s; *p; p++) {
        if (*p == '"') sx_sb_puts(b, "\"\"");
        else {
            char c[2] = {*p, 0};
            sx_sb_puts(b, c);
        }
    }
    sx_sb_puts(b, "\"");
}

void sx_sb_free(sx_sb *b)
{
    sx_free(b->s);
    memset(b, 0, sizeof *b);
}

char *sx_pl_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = sx_malloc(n);
    if (p) snprintf(p, n, "%s%s%s", dir, (*dir && dir[strlen(dir) - 1] == '/') ? "" : "/", name);
    return p;
}

int sx_pl_is_dir(const char *path)
{
    struct stat sb;
    return path && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int sx_pl_exists(const char *path)
{
    struct stat sb;
    return path && stat(path, &sb) == 0;
}

int sx_pl_mkdirs(const char *path, sx_status *st)
{
    char *p = sx_strdup(path);
    if (!p) return sx_status_set(st, SX_ENOMEM, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                int e = errno;
                sx_status_set(st, SX_EIO, "cannot create folder '%s': %s", p, strerror(e));
                sx_free(p);
                return SX_EIO;
            }
            *s = c;
            if (c == '\0') break;
        }
    }
    sx_free(p);
    if (!sx_pl_is_dir(path))
        return sx_status_set(st, SX_EIO, "'%s' exists and is not a folder", path);
    return SX_OK;
}

int sx_pl_write_file(const char *path, const char *text, size_t len, sx_status *st)
{
    size_t n = strlen(path) + 5;
    char *tmp = sx_malloc(n);
    if (!tmp) return sx_status_set(st, SX_ENOMEM, "out of memory");
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int rc = SX_OK;
    if (!f) {
        rc = sx_status_set(st, SX_EIO, "cannot write '%s': %s", tmp, strerror(errno));
        goto out;
    }
    /* both run: the file is closed whether or not the write failed */
    int bad = len && fwrite(text, 1, len, f) != len;
    bad |= fclose(f) != 0;
    if (bad) {
        rc = sx_status_set(st, SX_EIO, "cannot write '%s' (disk full?)", tmp);
        remove(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = sx_status_set(st, SX_EIO, "cannot rename '%s' to '%s': %s", tmp, path,
                           strerror(errno));
        remove(tmp);
    }
out:
    sx_free(tmp);
    return rc;
}

double sx_pl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void sx_pl_log_msg(sx_pl_log *l, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    SX_INFO("%s", msg);
    if (!l || !l->f) return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(l->f, "%s,%03d - SCALEX - INFO - %s\n", when, (int)(tv.tv_usec / 1000), msg);
    fflush(l->f);
}
