/* SPDX-License-Identifier: MIT */
/* Protocol upgrades (RFC 9110 section 7.8): which requests keel lets a server upgrade, and
 * the two-way tunnel a connection becomes after 101 Switching Protocols (WebSocket, RFC 6455
 * section 4). The HTTP state machine (http_proxy.c) decides when; this file owns the tunnel
 * from then on: its sockets, buffers, idle timer and metrics. */
#ifndef KEEL_HTTP_HTTP_TUNNEL_H
#define KEEL_HTTP_HTTP_TUNNEL_H

#include <stdbool.h>

#include "core/err.h"
#include "http/http_parse.h"

struct hp_conn;

/* Whether a parsed request asks for an upgrade keel will tunnel: HTTP/1.1, not CONNECT,
 * "Connection: upgrade" and an Upgrade header none of whose protocols is h2c (HTTP/2 over
 * cleartext is refused: the Upgrade is stripped and the request served as HTTP/1.1).
 * buf holds the head msg was parsed from. Pure; never blocks. */
bool http_tunnel_requested(const struct http_msg *req, const char *buf);

/* Turn client connection c into a tunnel after a 101 response. Takes ownership of the
 * client transport c->xp, of the server connection c->ex->h.px.up (its transport; the
 * struct itself is closed), of the server slot c->ex->srv, and copies the bytes pending for
 * the server (c->in) and for the client (c->out, which holds the 101 head, then the server
 * connection's input); c's fields are cleared so that c can be freed without touching them.
 * The caller must have stopped c's io and timer, and frees c afterwards
 * (hp_conn_handed_over). Returns 0, or -ENOMEM (c unchanged: the caller closes it). Never
 * blocks; the first writes are attempted at once. */
int http_tunnel_start(struct hp_conn *c) KEEL_MUST_CHECK;

#endif
