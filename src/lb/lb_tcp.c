/* SPDX-License-Identifier: MIT */
/* TCP mode: relay bytes between a client and one server, with half-close propagation and
 * an inactivity timeout. Finding the server -- pick, queue at maxconn, connect, retry a
 * failed connect on another server -- is the session path's (lb_session.h), as for HTTP. */
#include "lb/lb_tcp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include "core/json.h"
#include "core/fsm.h"
#include "core/log.h"
#include "core/sock.h"
#include "http/http_transport.h"
#include "lb/lb_session.h"
#include "lb/lb_worker.h"

#define TCP_BUF_SIZE 16384

enum tcp_state {
    TCP_STATE_CONNECTING = 0, /* finding the server: queued or connecting (sess says which) */
    TCP_STATE_RELAY,          /* bytes flow both ways */
    TCP_STATE_CLOSED
};

static const char *const tcp_state_names[] = {"connecting", "relay", "closed"};

/* One direction of the relay: bytes read from `from` wait in buf until written to `to`. */
struct tcp_pipe {
    struct buf buf;
    bool is_eof;    /* the reading side closed */
    bool is_shut;   /* we shut the writing side after draining */
    uint64_t total; /* bytes carried, for the access log */
};

struct tcp_conn {
    struct lb_conn_base base;
    struct lb_worker *w;
    struct lb_gen *gen;
    struct lb_frontend *fe;
    struct lb_backend *be;
    enum tcp_state state;
    struct http_xprt cx; /* the client socket, through the transport seam */
    struct http_xprt sx; /* the server socket (fd -1 while there is none) */
    struct ev_io cio;
    struct ev_io sio;
    struct ev_timer timer;
    struct ev_defer defer;
    union sock_peer peer;
    struct lb_session sess; /* the server: its slot, queue place, connect and retries */
    struct tcp_pipe up;     /* client -> server */
    struct tcp_pipe down;   /* server -> client */
    uint64_t t_start_ms;
};

/* The one transition function: connecting (the session queues, connects and retries)
 * until relaying; closed is final. Anything else is refused (core/fsm.h). */
static void tcp_set_state(struct tcp_conn *t, enum tcp_state to, const char *reason)
{
    if (t->state == TCP_STATE_CLOSED || (t->state == TCP_STATE_RELAY && to != TCP_STATE_CLOSED)) {
        char obj[32];
        (void)snprintf(obj, sizeof(obj), "conn %d", t->cx.fd);
        fsm_illegal(FSM_MACHINE_TCP, obj, tcp_state_names[t->state], tcp_state_names[to], reason);
        return;
    }
    log_debug("tcp", "conn %d: %s -> %s (%s)", t->cx.fd, tcp_state_names[t->state],
              tcp_state_names[to], reason);
    t->state = to;
}

static void tcp_free(struct ev_loop *loop, void *data)
{
    (void)loop;
    struct tcp_conn *t = data;
    buf_fini(&t->up.buf);
    buf_fini(&t->down.buf);
    lb_gen_unref(t->gen);
    free(t);
}

static void close_server(struct tcp_conn *t)
{
    if (t->sx.fd != -1) {
        ev_io_stop(t->w->loop, &t->sio);
        http_xprt_close(&t->sx);
    }
    lb_session_release(&t->sess); /* the slot, or the place in the queue */
}

/* One line per session: client, frontend, backend/server, bytes each way, duration, why
 * it ended. */
static void tcp_access_log(struct tcp_conn *t, const char *reason)
{
    int fd = t->fe->access_log_fd;
    if (fd == -1) {
        return;
    }
    char ip[INET6_ADDRSTRLEN], tbuf[64], line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    sock_addr_ip(&t->peer.sa, ip, sizeof(ip));
    const char *server = t->sess.last_server != NULL ? t->sess.last_server : "-";
    unsigned long dur = (unsigned long)(ev_now_ms(t->w->loop) - t->t_start_ms);
    int n;
    if (t->fe->conf->access_log_format == CONF_LOG_JSON) {
        strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%SZ", &tm);
        struct json_w w;
        json_w_init_fixed(&w, line, sizeof(line) - 1); /* room for the newline */
        json_w_begin_object(&w);
        json_w_key_str(&w, "time", tbuf);
        json_w_key_str(&w, "client", ip);
        json_w_key_str(&w, "frontend", t->fe->conf->name);
        json_w_key_str(&w, "backend", t->be->conf->name);
        json_w_key_str(&w, "server", server);
        json_w_key_str(&w, "mode", "tcp");
        json_w_key_uint(&w, "bytes_in", t->up.total);
        json_w_key_uint(&w, "bytes_out", t->down.total);
        json_w_key_uint(&w, "duration_ms", dur);
        json_w_key_str(&w, "end", reason);
        json_w_end_object(&w);
        n = -1;
        if (json_w_finish(&w) == 0) {
            memcpy(line + w.len, "\n", 2);
            n = (int)w.len + 1;
        }
    } else {
        strftime(tbuf, sizeof(tbuf), "%d/%b/%Y:%H:%M:%S +0000", &tm);
        n = snprintf(line, sizeof(line), "%s - - [%s] \"TCP %s\" %s/%s %lu %lu %lums \"%s\"\n", ip,
                     tbuf, t->fe->conf->name, t->be->conf->name, server, (unsigned long)t->up.total,
                     (unsigned long)t->down.total, dur, reason);
    }
    if (n > 0 && (size_t)n < sizeof(line)) {
        lb_worker_access_log(t->w, fd, line, (size_t)n);
    }
}

static void tcp_close(struct tcp_conn *t, const char *reason)
{
    if (t->state == TCP_STATE_CLOSED) {
        return;
    }
    tcp_access_log(t, reason);
    tcp_set_state(t, TCP_STATE_CLOSED, reason);
    close_server(t);
    ev_io_stop(t->w->loop, &t->cio);
    ev_timer_stop(t->w->loop, &t->timer);
    http_xprt_close(&t->cx);
    metrics_add(&metrics_local(t->fe->metrics)->connections_closed, 1);
    lb_worker_conn_remove(t->w, &t->base);
    ev_defer(t->w->loop, &t->defer, tcp_free, t);
}

static void on_server_down(struct lb_conn_base *base)
{
    struct tcp_conn *t = (struct tcp_conn *)base;
    struct lb_server *srv = t->sess.srv;
    if (srv != NULL && t->be->conf->shutdown_on_down && !atomic_load(&srv->is_up)) {
        tcp_close(t, "server marked down");
    }
}

static void on_drain(struct lb_conn_base *base)
{
    /* A relay has no request boundary to wait for; it ends when either side closes or
     * when the drain timeout stops the process. */
    (void)base;
}

/* Move bytes from x into p. Returns false when the connection must close. */
static bool pipe_read(struct tcp_pipe *p, struct http_xprt *x, _Atomic uint64_t *counter)
{
    buf_compact(&p->buf);
    if (buf_tailroom(&p->buf) == 0 || p->is_eof) {
        return true;
    }
    ssize_t n = http_xprt_read(x, buf_tail(&p->buf), buf_tailroom(&p->buf));
    if (n > 0) {
        buf_commit(&p->buf, (size_t)n);
        p->total += (uint64_t)n;
        metrics_add(counter, (uint64_t)n);
        return true;
    }
    if (n == 0) {
        p->is_eof = true;
        return true;
    }
    return n == -EAGAIN;
}

static bool pipe_write(struct tcp_pipe *p, struct http_xprt *x, _Atomic uint64_t *counter)
{
    while (p->buf.len > 0) {
        ssize_t n = http_xprt_write(x, buf_head(&p->buf), p->buf.len, 0);
        if (n < 0) {
            return n == -EAGAIN;
        }
        buf_consume(&p->buf, (size_t)n);
        metrics_add(counter, (uint64_t)n);
    }
    if (p->is_eof && !p->is_shut) {
        p->is_shut = true;
        (void)http_xprt_shutdown(x); /* failure: the peer is gone; the next read says so */
    }
    return true;
}

static void tcp_update(struct tcp_conn *t)
{
    if (t->state != TCP_STATE_RELAY) {
        return;
    }
    if (t->up.is_shut && t->down.is_shut) {
        tcp_close(t, "both sides closed");
        return;
    }
    uint32_t cev = 0, sev = 0;
    if (!t->up.is_eof && buf_tailroom(&t->up.buf) + t->up.buf.off > 0) {
        cev |= EV_READ;
    }
    if (t->down.buf.len > 0) {
        cev |= EV_WRITE;
    }
    if (!t->down.is_eof && buf_tailroom(&t->down.buf) + t->down.buf.off > 0) {
        sev |= EV_READ;
    }
    if (t->up.buf.len > 0) {
        sev |= EV_WRITE;
    }
    if (ev_io_set(t->w->loop, &t->cio, http_xprt_events(&t->cx, cev)) != 0 ||
        ev_io_set(t->w->loop, &t->sio, http_xprt_events(&t->sx, sev)) != 0) {
        tcp_close(t, "epoll failed");
        return;
    }
    ev_timer_start(t->w->loop, &t->timer, t->fe->conf->timeout_client_ms);
}

/* Rounds of bytes decoded and held by the server's transport taken in one relay call. */
#define TCP_PENDING_ROUNDS 16

static void relay(struct tcp_conn *t)
{
    struct metrics_server_c *sm = metrics_local(t->sess.srv->metrics);
    struct metrics_frontend_c *fm = metrics_local(t->fe->metrics);
    if (!pipe_read(&t->up, &t->cx, &fm->bytes_in) || !pipe_write(&t->up, &t->sx, &sm->bytes_out) ||
        !pipe_read(&t->down, &t->sx, &sm->bytes_in) ||
        !pipe_write(&t->down, &t->cx, &fm->bytes_out)) {
        tcp_close(t, "connection reset");
        return;
    }
    /* A TLS server's records read ahead and decoded make its fd readable no more: take them
     * while there is room. A full buffer is waiting for the client's writability, whose
     * event comes back here. */
    for (int i = 0; i < TCP_PENDING_ROUNDS && http_xprt_has_pending(&t->sx) && !t->down.is_eof &&
                    buf_tailroom(&t->down.buf) + t->down.buf.off > 0;
         i++) {
        uint64_t before = t->down.total;
        if (!pipe_read(&t->down, &t->sx, &sm->bytes_in) ||
            !pipe_write(&t->down, &t->cx, &fm->bytes_out)) {
            tcp_close(t, "connection reset");
            return;
        }
        if (t->down.total == before && !t->down.is_eof) {
            break; /* only part of a record: the rest makes the fd readable */
        }
    }
    tcp_update(t);
}

static void on_server_event(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    relay(io->data); /* connected: the session watched the connect */
}

static void on_client_event(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    struct tcp_conn *t = io->data;
    if (t->state == TCP_STATE_CONNECTING) {
        /* Buffer early client bytes; detect a client that gave up. */
        if (!pipe_read(&t->up, &t->cx, &metrics_local(t->fe->metrics)->bytes_in) || t->up.is_eof) {
            tcp_close(t, "client closed while connecting");
            return;
        }
        if (buf_tailroom(&t->up.buf) == 0 && ev_io_set(t->w->loop, &t->cio, 0) != 0) {
            tcp_close(t, "epoll failed");
        }
        return;
    }
    relay(t);
}

static void on_timeout(struct ev_loop *loop, struct ev_timer *timer)
{
    (void)loop;
    tcp_close(timer->data, "idle timeout"); /* armed only while relaying */
}

/* ---------------------------------------------------------------- the session's ops */

static int on_session_slot(struct lb_session *s)
{
    struct tcp_conn *t = s->owner;
    s->xp = &t->sx;
    s->io = &t->sio;
    return 0;
}

static void on_session_connected(struct lb_session *s)
{
    struct tcp_conn *t = s->owner;
    t->sio.on_event = on_server_event; /* the session's watcher, taken over as it is */
    t->sio.data = t;
    tcp_set_state(t, TCP_STATE_RELAY, "connected");
    metrics_add(&metrics_local(t->be->metrics)->requests[2], 1);
    metrics_add(&metrics_local(s->srv->metrics)->requests[2], 1);
}

static void on_session_drop(struct lb_session *s)
{
    struct tcp_conn *t = s->owner;
    ev_io_stop(t->w->loop, &t->sio);
    http_xprt_close(&t->sx);
}

static void on_session_error(struct lb_session *s, enum lb_session_err err, const char *detail)
{
    (void)err;
    tcp_close(s->owner, detail);
}

static void on_session_wake(void *owner)
{
    struct tcp_conn *t = owner;
    if (t->state == TCP_STATE_RELAY) {
        relay(t); /* bytes the client sent meanwhile go now */
    }
}

static const struct lb_session_ops tcp_session_ops = {
    .log_name = "tcp",
    .on_slot = on_session_slot,
    .on_connected = on_session_connected,
    .on_drop = on_session_drop,
    .on_error = on_session_error,
    .on_wake = on_session_wake,
};

void tcp_conn_accept(struct lb_worker *w, struct lb_frontend *fe, int fd,
                     const struct sockaddr_storage *peer)
{
    struct tcp_conn *t = calloc(1, sizeof(*t));
    if (t == NULL || buf_init(&t->up.buf, TCP_BUF_SIZE) != 0 ||
        buf_init(&t->down.buf, TCP_BUF_SIZE) != 0) {
        if (t != NULL) {
            buf_fini(&t->up.buf);
            free(t);
        }
        log_warn("tcp", "out of memory accepting a connection on %s", fe->conf->name);
        close(fd);
        return;
    }
    t->w = w;
    t->gen = fe->gen;
    lb_gen_ref(t->gen);
    t->fe = fe;
    t->be = fe->backend;
    http_xprt_tcp_init(&t->cx, fd);
    http_xprt_tcp_init(&t->sx, -1); /* no server yet */
    sock_peer_set(&t->peer, peer);
    lb_session_init(&t->sess, w, t->be, &t->peer.sa, &tcp_session_ops, t);
    t->t_start_ms = ev_now_ms(w->loop);
    t->base.on_drain = on_drain;
    t->base.on_server_down = on_server_down;
    ev_timer_init(&t->timer, on_timeout, t, "tcp");
    lb_worker_conn_add(w, &t->base);
    metrics_add(&metrics_local(fe->metrics)->connections_total, 1);
    metrics_add(&metrics_local(fe->metrics)->connections_opened, 1);
    if (ev_io_start(w->loop, &t->cio, fd, http_xprt_events(&t->cx, EV_READ), on_client_event, t,
                    "tcp-client") != 0) {
        t->state = TCP_STATE_RELAY;
        tcp_close(t, "epoll failed");
        return;
    }
    lb_session_start(&t->sess); /* may close t at once (no server, queue full) */
}
