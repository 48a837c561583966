/* SPDX-License-Identifier: MIT */
/* Status queries and replication orders over a pg_conn (see pg_status.h). Each operation
 * keeps a small heap context between the query and the caller's callback; pg_query's
 * guarantee of exactly one callback per query (-ECANCELED on free) means it is always
 * released. */
#include "db/pg_status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/pg_text.h"

/* One row per WAL sender (or one row of NULLs for them when there is none). Column order is
 * what pg_status_parse reads. */
static const char status_sql[] =
    "SELECT pg_is_in_recovery(),"
    " CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() END,"
    " pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(),"
    " (SELECT timeline_id FROM pg_control_checkpoint()),"
    " (SELECT received_tli FROM pg_stat_wal_receiver WHERE status = 'streaming'),"
    " current_setting('synchronous_standby_names'),"
    " r.application_name, host(r.client_addr), r.state, r.sync_state,"
    " r.sent_lsn, r.write_lsn, r.flush_lsn, r.replay_lsn,"
    " CASE WHEN pg_is_in_recovery()"
    " AND pg_last_wal_receive_lsn() IS DISTINCT FROM pg_last_wal_replay_lsn()"
    " THEN LEAST(GREATEST(0, (1000 * extract(epoch FROM"
    " now() - pg_last_xact_replay_timestamp()))::bigint), 4000000000) ELSE 0 END"
    " FROM (SELECT 1) AS one"
    " LEFT JOIN pg_stat_replication AS r ON true"
    " ORDER BY r.application_name";

enum {
    COL_RECOVERY = 0,
    COL_CURRENT,
    COL_RECEIVE,
    COL_REPLAY,
    COL_TIMELINE,
    COL_RECEIVED_TLI,
    COL_SYNC_NAMES,
    COL_APP,
    COL_ADDR,
    COL_STATE,
    COL_SYNC_STATE,
    COL_SENT,
    COL_WRITE,
    COL_FLUSH,
    COL_REPLAY_R,
    COL_REPLAY_DELAY,
    N_COLS
};

/* An LSN column: NULL is 0. */
static int get_lsn(const struct pg_result *r, uint32_t row, int col, uint64_t *out)
{
    const char *v = pg_result_value(r, row, (uint32_t)col);
    *out = 0;
    if (v == NULL) {
        return 0;
    }
    return pg_lsn_parse(v, strlen(v), out) == 0 ? 0 : -EPROTO;
}

static int get_u32(const struct pg_result *r, uint32_t row, int col, uint32_t *out)
{
    const char *v = pg_result_value(r, row, (uint32_t)col);
    *out = 0;
    if (v == NULL) {
        return 0;
    }
    uint64_t n = 0;
    size_t i = 0;
    for (; v[i] >= '0' && v[i] <= '9' && n <= UINT32_MAX; i++) {
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    if (i == 0 || v[i] != '\0' || n > UINT32_MAX) {
        return -EPROTO;
    }
    *out = (uint32_t)n;
    return 0;
}

static void get_text(const struct pg_result *r, uint32_t row, int col, char *out, size_t size)
{
    const char *v = pg_result_value(r, row, (uint32_t)col);
    (void)snprintf(out, size, "%s", v != NULL ? v : "");
}

int pg_status_parse(const struct pg_result *r, struct pg_status *st)
{
    memset(st, 0, sizeof(*st));
    if (r->n_cols != N_COLS || r->n_rows == 0) {
        return -EPROTO;
    }
    const char *rec = pg_result_value(r, 0, COL_RECOVERY);
    if (rec == NULL || (strcmp(rec, "t") != 0 && strcmp(rec, "f") != 0)) {
        return -EPROTO;
    }
    st->is_in_recovery = strcmp(rec, "t") == 0;
    if (get_lsn(r, 0, COL_CURRENT, &st->current_lsn) != 0 ||
        get_lsn(r, 0, COL_RECEIVE, &st->receive_lsn) != 0 ||
        get_lsn(r, 0, COL_REPLAY, &st->replay_lsn) != 0 ||
        get_u32(r, 0, COL_TIMELINE, &st->timeline) != 0 ||
        get_u32(r, 0, COL_RECEIVED_TLI, &st->received_tli) != 0 ||
        get_u32(r, 0, COL_REPLAY_DELAY, &st->replay_delay_ms) != 0) {
        return -EPROTO;
    }
    get_text(r, 0, COL_SYNC_NAMES, st->sync_names, sizeof(st->sync_names));
    for (uint32_t row = 0; row < r->n_rows && st->n_standbys < PG_STANDBYS_MAX; row++) {
        if (pg_result_value(r, row, COL_STATE) == NULL) {
            continue; /* the LEFT JOIN's row when there is no WAL sender */
        }
        struct pg_standby *s = &st->standbys[st->n_standbys];
        get_text(r, row, COL_APP, s->name, sizeof(s->name));
        get_text(r, row, COL_ADDR, s->addr, sizeof(s->addr));
        get_text(r, row, COL_STATE, s->state, sizeof(s->state));
        get_text(r, row, COL_SYNC_STATE, s->sync_state, sizeof(s->sync_state));
        if (get_lsn(r, row, COL_SENT, &s->sent_lsn) != 0 ||
            get_lsn(r, row, COL_WRITE, &s->write_lsn) != 0 ||
            get_lsn(r, row, COL_FLUSH, &s->flush_lsn) != 0 ||
            get_lsn(r, row, COL_REPLAY_R, &s->replay_lsn) != 0) {
            return -EPROTO;
        }
        st->n_standbys++;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Status
 * ------------------------------------------------------------------------------------------ */

struct status_ctx {
    pg_status_fn cb;
    void *data;
};

static void on_status(void *data, const struct pg_result *r)
{
    struct status_ctx ctx = *(struct status_ctx *)data;
    free(data);
    if (r->err != 0) {
        ctx.cb(ctx.data, r->err, r->msg, NULL);
        return;
    }
    struct pg_status *st = malloc(sizeof(*st)); /* ~2.5 KiB: not on the loop's stack */
    if (st == NULL) {
        ctx.cb(ctx.data, -ENOMEM, "out of memory", NULL);
        return;
    }
    if (pg_status_parse(r, st) != 0) {
        ctx.cb(ctx.data, -EPROTO, "unexpected values in the status query's result", NULL);
    } else {
        ctx.cb(ctx.data, 0, "", st);
    }
    free(st);
}

int pg_status_query(struct pg_conn *c, pg_status_fn cb, void *data)
{
    struct status_ctx *ctx = malloc(sizeof(*ctx));
    if (ctx == NULL) {
        return -ENOMEM;
    }
    ctx->cb = cb;
    ctx->data = data;
    int rc = pg_query(c, status_sql, on_status, ctx);
    if (rc != 0) {
        free(ctx);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Orders: one or two statements, then a pg_done_fn
 * ------------------------------------------------------------------------------------------ */

struct order_ctx {
    pg_done_fn cb;
    void *data;
    struct pg_conn *conn;
    char *then_sql; /* a second statement to run after the first succeeded; NULL: none */
};

static void on_order(void *data, const struct pg_result *r)
{
    struct order_ctx *ctx = data;
    if (r->err == 0 && ctx->then_sql != NULL) {
        char *sql = ctx->then_sql;
        ctx->then_sql = NULL;
        int rc = pg_query(ctx->conn, sql, on_order, ctx);
        free(sql);
        if (rc == 0) {
            return;
        }
        ctx->cb(ctx->data, rc, err_str(rc));
        free(ctx);
        return;
    }
    ctx->cb(ctx->data, r->err, r->msg);
    free(ctx->then_sql);
    free(ctx);
}

/* Run sql, then then_sql (NULL: none) if it succeeded, then cb. Both copied. */
static int order(struct pg_conn *c, const char *sql, const char *then_sql, pg_done_fn cb,
                 void *data)
{
    struct order_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return -ENOMEM;
    }
    ctx->cb = cb;
    ctx->data = data;
    ctx->conn = c;
    if (then_sql != NULL && (ctx->then_sql = strdup(then_sql)) == NULL) {
        free(ctx);
        return -ENOMEM;
    }
    int rc = pg_query(c, sql, on_order, ctx);
    if (rc != 0) {
        free(ctx->then_sql);
        free(ctx);
    }
    return rc;
}

int pg_sync_set(struct pg_conn *c, const char *names, pg_done_fn cb, void *data)
{
    char lit[512], sql[600];
    int rc = pg_quote_literal(names, lit, sizeof(lit));
    if (rc != 0) {
        return rc == -ENOSPC ? -EINVAL : rc;
    }
    /* ALTER SYSTEM refuses to run inside a transaction block, and a string of several
     * statements is one: two queries. */
    (void)snprintf(sql, sizeof(sql), "ALTER SYSTEM SET synchronous_standby_names = %s", lit);
    return order(c, sql, "SELECT pg_reload_conf()", cb, data);
}

static bool slot_name_is_valid(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n <= 63 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

int pg_slot_create(struct pg_conn *c, const char *name, pg_done_fn cb, void *data)
{
    if (!slot_name_is_valid(name)) {
        return -EINVAL;
    }
    char sql[512];
    (void)snprintf(sql, sizeof(sql),
                   "SELECT pg_create_physical_replication_slot('%s') WHERE NOT EXISTS"
                   " (SELECT 1 FROM pg_replication_slots WHERE slot_name = '%s')",
                   name, name);
    return order(c, sql, NULL, cb, data);
}

int pg_slot_drop(struct pg_conn *c, const char *name, pg_done_fn cb, void *data)
{
    if (!slot_name_is_valid(name)) {
        return -EINVAL;
    }
    char sql[512];
    (void)snprintf(sql, sizeof(sql),
                   "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                   " WHERE slot_name = '%s' AND NOT active",
                   name);
    return order(c, sql, NULL, cb, data);
}

/* pg_app_setup: the role (created or its password set), then the database if missing. */
struct app_ctx {
    pg_done_fn cb;
    void *data;
    struct pg_conn *conn;
    char create_db[640]; /* CREATE DATABASE, NUL, the existence check */
};

static void on_app_db(void *data, const struct pg_result *r)
{
    struct app_ctx *ctx = data;
    ctx->cb(ctx->data, r->err, r->msg);
    free(ctx);
}

static void on_app_exists(void *data, const struct pg_result *r)
{
    struct app_ctx *ctx = data;
    if (r->err != 0 || r->n_rows > 0) {
        on_app_db(ctx, r);
        return;
    }
    int rc = pg_query(ctx->conn, ctx->create_db, on_app_db, ctx);
    if (rc != 0) {
        ctx->cb(ctx->data, rc, err_str(rc));
        free(ctx);
    }
}

static void on_app_role(void *data, const struct pg_result *r)
{
    struct app_ctx *ctx = data;
    if (r->err != 0) {
        on_app_db(ctx, r);
        return;
    }
    int rc = pg_query(ctx->conn, ctx->create_db + strlen(ctx->create_db) + 1, on_app_exists, ctx);
    if (rc != 0) {
        ctx->cb(ctx->data, rc, err_str(rc));
        free(ctx);
    }
}

int pg_app_setup(struct pg_conn *c, const char *name, const char *password, pg_done_fn cb,
                 void *data)
{
    char ident[160], lit_name[160], lit_pw[80], sql[1024];
    if (pg_quote_ident(name, ident, sizeof(ident)) != 0 ||
        pg_quote_literal(name, lit_name, sizeof(lit_name)) != 0 ||
        pg_quote_literal(password, lit_pw, sizeof(lit_pw)) != 0) {
        return -EINVAL;
    }
    struct app_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return -ENOMEM;
    }
    ctx->cb = cb;
    ctx->data = data;
    ctx->conn = c;
    /* Two statements in one buffer: CREATE DATABASE, then the existence check. */
    int n = snprintf(ctx->create_db, sizeof(ctx->create_db), "CREATE DATABASE %s OWNER %s", ident,
                     ident);
    (void)snprintf(ctx->create_db + n + 1, sizeof(ctx->create_db) - (size_t)n - 1,
                   "SELECT 1 FROM pg_database WHERE datname = %s", lit_name);
    (void)snprintf(sql, sizeof(sql),
                   "DO $keel$ BEGIN"
                   " IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s) THEN"
                   " ALTER ROLE %s WITH LOGIN PASSWORD %s;"
                   " ELSE CREATE ROLE %s WITH LOGIN PASSWORD %s; END IF; END $keel$",
                   lit_name, ident, lit_pw, ident, lit_pw);
    int rc = pg_query(c, sql, on_app_role, ctx);
    if (rc != 0) {
        free(ctx);
    }
    return rc;
}
