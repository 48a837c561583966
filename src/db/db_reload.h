/* SPDX-License-Identifier: MIT */
/* What a reload may change in the db role while it runs (db/db_reload.c): a pure comparison
 * of two views of the database block that lists this node. Live: max_lag (the /read and
 * /replica checks), replication and single_node_writes (the primary sets
 * synchronous_standby_names again at its next turn), switchover_timeout and stream_timeout
 * (the agent's timers read them when they start). Not live (a restart is needed): the
 * block itself (added, removed, renamed), nodes, dcs, pg_port, agent_port, lease, bindir,
 * data_dir, user, the cluster's name (the etcd keys) and secret_file (the passwords), and the
 * nodes' addresses (PostgreSQL's allowed clients). write_port and read_port belong to the lb
 * nodes' frontends: the lb role applies them. docs/configuration.md, "Reloading". */
#ifndef KEEL_DB_DB_RELOAD_H
#define KEEL_DB_DB_RELOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/conf-t.h"

/* The database block that lists one node, copied out of a configuration. */
struct db_reload_view {
    bool has_db; /* the node is in a database block */
    struct conf_database db;
    char cluster_name[CONF_NAME_MAX];
    char secret_file[CONF_PATH_MAX];
    uint64_t nodes_hash; /* of every node's name and address */
};

/* Fill view from conf for node (NULL: no database). */
void db_reload_view_init(struct db_reload_view *view, const struct conf *conf, const char *node);

/* Told about each setting that differs and cannot change live. */
typedef void (*db_reload_refuse_fn)(void *data, const char *database, const char *setting);

/* Compare the running view with the new one: calls refuse for every non-live difference and
 * returns how many there were; 0 means the new view can be applied (db_agent_reconfigure).
 * Pure. */
uint32_t db_reload_check(const struct db_reload_view *old, const struct db_reload_view *new,
                         db_reload_refuse_fn refuse, void *data);

#endif
