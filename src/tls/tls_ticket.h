/* SPDX-License-Identifier: MIT */
/* TLS session ticket keys (RFC 5077 for TLS 1.2, the PSK tickets of RFC 8446 section 4.6.1
 * for TLS 1.3): derived with HKDF (RFC 5869) from the cluster secret, the frontend's name
 * and the number of the time window, so that every worker of a process and every LB node of
 * the cluster encrypt and accept the same tickets, and a VRRP takeover resumes sessions
 * rather than forcing full handshakes. Without a cluster secret the keys come from a random
 * secret made once per process (shared by its workers and kept across reloads, not shared
 * with other nodes). Tickets are encrypted with the current window's key; the previous and
 * the next window's keys are accepted too (the next for clock skew between nodes), and a
 * ticket made with one of them is renewed. The OpenSSL callback lives here; tls_ctx.c
 * installs it on every context of a frontend. Design: docs/internals/transport.md. */
#ifndef KEEL_TLS_TLS_TICKET_H
#define KEEL_TLS_TLS_TICKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "core/err.h"

#define TLS_TICKET_NAME_LEN 16 /* the key name OpenSSL puts in front of each ticket */
#define TLS_TICKET_AES_LEN 32  /* AES-256-CBC, as OpenSSL's own ticket keys */
#define TLS_TICKET_HMAC_LEN 32 /* HMAC-SHA256 over the encrypted ticket */
#define TLS_TICKET_PRK_LEN 32  /* HKDF-SHA256's pseudorandom key */

/* tls_ticket_period's default and bounds, in ms: a window of one hour; a ticket lives one
 * window (the session timeout) and is accepted until the end of the next one. */
#define TLS_TICKET_PERIOD_DEFAULT_MS (3600u * 1000u)
#define TLS_TICKET_PERIOD_MIN_MS 1000u
#define TLS_TICKET_PERIOD_MAX_MS (7u * 24u * 3600u * 1000u) /* RFC 8446 4.6.1: 7 days */

/* The key of one window. The name is HKDF output like the rest: it says nothing about the
 * secret, nor (to an observer) which window made it. */
struct tls_ticket_key {
    uint8_t name[TLS_TICKET_NAME_LEN];
    uint8_t aes[TLS_TICKET_AES_LEN];
    uint8_t hmac[TLS_TICKET_HMAC_LEN];
};

/* HKDF-Extract (RFC 5869 section 2.2) of secret[0, len) with keel's ticket salt into prk.
 * 0, or -ENOMEM (OpenSSL failed). Pure. */
int tls_ticket_prk(const uint8_t *secret, size_t len,
                   uint8_t prk[TLS_TICKET_PRK_LEN]) KEEL_MUST_CHECK;

/* HKDF-Expand of prk for the frontend label and window into *out: the same inputs give the
 * same key on every node; another prk, label or window gives another. 0, or -ENOMEM. Pure;
 * the caller wipes *out (OPENSSL_cleanse) when done. */
int tls_ticket_key_derive(const uint8_t prk[TLS_TICKET_PRK_LEN], const char *label, uint64_t window,
                          struct tls_ticket_key *out) KEEL_MUST_CHECK;

/* The window of a wall-clock time: now_ms / period_ms (period_ms > 0). */
static inline uint64_t tls_ticket_window(uint64_t now_ms, uint32_t period_ms)
{
    return now_ms / period_ms;
}

struct tls_tickets;

/* The ticket keys of one frontend, labelled with its name: from secret_file (read here,
 * blocking: load time only; wiped once the pseudorandom key is extracted) or, when
 * secret_file is NULL or "", from this process's random secret. period_ms 0 means the
 * default. NULL with eb filled when the secret cannot be read, or on OOM. Immutable once
 * made: every worker's handshakes read it at once. */
struct tls_tickets *tls_tickets_new(const char *secret_file, const char *label, uint32_t period_ms,
                                    struct errbuf *eb);

/* Free t (NULL allowed), its key material wiped first. Only once no context that
 * tls_tickets_install set up can start a handshake (the lb frees it with its generation). */
void tls_tickets_free(struct tls_tickets *t);

/* Set ctx up for t's tickets (t borrowed; it must outlive ctx's handshakes): the key
 * callback, a session timeout of one period, and no server-side cache. With t NULL,
 * tickets are off: no ticket is sent and none is accepted (no resumption). 0, or
 * -KEEL_ECONFIG with eb filled. */
int tls_tickets_install(struct tls_tickets *t, SSL_CTX *ctx, struct errbuf *eb) KEEL_MUST_CHECK;

/* Whether t's keys come from the cluster secret (shared with the other nodes). */
bool tls_tickets_is_shared(const struct tls_tickets *t);

#endif
