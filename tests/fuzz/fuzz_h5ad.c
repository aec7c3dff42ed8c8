/* fuzz_h5ad — libFuzzer driver: the input is an AnnData .h5ad file (HDF5 read through libhdf5 1.10),
 * validated and read as an upload is (fz_read_both). */
#include "fz_memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_read_both("in.h5ad", data, size);
    return 0;
}
