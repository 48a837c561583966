/* SPDX-License-Identifier: MIT */
/* Types of a session (struct lb_session): the path from a client's request or TCP
 * connection to a connected server, shared by the HTTP proxy handler (http/http_upstream.c)
 * and the TCP relay (lb/lb_tcp.c). Types only; the functions are in lb_session.h. */
#ifndef KEEL_LB_LB_SESSION_T_H
#define KEEL_LB_LB_SESSION_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ev.h: the loop's types have no -t.h of their own (http_proxy-t.h includes it too). */
#include "core/ev.h"
#include "http/http_transport-t.h"

struct lb_backend;
struct lb_server;
struct lb_worker;
struct lb_session;

/* A session waiting for a server slot (every eligible server at maxconn), in its worker's
 * queue. The worker calls on_ready when a slot may be free (lb_worker_kick_queue). */
struct lb_waiter {
    struct lb_waiter *next;
    struct lb_waiter *prev;
    struct lb_backend *be;
    void (*on_ready)(struct lb_waiter *waiter); /* try to pick again */
    bool is_queued;
};

enum lb_session_state {
    LB_SESSION_IDLE = 0,   /* no server slot: not started yet, failed, or released */
    LB_SESSION_QUEUED,     /* every eligible server at maxconn: in the backend's queue */
    LB_SESSION_CONNECTING, /* a slot held, the non-blocking connect in flight */
    LB_SESSION_CONNECTED   /* a slot held, the owner has a connected server transport */
};
#define LB_SESSION_STATE_COUNT 4

/* Why a session gave up: the owner answers (HTTP: lb_session_err_status) or closes. */
enum lb_session_err {
    LB_SESSION_ENOSERVER = 0,   /* no server of the backend is up */
    LB_SESSION_EQUEUE_FULL,     /* every server at maxconn and queue_max sessions waiting */
    LB_SESSION_EQUEUE_TIMEOUT,  /* no slot became free within timeout_queue */
    LB_SESSION_ENOFD,           /* this node is out of descriptors (no fault of a server) */
    LB_SESSION_ENOMEM,          /* the owner could not make room for the server connection */
    LB_SESSION_ECONNECT,        /* connect failed, on the last server tried */
    LB_SESSION_ECONNECT_TIMEOUT /* connect timed out (timeout_connect), on the last server */
};

/* What the owner (an HTTP exchange or a TCP relay) provides. Callbacks may be called from
 * inside the lb_session_* call that caused them, or from the session's own events; in the
 * second case on_wake follows. */
struct lb_session_ops {
    const char *log_name; /* the owner's log subsystem: "http", "tcp" */
    /* A slot of s->srv is held. Return 1 when the owner took a connection to it it already
     * had (a keep-alive pool): the session is connected, on_connected is not called. Return
     * 0 to have the session connect, after pointing s->xp and s->io at the owner's storage
     * for the server socket. Return -errno (out of memory): the session fails with
     * LB_SESSION_ENOMEM. */
    int (*on_slot)(struct lb_session *s);
    /* The session was queued (NULL: nothing to do). */
    void (*on_queued)(struct lb_session *s);
    /* The connect finished: s->xp is connected, s->io watches it with the session's
     * callback; the owner points s->io->on_event and data at its own. */
    void (*on_connected)(struct lb_session *s);
    /* A connect failed: close the socket in s->xp and forget the storage given in on_slot.
     * The session then retries or fails. */
    void (*on_drop)(struct lb_session *s);
    /* The session gave up (it is idle, holding nothing). detail is for the log. */
    void (*on_error)(struct lb_session *s, enum lb_session_err err, const char *detail);
    /* The session moved on one of its own events (a queue slot, its timer, the connect):
     * run the owner's pump. NULL: nothing. Called last, with the owner only: the session
     * may be gone by then (an HTTP exchange that failed went back to its pool). */
    void (*on_wake)(void *owner);
    /* The value of the request's header name, for an algorithm that routes by one (struct
     * lb_pick_ctx); NULL function: the owner has no request headers. */
    const char *(*header)(void *owner, const char *name, size_t name_len, size_t *value_len);
};

/* Embedded in its owner; set up by lb_session_init. Fields are the session's, except those
 * marked for the owner. */
struct lb_session {
    enum lb_session_state state;
    struct lb_worker *w;
    struct lb_backend *be;
    const struct sockaddr *peer; /* the client (the owner's storage) */
    const struct lb_session_ops *ops;
    void *owner;                  /* for the owner's callbacks */
    struct lb_server *srv;        /* the slot held (active counted); NULL when none */
    struct lb_server *failed_srv; /* avoided by the next pick, when another can serve */
    const char *last_server;      /* name of the last server tried, for the access log */
    uint32_t retries_left;        /* of the backend's `retries` */
    struct lb_waiter waiter;      /* in the queue while LB_SESSION_QUEUED */
    struct ev_timer timer;        /* timeout_queue, then timeout_connect */
    struct http_xprt *xp;         /* the server socket (owner's storage, set in on_slot) */
    bool is_xp_connected;         /* connecting: the TCP connect is done, the transport's
                                   * handshake (TLS) runs */
    struct ev_io *io;             /* its watcher (owner's storage, set in on_slot) */
};

#endif
