/* SPDX-License-Identifier: MIT */
/* The database agent: one loop turn every lease/6 (at most 500 ms). A turn (db_turn.c)
 * reads the node's PostgreSQL status, the leader key, the members' keys and the switchover
 * key in parallel and renews the agent's lease; then db_agent_act publishes this node's
 * member key and acts on db_elect_decide: take the key, promote, release it, follow the
 * leader (pg_rewind), or fence. What the agent is doing is its state (db_fsm.h), changed
 * only by db_node_set_state. A fenced primary restarts PostgreSQL read-only, following nobody,
 * before its lease can lapse (its own timer, not the turn, keeps that deadline; so does a separate
 * watcher process, db_fence.c, in case this loop stops). The leader key is ours only under our
 * current lease: an earlier run's key is taken over by compare-and-swap. Bootstrap: with no
 * leader and no live member the first node takes the key and runs initdb; the others copy
 * the leader with pg_basebackup through a slot named after them. A planned switchover is in
 * db_switch.c. The health endpoints (db_api.c) are served on the node's agent_port by the
 * admin listener. Never blocks, except reading the secret and preparing directories at
 * start. */
#include "db/db_agent.h"
#include "db/db_agent-t.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/conf_value.h"
#include "core/fsm.h"
#include "core/json.h"
#include "core/log.h"
#include "db/db_api.h"
#include "db/db_conf.h"
#include "db/db_elect.h"
#include "db/db_fence.h"
#include "db/db_fsm.h"
#include "db/db_secret.h"
#include "db/etcd.h"
#include "db/pg_inst.h"
#include "db/pg_sockdir.h"
#include "db/pg_status.h"
#include "monitor/admin.h"
#include "monitor/metrics.h"

/* The agent's own timings. The operator's are settings of the database block (lease,
 * switchover_timeout, stream_timeout: db_conf.c); these follow from the lease or only pace
 * the log, so tests shorten them by shortening the lease. */
#define DB_AGENT_TURNS_PER_LEASE 6 /* a turn every lease/6 ... */
#define DB_AGENT_TURN_MIN_MS 100   /* ... but not more often ... */
#define DB_AGENT_TURN_MAX_MS 500   /* ... nor less often */
#define DB_AGENT_DOWN_SETTLE_TURNS                                                                 \
    2                                 /* PostgreSQL died while we lead: look again this many       \
                                       * turns before restarting (the members were read before) */
#define DB_AGENT_READONLY_SAY_MS 5000 /* repeat the fenced node's "READ-ONLY" warning */

static const char *addr_of(const struct db_agent *a, const char *node)
{
    for (uint32_t i = 0; i < a->db.n_nodes; i++) {
        if (strcmp(a->db.nodes[i], node) == 0) {
            return a->addrs[i];
        }
    }
    return NULL;
}

static bool file_exists(const char *dir, const char *name)
{
    char path[CONF_PATH_MAX + 64];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

bool db_agent_is_leader(const struct db_agent *a)
{
    return db_elect_is_own_key(a->self, a->has_leader ? a->leader : NULL, a->leader_lease,
                               a->lease);
}

int db_node_set_state(struct db_agent *a, enum db_node_state to, const char *reason)
{
    enum db_node_state from = a->fsm.state;
    if (db_fsm_set_state(&a->fsm, to, ev_now_ms(a->loop)) != 0) {
        fsm_illegal(FSM_MACHINE_DB, a->self, db_node_state_name(from), db_node_state_name(to),
                    reason);
        return -EPERM;
    }
    log_notice("db", "%s: %s -> %s (%s)", a->self, db_node_state_name(from), db_node_state_name(to),
               reason);
    return 0;
}

bool db_agent_is_stopping(const struct db_agent *a)
{
    return a->fsm.state == DB_NODE_STOPPING || a->fsm.state == DB_NODE_STOPPED;
}

static bool is_busy(const struct db_agent *a)
{
    return db_node_state_is_busy(a->fsm.state);
}

/* The leader's deadline to stop writing: lease minus margin after the start of its last
 * successful renewal. 0 if no renewal is known. */
static uint64_t fence_deadline_ms(const struct db_agent *a)
{
    uint32_t margin = db_elect_fence_margin_ms(a->db.lease_ms);
    return a->lease_valid_until_ms > margin ? a->lease_valid_until_ms - margin : 0;
}

/* Keep the fence watcher in step: armed with the leader's deadline while this node holds
 * the key and its PostgreSQL runs (a primary, or a standby being promoted), disarmed
 * otherwise (the agent's own fence disarms it before it demotes). */
static void fence_watch(struct db_agent *a)
{
    enum pg_inst_state st = pg_inst_state(a->pg);
    uint64_t deadline = fence_deadline_ms(a);
    if (!db_agent_is_stopping(a) && !a->fsm.is_fenced && db_agent_is_leader(a) && deadline != 0 &&
        (st == PG_INST_RUNNING || st == PG_INST_STARTING) && pg_inst_pid(a->pg) > 0) {
        db_fence_arm(a->fence, deadline, pg_inst_pid(a->pg));
    } else {
        db_fence_disarm(a->fence);
    }
    uint32_t fired = db_fence_fired(a->fence);
    if (fired != a->fence_fired_seen) {
        a->fence_fired_seen = fired;
        log_warn("db",
                 "%s: fenced by the watcher: the lease was not renewed in time (this "
                 "agent was stopped or stuck), PostgreSQL was ended",
                 a->self);
    }
}

/* ---------------------------------------------------------------- actions */

void db_agent_schedule(struct db_agent *a, uint32_t ms)
{
    if (ms == 0 && a->is_turn_busy) {
        /* The tick would find the turn busy and do nothing, and the turn would then act on
         * what it read before the change (a promotion it did not see, started again) and
         * schedule the next turn a whole tick later. */
        a->is_turn_stale = true;
        return;
    }
    ev_timer_start(a->loop, &a->tick, ms);
}

void db_agent_ignore(void *data, const struct etcd_result *res)
{
    (void)data;
    (void)res;
}

/* Whether the operation `what`, run in the busy state st, may start now: none runs, the
 * retries are not backing off after failures, and the table allows the move (an illegal
 * one is reported here). Names it for the retries' log. */
static bool op_may_start(struct db_agent *a, enum db_node_state st, const char *what)
{
    if (is_busy(a) || !db_retry_is_due(&a->retry, ev_now_ms(a->loop))) {
        return false;
    }
    if (!db_fsm_is_legal(a->fsm.state, st)) {
        (void)db_node_set_state(a, st, what); /* refused: reported as a bug */
        return false;
    }
    (void)snprintf(a->op_what, sizeof(a->op_what), "%s", what);
    return true;
}

void db_agent_op_done(void *data, int rc, const char *reason)
{
    struct db_agent *a = data;
    uint64_t now = ev_now_ms(a->loop);
    if (a->fsm.state == DB_NODE_STOPPING) {
        (void)db_node_set_state(a, DB_NODE_STOPPED, "PostgreSQL stopped");
        return;
    }
    if (!is_busy(a)) {
        return; /* a second end: the fence timer's stop cut an operation short */
    }
    char done[128];
    (void)snprintf(done, sizeof(done), "%s %s", a->op_what, rc == 0 ? "done" : "failed");
    (void)db_node_set_state(a, db_node_state_after_op(a->fsm.state), done);
    if (rc != 0 && rc != -ECANCELED) {
        db_retry_failed(&a->retry, now, a->op_what, reason != NULL ? reason : strerror(-rc));
        log_warn("db", "%s: %s failed (attempt %u, failing for %lu s): %s; next attempt in %.1f s",
                 a->self, a->op_what, a->retry.attempts,
                 (unsigned long)((now - a->retry.since_ms) / 1000), a->retry.last_error,
                 db_retry_delay_ms(a->retry.attempts) / 1000.0);
    } /* a success ends the run only once the node is healthy (on_status) */
    db_agent_schedule(
        a, rc == 0 ? 0 : a->tick_ms); /* look again: at once, or after a failure a turn later */
}

static void on_slot(void *data, int rc, const char *reason)
{
    struct db_agent *a = data;
    if (rc != 0) {
        log_warn("db", "%s: cannot create a replication slot: %s", a->self, reason);
    }
}

static void on_app_setup(void *data, int rc, const char *reason)
{
    struct db_agent *a = data;
    if (rc != 0) {
        log_warn("db", "%s: cannot set up the application role %s: %s", a->self, a->db.name,
                 reason);
    }
}

/* synchronous_standby_names as it should be: any one of the other nodes with replication
 * synchronous; none with async, and none with single_node_writes while no replica streams
 * (the primary then goes on alone, as configured). */
static void sync_want(const struct db_agent *a, char *out, size_t size)
{
    char names[256] = "";
    size_t k = 0;
    for (uint32_t i = 0; i < a->db.n_nodes; i++) {
        if (strcmp(a->db.nodes[i], a->self) != 0) {
            int n =
                snprintf(names + k, sizeof(names) - k, "%s%s", k == 0 ? "" : ",", a->db.nodes[i]);
            k += n > 0 && (size_t)n < sizeof(names) - k ? (size_t)n : 0;
        }
    }
    out[0] = '\0';
    if (a->db.replication == CONF_DB_SYNC && k > 0 &&
        (!a->db.single_node_writes || a->n_streaming > 0)) {
        (void)snprintf(out, size, "ANY 1 (%s)", names);
    }
}

static void on_sync_set(void *data, int rc, const char *reason)
{
    struct db_agent *a = data;
    a->is_sync_busy = false;
    if (rc != 0) {
        log_warn("db", "%s: cannot set synchronous_standby_names: %s", a->self, reason);
    }
}

/* Set synchronous_standby_names if it is not what it should be (always if is_forced). */
static void sync_apply(struct db_agent *a, bool is_forced)
{
    char want[300];
    sync_want(a, want, sizeof(want));
    if (a->is_sync_busy || (!is_forced && strcmp(want, a->sync_names) == 0)) {
        return;
    }
    if (!is_forced && a->db.single_node_writes) {
        log_notice("db", "%s: %s", a->self,
                   want[0] != '\0' ? "a replica streams: commits wait for it again"
                                   : "no replica streams: writes go on without one "
                                     "(single_node_writes)");
    }
    a->is_sync_busy = pg_sync_set(pg_inst_conn(a->pg), want, on_sync_set, a) == 0;
    if (!a->is_sync_busy) {
        log_warn("db", "%s: cannot queue synchronous_standby_names", a->self);
    }
}

/* A new primary: slots for the others, synchronous replication, the application's role. */
static void primary_setup(struct db_agent *a)
{
    for (uint32_t i = 0; i < a->db.n_nodes; i++) {
        if (strcmp(a->db.nodes[i], a->self) != 0 &&
            pg_slot_create(pg_inst_conn(a->pg), a->db.nodes[i], on_slot, a) != 0) {
            log_warn("db", "%s: cannot queue the slot of %s", a->self, a->db.nodes[i]);
        }
    }
    sync_apply(a, true);
    if (pg_app_setup(pg_inst_conn(a->pg), a->db.name, a->app_password, on_app_setup, a) != 0) {
        log_warn("db", "%s: cannot queue the application role's setup", a->self);
    }
}

static void on_promoted(void *data, int rc, const char *reason)
{
    struct db_agent *a = data;
    if (rc == 0) {
        a->promotions++;
        a->follows[0] = '\0';
        fence_watch(a);
        log_notice("db", "%s: promoted: now the primary", a->self);
        db_switch_promoted(a);
        primary_setup(a);
    }
    db_agent_op_done(a, rc, reason);
}

static void on_bootstrapped(void *data, int rc, const char *reason)
{
    struct db_agent *a = data;
    if (rc == 0 && pg_inst_state(a->pg) == PG_INST_RUNNING && !pg_inst_is_standby(a->pg)) {
        log_notice("db", "%s: bootstrapped the first primary", a->self);
        primary_setup(a);
    }
    db_agent_op_done(a, rc, reason);
}

static void on_acquired(void *data, const struct etcd_result *res)
{
    struct db_agent *a = data;
    if (res->err == 0 && res->succeeded) {
        log_notice("db", "%s: took the leader key", a->self);
        a->has_leader = true;
        (void)snprintf(a->leader, sizeof(a->leader), "%s", a->self);
        a->leader_lease = a->lease; /* the lease it was written under (acquire, take_over) */
        a->leader_rev = res->revision;
        fence_watch(a);
        db_agent_schedule(a, 0);
    }
}

void db_agent_release(struct db_agent *a)
{
    if (etcd_delete_if_value(a->etcd, a->key_leader, a->self, strlen(a->self), db_agent_ignore,
                             NULL) != 0) {
        log_warn("db", "%s: cannot release the leader key now", a->self);
    }
}

/* Replace the key an earlier run of this agent left (our name, its lease) with one under
 * our lease: a compare-and-swap on its mod revision, so it fails if the key changed or
 * lapsed meanwhile (then the next turn sees who holds it, if anyone). */
static void take_over(struct db_agent *a)
{
    if (a->lease == 0 || etcd_cas(a->etcd, a->key_leader, a->leader_rev, a->self, strlen(a->self),
                                  a->lease, on_acquired, a) != 0) {
        log_debug("db", "%s: cannot take the earlier run's leader key over yet", a->self);
        return;
    }
    log_notice("db", "%s: the leader key is an earlier run's (lease %lx): taking it over", a->self,
               (unsigned long)a->leader_lease);
}

static void acquire(struct db_agent *a)
{
    if (a->lease == 0 || etcd_create(a->etcd, a->key_leader, a->self, strlen(a->self), a->lease,
                                     on_acquired, a) != 0) {
        log_debug("db", "%s: cannot try for the leader key yet", a->self);
    }
}

static void follow(struct db_agent *a, bool is_bootstrapped)
{
    const char *host = addr_of(a, a->leader);
    char what[80];
    (void)snprintf(what, sizeof(what), "%s %s", is_bootstrapped ? "follow" : "copy", a->leader);
    enum db_node_state st = is_bootstrapped ? DB_NODE_FOLLOWING : DB_NODE_CLONING;
    if (host == NULL || !op_may_start(a, st, what)) {
        return;
    }
    int rc = is_bootstrapped ? pg_inst_follow(a->pg, host, (uint16_t)a->db.pg_port, a->self,
                                              db_agent_op_done, a)
                             : pg_inst_init_replica(a->pg, host, (uint16_t)a->db.pg_port, a->self,
                                                    db_agent_op_done, a);
    if (!db_agent_run_op(a, st, rc, what)) {
        return;
    }
    (void)snprintf(a->follows, sizeof(a->follows), "%s", a->leader);
}

static void on_demoted(void *data, int rc, const char *reason)
{
    struct db_agent *a = data;
    if (rc == 0) {
        log_warn("db", "%s: fenced: PostgreSQL runs read-only, following nobody", a->self);
    }
    db_agent_op_done(a, rc, reason);
}

/* A primary that may no longer hold the key stops taking writes at once (the fast stop ends
 * every session) and comes back read-only: reads go on, writes wait for the key. */
static void fence(struct db_agent *a, const char *why)
{
    if (pg_inst_is_standby(a->pg) && pg_inst_state(a->pg) == PG_INST_RUNNING) {
        return; /* read-only already (a status read before the fence said primary) */
    }
    if (!db_fsm_is_legal(a->fsm.state, DB_NODE_FENCING)) {
        (void)db_node_set_state(a, DB_NODE_FENCING, why); /* refused: reported as a bug */
        return;
    }
    log_warn("db", "%s: fencing: PostgreSQL restarts read-only (%s)", a->self, why);
    db_fence_disarm(a->fence); /* the agent fences itself: the watcher must not end the
                                * read-only server it restarts */
    a->follows[0] = '\0';
    (void)snprintf(a->op_what, sizeof(a->op_what), "restart read-only (fence)");
    int rc = pg_inst_demote(a->pg, on_demoted, a);
    if (rc != 0) {
        log_warn("db", "%s: cannot restart PostgreSQL read-only (%s): stopping it", a->self,
                 strerror(-rc));
        rc = pg_inst_stop(a->pg, PG_STOP_FAST, db_agent_op_done, a);
    }
    (void)db_node_set_state(a, DB_NODE_FENCING, why); /* legal: checked above */
    if (rc != 0) {
        log_error("db", "%s: cannot stop PostgreSQL to fence it: %s", a->self, strerror(-rc));
        (void)db_node_set_state(a, DB_NODE_FENCED, "cannot stop PostgreSQL");
    }
}

bool db_agent_run_op(struct db_agent *a, enum db_node_state st, int rc, const char *what)
{
    (void)snprintf(a->op_what, sizeof(a->op_what), "%s", what);
    if (rc != 0) {
        log_warn("db", "%s: cannot %s: %s", a->self, what, strerror(-rc));
        db_retry_failed(&a->retry, ev_now_ms(a->loop), what, strerror(-rc));
        return false;
    }
    return db_node_set_state(a, st, what) == 0;
}

/* Whether the leader runs as the primary with its promotion done (its member key says so):
 * before that, pg_rewind would compare with a timeline not yet in its pg_control, find
 * nothing to rewind, and leave this node on a branch it can never stream from. */
static bool leader_ready(const struct db_agent *a)
{
    for (size_t i = 0; i < a->n_members; i++) {
        if (strcmp(a->members[i].name, a->leader) == 0) {
            return a->members[i].healthy && a->members[i].is_primary;
        }
    }
    return false;
}

/* PostgreSQL is not running: bootstrap it, start it, or point it at the leader. */
void db_agent_act_stopped(struct db_agent *a)
{
    bool bootstrapped = file_exists(a->db.data_dir, "PG_VERSION");
    bool named_self = a->has_leader && strcmp(a->leader, a->self) == 0;
    bool leader_self = db_agent_is_leader(a); /* our name under our lease */
    bool leader_other = a->has_leader && !named_self;
    bool was_standby = file_exists(a->db.data_dir, "standby.signal");
    bool others_live = false;
    for (size_t i = 0; i < a->n_members; i++) {
        others_live = others_live || a->members[i].healthy;
    }
    if (a->fsm.state != DB_NODE_IDLE &&
        db_node_set_state(a, DB_NODE_IDLE, "PostgreSQL is not running") != 0) {
        return;
    }
    if (leader_other) {
        if (leader_ready(a)) {
            follow(a, bootstrapped); /* copy it, or rewind to it */
        }
        return;
    }
    if (!a->dcs_ok) {
        return;
    }
    if (!named_self) {
        if (!a->has_leader && !others_live && (!bootstrapped || !was_standby)) {
            acquire(a); /* the first node, or a primary coming back to an empty cluster */
        } else if (bootstrapped && was_standby && op_may_start(a, DB_NODE_STARTING, "start")) {
            /* a replica starts and competes or follows from there */
            (void)db_agent_run_op(a, DB_NODE_STARTING, pg_inst_start(a->pg, db_agent_op_done, a),
                                  "start");
        }
        return;
    }
    if (others_live && bootstrapped) {
        /* Our PostgreSQL stopped while we lead (it crashed): hand over to a live replica
         * rather than restart here; this node then rejoins as its replica. */
        log_warn("db", "%s: PostgreSQL is down on the primary%s: releasing the leader key", a->self,
                 leader_self ? "" : " of an earlier run");
        db_agent_release(a);
        a->has_leader = false;
        return;
    }
    if (!leader_self) {
        /* Our name under an earlier run's lease (kill -9, restart): not ours. PostgreSQL
         * starts as a primary only once the key is under our lease. */
        take_over(a);
        return;
    }
    enum db_node_state st = bootstrapped ? DB_NODE_STARTING : DB_NODE_BOOTSTRAPPING;
    if (a->lease_valid_until_ms == 0 ||
        !op_may_start(a, st, bootstrapped ? "start" : "bootstrap")) {
        return; /* no lease yet, or backing off after failures */
    }
    if (a->pg_down_at_ms == 0) {
        a->pg_down_at_ms = ev_now_ms(a->loop); /* it died during this turn */
    }
    if (bootstrapped &&
        ev_now_ms(a->loop) < a->pg_down_at_ms + DB_AGENT_DOWN_SETTLE_TURNS * (uint64_t)a->tick_ms) {
        return; /* the members were read before PostgreSQL died: look again first */
    }
    (void)db_agent_run_op(a, st,
                          bootstrapped ? pg_inst_start(a->pg, db_agent_op_done, a)
                                       : pg_inst_init_primary(a->pg, on_bootstrapped, a),
                          bootstrapped ? "start" : "bootstrap");
}

/* The leader key lapsed (etcd answers, and there is no key) while this replica streams
 * from the old leader: stop streaming before anyone is promoted, so that an old primary
 * that still runs (its agent and its watcher frozen with it, a paused VM) finds no standby
 * to confirm its commits and, with synchronous replication, acknowledges none. Following
 * the next leader restarts the replica with its primary_conninfo. */
static bool unfollow_on_lapse(struct db_agent *a)
{
    if (!a->dcs_ok || a->has_leader || a->follows[0] == '\0' || a->pg_primary || is_busy(a) ||
        pg_inst_state(a->pg) != PG_INST_RUNNING || !pg_inst_is_standby(a->pg)) {
        return false;
    }
    if (!db_fsm_is_legal(a->fsm.state, DB_NODE_UNFOLLOWING)) {
        (void)db_node_set_state(a, DB_NODE_UNFOLLOWING, "the leader key lapsed"); /* reported */
        return false;
    }
    int rc = pg_inst_unfollow(a->pg, db_agent_op_done, a);
    if (rc != 0) {
        log_warn("db", "%s: cannot stop streaming from %s: %s", a->self, a->follows, strerror(-rc));
        return false;
    }
    (void)snprintf(a->op_what, sizeof(a->op_what), "unfollow %s", a->follows);
    (void)db_node_set_state(a, DB_NODE_UNFOLLOWING, "the leader key lapsed");
    log_notice("db", "%s: the leader key of %s lapsed: no longer streaming from it", a->self,
               a->follows);
    a->follows[0] = '\0';
    return true;
}

/* The node's member key value, {"lsn","healthy","primary"}, into m; its length. */
static size_t member_value(const struct db_agent *a, char *m, size_t size)
{
    struct json_w w;
    json_w_init_fixed(&w, m, size);
    json_w_begin_object(&w);
    json_w_key_uint(&w, "lsn", a->pg_lsn);
    json_w_key_bool(&w, "healthy", a->pg_up);
    json_w_key_bool(&w, "primary", a->pg_up && a->pg_primary && !is_busy(a));
    json_w_end_object(&w);
    return json_w_finish(&w) == 0 ? w.len : 0; /* fits: 3 short keys and 2 booleans */
}

void db_agent_act(struct db_agent *a)
{
    if (a->lease != 0 && a->dcs_ok) {
        char m[160];
        size_t n = member_value(a, m, sizeof(m));
        if (etcd_put(a->etcd, a->key_self, m, n, a->lease, db_agent_ignore, NULL) != 0) {
            log_debug("db", "%s: member key not published this turn", a->self);
        }
    }
    if (is_busy(a)) {
        return;
    }
    if (a->fsm.state == DB_NODE_SW_WAITING || a->fsm.state == DB_NODE_SW_HANDED) {
        db_switch_step(a);
        return;
    }
    if (pg_inst_state(a->pg) != PG_INST_RUNNING) {
        db_agent_act_stopped(a);
        return;
    }
    if (a->sw_has && strcmp(a->sw_from, a->self) == 0 && a->pg_primary && db_agent_is_leader(a) &&
        a->fsm.state == DB_NODE_PRIMARY) {
        db_switch_begin(a);
        return;
    }
    struct db_elect_in in = {.now_ms = ev_now_ms(a->loop),
                             .self = a->self,
                             .pg_up = a->pg_up,
                             .pg_primary = a->pg_primary,
                             .pg_lsn = a->pg_lsn,
                             .pg_follows = a->follows[0] != '\0' ? a->follows : NULL,
                             .dcs_ok = a->dcs_ok,
                             .leader = a->has_leader ? a->leader : NULL,
                             .leader_lease = a->leader_lease,
                             .lease = a->lease,
                             .members = a->members,
                             .n_members = a->n_members,
                             .switchover_to = a->sw_has && a->sw_to[0] != '\0' ? a->sw_to : NULL,
                             .lease_valid_until_ms = a->lease_valid_until_ms,
                             .lease_ms = a->db.lease_ms};
    struct db_elect_out out;
    db_elect_decide(&in, &out);
    /* The decision moves the node between the settled states; a fenced replica (read-only,
     * following nobody) stays fenced until it is promoted or follows a leader. */
    enum db_node_state want = db_node_state_of_role(out.role, a->fsm.is_fenced);
    if (want != a->fsm.state && db_node_set_state(a, want, out.reason) != 0) {
        return; /* refused (a bug, reported): act on nothing this turn */
    }
    if (a->fsm.is_fenced && !a->dcs_ok &&
        ev_now_ms(a->loop) >= a->fenced_said_ms + DB_AGENT_READONLY_SAY_MS) {
        a->fenced_said_ms = ev_now_ms(a->loop);
        log_warn("db",
                 "%s: READ-ONLY: etcd cannot be reached, so no node may write (fenced "
                 "%lu s ago)",
                 a->self, (unsigned long)((ev_now_ms(a->loop) - a->fsm.fenced_at_ms) / 1000));
    }
    if (out.release) {
        db_agent_release(a);
    }
    if (out.take_over) {
        take_over(a);
    }
    if (unfollow_on_lapse(a)) {
        return; /* the next turn, once it is done, promotes or follows */
    }
    if (out.acquire) {
        acquire(a);
    }
    uint64_t now_ms = ev_now_ms(a->loop);
    uint32_t stream_ms = a->db.stream_timeout_ms;
    /* When it last received something as this leader's replica: its position moved, or it
     * (re)started following (a replica that just followed again gets stream_timeout too). */
    uint64_t received_ms =
        a->lsn_moved_ms > a->fsm.state_since_ms ? a->lsn_moved_ms : a->fsm.state_since_ms;
    bool is_stalled = a->primary_lsn > a->pg_lsn && now_ms >= received_ms + stream_ms;
    bool is_refollow = false;
    if (a->fsm.state == DB_NODE_REPLICA && !out.follow && (!a->streaming || is_stalled)) {
        /* Following the leader but not receiving from it (on a branch it cannot follow, or a
         * connection that does not come back): rewind and follow again after stream_timeout.
         * A stalled stream received nothing since received_ms, already stream_timeout ago
         * (counting from now instead waited twice as long). */
        if (a->unstreaming_since_ms == 0) {
            a->unstreaming_since_ms = is_stalled && received_ms != 0 ? received_ms : now_ms;
        }
        if (now_ms >= a->unstreaming_since_ms + stream_ms && leader_ready(a) &&
            db_retry_is_due(&a->retry, now_ms)) {
            log_warn("db",
                     "%s: nothing received from %s for %.1f s (stream_timeout %.1f s): rewinding "
                     "and following again",
                     a->self, a->leader, (now_ms - a->unstreaming_since_ms) / 1000.0,
                     stream_ms / 1000.0);
            out.follow = true;
            is_refollow = true;
        }
    } else {
        a->unstreaming_since_ms = 0;
    }
    if (out.follow && !leader_ready(a)) {
        out.follow = false; /* wait for its promotion; meanwhile no writes here */
    }
    if (out.follow) {
        a->unstreaming_since_ms = 0;
        follow(a, true); /* stops, rewinds if it diverged, starts as a replica */
        if (is_refollow && is_busy(a)) {
            /* A retry: the follow before did not get this node streaming. */
            char why[96];
            (void)snprintf(why, sizeof(why), "nothing received from %s for %.1f s", a->leader,
                           stream_ms / 1000.0);
            db_retry_failed(&a->retry, now_ms, a->op_what, why);
        }
    } else if (out.fence) {
        fence(a, out.reason);
    } else if (out.promote && op_may_start(a, DB_NODE_PROMOTING, "promote")) {
        (void)db_agent_run_op(a, DB_NODE_PROMOTING, pg_inst_promote(a->pg, on_promoted, a),
                              "promote");
    } else if (out.role == DB_ROLE_PRIMARY && a->pg_primary) {
        sync_apply(a, false);
    }
    fence_watch(a);
}

/* ---------------------------------------------------------------- the lease and the fence */

void db_agent_on_lease(void *data, const struct etcd_result *res)
{
    struct db_agent *a = data;
    a->lease_busy = false;
    if (res->err != 0) {
        return; /* the lease keeps its last validity */
    }
    if (res->lease_id != 0 && a->lease == 0) {
        a->lease = res->lease_id;
    }
    if (res->ttl <= 0) {
        log_warn("db", "%s: the agent's lease expired", a->self);
        a->lease = 0;
        a->lease_valid_until_ms = 0;
        fence_watch(a);
        return;
    }
    a->lease_valid_until_ms = a->turn_at_ms + a->db.lease_ms;
    /* The fence does not wait for a turn: a turn may be stuck on etcd's timeouts. */
    uint64_t fence_at = fence_deadline_ms(a);
    uint64_t now = ev_now_ms(a->loop);
    ev_timer_start(a->loop, &a->fence_timer, fence_at > now ? (uint32_t)(fence_at - now) : 0);
    fence_watch(a); /* and outside this loop, in case this loop stops */
}

/* No renewal for lease - margin: a primary stops taking writes now. */
static void on_fence_timer(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct db_agent *a = t->data;
    bool is_leader = db_agent_is_leader(a);
    if (db_agent_is_stopping(a) || !is_leader || !a->pg_primary ||
        pg_inst_state(a->pg) != PG_INST_RUNNING || a->fsm.is_fenced) {
        return;
    }
    if (!is_busy(a)) {
        fence(a, "the leader lease could not be renewed in time");
        return;
    }
    log_warn("db", "%s: fencing: the lease could not be renewed in time; stopping PostgreSQL",
             a->self);
    db_fence_disarm(a->fence); /* this stop is the fence */
    int rc = pg_inst_stop(a->pg, PG_STOP_IMMEDIATE, db_agent_op_done, a);
    if (rc != 0 && rc != -EALREADY) {
        log_error("db", "%s: cannot stop PostgreSQL to fence it: %s", a->self, strerror(-rc));
    }
}

/* ---------------------------------------------------------------- endpoints */

static int api_handler(const char *path, const char *query, struct metrics_out *out,
                       const char **ctype, void *data)
{
    struct db_agent *a = data;
    struct db_api_state st = {.self = a->self,
                              .role = db_node_state_role(a->fsm.state),
                              .pg_up = a->pg_up && pg_inst_state(a->pg) == PG_INST_RUNNING,
                              .lsn = a->pg_lsn,
                              .replay_lsn = a->replay_lsn,
                              .lag_ms = a->lag_ms,
                              .primary_lsn = a->primary_lsn,
                              .streaming = a->streaming,
                              .max_lag = a->db.max_lag,
                              .leader = a->has_leader ? a->leader : NULL,
                              .replica_within_lag = a->replica_ok,
                              .members = a->members,
                              .n_members = a->n_members};
    return db_api_handle(&st, path, query, out, ctype);
}

/* ---------------------------------------------------------------- start and stop */

/* The parents of the data directory and the socket directory, owned by the server's user. */
static int prepare_dirs(struct db_agent *a, struct errbuf *eb)
{
    char path[CONF_PATH_MAX];
    (void)snprintf(path, sizeof(path), "%s", a->db.data_dir);
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            (void)mkdir(path, 0755);
            *p = '/';
        }
    }
    const struct passwd *pw = getpwnam(a->db.user);
    if (pw == NULL) {
        errbuf_set(eb, "user %s does not exist", a->db.user);
        return -ENOENT;
    }
    /* keel sends passwords over the socket and trusts its answers: a directory only root
     * and the user can touch, with a short path whatever the data directory's length. */
    bool is_cleaned = false;
    int rc =
        pg_sockdir_path(PG_SOCKDIR_PARENT, a->db.data_dir, a->socket_dir, sizeof(a->socket_dir));
    rc = rc != 0 ? rc : pg_sockdir_prepare(a->socket_dir, pw->pw_uid, pw->pw_gid, &is_cleaned, eb);
    if (rc != 0) {
        a->socket_dir[0] = '\0'; /* not ours: never removed */
        return rc;
    }
    a->socket_uid = pw->pw_uid;
    if (is_cleaned) {
        log_notice("db", "%s: removed the stale socket files an earlier run left in %s", a->self,
                   a->socket_dir);
    }
    return 0;
}

static const struct conf_database *find_db(const struct conf *conf, const char *node)
{
    for (uint32_t d = 0; d < conf->n_databases; d++) {
        for (uint32_t i = 0; i < conf->databases[d].n_nodes; i++) {
            if (strcmp(conf->databases[d].nodes[i], node) == 0) {
                return &conf->databases[d];
            }
        }
    }
    return NULL;
}

static int start_parts(struct db_agent *a, const struct conf *conf, struct errbuf *eb)
{
    char cidrs[CONF_DB_MAX_NODES + 64][72];
    const char *cidr_ptrs[CONF_DB_MAX_NODES + 64];
    size_t n_cidrs = 0;
    for (uint32_t i = 0; i < conf->n_nodes && n_cidrs < CONF_DB_MAX_NODES + 64; i++) {
        (void)snprintf(cidrs[n_cidrs], sizeof(cidrs[0]), "%s/32", conf->nodes[i].address);
        cidr_ptrs[n_cidrs] = cidrs[n_cidrs];
        n_cidrs++;
    }
    /* Nodes on one machine's loopback connect from 127.0.0.1 (libpq cannot pick a source). */
    if (strncmp(a->self_addr, "127.", 4) == 0) {
        (void)snprintf(cidrs[n_cidrs], sizeof(cidrs[0]), "127.0.0.1/32");
        cidr_ptrs[n_cidrs] = cidrs[n_cidrs];
        n_cidrs++;
    }
    struct pg_inst_conf pc = {.name = a->self,
                              .bindir = a->db.bindir,
                              .datadir = a->db.data_dir,
                              .socket_dir = a->socket_dir,
                              .is_sockdir_checked = true,
                              .user = a->db.user,
                              .listen_addr = a->self_addr,
                              .port = (uint16_t)a->db.pg_port,
                              .repl_password = a->repl_password,
                              .allowed_cidrs = cidr_ptrs,
                              .n_cidrs = n_cidrs,
                              .app_name = a->self};
    int rc = pg_inst_new(a->loop, &pc, &a->pg, eb);
    if (rc != 0) {
        return rc;
    }
    const char *eps[CONF_DB_MAX_DCS];
    for (uint32_t i = 0; i < a->db.n_dcs; i++) {
        eps[i] = a->db.dcs[i];
    }
    a->etcd = etcd_new(a->loop, eps, a->db.n_dcs, a->tick_ms * 2, eb);
    if (a->etcd == NULL) {
        return -EINVAL;
    }
    struct conf_addr api;
    char port[16];
    (void)snprintf(port, sizeof(port), ":%u", a->db.agent_port);
    if (conf_addr_with_host(port, a->self_addr, CONF_ADDR_NO_RESOLVE, &api, eb) != 0) {
        return -EINVAL;
    }
    a->api = admin_start(a->loop, (const struct sockaddr *)&api.sa, api.salen, api_handler, a, eb);
    return a->api == NULL ? -EADDRINUSE : 0;
}

struct db_agent *db_agent_start(struct ev_loop *loop, const struct conf *conf, const char *node,
                                struct errbuf *eb)
{
    eb->msg[0] = '\0';
    const struct conf_database *db = node != NULL ? find_db(conf, node) : NULL;
    if (db == NULL) {
        return NULL;
    }
    if (conf->secret_file[0] == '\0') {
        errbuf_set(eb, "database %s needs the cluster's secret_file", db->name);
        return NULL;
    }
    struct db_agent *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        errbuf_set(eb, "out of memory");
        return NULL;
    }
    a->loop = loop;
    db_fsm_init(&a->fsm, ev_now_ms(loop));
    a->db = *db;
    /* Each node keeps its data in DATA_DIR/NODE: nodes may share a machine (keel up). */
    (void)snprintf(a->db.data_dir, sizeof(a->db.data_dir), "%.900s/%s", db->data_dir, node);
    (void)snprintf(a->self, sizeof(a->self), "%s", node);
    for (uint32_t i = 0; i < db->n_nodes; i++) {
        const struct conf_node *n = conf_find_node(conf, db->nodes[i]);
        (void)snprintf(a->addrs[i], sizeof(a->addrs[i]), "%s", n != NULL ? n->address : "");
    }
    (void)snprintf(a->self_addr, sizeof(a->self_addr), "%s", addr_of(a, node));
    db_conf_key(conf, db->name, "leader", a->key_leader, sizeof(a->key_leader));
    db_conf_key(conf, db->name, "members/", a->key_members, sizeof(a->key_members));
    db_conf_key(conf, db->name, "switchover", a->key_switch, sizeof(a->key_switch));
    (void)snprintf(a->key_self, sizeof(a->key_self), "%s%s", a->key_members, node);
    uint32_t t = db->lease_ms / DB_AGENT_TURNS_PER_LEASE;
    a->tick_ms = t > DB_AGENT_TURN_MAX_MS   ? DB_AGENT_TURN_MAX_MS
                 : t < DB_AGENT_TURN_MIN_MS ? DB_AGENT_TURN_MIN_MS
                                            : t;
    ev_timer_init(&a->tick, db_agent_on_tick, a, "db agent");
    ev_timer_init(&a->fence_timer, on_fence_timer, a, "db fence");
    if (db_secret_password(conf->secret_file, "keel-db-replication-v1", a->repl_password, eb) !=
            0 ||
        db_secret_app_password(conf->secret_file, db->name, a->app_password, eb) != 0 ||
        prepare_dirs(a, eb) != 0 || (a->fence = db_fence_start(a->self, eb)) == NULL ||
        start_parts(a, conf, eb) != 0) {
        db_agent_free(a);
        return NULL;
    }
    log_notice("db", "%s: agent of database %s started (PostgreSQL on %s:%u, endpoints on :%u)",
               a->self, db->name, a->self_addr, db->pg_port, db->agent_port);
    db_agent_schedule(a, 0);
    return a;
}

void db_agent_stop(struct db_agent *a)
{
    if (a == NULL || db_agent_is_stopping(a)) {
        return;
    }
    (void)db_node_set_state(a, DB_NODE_STOPPING, "agent stop"); /* legal from any other */
    ev_timer_stop(a->loop, &a->tick);
    ev_timer_stop(a->loop, &a->fence_timer);
    db_fence_disarm(a->fence); /* a clean stop follows */
    if (a->has_leader && strcmp(a->leader, a->self) == 0) {
        db_agent_release(a); /* a replica takes over without waiting for the lease */
    }
    if (pg_inst_state(a->pg) == PG_INST_STOPPED) {
        (void)db_node_set_state(a, DB_NODE_STOPPED, "PostgreSQL not running");
        return;
    }
    if (pg_inst_stop(a->pg, PG_STOP_FAST, db_agent_op_done, a) != 0) {
        (void)db_node_set_state(a, DB_NODE_STOPPED, "a stop is under way already");
    }
}

bool db_agent_is_stopped(const struct db_agent *a)
{
    return a == NULL || a->fsm.state == DB_NODE_STOPPED;
}

void db_agent_free(struct db_agent *a)
{
    if (a == NULL) {
        return;
    }
    ev_timer_stop(a->loop, &a->tick);
    ev_timer_stop(a->loop, &a->fence_timer);
    admin_stop(a->api);
    etcd_free(a->etcd);
    pg_inst_free(a->pg);
    db_fence_free(a->fence);
    struct errbuf eb;
    if (a->socket_dir[0] != '\0' && pg_sockdir_remove(a->socket_dir, a->socket_uid, &eb) != 0) {
        log_notice("db", "%s: socket directory left in place: %s", a->self, eb.msg);
    }
    free(a);
}

/* A replica's lag behind the primary in bytes of WAL it has not replayed. */
static uint64_t lag_bytes(const struct db_agent *a)
{
    uint64_t at = a->replay_lsn != 0 ? a->replay_lsn : a->pg_lsn;
    return !a->pg_primary && at != 0 && a->primary_lsn > at ? a->primary_lsn - at : 0;
}

enum { DM_ROLE = 0, DM_LAG_BYTES, DM_LAG_SECONDS, DM_PROMOTIONS, DM_LEADER_CHANGES };

static const struct metric_desc agent_metrics[] = {
    [DM_ROLE] = {"keel_db_role", METRIC_GAUGE,
                 "The node's database role: 0 unknown, 1 primary, 2 replica, 3 candidate, "
                 "4 fenced.",
                 METRIC_LABELS("database")},
    [DM_LAG_BYTES] = {"keel_db_lag_bytes", METRIC_GAUGE, "WAL this replica has not replayed yet.",
                      METRIC_LABELS("database")},
    [DM_LAG_SECONDS] = {"keel_db_lag_seconds", METRIC_GAUGE,
                        "Age of the last transaction this replica replayed while WAL waits "
                        "(0 when caught up).",
                        METRIC_LABELS("database")},
    [DM_PROMOTIONS] = {"keel_db_promotions_total", METRIC_COUNTER, "Promotions of this node.",
                       METRIC_LABELS("database")},
    [DM_LEADER_CHANGES] = {"keel_db_leader_changes_total", METRIC_COUNTER,
                           "Changes of the leader seen by this node (failovers and "
                           "switchovers).",
                           METRIC_LABELS("database")},
};

const struct metric_table db_agent_metric_table =
    METRIC_TABLE("Databases (db role)", "src/db/db_agent.c", agent_metrics);

void db_agent_metrics(const struct db_agent *a, struct metrics_out *out)
{
    if (a == NULL) {
        return;
    }
    const char *const values[] = {a->db.name};
    metrics_family(out, &agent_metrics[DM_ROLE]);
    metrics_sample_u64(out, &agent_metrics[DM_ROLE], values,
                       (uint64_t)db_node_state_role(a->fsm.state));
    metrics_family(out, &agent_metrics[DM_LAG_BYTES]);
    metrics_sample_u64(out, &agent_metrics[DM_LAG_BYTES], values, lag_bytes(a));
    metrics_family(out, &agent_metrics[DM_LAG_SECONDS]);
    metrics_sample_f(out, &agent_metrics[DM_LAG_SECONDS], values,
                     a->pg_primary ? 0.0 : a->lag_ms / 1000.0);
    metrics_family(out, &agent_metrics[DM_PROMOTIONS]);
    metrics_sample_u64(out, &agent_metrics[DM_PROMOTIONS], values, a->promotions);
    metrics_family(out, &agent_metrics[DM_LEADER_CHANGES]);
    metrics_sample_u64(out, &agent_metrics[DM_LEADER_CHANGES], values, a->leader_changes);
    db_retry_metrics(&a->retry, ev_now_ms(a->loop), a->db.name, out);
}

void db_agent_status_json(const struct db_agent *a, struct json_w *w)
{
    if (a == NULL) {
        json_w_null(w);
        return;
    }
    json_w_begin_object(w);
    json_w_key_str(w, "database", a->db.name);
    json_w_key_str(w, "role", db_role_name(db_node_state_role(a->fsm.state)));
    json_w_key_str(w, "state", db_node_state_name(a->fsm.state));
    json_w_key_str(w, "leader", a->has_leader ? a->leader : "");
    json_w_key_str(w, "postgres", pg_inst_state_name(pg_inst_state(a->pg)));
    json_w_key_uint(w, "lsn", a->pg_lsn);
    json_w_key_uint(w, "lag_bytes", lag_bytes(a));
    json_w_key_num(w, "lag_seconds", a->pg_primary ? 0.0 : a->lag_ms / 1000.0, 3);
    json_w_key_uint(w, "promotions", a->promotions);
    json_w_key_uint(w, "leader_changes", a->leader_changes);
    json_w_key(w, "stuck");
    db_retry_json(&a->retry, ev_now_ms(a->loop), w);
    json_w_end_object(w);
}

/* ---------------------------------------------------------------- reload */

void db_agent_reconfigure(struct db_agent *a, const struct conf_database *db)
{
    if (a == NULL) {
        return;
    }
    if (a->db.max_lag != db->max_lag || a->db.replication != db->replication ||
        a->db.single_node_writes != db->single_node_writes) {
        log_notice("db", "%s: reload: max_lag %lu, replication %s, single_node_writes %s", a->self,
                   (unsigned long)db->max_lag,
                   db->replication == CONF_DB_SYNC ? "synchronous" : "asynchronous",
                   db->single_node_writes ? "on" : "off");
    }
    a->db.max_lag = db->max_lag;
    a->db.replication = db->replication; /* the primary's next turn sets sync_names again */
    a->db.single_node_writes = db->single_node_writes;
    if (a->db.switchover_timeout_ms != db->switchover_timeout_ms ||
        a->db.stream_timeout_ms != db->stream_timeout_ms) {
        log_notice("db", "%s: reload: switchover_timeout %.1f s, stream_timeout %.1f s", a->self,
                   db->switchover_timeout_ms / 1000.0, db->stream_timeout_ms / 1000.0);
    }
    /* Read where they are used: a switchover under way keeps the deadline it set, the next
     * turn judges a replica's stream by the new timeout. */
    a->db.switchover_timeout_ms = db->switchover_timeout_ms;
    a->db.stream_timeout_ms = db->stream_timeout_ms;
}
