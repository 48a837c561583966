/* SPDX-License-Identifier: MIT */
/* The configuration generation: one loaded configuration, shared by the node and its roles
 * for as long as anyone holds it. Types only; the functions are in core/gen.h. */
#ifndef KEEL_CORE_GEN_T_H
#define KEEL_CORE_GEN_T_H

#include <stdatomic.h>
#include <stdint.h>

struct conf;

/* Something a role built from the generation's configuration (the lb role's frontends,
 * backends and listeners): freed with the generation, since it points into its conf. */
typedef void (*gen_part_free_fn)(void *part);

#define GEN_MAX_PARTS 4

struct gen {
    uint64_t id;       /* 1, 2, ...: in logs, /status and keel_config_generation */
    struct conf *conf; /* owned; immutable */
    /* Holders: the node while the generation is current, each role that still runs on it,
     * each worker and each connection that started under it. Atomic: workers let go. */
    _Atomic int refs;
    struct gen *retired_next; /* the node's list of retired generations (gen_retire) */
    struct {
        void *part;
        gen_part_free_fn free;
    } parts[GEN_MAX_PARTS];
    uint32_t n_parts;
};

/* The generations a node has replaced but someone still holds; control thread only. */
struct gen_retired {
    struct gen *head;
};

#endif
