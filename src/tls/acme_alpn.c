/* SPDX-License-Identifier: MIT */
/* The tls-alpn-01 responder (acme_alpn.h): challenge certificates (RFC 8737 section 3), the
 * published table, and the handshake callbacks that serve them. */
#include "tls/acme_alpn.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/qsbr.h"
#include "tls/acme_jws.h"

#define NAME_MAX_LEN 254
#define OID_ACME_IDENTIFIER "1.3.6.1.5.5.7.1.31" /* id-pe-acmeIdentifier, RFC 8737 6.1 */
#define CERT_LIFETIME_S (7 * 24 * 3600)

struct entry {
    char sni[NAME_MAX_LEN + 20]; /* what the CA sends: the name, or the reverse-DNS name */
    X509 *cert;
    EVP_PKEY *key;
};

struct table {
    size_t n;
    struct entry e[ACME_ALPN_MAX];
};

static _Atomic(struct table *) current;

/* ---------------------------------------------------------------- names */

int acme_alpn_sni_name(const char *identifier, char *out, size_t size)
{
    unsigned char a[16];
    int n;
    if (inet_pton(AF_INET, identifier, a) == 1) {
        n = snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
    } else if (inet_pton(AF_INET6, identifier, a) == 1) {
        size_t used = 0;
        for (int i = 15; i >= 0; i--) {
            if (used + 4 >= size) {
                return -ENOSPC;
            }
            used += (size_t)snprintf(out + used, size - used, "%x.%x.", a[i] & 0xf, a[i] >> 4);
        }
        n = (int)used + snprintf(out + used, size - used, "ip6.arpa");
    } else {
        n = snprintf(out, size, "%s", identifier);
        for (int i = 0; i < n && (size_t)i < size; i++) {
            out[i] = (char)tolower((unsigned char)out[i]);
        }
    }
    return n > 0 && (size_t)n < size ? 0 : -ENOSPC;
}

/* ---------------------------------------------------------------- certificates */

int acme_alpn_cert_new(const char *identifier, const char *key_authorization, X509 **cert,
                       EVP_PKEY **key, struct errbuf *eb)
{
    uint8_t digest[32];
    acme_alpn_digest(key_authorization, digest);
    /* The extension's value is the DER of an OCTET STRING holding the digest. */
    uint8_t der[2 + sizeof(digest)] = {0x04, sizeof(digest)};
    memcpy(der + 2, digest, sizeof(digest));
    unsigned char ip[16];
    bool is_ip =
        inet_pton(AF_INET, identifier, ip) == 1 || inet_pton(AF_INET6, identifier, ip) == 1;
    char san[NAME_MAX_LEN + 8];
    (void)snprintf(san, sizeof(san), "%s:%s", is_ip ? "IP" : "DNS", identifier);
    EVP_PKEY *k = acme_key_new();
    X509 *x = X509_new();
    ASN1_OBJECT *oid = OBJ_txt2obj(OID_ACME_IDENTIFIER, 1);
    ASN1_OCTET_STRING *val = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *san_ext = NULL;
    time_t now = time(NULL), until = now + CERT_LIFETIME_S;
    bool ok =
        k != NULL && x != NULL && oid != NULL && val != NULL &&
        ASN1_OCTET_STRING_set(val, der, sizeof(der)) == 1 &&
        (ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, val)) != NULL &&
        X509_set_version(x, 2) == 1 && ASN1_INTEGER_set(X509_get_serialNumber(x), (long)now) == 1 &&
        X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &now) != NULL &&
        X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &until) != NULL &&
        X509_set_pubkey(x, k) == 1 &&
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                   (const unsigned char *)"keel acme-tls/1", -1, -1, 0) == 1 &&
        X509_set_issuer_name(x, X509_get_subject_name(x)) == 1 &&
        (san_ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san)) != NULL &&
        X509_add_ext(x, san_ext, -1) == 1 && X509_add_ext(x, ext, -1) == 1 &&
        X509_sign(x, k, EVP_sha256()) > 0;
    X509_EXTENSION_free(ext);
    X509_EXTENSION_free(san_ext);
    ASN1_OCTET_STRING_free(val);
    ASN1_OBJECT_free(oid);
    ERR_clear_error();
    if (!ok) {
        X509_free(x);
        EVP_PKEY_free(k);
        errbuf_set(eb, "cannot make a tls-alpn-01 certificate for %s", identifier);
        return -ENOMEM;
    }
    *cert = x;
    *key = k;
    return 0;
}

/* ---------------------------------------------------------------- the table */

static void table_free(void *p)
{
    struct table *t = p;
    for (size_t i = 0; i < t->n; i++) {
        X509_free(t->e[i].cert);
        EVP_PKEY_free(t->e[i].key);
    }
    free(t);
}

/* A copy of the current table, each entry holding its own references. */
static struct table *copy_current(void)
{
    struct table *t = calloc(1, sizeof(*t));
    const struct table *old = atomic_load_explicit(&current, memory_order_acquire);
    if (t != NULL && old != NULL) {
        memcpy(t, old, sizeof(*t));
        for (size_t i = 0; i < t->n; i++) {
            (void)X509_up_ref(t->e[i].cert);
            (void)EVP_PKEY_up_ref(t->e[i].key);
        }
    }
    return t;
}

static void publish(struct table *t)
{
    struct table *old = atomic_exchange_explicit(&current, t, memory_order_acq_rel);
    if (old != NULL) {
        qsbr_retire(old, table_free);
    }
}

int acme_alpn_add(const char *identifier, const char *key_authorization)
{
    char sni[NAME_MAX_LEN + 20];
    if (acme_alpn_sni_name(identifier, sni, sizeof(sni)) != 0) {
        return -EINVAL;
    }
    X509 *x;
    EVP_PKEY *k;
    struct errbuf eb;
    int rc = acme_alpn_cert_new(identifier, key_authorization, &x, &k, &eb);
    if (rc != 0) {
        return rc;
    }
    struct table *t = copy_current();
    if (t == NULL) {
        X509_free(x);
        EVP_PKEY_free(k);
        return -ENOMEM;
    }
    size_t i = 0;
    while (i < t->n && strcmp(t->e[i].sni, sni) != 0) {
        i++;
    }
    if (i == ACME_ALPN_MAX) {
        X509_free(x);
        EVP_PKEY_free(k);
        table_free(t);
        return -ENOSPC;
    }
    if (i < t->n) {
        X509_free(t->e[i].cert);
        EVP_PKEY_free(t->e[i].key);
    } else {
        t->n++;
    }
    (void)snprintf(t->e[i].sni, sizeof(t->e[i].sni), "%s", sni);
    t->e[i].cert = x;
    t->e[i].key = k;
    publish(t);
    return 0;
}

void acme_alpn_remove(const char *identifier)
{
    char sni[NAME_MAX_LEN + 20];
    if (acme_alpn_sni_name(identifier, sni, sizeof(sni)) != 0 ||
        atomic_load_explicit(&current, memory_order_acquire) == NULL) {
        return;
    }
    struct table *t = copy_current();
    if (t == NULL) {
        return; /* out of memory: the answer stays until the next change; harmless */
    }
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->e[i].sni, sni) == 0) {
            X509_free(t->e[i].cert);
            EVP_PKEY_free(t->e[i].key);
            t->e[i] = t->e[--t->n];
            break;
        }
    }
    publish(t);
}

size_t acme_alpn_count(void)
{
    const struct table *t = atomic_load_explicit(&current, memory_order_acquire);
    return t != NULL ? t->n : 0;
}

/* ---------------------------------------------------------------- handshakes */

/* The index of the entry an SSL is being answered with, +1, in its ex_data (0: none). */
static int ex_index = -1;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;

static void ex_init(void)
{
    ex_index = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL, NULL);
}

bool acme_alpn_parse_sni(const unsigned char *p, size_t len, char *out, size_t size)
{
    if (len < 5) {
        return false;
    }
    size_t list = ((size_t)p[0] << 8) | p[1];
    size_t name = ((size_t)p[3] << 8) | p[4];
    if (list + 2 != len || p[2] != TLSEXT_NAMETYPE_host_name || name + 5 > len || name == 0 ||
        name >= size || memchr(p + 5, '\0', name) != NULL) {
        return false;
    }
    for (size_t i = 0; i < name; i++) {
        out[i] = (char)tolower(p[5 + i]);
    }
    out[name] = '\0';
    return true;
}

/* The SNI host name of the ClientHello, into out; false when absent or malformed. */
static bool hello_server_name(SSL *ssl, char *out, size_t size)
{
    const unsigned char *p;
    size_t len;
    return SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) == 1 &&
           acme_alpn_parse_sni(p, len, out, size);
}

/* Whether the ClientHello's ALPN list is exactly acme-tls/1 (RFC 8737 section 3: the CA
 * offers it alone). */
static bool hello_offers_only_acme(SSL *ssl)
{
    static const unsigned char want[] = "\x00\x0b\x0a" ACME_ALPN_PROTO;
    const unsigned char *p;
    size_t len;
    return SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &p,
                                     &len) == 1 &&
           len == sizeof(want) - 1 && memcmp(p, want, len) == 0;
}

/* The entry of t for the name in name, or NULL. */
static const struct entry *find(const struct table *t, const char *name)
{
    for (size_t i = 0; t != NULL && i < t->n; i++) {
        if (strcmp(t->e[i].sni, name) == 0) {
            return &t->e[i];
        }
    }
    return NULL;
}

int acme_alpn_on_client_hello(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    const struct table *t = atomic_load_explicit(&current, memory_order_acquire);
    if (t == NULL || t->n == 0 || !hello_offers_only_acme(ssl)) {
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    char name[NAME_MAX_LEN + 20];
    if (hello_server_name(ssl, name, sizeof(name)) && find(t, name) != NULL) {
        (void)pthread_once(&ex_once, ex_init);
        if (ex_index >= 0) {
            (void)SSL_set_ex_data(ssl, ex_index, (void *)1);
        }
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

bool acme_alpn_is_challenge(const SSL *ssl)
{
    return ex_index >= 0 && ssl != NULL && SSL_get_ex_data(ssl, ex_index) != NULL;
}

int acme_alpn_on_cert(SSL *ssl, void *arg)
{
    (void)arg;
    if (!acme_alpn_is_challenge(ssl)) {
        return 1;
    }
    /* Looked up again by name: the control thread may have published another table since
     * the ClientHello callback (what this thread loaded stays valid within its iteration). */
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    char name[NAME_MAX_LEN + 20];
    size_t len = sni != NULL ? strlen(sni) : 0;
    if (len == 0 || len >= sizeof(name)) {
        return 0;
    }
    for (size_t i = 0; i <= len; i++) {
        name[i] = (char)tolower((unsigned char)sni[i]);
    }
    const struct entry *e = find(atomic_load_explicit(&current, memory_order_acquire), name);
    if (e == NULL) {
        return 0; /* the challenge ended meanwhile: fail this handshake */
    }
    /* Only the challenge certificate: none of the context's may be chosen instead. */
    SSL_certs_clear(ssl);
    if (SSL_use_cert_and_key(ssl, e->cert, e->key, NULL, 1) != 1) {
        ERR_clear_error();
        return 0;
    }
    return 1;
}
