/* SPDX-License-Identifier: MIT */
/* Configuration generations (core/gen.c): numbering, reference counting, retiring and freeing
 * one loaded configuration with what the roles built from it. The pipeline that produces a
 * configuration (parse, node view, validate) is core/conf.c; which roles build what from it is
 * core/role.c. Model: nginx's cycle; docs/internals/roles.md. */
#ifndef KEEL_CORE_GEN_H
#define KEEL_CORE_GEN_H

#include <stdbool.h>

#include "core/gen-t.h"

/* A new generation around conf (takes ownership: conf_free'd with the generation, or at once
 * when out of memory), with the next id and no holder. NULL on OOM. Control thread. */
struct gen *gen_new(struct conf *conf);

/* Attach part to gen: free(part) runs when gen is freed, before its conf is (parts point
 * into it), in reverse order of attachment. Returns 0, or -ENOSPC past GEN_MAX_PARTS (then
 * nothing is attached). Control thread, before the generation is published. */
int gen_attach(struct gen *gen, void *part, gen_part_free_fn free)
    __attribute__((warn_unused_result));

/* Take or drop a hold on gen. Any thread; dropping never frees (gen_collect does). */
static inline void gen_ref(struct gen *gen)
{
    atomic_fetch_add_explicit(&gen->refs, 1, memory_order_relaxed);
}
static inline void gen_unref(struct gen *gen)
{
    atomic_fetch_sub_explicit(&gen->refs, 1, memory_order_release);
}

/* The node replaced gen: drop the node's hold and keep gen on list until gen_collect finds
 * that nobody holds it anymore. Control thread. */
void gen_retire(struct gen_retired *list, struct gen *gen);

/* Free every generation of list that nobody holds (logged at info). Returns how many are
 * still held. Control thread. */
unsigned gen_collect(struct gen_retired *list);

/* Free gen, its parts and its conf now, whoever holds it (a generation that never ran, or
 * the last one at exit once every holder is gone). NULL allowed. */
void gen_free(struct gen *gen);

#endif
