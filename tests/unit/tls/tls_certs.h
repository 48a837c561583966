/* SPDX-License-Identifier: MIT */
/* Certificates for the TLS unit tests, made with OpenSSL in the test process: ECDSA P-256
 * or RSA 2048 keys, self-signed or signed by a test CA, with names and validity chosen by
 * the test, written as PEM files in a temporary directory that the test removes. */
#ifndef KEEL_TESTS_TLS_CERTS_H
#define KEEL_TESTS_TLS_CERTS_H

#include <criterion/criterion.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

struct tc_cert {
    EVP_PKEY *key;
    X509 *x;
};

enum tc_key { TC_EC = 0, TC_RSA };

static inline EVP_PKEY *tc_key_new(enum tc_key kind)
{
    EVP_PKEY *k = kind == TC_RSA ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    cr_assert_not_null(k);
    return k;
}

/* A certificate for key named cn (and san, "DNS:a,DNS:b", or NULL), valid from now +
 * from_s to now + until_s, signed by ca (NULL: self-signed). */
static inline struct tc_cert tc_make(enum tc_key kind, const char *cn, const char *san, long from_s,
                                     long until_s, const struct tc_cert *ca)
{
    static long serial = 1;
    struct tc_cert c = {.key = tc_key_new(kind), .x = X509_new()};
    cr_assert_not_null(c.x);
    cr_assert_eq(X509_set_version(c.x, 2), 1);
    cr_assert_eq(ASN1_INTEGER_set(X509_get_serialNumber(c.x), serial++), 1);
    cr_assert_not_null(X509_gmtime_adj(X509_getm_notBefore(c.x), from_s));
    cr_assert_not_null(X509_gmtime_adj(X509_getm_notAfter(c.x), until_s));
    cr_assert_eq(X509_set_pubkey(c.x, c.key), 1);
    X509_NAME *name = X509_get_subject_name(c.x);
    const char *o = cn[0] != '\0' ? "CN" : "O"; /* "": a name that names no host */
    cr_assert_eq(X509_NAME_add_entry_by_txt(name, o, MBSTRING_ASC,
                                            (const unsigned char *)(cn[0] != '\0' ? cn : "keel"),
                                            -1, -1, 0),
                 1);
    cr_assert_eq(X509_set_issuer_name(c.x, ca != NULL ? X509_get_subject_name(ca->x) : name), 1);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, ca != NULL ? ca->x : c.x, c.x, NULL, NULL, 0);
    if (san != NULL) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
        cr_assert_not_null(e);
        cr_assert_eq(X509_add_ext(c.x, e, -1), 1);
        X509_EXTENSION_free(e);
    }
    if (san == NULL && ca == NULL) {
        /* a CA of its own (the chain tests sign with it) */
        X509_EXTENSION *e =
            X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
        cr_assert_not_null(e);
        cr_assert_eq(X509_add_ext(c.x, e, -1), 1);
        X509_EXTENSION_free(e);
    }
    cr_assert(X509_sign(c.x, ca != NULL ? ca->key : c.key, EVP_sha256()) > 0);
    return c;
}

static inline void tc_free(struct tc_cert *c)
{
    EVP_PKEY_free(c->key);
    X509_free(c->x);
    memset(c, 0, sizeof(*c));
}

/* Write dir/name.pem (c's certificate, then chain's if not NULL) and dir/name.key. */
static inline void tc_write(const char *dir, const char *name, const struct tc_cert *c,
                            const struct tc_cert *chain)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(PEM_write_X509(f, c->x), 1);
    if (chain != NULL) {
        cr_assert_eq(PEM_write_X509(f, chain->x), 1);
    }
    fclose(f);
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(PEM_write_PrivateKey(f, c->key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

/* A fresh temporary directory (mkdtemp) into dir[64]. */
static inline void tc_tmpdir(char *dir)
{
    snprintf(dir, 64, "/tmp/keel-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static inline int tc_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void tc_rmdir(const char *dir)
{
    (void)nftw(dir, tc_rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* A struct conf_cert for dir/name.pem and dir/name.key. */
static inline struct conf_cert tc_conf_cert(const char *dir, const char *name)
{
    struct conf_cert cc;
    memset(&cc, 0, sizeof(cc));
    snprintf(cc.cert_file, sizeof(cc.cert_file), "%s/%s.pem", dir, name);
    snprintf(cc.key_file, sizeof(cc.key_file), "%s/%s.key", dir, name);
    return cc;
}

/* A frontend with keel's default TLS settings and the certificates certs[0, n). */
static inline void tc_frontend(struct conf_frontend *fe, struct conf_cert *certs, uint32_t n)
{
    memset(fe, 0, sizeof(*fe));
    snprintf(fe->name, sizeof(fe->name), "www");
    fe->tls.certs = certs;
    fe->tls.n_certs = n;
    fe->tls.has_bind = true;
    snprintf(fe->tls.ciphers, sizeof(fe->tls.ciphers), "%s", KEEL_TLS_DEFAULT_CIPHERS);
    snprintf(fe->tls.ciphersuites, sizeof(fe->tls.ciphersuites), "%s", KEEL_TLS_DEFAULT_SUITES);
    snprintf(fe->tls.groups, sizeof(fe->tls.groups), "%s", KEEL_TLS_DEFAULT_GROUPS);
}

#endif
