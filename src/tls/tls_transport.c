/* SPDX-License-Identifier: MIT */
/* The TLS transport (tls_transport.h): one SSL object per connection on a BIO of keel's own
 * over the socket (send with MSG_NOSIGNAL, recv, and a look at the first byte a client
 * sends, to answer plain HTTP with a 400), and the ops of the transport seam mapped onto
 * OpenSSL's non-blocking calls. Both sides: accepted connections play the server (a struct
 * tls_ctx), connecting ones the client (a struct tls_client, tls_client.c). Nothing here allocates
 * after the handshake: OpenSSL's record buffers are its own (released while idle,
 * SSL_MODE_RELEASE_BUFFERS), writes are gathered on the stack. */
#include "tls/tls_transport.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/err.h"
#include "core/ev.h"
#include "core/log.h"
#include "http/http_transport.h"
#include "tls/tls_client.h"
#include "tls/tls_ctx.h"

/* A connection's phases. */
enum tls_conn_state {
    TLS_CONN_HANDSHAKE = 0, /* SSL_do_handshake until done; the first byte read tells TLS from
                             * plain HTTP */
    TLS_CONN_OPEN,          /* application data (read, write), then close_notify */
    TLS_CONN_PLAIN,         /* plain HTTP: the 400 is sent, waiting for the client to close */
    TLS_CONN_FAILED         /* a fatal error: no further TLS byte, no close_notify */
};

static const char *const tls_conn_state_names[] = {"handshake", "open", "plain", "failed"};

struct tls_conn {
    SSL *ssl;
    int fd;
    enum tls_conn_state state;
    bool is_first_read; /* no byte read yet: look at the first one (plain HTTP?) */
    bool is_plain;      /* the first byte was plain HTTP: the handshake answers it */
    bool is_more;       /* the write under way corks (HTTP_XPRT_MORE -> MSG_MORE) */
    bool is_shut;       /* close_notify is out */
    bool is_eof;        /* recv returned 0 (BIO_CTRL_EOF: OpenSSL tells an EOF from an error) */
    bool is_client;     /* the connecting side: keel is the TLS client */
    int sys_errno;      /* the socket error the BIO last saw, for SSL_ERROR_SYSCALL */
    int fail_rc;        /* what every call returns once failed */
    const char *reason; /* OpenSSL's reason for the failure (a static string, or why), or NULL */
    char *why;          /* the client's verification failure, spelled out (malloc'd), or NULL */
    /* A write that said -EAGAIN left its record inside OpenSSL, which sends it when the
     * write is retried: the retry must bring the same wpend_len bytes first (checked by
     * their checksum), or the peer would get the old ones in their place. */
    size_t wpend_len;
    uint64_t wpend_sum;
};

/* x->_w: what each operation waits for, as fd interest (EV_READ, EV_WRITE): the handshake's
 * in bits 0-7, read's in 8-15, write's in 16-23. W_UP once the handshake is done; W_SHUT
 * while close_notify waits for room in the socket. */
#define W_HS 0u
#define W_RD 8u
#define W_WR 16u
#define W_UP (1u << 30)
#define W_SHUT (1u << 31)
_Static_assert(((EV_READ | EV_WRITE) & ~0xffu) == 0, "fd interest fits in 8 bits");

static void set_need(struct http_xprt *x, unsigned shift, uint32_t ev)
{
    x->_w = (x->_w & ~(0xffu << shift)) | (ev << shift);
}

static uint32_t need(uint32_t w, unsigned shift)
{
    return (w >> shift) & 0xffu;
}

static void set_state(struct tls_conn *t, enum tls_conn_state to)
{
    log_debug("tls", "conn %d: %s -> %s", t->fd, tls_conn_state_names[t->state],
              tls_conn_state_names[to]);
    t->state = to;
}

void tls_transport_ctx_setup(SSL_CTX *ctx)
{
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
}

bool tls_sniff_is_plain_http(const uint8_t *p, size_t len)
{
    return len > 0 && p[0] >= 'A' && p[0] <= 'Z';
}

/* ---------------------------------------------------------------- the socket BIO */

static ssize_t bio_send(struct tls_conn *t, const void *data, size_t len)
{
    for (;;) {
        ssize_t n = send(t->fd, data, len, MSG_NOSIGNAL | (t->is_more ? MSG_MORE : 0));
        if (n >= 0 || errno != EINTR) {
            return n;
        }
    }
}

static int bio_write(BIO *b, const char *data, int len)
{
    struct tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = bio_send(t, data, (size_t)len);
    if (n >= 0) {
        return (int)n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        BIO_set_retry_write(b);
    } else {
        t->sys_errno = errno;
    }
    return -1;
}

static int bio_read(BIO *b, char *data, int len)
{
    struct tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n;
    do {
        n = recv(t->fd, data, (size_t)len, 0);
    } while (n == -1 && errno == EINTR);
    if (n > 0 && t->is_first_read) {
        /* The first byte tells a TLS record from a plain HTTP request. Failing the read
         * ends the handshake; tls_handshake then answers in clear. */
        t->is_first_read = false;
        if (tls_sniff_is_plain_http((const uint8_t *)data, (size_t)n)) {
            t->is_plain = true;
            return -1;
        }
    }
    if (n >= 0) {
        t->is_eof = n == 0;
        return (int)n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        BIO_set_retry_read(b);
    } else {
        t->sys_errno = errno;
    }
    return -1;
}

/* OpenSSL asks its BIOs for a few things; a socket has a flush (nothing to do) and an EOF
 * to give: with SSL_OP_IGNORE_UNEXPECTED_EOF, an EOF ends the stream like a close_notify. */
static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return ((const struct tls_conn *)BIO_get_data(b))->is_eof ? 1 : 0;
    default:
        return 0;
    }
}

static BIO_METHOD *bio_method_ptr;
static pthread_once_t bio_method_once = PTHREAD_ONCE_INIT;

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "keel socket");
    if (m != NULL && (BIO_meth_set_write(m, bio_write) != 1 ||
                      BIO_meth_set_read(m, bio_read) != 1 || BIO_meth_set_ctrl(m, bio_ctrl) != 1)) {
        BIO_meth_free(m);
        m = NULL;
    }
    bio_method_ptr = m; /* process lifetime: OpenSSL's own cleanup runs at exit */
}

/* ---------------------------------------------------------------- errors */

/* Map a failed SSL call (result r) to the seam's returns: -EAGAIN with what the call
 * waits for stored at shift in x->_w, 0 for the peer's close_notify (or EOF), or the
 * connection's failure: -errno of the socket, -KEEL_ETLS for the protocol (the reason is
 * kept for the logs). OpenSSL's per-thread error queue is emptied: a stale entry would make
 * the next SSL_get_error on this thread lie. */
static ssize_t fail(struct http_xprt *x, struct tls_conn *t, int r, unsigned shift)
{
    int rc;
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        set_need(x, shift, EV_READ);
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        set_need(x, shift, EV_WRITE);
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        rc = t->sys_errno != 0 ? -t->sys_errno : -ECONNRESET; /* EOF mid-record */
        break;
    default: {
        unsigned long e = ERR_peek_last_error();
        t->reason = e != 0 ? ERR_reason_error_string(e) : NULL;
        rc = -KEEL_ETLS;
        break;
    }
    }
    ERR_clear_error();
    t->sys_errno = 0;
    t->fail_rc = rc;
    set_state(t, TLS_CONN_FAILED);
    return rc;
}

/* ---------------------------------------------------------------- plain HTTP */

/* A client spoke plain HTTP to a TLS port. nginx answers 400 in clear text; so does keel,
 * then it waits for the client to close (read and discarded, under the handshake timeout),
 * so that its unread request does not turn the close into a reset that destroys the
 * answer before the client read it. */
static int plain_linger(struct http_xprt *x, struct tls_conn *t)
{
    char sink[4096];
    for (int i = 0; i < 16; i++) {
        ssize_t n = recv(t->fd, sink, sizeof(sink), 0);
        if (n > 0 || (n == -1 && errno == EINTR)) {
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_need(x, W_HS, EV_READ);
            return -EAGAIN;
        }
        return -KEEL_ETLS_PLAIN_HTTP; /* the client closed (or reset): done */
    }
    set_need(x, W_HS, EV_READ);
    return -EAGAIN; /* more to discard: the loop calls again */
}

static int plain_answer(struct http_xprt *x, struct tls_conn *t)
{
    static const char body[] = "400 Bad Request: plain HTTP request sent to an HTTPS port\n";
    char msg[256];
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     sizeof(body) - 1, body);
    ERR_clear_error(); /* the handshake failed on purpose */
    set_state(t, TLS_CONN_PLAIN);
    /* Nothing was sent on this socket yet: the answer fits its buffer. */
    if (n <= 0 || bio_send(t, msg, (size_t)n) != (ssize_t)n || shutdown(t->fd, SHUT_WR) == -1) {
        return -KEEL_ETLS_PLAIN_HTTP;
    }
    return plain_linger(x, t);
}

/* ---------------------------------------------------------------- the ops */

/* conf_data is a struct tls_ctx on the accepted side (keel is the TLS server), a struct
 * tls_client on the connecting side (the client: SNI, verification and the session to
 * resume come from it). */
static int tls_open(struct http_xprt *x, int fd, enum http_xprt_side side, void *conf_data)
{
    if (conf_data == NULL) {
        return -EPROTONOSUPPORT;
    }
    if (pthread_once(&bio_method_once, bio_method_init) != 0 || bio_method_ptr == NULL) {
        return -ENOMEM;
    }
    bool is_client = side == HTTP_XPRT_CONNECTING;
    struct tls_conn *t = calloc(1, sizeof(*t));
    SSL *ssl = is_client ? tls_client_ssl_new(conf_data) : tls_ctx_ssl_new(conf_data);
    BIO *b = BIO_new(bio_method_ptr);
    if (t == NULL || ssl == NULL || b == NULL) {
        BIO_free(b);
        SSL_free(ssl);
        free(t);
        ERR_clear_error();
        return -ENOMEM;
    }
    t->ssl = ssl;
    t->fd = fd;
    t->state = TLS_CONN_HANDSHAKE;
    t->is_client = is_client;
    t->is_first_read = !is_client; /* a server's first byte is never plain HTTP to sniff */
    BIO_set_data(b, t);
    BIO_set_init(b, 1);
    SSL_set_bio(ssl, b, b); /* the SSL owns the BIO */
    if (!is_client) {
        SSL_set_accept_state(ssl); /* the client's state is set by tls_client_ssl_new */
    }
    x->ops = &tls_xprt_ops;
    x->fd = fd;
    x->ctx = t;
    /* A client waits for its connect (writable), then writes its hello; a server reads. */
    x->_w = ((is_client ? EV_WRITE : EV_READ) << W_HS) | (EV_READ << W_RD) | (EV_WRITE << W_WR);
    return 0;
}

/* The connecting side's non-blocking connect: the socket's, as for TCP. */
static int tls_connected(struct http_xprt *x)
{
    return http_xprt_tcp_ops.connected(x);
}

/* The client's handshake failed on the peer's certificate: say why as OpenSSL's verifier
 * does ("certificate verify failed: unable to get local issuer certificate", "...: hostname
 * mismatch"), for the logs and the health checks' reasons. */
static void explain_verify(struct tls_conn *t)
{
    long v = SSL_get_verify_result(t->ssl);
    if (!t->is_client || v == X509_V_OK || t->why != NULL) {
        return;
    }
    const char *what = X509_verify_cert_error_string(v);
    size_t len = strlen("certificate verify failed: ") + strlen(what) + 1;
    t->why = malloc(len);
    if (t->why != NULL) {
        (void)snprintf(t->why, len, "certificate verify failed: %s", what);
        t->reason = t->why;
    }
}

static int tls_handshake(struct http_xprt *x)
{
    struct tls_conn *t = x->ctx;
    switch (t->state) {
    case TLS_CONN_OPEN:
        return 0;
    case TLS_CONN_PLAIN:
        return plain_linger(x, t);
    case TLS_CONN_FAILED:
        return t->fail_rc;
    case TLS_CONN_HANDSHAKE:
        break;
    }
    ERR_clear_error(); /* once per handshake step: nothing stale decides SSL_get_error */
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        set_state(t, TLS_CONN_OPEN);
        x->_w |= W_UP;
        return 0;
    }
    if (t->is_plain) {
        return plain_answer(x, t);
    }
    ssize_t rc = fail(x, t, r, W_HS);
    if (rc == -EAGAIN) {
        return -EAGAIN;
    }
    /* A peer that went away without a byte (a port probe) did not fail a handshake: it
     * never began one. One that stopped in the middle did. */
    rc = t->is_first_read ? -ECONNABORTED : rc == 0 ? -ECONNRESET : rc;
    if (rc == -KEEL_ETLS) {
        explain_verify(t);
    }
    t->fail_rc = (int)rc;
    set_state(t, TLS_CONN_FAILED);
    return (int)rc;
}

static int tls_shutdown(struct http_xprt *x);

static ssize_t tls_read(struct http_xprt *x, void *buf, size_t len)
{
    struct tls_conn *t = x->ctx;
    if (t->state != TLS_CONN_OPEN) {
        return t->state == TLS_CONN_FAILED ? t->fail_rc : -ENOTCONN;
    }
    if ((x->_w & W_SHUT) != 0) {
        (void)tls_shutdown(x); /* a close_notify waiting for room: any readiness moves it */
    }
    size_t n = 0;
    int r = SSL_read_ex(t->ssl, buf, len, &n);
    if (r == 1) {
        set_need(x, W_RD, EV_READ);
        return (ssize_t)n;
    }
    return fail(x, t, r, W_RD); /* 0: close_notify or EOF */
}

/* A checksum of a pending write's bytes: a retry with other bytes must not go unnoticed.
 * Eight bytes a step, so that checking a 16 KiB record costs far less than encrypting it. */
static uint64_t checksum(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
    for (; len >= 8; b += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; len > 0; b++, len--) {
        h = (h ^ *b) * 0x100000001b3ull;
    }
    return h;
}

static ssize_t tls_write(struct http_xprt *x, const void *buf, size_t len, unsigned flags)
{
    struct tls_conn *t = x->ctx;
    if (t->state != TLS_CONN_OPEN) {
        return t->state == TLS_CONN_FAILED ? t->fail_rc : -ENOTCONN;
    }
    const char *p = buf;
    if (t->wpend_len != 0 && (len < t->wpend_len || checksum(p, t->wpend_len) != t->wpend_sum)) {
        /* The caller changed its mind after -EAGAIN (an error page in place of a response
         * that could not be sent): the record OpenSSL holds would go out in its place. */
        t->reason = "a blocked write was retried with other bytes";
        t->fail_rc = -EPROTO;
        set_state(t, TLS_CONN_FAILED);
        return -EPROTO;
    }
    size_t done = 0;
    t->is_more = (flags & HTTP_XPRT_MORE) != 0;
    while (done < len) {
        /* One record per call (SSL_MODE_ENABLE_PARTIAL_WRITE); a retry brings exactly the
         * bytes of the pending record. */
        size_t chunk = t->wpend_len != 0             ? t->wpend_len
                       : len - done > TLS_RECORD_MAX ? TLS_RECORD_MAX
                                                     : len - done;
        size_t n = 0;
        int r = SSL_write_ex(t->ssl, p + done, chunk, &n);
        if (r == 1) {
            t->wpend_len = 0;
            done += n;
            continue;
        }
        ssize_t rc = fail(x, t, r, W_WR);
        if (rc == -EAGAIN) {
            t->wpend_len = chunk;
            t->wpend_sum = checksum(p + done, chunk);
        }
        t->is_more = false;
        if (rc == 0) {
            rc = -EPIPE; /* SSL_write does not end in close_notify; never seen */
        }
        return done > 0 ? (ssize_t)done : rc; /* a failure repeats on the next call */
    }
    t->is_more = false;
    set_need(x, W_WR, EV_WRITE);
    return (ssize_t)done;
}

/* Gather up to one record from iov, so that a head and the start of its body go out as one
 * record and one send. A first buffer of a record or more goes as it is. */
static ssize_t tls_writev(struct http_xprt *x, const struct iovec *iov, int n_iov, unsigned flags)
{
    if (n_iov == 1 || iov[0].iov_len >= TLS_RECORD_MAX) {
        return tls_write(x, iov[0].iov_base, iov[0].iov_len,
                         flags | (n_iov > 1 ? HTTP_XPRT_MORE : 0));
    }
    char rec[TLS_RECORD_MAX];
    size_t k = 0;
    for (int i = 0; i < n_iov && k < sizeof(rec); i++) {
        size_t take = iov[i].iov_len < sizeof(rec) - k ? iov[i].iov_len : sizeof(rec) - k;
        memcpy(rec + k, iov[i].iov_base, take);
        k += take;
    }
    return tls_write(x, rec, k, flags);
}

static int tcp_shut(struct tls_conn *t)
{
    if (shutdown(t->fd, SHUT_WR) == -1 && errno != ENOTCONN) {
        return -errno;
    }
    return 0;
}

/* close_notify (RFC 8446 section 6.1), then the TCP FIN. A close_notify that finds no room
 * says -EAGAIN and waits in W_SHUT: the next read, or this call again, sends it. */
static int tls_shutdown(struct http_xprt *x)
{
    struct tls_conn *t = x->ctx;
    if (t->state == TLS_CONN_OPEN && !t->is_shut) {
        ERR_clear_error();
        int r = SSL_shutdown(t->ssl); /* 0: sent, the peer's not received yet; 1: both */
        if (r < 0) {
            ssize_t rc = fail(x, t, r, W_WR);
            if (rc == -EAGAIN) {
                x->_w |= W_SHUT;
                return -EAGAIN;
            }
        } else {
            t->is_shut = true;
        }
        x->_w &= ~W_SHUT;
    }
    return tcp_shut(t);
}

static void tls_close(struct http_xprt *x)
{
    struct tls_conn *t = x->ctx;
    if (t->state == TLS_CONN_OPEN && !t->is_shut) {
        (void)SSL_shutdown(t->ssl); /* a close_notify if it fits, else nothing: closing */
    }
    SSL_free(t->ssl); /* and the BIO */
    ERR_clear_error();
    (void)close(t->fd); /* Linux releases the fd even on EINTR: never retried */
    free(t->why);
    free(t);
    x->fd = -1;
    x->ctx = NULL;
}

static uint32_t tls_events(const struct http_xprt *x, uint32_t want)
{
    uint32_t w = x->_w;
    if ((w & W_UP) == 0) {
        return need(w, W_HS);
    }
    uint32_t ev = 0;
    if ((want & EV_READ) != 0) {
        ev |= need(w, W_RD);
    }
    if ((want & EV_WRITE) != 0) {
        ev |= need(w, W_WR);
    }
    if (want != 0 && (w & W_SHUT) != 0) {
        ev |= EV_WRITE;
    }
    return ev;
}

static bool tls_has_pending(const struct http_xprt *x)
{
    const struct tls_conn *t = x->ctx;
    return t->state == TLS_CONN_OPEN && SSL_has_pending(t->ssl) == 1;
}

static void tls_info(const struct http_xprt *x, struct http_xprt_info *out)
{
    const struct tls_conn *t = x->ctx;
    if (t->state == TLS_CONN_OPEN) {
        out->version = SSL_get_version(t->ssl);
        const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
        out->cipher = c != NULL ? SSL_CIPHER_get_name(c) : NULL;
        out->is_resumed = SSL_session_reused(t->ssl) == 1;
    }
    out->error = t->reason;
}

const struct http_xprt_ops tls_xprt_ops = {
    .name = "tls",
    .is_secure = true,
    .open = tls_open,
    .connected = tls_connected,
    .handshake = tls_handshake,
    .read = tls_read,
    .write = tls_write,
    .writev = tls_writev,
    .sendfile = NULL, /* no kTLS: http_xprt_sendfile copies 16 KiB a call (pread, write) */
    .shutdown = tls_shutdown,
    .close = tls_close,
    .events = tls_events,
    .has_pending = tls_has_pending,
    .info = tls_info,
};
