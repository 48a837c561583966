/* SPDX-License-Identifier: MIT */
/* The database agent's planned switchover (`keel db switchover` writes the switchover key
 * naming the primary). The primary picks a streaming replica (the one named, or the most advanced),
 * stops PostgreSQL cleanly (its WAL senders ship everything up to the shutdown checkpoint), and
 * hands the leader key over only once the target has received that checkpoint: the target
 * then holds every acknowledged write, in async mode too. Only the target competes for the
 * key (db_elect); this node rejoins as its replica. If the target does not catch up within
 * switchover_timeout (10 s), the switchover is aborted and this node starts again as the
 * primary. The steps are the node's states SW_STOPPING, SW_WAITING, SW_HANDED (db_fsm.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "db/db_agent-t.h"

static int64_t member_lsn(const struct db_agent *a, const char *name, bool *is_healthy)
{
    for (size_t i = 0; i < a->n_members; i++) {
        if (strcmp(a->members[i].name, name) == 0) {
            *is_healthy = a->members[i].healthy;
            return (int64_t)a->members[i].lsn;
        }
    }
    *is_healthy = false;
    return -1;
}

static void switch_put(struct db_agent *a, const char *to)
{
    char v[160];
    struct json_w w;
    json_w_init_fixed(&w, v, sizeof(v));
    json_w_begin_object(&w);
    json_w_key_str(&w, "from", a->self);
    json_w_key_str(&w, "to", to);
    json_w_end_object(&w);
    if (json_w_finish(&w) != 0 ||
        etcd_put(a->etcd, a->key_switch, v, w.len, a->lease, db_agent_ignore, NULL) != 0) {
        log_warn("db", "%s: cannot write the switchover key", a->self);
    }
}

static void switch_end(struct db_agent *a)
{
    a->sw_has = false;
    if (etcd_delete(a->etcd, a->key_switch, db_agent_ignore, NULL) != 0) {
        log_warn("db", "%s: cannot delete the switchover key", a->self);
    }
}

/* From SW_STOPPING (the stop failed: the next turn looks at what runs) or SW_WAITING
 * (stopped: start again as the primary, still holding the key). */
static void switch_abort(struct db_agent *a, const char *why)
{
    log_warn("db", "%s: switchover to %s aborted: %s; staying the primary", a->self, a->sw_target,
             why);
    switch_end(a);
    if (a->fsm.state == DB_NODE_SW_WAITING &&
        db_agent_run_op(a, DB_NODE_STARTING, pg_inst_start(a->pg, db_agent_op_done, a), "start")) {
        return;
    }
    (void)db_node_set_state(a, DB_NODE_IDLE, "switchover aborted");
}

static void on_switch_stopped(void *data, int rc, const char *reason)
{
    struct db_agent *a = data;
    if (a->fsm.state == DB_NODE_STOPPING) {
        (void)db_node_set_state(a, DB_NODE_STOPPED, "PostgreSQL stopped");
        return;
    }
    if (a->fsm.state != DB_NODE_SW_STOPPING) {
        return; /* the agent stopped meanwhile */
    }
    struct pg_control ctl = {0};
    if (rc == 0 && (rc = pg_inst_read_control(a->pg, &ctl)) == 0 &&
        ctl.state != PG_CONTROL_SHUT_DOWN) {
        rc = -EPROTO;
    }
    if (rc != 0) {
        switch_abort(a,
                     reason != NULL && reason[0] != '\0' ? reason : "no clean shutdown checkpoint");
        return;
    }
    a->sw_lsn = ctl.checkpoint_lsn;
    (void)db_node_set_state(a, DB_NODE_SW_WAITING, "stopped at the shutdown checkpoint");
    log_notice("db", "%s: switchover: stopped cleanly at %lX; waiting for %s to receive it",
               a->self, (unsigned long)ctl.checkpoint_lsn, a->sw_target);
    db_agent_schedule(a, 0);
}

/* The switchover key names us: pick the target, stop cleanly. */
void db_switch_begin(struct db_agent *a)
{
    const char *target = NULL;
    int64_t best = -1;
    for (size_t i = 0; i < a->n_streaming; i++) {
        bool is_healthy;
        int64_t lsn = member_lsn(a, a->streamers[i], &is_healthy);
        bool is_named = strcmp(a->sw_to, a->streamers[i]) == 0;
        if (is_healthy && (is_named || (a->sw_to[0] == '\0' && lsn > best))) {
            target = a->streamers[i];
            best = lsn;
        }
    }
    if (!db_fsm_is_legal(a->fsm.state, DB_NODE_SW_STOPPING)) {
        (void)db_node_set_state(a, DB_NODE_SW_STOPPING, "switchover"); /* refused: reported */
        return;
    }
    if (target == NULL) {
        log_warn("db", "%s: switchover refused: %s%s is not a healthy streaming replica", a->self,
                 a->sw_to[0] != '\0' ? a->sw_to : "there",
                 a->sw_to[0] != '\0' ? "" : " is no node that");
        switch_end(a);
        return;
    }
    (void)snprintf(a->sw_target, sizeof(a->sw_target), "%s", target);
    switch_put(a, target);
    log_notice("db", "%s: switchover to %s: stopping PostgreSQL cleanly", a->self, target);
    a->sw_deadline_ms = ev_now_ms(a->loop) + a->db.switchover_timeout_ms;
    if (!db_agent_run_op(a, DB_NODE_SW_STOPPING,
                         pg_inst_stop(a->pg, PG_STOP_FAST, on_switch_stopped, a), "stop")) {
        log_warn("db", "%s: switchover to %s aborted: PostgreSQL cannot be stopped", a->self,
                 target);
        switch_end(a);
    }
}

/* A turn during a switchover this node leads. */
void db_switch_step(struct db_agent *a)
{
    uint64_t now = ev_now_ms(a->loop);
    if (a->fsm.state == DB_NODE_SW_WAITING) {
        bool is_healthy;
        int64_t lsn = member_lsn(a, a->sw_target, &is_healthy);
        if (lsn > (int64_t)a->sw_lsn) {
            log_notice("db",
                       "%s: switchover: %s has every write (%lX past %lX): handing the "
                       "leader key over",
                       a->self, a->sw_target, (unsigned long)lsn, (unsigned long)a->sw_lsn);
            db_agent_release(a);
            a->has_leader = false;
            (void)db_node_set_state(a, DB_NODE_SW_HANDED, "the target has every write");
        } else if (now >= a->sw_deadline_ms) {
            switch_abort(a, "it did not receive the shutdown checkpoint in time");
        }
        return;
    }
    if (a->fsm.state == DB_NODE_SW_HANDED) {
        if (a->has_leader && strcmp(a->leader, a->self) != 0) {
            log_notice("db", "%s: switchover: %s leads, following it", a->self, a->leader);
            /* the target deletes the key once promoted */
            if (db_node_set_state(a, DB_NODE_IDLE, "the switchover target leads") == 0) {
                db_agent_act_stopped(a);
            }
        } else if (now >= a->sw_deadline_ms + a->db.switchover_timeout_ms) {
            log_warn("db", "%s: switchover: %s did not take the key; electing again", a->self,
                     a->sw_target);
            switch_end(a);
            (void)db_node_set_state(a, DB_NODE_IDLE, "the switchover target never led");
        }
    }
}

void db_switch_promoted(struct db_agent *a)
{
    if (!a->sw_has || strcmp(a->sw_to, a->self) != 0) {
        return;
    }
    log_notice("db", "%s: switchover from %s done", a->self, a->sw_from);
    a->sw_has = false;
    if (etcd_delete(a->etcd, a->key_switch, db_agent_ignore, NULL) != 0) {
        log_warn("db", "%s: cannot delete the switchover key", a->self);
    }
}
