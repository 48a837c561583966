/* SPDX-License-Identifier: MIT */
/* The HTTP/1.1 client connection's state machine: one client connection (struct hp_conn)
 * carrying a sequence of exchanges (struct hp_exchange): keep-alive, pipelining. It reads
 * and parses request heads, routes each request to a handler (the proxy, http_upstream.c;
 * keel's own responses, http_local.c), drives the handler, and goes on with the next
 * request or closes. Reads are driven by readiness, writes are attempted at once and fall
 * back to write interest. Between requests the connection holds no buffer (http_pool.h).
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

#include "core/err.h"
#include "core/fsm.h"
#include "core/log.h"
#include "core/sock.h"
#include "http/http_conn.h"
#include "http/http_local.h"
#include "http/http_path.h"
#include "http/http_pool.h"
#include "http/http_redirect.h"
#include "http/http_reply.h"
#include "http/http_static.h"
#include "http/http_transport.h"
#include "http/http_upstream.h"
#include "lb/lb.h"
#include "tls/acme_http01.h"

/* Buffers come from the thread's pool at HTTP_POOL_BUF_SIZE (4 KiB) and grow once, to their
 * maximum, when a head or a body needs it; an idle connection holds none (http_pool.h):
 * memory per connection is what limits concurrency. */
#define HP_IN_MAX 16384
#define HP_IN_EXTRA 1024 /* room for pipelined bytes after a head of max_header */
#define HP_LINGER_MS 2000

static const char *const hp_state_names[] = {"handshake",  "idle",     "read-head", "queued",
                                             "connecting", "exchange", "local",     "reply",
                                             "linger",     "closed"};

/* The one transition function: refuses to leave CLOSED (core/fsm.h) and logs every move at
 * debug. */
void hp_conn_set_state(struct hp_conn *c, enum hp_state to, const char *reason)
{
    enum hp_state from = c->state;
    if (from == HP_STATE_CLOSED) {
        char obj[32];
        (void)snprintf(obj, sizeof(obj), "conn %d", c->xp.fd);
        fsm_illegal(FSM_MACHINE_HTTP, obj, hp_state_names[from], hp_state_names[to], reason);
        return;
    }
    c->state = to;
    log_debug("http", "conn %d: %s -> %s (%s)", c->xp.fd, hp_state_names[from], hp_state_names[to],
              reason);
}

/* ---------------------------------------------------------------- lifecycle */

/* What a handler changes that calls for another pass of hp_conn_step in the same state. */
static uint32_t exchange_moves(const struct hp_conn *c)
{
    return c->ex != NULL ? c->ex->moves : 0;
}

/* Let the handler drop what it holds (idempotent). */
static void handler_release(struct hp_conn *c)
{
    if (c->ex != NULL && c->ex->handler != NULL) {
        c->ex->handler->release(c);
    }
}

/* Exchanges come from a per-thread pool: taken when a request head starts, given back when
 * its response is out. 64 per thread covers the requests a worker has in flight at once. */
static _Thread_local struct http_pool exchange_pool =
    HTTP_POOL_INIT(sizeof(struct hp_exchange), 64);

/* Take an exchange for the request whose first bytes are in c->in. Returns 0 or -ENOMEM. */
static int exchange_begin(struct hp_conn *c)
{
    struct hp_exchange *ex = http_pool_get(&exchange_pool);
    if (ex == NULL) {
        return -ENOMEM;
    }
    /* The parsed heads at the end are written by the parser before they are read. */
    memset(ex, 0, offsetof(struct hp_exchange, log_copy));
    ex->conn = c;
    ex->be = c->fe->backend;
    ex->req_bytes = c->in.len;
    ex->log = c->fe->access_log_fd != -1 ? &ex->log_copy : NULL;
    c->ex = ex;
    return 0;
}

/* Give the exchange back, after its handler dropped what it held. */
static void exchange_end(struct hp_conn *c)
{
    struct hp_exchange *ex = c->ex;
    if (ex != NULL) {
        handler_release(c);
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

void hp_conn_close(struct hp_conn *c, const char *reason)
{
    if (c->state == HP_STATE_CLOSED) {
        return;
    }
    hp_conn_set_state(c, HP_STATE_CLOSED, reason);
    handler_release(c);
    ev_io_stop(c->w->loop, &c->io);
    ev_timer_stop(c->w->loop, &c->timer);
    http_xprt_close(&c->xp);
    metrics_add(&metrics_local(c->fe->metrics)->connections_closed, 1);
    lb_worker_conn_remove(c->w, &c->base);
    ev_release_later(c->w->loop, hp_free, c);
}

/* Close after what is already queued for the client: shut the write side, then discard
 * input until the client closes, so unread bytes do not turn our close into a reset that
 * destroys the response before the client read it. */
void hp_conn_linger(struct hp_conn *c)
{
    handler_release(c);
    hp_conn_set_state(c, HP_STATE_LINGER, "closing");
    (void)http_xprt_shutdown(&c->xp); /* failure: the peer is gone, the read sees it */
    ev_timer_start(c->w->loop, &c->timer, HP_LINGER_MS);
    if (ev_io_set(c->w->loop, &c->io, http_xprt_events(&c->xp, EV_READ)) != 0) {
        hp_conn_close(c, "epoll failed");
    }
}

static void on_drain(struct lb_conn_base *base)
{
    struct hp_conn *c = (struct hp_conn *)base;
    if (c->state == HP_STATE_HANDSHAKE || (c->state == HP_STATE_IDLE && c->in.len == 0)) {
        hp_conn_close(c, "draining");
    } else {
        c->close_after = true;
    }
}

/* ---------------------------------------------------------------- client I/O */

size_t hp_conn_in_max(const struct hp_conn *c)
{
    size_t m = (size_t)c->fe->conf->max_header + HP_IN_EXTRA;
    return m > HP_IN_MAX ? m : HP_IN_MAX;
}

bool hp_conn_in_can_take_more(const struct hp_conn *c)
{
    return buf_tailroom(&c->in) > 0 || c->in.off > 0 || c->in.cap < hp_conn_in_max(c);
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
            (c->in.cap >= hp_conn_in_max(c) || buf_grow(&c->in, hp_conn_in_max(c)) != 0)) {
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

/* ---------------------------------------------------------------- body framing */

void hp_body_init(struct hp_body *b, enum http_body_kind kind, uint64_t length)
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

int hp_body_scan(struct hp_body *b, const char *p, size_t len, size_t *n,
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
    hp_conn_set_state(c, HP_STATE_IDLE, "keep-alive");
    ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_idle_ms);
}

void hp_exchange_account(struct hp_conn *c)
{
    unsigned cls = metrics_class(c->ex->status);
    metrics_add(&metrics_local(c->fe->metrics)->requests[cls], 1);
    if (c->ex->be != NULL && c->ex->status != 0) {
        metrics_add(&metrics_local(c->ex->be->metrics)->requests[cls], 1);
    }
    http_reply_access_log(c);
}

void hp_conn_fail(struct hp_conn *c, int status, const char *detail)
{
    if (c->ex->res_started) {
        /* Part of a response is already out: the only honest signal left is a close. */
        char ip[SOCK_IP_MAX];
        log_warn("http", "closing %s mid-response: %s", hp_conn_ip(c, ip), detail);
        c->ex->error_detail = detail;
        hp_exchange_account(c);
        hp_conn_close(c, detail);
        return;
    }
    handler_release(c);
    if (http_buf_acquire(&c->out) != 0) {
        hp_exchange_account(c);
        hp_conn_close(c, "out of memory for an error response");
        return;
    }
    c->out.off = c->out.len = 0;
    c->ex->status = status;
    c->ex->error_detail = detail;
    http_reply_error(c, status, detail);
    hp_exchange_account(c);
    hp_conn_set_state(c, HP_STATE_REPLY, detail);
    ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_client_ms);
}

void hp_exchange_done(struct hp_conn *c)
{
    bool keep =
        !c->close_after && c->ex->req_keepalive && c->ex->req_body.is_done && !c->client_eof;
    if (keep) {
        reset_for_next_request(c);
    } else if (c->out.len == 0) {
        hp_conn_linger(c);
    } else {
        hp_conn_set_state(c, HP_STATE_REPLY, "last response");
    }
}

void hp_conn_handed_over(struct hp_conn *c, const char *reason)
{
    ev_io_stop(c->w->loop, &c->io);
    ev_timer_stop(c->w->loop, &c->timer);
    hp_conn_set_state(c, HP_STATE_CLOSED, reason);
    lb_worker_conn_remove(c->w, &c->base);
    ev_release_later(c->w->loop, hp_free, c);
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

/* ---------------------------------------------------------------- routing */

/* Choose the handler of the request from the frontend's locations. Returns true when keel
 * answers it itself (or refused it), false to proxy it to c->ex->be. */
static bool route_request(struct hp_conn *c)
{
    char path[1024];
    size_t plen = 0;
    const struct http_msg *m = &c->ex->req;
    int rc = http_path_normalize(buf_head(&c->in) + m->target.off, m->target.len, path,
                                 sizeof(path), &plen);
    if (rc == -KEEL_EHTTP_BAD_REQUEST) {
        c->close_after = true;
        hp_conn_fail(c, 400, "invalid request path");
        return true;
    }
    if (rc != 0) {
        hp_local_start_text(c, rc == -EACCES ? 403 : 404,
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
    case CONF_LOC_RETURN:
        hp_local_start_location(c, loc, i, path, plen);
        return true;
    case CONF_LOC_NONE:
        break;
    }
    hp_local_start_text(c, 500, "location without an action");
    return true;
}

/* An ACME http-01 validation (RFC 8555 section 8.3) on a plain-HTTP connection: answered
 * with the key authorization before routing and before any redirect to HTTPS, since the
 * CA fetches it over plain HTTP on port 80. Returns true when it answered. */
static bool answer_acme_challenge(struct hp_conn *c)
{
    const struct http_msg *m = &c->ex->req;
    char ka[ACME_KEYAUTH_MAX];
    if (http_xprt_is_secure(&c->xp) ||
        (m->method != HTTP_METHOD_GET && m->method != HTTP_METHOD_HEAD) ||
        !acme_http01_lookup(buf_head(&c->in) + m->target.off, m->target.len, ka, sizeof(ka))) {
        return false;
    }
    hp_local_start_body(c, 200, ka, strlen(ka));
    return true;
}

/* A request head is complete at the start of c->in: note what the exchange needs of it,
 * then hand it to its handler. */
static void start_request(struct hp_conn *c)
{
    const char *buf = buf_head(&c->in);
    c->ex->t_start_ms = ev_now_ms(c->w->loop);
    c->ex->method = c->ex->req.method;
    c->ex->req_minor = c->ex->req.version_minor;
    c->ex->req_keepalive = http_msg_keepalive(&c->ex->req);
    if (c->ex->log != NULL) {
        copy_log_fields(c, buf);
    }
    hp_body_init(&c->ex->req_body, http_request_body_kind(&c->ex->req), c->ex->req.content_length);
    c->ex->be = c->fe->backend;
    if (answer_acme_challenge(c)) {
        return;
    }
    /* redirect_https: a request on a plain bind goes to https, except ACME's http-01
     * challenges (RFC 8555 8.3), which the CA makes over plain HTTP: those keel answers
     * itself just above; any other path under /.well-known/acme-challenge/ goes through the
     * locations like any other request. */
    if (c->fe->conf->tls.redirect_https && !http_xprt_is_secure(&c->xp) &&
        !http_redirect_is_acme(buf + c->ex->req.target.off, c->ex->req.target.len)) {
        hp_local_start_redirect_https(c);
        return;
    }
    if (c->fe->conf->n_locations > 0 && route_request(c)) {
        return;
    }
    if (c->ex->be == NULL) {
        hp_local_start_text(c, 404, "no location matches this path");
        return;
    }
    hp_proxy_start(c);
}

static void parse_head(struct hp_conn *c)
{
    if (c->state == HP_STATE_IDLE) {
        if (c->ex == NULL && exchange_begin(c) != 0) {
            char ip[SOCK_IP_MAX];
            log_warn("http", "out of memory for a request from %s", hp_conn_ip(c, ip));
            hp_conn_close(c, "out of memory");
            return;
        }
        hp_conn_set_state(c, HP_STATE_READ_HEAD, "request bytes");
        ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_header_ms);
    }
    int rc = http_parse_head(&c->parser, buf_head(&c->in), c->in.len, &c->ex->req);
    if (rc == -EAGAIN) {
        if (c->client_eof) {
            hp_conn_close(c, "client closed mid-head");
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
        hp_conn_fail(c, http_parse_error_status(rc),
                     c->parser.error != NULL ? c->parser.error : "malformed request");
        return;
    }
    start_request(c);
}

/* ---------------------------------------------------------------- handshake */

/* Bring the transport up (TLS) before the first request; the connection asks for no input
 * meanwhile, the transport says what it waits for (events(x, 0)). Done: the first request
 * has timeout_header from now. */
static void run_handshake(struct hp_conn *c)
{
    int rc = http_xprt_handshake(&c->xp);
    if (rc == -EAGAIN) {
        return;
    }
    struct metrics_frontend_c *m = metrics_local(c->fe->metrics);
    if (rc == 0) {
        metrics_add(&m->handshakes, 1);
        struct http_xprt_info done;
        http_xprt_get_info(&c->xp, &done);
        if (done.is_resumed) {
            metrics_add(&m->handshakes_resumed, 1);
        }
        hp_conn_set_state(c, HP_STATE_IDLE, "handshake done");
        ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_header_ms);
        return;
    }
    if (rc == -ECONNABORTED) { /* closed before a byte: a port probe, not a failure */
        hp_conn_close(c, "closed before the handshake");
        return;
    }
    struct http_xprt_info info;
    http_xprt_get_info(&c->xp, &info);
    metrics_add(&m->handshake_failures, 1);
    char ip[SOCK_IP_MAX];
    log_info("http", "%s: %s handshake with %s failed: %s%s%s", c->fe->conf->name, c->xp.ops->name,
             hp_conn_ip(c, ip), err_str(rc), info.error != NULL ? ": " : "",
             info.error != NULL ? info.error : "");
    hp_conn_close(c, "handshake failed");
}

/* ---------------------------------------------------------------- the pump */

static uint32_t client_interest(const struct hp_conn *c)
{
    uint32_t ev = c->step_again ? EV_WRITE : 0; /* writable at once: the next iteration */
    switch (c->state) {
    case HP_STATE_HANDSHAKE: /* the transport's own interest: events(x, 0) */
        break;
    case HP_STATE_IDLE:
    case HP_STATE_READ_HEAD:
        if (hp_conn_in_can_take_more(c)) {
            ev |= EV_READ;
        }
        break;
    case HP_STATE_EXCHANGE:
    case HP_STATE_LOCAL:
    case HP_STATE_CONNECTING:
    case HP_STATE_QUEUED:
        /* Keep reading after the request is complete too: it sees a client that closes,
         * buffers pipelined requests, and saves two epoll_ctl calls per request. */
        if (!c->client_eof && hp_conn_in_can_take_more(c)) {
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

static void update_interest(struct hp_conn *c)
{
    if (c->state == HP_STATE_CLOSED) {
        return;
    }
    if (ev_io_set(c->w->loop, &c->io, http_xprt_events(&c->xp, client_interest(c))) != 0) {
        hp_conn_close(c, "epoll failed");
        return;
    }
}

/* Write c->out (an error response) to the client. Returns 0 (all written, or the socket is
 * full) or -errno. */
static int write_out(struct hp_conn *c)
{
    while (c->out.len > 0) {
        ssize_t n = http_xprt_write(&c->xp, buf_head(&c->out), c->out.len, 0);
        if (n < 0) {
            if (n == -EAGAIN) {
                c->client_write_blocked = true;
                return 0;
            }
            return (int)n;
        }
        metrics_add(&metrics_local(c->fe->metrics)->bytes_out, (uint64_t)n);
        c->ex->res_bytes += (uint64_t)n;
        buf_consume(&c->out, (size_t)n);
    }
    c->client_write_blocked = false;
    return 0;
}

/* Passes of one step_pass call: a request takes two or three, so about 25 pipelined
 * requests are answered before the worker serves its other connections. */
#define HP_STEP_PASSES 64

/* Run the state machine until it stops moving, then the handler's sync. Returns true when it
 * stopped at its bound while still moving. */
static bool step_pass(struct hp_conn *c)
{
    int pass;
    for (pass = 0; pass < HP_STEP_PASSES; pass++) {
        enum hp_state before = c->state;
        uint32_t moves_before = exchange_moves(c);
        switch (c->state) {
        case HP_STATE_HANDSHAKE:
            run_handshake(c);
            break;
        case HP_STATE_IDLE:
        case HP_STATE_READ_HEAD:
            if (c->in.len > 0) {
                parse_head(c);
            } else if (c->client_eof) {
                hp_conn_close(c, "client closed");
            }
            break;
        case HP_STATE_QUEUED:
        case HP_STATE_CONNECTING:
        case HP_STATE_EXCHANGE:
        case HP_STATE_LOCAL:
            c->ex->handler->step(c);
            break;
        case HP_STATE_REPLY:
            if (write_out(c) != 0) {
                hp_conn_close(c, "client write failed");
            } else if (c->out.len == 0) {
                hp_conn_linger(c);
            }
            break;
        case HP_STATE_LINGER:
        case HP_STATE_CLOSED:
            break;
        }
        /* Done once a pass moves nothing: same state, and the handler did not start over.
         * A retry on a pooled connection after a failed send stays in EXCHANGE with a
         * request still to send (the proxy counts the new server connection in moves);
         * stopping there left it unsent until the client gave up. */
        if (c->state == HP_STATE_CLOSED ||
            (c->state == before && exchange_moves(c) == moves_before)) {
            break;
        }
    }

    if (c->state != HP_STATE_CLOSED && c->ex != NULL && c->ex->handler != NULL &&
        c->ex->handler->sync != NULL) {
        c->ex->handler->sync(c); /* the handler's timers and fds; may fail the request */
    }
    if (c->in.len == 0 && c->in.cap == HTTP_POOL_BUF_SIZE && c->state != HP_STATE_CLOSED) {
        /* Nothing read is waiting (idle, or a request waiting for its server): the buffer
         * goes back to the pool and the next readable event takes one again. A buffer grown
         * for a streamed body stays until the connection goes idle (release_idle_memory):
         * freeing it here meant a malloc and a free for every buffer of body. */
        http_buf_release(&c->in);
    }
    return pass == HP_STEP_PASSES;
}

static bool client_input(struct hp_conn *c, ssize_t *got);

/* Rounds of decoded input taken in one hp_conn_step call. */
#define HP_PENDING_ROUNDS 16

void hp_conn_step(struct hp_conn *c)
{
    bool more = step_pass(c);
    /* Bytes the transport decoded and keeps (TLS records read ahead) make no fd readable:
     * while the connection wants input, take them and go on (pipelined requests held while
     * a response was written, input that did not fit before). */
    int round = 0;
    for (;
         round < HP_PENDING_ROUNDS && c->state != HP_STATE_CLOSED && c->state != HP_STATE_LINGER &&
         http_xprt_has_pending(&c->xp) && (client_interest(c) & EV_READ) != 0;
         round++) {
        ssize_t got = 0;
        if (!client_input(c, &got)) {
            return;
        }
        if (got <= 0) {
            break; /* only part of a record: the rest makes the fd readable */
        }
        more = step_pass(c);
    }
    /* Stopped by a bound while still moving: nothing may announce the rest (pipelined
     * requests already in `in`, decoded bytes the transport keeps make no readable event),
     * so come back next iteration. They stalled until the client gave up before. */
    c->step_again = more || (round == HP_PENDING_ROUNDS && http_xprt_has_pending(&c->xp));
    update_interest(c);
}

/* ---------------------------------------------------------------- client events */

static void on_client_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct hp_conn *c = t->data;
    switch (c->state) {
    case HP_STATE_HANDSHAKE:
        metrics_add(&metrics_local(c->fe->metrics)->handshake_timeouts, 1);
        char ip[SOCK_IP_MAX];
        log_info("http", "%s: %s handshake with %s not done in time (timeout_handshake)",
                 c->fe->conf->name, c->xp.ops->name, hp_conn_ip(c, ip));
        hp_conn_close(c, "handshake timeout");
        return;
    case HP_STATE_IDLE:
        hp_conn_close(c, "idle timeout");
        return;
    case HP_STATE_READ_HEAD:
        c->close_after = true;
        if (c->ex->log != NULL) {
            snprintf(c->ex->log->method, sizeof(c->ex->log->method), "-");
            snprintf(c->ex->log->target, sizeof(c->ex->log->target), "-");
            c->ex->log->minor = 1;
        }
        hp_conn_fail(c, 408, "request head not received in time");
        break;
    case HP_STATE_QUEUED: /* the queue's own timeout is the session's (lb_session.h) */
    case HP_STATE_EXCHANGE:
    case HP_STATE_CONNECTING:
        c->close_after = true;
        hp_conn_fail(c, 408,
                     c->ex->req_body.is_done ? "client stopped reading the response"
                                             : "client stopped sending the request body");
        break;
    case HP_STATE_LOCAL:
    case HP_STATE_REPLY:
    case HP_STATE_LINGER:
        hp_conn_close(c, "client did not read or close in time");
        return;
    case HP_STATE_CLOSED:
        return;
    }
    hp_conn_step(c);
}

static void linger_input(struct hp_conn *c)
{
    char sink[4096];
    ssize_t n;
    int rounds = 0;
    do { /* what a transport decoded and keeps (TLS) announces no readiness: drain it */
        n = http_xprt_read(&c->xp, sink, sizeof(sink));
    } while (n > 0 && http_xprt_has_pending(&c->xp) && ++rounds < 16);
    if (n == 0 || (n < 0 && n != -EAGAIN)) {
        hp_conn_close(c, "closed");
    }
}

/* Read what the client sent (or its transport holds) into `in`; *got is what the read
 * returned. Notes an EOF; a client that gives up in the middle of its request body ends
 * the exchange. Returns false when the connection closed. */
static bool client_input(struct hp_conn *c, ssize_t *got)
{
    ssize_t n = client_read(c);
    *got = n;
    if (n == 0 || (n < 0 && n != -EAGAIN && n != -ENOBUFS)) {
        c->client_eof = true;
        if (c->state == HP_STATE_EXCHANGE && !c->ex->req_body.is_done) {
            hp_exchange_account(c);
            hp_conn_close(c, "client aborted the request");
            return false;
        }
    } else if (n > 0 &&
               (c->state == HP_STATE_EXCHANGE || c->state == HP_STATE_CONNECTING ||
                c->state == HP_STATE_QUEUED) &&
               !c->ex->req_body.is_done) {
        ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_client_ms);
    }
    return true;
}

static void on_client_event(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    struct hp_conn *c = io->data;
    if (c->state == HP_STATE_LINGER) {
        linger_input(c);
        return;
    }
    c->step_again = false; /* this event is the pass it asked for */
    if ((events & (EV_READ | EV_WRITE)) == 0 && (events & EV_ERROR) != 0) {
        /* A reset or hangup while keel asked for nothing (input full, or the client's
         * EOF already read): the client is gone, nothing can reach it any more. */
        if (c->state == HP_STATE_EXCHANGE || c->state == HP_STATE_CONNECTING ||
            c->state == HP_STATE_QUEUED) {
            hp_exchange_account(c);
        }
        hp_conn_close(c, "client connection reset");
        return;
    }
    if (c->state == HP_STATE_HANDSHAKE) {
        hp_conn_step(c); /* any readiness: the handshake takes the step it can */
        return;
    }
    /* The transport says which readiness serves writing and reading: the same for TCP; for
     * TLS a read may wait for room to write (and a write for bytes to read). */
    if ((events & http_xprt_events(&c->xp, EV_WRITE)) != 0) {
        c->client_write_blocked = false;
        if (c->state == HP_STATE_EXCHANGE) {
            /* The client read some of the response: it has timeout_client again. */
            ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_client_ms);
        }
    }
    ssize_t got;
    if ((events & http_xprt_events(&c->xp, EV_READ)) != 0 && !client_input(c, &got)) {
        return;
    }
    hp_conn_step(c);
}

void http_conn_accept(struct lb_worker *w, struct lb_frontend *fe,
                      const struct http_xprt_conf *xprt, int fd,
                      const struct sockaddr_storage *peer)
{
    /* No buffer yet: the first readable event takes one (http_pool.h). */
    struct hp_conn *c = calloc(1, sizeof(*c));
    int rc = c != NULL ? http_xprt_open(&c->xp, xprt, fd, HTTP_XPRT_ACCEPTED) : -ENOMEM;
    if (rc != 0) {
        log_warn("http", "cannot accept a connection on %s (%s transport): %s", fe->conf->name,
                 http_xprt_conf_name(xprt), err_str(rc));
        free(c);
        close(fd); /* the transport did not take it */
        return;
    }
    c->w = w;
    c->gen = fe->gen;
    lb_gen_ref(c->gen);
    c->fe = fe;
    sock_peer_set(&c->peer, peer);
    c->base.on_drain = on_drain;
    http_parser_init(&c->parser, false, fe->conf->max_request_line, fe->conf->max_header);
    ev_timer_init(&c->timer, on_client_timeout, c, "client");
    /* A transport with a handshake (TLS) comes up first, within timeout_handshake; then, or
     * at once, the first request must arrive within the header timeout. */
    bool has_handshake = c->xp.ops->handshake != NULL;
    c->state = has_handshake ? HP_STATE_HANDSHAKE : HP_STATE_IDLE;
    lb_worker_conn_add(w, &c->base);
    metrics_add(&metrics_local(fe->metrics)->connections_total, 1);
    metrics_add(&metrics_local(fe->metrics)->connections_opened, 1);
    if (ev_io_start(w->loop, &c->io, fd, http_xprt_events(&c->xp, client_interest(c)),
                    on_client_event, c, "client") != 0) {
        hp_conn_close(c, "epoll failed");
        return;
    }
    ev_timer_start(w->loop, &c->timer,
                   has_handshake ? fe->conf->timeout_handshake_ms : fe->conf->timeout_header_ms);
    if (w->is_draining) {
        c->close_after = true;
    }
}
