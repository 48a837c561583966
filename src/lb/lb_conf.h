/* SPDX-License-Identifier: MIT */
/* The load balancer's configuration directives: frontend and backend blocks, their
 * directives, server and check lines, and the frontend -> backend cross-checks. */
#ifndef KEEL_LB_LB_CONF_H
#define KEEL_LB_LB_CONF_H

struct conf_section;

/* Listed by core/conf_registry.c. */
extern const struct conf_section lb_conf_section;

#endif
