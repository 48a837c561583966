/* SPDX-License-Identifier: MIT */
/* Which database changes a running agent can take (db_reload.h lists them): pure, no I/O.
 * What is refused is fixed into what already runs: PostgreSQL's data directory, ports,
 * binaries and pg_hba.conf, the etcd client and keys, the lease the leader holds (a shorter
 * one live would let the fence deadline pass the lease's real end). */
#include "db/db_reload.h"

#include <stdio.h>
#include <string.h>

#include "core/conf.h"

static const struct conf_database *find_db(const struct conf *conf, const char *node)
{
    for (uint32_t d = 0; node != NULL && d < conf->n_databases; d++) {
        for (uint32_t i = 0; i < conf->databases[d].n_nodes; i++) {
            if (strcmp(conf->databases[d].nodes[i], node) == 0) {
                return &conf->databases[d];
            }
        }
    }
    return NULL;
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (size_t i = 0; i == 0 || s[i - 1] != '\0'; i++) { /* the NUL too: "ab","c" != "a","bc" */
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    }
    return h;
}

void db_reload_view_init(struct db_reload_view *view, const struct conf *conf, const char *node)
{
    memset(view, 0, sizeof(*view));
    const struct conf_database *db = find_db(conf, node);
    view->has_db = db != NULL;
    if (db != NULL) {
        view->db = *db;
    }
    (void)snprintf(view->cluster_name, sizeof(view->cluster_name), "%s", conf->cluster_name);
    (void)snprintf(view->secret_file, sizeof(view->secret_file), "%s", conf->secret_file);
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < conf->n_nodes; i++) {
        h = fnv(fnv(h, conf->nodes[i].name), conf->nodes[i].address);
    }
    view->nodes_hash = h;
}

static bool same_nodes(const struct conf_database *x, const struct conf_database *y)
{
    if (x->n_nodes != y->n_nodes) {
        return false;
    }
    for (uint32_t i = 0; i < x->n_nodes; i++) {
        if (strcmp(x->nodes[i], y->nodes[i]) != 0) {
            return false;
        }
    }
    return true;
}

static bool same_dcs(const struct conf_database *x, const struct conf_database *y)
{
    if (x->n_dcs != y->n_dcs) {
        return false;
    }
    for (uint32_t i = 0; i < x->n_dcs; i++) {
        if (strcmp(x->dcs[i], y->dcs[i]) != 0) {
            return false;
        }
    }
    return true;
}

uint32_t db_reload_check(const struct db_reload_view *old, const struct db_reload_view *new,
                         db_reload_refuse_fn refuse, void *data)
{
    if (!old->has_db && !new->has_db) {
        return 0;
    }
    if (old->has_db != new->has_db || strcmp(old->db.name, new->db.name) != 0) {
        refuse(data, old->has_db ? old->db.name : new->db.name,
               old->has_db && new->has_db ? "the database this node is in"
               : old->has_db              ? "database block (removed for this node)"
                                          : "database block (added for this node)");
        return 1;
    }
    const struct conf_database *x = &old->db, *y = &new->db;
    struct {
        bool differs;
        const char *setting;
    } checks[] = {
        {!same_nodes(x, y), "nodes"},
        {!same_dcs(x, y), "dcs"},
        {x->pg_port != y->pg_port, "pg_port"},
        {x->agent_port != y->agent_port, "agent_port"},
        {x->lease_ms != y->lease_ms, "lease"},
        {strcmp(x->bindir, y->bindir) != 0, "bindir"},
        {strcmp(x->data_dir, y->data_dir) != 0, "data_dir"},
        {strcmp(x->user, y->user) != 0, "user"},
        {strcmp(old->cluster_name, new->cluster_name) != 0, "cluster name (the etcd keys)"},
        {strcmp(old->secret_file, new->secret_file) != 0, "secret_file (the passwords)"},
        {old->nodes_hash != new->nodes_hash,
         "node names or addresses (PostgreSQL's allowed clients)"},
    };
    uint32_t n = 0;
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        if (checks[i].differs) {
            refuse(data, x->name, checks[i].setting);
            n++;
        }
    }
    return n;
}
