/* SPDX-License-Identifier: MIT */
/* The one convention for an illegal transition, shared by every state machine (HTTP
 * exchange, TCP session, app process, PostgreSQL instance, VRRP router, db node): each
 * <obj>_set_state checks its table and, for a move the table does not allow, calls
 * fsm_illegal and returns without changing the state. fsm_illegal logs the move at error
 * level, counts it per machine (keel_fsm_illegal_transitions_total{machine=...}) and, in
 * strict mode, aborts so that tests catch it. docs/internals/fsm.md. */
#ifndef KEEL_CORE_FSM_H
#define KEEL_CORE_FSM_H

#include <stdbool.h>
#include <stdint.h>

/* The machines, for the metric's label. */
enum fsm_machine {
    FSM_MACHINE_HTTP = 0, /* an HTTP exchange (http/http_proxy.c) */
    FSM_MACHINE_TCP,      /* a TCP session (lb/lb_tcp.c) */
    FSM_MACHINE_APP,      /* an app process slot (app/app_supervisor.c) */
    FSM_MACHINE_PG,       /* a PostgreSQL instance (db/pg_inst.c) */
    FSM_MACHINE_VRRP,     /* a VRRP virtual router (vrrp/vrrp_fsm.c) */
    FSM_MACHINE_DB,       /* a database node's agent (db/db_fsm.c) */
    FSM_MACHINE_SESSION,  /* a session finding its server (lb/lb_session.c) */
    FSM_MACHINE_CERT,     /* a managed certificate (tls/cert_mgr.c) */
    FSM_MACHINE_ACME      /* an ACME order (tls/acme_order.c) */
};
#define FSM_MACHINE_COUNT 9

/* "http", "tcp", "app", "pg", "vrrp", "db", "session", "cert", "acme"; "?" out
 * of range. */
const char *fsm_machine_name(enum fsm_machine machine);

/* Report a transition from -> to (state names) that machine's table forbids, for object
 * (a name for the log: "conn 12", "app web/0", "db1"; may be NULL) and reason (the
 * caller's, may be NULL). Logs "illegal transition FROM -> TO (REASON), refused" at error
 * level and counts it. The caller must keep the old state. Aborts instead of returning in
 * strict mode: KEEL_FSM_STRICT set and not "0" in the environment (the test suites set it
 * to 1), or, when it is unset, a build with AddressSanitizer. Thread-safe; never blocks
 * beyond the one write of the log line. */
void fsm_illegal(enum fsm_machine machine, const char *object, const char *from, const char *to,
                 const char *reason);

/* Illegal transitions reported for machine since the process started (all threads). */
uint64_t fsm_illegal_count(enum fsm_machine machine);

/* Whether fsm_illegal aborts (see above). Reads the environment on each call. */
bool fsm_is_strict(void);

#endif
