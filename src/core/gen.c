/* SPDX-License-Identifier: MIT */
/* Configuration generations: the generic part of a reload (numbering, holds, retiring). The
 * node swaps generations; the roles hold the one they run on and attach what they built
 * from it. What a role builds is the role's business (lb/lb_gen.c for the load balancer). */
#include "core/gen.h"

#include <errno.h>
#include <stdlib.h>

#include "core/conf.h"
#include "core/log.h"

static _Atomic uint64_t next_gen_id = 1;

struct gen *gen_new(struct conf *conf)
{
    struct gen *gen = calloc(1, sizeof(*gen));
    if (gen == NULL) {
        conf_free(conf);
        return NULL;
    }
    gen->conf = conf;
    gen->id = atomic_fetch_add(&next_gen_id, 1);
    atomic_store(&gen->refs, 0);
    return gen;
}

int gen_attach(struct gen *gen, void *part, gen_part_free_fn free_fn)
{
    if (gen->n_parts == GEN_MAX_PARTS) {
        return -ENOSPC;
    }
    gen->parts[gen->n_parts].part = part;
    gen->parts[gen->n_parts].free = free_fn;
    gen->n_parts++;
    return 0;
}

void gen_free(struct gen *gen)
{
    if (gen == NULL) {
        return;
    }
    while (gen->n_parts > 0) {
        gen->n_parts--;
        gen->parts[gen->n_parts].free(gen->parts[gen->n_parts].part);
    }
    conf_free(gen->conf);
    free(gen);
}

void gen_retire(struct gen_retired *list, struct gen *gen)
{
    gen->retired_next = list->head;
    list->head = gen;
    gen_unref(gen);
}

unsigned gen_collect(struct gen_retired *list)
{
    unsigned held = 0;
    struct gen **pp = &list->head;
    while (*pp != NULL) {
        struct gen *g = *pp;
        if (atomic_load_explicit(&g->refs, memory_order_acquire) <= 0) {
            *pp = g->retired_next;
            log_info("main", "generation %lu retired", (unsigned long)g->id);
            gen_free(g);
        } else {
            held++;
            pp = &g->retired_next;
        }
    }
    return held;
}
