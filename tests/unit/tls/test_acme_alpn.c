/* SPDX-License-Identifier: MIT */
/* Unit tests for src/tls/acme_alpn.c: the challenge certificate (SAN, the critical
 * acmeIdentifier extension holding the SHA-256 of the key authorization), reverse-DNS
 * names of IP identifiers, the table, and real handshakes against a frontend's contexts
 * (tls_ctx.c) over memory BIOs: a client offering only acme-tls/1 for a name under
 * challenge gets the challenge certificate and acme-tls/1; one offering http/1.1 too, or
 * asking for another name, gets the frontend's certificate. */
#include <criterion/criterion.h>

#include "tls/acme_alpn.c"

#include <openssl/sha.h>

#include "tls/tls_ctx.h"
#include "tls_certs.h"

#define HOUR 3600L

static char dir[64];

static void setup(void)
{
    tc_tmpdir(dir);
}

static void teardown(void)
{
    tc_rmdir(dir);
}

TestSuite(acme_alpn, .init = setup, .fini = teardown);

Test(acme_alpn, reverse_dns_names_of_ip_identifiers)
{
    char n[128];
    cr_assert_eq(acme_alpn_sni_name("127.0.0.1", n, sizeof(n)), 0);
    cr_assert_str_eq(n, "1.0.0.127.in-addr.arpa");
    cr_assert_eq(acme_alpn_sni_name("A.Keel.Test", n, sizeof(n)), 0);
    cr_assert_str_eq(n, "a.keel.test");
    cr_assert_eq(acme_alpn_sni_name("2001:db8::567:89ab", n, sizeof(n)), 0);
    cr_assert_str_eq(n, "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    cr_assert_eq(acme_alpn_sni_name("127.0.0.1", n, 8), -ENOSPC);
}

Test(acme_alpn, the_certificate_carries_the_digest_in_a_critical_extension)
{
    X509 *x;
    EVP_PKEY *k;
    struct errbuf eb;
    cr_assert_eq(acme_alpn_cert_new("a.keel.test", "tok.thumb", &x, &k, &eb), 0, "%s", eb.msg);
    cr_assert_eq(X509_check_private_key(x, k), 1);
    cr_assert_eq(X509_check_host(x, "a.keel.test", 0, 0, NULL), 1);
    ASN1_OBJECT *oid = OBJ_txt2obj(OID_ACME_IDENTIFIER, 1);
    int at = X509_get_ext_by_OBJ(x, oid, -1);
    cr_assert_geq(at, 0, "no acmeIdentifier extension");
    X509_EXTENSION *e = X509_get_ext(x, at);
    cr_assert_eq(X509_EXTENSION_get_critical(e), 1);
    const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(e);
    uint8_t want[34] = {0x04, 0x20};
    SHA256((const uint8_t *)"tok.thumb", 9, want + 2);
    cr_assert_eq(ASN1_STRING_length(v), 34);
    cr_assert_arr_eq(ASN1_STRING_get0_data(v), want, 34);
    ASN1_OBJECT_free(oid);
    X509_free(x);
    EVP_PKEY_free(k);
    cr_assert_eq(acme_alpn_cert_new("127.0.0.1", "tok.thumb", &x, &k, &eb), 0, "%s", eb.msg);
    cr_assert_eq(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* A handshake between an SSL made from root and a client offering alpn (wire format) for
 * sni, over memory BIOs. Returns the client (handshake done), or fails the test. */
static SSL *handshake(struct tls_ctx *root, const char *sni, const unsigned char *alpn,
                      size_t alpn_len, SSL **server)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *c = SSL_new(cctx);
    SSL_CTX_free(cctx); /* c holds it */
    SSL *s = tls_ctx_ssl_new(root);
    cr_assert(c != NULL && s != NULL);
    BIO *cb, *sb;
    cr_assert_eq(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    cr_assert_eq(SSL_set_tlsext_host_name(c, sni), 1);
    cr_assert_eq(SSL_set_alpn_protos(c, alpn, (unsigned)alpn_len), 0);
    for (int i = 0; i < 20; i++) {
        int rc = SSL_do_handshake(c), rs = SSL_do_handshake(s);
        if (rc == 1 && rs == 1) {
            *server = s;
            return c;
        }
    }
    cr_assert_fail("the handshake did not complete");
    return NULL;
}

static void peer_cn(SSL *c, char *out, size_t size)
{
    X509 *x = SSL_get1_peer_certificate(c);
    cr_assert_not_null(x);
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)size);
    X509_free(x);
}

static void selected(SSL *c, char *out)
{
    const unsigned char *p;
    unsigned int len;
    SSL_get0_alpn_selected(c, &p, &len);
    if (len > 0) {
        memcpy(out, p, len);
    }
    out[len] = '\0';
}

Test(acme_alpn, handshakes_get_the_challenge_only_when_they_ask_for_it)
{
    struct tc_cert a = tc_make(TC_EC, "a.keel.test", "DNS:a.keel.test", -HOUR, HOUR, NULL);
    tc_write(dir, "a", &a, NULL);
    struct conf_cert cc = tc_conf_cert(dir, "a");
    struct conf_frontend fe;
    tc_frontend(&fe, &cc, 1);
    struct errbuf eb;
    struct tls_ctx *root = tls_ctx_new(&fe, &eb);
    cr_assert_not_null(root, "%s", eb.msg);
    static const unsigned char acme_only[] = "\x0a"
                                             "acme-tls/1";
    static const unsigned char both[] = "\x0a"
                                        "acme-tls/1"
                                        "\x08"
                                        "http/1.1";
    char cn[64], proto[32];
    SSL *s;

    /* No challenge under way: acme-tls/1 is not selected, the frontend's certificate. */
    SSL *c = handshake(root, "a.keel.test", acme_only, sizeof(acme_only) - 1, &s);
    peer_cn(c, cn, sizeof(cn));
    cr_assert_str_eq(cn, "a.keel.test");
    selected(c, proto);
    cr_assert_str_eq(proto, "");
    SSL_free(c);
    SSL_free(s);

    cr_assert_eq(acme_alpn_add("a.keel.test", "tok.thumb"), 0);
    cr_assert_eq(acme_alpn_count(), 1);
    c = handshake(root, "A.keel.test", acme_only, sizeof(acme_only) - 1, &s);
    peer_cn(c, cn, sizeof(cn));
    cr_assert_str_eq(cn, "keel acme-tls/1");
    selected(c, proto);
    cr_assert_str_eq(proto, "acme-tls/1");
    SSL_free(c);
    SSL_free(s);

    /* A browser offering both, or another name: served as usual. */
    c = handshake(root, "a.keel.test", both, sizeof(both) - 1, &s);
    peer_cn(c, cn, sizeof(cn));
    cr_assert_str_eq(cn, "a.keel.test");
    selected(c, proto);
    cr_assert_str_eq(proto, "http/1.1");
    SSL_free(c);
    SSL_free(s);
    c = handshake(root, "b.keel.test", acme_only, sizeof(acme_only) - 1, &s);
    peer_cn(c, cn, sizeof(cn));
    cr_assert_str_eq(cn, "a.keel.test");
    SSL_free(c);
    SSL_free(s);

    acme_alpn_remove("a.keel.test");
    cr_assert_eq(acme_alpn_count(), 0);
    (void)qsbr_reclaim();
    tls_ctx_free(root);
    tc_free(&a);
}

Test(acme_alpn, the_server_name_extension_is_parsed_strictly)
{
    char n[32];
    static const unsigned char ok[] = "\x00\x0e\x00\x00\x0b"
                                      "A.keel.test";
    cr_assert(acme_alpn_parse_sni(ok, sizeof(ok) - 1, n, sizeof(n)));
    cr_assert_str_eq(n, "a.keel.test");
    cr_assert_not(acme_alpn_parse_sni(ok, sizeof(ok) - 2, n, sizeof(n)), "cut");
    cr_assert_not(acme_alpn_parse_sni(ok, sizeof(ok) - 1, n, 11), "does not fit");
    static const unsigned char type1[] = "\x00\x0e\x01\x00\x0b"
                                         "A.keel.test";
    cr_assert_not(acme_alpn_parse_sni(type1, sizeof(type1) - 1, n, sizeof(n)));
    static const unsigned char nul[] = "\x00\x05\x00\x00\x02"
                                       "a\0";
    cr_assert_not(acme_alpn_parse_sni(nul, sizeof(nul) - 1, n, sizeof(n)));
    static const unsigned char empty[] = "\x00\x03\x00\x00\x00";
    cr_assert_not(acme_alpn_parse_sni(empty, sizeof(empty) - 1, n, sizeof(n)));
}
