/* fuzz_mtx — libFuzzer driver: the input is a bare MatrixMarket coordinate file,
 * validated and read as an upload is (fz_read_both). */
#include "fz_memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_read_both("in.mtx", data, size);
    return 0;
}
