/* sx_text — plain-text count matrices (.csv/.txt/.tsv, optionally .gz) as SCALEX loads
 * them (FORMATS.md 4), plus the gzip-transparent line reader the other text-based readers
 * (MatrixMarket) share.
 *
 * Both text layouts are genes x cells on disk; the result is cells x genes. Values are
 * streamed into a sparse genes x cells matrix line by line (a dense copy of a large table
 * would not fit), then transposed once.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "sx_alloc.h"
#include "sx_io.h"
#include "sx_io_internal.h"
#include "sx_io_limits.h"
#include "sx_log.h"

/* ---------------------------------------------------------------- line reader */

struct sx_lines {
    gzFile gz;
    char *path;
    char *buf;          /* decompressed block */
    size_t bpos, blen;
    char *line;         /* current line (grown as needed) */
    size_t lcap;
    int64_t lineno;
    int eof;
    int gzip;
    sx_io_budget budget;  /* decompressed bytes of a gzip input (issue 14) */
};

#define SX_LINES_BLOCK (1u << 18)

sx_lines *sx_lines_open(const char *path, sx_status *st)
{
    sx_lines *lr = sx_calloc(1, sizeof *lr);
    if (!lr) goto oom;
    lr->path = sx_strdup(path);
    lr->buf = sx_malloc(SX_LINES_BLOCK);
    lr->lcap = 4096;
    lr->line = sx_malloc(lr->lcap);
    if (!lr->path || !lr->buf || !lr->line) goto oom;
    errno = 0;
    lr->gz = gzopen(path, "rb");
    if (!lr->gz) {
        sx_status_set(st, SX_EIO, "%s: cannot open (%s)", path,
                      errno ? strerror(errno) : "out of memory");
        sx_lines_close(lr);
        return NULL;
    }
    gzbuffer(lr->gz, 1u << 17);
    struct stat sb;
    sx_io_budget_init(&lr->budget, NULL, stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0);
    return lr;
oom:
    sx_lines_close(lr);
    sx_status_set(st, SX_ENOMEM, "%s: out of memory opening the file", path);
    return NULL;
}

void sx_lines_close(sx_lines *lr)
{
    if (!lr) return;
    if (lr->gz) gzclose(lr->gz);
    sx_free(lr->path);
    sx_free(lr->buf);
    sx_free(lr->line);
    sx_free(lr);
}

void sx_lines_set_limits(sx_lines *lr, const sx_io_limits *lim)
{
    sx_io_budget_init(&lr->budget, lim, lr->budget.file_bytes);
}

int64_t sx_lines_lineno(const sx_lines *lr) { return lr->lineno; }
int sx_lines_is_gzip(const sx_lines *lr) { return lr->gzip; }
int64_t sx_lines_offset(const sx_lines *lr) { return (int64_t)gzoffset(lr->gz); }

/* Refill the block; 1 = data, 0 = end, <0 = error. */
static int lines_fill(sx_lines *lr, sx_status *st)
{
    if (lr->eof) return 0;
    int n = gzread(lr->gz, lr->buf, SX_LINES_BLOCK);
    int err = Z_OK;
    const char *msg = gzerror(lr->gz, &err);
    /* Data read before a failure is delivered first: the error (kept by zlib) surfaces at
     * the next read, so the message points near the line where the damage starts. */
    if (n < 0 || (n == 0 && err != Z_OK && err != Z_STREAM_END)) {
        /* zlib reports a gzip member cut short as Z_BUF_ERROR "unexpected end of file". */
        if (err == Z_BUF_ERROR)
            return sx_status_set(st, SX_EFORMAT,
                                 "%s: the gzip stream ends early near line %lld (file truncated "
                                 "during copy or download?); re-create or re-download it",
                                 lr->path, (long long)lr->lineno + 1);
        if (err == Z_DATA_ERROR)
            return sx_status_set(st, SX_EFORMAT, "%s: corrupt gzip data near line %lld (%s)",
                                 lr->path, (long long)lr->lineno + 1, msg ? msg : "");
        return sx_status_set(st, SX_EIO, "%s: read error near line %lld (%s)", lr->path,
                             (long long)lr->lineno + 1,
                             err == Z_ERRNO ? strerror(errno) : (msg ? msg : "unknown"));
    }
    if (lr->lineno == 0 && lr->blen == 0) lr->gzip = !gzdirect(lr->gz);
    if (lr->gzip && sx_io_budget_add(&lr->budget, n, lr->path, "the gzip stream", st) != SX_OK)
        return SX_ELIMIT;
    lr->bpos = 0;
    lr->blen = (size_t)n;
    if (n == 0) {
        lr->eof = 1;
        return 0;
    }
    return 1;
}

int sx_lines_next(sx_lines *lr, char **line, size_t *len, sx_status *st)
{
    /* Most lines lie whole inside the block: return them where they are, NUL over the
     * newline, instead of copying every byte of a large mtx once more. The first line
     * (a byte order mark), a line across blocks or too long for the limit take the copy. */
    if (lr->bpos < lr->blen && lr->lineno > 0) {
        char *start = lr->buf + lr->bpos;
        char *nl = memchr(start, '\n', lr->blen - lr->bpos);
        if (nl && (int64_t)(nl - start) <= lr->budget.lim.max_line_bytes) {
            size_t n = (size_t)(nl - start);
            lr->bpos += n + 1;
            if (n > 0 && start[n - 1] == '\r') n--;
            start[n] = '\0';
            lr->lineno++;
            *line = start;
            *len = n;
            return 1;
        }
    }
    size_t ll = 0;
    int any = 0;
    for (;;) {
        if (lr->bpos >= lr->blen) {
            int r = lines_fill(lr, st);
            if (r < 0) return r;
            if (r == 0) {
                if (!any) return 0;
                break; /* last line without a newline */
            }
        }
        any = 1;
        char *start = lr->buf + lr->bpos;
        size_t avail = lr->blen - lr->bpos;
        char *nl = memchr(start, '\n', avail);
        size_t take = nl ? (size_t)(nl - start) : avail;
        /* a bound before the buffer grows: one line of commas must not take gigabytes */
        if ((int64_t)(ll + take) > lr->budget.lim.max_line_bytes)
            return sx_io_limit_check(&lr->budget.lim, SX_LIM_LINE, (int64_t)(ll + take),
                                     lr->path, "bytes (or more) in one line", st);
        if (ll + take + 1 > lr->lcap) {
            size_t cap = lr->lcap;
            while (ll + take + 1 > cap) cap *= 2;
            char *nb = sx_reallocarray(lr->line, cap, 1);
            if (!nb)
                return sx_status_set(st, SX_ENOMEM, "%s: line %lld is too long for memory",
                                     lr->path, (long long)lr->lineno + 1);
            lr->line = nb;
            lr->lcap = cap;
        }
        memcpy(lr->line + ll, start, take);
        ll += take;
        lr->bpos += take + (nl ? 1 : 0);
        if (nl) break;
    }
    if (ll > 0 && lr->line[ll - 1] == '\r') ll--;
    lr->line[ll] = '\0';
    lr->lineno++;
    if (lr->lineno == 1 && ll >= 3 && memcmp(lr->line, "\xEF\xBB\xBF", 3) == 0) {
        /* a UTF-8 byte order mark (Excel exports) is not part of the first name */
        memmove(lr->line, lr->line + 3, ll - 2);
        ll -= 3;
    }
    *line = lr->line;
    *len = ll;
    return 1;
}

/* ---------------------------------------------------------------- small helpers */

int64_t sx_io_file_size(const char *path, sx_status *st)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        sx_status_set(st, SX_EIO, "%s: %s", path, strerror(errno));
        return -1;
    }
    return (int64_t)sb.st_size;
}

int sx_io_ends_with(const char *path, const char *suffix)
{
    size_t a = strlen(path), b = strlen(suffix);
    return a >= b && strcmp(path + a - b, suffix) == 0;
}

char *sx_io_unquote(char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        memmove(s, s + 1, n - 2);
        s[n - 2] = '\0';
    }
    return s;
}

static int fields_push(sx_fields *f, char *p)
{
    if (f->n == f->cap) {
        int64_t cap = f->cap ? f->cap * 2 : 64;
        char **nv = sx_reallocarray(f->v, (size_t)cap, sizeof(char *));
        if (!nv) return -1;
        f->v = nv;
        f->cap = cap;
    }
    f->v[f->n++] = p;
    return 0;
}

int sx_io_split(char *s, char delim, sx_fields *f, sx_status *st)
{
    f->n = 0;
    if (delim) {
        char *p = s;
        for (;;) {
            if (fields_push(f, p) != 0) goto oom;
            char *q = strchr(p, delim);
            if (!q) break;
            *q = '\0';
            p = q + 1;
        }
        return SX_OK;
    }
    char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) break;
        if (fields_push(f, p) != 0) goto oom;
        while (*p && *p != ' ' && *p != '\t') p++;
        if (!*p) break;
        *p++ = '\0';
    }
    return SX_OK;
oom:
    return sx_status_set(st, SX_ENOMEM, "out of memory splitting a line");
}

void sx_fields_free(sx_fields *f)
{
    sx_free(f->v);
    f->v = NULL;
    f->n = f->cap = 0;
}

int sx_io_parse_number(const char *s, double *v)
{
    /* Fast path: plain non-negative integers, the bulk of every count table. */
    const char *p = s;
    if (*p >= '0' && *p <= '9') {
        double x = 0;
        while (*p >= '0' && *p <= '9') x = x * 10 + (*p++ - '0');
        if (*p == '\0') {
            *v = x;
            return 1;
        }
    }
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) return 0;
    for (const char *q = s; *q; q++)
        if (*q == 'x' || *q == 'X') return 0; /* strtod takes hex, Python's float() does not */
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s) return 0;
    while (*end == ' ' || *end == '\t') end++;
    if (*end) return 0;
    *v = x;
    return 1;
}

int sx_io_check_values(const sx_csr *m, const char *path, int skip, sx_status *st)
{
    int64_t nnz = sx_csr_nnz(m), neg = 0;
    for (int64_t k = 0; k < nnz; k++) {
        float x = m->data[k];
        if (!skip && !isfinite(x)) {
            int64_t row = 0;
            while (m->indptr[row + 1] <= k) row++;
            return sx_status_set(st, SX_EDATA,
                                 "%s: value of cell %lld, gene %d is %s; remove or replace "
                                 "non-finite values before loading", path, (long long)row,
                                 m->indices[k], isnan(x) ? "NaN" : "infinite");
        }
        neg += x < 0;
    }
    if (neg)
        SX_WARN("%s: %lld negative values in the matrix; SCALEX expects raw counts >= 0 "
                "(pass processed data only with processed=True)", path, (long long)neg);
    return SX_OK;
}

int sx_io_unique_var_names(sx_dataset *d, const char *path, sx_status *st)
{
    int64_t r = sx_names_make_unique(d->var->index, d->var->n_rows, st);
    if (r < 0) return (int)r;
    if (r > 0)
        SX_INFO("%s: %lld duplicate gene names made unique (name-1, name-2, ...)", path,
                (long long)r);
    return SX_OK;
}

/* ---------------------------------------------------------------- growable arrays */

typedef struct {
    char **v;
    int64_t n, cap;
} strvec;

static int strvec_push(strvec *s, const char *x)
{
    if (s->n == s->cap) {
        int64_t cap = s->cap ? s->cap * 2 : 256;
        char **nv = sx_reallocarray(s->v, (size_t)cap, sizeof(char *));
        if (!nv) return -1;
        s->v = nv;
        s->cap = cap;
    }
    char *c = sx_strdup(x);
    if (!c) return -1;
    s->v[s->n++] = c;
    return 0;
}

static void strvec_free(strvec *s)
{
    for (int64_t i = 0; i < s->n; i++) sx_free(s->v[i]);
    sx_free(s->v);
    memset(s, 0, sizeof *s);
}

/* Sparse rows appended one at a time (genes x cells while reading). */
typedef struct {
    int64_t *indptr;
    int64_t rows, rcap;
    int32_t *indices;
    float *data;
    int64_t nnz, ncap;
} rowbuf;

static int rowbuf_reserve(rowbuf *b, int64_t extra)
{
    if (b->rows + 2 > b->rcap) {
        int64_t cap = b->rcap ? b->rcap * 2 : 1024;
        int64_t *np = sx_reallocarray(b->indptr, (size_t)cap, sizeof(int64_t));
        if (!np) return -1;
        b->indptr = np;
        b->rcap = cap;
        if (b->rows == 0) b->indptr[0] = 0;
    }
    if (b->nnz + extra > b->ncap) {
        int64_t cap = b->ncap ? b->ncap : 4096;
        while (b->nnz + extra > cap) cap *= 2;
        int32_t *ni = sx_reallocarray(b->indices, (size_t)cap, sizeof(int32_t));
        if (!ni) return -1;
        b->indices = ni;
        float *nd = sx_reallocarray(b->data, (size_t)cap, sizeof(float));
        if (!nd) return -1;
        b->data = nd;
        b->ncap = cap;
    }
    return 0;
}

static void rowbuf_free(rowbuf *b)
{
    sx_free(b->indptr);
    sx_free(b->indices);
    sx_free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- text matrices */

static int is_na(const char *s)
{
    static const char *const na[] = {"", "NA", "NaN", "nan", "N/A", "NULL", "null", "<NA>",
                                     "#N/A", "-NaN", "-nan", "n/a"};
    for (size_t i = 0; i < sizeof na / sizeof na[0]; i++)
        if (strcmp(s, na[i]) == 0) return 1;
    return 0;
}

static void names_default(strvec *s, int64_t n, int *fail)
{
    for (int64_t i = 0; i < n && !*fail; i++) {
        char b[32];
        snprintf(b, sizeof b, "%lld", (long long)i);
        if (strvec_push(s, b) != 0) *fail = 1;
    }
}

/* Fields a split would produce, counted before the split stores a pointer per field. */
static int64_t count_fields(const char *s, char delim)
{
    int64_t n = 0;
    if (delim) {
        for (n = 1; (s = strchr(s, delim)) != NULL; s++) n++;
        return n;
    }
    for (int in = 0; *s; s++) {
        int blank = *s == ' ' || *s == '\t';
        n += !blank && !in;
        in = !blank;
    }
    return n;
}

int sx_io_split_limited(char *line, char delim, sx_fields *f, const sx_io_limits *lim,
                         const char *path, int64_t ln, sx_status *st)
{
    char what[64] = "fields in the column-name comment";
    if (ln > 0) snprintf(what, sizeof what, "fields in line %lld", (long long)ln);
    int rc = sx_io_limit_check(lim, SX_LIM_FIELDS, count_fields(line, delim), path, what, st);
    return rc != SX_OK ? rc : sx_io_split(line, delim, f, st);
}

sx_dataset *sx_text_read(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                         sx_status *st)
{
    sx_lines *lr = NULL;
    sx_fields f = {0};
    strvec header = {0}, genes = {0}, cells = {0};
    char *last_comment = NULL;
    rowbuf rb = {0};
    sx_csr *gxc = NULL, *X = NULL;
    sx_dataset *d = NULL;
    int rc = SX_OK;
    int skip = opts ? opts->skip_values_check : 0;
    sx_io_limits limbuf;
    const sx_io_limits *lim = sx_io_limits_resolve(opts ? opts->limits : NULL, &limbuf);

    /* SCALEX decides by suffix (FORMATS 4): .csv[.gz] = anndata read_csv, .txt/.tsv[.gz] =
     * pandas with a tab separator, header line and index column. */
    int csv = sx_io_ends_with(path, ".csv") || sx_io_ends_with(path, ".csv.gz") ||
              sx_io_ends_with(path, ".CSV") || sx_io_ends_with(path, ".CSV.gz");
    /* neither suffix (content-detected input): decide on the first line below */
    int sniff = !csv && !sx_io_ends_with(path, ".txt") && !sx_io_ends_with(path, ".tsv") &&
                !sx_io_ends_with(path, ".txt.gz") && !sx_io_ends_with(path, ".tsv.gz");
    int64_t fsize = sx_io_file_size(path, st);
    if (fsize < 0) return NULL;
    if (!(lr = sx_lines_open(path, st))) return NULL;
    sx_lines_set_limits(lr, lim);

    char delim = csv ? ',' : '\t';
    int have_header = 0, header_done = 0, rownames = -1, all_int = 1;
    int64_t nfields = -1, ndata = 0;
    char *line;
    size_t len;
    int r;
    while ((r = sx_lines_next(lr, &line, &len, st)) > 0) {
        int64_t ln = sx_lines_lineno(lr);
        if ((ln & 4095) == 0) {
            if (sx_progress_cancelled(prog)) {
                rc = sx_status_set(st, SX_ECANCELED, "%s: reading cancelled", path);
                goto fail;
            }
            sx_progress_report(prog, "read",
                               fsize > 0 ? (double)sx_lines_offset(lr) / (double)fsize : -1,
                               NULL);
        }
        if (len == 0) continue; /* blank lines carry nothing (pandas skips them too) */
        if (!header_done) {
            if (sniff && line[0] != '#') {
                csv = strchr(line, ',') && !strchr(line, '\t');
                delim = csv ? ',' : '\t';
                sniff = 0;
            }
            if ((csv || sniff) && line[0] == '#') {
                /* anndata: comment lines before the data; the last may hold column names */
                char *c = line;
                while (*c == '#' || *c == ' ') c++;
                if (*c) {
                    sx_free(last_comment);
                    if (!(last_comment = sx_strdup(c))) goto oom;
                }
                continue;
            }
            if (!csv && !strchr(line, '\t')) delim = 0; /* space separated .txt */
            if (csv && !strchr(line, ',')) {
                rc = sx_status_set(st, SX_EFORMAT,
                                   "%s: no ',' in the first line; a .csv file must be comma "
                                   "separated (use .txt/.tsv for tab separated tables)", path);
                goto fail;
            }
            if ((rc = sx_io_split_limited(line, delim, &f, lim, path, ln, st)) != SX_OK) goto fail;
            double v;
            header_done = 1;
            /* csv: a header exists when the last field is not a number; txt: always */
            if (!csv || !sx_io_parse_number(f.v[f.n - 1], &v)) {
                have_header = 1;
                for (int64_t i = 0; i < f.n; i++)
                    if (strvec_push(&header, sx_io_unquote(f.v[i])) != 0) goto oom;
                continue;
            }
        } else if ((rc = sx_io_split_limited(line, delim, &f, lim, path, ln, st)) != SX_OK) {
            goto fail;
        } else if (f.n == 0) {
            continue; /* only spaces in a space-separated .txt: a blank line, as for pandas */
        }
        if (rownames < 0) {
            double v;
            if (!csv)
                rownames = 1; /* pandas index_col=0 */
            else
                rownames = !sx_io_parse_number(f.v[0], &v) ||
                           (have_header && f.n == header.n + 1);
            nfields = f.n;
            ndata = nfields - rownames;
            if (ndata == 0) {
                rc = sx_status_set(st, SX_EFORMAT,
                                   "%s: one column of names and no values: not a matrix (a 10x "
                                   "barcodes/features list belongs to its folder: read the "
                                   "folder that holds matrix.mtx)", path);
                goto fail;
            }
            if (ndata > INT32_MAX) {
                rc = sx_status_set(st, SX_ELIMIT, "%s: %lld columns (cells) is more than "
                                   "supported (%d)", path, (long long)ndata, INT32_MAX);
                goto fail;
            }
        } else if (f.n != nfields) {
            rc = sx_status_set(st, SX_EFORMAT,
                               "%s: line %lld has %lld fields but the first data line has "
                               "%lld; every row must have the same number of fields (ragged "
                               "table)", path, (long long)ln, (long long)f.n,
                               (long long)nfields);
            goto fail;
        }
        /* rows are genes (a row's values are bounded by the fields check above) */
        if ((rc = sx_io_limit_check(lim, SX_LIM_GENES, rb.rows + 1, path, "rows (genes)",
                                    st)) != SX_OK)
            goto fail;
        if (rownames && strvec_push(&genes, sx_io_unquote(f.v[0])) != 0) goto oom;
        if (rowbuf_reserve(&rb, ndata) != 0) goto oom;
        for (int64_t j = 0; j < ndata; j++) {
            char *s = f.v[j + rownames];
            double v;
            if (!csv) sx_io_unquote(s);
            if (!sx_io_parse_number(s, &v)) {
                if (!csv && is_na(s)) {
                    v = NAN;
                } else {
                    rc = sx_status_set(st, SX_EFORMAT,
                                       "%s: line %lld, field %lld: '%.40s' is not a number; "
                                       "a matrix file holds numbers after its first column "
                                       "(names) and header line: is this a metadata table?",
                                       path, (long long)ln, (long long)(j + rownames + 1), s);
                    goto fail;
                }
            }
            if (v != floor(v)) all_int = 0;
            if (v != 0) {
                rb.indices[rb.nnz] = (int32_t)j;
                rb.data[rb.nnz++] = (float)v;
            }
        }
        rb.indptr[++rb.rows] = rb.nnz;
        if ((rc = sx_io_limit_check(lim, SX_LIM_NNZ, rb.nnz, path, "nonzero values", st)) !=
            SX_OK)
            goto fail;
    }
    if (r < 0) {
        rc = r;
        goto fail;
    }
    if (rb.rows == 0) {
        rc = sx_status_set(st, SX_EFORMAT, "%s: no data rows (empty file or header only)", path);
        goto fail;
    }
    /* column (cell) names */
    int fail_alloc = 0;
    if (have_header) {
        int64_t drop = header.n == ndata + 1 ? 1 : 0; /* corner field above the row names */
        if (header.n - drop != ndata) {
            rc = sx_status_set(st, SX_EFORMAT,
                               "%s: the header has %lld names but the rows have %lld values",
                               path, (long long)header.n, (long long)ndata);
            goto fail;
        }
        for (int64_t i = drop; i < header.n; i++)
            if (strvec_push(&cells, header.v[i]) != 0) goto oom;
    } else if (last_comment) {
        if ((rc = sx_io_split_limited(last_comment, 0, &f, lim, path, 0, st)) != SX_OK) goto fail;
        if (f.n != ndata) {
            rc = sx_status_set(st, SX_EFORMAT,
                               "%s: the last comment line has %lld names but the rows have "
                               "%lld values", path, (long long)f.n, (long long)ndata);
            goto fail;
        }
        for (int64_t i = 0; i < f.n; i++)
            if (strvec_push(&cells, sx_io_unquote(f.v[i])) != 0) goto oom;
    } else {
        names_default(&cells, ndata, &fail_alloc);
    }
    if (!rownames) names_default(&genes, rb.rows, &fail_alloc);
    if (fail_alloc) goto oom;

    /* genes x cells -> cells x genes */
    if (!(gxc = sx_csr_new(0, ndata, 0, st))) goto fail_st;
    sx_free(gxc->indptr);
    sx_free(gxc->indices);
    sx_free(gxc->data);
    gxc->n_rows = rb.rows;
    gxc->indptr = rb.indptr;
    gxc->indices = rb.indices;
    gxc->data = rb.data;
    memset(&rb, 0, sizeof rb);
    if (!(X = sx_csr_transpose(gxc, st))) goto fail_st;
    sx_csr_free(gxc);
    gxc = NULL;
    if ((rc = sx_io_check_values(X, path, skip, st)) != SX_OK) goto fail;

    if (!(d = sx_dataset_new(0, 0, st))) goto fail_st;
    sx_frame_free(d->obs);
    sx_frame_free(d->var);
    d->obs = sx_frame_new(cells.n, (const char *const *)cells.v, st);
    d->var = sx_frame_new(genes.n, (const char *const *)genes.v, st);
    if (!d->obs || !d->var) goto fail_st;
    d->X = X;
    X = NULL;
    /* anndata read_csv parses float32; pandas infers int64 for an all-integer table */
    d->x_was_int = !csv && all_int;
    if ((rc = sx_io_unique_var_names(d, path, st)) != SX_OK) goto fail;
    sx_progress_report(prog, "read", 1.0, NULL);
    goto done;

oom:
    rc = sx_status_set(st, SX_ENOMEM, "%s: out of memory reading the table", path);
    goto fail;
fail_st:
    rc = st && st->code ? st->code : SX_ENOMEM;
fail:
    (void)rc;
    sx_dataset_free(d);
    d = NULL;
done:
    sx_csr_free(X);
    sx_csr_free(gxc);
    rowbuf_free(&rb);
    strvec_free(&header);
    strvec_free(&genes);
    strvec_free(&cells);
    sx_free(last_comment);
    sx_fields_free(&f);
    sx_lines_close(lr);
    return d;
}
