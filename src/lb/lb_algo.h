/* SPDX-License-Identifier: MIT */
/* The balancing algorithm interface. Each algorithm is one file (lb_roundrobin.c,
 * lb_leastconn.c, lb_source.c, lb_random.c) and one entry of LB_ALGOS in lb_algo.c, which
 * is what "balance NAME [ARG]" accepts. The control thread builds an algorithm state over
 * the currently eligible servers whenever server states change, and publishes it; workers
 * call pick() concurrently and lock-free on a published state. What a pick may know about
 * the request (its client, a header) it asks the context for, so that no caller computes a
 * key an algorithm does not use. */
#ifndef KEEL_LB_LB_ALGO_H
#define KEEL_LB_LB_ALGO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/conf-t.h"
#include "lb/lb_server-t.h"

/* What is being routed, for a pick. Read it through the lb_pick_* functions below. */
struct lb_pick_ctx {
    const char *arg;             /* the backend's "balance NAME ARG" argument, or "" */
    uint64_t *rng;               /* the calling thread's random state, never 0 */
    const struct sockaddr *peer; /* the client; NULL: client_hash is given (tests) */
    uint32_t client_hash;        /* used when peer is NULL */
    /* The value of the request's first header named name (OWS trimmed), its length in
     * *value_len; NULL when absent. NULL function: no request headers (a TCP session). */
    const char *(*header)(void *req, const char *name, size_t name_len, size_t *value_len);
    void *req; /* for header */
};

struct lb_algo {
    const char *name; /* "balance NAME" */
    /* The argument it takes ("HEADER", for the syntax and errors), NULL when it takes none. */
    const char *arg_name;
    /* Whether the argument is valid: NULL if so, else why not ("is not a header name").
     * NULL function: any argument is. */
    const char *(*check_arg)(const char *arg);
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

/* The algorithm named name, NULL when there is none. */
const struct lb_algo *lb_algo_find(const char *name);

/* The i-th algorithm of the table (0: the default), NULL past the end. */
const struct lb_algo *lb_algo_at(size_t i);

/* The algorithm of a configured backend ("balance"; roundrobin when none was set). */
const struct lb_algo *lb_algo_of(const struct conf_backend *be);

/* The hash of the client's address, computed on demand (lb_hash_bytes of its IP). */
uint32_t lb_pick_client_hash(const struct lb_pick_ctx *ctx);

/* The value of the request's header name (see struct lb_pick_ctx), NULL when absent. */
const char *lb_pick_header(const struct lb_pick_ctx *ctx, const char *name, size_t *value_len);

/* A well-mixed 32-bit hash of bytes (murmur3, fixed seed: the same on every node). */
uint32_t lb_hash_bytes(const void *bytes, uint32_t len);

/* xorshift64* step for the random algorithm; *state must be non-zero. */
uint64_t lb_rng_next(uint64_t *state);

/* A consistent hash ring over servers (lb_source.c): each server owns points placed by
 * hashing its name, and a key goes to the first point at or after it. For any algorithm
 * that hashes a key: build and free are the algorithm's own, pick takes the key. */
void *lb_ring_build(struct lb_server *const *servers, uint32_t n);
void lb_ring_free(void *ring);
/* The server owning key, or -1 when it is full (affinity is kept: the caller queues). */
int lb_ring_pick(const void *ring, uint32_t key);

#endif
