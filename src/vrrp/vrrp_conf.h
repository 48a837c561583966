/* SPDX-License-Identifier: MIT */
/* The vip directives (vrrp/vrrp_conf.c) and what the runtime derives from a struct conf_vip. */
#ifndef KEEL_VRRP_VRRP_CONF_H
#define KEEL_VRRP_VRRP_CONF_H

#include <stdint.h>

#include "core/conf-t.h"

extern const struct conf_section vrrp_conf_section;

/* How many virtual routers a vip block makes: 1 (active-passive) or one per address. */
uint32_t vrrp_conf_n_routers(const struct conf_vip *vip);

/* The priority of node in router i of vip: its `priority` override, else by its rank in
 * that router's order of preference (200, 150, 100, 50, then 1). 0 if not a member. */
uint32_t vrrp_conf_priority(const struct conf_vip *vip, uint32_t router, const char *node);

#endif
