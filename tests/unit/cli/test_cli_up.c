/* SPDX-License-Identifier: MIT */
/* Unit tests of cli/cli_up.c's reading of a node's /status (count_up): servers counted from
 * "backends", app processes from "apps", and a database's servers judged by the roles the
 * agents gave rather than by being up. */
#include <criterion/criterion.h>

#include "cli/cli_up.c"

static struct up u; /* large: static */

static struct json_doc *parse(const char *text)
{
    struct errbuf eb = {{0}};
    struct json_doc *doc = json_parse(text, strlen(text), &eb);
    cr_assert_not_null(doc, "%s", eb.msg);
    return doc;
}

Test(cli_up, counts_servers_and_app_processes_from_status)
{
    memset(&u, 0, sizeof(u));
    struct json_doc *doc =
        parse("{\"node\":\"lb1\",\"backends\":[{\"name\":\"web\",\"servers\":["
              "{\"name\":\"web1\",\"up\":true},{\"name\":\"web2\",\"up\":false}]}],"
              "\"apps\":[{\"name\":\"demo\",\"processes\":[{\"index\":0,\"healthy\":true},"
              "{\"index\":1,\"healthy\":true}]}],\"vrrp\":[],\"db\":null}");
    int up = -1, total = -1;
    count_up(&u, "lb1", json_root(doc), &up, &total, true);
    cr_assert_eq(total, 4);
    cr_assert_eq(up, 3);
    json_free(doc);

    /* Nothing to count is all up; a document without the members counts nothing. */
    doc = parse("{\"backends\":[],\"apps\":[]}");
    count_up(&u, "x", json_root(doc), &up, &total, false);
    cr_assert_eq(up, 0);
    cr_assert_eq(total, 0);
    json_free(doc);
}

Test(cli_up, database_servers_follow_the_agents_roles)
{
    memset(&u, 0, sizeof(u));
    u.n_dbs = 1;
    struct up_db *db = &u.dbs[0];
    snprintf(db->name, sizeof(db->name), "main");
    db->n_nodes = 2;
    snprintf(db->nodes[0], sizeof(db->nodes[0]), "db1");
    snprintf(db->nodes[1], sizeof(db->nodes[1]), "db2");
    db->roles[0] = UP_DB_PRIMARY;
    db->roles[1] = UP_DB_REPLICA;
    db->has_replica = true;
    /* In main-primary only the primary is up; in main-readers only the replica: all as they
     * should be. A replica up in main-primary is not. */
    struct json_doc *doc =
        parse("{\"backends\":["
              "{\"name\":\"main-primary\",\"servers\":[{\"name\":\"db1\",\"up\":true},"
              "{\"name\":\"db2\",\"up\":false}]},"
              "{\"name\":\"main-readers\",\"servers\":[{\"name\":\"db1\",\"up\":false},"
              "{\"name\":\"db2\",\"up\":true}]},"
              "{\"name\":\"main-primaryx\",\"servers\":[{\"name\":\"db2\",\"up\":true}]}]}");
    int up = -1, total = -1;
    count_up(&u, "lb1", json_root(doc), &up, &total, false);
    cr_assert_eq(total, 5);
    cr_assert_eq(up, 5);
    json_free(doc);
    doc = parse("{\"backends\":[{\"name\":\"main-primary\",\"servers\":["
                "{\"name\":\"db2\",\"up\":true}]}]}");
    count_up(&u, "lb1", json_root(doc), &up, &total, false);
    cr_assert_eq(total, 1);
    cr_assert_eq(up, 0);
    json_free(doc);
}
