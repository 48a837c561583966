/* SPDX-License-Identifier: MIT */
/* The proxy handler: the server side of an exchange. Choosing a server (queueing while
 * every server is at maxconn), connecting or taking a pooled connection, retrying, sending
 * the request head and body, reading, checking and forwarding the response, and giving the
 * server connection back to the pool. */
#ifndef KEEL_HTTP_HTTP_UPSTREAM_H
#define KEEL_HTTP_HTTP_UPSTREAM_H

struct hp_conn;
struct hp_handler;

extern const struct hp_handler hp_proxy_handler;

/* Proxy c's request (head parsed, still at the start of c->in) to c->ex->be: rewrite the
 * head for the server, then pick a server and connect (HP_STATE_QUEUED, CONNECTING or
 * EXCHANGE), or fail the request (413, 431, 503...). */
void hp_proxy_start(struct hp_conn *c);

#endif
