/* SPDX-License-Identifier: MIT */
/* The event loop (see ev.h for the phases). Owns the epoll fd, the timer heap, the wakeup
 * eventfd and the deferred queue; it never owns the watchers or timers it runs. */
#include "core/ev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define EV_MAX_EVENTS 256
#define EV_SLOW_CALLBACK_MS 100

/* The timer heap is 4-ary and keeps each timer's key next to its pointer: sifting compares
 * keys in the array without touching the timers (one cache line holds a node's children),
 * and a 4-ary heap is half as deep as a binary one. Every request arms and stops a few
 * timers, so this is on the hot path. Position i's children are 4i+1..4i+4; the timer
 * stores i + 1 in heap_index (0 = not armed). */
#define HEAP_ARITY 4

struct heap_entry {
    uint64_t when_ms; /* == t->when_ms */
    struct ev_timer *t;
};

/* One release after this iteration's batch: fn(loop, data), or free(data) when fn is NULL. */
struct ev_later {
    ev_defer_fn fn;
    void *data;
};

struct ev_loop {
    int epfd;
    uint64_t now_ms;
    bool is_stopping;
    struct heap_entry *heap; /* 0-based 4-ary min-heap on when_ms */
    uint32_t heap_len;
    uint32_t heap_cap;
    struct ev_defer *defer_head;
    struct ev_defer *defer_tail;
    int wake_fd;
    struct ev_io wake_io;
    struct ev_later *later; /* ev_free_later, ev_release_later: run after the deferred calls */
    uint32_t n_later;
    uint32_t cap_later;
    ev_hook_fn on_wakeup;
    void *wakeup_data;
    ev_hook_fn on_iteration;
    ev_hook_fn before_block;
    ev_hook_fn after_block;
    void *hook_data;
};

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct ev_loop *ev_loop_new(void)
{
    struct ev_loop *loop = calloc(1, sizeof(*loop));
    if (loop == NULL) {
        return NULL;
    }
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd == -1) {
        int saved = errno;
        free(loop);
        errno = saved;
        return NULL;
    }
    loop->wake_fd = -1;
    loop->heap_cap = 64;
    loop->heap = calloc(loop->heap_cap, sizeof(*loop->heap));
    if (loop->heap == NULL) {
        close(loop->epfd);
        free(loop);
        errno = ENOMEM;
        return NULL;
    }
    loop->now_ms = monotonic_ms();
    return loop;
}

void ev_loop_free(struct ev_loop *loop)
{
    if (loop == NULL) {
        return;
    }
    if (loop->wake_fd != -1) {
        close(loop->wake_fd);
    }
    close(loop->epfd);
    /* Releases still pending are dropped like deferred calls; plain frees are done. */
    for (uint32_t i = 0; i < loop->n_later; i++) {
        if (loop->later[i].fn == NULL) {
            free(loop->later[i].data);
        }
    }
    free(loop->later);
    free(loop->heap);
    free(loop);
}

uint64_t ev_now_ms(const struct ev_loop *loop)
{
    return loop->now_ms;
}

void ev_update_time(struct ev_loop *loop)
{
    loop->now_ms = monotonic_ms();
}

void ev_loop_stop(struct ev_loop *loop)
{
    loop->is_stopping = true;
}

/* ---------------------------------------------------------------- fd watchers */

int ev_io_start(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t events, ev_io_fn on_event,
                void *data, const char *name)
{
    io->fd = fd;
    io->events = events;
    io->on_event = on_event;
    io->data = data;
    io->name = name;
    io->is_parked = false;
    struct epoll_event ee = {.events = events, .data.ptr = io};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ee) == -1) {
        return -errno;
    }
    io->is_active = true;
    return 0;
}

int ev_io_set(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    if (!io->is_active || io->events == events || (io->is_parked && events == 0)) {
        io->events = events;
        return 0;
    }
    struct epoll_event ee = {.events = events, .data.ptr = io};
    if (epoll_ctl(loop->epfd, io->is_parked ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, io->fd, &ee) == -1) {
        return -errno;
    }
    io->is_parked = false;
    io->events = events;
    return 0;
}

/* An error or hangup on a watcher that asks for nothing: take the fd out of epoll, which
 * would report it at every wait, until ev_io_set asks for events again. */
static void io_park(struct ev_loop *loop, struct ev_io *io)
{
    /* Failure means the fd is already gone from the set: parked all the same. */
    (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->is_parked = true;
}

void ev_io_stop(struct ev_loop *loop, struct ev_io *io)
{
    if (!io->is_active) {
        return;
    }
    if (!io->is_parked) {
        /* Failure means the fd is already gone from the set; nothing to undo. */
        (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    }
    io->is_active = false;
    io->is_parked = false;
}

/* ---------------------------------------------------------------- timers (binary heap) */

static inline void heap_place(struct ev_loop *loop, uint32_t i, struct heap_entry e)
{
    loop->heap[i] = e;
    e.t->heap_index = i + 1;
}

/* Move the entry at i up (towards the root) while its parent fires later. */
static void heap_up(struct ev_loop *loop, uint32_t i)
{
    struct heap_entry e = loop->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / HEAP_ARITY;
        if (loop->heap[parent].when_ms <= e.when_ms) {
            break;
        }
        heap_place(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_place(loop, i, e);
}

/* Move the entry at i down while a child fires earlier. */
static void heap_down(struct ev_loop *loop, uint32_t i)
{
    struct heap_entry e = loop->heap[i];
    uint32_t len = loop->heap_len;
    for (;;) {
        uint32_t first = HEAP_ARITY * i + 1;
        if (first >= len) {
            break;
        }
        uint32_t last = first + HEAP_ARITY < len ? first + HEAP_ARITY : len;
        uint32_t best = first;
        for (uint32_t k = first + 1; k < last; k++) {
            if (loop->heap[k].when_ms < loop->heap[best].when_ms) {
                best = k;
            }
        }
        if (loop->heap[best].when_ms >= e.when_ms) {
            break;
        }
        heap_place(loop, i, loop->heap[best]);
        i = best;
    }
    heap_place(loop, i, e);
}

void ev_timer_init(struct ev_timer *t, ev_timer_fn on_timeout, void *data, const char *name)
{
    t->when_ms = 0;
    t->deadline_ms = 0;
    t->heap_index = 0;
    t->on_timeout = on_timeout;
    t->data = data;
    t->name = name;
}

void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t after_ms)
{
    uint64_t when = loop->now_ms + after_ms;
    t->deadline_ms = when;
    if (t->heap_index != 0) {
        /* Re-arming later (an inactivity timeout pushed on every read) only records the
         * new deadline; run_timers re-inserts the timer when its old key comes up. */
        if (when < t->when_ms) {
            t->when_ms = when;
            loop->heap[t->heap_index - 1].when_ms = when;
            heap_up(loop, t->heap_index - 1);
        }
        return;
    }
    if (loop->heap_len == loop->heap_cap) {
        uint32_t cap = loop->heap_cap * 2;
        struct heap_entry *h = realloc(loop->heap, cap * sizeof(*h));
        if (h == NULL) {
            log_error("ev", "out of memory growing the timer heap");
            abort();
        }
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->when_ms = when;
    uint32_t i = loop->heap_len++;
    loop->heap[i] = (struct heap_entry){.when_ms = when, .t = t};
    heap_up(loop, i);
}

void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t)
{
    if (t->heap_index == 0) {
        return;
    }
    uint32_t i = t->heap_index - 1;
    uint32_t last = --loop->heap_len;
    t->heap_index = 0;
    if (i == last) {
        return;
    }
    /* The last entry fills the hole, then moves whichever way its key asks. */
    loop->heap[i] = loop->heap[last];
    if (i > 0 && loop->heap[(i - 1) / HEAP_ARITY].when_ms > loop->heap[i].when_ms) {
        heap_up(loop, i);
    } else {
        heap_down(loop, i);
    }
}

uint32_t ev_loop_timer_count(const struct ev_loop *loop)
{
    return loop->heap_len;
}

static void run_timers(struct ev_loop *loop)
{
    while (loop->heap_len > 0 && loop->heap[0].when_ms <= loop->now_ms) {
        struct ev_timer *t = loop->heap[0].t;
        if (t->deadline_ms > loop->now_ms) {
            t->when_ms = loop->heap[0].when_ms = t->deadline_ms;
            heap_down(loop, 0);
            continue;
        }
        ev_timer_stop(loop, t);
        t->on_timeout(loop, t);
    }
}

/* ---------------------------------------------------------------- deferred calls */

void ev_defer(struct ev_loop *loop, struct ev_defer *d, ev_defer_fn fn, void *data)
{
    if (d->is_queued) {
        return;
    }
    d->fn = fn;
    d->data = data;
    d->next = NULL;
    d->is_queued = true;
    if (loop->defer_tail != NULL) {
        loop->defer_tail->next = d;
    } else {
        loop->defer_head = d;
    }
    loop->defer_tail = d;
}

static void later_add(struct ev_loop *loop, ev_defer_fn fn, void *data)
{
    if (loop->n_later == loop->cap_later) {
        uint32_t cap = loop->cap_later == 0 ? 64 : loop->cap_later * 2;
        struct ev_later *v = realloc(loop->later, cap * sizeof(*v));
        if (v == NULL) {
            log_warn("ev", "out of memory deferring a release; leaking %p", data);
            return;
        }
        loop->later = v;
        loop->cap_later = cap;
    }
    loop->later[loop->n_later++] = (struct ev_later){.fn = fn, .data = data};
}

void ev_free_later(struct ev_loop *loop, void *ptr)
{
    if (ptr != NULL) {
        later_add(loop, NULL, ptr);
    }
}

void ev_release_later(struct ev_loop *loop, ev_defer_fn fn, void *data)
{
    later_add(loop, fn, data);
}

static void run_deferred(struct ev_loop *loop)
{
    while (loop->defer_head != NULL) {
        struct ev_defer *d = loop->defer_head;
        loop->defer_head = d->next;
        if (loop->defer_head == NULL) {
            loop->defer_tail = NULL;
        }
        d->is_queued = false;
        d->fn(loop, d->data); /* may free d */
    }
    /* A release may add another (its object's parts): read the array afresh each time. */
    for (uint32_t i = 0; i < loop->n_later; i++) {
        struct ev_later l = loop->later[i];
        if (l.fn != NULL) {
            l.fn(loop, l.data);
        } else {
            free(l.data);
        }
    }
    loop->n_later = 0;
}

/* ---------------------------------------------------------------- wakeups */

static void on_wake_fd(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)events;
    uint64_t v;
    ssize_t n = read(io->fd, &v, sizeof(v));
    (void)n; /* EAGAIN only: the counter was already drained */
    if (loop->on_wakeup != NULL) {
        loop->on_wakeup(loop, loop->wakeup_data);
    }
}

int ev_loop_set_wakeup(struct ev_loop *loop, ev_hook_fn on_wakeup, void *data)
{
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_fd == -1) {
        return -errno;
    }
    loop->on_wakeup = on_wakeup;
    loop->wakeup_data = data;
    return ev_io_start(loop, &loop->wake_io, loop->wake_fd, EV_READ, on_wake_fd, loop, "wakeup");
}

void ev_loop_wake(struct ev_loop *loop)
{
    uint64_t one = 1;
    ssize_t n = write(loop->wake_fd, &one, sizeof(one));
    (void)n; /* EAGAIN means a wakeup is already pending */
}

void ev_loop_set_hooks(struct ev_loop *loop, ev_hook_fn on_iteration, ev_hook_fn before_block,
                       ev_hook_fn after_block, void *data)
{
    loop->on_iteration = on_iteration;
    loop->before_block = before_block;
    loop->after_block = after_block;
    loop->hook_data = data;
}

/* ---------------------------------------------------------------- the loop */

static int next_timeout_ms(const struct ev_loop *loop)
{
    if (loop->defer_head != NULL || loop->is_stopping) {
        return 0;
    }
    if (loop->heap_len == 0) {
        return -1;
    }
    uint64_t when = loop->heap[0].when_ms;
    if (when <= loop->now_ms) {
        return 0;
    }
    uint64_t d = when - loop->now_ms;
    return d > 60000 ? 60000 : (int)d;
}

int ev_run(struct ev_loop *loop)
{
    struct epoll_event events[EV_MAX_EVENTS];
    loop->is_stopping = false;
    while (!loop->is_stopping) {
        ev_update_time(loop);
        run_timers(loop);
        int timeout = next_timeout_ms(loop);
        if (timeout != 0 && loop->before_block != NULL) {
            loop->before_block(loop, loop->hook_data);
        }
        int n = epoll_wait(loop->epfd, events, EV_MAX_EVENTS, timeout);
        if (timeout != 0 && loop->after_block != NULL) {
            loop->after_block(loop, loop->hook_data);
        }
        if (n == -1 && errno != EINTR) {
            log_error("ev", "epoll_wait() failed: %s", strerror(errno));
            return -errno;
        }
        ev_update_time(loop);
        for (int i = 0; i < n; i++) {
            struct ev_io *io = events[i].data.ptr;
            if (!io->is_active) {
                continue;
            }
            uint32_t ev = events[i].events;
            /* Errors and hangups are reported as readiness for what the watcher asks for:
             * the callback's read or write returns the error. Asking for nothing, it gets
             * EV_ERROR alone and is parked first (the callback may free it). */
            if ((ev & EV_ERROR) != 0) {
                ev = (ev & EV_ERROR) | (io->events & (EV_READ | EV_WRITE));
                if (io->events == 0) {
                    io_park(loop, io);
                }
            }
            io->on_event(loop, io, ev);
        }
        run_deferred(loop);
        if (loop->on_iteration != NULL) {
            loop->on_iteration(loop, loop->hook_data);
        }
    }
    return 0;
}
