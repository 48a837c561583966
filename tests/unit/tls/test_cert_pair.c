/* SPDX-License-Identifier: MIT */
/* Unit tests for the pure parts of src/tls/cert_pair.c: the order lock's next step from
 * what a poll saw, who takes etcd's certificate and who publishes its own, and the bundles
 * (key, leaf, chain) read back with their checks. The etcd side runs in
 * tests/system/test_acme_pair.py against a real etcd. */
#include <criterion/criterion.h>

#include "tls/cert_pair.c"

#include <ftw.h>
#include <unistd.h>

static const char self[] = "lb1/100";

Test(cert_pair, lock_step)
{
    cr_assert_eq(cert_pair_lock_step(NULL, 0, false, self), CERT_PAIR_LOCK_ACQUIRE);
    cr_assert_eq(cert_pair_lock_step(NULL, 0, true, self), CERT_PAIR_LOCK_ACQUIRE,
                 "our key is gone (lease expired): take it again");
    cr_assert_eq(cert_pair_lock_step("lb1/100", 7, true, self), CERT_PAIR_LOCK_RENEW);
    cr_assert_eq(cert_pair_lock_step("lb1/100", 7, false, self), CERT_PAIR_LOCK_FOLLOW,
                 "our identity without our lease: a previous life, wait for its TTL");
    cr_assert_eq(cert_pair_lock_step("lb2/200", 7, true, self), CERT_PAIR_LOCK_FOLLOW,
                 "another holds it: we lost it");
    cr_assert_eq(cert_pair_lock_step("lb2/200", 7, false, self), CERT_PAIR_LOCK_FOLLOW);
    cr_assert_eq(cert_pair_lock_step("lb1/1000", 8, true, self), CERT_PAIR_LOCK_FOLLOW,
                 "a prefix of our identity is not ours");
    cr_assert_eq(cert_pair_lock_step("lb1/10", 6, true, self), CERT_PAIR_LOCK_FOLLOW);
    cr_assert_eq(cert_pair_lock_step("lb1/100xyz", 7, true, self), CERT_PAIR_LOCK_RENEW,
                 "the length given is what counts");
}

Test(cert_pair, who_adopts)
{
    /* nothing served (a placeholder): take it */
    cr_assert(cert_pair_should_adopt(false, false, "", 0, "AA", 100));
    cr_assert(cert_pair_should_adopt(true, false, "", 0, "AA", 100));
    /* the same: nothing to do */
    cr_assert_not(cert_pair_should_adopt(false, true, "AA", 100, "AA", 100));
    cr_assert_not(cert_pair_should_adopt(true, true, "AA", 100, "AA", 100));
    /* a follower serves what the holder published, older or not */
    cr_assert(cert_pair_should_adopt(false, true, "AA", 200, "BB", 100));
    cr_assert(cert_pair_should_adopt(false, true, "AA", 100, "BB", 200));
    /* the holder only a newer one */
    cr_assert_not(cert_pair_should_adopt(true, true, "AA", 200, "BB", 100));
    cr_assert(cert_pair_should_adopt(true, true, "AA", 100, "BB", 200));
}

Test(cert_pair, who_publishes)
{
    cr_assert(cert_pair_should_publish(true, true, false, "AA", 100, "", 0));
    cr_assert_not(cert_pair_should_publish(false, true, false, "AA", 100, "", 0),
                  "only the holder writes");
    cr_assert_not(cert_pair_should_publish(true, false, false, "", 0, "", 0),
                  "never a placeholder");
    cr_assert_not(cert_pair_should_publish(true, true, true, "AA", 100, "AA", 100));
    cr_assert(cert_pair_should_publish(true, true, true, "BB", 200, "AA", 100));
    cr_assert_not(cert_pair_should_publish(true, true, true, "BB", 100, "AA", 200));
}

/* ---------------------------------------------------------------- bundles */

static char dir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/keel-pair-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    (void)nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void leaf(struct tls_ca *ca, uint32_t lifetime_s, time_t now, struct tls_cert *out)
{
    char ca_dir[128];
    snprintf(ca_dir, sizeof(ca_dir), "%s/ca", dir);
    bool created = false;
    struct errbuf eb = {{0}};
    cr_assert_eq(tls_ca_open(ca_dir, now, ca, &created, &eb), 0, "%s", eb.msg);
    static const char names[][254] = {"www.example.com", "10.0.0.100"};
    cr_assert_eq(tls_ca_issue(ca, names, 2, lifetime_s, now, out, &eb), 0, "%s", eb.msg);
}

Test(cert_pair, bundle_round_trip_with_chain, .init = setup, .fini = teardown)
{
    struct tls_ca ca;
    struct tls_cert c;
    leaf(&ca, 3600, time(NULL), &c);
    c.chain = sk_X509_new_null();
    cr_assert(X509_up_ref(ca.cert.leaf) == 1 && sk_X509_push(c.chain, ca.cert.leaf) == 1);
    size_t n = 0;
    char *b = cert_pair_bundle(&c, &n);
    cr_assert_not_null(b);
    cr_assert_eq(strlen(b), n);
    struct tls_cert back;
    struct errbuf eb = {{0}};
    cr_assert_eq(cert_pair_bundle_parse(b, n, time(NULL), &back, &eb), 0, "%s", eb.msg);
    cr_assert_eq(X509_cmp(back.leaf, c.leaf), 0);
    cr_assert_eq(EVP_PKEY_eq(back.key, c.key), 1);
    cr_assert_eq(sk_X509_num(back.chain), 1);
    cr_assert_eq(X509_cmp(sk_X509_value(back.chain, 0), ca.cert.leaf), 0);
    tls_cert_fini(&back);
    /* the CA's own bundle (no chain), as the pair keeps it */
    char *cb = cert_pair_bundle(&ca.cert, &n);
    cr_assert_eq(cert_pair_bundle_parse(cb, n, 0, &back, &eb), 0, "%s", eb.msg);
    cr_assert_null(back.chain);
    tls_cert_fini(&back);
    free(cb);
    free(b);
    tls_cert_fini(&c);
    tls_ca_fini(&ca);
}

Test(cert_pair, bundle_checks, .init = setup, .fini = teardown)
{
    struct tls_ca ca;
    struct tls_cert c, other;
    time_t now = time(NULL);
    leaf(&ca, 3600, now, &c);
    struct errbuf eb = {{0}};
    static const char names[][254] = {"www.example.com"};
    cr_assert_eq(tls_ca_issue(&ca, names, 1, 3600, now, &other, &eb), 0);
    size_t n = 0;
    struct tls_cert back;
    /* a key that is not the certificate's */
    EVP_PKEY *mine = c.key;
    c.key = other.key;
    char *b = cert_pair_bundle(&c, &n);
    c.key = mine;
    cr_assert_eq(cert_pair_bundle_parse(b, n, now, &back, &eb), -KEEL_ECONFIG);
    cr_assert_not_null(strstr(eb.msg, "does not match"), "%s", eb.msg);
    free(b);
    /* not valid at the time asked (expired, or not yet) */
    b = cert_pair_bundle(&c, &n);
    cr_assert_eq(cert_pair_bundle_parse(b, n, now + 7200, &back, &eb), -KEEL_ECONFIG);
    cr_assert_not_null(strstr(eb.msg, "not valid"), "%s", eb.msg);
    cr_assert_eq(cert_pair_bundle_parse(b, n, now - 3600, &back, &eb), -KEEL_ECONFIG);
    /* cut before the certificate, or no key at all */
    const char *cert_at = strstr(b, "-----BEGIN CERTIFICATE-----");
    cr_assert_not_null(cert_at);
    cr_assert_eq(cert_pair_bundle_parse(b, (size_t)(cert_at - b), now, &back, &eb), -KEEL_ECONFIG);
    cr_assert_not_null(strstr(eb.msg, "no certificate"), "%s", eb.msg);
    cr_assert_eq(cert_pair_bundle_parse(cert_at, strlen(cert_at), now, &back, &eb), -KEEL_ECONFIG);
    cr_assert_not_null(strstr(eb.msg, "no private key"), "%s", eb.msg);
    cr_assert_eq(cert_pair_bundle_parse("", 0, now, &back, &eb), -KEEL_ECONFIG);
    free(b);
    tls_cert_fini(&c);
    tls_cert_fini(&other);
    tls_ca_fini(&ca);
}
