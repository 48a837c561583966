/* SPDX-License-Identifier: MIT */
/* The database agent's health endpoints (db/db_api.c), Patroni's paths, answered from a
 * snapshot of what the agent knows. The agent serves them with the admin listener
 * (monitor/admin.c) on its agent_port; the lb nodes' write and read ports check them. */
#ifndef KEEL_DB_DB_API_H
#define KEEL_DB_DB_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db_elect.h"

struct metrics_out;

struct db_api_state {
    const char *self;
    enum db_role role;
    bool pg_up;
    uint64_t lsn;                    /* this node's, as in struct db_member */
    uint64_t replay_lsn;             /* a replica's replay position (what reads see); 0:
                                      * lsn */
    uint32_t lag_ms;                 /* a replica's replay delay in time (0: caught up) */
    uint64_t primary_lsn;            /* the primary's current position as last known; 0: unknown */
    bool streaming;                  /* a replica receiving from the leader */
    uint64_t max_lag;                /* bytes */
    const char *leader;              /* NULL: none */
    bool replica_within_lag;         /* primary: some replica streams within max_lag */
    const struct db_member *members; /* the other live agents */
    size_t n_members;
};

/* A replica's lag in bytes: how far what it replayed is behind primary_lsn (0 when unknown
 * or ahead). */
uint64_t db_api_lag(const struct db_api_state *st);

/* Answer GET path?query: /primary (/master, /leader), /replica[?lag=SIZE], /read, /health,
 * /cluster. Fills out (JSON) and *ctype; returns the status: 200 when this node has the
 * asked role, 503 when it has not, 400 for a bad lag, 404 for another path. */
int db_api_handle(const struct db_api_state *st, const char *path, const char *query,
                  struct metrics_out *out, const char **ctype);

#endif
