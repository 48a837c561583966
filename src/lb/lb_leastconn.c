/* SPDX-License-Identifier: MIT */
/* Weighted least connections ("balance leastconn"): the server with the fewest in-flight
 * requests per unit of weight wins, and equal servers are taken in turn. This file only
 * chooses; the caller increments and decrements server->active. */
#include "lb/lb_algo.h"

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Keeps the rotor off the cache line of the read-only fields (see lb_roundrobin.c). */
#define LC_CACHE_LINE 64

struct lc_state {
    /* Where the next scan starts; advanced once per pick so that ties rotate. The only mutable
     * field; wrapping at 2^32 only shifts the rotation once. */
    _Alignas(LC_CACHE_LINE) _Atomic uint32_t rotor;
    _Alignas(LC_CACHE_LINE) uint32_t n;
    struct lb_server *servers[]; /* [n] */
};

/* weight 0 is rejected by the configuration; count it as 1 rather than divide by it. */
static uint64_t lc_weight(const struct lb_server *s)
{
    return s->weight == 0 ? 1u : s->weight;
}

static void *lc_build(struct lb_server *const *servers, uint32_t n)
{
    size_t size = sizeof(struct lc_state) + (size_t)n * sizeof(struct lb_server *);
    struct lc_state *st;

    /* pick() returns an int index. */
    if (n == 0 || n > INT_MAX) {
        return NULL;
    }
    /* aligned_alloc wants a multiple of the alignment; the memory is released by free(). */
    size = (size + LC_CACHE_LINE - 1) / LC_CACHE_LINE * LC_CACHE_LINE;
    st = aligned_alloc(LC_CACHE_LINE, size);
    if (st == NULL) {
        return NULL;
    }
    atomic_init(&st->rotor, 0);
    st->n = n;
    for (uint32_t i = 0; i < n; i++) {
        st->servers[i] = servers[i];
    }
    return st;
}

static void lc_free(void *state)
{
    free(state);
}

/* One O(n) scan from the rotor position. active/weight is compared as a cross product in 64
 * bits (active < 2^32, weight <= 256: no overflow, no division). Only a strictly lower load
 * replaces the best, so among equals the first one after the rotor wins, and the rotor moves
 * on every pick. The loads of active are relaxed snapshots: two workers picking at the same
 * instant may both choose the same server, which the next picks correct. */
static int lc_pick(void *state, const struct lb_pick_ctx *ctx)
{
    struct lc_state *st = state;
    uint32_t idx = atomic_fetch_add_explicit(&st->rotor, 1, memory_order_relaxed) % st->n;
    uint64_t best_active = 0;
    uint64_t best_weight = 1;
    int best = -1;

    (void)ctx; /* least connections ignores the client */
    for (uint32_t i = 0; i < st->n; i++) {
        struct lb_server *s = st->servers[idx];

        if (lb_server_has_room(s)) {
            uint64_t active = atomic_load_explicit(&s->active, memory_order_relaxed);
            uint64_t weight = lc_weight(s);

            if (best == -1 || active * best_weight < best_active * weight) {
                best = (int)idx;
                best_active = active;
                best_weight = weight;
            }
        }
        idx = idx + 1 == st->n ? 0 : idx + 1;
    }
    return best;
}

const struct lb_algo lb_leastconn = {
    .name = "leastconn",
    .build = lc_build,
    .free = lc_free,
    .pick = lc_pick,
};
