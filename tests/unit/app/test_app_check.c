/* SPDX-License-Identifier: MIT */
/* Unit tests of app/app_check.c: probes against real sockets (accepting, refusing,
 * answering HTTP, silent); answers are read by the HTTP client's real response parser. A TCP
 * probe over the chaos transport (tests/unit/http/xprt_chaos.h) shows it connects and runs
 * the handshake through the transport seam. */
#include <criterion/criterion.h>

#include "app/app_check.c"

#include <arpa/inet.h>
#include <pthread.h>

#include "../http/xprt_chaos.h"

/* ------------------------------------------------------------------------------------------
 * Live probes
 * ------------------------------------------------------------------------------------------ */

struct result {
    int n;
    bool is_ok;
    char reason[160];
    struct ev_loop *loop;
};

static void on_result(void *data, bool is_ok, const char *reason)
{
    struct result *r = data;
    r->n++;
    r->is_ok = is_ok;
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    ev_loop_stop(r->loop);
}

static int listener(struct sockaddr_in *sin)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sin->sin_family = AF_INET;
    sin->sin_port = 0;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(*sin);
    cr_assert_eq(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)sin, &len), 0);
    cr_assert_eq(listen(fd, 8), 0);
    return fd;
}

static const char *answer_text;

static void *serve_one(void *arg)
{
    int lfd = *(int *)arg;
    int fd = accept(lfd, NULL, NULL);
    char buf[1024];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    cr_assert(strstr(buf, "GET /healthz HTTP/1.1\r\nHost: ") == buf, "%s", buf);
    size_t len = strlen(answer_text);
    cr_assert_eq(send(fd, answer_text, len, MSG_NOSIGNAL), (ssize_t)len);
    close(fd);
    return NULL;
}

static struct result probe_over(const struct conf_check *k, const struct sockaddr_in *sin,
                                const struct http_xprt_conf *xprt)
{
    struct result r = {.loop = ev_loop_new()};
    struct app_check *c = app_check_new(r.loop, k, (const struct sockaddr *)sin, sizeof(*sin),
                                        "127.0.0.1:1", on_result, &r);
    cr_assert_not_null(c);
    c->xprt = xprt;
    app_check_start(c, 0);
    ev_run(r.loop);
    app_check_free(c);
    ev_loop_free(r.loop);
    return r;
}

static struct result probe(const struct conf_check *k, const struct sockaddr_in *sin)
{
    return probe_over(k, sin, NULL);
}

static const struct conf_check http_check = {.type = CONF_CHECK_HTTP,
                                             .method = "GET",
                                             .path = "/healthz",
                                             .status_min = 200,
                                             .status_max = 399,
                                             .interval_ms = 1000,
                                             .timeout_ms = 300,
                                             .rise = 1,
                                             .fall = 1};

Test(app_check, tcp_probes, .timeout = 10)
{
    struct sockaddr_in sin;
    int lfd = listener(&sin);
    struct conf_check k = http_check;
    k.type = CONF_CHECK_TCP;
    struct result r = probe(&k, &sin);
    cr_assert(r.is_ok, "%s", r.reason);
    cr_assert_str_eq(r.reason, "connected");
    close(lfd);
    r = probe(&k, &sin);
    cr_assert_not(r.is_ok);
    cr_assert_str_eq(r.reason, "connect: Connection refused");
}

Test(app_check, http_probes, .timeout = 10)
{
    struct sockaddr_in sin;
    int lfd = listener(&sin);
    pthread_t t;
    static const char *const answers[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
        "garbage\r\n\r\n",
        "",
        /* an interim answer, then the final one in the same segment */
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        /* a chunked body */
        "HTTP/1.1 302 Found\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        /* a status line that looks right with a head that is not: differing lengths */
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    };
    static const char *const reasons[] = {"status 200",
                                          "status 503",
                                          "not an HTTP/1.x status line",
                                          "connection closed before a status line",
                                          "status 204",
                                          "status 302",
                                          "not an HTTP/1.x status line"};
    static const bool oks[] = {true, false, false, false, true, true, false};
    for (int i = 0; i < 7; i++) {
        answer_text = answers[i];
        pthread_create(&t, NULL, serve_one, &lfd);
        struct result r = probe(&http_check, &sin);
        pthread_join(t, NULL);
        cr_assert_eq(r.is_ok, oks[i], "%d: %s", i, r.reason);
        cr_assert_str_eq(r.reason, reasons[i]);
    }
    /* Accepted (by the kernel) but never answered: the probe times out. */
    struct result r = probe(&http_check, &sin);
    cr_assert_not(r.is_ok);
    cr_assert_str_eq(r.reason, "timeout");
    close(lfd);
}

Test(app_check, tcp_probe_through_the_transport, .timeout = 10)
{
    struct sockaddr_in sin;
    int lfd = listener(&sin);
    struct conf_check k = http_check;
    k.type = CONF_CHECK_TCP;
    struct chaos_stats st = {0};
    struct http_xprt_conf xprt = {.ops = &chaos_ops, .data = &st};
    struct result r = probe_over(&k, &sin, &xprt);
    cr_assert(r.is_ok, "%s", r.reason);
    cr_assert_str_eq(r.reason, "connected");
    cr_assert_eq(st.opens, 1);
    cr_assert_eq(st.handshakes, 1); /* the probe waited for it through events() */
    cr_assert_eq(st.closes, 1);
    cr_assert_eq(st.violations, 0);
    close(lfd);
    r = probe_over(&k, &sin, &xprt);
    cr_assert_not(r.is_ok);
    cr_assert_str_eq(r.reason, "connect: Connection refused");
    cr_assert_eq(st.handshakes, 1);
    cr_assert_eq(st.closes, 2);
}
