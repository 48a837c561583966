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

enum { RM_STUCK = 0, RM_ATTEMPTS, RM_SECONDS, RM_FAILURES };

static const struct metric_desc retry_metrics[] = {
    [RM_STUCK] = {"keel_db_stuck", METRIC_GAUGE,
                  "1 while PostgreSQL operations of this node fail (retried with backoff), else 0.",
                  METRIC_LABELS("database")},
    [RM_ATTEMPTS] = {"keel_db_stuck_attempts", METRIC_GAUGE, "Failed attempts in a row.",
                     METRIC_LABELS("database")},
    [RM_SECONDS] = {"keel_db_stuck_seconds", METRIC_GAUGE,
                    "Time since the first of those failures.", METRIC_LABELS("database")},
    [RM_FAILURES] = {"keel_db_operation_failures_total", METRIC_COUNTER,
                     "Failed PostgreSQL operations (start, follow, copy, bootstrap, promote, "
                     "fence).",
                     METRIC_LABELS("database")},
};

const struct metric_table db_retry_metric_table =
    METRIC_TABLE("Database operations retried (db role)", "src/db/db_retry.c", retry_metrics);

void db_retry_metrics(const struct db_retry *r, uint64_t now_ms, const char *db,
                      struct metrics_out *out)
{
    bool is_stuck = db_retry_is_stuck(r);
    const char *const values[] = {db};
    metrics_family(out, &retry_metrics[RM_STUCK]);
    metrics_sample_u64(out, &retry_metrics[RM_STUCK], values, is_stuck ? 1 : 0);
    metrics_family(out, &retry_metrics[RM_ATTEMPTS]);
    metrics_sample_u64(out, &retry_metrics[RM_ATTEMPTS], values, r->attempts);
    metrics_family(out, &retry_metrics[RM_SECONDS]);
    metrics_sample_f(out, &retry_metrics[RM_SECONDS], values,
                     is_stuck ? (double)(now_ms - r->since_ms) / 1000.0 : 0.0);
    metrics_family(out, &retry_metrics[RM_FAILURES]);
    metrics_sample_u64(out, &retry_metrics[RM_FAILURES], values, r->failures_total);
}

void db_retry_json(const struct db_retry *r, uint64_t now_ms, struct json_w *w)
{
    if (!db_retry_is_stuck(r)) {
        json_w_null(w);
        return;
    }
    json_w_begin_object(w);
    json_w_key_str(w, "operation", r->what);
    json_w_key_num(w, "since_seconds", (double)(now_ms - r->since_ms) / 1000.0, 1);
    json_w_key_uint(w, "attempts", r->attempts);
    json_w_key_str(w, "last_error", r->last_error); /* bytes cut inside a character: U+FFFD */
    json_w_key_num(w, "next_attempt_seconds",
                   r->next_ms > now_ms ? (double)(r->next_ms - now_ms) / 1000.0 : 0.0, 1);
    json_w_end_object(w);
}
