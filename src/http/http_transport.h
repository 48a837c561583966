/* SPDX-License-Identifier: MIT */
/* The transport seam: HTTP/1 connections (the proxy's, the embedded server's, the async
 * client's) and the TCP probes read, write, send files and close through a struct
 * http_xprt, never through the socket, so that TLS (and later HTTP/2 framing) is a layer
 * under the same handlers, as HAProxy's xprt_ops and Redis's ConnectionType are. Plain TCP
 * (http_transport_tcp.c) is the first implementation; a server or client instance chooses
 * another with a struct http_xprt_conf. The calls below dispatch through x->ops; see struct
 * http_xprt_ops for the contract and docs/internals/transport.md for fd ownership and the
 * readiness mapping. */
#ifndef KEEL_HTTP_HTTP_TRANSPORT_H
#define KEEL_HTTP_HTTP_TRANSPORT_H

#include "http/http_transport-t.h"

/* The plain TCP transport on connected socket fd (takes ownership of fd: http_xprt_close
 * closes it). Never fails. */
void http_xprt_tcp_init(struct http_xprt *x, int fd);

/* The TCP operations table, for tests and for transports that wrap TCP. */
extern const struct http_xprt_ops http_xprt_tcp_ops;

/* Open the transport conf chooses (NULL: TCP) on socket fd: see ops->open. */
static inline int http_xprt_open(struct http_xprt *x, const struct http_xprt_conf *conf, int fd,
                                 enum http_xprt_side side)
{
    const struct http_xprt_ops *ops =
        conf != NULL && conf->ops != NULL ? conf->ops : &http_xprt_tcp_ops;
    return ops->open(x, fd, side, conf != NULL ? conf->data : NULL);
}

/* The name of the transport conf chooses, for logs ("tcp"). */
static inline const char *http_xprt_conf_name(const struct http_xprt_conf *conf)
{
    return conf != NULL && conf->ops != NULL ? conf->ops->name : http_xprt_tcp_ops.name;
}

/* Whether the non-blocking connect of x completed: see ops->connected. */
static inline int http_xprt_connected(struct http_xprt *x)
{
    return x->ops->connected(x);
}

/* Bring x up before its first byte: see ops->handshake (0 at once when it has none). */
static inline int http_xprt_handshake(struct http_xprt *x)
{
    return x->ops->handshake != NULL ? x->ops->handshake(x) : 0;
}

/* Bring a connecting transport up, one readiness at a time: the connect's completion, then
 * the handshake. *is_connected (false at the start) remembers the first step. Returns 0
 * once up; -EAGAIN while not (watch http_xprt_events(x, *is_connected ? 0 : EV_WRITE)); or
 * the -errno of the step that failed (*is_connected: the handshake's, else the connect's).
 * For users that only bring a connection up (TCP health probes); the HTTP client runs the
 * two steps as states of its own. */
static inline int http_xprt_connect_step(struct http_xprt *x, bool *is_connected)
{
    if (!*is_connected) {
        int rc = x->ops->connected(x);
        if (rc != 0) {
            return rc;
        }
        *is_connected = true;
    }
    return x->ops->handshake != NULL ? x->ops->handshake(x) : 0;
}

static inline ssize_t http_xprt_read(struct http_xprt *x, void *buf, size_t len)
{
    return x->ops->read(x, buf, len);
}

static inline ssize_t http_xprt_write(struct http_xprt *x, const void *buf, size_t len,
                                      unsigned flags)
{
    return x->ops->write(x, buf, len, flags);
}

static inline ssize_t http_xprt_writev(struct http_xprt *x, const struct iovec *iov, int n_iov,
                                       unsigned flags)
{
    return x->ops->writev(x, iov, n_iov, flags);
}

/* Send up to len bytes of file_fd from *off: the transport's sendfile, or when it has none
 * http_xprt_sendfile_copy. Same returns as the ops. */
ssize_t http_xprt_sendfile(struct http_xprt *x, int file_fd, uint64_t *off, size_t len);

/* The fallback of sendfile: pread a bounded piece of the file into a stack buffer and
 * write it. Bytes read but not written are read again by the next call (same offset, so
 * the same bytes: what a TLS retry after WANT_WRITE needs). Returns what write returns,
 * 0 when the file ended early, or -errno of pread. Never blocks on the network; reads a
 * local file. */
ssize_t http_xprt_sendfile_copy(struct http_xprt *x, int file_fd, uint64_t *off, size_t len);

static inline int http_xprt_shutdown(struct http_xprt *x)
{
    return x->ops->shutdown(x);
}

/* Close the transport and its socket; x->fd becomes -1. Safe to call twice. */
static inline void http_xprt_close(struct http_xprt *x)
{
    if (x->ops != NULL && x->fd != -1) {
        x->ops->close(x);
    }
}

static inline uint32_t http_xprt_events(const struct http_xprt *x, uint32_t want)
{
    return x->ops->events(x, want);
}

static inline bool http_xprt_has_pending(const struct http_xprt *x)
{
    return x->ops->has_pending != NULL && x->ops->has_pending(x);
}

/* Whether x is encrypted towards its peer (TLS): see ops->is_secure. */
static inline bool http_xprt_is_secure(const struct http_xprt *x)
{
    return x->ops->is_secure;
}

/* Describe x for headers and logs: every field NULL for a transport with nothing to say. */
static inline void http_xprt_get_info(const struct http_xprt *x, struct http_xprt_info *out)
{
    out->version = out->cipher = out->error = NULL;
    out->is_resumed = false;
    if (x->ops->info != NULL) {
        x->ops->info(x, out);
    }
}

/* Hand x's socket and state to another owner (a tunnel): *to becomes x, x is cleared so
 * that closing it does nothing. */
static inline void http_xprt_move(struct http_xprt *to, struct http_xprt *x)
{
    *to = *x;
    x->fd = -1;
    x->ctx = NULL;
}

#endif
