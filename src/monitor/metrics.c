/* SPDX-License-Identifier: MIT */
/* The metrics registry and the Prometheus text exposition format (version 0.0.4). */
#include "monitor/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsm.h"

const double metrics_latency_bounds_s[METRICS_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

_Thread_local unsigned metrics_slot = METRICS_SLOTS - 1;

void metrics_set_slot(unsigned slot)
{
    metrics_slot = slot < METRICS_SLOTS - 1 ? slot : METRICS_SLOTS - 1;
}

/* Registry entries hold cache-line aligned per-thread counters. */
static void *zalloc_aligned(size_t size)
{
    size_t rounded = (size + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded);
    if (p != NULL) {
        memset(p, 0, rounded);
    }
    return p;
}

/* Sum one uint64 counter over every slot: base is slot 0's counter, stride the slot size. */
static uint64_t sum_slots(const void *first, size_t stride)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < METRICS_SLOTS; i++) {
        const _Atomic uint64_t *c = (const _Atomic uint64_t *)((const char *)first + i * stride);
        total += atomic_load_explicit(c, memory_order_relaxed);
    }
    return total;
}

#define SUM(m, field) sum_slots(&(m)->c[0].field, sizeof((m)->c[0]))

int64_t metrics_frontend_active(const struct metrics_frontend *m)
{
    return (int64_t)(SUM(m, connections_opened) - SUM(m, connections_closed));
}

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_frontend *frontends;
static struct metrics_backend *backends;
static struct metrics_server *servers;

struct metrics_frontend *metrics_frontend_get(const char *name)
{
    pthread_mutex_lock(&registry_lock);
    struct metrics_frontend *m = frontends;
    while (m != NULL && strcmp(m->name, name) != 0) {
        m = m->next;
    }
    if (m == NULL && (m = zalloc_aligned(sizeof(*m))) != NULL) {
        snprintf(m->name, sizeof(m->name), "%s", name);
        m->next = frontends;
        frontends = m;
    }
    pthread_mutex_unlock(&registry_lock);
    return m;
}

struct metrics_backend *metrics_backend_get(const char *name)
{
    pthread_mutex_lock(&registry_lock);
    struct metrics_backend *m = backends;
    while (m != NULL && strcmp(m->name, name) != 0) {
        m = m->next;
    }
    if (m == NULL && (m = zalloc_aligned(sizeof(*m))) != NULL) {
        snprintf(m->name, sizeof(m->name), "%s", name);
        m->next = backends;
        backends = m;
    }
    pthread_mutex_unlock(&registry_lock);
    return m;
}

struct metrics_server *metrics_server_get(const char *backend, const char *name)
{
    pthread_mutex_lock(&registry_lock);
    struct metrics_server *m = servers;
    while (m != NULL && (strcmp(m->name, name) != 0 || strcmp(m->backend, backend) != 0)) {
        m = m->next;
    }
    if (m == NULL && (m = zalloc_aligned(sizeof(*m))) != NULL) {
        snprintf(m->backend, sizeof(m->backend), "%s", backend);
        snprintf(m->name, sizeof(m->name), "%s", name);
        m->next = servers;
        servers = m;
    }
    pthread_mutex_unlock(&registry_lock);
    return m;
}

void metrics_backend_observe(struct metrics_backend *entry, uint64_t latency_us)
{
    struct metrics_backend_c *m = metrics_local(entry);
    double s = (double)latency_us / 1e6;
    for (int i = 0; i < METRICS_LATENCY_BUCKETS; i++) {
        if (s <= metrics_latency_bounds_s[i]) {
            metrics_add(&m->latency_buckets[i], 1);
            break;
        }
    }
    metrics_add(&m->latency_count, 1);
    metrics_add(&m->latency_sum_us, latency_us);
}

void metrics_out_printf(struct metrics_out *out, const char *fmt, ...)
{
    if (out->failed) {
        return;
    }
    for (;;) {
        size_t room = out->cap - out->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(out->data == NULL ? NULL : out->data + out->len, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            out->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            out->len += (size_t)n;
            return;
        }
        size_t cap = out->cap == 0 ? 4096 : out->cap * 2;
        while (cap - out->len <= (size_t)n) {
            cap *= 2;
        }
        char *p = realloc(out->data, cap);
        if (p == NULL) {
            out->failed = 1;
            return;
        }
        out->data = p;
        out->cap = cap;
    }
}

void metrics_out_fini(struct metrics_out *out)
{
    free(out->data);
    out->data = NULL;
    out->len = out->cap = 0;
}

static const char *const class_names[METRICS_CLASSES] = {"other", "1xx", "2xx",
                                                         "3xx",   "4xx", "5xx"};

static void load_snapshot(struct metrics_frontend **f, struct metrics_backend **b,
                          struct metrics_server **s)
{
    pthread_mutex_lock(&registry_lock);
    *f = frontends;
    *b = backends;
    *s = servers;
    pthread_mutex_unlock(&registry_lock);
}

/* A frontend series other than requests_total: a counter summed over the workers' slots, or
 * a gauge that is one counter minus another (opened minus closed). */
struct frontend_series {
    const char *name;
    const char *help;
    size_t plus;  /* offset in struct metrics_frontend_c */
    size_t minus; /* gauges: the offset subtracted; counters: 0 (unused) */
    bool is_gauge;
};

#define FC_OFF(field) offsetof(struct metrics_frontend_c, field)

static const struct frontend_series frontend_series[] = {
    {"keel_frontend_connections_total", "Client connections accepted.", FC_OFF(connections_total),
     0, false},
    {"keel_frontend_accept_pauses_total", "Times accepting paused for want of a descriptor.",
     FC_OFF(accept_pauses), 0, false},
    {"keel_frontend_connections_active", "Client connections open.", FC_OFF(connections_opened),
     FC_OFF(connections_closed), true},
    {"keel_frontend_bytes_in_total", "Bytes received from clients.", FC_OFF(bytes_in), 0, false},
    {"keel_frontend_bytes_out_total", "Bytes sent to clients.", FC_OFF(bytes_out), 0, false},
    /* Upgraded connections (WebSocket and other 101 tunnels, http_tunnel.c). */
    {"keel_frontend_tunnels_total", "Connections upgraded to a tunnel (101 Switching Protocols).",
     FC_OFF(tunnels_opened), 0, false},
    {"keel_frontend_tunnels_active", "Tunnels open.", FC_OFF(tunnels_opened),
     FC_OFF(tunnels_closed), true},
};

static uint64_t frontend_sum(const struct metrics_frontend *m, size_t offset)
{
    return sum_slots((const char *)&m->c[0] + offset, sizeof(m->c[0]));
}

static void render_frontends(struct metrics_out *o, struct metrics_frontend *head)
{
    metrics_out_printf(o, "# HELP keel_frontend_requests_total HTTP requests answered by "
                          "frontend and status class.\n"
                          "# TYPE keel_frontend_requests_total counter\n");
    for (struct metrics_frontend *m = head; m != NULL; m = m->next) {
        for (int c = 0; c < METRICS_CLASSES; c++) {
            metrics_out_printf(o, "keel_frontend_requests_total{frontend=\"%s\",code=\"%s\"} %lu\n",
                               m->name, class_names[c], (unsigned long)SUM(m, requests[c]));
        }
    }
    for (size_t i = 0; i < sizeof(frontend_series) / sizeof(frontend_series[0]); i++) {
        const struct frontend_series *fs = &frontend_series[i];
        metrics_out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", fs->name, fs->help, fs->name,
                           fs->is_gauge ? "gauge" : "counter");
        for (struct metrics_frontend *m = head; m != NULL; m = m->next) {
            if (fs->is_gauge) {
                int64_t v = (int64_t)(frontend_sum(m, fs->plus) - frontend_sum(m, fs->minus));
                metrics_out_printf(o, "%s{frontend=\"%s\"} %ld\n", fs->name, m->name, (long)v);
            } else {
                metrics_out_printf(o, "%s{frontend=\"%s\"} %lu\n", fs->name, m->name,
                                   (unsigned long)frontend_sum(m, fs->plus));
            }
        }
    }
}

static void render_backends(struct metrics_out *o, struct metrics_backend *head)
{
    metrics_out_printf(o, "# HELP keel_backend_requests_total Requests answered through the "
                          "backend by status class.\n"
                          "# TYPE keel_backend_requests_total counter\n");
    for (struct metrics_backend *m = head; m != NULL; m = m->next) {
        for (int c = 0; c < METRICS_CLASSES; c++) {
            metrics_out_printf(o, "keel_backend_requests_total{backend=\"%s\",code=\"%s\"} %lu\n",
                               m->name, class_names[c], (unsigned long)SUM(m, requests[c]));
        }
    }
    metrics_out_printf(o, "# HELP keel_backend_retries_total Requests retried on another server.\n"
                          "# TYPE keel_backend_retries_total counter\n");
    for (struct metrics_backend *m = head; m != NULL; m = m->next) {
        metrics_out_printf(o, "keel_backend_retries_total{backend=\"%s\"} %lu\n", m->name,
                           (unsigned long)SUM(m, retries));
    }
    metrics_out_printf(o, "# HELP keel_backend_queued_total Requests that waited in the queue.\n"
                          "# TYPE keel_backend_queued_total counter\n");
    for (struct metrics_backend *m = head; m != NULL; m = m->next) {
        metrics_out_printf(o, "keel_backend_queued_total{backend=\"%s\"} %lu\n", m->name,
                           (unsigned long)SUM(m, queued_total));
    }
    metrics_out_printf(o, "# HELP keel_backend_no_server_total Requests refused because no "
                          "server was available.\n"
                          "# TYPE keel_backend_no_server_total counter\n");
    for (struct metrics_backend *m = head; m != NULL; m = m->next) {
        metrics_out_printf(o, "keel_backend_no_server_total{backend=\"%s\"} %lu\n", m->name,
                           (unsigned long)SUM(m, no_server));
    }
    metrics_out_printf(o, "# HELP keel_backend_request_duration_seconds Time from sending the "
                          "request to the server to the end of its response.\n"
                          "# TYPE keel_backend_request_duration_seconds histogram\n");
    for (struct metrics_backend *m = head; m != NULL; m = m->next) {
        uint64_t cum = 0;
        for (int i = 0; i < METRICS_LATENCY_BUCKETS; i++) {
            cum += SUM(m, latency_buckets[i]);
            metrics_out_printf(o,
                               "keel_backend_request_duration_seconds_bucket{backend=\"%s\","
                               "le=\"%g\"} %lu\n",
                               m->name, metrics_latency_bounds_s[i], (unsigned long)cum);
        }
        uint64_t count = SUM(m, latency_count);
        metrics_out_printf(o,
                           "keel_backend_request_duration_seconds_bucket{backend=\"%s\","
                           "le=\"+Inf\"} %lu\n",
                           m->name, (unsigned long)count);
        metrics_out_printf(o, "keel_backend_request_duration_seconds_sum{backend=\"%s\"} %.6f\n",
                           m->name, (double)SUM(m, latency_sum_us) / 1e6);
        metrics_out_printf(o, "keel_backend_request_duration_seconds_count{backend=\"%s\"} %lu\n",
                           m->name, (unsigned long)count);
    }
}

static void render_server_counter(struct metrics_out *o, struct metrics_server *head,
                                  const char *name, const char *help, size_t offset)
{
    metrics_out_printf(o, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (struct metrics_server *m = head; m != NULL; m = m->next) {
        const char *c = (const char *)&m->c[0] + offset;
        metrics_out_printf(o, "%s{backend=\"%s\",server=\"%s\"} %lu\n", name, m->backend, m->name,
                           (unsigned long)sum_slots(c, sizeof(m->c[0])));
    }
}

static void render_servers(struct metrics_out *o, struct metrics_server *head)
{
    metrics_out_printf(o, "# HELP keel_server_requests_total Requests answered by server and "
                          "status class.\n"
                          "# TYPE keel_server_requests_total counter\n");
    for (struct metrics_server *m = head; m != NULL; m = m->next) {
        for (int c = 0; c < METRICS_CLASSES; c++) {
            metrics_out_printf(o,
                               "keel_server_requests_total{backend=\"%s\",server=\"%s\","
                               "code=\"%s\"} %lu\n",
                               m->backend, m->name, class_names[c],
                               (unsigned long)SUM(m, requests[c]));
        }
    }
    metrics_out_printf(o, "# HELP keel_server_check_total Active health check results.\n"
                          "# TYPE keel_server_check_total counter\n");
    for (struct metrics_server *m = head; m != NULL; m = m->next) {
        metrics_out_printf(o,
                           "keel_server_check_total{backend=\"%s\",server=\"%s\",result=\"ok\"} "
                           "%lu\n",
                           m->backend, m->name, (unsigned long)SUM(m, checks_ok));
        metrics_out_printf(o,
                           "keel_server_check_total{backend=\"%s\",server=\"%s\",result=\"fail\"}"
                           " %lu\n",
                           m->backend, m->name, (unsigned long)SUM(m, checks_fail));
    }
    render_server_counter(o, head, "keel_server_connect_failures_total",
                          "Failed connection attempts to the server.",
                          offsetof(struct metrics_server_c, connect_failures));
    render_server_counter(o, head, "keel_server_response_failures_total",
                          "Connections reset or closed by the server before a response.",
                          offsetof(struct metrics_server_c, response_failures));
    render_server_counter(o, head, "keel_server_transitions_total",
                          "Up/down state changes of the server.",
                          offsetof(struct metrics_server_c, transitions));
    render_server_counter(o, head, "keel_server_bytes_in_total", "Bytes received from the server.",
                          offsetof(struct metrics_server_c, bytes_in));
    render_server_counter(o, head, "keel_server_bytes_out_total", "Bytes sent to the server.",
                          offsetof(struct metrics_server_c, bytes_out));
}

/* Illegal transitions refused by each state machine (core/fsm.h). */
static void render_fsm(struct metrics_out *out)
{
    metrics_out_printf(out, "# HELP keel_fsm_illegal_transitions_total Transitions a state "
                            "machine's table forbids, refused (docs/internals/fsm.md).\n"
                            "# TYPE keel_fsm_illegal_transitions_total counter\n");
    for (unsigned m = 0; m < FSM_MACHINE_COUNT; m++) {
        metrics_out_printf(out, "keel_fsm_illegal_transitions_total{machine=\"%s\"} %lu\n",
                           fsm_machine_name((enum fsm_machine)m),
                           (unsigned long)fsm_illegal_count((enum fsm_machine)m));
    }
}

void metrics_render(struct metrics_out *out, metrics_gauges_fn gauges, void *data)
{
    struct metrics_frontend *f;
    struct metrics_backend *b;
    struct metrics_server *s;
    load_snapshot(&f, &b, &s);
    render_frontends(out, f);
    render_backends(out, b);
    render_servers(out, s);
    render_fsm(out);
    if (gauges != NULL) {
        gauges(out, data);
    }
}
