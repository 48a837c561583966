/* SPDX-License-Identifier: MIT */
/* Unit tests of db/db_fence.c with real processes: a child that stands in for the
 * postmaster (it sleeps), the real watcher forked by db_fence_start. The watcher must end the
 * child once the deadline (+ grace) passes without a new one, never before, never when
 * disarmed, and still when its parent (keel) was killed -9 while it was armed. */
#include <criterion/criterion.h>

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db/db_fence.c"

/* A stand-in postmaster: sleeps until killed. */
static pid_t victim(void)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        for (;;) {
            pause();
        }
    }
    return pid;
}

/* Wait up to ms for pid (our child) to exit; returns its wait status, or -1 if it did not. */
static int wait_exit(pid_t pid, uint32_t ms)
{
    uint64_t end = mono_ms() + ms;
    do {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            return st;
        }
        struct timespec t = {.tv_nsec = 5 * 1000000L};
        nanosleep(&t, NULL);
    } while (mono_ms() < end);
    return -1;
}

static struct db_fence *start(void)
{
    struct errbuf eb = {.msg = ""};
    struct db_fence *f = db_fence_start("t1", &eb);
    cr_assert_not_null(f, "%s", eb.msg);
    cr_assert_gt(db_fence_pid(f), 0);
    return f;
}

Test(db_fence, ends_the_postmaster_after_the_deadline_and_not_before)
{
    struct db_fence *f = start();
    pid_t pm = victim();
    uint64_t t0 = mono_ms();
    db_fence_arm(f, t0 + 300, pm);
    cr_assert_eq(wait_exit(pm, 250), -1, "ended before its deadline");
    int st = wait_exit(pm, 3000);
    uint64_t took = mono_ms() - t0;
    cr_assert_neq(st, -1, "not ended 3 s after its deadline");
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGQUIT, "ended by %d, not SIGQUIT", st);
    cr_assert_geq(took, 300 + DB_FENCE_GRACE_MS);
    /* The watcher counts the fence once the postmaster is gone, which the test may see first. */
    uint64_t until = mono_ms() + 3000;
    while (db_fence_fired(f) == 0 && mono_ms() < until) {
        struct timespec t = {.tv_nsec = 5 * 1000000L};
        nanosleep(&t, NULL);
    }
    cr_assert_eq(db_fence_fired(f), 1);
    db_fence_free(f);
}

Test(db_fence, renewals_move_the_deadline_and_disarm_stops_it)
{
    struct db_fence *f = start();
    pid_t pm = victim();
    /* renewed every 100 ms, the deadline 1 s ahead (not 200 ms: a loaded machine may not run
     * this loop for a few hundred ms) */
    for (int i = 0; i < 8; i++) {
        db_fence_arm(f, mono_ms() + 1000, pm);
        cr_assert_eq(wait_exit(pm, 100), -1, "ended although renewed");
    }
    db_fence_disarm(f);
    cr_assert_eq(wait_exit(pm, 600), -1, "ended although disarmed");
    cr_assert_eq(db_fence_fired(f), 0);
    db_fence_free(f);
    kill(pm, SIGKILL);
    cr_assert_neq(wait_exit(pm, 2000), -1);
}

Test(db_fence, a_postmaster_ignoring_sigquit_is_killed)
{
    struct db_fence *f = start();
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t pm = fork();
    cr_assert_neq(pm, -1);
    if (pm == 0) {
        signal(SIGQUIT, SIG_IGN);
        (void)!write(ready[1], "r", 1); /* ignoring SIGQUIT now */
        for (;;) {
            pause();
        }
    }
    char r;
    cr_assert_eq(read(ready[0], &r, 1), 1); /* not a fixed sleep: its signal(SIGQUIT) first */
    db_fence_arm(f, mono_ms(), pm);
    int st = wait_exit(pm, 4000);
    cr_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status %d", st);
    db_fence_free(f);
}

/* keel killed -9 while the watcher was armed: the watcher outlives it, fences at the
 * deadline, then exits. Here "keel" is an intermediate child that starts the watcher, arms
 * it for a postmaster that is our child, and SIGKILLs itself. */
Test(db_fence, keeps_the_fence_when_keel_is_killed)
{
    pid_t pm = victim();
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t keel = fork();
    cr_assert_neq(keel, -1);
    if (keel == 0) {
        struct errbuf eb;
        struct db_fence *f = db_fence_start("t1", &eb);
        if (f == NULL) {
            _exit(1);
        }
        pid_t w = db_fence_pid(f);
        uint64_t deadline = mono_ms() + 1000;
        db_fence_arm(f, deadline, pm);
        (void)!write(pfd[1], &w, sizeof(w));
        (void)!write(pfd[1], &deadline, sizeof(deadline));
        raise(SIGKILL);
    }
    pid_t watcher = 0;
    uint64_t deadline = 0;
    cr_assert_eq(read(pfd[0], &watcher, sizeof(watcher)), (ssize_t)sizeof(watcher));
    cr_assert_eq(read(pfd[0], &deadline, sizeof(deadline)), (ssize_t)sizeof(deadline));
    int kst = wait_exit(keel, 2000);
    cr_assert(kst != -1 && WIFSIGNALED(kst), "the stand-in keel did not die");
    /* alive until the deadline (measured from the arming, not from when this test ran) */
    uint64_t now = mono_ms();
    if (deadline > now + 20) {
        cr_assert_eq(wait_exit(pm, (uint32_t)(deadline - now - 20)), -1,
                     "ended before the deadline");
    }
    int st = wait_exit(pm, 3000);
    cr_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGQUIT, "status %d", st);
    cr_assert_geq(mono_ms(), deadline);
    /* and the watcher exits after the fence (it is not our child: poll its existence) */
    uint64_t end = mono_ms() + 3000;
    while (kill(watcher, 0) == 0 && mono_ms() < end) {
        struct timespec t = {.tv_nsec = 10 * 1000000L};
        nanosleep(&t, NULL);
    }
    cr_assert_neq(kill(watcher, 0), 0, "the orphaned watcher did not exit");
}
