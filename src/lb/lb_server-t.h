/* SPDX-License-Identifier: MIT */
/* A server of a backend as the runtime sees it: static settings from the configuration
 * plus state shared by every worker (atomics only). Types only. */
#ifndef KEEL_LB_LB_SERVER_T_H
#define KEEL_LB_LB_SERVER_T_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/conf-t.h"
#include "http/http_transport-t.h"

struct metrics_server;
struct tls_client;

#define LB_PASSIVE_CLIENTS 2

struct lb_server {
    const struct conf_server *conf; /* name, address; lives as long as the generation */
    uint32_t id;                    /* index in the backend's server array */
    uint32_t weight;                /* 1..256 */
    uint32_t maxconn;               /* 0 = unlimited */
    bool is_backup;
    _Atomic bool is_up;                /* health verdict (false when administratively down) */
    _Atomic uint32_t active;           /* requests or TCP sessions in flight, all workers */
    _Atomic uint32_t passive_failures; /* connect errors/resets seen by workers, drained by
                                        * the control thread into the health verdict */
    /* lb_hash_client() keys (0: free) of the clients those failures came from; two slots
     * are enough to tell one client from several (lb_check.c, passive detection) */
    _Atomic uint32_t passive_clients[LB_PASSIVE_CLIENTS];
    struct metrics_server *metrics;
    _Atomic uint64_t last_warn_ms; /* rate limit of repeated failure logs */
    /* `server ... tls`: the client context (tls/tls_client.h) and the transport every
     * connection to the server opens with, the proxy's and the checks'; NULL and {NULL}
     * (plain TCP) otherwise. Built with the generation, shared by every worker. */
    struct tls_client *tls;
    struct http_xprt_conf xprt;
};

/* Whether a repeated warning about s may be logged now (at most one per second). */
static inline bool lb_server_may_warn(struct lb_server *s, uint64_t now_ms)
{
    uint64_t last = atomic_load_explicit(&s->last_warn_ms, memory_order_relaxed);
    return now_ms - last >= 1000 && atomic_compare_exchange_strong(&s->last_warn_ms, &last, now_ms);
}

/* Whether s can take one more request now (maxconn not reached). */
static inline bool lb_server_has_room(struct lb_server *s)
{
    return s->maxconn == 0 || atomic_load_explicit(&s->active, memory_order_relaxed) < s->maxconn;
}

#endif
