/* The format table (sx_format): every real file of $SX_SHARED/data is sniffed as the
 * format its provenance says (PROVENANCE.md of each folder), by path, under a name that
 * says nothing (as an upload is stored), from its first bytes, and as gzip'd / gunzip'd
 * copies; extensions, folder member roles and the messages that list the formats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "sx_format.h"
#include "sx_inspect.h"
#include "sx_io.h"
#include "sx_test.h"

/* real files and the format their provenance gives them */
static const struct {
    const char *rel;
    sx_format fmt;
    int gz;
} real[] = {
    {"data/h5ad_versions/pbmc68k_reduced_2018_legacy_anndata0.6.h5ad", SX_FMT_H5AD, 0},
    {"data/h5ad_versions/pbmc68k_reduced_2025_encoded.h5ad", SX_FMT_H5AD, 0},
    {"data/h5ad_versions/pbmc_10k_protein_v3_subset_anndata0.7.h5ad", SX_FMT_H5AD, 0},
    {"data/h5ad_versions/pbmc_10k_protein_v3_subset_anndata0.7_gzip.h5ad", SX_FMT_H5AD, 0},
    {"data/pbmc_3tech_symphony/query_3pv1.h5ad", SX_FMT_H5AD, 0},
    {"data/tenx_pbmc_chr21_scanpy/1.2.0/filtered_gene_bc_matrices_h5.h5", SX_FMT_10X_H5, 0},
    {"data/tenx_pbmc_chr21_scanpy/1.2.0/multiple_genomes.h5", SX_FMT_10X_H5, 0},
    {"data/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix.h5", SX_FMT_10X_H5, 0},
    {"data/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix", SX_FMT_MTX_DIR, 0},
    {"data/tenx_pbmc_chr21_scanpy/1.2.0/filtered_gene_bc_matrices/hg19_chr21", SX_FMT_MTX_DIR, 0},
    {"data/pbmc_3tech_symphony/query_3pv1_mtx", SX_FMT_MTX_DIR, 0},
    {"data/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix/matrix.mtx.gz", SX_FMT_MTX, 1},
    {"data/tenx_pbmc_chr21_scanpy/1.2.0/filtered_gene_bc_matrices/hg19_chr21/matrix.mtx",
     SX_FMT_MTX, 0},
    {"data/cellbench_3cl_celseq2_dropseq/original/sc_celseq2.count.csv.gz", SX_FMT_CSV, 1},
    {"data/cellbench_3cl_celseq2_dropseq/original/sc_dropseq.count.csv.gz", SX_FMT_CSV, 1},
};
#define N_REAL (sizeof real / sizeof real[0])

static void sniff_ok(const char *path, sx_format want, int want_gz)
{
    sx_status st = {0};
    sx_format f = SX_FMT_UNKNOWN;
    int gz = -1;
    ck_assert_msg(sx_format_sniff(path, &f, &gz, &st) == SX_OK, "%s: %s", path, st.msg);
    ck_assert_msg(f == want && gz == want_gz, "%s: sniffed %s (gz %d), expected %s (gz %d)", path,
                  sx_format_name(f), gz, sx_format_name(want), want_gz);
}

static void sniff_fails(const char *path, const char *word)
{
    sx_status st = {0};
    sx_format f;
    ck_assert_int_eq(sx_format_sniff(path, &f, NULL, &st), SX_EFORMAT);
    ck_assert_msg(strstr(st.msg, word), "%s: '%s' lacks '%s'", path, st.msg, word);
    ck_assert_msg(strstr(st.msg, path), "%s: the message does not name the file", path);
}

/* copy src to dst, gzip'ing (mode 'z'), gunzip'ing ('u') or as is ('c') */
static void copy_file(const char *src, const char *dst, char mode)
{
    gzFile in = gzopen(src, "rb"); /* reads plain files as they are */
    ck_assert_ptr_nonnull(in);
    FILE *raw = mode == 'c' ? fopen(src, "rb") : NULL;
    gzFile zout = mode == 'z' ? gzopen(dst, "wb") : NULL;
    FILE *out = mode == 'z' ? NULL : fopen(dst, "wb");
    char buf[65536];
    for (;;) {
        int n = raw ? (int)fread(buf, 1, sizeof buf, raw) : gzread(in, buf, sizeof buf);
        ck_assert_int_ge(n, 0);
        if (n == 0) break;
        if (zout) ck_assert_int_eq(gzwrite(zout, buf, (unsigned)n), n);
        else ck_assert_int_eq((int)fwrite(buf, 1, (size_t)n, out), n);
    }
    gzclose(in);
    if (raw) fclose(raw);
    if (zout) gzclose(zout);
    if (out) fclose(out);
}

/* the first bytes of a file, as an upload's stream starts */
static size_t head_of(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

START_TEST(real_files_by_path)
{
    for (size_t i = 0; i < N_REAL; i++) sniff_ok(sx_test_shared(real[i].rel), real[i].fmt, real[i].gz);
}
END_TEST

/* an upload is stored as <id>.part: only the bytes can tell */
START_TEST(real_files_nameless)
{
    const char *dir = sx_test_tmpdir();
    for (size_t i = 0; i < N_REAL; i++) {
        if (real[i].fmt == SX_FMT_MTX_DIR) continue;
        char p[1200];
        snprintf(p, sizeof p, "%s/u%zu.part", dir, i);
        ck_assert_int_eq(symlink(sx_test_shared(real[i].rel), p), 0);
        sniff_ok(p, real[i].fmt, real[i].gz);
    }
}
END_TEST

START_TEST(real_files_gzip_copies)
{
    const char *dir = sx_test_tmpdir();
    for (size_t i = 0; i < N_REAL; i++) {
        const sx_format_info *fi = sx_format_get(real[i].fmt);
        if (fi->members) continue;
        char p[1200];
        snprintf(p, sizeof p, "%s/z%zu.part", dir, i);
        if (real[i].gz) { /* the other way: the plain text inside */
            copy_file(sx_test_shared(real[i].rel), p, 'u');
            sniff_ok(p, real[i].fmt, 0);
            continue;
        }
        copy_file(sx_test_shared(real[i].rel), p, 'z');
        if (sx_format_ext(real[i].fmt, 1)) {
            sniff_ok(p, real[i].fmt, 1);
        } else { /* HDF5 cannot be read through gzip: named, the message says what to do */
            char named[1300];
            snprintf(named, sizeof named, "%s.%s.gz", p, sx_format_ext(real[i].fmt, 0));
            ck_assert_int_eq(rename(p, named), 0);
            sniff_fails(named, "gunzip");
        }
    }
}
END_TEST

/* a tab separated table made from a real count table: the .txt format */
START_TEST(txt_from_real_csv)
{
    const char *dir = sx_test_tmpdir();
    char csv[1200], txt[1200], gz[1200];
    snprintf(csv, sizeof csv, "%s/t.part", dir);
    copy_file(sx_test_shared(real[N_REAL - 1].rel), csv, 'u');
    FILE *in = fopen(csv, "r"), *out;
    snprintf(txt, sizeof txt, "%s/t2.part", dir);
    out = fopen(txt, "w");
    char line[1 << 16];
    for (int k = 0; k < 20 && fgets(line, sizeof line, in); k++) {
        for (char *c = line; *c; c++)
            if (*c == ',') *c = '\t';
        fputs(line, out);
    }
    fclose(in);
    fclose(out);
    sniff_ok(txt, SX_FMT_TXT, 0);
    snprintf(gz, sizeof gz, "%s/t3.part", dir);
    copy_file(txt, gz, 'z');
    sniff_ok(gz, SX_FMT_TXT, 1);
    /* the engine's path: stored under the table's extension, the reader reads it */
    char named[1300];
    snprintf(named, sizeof named, "%s.%s", gz, sx_format_ext(SX_FMT_TXT, 1));
    ck_assert_str_eq(sx_format_ext(SX_FMT_TXT, 1), "txt.gz");
    ck_assert_int_eq(link(gz, named), 0);
    sx_status st = {0};
    sx_dataset *d = sx_io_read(named, NULL, NULL, &st);
    ck_assert_msg(d != NULL, "%s", st.msg);
    ck_assert_int_eq(d->var->n_rows, 19); /* 19 genes below the header line */
    sx_dataset_free(d);
}
END_TEST

START_TEST(sniff_from_bytes)
{
    static unsigned char buf[4096];
    for (size_t i = 0; i < N_REAL; i++) {
        if (real[i].fmt == SX_FMT_MTX_DIR) continue;
        size_t n = head_of(sx_test_shared(real[i].rel), buf, sizeof buf);
        sx_format f;
        int gz = -1;
        sx_status st = {0};
        ck_assert_msg(sx_format_sniff_bytes(buf, n, &f, &gz, &st) == SX_OK, "%s: %s", real[i].rel,
                      st.msg);
        /* from bytes alone HDF5 is h5ad: only the file tells a 10x .h5 */
        sx_format want = real[i].fmt == SX_FMT_10X_H5 ? SX_FMT_H5AD : real[i].fmt;
        ck_assert_msg(f == want && gz == real[i].gz, "%s: %s", real[i].rel, sx_format_name(f));
    }
    sx_format f;
    sx_status st = {0};
    ck_assert_int_eq(sx_format_sniff_bytes("hello world\n", 12, &f, NULL, &st), SX_EFORMAT);
    ck_assert_ptr_nonnull(strstr(st.msg, ".mtx[.gz]"));
}
END_TEST

START_TEST(refusals_name_the_file)
{
    const char *dir = sx_test_tmpdir();
    char p[1200];
    /* a count table named .h5ad */
    snprintf(p, sizeof p, "%s/table.h5ad", dir);
    copy_file(sx_test_shared(real[N_REAL - 1].rel), p, 'c');
    sniff_fails(p, "not an HDF5 file");
    snprintf(p, sizeof p, "%s/counts.rds", dir);
    FILE *f = fopen(p, "w");
    fputs("X\n", f);
    fclose(f);
    sniff_fails(p, "R data file");
    snprintf(p, sizeof p, "%s/notes.part", dir);
    f = fopen(p, "w");
    fputs("hello world\n", f);
    fclose(f);
    sniff_fails(p, "unrecognised format");
    snprintf(p, sizeof p, "%s/cut.part", dir);
    f = fopen(p, "wb");
    fputs("\x1f\x8b\x08", f); /* a gzip header and nothing else */
    fclose(f);
    sniff_fails(p, "cannot be decompressed");
    sx_status st = {0};
    sx_format fm;
    snprintf(p, sizeof p, "%s/absent.h5ad", dir);
    ck_assert_int_eq(sx_format_sniff(p, &fm, NULL, &st), SX_EIO);
}
END_TEST

START_TEST(extensions)
{
    int gz = -1;
    ck_assert_int_eq(sx_format_by_ext("a/b/matrix.mtx.gz", &gz), SX_FMT_MTX);
    ck_assert_int_eq(gz, 1);
    ck_assert_int_eq(sx_format_by_ext("x.H5AD", &gz), SX_FMT_H5AD);
    ck_assert_int_eq(gz, 0);
    ck_assert_int_eq(sx_format_by_ext("x.h5", NULL), SX_FMT_10X_H5);
    ck_assert_int_eq(sx_format_by_ext("x.tsv.gz", NULL), SX_FMT_TXT);
    ck_assert_int_eq(sx_format_by_ext("x.CSV", NULL), SX_FMT_CSV);
    ck_assert_int_eq(sx_format_by_ext("x.gz", NULL), SX_FMT_UNKNOWN);
    ck_assert_int_eq(sx_format_by_ext("h5ad", NULL), SX_FMT_UNKNOWN); /* no dot */
    ck_assert_int_eq(sx_format_by_ext("x.h5ad.gz", NULL), SX_FMT_UNKNOWN);
    /* what the daemon names stored uploads (server/engine.c's former table) */
    static const struct { sx_format f; const char *plain, *gz; } want[] = {
        {SX_FMT_H5AD, "h5ad", NULL}, {SX_FMT_10X_H5, "h5", NULL}, {SX_FMT_MTX, "mtx", "mtx.gz"},
        {SX_FMT_CSV, "csv", "csv.gz"}, {SX_FMT_TXT, "txt", "txt.gz"}, {SX_FMT_MTX_DIR, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *a = sx_format_ext(want[i].f, 0), *b = sx_format_ext(want[i].f, 1);
        ck_assert(want[i].plain ? a && !strcmp(a, want[i].plain) : a == NULL);
        ck_assert(want[i].gz ? b && !strcmp(b, want[i].gz) : b == NULL);
        /* every extension maps back to its format */
        if (a) {
            char name[64];
            snprintf(name, sizeof name, "f.%s", a);
            ck_assert_int_eq(sx_format_by_ext(name, NULL), want[i].f);
        }
    }
    ck_assert_ptr_null(sx_format_ext(SX_FMT_UNKNOWN, 0));
    /* names are stable (API answers, `scalex inspect`) and unique */
    for (int i = 0; sx_format_at(i); i++) {
        ck_assert_int_eq(sx_format_by_name(sx_format_at(i)->name), sx_format_at(i)->id);
        ck_assert_ptr_nonnull(sx_format_at(i)->read);
    }
    ck_assert_str_eq(sx_format_name(SX_FMT_10X_H5), "10x_h5");
    ck_assert_str_eq(sx_format_name(SX_FMT_UNKNOWN), "unknown");
}
END_TEST

START_TEST(member_roles)
{
    sx_format f;
    ck_assert_int_eq(sx_format_member_role("matrix.mtx", &f), 0);
    ck_assert_int_eq(f, SX_FMT_MTX_DIR);
    ck_assert_int_eq(sx_format_member_role("matrix.mtx.gz", NULL), 0);
    ck_assert_int_eq(sx_format_member_role("features.tsv.gz", NULL), 1);
    ck_assert_int_eq(sx_format_member_role("genes.tsv", NULL), 1);
    ck_assert_int_eq(sx_format_member_role("barcodes.tsv.gz", NULL), 2);
    ck_assert_int_eq(sx_format_member_role("barcodes.tsv.gzip", &f), -1);
    ck_assert_int_eq(f, SX_FMT_UNKNOWN);
    ck_assert_int_eq(sx_format_member_role("other.gz", NULL), -1);
    ck_assert_int_eq(sx_format_member_role("matrix.mtx.gz.gz", NULL), -1);
    ck_assert_int_eq(sx_format_max_members(), 3);
    ck_assert_int_le(sx_format_max_members(), SX_FORMAT_MAX_MEMBERS);
    char text[512];
    ck_assert_str_eq(sx_format_folders_text(text, sizeof text),
                     "a 10x matrix folder's matrix.mtx, features.tsv (or genes.tsv or peaks.bed) "
                     "and barcodes.tsv, each optionally .gz");

    /* the real folders' files form a folder; other sets do not */
    const char *v3[] = {"barcodes.tsv.gz", "features.tsv.gz", "matrix.mtx.gz"};
    const char *v2[] = {"matrix.mtx", "genes.tsv", "barcodes.tsv"};
    const char *two_features[] = {"matrix.mtx", "genes.tsv", "features.tsv"};
    const char *renamed[] = {"other.gz", "features.tsv.gz", "barcodes.tsv.gz"};
    sx_status st = {0};
    ck_assert_int_eq(sx_format_folder_match(v3, 3, &f, &st), SX_OK);
    ck_assert_int_eq(f, SX_FMT_MTX_DIR);
    ck_assert_int_eq(sx_format_folder_match(v2, 3, &f, &st), SX_OK);
    ck_assert_int_eq(sx_format_folder_match(v2, 2, &f, &st), SX_EFORMAT);
    ck_assert_int_eq(sx_format_folder_match(two_features, 3, &f, &st), SX_EFORMAT);
    ck_assert_int_eq(sx_format_folder_match(renamed, 3, &f, &st), SX_EFORMAT);
    ck_assert_int_eq(f, SX_FMT_UNKNOWN);
    ck_assert_ptr_nonnull(strstr(st.msg, "matrix.mtx, features.tsv (or genes.tsv"));
}
END_TEST

START_TEST(list_text)
{
    char buf[256];
    sx_format_list_text(buf, sizeof buf, 0);
    ck_assert_str_eq(buf, ".h5ad, 10x .h5, a 10x matrix folder, .mtx[.gz], .csv[.gz] or "
                          ".txt/.tsv[.gz]");
    int n = sx_format_list_text(buf, sizeof buf, 1);
    ck_assert_str_eq(buf, ".h5ad, 10x .h5, .mtx[.gz], .csv[.gz] or .txt/.tsv[.gz]");
    ck_assert_int_eq(n, (int)strlen(buf));
    char small[8];
    ck_assert_int_eq(sx_format_list_text(small, sizeof small, 1), n); /* snprintf's contract */
    ck_assert_str_eq(small, ".h5ad, ");
}
END_TEST

/* sx_inspect_stream takes the table's bounded-memory checker: a 10x .h5 gives sizes only */
START_TEST(inspectors_from_the_table)
{
    sx_status st = {0};
    sx_inspect *r = sx_inspect_stream(sx_test_shared(real[7].rel), NULL, NULL, &st);
    ck_assert_msg(r != NULL, "%s", st.msg);
    ck_assert_int_eq(r->format, SX_FMT_10X_H5);
    ck_assert(r->has_x && r->n_obs > 0 && r->n_vars > 0 && r->n_obs_cols == 0);
    sx_inspect_free(r);
    r = sx_inspect_path(sx_test_shared(real[7].rel), NULL, NULL, &st); /* read whole */
    ck_assert_msg(r != NULL, "%s", st.msg);
    ck_assert_int_eq(r->format, SX_FMT_10X_H5);
    sx_inspect_free(r);
    r = sx_inspect_path(sx_test_shared(real[4].rel), NULL, NULL, &st);
    ck_assert_msg(r != NULL, "%s", st.msg);
    ck_assert_int_eq(r->format, SX_FMT_H5AD);
    ck_assert(r->encoding_version[0]); /* only the h5ad inspector fills it */
    sx_inspect_free(r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("format");
    TCase *t = tcase_create("format");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, real_files_by_path);
    tcase_add_test(t, real_files_nameless);
    tcase_add_test(t, real_files_gzip_copies);
    tcase_add_test(t, txt_from_real_csv);
    tcase_add_test(t, sniff_from_bytes);
    tcase_add_test(t, refusals_name_the_file);
    tcase_add_test(t, extensions);
    tcase_add_test(t, member_roles);
    tcase_add_test(t, list_text);
    tcase_add_test(t, inspectors_from_the_table);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return sx_test_run(suite()); }
