/* SPDX-License-Identifier: MIT */
/* An asynchronous HTTP/1.1 client for the control thread: one request (with a body or
 * without) to one numeric address, one connection per request ("Connection: close"), driven by
 * keel's event loop. It never blocks: a non-blocking connect, sends and receives on ev_io
 * readiness, and one ev_timer for two absolute deadlines (connect, whole exchange). The response
 * head is parsed by http/http_parse.c, chunked bodies are decoded by http/http_chunked.c, and the
 * body is bounded. Every byte goes through a transport (http/http_transport.h: plain TCP
 * unless the request names another), opened on the connecting socket, brought up by its
 * handshake before the request is sent. It knows nothing of etcd or checks: they build on it.
 * No TLS code of its own, no DNS, no keep-alive, no redirects. Its users: health checks
 * (lb/lb_check.c, app/app_check.c), etcd (db/etcd.c) and the command line's blocking GET
 * (cli/cli_http.c, for keel status and keel up). See docs/internals/http_client.md. */
#ifndef KEEL_HTTP_HTTP_CLIENT_H
#define KEEL_HTTP_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/err.h"

struct ev_loop;
struct http_client; /* one exchange in flight; opaque */
struct http_xprt_conf;

/* Largest response head (status line and headers); a larger one fails with -EPROTO. */
#define HTTP_CLIENT_MAX_HEAD 16384u

/* What to send, and its bounds. Every pointer is borrowed: the strings only during
 * http_client_start (they are copied into the request head), body until the exchange ends (the
 * callback runs or http_client_cancel returns). */
struct http_client_request {
    const struct sockaddr *addr; /* numeric address of the server */
    socklen_t addrlen;
    const char *method;       /* "POST" */
    const char *host;         /* value of the Host header, e.g. "127.0.0.1:2379" */
    const char *path;         /* origin-form target, e.g. "/v3/kv/range" */
    const char *content_type; /* NULL for none */
    const void *body;         /* may be NULL when body_len is 0 */
    size_t body_len;
    uint64_t connect_deadline_ms; /* loop clock (ev_now_ms): connected by then, else fail */
    uint64_t deadline_ms;         /* loop clock: the whole exchange done by then */
    size_t max_body;              /* decoded body bytes accepted; more fails with -EMSGSIZE */
    const char *user_agent;       /* the User-Agent header; NULL: "keel" */
    /* Only the status matters (health checks): the body is read and dropped, not stored,
     * until it ends, the server closes or resets, HTTP_CLIENT_DRAIN_MAX bytes or the
     * deadline, and each of these completes the exchange with the status (reading the rest
     * before closing keeps the close from resetting a server still writing). max_body is
     * not used. */
    bool is_status_only;
    /* The transport (ops and per-peer settings; TLS later: the CA and name to verify).
     * NULL: plain TCP. Borrowed until the exchange ends. Its handshake runs after the
     * connect, within connect_deadline_ms. */
    const struct http_xprt_conf *xprt;
    /* Keep the final response head (status line and header fields, as received) for the
     * callback: resp->head (ACME reads Replay-Nonce, Location and Retry-After). */
    bool is_head_kept;
};

/* Body bytes an is_status_only exchange reads and drops at most. */
#define HTTP_CLIENT_DRAIN_MAX 65536u

/* The outcome of an exchange, valid during the callback only. */
struct http_client_response {
    int err; /* 0: a complete response; else -errno: -ECONNREFUSED..., -ETIMEDOUT,
              * -ECONNRESET (closed before the response was complete), -EPROTO (not a valid
              * HTTP response), -EMSGSIZE (body over max_body), -ENOMEM */
    /* err happened while connecting or in the transport's handshake: no byte of the
     * request can have reached the server, so the caller may send it elsewhere. After
     * that, a failure is ambiguous: the server may have acted on the request. */
    bool is_connect_failure;
    int status;       /* final HTTP status (101 or 200..599) when err is 0 */
    const char *body; /* decoded body, NUL-terminated (NUL not counted), when err is 0
                       * ("" for is_status_only) */
    size_t body_len;
    char why[160];    /* when err is not 0: what failed, for logs ("connect() failed: ...") */
    const char *head; /* is_head_kept and err is 0: the response head as received, NUL-
                       * terminated (head_len bytes); else NULL */
    size_t head_len;
};

/* The value of the first header field called name (any case) in head[0, len) (a response
 * head as http_client_response.head holds it), without surrounding whitespace, into
 * out[0, size) NUL-terminated. Returns its length, or -ENOENT (absent), -ENOSPC (longer than
 * size - 1). Pure. */
int http_client_header(const char *head, size_t len, const char *name, char *out,
                       size_t size) KEEL_MUST_CHECK;

/* Called once per started exchange, from the loop (never from http_client_start), unless the
 * exchange was cancelled. The handle is dead when it is called. */
typedef void (*http_client_done_fn)(void *data, const struct http_client_response *resp);

/* Start an exchange on loop: connect to req->addr, send the head (with a Content-Length
 * when body is not NULL) and body, read the response. Interim (1xx) responses are skipped,
 * except 101, which is final. On success returns 0, sets *out to a handle (valid until the callback
 * starts or http_client_cancel) and on_done will run exactly once. On failure returns a negative
 * code and does not call on_done: -EINVAL (a method, host or path with control characters or
 * spaces, or too long), -ENOMEM, or -errno from socket(), connect() or epoll (e.g.
 * -ENETUNREACH: the connect failed at once; like is_connect_failure, nothing was sent).
 * Deadlines in the past time out at the next iteration. Never blocks. */
int http_client_start(struct ev_loop *loop, const struct http_client_request *req,
                      http_client_done_fn on_done, void *data,
                      struct http_client **out) KEEL_MUST_CHECK;

/* Abort an exchange: closes the connection; on_done is not called. NULL is fine. Must not be
 * called from within that exchange's own callback (the handle is dead by then). */
void http_client_cancel(struct http_client *h);

#endif
