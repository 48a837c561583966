/* SPDX-License-Identifier: MIT */
/* Unit tests for src/http/http_transport_tcp.c: the TCP transport over a socketpair (read,
 * write, writev, sendfile, EOF, -EAGAIN, shutdown, close) and the buffer-copy fallback of
 * sendfile that transports without a kernel sendfile (TLS) use. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/ev.h"
#include "http/http_transport_tcp.c"

/* A connected non-blocking pair: *a wrapped in a TCP transport, *peer the raw other end. */
static void make_pair(struct http_xprt *x, int *peer)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    http_xprt_tcp_init(x, sv[0]);
    *peer = sv[1];
}

static int temp_file(const char *content, size_t len)
{
    char path[] = "/tmp/keel-xprt-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    unlink(path);
    cr_assert_eq(write(fd, content, len), (ssize_t)len);
    return fd;
}

static void read_exactly(int fd, char *out, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, out + got, len - got);
        cr_assert(n > 0, "read: %zd", n);
        got += (size_t)n;
    }
}

Test(xprt_tcp, read_write_writev_eof)
{
    struct http_xprt x;
    int peer;
    make_pair(&x, &peer);
    cr_assert_str_eq(x.ops->name, "tcp");
    char buf[64];
    cr_assert_eq(http_xprt_read(&x, buf, sizeof(buf)), -EAGAIN);
    cr_assert_eq(write(peer, "hello", 5), 5);
    cr_assert_eq(http_xprt_read(&x, buf, sizeof(buf)), 5);
    cr_assert_eq(memcmp(buf, "hello", 5), 0);

    cr_assert_eq(http_xprt_write(&x, "abc", 3, HTTP_XPRT_MORE), 3);
    struct iovec iov[2] = {{.iov_base = "de", .iov_len = 2}, {.iov_base = "fgh", .iov_len = 3}};
    cr_assert_eq(http_xprt_writev(&x, iov, 2, 0), 5);
    read_exactly(peer, buf, 8);
    cr_assert_eq(memcmp(buf, "abcdefgh", 8), 0);

    cr_assert_eq(http_xprt_events(&x, EV_READ | EV_WRITE), EV_READ | EV_WRITE);
    cr_assert_not(http_xprt_has_pending(&x));
    close(peer);
    cr_assert_eq(http_xprt_read(&x, buf, sizeof(buf)), 0); /* EOF */
    http_xprt_close(&x);
    cr_assert_eq(x.fd, -1);
    http_xprt_close(&x); /* twice: nothing */
}

Test(xprt_tcp, write_full_is_eagain_and_error_is_errno)
{
    struct http_xprt x;
    int peer;
    make_pair(&x, &peer);
    char chunk[65536];
    memset(chunk, 'x', sizeof(chunk));
    ssize_t n;
    int guard = 0;
    while ((n = http_xprt_write(&x, chunk, sizeof(chunk), 0)) > 0 && guard++ < 10000) {
    }
    cr_assert_eq(n, -EAGAIN);
    close(peer);
    n = http_xprt_write(&x, chunk, 1, 0);
    cr_assert(n == -EPIPE || n == -ECONNRESET, "write after the peer left: %zd", n);
    http_xprt_close(&x);
}

Test(xprt_tcp, shutdown_sends_eof_read_side_stays)
{
    struct http_xprt x;
    int peer;
    make_pair(&x, &peer);
    cr_assert_eq(http_xprt_write(&x, "bye", 3, 0), 3);
    cr_assert_eq(http_xprt_shutdown(&x), 0);
    char buf[8];
    read_exactly(peer, buf, 3);
    cr_assert_eq(read(peer, buf, sizeof(buf)), 0); /* EOF after the bytes */
    cr_assert_eq(write(peer, "ok", 2), 2);         /* the other direction still flows */
    cr_assert_eq(http_xprt_read(&x, buf, sizeof(buf)), 2);
    http_xprt_close(&x);
    close(peer);
}

Test(xprt_tcp, sendfile_kernel_path)
{
    struct http_xprt x;
    int peer;
    make_pair(&x, &peer);
    int fd = temp_file("0123456789", 10);
    uint64_t off = 2;
    cr_assert_eq(http_xprt_sendfile(&x, fd, &off, 5), 5);
    cr_assert_eq(off, 7);
    char buf[8];
    read_exactly(peer, buf, 5);
    cr_assert_eq(memcmp(buf, "23456", 5), 0);
    cr_assert_eq(http_xprt_sendfile(&x, fd, &off, 10), 3); /* to the end of the file */
    cr_assert_eq(http_xprt_sendfile(&x, fd, &off, 10), 0); /* the file ended early */
    close(fd);
    http_xprt_close(&x);
    close(peer);
}

/* A transport without a kernel sendfile: the seam copies through a buffer. */
static struct http_xprt_ops nosendfile_ops;

Test(xprt_tcp, sendfile_fallback_copies_and_resumes)
{
    nosendfile_ops = http_xprt_tcp_ops;
    nosendfile_ops.name = "copy";
    nosendfile_ops.sendfile = NULL;
    struct http_xprt x;
    int peer;
    make_pair(&x, &peer);
    x.ops = &nosendfile_ops;

    size_t size = 3 * XPRT_COPY_MAX + 123; /* several pieces */
    char *content = malloc(size);
    for (size_t i = 0; i < size; i++) {
        content[i] = (char)('a' + i % 26);
    }
    int fd = temp_file(content, size);
    uint64_t off = 1;
    size_t left = size - 1;
    char *got = malloc(size);
    size_t got_len = 0;
    while (left > 0) {
        ssize_t n = http_xprt_sendfile(&x, fd, &off, left);
        if (n == -EAGAIN) {
            /* The socket is full: the reader drains it, the writer resumes at off. */
            ssize_t r = read(peer, got + got_len, size - got_len);
            cr_assert(r > 0);
            got_len += (size_t)r;
            continue;
        }
        cr_assert(n > 0 && (size_t)n <= XPRT_COPY_MAX, "piece %zd", n);
        left -= (size_t)n;
    }
    cr_assert_eq(off, size);
    cr_assert_eq(http_xprt_sendfile(&x, fd, &off, 1), 0); /* past the end: the file shrank */
    http_xprt_close(&x);
    for (;;) {
        ssize_t r = read(peer, got + got_len, size - got_len);
        if (r <= 0) {
            break;
        }
        got_len += (size_t)r;
    }
    cr_assert_eq(got_len, size - 1);
    cr_assert_eq(memcmp(got, content + 1, size - 1), 0);
    free(content);
    free(got);
    close(fd);
    close(peer);
}

Test(xprt_tcp, move_hands_the_socket_over)
{
    struct http_xprt x, y;
    int peer;
    make_pair(&x, &peer);
    int fd = x.fd;
    http_xprt_move(&y, &x);
    cr_assert_eq(y.fd, fd);
    cr_assert_eq(x.fd, -1);
    http_xprt_close(&x); /* closes nothing */
    cr_assert_eq(http_xprt_write(&y, "z", 1, 0), 1);
    http_xprt_close(&y);
    close(peer);
}

Test(xprt_tcp, open_by_conf_connected_and_handshake)
{
    /* A NULL conf, and a conf without ops, both choose TCP; open takes the fd. */
    struct http_xprt_conf plain = {.ops = NULL, .data = NULL};
    cr_assert_str_eq(http_xprt_conf_name(NULL), "tcp");
    cr_assert_str_eq(http_xprt_conf_name(&plain), "tcp");

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert(lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t salen = sizeof(sa);
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, salen), 0);
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sa, &salen), 0);

    /* Not yet connected (no connect issued): "still in progress", not success. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct http_xprt x;
    cr_assert_eq(http_xprt_open(&x, &plain, fd, HTTP_XPRT_CONNECTING), 0);
    cr_assert_eq(x.fd, fd);
    cr_assert_eq(http_xprt_connected(&x), -EAGAIN);
    cr_assert_eq(http_xprt_handshake(&x), 0); /* TCP has none */
    http_xprt_close(&x);
    cr_assert_eq(x.fd, -1);

    /* Refused: the listener does not listen. */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert_eq(http_xprt_open(&x, NULL, fd, HTTP_XPRT_CONNECTING), 0);
    int rc = connect(fd, (struct sockaddr *)&sa, salen);
    cr_assert(rc == 0 || errno == EINPROGRESS || errno == ECONNREFUSED);
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    cr_assert_eq(poll(&p, 1, 5000), 1);
    cr_assert_eq(http_xprt_connected(&x), -ECONNREFUSED);
    http_xprt_close(&x);

    /* Connected. */
    cr_assert_eq(listen(lfd, 4), 0);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert_eq(http_xprt_open(&x, NULL, fd, HTTP_XPRT_CONNECTING), 0);
    rc = connect(fd, (struct sockaddr *)&sa, salen);
    cr_assert(rc == 0 || errno == EINPROGRESS);
    p.fd = fd;
    cr_assert_eq(poll(&p, 1, 5000), 1);
    cr_assert_eq(http_xprt_connected(&x), 0);
    http_xprt_close(&x);
    close(lfd);
}
