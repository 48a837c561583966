/* SPDX-License-Identifier: MIT */
/* The file descriptor budget (docs/internals/fdlimit.md): raising RLIMIT_NOFILE at start,
 * sizing the frontends' maxconn against it, the reserve the data plane may never take (the
 * control plane's: etcd, PostgreSQL, health checks, logs, the admin listeners), and the
 * once-per-second throttle of accept() failure lines. It does not accept or close anything
 * itself: the listeners (lb/lb_worker.c, monitor/admin.c) ask it. */
#ifndef KEEL_CORE_FDLIMIT_H
#define KEEL_CORE_FDLIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/conf-t.h"
#include "core/err.h"

/* The reserve: what the data plane leaves free for the control plane. A fixed base (what
 * the control plane opens while it runs: etcd and libpq connections, the pipes of child
 * processes, a reopened log), plus each admin-style listener's connection cap and its
 * socket, plus one per health-checked server and a few per supervised application process.
 * What keel opens at boot takes the lowest numbers and so comes out of the data plane's
 * share instead. */
#define FDLIMIT_RESERVE_BASE 64
#define FDLIMIT_RESERVE_PER_APP_PROCESS 4

/* Each admin-style listener (global admin, the db agent's port): at most this many
 * connections at once, and at most this many from one source address. */
#define FDLIMIT_ADMIN_CONN_MAX 32
#define FDLIMIT_ADMIN_CONN_PER_SOURCE 8

/* Descriptors one frontend connection may hold: the client's and the server's (or the file
 * a static site sends). */
#define FDLIMIT_FDS_PER_CONN 2
/* maxconn auto: the frontends' share of the budget, at most this. */
#define FDLIMIT_AUTO_MAXCONN_MAX 10000

/* How long a listener stops accepting after EMFILE/ENFILE or an exhausted budget, and how
 * often a throttled line may be logged. */
#define FDLIMIT_PAUSE_MS 100
#define FDLIMIT_LOG_EVERY_MS 1000

/* What fdlimit_raise found and did. */
struct fdlimit_rlimit {
    uint64_t soft_before; /* the soft limit keel was started with */
    uint64_t soft;        /* the soft limit now */
    uint64_t hard;
    int err; /* 0, or -errno of a failed setrlimit (soft stays soft_before) */
};

/* Raise the soft RLIMIT_NOFILE to the hard limit (capped by fs.nr_open when the hard limit
 * is infinite). Fills out; returns 0 or -errno when getrlimit itself fails. Boot only. */
int fdlimit_raise(struct fdlimit_rlimit *out) KEEL_MUST_CHECK;

/* The soft and hard limits now. Returns 0 or -errno. */
int fdlimit_get(uint64_t *soft, uint64_t *hard) KEEL_MUST_CHECK;

/* How one node's configuration spends limit descriptors. */
struct fdlimit_budget {
    uint64_t limit;        /* the soft limit it was sized against */
    uint32_t reserve;      /* kept for the control plane */
    uint32_t listeners;    /* listening sockets: every bind of every frontend, per worker */
    uint64_t pooled;       /* idle server connections the HTTP backends' pools may keep */
    uint64_t conns;        /* sum of every frontend's maxconn (auto ones resolved) */
    uint64_t need;         /* conns * FDLIMIT_FDS_PER_CONN + listeners + pooled + reserve */
    uint32_t n_auto;       /* frontends whose maxconn was auto */
    uint32_t auto_maxconn; /* what each of them got (0 when none) */
    uint64_t data_fd_max;  /* limit - reserve: the data plane keeps only fds below this */
};

/* Size conf (one node's view, after conf_apply_node; node_name NULL when the file has no
 * nodes) for workers worker threads within limit descriptors: resolve every `maxconn auto`
 * to an equal share of what is left (at most FDLIMIT_AUTO_MAXCONN_MAX), then check that the
 * total fits. Returns 0 with out filled, or -KEEL_ECONFIG with eb set to a
 * "file:line:col: error: ..." line naming the numbers. Changes only frontends' maxconn. */
int fdlimit_conf_apply(struct conf *conf, const char *node_name, uint32_t workers, uint64_t limit,
                       struct fdlimit_budget *out, struct errbuf *eb) KEEL_MUST_CHECK;

/* The data plane's guard. fdlimit_data_set_max(n): from now on the data plane keeps only
 * descriptors below n (0: no guard, the default). Linux hands out the lowest free number,
 * so an fd at n or above means the n below it are all taken: the data plane closes it, and
 * the descriptors from n up stay for the control plane. Thread-safe. */
void fdlimit_data_set_max(uint64_t n);
/* Whether the data plane may keep fd (see fdlimit_data_set_max). Thread-safe. */
bool fdlimit_data_fd_ok(int fd);

/* A once-per-second throttle for a repeated log line, shared by threads (atomics). */
struct fdlimit_throttle {
    _Atomic uint64_t next_ms;  /* no line before this */
    _Atomic uint64_t since_ms; /* when the events being counted began */
    _Atomic uint32_t count;    /* events since the last line */
};

/* Count one event at now_ms (a CLOCK_MONOTONIC time). Returns 0 when the line is to be
 * suppressed, else how many events (this one included) the line reports, with *span_ms
 * the time they span. The first event logs at once. Thread-safe. */
uint32_t fdlimit_throttle_hit(struct fdlimit_throttle *t, uint64_t now_ms, uint64_t *span_ms);

#endif
