/* sx_reference_map — a reference's cells as one flat file that processes map read-only.
 *
 * The daemon runs each job in a child process. Reading reference.h5 there for every job would
 * cost a reference load per job (HDF5 strings for every cell, categoricals rebuilt from them)
 * and one private copy of the latent per running job. Instead, when a reference is loaded, the
 * daemon writes REFDIR/reference.map once; a child mmaps it read-only, its latent and UMAP are
 * used in place (pages shared through the page cache by every child and never copied), and only
 * the obs frame is rebuilt from stored codes. The model is in the map too: parsing it from
 * reference.h5 (HDF5, float conversions) was most of a job runner's reference load; from the
 * map its tensors are copied straight into a new model.
 *
 * Layout (little-endian, every section 8-byte aligned, all offsets from the file start):
 *   header   magic "SXREFMP1", u32 version, u32 dim, i64 n_cells, f64 umap_a, f64 umap_b,
 *            u32 has_umap, u32 n_cols, i64 source_size, i64 source_mtime_ns,
 *            i64 off_latent, off_umap, off_names, off_cols, off_model, off_index, len_index,
 *            i64 off_calib, len_calib
 *   latent   f64[n_cells * dim]
 *   umap     f32[n_cells * 2]                      (when has_umap)
 *   names    i64 offsets[n_cells + 1], then the UTF-8 bytes (no NULs)
 *   columns  n_cols x {i64 name_off, i64 cats_off, i64 codes_off, i32 n_cats, i32 pad}
 *            name: i64 len + bytes; cats: i64 offsets[n_cats + 1] + bytes; codes: i32[n_cells]
 *   model    i64 G, H, Z, D, i32 dtype, i32 n_tensors, i64 genes_off, n_genes, domains_off,
 *            n_domains, scale_off, scale_width, prep_off, prep_len, tensors_off
 *            (genes/domains: strings sections; scale: f64[D * width]; prep: bytes)
 *            tensors: n_tensors x {i64 name_off (i64 len + bytes), i64 data_off, i64 numel},
 *            data f64[numel] each in state_dict layout (sx_nn_model_get / _set)
 *            (the model's training log is not kept: jobs on a reference never read it)
 *   index    (optional: off_index 0 = none) the reference's resident graph search index as
 *            sx_knn_index_io.c serializes it, len_index bytes, searched in place over the
 *            mapped latent; a damaged one is ignored (the reference loads without it, and
 *            sx_reference_index_missing tells the daemon to build and rewrite it)
 *   calib    (optional: off_calib 0 = none) the label-transfer calibrations fitted when the
 *            reference was loaded (sx_reference_calib.c's layout), len_calib bytes, copied
 *            out; a damaged section is ignored (jobs then fit their own)
 * source_size / source_mtime_ns are reference.h5's: a map older than its source is ignored.
 * Version 3 added the index, version 4 the calibrations; a map of an earlier version is refused like a stale one, so the
 * loader reads reference.h5 and the daemon writes the map anew.
 * The reader trusts nothing: every offset and length is checked against the file's size.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sx_alloc.h"
#include "sx_knn.h"
#include "sx_log.h"
#include "sx_pipeline_internal.h"

#define MAP_MAGIC "SXREFMP1"
#define MAP_VERSION 4u

typedef struct map_header {
    char magic[8];
    uint32_t version, dim;
    int64_t n_cells;
    double umap_a, umap_b;
    uint32_t has_umap, n_cols;
    int64_t source_size, source_mtime_ns;
    int64_t off_latent, off_umap, off_names, off_cols, off_model, off_index, len_index;
    int64_t off_calib, len_calib;
} map_header;

typedef struct map_col {
    int64_t name_off, cats_off, codes_off;
    int32_t n_cats, pad;
} map_col;

typedef struct map_model {
    int64_t G, H, Z, D;
    int32_t dtype, n_tensors;
    int64_t genes_off, n_genes, domains_off, n_domains, scale_off, scale_width, prep_off,
        prep_len, tensors_off;
} map_model;

typedef struct map_tensor {
    int64_t name_off, data_off, numel;
} map_tensor;

/* ---- writer ---- */

typedef struct wr {
    FILE *f;
    int64_t pos;
    int bad;
} wr;

static void put(wr *w, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, w->f) != n) w->bad = 1;
    w->pos += (int64_t)n;
}

static int64_t align8(wr *w)
{
    static const char zero[8];
    put(w, zero, (size_t)((8 - (w->pos & 7)) & 7));
    return w->pos;
}

/* i64 offsets[n+1] relative to the blob, then the blob: returns the section's offset */
static int64_t put_strings(wr *w, const char *const *s, int64_t n)
{
    int64_t at = align8(w), off = 0;
    put(w, &off, 8);
    for (int64_t i = 0; i < n; i++) {
        off += s[i] ? (int64_t)strlen(s[i]) : 0;
        put(w, &off, 8);
    }
    for (int64_t i = 0; i < n; i++)
        if (s[i]) put(w, s[i], strlen(s[i]));
    return at;
}

static int source_stat(const char *dir, int64_t *size, int64_t *mtime_ns)
{
    char *src = sx_pl_join(dir, "reference.h5");
    struct stat sb;
    int ok = src && stat(src, &sb) == 0;
    sx_free(src);
    if (!ok) return -1;
    *size = (int64_t)sb.st_size;
    *mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
    return 0;
}

/* the categorical/string columns of obs: what the reference file keeps (sx_pl_reference_write) */
static int n_label_cols(const sx_frame *obs)
{
    int n = 0;
    for (int c = 0; c < obs->n_cols; c++) n += obs->cols[c].kind == SX_COL_CATEGORICAL;
    return n;
}

/* each column's name, categories and codes, then the table of them: returns its offset */
static int64_t put_columns(wr *w, const sx_frame *obs, int64_t n)
{
    int nc = n_label_cols(obs);
    map_col *tab = sx_calloc((size_t)(nc ? nc : 1), sizeof *tab);
    if (!tab) {
        w->bad = 1;
        return 0;
    }
    for (int c = 0, k = 0; c < obs->n_cols; c++) {
        const sx_column *col = &obs->cols[c];
        if (col->kind != SX_COL_CATEGORICAL) continue;
        tab[k].name_off = align8(w);
        int64_t len = (int64_t)strlen(col->name);
        put(w, &len, 8);
        put(w, col->name, (size_t)len);
        tab[k].cats_off = put_strings(w, (const char *const *)col->categories, col->n_categories);
        tab[k].n_cats = col->n_categories;
        tab[k].codes_off = align8(w);
        put(w, col->codes, (size_t)n * sizeof(int32_t));
        k++;
    }
    int64_t at = align8(w);
    put(w, tab, (size_t)nc * sizeof *tab);
    sx_free(tab);
    return at;
}

/* i64 len + bytes of a name: returns its offset */
static int64_t put_name(wr *w, const char *name)
{
    int64_t at = align8(w), len = (int64_t)strlen(name);
    put(w, &len, 8);
    put(w, name, (size_t)len);
    return at;
}

/* each tensor's values (f64, as sx_nn_model_get gives them), then the table of them */
static int64_t put_tensors(wr *w, const sx_nn_model *m, int n)
{
    map_tensor *tab = sx_calloc((size_t)(n ? n : 1), sizeof *tab);
    double *v = NULL;
    int64_t cap = 0;
    sx_status st;
    for (int i = 0; tab && !w->bad && i < n; i++) {
        const char *name = sx_nn_model_tensor_name(m, i);
        int nd = 0;
        int64_t d[2] = {1, 1};
        if (!name || sx_nn_model_tensor_shape(m, name, &nd, d, &st)) {
            w->bad = 1;
            break;
        }
        int64_t numel = (nd > 0 ? d[0] : 1) * (nd > 1 ? d[1] : 1);
        if (numel > cap) {
            sx_free(v);
            cap = numel;
            if (!(v = sx_mallocarray((size_t)cap, sizeof *v))) break;
        }
        if (sx_nn_model_get(m, name, v, numel, &st)) w->bad = 1;
        tab[i].name_off = put_name(w, name);
        tab[i].data_off = align8(w);
        tab[i].numel = numel;
        put(w, v, (size_t)numel * sizeof *v);
    }
    if (!tab || (n && !v)) w->bad = 1;
    sx_free(v);
    int64_t at = align8(w);
    if (tab) put(w, tab, (size_t)n * sizeof *tab);
    sx_free(tab);
    return at;
}

/* the model: sizes, gene and domain names, scale, preprocessing, tensors */
static int64_t put_model(wr *w, const sx_nn_model *m)
{
    sx_nn_config c;
    sx_nn_model_get_config(m, &c);
    map_model h = {c.n_genes, c.n_hidden, c.n_latent, c.n_domains, c.dtype,
                   sx_nn_model_n_tensors(m), 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const char *const *genes = sx_nn_model_genes(m, &h.n_genes);
    const char *const *domains = sx_nn_model_domains(m, &h.n_domains);
    const double *scale = sx_nn_model_scale(m, &h.scale_width);
    const char *prep = sx_nn_model_prep_json(m);
    h.genes_off = put_strings(w, genes, h.n_genes);
    h.domains_off = put_strings(w, domains, h.n_domains);
    h.scale_off = align8(w);
    if (scale) put(w, scale, (size_t)(h.D * h.scale_width) * sizeof *scale);
    h.prep_off = align8(w);
    h.prep_len = prep ? (int64_t)strlen(prep) : -1;
    if (prep) put(w, prep, (size_t)h.prep_len);
    h.tensors_off = put_tensors(w, m, h.n_tensors);
    int64_t at = align8(w);
    put(w, &h, sizeof h);
    return at;
}

/* sx_knn_put_fn over the map's writer */
static int put_cb(void *user, const void *p, size_t n)
{
    wr *w = user;
    put(w, p, n);
    return w->bad;
}

/* the resident index, when r has a graph one: its offset (0: none) and length */
static void put_index(wr *w, const sx_reference *r, map_header *h)
{
    size_t len = sx_knn_index_serial_size(r->index);
    if (!len) return;
    sx_status st;
    h->off_index = align8(w);
    h->len_index = (int64_t)len;
    if (sx_knn_index_write(r->index, put_cb, w, &st)) w->bad = 1;
}

int sx_reference_map_write(const sx_reference *r, const char *dir, sx_status *st)
{
    map_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAP_MAGIC, 8);
    h.version = MAP_VERSION;
    h.dim = (uint32_t)r->dim;
    h.n_cells = r->n_cells;
    h.umap_a = r->umap_a;
    h.umap_b = r->umap_b;
    h.has_umap = r->umap != NULL;
    h.n_cols = (uint32_t)n_label_cols(r->obs);
    if (source_stat(dir, &h.source_size, &h.source_mtime_ns))
        return sx_status_set(st, SX_ENOTFOUND, "reference folder has no reference.h5");
    /* Two processes may prepare the same map at once (two daemons on one data dir, or a
     * daemon and a `scalex` run): each writes its own temporary file, and the last rename
     * wins with an identical map; a shared temporary name let one rename the other's file
     * away under it. */
    char *path = sx_pl_join(dir, "reference.map"), *tmp = sx_pl_join(dir, "reference.map.XXXXXX");
    int fd = path && tmp ? mkstemp(tmp) : -1;
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0) close(fd), unlink(tmp);
        sx_free(path), sx_free(tmp);
        return sx_status_set(st, SX_EIO, "cannot write the reference's map file: %s", strerror(e));
    }
    fchmod(fd, 0644); /* mkstemp makes it 0600: the map is read by job runners as the file was */
    wr w = {f, 0, 0};
    put(&w, &h, sizeof h);
    h.off_latent = align8(&w);
    put(&w, r->latent, (size_t)(r->n_cells * r->dim) * sizeof(double));
    if (r->umap) {
        h.off_umap = align8(&w);
        put(&w, r->umap, (size_t)r->n_cells * 2 * sizeof(float));
    }
    h.off_names = put_strings(&w, (const char *const *)r->obs->index, r->n_cells);
    h.off_cols = put_columns(&w, r->obs, r->n_cells);
    h.off_model = put_model(&w, r->model);
    put_index(&w, r, &h);
    if (r->n_calibs) {
        h.off_calib = align8(&w);
        h.len_calib = (int64_t)sx_reference_calib_bytes(r);
        if (sx_reference_calib_write(r, put_cb, &w)) w.bad = 1;
    }
    if (fseek(f, 0, SEEK_SET) || fwrite(&h, sizeof h, 1, f) != 1) w.bad = 1;
    if (fflush(f) || fsync(fileno(f))) w.bad = 1;
    if (fclose(f)) w.bad = 1;
    int rc = SX_OK;
    if (w.bad || rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        rc = sx_status_set(st, SX_EIO, "cannot write the reference's map file: %s", strerror(e));
    }
    sx_free(path), sx_free(tmp);
    return rc;
}

/* ---- reader ---- */

typedef struct view {
    const unsigned char *base;
    int64_t size;
} view;

/* [off, off + n) inside the file, 8-aligned when asked: else NULL */
static const void *at(const view *v, int64_t off, int64_t n, int aligned)
{
    if (off < (int64_t)sizeof(map_header) || n < 0 || off > v->size || n > v->size - off) return NULL;
    if (aligned && (off & 7)) return NULL;
    return v->base + off;
}

/* the i-th string of a strings section with count entries, copied (NUL-terminated) */
static char *string_at(const view *v, int64_t sec, int64_t count, int64_t i)
{
    const int64_t *offs = at(v, sec, (count + 1) * 8, 1);
    if (!offs || offs[0] != 0) return NULL;
    int64_t blob = sec + (count + 1) * 8, a = offs[i], b = offs[i + 1], total = offs[count];
    if (a < 0 || b < a || b > total || !at(v, blob, total, 0)) return NULL;
    const char *p = (const char *)v->base + blob + a;
    if (memchr(p, 0, (size_t)(b - a))) return NULL;
    return sx_strndup(p, (size_t)(b - a));
}

static char **strings_at(const view *v, int64_t sec, int64_t count)
{
    char **s = sx_calloc((size_t)(count ? count : 1), sizeof *s);
    for (int64_t i = 0; s && i < count; i++)
        if (!(s[i] = string_at(v, sec, count, i))) {
            for (int64_t k = 0; k < i; k++) sx_free(s[k]);
            sx_free(s);
            return NULL;
        }
    return s;
}

static void free_strings(char **s, int64_t n)
{
    for (int64_t i = 0; s && i < n; i++) sx_free(s[i]);
    sx_free(s);
}

static int map_columns(const view *v, const map_header *h, sx_frame *obs, sx_status *st)
{
    const map_col *tab = at(v, h->off_cols, (int64_t)h->n_cols * (int64_t)sizeof(map_col), 1);
    if (!tab && h->n_cols) return sx_status_set(st, SX_EFORMAT, "reference map: bad column table");
    for (uint32_t c = 0; c < h->n_cols; c++) {
        const int64_t *len = at(v, tab[c].name_off, 8, 1);
        const char *name = len && *len > 0 && *len < 4096 ? at(v, tab[c].name_off + 8, *len, 0) : NULL;
        const int32_t *codes = at(v, tab[c].codes_off, h->n_cells * 4, 1);
        if (!name || !codes || tab[c].n_cats < 0 || tab[c].n_cats > h->n_cells + 1)
            return sx_status_set(st, SX_EFORMAT, "reference map: bad column %u", c);
        for (int64_t i = 0; i < h->n_cells; i++)
            if (codes[i] < -1 || codes[i] >= tab[c].n_cats)
                return sx_status_set(st, SX_EFORMAT, "reference map: a code out of range");
        char *cname = sx_strndup(name, (size_t)*len);
        char **cats = strings_at(v, tab[c].cats_off, tab[c].n_cats);
        int rc = cname && cats ? sx_frame_add_categorical(obs, cname, codes, (const char *const *)cats,
                                                           tab[c].n_cats, 0, st)
                               : sx_status_set(st, SX_EFORMAT, "reference map: bad column %u", c);
        sx_free(cname);
        free_strings(cats, tab[c].n_cats);
        if (rc) return rc;
    }
    return SX_OK;
}

/* the model's names (genes or domains) from a strings section: count must be what it expects */
static int model_names(const view *v, int64_t sec, int64_t n, sx_nn_model *m, int genes,
                       sx_status *st)
{
    if (n == 0) return SX_OK;
    char **s = n > 0 && n <= v->size / 8 ? strings_at(v, sec, n) : NULL;
    if (!s) return sx_status_set(st, SX_EFORMAT, "reference map: bad model names");
    int rc = genes ? sx_nn_model_set_genes(m, (const char *const *)s, n, st)
                   : sx_nn_model_set_domains(m, (const char *const *)s, n, st);
    free_strings(s, n);
    return rc;
}

/* every tensor of the table into m (sx_nn_model_set checks each size) */
static int model_tensors(const view *v, const map_model *h, sx_nn_model *m, sx_status *st)
{
    if (h->n_tensors != sx_nn_model_n_tensors(m))
        return sx_status_set(st, SX_EFORMAT, "reference map: the model's tensors do not match");
    const map_tensor *tab = at(v, h->tensors_off, (int64_t)h->n_tensors * (int64_t)sizeof *tab, 1);
    if (!tab) return sx_status_set(st, SX_EFORMAT, "reference map: bad tensor table");
    for (int32_t i = 0; i < h->n_tensors; i++) {
        const int64_t *len = at(v, tab[i].name_off, 8, 1);
        const char *name = len && *len > 0 && *len < 112 ? at(v, tab[i].name_off + 8, *len, 0) : NULL;
        const double *data = tab[i].numel > 0 && tab[i].numel <= v->size / 8
                                 ? at(v, tab[i].data_off, tab[i].numel * 8, 1) : NULL;
        char nm[112];
        if (!name || !data) return sx_status_set(st, SX_EFORMAT, "reference map: bad tensor %d", i);
        memcpy(nm, name, (size_t)*len);
        nm[*len] = 0;
        /* in state_dict order, as written: each tensor once, none left at zero */
        if (strcmp(nm, sx_nn_model_tensor_name(m, i)))
            return sx_status_set(st, SX_EFORMAT, "reference map: tensor %d is not '%s'", i,
                                 sx_nn_model_tensor_name(m, i));
        if (sx_nn_model_set(m, nm, data, tab[i].numel, st)) return st->code;
    }
    return SX_OK;
}

/* The model, built from the map: sizes first (bounded by the file's size before anything is
 * allocated), then its names, scale, preprocessing and tensors. */
static sx_nn_model *map_model_load(const view *v, int64_t off, sx_status *st)
{
    const map_model *h = at(v, off, (int64_t)sizeof(map_model), 1);
    if (!h || h->G < 1 || h->H < 1 || h->Z < 1 || h->D < 1 || h->G > v->size / 8 ||
        h->H > v->size / 8 / h->G || h->D > v->size / 8) {
        sx_status_set(st, SX_EFORMAT, "reference map: bad model sizes");
        return NULL;
    }
    sx_nn_config c = {h->G, h->H, h->Z, h->D, h->dtype};
    sx_nn_model *m = sx_nn_model_new_zero(&c, st);
    if (!m) return NULL;
    const double *scale = h->scale_width > 0 && h->scale_width <= v->size / 8 / h->D
                              ? at(v, h->scale_off, h->D * h->scale_width * 8, 1) : NULL;
    const char *prep = h->prep_len >= 0 ? at(v, h->prep_off, h->prep_len, 0) : NULL;
    char *pj = prep ? sx_strndup(prep, (size_t)h->prep_len) : NULL;
    int rc = (h->scale_width && !scale) || (h->prep_len >= 0 && (!pj || strlen(pj) != (size_t)h->prep_len))
                 ? sx_status_set(st, SX_EFORMAT, "reference map: bad model metadata") : SX_OK;
    if (!rc) rc = model_names(v, h->genes_off, h->n_genes, m, 1, st);
    if (!rc) rc = model_names(v, h->domains_off, h->n_domains, m, 0, st);
    if (!rc && scale) rc = sx_nn_model_set_scale(m, scale, h->scale_width, st);
    if (!rc && pj) rc = sx_nn_model_set_prep_json(m, pj, st);
    if (!rc) rc = model_tensors(v, h, m, st);
    sx_free(pj);
    if (!rc) return m;
    sx_nn_model_free(m);
    return NULL;
}

/* Header checks: magic, version, sizes that fit the file, and a source that has not changed. */
static int check_header(const view *v, const map_header *h, const char *dir, sx_status *st)
{
    int64_t size = 0, mtime = 0;
    if (memcmp(h->magic, MAP_MAGIC, 8) || h->version != MAP_VERSION)
        return sx_status_set(st, SX_EFORMAT, "not a reference map of this version");
    if (source_stat(dir, &size, &mtime) || size != h->source_size || mtime != h->source_mtime_ns)
        return sx_status_set(st, SX_ESTATE, "the reference map is older than reference.h5");
    if (h->n_cells < 1 || h->dim < 1 || h->dim > 4096 || h->n_cells > v->size / 8)
        return sx_status_set(st, SX_EFORMAT, "reference map: bad sizes");
    if (!at(v, h->off_latent, h->n_cells * (int64_t)h->dim * 8, 1) ||
        (h->has_umap && !at(v, h->off_umap, h->n_cells * 8, 1)))
        return sx_status_set(st, SX_EFORMAT, "reference map: sections out of bounds");
    return SX_OK;
}

/* The index section over the mapped latent; a damaged one is left out (NULL), not fatal. */
static void map_index(const view *v, const map_header *h, sx_reference *r)
{
    if (!h->off_index) return;
    const void *p = h->len_index > 0 ? at(v, h->off_index, h->len_index, 1) : NULL;
    sx_status ist;
    sx_status_clear(&ist);
    r->index = p ? sx_knn_index_open(p, (size_t)h->len_index, r->latent, r->n_cells, r->dim, &ist)
                 : NULL;
    if (!r->index)
        SX_WARN("reference map: its search index is damaged and left out (%s)",
                p ? ist.msg : "out of bounds");
}

/* The calibrations section, copied into r; a damaged one is left out, not fatal. */
static void map_calib(const view *v, const map_header *h, sx_reference *r)
{
    if (!h->off_calib) return;
    const void *p = h->len_calib > 0 ? at(v, h->off_calib, h->len_calib, 1) : NULL;
    sx_status cst;
    sx_status_clear(&cst);
    if (!p || sx_reference_calib_open(r, p, (size_t)h->len_calib, &cst))
        SX_WARN("reference map: its label-transfer calibrations are damaged and left out (%s)",
                p ? cst.msg : "out of bounds");
}

sx_reference *sx_reference_map_open(const char *dir, sx_status *st)
{
    char *path = sx_pl_join(dir, "reference.map");
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat sb;
    sx_reference *r = NULL;
    if (fd < 0 || fstat(fd, &sb) || sb.st_size < (off_t)sizeof(map_header)) {
        sx_status_set(st, SX_ENOTFOUND, "no reference map");
        goto out;
    }
    void *base = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        sx_status_set(st, SX_EIO, "cannot map the reference: %s", strerror(errno));
        goto out;
    }
    view v = {base, (int64_t)sb.st_size};
    map_header h;
    memcpy(&h, base, sizeof h);
    r = sx_calloc(1, sizeof *r);
    if (!r) {
        munmap(base, (size_t)sb.st_size);
        sx_status_set(st, SX_ENOMEM, "out of memory");
        goto out;
    }
    r->mapped = base;
    r->mapped_len = (size_t)sb.st_size;
    if (check_header(&v, &h, dir, st)) goto fail;
    r->n_cells = h.n_cells;
    r->dim = (int)h.dim;
    r->umap_a = h.umap_a;
    r->umap_b = h.umap_b;
    r->latent = (double *)(void *)(v.base + h.off_latent); /* read-only pages: never written */
    r->umap = h.has_umap ? (float *)(void *)(v.base + h.off_umap) : NULL;
    char **names = strings_at(&v, h.off_names, h.n_cells);
    if (!names) {
        sx_status_set(st, SX_EFORMAT, "reference map: bad cell names");
        goto fail;
    }
    r->obs = sx_frame_new(h.n_cells, (const char *const *)names, st);
    free_strings(names, h.n_cells);
    if (!r->obs || map_columns(&v, &h, r->obs, st)) goto fail;
    r->path = sx_pl_join(dir, "reference.h5");
    r->model = r->path ? map_model_load(&v, h.off_model, st) : NULL;
    if (!r->model) goto fail;
    map_index(&v, &h, r);
    map_calib(&v, &h, r);
    goto out;
fail:
    sx_reference_free(r);
    r = NULL;
out:
    if (fd >= 0) close(fd);
    sx_free(path);
    return r;
}
