/* SPDX-License-Identifier: MIT */
/* The database node's state machine as data: the states' names, roles and busy flags, and
 * every legal transition with its action and comment. Pure: the agent (db_agent.c,
 * db_switch.c) decides when to move, carries out the PostgreSQL and etcd work, and logs;
 * db_elect.c decides what the node should be. docs/internals/db_fsm.md draws the table
 * (a unit test checks the drawing is db_fsm_mermaid's output). */
#include "db/db_fsm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Per state: its name, the role it shows, whether an operation runs. */
static const struct {
    const char *name;
    enum db_role role;
    bool is_busy;
} db_node_states[DB_NODE_STATE_COUNT] = {
    [DB_NODE_INIT] = {"init", DB_ROLE_UNKNOWN, false},
    [DB_NODE_IDLE] = {"idle", DB_ROLE_UNKNOWN, false},
    [DB_NODE_BOOTSTRAPPING] = {"bootstrapping", DB_ROLE_UNKNOWN, true},
    [DB_NODE_CLONING] = {"cloning", DB_ROLE_UNKNOWN, true},
    [DB_NODE_STARTING] = {"starting", DB_ROLE_UNKNOWN, true},
    [DB_NODE_CANDIDATE] = {"candidate", DB_ROLE_CANDIDATE, false},
    [DB_NODE_PROMOTING] = {"promoting", DB_ROLE_CANDIDATE, true},
    [DB_NODE_PRIMARY] = {"primary", DB_ROLE_PRIMARY, false},
    [DB_NODE_REPLICA] = {"replica", DB_ROLE_REPLICA, false},
    [DB_NODE_FOLLOWING] = {"following", DB_ROLE_UNKNOWN, true},
    [DB_NODE_UNFOLLOWING] = {"unfollowing", DB_ROLE_REPLICA, true},
    [DB_NODE_FENCING] = {"fencing", DB_ROLE_FENCED, true},
    [DB_NODE_FENCED] = {"fenced", DB_ROLE_FENCED, false},
    [DB_NODE_SW_STOPPING] = {"switch_stopping", DB_ROLE_UNKNOWN, true},
    [DB_NODE_SW_WAITING] = {"switch_waiting", DB_ROLE_UNKNOWN, false},
    [DB_NODE_SW_HANDED] = {"switch_handed", DB_ROLE_UNKNOWN, false},
    [DB_NODE_STOPPING] = {"stopping", DB_ROLE_UNKNOWN, true},
    [DB_NODE_STOPPED] = {"stopped", DB_ROLE_UNKNOWN, false},
};

const char *db_node_state_name(enum db_node_state state)
{
    return (unsigned)state < DB_NODE_STATE_COUNT ? db_node_states[state].name : "?";
}

enum db_role db_node_state_role(enum db_node_state state)
{
    return (unsigned)state < DB_NODE_STATE_COUNT ? db_node_states[state].role : DB_ROLE_UNKNOWN;
}

bool db_node_state_is_busy(enum db_node_state state)
{
    return (unsigned)state < DB_NODE_STATE_COUNT && db_node_states[state].is_busy;
}

enum db_node_state db_node_state_of_role(enum db_role role, bool is_fenced)
{
    switch (role) {
    case DB_ROLE_PRIMARY:
        return DB_NODE_PRIMARY;
    case DB_ROLE_REPLICA:
        return is_fenced ? DB_NODE_FENCED : DB_NODE_REPLICA;
    case DB_ROLE_CANDIDATE:
        return DB_NODE_CANDIDATE;
    case DB_ROLE_FENCED:
        return DB_NODE_FENCED;
    default:
        return DB_NODE_IDLE;
    }
}

enum db_node_state db_node_state_after_op(enum db_node_state state)
{
    switch (state) {
    case DB_NODE_BOOTSTRAPPING:
    case DB_NODE_CLONING:
    case DB_NODE_STARTING:
    case DB_NODE_FOLLOWING:
    case DB_NODE_UNFOLLOWING:
    case DB_NODE_SW_STOPPING: /* db_switch.c handles a clean stop itself */
        return DB_NODE_IDLE;  /* the next turn (at once) looks at what runs */
    case DB_NODE_PROMOTING:
        return DB_NODE_CANDIDATE; /* writable only once a turn has seen it promoted */
    case DB_NODE_FENCING:
        return DB_NODE_FENCED;
    case DB_NODE_STOPPING:
        return DB_NODE_STOPPED;
    default:
        return state;
    }
}

/* ------------------------------------------------------------------------------------------
 * Transitions
 * ------------------------------------------------------------------------------------------ */

/* What entering a state through a row does to the machine's own memory. */
enum {
    ACT_FENCE_MARK = 1 << 0, /* is_fenced, fenced_at_ms */
    ACT_FENCE_CLEAR = 1 << 1 /* a promotion or a leader to follow lifts the fence */
};

struct db_fsm_transition {
    enum db_node_state from;
    enum db_node_state to;
    unsigned actions;
    const char *comment;
};

/* A turn's decision (db_elect_decide, then db_node_state_of_role): each turn recomputes the
 * role from what it sees, so any settled state may follow any other. */
#define TO_IDLE "PostgreSQL not up"
#define TO_CANDIDATE "competes for the key, or won it"
#define TO_PRIMARY "holds the key"
#define TO_REPLICA "read-only, follows or waits"
#define TO_FENCED "must not write"
#define DECIDE(from)                                                                               \
    {from, DB_NODE_IDLE, 0, TO_IDLE}, {from, DB_NODE_CANDIDATE, 0, TO_CANDIDATE},                  \
        {from, DB_NODE_PRIMARY, 0, TO_PRIMARY}, {from, DB_NODE_REPLICA, 0, TO_REPLICA},            \
    {                                                                                              \
        from, DB_NODE_FENCED, 0, TO_FENCED                                                         \
    }

/* Every legal transition. The DECIDE rows include a state's move to itself, which is not a
 * transition (db_fsm_set_state refuses it): db_fsm_is_legal skips them. */
static const struct db_fsm_transition db_fsm_transitions[] = {
    DECIDE(DB_NODE_INIT),
    DECIDE(DB_NODE_IDLE),
    DECIDE(DB_NODE_CANDIDATE),
    DECIDE(DB_NODE_PRIMARY),
    DECIDE(DB_NODE_REPLICA),
    DECIDE(DB_NODE_FENCED),
    /* PostgreSQL operations, started by a turn (db_agent.c) */
    {DB_NODE_IDLE, DB_NODE_BOOTSTRAPPING, 0, "holds the key, no data, initdb"},
    {DB_NODE_IDLE, DB_NODE_CLONING, ACT_FENCE_CLEAR, "a leader, no data, pg_basebackup"},
    {DB_NODE_IDLE, DB_NODE_STARTING, 0, "holds the key, or a replica, start"},
    {DB_NODE_IDLE, DB_NODE_FOLLOWING, ACT_FENCE_CLEAR, "another node leads, follow it"},
    {DB_NODE_REPLICA, DB_NODE_FOLLOWING, ACT_FENCE_CLEAR,
     "not streaming from the leader, follow it"},
    {DB_NODE_FENCED, DB_NODE_FOLLOWING, ACT_FENCE_CLEAR, "another node leads, follow it"},
    {DB_NODE_IDLE, DB_NODE_UNFOLLOWING, 0, "the leader key lapsed, stop streaming"},
    {DB_NODE_CANDIDATE, DB_NODE_UNFOLLOWING, 0, "the leader key lapsed, stop streaming"},
    {DB_NODE_REPLICA, DB_NODE_UNFOLLOWING, 0, "the leader key lapsed, stop streaming"},
    {DB_NODE_FENCED, DB_NODE_UNFOLLOWING, 0, "the leader key lapsed, stop streaming"},
    {DB_NODE_CANDIDATE, DB_NODE_PROMOTING, ACT_FENCE_CLEAR, "won the key, pg_promote"},
    {DB_NODE_IDLE, DB_NODE_FENCING, ACT_FENCE_MARK, "may have lost the key, restart read-only"},
    {DB_NODE_CANDIDATE, DB_NODE_FENCING, ACT_FENCE_MARK,
     "may have lost the key, restart read-only"},
    {DB_NODE_PRIMARY, DB_NODE_FENCING, ACT_FENCE_MARK,
     "lease not renewed in time, restart read-only"},
    {DB_NODE_REPLICA, DB_NODE_FENCING, ACT_FENCE_MARK, "may have lost the key, restart read-only"},
    {DB_NODE_FENCED, DB_NODE_FENCING, ACT_FENCE_MARK, "still writable, restart read-only"},
    /* ... and their ends (done, failed, or could not start) */
    {DB_NODE_BOOTSTRAPPING, DB_NODE_IDLE, 0, "initdb done or failed"},
    {DB_NODE_CLONING, DB_NODE_IDLE, 0, "copy done or failed"},
    {DB_NODE_STARTING, DB_NODE_IDLE, 0, "start done or failed"},
    {DB_NODE_FOLLOWING, DB_NODE_IDLE, 0, "follow done or failed"},
    {DB_NODE_UNFOLLOWING, DB_NODE_IDLE, 0, "restart done or failed"},
    {DB_NODE_PROMOTING, DB_NODE_CANDIDATE, 0, "promotion done or failed"},
    {DB_NODE_FENCING, DB_NODE_FENCED, 0, "read-only, or stopped"},
    /* planned switchover (db_switch.c) */
    {DB_NODE_PRIMARY, DB_NODE_SW_STOPPING, 0, "the switchover key names it, clean stop"},
    {DB_NODE_SW_STOPPING, DB_NODE_SW_WAITING, 0, "stopped at the shutdown checkpoint"},
    {DB_NODE_SW_STOPPING, DB_NODE_IDLE, 0, "no clean stop, aborted"},
    {DB_NODE_SW_WAITING, DB_NODE_SW_HANDED, 0, "the target has every write, key released"},
    {DB_NODE_SW_WAITING, DB_NODE_STARTING, 0, "the target is late, aborted, start again"},
    {DB_NODE_SW_WAITING, DB_NODE_IDLE, 0, "aborted, and the start cannot be queued"},
    {DB_NODE_SW_HANDED, DB_NODE_IDLE, 0, "the target leads, or never took the key"},
    /* the agent stops (db_agent_stop): from anywhere */
    {DB_NODE_INIT, DB_NODE_STOPPING, 0, "agent stop"},
    {DB_NODE_IDLE, DB_NODE_STOPPING, 0, "agent stop"},
    {DB_NODE_BOOTSTRAPPING, DB_NODE_STOPPING, 0, "agent stop"},
    {DB_NODE_CLONING, DB_NODE_STOPPING, 0, "agent stop"},
    {DB_NODE_STARTING, DB_NODE_STOPPING, 0, "agent stop"},
    {DB_NODE_CANDIDATE, DB_NODE_STOPPING, 0, "agent stop"},
    {DB_NODE_PROMOTING, DB_NODE_STOPPING, 0, "agent stop"},
    {DB_NODE_PRIMARY, DB_NODE_STOPPING, 0, "agent stop, the key released"},
    {DB_NODE_REPLICA, DB_NODE_STOPPING, 0, "agent stop"},
    {DB_NODE_FOLLOWING, DB_NODE_STOPPING, 0, "agent stop"},
    {DB_NODE_UNFOLLOWING, DB_NODE_STOPPING, 0, "agent stop"},
    {DB_NODE_FENCING, DB_NODE_STOPPING, 0, "agent stop"},
    {DB_NODE_FENCED, DB_NODE_STOPPING, 0, "agent stop"},
    {DB_NODE_SW_STOPPING, DB_NODE_STOPPING, 0, "agent stop"},
    {DB_NODE_SW_WAITING, DB_NODE_STOPPING, 0, "agent stop"},
    {DB_NODE_SW_HANDED, DB_NODE_STOPPING, 0, "agent stop"},
    {DB_NODE_STOPPING, DB_NODE_STOPPED, 0, "PostgreSQL stopped"},
};

#define N_TRANSITIONS (sizeof(db_fsm_transitions) / sizeof(db_fsm_transitions[0]))

static const struct db_fsm_transition *find(enum db_node_state from, enum db_node_state to)
{
    if (from == to) {
        return NULL;
    }
    for (size_t i = 0; i < N_TRANSITIONS; i++) {
        if (db_fsm_transitions[i].from == from && db_fsm_transitions[i].to == to) {
            return &db_fsm_transitions[i];
        }
    }
    return NULL;
}

bool db_fsm_is_legal(enum db_node_state from, enum db_node_state to)
{
    return find(from, to) != NULL;
}

const char *db_fsm_comment(enum db_node_state from, enum db_node_state to)
{
    const struct db_fsm_transition *t = find(from, to);
    return t != NULL ? t->comment : NULL;
}

void db_fsm_init(struct db_fsm *fsm, uint64_t now_ms)
{
    memset(fsm, 0, sizeof(*fsm));
    fsm->state = DB_NODE_INIT;
    fsm->state_since_ms = now_ms;
    fsm->n_entered[DB_NODE_INIT] = 1;
}

int db_fsm_set_state(struct db_fsm *fsm, enum db_node_state to, uint64_t now_ms)
{
    const struct db_fsm_transition *t = find(fsm->state, to);
    if (t == NULL) {
        return -EPERM;
    }
    if ((t->actions & ACT_FENCE_MARK) != 0) {
        fsm->is_fenced = true;
        fsm->fenced_at_ms = now_ms;
    }
    if ((t->actions & ACT_FENCE_CLEAR) != 0) {
        fsm->is_fenced = false;
    }
    fsm->state = to;
    fsm->state_since_ms = now_ms;
    fsm->n_transitions++;
    fsm->n_entered[to]++;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * The diagram
 * ------------------------------------------------------------------------------------------ */

size_t db_fsm_mermaid(char *buf, size_t size)
{
    size_t len = 0;
    int n = snprintf(buf, size, "stateDiagram-v2\n    [*] --> init\n");
    len += n > 0 ? (size_t)n : 0;
    for (size_t i = 0; i < N_TRANSITIONS; i++) {
        const struct db_fsm_transition *t = &db_fsm_transitions[i];
        if (t->from == t->to) {
            continue;
        }
        n = snprintf(buf + (len < size ? len : size), len < size ? size - len : 0,
                     "    %s --> %s : %s\n", db_node_state_name(t->from), db_node_state_name(t->to),
                     t->comment);
        len += n > 0 ? (size_t)n : 0;
    }
    n = snprintf(buf + (len < size ? len : size), len < size ? size - len : 0,
                 "    stopped --> [*]\n");
    len += n > 0 ? (size_t)n : 0;
    return len;
}
