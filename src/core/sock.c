/* SPDX-License-Identifier: MIT */
/* Socket helpers. Thin wrappers that return -errno and set the options keel always wants. */
#include "core/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int sock_listen(const struct sockaddr *sa, socklen_t salen, bool reuseport, int backlog,
                struct errbuf *eb)
{
    return sock_listen_ex(sa, salen, reuseport ? SOCK_F_REUSEPORT : 0, backlog, eb);
}

int sock_listen_ex(const struct sockaddr *sa, socklen_t salen, unsigned flags, int backlog,
                   struct errbuf *eb)
{
    bool reuseport = (flags & SOCK_F_REUSEPORT) != 0;
    char text[128];
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        int e = errno;
        errbuf_set(eb, "socket() failed: %s", strerror(e));
        return -e;
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)) {
        int e = errno;
        errbuf_set(eb, "setsockopt() failed: %s", strerror(e));
        close(fd);
        return -e;
    }
    if (sa->sa_family == AF_INET6) {
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)); /* best effort */
    }
    if ((flags & SOCK_F_FREEBIND) && sa->sa_family == AF_INET &&
        setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)) == -1) {
        int e = errno;
        errbuf_set(eb, "setsockopt(IP_FREEBIND) failed: %s", strerror(e));
        close(fd);
        return -e;
    }
    if (bind(fd, sa, salen) == -1) {
        int e = errno;
        errbuf_set(eb, "bind() to %s failed: %s", sock_addr_text(sa, text, sizeof(text)),
                   strerror(e));
        close(fd);
        return -e;
    }
    if ((flags & SOCK_F_NO_LISTEN) == 0 && listen(fd, backlog) == -1) {
        int e = errno;
        errbuf_set(eb, "listen() on %s failed: %s", sock_addr_text(sa, text, sizeof(text)),
                   strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

void sock_addr_set_port(struct sockaddr_storage *sa, uint16_t port)
{
    if (sa->ss_family == AF_INET6) {
        ((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
    } else {
        ((struct sockaddr_in *)sa)->sin_port = htons(port);
    }
}

int sock_connect_start(const struct sockaddr *sa, socklen_t salen)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return -errno;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* latency only */
    if (connect(fd, sa, salen) == -1 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int sock_connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
        return -errno;
    }
    return -err;
}

int sock_accept(int lfd, struct sockaddr_storage *peer, socklen_t *peerlen)
{
    *peerlen = sizeof(*peer);
    int fd = accept4(lfd, (struct sockaddr *)peer, peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd == -1) {
        return -errno;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* latency only */
    return fd;
}

void sock_peer_set(union sock_peer *p, const struct sockaddr_storage *ss)
{
    memset(p, 0, sizeof(*p));
    if (ss->ss_family == AF_INET) {
        memcpy(&p->in, ss, sizeof(p->in));
    } else if (ss->ss_family == AF_INET6) {
        memcpy(&p->in6, ss, sizeof(p->in6));
    } else {
        p->sa.sa_family = AF_UNSPEC;
    }
}

/* The dotted quad, written directly: the proxy formats the client's address for every
 * request it forwards (X-Forwarded-For), and inet_ntop's general path costs more. */
static void ipv4_text(const struct in_addr *a, char *out)
{
    const unsigned char *b = (const unsigned char *)&a->s_addr;
    char *p = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100) {
            *p++ = (char)('0' + v / 100);
            v %= 100;
            *p++ = (char)('0' + v / 10);
        } else if (v >= 10) {
            *p++ = (char)('0' + v / 10);
        }
        *p++ = (char)('0' + v % 10);
        *p++ = i < 3 ? '.' : '\0';
    }
}

const char *sock_addr_ip(const struct sockaddr *sa, char *out, size_t outlen)
{
    out[0] = '\0';
    if (sa->sa_family == AF_INET) {
        if (outlen >= 16) {
            ipv4_text(&((const struct sockaddr_in *)sa)->sin_addr, out);
        }
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)outlen);
    }
    return out;
}

const char *sock_addr_text(const struct sockaddr *sa, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN];
    sock_addr_ip(sa, ip, sizeof(ip));
    if (sa->sa_family == AF_INET6) {
        snprintf(out, outlen, "[%s]:%u", ip, ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
    } else {
        snprintf(out, outlen, "%s:%u", ip, ntohs(((const struct sockaddr_in *)sa)->sin_port));
    }
    return out;
}

const void *sock_addr_bytes(const struct sockaddr *sa, unsigned *len)
{
    if (sa->sa_family == AF_INET6) {
        *len = 16;
        return &((const struct sockaddr_in6 *)sa)->sin6_addr;
    }
    *len = 4;
    return &((const struct sockaddr_in *)sa)->sin_addr;
}
