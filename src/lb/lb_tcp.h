/* SPDX-License-Identifier: MIT */
/* TCP mode: a plain byte relay between a client and a server chosen by the backend, with
 * the same balancing and health checks as HTTP. */
#ifndef KEEL_LB_LB_TCP_H
#define KEEL_LB_LB_TCP_H

#include <sys/socket.h>

struct lb_worker;
struct lb_frontend;

/* Take ownership of an accepted client socket fd on worker w. */
void tcp_conn_accept(struct lb_worker *w, struct lb_frontend *fe, int fd,
                     const struct sockaddr_storage *peer);

#endif
