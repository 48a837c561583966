/* SPDX-License-Identifier: MIT */
/* The database agent's retries of PostgreSQL operations (start, follow, copy, bootstrap,
 * promote) after failures: exponential backoff, DB_RETRY_FIRST_MS doubled per consecutive
 * failure up to DB_RETRY_CAP_MS, and what the node is stuck on (the operation, since when,
 * how many attempts, the last error) for /status, `keel status` and /metrics. The run of
 * failures ends when the agent sees the node healthy (a primary, or a streaming replica).
 * Bookkeeping and its output: no I/O, no clock of its own. */
#ifndef KEEL_DB_DB_RETRY_H
#define KEEL_DB_DB_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "monitor/metrics-t.h"

#define DB_RETRY_FIRST_MS 500u /* after the first failure (the agent's fastest turn) */
#define DB_RETRY_CAP_MS 30000u /* the longest wait between attempts */

struct db_retry {
    char what[80];        /* the last operation that failed, "follow db2" */
    char last_error[256]; /* its reason */
    uint64_t since_ms;    /* the first failure of this run; 0: not failing */
    uint64_t next_ms;     /* no new attempt before this */
    uint32_t attempts;    /* failed attempts in a row */
    uint64_t failures_total;
};

/* The wait after the attempts-th failure in a row (attempts >= 1). */
uint32_t db_retry_delay_ms(uint32_t attempts);

/* An attempt of what (e.g. "follow db2") failed at now_ms with error: count it and set the
 * next attempt's time. Strings are copied (cut to fit). */
void db_retry_failed(struct db_retry *r, uint64_t now_ms, const char *what, const char *error);

/* The node is healthy again: the run of failures ends. Returns the number of failed attempts it
 * had (0: none), for the log. */
uint32_t db_retry_succeeded(struct db_retry *r);

/* Whether a new attempt may start at now_ms. */
static inline bool db_retry_is_due(const struct db_retry *r, uint64_t now_ms)
{
    return r->attempts == 0 || now_ms >= r->next_ms;
}

/* Whether operations are failing (the node is stuck until one succeeds). */
static inline bool db_retry_is_stuck(const struct db_retry *r)
{
    return r->attempts > 0;
}

struct json_w;
struct metrics_out;

/* The Prometheus families of r for database db (keel_db_stuck, keel_db_stuck_attempts,
 * keel_db_stuck_seconds, keel_db_operation_failures_total), described by
 * db_retry_metric_table. */
void db_retry_metrics(const struct db_retry *r, uint64_t now_ms, const char *db,
                      struct metrics_out *out);

/* Write r as the "stuck" member of the agent's status, one value: null, or {"operation",
 * "since_seconds", "attempts", "last_error", "next_attempt_seconds"}. */
void db_retry_json(const struct db_retry *r, uint64_t now_ms, struct json_w *w);

/* The families db_retry_metrics writes, for monitor/metrics_registry.c. */
extern const struct metric_table db_retry_metric_table;

#endif
