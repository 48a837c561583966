/* SPDX-License-Identifier: MIT */
/* Backoff and the "stuck" record of the database agent's operations (see db_retry.h). */
#include "db/db_retry.h"

#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "monitor/metrics.h"

uint32_t db_retry_delay_ms(uint32_t attempts)
{
    uint64_t d = DB_RETRY_FIRST_MS;
    for (uint32_t i = 1; i < attempts && d < DB_RETRY_CAP_MS; i++) {
        d *= 2;
    }
    return d > DB_RETRY_CAP_MS ? DB_RETRY_CAP_MS : (uint32_t)d;
}

void db_retry_failed(struct db_retry *r, uint64_t now_ms, const char *what, const char *error)
{
    if (r->attempts == 0) {
        r->since_ms = now_ms;
    }
    r->attempts++;
    r->failures_total++;
    r->next_ms = now_ms + db_retry_delay_ms(r->attempts);
    (void)snprintf(r->what, sizeof(r->what), "%s", what != NULL ? what : "?");
    (void)snprintf(r->last_error, sizeof(r->last_error), "%s", error != NULL ? error : "");
}

uint32_t db_retry_succeeded(struct db_retry *r)
{
    uint32_t n = r->attempts;
    r->attempts = 0;
    r->since_ms = 0;
    r->next_ms = 0;
    return n;
}

void db_retry_metrics(const struct db_retry *r, uint64_t now_ms, const char *db,
                      struct metrics_out *out)
{
    bool is_stuck = db_retry_is_stuck(r);
    metrics_out_printf(out,
                       "# HELP keel_db_stuck 1 while PostgreSQL operations of this node fail "
                       "(retried with backoff), else 0.\n# TYPE keel_db_stuck gauge\n"
                       "keel_db_stuck{database=\"%s\"} %d\n"
                       "# HELP keel_db_stuck_attempts Failed attempts in a row.\n"
                       "# TYPE keel_db_stuck_attempts gauge\n"
                       "keel_db_stuck_attempts{database=\"%s\"} %u\n"
                       "# HELP keel_db_stuck_seconds Time since the first of those failures.\n"
                       "# TYPE keel_db_stuck_seconds gauge\n"
                       "keel_db_stuck_seconds{database=\"%s\"} %.3f\n"
                       "# HELP keel_db_operation_failures_total Failed PostgreSQL operations "
                       "(start, follow, copy, bootstrap, promote, fence).\n"
                       "# TYPE keel_db_operation_failures_total counter\n"
                       "keel_db_operation_failures_total{database=\"%s\"} %lu\n",
                       db, is_stuck ? 1 : 0, db, r->attempts, db,
                       is_stuck ? (now_ms - r->since_ms) / 1000.0 : 0.0, db,
                       (unsigned long)r->failures_total);
}

void db_retry_json(const struct db_retry *r, uint64_t now_ms, struct metrics_out *out)
{
    char what[2 * sizeof(r->what) + 8], err[6 * sizeof(r->last_error) + 8];
    if (!db_retry_is_stuck(r)) {
        metrics_out_printf(out, "null");
        return;
    }
    if (!json_quote(r->what, strlen(r->what), what, sizeof(what), NULL)) {
        (void)snprintf(what, sizeof(what), "\"?\"");
    }
    if (!json_quote(r->last_error, strlen(r->last_error), err, sizeof(err), NULL)) {
        (void)snprintf(err, sizeof(err), "\"(not UTF-8)\""); /* cut inside a character */
    }
    metrics_out_printf(out,
                       "{\"operation\":%s,\"since_seconds\":%.1f,\"attempts\":%u,"
                       "\"last_error\":%s,\"next_attempt_seconds\":%.1f}",
                       what, (now_ms - r->since_ms) / 1000.0, r->attempts, err,
                       r->next_ms > now_ms ? (r->next_ms - now_ms) / 1000.0 : 0.0);
}
