/* SPDX-License-Identifier: MIT */
/* The app role: the application supervisor (app/app_supervisor.c) behind the role table. Every
 * app setting applies live: a changed app is restarted gracefully, so a reload never refuses
 * anything here. */
#include "app/app_role.h"

#include <errno.h>

#include "app/app_supervisor.h"
#include "core/gen.h"
#include "core/json.h"
#include "monitor/metrics.h"

static int start(struct role_node *node, struct gen *gen, void **state, struct errbuf *eb)
{
    struct app_supervisor *sv = app_supervisor_start(node->loop, gen->conf, node->name);
    if (sv == NULL) {
        errbuf_set(eb, "out of memory starting the application supervisor");
        return -ENOMEM;
    }
    *state = sv;
    return 0;
}

static enum role_reload reload(struct role_node *node, void *state, struct gen *gen)
{
    (void)node;
    (void)app_supervisor_reload(state, gen->conf); /* logs its own failures */
    return ROLE_RELOAD_APPLIED;
}

static void stop(struct role_node *node, void *state)
{
    (void)node;
    app_supervisor_stop(state, 0); /* SIGTERM now, SIGKILL after each app's stop_timeout */
}

static bool drained(void *state)
{
    return app_supervisor_is_stopped(state);
}

static void metrics(void *state, struct metrics_out *out)
{
    app_supervisor_metrics(state, out);
}

static void status(void *state, struct json_w *w)
{
    json_w_key(w, "apps");
    app_supervisor_status_json(state, w);
}

static void role_free(struct role_node *node, void *state)
{
    (void)node;
    app_supervisor_free(state); /* kills and reaps what still runs (a second SIGTERM) */
}

const struct role_ops app_role_ops = {
    .name = "app",
    .start = start,
    .reload = reload,
    .stop = stop,
    .drained = drained,
    .metrics = metrics,
    .status = status,
    .free = role_free,
};
