/* SPDX-License-Identifier: MIT */
/* Worker threads: each owns an event loop, its own SO_REUSEPORT listening sockets, the
 * client connections it accepted, and its pools of idle server connections. The control
 * thread talks to workers only through lb_worker_set_gen and lb_worker_drain (atomics plus
 * an eventfd wakeup). */
#ifndef KEEL_LB_LB_WORKER_H
#define KEEL_LB_LB_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/ev.h"
#include "http/http_transport-t.h"
#include "lb/lb.h"
#include "lb/lb_session-t.h" /* struct lb_waiter */

struct http_filecache;

struct lb_listener {
    struct ev_io io;
    struct lb_worker *w;
    struct lb_frontend *fe;
    int *fd_slot;                      /* where the generation keeps this fd */
    struct lb_gate *gate;              /* NULL, or a virtual IP's gate: polled only while open */
    const struct http_xprt_conf *xprt; /* the transport of its connections; NULL: plain TCP */
    struct ev_timer pause; /* armed while accepting is paused (no descriptor to spare) */
};

/* A connection to a server, owned by one client exchange or idle in a pool. */
struct lb_upstream {
    struct lb_worker *w;
    struct lb_gen *gen;
    struct lb_backend *be;
    struct lb_server *srv;
    struct http_xprt xp; /* the server socket (plain TCP), used only through http_transport.h */
    struct ev_io io;
    struct ev_timer timer;
    struct ev_defer defer;
    bool is_connected;
    bool is_reused; /* came from the idle pool */
    bool is_closed;
    struct buf in;   /* bytes from the server */
    struct buf out;  /* bytes for the server (request head) */
    size_t out_sent; /* bytes of out already written */
    void *owner;     /* the exchange using it; NULL while idle */
    struct lb_upstream *idle_next;
    struct lb_upstream *idle_prev;
    uint32_t requests; /* requests carried */
};

struct lb_worker {
    uint32_t id;
    char name[16];
    pthread_t thread;
    struct ev_loop *loop;
    int qsbr_slot;
    struct lb_gen *gen;                   /* current generation, reference held */
    _Atomic(struct lb_gen *) pending_gen; /* handed over by the control thread */
    _Atomic bool drain_requested;
    _Atomic bool servers_down; /* lb_worker_servers_down: run the on_server_down hooks */
    _Atomic bool is_done;
    bool is_draining;
    struct lb_listener *listeners;
    uint32_t n_listeners;
    uint64_t rng;
    uint32_t n_conns; /* client connections open */
    struct lb_waiter *waiters_head;
    struct lb_waiter *waiters_tail;
    uint32_t n_waiters;
    struct ev_timer queue_timer;
    struct buf alog; /* access log lines, flushed at the end of each iteration */
    int alog_fd;
    /* client connections, for drain: intrusive list maintained by the protocols */
    struct lb_conn_base *conns;
    struct http_filecache *filecache; /* open static files, created on first use */
};

/* The part every client connection (HTTP or TCP) starts with. */
struct lb_conn_base {
    struct lb_conn_base *next;
    struct lb_conn_base *prev;
    /* Asked to finish: close now if idle, else after the current exchange. */
    void (*on_drain)(struct lb_conn_base *conn);
    /* A server was marked down (NULL: nothing to do): close what belongs to a down server of
     * a backend with shutdown_on_down. */
    void (*on_server_down)(struct lb_conn_base *conn);
};

/* Start n workers on gen (each takes a reference). Returns 0 or -errno. Boot time. */
int lb_workers_start(struct lb_worker *workers, uint32_t n, struct lb_gen *gen) KEEL_MUST_CHECK;
/* Hand a new generation to a worker (the caller already took a reference for it). */
void lb_worker_set_gen(struct lb_worker *w, struct lb_gen *gen);
/* Wake a worker to look at its listener gates again (lb/lb_gate.h). */
void lb_worker_poke(struct lb_worker *w);

/* Tell a worker that servers were marked down: its connections' on_server_down run. */
void lb_worker_servers_down(struct lb_worker *w);

/* Ask a worker to drain: close its listeners, finish its connections, then stop. */
void lb_worker_drain(struct lb_worker *w);
/* Join a stopped worker and free its loop. */
void lb_worker_join(struct lb_worker *w);

/* Worker-side helpers for the protocols. */
void lb_worker_conn_add(struct lb_worker *w, struct lb_conn_base *c);
void lb_worker_conn_remove(struct lb_worker *w, struct lb_conn_base *c);

/* An idle connection to srv from the pool, or NULL. */
struct lb_upstream *lb_pool_get(struct lb_worker *w, struct lb_backend *be, struct lb_server *srv);
/* Return up to the pool, or close it if the pool is full or its generation is old. */
void lb_pool_put(struct lb_worker *w, struct lb_upstream *up);

/* New upstream to srv, with no socket yet (xp's fd is -1: the session path connects it,
 * lb/lb_session.h). Returns NULL on OOM. */
struct lb_upstream *lb_upstream_new(struct lb_worker *w, struct lb_backend *be,
                                    struct lb_server *srv);
/* Close and free (deferred) an upstream. */
void lb_upstream_close(struct lb_upstream *up);

/* Queue a waiter on its backend; it is called back (on_ready) when a slot may be free. */
void lb_worker_enqueue(struct lb_worker *w, struct lb_waiter *waiter);
void lb_worker_dequeue(struct lb_worker *w, struct lb_waiter *waiter);
/* A slot of be was released on this worker: let waiters try again. */
void lb_worker_kick_queue(struct lb_worker *w);

/* Append one access log line (without newline handling: line must end with '\n'). */
void lb_worker_access_log(struct lb_worker *w, int fd, const char *line, size_t len);

#endif
