/* SPDX-License-Identifier: MIT */
/* The vrrp role: the node's virtual routers (vrrp/vrrp.c) behind the role table. It tells the
 * serving roles about its hold on each virtual IP through role_hold, reads whether the node
 * can serve from the node context, and on a reload applies the live settings of its vip
 * blocks or refuses the whole change (vrrp/vrrp_reload.h says which are which). */
#include "vrrp/vrrp_role.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/gen.h"
#include "core/log.h"
#include "core/role.h"
#include "core/json.h"
#include "monitor/metrics.h"
#include "vrrp/vrrp.h"
#include "vrrp/vrrp_reload.h"

struct vrrp_role {
    struct vrrp *v;               /* NULL: the node is in no vip block */
    struct vrrp_reload_view view; /* the blocks it runs, to compare a reload with */
};

static void prepare(struct role_node *node, const struct conf *conf)
{
    vrrp_declare_gates(conf, node->name);
}

static void on_hold(void *data, struct in_addr ip, enum vrrp_hold hold)
{
    enum role_hold h = hold == VRRP_HOLD_HELD      ? ROLE_HOLD_HELD
                       : hold == VRRP_HOLD_LEAVING ? ROLE_HOLD_LEAVING
                                                   : ROLE_HOLD_RELEASED;
    role_hold(data, ip, h);
}

static int start(struct role_node *node, struct gen *gen, void **state, struct errbuf *eb)
{
    struct vrrp_role *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        errbuf_set(eb, "out of memory");
        return -ENOMEM;
    }
    vrrp_reload_view_init(&r->view, gen->conf, node->name);
    r->v = vrrp_start(node->loop, gen->conf, node->name, on_hold, node); /* logs its errors */
    *state = r;
    return 0;
}

static void refuse(void *data, uint32_t vrid, const char *setting)
{
    (void)data;
    log_error("vrrp", "reload: vip vrid %u: %s cannot change while keel runs (restart it)", vrid,
              setting);
}

static enum role_reload reload(struct role_node *node, void *state, struct gen *gen)
{
    struct vrrp_role *r = state;
    struct vrrp_reload_view *next = malloc(sizeof(*next));
    if (next == NULL) {
        log_error("vrrp", "reload: out of memory");
        return ROLE_RELOAD_REFUSED;
    }
    vrrp_reload_view_init(next, gen->conf, node->name);
    if (vrrp_reload_check(&r->view, next, refuse, NULL) != 0) {
        free(next);
        return ROLE_RELOAD_REFUSED;
    }
    vrrp_reconfigure(r->v, gen->conf, node->name);
    memcpy(&r->view, next, sizeof(r->view));
    free(next);
    return ROLE_RELOAD_APPLIED;
}

static void tick(struct role_node *node, void *state)
{
    struct vrrp_role *r = state;
    vrrp_set_can_serve(r->v, node->can_serve);
}

/* Priority 0: a backup takes the virtual IPs at once; until it does, the lb keeps accepting
 * on them (it waits for the handover). */
static void stop(struct role_node *node, void *state)
{
    (void)node;
    struct vrrp_role *r = state;
    (void)vrrp_hand_over(r->v); /* polled through handed_over */
}

static bool handed_over(void *state)
{
    struct vrrp_role *r = state;
    return vrrp_handed_over(r->v);
}

static void metrics(void *state, struct metrics_out *out)
{
    const struct vrrp_role *r = state;
    vrrp_metrics(r->v, out);
}

static void status(void *state, struct json_w *w)
{
    const struct vrrp_role *r = state;
    json_w_key(w, "vrrp");
    vrrp_status_json(r->v, w);
}

static void role_free(struct role_node *node, void *state)
{
    (void)node;
    struct vrrp_role *r = state;
    if (r != NULL) {
        vrrp_free(r->v);
        free(r);
    }
}

const struct role_ops vrrp_role_ops = {
    .name = "vrrp",
    .prepare = prepare,
    .start = start,
    .reload = reload,
    .tick = tick,
    .stop = stop,
    .handed_over = handed_over,
    .drained = handed_over,
    .on_hold = NULL,
    .metrics = metrics,
    .status = status,
    .free = role_free,
};
