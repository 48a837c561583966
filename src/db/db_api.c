/* SPDX-License-Identifier: MIT */
/* The agent's health endpoints. The role endpoints answer 200 or 503 with the same JSON
 * body, so a load balancer only looks at the status and a person can read why:
 *
 *   /primary, /master, /leader  the writable leader
 *   /replica[?lag=SIZE]         a replica streaming from the leader within max_lag (or lag)
 *   /read                       a replica within max_lag, or the primary when no replica is
 *                               (the read port's check: some node always takes reads)
 *   /health                     PostgreSQL runs here
 *   /cluster                    every live member, JSON
 */
#include "db/db_api.h"

#include <string.h>

#include "core/conf_value.h"
#include "core/json.h"
#include "monitor/metrics.h"

uint64_t db_api_lag(const struct db_api_state *st)
{
    uint64_t at = st->replay_lsn != 0 ? st->replay_lsn : st->lsn;
    return st->primary_lsn > at && at != 0 ? st->primary_lsn - at : 0;
}

static void node_json(const struct db_api_state *st, struct json_w *w)
{
    json_w_begin_object(w);
    json_w_key_str(w, "name", st->self);
    json_w_key_str(w, "role", db_role_name(st->role));
    json_w_key_str(w, "state", st->pg_up ? "running" : "stopped");
    json_w_key_uint(w, "lsn", st->lsn);
    json_w_key_uint(w, "lag", db_api_lag(st));
    json_w_key_uint(w, "lag_ms", st->lag_ms);
    json_w_key_bool(w, "streaming", st->streaming);
    json_w_key_str(w, "leader", st->leader != NULL ? st->leader : "");
    json_w_end_object(w);
}

static bool replica_within(const struct db_api_state *st, uint64_t max_lag)
{
    return st->role == DB_ROLE_REPLICA && st->pg_up && st->streaming && db_api_lag(st) <= max_lag;
}

/* ?lag=SIZE (16m, 1048576...); true with *lag unchanged when there is none. */
static bool query_lag(const char *query, uint64_t *lag)
{
    for (const char *p = query; p != NULL && *p != '\0';) {
        const char *amp = strchr(p, '&');
        size_t n = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (n > 4 && strncmp(p, "lag=", 4) == 0) {
            char v[32];
            if (n - 4 >= sizeof(v)) {
                return false;
            }
            memcpy(v, p + 4, n - 4);
            v[n - 4] = '\0';
            struct errbuf eb;
            return conf_parse_size(v, lag, &eb) == 0;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return true;
}

static void cluster_json(const struct db_api_state *st, struct json_w *w)
{
    json_w_begin_object(w);
    json_w_key_str(w, "leader", st->leader != NULL ? st->leader : "");
    json_w_key(w, "members");
    json_w_begin_array(w);
    node_json(st, w);
    for (size_t i = 0; i < st->n_members; i++) {
        const struct db_member *m = &st->members[i];
        uint64_t lag = st->primary_lsn > m->lsn && m->lsn != 0 ? st->primary_lsn - m->lsn : 0;
        json_w_begin_object(w);
        json_w_key_str(w, "name", m->name);
        json_w_key_str(w, "role", m->is_primary ? "primary" : "replica");
        json_w_key_str(w, "state", m->healthy ? "running" : "stopped");
        json_w_key_uint(w, "lsn", m->lsn);
        json_w_key_uint(w, "lag", m->is_primary ? 0 : lag);
        json_w_end_object(w);
    }
    json_w_end_array(w);
    json_w_end_object(w);
}

/* Append the document w wrote and a newline to out; an unwritable document (out of memory)
 * marks out failed, which the admin listener answers with 500. */
static void put_json(struct metrics_out *out, struct json_w *w)
{
    if (json_w_finish(w) != 0) {
        out->failed = 1;
    } else {
        metrics_out_write(out, w->data, w->len);
        metrics_out_write(out, "\n", 1);
    }
    json_w_fini(w);
}

int db_api_handle(const struct db_api_state *st, const char *path, const char *query,
                  struct metrics_out *out, const char **ctype)
{
    *ctype = "application/json";
    bool ok;
    if (strcmp(path, "/primary") == 0 || strcmp(path, "/master") == 0 ||
        strcmp(path, "/leader") == 0) {
        ok = st->role == DB_ROLE_PRIMARY && st->pg_up;
    } else if (strcmp(path, "/replica") == 0) {
        uint64_t lag = st->max_lag;
        if (!query_lag(query, &lag)) {
            *ctype = "text/plain; charset=utf-8";
            metrics_out_printf(out, "bad lag: expected a size such as 16m\n");
            return 400;
        }
        ok = replica_within(st, lag);
    } else if (strcmp(path, "/read") == 0) {
        ok = replica_within(st, st->max_lag) ||
             (st->role == DB_ROLE_PRIMARY && st->pg_up && !st->replica_within_lag);
    } else if (strcmp(path, "/health") == 0) {
        ok = st->pg_up;
    } else if (strcmp(path, "/cluster") == 0) {
        struct json_w w;
        json_w_init(&w);
        cluster_json(st, &w);
        put_json(out, &w);
        return 200;
    } else {
        *ctype = "text/plain; charset=utf-8";
        metrics_out_printf(out, "not found: try /primary, /replica, /read, /health or /cluster\n");
        return 404;
    }
    struct json_w w;
    json_w_init(&w);
    node_json(st, &w);
    put_json(out, &w);
    return ok ? 200 : 503;
}
