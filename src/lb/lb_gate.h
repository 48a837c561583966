/* SPDX-License-Identifier: MIT */
/* Listener gates: frontend binds on a virtual IP listen only while this node holds that
 * address (VRRP master). A gated listener is bound (IP_FREEBIND) but not listening while the
 * gate is closed, so another node on the same host (loopback mode) or the master elsewhere
 * gets every connection. The control thread opens and closes gates; workers poll a gated
 * listener only while its gate is open. Gates are never freed: pointers stay valid. */
#ifndef KEEL_LB_LB_GATE_H
#define KEEL_LB_LB_GATE_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#define LB_GATE_MAX 64

struct lb_gate {
    struct in_addr ip;
    _Atomic bool is_open;
};

struct lb_gen;

/* Declare ip gated (control thread, before lb_gen_listen): a new gate starts closed; an
 * existing one keeps its state. NULL when the table is full. */
struct lb_gate *lb_gate_define(struct in_addr ip);

/* The gate of a bind address, or NULL when the address is not gated. */
struct lb_gate *lb_gate_find(const struct sockaddr *sa);

/* Open or close a gate: listen() or shutdown() every socket of gen bound to its address, then
 * publish the state. The caller wakes the workers (lb_worker_poke) afterwards. */
void lb_gate_set(struct lb_gate *g, struct lb_gen *gen, bool is_open);

/* An open gate whose address is being handed over: its listeners keep listening (the
 * handshakes under way complete, nothing is refused) but silently drop new SYNs, which the
 * clients retransmit (after 1 s on Linux) to the node that holds the address by then. Opening
 * the gate again (lb_gate_set) lifts it; closing it stops the listening anyway. */
void lb_gate_quiesce(struct lb_gate *g, struct lb_gen *gen);

#endif
