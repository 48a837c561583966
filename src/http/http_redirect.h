/* SPDX-License-Identifier: MIT */
/* The redirect from plain HTTP to HTTPS (redirect_https): the Location of a request, built
 * from its Host and target with the Host checked (no header injection), and the status.
 * Pure functions; http_local.c sends the answer. */
#ifndef KEEL_HTTP_HTTP_REDIRECT_H
#define KEEL_HTTP_HTTP_REDIRECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http_parse.h"

/* The prefix of ACME's http-01 challenges (RFC 8555 section 8.3): requests under it stay on
 * plain HTTP, since the CA asks over port 80 and follows no redirect to a certificate it
 * is about to issue. */
#define HTTP_ACME_CHALLENGE_PREFIX "/.well-known/acme-challenge/"

/* 301 for GET and HEAD (what every client and cache knows), 308 for the other methods:
 * a 301 lets a client turn a POST into a GET and lose its body (RFC 9110 15.4.2), a 308
 * must repeat the same method and body (RFC 9110 15.4.9). */
int http_redirect_status(enum http_method method);

/* Whether target[0, len) (the request target as sent) is an ACME http-01 challenge. */
bool http_redirect_is_acme(const char *target, size_t len);

/* Write "https://HOST[:PORT]PATH?QUERY" into out[0, cap) with its NUL: host[0, host_len) is
 * the Host header's value (its port, if any, is dropped), port the HTTPS port (omitted when
 * 443), target[0, target_len) the request target: an origin-form target is kept as is, an
 * absolute-form one loses its scheme and authority, anything else ("*") becomes "/". Bytes
 * outside visible ASCII are percent-encoded. Returns the length, -EINVAL when the host is
 * not a DNS name, an IPv4 address or a bracketed IPv6 address (a request to answer with
 * 400), or -ENOSPC. cap >= host_len + 3 * target_len + 16 always suffices. */
int http_redirect_location(const char *host, size_t host_len, uint16_t port, const char *target,
                           size_t target_len, char *out, size_t cap);

#endif
