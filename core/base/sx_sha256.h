/* sx_sha256 — SHA-256 (FIPS 180-4) for dataset/upload checksums and provenance.
 * Streaming: init, update any number of times, final. No allocation. */
#ifndef SX_SHA256_H
#define SX_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "sx_error.h"

typedef struct sx_sha256 {
    uint32_t h[8];
    uint64_t len;      /* bytes hashed so far */
    uint8_t buf[64];
    size_t fill;
} sx_sha256;

void sx_sha256_init(sx_sha256 *c);
void sx_sha256_update(sx_sha256 *c, const void *data, size_t n);
/* Finish and write the 64 lowercase hex digits + NUL into hex[65]. */
void sx_sha256_final_hex(sx_sha256 *c, char hex[65]);
/* Hash a whole file (streamed in 1 MiB blocks). */
int sx_sha256_file(const char *path, char hex[65], sx_status *st);

#endif
