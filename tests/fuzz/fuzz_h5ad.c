/* fuzz_h5ad — libFuzzer driver: the input is an AnnData .h5ad file (HDF5 read through libhdf5 1.10),
 * validated and read as an upload is (fz_read_both), then read slab by slab as a projection
 * job streams a large query (sx_h5ad_rows), without the validation in front: a job reads the
 * file on its own, and the slab reader must hold by itself. */
#include "fz_memfile.h"
#include "sx_h5ad_rows.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_slabs(const char *path)
{
    sx_status st;
    sx_status_clear(&st);
    sx_h5ad_rows *r = NULL;
    if (sx_h5ad_rows_open(path, NULL, NULL, &r, &st) != SX_OK || !r) return;
    sx_csr slab;
    /* small slabs: every slab boundary and the reuse of the reader's buffers are exercised */
    for (int i = 0; i < 4096; i++)
        if (sx_h5ad_rows_next(r, 3, 64, &slab, NULL, &st) != SX_OK || slab.n_rows == 0) break;
    sx_h5ad_rows_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_read_both("in.h5ad", data, size);
    read_slabs(fz_memfile("in.h5ad", data, size));
    return 0;
}
