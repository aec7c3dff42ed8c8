/* LZF decoding for HDF5 (filter 32000), on Debian's liblzf.
 *
 * h5py ships the LZF filter and anndata/scanpy write it on request
 * (`adata.write_h5ad(..., compression="lzf")`, common in the anndata 0.6/0.7 years), but
 * libhdf5 has no LZF of its own, and Debian's hdf5-plugin-lzf (bookworm) does not load: its
 * .so lacks the liblzf dependency (undefined symbol lzf_decompress). So the readers
 * register this decoder themselves, before the first file is opened.
 *
 * What the filter stores (h5py's filter, revision 3): each chunk is one lzf_compress
 * block; the filter's client data are {filter revision, LZF API version, chunk size in
 * bytes}; a chunk that did not shrink is stored raw with the filter's bit set in the chunk's
 * filter mask, so HDF5 never hands it to us. Decoding needs only the chunk size (the
 * output's length); when the client data lack it, the output grows until the block fits.
 *
 * Reading only: scalex writes gzip, and an encode request fails (HDF5 then reports the
 * write error by the filter's name).
 */
#include <errno.h>
#include <limits.h>
#include <lzf.h>
#include <pthread.h>
#include <stdlib.h>

#include "sx_h5.h"

#define LZF_FILTER_ID 32000

static size_t lzf_decode(unsigned flags, size_t cd_nelmts, const unsigned cd_values[],
                         size_t nbytes, size_t *buf_size, void **buf)
{
    if (!(flags & H5Z_FLAG_REVERSE)) return 0; /* encoding: not offered */
    if (nbytes == 0 || nbytes > UINT_MAX) return 0;
    /* the stored chunk size is a hint from the file: trusted only up to liblzf's limit */
    size_t out = cd_nelmts >= 3 && cd_values[2] > 0 ? cd_values[2] : 4 * nbytes;
    for (;;) {
        if (out > UINT_MAX) out = UINT_MAX;
        void *dst = malloc(out);
        if (!dst) return 0;
        unsigned got = lzf_decompress(*buf, (unsigned)nbytes, dst, (unsigned)out);
        if (got > 0) {
            free(*buf); /* HDF5 allocates filter buffers with the C allocator */
            *buf = dst;
            *buf_size = out;
            return got;
        }
        int e = errno;
        free(dst);
        /* E2BIG: a lying or absent size hint; anything else is corrupt data */
        if (e != E2BIG || out == UINT_MAX) return 0;
        out *= 2;
    }
}

static const H5Z_class2_t lzf_class = {
    H5Z_CLASS_T_VERS, (H5Z_filter_t)LZF_FILTER_ID, 0 /* encoder */, 1 /* decoder */, "lzf",
    NULL, NULL, lzf_decode,
};

static void lzf_register(void) { H5Zregister(&lzf_class); }

void sx_h5_register_filters(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, lzf_register);
}
