/* sx_mtx — 10x MatrixMarket folders (Cell Ranger v2 and v3) and bare .mtx[.gz] files
 * (FORMATS.md 5).
 *
 * The matrix on disk is features x barcodes; the result is cells x features. Entries are
 * streamed through zlib (plain and gzip alike). Cell Ranger writes entries grouped by
 * barcode, so they usually go straight into the CSR arrays; entries in any other order
 * are counting-sorted afterwards. Everything the header claims is checked against the
 * file before memory is committed to it: a header announcing 10^12 entries in a 1 kB
 * file fails at once.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "sx_alloc.h"
#include "sx_io.h"
#include "sx_io_internal.h"
#include "sx_io_limits.h"
#include "sx_log.h"

/* deflate cannot compress better than about 1032:1, so a gzip file of B bytes holds at
 * most ~1032*B bytes of text. */
#define SX_GZ_MAX_RATIO 1032

enum { FEAT_NONE = 0, FEAT_GENES, FEAT_FEATURES, FEAT_PEAKS };

typedef struct {
    char *matrix, *features, *barcodes;
    int feat_kind;
} mtx_files;

static void files_free(mtx_files *f)
{
    sx_free(f->matrix);
    sx_free(f->features);
    sx_free(f->barcodes);
    memset(f, 0, sizeof *f);
}

static int is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static char *path_join(const char *dir, const char *a, const char *b)
{
    size_t n = strlen(dir) + strlen(a) + strlen(b) + 2;
    char *p = sx_malloc(n);
    if (p) snprintf(p, n, "%s/%s%s", dir, a, b);
    return p;
}

/* dir/<prefix><base>[.gz] if it exists; *found set; NULL + *oom on allocation failure. */
static char *find_role(const char *dir, const char *prefix, const char *base, int *oom)
{
    char *p = path_join(dir, prefix, base);
    if (!p) {
        *oom = 1;
        return NULL;
    }
    if (is_file(p)) return p;
    sx_free(p);
    char gz[256];
    snprintf(gz, sizeof gz, "%s.gz", base);
    p = path_join(dir, prefix, gz);
    if (!p) {
        *oom = 1;
        return NULL;
    }
    if (is_file(p)) return p;
    sx_free(p);
    return NULL;
}

/* Companion files of a matrix named <dir>/<prefix>matrix.mtx[.gz]. */
static int find_companions(const char *dir, const char *prefix, mtx_files *f, int required,
                           sx_status *st)
{
    int oom = 0;
    char *feat = find_role(dir, prefix, "features.tsv", &oom);
    char *genes = find_role(dir, prefix, "genes.tsv", &oom);
    char *peaks = find_role(dir, prefix, "peaks.bed", &oom);
    f->barcodes = find_role(dir, prefix, "barcodes.tsv", &oom);
    int rc = SX_OK;
    if (oom) {
        rc = sx_status_set(st, SX_ENOMEM, "%s: out of memory", dir);
        goto out;
    }
    if ((feat != NULL) + (genes != NULL) + (peaks != NULL) > 1) {
        rc = sx_status_set(st, SX_EFORMAT,
                           "%s: more than one of %sfeatures.tsv, %sgenes.tsv and %speaks.bed; "
                           "keep only the one that belongs to the matrix", dir, prefix, prefix,
                           prefix);
        goto out;
    }
    if (feat) f->features = feat, f->feat_kind = FEAT_FEATURES, feat = NULL;
    else if (genes) f->features = genes, f->feat_kind = FEAT_GENES, genes = NULL;
    else if (peaks) f->features = peaks, f->feat_kind = FEAT_PEAKS, peaks = NULL;
    if (required && (!f->features || !f->barcodes))
        rc = sx_status_set(st, SX_EFORMAT,
                           "%s: found %s but no %s%s; a 10x folder needs matrix.mtx[.gz], "
                           "barcodes.tsv[.gz] and features.tsv[.gz] (or genes.tsv / peaks.bed)",
                           dir, f->matrix, prefix,
                           !f->barcodes ? "barcodes.tsv[.gz]" : "features.tsv[.gz]/genes.tsv[.gz]");
out:
    sx_free(feat);
    sx_free(genes);
    sx_free(peaks);
    return rc;
}

/* Locate the three files of a 10x folder: exact 10x names with an optional common prefix
 * (scanpy's prefix= convention), never SCALEX's substring match on the whole path. */
static int find_folder_files(const char *dir, mtx_files *f, sx_status *st)
{
    DIR *dh = opendir(dir);
    if (!dh) return sx_status_set(st, SX_EIO, "%s: cannot list the folder (%s)", dir,
                                  strerror(errno));
    char *prefix = NULL, *fallback = NULL;
    int n_match = 0, n_mtx = 0, rc = SX_OK;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        const char *nm = e->d_name;
        size_t l = strlen(nm);
        size_t sl = sx_io_ends_with(nm, "matrix.mtx") ? 10
                    : sx_io_ends_with(nm, "matrix.mtx.gz") ? 13 : 0;
        if (sl) {
            n_match++;
            sx_free(prefix);
            prefix = sx_strndup(nm, l - sl);
            sx_free(f->matrix);
            f->matrix = path_join(dir, nm, "");
            if (!prefix || !f->matrix) goto oom;
        } else if (sx_io_ends_with(nm, ".mtx") || sx_io_ends_with(nm, ".mtx.gz")) {
            n_mtx++;
            sx_free(fallback);
            if (!(fallback = path_join(dir, nm, ""))) goto oom;
        }
    }
    if (n_match > 1) {
        rc = sx_status_set(st, SX_EFORMAT,
                           "%s: several files end in matrix.mtx[.gz]; point at one of them, or "
                           "keep one matrix per folder", dir);
        goto out;
    }
    if (n_match == 0) {
        if (n_mtx != 1) {
            rc = sx_status_set(st, SX_EFORMAT,
                               n_mtx ? "%s: several .mtx files and none named matrix.mtx[.gz]; "
                                       "keep one matrix per folder"
                                     : "%s: no matrix.mtx or matrix.mtx.gz in this folder; "
                                       "is it a 10x Cell Ranger output folder?",
                               dir);
            goto out;
        }
        f->matrix = fallback;
        fallback = NULL;
        prefix = sx_strdup("");
        if (!prefix) goto oom;
    }
    rc = find_companions(dir, prefix, f, 1, st);
    goto out;
oom:
    rc = sx_status_set(st, SX_ENOMEM, "%s: out of memory", dir);
out:
    closedir(dh);
    sx_free(prefix);
    sx_free(fallback);
    return rc;
}

/* ---------------------------------------------------------------- name files */

typedef struct {
    char **names;   /* var/obs names */
    char **ids;     /* gene_ids (features/genes) */
    char **types;   /* feature_types (v3 features) */
    int64_t n, cap;
    int all_types;  /* every line had a third column */
} namelist;

static void namelist_free(namelist *l)
{
    for (int64_t i = 0; i < l->n; i++) {
        sx_free(l->names[i]);
        if (l->ids) sx_free(l->ids[i]);
        if (l->types) sx_free(l->types[i]);
    }
    sx_free(l->names);
    sx_free(l->ids);
    sx_free(l->types);
    memset(l, 0, sizeof *l);
}

static int namelist_grow(namelist *l)
{
    if (l->n < l->cap) return 0;
    int64_t cap = l->cap ? l->cap * 2 : 1024;
    char **a = sx_reallocarray(l->names, (size_t)cap, sizeof(char *));
    if (!a) return -1;
    l->names = a;
    char **b = sx_reallocarray(l->ids, (size_t)cap, sizeof(char *));
    if (!b) return -1;
    l->ids = b;
    char **c = sx_reallocarray(l->types, (size_t)cap, sizeof(char *));
    if (!c) return -1;
    l->types = c;
    l->cap = cap;
    return 0;
}

/* Read barcodes (kind FEAT_NONE: last column) or features of the given kind. */
static int read_names(const char *path, int kind, const sx_io_limits *lim, namelist *out,
                      sx_status *st)
{
    sx_lines *lr = sx_lines_open(path, st);
    if (!lr) return st ? st->code : SX_EIO;
    sx_lines_set_limits(lr, lim);
    sx_fields f = {0};
    char *line;
    size_t len;
    int r, rc = SX_OK;
    out->all_types = 1;
    while ((r = sx_lines_next(lr, &line, &len, st)) > 0) {
        if (len == 0) continue;
        char delim = strchr(line, '\t') ? '\t' : 0;
        if ((rc = sx_io_split_limited(line, delim, &f, lim, path, sx_lines_lineno(lr), st)) !=
            SX_OK)
            goto out;
        if (f.n == 0) continue;
        if ((rc = sx_io_limit_check(lim, kind == FEAT_NONE ? SX_LIM_CELLS : SX_LIM_GENES,
                                    out->n + 1, path,
                                    kind == FEAT_NONE ? "barcodes" : "features", st)) != SX_OK)
            goto out;
        if (namelist_grow(out) != 0) goto oom;
        int64_t i = out->n;
        out->names[i] = out->ids[i] = out->types[i] = NULL;
        out->n++;
        char buf[512];
        const char *name;
        if (kind == FEAT_PEAKS) {
            if (f.n < 3) {
                rc = sx_status_set(st, SX_EFORMAT,
                                   "%s: line %lld has %lld fields; peaks.bed needs chrom, start "
                                   "and end", path, (long long)sx_lines_lineno(lr),
                                   (long long)f.n);
                goto out;
            }
            snprintf(buf, sizeof buf, "%s:%s-%s", f.v[0], f.v[1], f.v[2]);
            name = buf;
        } else if (kind == FEAT_NONE) {
            name = f.v[f.n - 1]; /* SCALEX: the last column is the barcode */
        } else {
            name = f.n >= 2 ? f.v[1] : f.v[0]; /* the symbol column */
            if (!(out->ids[i] = sx_strdup(f.v[0]))) goto oom;
            if (f.n >= 3) {
                if (!(out->types[i] = sx_strdup(f.v[2]))) goto oom;
            } else {
                out->all_types = 0;
            }
        }
        if (!(out->names[i] = sx_strdup(name))) goto oom;
    }
    if (r < 0) rc = r;
    goto out;
oom:
    rc = sx_status_set(st, SX_ENOMEM, "%s: out of memory", path);
out:
    sx_fields_free(&f);
    sx_lines_close(lr);
    return rc;
}

/* ---------------------------------------------------------------- the matrix */

enum { FIELD_INT, FIELD_REAL, FIELD_PATTERN };

static int parse_i64(const char **pp, int64_t *v)
{
    const char *p = *pp;
    while (*p == ' ' || *p == '\t') p++;
    int neg = 0;
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    if (*p < '0' || *p > '9') return 0;
    int64_t x = 0;
    while (*p >= '0' && *p <= '9') {
        if (x > (INT64_MAX - 9) / 10) return 0;
        x = x * 10 + (*p++ - '0');
    }
    *v = neg ? -x : x;
    *pp = p;
    return 1;
}

static int parse_value(const char **pp, int field, double *v)
{
    if (field == FIELD_INT) {
        int64_t x;
        const char *save = *pp;
        if (parse_i64(pp, &x) && (**pp == '\0' || **pp == ' ' || **pp == '\t')) {
            *v = (double)x;
            return 1;
        }
        *pp = save; /* an "integer" file with 1.0 or 1e3 in it: accept like scipy does */
    }
    const char *p = *pp;
    while (*p == ' ' || *p == '\t') p++;
    char *end;
    double x = strtod(p, &end);
    if (end == p) return 0;
    *v = x;
    *pp = end;
    return 1;
}

static int rest_blank(const char *p)
{
    while (*p == ' ' || *p == '\t') p++;
    return *p == '\0';
}

typedef struct {
    int64_t n_rows, n_cols, nnz; /* as in the file: features x barcodes */
    int field, array;
} mtx_header;

/* Read the banner and the size line; validate sizes against the file size. */
static int read_header(sx_lines *lr, const char *path, int64_t fsize, const sx_io_limits *lim,
                       mtx_header *h, sx_status *st)
{
    char *line;
    size_t len;
    int r = sx_lines_next(lr, &line, &len, st);
    if (r < 0) return r;
    if (r == 0 || strncasecmp(line, "%%MatrixMarket", 14) != 0)
        return sx_status_set(st, SX_EFORMAT,
                             "%s: not a MatrixMarket file (the first line must start with "
                             "%%%%MatrixMarket)", path);
    char obj[32] = "", fmt[32] = "", field[32] = "", sym[32] = "";
    if (sscanf(line + 14, "%31s %31s %31s %31s", obj, fmt, field, sym) < 3 ||
        strcasecmp(obj, "matrix") != 0)
        return sx_status_set(st, SX_EFORMAT, "%s: malformed MatrixMarket banner '%.80s'", path,
                             line);
    if (strcasecmp(fmt, "coordinate") == 0) h->array = 0;
    else if (strcasecmp(fmt, "array") == 0) h->array = 1;
    else
        return sx_status_set(st, SX_EFORMAT, "%s: unknown MatrixMarket format '%s' (expected "
                             "coordinate or array)", path, fmt);
    if (strcasecmp(field, "integer") == 0 || strcasecmp(field, "unsigned-integer") == 0)
        h->field = FIELD_INT;
    else if (strcasecmp(field, "real") == 0 || strcasecmp(field, "double") == 0)
        h->field = FIELD_REAL;
    else if (strcasecmp(field, "pattern") == 0 && !h->array)
        h->field = FIELD_PATTERN;
    else
        return sx_status_set(st, SX_EUNSUPPORTED, "%s: MatrixMarket field '%s' is not supported "
                             "(integer, real or pattern)", path, field);
    if (sym[0] && strcasecmp(sym, "general") != 0)
        return sx_status_set(st, SX_EUNSUPPORTED,
                             "%s: MatrixMarket symmetry '%s' is not supported; count matrices "
                             "are 'general'", path, sym);
    while ((r = sx_lines_next(lr, &line, &len, st)) > 0) {
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '%' || *p == '\0') continue;
        int64_t a, b, c = 0;
        if (!parse_i64(&p, &a) || !parse_i64(&p, &b) || (!h->array && !parse_i64(&p, &c)) ||
            !rest_blank(p))
            return sx_status_set(st, SX_EFORMAT,
                                 "%s: line %lld: bad size line '%.80s' (expected rows, columns%s)",
                                 path, (long long)sx_lines_lineno(lr), line,
                                 h->array ? "" : " and number of entries");
        if (a < 0 || b < 0 || c < 0)
            return sx_status_set(st, SX_EFORMAT, "%s: negative size in '%.80s'", path, line);
        if (a > INT32_MAX || b > INT32_MAX)
            return sx_status_set(st, SX_ELIMIT,
                                 "%s: matrix of %lld x %lld exceeds the supported %d rows or "
                                 "columns", path, (long long)a, (long long)b, INT32_MAX);
        if (h->array) {
            if (a && b > INT64_MAX / a)
                return sx_status_set(st, SX_ELIMIT, "%s: array of %lld x %lld is too large",
                                     path, (long long)a, (long long)b);
            c = a * b;
        }
        h->n_rows = a;
        h->n_cols = b;
        h->nnz = c;
        /* The smallest possible entry line: "1 1\n" (pattern), "1 1 1\n", or "0\n" (array). */
        int64_t min_line = h->array ? 2 : h->field == FIELD_PATTERN ? 4 : 6;
        int64_t ratio = sx_lines_is_gzip(lr) ? SX_GZ_MAX_RATIO : 1;
        int64_t bytes = fsize > INT64_MAX / ratio ? INT64_MAX : fsize * ratio;
        sx_io_budget bud; /* the line reader refuses to decompress more than this */
        sx_io_budget_init(&bud, lim, fsize);
        if (ratio > 1 && bud.allowed < bytes) bytes = bud.allowed;
        int64_t most = bytes / min_line + 1;
        if (c > most)
            return sx_status_set(st, SX_EFORMAT,
                                 "%s: the header claims %lld entries but the file has only %lld "
                                 "bytes (at most %lld entries fit); the header is wrong or the "
                                 "file is truncated", path, (long long)c, (long long)fsize,
                                 (long long)most);
        /* the file is features x barcodes; every allocation below is sized from these */
        int rc = sx_io_limit_check(lim, SX_LIM_CELLS, b, path, "barcodes (cells, columns)", st);
        if (rc == SX_OK)
            rc = sx_io_limit_check(lim, SX_LIM_GENES, a, path, "features (genes, rows)", st);
        if (rc == SX_OK)
            rc = sx_io_limit_check(lim, SX_LIM_NNZ, c, path, "entries", st);
        return rc;
    }
    if (r < 0) return r;
    return sx_status_set(st, SX_EFORMAT, "%s: no size line after the MatrixMarket banner", path);
}

/* Read the entries into a cells x features CSR (the transpose of the file). */
static sx_csr *read_entries(sx_lines *lr, const char *path, const mtx_header *h, int64_t fsize,
                            const sx_progress *prog, sx_status *st)
{
    int64_t n_feat = h->n_rows, n_cell = h->n_cols, nnz = h->nnz;
    int64_t cap = h->array ? 0 : nnz; /* array: only non-zeros are kept, grown as needed */
    int32_t *gene = sx_mallocarray((size_t)(cap ? cap : 1), sizeof(int32_t));
    float *val = sx_mallocarray((size_t)(cap ? cap : 1), sizeof(float));
    int64_t *count = sx_calloc((size_t)n_cell + 2, sizeof(int64_t));
    int32_t *cell = NULL; /* only when entries are not grouped by barcode */
    sx_csr *m = NULL;
    int64_t kept = 0, seen = 0, last_cell = 0;
    char *line;
    size_t len;
    int r = 0;
    if (!gene || !val || !count) goto oom;
    sx_io_advise_huge(gene, (size_t)cap * sizeof(int32_t)); /* they become the CSR's arrays */
    sx_io_advise_huge(val, (size_t)cap * sizeof(float));
    while (seen < nnz && (r = sx_lines_next(lr, &line, &len, st)) > 0) {
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '%' || *p == '\0') continue;
        int64_t gi, ci;
        double v = 1.0;
        if (h->array) {
            gi = seen % n_feat + 1;
            ci = seen / n_feat + 1;
        } else if (!parse_i64(&p, &gi) || !parse_i64(&p, &ci)) {
            sx_status_set(st, SX_EFORMAT, "%s: line %lld: expected 'row column%s', got '%.80s'",
                          path, (long long)sx_lines_lineno(lr),
                          h->field == FIELD_PATTERN ? "" : " value", line);
            goto fail;
        }
        if ((h->field != FIELD_PATTERN && !parse_value(&p, h->field, &v)) || !rest_blank(p)) {
            sx_status_set(st, SX_EFORMAT, "%s: line %lld: malformed entry '%.80s'", path,
                          (long long)sx_lines_lineno(lr), line);
            goto fail;
        }
        if (gi < 1 || gi > n_feat || ci < 1 || ci > n_cell) {
            sx_status_set(st, SX_EFORMAT,
                          "%s: line %lld: entry (%lld, %lld) is outside the %lld x %lld matrix "
                          "of the header (indices are 1-based)", path,
                          (long long)sx_lines_lineno(lr), (long long)gi, (long long)ci,
                          (long long)n_feat, (long long)n_cell);
            goto fail;
        }
        seen++;
        if (h->array && v == 0) continue;
        if (kept == cap) { /* array format only */
            int64_t nc = cap ? cap * 2 : 4096;
            int32_t *ng = sx_reallocarray(gene, (size_t)nc, sizeof(int32_t));
            if (!ng) goto oom;
            gene = ng;
            float *nv = sx_reallocarray(val, (size_t)nc, sizeof(float));
            if (!nv) goto oom;
            val = nv;
            if (cell) {
                int32_t *nc2 = sx_reallocarray(cell, (size_t)nc, sizeof(int32_t));
                if (!nc2) goto oom;
                cell = nc2;
            }
            cap = nc;
        }
        int32_t c0 = (int32_t)(ci - 1);
        if (!cell && c0 < last_cell) {
            /* First out-of-order barcode: recover the cell of each earlier entry from the
             * per-cell counts (they were non-decreasing so far), then keep cells explicitly. */
            if (!(cell = sx_mallocarray((size_t)(cap ? cap : 1), sizeof(int32_t)))) goto oom;
            int64_t k = 0;
            for (int64_t c = 0; c <= last_cell; c++)
                for (int64_t t = 0; t < count[c + 1]; t++) cell[k++] = (int32_t)c;
        }
        if (cell) cell[kept] = c0;
        last_cell = c0 > last_cell ? c0 : last_cell;
        count[c0 + 1]++;
        gene[kept] = (int32_t)(gi - 1);
        val[kept++] = (float)v;
        if ((seen & ((1 << 20) - 1)) == 0) {
            if (sx_progress_cancelled(prog)) {
                sx_status_set(st, SX_ECANCELED, "%s: reading cancelled", path);
                goto fail;
            }
            sx_progress_report(prog, "read", nnz ? (double)seen / (double)nnz : -1, NULL);
        }
    }
    if (seen < nnz) {
        if (st && st->code) goto fail; /* read error (e.g. truncated gzip) already reported */
        sx_status_set(st, SX_EFORMAT,
                      "%s: the file ends after %lld of the %lld entries its header announces "
                      "(truncated?)", path, (long long)seen, (long long)nnz);
        goto fail;
    }
    /* Anything after the last entry must be blank or a comment. */
    while ((r = sx_lines_next(lr, &line, &len, st)) > 0) {
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '%' || *p == '\0') continue;
        sx_status_set(st, SX_EFORMAT,
                      "%s: line %lld: more entries than the %lld the header announces", path,
                      (long long)sx_lines_lineno(lr), (long long)nnz);
        goto fail;
    }
    if (r < 0) goto fail;

    for (int64_t c = 0; c < n_cell; c++) count[c + 1] += count[c];
    if (!(m = sx_csr_new(n_cell, n_feat, 0, st))) goto fail;
    sx_free(m->indptr);
    m->indptr = count;
    count = NULL;
    if (!cell) {
        sx_free(m->indices);
        sx_free(m->data);
        m->indices = gene;
        m->data = val;
        gene = NULL;
        val = NULL;
    } else {
        /* counting sort by cell */
        int32_t *ix = sx_mallocarray((size_t)(kept ? kept : 1), sizeof(int32_t));
        float *dv = sx_mallocarray((size_t)(kept ? kept : 1), sizeof(float));
        int64_t *pos = sx_mallocarray((size_t)n_cell + 1, sizeof(int64_t));
        if (!ix || !dv || !pos) {
            sx_free(ix);
            sx_free(dv);
            sx_free(pos);
            goto oom;
        }
        memcpy(pos, m->indptr, (size_t)(n_cell + 1) * sizeof(int64_t));
        for (int64_t k = 0; k < kept; k++) {
            int64_t p2 = pos[cell[k]]++;
            ix[p2] = gene[k];
            dv[p2] = val[k];
        }
        sx_free(pos);
        sx_free(m->indices);
        sx_free(m->data);
        m->indices = ix;
        m->data = dv;
    }
    /* duplicates are summed (scipy's COO -> CSR), then explicit zeros dropped */
    if (sx_csr_canonicalize(m, st) != SX_OK) goto fail;
    int64_t out = 0, k0 = 0;
    for (int64_t i = 0; i < m->n_rows; i++) {
        int64_t b = m->indptr[i + 1];
        for (int64_t k = k0; k < b; k++)
            if (m->data[k] != 0.0f) {
                m->indices[out] = m->indices[k];
                m->data[out++] = m->data[k];
            }
        k0 = b;
        m->indptr[i + 1] = out;
    }
    sx_csr_shrink(m, st);
    sx_free(gene);
    sx_free(val);
    sx_free(count);
    sx_free(cell);
    (void)fsize;
    return m;
oom:
    sx_status_set(st, SX_ENOMEM, "%s: out of memory for %lld entries", path, (long long)nnz);
fail:
    sx_csr_free(m);
    sx_free(gene);
    sx_free(val);
    sx_free(count);
    sx_free(cell);
    return NULL;
}

/* ---------------------------------------------------------------- entry point */

sx_dataset *sx_mtx_read(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                        sx_status *st)
{
    mtx_files files = {0};
    namelist feats = {0}, bcs = {0};
    sx_lines *lr = NULL;
    sx_csr *X = NULL;
    sx_dataset *d = NULL;
    char *dir = NULL;
    int rc = SX_OK;
    int skip = opts ? opts->skip_values_check : 0;
    sx_io_limits limbuf;
    const sx_io_limits *lim = sx_io_limits_resolve(opts ? opts->limits : NULL, &limbuf);
    struct stat sb;

    if (stat(path, &sb) != 0) {
        sx_status_set(st, SX_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(sb.st_mode)) {
        if ((rc = find_folder_files(path, &files, st)) != SX_OK) goto fail;
    } else {
        /* A bare matrix; use <prefix>barcodes/features next to it when both exist. */
        if (!(files.matrix = sx_strdup(path))) goto oom;
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        if (!(dir = slash ? sx_strndup(path, (size_t)(slash - path)) : sx_strdup("."))) goto oom;
        size_t sl = sx_io_ends_with(base, "matrix.mtx") ? 10
                    : sx_io_ends_with(base, "matrix.mtx.gz") ? 13 : 0;
        if (sl) {
            char *prefix = sx_strndup(base, strlen(base) - sl);
            if (!prefix) goto oom;
            rc = find_companions(dir, prefix, &files, 0, st);
            sx_free(prefix);
            if (rc != SX_OK) goto fail;
            if (!files.features || !files.barcodes) {
                sx_free(files.features);
                sx_free(files.barcodes);
                files.features = files.barcodes = NULL;
                files.feat_kind = FEAT_NONE;
            }
        }
    }

    int64_t fsize = sx_io_file_size(files.matrix, st);
    if (fsize < 0) goto fail_st;
    if (!(lr = sx_lines_open(files.matrix, st))) goto fail_st;
    sx_lines_set_limits(lr, lim);
    mtx_header h = {0};
    if ((rc = read_header(lr, files.matrix, fsize, lim, &h, st)) != SX_OK) goto fail;
    if (files.features) {
        if ((rc = read_names(files.features, files.feat_kind, lim, &feats, st)) != SX_OK)
            goto fail;
        if ((rc = read_names(files.barcodes, FEAT_NONE, lim, &bcs, st)) != SX_OK) goto fail;
        if (feats.n != h.n_rows || bcs.n != h.n_cols) {
            rc = sx_status_set(st, SX_EFORMAT,
                               "%s is %lld features x %lld barcodes but %s has %lld lines and "
                               "%s %lld; the files do not belong together",
                               files.matrix, (long long)h.n_rows, (long long)h.n_cols,
                               files.features, (long long)feats.n, files.barcodes,
                               (long long)bcs.n);
            goto fail;
        }
    }
    if (!(X = read_entries(lr, files.matrix, &h, fsize, prog, st))) goto fail_st;
    if ((rc = sx_io_check_values(X, files.matrix, skip, st)) != SX_OK) goto fail;

    if (!(d = sx_dataset_new(0, 0, st))) goto fail_st;
    if (files.features) {
        sx_frame_free(d->obs);
        sx_frame_free(d->var);
        d->obs = sx_frame_new(bcs.n, (const char *const *)bcs.names, st);
        d->var = sx_frame_new(feats.n, (const char *const *)feats.names, st);
        if (!d->obs || !d->var) goto fail_st;
        /* scanpy read_10x_mtx: var gene_ids (+ feature_types for v3) */
        if (files.feat_kind != FEAT_PEAKS &&
            (rc = sx_frame_add_strings(d->var, "gene_ids", (const char *const *)feats.ids,
                                       st)) != SX_OK)
            goto fail;
        if (files.feat_kind == FEAT_FEATURES && feats.all_types &&
            (rc = sx_frame_add_strings(d->var, "feature_types",
                                       (const char *const *)feats.types, st)) != SX_OK)
            goto fail;
    } else {
        sx_frame_free(d->obs);
        sx_frame_free(d->var);
        d->obs = sx_frame_new(h.n_cols, NULL, st);
        d->var = sx_frame_new(h.n_rows, NULL, st);
        if (!d->obs || !d->var) goto fail_st;
    }
    d->X = X;
    X = NULL;
    d->x_was_int = h.field != FIELD_REAL;
    if ((rc = sx_io_unique_var_names(d, files.matrix, st)) != SX_OK) goto fail;
    sx_progress_report(prog, "read", 1.0, NULL);
    goto done;

oom:
    rc = sx_status_set(st, SX_ENOMEM, "%s: out of memory", path);
    goto fail;
fail_st:
    rc = st && st->code ? st->code : SX_ENOMEM;
fail:
    (void)rc;
    sx_dataset_free(d);
    d = NULL;
done:
    sx_csr_free(X);
    sx_lines_close(lr);
    namelist_free(&feats);
    namelist_free(&bcs);
    files_free(&files);
    sx_free(dir);
    return d;
}
