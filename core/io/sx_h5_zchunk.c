/* sx_h5_zchunk — a whole numeric dataset written chunk by chunk, each chunk shuffled and
 * deflated by a few threads and stored with H5Dwrite_chunk (sx_io_internal.h).
 *
 * Why: HDF5 runs a dataset's filters on the writing thread, one chunk after another, and
 * deflate is most of the time a job spends writing its adata.h5ad. The chunks land in the
 * file exactly as HDF5's own shuffle + deflate filters would store them (the dataset keeps
 * those filters in its creation properties, so every reader, h5py included, inflates them
 * as usual); with the default strategy the compressed bytes are even the same as zlib's
 * compress2, which HDF5's filter calls. HDF5 itself is only called from the calling thread
 * (the library is not built thread-safe): type conversion and the chunk writes happen
 * there, the workers only touch their own buffers and zlib. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "sx_alloc.h"
#include "sx_io_internal.h"

#define ZC_BATCH 16 /* chunks converted, compressed, then written per round */

typedef struct zc_chunk {
    unsigned char *raw;  /* chunk bytes in the file type (zero-padded at the edge) */
    unsigned char *z;    /* shuffled + deflated, or shuffled only (mask) */
    size_t z_len;
    uint32_t mask;       /* H5Dwrite_chunk filter mask: bit 1 = deflate skipped */
    int ok;
} zc_chunk;

typedef struct zc_round {
    zc_chunk *ch;
    int n;
    _Atomic int next;
    size_t chunk_bytes, es;
    unsigned char **scratch; /* per worker: the shuffled chunk */
    int level, strategy, shuffle;
} zc_round;

/* HDF5's shuffle filter: byte j of every element, then byte j + 1, ... */
static void shuffle_bytes(const unsigned char *in, unsigned char *out, size_t n, size_t es)
{
    for (size_t j = 0; j < es; j++)
        for (size_t i = 0; i < n; i++) out[j * n + i] = in[i * es + j];
}

static void compress_one(zc_round *r, zc_chunk *c, unsigned char *sh)
{
    const unsigned char *src = c->raw;
    if (r->shuffle) {
        shuffle_bytes(c->raw, sh, r->chunk_bytes / r->es, r->es);
        src = sh;
    }
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    c->ok = 0;
    if (deflateInit2(&zs, r->level, Z_DEFLATED, 15, 8, r->strategy) != Z_OK) return;
    zs.next_in = (unsigned char *)src;
    zs.avail_in = (uInt)r->chunk_bytes;
    zs.next_out = c->z;
    zs.avail_out = (uInt)r->chunk_bytes; /* no smaller: stored as it is, as HDF5's filter does */
    int zr = deflate(&zs, Z_FINISH);
    if (zr == Z_STREAM_END) {
        c->z_len = zs.total_out;
        c->mask = 0;
    } else {
        memcpy(c->z, src, r->chunk_bytes);
        c->z_len = r->chunk_bytes;
        c->mask = 1u << 1; /* deflate, the second filter when shuffle is first */
        if (!r->shuffle) c->mask = 1u;
    }
    deflateEnd(&zs);
    c->ok = 1;
}

static void *worker(void *arg)
{
    zc_round *r = ((void **)arg)[0];
    unsigned char *sh = ((void **)arg)[1];
    for (int i; (i = atomic_fetch_add(&r->next, 1)) < r->n;) compress_one(r, &r->ch[i], sh);
    return NULL;
}

/* Compress the round's chunks on up to n_threads threads (the caller's included). */
static void compress_round(zc_round *r, int n_threads)
{
    pthread_t tid[15];
    void *args[16][2];
    int started = 0;
    atomic_store(&r->next, 0);
    for (int t = 1; t < n_threads && t < 16 && t < r->n; t++) {
        args[t][0] = r;
        args[t][1] = r->scratch[t];
        if (pthread_create(&tid[started], NULL, worker, args[t]) != 0) break;
        started++;
    }
    args[0][0] = r;
    args[0][1] = r->scratch[0];
    worker(args[0]);
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
}

/* Rows [row0, row0 + rows) of buf (mtype) into one chunk in the file type, zero-padded. */
static int convert_rows(hid_t mtype, hid_t ftype, const void *buf, size_t row_elems,
                        int64_t row0, int64_t rows, unsigned char *raw, size_t chunk_bytes)
{
    size_t ms = H5Tget_size(mtype), fs = H5Tget_size(ftype);
    size_t n = (size_t)rows * row_elems;
    const unsigned char *src = (const unsigned char *)buf + (size_t)row0 * row_elems * ms;
    memset(raw, 0, chunk_bytes);
    if (H5Tequal(mtype, ftype) > 0) {
        memcpy(raw, src, n * fs);
        return 0;
    }
    /* H5Tconvert converts in place: a buffer of the wider element size */
    unsigned char *tmp = raw;
    size_t need = n * (ms > fs ? ms : fs);
    if (need > chunk_bytes && !(tmp = sx_malloc(need))) return -1;
    memcpy(tmp, src, n * ms);
    int ok = H5Tconvert(mtype, ftype, n, tmp, NULL, H5P_DEFAULT) >= 0;
    if (ok && tmp != raw) memcpy(raw, tmp, n * fs);
    if (tmp != raw) sx_free(tmp);
    return ok ? 0 : -1;
}

int sx_h5_zchunk_write(hid_t dset, hid_t mtype, const void *buf, int rank, const hsize_t *dims,
                       const hsize_t *chunk, int shuffle, const sx_h5_zchunk_opts *o)
{
    hid_t ftype = H5Dget_type(dset);
    if (ftype < 0) return -1;
    size_t es = H5Tget_size(ftype);
    size_t row_elems = rank == 2 ? (size_t)dims[1] : 1;
    int64_t chunk_rows = (int64_t)chunk[0], n_rows = (int64_t)dims[0];
    size_t chunk_bytes = (size_t)chunk_rows * row_elems * es;
    int64_t n_chunks = (n_rows + chunk_rows - 1) / chunk_rows;
    int n_threads = o->threads < 1 ? 1 : o->threads > 16 ? 16 : o->threads;
    zc_chunk ch[ZC_BATCH];
    unsigned char *scratch[16] = {0};
    zc_round r = {.ch = ch, .chunk_bytes = chunk_bytes, .es = es, .scratch = scratch,
                  .level = o->level, .strategy = o->rle ? Z_RLE : Z_DEFAULT_STRATEGY,
                  .shuffle = shuffle && es > 1};
    int ok = rank == 1 || (rank == 2 && chunk[1] == dims[1]); /* whole rows per chunk */
    int nb = n_chunks < ZC_BATCH ? (int)n_chunks : ZC_BATCH;
    memset(ch, 0, sizeof ch);
    for (int i = 0; ok && i < nb; i++)
        ok = (ch[i].raw = sx_malloc(chunk_bytes)) && (ch[i].z = sx_malloc(chunk_bytes));
    for (int t = 0; ok && r.shuffle && t < n_threads && t < nb; t++)
        ok = (scratch[t] = sx_malloc(chunk_bytes)) != NULL;
    for (int64_t c0 = 0; ok && c0 < n_chunks; c0 += ZC_BATCH) {
        r.n = (int)(n_chunks - c0 < nb ? n_chunks - c0 : nb);
        for (int i = 0; ok && i < r.n; i++) {
            int64_t row0 = (c0 + i) * chunk_rows;
            int64_t rows = n_rows - row0 < chunk_rows ? n_rows - row0 : chunk_rows;
            ok = convert_rows(mtype, ftype, buf, row_elems, row0, rows, ch[i].raw, chunk_bytes) == 0;
        }
        if (ok) compress_round(&r, n_threads);
        for (int i = 0; ok && i < r.n; i++) {
            hsize_t off[2] = {(hsize_t)((c0 + i) * chunk_rows), 0};
            ok = ch[i].ok && H5Dwrite_chunk(dset, H5P_DEFAULT, ch[i].mask, off, ch[i].z_len,
                                            ch[i].z) >= 0;
        }
    }
    for (int i = 0; i < ZC_BATCH; i++) {
        sx_free(ch[i].raw);
        sx_free(ch[i].z);
    }
    for (int t = 0; t < 16; t++) sx_free(scratch[t]);
    H5Tclose(ftype);
    return ok ? 0 : -1;
}
