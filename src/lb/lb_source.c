/* SPDX-License-Identifier: MIT */
/* Client IP affinity ("balance source") on a consistent hash ring: each server owns points on a
 * 32-bit circle, placed by hashing its name, and a client goes to the first point at or after
 * its address hash. Removing a server moves only that server's clients; adding one takes about
 * a 1/(n+1) share. The ring (lb_ring_*) serves any algorithm that hashes a key; this file's
 * key is the client's address (lb_pick_client_hash). */
#include "lb/lb_algo.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Points per unit of weight. With 160 points a server's share of the circle is within a few
 * percent of fair (ketama uses the same number); the ring costs 8 bytes per point. */
#define SRC_POINTS_PER_WEIGHT 160u

struct src_state {
    uint32_t n;                 /* servers */
    uint32_t n_points;          /* 160 * sum(weights) */
    struct lb_server **servers; /* [n], points into this allocation */
    uint32_t *point_hash;       /* [n_points] ascending: the circle */
    uint32_t *point_server;     /* [n_points] index into servers of each point */
};

/* A point while the ring is built: the sort key is (hash, owner identity), so that two points
 * that collide are ordered the same way whatever the servers' array positions. */
struct src_point {
    uint32_t hash;
    uint32_t server;
    uint64_t owner_key;
};

/* weight 0 is rejected by the configuration; count it as 1 so the server is on the ring. */
static uint32_t src_weight(const struct lb_server *s)
{
    return s->weight == 0 ? 1u : s->weight;
}

/* splitmix64's output function (Steele, Lea, Flood): a bijective 64-bit mix. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* A 64-bit key for the server's stable identity: its configured name, or, without a
 * configuration, its id. Never the array index, which changes when another server leaves. */
static uint64_t src_owner_key(const struct lb_server *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 offset basis */

    if (s->conf == NULL) {
        /* Another domain than names, so that id 7 and a server named "7" differ. */
        return mix64(0x6b65656c00000000ull ^ s->id);
    }
    for (size_t i = 0; i < CONF_NAME_MAX && s->conf->name[i] != '\0'; i++) {
        h ^= (unsigned char)s->conf->name[i];
        h *= 0x100000001b3ull; /* FNV-1a 64 prime */
    }
    return mix64(h);
}

/* Point number k of the server with key owner_key: the splitmix64 sequence seeded by the key,
 * top 32 bits. Depends only on (identity, k), so a server's points never move. */
static uint32_t src_point_hash(uint64_t owner_key, uint32_t k)
{
    return (uint32_t)(mix64(owner_key + (uint64_t)(k + 1u) * 0x9e3779b97f4a7c15ull) >> 32);
}

static int src_point_cmp(const void *a, const void *b)
{
    const struct src_point *pa = a;
    const struct src_point *pb = b;

    if (pa->hash != pb->hash) {
        return pa->hash < pb->hash ? -1 : 1;
    }
    if (pa->owner_key != pb->owner_key) {
        return pa->owner_key < pb->owner_key ? -1 : 1;
    }
    return 0;
}

/* One allocation: the header, then servers[n], point_hash[n_points], point_server[n_points]. */
static struct src_state *src_alloc(uint32_t n, uint32_t n_points)
{
    size_t size = sizeof(struct src_state) + (size_t)n * sizeof(struct lb_server *) +
                  (size_t)n_points * 2u * sizeof(uint32_t);
    struct src_state *st = malloc(size);

    if (st == NULL) {
        return NULL;
    }
    st->n = n;
    st->n_points = n_points;
    st->servers = (struct lb_server **)(st + 1);
    st->point_hash = (uint32_t *)(st->servers + n);
    st->point_server = st->point_hash + n_points;
    return st;
}

/* Place every server's points in points[], sort them into the circle and copy it into st. */
static int src_fill_ring(struct src_state *st)
{
    struct src_point *points = malloc((size_t)st->n_points * sizeof(*points));
    uint32_t at = 0;

    if (points == NULL) {
        return -1;
    }
    for (uint32_t i = 0; i < st->n; i++) {
        uint64_t key = src_owner_key(st->servers[i]);
        uint32_t count = SRC_POINTS_PER_WEIGHT * src_weight(st->servers[i]);

        for (uint32_t k = 0; k < count; k++) {
            points[at].hash = src_point_hash(key, k);
            points[at].server = i;
            points[at].owner_key = key;
            at++;
        }
    }
    qsort(points, st->n_points, sizeof(*points), src_point_cmp);
    for (uint32_t p = 0; p < st->n_points; p++) {
        st->point_hash[p] = points[p].hash;
        st->point_server[p] = points[p].server;
    }
    free(points);
    return 0;
}

void *lb_ring_build(struct lb_server *const *servers, uint32_t n)
{
    uint64_t total = 0;
    struct src_state *st;

    /* pick() returns an int index. */
    if (n == 0 || n > INT_MAX) {
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        total += (uint64_t)SRC_POINTS_PER_WEIGHT * src_weight(servers[i]);
    }
    /* A ring over 2^32 points cannot be allocated anyway: report it as OOM. */
    if (total > UINT32_MAX) {
        return NULL;
    }
    st = src_alloc(n, (uint32_t)total);
    if (st == NULL) {
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        st->servers[i] = servers[i];
    }
    if (src_fill_ring(st) != 0) {
        free(st);
        return NULL;
    }
    return st;
}

void lb_ring_free(void *ring)
{
    free(ring);
}

/* The first point whose hash is >= h, wrapping past the top of the circle to point 0. A
 * branchless lower bound: client hashes are random, so a branchy search would mispredict about
 * half of its log2(points) steps; here the compiler turns the choice into a conditional move. */
static uint32_t src_find_point(const struct src_state *st, uint32_t h)
{
    const uint32_t *base = st->point_hash;
    uint32_t len = st->n_points; /* >= 160 */
    uint32_t at;

    while (len > 1u) {
        uint32_t half = len / 2u;

        base = base[half] < h ? base + half : base;
        len -= half;
    }
    at = (uint32_t)(base - st->point_hash) + (*base < h ? 1u : 0u);
    return at == st->n_points ? 0u : at;
}

/* O(log points). A full server is not replaced by its neighbour on the ring: that would break
 * the affinity the client asked for, so the caller queues for it (as HAProxy does). */
int lb_ring_pick(const void *ring, uint32_t key)
{
    const struct src_state *st = ring;
    uint32_t idx = st->point_server[src_find_point(st, key)];

    if (!lb_server_has_room(st->servers[idx])) {
        return -1;
    }
    return (int)idx;
}

static int src_pick(void *state, const struct lb_pick_ctx *ctx)
{
    return lb_ring_pick(state, lb_pick_client_hash(ctx));
}

const struct lb_algo lb_source = {
    .name = "source",
    .build = lb_ring_build,
    .free = lb_ring_free,
    .pick = src_pick,
};
