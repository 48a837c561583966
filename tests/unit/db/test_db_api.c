/* SPDX-License-Identifier: MIT */
/* Unit tests of db/db_api.c: which role endpoint answers 200 on which node, ?lag=, /read's
 * fallback to the primary, /cluster's JSON (read back with the JSON reader). */
#include <criterion/criterion.h>

#include "db/db_api.c"

#include <stdlib.h>

#include "core/json.h"

static int get(const struct db_api_state *st, const char *path, const char *query, char **body)
{
    struct metrics_out out = {0};
    const char *ctype = NULL;
    int status = db_api_handle(st, path, query, &out, &ctype);
    cr_assert_not_null(ctype);
    cr_assert(!out.failed);
    *body = out.data;
    return status;
}

static int status_of(const struct db_api_state *st, const char *path, const char *query)
{
    char *body = NULL;
    int s = get(st, path, query, &body);
    free(body);
    return s;
}

static const struct db_member others[] = {
    {.name = "db2", .lsn = 5000, .healthy = true, .is_primary = false}};

static struct db_api_state primary(void)
{
    struct db_api_state st = {.self = "db1",
                              .role = DB_ROLE_PRIMARY,
                              .pg_up = true,
                              .lsn = 5000,
                              .primary_lsn = 5000,
                              .max_lag = 1024,
                              .leader = "db1",
                              .replica_within_lag = true,
                              .members = others,
                              .n_members = 1};
    return st;
}

static struct db_api_state replica(uint64_t lsn)
{
    struct db_api_state st = {.self = "db2",
                              .role = DB_ROLE_REPLICA,
                              .pg_up = true,
                              .lsn = lsn,
                              .primary_lsn = 5000,
                              .streaming = true,
                              .max_lag = 1024,
                              .leader = "db1"};
    return st;
}

Test(db_api, roles)
{
    struct db_api_state p = primary(), r = replica(4500);
    cr_assert_eq(status_of(&p, "/primary", ""), 200);
    cr_assert_eq(status_of(&p, "/master", ""), 200);
    cr_assert_eq(status_of(&p, "/leader", ""), 200);
    cr_assert_eq(status_of(&p, "/replica", ""), 503);
    cr_assert_eq(status_of(&r, "/primary", ""), 503);
    cr_assert_eq(status_of(&r, "/replica", ""), 200);
    cr_assert_eq(status_of(&p, "/health", ""), 200);
    p.role = DB_ROLE_FENCED; /* a fenced primary is not the primary */
    cr_assert_eq(status_of(&p, "/primary", ""), 503);
    r.pg_up = false;
    cr_assert_eq(status_of(&r, "/health", ""), 503);
    cr_assert_eq(status_of(&r, "/replica", ""), 503);
    cr_assert_eq(status_of(&r, "/nope", ""), 404);
}

Test(db_api, replica_lag_and_the_lag_query)
{
    struct db_api_state r = replica(5000 - 2048);
    cr_assert_eq(db_api_lag(&r), 2048);
    cr_assert_eq(status_of(&r, "/replica", ""), 503); /* over max_lag 1024 */
    cr_assert_eq(status_of(&r, "/replica", "lag=4k"), 200);
    cr_assert_eq(status_of(&r, "/replica", "x=1&lag=2048"), 200);
    cr_assert_eq(status_of(&r, "/replica", "lag=2047"), 503);
    cr_assert_eq(status_of(&r, "/replica", "lag=lots"), 400);
    r.streaming = false; /* not receiving from the leader */
    cr_assert_eq(status_of(&r, "/replica", "lag=1g"), 503);
}

Test(db_api, read_goes_to_replicas_or_else_to_the_primary)
{
    struct db_api_state p = primary(), r = replica(4900);
    cr_assert_eq(status_of(&r, "/read", ""), 200);
    cr_assert_eq(status_of(&p, "/read", ""), 503); /* a replica qualifies */
    p.replica_within_lag = false;
    cr_assert_eq(status_of(&p, "/read", ""), 200);
    r = replica(1000);
    cr_assert_eq(status_of(&r, "/read", ""), 503); /* lagging */
}

Test(db_api, bodies_are_json)
{
    struct db_api_state p = primary();
    char *body = NULL;
    cr_assert_eq(get(&p, "/cluster", "", &body), 200);
    struct errbuf eb;
    struct json_doc *doc = json_parse(body, strlen(body), &eb);
    cr_assert_not_null(doc, "%s: %s", eb.msg, body);
    const struct json_value *root = json_root(doc);
    cr_assert_str_eq(json_str(json_get(root, "leader")), "db1");
    const struct json_value *m = json_get(root, "members");
    cr_assert_eq(json_len(m), 2);
    cr_assert_str_eq(json_str(json_get(json_at(m, 1), "name")), "db2");
    cr_assert_str_eq(json_str(json_get(json_at(m, 1), "role")), "replica");
    json_free(doc);
    free(body);
    struct db_api_state r = replica(4000);
    cr_assert_eq(get(&r, "/replica", "", &body), 200); /* lag 1000 <= max_lag 1024 */
    doc = json_parse(body, strlen(body), &eb);
    cr_assert_not_null(doc, "%s: %s", eb.msg, body);
    int64_t lag = 0;
    cr_assert(json_int(json_get(json_root(doc), "lag"), &lag));
    cr_assert_eq(lag, 1000);
    cr_assert_str_eq(json_str(json_get(json_root(doc), "role")), "replica");
    json_free(doc);
    free(body);
}
