/* The HTTP edge's pure parts (api_edge.h): the UTF-8 rule for query values against the
 * Unicode standard's cases and glibc's iconv, the problem for a failed store (507 with
 * Retry-After only when space ran out), and the new http_* settings. The deadlines and
 * framing checks need sockets: tests/integration/daemon_edge.sh. */
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#include "api_edge.h"
#include "srv_config.h"
#include "sx_test.h"

/* glibc's verdict: does iconv convert all of s from UTF-8? */
static int iconv_ok(const char *s, size_t n)
{
    iconv_t cd = iconv_open("UTF-32LE", "UTF-8");
    ck_assert_ptr_ne(cd, (iconv_t)-1);
    char out[4 * 64 + 16];
    char *in = (char *)s, *o = out;
    size_t il = n, ol = sizeof out;
    size_t rc = iconv(cd, &in, &il, &o, &ol);
    iconv_close(cd);
    return rc != (size_t)-1 && il == 0;
}

START_TEST(text_rule)
{
    /* cases named by the Unicode standard (ch. 3, table 3-7) */
    static const struct { const char *s; int ok; } cases[] = {
        {"plain", 1}, {"caf\xC3\xA9", 1}, {"\xE2\x82\xAC", 1}, {"\xF0\x9F\x98\x80", 1},
        {"\xF4\x8F\xBF\xBF", 1},  /* U+10FFFF, the last code point */
        {"\xFF", 0}, {"\xC3", 0}, /* not a lead byte; a sequence cut short */
        {"\xC0\xAF", 0}, {"\xE0\x80\xAF", 0}, {"\xF0\x80\x80\xAF", 0}, /* overlong '/' */
        {"\xED\xA0\x80", 0},      /* U+D800, a surrogate */
        {"\xF4\x90\x80\x80", 0},  /* past U+10FFFF */
        {"\x80", 0},              /* a continuation byte alone */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(api_edge_text_ok(cases[i].s, strlen(cases[i].s)) == cases[i].ok, "case %zu",
                      i);
    ck_assert_int_eq(api_edge_text_ok("a\0b", 3), 0); /* a NUL inside (%00) */
    ck_assert_int_eq(api_edge_text_ok("", 0), 1);
    /* random short byte strings without NUL, biased toward multi-byte lead bytes */
    unsigned seed = 14;
    for (int t = 0; t < 200000; t++) {
        char s[8];
        size_t n = 1 + (size_t)(rand_r(&seed) % 6);
        for (size_t i = 0; i < n; i++) {
            int r = rand_r(&seed) % 4;
            unsigned char b = r == 0 ? (unsigned char)(0x80 + rand_r(&seed) % 0x40)
                            : r == 1 ? (unsigned char)(0xC0 + rand_r(&seed) % 0x40)
                                     : (unsigned char)(1 + rand_r(&seed) % 255);
            s[i] = (char)b;
        }
        ck_assert_msg(api_edge_text_ok(s, n) == iconv_ok(s, n), "bytes %02x %02x %02x %02x (n=%zu)",
                      (unsigned char)s[0], n > 1 ? (unsigned char)s[1] : 0,
                      n > 2 ? (unsigned char)s[2] : 0, n > 3 ? (unsigned char)s[3] : 0, n);
    }
}
END_TEST

START_TEST(store_problem)
{
    const int errs[] = {ENOSPC, EDQUOT, EIO, EACCES};
    for (int i = 0; i < 4; i++) {
        api_resp o;
        api_resp_init(&o);
        api_edge_store_problem(&o, errs[i]);
        json_t *j = json_loadb(o.body, o.len, 0, NULL);
        ck_assert_ptr_nonnull(j);
        int full = i < 2;
        ck_assert_int_eq(o.status, full ? 507 : 503);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), o.status);
        ck_assert_str_eq(json_string_value(json_object_get(j, "type")),
                         full ? "urn:scalexd:problem:insufficient-storage"
                              : "urn:scalexd:problem:unavailable");
        ck_assert_str_eq(json_string_value(json_object_get(j, "title")),
                         full ? "Insufficient Storage" : "Service Unavailable");
        ck_assert_int_gt(o.retry_after, 0);
        json_decref(j);
        api_resp_free(&o);
    }
}
END_TEST

START_TEST(settings)
{
    srv_config c;
    sx_status st;
    srv_config_defaults(&c);
    ck_assert_int_eq(c.http_max_connections, 1000);
    ck_assert_int_gt(c.http_max_connections_per_ip, 0);
    ck_assert(c.http_header_timeout_s > 0 && c.http_body_timeout_s > 0);
    ck_assert_int_gt(c.http_body_min_rate, 0);
    ck_assert_int_eq(srv_config_set(&c, "http-max-connections-per-ip", "0", &st), SX_OK);
    ck_assert_int_eq(c.http_max_connections_per_ip, 0); /* no limit behind a proxy */
    ck_assert_int_eq(srv_config_set(&c, "http_header_timeout", "2.5", &st), SX_OK);
    ck_assert(c.http_header_timeout_s == 2.5);
    ck_assert_int_eq(srv_config_set(&c, "http_body_timeout", "-1", &st), SX_EINVAL);
    ck_assert_int_eq(srv_config_set(&c, "http_body_min_rate", "fast", &st), SX_EINVAL);
    ck_assert_int_eq(srv_config_set(&c, "http_max_connections", "0", &st), SX_OK);
    ck_assert_int_eq(srv_config_check(&c, &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "http_max_connections"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server_http_edge");
    TCase *tc = tcase_create("edge");
    tcase_add_test(tc, text_rule);
    tcase_add_test(tc, store_problem);
    tcase_add_test(tc, settings);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
