/* SPDX-License-Identifier: MIT */
/* Unit tests of db/db_elect.c: every rule of the agent's decision, and the scenarios the
 * failover tests will exercise for real (primary crash, agent crash, partition, etcd down,
 * the old primary coming back). */
#include <criterion/criterion.h>

#include "db/db_elect.c"

#define LEASE 3000u

static struct db_elect_in base(const char *self)
{
    struct db_elect_in in = {.now_ms = 100000,
                             .self = self,
                             .pg_up = true,
                             .pg_primary = false,
                             .pg_lsn = 1000,
                             .dcs_ok = true,
                             .lease = 7,
                             .leader_lease = 7, /* a key of ours is under our lease */
                             .lease_ms = LEASE};
    return in;
}

static struct db_elect_out decide(const struct db_elect_in *in)
{
    struct db_elect_out out;
    db_elect_decide(in, &out);
    cr_assert_not_null(out.reason);
    return out;
}

Test(db_elect, fence_margin)
{
    cr_assert_eq(db_elect_fence_margin_ms(3000), 1000);
    cr_assert_eq(db_elect_fence_margin_ms(30000), 10000);
    cr_assert_eq(db_elect_fence_margin_ms(1000), 500);
}

Test(db_elect, leader_renews_and_stays_primary)
{
    struct db_elect_in in = base("db1");
    in.pg_primary = true;
    in.leader = "db1";
    in.lease_valid_until_ms = in.now_ms + 2500;
    struct db_elect_out o = decide(&in);
    cr_assert_eq(o.role, DB_ROLE_PRIMARY);
    cr_assert(o.renew && !o.fence && !o.promote && !o.release && !o.follow && !o.acquire);
}

Test(db_elect, winner_of_the_key_promotes)
{
    struct db_elect_in in = base("db2");
    in.leader = "db2";
    in.lease_valid_until_ms = in.now_ms + LEASE;
    struct db_elect_out o = decide(&in);
    cr_assert_eq(o.role, DB_ROLE_CANDIDATE, "not /primary before the promotion is done");
    cr_assert(o.promote && o.renew);
}

Test(db_elect, primary_whose_postgres_died_hands_the_key_over)
{
    struct db_elect_in in = base("db1");
    in.pg_up = false;
    in.leader = "db1";
    in.lease_valid_until_ms = in.now_ms + LEASE;
    struct db_elect_out o = decide(&in);
    cr_assert(o.release && !o.renew);
    cr_assert_eq(o.role, DB_ROLE_UNKNOWN);
}

Test(db_elect, primary_cut_from_etcd_fences_before_the_lease_can_lapse)
{
    struct db_elect_in in = base("db1");
    in.pg_primary = true;
    in.leader = "db1";
    in.dcs_ok = false;
    in.lease_valid_until_ms = 200000;
    in.now_ms = 200000 - 1001; /* just before the margin: still writable */
    struct db_elect_out o = decide(&in);
    cr_assert_eq(o.role, DB_ROLE_PRIMARY);
    cr_assert(!o.fence && o.renew);
    in.now_ms = 200000 - 1000; /* margin reached: a replica could win the key 1 s from now */
    o = decide(&in);
    cr_assert_eq(o.role, DB_ROLE_FENCED);
    cr_assert(o.fence && o.renew);
}

/* Issue 10 (A): after kill -9 and a quick restart, the key still names us but is under the
 * earlier run's lease, which nobody renews; our new lease (and the fence deadline computed
 * from it) says nothing about it. The node must not write until the key is under its lease. */
Test(db_elect, key_under_an_earlier_lease_of_ours_is_not_ours)
{
    struct db_elect_in in = base("db1");
    in.pg_primary = true;
    in.leader = "db1";
    in.leader_lease = 5; /* the earlier run's */
    in.lease = 7;        /* ours, just granted and valid */
    in.lease_valid_until_ms = in.now_ms + LEASE;
    struct db_elect_out o = decide(&in);
    cr_assert_eq(o.role, DB_ROLE_FENCED, "writable under a lease it does not hold");
    cr_assert(o.fence && !o.renew && !o.promote && !o.release);
    cr_assert(o.take_over, "replace the key by compare-and-swap to hold it under our lease");
    /* a replica (fenced by the earlier run) does not promote on that key either */
    in.pg_primary = false;
    o = decide(&in);
    cr_assert(!o.promote && !o.fence && o.take_over);
    cr_assert_neq(o.role, DB_ROLE_PRIMARY);
    /* once the key is under our lease, it is ours */
    in.leader_lease = 7;
    o = decide(&in);
    cr_assert(o.promote && o.renew && !o.take_over);
}

Test(db_elect, key_under_an_earlier_lease_without_our_lease_or_etcd)
{
    struct db_elect_in in = base("db1");
    in.pg_primary = true;
    in.leader = "db1";
    in.leader_lease = 5;
    in.lease = 0; /* no lease granted yet: nothing to take it over with */
    struct db_elect_out o = decide(&in);
    cr_assert(o.fence && !o.take_over && !o.renew);
    cr_assert_eq(o.role, DB_ROLE_FENCED);
    in.lease = 7;
    in.dcs_ok = false;
    o = decide(&in);
    cr_assert(o.fence && !o.take_over);
}

Test(db_elect, key_under_an_earlier_lease_with_postgres_down_is_released)
{
    struct db_elect_in in = base("db1");
    in.pg_up = false;
    in.leader = "db1";
    in.leader_lease = 5;
    struct db_elect_out o = decide(&in);
    cr_assert(o.release && !o.take_over && !o.promote);
    cr_assert_eq(o.role, DB_ROLE_UNKNOWN);
}

Test(db_elect, own_key_rule)
{
    cr_assert(db_elect_is_own_key("db1", "db1", 7, 7));
    cr_assert_not(db_elect_is_own_key("db1", "db1", 5, 7), "name alone is not ownership");
    cr_assert_not(db_elect_is_own_key("db1", "db1", 0, 0), "no lease: never ours");
    cr_assert_not(db_elect_is_own_key("db1", "db2", 7, 7));
    cr_assert_not(db_elect_is_own_key("db1", NULL, 7, 7));
}

Test(db_elect, old_primary_meeting_a_new_leader_fences_and_follows)
{
    struct db_elect_in in = base("db1");
    in.pg_primary = true;
    in.leader = "db2";
    struct db_elect_out o = decide(&in);
    cr_assert_eq(o.role, DB_ROLE_FENCED);
    cr_assert(o.fence && o.follow && !o.acquire);
}

Test(db_elect, replica_follows_the_leader_once)
{
    struct db_elect_in in = base("db2");
    in.leader = "db1";
    struct db_elect_out o = decide(&in);
    cr_assert(o.follow);
    cr_assert_eq(o.role, DB_ROLE_REPLICA);
    in.pg_follows = "db1";
    o = decide(&in);
    cr_assert(!o.follow);
    in.pg_follows = "db3"; /* the leader changed */
    o = decide(&in);
    cr_assert(o.follow);
}

Test(db_elect, no_leader_the_most_advanced_healthy_node_competes)
{
    struct db_member m[] = {{.name = "db1", .lsn = 900, .healthy = true},
                            {.name = "db3", .lsn = 1200, .healthy = false}};
    struct db_elect_in in = base("db2");
    in.members = m;
    in.n_members = 2;
    struct db_elect_out o = decide(&in);
    cr_assert(o.acquire); /* db1 is behind, db3 is more advanced but unhealthy */
    cr_assert_eq(o.role, DB_ROLE_CANDIDATE);
    m[0].lsn = 1001; /* db1 is ahead: db2 waits */
    o = decide(&in);
    cr_assert(!o.acquire);
    cr_assert_eq(o.role, DB_ROLE_REPLICA);
    m[0].lsn = 1000; /* a tie: the smaller name */
    o = decide(&in);
    cr_assert(!o.acquire);
    struct db_elect_in in1 = base("db1");
    struct db_member m2[] = {{.name = "db2", .lsn = 1000, .healthy = true}};
    in1.members = m2;
    in1.n_members = 1;
    cr_assert(decide(&in1).acquire);
}

Test(db_elect, no_leader_and_no_postgres_or_no_etcd)
{
    struct db_elect_in in = base("db2");
    in.pg_up = false;
    struct db_elect_out o = decide(&in);
    cr_assert(!o.acquire);
    cr_assert_eq(o.role, DB_ROLE_UNKNOWN);
    in = base("db1");
    in.pg_primary = true;
    in.dcs_ok = false; /* etcd down everywhere: the primary stays read-only */
    o = decide(&in);
    cr_assert(o.fence && !o.acquire);
    cr_assert_eq(o.role, DB_ROLE_FENCED);
}

Test(db_elect, former_primary_without_key_stays_fenced_while_competing)
{
    struct db_elect_in in = base("db1");
    in.pg_primary = true;
    struct db_elect_out o = decide(&in);
    cr_assert(o.acquire && o.fence);
    cr_assert_eq(o.role, DB_ROLE_CANDIDATE);
}

Test(db_elect, switchover_only_the_target_takes_the_key)
{
    struct db_member m[] = {{.name = "db3", .lsn = 5000, .healthy = true}};
    struct db_elect_in in = base("db2");
    in.members = m;
    in.n_members = 1;
    in.switchover_to = "db2"; /* db3 is more advanced, but the switchover names db2 */
    struct db_elect_out o = decide(&in);
    cr_assert(o.acquire);
    cr_assert_eq(o.role, DB_ROLE_CANDIDATE);
    struct db_elect_in in3 = base("db3");
    in3.pg_lsn = 5000;
    in3.switchover_to = "db2";
    o = decide(&in3);
    cr_assert(!o.acquire && !o.fence);
    cr_assert_eq(o.role, DB_ROLE_REPLICA);
    in.dcs_ok = false; /* no etcd: nobody takes anything */
    cr_assert(!decide(&in).acquire);
}

Test(db_elect, role_names)
{
    cr_assert_str_eq(db_role_name(DB_ROLE_PRIMARY), "primary");
    cr_assert_str_eq(db_role_name(DB_ROLE_FENCED), "fenced");
    cr_assert_str_eq(db_role_name((enum db_role)42), "?");
}
