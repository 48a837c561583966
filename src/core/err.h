/* SPDX-License-Identifier: MIT */
/* keel's error codes: negative errno values for system errors, -KEEL_E* for keel's own,
 * and struct errbuf for human-readable reasons filled by callees. */
#ifndef KEEL_CORE_ERR_H
#define KEEL_CORE_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* keel's own error codes live above the errno range. Functions return -KEEL_E*. */
enum keel_err {
    KEEL_EBASE = 10000,
    KEEL_ECONFIG,               /* invalid configuration */
    KEEL_EHTTP_BAD_REQUEST,     /* malformed HTTP message: 400 */
    KEEL_EHTTP_URI_TOO_LONG,    /* request line over the limit: 414 */
    KEEL_EHTTP_HEAD_TOO_LARGE,  /* header section over the limit: 431 */
    KEEL_EHTTP_VERSION,         /* unsupported HTTP version: 505 */
    KEEL_EHTTP_NOT_IMPLEMENTED, /* unsupported transfer coding: 501 */
    KEEL_EHTTP_BAD_RESPONSE,    /* malformed response from a server: 502 */
    KEEL_ENOSERVER,             /* no server available: 503 */
    KEEL_EQUEUE_FULL,           /* backend queue is full: 503 */
    KEEL_ETIMEDOUT,             /* a keel timer expired */
    KEEL_EETCD,                 /* etcd answered with an error (see the result's message) */
    KEEL_ETLS,                  /* the TLS peer failed the protocol (alert, bad record) */
    KEEL_ETLS_PLAIN_HTTP,       /* plain HTTP sent to a TLS port (answered 400 in clear) */
    KEEL_ELAST
};

/* Name ("KEEL_EHTTP_BAD_REQUEST", "ECONNREFUSED") and message for any error code (negative). */
const char *err_name(int code);
const char *err_str(int code);

#define ERRBUF_LEN 512

/* A caller-supplied buffer for a human-readable reason. */
struct errbuf {
    char msg[ERRBUF_LEN];
};

/* Format a reason into eb (NULL is allowed and ignored). */
void errbuf_set(struct errbuf *eb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define KEEL_MUST_CHECK __attribute__((warn_unused_result))

/* Exit codes of the keel binary. */
enum keel_exit {
    KEEL_EXIT_OK = 0,
    KEEL_EXIT_CONFIG = 1,
    KEEL_EXIT_USAGE = 2,
    KEEL_EXIT_RUNTIME = 3
};

#endif
