/* SPDX-License-Identifier: MIT */
/* Roles as a table: the operations every role of a node (lb, app, vrrp, db, ...) provides,
 * and the node context they all receive. Types only; the table and the walkers that the
 * node's main loop calls are core/role.h. The contract is docs/internals/roles.md. */
#ifndef KEEL_CORE_ROLE_T_H
#define KEEL_CORE_ROLE_T_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

struct conf;
struct ev_loop;
struct gen;
struct json_w;
struct metrics_out;
struct role_node;

/* What this node does with a virtual address: told by the role that owns addresses (vrrp)
 * to the roles that serve on them (lb), through role_hold (core/role.h). */
enum role_hold {
    ROLE_HOLD_RELEASED = 0, /* gave it up: stop listening on it */
    ROLE_HOLD_HELD,         /* took it: listen on it */
    ROLE_HOLD_LEAVING       /* still holds it, handing it over: take no new connection, refuse
                             * none */
};

/* What a role did with a new configuration generation (role_ops.reload). */
enum role_reload {
    ROLE_RELOAD_APPLIED = 0, /* it runs the new configuration (maybe nothing of it changed) */
    ROLE_RELOAD_REFUSED      /* a change it cannot apply while running: it logged an error
                              * naming each such setting and keeps running its configuration,
                              * all of it (counted in keel_reload_refused_total{role}) */
};

/* One role's operations. Every function runs on the control thread, on the node's loop, and
 * gets the role's state as its start left it, NULL included (a role with nothing to run on
 * this node still sees reloads, so that it can refuse one that gives it something). Only
 * name, start, reload, stop, drained, metrics, status and free are required. */
struct role_ops {
    const char *name; /* "lb": in logs and in the role label of metrics */

    /* Before any role starts: declare what the others' start needs (vrrp: the gates of its
     * virtual IPs, before the lb opens its listeners). conf is borrowed. */
    void (*prepare)(struct role_node *node, const struct conf *conf);

    /* Boot: start whatever this node runs of the role on gen (hold gen with gen_ref while it
     * runs on it). Sets *state (NULL: nothing to run here). A negative return (eb says why)
     * stops the node: the roles already started are freed and keel exits. */
    int (*start)(struct role_node *node, struct gen *gen, void **state, struct errbuf *eb);

    /* Reload, first step (optional): build what the role needs from gen without changing what
     * runs (the lb opens its new listeners). A negative return (eb says why) refuses the whole
     * reload: the roles already built are told to discard, nothing changes anywhere. */
    int (*build)(struct role_node *node, void *state, struct gen *gen, struct errbuf *eb);
    void (*discard)(struct role_node *node, void *state); /* drop what build made */

    /* Reload, second step: run gen. A change that cannot be applied live is refused, and
     * then nothing of the role's configuration changes. Called in table order, after every
     * build succeeded. */
    enum role_reload (*reload)(struct role_node *node, void *state, struct gen *gen);

    /* Every 50 ms (optional): timers that are not worth their own, facts for other roles
     * (role_node.can_serve). Called in table order. */
    void (*tick)(struct role_node *node, void *state);

    /* Graceful stop (SIGTERM): stop taking new work, finish or hand over the rest. Roles with
     * waits_for_handover are stopped only once every role's handed_over says true. */
    void (*stop)(struct role_node *node, void *state);
    bool (*handed_over)(void *state); /* optional: peers took over what we held */
    bool waits_for_handover;
    /* After stop: true once nothing of the role runs anymore (polled every tick). The node
     * waits for every role, up to timeout_drain for those with drain_has_deadline (the lb's
     * connections); the others bound their own stop (SIGKILL after an app's stop_timeout). */
    bool (*drained)(void *state);
    bool drain_has_deadline;

    /* A role that owns virtual addresses changed its hold on ip (optional). */
    void (*on_hold)(struct role_node *node, void *state, struct in_addr ip, enum role_hold hold);

    /* /metrics: append Prometheus text (nothing when there is nothing to say). */
    void (*metrics)(void *state, struct metrics_out *out);
    /* /status: write this role's members of the node's JSON object into w, each as a key
     * and its value (the node opens and closes the object and writes its own members). */
    void (*status)(void *state, struct json_w *w);

    /* Exit: release everything (may block briefly: reaping children, joining threads). */
    void (*free)(struct role_node *node, void *state);
};

#define ROLE_MAX 8
#define ROLE_MAX_WORKERS 32 /* worker threads of a node (the lb role's data plane) */

/* What the node shares with its roles. Roles never call each other: what one tells another
 * goes through here (facts) or through core/role.h (role_hold). */
struct role_node {
    struct ev_loop *loop;
    const char *name;   /* --node NAME; NULL: the whole file is one node */
    uint32_t n_workers; /* worker threads, fixed at boot (role_node_workers) */
    void *states[ROLE_MAX];
    bool is_stopping;                  /* SIGTERM seen: role stops called or pending */
    bool is_stopped[ROLE_MAX];         /* its stop was called */
    uint64_t reload_refused[ROLE_MAX]; /* keel_reload_refused_total{role} */
    uint64_t gen_ids[ROLE_MAX];        /* the generation each role runs: the one it started
                                        * on or last applied (/status "generations") */
    /* Facts, written by one role's tick, read by others' (table order: lb ticks first). */
    bool can_serve; /* every backend with servers has one up (the lb; vrrp tracking) */
};

#endif
