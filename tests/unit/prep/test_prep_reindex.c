/* Reindexing onto a reference gene list, projection preprocessing, domain column rules and
 * scanpy's subsample. Truth: numpy/h5py/anndata (SX_PYTHON) computing the same on the same
 * files, and hand-checkable synthetic cases. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_h5.h"
#include "sx_io.h"
#include "sx_prep.h"
#include "sx_test.h"

#define EXPECT(cond, ...)                       \
    do {                                        \
        if (!(cond)) ck_abort_msg(__VA_ARGS__); \
    } while (0)

/* Run a python snippet (argv after -c: the shared dir) and return its stdout (owned). */
static char *py(const char *code)
{
    const char *pyb = getenv("SX_PYTHON");
    if (!pyb || !*pyb) pyb = "/usr/bin/python3";
    const char *dir = sx_test_tmpdir();
    char script[600], cmd[1400];
    snprintf(script, sizeof script, "%s/t.py", dir);
    FILE *f = fopen(script, "w");
    ck_assert_ptr_nonnull(f);
    fputs("import sys, warnings\nwarnings.filterwarnings('ignore')\nS = sys.argv[1]\n", f);
    fputs(code, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s %s %s 2>/dev/null", pyb, script, sx_test_shared(""));
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    int rc = pclose(p);
    ck_assert_msg(rc == 0, "python failed (%d) running:\n%s", rc, code);
    return buf;
}

static sx_dataset *rd(const char *rel)
{
    sx_status st = {0};
    sx_h5_quiet();
    sx_dataset *d = sx_h5ad_read(sx_test_shared(rel), NULL, NULL, &st);
    ck_assert_msg(d != NULL, "%s: %s", rel, st.msg);
    return d;
}

/* reference list = var names of a file */
static void overlap_case(const char *ref_file, const char *query_file, int expect_ok_by_python)
{
    sx_dataset *r = rd(ref_file), *q = rd(query_file);
    char code[1500];
    snprintf(code, sizeof code,
             "import h5py\n"
             "ref = [s.decode() for s in h5py.File(S + '/%s')['var/_index'][:]]\n"
             "qs = set(s.decode() for s in h5py.File(S + '/%s')['var/_index'][:])\n"
             "miss = [g for g in ref if g not in qs]\n"
             "print(len(ref) - len(miss), len(ref))\n"
             "print(' '.join(miss[:20]))\n",
             ref_file, query_file);
    char *out = py(code);
    long long want_present, want_ref;
    ck_assert_int_eq(sscanf(out, "%lld %lld", &want_present, &want_ref), 2);
    char *line2 = strchr(out, '\n') + 1;
    int64_t n_ref = r->var->n_rows;
    ck_assert_int_eq(n_ref, want_ref);
    int64_t *src = sx_mallocarray((size_t)n_ref, sizeof(int64_t));
    sx_reindex_report rep;
    sx_status st = {0};
    ck_assert_int_eq(sx_prep_match_genes(q->var, (const char *const *)r->var->index, n_ref, src,
                                         NULL, &rep, &st), SX_OK);
    ck_assert_int_eq(rep.n_present, want_present);
    ck_assert_int_eq(rep.n_missing, want_ref - want_present);
    /* the listed missing genes are python's first missing genes, in reference order */
    char *tok = strtok(line2, " \n");
    for (int64_t i = 0; i < rep.n_missing_listed; i++) {
        ck_assert_ptr_nonnull(tok);
        ck_assert_str_eq(rep.missing[i], tok);
        tok = strtok(NULL, " \n");
    }
    for (int64_t k = 0; k < n_ref; k++)
        if (src[k] >= 0) EXPECT(strcmp(q->var->index[src[k]], r->var->index[k]) == 0, "bad match");
    fprintf(stderr, "  %s onto %s: %lld of %lld present (%.1f%%)\n", query_file, ref_file,
            (long long)rep.n_present, (long long)n_ref, 100 * rep.fraction);
    /* threshold decision through sx_prep_reindex */
    int ok_expected = rep.fraction >= 0.5 && rep.n_present >= (n_ref < 250 ? n_ref : 250);
    ck_assert_int_eq(ok_expected, expect_ok_by_python);
    sx_reindex_report rep2;
    int rc = sx_prep_reindex(q, (const char *const *)r->var->index, n_ref, NULL, &rep2, &st);
    if (ok_expected) {
        ck_assert_msg(rc == SX_OK, "%s", st.msg);
        ck_assert_int_eq(q->X->n_cols, n_ref);
        for (int64_t k = 0; k < n_ref; k++) EXPECT(strcmp(q->var->index[k], r->var->index[k]) == 0, "var order");
    } else {
        ck_assert_int_eq(rc, SX_EGENES);
        /* the message names the overlap and the first missing gene */
        char num[64];
        snprintf(num, sizeof num, "only %lld of", (long long)rep.n_present);
        ck_assert_msg(strstr(st.msg, num) != NULL, "%s", st.msg);
        ck_assert_msg(rep.n_missing_listed > 0 && strstr(st.msg, rep.missing[0]) != NULL, "%s",
                      st.msg);
        fprintf(stderr, "  error as expected: %.200s...\n", st.msg);
    }
    sx_reindex_report_free(&rep);
    sx_reindex_report_free(&rep2);
    sx_free(src);
    free(out);
    sx_dataset_free(r);
    sx_dataset_free(q);
}

START_TEST(test_overlap_cellbench)
{
    /* celseq2 (28204 genes) as reference, dropseq as query */
    char *out = py("import h5py\n"
                   "r=[s.decode() for s in h5py.File(S+'/data/cellbench_3cl_celseq2_dropseq/celseq2.h5ad')['var/_index'][:]]\n"
                   "q=set(s.decode() for s in h5py.File(S+'/data/cellbench_3cl_celseq2_dropseq/dropseq.h5ad')['var/_index'][:])\n"
                   "p=sum(g in q for g in r); print(int(p >= 0.5*len(r) and p >= min(250, len(r))))\n");
    int ok = atoi(out);
    free(out);
    overlap_case("data/cellbench_3cl_celseq2_dropseq/celseq2.h5ad",
                 "data/cellbench_3cl_celseq2_dropseq/dropseq.h5ad", ok);
}
END_TEST

START_TEST(test_overlap_pancreas)
{
    overlap_case("data/pancreas_baron_human_mouse_cider/reference_human.h5ad",
                 "data/pancreas_baron_human_mouse_cider/query_mouse.h5ad", 1);
}
END_TEST

START_TEST(test_overlap_too_few)
{
    /* xin (980 genes) as reference, wang (219 genes) as query: at most 22 % present */
    overlap_case("data/pancreas_xin_wang_scclassify/xin.h5ad",
                 "data/pancreas_xin_wang_scclassify/wang.h5ad", 0);
}
END_TEST

/* Projection preprocessing of dropseq onto the cellbench HVG genes, against numpy doing what
 * SCALEX v1.0.0 does (scanpy float32 normalize, log1p, lil float64 reindex, MaxAbs). */
START_TEST(test_apply_reference)
{
    sx_status st = {0};
    sx_h5_quiet();
    hid_t f = sx_h5_open_ro(sx_test_shared("golden/prep/cellbench_3cl/scaled_hvg_subset.h5"), &st);
    ck_assert(f >= 0);
    char **ref = NULL;
    int64_t n_ref = 0;
    ck_assert_int_eq(sx_h5_read_strings(f, "var_names", &ref, &n_ref, &st), SX_OK);
    H5Fclose(f);
    /* drop every 7th reference gene into a fake name so some columns are missing */
    for (int64_t k = 0; k < n_ref; k += 7) {
        char *s = sx_malloc(32);
        snprintf(s, 32, "NOT_A_GENE_%lld", (long long)k);
        sx_free(ref[k]);
        ref[k] = s;
    }
    const char *dir = sx_test_tmpdir();
    char refpath[600];
    snprintf(refpath, sizeof refpath, "%s/ref.txt", dir);
    FILE *rf = fopen(refpath, "w");
    for (int64_t k = 0; k < n_ref; k++) fprintf(rf, "%s\n", ref[k]);
    fclose(rf);
    sx_dataset *q = rd("data/cellbench_3cl_celseq2_dropseq/dropseq.h5ad");
    sx_prep_opts o;
    sx_prep_opts_init(&o);
    sx_prep_result res;
    sx_reindex_report rep;
    int rc = sx_prep_apply_reference(q, (const char *const *)ref, n_ref, &o, NULL, &res, &rep,
                                     NULL, &st);
    ck_assert_msg(rc == SX_OK, "%s", st.msg);
    ck_assert_int_eq(q->X->n_cols, n_ref);
    ck_assert_ptr_nonnull(q->raw_X);
    char code[3000];
    snprintf(code, sizeof code,
             "import h5py, numpy as np, scipy.sparse as sp, anndata as ad\n"
             "a = ad.read_h5ad(S + '/data/cellbench_3cl_celseq2_dropseq/dropseq.h5ad')\n"
             "a = a[:, [g for g in a.var_names if not str(g).startswith(('ERCC','MT-','mt-'))]]\n"
             "X = sp.csr_matrix(a.X).astype(np.float32)\n"
             "keep = np.ravel((X > 0).sum(1)) >= 600\n"
             "X = X[keep]; names = list(a.obs_names[keep])\n"
             "c = np.ravel(X.sum(1)); c += c == 0; c = c / 10000\n"
             "X.data *= np.repeat(1 / c, np.diff(X.indptr)); X.data = np.log1p(X.data)\n"
             "ref = [l.strip() for l in open('%s')]\n"
             "pos = {g: i for i, g in enumerate(a.var_names)}\n"
             "idx = [i for i, g in enumerate(ref) if g in pos]\n"
             "new = sp.lil_matrix((X.shape[0], len(ref)))\n"
             "new[:, idx] = X[:, [pos[ref[i]] for i in idx]]\n"
             "Y = new.tocsr(); m = np.ravel(abs(Y).max(0).toarray()); m[m == 0] = 1\n"
             "Y = sp.csr_matrix(Y.multiply(1 / m)).astype(np.float32); Y.sort_indices()\n"
             "print(Y.shape[0], len(idx), X.shape[1], Y.nnz)\n"
             "np.asarray(Y.indptr, np.int64).tofile('%s/ip.bin')\n"
             "np.asarray(Y.indices, np.int32).tofile('%s/ix.bin')\n"
             "np.asarray(Y.data, np.float32).tofile('%s/d.bin')\n",
             refpath, dir, dir, dir);
    char *out = py(code);
    long long nrow, npres, nraw, nnz;
    ck_assert_int_eq(sscanf(out, "%lld %lld %lld %lld", &nrow, &npres, &nraw, &nnz), 4);
    ck_assert_int_eq(q->X->n_rows, nrow);
    ck_assert_int_eq(rep.n_present, npres);
    ck_assert_int_eq(q->raw_X->n_cols, nraw);
    ck_assert_int_eq(sx_csr_nnz(q->X), nnz);
    char p[700];
    snprintf(p, sizeof p, "%s/ip.bin", dir);
    FILE *fi = fopen(p, "rb");
    int64_t *ip = sx_mallocarray((size_t)nrow + 1, sizeof(int64_t));
    ck_assert_int_eq(fread(ip, sizeof(int64_t), (size_t)nrow + 1, fi), nrow + 1);
    fclose(fi);
    snprintf(p, sizeof p, "%s/ix.bin", dir);
    fi = fopen(p, "rb");
    int32_t *ix = sx_mallocarray((size_t)nnz, sizeof(int32_t));
    ck_assert_int_eq(fread(ix, sizeof(int32_t), (size_t)nnz, fi), nnz);
    fclose(fi);
    snprintf(p, sizeof p, "%s/d.bin", dir);
    fi = fopen(p, "rb");
    float *dv = sx_mallocarray((size_t)nnz, sizeof(float));
    ck_assert_int_eq(fread(dv, sizeof(float), (size_t)nnz, fi), nnz);
    fclose(fi);
    double worst = 0;
    for (int64_t i = 0; i <= nrow; i++) EXPECT(ip[i] == q->X->indptr[i], "indptr %lld", (long long)i);
    for (int64_t k = 0; k < nnz; k++) {
        EXPECT(ix[k] == q->X->indices[k], "indices %lld", (long long)k);
        double d = fabs((double)dv[k] - q->X->data[k]);
        if (d > worst) worst = d;
    }
    ck_assert_msg(worst <= 1e-5, "projection X max abs diff %.3g", worst);
    fprintf(stderr, "  projection dropseq -> %lld reference genes (%lld present): %lld cells, max "
            "abs diff vs numpy %.3g\n", (long long)n_ref, npres, nrow, worst);
    sx_free(ip);
    sx_free(ix);
    sx_free(dv);
    free(out);
    sx_reindex_report_free(&rep);
    sx_prep_result_free(&res);
    sx_dataset_free(q);
    sx_h5_free_strings(ref, n_ref);
}
END_TEST

START_TEST(test_ensembl_ids)
{
    const char *names[4] = {"TP53", "GAPDH", "ACTB", "CD3E"};
    const char *ids[4] = {"ENSG00000141510.16", "ENSG00000111640.15", "ENSG00000075624", "ENSG00000198851.9"};
    sx_status st = {0};
    sx_frame *var = sx_frame_new(4, names, &st);
    ck_assert_int_eq(sx_frame_add_strings(var, "gene_ids", ids, &st), SX_OK);
    const char *ref[5] = {"ACTB", "ENSG00000141510", "ENSG00000198851.3", "MISSING1", "ENSG00000111640.15"};
    int64_t src[5];
    sx_reindex_opts o;
    sx_reindex_opts_init(&o);
    sx_reindex_report rep;
    ck_assert_int_eq(sx_prep_match_genes(var, ref, 5, src, &o, &rep, &st), SX_OK);
    ck_assert_int_eq(src[0], 2);
    ck_assert_int_eq(src[1], 0);
    ck_assert_int_eq(src[2], 3);
    ck_assert_int_eq(src[3], -1);
    ck_assert_int_eq(src[4], 1);
    ck_assert_int_eq(rep.n_by_id, 3);
    ck_assert_int_eq(rep.n_present, 4);
    ck_assert_str_eq(rep.missing[0], "MISSING1");
    sx_reindex_report_free(&rep);
    sx_frame_free(var);
}
END_TEST

START_TEST(test_subsample_numpy)
{
    char *out = py("import numpy as np\n"
                   "for n, k, s in ((1000, 100, 0), (70000, 50, 124), (5, 5, 3)):\n"
                   "    np.random.seed(s); print(' '.join(map(str, np.random.choice(n, k, replace=False))))\n");
    struct { int64_t n, k; uint32_t s; } cases[3] = {{1000, 100, 0}, {70000, 50, 124}, {5, 5, 3}};
    char *line = out;
    for (int c = 0; c < 3; c++) {
        int64_t *idx = sx_mallocarray((size_t)cases[c].n, sizeof(int64_t));
        sx_status st = {0};
        ck_assert_int_eq(sx_prep_subsample_indices(cases[c].n, cases[c].s, idx, &st), SX_OK);
        char *end = strchr(line, '\n');
        *end = 0;
        char *tok = strtok(line, " ");
        for (int64_t i = 0; i < cases[c].k; i++) {
            ck_assert_ptr_nonnull(tok);
            ck_assert_int_eq(idx[i], atoll(tok));
            tok = strtok(NULL, " ");
        }
        line = end + 1;
        sx_free(idx);
    }
    free(out);
}
END_TEST

static sx_frame *obs5(void)
{
    sx_status st = {0};
    sx_frame *f = sx_frame_new(5, NULL, &st);
    ck_assert_ptr_nonnull(f);
    return f;
}

START_TEST(test_domains)
{
    sx_status st = {0};
    int32_t *codes;
    char **names;
    int32_t n;
    /* strings: categories sorted */
    sx_frame *f = obs5();
    const char *s[5] = {"b", "a", "c", "a", "b"};
    sx_frame_add_strings(f, "tech", s, &st);
    ck_assert_int_eq(sx_prep_domains(f, "tech", &codes, &names, &n, &st), SX_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(names[0], "a");
    ck_assert_str_eq(names[2], "c");
    ck_assert_int_eq(codes[0], 1);
    ck_assert_int_eq(codes[2], 2);
    ck_assert_int_eq(sx_frame_col(f, "batch")->kind, SX_COL_CATEGORICAL);
    for (int i = 0; i < n; i++) sx_free(names[i]);
    sx_free(names);
    sx_free(codes);
    /* ints: numeric order (10 after 9), names as str() */
    int64_t iv[5] = {10, 9, 10, 2, 9};
    sx_frame_add_int(f, "donor", iv, &st);
    ck_assert_int_eq(sx_prep_domains(f, "donor", &codes, &names, &n, &st), SX_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(names[0], "2");
    ck_assert_str_eq(names[1], "9");
    ck_assert_str_eq(names[2], "10");
    ck_assert_int_eq(codes[0], 2);
    for (int i = 0; i < n; i++) sx_free(names[i]);
    sx_free(names);
    sx_free(codes);
    /* comma: joined labels, sorted */
    ck_assert_int_eq(sx_prep_domains(f, "tech,donor", &codes, &names, &n, &st), SX_OK);
    ck_assert_int_eq(n, 5); /* b_10 a_9 c_10 a_2 b_9 -> sorted as strings */
    ck_assert_str_eq(names[2], "b_10");
    ck_assert_str_eq(names[0], "a_2");
    for (int i = 0; i < n; i++) sx_free(names[i]);
    sx_free(names);
    sx_free(codes);
    /* categorical: category order kept */
    const char *cats[3] = {"z", "y", "x"};
    int32_t cc[5] = {2, 0, 1, 0, 2};
    sx_frame_add_categorical(f, "lab", cc, cats, 3, 0, &st);
    ck_assert_int_eq(sx_prep_domains(f, "lab", &codes, &names, &n, &st), SX_OK);
    ck_assert_str_eq(names[0], "z");
    ck_assert_int_eq(codes[0], 2);
    for (int i = 0; i < n; i++) sx_free(names[i]);
    sx_free(names);
    sx_free(codes);
    /* unknown column: error naming the columns */
    ck_assert_int_eq(sx_prep_domains(f, "nope", &codes, &names, &n, &st), SX_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(st.msg, "tech"));
    sx_frame_free(f);
    /* no batch column: one domain "batch" */
    f = obs5();
    ck_assert_int_eq(sx_prep_domains(f, NULL, &codes, &names, &n, &st), SX_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(names[0], "batch");
    sx_free(names[0]);
    sx_free(names);
    sx_free(codes);
    /* float column: numeric order, Python str */
    double fv[5] = {1.5, 1.0, 1e-5, 1.0, 1.5};
    sx_frame_add_float(f, "x", fv, &st);
    ck_assert_int_eq(sx_prep_domains(f, "x", &codes, &names, &n, &st), SX_OK);
    ck_assert_str_eq(names[0], "1e-05");
    ck_assert_str_eq(names[1], "1.0");
    ck_assert_str_eq(names[2], "1.5");
    for (int i = 0; i < n; i++) sx_free(names[i]);
    sx_free(names);
    sx_free(codes);
    sx_frame_free(f);
}
END_TEST

/* min_features too high for the data: a clear error, not a crash (ALGORITHM.md §13.7) */
START_TEST(test_no_cells_error)
{
    sx_dataset *d = rd("data/pbmc_3tech_symphony/pbmc_3tech.h5ad");
    sx_prep_opts o;
    sx_prep_opts_init(&o); /* min_features 600: pbmc has at most ~430 genes per cell */
    sx_prep_result res;
    sx_status st = {0};
    ck_assert_int_eq(sx_prep_run(d, &o, &res, NULL, &st), SX_EDATA);
    ck_assert_ptr_nonnull(strstr(st.msg, "min_features"));
    sx_prep_result_free(&res);
    sx_dataset_free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("prep_reindex");
    TCase *tc = tcase_create("reindex");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_overlap_cellbench);
    tcase_add_test(tc, test_overlap_pancreas);
    tcase_add_test(tc, test_overlap_too_few);
    tcase_add_test(tc, test_apply_reference);
    tcase_add_test(tc, test_ensembl_ids);
    tcase_add_test(tc, test_subsample_numpy);
    tcase_add_test(tc, test_domains);
    tcase_add_test(tc, test_no_cells_error);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
