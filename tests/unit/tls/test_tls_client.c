/* SPDX-License-Identifier: MIT */
/* Unit tests of src/tls/tls_client.c and the client side of the TLS transport: keel's async
 * HTTP client (http_client.c, req.xprt) over a real socket against keel's own TLS server
 * side (tls_ctx.c contexts driven by blocking OpenSSL calls on a thread), with certificates
 * made by the test. A good chain and name answer 200; a wrong CA, a wrong name or a wrong
 * IP address fail the handshake with the verifier's reason; verification off accepts
 * anything; SNI is sent for names and not for addresses; a second connection resumes the
 * first one's session (TLS 1.3 and 1.2); an unreadable CA file is refused. */
#include <criterion/criterion.h>

#include "tls/tls_client.c"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "core/ev.h"
#include "http/http_client.h"
#include "tls/tls_ctx.h"
#include "tls/tls_transport.h"
#include "tls_certs.h"

#define HOUR 3600L
#define DAY (24 * HOUR)

static char dir[64];
static char ca_path[128], other_ca_path[128];
static struct conf_cert certs[1];

/* ------------------------------------------------------------------------------------------
 * keel's TLS server side on a thread, blocking
 * ------------------------------------------------------------------------------------------ */

struct server {
    int lfd;
    struct sockaddr_in addr;
    pthread_t thread;
    struct tls_ctx *ctx;
    atomic_bool is_stopping;
    int max_version; /* 0: TLS 1.3 allowed */
    /* Per connection served, in order. */
    atomic_int n_conns;
    atomic_int n_handshakes; /* completed */
    atomic_int n_reused;     /* of which resumed */
    char sni[8][64];         /* the name each connection asked for ("" for none) */
};

static void serve_one(struct server *s, int fd)
{
    int i = atomic_fetch_add(&s->n_conns, 1);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    SSL *ssl = SSL_new(tls_ctx_default(s->ctx));
    cr_assert_not_null(ssl);
    if (s->max_version != 0) {
        SSL_set_max_proto_version(ssl, s->max_version);
    }
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        if (i < 8) {
            snprintf(s->sni[i], sizeof(s->sni[i]), "%s", sni != NULL ? sni : "");
        }
        atomic_fetch_add(&s->n_handshakes, 1);
        if (SSL_session_reused(ssl) == 1) {
            atomic_fetch_add(&s->n_reused, 1);
        }
        char req[4096];
        size_t got = 0;
        while (got < sizeof(req) - 1 && memmem(req, got, "\r\n\r\n", 4) == NULL) {
            int n = SSL_read(ssl, req + got, (int)(sizeof(req) - 1 - got));
            if (n <= 0) {
                break;
            }
            got += (size_t)n;
        }
        static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        (void)SSL_write(ssl, resp, sizeof(resp) - 1);
        (void)SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    ERR_clear_error();
    close(fd);
}

static void *serve(void *arg)
{
    struct server *s = arg;
    while (!atomic_load(&s->is_stopping)) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 20) != 1) {
            continue;
        }
        int fd = accept(s->lfd, NULL, NULL);
        if (fd != -1) {
            serve_one(s, fd);
        }
    }
    return NULL;
}

static void server_start(struct server *s, int max_version)
{
    memset(s, 0, sizeof(*s));
    s->max_version = max_version;
    struct conf_frontend fe;
    tc_frontend(&fe, certs, 1);
    struct errbuf eb;
    s->ctx = tls_ctx_new(&fe, &eb);
    cr_assert_not_null(s->ctx, "%s", eb.msg);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    s->addr =
        (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(s->addr);
    cr_assert_eq(bind(s->lfd, (struct sockaddr *)&s->addr, sizeof(s->addr)), 0);
    cr_assert_eq(listen(s->lfd, 8), 0);
    cr_assert_eq(getsockname(s->lfd, (struct sockaddr *)&s->addr, &len), 0);
    cr_assert_eq(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
    atomic_store(&s->is_stopping, true);
    pthread_join(s->thread, NULL);
    close(s->lfd);
    tls_ctx_free(s->ctx);
}

/* ------------------------------------------------------------------------------------------
 * keel's client
 * ------------------------------------------------------------------------------------------ */

struct outcome {
    int calls;
    int err;
    bool is_connect_failure;
    int status;
    char body[16];
    char why[256];
};

static void on_done(void *data, const struct http_client_response *resp)
{
    struct outcome *o = data;
    o->calls++;
    o->err = resp->err;
    o->is_connect_failure = resp->is_connect_failure;
    o->status = resp->status;
    snprintf(o->why, sizeof(o->why), "%s", resp->why);
    if (resp->err == 0) {
        snprintf(o->body, sizeof(o->body), "%s", resp->body);
    }
}

static void on_stop(struct ev_loop *loop, struct ev_timer *t)
{
    (void)t;
    ev_loop_stop(loop);
}

/* One GET / to s through client c; run until the callback (deadline 5 s). */
static struct outcome get(struct server *s, struct tls_client *c)
{
    struct ev_loop *loop = ev_loop_new();
    cr_assert_not_null(loop);
    struct http_xprt_conf xc = {&tls_xprt_ops, c};
    struct outcome o = {0};
    struct http_client_request req = {
        .addr = (const struct sockaddr *)&s->addr,
        .addrlen = sizeof(s->addr),
        .method = "GET",
        .host = "backend.test",
        .path = "/",
        .connect_deadline_ms = ev_now_ms(loop) + 5000,
        .deadline_ms = ev_now_ms(loop) + 5000,
        .max_body = 1024,
        .xprt = &xc,
    };
    struct http_client *h;
    int rc = http_client_start(loop, &req, on_done, &o, &h);
    cr_assert_eq(rc, 0, "http_client_start: %d", rc);
    struct ev_timer guard;
    ev_timer_init(&guard, on_stop, NULL, "guard");
    while (o.calls == 0) {
        ev_timer_start(loop, &guard, 10);
        ev_run(loop);
    }
    ev_timer_stop(loop, &guard);
    ev_loop_free(loop);
    return o;
}

static struct tls_client *client_new(const char *ca, const char *name, bool is_verify_off)
{
    struct tls_client_conf conf = {.ca_file = ca, .name = name, .is_verify_off = is_verify_off};
    struct errbuf eb;
    struct tls_client *c = tls_client_new(&conf, &eb);
    cr_assert_not_null(c, "%s", eb.msg);
    return c;
}

/* ------------------------------------------------------------------------------------------
 * Setup: a CA, a server certificate it signs for backend.test and 127.0.0.1, another CA
 * ------------------------------------------------------------------------------------------ */

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    tc_tmpdir(dir);
    struct tc_cert ca = tc_make(TC_EC, "keel test CA", NULL, -HOUR, DAY, NULL);
    struct tc_cert other = tc_make(TC_EC, "another CA", NULL, -HOUR, DAY, NULL);
    struct tc_cert srv =
        tc_make(TC_EC, "backend.test", "DNS:backend.test,IP:127.0.0.1", -HOUR, DAY, &ca);
    tc_write(dir, "ca", &ca, NULL);
    tc_write(dir, "other", &other, NULL);
    tc_write(dir, "srv", &srv, NULL);
    tc_free(&ca);
    tc_free(&other);
    tc_free(&srv);
    certs[0] = tc_conf_cert(dir, "srv");
    snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", dir);
    snprintf(other_ca_path, sizeof(other_ca_path), "%s/other.pem", dir);
}

static void teardown(void)
{
    tc_rmdir(dir);
}

TestSuite(tls_client, .init = setup, .fini = teardown, .timeout = 60);

Test(tls_client, good_chain_and_name_answer_200)
{
    struct server s;
    server_start(&s, 0);
    struct tls_client *c = client_new(ca_path, "backend.test", false);
    struct outcome o = get(&s, c);
    cr_assert_eq(o.err, 0, "%s", o.why);
    cr_assert_eq(o.status, 200);
    cr_assert_str_eq(o.body, "ok");
    server_stop(&s);
    cr_assert_str_eq(s.sni[0], "backend.test", "the name is sent as SNI");
    tls_client_free(c);
}

Test(tls_client, wrong_ca_fails_the_handshake_with_the_reason)
{
    struct server s;
    server_start(&s, 0);
    struct tls_client *c = client_new(other_ca_path, "backend.test", false);
    struct outcome o = get(&s, c);
    cr_assert_eq(o.err, -KEEL_ETLS, "%d %s", o.err, o.why);
    cr_assert(o.is_connect_failure, "no byte of the request was sent");
    cr_assert_str_eq(o.why, "tls handshake failed: certificate verify failed: unable to get local "
                            "issuer certificate");
    server_stop(&s);
    cr_assert_eq(atomic_load(&s.n_handshakes), 0);
    tls_client_free(c);
}

Test(tls_client, wrong_name_fails_the_handshake)
{
    struct server s;
    server_start(&s, 0);
    struct tls_client *c = client_new(ca_path, "other.test", false);
    struct outcome o = get(&s, c);
    cr_assert_eq(o.err, -KEEL_ETLS, "%d %s", o.err, o.why);
    cr_assert_str_eq(o.why, "tls handshake failed: certificate verify failed: hostname mismatch");
    server_stop(&s);
    tls_client_free(c);
}

Test(tls_client, wildcard_matches_one_label_only)
{
    struct server s;
    server_start(&s, 0);
    /* the certificate names backend.test: a.backend.test is not it */
    struct tls_client *c = client_new(ca_path, "a.backend.test", false);
    struct outcome o = get(&s, c);
    cr_assert_eq(o.err, -KEEL_ETLS, "%d %s", o.err, o.why);
    server_stop(&s);
    tls_client_free(c);
}

Test(tls_client, ip_literal_checked_against_ip_sans_without_sni)
{
    struct server s;
    server_start(&s, 0);
    struct tls_client *c = client_new(ca_path, "127.0.0.1", false);
    struct outcome o = get(&s, c);
    cr_assert_eq(o.err, 0, "%s", o.why);
    cr_assert_eq(o.status, 200);
    tls_client_free(c);
    c = client_new(ca_path, "127.0.0.2", false);
    o = get(&s, c);
    cr_assert_eq(o.err, -KEEL_ETLS, "%d %s", o.err, o.why);
    cr_assert_str_eq(o.why, "tls handshake failed: certificate verify failed: IP address mismatch");
    server_stop(&s);
    cr_assert_str_eq(s.sni[0], "", "no SNI for an address (RFC 6066 section 3)");
    tls_client_free(c);
}

Test(tls_client, verify_off_accepts_any_certificate)
{
    struct server s;
    server_start(&s, 0);
    struct tls_client *c = client_new(other_ca_path, "wrong.test", true);
    struct outcome o = get(&s, c);
    cr_assert_eq(o.err, 0, "%s", o.why);
    cr_assert_eq(o.status, 200);
    server_stop(&s);
    tls_client_free(c);
}

Test(tls_client, no_ca_file_means_the_system_store)
{
    struct server s;
    server_start(&s, 0);
    /* the test CA is in no system store */
    struct tls_client *c = client_new(NULL, "backend.test", false);
    struct outcome o = get(&s, c);
    cr_assert_eq(o.err, -KEEL_ETLS, "%d %s", o.err, o.why);
    cr_assert(strstr(o.why, "certificate verify failed") != NULL, "%s", o.why);
    server_stop(&s);
    tls_client_free(c);
}

static void resumes(int max_version)
{
    struct server s;
    server_start(&s, max_version);
    struct tls_client *c = client_new(ca_path, "backend.test", false);
    cr_assert_not(tls_client_has_session(c));
    for (int i = 0; i < 3; i++) {
        struct outcome o = get(&s, c);
        cr_assert_eq(o.err, 0, "%s", o.why);
        cr_assert_eq(o.status, 200);
        cr_assert(tls_client_has_session(c), "a session kept after connection %d", i + 1);
    }
    server_stop(&s);
    cr_assert_eq(atomic_load(&s.n_handshakes), 3);
    cr_assert_eq(atomic_load(&s.n_reused), 2, "the second and third resumed (%d)",
                 atomic_load(&s.n_reused));
    tls_client_free(c);
}

Test(tls_client, reconnects_resume_tls13)
{
    resumes(0);
}

Test(tls_client, reconnects_resume_tls12)
{
    resumes(TLS1_2_VERSION);
}

Test(tls_client, unreadable_or_empty_ca_file_is_refused)
{
    struct tls_client_conf conf = {.ca_file = "/nonexistent/ca.pem", .name = "a.test"};
    struct errbuf eb;
    cr_assert_null(tls_client_new(&conf, &eb));
    cr_assert_str_eq(eb.msg, "cannot read CA file /nonexistent/ca.pem: No such file or directory");
    char empty[128];
    snprintf(empty, sizeof(empty), "%s/empty.pem", dir);
    FILE *f = fopen(empty, "w");
    cr_assert_not_null(f);
    fputs("not a certificate\n", f);
    fclose(f);
    conf.ca_file = empty;
    cr_assert_null(tls_client_new(&conf, &eb));
    cr_assert(strstr(eb.msg, "no usable PEM certificate in CA file") != NULL, "%s", eb.msg);
    conf.ca_file = dir;
    cr_assert_null(tls_client_new(&conf, &eb));
    cr_assert(strstr(eb.msg, "not a regular file") != NULL, "%s", eb.msg);
}

Test(tls_client, alpn_is_checked)
{
    char long_alpn[300];
    memset(long_alpn, 'a', sizeof(long_alpn) - 1);
    long_alpn[sizeof(long_alpn) - 1] = '\0';
    struct tls_client_conf conf = {.is_verify_off = true, .alpn = long_alpn};
    struct errbuf eb;
    cr_assert_null(tls_client_new(&conf, &eb));
    conf.alpn = "h2";
    struct tls_client *c = tls_client_new(&conf, &eb);
    cr_assert_not_null(c, "%s", eb.msg);
    cr_assert_null(tls_client_name(c));
    tls_client_free(c);
}
