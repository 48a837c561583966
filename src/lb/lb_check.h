/* SPDX-License-Identifier: MIT */
/* Active health checks (TCP connect or HTTP request) and the up/down verdict of every
 * server, fed also by the failures workers observe (passive checks). Runs on the control
 * thread's loop, never blocking. */
#ifndef KEEL_LB_LB_CHECK_H
#define KEEL_LB_LB_CHECK_H

#include "core/ev.h"
#include "lb/lb.h"

struct lb_checks;

/* Start checking every server of gen on loop. NULL on OOM. */
struct lb_checks *lb_checks_start(struct ev_loop *loop, struct lb_gen *gen);
/* Stop and free (closes sockets in flight). NULL allowed. */
void lb_checks_stop(struct lb_checks *checks);

/* Turn failures reported by workers into failed checks (call every ~100 ms). */
void lb_checks_poll_passive(struct lb_checks *checks);

/* The one transition function for a server's health: logs "server up/down", counts the
 * transition and republishes the backend's snapshot. Control thread only. */
void lb_server_set_up(struct lb_backend *be, struct lb_server *s, bool up, const char *reason);

#endif
