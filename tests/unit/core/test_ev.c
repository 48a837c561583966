/* SPDX-License-Identifier: MIT */
/* Unit tests for src/core/ev.c: timers in order, fd readiness, deferred calls, wakeups. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/ev.c"

static int order[16];
static int n_order;

static void on_timer(struct ev_loop *loop, struct ev_timer *t)
{
    order[n_order++] = (int)(intptr_t)t->data;
    if (n_order == 4) {
        ev_loop_stop(loop);
    }
}

Test(ev, timers_fire_in_deadline_order)
{
    struct ev_loop *loop = ev_loop_new();
    cr_assert_not_null(loop);
    struct ev_timer t[5];
    int delays[5] = {30, 10, 20, 5, 40};
    for (int i = 0; i < 5; i++) {
        ev_timer_init(&t[i], on_timer, (void *)(intptr_t)i, "t");
        ev_timer_start(loop, &t[i], (uint64_t)delays[i]);
    }
    ev_timer_stop(loop, &t[4]); /* stopped timers never fire */
    n_order = 0;
    ev_run(loop);
    cr_assert_eq(n_order, 4);
    cr_assert_eq(order[0], 3);
    cr_assert_eq(order[1], 1);
    cr_assert_eq(order[2], 2);
    cr_assert_eq(order[3], 0);
    cr_assert_eq(ev_loop_timer_count(loop), 0);
    ev_loop_free(loop);
}

Test(ev, rearming_moves_a_timer)
{
    struct ev_loop *loop = ev_loop_new();
    struct ev_timer a, b;
    ev_timer_init(&a, on_timer, (void *)1, "a");
    ev_timer_init(&b, on_timer, (void *)2, "b");
    ev_timer_start(loop, &a, 10);
    ev_timer_start(loop, &b, 20);
    ev_timer_start(loop, &a, 30); /* now after b */
    cr_assert_eq(ev_loop_timer_count(loop), 2);
    n_order = 2; /* stop after two more */
    ev_run(loop);
    cr_assert_eq(order[2], 2);
    cr_assert_eq(order[3], 1);
    ev_loop_free(loop);
}

/* The heap's shape after every operation: each entry's key is its timer's, the timer knows
 * its position, and no child fires before its parent. */
static void assert_heap(const struct ev_loop *loop)
{
    for (uint32_t i = 0; i < loop->heap_len; i++) {
        cr_assert_eq(loop->heap[i].t->heap_index, i + 1);
        cr_assert_eq(loop->heap[i].when_ms, loop->heap[i].t->when_ms);
        if (i > 0) {
            cr_assert_geq(loop->heap[i].when_ms, loop->heap[(i - 1) / HEAP_ARITY].when_ms);
        }
    }
}

#define MANY 600
static uint64_t fired_at[MANY];
static uint64_t fired_deadline[MANY];
static int n_fired;

static void on_many(struct ev_loop *loop, struct ev_timer *t)
{
    fired_at[n_fired] = loop->now_ms;
    fired_deadline[n_fired] = t->deadline_ms;
    n_fired++;
}

Test(ev, many_timers_started_stopped_and_rearmed_fire_on_time)
{
    struct ev_loop *loop = ev_loop_new();
    static struct ev_timer t[MANY];
    bool armed[MANY] = {false};
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < MANY; i++) {
        ev_timer_init(&t[i], on_many, NULL, "many");
    }
    for (int op = 0; op < 20000; op++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        int i = (int)(rng % MANY);
        if ((rng >> 32) % 4 == 0) {
            ev_timer_stop(loop, &t[i]);
            armed[i] = false;
        } else {
            ev_timer_start(loop, &t[i], (rng >> 40) % 5000); /* earlier or later */
            armed[i] = true;
        }
        assert_heap(loop);
    }
    uint32_t n_armed = 0;
    for (int i = 0; i < MANY; i++) {
        n_armed += armed[i];
    }
    cr_assert_eq(ev_loop_timer_count(loop), n_armed);
    n_fired = 0;
    for (uint64_t step = 0; step < 5000 && loop->heap_len > 0; step += 7) {
        loop->now_ms += 7;
        run_timers(loop);
        assert_heap(loop);
    }
    cr_assert_eq((uint32_t)n_fired, n_armed);
    for (int k = 0; k < n_fired; k++) {
        cr_assert_geq(fired_at[k], fired_deadline[k], "a timer fired before its deadline");
        cr_assert_lt(fired_at[k] - fired_deadline[k], 7, "a timer fired late");
    }
    ev_loop_free(loop);
}

static int reads;

static void on_readable(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    char c;
    cr_assert(events & EV_READ);
    cr_assert_eq(read(io->fd, &c, 1), 1);
    reads++;
    ev_io_stop(loop, io);
    ev_loop_stop(loop);
}

Test(ev, io_readiness)
{
    struct ev_loop *loop = ev_loop_new();
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    struct ev_io io;
    cr_assert_eq(ev_io_start(loop, &io, fds[0], EV_READ, on_readable, NULL, "pipe"), 0);
    cr_assert_eq(write(fds[1], "x", 1), 1);
    reads = 0;
    ev_run(loop);
    cr_assert_eq(reads, 1);
    close(fds[0]);
    close(fds[1]);
    ev_loop_free(loop);
}

static int error_events;
static uint32_t last_events;

static void on_error_event(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)io;
    error_events++;
    last_events = events;
}

static void stop_loop(struct ev_loop *loop, struct ev_timer *t)
{
    (void)t;
    ev_loop_stop(loop);
}

/* Issue 10: a hangup on a watcher asking for nothing was turned into a read event at every
 * wait; an owner that could not read (its buffer full) made the loop spin. The watcher now
 * gets EV_ERROR alone, once, and hears of the fd again when it asks for events. */
Test(ev, regression_error_on_uninterested_watcher_reported_once)
{
    struct ev_loop *loop = ev_loop_new();
    int fds[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    struct ev_io io;
    cr_assert_eq(ev_io_start(loop, &io, fds[0], 0, on_error_event, NULL, "pair"), 0);
    cr_assert_eq(write(fds[1], "x", 1), 1);
    close(fds[1]);
    struct ev_timer t;
    ev_timer_init(&t, stop_loop, NULL, "stop");
    ev_timer_start(loop, &t, 100);
    error_events = 0;
    ev_run(loop);
    cr_assert_eq(error_events, 1, "%d callbacks in 100 ms", error_events);
    cr_assert_eq(last_events & (EV_READ | EV_WRITE), 0, "events %#x", last_events);
    cr_assert_neq(last_events & (EPOLLERR | EPOLLHUP), 0);

    /* Asking to read again: the pending byte and the hangup are reported as readiness. */
    cr_assert_eq(ev_io_set(loop, &io, EV_READ), 0);
    ev_timer_start(loop, &t, 100);
    error_events = 0;
    io.on_event = on_readable;
    reads = 0;
    ev_run(loop);
    cr_assert_eq(reads, 1);
    close(fds[0]);
    ev_loop_free(loop);
}

static int deferred;

static void on_defer(struct ev_loop *loop, void *data)
{
    (void)data;
    deferred++;
    ev_loop_stop(loop);
}

static void queue_defer(struct ev_loop *loop, struct ev_timer *t)
{
    static struct ev_defer d;
    ev_defer(loop, &d, on_defer, NULL);
    ev_defer(loop, &d, on_defer, NULL); /* queued once */
    ev_free_later(loop, t->data);
}

Test(ev, defer_runs_once_at_iteration_end)
{
    struct ev_loop *loop = ev_loop_new();
    struct ev_timer t;
    ev_timer_init(&t, queue_defer, malloc(32), "t");
    ev_timer_start(loop, &t, 1);
    deferred = 0;
    ev_run(loop);
    cr_assert_eq(deferred, 1);
    ev_loop_free(loop);
}

/* Releases run after the deferred calls of the iteration, in order, each once; one that
 * adds another (an object releasing its parts) has it run in the same pass. */
static char release_log[16];
static size_t release_n;

static void on_release_part(struct ev_loop *loop, void *data)
{
    (void)loop;
    release_log[release_n++] = 'p';
    free(data);
}

static void on_release(struct ev_loop *loop, void *data)
{
    release_log[release_n++] = 'r';
    ev_release_later(loop, on_release_part, data); /* after the rest of this pass */
}

static void on_release_defer(struct ev_loop *loop, void *data)
{
    (void)data;
    release_log[release_n++] = 'd';
    ev_loop_stop(loop);
}

static void queue_releases(struct ev_loop *loop, struct ev_timer *t)
{
    static struct ev_defer d;
    ev_release_later(loop, on_release, t->data);
    ev_free_later(loop, malloc(16));
    ev_release_later(loop, on_release, malloc(8));
    ev_defer(loop, &d, on_release_defer, NULL);
}

Test(ev, release_later_runs_after_deferred_calls_once)
{
    struct ev_loop *loop = ev_loop_new();
    struct ev_timer t;
    ev_timer_init(&t, queue_releases, malloc(32), "t");
    ev_timer_start(loop, &t, 1);
    release_n = 0;
    ev_run(loop);
    cr_assert_eq(release_n, 5);
    cr_assert(memcmp(release_log, "drrpp", 5) == 0, "order: %.5s", release_log);
    /* Many at once grow the list; pending plain frees are done when the loop goes. */
    for (int i = 0; i < 1000; i++) {
        ev_free_later(loop, malloc(8));
    }
    ev_loop_free(loop); /* valgrind/ASan: nothing leaks */
}

static int wakeups;

static void on_wakeup(struct ev_loop *loop, void *data)
{
    (void)data;
    wakeups++;
    ev_loop_stop(loop);
}

static void *waker(void *arg)
{
    usleep(20000);
    ev_loop_wake(arg);
    return NULL;
}

Test(ev, wakeup_from_another_thread)
{
    struct ev_loop *loop = ev_loop_new();
    cr_assert_eq(ev_loop_set_wakeup(loop, on_wakeup, NULL), 0);
    pthread_t th;
    pthread_create(&th, NULL, waker, loop);
    wakeups = 0;
    ev_run(loop); /* blocks until the other thread wakes it */
    pthread_join(th, NULL);
    cr_assert_eq(wakeups, 1);
    ev_loop_free(loop);
}
