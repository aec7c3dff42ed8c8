/* Gene matching by named rules (sx_genematch.h). Truth: anndata's make_index_unique run by
 * SX_PYTHON on the same names, and small hand-checkable cases for every rule, the
 * ambiguity listing and the gene table's text format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sx_alloc.h"
#include "sx_genematch.h"
#include "sx_io.h"
#include "sx_test.h"

static sx_frame *frame(const char *const *names, int64_t n)
{
    sx_status st = {0};
    sx_frame *f = sx_frame_new(n, names, &st);
    ck_assert_msg(f != NULL, "%s", st.msg);
    return f;
}

static void match(const sx_frame *var, const char *const *ref, int64_t n_ref,
                  const sx_gene_table *t, int64_t *src, sx_genematch_report *rep)
{
    sx_status st = {0};
    ck_assert_msg(sx_genematch_run(var, ref, n_ref, t, src, rep, &st) == SX_OK, "%s", st.msg);
}

/* duplicated names become name-1, name-2 exactly as anndata's make_index_unique makes them */
START_TEST(test_make_unique_anndata)
{
    const char *names[] = {"A", "A", "A-1", "B", "A", "b", "B", "A-2"};
    int n = 8;
    char cmd[1024];
    const char *pyb = getenv("SX_PYTHON");
    snprintf(cmd, sizeof cmd, "%s -c \"import pandas as pd, anndata.utils as u, warnings; "
             "warnings.filterwarnings('ignore'); "
             "print(' '.join(u.make_index_unique(pd.Index(%s))))\" 2>/dev/null",
             pyb && *pyb ? pyb : "/usr/bin/python3",
             "['A', 'A', 'A-1', 'B', 'A', 'b', 'B', 'A-2']");
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char line[512] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, p));
    ck_assert_int_eq(pclose(p), 0);
    char *ref[8], *save = NULL;
    int k = 0;
    for (char *tok = strtok_r(line, " \n", &save); tok && k < 8; tok = strtok_r(NULL, " \n", &save))
        ref[k++] = tok;
    ck_assert_int_eq(k, n);
    /* as var names, and as values of a symbol column under opaque var names */
    const char *ids[] = {"g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7"};
    sx_frame *v1 = frame(names, n), *v2 = frame(ids, n);
    sx_status st = {0};
    ck_assert_int_eq(sx_frame_add_strings(v2, "gene_symbols", names, &st), SX_OK);
    sx_frame *vars[2] = {v1, v2};
    const char *rule[2] = {"var_names", "gene_symbols"};
    for (int c = 0; c < 2; c++) {
        int64_t src[8];
        sx_genematch_report rep;
        match(vars[c], (const char *const *)ref, n, NULL, src, &rep);
        for (int i = 0; i < n; i++) ck_assert_msg(src[i] == i, "%s: %s -> %lld", rule[c], ref[i],
                                                   (long long)src[i]);
        ck_assert_int_eq(sx_genematch_rule_count(&rep, rule[c]), n);
        ck_assert_int_eq(rep.n_ambiguous, 0);
        sx_genematch_report_free(&rep);
    }
    sx_frame_free(v1);
    sx_frame_free(v2);
}
END_TEST

/* identifier columns found by content: constant and numeric columns ignored; the
 * reference's kind first; Ensembl versions ignored on both sides */
START_TEST(test_columns_by_content)
{
    const char *ens[] = {"ENSG00000000003.14", "ENSG00000000005", "ENSG00000000419.12",
                         "ENSG00000000457.13"};
    const char *sym[] = {"TSPAN6", "TNMD", "DPM1", "SCYL3"};
    const char *ft[] = {"Gene Expression", "Gene Expression", "Gene Expression", "Gene Expression"};
    const char *num[] = {"1", "2", "3", "4"};
    sx_status st = {0};
    sx_frame *v = frame(ens, 4);
    ck_assert_int_eq(sx_frame_add_strings(v, "feature_types", ft, &st), SX_OK);
    ck_assert_int_eq(sx_frame_add_strings(v, "n_cells", num, &st), SX_OK);
    ck_assert_int_eq(sx_frame_add_strings(v, "feature_name", sym, &st), SX_OK);
    const char *ref[] = {"DPM1", "ENSG00000000003.15", "TNMD", "ENSG00000000005.6", "NOPE", "2"};
    int64_t src[6];
    sx_genematch_report rep;
    match(v, ref, 6, NULL, src, &rep);
    ck_assert_int_eq(src[0], 2);
    ck_assert_int_eq(src[1], 0); /* version differs: the stem matches */
    ck_assert_int_eq(src[2], -1); /* TNMD's row went to ENSG00000000005.6 by name first */
    ck_assert_int_eq(src[3], 1);
    ck_assert_int_eq(src[4], -1);
    ck_assert_int_eq(src[5], -1); /* a numeric column is no identifier */
    ck_assert_int_eq(rep.n_matched, 3);
    ck_assert_int_eq(sx_genematch_rule_count(&rep, "var_names"), 2);
    ck_assert_int_eq(sx_genematch_rule_count(&rep, "feature_name"), 1);
    for (int i = 0; i < rep.n_rules; i++) {
        ck_assert_str_ne(rep.rule[i], "feature_types");
        ck_assert_str_ne(rep.rule[i], "n_cells");
    }
    ck_assert(sx_genematch_is_ensembl("ENSMUSG00000000001"));
    ck_assert(sx_genematch_is_ensembl("ENSG00000141510.16"));
    ck_assert(!sx_genematch_is_ensembl("ENSG1"));
    ck_assert(!sx_genematch_is_ensembl("ENSG00000141510."));
    ck_assert(!sx_genematch_is_ensembl("ENSEMBL"));
    sx_genematch_report_free(&rep);
    sx_frame_free(v);
}
END_TEST

/* case-insensitive matching for cross-species symbols; two candidates either way are
 * listed and left unmatched; an exact name wins before case is ignored */
START_TEST(test_case_and_ambiguity)
{
    const char *q[] = {"gcg", "Gcg", "Ins2", "actb", "Sst", "SST"};
    const char *ref[] = {"GCG", "INS2", "Actb", "ACTB", "SST"};
    sx_frame *v = frame(q, 6);
    int64_t src[5];
    sx_genematch_report rep;
    match(v, ref, 5, NULL, src, &rep);
    ck_assert_int_eq(src[0], -1);
    ck_assert_int_eq(src[1], 2);
    ck_assert_int_eq(src[2], -1);
    ck_assert_int_eq(src[3], -1);
    ck_assert_int_eq(src[4], 5);
    ck_assert_int_eq(sx_genematch_rule_count(&rep, "var_names"), 1);
    ck_assert_int_eq(sx_genematch_rule_count(&rep, "case_insensitive"), 1);
    ck_assert_int_eq(rep.n_ambiguous, 2);
    ck_assert_int_eq(rep.n_listed, 2);
    ck_assert_str_eq(rep.ambiguous[0], "GCG: query gcg, Gcg (case_insensitive)");
    ck_assert_str_eq(rep.ambiguous[1], "ACTB: reference Actb, ACTB (case_insensitive)");
    sx_genematch_report_free(&rep);
    sx_frame_free(v);
}
END_TEST

START_TEST(test_gene_table)
{
    const char *text = "# orthologs\nquery\treference\r\nq1\tGCG\nq2\tINS1\nq2\tINS2\n"
                       "q3\tSST\nq4\tSST\nq5,PPY\nq9\tACTB\textra\n\nq6\tNOTINREF\n";
    sx_status st = {0};
    sx_gene_table *t = sx_gene_table_parse(text, strlen(text), "genes.tsv", &st);
    ck_assert_msg(t != NULL, "%s", st.msg);
    ck_assert_int_eq(sx_gene_table_size(t), 9);
    const char *q[] = {"q1", "q2", "q3", "q4", "q5", "ACTB", "q9"};
    const char *ref[] = {"GCG", "INS1", "INS2", "SST", "PPY", "ACTB"};
    sx_frame *v = frame(q, 7);
    int64_t src[6];
    sx_genematch_report rep;
    match(v, ref, 6, t, src, &rep);
    ck_assert_int_eq(src[0], 0);
    ck_assert_int_eq(src[1], -1);
    ck_assert_int_eq(src[2], -1);
    ck_assert_int_eq(src[3], -1);
    ck_assert_int_eq(src[4], 4);
    ck_assert_int_eq(src[5], 6); /* the table comes first: q9, not the query's own ACTB */
    ck_assert_str_eq(rep.rule[0], "gene_table");
    ck_assert_int_eq(rep.rule_n[0], 3);
    ck_assert_int_eq(rep.n_ambiguous, 2);
    ck_assert_str_eq(rep.ambiguous[0], "SST: query q3, q4 (gene_table)");
    ck_assert_str_eq(rep.ambiguous[1], "q2: reference INS1, INS2 (gene_table)");
    sx_genematch_report_free(&rep);
    sx_frame_free(v);
    sx_gene_table_free(t);
    /* one field: the line is named, never a path */
    t = sx_gene_table_parse("a\tb\nlonely\n", 11, "genes.tsv", &st);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(st.code, SX_EFORMAT);
    ck_assert_ptr_nonnull(strstr(st.msg, "genes.tsv, line 2"));
}
END_TEST

/* --gene_table FILE first, else genes.tsv in the reference folder, else none */
START_TEST(test_gene_table_find)
{
    char dir[600], p[700], h5[700];
    snprintf(dir, sizeof dir, "%s/ref", sx_test_tmpdir());
    mkdir(dir, 0700);
    snprintf(h5, sizeof h5, "%s/reference.h5", dir);
    sx_status st = {0};
    sx_gene_table *t = NULL;
    ck_assert_int_eq(sx_gene_table_find(NULL, dir, &t, &st), SX_OK);
    ck_assert_ptr_null(t);
    snprintf(p, sizeof p, "%s/genes.tsv", dir);
    FILE *f = fopen(p, "w");
    fputs("a\tA\nb\tB\n", f);
    fclose(f);
    ck_assert_int_eq(sx_gene_table_find(NULL, dir, &t, &st), SX_OK);
    ck_assert_int_eq(sx_gene_table_size(t), 2);
    sx_gene_table_free(t);
    ck_assert_int_eq(sx_gene_table_find(NULL, h5, &t, &st), SX_OK); /* a file in the folder */
    ck_assert_int_eq(sx_gene_table_size(t), 2);
    sx_gene_table_free(t);
    snprintf(p, sizeof p, "%s/absent.tsv", dir);
    ck_assert_int_eq(sx_gene_table_find(p, dir, &t, &st), SX_ENOTFOUND);
    ck_assert_ptr_null(strstr(st.msg, sx_test_tmpdir()));
}
END_TEST

/* real 10x files (mtx folder and .h5): var names are symbols, the Ensembl ids sit in the
 * gene_ids column the readers keep; a reference named by those ids (half of them with a
 * version) matches every gene through that column. Truth: python reading features.tsv.gz. */
START_TEST(test_tenx_gene_ids)
{
    const char *pyb = getenv("SX_PYTHON");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s -c \"import gzip,sys; print(' '.join(l.split(b'\\\\t')[0]"
             ".decode() for l in gzip.open(sys.argv[1]) if l.strip()))\" %s",
             pyb && *pyb ? pyb : "/usr/bin/python3",
             sx_test_shared("data/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix/"
                            "features.tsv.gz"));
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 1 << 16;
    char *buf = sx_calloc(cap, 1);
    size_t n = fread(buf, 1, cap - 1, p);
    ck_assert_int_eq(pclose(p), 0);
    buf[n] = 0;
    char *ref[1024], *save = NULL;
    int64_t nr = 0;
    for (char *t = strtok_r(buf, " \n", &save); t && nr < 1024; t = strtok_r(NULL, " \n", &save)) {
        size_t len = strlen(t) + 4;
        ref[nr] = sx_mallocarray(len, 1);
        snprintf(ref[nr], len, nr % 2 ? "%s.7" : "%s", t);
        nr++;
    }
    ck_assert_int_gt(nr, 100);
    const char *files[] = {"data/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix",
                           "data/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix.h5"};
    for (int f = 0; f < 2; f++) {
        sx_status st = {0};
        sx_dataset *d = sx_io_read(sx_test_shared(files[f]), NULL, NULL, &st);
        ck_assert_msg(d != NULL, "%s", st.msg);
        ck_assert_int_eq(d->var->n_rows, nr);
        int64_t *src = sx_mallocarray((size_t)nr, sizeof *src);
        sx_genematch_report rep;
        match(d->var, (const char *const *)ref, nr, NULL, src, &rep);
        for (int64_t k = 0; k < nr; k++) ck_assert_int_eq(src[k], k);
        ck_assert_int_eq(sx_genematch_rule_count(&rep, "gene_ids"), nr);
        sx_genematch_report_free(&rep);
        sx_free(src);
        sx_dataset_free(d);
    }
    for (int64_t k = 0; k < nr; k++) sx_free(ref[k]);
    sx_free(buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("genematch");
    TCase *tc = tcase_create("genematch");
    tcase_add_test(tc, test_make_unique_anndata);
    tcase_add_test(tc, test_columns_by_content);
    tcase_add_test(tc, test_case_and_ambiguity);
    tcase_add_test(tc, test_gene_table);
    tcase_add_test(tc, test_gene_table_find);
    tcase_add_test(tc, test_tenx_gene_ids);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
