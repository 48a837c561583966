/* SPDX-License-Identifier: MIT */
/* TLS client contexts: what keel needs to connect to one TLS peer (a backend server, an
 * ACME directory, etcd): one OpenSSL client SSL_CTX with the CA store to verify against, the
 * name to send as SNI and to check in the peer's certificate, the ALPN protocol to offer,
 * and the session to resume, shared by every connection to that peer on every thread. A
 * connection uses it through the transport seam: struct http_xprt_conf {&tls_xprt_ops,
 * client}, opened with HTTP_XPRT_CONNECTING (tls_transport.h). Built at load time (blocking
 * file I/O), then shared read-only except for the saved session (under a mutex). */
#ifndef KEEL_TLS_TLS_CLIENT_H
#define KEEL_TLS_TLS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/types.h>

#include "core/err.h"

struct tls_client_conf {
    const char *ca_file; /* PEM CA bundle to verify the peer against; NULL: the system's
                          * default store */
    const char *name;    /* sent as SNI and the name the peer's certificate must match (DNS
                          * name, or an IP literal checked against IP SANs); NULL: no SNI */
    bool is_verify_off;  /* accept any certificate (tests, `verify none`) */
    const char *alpn;    /* ALPN protocol to offer; NULL: "http/1.1" */
};

/* One client SSL_CTX + the name; shared by every connection of one server/endpoint. */
struct tls_client;

/* Build a client context from c (borrowed: the strings are copied). Verification is on
 * unless c->is_verify_off: the peer's chain must lead to a certificate of c->ca_file (or of
 * the system's store) and, when c->name is set, name it (a DNS name: its subjectAltName DNS
 * entries, wildcards in the left-most label only; an IP literal, with no SNI sent: its IP
 * entries). TLS 1.2 and 1.3 only. Returns NULL with eb filled when the CA file cannot be
 * read or holds no certificate, or a setting is refused, or on OOM. Blocking file I/O: load
 * and reload time only. */
struct tls_client *tls_client_new(const struct tls_client_conf *c, struct errbuf *eb);

/* Free c (NULL allowed). Connections opened on it hold references to its SSL_CTX, but the
 * session callback reads c: free it only once no connection made from it is left (the lb
 * frees it with its generation). */
void tls_client_free(struct tls_client *c);

/* For the transport (tls_transport.c): a new SSL in the client state for one connection,
 * with the SNI name and the saved session to resume, if any. NULL on OOM. Never blocks;
 * any thread. */
SSL *tls_client_ssl_new(struct tls_client *c);

/* The name the peer's certificate must match, as configured (NULL: none). */
const char *tls_client_name(const struct tls_client *c);

/* Whether c holds a session to resume (tests). */
bool tls_client_has_session(struct tls_client *c);

#endif
