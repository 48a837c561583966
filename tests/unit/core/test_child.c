/* SPDX-License-Identifier: MIT */
/* Unit tests of core/child.c on a real event loop with real processes: /bin/true and
 * /bin/false reach on_exit with their status, a sleeping child is stopped by SIGTERM, one
 * that ignores SIGTERM is SIGKILLed when the stop time ends, the run deadline, the restart
 * policy's backoff schedule, child_stop while waiting to restart, output capture under the
 * child's log context, child_kill_wait, the state names, and an environment that holds a
 * secret wiped from keel's copy once the process has it. */
#include <criterion/criterion.h>

#include "core/child.c"

#include <fcntl.h>

#include "../log_capture.h"

static struct ev_loop *loop;

#define MAX_EXITS 8

struct seen {
    int n_starts;
    pid_t last_pid;
    int n_exits;
    struct child_exit exits[MAX_EXITS];
    int n_lost;
    int stop_after; /* child_stop from on_exit once this many exits were seen (0: never) */
    struct child *c;
};

static void on_start_cb(void *data, pid_t pid)
{
    struct seen *s = data;
    s->n_starts++;
    s->last_pid = pid;
}

static void on_exit_cb(void *data, const struct child_exit *e)
{
    struct seen *s = data;
    cr_assert_lt(s->n_exits, MAX_EXITS);
    s->exits[s->n_exits++] = *e;
    if (s->stop_after != 0 && s->n_exits == s->stop_after) {
        cr_assert_not(child_stop(s->c, SIGTERM, 1000), "nothing runs while in backoff");
        cr_assert_eq(child_state(s->c), CHILD_STOPPED);
    }
}

static void on_lost_cb(void *data, pid_t pid)
{
    struct seen *s = data;
    (void)pid;
    s->n_lost++;
}

static const struct child_ops ops = {
    .on_start = on_start_cb, .on_exit = on_exit_cb, .on_lost = on_lost_cb};

static void on_guard(struct ev_loop *l, struct ev_timer *t)
{
    (void)t;
    ev_loop_stop(l);
}

static void on_tick(struct ev_loop *l, struct ev_timer *t)
{
    (void)t;
    ev_loop_stop(l); /* back to the condition's check */
}

/* Run the loop until *count reaches want, or ms pass. */
static bool run_until(const int *count, int want, uint32_t ms)
{
    struct ev_timer guard, tick;
    ev_timer_init(&guard, on_guard, NULL, "guard");
    ev_timer_init(&tick, on_tick, NULL, "tick");
    ev_timer_start(loop, &guard, ms);
    while (*count < want && ev_timer_is_active(&guard)) {
        ev_timer_start(loop, &tick, 10);
        (void)ev_run(loop);
    }
    ev_timer_stop(loop, &guard);
    ev_timer_stop(loop, &tick);
    return *count >= want;
}

static void setup(void)
{
    loop = ev_loop_new();
    log_capture_open("child");
    log_set_level(LOG_LEVEL_INFO);
}

static void teardown(void)
{
    log_capture_close();
    ev_loop_free(loop);
}

TestSuite(child, .init = setup, .fini = teardown, .timeout = 20);

static int start_sh(struct child *c, const char *script, uint32_t timeout_ms)
{
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct child_spec spec = {.path = "/bin/sh",
                              .argv = argv,
                              .envp = envp,
                              .output = CHILD_OUTPUT_LOG,
                              .is_group_stopped = true,
                              .timeout_ms = timeout_ms,
                              .ctx = "test/0",
                              .out_ctx = "test",
                              .is_pid_in_out_ctx = true};
    return child_start(c, &spec);
}

static int start_prog(struct child *c, const char *path)
{
    char *argv[] = {(char *)path, NULL};
    char *envp[] = {NULL};
    struct child_spec spec = {.path = path, .argv = argv, .envp = envp, .ctx = "test/0"};
    return child_start(c, &spec);
}

Test(child, true_and_false)
{
    struct child c;
    struct seen s = {0};
    child_init(&c, loop, &ops, &s);
    cr_assert_eq(child_state(&c), CHILD_STOPPED);
    cr_assert_eq(start_prog(&c, "/bin/true"), 0);
    cr_assert_eq(child_state(&c), CHILD_RUNNING);
    cr_assert_eq(s.n_starts, 1);
    cr_assert_eq(child_pid(&c), s.last_pid);
    cr_assert_eq(start_prog(&c, "/bin/true"), -EBUSY);
    cr_assert(run_until(&s.n_exits, 1, 5000));
    cr_assert_eq(s.exits[0].pid, s.last_pid);
    cr_assert_eq(s.exits[0].wstatus, 0);
    cr_assert_not(s.exits[0].is_stop);
    cr_assert_not(s.exits[0].is_restarting);
    cr_assert_eq(child_state(&c), CHILD_STOPPED);
    cr_assert_not(child_is_running(&c));
    cr_assert_eq(start_prog(&c, "/bin/false"), 0);
    cr_assert(run_until(&s.n_exits, 2, 5000));
    cr_assert(WIFEXITED(s.exits[1].wstatus) && WEXITSTATUS(s.exits[1].wstatus) == 1);
    cr_assert_eq(start_prog(&c, "/nonexistent/keel"), 0, "execve fails in the child");
    cr_assert(run_until(&s.n_exits, 3, 5000));
    cr_assert_eq(WEXITSTATUS(s.exits[2].wstatus), 127);
    child_fini(&c);
}

Test(child, a_sleeping_child_is_stopped_by_sigterm)
{
    struct child c;
    struct seen s = {0};
    child_init(&c, loop, &ops, &s);
    cr_assert_eq(start_sh(&c, "exec sleep 30", 0), 0);
    cr_assert(child_stop(&c, SIGTERM, 5000));
    cr_assert_eq(child_state(&c), CHILD_STOPPING);
    cr_assert(child_stop(&c, SIGTERM, 5000), "a second stop changes nothing");
    cr_assert(run_until(&s.n_exits, 1, 5000));
    cr_assert(WIFSIGNALED(s.exits[0].wstatus) && WTERMSIG(s.exits[0].wstatus) == SIGTERM);
    cr_assert(s.exits[0].is_stop);
    cr_assert_not(s.exits[0].was_killed);
    cr_assert_eq(child_state(&c), CHILD_STOPPED);
    cr_assert_not(child_stop(&c, SIGTERM, 5000), "nothing to stop");
    child_fini(&c);
}

Test(child, one_that_ignores_sigterm_is_killed_after_the_stop_time)
{
    struct child c;
    struct seen s = {0};
    child_init(&c, loop, &ops, &s);
    cr_assert_eq(start_sh(&c, "trap '' TERM; echo ready; while :; do sleep 0.05; done", 0), 0);
    /* The trap must be set before the SIGTERM: wait for its line. */
    uint64_t deadline = child_clock_ms() + 5000;
    while (strstr(log_capture_text(), "ready") == NULL && child_clock_ms() < deadline) {
        struct ev_timer t;
        ev_timer_init(&t, on_tick, NULL, "tick");
        ev_timer_start(loop, &t, 10);
        (void)ev_run(loop);
        ev_timer_stop(loop, &t);
    }
    pid_t pid = child_pid(&c);
    uint64_t t0 = child_clock_ms();
    cr_assert(child_stop(&c, SIGTERM, 300));
    cr_assert(run_until(&s.n_exits, 1, 5000));
    cr_assert_geq(child_clock_ms() - t0, 290, "not before the stop time");
    cr_assert(WIFSIGNALED(s.exits[0].wstatus) && WTERMSIG(s.exits[0].wstatus) == SIGKILL);
    cr_assert(s.exits[0].is_stop);
    cr_assert(s.exits[0].was_killed);
    char want[96];
    (void)snprintf(want, sizeof(want),
                   "test/0: pid %d still running 300ms after SIGTERM: "
                   "sending SIGKILL",
                   (int)pid);
    cr_assert_not_null(strstr(log_capture_text(), want), "%s", log_capture_text());
    cr_assert_eq(s.n_lost, 0);
    child_fini(&c);
}

Test(child, the_run_deadline_kills)
{
    struct child c;
    struct seen s = {0};
    child_init(&c, loop, &ops, &s);
    cr_assert_eq(start_sh(&c, "exec sleep 30", 100), 0);
    cr_assert(run_until(&s.n_exits, 1, 5000));
    cr_assert(WIFSIGNALED(s.exits[0].wstatus) && WTERMSIG(s.exits[0].wstatus) == SIGKILL);
    cr_assert(s.exits[0].was_killed);
    cr_assert_not(s.exits[0].is_stop);
    cr_assert_not_null(
        strstr(log_capture_text(), "still running at its deadline: sending SIGKILL"));
    child_fini(&c);
}

Test(child, restarts_follow_the_backoff_schedule)
{
    struct child c;
    struct seen s = {.stop_after = 5, .c = &c};
    child_init(&c, loop, &ops, &s);
    struct child_restart r = {.initial_ms = 40, .max_ms = 160, .stable_ms = 10000};
    child_set_restart(&c, &r);
    cr_assert_eq(start_prog(&c, "/bin/false"), 0);
    cr_assert(run_until(&s.n_exits, 5, 10000));
    const uint32_t want[] = {40, 80, 160, 160, 160};
    for (int i = 0; i < 5; i++) {
        cr_assert(s.exits[i].is_restarting, "exit %d", i);
        cr_assert_eq(s.exits[i].restart_in_ms, want[i], "exit %d", i);
        cr_assert_eq(WEXITSTATUS(s.exits[i].wstatus), 1);
    }
    cr_assert_eq(s.n_starts, 5, "the first start and 4 restarts (stopped in the 5th backoff)");
    cr_assert_eq(child_state(&c), CHILD_STOPPED);
    child_fini(&c);
}

Test(child, a_failed_start_under_a_policy_is_retried)
{
    struct child c;
    struct seen s = {.stop_after = 2, .c = &c};
    child_init(&c, loop, &ops, &s);
    struct child_restart r = {.initial_ms = 20, .max_ms = 20, .stable_ms = 10000};
    child_set_restart(&c, &r);
    char *argv[] = {"x", NULL};
    char *envp[] = {NULL};
    struct child_spec spec = {.path = "/bin/true",
                              .argv = argv,
                              .envp = envp,
                              .output = CHILD_OUTPUT_FILE,
                              .output_path = "/nonexistent-dir/out.log"};
    cr_assert_eq(child_start(&c, &spec), -ENOENT);
    cr_assert_eq(s.n_exits, 1, "reported at once");
    cr_assert_eq(s.exits[0].pid, 0);
    cr_assert_eq(s.exits[0].start_error, -ENOENT);
    cr_assert_eq(child_state(&c), CHILD_BACKOFF);
    cr_assert(run_until(&s.n_exits, 2, 5000), "and again after the delay");
    cr_assert_eq(s.n_starts, 0);
    child_fini(&c);
}

Test(child, stop_and_restart_counts_as_a_crash)
{
    struct child c;
    struct seen s = {.stop_after = 2, .c = &c};
    child_init(&c, loop, &ops, &s);
    struct child_restart r = {.initial_ms = 30, .max_ms = 1000, .stable_ms = 10000};
    child_set_restart(&c, &r);
    cr_assert_eq(start_sh(&c, "exec sleep 30", 0), 0);
    child_stop_and_restart(&c, SIGTERM, 5000);
    cr_assert(run_until(&s.n_exits, 1, 5000));
    cr_assert(s.exits[0].is_restarting);
    cr_assert_not(s.exits[0].is_stop);
    cr_assert_eq(s.exits[0].restart_in_ms, 30);
    cr_assert(run_until(&s.n_starts, 2, 5000), "restarted");
    /* A stop while stopping-to-restart cancels the restart. */
    child_stop_and_restart(&c, SIGTERM, 5000);
    cr_assert(child_stop(&c, SIGTERM, 5000));
    s.stop_after = 0;
    cr_assert(run_until(&s.n_exits, 2, 5000));
    cr_assert(s.exits[1].is_stop);
    cr_assert_not(s.exits[1].is_restarting);
    cr_assert_eq(child_state(&c), CHILD_STOPPED);
    child_fini(&c);
}

Test(child, output_lines_are_logged_under_the_pid)
{
    struct child c;
    struct seen s = {0};
    child_init(&c, loop, &ops, &s);
    cr_assert_eq(start_sh(&c, "echo one; echo two >&2; printf last; exit 3", 0), 0);
    pid_t pid = child_pid(&c);
    cr_assert(run_until(&s.n_exits, 1, 5000));
    const char *text = log_capture_text();
    char want[64];
    (void)snprintf(want, sizeof(want), "[info] main test[%d]: one\n", (int)pid);
    cr_assert_not_null(strstr(text, want), "%s", text);
    (void)snprintf(want, sizeof(want), "test[%d]: two\n", (int)pid);
    cr_assert_not_null(strstr(text, want), "%s", text);
    (void)snprintf(want, sizeof(want), "test[%d]: last\n", (int)pid);
    cr_assert_not_null(strstr(text, want), "the line without a newline: %s", text);
    child_fini(&c);
}

Test(child, kill_wait_reaps_without_a_callback)
{
    struct child c;
    struct seen s = {0};
    child_init(&c, loop, &ops, &s);
    cr_assert_eq(start_sh(&c, "exec sleep 30", 0), 0);
    pid_t pid = child_pid(&c);
    cr_assert_eq(child_kill_wait(&c, 0), pid);
    cr_assert_eq(kill(pid, 0), -1, "reaped: the pid is gone");
    cr_assert_eq(s.n_exits, 0);
    cr_assert_eq(child_state(&c), CHILD_STOPPED);
    cr_assert_eq(child_kill_wait(&c, 0), 0, "nothing left");
    child_fini(&c);
}

Test(child, state_names_and_transitions)
{
    for (int st = CHILD_STOPPED; st <= CHILD_BACKOFF; st++) {
        cr_assert_neq(strcmp(child_state_name((enum child_state)st), "?"), 0);
        cr_assert_neq(legal_next[st], 0u, "state %d has a way out", st);
    }
    cr_assert_str_eq(child_state_name(CHILD_RUNNING), "running");
    cr_assert_str_eq(child_state_name((enum child_state)99), "?");
}

/* Whether keel's copy of c's spec holds s anywhere (its environment strings included). */
static bool spec_holds(const struct child *c, const char *s)
{
    if (c->_spec_mem == NULL) {
        return false;
    }
    size_t size = 0;
    memcpy(&size, c->_spec_mem, sizeof(size));
    return memmem(c->_spec_mem, size, s, strlen(s)) != NULL;
}

/* A password in the environment (PGPASSWORD for pg_basebackup) reaches the process but does
 * not stay in keel's memory for the whole run (minutes for a base backup) when the spec
 * says it is a secret; a child that may restart keeps its environment for the next run. */
Test(child, a_secret_environment_is_wiped_once_the_process_has_it)
{
    static const char secret[] = "hunter2-d1ff1cult";
    struct child c;
    struct seen s = {0};
    child_init(&c, loop, &ops, &s);
    char *argv[] = {"/bin/sh", "-c", "echo \"got [$KEEL_TEST_SECRET]\"; exec sleep 30", NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", "KEEL_TEST_SECRET=hunter2-d1ff1cult", NULL};
    struct child_spec spec = {.path = "/bin/sh",
                              .argv = argv,
                              .envp = envp,
                              .output = CHILD_OUTPUT_LOG,
                              .is_group_stopped = true,
                              .is_env_secret = true,
                              .ctx = "test/0"};
    cr_assert_eq(child_start(&c, &spec), 0);
    cr_assert_not(spec_holds(&c, secret), "keel's copy still holds the secret");
    cr_assert(spec_holds(&c, "exec sleep 30"), "the rest of the copy is there");
    uint64_t deadline = child_clock_ms() + 5000;
    while (strstr(log_capture_text(), "got [") == NULL && child_clock_ms() < deadline) {
        struct ev_timer t;
        ev_timer_init(&t, on_tick, NULL, "tick");
        ev_timer_start(loop, &t, 10);
        (void)ev_run(loop);
        ev_timer_stop(loop, &t);
    }
    cr_assert_not_null(strstr(log_capture_text(), "got [hunter2-d1ff1cult]"), "%s",
                       log_capture_text());
    cr_assert(child_stop(&c, SIGTERM, 5000));
    cr_assert(run_until(&s.n_exits, 1, 5000));
    child_fini(&c);

    /* Not a secret (an app's environment, which each restart needs): the copy keeps it. */
    struct child r;
    struct seen rs = {0};
    child_init(&r, loop, &ops, &rs);
    spec.is_env_secret = false;
    cr_assert_eq(child_start(&r, &spec), 0);
    cr_assert(spec_holds(&r, secret));
    cr_assert(child_stop(&r, SIGTERM, 5000));
    cr_assert(run_until(&rs.n_exits, 1, 5000));
    cr_assert_not(spec_holds(&r, secret), "wiped when the run ends");
    child_fini(&r);
}
