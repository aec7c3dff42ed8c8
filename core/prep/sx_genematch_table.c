/* sx_genematch_table — gene tables (query id -> reference gene): text format, files, and
 * the reference folder's genes.tsv (see sx_genematch.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sx_alloc.h"
#include "sx_genematch_internal.h"

void sx_gene_table_free(sx_gene_table *t)
{
    if (!t) return;
    for (int64_t i = 0; i < t->n; i++) {
        sx_free(t->q[i]);
        sx_free(t->r[i]);
    }
    sx_free(t->q);
    sx_free(t->r);
    sx_free(t);
}

int64_t sx_gene_table_size(const sx_gene_table *t) { return t ? t->n : 0; }

/* a field without surrounding blanks or quotes (owned) */
static char *field(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '"')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '"' || s[n - 1] == '\r')) n--;
    return sx_strndup(s, n);
}

static int table_push(sx_gene_table *t, int64_t *cap, char *q, char *r)
{
    if (t->n == *cap) {
        int64_t nc = *cap ? *cap * 2 : 256;
        char **nq = sx_reallocarray(t->q, (size_t)nc, sizeof *nq);
        if (nq) t->q = nq;
        char **nr = nq ? sx_reallocarray(t->r, (size_t)nc, sizeof *nr) : NULL;
        if (nr) t->r = nr;
        if (!nq || !nr) return -1;
        *cap = nc;
    }
    t->q[t->n] = q;
    t->r[t->n++] = r;
    return 0;
}

sx_gene_table *sx_gene_table_parse(const char *text, size_t len, const char *what,
                                   sx_status *st)
{
    sx_gene_table *t = sx_calloc(1, sizeof *t);
    int64_t cap = 0, line = 0;
    if (!t) goto oom;
    for (size_t pos = 0; pos < len;) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + 1;
        line++;
        while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
        if (n == 0 || s[0] == '#') continue;
        const char *sep = memchr(s, '\t', n);
        if (!sep) sep = memchr(s, ',', n);
        if (!sep) {
            sx_status_set(st, SX_EFORMAT, "gene table %s, line %lld: one field; each line must "
                          "be 'query gene<TAB>reference gene'", what, (long long)line);
            sx_gene_table_free(t);
            return NULL;
        }
        /* a third field (e.g. an ortholog score) is ignored */
        const char *end = memchr(sep + 1, '\t', n - (size_t)(sep + 1 - s));
        size_t rn = end ? (size_t)(end - sep - 1) : n - (size_t)(sep + 1 - s);
        char *q = field(s, (size_t)(sep - s)), *r = field(sep + 1, rn);
        if (!q || !r || table_push(t, &cap, q, r)) {
            sx_free(q);
            sx_free(r);
            goto oom;
        }
    }
    return t;
oom:
    sx_gene_table_free(t);
    sx_status_set(st, SX_ENOMEM, "out of memory reading gene table %s", what);
    return NULL;
}

sx_gene_table *sx_gene_table_read(const char *path, sx_status *st)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT
                   ? (sx_status_set(st, SX_ENOTFOUND, "gene table %s does not exist", base), NULL)
                   : (sx_status_set(st, SX_EIO, "cannot read gene table %s: %s", base,
                                    strerror(errno)), NULL);
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    char chunk[65536];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + got > cap) {
            cap = (len + got) * 2;
            char *nb = sx_reallocarray(buf, cap, 1);
            if (!nb) {
                sx_free(buf);
                fclose(f);
                sx_status_set(st, SX_ENOMEM, "out of memory reading gene table %s", base);
                return NULL;
            }
            buf = nb;
        }
        memcpy(buf + len, chunk, got);
        len += got;
    }
    int bad = ferror(f);
    fclose(f);
    sx_gene_table *t = bad ? (sx_status_set(st, SX_EIO, "cannot read gene table %s", base), NULL)
                           : sx_gene_table_parse(buf ? buf : "", len, base, st);
    sx_free(buf);
    return t;
}

int sx_gene_table_find(const char *path, const char *ref, sx_gene_table **out, sx_status *st)
{
    *out = NULL;
    if (path) return (*out = sx_gene_table_read(path, st)) ? SX_OK : st->code;
    if (!ref) return SX_OK;
    struct stat sb;
    size_t n = strlen(ref);
    if (stat(ref, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        const char *slash = strrchr(ref, '/');
        n = slash ? (size_t)(slash - ref) : 0;
    }
    size_t cap = n + 16;
    char *p = sx_mallocarray(cap, 1);
    if (!p) return sx_status_set(st, SX_ENOMEM, "out of memory");
    snprintf(p, cap, "%.*s%sgenes.tsv", (int)n, ref, n ? "/" : "");
    int rc = SX_OK;
    if (access(p, F_OK) == 0 && !(*out = sx_gene_table_read(p, st))) rc = st->code;
    sx_free(p);
    return rc;
}
