/* SPDX-License-Identifier: MIT */
/* Unit tests for src/tls/acme_msg.c: pebble-like directory, order, authorization and
 * problem documents; missing and oversized fields refused with their name; challenges with
 * a token that is not base64url dropped; statuses by name. */
#include <criterion/criterion.h>

#include "tls/acme_msg.c"

#define S(x) x, strlen(x)

Test(acme_msg, a_directory_gives_its_three_urls)
{
    struct acme_directory d;
    struct errbuf eb;
    cr_assert_eq(acme_parse_directory(S("{\"newNonce\":\"https://h/n\",\"newAccount\":\"https://"
                                        "h/a\",\"newOrder\":\"https://h/o\",\"meta\":{}}"),
                                      &d, &eb),
                 0, "%s", eb.msg);
    cr_assert_str_eq(d.new_nonce, "https://h/n");
    cr_assert_str_eq(d.new_account, "https://h/a");
    cr_assert_str_eq(d.new_order, "https://h/o");
    cr_assert_eq(acme_parse_directory(S("{\"newNonce\":\"https://h/n\"}"), &d, &eb), -EPROTO);
    cr_assert_str_eq(eb.msg, "\"newAccount\" missing or not a string");
    cr_assert_eq(acme_parse_directory(S("[1]"), &d, &eb), -EPROTO);
    cr_assert_str_eq(eb.msg, "not a JSON object");
    cr_assert_eq(acme_parse_directory(S("{"), &d, &eb), -EPROTO);
    cr_assert(strncmp(eb.msg, "not JSON: ", 10) == 0, "%s", eb.msg);
    char big[1024];
    snprintf(big, sizeof(big), "{\"newNonce\":\"%0600d\",\"newAccount\":\"a\",\"newOrder\":\"o\"}",
             0);
    cr_assert_eq(acme_parse_directory(S(big), &d, &eb), -EPROTO);
    cr_assert(strstr(eb.msg, "\"newNonce\" too long") != NULL, "%s", eb.msg);
}

Test(acme_msg, an_order_gives_status_authorizations_finalize_certificate)
{
    struct acme_order_msg o;
    struct errbuf eb;
    cr_assert_eq(acme_parse_order(S("{\"status\":\"valid\",\"finalize\":\"https://h/f\","
                                    "\"certificate\":\"https://h/c\",\"authorizations\":"
                                    "[\"https://h/z1\",\"https://h/z2\"]}"),
                                  &o, &eb),
                 0, "%s", eb.msg);
    cr_assert_eq(o.status, ACME_STATUS_VALID);
    cr_assert_eq(o.n_authorizations, 2);
    cr_assert_str_eq(o.authorizations[1], "https://h/z2");
    cr_assert_str_eq(o.certificate, "https://h/c");
    cr_assert_eq(acme_parse_order(S("{\"status\":\"pending\",\"finalize\":\"f\","
                                    "\"authorizations\":[]}"),
                                  &o, &eb),
                 0, "%s", eb.msg);
    cr_assert_str_eq(o.certificate, "");
    cr_assert_eq(acme_parse_order(S("{\"status\":\"weird\",\"finalize\":\"f\","
                                    "\"authorizations\":[]}"),
                                  &o, &eb),
                 -EPROTO);
    cr_assert_eq(acme_parse_order(S("{\"status\":\"ready\",\"finalize\":\"f\","
                                    "\"authorizations\":[1]}"),
                                  &o, &eb),
                 -EPROTO);
    cr_assert_str_eq(eb.msg, "authorization 0 is not a URL");
}

Test(acme_msg, an_authorization_keeps_readable_challenges_and_their_errors)
{
    struct acme_authz_msg a;
    struct errbuf eb;
    cr_assert_eq(
        acme_parse_authz(
            S("{\"status\":\"invalid\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.test\"},"
              "\"challenges\":[{\"type\":\"tls-alpn-01\",\"url\":\"https://h/c0\",\"token\":"
              "\"../x\"},{\"type\":\"http-01\",\"url\":\"https://h/c1\",\"token\":\"Ab-_9\","
              "\"status\":\"invalid\",\"error\":{\"detail\":\"connection refused\"}}]}"),
            &a, &eb),
        0, "%s", eb.msg);
    cr_assert_eq(a.status, ACME_STATUS_INVALID);
    cr_assert_str_eq(a.identifier, "a.test");
    cr_assert_str_eq(a.identifier_type, "dns");
    cr_assert_eq(a.n_challenges, 1, "the challenge with a path in its token is dropped");
    cr_assert_str_eq(a.challenges[0].type, "http-01");
    cr_assert_str_eq(a.challenges[0].token, "Ab-_9");
    cr_assert_str_eq(a.challenges[0].error, "connection refused");
    cr_assert_eq(acme_parse_authz(S("{\"status\":\"pending\",\"challenges\":[]}"), &a, &eb),
                 -EPROTO);
    cr_assert_str_eq(eb.msg, "\"value\" missing or not a string");
}

Test(acme_msg, problems_and_tokens)
{
    struct acme_problem p;
    acme_parse_problem(S("{\"type\":\"urn:ietf:params:acme:error:badNonce\",\"detail\":\"old\"}"),
                       &p);
    cr_assert_str_eq(p.type, "urn:ietf:params:acme:error:badNonce");
    cr_assert_str_eq(p.detail, "old");
    acme_parse_problem(S("<html>"), &p);
    cr_assert_str_eq(p.type, "");
    cr_assert(acme_token_is_valid("aZ09-_"));
    cr_assert_not(acme_token_is_valid(""));
    cr_assert_not(acme_token_is_valid("a/b"));
    cr_assert_not(acme_token_is_valid("a=="));
    cr_assert_str_eq(acme_status_name(ACME_STATUS_PROCESSING), "processing");
}
