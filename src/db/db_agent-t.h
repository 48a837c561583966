/* SPDX-License-Identifier: MIT */
/* The database agent's state, shared by its parts: db_agent.c (the election's actions,
 * the fence, start and stop), db_turn.c (a turn's reads) and db_switch.c (planned
 * switchover). Private to src/db. */
#ifndef KEEL_DB_DB_AGENT_T_H
#define KEEL_DB_DB_AGENT_T_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/conf-t.h"
#include "core/ev.h"
#include "db/db_elect.h"
#include "db/db_fsm.h"
#include "db/db_retry.h"
#include "db/db_secret.h"
#include "db/etcd.h"
#include "db/pg_inst.h"

struct admin;
struct db_fence;

struct db_agent {
    struct ev_loop *loop;
    struct conf_database db; /* a copy: a reload frees the configuration */
    char self[CONF_NAME_MAX];
    char addrs[CONF_DB_MAX_NODES][64]; /* of db.nodes */
    char self_addr[64];
    char key_leader[256];
    char key_members[256];
    char key_self[320];
    char key_switch[256];
    char repl_password[DB_PASSWORD_SIZE];
    char app_password[DB_PASSWORD_SIZE];
    char socket_dir[CONF_PATH_MAX]; /* pg_sockdir.h; "" when not ours */
    uid_t socket_uid;               /* its owner: PostgreSQL's user */
    struct pg_inst *pg;
    struct etcd *etcd;
    struct admin *api;
    struct ev_timer tick;
    struct ev_timer fence_timer; /* the leader's deadline to stop writing, kept by itself */
    struct db_fence *fence;      /* the same deadline, kept by a separate process (db_fence.c) */
    uint32_t fence_fired_seen;   /* the watcher's fences already logged */
    uint32_t tick_ms;
    /* the agent's lease: its member key, and the leader key while it leads */
    int64_t lease;
    bool lease_busy;
    uint64_t lease_valid_until_ms;
    /* what the agent is doing: changed only by db_node_set_state (db_fsm.h). A PostgreSQL
     * operation runs in the busy states (db_node_state_is_busy); the role shown is the
     * state's (db_node_state_role) */
    struct db_fsm fsm;
    /* one turn at a time */
    int reads;
    bool is_turn_busy;
    bool is_turn_stale;    /* a turn was asked for at once while this one's reads were out */
    char op_what[80];      /* the operation, "follow db2": for the retries' log and status */
    struct db_retry retry; /* failures in a row and the backoff (db_retry.h) */
    uint64_t turn_at_ms;
    uint64_t pg_down_at_ms;        /* the first turn that saw PostgreSQL not running; 0: it runs */
    uint64_t unstreaming_since_ms; /* a replica of the leader not streaming since; 0: it is */
    uint64_t lsn_seen, lsn_moved_ms; /* this node's position, and when it last moved */
    /* what the last turn saw */
    bool pg_up, pg_primary, streaming, replica_ok;
    uint64_t pg_lsn, primary_lsn;
    uint64_t replay_lsn; /* a replica's: what its readers see */
    uint32_t lag_ms;
    char follows[CONF_NAME_MAX]; /* whom PostgreSQL follows (what we told it) */
    bool dcs_ok, has_leader;
    char leader[CONF_NAME_MAX];
    int64_t leader_lease; /* the lease the leader key is under (ours only if == lease) */
    int64_t leader_rev;   /* the leader key's mod revision (to take an earlier run's over) */
    struct db_member members[CONF_DB_MAX_NODES];
    size_t n_members;
    /* the switchover key, as last read; this node's part in one is its state (SW_*) */
    bool sw_has;
    char sw_from[CONF_NAME_MAX], sw_to[CONF_NAME_MAX];
    char sw_target[CONF_NAME_MAX];
    uint64_t sw_lsn, sw_deadline_ms;
    char streamers[CONF_DB_MAX_NODES][CONF_NAME_MAX]; /* primary: standbys streaming now */
    char sync_names[256]; /* primary: synchronous_standby_names in force */
    bool is_sync_busy;
    size_t n_streaming;
    uint64_t fenced_said_ms; /* the last "READ-ONLY" warning */
    uint64_t promotions;
    uint64_t leader_changes;
    char last_leader[CONF_NAME_MAX]; /* the last leader seen, kept while there is none */
    int64_t leader_revision;         /* of the leader's member key, when it last changed */
    uint64_t leader_seen_ms;
};

/* db_agent.c, for its parts */
/* The one transition function: moves a->fsm to `to` if db_fsm's table allows it and logs
 * "old -> new (reason)" at notice level. Returns 0, or -EPERM when the move is illegal: then
 * nothing changed (core/fsm.h logs and counts it) and the caller must not start what the
 * new state stands for. */
int db_node_set_state(struct db_agent *a, enum db_node_state to, const char *reason);
bool db_agent_is_stopping(const struct db_agent *a); /* STOPPING or STOPPED */
bool db_agent_is_leader(const struct db_agent *a);   /* the key names us, under our lease */
/* A turn in ms. A turn asked for at once (an operation ended, the key was taken) while a
 * turn's reads are out is not lost: that turn, whose reads may predate the change, acts on
 * nothing, and the next one starts as soon as its reads are back (db_turn.c). */
void db_agent_schedule(struct db_agent *a, uint32_t ms);
void db_agent_ignore(void *data, const struct etcd_result *res); /* an etcd callback */
void db_agent_op_done(void *data, int rc, const char *reason);   /* a pg_inst operation ended */
/* The operation `what` was just asked of pg_inst, which returned rc; st is its busy state,
 * which the caller checked is legal from the current one. 0: enters st, returns true.
 * Otherwise logs, counts the failure for the retries, stays, and returns false. */
bool db_agent_run_op(struct db_agent *a, enum db_node_state st, int rc, const char *what);
void db_agent_release(struct db_agent *a);     /* delete the leader key if it names us */
void db_agent_act_stopped(struct db_agent *a); /* the turn's actions when PostgreSQL is down */

void db_agent_act(struct db_agent *a); /* the turn's reads are back: decide and act */
void db_agent_on_lease(void *data, const struct etcd_result *res); /* a grant or renewal */

/* db_turn.c */
void db_agent_on_tick(struct ev_loop *loop, struct ev_timer *t); /* start a turn */

/* db_switch.c */
void db_switch_begin(struct db_agent *a);    /* the switchover key names us, the primary */
void db_switch_step(struct db_agent *a);     /* a turn during a switchover we lead */
void db_switch_promoted(struct db_agent *a); /* we were promoted: end the switchover if ours */

#endif
