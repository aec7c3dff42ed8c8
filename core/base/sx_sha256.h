/* sx_sha256 — SHA-256 (FIPS 180-4) for dataset/upload checksums, token digests and
 * provenance, computed by OpenSSL's libcrypto (EVP): it uses the CPU's SHA instructions
 * (SHA-NI / ARMv8 SHA2), about 2 GB/s per core, where the portable C code it replaced ran at
 * ~300 MB/s and was most of the daemon's CPU during uploads.
 *
 * Streaming: init, update any number of times, final. The context owns one libcrypto object:
 * sx_sha256_final_hex releases it; a context abandoned before final (a client that went away
 * mid-upload) must be passed to sx_sha256_free. Both are safe on a zeroed or finished context.
 * One context is used by one thread at a time. */
#ifndef SX_SHA256_H
#define SX_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "sx_error.h"

typedef struct sx_sha256 {
    void *ctx; /* EVP_MD_CTX *, owned; NULL before init, after final/free, or if init failed */
    int failed; /* init or an update failed: final reports it instead of a wrong digest */
} sx_sha256;

/* Start a digest. SX_ENOMEM (and a context that final refuses) when libcrypto cannot
 * allocate; callers that ignore the result learn it from sx_sha256_final_hex. */
int sx_sha256_init(sx_sha256 *c);
void sx_sha256_update(sx_sha256 *c, const void *data, size_t n);
/* Finish and write the 64 lowercase hex digits + NUL into hex[65]; releases the context.
 * SX_OK, or SX_ENOMEM with hex set to "" when the digest could not be computed. */
int sx_sha256_final_hex(sx_sha256 *c, char hex[65]);
/* Release a context that will not be finished; a no-op on a zeroed or finished one. */
void sx_sha256_free(sx_sha256 *c);
/* Hash a whole file (streamed in 1 MiB blocks). */
int sx_sha256_file(const char *path, char hex[65], sx_status *st);

#endif
