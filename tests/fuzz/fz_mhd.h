/* fz_mhd — feed one raw HTTP request to libmicrohttpd in this process, no network.
 *
 * Why: the daemon's own multipart glue (api_http.c post_iter / end_multipart) is static and
 * needs a running api_server (registry, data dir, spool files), so it is not reachable from a
 * fuzz driver without a daemon. What is reachable, and is the daemon's first contact with a
 * client's bytes, is libmicrohttpd's request parser (request line, headers, chunked bodies,
 * query-string decoding) and its multipart post processor, plus our api_page on the parsed
 * arguments. A daemon without a listening socket gets one end of a socketpair through
 * MHD_add_connection and is driven by MHD_run in this thread until it closes the connection.
 *
 * The access handler (fz_mhd.c) runs, for every request: api_page (page_size, page_token)
 * and api_next_token on its result; for a multipart/form-data body: MHD_create_post_processor
 * + MHD_post_process with an iterator that checks what it is handed (NUL-terminated key and
 * file name, readable data, offsets that grow) and puts file names through srv_name_ok, the
 * check post_iter applies. */
#ifndef FZ_MHD_H
#define FZ_MHD_H

#include <stddef.h>
#include <stdint.h>

/* Send REQ (a whole request, headers and body) and run the daemon until it answers and
 * closes, or a bounded number of rounds passes. */
void fz_mhd_request(const uint8_t *req, size_t n);

#endif
