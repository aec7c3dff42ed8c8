/* sx_reference_map — a reference's cells as one flat file that processes map read-only.
 *
 * The daemon runs each job in a child process. Reading reference.h5 there for every job would
 * cost a reference load per job (HDF5 strings for every cell, categoricals rebuilt from them)
 * and one private copy of the latent per running job. Instead, when a reference is loaded, the
 * daemon writes REFDIR/reference.map once; a child mmaps it read-only, its latent and UMAP are
 * used in place (pages shared through the page cache by every child and never copied), and only
 * the obs frame is rebuilt from stored codes. The model stays in reference.h5 (a few MB).
 *
 * Layout (little-endian, every section 8-byte aligned, all offsets from the file start):
 *   header   magic "SXREFMP1", u32 version, u32 dim, i64 n_cells, f64 umap_a, f64 umap_b,
 *            u32 has_umap, u32 n_cols, i64 source_size, i64 source_mtime_ns,
 *            i64 off_latent, off_umap, off_names, off_cols
 *   latent   f64[n_cells * dim]
 *   umap     f32[n_cells * 2]                      (when has_umap)
 *   names    i64 offsets[n_cells + 1], then the UTF-8 bytes (no NULs)
 *   columns  n_cols x {i64 name_off, i64 cats_off, i64 codes_off, i32 n_cats, i32 pad}
 *            name: i64 len + bytes; cats: i64 offsets[n_cats + 1] + bytes; codes: i32[n_cells]
 * source_size / source_mtime_ns are reference.h5's: a map older than its source is ignored.
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
#include "sx_pipeline_internal.h"

#define MAP_MAGIC "SXREFMP1"
#define MAP_VERSION 1u

typedef struct map_header {
    char magic[8];
    uint32_t version, dim;
    int64_t n_cells;
    double umap_a, umap_b;
    uint32_t has_umap, n_cols;
    int64_t source_size, source_mtime_ns;
    int64_t off_latent, off_umap, off_names, off_cols;
} map_header;

typedef struct map_col {
    int64_t name_off, cats_off, codes_off;
    int32_t n_cats, pad;
} map_col;

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
    r->model = r->path ? sx_nn_model_load(r->path, st) : NULL;
    if (!r->model) goto fail;
    goto out;
fail:
    sx_reference_free(r);
    r = NULL;
out:
    if (fd >= 0) close(fd);
    sx_free(path);
    return r;
}
