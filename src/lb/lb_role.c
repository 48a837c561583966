/* SPDX-License-Identifier: MIT */
/* The lb role: the worker threads, the lb part of the running generation (lb/lb_gen.c) and the
 * health checks. Reload builds the new generation's part and its listeners, then hands it to
 * the workers; the number of workers is fixed at boot, so a reload that changes it is
 * refused. What the node's loop sees of it is lb_role_ops. */
#include "lb/lb_role.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "core/gen.h"
#include "core/json.h"
#include "core/log.h"
#include "core/role.h"
#include "lb/lb.h"
#include "lb/lb_check.h"
#include "lb/lb_gate.h"
#include "lb/lb_worker.h"
#include "monitor/metrics.h"
#include "tls/cert_mgr.h"
#include "tls/tls_ctx.h"

struct lb_role {
    struct lb_gen *gen;      /* the part the workers run; the role holds its generation */
    struct lb_gen *pending;  /* built by a reload, not running yet */
    bool is_workers_refused; /* the reload under way changes workers */
    uint32_t workers_wanted;
    struct lb_worker workers[LB_MAX_WORKERS];
    uint32_t n_workers;
    struct lb_checks *checks;
    uint64_t downs_seen; /* gen->downs when the workers were last told */
    bool is_stopped;
    struct cert_mgr *certs; /* the managed certificates of the running generation */
};

/* ---------------------------------------------------------------- start and reload */

/* A managed certificate was renewed and stored: new connections of its frontend (and of
 * every frontend of that name: there is one) get contexts built from the files, the way a
 * reload builds them; open connections keep theirs. */
static void on_cert_stored(void *data, const char *frontend)
{
    struct lb_role *r = data;
    for (uint32_t f = 0; f < r->gen->n_frontends; f++) {
        struct lb_frontend *fe = &r->gen->frontends[f];
        if (fe->tls == NULL || strcmp(fe->conf->name, frontend) != 0) {
            continue;
        }
        struct errbuf eb = {{0}};
        struct tls_ctx *next = tls_ctx_new(fe->conf, &eb);
        if (next == NULL) {
            log_error("lb", "%s: cannot use the renewed certificate: %s; the previous one stays",
                      frontend, eb.msg);
            continue;
        }
        tls_ctx_swap(fe->tls, next);
        log_notice("lb", "%s: new connections get the renewed certificate", frontend);
    }
}

static int start(struct role_node *node, struct gen *gen, void **state, struct errbuf *eb)
{
    struct lb_role *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        errbuf_set(eb, "out of memory");
        return -ENOMEM;
    }
    r->n_workers = node->n_workers;
    r->gen = lb_gen_new(gen, NULL, r->n_workers, eb);
    if (r->gen == NULL || lb_gen_listen(r->gen, NULL, eb) != 0 ||
        gen_attach(gen, r->gen, lb_gen_part_free) != 0) {
        lb_gen_free(r->gen);
        free(r);
        return -EINVAL;
    }
    gen_ref(gen);
    int rc = lb_workers_start(r->workers, r->n_workers, r->gen);
    if (rc != 0) {
        errbuf_set(eb, "cannot start workers: %s", strerror(-rc));
        return rc; /* the threads that started run until the process exits */
    }
    r->checks = lb_checks_start(node->loop, r->gen);
    if (r->checks == NULL) {
        log_error("lb", "out of memory starting health checks");
    }
    r->certs = cert_mgr_new(node->loop, gen->conf, node->name, on_cert_stored, r, NULL);
    *state = r;
    return 0;
}

static int build(struct role_node *node, void *state, struct gen *gen, struct errbuf *eb)
{
    struct lb_role *r = state;
    r->workers_wanted = role_node_workers(gen->conf);
    r->is_workers_refused = r->workers_wanted != node->n_workers;
    if (r->is_workers_refused) {
        return 0; /* reload refuses it: nothing to build */
    }
    r->pending = lb_gen_new(gen, r->gen, r->n_workers, eb);
    if (r->pending == NULL) {
        return -EINVAL;
    }
    int rc = lb_gen_listen(r->pending, r->gen, eb);
    if (rc != 0) {
        lb_gen_free(r->pending);
        r->pending = NULL;
    }
    return rc;
}

static void discard(struct role_node *node, void *state)
{
    (void)node;
    struct lb_role *r = state;
    lb_gen_free(r->pending); /* closes only what it opened itself */
    r->pending = NULL;
}

static enum role_reload reload(struct role_node *node, void *state, struct gen *gen)
{
    struct lb_role *r = state;
    if (r->is_workers_refused) {
        log_error("lb",
                  "reload: workers %u -> %u cannot change while keel runs (restart it): the "
                  "lb keeps running generation %lu",
                  node->n_workers, r->workers_wanted, (unsigned long)r->gen->id);
        return ROLE_RELOAD_REFUSED;
    }
    struct lb_gen *lg = r->pending, *old = r->gen;
    r->pending = NULL;
    if (gen_attach(gen, lg, lb_gen_part_free) != 0) {
        log_error("lb", "reload: BUG: generation %lu has no room for the lb part",
                  (unsigned long)gen->id);
        lb_gen_free(lg);
        return ROLE_RELOAD_REFUSED;
    }
    lb_gen_take_listeners(lg, old);
    lb_checks_stop(r->checks);
    r->checks = lb_checks_start(node->loop, lg);
    if (r->checks == NULL) {
        log_error("lb", "out of memory starting health checks");
    }
    gen_ref(gen);
    r->gen = lg;
    for (uint32_t i = 0; i < r->n_workers; i++) {
        lb_gen_ref(lg);
        lb_worker_set_gen(&r->workers[i], lg);
    }
    struct cert_mgr *certs =
        cert_mgr_new(node->loop, gen->conf, node->name, on_cert_stored, r, r->certs);
    cert_mgr_free(r->certs);
    r->certs = certs;
    lb_gen_unref(old); /* the role's hold: the node retired or retires its generation */
    return ROLE_RELOAD_APPLIED;
}

/* ---------------------------------------------------------------- running */

/* Whether the node can serve: every backend with servers has one up (VRRP tracking). */
static bool can_serve(const struct lb_gen *gen)
{
    for (uint32_t b = 0; b < gen->n_backends; b++) {
        const struct lb_backend *be = &gen->backends[b];
        bool any = be->n_servers == 0;
        for (uint32_t i = 0; !any && i < be->n_servers; i++) {
            any = atomic_load(&be->servers[i].is_up);
        }
        if (!any) {
            return false;
        }
    }
    return true;
}

static void tick(struct role_node *node, void *state)
{
    struct lb_role *r = state;
    if (r->checks != NULL) {
        lb_checks_poll_passive(r->checks);
    }
    node->can_serve = can_serve(r->gen);
    uint64_t downs = atomic_load(&r->gen->downs);
    if (downs != r->downs_seen) {
        r->downs_seen = downs;
        for (uint32_t i = 0; i < r->n_workers; i++) {
            lb_worker_servers_down(&r->workers[i]); /* shutdown_on_down backends */
        }
    }
}

/* A virtual IP was taken, is being handed over or was given up: open, quiesce or close the
 * gates of its listeners. */
static void on_hold(struct role_node *node, void *state, struct in_addr ip, enum role_hold hold)
{
    (void)node;
    struct lb_role *r = state;
    struct lb_gate *g = lb_gate_define(ip);
    if (g == NULL || r == NULL) {
        return;
    }
    if (hold == ROLE_HOLD_LEAVING) {
        lb_gate_quiesce(g, r->gen);
        return; /* the workers keep polling: the handshakes under way complete */
    }
    lb_gate_set(g, r->gen, hold == ROLE_HOLD_HELD);
    for (uint32_t i = 0; i < r->n_workers; i++) {
        lb_worker_poke(&r->workers[i]);
    }
}

/* Called once the virtual IPs are handed over (waits_for_handover): no new connection. */
static void stop(struct role_node *node, void *state)
{
    (void)node;
    struct lb_role *r = state;
    lb_checks_stop(r->checks);
    r->checks = NULL;
    cert_mgr_free(r->certs);
    r->certs = NULL;
    for (uint32_t i = 0; i < r->n_workers; i++) {
        lb_worker_drain(&r->workers[i]);
    }
}

static bool drained(void *state)
{
    const struct lb_role *r = state;
    for (uint32_t i = 0; i < r->n_workers; i++) {
        if (!atomic_load(&r->workers[i].is_done)) {
            return false;
        }
    }
    return true;
}

static void role_free(struct role_node *node, void *state)
{
    (void)node;
    struct lb_role *r = state;
    if (r == NULL || !drained(r)) {
        return; /* threads still hold connections; process exit closes them */
    }
    for (uint32_t i = 0; i < r->n_workers; i++) {
        lb_worker_join(&r->workers[i]);
    }
    lb_checks_stop(r->checks);
    cert_mgr_free(r->certs);
    lb_gen_unref(r->gen);
    free(r);
}

/* ---------------------------------------------------------------- reporting */

enum {
    LM_SERVER_UP = 0,
    LM_SERVER_ACTIVE,
    LM_BACKEND_QUEUE,
};

static const struct metric_desc lb_metrics[] = {
    [LM_SERVER_UP] = {"keel_server_up", METRIC_GAUGE,
                      "Whether the server is in service (1) or not.",
                      METRIC_LABELS("backend", "server")},
    [LM_SERVER_ACTIVE] = {"keel_server_active", METRIC_GAUGE, "Requests or sessions in flight.",
                          METRIC_LABELS("backend", "server")},
    [LM_BACKEND_QUEUE] = {"keel_backend_queue", METRIC_GAUGE,
                          "Requests or TCP sessions waiting for a server slot.",
                          METRIC_LABELS("backend")},
};

const struct metric_table lb_role_metric_table =
    METRIC_TABLE("The load balancer's servers and queues", "src/lb/lb_role.c", lb_metrics);

static void metrics(void *state, struct metrics_out *o)
{
    const struct lb_role *r = state;
    const struct lb_gen *gen = r->gen;
    const struct metric_desc *d = &lb_metrics[LM_SERVER_UP];
    metrics_family(o, d);
    for (uint32_t b = 0; b < gen->n_backends; b++) {
        const struct lb_backend *be = &gen->backends[b];
        for (uint32_t i = 0; i < be->n_servers; i++) {
            metrics_sample_u64(o, d,
                               (const char *const[]){be->conf->name, be->servers[i].conf->name},
                               atomic_load(&be->servers[i].is_up) ? 1 : 0);
        }
    }
    d = &lb_metrics[LM_SERVER_ACTIVE];
    metrics_family(o, d);
    for (uint32_t b = 0; b < gen->n_backends; b++) {
        const struct lb_backend *be = &gen->backends[b];
        for (uint32_t i = 0; i < be->n_servers; i++) {
            metrics_sample_u64(o, d,
                               (const char *const[]){be->conf->name, be->servers[i].conf->name},
                               atomic_load(&be->servers[i].active));
        }
    }
    d = &lb_metrics[LM_BACKEND_QUEUE];
    metrics_family(o, d);
    for (uint32_t b = 0; b < gen->n_backends; b++) {
        metrics_sample_u64(o, d, (const char *const[]){gen->backends[b].conf->name},
                           atomic_load(&gen->backends[b].queued));
    }
    cert_mgr_metrics(r->certs, o);
}

static void status_servers(const struct lb_backend *be, struct json_w *w)
{
    for (uint32_t i = 0; i < be->n_servers; i++) {
        const struct lb_server *s = &be->servers[i];
        json_w_begin_object(w);
        json_w_key_str(w, "name", s->conf->name);
        json_w_key_str(w, "address", s->conf->addr.text);
        json_w_key_bool(w, "up", atomic_load(&s->is_up));
        json_w_key_uint(w, "active", atomic_load(&s->active));
        json_w_key_uint(w, "weight", s->weight);
        json_w_key_bool(w, "backup", s->is_backup);
        json_w_key_bool(w, "disabled", s->conf->is_disabled);
        json_w_key_str(w, "reason", be->health[i].last_reason);
        json_w_end_object(w);
    }
}

static void status(void *state, struct json_w *w)
{
    const struct lb_role *r = state;
    const struct lb_gen *gen = r->gen;
    json_w_key_uint(w, "workers", r->n_workers);
    json_w_key(w, "frontends");
    json_w_begin_array(w);
    for (uint32_t f = 0; f < gen->n_frontends; f++) {
        const struct conf_frontend *cf = gen->frontends[f].conf;
        json_w_begin_object(w);
        json_w_key_str(w, "name", cf->name);
        json_w_key_str(w, "mode", cf->mode == CONF_MODE_TCP ? "tcp" : "http");
        json_w_key_str(w, "backend", cf->backend_name);
        json_w_key(w, "binds");
        json_w_begin_array(w);
        for (uint32_t b = 0; b < cf->n_binds; b++) {
            json_w_str(w, cf->binds[b].text);
        }
        json_w_end_array(w);
        json_w_end_object(w);
    }
    json_w_end_array(w);
    json_w_key(w, "backends");
    json_w_begin_array(w);
    for (uint32_t b = 0; b < gen->n_backends; b++) {
        const struct lb_backend *be = &gen->backends[b];
        json_w_begin_object(w);
        json_w_key_str(w, "name", be->conf->name);
        json_w_key(w, "servers");
        json_w_begin_array(w);
        status_servers(be, w);
        json_w_end_array(w);
        json_w_end_object(w);
    }
    json_w_end_array(w);
}

const struct role_ops lb_role_ops = {
    .name = "lb",
    .start = start,
    .build = build,
    .discard = discard,
    .reload = reload,
    .tick = tick,
    .stop = stop,
    .waits_for_handover = true,
    .drained = drained,
    .drain_has_deadline = true,
    .on_hold = on_hold,
    .metrics = metrics,
    .status = status,
    .free = role_free,
};
