/* SPDX-License-Identifier: MIT */
/* What a reload may change in the VRRP role while it runs (vrrp/vrrp_reload.c): a pure
 * comparison of two views of the vip blocks that list this node. Live: each node's priority
 * (and the order of nodes, which sets it), advert, preempt, preempt_delay, track and notify.
 * Not live (a restart is needed): the blocks themselves (added, removed, vrid), addresses,
 * mode, interface, prefix, unicast, auth, port, the set of nodes, the nodes' addresses and,
 * with auth, the cluster's secret_file. docs/configuration.md, "Reloading". */
#ifndef KEEL_VRRP_VRRP_RELOAD_H
#define KEEL_VRRP_VRRP_RELOAD_H

#include <stdint.h>

#include "core/conf-t.h"

#define VRRP_RELOAD_MAX_BLOCKS 32

struct vrrp_reload_block {
    struct conf_vip vip;
    char addrs[CONF_VIP_MAX_NODES][64]; /* the address of each of vip.nodes ("" unknown) */
};

/* The vip blocks that list one node, copied out of a configuration. */
struct vrrp_reload_view {
    struct vrrp_reload_block blocks[VRRP_RELOAD_MAX_BLOCKS];
    uint32_t n_blocks;
    char secret_file[CONF_PATH_MAX];
};

/* Fill view with the blocks of conf that list node (NULL: none), at most
 * VRRP_RELOAD_MAX_BLOCKS of them. */
void vrrp_reload_view_init(struct vrrp_reload_view *view, const struct conf *conf,
                           const char *node);

/* Told about each setting of block vrid that differs and cannot change live. */
typedef void (*vrrp_reload_refuse_fn)(void *data, uint32_t vrid, const char *setting);

/* Compare the running view with the new one: calls refuse for every non-live difference (a
 * block is matched by its vrid) and returns how many there were; 0 means the new view can be
 * applied with vrrp_reconfigure. Pure. */
uint32_t vrrp_reload_check(const struct vrrp_reload_view *old, const struct vrrp_reload_view *new,
                           vrrp_reload_refuse_fn refuse, void *data);

#endif
