#include "sx_sha256.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "sx_alloc.h"

int sx_sha256_init(sx_sha256 *c)
{
    /* never reads c: callers init stack contexts that hold garbage */
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    c->ctx = x;
    c->failed = !x || EVP_DigestInit_ex(x, EVP_sha256(), NULL) != 1;
    return c->failed ? SX_ENOMEM : SX_OK;
}

void sx_sha256_update(sx_sha256 *c, const void *data, size_t n)
{
    if (c->failed || !c->ctx || !n) return;
    if (EVP_DigestUpdate(c->ctx, data, n) != 1) c->failed = 1;
}

int sx_sha256_final_hex(sx_sha256 *c, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    int ok = !c->failed && c->ctx && EVP_DigestFinal_ex(c->ctx, md, &len) == 1 && len == 32;
    sx_sha256_free(c);
    hex[0] = '\0';
    if (!ok) return SX_ENOMEM;
    static const char digit[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digit[md[i] >> 4];
        hex[2 * i + 1] = digit[md[i] & 15];
    }
    hex[64] = '\0';
    return SX_OK;
}

void sx_sha256_free(sx_sha256 *c)
{
    EVP_MD_CTX_free(c->ctx); /* NULL-safe */
    c->ctx = NULL;
}

int sx_sha256_file(const char *path, char hex[65], sx_status *st)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sx_status_set(st, SX_EIO, "%s: cannot open (%s)", path, strerror(errno));
    uint8_t *buf = sx_malloc(1 << 20);
    if (!buf) {
        fclose(f);
        return sx_status_set(st, SX_ENOMEM, "sha256: out of memory");
    }
    sx_sha256 c;
    sx_sha256_init(&c);
    size_t n;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0) sx_sha256_update(&c, buf, n);
    int bad = ferror(f);
    fclose(f);
    sx_free(buf);
    if (bad) {
        sx_sha256_free(&c);
        return sx_status_set(st, SX_EIO, "%s: read error while hashing", path);
    }
    if (sx_sha256_final_hex(&c, hex) != SX_OK)
        return sx_status_set(st, SX_ENOMEM, "sha256: out of memory: free memory and retry");
    return SX_OK;
}
