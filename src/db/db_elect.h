/* SPDX-License-Identifier: MIT */
/* The database agent's decision (db/db_elect.c): from what the agent knows of its
 * PostgreSQL and of the leader key and members in etcd, what this node should be and do.
 * Pure: no I/O, no clock; the agent calls it on every loop turn and carries out the
 * actions (etcd requests, pg_promote, fencing, pg_rewind). The rules are in the .c file and
 * in docs/internals/db_elect.md. */
#ifndef KEEL_DB_DB_ELECT_H
#define KEEL_DB_DB_ELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf-t.h"

/* Another agent, as it published itself in etcd (under its own lease: a dead agent's key
 * is gone within one lease). */
struct db_member {
    char name[CONF_NAME_MAX];
    uint64_t lsn; /* primary: current WAL position; replica: received and flushed */
    bool healthy; /* its PostgreSQL runs and answers */
    bool is_primary;
};

struct db_elect_in {
    uint64_t now_ms;
    const char *self;
    /* this node's PostgreSQL */
    bool pg_up;             /* running and answering queries */
    bool pg_primary;        /* not in recovery (writable unless fenced) */
    uint64_t pg_lsn;        /* as in struct db_member */
    const char *pg_follows; /* replica: the node its primary_conninfo names; NULL: none */
    /* etcd */
    bool dcs_ok;                     /* the last round trip to etcd succeeded */
    const char *leader;              /* the leader key's value (a node name); NULL: there is none */
    int64_t leader_lease;            /* the lease the leader key is attached to (0: none) */
    int64_t lease;                   /* this agent's current lease (0: none granted yet). The
                                      * key is ours only when it names us AND is under this
                                      * lease: under another lease it is an earlier run's */
    const struct db_member *members; /* the other live agents */
    size_t n_members;
    const char *switchover_to;     /* a planned switchover hands the key to this node; NULL:
                                    * none under way */
    uint64_t lease_valid_until_ms; /* leader: when our lease may lapse at the earliest (the
                                    * start of the last successful renewal + the lease) */
    uint32_t lease_ms;
};

enum db_role {
    DB_ROLE_UNKNOWN = 0, /* PostgreSQL is not up: nothing to say yet */
    DB_ROLE_PRIMARY,     /* holds the leader key, writable */
    DB_ROLE_REPLICA,     /* follows the leader */
    DB_ROLE_CANDIDATE,   /* no leader: trying to become it */
    DB_ROLE_FENCED       /* a primary that may not be the leader: accepts no writes */
};

const char *db_role_name(enum db_role role);

struct db_elect_out {
    enum db_role role;
    bool acquire;       /* create the leader key with our name, under our lease, if absent (one
                         * etcd transaction); on success promote on the next turn */
    bool renew;         /* renew our lease now */
    bool promote;       /* make our PostgreSQL the primary (pg_promote) */
    bool fence;         /* stop accepting writes now: a primary that may have lost the key */
    bool release;       /* delete the leader key if it still holds our name */
    bool take_over;     /* replace our earlier run's key (our name, another lease) with one
                         * under our lease, by compare-and-swap on its mod revision */
    bool follow;        /* (re)point our PostgreSQL at `leader` as a replica: pg_rewind first if it
                         * was a primary, then standby.signal + primary_conninfo */
    const char *reason; /* why, for logs (static text) */
};

/* How long before its lease can lapse a primary that cannot renew fences itself. */
uint32_t db_elect_fence_margin_ms(uint32_t lease_ms);

/* Whether the leader key is this agent's: it names self and is attached to the agent's
 * current lease (not 0). A key with our name under another lease was written by an earlier
 * run of this agent (kill -9 and restart): it is foreign until it expires or until we
 * replace it (take_over), and we accept no write meanwhile. */
bool db_elect_is_own_key(const char *self, const char *leader, int64_t leader_lease, int64_t lease);

void db_elect_decide(const struct db_elect_in *in, struct db_elect_out *out);

#endif
