/* SPDX-License-Identifier: MIT */
/* Unit tests for src/tls/tls_transport.c: keel's server side over a real socketpair against
 * a real OpenSSL client in the same process, both non-blocking. The handshake (WANT_READ
 * mapped to events, SNI, ALPN, ECDSA or RSA by the client's signature algorithms, TLS 1.1
 * refused), reads (decrypted bytes held: has_pending), writes (partial, -EAGAIN with
 * EV_WRITE, the retry of a blocked write, a retry with other bytes refused), writev gathered
 * into one record, the sendfile fallback, close_notify both ways, EOF, truncated and garbage
 * handshakes, plain HTTP answered 400, and what an idle connection costs. */
#include <criterion/criterion.h>

#include "tls/tls_transport.c"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>

#include "tls/tls_client.h"
#include "tls_certs.h"

#define HOUR 3600L
#define DAY (24 * HOUR)

static char dir[64];
static struct tls_ctx *server_ctx;
static SSL_CTX *client_ctx;
static struct conf_cert certs[3];

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* the client's BIO writes with write(2) */
    tc_tmpdir(dir);
    struct tc_cert ec = tc_make(TC_EC, "a.test", "DNS:a.test", -HOUR, DAY, NULL);
    struct tc_cert rsa = tc_make(TC_RSA, "a.test", "DNS:a.test", -HOUR, DAY, NULL);
    struct tc_cert wild = tc_make(TC_EC, "*.w.test", "DNS:*.w.test", -HOUR, DAY, NULL);
    tc_write(dir, "ec", &ec, NULL);
    tc_write(dir, "rsa", &rsa, NULL);
    tc_write(dir, "wild", &wild, NULL);
    tc_free(&ec);
    tc_free(&rsa);
    tc_free(&wild);
    certs[0] = tc_conf_cert(dir, "ec");
    certs[1] = tc_conf_cert(dir, "rsa");
    certs[2] = tc_conf_cert(dir, "wild");
    struct conf_frontend fe;
    tc_frontend(&fe, certs, 3);
    struct errbuf eb;
    server_ctx = tls_ctx_new(&fe, &eb);
    cr_assert_not_null(server_ctx, "%s", eb.msg);
    client_ctx = SSL_CTX_new(TLS_client_method());
    cr_assert_not_null(client_ctx);
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);
}

static void teardown(void)
{
    tls_ctx_free(server_ctx);
    SSL_CTX_free(client_ctx);
    tc_rmdir(dir);
}

TestSuite(tls_xprt, .init = setup, .fini = teardown, .timeout = 60);

/* A connected non-blocking socketpair: keel's transport on x, an OpenSSL client on *c. */
static void make_pair(struct http_xprt *x, SSL **c, int *cfd, const char *sni)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    cr_assert_eq(tls_xprt_ops.open(x, sv[0], HTTP_XPRT_ACCEPTED, server_ctx), 0);
    cr_assert_str_eq(x->ops->name, "tls");
    *cfd = sv[1];
    *c = SSL_new(client_ctx);
    cr_assert_not_null(*c);
    cr_assert_eq(SSL_set_fd(*c, sv[1]), 1);
    SSL_set_connect_state(*c);
    if (sni != NULL) {
        cr_assert_eq(SSL_set_tlsext_host_name(*c, sni), 1);
    }
    static const unsigned char alpn[] = "\x02h2\x08http/1.1";
    cr_assert_eq(SSL_set_alpn_protos(*c, alpn, sizeof(alpn) - 1), 0);
}

/* Step both handshakes until both are done; returns the server's last result. */
static int handshake(struct http_xprt *x, SSL *c)
{
    bool client_done = false;
    int rc = -EAGAIN;
    for (int i = 0; i < 200 && (rc == -EAGAIN || !client_done); i++) {
        if (rc == -EAGAIN) {
            rc = http_xprt_handshake(x);
        }
        if (!client_done) {
            int r = SSL_do_handshake(c);
            if (r == 1) {
                client_done = true;
            } else {
                int e = SSL_get_error(c, r);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                    ERR_clear_error();
                    return rc == -EAGAIN ? http_xprt_handshake(x) : rc;
                }
            }
        }
    }
    return rc;
}

static void close_pair(struct http_xprt *x, SSL *c, int cfd)
{
    http_xprt_close(x);
    cr_assert_eq(x->fd, -1);
    SSL_free(c);
    close(cfd);
    ERR_clear_error();
}

/* Read exactly len bytes on the client (non-blocking, polling). */
static void client_read_exactly(SSL *c, int cfd, char *out, size_t len)
{
    size_t got = 0;
    for (int i = 0; got < len && i < 100000; i++) {
        size_t n = 0;
        if (SSL_read_ex(c, out + got, len - got, &n) == 1) {
            got += n;
            continue;
        }
        cr_assert_eq(SSL_get_error(c, 0), SSL_ERROR_WANT_READ);
        struct pollfd p = {.fd = cfd, .events = POLLIN};
        cr_assert_eq(poll(&p, 1, 2000), 1, "the client waited 2 s for bytes");
    }
    cr_assert_eq(got, len);
}

static int peer_key_type(SSL *c)
{
    X509 *peer = SSL_get1_peer_certificate(c);
    cr_assert_not_null(peer);
    int t = EVP_PKEY_get_base_id(X509_get0_pubkey(peer));
    X509_free(peer);
    return t;
}

Test(tls_xprt, handshake_waits_for_reads_then_moves_bytes_both_ways)
{
    struct http_xprt x;
    SSL *c;
    int cfd;
    make_pair(&x, &c, &cfd, "a.test");
    /* Nothing sent yet: the handshake waits for the socket to be readable. */
    cr_assert_eq(http_xprt_handshake(&x), -EAGAIN);
    cr_assert_eq(http_xprt_events(&x, 0), EV_READ);
    cr_assert_eq(handshake(&x, c), 0);
    cr_assert(http_xprt_is_secure(&x));
    const unsigned char *proto;
    unsigned int plen;
    SSL_get0_alpn_selected(c, &proto, &plen);
    cr_assert_eq(plen, 8);
    cr_assert_eq(memcmp(proto, "http/1.1", 8), 0);
    struct http_xprt_info info;
    http_xprt_get_info(&x, &info);
    cr_assert_str_eq(info.version, "TLSv1.3");
    cr_assert_not_null(info.cipher);
    cr_assert_null(info.error);
    cr_assert_eq(http_xprt_events(&x, EV_READ | EV_WRITE), EV_READ | EV_WRITE);
    cr_assert_eq(http_xprt_events(&x, 0), 0);

    char buf[64];
    cr_assert_eq(http_xprt_read(&x, buf, sizeof(buf)), -EAGAIN);
    cr_assert_eq(http_xprt_events(&x, EV_READ), EV_READ);
    cr_assert_eq(SSL_write(c, "hello", 5), 5);
    cr_assert_eq(http_xprt_read(&x, buf, sizeof(buf)), 5);
    cr_assert_eq(memcmp(buf, "hello", 5), 0);

    struct iovec iov[3] = {{.iov_base = "HTTP/1.1 200 OK\r\n", .iov_len = 17},
                           {.iov_base = "\r\n", .iov_len = 2},
                           {.iov_base = "body", .iov_len = 4}};
    cr_assert_eq(http_xprt_writev(&x, iov, 3, 0), 23);
    /* one record: the client gets it all in one read */
    size_t n = 0;
    cr_assert_eq(SSL_read_ex(c, buf, sizeof(buf), &n), 1);
    cr_assert_eq(n, 23);
    cr_assert_eq(memcmp(buf, "HTTP/1.1 200 OK\r\n\r\nbody", 23), 0);
    close_pair(&x, c, cfd);
}

Test(tls_xprt, sni_and_signature_algorithms_choose_the_certificate)
{
    struct http_xprt x;
    SSL *c;
    int cfd;
    /* a.test: ECDSA by default, RSA when the client signs with RSA only */
    make_pair(&x, &c, &cfd, "a.test");
    cr_assert_eq(handshake(&x, c), 0);
    cr_assert_eq(peer_key_type(c), EVP_PKEY_EC);
    close_pair(&x, c, cfd);

    make_pair(&x, &c, &cfd, "a.test");
    cr_assert_eq(SSL_set1_sigalgs_list(c, "rsa_pss_rsae_sha256:RSA+SHA256"), 1);
    cr_assert_eq(handshake(&x, c), 0);
    cr_assert_eq(peer_key_type(c), EVP_PKEY_RSA);
    close_pair(&x, c, cfd);

    /* TLS 1.2 with an RSA cipher only */
    make_pair(&x, &c, &cfd, "a.test");
    cr_assert_eq(SSL_set_max_proto_version(c, TLS1_2_VERSION), 1);
    cr_assert_eq(SSL_set_cipher_list(c, "ECDHE-RSA-AES128-GCM-SHA256"), 1);
    cr_assert_eq(handshake(&x, c), 0);
    cr_assert_eq(peer_key_type(c), EVP_PKEY_RSA);
    struct http_xprt_info info;
    http_xprt_get_info(&x, &info);
    cr_assert_str_eq(info.version, "TLSv1.2");
    cr_assert_str_eq(info.cipher, "ECDHE-RSA-AES128-GCM-SHA256");
    close_pair(&x, c, cfd);

    /* the wildcard's certificate for x.w.test */
    make_pair(&x, &c, &cfd, "x.w.test");
    cr_assert_eq(handshake(&x, c), 0);
    X509 *peer = SSL_get1_peer_certificate(c);
    char cn[64];
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
    cr_assert_str_eq(cn, "*.w.test");
    X509_free(peer);
    close_pair(&x, c, cfd);
}

Test(tls_xprt, tls11_is_refused)
{
    struct http_xprt x;
    SSL *c;
    int cfd;
    make_pair(&x, &c, &cfd, "a.test");
    SSL_set_security_level(c, 0); /* let the client offer TLS 1.1 at all */
    cr_assert_eq(SSL_set_min_proto_version(c, TLS1_1_VERSION), 1);
    cr_assert_eq(SSL_set_max_proto_version(c, TLS1_1_VERSION), 1);
    cr_assert_eq(SSL_set_cipher_list(c, "DEFAULT:@SECLEVEL=0"), 1);
    cr_assert_eq(handshake(&x, c), -KEEL_ETLS);
    struct http_xprt_info info;
    http_xprt_get_info(&x, &info);
    cr_assert_not_null(info.error);
    cr_assert(strstr(info.error, "protocol") != NULL, "%s", info.error);
    cr_assert_eq(ERR_peek_error(), 0, "the error queue is emptied");
    cr_assert_eq(http_xprt_handshake(&x), -KEEL_ETLS, "a failure repeats");
    close_pair(&x, c, cfd);
}

Test(tls_xprt, decrypted_bytes_are_pending_until_read)
{
    struct http_xprt x;
    SSL *c;
    int cfd;
    make_pair(&x, &c, &cfd, "a.test");
    cr_assert_eq(handshake(&x, c), 0);
    for (int i = 0; i < 3; i++) { /* three records, read ahead in one recv */
        cr_assert_eq(SSL_write(c, "0123456789", 10), 10);
    }
    char buf[64];
    cr_assert_eq(http_xprt_read(&x, buf, 4), 4);
    cr_assert(http_xprt_has_pending(&x));
    size_t total = 4;
    while (http_xprt_has_pending(&x)) {
        ssize_t n = http_xprt_read(&x, buf, 7);
        cr_assert_gt(n, 0);
        total += (size_t)n;
    }
    cr_assert_eq(total, 30);
    cr_assert_eq(http_xprt_read(&x, buf, sizeof(buf)), -EAGAIN);
    close_pair(&x, c, cfd);
}

/* The bytes of stream position i. */
static char pattern(size_t i)
{
    return (char)('a' + (i * 7 + i / 4096) % 26);
}

Test(tls_xprt, writes_are_partial_say_eagain_when_full_and_retry_the_same_bytes)
{
    struct http_xprt x;
    SSL *c;
    int cfd;
    make_pair(&x, &c, &cfd, "a.test");
    int small = 8192;
    cr_assert_eq(setsockopt(x.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    cr_assert_eq(handshake(&x, c), 0);
    size_t len = 1u << 20;
    char *data = malloc(len), *got = malloc(len);
    for (size_t i = 0; i < len; i++) {
        data[i] = pattern(i);
    }
    size_t sent = 0, received = 0;
    bool saw_partial = false, saw_eagain = false;
    for (int i = 0; sent < len && i < 100000; i++) {
        ssize_t n = http_xprt_write(&x, data + sent, len - sent, 0);
        if (n == -EAGAIN) {
            saw_eagain = true;
            cr_assert_eq(http_xprt_events(&x, EV_WRITE), EV_WRITE);
            /* the client reads what it can, then the server retries the same bytes */
            size_t r = 0;
            while (received < len && SSL_read_ex(c, got + received, len - received, &r) == 1) {
                received += r;
            }
            ERR_clear_error();
            continue;
        }
        cr_assert_gt(n, 0, "write: %zd", n);
        saw_partial = saw_partial || (size_t)n < len - sent;
        sent += (size_t)n;
    }
    cr_assert_eq(sent, len);
    cr_assert(saw_partial && saw_eagain);
    client_read_exactly(c, cfd, got + received, len - received);
    cr_assert_eq(memcmp(got, data, len), 0, "the client got the stream as written");
    free(data);
    free(got);
    close_pair(&x, c, cfd);
}

Test(tls_xprt, a_blocked_write_retried_with_other_bytes_fails_rather_than_corrupts)
{
    struct http_xprt x;
    SSL *c;
    int cfd;
    make_pair(&x, &c, &cfd, "a.test");
    int small = 4096;
    cr_assert_eq(setsockopt(x.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    cr_assert_eq(handshake(&x, c), 0);
    char chunk[TLS_RECORD_MAX];
    memset(chunk, 'r', sizeof(chunk));
    ssize_t n;
    for (int i = 0; i < 1000 && (n = http_xprt_write(&x, chunk, sizeof(chunk), 0)) > 0; i++) {
    }
    cr_assert_eq(n, -EAGAIN);
    char other[TLS_RECORD_MAX];
    memset(other, 'e', sizeof(other)); /* an error page instead */
    cr_assert_eq(http_xprt_write(&x, other, sizeof(other), 0), -EPROTO);
    struct http_xprt_info info;
    http_xprt_get_info(&x, &info);
    cr_assert_not_null(info.error);
    cr_assert_eq(http_xprt_write(&x, chunk, sizeof(chunk), 0), -EPROTO, "failed for good");
    close_pair(&x, c, cfd);
}

Test(tls_xprt, sendfile_copies_through_records)
{
    struct http_xprt x;
    SSL *c;
    int cfd;
    make_pair(&x, &c, &cfd, "a.test");
    cr_assert_eq(handshake(&x, c), 0);
    char path[] = "/tmp/keel-tls-file-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    unlink(path);
    size_t len = 100000;
    char *data = malloc(len), *got = malloc(len);
    for (size_t i = 0; i < len; i++) {
        data[i] = pattern(i);
    }
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    uint64_t off = 0;
    size_t received = 0;
    for (int i = 0; off < len && i < 10000; i++) {
        ssize_t n = http_xprt_sendfile(&x, fd, &off, len - (size_t)off);
        cr_assert(n > 0 || n == -EAGAIN, "sendfile: %zd", n);
        size_t r = 0;
        while (SSL_read_ex(c, got + received, len - received, &r) == 1) {
            received += r;
        }
        ERR_clear_error();
    }
    cr_assert_eq(off, len);
    client_read_exactly(c, cfd, got + received, len - received);
    cr_assert_eq(memcmp(got, data, len), 0);
    close(fd);
    free(data);
    free(got);
    close_pair(&x, c, cfd);
}

Test(tls_xprt, close_notify_both_ways)
{
    struct http_xprt x;
    SSL *c;
    int cfd;
    make_pair(&x, &c, &cfd, "a.test");
    cr_assert_eq(handshake(&x, c), 0);
    cr_assert_eq(http_xprt_write(&x, "bye", 3, 0), 3);
    cr_assert_eq(http_xprt_shutdown(&x), 0);
    char buf[16];
    client_read_exactly(c, cfd, buf, 3);
    size_t n;
    cr_assert_eq(SSL_read_ex(c, buf, sizeof(buf), &n), 0);
    cr_assert_eq(SSL_get_error(c, 0), SSL_ERROR_ZERO_RETURN, "the client got close_notify");
    cr_assert_eq(read(cfd, buf, sizeof(buf)), 0, "then the FIN");
    /* the client answers with its own: the server's read sees the end */
    cr_assert_gt(SSL_shutdown(c), 0);
    cr_assert_eq(http_xprt_read(&x, buf, sizeof(buf)), 0);
    cr_assert_eq(http_xprt_read(&x, buf, sizeof(buf)), 0);
    close_pair(&x, c, cfd);
}

Test(tls_xprt, a_client_closing_without_close_notify_is_an_eof)
{
    struct http_xprt x;
    SSL *c;
    int cfd;
    make_pair(&x, &c, &cfd, "a.test");
    cr_assert_eq(handshake(&x, c), 0);
    cr_assert_eq(SSL_write(c, "last", 4), 4);
    shutdown(cfd, SHUT_WR);
    char buf[16];
    cr_assert_eq(http_xprt_read(&x, buf, sizeof(buf)), 4);
    cr_assert_eq(http_xprt_read(&x, buf, sizeof(buf)), 0);
    close_pair(&x, c, cfd);
}

/* The client's first flight, made by an OpenSSL client on memory BIOs. */
static size_t client_hello(unsigned char *out, size_t size)
{
    SSL *c = SSL_new(client_ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    SSL_set_bio(c, rb, wb);
    SSL_set_connect_state(c);
    SSL_set_tlsext_host_name(c, "a.test");
    cr_assert_eq(SSL_do_handshake(c), -1);
    int n = BIO_read(wb, out, (int)size);
    cr_assert_gt(n, 50);
    SSL_free(c);
    ERR_clear_error();
    return (size_t)n;
}

Test(tls_xprt, a_truncated_handshake_fails_at_the_eof)
{
    struct http_xprt x;
    SSL *c;
    int cfd;
    make_pair(&x, &c, &cfd, NULL);
    unsigned char hello[2048];
    size_t n = client_hello(hello, sizeof(hello));
    cr_assert_eq(write(cfd, hello, n / 2), (ssize_t)(n / 2));
    cr_assert_eq(http_xprt_handshake(&x), -EAGAIN, "half a ClientHello: wait for the rest");
    cr_assert_eq(http_xprt_events(&x, 0), EV_READ);
    shutdown(cfd, SHUT_WR);
    int rc = http_xprt_handshake(&x);
    cr_assert(rc == -ECONNRESET || rc == -KEEL_ETLS, "rc %d", rc);
    cr_assert_eq(ERR_peek_error(), 0);
    close_pair(&x, c, cfd);
}

Test(tls_xprt, a_client_that_closes_without_a_byte_is_not_a_failed_handshake)
{
    struct http_xprt x;
    SSL *c;
    int cfd;
    make_pair(&x, &c, &cfd, NULL);
    cr_assert_eq(http_xprt_handshake(&x), -EAGAIN);
    shutdown(cfd, SHUT_WR); /* a port probe: connect, close */
    cr_assert_eq(http_xprt_handshake(&x), -ECONNABORTED);
    cr_assert_eq(ERR_peek_error(), 0);
    close_pair(&x, c, cfd);
}

Test(tls_xprt, a_garbage_record_fails_with_a_reason)
{
    struct http_xprt x;
    SSL *c;
    int cfd;
    make_pair(&x, &c, &cfd, NULL);
    static const unsigned char junk[] = "\x16\x03\x01\x00\x08garbage!";
    cr_assert_eq(write(cfd, junk, sizeof(junk) - 1), (ssize_t)sizeof(junk) - 1);
    cr_assert_eq(http_xprt_handshake(&x), -KEEL_ETLS);
    struct http_xprt_info info;
    http_xprt_get_info(&x, &info);
    cr_assert_not_null(info.error);
    cr_assert_null(info.version);
    char buf[16];
    cr_assert_eq(http_xprt_read(&x, buf, sizeof(buf)), -KEEL_ETLS);
    cr_assert_eq(http_xprt_shutdown(&x), 0, "no close_notify after a failure, just the FIN");
    close_pair(&x, c, cfd);
}

Test(tls_xprt, plain_http_gets_a_400_in_clear_and_a_close)
{
    struct http_xprt x;
    SSL *c;
    int cfd;
    make_pair(&x, &c, &cfd, NULL);
    static const char req[] = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
    cr_assert(tls_sniff_is_plain_http((const uint8_t *)req, 1));
    cr_assert_not(tls_sniff_is_plain_http((const uint8_t *)"\x16\x03", 2));
    cr_assert_eq(write(cfd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
    /* answered, then waiting for the client to close */
    cr_assert_eq(http_xprt_handshake(&x), -EAGAIN);
    cr_assert_eq(http_xprt_events(&x, 0), EV_READ);
    char buf[512];
    ssize_t n = read(cfd, buf, sizeof(buf) - 1);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    cr_assert(strncmp(buf, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "%s", buf);
    cr_assert(strstr(buf, "Connection: close\r\n") != NULL, "%s", buf);
    cr_assert(strstr(buf, "plain HTTP request sent to an HTTPS port") != NULL, "%s", buf);
    cr_assert_eq(read(cfd, buf, sizeof(buf)), 0, "and the write side shut");
    close(cfd);
    cr_assert_eq(http_xprt_handshake(&x), -KEEL_ETLS_PLAIN_HTTP);
    http_xprt_close(&x);
    SSL_free(c);
}

/* The connecting side plays the client (a struct tls_client): keel's two ends talk. */
Test(tls_xprt, open_connecting_plays_the_client)
{
    struct http_xprt x, y;
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct tls_client_conf cc = {.name = "a.test", .is_verify_off = true};
    struct errbuf eb;
    struct tls_client *client = tls_client_new(&cc, &eb);
    cr_assert_not_null(client, "%s", eb.msg);
    cr_assert_eq(tls_xprt_ops.open(&x, sv[0], HTTP_XPRT_ACCEPTED, server_ctx), 0);
    cr_assert_eq(tls_xprt_ops.open(&y, sv[1], HTTP_XPRT_CONNECTING, client), 0);
    cr_assert_eq(http_xprt_events(&y, 0), EV_WRITE, "a client first waits for its connect");
    cr_assert_eq(http_xprt_connected(&y), 0);
    int rx = -EAGAIN, ry = -EAGAIN;
    for (int i = 0; i < 50 && (rx == -EAGAIN || ry == -EAGAIN); i++) {
        if (ry == -EAGAIN) {
            ry = http_xprt_handshake(&y);
        }
        if (rx == -EAGAIN) {
            rx = http_xprt_handshake(&x);
        }
    }
    cr_assert_eq(rx, 0);
    cr_assert_eq(ry, 0);
    cr_assert_eq(http_xprt_write(&y, "ping", 4, 0), 4);
    char buf[8];
    cr_assert_eq(http_xprt_read(&x, buf, sizeof(buf)), 4);
    cr_assert_eq(memcmp(buf, "ping", 4), 0);
    struct http_xprt_info info;
    http_xprt_get_info(&y, &info);
    cr_assert_str_eq(info.version, "TLSv1.3");
    cr_assert_eq(tls_xprt_ops.open(&x, sv[0], HTTP_XPRT_CONNECTING, NULL), -EPROTONOSUPPORT);
    http_xprt_close(&x);
    http_xprt_close(&y);
    tls_client_free(client);
}

/* What a connection that served a request and went idle keeps: the SSL object, its
 * session and keys (about 11 KiB with OpenSSL 3.0); not its two record buffers of 17 KiB
 * each (SSL_MODE_RELEASE_BUFFERS). Measured with the client's objects freed, so that only
 * the server side counts, after a first connection that pays OpenSSL's one-time set-up. */
Test(tls_xprt, an_idle_connection_holds_no_record_buffers)
{
    enum { N = 64 };
    struct http_xprt xs[N];
    int cfds[N];
    struct mallinfo2 before = mallinfo2();
    for (int i = -1; i < N; i++) {
        if (i == 0) {
            http_xprt_close(&xs[N - 1]); /* the warm-up connection */
            close(cfds[N - 1]);
            before = mallinfo2();
        }
        int k = i < 0 ? N - 1 : i;
        SSL *c;
        make_pair(&xs[k], &c, &cfds[k], "a.test");
        cr_assert_eq(handshake(&xs[k], c), 0);
        cr_assert_eq(SSL_write(c, "GET / HTTP/1.1\r\n\r\n", 18), 18);
        char buf[64];
        cr_assert_eq(http_xprt_read(&xs[k], buf, sizeof(buf)), 18);
        cr_assert_eq(http_xprt_write(&xs[k], "HTTP/1.1 204 No Content\r\n\r\n", 27, 0), 27);
        client_read_exactly(c, cfds[k], buf, 27);
        cr_assert_eq(http_xprt_read(&xs[k], buf, sizeof(buf)), -EAGAIN);
        SSL_free(c); /* the client's side goes; its socket stays open */
    }
    struct mallinfo2 after = mallinfo2();
    size_t per_conn = after.uordblks > before.uordblks ? (after.uordblks - before.uordblks) / N : 0;
    cr_log_info("an idle TLS 1.3 connection holds %zu bytes", per_conn);
    cr_assert_lt(per_conn, 16384, "%zu bytes per idle connection", per_conn);
    for (int i = 0; i < N; i++) {
        http_xprt_close(&xs[i]);
        close(cfds[i]);
    }
}
