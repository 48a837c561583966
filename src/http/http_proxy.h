/* SPDX-License-Identifier: MIT */
/* The HTTP/1.1 reverse proxy: one client connection carrying a sequence of exchanges
 * (keep-alive, pipelining), each forwarded to a server chosen by the frontend's backend. */
#ifndef KEEL_HTTP_HTTP_PROXY_H
#define KEEL_HTTP_HTTP_PROXY_H

#include <sys/socket.h>

struct lb_worker;
struct lb_frontend;
struct http_xprt_conf;

/* Take ownership of an accepted client socket fd on worker w, on the transport xprt chooses
 * (NULL: plain TCP; the listener's, borrowed for the connection's life: its generation is
 * held). A transport with a handshake (TLS) runs it first, under the frontend's
 * timeout_handshake. Never fails visibly: on OOM the connection is closed and counted. */
void http_conn_accept(struct lb_worker *w, struct lb_frontend *fe,
                      const struct http_xprt_conf *xprt, int fd,
                      const struct sockaddr_storage *peer);

#endif
