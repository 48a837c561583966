/* SPDX-License-Identifier: MIT */
/* The app role's operations (app/app_role.c), for the role table (core/role.c). */
#ifndef KEEL_APP_APP_ROLE_H
#define KEEL_APP_APP_ROLE_H

#include "core/role-t.h"

extern const struct role_ops app_role_ops;

#endif
