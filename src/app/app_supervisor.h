/* SPDX-License-Identifier: MIT */
/* The application supervisor (the `app` role): runs the processes of every app NAME { }
 * block on the control thread's event loop, without ever blocking it. Each process is
 * started with fork + execve (no shell) in its own process group, with PORT, HOST,
 * KEEL_APP and KEEL_NODE in its environment; its stdout and stderr are logged line by line
 * as "app NAME[PID]: line" (bounded and rate-limited); its exit is seen through a pidfd;
 * it is restarted with exponential backoff, a crash loop is logged once per episode at
 * error level and shown in the status; an optional health check probes it; stopping is
 * SIGTERM to the group, then SIGKILL after stop_timeout. The process itself (spawn, output,
 * exit, stop, backoff) is a core/child.h child. States and transitions are
 * documented in docs/internals/app_supervisor.md. */
#ifndef KEEL_APP_APP_SUPERVISOR_H
#define KEEL_APP_APP_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>

#include "core/conf-t.h"
#include "core/ev.h"
#include "monitor/metrics-t.h"

struct json_w;
struct metrics_out;
struct app_supervisor;

/* The life of one process slot of an app (process i of app NAME). */
enum app_proc_state {
    APP_PROC_STOPPED = 0, /* no process, none wanted (before the start, after a stop) */
    APP_PROC_STARTING,    /* running, not yet known good: until its check passes `rise`
                           * times, or for 1 s without a check */
    APP_PROC_RUNNING,     /* running and known good (its health may change later) */
    APP_PROC_BACKOFF,     /* exited; restarts when the backoff delay ends */
    APP_PROC_CRASHLOOP,   /* exited within a crash loop episode; restarts when the delay ends */
    APP_PROC_STOPPING,    /* SIGTERM sent to its group; SIGKILL when stop_timeout ends */
    APP_PROC_RESTARTING   /* was healthy, then failed `fall` checks: SIGTERM sent to its group
                           * (SIGKILL when stop_timeout ends); once it exits, restarted with the
                           * same backoff as a crash */
};

/* Name of a state as shown in logs and /status ("running"). */
const char *app_proc_state_name(enum app_proc_state state);

/* ------------------------------------------------------------------------------------------
 * Lifecycle. All of these run on the loop's thread (the control thread).
 * ------------------------------------------------------------------------------------------ */

/* Create a supervisor on loop and start every app of conf, unless node_name (NULL: none)
 * names a node of conf that lacks the app role: then it runs no app. conf and node_name
 * are borrowed for the call only (the supervisor keeps copies). Resolves commands in PATH
 * and users (blocking lookups: call at boot or reload time only). NULL on OOM. */
struct app_supervisor *app_supervisor_start(struct ev_loop *loop, const struct conf *conf,
                                            const char *node_name);

/* Apply a new configuration: apps that did not change keep running untouched; apps that
 * were removed or changed are stopped gracefully, and the new or changed ones start once
 * those are gone. conf is borrowed for the call only. Blocking lookups as above. Returns 0,
 * or -ENOMEM when some app could not be set up (it is logged and left out). Ignored (0)
 * once app_supervisor_stop was called, and for a NULL sv (as are the functions below). */
int app_supervisor_reload(struct app_supervisor *sv, const struct conf *conf);

/* Stop every process gracefully: SIGTERM to each process group now, SIGKILL after the app's
 * stop_timeout or at kill_by_ms (loop time, ev_now_ms) if that is earlier (0: no such
 * bound). Nothing restarts afterwards. Returns at once; poll app_supervisor_is_stopped. */
void app_supervisor_stop(struct app_supervisor *sv, uint64_t kill_by_ms);

/* After app_supervisor_stop: true once every process has exited (or, for a process that
 * survived SIGKILL for 2 s, has been given up on, with an error logged). */
bool app_supervisor_is_stopped(const struct app_supervisor *sv);

/* SIGKILL whatever still runs, reap it (waiting at most about a second: this may block, so
 * call it at shutdown only) and free everything. NULL allowed. */
void app_supervisor_free(struct app_supervisor *sv);

/* ------------------------------------------------------------------------------------------
 * Observability
 * ------------------------------------------------------------------------------------------ */

/* Write, as one value, a JSON array describing every app and its processes:
 * [{"name":"shop","kind":"command","listen":"127.0.0.1:9000","restarts":2,"processes":[
 *   {"index":0,"pid":1234,"port":9000,"state":"running","restarts":2,
 *    "last_exit":"exit status 1","healthy":true,"check":"status 200","crashloop":false}]}]
 * pid is 0 and last_exit null when there is none. sv may be NULL (an empty array). Errors
 * are the writer's (json_w_finish). */
void app_supervisor_status_json(struct app_supervisor *sv, struct json_w *w);

/* Append the Prometheus text of the apps' gauges and counters (nothing when there is no
 * app): keel_app_process_up{app,process}, keel_app_process_healthy{app,process},
 * keel_app_crashloop{app,process} and keel_app_restarts_total{app}, described by
 * app_metric_table. For the admin listener's gauges callback. */
void app_supervisor_metrics(struct app_supervisor *sv, struct metrics_out *out);

/* The app role's metric families, for monitor/metrics_registry.c. */
extern const struct metric_table app_metric_table;

/* ------------------------------------------------------------------------------------------
 * Crash loops (pure; exposed for tests)
 * ------------------------------------------------------------------------------------------ */

#define APP_STABLE_MS 10000u          /* up this long: backoff and crash loop reset */
#define APP_CRASHLOOP_EXITS 5u        /* this many exits ... */
#define APP_CRASHLOOP_WINDOW_MS 60000 /* ... within this window are a crash loop */

/* (The backoff itself is core/child.h's child_backoff_next, with stable_ms APP_STABLE_MS.) */

/* The last APP_CRASHLOOP_EXITS exit times of a process. Zero-initialise. */
struct app_exit_history {
    uint64_t at_ms[APP_CRASHLOOP_EXITS]; /* ring */
    uint32_t n;                          /* valid entries, <= APP_CRASHLOOP_EXITS */
    uint32_t next;                       /* slot of the next entry */
};

/* Record an exit at now_ms (non-decreasing). True when the last APP_CRASHLOOP_EXITS exits,
 * this one included, all fall within APP_CRASHLOOP_WINDOW_MS. */
bool app_exit_history_add(struct app_exit_history *h, uint64_t now_ms);

/* Forget the exits (after the process stayed up APP_STABLE_MS). */
void app_exit_history_clear(struct app_exit_history *h);

#endif
