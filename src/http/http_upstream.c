/* SPDX-License-Identifier: MIT */
/* The proxy handler (see http_upstream.h): the server side of an exchange, from choosing a
 * server (through the session path, lb/lb_session.h, shared with TCP) to giving its
 * connection back to the pool. Request body bytes stay in the client
 * connection's input buffer until the exchange ends (unless it fills), so that an
 * idempotent request can be replayed on another server; response body bytes are written
 * to the client straight from the server connection's buffer. The client connection's
 * state machine (http_proxy.c) calls step and sync; the server socket's events and timer
 * come here first. */
#include "http/http_upstream.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "core/log.h"
#include "core/sock.h"
#include "http/http_conn.h"
#include "http/http_pool.h"
#include "http/http_reply.h"
#include "http/http_rewrite.h"
#include "http/http_transport.h"
#include "http/http_tunnel.h"
#include "lb/lb.h"
#include "lb/lb_session.h"

#define HP_UP_IN_MAX 16384
#define HP_OUT_MAX 16384
#define HP_RHEAD_EXTRA 1024 /* room over max_header for the headers keel adds */

static void on_upstream_event(struct ev_loop *loop, struct ev_io *io, uint32_t events);
static void on_upstream_timeout(struct ev_loop *loop, struct ev_timer *t);
static void proxy_release(struct hp_conn *c);

/* The Strict-Transport-Security line of c's frontend, on TLS connections only: RFC 6797
 * section 7.2 forbids it over plain HTTP. */
static const char *hsts_of(const struct hp_conn *c)
{
    return http_xprt_is_secure(&c->xp) ? c->fe->conf->tls.hsts : "";
}

static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void drop_upstream(struct hp_conn *c)
{
    if (c->ex != NULL && c->ex->h.px.up != NULL) {
        c->ex->h.px.up->owner = NULL;
        lb_upstream_close(c->ex->h.px.up);
        c->ex->h.px.up = NULL;
    }
}

/* Write what is pending for the client: keel's own bytes in `out`, then response body
 * bytes straight from the server's buffer. Returns 0, or -errno on a fatal error. */
static int client_flush(struct hp_conn *c)
{
    for (;;) {
        struct iovec iov[2];
        int n_iov = 0;
        if (c->out.len != 0) {
            iov[n_iov].iov_base = buf_head(&c->out);
            iov[n_iov++].iov_len = c->out.len;
        }
        if (c->ex->h.px.up != NULL && c->ex->h.px.res_sent < c->ex->h.px.res_scanned) {
            iov[n_iov].iov_base = buf_head(&c->ex->h.px.up->in) + c->ex->h.px.res_sent;
            iov[n_iov++].iov_len = c->ex->h.px.res_scanned - c->ex->h.px.res_sent;
        }
        if (n_iov == 0) {
            c->client_write_blocked = false;
            return 0;
        }
        ssize_t n = http_xprt_writev(&c->xp, iov, n_iov, 0);
        if (n < 0) {
            if (n == -EAGAIN) {
                c->client_write_blocked = true;
                return 0;
            }
            return (int)n;
        }
        size_t done = (size_t)n;
        metrics_add(&metrics_local(c->fe->metrics)->bytes_out, done);
        c->ex->res_bytes += done;
        if (c->state == HP_STATE_EXCHANGE && c->ex->h.px.res_head_done) {
            c->ex->res_started = true;
        }
        size_t from_out = done < c->out.len ? done : c->out.len;
        buf_consume(&c->out, from_out);
        c->ex->h.px.res_sent += done - from_out;
    }
}

static int scan_request_body(struct hp_conn *c)
{
    const struct conf_frontend *cf = c->fe->conf;
    if (c->ex->req_body.is_done || c->ex->body_scanned >= c->in.len) {
        return 0;
    }
    size_t n;
    int rc = hp_body_scan(&c->ex->req_body, buf_head(&c->in) + c->ex->body_scanned,
                          c->in.len - c->ex->body_scanned, &n, NULL, NULL);
    if (rc != 0) {
        return rc;
    }
    c->ex->body_scanned += n;
    if (cf->max_body != 0 && c->ex->req_body.data_bytes > cf->max_body) {
        return -EFBIG;
    }
    return 0;
}

/* Make room in `in` for more request body once what is there was sent. */
static void release_sent_body(struct hp_conn *c)
{
    if (buf_tailroom(&c->in) > 0 || c->in.cap < hp_conn_in_max(c) || c->ex->h.px.body_sent == 0 ||
        c->ex->req_body.is_done) {
        return; /* room left, or the buffer can still grow: keep the body replayable */
    }
    buf_consume(&c->in, c->ex->h.px.body_sent);
    c->ex->body_scanned -= c->ex->h.px.body_sent;
    c->ex->h.px.body_sent = 0;
    c->ex->h.px.body_consumed = true; /* the body can no longer be replayed */
}

static void finish_exchange(struct hp_conn *c)
{
    uint64_t now = ev_now_ms(c->w->loop);
    struct lb_upstream *up = c->ex->h.px.up;
    metrics_add(&metrics_local(up->srv->metrics)->requests[metrics_class(c->ex->status)], 1);
    (void)now;
    metrics_backend_observe(c->ex->be->metrics, monotonic_us() - c->ex->h.px.t_sent_us);
    hp_exchange_account(c);
    c->ex->h.px.up = NULL;
    ev_timer_stop(c->w->loop, &up->timer);
    bool reusable = up->is_connected && !c->ex->h.px.up_eof &&
                    c->ex->h.px.res_body.kind != HTTP_BODY_UNTIL_CLOSE &&
                    http_msg_keepalive(&c->ex->res) && c->ex->req_body.is_done &&
                    c->ex->h.px.body_sent == c->ex->body_scanned &&
                    up->in.len == c->ex->h.px.res_scanned;
    buf_consume(&up->in, c->ex->h.px.res_scanned);
    up->requests++;
    if (reusable) {
        if (up->in.len == 0) {
            http_buf_release(&up->in); /* an idle server connection holds no buffer */
        }
        lb_pool_put(c->w, up);
    } else {
        up->owner = NULL;
        lb_upstream_close(up);
    }
    proxy_release(c);
    hp_exchange_done(c);
}

/* Point the exchange at a server connection, new or pooled. */
static void attach_upstream(struct hp_conn *c, struct lb_upstream *up)
{
    c->ex->h.px.up = up;
    c->ex->moves++; /* hp_conn_step passes again: a request may wait to be sent */
    up->owner = c;
    c->ex->h.px.up_write_blocked = false;
    c->ex->h.px.up_eof = false;
    c->ex->h.px.res_head_done = false;
    http_parser_init(&c->ex->h.px.rparser, true, 8192, 16384);
    ev_timer_init(&up->timer, on_upstream_timeout, up, "upstream");
}

/* The exchange has a connected server connection: the request goes out. */
static void upstream_ready(struct hp_conn *c, const char *reason)
{
    struct lb_upstream *up = c->ex->h.px.up;
    up->io.on_event = on_upstream_event;
    up->io.data = up;
    up->is_connected = true;
    hp_conn_set_state(c, HP_STATE_EXCHANGE, reason);
    c->ex->h.px.t_sent_us = monotonic_us();
    ev_timer_start(c->w->loop, &up->timer, c->ex->be->conf->timeout_server_ms);
}

/* ---------------------------------------------------------------- the session's ops */

/* A slot is held: take an idle connection to the server from the pool, or give the
 * session a new upstream to connect. */
static int on_session_slot(struct lb_session *s)
{
    struct hp_conn *c = s->owner;
    struct lb_upstream *up = c->ex->h.px.stale_retry_used ? NULL : lb_pool_get(c->w, s->be, s->srv);
    if (up != NULL) {
        attach_upstream(c, up);
        upstream_ready(c, "reused connection");
        if (ev_io_set(c->w->loop, &up->io, http_xprt_events(&up->xp, EV_READ)) == 0) {
            return 1;
        }
        drop_upstream(c); /* cannot watch it: a new connection instead */
    }
    up = lb_upstream_new(c->w, s->be, s->srv);
    if (up == NULL) {
        return -ENOMEM;
    }
    attach_upstream(c, up);
    hp_conn_set_state(c, HP_STATE_CONNECTING, s->srv->conf->name);
    s->xp = &up->xp;
    s->io = &up->io;
    return 0;
}

static void on_session_queued(struct lb_session *s)
{
    hp_conn_set_state(s->owner, HP_STATE_QUEUED, "all servers at maxconn");
}

static void on_session_connected(struct lb_session *s)
{
    upstream_ready(s->owner, "connected");
}

static void on_session_drop(struct lb_session *s)
{
    drop_upstream(s->owner);
}

static void on_session_error(struct lb_session *s, enum lb_session_err err, const char *detail)
{
    hp_conn_fail(s->owner, lb_session_err_status(err), detail);
}

static void on_session_wake(void *owner)
{
    hp_conn_step(owner);
}

/* For an algorithm that routes by a header: the head for the server holds the request's
 * headers (the client's buffer has moved on to the body by the time a queued pick runs). */
static const char *session_header(void *owner, const char *name, size_t name_len, size_t *value_len)
{
    const struct hp_conn *c = owner;
    const struct buf *head = &c->ex->h.px.rhead;
    return http_head_value(buf_head(head), head->len, name, name_len, value_len);
}

static const struct lb_session_ops hp_session_ops = {
    .log_name = "http",
    .on_slot = on_session_slot,
    .on_queued = on_session_queued,
    .on_connected = on_session_connected,
    .on_drop = on_session_drop,
    .on_error = on_session_error,
    .on_wake = on_session_wake,
    .header = session_header,
};

/* After a failure with the current server once connected: retry elsewhere when that is
 * safe, else answer with status. is_conn_failure: the server never got a byte of the
 * request. (A failed connect is the session's: it retries by itself.) */
static void upstream_failed(struct hp_conn *c, bool is_conn_failure, int status, const char *detail)
{
    struct hp_proxy *px = &c->ex->h.px;
    struct lb_upstream *up = px->up;
    bool stale = up != NULL && up->is_reused && !is_conn_failure;
    if (up != NULL && !stale) {
        lb_server_report_failure(up->srv, &c->peer.sa);
        if (is_conn_failure) {
            metrics_add(&metrics_local(up->srv->metrics)->connect_failures, 1);
        } else {
            metrics_add(&metrics_local(up->srv->metrics)->response_failures, 1);
        }
    }
    bool buffered = !px->body_consumed && (c->ex->req_body.is_done || px->body_sent == 0);
    bool safe = is_conn_failure || (px->is_idempotent && c->ex->req_body.is_done);
    bool can_retry = buffered && safe && !c->ex->res_started && !px->res_head_done;
    drop_upstream(c);
    if (can_retry && stale && !px->stale_retry_used) {
        /* A pooled connection the server had closed: try a fresh one, same server. */
        px->stale_retry_used = true;
        px->rhead_sent = 0;
        px->body_sent = 0;
        lb_session_reconnect(&px->sess);
        return;
    }
    if (can_retry && px->sess.retries_left > 0) {
        px->rhead_sent = 0;
        px->body_sent = 0;
        char ip[SOCK_IP_MAX];
        log_debug("http", "retrying %s on another server of %s after: %s", hp_conn_ip(c, ip),
                  c->ex->be->conf->name, detail);
        bool retried = lb_session_retry(&px->sess);
        (void)retried; /* retries were left: it did */
        return;
    }
    hp_conn_fail(c, status, detail);
}

static int upstream_flush(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->h.px.up;
    for (;;) {
        struct iovec iov[2];
        int n_iov = 0;
        if (c->ex->h.px.rhead_sent < c->ex->h.px.rhead.len) {
            iov[n_iov].iov_base = buf_head(&c->ex->h.px.rhead) + c->ex->h.px.rhead_sent;
            iov[n_iov++].iov_len = c->ex->h.px.rhead.len - c->ex->h.px.rhead_sent;
        }
        if (c->ex->h.px.body_sent < c->ex->body_scanned) {
            iov[n_iov].iov_base = buf_head(&c->in) + c->ex->h.px.body_sent;
            iov[n_iov++].iov_len = c->ex->body_scanned - c->ex->h.px.body_sent;
        }
        if (n_iov == 0) {
            c->ex->h.px.up_write_blocked = false;
            return 0;
        }
        ssize_t n = http_xprt_writev(&up->xp, iov, n_iov, 0);
        if (n < 0) {
            if (n == -EAGAIN) {
                c->ex->h.px.up_write_blocked = true;
                return 0;
            }
            return (int)n;
        }
        size_t done = (size_t)n;
        metrics_add(&metrics_local(up->srv->metrics)->bytes_out, done);
        ev_timer_start(c->w->loop, &up->timer, c->ex->be->conf->timeout_server_ms);
        size_t head_left = c->ex->h.px.rhead.len - c->ex->h.px.rhead_sent;
        size_t from_head = done < head_left ? done : head_left;
        c->ex->h.px.rhead_sent += from_head;
        c->ex->h.px.body_sent += done - from_head;
    }
}

static ssize_t upstream_read(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->h.px.up;
    if (up->in.data == NULL && http_buf_acquire(&up->in) != 0) {
        return -ENOMEM;
    }
    if (buf_tailroom(&up->in) == 0) {
        if (c->ex->h.px.res_sent > 0) {
            /* Body bytes already sent to the client can go. */
            buf_consume(&up->in, c->ex->h.px.res_sent);
            c->ex->h.px.res_scanned -= c->ex->h.px.res_sent;
            c->ex->h.px.res_sent = 0;
        }
        buf_compact(&up->in);
        if (buf_tailroom(&up->in) == 0 &&
            (up->in.cap >= HP_UP_IN_MAX || buf_grow(&up->in, HP_UP_IN_MAX) != 0)) {
            return -ENOBUFS;
        }
    }
    ssize_t n = http_xprt_read(&up->xp, buf_tail(&up->in), buf_tailroom(&up->in));
    if (n < 0) {
        return n;
    }
    buf_commit(&up->in, (size_t)n);
    metrics_add(&metrics_local(up->srv->metrics)->bytes_in, (uint64_t)n);
    return n;
}

static void on_upstream_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct lb_upstream *up = t->data;
    struct hp_conn *c = up->owner;
    if (c == NULL) {
        return;
    }
    if (!c->ex->h.px.res_head_done) { /* armed once connected: the connect is the session's */
        lb_server_report_failure(up->srv, &c->peer.sa);
        hp_conn_fail(c, 504, "server response timed out");
    } else {
        hp_conn_fail(c, 504, "server stopped sending the response");
    }
    hp_conn_step(c);
}

/* Handle the server's side: bytes read, EOF, errors. Returns what the read returned. */
static ssize_t upstream_input(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->h.px.up;
    ssize_t n = upstream_read(c);
    if (n == -EAGAIN || n == -ENOBUFS) {
        return n;
    }
    if (n == -ENOMEM) {
        /* No buffer to read the response into: not the server's fault. */
        hp_conn_fail(c, 503, "out of memory");
        return n;
    }
    if (n > 0) {
        ev_timer_start(c->w->loop, &up->timer, c->ex->be->conf->timeout_server_ms);
        return n;
    }
    /* EOF or error from the server. */
    bool nothing_yet =
        !c->ex->h.px.res_head_done && up->in.len == 0 && c->ex->h.px.rparser.pos == 0;
    if (nothing_yet) {
        upstream_failed(c, false, 502,
                        n == 0 ? "server closed the connection before responding"
                               : "server reset the connection");
        return n;
    }
    if (c->ex->h.px.res_head_done && c->ex->h.px.res_body.kind == HTTP_BODY_UNTIL_CLOSE) {
        c->ex->h.px.up_eof = true; /* the end of the body; scan_response_body finishes it */
        c->close_after = true;
        return n;
    }
    if (!c->ex->h.px.res_head_done) {
        lb_server_report_failure(up->srv, &c->peer.sa);
        hp_conn_fail(c, 502, "server closed the connection in the response head");
        return n;
    }
    log_warn("http", "server %s closed the connection mid-body (backend %s)", up->srv->conf->name,
             c->ex->be->conf->name);
    hp_conn_fail(c, 502, "server closed the connection mid-body");
    return n;
}

static void on_upstream_event(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    struct lb_upstream *up = io->data;
    struct hp_conn *c = up->owner;
    if (c == NULL || c->ex->h.px.up != up) {
        lb_upstream_close(up);
        return;
    }
    if ((events & EV_READ) != 0) { /* connected: the session watched the connect */
        (void)upstream_input(c);   /* what it read is in up->in, a failure in the exchange */
    }
    if (c->ex->h.px.up == up && (events & EV_WRITE) != 0) {
        c->ex->h.px.up_write_blocked = false;
    }
    hp_conn_step(c);
}

static void dechunk_data(void *ctx, const char *data, size_t len)
{
    struct hp_conn *c = ctx;
    c->ex->h.px.res_body.data_bytes += len;
    bool ok = buf_append(&c->out, data, len);
    (void)ok; /* the scan is bounded by the room in out, so it always fits */
}

/* Write the response head for the client into out, taking out's storage from the pool
 * first (a connection holds none until a response starts) and growing it once for a large
 * head. Returns 0, or -1 when it does not fit (or out of memory). */
static int put_response_head(struct hp_conn *c, const char *buf, const struct http_rewrite_res *opt)
{
    if (http_buf_acquire(&c->out) != 0) {
        return -1;
    }
    if (http_rewrite_response(&c->ex->res, buf, opt, &c->out) == 0) {
        return 0;
    }
    if (buf_grow(&c->out, HP_OUT_MAX) != 0) {
        return -1;
    }
    return http_rewrite_response(&c->ex->res, buf, opt, &c->out) == 0 ? 0 : -1;
}

static void start_response(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->h.px.up;
    const char *buf = buf_head(&up->in);
    c->ex->status = c->ex->res.status;
    enum http_body_kind kind = http_response_body_kind(&c->ex->res, c->ex->method);
    hp_body_init(&c->ex->h.px.res_body, kind, c->ex->res.content_length);
    struct http_rewrite_res opt = {.served_by = c->fe->conf->served_by, .hsts = hsts_of(c)};
    if (c->ex->req_minor == 0) {
        c->ex->h.px.dechunk = kind == HTTP_BODY_CHUNKED;
        if (kind == HTTP_BODY_CHUNKED || kind == HTTP_BODY_UNTIL_CLOSE) {
            c->close_after = true;
        }
        opt.drop_framing = c->ex->h.px.dechunk;
    }
    if (kind == HTTP_BODY_UNTIL_CLOSE) {
        c->close_after = true;
    }
    if (!c->ex->req_body.is_done) {
        c->close_after = true; /* early response: the rest of the request cannot be parsed */
    }
    if (c->gen != c->w->gen) {
        /* A reload happened: finish this exchange on the old configuration, and tell the
         * client in this very response not to send another request here. */
        c->close_after = true;
    }
    opt.is_close = c->close_after || !c->ex->req_keepalive || c->client_eof;
    opt.is_keepalive_10 = c->ex->req_minor == 0 && !opt.is_close;
    if (put_response_head(c, buf, &opt) != 0) {
        hp_conn_fail(c, 502, "response head too large");
        return;
    }
    c->ex->h.px.res_head_done = true;
    buf_consume(&up->in, c->ex->res.head_len);
    c->ex->h.px.res_scanned = c->ex->h.px.res_sent = 0;
}

/* 101 to an upgrade request: the 101 head goes into out, then the connection is handed to
 * http_tunnel.c with everything buffered either way, and this hp_conn is freed. */
static void start_tunnel(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->h.px.up;
    if (c->ex->h.px.rhead_sent < c->ex->h.px.rhead.len) {
        hp_conn_fail(c, 502, "server switched protocols before reading the request");
        return;
    }
    struct http_rewrite_res opt = {
        .served_by = c->fe->conf->served_by, .is_upgrade = true, .hsts = hsts_of(c)};
    if (put_response_head(c, buf_head(&up->in), &opt) != 0) {
        hp_conn_fail(c, 502, "response head too large");
        return;
    }
    buf_consume(&up->in, c->ex->res.head_len);
    c->ex->status = 101;
    metrics_add(&metrics_local(up->srv->metrics)->requests[1], 1);
    metrics_backend_observe(c->ex->be->metrics, monotonic_us() - c->ex->h.px.t_sent_us);
    hp_exchange_account(c);
    ev_io_stop(c->w->loop, &c->io);
    ev_timer_stop(c->w->loop, &c->timer);
    ev_timer_stop(c->w->loop, &up->timer);
    if (http_tunnel_start(c) != 0) {
        hp_conn_close(c, "cannot start the tunnel");
        return;
    }
    /* The tunnel owns the sockets, the server slot and the bytes now: free only the rest. */
    hp_conn_handed_over(c, "upgraded to a tunnel");
}

/* Interim (1xx) responses are passed to HTTP/1.1 clients and skipped for 1.0 ones. */
static void forward_interim(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->h.px.up;
    if (c->ex->req_minor == 1) {
        struct http_rewrite_res opt = {.served_by = c->fe->conf->served_by, .hsts = hsts_of(c)};
        if (put_response_head(c, buf_head(&up->in), &opt) != 0) {
            hp_conn_fail(c, 502, "interim response head too large");
            return;
        }
    }
    buf_consume(&up->in, c->ex->res.head_len);
    http_parser_init(&c->ex->h.px.rparser, true, 8192, 16384);
}

static void parse_response(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->h.px.up;
    while (!c->ex->h.px.res_head_done && c->ex->h.px.up != NULL && up->in.len > 0) {
        int rc = http_parse_head(&c->ex->h.px.rparser, buf_head(&up->in), up->in.len, &c->ex->res);
        if (rc == -EAGAIN) {
            if (buf_tailroom(&up->in) == 0 && up->in.off == 0 && up->in.cap >= HP_UP_IN_MAX) {
                hp_conn_fail(c, 502, "response head too large");
            }
            return;
        }
        if (rc != 0) {
            lb_server_report_failure(up->srv, &c->peer.sa);
            log_warn("http", "invalid response from server %s: %s", up->srv->conf->name,
                     c->ex->h.px.rparser.error != NULL ? c->ex->h.px.rparser.error : "malformed");
            hp_conn_fail(c, 502, "invalid response from server");
            return;
        }
        if (c->ex->res.status == 101) {
            if (!c->ex->h.px.is_upgrade) {
                hp_conn_fail(c, 502, "server switched protocols without being asked");
            } else {
                start_tunnel(c);
            }
            return;
        }
        if (c->ex->res.status < 200) {
            forward_interim(c);
            continue;
        }
        start_response(c);
    }
}

static int scan_response_body(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->h.px.up;
    while (!c->ex->h.px.res_body.is_done && c->ex->h.px.res_scanned < up->in.len) {
        const char *p = buf_head(&up->in) + c->ex->h.px.res_scanned;
        size_t avail = up->in.len - c->ex->h.px.res_scanned;
        size_t n;
        if (c->ex->h.px.dechunk) {
            /* Data goes through out, so scan no more than out can take. */
            size_t room = buf_tailroom(&c->out);
            if (room == 0) {
                buf_compact(&c->out);
                room = buf_tailroom(&c->out);
            }
            if (room == 0) {
                return 0;
            }
            avail = avail < room ? avail : room;
            int rc = hp_body_scan(&c->ex->h.px.res_body, p, avail, &n, dechunk_data, c);
            if (rc != 0) {
                return rc;
            }
            c->ex->h.px.res_scanned += n;
            /* Their payload is in out now: consider the raw bytes sent. */
            buf_consume(&up->in, c->ex->h.px.res_scanned);
            c->ex->h.px.res_scanned = c->ex->h.px.res_sent = 0;
            continue;
        }
        int rc = hp_body_scan(&c->ex->h.px.res_body, p, avail, &n, NULL, NULL);
        if (rc != 0) {
            return rc;
        }
        c->ex->h.px.res_scanned += n;
        if (n == 0) {
            break;
        }
    }
    if (c->ex->h.px.res_body.kind == HTTP_BODY_UNTIL_CLOSE && c->ex->h.px.up_eof &&
        c->ex->h.px.res_scanned == up->in.len) {
        c->ex->h.px.res_body.is_done = true;
    }
    return 0;
}

static uint32_t upstream_interest(const struct hp_conn *c);

/* Bytes the server's transport decoded and keeps (TLS records read ahead) make its fd
 * readable no more: take them while the exchange wants the response and has room, and
 * have the pump pass again for what they bring (else a response whose rest sat in OpenSSL
 * while the buffer was full would stall). Called before and after forwarding; a partial
 * record reads nothing (-EAGAIN) and its rest makes the fd readable. */
static void upstream_take_pending(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->h.px.up;
    if (!up->is_connected || !http_xprt_has_pending(&up->xp) ||
        (upstream_interest(c) & EV_READ) == 0) {
        return;
    }
    if (upstream_input(c) > 0 && c->state == HP_STATE_EXCHANGE && c->ex->h.px.up == up) {
        c->ex->moves++;
    }
}

static void exchange_step(struct hp_conn *c)
{
    upstream_take_pending(c);
    if (c->state != HP_STATE_EXCHANGE) {
        return;
    }
    int rc = scan_request_body(c);
    if (rc == -EFBIG) {
        c->close_after = true;
        hp_conn_fail(c, 413, "request body larger than max_body");
        return;
    }
    if (rc != 0) {
        c->close_after = true;
        hp_conn_fail(c, 400,
                     c->ex->req_body.ck.error != NULL ? c->ex->req_body.ck.error
                                                      : "bad chunked body");
        return;
    }
    if (c->ex->h.px.up->is_connected && !c->ex->h.px.up_write_blocked) {
        rc = upstream_flush(c);
        if (rc != 0) {
            upstream_failed(c, c->ex->h.px.rhead_sent == 0, 502,
                            "cannot send the request to the server");
            return;
        }
    }
    release_sent_body(c);
    parse_response(c);
    if (c->state != HP_STATE_EXCHANGE) {
        return;
    }
    if (!c->ex->h.px.res_head_done) {
        /* Interim responses (100 Continue) must reach the client now. */
        if (c->out.len != 0 && !c->client_write_blocked && client_flush(c) != 0) {
            hp_conn_close(c, "client write failed");
        }
        return;
    }
    rc = scan_response_body(c);
    if (rc != 0) {
        lb_server_report_failure(c->ex->h.px.up->srv, &c->peer.sa);
        hp_conn_fail(c, 502, "invalid chunked response body");
        return;
    }
    if (!c->client_write_blocked) {
        rc = client_flush(c);
        if (rc != 0) {
            hp_conn_close(c, "client write failed");
            return;
        }
    }
    /* Forwarding made room: what the transport still holds comes now (the next pass sends
     * it), as no readiness will announce it. */
    upstream_take_pending(c);
    if (c->state != HP_STATE_EXCHANGE) {
        return;
    }
    if (c->ex->h.px.res_body.is_done && c->out.len == 0 &&
        c->ex->h.px.res_sent == c->ex->h.px.res_scanned) {
        if (!c->ex->req_body.is_done || c->ex->h.px.body_sent < c->ex->body_scanned) {
            /* The server answered before reading the whole request: no reuse. */
            c->ex->h.px.up->is_connected = false;
            c->close_after = true;
        }
        finish_exchange(c);
    }
}

static uint32_t upstream_interest(const struct hp_conn *c)
{
    const struct lb_upstream *up = c->ex->h.px.up;
    if (c->state == HP_STATE_CONNECTING) {
        return EV_WRITE;
    }
    uint32_t ev = 0;
    if (!c->ex->h.px.up_eof && (!c->ex->h.px.res_body.is_done || !c->ex->h.px.res_head_done)) {
        if (buf_tailroom(&up->in) > 0 || c->ex->h.px.res_sent > 0 || up->in.off > 0 ||
            up->in.cap < HP_UP_IN_MAX) {
            ev |= EV_READ;
        }
    }
    if (c->ex->h.px.up_write_blocked) {
        ev |= EV_WRITE;
    }
    return ev;
}

/* In an exchange the client timer runs only while keel waits for the client (more request
 * body, or room to write the response) and the server timer only while it waits for the
 * server: a POST whose response took longer than timeout_client got 408, and a client
 * reading slowly was cut by timeout_server (issue 10). */
static void exchange_timers(struct hp_conn *c)
{
    struct ev_loop *loop = c->w->loop;
    bool wait_client =
        (!c->ex->req_body.is_done && hp_conn_in_can_take_more(c)) || c->client_write_blocked;
    if (!wait_client) {
        ev_timer_stop(loop, &c->timer);
    } else if (!ev_timer_is_active(&c->timer)) {
        ev_timer_start(loop, &c->timer, c->fe->conf->timeout_client_ms);
    }
    struct lb_upstream *up = c->ex->h.px.up;
    if (up != NULL && up->is_connected) {
        if ((upstream_interest(c) & EV_READ) == 0 && !c->ex->h.px.up_write_blocked) {
            ev_timer_stop(loop, &up->timer);
        } else if (!ev_timer_is_active(&up->timer)) {
            ev_timer_start(loop, &up->timer, c->ex->be->conf->timeout_server_ms);
        }
    }
}

/* ---------------------------------------------------------------- the handler */

/* Drop what the proxy holds: its place in the queue, the server connection, the slot and
 * the request head. Idempotent. */
static void proxy_release(struct hp_conn *c)
{
    drop_upstream(c);
    lb_session_release(&c->ex->h.px.sess); /* the slot, the place in the queue, the timer */
    http_buf_release(&c->ex->h.px.rhead);
}

static void proxy_step(struct hp_conn *c)
{
    if (c->state == HP_STATE_EXCHANGE) {
        exchange_step(c);
    } else if (c->client_eof && !c->ex->req_body.is_done) {
        hp_conn_close(c, "client closed while waiting for a server");
    }
}

/* After the steps: the timers of the exchange and the server socket's interest. */
static void proxy_sync(struct hp_conn *c)
{
    if (c->state == HP_STATE_EXCHANGE) {
        exchange_timers(c);
    }
    struct lb_upstream *up = c->ex->h.px.up;
    if (up != NULL &&
        ev_io_set(c->w->loop, &up->io, http_xprt_events(&up->xp, upstream_interest(c))) != 0) {
        hp_conn_fail(c, 502, "epoll failed");
    }
}

const struct hp_handler hp_proxy_handler = {
    .name = "proxy",
    .step = proxy_step,
    .sync = proxy_sync,
    .release = proxy_release,
};

/* Write the request head for the server into the proxy's rhead. Returns 0, or fails the
 * request and returns -1. */
static int rewrite_head(struct hp_conn *c, const char *buf)
{
    const struct conf_frontend *cf = c->fe->conf;
    struct hp_proxy *px = &c->ex->h.px;
    char ip[SOCK_IP_MAX];
    struct http_rewrite_req opt = {.client_ip = hp_conn_ip(c, ip),
                                   .proto = http_xprt_is_secure(&c->xp) ? "https" : "http",
                                   .served_by = cf->served_by,
                                   .is_upgrade = px->is_upgrade};
    int rc = http_buf_acquire(&px->rhead);
    if (rc == 0) {
        rc = http_rewrite_request(&c->ex->req, buf, &opt, &px->rhead);
    }
    if (rc == -ENOMEM) {
        hp_conn_fail(c, 503, "out of memory");
        return -1;
    }
    if (rc == -ENOSPC && buf_grow(&px->rhead, cf->max_header + HP_RHEAD_EXTRA) == 0) {
        rc = http_rewrite_request(&c->ex->req, buf, &opt, &px->rhead);
    }
    if (rc != 0) {
        hp_conn_fail(c, rc == -KEEL_EHTTP_BAD_REQUEST ? 400 : 431,
                     rc == -KEEL_EHTTP_BAD_REQUEST ? "too many headers named in Connection"
                                                   : "request head too large to forward");
        return -1;
    }
    return 0;
}

void hp_proxy_start(struct hp_conn *c)
{
    const char *buf = buf_head(&c->in);
    const struct conf_frontend *cf = c->fe->conf;
    struct hp_exchange *ex = c->ex;
    ex->handler = &hp_proxy_handler; /* h.px is zero: nothing held yet */
    lb_session_init(&ex->h.px.sess, c->w, ex->be, &c->peer.sa, &hp_session_ops, c);
    ex->h.px.is_idempotent = http_method_is_idempotent(ex->method);
    if (ex->req_body.kind == HTTP_BODY_LENGTH && cf->max_body != 0 &&
        ex->req.content_length > cf->max_body) {
        c->close_after = true;
        hp_conn_fail(c, 413, "request body larger than max_body");
        return;
    }
    /* An upgrade with a request body is not tunnelled: where the body would end and the
     * new protocol begin is not worth the ambiguity (WebSocket handshakes have none). */
    ex->h.px.is_upgrade = ex->req_body.is_done && http_tunnel_requested(&ex->req, buf);
    if (rewrite_head(c, buf) != 0) {
        return;
    }
    buf_consume(&c->in, ex->req.head_len);
    ex->body_scanned = 0;
    if (!ex->req_body.is_done) {
        ev_timer_start(c->w->loop, &c->timer, cf->timeout_client_ms);
    }
    lb_session_start(&ex->h.px.sess);
}
