/* SPDX-License-Identifier: MIT */
/* The VRRP role of an lb node (vrrp/vrrp.c): the virtual routers of every vip block that
 * lists this node, on the control thread's event loop. */
#ifndef KEEL_VRRP_VRRP_H
#define KEEL_VRRP_VRRP_H

#include <netinet/in.h>
#include <stdbool.h>

#include "core/conf-t.h"
#include "core/ev.h"
#include "monitor/metrics-t.h"

struct vrrp;
struct json_w;
struct metrics_out;

/* What this node does with a virtual IP, for its listener gates (lb/lb_gate.h). */
enum vrrp_hold {
    VRRP_HOLD_RELEASED = 0, /* gave it up: close the gates */
    VRRP_HOLD_HELD,         /* took it: open the gates */
    VRRP_HOLD_LEAVING,      /* still holds it, handing over: take no new connection, refuse
                             * none (lb_gate_quiesce) */
};

/* Called when the node's hold on a virtual IP changes. */
typedef void (*vrrp_hold_fn)(void *data, struct in_addr ip, enum vrrp_hold hold);

/* Declare the gates of the node's virtual IPs (before its listeners are opened), then start
 * its routers: remove addresses a crashed run left behind, open the sockets, begin as
 * backup. Errors are logged; a router that cannot run stays in fault. NULL only when the
 * node is in no vip block or on out of memory. */
struct vrrp *vrrp_start(struct ev_loop *loop, const struct conf *conf, const char *node,
                        vrrp_hold_fn on_hold, void *data);

/* Declare gates for conf's virtual IPs of node without starting anything (boot: before
 * the listeners exist). */
void vrrp_declare_gates(const struct conf *conf, const char *node);

/* Tracking: whether the node can serve (some server up in each backend). A router with
 * track on goes to fault while it cannot, and comes back when it can. */
void vrrp_set_can_serve(struct vrrp *v, bool can_serve);

/* Graceful stop, first step: every router sends a priority-0 advert; masters keep their
 * addresses (and keep accepting on them) until a successor advertises, so no connection
 * attempt is lost in between, or until four advert intervals have passed. True when
 * nothing is held any more; otherwise poll vrrp_handed_over until it says true. */
bool vrrp_hand_over(struct vrrp *v);
bool vrrp_handed_over(struct vrrp *v);

/* Reload: every router takes the live settings of its vip block in conf (priority, advert,
 * preempt, preempt_delay, track, notify). The caller checked with vrrp_reload_check that
 * nothing else changed. A master announces a new priority or interval at once. NULL v:
 * nothing. conf and node are borrowed for the call. */
void vrrp_reconfigure(struct vrrp *v, const struct conf *conf, const char *node);

/* Stop now: as vrrp_hand_over, releasing every address at once. */
void vrrp_stop(struct vrrp *v);
void vrrp_free(struct vrrp *v);

void vrrp_metrics(const struct vrrp *v, struct metrics_out *out);
void vrrp_status_json(const struct vrrp *v, struct json_w *w); /* writes one JSON array */

/* The VRRP role's metric families (vrrp_metrics writes them), for the registry. */
extern const struct metric_table vrrp_metric_table;

#endif
