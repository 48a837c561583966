/* SPDX-License-Identifier: MIT */
/* Unit tests for src/tls/tls_ctx.c: certificate checks (unreadable, not PEM, encrypted key,
 * key mismatch, expired, not yet valid, an expired intermediate), SNI selection (exact,
 * wildcard, default, case and trailing dot), one context per set of certificates (an ECDSA
 * and an RSA certificate for one name share one), ALPN parsing and the settings check. The
 * certificates are made in the test (tls_certs.h). */
#include <criterion/criterion.h>

#include "tls/tls_ctx.c"

#include <sys/stat.h>
#include <unistd.h>

#include "tls_certs.h"

#define HOUR 3600L
#define DAY (24 * HOUR)

static char dir[64];

static void setup(void)
{
    tc_tmpdir(dir);
}

static void teardown(void)
{
    tc_rmdir(dir);
}

TestSuite(tls_ctx, .init = setup, .fini = teardown);

/* Check dir/name.pem + dir/name.key; returns the code, *part and the message. */
static int check(const char *name, const char *key_name, enum tls_cert_part *part,
                 struct errbuf *eb)
{
    struct conf_cert cc = tc_conf_cert(dir, name);
    if (key_name != NULL) {
        snprintf(cc.key_file, sizeof(cc.key_file), "%s/%s.key", dir, key_name);
    }
    return tls_cert_check(&cc, part, eb);
}

Test(tls_ctx, a_good_certificate_passes)
{
    struct tc_cert c = tc_make(TC_EC, "a.test", "DNS:a.test", -HOUR, DAY, NULL);
    tc_write(dir, "a", &c, NULL);
    enum tls_cert_part part;
    struct errbuf eb;
    cr_assert_eq(check("a", NULL, &part, &eb), 0, "%s", eb.msg);
    tc_free(&c);
}

Test(tls_ctx, unreadable_and_not_pem_files_say_which)
{
    enum tls_cert_part part;
    struct errbuf eb;
    cr_assert_eq(check("missing", NULL, &part, &eb), -KEEL_ECONFIG);
    cr_assert_eq(part, TLS_PART_CERT);
    cr_assert(strstr(eb.msg, "cannot read certificate file") != NULL, "%s", eb.msg);
    cr_assert(strstr(eb.msg, "No such file") != NULL, "%s", eb.msg);

    struct tc_cert c = tc_make(TC_EC, "a.test", "DNS:a.test", -HOUR, DAY, NULL);
    tc_write(dir, "a", &c, NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/a.key", dir);
    cr_assert_eq(chmod(path, 0), 0);
    if (geteuid() != 0) { /* root reads anything */
        cr_assert_eq(check("a", NULL, &part, &eb), -KEEL_ECONFIG);
        cr_assert_eq(part, TLS_PART_KEY);
        cr_assert(strstr(eb.msg, "cannot read key file") != NULL, "%s", eb.msg);
    }
    snprintf(path, sizeof(path), "%s/junk.pem", dir);
    FILE *f = fopen(path, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    cr_assert_eq(check("junk", "a", &part, &eb), -KEEL_ECONFIG);
    cr_assert_eq(part, TLS_PART_CERT);
    cr_assert(strstr(eb.msg, "no PEM certificate") != NULL, "%s", eb.msg);
    /* a directory is not a file */
    snprintf(path, sizeof(path), "%s/d.pem", dir);
    cr_assert_eq(mkdir(path, 0700), 0);
    cr_assert_eq(check("d", "a", &part, &eb), -KEEL_ECONFIG);
    cr_assert(strstr(eb.msg, "not a regular file") != NULL, "%s", eb.msg);
    tc_free(&c);
}

Test(tls_ctx, a_key_of_another_certificate_does_not_match)
{
    struct tc_cert a = tc_make(TC_EC, "a.test", "DNS:a.test", -HOUR, DAY, NULL);
    struct tc_cert b = tc_make(TC_EC, "b.test", "DNS:b.test", -HOUR, DAY, NULL);
    tc_write(dir, "a", &a, NULL);
    tc_write(dir, "b", &b, NULL);
    enum tls_cert_part part;
    struct errbuf eb;
    cr_assert_eq(check("a", "b", &part, &eb), -KEEL_ECONFIG);
    cr_assert_eq(part, TLS_PART_KEY);
    cr_assert(strstr(eb.msg, "does not match the certificate") != NULL, "%s", eb.msg);
    tc_free(&a);
    tc_free(&b);
}

Test(tls_ctx, an_encrypted_key_is_refused_without_prompting)
{
    struct tc_cert a = tc_make(TC_EC, "a.test", "DNS:a.test", -HOUR, DAY, NULL);
    tc_write(dir, "a", &a, NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/a.key", dir);
    FILE *f = fopen(path, "w");
    cr_assert_eq(PEM_write_PrivateKey(f, a.key, EVP_aes_128_cbc(), NULL, 0, NULL, "secret"), 1);
    fclose(f);
    enum tls_cert_part part;
    struct errbuf eb;
    cr_assert_eq(check("a", NULL, &part, &eb), -KEEL_ECONFIG);
    cr_assert_eq(part, TLS_PART_KEY);
    cr_assert(strstr(eb.msg, "is encrypted") != NULL, "%s", eb.msg);
    tc_free(&a);
}

Test(tls_ctx, expired_and_not_yet_valid_certificates_are_refused)
{
    struct tc_cert old = tc_make(TC_EC, "a.test", "DNS:a.test", -2 * DAY, -DAY, NULL);
    struct tc_cert early = tc_make(TC_EC, "a.test", "DNS:a.test", DAY, 2 * DAY, NULL);
    tc_write(dir, "old", &old, NULL);
    tc_write(dir, "early", &early, NULL);
    enum tls_cert_part part;
    struct errbuf eb;
    cr_assert_eq(check("old", NULL, &part, &eb), -KEEL_ECONFIG);
    cr_assert_eq(part, TLS_PART_CERT);
    cr_assert(strstr(eb.msg, "expired on 20") != NULL, "%s", eb.msg);
    cr_assert_eq(check("early", NULL, &part, &eb), -KEEL_ECONFIG);
    cr_assert(strstr(eb.msg, "is not valid before 20") != NULL, "%s", eb.msg);
    tc_free(&old);
    tc_free(&early);
}

Test(tls_ctx, an_expired_intermediate_is_named)
{
    struct tc_cert ca = tc_make(TC_EC, "Test CA", NULL, -2 * DAY, -DAY, NULL);
    struct tc_cert leaf = tc_make(TC_EC, "a.test", "DNS:a.test", -HOUR, DAY, &ca);
    tc_write(dir, "a", &leaf, &ca);
    enum tls_cert_part part;
    struct errbuf eb;
    cr_assert_eq(check("a", NULL, &part, &eb), -KEEL_ECONFIG);
    cr_assert(strstr(eb.msg, "certificate 2 in") != NULL, "%s", eb.msg);
    tc_free(&ca);
    tc_free(&leaf);
}

Test(tls_ctx, sni_exact_then_wildcard_then_default)
{
    struct tc_cert a_ec = tc_make(TC_EC, "a.test", "DNS:a.test,DNS:www.a.test", -HOUR, DAY, NULL);
    struct tc_cert wild = tc_make(TC_EC, "*.w.test", "DNS:*.w.test", -HOUR, DAY, NULL);
    struct tc_cert a_rsa = tc_make(TC_RSA, "a.test", "DNS:a.test,DNS:www.a.test", -HOUR, DAY, NULL);
    struct tc_cert b = tc_make(TC_EC, "b.test", NULL, -HOUR, DAY, NULL); /* CN only */
    tc_write(dir, "a_ec", &a_ec, NULL);
    tc_write(dir, "wild", &wild, NULL);
    tc_write(dir, "a_rsa", &a_rsa, NULL);
    tc_write(dir, "b", &b, NULL);
    struct conf_cert certs[4] = {tc_conf_cert(dir, "a_ec"), tc_conf_cert(dir, "wild"),
                                 tc_conf_cert(dir, "a_rsa"), tc_conf_cert(dir, "b")};
    struct conf_frontend fe;
    tc_frontend(&fe, certs, 4);
    struct errbuf eb;
    struct tls_ctx *t = tls_ctx_new(&fe, &eb);
    cr_assert_not_null(t, "%s", eb.msg);
    /* {a_ec, a_rsa} for a.test and www.a.test, {wild}, {b}: three contexts */
    cr_assert_eq(tls_ctx_count(t), 3);
    SSL_CTX *dflt = tls_ctx_default(t);
    cr_assert_eq(tls_ctx_for_name(t, "a.test"), dflt);
    cr_assert_eq(tls_ctx_for_name(t, "WWW.A.Test."), dflt);
    SSL_CTX *w = tls_ctx_for_name(t, "x.w.test");
    SSL_CTX *bc = tls_ctx_for_name(t, "b.test");
    cr_assert_neq(w, dflt);
    cr_assert_neq(bc, dflt);
    cr_assert_neq(w, bc);
    cr_assert_eq(tls_ctx_for_name(t, "X-1.W.TEST"), w);
    cr_assert_eq(tls_ctx_for_name(t, "w.test"), dflt, "a wildcard covers one label, not none");
    cr_assert_eq(tls_ctx_for_name(t, "y.x.w.test"), dflt, "nor two");
    cr_assert_eq(tls_ctx_for_name(t, "unknown.test"), dflt);
    cr_assert_eq(tls_ctx_for_name(t, ""), dflt);
    cr_assert_eq(tls_ctx_for_name(t, "."), dflt);
    cr_assert_eq(tls_ctx_for_name(t, "*.w.test"), w); /* literally the wildcard: harmless */
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    cr_assert_eq(tls_ctx_for_name(t, longname), dflt);
    tls_ctx_free(t);
    tc_free(&a_ec);
    tc_free(&wild);
    tc_free(&a_rsa);
    tc_free(&b);
}

Test(tls_ctx, the_default_is_the_first_certificate_with_its_names_other_types)
{
    /* The first certificate names nothing: it alone is the default. */
    struct tc_cert ip = tc_make(TC_EC, "", "IP:127.0.0.1", -HOUR, DAY, NULL);
    struct tc_cert a = tc_make(TC_RSA, "a.test", "DNS:a.test", -HOUR, DAY, NULL);
    tc_write(dir, "ip", &ip, NULL);
    tc_write(dir, "a", &a, NULL);
    struct conf_cert certs[2] = {tc_conf_cert(dir, "ip"), tc_conf_cert(dir, "a")};
    struct conf_frontend fe;
    tc_frontend(&fe, certs, 2);
    struct errbuf eb;
    struct tls_ctx *t = tls_ctx_new(&fe, &eb);
    cr_assert_not_null(t, "%s", eb.msg);
    cr_assert_eq(tls_ctx_count(t), 2);
    cr_assert_neq(tls_ctx_for_name(t, "a.test"), tls_ctx_default(t));
    tls_ctx_free(t);
    tc_free(&ip);
    tc_free(&a);
}

Test(tls_ctx, a_bad_certificate_fails_the_build_with_its_reason)
{
    struct conf_cert certs[1] = {tc_conf_cert(dir, "missing")};
    struct conf_frontend fe;
    tc_frontend(&fe, certs, 1);
    struct errbuf eb;
    cr_assert_null(tls_ctx_new(&fe, &eb));
    cr_assert(strstr(eb.msg, "cannot read certificate file") != NULL, "%s", eb.msg);
    tc_frontend(&fe, certs, 0);
    cr_assert_null(tls_ctx_new(&fe, &eb));
    cr_assert(strstr(eb.msg, "no certificate") != NULL, "%s", eb.msg);
}

Test(tls_ctx, settings_are_checked_by_openssl)
{
    struct errbuf eb;
    cr_assert_eq(tls_setting_check(TLS_SET_CIPHERS, KEEL_TLS_DEFAULT_CIPHERS, &eb), 0);
    cr_assert_eq(tls_setting_check(TLS_SET_CIPHERSUITES, KEEL_TLS_DEFAULT_SUITES, &eb), 0);
    cr_assert_eq(tls_setting_check(TLS_SET_GROUPS, KEEL_TLS_DEFAULT_GROUPS, &eb), 0);
    cr_assert_eq(tls_setting_check(TLS_SET_CIPHERS, "NOT-A-CIPHER", &eb), -KEEL_ECONFIG);
    cr_assert_eq(tls_setting_check(TLS_SET_CIPHERSUITES, "TLS_NOPE", &eb), -KEEL_ECONFIG);
    cr_assert_eq(tls_setting_check(TLS_SET_GROUPS, "X25519:nocurve", &eb), -KEEL_ECONFIG);
    cr_assert_eq(ERR_peek_error(), 0, "the error queue is left empty");
}

/* ALPN: the client's list, as it arrives; http/1.1 or nothing. */
static int alpn(const unsigned char *in, unsigned int inlen, const unsigned char **out)
{
    unsigned char outlen = 0;
    return on_alpn(NULL, out, &outlen, in, inlen, NULL);
}

Test(tls_ctx, alpn_selects_http11_only_and_checks_lengths)
{
    const unsigned char *out = NULL;
    static const unsigned char both[] = "\x02h2\x08http/1.1";
    cr_assert_eq(alpn(both, sizeof(both) - 1, &out), SSL_TLSEXT_ERR_OK);
    cr_assert_eq(out, both + 4);
    static const unsigned char h2[] = "\x02h2";
    cr_assert_eq(alpn(h2, sizeof(h2) - 1, &out), SSL_TLSEXT_ERR_NOACK);
    static const unsigned char overlong[] = "\x09http/1.1";
    cr_assert_eq(alpn(overlong, sizeof(overlong) - 1, &out), SSL_TLSEXT_ERR_NOACK);
    static const unsigned char zero[] = "\x00\x08http/1.1";
    cr_assert_eq(alpn(zero, sizeof(zero) - 1, &out), SSL_TLSEXT_ERR_NOACK);
    cr_assert_eq(alpn(both, 0, &out), SSL_TLSEXT_ERR_NOACK);
}

/* The subject CN of the certificate an SSL made for the root would present. */
static void expect_cn(SSL *ssl, const char *cn)
{
    X509 *x = SSL_get_certificate(ssl);
    cr_assert_not_null(x);
    char got[64];
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, got, sizeof(got));
    cr_assert_str_eq(got, cn);
}

Test(tls_ctx, a_swap_serves_new_connections_and_keeps_open_ones)
{
    struct tc_cert a = tc_make(TC_EC, "a.test", "DNS:a.test", -HOUR, DAY, NULL);
    struct tc_cert b = tc_make(TC_EC, "b.test", "DNS:b.test", -HOUR, DAY, NULL);
    struct tc_cert c = tc_make(TC_EC, "c.test", "DNS:c.test", -HOUR, DAY, NULL);
    tc_write(dir, "a", &a, NULL);
    tc_write(dir, "b", &b, NULL);
    tc_write(dir, "c", &c, NULL);
    struct conf_cert cc[3] = {tc_conf_cert(dir, "a"), tc_conf_cert(dir, "b"),
                              tc_conf_cert(dir, "c")};
    struct conf_frontend fe;
    struct errbuf eb;
    tc_frontend(&fe, &cc[0], 1);
    struct tls_ctx *root = tls_ctx_new(&fe, &eb);
    cr_assert_not_null(root, "%s", eb.msg);
    SSL *s1 = tls_ctx_ssl_new(root);
    expect_cn(s1, "a.test");

    tc_frontend(&fe, &cc[1], 1);
    struct tls_ctx *next = tls_ctx_new(&fe, &eb);
    cr_assert_not_null(next, "%s", eb.msg);
    tls_ctx_swap(root, next);
    cr_assert_eq(tls_ctx_current(root), next);
    SSL *s2 = tls_ctx_ssl_new(root);
    expect_cn(s2, "b.test");
    expect_cn(s1, "a.test");

    /* A second renewal: b's contexts are retired, but s2 still holds them. */
    tc_frontend(&fe, &cc[2], 1);
    tls_ctx_swap(root, tls_ctx_new(&fe, &eb));
    (void)qsbr_reclaim();
    SSL *s3 = tls_ctx_ssl_new(root);
    expect_cn(s3, "c.test");
    expect_cn(s2, "b.test");
    /* The SNI callback of s2 still reads b's names (freed with s2's hold, not before). */
    cr_assert_eq(tls_ctx_for_name(SSL_get_ex_data(s2, ssl_ex_index), "b.test"),
                 SSL_get_SSL_CTX(s2));
    SSL_free(s2); /* the last hold on b's contexts: freed now (ASan checks it) */
    SSL_free(s1);
    tls_ctx_free(root); /* c's stay for s3 */
    expect_cn(s3, "c.test");
    SSL_free(s3);
    tc_free(&a);
    tc_free(&b);
    tc_free(&c);
}

Test(tls_ctx, a_managed_certificate_comes_after_the_lines)
{
    struct tc_cert a = tc_make(TC_EC, "a.test", "DNS:a.test", -HOUR, DAY, NULL);
    struct tc_cert m = tc_make(TC_EC, "m.test", "DNS:m.test", -HOUR, DAY, NULL);
    tc_write(dir, "a", &a, NULL);
    char mdir[128], path[256];
    snprintf(mdir, sizeof(mdir), "%s/m", dir);
    cr_assert_eq(mkdir(mdir, 0700), 0);
    tc_write(mdir, "cert", &m, NULL); /* cert.pem and cert.key */
    snprintf(path, sizeof(path), "%s/cert.key", mdir);
    char key[256];
    snprintf(key, sizeof(key), "%s/key.pem", mdir);
    cr_assert_eq(rename(path, key), 0);
    struct conf_cert cc = tc_conf_cert(dir, "a");
    struct conf_frontend fe;
    tc_frontend(&fe, &cc, 1);
    fe.tls.acme.issuer = CONF_ACME_INTERNAL;
    snprintf(fe.tls.acme.dir, sizeof(fe.tls.acme.dir), "%s", mdir);
    struct errbuf eb;
    struct tls_ctx *t = tls_ctx_new(&fe, &eb);
    cr_assert_not_null(t, "%s", eb.msg);
    cr_assert_eq(tls_ctx_count(t), 2);
    cr_assert_neq(tls_ctx_for_name(t, "m.test"), tls_ctx_default(t));
    cr_assert_eq(tls_ctx_for_name(t, "a.test"), tls_ctx_default(t));
    tls_ctx_free(t);
    /* Managed only: it is the default. */
    tc_frontend(&fe, NULL, 0);
    fe.tls.acme.issuer = CONF_ACME_INTERNAL;
    snprintf(fe.tls.acme.dir, sizeof(fe.tls.acme.dir), "%s", mdir);
    t = tls_ctx_new(&fe, &eb);
    cr_assert_not_null(t, "%s", eb.msg);
    cr_assert_eq(tls_ctx_for_name(t, "m.test"), tls_ctx_default(t));
    tls_ctx_free(t);
    tc_free(&a);
    tc_free(&m);
}
