/* SPDX-License-Identifier: MIT */
/* The balancing algorithm interface. Each algorithm is one file (lb_roundrobin.c,
 * lb_leastconn.c, lb_source.c, lb_random.c). The control thread builds an algorithm state
 * over the currently eligible servers whenever server states change, and publishes it;
 * workers call pick() concurrently and lock-free on a published state. */
#ifndef KEEL_LB_LB_ALGO_H
#define KEEL_LB_LB_ALGO_H

#include <stdint.h>

#include "core/conf-t.h"
#include "lb/lb_server-t.h"

struct lb_pick_ctx {
    uint32_t client_hash; /* lb_hash_client() of the client address (source) */
    uint64_t *rng;        /* the calling thread's random state (random), never 0 */
};

struct lb_algo {
    const char *name;
    /* Build a state over servers[0, n), n >= 1, all eligible (up). The state keeps its own
     * copy of the array; the servers outlive it. Returns NULL only on OOM. Control thread. */
    void *(*build)(struct lb_server *const *servers, uint32_t n);
    /* Free a state; NULL is allowed. Called once no worker can still be using it. */
    void (*free)(void *state);
    /* Choose a server with room (lb_server_has_room). Returns the index into the array given
     * to build, or -1 when none of the candidates has room (the caller queues). Thread-safe,
     * lock-free, never blocks. Does not change server->active: the caller does. */
    int (*pick)(void *state, const struct lb_pick_ctx *ctx);
};

extern const struct lb_algo lb_roundrobin;
extern const struct lb_algo lb_leastconn;
extern const struct lb_algo lb_source;
extern const struct lb_algo lb_random;

/* The algorithm for a configured balance mode. */
const struct lb_algo *lb_algo_for(enum conf_balance balance);

/* A well-mixed 32-bit hash of a client address (IPv4 or IPv6 bytes; port ignored). */
uint32_t lb_hash_client(const void *addr_bytes, uint32_t len);

/* xorshift64* step for the random algorithm; *state must be non-zero. */
uint64_t lb_rng_next(uint64_t *state);

#endif
