/* SPDX-License-Identifier: MIT */
/* The lb role's operations (lb/lb_role.c), for the role table (core/role.c). The lb role also
 * serves the web role's sites: they are frontends of the same workers. */
#ifndef KEEL_LB_LB_ROLE_H
#define KEEL_LB_LB_ROLE_H

#include "core/role-t.h"
#include "monitor/metrics-t.h"

extern const struct role_ops lb_role_ops;

/* The families the lb role writes at /metrics (the registry lists it). */
extern const struct metric_table lb_role_metric_table;

#endif
