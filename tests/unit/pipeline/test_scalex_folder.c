/* A folder written by the original SCALEX (shared/golden/scalex_outdir/ref) as a reference:
 * its cells (latent, X_umap, obs, batch categories as domains) against the same file read
 * with plain HDF5, and the loaded network reproducing the reference latent SCALEX stored
 * (train-mode BN over the chunks SCALEX used, recorded in query_input.h5). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_h5.h"
#include "sx_io.h"
#include "sx_prep.h"
#include "sx_pipeline_scalex.h"
#include "sx_test.h"

#define GOLD "golden/scalex_outdir/"

static hid_t h5(const char *rel)
{
    sx_status st = {0};
    hid_t f = sx_h5_open_ro(sx_test_shared(rel), &st);
    ck_assert_msg(f >= 0, "%s", st.msg);
    return f;
}

static void *rd(hid_t f, const char *path, char kind, int64_t *n)
{
    sx_status st = {0};
    void *v = NULL;
    int64_t k = 0;
    int rc = kind == 'd' ? sx_h5_read_f64(f, path, (double **)&v, &k, &st)
           : kind == 'f' ? sx_h5_read_f32(f, path, (float **)&v, &k, &st)
                         : sx_h5_read_i64(f, path, (int64_t **)&v, &k, &st);
    ck_assert_msg(rc == SX_OK, "%s: %s", path, st.msg);
    if (n) *n = k;
    return v;
}

START_TEST(reference_cells_equal_adata)
{
    sx_status st = {0};
    sx_reference *r = sx_reference_load_scalex(sx_test_shared(GOLD "ref"), &st);
    ck_assert_msg(r != NULL, "%s", st.msg);
    hid_t f = h5(GOLD "ref/adata.h5ad");
    int64_t n, k;
    double *lat = rd(f, "obsm/latent", 'd', &n);
    float *um = rd(f, "obsm/X_umap", 'f', &k);
    ck_assert_int_eq(r->n_cells, 910);
    ck_assert_int_eq(r->dim, 10);
    ck_assert_int_eq(n, 9100);
    ck_assert(memcmp(r->latent, lat, (size_t)n * sizeof *lat) == 0);
    ck_assert_ptr_nonnull(r->umap);
    ck_assert(memcmp(r->umap, um, (size_t)k * sizeof *um) == 0);
    char **names, **cats;
    int64_t nn, nc;
    ck_assert(sx_h5_read_strings(f, "obs/_index", &names, &nn, &st) == SX_OK);
    ck_assert_int_eq(nn, r->obs->n_rows);
    for (int64_t i = 0; i < nn; i++) ck_assert_str_eq(r->obs->index[i], names[i]);
    ck_assert_ptr_nonnull(sx_frame_col(r->obs, "cell_type"));
    ck_assert_ptr_nonnull(sx_frame_col(r->obs, "leiden"));
    /* the domains are obs['batch']'s categories in order (README: 0 = 3pv2, 1 = 5p) */
    ck_assert(sx_h5_read_strings(f, "obs/batch/categories", &cats, &nc, &st) == SX_OK);
    int64_t nd;
    const char *const *dom = sx_nn_model_domains(r->model, &nd);
    ck_assert_int_eq(nd, nc);
    ck_assert_int_eq(nd, 2);
    for (int64_t i = 0; i < nd; i++) ck_assert_str_eq(dom[i], cats[i]);
    ck_assert_str_eq(dom[0], "3pv2");
    ck_assert_str_eq(dom[1], "5p");
    /* scanpy recorded the UMAP curve it used */
    double *a = rd(f, "uns/umap/params/a", 'd', NULL), *b = rd(f, "uns/umap/params/b", 'd', NULL);
    ck_assert(r->umap_a == a[0] && r->umap_b == b[0]);
    H5Fclose(f);
    /* the gene list SCALEX fed its encoder */
    f = h5(GOLD "query_input.h5");
    char **vn;
    int64_t nv, ng;
    ck_assert(sx_h5_read_strings(f, "var_names", &vn, &nv, &st) == SX_OK);
    H5Fclose(f);
    const char *const *genes = sx_nn_model_genes(r->model, &ng);
    ck_assert_int_eq(ng, nv);
    for (int64_t i = 0; i < ng; i++) ck_assert_str_eq(genes[i], vn[i]);
    sx_h5_free_strings(vn, nv);
    sx_h5_free_strings(names, nn);
    sx_h5_free_strings(cats, nc);
    sx_free(a);
    sx_free(b);
    sx_free(lat);
    sx_free(um);
    sx_reference_free(r);
}
END_TEST

/* ref/adata.h5ad X (the reference's encoder input) in SCALEX's train-mode chunks gives the
 * latent SCALEX stored. The chunks are recorded as one walk order: each full chunk is 64 cells
 * of one domain in a row, the two leftovers come last, so our sampler rebuilds them exactly. */
START_TEST(reference_latent_reproduced)
{
    sx_status st = {0};
    sx_reference *r = sx_reference_load_scalex(sx_test_shared(GOLD "ref"), &st);
    ck_assert_msg(r != NULL, "%s", st.msg);
    hid_t f = h5(GOLD "ref/adata.h5ad");
    int64_t nnz, np, n_codes;
    sx_csr x = {910, 1467, NULL, NULL, NULL};
    x.indptr = rd(f, "X/indptr", 'i', &np);
    int64_t *ind = rd(f, "X/indices", 'i', &nnz);
    x.data = rd(f, "X/data", 'f', NULL);
    x.indices = sx_mallocarray((size_t)nnz, sizeof *x.indices);
    for (int64_t i = 0; i < nnz; i++) x.indices[i] = (int32_t)ind[i];
    int64_t *codes = rd(f, "obs/batch/codes", 'i', &n_codes);
    double *want = rd(f, "obsm/latent", 'd', NULL);
    H5Fclose(f);
    ck_assert_int_eq(np, 911);
    int32_t *dom = sx_mallocarray((size_t)n_codes, sizeof *dom);
    for (int64_t i = 0; i < n_codes; i++) dom[i] = (int32_t)codes[i];
    f = h5(GOLD "query_input.h5");
    int64_t *order = rd(f, "reference_train_chunks/order", 'i', NULL);
    H5Fclose(f);
    double *lat = sx_mallocarray(910 * 10, sizeof *lat);
    sx_nn_infer_opts o;
    sx_nn_infer_opts_default(&o);
    o.perm = order;
    o.threads = 1;
    ck_assert_msg(sx_nn_encode(r->model, &x, dom, &o, lat, NULL, &st) == SX_OK, "%s", st.msg);
    double mx = 0, worst = 0;
    for (int64_t i = 0; i < 9100; i++) mx = fmax(mx, fabs(want[i]));
    for (int64_t i = 0; i < 9100; i++)
        worst = fmax(worst, sx_test_reldiff(lat[i], want[i], 0.1 * mx));
    fprintf(stderr, "reference train-mode latent vs SCALEX: worst relative %.3g (denominator at "
            "least 10%% of max |latent|)\n", worst);
    ck_assert_msg(worst < 1e-5, "worst relative difference %.3g", worst);
    sx_free(x.indptr);
    sx_free(x.indices);
    sx_free(x.data);
    sx_free(ind);
    sx_free(codes);
    sx_free(dom);
    sx_free(order);
    sx_free(want);
    sx_free(lat);
    sx_reference_free(r);
}
END_TEST

/* End to end: the raw query projected onto the SCALEX folder with --eval (sx_pipeline_run, as
 * `scalex project --projection DIR --eval` does) gives SCALEX's eval-mode latent. */
START_TEST(project_eval_end_to_end)
{
    sx_status st = {0};
    char out[600];
    snprintf(out, sizeof out, "%s/out", sx_test_tmpdir());
    const char *inputs[] = {sx_test_shared("data/pbmc_3tech_symphony/query_3pv1.h5ad")};
    sx_pipeline_opts *o = sx_pipeline_opts_new();
    ck_assert(sx_pipeline_opts_set(o, "eval", "true", &st) == SX_OK);
    ck_assert(sx_pipeline_opts_set(o, "min_features", "0", &st) == SX_OK);
    ck_assert(sx_pipeline_opts_set(o, "ignore_umap", "true", &st) == SX_OK);
    sx_job_spec job = {.type = SX_JOB_PROJECT, .inputs = inputs, .n_inputs = 1,
                       .reference = sx_test_shared(GOLD "ref"), .outdir = out, .opts = o,
                       .threads = 1};
    ck_assert_msg(sx_pipeline_run(&job, NULL, &st) == SX_OK, "%s", st.msg);
    sx_pipeline_opts_free(o);
    char path[700];
    snprintf(path, sizeof path, "%s/adata.h5ad", out);
    sx_status s2 = {0};
    hid_t f = sx_h5_open_ro(path, &s2);
    ck_assert_msg(f >= 0, "%s", s2.msg);
    int64_t n_lat, n_names, n_q;
    double *lat = rd(f, "obsm/latent", 'd', &n_lat);
    char **names, **qn;
    ck_assert(sx_h5_read_strings(f, "obs/_index", &names, &n_names, &s2) == SX_OK);
    H5Fclose(f);
    ck_assert_int_eq(n_lat, n_names * 10);
    f = h5(GOLD "query_input.h5");
    double *want = rd(f, "latent_eval", 'd', NULL);
    ck_assert(sx_h5_read_strings(f, "obs_names", &qn, &n_q, &s2) == SX_OK);
    H5Fclose(f);
    double mx = 0, worst = 0;
    for (int64_t i = 0; i < n_q * 10; i++) mx = fmax(mx, fabs(want[i]));
    for (int64_t i = 0; i < n_q; i++) {
        int64_t j = 0;
        while (j < n_names && strcmp(names[j], qn[i]) != 0) j++;
        ck_assert_msg(j < n_names, "query cell %s missing from the output", qn[i]);
        for (int k = 0; k < 10; k++)
            worst = fmax(worst, sx_test_reldiff(lat[j * 10 + k], want[i * 10 + k], 0.1 * mx));
    }
    fprintf(stderr, "end-to-end eval-mode query latent vs SCALEX: worst relative %.3g\n", worst);
    ck_assert_msg(worst < 1e-4, "worst relative difference %.3g", worst);
    sx_h5_free_strings(names, n_names);
    sx_h5_free_strings(qn, n_q);
    sx_free(lat);
    sx_free(want);
}
END_TEST

/* Train mode (SCALEX's default) end to end, given SCALEX's chunks: the raw query through our
 * projection preprocessing, then the encoder walking query_input.h5's train_chunk_perm (the
 * numpy permutation SCALEX's sampler drew; every chunk is 64 cells of the one query batch, the
 * leftover 34 last) gives SCALEX's train-mode latent (proj/adata.h5ad, = latent_train). The
 * pipeline draws the same permutation itself (sx_scalex_permutation, checked below), which
 * tests/integration/pipeline_scalex_folder.sh checks through `scalex project`. */
START_TEST(project_train_mode_scalex_chunks)
{
    sx_status st = {0};
    sx_reference *r = sx_reference_load_scalex(sx_test_shared(GOLD "ref"), &st);
    ck_assert_msg(r != NULL, "%s", st.msg);
    sx_read_opts ro = {0};
    sx_dataset *q = sx_h5ad_read(sx_test_shared("data/pbmc_3tech_symphony/query_3pv1.h5ad"), &ro,
                                 NULL, &st);
    ck_assert_msg(q != NULL, "%s", st.msg);
    int64_t G;
    const char *const *genes = sx_nn_model_genes(r->model, &G);
    sx_prep_opts po;
    sx_prep_opts_init(&po);
    po.min_features = 0; /* as the golden run (README: min_features=0) */
    sx_prep_result pr = {0};
    sx_reindex_report rep = {0};
    ck_assert_msg(sx_prep_apply_reference(q, genes, G, &po, NULL, &pr, &rep, NULL, &st) == SX_OK,
                  "%s", st.msg);
    int64_t nq = sx_dataset_n_obs(q), n_perm, n_starts;
    hid_t f = h5(GOLD "query_input.h5");
    int64_t *perm = rd(f, "train_chunk_perm", 'i', &n_perm);
    int64_t *starts = rd(f, "train_chunk_starts", 'i', &n_starts);
    double *want = rd(f, "latent_train", 'd', NULL);
    H5Fclose(f);
    ck_assert_int_eq(nq, 290);
    ck_assert_int_eq(n_perm, nq);
    /* the recorded chunks are what our sampler makes of that walk: consecutive 64s */
    for (int64_t c = 0; c < n_starts; c++) ck_assert_int_eq(starts[c], 64 * c);
    double *lat = sx_mallocarray((size_t)nq * 10, sizeof *lat);
    sx_nn_infer_opts o;
    sx_nn_infer_opts_default(&o);
    o.perm = perm;
    o.threads = 1;
    ck_assert_msg(sx_nn_encode(r->model, q->X, pr.domain_of_cell, &o, lat, NULL, &st) == SX_OK,
                  "%s", st.msg);
    double mx = 0, worst = 0;
    for (int64_t i = 0; i < nq * 10; i++) mx = fmax(mx, fabs(want[i]));
    for (int64_t i = 0; i < nq * 10; i++)
        worst = fmax(worst, sx_test_reldiff(lat[i], want[i], 0.1 * mx));
    fprintf(stderr, "end-to-end train-mode query latent (SCALEX's chunks) vs SCALEX: worst "
            "relative %.3g\n", worst);
    ck_assert_msg(worst < 1e-4, "worst relative difference %.3g", worst);
    sx_prep_result_free(&pr);
    sx_reindex_report_free(&rep);
    sx_dataset_free(q);
    sx_free(perm);
    sx_free(starts);
    sx_free(want);
    sx_free(lat);
    sx_reference_free(r);
}
END_TEST

/* The walk order SCALEX drew (numpy's RandomState(124).permutation) and the chunks its sampler
 * made of it, as recorded in query_input.h5: the query's permutation of 290 cells, and the
 * reference's 15 chunks from RandomState(124).permutation(910) over the two domains. */
START_TEST(scalex_permutation_and_chunks)
{
    sx_status st = {0};
    hid_t f = h5(GOLD "query_input.h5");
    int64_t nq, nord, ns, nl;
    int64_t *qperm = rd(f, "train_chunk_perm", 'i', &nq);
    int64_t *order = rd(f, "reference_train_chunks/order", 'i', &nord);
    int64_t *starts = rd(f, "reference_train_chunks/starts", 'i', &ns);
    int64_t *lens = rd(f, "reference_train_chunks/lengths", 'i', &nl);
    H5Fclose(f);
    int64_t *p = sx_mallocarray(910, sizeof *p);
    sx_scalex_permutation(p, nq, 124);
    for (int64_t i = 0; i < nq; i++) ck_assert_int_eq(p[i], qperm[i]);
    f = h5(GOLD "ref/adata.h5ad");
    int64_t nc;
    int64_t *codes = rd(f, "obs/batch/codes", 'i', &nc);
    H5Fclose(f);
    ck_assert_int_eq(nc, 910);
    ck_assert_int_eq(nord, 910);
    int32_t *dom = sx_mallocarray(910, sizeof *dom);
    for (int64_t i = 0; i < 910; i++) dom[i] = (int32_t)codes[i];
    sx_scalex_permutation(p, 910, 124);
    int64_t *idx, *off, n_chunks;
    ck_assert(sx_nn_domain_chunks(dom, 910, 2, p, 64, &idx, &off, &n_chunks, &st) == SX_OK);
    ck_assert_int_eq(n_chunks, ns);
    ck_assert_int_eq(nl, ns);
    for (int64_t c = 0; c < n_chunks; c++) {
        ck_assert_int_eq(off[c], starts[c]);
        ck_assert_int_eq(off[c + 1] - off[c], lens[c]);
    }
    for (int64_t i = 0; i < 910; i++) ck_assert_int_eq(idx[i], order[i]);
    sx_free(idx);
    sx_free(off);
    sx_free(dom);
    sx_free(codes);
    sx_free(p);
    sx_free(qperm);
    sx_free(order);
    sx_free(starts);
    sx_free(lens);
}
END_TEST

/* The version: the golden run's log.txt records none (SCALEX 1.0.7 writes none); a log line
 * that states one is read. */
START_TEST(folder_version)
{
    char v[32] = "x";
    sx_scalex_folder_version(sx_test_shared(GOLD "ref"), v, sizeof v);
    ck_assert_str_eq(v, "");
    char path[600];
    const char *dir = sx_test_tmpdir();
    snprintf(path, sizeof path, "%s/log.txt", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("2026-12-05 09:52:03,538 - SCALEX - INFO - Raw dataset shape: (910, 1767)\n"
          "2026-12-05 09:52:03,539 - SCALEX - INFO - SCALEX version: 1.0.7\n", f);
    fclose(f);
    sx_scalex_folder_version(dir, v, sizeof v);
    ck_assert_str_eq(v, "1.0.7");
    sx_scalex_folder_version(GOLD "no/such/folder", v, sizeof v);
    ck_assert_str_eq(v, "");
}
END_TEST

/* The folder converted to our reference.h5 reads back equal (latent, UMAP, obs, model). */
START_TEST(converted_reference_reads_back)
{
    sx_status st = {0};
    char path[600];
    snprintf(path, sizeof path, "%s/reference.h5", sx_test_tmpdir());
    sx_scalex_info info;
    ck_assert_msg(sx_reference_write_scalex(sx_test_shared(GOLD "ref"), path, &info, &st) ==
                  SX_OK, "%s", st.msg);
    sx_reference *a = sx_reference_load_scalex(sx_test_shared(GOLD "ref"), &st);
    sx_reference *b = sx_reference_load(path, &st);
    ck_assert_msg(a && b, "%s", st.msg);
    ck_assert_int_eq(a->n_cells, b->n_cells);
    ck_assert_int_eq(a->dim, b->dim);
    /* what the catalog shows: README, 910 cells x 1467 genes; no version recorded */
    ck_assert_int_eq(info.n_cells, 910);
    ck_assert_int_eq(info.n_genes, 1467);
    ck_assert_str_eq(info.version, "");
    ck_assert(memcmp(a->latent, b->latent, (size_t)(a->n_cells * a->dim) * sizeof(double)) == 0);
    ck_assert(memcmp(a->umap, b->umap, (size_t)a->n_cells * 2 * sizeof(float)) == 0);
    ck_assert(a->umap_a == b->umap_a && a->umap_b == b->umap_b);
    const sx_column *ca = sx_frame_col(a->obs, "cell_type"), *cb = sx_frame_col(b->obs, "cell_type");
    ck_assert(ca && cb);
    for (int64_t i = 0; i < a->n_cells; i++) {
        char x[64], y[64];
        ck_assert_str_eq(sx_column_text(ca, i, x, 64), sx_column_text(cb, i, y, 64));
    }
    for (int i = 0; i < sx_nn_model_n_tensors(a->model); i++) {
        const char *nm = sx_nn_model_tensor_name(a->model, i);
        int nd;
        int64_t d[2];
        ck_assert(sx_nn_model_tensor_shape(a->model, nm, &nd, d, &st) == SX_OK);
        int64_t k = nd == 0 ? 1 : nd == 1 ? d[0] : d[0] * d[1];
        double *va = sx_mallocarray((size_t)k, sizeof *va), *vb = sx_mallocarray((size_t)k, sizeof *vb);
        ck_assert(sx_nn_model_get(a->model, nm, va, k, &st) == SX_OK);
        ck_assert_msg(sx_nn_model_get(b->model, nm, vb, k, &st) == SX_OK, "%s", st.msg);
        ck_assert_msg(memcmp(va, vb, (size_t)k * sizeof *va) == 0, "%s differs", nm);
        sx_free(va);
        sx_free(vb);
    }
    int64_t nd;
    const char *const *dom = sx_nn_model_domains(b->model, &nd);
    ck_assert_int_eq(nd, 2);
    ck_assert_str_eq(dom[0], "3pv2");
    ck_assert_ptr_nonnull(strstr(sx_nn_model_prep_json(b->model), "scalex"));
    sx_reference_free(a);
    sx_reference_free(b);
}
END_TEST

START_TEST(not_a_scalex_folder)
{
    sx_status st = {0};
    ck_assert(!sx_reference_is_scalex(sx_test_shared(GOLD "proj"))); /* no checkpoint */
    ck_assert(sx_reference_is_scalex(sx_test_shared(GOLD "ref")));
    sx_reference *r = sx_reference_load_scalex(sx_test_shared(GOLD "proj"), &st);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(st.code, SX_ENOTFOUND);
    ck_assert_msg(strstr(st.msg, "checkpoint/model.pt") && !strstr(st.msg, "golden"), "%s",
                  st.msg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("scalex_folder");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, reference_cells_equal_adata);
    tcase_add_test(tc, reference_latent_reproduced);
    tcase_add_test(tc, project_eval_end_to_end);
    tcase_add_test(tc, project_train_mode_scalex_chunks);
    tcase_add_test(tc, folder_version);
    tcase_add_test(tc, scalex_permutation_and_chunks);
    tcase_add_test(tc, converted_reference_reads_back);
    tcase_add_test(tc, not_a_scalex_folder);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
