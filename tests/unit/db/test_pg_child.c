/* SPDX-License-Identifier: MIT */
/* Unit tests of db/pg_child.c with small shell commands on a real event loop: output lines
 * reach the log under the child's context (FATAL lines of postgres as warnings), the exit
 * status reaches the callback, a child runs as the user asked for, a deadline SIGKILLs,
 * pg_child_kill_wait reaps. (Exit descriptions: tests/unit/core/test_child_spawn.c.) */
#include <criterion/criterion.h>

#include "db/pg_child.c"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include "../log_capture.h"

static struct ev_loop *loop;

struct exit_seen {
    bool is_done;
    int wstatus;
};

static void on_exit_cb(void *data, int wstatus)
{
    struct exit_seen *e = data;
    e->is_done = true;
    e->wstatus = wstatus;
    ev_loop_stop(loop);
}

static void on_guard(struct ev_loop *l, struct ev_timer *t)
{
    (void)t;
    ev_loop_stop(l);
}

static bool run_until(const bool *flag, uint32_t ms)
{
    struct ev_timer guard;
    ev_timer_init(&guard, on_guard, NULL, "guard");
    ev_timer_start(loop, &guard, ms);
    while (!*flag && ev_timer_is_active(&guard)) {
        (void)ev_run(loop);
    }
    ev_timer_stop(loop, &guard);
    return *flag;
}

static void setup(void)
{
    loop = ev_loop_new();
    log_capture_open("pgchild");
    log_set_level(LOG_LEVEL_INFO);
}

static void teardown(void)
{
    log_capture_close();
    ev_loop_free(loop);
}

TestSuite(pg_child, .init = setup, .fini = teardown, .timeout = 10);

static int start_sh(struct pg_child *c, const char *script, const struct child_ids *ids,
                    uint32_t timeout_ms, bool is_postgres)
{
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct pg_child_spec spec = {.path = "/bin/sh",
                                 .argv = argv,
                                 .envp = envp,
                                 .ids = ids,
                                 .user = "postgres",
                                 .ctx = "pg test tool",
                                 .is_postgres = is_postgres,
                                 .timeout_ms = timeout_ms};
    return pg_child_start(c, &spec);
}

Test(pg_child, output_is_logged_and_the_exit_reported)
{
    struct pg_child c;
    struct exit_seen e = {0};
    pg_child_init(&c, loop, on_exit_cb, &e);
    cr_assert_eq(start_sh(&c, "echo one; echo two >&2; printf last; exit 3", NULL, 0, false), 0);
    cr_assert(pg_child_is_running(&c));
    cr_assert_eq(start_sh(&c, "true", NULL, 0, false), -EBUSY);
    cr_assert(run_until(&e.is_done, 5000));
    cr_assert_not(pg_child_is_running(&c));
    cr_assert(WIFEXITED(e.wstatus) && WEXITSTATUS(e.wstatus) == 3);
    const char *text = log_capture_text();
    cr_assert_not_null(strstr(text, "[info] main pg test tool: one\n"), "%s", text);
    cr_assert_not_null(strstr(text, "pg test tool: two\n"), "%s", text);
    cr_assert_not_null(strstr(text, "pg test tool: last\n"), "the line without a newline");
    /* It can run again. */
    e.is_done = false;
    cr_assert_eq(start_sh(&c, "exit 0", NULL, 0, false), 0);
    cr_assert(run_until(&e.is_done, 5000));
    cr_assert_eq(e.wstatus, 0);
}

Test(pg_child, postgres_severities)
{
    struct pg_child c;
    struct exit_seen e = {0};
    pg_child_init(&c, loop, on_exit_cb, &e);
    cr_assert_eq(start_sh(&c,
                          "echo '[7] LOG:  checkpoint'; echo '[7] FATAL:  no: x'; "
                          "echo '[7] PANIC:  gone'; echo '[7] ERROR:  FATAL: in text'",
                          NULL, 0, true),
                 0);
    cr_assert(run_until(&e.is_done, 5000));
    const char *text = log_capture_text();
    cr_assert_not_null(strstr(text, "[info] main pg test tool: [7] LOG:  checkpoint"), "%s", text);
    cr_assert_not_null(strstr(text, "[warn] main pg test tool: [7] FATAL:  no: x"), "%s", text);
    cr_assert_not_null(strstr(text, "[warn] main pg test tool: [7] PANIC:  gone"), "%s", text);
    cr_assert_not_null(strstr(text, "[info] main pg test tool: [7] ERROR:  FATAL: in text"));
}

Test(pg_child, runs_as_the_user)
{
    struct child_ids ids;
    bool is_ignored;
    struct errbuf eb;
    cr_assert_eq(child_ids_resolve("postgres", &ids, &is_ignored, &eb), 0, "%s", eb.msg);
    struct pg_child c;
    struct exit_seen e = {0};
    pg_child_init(&c, loop, on_exit_cb, &e);
    cr_assert_eq(start_sh(&c, "echo uid=$(id -u) dir=$(pwd)", &ids, 0, false), 0);
    cr_assert(run_until(&e.is_done, 5000));
    char want[64];
    (void)snprintf(want, sizeof(want), "uid=%u dir=/\n", (unsigned)getpwnam("postgres")->pw_uid);
    cr_assert_not_null(strstr(log_capture_text(), want), "%s", log_capture_text());
}

Test(pg_child, the_deadline_kills_and_kill_wait_reaps)
{
    struct pg_child c;
    struct exit_seen e = {0};
    pg_child_init(&c, loop, on_exit_cb, &e);
    cr_assert_eq(start_sh(&c, "sleep 30", NULL, 100, false), 0);
    cr_assert(run_until(&e.is_done, 5000));
    cr_assert(WIFSIGNALED(e.wstatus) && WTERMSIG(e.wstatus) == SIGKILL);
    cr_assert_not_null(strstr(log_capture_text(), "still running at its deadline"));
    e.is_done = false;
    cr_assert_eq(start_sh(&c, "sleep 30", NULL, 0, false), 0);
    pid_t pid = pg_child_pid(&c);
    pg_child_kill_wait(&c);
    cr_assert_not(pg_child_is_running(&c));
    cr_assert_eq(kill(pid, 0), -1, "reaped: the pid is gone");
    cr_assert_not(e.is_done, "no callback from kill_wait");
}
