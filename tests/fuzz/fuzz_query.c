/* fuzz_query — libFuzzer driver: the input is a query string. It is put into
 * "GET /v1/jobs?<input> HTTP/1.1", parsed by libmicrohttpd (percent-decoding, repeated and
 * empty keys) and read by api_page (page_size, page_token) as every list route reads it.
 * Bytes that cannot be in a request line (space, CR, LF) end it, as a client would. */
#include <stdlib.h>
#include <string.h>

#include "fz_mhd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char head[] = "GET /v1/jobs?", tail[] = " HTTP/1.1\r\nHost: x\r\n\r\n";
    if (size > 8192) return 0;
    size_t q = 0;
    while (q < size && data[q] != ' ' && data[q] != '\r' && data[q] != '\n') q++;
    char *req = malloc(sizeof head + q + sizeof tail);
    if (!req) return 0;
    memcpy(req, head, sizeof head - 1);
    memcpy(req + sizeof head - 1, data, q);
    memcpy(req + sizeof head - 1 + q, tail, sizeof tail - 1);
    fz_mhd_request((const uint8_t *)req, sizeof head - 1 + q + sizeof tail - 1);
    free(req);
    return 0;
}
