/* SPDX-License-Identifier: MIT */
/* The db role's operations (db/db_role.c), for the role table (core/role.c). */
#ifndef KEEL_DB_DB_ROLE_H
#define KEEL_DB_DB_ROLE_H

#include "core/role-t.h"

extern const struct role_ops db_role_ops;

#endif
