/* SPDX-License-Identifier: MIT */
/* The cryptography of ACME (RFC 8555) requests, pure and synchronous: base64url, the
 * account key's JWK and thumbprint (RFC 7638), JWS in flattened JSON with ES256 (RFC 7515,
 * RFC 7518 section 3.4: the raw 64-byte r||s, not DER), key authorizations (RFC 8555 section
 * 8.1), the tls-alpn-01 digest (RFC 8737 section 3) and the CSR of an order's finalize
 * (section 7.4). Keys are ECDSA P-256. No I/O (acme_order.c sends what this builds). */
#ifndef KEEL_TLS_ACME_JWS_H
#define KEEL_TLS_ACME_JWS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "core/err.h"

/* base64url without padding (RFC 7515 section 2) of in[0, n), malloc'd and NUL-terminated;
 * NULL on OOM. */
char *acme_b64url(const void *in, size_t n);

/* The public JWK of an EC P-256 key, its members in lexicographic order and without
 * whitespace, which is also the input of its thumbprint: {"crv":"P-256","kty":"EC",
 * "x":"...","y":"..."}. Into out[0, size). 0, or -EINVAL (not a P-256 key) / -ENOSPC. */
int acme_jwk(EVP_PKEY *key, char *out, size_t size) KEEL_MUST_CHECK;

/* base64url(SHA-256(JWK)) (RFC 7638): 43 characters and a NUL into out[44]. */
int acme_thumbprint(EVP_PKEY *key, char out[44]) KEEL_MUST_CHECK;

/* The key authorization token || '.' || thumbprint (RFC 8555 section 8.1), malloc'd; NULL
 * on OOM. */
char *acme_key_authorization(const char *token, const char *thumbprint);

/* A JWS (flattened JSON serialization) signed with key (ES256) over payload (NULL: the empty
 * payload of a POST-as-GET, RFC 8555 section 6.3), whose protected header carries alg, the
 * account's kid (a URL) or, when kid is NULL, the key's jwk (newAccount), nonce and url.
 * malloc'd (*len bytes, NUL-terminated); NULL on OOM or a key that cannot sign. */
char *acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
               const char *payload, size_t *len);

/* A PKCS#10 request for names[0, n) (DNS names or IP addresses; SAN entries, the first
 * also the CN when it fits) signed with key, as base64url DER (the `csr` of a finalize).
 * malloc'd; NULL with eb filled. */
char *acme_csr(EVP_PKEY *key, const char (*names)[254], uint32_t n, struct errbuf *eb);

/* SHA-256 of the key authorization: the value of the acmeIdentifier extension of a
 * tls-alpn-01 certificate (RFC 8737 section 3). */
void acme_alpn_digest(const char *key_authorization, uint8_t out[32]);

/* A new ECDSA P-256 key; NULL on failure. */
EVP_PKEY *acme_key_new(void);

#endif
