/* SPDX-License-Identifier: MIT */
/* The session path: from a client (an HTTP request to proxy, a TCP connection to relay) to
 * a connected server. One path for both modes: pick a server through the backend's
 * algorithm (maxconn, backups, down and disabled servers, passive failures), wait in the
 * backend's bounded queue while every server is at maxconn (timeout_queue), connect
 * without blocking (timeout_connect), and on a failed connect report the server and retry
 * on another one (retries). The owner embeds a struct lb_session (lb_session-t.h) and
 * hears back through its ops. What is HTTP's alone (pooled keep-alive connections, replay
 * of a request the server may have seen) stays in http_upstream.c; it calls
 * lb_session_retry and lb_session_reconnect. Worker threads only. */
#ifndef KEEL_LB_LB_SESSION_H
#define KEEL_LB_LB_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "lb/lb_session-t.h"

/* Set up s for a new client of be on worker w (all borrowed; peer must outlive s): idle,
 * holding nothing, with the backend's retries. Never fails. */
void lb_session_init(struct lb_session *s, struct lb_worker *w, struct lb_backend *be,
                     const struct sockaddr *peer, const struct lb_session_ops *ops, void *owner);

/* Find a server for an idle s: take a slot and connect (on_slot, then on_connected later
 * or at once for a pooled connection), queue (on_queued), or give up (on_error). */
void lb_session_start(struct lb_session *s);

/* The owner's server connection failed after s was connected (the owner has dropped it and
 * counted the failure). Release the slot; when retries are left, use one (counted in
 * keel_backend_retries_total) and start again on another server, returning true; else
 * return false, s is idle and the owner answers. */
bool lb_session_retry(struct lb_session *s) KEEL_MUST_CHECK;

/* A connected s lost its connection before the server saw anything (a pooled connection
 * the server had closed): connect again to the same server, keeping the slot. */
void lb_session_reconnect(struct lb_session *s);

/* Drop what s holds: its place in the queue, its timer, its slot (waking the queue). The
 * owner's server connection is the owner's to close. s is idle after; idempotent. */
void lb_session_release(struct lb_session *s);

/* Hand the slot of a connected s to the caller (an HTTP tunnel), which releases it later
 * with lb_server_release. s is idle after. */
struct lb_server *lb_session_take_slot(struct lb_session *s);

/* ---------------------------------------------------------------- pure parts */

/* What to do after lb_backend_pick returned pick_rc (0, -EBUSY or another error) with
 * queued sessions already waiting on the backend of queue_max. */
enum lb_session_verdict {
    LB_SESSION_GO_CONNECT = 0, /* a slot was taken */
    LB_SESSION_GO_QUEUE,       /* every server at maxconn, room in the queue */
    LB_SESSION_GO_QUEUE_FULL,  /* every server at maxconn, the queue is full (or off: 0) */
    LB_SESSION_GO_NO_SERVER    /* no server up */
};
enum lb_session_verdict lb_session_after_pick(int pick_rc, uint32_t queued, uint32_t queue_max);

/* Whether lb_session's table allows from -> to. */
bool lb_session_transition_ok(enum lb_session_state from, enum lb_session_state to);

/* "idle", "queued", "connecting", "connected"; "?" out of range. */
const char *lb_session_state_name(enum lb_session_state state);

/* The HTTP status that answers err: 502 for a failed connect, 504 for a timed out one, 503
 * for the others (no server, queue full or timed out, out of descriptors or memory). */
int lb_session_err_status(enum lb_session_err err);

/* A short description of err for logs ("no server available", ...). */
const char *lb_session_err_str(enum lb_session_err err);

#endif
