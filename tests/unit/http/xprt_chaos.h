/* SPDX-License-Identifier: MIT */
/* A test transport that wraps TCP and does everything a TLS transport may do to its user,
 * to show that a server or client sits on the transport seam and nowhere else:
 * - it scrambles every byte (XOR), so a byte sent or read past the seam reads as garbage
 *   at the other end;
 * - it writes one byte per call, and says -EAGAIN on every other call with the fd
 *   writable (partial writes, spurious "not now");
 * - it reads up to CHAOS_READ_AHEAD bytes from the socket but hands out one per call, and
 *   reports the rest with has_pending, which no readiness announces (TLS's decrypted
 *   records): a user that does not drain it stalls;
 * - it needs a two-step handshake that waits for writability through events(), and
 *   counts any read or write before the handshake finished as a violation.
 * Static functions for a unit test to include; the counters live in the conf's data. */
#ifndef KEEL_TESTS_UNIT_HTTP_XPRT_CHAOS_H
#define KEEL_TESTS_UNIT_HTTP_XPRT_CHAOS_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/ev.h"
#include "http/http_transport.h"

#define CHAOS_SCRAMBLE 0x5a
#define CHAOS_READ_AHEAD 48

/* What the chaos transports of one instance did (the conf's data). */
struct chaos_stats {
    int fail_handshake; /* set by the test: the handshake's second step fails with it */
    unsigned opens;
    unsigned closes;
    unsigned handshakes;    /* finished */
    unsigned reads;         /* calls */
    unsigned pending_reads; /* bytes handed out from what was read ahead */
    unsigned writes;        /* calls */
    unsigned bytes_written;
    unsigned read_eagains;  /* spurious -EAGAIN said by read */
    unsigned write_eagains; /* ... by write */
    unsigned violations;
};

struct chaos_conn {
    struct chaos_stats *st;
    unsigned char ahead[CHAOS_READ_AHEAD];
    size_t off, len; /* ahead[off, off + len) not handed out yet */
    unsigned tick;
    int hs_step;
    bool is_up;
};

static const struct http_xprt_ops chaos_ops;

static int chaos_open(struct http_xprt *x, int fd, enum http_xprt_side side, void *conf_data)
{
    (void)side;
    struct chaos_conn *cc = calloc(1, sizeof(*cc));
    if (cc == NULL) {
        return -ENOMEM;
    }
    cc->st = conf_data;
    cc->st->opens++;
    x->ops = &chaos_ops;
    x->fd = fd;
    x->ctx = cc;
    x->_w = 0;
    return 0;
}

static int chaos_handshake(struct http_xprt *x)
{
    struct chaos_conn *cc = x->ctx;
    if (cc->is_up) {
        return 0;
    }
    if (cc->hs_step++ == 0) {
        x->_w = EV_WRITE; /* like SSL_ERROR_WANT_WRITE */
        return -EAGAIN;
    }
    x->_w = 0;
    if (cc->st->fail_handshake != 0) {
        return cc->st->fail_handshake;
    }
    cc->is_up = true;
    cc->st->handshakes++;
    return 0;
}

static ssize_t chaos_read(struct http_xprt *x, void *buf, size_t len)
{
    struct chaos_conn *cc = x->ctx;
    cc->st->reads++;
    if (!cc->is_up || len == 0) {
        cc->st->violations++;
    }
    if (cc->len == 0) {
        if ((cc->tick++ & 1) == 0) {
            cc->st->read_eagains++;
            return -EAGAIN; /* the bytes stay in the socket: its readiness stays */
        }
        ssize_t n = http_xprt_tcp_ops.read(x, cc->ahead, sizeof(cc->ahead));
        if (n <= 0) {
            return n;
        }
        for (ssize_t i = 0; i < n; i++) {
            cc->ahead[i] ^= CHAOS_SCRAMBLE;
        }
        cc->off = 0;
        cc->len = (size_t)n;
    } else {
        cc->st->pending_reads++;
    }
    ((unsigned char *)buf)[0] = cc->ahead[cc->off++];
    cc->len--;
    return 1;
}

static bool chaos_has_pending(const struct http_xprt *x)
{
    const struct chaos_conn *cc = x->ctx;
    return cc->len > 0;
}

static ssize_t chaos_write(struct http_xprt *x, const void *buf, size_t len, unsigned flags)
{
    struct chaos_conn *cc = x->ctx;
    cc->st->writes++;
    if (!cc->is_up || len == 0) {
        cc->st->violations++;
    }
    if ((cc->tick++ & 1) == 0) {
        cc->st->write_eagains++;
        return -EAGAIN; /* the fd stays writable: the caller's EV_WRITE fires again */
    }
    unsigned char b = ((const unsigned char *)buf)[0] ^ CHAOS_SCRAMBLE;
    ssize_t n = http_xprt_tcp_ops.write(x, &b, 1, flags);
    if (n > 0) {
        cc->st->bytes_written++;
    }
    return n;
}

static ssize_t chaos_writev(struct http_xprt *x, const struct iovec *iov, int n_iov, unsigned flags)
{
    for (int i = 0; i < n_iov; i++) {
        if (iov[i].iov_len > 0) {
            return chaos_write(x, iov[i].iov_base, iov[i].iov_len, flags);
        }
    }
    return 0;
}

static void chaos_close(struct http_xprt *x)
{
    struct chaos_conn *cc = x->ctx;
    cc->st->closes++;
    free(cc);
    x->ctx = NULL;
    http_xprt_tcp_ops.close(x);
}

static int chaos_connected(struct http_xprt *x)
{
    return http_xprt_tcp_ops.connected(x);
}

static int chaos_shutdown(struct http_xprt *x)
{
    struct chaos_conn *cc = x->ctx;
    if (!cc->is_up) {
        cc->st->violations++;
    }
    return http_xprt_tcp_ops.shutdown(x);
}

static uint32_t chaos_events(const struct http_xprt *x, uint32_t want)
{
    return want | x->_w;
}

static const struct http_xprt_ops chaos_ops = {
    .name = "chaos",
    .open = chaos_open,
    .connected = chaos_connected,
    .handshake = chaos_handshake,
    .read = chaos_read,
    .write = chaos_write,
    .writev = chaos_writev,
    .sendfile = NULL, /* the copy fallback, through chaos_write */
    .shutdown = chaos_shutdown,
    .close = chaos_close,
    .events = chaos_events,
    .has_pending = chaos_has_pending,
};

#endif
