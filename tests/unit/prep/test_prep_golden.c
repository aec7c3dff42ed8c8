/* Preprocessing against golden/prep/<case>/ (SCALEX v1.0.0 + scanpy 1.9.8 outputs):
 * kept cells and genes, log-normalized matrix, HVG tables (per batch and combined), HVG set
 * and order, scaled matrices (both variants) and per-batch MaxAbs factors. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_h5.h"
#include "sx_io.h"
#include "sx_prep.h"
#include "sx_test.h"

/* tolerances from the brief */
/* Check's ck_assert records a checkpoint per call (a write to a pipe): loops over millions
 * of values use EXPECT, which only calls into Check on failure. */
#define EXPECT(cond, ...)                        \
    do {                                         \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);  \
    } while (0)

#define TOL_MATRIX_ABS 1e-5
#define TOL_HVG_REL 1e-4
#define TOL_SCALE_REL 1e-6

typedef struct gcase {
    const char *name, *input;
    int atac;
    int64_t min_features;
} gcase;

static const gcase CASES[] = {
    {"pbmc_3tech", "data/pbmc_3tech_symphony/pbmc_3tech.h5ad", 0, 100},
    {"cellbench_3cl", "data/cellbench_3cl_celseq2_dropseq/cellbench_3cl.h5ad", 0, 600},
    {"pancreas_baron_human_mouse", "data/pancreas_baron_human_mouse_cider/pancreas_baron_human_mouse.h5ad", 0, 600},
    {"bmmc_atac_peaks", "data/scatac_small/bmmc_atac_peaks.h5ad", 1, 2},
};

static hid_t open_golden(const char *c, const char *file)
{
    char rel[512];
    snprintf(rel, sizeof rel, "golden/prep/%s/%s", c, file);
    sx_status st = {0};
    hid_t f = sx_h5_open_ro(sx_test_shared(rel), &st);
    EXPECT(f >= 0, "%s", st.msg);
    return f;
}

static char **rd_strings(hid_t f, const char *path, int64_t *n)
{
    char **s = NULL;
    sx_status st = {0};
    EXPECT(sx_h5_read_strings(f, path, &s, n, &st) == SX_OK, "%s: %s", path, st.msg);
    return s;
}

static double *rd_f64(hid_t f, const char *path, int64_t *n)
{
    double *v = NULL;
    sx_status st = {0};
    EXPECT(sx_h5_read_f64(f, path, &v, n, &st) == SX_OK, "%s: %s", path, st.msg);
    return v;
}

static int64_t *rd_i64(hid_t f, const char *path, int64_t *n)
{
    int64_t *v = NULL;
    sx_status st = {0};
    EXPECT(sx_h5_read_i64(f, path, &v, n, &st) == SX_OK, "%s: %s", path, st.msg);
    return v;
}

static void expect_names(char **want, int64_t nw, char *const *got, int64_t ng, const char *what)
{
    EXPECT(nw == ng, "%s: %lld names, golden %lld", what, (long long)ng, (long long)nw);
    for (int64_t i = 0; i < nw; i++)
        EXPECT(strcmp(want[i], got[i]) == 0, "%s[%lld]: '%s', golden '%s'", what,
                      (long long)i, got[i], want[i]);
}

/* Compare rows `rows` (NULL = all) of `got` with the golden CSR at grp (rows stored in order). */
static void expect_csr(hid_t f, const char *grp, const sx_csr *got, const int64_t *rows,
                       int64_t n_rows, const char *what)
{
    char p[256];
    int64_t n_ip, n_ix, n_d;
    snprintf(p, sizeof p, "%s/indptr", grp);
    int64_t *ip = rd_i64(f, p, &n_ip);
    snprintf(p, sizeof p, "%s/indices", grp);
    int64_t *ix = rd_i64(f, p, &n_ix);
    snprintf(p, sizeof p, "%s/data", grp);
    double *dv = rd_f64(f, p, &n_d);
    ck_assert_int_eq(n_ip, n_rows + 1);
    double worst = 0;
    int64_t nexact = 0;
    for (int64_t r = 0; r < n_rows; r++) {
        int64_t i = rows ? rows[r] : r;
        int64_t a = got->indptr[i], b = got->indptr[i + 1];
        EXPECT(b - a == ip[r + 1] - ip[r], "%s: row %lld has %lld entries, golden %lld",
                      what, (long long)i, (long long)(b - a), (long long)(ip[r + 1] - ip[r]));
        for (int64_t k = 0; k < b - a; k++) {
            EXPECT(got->indices[a + k] == ix[ip[r] + k], "%s: row %lld entry %lld column "
                          "%d, golden %lld", what, (long long)i, (long long)k,
                          got->indices[a + k], (long long)ix[ip[r] + k]);
            double d = fabs((double)got->data[a + k] - dv[ip[r] + k]);
            if (d > worst) worst = d;
            nexact += d != 0;
        }
    }
    EXPECT(worst <= TOL_MATRIX_ABS, "%s: max abs diff %.3g > %.1g", what, worst,
                  TOL_MATRIX_ABS);
    fprintf(stderr, "  %s: %lld rows, structure identical, max abs diff %.3g (%lld values not "
            "bit-identical)\n", what, (long long)n_rows, worst, (long long)nexact);
    sx_free(ip);
    sx_free(ix);
    sx_free(dv);
}

static sx_dataset *load_input(const gcase *c)
{
    sx_status st = {0};
    sx_dataset *d = sx_h5ad_read(sx_test_shared(c->input), NULL, NULL, &st);
    EXPECT(d != NULL, "reading %s: %s", c->input, st.msg);
    return d;
}

/* chunk_size 0 = default (20000: one block here); the literal runs use 97 rows per block,
 * so block boundaries fall inside every batch and must not change a value */
static void prep_case(const gcase *c, sx_hvg_mode mode, int64_t chunk, sx_dataset **dout,
                      sx_prep_result *res)
{
    sx_dataset *d = load_input(c);
    sx_prep_opts o;
    sx_prep_opts_init(&o);
    o.profile = c->atac ? SX_PROFILE_ATAC : SX_PROFILE_RNA;
    o.min_features = c->min_features;
    o.min_cells = 3;
    o.hvg_mode = mode;
    o.chunk_size = chunk;
    sx_status st = {0};
    int rc = sx_prep_run(d, &o, res, NULL, &st);
    EXPECT(rc == SX_OK, "%s: %s", c->name, st.msg);
    *dout = d;
}

/* lognorm.h5: kept cells, genes, batch codes, n_genes, n_cells, the log-normalized matrix */
static void check_lognorm(const gcase *c, const sx_dataset *d, const sx_prep_result *res)
{
    hid_t f = open_golden(c->name, "lognorm.h5");
    int64_t n, m;
    char **obs = rd_strings(f, "obs_names", &n);
    expect_names(obs, n, d->obs->index, d->obs->n_rows, "kept cells");
    const sx_frame *var = c->atac ? d->var : d->raw_var;
    char **vn = rd_strings(f, "var_names", &m);
    expect_names(vn, m, var->index, var->n_rows, "kept genes");
    int64_t nb, nc;
    char **cats = rd_strings(f, "batch_categories", &nc);
    expect_names(cats, nc, res->domains, res->n_domains, "domains");
    int64_t *codes = rd_i64(f, "batch_codes", &nb);
    for (int64_t i = 0; i < nb; i++) EXPECT(codes[i] == res->domain_of_cell[i], "mismatch %lld vs %lld at line %d", (long long)(codes[i]), (long long)(res->domain_of_cell[i]), __LINE__);
    int64_t *ng = rd_i64(f, "n_genes", &nb);
    const sx_column *cng = sx_frame_col(d->obs, "n_genes");
    ck_assert_ptr_nonnull(cng);
    for (int64_t i = 0; i < nb; i++) EXPECT(ng[i] == cng->i64[i], "mismatch %lld vs %lld at line %d", (long long)(ng[i]), (long long)(cng->i64[i]), __LINE__);
    int64_t *ncl = rd_i64(f, "n_cells", &nb);
    const sx_column *cnc = sx_frame_col(var, "n_cells");
    ck_assert_ptr_nonnull(cnc);
    for (int64_t j = 0; j < nb; j++) EXPECT(ncl[j] == cnc->i64[j], "mismatch %lld vs %lld at line %d", (long long)(ncl[j]), (long long)(cnc->i64[j]), __LINE__);
    if (!c->atac) {
        expect_csr(f, "X", d->raw_X, NULL, n, "lognorm (raw)");
    }
    sx_h5_free_strings(obs, n);
    sx_h5_free_strings(vn, m);
    sx_h5_free_strings(cats, nc);
    sx_free(codes);
    sx_free(ng);
    sx_free(ncl);
    H5Fclose(f);
}

/* pandas' _round_frac(x, precision=3): the display rounding of interval labels */
static double round_frac(double x)
{
    if (!isfinite(x) || x == 0) return x;
    double whole;
    double frac = modf(x, &whole);
    int digits = whole == 0 ? -(int)floor(log10(fabs(frac))) - 1 + 3 : 3;
    double p = pow(10.0, digits);
    return rint(x * p) / p;
}

/* Values that are logs of ratios near 1 (dispersions) or differences of such (normalised
 * dispersions) lose relative precision near 0: numpy's float32 expm1 and ours differ by one
 * ulp for ~0.4 % of entries, i.e. ~1e-8 absolute after the log. Relative tolerance with a
 * floor of 1e-3 (so ~1e-7 absolute near zero). */
#define HVG_FLOOR 1e-3

static int same_or_close(double a, double b, double rel)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b)) return a == b;
    return sx_test_reldiff(a, b, HVG_FLOOR) <= rel;
}

/* hvg.h5, computed from the golden lognorm matrix itself (so this checks the HVG step alone) */
static void check_hvg_alone(const gcase *c)
{
    hid_t lf = open_golden(c->name, "lognorm.h5");
    hid_t hf = open_golden(c->name, "hvg.h5");
    int64_t n_ip, n_ix, n_d, nv, nb, ncat;
    int64_t *ip = rd_i64(lf, "X/indptr", &n_ip);
    int64_t *ix = rd_i64(lf, "X/indices", &n_ix);
    double *dv = rd_f64(lf, "X/data", &n_d);
    char **vn = rd_strings(lf, "var_names", &nv);
    int64_t *codes = rd_i64(lf, "batch_codes", &nb);
    char **cats = rd_strings(hf, "batch_categories", &ncat);
    sx_status st = {0};
    sx_csr *X = sx_csr_new(n_ip - 1, nv, n_d, &st);
    ck_assert_ptr_nonnull(X);
    for (int64_t i = 0; i < n_ip; i++) X->indptr[i] = ip[i];
    for (int64_t k = 0; k < n_d; k++) {
        X->indices[k] = (int32_t)ix[k];
        X->data[k] = (float)dv[k];
    }
    int32_t *dom = sx_mallocarray((size_t)nb, sizeof(int32_t));
    for (int64_t i = 0; i < nb; i++) dom[i] = (int32_t)codes[i];
    int64_t K = c->atac ? 100000 : 2000;
    sx_hvg_table *t = sx_prep_hvg(X, dom, (int32_t)ncat, (const char *const *)vn, K, 0, &st);
    EXPECT(t != NULL, "%s", st.msg);
    double worst = 0;
    for (int64_t b = 0; b < ncat; b++) {
        char p[256];
        int64_t m;
        const char *arr[3] = {"means", "dispersions", "dispersions_norm"};
        const double *mine[3] = {t->b_means + b * nv, t->b_disp + b * nv, t->b_disp_norm + b * nv};
        for (int a = 0; a < 3; a++) {
            snprintf(p, sizeof p, "per_batch/%s/%s", cats[b], arr[a]);
            double *g = rd_f64(hf, p, &m);
            ck_assert_int_eq(m, nv);
            for (int64_t j = 0; j < nv; j++) {
                EXPECT(same_or_close(mine[a][j], g[j], TOL_HVG_REL),
                              "%s batch %s %s[%s]: %.17g, golden %.17g", c->name, cats[b], arr[a],
                              vn[j], mine[a][j], g[j]);
                if (!isnan(g[j]) && !isinf(g[j])) {
                    double r = sx_test_reldiff(mine[a][j], g[j], HVG_FLOOR);
                    if (r > worst) worst = r;
                }
            }
            sx_free(g);
        }
        const char *iarr[3] = {"highly_variable", "present", "mean_bin"};
        for (int a = 0; a < 3; a++) {
            snprintf(p, sizeof p, "per_batch/%s/%s", cats[b], iarr[a]);
            int64_t *g = rd_i64(hf, p, &m);
            for (int64_t j = 0; j < nv; j++) {
                int64_t v = a == 0 ? t->b_hv[b * nv + j]
                            : a == 1 ? t->b_present[b * nv + j] : t->b_bin[b * nv + j];
                EXPECT(v == g[j], "%s batch %s %s[%s]: %lld, golden %lld", c->name,
                              cats[b], iarr[a], vn[j], (long long)v, (long long)g[j]);
            }
            sx_free(g);
        }
        snprintf(p, sizeof p, "per_batch/%s/bin_edges_left", cats[b]);
        double *el = rd_f64(hf, p, &m);
        snprintf(p, sizeof p, "per_batch/%s/bin_edges_right", cats[b]);
        double *er = rd_f64(hf, p, &m);
        /* pandas labels the intervals with edges rounded to 3 fractional digits */
        for (int64_t i = 0; i < m && i < 20; i++) {
            double l = round_frac(t->b_edges[b * 21 + i]), r = round_frac(t->b_edges[b * 21 + i + 1]);
            EXPECT(fabs(l - el[i]) <= 1e-12 * (1 + fabs(el[i])), "%s batch %s left edge "
                          "%lld: %.17g (raw %.17g), golden %.17g", c->name, cats[b], (long long)i,
                          l, t->b_edges[b * 21 + i], el[i]);
            EXPECT(fabs(r - er[i]) <= 1e-12 * (1 + fabs(er[i])), "right edge %lld", (long long)i);
        }
        sx_free(el);
        sx_free(er);
    }
    /* combined table */
    int64_t m;
    const char *carr[3] = {"combined/means", "combined/dispersions", "combined/dispersions_norm"};
    const double *cm[3] = {t->means, t->dispersions, t->dispersions_norm};
    for (int a = 0; a < 3; a++) {
        double *g = rd_f64(hf, carr[a], &m);
        for (int64_t j = 0; j < nv; j++) {
            EXPECT(same_or_close(cm[a][j], g[j], TOL_HVG_REL), "%s %s[%s]: %.17g vs %.17g",
                          c->name, carr[a], vn[j], cm[a][j], g[j]);
            if (!isnan(g[j])) {
                double r = sx_test_reldiff(cm[a][j], g[j], HVG_FLOOR);
                if (r > worst) worst = r;
            }
        }
        sx_free(g);
    }
    int64_t *nbt = rd_i64(hf, "combined/highly_variable_nbatches", &m);
    int64_t *inter = rd_i64(hf, "combined/highly_variable_intersection", &m);
    int64_t *hvs = rd_i64(hf, "combined/highly_variable", &m);
    for (int64_t j = 0; j < nv; j++) {
        EXPECT(nbt[j] == t->nbatches[j], "mismatch %lld vs %lld at line %d", (long long)(nbt[j]), (long long)(t->nbatches[j]), __LINE__);
        EXPECT(inter[j] == t->intersection[j], "mismatch %lld vs %lld at line %d", (long long)(inter[j]), (long long)(t->intersection[j]), __LINE__);
        EXPECT(hvs[j] == t->highly_variable[j], "%s highly_variable[%s]", c->name, vn[j]);
    }
    int64_t nr;
    char **rank = rd_strings(hf, "combined/rank_order_genes", &nr);
    ck_assert_int_eq(nr, nv);
    for (int64_t r = 0; r < nr; r++)
        EXPECT(strcmp(rank[r], vn[t->rank_order[r]]) == 0, "%s rank %lld: %s, golden %s",
                      c->name, (long long)r, vn[t->rank_order[r]], rank[r]);
    fprintf(stderr, "  %s HVG: %lld genes, %lld batches, selected %lld, max rel diff %.3g\n",
            c->name, (long long)nv, (long long)ncat, (long long)t->n_selected, worst);
    sx_h5_free_strings(rank, nr);
    sx_free(nbt);
    sx_free(inter);
    sx_free(hvs);
    sx_hvg_table_free(t);
    sx_free(dom);
    sx_csr_free(X);
    sx_free(ip);
    sx_free(ix);
    sx_free(dv);
    sx_free(codes);
    sx_h5_free_strings(vn, nv);
    sx_h5_free_strings(cats, ncat);
    H5Fclose(lf);
    H5Fclose(hf);
}

/* scaled_<variant>.h5: genes in model order, matrix, MaxAbs per batch */
static void check_scaled(const gcase *c, const char *file, const sx_dataset *d,
                         const sx_prep_result *res)
{
    hid_t f = open_golden(c->name, file);
    int64_t n, m, nm;
    char **vn = rd_strings(f, "var_names", &m);
    expect_names(vn, m, d->var->index, d->var->n_rows, file);
    char **obs = rd_strings(f, "obs_names", &n);
    expect_names(obs, n, d->obs->index, d->obs->n_rows, file);
    double *ma = rd_f64(f, "maxabs", &nm);
    ck_assert_int_eq(res->scale_rows, res->n_domains);
    ck_assert_int_eq(nm, (int64_t)res->scale_rows * m);
    double worst = 0;
    for (int64_t k = 0; k < nm; k++) {
        double r = sx_test_reldiff(res->scale[k], ma[k], 1e-30);
        if (ma[k] == 0) r = res->scale[k] == 0 ? 0 : 1;
        if (r > worst) worst = r;
    }
    EXPECT(worst <= TOL_SCALE_REL, "%s maxabs rel diff %.3g", file, worst);
    fprintf(stderr, "  %s %s: %lld x %lld, maxabs max rel diff %.3g\n", c->name, file,
            (long long)n, (long long)m, worst);
    if (sx_h5_exists(f, "X")) {
        expect_csr(f, "X", d->X, NULL, n, file);
    } else {
        int64_t nr;
        int64_t *rows = rd_i64(f, "X_rows", &nr);
        expect_csr(f, "X_partial", d->X, rows, nr, file);
        sx_free(rows);
    }
    /* checksums over every row */
    int64_t ncs;
    double *cs = rd_f64(f, "cell_sums", &ncs);
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t k = d->X->indptr[i]; k < d->X->indptr[i + 1]; k++) s += d->X->data[k];
        EXPECT(fabs(s - cs[i]) <= 1e-4 * (1 + fabs(cs[i])), "%s cell_sums[%lld] %.9g vs %.9g",
                      file, (long long)i, s, cs[i]);
    }
    sx_free(cs);
    sx_free(ma);
    sx_h5_free_strings(vn, m);
    sx_h5_free_strings(obs, n);
    H5Fclose(f);
}

/* The var table the pipeline writes (scanpy's columns) against hvg.h5 combined/, gene by
 * gene through the names: the subset variant carries the selected genes, literal all.
 * Unlike check_hvg_alone, the input here is our own log-normalized matrix, whose float32
 * values differ from numpy's by up to ~1e-6 (one ulp of log1p); through the per-bin z-score
 * that is ~3e-7 absolute in dispersions_norm, whose values are O(1). So the relative
 * tolerance is taken against at least VAR_FLOOR: 1e-4 relative above 0.01, 1e-6 absolute
 * below it. */
#define VAR_FLOOR 1e-2
static void check_var_hvg(const gcase *c, const sx_dataset *d)
{
    hid_t hf = open_golden(c->name, "hvg.h5");
    int64_t nv, m;
    char **vn = rd_strings(hf, "var_names", &nv);
    const char *fcol[3] = {"means", "dispersions", "dispersions_norm"};
    const char *icol[3] = {"highly_variable_nbatches", "highly_variable_intersection",
                           "highly_variable"};
    double *gf[3];
    int64_t *gi[3];
    char p[128];
    for (int a = 0; a < 3; a++) {
        snprintf(p, sizeof p, "combined/%s", fcol[a]);
        gf[a] = rd_f64(hf, p, &m);
        snprintf(p, sizeof p, "combined/%s", icol[a]);
        gi[a] = rd_i64(hf, p, &m);
    }
    const sx_column *cf[3], *ci[3];
    for (int a = 0; a < 3; a++) {
        cf[a] = sx_frame_col(d->var, fcol[a]);
        ci[a] = sx_frame_col(d->var, icol[a]);
        EXPECT(cf[a] && ci[a], "%s: var lacks %s / %s", c->name, fcol[a], icol[a]);
    }
    ck_assert_int_eq(ci[0]->kind, SX_COL_INT);
    ck_assert_int_eq(ci[1]->kind, SX_COL_BOOL);
    ck_assert_int_eq(ci[2]->kind, SX_COL_BOOL);
    double worst = 0;
    int64_t j = 0; /* var is a subsequence of the golden genes, same order */
    for (int64_t k = 0; k < d->var->n_rows; k++, j++) {
        while (j < nv && strcmp(vn[j], d->var->index[k]) != 0) j++;
        EXPECT(j < nv, "%s: var gene '%s' not in hvg.h5 (or out of order)", c->name,
               d->var->index[k]);
        for (int a = 0; a < 3; a++) {
            double x = cf[a]->f64[k], g = gf[a][j];
            EXPECT(isfinite(g) ? sx_test_reldiff(x, g, VAR_FLOOR) <= TOL_HVG_REL
                               : same_or_close(x, g, TOL_HVG_REL),
                   "%s var %s[%s]: %.17g, golden %.17g", c->name, fcol[a], vn[j], x, g);
            if (isfinite(g)) {
                double r = sx_test_reldiff(x, g, VAR_FLOOR);
                if (r > worst) worst = r;
            }
        }
        EXPECT(ci[0]->i64[k] == gi[0][j], "%s nbatches[%s]", c->name, vn[j]);
        EXPECT(ci[1]->b[k] == gi[1][j], "%s intersection[%s]", c->name, vn[j]);
        EXPECT(ci[2]->b[k] == gi[2][j], "%s highly_variable[%s]", c->name, vn[j]);
    }
    fprintf(stderr, "  %s var table (%lld genes): HVG columns max rel diff %.3g\n", c->name,
            (long long)d->var->n_rows, worst);
    for (int a = 0; a < 3; a++) {
        sx_free(gf[a]);
        sx_free(gi[a]);
    }
    sx_h5_free_strings(vn, nv);
    H5Fclose(hf);
}

static void run_case(const gcase *c)
{
    sx_h5_quiet();
    fprintf(stderr, "case %s\n", c->name);
    check_hvg_alone(c);
    sx_dataset *d = NULL;
    sx_prep_result res;
    prep_case(c, SX_HVG_SUBSET, 0, &d, &res);
    check_lognorm(c, d, &res);
    check_scaled(c, "scaled_hvg_subset.h5", d, &res);
    /* HVG columns of the subset's var */
    hid_t hf = open_golden(c->name, "hvg.h5");
    int64_t ns;
    char **sel = rd_strings(hf, "combined/selected_genes_in_order", &ns);
    expect_names(sel, ns, d->var->index, d->var->n_rows, "HVG set and order");
    const sx_column *hvc = sx_frame_col(d->var, "highly_variable");
    ck_assert_ptr_nonnull(hvc);
    for (int64_t j = 0; j < ns; j++) ck_assert_int_eq(hvc->b[j], 1);
    check_var_hvg(c, d);
    sx_h5_free_strings(sel, ns);
    H5Fclose(hf);
    sx_prep_result_free(&res);
    sx_dataset_free(d);

    prep_case(c, SX_HVG_LITERAL, 97, &d, &res);
    check_scaled(c, "scaled_literal.h5", d, &res);
    check_var_hvg(c, d);
    sx_prep_result_free(&res);
    sx_dataset_free(d);
}

START_TEST(test_pbmc) { run_case(&CASES[0]); }
END_TEST
START_TEST(test_cellbench) { run_case(&CASES[1]); }
END_TEST
START_TEST(test_pancreas) { run_case(&CASES[2]); }
END_TEST
START_TEST(test_atac) { run_case(&CASES[3]); }
END_TEST

/* --scale global (SCALEX >= 1.0.3: one MaxAbsScaler over all cells). Truth from the golden
 * files alone: the global maximum of a gene is the largest of its per-batch maxima
 * (scaled_hvg_subset.h5 maxabs), and the scaled value is sklearn's fl32(x * fl32(1 / a)) of
 * the golden log-normalized value. */
START_TEST(test_scale_global)
{
    sx_h5_quiet();
    const gcase *c = &CASES[2]; /* pancreas: two batches with different maxima */
    sx_dataset *d = load_input(c);
    sx_prep_opts o;
    sx_prep_opts_init(&o);
    o.scale = SX_SCALE_GLOBAL;
    sx_prep_result res;
    sx_status st = {0};
    ck_assert_msg(sx_prep_run(d, &o, &res, NULL, &st) == SX_OK, "%s", st.msg);
    hid_t sf = open_golden(c->name, "scaled_hvg_subset.h5");
    hid_t lf = open_golden(c->name, "lognorm.h5");
    int64_t ns, nl, nm, n_ip, n_ix, n_d;
    char **sel = rd_strings(sf, "var_names", &ns);
    char **all = rd_strings(lf, "var_names", &nl);
    double *ma = rd_f64(sf, "maxabs", &nm);
    int64_t *ip = rd_i64(lf, "X/indptr", &n_ip);
    int64_t *ix = rd_i64(lf, "X/indices", &n_ix);
    double *dv = rd_f64(lf, "X/data", &n_d);
    expect_names(sel, ns, d->var->index, d->var->n_rows, "global: genes");
    ck_assert_int_eq(res.scale_mode, SX_SCALE_GLOBAL);
    ck_assert_int_eq(res.scale_rows, 1);
    int64_t nb = nm / ns;
    ck_assert_int_eq(nb, 2);
    double *ga = sx_mallocarray((size_t)ns, sizeof(double));
    double worst_a = 0;
    for (int64_t j = 0; j < ns; j++) {
        ga[j] = 0;
        for (int64_t b = 0; b < nb; b++)
            if (ma[b * ns + j] > ga[j]) ga[j] = ma[b * ns + j];
        double r = ga[j] == 0 ? (res.scale[j] != 0) : fabs(res.scale[j] - ga[j]) / ga[j];
        if (r > worst_a) worst_a = r;
    }
    ck_assert_msg(worst_a <= TOL_SCALE_REL, "global maxabs rel diff %.3g", worst_a);
    /* golden column -> selected position */
    int64_t *pos = sx_mallocarray((size_t)nl, sizeof(int64_t));
    for (int64_t j = 0, k = 0; j < nl; j++) {
        pos[j] = k < ns && strcmp(all[j], sel[k]) == 0 ? k++ : -1;
    }
    ck_assert_int_eq(n_ip - 1, d->X->n_rows);
    double worst = 0;
    for (int64_t i = 0; i < n_ip - 1; i++) {
        int64_t w = d->X->indptr[i];
        for (int64_t k = ip[i]; k < ip[i + 1]; k++) {
            int64_t j = pos[ix[k]];
            if (j < 0) continue;
            EXPECT(w < d->X->indptr[i + 1] && d->X->indices[w] == j, "global: row %lld "
                   "structure differs at column %lld", (long long)i, (long long)j);
            float a = (float)(ga[j] == 0 ? 1 : ga[j]);
            float want = (float)dv[k] * (1.f / a);
            double e = fabs((double)want - d->X->data[w]);
            if (e > worst) worst = e;
            w++;
        }
        EXPECT(w == d->X->indptr[i + 1], "global: row %lld has extra entries", (long long)i);
    }
    ck_assert_msg(worst <= TOL_MATRIX_ABS, "global scaled X max abs diff %.3g", worst);
    fprintf(stderr, "  %s --scale global: maxabs rel diff %.3g, X max abs diff %.3g\n", c->name,
            worst_a, worst);
    sx_free(pos);
    sx_free(ga);
    sx_free(ma);
    sx_free(ip);
    sx_free(ix);
    sx_free(dv);
    sx_h5_free_strings(sel, ns);
    sx_h5_free_strings(all, nl);
    H5Fclose(sf);
    H5Fclose(lf);
    sx_prep_result_free(&res);
    sx_dataset_free(d);
}
END_TEST

/* normalize_total + log1p alone: the input counts restricted to the golden kept cells and
 * genes (subsequences in input order) give numpy's float32 totals exactly and the golden
 * log-normalized matrix. */
static int64_t *subseq(char *const *all, int64_t n_all, char **want, int64_t n_want)
{
    int64_t *idx = sx_mallocarray((size_t)(n_want ? n_want : 1), sizeof(int64_t));
    int64_t j = 0;
    for (int64_t i = 0; i < n_all && j < n_want; i++)
        if (strcmp(all[i], want[j]) == 0) idx[j++] = i;
    EXPECT(j == n_want, "golden names are not a subsequence of the input (%lld of %lld)",
                  (long long)j, (long long)n_want);
    return idx;
}

START_TEST(test_normalize_totals)
{
    sx_h5_quiet();
    for (int ci = 0; ci < 3; ci++) {
        const gcase *c = &CASES[ci];
        sx_dataset *d = load_input(c);
        hid_t f = open_golden(c->name, "lognorm.h5");
        int64_t n, g, nt;
        char **obs = rd_strings(f, "obs_names", &n);
        char **var = rd_strings(f, "var_names", &g);
        double *tot = rd_f64(f, "total_counts", &nt);
        int64_t *rows = subseq(d->obs->index, d->obs->n_rows, obs, n);
        int64_t *cols = subseq(d->var->index, d->var->n_rows, var, g);
        sx_status st = {0};
        EXPECT(sx_dataset_take_obs(d, rows, n, &st) == SX_OK, "%s", st.msg);
        EXPECT(sx_dataset_take_vars(d, cols, g, &st) == SX_OK, "%s", st.msg);
        double *mine = sx_mallocarray((size_t)n, sizeof(double));
        double after = sx_prep_normalize_total(d->X, 0, mine);
        ck_assert(after == 10000.0);
        for (int64_t i = 0; i < n; i++)
            EXPECT(mine[i] == tot[i], "%s total[%lld] %.9g, golden %.9g", c->name,
                          (long long)i, mine[i], tot[i]);
        sx_prep_log1p(d->X);
        expect_csr(f, "X", d->X, NULL, n, "normalize_total + log1p alone");
        sx_free(mine);
        sx_free(rows);
        sx_free(cols);
        sx_free(tot);
        sx_h5_free_strings(obs, n);
        sx_h5_free_strings(var, g);
        H5Fclose(f);
        sx_dataset_free(d);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("prep_golden");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_pbmc);
    tcase_add_test(tc, test_cellbench);
    tcase_add_test(tc, test_pancreas);
    tcase_add_test(tc, test_atac);
    tcase_add_test(tc, test_normalize_totals);
    tcase_add_test(tc, test_scale_global);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
