/* SPDX-License-Identifier: MIT */
/* Smooth weighted round robin ("balance roundrobin"): nginx's algorithm, unrolled at build time
 * into a schedule of sum(weights) slots that workers walk with one atomic counter. This file
 * owns the schedule; it does not decide which servers are eligible (the caller builds a state
 * over the up servers) and never changes server->active. */
#include "lb/lb_algo.h"

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Keeps the hot counter off the cache line of the read-only fields, so that workers reading
 * the schedule do not miss every time another worker advances the cursor. */
#define RR_CACHE_LINE 64

struct rr_state {
    /* Total picks so far; slot = cursor % len. 64 bits so it never wraps (a 32-bit counter
     * would jump in the schedule at 2^32 when len does not divide it). The only mutable
     * field. */
    _Alignas(RR_CACHE_LINE) _Atomic uint64_t cursor;
    _Alignas(RR_CACHE_LINE) uint32_t n; /* servers */
    uint32_t len;                       /* schedule slots: sum(weight / gcd), >= n */
    struct lb_server **servers;         /* [n], points into this allocation */
    uint32_t *schedule;                 /* [len] server indexes, points into this allocation */
};

/* weight 0 is rejected by the configuration; were it to get here it would leave the server
 * out of the schedule and an all-zero backend with an empty one, so count it as 1. */
static uint32_t rr_weight(const struct lb_server *s)
{
    return s->weight == 0 ? 1u : s->weight;
}

static uint32_t gcd32(uint32_t a, uint32_t b)
{
    while (b != 0) {
        uint32_t t = a % b;

        a = b;
        b = t;
    }
    return a;
}

/* The common divisor of every weight: weights 2,2,2 give the same order as 1,1,1 (smooth WRR is
 * linear in the weights), so dividing first keeps the schedule, and the build time, short. */
static uint32_t rr_weight_gcd(struct lb_server *const *servers, uint32_t n)
{
    uint32_t g = 0;

    for (uint32_t i = 0; i < n; i++) {
        g = gcd32(rr_weight(servers[i]), g);
    }
    return g;
}

/* Fill st->schedule with nginx's smooth weighted round robin: each step every server's current
 * value grows by its weight, the largest wins (lowest index on ties) and loses the total. After
 * len steps every current value is back to 0, so the schedule repeats exactly. Weights are
 * divided by g, their gcd. Cost O(len * n) on the control thread. */
static int rr_fill_schedule(struct rr_state *st, uint32_t g)
{
    int64_t *current = calloc(st->n, sizeof(*current));

    if (current == NULL) {
        return -1;
    }
    for (uint32_t slot = 0; slot < st->len; slot++) {
        uint32_t best = 0;

        for (uint32_t i = 0; i < st->n; i++) {
            current[i] += rr_weight(st->servers[i]) / g;
            if (current[i] > current[best]) {
                best = i;
            }
        }
        current[best] -= (int64_t)st->len;
        st->schedule[slot] = best;
    }
    free(current);
    return 0;
}

/* One allocation: the header (cache-line aligned), then servers[n], then schedule[len]. */
static struct rr_state *rr_alloc(uint32_t n, uint32_t len)
{
    size_t size = sizeof(struct rr_state) + (size_t)n * sizeof(struct lb_server *) +
                  (size_t)len * sizeof(uint32_t);
    struct rr_state *st;

    /* aligned_alloc wants a multiple of the alignment; the memory is released by free(). */
    size = (size + RR_CACHE_LINE - 1) / RR_CACHE_LINE * RR_CACHE_LINE;
    st = aligned_alloc(RR_CACHE_LINE, size);
    if (st == NULL) {
        return NULL;
    }
    atomic_init(&st->cursor, 0);
    st->n = n;
    st->len = len;
    st->servers = (struct lb_server **)(st + 1);
    st->schedule = (uint32_t *)(st->servers + n);
    return st;
}

static void *rr_build(struct lb_server *const *servers, uint32_t n)
{
    uint64_t total = 0;
    uint32_t g;
    struct rr_state *st;

    /* pick() returns an int index. */
    if (n == 0 || n > INT_MAX) {
        return NULL;
    }
    g = rr_weight_gcd(servers, n);
    for (uint32_t i = 0; i < n; i++) {
        total += rr_weight(servers[i]) / g; /* at most 256 * 2^31: no 64-bit overflow */
    }
    /* A schedule over 2^32 slots cannot be allocated anyway: report it as OOM. */
    if (total > UINT32_MAX) {
        return NULL;
    }
    st = rr_alloc(n, (uint32_t)total);
    if (st == NULL) {
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        st->servers[i] = servers[i];
    }
    if (rr_fill_schedule(st, g) != 0) {
        free(st);
        return NULL;
    }
    return st;
}

static void rr_free(void *state)
{
    free(state);
}

static bool rr_any_has_room(const struct rr_state *st)
{
    for (uint32_t i = 0; i < st->n; i++) {
        if (lb_server_has_room(st->servers[i])) {
            return true;
        }
    }
    return false;
}

/* Take the next slot; when its server is full, walk the following slots, which hands the full
 * server's turn to the servers scheduled after it in their weighted order. Once n slots have
 * missed, check in O(n) that some server has room at all, so that a backend where every
 * server is full costs O(n) per pick and not O(sum(weights)). */
static int rr_pick(void *state, const struct lb_pick_ctx *ctx)
{
    struct rr_state *st = state;
    uint64_t ticket = atomic_fetch_add_explicit(&st->cursor, 1, memory_order_relaxed);
    uint32_t slot = (uint32_t)(ticket % st->len);

    (void)ctx; /* round robin ignores the client */
    for (uint32_t tries = 0; tries < st->len; tries++) {
        uint32_t idx = st->schedule[slot];

        if (lb_server_has_room(st->servers[idx])) {
            return (int)idx;
        }
        if (tries + 1 == st->n && st->n < st->len && !rr_any_has_room(st)) {
            return -1;
        }
        slot = slot + 1 == st->len ? 0 : slot + 1;
    }
    return -1;
}

const struct lb_algo lb_roundrobin = {
    .name = "roundrobin",
    .build = rr_build,
    .free = rr_free,
    .pick = rr_pick,
};
