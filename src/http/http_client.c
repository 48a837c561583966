/* SPDX-License-Identifier: MIT */
/* The asynchronous HTTP/1.1 client of http_client.h: one struct http_client per exchange, a small
 * state machine (connecting, handshake, sending, reading the head, reading the body) driven by
 * one ev_io and one ev_timer. It owns the transport (http/http_transport.h, which owns the
 * socket from the connect on) and the buffers of its exchange; every byte goes through the
 * transport. The parsers it feeds are http/http_parse.c (head) and http/http_chunked.c
 * (chunked framing). */
#include "http/http_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/ev.h"
#include "core/log.h"
#include "core/sock.h"
#include "http/http_parse.h"
#include "http/http_transport.h"

/* Initial size of the decoded-body buffer; it doubles up to max_body + 1. */
#define BODY_INITIAL_CAP 4096u
/* Longest request head we write (method, target, Host, Content-Type, fixed fields). */
#define HEAD_OUT_MAX 1024u

enum http_client_state {
    HTTP_CLIENT_STATE_CONNECTING = 0, /* non-blocking connect in progress, waiting for EV_WRITE */
    HTTP_CLIENT_STATE_HANDSHAKE,      /* the transport comes up (TLS; at once for TCP) */
    HTTP_CLIENT_STATE_SENDING,        /* writing the request head and body */
    HTTP_CLIENT_STATE_READING_HEAD,   /* reading the status line and header section */
    HTTP_CLIENT_STATE_READING_BODY,   /* reading the body as framed (length, chunked, close) */
    HTTP_CLIENT_STATE_DONE            /* finished or cancelled; memory freed after the iteration */
};

static const char *const http_client_state_names[] = {
    [HTTP_CLIENT_STATE_CONNECTING] = "connecting",
    [HTTP_CLIENT_STATE_HANDSHAKE] = "handshake",
    [HTTP_CLIENT_STATE_SENDING] = "sending",
    [HTTP_CLIENT_STATE_READING_HEAD] = "reading-head",
    [HTTP_CLIENT_STATE_READING_BODY] = "reading-body",
    [HTTP_CLIENT_STATE_DONE] = "done",
};

struct http_client {
    struct ev_loop *loop;
    enum http_client_state state;
    struct http_xprt xp; /* the exchange's transport; xp.fd is -1 before and after */
    struct ev_io io;
    struct ev_timer timer;
    uint64_t deadline_ms;
    enum http_method method;
    char host[64]; /* for log lines */
    /* request */
    char head_out[HEAD_OUT_MAX];
    size_t head_out_len;
    const char *body_out; /* borrowed */
    size_t body_out_len;
    size_t sent; /* bytes of head_out then body_out written */
    /* response */
    struct buf in; /* raw bytes: the head, then body bytes waiting to be framed */
    struct http_parser parser;
    struct http_msg msg;
    enum http_body_kind body_kind;
    struct http_chunked chunked;
    uint64_t body_left; /* HTTP_BODY_LENGTH: bytes still expected */
    struct buf body;    /* decoded body; cap grows up to max_body + 1 (for the NUL) */
    size_t max_body;
    bool is_too_big; /* a chunk pushed the body over max_body */
    bool is_status_only;
    bool is_head_kept;
    char *head_kept; /* is_head_kept: a copy of the final head (malloc'd) */
    size_t head_kept_len;
    size_t drained; /* is_status_only: body bytes read and dropped */
    http_client_done_fn on_done;
    void *data;
};

/* The one transition function (STYLE.md section 6). States only move forward, one step at
 * a time, except that any state may end (DONE); anything else is a bug. */
static void set_state(struct http_client *h, enum http_client_state to, const char *reason)
{
    if (h->state == HTTP_CLIENT_STATE_DONE ||
        (to != HTTP_CLIENT_STATE_DONE && to != (enum http_client_state)(h->state + 1))) {
        log_error("http_client", "%s: illegal transition %s -> %s", h->host,
                  http_client_state_names[h->state], http_client_state_names[to]);
        abort();
    }
    log_debug("http_client", "%s: %s -> %s (%s)", h->host, http_client_state_names[h->state],
              http_client_state_names[to], reason);
    h->state = to;
}

/* Release everything but the struct itself, which may still be named by an event of the
 * current batch: it is freed at the end of the iteration. */
static void release(struct http_client *h)
{
    if (h->xp.fd != -1) {
        ev_io_stop(h->loop, &h->io);
        http_xprt_close(&h->xp);
    }
    ev_timer_stop(h->loop, &h->timer);
    buf_fini(&h->in);
    buf_fini(&h->body);
    free(h->head_kept);
    h->head_kept = NULL;
    ev_free_later(h->loop, h);
}

static void finish(struct http_client *h, int err, const char *why)
{
    struct http_client_response resp = {
        .err = err,
        .is_connect_failure = err != 0 && (h->state == HTTP_CLIENT_STATE_CONNECTING ||
                                           h->state == HTTP_CLIENT_STATE_HANDSHAKE),
    };
    if (err == 0) {
        resp.status = h->msg.status;
        /* There is room for the NUL: the body buffer's cap is max_body + 1, and its bytes
         * are never consumed. */
        if (h->body.data != NULL) {
            h->body.data[h->body.len] = '\0';
            resp.body = h->body.data;
            resp.body_len = h->body.len;
        } else {
            resp.body = "";
        }
        resp.head = h->head_kept;
        resp.head_len = h->head_kept_len;
    } else {
        snprintf(resp.why, sizeof(resp.why), "%s", why);
    }
    set_state(h, HTTP_CLIENT_STATE_DONE, err == 0 ? "complete" : why);
    h->on_done(h->data, &resp); /* may start other exchanges; this one is dead */
    release(h);
}

static void finish_errno(struct http_client *h, int err, const char *call)
{
    char why[128];
    snprintf(why, sizeof(why), "%s failed: %s", call, strerror(-err));
    finish(h, err, why);
}

/* ------------------------------------------------------------------------ response body */

/* Append decoded body bytes, within max_body (is_status_only: count them). */
static bool body_append(struct http_client *h, const char *p, size_t n)
{
    if (h->is_status_only) {
        h->drained += n;
        return true;
    }
    if (n > h->max_body - h->body.len) {
        return false;
    }
    if (buf_tailroom(&h->body) < n + 1) {
        size_t cap = h->body.cap == 0 ? BODY_INITIAL_CAP : h->body.cap;
        while (cap < h->body.len + n + 1) {
            cap *= 2;
        }
        if (cap > h->max_body + 1) {
            cap = h->max_body + 1;
        }
        int rc = h->body.data == NULL ? buf_init(&h->body, cap) : buf_grow(&h->body, cap);
        if (rc != 0) {
            return false;
        }
    }
    return buf_append(&h->body, p, n);
}

static void on_chunk_data(void *ctx, const char *data, size_t len)
{
    struct http_client *h = ctx;
    if (!h->is_too_big && !body_append(h, data, len)) {
        h->is_too_big = true;
    }
}

/* Frame body bytes p[0, n). Returns 1 when the body is complete, 0 when more is needed,
 * or a negative error (why set). */
static int body_feed(struct http_client *h, const char *p, size_t n, const char **why)
{
    switch (h->body_kind) {
    case HTTP_BODY_NONE:
        return 1;
    case HTTP_BODY_LENGTH: {
        size_t take = n < h->body_left ? n : (size_t)h->body_left;
        if (!body_append(h, p, take)) {
            *why = "out of memory for the response body";
            return -ENOMEM;
        }
        h->body_left -= take;
        return h->body_left == 0 ? 1 : 0;
    }
    case HTTP_BODY_CHUNKED: {
        size_t consumed = 0;
        int rc = http_chunked_scan(&h->chunked, p, n, &consumed, on_chunk_data, h);
        if (h->is_too_big) {
            *why = "response body too large";
            return -EMSGSIZE;
        }
        if (rc == 0) {
            return 1;
        }
        if (rc == -EAGAIN) {
            return 0;
        }
        *why = "malformed chunked response body";
        return -EPROTO;
    }
    case HTTP_BODY_UNTIL_CLOSE:
        if (!body_append(h, p, n)) {
            *why = "response body too large";
            return -EMSGSIZE;
        }
        return 0;
    }
    return -EPROTO; /* unreachable: every kind is handled above */
}

/* The head is complete in h->in: choose the framing and feed the bytes after it. Returns
 * as body_feed. */
static int head_done(struct http_client *h, const char **why)
{
    h->body_kind = http_response_body_kind(&h->msg, h->method);
    if (h->body_kind == HTTP_BODY_LENGTH) {
        if (h->msg.content_length > h->max_body && !h->is_status_only) {
            *why = "response body too large (Content-Length)";
            return -EMSGSIZE;
        }
        h->body_left = h->msg.content_length;
    } else if (h->body_kind == HTTP_BODY_CHUNKED) {
        http_chunked_init(&h->chunked);
    }
    if (h->is_head_kept) {
        h->head_kept = malloc(h->msg.head_len + 1);
        if (h->head_kept == NULL) {
            *why = "out of memory for the response head";
            return -ENOMEM;
        }
        memcpy(h->head_kept, buf_head(&h->in), h->msg.head_len);
        h->head_kept[h->msg.head_len] = '\0';
        h->head_kept_len = h->msg.head_len;
    }
    set_state(h, HTTP_CLIENT_STATE_READING_BODY, "head complete");
    /* Every body gets a buffer, so that an empty one still comes back NUL-terminated. */
    if (!body_append(h, "", 0)) {
        *why = "out of memory for the response body";
        return -ENOMEM;
    }
    const char *rest = buf_head(&h->in) + h->msg.head_len;
    size_t rest_len = h->in.len - h->msg.head_len;
    int rc = body_feed(h, rest, rest_len, why);
    h->in.off = 0;
    h->in.len = 0;
    return rc;
}

/* Parse the bytes of h->in as a head, skipping interim (1xx) responses. */
static int head_feed(struct http_client *h, const char **why)
{
    for (;;) {
        int rc = http_parse_head(&h->parser, buf_head(&h->in), h->in.len, &h->msg);
        if (rc == -EAGAIN) {
            if (buf_tailroom(&h->in) == 0 && h->in.off == 0) {
                *why = "response head too large";
                return -EPROTO;
            }
            return 0;
        }
        if (rc != 0) {
            *why = h->parser.error != NULL ? h->parser.error : "malformed response head";
            return -EPROTO;
        }
        if (h->msg.status >= 200 || h->msg.status == 101) {
            return head_done(h, why); /* 101: the protocol switches; this is the answer */
        }
        /* 1xx: RFC 9110 section 15.2, the final response follows. */
        buf_consume(&h->in, h->msg.head_len);
        http_parser_init(&h->parser, true, 0, HTTP_CLIENT_MAX_HEAD);
    }
}

/* Wait for the readiness that serves `want` (EV_READ, EV_WRITE, or 0 during the handshake),
 * as the transport maps it. Returns false when the exchange failed (finished). */
static bool watch(struct http_client *h, uint32_t want)
{
    int rc = ev_io_set(h->loop, &h->io, http_xprt_events(&h->xp, want));
    if (rc != 0) {
        finish_errno(h, rc, "epoll_ctl()");
        return false;
    }
    return true;
}

/* One read from the transport and what it brings. Returns false when there is nothing more
 * to do now: the transport has no byte (-EAGAIN, the watcher is set), or the exchange
 * finished. */
static bool read_once(struct http_client *h)
{
    char *dst;
    size_t room;
    if (h->state == HTTP_CLIENT_STATE_READING_HEAD) {
        buf_compact(&h->in);
        dst = buf_tail(&h->in);
        room = buf_tailroom(&h->in);
    } else {
        dst = h->in.data;
        room = h->in.cap;
    }
    ssize_t n = http_xprt_read(&h->xp, dst, room);
    if (n == -EAGAIN) {
        (void)watch(h, EV_READ); /* false: finished */
        return false;
    }
    if (n < 0) {
        if (h->is_status_only && h->state == HTTP_CLIENT_STATE_READING_BODY) {
            finish(h, 0, NULL); /* reset while draining: the status is what counts */
            return false;
        }
        finish_errno(h, (int)n, "recv()");
        return false;
    }
    const char *why = NULL;
    int rc;
    if (n == 0) {
        if (h->state == HTTP_CLIENT_STATE_READING_BODY &&
            (h->body_kind == HTTP_BODY_UNTIL_CLOSE || h->is_status_only)) {
            finish(h, 0, NULL);
            return false;
        }
        finish(h, -ECONNRESET,
               h->state == HTTP_CLIENT_STATE_READING_HEAD && h->in.len == 0
                   ? "connection closed before the response"
                   : "connection closed before the response was complete");
        return false;
    }
    if (h->state == HTTP_CLIENT_STATE_READING_HEAD) {
        buf_commit(&h->in, (size_t)n);
        rc = head_feed(h, &why);
    } else {
        rc = body_feed(h, dst, (size_t)n, &why);
    }
    if (rc < 0) {
        finish(h, rc, why);
        return false;
    }
    if (rc == 1 || (h->is_status_only && h->drained >= HTTP_CLIENT_DRAIN_MAX)) {
        finish(h, 0, NULL);
        return false;
    }
    return true;
}

/* Read what the transport has: one read per readiness, then the bytes it holds itself
 * (has_pending), which no readiness will announce. */
static void on_readable(struct http_client *h)
{
    while (read_once(h) && http_xprt_has_pending(&h->xp)) {
    }
}

/* ------------------------------------------------------------------------ connect, send */

static void on_writable(struct http_client *h)
{
    while (h->sent < h->head_out_len + h->body_out_len) {
        struct iovec iov[2];
        int n_iov = 0;
        if (h->sent < h->head_out_len) {
            iov[n_iov++] = (struct iovec){h->head_out + h->sent, h->head_out_len - h->sent};
            if (h->body_out_len > 0) {
                iov[n_iov++] = (struct iovec){(void *)h->body_out, h->body_out_len};
            }
        } else {
            size_t off = h->sent - h->head_out_len;
            iov[n_iov++] = (struct iovec){(void *)(h->body_out + off), h->body_out_len - off};
        }
        ssize_t w = http_xprt_writev(&h->xp, iov, n_iov, 0);
        if (w == -EAGAIN) {
            (void)watch(h, EV_WRITE); /* false: finished */
            return;
        }
        if (w < 0) {
            finish_errno(h, (int)w, "send()");
            return;
        }
        h->sent += (size_t)w;
    }
    set_state(h, HTTP_CLIENT_STATE_READING_HEAD, "request sent");
    (void)watch(h, EV_READ); /* false: finished */
}

/* The transport's handshake; once it is up, the whole exchange's deadline replaces the
 * connect's (which covers connect and handshake). Returns false while not done (the
 * watcher waits for what the transport asks) or when the exchange failed. */
static bool handshake(struct http_client *h)
{
    int rc = http_xprt_handshake(&h->xp);
    if (rc == -EAGAIN) {
        (void)watch(h, 0); /* false: finished */
        return false;
    }
    if (rc != 0) {
        struct http_xprt_info info;
        http_xprt_get_info(&h->xp, &info); /* the library's reason ("certificate verify...") */
        char why[256];
        snprintf(why, sizeof(why), "%s handshake failed: %s", h->xp.ops->name,
                 info.error != NULL ? info.error : err_str(rc));
        finish(h, rc, why);
        return false;
    }
    set_state(h, HTTP_CLIENT_STATE_SENDING, "transport up");
    uint64_t now = ev_now_ms(h->loop);
    ev_timer_start(h->loop, &h->timer, h->deadline_ms > now ? h->deadline_ms - now : 0);
    return watch(h, EV_WRITE);
}

/* Any readiness: do what the state wants and let the transport say -EAGAIN (the fd's events
 * alone cannot tell which operation they unblock when a transport reads to write). */
static void on_io(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    struct http_client *h = io->data;
    if (h->state == HTTP_CLIENT_STATE_CONNECTING) {
        int rc = http_xprt_connected(&h->xp);
        if (rc == -EAGAIN) {
            return; /* still connecting: EV_WRITE stays asked */
        }
        if (rc != 0) {
            finish_errno(h, rc, "connect()");
            return;
        }
        set_state(h, HTTP_CLIENT_STATE_HANDSHAKE, "connected");
    }
    if (h->state == HTTP_CLIENT_STATE_HANDSHAKE && !handshake(h)) {
        return;
    }
    if (h->state == HTTP_CLIENT_STATE_SENDING) {
        on_writable(h);
        return;
    }
    on_readable(h);
}

static void on_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct http_client *h = t->data;
    if (h->is_status_only && h->state == HTTP_CLIENT_STATE_READING_BODY) {
        finish(h, 0, NULL); /* the server did not end in time, but it answered */
        return;
    }
    finish(h, -ETIMEDOUT,
           h->state == HTTP_CLIENT_STATE_CONNECTING  ? "connect() timed out"
           : h->state == HTTP_CLIENT_STATE_SENDING   ? "timed out sending the request"
           : h->state == HTTP_CLIENT_STATE_HANDSHAKE ? "timed out in the transport's handshake"
                                                     : "timed out waiting for the response");
}

/* Tokens that go into the request line and headers: visible ASCII only (RFC 9110 5.5), so
 * a caller's string cannot split the head. */
static bool is_head_safe(const char *s, bool allow_space)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x21 || c > 0x7e) {
            if (!(allow_space && c == ' ')) {
                return false;
            }
        }
    }
    return true;
}

static int format_head(struct http_client *h, const struct http_client_request *req)
{
    const char *ct = req->content_type;
    if (req->method[0] == '\0' || req->path[0] != '/' || !is_head_safe(req->method, false) ||
        !is_head_safe(req->path, false) || !is_head_safe(req->host, false) ||
        (ct != NULL && !is_head_safe(ct, true))) {
        return -EINVAL;
    }
    const char *ua = req->user_agent != NULL ? req->user_agent : "keel";
    if (!is_head_safe(ua, true)) {
        return -EINVAL;
    }
    char length[48] = "";
    if (req->body != NULL) {
        (void)snprintf(length, sizeof(length), "Content-Length: %zu\r\n", req->body_len);
    }
    int n = snprintf(h->head_out, sizeof(h->head_out),
                     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n%s%s%s"
                     "%sConnection: close\r\n\r\n",
                     req->method, req->path, req->host, ua, ct != NULL ? "Content-Type: " : "",
                     ct != NULL ? ct : "", ct != NULL ? "\r\n" : "", length);
    if (n < 0 || (size_t)n >= sizeof(h->head_out)) {
        return -EINVAL;
    }
    h->head_out_len = (size_t)n;
    snprintf(h->host, sizeof(h->host), "%s", req->host);
    return 0;
}

int http_client_start(struct ev_loop *loop, const struct http_client_request *req,
                      http_client_done_fn on_done, void *data, struct http_client **out)
{
    struct http_client *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return -ENOMEM;
    }
    h->loop = loop;
    h->xp.fd = -1;
    h->method = http_method_from(req->method, strlen(req->method));
    h->body_out = req->body;
    h->body_out_len = req->body_len;
    h->deadline_ms = req->deadline_ms;
    h->max_body = req->max_body;
    h->is_status_only = req->is_status_only;
    h->is_head_kept = req->is_head_kept;
    h->on_done = on_done;
    h->data = data;
    http_parser_init(&h->parser, true, 0, HTTP_CLIENT_MAX_HEAD);
    int rc = format_head(h, req);
    if (rc == 0) {
        rc = buf_init(&h->in, HTTP_CLIENT_MAX_HEAD);
    }
    int fd = -1;
    if (rc == 0) {
        rc = fd = sock_connect_start(req->addr, req->addrlen);
    }
    if (rc >= 0) {
        rc = http_xprt_open(&h->xp, req->xprt, fd, HTTP_XPRT_CONNECTING);
        if (rc != 0) {
            (void)close(fd); /* no transport took it */
            h->xp.fd = -1;
        }
    }
    if (rc == 0) {
        rc = ev_io_start(loop, &h->io, fd, http_xprt_events(&h->xp, EV_WRITE), on_io, h,
                         "http_client");
        if (rc != 0) {
            http_xprt_close(&h->xp); /* not watched: release must not stop the watcher */
        }
    }
    if (rc != 0) {
        release(h);
        return rc;
    }
    ev_timer_init(&h->timer, on_timeout, h, "http_client-timeout");
    uint64_t now = ev_now_ms(loop);
    uint64_t first =
        req->connect_deadline_ms < req->deadline_ms ? req->connect_deadline_ms : req->deadline_ms;
    ev_timer_start(loop, &h->timer, first > now ? first - now : 0);
    *out = h;
    return 0;
}

void http_client_cancel(struct http_client *h)
{
    if (h == NULL || h->state == HTTP_CLIENT_STATE_DONE) {
        return;
    }
    set_state(h, HTTP_CLIENT_STATE_DONE, "cancelled");
    release(h);
}

int http_client_header(const char *head, size_t len, const char *name, char *out, size_t size)
{
    size_t name_len = strlen(name);
    const char *end = head + len;
    const char *line = memchr(head, '\n', len); /* skip the status line */
    while (line != NULL && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL) {
            eol = end;
        }
        if ((size_t)(eol - line) > name_len && line[name_len] == ':' &&
            strncasecmp(line, name, name_len) == 0) {
            const char *v = line + name_len + 1, *ve = eol;
            const char *cr = memchr(v, '\r', (size_t)(ve - v));
            if (cr != NULL) {
                ve = cr; /* a value ends at the line's CR (a bare CR is not HTTP anyway) */
            }
            while (v < ve && (*v == ' ' || *v == '\t')) {
                v++;
            }
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) {
                ve--;
            }
            size_t n = (size_t)(ve - v);
            if (n + 1 > size) {
                return -ENOSPC;
            }
            memcpy(out, v, n);
            out[n] = '\0';
            return (int)n;
        }
        line = eol;
    }
    return -ENOENT;
}
