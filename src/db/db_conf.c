/* SPDX-License-Identifier: MIT */
/* The directive table of the database tier: database NAME { nodes; dcs; replication;
 * single_node_writes; pg_port; agent_port; write_port; read_port; lease; switchover_timeout;
 * stream_timeout; max_lag; bindir; data_dir; user }, and the checks that span blocks (the nodes
 * exist and have the db role, ports do not collide, a state_dir or a data_dir to keep the data in).
 */
#include "db/db_conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"

#define DB CONF_CTX_DATABASE
#define DURATION_MAX (3600u * 1000u)

static void *open_database(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                           const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf *conf = obj;
    struct errbuf eb;
    if (conf_check_name(tok[1].text, &eb) != 0) {
        conf_error(cp, &tok[1], "invalid database name \"%s\": %s", tok[1].text, eb.msg);
    }
    for (uint32_t i = 0; i < conf->n_databases; i++) {
        if (strcmp(conf->databases[i].name, tok[1].text) == 0) {
            conf_error(cp, &tok[1], "duplicate database \"%s\" (first defined at line %d)",
                       tok[1].text, conf->databases[i].pos.line);
        }
    }
    struct conf_database *db = conf_array_push(cp, (void **)&conf->databases, &conf->n_databases,
                                               sizeof(*conf->databases));
    if (db == NULL) {
        return NULL;
    }
    (void)snprintf(db->name, sizeof(db->name), "%s", tok[1].text); /* may truncate if invalid */
    conf_pos_set(&db->pos, &tok[0]);
    (void)snprintf(db->user, sizeof(db->user), "postgres");
    return db;
}

static int set_engine(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                      const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)obj;
    (void)n;
    if (strcmp(tok[1].text, "postgresql") != 0) {
        conf_error(cp, &tok[1], "invalid value \"%s\" for \"engine\": only postgresql is supported",
                   tok[1].text);
        return -KEEL_ECONFIG;
    }
    return 0;
}

static int set_nodes(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                     const struct conf_token *tok, size_t n)
{
    (void)d;
    struct conf_database *db = obj;
    return conf_set_node_names(cp, tok, n, db->nodes, &db->n_nodes, CONF_DB_MAX_NODES);
}

/* dcs etcd URL...: http://HOST:PORT, no path. */
static int set_dcs(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                   const struct conf_token *tok, size_t n)
{
    (void)d;
    struct conf_database *db = obj;
    return conf_set_dcs(cp, tok, n, db->dcs, &db->n_dcs);
}

static const struct conf_enum replication_values[] = {
    {"synchronous", CONF_DB_SYNC},
    {"async", CONF_DB_ASYNC},
    {NULL, 0},
};

static const struct conf_directive db_directives[] = {
    {.name = "database",
     .contexts = CONF_CTX_MAIN,
     .min_args = 1,
     .max_args = 1,
     .flags = CONF_F_REPEAT,
     .block_ctx = DB,
     .open = open_database,
     .syntax = "database NAME { ... }",
     .help = "a PostgreSQL primary-replica cluster with automatic failover"},
    {.name = "engine",
     .contexts = DB,
     .min_args = 1,
     .max_args = 1,
     .set = set_engine,
     .def = "postgresql",
     .syntax = "engine postgresql",
     .help = "the database engine"},
    {.name = "nodes",
     .contexts = DB,
     .min_args = 1,
     .max_args = CONF_ARGS_MANY,
     .flags = CONF_F_REQUIRED,
     .set = set_nodes,
     .syntax = "nodes NODE...",
     .help = "the db nodes, each running one PostgreSQL of the cluster"},
    {.name = "dcs",
     .contexts = DB,
     .min_args = 2,
     .max_args = CONF_ARGS_MANY,
     .flags = CONF_F_REQUIRED,
     .set = set_dcs,
     .syntax = "dcs etcd URL...",
     .help = "the etcd cluster that holds the leader key"},
    {.name = "replication",
     .contexts = DB,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_enum,
     CONF_FIELD(struct conf_database, replication),
     .values = replication_values,
     .def = "synchronous",
     .syntax = "replication synchronous|async",
     .help = "whether a commit waits for a replica"},
    {.name = "single_node_writes",
     .contexts = DB,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_onoff,
     CONF_FIELD(struct conf_database, single_node_writes),
     .def = "off",
     .syntax = "single_node_writes on|off",
     .help = "synchronous: keep accepting writes when no replica is left"},
    {.name = "pg_port",
     .contexts = DB,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_uint,
     CONF_FIELD(struct conf_database, pg_port),
     .min = 1,
     .max = 65535,
     .def = "5432",
     .syntax = "pg_port N",
     .help = "the port PostgreSQL listens on, on each db node's address"},
    {.name = "agent_port",
     .contexts = DB,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_uint,
     CONF_FIELD(struct conf_database, agent_port),
     .min = 1,
     .max = 65535,
     .def = "8008",
     .syntax = "agent_port N",
     .help = "the port of the agent's health endpoints (/primary, /replica, /health, /cluster)"},
    {.name = "write_port",
     .contexts = DB,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_uint,
     CONF_FIELD(struct conf_database, write_port),
     .min = 1,
     .max = 65535,
     .syntax = "write_port N",
     .help = "on the lb nodes: a TCP port that leads to the primary"},
    {.name = "read_port",
     .contexts = DB,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_uint,
     CONF_FIELD(struct conf_database, read_port),
     .min = 1,
     .max = 65535,
     .syntax = "read_port N",
     .help = "on the lb nodes: a TCP port that leads to the replicas"},
    {.name = "lease",
     .contexts = DB,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_database, lease_ms),
     .min = 1000,
     .max = 600000,
     .def = "3s",
     .syntax = "lease DURATION",
     .help = "how long the leader key outlives a primary that stopped renewing it"},
    {.name = "switchover_timeout",
     .contexts = DB,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_database, switchover_timeout_ms),
     .min = 100,
     .max = 600000,
     .def = "10s",
     .syntax = "switchover_timeout DURATION",
     .help = "how long a switchover waits for its target to catch up, and then to lead"},
    {.name = "stream_timeout",
     .contexts = DB,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_database, stream_timeout_ms),
     .min = 100,
     .max = 600000,
     .def = "5s",
     .syntax = "stream_timeout DURATION",
     .help = "how long a replica may receive nothing from the leader before it follows again"},
    {.name = "max_lag",
     .contexts = DB,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_size,
     CONF_FIELD(struct conf_database, max_lag),
     .min = 0,
     .max = UINT32_MAX,
     .def = "16m",
     .syntax = "max_lag SIZE",
     .help = "how far behind a replica may be and still serve reads or be promoted"},
    {.name = "bindir",
     .contexts = DB,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_string,
     CONF_FIELD(struct conf_database, bindir),
     .def = "/usr/lib/postgresql/15/bin",
     .syntax = "bindir PATH",
     .help = "where the PostgreSQL programs are"},
    {.name = "data_dir",
     .contexts = DB,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_string,
     CONF_FIELD(struct conf_database, data_dir),
     .syntax = "data_dir PATH",
     .help = "the data directory on each db node (default: STATE_DIR/db/NAME)"},
    {.name = "user",
     .contexts = DB,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_name,
     CONF_FIELD(struct conf_database, user),
     .syntax = "user NAME",
     .help = "the system user PostgreSQL runs as"},
};

static void db_conf_validate(struct conf_parser *cp, struct conf *conf)
{
    for (uint32_t i = 0; i < conf->n_databases; i++) {
        struct conf_database *db = &conf->databases[i];
        for (uint32_t k = 0; k < db->n_nodes; k++) {
            const struct conf_node *node = conf_find_node(conf, db->nodes[k]);
            if (node == NULL) {
                conf_error_at(cp, &db->pos, "database node \"%s\" is not defined", db->nodes[k]);
            } else if ((node->roles & CONF_ROLE_DB) == 0) {
                conf_error_at(cp, &db->pos, "database node \"%s\" does not have the db role",
                              db->nodes[k]);
            }
        }
        if (db->pg_port == db->agent_port) {
            conf_error_at(cp, &db->pos, "pg_port and agent_port are both %u", db->pg_port);
        }
        if (db->write_port != 0 && db->write_port == db->read_port) {
            conf_error_at(cp, &db->pos, "write_port and read_port are both %u", db->write_port);
        }
        if (db->data_dir[0] == '\0') {
            if (conf->state_dir[0] == '\0') {
                conf_error_at(cp, &db->pos,
                              "database needs \"data_dir\", or the cluster's state_dir");
            } else {
                (void)snprintf(db->data_dir, sizeof(db->data_dir), "%.900s/db/%s", conf->state_dir,
                               db->name);
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * Routes: what a database block means on the lb nodes
 * ------------------------------------------------------------------------------------------ */

#define ROUTES_TEXT_MAX 8192

/* The routes of one database as configuration text: its write port to the primary, its read
 * port to the nodes whose agent says they take reads (/read: a replica within max_lag, or
 * the primary when no replica qualifies). The ports listen on each lb node's address and on
 * the virtual IPs (only lb nodes hold them). Health from the agents; sessions to a node that
 * loses the role are closed. */
static int routes_text(const struct conf *conf, const struct conf_database *db, char *out,
                       size_t size)
{
    size_t k = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int n_ = snprintf(out + k, size - k, __VA_ARGS__);                                         \
        if (n_ < 0 || (size_t)n_ >= size - k) {                                                    \
            return -ENOSPC;                                                                        \
        }                                                                                          \
        k += (size_t)n_;                                                                           \
    } while (0)
    for (uint32_t i = 0; i < db->n_nodes; i++) {
        const struct conf_node *node = conf_find_node(conf, db->nodes[i]);
        PUT("node %s { address %s; roles db; }\n", node->name, node->address);
    }
    static const struct {
        const char *suffix, *backend, *balance, *path;
    } kinds[] = {{"write", "primary", "roundrobin", "/primary"},
                 {"read", "readers", "leastconn", "/read"}};
    for (int r = 0; r < 2; r++) {
        uint32_t port = r == 0 ? db->write_port : db->read_port;
        if (port == 0) {
            continue;
        }
        PUT("frontend %s-%s { bind :%u; mode tcp; backend %s-%s; timeout_client 1h;", db->name,
            kinds[r].suffix, port, db->name, kinds[r].backend);
        for (uint32_t v = 0; v < conf->n_vips; v++) {
            for (uint32_t a = 0; a < conf->vips[v].n_addrs; a++) {
                char ip[INET_ADDRSTRLEN];
                (void)inet_ntop(AF_INET, &conf->vips[v].addrs[a], ip, sizeof(ip));
                PUT(" bind %s:%u;", ip, port);
            }
        }
        PUT(" }\n"
            "backend %s-%s { mode tcp; balance %s; shutdown_on_down on; timeout_server 1h;\n"
            "    check http path %s port %u interval 500ms timeout 500ms rise 1 fall 1;\n",
            db->name, kinds[r].backend, kinds[r].balance, kinds[r].path, db->agent_port);
        for (uint32_t i = 0; i < db->n_nodes; i++) {
            PUT("    server %s %s:%u;\n", db->nodes[i], db->nodes[i], db->pg_port);
        }
        PUT("}\n");
    }
#undef PUT
    return 0;
}

/* Move the frontends and backends of from into conf (from keeps only empty arrays). */
static int merge(struct conf *conf, struct conf *from, const struct conf_database *db,
                 struct errbuf *eb)
{
    for (uint32_t f = 0; f < from->n_frontends; f++) {
        for (uint32_t i = 0; i < conf->n_frontends; i++) {
            if (strcmp(conf->frontends[i].name, from->frontends[f].name) == 0) {
                errbuf_set(eb,
                           "%d:%d: error: database \"%s\" needs the frontend name \"%s\", "
                           "which is taken (line %d)",
                           db->pos.line, db->pos.col, db->name, from->frontends[f].name,
                           conf->frontends[i].pos.line);
                return -KEEL_ECONFIG;
            }
        }
    }
    for (uint32_t b = 0; b < from->n_backends; b++) {
        if (conf_find_backend(conf, from->backends[b].name) != NULL) {
            errbuf_set(eb,
                       "%d:%d: error: database \"%s\" needs the backend name \"%s\", "
                       "which is taken",
                       db->pos.line, db->pos.col, db->name, from->backends[b].name);
            return -KEEL_ECONFIG;
        }
    }
    struct conf_frontend *fes =
        realloc(conf->frontends, (conf->n_frontends + from->n_frontends) * sizeof(*fes));
    if (fes == NULL) {
        return -ENOMEM;
    }
    conf->frontends = fes;
    struct conf_backend *bes =
        realloc(conf->backends, (conf->n_backends + from->n_backends) * sizeof(*bes));
    if (bes == NULL) {
        return -ENOMEM;
    }
    conf->backends = bes;
    for (uint32_t f = 0; f < from->n_frontends; f++) {
        struct conf_frontend *fe = &conf->frontends[conf->n_frontends++];
        *fe = from->frontends[f];
        fe->backend_index += conf->n_backends;
        fe->pos = db->pos;
    }
    for (uint32_t b = 0; b < from->n_backends; b++) {
        conf->backends[conf->n_backends] = from->backends[b];
        conf->backends[conf->n_backends++].pos = db->pos;
    }
    from->n_frontends = from->n_backends = 0; /* conf owns their arrays now */
    return 0;
}

static int db_conf_expand(struct conf *conf, unsigned flags, struct errbuf *eb)
{
    for (uint32_t d = 0; d < conf->n_databases; d++) {
        const struct conf_database *db = &conf->databases[d];
        if (db->write_port == 0 && db->read_port == 0) {
            continue;
        }
        char *text = malloc(ROUTES_TEXT_MAX);
        if (text == NULL || routes_text(conf, db, text, ROUTES_TEXT_MAX) != 0) {
            free(text);
            errbuf_set(eb, "%d:%d: error: database \"%s\": cannot build its routes", db->pos.line,
                       db->pos.col, db->name);
            return -KEEL_ECONFIG;
        }
        struct conf *routes = NULL;
        struct conf_errors errs = {0};
        int rc = conf_load_mem(db->name, text, strlen(text), flags, &routes, &errs);
        free(text);
        if (rc == 0) {
            rc = merge(conf, routes, db, eb);
        } else {
            errbuf_set(eb, "%d:%d: error: database \"%s\": its routes are invalid: %.*s",
                       db->pos.line, db->pos.col, db->name,
                       errs.text != NULL ? (int)strcspn(errs.text, "\n") : 0,
                       errs.text != NULL ? errs.text : "");
        }
        conf_errors_fini(&errs);
        conf_free(routes);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

const struct conf_section db_conf_section = {
    .name = "db",
    .directives = db_directives,
    .n_directives = sizeof(db_directives) / sizeof(db_directives[0]),
    .validate = db_conf_validate,
    .expand = db_conf_expand,
};

void db_conf_key(const struct conf *conf, const char *db, const char *what, char *out, size_t size)
{
    const char *cluster = conf->cluster_name[0] != '\0' ? conf->cluster_name : "keel";
    (void)snprintf(out, size, "/keel/%s/db/%s/%s", cluster, db, what);
}
