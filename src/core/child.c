/* SPDX-License-Identifier: MIT */
/* The supervised child (see core/child.h): its state machine (enum child_state, one
 * transition function), output logging with a rate limit, exit detection (pidfd, or polling
 * waitpid), the stop deadline and the kill grace, the run deadline, and restarts with
 * backoff. Spawning itself is child_spawn.c; reading the pipes is child_output.c. */
#include "core/child.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/child_output.h"
#include "core/log.h"

#define CHILD_READS_AT_EXIT 256 /* at most 1 MiB of output drained after an exit */
#define CHILD_REAP_WAIT_MS 1000 /* child_kill_wait's default deadline */

/* ------------------------------------------------------------------------------------------
 * The state machine
 * ------------------------------------------------------------------------------------------ */

static const char *const child_state_names[] = {
    [CHILD_STOPPED] = "stopped", [CHILD_RUNNING] = "running", [CHILD_STOPPING] = "stopping",
    [CHILD_KILLING] = "killing", [CHILD_LOST] = "lost",       [CHILD_BACKOFF] = "backoff",
};

const char *child_state_name(enum child_state state)
{
    return (unsigned)state <= CHILD_BACKOFF ? child_state_names[state] : "?";
}

#define BIT(s) (1u << (s))
/* Legal transitions: from -> the set of states it may go to (docs/internals/child.md). */
static const uint32_t legal_next[] = {
    /* spawned; the spawn failed under a restart policy */
    [CHILD_STOPPED] = BIT(CHILD_RUNNING) | BIT(CHILD_BACKOFF),
    /* exited (restarting or not); stop asked */
    [CHILD_RUNNING] = BIT(CHILD_STOPPED) | BIT(CHILD_BACKOFF) | BIT(CHILD_STOPPING),
    /* exited (restarting after child_stop_and_restart, or not); stop time over: SIGKILL */
    [CHILD_STOPPING] = BIT(CHILD_STOPPED) | BIT(CHILD_BACKOFF) | BIT(CHILD_KILLING),
    /* exited; kill grace over */
    [CHILD_KILLING] = BIT(CHILD_STOPPED) | BIT(CHILD_BACKOFF) | BIT(CHILD_LOST),
    /* exited at last; reaped by child_kill_wait */
    [CHILD_LOST] = BIT(CHILD_STOPPED),
    /* restarted; the restart failed; stop asked */
    [CHILD_BACKOFF] = BIT(CHILD_RUNNING) | BIT(CHILD_BACKOFF) | BIT(CHILD_STOPPED),
};

/* The only place a child changes state. The owner logs its own view of the process at notice
 * level (an app's slot, a PostgreSQL instance): the child's own transitions are debug. */
static void set_state(struct child *c, enum child_state to, const char *reason)
{
    enum child_state from = c->_state;
    const char *ctx = c->_ctx[0] != '\0' ? c->_ctx : "child";
    if ((legal_next[from] & BIT(to)) == 0) {
        log_error(ctx, "BUG: illegal child transition %s -> %s (%s)", child_state_name(from),
                  child_state_name(to), reason);
    }
    log_debug(ctx, "child %s -> %s (%s)", child_state_name(from), child_state_name(to), reason);
    c->_state = to;
}

/* A message about the child, unless its owner asked for none (spec.ctx NULL). */
#define child_log(c, level, ...)                                                                   \
    do {                                                                                           \
        if ((c)->_ctx[0] != '\0') {                                                                \
            log_msg(level, (c)->_ctx, __VA_ARGS__);                                                \
        }                                                                                          \
    } while (0)

uint64_t child_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------------------------ */

static void report_dropped(struct child *c)
{
    if (c->_lines_dropped > 0) {
        log_warn(c->_out_ctx, "%lu lines dropped (more than %d lines/s)",
                 (unsigned long)c->_lines_dropped, CHILD_LOG_RATE);
        c->_lines_dropped = 0;
    }
}

static void on_line(void *data, const char *line, size_t len, bool is_cut)
{
    struct child *c = data;
    int level =
        c->_ops->line_level != NULL ? c->_ops->line_level(c->_data, line, len) : LOG_LEVEL_INFO;
    uint64_t now = ev_now_ms(c->_loop);
    uint64_t cap = (uint64_t)CHILD_LOG_BURST * 1000;
    c->_log_tokens += (now - c->_log_refill_ms) * CHILD_LOG_RATE;
    c->_log_refill_ms = now;
    c->_log_tokens = c->_log_tokens > cap ? cap : c->_log_tokens;
    if (c->_log_tokens < 1000) {
        c->_lines_dropped++;
        return;
    }
    c->_log_tokens -= 1000;
    report_dropped(c);
    log_msg((enum log_level)level, c->_out_ctx, "%.*s%s", (int)len, line,
            is_cut ? " [line cut]" : "");
}

/* ------------------------------------------------------------------------------------------
 * The spec's copy (restarts run what the first start ran)
 * ------------------------------------------------------------------------------------------ */

static size_t strv_len(char *const *v)
{
    size_t n = 0;
    while (v != NULL && v[n] != NULL) {
        n++;
    }
    return n;
}

/* Bytes of the strings of v (with their NULs). */
static size_t strv_bytes(char *const *v)
{
    size_t n = 0;
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
        n += strlen(v[i]) + 1;
    }
    return n;
}

static char *put_str(char **cursor, const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *out = memcpy(*cursor, s, n);
    *cursor += n;
    return out;
}

static char **put_strv(char ***slots, char **cursor, char *const *v)
{
    char **out = *slots;
    size_t n = strv_len(v);
    for (size_t i = 0; i < n; i++) {
        out[i] = put_str(cursor, v[i]);
    }
    out[n] = NULL;
    *slots += n + 1;
    return out;
}

static void spec_free(struct child *c)
{
    if (c->_spec_mem != NULL) {
        /* The environment may hold a password (PGPASSWORD). */
        size_t n = 0;
        memcpy(&n, c->_spec_mem, sizeof(n));
        explicit_bzero(c->_spec_mem, n);
        free(c->_spec_mem);
        c->_spec_mem = NULL;
    }
    memset(&c->_spec, 0, sizeof(c->_spec));
}

/* Wipe the environment strings of the copy (spec.is_env_secret: they hold a password,
 * PGPASSWORD) once the process has its own: only a restart would need them again. */
static void spec_forget_env(struct child *c)
{
    /* The slots are the copy's own (put_strv): writable, whatever the spec's type says. */
    for (char **e = (char **)c->_spec.envp; e != NULL && *e != NULL; e++) {
        explicit_bzero(*e, strlen(*e));
        *e = NULL;
    }
}

/* Copy spec into one allocation: [size][argv slots][envp slots][strings]. -ENOMEM. */
static int spec_copy(struct child *c, const struct child_spec *spec)
{
    const char *strs[] = {spec->path, spec->directory, spec->user, spec->output_path};
    size_t n_slots = strv_len(spec->argv) + strv_len(spec->envp) + 2;
    size_t bytes = strv_bytes(spec->argv) + strv_bytes(spec->envp);
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        bytes += strs[i] != NULL ? strlen(strs[i]) + 1 : 0;
    }
    size_t size = sizeof(size_t) + n_slots * sizeof(char *) + bytes;
    char *mem = malloc(size);
    if (mem == NULL) {
        return -ENOMEM;
    }
    memcpy(mem, &size, sizeof(size));
    char **slots = (char **)(void *)(mem + sizeof(size_t));
    char *cursor = (char *)(slots + n_slots);
    spec_free(c);
    c->_spec_mem = mem;
    c->_spec = *spec;
    c->_spec.argv = put_strv(&slots, &cursor, spec->argv);
    c->_spec.envp = put_strv(&slots, &cursor, spec->envp);
    c->_spec.path = put_str(&cursor, spec->path);
    c->_spec.directory = put_str(&cursor, spec->directory);
    c->_spec.user = put_str(&cursor, spec->user);
    c->_spec.output_path = put_str(&cursor, spec->output_path);
    c->_ids.is_set = false;
    if (spec->ids != NULL) {
        c->_ids = *spec->ids;
    }
    c->_spec.ids = &c->_ids;
    c->_spec.ctx = NULL; /* copied into _ctx and _out_ctx */
    c->_spec.out_ctx = NULL;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Exits
 * ------------------------------------------------------------------------------------------ */

/* Forget the process (reaped or given up): drain and close its output, stop the watchers. */
static void release(struct child *c)
{
    for (int i = 0; i < 2; i++) {
        child_output_read(&c->_out[i], CHILD_READS_AT_EXIT);
        child_output_close(&c->_out[i]);
    }
    report_dropped(c);
    if (c->_pidfd != -1) {
        ev_io_stop(c->_loop, &c->_pidio);
        (void)close(c->_pidfd); /* never written: nothing to lose */
        c->_pidfd = -1;
    }
    ev_timer_stop(c->_loop, &c->_poll);
    ev_timer_stop(c->_loop, &c->_timer);
    c->_pid = 0;
}

static void start_backoff(struct child *c, struct child_exit *e, const char *reason)
{
    e->is_restarting = true;
    e->restart_in_ms = child_backoff_next(&c->_backoff, e->uptime_ms, &c->_restart);
    set_state(c, CHILD_BACKOFF, reason);
    ev_timer_start(c->_loop, &c->_timer, e->restart_in_ms);
}

/* The process is gone (reaped with wstatus, -1 if unknown). The callback comes last: it may
 * start the child again, or free its owner. */
static void exited(struct child *c, int wstatus)
{
    struct child_exit e = {.pid = c->_pid,
                           .wstatus = wstatus,
                           .uptime_ms = ev_now_ms(c->_loop) - c->_started_ms,
                           .was_killed = c->_was_killed};
    enum child_state was = c->_state;
    release(c);
    char reason[96];
    child_describe_exit(wstatus, reason, sizeof(reason));
    bool is_asked = was == CHILD_STOPPING || was == CHILD_KILLING || was == CHILD_LOST;
    if (c->_has_restart && (!is_asked || (c->_is_restart_after_stop && was != CHILD_LOST))) {
        start_backoff(c, &e, reason);
    } else {
        e.is_stop = is_asked;
        set_state(c, CHILD_STOPPED, reason);
        spec_free(c); /* nothing restarts it: an owner that never calls child_fini leaks nothing */
    }
    c->_is_restart_after_stop = false;
    if (c->_ops->on_exit != NULL) {
        c->_ops->on_exit(c->_data, &e);
    }
}

static void try_reap(struct child *c)
{
    int wstatus = 0;
    pid_t r;
    do {
        r = waitpid(c->_pid, &wstatus, WNOHANG);
    } while (r == -1 && errno == EINTR);
    if (r == 0) {
        if (c->_pidfd == -1) {
            ev_timer_start(c->_loop, &c->_poll, CHILD_POLL_MS);
        }
        return;
    }
    if (r == -1) {
        child_log(c, LOG_LEVEL_WARN, "waitpid(%d) failed: %s", (int)c->_pid, strerror(errno));
        wstatus = -1;
    }
    exited(c, wstatus);
}

static void on_pidfd(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    try_reap(io->data);
}

static void on_poll(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    try_reap(t->data);
}

/* ------------------------------------------------------------------------------------------
 * Starting
 * ------------------------------------------------------------------------------------------ */

/* Watch the exit of the new process: a pidfd, else polling (warned about once per
 * process: every child would poll alike). */
static void watch_exit(struct child *c)
{
    static bool has_warned_pidfd; /* racy across loops at worst: one more warning */
    c->_pidfd = (int)syscall(SYS_pidfd_open, c->_pid, 0);
    int err = c->_pidfd == -1 ? errno : 0;
    if (c->_pidfd != -1) {
        err = -ev_io_start(c->_loop, &c->_pidio, c->_pidfd, EV_READ, on_pidfd, c, "child exit");
        if (err != 0) {
            (void)close(c->_pidfd); /* never written: nothing to lose */
            c->_pidfd = -1;
        }
    }
    if (c->_pidfd == -1) {
        if (!has_warned_pidfd) {
            log_warn("child", "cannot watch exits with a pidfd (%s): polling every %d ms",
                     strerror(err), CHILD_POLL_MS);
            has_warned_pidfd = true;
        }
        ev_timer_start(c->_loop, &c->_poll, CHILD_POLL_MS);
    }
}

/* Spawn the copied spec. Returns 0 (CHILD_RUNNING) or -errno (state unchanged). */
static int spawn(struct child *c)
{
    pid_t pid;
    int fds[2];
    int rc = child_spawn(&c->_spec, &pid, fds);
    if (rc != 0) {
        return rc;
    }
    if (c->_spec.is_env_secret && !c->_has_restart) {
        spec_forget_env(c); /* the process has its own copy; nothing starts this spec again */
    }
    c->_pid = pid;
    c->_started_ms = ev_now_ms(c->_loop);
    c->_was_killed = false;
    c->_is_restart_after_stop = false;
    c->_log_tokens = (uint64_t)CHILD_LOG_BURST * 1000;
    c->_log_refill_ms = c->_started_ms;
    c->_lines_dropped = 0;
    if (c->_is_pid_in_out_ctx) {
        (void)snprintf(c->_out_ctx, sizeof(c->_out_ctx), "%s[%d]", c->_out_base, (int)pid);
    }
    for (int i = 0; i < 2; i++) {
        if (fds[i] != -1 && child_output_open(&c->_out[i], fds[i]) != 0) {
            child_log(c, LOG_LEVEL_WARN, "cannot watch the output of pid %d: it is not logged",
                      (int)pid);
        }
    }
    watch_exit(c);
    char reason[32];
    (void)snprintf(reason, sizeof(reason), "pid %d", (int)pid);
    set_state(c, CHILD_RUNNING, reason);
    if (c->_spec.timeout_ms != 0) {
        ev_timer_start(c->_loop, &c->_timer, c->_spec.timeout_ms);
    }
    return 0;
}

/* Spawn; under a restart policy a failure is an exit that restarts later. The callbacks come
 * last. */
static int start(struct child *c)
{
    int rc = spawn(c);
    if (rc == 0) {
        if (c->_ops->on_start != NULL) {
            c->_ops->on_start(c->_data, c->_pid);
        }
        return 0;
    }
    if (!c->_has_restart) {
        if (c->_state == CHILD_BACKOFF) {
            set_state(c, CHILD_STOPPED, "cannot start");
        }
        spec_free(c);
        return rc;
    }
    struct child_exit e = {.wstatus = -1, .start_error = rc};
    start_backoff(c, &e, "cannot start");
    if (c->_ops->on_exit != NULL) {
        c->_ops->on_exit(c->_data, &e);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Timers
 * ------------------------------------------------------------------------------------------ */

static void on_timer(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct child *c = t->data;
    char d[32];
    switch (c->_state) {
    case CHILD_RUNNING: /* the run deadline */
        child_log(c, LOG_LEVEL_WARN, "pid %d still running at its deadline: sending SIGKILL",
                  (int)c->_pid);
        c->_was_killed = true;
        child_signal(c, SIGKILL, true);
        break;
    case CHILD_STOPPING: {
        const char *abbrev = sigabbrev_np(c->_stop_sig);
        child_format_ms(c->_stop_ms, d, sizeof(d));
        child_log(c, LOG_LEVEL_WARN, "pid %d still running %s after SIG%s: sending SIGKILL",
                  (int)c->_pid, d, abbrev != NULL ? abbrev : "?");
        c->_was_killed = true;
        child_signal(c, SIGKILL, c->_spec.is_group_stopped);
        set_state(c, CHILD_KILLING, "stop time over");
        ev_timer_start(c->_loop, &c->_timer, CHILD_KILL_GRACE_MS);
        break;
    }
    case CHILD_KILLING: {
        child_log(c, LOG_LEVEL_ERROR,
                  "pid %d did not exit %ds after SIGKILL; no longer waiting for it", (int)c->_pid,
                  CHILD_KILL_GRACE_MS / 1000);
        pid_t pid = c->_pid;
        set_state(c, CHILD_LOST, "survived SIGKILL");
        if (c->_ops->on_lost != NULL) {
            c->_ops->on_lost(c->_data, pid);
        }
        break;
    }
    case CHILD_BACKOFF:
        (void)start(c); /* a failure is reported through on_exit */
        break;
    case CHILD_STOPPED:
    case CHILD_LOST:
        break;
    }
}

/* ------------------------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------------------------ */

void child_init(struct child *c, struct ev_loop *loop, const struct child_ops *ops, void *data)
{
    static const struct child_ops no_ops = {0};
    memset(c, 0, sizeof(*c));
    c->_loop = loop;
    c->_ops = ops != NULL ? ops : &no_ops;
    c->_data = data;
    c->_state = CHILD_STOPPED;
    c->_pidfd = -1;
    ev_timer_init(&c->_timer, on_timer, c, "child");
    ev_timer_init(&c->_poll, on_poll, c, "child exit poll");
    for (int i = 0; i < 2; i++) {
        child_output_init(&c->_out[i], loop, on_line, c);
    }
    (void)snprintf(c->_out_ctx, sizeof(c->_out_ctx), "child");
}

void child_set_restart(struct child *c, const struct child_restart *r)
{
    c->_has_restart = r != NULL;
    if (r != NULL) {
        c->_restart = *r;
    }
}

int child_start(struct child *c, const struct child_spec *spec)
{
    if (c->_pid != 0 || c->_state == CHILD_STOPPING || c->_state == CHILD_KILLING) {
        return -EBUSY;
    }
    if (spec_copy(c, spec) != 0) {
        return -ENOMEM;
    }
    (void)snprintf(c->_ctx, sizeof(c->_ctx), "%s", spec->ctx != NULL ? spec->ctx : "");
    const char *base = spec->out_ctx != NULL ? spec->out_ctx : spec->ctx;
    (void)snprintf(c->_out_base, sizeof(c->_out_base), "%s", base != NULL ? base : "child");
    (void)snprintf(c->_out_ctx, sizeof(c->_out_ctx), "%s", c->_out_base);
    c->_is_pid_in_out_ctx = spec->is_pid_in_out_ctx;
    ev_timer_stop(c->_loop, &c->_timer); /* a pending restart: this start replaces it */
    return start(c);
}

bool child_stop(struct child *c, int sig, uint32_t timeout_ms)
{
    switch (c->_state) {
    case CHILD_STOPPED:
    case CHILD_LOST:
        return false;
    case CHILD_BACKOFF:
        ev_timer_stop(c->_loop, &c->_timer);
        set_state(c, CHILD_STOPPED, "stop asked while waiting to restart");
        return false;
    case CHILD_STOPPING:
    case CHILD_KILLING:
        c->_is_restart_after_stop = false;
        return true;
    case CHILD_RUNNING:
        break;
    }
    c->_stop_sig = sig;
    c->_stop_ms = timeout_ms;
    c->_is_restart_after_stop = false;
    child_signal(c, sig, c->_spec.is_group_stopped);
    const char *abbrev = sigabbrev_np(sig);
    char reason[64];
    (void)snprintf(reason, sizeof(reason), "SIG%s sent, SIGKILL in %ums",
                   abbrev != NULL ? abbrev : "?", timeout_ms);
    set_state(c, CHILD_STOPPING, reason);
    ev_timer_start(c->_loop, &c->_timer, timeout_ms);
    return true;
}

void child_stop_and_restart(struct child *c, int sig, uint32_t timeout_ms)
{
    if (c->_state == CHILD_RUNNING && child_stop(c, sig, timeout_ms)) {
        c->_is_restart_after_stop = true;
    }
}

void child_signal(struct child *c, int sig, bool is_group)
{
    if (c->_pid == 0) {
        return;
    }
    if (is_group && kill(-c->_pid, sig) == 0) {
        return;
    }
    (void)kill(c->_pid, sig); /* ESRCH: it is gone, its pidfd will say so */
}

pid_t child_kill_wait(struct child *c, uint64_t deadline_ms)
{
    pid_t pid = c->_pid;
    if (pid == 0) {
        return 0;
    }
    child_signal(c, SIGKILL, true);
    if (deadline_ms == 0) {
        deadline_ms = child_clock_ms() + CHILD_REAP_WAIT_MS;
    }
    for (;;) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r != 0 || child_clock_ms() >= deadline_ms) {
            if (r == 0) {
                log_error(c->_ctx[0] != '\0' ? c->_ctx : "child",
                          "pid %d did not exit after SIGKILL", (int)pid);
            }
            break;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
        (void)nanosleep(&ts, NULL); /* shutdown only (see child.h) */
    }
    release(c);
    spec_free(c);
    c->_state = CHILD_STOPPED; /* no transition to log: the owner is going away */
    return pid;
}

void child_fini(struct child *c)
{
    for (int i = 0; i < 2; i++) {
        child_output_close(&c->_out[i]);
    }
    if (c->_pidfd != -1) {
        ev_io_stop(c->_loop, &c->_pidio);
        (void)close(c->_pidfd); /* never written: nothing to lose */
        c->_pidfd = -1;
    }
    ev_timer_stop(c->_loop, &c->_poll);
    ev_timer_stop(c->_loop, &c->_timer);
    spec_free(c);
    c->_pid = 0;
    c->_state = CHILD_STOPPED;
}
