/* SPDX-License-Identifier: MIT */
/* One ACME order (RFC 8555 section 7.4) on the control thread's loop, as an explicit state
 * machine over the asynchronous HTTP client with the TLS client: the directory, a nonce
 * (and a retry on badNonce), the account (newAccount with the key's jwk: it finds the
 * account that key already has), the order, each authorization with its http-01 challenge
 * (the key authorization published to the responder, acme_http01.h), polling with
 * Retry-After, finalize with a CSR for a new P-256 key, polling the order, and the download
 * of the chain. Only URLs on the directory's host and port are followed. Never blocks; a
 * key generation and a signature per request are the CPU it takes. */
#ifndef KEEL_TLS_ACME_ORDER_H
#define KEEL_TLS_ACME_ORDER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/types.h>

#include "core/err.h"
#include "tls/cert_store.h"

struct ev_loop;
struct tls_client;
struct acme_order;

/* The states of an order (each waits for one HTTP exchange, or a poll timer). */
enum acme_order_state {
    ACME_ORDER_DIRECTORY = 0, /* GET the directory (section 7.1.1) */
    ACME_ORDER_NONCE,         /* HEAD newNonce (section 7.2) */
    ACME_ORDER_ACCOUNT,       /* POST newAccount with the jwk (section 7.3) */
    ACME_ORDER_NEW_ORDER,     /* POST newOrder (section 7.4) */
    ACME_ORDER_AUTHZ,         /* POST-as-GET an authorization (section 7.5) */
    ACME_ORDER_CHALLENGE,     /* POST {} to its challenge: ready to be validated (7.5.1) */
    ACME_ORDER_POLL_AUTHZ,    /* POST-as-GET the authorization until valid or invalid */
    ACME_ORDER_FINALIZE,      /* POST the CSR to finalize (section 7.4) */
    ACME_ORDER_POLL_ORDER,    /* POST-as-GET the order until valid */
    ACME_ORDER_DOWNLOAD,      /* POST-as-GET the certificate chain (section 7.4.2) */
    ACME_ORDER_DONE,          /* final: on_done ran */
    ACME_ORDER_STATE_COUNT
};

const char *acme_order_state_name(enum acme_order_state s);
bool acme_order_state_is_legal(enum acme_order_state from, enum acme_order_state to);

/* Told when the order starts answering a challenge (key_authorization set) and when it
 * stops (NULL): name is the http-01 token, or the tls-alpn-01 identifier. Across the LB
 * pair (cert_pair.h) the answers go to etcd, for the node the ACME server reaches. */
typedef void (*acme_answer_fn)(void *data, bool is_tls_alpn, const char *name,
                               const char *key_authorization);

/* What an order needs; every pointer borrowed for the order's life. */
struct acme_order_conf {
    const char *directory_url;   /* "https://host[:port]/path" */
    const struct sockaddr *addr; /* the directory host's address (resolved at load time) */
    socklen_t addrlen;
    struct tls_client *tls; /* verifies the directory's certificate */
    EVP_PKEY *account_key;  /* ECDSA P-256 */
    const char *email;      /* "" or NULL: no contact */
    const char (*names)[254];
    uint32_t n_names;
    const char *log_ctx;      /* "cert www" */
    bool is_tls_alpn;         /* answer tls-alpn-01 (RFC 8737) rather than http-01 */
    uint64_t timeout_ms;      /* the whole order, from its start */
    acme_answer_fn on_answer; /* NULL: none */
    void *answer_data;
    uint32_t answer_delay_ms; /* between publishing an answer and asking the server to
                               * validate it (the other nodes read it meanwhile); 0: none */
};

/* The outcome: rc 0 and cert (the caller takes its contents: leaf, chain, the new key), or
 * rc < 0 and why. */
typedef void (*acme_order_done_fn)(void *data, int rc, struct tls_cert *cert, const char *why);

/* Start an order; on_done runs once, from the loop (never from this call), unless the order
 * is cancelled. NULL on OOM. */
struct acme_order *acme_order_start(struct ev_loop *loop, const struct acme_order_conf *conf,
                                    acme_order_done_fn on_done, void *data);

/* Stop an order under way (its exchange, its timer, its published challenge answers)
 * without calling on_done. NULL allowed. Not from its own on_done. */
void acme_order_cancel(struct acme_order *o);

/* Split "https://host[:port]/path" into host (an IPv6 literal without brackets), port
 * (default 443) and path ("/" when none). 0, or -EINVAL for anything else (another
 * scheme, userinfo, a fragment, over the sizes). Pure. */
int acme_url_split(const char *url, char *host, size_t host_size, uint16_t *port, char *path,
                   size_t path_size) KEEL_MUST_CHECK;

#endif
