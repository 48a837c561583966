/* SPDX-License-Identifier: MIT */
/* The embedded HTTP/1.1 server: one listener on one event loop, a route table
 * {methods, path or prefix, body policy, handler}, requests parsed by http/http_parse.c,
 * keep-alive and pipelining (or one request per connection), connection caps with eviction,
 * timeouts for the head, the response and a lingering close, and response writing helpers.
 * It serves keel's own small endpoints: the admin listener (monitor/admin.c, which the db
 * agent's endpoints also go through), the demo application and the test backend
 * (src/demo/). It is not the data path: the proxy (http/http_proxy.c) has its own
 * connections. Never blocks. See docs/internals/http_server.md. */
#ifndef KEEL_HTTP_HTTP_SERVER_H
#define KEEL_HTTP_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/err.h"
#include "http/http_parse.h"

struct ev_loop;
struct http_server;
struct http_xprt_conf;
struct http_server_req;

/* What the server does with a request body, per route. */
enum http_server_body {
    HTTP_SERVER_BODY_REFUSE = 0, /* not read: the request is answered, then the connection
                                  * closes if a body was announced */
    HTTP_SERVER_BODY_BUFFER,     /* buffered whole (Content-Length up to max_body) and given
                                  * to the handler; chunked gets 411, larger gets 413 */
    HTTP_SERVER_BODY_DISCARD     /* any framing and size: read, counted and dropped */
};

/* A route's handler: answer req with http_server_respond (now, or later from the loop:
 * the connection's pipeline waits meanwhile and nothing more is read). data is the
 * server's conf.data. */
typedef void (*http_server_handler_fn)(struct http_server_req *req, void *data);

/* Called when a request head has been parsed, before its body is read (for a request
 * log). May be NULL. */
typedef void (*http_server_head_fn)(const struct http_server_req *req, void *data);

/* Called when the connection of a request still waiting for its answer closes: whatever
 * the handler started must stop, and req is dead after this call. */
typedef void (*http_server_abort_fn)(void *data);

/* Methods of a route: a mask of HTTP_ROUTE_METHOD(HTTP_METHOD_GET) | ...; 0 takes any. */
#define HTTP_ROUTE_METHOD(m) (1u << (unsigned)(m))

/* One entry of the route table. Exact routes are looked at first: the one matching path
 * and method serves the request; when some match the path but none the method, the server
 * answers 405 with Allow. Then the first prefix route matching path and method serves it
 * (405 again when prefixes match the path only). Nothing matches the path: 404. A prefix
 * route "/" taking any method catches everything else. */
struct http_route {
    const char *path; /* "/healthz" (exact, the query excluded) or a prefix */
    bool is_prefix;
    uint32_t methods;
    enum http_server_body body;
    size_t max_body; /* HTTP_SERVER_BODY_BUFFER: largest body accepted */
    http_server_handler_fn handler;
};

/* A server's settings; everything is borrowed for the server's life. 0 leaves a limit off
 * (no timeout, no cap) unless said otherwise. */
struct http_server_conf {
    const char *name; /* log context ("admin") */
    const struct http_route *routes;
    size_t n_routes;
    void *data;                    /* handed to handlers */
    http_server_head_fn on_head;   /* may be NULL */
    const char *headers;           /* header lines every response carries, each ending in
                                    * CRLF ("X-Server: a\r\n"); NULL: none */
    bool is_keepalive;             /* false: one request per connection (Connection: close) */
    bool is_reuseport;             /* SO_REUSEPORT: one listener per loop on the same address */
    int backlog;                   /* listen() backlog; 0: 128 */
    uint32_t max_conns;            /* open connections */
    uint32_t max_conns_per_source; /* from one address: over it, a newcomer evicts its own
                                    * address's oldest idle connection (waiting for its
                                    * request), else is refused; at max_conns, it evicts the
                                    * oldest idle connection of the address holding the most,
                                    * if it holds more than the newcomer's address */
    uint32_t head_timeout_ms;      /* for a request head: from accept, then from the last
                                    * answer sent (the keep-alive idle time) */
    uint32_t write_timeout_ms;     /* for an answer to be sent; 0: head_timeout_ms applies */
    uint32_t linger_ms;            /* after the last answer: read and drop what the client
                                    * still sends this long before closing (no reset that
                                    * could destroy the answer); 0: close at once */
    uint32_t max_head;             /* request head bytes; 0: 8192 */
    size_t max_response;           /* bytes queued on one connection; 0: 1 MiB */
    /* The transport of every accepted connection (http/http_transport.h): its ops table
     * and per-listener settings (TLS later: the certificate). NULL: plain TCP. The
     * server opens it at accept, runs its handshake before reading a request (within
     * head_timeout_ms), and reads, writes, shuts down and closes only through it. */
    const struct http_xprt_conf *xprt;
};

/* A request, valid from the handler call until http_server_respond (or the abort call).
 * Every pointer points into the connection's input; none is NUL-terminated. */
struct http_server_req {
    struct http_server *server;
    const struct http_msg *msg; /* the parsed head; spans are offsets into head */
    const char *head;           /* the raw head, msg->head_len bytes */
    enum http_method method;
    const char *path; /* the target up to '?' */
    size_t path_len;
    const char *query; /* after '?'; NULL when there is none */
    size_t query_len;
    const char *body; /* HTTP_SERVER_BODY_BUFFER: the body; else NULL */
    size_t body_len;  /* BUFFER: its size; DISCARD: the bytes dropped */
    const struct sockaddr_storage *peer;
};

/* Listen on sa and serve conf on loop. NULL with eb filled on failure. Never blocks. */
struct http_server *http_server_start(struct ev_loop *loop, const struct sockaddr *sa,
                                      socklen_t salen, const struct http_server_conf *conf,
                                      struct errbuf *eb);

/* Close the listener and every connection (requests waiting get their abort call). NULL
 * allowed. Memory goes at the end of the loop iteration. */
void http_server_stop(struct http_server *s);

/* The loop s runs on. */
struct ev_loop *http_server_loop(const struct http_server *s);

/* The loop serving req (for timers of asynchronous handlers). */
struct ev_loop *http_server_req_loop(const struct http_server_req *req);

/* The value of header name (case-insensitive) of req: its bytes and length, NULL if absent. */
const char *http_server_req_header(const struct http_server_req *req, const char *name,
                                   size_t *len);

/* Answer req: status, Content-Type ctype (NULL: none), extra header lines (each ending in
 * CRLF; NULL: none), then body[0, len) with a Content-Length, or, when chunk_size is not
 * 0, cut into chunks of chunk_size bytes with Transfer-Encoding: chunked. A HEAD request
 * gets the head alone. The server adds its conf.headers and "Connection: close" when the
 * connection ends after this answer. Exactly once per request; req is dead afterwards. An
 * answer over max_response closes the connection instead. From a handler, or later from
 * the loop (it then sends at once and goes on with pipelined requests). */
void http_server_respond(struct http_server_req *req, int status, const char *ctype,
                         const char *headers, const void *body, size_t len, size_t chunk_size);

/* Ask for on_abort(data) should the connection close before req is answered (for handlers
 * that answer later). */
void http_server_req_on_abort(struct http_server_req *req, http_server_abort_fn on_abort,
                              void *data);

/* Open connections (for tests). */
uint32_t http_server_conn_count(const struct http_server *s);

#endif
