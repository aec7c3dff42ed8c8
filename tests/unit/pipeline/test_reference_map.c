/* sx_reference_map: the flat map of a reference gives back exactly what reference.h5 holds
 * (the HDF5 file, read by the ordinary loader, is the truth), is ignored once reference.h5
 * changes, a damaged map is refused without harm (the loader falls back to the HDF5), and
 * several processes preparing one map at once (two daemons on one data dir) all succeed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sx_knn.h"
#include "sx_pipeline.h"
#include "sx_pipeline_ctx.h"
#include "sx_pipeline_internal.h"
#include "sx_test.h"

#define N 300
#define DIM 10

static char dir[256];

/* a small reference written by the pipeline's own reference writer */
static void make_reference(void)
{
    snprintf(dir, sizeof dir, "%s/refmap-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    sx_status st;
    sx_nn_config cfg;
    sx_nn_config_default(&cfg, 50, 2);
    cfg.n_hidden = 16;
    sx_nn_model *m = sx_nn_model_new(&cfg, 7, &st);
    ck_assert_ptr_nonnull(m);
    char *genes[50];
    for (int g = 0; g < 50; g++) {
        genes[g] = malloc(16);
        snprintf(genes[g], 16, "Gene%d", g);
    }
    static const char *doms[] = {"b1", "b2"};
    double scale[2 * 3] = {1, 2.5, -3, 0.125, 7, 1e-9};
    ck_assert_int_eq(sx_nn_model_set_genes(m, (const char *const *)genes, 50, &st), SX_OK);
    ck_assert_int_eq(sx_nn_model_set_domains(m, doms, 2, &st), SX_OK);
    ck_assert_int_eq(sx_nn_model_set_scale(m, scale, 3, &st), SX_OK);
    ck_assert_int_eq(sx_nn_model_set_prep_json(m, "{\"target_sum\": 10000}", &st), SX_OK);
    for (int g = 0; g < 50; g++) free(genes[g]);
    char *names[N];
    const char *types[N], *batches[N];
    static const char *kinds[] = {"alpha", "beta", "delta", "ductal é"};
    double latent[N * DIM];
    float umap[N * 2];
    for (int i = 0; i < N; i++) {
        names[i] = malloc(32);
        snprintf(names[i], 32, "cell-%d", i);
        types[i] = kinds[(i * 7) % 4];
        batches[i] = i < N / 2 ? "b1" : "b2";
        for (int k = 0; k < DIM; k++) latent[i * DIM + k] = (double)(i * 31 + k) / 17.0 - 50.0;
        umap[2 * i] = (float)i * 0.5f;
        umap[2 * i + 1] = -(float)i;
    }
    sx_frame *obs = sx_frame_new(N, (const char *const *)names, &st);
    ck_assert_ptr_nonnull(obs);
    ck_assert_int_eq(sx_frame_add_categorical_from_strings(obs, "cell_type", types, 1, &st), SX_OK);
    ck_assert_int_eq(sx_frame_add_categorical_from_strings(obs, "batch", batches, 1, &st), SX_OK);
    char *file = sx_pl_join(dir, "reference.h5");
    ck_assert_int_eq(sx_pl_reference_write(file, m, obs, latent, DIM, umap, 1.5, 0.9, &st), SX_OK);
    free(file);
    sx_frame_free(obs);
    sx_nn_model_free(m);
    for (int i = 0; i < N; i++) free(names[i]);
}

static void same_names(const char *const *x, int64_t nx, const char *const *y, int64_t ny)
{
    ck_assert_int_eq(nx, ny);
    for (int64_t i = 0; i < nx; i++) ck_assert_str_eq(x[i], y[i]);
}

/* the model the map gives back: every tensor bit for bit, and its metadata */
static void same_model(const sx_nn_model *a, const sx_nn_model *b)
{
    sx_status st;
    sx_nn_config ca, cb;
    sx_nn_model_get_config(a, &ca);
    sx_nn_model_get_config(b, &cb);
    ck_assert(ca.n_genes == cb.n_genes && ca.n_hidden == cb.n_hidden &&
              ca.n_latent == cb.n_latent && ca.n_domains == cb.n_domains && ca.dtype == cb.dtype);
    ck_assert_int_eq(sx_nn_model_n_tensors(a), sx_nn_model_n_tensors(b));
    for (int i = 0; i < sx_nn_model_n_tensors(a); i++) {
        const char *name = sx_nn_model_tensor_name(a, i);
        int nd;
        int64_t d[2] = {1, 1};
        ck_assert_int_eq(sx_nn_model_tensor_shape(a, name, &nd, d, &st), SX_OK);
        int64_t n = (nd > 0 ? d[0] : 1) * (nd > 1 ? d[1] : 1);
        double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
        ck_assert_int_eq(sx_nn_model_get(a, name, x, n, &st), SX_OK);
        ck_assert_int_eq(sx_nn_model_get(b, name, y, n, &st), SX_OK);
        ck_assert_mem_eq(x, y, (size_t)n * sizeof *x);
        free(x);
        free(y);
    }
    int64_t nx, ny;
    const char *const *x = sx_nn_model_genes(a, &nx), *const *y = sx_nn_model_genes(b, &ny);
    same_names(x, nx, y, ny);
    x = sx_nn_model_domains(a, &nx);
    y = sx_nn_model_domains(b, &ny);
    same_names(x, nx, y, ny);
    const double *sa = sx_nn_model_scale(a, &nx), *sb = sx_nn_model_scale(b, &ny);
    ck_assert_int_eq(nx, ny);
    if (nx) ck_assert_mem_eq(sa, sb, (size_t)(nx * ca.n_domains) * sizeof *sa);
    const char *pa = sx_nn_model_prep_json(a), *pb = sx_nn_model_prep_json(b);
    ck_assert_int_eq(pa == NULL, pb == NULL);
    if (pa) ck_assert_str_eq(pa, pb);
}

static void same_reference(const sx_reference *a, const sx_reference *b)
{
    ck_assert_int_eq(a->n_cells, b->n_cells);
    ck_assert_int_eq(a->dim, b->dim);
    ck_assert_mem_eq(a->latent, b->latent, sizeof(double) * (size_t)(a->n_cells * a->dim));
    ck_assert_mem_eq(a->umap, b->umap, sizeof(float) * (size_t)(a->n_cells * 2));
    ck_assert(a->umap_a == b->umap_a && a->umap_b == b->umap_b);
    for (int64_t i = 0; i < a->n_cells; i++) ck_assert_str_eq(a->obs->index[i], b->obs->index[i]);
    ck_assert_int_eq(a->obs->n_cols, b->obs->n_cols);
    for (int c = 0; c < a->obs->n_cols; c++) {
        const sx_column *x = &a->obs->cols[c], *y = sx_frame_col(b->obs, x->name);
        ck_assert_ptr_nonnull(y);
        char bx[64], by[64];
        for (int64_t i = 0; i < a->n_cells; i++)
            ck_assert_str_eq(sx_column_text(x, i, bx, 64), sx_column_text(y, i, by, 64));
    }
    same_model(a->model, b->model);
}

START_TEST(map_equals_hdf5)
{
    make_reference();
    sx_status st;
    sx_reference *h5 = sx_reference_load(dir, &st);
    ck_assert_ptr_nonnull(h5);
    ck_assert_ptr_null(h5->mapped); /* no map yet: read from reference.h5 */
    ck_assert_int_eq(sx_reference_map_write(h5, dir, &st), SX_OK);
    sx_reference *mp = sx_reference_load(dir, &st);
    ck_assert_ptr_nonnull(mp);
    ck_assert_ptr_nonnull(mp->mapped);
    same_reference(h5, mp);
    sx_reference_free(mp);

    /* reference.h5 rewritten (a new mtime): the old map must not be used */
    char *file = sx_pl_join(dir, "reference.h5");
    struct timespec later[2] = {{0, UTIME_OMIT}, {time(NULL) + 10, 0}};
    ck_assert_int_eq(utimensat(AT_FDCWD, file, later, 0), 0);
    ck_assert_ptr_null(sx_reference_map_open(dir, &st));
    ck_assert_int_eq(st.code, SX_ESTATE);
    mp = sx_reference_load(dir, &st);
    ck_assert_ptr_nonnull(mp);
    ck_assert_ptr_null(mp->mapped);
    sx_reference_free(mp);
    ck_assert_int_eq(sx_reference_map_write(h5, dir, &st), SX_OK);

    /* a damaged map (truncated: the model's end) is refused; the loader reads the HDF5 */
    char *map = sx_pl_join(dir, "reference.map");
    struct stat sb;
    ck_assert_int_eq(stat(map, &sb), 0);
    ck_assert_int_eq(truncate(map, sb.st_size - 40), 0);
    ck_assert_ptr_null(sx_reference_map_open(dir, &st));
    mp = sx_reference_load(dir, &st);
    ck_assert_ptr_nonnull(mp);
    ck_assert_ptr_null(mp->mapped);
    same_reference(h5, mp);
    sx_reference_free(mp);
    /* garbage of the right size with a valid header start */
    FILE *f = fopen(map, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 40, SEEK_SET);
    for (int i = 0; i < 64; i++) fputc(0xff, f);
    fclose(f);
    ck_assert_ptr_null(sx_reference_map_open(dir, &st));

    /* a whole map whose model claims sizes its file cannot hold, or whose tensors are out of
     * order: refused before anything that large is allocated; the loader reads the HDF5 */
    int64_t hdr[13], huge = (int64_t)1 << 40;
    for (int damage = 0; damage < 2; damage++) {
        ck_assert_int_eq(sx_reference_map_write(h5, dir, &st), SX_OK);
        f = fopen(map, "r+b");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fread(hdr, 8, 13, f), 13); /* the header: off_model is its last field */
        int64_t model[14];
        fseek(f, hdr[12], SEEK_SET);
        ck_assert_int_eq(fread(model, 8, 14, f), 14); /* G H Z D, dtype|n_tensors, ..., tensors_off */
        if (damage == 0) {
            fseek(f, hdr[12], SEEK_SET);
            fwrite(&huge, 8, 1, f);
        } else { /* the first two tensors' table entries swapped */
            int64_t e[6];
            fseek(f, model[13], SEEK_SET);
            ck_assert_int_eq(fread(e, 8, 6, f), 6);
            int64_t sw[6] = {e[3], e[4], e[5], e[0], e[1], e[2]};
            fseek(f, model[13], SEEK_SET);
            fwrite(sw, 8, 6, f);
        }
        fclose(f);
        ck_assert_ptr_null(sx_reference_map_open(dir, &st));
        ck_assert_int_eq(st.code, SX_EFORMAT);
        mp = sx_reference_load(dir, &st);
        ck_assert_ptr_nonnull(mp);
        ck_assert_ptr_null(mp->mapped);
        same_reference(h5, mp);
        sx_reference_free(mp);
    }
    sx_reference_free(h5);
    unlink(map);
    unlink(file);
    free(map);
    free(file);
    rmdir(dir);
}
END_TEST

/* the neighbours of a few query points through a reference's index (opts: one thread) */
static sx_knn *search_ref(const sx_reference *r, const double *q, int64_t nq)
{
    sx_status st;
    sx_knn_opts o;
    sx_knn_opts_init(&o);
    o.n_threads = 1;
    sx_knn *k = sx_knn_search_with(r->index, r->latent, r->n_cells, q, nq, r->dim, 10, &o, NULL, &st);
    ck_assert_msg(k, "%s", st.msg);
    return k;
}

/* The map's header words (int64 each): ..., [13] off_index, [14] len_index, [15] off_calib,
 * [16] len_calib. */
static void map_header_words(const char *map, int64_t hdr[17])
{
    FILE *f = fopen(map, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fread(hdr, 8, 17, f), 17);
    fclose(f);
}

/* Write r's map anew into dir, then overwrite n bytes at offset off with p (a damage). */
static void damaged_map(const sx_reference *r, const char *map, int64_t off, const void *p,
                        size_t n)
{
    sx_status st;
    ck_assert_int_eq(sx_reference_map_write(r, dir, &st), SX_OK);
    FILE *f = fopen(map, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, off, SEEK_SET), 0);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* The test reference's folder removed (its map and reference.h5). */
static void remove_reference(void)
{
    char *map = sx_pl_join(dir, "reference.map"), *file = sx_pl_join(dir, "reference.h5");
    unlink(map), unlink(file);
    free(map), free(file);
    rmdir(dir);
}

/* A map written with a reference's search index (version 3) gives it back in place: the
 * mapped index searches exactly as the built one, and counts in the footprint. A damaged
 * index section (cut short, a cell id out of range) is left out and the reference still maps;
 * a map of version 2 is refused (the loader reads reference.h5; the daemon rewrites it). */
START_TEST(map_keeps_search_index)
{
    make_reference();
    sx_status st;
    sx_reference *h5 = sx_reference_load(dir, &st);
    ck_assert_ptr_nonnull(h5);
    ck_assert_ptr_null(h5->index);
    ck_assert_int_eq(sx_reference_index_missing(h5), 0); /* 300 cells: searches stay exact */
    ck_assert_int_eq(sx_reference_index_build(h5, NULL, &st), SX_OK);
    ck_assert_ptr_null(h5->index);
    sx_reference big = {.n_cells = 100000};
    ck_assert_int_eq(sx_reference_index_missing(&big), 1);
    sx_knn_opts o;
    sx_knn_opts_init(&o);
    o.method = SX_KNN_APPROX; /* a graph for the small test reference */
    o.n_threads = 1;
    ck_assert_int_eq(sx_reference_index_build(h5, &o, &st), SX_OK);
    ck_assert_ptr_nonnull(h5->index);
    ck_assert_uint_gt(sx_reference_index_bytes(h5), (size_t)N * DIM * sizeof(float));
    ck_assert_int_eq(sx_reference_map_write(h5, dir, &st), SX_OK);
    double q[5 * DIM];
    for (int i = 0; i < 5 * DIM; i++) q[i] = (double)((i * 37) % 101) / 3.0 - 17.0;
    sx_knn *want = search_ref(h5, q, 5);
    sx_reference *mp = sx_reference_load(dir, &st);
    ck_assert_ptr_nonnull(mp);
    ck_assert_ptr_nonnull(mp->mapped);
    ck_assert_ptr_nonnull(mp->index);
    ck_assert_uint_eq(sx_reference_index_bytes(mp), sx_reference_index_bytes(h5));
    sx_knn *got = search_ref(mp, q, 5);
    ck_assert_mem_eq(got->idx, want->idx, 5 * 10 * sizeof *got->idx);
    ck_assert_mem_eq(got->dist, want->dist, 5 * 10 * sizeof *got->dist);
    sx_knn_free(got);
    sx_reference_free(mp);
    char *map = sx_pl_join(dir, "reference.map");
    int64_t hdr[17];
    map_header_words(map, hdr);
    ck_assert_int_gt(hdr[13], 0);
    for (int damage = 0; damage < 3; damage++) {
        if (damage == 0) { /* the section's length cut short */
            int64_t len = hdr[14] - 16;
            damaged_map(h5, map, 14 * 8, &len, 8);
        } else if (damage == 1) { /* a graph edge to cell N: after the 40-byte header, the
                                   * float copy and the N + 1 offsets */
            int32_t bad = N;
            damaged_map(h5, map, hdr[13] + 40 + ((N * DIM * 4 + 7) & ~7) + (N + 1) * 8 + 4 * 17,
                        &bad, 4);
        } else { /* a version 2 map */
            uint32_t v2 = 2;
            damaged_map(h5, map, 8, &v2, 4);
        }
        mp = sx_reference_load(dir, &st);
        ck_assert_ptr_nonnull(mp);
        if (damage < 2) { /* mapped, without the index: searches do without */
            ck_assert_ptr_nonnull(mp->mapped);
            ck_assert_ptr_null(mp->index);
        } else {
            ck_assert_ptr_null(mp->mapped);
            ck_assert_ptr_null(sx_reference_map_open(dir, &st));
            ck_assert_int_eq(st.code, SX_EFORMAT);
        }
        same_reference(h5, mp);
        sx_reference_free(mp);
    }
    sx_knn_free(want);
    sx_reference_free(h5);
    free(map);
    remove_reference();
}
END_TEST

/* serialized bytes of r's calibrations (the map's section), for comparing two references */
typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

static int put_buf(void *user, const void *p, size_t n)
{
    buf *b = user;
    if (b->n + n > b->cap) {
        b->cap = 2 * (b->n + n);
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

static buf calib_bytes(const sx_reference *r)
{
    buf b = {0};
    ck_assert_int_eq(sx_reference_calib_write(r, put_buf, &b), 0);
    ck_assert_uint_eq(b.n, sx_reference_calib_bytes(r));
    return b;
}

/* The transfer a job does by default (its options from the option table) of q onto r,
 * with r's stored calibration when use_stored, else fitted in the call. */
static sx_transfer_result *default_transfer(const sx_reference *r, const double *q, int64_t nq,
                                            int threads, int use_stored)
{
    sx_status st;
    sx_pipeline_opts *po = sx_pipeline_opts_new();
    sx_job_spec job = {.type = SX_JOB_PROJECT, .opts = po, .threads = threads};
    sx_pl_settings set;
    ck_assert_int_eq(sx_pl_settings_resolve(&job, &set, &st), SX_OK);
    sx_transfer_opts to;
    sx_pl_transfer_opts(&set, r->n_cells, &to);
    int32_t *bc = sx_pl_batch_codes(sx_frame_col(r->obs, "batch"), r->n_cells, &st);
    ck_assert_ptr_nonnull(bc);
    to.ref_batch = bc;
    to.calib = use_stored ? sx_reference_calib_find(r, "cell_type", &to) : NULL;
    if (use_stored) ck_assert_ptr_nonnull(to.calib);
    const char **rl = calloc(r->n_cells, sizeof *rl);
    sx_pl_ref_label_texts(sx_frame_col(r->obs, "cell_type"), r->n_cells, rl);
    sx_transfer_result *t = sx_transfer_knn(r->latent, r->n_cells, rl, q, nq, r->dim, &to, NULL, &st);
    ck_assert_msg(t, "%s", st.msg);
    ck_assert_int_eq(t->calib_given, use_stored);
    free(rl);
    free(bc);
    sx_pipeline_opts_free(po);
    return t;
}

/* Label-transfer calibrations fitted when a reference is loaded (one per label column, not
 * the batches) give a job exactly what fitting in the job gives (confidence, mapping score,
 * Unknown), also fitted on 2 threads and used on 1; they travel in the map bit for bit;
 * other options do not find them; a damaged section is left out (jobs fit their own) and
 * the reference still maps. */
START_TEST(map_keeps_calibrations)
{
    make_reference();
    sx_status st;
    sx_reference *h5 = sx_reference_load(dir, &st);
    ck_assert_ptr_nonnull(h5);
    ck_assert_int_eq(h5->n_calibs, 0);
    ck_assert_int_eq(sx_reference_calib_missing(h5), 1);
    ck_assert_int_eq(sx_reference_calib_build(h5, 2, &st), SX_OK);
    ck_assert_int_eq(h5->n_calibs, 1); /* cell_type; batch is not a label */
    ck_assert_int_eq(sx_reference_calib_missing(h5), 0);
    double q[40 * DIM];
    for (int i = 0; i < 40 * DIM; i++) q[i] = (double)((i * 37) % 101) * 3.0 - 150.0;
    sx_transfer_result *fit = default_transfer(h5, q, 40, 1, 0);
    sx_transfer_result *kept = default_transfer(h5, q, 40, 1, 1);
    ck_assert_int_eq(fit->n_calib, kept->n_calib);
    ck_assert_mem_eq(fit->confidence, kept->confidence, 40 * sizeof(double));
    ck_assert_mem_eq(fit->mapping_score, kept->mapping_score, 40 * sizeof(double));
    ck_assert_mem_eq(fit->pred, kept->pred, 40 * sizeof(int32_t));
    ck_assert_double_eq(fit->mapping_shift, kept->mapping_shift);
    sx_transfer_free(kept);
    /* other options: not found */
    sx_transfer_opts to;
    sx_transfer_opts_init(&to);
    ck_assert_ptr_null(sx_reference_calib_find(h5, "cell_type", &to)); /* seed 0, no batches */
    ck_assert_ptr_null(sx_reference_calib_find(h5, "batch", &to));
    /* through the map */
    ck_assert_int_eq(sx_reference_map_write(h5, dir, &st), SX_OK);
    sx_reference *mp = sx_reference_load(dir, &st);
    ck_assert_ptr_nonnull(mp);
    ck_assert_ptr_nonnull(mp->mapped);
    ck_assert_int_eq(mp->n_calibs, 1);
    buf a = calib_bytes(h5), b = calib_bytes(mp);
    ck_assert_uint_eq(a.n, b.n);
    ck_assert_mem_eq(a.p, b.p, a.n);
    kept = default_transfer(mp, q, 40, 1, 1);
    ck_assert_mem_eq(fit->confidence, kept->confidence, 40 * sizeof(double));
    ck_assert_mem_eq(fit->mapping_score, kept->mapping_score, 40 * sizeof(double));
    sx_transfer_free(kept);
    sx_reference_free(mp);
    /* damaged: a count of zero, a length cut short, a location that is not a number */
    char *map = sx_pl_join(dir, "reference.map");
    int64_t hdr[17];
    map_header_words(map, hdr);
    ck_assert_int_gt(hdr[15], 0);
    ck_assert_int_eq(hdr[16], (int64_t)a.n);
    for (int damage = 0; damage < 3; damage++) {
        if (damage == 0) {
            uint32_t zero = 0;
            damaged_map(h5, map, hdr[15], &zero, 4);
        } else if (damage == 1) {
            int64_t len = hdr[16] - 8;
            damaged_map(h5, map, 16 * 8, &len, 8);
        } else { /* the location of the first class (the last 2 x 5 doubles: loc, scale) */
            double nan = 0.0 / 0.0;
            damaged_map(h5, map, hdr[15] + hdr[16] - 8 * 2 * (4 + 1), &nan, 8);
        }
        mp = sx_reference_load(dir, &st);
        ck_assert_ptr_nonnull(mp);
        ck_assert_ptr_nonnull(mp->mapped);
        ck_assert_int_eq(mp->n_calibs, 0);
        ck_assert_int_eq(sx_reference_calib_missing(mp), 1); /* the daemon rewrites it */
        sx_reference_free(mp);
    }
    free(a.p), free(b.p);
    sx_transfer_free(fit);
    sx_reference_free(h5);
    free(map);
    remove_reference();
}
END_TEST

/* Four processes write the same map 25 times each at once: every write succeeds (a shared
 * temporary name once made one rename the other's file away: "No such file or directory"),
 * the map left is whole, and no temporary file is left behind. */
START_TEST(concurrent_writers)
{
    make_reference();
    sx_status st;
    sx_reference *h5 = sx_reference_load(dir, &st);
    ck_assert_ptr_nonnull(h5);
    pid_t kids[4];
    for (int k = 0; k < 4; k++) {
        kids[k] = fork();
        ck_assert_int_ge(kids[k], 0);
        if (kids[k] == 0) {
            int bad = 0;
            for (int i = 0; i < 25; i++) {
                sx_status cst;
                if (sx_reference_map_write(h5, dir, &cst) != SX_OK) bad++;
            }
            _exit(bad ? 1 : 0);
        }
    }
    for (int k = 0; k < 4; k++) {
        int ws = 0;
        ck_assert_int_eq(waitpid(kids[k], &ws, 0), kids[k]);
        ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "writer %d failed a write", k);
    }
    sx_reference *mp = sx_reference_load(dir, &st);
    ck_assert_ptr_nonnull(mp);
    ck_assert_ptr_nonnull(mp->mapped);
    same_reference(h5, mp);
    sx_reference_free(mp);
    sx_reference_free(h5);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    int others = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "reference.h5") || !strcmp(e->d_name, "reference.map"))
            continue;
        others++;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    ck_assert_msg(others == 0, "%d temporary files left beside the map", others);
    remove_reference();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reference_map");
    TCase *tc = tcase_create("map");
    tcase_add_test(tc, map_equals_hdf5);
    tcase_add_test(tc, concurrent_writers);
    tcase_add_test(tc, map_keeps_search_index);
    tcase_add_test(tc, map_keeps_calibrations);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
