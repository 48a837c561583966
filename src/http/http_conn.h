/* SPDX-License-Identifier: MIT */
/* The client connection's interface for the handlers that answer its requests
 * (http_upstream.c, http_local.c) and for the files that work on a connection
 * (http_reply.c, http_tunnel.c). The connection (http_proxy.c) owns the client socket, its
 * buffers, its timer and its state; handlers call these to report progress, fail a request
 * or hand the connection over. Internal to src/http; nothing here blocks. */
#ifndef KEEL_HTTP_HTTP_CONN_H
#define KEEL_HTTP_HTTP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "http/http_proxy-t.h"

/* The one transition function of enum hp_state: refuses to leave CLOSED, logs at debug. */
void hp_conn_set_state(struct hp_conn *c, enum hp_state to, const char *reason);

/* Close the connection now: the handler's state is released, the socket closed, the
 * struct freed at the end of the loop iteration (c stays valid until then). */
void hp_conn_close(struct hp_conn *c, const char *reason);

/* Close after what is already written: shut the write side, then discard input until the
 * client closes (HP_STATE_LINGER). */
void hp_conn_linger(struct hp_conn *c);

/* Answer the current request with an error response made by keel and close after it
 * (HP_STATE_REPLY); when part of a response already reached the client, close at once. */
void hp_conn_fail(struct hp_conn *c, int status, const char *detail);

/* Run the connection's state machine until it stops moving, then set timers and interest.
 * For callbacks of the handlers' own events (a server socket, the wait queue). */
void hp_conn_step(struct hp_conn *c);

/* The connection was handed over (to a tunnel, which took its socket and buffered bytes):
 * free c at the end of the loop iteration without closing anything. */
void hp_conn_handed_over(struct hp_conn *c, const char *reason);

/* Whether c->in can take more bytes, if need be after compacting or growing, and the
 * largest it may grow to (a whole request head plus some pipelined bytes). */
bool hp_conn_in_can_take_more(const struct hp_conn *c);
size_t hp_conn_in_max(const struct hp_conn *c);

/* Account for the finished request (metrics, access log line). */
void hp_exchange_account(struct hp_conn *c);

/* The response is out (or queued in c->out): go on with the next request (keep-alive), or
 * close after what is queued. The handler's state was released. */
void hp_exchange_done(struct hp_conn *c);

/* Body framing: start, then scan the next bytes p[0, len) of a body; *n = how many belong to
 * it. on_data (may be NULL) sees the payload bytes (de-chunking). Returns 0 or
 * -KEEL_EHTTP_BAD_REQUEST on malformed chunked framing. */
void hp_body_init(struct hp_body *b, enum http_body_kind kind, uint64_t length);
int hp_body_scan(struct hp_body *b, const char *p, size_t len, size_t *n,
                 http_chunk_data_fn on_data, void *ctx);

#endif
