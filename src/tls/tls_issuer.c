/* SPDX-License-Identifier: MIT */
/* The internal issuer (tls_issuer.h): the local CA and the leaves it signs. */
#include "tls/tls_issuer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls/tls_ctx.h"

#define SKEW_S 300 /* leaves of an hour or more start 5 minutes early: clocks differ */

static int ossl_fail(struct errbuf *eb, const char *what)
{
    tls_ossl_error(eb, what);
    return -ENOMEM;
}

/* Add the extension nid = value (OpenSSL's text form) to x, issued by issuer. */
static bool add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    bool ok = e != NULL && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok;
}

/* A random positive serial of 128 bits (RFC 5280 section 4.1.2.2: at most 20 octets). */
static bool set_serial(X509 *x)
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof(r)) != 1) {
        return false;
    }
    r[0] &= 0x7f;
    r[0] |= 0x01; /* never zero, never negative */
    BIGNUM *bn = BN_bin2bn(r, sizeof(r), NULL);
    bool ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

static bool set_times(X509 *x, time_t from, time_t until)
{
    return X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &from) != NULL &&
           X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &until) != NULL;
}

static bool set_cn(X509_NAME *n, const char *cn)
{
    return X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"keel", -1, -1,
                                      0) == 1 &&
           X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                      0) == 1;
}

/* ---------------------------------------------------------------- the CA */

static int ca_create(const char *ca_dir, time_t now, struct tls_ca *ca, struct errbuf *eb)
{
    struct tls_cert *c = &ca->cert;
    c->key = EVP_EC_gen("P-256");
    c->leaf = X509_new();
    if (c->key == NULL || c->leaf == NULL) {
        return ossl_fail(eb, "cannot make the CA key");
    }
    X509 *x = c->leaf;
    bool ok =
        X509_set_version(x, 2) == 1 && set_serial(x) &&
        set_times(x, now - SKEW_S, now + TLS_CA_LIFETIME_S) && X509_set_pubkey(x, c->key) == 1 &&
        set_cn(X509_get_subject_name(x), "keel internal CA") &&
        X509_set_issuer_name(x, X509_get_subject_name(x)) == 1 &&
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") &&
        add_ext(x, x, NID_subject_key_identifier, "hash") && X509_sign(x, c->key, EVP_sha256()) > 0;
    if (!ok) {
        return ossl_fail(eb, "cannot make the CA certificate");
    }
    int rc = cert_store_mkdirs(ca_dir, eb);
    if (rc != 0) {
        return rc;
    }
    /* tls_cert_store names its files cert.pem and key.pem; the CA's are ca.pem and ca.key,
     * so that nobody takes the CA's key for a server's. */
    BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
    char *kd = NULL, *cd = NULL;
    char path[4096];
    ok = kb != NULL && cb != NULL &&
         PEM_write_bio_PrivateKey(kb, c->key, NULL, NULL, 0, NULL, NULL) == 1 &&
         PEM_write_bio_X509(cb, x) == 1;
    long kl = ok ? BIO_get_mem_data(kb, &kd) : 0, cl = ok ? BIO_get_mem_data(cb, &cd) : 0;
    rc = ok ? 0 : ossl_fail(eb, "cannot encode the CA");
    if (rc == 0) {
        (void)snprintf(path, sizeof(path), "%s/%s", ca_dir, TLS_CA_KEY);
        rc = cert_store_write(path, kd, (size_t)kl, 0600, eb);
    }
    if (rc == 0) {
        rc = cert_store_write(ca->cert_path, cd, (size_t)cl, 0644, eb);
    }
    BIO_free(kb);
    BIO_free(cb);
    return rc;
}

static int ca_load(const char *ca_dir, time_t now, struct tls_ca *ca, struct errbuf *eb)
{
    char kpath[4096];
    (void)snprintf(kpath, sizeof(kpath), "%s/%s", ca_dir, TLS_CA_KEY);
    FILE *cf = fopen(ca->cert_path, "re"), *kf = fopen(kpath, "re");
    struct tls_cert *c = &ca->cert;
    if (cf != NULL && kf != NULL) {
        c->leaf = PEM_read_X509(cf, NULL, NULL, NULL);
        c->key = PEM_read_PrivateKey(kf, NULL, NULL, NULL);
    }
    if (cf != NULL) {
        (void)fclose(cf);
    }
    if (kf != NULL) {
        (void)fclose(kf);
    }
    ERR_clear_error();
    if (c->leaf == NULL || c->key == NULL || X509_check_private_key(c->leaf, c->key) != 1) {
        ERR_clear_error();
        errbuf_set(eb, "the internal CA in %s cannot be used (%s and %s: PEM, matching)", ca_dir,
                   TLS_CA_CERT, TLS_CA_KEY);
        return -KEEL_ECONFIG;
    }
    time_t nb, na;
    if (tls_cert_times(c->leaf, &nb, &na) != 0 || na <= now || nb > now) {
        errbuf_set(eb, "the internal CA %s is not valid now: move it away to make a new one",
                   ca->cert_path);
        return -KEEL_ECONFIG;
    }
    return 0;
}

int tls_ca_open(const char *ca_dir, time_t now, struct tls_ca *ca, bool *created, struct errbuf *eb)
{
    memset(ca, 0, sizeof(*ca));
    (void)snprintf(ca->cert_path, sizeof(ca->cert_path), "%s/%s", ca_dir, TLS_CA_CERT);
    char kpath[4096];
    (void)snprintf(kpath, sizeof(kpath), "%s/%s", ca_dir, TLS_CA_KEY);
    bool has_cert = access(ca->cert_path, F_OK) == 0, has_key = access(kpath, F_OK) == 0;
    *created = !has_cert && !has_key;
    int rc = *created ? ca_create(ca_dir, now, ca, eb) : ca_load(ca_dir, now, ca, eb);
    if (rc != 0) {
        tls_ca_fini(ca);
    }
    return rc;
}

void tls_ca_fini(struct tls_ca *ca)
{
    if (ca != NULL) {
        tls_cert_fini(&ca->cert);
    }
}

/* ---------------------------------------------------------------- leaves */

/* "DNS:a,IP:127.0.0.1,..." for names[0, n). */
static bool san_text(const char (*names)[254], uint32_t n, char *out, size_t size)
{
    size_t used = 0;
    for (uint32_t i = 0; i < n; i++) {
        unsigned char buf[sizeof(struct in6_addr)];
        bool ip = inet_pton(AF_INET, names[i], buf) == 1 || inet_pton(AF_INET6, names[i], buf) == 1;
        int w = snprintf(out + used, size - used, "%s%s:%s", i > 0 ? "," : "", ip ? "IP" : "DNS",
                         names[i]);
        if (w < 0 || (size_t)w >= size - used) {
            return false;
        }
        used += (size_t)w;
    }
    return true;
}

int tls_ca_issue(const struct tls_ca *ca, const char (*names)[254], uint32_t n, uint32_t lifetime_s,
                 time_t now, struct tls_cert *out, struct errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    char san[16 * 270];
    if (n == 0 || !san_text(names, n, san, sizeof(san))) {
        errbuf_set(eb, "no names, or too many, for a certificate");
        return -EINVAL;
    }
    out->key = EVP_EC_gen("P-256");
    out->leaf = X509_new();
    out->chain = sk_X509_new_null();
    if (out->key == NULL || out->leaf == NULL || out->chain == NULL) {
        tls_cert_fini(out);
        return ossl_fail(eb, "cannot make a key");
    }
    X509 *x = out->leaf, *cax = ca->cert.leaf;
    time_t from = now - (lifetime_s >= 3600 ? SKEW_S : 0);
    /* A CN holds at most 64 bytes (RFC 5280 ub-common-name); the SAN is what clients check. */
    const char *cn = strlen(names[0]) <= 64 ? names[0] : "keel";
    bool ok = X509_set_version(x, 2) == 1 && set_serial(x) &&
              set_times(x, from, now + (time_t)lifetime_s) && X509_set_pubkey(x, out->key) == 1 &&
              set_cn(X509_get_subject_name(x), cn) &&
              X509_set_issuer_name(x, X509_get_subject_name(cax)) == 1 &&
              add_ext(x, cax, NID_basic_constraints, "critical,CA:FALSE") &&
              add_ext(x, cax, NID_key_usage, "critical,digitalSignature") &&
              add_ext(x, cax, NID_ext_key_usage, "serverAuth") &&
              add_ext(x, cax, NID_subject_key_identifier, "hash") &&
              add_ext(x, cax, NID_authority_key_identifier, "keyid:always") &&
              add_ext(x, cax, NID_subject_alt_name, san) &&
              X509_sign(x, ca->cert.key, EVP_sha256()) > 0;
    /* The chain stays empty: the CA is a root, which clients must hold already. */
    if (!ok) {
        tls_cert_fini(out);
        return ossl_fail(eb, "cannot sign a certificate");
    }
    return 0;
}

int tls_selfsigned_issue(const char (*names)[254], uint32_t n, uint32_t lifetime_s, time_t now,
                         struct tls_cert *out, struct errbuf *eb)
{
    /* A CA of one certificate that signs itself: the leaf is its own issuer. */
    struct tls_ca self;
    memset(&self, 0, sizeof(self));
    self.cert.key = EVP_EC_gen("P-256");
    self.cert.leaf = X509_new();
    if (self.cert.key == NULL || self.cert.leaf == NULL ||
        !set_cn(X509_get_subject_name(self.cert.leaf), "keel placeholder") ||
        X509_set_pubkey(self.cert.leaf, self.cert.key) != 1 ||
        !add_ext(self.cert.leaf, self.cert.leaf, NID_subject_key_identifier, "hash")) {
        tls_ca_fini(&self);
        return ossl_fail(eb, "cannot make a placeholder");
    }
    int rc = tls_ca_issue(&self, names, n, lifetime_s, now, out, eb);
    if (rc == 0) {
        /* Re-sign with the leaf's own key and name: self-signed. */
        X509 *x = out->leaf;
        bool ok = X509_set_issuer_name(x, X509_get_subject_name(x)) == 1 &&
                  X509_sign(x, out->key, EVP_sha256()) > 0;
        if (!ok) {
            tls_cert_fini(out);
            rc = ossl_fail(eb, "cannot sign a placeholder");
        }
    }
    tls_ca_fini(&self);
    return rc;
}

bool tls_cert_is_self_signed(const X509 *x)
{
    return X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0;
}
