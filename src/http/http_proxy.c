/* SPDX-License-Identifier: MIT */
/* The HTTP/1.1 proxy state machine: one client connection (struct hp_conn) carrying a
 * sequence of exchanges. Reads are driven by readiness, writes are attempted at once and
 * fall back to write interest. Memory per connection is bounded by its buffers: bodies are
 * streamed, never accumulated. Server connections come from the worker's pools.
 * Error replies and the access log are in http_reply.c. */
#include "http/http_proxy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sock.h"
#include "http/http_proxy-t.h"
#include "http/http_reply.h"
#include "http/http_filecache.h"
#include "http/http_path.h"
#include "http/http_pool.h"
#include "http/http_rewrite.h"
#include "http/http_static.h"
#include "http/http_transport.h"
#include "http/http_tunnel.h"
#include "lb/lb.h"

/* Buffers come from the thread's pool at HTTP_POOL_BUF_SIZE (4 KiB) and grow once, to their
 * maximum, when a head or a body needs it; an idle connection holds none (http_pool.h):
 * memory per connection is what limits concurrency. */
#define HP_IN_MAX 16384
#define HP_UP_IN_MAX 16384
#define HP_OUT_MAX 16384
#define HP_RHEAD_EXTRA 1024
#define HP_LINGER_MS 2000

static const char *const hp_state_names[] = {
    "idle", "read-head", "queued", "connecting", "exchange", "local", "reply", "linger", "closed"};

static void hp_step(struct hp_conn *c);
static void release_local_body(struct hp_conn *c);

static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
static void hp_connect(struct hp_conn *c);
static void on_upstream_event(struct ev_loop *loop, struct ev_io *io, uint32_t events);
static void on_upstream_timeout(struct ev_loop *loop, struct ev_timer *t);

/* The one transition function: refuses to leave CLOSED and logs every move at debug. */
static void hp_set_state(struct hp_conn *c, enum hp_state to, const char *reason)
{
    enum hp_state from = c->state;
    if (from == HP_STATE_CLOSED) {
        log_error("http", "illegal transition %s -> %s (%s)", hp_state_names[from],
                  hp_state_names[to], reason);
        return;
    }
    c->state = to;
    log_debug("http", "conn %d: %s -> %s (%s)", c->xp.fd, hp_state_names[from], hp_state_names[to],
              reason);
}

/* ---------------------------------------------------------------- lifecycle */

/* The server connection of the exchange in flight, or NULL. */
static const struct lb_upstream *current_up(const struct hp_conn *c)
{
    return c->ex != NULL ? c->ex->up : NULL;
}

/* Exchanges come from a per-thread pool: taken when a request head starts, given back when
 * its response is out. 64 per thread covers the requests a worker has in flight at once. */
static _Thread_local struct http_pool exchange_pool =
    HTTP_POOL_INIT(sizeof(struct hp_exchange), 64);

/* Take an exchange for the request whose first bytes are in c->in. Returns 0 or -ENOMEM. */
static int exchange_begin(struct hp_conn *c)
{
    /* Every response keel sends starts with a head keel writes into out. */
    if (http_buf_acquire(&c->out) != 0) {
        return -ENOMEM;
    }
    struct hp_exchange *ex = http_pool_get(&exchange_pool);
    if (ex == NULL) {
        return -ENOMEM;
    }
    /* The parsed heads at the end are written by the parser before they are read. */
    memset(ex, 0, offsetof(struct hp_exchange, log_copy));
    ex->conn = c;
    ex->be = c->fe->backend;
    ex->file_fd = -1;
    ex->req_bytes = c->in.len;
    ex->log = c->fe->access_log_fd != -1 ? &ex->log_copy : NULL;
    c->ex = ex;
    return 0;
}

/* Give the exchange back (with its request head buffer). The file or memory body, the
 * server slot and the server connection must have been released. */
static void exchange_end(struct hp_conn *c)
{
    struct hp_exchange *ex = c->ex;
    if (ex != NULL) {
        http_buf_release(&ex->rhead);
        c->ex = NULL;
        http_pool_put(&exchange_pool, ex);
    }
}

static void hp_free(struct ev_loop *loop, void *data)
{
    (void)loop;
    struct hp_conn *c = data;
    http_buf_release(&c->in);
    http_buf_release(&c->out);
    exchange_end(c);
    lb_gen_unref(c->gen);
    free(c);
}

static void release_slot(struct hp_conn *c)
{
    if (c->ex != NULL && c->ex->srv != NULL) {
        lb_server_release(c->ex->srv);
        c->ex->srv = NULL;
        if (c->w->n_waiters > 0) {
            lb_worker_kick_queue(c->w);
        }
    }
}

static void drop_upstream(struct hp_conn *c)
{
    if (c->ex != NULL && c->ex->up != NULL) {
        c->ex->up->owner = NULL;
        lb_upstream_close(c->ex->up);
        c->ex->up = NULL;
    }
}

static void hp_close(struct hp_conn *c, const char *reason)
{
    if (c->state == HP_STATE_CLOSED) {
        return;
    }
    hp_set_state(c, HP_STATE_CLOSED, reason);
    if (c->ex != NULL) {
        release_local_body(c);
        lb_worker_dequeue(c->w, &c->ex->waiter);
        drop_upstream(c);
        release_slot(c);
    }
    ev_io_stop(c->w->loop, &c->io);
    ev_timer_stop(c->w->loop, &c->timer);
    http_xprt_close(&c->xp);
    metrics_add(&metrics_local(c->fe->metrics)->connections_closed, 1);
    lb_worker_conn_remove(c->w, &c->base);
    ev_defer(c->w->loop, &c->defer, hp_free, c);
}

/* Close after what is already queued for the client: shut the write side, then discard
 * input until the client closes, so unread bytes do not turn our close into a reset that
 * destroys the response before the client read it. */
static void hp_linger(struct hp_conn *c)
{
    drop_upstream(c);
    release_slot(c);
    hp_set_state(c, HP_STATE_LINGER, "closing");
    (void)http_xprt_shutdown(&c->xp); /* failure: the peer is gone, the read sees it */
    ev_timer_start(c->w->loop, &c->timer, HP_LINGER_MS);
    if (ev_io_set(c->w->loop, &c->io, http_xprt_events(&c->xp, EV_READ)) != 0) {
        hp_close(c, "epoll failed");
    }
}

static void on_drain(struct lb_conn_base *base)
{
    struct hp_conn *c = (struct hp_conn *)base;
    if (c->state == HP_STATE_IDLE && c->in.len == 0) {
        hp_close(c, "draining");
    } else {
        c->close_after = true;
    }
}

/* ---------------------------------------------------------------- client I/O */

/* The largest `in` may grow to: a whole request head plus some pipelined bytes. */
static size_t in_max(const struct hp_conn *c)
{
    size_t m = (size_t)c->fe->conf->max_header + HP_RHEAD_EXTRA;
    return m > HP_IN_MAX ? m : HP_IN_MAX;
}

/* Whether `in` can take more bytes, if need be after compacting or growing. */
static bool in_can_take_more(const struct hp_conn *c)
{
    return buf_tailroom(&c->in) > 0 || c->in.off > 0 || c->in.cap < in_max(c);
}

/* Read from the client into `in`. Returns bytes read, 0 on EOF, -EAGAIN, or -errno. */
static ssize_t client_read(struct hp_conn *c)
{
    if (c->in.data == NULL && http_buf_acquire(&c->in) != 0) {
        return -ENOMEM; /* out of memory: this connection ends (counted as a read error) */
    }
    if (buf_tailroom(&c->in) == 0) {
        buf_compact(&c->in);
        if (buf_tailroom(&c->in) == 0 &&
            (c->in.cap >= in_max(c) || buf_grow(&c->in, in_max(c)) != 0)) {
            return -ENOBUFS;
        }
    }
    ssize_t n = http_xprt_read(&c->xp, buf_tail(&c->in), buf_tailroom(&c->in));
    if (n < 0) {
        return n;
    }
    buf_commit(&c->in, (size_t)n);
    /* A transport that keeps decoded bytes (TLS) gets no readiness for them: take them. */
    while (buf_tailroom(&c->in) > 0 && http_xprt_has_pending(&c->xp)) {
        ssize_t more = http_xprt_read(&c->xp, buf_tail(&c->in), buf_tailroom(&c->in));
        if (more <= 0) {
            break;
        }
        buf_commit(&c->in, (size_t)more);
        n += more;
    }
    metrics_add(&metrics_local(c->fe->metrics)->bytes_in, (uint64_t)n);
    if (c->ex != NULL) {
        c->ex->req_bytes += (uint64_t)n; /* else counted when the exchange starts */
    }
    return n;
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
        if (c->ex->up != NULL && c->ex->res_sent < c->ex->res_scanned) {
            iov[n_iov].iov_base = buf_head(&c->ex->up->in) + c->ex->res_sent;
            iov[n_iov++].iov_len = c->ex->res_scanned - c->ex->res_sent;
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
        if (c->state == HP_STATE_EXCHANGE && c->ex->res_head_done) {
            c->ex->res_started = true;
        }
        size_t from_out = done < c->out.len ? done : c->out.len;
        buf_consume(&c->out, from_out);
        c->ex->res_sent += done - from_out;
    }
}

/* ---------------------------------------------------------------- body framing */

static void body_init(struct hp_body *b, enum http_body_kind kind, uint64_t length)
{
    b->kind = kind;
    b->remaining = length;
    b->data_bytes = 0;
    http_chunked_init(&b->ck);
    b->is_done = kind == HTTP_BODY_NONE || (kind == HTTP_BODY_LENGTH && length == 0);
}

static void count_chunk_data(void *ctx, const char *data, size_t len)
{
    (void)data;
    ((struct hp_body *)ctx)->data_bytes += len;
}

/* Scan p[0, len), the next bytes of a body. *n = how many belong to it. Returns 0 or
 * -KEEL_EHTTP_BAD_REQUEST on malformed chunked framing. */
static int body_scan(struct hp_body *b, const char *p, size_t len, size_t *n,
                     http_chunk_data_fn on_data, void *ctx)
{
    *n = 0;
    if (b->is_done || len == 0) {
        return 0;
    }
    switch (b->kind) {
    case HTTP_BODY_LENGTH: {
        size_t take = b->remaining < len ? (size_t)b->remaining : len;
        b->remaining -= take;
        b->data_bytes += take;
        *n = take;
        b->is_done = b->remaining == 0;
        if (on_data != NULL) {
            on_data(ctx, p, take);
        }
        return 0;
    }
    case HTTP_BODY_CHUNKED: {
        size_t consumed = 0;
        int rc = http_chunked_scan(&b->ck, p, len, &consumed,
                                   on_data != NULL ? on_data : count_chunk_data,
                                   on_data != NULL ? ctx : b);
        if (rc == 0) {
            b->is_done = true;
        } else if (rc != -EAGAIN) {
            return rc;
        }
        *n = consumed;
        return 0;
    }
    case HTTP_BODY_UNTIL_CLOSE:
        b->data_bytes += len;
        *n = len;
        if (on_data != NULL) {
            on_data(ctx, p, len);
        }
        return 0;
    case HTTP_BODY_NONE:
        break;
    }
    return 0;
}

/* ---------------------------------------------------------------- exchange end */

/* Give back what an idle connection does not need: the exchange, the output buffer and,
 * unless pipelined bytes wait in it, the input buffer. The next request takes them again
 * from the thread's pools (http_pool.h). */
static void release_idle_memory(struct hp_conn *c)
{
    exchange_end(c);
    if (c->out.len == 0) {
        http_buf_release(&c->out);
    }
    if (c->in.len == 0) {
        http_buf_release(&c->in);
    }
}

static void reset_for_next_request(struct hp_conn *c)
{
    /* The request body (scanned part) is done; what follows in `in` is pipelined. */
    buf_consume(&c->in, c->ex->body_scanned);
    release_idle_memory(c);
    http_parser_init(&c->parser, false, c->fe->conf->max_request_line, c->fe->conf->max_header);
    hp_set_state(c, HP_STATE_IDLE, "keep-alive");
    ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_idle_ms);
}

/* Account for a finished request (with or without a response). */
static void hp_account(struct hp_conn *c)
{
    unsigned cls = metrics_class(c->ex->status);
    metrics_add(&metrics_local(c->fe->metrics)->requests[cls], 1);
    if (c->ex->be != NULL && c->ex->status != 0) {
        metrics_add(&metrics_local(c->ex->be->metrics)->requests[cls], 1);
    }
    http_reply_access_log(c);
}

static void finish_exchange(struct hp_conn *c)
{
    uint64_t now = ev_now_ms(c->w->loop);
    struct lb_upstream *up = c->ex->up;
    metrics_add(&metrics_local(up->srv->metrics)->requests[metrics_class(c->ex->status)], 1);
    (void)now;
    metrics_backend_observe(c->ex->be->metrics, monotonic_us() - c->ex->t_sent_us);
    hp_account(c);
    c->ex->up = NULL;
    ev_timer_stop(c->w->loop, &up->timer);
    bool reusable = up->is_connected && !c->ex->up_eof &&
                    c->ex->res_body.kind != HTTP_BODY_UNTIL_CLOSE &&
                    http_msg_keepalive(&c->ex->res) && c->ex->req_body.is_done &&
                    c->ex->body_sent == c->ex->body_scanned && up->in.len == c->ex->res_scanned;
    buf_consume(&up->in, c->ex->res_scanned);
    up->requests++;
    if (reusable) {
        lb_pool_put(c->w, up);
    } else {
        up->owner = NULL;
        lb_upstream_close(up);
    }
    release_slot(c);
    bool keep =
        !c->close_after && c->ex->req_keepalive && c->ex->req_body.is_done && !c->client_eof;
    if (!keep) {
        if (c->out.len == 0) {
            hp_linger(c);
        } else {
            hp_set_state(c, HP_STATE_REPLY, "last response");
        }
        return;
    }
    reset_for_next_request(c);
}

/* Answer the current request with a keel-made response and close (see http_reply.c). */
static void hp_fail(struct hp_conn *c, int status, const char *detail)
{
    lb_worker_dequeue(c->w, &c->ex->waiter);
    if (c->ex->res_started) {
        /* Part of a response is already out: the only honest signal left is a close. */
        log_warn("http", "closing %s mid-response: %s", c->peer_ip, detail);
        c->ex->error_detail = detail;
        hp_account(c);
        hp_close(c, detail);
        return;
    }
    drop_upstream(c);
    release_slot(c);
    c->out.off = c->out.len = 0;
    c->ex->status = status;
    c->ex->error_detail = detail;
    http_reply_error(c, status, detail);
    hp_account(c);
    hp_set_state(c, HP_STATE_REPLY, detail);
    ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_client_ms);
}

/* ---------------------------------------------------------------- request start */

static void copy_log_fields(struct hp_conn *c, const char *buf)
{
    struct hp_logreq *lr = c->ex->log;
    const struct http_msg *m = &c->ex->req;
    snprintf(lr->method, sizeof(lr->method), "%.*s", (int)m->method_span.len,
             buf + m->method_span.off);
    snprintf(lr->target, sizeof(lr->target), "%.*s", (int)m->target.len, buf + m->target.off);
    lr->referer[0] = lr->user_agent[0] = '\0';
    int i = http_msg_find(m, buf, "referer", 7);
    if (i >= 0) {
        snprintf(lr->referer, sizeof(lr->referer), "%.*s", (int)m->headers[i].value.len,
                 buf + m->headers[i].value.off);
    }
    i = http_msg_find(m, buf, "user-agent", 10);
    if (i >= 0) {
        snprintf(lr->user_agent, sizeof(lr->user_agent), "%.*s", (int)m->headers[i].value.len,
                 buf + m->headers[i].value.off);
    }
    lr->minor = m->version_minor;
}

/* ---------------------------------------------------------------- local responses */

/* A local response never reads the request body, so a request that has one ends the
 * connection. Called before the response head is written (it says Connection: close). */
static void local_body_unread(struct hp_conn *c)
{
    if (!c->ex->req_body.is_done) {
        c->close_after = true;
    }
}

/* Send the local response prepared in out (and file_* / mem_body): HP_STATE_LOCAL. */
static void start_local(struct hp_conn *c)
{
    buf_consume(&c->in, c->ex->req.head_len);
    c->ex->body_scanned = c->ex->body_sent = 0;
    c->ex->res_bytes = 0;
    hp_set_state(c, HP_STATE_LOCAL, "local response");
    ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_client_ms);
}

static void respond_locally(struct hp_conn *c, int status, const char *why)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, http_status_reason(status), why);
    local_body_unread(c);
    http_local_respond(c, status, "", body, n > 0 ? (size_t)n : 0);
    start_local(c);
}

static void release_local_body(struct hp_conn *c)
{
    if (c->ex->file_entry != NULL) {
        http_filecache_release(c->ex->file_entry);
        c->ex->file_entry = NULL;
    } else if (c->ex->file_fd != -1) {
        close(c->ex->file_fd);
    }
    c->ex->file_fd = -1;
    c->ex->file_left = 0;
    free(c->ex->mem_body);
    c->ex->mem_body = NULL;
    c->ex->mem_len = c->ex->mem_sent = 0;
}

/* Choose the location of the request. Returns true when keel answers it itself (the
 * response is prepared and HP_STATE_LOCAL entered), false to proxy it to c->ex->be. */
static bool route_request(struct hp_conn *c)
{
    char path[1024];
    size_t plen = 0;
    const struct http_msg *m = &c->ex->req;
    int rc = http_path_normalize(buf_head(&c->in) + m->target.off, m->target.len, path,
                                 sizeof(path), &plen);
    if (rc == -KEEL_EHTTP_BAD_REQUEST) {
        c->close_after = true;
        hp_fail(c, 400, "invalid request path");
        return true;
    }
    if (rc != 0) {
        respond_locally(c, rc == -EACCES ? 403 : 404,
                        rc == -EACCES ? "the path leaves the root" : "not found");
        return true;
    }
    int i = http_location_match(c->fe->conf, path, plen);
    if (i < 0) {
        return false;
    }
    const struct conf_location *loc = &c->fe->conf->locations[i];
    switch (loc->action) {
    case CONF_LOC_PROXY:
        c->ex->be = c->fe->loc_backends[i];
        return false;
    case CONF_LOC_STATIC:
        local_body_unread(c);
        http_static_respond(c, loc, c->fe->loc_root_fds[i], path, plen);
        break;
    case CONF_LOC_RETURN:
        local_body_unread(c);
        http_return_respond(c, loc);
        break;
    case CONF_LOC_NONE:
        respond_locally(c, 500, "location without an action");
        return true;
    }
    start_local(c);
    return true;
}

static void finish_local(struct hp_conn *c)
{
    release_local_body(c);
    hp_account(c);
    bool keep =
        !c->close_after && c->ex->req_keepalive && c->ex->req_body.is_done && !c->client_eof;
    if (!keep) {
        hp_linger(c);
        return;
    }
    reset_for_next_request(c);
}

/* Push the local response out: head (corked with MSG_MORE when a body follows), then
 * the memory body or the file with sendfile. */
static void local_step(struct hp_conn *c)
{
    while (!c->client_write_blocked) {
        ssize_t n;
        bool more = c->ex->file_left > 0 || c->ex->mem_sent < c->ex->mem_len;
        if (c->out.len > 0) {
            n = http_xprt_write(&c->xp, buf_head(&c->out), c->out.len, more ? HTTP_XPRT_MORE : 0);
        } else if (c->ex->mem_sent < c->ex->mem_len) {
            n = http_xprt_write(&c->xp, c->ex->mem_body + c->ex->mem_sent,
                                c->ex->mem_len - c->ex->mem_sent, 0);
        } else if (c->ex->file_left > 0) {
            uint64_t off = c->ex->file_off;
            size_t chunk = c->ex->file_left < (1u << 20) ? (size_t)c->ex->file_left : (1u << 20);
            n = http_xprt_sendfile(&c->xp, c->ex->file_fd, &off, chunk);
            if (n == 0) {
                hp_close(c, "file shrank while being sent");
                return;
            }
        } else {
            finish_local(c);
            return;
        }
        if (n < 0) {
            if (n == -EAGAIN) {
                c->client_write_blocked = true;
                return;
            }
            hp_close(c, "client write failed");
            return;
        }
        size_t done = (size_t)n;
        metrics_add(&metrics_local(c->fe->metrics)->bytes_out, done);
        c->ex->res_bytes += done;
        ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_client_ms);
        if (c->out.len > 0) {
            buf_consume(&c->out, done);
        } else if (c->ex->mem_sent < c->ex->mem_len) {
            c->ex->mem_sent += done;
        } else {
            c->ex->file_off += done;
            c->ex->file_left -= done;
        }
    }
}

static void start_request(struct hp_conn *c)
{
    const char *buf = buf_head(&c->in);
    const struct conf_frontend *cf = c->fe->conf;
    c->ex->t_start_ms = ev_now_ms(c->w->loop);
    c->ex->method = c->ex->req.method;
    c->ex->req_minor = c->ex->req.version_minor;
    c->ex->req_keepalive = http_msg_keepalive(&c->ex->req);
    c->ex->is_idempotent = http_method_is_idempotent(c->ex->method);
    if (c->ex->log != NULL) {
        copy_log_fields(c, buf);
    }
    enum http_body_kind kind = http_request_body_kind(&c->ex->req);
    body_init(&c->ex->req_body, kind, c->ex->req.content_length);
    c->ex->be = c->fe->backend;
    if (cf->n_locations > 0 && route_request(c)) {
        return;
    }
    if (c->ex->be == NULL) {
        respond_locally(c, 404, "no location matches this path");
        return;
    }
    c->ex->retries_left = c->ex->be->conf->retries;
    if (kind == HTTP_BODY_LENGTH && cf->max_body != 0 && c->ex->req.content_length > cf->max_body) {
        c->close_after = true;
        hp_fail(c, 413, "request body larger than max_body");
        return;
    }
    /* An upgrade with a request body is not tunnelled: where the body would end and the
     * new protocol begin is not worth the ambiguity (WebSocket handshakes have none). */
    c->ex->is_upgrade = c->ex->req_body.is_done && http_tunnel_requested(&c->ex->req, buf);
    struct http_rewrite_req opt = {.client_ip = c->peer_ip,
                                   .proto = "http",
                                   .served_by = cf->served_by,
                                   .is_upgrade = c->ex->is_upgrade};
    int rc = http_buf_acquire(&c->ex->rhead);
    if (rc == 0) {
        rc = http_rewrite_request(&c->ex->req, buf, &opt, &c->ex->rhead);
    }
    if (rc == -ENOMEM) {
        hp_fail(c, 503, "out of memory");
        return;
    }
    if (rc == -ENOSPC && buf_grow(&c->ex->rhead, cf->max_header + HP_RHEAD_EXTRA) == 0) {
        rc = http_rewrite_request(&c->ex->req, buf, &opt, &c->ex->rhead);
    }
    if (rc != 0) {
        hp_fail(c, rc == -KEEL_EHTTP_BAD_REQUEST ? 400 : 431,
                rc == -KEEL_EHTTP_BAD_REQUEST ? "too many headers named in Connection"
                                              : "request head too large to forward");
        return;
    }
    buf_consume(&c->in, c->ex->req.head_len);
    c->ex->body_scanned = c->ex->body_sent = 0;
    c->ex->rhead_sent = 0;
    if (!c->ex->req_body.is_done) {
        ev_timer_start(c->w->loop, &c->timer, cf->timeout_client_ms);
    }
    hp_connect(c);
}

static void parse_head(struct hp_conn *c)
{
    if (c->state == HP_STATE_IDLE) {
        if (c->ex == NULL && exchange_begin(c) != 0) {
            log_warn("http", "out of memory for a request from %s", c->peer_ip);
            hp_close(c, "out of memory");
            return;
        }
        hp_set_state(c, HP_STATE_READ_HEAD, "request bytes");
        ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_header_ms);
    }
    int rc = http_parse_head(&c->parser, buf_head(&c->in), c->in.len, &c->ex->req);
    if (rc == -EAGAIN) {
        if (c->client_eof) {
            hp_close(c, "client closed mid-head");
        }
        return;
    }
    ev_timer_stop(c->w->loop, &c->timer);
    if (rc != 0) {
        metrics_add(&metrics_local(c->fe->metrics)->errors_parse, 1);
        c->close_after = true;
        if (c->ex->log != NULL) {
            snprintf(c->ex->log->method, sizeof(c->ex->log->method), "-");
            snprintf(c->ex->log->target, sizeof(c->ex->log->target), "-");
            c->ex->log->referer[0] = c->ex->log->user_agent[0] = '\0';
            c->ex->log->minor = 1;
        }
        hp_fail(c, http_parse_error_status(rc),
                c->parser.error != NULL ? c->parser.error : "malformed request");
        return;
    }
    start_request(c);
}

/* ---------------------------------------------------------------- choosing a server */

static void on_waiter_ready(struct lb_waiter *waiter)
{
    struct hp_exchange *ex =
        (struct hp_exchange *)((char *)waiter - offsetof(struct hp_exchange, waiter));
    struct hp_conn *c = ex->conn;
    if (c->state != HP_STATE_QUEUED) {
        lb_worker_dequeue(c->w, waiter);
        return;
    }
    struct lb_pick_ctx ctx = {.rng = &c->w->rng};
    unsigned alen;
    const void *ab = sock_addr_bytes((const struct sockaddr *)&c->peer, &alen);
    ctx.client_hash = lb_hash_client(ab, alen);
    struct lb_server *srv;
    int rc = lb_backend_pick(c->ex->be, &ctx, NULL, &srv);
    if (rc == -EBUSY) {
        return;
    }
    lb_worker_dequeue(c->w, waiter);
    if (rc != 0) {
        hp_fail(c, 503, "no server available");
        hp_step(c);
        return;
    }
    ev_timer_stop(c->w->loop, &c->timer);
    c->ex->srv = srv;
    hp_connect(c);
    hp_step(c);
}

static int attach_upstream(struct hp_conn *c, struct lb_upstream *up, bool is_new)
{
    c->ex->up = up;
    up->owner = c;
    c->ex->up_write_blocked = false;
    c->ex->up_eof = false;
    c->ex->res_head_done = false;
    http_parser_init(&c->ex->rparser, true, 8192, 16384);
    ev_timer_init(&up->timer, on_upstream_timeout, up, "upstream");
    if (is_new) {
        hp_set_state(c, HP_STATE_CONNECTING, up->srv->conf->name);
        ev_timer_start(c->w->loop, &up->timer, c->ex->be->conf->timeout_connect_ms);
        return ev_io_start(c->w->loop, &up->io, up->xp.fd, http_xprt_events(&up->xp, EV_WRITE),
                           on_upstream_event, up, "upstream");
    }
    up->io.on_event = on_upstream_event;
    up->io.data = up;
    up->is_connected = true;
    hp_set_state(c, HP_STATE_EXCHANGE, "reused connection");
    c->ex->t_sent_us = monotonic_us();
    ev_timer_start(c->w->loop, &up->timer, c->ex->be->conf->timeout_server_ms);
    return ev_io_set(c->w->loop, &up->io, http_xprt_events(&up->xp, EV_READ));
}

/* After a failure with the current server: retry elsewhere when that is safe, else
 * answer with status. is_conn_failure: the server never got a byte of the request. */
static void upstream_failed(struct hp_conn *c, bool is_conn_failure, int status, const char *detail)
{
    struct lb_upstream *up = c->ex->up;
    bool stale = up != NULL && up->is_reused && !is_conn_failure;
    if (up != NULL && !stale) {
        lb_server_report_failure(up->srv, &c->peer);
        if (is_conn_failure) {
            metrics_add(&metrics_local(up->srv->metrics)->connect_failures, 1);
        } else {
            metrics_add(&metrics_local(up->srv->metrics)->response_failures, 1);
        }
    }
    struct lb_server *failed = c->ex->srv;
    bool buffered = !c->ex->body_consumed && (c->ex->req_body.is_done || c->ex->body_sent == 0);
    bool safe = is_conn_failure || (c->ex->is_idempotent && c->ex->req_body.is_done);
    bool can_retry = buffered && safe && !c->ex->res_started && !c->ex->res_head_done;
    drop_upstream(c);
    if (can_retry && stale && !c->ex->stale_retry_used) {
        /* A pooled connection the server had closed: try a fresh one, same server. */
        c->ex->stale_retry_used = true;
        c->ex->rhead_sent = 0;
        c->ex->body_sent = 0;
        hp_connect(c);
        return;
    }
    release_slot(c);
    if (can_retry && c->ex->retries_left > 0) {
        c->ex->retries_left--;
        c->ex->failed_srv = failed;
        c->ex->rhead_sent = 0;
        c->ex->body_sent = 0;
        metrics_add(&metrics_local(c->ex->be->metrics)->retries, 1);
        log_debug("http", "retrying %s on another server of %s after: %s", c->peer_ip,
                  c->ex->be->conf->name, detail);
        hp_connect(c);
        return;
    }
    hp_fail(c, status, detail);
}

static void hp_connect(struct hp_conn *c)
{
    if (c->ex->srv == NULL) {
        struct lb_pick_ctx ctx = {.rng = &c->w->rng};
        unsigned alen;
        const void *ab = sock_addr_bytes((const struct sockaddr *)&c->peer, &alen);
        ctx.client_hash = lb_hash_client(ab, alen);
        int rc = lb_backend_pick(c->ex->be, &ctx, c->ex->failed_srv, &c->ex->srv);
        if (rc == -EBUSY) {
            if (atomic_load(&c->ex->be->queued) >= c->ex->be->conf->queue_max) {
                hp_fail(c, 503, "backend queue full");
                return;
            }
            c->ex->waiter.be = c->ex->be;
            c->ex->waiter.on_ready = on_waiter_ready;
            lb_worker_enqueue(c->w, &c->ex->waiter);
            metrics_add(&metrics_local(c->ex->be->metrics)->queued_total, 1);
            hp_set_state(c, HP_STATE_QUEUED, "all servers at maxconn");
            ev_timer_start(c->w->loop, &c->timer, c->ex->be->conf->timeout_queue_ms);
            return;
        }
        if (rc != 0) {
            metrics_add(&metrics_local(c->ex->be->metrics)->no_server, 1);
            hp_fail(c, 503, "no server available");
            return;
        }
    }
    struct lb_upstream *up =
        c->ex->stale_retry_used ? NULL : lb_pool_get(c->w, c->ex->be, c->ex->srv);
    int err = 0;
    bool is_new = up == NULL;
    if (is_new) {
        up = lb_upstream_new(c->w, c->ex->be, c->ex->srv, &err);
        if (up == NULL && (err == -EMFILE || err == -ENFILE)) {
            hp_fail(c, 503, "no descriptor for a server connection"); /* ours, not the server's */
            return;
        }
        if (up == NULL) {
            upstream_failed(c, true, 502, "cannot connect to server");
            return;
        }
    }
    if (attach_upstream(c, up, is_new) != 0) {
        upstream_failed(c, true, 502, "cannot watch server connection");
    }
}

/* ---------------------------------------------------------------- upstream I/O */

static int upstream_flush(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->up;
    for (;;) {
        struct iovec iov[2];
        int n_iov = 0;
        if (c->ex->rhead_sent < c->ex->rhead.len) {
            iov[n_iov].iov_base = buf_head(&c->ex->rhead) + c->ex->rhead_sent;
            iov[n_iov++].iov_len = c->ex->rhead.len - c->ex->rhead_sent;
        }
        if (c->ex->body_sent < c->ex->body_scanned) {
            iov[n_iov].iov_base = buf_head(&c->in) + c->ex->body_sent;
            iov[n_iov++].iov_len = c->ex->body_scanned - c->ex->body_sent;
        }
        if (n_iov == 0) {
            c->ex->up_write_blocked = false;
            return 0;
        }
        ssize_t n = http_xprt_writev(&up->xp, iov, n_iov, 0);
        if (n < 0) {
            if (n == -EAGAIN) {
                c->ex->up_write_blocked = true;
                return 0;
            }
            return (int)n;
        }
        size_t done = (size_t)n;
        metrics_add(&metrics_local(up->srv->metrics)->bytes_out, done);
        ev_timer_start(c->w->loop, &up->timer, c->ex->be->conf->timeout_server_ms);
        size_t head_left = c->ex->rhead.len - c->ex->rhead_sent;
        size_t from_head = done < head_left ? done : head_left;
        c->ex->rhead_sent += from_head;
        c->ex->body_sent += done - from_head;
    }
}

static ssize_t upstream_read(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->up;
    if (buf_tailroom(&up->in) == 0) {
        if (c->ex->res_sent > 0) {
            /* Body bytes already sent to the client can go. */
            buf_consume(&up->in, c->ex->res_sent);
            c->ex->res_scanned -= c->ex->res_sent;
            c->ex->res_sent = 0;
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

static void upstream_connected(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->up;
    int rc = sock_connect_result(up->xp.fd);
    if (rc != 0) {
        char detail[160];
        snprintf(detail, sizeof(detail), "connect() to server %s failed: %s", up->srv->conf->name,
                 strerror(-rc));
        if (lb_server_may_warn(up->srv, ev_now_ms(c->w->loop))) {
            log_warn("http", "%s (backend %s)", detail, c->ex->be->conf->name);
        }
        upstream_failed(c, true, 502, "cannot connect to server");
        return;
    }
    up->is_connected = true;
    hp_set_state(c, HP_STATE_EXCHANGE, "connected");
    c->ex->t_sent_us = monotonic_us();
    ev_timer_start(c->w->loop, &up->timer, c->ex->be->conf->timeout_server_ms);
}

static void on_upstream_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct lb_upstream *up = t->data;
    struct hp_conn *c = up->owner;
    if (c == NULL) {
        return;
    }
    if (!up->is_connected) {
        log_warn("http", "connect() to server %s timed out (backend %s)", up->srv->conf->name,
                 c->ex->be->conf->name);
        upstream_failed(c, true, 504, "connecting to the server timed out");
    } else if (!c->ex->res_head_done) {
        lb_server_report_failure(up->srv, &c->peer);
        hp_fail(c, 504, "server response timed out");
    } else {
        hp_fail(c, 504, "server stopped sending the response");
    }
    hp_step(c);
}

/* Handle the server's side: bytes read, EOF, errors. */
static void upstream_input(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->up;
    ssize_t n = upstream_read(c);
    if (n == -EAGAIN || n == -ENOBUFS) {
        return;
    }
    if (n > 0) {
        ev_timer_start(c->w->loop, &up->timer, c->ex->be->conf->timeout_server_ms);
        return;
    }
    /* EOF or error from the server. */
    bool nothing_yet = !c->ex->res_head_done && up->in.len == 0 && c->ex->rparser.pos == 0;
    if (nothing_yet) {
        upstream_failed(c, false, 502,
                        n == 0 ? "server closed the connection before responding"
                               : "server reset the connection");
        return;
    }
    if (c->ex->res_head_done && c->ex->res_body.kind == HTTP_BODY_UNTIL_CLOSE) {
        c->ex->up_eof = true; /* the end of the body; scan_response_body finishes it */
        c->close_after = true;
        return;
    }
    if (!c->ex->res_head_done) {
        lb_server_report_failure(up->srv, &c->peer);
        hp_fail(c, 502, "server closed the connection in the response head");
        return;
    }
    log_warn("http", "server %s closed the connection mid-body (backend %s)", up->srv->conf->name,
             c->ex->be->conf->name);
    hp_fail(c, 502, "server closed the connection mid-body");
}

static void on_upstream_event(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    struct lb_upstream *up = io->data;
    struct hp_conn *c = up->owner;
    if (c == NULL || c->ex->up != up) {
        lb_upstream_close(up);
        return;
    }
    if (c->state == HP_STATE_CONNECTING) {
        upstream_connected(c);
    } else if ((events & EV_READ) != 0) {
        upstream_input(c);
    }
    if (c->ex->up == up && (events & EV_WRITE) != 0) {
        c->ex->up_write_blocked = false;
    }
    hp_step(c);
}

/* ---------------------------------------------------------------- response side */

static void dechunk_data(void *ctx, const char *data, size_t len)
{
    struct hp_conn *c = ctx;
    c->ex->res_body.data_bytes += len;
    bool ok = buf_append(&c->out, data, len);
    (void)ok; /* the scan is bounded by the room in out, so it always fits */
}

static void start_response(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->up;
    const char *buf = buf_head(&up->in);
    c->ex->status = c->ex->res.status;
    enum http_body_kind kind = http_response_body_kind(&c->ex->res, c->ex->method);
    body_init(&c->ex->res_body, kind, c->ex->res.content_length);
    struct http_rewrite_res opt = {.served_by = c->fe->conf->served_by};
    if (c->ex->req_minor == 0) {
        c->ex->dechunk = kind == HTTP_BODY_CHUNKED;
        if (kind == HTTP_BODY_CHUNKED || kind == HTTP_BODY_UNTIL_CLOSE) {
            c->close_after = true;
        }
        opt.drop_framing = c->ex->dechunk;
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
    if (http_rewrite_response(&c->ex->res, buf, &opt, &c->out) != 0 &&
        (buf_grow(&c->out, HP_OUT_MAX) != 0 ||
         http_rewrite_response(&c->ex->res, buf, &opt, &c->out) != 0)) {
        hp_fail(c, 502, "response head too large");
        return;
    }
    c->ex->res_head_done = true;
    buf_consume(&up->in, c->ex->res.head_len);
    c->ex->res_scanned = c->ex->res_sent = 0;
}

/* 101 to an upgrade request: the 101 head goes into out, then the connection is handed to
 * http_tunnel.c with everything buffered either way, and this hp_conn is freed. */
static void start_tunnel(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->up;
    if (c->ex->rhead_sent < c->ex->rhead.len) {
        hp_fail(c, 502, "server switched protocols before reading the request");
        return;
    }
    struct http_rewrite_res opt = {.served_by = c->fe->conf->served_by, .is_upgrade = true};
    if (http_rewrite_response(&c->ex->res, buf_head(&up->in), &opt, &c->out) != 0 &&
        (buf_grow(&c->out, HP_OUT_MAX) != 0 ||
         http_rewrite_response(&c->ex->res, buf_head(&up->in), &opt, &c->out) != 0)) {
        hp_fail(c, 502, "response head too large");
        return;
    }
    buf_consume(&up->in, c->ex->res.head_len);
    c->ex->status = 101;
    metrics_add(&metrics_local(up->srv->metrics)->requests[1], 1);
    metrics_backend_observe(c->ex->be->metrics, monotonic_us() - c->ex->t_sent_us);
    hp_account(c);
    ev_io_stop(c->w->loop, &c->io);
    ev_timer_stop(c->w->loop, &c->timer);
    ev_timer_stop(c->w->loop, &up->timer);
    if (http_tunnel_start(c) != 0) {
        hp_close(c, "cannot start the tunnel");
        return;
    }
    /* The tunnel owns the sockets, the server slot and the bytes now: free only the rest. */
    hp_set_state(c, HP_STATE_CLOSED, "upgraded to a tunnel");
    lb_worker_conn_remove(c->w, &c->base);
    ev_defer(c->w->loop, &c->defer, hp_free, c);
}

/* Interim (1xx) responses are passed to HTTP/1.1 clients and skipped for 1.0 ones. */
static void forward_interim(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->up;
    if (c->ex->req_minor == 1) {
        struct http_rewrite_res opt = {.served_by = c->fe->conf->served_by};
        if (http_rewrite_response(&c->ex->res, buf_head(&up->in), &opt, &c->out) != 0 &&
            (buf_grow(&c->out, HP_OUT_MAX) != 0 ||
             http_rewrite_response(&c->ex->res, buf_head(&up->in), &opt, &c->out) != 0)) {
            hp_fail(c, 502, "interim response head too large");
            return;
        }
    }
    buf_consume(&up->in, c->ex->res.head_len);
    http_parser_init(&c->ex->rparser, true, 8192, 16384);
}

static void parse_response(struct hp_conn *c)
{
    struct lb_upstream *up = c->ex->up;
    while (!c->ex->res_head_done && c->ex->up != NULL && up->in.len > 0) {
        int rc = http_parse_head(&c->ex->rparser, buf_head(&up->in), up->in.len, &c->ex->res);
        if (rc == -EAGAIN) {
            if (buf_tailroom(&up->in) == 0 && up->in.off == 0 && up->in.cap >= HP_UP_IN_MAX) {
                hp_fail(c, 502, "response head too large");
            }
            return;
        }
        if (rc != 0) {
            lb_server_report_failure(up->srv, &c->peer);
            log_warn("http", "invalid response from server %s: %s", up->srv->conf->name,
                     c->ex->rparser.error != NULL ? c->ex->rparser.error : "malformed");
            hp_fail(c, 502, "invalid response from server");
            return;
        }
        if (c->ex->res.status == 101) {
            if (!c->ex->is_upgrade) {
                hp_fail(c, 502, "server switched protocols without being asked");
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
    struct lb_upstream *up = c->ex->up;
    while (!c->ex->res_body.is_done && c->ex->res_scanned < up->in.len) {
        const char *p = buf_head(&up->in) + c->ex->res_scanned;
        size_t avail = up->in.len - c->ex->res_scanned;
        size_t n;
        if (c->ex->dechunk) {
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
            int rc = body_scan(&c->ex->res_body, p, avail, &n, dechunk_data, c);
            if (rc != 0) {
                return rc;
            }
            c->ex->res_scanned += n;
            /* Their payload is in out now: consider the raw bytes sent. */
            buf_consume(&up->in, c->ex->res_scanned);
            c->ex->res_scanned = c->ex->res_sent = 0;
            continue;
        }
        int rc = body_scan(&c->ex->res_body, p, avail, &n, NULL, NULL);
        if (rc != 0) {
            return rc;
        }
        c->ex->res_scanned += n;
        if (n == 0) {
            break;
        }
    }
    if (c->ex->res_body.kind == HTTP_BODY_UNTIL_CLOSE && c->ex->up_eof &&
        c->ex->res_scanned == up->in.len) {
        c->ex->res_body.is_done = true;
    }
    return 0;
}

/* ---------------------------------------------------------------- request body */

static int scan_request_body(struct hp_conn *c)
{
    const struct conf_frontend *cf = c->fe->conf;
    if (c->ex->req_body.is_done || c->ex->body_scanned >= c->in.len) {
        return 0;
    }
    size_t n;
    int rc = body_scan(&c->ex->req_body, buf_head(&c->in) + c->ex->body_scanned,
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
    if (buf_tailroom(&c->in) > 0 || c->in.cap < in_max(c) || c->ex->body_sent == 0 ||
        c->ex->req_body.is_done) {
        return; /* room left, or the buffer can still grow: keep the body replayable */
    }
    buf_consume(&c->in, c->ex->body_sent);
    c->ex->body_scanned -= c->ex->body_sent;
    c->ex->body_sent = 0;
    c->ex->body_consumed = true; /* the body can no longer be replayed */
}

/* ---------------------------------------------------------------- the pump */

static void exchange_step(struct hp_conn *c)
{
    int rc = scan_request_body(c);
    if (rc == -EFBIG) {
        c->close_after = true;
        hp_fail(c, 413, "request body larger than max_body");
        return;
    }
    if (rc != 0) {
        c->close_after = true;
        hp_fail(c, 400,
                c->ex->req_body.ck.error != NULL ? c->ex->req_body.ck.error : "bad chunked body");
        return;
    }
    if (c->ex->up->is_connected && !c->ex->up_write_blocked) {
        rc = upstream_flush(c);
        if (rc != 0) {
            upstream_failed(c, c->ex->rhead_sent == 0, 502,
                            "cannot send the request to the server");
            return;
        }
    }
    release_sent_body(c);
    parse_response(c);
    if (c->state != HP_STATE_EXCHANGE) {
        return;
    }
    if (!c->ex->res_head_done) {
        /* Interim responses (100 Continue) must reach the client now. */
        if (c->out.len != 0 && !c->client_write_blocked && client_flush(c) != 0) {
            hp_close(c, "client write failed");
        }
        return;
    }
    rc = scan_response_body(c);
    if (rc != 0) {
        lb_server_report_failure(c->ex->up->srv, &c->peer);
        hp_fail(c, 502, "invalid chunked response body");
        return;
    }
    if (!c->client_write_blocked) {
        rc = client_flush(c);
        if (rc != 0) {
            hp_close(c, "client write failed");
            return;
        }
    }
    if (c->ex->res_body.is_done && c->out.len == 0 && c->ex->res_sent == c->ex->res_scanned) {
        if (!c->ex->req_body.is_done || c->ex->body_sent < c->ex->body_scanned) {
            /* The server answered before reading the whole request: no reuse. */
            c->ex->up->is_connected = false;
            c->close_after = true;
        }
        finish_exchange(c);
    }
}

static uint32_t client_interest(const struct hp_conn *c)
{
    uint32_t ev = 0;
    switch (c->state) {
    case HP_STATE_IDLE:
    case HP_STATE_READ_HEAD:
        if (in_can_take_more(c)) {
            ev |= EV_READ;
        }
        break;
    case HP_STATE_EXCHANGE:
    case HP_STATE_LOCAL:
    case HP_STATE_CONNECTING:
    case HP_STATE_QUEUED:
        /* Keep reading after the request is complete too: it sees a client that closes,
         * buffers pipelined requests, and saves two epoll_ctl calls per request. */
        if (!c->client_eof && in_can_take_more(c)) {
            ev |= EV_READ;
        }
        if (c->client_write_blocked) {
            ev |= EV_WRITE;
        }
        break;
    case HP_STATE_REPLY:
        ev |= EV_WRITE;
        break;
    case HP_STATE_LINGER:
        ev |= EV_READ;
        break;
    case HP_STATE_CLOSED:
        break;
    }
    return ev;
}

static uint32_t upstream_interest(const struct hp_conn *c)
{
    const struct lb_upstream *up = c->ex->up;
    if (c->state == HP_STATE_CONNECTING) {
        return EV_WRITE;
    }
    uint32_t ev = 0;
    if (!c->ex->up_eof && (!c->ex->res_body.is_done || !c->ex->res_head_done)) {
        if (buf_tailroom(&up->in) > 0 || c->ex->res_sent > 0 || up->in.off > 0 ||
            up->in.cap < HP_UP_IN_MAX) {
            ev |= EV_READ;
        }
    }
    if (c->ex->up_write_blocked) {
        ev |= EV_WRITE;
    }
    return ev;
}

static void update_interest(struct hp_conn *c)
{
    if (c->state == HP_STATE_CLOSED) {
        return;
    }
    if (ev_io_set(c->w->loop, &c->io, http_xprt_events(&c->xp, client_interest(c))) != 0) {
        hp_close(c, "epoll failed");
        return;
    }
    if (current_up(c) != NULL &&
        ev_io_set(c->w->loop, &c->ex->up->io,
                  http_xprt_events(&c->ex->up->xp, upstream_interest(c))) != 0) {
        hp_fail(c, 502, "epoll failed");
    }
}

/* In an exchange the client timer runs only while keel waits for the client (more request
 * body, or room to write the response) and the server timer only while it waits for the
 * server: a POST whose response took longer than timeout_client got 408, and a client
 * reading slowly was cut by timeout_server (issue 10). */
static void exchange_timers(struct hp_conn *c)
{
    struct ev_loop *loop = c->w->loop;
    bool wait_client = (!c->ex->req_body.is_done && in_can_take_more(c)) || c->client_write_blocked;
    if (!wait_client) {
        ev_timer_stop(loop, &c->timer);
    } else if (!ev_timer_is_active(&c->timer)) {
        ev_timer_start(loop, &c->timer, c->fe->conf->timeout_client_ms);
    }
    struct lb_upstream *up = c->ex->up;
    if (up != NULL && up->is_connected) {
        if ((upstream_interest(c) & EV_READ) == 0 && !c->ex->up_write_blocked) {
            ev_timer_stop(loop, &up->timer);
        } else if (!ev_timer_is_active(&up->timer)) {
            ev_timer_start(loop, &up->timer, c->ex->be->conf->timeout_server_ms);
        }
    }
}

static void hp_step(struct hp_conn *c)
{
    for (int guard = 0; guard < 64; guard++) {
        enum hp_state before = c->state;
        const struct lb_upstream *up_before = current_up(c);
        switch (c->state) {
        case HP_STATE_IDLE:
        case HP_STATE_READ_HEAD:
            if (c->in.len > 0) {
                parse_head(c);
            } else if (c->client_eof) {
                hp_close(c, "client closed");
            }
            break;
        case HP_STATE_EXCHANGE:
            exchange_step(c);
            break;
        case HP_STATE_LOCAL:
            local_step(c);
            break;
        case HP_STATE_REPLY:
            if (client_flush(c) != 0) {
                hp_close(c, "client write failed");
            } else if (c->out.len == 0) {
                hp_linger(c);
            }
            break;
        case HP_STATE_QUEUED:
        case HP_STATE_CONNECTING:
            if (c->client_eof && !c->ex->req_body.is_done) {
                hp_close(c, "client closed while waiting for a server");
            }
            break;
        case HP_STATE_LINGER:
        case HP_STATE_CLOSED:
            break;
        }
        /* Done once a pass moves nothing: same state, same server connection. A retry on a
         * pooled connection after a failed send stays in EXCHANGE with a request still to
         * send; stopping there left it unsent until the client gave up (the failed
         * connection is freed only after this callback, so its address is not reused). */
        if (c->state == HP_STATE_CLOSED || (c->state == before && current_up(c) == up_before)) {
            break;
        }
    }
    if (c->state == HP_STATE_EXCHANGE) {
        exchange_timers(c);
    }
    if (c->in.len == 0 && c->in.data != NULL && c->state != HP_STATE_CLOSED) {
        /* Nothing read is waiting (idle, or a request waiting for its server): the buffer
         * goes back to the pool and the next readable event takes one again. */
        http_buf_release(&c->in);
    }
    update_interest(c);
}

/* ---------------------------------------------------------------- client events */

static void on_client_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct hp_conn *c = t->data;
    switch (c->state) {
    case HP_STATE_IDLE:
        hp_close(c, "idle timeout");
        return;
    case HP_STATE_READ_HEAD:
        c->close_after = true;
        if (c->ex->log != NULL) {
            snprintf(c->ex->log->method, sizeof(c->ex->log->method), "-");
            snprintf(c->ex->log->target, sizeof(c->ex->log->target), "-");
            c->ex->log->minor = 1;
        }
        hp_fail(c, 408, "request head not received in time");
        break;
    case HP_STATE_QUEUED:
        metrics_add(&metrics_local(c->ex->be->metrics)->queue_timeouts, 1);
        hp_fail(c, 503, "no server slot became free in time (queue timeout)");
        break;
    case HP_STATE_EXCHANGE:
    case HP_STATE_CONNECTING:
        c->close_after = true;
        hp_fail(c, 408,
                c->ex->req_body.is_done ? "client stopped reading the response"
                                        : "client stopped sending the request body");
        break;
    case HP_STATE_LOCAL:
    case HP_STATE_REPLY:
    case HP_STATE_LINGER:
        hp_close(c, "client did not read or close in time");
        return;
    case HP_STATE_CLOSED:
        return;
    }
    hp_step(c);
}

static void linger_input(struct hp_conn *c)
{
    char sink[4096];
    ssize_t n = http_xprt_read(&c->xp, sink, sizeof(sink));
    if (n == 0 || (n < 0 && n != -EAGAIN)) {
        hp_close(c, "closed");
    }
}

static void on_client_event(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    struct hp_conn *c = io->data;
    if (c->state == HP_STATE_LINGER) {
        linger_input(c);
        return;
    }
    if ((events & (EV_READ | EV_WRITE)) == 0 && (events & EV_ERROR) != 0) {
        /* A reset or hangup while keel asked for nothing (input full, or the client's
         * EOF already read): the client is gone, nothing can reach it any more. */
        if (c->state == HP_STATE_EXCHANGE || c->state == HP_STATE_CONNECTING ||
            c->state == HP_STATE_QUEUED) {
            hp_account(c);
        }
        hp_close(c, "client connection reset");
        return;
    }
    if ((events & EV_WRITE) != 0) {
        c->client_write_blocked = false;
        if (c->state == HP_STATE_EXCHANGE) {
            /* The client read some of the response: it has timeout_client again. */
            ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_client_ms);
        }
    }
    if ((events & EV_READ) != 0) {
        ssize_t n = client_read(c);
        if (n == 0 || (n < 0 && n != -EAGAIN && n != -ENOBUFS)) {
            c->client_eof = true;
            if (c->state == HP_STATE_EXCHANGE && !c->ex->req_body.is_done) {
                hp_account(c);
                hp_close(c, "client aborted the request");
                return;
            }
        } else if (n > 0 && (c->state == HP_STATE_EXCHANGE || c->state == HP_STATE_CONNECTING) &&
                   !c->ex->req_body.is_done) {
            ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_client_ms);
        }
    }
    hp_step(c);
}

void http_conn_accept(struct lb_worker *w, struct lb_frontend *fe, int fd,
                      const struct sockaddr_storage *peer)
{
    /* No buffer yet: the first readable event takes one (http_pool.h). */
    struct hp_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        log_warn("http", "out of memory accepting a connection on %s", fe->conf->name);
        close(fd);
        return;
    }
    c->w = w;
    c->gen = fe->gen;
    lb_gen_ref(c->gen);
    c->fe = fe;
    http_xprt_tcp_init(&c->xp, fd);
    c->peer = *peer;
    c->base.on_drain = on_drain;
    sock_addr_ip((const struct sockaddr *)peer, c->peer_ip, sizeof(c->peer_ip));
    http_parser_init(&c->parser, false, fe->conf->max_request_line, fe->conf->max_header);
    ev_timer_init(&c->timer, on_client_timeout, c, "client");
    c->state = HP_STATE_IDLE;
    lb_worker_conn_add(w, &c->base);
    metrics_add(&metrics_local(fe->metrics)->connections_total, 1);
    metrics_add(&metrics_local(fe->metrics)->connections_opened, 1);
    if (ev_io_start(w->loop, &c->io, fd, http_xprt_events(&c->xp, EV_READ), on_client_event, c,
                    "client") != 0) {
        hp_close(c, "epoll failed");
        return;
    }
    /* A new connection must send its first request within the header timeout. */
    ev_timer_start(w->loop, &c->timer, fe->conf->timeout_header_ms);
    if (w->is_draining) {
        c->close_after = true;
    }
}
