/* sx_io_concat: AnnData.concatenate semantics (ALGORITHM.md 1.3) on hand-made datasets whose
 * expected result is written out below, and on the two CellBench tables against the
 * combined h5ad that anndata built from the same tables. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io_truth.h"
#include "sx_io.h"

/* A dataset from a dense cells x genes table. */
static sx_dataset *make(int n_obs, int n_vars, const char *const *obs, const char *const *var,
                        const float *dense)
{
    sx_status st = {0};
    sx_dataset *d = sx_dataset_new(0, 0, &st);
    ck_assert_ptr_nonnull(d);
    sx_frame_free(d->obs);
    sx_frame_free(d->var);
    d->obs = sx_frame_new(n_obs, obs, &st);
    d->var = sx_frame_new(n_vars, var, &st);
    d->X = sx_csr_from_dense(dense, n_obs, n_vars, &st);
    ck_assert_ptr_nonnull(d->X);
    d->x_was_int = 1;
    return d;
}

static void check_dense(const sx_dataset *d, const float *want)
{
    int64_t n = d->X->n_rows * d->X->n_cols;
    float got[256];
    ck_assert_int_le(n, 256);
    sx_csr_densify_rows(d->X, 0, d->X->n_rows, got);
    for (int64_t k = 0; k < n; k++)
        ck_assert_msg(got[k] == want[k], "value %lld: %g, expected %g", (long long)k, got[k],
                      want[k]);
    ck_assert_int_eq(sx_csr_validate(d->X, 1, "X", NULL), SX_OK);
}

static void check_names(char **got, const char *const *want, int n)
{
    for (int i = 0; i < n; i++) ck_assert_str_eq(got[i], want[i]);
}

/* Three small inputs:
 *   A: cells a1 a2, genes G C A C (the second C becomes C-1)
 *   B: cell  b1,    genes A G X
 *   C: cell  c1,    genes G A Z C */
static void three(sx_dataset **p)
{
    const char *oa[] = {"a1", "a2"}, *va[] = {"G", "C", "A", "C"};
    const float xa[] = {1, 2, 3, 4, 5, 6, 7, 8};
    const char *ob[] = {"b1"}, *vb[] = {"A", "G", "X"};
    const float xb[] = {10, 20, 30};
    const char *oc[] = {"c1"}, *vc[] = {"G", "A", "Z", "C"};
    const float xc[] = {100, 200, 300, 400};
    p[0] = make(2, 4, oa, va, xa);
    p[1] = make(1, 3, ob, vb, xb);
    p[2] = make(1, 4, oc, vc, xc);
    sx_status st = {0};
    /* obs: n_genes int in A and B only; kind string in A only; lab categorical everywhere
     * with different categories; flag bool in A and C only; an old batch column in B */
    const int64_t ng_a[] = {4, 3}, ng_b[] = {3};
    ck_assert_int_eq(sx_frame_add_int(p[0]->obs, "n_genes", ng_a, &st), SX_OK);
    ck_assert_int_eq(sx_frame_add_int(p[1]->obs, "n_genes", ng_b, &st), SX_OK);
    const char *kind[] = {"x", "y"};
    ck_assert_int_eq(sx_frame_add_strings(p[0]->obs, "kind", kind, &st), SX_OK);
    const char *la[] = {"T", "B"}, *lb[] = {"NK"}, *lc[] = {"T"};
    ck_assert_int_eq(sx_frame_add_categorical_from_strings(p[0]->obs, "lab", la, 1, &st), SX_OK);
    ck_assert_int_eq(sx_frame_add_categorical_from_strings(p[1]->obs, "lab", lb, 1, &st), SX_OK);
    ck_assert_int_eq(sx_frame_add_categorical_from_strings(p[2]->obs, "lab", lc, 1, &st), SX_OK);
    const uint8_t fa[] = {1, 0}, fc[] = {1};
    ck_assert_int_eq(sx_frame_add_bool(p[0]->obs, "flag", fa, &st), SX_OK);
    ck_assert_int_eq(sx_frame_add_bool(p[2]->obs, "flag", fc, &st), SX_OK);
    const char *old[] = {"old"};
    ck_assert_int_eq(sx_frame_add_strings(p[1]->obs, "batch", old, &st), SX_OK);
    /* var: "src" equal for shared genes everywhere; "id" differs (per input) */
    const char *sa[] = {"s", "s", "s", "s"}, *sb[] = {"s", "s", "s"}, *sc[] = {"s", "s", "s", "s"};
    ck_assert_int_eq(sx_frame_add_strings(p[0]->var, "src", sa, &st), SX_OK);
    ck_assert_int_eq(sx_frame_add_strings(p[1]->var, "src", sb, &st), SX_OK);
    ck_assert_int_eq(sx_frame_add_strings(p[2]->var, "src", sc, &st), SX_OK);
    const char *ia[] = {"a", "b", "c", "d"}, *ib[] = {"c", "a", "x"}, *ic[] = {"A", "c", "z", "b"};
    ck_assert_int_eq(sx_frame_add_strings(p[0]->var, "id", ia, &st), SX_OK);
    ck_assert_int_eq(sx_frame_add_strings(p[1]->var, "id", ib, &st), SX_OK);
    ck_assert_int_eq(sx_frame_add_strings(p[2]->var, "id", ic, &st), SX_OK);
    /* obsm: "emb" (2 columns) in all, "only_a" in A */
    const double ea[] = {1, 2, 3, 4}, eb[] = {5, 6}, ec[] = {7, 8};
    ck_assert_int_eq(sx_dataset_set_obsm(p[0], "emb", ea, 2, 2, 0, &st), SX_OK);
    ck_assert_int_eq(sx_dataset_set_obsm(p[1], "emb", eb, 1, 2, 0, &st), SX_OK);
    ck_assert_int_eq(sx_dataset_set_obsm(p[2], "emb", ec, 1, 2, 0, &st), SX_OK);
    ck_assert_int_eq(sx_dataset_set_obsm(p[0], "only_a", ea, 2, 2, 0, &st), SX_OK);
}

START_TEST(inner_join)
{
    sx_dataset *p[3];
    three(p);
    sx_status st = {0};
    sx_dataset *d = sx_io_concat(p, 3, NULL, &st);
    ck_assert_msg(d, "%s", st.msg);
    /* genes: pairwise intersection in A's order: G, A (C and C-1 are not in B) */
    ck_assert_int_eq(sx_dataset_n_vars(d), 2);
    const char *genes[] = {"G", "A"};
    check_names(d->var->index, genes, 2);
    const char *cells[] = {"a1", "a2", "b1", "c1"};
    check_names(d->obs->index, cells, 4);
    const float want[] = {1, 3, 5, 7, 20, 10, 100, 200};
    check_dense(d, want);
    /* batch: categorical "0","1","2" in input order, codes by input, last column; the
     * input's own batch column is replaced */
    const sx_column *b = sx_frame_col(d->obs, "batch");
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(b->kind, SX_COL_CATEGORICAL);
    ck_assert_int_eq(b->n_categories, 3);
    ck_assert_str_eq(b->categories[0], "0");
    ck_assert_str_eq(b->categories[2], "2");
    const int32_t codes[] = {0, 0, 1, 2};
    ck_assert_mem_eq(b->codes, codes, sizeof codes);
    ck_assert_str_eq(d->obs->cols[d->obs->n_cols - 1].name, "batch");
    /* n_genes: int missing in C -> float with NaN */
    const sx_column *ng = sx_frame_col(d->obs, "n_genes");
    ck_assert_int_eq(ng->kind, SX_COL_FLOAT);
    ck_assert(ng->f64[0] == 4 && ng->f64[1] == 3 && ng->f64[2] == 3 && isnan(ng->f64[3]));
    /* kind: string, missing = NULL */
    const sx_column *k = sx_frame_col(d->obs, "kind");
    ck_assert_int_eq(k->kind, SX_COL_STRING);
    ck_assert_str_eq(k->str[1], "y");
    ck_assert_ptr_null(k->str[2]);
    /* lab: categories differ -> sorted union B, NK, T */
    const sx_column *l = sx_frame_col(d->obs, "lab");
    ck_assert_int_eq(l->kind, SX_COL_CATEGORICAL);
    ck_assert_int_eq(l->n_categories, 3);
    ck_assert_str_eq(l->categories[0], "B");
    ck_assert_str_eq(l->categories[1], "NK");
    ck_assert_str_eq(l->categories[2], "T");
    const int32_t lc[] = {2, 0, 1, 2};
    ck_assert_mem_eq(l->codes, lc, sizeof lc);
    /* flag: bool missing in B -> text with a missing value */
    const sx_column *f = sx_frame_col(d->obs, "flag");
    ck_assert_int_eq(f->kind, SX_COL_STRING);
    ck_assert_str_eq(f->str[0], "True");
    ck_assert_str_eq(f->str[1], "False");
    ck_assert_ptr_null(f->str[2]);
    /* var: src shared; id per input, suffixed with the label */
    ck_assert_ptr_nonnull(sx_frame_col(d->var, "src"));
    ck_assert_ptr_null(sx_frame_col(d->var, "id"));
    const sx_column *i0 = sx_frame_col(d->var, "id-0"), *i1 = sx_frame_col(d->var, "id-1"),
                    *i2 = sx_frame_col(d->var, "id-2");
    ck_assert(i0 && i1 && i2);
    ck_assert_str_eq(i0->str[0], "a"); /* G in A */
    ck_assert_str_eq(i1->str[1], "c"); /* A in B */
    ck_assert_str_eq(i2->str[0], "A"); /* G in C: differs from A's "a" */
    ck_assert_str_eq(d->var->cols[0].name, "src");
    ck_assert_str_eq(d->var->cols[1].name, "id-0");
    /* obsm: emb stacked, only_a dropped */
    const sx_dense *e = sx_dataset_obsm(d, "emb");
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->n_rows, 4);
    ck_assert(e->v[0] == 1 && e->v[5] == 6 && e->v[7] == 8);
    ck_assert_ptr_null(sx_dataset_obsm(d, "only_a"));
    ck_assert_int_eq(d->x_was_int, 1);
    sx_dataset_free(d);
}
END_TEST

START_TEST(outer_join_and_labels)
{
    sx_dataset *p[3];
    three(p);
    const char *cats[] = {"tA", "tB", "tC"};
    sx_concat_opts o = {"domain", cats, 1};
    sx_status st = {0};
    sx_dataset *d = sx_io_concat(p, 3, &o, &st);
    ck_assert_msg(d, "%s", st.msg);
    /* sorted union of A, C, C-1, G (A) with A, G, X (B), then with Z (C) */
    const char *genes[] = {"A", "C", "C-1", "G", "X", "Z"};
    ck_assert_int_eq(sx_dataset_n_vars(d), 6);
    check_names(d->var->index, genes, 6);
    const float want[] = {3, 2, 4, 1, 0, 0,   /* a1 */
                          7, 6, 8, 5, 0, 0,   /* a2 */
                          10, 0, 0, 20, 30, 0, /* b1 */
                          200, 400, 0, 100, 0, 300};
    check_dense(d, want);
    const sx_column *b = sx_frame_col(d->obs, "domain");
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq(b->categories[1], "tB");
    /* the inputs' "batch" column is an ordinary column here: present only in B */
    const sx_column *ob = sx_frame_col(d->obs, "batch");
    ck_assert_ptr_nonnull(ob);
    ck_assert_ptr_null(ob->str[0]);
    ck_assert_str_eq(ob->str[2], "old");
    /* id per input: genes absent from an input are missing */
    const sx_column *ib = sx_frame_col(d->var, "id-tB");
    ck_assert_ptr_nonnull(ib);
    ck_assert_str_eq(ib->str[4], "x");
    ck_assert_ptr_null(ib->str[1]);
    sx_dataset_free(d);
}
END_TEST

START_TEST(outer_equal_genes_keep_order)
{
    const char *o1[] = {"x"}, *o2[] = {"y"}, *v[] = {"Z", "A"};
    const float a[] = {1, 2}, b[] = {3, 0};
    sx_dataset *p[2] = {make(1, 2, o1, v, a), make(1, 2, o2, v, b)};
    sx_concat_opts o = {NULL, NULL, 1};
    sx_status st = {0};
    sx_dataset *d = sx_io_concat(p, 2, &o, &st);
    ck_assert_msg(d, "%s", st.msg);
    check_names(d->var->index, v, 2); /* pandas union of equal indexes is not sorted */
    const float want[] = {1, 2, 3, 0};
    check_dense(d, want);
    sx_dataset_free(d);
}
END_TEST

START_TEST(bad_calls)
{
    const char *o1[] = {"x"}, *v[] = {"A"};
    const float a[] = {1};
    sx_dataset *p[2] = {make(1, 1, o1, v, a), make(1, 1, o1, v, a)};
    const char *cats[] = {"same", "same"};
    sx_concat_opts o = {NULL, cats, 0};
    sx_status st = {0};
    ck_assert_ptr_null(sx_io_concat(p, 2, &o, &st)); /* frees the inputs */
    ck_assert_int_eq(st.code, SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "given twice"));
    sx_dataset *q[1] = {make(1, 1, o1, v, a)};
    sx_csr_free(q[0]->X);
    q[0]->X = NULL;
    ck_assert_ptr_null(sx_io_concat(q, 1, NULL, &st));
    ck_assert_ptr_nonnull(strstr(st.msg, "no X"));
}
END_TEST

static sx_dataset *read_csv(const char *rel)
{
    sx_status st = {0};
    sx_dataset *d = sx_text_read(sx_test_shared(rel), NULL, NULL, &st);
    ck_assert_msg(d, "%s", st.msg);
    return d;
}

#define CEL "data/cellbench_3cl_celseq2_dropseq/original/sc_celseq2.count.csv.gz"
#define DROP "data/cellbench_3cl_celseq2_dropseq/original/sc_dropseq.count.csv.gz"

START_TEST(cellbench_inner_matches_anndata)
{
    sx_dataset *p[2] = {read_csv(CEL), read_csv(DROP)};
    int64_t n_cel = sx_dataset_n_obs(p[0]), n_drop = sx_dataset_n_obs(p[1]);
    const char *cats[] = {"celseq2", "dropseq"};
    sx_concat_opts o = {"batch", cats, 0};
    sx_status st = {0};
    sx_dataset *d = sx_io_concat(p, 2, &o, &st);
    ck_assert_msg(d, "%s", st.msg);
    /* the combined h5ad (inner join of the same tables, genes sorted there) */
    io_truth t;
    truth_run(&t, "h5ad", sx_test_shared("data/cellbench_3cl_celseq2_dropseq/cellbench_3cl.h5ad"),
              NULL);
    ck_assert_int_eq(sx_dataset_n_obs(d), t.n_obs);
    ck_assert_int_eq(sx_dataset_n_vars(d), t.n_vars);
    ck_assert_int_eq(sx_csr_nnz(d->X), t.nnz);
    ck_assert_int_eq(n_cel, 274);
    ck_assert_int_eq(n_drop, 225);
    /* gene by gene through a name lookup: values of every cell equal */
    int64_t g = t.n_vars;
    int64_t *pos = malloc((size_t)g * sizeof(int64_t));
    for (int64_t j = 0; j < g; j++) pos[j] = -1;
    /* our genes keep the celseq2 order; sort-free lookup via a linear merge on names */
    for (int64_t j = 0, miss = 0; j < g; j++) {
        int64_t lo = 0, hi = g - 1, found = -1; /* truth names are sorted: binary search */
        while (lo <= hi) {
            int64_t mid = (lo + hi) / 2;
            int c = strcmp(t.var[mid], d->var->index[j]);
            if (c == 0) { found = mid; break; }
            if (c < 0) lo = mid + 1; else hi = mid - 1;
        }
        if (found < 0) miss++;
        else pos[found] = j;
        ck_assert_msg(miss == 0, "gene %s not in the combined h5ad", d->var->index[j]);
    }
    float *row = malloc((size_t)g * sizeof(float));
    int64_t bad = -1;
    for (int64_t i = 0; i < t.n_obs && bad < 0; i++) {
        sx_csr_densify_rows(d->X, i, i + 1, row);
        for (int64_t k = t.indptr[i]; k < t.indptr[i + 1]; k++)
            if (row[pos[t.indices[k]]] != t.data[k]) bad = i;
    }
    ck_assert_msg(bad < 0, "cell %lld differs from the combined h5ad", (long long)bad);
    const sx_column *b = sx_frame_col(d->obs, "batch");
    ck_assert_int_eq(b->codes[273], 0);
    ck_assert_int_eq(b->codes[274], 1);
    ck_assert_str_eq(b->categories[1], "dropseq");
    free(pos);
    free(row);
    truth_free(&t);
    sx_dataset_free(d);
}
END_TEST

START_TEST(cellbench_outer)
{
    sx_dataset *p[2] = {read_csv(CEL), read_csv(DROP)};
    double sum = sx_csr_sum(p[0]->X) + sx_csr_sum(p[1]->X);
    int64_t nnz = sx_csr_nnz(p[0]->X) + sx_csr_nnz(p[1]->X);
    sx_concat_opts o = {NULL, NULL, 1};
    sx_status st = {0};
    sx_dataset *d = sx_io_concat(p, 2, &o, &st);
    ck_assert_msg(d, "%s", st.msg);
    /* PROVENANCE: 28,204 + 15,127 genes, 15,073 shared */
    ck_assert_int_eq(sx_dataset_n_vars(d), 28204 + 15127 - 15073);
    for (int64_t j = 1; j < sx_dataset_n_vars(d); j++)
        ck_assert_msg(strcmp(d->var->index[j - 1], d->var->index[j]) < 0, "not sorted at %lld",
                      (long long)j);
    ck_assert_int_eq(sx_csr_nnz(d->X), nnz);
    ck_assert(fabs(sx_csr_sum(d->X) - sum) <= 1e-9 * sum);
    ck_assert_int_eq(sx_csr_validate(d->X, 1, "X", &st), SX_OK);
    sx_dataset_free(d);
}
END_TEST

/* The v3 10x folder and the two-genome v2 .h5 concatenated by us and by anndata 0.8's
 * AnnData.concatenate (what SCALEX v1.0.0 calls): genes, X, obs and every var column
 * (names, order, values; pandas prints a missing value as "nan"). */
static void tenx_vs_anndata(const char *join)
{
    const char *v3 = sx_test_shared("data/tenx_pbmc_chr21_scanpy/3.0.0/filtered_feature_bc_matrix");
    const char *v2 = sx_test_shared("data/tenx_pbmc_chr21_scanpy/1.2.0/multiple_genomes.h5");
    char spec[4096];
    snprintf(spec, sizeof spec, "%s|mtx:%s|h5:%s", join, v3, v2);
    io_truth t;
    truth_run(&t, "concat", spec, NULL);
    sx_status st = {0};
    sx_dataset *p[2] = {sx_mtx_read(v3, NULL, NULL, &st), NULL};
    ck_assert_msg(p[0], "%s", st.msg);
    p[1] = sx_tenx_h5_read(v2, NULL, NULL, &st);
    ck_assert_msg(p[1], "%s", st.msg);
    const char *cats[] = {"b0", "b1"};
    sx_concat_opts o = {NULL, cats, strcmp(join, "outer") == 0};
    sx_dataset *d = sx_io_concat(p, 2, &o, &st);
    ck_assert_msg(d, "%s", st.msg);
    truth_check_dataset(&t, d, join);
    int64_t nc;
    char **cols = truth_lines(t.dir, "var_columns.txt", &nc);
    ck_assert_msg(cols, "no var_columns.txt");
    ck_assert_int_eq(d->var->n_cols, nc);
    for (int64_t c = 0; c < nc; c++) {
        ck_assert_str_eq(d->var->cols[c].name, cols[c]);
        char fn[300];
        snprintf(fn, sizeof fn, "var_%s.txt", cols[c]);
        int64_t n;
        char **v = truth_lines(t.dir, fn, &n);
        ck_assert_int_eq(n, sx_dataset_n_vars(d));
        int64_t bad = -1;
        for (int64_t j = 0; j < n && bad < 0; j++) {
            const char *got = d->var->cols[c].str[j];
            if (strcmp(got ? got : "nan", v[j]) != 0) bad = j;
        }
        ck_assert_msg(bad < 0, "var %s row %lld differs from anndata", cols[c], (long long)bad);
        truth_free_lines(v, n);
    }
    const sx_column *b = sx_frame_col(d->obs, "batch");
    ck_assert_int_eq(b->codes[1106], 0);
    ck_assert_int_eq(b->codes[1107], 1);
    truth_free_lines(cols, nc);
    truth_free(&t);
    sx_dataset_free(d);
}

START_TEST(tenx_outer_matches_anndata) { tenx_vs_anndata("outer"); }
END_TEST

START_TEST(tenx_inner_matches_anndata) { tenx_vs_anndata("inner"); }
END_TEST

int main(void)
{
    Suite *s = suite_create("io_concat");
    TCase *tc = tcase_create("concat");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, inner_join);
    tcase_add_test(tc, outer_join_and_labels);
    tcase_add_test(tc, outer_equal_genes_keep_order);
    tcase_add_test(tc, bad_calls);
    tcase_add_test(tc, cellbench_inner_matches_anndata);
    tcase_add_test(tc, cellbench_outer);
    tcase_add_test(tc, tenx_outer_matches_anndata);
    tcase_add_test(tc, tenx_inner_matches_anndata);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
