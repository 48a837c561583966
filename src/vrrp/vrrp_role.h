/* SPDX-License-Identifier: MIT */
/* The vrrp role's operations (vrrp/vrrp_role.c), for the role table (core/role.c). */
#ifndef KEEL_VRRP_VRRP_ROLE_H
#define KEEL_VRRP_VRRP_ROLE_H

#include "core/role-t.h"

extern const struct role_ops vrrp_role_ops;

#endif
