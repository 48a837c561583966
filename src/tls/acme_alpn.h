/* SPDX-License-Identifier: MIT */
/* The tls-alpn-01 responder (RFC 8737): while a challenge is under way for a name, a TLS
 * client that offers only the ALPN protocol "acme-tls/1" with that name as SNI gets a
 * self-signed certificate for the name carrying the critical acmeIdentifier extension (the
 * SHA-256 of the key authorization), and acme-tls/1 is selected; every other client is
 * served as usual. The control thread publishes the certificates (an immutable table
 * behind an atomic pointer, retired through qsbr); the handshake callbacks of every
 * frontend's contexts (tls_ctx.c) read it on the workers. IP identifiers (RFC 8738 section
 * 6) are looked up by their reverse-DNS name, which the CA sends as SNI. */
#ifndef KEEL_TLS_ACME_ALPN_H
#define KEEL_TLS_ACME_ALPN_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/types.h>

#include "core/err.h"

#define ACME_ALPN_PROTO "acme-tls/1"
#define ACME_ALPN_MAX 16 /* challenges answered at once */

/* Answer identifier (a DNS name or an IP address) with a certificate for key_authorization
 * from now on (replacing one for the same identifier). 0, or -EINVAL, -ENOSPC, -ENOMEM.
 * Control thread (a key generation and a signature). */
int acme_alpn_add(const char *identifier, const char *key_authorization) KEEL_MUST_CHECK;
/* Stop answering identifier. Control thread. */
void acme_alpn_remove(const char *identifier);
/* How many identifiers are answered (tests). */
size_t acme_alpn_count(void);

/* The SNI name a CA sends for identifier: itself, or for an IP address its reverse-DNS
 * name ("1.0.0.127.in-addr.arpa", nibbles under "ip6.arpa"). 0, or -ENOSPC. Pure. */
int acme_alpn_sni_name(const char *identifier, char *out, size_t size) KEEL_MUST_CHECK;

/* The first host name of a ClientHello's server_name extension body p[0, len) (RFC 6066
 * section 3: a list length, then type 0, a length and the name), lowercase, into
 * out[0, size). false when it is malformed, empty, holds a NUL or does not fit. Pure; the
 * bytes come from any client (fuzzed by tests/fuzz/fuzz_acme.c). */
bool acme_alpn_parse_sni(const unsigned char *p, size_t len, char *out, size_t size);

/* For tls_ctx.c's handshake callbacks (any thread, never blocking):
 * - client_hello: note whether the client offers exactly acme-tls/1 for a name being
 *   answered (SSL_CTX_set_client_hello_cb); always lets the handshake go on;
 * - cert: install that name's challenge certificate (SSL_CTX_set_cert_cb, after SNI);
 * - is_challenge: whether ALPN must select acme-tls/1 for ssl. */
int acme_alpn_on_client_hello(SSL *ssl, int *alert, void *arg);
int acme_alpn_on_cert(SSL *ssl, void *arg);
bool acme_alpn_is_challenge(const SSL *ssl);

/* The challenge certificate and key for name and key_authorization (tests, the table).
 * 0, or a negative code with eb filled. */
int acme_alpn_cert_new(const char *identifier, const char *key_authorization, X509 **cert,
                       EVP_PKEY **key, struct errbuf *eb) KEEL_MUST_CHECK;

#endif
