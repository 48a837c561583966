/* SPDX-License-Identifier: MIT */
/* The database directives (db/db_conf.c). */
#ifndef KEEL_DB_DB_CONF_H
#define KEEL_DB_DB_CONF_H

#include <stddef.h>

#include "core/conf-t.h"

extern const struct conf_section db_conf_section;

/* The etcd key of database db's what ("leader", "members/", "switchover"):
 * /keel/CLUSTER/db/NAME/WHAT, CLUSTER being the cluster's name or "keel". */
void db_conf_key(const struct conf *conf, const char *db, const char *what, char *out, size_t size);

#endif
