/* sx_format — the table of input formats: the one place that knows what scalex reads.
 *
 * One entry per format: its name, file name extensions (with the .gz variants), how its
 * bytes look (magic numbers; gzip is looked inside), its reader and inspectors, and, for a
 * folder format, the member files and the role each plays. Everything above core/io (the
 * readers' dispatch, `scalex inspect`, the daemon's upload check, the API's multipart
 * folders and its messages) asks these queries instead of spelling formats itself, so a
 * new format is one entry here plus its reader.
 *
 * Entries are static: pointers returned by the queries stay valid for the process.
 */
#ifndef SX_FORMAT_H
#define SX_FORMAT_H

#include <stddef.h>

#include "sx_dataset.h"
#include "sx_progress.h"

typedef enum sx_format {
    SX_FMT_UNKNOWN = 0,
    SX_FMT_H5AD,
    SX_FMT_10X_H5,
    SX_FMT_MTX_DIR,  /* folder with matrix.mtx[.gz] + genes/features + barcodes */
    SX_FMT_MTX,      /* a bare coordinate .mtx[.gz] file */
    SX_FMT_CSV,      /* comma separated, genes x cells (SCALEX orientation, transposed) */
    SX_FMT_TXT       /* tab/space separated */
} sx_format;

struct sx_read_opts;
struct sx_inspect;

/* A member file of a folder format: its name (without .gz; the .gz variant is accepted
 * too) and its role (0..n_roles-1, e.g. 0 = matrix, 1 = features, 2 = barcodes). Several
 * names may share a role (features.tsv / genes.tsv); a folder holds one file per role. */
typedef struct sx_format_member {
    const char *name;
    int role;
} sx_format_member;

typedef struct sx_format_info {
    sx_format id;
    const char *name;          /* stable name in API answers and `scalex inspect` ("10x_h5") */
    const char *label;         /* for messages: ".h5ad", "10x .h5", "a 10x matrix folder" */
    const char *const *exts;   /* extensions without the dot, plain first then ".gz" forms;
                                  NULL-terminated; a folder has none */
    /* Bytes at the start of the file (decompressed when gzip): 0 = not this format,
     * 1 = a hint (used when the name says nothing), 2 = a magic number (beats the name). */
    int (*sniff)(const unsigned char *head, size_t n);
    /* When the file itself can be opened: the same scores, and 3 = its structure was
     * checked (tells formats with the same magic apart). NULL = sniff on the head. */
    int (*sniff_file)(const char *path, const unsigned char *head, size_t n);
    /* Why a file named like this format whose bytes do not match is refused; NULL = the
     * name alone selects the format and the reader reports what is wrong. */
    const char *misnamed;
    sx_dataset *(*read)(const char *path, const struct sx_read_opts *opts,
                        const sx_progress *prog, sx_status *st);
    /* Summary for `scalex inspect` without loading the file whole; NULL = read it with
     * `read` and summarise the dataset. */
    struct sx_inspect *(*inspect)(const char *path, const struct sx_read_opts *opts,
                                  const sx_progress *prog, sx_status *st);
    /* Validation with bounded memory (uploads); NULL = `inspect` (or read whole). */
    struct sx_inspect *(*check)(const char *path, const sx_progress *prog, sx_status *st);
    const sx_format_member *members; /* folder formats: NULL-name-terminated; else NULL */
    int n_roles;                     /* folder formats: roles a complete folder fills */
    const char *members_text;        /* folder formats: the members in words, for messages */
} sx_format_info;

/* The entry of f; NULL for SX_FMT_UNKNOWN or an out-of-range value. */
const sx_format_info *sx_format_get(sx_format f);
/* The i-th entry (0-based, in the order messages list them); NULL past the end. */
const sx_format_info *sx_format_at(int i);
/* Stable name ("h5ad", "10x_h5", "10x_mtx", "mtx", "csv", "txt"); "unknown" otherwise. */
const char *sx_format_name(sx_format f);
/* The format a stable name stands for; SX_FMT_UNKNOWN if none. */
sx_format sx_format_by_name(const char *name);
/* The format a file name's extension says (case-insensitive, .gz variants included;
 * "a/matrix.mtx.gz" -> SX_FMT_MTX); SX_FMT_UNKNOWN if none. *gz (may be NULL) is set when
 * the matched extension is a .gz form. */
sx_format sx_format_by_ext(const char *filename, int *gz);
/* The extension files of f are stored under ("h5ad", "csv.gz" when gz); NULL when f has
 * none (a folder) or cannot be gzip'd. */
const char *sx_format_ext(sx_format f, int gz);

/* Sniff a format from the first bytes of a file (inflating gzip data in memory; *gz set
 * when it was gzip). HDF5 bytes alone say h5ad: telling a 10x .h5 apart needs the file
 * (sx_format_sniff). Returns SX_OK with *fmt, or SX_EFORMAT (st filled) when nothing
 * matches. st may be NULL. */
int sx_format_sniff_bytes(const void *buf, size_t n, sx_format *fmt, int *gz, sx_status *st);
/* Detect the format of a file or folder: bytes first (magic numbers, HDF5 structure,
 * inside gzip), then the name's extension, then content hints. SX_OK with *fmt (and *gz,
 * may be NULL); SX_EIO when it cannot be opened, SX_EFORMAT with advice when it is no
 * input scalex reads (messages name path). */
int sx_format_sniff(const char *path, sx_format *fmt, int *gz, sx_status *st);

/* The role of a member file name in a folder format (the .gz variant included; *folder
 * set, may be NULL), or -1 when the name is no member of any folder format. */
int sx_format_member_role(const char *name, sx_format *folder);
/* Do these file names form one complete folder of a folder format (one file per role)?
 * SX_OK with *fmt, or SX_EFORMAT with a message saying which files a folder needs. */
int sx_format_folder_match(const char *const *names, int n, sx_format *fmt, sx_status *st);
/* The most member files any folder format has: the most files one upload may hold (never
 * above SX_FORMAT_MAX_MEMBERS, the size for arrays of member names). */
#define SX_FORMAT_MAX_MEMBERS 8
int sx_format_max_members(void);
/* The folder formats' members in words: "a 10x matrix folder's matrix.mtx, features.tsv (or
 * genes.tsv or peaks.bed) and barcodes.tsv, each optionally .gz". Returns buf. */
const char *sx_format_folders_text(char *buf, size_t cap);
/* The formats in words for messages: ".h5ad, 10x .h5, a 10x matrix folder, .mtx, .csv or
 * .txt/.tsv" (without folders when files_only). Returns the length written (snprintf). */
int sx_format_list_text(char *buf, size_t cap, int files_only);

#endif
