/* SPDX-License-Identifier: MIT */
/* Serializing message heads for the other side of the proxy: the request head sent to a
 * server (hop-by-hop headers removed, X-Forwarded-* added) and the response head sent to a
 * client. Pure functions over a parsed struct http_msg. */
#ifndef KEEL_HTTP_HTTP_REWRITE_H
#define KEEL_HTTP_HTTP_REWRITE_H

#include <stdbool.h>

#include "core/buf.h"
#include "http/http_parse.h"

struct http_rewrite_req {
    const char *client_ip; /* appended to X-Forwarded-For */
    const char *proto;     /* X-Forwarded-Proto: "http" or "https" */
    const char *served_by; /* a web node's name: replaces any X-Served-By; NULL or "": none */
    bool is_upgrade;       /* a protocol upgrade keel will tunnel (http_tunnel_requested): keep
                            * Upgrade and send Connection: upgrade */
};

/* Write the request head for a server into out (HTTP/1.1, hop-by-hop headers and every
 * header named in Connection removed, except the framing headers Host, Content-Length and
 * Transfer-Encoding and the headers keel writes, X-Forwarded-For/-Proto/-Host and
 * X-Served-By, which are never removed; spellings of those with '_' are dropped; Upgrade is
 * kept when opt->is_upgrade). Returns 0, -ENOSPC when out is too small (out is then left as
 * it was), or -KEEL_EHTTP_BAD_REQUEST when Connection names more headers than keel can remove
 * (16): answer 400. */
int http_rewrite_request(const struct http_msg *req, const char *buf,
                         const struct http_rewrite_req *opt, struct buf *out) KEEL_MUST_CHECK;

struct http_rewrite_res {
    bool is_close;         /* add Connection: close */
    bool is_keepalive_10;  /* HTTP/1.0 client keeping the connection: Connection: keep-alive */
    bool drop_framing;     /* remove Transfer-Encoding and Content-Length (body is de-chunked and
                            * delimited by close for an HTTP/1.0 client) */
    const char *served_by; /* a web node's name: replaces any X-Served-By; NULL or "": none */
    bool is_upgrade;       /* a 101 that starts a tunnel: keep Upgrade, send Connection: upgrade
                            * (is_close and is_keepalive_10 are then ignored) */
    const char *hsts;      /* a Strict-Transport-Security line (with CRLF) that replaces the
                            * server's; NULL or "": the server's is kept */
};

/* Write the response head for a client into out. Same rules and returns as above, with
 * -KEEL_EHTTP_BAD_RESPONSE (502) for a Connection header naming too many headers. */
int http_rewrite_response(const struct http_msg *res, const char *buf,
                          const struct http_rewrite_res *opt, struct buf *out) KEEL_MUST_CHECK;

/* Whether a header name is hop-by-hop (RFC 9110 section 7.6.1). */
bool http_is_hop_by_hop(const char *name, size_t len);

#endif
