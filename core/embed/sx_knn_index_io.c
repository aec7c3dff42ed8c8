/* sx_knn_index_io — a graph index as bytes, so that a reference's index is built once and
 * every process that maps the reference searches it in place (sx_reference_map.c keeps it as
 * a section of reference.map).
 *
 * Layout (native little-endian, every part 8-byte aligned, offsets from the section start;
 * the parts follow each other, so their offsets follow from the sizes):
 *   header  magic "SXKNNIX1", u32 version, u32 dim, i64 n, i64 n_adj, i32 n_piv, i32 0
 *   xf      f32[n * dim]     the reference in float, which the search ranks with
 *   off     i64[n + 1]       CSR offsets of the search graph
 *   adj     i32[n_adj]       neighbour cells
 *   piv     i32[n_piv]       entry cells
 * The reference's own latent is not in it: the index is opened over the caller's.
 *
 * A cluster index (sx_knn_ivf.h) is kept instead as
 *   header  magic "SXKNNIV1", u32 visited-cluster bound (0 = exact), u32 0
 *   ivf     sx_knn_ivf_write's bytes (their own layout, checked by sx_knn_ivf_from_mem)
 * and, opened, must hold exactly the caller's reference rows (sx_knn_ivf_matches).
 *
 * The reader trusts nothing: sizes are checked against the section's length before anything
 * is touched, the offsets must rise from 0 to n_adj, every cell id must lie in [0, n), and the
 * float copy must be the reference's (an index of another latent would search wrong cells). */
#include <string.h>

#include "sx_alloc.h"
#include "sx_knn_internal.h"

#define IX_MAGIC "SXKNNIX1"
#define IX_VERSION 1u
#define IV_MAGIC "SXKNNIV1"
#define IV_HEADER 16

typedef struct ix_header {
    char magic[8];
    uint32_t version, dim;
    int64_t n, n_adj;
    int32_t n_piv, pad;
} ix_header;

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Byte offsets of the parts and the total, from the sizes (all below 2^62: checked first). */
typedef struct ix_layout {
    size_t xf, off, adj, piv, total;
} ix_layout;

static ix_layout layout(int64_t n, int dim, int64_t n_adj, int32_t n_piv)
{
    ix_layout L;
    L.xf = sizeof(ix_header);
    L.off = L.xf + pad8((size_t)n * (size_t)dim * sizeof(float));
    L.adj = L.off + ((size_t)n + 1) * sizeof(int64_t);
    L.piv = L.adj + pad8((size_t)n_adj * sizeof(int32_t));
    L.total = L.piv + pad8((size_t)n_piv * sizeof(int32_t));
    return L;
}

size_t sx_knn_index_serial_size(const sx_knn_index *ix)
{
    if (!ix || ix->exact) return 0;
    if (ix->ivf) return IV_HEADER + pad8(sx_knn_ivf_serialized_size(ix->ivf));
    return layout(ix->n, ix->dim, ix->off[ix->n], ix->n_piv).total;
}

/* one part and the zeros that pad it to 8 bytes */
static int put_part(sx_knn_put_fn put, void *user, const void *p, size_t n)
{
    static const char zero[8];
    size_t z = pad8(n) - n;
    return (n && put(user, p, n)) || (z && put(user, zero, z));
}

/* the cluster index: its header, then its own flat bytes (built in memory once: the
 * serializer writes into a buffer) */
static int write_ivf(const sx_knn_index *ix, sx_knn_put_fn put, void *user, sx_status *st)
{
    unsigned char h[IV_HEADER] = {0};
    uint32_t bound = (uint32_t)ix->ivf_bound;
    memcpy(h, IV_MAGIC, 8);
    memcpy(h + 8, &bound, 4);
    size_t n = sx_knn_ivf_serialized_size(ix->ivf);
    void *b = sx_malloc(n ? n : 1);
    if (!b) return sx_status_set(st, SX_ENOMEM, "kNN index: out of memory to write it");
    int rc = sx_knn_ivf_write(ix->ivf, b, n, st);
    if (rc == SX_OK && (put_part(put, user, h, sizeof h) || put_part(put, user, b, n)))
        rc = sx_status_set(st, SX_EIO, "kNN index: the write failed");
    sx_free(b);
    return rc;
}

int sx_knn_index_write(const sx_knn_index *ix, sx_knn_put_fn put, void *user, sx_status *st)
{
    if (!ix || ix->exact)
        return sx_status_set(st, SX_EINVAL, "kNN index: an exact index has nothing to write");
    if (ix->ivf) return write_ivf(ix, put, user, st);
    ix_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, IX_MAGIC, 8);
    h.version = IX_VERSION;
    h.dim = (uint32_t)ix->dim;
    h.n = ix->n;
    h.n_adj = ix->off[ix->n];
    h.n_piv = ix->n_piv;
    if (put_part(put, user, &h, sizeof h) ||
        put_part(put, user, ix->xf, (size_t)ix->n * ix->dim * sizeof *ix->xf) ||
        put_part(put, user, ix->off, ((size_t)ix->n + 1) * sizeof *ix->off) ||
        put_part(put, user, ix->adj, (size_t)h.n_adj * sizeof *ix->adj) ||
        put_part(put, user, ix->piv, (size_t)ix->n_piv * sizeof *ix->piv))
        return sx_status_set(st, SX_EIO, "kNN index: the write failed");
    return SX_OK;
}

/* The header's sizes: this reference's, and parts that fit in len bytes. */
static int check_sizes(const ix_header *h, size_t len, int64_t n_ref, int dim, sx_status *st)
{
    if (memcmp(h->magic, IX_MAGIC, 8) || h->version != IX_VERSION)
        return sx_status_set(st, SX_EFORMAT, "kNN index: not an index of this version");
    if (h->n != n_ref || (int)h->dim != dim || h->n < 1 || h->n > INT32_MAX)
        return sx_status_set(st, SX_EFORMAT, "kNN index: built for another reference (%lld x "
                             "%u, not %lld x %d)", (long long)h->n, h->dim, (long long)n_ref, dim);
    /* bounded by len before the layout multiplies them (len < 2^62 on any machine) */
    if (h->n_adj < 0 || (uint64_t)h->n_adj > len / 4 || h->n_piv < 1 || h->n_piv > h->n ||
        (uint64_t)h->n > len / 8 || (uint64_t)h->dim > len / 4 / (uint64_t)h->n)
        return sx_status_set(st, SX_EFORMAT, "kNN index: sizes its section cannot hold");
    if (layout(h->n, dim, h->n_adj, h->n_piv).total > len)
        return sx_status_set(st, SX_EFORMAT, "kNN index: the section is cut short");
    return SX_OK;
}

/* The graph: offsets rising from 0 to n_adj, cells in range, the float copy the reference's. */
static int check_graph(const sx_knn_index *ix, int64_t n_adj, sx_status *st)
{
    int64_t n = ix->n;
    if (ix->off[0] != 0 || ix->off[n] != n_adj)
        return sx_status_set(st, SX_EFORMAT, "kNN index: bad graph offsets");
    for (int64_t i = 0; i < n; i++)
        if (ix->off[i + 1] < ix->off[i])
            return sx_status_set(st, SX_EFORMAT, "kNN index: bad graph offsets");
    for (int64_t e = 0; e < n_adj; e++)
        if (ix->adj[e] < 0 || ix->adj[e] >= n)
            return sx_status_set(st, SX_EFORMAT, "kNN index: a graph edge to no cell");
    for (int p = 0; p < ix->n_piv; p++)
        if (ix->piv[p] < 0 || ix->piv[p] >= n)
            return sx_status_set(st, SX_EFORMAT, "kNN index: an entry point that is no cell");
    for (int64_t i = 0; i < n * ix->dim; i++)
        if (ix->xf[i] != (float)ix->ref[i])
            return sx_status_set(st, SX_EFORMAT, "kNN index: made for another latent");
    return SX_OK;
}

/* A cluster index section over ref; both borrowed */
static sx_knn_index *open_ivf(const unsigned char *b, size_t len, const double *ref,
                              int64_t n_ref, int dim, sx_status *st)
{
    uint32_t bound, zero;
    memcpy(&bound, b + 8, 4);
    memcpy(&zero, b + 12, 4);
    if (zero || bound > 1u << 20) {
        sx_status_set(st, SX_EFORMAT, "kNN index: a bad cluster index header");
        return NULL;
    }
    sx_knn_ivf *iv = sx_knn_ivf_from_mem(b + IV_HEADER, len - IV_HEADER, st);
    if (!iv) return NULL;
    sx_knn_index *ix = NULL;
    if (!sx_knn_ivf_matches(iv, ref, n_ref, dim))
        sx_status_set(st, SX_EFORMAT, "kNN index: made for another latent");
    else if (!(ix = sx_calloc(1, sizeof *ix)))
        sx_status_set(st, SX_ENOMEM, "kNN index: out of memory");
    if (!ix) {
        sx_knn_ivf_free(iv);
        return NULL;
    }
    ix->ref = ref;
    ix->n = n_ref;
    ix->dim = dim;
    ix->borrowed = 1;
    ix->ivf = iv;
    ix->ivf_bound = (int)bound;
    ix->bytes = sizeof *ix + sx_knn_ivf_bytes(iv);
    return ix;
}

sx_knn_index *sx_knn_index_open(const void *buf, size_t len, const double *ref, int64_t n_ref,
                                int dim, sx_status *st)
{
    ix_header h;
    if (!buf || !ref || len < sizeof h || ((uintptr_t)buf & 7)) {
        sx_status_set(st, SX_EFORMAT, "kNN index: no section, or one too short or misaligned");
        return NULL;
    }
    if (!memcmp(buf, IV_MAGIC, 8)) return open_ivf(buf, len, ref, n_ref, dim, st);
    memcpy(&h, buf, sizeof h);
    if (check_sizes(&h, len, n_ref, dim, st)) return NULL;
    sx_knn_index *ix = sx_calloc(1, sizeof *ix);
    if (!ix) {
        sx_status_set(st, SX_ENOMEM, "kNN index: out of memory");
        return NULL;
    }
    ix_layout L = layout(h.n, dim, h.n_adj, h.n_piv);
    const unsigned char *b = buf;
    ix->ref = ref;
    ix->n = h.n;
    ix->dim = dim;
    ix->borrowed = 1;
    /* the casts drop const: a borrowed index is only read (free leaves the arrays alone) */
    ix->xf = (float *)(void *)(b + L.xf);
    ix->off = (int64_t *)(void *)(b + L.off);
    ix->adj = (int32_t *)(void *)(b + L.adj);
    ix->piv = (int32_t *)(void *)(b + L.piv);
    ix->n_piv = h.n_piv;
    if (check_graph(ix, h.n_adj, st)) {
        sx_knn_index_free(ix);
        return NULL;
    }
    ix->bytes = sizeof *ix + sx_knn_index_graph_bytes(ix);
    return ix;
}
