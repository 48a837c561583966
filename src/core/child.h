/* SPDX-License-Identifier: MIT */
/* The child-process supervisor: the one place keel starts and watches other programs (app
 * processes, PostgreSQL and its tools, the nodes and etcd of `keel up`). A struct child is
 * one slot on an event loop that runs at most one process at a time: it is started with
 * fork + execve (never a shell) in its own process group, its output is logged line by line
 * (bounded, rate-limited) or sent to a file, its exit is seen through a pidfd (polled with
 * waitpid where pidfds are missing), a stop is a signal then SIGKILL after a deadline, and an
 * optional restart policy restarts it with exponential backoff. What a process means (health
 * checks, crash-loop reports, PostgreSQL's steps) is the owner's, told through struct
 * child_ops. Docs: docs/internals/child.md. */
#ifndef KEEL_CORE_CHILD_H
#define KEEL_CORE_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/child-t.h"
#include "core/err.h"
#include "core/ev.h"

#define CHILD_KILL_GRACE_MS 2000 /* after the SIGKILL of a stop, CHILD_KILLING -> CHILD_LOST */
#define CHILD_POLL_MS 100        /* exit polling when pidfd_open is missing */
#define CHILD_LOG_RATE 100       /* output lines per second per child ... */
#define CHILD_LOG_BURST 200      /* ... with bursts up to this; the rest is counted, dropped */

/* ------------------------------------------------------------------------------------------
 * Spawning, without supervision (child_spawn.c)
 * ------------------------------------------------------------------------------------------ */

/* Fork and exec spec. The child gets its own process group, /dev/null as stdin, stdout and
 * stderr as spec->output says, no other fd, every signal at its default and none blocked,
 * the working directory and ids asked for, and spec->pdeath_sig (SIGKILL) when keel dies.
 * If setting that up or execve fails, it writes "keel: cannot <what> <arg>: <reason>" to its
 * stderr and exits with 126 (setup) or 127 (execve). On success returns 0 with *pid and, for
 * CHILD_OUTPUT_LOG, in out_fds the read ends of its stdout and stderr pipes (non-blocking,
 * close-on-exec, owned by the caller; else both -1); else -errno (the output file could not
 * be opened, fork or pipes failed) with nothing left open. Only async-signal-safe calls run
 * in the child (keel has threads). Does not block (but for opening output_path). */
int child_spawn(const struct child_spec *spec, pid_t *pid, int out_fds[2]) KEEL_MUST_CHECK;

/* The ids of user (NSS lookups block: boot or reload time only). Returns 0 with ids set
 * when keel runs as root; 0 with ids->is_set false when it does not (*is_ignored tells
 * whether user was another user than keel's, i.e. asking for it has no effect); -1 with a
 * reason in eb when the user does not exist. */
int child_ids_resolve(const char *user, struct child_ids *ids, bool *is_ignored,
                      struct errbuf *eb) KEEL_MUST_CHECK;

/* "exit status 1", "killed by signal 9 (SIGKILL)", "..., core dumped", "exit status
 * unknown" (wstatus -1) into out. */
void child_describe_exit(int wstatus, char *out, size_t size);

/* A duration as keel's messages show it: "400ms", "1.5s". */
void child_format_ms(uint64_t ms, char *out, size_t size);

/* The delay before restarting a process that exited after running uptime_ms: r->initial_ms
 * after a run of r->stable_ms or more (or the first time), else the previous delay doubled,
 * at most r->max_ms. Updates b for the next exit. Pure. */
uint32_t child_backoff_next(struct child_backoff *b, uint64_t uptime_ms,
                            const struct child_restart *r);

/* ------------------------------------------------------------------------------------------
 * The supervised child (child.c). All on the loop's thread.
 * ------------------------------------------------------------------------------------------ */

/* Prepare c (CHILD_STOPPED) on loop. ops (kept: static storage) and data are the owner's. */
void child_init(struct child *c, struct ev_loop *loop, const struct child_ops *ops, void *data);

/* Restart the process with backoff when it exits on its own, or when its start fails (r is
 * copied); NULL: never restart (an exit leaves c CHILD_STOPPED). Takes effect at the next
 * exit. */
void child_set_restart(struct child *c, const struct child_restart *r);

/* Start spec (copied: restarts run the same; the copy goes when a run ends with no restart
 * to come). Returns 0 (CHILD_RUNNING, on_start called), -EBUSY if a process runs or is
 * being stopped, -ENOMEM, or -errno of the spawn; under a restart policy a failed spawn
 * also goes to CHILD_BACKOFF and on_exit is called (with start_error) before this returns.
 * Does not block. */
int child_start(struct child *c, const struct child_spec *spec) KEEL_MUST_CHECK;

/* Stop: send sig (to the process group if spec.is_group_stopped), then SIGKILL after
 * timeout_ms (to the same), then give up after CHILD_KILL_GRACE_MS (CHILD_LOST). No restart
 * follows. In CHILD_BACKOFF: CHILD_STOPPED at once. While already stopping: only cancels a
 * restart (the deadline stays). Returns true when a process is being stopped (on_exit comes
 * later, with is_stop), false when there was none. */
bool child_stop(struct child *c, int sig, uint32_t timeout_ms);

/* Like child_stop, but the exit counts as a crash: under the restart policy the process
 * restarts after the backoff delay. No-op unless CHILD_RUNNING. */
void child_stop_and_restart(struct child *c, int sig, uint32_t timeout_ms);

/* Send sig to the process (is_group false) or its process group (the process alone if the
 * group is gone). No-op without a process. */
void child_signal(struct child *c, int sig, bool is_group);

/* SIGKILL the process group and reap it, waiting until deadline_ms (CLOCK_MONOTONIC ms;
 * 0: one second from now). Blocks: for shutdown and frees only. No callback is called; c
 * ends CHILD_STOPPED (an error is logged if it did not exit). Returns the pid it killed, 0
 * if there was none. */
pid_t child_kill_wait(struct child *c, uint64_t deadline_ms);

/* Stop watching and release everything (the process, if any, is left alone: child_kill_wait
 * first). c may be freed afterwards; child_init makes it usable again. */
void child_fini(struct child *c);

/* Milliseconds of CLOCK_MONOTONIC (the clock child_kill_wait's deadline uses). */
uint64_t child_clock_ms(void);

/* Name of a state, as in logs ("running"). */
const char *child_state_name(enum child_state state);

static inline enum child_state child_state(const struct child *c)
{
    return c->_state;
}

/* The running process (also while stopping or lost), 0 if none. */
static inline pid_t child_pid(const struct child *c)
{
    return c->_pid;
}

static inline bool child_is_running(const struct child *c)
{
    return c->_pid != 0;
}

/* Nothing to wait for: stopped, or lost. */
static inline bool child_is_stopped(const struct child *c)
{
    return c->_state == CHILD_STOPPED || c->_state == CHILD_LOST;
}

#endif
