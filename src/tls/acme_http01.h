/* SPDX-License-Identifier: MIT */
/* The http-01 responder (RFC 8555 section 8.3): the key authorizations of the challenges
 * under way, by token, answered at GET /.well-known/acme-challenge/TOKEN on the plain-HTTP
 * binds of every frontend and site, before routing and before any redirect to HTTPS. The
 * control thread publishes an immutable table (an atomic pointer, the old one retired
 * through qsbr); workers look it up without locks. */
#ifndef KEEL_TLS_ACME_HTTP01_H
#define KEEL_TLS_ACME_HTTP01_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define ACME_HTTP01_PREFIX "/.well-known/acme-challenge/"
#define ACME_HTTP01_MAX 64   /* challenges answered at once */
#define ACME_KEYAUTH_MAX 192 /* a token (< 128) '.' a thumbprint (43), and the NUL */

/* Answer token with key_authorization from now on (replacing an answer for the same token).
 * 0, or -EINVAL (a token that is not base64url, a key authorization too long), -ENOSPC
 * (ACME_HTTP01_MAX answers already), -ENOMEM. Control thread. */
int acme_http01_add(const char *token, const char *key_authorization) KEEL_MUST_CHECK;

/* Stop answering token (absent: nothing). Control thread. */
void acme_http01_remove(const char *token);

/* The key authorization for the request target target[0, len) when it is
 * ACME_HTTP01_PREFIX followed by a token being answered, copied into out[0, size). Any
 * thread (workers, within one loop iteration); never blocks. */
bool acme_http01_lookup(const char *target, size_t len, char *out, size_t size);

/* How many tokens are answered (tests). */
size_t acme_http01_count(void);

#endif
