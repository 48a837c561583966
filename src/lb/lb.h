/* SPDX-License-Identifier: MIT */
/* The load balancer's runtime: what it builds from a configuration generation (core/gen.h)
 * -- its frontends, backends, servers and listeners --, server selection over published
 * snapshots, and the worker threads that accept and serve connections. */
#ifndef KEEL_LB_LB_H
#define KEEL_LB_LB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/conf-t.h"
#include "core/ev.h"
#include "core/gen.h"
#include "core/role-t.h"
#include "http/http_transport-t.h"
#include "lb/lb_algo.h"
#include "lb/lb_server-t.h"
#include "monitor/metrics.h"

#define LB_MAX_WORKERS ROLE_MAX_WORKERS

struct tls_ctx;

/* What workers pick from: the eligible servers of a backend and the algorithm's state.
 * Immutable once published; retired through QSBR. */
struct lb_snap {
    const struct lb_algo *algo;
    void *state;
    struct lb_server **servers;
    uint32_t n;
    bool is_backup_set; /* every normal server is down; these are backups */
};

/* Health bookkeeping for one server; control thread only. */
struct lb_health {
    uint32_t consecutive_ok;
    uint32_t consecutive_fail;
    uint64_t last_change_ms;
    char last_reason[160];
};

struct lb_backend {
    const struct conf_backend *conf;
    struct lb_gen *gen;
    uint32_t id;
    struct lb_server *servers;
    struct lb_health *health;
    uint32_t n_servers;
    struct metrics_backend *metrics;
    _Atomic(struct lb_snap *) snap; /* NULL when no server is eligible */
    _Atomic uint32_t queued;        /* requests waiting for a server, all workers */
};

struct lb_frontend {
    const struct conf_frontend *conf;
    struct lb_gen *gen;
    uint32_t id;
    struct lb_backend *backend; /* for requests no location takes; NULL when none */
    struct metrics_frontend *metrics;
    int access_log_fd; /* -1 when off */
    /* per conf location: its backend (proxy) and its root directory (static, -1 if it
     * could not be opened: requests get 404) */
    struct lb_backend **loc_backends;
    int *loc_root_fds;
    /* The binds that say tls: their contexts (tls/tls_ctx.h) and the transport their
     * connections open with; NULL and {NULL} when no bind says tls. */
    struct tls_ctx *tls;
    struct http_xprt_conf tls_xprt;
};

/* Per-worker state that belongs to a generation: pools of idle server connections, per
 * server (flattened over backends, see lb_gen.server_base). Only its worker touches it. */
struct lb_wgen {
    struct lb_upstream **idle; /* per server: idle list head */
    uint32_t *idle_count;
};

/* The lb role's part of a configuration generation (attached to it: freed with it). */
struct lb_gen {
    struct gen *gen;         /* the generation it was built from; holds keep both alive */
    const struct conf *conf; /* = gen->conf */
    _Atomic uint64_t downs;  /* servers marked down so far (lb_server_set_up): workers then
                              * close sessions of backends with shutdown_on_down */
    uint64_t id;             /* = gen->id */
    struct lb_frontend *frontends;
    uint32_t n_frontends;
    struct lb_backend *backends;
    uint32_t n_backends;
    uint32_t *server_base; /* per backend: index of its first server in flattened arrays */
    uint32_t n_servers_total;
    struct lb_wgen wgen[LB_MAX_WORKERS];
    uint32_t n_workers;
    /* Listening sockets: per frontend bind, one per worker, built by the control thread.
     * listen_fds[(bind_base[f] + b) * n_workers + worker]; -1 once handed to the next
     * generation or closed by a draining worker. */
    int *listen_fds;
    uint32_t *bind_base;
    uint32_t n_binds_total;
};

/* Build the lb part of gen (borrowed: attach the result with gen_attach(gen, lg,
 * lb_gen_part_free) once it runs, or lb_gen_free it). Servers start up unless disabled, or
 * inherit the state of the same server (backend, name, address) in prev. Opens access logs.
 * Returns NULL and fills eb on failure. Boot/reload time only. */
struct lb_gen *lb_gen_new(struct gen *gen, const struct lb_gen *prev, uint32_t n_workers,
                          struct errbuf *eb);
/* Open the listening sockets of gen, one per worker per bind, except those of the addresses
 * prev (NULL: none) listens on already: lb_gen_take_listeners takes those over once gen is
 * sure to run. Returns 0, or -errno with eb filled (prev is untouched either way; free gen to
 * close what was opened). Boot/reload time, control thread. */
int lb_gen_listen(struct lb_gen *gen, struct lb_gen *prev, struct errbuf *eb) KEEL_MUST_CHECK;
/* Move prev's sockets of the addresses gen did not open itself into gen (prev keeps -1). */
void lb_gen_take_listeners(struct lb_gen *gen, struct lb_gen *prev);

/* Free the lb part of a generation nobody holds anymore (control thread; not its conf,
 * which belongs to the generation). NULL allowed. lb_gen_part_free is the same for
 * gen_attach. */
void lb_gen_free(struct lb_gen *gen);
void lb_gen_part_free(void *lb_gen);

/* Holds on the generation lg belongs to (core/gen.h): workers and connections keep what
 * they started under alive. Any thread. */
static inline void lb_gen_ref(struct lb_gen *lg)
{
    gen_ref(lg->gen);
}
static inline void lb_gen_unref(struct lb_gen *lg)
{
    gen_unref(lg->gen);
}

/* Rebuild and publish a backend's snapshot from its servers' is_up (control thread). */
void lb_backend_publish(struct lb_backend *be);

/* Choose a server for a request. exclude (may be NULL) is avoided when another server is
 * eligible. Returns 0 with *out set (and out->active incremented), -KEEL_ENOSERVER when no
 * server is up, or -EBUSY when every eligible server is at maxconn. Worker threads,
 * lock-free. */
int lb_backend_pick(struct lb_backend *be, const struct lb_pick_ctx *ctx, struct lb_server *exclude,
                    struct lb_server **out) KEEL_MUST_CHECK;

/* Release a slot taken by lb_backend_pick. */
static inline void lb_server_release(struct lb_server *s)
{
    atomic_fetch_sub_explicit(&s->active, 1, memory_order_relaxed);
}

/* A worker saw a connect error, a reset, a timeout or an invalid response before the end of
 * the response head, on a request of the client at address client. Passive detection
 * (lb_check.c) weighs the failures by client: one client alone cannot take a server down.
 * Worker threads, lock-free. */
void lb_server_report_failure(struct lb_server *s, const struct sockaddr *client);

#endif
