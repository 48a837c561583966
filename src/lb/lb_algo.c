/* SPDX-License-Identifier: MIT */
/* What the balancing algorithms share: their table (what "balance" accepts), what a pick may
 * ask about the request, the hash used for keys and the per-thread random generator. The
 * algorithms themselves live one per file (lb_roundrobin.c, lb_leastconn.c, lb_source.c,
 * lb_random.c). */
#include "lb/lb_algo.h"

#include <string.h>

#include "core/sock.h"

/* Every algorithm, first the default. A new one is its file plus its name here. */
#define LB_ALGOS(X) X(lb_roundrobin) X(lb_leastconn) X(lb_source) X(lb_random)

#define LB_ALGO_DECLARE(algo) extern const struct lb_algo algo;
LB_ALGOS(LB_ALGO_DECLARE)
#define LB_ALGO_ENTRY(algo) &algo,
static const struct lb_algo *const algos[] = {LB_ALGOS(LB_ALGO_ENTRY)};
#define N_ALGOS (sizeof(algos) / sizeof(algos[0]))

const struct lb_algo *lb_algo_find(const char *name)
{
    for (size_t i = 0; i < N_ALGOS; i++) {
        if (strcmp(algos[i]->name, name) == 0) {
            return algos[i];
        }
    }
    return NULL;
}

const struct lb_algo *lb_algo_at(size_t i)
{
    return i < N_ALGOS ? algos[i] : NULL;
}

const struct lb_algo *lb_algo_of(const struct conf_backend *be)
{
    return be->balance != NULL ? be->balance : algos[0];
}

uint32_t lb_pick_client_hash(const struct lb_pick_ctx *ctx)
{
    if (ctx->peer == NULL) {
        return ctx->client_hash;
    }
    unsigned alen;
    const void *ab = sock_addr_bytes(ctx->peer, &alen);
    return lb_hash_bytes(ab, alen);
}

const char *lb_pick_header(const struct lb_pick_ctx *ctx, const char *name, size_t *value_len)
{
    if (ctx->header == NULL) {
        return NULL;
    }
    return ctx->header(ctx->req, name, strlen(name), value_len);
}

/* MurmurHash3 x86_32 constants (Austin Appleby, public domain). */
#define MURMUR_C1 0xcc9e2d51u
#define MURMUR_C2 0x1b873593u
/* Fixed so that the client -> server mapping survives restarts and is the same on every node
 * of a cluster. */
#define LB_HASH_SEED 0x6b65656cu /* "keel" */

static uint32_t rotl32(uint32_t x, unsigned int r)
{
    return (x << r) | (x >> (32u - r));
}

static uint32_t murmur_mix_block(uint32_t k)
{
    k *= MURMUR_C1;
    k = rotl32(k, 15);
    k *= MURMUR_C2;
    return k;
}

/* The murmur3 finalizer: every input bit affects every output bit (avalanche). */
static uint32_t murmur_fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

uint32_t lb_hash_bytes(const void *bytes, uint32_t len)
{
    const unsigned char *p = bytes;
    uint32_t h = LB_HASH_SEED;
    uint32_t nblocks = len / 4u;

    for (uint32_t i = 0; i < nblocks; i++) {
        /* Read little-endian byte by byte: no alignment needed, and every node of a cluster
         * maps a client to the same point whatever its byte order. */
        const unsigned char *b = p + 4u * i;
        uint32_t k =
            (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;

        h ^= murmur_mix_block(k);
        h = rotl32(h, 13);
        h = h * 5u + 0xe6546b64u;
    }

    const unsigned char *tail = p + 4u * nblocks;
    uint32_t k = 0;

    switch (len & 3u) {
    case 3:
        k ^= (uint32_t)tail[2] << 16;
        /* fall through */
    case 2:
        k ^= (uint32_t)tail[1] << 8;
        /* fall through */
    case 1:
        k ^= tail[0];
        h ^= murmur_mix_block(k);
        break;
    default:
        break;
    }

    h ^= len;
    return murmur_fmix32(h);
}

uint64_t lb_rng_next(uint64_t *state)
{
    /* xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift generators");
     * a zero state would stay zero forever, hence the caller's non-zero contract. */
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}
