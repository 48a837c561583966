/* SPDX-License-Identifier: MIT */
/* ACME's request cryptography (acme_jws.h). */
#include "tls/acme_jws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "core/base64.h"
#include "core/json.h"

char *acme_b64url(const void *in, size_t n)
{
    size_t cap = base64_encoded_len(n) + 1;
    char *out = cap != 0 ? malloc(cap) : NULL;
    if (out == NULL) {
        return NULL;
    }
    size_t len = base64_encode(in, n, out, cap);
    while (len > 0 && out[len - 1] == '=') {
        len--;
    }
    out[len] = '\0';
    for (size_t i = 0; i < len; i++) {
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    }
    return out;
}

EVP_PKEY *acme_key_new(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    ERR_clear_error();
    return k;
}

/* The 32-byte big-endian coordinate param of key, base64url. */
static char *coordinate(EVP_PKEY *key, const char *param)
{
    BIGNUM *bn = NULL;
    uint8_t raw[32];
    char *out = NULL;
    if (EVP_PKEY_get_bn_param(key, param, &bn) == 1 && BN_bn2binpad(bn, raw, sizeof(raw)) == 32) {
        out = acme_b64url(raw, sizeof(raw));
    }
    BN_free(bn);
    ERR_clear_error();
    return out;
}

int acme_jwk(EVP_PKEY *key, char *out, size_t size)
{
    char curve[32] = "";
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve),
                                       NULL) != 1 ||
        strcmp(curve, "prime256v1") != 0) {
        ERR_clear_error();
        return -EINVAL;
    }
    char *x = coordinate(key, OSSL_PKEY_PARAM_EC_PUB_X);
    char *y = coordinate(key, OSSL_PKEY_PARAM_EC_PUB_Y);
    int rc = -EINVAL;
    if (x != NULL && y != NULL) {
        int n = snprintf(out, size, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                         x, y);
        rc = n > 0 && (size_t)n < size ? 0 : -ENOSPC;
    }
    free(x);
    free(y);
    return rc;
}

int acme_thumbprint(EVP_PKEY *key, char out[44])
{
    char jwk[256];
    int rc = acme_jwk(key, jwk, sizeof(jwk));
    if (rc != 0) {
        return rc;
    }
    uint8_t md[32];
    unsigned int md_len = 0;
    if (EVP_Digest(jwk, strlen(jwk), md, &md_len, EVP_sha256(), NULL) != 1) {
        ERR_clear_error();
        return -ENOMEM;
    }
    char *b = acme_b64url(md, md_len);
    if (b == NULL) {
        return -ENOMEM;
    }
    (void)snprintf(out, 44, "%s", b);
    free(b);
    return 0;
}

char *acme_key_authorization(const char *token, const char *thumbprint)
{
    size_t n = strlen(token) + 1 + strlen(thumbprint) + 1;
    char *out = malloc(n);
    if (out != NULL) {
        (void)snprintf(out, n, "%s.%s", token, thumbprint);
    }
    return out;
}

void acme_alpn_digest(const char *key_authorization, uint8_t out[32])
{
    unsigned int len = 0;
    if (EVP_Digest(key_authorization, strlen(key_authorization), out, &len, EVP_sha256(), NULL) !=
        1) {
        memset(out, 0, 32);
        ERR_clear_error();
    }
}

/* ES256 over data: the raw r||s of RFC 7518 section 3.4, base64url. */
static char *sign_es256(EVP_PKEY *key, const char *data, size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[80], raw[64];
    size_t der_len = sizeof(der);
    char *out = NULL;
    if (md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestSign(md, der, &der_len, (const uint8_t *)data, len) == 1) {
        const uint8_t *p = der;
        ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
        if (sig != NULL && BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 &&
            BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32) {
            out = acme_b64url(raw, sizeof(raw));
        }
        ECDSA_SIG_free(sig);
    }
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return out;
}

/* The protected header, as JSON. */
static char *protected_header(EVP_PKEY *key, const char *kid, const char *nonce, const char *url)
{
    struct json_w w;
    json_w_init(&w);
    json_w_begin_object(&w);
    json_w_key_str(&w, "alg", "ES256");
    if (kid != NULL) {
        json_w_key_str(&w, "kid", kid);
    } else {
        char jwk[256];
        if (acme_jwk(key, jwk, sizeof(jwk)) != 0) {
            json_w_fini(&w);
            return NULL;
        }
        /* The JWK is JSON already: parse it back as members rather than paste text. */
        struct errbuf eb;
        struct json_doc *d = json_parse(jwk, strlen(jwk), &eb);
        const struct json_value *o = json_root(d);
        json_w_key(&w, "jwk");
        json_w_begin_object(&w);
        for (size_t i = 0; i < json_len(o); i++) {
            json_w_key_str(&w, json_key_at(o, i), json_str(json_at(o, i)));
        }
        json_w_end_object(&w);
        json_free(d);
    }
    json_w_key_str(&w, "nonce", nonce);
    json_w_key_str(&w, "url", url);
    json_w_end_object(&w);
    size_t len;
    return json_w_take(&w, &len);
}

char *acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
               const char *payload, size_t *len)
{
    char *hdr = protected_header(key, kid, nonce, url);
    char *p64 = hdr != NULL ? acme_b64url(hdr, strlen(hdr)) : NULL;
    char *b64 = acme_b64url(payload != NULL ? payload : "", payload != NULL ? strlen(payload) : 0);
    char *sig = NULL, *input = NULL, *out = NULL;
    if (p64 != NULL && b64 != NULL) {
        size_t n = strlen(p64) + 1 + strlen(b64) + 1;
        input = malloc(n);
        if (input != NULL) {
            (void)snprintf(input, n, "%s.%s", p64, b64);
            sig = sign_es256(key, input, n - 1);
        }
    }
    if (sig != NULL) {
        struct json_w w;
        json_w_init(&w);
        json_w_begin_object(&w);
        json_w_key_str(&w, "protected", p64);
        json_w_key_str(&w, "payload", b64);
        json_w_key_str(&w, "signature", sig);
        json_w_end_object(&w);
        out = json_w_take(&w, len);
    }
    free(hdr);
    free(p64);
    free(b64);
    free(input);
    free(sig);
    return out;
}

char *acme_csr(EVP_PKEY *key, const char (*names)[254], uint32_t n, struct errbuf *eb)
{
    char san[16 * 270];
    size_t used = 0;
    for (uint32_t i = 0; i < n; i++) {
        unsigned char buf[16];
        bool ip = inet_pton(AF_INET, names[i], buf) == 1 || inet_pton(AF_INET6, names[i], buf) == 1;
        int w = snprintf(san + used, sizeof(san) - used, "%s%s:%s", i > 0 ? "," : "",
                         ip ? "IP" : "DNS", names[i]);
        if (w < 0 || (size_t)w >= sizeof(san) - used) {
            errbuf_set(eb, "too many names for a CSR");
            return NULL;
        }
        used += (size_t)w;
    }
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *e = n > 0 ? X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san) : NULL;
    const char *cn = n > 0 && strlen(names[0]) <= 64 ? names[0] : NULL;
    bool ok = req != NULL && exts != NULL && e != NULL && X509_REQ_set_version(req, 0) == 1 &&
              (cn == NULL ||
               X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                          (const unsigned char *)cn, -1, -1, 0) == 1) &&
              sk_X509_EXTENSION_push(exts, e) > 0;
    if (ok) {
        e = NULL; /* the stack holds it */
        ok = X509_REQ_add_extensions(req, exts) == 1 && X509_REQ_set_pubkey(req, key) == 1 &&
             X509_REQ_sign(req, key, EVP_sha256()) > 0;
    }
    char *out = NULL;
    unsigned char *der = NULL;
    int der_len = ok ? i2d_X509_REQ(req, &der) : -1;
    if (der_len > 0) {
        out = acme_b64url(der, (size_t)der_len);
    }
    if (out == NULL) {
        errbuf_set(eb, "cannot make the CSR");
    }
    OPENSSL_free(der);
    X509_EXTENSION_free(e);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    ERR_clear_error();
    return out;
}
