/* SPDX-License-Identifier: MIT */
/* Certificates and keys on disk, for the certificates keel manages itself: PEM files written
 * atomically (a temporary file in the same directory, fsync, rename, fsync of the directory),
 * keys with mode 0600, and read back with the checks a served certificate needs (the key
 * matches, every certificate of the file is valid now). Blocking file I/O: at load time, and
 * on the control thread when a renewed certificate is stored (a few KiB). */
#ifndef KEEL_TLS_CERT_STORE_H
#define KEEL_TLS_CERT_STORE_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/types.h>

#include "core/err.h"

/* A certificate with its chain and its key, in memory. Owned: tls_cert_fini releases it. */
struct tls_cert {
    X509 *leaf;
    STACK_OF(X509) * chain; /* the certificates after the leaf (may be NULL: none) */
    EVP_PKEY *key;
};

void tls_cert_fini(struct tls_cert *c);

/* The file names in a managed certificate's directory. */
#define CERT_STORE_CERT "cert.pem"
#define CERT_STORE_KEY "key.pem"

/* Create dir and its missing parents with mode 0700 (existing ones are left as they are).
 * 0, or -errno with eb filled. */
int cert_store_mkdirs(const char *dir, struct errbuf *eb) KEEL_MUST_CHECK;

/* Replace path by data[0, len) atomically, with mode: readers see the old file or the new
 * one, never a part, and after a crash one of them. 0, or -errno with eb filled (the old
 * file is then untouched). */
int cert_store_write(const char *path, const void *data, size_t len, mode_t mode,
                     struct errbuf *eb) KEEL_MUST_CHECK;

/* Store c in dir as key.pem (0600) then cert.pem (leaf then chain, 0644). A crash between
 * the two leaves a key that does not match: tls_cert_read refuses that pair, and the
 * certificate is issued again. 0, or -errno / -ENOMEM with eb filled. */
int tls_cert_store(const char *dir, const struct tls_cert *c, struct errbuf *eb) KEEL_MUST_CHECK;

/* Read dir's pair into c: -ENOENT when either file is missing, -KEEL_ECONFIG with eb filled
 * when it cannot serve at now (not PEM, a key that does not match, a certificate of the
 * file expired or not valid yet), 0 otherwise (c then owns what it holds). */
int tls_cert_read(const char *dir, time_t now, struct tls_cert *c,
                  struct errbuf *eb) KEEL_MUST_CHECK;

/* The validity of x as Unix times. 0, or -EINVAL when a time cannot be converted. */
int tls_cert_times(const X509 *x, time_t *not_before, time_t *not_after) KEEL_MUST_CHECK;

/* The serial number of x in hex ("" on failure), into out[0, size). */
void tls_cert_serial(const X509 *x, char *out, size_t size);

#endif
