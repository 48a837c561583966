/* SPDX-License-Identifier: MIT */
/* Unit tests of app/app_supervisor.c: the crash loop window (the backoff is core/child.c's),
 * the state names, and the supervisor driven on a real event loop with real (short-lived)
 * processes: exit and restart with backoff, graceful stop, reload of a changed and a removed
 * app, the status JSON and the metrics. */
#include <criterion/criterion.h>

#include "core/json.h"

#include "app/app_supervisor.c"

#include <stdarg.h>
#include <sys/wait.h>

/* ------------------------------------------------------------------------------------------
 * Crash loops
 * ------------------------------------------------------------------------------------------ */

Test(app_crashloop, five_exits_within_a_minute)
{
    struct app_exit_history h = {0};
    uint64_t t = 1000000;
    for (unsigned i = 0; i < APP_CRASHLOOP_EXITS - 1; i++) {
        cr_assert_not(app_exit_history_add(&h, t + i * 1000), "exit %u", i);
    }
    cr_assert(app_exit_history_add(&h, t + 59000));
    cr_assert(app_exit_history_add(&h, t + 60000)); /* the window slides: still 5 in 60s */
}

Test(app_crashloop, slow_exits_are_not_a_loop)
{
    struct app_exit_history h = {0};
    for (unsigned i = 0; i < 20; i++) {
        cr_assert_not(app_exit_history_add(&h, (uint64_t)i * 15001), "exit %u", i);
    }
}

Test(app_crashloop, window_edges_and_clear)
{
    struct app_exit_history h = {0};
    for (unsigned i = 0; i < APP_CRASHLOOP_EXITS - 1; i++) {
        cr_assert_not(app_exit_history_add(&h, 0));
    }
    cr_assert(app_exit_history_add(&h, APP_CRASHLOOP_WINDOW_MS)); /* exactly 60s: a loop */
    app_exit_history_clear(&h);
    cr_assert_not(app_exit_history_add(&h, APP_CRASHLOOP_WINDOW_MS + 1));
    struct app_exit_history g = {0};
    for (unsigned i = 0; i < APP_CRASHLOOP_EXITS - 1; i++) {
        cr_assert_not(app_exit_history_add(&g, 0));
    }
    cr_assert_not(app_exit_history_add(&g, APP_CRASHLOOP_WINDOW_MS + 1));
}

Test(app_state, names)
{
    cr_assert_str_eq(app_proc_state_name(APP_PROC_STOPPED), "stopped");
    cr_assert_str_eq(app_proc_state_name(APP_PROC_STARTING), "starting");
    cr_assert_str_eq(app_proc_state_name(APP_PROC_RUNNING), "running");
    cr_assert_str_eq(app_proc_state_name(APP_PROC_BACKOFF), "backoff");
    cr_assert_str_eq(app_proc_state_name(APP_PROC_CRASHLOOP), "crashloop");
    cr_assert_str_eq(app_proc_state_name(APP_PROC_STOPPING), "stopping");
    cr_assert_str_eq(app_proc_state_name(APP_PROC_RESTARTING), "restarting");
    cr_assert_str_eq(app_proc_state_name((enum app_proc_state)42), "?");
}

Test(app_state, every_state_has_a_transition_row)
{
    for (int s = APP_PROC_STOPPED; s <= APP_PROC_RESTARTING; s++) {
        cr_assert_neq(legal_next[s], 0, "state %s", app_proc_state_name(s));
        cr_assert_eq(legal_next[s] & BIT(s) & ~(BIT(APP_PROC_BACKOFF) | BIT(APP_PROC_CRASHLOOP)), 0,
                     "state %s may only loop through a failed respawn", app_proc_state_name(s));
    }
}

/* ------------------------------------------------------------------------------------------
 * The supervisor on a real loop, with real processes
 * ------------------------------------------------------------------------------------------ */

static struct conf *load(const char *text)
{
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), 0, &conf, &errs);
    cr_assert_eq(rc, 0, "%s", errs.text ? errs.text : "");
    conf_errors_fini(&errs);
    return conf;
}

struct waiter {
    struct ev_timer timer;
    struct app_supervisor *sv;
    bool (*done)(struct app_supervisor *sv);
    uint64_t deadline_ms;
    bool is_done;
};

static void on_wait_tick(struct ev_loop *loop, struct ev_timer *t)
{
    struct waiter *w = t->data;
    if (w->done(w->sv)) {
        w->is_done = true;
        ev_loop_stop(loop);
    } else if (ev_now_ms(loop) >= w->deadline_ms) {
        ev_loop_stop(loop);
    } else {
        ev_timer_start(loop, t, 10);
    }
}

/* Run the loop until done(sv) or timeout_ms; returns whether done. */
static bool run_until(struct ev_loop *loop, struct app_supervisor *sv,
                      bool (*done)(struct app_supervisor *), uint64_t timeout_ms)
{
    struct waiter w = {.sv = sv, .done = done};
    ev_update_time(loop);
    w.deadline_ms = ev_now_ms(loop) + timeout_ms;
    ev_timer_init(&w.timer, on_wait_tick, &w, "test");
    ev_timer_start(loop, &w.timer, 0);
    ev_run(loop);
    ev_timer_stop(loop, &w.timer);
    return w.is_done;
}

static char *status_of(struct app_supervisor *sv)
{
    static char text[65536];
    struct json_w w;
    json_w_init(&w);
    app_supervisor_status_json(sv, &w);
    cr_assert_eq(json_w_finish(&w), 0);
    snprintf(text, sizeof(text), "%.*s", (int)w.len, w.data);
    json_w_fini(&w);
    return text;
}

static bool restarted_twice(struct app_supervisor *sv)
{
    return sv->n_apps == 1 && sv->apps[0]->procs[0].restarts >= 2 &&
           sv->apps[0]->procs[0].state == APP_PROC_BACKOFF;
}

Test(app_supervisor, exits_are_restarted_with_backoff, .timeout = 20)
{
    struct ev_loop *loop = ev_loop_new();
    struct conf *conf = load("app t { listen 127.0.0.1:1; run \"/bin/echo hello from echo\"; "
                             "restart_backoff 20ms 1s; }\n");
    struct app_supervisor *sv = app_supervisor_start(loop, conf, "n1");
    cr_assert_not_null(sv);
    cr_assert(run_until(loop, sv, restarted_twice, 10000));
    const struct app_proc *p = &sv->apps[0]->procs[0];
    cr_assert_str_eq(p->last_exit, "exit status 0");
    cr_assert_eq(child_pid(&p->child), 0);
    cr_assert_not(p->in_crashloop);
    cr_assert_eq(sv->apps[0]->restarts_total, p->restarts);
    cr_assert_eq(p->child._backoff.next_ms, 160); /* 20, 40, 80 waited: the next is 160 */
    char *st = status_of(sv);
    cr_assert(strstr(st, "\"name\":\"t\",\"kind\":\"command\",\"listen\":\"127.0.0.1:1\"") != NULL,
              "%s", st);
    cr_assert(strstr(st, "\"state\":\"backoff\"") != NULL, "%s", st);
    cr_assert(strstr(st, "\"last_exit\":\"exit status 0\"") != NULL, "%s", st);
    app_supervisor_stop(sv, 0);
    cr_assert(app_supervisor_is_stopped(sv));
    cr_assert_eq(sv->apps[0]->procs[0].state, APP_PROC_STOPPED);
    app_supervisor_free(sv);
    conf_free(conf);
    ev_loop_free(loop);
}

static bool in_crashloop(struct app_supervisor *sv)
{
    return sv->apps[0]->procs[0].in_crashloop;
}

Test(app_supervisor, crash_loop_is_detected, .timeout = 20)
{
    struct ev_loop *loop = ev_loop_new();
    struct conf *conf = load("app t { listen 127.0.0.1:1; run /bin/false; "
                             "restart_backoff 10ms 40ms; }\n");
    struct app_supervisor *sv = app_supervisor_start(loop, conf, NULL);
    cr_assert(run_until(loop, sv, in_crashloop, 10000));
    cr_assert_str_eq(sv->apps[0]->procs[0].last_exit, "exit status 1");
    cr_assert_eq(sv->apps[0]->procs[0].state, APP_PROC_CRASHLOOP);
    char *st = status_of(sv);
    cr_assert(strstr(st, "\"state\":\"crashloop\"") != NULL, "%s", st);
    cr_assert(strstr(st, "\"crashloop\":true") != NULL, "%s", st);
    struct metrics_out out = {0};
    app_supervisor_metrics(sv, &out);
    cr_assert(memmem(out.data, out.len, "keel_app_crashloop{app=\"t\",process=\"0\"} 1\n", 42) !=
              NULL);
    metrics_out_fini(&out);
    app_supervisor_free(sv);
    conf_free(conf);
    ev_loop_free(loop);
}

static bool all_running(struct app_supervisor *sv)
{
    for (uint32_t i = 0; i < sv->n_apps; i++) {
        for (uint32_t k = 0; k < sv->apps[i]->n_procs; k++) {
            if (sv->apps[i]->procs[k].state != APP_PROC_RUNNING) {
                return false;
            }
        }
    }
    return sv->n_apps > 0;
}

static bool stopped(struct app_supervisor *sv)
{
    return app_supervisor_is_stopped(sv);
}

Test(app_supervisor, stop_sends_sigterm_then_sigkill, .timeout = 20)
{
    struct ev_loop *loop = ev_loop_new();
    /* trap '' TERM: the shell ignores SIGTERM, and so does its sleep. */
    struct conf *conf =
        load("app soft { listen 127.0.0.1:1; run \"/bin/sleep 100\"; processes 2; }\n"
             "app hard { listen 127.0.0.1:10; run /bin/sh -c \"trap '' TERM; "
             "sleep 100\"; stop_timeout 100ms; }\n");
    struct app_supervisor *sv = app_supervisor_start(loop, conf, NULL);
    cr_assert(run_until(loop, sv, all_running, 5000));
    pid_t soft = sv->apps[0]->procs[1].child._pid, hard = sv->apps[1]->procs[0].child._pid;
    cr_assert_gt(soft, 0);
    cr_assert_gt(hard, 0);
    app_supervisor_stop(sv, 0);
    cr_assert_not(app_supervisor_is_stopped(sv));
    cr_assert(run_until(loop, sv, stopped, 5000));
    cr_assert_str_eq(sv->apps[0]->procs[1].last_exit, "killed by signal 15 (SIGTERM)");
    cr_assert_str_eq(sv->apps[1]->procs[0].last_exit, "killed by signal 9 (SIGKILL)");
    cr_assert_eq(kill(soft, 0), -1);
    cr_assert_eq(kill(hard, 0), -1);
    app_supervisor_free(sv);
    conf_free(conf);
    ev_loop_free(loop);
}

static bool replaced(struct app_supervisor *sv)
{
    return sv->n_apps == 1 && strcmp(sv->apps[0]->conf->name, "b") == 0 && all_running(sv) &&
           sv->apps[0]->n_procs == 2;
}

Test(app_supervisor, reload_keeps_changes_and_removes, .timeout = 20)
{
    struct ev_loop *loop = ev_loop_new();
    struct conf *c1 = load("app a { listen 127.0.0.1:1; run \"/bin/sleep 100\"; }\n"
                           "app b { listen 127.0.0.1:2; run \"/bin/sleep 100\"; }\n"
                           "app c { listen 127.0.0.1:3; run \"/bin/sleep 100\"; }\n");
    struct app_supervisor *sv = app_supervisor_start(loop, c1, NULL);
    cr_assert(run_until(loop, sv, all_running, 5000));
    pid_t a_pid = sv->apps[0]->procs[0].child._pid;
    pid_t b_pid = sv->apps[1]->procs[0].child._pid;
    /* a unchanged, b changed (2 processes), c removed. */
    struct conf *c2 = load("app a { listen 127.0.0.1:1; run \"/bin/sleep 100\"; }\n"
                           "app b { listen 127.0.0.1:2; run \"/bin/sleep 100\"; processes 2; }\n");
    cr_assert_eq(app_supervisor_reload(sv, c2), 0);
    cr_assert_eq(sv->apps[0]->procs[0].child._pid, a_pid);
    struct conf *c3 = load("app b { listen 127.0.0.1:2; run \"/bin/sleep 100\"; processes 2; }\n");
    cr_assert_eq(app_supervisor_reload(sv, c3), 0); /* and now a goes too */
    cr_assert(run_until(loop, sv, replaced, 5000), "%s", status_of(sv));
    cr_assert_neq(sv->apps[0]->procs[0].child._pid, b_pid);
    cr_assert_eq(kill(a_pid, 0), -1);
    cr_assert_eq(kill(b_pid, 0), -1);
    app_supervisor_stop(sv, 0);
    cr_assert(run_until(loop, sv, stopped, 5000));
    app_supervisor_free(sv);
    conf_free(c1);
    conf_free(c2);
    conf_free(c3);
    ev_loop_free(loop);
}

Test(app_supervisor, node_without_the_app_role_runs_nothing)
{
    struct ev_loop *loop = ev_loop_new();
    struct conf *conf = load("node lb1 { address 127.0.0.1; roles lb; }\n"
                             "node app1 { address 127.0.0.1; roles web app; }\n"
                             "app a { listen 127.0.0.1:1; run \"/bin/sleep 100\"; }\n");
    struct app_supervisor *sv = app_supervisor_start(loop, conf, "lb1");
    cr_assert_eq(sv->n_apps, 0);
    cr_assert_str_eq(status_of(sv), "[]");
    struct metrics_out out = {0};
    app_supervisor_metrics(sv, &out);
    cr_assert_eq(out.len, 0);
    metrics_out_fini(&out);
    app_supervisor_free(sv);
    sv = app_supervisor_start(loop, conf, "app1");
    cr_assert_eq(sv->n_apps, 1);
    app_supervisor_free(sv);                            /* kills and reaps the running process */
    sv = app_supervisor_start(loop, conf, "elsewhere"); /* unknown node: runs them */
    cr_assert_eq(sv->n_apps, 1);
    app_supervisor_free(sv);
    conf_free(conf);
    ev_loop_free(loop);
    cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1); /* no child left, not even a zombie */
}

Test(app_supervisor, null_is_accepted)
{
    cr_assert_eq(app_supervisor_reload(NULL, NULL), 0);
    app_supervisor_stop(NULL, 0);
    cr_assert(app_supervisor_is_stopped(NULL));
    struct json_w w;
    json_w_init(&w);
    app_supervisor_status_json(NULL, &w);
    cr_assert_eq(json_w_finish(&w), 0);
    cr_assert_str_eq(w.data, "[]");
    json_w_fini(&w);
    struct metrics_out out = {0};
    app_supervisor_metrics(NULL, &out);
    cr_assert_eq(out.len, 0);
    metrics_out_fini(&out);
    app_supervisor_free(NULL);
}

/* An illegal transition is refused (core/fsm.h): the state stays, the count goes up. */
Test(app_proc, an_illegal_transition_is_refused)
{
    cr_assert_eq(setenv("KEEL_FSM_STRICT", "0", 1), 0);
    struct app_proc *p = calloc(1, sizeof(*p));
    cr_assert_not_null(p);
    (void)snprintf(p->ctx, sizeof(p->ctx), "app test/0");
    p->state = APP_PROC_STOPPING;
    proc_set_state(p, APP_PROC_RUNNING, "test");
    cr_assert_eq(p->state, APP_PROC_STOPPING);
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_APP), 1);
    proc_set_state(p, APP_PROC_STOPPED, "test");
    cr_assert_eq(p->state, APP_PROC_STOPPED, "a legal one is made");
    free(p);
}
