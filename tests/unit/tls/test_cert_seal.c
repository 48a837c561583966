/* SPDX-License-Identifier: MIT */
/* Unit tests for src/tls/cert_seal.c: a round trip; another secret, another label (etcd
 * key), any altered byte, a truncated or unsealed value are refused; two sealings of the
 * same text differ (random nonce); the secret file is read and its mode checked. */
#include <criterion/criterion.h>

#include "tls/cert_seal.c"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static const char text[] = "-----BEGIN PRIVATE KEY-----\nnot really a key\n"
                           "-----END PRIVATE KEY-----\n";

static void key_of(const char *secret, uint8_t key[CERT_SEAL_KEY_LEN])
{
    cr_assert_eq(cert_seal_key_derive((const uint8_t *)secret, strlen(secret), key), 0);
}

Test(cert_seal, round_trip)
{
    uint8_t key[CERT_SEAL_KEY_LEN];
    key_of("cluster secret one", key);
    size_t n = 0, m = 0;
    uint8_t *s = cert_seal(key, "/keel/c/acme/cert/www", text, sizeof(text) - 1, &n);
    cr_assert_not_null(s);
    cr_assert_eq(n, sizeof(text) - 1 + CERT_SEAL_OVERHEAD);
    cr_assert_eq(memcmp(s, CERT_SEAL_MAGIC, CERT_SEAL_MAGIC_LEN), 0);
    cr_assert_null(memmem(s, n, "PRIVATE", 7), "the plain text shows through");
    struct errbuf eb = {{0}};
    uint8_t *p = cert_unseal(key, "/keel/c/acme/cert/www", s, n, &m, &eb);
    cr_assert_not_null(p, "%s", eb.msg);
    cr_assert_eq(m, sizeof(text) - 1);
    cr_assert_eq(memcmp(p, text, m), 0);
    cr_assert_eq(p[m], '\0');
    free(p);
    free(s);
}

Test(cert_seal, empty_text)
{
    uint8_t key[CERT_SEAL_KEY_LEN];
    key_of("s", key);
    size_t n = 0, m = 1;
    uint8_t *s = cert_seal(key, "k", "", 0, &n);
    cr_assert_not_null(s);
    struct errbuf eb = {{0}};
    uint8_t *p = cert_unseal(key, "k", s, n, &m, &eb);
    cr_assert_not_null(p, "%s", eb.msg);
    cr_assert_eq(m, 0);
    free(p);
    free(s);
}

Test(cert_seal, nonce_is_random)
{
    uint8_t key[CERT_SEAL_KEY_LEN];
    key_of("s", key);
    size_t n1 = 0, n2 = 0;
    uint8_t *a = cert_seal(key, "k", text, sizeof(text), &n1);
    uint8_t *b = cert_seal(key, "k", text, sizeof(text), &n2);
    cr_assert(a != NULL && b != NULL && n1 == n2);
    cr_assert_neq(memcmp(a, b, n1), 0);
    free(a);
    free(b);
}

Test(cert_seal, derivation_is_deterministic_and_separated)
{
    uint8_t k1[CERT_SEAL_KEY_LEN], k2[CERT_SEAL_KEY_LEN], k3[CERT_SEAL_KEY_LEN];
    key_of("same", k1);
    key_of("same", k2);
    key_of("other", k3);
    cr_assert_eq(memcmp(k1, k2, sizeof(k1)), 0);
    cr_assert_neq(memcmp(k1, k3, sizeof(k1)), 0);
    cr_assert_eq(cert_seal_key_derive((const uint8_t *)"", 0, k1), -EINVAL);
}

Test(cert_seal, wrong_secret_refused)
{
    uint8_t good[CERT_SEAL_KEY_LEN], bad[CERT_SEAL_KEY_LEN];
    key_of("the cluster's secret", good);
    key_of("another cluster's secret", bad);
    size_t n = 0, m = 0;
    uint8_t *s = cert_seal(good, "k", text, sizeof(text), &n);
    cr_assert_not_null(s);
    struct errbuf eb = {{0}};
    cr_assert_null(cert_unseal(bad, "k", s, n, &m, &eb));
    cr_assert_not_null(strstr(eb.msg, "does not authenticate"), "%s", eb.msg);
    free(s);
}

Test(cert_seal, other_label_refused)
{
    uint8_t key[CERT_SEAL_KEY_LEN];
    key_of("s", key);
    size_t n = 0, m = 0;
    uint8_t *s = cert_seal(key, "/keel/c/acme/cert/www", text, sizeof(text), &n);
    struct errbuf eb = {{0}};
    cr_assert_null(cert_unseal(key, "/keel/c/acme/cert/api", s, n, &m, &eb));
    free(s);
}

Test(cert_seal, any_altered_byte_refused)
{
    uint8_t key[CERT_SEAL_KEY_LEN];
    key_of("s", key);
    size_t n = 0, m = 0;
    uint8_t *s = cert_seal(key, "k", text, sizeof(text), &n);
    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++) {
        s[i] ^= 0x01;
        struct errbuf eb = {{0}};
        uint8_t *p = cert_unseal(key, "k", s, n, &m, &eb);
        cr_assert_null(p, "byte %zu altered and accepted", i);
        s[i] ^= 0x01;
    }
    struct errbuf eb = {{0}};
    cr_assert_null(cert_unseal(key, "k", s, n - 1, &m, &eb), "truncated");
    cr_assert_null(cert_unseal(key, "k", s, CERT_SEAL_OVERHEAD - 1, &m, &eb), "too short");
    cr_assert_null(cert_unseal(key, "k", text, sizeof(text), &m, &eb), "never sealed");
    cr_assert_not_null(strstr(eb.msg, "not a sealed value"), "%s", eb.msg);
    uint8_t *p = cert_unseal(key, "k", s, n, &m, &eb);
    cr_assert_not_null(p, "%s", eb.msg);
    free(p);
    free(s);
}

Test(cert_seal, key_from_file)
{
    char path[] = "/tmp/keel-seal-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_neq(fd, -1);
    cr_assert_eq(write(fd, "the cluster's secret", 20), 20);
    (void)close(fd);
    uint8_t a[CERT_SEAL_KEY_LEN], b[CERT_SEAL_KEY_LEN];
    struct errbuf eb = {{0}};
    cr_assert_eq(chmod(path, 0600), 0);
    cr_assert_eq(cert_seal_key_load(path, a, &eb), 0, "%s", eb.msg);
    key_of("the cluster's secret", b);
    cr_assert_eq(memcmp(a, b, sizeof(a)), 0);
    cr_assert_eq(chmod(path, 0644), 0);
    cr_assert_neq(cert_seal_key_load(path, a, &eb), 0, "a secret others can read is refused");
    (void)unlink(path);
    cr_assert_neq(cert_seal_key_load(path, a, &eb), 0, "a missing secret is refused");
}
