/* SPDX-License-Identifier: MIT */
/* The embedded HTTP/1.1 server of http_server.h. This file owns the listener, the
 * connections (buffers, timers, caps, eviction, lingering close), the route lookup and the
 * response formatting; the head parser is http/http_parse.c. A connection's bytes go through
 * its transport (http/http_transport.h, chosen by conf.xprt), never through the socket: the
 * server touches an accepted fd itself only to refuse it before a transport exists. Each
 * connection is a small state machine: handshake, head, body, handler, then head again
 * (keep-alive) or linger/close. */
#include "http/http_server.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/ev.h"
#include "core/fdlimit.h"
#include "core/log.h"
#include "core/sock.h"
#include "http/http_transport.h"

#define SRV_ACCEPT_BATCH 64
#define SRV_DEFAULT_MAX_HEAD 8192u
#define SRV_DEFAULT_MAX_RESPONSE (1u << 20)
#define SRV_OUT_INITIAL 16384u
#define SRV_IN_MIN 16384u
#define SRV_OUT_HIGH 32768u        /* stop answering pipelined requests above this */
#define SRV_LINGER_MAX (1u << 20)  /* bytes dropped while lingering before closing anyway */
#define SRV_RESPONSE_HEAD_MAX 2048 /* status line and header lines of one answer */

enum srv_conn_state {
    SRV_CONN_HANDSHAKE = 0, /* the transport comes up (TLS handshake; at once for TCP) */
    SRV_CONN_HEAD,          /* reading a request head (idle between requests) */
    SRV_CONN_BODY,          /* reading the request body */
    SRV_CONN_HANDLER,       /* the handler has the request: waiting for its answer */
    SRV_CONN_LINGER,        /* the last answer sent, writing shut down: dropping input */
    SRV_CONN_CLOSED         /* closed; memory freed after the iteration */
};

static const char *const srv_conn_state_names[] = {
    [SRV_CONN_HANDSHAKE] = "handshake", [SRV_CONN_HEAD] = "head",     [SRV_CONN_BODY] = "body",
    [SRV_CONN_HANDLER] = "handler",     [SRV_CONN_LINGER] = "linger", [SRV_CONN_CLOSED] = "closed",
};

struct srv_conn;

struct http_server {
    struct ev_loop *loop;
    const struct http_server_conf *conf;
    int fd;
    struct ev_io io;
    struct ev_timer pause;   /* armed while accepting is paused (EMFILE) */
    struct srv_conn *oldest; /* open connections in accept order */
    struct srv_conn *newest;
    uint32_t n_conns;
    uint32_t max_head;
    size_t max_response;
    struct fdlimit_throttle pause_throttle;  /* "accepting paused" lines */
    struct fdlimit_throttle refuse_throttle; /* over the caps: refused or evicted */
    char addr[64];                           /* where it listens, for the log */
};

struct srv_conn {
    struct http_server *s;
    struct srv_conn *prev; /* older */
    struct srv_conn *next; /* newer */
    struct sockaddr_storage peer;
    enum srv_conn_state state;
    struct http_xprt xp; /* the connection's transport; it owns the socket */
    struct ev_io io;
    struct ev_timer timer; /* head, write or linger deadline */
    bool is_write_timer;   /* the timer guards an answer being sent */
    struct ev_defer defer;
    struct buf in;
    struct buf out;
    struct http_parser parser;
    struct http_msg msg;
    struct http_server_req req;
    const struct http_route *route; /* NULL: the server answers 404/405 itself */
    struct http_chunked chunked;    /* DISCARD of a chunked body */
    uint64_t body_left;             /* DISCARD of a Content-Length body */
    bool sent_continue;             /* 100 Continue sent for the current request */
    bool close_after;               /* answer what is queued, then close (in BODY: once the
                                     * body being read is answered) */
    bool in_handler;                /* the handler is running (respond must not step) */
    bool is_shut;                   /* LINGER: the transport's write side is shut down */
    size_t lingered;
    http_server_abort_fn on_abort;
    void *abort_data;
};

/* The one transition function (STYLE.md section 6). */
static void set_state(struct srv_conn *c, enum srv_conn_state to)
{
    enum srv_conn_state from = c->state;
    bool ok;
    switch (to) {
    case SRV_CONN_HEAD:
        ok = from == SRV_CONN_HANDSHAKE || from == SRV_CONN_BODY || from == SRV_CONN_HANDLER;
        break;
    case SRV_CONN_BODY:
        ok = from == SRV_CONN_HEAD;
        break;
    case SRV_CONN_HANDLER:
        ok = from == SRV_CONN_BODY;
        break;
    case SRV_CONN_LINGER:
        ok = from != SRV_CONN_CLOSED && from != SRV_CONN_LINGER;
        break;
    default:
        ok = from != SRV_CONN_CLOSED;
        break;
    }
    if (!ok) {
        log_error(c->s->conf->name, "%s: illegal connection transition %s -> %s", c->s->addr,
                  srv_conn_state_names[from], srv_conn_state_names[to]);
        abort();
    }
    c->state = to;
}

/* ---------------------------------------------------------------- connections */

static void conn_free(struct ev_loop *loop, void *data)
{
    (void)loop;
    struct srv_conn *c = data;
    buf_fini(&c->in);
    buf_fini(&c->out);
    free(c);
}

static void conn_close(struct srv_conn *c)
{
    if (c->state == SRV_CONN_CLOSED) {
        return;
    }
    struct http_server *s = c->s;
    bool was_waiting = c->state == SRV_CONN_HANDLER;
    set_state(c, SRV_CONN_CLOSED);
    if (was_waiting && c->on_abort != NULL) {
        c->on_abort(c->abort_data); /* its answer has nowhere to go */
    }
    c->on_abort = NULL;
    ev_io_stop(s->loop, &c->io);
    ev_timer_stop(s->loop, &c->timer);
    http_xprt_close(&c->xp); /* everything queued was sent or is abandoned */
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->oldest = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    } else {
        s->newest = c->prev;
    }
    c->prev = c->next = NULL;
    s->n_conns--;
    ev_defer(s->loop, &c->defer, conn_free, c); /* after this iteration's events */
}

/* Waiting for a request (or for the transport to come up) and nothing to send: what
 * eviction may take. */
static bool conn_is_idle(const struct srv_conn *c)
{
    return (c->state == SRV_CONN_HEAD || c->state == SRV_CONN_HANDSHAKE) && c->out.len == 0;
}

static void arm_timer(struct srv_conn *c, bool is_write)
{
    const struct http_server_conf *k = c->s->conf;
    uint32_t ms = is_write && k->write_timeout_ms != 0 ? k->write_timeout_ms : k->head_timeout_ms;
    c->is_write_timer = is_write;
    if (ms == 0) {
        ev_timer_stop(c->s->loop, &c->timer);
        return;
    }
    ev_timer_start(c->s->loop, &c->timer, ms);
}

/* ---------------------------------------------------------------- answers */

static bool out_reserve(struct srv_conn *c, size_t n)
{
    if (buf_tailroom(&c->out) >= n) {
        return true;
    }
    buf_compact(&c->out);
    size_t need = c->out.len + n;
    if (need <= c->out.cap) {
        return true;
    }
    if (need > c->s->max_response) {
        return false;
    }
    size_t cap = c->out.cap;
    while (cap < need) {
        cap *= 2;
    }
    if (cap > c->s->max_response) {
        cap = c->s->max_response;
    }
    return buf_grow(&c->out, cap) == 0;
}

static bool put_chunked(struct srv_conn *c, const char *body, size_t len, size_t chunk_size)
{
    bool ok = true;
    for (size_t off = 0; off < len && ok; off += chunk_size) {
        size_t k = len - off < chunk_size ? len - off : chunk_size;
        char sz[32];
        int m = snprintf(sz, sizeof(sz), "%zx\r\n", k);
        ok = buf_append(&c->out, sz, (size_t)m) && buf_append(&c->out, body + off, k) &&
             buf_append(&c->out, "\r\n", 2);
    }
    return ok && buf_append(&c->out, "0\r\n\r\n", 5);
}

/* Queue an answer; false when it does not fit (nothing is queued then, and the connection
 * closes). */
static bool put_response(struct srv_conn *c, int status, const char *ctype, const char *headers,
                         const void *body, size_t len, size_t chunk_size, bool is_head)
{
    const struct http_server_conf *k = c->s->conf;
    char head[SRV_RESPONSE_HEAD_MAX];
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%s%s%s%s%s", status,
                     http_status_reason(status), ctype != NULL ? "Content-Type: " : "",
                     ctype != NULL ? ctype : "", ctype != NULL ? "\r\n" : "",
                     k->headers != NULL ? k->headers : "", headers != NULL ? headers : "");
    if (n < 0 || (size_t)n >= sizeof(head)) {
        return false;
    }
    int m = chunk_size != 0
                ? snprintf(head + n, sizeof(head) - (size_t)n, "Transfer-Encoding: chunked\r\n")
                : snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", len);
    if (m < 0 || (size_t)(n + m) >= sizeof(head)) {
        return false;
    }
    n += m;
    m = snprintf(head + n, sizeof(head) - (size_t)n, "%s\r\n",
                 c->close_after ? "Connection: close\r\n" : "");
    if (m < 0 || (size_t)(n + m) >= sizeof(head)) {
        return false;
    }
    n += m;
    if (is_head) {
        len = 0;
    }
    /* Everything is reserved first, so that an answer is queued whole or not at all: a
     * chunk costs at most 20 bytes of size line and CRLF, the last chunk 5. */
    size_t n_chunks = chunk_size != 0 ? len / chunk_size + 1 : 0;
    size_t need = (size_t)n + len + n_chunks * 20 + (chunk_size != 0 && !is_head ? 5 : 0);
    if (!out_reserve(c, need) || !buf_append(&c->out, head, (size_t)n)) {
        return false;
    }
    if (chunk_size != 0 && !is_head) {
        return put_chunked(c, body, len, chunk_size);
    }
    return len == 0 || buf_append(&c->out, body, len);
}

/* An answer the server makes itself (errors, 404, 405): always the end of a request that
 * no handler holds. */
static void answer_plain(struct srv_conn *c, int status, const char *headers, const char *text)
{
    if (!put_response(c, status, "text/plain; charset=utf-8", headers, text, strlen(text), 0,
                      c->msg.method == HTTP_METHOD_HEAD && c->state != SRV_CONN_HEAD)) {
        c->close_after = true;
    }
    arm_timer(c, true);
}

/* ---------------------------------------------------------------- requests */

static bool path_matches(const struct http_route *r, const char *path, size_t len)
{
    size_t rl = strlen(r->path);
    if (r->is_prefix) {
        return len >= rl && memcmp(path, r->path, rl) == 0;
    }
    return len == rl && memcmp(path, r->path, rl) == 0;
}

static bool method_matches(const struct http_route *r, enum http_method m)
{
    return r->methods == 0 || (r->methods & HTTP_ROUTE_METHOD(m)) != 0;
}

/* The route of c's request; NULL when none matches (*allowed: the methods of the routes
 * that match its path, 0 when none does). Exact routes come first: when one matches the
 * path, the answer is its (or 405), whatever the prefix routes say. Then the first prefix
 * route matching path and method. */
static const struct http_route *route_find(const struct srv_conn *c, uint32_t *allowed)
{
    const struct http_server_conf *k = c->s->conf;
    *allowed = 0;
    for (size_t i = 0; i < k->n_routes; i++) {
        const struct http_route *r = &k->routes[i];
        if (r->is_prefix || !path_matches(r, c->req.path, c->req.path_len)) {
            continue;
        }
        if (method_matches(r, c->req.method)) {
            return r;
        }
        *allowed |= r->methods;
    }
    if (*allowed != 0) {
        return NULL;
    }
    for (size_t i = 0; i < k->n_routes; i++) {
        const struct http_route *r = &k->routes[i];
        if (!r->is_prefix || !path_matches(r, c->req.path, c->req.path_len)) {
            continue;
        }
        if (method_matches(r, c->req.method)) {
            return r;
        }
        *allowed |= r->methods;
    }
    return NULL;
}

/* No route for the request: 405 with Allow when its path has routes, else 404. */
static void answer_unrouted(struct srv_conn *c)
{
    uint32_t allowed;
    (void)route_find(c, &allowed);
    if (allowed == 0) {
        answer_plain(c, 404, NULL, "not found\n");
        return;
    }
    char allow[160] = "Allow: ";
    size_t n = strlen(allow);
    for (int m = HTTP_METHOD_GET; m <= HTTP_METHOD_PATCH && n < sizeof(allow); m++) {
        if ((allowed & HTTP_ROUTE_METHOD(m)) != 0) {
            n += (size_t)snprintf(allow + n, sizeof(allow) - n, "%s%s", n > 7 ? ", " : "",
                                  http_method_name((enum http_method)m));
        }
    }
    if (n + 3 > sizeof(allow)) {
        n = sizeof(allow) - 3;
    }
    memcpy(allow + n, "\r\n", 3);
    answer_plain(c, 405, allow, "method not allowed\n");
}

/* Point c->req at the request's bytes, wherever the input buffer holds them now (it may
 * have grown or been compacted since the head was parsed). */
static void request_bind(struct srv_conn *c)
{
    const char *b = buf_head(&c->in);
    const char *target = b + c->msg.target.off;
    const char *q = memchr(target, '?', c->msg.target.len);
    c->req.head = b;
    c->req.path = target;
    c->req.path_len = q != NULL ? (size_t)(q - target) : c->msg.target.len;
    c->req.query = q != NULL ? q + 1 : NULL;
    c->req.query_len = q != NULL ? c->msg.target.len - c->req.path_len - 1 : 0;
    if (c->route != NULL && c->route->body == HTTP_SERVER_BODY_BUFFER && c->req.body_len != 0) {
        c->req.body = b + c->msg.head_len;
    }
}

/* The head in c->msg is complete: fill c->req and find the route. */
static void request_start(struct srv_conn *c)
{
    c->req = (struct http_server_req){
        .server = c->s,
        .msg = &c->msg,
        .method = c->msg.method,
        .peer = &c->peer,
    };
    c->route = NULL;
    request_bind(c);
    c->sent_continue = false;
    c->body_left = c->msg.content_length;
    http_chunked_init(&c->chunked);
    if (!c->s->conf->is_keepalive || !http_msg_keepalive(&c->msg)) {
        c->close_after = true;
    }
    set_state(c, SRV_CONN_BODY);
    if (c->s->conf->on_head != NULL) {
        c->s->conf->on_head(&c->req, c->s->conf->data);
    }
    uint32_t allowed;
    c->route = route_find(c, &allowed);
}

static void count_data(void *ctx, const char *data, size_t len)
{
    (void)data;
    ((struct srv_conn *)ctx)->req.body_len += len;
}

/* Drop the body bytes after the head, keeping the head in place. 0: complete; -EAGAIN;
 * -EPROTO after answering 400. */
static int body_discard(struct srv_conn *c, enum http_body_kind kind)
{
    size_t base = c->msg.head_len;
    size_t avail = c->in.len - base;
    size_t used = 0;
    int rc = 0;
    if (kind == HTTP_BODY_LENGTH) {
        used = c->body_left < avail ? (size_t)c->body_left : avail;
        c->body_left -= used;
        c->req.body_len += used;
        rc = c->body_left == 0 ? 0 : -EAGAIN;
    } else if (kind == HTTP_BODY_CHUNKED) {
        rc = http_chunked_scan(&c->chunked, buf_head(&c->in) + base, avail, &used, count_data, c);
        if (rc != 0 && rc != -EAGAIN) {
            c->close_after = true;
            answer_plain(c, 400, NULL, "bad chunked body\n");
            return -EPROTO;
        }
    }
    memmove(buf_head(&c->in) + base, buf_head(&c->in) + base + used, avail - used);
    c->in.len -= used;
    return rc;
}

/* Whether the request's body is all here, as the route wants it. 0: go on (body_len set
 * for BUFFER); -EAGAIN: more to read; -EPROTO: answered (an error), the request is over. */
static int body_ready(struct srv_conn *c)
{
    enum http_body_kind kind = http_request_body_kind(&c->msg);
    bool has_body = kind != HTTP_BODY_NONE && !(kind == HTTP_BODY_LENGTH && c->body_left == 0);
    if (!has_body) {
        return 0;
    }
    enum http_server_body policy = c->route != NULL ? c->route->body : HTTP_SERVER_BODY_REFUSE;
    if (policy == HTTP_SERVER_BODY_REFUSE) {
        c->close_after = true; /* answer, then close rather than read the body */
        return 0;
    }
    int rc;
    if (policy == HTTP_SERVER_BODY_DISCARD) {
        rc = body_discard(c, kind);
    } else if (kind != HTTP_BODY_LENGTH || c->msg.content_length > c->route->max_body) {
        char text[128];
        (void)snprintf(text, sizeof(text),
                       "a request body of at most %zu bytes, with a Content-Length\n",
                       c->route->max_body);
        c->close_after = true;
        answer_plain(c, kind != HTTP_BODY_LENGTH ? 411 : 413, NULL, text);
        return -EPROTO;
    } else {
        size_t need = c->msg.head_len + (size_t)c->msg.content_length;
        if (c->in.len >= need) {
            c->req.body = buf_head(&c->in) + c->msg.head_len;
            c->req.body_len = (size_t)c->msg.content_length;
            return 0;
        }
        buf_compact(&c->in);
        if (need > c->in.cap && buf_grow(&c->in, need) != 0) {
            c->close_after = true;
            answer_plain(c, 503, NULL, "out of memory\n");
            return -EPROTO;
        }
        rc = -EAGAIN;
    }
    if (rc == -EAGAIN && (c->msg.flags & HTTP_F_EXPECT_CONTINUE) != 0 && !c->sent_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        c->sent_continue = true;
        if (!out_reserve(c, sizeof(cont) - 1) || !buf_append(&c->out, cont, sizeof(cont) - 1)) {
            c->close_after = true;
            return -EPROTO;
        }
    }
    return rc;
}

/* The request is over (answered): drop its bytes and wait for the next head. */
static void request_end(struct srv_conn *c)
{
    size_t used = c->msg.head_len + (c->req.body != NULL ? c->req.body_len : 0);
    buf_consume(&c->in, used);
    http_parser_init(&c->parser, false, 8192, c->s->max_head);
    c->route = NULL;
    c->on_abort = NULL;
    set_state(c, SRV_CONN_HEAD);
}

static void conn_run(struct srv_conn *c);

void http_server_respond(struct http_server_req *req, int status, const char *ctype,
                         const char *headers, const void *body, size_t len, size_t chunk_size)
{
    struct srv_conn *c = (struct srv_conn *)((char *)req - offsetof(struct srv_conn, req));
    if (c->state != SRV_CONN_HANDLER) {
        log_error(c->s->conf->name, "%s: an answer for no request (state %s)", c->s->addr,
                  srv_conn_state_names[c->state]);
        abort();
    }
    if (!put_response(c, status, ctype, headers, body, len, chunk_size,
                      req->method == HTTP_METHOD_HEAD)) {
        c->close_after = true; /* the answer does not fit: give up on the connection */
    }
    arm_timer(c, true);
    request_end(c);
    if (!c->in_handler) {
        conn_run(c); /* an answer from the loop: send it, go on with pipelined requests */
    }
}

void http_server_req_on_abort(struct http_server_req *req, http_server_abort_fn on_abort,
                              void *data)
{
    struct srv_conn *c = (struct srv_conn *)((char *)req - offsetof(struct srv_conn, req));
    c->on_abort = on_abort;
    c->abort_data = data;
}

struct ev_loop *http_server_loop(const struct http_server *s)
{
    return s->loop;
}

struct ev_loop *http_server_req_loop(const struct http_server_req *req)
{
    return req->server->loop;
}

const char *http_server_req_header(const struct http_server_req *req, const char *name, size_t *len)
{
    int h = http_msg_find(req->msg, req->head, name, strlen(name));
    if (h < 0) {
        *len = 0;
        return NULL;
    }
    *len = req->msg->headers[h].value.len;
    return req->head + req->msg->headers[h].value.off;
}

/* ---------------------------------------------------------------- the connection's loop */

/* Handle every complete request buffered (pipelining). Returns when more input is needed,
 * an answer is pending, the output is high, or the connection is to close. */
static void serve_requests(struct srv_conn *c)
{
    /* close_after stops at the next head; the body of the last request is still read. */
    while (c->state != SRV_CONN_HANDLER && (!c->close_after || c->state == SRV_CONN_BODY) &&
           c->out.len < SRV_OUT_HIGH) {
        if (c->state == SRV_CONN_HEAD) {
            int rc = http_parse_head(&c->parser, buf_head(&c->in), c->in.len, &c->msg);
            if (rc == -EAGAIN) {
                return;
            }
            if (rc != 0) {
                c->close_after = true;
                answer_plain(c, http_parse_error_status(rc), NULL, "bad request\n");
                return;
            }
            request_start(c);
        }
        int rc = body_ready(c);
        if (rc == -EAGAIN) {
            return;
        }
        if (rc == 0 && c->route == NULL) {
            answer_unrouted(c);
        }
        if (rc != 0 || c->route == NULL) {
            request_end(c); /* answered */
            continue;
        }
        request_bind(c);
        set_state(c, SRV_CONN_HANDLER);
        c->in_handler = true;
        c->route->handler(&c->req, c->s->conf->data);
        c->in_handler = false;
    }
}

static void flush_out(struct srv_conn *c)
{
    while (c->out.len > 0) {
        ssize_t n = http_xprt_write(&c->xp, buf_head(&c->out), c->out.len, 0);
        if (n < 0) {
            if (n != -EAGAIN) {
                conn_close(c);
            }
            return;
        }
        buf_consume(&c->out, (size_t)n);
    }
}

/* Whether the connection reads now: a head (unless it closes after what it answers) or a
 * body wanted, and room for it. */
static bool wants_input(struct srv_conn *c)
{
    bool wants = c->state == SRV_CONN_BODY || (c->state == SRV_CONN_HEAD && !c->close_after);
    if (!wants || c->out.len >= SRV_OUT_HIGH) {
        return false;
    }
    buf_compact(&c->in);
    return buf_tailroom(&c->in) > 0;
}

/* Read what the transport has into c->in, bytes it holds itself (has_pending: no readiness
 * will announce them) included. Returns false when the connection closed (EOF or error). */
static bool conn_read(struct srv_conn *c)
{
    do {
        ssize_t n = http_xprt_read(&c->xp, buf_tail(&c->in), buf_tailroom(&c->in));
        if (n == -EAGAIN) {
            return true;
        }
        if (n <= 0) {
            conn_close(c);
            return false;
        }
        buf_commit(&c->in, (size_t)n);
    } while (buf_tailroom(&c->in) > 0 && http_xprt_has_pending(&c->xp));
    return true;
}

static void linger_shut(struct srv_conn *c);

/* Close after the last answer was sent. The client may still be sending (a body the answer
 * refused, pipelined requests): closing with unread bytes would make the kernel send a
 * reset that can destroy the answer in flight, so shut down writing and read and drop for
 * a while first (nginx's lingering close). */
static void conn_linger(struct srv_conn *c)
{
    uint32_t ms = c->s->conf->linger_ms;
    if (ms == 0) {
        conn_close(c);
        return;
    }
    set_state(c, SRV_CONN_LINGER);
    ev_timer_start(c->s->loop, &c->timer, ms);
    linger_shut(c);
}

/* The transport's handshake, before the first request. Returns false while it is not done
 * (the watcher waits for what the transport asks) or when the connection closed. */
static bool conn_handshake(struct srv_conn *c)
{
    int rc = http_xprt_handshake(&c->xp);
    if (rc == 0) {
        set_state(c, SRV_CONN_HEAD);
        return true;
    }
    if (rc != -EAGAIN) {
        char ip[64];
        log_info(c->s->conf->name, "%s: %s handshake with %s failed: %s", c->s->addr,
                 c->xp.ops->name, sock_addr_ip((const struct sockaddr *)&c->peer, ip, sizeof(ip)),
                 strerror(-rc));
        conn_close(c);
        return false;
    }
    if (ev_io_set(c->s->loop, &c->io, http_xprt_events(&c->xp, 0)) != 0) {
        conn_close(c);
    }
    return false;
}

static void step(struct srv_conn *c)
{
    serve_requests(c);
    flush_out(c);
    if (c->state == SRV_CONN_CLOSED) {
        return;
    }
    if (c->close_after && c->out.len == 0 && c->state == SRV_CONN_HEAD) {
        conn_linger(c);
        return;
    }
    if (c->out.len == 0 && c->is_write_timer && c->state == SRV_CONN_HEAD) {
        arm_timer(c, false); /* all sent: the keep-alive wait for the next head */
    }
    uint32_t ev = c->out.len > 0 ? EV_WRITE : 0;
    if (wants_input(c)) {
        ev |= EV_READ;
    }
    /* The transport may wait for another readiness than the one asked (TLS: a read that
     * needs a write first): it says which. */
    if (ev_io_set(c->s->loop, &c->io, http_xprt_events(&c->xp, ev)) != 0) {
        conn_close(c);
    }
}

/* Serve what is buffered and send; then, while the transport holds bytes no readiness will
 * announce (has_pending) and the connection wants them, read them and serve again. */
static void conn_run(struct srv_conn *c)
{
    for (;;) {
        step(c);
        if (c->state == SRV_CONN_CLOSED || !http_xprt_has_pending(&c->xp) || !wants_input(c)) {
            return;
        }
        size_t had = c->in.len;
        if (!conn_read(c) || c->in.len == had) {
            return; /* closed, or a transport that pends but gives nothing: wait for the fd */
        }
    }
}

/* LINGER: shut the write side down once (a TLS close_notify may have to wait for room). */
static void linger_shut(struct srv_conn *c)
{
    uint32_t ev = EV_READ;
    if (!c->is_shut) {
        int rc = http_xprt_shutdown(&c->xp);
        if (rc != 0 && rc != -EAGAIN) {
            conn_close(c);
            return;
        }
        c->is_shut = rc == 0;
        ev |= c->is_shut ? 0 : EV_WRITE;
    }
    if (ev_io_set(c->s->loop, &c->io, http_xprt_events(&c->xp, ev)) != 0) {
        conn_close(c);
    }
}

static void linger_read(struct srv_conn *c)
{
    char sink[4096];
    do {
        ssize_t n = http_xprt_read(&c->xp, sink, sizeof(sink));
        if (n == -EAGAIN) {
            break;
        }
        c->lingered += n > 0 ? (size_t)n : 0;
        if (n <= 0 || c->lingered > SRV_LINGER_MAX) {
            conn_close(c);
            return;
        }
    } while (http_xprt_has_pending(&c->xp));
    linger_shut(c);
}

/* Any readiness: do what the connection wants (read, write, handshake) and let the
 * transport say -EAGAIN; the fd's events alone cannot tell which operation they unblock
 * when a transport (TLS) reads to write or writes to read. Bytes the transport holds
 * (has_pending) are served without waiting for a readiness that will not come. */
static void on_conn_event(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    struct srv_conn *c = io->data;
    if (c->state == SRV_CONN_LINGER) {
        linger_read(c);
        return;
    }
    if (c->state == SRV_CONN_HANDSHAKE && !conn_handshake(c)) {
        return;
    }
    if (wants_input(c) && !conn_read(c)) {
        return;
    }
    conn_run(c);
}

static void on_conn_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    conn_close(t->data);
}

/* ---------------------------------------------------------------- accepting */

static bool same_source(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    unsigned alen, blen;
    const void *ab = sock_addr_bytes((const struct sockaddr *)a, &alen);
    const void *bb = sock_addr_bytes((const struct sockaddr *)b, &blen);
    return alen == blen && memcmp(ab, bb, alen) == 0;
}

static uint32_t source_count(const struct http_server *s, const struct sockaddr_storage *peer)
{
    uint32_t n = 0;
    for (const struct srv_conn *c = s->oldest; c != NULL; c = c->next) {
        n += same_source(&c->peer, peer);
    }
    return n;
}

/* At the overall cap, a newcomer from a source holding `have` connections takes the slot of
 * the oldest connection still waiting for its request from the source holding the most, if
 * that source holds more than the newcomer's: busy or hostile addresses then cannot lock out
 * a health checker or a scraper that comes from another one (it holds none, or fewer; among
 * equals the oldest idle connection goes first). NULL: no such connection. */
static struct srv_conn *eviction_victim(const struct http_server *s, uint32_t have)
{
    struct srv_conn *victim = NULL;
    uint32_t most = have;
    for (struct srv_conn *c = s->oldest; c != NULL; c = c->next) {
        if (!conn_is_idle(c)) {
            continue; /* it is being answered: let it finish */
        }
        uint32_t n = source_count(s, &c->peer);
        if (n > most) { /* the oldest of a strictly heavier source: it comes first in order */
            most = n;
            victim = c;
        }
    }
    return victim;
}

/* At the per-source cap, a newcomer takes the slot of the oldest connection of its own
 * address still waiting for its request: connections that ask for nothing (a TCP check, a
 * relay opened ahead of its client's bytes, a stalled client) then cannot lock out the
 * requests that come from the same address (an operator's curl on the lb's machine, where
 * everything comes from 127.0.0.1). Only connections being answered hold the address's
 * slots against a newcomer. NULL: no such connection. */
static struct srv_conn *own_eviction_victim(const struct http_server *s,
                                            const struct sockaddr_storage *peer)
{
    for (struct srv_conn *c = s->oldest; c != NULL; c = c->next) {
        if (conn_is_idle(c) && same_source(&c->peer, peer)) {
            return c;
        }
    }
    return NULL;
}

/* Close an idle connection to admit a newcomer from peer (is_per_source: of its own address,
 * at max_conns_per_source; else of the heaviest address, at max_conns). */
static void evict(struct http_server *s, struct srv_conn *victim,
                  const struct sockaddr_storage *peer, bool is_per_source)
{
    char ip[64], why[128];
    (void)sock_addr_ip((const struct sockaddr *)&victim->peer, ip, sizeof(ip));
    conn_close(victim);
    uint64_t span_ms;
    uint32_t n = fdlimit_throttle_hit(&s->refuse_throttle, ev_now_ms(s->loop), &span_ms);
    if (n == 0) {
        return;
    }
    if (is_per_source) {
        (void)snprintf(why, sizeof(why),
                       "its address had %u connections open, the most one address may",
                       s->conf->max_conns_per_source);
    } else {
        char nip[64];
        (void)snprintf(why, sizeof(why), "%u connections open, the most; the newcomer is from %s",
                       s->conf->max_conns,
                       sock_addr_ip((const struct sockaddr *)peer, nip, sizeof(nip)));
    }
    log_warn(s->conf->name,
             "%s closed an idle connection from %s to admit a new one: %s (%u turned away in "
             "%.1f s)",
             s->addr, ip, why, n, (double)span_ms / 1000.0);
}

static void on_accept_resume(struct ev_loop *loop, struct ev_timer *t)
{
    struct http_server *s = t->data;
    if (ev_io_set(loop, &s->io, EV_READ) != 0) {
        log_error(s->conf->name, "cannot watch the listener on %s again", s->addr);
    }
}

/* No descriptor for the next connection: stop polling for FDLIMIT_PAUSE_MS rather than wake
 * up again at once for the same pending connection (level-triggered epoll would spin). */
static void accept_pause(struct http_server *s, int err)
{
    if (ev_io_set(s->loop, &s->io, 0) == 0) {
        ev_timer_start(s->loop, &s->pause, FDLIMIT_PAUSE_MS);
    }
    uint64_t span_ms;
    uint32_t n = fdlimit_throttle_hit(&s->pause_throttle, ev_now_ms(s->loop), &span_ms);
    if (n > 0) {
        log_warn(s->conf->name,
                 "%s: accept() failed: %s; accepting paused for %d ms (%u pause%s in %.1f s)",
                 s->addr, strerror(-err), FDLIMIT_PAUSE_MS, n, n == 1 ? "" : "s",
                 (double)span_ms / 1000.0);
    }
}

/* Close a connection over a cap (is_per_source: its address's, else the listener's). One
 * throttled line for refusals and evictions together ("N turned away"): a flood of either
 * writes one line a second. */
static void refuse(struct http_server *s, int fd, const struct sockaddr_storage *peer,
                   bool is_per_source)
{
    (void)close(fd);
    uint64_t span_ms;
    uint32_t n = fdlimit_throttle_hit(&s->refuse_throttle, ev_now_ms(s->loop), &span_ms);
    if (n == 0) {
        return;
    }
    char ip[64], why[96];
    if (is_per_source) {
        (void)snprintf(why, sizeof(why),
                       "its address has %u connections open, the most one address may",
                       s->conf->max_conns_per_source);
    } else {
        (void)snprintf(why, sizeof(why), "%u connections open, the most", s->conf->max_conns);
    }
    log_warn(s->conf->name, "%s refused a connection from %s: %s (%u turned away in %.1f s)",
             s->addr, sock_addr_ip((const struct sockaddr *)peer, ip, sizeof(ip)), why, n,
             (double)span_ms / 1000.0);
}

/* Whether a connection from peer may open now; may close an older one to make room. */
static bool admit(struct http_server *s, int fd, const struct sockaddr_storage *peer)
{
    const struct http_server_conf *k = s->conf;
    if (k->max_conns == 0 && k->max_conns_per_source == 0) {
        return true;
    }
    uint32_t have = source_count(s, peer);
    if (k->max_conns_per_source != 0 && have >= k->max_conns_per_source) {
        struct srv_conn *victim = own_eviction_victim(s, peer);
        if (victim == NULL) {
            refuse(s, fd, peer, true); /* every one of them is being answered */
            return false;
        }
        evict(s, victim, peer, true);
        return true; /* one in, one out: the overall count is what it was */
    }
    if (k->max_conns != 0 && s->n_conns >= k->max_conns) {
        struct srv_conn *victim = eviction_victim(s, have);
        if (victim == NULL) {
            refuse(s, fd, peer, false);
            return false;
        }
        evict(s, victim, peer, false);
    }
    return true;
}

static void conn_open(struct http_server *s, int fd, const struct sockaddr_storage *peer)
{
    struct srv_conn *c = calloc(1, sizeof(*c));
    /* Room for one byte past the head limit, so that the parser sees a head too large. */
    size_t in_cap = s->max_head < SRV_IN_MIN ? SRV_IN_MIN : (size_t)s->max_head + 1;
    if (c == NULL || buf_init(&c->in, in_cap) != 0 || buf_init(&c->out, SRV_OUT_INITIAL) != 0) {
        if (c != NULL) {
            buf_fini(&c->in);
            free(c);
        }
        (void)close(fd); /* out of memory: refuse this client */
        return;
    }
    if (http_xprt_open(&c->xp, s->conf->xprt, fd, HTTP_XPRT_ACCEPTED) != 0) {
        (void)close(fd); /* no transport (out of memory): refuse this client */
        conn_free(s->loop, c);
        return;
    }
    c->s = s;
    c->peer = *peer;
    http_parser_init(&c->parser, false, 8192, s->max_head);
    ev_timer_init(&c->timer, on_conn_timeout, c, s->conf->name);
    if (ev_io_start(s->loop, &c->io, fd, http_xprt_events(&c->xp, EV_READ), on_conn_event, c,
                    s->conf->name) != 0) {
        http_xprt_close(&c->xp);
        conn_free(s->loop, c);
        return;
    }
    c->prev = s->newest;
    if (s->newest != NULL) {
        s->newest->next = c;
    } else {
        s->oldest = c;
    }
    s->newest = c;
    s->n_conns++;
    arm_timer(c, false);     /* the head timeout covers the handshake too */
    (void)conn_handshake(c); /* false: waiting for the transport, or closed (logged) */
}

static void on_accept(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    struct http_server *s = io->data;
    for (int i = 0; i < SRV_ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t plen;
        int fd = sock_accept(s->fd, &peer, &plen);
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            accept_pause(s, fd);
            return;
        }
        if (fd == -ECONNABORTED || fd == -EINTR) {
            continue;
        }
        if (fd < 0) {
            return; /* -EAGAIN, or an error of the pending connection (consumed) */
        }
        if (admit(s, fd, &peer)) {
            conn_open(s, fd, &peer);
        }
    }
}

struct http_server *http_server_start(struct ev_loop *loop, const struct sockaddr *sa,
                                      socklen_t salen, const struct http_server_conf *conf,
                                      struct errbuf *eb)
{
    int fd =
        sock_listen(sa, salen, conf->is_reuseport, conf->backlog > 0 ? conf->backlog : 128, eb);
    if (fd < 0) {
        return NULL;
    }
    struct http_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        (void)close(fd);
        errbuf_set(eb, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->conf = conf;
    s->fd = fd;
    s->max_head = conf->max_head != 0 ? conf->max_head : SRV_DEFAULT_MAX_HEAD;
    s->max_response = conf->max_response != 0 ? conf->max_response : SRV_DEFAULT_MAX_RESPONSE;
    (void)sock_addr_text(sa, s->addr, sizeof(s->addr));
    ev_timer_init(&s->pause, on_accept_resume, s, "http_server-resume");
    if (ev_io_start(loop, &s->io, fd, EV_READ, on_accept, s, conf->name) != 0) {
        (void)close(fd);
        free(s);
        errbuf_set(eb, "epoll_ctl failed");
        return NULL;
    }
    return s;
}

void http_server_stop(struct http_server *s)
{
    if (s == NULL) {
        return;
    }
    ev_io_stop(s->loop, &s->io);
    ev_timer_stop(s->loop, &s->pause);
    (void)close(s->fd);
    while (s->oldest != NULL) {
        conn_close(s->oldest); /* they point at s */
    }
    ev_free_later(s->loop, s); /* an accept event may be pending in this batch */
}

uint32_t http_server_conn_count(const struct http_server *s)
{
    return s->n_conns;
}
