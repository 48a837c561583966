/* SPDX-License-Identifier: MIT */
/* The tunnel an HTTP connection becomes after 101 Switching Protocols: bytes relayed both
 * ways through two bounded buffers, with back-pressure (a side is read only while its
 * buffer has room), half-close propagation (EOF from one side shuts the other's write side
 * once the buffer is drained) and one idle timer (timeout_tunnel). It knows nothing of the
 * protocol inside (WebSocket frames pass through untouched). The decision to tunnel and
 * the 101 head are http_proxy.c's. */
#include "http/http_tunnel.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sock.h"
#include "http/http_proxy-t.h"
#include "http/http_transport.h"
#include "lb/lb.h"
#include "lb/lb_session.h"

/* Each direction buffers at most this much (more only for bytes already read when the
 * tunnel starts); a full buffer stops reading from its source. */
#define HT_BUF_SIZE 16384

enum ht_state {
    HT_STATE_OPEN = 0, /* bytes flow both ways */
    HT_STATE_HALF,     /* one side sent EOF and its direction is drained and shut: the
                        * other direction still flows (RFC 9293 section 3.6 half-close) */
    HT_STATE_CLOSED    /* both sockets closed; freed at the end of the loop iteration */
};

static const char *const ht_state_names[] = {"open", "half-closed", "closed"};

/* One direction: bytes read from one socket wait in buf until written to the other. */
struct ht_pipe {
    struct buf buf;
    bool is_eof;                   /* the source sent EOF (or had before the tunnel started) */
    bool is_shut;                  /* EOF passed on: the destination's write side is shut */
    bool is_blocked;               /* the last write to the destination returned EAGAIN */
    uint64_t bytes;                /* carried, for the log */
    _Atomic uint64_t *in_counter;  /* metrics: bytes read from the source */
    _Atomic uint64_t *out_counter; /* metrics: bytes written to the destination */
};

struct http_tunnel {
    struct lb_conn_base base; /* first: the worker's connection list */
    struct lb_worker *w;
    struct lb_gen *gen; /* reference held for the tunnel's life */
    struct lb_frontend *fe;
    struct lb_backend *be;
    struct lb_server *srv; /* the server slot, held (active counted) until the close */
    enum ht_state state;
    struct http_xprt cx; /* the client's transport, taken from the HTTP connection */
    struct http_xprt sx; /* the server's, taken from the upstream connection */
    struct ev_io cio;
    struct ev_io sio;
    struct ev_timer timer; /* timeout_tunnel: no byte moved either way */
    struct ev_defer defer;
    char peer_ip[SOCK_IP_MAX];
    struct ht_pipe up;   /* client -> server */
    struct ht_pipe down; /* server -> client (starts with the 101 head) */
};

/* ---------------------------------------------------------------- the upgrade decision */

/* Whether the comma-separated protocol list v[0, len) names h2c (RFC 9110 section 7.8:
 * protocol-name ["/" protocol-version]). */
static bool names_h2c(const char *v, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ',' || v[i] == ' ' || v[i] == '\t')) {
            i++;
        }
        size_t start = i;
        while (i < len && v[i] != ',' && v[i] != '/' && v[i] != ' ' && v[i] != '\t') {
            i++;
        }
        if (i - start == 3 && strncasecmp(v + start, "h2c", 3) == 0) {
            return true;
        }
        while (i < len && v[i] != ',') {
            i++;
        }
    }
    return false;
}

bool http_tunnel_requested(const struct http_msg *req, const char *buf)
{
    /* A server must ignore Upgrade in an HTTP/1.0 request (RFC 9110 section 7.8), and
     * CONNECT is a different tunnel that keel does not offer. */
    if (req->version_minor != 1 || req->method == HTTP_METHOD_CONNECT ||
        (req->flags & HTTP_F_CONN_UPGRADE) == 0) {
        return false;
    }
    bool has_protocol = false;
    for (uint32_t i = 0; i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (!http_span_eq(buf, h->name, "upgrade", 7)) {
            continue;
        }
        /* h2c would hand the connection to HTTP/2 behind keel's back (request smuggling
         * past the proxy's routing); keel does not speak it, so the whole upgrade goes. */
        if (names_h2c(buf + h->value.off, h->value.len)) {
            return false;
        }
        has_protocol = has_protocol || h->value.len > 0;
    }
    return has_protocol;
}

/* ---------------------------------------------------------------- lifecycle */

/* The one transition function: states only move forward (open -> half-closed -> closed,
 * or open -> closed). */
static void ht_set_state(struct http_tunnel *t, enum ht_state to, const char *reason)
{
    if (to <= t->state) {
        log_error("http", "tunnel: illegal transition %s -> %s (%s)", ht_state_names[t->state],
                  ht_state_names[to], reason);
        return;
    }
    log_debug("http", "tunnel %d: %s -> %s (%s)", t->cx.fd, ht_state_names[t->state],
              ht_state_names[to], reason);
    t->state = to;
}

static void ht_free(struct ev_loop *loop, void *data)
{
    (void)loop;
    struct http_tunnel *t = data;
    buf_fini(&t->up.buf);
    buf_fini(&t->down.buf);
    lb_gen_unref(t->gen);
    free(t);
}

static void ht_close(struct http_tunnel *t, const char *reason)
{
    if (t->state == HT_STATE_CLOSED) {
        return;
    }
    log_debug("http", "tunnel from %s to %s closed: %s (%lu bytes up, %lu down)", t->peer_ip,
              t->srv->conf->name, reason, (unsigned long)t->up.bytes, (unsigned long)t->down.bytes);
    ht_set_state(t, HT_STATE_CLOSED, reason);
    ev_io_stop(t->w->loop, &t->cio);
    ev_io_stop(t->w->loop, &t->sio);
    ev_timer_stop(t->w->loop, &t->timer);
    http_xprt_close(&t->cx);
    http_xprt_close(&t->sx);
    lb_server_release(t->srv);
    if (t->w->n_waiters > 0) {
        lb_worker_kick_queue(t->w);
    }
    struct metrics_frontend_c *fm = metrics_local(t->fe->metrics);
    metrics_add(&fm->tunnels_closed, 1);
    metrics_add(&fm->connections_closed, 1);
    lb_worker_conn_remove(t->w, &t->base);
    ev_defer(t->w->loop, &t->defer, ht_free, t);
}

static void on_server_down(struct lb_conn_base *base)
{
    struct http_tunnel *t = (struct http_tunnel *)base;
    if (t->be->conf->shutdown_on_down && !atomic_load(&t->srv->is_up)) {
        ht_close(t, "server marked down");
    }
}

static void on_drain(struct lb_conn_base *base)
{
    /* A tunnel has no message boundary to stop at: it ends when a side closes, at its
     * idle timeout, or when timeout_drain stops the process (as a TCP relay does). */
    (void)base;
}

/* ---------------------------------------------------------------- the relay */

/* Read what fits from x into p. Returns 0, or -errno when the source failed. */
static int pipe_read(struct ht_pipe *p, struct http_xprt *x, bool *moved)
{
    if (p->is_eof) {
        return 0;
    }
    if (buf_tailroom(&p->buf) == 0) {
        buf_compact(&p->buf);
        if (buf_tailroom(&p->buf) == 0) {
            return 0; /* full: back-pressure until the destination takes some */
        }
    }
    ssize_t n = http_xprt_read(x, buf_tail(&p->buf), buf_tailroom(&p->buf));
    if (n < 0) {
        return n == -EAGAIN ? 0 : (int)n;
    }
    if (n == 0) {
        p->is_eof = true;
        return 0;
    }
    buf_commit(&p->buf, (size_t)n);
    metrics_add(p->in_counter, (uint64_t)n);
    *moved = true;
    /* Bytes a transport decoded and keeps (TLS) make no fd readable: take what fits. */
    while (buf_tailroom(&p->buf) > 0 && http_xprt_has_pending(x)) {
        n = http_xprt_read(x, buf_tail(&p->buf), buf_tailroom(&p->buf));
        if (n <= 0) {
            break; /* EOF or an error shows again on the next read */
        }
        buf_commit(&p->buf, (size_t)n);
        metrics_add(p->in_counter, (uint64_t)n);
    }
    return 0;
}

/* Write p's bytes to x; once the source's EOF is drained, shut x's write side. Returns
 * 0, or -errno when the destination failed. */
static int pipe_write(struct ht_pipe *p, struct http_xprt *x, bool *moved)
{
    p->is_blocked = false;
    while (p->buf.len > 0) {
        ssize_t n = http_xprt_write(x, buf_head(&p->buf), p->buf.len, 0);
        if (n < 0) {
            if (n == -EAGAIN) {
                p->is_blocked = true;
                return 0;
            }
            return (int)n;
        }
        buf_consume(&p->buf, (size_t)n);
        p->bytes += (uint64_t)n;
        metrics_add(p->out_counter, (uint64_t)n);
        *moved = true;
    }
    if (p->is_eof && !p->is_shut) {
        p->is_shut = true;
        int rc = http_xprt_shutdown(x);
        if (rc != 0 && rc != -EAGAIN) { /* -EAGAIN: TLS sends its close_notify later */
            return rc;
        }
    }
    return 0;
}

static uint32_t read_interest(const struct ht_pipe *from, const struct ht_pipe *to)
{
    uint32_t ev = 0;
    if (!from->is_eof && (buf_tailroom(&from->buf) > 0 || from->buf.off > 0)) {
        ev |= EV_READ;
    }
    if (to->is_blocked) {
        ev |= EV_WRITE;
    }
    return ev;
}

/* Move what can be moved both ways, then set interest and the idle timer. */
/* Whether x keeps decoded bytes (TLS) that p has room for now: no readiness announces them. */
static bool pending_fits(const struct ht_pipe *p, const struct http_xprt *x)
{
    return !p->is_eof && http_xprt_has_pending(x) && (buf_tailroom(&p->buf) > 0 || p->buf.off > 0);
}

static void relay(struct http_tunnel *t)
{
    bool moved = false;
    for (int pass = 0; pass < 4; pass++) {
        int rc = pipe_read(&t->up, &t->cx, &moved);
        if (rc == 0) {
            rc = pipe_write(&t->up, &t->sx, &moved);
        }
        if (rc != 0) {
            ht_close(t, "client->server failed");
            return;
        }
        rc = pipe_read(&t->down, &t->sx, &moved);
        if (rc == 0) {
            rc = pipe_write(&t->down, &t->cx, &moved);
        }
        if (rc != 0) {
            ht_close(t, "server->client failed");
            return;
        }
        if (!pending_fits(&t->up, &t->cx) && !pending_fits(&t->down, &t->sx)) {
            break;
        }
    }
    if (t->up.is_shut && t->down.is_shut) {
        ht_close(t, "both sides closed");
        return;
    }
    if (t->state == HT_STATE_OPEN && (t->up.is_shut || t->down.is_shut)) {
        ht_set_state(t, HT_STATE_HALF, t->up.is_shut ? "client sent EOF" : "server sent EOF");
    }
    if (ev_io_set(t->w->loop, &t->cio, http_xprt_events(&t->cx, read_interest(&t->up, &t->down))) !=
            0 ||
        ev_io_set(t->w->loop, &t->sio, http_xprt_events(&t->sx, read_interest(&t->down, &t->up))) !=
            0) {
        ht_close(t, "epoll failed");
        return;
    }
    if (moved) {
        ev_timer_start(t->w->loop, &t->timer, t->fe->conf->timeout_tunnel_ms);
    }
}

/* Whether fd is in error or hung up now (poll with a zero timeout: never blocks). */
static bool is_hung_up(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = 0};
    int n;
    do {
        n = poll(&pfd, 1, 0);
    } while (n == -1 && errno == EINTR);
    return n == 1 && (pfd.revents & (POLLERR | POLLHUP)) != 0;
}

static void on_event(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    struct http_tunnel *t = io->data;
    if (io->events == 0 && events != 0) {
        /* Nothing is asked of this socket. Either the event was collected before relay()
         * (for the other socket, in the same batch) dropped the interest, or epoll reports
         * an error or hangup, which it does even on a socket asked for nothing (ev.c turns
         * it into EV_READ): then act now or spin. A socket whose both directions are
         * finished is just forgotten; any other was reset. */
        if (!is_hung_up(io->fd)) {
            return;
        }
        bool is_client = io == &t->cio;
        bool is_done =
            is_client ? t->up.is_eof && t->down.is_shut : t->down.is_eof && t->up.is_shut;
        if (!is_done) {
            ht_close(t, is_client ? "client reset the connection" : "server reset the connection");
            return;
        }
        ev_io_stop(loop, io);
        return;
    }
    relay(t); /* level-triggered: relay tries every direction that has work */
}

static void on_timeout(struct ev_loop *loop, struct ev_timer *timer)
{
    (void)loop;
    ht_close(timer->data, "idle timeout (timeout_tunnel)");
}

/* ---------------------------------------------------------------- the hand-over */

/* A buffer of at least HT_BUF_SIZE holding a then b. Returns 0 or -ENOMEM. */
static int buf_init_with(struct buf *dst, const struct buf *a, const struct buf *b)
{
    size_t n = a->len + (b != NULL ? b->len : 0);
    if (buf_init(dst, n > HT_BUF_SIZE ? n : HT_BUF_SIZE) != 0) {
        return -ENOMEM;
    }
    /* a may have no storage (an idle connection's input buffer is released). */
    bool ok = (a->len == 0 || buf_append(dst, buf_head(a), a->len)) &&
              (b == NULL || b->len == 0 || buf_append(dst, buf_head(b), b->len));
    (void)ok; /* sized for both above */
    return 0;
}

int http_tunnel_start(struct hp_conn *c)
{
    struct http_tunnel *t = calloc(1, sizeof(*t));
    if (t == NULL || buf_init_with(&t->up.buf, &c->in, NULL) != 0 ||
        buf_init_with(&t->down.buf, &c->out, &c->ex->h.px.up->in) != 0) {
        if (t != NULL) {
            buf_fini(&t->up.buf);
            free(t);
        }
        char ip[SOCK_IP_MAX];
        log_warn("http", "out of memory starting a tunnel for %s", hp_conn_ip(c, ip));
        return -ENOMEM;
    }
    struct lb_worker *w = c->w;
    struct lb_upstream *up = c->ex->h.px.up;
    t->w = w;
    t->gen = c->gen;
    lb_gen_ref(t->gen);
    t->fe = c->fe;
    t->be = c->ex->be;
    t->srv = c->ex->h.px.sess.srv;
    http_xprt_move(&t->cx, &c->xp);
    hp_conn_ip(c, t->peer_ip);
    t->up.is_eof = c->client_eof;
    t->base.on_drain = on_drain;
    t->base.on_server_down = on_server_down;
    struct metrics_frontend_c *fm = metrics_local(t->fe->metrics);
    struct metrics_server_c *sm = metrics_local(t->srv->metrics);
    t->up.in_counter = &fm->bytes_in;
    t->up.out_counter = &sm->bytes_out;
    t->down.in_counter = &sm->bytes_in;
    t->down.out_counter = &fm->bytes_out;

    /* Take the server socket out of the upstream, which is then closed without it (its
     * io leaves epoll with the fd still open, so sio can register it again). */
    http_xprt_move(&t->sx, &up->xp);
    up->owner = NULL;
    lb_upstream_close(up);
    c->ex->h.px.up = NULL;
    (void)lb_session_take_slot(&c->ex->h.px.sess); /* = t->srv, the tunnel's now */

    ev_timer_init(&t->timer, on_timeout, t, "tunnel");
    lb_worker_conn_add(w, &t->base);
    metrics_add(&fm->tunnels_opened, 1);
    log_debug("http", "tunnel from %s to server %s open", t->peer_ip, t->srv->conf->name);
    if (ev_io_start(w->loop, &t->cio, t->cx.fd, 0, on_event, t, "tunnel-client") != 0 ||
        ev_io_start(w->loop, &t->sio, t->sx.fd, 0, on_event, t, "tunnel-server") != 0) {
        ht_close(t, "epoll failed");
        return 0; /* the sockets are the tunnel's: it closed them */
    }
    ev_timer_start(w->loop, &t->timer, t->fe->conf->timeout_tunnel_ms);
    relay(t);
    return 0;
}
