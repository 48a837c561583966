/* SPDX-License-Identifier: MIT */
/* Socket helpers: listening sockets (SO_REUSEPORT, one per worker), non-blocking connects,
 * address formatting. */
#ifndef KEEL_CORE_SOCK_H
#define KEEL_CORE_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "core/err.h"

/* A non-blocking listening TCP socket bound to sa. With reuseport, several sockets may bind
 * the same address (one per worker thread). Returns the fd or -errno. Fills eb on failure. */
int sock_listen(const struct sockaddr *sa, socklen_t salen, bool reuseport, int backlog,
                struct errbuf *eb) KEEL_MUST_CHECK;

/* Start a non-blocking connect to sa. Returns the fd (connect may be in progress: wait for
 * writability and call sock_connect_result) or -errno. */
int sock_connect_start(const struct sockaddr *sa, socklen_t salen) KEEL_MUST_CHECK;

/* After writability: 0 if connected, else -errno of the failed connect. */
int sock_connect_result(int fd) KEEL_MUST_CHECK;

/* Accept one connection, non-blocking and close-on-exec. Returns the fd or -errno. */
int sock_accept(int lfd, struct sockaddr_storage *peer, socklen_t *peerlen) KEEL_MUST_CHECK;

/* "1.2.3.4" or "::1" (no port) into out; returns out. */
const char *sock_addr_ip(const struct sockaddr *sa, char *out, size_t outlen);
/* "1.2.3.4:80" or "[::1]:80". */
const char *sock_addr_text(const struct sockaddr *sa, char *out, size_t outlen);
/* The raw IP bytes of sa (4 or 16) and their length, for hashing. */
const void *sock_addr_bytes(const struct sockaddr *sa, unsigned *len);

#endif
