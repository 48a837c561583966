/* SPDX-License-Identifier: MIT */
/* The state machine of a database node's agent (db/db_fsm.c): what the agent is doing with
 * its PostgreSQL, as one enum, with the role it shows (db_elect.h), whether a PostgreSQL
 * operation runs, and a table of the legal transitions. Pure: no I/O, clock or logging.
 * The agent changes the state only through db_node_set_state (db_agent.c), which calls
 * db_fsm_set_state and logs. States, table and diagram: docs/internals/db_fsm.md. */
#ifndef KEEL_DB_DB_FSM_H
#define KEEL_DB_DB_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "db/db_elect.h"

enum db_node_state {
    DB_NODE_INIT = 0,      /* the agent started; no turn has looked yet */
    DB_NODE_IDLE,          /* PostgreSQL is not running (or does not answer) and nothing is
                            * under way: each turn decides to start, copy, follow or wait */
    DB_NODE_BOOTSTRAPPING, /* initdb and first start, as the cluster's first primary */
    DB_NODE_CLONING,       /* pg_basebackup from the leader, then start as its replica */
    DB_NODE_STARTING,      /* PostgreSQL starts as its data directory says */
    DB_NODE_CANDIDATE,     /* runs, not writable: competes for the leader key, or holds it
                            * and must promote */
    DB_NODE_PROMOTING,     /* pg_promote runs: this node won the key */
    DB_NODE_PRIMARY,       /* holds the leader key under its lease: writable */
    DB_NODE_REPLICA,       /* runs read-only: follows the leader, or waits while there is
                            * none or etcd cannot be reached */
    DB_NODE_FOLLOWING,     /* stop, pg_rewind if it diverged, start as the leader's replica */
    DB_NODE_UNFOLLOWING,   /* the leader key lapsed: stop streaming (no primary_conninfo,
                            * a reload), so an old primary that still runs finds no standby
                            * to confirm its commits */
    DB_NODE_FENCING,       /* a primary that may have lost the key restarts read-only */
    DB_NODE_FENCED,        /* runs read-only, following nobody, after a fence: until it is
                            * promoted or follows a leader */
    DB_NODE_SW_STOPPING,   /* switchover (db_switch.c): the primary stops cleanly, its WAL
                            * senders ship everything up to the shutdown checkpoint */
    DB_NODE_SW_WAITING,    /* switchover: stopped; waits for the target to receive it */
    DB_NODE_SW_HANDED,     /* switchover: the key released; waits for the target to lead */
    DB_NODE_STOPPING,      /* the agent stops: the key released, PostgreSQL stops */
    DB_NODE_STOPPED        /* the agent stopped: final */
};
#define DB_NODE_STATE_COUNT 18

/* "init", "idle", "bootstrapping", ...; "?" out of range. */
const char *db_node_state_name(enum db_node_state state);

/* The role a node in this state shows (/status, keel_db_role, the health endpoints). */
enum db_role db_node_state_role(enum db_node_state state);

/* Whether a PostgreSQL operation runs in this state: the turn only watches until it ends. */
bool db_node_state_is_busy(enum db_node_state state);

/* The state a turn settles in when db_elect_decide gives role: UNKNOWN idle, a replica
 * that was fenced and has not followed or been promoted since stays fenced. */
enum db_node_state db_node_state_of_role(enum db_role role, bool is_fenced);

/* Where a busy state goes when its operation ends (or cannot start): the state itself
 * when it is not busy. */
enum db_node_state db_node_state_after_op(enum db_node_state state);

/* One node's machine. Embed it; fields are read-only for callers. */
struct db_fsm {
    enum db_node_state state;
    uint64_t state_since_ms;                 /* time of the last transition */
    uint32_t n_transitions;                  /* legal transitions made */
    uint32_t n_entered[DB_NODE_STATE_COUNT]; /* times each state was entered */
    bool is_fenced;        /* a fence demoted this node (entering FENCING) and it has not
                            * been promoted, copied or followed a leader since: kept across
                            * restarts of PostgreSQL, so it stays read-only and unwatched */
    uint64_t fenced_at_ms; /* when it last entered FENCING */
};

/* INIT at now_ms. */
void db_fsm_init(struct db_fsm *fsm, uint64_t now_ms);

/* Whether the table has from -> to. */
bool db_fsm_is_legal(enum db_node_state from, enum db_node_state to);

/* The table's comment on from -> to; NULL when illegal. */
const char *db_fsm_comment(enum db_node_state from, enum db_node_state to);

/* Move to `to` at now_ms if the table allows it: updates the counters, the timestamp and
 * the fence memory, returns 0. Returns -EPERM and changes nothing otherwise (the caller
 * reports it, core/fsm.h). A move to the same state is not a transition: -EPERM too. */
int db_fsm_set_state(struct db_fsm *fsm, enum db_node_state to, uint64_t now_ms) KEEL_MUST_CHECK;

/* The diagram of the table, a mermaid stateDiagram-v2 block without its ``` fences, into
 * buf (NUL-terminated). Returns its length; >= size means it was cut. */
size_t db_fsm_mermaid(char *buf, size_t size);

#endif
