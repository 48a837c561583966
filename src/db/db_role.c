/* SPDX-License-Identifier: MIT */
/* The db role: the node's database agent (db/db_agent.c) behind the role table. An agent that
 * cannot start is logged and the node runs on without it; a reload applies the live settings
 * of the node's database block or refuses the whole change (db/db_reload.h). */
#include "db/db_role.h"

#include <errno.h>
#include <stdlib.h>

#include "core/gen.h"
#include "core/log.h"
#include "db/db_agent.h"
#include "db/db_reload.h"
#include "core/json.h"
#include "monitor/metrics.h"

struct db_role {
    struct db_agent *agent;     /* NULL: the node is in no database, or its agent failed */
    struct db_reload_view view; /* the block it runs, to compare a reload with */
};

static int start(struct role_node *node, struct gen *gen, void **state, struct errbuf *eb)
{
    struct db_role *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        errbuf_set(eb, "out of memory");
        return -ENOMEM;
    }
    db_reload_view_init(&r->view, gen->conf, node->name);
    struct errbuf aeb = {{0}};
    r->agent = db_agent_start(node->loop, gen->conf, node->name, &aeb);
    if (r->agent == NULL && aeb.msg[0] != '\0') {
        log_error("db", "the database agent cannot start: %s", aeb.msg);
    }
    *state = r;
    return 0;
}

static void refuse(void *data, const char *database, const char *setting)
{
    (void)data;
    log_error("db", "reload: database %s: %s cannot change while keel runs (restart it)", database,
              setting);
}

static enum role_reload reload(struct role_node *node, void *state, struct gen *gen)
{
    struct db_role *r = state;
    struct db_reload_view *next = malloc(sizeof(*next));
    if (next == NULL) {
        log_error("db", "reload: out of memory");
        return ROLE_RELOAD_REFUSED;
    }
    db_reload_view_init(next, gen->conf, node->name);
    if (db_reload_check(&r->view, next, refuse, NULL) != 0) {
        free(next);
        return ROLE_RELOAD_REFUSED;
    }
    db_agent_reconfigure(r->agent, &next->db);
    r->view = *next;
    free(next);
    return ROLE_RELOAD_APPLIED;
}

static void stop(struct role_node *node, void *state)
{
    (void)node;
    struct db_role *r = state;
    db_agent_stop(r->agent); /* hands the leader key over, stops PostgreSQL */
}

static bool drained(void *state)
{
    const struct db_role *r = state;
    return db_agent_is_stopped(r->agent);
}

static void metrics(void *state, struct metrics_out *out)
{
    const struct db_role *r = state;
    db_agent_metrics(r->agent, out);
}

static void status(void *state, struct json_w *w)
{
    const struct db_role *r = state;
    json_w_key(w, "db");
    db_agent_status_json(r->agent, w);
}

static void role_free(struct role_node *node, void *state)
{
    (void)node;
    struct db_role *r = state;
    if (r != NULL) {
        db_agent_free(r->agent);
        free(r);
    }
}

const struct role_ops db_role_ops = {
    .name = "db",
    .start = start,
    .reload = reload,
    .stop = stop,
    .drained = drained,
    .metrics = metrics,
    .status = status,
    .free = role_free,
};
