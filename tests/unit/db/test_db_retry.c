/* SPDX-License-Identifier: MIT */
/* Unit tests of db/db_retry.c: the backoff doubles from 0.5 s to its 30 s cap, attempts are
 * not due before their time, and the record of what is stuck (what, since, attempts, last
 * error) lasts until a success. */
#include <criterion/criterion.h>

#include "db/db_retry.c"

Test(db_retry, delay_doubles_up_to_the_cap)
{
    cr_assert_eq(db_retry_delay_ms(1), 500);
    cr_assert_eq(db_retry_delay_ms(2), 1000);
    cr_assert_eq(db_retry_delay_ms(3), 2000);
    cr_assert_eq(db_retry_delay_ms(6), 16000);
    cr_assert_eq(db_retry_delay_ms(7), DB_RETRY_CAP_MS);
    cr_assert_eq(db_retry_delay_ms(1000000), DB_RETRY_CAP_MS);
}

Test(db_retry, failures_back_off_and_success_ends_the_run)
{
    struct db_retry r = {0};
    cr_assert(db_retry_is_due(&r, 0));
    cr_assert_not(db_retry_is_stuck(&r));
    db_retry_failed(&r, 10000, "follow db2", "pg_rewind exit status 1: fatal: x");
    cr_assert(db_retry_is_stuck(&r));
    cr_assert_eq(r.since_ms, 10000);
    cr_assert_not(db_retry_is_due(&r, 10499));
    cr_assert(db_retry_is_due(&r, 10500));
    db_retry_failed(&r, 10600, "start", "postgres exited while starting");
    cr_assert_eq(r.attempts, 2);
    cr_assert_eq(r.since_ms, 10000, "the run started at the first failure");
    cr_assert_str_eq(r.what, "start");
    cr_assert_str_eq(r.last_error, "postgres exited while starting");
    cr_assert_not(db_retry_is_due(&r, 11599));
    cr_assert(db_retry_is_due(&r, 11600));
    /* 90 s of failures at the fastest pace allowed: a handful of attempts, not 180 */
    uint64_t now = 10000;
    struct db_retry s = {0};
    uint32_t tries = 0;
    for (; now < 100000; now += 100) {
        if (db_retry_is_due(&s, now)) {
            db_retry_failed(&s, now, "follow db2", "x");
            tries++;
        }
    }
    cr_assert_leq(tries, 10, "%u attempts in 90 s", tries);
    cr_assert_eq(db_retry_succeeded(&r), 2);
    cr_assert_not(db_retry_is_stuck(&r));
    cr_assert(db_retry_is_due(&r, 0));
    cr_assert_eq(r.failures_total, 2, "the total counts on");
}

Test(db_retry, status_json_escapes_the_tools_words)
{
    struct db_retry r = {0};
    struct json_w w;
    json_w_init(&w);
    db_retry_json(&r, 0, &w);
    cr_assert_eq(json_w_finish(&w), 0);
    cr_assert_str_eq(w.data, "null");
    json_w_fini(&w);
    json_w_init(&w);
    db_retry_failed(&r, 1000, "follow db2",
                    "rewind exit status 1: pg_rewind: error: could not open \"x\"\\\n");
    db_retry_json(&r, 3500, &w);
    cr_assert_eq(json_w_finish(&w), 0);
    struct errbuf eb;
    struct json_doc *doc = json_parse(w.data, w.len, &eb);
    cr_assert_not_null(doc, "%s: %s", eb.msg, w.data);
    const struct json_value *v = json_root(doc);
    cr_assert_str_eq(json_str(json_get(v, "operation")), "follow db2");
    cr_assert_str_eq(json_str(json_get(v, "last_error")),
                     "rewind exit status 1: pg_rewind: error: could not open \"x\"\\\n");
    int64_t n = 0;
    cr_assert(json_int(json_get(v, "attempts"), &n) && n == 1);
    cr_assert_float_eq(json_num(json_get(v, "since_seconds"), 0), 2.5, 0.01);
    json_free(doc);
    json_w_fini(&w);
    struct metrics_out out = {0};
    db_retry_metrics(&r, 3500, "main", &out);
    cr_assert(strstr(out.data, "keel_db_stuck{database=\"main\"} 1\n") != NULL, "%s", out.data);
    cr_assert(strstr(out.data, "keel_db_stuck_attempts{database=\"main\"} 1\n") != NULL);
    cr_assert(strstr(out.data, "keel_db_operation_failures_total{database=\"main\"} 1\n") != NULL);
    metrics_out_fini(&out);
}
