/* SPDX-License-Identifier: MIT */
/* A frontend's TLS server contexts (tls_ctx.h): loading and checking certificate files,
 * grouping certificates by the names they serve, one SSL_CTX per group with keel's
 * settings, and the two callbacks every handshake runs, SNI and ALPN. Everything but the
 * callbacks runs at load time. */
#include "tls/tls_ctx.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/qsbr.h"
#include "tls/acme_alpn.h"
#include "tls/cert_store.h"
#include "tls/tls_ticket.h"
#include "tls/tls_transport.h"

/* Key types one context can hold a certificate of (RSA, RSA-PSS, EC, Ed25519, Ed448). */
#define TLS_SET_MAX 8
#define TLS_NAME_MAX 253 /* a DNS name, without the trailing dot */

/* One certificate line, loaded. */
struct cert_item {
    X509 *leaf;
    STACK_OF(X509) * chain; /* the certificates after the first in the file; may be empty */
    EVP_PKEY *key;
    int key_type; /* EVP_PKEY_get_base_id */
    char **names; /* DNS names of the subjectAltName (else the CN), lowercase */
    size_t n_names;
};

/* The certificates that serve a name: at most one per key type, the first written. */
struct cert_set {
    uint32_t idx[TLS_SET_MAX];
    uint32_t n;
};

struct tls_name {
    char *name; /* lowercase; "*.example.com" for a wildcard */
    SSL_CTX *ctx;
    size_t set; /* while building: the index of its set of certificates */
};

struct tls_ctx {
    SSL_CTX *dflt; /* one of ctxs */
    SSL_CTX **ctxs;
    size_t n_ctxs;
    struct tls_name *names; /* sorted by name */
    size_t n_names;
    /* A renewed managed certificate (tls_ctx_swap): the contexts new connections start from,
     * built like these; NULL: these. Only the frontend's first tls_ctx (the root) has one. */
    _Atomic(struct tls_ctx *) successor;
    /* A successor's holds: one by its root while current, one per SSL made from it (its SNI
     * callback reads it), so it outlives the handshakes that started on it. */
    atomic_uint refs;
    struct tls_tickets *tickets; /* the session ticket keys of every context; NULL: off */
};

/* ---------------------------------------------------------------- errors */

void tls_ossl_error(struct errbuf *eb, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
    errbuf_set(eb, "%s%s%s", what, reason != NULL ? ": " : "", reason != NULL ? reason : "");
    ERR_clear_error();
}

/* ---------------------------------------------------------------- loading */

static void cert_item_fini(struct cert_item *c)
{
    X509_free(c->leaf);
    sk_X509_pop_free(c->chain, X509_free);
    EVP_PKEY_free(c->key);
    for (size_t i = 0; i < c->n_names; i++) {
        free(c->names[i]);
    }
    free(c->names);
    memset(c, 0, sizeof(*c));
}

/* Open path for reading as a BIO; NULL with eb filled ("cannot read ...: reason"). */
static BIO *open_file(const char *what, const char *path, struct errbuf *eb)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        errbuf_set(eb, "cannot read %s file %s: %s", what, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == -1 || !S_ISREG(st.st_mode)) {
        errbuf_set(eb, "cannot read %s file %s: not a regular file", what, path);
        (void)fclose(f); /* read-only */
        return NULL;
    }
    BIO *b = BIO_new_fp(f, BIO_CLOSE);
    if (b == NULL) {
        (void)fclose(f);
        errbuf_set(eb, "out of memory reading %s", path);
    }
    return b;
}

/* A key file must not need a passphrase: keel has no one to ask (and OpenSSL's default
 * would prompt on the terminal, blocking). Records that one was asked for. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    *(bool *)u = true;
    return -1;
}

static int load_certs(struct cert_item *c, const char *path, struct errbuf *eb)
{
    BIO *b = open_file("certificate", path, eb);
    if (b == NULL) {
        return -KEEL_ECONFIG;
    }
    c->leaf = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL);
    c->chain = sk_X509_new_null();
    if (c->leaf == NULL || c->chain == NULL) {
        errbuf_set(eb, "no PEM certificate in %s", path);
        ERR_clear_error();
        BIO_free(b);
        return -KEEL_ECONFIG;
    }
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_push(c->chain, x) <= 0) {
            X509_free(x);
            BIO_free(b);
            errbuf_set(eb, "out of memory reading %s", path);
            return -ENOMEM;
        }
    }
    /* The loop ends on "no start line" at the end of the file, or on a damaged PEM block. */
    unsigned long e = ERR_peek_last_error();
    BIO_free(b);
    if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        char what[CONF_PATH_MAX + 64];
        (void)snprintf(what, sizeof(what), "cannot parse certificate %d of %s",
                       sk_X509_num(c->chain) + 2, path);
        tls_ossl_error(eb, what);
        return -KEEL_ECONFIG;
    }
    ERR_clear_error();
    return 0;
}

static int load_key(struct cert_item *c, const char *path, struct errbuf *eb)
{
    BIO *b = open_file("key", path, eb);
    if (b == NULL) {
        return -KEEL_ECONFIG;
    }
    bool asked = false;
    c->key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, &asked);
    BIO_free(b);
    if (c->key == NULL) {
        if (asked) {
            errbuf_set(eb,
                       "the private key in %s is encrypted: keel needs it without a "
                       "passphrase",
                       path);
        } else {
            errbuf_set(eb, "no PEM private key in %s", path);
        }
        ERR_clear_error();
        return -KEEL_ECONFIG;
    }
    c->key_type = EVP_PKEY_get_base_id(c->key);
    return 0;
}

static void format_time(const ASN1_TIME *t, char *out, size_t size)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
        (void)snprintf(out, size, "?");
    }
}

/* Each certificate of the file must be valid now: an expired one (or one not valid yet)
 * makes every handshake fail at the client, so keel refuses it rather than serve it. */
static int check_validity(X509 *x, int index, const char *path, struct errbuf *eb)
{
    char when[64], which[32] = "certificate";
    if (index > 0) {
        (void)snprintf(which, sizeof(which), "certificate %d", index + 1);
    }
    const ASN1_TIME *after = X509_get0_notAfter(x);
    const ASN1_TIME *before = X509_get0_notBefore(x);
    if (X509_cmp_current_time(after) <= 0) {
        format_time(after, when, sizeof(when));
        errbuf_set(eb, "%s in %s expired on %s", which, path, when);
        return -KEEL_ECONFIG;
    }
    if (X509_cmp_current_time(before) >= 0) {
        format_time(before, when, sizeof(when));
        errbuf_set(eb, "%s in %s is not valid before %s", which, path, when);
        return -KEEL_ECONFIG;
    }
    return 0;
}

/* Load and check one certificate line into c (cleared on failure). */
static int cert_load(struct cert_item *c, const struct conf_cert *cc, enum tls_cert_part *part,
                     struct errbuf *eb)
{
    memset(c, 0, sizeof(*c));
    *part = TLS_PART_CERT;
    int rc = load_certs(c, cc->cert_file, eb);
    for (int i = -1; rc == 0 && i < sk_X509_num(c->chain); i++) {
        rc = check_validity(i < 0 ? c->leaf : sk_X509_value(c->chain, i), i + 1, cc->cert_file, eb);
    }
    if (rc == 0) {
        *part = TLS_PART_KEY;
        rc = load_key(c, cc->key_file, eb);
    }
    if (rc == 0 && X509_check_private_key(c->leaf, c->key) != 1) {
        ERR_clear_error();
        errbuf_set(eb, "the private key in %s does not match the certificate in %s", cc->key_file,
                   cc->cert_file);
        rc = -KEEL_ECONFIG;
    }
    if (rc != 0) {
        cert_item_fini(c);
    }
    return rc;
}

int tls_cert_check(const struct conf_cert *cert, enum tls_cert_part *part, struct errbuf *eb)
{
    struct cert_item c;
    int rc = cert_load(&c, cert, part, eb);
    cert_item_fini(&c);
    return rc;
}

/* ---------------------------------------------------------------- names */

/* Add the DNS name s[0, len) to c, lowercase, without a trailing dot. Names that cannot be
 * a DNS name (empty, too long, with a NUL) are skipped: no client can ask for them. */
static int add_name(struct cert_item *c, const char *s, size_t len)
{
    if (len > 0 && s[len - 1] == '.') {
        len--;
    }
    if (len == 0 || len > TLS_NAME_MAX || memchr(s, '\0', len) != NULL) {
        return 0;
    }
    char **grown = realloc(c->names, (c->n_names + 1) * sizeof(*c->names));
    if (grown == NULL) {
        return -ENOMEM;
    }
    c->names = grown;
    char *n = malloc(len + 1);
    if (n == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < len; i++) {
        n[i] = (char)tolower((unsigned char)s[i]);
    }
    n[len] = '\0';
    c->names[c->n_names++] = n;
    return 0;
}

/* The names a certificate serves: its subjectAltName DNS entries, or when it has none its
 * subject's common name (RFC 6125 section 6.4.4). */
static int collect_names(struct cert_item *c)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(c->leaf, NID_subject_alt_name, NULL, NULL);
    int rc = 0;
    for (int i = 0; sans != NULL && rc == 0 && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS) {
            rc = add_name(c, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                          (size_t)ASN1_STRING_length(g->d.dNSName));
        }
    }
    GENERAL_NAMES_free(sans);
    ERR_clear_error(); /* a certificate without the extension leaves a note */
    if (rc != 0 || c->n_names > 0) {
        return rc;
    }
    const X509_NAME *subj = X509_get_subject_name(c->leaf);
    int at = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (at < 0) {
        return 0;
    }
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, at)));
    if (len > 0) {
        rc = add_name(c, (const char *)utf8, (size_t)len);
    }
    OPENSSL_free(utf8);
    ERR_clear_error();
    return rc;
}

/* ---------------------------------------------------------------- callbacks */

/* SNI: move the connection to the context of the name the client asked for. A name keel
 * has no certificate for gets the default one, as nginx and HAProxy do: refusing would
 * break clients that send an unexpected name (an IP address, a local alias). */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const struct tls_ctx *t = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    SSL_CTX *ctx = tls_ctx_for_name(t, name);
    if (ctx != SSL_get_SSL_CTX(ssl) && SSL_set_SSL_CTX(ssl, ctx) == NULL) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN (RFC 7301): keel speaks http/1.1 only (h2 comes later). When the client offers
 * something else only, no protocol is selected and the handshake goes on, as nginx does;
 * the client decides. The list is parsed here rather than by SSL_select_next_proto: every
 * length is checked against the bytes the client sent. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)arg;
    static const char http11[] = "http/1.1";
    if (acme_alpn_is_challenge(ssl)) { /* a tls-alpn-01 validation (acme_alpn.h) */
        *out = (const unsigned char *)ACME_ALPN_PROTO;
        *outlen = (unsigned char)(sizeof(ACME_ALPN_PROTO) - 1);
        return SSL_TLSEXT_ERR_OK;
    }
    for (unsigned int i = 0; i < inlen;) {
        unsigned int len = in[i];
        if (len == 0 || len > inlen - i - 1) {
            return SSL_TLSEXT_ERR_NOACK; /* malformed: OpenSSL also refuses it */
        }
        if (len == sizeof(http11) - 1 && memcmp(in + i + 1, http11, len) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)len;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* ---------------------------------------------------------------- contexts */

/* Settings every context of the frontend shares. */
static int ctx_configure(SSL_CTX *ctx, const struct conf_frontend *fe, struct tls_ctx *t,
                         struct errbuf *eb)
{
    uint32_t v = fe->tls.versions != 0 ? fe->tls.versions : CONF_TLS_V12 | CONF_TLS_V13;
    int min = (v & CONF_TLS_V12) != 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
    int max = (v & CONF_TLS_V13) != 0 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (SSL_CTX_set_min_proto_version(ctx, min) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, max) != 1) {
        tls_ossl_error(eb, "cannot set the TLS versions");
        return -KEEL_ECONFIG;
    }
    tls_transport_ctx_setup(ctx);
    /* Resumption is by tickets only (stateless; TLS 1.3 and 1.2): the server-side session
     * cache would take a lock per handshake and memory per session, and serve one process
     * only. Every context of the frontend has the same keys (tls_ticket.c): a session
     * resumes on any worker, any SNI context, and any LB node with the cluster secret. */
    if (tls_tickets_install(t->tickets, ctx, eb) != 0) {
        return -KEEL_ECONFIG;
    }
    static const unsigned char sid_ctx[] = "keel";
    if (SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
        tls_ossl_error(eb, "cannot set the session context");
        return -KEEL_ECONFIG;
    }
    if (SSL_CTX_set_cipher_list(ctx, fe->tls.ciphers) != 1) {
        tls_ossl_error(eb, "invalid tls_ciphers");
        return -KEEL_ECONFIG;
    }
    if (SSL_CTX_set_ciphersuites(ctx, fe->tls.ciphersuites) != 1) {
        tls_ossl_error(eb, "invalid tls_ciphersuites");
        return -KEEL_ECONFIG;
    }
    if (SSL_CTX_set1_groups_list(ctx, fe->tls.groups) != 1) {
        tls_ossl_error(eb, "invalid tls_groups");
        return -KEEL_ECONFIG;
    }
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    SSL_CTX_set_client_hello_cb(ctx, acme_alpn_on_client_hello, NULL);
    SSL_CTX_set_cert_cb(ctx, acme_alpn_on_cert, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx, t);
    return 0;
}

int tls_setting_check(enum tls_setting which, const char *value, struct errbuf *eb)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        tls_ossl_error(eb, "cannot make an OpenSSL context");
        return -ENOMEM;
    }
    int ok = 0;
    switch (which) {
    case TLS_SET_CIPHERS:
        ok = SSL_CTX_set_cipher_list(ctx, value);
        break;
    case TLS_SET_CIPHERSUITES:
        ok = SSL_CTX_set_ciphersuites(ctx, value);
        break;
    case TLS_SET_GROUPS:
        ok = SSL_CTX_set1_groups_list(ctx, value);
        break;
    }
    SSL_CTX_free(ctx);
    if (ok != 1) {
        tls_ossl_error(eb, "OpenSSL refuses it");
        return -KEEL_ECONFIG;
    }
    ERR_clear_error();
    return 0;
}

/* One context holding the certificates of set. */
static SSL_CTX *ctx_build(const struct conf_frontend *fe, const struct conf_cert *certs,
                          struct tls_ctx *t, const struct cert_item *items,
                          const struct cert_set *set, struct errbuf *eb)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        tls_ossl_error(eb, "cannot make an OpenSSL context");
        return NULL;
    }
    if (ctx_configure(ctx, fe, t, eb) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    for (uint32_t i = 0; i < set->n; i++) {
        const struct cert_item *c = &items[set->idx[i]];
        if (SSL_CTX_use_cert_and_key(ctx, c->leaf, c->key, c->chain, 1) != 1) {
            char what[CONF_PATH_MAX + 64];
            (void)snprintf(what, sizeof(what), "cannot use the certificate in %s",
                           certs[set->idx[i]].cert_file);
            tls_ossl_error(eb, what);
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    return ctx;
}

/* ---------------------------------------------------------------- grouping */

struct name_ref {
    const char *name;
    uint32_t cert;
};

static int name_ref_cmp(const void *a, const void *b)
{
    const struct name_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : (x->cert > y->cert) - (x->cert < y->cert);
}

/* Add cert i to set unless the set has a certificate of its key type already. */
static void set_add(struct cert_set *set, const struct cert_item *items, uint32_t i)
{
    for (uint32_t k = 0; k < set->n; k++) {
        if (items[set->idx[k]].key_type == items[i].key_type) {
            return;
        }
    }
    if (set->n < TLS_SET_MAX) {
        set->idx[set->n++] = i;
    }
}

/* The index of set in sets[0, *n), added when new. */
static size_t set_find_or_add(struct cert_set *sets, size_t *n, const struct cert_set *set)
{
    for (size_t g = 0; g < *n; g++) {
        if (sets[g].n == set->n &&
            memcmp(sets[g].idx, set->idx, set->n * sizeof(set->idx[0])) == 0) {
            return g;
        }
    }
    sets[*n] = *set;
    return (*n)++;
}

static int tls_name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tls_name *)a)->name, ((const struct tls_name *)b)->name);
}

/* Group the names by the set of certificates that serve each (sets[g]), fill t->names
 * (sorted, as the names are walked in order) with each name's set, and return the default
 * set in *dflt. At most one set per name, plus one. */
static int group_names(struct tls_ctx *t, const struct cert_item *items, uint32_t n_items,
                       struct cert_set *sets, size_t *n_sets, size_t *dflt)
{
    size_t n_refs = 0;
    for (uint32_t i = 0; i < n_items; i++) {
        n_refs += items[i].n_names;
    }
    struct name_ref *refs = calloc(n_refs + 1, sizeof(*refs));
    t->names = calloc(n_refs + 1, sizeof(*t->names));
    if (refs == NULL || t->names == NULL) {
        free(refs);
        return -ENOMEM;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < n_items; i++) {
        for (size_t j = 0; j < items[i].n_names; j++) {
            refs[k++] = (struct name_ref){items[i].names[j], i};
        }
    }
    qsort(refs, n_refs, sizeof(*refs), name_ref_cmp);
    *dflt = SIZE_MAX;
    for (size_t a = 0; a < n_refs;) {
        struct cert_set set = {.n = 0};
        size_t b = a;
        for (; b < n_refs && strcmp(refs[b].name, refs[a].name) == 0; b++) {
            set_add(&set, items, refs[b].cert); /* ascending: the first written wins */
        }
        size_t g = set_find_or_add(sets, n_sets, &set);
        t->names[t->n_names].name = strdup(refs[a].name);
        t->names[t->n_names].set = g;
        if (t->names[t->n_names].name == NULL) {
            free(refs);
            return -ENOMEM;
        }
        t->n_names++;
        if (*dflt == SIZE_MAX && items[0].n_names > 0 &&
            strcmp(refs[a].name, items[0].names[0]) == 0) {
            *dflt = g;
        }
        a = b;
    }
    free(refs);
    if (*dflt == SIZE_MAX) { /* the first certificate names nothing: it alone */
        struct cert_set set = {.idx = {0}, .n = 1};
        *dflt = set_find_or_add(sets, n_sets, &set);
    }
    return 0;
}

static int ctx_fill(struct tls_ctx *t, const struct conf_frontend *fe,
                    const struct conf_cert *certs, uint32_t n_items, const struct cert_item *items,
                    struct errbuf *eb)
{
    size_t max_sets = 1;
    for (uint32_t i = 0; i < n_items; i++) {
        max_sets += items[i].n_names;
    }
    struct cert_set *sets = calloc(max_sets, sizeof(*sets));
    size_t n_sets = 0, dflt = 0;
    if (sets == NULL || group_names(t, items, n_items, sets, &n_sets, &dflt) != 0) {
        free(sets);
        errbuf_set(eb, "out of memory loading certificates");
        return -ENOMEM;
    }
    t->ctxs = calloc(n_sets, sizeof(*t->ctxs));
    if (t->ctxs == NULL) {
        free(sets);
        errbuf_set(eb, "out of memory loading certificates");
        return -ENOMEM;
    }
    for (size_t g = 0; g < n_sets; g++) {
        t->ctxs[g] = ctx_build(fe, certs, t, items, &sets[g], eb);
        if (t->ctxs[g] == NULL) {
            free(sets);
            return -KEEL_ECONFIG;
        }
        t->n_ctxs++;
    }
    free(sets);
    for (size_t i = 0; i < t->n_names; i++) {
        t->names[i].ctx = t->ctxs[t->names[i].set];
    }
    t->dflt = t->ctxs[dflt];
    return 0;
}

/* The certificate lines of fe, then its managed certificate's files (acme): a copy, in
 * *n entries (NULL on OOM). */
static struct conf_cert *certs_of(const struct conf_frontend *fe, uint32_t *n)
{
    bool managed = fe->tls.acme.issuer != CONF_ACME_NONE;
    *n = fe->tls.n_certs + (managed ? 1 : 0);
    struct conf_cert *certs = calloc(*n + 1, sizeof(*certs));
    if (certs == NULL) {
        return NULL;
    }
    if (fe->tls.n_certs > 0) {
        memcpy(certs, fe->tls.certs, fe->tls.n_certs * sizeof(*certs));
    }
    if (managed) {
        struct conf_cert *c = &certs[fe->tls.n_certs];
        (void)snprintf(c->cert_file, sizeof(c->cert_file), "%.900s/%s", fe->tls.acme.dir,
                       CERT_STORE_CERT);
        (void)snprintf(c->key_file, sizeof(c->key_file), "%.900s/%s", fe->tls.acme.dir,
                       CERT_STORE_KEY);
        c->cert_pos = c->key_pos = fe->tls.acme.pos;
    }
    return certs;
}

struct tls_ctx *tls_ctx_new(const struct conf_frontend *fe, struct errbuf *eb)
{
    uint32_t n_certs = 0;
    struct conf_cert *certs = certs_of(fe, &n_certs);
    if (certs != NULL && n_certs == 0) {
        free(certs);
        errbuf_set(eb, "frontend \"%s\" has no certificate", fe->name);
        return NULL;
    }
    struct tls_ctx *t = calloc(1, sizeof(*t));
    struct cert_item *items = calloc(n_certs + 1, sizeof(*items));
    if (t == NULL || items == NULL || certs == NULL) {
        free(t);
        free(items);
        free(certs);
        errbuf_set(eb, "out of memory loading certificates");
        return NULL;
    }
    int rc = 0;
    if (!fe->tls.tickets_off) {
        t->tickets = tls_tickets_new(fe->tls.secret_file, fe->name, fe->tls.ticket_period_ms, eb);
        rc = t->tickets == NULL ? -KEEL_ECONFIG : 0;
    }
    for (uint32_t i = 0; rc == 0 && i < n_certs; i++) {
        enum tls_cert_part part;
        rc = cert_load(&items[i], &certs[i], &part, eb);
        if (rc == 0 && collect_names(&items[i]) != 0) {
            errbuf_set(eb, "out of memory loading certificates");
            rc = -ENOMEM;
        }
    }
    if (rc == 0) {
        rc = ctx_fill(t, fe, certs, n_certs, items, eb);
    }
    for (uint32_t i = 0; i < n_certs; i++) {
        cert_item_fini(&items[i]); /* the contexts hold their own references */
    }
    free(items);
    free(certs);
    if (rc != 0) {
        tls_ctx_free(t);
        return NULL;
    }
    return t;
}

static void ctx_unref(struct tls_ctx *t);

void tls_ctx_free(struct tls_ctx *t)
{
    if (t == NULL) {
        return;
    }
    struct tls_ctx *next = atomic_exchange(&t->successor, NULL);
    if (next != NULL) {
        ctx_unref(next); /* the root's hold; connections may hold it longer */
    }
    for (size_t i = 0; i < t->n_ctxs; i++) {
        SSL_CTX_free(t->ctxs[i]);
    }
    for (size_t i = 0; i < t->n_names; i++) {
        free(t->names[i].name);
    }
    free(t->names);
    free(t->ctxs);
    tls_tickets_free(t->tickets); /* after the contexts that point to it */
    free(t);
}

SSL_CTX *tls_ctx_default(const struct tls_ctx *t)
{
    return t->dflt;
}

size_t tls_ctx_count(const struct tls_ctx *t)
{
    return t->n_ctxs;
}

static SSL_CTX *lookup(const struct tls_ctx *t, const char *name)
{
    struct tls_name key = {.name = (char *)name};
    const struct tls_name *hit =
        bsearch(&key, t->names, t->n_names, sizeof(*t->names), tls_name_cmp);
    return hit != NULL ? hit->ctx : NULL;
}

SSL_CTX *tls_ctx_for_name(const struct tls_ctx *t, const char *name)
{
    char low[TLS_NAME_MAX + 2];
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '.') {
        len--;
    }
    if (len == 0 || len > TLS_NAME_MAX) {
        return t->dflt;
    }
    for (size_t i = 0; i < len; i++) {
        low[i + 1] = (char)tolower((unsigned char)name[i]);
    }
    low[len + 1] = '\0';
    SSL_CTX *ctx = lookup(t, low + 1);
    if (ctx != NULL) {
        return ctx;
    }
    /* "*.example.com" covers one label: "a.example.com", not "example.com" nor
     * "a.b.example.com" (RFC 6125 section 6.4.3). */
    char *dot = memchr(low + 1, '.', len);
    if (dot != NULL && dot != low + 1) {
        dot[-1] = '*';
        ctx = lookup(t, dot - 1);
    }
    return ctx != NULL ? ctx : t->dflt;
}

/* ---------------------------------------------------------------- renewal */

static void ctx_unref(struct tls_ctx *t)
{
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
        tls_ctx_free(t);
    }
}

static void ctx_unref_fn(void *t)
{
    ctx_unref(t);
}

/* An SSL made from a successor holds it through its ex_data: the hold goes with the SSL. */
static void on_ssl_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr != NULL) {
        ctx_unref(ptr);
    }
}

static int ssl_ex_index = -1;
static pthread_once_t ssl_ex_once = PTHREAD_ONCE_INIT;

static void ssl_ex_init(void)
{
    ssl_ex_index = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL, on_ssl_free);
}

SSL *tls_ctx_ssl_new(const struct tls_ctx *t)
{
    struct tls_ctx *s =
        atomic_load_explicit(&((struct tls_ctx *)t)->successor, memory_order_acquire);
    if (s == NULL) {
        return SSL_new(t->dflt);
    }
    (void)pthread_once(&ssl_ex_once, ssl_ex_init); /* cannot fail with a valid once */
    /* Within this loop iteration: tls_ctx_swap drops the root's hold only after every worker
     * passed a quiescent state (qsbr), so s is still alive here. */
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    SSL *ssl = ssl_ex_index >= 0 ? SSL_new(s->dflt) : NULL;
    if (ssl == NULL || SSL_set_ex_data(ssl, ssl_ex_index, s) != 1) {
        SSL_free(ssl); /* its ex_data is NULL: no unref there */
        ctx_unref(s);
        return NULL;
    }
    return ssl;
}

void tls_ctx_swap(struct tls_ctx *root, struct tls_ctx *next)
{
    atomic_store_explicit(&next->refs, 1, memory_order_relaxed);
    struct tls_ctx *old = atomic_exchange_explicit(&root->successor, next, memory_order_acq_rel);
    if (old != NULL) {
        qsbr_retire(old, ctx_unref_fn);
    }
}

const struct tls_ctx *tls_ctx_current(const struct tls_ctx *root)
{
    const struct tls_ctx *s =
        atomic_load_explicit(&((struct tls_ctx *)root)->successor, memory_order_acquire);
    return s != NULL ? s : root;
}
