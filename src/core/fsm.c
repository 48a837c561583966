/* SPDX-License-Identifier: MIT */
/* What every state machine does with a transition its table forbids (core/fsm.h): log,
 * count, refuse; abort in strict mode. The state machines themselves live with their
 * objects; this file holds no state but the counters. */
#include "core/fsm.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

static const char *const fsm_machine_names[FSM_MACHINE_COUNT] = {
    "http", "tcp", "app", "pg", "vrrp", "db", "session", "cert", "acme"};

/* Process-wide, bumped from any thread (a bug path: a locked add is fine here). */
static _Atomic uint64_t fsm_illegal_counts[FSM_MACHINE_COUNT];

const char *fsm_machine_name(enum fsm_machine machine)
{
    return (unsigned)machine < FSM_MACHINE_COUNT ? fsm_machine_names[machine] : "?";
}

bool fsm_is_strict(void)
{
    const char *v = getenv("KEEL_FSM_STRICT");
    if (v != NULL && v[0] != '\0') {
        return strcmp(v, "0") != 0;
    }
#if defined(__SANITIZE_ADDRESS__)
    return true; /* the sanitizer build is the debug build */
#else
    return false;
#endif
}

void fsm_illegal(enum fsm_machine machine, const char *object, const char *from, const char *to,
                 const char *reason)
{
    if ((unsigned)machine < FSM_MACHINE_COUNT) {
        atomic_fetch_add_explicit(&fsm_illegal_counts[machine], 1, memory_order_relaxed);
    }
    bool is_strict = fsm_is_strict();
    log_error(fsm_machine_name(machine), "%s%sillegal transition %s -> %s (%s), %s",
              object != NULL ? object : "", object != NULL ? ": " : "", from, to,
              reason != NULL ? reason : "no reason given",
              is_strict ? "aborting (KEEL_FSM_STRICT)" : "refused: the state stays");
    if (is_strict) {
        abort();
    }
}

uint64_t fsm_illegal_count(enum fsm_machine machine)
{
    return (unsigned)machine < FSM_MACHINE_COUNT
               ? atomic_load_explicit(&fsm_illegal_counts[machine], memory_order_relaxed)
               : 0;
}
