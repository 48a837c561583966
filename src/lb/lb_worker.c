/* SPDX-License-Identifier: MIT */
/* Worker threads: loop setup, listeners, accepting, generation switches, draining, pools
 * of idle server connections, the wait queue and the access log buffer. The protocols
 * (http_proxy.c, lb_tcp.c) own the connections themselves. */
#include "lb/lb_worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fdlimit.h"
#include "core/log.h"
#include "lb/lb_gate.h"
#include "core/qsbr.h"
#include "core/sock.h"
#include "http/http_filecache.h"
#include "http/http_proxy.h"
#include "http/http_transport.h"
#include "lb/lb_tcp.h"

#define ALOG_BUF_SIZE 65536
#define ACCEPT_BATCH 64
#define QUEUE_RETRY_MS 10

/* ---------------------------------------------------------------- listeners */

/* One line per second for all workers and listeners together, with a count: a descriptor
 * shortage hits every listener at once, and a line per event would flood the log. */
static struct fdlimit_throttle pause_throttle;
static struct fdlimit_throttle error_throttle;

static void on_accept_resume(struct ev_loop *loop, struct ev_timer *t)
{
    struct lb_listener *l = t->data;
    if (l->io.is_active && ev_io_set(loop, &l->io, EV_READ) != 0) {
        log_error(l->w->name, "cannot watch listener %s again", l->fe->conf->name);
    }
}

/* No descriptor to take the next connection (EMFILE, ENFILE, or the data plane's share of the
 * limit used up): stop polling the listener for FDLIMIT_PAUSE_MS rather than wake up again at
 * once for the same pending connection (the loop is level-triggered: that would spin). The
 * connections wait in the listen queue meanwhile. */
static void accept_pause(struct lb_listener *l, const char *why)
{
    struct lb_worker *w = l->w;
    if (ev_io_set(w->loop, &l->io, 0) == 0) {
        ev_timer_start(w->loop, &l->pause, FDLIMIT_PAUSE_MS);
    }
    metrics_add(&metrics_local(l->fe->metrics)->accept_pauses, 1);
    uint64_t span_ms;
    uint32_t n = fdlimit_throttle_hit(&pause_throttle, ev_now_ms(w->loop), &span_ms);
    if (n > 0) {
        log_warn("frontend",
                 "accept() on %s: %s; accepting paused for %d ms (%u pause%s in %.1f s)",
                 l->fe->conf->name, why, FDLIMIT_PAUSE_MS, n, n == 1 ? "" : "s",
                 (double)span_ms / 1000.0);
    }
}

static void on_accept(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    struct lb_listener *l = io->data;
    struct lb_worker *w = l->w;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t peerlen;
        int fd = sock_accept(io->fd, &peer, &peerlen);
        if (fd < 0) {
            if (fd == -EINVAL && l->gate != NULL) {
                ev_io_stop(loop, io); /* the gate closed: no longer listening */
                return;
            }
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
                accept_pause(l, strerror(-fd));
                return;
            }
            uint64_t span_ms;
            if (fd != -EAGAIN && fd != -EINTR && fd != -ECONNABORTED &&
                fdlimit_throttle_hit(&error_throttle, ev_now_ms(loop), &span_ms) > 0) {
                log_warn("frontend", "accept() on %s failed: %s", l->fe->conf->name, strerror(-fd));
            }
            return;
        }
        if (!fdlimit_data_fd_ok(fd)) {
            close(fd); /* it would eat into the control plane's reserve */
            accept_pause(l, "the data plane's share of the open files limit is used up");
            return;
        }
        struct metrics_frontend *m = l->fe->metrics;
        if (l->fe->conf->maxconn != 0 &&
            metrics_frontend_active(m) >= (int64_t)l->fe->conf->maxconn) {
            close(fd); /* over the frontend's maxconn: refuse at once rather than queue */
            continue;
        }
        if (l->fe->conf->mode == CONF_MODE_TCP) {
            tcp_conn_accept(w, l->fe, fd, &peer);
        } else {
            http_conn_accept(w, l->fe, l->xprt, fd, &peer);
        }
    }
}

static void listeners_stop(struct lb_worker *w)
{
    for (uint32_t i = 0; i < w->n_listeners; i++) {
        ev_io_stop(w->loop, &w->listeners[i].io);
        ev_timer_stop(w->loop, &w->listeners[i].pause);
    }
    ev_free_later(w->loop, w->listeners); /* an accept event may be pending in this batch */
    w->listeners = NULL;
    w->n_listeners = 0;
}

static void listeners_start(struct lb_worker *w, struct lb_gen *gen)
{
    w->listeners = calloc(gen->n_binds_total + 1, sizeof(*w->listeners));
    if (w->listeners == NULL) {
        log_error(w->name, "out of memory starting listeners");
        return;
    }
    for (uint32_t f = 0; f < gen->n_frontends; f++) {
        struct lb_frontend *fe = &gen->frontends[f];
        for (uint32_t b = 0; b < fe->conf->n_binds; b++) {
            int *slot = &gen->listen_fds[(gen->bind_base[f] + b) * gen->n_workers + w->id];
            if (*slot == -1) {
                continue;
            }
            struct lb_listener *l = &w->listeners[w->n_listeners];
            l->w = w;
            l->fe = fe;
            l->fd_slot = slot;
            l->gate = lb_gate_find((const struct sockaddr *)&fe->conf->binds[b].sa);
            l->xprt = fe->conf->binds[b].is_tls ? &fe->tls_xprt : NULL;
            l->io.fd = *slot;
            ev_timer_init(&l->pause, on_accept_resume, l, "accept-resume");
            w->n_listeners++;
            if (l->gate != NULL && !atomic_load(&l->gate->is_open)) {
                continue; /* started when the gate opens */
            }
            int rc = ev_io_start(w->loop, &l->io, *slot, EV_READ, on_accept, l, "accept");
            if (rc != 0) {
                log_error(w->name, "cannot watch listener %s: %s", fe->conf->binds[b].text,
                          strerror(-rc));
            }
        }
    }
}

/* Poll the gated listeners whose gate is open, stop polling the others. */
static void listeners_gate(struct lb_worker *w)
{
    for (uint32_t i = 0; i < w->n_listeners; i++) {
        struct lb_listener *l = &w->listeners[i];
        if (l->gate == NULL) {
            continue;
        }
        bool want = atomic_load(&l->gate->is_open);
        if (want && !l->io.is_active) {
            int rc = ev_io_start(w->loop, &l->io, *l->fd_slot, EV_READ, on_accept, l, "accept");
            if (rc != 0) {
                log_error(w->name, "cannot watch listener: %s", strerror(-rc));
            }
        } else if (!want && l->io.is_active) {
            ev_io_stop(w->loop, &l->io);
        }
    }
}

void lb_worker_poke(struct lb_worker *w)
{
    ev_loop_wake(w->loop);
}

void lb_worker_servers_down(struct lb_worker *w)
{
    atomic_store(&w->servers_down, true);
    ev_loop_wake(w->loop);
}

static void check_server_down(struct lb_worker *w)
{
    struct lb_conn_base *c = w->conns;
    while (c != NULL) {
        struct lb_conn_base *next = c->next; /* the hook may close (and unlink) c */
        if (c->on_server_down != NULL) {
            c->on_server_down(c);
        }
        c = next;
    }
}

/* ---------------------------------------------------------------- generations */

static void close_idle_pools(struct lb_worker *w, struct lb_gen *gen)
{
    struct lb_wgen *wg = &gen->wgen[w->id];
    for (uint32_t i = 0; i < gen->n_servers_total; i++) {
        while (wg->idle[i] != NULL) {
            lb_upstream_close(wg->idle[i]);
        }
    }
}

static void switch_gen(struct lb_worker *w, struct lb_gen *gen)
{
    struct lb_gen *old = w->gen;
    listeners_stop(w);
    w->gen = gen;
    if (!w->is_draining) {
        listeners_start(w, gen);
    }
    if (old != NULL) {
        close_idle_pools(w, old);
        lb_gen_unref(old);
    }
    log_info(w->name, "now serving configuration generation %lu", (unsigned long)gen->id);
}

static void drain_now(struct lb_worker *w)
{
    w->is_draining = true;
    /* Close this worker's own listening sockets so the kernel stops queueing for it. Except a
     * gated one whose gate is still open: its address is being handed over (vrrp.c), it drops
     * new SYNs already, and a closed listener on an address still held would refuse (RST)
     * them; it keeps accepting the handshakes under way until the gate closes. */
    for (uint32_t i = 0; i < w->n_listeners; i++) {
        struct lb_listener *l = &w->listeners[i];
        if (l->gate != NULL && atomic_load(&l->gate->is_open)) {
            continue;
        }
        ev_io_stop(w->loop, &l->io);
        ev_timer_stop(w->loop, &l->pause);
        close(*l->fd_slot);
        *l->fd_slot = -1;
    }
    close_idle_pools(w, w->gen);
    struct lb_conn_base *c = w->conns;
    while (c != NULL) {
        struct lb_conn_base *next = c->next;
        c->on_drain(c);
        c = next;
    }
}

static void on_wakeup(struct ev_loop *loop, void *data)
{
    (void)loop;
    struct lb_worker *w = data;
    struct lb_gen *gen = atomic_exchange(&w->pending_gen, NULL);
    if (gen != NULL) {
        switch_gen(w, gen);
    }
    if (atomic_load(&w->drain_requested) && !w->is_draining) {
        drain_now(w);
    }
    if (!w->is_draining) {
        listeners_gate(w);
    }
    if (atomic_exchange(&w->servers_down, false)) {
        check_server_down(w);
    }
}

static void alog_flush(struct lb_worker *w)
{
    size_t off = 0;
    while (off < w->alog.len) {
        ssize_t n = write(w->alog_fd, buf_head(&w->alog) + off, w->alog.len - off);
        if (n <= 0) {
            if (n == -1 && errno == EINTR) {
                continue;
            }
            break; /* a failing access log must not stall the worker; lines are dropped */
        }
        off += (size_t)n;
    }
    w->alog.off = w->alog.len = 0;
}

void lb_worker_access_log(struct lb_worker *w, int fd, const char *line, size_t len)
{
    if (w->alog.data == NULL) {
        if (buf_init(&w->alog, ALOG_BUF_SIZE) != 0) {
            return;
        }
    }
    if (fd != w->alog_fd || buf_tailroom(&w->alog) < len) {
        alog_flush(w);
        w->alog_fd = fd;
    }
    if (!buf_append(&w->alog, line, len)) {
        ssize_t n = write(fd, line, len); /* longer than the whole buffer */
        (void)n;
    }
}

static void on_iteration(struct ev_loop *loop, void *data)
{
    (void)loop;
    struct lb_worker *w = data;
    if (w->alog.len != 0) {
        alog_flush(w);
    }
    qsbr_quiescent(w->qsbr_slot);
    if (w->is_draining && w->n_conns == 0) {
        ev_loop_stop(w->loop);
    }
}

static void before_block(struct ev_loop *loop, void *data)
{
    (void)loop;
    struct lb_worker *w = data;
    qsbr_offline(w->qsbr_slot);
}

static void after_block(struct ev_loop *loop, void *data)
{
    (void)loop;
    struct lb_worker *w = data;
    qsbr_online(w->qsbr_slot);
}

static void on_queue_timer(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    lb_worker_kick_queue(t->data);
}

static void *worker_main(void *arg)
{
    struct lb_worker *w = arg;
    log_set_thread_name(w->name);
    metrics_set_slot(w->id);
    qsbr_online(w->qsbr_slot);
    ev_run(w->loop);
    if (w->alog.len != 0) {
        alog_flush(w);
    }
    buf_fini(&w->alog);
    if (w->n_conns == 0) {
        /* Otherwise a connection cut by the drain timeout may still use a cached file;
         * the process is about to exit anyway. */
        http_filecache_free(w->filecache);
        w->filecache = NULL;
    }
    listeners_stop(w);
    close_idle_pools(w, w->gen);
    qsbr_unregister(w->qsbr_slot);
    atomic_store(&w->is_done, true);
    return NULL;
}

int lb_workers_start(struct lb_worker *workers, uint32_t n, struct lb_gen *gen)
{
    for (uint32_t i = 0; i < n; i++) {
        struct lb_worker *w = &workers[i];
        memset(w, 0, sizeof(*w));
        w->id = i;
        snprintf(w->name, sizeof(w->name), "w%u", i);
        w->loop = ev_loop_new();
        if (w->loop == NULL) {
            return -errno;
        }
        w->qsbr_slot = qsbr_register();
        if (w->qsbr_slot < 0) {
            return -ENOSPC;
        }
        w->rng = ((uint64_t)time(NULL) << 16) ^ ((uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull);
        w->alog_fd = -1;
        ev_timer_init(&w->queue_timer, on_queue_timer, w, "queue-retry");
        int rc = ev_loop_set_wakeup(w->loop, on_wakeup, w);
        if (rc != 0) {
            return rc;
        }
        ev_loop_set_hooks(w->loop, on_iteration, before_block, after_block, w);
        lb_gen_ref(gen);
        w->gen = gen;
        listeners_start(w, gen);
        rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            return -rc;
        }
    }
    return 0;
}

void lb_worker_set_gen(struct lb_worker *w, struct lb_gen *gen)
{
    struct lb_gen *old = atomic_exchange(&w->pending_gen, gen);
    if (old != NULL) {
        lb_gen_unref(old); /* superseded before the worker saw it */
    }
    ev_loop_wake(w->loop);
}

void lb_worker_drain(struct lb_worker *w)
{
    atomic_store(&w->drain_requested, true);
    ev_loop_wake(w->loop);
}

void lb_worker_join(struct lb_worker *w)
{
    pthread_join(w->thread, NULL);
    struct lb_gen *pending = atomic_exchange(&w->pending_gen, NULL);
    if (pending != NULL) {
        lb_gen_unref(pending);
    }
    if (w->gen != NULL) {
        lb_gen_unref(w->gen);
        w->gen = NULL;
    }
    ev_loop_free(w->loop);
    w->loop = NULL;
}

void lb_worker_conn_add(struct lb_worker *w, struct lb_conn_base *c)
{
    c->prev = NULL;
    c->next = w->conns;
    if (w->conns != NULL) {
        w->conns->prev = c;
    }
    w->conns = c;
    w->n_conns++;
}

void lb_worker_conn_remove(struct lb_worker *w, struct lb_conn_base *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        w->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->next = c->prev = NULL;
    w->n_conns--;
}

/* ---------------------------------------------------------------- upstream connections */

static void upstream_free(struct ev_loop *loop, void *data)
{
    (void)loop;
    struct lb_upstream *up = data;
    buf_fini(&up->in);
    buf_fini(&up->out);
    free(up);
}

static void idle_unlink(struct lb_upstream *up)
{
    struct lb_wgen *wg = &up->gen->wgen[up->w->id];
    uint32_t slot = up->gen->server_base[up->be->id] + up->srv->id;
    if (up->idle_prev != NULL) {
        up->idle_prev->idle_next = up->idle_next;
    } else if (wg->idle[slot] == up) {
        wg->idle[slot] = up->idle_next;
    } else {
        return; /* not in the pool */
    }
    if (up->idle_next != NULL) {
        up->idle_next->idle_prev = up->idle_prev;
    }
    up->idle_next = up->idle_prev = NULL;
    wg->idle_count[slot]--;
}

void lb_upstream_close(struct lb_upstream *up)
{
    if (up == NULL || up->is_closed) {
        return;
    }
    up->is_closed = true;
    if (up->owner == NULL) {
        idle_unlink(up);
    }
    ev_io_stop(up->w->loop, &up->io);
    ev_timer_stop(up->w->loop, &up->timer);
    http_xprt_close(&up->xp); /* a no-op once a tunnel took the socket */
    ev_defer(up->w->loop, &up->defer, upstream_free, up);
}

static void on_idle_event(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    /* An idle server connection became readable: the server closed it (or sent bytes it
     * should not have). Either way it cannot carry another request. */
    lb_upstream_close(io->data);
}

static void on_idle_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    lb_upstream_close(t->data);
}

#define POOL_IDLE_TIMEOUT_MS 30000

struct lb_upstream *lb_pool_get(struct lb_worker *w, struct lb_backend *be, struct lb_server *srv)
{
    struct lb_gen *gen = be->gen;
    struct lb_wgen *wg = &gen->wgen[w->id];
    uint32_t slot = gen->server_base[be->id] + srv->id;
    struct lb_upstream *up = wg->idle[slot];
    if (up == NULL) {
        return NULL;
    }
    idle_unlink(up);
    ev_timer_stop(w->loop, &up->timer);
    up->is_reused = true;
    return up;
}

void lb_pool_put(struct lb_worker *w, struct lb_upstream *up)
{
    struct lb_gen *gen = up->gen;
    struct lb_wgen *wg = &gen->wgen[w->id];
    uint32_t slot = gen->server_base[up->be->id] + up->srv->id;
    up->owner = NULL;
    if (gen != w->gen || w->is_draining || wg->idle_count[slot] >= up->be->conf->keepalive ||
        up->in.len != 0 || http_xprt_has_pending(&up->xp)) {
        lb_upstream_close(up);
        return;
    }
    up->out.off = up->out.len = 0;
    up->out_sent = 0;
    up->idle_prev = NULL;
    up->idle_next = wg->idle[slot];
    if (up->idle_next != NULL) {
        up->idle_next->idle_prev = up;
    }
    wg->idle[slot] = up;
    wg->idle_count[slot]++;
    up->io.on_event = on_idle_event;
    up->io.data = up;
    if (ev_io_set(w->loop, &up->io, EV_READ) != 0) {
        lb_upstream_close(up);
        return;
    }
    ev_timer_init(&up->timer, on_idle_timeout, up, "pool-idle");
    ev_timer_start(w->loop, &up->timer, POOL_IDLE_TIMEOUT_MS);
}

struct lb_upstream *lb_upstream_new(struct lb_worker *w, struct lb_backend *be,
                                    struct lb_server *srv)
{
    struct lb_upstream *up = calloc(1, sizeof(*up));
    if (up == NULL) {
        return NULL;
    }
    http_xprt_tcp_init(&up->xp, -1);
    /* No buffer: the proxy takes one from its pool for each response and gives it back
     * when the connection goes idle. The request head is sent from the client side's
     * buffer: out stays empty. */
    up->w = w;
    up->gen = be->gen;
    up->be = be;
    up->srv = srv;
    return up;
}

/* ---------------------------------------------------------------- wait queue */

void lb_worker_enqueue(struct lb_worker *w, struct lb_waiter *waiter)
{
    waiter->next = NULL;
    waiter->prev = w->waiters_tail;
    if (w->waiters_tail != NULL) {
        w->waiters_tail->next = waiter;
    } else {
        w->waiters_head = waiter;
    }
    w->waiters_tail = waiter;
    waiter->is_queued = true;
    w->n_waiters++;
    atomic_fetch_add(&waiter->be->queued, 1);
    if (!ev_timer_is_active(&w->queue_timer)) {
        ev_timer_start(w->loop, &w->queue_timer, QUEUE_RETRY_MS);
    }
}

void lb_worker_dequeue(struct lb_worker *w, struct lb_waiter *waiter)
{
    if (!waiter->is_queued) {
        return;
    }
    if (waiter->prev != NULL) {
        waiter->prev->next = waiter->next;
    } else {
        w->waiters_head = waiter->next;
    }
    if (waiter->next != NULL) {
        waiter->next->prev = waiter->prev;
    } else {
        w->waiters_tail = waiter->prev;
    }
    waiter->next = waiter->prev = NULL;
    waiter->is_queued = false;
    w->n_waiters--;
    atomic_fetch_sub(&waiter->be->queued, 1);
}

void lb_worker_kick_queue(struct lb_worker *w)
{
    /* Each waiter tries once, in arrival order; on_ready dequeues it when it got a server.
     * Walk a snapshot of the list: callbacks may dequeue (and free) the current entry. */
    struct lb_waiter *wt = w->waiters_head;
    uint32_t budget = w->n_waiters;
    while (wt != NULL && budget-- > 0) {
        struct lb_waiter *next = wt->next;
        wt->on_ready(wt);
        wt = next;
    }
    if (w->n_waiters > 0 && !ev_timer_is_active(&w->queue_timer)) {
        ev_timer_start(w->loop, &w->queue_timer, QUEUE_RETRY_MS);
    }
}
