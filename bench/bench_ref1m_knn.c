/* bench_ref1m_knn — the resident index of a registered reference against exact search, on a
 * real query latent (issue 15: "recall and label agreement against exact ... on the 1M
 * reference"). Opens the reference as a job runner does (sx_reference_load: reference.map
 * with its search index when the daemon has written one; else the index and the label
 * calibrations are built here, as a first load would, and timed), reads the query latent of a finished map job (its adata.h5ad
 * obsm/latent; the rows obs 'projection' calls query), draws a seeded sample of them and prints for them: the index search's
 * and exact search's wall and CPU time, the recall of the index's k = 30 against exact, and
 * the share of cells whose 5-NN majority label (ties to the lowest category, as the
 * transfer's vote) equals exact's. Figures only: never a test (bench/bench_ref1m.sh runs it).
 *
 * usage: bench_ref1m_knn REFDIR QUERY.h5ad [n_sample] [threads] [label]
 *   defaults 2000 cells, 2 threads, label cell_type. REFDIR: the folder holding reference.h5
 *   (and reference.map), e.g. the daemon's copy of a registered reference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sx_alloc.h"
#include "sx_h5.h"
#include "sx_knn.h"
#include "sx_pipeline.h"

#define K 30
#define KV 5

static double now(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* majority label among the first KV neighbours of row q (ties: lowest code) */
static int vote(const sx_knn *nb, int64_t q, const int32_t *codes, int n_cat)
{
    int cnt[256] = {0}, best = 0;
    for (int j = 0; j < KV; j++) {
        int c = codes[nb->idx[q * nb->k + j]];
        if (c >= 0 && c < n_cat && c < 256) cnt[c]++;
    }
    for (int c = 1; c < n_cat && c < 256; c++)
        if (cnt[c] > cnt[best]) best = c;
    return best;
}

static void die(const char *what, const sx_status *st)
{
    fprintf(stderr, "bench_ref1m_knn: %s: %s\n", what, st->msg);
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_ref1m_knn REFDIR QUERY.h5ad [n_sample] [threads] [label]\n");
        return 2;
    }
    int64_t ns = argc > 3 ? atoll(argv[3]) : 2000;
    int th = argc > 4 ? atoi(argv[4]) : 2;
    const char *label = argc > 5 ? argv[5] : "cell_type";
    sx_status st;
    sx_status_clear(&st);
    double w0 = now(CLOCK_MONOTONIC);
    sx_reference *r = sx_reference_load(argv[1], &st);
    if (!r) die("reference", &st);
    printf("reference: %lld cells, dim %d, opened in %.2f s (%s), resident index: %s\n",
           (long long)r->n_cells, r->dim, now(CLOCK_MONOTONIC) - w0,
           r->mapped ? "reference.map" : "reference.h5", r->index ? "yes" : "none");
    sx_knn_opts o;
    sx_knn_opts_init(&o);
    o.n_threads = th;
    if (!r->index) {
        double b0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        if (sx_reference_index_build(r, &o, &st) != SX_OK) die("index", &st);
        printf("index built here: %.2f s wall, %.2f CPU-s\n", now(CLOCK_MONOTONIC) - b0,
               now(CLOCK_PROCESS_CPUTIME_ID) - c0);
    }
    if (sx_reference_calib_missing(r)) { /* the other part of a first load */
        double b0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        if (sx_reference_calib_build(r, th, &st) != SX_OK) die("calibrations", &st);
        printf("label calibrations fitted here (%d): %.2f s wall, %.2f CPU-s\n", r->n_calibs,
               now(CLOCK_MONOTONIC) - b0, now(CLOCK_PROCESS_CPUTIME_ID) - c0);
    }
    hid_t f = sx_h5_open_ro(argv[2], &st);
    if (f < 0) die("query", &st);
    double *lat = NULL;
    int64_t nv = 0;
    if (sx_h5_read_f64(f, "obsm/latent", &lat, &nv, &st) != SX_OK) die("query latent", &st);
    int64_t nrow = nv / r->dim, nq = 0, *code = NULL, ncode = 0, want = -1;
    /* a map's adata.h5ad holds the reference cells too (obs 'projection'): queries only */
    char **cats = NULL;
    int64_t ncat = 0;
    if (sx_h5_exists(f, "obs/projection/codes") &&
        sx_h5_read_strings(f, "obs/projection/categories", &cats, &ncat, &st) == SX_OK &&
        sx_h5_read_i64(f, "obs/projection/codes", &code, &ncode, &st) == SX_OK && ncode == nrow)
        for (int64_t c = 0; c < ncat; c++)
            if (!strcmp(cats[c], "query")) want = c;
    sx_h5_free_strings(cats, ncat);
    H5Fclose(f);
    int64_t *ids = sx_malloc((size_t)(nrow > 0 ? nrow : 1) * sizeof *ids);
    for (int64_t i = 0; i < nrow; i++)
        if (want < 0 || code[i] == want) ids[nq++] = i;
    sx_free(code);
    printf("query latent: %lld rows, %lld query cells\n", (long long)nrow, (long long)nq);
    if (ns > nq) ns = nq;
    /* a seeded sample without replacement: partial Fisher-Yates over the query rows */
    double *q = sx_malloc((size_t)(ns * r->dim) * sizeof *q);
    srand48(7);
    for (int64_t i = 0; i < ns; i++) {
        int64_t j = i + (int64_t)(drand48() * (double)(nq - i));
        int64_t t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
        memcpy(q + i * r->dim, lat + ids[i] * r->dim, (size_t)r->dim * sizeof *q);
    }
    double a0 = now(CLOCK_MONOTONIC), a1 = now(CLOCK_PROCESS_CPUTIME_ID);
    sx_knn *ap = sx_knn_search_with(r->index, r->latent, r->n_cells, q, ns, r->dim, K, &o, NULL, &st);
    if (!ap) die("index search", &st);
    double aw = now(CLOCK_MONOTONIC) - a0, ac = now(CLOCK_PROCESS_CPUTIME_ID) - a1;
    a0 = now(CLOCK_MONOTONIC), a1 = now(CLOCK_PROCESS_CPUTIME_ID);
    sx_knn *ex = sx_knn_exact(r->latent, r->n_cells, q, ns, r->dim, K, &o, NULL, &st);
    if (!ex) die("exact search", &st);
    double ew = now(CLOCK_MONOTONIC) - a0, ec = now(CLOCK_PROCESS_CPUTIME_ID) - a1;
    sx_column *c = r->obs ? sx_frame_col(r->obs, label) : NULL;
    int64_t agree = 0;
    if (c && c->kind == SX_COL_CATEGORICAL)
        for (int64_t i = 0; i < ns; i++)
            agree += vote(ap, i, c->codes, c->n_categories) == vote(ex, i, c->codes, c->n_categories);
    printf("query: %lld cells, sample %lld, k %d, %d threads\n", (long long)nq, (long long)ns, K, th);
    printf("index search  %7.3f s wall %7.3f CPU-s  (%.1f us CPU per query)\n", aw, ac, 1e6 * ac / ns);
    printf("exact search  %7.3f s wall %7.3f CPU-s  (%.1f us CPU per query)\n", ew, ec, 1e6 * ec / ns);
    printf("recall@%d of the index against exact: %.4f\n", K, sx_knn_recall(ap, ex));
    if (c && c->kind == SX_COL_CATEGORICAL)
        printf("%d-NN majority '%s' equal to exact's: %.4f (%lld of %lld cells)\n", KV, label,
               (double)agree / (double)ns, (long long)agree, (long long)ns);
    else
        printf("no categorical obs column '%s' in the reference: no label agreement\n", label);
    sx_knn_free(ap);
    sx_knn_free(ex);
    sx_free(ids);
    sx_free(q);
    sx_free(lat);
    sx_reference_free(r);
    return 0;
}
