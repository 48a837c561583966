/* SPDX-License-Identifier: MIT */
/* Quiescent-state-based reclamation (see qsbr.h). Reader slots hold the global epoch they
 * last observed, or QSBR_OFFLINE. The writer bumps the epoch at each retire; an object
 * retired at epoch E is freed when every slot is offline or has observed an epoch >= E. */
#include "core/qsbr.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/log.h"

#define QSBR_OFFLINE UINT64_MAX
#define QSBR_UNUSED (UINT64_MAX - 1)

struct qsbr_slot {
    _Atomic uint64_t epoch;
    char pad[64 - sizeof(uint64_t)]; /* one cache line per reader */
};

struct qsbr_item {
    struct qsbr_item *next;
    void *ptr;
    qsbr_free_fn fn;
    uint64_t epoch;
};

static struct qsbr_slot slots[QSBR_MAX_THREADS];
static _Atomic uint64_t global_epoch = 1;
static _Atomic bool slots_ready;
static struct qsbr_item *retired; /* writer thread only */

static void init_slots(void)
{
    bool expected = false;
    if (atomic_compare_exchange_strong(&slots_ready, &expected, true)) {
        for (int i = 0; i < QSBR_MAX_THREADS; i++) {
            atomic_store(&slots[i].epoch, QSBR_UNUSED);
        }
    }
}

int qsbr_register(void)
{
    init_slots();
    for (int i = 0; i < QSBR_MAX_THREADS; i++) {
        uint64_t expected = QSBR_UNUSED;
        if (atomic_compare_exchange_strong(&slots[i].epoch, &expected,
                                           atomic_load(&global_epoch))) {
            return i;
        }
    }
    return -1;
}

void qsbr_unregister(int slot)
{
    atomic_store(&slots[slot].epoch, QSBR_UNUSED);
}

void qsbr_quiescent(int slot)
{
    atomic_store(&slots[slot].epoch, atomic_load(&global_epoch));
}

void qsbr_offline(int slot)
{
    atomic_store(&slots[slot].epoch, QSBR_OFFLINE);
}

void qsbr_online(int slot)
{
    atomic_store(&slots[slot].epoch, atomic_load(&global_epoch));
}

void qsbr_retire(void *ptr, qsbr_free_fn fn)
{
    if (ptr == NULL) {
        return;
    }
    init_slots();
    struct qsbr_item *it = malloc(sizeof(*it));
    if (it == NULL) {
        /* Leaking one snapshot is better than freeing it under a reader. */
        log_warn("qsbr", "out of memory retiring an object; leaking it");
        return;
    }
    it->ptr = ptr;
    it->fn = fn;
    it->epoch = atomic_fetch_add(&global_epoch, 1) + 1;
    it->next = retired;
    retired = it;
}

static uint64_t min_observed(void)
{
    uint64_t min = QSBR_OFFLINE;
    for (int i = 0; i < QSBR_MAX_THREADS; i++) {
        uint64_t e = atomic_load(&slots[i].epoch);
        if (e < min && e != QSBR_UNUSED) {
            min = e;
        }
    }
    return min;
}

unsigned qsbr_reclaim(void)
{
    init_slots();
    uint64_t min = min_observed();
    unsigned left = 0;
    struct qsbr_item **pp = &retired;
    while (*pp != NULL) {
        struct qsbr_item *it = *pp;
        if (min >= it->epoch) {
            *pp = it->next;
            it->fn(it->ptr);
            free(it);
        } else {
            left++;
            pp = &it->next;
        }
    }
    return left;
}

void qsbr_drain_all(void)
{
    while (retired != NULL) {
        struct qsbr_item *it = retired;
        retired = it->next;
        it->fn(it->ptr);
        free(it);
    }
}
