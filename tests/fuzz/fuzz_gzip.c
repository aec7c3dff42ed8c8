/* fuzz_gzip — libFuzzer driver: the input is a gzip stream (or, when it is not one, plain
 * bytes: zlib reads those through, as the readers do) named as a gzip'd text matrix or
 * MatrixMarket file. The last byte's low bits pick the name, so the gzip header at the
 * front stays intact for the seeds. Finds: truncated / corrupt members, multi-member
 * files, and what the decompressed text does to the text and mtx parsers. */
#include "fz_memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"in.csv.gz", "in.tsv.gz", "in.mtx.gz", "in.txt.gz"};
    fz_read_both(names[size ? data[size - 1] & 3 : 0], data, size);
    return 0;
}
