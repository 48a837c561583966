/* SPDX-License-Identifier: MIT */
/* The metrics registry, the Prometheus text exposition format (version 0.0.4) written from
 * metric descriptors, and the descriptor tables of the registry's own counters. */
#include "monitor/metrics.h"

#include <inttypes.h>
#include <math.h>
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

void metrics_out_write(struct metrics_out *out, const char *s, size_t len)
{
    if (out->failed || len == 0) {
        return;
    }
    if (out->cap - out->len <= len) {
        size_t cap = out->cap == 0 ? 4096 : out->cap;
        while (cap - out->len <= len) {
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
    memcpy(out->data + out->len, s, len);
    out->len += len;
    out->data[out->len] = '\0';
}

void metrics_out_fini(struct metrics_out *out)
{
    free(out->data);
    out->data = NULL;
    out->len = out->cap = 0;
}

/* ------------------------------------------------------------------------------------------
 * Families and samples from descriptors
 * ------------------------------------------------------------------------------------------ */

static const char *const type_names[] = {
    [METRIC_COUNTER] = "counter", [METRIC_GAUGE] = "gauge", [METRIC_HISTOGRAM] = "histogram"};

void metrics_family(struct metrics_out *out, const struct metric_desc *d)
{
    metrics_out_printf(out, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help, d->name,
                       type_names[d->type]);
}

/* A label value as the text format quotes it: backslash, double quote and newline escaped. */
static void put_label_value(struct metrics_out *out, const char *v)
{
    const char *run = v;
    for (; *v != '\0'; v++) {
        const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
        if (esc != NULL) {
            metrics_out_write(out, run, (size_t)(v - run));
            metrics_out_write(out, esc, 2);
            run = v + 1;
        }
    }
    metrics_out_write(out, run, (size_t)(v - run));
}

/* name+suffix{labels[,le="le"]} value_text */
static void put_sample(struct metrics_out *out, const struct metric_desc *d, const char *suffix,
                       const char *const *values, const char *le, const char *value_text)
{
    metrics_out_printf(out, "%s%s", d->name, suffix);
    bool has_labels = d->labels != NULL && d->labels[0] != NULL;
    if (has_labels || le != NULL) {
        metrics_out_write(out, "{", 1);
        for (size_t i = 0; has_labels && d->labels[i] != NULL; i++) {
            metrics_out_printf(out, "%s%s=\"", i == 0 ? "" : ",", d->labels[i]);
            put_label_value(out, values != NULL && values[i] != NULL ? values[i] : "");
            metrics_out_write(out, "\"", 1);
        }
        if (le != NULL) {
            metrics_out_printf(out, "%sle=\"%s\"", has_labels ? "," : "", le);
        }
        metrics_out_write(out, "}", 1);
    }
    metrics_out_printf(out, " %s\n", value_text);
}

void metrics_sample_u64(struct metrics_out *out, const struct metric_desc *d,
                        const char *const *values, uint64_t v)
{
    char num[24];
    (void)snprintf(num, sizeof(num), "%" PRIu64, v);
    put_sample(out, d, "", values, NULL, num);
}

void metrics_sample_i64(struct metrics_out *out, const struct metric_desc *d,
                        const char *const *values, int64_t v)
{
    char num[24];
    (void)snprintf(num, sizeof(num), "%" PRId64, v);
    put_sample(out, d, "", values, NULL, num);
}

/* The shortest of %.15g..%.17g that reads back as v; the text format's NaN, +Inf, -Inf. */
static void format_real(double v, char *num, size_t size)
{
    if (isnan(v)) {
        (void)snprintf(num, size, "NaN");
        return;
    }
    if (isinf(v)) {
        (void)snprintf(num, size, "%sInf", v > 0 ? "+" : "-");
        return;
    }
    for (int digits = 15; digits <= 17; digits++) {
        (void)snprintf(num, size, "%.*g", digits, v);
        if (strtod(num, NULL) == v) {
            return;
        }
    }
}

void metrics_sample_f(struct metrics_out *out, const struct metric_desc *d,
                      const char *const *values, double v)
{
    char num[32];
    format_real(v, num, sizeof(num));
    put_sample(out, d, "", values, NULL, num);
}

void metrics_histogram(struct metrics_out *out, const struct metric_desc *d,
                       const char *const *values, const double *bounds, const uint64_t *cum,
                       size_t n, uint64_t count, double sum)
{
    char le[32], num[32];
    for (size_t i = 0; i < n; i++) {
        (void)snprintf(le, sizeof(le), "%g", bounds[i]);
        (void)snprintf(num, sizeof(num), "%" PRIu64, cum[i]);
        put_sample(out, d, "_bucket", values, le, num);
    }
    (void)snprintf(num, sizeof(num), "%" PRIu64, count);
    put_sample(out, d, "_bucket", values, "+Inf", num);
    format_real(sum, num, sizeof(num));
    put_sample(out, d, "_sum", values, NULL, num);
    (void)snprintf(num, sizeof(num), "%" PRIu64, count);
    put_sample(out, d, "_count", values, NULL, num);
}

/* ------------------------------------------------------------------------------------------
 * The registry's counters
 * ------------------------------------------------------------------------------------------ */

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

#define SOURCE "src/monitor/metrics.c"
#define FC_OFF(field) offsetof(struct metrics_frontend_c, field)
#define BC_OFF(field) offsetof(struct metrics_backend_c, field)
#define SC_OFF(field) offsetof(struct metrics_server_c, field)

/* A counter summed over the threads' slots: base is the entry's slot 0, stride a slot. */
static uint64_t slot_sum(const void *slot0, size_t stride, size_t offset)
{
    return sum_slots((const char *)slot0 + offset, stride);
}

/* Every family but requests_total (by status class) is one value per registry entry: a
 * counter at plus, or a gauge that is the counter at plus minus the counter at minus. */
struct series {
    size_t plus;
    size_t minus;
};

enum {
    FM_REQUESTS = 0,
    FM_CONNECTIONS,
    FM_ACCEPT_PAUSES,
    FM_ACTIVE,
    FM_BYTES_IN,
    FM_BYTES_OUT,
    FM_TUNNELS,
    FM_TUNNELS_ACTIVE,
    FM_TLS_HANDSHAKES,
    FM_TLS_FAILURES,
    FM_TLS_TIMEOUTS,
    FM_TLS_RESUMED,
};

static const struct metric_desc frontend_metrics[] = {
    [FM_REQUESTS] = {"keel_frontend_requests_total", METRIC_COUNTER,
                     "HTTP requests answered by frontend and status class.",
                     METRIC_LABELS("frontend", "code")},
    [FM_CONNECTIONS] = {"keel_frontend_connections_total", METRIC_COUNTER,
                        "Client connections accepted.", METRIC_LABELS("frontend")},
    [FM_ACCEPT_PAUSES] = {"keel_frontend_accept_pauses_total", METRIC_COUNTER,
                          "Times accepting paused for want of a descriptor.",
                          METRIC_LABELS("frontend")},
    [FM_ACTIVE] = {"keel_frontend_connections_active", METRIC_GAUGE, "Client connections open.",
                   METRIC_LABELS("frontend")},
    [FM_BYTES_IN] = {"keel_frontend_bytes_in_total", METRIC_COUNTER, "Bytes received from clients.",
                     METRIC_LABELS("frontend")},
    [FM_BYTES_OUT] = {"keel_frontend_bytes_out_total", METRIC_COUNTER, "Bytes sent to clients.",
                      METRIC_LABELS("frontend")},
    /* Upgraded connections (WebSocket and other 101 tunnels, http_tunnel.c). */
    [FM_TUNNELS] = {"keel_frontend_tunnels_total", METRIC_COUNTER,
                    "Connections upgraded to a tunnel (101 Switching Protocols).",
                    METRIC_LABELS("frontend")},
    [FM_TUNNELS_ACTIVE] = {"keel_frontend_tunnels_active", METRIC_GAUGE, "Tunnels open.",
                           METRIC_LABELS("frontend")},
    /* Binds that say tls (tls/tls_transport.c, run by http_proxy.c's handshake state). */
    [FM_TLS_HANDSHAKES] = {"keel_frontend_tls_handshakes_total", METRIC_COUNTER,
                           "TLS handshakes completed.", METRIC_LABELS("frontend")},
    [FM_TLS_FAILURES] = {"keel_frontend_tls_handshake_failures_total", METRIC_COUNTER,
                         "TLS handshakes failed (protocol error, reset, or plain HTTP answered "
                         "400).",
                         METRIC_LABELS("frontend")},
    [FM_TLS_TIMEOUTS] = {"keel_frontend_tls_handshake_timeouts_total", METRIC_COUNTER,
                         "TLS handshakes not done within timeout_handshake (connection closed).",
                         METRIC_LABELS("frontend")},
    [FM_TLS_RESUMED] = {"keel_frontend_tls_resumed_total", METRIC_COUNTER,
                        "TLS handshakes completed that resumed a session (a ticket).",
                        METRIC_LABELS("frontend")},
};

const struct metric_table metrics_frontend_table =
    METRIC_TABLE("Frontends", SOURCE, frontend_metrics);

/* Where each family but FM_REQUESTS reads its value. */
static const struct series frontend_series[] = {
    [FM_CONNECTIONS] = {FC_OFF(connections_total), 0},
    [FM_ACCEPT_PAUSES] = {FC_OFF(accept_pauses), 0},
    [FM_ACTIVE] = {FC_OFF(connections_opened), FC_OFF(connections_closed)},
    [FM_BYTES_IN] = {FC_OFF(bytes_in), 0},
    [FM_BYTES_OUT] = {FC_OFF(bytes_out), 0},
    [FM_TUNNELS] = {FC_OFF(tunnels_opened), 0},
    [FM_TUNNELS_ACTIVE] = {FC_OFF(tunnels_opened), FC_OFF(tunnels_closed)},
    [FM_TLS_HANDSHAKES] = {FC_OFF(handshakes), 0},
    [FM_TLS_FAILURES] = {FC_OFF(handshake_failures), 0},
    [FM_TLS_TIMEOUTS] = {FC_OFF(handshake_timeouts), 0},
    [FM_TLS_RESUMED] = {FC_OFF(handshakes_resumed), 0},
};

/* One family of per-entry series, for frontends, backends and servers alike. */
static void render_series(struct metrics_out *o, const struct metric_desc *d,
                          const struct series *se, const char *const *values, const void *slot0,
                          size_t stride)
{
    uint64_t plus = slot_sum(slot0, stride, se->plus);
    if (d->type == METRIC_GAUGE) {
        metrics_sample_i64(o, d, values, (int64_t)(plus - slot_sum(slot0, stride, se->minus)));
    } else {
        metrics_sample_u64(o, d, values, plus);
    }
}

static void render_frontends(struct metrics_out *o, struct metrics_frontend *head)
{
    const struct metric_desc *d = &frontend_metrics[FM_REQUESTS];
    metrics_family(o, d);
    for (struct metrics_frontend *m = head; m != NULL; m = m->next) {
        for (int c = 0; c < METRICS_CLASSES; c++) {
            metrics_sample_u64(o, d, (const char *const[]){m->name, class_names[c]},
                               SUM(m, requests[c]));
        }
    }
    for (size_t i = FM_REQUESTS + 1; i < sizeof(frontend_metrics) / sizeof(frontend_metrics[0]);
         i++) {
        metrics_family(o, &frontend_metrics[i]);
        for (struct metrics_frontend *m = head; m != NULL; m = m->next) {
            render_series(o, &frontend_metrics[i], &frontend_series[i],
                          (const char *const[]){m->name}, &m->c[0], sizeof(m->c[0]));
        }
    }
}

enum {
    BM_REQUESTS = 0,
    BM_RETRIES,
    BM_QUEUED,
    BM_QUEUE_TIMEOUTS,
    BM_NO_SERVER,
    BM_DURATION,
};

static const struct metric_desc backend_metrics[] = {
    [BM_REQUESTS] = {"keel_backend_requests_total", METRIC_COUNTER,
                     "Requests answered through the backend by status class.",
                     METRIC_LABELS("backend", "code")},
    [BM_RETRIES] = {"keel_backend_retries_total", METRIC_COUNTER,
                    "Requests or TCP sessions retried on another server.",
                    METRIC_LABELS("backend")},
    [BM_QUEUED] = {"keel_backend_queued_total", METRIC_COUNTER,
                   "Requests or TCP sessions that waited in the queue.", METRIC_LABELS("backend")},
    [BM_QUEUE_TIMEOUTS] =
        {"keel_backend_queue_timeouts_total", METRIC_COUNTER,
         "Requests or TCP sessions that gave up waiting in the queue (timeout_queue).",
         METRIC_LABELS("backend")},
    [BM_NO_SERVER] = {"keel_backend_no_server_total", METRIC_COUNTER,
                      "Requests or TCP sessions refused because no server was available.",
                      METRIC_LABELS("backend")},
    [BM_DURATION] = {"keel_backend_request_duration_seconds", METRIC_HISTOGRAM,
                     "Time from sending the request to the server to the end of its response.",
                     METRIC_LABELS("backend")},
};

const struct metric_table metrics_backend_table = METRIC_TABLE("Backends", SOURCE, backend_metrics);

static const struct series backend_series[] = {
    [BM_RETRIES] = {BC_OFF(retries), 0},
    [BM_QUEUED] = {BC_OFF(queued_total), 0},
    [BM_QUEUE_TIMEOUTS] = {BC_OFF(queue_timeouts), 0},
    [BM_NO_SERVER] = {BC_OFF(no_server), 0},
};

static void render_backends(struct metrics_out *o, struct metrics_backend *head)
{
    const struct metric_desc *d = &backend_metrics[BM_REQUESTS];
    metrics_family(o, d);
    for (struct metrics_backend *m = head; m != NULL; m = m->next) {
        for (int c = 0; c < METRICS_CLASSES; c++) {
            metrics_sample_u64(o, d, (const char *const[]){m->name, class_names[c]},
                               SUM(m, requests[c]));
        }
    }
    for (size_t i = BM_RETRIES; i < BM_DURATION; i++) {
        metrics_family(o, &backend_metrics[i]);
        for (struct metrics_backend *m = head; m != NULL; m = m->next) {
            render_series(o, &backend_metrics[i], &backend_series[i],
                          (const char *const[]){m->name}, &m->c[0], sizeof(m->c[0]));
        }
    }
    d = &backend_metrics[BM_DURATION];
    metrics_family(o, d);
    for (struct metrics_backend *m = head; m != NULL; m = m->next) {
        uint64_t cum[METRICS_LATENCY_BUCKETS], total = 0;
        for (int i = 0; i < METRICS_LATENCY_BUCKETS; i++) {
            total += SUM(m, latency_buckets[i]);
            cum[i] = total;
        }
        metrics_histogram(o, d, (const char *const[]){m->name}, metrics_latency_bounds_s, cum,
                          METRICS_LATENCY_BUCKETS, SUM(m, latency_count),
                          (double)SUM(m, latency_sum_us) / 1e6);
    }
}

enum {
    SM_REQUESTS = 0,
    SM_CHECKS,
    SM_CONNECT_FAILURES,
    SM_RESPONSE_FAILURES,
    SM_TRANSITIONS,
    SM_BYTES_IN,
    SM_BYTES_OUT,
    SM_TLS_HANDSHAKE_FAILURES,
};

static const struct metric_desc server_metrics[] = {
    [SM_REQUESTS] = {"keel_server_requests_total", METRIC_COUNTER,
                     "Requests answered by server and status class.",
                     METRIC_LABELS("backend", "server", "code")},
    [SM_CHECKS] = {"keel_server_check_total", METRIC_COUNTER,
                   "Active health check results (result: ok or fail).",
                   METRIC_LABELS("backend", "server", "result")},
    [SM_CONNECT_FAILURES] = {"keel_server_connect_failures_total", METRIC_COUNTER,
                             "Failed connection attempts to the server.",
                             METRIC_LABELS("backend", "server")},
    [SM_RESPONSE_FAILURES] = {"keel_server_response_failures_total", METRIC_COUNTER,
                              "Connections reset or closed by the server before a response.",
                              METRIC_LABELS("backend", "server")},
    [SM_TRANSITIONS] = {"keel_server_transitions_total", METRIC_COUNTER,
                        "Up/down state changes of the server.", METRIC_LABELS("backend", "server")},
    [SM_BYTES_IN] = {"keel_server_bytes_in_total", METRIC_COUNTER,
                     "Bytes received from the server.", METRIC_LABELS("backend", "server")},
    [SM_BYTES_OUT] = {"keel_server_bytes_out_total", METRIC_COUNTER, "Bytes sent to the server.",
                      METRIC_LABELS("backend", "server")},
    [SM_TLS_HANDSHAKE_FAILURES] = {"keel_server_tls_handshake_failures_total", METRIC_COUNTER,
                                   "Failed TLS handshakes of proxied connections to a tls server "
                                   "(certificate refused, protocol error); also counted in "
                                   "connect failures.",
                                   METRIC_LABELS("backend", "server")},
};

const struct metric_table metrics_server_table = METRIC_TABLE("Servers", SOURCE, server_metrics);

static const struct series server_series[] = {
    [SM_CONNECT_FAILURES] = {SC_OFF(connect_failures), 0},
    [SM_RESPONSE_FAILURES] = {SC_OFF(response_failures), 0},
    [SM_TRANSITIONS] = {SC_OFF(transitions), 0},
    [SM_BYTES_IN] = {SC_OFF(bytes_in), 0},
    [SM_BYTES_OUT] = {SC_OFF(bytes_out), 0},
    [SM_TLS_HANDSHAKE_FAILURES] = {SC_OFF(tls_handshake_failures), 0},
};

static void render_servers(struct metrics_out *o, struct metrics_server *head)
{
    const struct metric_desc *d = &server_metrics[SM_REQUESTS];
    metrics_family(o, d);
    for (struct metrics_server *m = head; m != NULL; m = m->next) {
        for (int c = 0; c < METRICS_CLASSES; c++) {
            metrics_sample_u64(o, d, (const char *const[]){m->backend, m->name, class_names[c]},
                               SUM(m, requests[c]));
        }
    }
    d = &server_metrics[SM_CHECKS];
    metrics_family(o, d);
    for (struct metrics_server *m = head; m != NULL; m = m->next) {
        metrics_sample_u64(o, d, (const char *const[]){m->backend, m->name, "ok"},
                           SUM(m, checks_ok));
        metrics_sample_u64(o, d, (const char *const[]){m->backend, m->name, "fail"},
                           SUM(m, checks_fail));
    }
    for (size_t i = SM_CONNECT_FAILURES; i < sizeof(server_metrics) / sizeof(server_metrics[0]);
         i++) {
        metrics_family(o, &server_metrics[i]);
        for (struct metrics_server *m = head; m != NULL; m = m->next) {
            render_series(o, &server_metrics[i], &server_series[i],
                          (const char *const[]){m->backend, m->name}, &m->c[0], sizeof(m->c[0]));
        }
    }
}

/* Illegal transitions refused by each state machine (core/fsm.h). */
static const struct metric_desc fsm_metrics[] = {
    {"keel_fsm_illegal_transitions_total", METRIC_COUNTER,
     "Transitions a state machine's table forbids, refused (docs/internals/fsm.md).",
     METRIC_LABELS("machine")},
};

const struct metric_table metrics_fsm_table =
    METRIC_TABLE("State machines", "src/core/fsm.c", fsm_metrics);

static void render_fsm(struct metrics_out *out)
{
    metrics_family(out, &fsm_metrics[0]);
    for (unsigned m = 0; m < FSM_MACHINE_COUNT; m++) {
        metrics_sample_u64(out, &fsm_metrics[0],
                           (const char *const[]){fsm_machine_name((enum fsm_machine)m)},
                           fsm_illegal_count((enum fsm_machine)m));
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
