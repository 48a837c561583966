/* SPDX-License-Identifier: MIT */
/* TLS client contexts (tls_client.h): the client SSL_CTX of one peer, its verification
 * settings (CA store, the name or IP address to check), SNI and ALPN, and the one session
 * every new connection to that peer resumes. Everything but tls_client_ssl_new and the
 * session callback runs at load time. */
#include "tls/tls_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls_ctx.h"
#include "tls/tls_transport.h"

#define TLS_ALPN_MAX 255 /* one protocol name (RFC 7301 section 3.1) */

struct tls_client {
    SSL_CTX *ctx;
    char *name; /* NULL: no name checked, no SNI */
    bool is_ip; /* name is an IP literal: checked against IP SANs, never sent as SNI */
    /* The session new connections resume: the newest one the peer gave (a TLS 1.3 ticket
     * arrives after the handshake, on a read). Workers are threads sharing this context;
     * the lock is held for a reference count and a pointer, once per new connection and per
     * ticket, never across I/O (the data path of an established connection never takes
     * it). */
    pthread_mutex_t lock;
    SSL_SESSION *session;
};

/* A peer gave a session (a TLS 1.2 session at the end of the handshake, or a TLS 1.3
 * ticket): keep it as the one to resume. The same session is offered by every connection
 * until a newer one comes, as HAProxy does per server: a TLS 1.3 ticket used more than once
 * is accepted by OpenSSL, nginx and HAProxy servers (stateless tickets), and a server that
 * refuses it only costs a full handshake. Returns 1: c keeps the reference. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct tls_client *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (c == NULL || SSL_SESSION_is_resumable(sess) != 1) {
        return 0;
    }
    pthread_mutex_lock(&c->lock);
    SSL_SESSION *old = c->session;
    c->session = sess;
    pthread_mutex_unlock(&c->lock);
    SSL_SESSION_free(old);
    return 1;
}

/* The CA bundle: readable, a regular file, with at least one certificate. */
static int load_ca_file(SSL_CTX *ctx, const char *path, struct errbuf *eb)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        errbuf_set(eb, "cannot read CA file %s: %s", path, strerror(errno));
        return -KEEL_ECONFIG;
    }
    struct stat st;
    bool is_reg = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
    (void)fclose(f); /* read-only */
    if (!is_reg) {
        errbuf_set(eb, "cannot read CA file %s: not a regular file", path);
        return -KEEL_ECONFIG;
    }
    if (SSL_CTX_load_verify_file(ctx, path) != 1) {
        char what[600];
        (void)snprintf(what, sizeof(what), "no usable PEM certificate in CA file %s", path);
        tls_ossl_error(eb, what);
        return -KEEL_ECONFIG;
    }
    return 0;
}

/* The name to check: an IP literal against IP SANs (and no SNI: RFC 6066 section 3 forbids
 * literal addresses there), a DNS name against DNS SANs, "*.example.com" matching one whole
 * label only (RFC 6125 section 6.4.3). */
static int set_name(struct tls_client *c, const char *name, struct errbuf *eb)
{
    unsigned char a[16];
    c->is_ip = inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
    c->name = strdup(name);
    if (c->name == NULL) {
        errbuf_set(eb, "out of memory");
        return -ENOMEM;
    }
    X509_VERIFY_PARAM *p = SSL_CTX_get0_param(c->ctx);
    X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok =
        c->is_ip ? X509_VERIFY_PARAM_set1_ip_asc(p, name) : X509_VERIFY_PARAM_set1_host(p, name, 0);
    if (ok != 1) {
        tls_ossl_error(eb, "cannot set the name to verify");
        return -KEEL_ECONFIG;
    }
    return 0;
}

static int set_alpn(SSL_CTX *ctx, const char *alpn, struct errbuf *eb)
{
    size_t len = strlen(alpn);
    if (len == 0 || len > TLS_ALPN_MAX) {
        errbuf_set(eb, "invalid ALPN protocol \"%s\": must be 1 to %d bytes long", alpn,
                   TLS_ALPN_MAX);
        return -KEEL_ECONFIG;
    }
    unsigned char wire[TLS_ALPN_MAX + 1];
    wire[0] = (unsigned char)len;
    memcpy(wire + 1, alpn, len);
    if (SSL_CTX_set_alpn_protos(ctx, wire, (unsigned)len + 1) != 0) { /* 0 is success */
        tls_ossl_error(eb, "cannot set ALPN");
        return -KEEL_ECONFIG;
    }
    return 0;
}

static int ctx_configure(struct tls_client *c, const struct tls_client_conf *conf,
                         struct errbuf *eb)
{
    SSL_CTX *ctx = c->ctx;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        tls_ossl_error(eb, "cannot set the TLS versions");
        return -KEEL_ECONFIG;
    }
    /* As on the server side (servers often close idle keep-alive connections without a
     * close_notify; pooled idle connections give their record buffers back). */
    tls_transport_ctx_setup(ctx);
    /* Sessions go to on_new_session only: OpenSSL's own cache would hold every one. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    if (SSL_CTX_set_app_data(ctx, c) != 1) {
        tls_ossl_error(eb, "cannot attach the context");
        return -ENOMEM;
    }
    if (conf->is_verify_off) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int rc = 0;
        if (conf->ca_file != NULL) {
            rc = load_ca_file(ctx, conf->ca_file, eb);
        } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            tls_ossl_error(eb, "cannot load the system's CA store");
            rc = -KEEL_ECONFIG;
        }
        if (rc != 0) {
            return rc;
        }
    }
    int rc = set_alpn(ctx, conf->alpn != NULL ? conf->alpn : "http/1.1", eb);
    if (rc == 0 && conf->name != NULL && conf->name[0] != '\0') {
        rc = set_name(c, conf->name, eb);
    }
    return rc;
}

struct tls_client *tls_client_new(const struct tls_client_conf *conf, struct errbuf *eb)
{
    struct tls_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        errbuf_set(eb, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        errbuf_set(eb, "cannot create a lock");
        return NULL;
    }
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL) {
        tls_ossl_error(eb, "cannot make an OpenSSL context");
        tls_client_free(c);
        return NULL;
    }
    if (ctx_configure(c, conf, eb) != 0) {
        tls_client_free(c);
        return NULL;
    }
    return c;
}

void tls_client_free(struct tls_client *c)
{
    if (c == NULL) {
        return;
    }
    SSL_SESSION_free(c->session);
    if (c->ctx != NULL) {
        /* SSL objects still alive keep the SSL_CTX: they must not reach c any more. */
        (void)SSL_CTX_set_app_data(c->ctx, NULL);
        SSL_CTX_free(c->ctx);
    }
    free(c->name);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

SSL *tls_client_ssl_new(struct tls_client *c)
{
    SSL *ssl = SSL_new(c->ctx);
    if (ssl == NULL) {
        ERR_clear_error();
        return NULL;
    }
    if (c->name != NULL && !c->is_ip && SSL_set_tlsext_host_name(ssl, c->name) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    pthread_mutex_lock(&c->lock);
    if (c->session != NULL) {
        (void)SSL_set_session(ssl, c->session); /* takes a reference; fails only on OOM:
                                                 * then a full handshake */
    }
    pthread_mutex_unlock(&c->lock);
    SSL_set_connect_state(ssl);
    return ssl;
}

const char *tls_client_name(const struct tls_client *c)
{
    return c->name;
}

bool tls_client_has_session(struct tls_client *c)
{
    pthread_mutex_lock(&c->lock);
    bool has = c->session != NULL;
    pthread_mutex_unlock(&c->lock);
    return has;
}
