/* SPDX-License-Identifier: MIT */
/* The application supervisor: apps (one per app NAME { } block, with their own copy of the
 * configuration) and their process slots, each an explicit state machine (enum
 * app_proc_state, one transition function) on top of a core/child.h child, which spawns,
 * logs the output, reaps, stops (SIGTERM, then SIGKILL) and restarts with backoff. This file
 * owns what an app means: health, crash loops, reloads, status and metrics. Health probes
 * are app_check.c; the configuration model is app_conf.c. */
#include "app/app_supervisor.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app/app_check.h"
#include "app/app_conf.h"
#include "app/app_spawn.h"
#include "core/child.h"
#include "core/conf.h"
#include "core/json.h"
#include "core/fsm.h"
#include "core/log.h"
#include "monitor/metrics.h"

extern char **environ;

#define APP_START_GRACE_MS 1000  /* without a check: starting -> running after this */
#define APP_FIRST_CHECK_MS 250   /* first probe after a start (or the interval if shorter) */
#define APP_REAP_AT_FREE_MS 1000 /* app_supervisor_free waits this long for SIGKILLed ones */

/* ------------------------------------------------------------------------------------------
 * Objects
 * ------------------------------------------------------------------------------------------ */

struct app_proc;

/* Process slot i of an app. */
struct app_proc {
    struct app *app;
    uint32_t index;
    uint16_t port;
    enum app_proc_state state;
    struct child child; /* the process: spawned, logged, reaped, stopped, restarted */
    /* STARTING/RUNNING: the start grace and the stable mark. */
    struct ev_timer timer;
    struct app_check *check; /* NULL without a check */
    uint64_t started_ms;
    bool has_started;  /* spawned at least once: the next spawn is a restart */
    bool is_stable;    /* up for APP_STABLE_MS since the last spawn */
    bool is_abandoned; /* survived SIGKILL: a stop no longer waits for it */
    bool in_crashloop; /* a crash loop episode is going on */
    bool is_healthy;
    uint32_t check_ok;   /* consecutive successful probes */
    uint32_t check_fail; /* consecutive failed probes */
    char check_reason[96];
    uint64_t restarts;
    struct app_exit_history exits;
    char last_exit[192];              /* "exit status 1", "killed by signal 9 (SIGKILL)", "" */
    char ctx[CONF_NAME_MAX + 16];     /* "app NAME/I": the supervisor's messages */
    char out_ctx[CONF_NAME_MAX + 24]; /* "app NAME": the process's own lines ("[PID]" added) */
};

struct app {
    struct app_supervisor *sv;
    struct conf_app *conf;      /* own copy */
    struct conf_app *next_conf; /* a reload changed it: the new one, once every process left */
    bool is_removed;            /* a reload removed it: freed once every process left */
    bool is_waiting;            /* starts once the apps being stopped for a reload are gone */
    char exec_path[PATH_MAX];
    struct child_ids ids;    /* of `user`, when keel is root */
    uint64_t restarts_total; /* across reloads that changed the app */
    struct app_proc *procs;
    uint32_t n_procs;
};

struct app_supervisor {
    struct ev_loop *loop;
    char node[CONF_NAME_MAX]; /* "" if the node has no name */
    struct app **apps;
    uint32_t n_apps;
    uint32_t cap_apps;
    bool is_stopping;
    uint64_t kill_by_ms; /* 0: none */
};

static void proc_start(struct app_proc *p);
static void proc_on_start(void *data, pid_t pid);
static void proc_on_exit(void *data, const struct child_exit *e);
static void proc_on_lost(void *data, pid_t pid);
static void sv_step(struct app_supervisor *sv);

/* ------------------------------------------------------------------------------------------
 * Pure parts: crash loops (the backoff is core/child.c's)
 * ------------------------------------------------------------------------------------------ */

bool app_exit_history_add(struct app_exit_history *h, uint64_t now_ms)
{
    h->at_ms[h->next] = now_ms;
    h->next = (h->next + 1) % APP_CRASHLOOP_EXITS;
    if (h->n < APP_CRASHLOOP_EXITS) {
        h->n++;
    }
    /* When full, the next slot holds the oldest of the last APP_CRASHLOOP_EXITS exits. */
    return h->n == APP_CRASHLOOP_EXITS && now_ms - h->at_ms[h->next] <= APP_CRASHLOOP_WINDOW_MS;
}

void app_exit_history_clear(struct app_exit_history *h)
{
    memset(h, 0, sizeof(*h));
}

/* ------------------------------------------------------------------------------------------
 * The state machine of a process slot
 * ------------------------------------------------------------------------------------------ */

static const char *const app_proc_state_names[] = {
    [APP_PROC_STOPPED] = "stopped",       [APP_PROC_STARTING] = "starting",
    [APP_PROC_RUNNING] = "running",       [APP_PROC_BACKOFF] = "backoff",
    [APP_PROC_CRASHLOOP] = "crashloop",   [APP_PROC_STOPPING] = "stopping",
    [APP_PROC_RESTARTING] = "restarting",
};

const char *app_proc_state_name(enum app_proc_state state)
{
    return (unsigned)state <= APP_PROC_RESTARTING ? app_proc_state_names[state] : "?";
}

#define BIT(s) (1u << (s))
/* Legal transitions: from -> the set of states it may go to (docs/internals/app_supervisor.md
 * shows the same table with the events behind each one). */
static const uint32_t legal_next[] = {
    /* spawned; or the spawn failed (fork, pipes), which counts as an exit */
    [APP_PROC_STOPPED] = BIT(APP_PROC_STARTING) | BIT(APP_PROC_BACKOFF) | BIT(APP_PROC_CRASHLOOP),
    /* known good; exited; stop requested */
    [APP_PROC_STARTING] = BIT(APP_PROC_RUNNING) | BIT(APP_PROC_BACKOFF) | BIT(APP_PROC_CRASHLOOP) |
                          BIT(APP_PROC_STOPPING),
    /* exited; stop requested; unhealthy for `fall` checks */
    [APP_PROC_RUNNING] = BIT(APP_PROC_BACKOFF) | BIT(APP_PROC_CRASHLOOP) | BIT(APP_PROC_STOPPING) |
                         BIT(APP_PROC_RESTARTING),
    /* respawned; the respawn failed; stop requested (nothing to signal) */
    [APP_PROC_BACKOFF] = BIT(APP_PROC_STARTING) | BIT(APP_PROC_BACKOFF) | BIT(APP_PROC_CRASHLOOP) |
                         BIT(APP_PROC_STOPPED),
    [APP_PROC_CRASHLOOP] = BIT(APP_PROC_STARTING) | BIT(APP_PROC_BACKOFF) |
                           BIT(APP_PROC_CRASHLOOP) | BIT(APP_PROC_STOPPED),
    /* exited (or given up on after SIGKILL) */
    [APP_PROC_STOPPING] = BIT(APP_PROC_STOPPED),
    /* exited: restart after the backoff delay; stop requested (the SIGTERM is already sent) */
    [APP_PROC_RESTARTING] =
        BIT(APP_PROC_BACKOFF) | BIT(APP_PROC_CRASHLOOP) | BIT(APP_PROC_STOPPING),
};

/* The only place a process slot changes state: checks the transition (an illegal one is
 * refused, core/fsm.h), logs it. */
static void proc_set_state(struct app_proc *p, enum app_proc_state to, const char *reason)
{
    enum app_proc_state from = p->state;
    if ((legal_next[from] & BIT(to)) == 0) {
        fsm_illegal(FSM_MACHINE_APP, p->ctx, app_proc_state_name(from), app_proc_state_name(to),
                    reason);
        return;
    }
    log_notice(p->ctx, "%s -> %s (%s)", app_proc_state_name(from), app_proc_state_name(to), reason);
    p->state = to;
}

/* ------------------------------------------------------------------------------------------
 * Spawning (the fork and exec, the output and the exit are core/child.c's)
 * ------------------------------------------------------------------------------------------ */

static void listen_ip(const struct conf_app *c, char *out, size_t size)
{
    /* listen.text is "ip:port" or "[ip]:port". */
    const char *text = c->listen.text;
    const char *colon = strrchr(text, ':');
    size_t len = colon != NULL ? (size_t)(colon - text) : strlen(text);
    if (len >= 2 && text[0] == '[') {
        text++;
        len -= 2;
    }
    (void)snprintf(out, size, "%.*s", (int)len, text);
}

static const struct child_ops proc_child_ops = {
    .on_start = proc_on_start,
    .on_exit = proc_on_exit,
    .on_lost = proc_on_lost,
};

/* Start process p's child, which restarts it with the app's backoff from then on. Returns
 * 0, or -errno when it could not start (then its child reported it through proc_on_exit,
 * and retries). */
static int proc_spawn(struct app_proc *p)
{
    struct app *a = p->app;
    struct app_supervisor *sv = a->sv;
    const struct conf_app *c = a->conf;
    char ip[64], port_kv[16], host_kv[80], app_kv[CONF_NAME_MAX + 16], node_kv[CONF_NAME_MAX + 16],
        listen_arg[96];
    listen_ip(c, ip, sizeof(ip));
    (void)snprintf(port_kv, sizeof(port_kv), "PORT=%u", p->port);
    (void)snprintf(host_kv, sizeof(host_kv), "HOST=%s", ip);
    (void)snprintf(app_kv, sizeof(app_kv), "KEEL_APP=%s", c->name);
    (void)snprintf(node_kv, sizeof(node_kv), "KEEL_NODE=%s", sv->node);
    char *vars[] = {port_kv, host_kv, app_kv, node_kv};
    char **envp = app_spawn_env(environ, c, vars, sv->node[0] != '\0' ? 4 : 3);
    if (envp == NULL) {
        return -ENOMEM;
    }
    (void)snprintf(listen_arg, sizeof(listen_arg), strchr(ip, ':') != NULL ? "[%s]:%u" : "%s:%u",
                   ip, p->port);
    char *demo_argv[] = {"keel", "demo-app", "--listen", listen_arg, "--name", sv->node, NULL};
    if (sv->node[0] == '\0') {
        demo_argv[4] = NULL;
    }
    struct child_spec spec = {.path = a->exec_path,
                              .argv = c->kind == CONF_APP_BUILTIN_DEMO ? demo_argv : c->argv,
                              .envp = envp,
                              .directory = c->directory[0] != '\0' ? c->directory : NULL,
                              .ids = &a->ids,
                              .user = c->user,
                              .output = CHILD_OUTPUT_LOG,
                              .is_group_stopped = true,
                              .ctx = p->ctx,
                              .out_ctx = p->out_ctx,
                              .is_pid_in_out_ctx = true};
    struct child_restart policy = {.initial_ms = c->backoff_initial_ms,
                                   .max_ms = c->backoff_max_ms,
                                   .stable_ms = APP_STABLE_MS};
    child_set_restart(&p->child, &policy);
    int rc = child_start(&p->child, &spec); /* copies spec */
    free(envp);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Exits and restarts
 * ------------------------------------------------------------------------------------------ */

/* After an unexpected exit (or a failed spawn), which the child restarts after
 * restart_in_ms: log it, detect crash loops. */
static void proc_restarting(struct app_proc *p, pid_t pid, uint64_t uptime_ms,
                            uint32_t restart_in_ms)
{
    const struct conf_app *c = p->app->conf;
    uint64_t now = ev_now_ms(p->app->sv->loop);
    bool is_loop = app_exit_history_add(&p->exits, now);
    char up[32], wait[32];
    child_format_ms(uptime_ms, up, sizeof(up));
    child_format_ms(restart_in_ms, wait, sizeof(wait));
    if (pid > 0) {
        log_warn(p->ctx, "pid %d exited (%s) after %s; restarting in %s", (int)pid, p->last_exit,
                 up, wait);
    } else {
        log_warn(p->ctx, "%s; retrying in %s", p->last_exit, wait);
    }
    if (is_loop && !p->in_crashloop) {
        char max[32];
        child_format_ms(c->backoff_max_ms, max, sizeof(max));
        p->in_crashloop = true;
        log_error(p->ctx,
                  "crash loop: %u exits within %us, the last: %s; still restarting, with "
                  "delays up to %s, until it stays up %us",
                  APP_CRASHLOOP_EXITS, APP_CRASHLOOP_WINDOW_MS / 1000, p->last_exit, max,
                  APP_STABLE_MS / 1000);
    }
    proc_set_state(p, p->in_crashloop ? APP_PROC_CRASHLOOP : APP_PROC_BACKOFF, p->last_exit);
}

/* The process is gone (reaped, its output logged), or a spawn failed. */
static void proc_on_exit(void *data, const struct child_exit *e)
{
    struct app_proc *p = data;
    struct app_supervisor *sv = p->app->sv;
    if (e->pid == 0) {
        (void)snprintf(p->last_exit, sizeof(p->last_exit), "cannot start a process: %s",
                       strerror(-e->start_error));
        proc_restarting(p, 0, 0, e->restart_in_ms);
        return;
    }
    /* Whatever it left behind in its group goes too (a new instance needs the port). */
    (void)kill(-e->pid, SIGKILL);
    app_check_stop(p->check);
    p->is_healthy = false;
    p->check_ok = 0;
    p->check_fail = 0;
    ev_timer_stop(sv->loop, &p->timer);
    child_describe_exit(e->wstatus, p->last_exit, sizeof(p->last_exit));
    if (p->state == APP_PROC_RESTARTING) {
        char how[sizeof(p->last_exit)];
        (void)snprintf(how, sizeof(how), "%s", p->last_exit);
        (void)snprintf(p->last_exit, sizeof(p->last_exit), "restarted: unhealthy (%.60s), %.96s",
                       p->check_reason, how);
    }
    if (p->state == APP_PROC_STOPPING || !e->is_restarting) {
        (void)child_stop(&p->child, SIGTERM, 0); /* a restart, if any, is not wanted */
        char reason[224];
        (void)snprintf(reason, sizeof(reason), "pid %d %s", (int)e->pid, p->last_exit);
        proc_set_state(p, APP_PROC_STOPPED, reason);
        sv_step(sv);
        return;
    }
    proc_restarting(p, e->pid, e->uptime_ms, e->restart_in_ms);
}

/* The process survived SIGKILL (its child logged it): a stop no longer waits for it. */
static void proc_on_lost(void *data, pid_t pid)
{
    struct app_proc *p = data;
    (void)pid;
    p->is_abandoned = true;
    sv_step(p->app->sv);
}

/* A process started: the first one, or a restart after an exit. */
static void proc_on_start(void *data, pid_t pid)
{
    struct app_proc *p = data;
    if (p->has_started) {
        p->restarts++;
        p->app->restarts_total++;
    }
    p->has_started = true;
    p->is_stable = false;
    p->is_abandoned = false;
    p->is_healthy = false;
    p->check_ok = 0;
    p->check_fail = 0;
    p->check_reason[0] = '\0';
    p->started_ms = ev_now_ms(p->app->sv->loop);
    char reason[128];
    (void)snprintf(reason, sizeof(reason), "pid %d, PORT=%u", (int)pid, p->port);
    proc_set_state(p, APP_PROC_STARTING, reason);
    if (p->check != NULL) {
        uint32_t interval = p->app->conf->check.interval_ms;
        app_check_start(p->check, interval < APP_FIRST_CHECK_MS ? interval : APP_FIRST_CHECK_MS);
        ev_timer_start(p->app->sv->loop, &p->timer, APP_STABLE_MS);
    } else {
        ev_timer_start(p->app->sv->loop, &p->timer, APP_START_GRACE_MS);
    }
}

/* Spawn p (from STOPPED). A failure is reported and retried by its child (proc_on_exit). */
static void proc_start(struct app_proc *p)
{
    int rc = proc_spawn(p);
    if (rc == -ENOMEM && child_state(&p->child) == CHILD_STOPPED) {
        /* Not even the spawn's copy: nothing retries it. */
        (void)snprintf(p->last_exit, sizeof(p->last_exit), "cannot start a process: %s",
                       strerror(-rc));
        log_error(p->ctx, "%s", p->last_exit);
    }
}

/* The timer of a running process: the start grace, then the stable mark. */
static void proc_on_uptime(struct app_proc *p)
{
    struct ev_loop *loop = p->app->sv->loop;
    uint64_t up = ev_now_ms(loop) - p->started_ms;
    if (p->state == APP_PROC_STARTING && p->check == NULL && up >= APP_START_GRACE_MS) {
        proc_set_state(p, APP_PROC_RUNNING, "up for 1s");
    }
    if (!p->is_stable && up >= APP_STABLE_MS) {
        p->is_stable = true; /* the child's backoff starts over by itself after a stable run */
        app_exit_history_clear(&p->exits);
        if (p->in_crashloop) {
            p->in_crashloop = false;
            log_notice(p->ctx, "pid %d up for %us: the crash loop is over",
                       (int)child_pid(&p->child), APP_STABLE_MS / 1000);
        }
    }
    if (!p->is_stable) {
        ev_timer_start(loop, &p->timer, APP_STABLE_MS - up);
    }
}

static void on_proc_timer(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct app_proc *p = t->data;
    if (p->state == APP_PROC_STARTING || p->state == APP_PROC_RUNNING) {
        proc_on_uptime(p);
    }
}

/* Begin a graceful stop of p. */
static void proc_stop(struct app_proc *p, uint64_t kill_by_ms)
{
    struct ev_loop *loop = p->app->sv->loop;
    switch (p->state) {
    case APP_PROC_STOPPED:
    case APP_PROC_STOPPING:
        return;
    case APP_PROC_RESTARTING:
        /* SIGTERM already sent and SIGKILL scheduled: it only must not come back */
        (void)child_stop(&p->child, SIGTERM, 0);
        proc_set_state(p, APP_PROC_STOPPING, "stop requested while restarting");
        return;
    case APP_PROC_BACKOFF:
    case APP_PROC_CRASHLOOP:
        (void)child_stop(&p->child, SIGTERM, 0); /* nothing to signal: no restart */
        proc_set_state(p, APP_PROC_STOPPED, "stop requested while waiting to restart");
        return;
    case APP_PROC_STARTING:
    case APP_PROC_RUNNING:
        break;
    }
    uint64_t now = ev_now_ms(loop);
    uint64_t wait = p->app->conf->stop_timeout_ms;
    if (kill_by_ms != 0) {
        wait = kill_by_ms <= now ? 0 : wait < kill_by_ms - now ? wait : kill_by_ms - now;
    }
    app_check_stop(p->check);
    ev_timer_stop(loop, &p->timer);
    pid_t pid = child_pid(&p->child);
    (void)child_stop(&p->child, SIGTERM, (uint32_t)wait);
    char reason[96];
    (void)snprintf(reason, sizeof(reason), "SIGTERM sent to pid %d, SIGKILL in %lums", (int)pid,
                   (unsigned long)wait);
    proc_set_state(p, APP_PROC_STOPPING, reason);
}

/* ------------------------------------------------------------------------------------------
 * Health
 * ------------------------------------------------------------------------------------------ */

/* A process that was healthy failed `fall` checks in a row: it runs but does not serve (a
 * deadlock, a lost database connection, a full disk). Stop it as a stop would (SIGTERM, then
 * SIGKILL after stop_timeout) and restart it when it has exited, with the backoff and crash
 * loop accounting of a crash. A process that never became healthy is left alone: it may be
 * slow to start, and it gets no traffic anyway. */
static void proc_restart_unhealthy(struct app_proc *p, const char *reason)
{
    pid_t pid = child_pid(&p->child);
    log_warn(p->ctx, "pid %d is unhealthy: %s (%u failed checks): restarting it", (int)pid, reason,
             p->check_fail);
    app_check_stop(p->check);
    ev_timer_stop(p->app->sv->loop, &p->timer);
    child_stop_and_restart(&p->child, SIGTERM, p->app->conf->stop_timeout_ms);
    char why[160];
    (void)snprintf(why, sizeof(why), "unhealthy: %s; SIGTERM sent to pid %d, SIGKILL in %ums",
                   reason, (int)pid, p->app->conf->stop_timeout_ms);
    proc_set_state(p, APP_PROC_RESTARTING, why);
}

static void on_check_result(void *data, bool is_ok, const char *reason)
{
    struct app_proc *p = data;
    if (p->state != APP_PROC_STARTING && p->state != APP_PROC_RUNNING) {
        return;
    }
    const struct conf_check *k = &p->app->conf->check;
    (void)snprintf(p->check_reason, sizeof(p->check_reason), "%s", reason);
    if (is_ok) {
        p->check_fail = 0;
        if (!p->is_healthy && ++p->check_ok >= k->rise) {
            p->is_healthy = true;
            log_notice(p->ctx, "pid %d is healthy (%s)", (int)child_pid(&p->child), reason);
            if (p->state == APP_PROC_STARTING) {
                proc_set_state(p, APP_PROC_RUNNING, "healthy");
            }
        }
        return;
    }
    p->check_ok = 0;
    if (p->is_healthy && ++p->check_fail >= k->fall) {
        p->is_healthy = false;
        proc_restart_unhealthy(p, reason);
    }
}

/* ------------------------------------------------------------------------------------------
 * Apps
 * ------------------------------------------------------------------------------------------ */

static bool app_is_stopped(const struct app *a)
{
    for (uint32_t i = 0; i < a->n_procs; i++) {
        if (a->procs[i].state != APP_PROC_STOPPED && !a->procs[i].is_abandoned) {
            return false;
        }
    }
    return true;
}

/* Boot or reload time (blocking lookups): the command in PATH, the ids of `user`. */
static int app_resolve(struct app *a)
{
    const struct conf_app *c = a->conf;
    if (!app_spawn_find_command(c, getenv("PATH"), a->exec_path, sizeof(a->exec_path))) {
        log_warn("app", "app %s: command \"%s\" not found in PATH", c->name, c->argv[0]);
    }
    a->ids.is_set = false;
    if (c->user[0] == '\0') {
        return 0;
    }
    struct errbuf eb;
    bool is_ignored = false;
    if (child_ids_resolve(c->user, &a->ids, &is_ignored, &eb) != 0) {
        log_error("app", "app %s: %s; not starting it", c->name, eb.msg);
        return -1;
    }
    if (is_ignored) {
        log_warn("app", "app %s: keel is not running as root: \"user %s\" is ignored", c->name,
                 c->user);
    }
    return 0;
}

/* Build the process slots of a->conf (all STOPPED). Returns 0 or -ENOMEM. */
static int app_build_procs(struct app *a)
{
    const struct conf_app *c = a->conf;
    struct app_proc *procs = calloc(c->processes, sizeof(*procs));
    if (procs == NULL) {
        return -ENOMEM;
    }
    char ip[64];
    listen_ip(c, ip, sizeof(ip));
    for (uint32_t i = 0; i < c->processes; i++) {
        struct app_proc *p = &procs[i];
        p->app = a;
        p->index = i;
        p->port = app_conf_port(c, i);
        p->state = APP_PROC_STOPPED;
        child_init(&p->child, a->sv->loop, &proc_child_ops, p);
        ev_timer_init(&p->timer, on_proc_timer, p, "app process");
        (void)snprintf(p->ctx, sizeof(p->ctx), "app %s/%u", c->name, i);
        (void)snprintf(p->out_ctx, sizeof(p->out_ctx), "app %s", c->name);
        if (c->check.type != CONF_CHECK_NONE) {
            struct sockaddr_storage sa = c->listen.sa;
            char host[96];
            if (sa.ss_family == AF_INET6) {
                ((struct sockaddr_in6 *)&sa)->sin6_port = htons(p->port);
                (void)snprintf(host, sizeof(host), "[%s]:%u", strcmp(ip, "::") == 0 ? "::1" : ip,
                               p->port);
            } else {
                ((struct sockaddr_in *)&sa)->sin_port = htons(p->port);
                (void)snprintf(host, sizeof(host), "%s:%u",
                               strcmp(ip, "0.0.0.0") == 0 ? "127.0.0.1" : ip, p->port);
            }
            p->check = app_check_new(a->sv->loop, &c->check, (struct sockaddr *)&sa,
                                     c->listen.salen, host, on_check_result, p);
            if (p->check == NULL) {
                for (uint32_t k = 0; k < i; k++) {
                    app_check_free(procs[k].check);
                }
                free(procs);
                return -ENOMEM;
            }
        }
    }
    a->procs = procs;
    a->n_procs = c->processes;
    return 0;
}

/* Release the slots (every process must be gone or abandoned). */
static void app_free_procs(struct app *a)
{
    struct ev_loop *loop = a->sv->loop;
    for (uint32_t i = 0; i < a->n_procs; i++) {
        struct app_proc *p = &a->procs[i];
        child_fini(&p->child);
        ev_timer_stop(loop, &p->timer);
        app_check_free(p->check);
        p->check = NULL;
    }
    ev_free_later(loop, a->procs); /* watchers inside: a pending event may still point there */
    a->procs = NULL;
    a->n_procs = 0;
}

static void app_start(struct app *a)
{
    a->is_waiting = false;
    if (app_resolve(a) != 0) {
        for (uint32_t i = 0; i < a->n_procs; i++) {
            (void)snprintf(a->procs[i].last_exit, sizeof(a->procs[i].last_exit),
                           "not started: unknown user %s", a->conf->user);
        }
        return;
    }
    log_notice("app", "starting app %s: %u process%s on %s%s", a->conf->name, a->n_procs,
               a->n_procs == 1 ? "" : "es", a->conf->listen.text, a->n_procs > 1 ? " and up" : "");
    for (uint32_t i = 0; i < a->n_procs; i++) {
        proc_start(&a->procs[i]);
    }
}

static void app_stop(struct app *a, uint64_t kill_by_ms)
{
    a->is_waiting = false;
    for (uint32_t i = 0; i < a->n_procs; i++) {
        proc_stop(&a->procs[i], kill_by_ms);
    }
}

/* A new app for c (copied), with its slots, not started. NULL on OOM. */
static struct app *app_new(struct app_supervisor *sv, const struct conf_app *c)
{
    struct app *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return NULL;
    }
    a->sv = sv;
    a->conf = app_conf_dup(c);
    if (a->conf == NULL || app_build_procs(a) != 0) {
        app_conf_free(a->conf);
        free(a);
        return NULL;
    }
    return a;
}

static void app_free(struct app *a)
{
    struct ev_loop *loop = a->sv->loop;
    app_free_procs(a);
    app_conf_free(a->conf);
    app_conf_free(a->next_conf);
    ev_free_later(loop, a); /* its slots' pending events (skipped) come first */
}

static int sv_add(struct app_supervisor *sv, struct app *a)
{
    if (sv->n_apps == sv->cap_apps) {
        uint32_t cap = sv->cap_apps == 0 ? 4 : sv->cap_apps * 2;
        struct app **v = realloc(sv->apps, cap * sizeof(*v));
        if (v == NULL) {
            return -ENOMEM;
        }
        sv->apps = v;
        sv->cap_apps = cap;
    }
    sv->apps[sv->n_apps++] = a;
    return 0;
}

/* After any process stopped: retire what a reload removed, swap in what it changed, and
 * start what waits once nothing is being retired (the ports may be the same). */
static void sv_step(struct app_supervisor *sv)
{
    bool is_retiring = false;
    for (uint32_t i = 0; i < sv->n_apps;) {
        struct app *a = sv->apps[i];
        bool is_leaving = a->is_removed || a->next_conf != NULL;
        if (is_leaving && app_is_stopped(a)) {
            if (a->is_removed) {
                log_notice("app", "app %s removed", a->conf->name);
                sv->apps[i] = sv->apps[--sv->n_apps];
                app_free(a);
                continue;
            }
            struct conf_app *old = a->conf;
            app_free_procs(a);
            a->conf = a->next_conf;
            a->next_conf = NULL;
            app_conf_free(old);
            if (app_build_procs(a) != 0) {
                log_error("app", "app %s: out of memory: removing it", a->conf->name);
                sv->apps[i] = sv->apps[--sv->n_apps];
                app_free(a);
                continue;
            }
            a->is_waiting = true;
        } else if (is_leaving) {
            is_retiring = true;
        }
        i++;
    }
    if (is_retiring || sv->is_stopping) {
        return;
    }
    for (uint32_t i = 0; i < sv->n_apps; i++) {
        if (sv->apps[i]->is_waiting) {
            app_start(sv->apps[i]);
        }
    }
}

static struct app *sv_find(struct app_supervisor *sv, const char *name)
{
    for (uint32_t i = 0; i < sv->n_apps; i++) {
        if (strcmp(sv->apps[i]->conf->name, name) == 0) {
            return sv->apps[i];
        }
    }
    return NULL;
}

/* Whether this node runs apps: unless it is named, defined, and lacks the app role. */
static bool node_runs_apps(const struct conf *conf, const char *node)
{
    if (node == NULL || node[0] == '\0') {
        return true;
    }
    const struct conf_node *n = conf_find_node(conf, node);
    return n == NULL || (n->roles & CONF_ROLE_APP) != 0;
}

/* ------------------------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------------------------ */

struct app_supervisor *app_supervisor_start(struct ev_loop *loop, const struct conf *conf,
                                            const char *node_name)
{
    struct app_supervisor *sv = calloc(1, sizeof(*sv));
    if (sv == NULL) {
        return NULL;
    }
    sv->loop = loop;
    if (node_name != NULL) {
        (void)snprintf(sv->node, sizeof(sv->node), "%s", node_name); /* names are < 64 */
    }
    if (app_supervisor_reload(sv, conf) != 0) {
        log_error("app", "out of memory starting the applications");
    }
    return sv;
}

int app_supervisor_reload(struct app_supervisor *sv, const struct conf *conf)
{
    if (sv == NULL || sv->is_stopping) {
        return 0;
    }
    bool runs = node_runs_apps(conf, sv->node);
    if (!runs && conf->n_apps > 0) {
        log_notice("app", "node %s does not have the app role: running none of the %u apps",
                   sv->node, conf->n_apps);
    }
    uint32_t n_wanted = runs ? conf->n_apps : 0;
    /* Running apps the new configuration removes or changes. */
    for (uint32_t i = 0; i < sv->n_apps; i++) {
        struct app *a = sv->apps[i];
        const struct conf_app *c = NULL;
        for (uint32_t k = 0; k < n_wanted && c == NULL; k++) {
            if (strcmp(conf->apps[k].name, a->conf->name) == 0) {
                c = &conf->apps[k];
            }
        }
        bool was_leaving = a->is_removed || a->next_conf != NULL;
        app_conf_free(a->next_conf); /* an older reload's change that never got applied */
        a->next_conf = NULL;
        a->is_removed = false;
        if (c == NULL) {
            log_notice("app", "app %s is no longer in the configuration: stopping it",
                       a->conf->name);
            a->is_removed = true;
        } else if (!app_conf_equal(a->conf, c) || was_leaving) {
            /* Changed; or back as it was while it was being stopped: it starts again once
             * stopped. */
            a->next_conf = app_conf_dup(c);
            if (a->next_conf == NULL) {
                log_error("app", "app %s: out of memory applying its new configuration",
                          a->conf->name);
                continue;
            }
            log_notice("app", "app %s changed: restarting it", a->conf->name);
        } else {
            continue;
        }
        app_stop(a, 0);
    }
    /* New apps wait (in sv_step) until the ones being stopped are gone. */
    int rc = 0;
    for (uint32_t k = 0; k < n_wanted; k++) {
        if (sv_find(sv, conf->apps[k].name) != NULL) {
            continue;
        }
        struct app *a = app_new(sv, &conf->apps[k]);
        if (a == NULL || sv_add(sv, a) != 0) {
            log_error("app", "app %s: out of memory: not started", conf->apps[k].name);
            if (a != NULL) {
                app_free(a);
            }
            rc = -ENOMEM;
            continue;
        }
        a->is_waiting = true;
    }
    sv_step(sv);
    return rc;
}

void app_supervisor_stop(struct app_supervisor *sv, uint64_t kill_by_ms)
{
    if (sv == NULL) {
        return;
    }
    sv->is_stopping = true;
    sv->kill_by_ms = kill_by_ms;
    bool any = false;
    for (uint32_t i = 0; i < sv->n_apps; i++) {
        any = any || !app_is_stopped(sv->apps[i]);
    }
    if (any) {
        log_notice("app", "stopping the applications");
    }
    for (uint32_t i = 0; i < sv->n_apps; i++) {
        app_stop(sv->apps[i], kill_by_ms);
    }
}

bool app_supervisor_is_stopped(const struct app_supervisor *sv)
{
    if (sv == NULL) {
        return true;
    }
    for (uint32_t i = 0; i < sv->n_apps; i++) {
        if (!app_is_stopped(sv->apps[i])) {
            return false;
        }
    }
    return true;
}

void app_supervisor_free(struct app_supervisor *sv)
{
    if (sv == NULL) {
        return;
    }
    /* Shutdown: whatever runs now is killed; reap it so that no zombie or orphan stays.
     * Every group is killed first, then each reaped, within one shared deadline. */
    for (uint32_t i = 0; i < sv->n_apps; i++) {
        struct app *a = sv->apps[i];
        for (uint32_t k = 0; k < a->n_procs; k++) {
            child_signal(&a->procs[k].child, SIGKILL, true);
        }
    }
    uint64_t deadline = child_clock_ms() + APP_REAP_AT_FREE_MS;
    for (uint32_t i = 0; i < sv->n_apps; i++) {
        struct app *a = sv->apps[i];
        for (uint32_t k = 0; k < a->n_procs; k++) {
            pid_t pid = child_kill_wait(&a->procs[k].child, deadline);
            if (pid != 0) {
                log_warn(a->procs[k].ctx, "pid %d killed at shutdown", (int)pid);
            }
        }
    }
    for (uint32_t i = 0; i < sv->n_apps; i++) {
        app_free(sv->apps[i]);
    }
    free(sv->apps);
    ev_free_later(sv->loop, sv);
}

/* ------------------------------------------------------------------------------------------
 * Status and metrics
 * ------------------------------------------------------------------------------------------ */

void app_supervisor_status_json(struct app_supervisor *sv, struct json_w *w)
{
    json_w_begin_array(w);
    for (uint32_t i = 0; sv != NULL && i < sv->n_apps; i++) {
        const struct app *a = sv->apps[i];
        const struct conf_app *c = a->conf;
        json_w_begin_object(w);
        json_w_key_str(w, "name", c->name);
        json_w_key_str(w, "kind", c->kind == CONF_APP_BUILTIN_DEMO ? "builtin demo" : "command");
        json_w_key_str(w, "listen", c->listen.text);
        json_w_key_uint(w, "restarts", a->restarts_total);
        json_w_key(w, "processes");
        json_w_begin_array(w);
        for (uint32_t k = 0; k < a->n_procs; k++) {
            const struct app_proc *p = &a->procs[k];
            json_w_begin_object(w);
            json_w_key_uint(w, "index", p->index);
            json_w_key_int(w, "pid", child_pid(&p->child));
            json_w_key_uint(w, "port", p->port);
            json_w_key_str(w, "state", app_proc_state_name(p->state));
            json_w_key_uint(w, "restarts", p->restarts);
            json_w_key_str(w, "last_exit", p->last_exit[0] != '\0' ? p->last_exit : NULL);
            json_w_key_bool(w, "healthy",
                            p->is_healthy || (p->check == NULL && child_is_running(&p->child)));
            json_w_key_str(w, "check", p->check_reason);
            json_w_key_bool(w, "crashloop", p->in_crashloop);
            json_w_end_object(w);
        }
        json_w_end_array(w);
        json_w_end_object(w);
    }
    json_w_end_array(w);
}

enum { AM_UP = 0, AM_HEALTHY, AM_CRASHLOOP, AM_RESTARTS };

static const struct metric_desc app_metrics[] = {
    [AM_UP] = {"keel_app_process_up", METRIC_GAUGE,
               "Whether the app process is running (1) or not (0).",
               METRIC_LABELS("app", "process")},
    [AM_HEALTHY] = {"keel_app_process_healthy", METRIC_GAUGE,
                    "Whether the app process passes its health check (running, without a check).",
                    METRIC_LABELS("app", "process")},
    [AM_CRASHLOOP] = {"keel_app_crashloop", METRIC_GAUGE,
                      "Whether the app process is in a crash loop episode.",
                      METRIC_LABELS("app", "process")},
    [AM_RESTARTS] = {"keel_app_restarts_total", METRIC_COUNTER,
                     "Restarts of the app's processes after they exited.", METRIC_LABELS("app")},
};

const struct metric_table app_metric_table =
    METRIC_TABLE("Applications (app role)", "src/app/app_supervisor.c", app_metrics);

/* The value of gauge g (AM_UP, AM_HEALTHY, AM_CRASHLOOP) for one process. */
static bool proc_gauge(const struct app_proc *p, int g)
{
    switch (g) {
    case AM_UP:
        return child_is_running(&p->child) && p->state != APP_PROC_STOPPING &&
               p->state != APP_PROC_RESTARTING;
    case AM_HEALTHY:
        return p->is_healthy || (p->check == NULL && child_is_running(&p->child));
    default:
        return p->in_crashloop;
    }
}

void app_supervisor_metrics(struct app_supervisor *sv, struct metrics_out *out)
{
    if (sv == NULL || sv->n_apps == 0) {
        return;
    }
    for (int g = AM_UP; g <= AM_CRASHLOOP; g++) {
        metrics_family(out, &app_metrics[g]);
        for (uint32_t i = 0; i < sv->n_apps; i++) {
            const struct app *a = sv->apps[i];
            for (uint32_t k = 0; k < a->n_procs; k++) {
                char index[16];
                (void)snprintf(index, sizeof(index), "%u", a->procs[k].index);
                metrics_sample_u64(out, &app_metrics[g],
                                   (const char *const[]){a->conf->name, index},
                                   proc_gauge(&a->procs[k], g) ? 1 : 0);
            }
        }
    }
    metrics_family(out, &app_metrics[AM_RESTARTS]);
    for (uint32_t i = 0; i < sv->n_apps; i++) {
        metrics_sample_u64(out, &app_metrics[AM_RESTARTS],
                           (const char *const[]){sv->apps[i]->conf->name},
                           sv->apps[i]->restarts_total);
    }
}
