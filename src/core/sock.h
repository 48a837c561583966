/* SPDX-License-Identifier: MIT */
/* Socket helpers: listening sockets (SO_REUSEPORT, one per worker), non-blocking connects,
 * address formatting. */
#ifndef KEEL_CORE_SOCK_H
#define KEEL_CORE_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/err.h"

/* A non-blocking listening TCP socket bound to sa. With reuseport, several sockets may bind
 * the same address (one per worker thread). Returns the fd or -errno. Fills eb on failure. */
enum sock_flags {
    SOCK_F_REUSEPORT = 1u << 0, /* SO_REUSEPORT */
    SOCK_F_FREEBIND = 1u << 1,  /* IP_FREEBIND: bind an address this host does not have (yet) */
    SOCK_F_NO_LISTEN = 1u << 2  /* bind only; listen() later (a gated virtual IP) */
};
/* sock_listen with flags (enum sock_flags). */
int sock_listen_ex(const struct sockaddr *sa, socklen_t salen, unsigned flags, int backlog,
                   struct errbuf *eb) KEEL_MUST_CHECK;
int sock_listen(const struct sockaddr *sa, socklen_t salen, bool reuseport, int backlog,
                struct errbuf *eb) KEEL_MUST_CHECK;

/* Set the port of an IPv4 or IPv6 socket address. */
void sock_addr_set_port(struct sockaddr_storage *sa, uint16_t port);

/* Start a non-blocking connect to sa. Returns the fd (connect may be in progress: wait for
 * writability and call sock_connect_result) or -errno. */
int sock_connect_start(const struct sockaddr *sa, socklen_t salen) KEEL_MUST_CHECK;

/* After writability: 0 if connected, else -errno of the failed connect. */
int sock_connect_result(int fd) KEEL_MUST_CHECK;

/* Accept one connection, non-blocking and close-on-exec. Returns the fd or -errno. */
int sock_accept(int lfd, struct sockaddr_storage *peer, socklen_t *peerlen) KEEL_MUST_CHECK;

/* A client's address as a connection keeps it: IPv4 or IPv6, 28 bytes where a
 * sockaddr_storage takes 128 (an idle connection is mostly its struct). */
union sock_peer {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

/* Keep an accepted peer address (AF_INET or AF_INET6; anything else is kept as AF_UNSPEC). */
void sock_peer_set(union sock_peer *p, const struct sockaddr_storage *ss);

/* The longest text sock_addr_ip writes, its NUL included (INET6_ADDRSTRLEN). */
#define SOCK_IP_MAX 46

/* "1.2.3.4" or "::1" (no port) into out (outlen >= SOCK_IP_MAX for any address); returns
 * out, "" for another family. */
const char *sock_addr_ip(const struct sockaddr *sa, char *out, size_t outlen);
/* "1.2.3.4:80" or "[::1]:80". */
const char *sock_addr_text(const struct sockaddr *sa, char *out, size_t outlen);
/* The raw IP bytes of sa (4 or 16) and their length, for hashing. */
const void *sock_addr_bytes(const struct sockaddr *sa, unsigned *len);

/* Data-path I/O on connected sockets. send/recv instead of write/read: the socket calls skip
 * the generic file layer (file position lock, iov_iter over the VFS), and MSG_NOSIGNAL
 * makes a peer's reset an EPIPE rather than a signal. Return what the syscalls return. */
static inline ssize_t sock_recv(int fd, void *buf, size_t len)
{
    return recv(fd, buf, len, 0);
}

static inline ssize_t sock_sendv(int fd, struct iovec *iov, int n_iov)
{
    if (n_iov == 1) {
        return send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    }
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n_iov};
    return sendmsg(fd, &msg, MSG_NOSIGNAL);
}

#endif
