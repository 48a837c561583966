/* SPDX-License-Identifier: MIT */
/* Unit tests for the balancing algorithms: src/lb/lb_algo.c (included, to reach its statics)
 * and the four algorithms it names (linked: lb_roundrobin.o, lb_leastconn.o, lb_source.o,
 * lb_random.o). Exact sequences for round robin, load and tie rules for leastconn, balance and
 * disruption bounds for the source ring, load avoidance for random. */
#include <criterion/criterion.h>

#include "lb/lb_algo.c"
#include "http/http_parse.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define TEST_MAX_SERVERS 8

/* Servers a, b, c, ... with their configuration, as the runtime would make them. */
struct test_pool {
    struct conf_server conf[TEST_MAX_SERVERS];
    struct lb_server srv[TEST_MAX_SERVERS];
    struct lb_server *all[TEST_MAX_SERVERS];
    uint32_t n;
};

static void pool_init(struct test_pool *p, const uint32_t *weights, uint32_t n)
{
    cr_assert(n <= TEST_MAX_SERVERS);
    memset(p, 0, sizeof(*p));
    p->n = n;
    for (uint32_t i = 0; i < n; i++) {
        snprintf(p->conf[i].name, sizeof(p->conf[i].name), "%c", (char)('a' + i));
        p->conf[i].weight = weights[i];
        p->srv[i].conf = &p->conf[i];
        p->srv[i].id = i;
        p->srv[i].weight = weights[i];
        p->srv[i].maxconn = 0;
        atomic_init(&p->srv[i].is_up, true);
        atomic_init(&p->srv[i].active, 0);
        p->all[i] = &p->srv[i];
    }
}

/* Make server i full: maxconn reached by its in-flight requests. */
static void pool_fill(struct test_pool *p, uint32_t i)
{
    p->srv[i].maxconn = 3;
    atomic_store(&p->srv[i].active, 3);
}

static void *build_or_fail(const struct lb_algo *algo, struct lb_server *const *servers, uint32_t n)
{
    void *st = algo->build(servers, n);

    cr_assert_not_null(st, "%s: build over %u servers failed", algo->name, n);
    return st;
}

/* The name of the server a pick chose, "-" for -1. */
static char picked_name(struct lb_server *const *servers, int idx)
{
    return idx == -1 ? '-' : servers[idx]->conf->name[0];
}

static int pick_hash(const struct lb_algo *algo, void *st, uint32_t client_hash)
{
    struct lb_pick_ctx ctx = {.client_hash = client_hash, .rng = NULL};

    return algo->pick(st, &ctx);
}

static const struct lb_algo *const all_algos[] = {&lb_roundrobin, &lb_leastconn, &lb_source,
                                                  &lb_random};

/* ---------------------------------------------------------------- shared: lb_algo.c */

Test(lb_algo, table_finds_each_algorithm_by_name)
{
    cr_assert_eq(lb_algo_find("roundrobin"), &lb_roundrobin);
    cr_assert_eq(lb_algo_find("leastconn"), &lb_leastconn);
    cr_assert_eq(lb_algo_find("source"), &lb_source);
    cr_assert_eq(lb_algo_find("random"), &lb_random);
    cr_assert_null(lb_algo_find("roundrobinx"));
    cr_assert_null(lb_algo_find(""));
    cr_assert_eq(lb_algo_at(0), &lb_roundrobin, "the default comes first");
    size_t n = 0;
    while (lb_algo_at(n) != NULL) {
        cr_assert_eq(lb_algo_find(lb_algo_at(n)->name), lb_algo_at(n));
        n++;
    }
    cr_assert_eq(n, 4);
    struct conf_backend be = {.balance = NULL};
    cr_assert_eq(lb_algo_of(&be), &lb_roundrobin);
    be.balance = &lb_source;
    cr_assert_eq(lb_algo_of(&be), &lb_source);
    cr_assert_str_eq(lb_roundrobin.name, "roundrobin");
    cr_assert_str_eq(lb_leastconn.name, "leastconn");
    cr_assert_str_eq(lb_source.name, "source");
    cr_assert_str_eq(lb_random.name, "random");
}

static const char *test_header(void *req, const char *name, size_t name_len, size_t *value_len)
{
    const char *head = req;
    return http_head_value(head, strlen(head), name, name_len, value_len);
}

/* What a pick may ask: the client's hash is computed from its address (the port ignored),
 * headers come from the owner's function, and a TCP session (no function) has none. */
Test(lb_algo, pick_ctx_gives_client_hash_and_headers_on_demand)
{
    struct sockaddr_storage ss1 = {0};
    struct sockaddr_storage ss2 = {0};
    struct sockaddr_in *a1 = (struct sockaddr_in *)&ss1;
    struct sockaddr_in *a2 = (struct sockaddr_in *)&ss2;
    a1->sin_family = a2->sin_family = AF_INET;
    a1->sin_addr.s_addr = a2->sin_addr.s_addr = htonl(0x0a000001);
    a1->sin_port = htons(1000);
    a2->sin_port = htons(2000);
    const unsigned char ip[4] = {10, 0, 0, 1};
    struct lb_pick_ctx c1 = {.peer = (const struct sockaddr *)&ss1};
    struct lb_pick_ctx c2 = {.peer = (const struct sockaddr *)&ss2};
    cr_assert_eq(lb_pick_client_hash(&c1), lb_hash_bytes(ip, 4));
    cr_assert_eq(lb_pick_client_hash(&c1), lb_pick_client_hash(&c2));
    struct lb_pick_ctx given = {.client_hash = 77};
    cr_assert_eq(lb_pick_client_hash(&given), 77);

    size_t len = 0;
    cr_assert_null(lb_pick_header(&c1, "X-User", &len), "no header function: none");
    char head[] = "GET / HTTP/1.1\r\nHost: h\r\nX-User:  alice \r\nx-user: bob\r\n\r\n"
                  "X-Late: body\r\n";
    struct lb_pick_ctx h = {.header = test_header, .req = head};
    const char *v = lb_pick_header(&h, "x-USER", &len);
    cr_assert_not_null(v);
    cr_assert_eq(len, 5);
    cr_assert(memcmp(v, "alice", 5) == 0, "the first one, OWS trimmed");
    cr_assert_null(lb_pick_header(&h, "X-Us", &len), "a prefix is not the name");
    cr_assert_null(lb_pick_header(&h, "X-Late", &len), "past the empty line is not the head");
    cr_assert_null(lb_pick_header(&h, "GET / HTTP/1.1", &len), "the start line is no header");
}

/* Source affinity goes through the context: the same address from another port, same server. */
Test(lb_algo, source_keys_on_the_client_address_from_the_ctx)
{
    const uint32_t w[4] = {1, 1, 1, 1};
    struct test_pool p;
    pool_init(&p, w, 4);
    void *st = build_or_fail(&lb_source, p.all, p.n);
    uint64_t rng = 1;
    for (uint32_t i = 1; i < 200; i++) {
        struct sockaddr_storage ss = {0};
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(0xc0a80000u + i);
        a->sin_port = htons(1000);
        struct lb_pick_ctx ctx = {.peer = (const struct sockaddr *)&ss, .rng = &rng};
        int first = lb_source.pick(st, &ctx);
        a->sin_port = htons((uint16_t)(2000 + i));
        cr_assert_eq(lb_source.pick(st, &ctx), first);
        cr_assert_eq(first, lb_ring_pick(st, lb_hash_bytes(&a->sin_addr, 4)));
    }
    lb_source.free(st);
}

Test(lb_algo, hash_bytes_is_deterministic_and_spreads)
{
    const unsigned char v4a[4] = {10, 0, 0, 1};
    const unsigned char v4b[4] = {10, 0, 0, 2};
    unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8};
    uint32_t buckets[16] = {0};

    cr_assert_eq(lb_hash_bytes(v4a, 4), lb_hash_bytes(v4a, 4));
    cr_assert_neq(lb_hash_bytes(v4a, 4), lb_hash_bytes(v4b, 4));
    cr_assert_neq(lb_hash_bytes(v6, 16), lb_hash_bytes(v6, 15));
    /* Odd lengths read only their own bytes (tail handling); valgrind checks the reads. */
    for (uint32_t len = 0; len <= 16; len++) {
        (void)lb_hash_bytes(v6, len);
    }
    /* Sequential addresses spread evenly over the top 4 bits (the ring uses the whole word). */
    for (uint32_t i = 0; i < 16000; i++) {
        unsigned char a[4] = {192, 168, (unsigned char)(i >> 8), (unsigned char)i};

        buckets[lb_hash_bytes(a, 4) >> 28]++;
    }
    for (uint32_t b = 0; b < 16; b++) {
        cr_assert(buckets[b] > 800 && buckets[b] < 1200, "bucket %u has %u", b, buckets[b]);
    }
}

Test(lb_algo, rng_next_is_xorshift64star)
{
    uint64_t state = 1;
    uint64_t first = lb_rng_next(&state);

    /* One step from 1 by hand: x ^= x >> 12 (1), x ^= x << 25, x ^= x >> 27. */
    cr_assert_eq(state, (1ull | (1ull << 25)) ^ ((1ull | (1ull << 25)) >> 27));
    cr_assert_eq(first, state * 0x2545f4914f6cdd1dull);
    for (int i = 0; i < 1000; i++) {
        uint64_t prev = state;

        (void)lb_rng_next(&state);
        cr_assert_neq(state, 0);
        cr_assert_neq(state, prev);
    }
}

Test(lb_algo, all_full_returns_minus_one_for_every_algorithm)
{
    const uint32_t w[3] = {5, 1, 1};
    struct test_pool p;
    uint64_t rng = 0x1234;
    struct lb_pick_ctx ctx = {.client_hash = 0, .rng = &rng};

    pool_init(&p, w, 3);
    for (uint32_t i = 0; i < 3; i++) {
        pool_fill(&p, i);
    }
    for (size_t a = 0; a < sizeof(all_algos) / sizeof(all_algos[0]); a++) {
        void *st = build_or_fail(all_algos[a], p.all, 3);

        for (uint32_t k = 0; k < 100; k++) {
            ctx.client_hash = k * 0x9e3779b9u;
            cr_assert_eq(all_algos[a]->pick(st, &ctx), -1, "%s", all_algos[a]->name);
        }
        all_algos[a]->free(st);
    }
}

Test(lb_algo, single_server_works_for_every_algorithm)
{
    const uint32_t w[1] = {3};
    struct test_pool p;
    uint64_t rng = 42;
    struct lb_pick_ctx ctx = {.client_hash = 0, .rng = &rng};

    pool_init(&p, w, 1);
    for (size_t a = 0; a < sizeof(all_algos) / sizeof(all_algos[0]); a++) {
        void *st = build_or_fail(all_algos[a], p.all, 1);

        atomic_store(&p.srv[0].active, 0);
        p.srv[0].maxconn = 0;
        for (uint32_t k = 0; k < 50; k++) {
            ctx.client_hash = k * 0x85ebca6bu;
            cr_assert_eq(all_algos[a]->pick(st, &ctx), 0, "%s", all_algos[a]->name);
        }
        pool_fill(&p, 0);
        cr_assert_eq(all_algos[a]->pick(st, &ctx), -1, "%s", all_algos[a]->name);
        all_algos[a]->free(st);
    }
}

Test(lb_algo, free_accepts_null)
{
    for (size_t a = 0; a < sizeof(all_algos) / sizeof(all_algos[0]); a++) {
        all_algos[a]->free(NULL);
    }
}

Test(lb_algo, state_keeps_its_own_copy_of_the_array)
{
    const uint32_t w[3] = {1, 1, 1};
    struct test_pool p;
    struct lb_server *arr[3];
    void *st;

    pool_init(&p, w, 3);
    memcpy(arr, p.all, sizeof(arr));
    st = build_or_fail(&lb_roundrobin, arr, 3);
    memset(arr, 0, sizeof(arr)); /* the caller may reuse its array */
    cr_assert_eq(pick_hash(&lb_roundrobin, st, 0), 0);
    cr_assert_eq(pick_hash(&lb_roundrobin, st, 0), 1);
    cr_assert_eq(pick_hash(&lb_roundrobin, st, 0), 2);
    lb_roundrobin.free(st);
}

/* ---------------------------------------------------------------- roundrobin */

Test(lb_roundrobin, smooth_sequence_5_1_1)
{
    const uint32_t w[3] = {5, 1, 1};
    const char *expected = "aabacaaaabacaa"; /* twice around */
    struct test_pool p;
    void *st;

    pool_init(&p, w, 3);
    st = build_or_fail(&lb_roundrobin, p.all, 3);
    for (size_t i = 0; i < strlen(expected); i++) {
        char got = picked_name(p.all, pick_hash(&lb_roundrobin, st, 0));

        cr_assert_eq(got, expected[i], "pick %zu: got %c, want %c", i, got, expected[i]);
    }
    lb_roundrobin.free(st);
}

Test(lb_roundrobin, common_divisor_keeps_the_order)
{
    const uint32_t w[3] = {10, 2, 2};
    const char *expected = "aabacaaaabacaa";
    struct test_pool p;
    void *st;

    pool_init(&p, w, 3);
    st = build_or_fail(&lb_roundrobin, p.all, 3);
    for (size_t i = 0; i < strlen(expected); i++) {
        cr_assert_eq(picked_name(p.all, pick_hash(&lb_roundrobin, st, 0)), expected[i]);
    }
    lb_roundrobin.free(st);
}

/* n picks over the pool; counts[i] = how many went to server i. */
static void rr_count(struct test_pool *p, void *st, uint32_t picks, uint32_t *counts)
{
    memset(counts, 0, p->n * sizeof(*counts));
    for (uint32_t i = 0; i < picks; i++) {
        int idx = pick_hash(&lb_roundrobin, st, 0);

        cr_assert(idx >= 0 && (uint32_t)idx < p->n);
        counts[idx]++;
    }
}

Test(lb_roundrobin, equal_weights_exact_thirds)
{
    const uint32_t w[3] = {1, 1, 1};
    struct test_pool p;
    uint32_t counts[3];
    void *st;

    pool_init(&p, w, 3);
    st = build_or_fail(&lb_roundrobin, p.all, 3);
    rr_count(&p, st, 300, counts);
    cr_assert_eq(counts[0], 100);
    cr_assert_eq(counts[1], 100);
    cr_assert_eq(counts[2], 100);
    lb_roundrobin.free(st);
}

Test(lb_roundrobin, weights_3_2_1_exact)
{
    const uint32_t w[3] = {3, 2, 1};
    struct test_pool p;
    uint32_t counts[3];
    void *st;

    pool_init(&p, w, 3);
    st = build_or_fail(&lb_roundrobin, p.all, 3);
    rr_count(&p, st, 6000, counts);
    cr_assert_eq(counts[0], 3000);
    cr_assert_eq(counts[1], 2000);
    cr_assert_eq(counts[2], 1000);
    lb_roundrobin.free(st);
}

struct rr_thread_arg {
    void *st;
    uint32_t picks;
    _Atomic uint32_t *counts;
};

static void *rr_thread_main(void *varg)
{
    struct rr_thread_arg *arg = varg;

    for (uint32_t i = 0; i < arg->picks; i++) {
        int idx = pick_hash(&lb_roundrobin, arg->st, 0);

        if (idx >= 0) {
            atomic_fetch_add(&arg->counts[idx], 1);
        }
    }
    return NULL;
}

Test(lb_roundrobin, concurrent_pickers_take_unique_slots)
{
    const uint32_t w[3] = {1, 1, 1};
    struct test_pool p;
    _Atomic uint32_t counts[3];
    pthread_t threads[4];
    struct rr_thread_arg arg;

    pool_init(&p, w, 3);
    for (int i = 0; i < 3; i++) {
        atomic_init(&counts[i], 0);
    }
    arg.st = build_or_fail(&lb_roundrobin, p.all, 3);
    arg.picks = 750;
    arg.counts = counts;
    for (int t = 0; t < 4; t++) {
        cr_assert_eq(pthread_create(&threads[t], NULL, rr_thread_main, &arg), 0);
    }
    for (int t = 0; t < 4; t++) {
        cr_assert_eq(pthread_join(threads[t], NULL), 0);
    }
    cr_assert_eq(atomic_load(&counts[0]), 1000);
    cr_assert_eq(atomic_load(&counts[1]), 1000);
    cr_assert_eq(atomic_load(&counts[2]), 1000);
    lb_roundrobin.free(arg.st);
}

Test(lb_roundrobin, skips_server_without_room)
{
    const uint32_t w[3] = {1, 1, 1};
    const char *expected = "accacc"; /* b's turn goes to the next slot, c */
    struct test_pool p;
    uint32_t counts[3];
    void *st;

    pool_init(&p, w, 3);
    pool_fill(&p, 1);
    st = build_or_fail(&lb_roundrobin, p.all, 3);
    for (size_t i = 0; i < strlen(expected); i++) {
        cr_assert_eq(picked_name(p.all, pick_hash(&lb_roundrobin, st, 0)), expected[i]);
    }
    rr_count(&p, st, 300, counts);
    cr_assert_eq(counts[1], 0);
    cr_assert_eq(counts[0] + counts[2], 300);
    /* Room again: b is back in its slots without a rebuild. */
    atomic_store(&p.srv[1].active, 2);
    rr_count(&p, st, 300, counts);
    cr_assert_eq(counts[1], 100);
    lb_roundrobin.free(st);
}

Test(lb_roundrobin, only_the_light_server_has_room)
{
    const uint32_t w[3] = {200, 1, 1};
    struct test_pool p;
    void *st;

    pool_init(&p, w, 3);
    pool_fill(&p, 0);
    pool_fill(&p, 1);
    st = build_or_fail(&lb_roundrobin, p.all, 3);
    for (int i = 0; i < 500; i++) {
        cr_assert_eq(pick_hash(&lb_roundrobin, st, 0), 2);
    }
    pool_fill(&p, 2);
    cr_assert_eq(pick_hash(&lb_roundrobin, st, 0), -1);
    lb_roundrobin.free(st);
}

/* ---------------------------------------------------------------- leastconn */

Test(lb_leastconn, picks_least_loaded)
{
    const uint32_t w[3] = {1, 1, 1};
    struct test_pool p;
    void *st;

    pool_init(&p, w, 3);
    atomic_store(&p.srv[0].active, 5);
    atomic_store(&p.srv[1].active, 2);
    atomic_store(&p.srv[2].active, 7);
    st = build_or_fail(&lb_leastconn, p.all, 3);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(pick_hash(&lb_leastconn, st, 0), 1);
    }
    atomic_store(&p.srv[2].active, 1);
    cr_assert_eq(pick_hash(&lb_leastconn, st, 0), 2);
    lb_leastconn.free(st);
}

Test(lb_leastconn, respects_weights)
{
    const uint32_t w[2] = {2, 1};
    struct test_pool p;
    void *st;
    int first;
    int second;

    pool_init(&p, w, 2);
    st = build_or_fail(&lb_leastconn, p.all, 2);
    /* 2 active on weight 2 is as loaded as 1 active on weight 1: a tie, taken in turn. */
    atomic_store(&p.srv[0].active, 2);
    atomic_store(&p.srv[1].active, 1);
    first = pick_hash(&lb_leastconn, st, 0);
    second = pick_hash(&lb_leastconn, st, 0);
    cr_assert(first != second && first >= 0 && second >= 0, "%d %d", first, second);
    /* 3 on weight 2 (1.5) is heavier than 1 on weight 1. */
    atomic_store(&p.srv[0].active, 3);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pick_hash(&lb_leastconn, st, 0), 1);
    }
    /* 1 on weight 2 (0.5) is lighter. */
    atomic_store(&p.srv[0].active, 1);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pick_hash(&lb_leastconn, st, 0), 0);
    }
    lb_leastconn.free(st);
}

Test(lb_leastconn, rotates_among_ties)
{
    const uint32_t w[3] = {1, 1, 1};
    const char *expected = "abcabc";
    struct test_pool p;
    void *st;

    pool_init(&p, w, 3);
    st = build_or_fail(&lb_leastconn, p.all, 3);
    for (size_t i = 0; i < strlen(expected); i++) {
        cr_assert_eq(picked_name(p.all, pick_hash(&lb_leastconn, st, 0)), expected[i]);
    }
    lb_leastconn.free(st);
}

Test(lb_leastconn, tracks_active_as_the_caller_updates_it)
{
    const uint32_t w[3] = {1, 1, 1};
    struct test_pool p;
    void *st;

    pool_init(&p, w, 3);
    st = build_or_fail(&lb_leastconn, p.all, 3);
    /* The caller increments active after each pick: 30 picks spread 10/10/10. */
    for (int i = 0; i < 30; i++) {
        int idx = pick_hash(&lb_leastconn, st, 0);

        cr_assert(idx >= 0);
        atomic_fetch_add(&p.srv[idx].active, 1);
    }
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(atomic_load(&p.srv[i].active), 10);
    }
    lb_leastconn.free(st);
}

Test(lb_leastconn, skips_server_without_room)
{
    const uint32_t w[3] = {1, 1, 1};
    struct test_pool p;
    void *st;

    pool_init(&p, w, 3);
    /* a is the least loaded but full (maxconn 1, active 1 is fewer than b and c). */
    p.srv[0].maxconn = 1;
    atomic_store(&p.srv[0].active, 1);
    atomic_store(&p.srv[1].active, 4);
    atomic_store(&p.srv[2].active, 3);
    st = build_or_fail(&lb_leastconn, p.all, 3);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(pick_hash(&lb_leastconn, st, 0), 2);
    }
    lb_leastconn.free(st);
}

/* ---------------------------------------------------------------- source */

/* The server name each of n_clients clients (hash of 10.x.y.z address i) lands on. */
static void source_map(struct lb_server *const *servers, uint32_t n, uint32_t n_clients,
                       char *names)
{
    void *st = build_or_fail(&lb_source, servers, n);

    for (uint32_t i = 0; i < n_clients; i++) {
        unsigned char addr[4] = {10, (unsigned char)(i >> 16), (unsigned char)(i >> 8),
                                 (unsigned char)i};

        names[i] = picked_name(servers, pick_hash(&lb_source, st, lb_hash_bytes(addr, 4)));
    }
    lb_source.free(st);
}

#define SOURCE_CLIENTS 30000u

Test(lb_source, same_hash_same_server)
{
    const uint32_t w[3] = {1, 1, 1};
    struct test_pool p;
    void *st;
    void *again;

    pool_init(&p, w, 3);
    st = build_or_fail(&lb_source, p.all, 3);
    again = build_or_fail(&lb_source, p.all, 3);
    for (uint32_t i = 0; i < 1000; i++) {
        uint32_t h = i * 0x9e3779b9u;
        int idx = pick_hash(&lb_source, st, h);

        cr_assert(idx >= 0);
        cr_assert_eq(pick_hash(&lb_source, st, h), idx);
        cr_assert_eq(pick_hash(&lb_source, again, h), idx, "a rebuild must map alike");
    }
    /* The top of the circle wraps to its first point. */
    cr_assert(pick_hash(&lb_source, st, UINT32_MAX) >= 0);
    cr_assert(pick_hash(&lb_source, st, 0) >= 0);
    lb_source.free(st);
    lb_source.free(again);
}

Test(lb_source, balances_equal_servers)
{
    const uint32_t w[3] = {1, 1, 1};
    struct test_pool p;
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    uint32_t counts[3] = {0};
    void *st;

    pool_init(&p, w, 3);
    st = build_or_fail(&lb_source, p.all, 3);
    for (uint32_t i = 0; i < SOURCE_CLIENTS; i++) {
        int idx = pick_hash(&lb_source, st, (uint32_t)(lb_rng_next(&rng) >> 32));

        cr_assert(idx >= 0);
        counts[idx]++;
    }
    for (int i = 0; i < 3; i++) {
        cr_assert(counts[i] >= 8500 && counts[i] <= 11500, "server %d has %u of 30000", i,
                  counts[i]);
    }
    lb_source.free(st);
}

Test(lb_source, removing_a_server_moves_only_its_clients)
{
    const uint32_t w[3] = {1, 1, 1};
    struct test_pool p;
    static char before[SOURCE_CLIENTS];
    static char after[SOURCE_CLIENTS];
    struct lb_server *without_b[2];
    uint32_t moved_to_a = 0;
    uint32_t moved_to_c = 0;

    pool_init(&p, w, 3);
    source_map(p.all, 3, SOURCE_CLIENTS, before);
    without_b[0] = &p.srv[0];
    without_b[1] = &p.srv[2]; /* c is now at index 1: its points must not change */
    source_map(without_b, 2, SOURCE_CLIENTS, after);
    for (uint32_t i = 0; i < SOURCE_CLIENTS; i++) {
        if (before[i] != 'b') {
            cr_assert_eq(after[i], before[i], "client %u moved from %c to %c", i, before[i],
                         after[i]);
        } else if (after[i] == 'a') {
            moved_to_a++;
        } else {
            cr_assert_eq(after[i], 'c');
            moved_to_c++;
        }
    }
    /* b's clients are shared out, not dumped on one neighbour. */
    cr_assert(moved_to_a > 0 && moved_to_c > 0, "a %u, c %u", moved_to_a, moved_to_c);
}

Test(lb_source, adding_a_server_moves_about_a_quarter)
{
    const uint32_t w[4] = {1, 1, 1, 1};
    struct test_pool p;
    static char before[SOURCE_CLIENTS];
    static char after[SOURCE_CLIENTS];
    uint32_t moved = 0;

    pool_init(&p, w, 4);
    source_map(p.all, 3, SOURCE_CLIENTS, before);
    source_map(p.all, 4, SOURCE_CLIENTS, after);
    for (uint32_t i = 0; i < SOURCE_CLIENTS; i++) {
        if (after[i] != before[i]) {
            cr_assert_eq(after[i], 'd', "client %u moved from %c to %c", i, before[i], after[i]);
            moved++;
        }
    }
    cr_assert(moved >= SOURCE_CLIENTS * 15 / 100 && moved <= SOURCE_CLIENTS * 35 / 100,
              "%u of %u moved", moved, SOURCE_CLIENTS);
}

Test(lb_source, respects_weights)
{
    const uint32_t w[3] = {2, 1, 1};
    struct test_pool p;
    static char names[SOURCE_CLIENTS];
    uint32_t on_a = 0;

    pool_init(&p, w, 3);
    source_map(p.all, 3, SOURCE_CLIENTS, names);
    for (uint32_t i = 0; i < SOURCE_CLIENTS; i++) {
        on_a += names[i] == 'a' ? 1u : 0u;
    }
    /* Fair share is one half. */
    cr_assert(on_a >= SOURCE_CLIENTS * 40 / 100 && on_a <= SOURCE_CLIENTS * 60 / 100,
              "a has %u of %u", on_a, SOURCE_CLIENTS);
}

Test(lb_source, full_server_is_not_replaced)
{
    const uint32_t w[3] = {1, 1, 1};
    struct test_pool p;
    static char before[SOURCE_CLIENTS];
    static char after[SOURCE_CLIENTS];

    pool_init(&p, w, 3);
    source_map(p.all, 3, SOURCE_CLIENTS, before);
    pool_fill(&p, 1);
    source_map(p.all, 3, SOURCE_CLIENTS, after);
    for (uint32_t i = 0; i < SOURCE_CLIENTS; i++) {
        cr_assert_eq(after[i], before[i] == 'b' ? '-' : before[i]);
    }
}

Test(lb_source, identity_without_configuration_is_the_id)
{
    const uint32_t w[3] = {1, 1, 1};
    struct test_pool p;
    struct lb_server *without_b[2];
    void *all3;
    void *two;

    pool_init(&p, w, 3);
    for (uint32_t i = 0; i < 3; i++) {
        p.srv[i].conf = NULL;
    }
    without_b[0] = &p.srv[0];
    without_b[1] = &p.srv[2];
    all3 = build_or_fail(&lb_source, p.all, 3);
    two = build_or_fail(&lb_source, without_b, 2);
    for (uint32_t i = 0; i < 5000; i++) {
        uint32_t h = i * 0x9e3779b9u;
        int before = pick_hash(&lb_source, all3, h);
        int after = pick_hash(&lb_source, two, h);

        if (before == 0) {
            cr_assert_eq(after, 0);
        } else if (before == 2) {
            cr_assert_eq(after, 1);
        }
    }
    lb_source.free(all3);
    lb_source.free(two);
}

/* ---------------------------------------------------------------- random */

/* picks with a fixed seed; counts[i] = how many went to server i, counts[n] = how many -1. */
static void random_count(struct test_pool *p, uint32_t picks, uint32_t *counts)
{
    uint64_t rng = 0x2545f4914f6cdd1dull;
    struct lb_pick_ctx ctx = {.client_hash = 0, .rng = &rng};
    void *st = build_or_fail(&lb_random, p->all, p->n);

    memset(counts, 0, (p->n + 1) * sizeof(*counts));
    for (uint32_t i = 0; i < picks; i++) {
        int idx = lb_random.pick(st, &ctx);

        counts[idx == -1 ? p->n : (uint32_t)idx]++;
    }
    lb_random.free(st);
}

Test(lb_random, spreads_over_idle_servers)
{
    const uint32_t w[4] = {1, 1, 1, 1};
    struct test_pool p;
    uint32_t counts[5];

    pool_init(&p, w, 4);
    random_count(&p, 40000, counts);
    for (int i = 0; i < 4; i++) {
        cr_assert(counts[i] >= 9000 && counts[i] <= 11000, "server %d has %u", i, counts[i]);
    }
    cr_assert_eq(counts[4], 0);
}

Test(lb_random, avoids_the_loaded_server)
{
    const uint32_t w[3] = {1, 1, 1};
    struct test_pool p;
    uint32_t counts[4];

    pool_init(&p, w, 3);
    atomic_store(&p.srv[0].active, 100);
    random_count(&p, 10000, counts);
    cr_assert(counts[0] < 100, "loaded server chosen %u times of 10000", counts[0]);
    cr_assert(counts[1] > 4000 && counts[2] > 4000, "b %u, c %u", counts[1], counts[2]);
}

Test(lb_random, respects_weights)
{
    const uint32_t w[2] = {4, 1};
    struct test_pool p;
    uint32_t counts[3];

    pool_init(&p, w, 2);
    /* 3 on weight 4 (0.75) is lighter than 1 on weight 1. */
    atomic_store(&p.srv[0].active, 3);
    atomic_store(&p.srv[1].active, 1);
    random_count(&p, 1000, counts);
    cr_assert_eq(counts[0], 1000);
}

Test(lb_random, full_choices_fall_back_to_a_server_with_room)
{
    const uint32_t w[4] = {1, 1, 1, 1};
    struct test_pool p;
    uint32_t counts[5];

    pool_init(&p, w, 4);
    pool_fill(&p, 0);
    pool_fill(&p, 1);
    pool_fill(&p, 3);
    random_count(&p, 2000, counts);
    cr_assert_eq(counts[2], 2000);
    pool_fill(&p, 2);
    random_count(&p, 100, counts);
    cr_assert_eq(counts[4], 100);
}
