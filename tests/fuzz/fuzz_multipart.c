/* fuzz_multipart — libFuzzer driver: the input is a whole HTTP request (request line,
 * headers, body), handed to libmicrohttpd as scalexd's uploads are; the seeds are
 * multipart/form-data uploads (one file, an mtx folder of three, a name field, chunked
 * transfer, a body cut before its closing boundary). See fz_mhd.h for what is and is not
 * reached. */
#include "fz_mhd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_mhd_request(data, size);
    return 0;
}
