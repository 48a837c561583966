/* SPDX-License-Identifier: MIT */
/* Types of the transport seam under HTTP/1 connections (http_transport.h): an ops table per
 * kind of transport (plain TCP today; TLS and HTTP/2 framing next) and the small struct a
 * connection embeds. Types only. */
#ifndef KEEL_HTTP_HTTP_TRANSPORT_T_H
#define KEEL_HTTP_HTTP_TRANSPORT_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct http_xprt;

/* Flags for write and writev. */
enum http_xprt_flag {
    HTTP_XPRT_MORE = 1u << 0 /* more bytes follow at once (a head before its body): cork */
};

/* The operations of one kind of transport. Every byte operation returns the bytes moved
 * (>= 0; read returns 0 at EOF), -EAGAIN when the transport cannot move a byte now (ask
 * the loop for the interest `events` gives, then call again), or another -errno when the
 * transport failed. EINTR is retried inside. None blocks. */
struct http_xprt_ops {
    const char *name;
    ssize_t (*read)(struct http_xprt *x, void *buf, size_t len);
    ssize_t (*write)(struct http_xprt *x, const void *buf, size_t len, unsigned flags);
    ssize_t (*writev)(struct http_xprt *x, const struct iovec *iov, int n_iov, unsigned flags);
    /* len bytes of file_fd from *off, *off advanced by what was sent; 0 when the file
     * ended early. NULL when the transport cannot hand a file to the kernel (TLS without
     * kTLS): http_xprt_sendfile then copies through a buffer. */
    ssize_t (*sendfile)(struct http_xprt *x, int file_fd, uint64_t *off, size_t len);
    /* Close the write side once what was written is out (TCP FIN; TLS close_notify).
     * Returns 0 or -errno (-EAGAIN: call again when writable). */
    int (*shutdown)(struct http_xprt *x);
    /* Release the transport and close its descriptor. Never fails. */
    void (*close)(struct http_xprt *x);
    /* The fd interest (EV_READ/EV_WRITE) that serves what the caller wants to do (want,
     * EV_READ/EV_WRITE). Identity for TCP; TLS adds what a handshake or a renegotiation
     * waits for (OpenSSL's WANT_READ/WANT_WRITE). */
    uint32_t (*events)(const struct http_xprt *x, uint32_t want);
    /* Whether read has bytes without the fd being readable (decrypted bytes kept inside
     * the transport). NULL: never. */
    bool (*has_pending)(const struct http_xprt *x);
};

/* One connection's transport; embedded in the connection that owns it. */
struct http_xprt {
    const struct http_xprt_ops *ops;
    int fd;      /* the socket; -1 once closed or handed over */
    void *ctx;   /* the transport's own state (TLS: the SSL object); NULL for TCP */
    uint32_t _w; /* internal: what the transport waits for itself (TLS) */
};

#endif
