/* sx_io — format detection (magic bytes first, names second) and reader dispatch. */
#include "sx_io.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "sx_h5.h"
#include "sx_h5x.h"

const char *sx_format_name(sx_format f)
{
    switch (f) {
    case SX_FMT_H5AD: return "h5ad";
    case SX_FMT_10X_H5: return "10x_h5";
    case SX_FMT_MTX_DIR: return "10x_mtx";
    case SX_FMT_MTX: return "mtx";
    case SX_FMT_CSV: return "csv";
    case SX_FMT_TXT: return "txt";
    default: return "unknown";
    }
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcasecmp(s + a - b, suf) == 0;
}

/* Classify an HDF5 file: 10x Cell Ranger (/matrix, or per-genome groups holding
 * barcodes + indptr) or AnnData. */
static sx_format classify_hdf5(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return SX_FMT_H5AD; /* let the reader report the problem */
    sx_format fmt = SX_FMT_H5AD;
    if (sx_h5_exists(f, "matrix/barcodes")) {
        fmt = SX_FMT_10X_H5;
    } else if (!sx_h5_exists(f, "obs") && !sx_h5_exists(f, "X")) {
        H5G_info_t info;
        if (H5Gget_info(f, &info) >= 0) {
            for (hsize_t i = 0; i < info.nlinks; i++) {
                char name[256], p[300];
                if (H5Lget_name_by_idx(f, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                                       H5P_DEFAULT) < 0)
                    continue;
                snprintf(p, sizeof p, "%s/barcodes", name);
                if (sx_h5_exists(f, p)) {
                    fmt = SX_FMT_10X_H5;
                    break;
                }
            }
        }
    }
    H5Fclose(f);
    return fmt;
}

int sx_io_detect(const char *path, sx_format *fmt, sx_status *st)
{
    *fmt = SX_FMT_UNKNOWN;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return sx_status_set(st, SX_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        *fmt = SX_FMT_MTX_DIR;
        return SX_OK;
    }
    unsigned char magic[8] = {0};
    FILE *fp = fopen(path, "rb");
    if (!fp) return sx_status_set(st, SX_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t got = fread(magic, 1, sizeof magic, fp);
    fclose(fp);
    static const unsigned char h5sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    sx_h5_quiet();
    if ((got == 8 && memcmp(magic, h5sig, 8) == 0) || H5Fis_hdf5(path) > 0) {
        *fmt = classify_hdf5(path);
        return SX_OK;
    }
    /* Text formats (maybe gzip): look at the first line. */
    char line[256] = "";
    gzFile gz = gzopen(path, "rb");
    if (gz) {
        if (!gzgets(gz, line, sizeof line)) line[0] = '\0';
        gzclose(gz);
    }
    if (strncmp(line, "%%MatrixMarket", 14) == 0) {
        *fmt = SX_FMT_MTX;
        return SX_OK;
    }
    char base[4096];
    snprintf(base, sizeof base, "%s", path);
    if (ends_with(base, ".gz")) base[strlen(base) - 3] = '\0';
    if (ends_with(base, ".h5ad") || ends_with(base, ".h5"))
        return sx_status_set(st, SX_EFORMAT, "%s: not an HDF5 file (bad signature); the file is "
                             "truncated, corrupt or misnamed", path);
    if (ends_with(base, ".rds") || ends_with(base, ".rda") || ends_with(base, ".rdata"))
        return sx_status_set(st, SX_EFORMAT, "%s: an R data file; scalex reads no R objects: "
                             "save the counts from R as .h5ad (zellkonverter::writeH5AD) or as a "
                             "10x folder (DropletUtils::write10xCounts) and read that", path);
    if (ends_with(base, ".mtx")) *fmt = SX_FMT_MTX;
    else if (ends_with(base, ".csv")) *fmt = SX_FMT_CSV;
    else if (ends_with(base, ".txt") || ends_with(base, ".tsv")) *fmt = SX_FMT_TXT;
    else if (strchr(line, '\t')) *fmt = SX_FMT_TXT;
    else if (strchr(line, ',')) *fmt = SX_FMT_CSV;
    if (*fmt == SX_FMT_UNKNOWN)
        return sx_status_set(st, SX_EFORMAT, "%s: unrecognised format (expected .h5ad, 10x .h5, "
                             "a 10x matrix folder, .mtx, .csv or .txt/.tsv)", path);
    return SX_OK;
}

sx_dataset *sx_io_read(const char *path, const sx_read_opts *opts, const sx_progress *prog,
                       sx_status *st)
{
    sx_format fmt;
    if (sx_io_detect(path, &fmt, st) != SX_OK) return NULL;
    switch (fmt) {
    case SX_FMT_H5AD: return sx_h5ad_read(path, opts, prog, st);
    case SX_FMT_10X_H5: return sx_tenx_h5_read(path, opts, prog, st);
    case SX_FMT_MTX_DIR:
    case SX_FMT_MTX: return sx_mtx_read(path, opts, prog, st);
    case SX_FMT_CSV:
    case SX_FMT_TXT: return sx_text_read(path, opts, prog, st);
    default:
        sx_status_set(st, SX_EFORMAT, "%s: unrecognised format", path);
        return NULL;
    }
}
