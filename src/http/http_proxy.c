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
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/fsm.h"
#include "core/log.h"
#include "core/sock.h"
#include "http/http_proxy-t.h"
#include "http/http_reply.h"
#include "http/http_filecache.h"
#include "http/http_path.h"
#include "http/http_rewrite.h"
#include "http/http_static.h"
#include "http/http_tunnel.h"
#include "lb/lb.h"

/* Buffers start small and grow once, to their maximum, when a head or a body needs it:
 * memory per connection is what limits concurrency. */
#define HP_IN_SIZE 4096
#define HP_IN_MAX 16384
#define HP_UP_IN_MAX 16384
/* out and rhead start small and grow (once) for unusually large heads: most heads are a
 * few hundred bytes, and memory per connection is what limits concurrency. */
#define HP_OUT_SIZE 4096
#define HP_OUT_MAX 16384
#define HP_RHEAD_SIZE 2048
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

/* The one transition function: refuses to leave CLOSED (core/fsm.h) and logs every move at
 * debug. */
static void hp_set_state(struct hp_conn *c, enum hp_state to, const char *reason)
{
    enum hp_state from = c->state;
    if (from == HP_STATE_CLOSED) {
        char obj[32];
        (void)snprintf(obj, sizeof(obj), "conn %d", c->fd);
        fsm_illegal(FSM_MACHINE_HTTP, obj, hp_state_names[from], hp_state_names[to], reason);
        return;
    }
    c->state = to;
    log_debug("http", "conn %d: %s -> %s (%s)", c->fd, hp_state_names[from], hp_state_names[to],
              reason);
}

/* ---------------------------------------------------------------- lifecycle */

static void hp_free(struct ev_loop *loop, void *data)
{
    (void)loop;
    struct hp_conn *c = data;
    buf_fini(&c->in);
    buf_fini(&c->out);
    buf_fini(&c->rhead);
    free(c->log);
    lb_gen_unref(c->gen);
    free(c);
}

static void release_slot(struct hp_conn *c)
{
    if (c->srv != NULL) {
        lb_server_release(c->srv);
        c->srv = NULL;
        if (c->w->n_waiters > 0) {
            lb_worker_kick_queue(c->w);
        }
    }
}

static void drop_upstream(struct hp_conn *c)
{
    if (c->up != NULL) {
        c->up->owner = NULL;
        lb_upstream_close(c->up);
        c->up = NULL;
    }
}

static void hp_close(struct hp_conn *c, const char *reason)
{
    if (c->state == HP_STATE_CLOSED) {
        return;
    }
    hp_set_state(c, HP_STATE_CLOSED, reason);
    release_local_body(c);
    lb_worker_dequeue(c->w, &c->waiter);
    drop_upstream(c);
    release_slot(c);
    ev_io_stop(c->w->loop, &c->io);
    ev_timer_stop(c->w->loop, &c->timer);
    close(c->fd);
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
    (void)shutdown(c->fd, SHUT_WR); /* failure: the peer is gone, the read sees it */
    ev_timer_start(c->w->loop, &c->timer, HP_LINGER_MS);
    if (ev_io_set(c->w->loop, &c->io, EV_READ) != 0) {
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
    if (buf_tailroom(&c->in) == 0) {
        buf_compact(&c->in);
        if (buf_tailroom(&c->in) == 0 &&
            (c->in.cap >= in_max(c) || buf_grow(&c->in, in_max(c)) != 0)) {
            return -ENOBUFS;
        }
    }
    ssize_t n;
    do {
        n = sock_recv(c->fd, buf_tail(&c->in), buf_tailroom(&c->in));
    } while (n == -1 && errno == EINTR);
    if (n == -1) {
        return -errno;
    }
    buf_commit(&c->in, (size_t)n);
    metrics_add(&metrics_local(c->fe->metrics)->bytes_in, (uint64_t)n);
    c->req_bytes += (uint64_t)n;
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
        if (c->up != NULL && c->res_sent < c->res_scanned) {
            iov[n_iov].iov_base = buf_head(&c->up->in) + c->res_sent;
            iov[n_iov++].iov_len = c->res_scanned - c->res_sent;
        }
        if (n_iov == 0) {
            c->client_write_blocked = false;
            return 0;
        }
        ssize_t n = sock_sendv(c->fd, iov, n_iov);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                c->client_write_blocked = true;
                return 0;
            }
            return -errno;
        }
        size_t done = (size_t)n;
        metrics_add(&metrics_local(c->fe->metrics)->bytes_out, done);
        c->res_bytes += done;
        if (c->state == HP_STATE_EXCHANGE && c->res_head_done) {
            c->res_started = true;
        }
        size_t from_out = done < c->out.len ? done : c->out.len;
        buf_consume(&c->out, from_out);
        c->res_sent += done - from_out;
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

static void reset_for_next_request(struct hp_conn *c)
{
    /* The request body (scanned part) is done; what follows in `in` is pipelined. */
    buf_consume(&c->in, c->body_scanned);
    c->body_scanned = c->body_sent = 0;
    c->rhead.off = c->rhead.len = 0;
    c->rhead_sent = 0;
    c->body_consumed = false;
    c->stale_retry_used = false;
    c->failed_srv = NULL;
    c->res_head_done = false;
    c->res_scanned = c->res_sent = 0;
    c->dechunk = false;
    c->res_started = false;
    c->status = 0;
    c->res_bytes = 0;
    c->req_bytes = c->in.len;
    c->error_detail = NULL;
    c->up_write_blocked = false;
    c->up_eof = false;
    http_parser_init(&c->parser, false, c->fe->conf->max_request_line, c->fe->conf->max_header);
    hp_set_state(c, HP_STATE_IDLE, "keep-alive");
    ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_idle_ms);
}

/* Account for a finished request (with or without a response). */
static void hp_account(struct hp_conn *c)
{
    unsigned cls = metrics_class(c->status);
    metrics_add(&metrics_local(c->fe->metrics)->requests[cls], 1);
    if (c->be != NULL && c->status != 0) {
        metrics_add(&metrics_local(c->be->metrics)->requests[cls], 1);
    }
    http_reply_access_log(c);
}

static void finish_exchange(struct hp_conn *c)
{
    uint64_t now = ev_now_ms(c->w->loop);
    struct lb_upstream *up = c->up;
    metrics_add(&metrics_local(up->srv->metrics)->requests[metrics_class(c->status)], 1);
    (void)now;
    metrics_backend_observe(c->be->metrics, monotonic_us() - c->t_sent_us);
    hp_account(c);
    c->up = NULL;
    ev_timer_stop(c->w->loop, &up->timer);
    bool reusable = up->is_connected && !c->up_eof && c->res_body.kind != HTTP_BODY_UNTIL_CLOSE &&
                    http_msg_keepalive(&c->res) && c->req_body.is_done &&
                    c->body_sent == c->body_scanned && up->in.len == c->res_scanned;
    buf_consume(&up->in, c->res_scanned);
    up->requests++;
    if (reusable) {
        lb_pool_put(c->w, up);
    } else {
        up->owner = NULL;
        lb_upstream_close(up);
    }
    release_slot(c);
    bool keep = !c->close_after && c->req_keepalive && c->req_body.is_done && !c->client_eof;
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
    lb_worker_dequeue(c->w, &c->waiter);
    if (c->res_started) {
        /* Part of a response is already out: the only honest signal left is a close. */
        log_warn("http", "closing %s mid-response: %s", c->peer_ip, detail);
        c->error_detail = detail;
        hp_account(c);
        hp_close(c, detail);
        return;
    }
    drop_upstream(c);
    release_slot(c);
    c->out.off = c->out.len = 0;
    c->status = status;
    c->error_detail = detail;
    http_reply_error(c, status, detail);
    hp_account(c);
    hp_set_state(c, HP_STATE_REPLY, detail);
    ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_client_ms);
}

/* ---------------------------------------------------------------- request start */

static void copy_log_fields(struct hp_conn *c, const char *buf)
{
    struct hp_logreq *lr = c->log;
    const struct http_msg *m = &c->req;
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
    if (!c->req_body.is_done) {
        c->close_after = true;
    }
}

/* Send the local response prepared in out (and file_* / mem_body): HP_STATE_LOCAL. */
static void start_local(struct hp_conn *c)
{
    buf_consume(&c->in, c->req.head_len);
    c->body_scanned = c->body_sent = 0;
    c->res_bytes = 0;
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
    if (c->file_entry != NULL) {
        http_filecache_release(c->file_entry);
        c->file_entry = NULL;
    } else if (c->file_fd != -1) {
        close(c->file_fd);
    }
    c->file_fd = -1;
    c->file_left = 0;
    free(c->mem_body);
    c->mem_body = NULL;
    c->mem_len = c->mem_sent = 0;
}

/* Choose the location of the request. Returns true when keel answers it itself (the
 * response is prepared and HP_STATE_LOCAL entered), false to proxy it to c->be. */
static bool route_request(struct hp_conn *c)
{
    char path[1024];
    size_t plen = 0;
    const struct http_msg *m = &c->req;
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
        c->be = c->fe->loc_backends[i];
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
    bool keep = !c->close_after && c->req_keepalive && c->req_body.is_done && !c->client_eof;
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
        bool more = c->file_left > 0 || c->mem_sent < c->mem_len;
        if (c->out.len > 0) {
            n = send(c->fd, buf_head(&c->out), c->out.len, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        } else if (c->mem_sent < c->mem_len) {
            n = send(c->fd, c->mem_body + c->mem_sent, c->mem_len - c->mem_sent, MSG_NOSIGNAL);
        } else if (c->file_left > 0) {
            off_t off = (off_t)c->file_off;
            size_t chunk = c->file_left < (1u << 20) ? (size_t)c->file_left : (1u << 20);
            n = sendfile(c->fd, c->file_fd, &off, chunk);
            if (n == 0) {
                hp_close(c, "file shrank while being sent");
                return;
            }
        } else {
            finish_local(c);
            return;
        }
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                c->client_write_blocked = true;
                return;
            }
            hp_close(c, "client write failed");
            return;
        }
        size_t done = (size_t)n;
        metrics_add(&metrics_local(c->fe->metrics)->bytes_out, done);
        c->res_bytes += done;
        ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_client_ms);
        if (c->out.len > 0) {
            buf_consume(&c->out, done);
        } else if (c->mem_sent < c->mem_len) {
            c->mem_sent += done;
        } else {
            c->file_off += done;
            c->file_left -= done;
        }
    }
}

static void start_request(struct hp_conn *c)
{
    const char *buf = buf_head(&c->in);
    const struct conf_frontend *cf = c->fe->conf;
    c->t_start_ms = ev_now_ms(c->w->loop);
    c->method = c->req.method;
    c->req_minor = c->req.version_minor;
    c->req_keepalive = http_msg_keepalive(&c->req);
    c->is_idempotent = http_method_is_idempotent(c->method);
    if (c->log != NULL) {
        copy_log_fields(c, buf);
    }
    enum http_body_kind kind = http_request_body_kind(&c->req);
    body_init(&c->req_body, kind, c->req.content_length);
    c->be = c->fe->backend;
    if (cf->n_locations > 0 && route_request(c)) {
        return;
    }
    if (c->be == NULL) {
        respond_locally(c, 404, "no location matches this path");
        return;
    }
    c->retries_left = c->be->conf->retries;
    if (kind == HTTP_BODY_LENGTH && cf->max_body != 0 && c->req.content_length > cf->max_body) {
        c->close_after = true;
        hp_fail(c, 413, "request body larger than max_body");
        return;
    }
    /* An upgrade with a request body is not tunnelled: where the body would end and the
     * new protocol begin is not worth the ambiguity (WebSocket handshakes have none). */
    c->is_upgrade = c->req_body.is_done && http_tunnel_requested(&c->req, buf);
    struct http_rewrite_req opt = {.client_ip = c->peer_ip,
                                   .proto = "http",
                                   .served_by = cf->served_by,
                                   .is_upgrade = c->is_upgrade};
    int rc = http_rewrite_request(&c->req, buf, &opt, &c->rhead);
    if (rc == -ENOSPC && buf_grow(&c->rhead, cf->max_header + HP_RHEAD_EXTRA) == 0) {
        rc = http_rewrite_request(&c->req, buf, &opt, &c->rhead);
    }
    if (rc != 0) {
        hp_fail(c, rc == -KEEL_EHTTP_BAD_REQUEST ? 400 : 431,
                rc == -KEEL_EHTTP_BAD_REQUEST ? "too many headers named in Connection"
                                              : "request head too large to forward");
        return;
    }
    buf_consume(&c->in, c->req.head_len);
    c->body_scanned = c->body_sent = 0;
    c->rhead_sent = 0;
    if (!c->req_body.is_done) {
        ev_timer_start(c->w->loop, &c->timer, cf->timeout_client_ms);
    }
    hp_connect(c);
}

static void parse_head(struct hp_conn *c)
{
    if (c->state == HP_STATE_IDLE) {
        hp_set_state(c, HP_STATE_READ_HEAD, "request bytes");
        ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_header_ms);
    }
    int rc = http_parse_head(&c->parser, buf_head(&c->in), c->in.len, &c->req);
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
        if (c->log != NULL) {
            snprintf(c->log->method, sizeof(c->log->method), "-");
            snprintf(c->log->target, sizeof(c->log->target), "-");
            c->log->referer[0] = c->log->user_agent[0] = '\0';
            c->log->minor = 1;
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
    struct hp_conn *c = (struct hp_conn *)((char *)waiter - offsetof(struct hp_conn, waiter));
    if (c->state != HP_STATE_QUEUED) {
        lb_worker_dequeue(c->w, waiter);
        return;
    }
    struct lb_pick_ctx ctx = {.rng = &c->w->rng};
    unsigned alen;
    const void *ab = sock_addr_bytes((const struct sockaddr *)&c->peer, &alen);
    ctx.client_hash = lb_hash_client(ab, alen);
    struct lb_server *srv;
    int rc = lb_backend_pick(c->be, &ctx, NULL, &srv);
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
    c->srv = srv;
    hp_connect(c);
    hp_step(c);
}

static int attach_upstream(struct hp_conn *c, struct lb_upstream *up, bool is_new)
{
    c->up = up;
    up->owner = c;
    c->up_write_blocked = false;
    c->up_eof = false;
    c->res_head_done = false;
    http_parser_init(&c->rparser, true, 8192, 16384);
    ev_timer_init(&up->timer, on_upstream_timeout, up, "upstream");
    if (is_new) {
        hp_set_state(c, HP_STATE_CONNECTING, up->srv->conf->name);
        ev_timer_start(c->w->loop, &up->timer, c->be->conf->timeout_connect_ms);
        return ev_io_start(c->w->loop, &up->io, up->fd, EV_WRITE, on_upstream_event, up,
                           "upstream");
    }
    up->io.on_event = on_upstream_event;
    up->io.data = up;
    up->is_connected = true;
    hp_set_state(c, HP_STATE_EXCHANGE, "reused connection");
    c->t_sent_us = monotonic_us();
    ev_timer_start(c->w->loop, &up->timer, c->be->conf->timeout_server_ms);
    return ev_io_set(c->w->loop, &up->io, EV_READ);
}

/* After a failure with the current server: retry elsewhere when that is safe, else
 * answer with status. is_conn_failure: the server never got a byte of the request. */
static void upstream_failed(struct hp_conn *c, bool is_conn_failure, int status, const char *detail)
{
    struct lb_upstream *up = c->up;
    bool stale = up != NULL && up->is_reused && !is_conn_failure;
    if (up != NULL && !stale) {
        lb_server_report_failure(up->srv, &c->peer);
        if (is_conn_failure) {
            metrics_add(&metrics_local(up->srv->metrics)->connect_failures, 1);
        } else {
            metrics_add(&metrics_local(up->srv->metrics)->response_failures, 1);
        }
    }
    struct lb_server *failed = c->srv;
    bool buffered = !c->body_consumed && (c->req_body.is_done || c->body_sent == 0);
    bool safe = is_conn_failure || (c->is_idempotent && c->req_body.is_done);
    bool can_retry = buffered && safe && !c->res_started && !c->res_head_done;
    drop_upstream(c);
    if (can_retry && stale && !c->stale_retry_used) {
        /* A pooled connection the server had closed: try a fresh one, same server. */
        c->stale_retry_used = true;
        c->rhead_sent = 0;
        c->body_sent = 0;
        hp_connect(c);
        return;
    }
    release_slot(c);
    if (can_retry && c->retries_left > 0) {
        c->retries_left--;
        c->failed_srv = failed;
        c->rhead_sent = 0;
        c->body_sent = 0;
        metrics_add(&metrics_local(c->be->metrics)->retries, 1);
        log_debug("http", "retrying %s on another server of %s after: %s", c->peer_ip,
                  c->be->conf->name, detail);
        hp_connect(c);
        return;
    }
    hp_fail(c, status, detail);
}

static void hp_connect(struct hp_conn *c)
{
    if (c->srv == NULL) {
        struct lb_pick_ctx ctx = {.rng = &c->w->rng};
        unsigned alen;
        const void *ab = sock_addr_bytes((const struct sockaddr *)&c->peer, &alen);
        ctx.client_hash = lb_hash_client(ab, alen);
        int rc = lb_backend_pick(c->be, &ctx, c->failed_srv, &c->srv);
        if (rc == -EBUSY) {
            if (atomic_load(&c->be->queued) >= c->be->conf->queue_max) {
                hp_fail(c, 503, "backend queue full");
                return;
            }
            c->waiter.be = c->be;
            c->waiter.on_ready = on_waiter_ready;
            lb_worker_enqueue(c->w, &c->waiter);
            metrics_add(&metrics_local(c->be->metrics)->queued_total, 1);
            hp_set_state(c, HP_STATE_QUEUED, "all servers at maxconn");
            ev_timer_start(c->w->loop, &c->timer, c->be->conf->timeout_queue_ms);
            return;
        }
        if (rc != 0) {
            metrics_add(&metrics_local(c->be->metrics)->no_server, 1);
            hp_fail(c, 503, "no server available");
            return;
        }
    }
    struct lb_upstream *up = c->stale_retry_used ? NULL : lb_pool_get(c->w, c->be, c->srv);
    int err = 0;
    bool is_new = up == NULL;
    if (is_new) {
        up = lb_upstream_new(c->w, c->be, c->srv, &err);
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
    struct lb_upstream *up = c->up;
    for (;;) {
        struct iovec iov[2];
        int n_iov = 0;
        if (c->rhead_sent < c->rhead.len) {
            iov[n_iov].iov_base = buf_head(&c->rhead) + c->rhead_sent;
            iov[n_iov++].iov_len = c->rhead.len - c->rhead_sent;
        }
        if (c->body_sent < c->body_scanned) {
            iov[n_iov].iov_base = buf_head(&c->in) + c->body_sent;
            iov[n_iov++].iov_len = c->body_scanned - c->body_sent;
        }
        if (n_iov == 0) {
            c->up_write_blocked = false;
            return 0;
        }
        ssize_t n = sock_sendv(up->fd, iov, n_iov);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                c->up_write_blocked = true;
                return 0;
            }
            return -errno;
        }
        size_t done = (size_t)n;
        metrics_add(&metrics_local(up->srv->metrics)->bytes_out, done);
        ev_timer_start(c->w->loop, &up->timer, c->be->conf->timeout_server_ms);
        size_t head_left = c->rhead.len - c->rhead_sent;
        size_t from_head = done < head_left ? done : head_left;
        c->rhead_sent += from_head;
        c->body_sent += done - from_head;
    }
}

static ssize_t upstream_read(struct hp_conn *c)
{
    struct lb_upstream *up = c->up;
    if (buf_tailroom(&up->in) == 0) {
        if (c->res_sent > 0) {
            /* Body bytes already sent to the client can go. */
            buf_consume(&up->in, c->res_sent);
            c->res_scanned -= c->res_sent;
            c->res_sent = 0;
        }
        buf_compact(&up->in);
        if (buf_tailroom(&up->in) == 0 &&
            (up->in.cap >= HP_UP_IN_MAX || buf_grow(&up->in, HP_UP_IN_MAX) != 0)) {
            return -ENOBUFS;
        }
    }
    ssize_t n;
    do {
        n = sock_recv(up->fd, buf_tail(&up->in), buf_tailroom(&up->in));
    } while (n == -1 && errno == EINTR);
    if (n == -1) {
        return -errno;
    }
    buf_commit(&up->in, (size_t)n);
    metrics_add(&metrics_local(up->srv->metrics)->bytes_in, (uint64_t)n);
    return n;
}

static void upstream_connected(struct hp_conn *c)
{
    struct lb_upstream *up = c->up;
    int rc = sock_connect_result(up->fd);
    if (rc != 0) {
        char detail[160];
        snprintf(detail, sizeof(detail), "connect() to server %s failed: %s", up->srv->conf->name,
                 strerror(-rc));
        if (lb_server_may_warn(up->srv, ev_now_ms(c->w->loop))) {
            log_warn("http", "%s (backend %s)", detail, c->be->conf->name);
        }
        upstream_failed(c, true, 502, "cannot connect to server");
        return;
    }
    up->is_connected = true;
    hp_set_state(c, HP_STATE_EXCHANGE, "connected");
    c->t_sent_us = monotonic_us();
    ev_timer_start(c->w->loop, &up->timer, c->be->conf->timeout_server_ms);
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
                 c->be->conf->name);
        upstream_failed(c, true, 504, "connecting to the server timed out");
    } else if (!c->res_head_done) {
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
    struct lb_upstream *up = c->up;
    ssize_t n = upstream_read(c);
    if (n == -EAGAIN || n == -ENOBUFS) {
        return;
    }
    if (n > 0) {
        ev_timer_start(c->w->loop, &up->timer, c->be->conf->timeout_server_ms);
        return;
    }
    /* EOF or error from the server. */
    bool nothing_yet = !c->res_head_done && up->in.len == 0 && c->rparser.pos == 0;
    if (nothing_yet) {
        upstream_failed(c, false, 502,
                        n == 0 ? "server closed the connection before responding"
                               : "server reset the connection");
        return;
    }
    if (c->res_head_done && c->res_body.kind == HTTP_BODY_UNTIL_CLOSE) {
        c->up_eof = true; /* the end of the body; scan_response_body finishes it */
        c->close_after = true;
        return;
    }
    if (!c->res_head_done) {
        lb_server_report_failure(up->srv, &c->peer);
        hp_fail(c, 502, "server closed the connection in the response head");
        return;
    }
    log_warn("http", "server %s closed the connection mid-body (backend %s)", up->srv->conf->name,
             c->be->conf->name);
    hp_fail(c, 502, "server closed the connection mid-body");
}

static void on_upstream_event(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    struct lb_upstream *up = io->data;
    struct hp_conn *c = up->owner;
    if (c == NULL || c->up != up) {
        lb_upstream_close(up);
        return;
    }
    if (c->state == HP_STATE_CONNECTING) {
        upstream_connected(c);
    } else if ((events & EV_READ) != 0) {
        upstream_input(c);
    }
    if (c->up == up && (events & EV_WRITE) != 0) {
        c->up_write_blocked = false;
    }
    hp_step(c);
}

/* ---------------------------------------------------------------- response side */

static void dechunk_data(void *ctx, const char *data, size_t len)
{
    struct hp_conn *c = ctx;
    c->res_body.data_bytes += len;
    bool ok = buf_append(&c->out, data, len);
    (void)ok; /* the scan is bounded by the room in out, so it always fits */
}

static void start_response(struct hp_conn *c)
{
    struct lb_upstream *up = c->up;
    const char *buf = buf_head(&up->in);
    c->status = c->res.status;
    enum http_body_kind kind = http_response_body_kind(&c->res, c->method);
    body_init(&c->res_body, kind, c->res.content_length);
    struct http_rewrite_res opt = {.served_by = c->fe->conf->served_by};
    if (c->req_minor == 0) {
        c->dechunk = kind == HTTP_BODY_CHUNKED;
        if (kind == HTTP_BODY_CHUNKED || kind == HTTP_BODY_UNTIL_CLOSE) {
            c->close_after = true;
        }
        opt.drop_framing = c->dechunk;
    }
    if (kind == HTTP_BODY_UNTIL_CLOSE) {
        c->close_after = true;
    }
    if (!c->req_body.is_done) {
        c->close_after = true; /* early response: the rest of the request cannot be parsed */
    }
    if (c->gen != c->w->gen) {
        /* A reload happened: finish this exchange on the old configuration, and tell the
         * client in this very response not to send another request here. */
        c->close_after = true;
    }
    opt.is_close = c->close_after || !c->req_keepalive || c->client_eof;
    opt.is_keepalive_10 = c->req_minor == 0 && !opt.is_close;
    if (http_rewrite_response(&c->res, buf, &opt, &c->out) != 0 &&
        (buf_grow(&c->out, HP_OUT_MAX) != 0 ||
         http_rewrite_response(&c->res, buf, &opt, &c->out) != 0)) {
        hp_fail(c, 502, "response head too large");
        return;
    }
    c->res_head_done = true;
    buf_consume(&up->in, c->res.head_len);
    c->res_scanned = c->res_sent = 0;
}

/* 101 to an upgrade request: the 101 head goes into out, then the connection is handed to
 * http_tunnel.c with everything buffered either way, and this hp_conn is freed. */
static void start_tunnel(struct hp_conn *c)
{
    struct lb_upstream *up = c->up;
    if (c->rhead_sent < c->rhead.len) {
        hp_fail(c, 502, "server switched protocols before reading the request");
        return;
    }
    struct http_rewrite_res opt = {.served_by = c->fe->conf->served_by, .is_upgrade = true};
    if (http_rewrite_response(&c->res, buf_head(&up->in), &opt, &c->out) != 0 &&
        (buf_grow(&c->out, HP_OUT_MAX) != 0 ||
         http_rewrite_response(&c->res, buf_head(&up->in), &opt, &c->out) != 0)) {
        hp_fail(c, 502, "response head too large");
        return;
    }
    buf_consume(&up->in, c->res.head_len);
    c->status = 101;
    metrics_add(&metrics_local(up->srv->metrics)->requests[1], 1);
    metrics_backend_observe(c->be->metrics, monotonic_us() - c->t_sent_us);
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
    struct lb_upstream *up = c->up;
    if (c->req_minor == 1) {
        struct http_rewrite_res opt = {.served_by = c->fe->conf->served_by};
        if (http_rewrite_response(&c->res, buf_head(&up->in), &opt, &c->out) != 0 &&
            (buf_grow(&c->out, HP_OUT_MAX) != 0 ||
             http_rewrite_response(&c->res, buf_head(&up->in), &opt, &c->out) != 0)) {
            hp_fail(c, 502, "interim response head too large");
            return;
        }
    }
    buf_consume(&up->in, c->res.head_len);
    http_parser_init(&c->rparser, true, 8192, 16384);
}

static void parse_response(struct hp_conn *c)
{
    struct lb_upstream *up = c->up;
    while (!c->res_head_done && c->up != NULL && up->in.len > 0) {
        int rc = http_parse_head(&c->rparser, buf_head(&up->in), up->in.len, &c->res);
        if (rc == -EAGAIN) {
            if (buf_tailroom(&up->in) == 0 && up->in.off == 0 && up->in.cap >= HP_UP_IN_MAX) {
                hp_fail(c, 502, "response head too large");
            }
            return;
        }
        if (rc != 0) {
            lb_server_report_failure(up->srv, &c->peer);
            log_warn("http", "invalid response from server %s: %s", up->srv->conf->name,
                     c->rparser.error != NULL ? c->rparser.error : "malformed");
            hp_fail(c, 502, "invalid response from server");
            return;
        }
        if (c->res.status == 101) {
            if (!c->is_upgrade) {
                hp_fail(c, 502, "server switched protocols without being asked");
            } else {
                start_tunnel(c);
            }
            return;
        }
        if (c->res.status < 200) {
            forward_interim(c);
            continue;
        }
        start_response(c);
    }
}

static int scan_response_body(struct hp_conn *c)
{
    struct lb_upstream *up = c->up;
    while (!c->res_body.is_done && c->res_scanned < up->in.len) {
        const char *p = buf_head(&up->in) + c->res_scanned;
        size_t avail = up->in.len - c->res_scanned;
        size_t n;
        if (c->dechunk) {
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
            int rc = body_scan(&c->res_body, p, avail, &n, dechunk_data, c);
            if (rc != 0) {
                return rc;
            }
            c->res_scanned += n;
            /* Their payload is in out now: consider the raw bytes sent. */
            buf_consume(&up->in, c->res_scanned);
            c->res_scanned = c->res_sent = 0;
            continue;
        }
        int rc = body_scan(&c->res_body, p, avail, &n, NULL, NULL);
        if (rc != 0) {
            return rc;
        }
        c->res_scanned += n;
        if (n == 0) {
            break;
        }
    }
    if (c->res_body.kind == HTTP_BODY_UNTIL_CLOSE && c->up_eof && c->res_scanned == up->in.len) {
        c->res_body.is_done = true;
    }
    return 0;
}

/* ---------------------------------------------------------------- request body */

static int scan_request_body(struct hp_conn *c)
{
    const struct conf_frontend *cf = c->fe->conf;
    if (c->req_body.is_done || c->body_scanned >= c->in.len) {
        return 0;
    }
    size_t n;
    int rc = body_scan(&c->req_body, buf_head(&c->in) + c->body_scanned,
                       c->in.len - c->body_scanned, &n, NULL, NULL);
    if (rc != 0) {
        return rc;
    }
    c->body_scanned += n;
    if (cf->max_body != 0 && c->req_body.data_bytes > cf->max_body) {
        return -EFBIG;
    }
    return 0;
}

/* Make room in `in` for more request body once what is there was sent. */
static void release_sent_body(struct hp_conn *c)
{
    if (buf_tailroom(&c->in) > 0 || c->in.cap < in_max(c) || c->body_sent == 0 ||
        c->req_body.is_done) {
        return; /* room left, or the buffer can still grow: keep the body replayable */
    }
    buf_consume(&c->in, c->body_sent);
    c->body_scanned -= c->body_sent;
    c->body_sent = 0;
    c->body_consumed = true; /* the body can no longer be replayed */
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
        hp_fail(c, 400, c->req_body.ck.error != NULL ? c->req_body.ck.error : "bad chunked body");
        return;
    }
    if (c->up->is_connected && !c->up_write_blocked) {
        rc = upstream_flush(c);
        if (rc != 0) {
            upstream_failed(c, c->rhead_sent == 0, 502, "cannot send the request to the server");
            return;
        }
    }
    release_sent_body(c);
    parse_response(c);
    if (c->state != HP_STATE_EXCHANGE) {
        return;
    }
    if (!c->res_head_done) {
        /* Interim responses (100 Continue) must reach the client now. */
        if (c->out.len != 0 && !c->client_write_blocked && client_flush(c) != 0) {
            hp_close(c, "client write failed");
        }
        return;
    }
    rc = scan_response_body(c);
    if (rc != 0) {
        lb_server_report_failure(c->up->srv, &c->peer);
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
    if (c->res_body.is_done && c->out.len == 0 && c->res_sent == c->res_scanned) {
        if (!c->req_body.is_done || c->body_sent < c->body_scanned) {
            /* The server answered before reading the whole request: no reuse. */
            c->up->is_connected = false;
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
    const struct lb_upstream *up = c->up;
    if (c->state == HP_STATE_CONNECTING) {
        return EV_WRITE;
    }
    uint32_t ev = 0;
    if (!c->up_eof && (!c->res_body.is_done || !c->res_head_done)) {
        if (buf_tailroom(&up->in) > 0 || c->res_sent > 0 || up->in.off > 0 ||
            up->in.cap < HP_UP_IN_MAX) {
            ev |= EV_READ;
        }
    }
    if (c->up_write_blocked) {
        ev |= EV_WRITE;
    }
    return ev;
}

static void update_interest(struct hp_conn *c)
{
    if (c->state == HP_STATE_CLOSED) {
        return;
    }
    if (ev_io_set(c->w->loop, &c->io, client_interest(c)) != 0) {
        hp_close(c, "epoll failed");
        return;
    }
    if (c->up != NULL && ev_io_set(c->w->loop, &c->up->io, upstream_interest(c)) != 0) {
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
    bool wait_client = (!c->req_body.is_done && in_can_take_more(c)) || c->client_write_blocked;
    if (!wait_client) {
        ev_timer_stop(loop, &c->timer);
    } else if (!ev_timer_is_active(&c->timer)) {
        ev_timer_start(loop, &c->timer, c->fe->conf->timeout_client_ms);
    }
    struct lb_upstream *up = c->up;
    if (up != NULL && up->is_connected) {
        if ((upstream_interest(c) & EV_READ) == 0 && !c->up_write_blocked) {
            ev_timer_stop(loop, &up->timer);
        } else if (!ev_timer_is_active(&up->timer)) {
            ev_timer_start(loop, &up->timer, c->be->conf->timeout_server_ms);
        }
    }
}

static void hp_step(struct hp_conn *c)
{
    for (int guard = 0; guard < 64; guard++) {
        enum hp_state before = c->state;
        const struct lb_upstream *up_before = c->up;
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
            if (c->client_eof && !c->req_body.is_done) {
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
        if (c->state == HP_STATE_CLOSED || (c->state == before && c->up == up_before)) {
            break;
        }
    }
    if (c->state == HP_STATE_EXCHANGE) {
        exchange_timers(c);
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
        if (c->log != NULL) {
            snprintf(c->log->method, sizeof(c->log->method), "-");
            snprintf(c->log->target, sizeof(c->log->target), "-");
            c->log->minor = 1;
        }
        hp_fail(c, 408, "request head not received in time");
        break;
    case HP_STATE_QUEUED:
        metrics_add(&metrics_local(c->be->metrics)->queue_timeouts, 1);
        hp_fail(c, 503, "no server slot became free in time (queue timeout)");
        break;
    case HP_STATE_EXCHANGE:
    case HP_STATE_CONNECTING:
        c->close_after = true;
        hp_fail(c, 408,
                c->req_body.is_done ? "client stopped reading the response"
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
    ssize_t n = read(c->fd, sink, sizeof(sink));
    if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
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
            if (c->state == HP_STATE_EXCHANGE && !c->req_body.is_done) {
                hp_account(c);
                hp_close(c, "client aborted the request");
                return;
            }
        } else if (n > 0 && !c->req_body.is_done &&
                   (c->state == HP_STATE_EXCHANGE || c->state == HP_STATE_CONNECTING)) {
            ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_client_ms);
        }
    }
    hp_step(c);
}

void http_conn_accept(struct lb_worker *w, struct lb_frontend *fe, int fd,
                      const struct sockaddr_storage *peer)
{
    struct hp_conn *c = calloc(1, sizeof(*c));
    if (c == NULL || buf_init(&c->in, HP_IN_SIZE) != 0 || buf_init(&c->out, HP_OUT_SIZE) != 0 ||
        buf_init(&c->rhead, HP_RHEAD_SIZE) != 0 ||
        (fe->access_log_fd != -1 && (c->log = calloc(1, sizeof(*c->log))) == NULL)) {
        if (c != NULL) {
            buf_fini(&c->in);
            buf_fini(&c->out);
            buf_fini(&c->rhead);
            free(c);
        }
        log_warn("http", "out of memory accepting a connection on %s", fe->conf->name);
        close(fd);
        return;
    }
    c->w = w;
    c->gen = fe->gen;
    lb_gen_ref(c->gen);
    c->fe = fe;
    c->be = fe->backend;
    c->fd = fd;
    c->file_fd = -1;
    c->peer = *peer;
    c->base.on_drain = on_drain;
    sock_addr_ip((const struct sockaddr *)peer, c->peer_ip, sizeof(c->peer_ip));
    http_parser_init(&c->parser, false, fe->conf->max_request_line, fe->conf->max_header);
    ev_timer_init(&c->timer, on_client_timeout, c, "client");
    c->state = HP_STATE_IDLE;
    lb_worker_conn_add(w, &c->base);
    metrics_add(&metrics_local(fe->metrics)->connections_total, 1);
    metrics_add(&metrics_local(fe->metrics)->connections_opened, 1);
    if (ev_io_start(w->loop, &c->io, fd, EV_READ, on_client_event, c, "client") != 0) {
        hp_close(c, "epoll failed");
        return;
    }
    /* A new connection must send its first request within the header timeout. */
    ev_timer_start(w->loop, &c->timer, fe->conf->timeout_header_ms);
    if (w->is_draining) {
        c->close_after = true;
    }
}
