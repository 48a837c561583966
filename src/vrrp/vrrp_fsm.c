/* SPDX-License-Identifier: MIT */
/* The VRRPv3 virtual router state machine (RFC 5798 6.4) as a pure function of its inputs:
 * each vrrp_fsm_* call updates the timers it owns and reports the actions to perform. It
 * owns no socket, timer or VIP: vrrp_net and the VRRP instance do. It does not log either:
 * the caller logs the transition it gets back, with its own context (instance name, iface). */
#include "vrrp/vrrp_fsm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>

#include "core/fsm.h"

static const char *const vrrp_state_names[VRRP_STATE_COUNT] = {"init", "backup", "master", "fault"};

const char *vrrp_state_name(enum vrrp_state state)
{
    if ((unsigned)state >= VRRP_STATE_COUNT) {
        return "?";
    }
    return vrrp_state_names[state];
}

/* ------------------------------------------------------------------------------------------
 * Transitions
 * ------------------------------------------------------------------------------------------ */

/* What a transition makes the caller do. Timers are set by the code that asks for it. */
enum {
    ACT_ADVERT = 1 << 0,      /* send an advert with our priority */
    ACT_ADVERT_STOP = 1 << 1, /* send an advert with priority 0 (RFC 5798 6.4.3 shutdown) */
    ACT_ADD_VIPS = 1 << 2,    /* add VIPs, gratuitous ARP (RFC 5798 6.4.1, 6.4.2) */
    ACT_DEL_VIPS = 1 << 3     /* remove VIPs */
};

struct vrrp_fsm_transition {
    enum vrrp_state from;
    enum vrrp_state to;
    unsigned actions;
    const char *comment;
};

/* Every legal transition. docs/internals/vrrp.md draws this table (a unit test checks that
 * each row is in the diagram). */
static const struct vrrp_fsm_transition vrrp_fsm_transitions[] = {
    {VRRP_STATE_INIT, VRRP_STATE_BACKUP, ACT_DEL_VIPS,
     "start, priority < 255 (6.4.1); VIPs a crashed run left are removed"},
    {VRRP_STATE_INIT, VRRP_STATE_MASTER, ACT_ADVERT | ACT_ADD_VIPS,
     "start as the address owner (6.4.1)"},
    {VRRP_STATE_INIT, VRRP_STATE_FAULT, ACT_DEL_VIPS, "start while a fault is set"},
    {VRRP_STATE_BACKUP, VRRP_STATE_MASTER, ACT_ADVERT | ACT_ADD_VIPS,
     "Master_Down_Timer fired (6.4.2)"},
    {VRRP_STATE_BACKUP, VRRP_STATE_INIT, 0, "shutdown (6.4.2)"},
    {VRRP_STATE_BACKUP, VRRP_STATE_FAULT, 0, "fault set"},
    {VRRP_STATE_MASTER, VRRP_STATE_BACKUP, ACT_DEL_VIPS,
     "advert of a higher priority, or equal priority and higher address (6.4.3)"},
    {VRRP_STATE_MASTER, VRRP_STATE_INIT, ACT_ADVERT_STOP | ACT_DEL_VIPS,
     "shutdown: priority-0 advert (6.4.3)"},
    {VRRP_STATE_MASTER, VRRP_STATE_FAULT, ACT_ADVERT_STOP | ACT_DEL_VIPS,
     "fault set: priority-0 advert, so a backup takes over after Skew_Time"},
    {VRRP_STATE_FAULT, VRRP_STATE_BACKUP, 0, "fault cleared, priority < 255"},
    {VRRP_STATE_FAULT, VRRP_STATE_MASTER, ACT_ADVERT | ACT_ADD_VIPS,
     "fault cleared, address owner"},
    {VRRP_STATE_FAULT, VRRP_STATE_INIT, 0, "shutdown"},
};

static uint64_t advert_interval_ms(const struct vrrp_fsm *fsm)
{
    return (uint64_t)fsm->cfg.advert_int_cs * 10;
}

/* The one transition function (STYLE.md section 6). An illegal transition, or a second one
 * within one input, is a bug in this file: refused as every machine does (core/fsm.h, the
 * only logging here), so the caller is not handed a wrong picture of who holds the VIPs. */
static void vrrp_fsm_set_state(struct vrrp_fsm *fsm, enum vrrp_state to, uint64_t now_ms,
                               const char *reason, struct vrrp_fsm_actions *out)
{
    const struct vrrp_fsm_transition *t = NULL;
    size_t n = sizeof(vrrp_fsm_transitions) / sizeof(vrrp_fsm_transitions[0]);
    for (size_t i = 0; i < n; i++) {
        if (vrrp_fsm_transitions[i].from == fsm->state && vrrp_fsm_transitions[i].to == to) {
            t = &vrrp_fsm_transitions[i];
            break;
        }
    }
    if (t == NULL || out->is_transition) {
        char obj[16];
        (void)snprintf(obj, sizeof(obj), "vrid %u", fsm->cfg.vrid);
        fsm_illegal(FSM_MACHINE_VRRP, obj, vrrp_state_name(fsm->state), vrrp_state_name(to),
                    t == NULL ? reason : "a second transition within one input");
        return;
    }
    out->is_transition = true;
    out->from = fsm->state;
    out->to = to;
    out->reason = reason;
    if ((t->actions & ACT_ADVERT) != 0) {
        out->send_advert = true;
        out->advert_priority = fsm->cfg.priority;
    }
    if ((t->actions & ACT_ADVERT_STOP) != 0) {
        out->send_advert = true;
        out->advert_priority = VRRP_FSM_PRIORITY_STOP;
    }
    out->add_vips = (t->actions & ACT_ADD_VIPS) != 0;
    out->del_vips = (t->actions & ACT_DEL_VIPS) != 0;

    fsm->state = to;
    fsm->state_since_ms = now_ms;
    fsm->n_transitions++;
    fsm->_is_preempt_pending = false;
    fsm->_has_master = false;
    fsm->_is_master_stopping = false;
    if (to == VRRP_STATE_MASTER) {
        fsm->n_became_master++;
        fsm->_adver_at_ms = now_ms + advert_interval_ms(fsm);
    }
}

/* ------------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------------ */

uint64_t vrrp_fsm_skew_time_ms(const struct vrrp_fsm *fsm)
{
    /* RFC 5798 6.1: ((256 - Priority) * Master_Adver_Interval) / 256 centiseconds, computed
     * in ms from the exact product so no precision is lost to centisecond rounding. */
    return (uint64_t)(256 - fsm->cfg.priority) * fsm->master_adver_int_cs * 10 / 256;
}

uint64_t vrrp_fsm_master_down_interval_ms(const struct vrrp_fsm *fsm)
{
    return (uint64_t)fsm->master_adver_int_cs * 30 + vrrp_fsm_skew_time_ms(fsm);
}

uint64_t vrrp_fsm_deadline(const struct vrrp_fsm *fsm)
{
    switch (fsm->state) {
    case VRRP_STATE_MASTER:
        return fsm->_adver_at_ms;
    case VRRP_STATE_BACKUP:
        return fsm->_master_down_at_ms;
    default:
        return VRRP_FSM_NEVER;
    }
}

static void actions_begin(struct vrrp_fsm_actions *out)
{
    memset(out, 0, sizeof(*out));
    out->deadline_ms = VRRP_FSM_NEVER;
}

static void actions_end(const struct vrrp_fsm *fsm, struct vrrp_fsm_actions *out)
{
    out->deadline_ms = vrrp_fsm_deadline(fsm);
}

/* Preempt_Mode, except that the address owner always preempts (RFC 5798 6.1). */
static bool preempts(const struct vrrp_fsm *fsm)
{
    return fsm->cfg.preempt || fsm->cfg.priority == VRRP_FSM_PRIORITY_OWNER;
}

static void send_advert(struct vrrp_fsm *fsm, uint64_t now_ms, struct vrrp_fsm_actions *out)
{
    out->send_advert = true;
    out->advert_priority = fsm->cfg.priority;
    fsm->_adver_at_ms = now_ms + advert_interval_ms(fsm);
}

/* Leave INIT or FAULT for a running state (RFC 5798 6.4.1). */
static void enter_running(struct vrrp_fsm *fsm, uint64_t now_ms, const char *reason,
                          struct vrrp_fsm_actions *out)
{
    if (fsm->cfg.priority == VRRP_FSM_PRIORITY_OWNER) {
        vrrp_fsm_set_state(fsm, VRRP_STATE_MASTER, now_ms, reason, out);
        return;
    }
    fsm->master_adver_int_cs = fsm->cfg.advert_int_cs;
    vrrp_fsm_set_state(fsm, VRRP_STATE_BACKUP, now_ms, reason, out);
    fsm->_master_down_at_ms = now_ms + vrrp_fsm_master_down_interval_ms(fsm);
}

/* ------------------------------------------------------------------------------------------
 * Inputs
 * ------------------------------------------------------------------------------------------ */

int vrrp_fsm_init(struct vrrp_fsm *fsm, const struct vrrp_fsm_config *cfg)
{
    if (cfg->vrid == 0 || cfg->priority == 0 || cfg->advert_int_cs == 0 ||
        cfg->advert_int_cs > 4095) {
        return -EINVAL;
    }
    memset(fsm, 0, sizeof(*fsm));
    fsm->cfg = *cfg;
    fsm->state = VRRP_STATE_INIT;
    fsm->master_adver_int_cs = cfg->advert_int_cs;
    return 0;
}

void vrrp_fsm_start(struct vrrp_fsm *fsm, uint64_t now_ms, struct vrrp_fsm_actions *out)
{
    actions_begin(out);
    if (fsm->state == VRRP_STATE_INIT) {
        if (fsm->_is_faulted) {
            vrrp_fsm_set_state(fsm, VRRP_STATE_FAULT, now_ms, "start while faulted", out);
        } else {
            enter_running(fsm, now_ms, "start", out);
        }
    }
    actions_end(fsm, out);
}

void vrrp_fsm_shutdown(struct vrrp_fsm *fsm, uint64_t now_ms, struct vrrp_fsm_actions *out)
{
    actions_begin(out);
    if (fsm->state != VRRP_STATE_INIT) {
        vrrp_fsm_set_state(fsm, VRRP_STATE_INIT, now_ms, "shutdown", out);
    }
    actions_end(fsm, out);
}

/* RFC 5798 6.4.2, "If an ADVERTISEMENT is received". */
static void backup_on_advert(struct vrrp_fsm *fsm, uint64_t now_ms, uint8_t priority,
                             uint16_t interval_cs)
{
    if (priority == VRRP_FSM_PRIORITY_STOP) {
        fsm->_master_down_at_ms = now_ms + vrrp_fsm_skew_time_ms(fsm);
        fsm->_is_master_stopping = true;
        fsm->_has_master = false;
        fsm->_is_preempt_pending = false;
        return;
    }
    fsm->_is_master_stopping = false;
    fsm->_has_master = true;
    fsm->_master_seen_ms = now_ms;
    fsm->_master_priority = priority;

    bool is_accepted = true;
    if (preempts(fsm) && priority < fsm->cfg.priority) {
        /* We outrank the master: the RFC discards its advert, so Master_Down_Timer fires.
         * The preempt delay defers that by accepting adverts for a while longer. */
        if (!fsm->_is_preempt_pending) {
            fsm->_is_preempt_pending = true;
            fsm->_preempt_since_ms = now_ms;
        }
        is_accepted = now_ms < fsm->_preempt_since_ms + fsm->cfg.preempt_delay_ms;
    } else {
        fsm->_is_preempt_pending = false;
    }
    if (is_accepted) {
        fsm->master_adver_int_cs = interval_cs;
        fsm->_master_down_at_ms = now_ms + vrrp_fsm_master_down_interval_ms(fsm);
    }
}

/* RFC 5798 6.4.3, "If an ADVERTISEMENT is received". */
static void master_on_advert(struct vrrp_fsm *fsm, uint64_t now_ms, struct in_addr src_ip,
                             uint8_t priority, uint16_t interval_cs, struct vrrp_fsm_actions *out)
{
    if (priority == VRRP_FSM_PRIORITY_STOP) {
        send_advert(fsm, now_ms, out);
        return;
    }
    const char *reason = NULL;
    if (priority > fsm->cfg.priority) {
        reason = "advert with a higher priority";
    } else if (priority == fsm->cfg.priority &&
               ntohl(src_ip.s_addr) > ntohl(fsm->cfg.primary_ip.s_addr)) {
        reason = "advert with equal priority from a higher address";
    }
    if (reason == NULL) {
        return; /* discarded: our next advert makes the sender back off */
    }
    fsm->master_adver_int_cs = interval_cs;
    vrrp_fsm_set_state(fsm, VRRP_STATE_BACKUP, now_ms, reason, out);
    fsm->_master_down_at_ms = now_ms + vrrp_fsm_master_down_interval_ms(fsm);
    fsm->_has_master = true;
    fsm->_master_seen_ms = now_ms;
    fsm->_master_priority = priority;
}

void vrrp_fsm_on_advert(struct vrrp_fsm *fsm, uint64_t now_ms, struct in_addr src_ip,
                        uint8_t priority, uint16_t interval_cs, struct vrrp_fsm_actions *out)
{
    actions_begin(out);
    if (interval_cs == 0 || src_ip.s_addr == fsm->cfg.primary_ip.s_addr ||
        fsm->cfg.priority == VRRP_FSM_PRIORITY_OWNER) {
        actions_end(fsm, out);
        return;
    }
    if (fsm->state == VRRP_STATE_BACKUP) {
        backup_on_advert(fsm, now_ms, priority, interval_cs);
    } else if (fsm->state == VRRP_STATE_MASTER) {
        master_on_advert(fsm, now_ms, src_ip, priority, interval_cs, out);
    }
    actions_end(fsm, out);
}

/* The Master_Down_Timer fired while the master is still alive and outranked. */
static bool is_preempting_live_master(const struct vrrp_fsm *fsm, uint64_t now_ms)
{
    return fsm->_is_preempt_pending &&
           now_ms < fsm->_master_seen_ms + vrrp_fsm_master_down_interval_ms(fsm);
}

/* Why the Master_Down_Timer fired, for the transition's reason. */
static const char *takeover_reason(const struct vrrp_fsm *fsm, uint64_t now_ms)
{
    if (fsm->_is_master_stopping) {
        return "master sent priority 0, Skew_Time elapsed";
    }
    if (is_preempting_live_master(fsm, now_ms)) {
        return "preempting a lower-priority master";
    }
    return "master down: Master_Down_Timer fired";
}

void vrrp_fsm_on_timer(struct vrrp_fsm *fsm, uint64_t now_ms, struct vrrp_fsm_actions *out)
{
    actions_begin(out);
    if (fsm->state == VRRP_STATE_MASTER && now_ms >= fsm->_adver_at_ms) {
        send_advert(fsm, now_ms, out); /* RFC 5798 6.4.3: Adver_Timer fired */
    } else if (fsm->state == VRRP_STATE_BACKUP && now_ms >= fsm->_master_down_at_ms) {
        bool is_handover = fsm->_is_master_stopping || is_preempting_live_master(fsm, now_ms);
        vrrp_fsm_set_state(fsm, VRRP_STATE_MASTER, now_ms, takeover_reason(fsm, now_ms), out);
        out->is_handover = is_handover;
    }
    actions_end(fsm, out);
}

int vrrp_fsm_set_priority(struct vrrp_fsm *fsm, uint64_t now_ms, uint8_t priority,
                          struct vrrp_fsm_actions *out)
{
    actions_begin(out);
    if (priority == VRRP_FSM_PRIORITY_STOP) {
        actions_end(fsm, out);
        return -EINVAL;
    }
    bool is_changed = priority != fsm->cfg.priority;
    fsm->cfg.priority = priority;
    if (is_changed && fsm->state == VRRP_STATE_MASTER) {
        send_advert(fsm, now_ms, out);
    } else if (is_changed && fsm->state == VRRP_STATE_BACKUP && fsm->_has_master &&
               !(preempts(fsm) && fsm->_master_priority < priority)) {
        /* We no longer outrank the live master: treat its last advert as accepted, so a
         * takeover already under way (adverts being discarded) is called off. */
        fsm->_is_preempt_pending = false;
        uint64_t down_at = fsm->_master_seen_ms + vrrp_fsm_master_down_interval_ms(fsm);
        if (down_at > fsm->_master_down_at_ms) {
            fsm->_master_down_at_ms = down_at;
        }
    }
    actions_end(fsm, out);
    return 0;
}

void vrrp_fsm_set_fault(struct vrrp_fsm *fsm, uint64_t now_ms, bool is_faulted,
                        struct vrrp_fsm_actions *out)
{
    actions_begin(out);
    fsm->_is_faulted = is_faulted;
    if (is_faulted && (fsm->state == VRRP_STATE_BACKUP || fsm->state == VRRP_STATE_MASTER)) {
        vrrp_fsm_set_state(fsm, VRRP_STATE_FAULT, now_ms, "fault set", out);
    } else if (!is_faulted && fsm->state == VRRP_STATE_FAULT) {
        enter_running(fsm, now_ms, "fault cleared", out);
    }
    actions_end(fsm, out);
}

int vrrp_fsm_set_timing(struct vrrp_fsm *fsm, uint64_t now_ms, uint16_t advert_int_cs, bool preempt,
                        uint32_t preempt_delay_ms, struct vrrp_fsm_actions *out)
{
    actions_begin(out);
    if (advert_int_cs == 0 || advert_int_cs > 4095) {
        actions_end(fsm, out);
        return -EINVAL;
    }
    bool is_interval_changed = advert_int_cs != fsm->cfg.advert_int_cs;
    fsm->cfg.advert_int_cs = advert_int_cs;
    fsm->cfg.preempt = preempt;
    fsm->cfg.preempt_delay_ms = preempt_delay_ms;
    if (is_interval_changed && fsm->state == VRRP_STATE_MASTER) {
        send_advert(fsm, now_ms, out); /* the backups learn the new Master_Adver_Interval */
    } else if (fsm->state == VRRP_STATE_BACKUP && fsm->_has_master &&
               !(preempts(fsm) && fsm->_master_priority < fsm->cfg.priority)) {
        /* Preemption turned off (or delayed anew): a takeover under way is called off, as in
         * vrrp_fsm_set_priority. */
        fsm->_is_preempt_pending = false;
        uint64_t down_at = fsm->_master_seen_ms + vrrp_fsm_master_down_interval_ms(fsm);
        if (down_at > fsm->_master_down_at_ms) {
            fsm->_master_down_at_ms = down_at;
        }
    }
    actions_end(fsm, out);
    return 0;
}
