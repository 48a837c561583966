/* SPDX-License-Identifier: MIT */
/* Unit tests of db/db_conf.c: database blocks, their defaults and their errors. */
#include <criterion/criterion.h>

#include "db/db_conf.c"
#include "lb/lb_algo.h"

static struct conf *load(const char *text)
{
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), CONF_LOAD_NO_RESOLVE, &conf, &errs);
    cr_assert_eq(rc, 0, "unexpected errors:\n%s", errs.text ? errs.text : "(none)");
    conf_errors_fini(&errs);
    return conf;
}

static void expect_errors(const char *text, const char *want)
{
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), CONF_LOAD_NO_RESOLVE, &conf, &errs);
    cr_assert_eq(rc, -KEEL_ECONFIG);
    cr_assert_str_eq(errs.text, want, "got:\n%s", errs.text);
    conf_errors_fini(&errs);
}

#define NODES                                                                                      \
    "node db1 { address 10.0.0.31; roles db; }\n"                                                  \
    "node db2 { address 10.0.0.32; roles db; }\n"

Test(db_conf, defaults)
{
    struct conf *conf = load("cluster c { state_dir /var/lib/keel; }\n" NODES
                             "database main { nodes db1 db2; dcs etcd http://10.0.0.41:2379 "
                             "http://10.0.0.42:2379; }\n");
    cr_assert_eq(conf->n_databases, 1);
    const struct conf_database *db = &conf->databases[0];
    cr_assert_str_eq(db->name, "main");
    cr_assert_eq(db->n_nodes, 2);
    cr_assert_eq(db->n_dcs, 2);
    cr_assert_str_eq(db->dcs[1], "http://10.0.0.42:2379");
    cr_assert_eq(db->replication, CONF_DB_SYNC);
    cr_assert(!db->single_node_writes);
    cr_assert_eq(db->pg_port, 5432);
    cr_assert_eq(db->agent_port, 8008);
    cr_assert_eq(db->write_port, 0);
    cr_assert_eq(db->lease_ms, 3000);
    cr_assert_eq(db->switchover_timeout_ms, 10000);
    cr_assert_eq(db->stream_timeout_ms, 5000);
    cr_assert_eq(db->max_lag, 16u << 20);
    cr_assert_str_eq(db->bindir, "/usr/lib/postgresql/15/bin");
    cr_assert_str_eq(db->data_dir, "/var/lib/keel/db/main");
    cr_assert_str_eq(db->user, "postgres");
    conf_free(conf);
}

Test(db_conf, everything_set)
{
    struct conf *conf =
        load(NODES "database main { engine postgresql; nodes db1; dcs etcd http://127.0.0.1:2379; "
                   "replication async; single_node_writes on; pg_port 6432; agent_port 9008; "
                   "write_port 5432; read_port 5433; lease 6s; max_lag 1m; bindir /opt/pg; "
                   "data_dir /srv/pg; user pgsql; switchover_timeout 1500ms; "
                   "stream_timeout 200ms; }\n");
    const struct conf_database *db = &conf->databases[0];
    cr_assert_eq(db->replication, CONF_DB_ASYNC);
    cr_assert(db->single_node_writes);
    cr_assert_eq(db->pg_port, 6432);
    cr_assert_eq(db->write_port, 5432);
    cr_assert_eq(db->read_port, 5433);
    cr_assert_eq(db->lease_ms, 6000);
    cr_assert_eq(db->switchover_timeout_ms, 1500);
    cr_assert_eq(db->stream_timeout_ms, 200);
    cr_assert_eq(db->max_lag, 1u << 20);
    cr_assert_str_eq(db->data_dir, "/srv/pg");
    cr_assert_str_eq(db->user, "pgsql");
    conf_free(conf);
}

Test(db_conf, errors_name_the_place)
{
    expect_errors(NODES "node lb1 { address 10.0.0.11; roles lb; }\n"
                        "database main { nodes db1 lb1 dbx; dcs etcd http://10.0.0.41:2379; "
                        "engine mysql; pg_port 8008; }\n",
                  "t.conf:4:1: error: database node \"lb1\" does not have the db role\n"
                  "t.conf:4:1: error: database node \"dbx\" is not defined\n"
                  "t.conf:4:1: error: pg_port and agent_port are both 8008\n"
                  "t.conf:4:1: error: database needs \"data_dir\", or the cluster's state_dir\n"
                  "t.conf:4:75: error: invalid value \"mysql\" for \"engine\": only postgresql is "
                  "supported\n");
    expect_errors(NODES "database m { nodes db1; dcs etcd http://10.0.0.1:2379; data_dir /d; "
                        "switchover_timeout 50ms; stream_timeout 11m; }\n",
                  "t.conf:3:88: error: invalid value \"50ms\" for \"switchover_timeout\": must be "
                  "between 100ms and 10m\n"
                  "t.conf:3:109: error: invalid value \"11m\" for \"stream_timeout\": must be "
                  "between 100ms and 10m\n");
    expect_errors(NODES "database m { nodes db1; dcs consul http://x; data_dir /d; }\n"
                        "database m { nodes db1; dcs etcd https://10.0.0.1:2379 http://a:1/v3; "
                        "data_dir /d; write_port 1; read_port 1; }\n",
                  "t.conf:3:29: error: invalid value \"consul\" for \"dcs\": only etcd is "
                  "supported\n"
                  "t.conf:4:1: error: write_port and read_port are both 1\n"
                  "t.conf:4:10: error: duplicate database \"m\" (first defined at line 3)\n"
                  "t.conf:4:34: error: invalid etcd endpoint \"https://10.0.0.1:2379\": expected "
                  "http://IP:PORT\n"
                  "t.conf:4:56: error: invalid etcd endpoint \"http://a:1/v3\": expected "
                  "http://IP:PORT\n");
}

Test(db_conf, routes_on_the_lb_nodes)
{
    struct conf *conf = load(NODES "node lb1 { address 10.0.0.11; roles lb; }\n"
                                   "database main { nodes db1 db2; dcs etcd http://10.0.0.41:2379; "
                                   "data_dir /d; write_port 5432; read_port 5433; "
                                   "agent_port 8009; pg_port 6432; }\n");
    cr_assert_eq(conf->n_frontends, 2);
    cr_assert_eq(conf->n_backends, 2);
    const struct conf_frontend *w = &conf->frontends[0], *r = &conf->frontends[1];
    cr_assert_str_eq(w->name, "main-write");
    cr_assert_eq(w->mode, CONF_MODE_TCP);
    cr_assert_eq(w->role, CONF_ROLE_LB);
    cr_assert_str_eq(w->binds[0].text, "0.0.0.0:5432");
    cr_assert_str_eq(conf->backends[w->backend_index].name, "main-primary");
    cr_assert_str_eq(r->name, "main-read");
    const struct conf_backend *rb = &conf->backends[r->backend_index];
    cr_assert_str_eq(rb->name, "main-readers");
    cr_assert_str_eq(lb_algo_of(rb)->name, "leastconn");
    cr_assert(rb->shutdown_on_down);
    cr_assert_eq(rb->n_servers, 2);
    cr_assert_str_eq(rb->servers[1].name, "db2");
    cr_assert_str_eq(rb->servers[1].addr.text, "10.0.0.32:6432");
    cr_assert_eq(rb->check.type, CONF_CHECK_HTTP);
    cr_assert_str_eq(rb->check.path, "/read");
    cr_assert_eq(rb->check.port, 8009);
    cr_assert_str_eq(conf->backends[w->backend_index].check.path, "/primary");
    conf_free(conf);
}

Test(db_conf, routes_listen_on_the_lb_nodes_vips)
{
    struct conf *conf = load(NODES "node lb1 { address 10.0.0.11; roles lb; }\n"
                                   "node lb2 { address 10.0.0.12; roles lb; }\n"
                                   "vip 10.0.0.100 { nodes lb1 lb2; interface eth0; vrid 7; }\n"
                                   "database main { nodes db1 db2; dcs etcd http://10.0.0.41:2379; "
                                   "data_dir /d; write_port 5432; read_port 5433; }\n");
    const struct conf_frontend *w = &conf->frontends[0], *r = &conf->frontends[1];
    cr_assert_eq(w->n_binds, 2, "the node's address and the lbs' VIP");
    cr_assert_str_eq(w->binds[1].text, "10.0.0.100:5432");
    cr_assert_eq(r->n_binds, 2);
    cr_assert_str_eq(r->binds[1].text, "10.0.0.100:5433");
    conf_free(conf);
}

Test(db_conf, routes_need_free_names)
{
    const char *text = NODES "frontend main-write { bind :1; backend b; }\n"
                             "backend b { server s 10.0.0.1:1; }\n"
                             "database main { nodes db1; dcs etcd http://10.0.0.41:2379; "
                             "data_dir /d; write_port 5432; }\n";
    struct conf *conf = NULL;
    struct conf_errors errs;
    cr_assert_eq(conf_load_mem("t.conf", text, strlen(text), CONF_LOAD_NO_RESOLVE, &conf, &errs),
                 -KEEL_ECONFIG);
    cr_assert_str_eq(errs.text, "t.conf:5:1: error: database \"main\" needs the frontend name "
                                "\"main-write\", which is taken (line 3)\n");
    conf_errors_fini(&errs);
}
