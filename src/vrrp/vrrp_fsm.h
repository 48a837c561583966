/* SPDX-License-Identifier: MIT */
/* The state machine of one VRRPv3 virtual router for IPv4 (RFC 5798 section 6.4), plus a
 * FAULT state the caller forces when the node cannot serve. Pure and event-driven: every
 * input takes the time (ms, any monotonic clock) and returns the actions the caller must
 * perform (send an advert, add or remove the VIPs, re-arm one timer); no sockets, clocks,
 * logging or allocation here. Timers, states and deviations: docs/internals/vrrp.md. */
#ifndef KEEL_VRRP_VRRP_FSM_H
#define KEEL_VRRP_VRRP_FSM_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

/* "No timer needed" in vrrp_fsm_actions.deadline_ms. */
#define VRRP_FSM_NEVER UINT64_MAX

#define VRRP_FSM_PRIORITY_OWNER 255 /* the IPvX address owner (RFC 5798 5.2.4) */
#define VRRP_FSM_PRIORITY_STOP 0    /* "the master stopped participating" */

enum vrrp_state {
    VRRP_STATE_INIT = 0, /* rfc5798 6.4.1 Initialize: not started, or shut down */
    VRRP_STATE_BACKUP,   /* rfc5798 6.4.2: monitors the master, runs Master_Down_Timer */
    VRRP_STATE_MASTER,   /* rfc5798 6.4.3: holds the VIPs, sends adverts on Adver_Timer */
    VRRP_STATE_FAULT     /* keel: forced by the caller (interface down, tracking failed);
                          * silent, holds no VIPs, ignores adverts */
};
#define VRRP_STATE_COUNT 4

/* "init", "backup", "master", "fault"; "?" out of range. */
const char *vrrp_state_name(enum vrrp_state state);

struct vrrp_fsm_config {
    uint8_t vrid;              /* 1..255 */
    uint8_t priority;          /* 1..255; 255: address owner (always preempts, RFC 5798 6.1) */
    uint16_t advert_int_cs;    /* Advertisement_Interval, 1..4095 centiseconds */
    bool preempt;              /* Preempt_Mode */
    uint32_t preempt_delay_ms; /* see vrrp_fsm_on_advert; 0: RFC behaviour */
    struct in_addr primary_ip; /* our primary address: the advert source, the tie-break */
};

/* What the caller must do after an input, in this order: VIPs (a new master holds them and
 * accepts on them before it advertises), then the advert, then the gratuitous ARPs of added
 * VIPs, then the timer. Every input fills all fields (those not set are false/0). */
struct vrrp_fsm_actions {
    bool del_vips;           /* remove the VIPs (idempotent: "make sure they are absent") */
    bool add_vips;           /* add the VIPs and send gratuitous ARPs for them */
    bool send_advert;        /* send one advert now ... */
    uint8_t advert_priority; /* ... with this priority (0 when stopping) and the
                              * configured advert_int_cs */
    bool is_transition;      /* the state changed (at most once per input): */
    enum vrrp_state from;    /*   old state */
    enum vrrp_state to;      /*   new state */
    const char *reason;      /*   why, a static string for logs ("master down") */
    bool is_handover;        /*   to MASTER from a live master (it sent priority 0, or we
                              *   preempt it): a planned handover, not a failure */
    uint64_t deadline_ms;    /* call vrrp_fsm_on_timer at this absolute time; VRRP_FSM_NEVER:
                              * no timer. Always set: re-arm (or stop) the timer every time.
                              * In the past only if on_timer is overdue: call it at once */
};

/* One virtual router. Embed it; fields are read-only for callers (use the functions). */
struct vrrp_fsm {
    struct vrrp_fsm_config cfg; /* priority is the effective one (vrrp_fsm_set_priority) */
    enum vrrp_state state;
    uint64_t state_since_ms; /* time of the last transition */
    uint32_t n_transitions;
    uint32_t n_became_master;
    uint16_t master_adver_int_cs; /* Master_Adver_Interval (learned while backup) */
    uint64_t _adver_at_ms;        /* MASTER: Adver_Timer */
    uint64_t _master_down_at_ms;  /* BACKUP: Master_Down_Timer */
    bool _is_faulted;             /* vrrp_fsm_set_fault(true) in effect */
    bool _is_preempt_pending;     /* BACKUP: outranking the master, preempt delay running */
    uint64_t _preempt_since_ms;
    bool _has_master;         /* BACKUP: the last advert below is from a live master */
    uint64_t _master_seen_ms; /* its time */
    uint8_t _master_priority; /* its priority */
    bool _is_master_stopping; /* BACKUP: the master sent priority 0 */
};

/* Set up fsm in INIT with cfg (copied). Returns 0 or -EINVAL (a field out of range). */
int vrrp_fsm_init(struct vrrp_fsm *fsm, const struct vrrp_fsm_config *cfg) KEEL_MUST_CHECK;

/* Startup (RFC 5798 6.4.1). From INIT only (a no-op otherwise): to FAULT if a fault is set,
 * else the owner becomes MASTER at once (advert, VIPs), anyone else BACKUP with
 * Master_Adver_Interval = Advertisement_Interval and the Master_Down_Timer running. */
void vrrp_fsm_start(struct vrrp_fsm *fsm, uint64_t now_ms, struct vrrp_fsm_actions *out);

/* Shutdown: to INIT from any state. A MASTER sends a priority-0 advert (so a backup takes
 * over after Skew_Time) and removes its VIPs. */
void vrrp_fsm_shutdown(struct vrrp_fsm *fsm, uint64_t now_ms, struct vrrp_fsm_actions *out);

/* An advert accepted by vrrp_pkt_parse for this VRID, from src_ip with priority and
 * interval_cs (1..4095; 0 is ignored). Ignored in INIT and FAULT, when src_ip is our
 * primary address (our own advert looped back), and while our priority is 255 (the owner
 * discards adverts, RFC 5798 7.1). Otherwise RFC 5798 6.4.2/6.4.3:
 *  - BACKUP, priority 0: Master_Down_Timer = Skew_Time.
 *  - BACKUP, priority >= ours or preempt off: learn Master_Adver_Interval, Master_Down_Timer
 *    = Master_Down_Interval. Lower priority with preempt on: discarded, so the timer fires
 *    and we take over; with preempt_delay_ms, such adverts are still accepted until we have
 *    outranked the master for preempt_delay_ms (counted from the first one).
 *  - MASTER, priority 0: send an advert now. Higher priority, or equal priority from a higher
 *    address: to BACKUP (remove VIPs), learning the sender's interval. Else discarded. */
void vrrp_fsm_on_advert(struct vrrp_fsm *fsm, uint64_t now_ms, struct in_addr src_ip,
                        uint8_t priority, uint16_t interval_cs, struct vrrp_fsm_actions *out);

/* The deadline passed (calling it early, or with no deadline, only returns the deadline):
 * MASTER sends its periodic advert; BACKUP's Master_Down_Timer fired: to MASTER. */
void vrrp_fsm_on_timer(struct vrrp_fsm *fsm, uint64_t now_ms, struct vrrp_fsm_actions *out);

/* Change the effective priority (tracking), 1..255. A MASTER announces it at once (an extra
 * advert, so a backup that now outranks us can preempt); a BACKUP uses it from now on (and
 * if it stops outranking the live master, its takeover is called off). Returns 0, or
 * -EINVAL for 0 (nothing changes; *out still gets the deadline). */
int vrrp_fsm_set_priority(struct vrrp_fsm *fsm, uint64_t now_ms, uint8_t priority,
                          struct vrrp_fsm_actions *out) KEEL_MUST_CHECK;

/* Reload: change Advertisement_Interval (1..4095 cs), Preempt_Mode and the preempt delay.
 * A MASTER whose interval changed advertises at once (the backups learn the new
 * Master_Adver_Interval from it) and then every new interval; a BACKUP that no longer
 * preempts the live master calls its takeover off. Returns 0, or -EINVAL for an interval out
 * of range (nothing changes; *out still gets the deadline). */
int vrrp_fsm_set_timing(struct vrrp_fsm *fsm, uint64_t now_ms, uint16_t advert_int_cs, bool preempt,
                        uint32_t preempt_delay_ms, struct vrrp_fsm_actions *out) KEEL_MUST_CHECK;

/* Force (is_faulted) or clear the FAULT state. Entering FAULT from MASTER sends a priority-0
 * advert and removes the VIPs; leaving FAULT restarts as vrrp_fsm_start does. Set in INIT,
 * the fault is remembered for vrrp_fsm_start. */
void vrrp_fsm_set_fault(struct vrrp_fsm *fsm, uint64_t now_ms, bool is_faulted,
                        struct vrrp_fsm_actions *out);

/* Skew_Time and Master_Down_Interval (RFC 5798 6.1) in ms for our current priority and
 * Master_Adver_Interval: 10 * (256 - Priority) * MAI_cs / 256 rounded down, and
 * 30 * MAI_cs + Skew_Time. */
uint64_t vrrp_fsm_skew_time_ms(const struct vrrp_fsm *fsm);
uint64_t vrrp_fsm_master_down_interval_ms(const struct vrrp_fsm *fsm);

/* The pending deadline, as last returned in actions. */
uint64_t vrrp_fsm_deadline(const struct vrrp_fsm *fsm);

#endif
