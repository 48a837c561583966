/* SPDX-License-Identifier: MIT */
/* The session path (lb_session.h): pick, queue, connect, retry, for HTTP and TCP alike.
 * It owns the slot on the chosen server, the place in the backend's queue and the timer
 * of both waits (timeout_queue, then timeout_connect); the server socket is stored in the
 * owner's struct, which takes it over once connected. */
#include "lb/lb_session.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/fdlimit.h"
#include "core/fsm.h"
#include "core/log.h"
#include "core/sock.h"
#include "http/http_transport.h"
#include "lb/lb.h"
#include "lb/lb_worker.h"

static const char *const session_state_names[LB_SESSION_STATE_COUNT] = {"idle", "queued",
                                                                        "connecting", "connected"};

/* The legal moves, [from][to]. Every state may go back to idle (released, failed, timed
 * out); a slot is taken from idle or queued; a connected session connects again only to
 * the same server (lb_session_reconnect). */
static const bool session_legal[LB_SESSION_STATE_COUNT][LB_SESSION_STATE_COUNT] = {
    /*                   idle   queued connecting connected */
    [LB_SESSION_IDLE] = {false, true, true, true},
    [LB_SESSION_QUEUED] = {true, false, true, true},
    [LB_SESSION_CONNECTING] = {true, false, false, true},
    [LB_SESSION_CONNECTED] = {true, false, true, false},
};

const char *lb_session_state_name(enum lb_session_state state)
{
    return (unsigned)state < LB_SESSION_STATE_COUNT ? session_state_names[state] : "?";
}

bool lb_session_transition_ok(enum lb_session_state from, enum lb_session_state to)
{
    return (unsigned)from < LB_SESSION_STATE_COUNT && (unsigned)to < LB_SESSION_STATE_COUNT &&
           session_legal[from][to];
}

enum lb_session_verdict lb_session_after_pick(int pick_rc, uint32_t queued, uint32_t queue_max)
{
    if (pick_rc == 0) {
        return LB_SESSION_GO_CONNECT;
    }
    if (pick_rc != -EBUSY) {
        return LB_SESSION_GO_NO_SERVER;
    }
    return queued < queue_max ? LB_SESSION_GO_QUEUE : LB_SESSION_GO_QUEUE_FULL;
}

int lb_session_err_status(enum lb_session_err err)
{
    switch (err) {
    case LB_SESSION_ECONNECT:
        return 502;
    case LB_SESSION_ECONNECT_TIMEOUT:
        return 504;
    case LB_SESSION_ENOSERVER:
    case LB_SESSION_EQUEUE_FULL:
    case LB_SESSION_EQUEUE_TIMEOUT:
    case LB_SESSION_ENOFD:
    case LB_SESSION_ENOMEM:
        break;
    }
    return 503;
}

const char *lb_session_err_str(enum lb_session_err err)
{
    switch (err) {
    case LB_SESSION_ENOSERVER:
        return "no server available";
    case LB_SESSION_EQUEUE_FULL:
        return "backend queue full";
    case LB_SESSION_EQUEUE_TIMEOUT:
        return "no server slot became free in time (queue timeout)";
    case LB_SESSION_ENOFD:
        return "no descriptor for a server connection";
    case LB_SESSION_ENOMEM:
        return "out of memory";
    case LB_SESSION_ECONNECT:
        return "cannot connect to server";
    case LB_SESSION_ECONNECT_TIMEOUT:
        return "connecting to the server timed out";
    }
    return "?";
}

/* ---------------------------------------------------------------- the machine */

/* The one transition function (core/fsm.h: a move the table forbids is refused). */
static void session_set_state(struct lb_session *s, enum lb_session_state to, const char *reason)
{
    if (!lb_session_transition_ok(s->state, to)) {
        char obj[96];
        (void)snprintf(obj, sizeof(obj), "%.8s session of %.64s", s->ops->log_name,
                       s->be->conf->name);
        fsm_illegal(FSM_MACHINE_SESSION, obj, session_state_names[s->state],
                    session_state_names[to], reason);
        return;
    }
    log_debug("lb", "%s session of %s: %s -> %s (%s)", s->ops->log_name, s->be->conf->name,
              session_state_names[s->state], session_state_names[to], reason);
    s->state = to;
}

static void on_queue_ready(struct lb_waiter *waiter);
static void on_timer(struct ev_loop *loop, struct ev_timer *t);

void lb_session_init(struct lb_session *s, struct lb_worker *w, struct lb_backend *be,
                     const struct sockaddr *peer, const struct lb_session_ops *ops, void *owner)
{
    memset(s, 0, sizeof(*s));
    s->state = LB_SESSION_IDLE;
    s->w = w;
    s->be = be;
    s->peer = peer;
    s->ops = ops;
    s->owner = owner;
    s->retries_left = be->conf->retries;
    s->waiter.be = be;
    s->waiter.on_ready = on_queue_ready;
    ev_timer_init(&s->timer, on_timer, s, "session");
}

static void release_slot(struct lb_session *s)
{
    if (s->srv == NULL) {
        return;
    }
    lb_server_release(s->srv);
    s->srv = NULL;
    if (s->w->n_waiters > 0) {
        lb_worker_kick_queue(s->w);
    }
}

void lb_session_release(struct lb_session *s)
{
    lb_worker_dequeue(s->w, &s->waiter);
    ev_timer_stop(s->w->loop, &s->timer);
    release_slot(s);
    if (s->state != LB_SESSION_IDLE) {
        session_set_state(s, LB_SESSION_IDLE, "released");
    }
}

struct lb_server *lb_session_take_slot(struct lb_session *s)
{
    struct lb_server *srv = s->srv;
    s->srv = NULL;
    lb_session_release(s);
    return srv;
}

/* Give up: nothing held any more, then the owner hears why. */
static void session_fail(struct lb_session *s, enum lb_session_err err)
{
    lb_session_release(s);
    s->ops->on_error(s, err, lb_session_err_str(err));
}

static int pick(struct lb_session *s)
{
    struct lb_pick_ctx ctx = {
        .arg = s->be->conf->balance_arg,
        .rng = &s->w->rng,
        .peer = s->peer,
        .header = s->ops->header,
        .req = s->owner,
    };
    return lb_backend_pick(s->be, &ctx, s->failed_srv, &s->srv);
}

/* ---------------------------------------------------------------- connecting */

static void connect_slot(struct lb_session *s);

/* The connect to s->srv failed (why: for the log): the server is reported to passive
 * detection and counted, the owner drops the socket, and another server is tried while
 * retries are left (no byte of the client's reached this one: always safe). */
static void connect_failed(struct lb_session *s, enum lb_session_err err, const char *why)
{
    struct lb_server *srv = s->srv;
    if (lb_server_may_warn(srv, ev_now_ms(s->w->loop))) {
        log_warn(s->ops->log_name, "connect() to server %s failed: %s (backend %s)",
                 srv->conf->name, why, s->be->conf->name);
    }
    lb_server_report_failure(srv, s->peer);
    metrics_add(&metrics_local(srv->metrics)->connect_failures, 1);
    ev_timer_stop(s->w->loop, &s->timer);
    s->ops->on_drop(s);
    s->xp = NULL;
    s->io = NULL;
    if (lb_session_retry(s)) {
        return;
    }
    s->ops->on_error(s, err, lb_session_err_str(err));
}

/* The connect, then the transport's handshake (TLS to the server), both under
 * timeout_connect: a server is connected once its transport is up. A failed handshake is
 * a failed connect (no byte of the request was sent: another server may take it). */
static void on_connect_event(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    struct lb_session *s = io->data;
    const struct lb_session_ops *ops = s->ops;
    void *owner = s->owner;
    int rc = http_xprt_connect_step(s->xp, &s->is_xp_connected);
    if (rc == -EAGAIN) {
        uint32_t want = s->is_xp_connected ? 0 : EV_WRITE;
        if (ev_io_set(s->w->loop, s->io, http_xprt_events(s->xp, want)) != 0) {
            connect_failed(s, LB_SESSION_ECONNECT, "cannot watch the server connection");
        }
    } else if (rc != 0 && s->is_xp_connected) {
        struct http_xprt_info info;
        http_xprt_get_info(s->xp, &info);
        char why[256];
        (void)snprintf(why, sizeof(why), "%s handshake failed: %s", s->xp->ops->name,
                       info.error != NULL ? info.error : err_str(rc));
        metrics_add(&metrics_local(s->srv->metrics)->tls_handshake_failures, 1);
        connect_failed(s, LB_SESSION_ECONNECT, why);
    } else if (rc != 0) {
        connect_failed(s, LB_SESSION_ECONNECT, strerror(-rc));
    } else {
        ev_timer_stop(s->w->loop, &s->timer);
        session_set_state(s, LB_SESSION_CONNECTED, "connected");
        s->ops->on_connected(s);
    }
    if (ops->on_wake != NULL) {
        ops->on_wake(owner); /* s may be gone: it failed, and its owner let it go */
    }
}

/* A slot of s->srv is held: a pooled connection, or a new non-blocking connect. */
static void connect_slot(struct lb_session *s)
{
    struct lb_server *srv = s->srv;
    s->last_server = srv->conf->name;
    int rc = s->ops->on_slot(s);
    if (rc == 1) {
        session_set_state(s, LB_SESSION_CONNECTED, "reused a connection");
        return;
    }
    if (rc < 0) {
        session_fail(s, LB_SESSION_ENOMEM);
        return;
    }
    session_set_state(s, LB_SESSION_CONNECTING, srv->conf->name);
    int fd =
        sock_connect_start((const struct sockaddr *)&srv->conf->addr.sa, srv->conf->addr.salen);
    if (fd >= 0 && !fdlimit_data_fd_ok(fd)) {
        close(fd); /* the control plane's reserve (core/fdlimit.h) */
        fd = -EMFILE;
    }
    if (fd == -EMFILE || fd == -ENFILE) {
        /* This node is short of descriptors: nothing the server did, so no failure of its
         * (passive checks would mark it down) and no retry on another one. */
        s->ops->on_drop(s);
        session_fail(s, LB_SESSION_ENOFD);
        return;
    }
    if (fd < 0) {
        connect_failed(s, LB_SESSION_ECONNECT, strerror(-fd));
        return;
    }
    s->is_xp_connected = false;
    rc = http_xprt_open(s->xp, &srv->xprt, fd, HTTP_XPRT_CONNECTING);
    if (rc != 0) {
        close(fd); /* no transport took it */
        http_xprt_tcp_init(s->xp, -1);
        s->ops->on_drop(s);
        session_fail(s, LB_SESSION_ENOMEM);
        return;
    }
    if (ev_io_start(s->w->loop, s->io, fd, http_xprt_events(s->xp, EV_WRITE), on_connect_event, s,
                    "session-connect") != 0) {
        connect_failed(s, LB_SESSION_ECONNECT, "cannot watch the server connection");
        return;
    }
    ev_timer_start(s->w->loop, &s->timer, s->be->conf->timeout_connect_ms);
}

/* ---------------------------------------------------------------- picking and queueing */

static void on_queue_ready(struct lb_waiter *waiter)
{
    struct lb_session *s =
        (struct lb_session *)((char *)waiter - offsetof(struct lb_session, waiter));
    const struct lb_session_ops *ops = s->ops;
    void *owner = s->owner;
    if (s->state != LB_SESSION_QUEUED) {
        lb_worker_dequeue(s->w, waiter);
        return;
    }
    int rc = pick(s);
    if (rc == -EBUSY) {
        return; /* still full: stay in line */
    }
    lb_worker_dequeue(s->w, waiter);
    ev_timer_stop(s->w->loop, &s->timer);
    if (rc != 0) {
        metrics_add(&metrics_local(s->be->metrics)->no_server, 1);
        session_fail(s, LB_SESSION_ENOSERVER);
    } else {
        connect_slot(s);
    }
    if (ops->on_wake != NULL) {
        ops->on_wake(owner);
    }
}

static void on_timer(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct lb_session *s = t->data;
    const struct lb_session_ops *ops = s->ops;
    void *owner = s->owner;
    if (s->state == LB_SESSION_QUEUED) {
        metrics_add(&metrics_local(s->be->metrics)->queue_timeouts, 1);
        session_fail(s, LB_SESSION_EQUEUE_TIMEOUT);
    } else if (s->state == LB_SESSION_CONNECTING) {
        connect_failed(s, LB_SESSION_ECONNECT_TIMEOUT, "timed out");
    } else {
        return;
    }
    if (ops->on_wake != NULL) {
        ops->on_wake(owner);
    }
}

void lb_session_start(struct lb_session *s)
{
    int rc = pick(s);
    switch (lb_session_after_pick(rc, atomic_load(&s->be->queued), s->be->conf->queue_max)) {
    case LB_SESSION_GO_CONNECT:
        connect_slot(s);
        return;
    case LB_SESSION_GO_QUEUE:
        lb_worker_enqueue(s->w, &s->waiter);
        metrics_add(&metrics_local(s->be->metrics)->queued_total, 1);
        session_set_state(s, LB_SESSION_QUEUED, "all servers at maxconn");
        ev_timer_start(s->w->loop, &s->timer, s->be->conf->timeout_queue_ms);
        if (s->ops->on_queued != NULL) {
            s->ops->on_queued(s);
        }
        return;
    case LB_SESSION_GO_QUEUE_FULL:
        session_fail(s, LB_SESSION_EQUEUE_FULL);
        return;
    case LB_SESSION_GO_NO_SERVER:
        metrics_add(&metrics_local(s->be->metrics)->no_server, 1);
        session_fail(s, LB_SESSION_ENOSERVER);
        return;
    }
}

bool lb_session_retry(struct lb_session *s)
{
    struct lb_server *failed = s->srv;
    lb_session_release(s);
    if (s->retries_left == 0) {
        return false;
    }
    s->retries_left--;
    s->failed_srv = failed;
    metrics_add(&metrics_local(s->be->metrics)->retries, 1);
    log_debug(s->ops->log_name, "retrying on another server of %s", s->be->conf->name);
    lb_session_start(s);
    return true;
}

void lb_session_reconnect(struct lb_session *s)
{
    connect_slot(s);
}
