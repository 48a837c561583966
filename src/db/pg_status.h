/* SPDX-License-Identifier: MIT */
/* The questions and orders the database agent sends to a PostgreSQL server over a pg_conn:
 * its role, WAL positions, timeline and standbys in one query; the synchronous standby list
 * (ALTER SYSTEM + reload); physical replication slots. Each is one or two asynchronous
 * queries (pg_query.h) and never blocks. The connection should be a superuser's (keel's
 * local one, pg_inst_conn) or a member of pg_monitor: PostgreSQL hides the columns of
 * pg_stat_replication and pg_stat_wal_receiver from others. */
#ifndef KEEL_DB_PG_STATUS_H
#define KEEL_DB_PG_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "db/pg_query.h"

#define PG_STANDBYS_MAX 16 /* rows of pg_stat_replication kept */

/* One row of pg_stat_replication: a WAL sender and the standby behind it. */
struct pg_standby {
    char name[64];       /* application_name: the standby's name in synchronous_standby_names */
    char addr[64];       /* client_addr, "" for a socket */
    char state[16];      /* "startup", "catchup", "streaming", "backup", "stopping" */
    char sync_state[16]; /* "async", "potential", "sync", "quorum" */
    uint64_t sent_lsn;   /* 0 when NULL */
    uint64_t write_lsn;
    uint64_t flush_lsn;
    uint64_t replay_lsn;
};

struct pg_status {
    bool is_in_recovery;      /* pg_is_in_recovery(): a standby (or a promotion not yet done) */
    uint64_t current_lsn;     /* a primary's pg_current_wal_lsn(); 0 on a standby */
    uint64_t receive_lsn;     /* a standby's pg_last_wal_receive_lsn(); 0 if none */
    uint64_t replay_lsn;      /* a standby's pg_last_wal_replay_lsn(); 0 if none */
    uint32_t timeline;        /* timeline_id of pg_control_checkpoint(): the last checkpoint's;
                               * after a promotion it changes with the next checkpoint */
    uint32_t received_tli;    /* a standby's pg_stat_wal_receiver.received_tli; 0 if none */
    uint32_t replay_delay_ms; /* a standby with WAL received but not replayed: how old its
                               * last replayed transaction is; 0 when replay is caught up */
    char sync_names[256];     /* synchronous_standby_names in force ("" if none; cut) */
    uint32_t n_standbys;      /* rows of pg_stat_replication, by application_name */
    struct pg_standby standbys[PG_STANDBYS_MAX];
};

/* The status: rc 0 and st set, or a negative code (pg_result's err) and reason with st
 * NULL. st is valid during the call. */
typedef void (*pg_status_fn)(void *data, int rc, const char *reason, const struct pg_status *st);

/* Ask c for the status (one query). cb gets exactly one call, from the loop (with
 * -ECANCELED if c is freed first). Returns 0 or -ENOMEM / -ECANCELED (cb is then never
 * called). */
int pg_status_query(struct pg_conn *c, pg_status_fn cb, void *data) KEEL_MUST_CHECK;

/* Set synchronous_standby_names on the primary behind c: ALTER SYSTEM (it survives
 * restarts, in postgresql.auto.conf), then pg_reload_conf(). names is PostgreSQL's syntax,
 * "ANY 1 (node2,node3)", "FIRST 1 (node2)" or "" for asynchronous replication. With names
 * set, a commit returns only once enough of those standbys flushed it (synchronous_commit
 * = on). cb as for pg_status_query. Returns 0, -EINVAL (names has a control character),
 * -ENOMEM or -ECANCELED. */
int pg_sync_set(struct pg_conn *c, const char *names, pg_done_fn cb, void *data) KEEL_MUST_CHECK;

/* Create the physical replication slot name on the primary behind c, unless it exists.
 * A standby streaming through it keeps the primary from recycling WAL it has not received.
 * Returns 0, -EINVAL (not a valid slot name: [a-z0-9_], 1-63), -ENOMEM or -ECANCELED. */
int pg_slot_create(struct pg_conn *c, const char *name, pg_done_fn cb, void *data) KEEL_MUST_CHECK;

/* Drop the slot name if it exists and is not in use. As pg_slot_create. */
int pg_slot_drop(struct pg_conn *c, const char *name, pg_done_fn cb, void *data) KEEL_MUST_CHECK;

/* The application's role and database, both called name: the role is created with LOGIN
 * and password (or its password set again), then the database, owned by it, if missing.
 * On a primary; idempotent. cb as for pg_status_query. Returns 0, -EINVAL (name or
 * password too long), -ENOMEM or -ECANCELED. */
int pg_app_setup(struct pg_conn *c, const char *name, const char *password, pg_done_fn cb,
                 void *data) KEEL_MUST_CHECK;

/* Parse the result of the status query into st (exposed for tests). Returns 0 or -EPROTO
 * when a value is not what PostgreSQL prints. */
int pg_status_parse(const struct pg_result *r, struct pg_status *st) KEEL_MUST_CHECK;

#endif
