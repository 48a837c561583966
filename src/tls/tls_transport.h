/* SPDX-License-Identifier: MIT */
/* The TLS transport: both sides of TLS 1.2/1.3 over a non-blocking socket, behind the
 * transport seam (http/http_transport.h), so that the proxy, static files and keel's own
 * responses run over it unchanged. A listener chooses it with
 * struct http_xprt_conf {&tls_xprt_ops, a struct tls_ctx (tls_ctx.h)}, a client (a backend
 * server's connections, the checks) with {&tls_xprt_ops, a struct tls_client}. How OpenSSL's
 * WANT_READ/WANT_WRITE map to the seam's readiness contract, what an idle connection costs
 * and how plain HTTP is answered: docs/internals/transport.md. */
#ifndef KEEL_TLS_TLS_TRANSPORT_H
#define KEEL_TLS_TLS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "http/http_transport-t.h"

/* open's conf_data is a struct tls_ctx (tls_ctx.h) on the accepted side (keel plays the
 * TLS server) and a struct tls_client (tls_client.h) on the connecting side (keel plays the
 * client: SNI, the peer's certificate verified, a session resumed); borrowed: it must
 * outlive every connection opened on it. A client's handshake that fails on the peer's
 * certificate says why in http_xprt_info.error ("certificate verify failed: hostname
 * mismatch"). */
extern const struct http_xprt_ops tls_xprt_ops;

/* The settings the transport relies on, for every SSL_CTX it runs on (server and client):
 * no renegotiation (a peer-driven CPU cost and a write that would need a read), no
 * compression (CRIME), and a peer that closes without close_notify is an ordinary EOF (HTTP
 * messages carry their own length, as browsers and curl assume); an idle connection gives
 * its record buffers back (about 34 KiB); a write may return after one record and a retried
 * write may come from a buffer that moved (the connection's buffers are compacted); whole
 * records (and what follows) are read in one recv. */
void tls_transport_ctx_setup(SSL_CTX *ctx);

/* The largest plaintext of one TLS record (RFC 8446 section 5.1): writes are cut and
 * gathered to it. */
#define TLS_RECORD_MAX 16384

/* Whether the first bytes a client sent, p[0, len) (len >= 1), are plain HTTP rather than
 * TLS: a request line starts with an upper-case ASCII method, a TLS record with its content
 * type (20-24) and an SSLv2 hello with a byte >= 0x80. Pure; the fuzz target checks it too. */
bool tls_sniff_is_plain_http(const uint8_t *p, size_t len);

#endif
