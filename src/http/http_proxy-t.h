/* SPDX-License-Identifier: MIT */
/* Types of an HTTP/1 client connection (struct hp_conn), of the request in flight on it
 * (struct hp_exchange) and of the handlers that answer requests (struct hp_handler), shared
 * by http_proxy.c (the connection's state machine), http_upstream.c, http_local.c,
 * http_reply.c and http_tunnel.c. Types only. */
#ifndef KEEL_HTTP_HTTP_PROXY_T_H
#define KEEL_HTTP_HTTP_PROXY_T_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/ev.h"
#include "core/sock.h"
#include "http/http_local-t.h"
#include "http/http_parse.h"
#include "http/http_transport-t.h"
#include "lb/lb_session-t.h"
#include "lb/lb_worker.h"

enum hp_state {
    HP_STATE_HANDSHAKE = 0, /* the transport comes up (TLS; timeout_handshake running); plain
                             * TCP connections start in IDLE */
    HP_STATE_IDLE,          /* between requests: waiting for the first byte of the next one */
    HP_STATE_READ_HEAD,     /* reading a request head (header timeout running) */
    HP_STATE_QUEUED,        /* request parsed, waiting for a server slot (maxconn) */
    HP_STATE_CONNECTING,    /* connecting to the chosen server */
    HP_STATE_EXCHANGE,      /* request and response flowing through */
    HP_STATE_LOCAL,         /* sending a response keel makes (file, redirect, 404), then go on */
    HP_STATE_REPLY,         /* writing a response made by keel (error), then close */
    HP_STATE_LINGER,        /* write side shut; discarding input until EOF before close */
    HP_STATE_CLOSED
};

/* How a message body is being delimited and how much of it was seen. */
struct hp_body {
    enum http_body_kind kind;
    uint64_t remaining;     /* HTTP_BODY_LENGTH */
    struct http_chunked ck; /* HTTP_BODY_CHUNKED */
    uint64_t data_bytes;    /* payload bytes seen (chunk data or length bytes) */
    bool is_done;
};

/* What the access log needs of a request, copied before the head is consumed. */
struct hp_logreq {
    char method[16];
    char target[512];
    char referer[256];
    char user_agent[256];
    int minor;
};

struct hp_conn;

/* How a request is answered. The connection's state machine (http_proxy.c) reads the head,
 * picks a handler (http_proxy.c route_request) and drives it through these; each handler
 * keeps its own state in the exchange's union. Handlers: the proxy (http_upstream.c) and
 * keel's own responses, static files, `return`, redirects and error pages
 * (http_local.c with http_static.c); the admin routes are the next. */
struct hp_handler {
    const char *name;
    /* Move the exchange on. Called by hp_conn_step while the connection is in one of the
     * handler's states (queued, connecting and exchange for the proxy; local for keel's
     * own responses). May change the state, fail the request (hp_conn_fail) or close. */
    void (*step)(struct hp_conn *c);
    /* After the steps: arm the handler's own timers and fd interest. NULL: nothing. */
    void (*sync)(struct hp_conn *c);
    /* Drop what the handler holds (server connection, slot, place in the queue, file,
     * buffers). Called when the request fails, when the exchange ends and when the
     * connection closes; must be idempotent. */
    void (*release)(struct hp_conn *c);
};

/* The proxy handler's state (http_upstream.c): the server side of one exchange. */
struct hp_proxy {
    struct buf rhead; /* the request head for the server, kept for retries */
    size_t rhead_sent;
    size_t body_sent;   /* bytes of conn->in's request body written to the server */
    bool body_consumed; /* some body bytes were dropped from `in`: no retry possible */
    bool is_idempotent;
    bool is_upgrade; /* asks for a protocol upgrade keel tunnels (http_tunnel_requested) */
    bool stale_retry_used;
    struct lb_session sess; /* the server: slot, queue place, connect, retries (lb_session.h) */
    struct lb_upstream *up;
    bool up_write_blocked;
    bool up_eof;        /* the server closed its side */
    uint64_t t_sent_us; /* connected to the server (monotonic µs) */
    struct http_parser rparser;
    bool res_head_done;
    struct hp_body res_body;
    size_t res_scanned; /* bytes at the head of up->in that are response body */
    size_t res_sent;    /* of which written to the client */
    bool dechunk;       /* HTTP/1.0 client, chunked response: body goes through out */
};

/* One request and its response: what a client connection needs only while a request is in
 * flight. Taken from a per-thread pool when the first byte of a request head arrives and
 * given back when the exchange ends, so that an idle keep-alive connection holds only its
 * struct hp_conn (no buffers, no parsed heads). */
struct hp_exchange {
    struct hp_conn *conn;             /* the client connection carrying it */
    const struct hp_handler *handler; /* NULL until the request is routed */
    struct lb_backend *be;
    enum http_method method;
    bool req_keepalive;
    int req_minor;
    struct hp_body req_body;
    size_t body_scanned;   /* bytes at the head of conn->in known to be this request's body */
    uint64_t t_start_ms;   /* request head complete */
    struct hp_logreq *log; /* &log_copy, or NULL when the access log is off */
    bool res_started;      /* a byte of the final response reached the client socket */
    int status;            /* status sent (or 0) */
    uint64_t res_bytes;    /* response bytes written to the client */
    uint64_t req_bytes;
    const char *error_detail; /* why keel answered itself, for the log */
    uint32_t moves;           /* bumped by a handler that starts over (a new server connection) */
    union {
        struct hp_proxy px;           /* handler: the proxy */
        struct http_local_resp local; /* handler: keel's own response */
    } h;

    /* Not cleared when the exchange is taken from the pool (written before read). */
    struct hp_logreq log_copy;
    struct http_msg req;
    struct http_msg res; /* the proxy's: the server's response head */
};

/* A client connection, from accept to close. Kept small: this is what an idle keep-alive
 * connection costs (buffers are released between requests, see http_pool.h). */
struct hp_conn {
    struct lb_conn_base base; /* first: the worker's connection list */
    struct lb_worker *w;
    struct lb_gen *gen; /* reference held for the connection's life */
    struct lb_frontend *fe;
    enum hp_state state;
    bool client_write_blocked;
    bool client_eof;
    bool close_after;    /* close once the current response is out */
    bool step_again;     /* the pump stopped at its bound with work left (pipelined requests
                          * already read): a writable event brings it back next iteration */
    struct http_xprt xp; /* the client socket, read and written only through this */
    struct ev_io io;
    struct ev_timer timer; /* meaning depends on state, see arm_client_timer() */
    struct buf in;         /* bytes from the client (current request body, pipelined); no storage
                            * while idle */
    struct buf out;        /* bytes for the client made by keel: heads, de-chunked data */
    struct http_parser parser; /* the request head being read */
    struct hp_exchange *ex;    /* the request in flight; NULL while idle */
    union sock_peer peer;      /* its text on demand: hp_conn_ip() */
};

/* The client's address as text ("1.2.3.4", "::1") in out; returns out. */
static inline const char *hp_conn_ip(const struct hp_conn *c, char out[SOCK_IP_MAX])
{
    return sock_addr_ip(&c->peer.sa, out, SOCK_IP_MAX);
}

#endif
