/* fuzz_text — libFuzzer driver: the input is a plain-text matrix. The suffix decides the
 * parser (FORMATS.md 4: .csv = comma, .txt/.tsv = tab or spaces), so the first byte's low
 * bits pick one of the names; the byte stays part of the text. */
#include "fz_memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"in.csv", "in.txt", "in.tsv", "in.csv"};
    fz_read_both(names[size ? data[0] & 3 : 0], data, size);
    return 0;
}
