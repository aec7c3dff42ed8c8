/* SHA-256 (libcrypto underneath) against FIPS 180-4 test vectors and against coreutils'
 * sha256sum on a real data file and on random bytes fed in uneven pieces. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sx_sha256.h"
#include "sx_test.h"

static void hash_str(const char *s, char hex[65])
{
    sx_sha256 c;
    sx_sha256_init(&c);
    sx_sha256_update(&c, s, strlen(s));
    sx_sha256_final_hex(&c, hex);
}

START_TEST(fips_vectors)
{
    char hex[65];
    hash_str("abc", hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    hash_str("", hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hash_str("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", hex);
    ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* one million 'a', fed in uneven pieces */
    sx_sha256 c;
    sx_sha256_init(&c);
    char a[997];
    memset(a, 'a', sizeof a);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof a ? left : sizeof a;
        sx_sha256_update(&c, a, n);
        left -= n;
    }
    sx_sha256_final_hex(&c, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

START_TEST(file_matches_sha256sum)
{
    const char *path = sx_test_shared("data/pancreas_baron_human_mouse_cider/query_mouse.h5ad");
    char cmd[4200], want[65] = {0}, got[65];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%64s", want), 1);
    pclose(p);
    sx_status st;
    ck_assert_int_eq(sx_sha256_file(path, got, &st), SX_OK);
    ck_assert_str_eq(got, want);
    ck_assert_int_eq(sx_sha256_file("/nonexistent/x", got, &st), SX_EIO);
}
END_TEST

/* What an upload does: pieces of every size, across block boundaries; and a context abandoned
 * mid-stream (a client that went away) is released by sx_sha256_free (ASan's leak check). */
START_TEST(pieces_match_sha256sum)
{
    char path[] = "/tmp/sx_sha256_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t total = 3 * 1000 * 1000 + 17;
    unsigned char *b = malloc(total);
    ck_assert_ptr_nonnull(b);
    unsigned long long x = 88172645463325252ULL;
    for (size_t i = 0; i < total; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b[i] = (unsigned char)x;
    }
    ck_assert_int_eq(write(fd, b, total), (ssize_t)total);
    close(fd);
    sx_sha256 c, gone;
    ck_assert_int_eq(sx_sha256_init(&c), SX_OK);
    ck_assert_int_eq(sx_sha256_init(&gone), SX_OK);
    for (size_t at = 0, step = 1; at < total; step = step * 3 % 70001 + 1) {
        size_t n = total - at < step ? total - at : step;
        sx_sha256_update(&c, b + at, n);
        sx_sha256_update(&gone, b + at, n);
        at += n;
    }
    sx_sha256_free(&gone);
    sx_sha256_free(&gone); /* twice: a no-op */
    char got[65], want[65] = {0}, cmd[200];
    ck_assert_int_eq(sx_sha256_final_hex(&c, got), SX_OK);
    sx_sha256_free(&c); /* after final: a no-op */
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%64s", want), 1);
    pclose(p);
    ck_assert_str_eq(got, want);
    unlink(path);
    free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sha256");
    TCase *tc = tcase_create("sha256");
    tcase_add_test(tc, fips_vectors);
    tcase_add_test(tc, file_matches_sha256sum);
    tcase_add_test(tc, pieces_match_sha256sum);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
