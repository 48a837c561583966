/* SPDX-License-Identifier: MIT */
/* The database directives (db/db_conf.c). */
#ifndef KEEL_DB_DB_CONF_H
#define KEEL_DB_DB_CONF_H

#include "core/conf-t.h"

extern const struct conf_section db_conf_section;

#endif
