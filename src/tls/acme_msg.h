/* SPDX-License-Identifier: MIT */
/* ACME's JSON objects (RFC 8555 section 7.1), read from a server keel does not fully trust:
 * the directory, orders, authorizations with their challenges, and problem documents
 * (section 6.7). Parsed by core/json.c into fixed-size structs; anything too long or of the
 * wrong type is an error, never truncated. Pure; fuzzed by tests/fuzz/fuzz_acme.c. */
#ifndef KEEL_TLS_ACME_MSG_H
#define KEEL_TLS_ACME_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define ACME_URL_MAX 512
#define ACME_TOKEN_MAX 128
#define ACME_MAX_AUTHZ 16
#define ACME_MAX_CHALLENGES 8

/* The status of an order, authorization or challenge (section 7.1.6). */
enum acme_status {
    ACME_STATUS_UNKNOWN = 0, /* missing or not one of these */
    ACME_STATUS_PENDING,
    ACME_STATUS_READY,
    ACME_STATUS_PROCESSING,
    ACME_STATUS_VALID,
    ACME_STATUS_INVALID,
    ACME_STATUS_EXPIRED,
    ACME_STATUS_DEACTIVATED,
    ACME_STATUS_REVOKED
};

const char *acme_status_name(enum acme_status s);

struct acme_directory {
    char new_nonce[ACME_URL_MAX];
    char new_account[ACME_URL_MAX];
    char new_order[ACME_URL_MAX];
};

struct acme_order_msg {
    enum acme_status status;
    char authorizations[ACME_MAX_AUTHZ][ACME_URL_MAX];
    uint32_t n_authorizations;
    char finalize[ACME_URL_MAX];
    char certificate[ACME_URL_MAX]; /* "" until the order is valid */
};

struct acme_challenge_msg {
    char type[32]; /* "http-01", "tls-alpn-01", "dns-01"... */
    char url[ACME_URL_MAX];
    char token[ACME_TOKEN_MAX]; /* base64url only (checked: it goes into a path) */
    enum acme_status status;
    char error[256]; /* its error's detail (an invalid challenge), for the log; may be cut */
};

struct acme_authz_msg {
    enum acme_status status;
    char identifier[254];    /* its value */
    char identifier_type[8]; /* "dns" or "ip" */
    struct acme_challenge_msg challenges[ACME_MAX_CHALLENGES];
    uint32_t n_challenges;
};

struct acme_problem {
    char type[128];   /* "urn:ietf:params:acme:error:badNonce"... */
    char detail[256]; /* may be cut: it is for the log */
};

/* Each returns 0, or -EPROTO with eb saying what is wrong (for the log). */
int acme_parse_directory(const char *body, size_t len, struct acme_directory *out,
                         struct errbuf *eb) KEEL_MUST_CHECK;
int acme_parse_order(const char *body, size_t len, struct acme_order_msg *out,
                     struct errbuf *eb) KEEL_MUST_CHECK;
int acme_parse_authz(const char *body, size_t len, struct acme_authz_msg *out,
                     struct errbuf *eb) KEEL_MUST_CHECK;
/* A problem document; a body that is not one gives type "" and detail "". Never fails. */
void acme_parse_problem(const char *body, size_t len, struct acme_problem *out);

/* Whether s is a base64url token (RFC 8555 section 8.1: the characters of RFC 4648 section
 * 5, no padding), 1 to ACME_TOKEN_MAX - 1 bytes. */
bool acme_token_is_valid(const char *s);

#endif
