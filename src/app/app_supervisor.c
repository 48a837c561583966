/* SPDX-License-Identifier: MIT */
/* The application supervisor: apps (one per app NAME { } block, with their own copy of the
 * configuration) and their process slots, each an explicit state machine (enum
 * app_proc_state, one transition function). It owns spawning (fork + execve, nothing but
 * async-signal-safe calls in the child), output capture, exit detection (pidfd, or polling
 * where pidfds are missing), restart backoff and crash loops, graceful stops and reloads.
 * Health probes are app_check.c; the configuration model is app_conf.c. */
#include "app/app_supervisor.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app/app_check.h"
#include "app/app_conf.h"
#include "app/app_output.h"
#include "app/app_spawn.h"
#include "core/conf.h"
#include "core/fsm.h"
#include "core/log.h"
#include "monitor/metrics.h"

extern char **environ;

#define APP_READS_AT_EXIT 256    /* at most 1 MiB drained after an exit */
#define APP_LOG_RATE 100         /* output lines per second per process ... */
#define APP_LOG_BURST 200        /* ... with bursts up to this; the rest is counted, dropped */
#define APP_START_GRACE_MS 1000  /* without a check: starting -> running after this */
#define APP_KILL_GRACE_MS 2000   /* after SIGKILL, a stop waits this long, then gives up */
#define APP_POLL_MS 100          /* exit polling when pidfd_open is missing */
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
    pid_t pid; /* 0: no process */
    int pidfd; /* -1: none (the exit is found by polling) */
    struct ev_io pidio;
    /* One timer, whose meaning is the state's: STARTING/RUNNING: the start grace and the
     * stable mark; BACKOFF/CRASHLOOP: the restart; STOPPING: SIGKILL, then giving up. */
    struct ev_timer timer;
    struct app_output out[2];
    struct app_check *check; /* NULL without a check */
    uint64_t started_ms;
    bool has_started;  /* spawned at least once: the next spawn is a restart */
    bool is_stable;    /* up for APP_STABLE_MS since the last spawn */
    bool is_killed;    /* SIGKILL sent while stopping */
    bool is_abandoned; /* survived SIGKILL: a stop no longer waits for it */
    bool in_crashloop; /* a crash loop episode is going on */
    bool is_healthy;
    uint32_t check_ok;   /* consecutive successful probes */
    uint32_t check_fail; /* consecutive failed probes */
    char check_reason[96];
    uint64_t restarts;
    struct app_backoff backoff;
    struct app_exit_history exits;
    char last_exit[192]; /* "exit status 1", "killed by signal 9 (SIGKILL)", "" */
    uint64_t log_tokens; /* output lines allowed, in thousandths */
    uint64_t log_refill_ms;
    uint64_t lines_dropped;
    char ctx[CONF_NAME_MAX + 16];     /* "app NAME/I": the supervisor's messages */
    char out_ctx[CONF_NAME_MAX + 24]; /* "app NAME[PID]": the process's own lines */
};

struct app {
    struct app_supervisor *sv;
    struct conf_app *conf;      /* own copy */
    struct conf_app *next_conf; /* a reload changed it: the new one, once every process left */
    bool is_removed;            /* a reload removed it: freed once every process left */
    bool is_waiting;            /* starts once the apps being stopped for a reload are gone */
    char exec_path[PATH_MAX];
    struct app_ids ids;      /* of `user`, when keel is root */
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
    uint64_t kill_by_ms;   /* 0: none */
    struct ev_timer poll;  /* reaps processes that have no pidfd */
    uint32_t n_polled;     /* how many of those there are */
    bool has_warned_pidfd; /* "pidfd_open unavailable" logged */
};

static void proc_start(struct app_proc *p);
static void sv_step(struct app_supervisor *sv);

/* ------------------------------------------------------------------------------------------
 * Pure parts: backoff and crash loops
 * ------------------------------------------------------------------------------------------ */

uint32_t app_backoff_next(struct app_backoff *b, uint64_t uptime_ms, uint32_t initial_ms,
                          uint32_t max_ms)
{
    if (uptime_ms >= APP_STABLE_MS || b->next_ms == 0) {
        b->next_ms = initial_ms;
    }
    uint32_t delay = b->next_ms < max_ms ? b->next_ms : max_ms;
    b->next_ms = delay > max_ms / 2 ? max_ms : delay * 2;
    return delay;
}

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
 * Output capture
 * ------------------------------------------------------------------------------------------ */

static void proc_log_line(struct app_proc *p, const char *line, size_t len, bool is_cut)
{
    uint64_t now = ev_now_ms(p->app->sv->loop);
    uint64_t cap = (uint64_t)APP_LOG_BURST * 1000;
    p->log_tokens += (now - p->log_refill_ms) * APP_LOG_RATE;
    p->log_refill_ms = now;
    if (p->log_tokens > cap) {
        p->log_tokens = cap;
    }
    if (p->log_tokens < 1000) {
        p->lines_dropped++;
        return;
    }
    p->log_tokens -= 1000;
    if (p->lines_dropped > 0) {
        log_warn(p->out_ctx, "%lu lines dropped (more than %d lines/s)",
                 (unsigned long)p->lines_dropped, APP_LOG_RATE);
        p->lines_dropped = 0;
    }
    log_info(p->out_ctx, "%.*s%s", (int)len, line, is_cut ? " [line cut]" : "");
}

static void on_output_line(void *data, const char *line, size_t len, bool is_cut)
{
    proc_log_line(data, line, len, is_cut);
}

/* ------------------------------------------------------------------------------------------
 * Spawning (the fork and exec themselves are app_spawn.c)
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

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void close_fd(int *fd)
{
    if (*fd != -1) {
        (void)close(*fd); /* never written by keel: nothing to lose */
        *fd = -1;
    }
}

static void on_pidfd(struct ev_loop *loop, struct ev_io *io, uint32_t events);

/* Fork and exec process p. Returns 0 (p->pid set, watchers started) or -errno. */
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
    struct app_spawn req = {.path = a->exec_path,
                            .argv = c->kind == CONF_APP_BUILTIN_DEMO ? demo_argv : c->argv,
                            .envp = envp,
                            .directory = c->directory[0] != '\0' ? c->directory : NULL,
                            .ids = &a->ids,
                            .user = c->user};
    pid_t pid;
    int fds[2];
    int rc = app_spawn_start(&req, &pid, fds);
    free(envp);
    if (rc != 0) {
        return rc;
    }
    p->pid = pid;
    p->started_ms = ev_now_ms(sv->loop);
    (void)snprintf(p->out_ctx, sizeof(p->out_ctx), "app %s[%d]", c->name, (int)pid);
    for (int i = 0; i < 2; i++) {
        if (app_output_open(&p->out[i], fds[i]) != 0) {
            log_warn(p->ctx, "cannot watch the output of pid %d: it is not logged", (int)pid);
        }
    }
    p->pidfd = pidfd_open_(pid);
    int err = errno;
    if (p->pidfd != -1) {
        err = -ev_io_start(sv->loop, &p->pidio, p->pidfd, EV_READ, on_pidfd, p, "app exit");
        if (err != 0) {
            close_fd(&p->pidfd);
        }
    }
    if (p->pidfd == -1) {
        if (!sv->has_warned_pidfd) {
            log_warn("app", "cannot watch exits with a pidfd (%s): polling every %d ms",
                     strerror(err), APP_POLL_MS);
            sv->has_warned_pidfd = true;
        }
        if (sv->n_polled++ == 0) {
            ev_timer_start(sv->loop, &sv->poll, APP_POLL_MS);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Exits and restarts
 * ------------------------------------------------------------------------------------------ */

static void describe_exit(int wstatus, char *out, size_t size)
{
    if (wstatus == -1) {
        (void)snprintf(out, size, "exit status unknown");
    } else if (WIFEXITED(wstatus)) {
        (void)snprintf(out, size, "exit status %d", WEXITSTATUS(wstatus));
    } else if (WIFSIGNALED(wstatus)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(wstatus));
        (void)snprintf(out, size, "killed by signal %d (SIG%s)%s", WTERMSIG(wstatus),
                       abbrev != NULL ? abbrev : "?", WCOREDUMP(wstatus) ? ", core dumped" : "");
    } else {
        (void)snprintf(out, size, "wait status %#x", (unsigned)wstatus);
    }
}

static void format_ms(uint64_t ms, char *out, size_t size)
{
    if (ms < 1000) {
        (void)snprintf(out, size, "%lums", (unsigned long)ms);
    } else {
        (void)snprintf(out, size, "%.1fs", (double)ms / 1000.0);
    }
}

/* After an unexpected exit (or a failed spawn): schedule the restart, detect crash loops. */
static void proc_schedule_restart(struct app_proc *p, pid_t pid, uint64_t uptime_ms)
{
    const struct conf_app *c = p->app->conf;
    uint64_t now = ev_now_ms(p->app->sv->loop);
    uint32_t delay =
        app_backoff_next(&p->backoff, uptime_ms, c->backoff_initial_ms, c->backoff_max_ms);
    bool is_loop = app_exit_history_add(&p->exits, now);
    char up[32], wait[32];
    format_ms(uptime_ms, up, sizeof(up));
    format_ms(delay, wait, sizeof(wait));
    if (pid > 0) {
        log_warn(p->ctx, "pid %d exited (%s) after %s; restarting in %s", (int)pid, p->last_exit,
                 up, wait);
    } else {
        log_warn(p->ctx, "%s; retrying in %s", p->last_exit, wait);
    }
    if (is_loop && !p->in_crashloop) {
        char max[32];
        format_ms(c->backoff_max_ms, max, sizeof(max));
        p->in_crashloop = true;
        log_error(p->ctx,
                  "crash loop: %u exits within %us, the last: %s; still restarting, with "
                  "delays up to %s, until it stays up %us",
                  APP_CRASHLOOP_EXITS, APP_CRASHLOOP_WINDOW_MS / 1000, p->last_exit, max,
                  APP_STABLE_MS / 1000);
    }
    proc_set_state(p, p->in_crashloop ? APP_PROC_CRASHLOOP : APP_PROC_BACKOFF, p->last_exit);
    ev_timer_start(p->app->sv->loop, &p->timer, delay);
}

/* The process is gone (reaped with wstatus, -1 if unknown). */
static void proc_exited(struct app_proc *p, int wstatus)
{
    struct app_supervisor *sv = p->app->sv;
    pid_t pid = p->pid;
    uint64_t uptime = ev_now_ms(sv->loop) - p->started_ms;
    /* What it wrote before dying is in the pipes: log it before its exit. */
    for (int i = 0; i < 2; i++) {
        app_output_read(&p->out[i], APP_READS_AT_EXIT);
        app_output_close(&p->out[i]);
    }
    if (p->lines_dropped > 0) {
        log_warn(p->out_ctx, "%lu lines dropped (more than %d lines/s)",
                 (unsigned long)p->lines_dropped, APP_LOG_RATE);
        p->lines_dropped = 0;
    }
    if (p->pidfd != -1) {
        ev_io_stop(sv->loop, &p->pidio);
        close_fd(&p->pidfd);
    } else if (--sv->n_polled == 0) {
        ev_timer_stop(sv->loop, &sv->poll);
    }
    /* Whatever it left behind in its group goes too (a new instance needs the port). */
    (void)kill(-pid, SIGKILL);
    app_check_stop(p->check);
    p->is_healthy = false;
    p->check_ok = 0;
    p->check_fail = 0;
    p->pid = 0;
    ev_timer_stop(sv->loop, &p->timer);
    describe_exit(wstatus, p->last_exit, sizeof(p->last_exit));
    if (p->state == APP_PROC_RESTARTING) {
        char how[sizeof(p->last_exit)];
        (void)snprintf(how, sizeof(how), "%s", p->last_exit);
        (void)snprintf(p->last_exit, sizeof(p->last_exit), "restarted: unhealthy (%.60s), %.96s",
                       p->check_reason, how);
    }
    if (p->state == APP_PROC_STOPPING) {
        char reason[224];
        (void)snprintf(reason, sizeof(reason), "pid %d %s", (int)pid, p->last_exit);
        proc_set_state(p, APP_PROC_STOPPED, reason);
        sv_step(sv);
        return;
    }
    proc_schedule_restart(p, pid, uptime);
}

/* Reap p if it exited. */
static void proc_try_reap(struct app_proc *p)
{
    int wstatus = 0;
    pid_t r;
    do {
        r = waitpid(p->pid, &wstatus, WNOHANG);
    } while (r == -1 && errno == EINTR);
    if (r == 0) {
        return;
    }
    if (r == -1) {
        log_warn(p->ctx, "waitpid(%d) failed: %s", (int)p->pid, strerror(errno));
        wstatus = -1;
    }
    proc_exited(p, wstatus);
}

static void on_pidfd(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    proc_try_reap(io->data);
}

static void on_poll(struct ev_loop *loop, struct ev_timer *t)
{
    struct app_supervisor *sv = t->data;
    for (uint32_t i = 0; i < sv->n_apps; i++) {
        struct app *a = sv->apps[i];
        for (uint32_t k = 0; k < a->n_procs; k++) {
            if (a->procs[k].pid != 0 && a->procs[k].pidfd == -1) {
                proc_try_reap(&a->procs[k]);
            }
        }
    }
    if (sv->n_polled > 0) {
        ev_timer_start(loop, t, APP_POLL_MS);
    }
}

/* Spawn p (from STOPPED, BACKOFF or CRASHLOOP). */
static void proc_start(struct app_proc *p)
{
    if (p->has_started) {
        p->restarts++;
        p->app->restarts_total++;
    }
    p->has_started = true;
    p->is_stable = false;
    p->is_killed = false;
    p->is_healthy = false;
    p->check_ok = 0;
    p->check_fail = 0;
    p->check_reason[0] = '\0';
    p->lines_dropped = 0;
    p->log_tokens = (uint64_t)APP_LOG_BURST * 1000;
    p->log_refill_ms = ev_now_ms(p->app->sv->loop);
    int rc = proc_spawn(p);
    if (rc != 0) {
        (void)snprintf(p->last_exit, sizeof(p->last_exit), "cannot start a process: %s",
                       strerror(-rc));
        proc_schedule_restart(p, 0, 0);
        return;
    }
    char reason[128];
    (void)snprintf(reason, sizeof(reason), "pid %d, PORT=%u", (int)p->pid, p->port);
    proc_set_state(p, APP_PROC_STARTING, reason);
    if (p->check != NULL) {
        uint32_t interval = p->app->conf->check.interval_ms;
        app_check_start(p->check, interval < APP_FIRST_CHECK_MS ? interval : APP_FIRST_CHECK_MS);
        ev_timer_start(p->app->sv->loop, &p->timer, APP_STABLE_MS);
    } else {
        ev_timer_start(p->app->sv->loop, &p->timer, APP_START_GRACE_MS);
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
        p->is_stable = true;
        p->backoff.next_ms = 0;
        app_exit_history_clear(&p->exits);
        if (p->in_crashloop) {
            p->in_crashloop = false;
            log_notice(p->ctx, "pid %d up for %us: the crash loop is over", (int)p->pid,
                       APP_STABLE_MS / 1000);
        }
    }
    if (!p->is_stable) {
        ev_timer_start(loop, &p->timer, APP_STABLE_MS - up);
    }
}

/* Send sig to p's process group (to p alone if it left the group). */
static void proc_signal(struct app_proc *p, int sig)
{
    if (kill(-p->pid, sig) == -1 && errno == ESRCH) {
        (void)kill(p->pid, sig); /* ESRCH again: it is gone, its pidfd will say so */
    }
}

static void proc_on_stop_timer(struct app_proc *p)
{
    if (!p->is_killed) {
        char t[32];
        format_ms(p->app->conf->stop_timeout_ms, t, sizeof(t));
        log_warn(p->ctx, "pid %d still running %s after SIGTERM: sending SIGKILL", (int)p->pid, t);
        proc_signal(p, SIGKILL);
        p->is_killed = true;
        ev_timer_start(p->app->sv->loop, &p->timer, APP_KILL_GRACE_MS);
        return;
    }
    log_error(p->ctx, "pid %d did not exit %ds after SIGKILL; no longer waiting for it",
              (int)p->pid, APP_KILL_GRACE_MS / 1000);
    p->is_abandoned = true;
    sv_step(p->app->sv);
}

static void on_proc_timer(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct app_proc *p = t->data;
    switch (p->state) {
    case APP_PROC_STARTING:
    case APP_PROC_RUNNING:
        proc_on_uptime(p);
        break;
    case APP_PROC_BACKOFF:
    case APP_PROC_CRASHLOOP:
        proc_start(p);
        break;
    case APP_PROC_STOPPING:
    case APP_PROC_RESTARTING:
        proc_on_stop_timer(p);
        break;
    case APP_PROC_STOPPED:
        break;
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
        proc_set_state(p, APP_PROC_STOPPING, "stop requested while restarting");
        return;
    case APP_PROC_BACKOFF:
    case APP_PROC_CRASHLOOP:
        ev_timer_stop(loop, &p->timer);
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
    proc_signal(p, SIGTERM);
    p->is_killed = false;
    char reason[96];
    (void)snprintf(reason, sizeof(reason), "SIGTERM sent to pid %d, SIGKILL in %lums", (int)p->pid,
                   (unsigned long)wait);
    proc_set_state(p, APP_PROC_STOPPING, reason);
    ev_timer_start(loop, &p->timer, wait);
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
    log_warn(p->ctx, "pid %d is unhealthy: %s (%u failed checks): restarting it", (int)p->pid,
             reason, p->check_fail);
    app_check_stop(p->check);
    proc_signal(p, SIGTERM);
    p->is_killed = false;
    char why[160];
    (void)snprintf(why, sizeof(why), "unhealthy: %s; SIGTERM sent to pid %d, SIGKILL in %ums",
                   reason, (int)p->pid, p->app->conf->stop_timeout_ms);
    proc_set_state(p, APP_PROC_RESTARTING, why);
    ev_timer_start(p->app->sv->loop, &p->timer, p->app->conf->stop_timeout_ms);
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
            log_notice(p->ctx, "pid %d is healthy (%s)", (int)p->pid, reason);
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
    if (app_ids_resolve(c->user, &a->ids, &is_ignored, &eb) != 0) {
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
        p->pidfd = -1;
        for (int k = 0; k < 2; k++) {
            app_output_init(&p->out[k], a->sv->loop, on_output_line, p);
        }
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
        for (int k = 0; k < 2; k++) {
            app_output_close(&p->out[k]);
        }
        if (p->pidfd != -1) {
            ev_io_stop(loop, &p->pidio);
            close_fd(&p->pidfd);
        } else if (p->pid != 0 && --a->sv->n_polled == 0) {
            ev_timer_stop(loop, &a->sv->poll);
        }
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
    ev_timer_init(&sv->poll, on_poll, sv, "app exit poll");
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

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void app_supervisor_free(struct app_supervisor *sv)
{
    if (sv == NULL) {
        return;
    }
    /* Shutdown: whatever runs now is killed; reap it so that no zombie or orphan stays. */
    uint32_t n_alive = 0;
    for (uint32_t i = 0; i < sv->n_apps; i++) {
        struct app *a = sv->apps[i];
        for (uint32_t k = 0; k < a->n_procs; k++) {
            if (a->procs[k].pid != 0) {
                proc_signal(&a->procs[k], SIGKILL);
                n_alive++;
            }
        }
    }
    uint64_t deadline = now_ms() + APP_REAP_AT_FREE_MS;
    while (n_alive > 0 && now_ms() < deadline) {
        n_alive = 0;
        for (uint32_t i = 0; i < sv->n_apps; i++) {
            struct app *a = sv->apps[i];
            for (uint32_t k = 0; k < a->n_procs; k++) {
                struct app_proc *p = &a->procs[k];
                if (p->pid != 0 && waitpid(p->pid, NULL, WNOHANG) == 0) {
                    n_alive++;
                } else if (p->pid != 0) {
                    log_warn(p->ctx, "pid %d killed at shutdown", (int)p->pid);
                    p->pid = 0;
                }
            }
        }
        if (n_alive > 0) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
            (void)nanosleep(&ts, NULL); /* shutdown only: nothing else runs on this loop */
        }
    }
    for (uint32_t i = 0; i < sv->n_apps; i++) {
        app_free(sv->apps[i]);
    }
    free(sv->apps);
    ev_timer_stop(sv->loop, &sv->poll);
    ev_free_later(sv->loop, sv);
}

/* ------------------------------------------------------------------------------------------
 * Status and metrics
 * ------------------------------------------------------------------------------------------ */

/* A JSON string value (keel's own text; escaped anyway). */
static void json_str(struct metrics_out *out, const char *s)
{
    char buf[256];
    size_t k = 0;
    for (; *s != '\0' && k + 7 < sizeof(buf); s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[k++] = '\\';
            buf[k++] = (char)c;
        } else if (c < 0x20) {
            k += (size_t)snprintf(buf + k, sizeof(buf) - k, "\\u%04x", c);
        } else {
            buf[k++] = (char)c;
        }
    }
    buf[k] = '\0';
    metrics_out_printf(out, "\"%s\"", buf);
}

void app_supervisor_status_json(struct app_supervisor *sv, struct metrics_out *out)
{
    metrics_out_printf(out, "[");
    for (uint32_t i = 0; sv != NULL && i < sv->n_apps; i++) {
        const struct app *a = sv->apps[i];
        const struct conf_app *c = a->conf;
        metrics_out_printf(out, "%s{\"name\":", i == 0 ? "" : ",");
        json_str(out, c->name);
        metrics_out_printf(out, ",\"kind\":\"%s\",\"listen\":",
                           c->kind == CONF_APP_BUILTIN_DEMO ? "builtin demo" : "command");
        json_str(out, c->listen.text);
        metrics_out_printf(out, ",\"restarts\":%lu,\"processes\":[",
                           (unsigned long)a->restarts_total);
        for (uint32_t k = 0; k < a->n_procs; k++) {
            const struct app_proc *p = &a->procs[k];
            metrics_out_printf(out,
                               "%s{\"index\":%u,\"pid\":%d,\"port\":%u,\"state\":\"%s\","
                               "\"restarts\":%lu,\"last_exit\":",
                               k == 0 ? "" : ",", p->index, (int)p->pid, p->port,
                               app_proc_state_name(p->state), (unsigned long)p->restarts);
            if (p->last_exit[0] != '\0') {
                json_str(out, p->last_exit);
            } else {
                metrics_out_printf(out, "null");
            }
            metrics_out_printf(out, ",\"healthy\":%s,\"check\":",
                               p->is_healthy || (p->check == NULL && p->pid != 0) ? "true"
                                                                                  : "false");
            json_str(out, p->check_reason);
            metrics_out_printf(out, ",\"crashloop\":%s}", p->in_crashloop ? "true" : "false");
        }
        metrics_out_printf(out, "]}");
    }
    metrics_out_printf(out, "]");
}

void app_supervisor_metrics(struct app_supervisor *sv, struct metrics_out *out)
{
    if (sv == NULL || sv->n_apps == 0) {
        return;
    }
    static const char *const gauges[] = {
        "keel_app_process_up",
        "Whether the app process is running (1) or not (0).",
        "keel_app_process_healthy",
        "Whether the app process passes its health check (running, without a check).",
        "keel_app_crashloop",
        "Whether the app process is in a crash loop episode."};
    for (int g = 0; g < 3; g++) {
        metrics_out_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", gauges[2 * g], gauges[2 * g + 1],
                           gauges[2 * g]);
        for (uint32_t i = 0; i < sv->n_apps; i++) {
            const struct app *a = sv->apps[i];
            for (uint32_t k = 0; k < a->n_procs; k++) {
                const struct app_proc *p = &a->procs[k];
                bool v = g == 0 ? p->pid != 0 && p->state != APP_PROC_STOPPING &&
                                      p->state != APP_PROC_RESTARTING
                         : g == 1 ? p->is_healthy || (p->check == NULL && p->pid != 0)
                                  : p->in_crashloop;
                metrics_out_printf(out, "%s{app=\"%s\",process=\"%u\"} %d\n", gauges[2 * g],
                                   a->conf->name, p->index, v ? 1 : 0);
            }
        }
    }
    metrics_out_printf(out, "# HELP keel_app_restarts_total Restarts of the app's processes "
                            "after they exited.\n# TYPE keel_app_restarts_total counter\n");
    for (uint32_t i = 0; i < sv->n_apps; i++) {
        metrics_out_printf(out, "keel_app_restarts_total{app=\"%s\"} %lu\n",
                           sv->apps[i]->conf->name, (unsigned long)sv->apps[i]->restarts_total);
    }
}
