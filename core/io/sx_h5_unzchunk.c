/* sx_h5_unzchunk — a range of a 1-D deflated dataset read chunk by chunk: the stored chunks
 * fetched with H5Dread_chunk on the calling thread, inflated (and unshuffled) by a few
 * threads with libdeflate, the wanted part copied out.
 *
 * Why: HDF5 runs a dataset's filters on the reading thread, one chunk after another, with
 * zlib's streaming inflate, so a gzip h5ad or a 10x .h5 (Cell Ranger always compresses)
 * reads at one core's zlib speed while the matrix is the whole input. A stored chunk is one
 * whole zlib stream in memory: libdeflate's whole-buffer decompressor inflates it 2-3.5x
 * faster than zlib (README, Dependencies), so this path is taken even on one thread. HDF5
 * itself is called only from the calling thread (the library is not built thread-safe); the
 * workers touch their own buffers and their own decompressor.
 *
 * Only the layouts this reproduces exactly take this path: rank 1, chunked, the filters
 * deflate or shuffle + deflate (as h5py, anndata and Cell Ranger write them), no option that
 * leaves edge chunks unfiltered, the file type equal to the memory type or one of the
 * conversions readers ask for (int64 indices as int32, saturating as HDF5's conversion does;
 * Cell Ranger's int32 counts, or int64 ones, as float32, rounded to nearest as HDF5's C-cast
 * conversion does), chunks of at most 64 MiB. Anything else (an
 * unallocated chunk, a chunk whose inflated size is not the chunk's, lzf, ...) is left to
 * H5Dread, which reads or refuses it as before: this is a faster route to the same bytes,
 * never a second parser with its own rules. Inflating never writes past a chunk's size, so a
 * hostile stream costs at most one chunk of memory per slot. */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <libdeflate.h>

#include "sx_alloc.h"
#include "sx_h5x.h"

#define UZ_MAX_CHUNK (64 << 20)   /* bytes of one inflated chunk taken this way */
#define UZ_BATCH_BYTES (96 << 20) /* inflated bytes held per round */
#define UZ_MAX_THREADS 16
#define UZ_FALLBACK 1

typedef struct uz_plan {
    int64_t cdim;        /* elements per chunk */
    size_t fes, mes;     /* file and memory element sizes */
    size_t chunk_bytes;  /* inflated chunk */
    size_t zcap;         /* the largest stored chunk taken (deflate's worst case + slack) */
    int shuffle;         /* filter 0 is shuffle (then deflate is filter 1) */
    int conv;            /* UZ_COPY, or the file -> memory conversion */
} uz_plan;

enum { UZ_COPY, UZ_I64_I32, UZ_I32_F32, UZ_I64_F32 };

typedef struct uz_slot {
    unsigned char *z, *u, *t; /* stored, inflated, unshuffled (t only with shuffle) */
    size_t z_len;
    uint32_t mask;            /* filters H5Dread_chunk says were not applied */
    int64_t chunk;            /* chunk index */
} uz_slot;

typedef struct uz_round {
    const uz_plan *P;
    uz_slot *s;
    int n;
    _Atomic int next, bad;
    int64_t off, cnt; /* the caller's range */
    unsigned char *out;
} uz_round;

/* Which filters, types and chunking; UZ_FALLBACK when this path does not apply. */
static int uz_plan_of(hid_t d, hid_t mt, uz_plan *P)
{
    memset(P, 0, sizeof *P);
    int rc = UZ_FALLBACK;
    hid_t pl = H5Dget_create_plist(d), ft = H5Dget_type(d);
    hsize_t cdim = 0;
    unsigned opts = 0;
    if (pl < 0 || ft < 0 || H5Pget_layout(pl) != H5D_CHUNKED || H5Pget_chunk(pl, 1, &cdim) != 1 ||
        cdim == 0 || H5Pget_chunk_opts(pl, &opts) < 0 || opts != 0)
        goto out;
    int nf = H5Pget_nfilters(pl);
    H5Z_filter_t f[2] = {-1, -1};
    for (int i = 0; i < nf && i < 2; i++) {
        unsigned flags = 0, cd[8];
        size_t ncd = 8;
        f[i] = H5Pget_filter2(pl, (unsigned)i, &flags, &ncd, cd, 0, NULL, NULL);
    }
    if (nf == 2 && f[0] == H5Z_FILTER_SHUFFLE && f[1] == H5Z_FILTER_DEFLATE) P->shuffle = 1;
    else if (!(nf == 1 && f[0] == H5Z_FILTER_DEFLATE)) goto out;
    int f64 = H5Tequal(ft, H5T_NATIVE_INT64) > 0, f32 = H5Tequal(ft, H5T_NATIVE_INT32) > 0;
    int to_f = H5Tequal(mt, H5T_NATIVE_FLOAT) > 0;
    if (H5Tequal(ft, mt) > 0) P->conv = UZ_COPY;
    else if (f64 && H5Tequal(mt, H5T_NATIVE_INT32) > 0) P->conv = UZ_I64_I32;
    else if (f32 && to_f) P->conv = UZ_I32_F32;
    else if (f64 && to_f) P->conv = UZ_I64_F32;
    else goto out;
    P->fes = H5Tget_size(ft);
    P->mes = H5Tget_size(mt);
    if (P->fes == 0 || cdim > UZ_MAX_CHUNK / P->fes) goto out;
    P->cdim = (int64_t)cdim;
    P->chunk_bytes = (size_t)cdim * P->fes;
    P->zcap = P->chunk_bytes + P->chunk_bytes / 8 + 4096;
    rc = SX_OK;
out:
    if (pl >= 0) H5Pclose(pl);
    if (ft >= 0) H5Tclose(ft);
    return rc;
}

/* HDF5's shuffle filter undone: byte j of element i was stored at j * n + i. */
static void unshuffle(const unsigned char *in, unsigned char *out, size_t n, size_t es)
{
    for (size_t j = 0; j < es; j++)
        for (size_t i = 0; i < n; i++) out[i * es + j] = in[j * n + i];
}

/* n values from file bytes to memory bytes (unaligned both sides: memcpy per value). */
static void uz_convert(int conv, const unsigned char *from, unsigned char *to, int64_t n,
                       size_t fes)
{
    if (conv == UZ_COPY) {
        memcpy(to, from, (size_t)n * fes);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t v;
        if (conv == UZ_I32_F32) {
            int32_t w;
            memcpy(&w, from + 4 * i, 4);
            v = w;
        } else {
            memcpy(&v, from + 8 * i, 8);
        }
        if (conv == UZ_I64_I32) { /* HDF5's int64 -> int32: out of range saturates */
            int32_t w = v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
            memcpy(to + 4 * i, &w, 4);
        } else {
            float x = (float)v;
            memcpy(to + 4 * i, &x, 4);
        }
    }
}

/* One chunk: inflate (unless H5Dread_chunk says deflate was skipped), unshuffle, copy the
 * part inside the caller's range. 0, or UZ_FALLBACK when the stored bytes are not exactly
 * one chunk's worth (HDF5 then reads, or refuses, the whole range itself). */
static int uz_chunk(const uz_round *R, uz_slot *s, struct libdeflate_decompressor *dc)
{
    const uz_plan *P = R->P;
    const unsigned deflate_bit = 1u << (P->shuffle ? 1 : 0);
    const unsigned char *src = s->z;
    if (!(s->mask & deflate_bit)) {
        /* the zlib stream HDF5's deflate filter writes (header, deflate, adler32 checked) */
        size_t got = 0;
        if (libdeflate_zlib_decompress(dc, s->z, s->z_len, s->u, P->chunk_bytes, &got) !=
                LIBDEFLATE_SUCCESS ||
            got != P->chunk_bytes)
            return UZ_FALLBACK;
        src = s->u;
    } else if (s->z_len != P->chunk_bytes) {
        return UZ_FALLBACK;
    }
    if (P->shuffle && !(s->mask & 1u)) {
        unshuffle(src, s->t, (size_t)P->cdim, P->fes);
        src = s->t;
    }
    int64_t c0 = s->chunk * P->cdim, a = c0 > R->off ? c0 : R->off;
    int64_t b = c0 + P->cdim < R->off + R->cnt ? c0 + P->cdim : R->off + R->cnt;
    const unsigned char *from = src + (size_t)(a - c0) * P->fes;
    unsigned char *to = R->out + (size_t)(a - R->off) * P->mes;
    uz_convert(P->conv, from, to, b - a, P->fes);
    return 0;
}

static void *uz_worker(void *arg)
{
    uz_round *R = arg;
    struct libdeflate_decompressor *dc = libdeflate_alloc_decompressor();
    if (!dc) atomic_store(&R->bad, 1); /* out of memory: HDF5's own read */
    for (int i; (i = atomic_fetch_add(&R->next, 1)) < R->n;)
        if (!atomic_load(&R->bad) && uz_chunk(R, &R->s[i], dc)) atomic_store(&R->bad, 1);
    libdeflate_free_decompressor(dc);
    return NULL;
}

static void uz_slots_free(uz_slot *s, int n)
{
    for (int i = 0; s && i < n; i++) {
        sx_free(s[i].z);
        sx_free(s[i].u);
        sx_free(s[i].t);
    }
    sx_free(s);
}

/* The chunked read; 0, -1 (HDF5 failed to hand a chunk over) or UZ_FALLBACK. */
static int uz_read(hid_t d, const uz_plan *P, int64_t off, int64_t cnt, void *buf, int threads)
{
    int64_t c_first = off / P->cdim, c_last = (off + cnt - 1) / P->cdim;
    int64_t per = UZ_BATCH_BYTES / (int64_t)(P->chunk_bytes * (P->shuffle ? 2 : 1) + P->zcap);
    int n_slots = per < 1 ? 1 : per > 4 * threads ? 4 * threads : (int)per;
    if (n_slots > c_last - c_first + 1) n_slots = (int)(c_last - c_first + 1);
    uz_slot *s = sx_calloc((size_t)n_slots, sizeof *s);
    int rc = s ? 0 : UZ_FALLBACK;
    for (int i = 0; rc == 0 && i < n_slots; i++) {
        s[i].z = sx_malloc(P->zcap);
        s[i].u = sx_malloc(P->chunk_bytes);
        s[i].t = P->shuffle ? sx_malloc(P->chunk_bytes) : NULL;
        if (!s[i].z || !s[i].u || (P->shuffle && !s[i].t)) rc = UZ_FALLBACK;
    }
    uz_round R = {.P = P, .s = s, .off = off, .cnt = cnt, .out = buf};
    for (int64_t c = c_first; rc == 0 && c <= c_last;) {
        int n = 0;
        for (; n < n_slots && c <= c_last; n++, c++) {
            hsize_t co = (hsize_t)(c * P->cdim), sz = 0;
            if (H5Dget_chunk_storage_size(d, &co, &sz) < 0 || sz == 0 || sz > P->zcap) {
                rc = UZ_FALLBACK; /* unallocated (fill value) or odd: HDF5's own read */
                break;
            }
            s[n].z_len = (size_t)sz;
            s[n].chunk = c;
            if (H5Dread_chunk(d, H5P_DEFAULT, &co, &s[n].mask, s[n].z) < 0) {
                rc = -1;
                break;
            }
        }
        if (rc) break;
        R.n = n;
        atomic_store(&R.next, 0);
        int nth = threads < n ? threads : n, ok[UZ_MAX_THREADS] = {0};
        pthread_t th[UZ_MAX_THREADS];
        for (int t = 1; t < nth; t++) ok[t] = pthread_create(&th[t], NULL, uz_worker, &R) == 0;
        uz_worker(&R); /* the caller works too, and finishes what a failed start left */
        for (int t = 1; t < nth; t++)
            if (ok[t]) pthread_join(th[t], NULL);
        if (atomic_load(&R.bad)) rc = UZ_FALLBACK;
    }
    uz_slots_free(s, n_slots);
    return rc;
}

int h5x_unz_read(hid_t d, hid_t mt, int64_t off, int64_t cnt, void *buf, int threads)
{
    if (threads > UZ_MAX_THREADS) threads = UZ_MAX_THREADS;
    if (threads < 1) threads = 1;
    uz_plan P;
    if (cnt <= 0 || off < 0 || uz_plan_of(d, mt, &P) != SX_OK) return UZ_FALLBACK;
    if (off + cnt > h5x_npoints(d, NULL, NULL)) return UZ_FALLBACK;
    return uz_read(d, &P, off, cnt, buf, threads);
}

int h5x_read_slab1_mt(hid_t d, hid_t mt, int64_t off, int64_t cnt, void *buf, int threads)
{
    if (cnt <= 0) return 0;
    int rc = h5x_unz_read(d, mt, off, cnt, buf, threads);
    return rc != UZ_FALLBACK ? rc : h5x_read_slab1(d, mt, off, cnt, buf);
}
