/* SPDX-License-Identifier: MIT */
/* The role table, listed here by hand (no constructor magic, like core/conf_registry.c), and
 * the walks over it. A new role is its folder (with its struct role_ops) plus one line in
 * roles[] below. */
#include "core/role.h"

#include <stdio.h>
#include <unistd.h>

#include "app/app_role.h"
#include "core/conf.h"
#include "core/gen.h"
#include "core/json.h"
#include "core/log.h"
#include "db/db_role.h"
#include "lb/lb_role.h"
#include "monitor/metrics.h"
#include "vrrp/vrrp_role.h"

/* Table order matters: start, reload and tick run in it, and it is the order of /status.
 * The lb comes first: its tick publishes can_serve for vrrp's, and a reload it cannot build
 * is refused before any other role has changed. The lb role also serves the web role's
 * sites: they are frontends of the same workers. */
static const struct role_ops *const roles[] = {
    &lb_role_ops,
    &app_role_ops,
    &vrrp_role_ops,
    &db_role_ops,
};

#define N_ROLES (sizeof(roles) / sizeof(roles[0]))
_Static_assert(N_ROLES <= ROLE_MAX, "raise ROLE_MAX");

const struct role_ops *const *role_table(size_t *n)
{
    *n = N_ROLES;
    return roles;
}

uint32_t role_node_workers(const struct conf *conf)
{
    long n = conf->global.workers;
    if (n == 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
    }
    if (n < 1) {
        n = 1;
    }
    return n > ROLE_MAX_WORKERS ? ROLE_MAX_WORKERS : (uint32_t)n;
}

/* The walks below take the table (t, n) as an argument, so that a unit test can walk a
 * table of its own; the node's are the wrappers that pass roles[]. */

static void free_first(const struct role_ops *const *t, struct role_node *node, size_t n)
{
    while (n > 0) {
        n--;
        t[n]->free(node, node->states[n]);
        node->states[n] = NULL;
    }
}

static int start_in(const struct role_ops *const *t, size_t n, struct role_node *node,
                    struct gen *gen, struct errbuf *eb)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i]->prepare != NULL) {
            t[i]->prepare(node, gen->conf);
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct errbuf reb = {{0}};
        int rc = t[i]->start(node, gen, &node->states[i], &reb);
        if (rc != 0) {
            errbuf_set(eb, "%s: %s", t[i]->name, reb.msg);
            free_first(t, node, i);
            return rc;
        }
        node->gen_ids[i] = gen->id;
    }
    return 0;
}

int role_start_all(struct role_node *node, struct gen *gen, struct errbuf *eb)
{
    return start_in(roles, N_ROLES, node, gen, eb);
}

static int reload_in(const struct role_ops *const *t, size_t n, struct role_node *node,
                     struct gen *gen, struct errbuf *eb)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i]->build == NULL) {
            continue;
        }
        int rc = t[i]->build(node, node->states[i], gen, eb);
        if (rc != 0) {
            while (i > 0) {
                i--;
                if (t[i]->discard != NULL) {
                    t[i]->discard(node, node->states[i]);
                }
            }
            return rc;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (t[i]->reload(node, node->states[i], gen) == ROLE_RELOAD_REFUSED) {
            node->reload_refused[i]++;
            log_error("main",
                      "reload: role %s refused the new configuration (see above) and keeps "
                      "running its own (generation %lu)",
                      t[i]->name, (unsigned long)node->gen_ids[i]);
        } else {
            node->gen_ids[i] = gen->id;
        }
    }
    return 0;
}

int role_reload_all(struct role_node *node, struct gen *gen, struct errbuf *eb)
{
    return reload_in(roles, N_ROLES, node, gen, eb);
}

static bool all_handed_over(const struct role_node *node)
{
    for (size_t i = 0; i < N_ROLES; i++) {
        if (roles[i]->handed_over != NULL && !roles[i]->handed_over(node->states[i])) {
            return false;
        }
    }
    return true;
}

/* Stop the roles that wait for the handover, once it is over. */
static void stop_deferred(struct role_node *node)
{
    if (!node->is_stopping || !all_handed_over(node)) {
        return;
    }
    for (size_t i = 0; i < N_ROLES; i++) {
        if (!node->is_stopped[i]) {
            node->is_stopped[i] = true;
            roles[i]->stop(node, node->states[i]);
        }
    }
}

void role_tick_all(struct role_node *node)
{
    for (size_t i = 0; i < N_ROLES; i++) {
        if (roles[i]->tick != NULL) {
            roles[i]->tick(node, node->states[i]);
        }
    }
    stop_deferred(node);
}

void role_stop_all(struct role_node *node)
{
    node->is_stopping = true;
    for (size_t i = 0; i < N_ROLES; i++) {
        if (!roles[i]->waits_for_handover) {
            node->is_stopped[i] = true;
            roles[i]->stop(node, node->states[i]);
        }
    }
    stop_deferred(node);
}

bool role_drained_all(const struct role_node *node, bool is_late)
{
    for (size_t i = 0; i < N_ROLES; i++) {
        if (is_late && roles[i]->drain_has_deadline) {
            continue;
        }
        if (!node->is_stopped[i] || !roles[i]->drained(node->states[i])) {
            return false;
        }
    }
    return true;
}

void role_hold(struct role_node *node, struct in_addr ip, enum role_hold hold)
{
    for (size_t i = 0; i < N_ROLES; i++) {
        if (roles[i]->on_hold != NULL) {
            roles[i]->on_hold(node, node->states[i], ip, hold);
        }
    }
}

static const struct metric_desc role_metrics[] = {
    {"keel_reload_refused_total", METRIC_COUNTER,
     "Reloads whose changes a role refused (it kept running its configuration).",
     METRIC_LABELS("role")},
    {"keel_role_generation", METRIC_GAUGE,
     "Generation of the configuration the role runs (older than keel_config_generation after "
     "it refused a reload).",
     METRIC_LABELS("role")},
};

const struct metric_table role_metric_table =
    METRIC_TABLE("Roles: reloads they refused", "src/core/role.c", role_metrics);

void role_metrics_all(const struct role_node *node, struct metrics_out *out)
{
    for (size_t i = 0; i < N_ROLES; i++) {
        roles[i]->metrics(node->states[i], out);
    }
    const struct metric_desc *d = &role_metrics[0];
    metrics_family(out, d);
    for (size_t i = 0; i < N_ROLES; i++) {
        metrics_sample_u64(out, d, (const char *const[]){roles[i]->name}, node->reload_refused[i]);
    }
    d = &role_metrics[1];
    metrics_family(out, d);
    for (size_t i = 0; i < N_ROLES; i++) {
        metrics_sample_u64(out, d, (const char *const[]){roles[i]->name}, node->gen_ids[i]);
    }
}

/* "generations": what each role runs, which the node's "generation" (the last file read)
 * does not say when a role refused a reload; then each role's members. */
static void status_in(const struct role_ops *const *t, size_t n, const struct role_node *node,
                      struct json_w *w)
{
    json_w_key(w, "generations");
    json_w_begin_object(w);
    for (size_t i = 0; i < n; i++) {
        json_w_key_uint(w, t[i]->name, node->gen_ids[i]);
    }
    json_w_end_object(w);
    for (size_t i = 0; i < n; i++) {
        t[i]->status(node->states[i], w);
    }
}

void role_status_all(const struct role_node *node, struct json_w *w)
{
    status_in(roles, N_ROLES, node, w);
}

void role_free_all(struct role_node *node)
{
    free_first(roles, node, N_ROLES);
}
