/* SPDX-License-Identifier: MIT */
/* Unit tests for src/tls/acme_order.c's pure parts: URL splitting (what keel follows and
 * what it refuses) and the order's transition table. The order itself runs against a real
 * ACME server (pebble) in tests/system/test_acme.py. */
#include <criterion/criterion.h>

#include "tls/acme_order.c"

static int split(const char *url, char *host, uint16_t *port, char *path)
{
    return acme_url_split(url, host, 256, port, path, 512);
}

Test(acme_order, urls_split_into_host_port_and_path)
{
    char host[256], path[512];
    uint16_t port;
    cr_assert_eq(split("https://acme.example/directory", host, &port, path), 0);
    cr_assert_str_eq(host, "acme.example");
    cr_assert_eq(port, 443);
    cr_assert_str_eq(path, "/directory");
    cr_assert_eq(split("https://127.0.0.1:14000/dir?x=1", host, &port, path), 0);
    cr_assert_str_eq(host, "127.0.0.1");
    cr_assert_eq(port, 14000);
    cr_assert_str_eq(path, "/dir?x=1");
    cr_assert_eq(split("https://[::1]:8443", host, &port, path), 0);
    cr_assert_str_eq(host, "::1");
    cr_assert_eq(port, 8443);
    cr_assert_str_eq(path, "/");
    const char *bad[] = {"http://a/dir",     "https://",        "https://u@a/",  "https://a:0/",
                         "https://a:65536/", "https://a:x/",    "https://[::1/", "https://a/b#frag",
                         "ftp://a/",         "https://[::1]x/", "https://a:/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(split(bad[i], host, &port, path), -EINVAL, "%s", bad[i]);
    }
}

Test(acme_order, the_table_moves_forward_and_every_state_may_end)
{
    cr_assert(acme_order_state_is_legal(ACME_ORDER_DIRECTORY, ACME_ORDER_NONCE));
    cr_assert(acme_order_state_is_legal(ACME_ORDER_NONCE, ACME_ORDER_ACCOUNT));
    cr_assert(acme_order_state_is_legal(ACME_ORDER_ACCOUNT, ACME_ORDER_NEW_ORDER));
    cr_assert(acme_order_state_is_legal(ACME_ORDER_AUTHZ, ACME_ORDER_CHALLENGE));
    cr_assert(acme_order_state_is_legal(ACME_ORDER_CHALLENGE, ACME_ORDER_POLL_AUTHZ));
    cr_assert(acme_order_state_is_legal(ACME_ORDER_POLL_AUTHZ, ACME_ORDER_FINALIZE));
    cr_assert(acme_order_state_is_legal(ACME_ORDER_FINALIZE, ACME_ORDER_POLL_ORDER));
    cr_assert(acme_order_state_is_legal(ACME_ORDER_POLL_ORDER, ACME_ORDER_DOWNLOAD));
    for (int s = 0; s < ACME_ORDER_DONE; s++) {
        cr_assert(acme_order_state_is_legal((enum acme_order_state)s, ACME_ORDER_DONE));
        cr_assert_str_neq(acme_order_state_name((enum acme_order_state)s), "?");
    }
    cr_assert_not(acme_order_state_is_legal(ACME_ORDER_DONE, ACME_ORDER_DIRECTORY));
    cr_assert_not(acme_order_state_is_legal(ACME_ORDER_DIRECTORY, ACME_ORDER_DOWNLOAD));
    cr_assert_not(acme_order_state_is_legal(ACME_ORDER_CHALLENGE, ACME_ORDER_FINALIZE));
    cr_assert_not(acme_order_state_is_legal(ACME_ORDER_DOWNLOAD, ACME_ORDER_AUTHZ));
}
