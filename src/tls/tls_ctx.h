/* SPDX-License-Identifier: MIT */
/* A frontend's OpenSSL server contexts: its certificates, loaded and checked; one SSL_CTX
 * per set of certificates that serve a name, so that an ECDSA and an RSA certificate for
 * the same name sit in one context and the client's signature algorithms choose between
 * them; SNI selection (the exact name, then a wildcard, then the first certificate's
 * context); ALPN (http/1.1 only); protocol versions, ciphers and groups. Built at load time
 * (blocking file I/O), then read-only: every worker's connections share it. The transport
 * over it is tls_transport.c; the directives are tls_conf.c. */
#ifndef KEEL_TLS_TLS_CTX_H
#define KEEL_TLS_TLS_CTX_H

#include <openssl/types.h>

#include "core/conf-t.h"
#include "core/err.h"

/* Mozilla's "intermediate" settings (TLS 1.2 ciphers without DHE, which keel does not
 * configure), the defaults of tls_ciphers, tls_ciphersuites and tls_groups. */
#define KEEL_TLS_DEFAULT_CIPHERS                                                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define KEEL_TLS_DEFAULT_SUITES                                                                    \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define KEEL_TLS_DEFAULT_GROUPS "X25519:prime256v1:secp384r1"

struct tls_ctx;

/* eb = "what: reason", the reason being OpenSSL's last error on this thread (none: "what"),
 * then this thread's error queue emptied (a stale entry would confuse the next
 * SSL_get_error). For every OpenSSL failure src/tls reports. */
void tls_ossl_error(struct errbuf *eb, const char *what);

/* Which file of a certificate line an error is about. */
enum tls_cert_part { TLS_PART_CERT = 0, TLS_PART_KEY };

/* Check one `certificate` line as `keel check` reports it: both files are readable PEM,
 * the key matches the first certificate, and every certificate in the file is valid now
 * (neither expired nor not yet valid). Returns 0, or -KEEL_ECONFIG with the reason in eb
 * and *part naming the file it is about. Blocking file I/O: load time only. */
int tls_cert_check(const struct conf_cert *cert, enum tls_cert_part *part,
                   struct errbuf *eb) KEEL_MUST_CHECK;

/* The settings OpenSSL parses (tls_ciphers, tls_ciphersuites, tls_groups), checked on a
 * scratch context so that a mistake is reported where it was written. */
enum tls_setting { TLS_SET_CIPHERS = 0, TLS_SET_CIPHERSUITES, TLS_SET_GROUPS };
int tls_setting_check(enum tls_setting which, const char *value, struct errbuf *eb) KEEL_MUST_CHECK;

/* Build the contexts of fe (borrowed; only its tls settings are read, during the call).
 * Returns NULL with eb filled when a file cannot be used or a setting is refused, or on
 * OOM. Blocking file I/O: load and reload time only. */
struct tls_ctx *tls_ctx_new(const struct conf_frontend *fe, struct errbuf *eb);

/* Free t (NULL allowed). SSL objects made from its contexts hold references of their own,
 * but the SNI callback reads t: free it only when no handshake can still run on it (the
 * lb frees it with its generation, which every connection holds). */
void tls_ctx_free(struct tls_ctx *t);

/* The context connections start from: the first certificate's (with the certificates of
 * the other key types for its names), which serves clients that send no known name. */
SSL_CTX *tls_ctx_default(const struct tls_ctx *t);

/* The context that serves the SNI name (any case, a trailing dot allowed): the exact name,
 * else the wildcard of its parent ("*.example.com" for "a.example.com"), else the default.
 * Never blocks; called by the SNI callback of each handshake. */
SSL_CTX *tls_ctx_for_name(const struct tls_ctx *t, const char *name);

/* A new SSL for a connection accepted on root (a frontend's tls_ctx): from the contexts of
 * its latest managed certificate when tls_ctx_swap gave it one, else from root's default.
 * The SSL holds those contexts until it is freed. NULL on OOM. Any thread; never blocks. */
SSL *tls_ctx_ssl_new(const struct tls_ctx *root);

/* A renewed certificate: new connections on root start from next's contexts (next is built
 * by tls_ctx_new from the same frontend; root takes ownership). The contexts it replaces are
 * freed once no worker can be about to use them (qsbr) and the connections made from them
 * are gone. Open connections keep their certificate. Control thread. */
void tls_ctx_swap(struct tls_ctx *root, struct tls_ctx *next);

/* What new connections on root start from: root, or its latest successor (tests, status).
 * Control thread. */
const struct tls_ctx *tls_ctx_current(const struct tls_ctx *root);

/* How many contexts t holds (tests). */
size_t tls_ctx_count(const struct tls_ctx *t);

#endif
