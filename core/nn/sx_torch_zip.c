/* sx_torch_zip — the zip container of a PyTorch checkpoint (torch >= 1.6 writes one with
 * miniz: stored entries, sizes only in the central directory, data on 64-byte boundaries,
 * a zip64 end record before the classic one).
 *
 * We read the central directory, check every entry against the file (names that escape,
 * duplicates, data past the directory, compressed or encrypted entries are refused), and
 * read an entry's bytes with pread, checking its CRC-32. Compressed entries are refused
 * rather than inflated: torch never writes them, so one means the file was re-zipped by
 * another tool, and the fix (re-save with torch) is cheap for the user. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "sx_alloc.h"
#include "sx_torch_internal.h"

#define ZIP_MAX_ENTRIES (1 << 20)
#define EOCD_LEN 22
#define CDH_LEN 46
#define LFH_LEN 30

typedef struct zentry {
    char *name;
    uint64_t csize, usize, lho, data; /* data = absolute offset of the entry's bytes */
    uint32_t crc;
} zentry;

struct sx_tzip {
    int fd;
    uint64_t fsize;
    zentry *e;
    int64_t n;
    char label[128];
};

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t le64(const uint8_t *p) { return le32(p) | ((uint64_t)le32(p + 4) << 32); }

static int read_at(const sx_tzip *z, uint64_t off, void *buf, size_t n, sx_status *st)
{
    if (off > z->fsize || n > z->fsize - off)
        return sx_status_set(st, SX_EFORMAT, "'%s' is truncated or corrupt: a record at byte "
                             "%llu runs past the end of the file (%llu bytes)", z->label,
                             (unsigned long long)off, (unsigned long long)z->fsize);
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(z->fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return sx_status_set(st, SX_EIO, "'%s': read error", z->label);
        done += (size_t)r;
    }
    return SX_OK;
}

/* The legacy format (torch < 1.6, or _use_new_zipfile_serialization=False) is a bare pickle
 * stream starting with PROTO 2 and a magic number; say how to convert it. */
static int refuse_not_zip(const sx_tzip *z, sx_status *st)
{
    uint8_t h[4] = {0};
    if (z->fsize >= 2 && read_at(z, 0, h, 2, st) == SX_OK && h[0] == 0x80 && h[1] <= 5)
        return sx_status_set(st, SX_EUNSUPPORTED, "'%s' is in PyTorch's legacy (pre-1.6) "
                             "format, which we do not read; re-save it with torch >= 1.6: "
                             "torch.save(torch.load(f), f, _use_new_zipfile_serialization=True)",
                             z->label);
    return sx_status_set(st, SX_EFORMAT, "'%s' is not a PyTorch checkpoint (no zip end record; "
                         "truncated, or another kind of file)", z->label);
}

/* Locate the central directory: classic end record, or the zip64 one when the classic fields
 * are saturated. Fills *cd_off, *cd_len, *count. */
static int find_cd(sx_tzip *z, uint64_t *cd_off, uint64_t *cd_len, uint64_t *count,
                   sx_status *st)
{
    uint64_t tail = z->fsize < EOCD_LEN + 65535 ? z->fsize : EOCD_LEN + 65535;
    if (tail < EOCD_LEN) return refuse_not_zip(z, st);
    uint8_t *b = sx_malloc(tail);
    if (!b) return sx_status_set(st, SX_ENOMEM, "out of memory");
    int rc = read_at(z, z->fsize - tail, b, tail, st);
    int64_t at = -1;
    for (int64_t i = (int64_t)tail - EOCD_LEN; rc == SX_OK && i >= 0; i--)
        if (le32(b + i) == 0x06054b50u && (uint64_t)i + EOCD_LEN + le16(b + i + 20) == tail) {
            at = i;
            break;
        }
    if (rc != SX_OK || at < 0) {
        sx_free(b);
        return rc != SX_OK ? rc : refuse_not_zip(z, st);
    }
    const uint8_t *e = b + at;
    if (le16(e + 4) != 0 || le16(e + 6) != 0 || le16(e + 8) != le16(e + 10)) {
        sx_free(b);
        return sx_status_set(st, SX_EUNSUPPORTED, "'%s' is a multi-disk zip; a checkpoint is "
                             "one file", z->label);
    }
    *count = le16(e + 10);
    *cd_len = le32(e + 12);
    *cd_off = le32(e + 16);
    uint64_t eocd = z->fsize - tail + (uint64_t)at;
    sx_free(b);
    if (*count == 0xFFFF || *cd_len == 0xFFFFFFFFu || *cd_off == 0xFFFFFFFFu) {
        uint8_t loc[20], r[56];
        if (eocd < 20 || (rc = read_at(z, eocd - 20, loc, 20, st)) != SX_OK ||
            le32(loc) != 0x07064b50u)
            return rc ? rc : sx_status_set(st, SX_EFORMAT, "'%s': the zip64 locator is "
                                           "missing; the file is corrupt", z->label);
        if ((rc = read_at(z, le64(loc + 8), r, 56, st)) != SX_OK) return rc;
        if (le32(r) != 0x06064b50u)
            return sx_status_set(st, SX_EFORMAT, "'%s': bad zip64 end record", z->label);
        *count = le64(r + 32);
        *cd_len = le64(r + 40);
        *cd_off = le64(r + 48);
        eocd = le64(loc + 8);
    }
    if (*cd_off > eocd || *cd_len > eocd - *cd_off)
        return sx_status_set(st, SX_EFORMAT, "'%s' is truncated or corrupt: its central "
                             "directory lies past the end record", z->label);
    if (*count > ZIP_MAX_ENTRIES || *count * CDH_LEN > *cd_len)
        return sx_status_set(st, SX_EFORMAT, "'%s': %llu zip entries in a %llu-byte directory; "
                             "the file is corrupt", z->label, (unsigned long long)*count,
                             (unsigned long long)*cd_len);
    return SX_OK;
}

/* A name must stay inside the archive: no absolute path, no "..", no backslash, no NUL. */
static int name_ok(const char *s, size_t n)
{
    if (n == 0 || s[0] == '/' || memchr(s, '\\', n) || memchr(s, 0, n)) return 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j] != '/') j++;
        if (j - i == 2 && s[i] == '.' && s[i + 1] == '.') return 0;
        i = j + 1;
    }
    return 1;
}

/* zip64 extended information (id 1): the saturated fields in order usize, csize, offset. */
static int zip64_extra(const uint8_t *x, size_t xl, zentry *e, uint64_t sat_u, uint64_t sat_c,
                       uint64_t sat_o)
{
    for (size_t p = 0; p + 4 <= xl;) {
        uint16_t id = le16(x + p), len = le16(x + p + 2);
        if (p + 4 + len > xl) return -1;
        if (id == 1) {
            const uint8_t *q = x + p + 4, *end = q + len;
            if (sat_u) { if (q + 8 > end) return -1; e->usize = le64(q); q += 8; }
            if (sat_c) { if (q + 8 > end) return -1; e->csize = le64(q); q += 8; }
            if (sat_o) { if (q + 8 > end) return -1; e->lho = le64(q); }
            return 0;
        }
        p += 4 + (size_t)len;
    }
    return -1;
}

/* Parse central header at cd[*p], fill e, advance *p. */
static int parse_cdh(sx_tzip *z, const uint8_t *cd, uint64_t cd_len, uint64_t *p, zentry *e,
                     sx_status *st)
{
    const uint8_t *h = cd + *p;
    if (*p + CDH_LEN > cd_len || le32(h) != 0x02014b50u)
        return sx_status_set(st, SX_EFORMAT, "'%s': bad central directory entry; the file is "
                             "corrupt", z->label);
    uint16_t flags = le16(h + 8), method = le16(h + 10);
    uint64_t nl = le16(h + 28), xl = le16(h + 30), cl = le16(h + 32);
    if (*p + CDH_LEN + nl + xl + cl > cd_len)
        return sx_status_set(st, SX_EFORMAT, "'%s': central directory entry runs past the "
                             "directory; the file is corrupt", z->label);
    e->name = sx_strndup((const char *)h + CDH_LEN, nl);
    if (!e->name) return sx_status_set(st, SX_ENOMEM, "out of memory");
    if (!name_ok((const char *)h + CDH_LEN, nl))
        return sx_status_set(st, SX_EFORMAT, "'%s' has an entry named '%.80s' that escapes the "
                             "archive (absolute, '..' or odd characters); refusing the file",
                             z->label, e->name);
    if (flags & 1)
        return sx_status_set(st, SX_EUNSUPPORTED, "'%s': entry '%.80s' is encrypted; torch "
                             "never writes that", z->label, e->name);
    if (method != 0)
        return sx_status_set(st, SX_EUNSUPPORTED, "'%s': entry '%.80s' is compressed (zip "
                             "method %u), which torch never writes (the file was re-zipped?); "
                             "re-save it with torch.save(torch.load(f), f), or re-zip with "
                             "'zip -0'", z->label, e->name, method);
    e->crc = le32(h + 16);
    e->csize = le32(h + 20);
    e->usize = le32(h + 24);
    e->lho = le32(h + 42);
    uint64_t su = e->usize == 0xFFFFFFFFu, sc = e->csize == 0xFFFFFFFFu,
             so = e->lho == 0xFFFFFFFFu;
    if ((su || sc || so) && zip64_extra(h + CDH_LEN + nl, xl, e, su, sc, so) != 0)
        return sx_status_set(st, SX_EFORMAT, "'%s': entry '%.80s' lacks its zip64 sizes; the "
                             "file is corrupt", z->label, e->name);
    if (e->csize != e->usize)
        return sx_status_set(st, SX_EFORMAT, "'%s': stored entry '%.80s' has two sizes; the "
                             "file is corrupt", z->label, e->name);
    *p += CDH_LEN + nl + xl + cl;
    return SX_OK;
}

/* Local header: same name, data offset, data inside [0, cd_off). */
static int check_local(sx_tzip *z, zentry *e, uint64_t cd_off, sx_status *st)
{
    uint8_t h[LFH_LEN];
    int rc = read_at(z, e->lho, h, LFH_LEN, st);
    if (rc != SX_OK) return rc;
    size_t nl = le16(h + 26), xl = le16(h + 28);
    if (le32(h) != 0x04034b50u || nl != strlen(e->name))
        return sx_status_set(st, SX_EFORMAT, "'%s': the local header of '%.80s' does not match "
                             "the directory; the file is corrupt", z->label, e->name);
    char nm[512];
    if (nl < sizeof nm) {
        if ((rc = read_at(z, e->lho + LFH_LEN, nm, nl, st)) != SX_OK) return rc;
        if (memcmp(nm, e->name, nl) != 0)
            return sx_status_set(st, SX_EFORMAT, "'%s': the local header of '%.80s' names "
                                 "another entry; the file is corrupt", z->label, e->name);
    }
    e->data = e->lho + LFH_LEN + nl + xl;
    if (e->data > cd_off || e->csize > cd_off - e->data)
        return sx_status_set(st, SX_EFORMAT, "'%s' is truncated or corrupt: entry '%.80s' "
                             "(%llu bytes) runs past the end of the data", z->label, e->name,
                             (unsigned long long)e->csize);
    return SX_OK;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int check_duplicates(sx_tzip *z, sx_status *st)
{
    char **v = sx_mallocarray((size_t)z->n + 1, sizeof *v);
    if (!v) return sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int64_t i = 0; i < z->n; i++) v[i] = z->e[i].name;
    qsort(v, (size_t)z->n, sizeof *v, cmp_name);
    int rc = SX_OK;
    for (int64_t i = 1; i < z->n && rc == SX_OK; i++)
        if (strcmp(v[i - 1], v[i]) == 0)
            rc = sx_status_set(st, SX_EFORMAT, "'%s' holds two entries named '%.80s'; refusing "
                               "an ambiguous file", z->label, v[i]);
    sx_free(v);
    return rc;
}

static int read_directory(sx_tzip *z, sx_status *st)
{
    uint64_t cd_off = 0, cd_len = 0, count = 0;
    int rc = find_cd(z, &cd_off, &cd_len, &count, st);
    if (rc != SX_OK) return rc;
    uint8_t *cd = sx_malloc(cd_len ? cd_len : 1);
    z->e = sx_calloc(count ? count : 1, sizeof *z->e);
    if (!cd || !z->e) {
        sx_free(cd);
        return sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    rc = read_at(z, cd_off, cd, cd_len, st);
    uint64_t p = 0;
    for (uint64_t i = 0; rc == SX_OK && i < count; i++) {
        z->n = (int64_t)i + 1; /* so a partial entry's name is freed */
        rc = parse_cdh(z, cd, cd_len, &p, &z->e[i], st);
        if (rc == SX_OK) rc = check_local(z, &z->e[i], cd_off, st);
    }
    sx_free(cd);
    if (rc == SX_OK) rc = check_duplicates(z, st);
    return rc;
}

sx_tzip *sx_tzip_open(const char *path, const char *label, sx_status *st)
{
    sx_tzip *z = sx_calloc(1, sizeof *z);
    if (!z) {
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(z->label, sizeof z->label, "%s", label);
    z->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (z->fd < 0 || fstat(z->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        sx_status_set(st, SX_EIO, "cannot open '%s' (%s); check the path", label,
                      z->fd < 0 ? strerror(errno) : "not a regular file");
        sx_tzip_close(z);
        return NULL;
    }
    z->fsize = (uint64_t)sb.st_size;
    if (read_directory(z, st) != SX_OK) {
        sx_tzip_close(z);
        return NULL;
    }
    return z;
}

void sx_tzip_close(sx_tzip *z)
{
    if (!z) return;
    if (z->fd >= 0) close(z->fd);
    for (int64_t i = 0; i < z->n; i++) sx_free(z->e[i].name);
    sx_free(z->e);
    sx_free(z);
}

int64_t sx_tzip_count(const sx_tzip *z) { return z->n; }
const char *sx_tzip_name(const sx_tzip *z, int64_t i) { return z->e[i].name; }
uint64_t sx_tzip_size(const sx_tzip *z, int64_t i) { return z->e[i].usize; }
const char *sx_tzip_label(const sx_tzip *z) { return z->label; }

int64_t sx_tzip_find(const sx_tzip *z, const char *name)
{
    for (int64_t i = 0; i < z->n; i++)
        if (strcmp(z->e[i].name, name) == 0) return i;
    return -1;
}

int sx_tzip_read(const sx_tzip *z, int64_t i, uint8_t **out, sx_status *st)
{
    const zentry *e = &z->e[i];
    *out = NULL;
    if (e->usize > SIZE_MAX - 1) return sx_status_set(st, SX_ELIMIT, "'%s': entry too large",
                                                      z->label);
    uint8_t *b = sx_malloc((size_t)e->usize + 1);
    if (!b) return sx_status_set(st, SX_ENOMEM, "out of memory reading '%s' (%llu bytes)",
                                 e->name, (unsigned long long)e->usize);
    int rc = read_at(z, e->data, b, (size_t)e->usize, st);
    if (rc != SX_OK) {
        sx_free(b);
        return rc;
    }
    /* zlib's crc32 takes uInt lengths: feed it in slices */
    uLong crc = crc32(0L, Z_NULL, 0);
    for (uint64_t o = 0; o < e->usize;) {
        uInt k = (uInt)(e->usize - o > (1u << 30) ? (1u << 30) : e->usize - o);
        crc = crc32(crc, b + o, k);
        o += k;
    }
    if ((uint32_t)crc != e->crc) {
        sx_free(b);
        return sx_status_set(st, SX_EFORMAT, "'%s': entry '%.80s' fails its CRC check; the file "
                             "is corrupt (copy it again)", z->label, e->name);
    }
    *out = b;
    return SX_OK;
}
