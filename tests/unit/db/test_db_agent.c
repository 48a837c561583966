/* SPDX-License-Identifier: MIT */
/* Unit tests of db/db_agent.c (included, to reach the agent's struct): what a reload hands
 * the running agent. The agent itself runs against real PostgreSQL and etcd in the system
 * tests (tests/system/test_db*.py). */
#include <criterion/criterion.h>

#include "db/db_agent.c"

#include <stdlib.h>

/* Every setting db_reload_check lets through reaches the agent: before, a new
 * switchover_timeout or stream_timeout was neither refused nor applied (ignored silently). */
Test(db_agent, a_reload_applies_every_live_setting)
{
    struct db_agent *a = calloc(1, sizeof(*a));
    cr_assert_not_null(a);
    (void)snprintf(a->self, sizeof(a->self), "db1");
    a->db.max_lag = 16u << 20;
    a->db.replication = CONF_DB_SYNC;
    a->db.single_node_writes = false;
    a->db.switchover_timeout_ms = 10000;
    a->db.stream_timeout_ms = 5000;
    a->db.lease_ms = 3000;
    struct conf_database next = a->db;
    next.max_lag = 65536;
    next.replication = CONF_DB_ASYNC;
    next.single_node_writes = true;
    next.switchover_timeout_ms = 1000;
    next.stream_timeout_ms = 1500;
    next.lease_ms = 9000;
    db_agent_reconfigure(a, &next);
    cr_assert_eq(a->db.max_lag, 65536);
    cr_assert_eq(a->db.replication, CONF_DB_ASYNC);
    cr_assert(a->db.single_node_writes);
    cr_assert_eq(a->db.switchover_timeout_ms, 1000);
    cr_assert_eq(a->db.stream_timeout_ms, 1500);
    cr_assert_eq(a->db.lease_ms, 3000, "not live: db_reload_check refuses it");
    db_agent_reconfigure(NULL, &next);
    free(a);
}
