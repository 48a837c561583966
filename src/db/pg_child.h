/* SPDX-License-Identifier: MIT */
/* One child process of a PostgreSQL instance: the postmaster, or a tool (initdb,
 * pg_basebackup, pg_rewind), on a core/child.h child (fork + execve, no shell, its own
 * process group, the given user's ids, SIGKILL if keel dies; its output logged line by line
 * as "CTX: line", rate-limited; its exit seen through a pidfd; an optional deadline that
 * SIGKILLs it; never restarted: the instance decides what comes next). What is PostgreSQL's
 * here: the severities of its lines and the last error line of a tool. Nothing here blocks,
 * except pg_child_kill_wait (shutdown only). */
#ifndef KEEL_DB_PG_CHILD_H
#define KEEL_DB_PG_CHILD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/child-t.h"
#include "core/err.h"
#include "core/ev.h"

/* The child exited with wstatus (as waitpid gives it; -1 if unknown). The child is reaped
 * and its output logged by then; the callback may start it again or free its owner. */
typedef void (*pg_child_exit_fn)(void *data, int wstatus);

/* Embed it; pg_child_init it once. Fields are private. */
struct pg_child {
    struct child _child;
    pg_child_exit_fn _on_exit;
    void *_data;
    bool _is_postgres;     /* lines are postgres' own log: FATAL and PANIC are warnings */
    char _last_error[200]; /* its last line that reports an error, "" if none */
};

/* What to run. All borrowed for the call. */
struct pg_child_spec {
    const char *path;            /* absolute path of the program */
    char *const *argv;           /* NULL-terminated */
    char *const *envp;           /* NULL-terminated */
    const struct child_ids *ids; /* NULL or !is_set: keel's own */
    const char *user;            /* for error messages */
    const char *ctx;             /* log context of its output lines */
    bool is_postgres;            /* the postmaster (its lines carry PostgreSQL severities) */
    uint32_t timeout_ms;         /* SIGKILL to its group after this; 0: never */
};

void pg_child_init(struct pg_child *c, struct ev_loop *loop, pg_child_exit_fn on_exit, void *data);

/* Start spec (in directory "/": PostgreSQL's tools need a readable working directory; its
 * environment, PGPASSWORD included, is wiped from keel's memory once the process runs).
 * Returns 0, -EBUSY if c already runs a process, or -errno from fork/pipes. Does not
 * block. */
int pg_child_start(struct pg_child *c, const struct pg_child_spec *spec) KEEL_MUST_CHECK;

static inline bool pg_child_is_running(const struct pg_child *c)
{
    return c->_child._pid != 0;
}

static inline pid_t pg_child_pid(const struct pg_child *c)
{
    return c->_child._pid;
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

/* Release the watchers (after pg_child_kill_wait, or once no process runs). */
void pg_child_fini(struct pg_child *c);

#endif
