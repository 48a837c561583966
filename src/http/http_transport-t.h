/* SPDX-License-Identifier: MIT */
/* Types of the transport seam under HTTP/1 connections (http_transport.h): an ops table per
 * kind of transport (plain TCP, TLS in src/tls/; HTTP/2 framing next) and the small struct
 * a connection embeds. Types only. */
#ifndef KEEL_HTTP_HTTP_TRANSPORT_T_H
#define KEEL_HTTP_HTTP_TRANSPORT_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct http_xprt;

/* Which end of a connection a transport is opened on: the connection was accepted (a
 * server's), or is being connected (a client's: the non-blocking connect may still be in
 * progress, see `connected`). A TLS transport plays the TLS server or client accordingly. */
enum http_xprt_side { HTTP_XPRT_ACCEPTED = 0, HTTP_XPRT_CONNECTING };

/* Flags for write and writev. */
enum http_xprt_flag {
    HTTP_XPRT_MORE = 1u << 0 /* more bytes follow at once (a head before its body): cork */
};

/* What a transport tells the layers above about a connection (headers, logs). The strings
 * are static, or live as long as the connection's transport. */
struct http_xprt_info {
    const char *version; /* the security protocol ("TLSv1.3"); NULL for plain TCP */
    const char *cipher;  /* its cipher ("TLS_AES_128_GCM_SHA256"); NULL for plain TCP */
    const char *error;   /* why the last operation failed, in the library's words ("no
                          * shared cipher"); NULL when the -errno says it all */
    bool is_resumed;     /* the handshake resumed a session (a TLS ticket) */
};

/* The operations of one kind of transport. Every byte operation returns the bytes moved
 * (>= 0; read returns 0 at EOF), -EAGAIN when the transport cannot move a byte now (ask
 * the loop for the interest `events` gives, then call again), or another -errno when the
 * transport failed. EINTR is retried inside. None blocks. */
struct http_xprt_ops {
    const char *name;
    /* Encrypted and authenticated towards the peer (TLS): a request that came this way is
     * forwarded with X-Forwarded-Proto: https. */
    bool is_secure;
    /* Set x up on socket fd for one connection, on the given side, with the per-instance
     * settings conf_data (struct http_xprt_conf's data; NULL for TCP). Sets every field of
     * x. Returns 0 (x owns fd from then on: close releases it), or -errno (-ENOMEM): x
     * holds nothing and fd is still the caller's to close. Never blocks. */
    int (*open)(struct http_xprt *x, int fd, enum http_xprt_side side, void *conf_data);
    /* The connecting side, when the socket reports readiness during a non-blocking
     * connect: 0 connected, -EAGAIN still in progress (keep waiting for EV_WRITE), or the
     * connect's -errno (-ECONNREFUSED...). */
    int (*connected)(struct http_xprt *x);
    /* Bring the transport up before the first byte, on both sides (once connected): 0
     * ready, -EAGAIN (wait for the interest events(x, 0) gives, then call again), or
     * -errno (-EPROTO, -KEEL_ETLS: the peer failed the handshake; -ECONNABORTED: the peer
     * closed before sending a byte, a port probe rather than a failed handshake). read and
     * write are called only after it returned 0. NULL: nothing to do (TCP). */
    int (*handshake)(struct http_xprt *x);
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
    /* Describe the connection (see struct http_xprt_info). NULL: nothing to say (TCP). */
    void (*info)(const struct http_xprt *x, struct http_xprt_info *out);
};

/* How a server or client instance chooses the transport of its connections: the ops
 * table and the settings every connection of the instance shares (TLS: the context, the
 * peer name to verify, the client certificate). Borrowed by the instance for its life.
 * A NULL conf, or a NULL ops, means plain TCP. */
struct http_xprt_conf {
    const struct http_xprt_ops *ops;
    void *data; /* handed to ops->open as conf_data */
};

/* One connection's transport; embedded in the connection that owns it. */
struct http_xprt {
    const struct http_xprt_ops *ops;
    int fd;      /* the socket; -1 once closed or handed over */
    void *ctx;   /* the transport's own state (TLS: the SSL object); NULL for TCP */
    uint32_t _w; /* internal: what the transport waits for itself (TLS) */
};

#endif
