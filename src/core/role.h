/* SPDX-License-Identifier: MIT */
/* The role table (core/role.c): the explicit list of the roles a node can run, and the walks
 * over it that the node's main loop (cli/cli_run.c) makes: start, reload, tick, stop,
 * metrics, status, free. Nothing outside a role's folder calls a role by name. Control
 * thread only. docs/internals/roles.md. */
#ifndef KEEL_CORE_ROLE_H
#define KEEL_CORE_ROLE_H

#include <stddef.h>

#include "core/role-t.h"
#include "monitor/metrics-t.h"

/* Every role, in table order (start, reload, tick and status order). *n gets the count. */
const struct role_ops *const *role_table(size_t *n);

/* The worker threads conf asks for: its workers setting, or one per core (auto), at most
 * ROLE_MAX_WORKERS. Fixed at boot: a reload cannot change it. */
uint32_t role_node_workers(const struct conf *conf);

/* Boot: prepare then start every role on gen. Returns 0, or the first start's error (eb
 * filled, prefixed with the role's name), after freeing the roles already started. */
int role_start_all(struct role_node *node, struct gen *gen, struct errbuf *eb) KEEL_MUST_CHECK;

/* SIGHUP: build every role on gen, then reload each. Returns 0 (each role applied or
 * refused its part; refusals are counted, and a role that refused keeps its generation in
 * node->gen_ids), or a build's error (eb filled): then nothing changed anywhere. */
int role_reload_all(struct role_node *node, struct gen *gen, struct errbuf *eb) KEEL_MUST_CHECK;

/* The 50 ms tick: every role's tick; while stopping, the deferred stops once handed over. */
void role_tick_all(struct role_node *node);

/* SIGTERM: stop every role (those that wait for the handover later, from role_tick_all). */
void role_stop_all(struct role_node *node);

/* After role_stop_all: whether every role is stopped and drained; once is_late (the drain
 * deadline passed), roles with drain_has_deadline count as drained. */
bool role_drained_all(const struct role_node *node, bool is_late);

/* A role that owns virtual addresses changed its hold on ip: tell the roles that serve. */
void role_hold(struct role_node *node, struct in_addr ip, enum role_hold hold);

/* Every role's metrics, then keel_reload_refused_total{role} and keel_role_generation{role}. */
void role_metrics_all(const struct role_node *node, struct metrics_out *out);

/* keel_reload_refused_total, which role_metrics_all writes (the registry lists it). */
extern const struct metric_table role_metric_table;

/* The /status members of the roles: "generations" (role name -> the generation it runs,
 * which stays behind the node's after it refused a reload), then every role's own. */
void role_status_all(const struct role_node *node, struct json_w *w);

/* Exit: free every role, in reverse table order. */
void role_free_all(struct role_node *node);

#endif
