/* SPDX-License-Identifier: MIT */
/* Power of two random choices ("balance random"): draw two distinct servers at random and send
 * the request to the less loaded of the two (per unit of weight). This avoids both the herd of
 * leastconn (every worker choosing the same idle server) and the blindness of pure random.
 * This file only chooses; the caller increments and decrements server->active. */
#include "lb/lb_algo.h"

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct rnd_state {
    uint32_t n;
    struct lb_server *servers[]; /* [n] */
};

/* weight 0 is rejected by the configuration; count it as 1 rather than divide by it. */
static uint64_t rnd_weight(const struct lb_server *s)
{
    return s->weight == 0 ? 1u : s->weight;
}

static void *rnd_build(struct lb_server *const *servers, uint32_t n)
{
    struct rnd_state *st;

    /* pick() returns an int index. */
    if (n == 0 || n > INT_MAX) {
        return NULL;
    }
    st = malloc(sizeof(*st) + (size_t)n * sizeof(struct lb_server *));
    if (st == NULL) {
        return NULL;
    }
    st->n = n;
    for (uint32_t i = 0; i < n; i++) {
        st->servers[i] = servers[i];
    }
    return st;
}

static void rnd_free(void *state)
{
    free(state);
}

/* A uniform value in [0, bound) from 32 random bits, by multiply and shift (Lemire) instead of
 * a division; the bias is below bound / 2^32. */
static uint32_t rnd_below(uint32_t bits, uint32_t bound)
{
    return (uint32_t)(((uint64_t)bits * bound) >> 32);
}

/* Whether a is strictly less loaded than b: active_a / weight_a < active_b / weight_b, as a
 * cross product in 64 bits (active < 2^32, weight <= 256). */
static bool rnd_is_lighter(struct lb_server *a, struct lb_server *b)
{
    uint64_t active_a = atomic_load_explicit(&a->active, memory_order_relaxed);
    uint64_t active_b = atomic_load_explicit(&b->active, memory_order_relaxed);

    return active_a * rnd_weight(b) < active_b * rnd_weight(a);
}

/* Neither choice had room: the least loaded server that has some, scanning from start so that
 * ties do not always favour index 0. O(n); -1 when every server is full. */
static int rnd_pick_fallback(const struct rnd_state *st, uint32_t start)
{
    uint32_t idx = start;
    int best = -1;

    for (uint32_t i = 0; i < st->n; i++) {
        struct lb_server *s = st->servers[idx];

        if (lb_server_has_room(s) && (best == -1 || rnd_is_lighter(s, st->servers[best]))) {
            best = (int)idx;
        }
        idx = idx + 1 == st->n ? 0 : idx + 1;
    }
    return best;
}

/* O(1) unless both choices are full. One xorshift64* draw gives both indexes: the high half
 * picks the first among n, the low half the second among the n - 1 others. */
static int rnd_pick(void *state, const struct lb_pick_ctx *ctx)
{
    const struct rnd_state *st = state;
    uint64_t r;
    uint32_t first;
    uint32_t second;
    bool first_has_room;
    bool second_has_room;

    if (st->n == 1) {
        return lb_server_has_room(st->servers[0]) ? 0 : -1;
    }
    r = lb_rng_next(ctx->rng);
    first = rnd_below((uint32_t)(r >> 32), st->n);
    second = rnd_below((uint32_t)r, st->n - 1u);
    if (second >= first) {
        second++;
    }
    first_has_room = lb_server_has_room(st->servers[first]);
    second_has_room = lb_server_has_room(st->servers[second]);
    if (first_has_room && second_has_room) {
        return rnd_is_lighter(st->servers[second], st->servers[first]) ? (int)second : (int)first;
    }
    if (first_has_room) {
        return (int)first;
    }
    if (second_has_room) {
        return (int)second;
    }
    return rnd_pick_fallback(st, first);
}

const struct lb_algo lb_random = {
    .name = "random",
    .build = rnd_build,
    .free = rnd_free,
    .pick = rnd_pick,
};
