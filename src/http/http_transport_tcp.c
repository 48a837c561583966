/* SPDX-License-Identifier: MIT */
/* The plain TCP transport: the socket calls the HTTP/1 code used to make itself (send and
 * recv rather than write and read: they skip the generic file layer; MSG_NOSIGNAL turns a
 * peer's reset into EPIPE), and the buffer-copy fallback of sendfile shared by transports
 * that cannot hand a file to the kernel. */
#include "http/http_transport.h"

#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

/* The fallback copies at most this much per call: one stack buffer, then a write. */
#define XPRT_COPY_MAX 16384

static ssize_t tcp_read(struct http_xprt *x, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = recv(x->fd, buf, len, 0);
        if (n >= 0) {
            return n;
        }
        if (errno != EINTR) {
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
    }
}

static int send_flags(unsigned flags)
{
    return MSG_NOSIGNAL | ((flags & HTTP_XPRT_MORE) != 0 ? MSG_MORE : 0);
}

static ssize_t tcp_write(struct http_xprt *x, const void *buf, size_t len, unsigned flags)
{
    for (;;) {
        ssize_t n = send(x->fd, buf, len, send_flags(flags));
        if (n >= 0) {
            return n;
        }
        if (errno != EINTR) {
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
    }
}

static ssize_t tcp_writev(struct http_xprt *x, const struct iovec *iov, int n_iov, unsigned flags)
{
    if (n_iov == 1) {
        return tcp_write(x, iov[0].iov_base, iov[0].iov_len, flags);
    }
    struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n_iov};
    for (;;) {
        ssize_t n = sendmsg(x->fd, &msg, send_flags(flags));
        if (n >= 0) {
            return n;
        }
        if (errno != EINTR) {
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
    }
}

static ssize_t tcp_sendfile(struct http_xprt *x, int file_fd, uint64_t *off, size_t len)
{
    for (;;) {
        off_t o = (off_t)*off;
        ssize_t n = sendfile(x->fd, file_fd, &o, len);
        if (n >= 0) {
            *off = (uint64_t)o;
            return n;
        }
        if (errno != EINTR) {
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
    }
}

static int tcp_shutdown(struct http_xprt *x)
{
    if (shutdown(x->fd, SHUT_WR) == -1 && errno != ENOTCONN) {
        return -errno;
    }
    return 0;
}

static void tcp_close(struct http_xprt *x)
{
    (void)close(x->fd); /* Linux releases the fd even on EINTR: never retried */
    x->fd = -1;
}

static int tcp_open(struct http_xprt *x, int fd, enum http_xprt_side side, void *conf_data)
{
    (void)side;
    (void)conf_data;
    http_xprt_tcp_init(x, fd);
    return 0;
}

static int tcp_connected(struct http_xprt *x)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
        return -errno;
    }
    /* SO_ERROR is 0 both when connected and, on a spurious wakeup, while still connecting:
     * the peer's address tells them apart. */
    if (err == 0) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        if (getpeername(x->fd, (struct sockaddr *)&peer, &plen) == -1) {
            return errno == ENOTCONN ? -EAGAIN : -errno;
        }
    }
    return -err;
}

static uint32_t tcp_events(const struct http_xprt *x, uint32_t want)
{
    (void)x;
    return want;
}

const struct http_xprt_ops http_xprt_tcp_ops = {
    .name = "tcp",
    .is_secure = false,
    .open = tcp_open,
    .connected = tcp_connected,
    .handshake = NULL,
    .read = tcp_read,
    .write = tcp_write,
    .writev = tcp_writev,
    .sendfile = tcp_sendfile,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
    .events = tcp_events,
    .has_pending = NULL,
    .info = NULL,
};

void http_xprt_tcp_init(struct http_xprt *x, int fd)
{
    x->ops = &http_xprt_tcp_ops;
    x->fd = fd;
    x->ctx = NULL;
    x->_w = 0;
}

ssize_t http_xprt_sendfile_copy(struct http_xprt *x, int file_fd, uint64_t *off, size_t len)
{
    char chunk[XPRT_COPY_MAX];
    size_t want = len < sizeof(chunk) ? len : sizeof(chunk);
    ssize_t r;
    do {
        r = pread(file_fd, chunk, want, (off_t)*off);
    } while (r == -1 && errno == EINTR);
    if (r <= 0) {
        return r == 0 ? 0 : -errno;
    }
    ssize_t n = http_xprt_write(x, chunk, (size_t)r, 0);
    if (n > 0) {
        *off += (uint64_t)n;
    }
    return n;
}

ssize_t http_xprt_sendfile(struct http_xprt *x, int file_fd, uint64_t *off, size_t len)
{
    if (x->ops->sendfile != NULL) {
        return x->ops->sendfile(x, file_fd, off, len);
    }
    return http_xprt_sendfile_copy(x, file_fd, off, len);
}
