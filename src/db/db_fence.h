/* SPDX-License-Identifier: MIT */
/* The fence watcher (db/db_fence.c): a small process forked by the database agent that
 * stops PostgreSQL from taking writes when the agent's lease renewals stop, whatever stops
 * them: a SIGSTOP of keel, a debugger, a stuck syscall, a blocked event loop. It shares no
 * event loop with keel, only one page of memory: the agent writes there, at every renewal
 * of the leader's lease, the deadline (CLOCK_MONOTONIC) and the postmaster to fence; the
 * watcher checks it every few milliseconds and, once the deadline has passed, ends
 * PostgreSQL (SIGQUIT: immediate shutdown of every backend; SIGKILL if the postmaster is
 * still there a second later). The agent finds its PostgreSQL dead and restarts it as a
 * replica. If keel dies, the watcher still fences at the deadline, then exits.
 * docs/internals/db_elect.md explains the timings. */
#ifndef KEEL_DB_DB_FENCE_H
#define KEEL_DB_DB_FENCE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

/* The watcher fires this long after the deadline it was given, so that the agent's own fence
 * (same deadline, in the agent's loop) goes first when that loop runs. */
#define DB_FENCE_GRACE_MS 100u
/* How often the watcher looks at the clock. */
#define DB_FENCE_POLL_MS 10u

struct db_fence;

/* Fork the watcher of node `name` (copied into its log lines). Blocks only on fork: call at
 * start. Returns the handle (the caller owns it: db_fence_free), or NULL with eb set. The
 * watcher closes every inherited fd but stderr, and dies with keel (PR_SET_PDEATHSIG, and
 * it checks getppid), fencing first if it was armed. */
struct db_fence *db_fence_start(const char *name, struct errbuf *eb) KEEL_MUST_CHECK;

/* Arm (or move) the fence: if no db_fence_arm comes before deadline_ms (CLOCK_MONOTONIC
 * milliseconds, as ev_now_ms) + DB_FENCE_GRACE_MS, the watcher ends postmaster `pid`. Never
 * blocks (two atomic stores). pid 0 disarms. */
void db_fence_arm(struct db_fence *f, uint64_t deadline_ms, pid_t pid);

/* Disarm: the node no longer needs the watcher (not the leader, or the agent fenced it). */
void db_fence_disarm(struct db_fence *f);

/* How many times the watcher fenced so far (for the agent to notice and log). */
uint32_t db_fence_fired(const struct db_fence *f);

/* The watcher's pid (tests, status). */
pid_t db_fence_pid(const struct db_fence *f);

/* Disarm, end the watcher (SIGKILL) and reap it (blocks up to a few ms: shutdown only).
 * NULL is fine. */
void db_fence_free(struct db_fence *f);

#endif
