/* sx_tenx_h5 — 10x Cell Ranger HDF5 matrices (FORMATS.md 6), read the way scanpy's
 * read_10x_h5 does.
 *
 * The file stores CSC over features x barcodes, which is byte for byte the CSR over
 * barcodes x features we want: indptr/indices/data are taken as they are, after checking
 * that they describe a valid matrix of the announced shape.
 *   v3 (Cell Ranger >= 3): group /matrix with features/{id,name,feature_type,genome,...}.
 *   v2 (Cell Ranger <= 2): one group per genome with genes/gene_names. With several genomes
 *   and no genome chosen, the genomes' genes are placed side by side (same barcodes), each
 *   gene tagged with its genome in var "genome".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

#include "sx_alloc.h"
#include "sx_h5.h"
#include "sx_h5x.h"
#include "sx_io.h"
#include "sx_io_internal.h"
#include "sx_log.h"

/* One matrix group as read from the file. */
typedef struct {
    sx_csr *m;          /* barcodes x features */
    char **barcodes;
    int64_t n_bc;
    char **names, **ids;
    int64_t n_feat;
    /* extra per-feature string columns (v3: feature_type, genome, ...) */
    int n_extra;
    char *extra_name[16];
    char **extra[16];
} tenx_part;

static void part_free(tenx_part *p)
{
    sx_csr_free(p->m);
    sx_h5_free_strings(p->barcodes, p->n_bc);
    sx_h5_free_strings(p->names, p->n_feat);
    sx_h5_free_strings(p->ids, p->n_feat);
    for (int i = 0; i < p->n_extra; i++) {
        sx_free(p->extra_name[i]);
        sx_h5_free_strings(p->extra[i], p->n_feat);
    }
    memset(p, 0, sizeof *p);
}

/* Is the object at name a group / dataset? (H5Oopen + H5Iget_type works on HDF5 1.10
 * and later alike, unlike the versioned H5Oget_info calls.) */
static int is_kind(hid_t loc, const char *name, H5I_type_t kind)
{
    hid_t o = H5Oopen(loc, name, H5P_DEFAULT);
    if (o < 0) return 0;
    int ok = H5Iget_type(o) == kind;
    H5Oclose(o);
    return ok;
}

/* Refuse datasets compressed with a filter this process cannot decode (FORMATS 3). */
/* ... and datasets whose declared size the file cannot back or the budget does not allow
 * (h5x_check_size), before anything is read from them. */
static int check_filters(h5x_ctx *cx, hid_t g, const char *name, const char *path,
                         sx_status *st)
{
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0) return SX_OK; /* reported by the reader that needs it */
    char elem[512] = "";
    if (H5Iget_name(d, elem, sizeof elem) <= 0) snprintf(elem, sizeof elem, "%s", name);
    const char *e = elem[0] == '/' ? elem + 1 : elem;
    int rc = sx_h5_check_filters(d, path, e, 0, st);
    if (rc == SX_OK) rc = h5x_check_size(cx, d, e, st);
    H5Dclose(d);
    return rc;
}

static int64_t extent(hid_t g, const char *name);

static int read_strs(h5x_ctx *cx, hid_t g, const char *name, int64_t want, char ***out,
                     const char *path, const char *grp, sx_status *st)
{
    int64_t n = 0;
    if (!sx_h5_exists(g, name))
        return sx_status_set(st, SX_EFORMAT, "%s: dataset %s/%s is missing; the 10x file is "
                             "incomplete", path, grp, name);
    /* the length first: names are read only when there are as many as the shape says */
    if (want >= 0 && (n = extent(g, name)) != want) goto wrong_length;
    int rc = check_filters(cx, g, name, path, st);
    if (rc == SX_OK) rc = sx_h5_read_strings(g, name, out, &n, st);
    if (rc != SX_OK) return sx_status_prefix(st, "%s: %s/%s: ", path, grp, name);
    if (want >= 0 && n != want) {
        sx_h5_free_strings(*out, n);
        *out = NULL;
        goto wrong_length;
    }
    return SX_OK;
wrong_length:
    return sx_status_set(st, SX_EFORMAT, "%s: %s/%s has %lld entries, expected %lld (from "
                         "%s/shape)", path, grp, name, (long long)n, (long long)want, grp);
}

static int read_nums(h5x_ctx *cx, hid_t g, const char *name, int64_t **out, int64_t *n,
                     const char *path, const char *grp, sx_status *st)
{
    if (!sx_h5_exists(g, name))
        return sx_status_set(st, SX_EFORMAT, "%s: dataset %s/%s is missing; the 10x file is "
                             "incomplete", path, grp, name);
    int rc = check_filters(cx, g, name, path, st);
    if (rc == SX_OK) rc = sx_h5_read_i64(g, name, out, n, st);
    if (rc != SX_OK) return sx_status_prefix(st, "%s: %s/%s: ", path, grp, name);
    return SX_OK;
}

/* What sx_tenx_h5_check gathers instead of a matrix. */
typedef struct {
    const sx_progress *prog;
    int64_t nnz, n_neg;
    double sum;
} tenx_check;

static int64_t extent(hid_t g, const char *name)
{
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(d);
    return (int64_t)n;
}

/* The checks before indices and data are read (or streamed): both exist and can be
 * decoded within the budget, their lengths agree with indptr, and indptr never decreases.
 * *n_dat: the number of stored entries. */
static int big_arrays_ok(h5x_ctx *cx, hid_t g, const char *grp, const char *path, int64_t nb,
                         const int64_t *indptr, int64_t *n_dat, sx_status *st)
{
    int rc;
    if (!sx_h5_exists(g, "indices") || !sx_h5_exists(g, "data"))
        return sx_status_set(st, SX_EFORMAT, "%s: dataset %s/%s is missing; the 10x file is "
                             "incomplete", path, grp, sx_h5_exists(g, "data") ? "indices" : "data");
    if ((rc = check_filters(cx, g, "indices", path, st)) != SX_OK) return rc;
    if ((rc = check_filters(cx, g, "data", path, st)) != SX_OK) return rc;
    int64_t n_ind = extent(g, "indices");
    *n_dat = extent(g, "data");
    if (n_ind < 0 || n_ind != *n_dat || indptr[0] != 0 || indptr[nb] != *n_dat)
        return sx_status_set(st, SX_EFORMAT,
                             "%s: %s: indices (%lld), data (%lld) and indptr (starts at %lld, ends "
                             "at %lld) disagree; the file is corrupt", path, grp, (long long)n_ind,
                             (long long)*n_dat, (long long)indptr[0], (long long)indptr[nb]);
    for (int64_t i = 0; i < nb; i++)
        if (indptr[i + 1] < indptr[i])
            return sx_status_set(st, SX_EFORMAT, "%s: %s/indptr decreases at barcode %lld; the "
                                 "file is corrupt", path, grp, (long long)i);
    return SX_OK;
}

/* indices and data straight into m's final arrays (allocated for indptr's last offset), in
 * slabs of 16M entries so each is range-checked while it is in cache. Indices are read as
 * int32 whatever their stored width: libhdf5 saturates an int64 beyond int32, so an index
 * out of range stays out of range, and its stored value is read again for the message. */
static int read_entries(const h5x_ctx *cx, hid_t g, const char *grp, const char *path,
                        int64_t nf, sx_csr *m, sx_status *st)
{
    enum { SLAB = 1 << 24 };
    int64_t n = m->indptr[m->n_rows];
    sx_io_advise_huge(m->indices, (size_t)n * sizeof(int32_t));
    sx_io_advise_huge(m->data, (size_t)n * sizeof(float));
    hid_t di = H5Dopen2(g, "indices", H5P_DEFAULT), dd = H5Dopen2(g, "data", H5P_DEFAULT);
    int rc = SX_OK;
    uint32_t lim = (uint32_t)nf;
    for (int64_t a = 0; rc == SX_OK && a < n; a += SLAB) {
        int64_t len = n - a < SLAB ? n - a : SLAB;
        int32_t *ix = m->indices + a;
        if (di < 0 || dd < 0 || h5x_read_slab1_mt(di, H5T_NATIVE_INT32, a, len, ix, cx->threads) < 0 ||
            h5x_read_slab1_mt(dd, H5T_NATIVE_FLOAT, a, len, m->data + a, cx->threads) < 0) {
            rc = sx_status_set(st, SX_EFORMAT, "%s: %s: cannot read entries %lld..%lld "
                               "(truncated or corrupt file)", path, grp, (long long)a,
                               (long long)(a + len));
            break;
        }
        int out = 0;
        for (int64_t k = 0; k < len; k++) out |= (uint32_t)ix[k] >= lim; /* vectorises */
        for (int64_t k = 0; out && k < len; k++) {
            if ((uint32_t)ix[k] < lim) continue;
            int64_t stored = ix[k];
            h5x_read_slab1(di, H5T_NATIVE_INT64, a + k, 1, &stored);
            rc = sx_status_set(st, SX_EFORMAT, "%s: %s/indices[%lld] = %lld is outside 0..%lld "
                               "(features); the file is corrupt", path, grp, (long long)(a + k),
                               (long long)stored, (long long)nf - 1);
            break;
        }
    }
    if (di >= 0) H5Dclose(di);
    if (dd >= 0) H5Dclose(dd);
    return rc;
}

/* The checks read_part makes on indices and data, on slabs of 1M entries: the matrix is
 * never in memory (an upload is validated with flat memory whatever its size). */
static int stream_part(h5x_ctx *cx, hid_t g, const char *grp, const char *path, int64_t nf,
                       int64_t nb, const int64_t *indptr, tenx_check *chk, sx_status *st)
{
    int64_t n_dat = 0;
    int rc = big_arrays_ok(cx, g, grp, path, nb, indptr, &n_dat, st);
    if (rc != SX_OK) return rc;
    enum { SLAB = 1 << 20 };
    int64_t *ix = sx_mallocarray(SLAB, sizeof(int64_t));
    float *v = sx_mallocarray(SLAB, sizeof(float));
    hid_t di = H5Dopen2(g, "indices", H5P_DEFAULT), dd = H5Dopen2(g, "data", H5P_DEFAULT);
    if (!ix || !v) rc = sx_status_set(st, SX_ENOMEM, "%s: out of memory", path);
    for (int64_t a = 0; rc == SX_OK && a < n_dat; a += SLAB) {
        int64_t n = n_dat - a < SLAB ? n_dat - a : SLAB;
        if (h5x_read_slab1(di, H5T_NATIVE_INT64, a, n, ix) < 0 ||
            h5x_read_slab1(dd, H5T_NATIVE_FLOAT, a, n, v) < 0) {
            rc = sx_status_set(st, SX_EFORMAT, "%s: %s: cannot read entries %lld..%lld "
                               "(truncated or corrupt file)", path, grp, (long long)a,
                               (long long)(a + n));
            break;
        }
        for (int64_t k = 0; k < n; k++) {
            if (ix[k] < 0 || ix[k] >= nf) {
                rc = sx_status_set(st, SX_EFORMAT, "%s: %s/indices[%lld] = %lld is outside "
                                   "0..%lld (features); the file is corrupt", path, grp,
                                   (long long)(a + k), (long long)ix[k], (long long)nf - 1);
                break;
            }
            float x = v[k];
            if (!isfinite(x)) {
                int64_t b = 0;
                while (indptr[b + 1] <= a + k) b++;
                rc = sx_status_set(st, SX_EDATA, "%s: value of cell %lld, gene %lld is %s; "
                                   "remove or replace non-finite values before loading", path,
                                   (long long)b, (long long)ix[k], isnan(x) ? "NaN" : "infinite");
                break;
            }
            chk->n_neg += x < 0;
            chk->sum += x;
        }
        sx_progress_report(chk->prog, "inspect", (double)(a + n) / (double)n_dat, NULL);
    }
    chk->nnz += n_dat;
    if (di >= 0) H5Dclose(di);
    if (dd >= 0) H5Dclose(dd);
    sx_free(ix);
    sx_free(v);
    return rc;
}

/* Read the matrix of group grp (v3 "matrix", v2 "<genome>"); with chk, check it by
 * streaming instead (p->m stays NULL). */
static int read_part(h5x_ctx *cx, hid_t f, const char *grp, int v3, const char *path,
                     tenx_part *p, tenx_check *chk, sx_status *st)
{
    hid_t g = H5Gopen2(f, grp, H5P_DEFAULT);
    int64_t *shape = NULL, *indptr = NULL;
    int64_t n_shape = 0, n_ptr = 0, n_dat = 0;
    int rc = SX_OK;
    if (g < 0) return sx_status_set(st, SX_EFORMAT, "%s: cannot open group /%s", path, grp);

    if ((rc = read_nums(cx, g, "shape", &shape, &n_shape, path, grp, st)) != SX_OK) goto out;
    if (n_shape != 2 || shape[0] < 0 || shape[1] < 0 || shape[0] > INT32_MAX) {
        rc = sx_status_set(st, SX_EFORMAT, "%s: %s/shape must hold 2 sizes (features, "
                           "barcodes) below 2^31", path, grp);
        goto out;
    }
    int64_t nf = shape[0], nb = shape[1];
    /* before the names and indptr (sized from these) are read */
    if ((rc = sx_io_limit_check(&cx->budget.lim, SX_LIM_CELLS, nb, path, "barcodes (cells)",
                                st)) != SX_OK ||
        (rc = sx_io_limit_check(&cx->budget.lim, SX_LIM_GENES, nf, path, "features (genes)",
                                st)) != SX_OK)
        goto out;
    /* names first: they are small and confirm the shape before the big arrays are read */
    if ((rc = read_strs(cx, g, "barcodes", nb, &p->barcodes, path, grp, st)) != SX_OK) goto out;
    p->n_bc = nb;
    if (v3) {
        hid_t fg = H5Gopen2(g, "features", H5P_DEFAULT);
        if (fg < 0) {
            rc = sx_status_set(st, SX_EFORMAT, "%s: group %s/features is missing; the 10x file "
                               "is incomplete", path, grp);
            goto out;
        }
        rc = read_strs(cx, fg, "name", nf, &p->names, path, "matrix/features", st);
        p->n_feat = nf;
        if (rc == SX_OK) rc = read_strs(cx, fg, "id", nf, &p->ids, path, "matrix/features", st);
        /* feature_type, then the other per-feature string datasets (genome, ...) */
        static const char *const extra[] = {"feature_type", "genome", "gene_id", "interval"};
        for (size_t i = 0; rc == SX_OK && i < sizeof extra / sizeof extra[0]; i++) {
            if (!sx_h5_exists(fg, extra[i])) continue;
            if (!is_kind(fg, extra[i], H5I_DATASET)) continue;
            char **vals = NULL;
            rc = read_strs(cx, fg, extra[i], nf, &vals, path, "matrix/features", st);
            if (rc != SX_OK) break;
            p->extra[p->n_extra] = vals;
            if (!(p->extra_name[p->n_extra++] = sx_strdup(extra[i]))) {
                rc = sx_status_set(st, SX_ENOMEM, "%s: out of memory", path);
                break;
            }
        }
        H5Gclose(fg);
        if (rc != SX_OK) goto out;
    } else {
        p->n_feat = nf;
        if ((rc = read_strs(cx, g, "gene_names", nf, &p->names, path, grp, st)) != SX_OK)
            goto out;
        if ((rc = read_strs(cx, g, "genes", nf, &p->ids, path, grp, st)) != SX_OK) goto out;
    }

    /* the length before the values, as for the names (read_nums reports a missing one) */
    n_ptr = extent(g, "indptr");
    if ((n_ptr == nb + 1 || n_ptr < 0) &&
        (rc = read_nums(cx, g, "indptr", &indptr, &n_ptr, path, grp, st)) != SX_OK)
        goto out;
    if (n_ptr != nb + 1) {
        rc = sx_status_set(st, SX_EFORMAT, "%s: %s/indptr has %lld entries, expected %lld "
                           "(barcodes + 1)", path, grp, (long long)n_ptr, (long long)nb + 1);
        goto out;
    }
    if ((rc = sx_io_limit_check(&cx->budget.lim, SX_LIM_NNZ, extent(g, "data"), path,
                                "stored entries", st)) != SX_OK)
        goto out;
    if (chk) {
        rc = stream_part(cx, g, grp, path, nf, nb, indptr, chk, st);
        goto out;
    }
    if ((rc = big_arrays_ok(cx, g, grp, path, nb, indptr, &n_dat, st)) != SX_OK) goto out;
    if (!(p->m = sx_csr_new(nb, nf, n_dat, st))) {
        rc = st ? st->code : SX_ENOMEM;
        goto out;
    }
    sx_free(p->m->indptr);
    p->m->indptr = indptr;
    indptr = NULL;
    if ((rc = read_entries(cx, g, grp, path, nf, p->m, st)) != SX_OK) goto out;
    rc = sx_csr_canonicalize(p->m, st);
out:
    sx_free(shape);
    sx_free(indptr);
    H5Gclose(g);
    return rc;
}

/* Names of the root's child groups (v2 genome groups), in name order. */
typedef struct {
    char **v;
    int n;
} namevec;

static int list_groups(hid_t f, namevec *nv)
{
    H5G_info_t gi;
    if (H5Gget_info(f, &gi) < 0) return -1;
    nv->v = sx_calloc((size_t)gi.nlinks + 1, sizeof(char *));
    if (!nv->v) return -1;
    for (hsize_t i = 0; i < gi.nlinks; i++) {
        char name[1024];
        ssize_t l = H5Lget_name_by_idx(f, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                                       H5P_DEFAULT);
        if (l < 0 || (size_t)l >= sizeof name) continue;
        if (!is_kind(f, name, H5I_GROUP)) continue;
        if (!(nv->v[nv->n] = sx_strdup(name))) return -1;
        nv->n++;
    }
    return 0;
}

/* Build the dataset of parts side by side (same barcodes), genome column when tag set. */
/* Genomes read side by side must share their barcodes, in the same order. */
static int same_barcodes(const tenx_part *parts, int n, const char *path, sx_status *st)
{
    for (int i = 1; i < n; i++) {
        int same = parts[i].n_bc == parts[0].n_bc;
        for (int64_t b = 0; same && b < parts[0].n_bc; b++)
            same = strcmp(parts[i].barcodes[b], parts[0].barcodes[b]) == 0;
        if (!same)
            return sx_status_set(st, SX_EFORMAT, "%s: the genome groups have different "
                                 "barcodes, so they cannot be read together; choose one genome "
                                 "(genome option)", path);
    }
    return SX_OK;
}

static sx_dataset *assemble(tenx_part *parts, int n, char **genomes, const char *path,
                            sx_status *st)
{
    sx_dataset *d = NULL;
    int64_t nb = parts[0].n_bc, nf = 0, nnz = 0;
    if (same_barcodes(parts, n, path, st) != SX_OK) return NULL;
    for (int i = 0; i < n; i++) {
        nf += parts[i].n_feat;
        nnz += sx_csr_nnz(parts[i].m);
    }
    sx_csr *X = NULL;
    char **names = sx_calloc((size_t)(nf ? nf : 1), sizeof(char *));
    char **ids = sx_calloc((size_t)(nf ? nf : 1), sizeof(char *));
    char **gen = sx_calloc((size_t)(nf ? nf : 1), sizeof(char *));
    if (!names || !ids || !gen) goto oom;
    if (n == 1) {
        X = parts[0].m;
        parts[0].m = NULL;
    } else {
        if (!(X = sx_csr_new(nb, nf, nnz, st))) goto fail;
        int64_t k = 0;
        for (int64_t b = 0; b < nb; b++) {
            int64_t off = 0;
            for (int i = 0; i < n; i++) {
                const sx_csr *m = parts[i].m;
                for (int64_t q = m->indptr[b]; q < m->indptr[b + 1]; q++) {
                    X->indices[k] = (int32_t)(m->indices[q] + off);
                    X->data[k++] = m->data[q];
                }
                off += parts[i].n_feat;
            }
            X->indptr[b + 1] = k;
        }
    }
    int64_t j = 0;
    for (int i = 0; i < n; i++)
        for (int64_t q = 0; q < parts[i].n_feat; q++, j++) {
            names[j] = parts[i].names[q];
            ids[j] = parts[i].ids[q];
            gen[j] = genomes ? genomes[i] : NULL;
        }
    if (!(d = sx_dataset_new(0, 0, st))) goto fail;
    sx_frame_free(d->obs);
    sx_frame_free(d->var);
    d->obs = sx_frame_new(nb, (const char *const *)parts[0].barcodes, st);
    d->var = sx_frame_new(nf, (const char *const *)names, st);
    if (!d->obs || !d->var) goto fail;
    d->X = X;
    X = NULL;
    d->x_was_int = 1;
    if (sx_frame_add_strings(d->var, "gene_ids", (const char *const *)ids, st) != SX_OK)
        goto fail;
    if (genomes && sx_frame_add_strings(d->var, "genome", (const char *const *)gen, st) != SX_OK)
        goto fail;
    if (n == 1) {
        /* v3: feature_types then the other tags, scanpy's column names */
        for (int e = 0; e < parts[0].n_extra; e++) {
            const char *cn = strcmp(parts[0].extra_name[e], "feature_type") == 0
                                 ? "feature_types" : parts[0].extra_name[e];
            if (sx_frame_add_strings(d->var, cn, (const char *const *)parts[0].extra[e], st) !=
                SX_OK)
                goto fail;
        }
    }
    sx_free(names);
    sx_free(ids);
    sx_free(gen);
    return d;
oom:
    sx_status_set(st, SX_ENOMEM, "%s: out of memory", path);
fail:
    sx_csr_free(X);
    sx_free(names);
    sx_free(ids);
    sx_free(gen);
    sx_dataset_free(d);
    return NULL;
}

/* v3 with a genome chosen: keep that genome's features (scanpy's genome= filter). */
static int filter_genome(sx_dataset *d, const char *genome, const char *path, sx_status *st)
{
    sx_column *c = sx_frame_col(d->var, "genome");
    if (!c)
        return sx_status_set(st, SX_ENOTFOUND, "%s: genome '%s' requested but the file has no "
                             "matrix/features/genome", path, genome);
    int64_t n = d->var->n_rows, k = 0;
    int64_t *keep = sx_mallocarray((size_t)(n ? n : 1), sizeof(int64_t));
    if (!keep) return sx_status_set(st, SX_ENOMEM, "%s: out of memory", path);
    for (int64_t j = 0; j < n; j++)
        if (c->str[j] && strcmp(c->str[j], genome) == 0) keep[k++] = j;
    int rc = SX_OK;
    if (k == 0)
        rc = sx_status_set(st, SX_ENOTFOUND, "%s: no features of genome '%s' (first genome in "
                           "the file: '%s')", path, genome, n ? c->str[0] : "");
    else if (k < n)
        rc = sx_dataset_take_vars(d, keep, k, st);
    sx_free(keep);
    return rc;
}

/* The parts of a 10x .h5: /matrix (Cell Ranger >= 3), or one group per genome (<= 2; only
 * GENOME's when given; a v3 file's genome is a feature tag, filtered after assembly).
 * *groups keeps the genome group names (empty for /matrix); the caller frees parts and
 * groups with parts_free. CHK (may be NULL) streams the values through a check instead of
 * keeping them. */
static int read_parts(h5x_ctx *cx, hid_t f, const char *path, const char *genome, tenx_check *chk,
                      namevec *groups, tenx_part **parts, int *n_parts, int *v3, sx_status *st)
{
    *v3 = sx_h5_exists(f, "matrix");
    if (*v3) {
        if (!(*parts = sx_calloc(1, sizeof **parts))) goto oom;
        *n_parts = 1;
        return read_part(cx, f, "matrix", 1, path, &(*parts)[0], chk, st);
    }
    if (list_groups(f, groups) != 0) goto oom;
    if (groups->n == 0)
        return sx_status_set(st, SX_EFORMAT, "%s: an HDF5 file but not a 10x matrix: no "
                             "/matrix group (Cell Ranger >= 3) and no genome groups (Cell "
                             "Ranger <= 2)", path);
    int first = 0, count = groups->n;
    if (genome) {
        first = -1;
        for (int i = 0; i < groups->n; i++)
            if (strcmp(groups->v[i], genome) == 0) first = i;
        if (first < 0) {
            char avail[512] = "";
            for (int i = 0; i < groups->n; i++) {
                strncat(avail, i ? ", " : "", sizeof avail - strlen(avail) - 1);
                strncat(avail, groups->v[i], sizeof avail - strlen(avail) - 1);
            }
            return sx_status_set(st, SX_ENOTFOUND, "%s: genome '%s' not found; available: %s",
                                 path, genome, avail);
        }
        count = 1;
    }
    if (!(*parts = sx_calloc((size_t)count, sizeof **parts))) goto oom;
    *n_parts = count;
    for (int i = 0; i < count; i++) {
        int rc = read_part(cx, f, groups->v[first + i], 0, path, &(*parts)[i], chk, st);
        if (rc) return rc;
    }
    return SX_OK;
oom:
    return sx_status_set(st, SX_ENOMEM, "%s: out of memory", path);
}

static void parts_free(tenx_part *parts, int n_parts, namevec *groups)
{
    for (int i = 0; i < n_parts; i++) part_free(&parts[i]);
    sx_free(parts);
    for (int i = 0; i < groups->n; i++) sx_free(groups->v[i]);
    sx_free(groups->v);
}

/* The h5x context of an open 10x file: its size and the input budget (check_filters). */
static int tenx_ctx(h5x_ctx *cx, const char *path, hid_t f, const sx_io_limits *lim,
                    sx_status *st)
{
    memset(cx, 0, sizeof *cx);
    cx->path = path;
    cx->f = f;
    if ((cx->file_size = sx_io_file_size(path, st)) < 0) return st->code;
    h5x_set_limits(cx, lim);
    return SX_OK;
}

sx_dataset *sx_tenx_h5_read(const char *path, const sx_read_opts *opts,
                            const sx_progress *prog, sx_status *st)
{
    const char *genome = opts ? opts->genome : NULL;
    int skip = opts ? opts->skip_values_check : 0;
    hid_t f = sx_h5_open_ro(path, st);
    if (f < 0) return NULL;
    h5x_ctx cxs, *cx = &cxs;
    if (tenx_ctx(cx, path, f, opts ? opts->limits : NULL, st) != SX_OK) {
        H5Fclose(f);
        return NULL;
    }
    cx->threads = opts ? opts->threads : 1;
    sx_dataset *d = NULL;
    namevec groups = {0};
    tenx_part *parts = NULL;
    int n_parts = 0, v3 = 0;

    sx_progress_report(prog, "read", 0.0, NULL);
    /* v3 with a genome: the whole matrix, then that genome's features (filter_genome) */
    if (read_parts(cx, f, path, genome, NULL, &groups, &parts, &n_parts, &v3, st)) goto fail;
    if (n_parts > 1)
        SX_INFO("%s: %d genomes read side by side; var 'genome' says which gene is whose",
                path, n_parts);
    if (!(d = assemble(parts, n_parts, n_parts > 1 ? groups.v : NULL, path, st))) goto fail;
    if (v3 && genome && filter_genome(d, genome, path, st) != SX_OK) goto fail;
    if (sx_io_check_values(d->X, path, skip, st) != SX_OK) goto fail;
    if (sx_io_unique_var_names(d, path, st) != SX_OK) goto fail;
    sx_progress_report(prog, "read", 1.0, NULL);
    goto done;
fail:
    sx_dataset_free(d);
    d = NULL;
done:
    parts_free(parts, n_parts, &groups);
    H5Fclose(f);
    return d;
}

int sx_tenx_h5_check(const char *path, const sx_progress *prog, int64_t *n_obs, int64_t *n_vars,
                     int64_t *nnz, double *sum, int64_t *n_neg, sx_status *st)
{
    hid_t f = sx_h5_open_ro(path, st);
    if (f < 0) return st->code ? st->code : SX_EFORMAT;
    h5x_ctx cxs, *cx = &cxs;
    if (tenx_ctx(cx, path, f, NULL, st) != SX_OK) {
        H5Fclose(f);
        return st->code;
    }
    namevec groups = {0};
    tenx_part *parts = NULL;
    int n_parts = 0, v3 = 0;
    tenx_check chk = {.prog = prog};
    int rc = read_parts(cx, f, path, NULL, &chk, &groups, &parts, &n_parts, &v3, st);
    if (rc == SX_OK) rc = same_barcodes(parts, n_parts, path, st);
    if (rc == SX_OK) {
        *n_vars = 0;
        for (int i = 0; i < n_parts; i++) *n_vars += parts[i].n_feat;
        *n_obs = n_parts ? parts[0].n_bc : 0;
        *nnz = chk.nnz;
        *sum = chk.sum;
        *n_neg = chk.n_neg;
    }
    parts_free(parts, n_parts, &groups);
    H5Fclose(f);
    return rc;
}
