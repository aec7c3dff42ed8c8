#include "srv_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t srv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double srv_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void srv_iso_time(int64_t ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char b[24];
    strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", b, (int)(ms % 1000));
}

int srv_random_bytes(void *out, size_t n, sx_status *st)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom((char *)out + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return sx_status_set(st, SX_EIO, "getrandom failed: %s", strerror(errno));
        }
        got += (size_t)r;
    }
    return SX_OK;
}

int srv_random_id(const char *prefix, char *out, size_t outsz, sx_status *st)
{
    unsigned char b[8];
    int rc = srv_random_bytes(b, sizeof b, st);
    if (rc) return rc;
    int k = snprintf(out, outsz, "%s", prefix);
    for (int i = 0; i < 8 && k + 2 < (int)outsz; i++) k += snprintf(out + k, outsz - k, "%02x", b[i]);
    return SX_OK;
}

int srv_mkdirs(const char *path, sx_status *st)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return sx_status_set(st, SX_EINVAL, "path too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return sx_status_set(st, SX_EIO, "cannot create directory %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0750) != 0 && errno != EEXIST)
        return sx_status_set(st, SX_EIO, "cannot create directory %s: %s; check the data dir "
                             "permissions", buf, strerror(errno));
    return SX_OK;
}

void srv_rmtree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        struct stat sb;
        if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode)) srv_rmtree(sub);
        else unlink(sub);
    }
    closedir(d);
    rmdir(path);
}

int srv_copy_file(const char *src, const char *dst, sx_status *st)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", dst);
    int in = -1, out = -1, rc = SX_OK;
    char *buf = malloc(1 << 20);
    if (!buf) return sx_status_set(st, SX_ENOMEM, "out of memory copying %s", src);
    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        rc = sx_status_set(st, SX_EIO, "cannot open %s: %s", src, strerror(errno));
        goto fail;
    }
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (out < 0) {
        rc = sx_status_set(st, SX_EIO, "cannot create %s: %s", tmp, strerror(errno));
        goto fail;
    }
    for (;;) {
        ssize_t n = read(in, buf, 1 << 20);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = sx_status_set(st, SX_EIO, "cannot read %s: %s", src, strerror(errno));
            goto fail;
        }
        if (n == 0) break;
        for (ssize_t w = 0; w < n;) {
            ssize_t k = write(out, buf + w, (size_t)(n - w));
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) {
                rc = sx_status_set(st, SX_EIO, "cannot write %s: %s (disk full?)", tmp, strerror(errno));
                goto fail;
            }
            w += k;
        }
    }
    if (fsync(out) != 0 || close(out) != 0) {
        out = -1;
        rc = sx_status_set(st, SX_EIO, "cannot flush %s: %s", tmp, strerror(errno));
        goto fail;
    }
    out = -1;
    if (rename(tmp, dst) != 0) {
        rc = sx_status_set(st, SX_EIO, "cannot rename %s to %s: %s", tmp, dst, strerror(errno));
        goto fail;
    }
fail:
    if (in >= 0) close(in);
    if (out >= 0) close(out);
    if (rc) unlink(tmp);
    free(buf);
    return rc;
}

char *srv_read_file(const char *path, size_t max, size_t *len, sx_status *st)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (!f) {
        sx_status_set(st, errno == ENOENT ? SX_ENOTFOUND : SX_EIO, "cannot open %s: %s", path,
                      strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    buf = malloc(cap);
    if (!buf) goto fail;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= max + 1) {
                sx_status_set(st, SX_ELIMIT, "%s is larger than %zu bytes", path, max);
                goto fail;
            }
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) goto fail;
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    if (n > max) {
        sx_status_set(st, SX_ELIMIT, "%s is larger than %zu bytes", path, max);
        goto fail;
    }
    buf[n] = 0;
    fclose(f);
    if (len) *len = n;
    return buf;
fail:
    if (st && st->code == SX_OK) sx_status_set(st, SX_ENOMEM, "out of memory reading %s", path);
    free(buf);
    fclose(f);
    return NULL;
}

int srv_write_file_atomic(const char *path, const char *data, size_t len, sx_status *st)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return sx_status_set(st, SX_EIO, "cannot create %s: %s", tmp, strerror(errno));
    size_t w = 0;
    while (w < len) {
        ssize_t k = write(fd, data + w, len - w);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) break;
        w += (size_t)k;
    }
    int ok = w == len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return sx_status_set(st, SX_EIO, "cannot write %s: %s", path, strerror(errno));
    }
    return SX_OK;
}

int srv_file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int srv_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64 || s[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int srv_ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

int64_t srv_tree_bytes(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) return 0;
    if (S_ISREG(sb.st_mode)) return (int64_t)sb.st_size;
    if (!S_ISDIR(sb.st_mode)) return 0;
    DIR *d = opendir(path);
    if (!d) return 0;
    int64_t total = 0;
    struct dirent *e;
    char sub[4400];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub) continue;
        total += srv_tree_bytes(sub);
    }
    closedir(d);
    return total;
}

void srv_redact_dir(char *text, const char *dir)
{
    size_t n = dir ? strlen(dir) : 0;
    while (n > 1 && dir[n - 1] == '/') n--; /* "data/" and "data" alike */
    if (!text || n == 0) return;
    char *w = text;
    for (const char *p = text; *p;) {
        if (!strncmp(p, dir, n) && p[n] == '/') {
            p += n + 1;
            continue;
        }
        *w++ = *p++;
    }
    *w = 0;
}
