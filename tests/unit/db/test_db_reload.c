/* SPDX-License-Identifier: MIT */
/* Unit tests of db/db_reload.c: which database changes a running agent takes (max_lag,
 * replication, single_node_writes, the lb side's ports) and which it refuses, each named. */
#include <criterion/criterion.h>

#include "db/db_reload.c"

#include <stdlib.h>

#define NODES                                                                                      \
    "cluster c { state_dir /var/lib/keel; secret_file /nonexistent/k; }\n"                         \
    "node db1 { address 10.0.0.31; roles db; }\n"                                                  \
    "node db2 { address 10.0.0.32; roles db; }\n"

static struct db_reload_view *view(const char *text, const char *node)
{
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), CONF_LOAD_NO_RESOLVE, &conf, &errs);
    cr_assert_eq(rc, 0, "unexpected errors:\n%s", errs.text ? errs.text : "(none)");
    conf_errors_fini(&errs);
    struct db_reload_view *v = malloc(sizeof(*v));
    cr_assert_not_null(v);
    db_reload_view_init(v, conf, node);
    conf_free(conf);
    return v;
}

struct seen {
    char text[1024];
    uint32_t n;
};

static void collect(void *data, const char *database, const char *setting)
{
    struct seen *s = data;
    size_t k = strlen(s->text);
    (void)snprintf(s->text + k, sizeof(s->text) - k, "%s%s:%s", s->n == 0 ? "" : "|", database,
                   setting);
    s->n++;
}

static void expect(const char *a, const char *b, const char *want)
{
    struct db_reload_view *x = view(a, "db1"), *y = view(b, "db1");
    struct seen s = {.text = "", .n = 0};
    uint32_t n = db_reload_check(x, y, collect, &s);
    cr_assert_eq(n, s.n);
    cr_assert_str_eq(s.text, want, "from:\n%s\nto:\n%s", a, b);
    free(x);
    free(y);
}

#define DB(body) NODES "database main { nodes db1 db2; dcs etcd http://10.0.0.41:2379; " body " }\n"

Test(db_reload, nothing_changed_is_live)
{
    expect(DB(""), DB(""), "");
    expect(NODES, NODES, "");
}

Test(db_reload, live_settings_are_not_refused)
{
    expect(DB(""),
           DB("max_lag 1m; replication async; single_node_writes on; write_port 6432; "
              "read_port 6433;"),
           "");
}

Test(db_reload, what_runs_is_refused)
{
    expect(DB(""),
           DB("pg_port 5440; agent_port 8010; lease 8s; bindir /opt/pg/bin; "
              "data_dir /srv/pg; user keel;"),
           "main:pg_port|main:agent_port|main:lease|main:bindir|main:data_dir|main:user");
}

Test(db_reload, membership_and_coordinates_are_refused)
{
    expect(DB(""),
           NODES "node db3 { address 10.0.0.33; roles db; }\n"
                 "database main { nodes db1 db2 db3; dcs etcd http://10.0.0.42:2379; }\n",
           "main:nodes|main:dcs|main:node names or addresses (PostgreSQL's allowed clients)");
}

Test(db_reload, a_block_added_removed_or_renamed_is_refused)
{
    expect(NODES, DB(""), "main:database block (added for this node)");
    expect(DB(""), NODES, "main:database block (removed for this node)");
    expect(DB(""),
           NODES "database other { nodes db1 db2; dcs etcd http://10.0.0.41:2379; }\n",
           "main:the database this node is in");
}
