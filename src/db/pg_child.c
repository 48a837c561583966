/* SPDX-License-Identifier: MIT */
/* A child process of a PostgreSQL instance (see pg_child.h): spawning through app_spawn,
 * output through app_output, exit through a pidfd, a kill deadline. */
#include "db/pg_child.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define PG_LOG_RATE 100      /* output lines per second ... */
#define PG_LOG_BURST 200     /* ... with bursts up to this; the rest is counted, dropped */
#define PG_READS_AT_EXIT 256 /* at most 1 MiB of output drained after an exit */
#define PG_POLL_MS 100       /* exit polling when pidfd_open is missing */
#define PG_REAP_WAIT_MS 1000 /* pg_child_kill_wait gives up after this */

/* ------------------------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------------------------ */

/* PostgreSQL's severity in a line ("[123] FATAL:  ..."): FATAL and PANIC end a session or
 * the server, the operator should see them; the rest is info. */
static enum log_level line_level(const struct pg_child *c, const char *line, size_t len)
{
    if (!c->_is_postgres) {
        return LOG_LEVEL_INFO;
    }
    const char *end = line + len;
    for (const char *p = line; p + 6 <= end; p++) {
        if (memcmp(p, "FATAL:", 6) == 0 || memcmp(p, "PANIC:", 6) == 0) {
            return LOG_LEVEL_WARN;
        }
        if (*p == ':') {
            break; /* past the severity */
        }
    }
    return LOG_LEVEL_INFO;
}

/* Whether a line reports a failure: PostgreSQL's "FATAL:"/"PANIC:"/"ERROR:", the tools'
 * "error:"/"fatal:" (pg_rewind: "pg_rewind: error: ..."). */
static bool is_error_line(const char *line, size_t len)
{
    static const char *const marks[] = {"FATAL:", "PANIC:", "ERROR:", "error:", "fatal:"};
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
        if (memmem(line, len, marks[i], strlen(marks[i])) != NULL) {
            return true;
        }
    }
    return false;
}

static void on_line(void *data, const char *line, size_t len, bool is_cut)
{
    struct pg_child *c = data;
    if (is_error_line(line, len)) {
        (void)snprintf(c->_last_error, sizeof(c->_last_error), "%.*s", (int)len, line);
    }
    uint64_t now = ev_now_ms(c->_loop);
    uint64_t cap = (uint64_t)PG_LOG_BURST * 1000;
    c->_log_tokens += (now - c->_log_refill_ms) * PG_LOG_RATE;
    c->_log_refill_ms = now;
    c->_log_tokens = c->_log_tokens > cap ? cap : c->_log_tokens;
    if (c->_log_tokens < 1000) {
        c->_lines_dropped++;
        return;
    }
    c->_log_tokens -= 1000;
    if (c->_lines_dropped > 0) {
        log_warn(c->_ctx, "%lu lines dropped (more than %d lines/s)",
                 (unsigned long)c->_lines_dropped, PG_LOG_RATE);
        c->_lines_dropped = 0;
    }
    log_msg(line_level(c, line, len), c->_ctx, "%.*s%s", (int)len, line,
            is_cut ? " [line cut]" : "");
}

/* ------------------------------------------------------------------------------------------
 * Exit
 * ------------------------------------------------------------------------------------------ */

void pg_child_describe_exit(int wstatus, char *out, size_t size)
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

/* Forget the process (reaped): stop the watchers, drain and close its output. */
static void release(struct pg_child *c)
{
    for (int i = 0; i < 2; i++) {
        app_output_read(&c->_out[i], PG_READS_AT_EXIT);
        app_output_close(&c->_out[i]);
    }
    if (c->_lines_dropped > 0) {
        log_warn(c->_ctx, "%lu lines dropped (more than %d lines/s)",
                 (unsigned long)c->_lines_dropped, PG_LOG_RATE);
        c->_lines_dropped = 0;
    }
    if (c->_pidfd != -1) {
        ev_io_stop(c->_loop, &c->_pidio);
        (void)close(c->_pidfd); /* never written: nothing to lose */
        c->_pidfd = -1;
    }
    ev_timer_stop(c->_loop, &c->_poll);
    ev_timer_stop(c->_loop, &c->_deadline);
    c->_pid = 0;
}

static void try_reap(struct pg_child *c)
{
    int wstatus = 0;
    pid_t r;
    do {
        r = waitpid(c->_pid, &wstatus, WNOHANG);
    } while (r == -1 && errno == EINTR);
    if (r == 0) {
        if (c->_pidfd == -1) {
            ev_timer_start(c->_loop, &c->_poll, PG_POLL_MS);
        }
        return;
    }
    if (r == -1) {
        log_warn(c->_ctx, "waitpid(%d) failed: %s", (int)c->_pid, strerror(errno));
        wstatus = -1;
    }
    release(c);
    c->_on_exit(c->_data, wstatus);
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

static void on_deadline(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct pg_child *c = t->data;
    log_warn(c->_ctx, "pid %d still running at its deadline: sending SIGKILL", (int)c->_pid);
    pg_child_signal(c, SIGKILL, true);
}

/* ------------------------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------------------------ */

void pg_child_init(struct pg_child *c, struct ev_loop *loop, pg_child_exit_fn on_exit, void *data)
{
    memset(c, 0, sizeof(*c));
    c->_loop = loop;
    c->_pidfd = -1;
    c->_on_exit = on_exit;
    c->_data = data;
    ev_timer_init(&c->_deadline, on_deadline, c, "pg child deadline");
    ev_timer_init(&c->_poll, on_poll, c, "pg child exit poll");
    for (int i = 0; i < 2; i++) {
        app_output_init(&c->_out[i], loop, on_line, c);
    }
    (void)snprintf(c->_ctx, sizeof(c->_ctx), "pg");
}

int pg_child_start(struct pg_child *c, const struct pg_child_spec *spec)
{
    if (c->_pid != 0) {
        return -EBUSY;
    }
    struct app_spawn req = {.path = spec->path,
                            .argv = spec->argv,
                            .envp = spec->envp,
                            .directory = "/",
                            .ids = spec->ids,
                            .user = spec->user};
    pid_t pid;
    int fds[2];
    int rc = app_spawn_start(&req, &pid, fds);
    if (rc != 0) {
        return rc;
    }
    c->_pid = pid;
    c->_is_postgres = spec->is_postgres;
    c->_log_tokens = (uint64_t)PG_LOG_BURST * 1000;
    c->_log_refill_ms = ev_now_ms(c->_loop);
    c->_lines_dropped = 0;
    c->_last_error[0] = '\0';
    (void)snprintf(c->_ctx, sizeof(c->_ctx), "%s", spec->ctx);
    for (int i = 0; i < 2; i++) {
        if (app_output_open(&c->_out[i], fds[i]) != 0) {
            log_warn(c->_ctx, "cannot watch the output of pid %d: it is not logged", (int)pid);
        }
    }
    c->_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (c->_pidfd != -1 &&
        ev_io_start(c->_loop, &c->_pidio, c->_pidfd, EV_READ, on_pidfd, c, "pg child exit") != 0) {
        (void)close(c->_pidfd); /* never written: nothing to lose */
        c->_pidfd = -1;
    }
    if (c->_pidfd == -1) {
        ev_timer_start(c->_loop, &c->_poll, PG_POLL_MS);
    }
    if (spec->timeout_ms != 0) {
        ev_timer_start(c->_loop, &c->_deadline, spec->timeout_ms);
    }
    return 0;
}

void pg_child_signal(struct pg_child *c, int sig, bool is_group)
{
    if (c->_pid == 0) {
        return;
    }
    if (is_group && kill(-c->_pid, sig) == 0) {
        return;
    }
    (void)kill(c->_pid, sig); /* ESRCH: it is gone, its pidfd will say so */
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void pg_child_kill_wait(struct pg_child *c)
{
    if (c->_pid == 0) {
        return;
    }
    pid_t pid = c->_pid;
    pg_child_signal(c, SIGKILL, true);
    uint64_t deadline = monotonic_ms() + PG_REAP_WAIT_MS;
    for (;;) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r != 0 || monotonic_ms() >= deadline) {
            if (r == 0) {
                log_error(c->_ctx, "pid %d did not exit after SIGKILL", (int)pid);
            }
            break;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
        (void)nanosleep(&ts, NULL); /* shutdown only (see pg_child.h) */
    }
    release(c);
}
