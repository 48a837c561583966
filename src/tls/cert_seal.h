/* SPDX-License-Identifier: MIT */
/* Sealing what keel keeps in etcd for the LB pair (private keys of managed certificates and
 * of the internal CA): AES-256-GCM under a key derived from the cluster secret (HKDF-SHA256,
 * as tls_ticket.c derives the ticket keys, with its own salt and info), with the etcd key
 * name as additional data, so that a value moved to another key, altered, or sealed under
 * another secret is refused. Pure: no I/O but the secret file read by cert_seal_key_load. */
#ifndef KEEL_TLS_CERT_SEAL_H
#define KEEL_TLS_CERT_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define CERT_SEAL_KEY_LEN 32   /* AES-256 */
#define CERT_SEAL_MAGIC "KSv1" /* 4 bytes: the format's version */
#define CERT_SEAL_MAGIC_LEN 4
#define CERT_SEAL_NONCE_LEN 12 /* GCM's 96-bit IV, random per sealing */
#define CERT_SEAL_TAG_LEN 16
#define CERT_SEAL_OVERHEAD (CERT_SEAL_MAGIC_LEN + CERT_SEAL_NONCE_LEN + CERT_SEAL_TAG_LEN)

/* The sealing key of a cluster secret secret[0, len) (len >= 1). 0, or -ENOMEM when
 * OpenSSL cannot derive it. The caller wipes key after use. */
int cert_seal_key_derive(const uint8_t *secret, size_t len,
                         uint8_t key[CERT_SEAL_KEY_LEN]) KEEL_MUST_CHECK;

/* Read secret_file (core/secret.c: mode 0600, not empty) and derive its sealing key. 0, or a
 * negative code with eb filled. Blocking (a small file): load time only. */
int cert_seal_key_load(const char *secret_file, uint8_t key[CERT_SEAL_KEY_LEN],
                       struct errbuf *eb) KEEL_MUST_CHECK;

/* Seal plain[0, len) bound to label (the etcd key; NUL-terminated): returns a malloc'd
 * MAGIC | nonce | ciphertext | tag of len + CERT_SEAL_OVERHEAD bytes (*out_len), which the
 * caller frees, or NULL when out of memory or OpenSSL fails. */
uint8_t *cert_seal(const uint8_t key[CERT_SEAL_KEY_LEN], const char *label, const void *plain,
                   size_t len, size_t *out_len);

/* Open what cert_seal made for label: returns the malloc'd plain text (*out_len bytes, and
 * a NUL after them, not counted), which the caller wipes and frees, or NULL with eb filled:
 * not a sealed value (too short, another magic), or it does not authenticate (another
 * secret, another label, altered bytes), or out of memory. */
uint8_t *cert_unseal(const uint8_t key[CERT_SEAL_KEY_LEN], const char *label, const void *sealed,
                     size_t len, size_t *out_len, struct errbuf *eb);

#endif
