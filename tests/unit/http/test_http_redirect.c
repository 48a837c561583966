/* SPDX-License-Identifier: MIT */
/* Unit tests for src/http/http_redirect.c: the Location of the HTTP-to-HTTPS redirect (host
 * checked, port dropped or replaced, path and query kept, absolute-form and "*" targets,
 * escaping), the status per method, and the ACME challenge prefix. */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#include "http/http_redirect.c"

static int loc(const char *host, uint16_t port, const char *target, char *out, size_t cap)
{
    return http_redirect_location(host, strlen(host), port, target, strlen(target), out, cap);
}

Test(http_redirect, the_location_keeps_host_path_and_query)
{
    char out[256];
    cr_assert_gt(loc("example.com", 443, "/a/b?x=1&y=2", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "https://example.com/a/b?x=1&y=2");
    cr_assert_gt(loc("example.com:80", 443, "/", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "https://example.com/", "the plain port is dropped");
    cr_assert_gt(loc("example.com:8080", 8443, "/p", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "https://example.com:8443/p", "the tls bind's port when not 443");
    cr_assert_gt(loc("127.0.0.1", 8443, "/p", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "https://127.0.0.1:8443/p");
    cr_assert_gt(loc("[::1]:80", 443, "/p", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "https://[::1]/p");
    cr_assert_gt(loc("Example.COM", 443, "/", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "https://Example.COM/");
}

Test(http_redirect, absolute_form_and_asterisk_targets)
{
    char out[256];
    cr_assert_gt(loc("a.test", 443, "http://other.test:80/x?y", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "https://a.test/x?y", "the Host decides, the path stays");
    cr_assert_gt(loc("a.test", 443, "http://other.test", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "https://a.test/");
    cr_assert_gt(loc("a.test", 443, "http://other.test?q", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "https://a.test/?q");
    cr_assert_gt(loc("a.test", 443, "*", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "https://a.test/");
}

Test(http_redirect, bad_hosts_are_refused_no_header_injection)
{
    char out[256];
    const char *bad[] = {"",
                         "a.test\r\nSet-Cookie: x=1",
                         "a.test/evil",
                         "user@a.test",
                         "a test",
                         "a.test:",
                         "a.test:123456",
                         "a.test:80x",
                         ".a.test",
                         "-a.test",
                         "[::1",
                         "[]",
                         "[::1]x",
                         "[zz::1]",
                         "a.test\"><script>"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(loc(bad[i], 443, "/", out, sizeof(out)), -EINVAL, "host %zu accepted", i);
    }
    char longhost[300];
    memset(longhost, 'a', sizeof(longhost) - 1);
    longhost[sizeof(longhost) - 1] = '\0';
    cr_assert_eq(loc(longhost, 443, "/", out, sizeof(out)), -EINVAL);
}

Test(http_redirect, odd_bytes_are_escaped_and_small_buffers_refused)
{
    char out[256];
    const char target[] = "/a\x7f\xc3\xa9";
    cr_assert_gt(
        http_redirect_location("a.test", 6, 443, target, sizeof(target) - 1, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "https://a.test/a%7F%C3%A9");
    cr_assert_eq(loc("a.test", 443, "/abcdef", out, 16), -ENOSPC);
    cr_assert_eq(loc("a.test", 443, "/abcdef", out, 21), -ENOSPC);
    cr_assert_eq(loc("a.test", 443, "/abcdef", out, 22), 21);
}

Test(http_redirect, status_per_method_and_the_acme_prefix)
{
    cr_assert_eq(http_redirect_status(HTTP_METHOD_GET), 301);
    cr_assert_eq(http_redirect_status(HTTP_METHOD_HEAD), 301);
    cr_assert_eq(http_redirect_status(HTTP_METHOD_POST), 308);
    cr_assert_eq(http_redirect_status(HTTP_METHOD_PUT), 308);
    const char *acme = "/.well-known/acme-challenge/token123";
    cr_assert(http_redirect_is_acme(acme, strlen(acme)));
    cr_assert_not(http_redirect_is_acme("/.well-known/acme-challenge/", 28));
    cr_assert_not(http_redirect_is_acme("/.well-known/other", 18));
    cr_assert_not(http_redirect_is_acme("/", 1));
}
