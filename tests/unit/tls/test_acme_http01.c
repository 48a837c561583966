/* SPDX-License-Identifier: MIT */
/* Unit tests for src/tls/acme_http01.c: answers added, replaced, looked up by request
 * target (exact token, the prefix required) and removed; bad tokens and a full table
 * refused. */
#include <criterion/criterion.h>

#include "tls/acme_http01.c"

#define T(s) s, strlen(s)

Test(acme_http01, answers_by_token_until_removed)
{
    char out[ACME_KEYAUTH_MAX];
    cr_assert_not(acme_http01_lookup(T("/.well-known/acme-challenge/tok1"), out, sizeof(out)));
    cr_assert_eq(acme_http01_add("tok1", "tok1.thumb"), 0);
    cr_assert_eq(acme_http01_add("tok2", "tok2.thumb"), 0);
    cr_assert(acme_http01_lookup(T("/.well-known/acme-challenge/tok1"), out, sizeof(out)));
    cr_assert_str_eq(out, "tok1.thumb");
    cr_assert_not(acme_http01_lookup(T("/.well-known/acme-challenge/tok"), out, sizeof(out)));
    cr_assert_not(acme_http01_lookup(T("/.well-known/acme-challenge/tok12"), out, sizeof(out)));
    cr_assert_not(acme_http01_lookup(T("/acme-challenge/tok1"), out, sizeof(out)));
    cr_assert_not(acme_http01_lookup(T("/.well-known/acme-challenge/"), out, sizeof(out)));
    cr_assert_eq(acme_http01_add("tok1", "tok1.other"), 0);
    cr_assert_eq(acme_http01_count(), 2);
    cr_assert(acme_http01_lookup(T("/.well-known/acme-challenge/tok1"), out, sizeof(out)));
    cr_assert_str_eq(out, "tok1.other");
    acme_http01_remove("tok1");
    cr_assert_not(acme_http01_lookup(T("/.well-known/acme-challenge/tok1"), out, sizeof(out)));
    cr_assert(acme_http01_lookup(T("/.well-known/acme-challenge/tok2"), out, sizeof(out)));
    acme_http01_remove("tok2");
    acme_http01_remove("absent");
    cr_assert_eq(acme_http01_count(), 0);
    (void)qsbr_reclaim();
}

Test(acme_http01, bad_tokens_and_a_full_table_are_refused)
{
    cr_assert_eq(acme_http01_add("../etc/passwd", "x"), -EINVAL);
    cr_assert_eq(acme_http01_add("", "x"), -EINVAL);
    char big[ACME_KEYAUTH_MAX + 1];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(acme_http01_add("t", big), -EINVAL);
    for (int i = 0; i < ACME_HTTP01_MAX; i++) {
        char tok[16];
        snprintf(tok, sizeof(tok), "t%d", i);
        cr_assert_eq(acme_http01_add(tok, "ka"), 0);
    }
    cr_assert_eq(acme_http01_add("one-more", "ka"), -ENOSPC);
    char out[8];
    cr_assert_not(acme_http01_lookup(T("/.well-known/acme-challenge/t1"), out, 2),
                  "an answer that does not fit is not sent cut");
    (void)qsbr_reclaim();
}
