/* SPDX-License-Identifier: MIT */
/* The database agent of a db node (db/db_agent.c): runs the node's PostgreSQL, takes part in
 * the election through etcd, serves the health endpoints. On the control thread's loop. */
#ifndef KEEL_DB_DB_AGENT_H
#define KEEL_DB_DB_AGENT_H

#include <stdbool.h>

#include "core/conf-t.h"
#include "core/err.h"
#include "core/ev.h"
#include "monitor/metrics-t.h"

struct db_agent;
struct json_w;
struct metrics_out;

/* Start the agent of node for the first database that lists it. NULL when the node is in
 * no database (eb empty) or when it cannot start (eb says why). Reads the cluster secret
 * (blocking, at boot). */
struct db_agent *db_agent_start(struct ev_loop *loop, const struct conf *conf, const char *node,
                                struct errbuf *eb);

/* Graceful stop: a primary hands the leader key over, PostgreSQL stops (fast). Poll
 * db_agent_is_stopped. */
void db_agent_stop(struct db_agent *a);
bool db_agent_is_stopped(const struct db_agent *a);
void db_agent_free(struct db_agent *a);

/* Reload: take db's live settings (max_lag, replication, single_node_writes,
 * switchover_timeout, stream_timeout; db_reload.h).
 * The caller checked with db_reload_check that nothing else changed. NULL a: nothing. */
void db_agent_reconfigure(struct db_agent *a, const struct conf_database *db);

void db_agent_metrics(const struct db_agent *a, struct metrics_out *out);
/* Write the agent's status as one JSON value: an object, or null when a is NULL. */
void db_agent_status_json(const struct db_agent *a, struct json_w *w);

/* The families db_agent_metrics writes (db_retry_metric_table has the rest). */
extern const struct metric_table db_agent_metric_table;

#endif
