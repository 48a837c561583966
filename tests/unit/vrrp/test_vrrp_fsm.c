/* SPDX-License-Identifier: MIT */
/* Unit tests of vrrp/vrrp_fsm.c: single inputs, and elections between routers on a simulated
 * link (an event-driven loop that calls on_timer at each deadline and delivers every advert
 * to the other live routers at once), with exact times. Also checks that the transition
 * table and the diagram in docs/internals/vrrp.md agree. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <stdio.h>

#include "vrrp/vrrp_fsm.c"

static struct in_addr ip(const char *s)
{
    struct in_addr a;
    cr_assert_eq(inet_pton(AF_INET, s, &a), 1, "bad test address %s", s);
    return a;
}

static struct vrrp_fsm fsm_new(uint8_t priority, const char *addr, bool preempt)
{
    struct vrrp_fsm fsm;
    struct vrrp_fsm_config cfg = {.vrid = 51,
                                  .priority = priority,
                                  .advert_int_cs = 100,
                                  .preempt = preempt,
                                  .primary_ip = ip(addr)};
    cr_assert_eq(vrrp_fsm_init(&fsm, &cfg), 0);
    return fsm;
}

/* Master_Down_Interval for Master_Adver_Interval 100 cs: 3000 ms + Skew_Time. */
static uint64_t mdi_100cs(uint8_t priority)
{
    return 3000 + (uint64_t)(256 - priority) * 1000 / 256;
}

/* ------------------------------------------------------------------------------------------
 * A simulated link
 * ------------------------------------------------------------------------------------------ */

#define SIM_MAX 4
#define SIM_LOG 64

struct sim_router {
    struct vrrp_fsm fsm;
    struct in_addr addr;
    bool is_alive; /* false: crashed, neither sends nor receives */
    bool has_vips; /* what the caller would hold after applying the actions */
    uint64_t deadline_ms;
    uint32_t n_adverts_sent;
};

struct sim_event {
    uint64_t at_ms;
    size_t router;
    enum vrrp_state from, to;
};

/* An advert on the wire. */
struct sim_advert {
    uint64_t at_ms;
    size_t from;
    uint8_t priority;
};

#define SIM_QUEUE 16

struct sim {
    struct sim_router r[SIM_MAX];
    size_t n;
    uint64_t now_ms;
    struct sim_event log[SIM_LOG];
    size_t n_log;
    struct sim_advert queue[SIM_QUEUE]; /* FIFO, in time order */
    size_t q_head, q_len;
};

static size_t sim_add(struct sim *s, uint8_t priority, const char *addr, bool preempt)
{
    size_t i = s->n++;
    s->r[i].fsm = fsm_new(priority, addr, preempt);
    s->r[i].addr = ip(addr);
    s->r[i].is_alive = true;
    s->r[i].deadline_ms = VRRP_FSM_NEVER;
    return i;
}

static void sim_apply(struct sim *s, size_t i, const struct vrrp_fsm_actions *a);

/* Put router i's advert on the wire. It arrives with no delay, but after every timer due at
 * the same instant: two routers whose timers fire together both act before hearing each
 * other, as on a real link. */
static void sim_send(struct sim *s, size_t i, uint8_t priority)
{
    s->r[i].n_adverts_sent++;
    cr_assert_lt(s->q_len, SIM_QUEUE);
    s->queue[(s->q_head + s->q_len++) % SIM_QUEUE] = (struct sim_advert){s->now_ms, i, priority};
}

/* Hand the oldest advert on the wire to every other live router. */
static void sim_deliver(struct sim *s)
{
    struct sim_advert adv = s->queue[s->q_head];
    s->q_head = (s->q_head + 1) % SIM_QUEUE;
    s->q_len--;
    s->now_ms = adv.at_ms;
    for (size_t j = 0; j < s->n; j++) {
        if (j == adv.from || !s->r[j].is_alive) {
            continue;
        }
        struct vrrp_fsm_actions a;
        vrrp_fsm_on_advert(&s->r[j].fsm, s->now_ms, s->r[adv.from].addr, adv.priority,
                           s->r[adv.from].fsm.cfg.advert_int_cs, &a);
        sim_apply(s, j, &a);
    }
}

static void sim_apply(struct sim *s, size_t i, const struct vrrp_fsm_actions *a)
{
    struct sim_router *r = &s->r[i];
    cr_assert_not(a->add_vips && a->del_vips);
    if (a->del_vips) {
        r->has_vips = false;
    }
    if (a->add_vips) {
        r->has_vips = true;
    }
    if (a->is_transition) {
        cr_assert_lt(s->n_log, SIM_LOG);
        s->log[s->n_log++] = (struct sim_event){s->now_ms, i, a->from, a->to};
        cr_assert_eq(a->to == VRRP_STATE_MASTER, a->add_vips, "entering MASTER adds the VIPs");
        if (a->from == VRRP_STATE_MASTER) {
            cr_assert(a->del_vips, "leaving MASTER removes the VIPs");
        }
    }
    cr_assert(a->deadline_ms == VRRP_FSM_NEVER || a->deadline_ms >= s->now_ms);
    r->deadline_ms = a->deadline_ms;
    cr_assert_eq(r->deadline_ms, vrrp_fsm_deadline(&r->fsm));
    if (a->send_advert) {
        sim_send(s, i, a->advert_priority);
    }
}

static void sim_start(struct sim *s, size_t i)
{
    struct vrrp_fsm_actions a;
    vrrp_fsm_start(&s->r[i].fsm, s->now_ms, &a);
    sim_apply(s, i, &a);
}

/* Run every timer and delivery due up to until_ms (inclusive), in time order; at equal
 * times timers go first (lowest index first), then the adverts they sent. */
static void sim_run(struct sim *s, uint64_t until_ms)
{
    for (;;) {
        size_t next = SIM_MAX;
        uint64_t at = VRRP_FSM_NEVER;
        for (size_t i = 0; i < s->n; i++) {
            if (s->r[i].is_alive && s->r[i].deadline_ms < at) {
                at = s->r[i].deadline_ms;
                next = i;
            }
        }
        uint64_t q_at = s->q_len > 0 ? s->queue[s->q_head].at_ms : VRRP_FSM_NEVER;
        if (next != SIM_MAX && at <= until_ms && at <= q_at) {
            s->now_ms = at;
            struct vrrp_fsm_actions a;
            vrrp_fsm_on_timer(&s->r[next].fsm, s->now_ms, &a);
            sim_apply(s, next, &a);
        } else if (q_at <= until_ms) {
            sim_deliver(s);
        } else {
            break;
        }
    }
    s->now_ms = until_ms;
}

/* The time router i last entered state `to`; fails if it never did. */
static uint64_t sim_entered(const struct sim *s, size_t i, enum vrrp_state to)
{
    for (size_t k = s->n_log; k > 0; k--) {
        if (s->log[k - 1].router == i && s->log[k - 1].to == to) {
            return s->log[k - 1].at_ms;
        }
    }
    cr_assert_fail("router %zu never entered %s", i, vrrp_state_name(to));
    return 0;
}

static size_t sim_count(const struct sim *s, size_t i, enum vrrp_state to)
{
    size_t n = 0;
    for (size_t k = 0; k < s->n_log; k++) {
        n += s->log[k].router == i && s->log[k].to == to;
    }
    return n;
}

static void assert_state(const struct sim *s, size_t i, enum vrrp_state want)
{
    cr_assert_eq(s->r[i].fsm.state, want, "router %zu is %s, want %s", i,
                 vrrp_state_name(s->r[i].fsm.state), vrrp_state_name(want));
    cr_assert_eq(s->r[i].has_vips, want == VRRP_STATE_MASTER, "router %zu VIPs", i);
}

/* ------------------------------------------------------------------------------------------
 * Basics
 * ------------------------------------------------------------------------------------------ */

Test(vrrp_fsm, state_names)
{
    cr_assert_str_eq(vrrp_state_name(VRRP_STATE_INIT), "init");
    cr_assert_str_eq(vrrp_state_name(VRRP_STATE_BACKUP), "backup");
    cr_assert_str_eq(vrrp_state_name(VRRP_STATE_MASTER), "master");
    cr_assert_str_eq(vrrp_state_name(VRRP_STATE_FAULT), "fault");
    cr_assert_str_eq(vrrp_state_name((enum vrrp_state)VRRP_STATE_COUNT), "?");
}

Test(vrrp_fsm, init_rejects_bad_config)
{
    struct vrrp_fsm fsm;
    const struct vrrp_fsm_config bad[] = {
        {.vrid = 0, .priority = 100, .advert_int_cs = 100},
        {.vrid = 1, .priority = 0, .advert_int_cs = 100},
        {.vrid = 1, .priority = 100, .advert_int_cs = 0},
        {.vrid = 1, .priority = 100, .advert_int_cs = 4096},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(vrrp_fsm_init(&fsm, &bad[i]), -EINVAL, "case %zu", i);
    }
    struct vrrp_fsm_config ok = {.vrid = 255, .priority = 255, .advert_int_cs = 4095};
    cr_assert_eq(vrrp_fsm_init(&fsm, &ok), 0);
    cr_assert_eq(fsm.state, VRRP_STATE_INIT);
    cr_assert_eq(vrrp_fsm_deadline(&fsm), VRRP_FSM_NEVER);
}

Test(vrrp_fsm, timer_formulas_in_ms)
{
    struct vrrp_fsm fsm = fsm_new(100, "10.0.0.1", true);
    /* (256 - 100) * 100 cs / 256 = 60.9375 cs = 609.375 ms */
    cr_assert_eq(vrrp_fsm_skew_time_ms(&fsm), 609);
    cr_assert_eq(vrrp_fsm_master_down_interval_ms(&fsm), 3609);
    fsm.cfg.priority = 255;
    fsm.master_adver_int_cs = 1;
    cr_assert_eq(vrrp_fsm_skew_time_ms(&fsm), 0);
    cr_assert_eq(vrrp_fsm_master_down_interval_ms(&fsm), 30);
    fsm.cfg.priority = 1;
    fsm.master_adver_int_cs = 4095;
    cr_assert_eq(vrrp_fsm_skew_time_ms(&fsm), 255 * 40950 / 256);
    cr_assert_eq(vrrp_fsm_master_down_interval_ms(&fsm), 122850 + 255 * 40950 / 256);
    fsm.cfg.priority = 200;
    fsm.master_adver_int_cs = 10; /* 100 ms adverts (DESIGN.md's example) */
    cr_assert_eq(vrrp_fsm_master_down_interval_ms(&fsm), 300 + 56 * 100 / 256);
}

Test(vrrp_fsm, start_as_backup)
{
    struct vrrp_fsm fsm = fsm_new(100, "10.0.0.1", true);
    struct vrrp_fsm_actions a;
    vrrp_fsm_start(&fsm, 1000, &a);
    cr_assert(a.is_transition);
    cr_assert_eq(a.from, VRRP_STATE_INIT);
    cr_assert_eq(a.to, VRRP_STATE_BACKUP);
    cr_assert_not(a.send_advert);
    cr_assert_not(a.add_vips);
    cr_assert(a.del_vips, "a crashed run's VIPs are removed");
    cr_assert_eq(a.deadline_ms, 1000 + 3609);
    cr_assert_eq(fsm.state_since_ms, 1000);
    /* start again: no-op */
    vrrp_fsm_start(&fsm, 2000, &a);
    cr_assert_not(a.is_transition);
    cr_assert_eq(a.deadline_ms, 1000 + 3609);
}

Test(vrrp_fsm, owner_starts_as_master)
{
    struct vrrp_fsm fsm = fsm_new(255, "10.0.0.1", false);
    struct vrrp_fsm_actions a;
    vrrp_fsm_start(&fsm, 500, &a);
    cr_assert(a.is_transition);
    cr_assert_eq(a.to, VRRP_STATE_MASTER);
    cr_assert(a.send_advert);
    cr_assert_eq(a.advert_priority, 255);
    cr_assert(a.add_vips);
    cr_assert_eq(a.deadline_ms, 1500);
    cr_assert_eq(fsm.n_became_master, 1);
}

Test(vrrp_fsm, master_sends_adverts_on_time)
{
    struct vrrp_fsm fsm = fsm_new(255, "10.0.0.1", false);
    struct vrrp_fsm_actions a;
    vrrp_fsm_start(&fsm, 0, &a);
    vrrp_fsm_on_timer(&fsm, 999, &a); /* early: nothing */
    cr_assert_not(a.send_advert);
    cr_assert_eq(a.deadline_ms, 1000);
    vrrp_fsm_on_timer(&fsm, 1000, &a);
    cr_assert(a.send_advert);
    cr_assert_eq(a.advert_priority, 255);
    cr_assert_not(a.is_transition);
    cr_assert_eq(a.deadline_ms, 2000);
    vrrp_fsm_on_timer(&fsm, 2037, &a); /* late loop: the next one is an interval later */
    cr_assert(a.send_advert);
    cr_assert_eq(a.deadline_ms, 3037);
}

Test(vrrp_fsm, ignored_adverts)
{
    struct vrrp_fsm fsm = fsm_new(100, "10.0.0.1", true);
    struct vrrp_fsm_actions a;
    /* INIT ignores adverts. */
    vrrp_fsm_on_advert(&fsm, 0, ip("10.0.0.2"), 200, 100, &a);
    cr_assert_not(a.is_transition);
    cr_assert_eq(a.deadline_ms, VRRP_FSM_NEVER);
    vrrp_fsm_start(&fsm, 0, &a);
    /* Our own advert looped back, and interval 0, change nothing. */
    vrrp_fsm_on_advert(&fsm, 100, ip("10.0.0.1"), 200, 50, &a);
    cr_assert_eq(a.deadline_ms, 3609);
    cr_assert_eq(fsm.master_adver_int_cs, 100);
    vrrp_fsm_on_advert(&fsm, 100, ip("10.0.0.2"), 200, 0, &a);
    cr_assert_eq(a.deadline_ms, 3609);
    /* The owner discards adverts (RFC 5798 7.1). */
    struct vrrp_fsm owner = fsm_new(255, "10.0.0.1", false);
    vrrp_fsm_start(&owner, 0, &a);
    vrrp_fsm_on_advert(&owner, 10, ip("10.0.0.9"), 255, 100, &a);
    cr_assert_eq(owner.state, VRRP_STATE_MASTER);
    cr_assert_not(a.send_advert);
}

/* ------------------------------------------------------------------------------------------
 * Elections
 * ------------------------------------------------------------------------------------------ */

Test(vrrp_fsm, two_routers_elect_by_priority)
{
    struct sim s = {0};
    size_t hi = sim_add(&s, 200, "10.0.0.2", true);
    size_t lo = sim_add(&s, 100, "10.0.0.1", true);
    sim_start(&s, hi);
    sim_start(&s, lo);
    sim_run(&s, 60000);
    assert_state(&s, hi, VRRP_STATE_MASTER);
    assert_state(&s, lo, VRRP_STATE_BACKUP);
    /* Nobody was master before: the higher priority's shorter Skew_Time wins. */
    cr_assert_eq(sim_entered(&s, hi, VRRP_STATE_MASTER), mdi_100cs(200));
    cr_assert_eq(sim_count(&s, lo, VRRP_STATE_MASTER), 0);
    cr_assert_eq(s.r[hi].n_adverts_sent, 1 + (60000 - mdi_100cs(200)) / 1000);
}

Test(vrrp_fsm, equal_priorities_tie_broken_by_address)
{
    struct sim s = {0};
    size_t low_ip = sim_add(&s, 100, "10.0.0.1", true);
    size_t high_ip = sim_add(&s, 100, "10.0.0.200", true);
    sim_start(&s, low_ip);
    sim_start(&s, high_ip);
    /* Same priority, same start: both timers fire at once, both become master, and the
     * lower address steps down on the other's advert (RFC 5798 6.4.3). */
    sim_run(&s, 60000);
    assert_state(&s, high_ip, VRRP_STATE_MASTER);
    assert_state(&s, low_ip, VRRP_STATE_BACKUP);
    cr_assert_eq(sim_entered(&s, low_ip, VRRP_STATE_MASTER), mdi_100cs(100));
    cr_assert_eq(sim_entered(&s, low_ip, VRRP_STATE_BACKUP), mdi_100cs(100));
    cr_assert_eq(sim_count(&s, high_ip, VRRP_STATE_BACKUP), 1, "only its start");

    /* Addresses compare as numbers, not bytes in memory: 10.0.0.200 > 10.0.1.1 is false. */
    struct vrrp_fsm m = fsm_new(100, "10.0.0.200", true);
    struct vrrp_fsm_actions a;
    vrrp_fsm_start(&m, 0, &a);
    vrrp_fsm_on_timer(&m, 3609, &a);
    cr_assert_eq(m.state, VRRP_STATE_MASTER);
    vrrp_fsm_on_advert(&m, 3700, ip("10.0.0.199"), 100, 100, &a);
    cr_assert_eq(m.state, VRRP_STATE_MASTER, "equal priority, lower address: discarded");
    vrrp_fsm_on_advert(&m, 3800, ip("10.0.1.1"), 100, 100, &a);
    cr_assert_eq(m.state, VRRP_STATE_BACKUP);
    cr_assert(a.del_vips);
    cr_assert_str_eq(a.reason, "advert with equal priority from a higher address");
}

Test(vrrp_fsm, master_failure_takeover_after_exactly_master_down_interval)
{
    struct sim s = {0};
    size_t m = sim_add(&s, 200, "10.0.0.2", true);
    size_t b = sim_add(&s, 100, "10.0.0.1", true);
    sim_start(&s, m);
    sim_start(&s, b);
    sim_run(&s, 10000);
    assert_state(&s, m, VRRP_STATE_MASTER);
    /* The master's last advert went out at 9218; then it crashes silently. */
    uint64_t last = mdi_100cs(200) + 6000;
    s.r[m].is_alive = false;
    cr_assert_eq(s.r[b].deadline_ms, last + mdi_100cs(100));
    sim_run(&s, last + mdi_100cs(100) - 1);
    assert_state(&s, b, VRRP_STATE_BACKUP);
    sim_run(&s, last + mdi_100cs(100));
    assert_state(&s, b, VRRP_STATE_MASTER);
    cr_assert_eq(sim_entered(&s, b, VRRP_STATE_MASTER), last + mdi_100cs(100));
}

Test(vrrp_fsm, takeover_reason_names_the_cause)
{
    struct vrrp_fsm b = fsm_new(100, "10.0.0.1", true);
    struct vrrp_fsm_actions a;
    vrrp_fsm_start(&b, 0, &a);
    vrrp_fsm_on_advert(&b, 100, ip("10.0.0.2"), 200, 100, &a);
    vrrp_fsm_on_timer(&b, 100 + 3609, &a);
    cr_assert(a.is_transition);
    cr_assert_str_eq(a.reason, "master down: Master_Down_Timer fired");
    cr_assert_not(a.is_handover, "a silent master is a failure, not a handover");
    cr_assert(a.send_advert);
    cr_assert_eq(a.advert_priority, 100);
    cr_assert(a.add_vips);
    cr_assert_eq(a.deadline_ms, 100 + 3609 + 1000);
}

Test(vrrp_fsm, priority_zero_shutdown_takeover_after_skew_time)
{
    struct sim s = {0};
    size_t m = sim_add(&s, 200, "10.0.0.2", true);
    size_t b = sim_add(&s, 100, "10.0.0.1", true);
    sim_start(&s, m);
    sim_start(&s, b);
    sim_run(&s, 10000);
    assert_state(&s, m, VRRP_STATE_MASTER);

    s.now_ms = 10500;
    struct vrrp_fsm_actions a;
    vrrp_fsm_shutdown(&s.r[m].fsm, s.now_ms, &a);
    cr_assert(a.is_transition);
    cr_assert_eq(a.to, VRRP_STATE_INIT);
    cr_assert(a.send_advert);
    cr_assert_eq(a.advert_priority, 0);
    cr_assert(a.del_vips);
    cr_assert_eq(a.deadline_ms, VRRP_FSM_NEVER);
    sim_apply(&s, m, &a);
    sim_run(&s, 10500); /* the priority-0 advert reaches the backup */

    uint64_t skew = 156 * 1000 / 256; /* 609 ms */
    cr_assert_eq(s.r[b].deadline_ms, 10500 + skew);
    sim_run(&s, 10500 + skew - 1);
    assert_state(&s, b, VRRP_STATE_BACKUP);
    sim_run(&s, 10500 + skew);
    assert_state(&s, b, VRRP_STATE_MASTER);
    assert_state(&s, m, VRRP_STATE_INIT);
}

Test(vrrp_fsm, priority_zero_reason_and_master_reply)
{
    struct vrrp_fsm b = fsm_new(100, "10.0.0.1", true);
    struct vrrp_fsm_actions a;
    vrrp_fsm_start(&b, 0, &a);
    vrrp_fsm_on_advert(&b, 100, ip("10.0.0.2"), 0, 100, &a);
    cr_assert_eq(a.deadline_ms, 100 + 609);
    vrrp_fsm_on_timer(&b, 709, &a);
    cr_assert_str_eq(a.reason, "master sent priority 0, Skew_Time elapsed");
    cr_assert(a.is_handover);
    /* A master that hears priority 0 answers at once (RFC 5798 6.4.3). */
    vrrp_fsm_on_advert(&b, 800, ip("10.0.0.3"), 0, 100, &a);
    cr_assert(a.send_advert);
    cr_assert_eq(a.advert_priority, 100);
    cr_assert_not(a.is_transition);
    cr_assert_eq(a.deadline_ms, 1800);
}

Test(vrrp_fsm, preemption_on_takes_over_a_live_lower_master)
{
    struct sim s = {0};
    size_t lo = sim_add(&s, 100, "10.0.0.1", true);
    sim_start(&s, lo);
    sim_run(&s, 10000);
    assert_state(&s, lo, VRRP_STATE_MASTER);
    size_t hi = sim_add(&s, 200, "10.0.0.2", true);
    sim_start(&s, hi);
    /* The lower master's adverts are discarded, so the Master_Down_Timer set at start fires
     * (RFC 5798 6.4.2). */
    sim_run(&s, 20000);
    assert_state(&s, hi, VRRP_STATE_MASTER);
    assert_state(&s, lo, VRRP_STATE_BACKUP);
    cr_assert_eq(sim_entered(&s, hi, VRRP_STATE_MASTER), 10000 + mdi_100cs(200));
    cr_assert_eq(sim_entered(&s, lo, VRRP_STATE_BACKUP), 10000 + mdi_100cs(200));
}

Test(vrrp_fsm, preempt_reason)
{
    struct vrrp_fsm b = fsm_new(200, "10.0.0.2", true);
    struct vrrp_fsm_actions a;
    vrrp_fsm_start(&b, 0, &a);
    for (uint64_t t = 0; t < mdi_100cs(200); t += 1000) {
        vrrp_fsm_on_advert(&b, t, ip("10.0.0.1"), 100, 100, &a);
        cr_assert_eq(a.deadline_ms, mdi_100cs(200), "discarded: the timer keeps running");
    }
    vrrp_fsm_on_timer(&b, mdi_100cs(200), &a);
    cr_assert_str_eq(a.reason, "preempting a lower-priority master");
    cr_assert(a.is_handover);
}

Test(vrrp_fsm, preemption_off_leaves_a_live_master_alone)
{
    struct sim s = {0};
    size_t lo = sim_add(&s, 100, "10.0.0.1", true);
    sim_start(&s, lo);
    sim_run(&s, 10000);
    size_t hi = sim_add(&s, 200, "10.0.0.2", false);
    sim_start(&s, hi);
    sim_run(&s, 100000);
    assert_state(&s, lo, VRRP_STATE_MASTER);
    assert_state(&s, hi, VRRP_STATE_BACKUP);
    cr_assert_eq(sim_count(&s, hi, VRRP_STATE_MASTER), 0);
    /* It still takes over when the master dies. */
    s.r[lo].is_alive = false;
    sim_run(&s, 110000);
    assert_state(&s, hi, VRRP_STATE_MASTER);
}

Test(vrrp_fsm, preempt_delay)
{
    struct sim s = {0};
    size_t lo = sim_add(&s, 100, "10.0.0.1", true);
    sim_start(&s, lo);
    sim_run(&s, 10000); /* lo is master, adverts at 3609 + k * 1000 */
    size_t hi = sim_add(&s, 200, "10.0.0.2", true);
    s.r[hi].fsm.cfg.preempt_delay_ms = 5000;
    sim_start(&s, hi);
    /* hi first outranks the master at 10609; adverts before 15609 are still accepted, the
     * last at 15609 - 1000 = 14609; the one at 15609 is discarded, so the timer fires a
     * Master_Down_Interval after 14609. */
    uint64_t takeover = 14609 + mdi_100cs(200);
    sim_run(&s, 10000 + mdi_100cs(200));
    assert_state(&s, hi, VRRP_STATE_BACKUP);
    sim_run(&s, takeover - 1);
    assert_state(&s, hi, VRRP_STATE_BACKUP);
    assert_state(&s, lo, VRRP_STATE_MASTER);
    sim_run(&s, takeover);
    assert_state(&s, hi, VRRP_STATE_MASTER);
    cr_assert_eq(sim_entered(&s, hi, VRRP_STATE_MASTER), takeover);
    sim_run(&s, takeover + 5000);
    assert_state(&s, lo, VRRP_STATE_BACKUP);
    /* Without the delay it would have taken over at 10000 + Master_Down_Interval; with it,
     * not before the delay has run from the first advert it outranked. */
    cr_assert_geq(takeover, 10609 + 5000);
}

Test(vrrp_fsm, preempt_delay_restarts_after_a_higher_advert)
{
    struct vrrp_fsm b = fsm_new(200, "10.0.0.2", true);
    b.cfg.preempt_delay_ms = 3000;
    struct vrrp_fsm_actions a;
    vrrp_fsm_start(&b, 0, &a);
    vrrp_fsm_on_advert(&b, 1000, ip("10.0.0.1"), 100, 100, &a); /* pending since 1000 */
    vrrp_fsm_on_advert(&b, 2000, ip("10.0.0.3"), 250, 100, &a); /* a higher master: reset */
    vrrp_fsm_on_advert(&b, 3000, ip("10.0.0.1"), 100, 100, &a); /* pending since 3000 */
    vrrp_fsm_on_advert(&b, 5500, ip("10.0.0.1"), 100, 100, &a);
    cr_assert_eq(a.deadline_ms, 5500 + mdi_100cs(200), "still within the delay: accepted");
    vrrp_fsm_on_advert(&b, 6000, ip("10.0.0.1"), 100, 100, &a);
    cr_assert_eq(a.deadline_ms, 5500 + mdi_100cs(200), "delay over: discarded");
}

Test(vrrp_fsm, backup_learns_the_master_interval)
{
    struct vrrp_fsm b = fsm_new(100, "10.0.0.1", true);
    struct vrrp_fsm_actions a;
    vrrp_fsm_start(&b, 0, &a);
    cr_assert_eq(b.master_adver_int_cs, 100);
    vrrp_fsm_on_advert(&b, 1000, ip("10.0.0.2"), 200, 50, &a);
    cr_assert_eq(b.master_adver_int_cs, 50);
    /* 3 * 500 ms + (156 * 50 cs / 256 = 30.47 cs = 304 ms) */
    cr_assert_eq(vrrp_fsm_master_down_interval_ms(&b), 1804);
    cr_assert_eq(a.deadline_ms, 1000 + 1804);
    vrrp_fsm_on_timer(&b, 2803, &a);
    cr_assert_eq(b.state, VRRP_STATE_BACKUP);
    vrrp_fsm_on_timer(&b, 2804, &a);
    cr_assert_eq(b.state, VRRP_STATE_MASTER);
    /* As master it advertises its own interval again. */
    cr_assert_eq(a.deadline_ms, 2804 + 1000);

    /* A master stepping down learns the new master's interval too. */
    vrrp_fsm_on_advert(&b, 3000, ip("10.0.0.3"), 150, 20, &a);
    cr_assert_eq(b.state, VRRP_STATE_BACKUP);
    cr_assert_eq(b.master_adver_int_cs, 20);
    cr_assert_eq(a.deadline_ms, 3000 + 600 + 156 * 200 / 256);
}

Test(vrrp_fsm, interval_learnt_in_simulation)
{
    struct sim s = {0};
    size_t m = sim_add(&s, 200, "10.0.0.2", true);
    s.r[m].fsm.cfg.advert_int_cs = 10; /* 100 ms */
    size_t b = sim_add(&s, 100, "10.0.0.1", true);
    sim_start(&s, m);
    sim_start(&s, b);
    sim_run(&s, 5000);
    assert_state(&s, m, VRRP_STATE_MASTER);
    cr_assert_eq(s.r[b].fsm.master_adver_int_cs, 10);
    uint64_t last = s.r[m].deadline_ms - 100;
    s.r[m].is_alive = false;
    sim_run(&s, 10000);
    cr_assert_eq(sim_entered(&s, b, VRRP_STATE_MASTER), last + 300 + 156 * 100 / 256);
}

/* ------------------------------------------------------------------------------------------
 * Priority changes (tracking) and faults
 * ------------------------------------------------------------------------------------------ */

Test(vrrp_fsm, master_announces_a_priority_change)
{
    struct vrrp_fsm m = fsm_new(200, "10.0.0.2", true);
    struct vrrp_fsm_actions a;
    vrrp_fsm_start(&m, 0, &a);
    vrrp_fsm_on_timer(&m, mdi_100cs(200), &a);
    cr_assert_eq(m.state, VRRP_STATE_MASTER);
    cr_assert_eq(vrrp_fsm_set_priority(&m, 4000, 50, &a), 0);
    cr_assert(a.send_advert);
    cr_assert_eq(a.advert_priority, 50);
    cr_assert_eq(a.deadline_ms, 5000);
    cr_assert_eq(vrrp_fsm_set_priority(&m, 4100, 50, &a), 0);
    cr_assert_not(a.send_advert, "unchanged: no extra advert");
    cr_assert_eq(vrrp_fsm_set_priority(&m, 4200, 0, &a), -EINVAL);
    cr_assert_eq(m.cfg.priority, 50);
    cr_assert_eq(a.deadline_ms, 5000);
}

Test(vrrp_fsm, tracking_hands_over_to_the_backup)
{
    struct sim s = {0};
    size_t m = sim_add(&s, 200, "10.0.0.2", true);
    size_t b = sim_add(&s, 150, "10.0.0.1", true);
    sim_start(&s, m);
    sim_start(&s, b);
    sim_run(&s, 10000);
    assert_state(&s, m, VRRP_STATE_MASTER);
    /* A tracked check fails: the master drops below the backup and says so at once; the
     * backup then discards its adverts and takes over a Master_Down_Interval after the
     * last one it accepted (the regular advert at 9218). */
    struct vrrp_fsm_actions a;
    s.now_ms = 10000;
    cr_assert_eq(vrrp_fsm_set_priority(&s.r[m].fsm, s.now_ms, 100, &a), 0);
    sim_apply(&s, m, &a);
    sim_run(&s, 20000);
    assert_state(&s, b, VRRP_STATE_MASTER);
    assert_state(&s, m, VRRP_STATE_BACKUP);
    cr_assert_eq(sim_entered(&s, b, VRRP_STATE_MASTER), 9218 + mdi_100cs(150));
}

Test(vrrp_fsm, backup_losing_rank_calls_off_its_takeover)
{
    struct vrrp_fsm b = fsm_new(200, "10.0.0.2", true);
    struct vrrp_fsm_actions a;
    vrrp_fsm_start(&b, 0, &a);
    vrrp_fsm_on_advert(&b, 3000, ip("10.0.0.1"), 150, 100, &a);
    cr_assert_eq(a.deadline_ms, mdi_100cs(200), "outranked master: discarded");
    cr_assert_eq(vrrp_fsm_set_priority(&b, 3100, 120, &a), 0);
    cr_assert_eq(a.deadline_ms, 3000 + mdi_100cs(120), "the live master's last advert counts");
    cr_assert_not(b._is_preempt_pending);
    vrrp_fsm_on_advert(&b, 4000, ip("10.0.0.1"), 150, 100, &a);
    cr_assert_eq(a.deadline_ms, 4000 + mdi_100cs(120));
}

Test(vrrp_fsm, fault_from_master_sends_priority_zero)
{
    struct vrrp_fsm m = fsm_new(200, "10.0.0.2", true);
    struct vrrp_fsm_actions a;
    vrrp_fsm_start(&m, 0, &a);
    vrrp_fsm_on_timer(&m, mdi_100cs(200), &a);
    vrrp_fsm_set_fault(&m, 5000, true, &a);
    cr_assert(a.is_transition);
    cr_assert_eq(a.from, VRRP_STATE_MASTER);
    cr_assert_eq(a.to, VRRP_STATE_FAULT);
    cr_assert(a.send_advert);
    cr_assert_eq(a.advert_priority, 0);
    cr_assert(a.del_vips);
    cr_assert_eq(a.deadline_ms, VRRP_FSM_NEVER);
    /* Silent and deaf while faulted. */
    vrrp_fsm_on_advert(&m, 5100, ip("10.0.0.1"), 100, 100, &a);
    cr_assert_not(a.send_advert);
    vrrp_fsm_on_timer(&m, 99999, &a);
    cr_assert_not(a.send_advert);
    cr_assert_eq(m.state, VRRP_STATE_FAULT);
    vrrp_fsm_set_fault(&m, 6000, true, &a);
    cr_assert_not(a.is_transition);
    /* Cleared: back to BACKUP with a fresh Master_Down_Timer. */
    vrrp_fsm_set_fault(&m, 7000, false, &a);
    cr_assert(a.is_transition);
    cr_assert_eq(a.to, VRRP_STATE_BACKUP);
    cr_assert_eq(a.deadline_ms, 7000 + mdi_100cs(200));
    cr_assert_eq(m.master_adver_int_cs, 100);
}

Test(vrrp_fsm, fault_in_simulation_hands_over_after_skew_time)
{
    struct sim s = {0};
    size_t m = sim_add(&s, 200, "10.0.0.2", true);
    size_t b = sim_add(&s, 100, "10.0.0.1", true);
    sim_start(&s, m);
    sim_start(&s, b);
    sim_run(&s, 10000);
    struct vrrp_fsm_actions a;
    vrrp_fsm_set_fault(&s.r[m].fsm, s.now_ms, true, &a);
    sim_apply(&s, m, &a);
    sim_run(&s, 20000);
    assert_state(&s, m, VRRP_STATE_FAULT);
    assert_state(&s, b, VRRP_STATE_MASTER);
    cr_assert_eq(sim_entered(&s, b, VRRP_STATE_MASTER), 10000 + 609);
    /* The fault clears: m is a backup that outranks b, so it preempts. */
    s.now_ms = 20000;
    vrrp_fsm_set_fault(&s.r[m].fsm, s.now_ms, false, &a);
    sim_apply(&s, m, &a);
    sim_run(&s, 40000);
    assert_state(&s, m, VRRP_STATE_MASTER);
    assert_state(&s, b, VRRP_STATE_BACKUP);
    cr_assert_eq(sim_entered(&s, m, VRRP_STATE_MASTER), 20000 + mdi_100cs(200));
}

Test(vrrp_fsm, fault_before_start_and_owner_recovery)
{
    struct vrrp_fsm f = fsm_new(255, "10.0.0.1", false);
    struct vrrp_fsm_actions a;
    vrrp_fsm_set_fault(&f, 0, true, &a);
    cr_assert_not(a.is_transition);
    cr_assert_eq(f.state, VRRP_STATE_INIT);
    vrrp_fsm_start(&f, 10, &a);
    cr_assert_eq(a.to, VRRP_STATE_FAULT);
    cr_assert(a.del_vips);
    vrrp_fsm_set_fault(&f, 20, false, &a);
    cr_assert_eq(a.from, VRRP_STATE_FAULT);
    cr_assert_eq(a.to, VRRP_STATE_MASTER);
    cr_assert(a.add_vips);
    cr_assert(a.send_advert);
    cr_assert_eq(a.advert_priority, 255);
    /* A fault cleared before start leaves nothing behind. */
    struct vrrp_fsm g = fsm_new(100, "10.0.0.1", false);
    vrrp_fsm_set_fault(&g, 0, true, &a);
    vrrp_fsm_set_fault(&g, 1, false, &a);
    vrrp_fsm_start(&g, 2, &a);
    cr_assert_eq(a.to, VRRP_STATE_BACKUP);
}

Test(vrrp_fsm, shutdown_from_every_state)
{
    struct vrrp_fsm_actions a;
    struct vrrp_fsm f = fsm_new(100, "10.0.0.1", true);
    vrrp_fsm_shutdown(&f, 0, &a);
    cr_assert_not(a.is_transition, "INIT: nothing to do");
    vrrp_fsm_start(&f, 0, &a);
    vrrp_fsm_shutdown(&f, 1, &a);
    cr_assert_eq(a.from, VRRP_STATE_BACKUP);
    cr_assert_eq(a.to, VRRP_STATE_INIT);
    cr_assert_not(a.send_advert);
    cr_assert_eq(a.deadline_ms, VRRP_FSM_NEVER);
    vrrp_fsm_start(&f, 2, &a);
    vrrp_fsm_set_fault(&f, 3, true, &a);
    vrrp_fsm_shutdown(&f, 4, &a);
    cr_assert_eq(a.from, VRRP_STATE_FAULT);
    cr_assert_eq(a.to, VRRP_STATE_INIT);
    cr_assert_eq(f.n_transitions, 5);
    /* Restartable; the fault is still set. */
    vrrp_fsm_start(&f, 5, &a);
    cr_assert_eq(a.to, VRRP_STATE_FAULT);
}

/* ------------------------------------------------------------------------------------------
 * The transition table and its diagram
 * ------------------------------------------------------------------------------------------ */

Test(vrrp_fsm, docs_diagram_matches_the_transition_table)
{
    FILE *f = fopen("docs/internals/vrrp.md", "r");
    cr_assert_not_null(f, "run from the repository root");
    static char doc[65536];
    size_t len = fread(doc, 1, sizeof(doc) - 1, f);
    fclose(f);
    doc[len] = '\0';

    size_t n = sizeof(vrrp_fsm_transitions) / sizeof(vrrp_fsm_transitions[0]);
    for (size_t i = 0; i < n; i++) {
        char arrow[64];
        snprintf(arrow, sizeof(arrow),
                 "    %s --> %s :", vrrp_state_name(vrrp_fsm_transitions[i].from),
                 vrrp_state_name(vrrp_fsm_transitions[i].to));
        cr_assert_not_null(strstr(doc, arrow), "docs/internals/vrrp.md lacks \"%s\"", arrow);
    }
    size_t arrows = 0;
    for (const char *p = doc; (p = strstr(p, " --> ")) != NULL; p++) {
        arrows += strncmp(p - 3, "[*]", 3) != 0;
    }
    cr_assert_eq(arrows, n, "the diagram has %zu transitions, the table %zu", arrows, n);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            cr_assert(vrrp_fsm_transitions[i].from != vrrp_fsm_transitions[j].from ||
                      vrrp_fsm_transitions[i].to != vrrp_fsm_transitions[j].to);
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * Reload: advert interval and preemption
 * ------------------------------------------------------------------------------------------ */

Test(vrrp_fsm, master_announces_a_new_interval_and_keeps_it)
{
    struct vrrp_fsm m = fsm_new(200, "10.0.0.2", true);
    struct vrrp_fsm_actions a;
    vrrp_fsm_start(&m, 0, &a);
    vrrp_fsm_on_timer(&m, mdi_100cs(200), &a);
    cr_assert_eq(m.state, VRRP_STATE_MASTER);
    cr_assert_eq(vrrp_fsm_set_timing(&m, 4000, 20, true, 0, &a), 0);
    cr_assert(a.send_advert, "the backups learn the new interval at once");
    cr_assert_eq(a.deadline_ms, 4200);
    vrrp_fsm_on_timer(&m, 4200, &a);
    cr_assert_eq(a.deadline_ms, 4400);
    cr_assert_eq(vrrp_fsm_set_timing(&m, 4300, 20, false, 0, &a), 0);
    cr_assert_not(a.send_advert, "same interval: no extra advert");
    cr_assert_not(m.cfg.preempt);
    cr_assert_eq(vrrp_fsm_set_timing(&m, 4300, 0, true, 0, &a), -EINVAL);
    cr_assert_eq(vrrp_fsm_set_timing(&m, 4300, 4096, true, 0, &a), -EINVAL);
    cr_assert_eq(m.cfg.advert_int_cs, 20);
    cr_assert_not(m.cfg.preempt, "refused: nothing changed");
}

Test(vrrp_fsm, backup_that_stops_preempting_calls_off_its_takeover)
{
    struct vrrp_fsm b = fsm_new(200, "10.0.0.2", true);
    struct vrrp_fsm_actions a;
    vrrp_fsm_start(&b, 0, &a);
    vrrp_fsm_on_advert(&b, 3000, ip("10.0.0.1"), 150, 100, &a);
    cr_assert_eq(a.deadline_ms, mdi_100cs(200), "outranked master: discarded");
    cr_assert_eq(vrrp_fsm_set_timing(&b, 3100, 100, false, 0, &a), 0);
    cr_assert_eq(a.deadline_ms, 3000 + mdi_100cs(200), "the live master's last advert counts");
    vrrp_fsm_on_advert(&b, 4000, ip("10.0.0.1"), 150, 100, &a);
    cr_assert_eq(a.deadline_ms, 4000 + mdi_100cs(200), "accepted now");
    cr_assert_eq(b.state, VRRP_STATE_BACKUP);
}

/* An illegal transition, or a second one within one input, is refused (core/fsm.h): the
 * state and the actions stay as they were, the count goes up. */
Test(vrrp_fsm, an_illegal_transition_is_refused)
{
    cr_assert_eq(setenv("KEEL_FSM_STRICT", "0", 1), 0);
    struct vrrp_fsm f;
    struct vrrp_fsm_config cfg = {.vrid = 7, .priority = 100, .advert_int_cs = 100};
    cr_assert_eq(vrrp_fsm_init(&f, &cfg), 0);
    struct vrrp_fsm_actions a;
    memset(&a, 0, sizeof(a));
    vrrp_fsm_set_state(&f, VRRP_STATE_INIT, 10, "test", &a); /* INIT -> INIT: no such row */
    cr_assert_eq(f.state, VRRP_STATE_INIT);
    cr_assert_not(a.is_transition);
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_VRRP), 1);
    vrrp_fsm_set_state(&f, VRRP_STATE_BACKUP, 10, "test", &a);
    cr_assert_eq(f.state, VRRP_STATE_BACKUP);
    vrrp_fsm_set_state(&f, VRRP_STATE_MASTER, 10, "second", &a); /* legal, but a second one */
    cr_assert_eq(f.state, VRRP_STATE_BACKUP);
    cr_assert_eq(a.to, VRRP_STATE_BACKUP);
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_VRRP), 2);
    cr_assert_eq(f.n_transitions, 1);
}
