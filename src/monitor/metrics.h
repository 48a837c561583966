/* SPDX-License-Identifier: MIT */
/* The metrics registry and the exposition. Counters are registered by name (frontend,
 * backend, server) and live for the whole process, so they survive reloads; workers bump
 * per-thread slots. The Prometheus text exposition is written by metrics_render; every
 * family in it is described by a struct metric_desc (metrics-t.h) from a subsystem's table,
 * and written with metrics_family and metrics_sample_* below. */
#ifndef KEEL_MONITOR_METRICS_H
#define KEEL_MONITOR_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "monitor/metrics-t.h"

/* Status classes: index 0 = other/none (no response sent), 1..5 = 1xx..5xx. */
#define METRICS_CLASSES 6

#define METRICS_LATENCY_BUCKETS 12
extern const double metrics_latency_bounds_s[METRICS_LATENCY_BUCKETS];

/* Counters are kept per thread ("slot") so that workers never share a cache line on the
 * data path: each slot has a single writer, so an update is a plain relaxed load and store
 * (no locked instruction). Readers (the admin listener) sum the slots. Workers take slots
 * 0..METRICS_SLOTS-2 with metrics_set_slot(); every other thread uses the last one, which
 * only the control thread writes. */
#define METRICS_SLOTS 33

extern _Thread_local unsigned metrics_slot;

/* Bind the calling thread to a slot (< METRICS_SLOTS - 1). Worker start-up only. */
void metrics_set_slot(unsigned slot);

struct metrics_frontend_c {
    _Atomic uint64_t requests[METRICS_CLASSES];
    _Atomic uint64_t connections_total;
    _Atomic uint64_t connections_opened; /* minus closed = active */
    _Atomic uint64_t connections_closed;
    _Atomic uint64_t bytes_in;
    _Atomic uint64_t bytes_out;
    _Atomic uint64_t errors_parse;       /* 4xx answered by keel for malformed requests */
    _Atomic uint64_t accept_pauses;      /* no descriptor to spare: accepting paused (fdlimit.h) */
    _Atomic uint64_t tunnels_opened;     /* 101 Switching Protocols relayed (http_tunnel.c) */
    _Atomic uint64_t tunnels_closed;     /* opened minus closed = active */
    _Atomic uint64_t handshakes;         /* transport handshakes (TLS) completed */
    _Atomic uint64_t handshake_failures; /* failed: protocol error, reset, plain HTTP */
    _Atomic uint64_t handshake_timeouts; /* not done within timeout_handshake */
    _Atomic uint64_t handshakes_resumed; /* of handshakes: a session resumed (ticket) */
} __attribute__((aligned(64)));

struct metrics_frontend {
    char name[64];
    struct metrics_frontend_c c[METRICS_SLOTS];
    struct metrics_frontend *next;
};

struct metrics_backend_c {
    _Atomic uint64_t requests[METRICS_CLASSES];
    _Atomic uint64_t retries;
    _Atomic uint64_t queued_total;
    _Atomic uint64_t queue_timeouts;
    _Atomic uint64_t no_server;
    _Atomic uint64_t latency_buckets[METRICS_LATENCY_BUCKETS]; /* cumulative at render */
    _Atomic uint64_t latency_count;
    _Atomic uint64_t latency_sum_us;
} __attribute__((aligned(64)));

struct metrics_backend {
    char name[64];
    struct metrics_backend_c c[METRICS_SLOTS];
    struct metrics_backend *next;
};

struct metrics_server_c {
    _Atomic uint64_t requests[METRICS_CLASSES];
    _Atomic uint64_t connect_failures;
    _Atomic uint64_t response_failures;
    _Atomic uint64_t checks_ok;
    _Atomic uint64_t checks_fail;
    _Atomic uint64_t transitions;
    _Atomic uint64_t bytes_in;
    _Atomic uint64_t bytes_out;
    _Atomic uint64_t tls_handshake_failures; /* `server ... tls`: also connect failures */
} __attribute__((aligned(64)));

struct metrics_server {
    char backend[64];
    char name[64];
    struct metrics_server_c c[METRICS_SLOTS];
    struct metrics_server *next;
};

/* The calling thread's counters of a frontend, backend or server registry entry. A macro
 * only because it serves the three types; it evaluates m once and hides no control flow. */
#define metrics_local(m) (&(m)->c[metrics_slot])

/* Client connections open on a frontend, all threads. */
int64_t metrics_frontend_active(const struct metrics_frontend *m);

/* Find or create by name (boot/reload time; takes a mutex). NULL only on OOM. */
struct metrics_frontend *metrics_frontend_get(const char *name);
struct metrics_backend *metrics_backend_get(const char *name);
struct metrics_server *metrics_server_get(const char *backend, const char *name);

static inline unsigned metrics_class(int status)
{
    return status >= 100 && status <= 599 ? (unsigned)(status / 100) : 0;
}

/* Add to a counter of the calling thread's slot (single writer: no locked instruction). */
static inline void metrics_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Record one response latency for a backend. */
void metrics_backend_observe(struct metrics_backend *m, uint64_t latency_us);

/* Gauges that the registry does not own are supplied by a callback at render time. */
struct metrics_out;
typedef void (*metrics_gauges_fn)(struct metrics_out *out, void *data);

/* A growable output buffer for the exposition text. */
struct metrics_out {
    char *data;
    size_t len;
    size_t cap;
    int failed; /* OOM */
};
void metrics_out_printf(struct metrics_out *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append s[0, len) as it is. */
void metrics_out_write(struct metrics_out *out, const char *s, size_t len);
void metrics_out_fini(struct metrics_out *out);

/* ------------------------------------------------------------------------------------------
 * Writing a family from its descriptor. Each family is its HELP and TYPE lines
 * (metrics_family, once) followed by its samples. values are the label values, borrowed, in
 * the order of d->labels (as many as there are names; NULL when there are none, and a NULL
 * array or entry is written as an empty value); they are escaped as the text format
 * requires (backslash, double quote, newline).
 * ------------------------------------------------------------------------------------------ */

/* "# HELP name help" and "# TYPE name type". */
void metrics_family(struct metrics_out *out, const struct metric_desc *d);
/* One sample: name{labels} value. */
void metrics_sample_u64(struct metrics_out *out, const struct metric_desc *d,
                        const char *const *values, uint64_t v);
void metrics_sample_i64(struct metrics_out *out, const struct metric_desc *d,
                        const char *const *values, int64_t v);
/* A real value, with as many digits as it takes to read back exactly; NaN and infinities
 * as the text format spells them. */
void metrics_sample_f(struct metrics_out *out, const struct metric_desc *d,
                      const char *const *values, double v);
/* A histogram's samples: name_bucket{labels,le="bound"} for each of the n bounds with the
 * cumulative counts cum[0, n), le="+Inf" with count, then name_sum and name_count. */
void metrics_histogram(struct metrics_out *out, const struct metric_desc *d,
                       const char *const *values, const double *bounds, const uint64_t *cum,
                       size_t n, uint64_t count, double sum);

/* The tables of the registry's own counters (frontends, backends, servers), for
 * metrics_registry.c. */
extern const struct metric_table metrics_frontend_table;
extern const struct metric_table metrics_backend_table;
extern const struct metric_table metrics_server_table;
extern const struct metric_table metrics_fsm_table;

/* Render every registered counter, then call gauges(out, data). */
void metrics_render(struct metrics_out *out, metrics_gauges_fn gauges, void *data);

#endif
