/* SPDX-License-Identifier: MIT */
/* Unit tests for src/tls/acme_jws.c: base64url, the JWK checked against the key's encoded
 * point, the thumbprint as SHA-256 of that JWK, JWS whose signature OpenSSL verifies from
 * the raw r||s (with jwk, then kid; an empty payload for POST-as-GET), the key
 * authorization, a CSR that OpenSSL parses and verifies with its names, and the tls-alpn-01
 * digest. */
#include <criterion/criterion.h>

#include "tls/acme_jws.c"

#include <openssl/sha.h>

/* Decode base64url (no padding) into out; returns the length. */
static size_t b64url_decode(const char *in, uint8_t *out, size_t size)
{
    char tmp[4096];
    size_t n = strlen(in);
    cr_assert_lt(n + 4, sizeof(tmp));
    for (size_t i = 0; i < n; i++) {
        tmp[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    }
    while (n % 4 != 0) {
        tmp[n++] = '=';
    }
    ssize_t got = base64_decode(tmp, n, out, size);
    cr_assert_geq(got, 0, "not base64url: %s", in);
    return (size_t)got;
}

Test(acme_jws, base64url_has_no_padding_and_the_url_alphabet)
{
    char *s = acme_b64url("", 0);
    cr_assert_str_eq(s, "");
    free(s);
    s = acme_b64url("f", 1);
    cr_assert_str_eq(s, "Zg");
    free(s);
    s = acme_b64url("\xfb\xff", 2);
    cr_assert_str_eq(s, "-_8");
    free(s);
}

Test(acme_jws, the_jwk_holds_the_public_point_and_the_thumbprint_hashes_it)
{
    EVP_PKEY *k = acme_key_new();
    cr_assert_not_null(k);
    char jwk[256];
    cr_assert_eq(acme_jwk(k, jwk, sizeof(jwk)), 0);
    /* The uncompressed point 04 || X || Y, by another route. */
    uint8_t pt[65];
    size_t pt_len = 0;
    cr_assert_eq(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt,
                                                 sizeof(pt), &pt_len),
                 1);
    cr_assert_eq(pt_len, 65);
    char *x = acme_b64url(pt + 1, 32), *y = acme_b64url(pt + 33, 32);
    char want[256];
    snprintf(want, sizeof(want), "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x,
             y);
    cr_assert_str_eq(jwk, want);
    uint8_t md[32];
    SHA256((const uint8_t *)want, strlen(want), md);
    char *t = acme_b64url(md, sizeof(md)), tp[44];
    cr_assert_eq(acme_thumbprint(k, tp), 0);
    cr_assert_str_eq(tp, t);
    cr_assert_eq(strlen(tp), 43);
    char *ka = acme_key_authorization("tok-EN_1", tp);
    snprintf(want, sizeof(want), "tok-EN_1.%s", tp);
    cr_assert_str_eq(ka, want);
    free(ka);
    free(x);
    free(y);
    free(t);
    /* Not P-256: refused. */
    EVP_PKEY *p384 = EVP_EC_gen("P-384");
    cr_assert_eq(acme_jwk(p384, jwk, sizeof(jwk)), -EINVAL);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(k);
}

/* Verify a flattened JWS with key; returns its protected header and payload (decoded). */
static void verify_jws(EVP_PKEY *key, const char *jws, char *hdr, char *payload)
{
    struct errbuf eb;
    struct json_doc *d = json_parse(jws, strlen(jws), &eb);
    cr_assert_not_null(d, "%s", eb.msg);
    const struct json_value *o = json_root(d);
    const char *p = json_str(json_get(o, "protected"));
    const char *b = json_str(json_get(o, "payload"));
    const char *s = json_str(json_get(o, "signature"));
    cr_assert(p != NULL && b != NULL && s != NULL);
    hdr[b64url_decode(p, (uint8_t *)hdr, 2048)] = '\0';
    payload[b64url_decode(b, (uint8_t *)payload, 2048)] = '\0';
    uint8_t raw[64];
    cr_assert_eq(b64url_decode(s, raw, sizeof(raw)), 64, "ES256 is 64 raw bytes");
    ECDSA_SIG *sig = ECDSA_SIG_new();
    cr_assert_eq(ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL)), 1);
    uint8_t *der = NULL;
    int der_len = i2d_ECDSA_SIG(sig, &der);
    char input[4096];
    snprintf(input, sizeof(input), "%s.%s", p, b);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    cr_assert_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    cr_assert_eq(EVP_DigestVerify(md, der, (size_t)der_len, (uint8_t *)input, strlen(input)), 1,
                 "the signature does not verify");
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    json_free(d);
}

Test(acme_jws, a_jws_verifies_with_jwk_then_kid)
{
    EVP_PKEY *k = acme_key_new();
    size_t len;
    char hdr[2048], payload[2048];
    char *jws = acme_jws(k, NULL, "n0nce", "https://ca/new-acct", "{\"a\":1}", &len);
    cr_assert_not_null(jws);
    cr_assert_eq(strlen(jws), len);
    verify_jws(k, jws, hdr, payload);
    cr_assert_str_eq(payload, "{\"a\":1}");
    struct errbuf eb;
    struct json_doc *h = json_parse(hdr, strlen(hdr), &eb);
    cr_assert_not_null(h, "%s", eb.msg);
    cr_assert_str_eq(json_str(json_get(json_root(h), "alg")), "ES256");
    cr_assert_str_eq(json_str(json_get(json_root(h), "nonce")), "n0nce");
    cr_assert_str_eq(json_str(json_get(json_root(h), "url")), "https://ca/new-acct");
    cr_assert_str_eq(json_str(json_get(json_get(json_root(h), "jwk"), "crv")), "P-256");
    cr_assert_null(json_get(json_root(h), "kid"));
    json_free(h);
    free(jws);

    jws = acme_jws(k, "https://ca/acct/1", "n2", "https://ca/authz/1", NULL, &len);
    verify_jws(k, jws, hdr, payload);
    cr_assert_str_eq(payload, "", "POST-as-GET has an empty payload");
    h = json_parse(hdr, strlen(hdr), &eb);
    cr_assert_str_eq(json_str(json_get(json_root(h), "kid")), "https://ca/acct/1");
    cr_assert_null(json_get(json_root(h), "jwk"));
    json_free(h);
    free(jws);
    EVP_PKEY_free(k);
}

Test(acme_jws, a_csr_names_every_identifier_and_verifies)
{
    EVP_PKEY *k = acme_key_new();
    static const char names[][254] = {"a.keel.test", "b.keel.test", "127.0.0.1"};
    struct errbuf eb;
    char *csr = acme_csr(k, names, 3, &eb);
    cr_assert_not_null(csr, "%s", eb.msg);
    cr_assert_null(strchr(csr, '='));
    uint8_t der[4096];
    size_t n = b64url_decode(csr, der, sizeof(der));
    const uint8_t *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)n);
    cr_assert_not_null(req);
    cr_assert_eq(X509_REQ_verify(req, k), 1);
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    GENERAL_NAMES *sans = NULL;
    for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name) {
            sans = X509V3_EXT_d2i(e);
        }
    }
    cr_assert_not_null(sans);
    cr_assert_eq(sk_GENERAL_NAME_num(sans), 3);
    cr_assert_eq(sk_GENERAL_NAME_value(sans, 0)->type, GEN_DNS);
    cr_assert_eq(sk_GENERAL_NAME_value(sans, 2)->type, GEN_IPADD);
    GENERAL_NAMES_free(sans);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    free(csr);
    EVP_PKEY_free(k);
}

Test(acme_jws, the_alpn_digest_is_sha256_of_the_key_authorization)
{
    uint8_t got[32], want[32];
    acme_alpn_digest("token.thumb", got);
    SHA256((const uint8_t *)"token.thumb", 11, want);
    cr_assert_arr_eq(got, want, 32);
}
