/* sx_jobdir_table — the result tables of a job directory: writer, bounded reader, text
 * (CSV/TSV) form. The file format is described in sx_jobdir.h. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sx_jobdir.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "sx_jobdir tables are little-endian: add byte swapping for this host"
#endif

static const char magic[8] = "SXTABLE";
enum { VERSION = 1, FIXED_HDR = 32, COL_HDR = 24 };

typedef struct col {
    char *name;
    int type, prec;
    uint64_t off, bytes;
} col;

struct sx_jobdir_table {
    int fd;
    uint64_t file_bytes, n_rows;
    int n_cols;
    col *cols;
};

static uint64_t pad8(uint64_t x) { return (x + 7) & ~(uint64_t)7; }

static int width(int type) { return type == SX_JOBDIR_F32 ? 4 : 8; }

/* ---- writer ---- */

static int put(FILE *f, const void *p, size_t n) { return n && fwrite(p, 1, n, f) != n ? -1 : 0; }

static int put_pad(FILE *f, uint64_t n)
{
    static const char z[8] = {0};
    return put(f, z, (size_t)(pad8(n) - n));
}

static uint64_t str_len(const char *s) { return s ? strlen(s) : 0; }

/* bytes of a column's data */
static uint64_t col_bytes(const sx_jobdir_col *c, int64_t n)
{
    if (c->type != SX_JOBDIR_STR) return (uint64_t)n * (uint64_t)width(c->type);
    uint64_t b = 8 * ((uint64_t)n + 1);
    for (int64_t i = 0; i < n; i++) b += str_len(c->str[i]);
    return b;
}

static int put_col(FILE *f, const sx_jobdir_col *c, int64_t n)
{
    int64_t s = c->stride > 0 ? c->stride : 1;
    int bad = 0;
    if (c->type == SX_JOBDIR_F32)
        for (int64_t i = 0; i < n && !bad; i++) bad = put(f, &c->f32[i * s], 4);
    else if (c->type == SX_JOBDIR_F64)
        for (int64_t i = 0; i < n && !bad; i++) bad = put(f, &c->f64[i * s], 8);
    else {
        uint64_t o = 0;
        for (int64_t i = 0; i <= n && !bad; i++) {
            bad = put(f, &o, 8);
            if (i < n) o += str_len(c->str[i]);
        }
        for (int64_t i = 0; i < n && !bad; i++)
            if (c->str[i]) bad = put(f, c->str[i], strlen(c->str[i]));
    }
    return bad || put_pad(f, col_bytes(c, n));
}

static int put_header(FILE *f, int64_t n_rows, const sx_jobdir_col *cols, int n_cols)
{
    uint64_t hdr = FIXED_HDR;
    for (int k = 0; k < n_cols; k++) hdr += COL_HDR + pad8(strlen(cols[k].name));
    uint32_t ver = VERSION, nc = (uint32_t)n_cols;
    uint64_t nr = (uint64_t)n_rows;
    int bad = put(f, magic, 8) | put(f, &ver, 4) | put(f, &nc, 4) | put(f, &nr, 8) | put(f, &hdr, 8);
    uint64_t off = hdr;
    for (int k = 0; k < n_cols && !bad; k++) {
        uint8_t t = (uint8_t)cols[k].type, p = (uint8_t)cols[k].csv_prec;
        uint16_t nl = (uint16_t)strlen(cols[k].name);
        uint32_t z = 0;
        uint64_t b = col_bytes(&cols[k], n_rows);
        bad = put(f, &t, 1) | put(f, &p, 1) | put(f, &nl, 2) | put(f, &z, 4) | put(f, &off, 8) |
              put(f, &b, 8) | put(f, cols[k].name, nl) | put_pad(f, nl);
        off += pad8(b);
    }
    return bad;
}

static int check_cols(const sx_jobdir_col *cols, int n_cols, sx_status *st)
{
    if (n_cols < 1 || n_cols > SX_JOBDIR_MAX_COLS)
        return sx_status_set(st, SX_EINVAL, "a result table needs 1 to %d columns", SX_JOBDIR_MAX_COLS);
    for (int k = 0; k < n_cols; k++) {
        const sx_jobdir_col *c = &cols[k];
        size_t nl = c->name ? strlen(c->name) : 0;
        int ok = (c->type == SX_JOBDIR_F32 && c->f32) || (c->type == SX_JOBDIR_F64 && c->f64) ||
                 (c->type == SX_JOBDIR_STR && c->str);
        if (!ok || nl < 1 || nl > SX_JOBDIR_MAX_NAME)
            return sx_status_set(st, SX_EINTERNAL, "result table column %d is malformed", k);
    }
    return SX_OK;
}

int sx_jobdir_table_write(const char *path, int64_t n_rows, const sx_jobdir_col *cols,
                          int n_cols, sx_status *st)
{
    int rc = check_cols(cols, n_cols, st);
    if (rc) return rc;
    size_t n = strlen(path) + 5;
    char *tmp = malloc(n);
    if (!tmp) return sx_status_set(st, SX_ENOMEM, "out of memory");
    snprintf(tmp, n, "%s.tmp", path);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = sx_status_set(st, SX_EIO, "cannot write the result table %s: %s", base, strerror(errno));
        goto out;
    }
    int bad = put_header(f, n_rows, cols, n_cols);
    for (int k = 0; k < n_cols && !bad; k++) bad = put_col(f, &cols[k], n_rows);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        rc = sx_status_set(st, SX_EIO, "cannot write the result table %s (disk full?)", base);
    }
out:
    free(tmp);
    return rc;
}

/* ---- reader ---- */

static int bad_table(sx_status *st, const char *why)
{
    return sx_status_set(st, SX_EFORMAT, "the result table is damaged (%s): run the job again", why);
}

static int pread_all(int fd, void *p, uint64_t n, uint64_t off)
{
    char *b = p;
    while (n) {
        ssize_t r = pread(fd, b, n, (off_t)off);
        if (r <= 0) return -1;
        b += r, n -= (uint64_t)r, off += (uint64_t)r;
    }
    return 0;
}

/* one column record at *pos; advances *pos; checks the data lies inside the file */
static int read_col(sx_jobdir_table *t, uint64_t hdr, uint64_t *pos, col *c, sx_status *st)
{
    unsigned char r[COL_HDR];
    if (*pos + COL_HDR > hdr || pread_all(t->fd, r, COL_HDR, *pos)) return bad_table(st, "column record");
    uint16_t nl;
    memcpy(&nl, r + 2, 2);
    memcpy(&c->off, r + 8, 8);
    memcpy(&c->bytes, r + 16, 8);
    c->type = r[0];
    c->prec = r[1];
    *pos += COL_HDR;
    if (nl < 1 || nl > SX_JOBDIR_MAX_NAME || *pos + nl > hdr) return bad_table(st, "column name");
    if (c->type < SX_JOBDIR_F32 || c->type > SX_JOBDIR_STR) return bad_table(st, "column type");
    if (!(c->name = calloc(1, (size_t)nl + 1)) ) return sx_status_set(st, SX_ENOMEM, "out of memory");
    if (pread_all(t->fd, c->name, nl, *pos) || memchr(c->name, 0, nl)) return bad_table(st, "column name");
    *pos += pad8(nl);
    if (c->off < hdr || c->off > t->file_bytes || c->bytes > t->file_bytes - c->off)
        return bad_table(st, "column data outside the file");
    uint64_t need = c->type == SX_JOBDIR_STR ? 8 * (t->n_rows + 1) : t->n_rows * (uint64_t)width(c->type);
    if (c->type == SX_JOBDIR_STR ? c->bytes < need : c->bytes != need)
        return bad_table(st, "column size");
    return SX_OK;
}

static int read_header(sx_jobdir_table *t, sx_status *st)
{
    unsigned char h[FIXED_HDR];
    if (t->file_bytes < FIXED_HDR || pread_all(t->fd, h, FIXED_HDR, 0)) return bad_table(st, "short file");
    if (memcmp(h, magic, 8)) return sx_status_set(st, SX_EFORMAT, "not a result table");
    uint32_t ver, nc;
    uint64_t hdr;
    memcpy(&ver, h + 8, 4);
    memcpy(&nc, h + 12, 4);
    memcpy(&t->n_rows, h + 16, 8);
    memcpy(&hdr, h + 24, 8);
    if (ver != VERSION) return sx_status_set(st, SX_EUNSUPPORTED, "result table version %u: this "
                                             "scalexd reads version %d", ver, VERSION);
    if (nc < 1 || nc > SX_JOBDIR_MAX_COLS) return bad_table(st, "column count");
    if (hdr < FIXED_HDR + (uint64_t)nc * COL_HDR || hdr > t->file_bytes) return bad_table(st, "header size");
    /* every row costs at least 4 bytes in each column: rows beyond that cannot be real */
    if (t->n_rows > t->file_bytes / 4) return bad_table(st, "row count");
    if (!(t->cols = calloc(nc, sizeof *t->cols))) return sx_status_set(st, SX_ENOMEM, "out of memory");
    t->n_cols = (int)nc;
    uint64_t pos = FIXED_HDR;
    for (int k = 0; k < t->n_cols; k++) {
        int rc = read_col(t, hdr, &pos, &t->cols[k], st);
        if (rc) return rc;
    }
    return SX_OK;
}

int sx_jobdir_table_open(const char *path, sx_jobdir_table **out, sx_status *st)
{
    *out = NULL;
    sx_jobdir_table *t = calloc(1, sizeof *t);
    if (!t) return sx_status_set(st, SX_ENOMEM, "out of memory");
    t->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (t->fd < 0 || fstat(t->fd, &sb) != 0) {
        int missing = errno == ENOENT;
        sx_jobdir_table_close(t);
        return sx_status_set(st, missing ? SX_ENOTFOUND : SX_EIO, "the result table %s",
                             missing ? "does not exist" : "cannot be read");
    }
    t->file_bytes = (uint64_t)sb.st_size;
    int rc = read_header(t, st);
    if (rc) {
        sx_jobdir_table_close(t);
        return rc;
    }
    *out = t;
    return SX_OK;
}

void sx_jobdir_table_close(sx_jobdir_table *t)
{
    if (!t) return;
    if (t->fd >= 0) close(t->fd);
    for (int k = 0; k < t->n_cols; k++) free(t->cols[k].name);
    free(t->cols);
    free(t);
}

int64_t sx_jobdir_table_rows(const sx_jobdir_table *t) { return (int64_t)t->n_rows; }
int sx_jobdir_table_cols(const sx_jobdir_table *t) { return t->n_cols; }

const char *sx_jobdir_table_col_name(const sx_jobdir_table *t, int k)
{
    return k >= 0 && k < t->n_cols ? t->cols[k].name : NULL;
}

sx_jobdir_type sx_jobdir_table_col_type(const sx_jobdir_table *t, int k)
{
    return k >= 0 && k < t->n_cols ? (sx_jobdir_type)t->cols[k].type : 0;
}

int sx_jobdir_table_find(const sx_jobdir_table *t, const char *name)
{
    for (int k = 0; name && k < t->n_cols; k++)
        if (!strcmp(t->cols[k].name, name)) return k;
    return -1;
}

static int check_range(const sx_jobdir_table *t, int k, int want_str, int64_t row0, int64_t n,
                       sx_status *st)
{
    if (k < 0 || k >= t->n_cols || (t->cols[k].type == SX_JOBDIR_STR) != want_str)
        return sx_status_set(st, SX_EINVAL, "no %s column %d in the result table",
                             want_str ? "string" : "numeric", k);
    if (row0 < 0 || n < 0 || (uint64_t)row0 > t->n_rows || (uint64_t)n > t->n_rows - (uint64_t)row0)
        return sx_status_set(st, SX_EINVAL, "rows %lld..%lld are outside the table (%llu rows)",
                             (long long)row0, (long long)(row0 + n), (unsigned long long)t->n_rows);
    return SX_OK;
}

int sx_jobdir_table_read_num(sx_jobdir_table *t, int k, int64_t row0, int64_t n, double *out,
                             sx_status *st)
{
    int rc = check_range(t, k, 0, row0, n, st);
    if (rc || n == 0) return rc;
    const col *c = &t->cols[k];
    int w = width(c->type);
    void *buf = malloc((size_t)n * (size_t)w);
    if (!buf) return sx_status_set(st, SX_ENOMEM, "out of memory");
    if (pread_all(t->fd, buf, (uint64_t)n * (uint64_t)w, c->off + (uint64_t)row0 * (uint64_t)w)) {
        free(buf);
        return bad_table(st, "short read");
    }
    for (int64_t i = 0; i < n; i++)
        out[i] = c->type == SX_JOBDIR_F32 ? (double)((float *)buf)[i] : ((double *)buf)[i];
    free(buf);
    return SX_OK;
}

int sx_jobdir_table_read_str(sx_jobdir_table *t, int k, int64_t row0, int64_t n, char ***out,
                             sx_status *st)
{
    *out = NULL;
    int rc = check_range(t, k, 1, row0, n, st);
    if (rc) return rc;
    const col *c = &t->cols[k];
    uint64_t blob = 8 * (t->n_rows + 1), blob_len = c->bytes - blob;
    uint64_t *offs = malloc(8 * ((size_t)n + 1));
    if (!offs) return sx_status_set(st, SX_ENOMEM, "out of memory");
    if (pread_all(t->fd, offs, 8 * ((uint64_t)n + 1), c->off + 8 * (uint64_t)row0)) {
        free(offs);
        return bad_table(st, "short read");
    }
    for (int64_t i = 0; i < n; i++)
        if (offs[i] > offs[i + 1] || offs[i + 1] > blob_len) {
            free(offs);
            return bad_table(st, "string offsets");
        }
    uint64_t len = offs[n] - offs[0];
    size_t ptrs = ((size_t)n + 1) * sizeof(char *);
    char **v = malloc(ptrs + (size_t)len + (size_t)n + 1);
    if (!v) {
        free(offs);
        return sx_status_set(st, SX_ENOMEM, "out of memory");
    }
    char *raw = (char *)v + ptrs + n + 1, *dst = (char *)v + ptrs;
    /* read the bytes after the room their terminators need, then spread them out */
    if (len && pread_all(t->fd, raw, len, c->off + blob + offs[0])) {
        free(offs);
        free(v);
        return bad_table(st, "short read");
    }
    for (int64_t i = 0; i < n; i++) {
        uint64_t l = offs[i + 1] - offs[i];
        memmove(dst, raw + (offs[i] - offs[0]), (size_t)l);
        v[i] = dst;
        dst[l] = 0;
        dst += l + 1;
    }
    v[n] = NULL;
    free(offs);
    *out = v;
    return SX_OK;
}

/* ---- text form ---- */

static void text_str(FILE *f, const char *s, char sep, int quote_all)
{
    if (sep != ',') {
        for (; *s; s++) fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
        return;
    }
    if (!quote_all && !strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(quote_all && (*s == '\n' || *s == '\r') ? ' ' : *s, f);
    }
    fputc('"', f);
}

static void text_num(FILE *f, double v, int prec)
{
    int digits = prec & 0x7f;
    if (prec & SX_JOBDIR_FIXED) fprintf(f, "%.*f", digits, v);
    else fprintf(f, "%.*g", digits ? digits : 9, v);
}

enum { CHUNK = 4096 };

/* rows [r0, r0 + n) of every column, one line each */
static int text_rows(sx_jobdir_table *t, int64_t r0, int64_t n, char sep, int quote_all,
                     double *num, char ***str, FILE *f, sx_status *st)
{
    int rc = SX_OK;
    for (int k = 0; k < t->n_cols && rc == SX_OK; k++)
        rc = t->cols[k].type == SX_JOBDIR_STR
                 ? sx_jobdir_table_read_str(t, k, r0, n, &str[k], st)
                 : sx_jobdir_table_read_num(t, k, r0, n, num + (size_t)k * CHUNK, st);
    for (int64_t i = 0; rc == SX_OK && i < n; i++) {
        for (int k = 0; k < t->n_cols; k++) {
            if (k) fputc(sep, f);
            if (t->cols[k].type == SX_JOBDIR_STR) text_str(f, str[k][i], sep, quote_all);
            else text_num(f, num[(size_t)k * CHUNK + i], t->cols[k].prec);
        }
        fputc('\n', f);
    }
    for (int k = 0; k < t->n_cols; k++) {
        free(str[k]);
        str[k] = NULL;
    }
    return rc;
}

int sx_jobdir_table_text(sx_jobdir_table *t, char sep, int quote_all, FILE *f, sx_status *st)
{
    return sx_jobdir_table_text_rows(t, sep, quote_all, 0, (int64_t)t->n_rows, 1, f, st);
}

int sx_jobdir_table_text_rows(sx_jobdir_table *t, char sep, int quote_all, int64_t row0,
                              int64_t n_rows, int header, FILE *f, sx_status *st)
{
    if (row0 < 0 || n_rows < 0 || (uint64_t)row0 > t->n_rows ||
        (uint64_t)n_rows > t->n_rows - (uint64_t)row0)
        return sx_status_set(st, SX_EINVAL, "rows outside the result table");
    for (int k = 0; header && k < t->n_cols; k++) {
        if (k) fputc(sep, f);
        fputs(t->cols[k].name, f);
    }
    if (header) fputc('\n', f);
    double *num = malloc((size_t)t->n_cols * CHUNK * sizeof *num);
    char ***str = calloc((size_t)t->n_cols, sizeof *str);
    int rc = num && str ? SX_OK : sx_status_set(st, SX_ENOMEM, "out of memory");
    for (int64_t r0 = row0; rc == SX_OK && r0 < row0 + n_rows; r0 += CHUNK) {
        int64_t n = row0 + n_rows - r0 < CHUNK ? row0 + n_rows - r0 : CHUNK;
        rc = text_rows(t, r0, n, sep, quote_all, num, str, f, st);
    }
    free(num);
    free(str);
    if (rc == SX_OK && ferror(f)) rc = sx_status_set(st, SX_EIO, "cannot write the table text (disk full?)");
    return rc;
}

int sx_jobdir_table_download_text(sx_jobdir_table *t, sx_jobdir_table_id id, FILE *f,
                                  sx_status *st)
{
    return sx_jobdir_table_download_rows(t, id, 0, (int64_t)t->n_rows, 1, f, st);
}

int sx_jobdir_table_download_rows(sx_jobdir_table *t, sx_jobdir_table_id id, int64_t row0,
                                  int64_t n_rows, int header, FILE *f, sx_status *st)
{
    /* the dialects the downloads always had: labels.csv quotes when needed, latent.csv
     * quotes every name, umap.tsv is tab-separated */
    switch (id) {
    case SX_JOBDIR_LABELS: return sx_jobdir_table_text_rows(t, ',', 0, row0, n_rows, header, f, st);
    case SX_JOBDIR_LATENT: return sx_jobdir_table_text_rows(t, ',', 1, row0, n_rows, header, f, st);
    case SX_JOBDIR_UMAP: return sx_jobdir_table_text_rows(t, '\t', 0, row0, n_rows, header, f, st);
    default: return sx_status_set(st, SX_EINVAL, "no such result table");
    }
}
