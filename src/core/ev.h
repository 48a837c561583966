/* SPDX-License-Identifier: MIT */
/* The event loop: one per thread. epoll (level-triggered) for fd readiness, a 4-ary heap
 * of timers, an eventfd for wakeups from other threads, and a deferred queue run at the end
 * of every iteration (where closed objects are freed).
 *
 * Phases of one iteration (ev_run):
 *   1. update the cached clock;
 *   2. run expired timers;
 *   3. epoll_wait until the next timer (or forever), then dispatch ready fds;
 *   4. run deferred callbacks (in the order queued; ones queued meanwhile run too);
 *   5. run the iteration hook (e.g. flushing the access log buffer, QSBR quiescent state).
 */
#ifndef KEEL_CORE_EV_H
#define KEEL_CORE_EV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "core/err.h"

struct ev_loop;
struct ev_io;
struct ev_timer;
struct ev_defer;

typedef void (*ev_io_fn)(struct ev_loop *loop, struct ev_io *io, uint32_t events);
typedef void (*ev_timer_fn)(struct ev_loop *loop, struct ev_timer *timer);
typedef void (*ev_defer_fn)(struct ev_loop *loop, void *data);
typedef void (*ev_hook_fn)(struct ev_loop *loop, void *data);

/* Interest bits, aliases of epoll's. */
#define EV_READ EPOLLIN
#define EV_WRITE EPOLLOUT
/* Reported, never asked for: an error or hangup on the fd. It comes with EV_READ and EV_WRITE
 * as far as the watcher asks for them (their read or write returns the error). A watcher that
 * asks for nothing gets EV_ERROR alone, once: the loop then stops watching the fd until
 * ev_io_set asks for events again (epoll reports errors whatever the interest, so a
 * level-triggered error nobody reads would spin the loop). */
#define EV_ERROR (EPOLLERR | EPOLLHUP)

/* An fd watcher. Embed it; the loop does not own it. */
struct ev_io {
    int fd;
    uint32_t events; /* current interest */
    ev_io_fn on_event;
    void *data;
    const char *name; /* for slow-callback logs */
    bool is_active;
    bool is_parked; /* active, but out of epoll after an error while asking for nothing */
};

/* A one-shot timer. Embed it in the object it guards. */
struct ev_timer {
    uint64_t when_ms;     /* heap key: never later than deadline_ms */
    uint64_t deadline_ms; /* when it really fires; pushing it later costs no heap work */
    uint32_t heap_index;  /* 0 = not armed, else its position in the heap + 1 */
    ev_timer_fn on_timeout;
    void *data;
    const char *name;
};

/* Create a loop; NULL on failure (errno set). */
struct ev_loop *ev_loop_new(void);
/* Free a loop that is not running. Watchers are not touched. */
void ev_loop_free(struct ev_loop *loop);

/* Run until ev_loop_stop. Returns 0. */
int ev_run(struct ev_loop *loop);
/* Ask the loop to return after the current iteration. Same thread only. */
void ev_loop_stop(struct ev_loop *loop);

/* The loop's clock (CLOCK_MONOTONIC in ms), cached once per iteration. */
uint64_t ev_now_ms(const struct ev_loop *loop);
/* Refresh the cached clock. */
void ev_update_time(struct ev_loop *loop);

/* Watch fd for events (EV_READ|EV_WRITE, may be 0). Returns 0 or -errno. */
int ev_io_start(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t events, ev_io_fn on_event,
                void *data, const char *name) KEEL_MUST_CHECK;
/* Change interest; a no-op when unchanged. Returns 0 or -errno. */
int ev_io_set(struct ev_loop *loop, struct ev_io *io, uint32_t events) KEEL_MUST_CHECK;
/* Stop watching (does not close the fd). Safe on an inactive watcher. */
void ev_io_stop(struct ev_loop *loop, struct ev_io *io);

void ev_timer_init(struct ev_timer *t, ev_timer_fn on_timeout, void *data, const char *name);
/* (Re)arm t to fire after_ms from the loop's now. Never fails (the heap grows at boot
 * and on demand; on OOM the process aborts: the heap holds one slot per armed timer). */
void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t after_ms);
void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t);
static inline bool ev_timer_is_active(const struct ev_timer *t)
{
    return t->heap_index != 0;
}

/* A deferred call run at the end of this iteration. */
struct ev_defer {
    struct ev_defer *next;
    ev_defer_fn fn;
    void *data;
    bool is_queued;
};
void ev_defer(struct ev_loop *loop, struct ev_defer *d, ev_defer_fn fn, void *data);

/* free(ptr) at the end of this iteration, after every callback of the current batch ran:
 * for objects embedding watchers that a pending event may still reference. NULL allowed.
 * On OOM the pointer is leaked rather than freed early. */
void ev_free_later(struct ev_loop *loop, void *ptr);

/* fn(loop, data) at the same point, once: the final release of an object that embeds
 * watchers, without an ev_defer in every object (an idle connection is mostly its struct).
 * On OOM the object is leaked rather than released early. Pending releases are dropped
 * when the loop is freed, like deferred calls. */
void ev_release_later(struct ev_loop *loop, ev_defer_fn fn, void *data);

/* Wake-up from other threads: on_wakeup runs in the loop's thread after any number of
 * ev_loop_wake calls (coalesced). */
int ev_loop_set_wakeup(struct ev_loop *loop, ev_hook_fn on_wakeup, void *data) KEEL_MUST_CHECK;
/* Thread-safe, async-signal-safe. */
void ev_loop_wake(struct ev_loop *loop);

/* Called at the end of each iteration and just before blocking in epoll_wait. */
void ev_loop_set_hooks(struct ev_loop *loop, ev_hook_fn on_iteration, ev_hook_fn before_block,
                       ev_hook_fn after_block, void *data);

/* Number of armed timers and active watchers (for tests and drain decisions). */
uint32_t ev_loop_timer_count(const struct ev_loop *loop);

#endif
