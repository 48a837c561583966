/* SPDX-License-Identifier: MIT */
/* The internal issuer (`acme internal`, like Caddy's `tls internal`): a local CA, an ECDSA
 * P-256 key and a self-signed certificate kept in STATE_DIR/tls/ca, created on first use,
 * that signs short-lived leaf certificates for the names a frontend lists. Clients trust
 * it by its file (ca.pem). CPU-bound (a key generation, a signature) and blocking file I/O
 * on small files; no network. */
#ifndef KEEL_TLS_TLS_ISSUER_H
#define KEEL_TLS_TLS_ISSUER_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "tls/cert_store.h"

#define TLS_CA_CERT "ca.pem"
#define TLS_CA_KEY "ca.key"
#define TLS_CA_LIFETIME_S (10L * 365 * 24 * 3600) /* the CA's own validity: 10 years */

struct tls_ca {
    struct tls_cert cert; /* the CA certificate (no chain) and its key */
    char cert_path[4096]; /* ca_dir/ca.pem: what clients must trust */
};

/* Load the CA of ca_dir, or create it there (mkdir, key 0600, certificate 0644) when it has
 * none; *created says which. 0, or a negative code with eb filled (a CA that exists but
 * cannot be used is an error, never replaced: clients trust it). */
int tls_ca_open(const char *ca_dir, time_t now, struct tls_ca *ca, bool *created,
                struct errbuf *eb) KEEL_MUST_CHECK;
void tls_ca_fini(struct tls_ca *ca);

/* A new leaf for names[0, n) (DNS names, or IP addresses as text; n >= 1; the first is also
 * the subject's CN when it fits), with a new ECDSA P-256 key and a random 128-bit serial,
 * valid from now (minus 5 minutes of clock skew when lifetime_s is an hour or more) to now +
 * lifetime_s, signed by ca (SHA-256); no chain (the CA is a root). Fills out (owned by the
 * caller). */
int tls_ca_issue(const struct tls_ca *ca, const char (*names)[254], uint32_t n, uint32_t lifetime_s,
                 time_t now, struct tls_cert *out, struct errbuf *eb) KEEL_MUST_CHECK;

/* A self-signed placeholder for names[0, n) (new P-256 key), valid from now for
 * lifetime_s: what a frontend serves while its first ACME certificate is ordered, so that
 * its tls binds can start (clients do not trust it). */
int tls_selfsigned_issue(const char (*names)[254], uint32_t n, uint32_t lifetime_s, time_t now,
                         struct tls_cert *out, struct errbuf *eb) KEEL_MUST_CHECK;

/* Whether x is self-signed (its issuer is its subject): an ACME frontend's placeholder. */
bool tls_cert_is_self_signed(const X509 *x);

#endif
