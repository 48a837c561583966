/* SPDX-License-Identifier: MIT */
/* One child process of a PostgreSQL instance: the postmaster, or a tool (initdb,
 * pg_basebackup, pg_rewind). It is started with app_spawn_start (fork + execve, no shell,
 * its own process group, the given user's ids, SIGKILL if keel dies), its stdout and stderr
 * are logged line by line (app_output) as "CTX: line", rate-limited, and its exit is seen
 * through a pidfd on the loop. An optional deadline SIGKILLs it. Nothing here blocks,
 * except pg_child_kill_wait (shutdown only). */
#ifndef KEEL_DB_PG_CHILD_H
#define KEEL_DB_PG_CHILD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "app/app_output.h"
#include "app/app_spawn.h"
#include "core/err.h"
#include "core/ev.h"

/* The child exited with wstatus (as waitpid gives it; -1 if unknown). The child is reaped
 * and its output logged by then; the callback may start it again or free its owner. */
typedef void (*pg_child_exit_fn)(void *data, int wstatus);

/* Embed it; pg_child_init it once. Fields are private. */
struct pg_child {
    struct ev_loop *_loop;
    pid_t _pid; /* 0: none */
    int _pidfd; /* -1: none (the exit is polled) */
    struct ev_io _pidio;
    struct ev_timer _deadline; /* SIGKILL when it runs out */
    struct ev_timer _poll;     /* polls the exit without a pidfd */
    struct app_output _out[2];
    pg_child_exit_fn _on_exit;
    void *_data;
    bool _is_postgres; /* lines are postgres' own log: FATAL and PANIC are warnings */
    uint64_t _log_tokens;
    uint64_t _log_refill_ms;
    uint64_t _lines_dropped;
    char _ctx[128];        /* log context of its lines, "pg main initdb" */
    char _last_error[200]; /* its last line that reports an error, "" if none */
};

/* What to run. All borrowed for the call. */
struct pg_child_spec {
    const char *path;          /* absolute path of the program */
    char *const *argv;         /* NULL-terminated */
    char *const *envp;         /* NULL-terminated */
    const struct app_ids *ids; /* NULL or !is_set: keel's own */
    const char *user;          /* for error messages */
    const char *ctx;           /* log context of its output lines */
    bool is_postgres;          /* the postmaster (its lines carry PostgreSQL severities) */
    uint32_t timeout_ms;       /* SIGKILL to its group after this; 0: never */
};

void pg_child_init(struct pg_child *c, struct ev_loop *loop, pg_child_exit_fn on_exit, void *data);

/* Start spec (in directory "/": PostgreSQL's tools need a readable working directory).
 * Returns 0, -EBUSY if c already runs a process, or -errno from fork/pipes. Does not
 * block. */
int pg_child_start(struct pg_child *c, const struct pg_child_spec *spec) KEEL_MUST_CHECK;

static inline bool pg_child_is_running(const struct pg_child *c)
{
    return c->_pid != 0;
}

static inline pid_t pg_child_pid(const struct pg_child *c)
{
    return c->_pid;
}

/* The last line of the child's output (this run, kept after its exit until the next start)
 * that reports an error ("FATAL:", "ERROR:", "PANIC:", "error:", "fatal:"), "" if none: the
 * reason of a failed tool, for messages beyond the log. */
static inline const char *pg_child_last_error(const struct pg_child *c)
{
    return c->_last_error;
}

/* Send sig to the process (is_group false) or to its process group. No-op if none. */
void pg_child_signal(struct pg_child *c, int sig, bool is_group);

/* SIGKILL the group and reap it, waiting up to about a second (blocking: for shutdown and
 * frees only). The exit callback is not called. */
void pg_child_kill_wait(struct pg_child *c);

/* "exit status 1", "killed by signal 9 (SIGKILL)", ... into out. */
void pg_child_describe_exit(int wstatus, char *out, size_t size);

#endif
