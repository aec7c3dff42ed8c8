/* fuzz_tenx_h5 — libFuzzer driver: the input is a 10x Cell Ranger .h5 (v2 per-genome or v3),
 * validated and read as an upload is (fz_read_both). */
#include "fz_memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_read_both("in.h5", data, size);
    return 0;
}
