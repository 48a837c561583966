/* SPDX-License-Identifier: MIT */
/* The database agent's turn (db/db_agent.c has the rest): every tick, read the node's
 * PostgreSQL status, the leader key, the members' keys and the switchover key in parallel,
 * renew the agent's lease, and once every read is back, act (db_agent_act). Records what
 * the turn saw in the agent; decides nothing. */
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "db/db_agent-t.h"
#include "db/pg_status.h"

/* A leader that stops publishing its member key: */
#define DB_AGENT_SILENT_TURNS 2      /* it missed this many turns' member keys ... */
#define DB_AGENT_SILENT_SLACK_MS 200 /* ... plus this: it is silent ... */
#define DB_AGENT_SILENT_TURN_MS 100  /* ... and replicas look this often for its key to lapse */

/* Whether the leader stopped publishing its member key (it does every turn): its agent is
 * dead or cut off, and its lease is about to lapse. Replicas then look every 100 ms, to take
 * the key as soon as etcd drops it. */
static bool leader_is_silent(const struct db_agent *a)
{
    return a->has_leader && strcmp(a->leader, a->self) != 0 && a->leader_seen_ms != 0 &&
           ev_now_ms(a->loop) > a->leader_seen_ms + DB_AGENT_SILENT_TURNS * (uint64_t)a->tick_ms +
                                    DB_AGENT_SILENT_SLACK_MS;
}

static void turn_read_done(struct db_agent *a)
{
    if (--a->reads > 0) {
        return;
    }
    a->is_turn_busy = false;
    if (a->is_turn_stale) {
        /* An operation ended or the key was taken while these reads were out: they may
         * predate it. Act on nothing; read again at once. Only such an event sets this
         * (at most one extra turn each), never a turn itself: no busy loop. */
        a->is_turn_stale = false;
        if (!db_agent_is_stopping(a)) {
            log_debug("db", "%s: the turn's reads predate a change: reading again", a->self);
            db_agent_schedule(a, 0);
        }
        return;
    }
    if (!db_agent_is_stopping(a)) {
        db_agent_act(a);
        db_agent_schedule(a, leader_is_silent(a) ? DB_AGENT_SILENT_TURN_MS : a->tick_ms);
    }
}

static void on_status(void *data, int rc, const char *reason, const struct pg_status *st)
{
    (void)reason;
    struct db_agent *a = data;
    a->pg_up = rc == 0;
    if (rc == 0) {
        a->pg_primary = !st->is_in_recovery;
        a->pg_lsn = a->pg_primary ? st->current_lsn
                                  : (st->receive_lsn != 0 ? st->receive_lsn : st->replay_lsn);
        a->streaming = !a->pg_primary && st->received_tli != 0;
        a->replay_lsn = a->pg_primary ? 0 : st->replay_lsn;
        if (a->pg_lsn != a->lsn_seen || a->pg_primary) {
            a->lsn_seen = a->pg_lsn;
            a->lsn_moved_ms = ev_now_ms(a->loop);
        }
        a->lag_ms = st->replay_delay_ms;
        a->replica_ok = false;
        a->n_streaming = 0;
        for (uint32_t i = 0; a->pg_primary && i < st->n_standbys; i++) {
            const struct pg_standby *s = &st->standbys[i];
            if (strcmp(s->state, "streaming") == 0 && a->n_streaming < CONF_DB_MAX_NODES) {
                (void)snprintf(a->streamers[a->n_streaming++], CONF_NAME_MAX, "%s", s->name);
            }
            a->replica_ok = a->replica_ok || (strcmp(s->state, "streaming") == 0 &&
                                              st->current_lsn - s->replay_lsn <= a->db.max_lag);
        }
        if ((a->pg_primary || a->streaming) && db_retry_is_stuck(&a->retry)) {
            uint64_t since = a->retry.since_ms;
            uint32_t n = db_retry_succeeded(&a->retry);
            log_notice("db", "%s: recovered (%s) after %u failed attempts over %lu s", a->self,
                       a->pg_primary ? "a primary" : "streaming", n,
                       (unsigned long)((ev_now_ms(a->loop) - since) / 1000));
        }
        if (a->pg_primary) {
            a->primary_lsn = st->current_lsn;
            (void)snprintf(a->sync_names, sizeof(a->sync_names), "%s", st->sync_names);
        }
    }
    turn_read_done(a);
}

static void on_leader(void *data, const struct etcd_result *res)
{
    struct db_agent *a = data;
    a->dcs_ok = res->err == 0;
    if (res->err == 0) {
        a->has_leader = res->n_kvs > 0;
        (void)snprintf(a->leader, sizeof(a->leader), "%.*s",
                       res->n_kvs > 0 ? (int)res->kvs[0].value_len : 0,
                       res->n_kvs > 0 ? res->kvs[0].value : "");
        a->leader_lease = res->n_kvs > 0 ? res->kvs[0].lease : 0;
        a->leader_rev = res->n_kvs > 0 ? res->kvs[0].mod_revision : 0;
        if (a->has_leader && strcmp(a->last_leader, a->leader) != 0) {
            a->leader_changes += a->last_leader[0] != '\0';
            (void)snprintf(a->last_leader, sizeof(a->last_leader), "%s", a->leader);
        }
    }
    turn_read_done(a);
}

static void on_members(void *data, const struct etcd_result *res)
{
    struct db_agent *a = data;
    if (res->err == 0) {
        a->n_members = 0;
        size_t plen = strlen(a->key_members);
        for (size_t i = 0; i < res->n_kvs && a->n_members < CONF_DB_MAX_NODES; i++) {
            const struct etcd_kv *kv = &res->kvs[i];
            const char *name = kv->key + plen;
            struct errbuf eb;
            struct json_doc *doc = json_parse(kv->value, kv->value_len, &eb);
            if (doc == NULL || strcmp(name, a->self) == 0) {
                json_free(doc);
                continue;
            }
            struct db_member *m = &a->members[a->n_members++];
            (void)snprintf(m->name, sizeof(m->name), "%s", name);
            if (a->has_leader && strcmp(name, a->leader) == 0 &&
                kv->mod_revision != a->leader_revision) {
                a->leader_revision = kv->mod_revision;
                a->leader_seen_ms = ev_now_ms(a->loop);
            }
            int64_t lsn = 0;
            (void)json_int(json_get(json_root(doc), "lsn"), &lsn);
            m->lsn = (uint64_t)lsn;
            m->healthy = json_bool(json_get(json_root(doc), "healthy"), false);
            m->is_primary = json_bool(json_get(json_root(doc), "primary"), false);
            if (m->is_primary && !a->pg_primary) {
                a->primary_lsn = m->lsn;
            }
            json_free(doc);
        }
    }
    turn_read_done(a);
}

/* The switchover key: {"from":"db1","to":"db2"}, "to" empty until the primary picks. */
static void on_switch_key(void *data, const struct etcd_result *res)
{
    struct db_agent *a = data;
    if (res->err == 0) {
        a->sw_has = false;
        struct errbuf eb;
        struct json_doc *doc =
            res->n_kvs > 0 ? json_parse(res->kvs[0].value, res->kvs[0].value_len, &eb) : NULL;
        const char *from = doc != NULL ? json_str(json_get(json_root(doc), "from")) : NULL;
        const char *to = doc != NULL ? json_str(json_get(json_root(doc), "to")) : NULL;
        if (from != NULL) {
            a->sw_has = true;
            (void)snprintf(a->sw_from, sizeof(a->sw_from), "%s", from);
            (void)snprintf(a->sw_to, sizeof(a->sw_to), "%s", to != NULL ? to : "");
        }
        json_free(doc);
    }
    turn_read_done(a);
}

void db_agent_on_tick(struct ev_loop *loop, struct ev_timer *t)
{
    struct db_agent *a = t->data;
    if (a->is_turn_busy || db_agent_is_stopping(a)) {
        return;
    }
    a->turn_at_ms = ev_now_ms(loop);
    if (pg_inst_state(a->pg) == PG_INST_RUNNING) {
        a->pg_down_at_ms = 0;
    } else if (a->pg_down_at_ms == 0) {
        a->pg_down_at_ms = a->turn_at_ms;
    }
    if (!a->lease_busy) {
        int64_t ttl = (a->db.lease_ms + 999) / 1000;
        a->lease_busy =
            (a->lease == 0 ? etcd_lease_grant(a->etcd, ttl, db_agent_on_lease, a)
                           : etcd_lease_keepalive(a->etcd, a->lease, db_agent_on_lease, a)) == 0;
    }
    a->is_turn_busy = true;
    a->reads = 4;
    if (pg_inst_state(a->pg) != PG_INST_RUNNING ||
        pg_status_query(pg_inst_conn(a->pg), on_status, a) != 0) {
        a->pg_up = false;
        a->reads--;
    }
    if (etcd_get(a->etcd, a->key_leader, on_leader, a) != 0) {
        a->dcs_ok = false;
        a->reads--;
    }
    if (etcd_get_prefix(a->etcd, a->key_members, on_members, a) != 0) {
        a->reads--;
    }
    if (etcd_get(a->etcd, a->key_switch, on_switch_key, a) != 0) {
        a->reads--;
    }
    if (a->reads == 0) {
        a->reads = 1;
        turn_read_done(a);
    }
}
