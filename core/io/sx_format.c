/* sx_format — the format table and the queries on it (see sx_format.h).
 *
 * Detection order, the same for every caller: a folder is the folder format; otherwise
 * the first bytes (inflated when gzip) are scored by every entry, and a magic number (or
 * a checked HDF5 structure) wins over the name, because uploads and misnamed files carry
 * names that lie or say nothing. Then the name's extension decides, then weak content
 * hints (a tab or a comma in the first line), which is what SCALEX itself does with
 * names and what the text reader does with a nameless file. */
#include "sx_format.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

#include "sx_h5.h"
#include "sx_inspect.h"
#include "sx_io.h"

#define HEAD_BYTES 4096

/* ---------------------------------------------------------------- sniffers */

static const unsigned char hdf5_sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

static int sniff_hdf5(const unsigned char *head, size_t n)
{
    return n >= 8 && memcmp(head, hdf5_sig, 8) == 0 ? 2 : 0;
}

/* HDF5 also allows a user block before the signature (512, 1024, ... bytes): ask the
 * library when the first bytes do not say it. */
static int is_hdf5_file(const char *path, const unsigned char *head, size_t n)
{
    if (sniff_hdf5(head, n)) return 1;
    sx_h5_quiet();
    return H5Fis_hdf5(path) > 0;
}

/* 10x Cell Ranger: /matrix (v3) or per-genome groups holding barcodes + indptr (v2). */
static int is_tenx_h5(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return 0; /* the h5ad reader reports the problem */
    int yes = sx_h5_exists(f, "matrix/barcodes");
    if (!yes && !sx_h5_exists(f, "obs") && !sx_h5_exists(f, "X")) {
        H5G_info_t info;
        if (H5Gget_info(f, &info) >= 0) {
            for (hsize_t i = 0; i < info.nlinks && !yes; i++) {
                char name[256], p[300];
                if (H5Lget_name_by_idx(f, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                                       H5P_DEFAULT) < 0)
                    continue;
                snprintf(p, sizeof p, "%s/barcodes", name);
                yes = sx_h5_exists(f, p);
            }
        }
    }
    H5Fclose(f);
    return yes;
}

static int file_h5ad(const char *path, const unsigned char *head, size_t n)
{
    return is_hdf5_file(path, head, n) ? 2 : 0;
}

static int file_tenx_h5(const char *path, const unsigned char *head, size_t n)
{
    return is_hdf5_file(path, head, n) && is_tenx_h5(path) ? 3 : 0;
}

static int sniff_mtx(const unsigned char *head, size_t n)
{
    return n >= 14 && memcmp(head, "%%MatrixMarket", 14) == 0 ? 2 : 0;
}

/* Does the first line hold c? */
static int first_line_has(const unsigned char *head, size_t n, char c)
{
    for (size_t i = 0; i < n && head[i] != '\n'; i++)
        if (head[i] == (unsigned char)c) return 1;
    return 0;
}

/* The text reader's own rule for a nameless file: comma separated unless there is a tab */
static int sniff_txt(const unsigned char *head, size_t n)
{
    return first_line_has(head, n, '\t');
}

static int sniff_csv(const unsigned char *head, size_t n)
{
    return first_line_has(head, n, ',') && !first_line_has(head, n, '\t');
}

/* ---------------------------------------------------------------- the table */

static const char *const ext_h5ad[] = {"h5ad", NULL};
static const char *const ext_h5[] = {"h5", NULL};
static const char *const ext_mtx[] = {"mtx", "mtx.gz", NULL};
static const char *const ext_csv[] = {"csv", "csv.gz", NULL};
static const char *const ext_txt[] = {"txt", "tsv", "txt.gz", "tsv.gz", NULL};

/* the 10x names sx_mtx.c looks for, and scanpy's read_10x_mtx */
static const sx_format_member mtx_members[] = {
    {"matrix.mtx", 0}, {"features.tsv", 1}, {"genes.tsv", 1}, {"peaks.bed", 1},
    {"barcodes.tsv", 2}, {NULL, 0},
};

static const char not_hdf5[] = "not an HDF5 file (bad signature); the file is truncated, "
                               "corrupt or misnamed";

static const sx_format_info formats[] = {
    {SX_FMT_H5AD, "h5ad", ".h5ad", ext_h5ad, sniff_hdf5, file_h5ad, not_hdf5, sx_h5ad_read,
     sx_inspect_h5ad, NULL, NULL, 0, NULL},
    {SX_FMT_10X_H5, "10x_h5", "10x .h5", ext_h5, NULL, file_tenx_h5, not_hdf5, sx_tenx_h5_read,
     NULL, sx_inspect_tenx_h5, NULL, 0, NULL},
    {SX_FMT_MTX_DIR, "10x_mtx", "a 10x matrix folder", NULL, NULL, NULL, NULL, sx_mtx_read, NULL,
     NULL, mtx_members, 3,
     "matrix.mtx, features.tsv (or genes.tsv or peaks.bed) and barcodes.tsv, each optionally .gz"},
    {SX_FMT_MTX, "mtx", ".mtx", ext_mtx, sniff_mtx, NULL, NULL, sx_mtx_read, NULL, NULL, NULL, 0,
     NULL},
    {SX_FMT_CSV, "csv", ".csv", ext_csv, sniff_csv, NULL, NULL, sx_text_read, NULL, NULL, NULL, 0,
     NULL},
    {SX_FMT_TXT, "txt", ".txt/.tsv", ext_txt, sniff_txt, NULL, NULL, sx_text_read, NULL, NULL,
     NULL, 0, NULL},
};
#define N_FORMATS ((int)(sizeof formats / sizeof formats[0]))

/* Names that are no input, with what to do instead (checked before the extensions). */
static const char *const ext_r[] = {"rds", "rda", "rdata", NULL};
static const struct {
    const char *const *exts;
    const char *why;
} refused[] = {
    {ext_r, "an R data file; scalex reads no R objects: save the counts from R as .h5ad "
     "(zellkonverter::writeH5AD) or as a 10x folder (DropletUtils::write10xCounts) and read that"},
};

/* ---------------------------------------------------------------- queries */

const sx_format_info *sx_format_at(int i)
{
    return i >= 0 && i < N_FORMATS ? &formats[i] : NULL;
}

const sx_format_info *sx_format_get(sx_format f)
{
    for (int i = 0; i < N_FORMATS; i++)
        if (formats[i].id == f) return &formats[i];
    return NULL;
}

const char *sx_format_name(sx_format f)
{
    const sx_format_info *fi = sx_format_get(f);
    return fi ? fi->name : "unknown";
}

sx_format sx_format_by_name(const char *name)
{
    for (int i = 0; name && i < N_FORMATS; i++)
        if (!strcmp(formats[i].name, name)) return formats[i].id;
    return SX_FMT_UNKNOWN;
}

static int is_gz_ext(const char *ext)
{
    size_t n = strlen(ext);
    return n > 3 && !strcmp(ext + n - 3, ".gz");
}

/* Does name end with "." ext (case-insensitive)? */
static int has_ext(const char *name, const char *ext)
{
    size_t a = strlen(name), b = strlen(ext);
    return a > b && name[a - b - 1] == '.' && strcasecmp(name + a - b, ext) == 0;
}

/* the entry whose extension list holds the longest match */
static int match_ext(const char *const *exts, const char *name, size_t *best)
{
    int hit = 0;
    for (int k = 0; exts && exts[k]; k++)
        if (has_ext(name, exts[k]) && strlen(exts[k]) > *best) *best = strlen(exts[k]), hit = k + 1;
    return hit;
}

sx_format sx_format_by_ext(const char *filename, int *gz)
{
    sx_format f = SX_FMT_UNKNOWN;
    size_t best = 0;
    if (gz) *gz = 0;
    for (int i = 0; filename && i < N_FORMATS; i++) {
        int k = match_ext(formats[i].exts, filename, &best);
        if (!k) continue;
        f = formats[i].id;
        if (gz) *gz = is_gz_ext(formats[i].exts[k - 1]);
    }
    return f;
}

const char *sx_format_ext(sx_format f, int gz)
{
    const sx_format_info *fi = sx_format_get(f);
    for (int k = 0; fi && fi->exts && fi->exts[k]; k++)
        if (is_gz_ext(fi->exts[k]) == (gz != 0)) return fi->exts[k];
    return NULL;
}

static int may_gzip(const sx_format_info *fi)
{
    for (int k = 0; fi->exts && fi->exts[k]; k++)
        if (is_gz_ext(fi->exts[k])) return 1;
    return 0;
}

/* Best-scoring entry for a head (and the file, when path is set); ties go to table order. */
static sx_format best_sniff(const char *path, const unsigned char *head, size_t n, int gz,
                            int min_score)
{
    sx_format f = SX_FMT_UNKNOWN;
    int best = min_score - 1;
    for (int i = 0; i < N_FORMATS; i++) {
        const sx_format_info *fi = &formats[i];
        if (gz && !may_gzip(fi)) continue;
        int s = path && fi->sniff_file && !gz ? fi->sniff_file(path, head, n)
                : fi->sniff ? fi->sniff(head, n) : 0;
        if (s > best) best = s, f = fi->id;
    }
    return f;
}

int sx_format_list_text(char *buf, size_t cap, int files_only)
{
    size_t len = 0;
    int n = 0, total = 0;
    for (int i = 0; i < N_FORMATS; i++) total += !(files_only && formats[i].members);
    if (cap) buf[0] = 0;
    for (int i = 0; i < N_FORMATS; i++) {
        const sx_format_info *fi = &formats[i];
        if (files_only && fi->members) continue;
        n++;
        const char *sep = n == 1 ? "" : n == total ? " or " : ", ";
        int w = snprintf(buf + (len < cap ? len : cap), len < cap ? cap - len : 0, "%s%s%s", sep,
                         fi->label, may_gzip(fi) ? "[.gz]" : "");
        if (w > 0) len += (size_t)w;
    }
    return (int)len;
}

/* ---------------------------------------------------------------- sniffing */

/* inflate the gzip data in buf into out (as far as it goes); returns bytes produced */
static size_t gunzip_head(const void *buf, size_t n, unsigned char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return 0;
    z.next_in = (Bytef *)buf;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_SYNC_FLUSH);
    size_t got = rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR ? cap - z.avail_out : 0;
    inflateEnd(&z);
    return got;
}

static int is_gzip(const unsigned char *b, size_t n)
{
    return n >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

int sx_format_sniff_bytes(const void *buf, size_t n, sx_format *fmt, int *gz, sx_status *st)
{
    unsigned char head[HEAD_BYTES];
    const unsigned char *h = buf;
    int z = is_gzip(h, n);
    if (z) {
        n = gunzip_head(buf, n, head, sizeof head);
        h = head;
    }
    if (gz) *gz = z;
    *fmt = best_sniff(NULL, h, n, z, 1);
    if (*fmt != SX_FMT_UNKNOWN) return SX_OK;
    char list[256];
    sx_format_list_text(list, sizeof list, 1);
    return sx_status_set(st, SX_EFORMAT, "%s (expected %s)", z && !n ? "gzip data that cannot be "
                         "decompressed (truncated or corrupt)" : "unrecognised format", list);
}

/* the first HEAD_BYTES of a file, inflated when it is gzip (*gz set) */
static int read_head(const char *path, unsigned char *head, size_t *n, int *gz, sx_status *st)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return sx_status_set(st, SX_EIO, "%s: cannot open: %s", path, strerror(errno));
    *n = fread(head, 1, HEAD_BYTES, fp);
    fclose(fp);
    *gz = is_gzip(head, *n);
    if (!*gz) return SX_OK;
    gzFile g = gzopen(path, "rb");
    int got = g ? gzread(g, head, HEAD_BYTES) : -1;
    if (g) gzclose(g);
    *n = got > 0 ? (size_t)got : 0; /* nothing: corrupt gzip, left to the name or refused */
    return SX_OK;
}

static int refuse_by_name(const char *path, sx_status *st)
{
    size_t best = 0;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (match_ext(refused[i].exts, path, &best))
            return sx_status_set(st, SX_EFORMAT, "%s: %s", path, refused[i].why);
    return SX_OK;
}

int sx_format_sniff(const char *path, sx_format *fmt, int *gz_out, sx_status *st)
{
    *fmt = SX_FMT_UNKNOWN;
    if (gz_out) *gz_out = 0;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return sx_status_set(st, SX_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        for (int i = 0; i < N_FORMATS && !*fmt; i++)
            if (formats[i].members) *fmt = formats[i].id;
        return SX_OK;
    }
    unsigned char head[HEAD_BYTES];
    size_t n = 0;
    int gz = 0, rc;
    if ((rc = read_head(path, head, &n, &gz, st))) return rc;
    if (gz_out) *gz_out = gz;
    if ((*fmt = best_sniff(path, head, n, gz, 2)) != SX_FMT_UNKNOWN) return SX_OK;
    if ((rc = refuse_by_name(path, st))) return rc;
    sx_format by_name = sx_format_by_ext(path, NULL);
    int under_gz = 0;
    if (by_name == SX_FMT_UNKNOWN && gz) { /* "x.h5ad.gz": the name under the .gz */
        char base[4096];
        snprintf(base, sizeof base, "%s", path);
        size_t l = strlen(base);
        if (l > 3 && !strcasecmp(base + l - 3, ".gz")) base[l - 3] = 0, under_gz = 1;
        if (under_gz) by_name = sx_format_by_ext(base, NULL);
    }
    const sx_format_info *fi = sx_format_get(by_name);
    if (fi && fi->misnamed)
        return sx_status_set(st, SX_EFORMAT, "%s: %s", path, under_gz ? "gzip-compressed; "
                             "decompress it (gunzip) and read the file inside" : fi->misnamed);
    if (fi) {
        *fmt = by_name;
        return SX_OK;
    }
    if ((*fmt = best_sniff(path, head, n, gz, 1)) != SX_FMT_UNKNOWN) return SX_OK;
    char list[256];
    sx_format_list_text(list, sizeof list, 0);
    if (gz && !n)
        return sx_status_set(st, SX_EFORMAT, "%s: gzip data that cannot be decompressed "
                             "(truncated or corrupt)", path);
    return sx_status_set(st, SX_EFORMAT, "%s: unrecognised format (expected %s)", path, list);
}

/* ---------------------------------------------------------------- folders */

/* role of name (or name.gz) among fi's members, -1 if none */
static int role_in(const sx_format_info *fi, const char *name)
{
    size_t n = strlen(name);
    for (const sx_format_member *m = fi->members; m && m->name; m++) {
        size_t l = strlen(m->name);
        if (!strncmp(name, m->name, l) && (n == l || !strcmp(name + l, ".gz"))) return m->role;
    }
    return -1;
}

int sx_format_member_role(const char *name, sx_format *folder)
{
    if (folder) *folder = SX_FMT_UNKNOWN;
    for (int i = 0; name && i < N_FORMATS; i++) {
        int r = role_in(&formats[i], name);
        if (r < 0) continue;
        if (folder) *folder = formats[i].id;
        return r;
    }
    return -1;
}

int sx_format_folder_match(const char *const *names, int n, sx_format *fmt, sx_status *st)
{
    *fmt = SX_FMT_UNKNOWN;
    for (int i = 0; i < N_FORMATS; i++) {
        const sx_format_info *fi = &formats[i];
        if (!fi->members || n != fi->n_roles) continue;
        int seen[SX_FORMAT_MAX_MEMBERS] = {0}, ok = fi->n_roles <= SX_FORMAT_MAX_MEMBERS;
        for (int k = 0; ok && k < n; k++) {
            int r = names[k] ? role_in(fi, names[k]) : -1;
            ok = r >= 0 && ++seen[r] == 1;
        }
        if (ok) {
            *fmt = fi->id;
            return SX_OK;
        }
    }
    char text[512];
    return sx_status_set(st, SX_EFORMAT, "several files must be %s; send any other dataset as "
                         "one file", sx_format_folders_text(text, sizeof text));
}

const char *sx_format_folders_text(char *buf, size_t cap)
{
    size_t len = 0;
    if (cap) buf[0] = 0;
    for (int i = 0; i < N_FORMATS; i++) {
        if (!formats[i].members || len >= cap) continue;
        int w = snprintf(buf + len, cap - len, "%s%s's %s", len ? ", or " : "", formats[i].label,
                         formats[i].members_text);
        if (w > 0) len += (size_t)w;
    }
    return buf;
}

int sx_format_max_members(void)
{
    int m = 1;
    for (int i = 0; i < N_FORMATS; i++)
        if (formats[i].members && formats[i].n_roles > m) m = formats[i].n_roles;
    return m < SX_FORMAT_MAX_MEMBERS ? m : SX_FORMAT_MAX_MEMBERS;
}
