/* SPDX-License-Identifier: MIT */
/* Unit tests of http/http_client.c: a canned HTTP server on a thread (one connection per test,
 * answering with scripted bytes, possibly in pieces) and the client on an event loop. They
 * check the request it writes, every body framing (length, chunked, until close, none),
 * interim responses, the bounds, the failures (refused, closed early, malformed, timeouts)
 * and cancellation. */
#include <criterion/criterion.h>

#include "http/http_client.c"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <time.h>

/* ------------------------------------------------------------------------------------------
 * The canned server
 * ------------------------------------------------------------------------------------------ */

#define MAX_PIECES 8

struct server {
    int lfd;
    struct sockaddr_in addr;
    pthread_t thread;
    const char *pieces[MAX_PIECES]; /* written in order, 5 ms apart */
    size_t big_len;                 /* or, if not 0: a 200 with a body of big_len bytes */
    bool is_silent;                 /* read the request, answer nothing, wait for close */
    char request[8192];             /* what the client sent */
    size_t request_len;
};

static size_t expected_request_len(const char *req, size_t len)
{
    const char *end = memmem(req, len, "\r\n\r\n", 4);
    if (end == NULL) {
        return SIZE_MAX;
    }
    const char *cl = strcasestr(req, "Content-Length: ");
    size_t body = cl != NULL && cl < end ? strtoul(cl + 16, NULL, 10) : 0;
    return (size_t)(end - req) + 4 + body;
}

static void *serve(void *arg)
{
    struct server *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd == -1) {
        return NULL;
    }
    while (s->request_len < expected_request_len(s->request, s->request_len) &&
           s->request_len < sizeof(s->request) - 1) {
        ssize_t n =
            recv(fd, s->request + s->request_len, sizeof(s->request) - 1 - s->request_len, 0);
        if (n <= 0) {
            break;
        }
        s->request_len += (size_t)n;
        s->request[s->request_len] = '\0';
    }
    if (s->big_len > 0) {
        char head[128];
        int n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                         s->big_len);
        (void)!send(fd, head, (size_t)n, MSG_NOSIGNAL);
        char *body = malloc(s->big_len);
        for (size_t i = 0; i < s->big_len; i++) {
            body[i] = (char)('a' + i % 26);
        }
        for (size_t off = 0; off < s->big_len;) {
            ssize_t w = send(fd, body + off, s->big_len - off, MSG_NOSIGNAL);
            if (w <= 0) {
                break;
            }
            off += (size_t)w;
        }
        free(body);
    }
    for (int i = 0; i < MAX_PIECES && s->pieces[i] != NULL; i++) {
        if (i > 0) {
            usleep(5000);
        }
        (void)!send(fd, s->pieces[i], strlen(s->pieces[i]), MSG_NOSIGNAL);
    }
    if (s->is_silent) {
        char c;
        (void)!recv(fd, &c, 1, 0); /* until the client gives up */
    }
    close(fd);
    return NULL;
}

static void server_start(struct server *s)
{
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    s->addr =
        (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(s->addr);
    cr_assert_eq(bind(s->lfd, (struct sockaddr *)&s->addr, sizeof(s->addr)), 0);
    cr_assert_eq(listen(s->lfd, 4), 0);
    cr_assert_eq(getsockname(s->lfd, (struct sockaddr *)&s->addr, &len), 0);
    cr_assert_eq(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

/* ------------------------------------------------------------------------------------------
 * The client side
 * ------------------------------------------------------------------------------------------ */

struct outcome {
    int calls;
    int err;
    bool is_connect_failure;
    int status;
    char *body;
    size_t body_len;
    char why[160];
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
        cr_assert_not_null(resp->body);
        cr_assert_eq(resp->body[resp->body_len], '\0');
        o->body = malloc(resp->body_len + 1);
        memcpy(o->body, resp->body, resp->body_len + 1);
        o->body_len = resp->body_len;
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_stop(struct ev_loop *loop, struct ev_timer *t)
{
    (void)t;
    ev_loop_stop(loop);
}

/* Set by tests of health-check use: a status-only GET with the checks' User-Agent. */
static bool is_check_get;

/* POST "hello" to addr (or the check's GET) and run until the callback or timeout_ms. */
static struct outcome exchange(const struct sockaddr_in *addr, size_t max_body, uint32_t timeout_ms)
{
    struct ev_loop *loop = ev_loop_new();
    struct outcome o = {0};
    struct http_client_request req = {
        .addr = (const struct sockaddr *)addr,
        .addrlen = sizeof(*addr),
        .method = "POST",
        .host = "127.0.0.1:1",
        .path = "/v3/kv/range",
        .content_type = "application/json",
        .body = "hello",
        .body_len = 5,
        .connect_deadline_ms = ev_now_ms(loop) + timeout_ms,
        .deadline_ms = ev_now_ms(loop) + timeout_ms,
        .max_body = max_body,
    };
    if (is_check_get) {
        req.method = "GET";
        req.path = "/healthz";
        req.content_type = NULL;
        req.body = NULL;
        req.body_len = 0;
        req.user_agent = "keel-check";
        req.is_status_only = true;
    }
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
    ev_loop_free(loop); /* frees the finished exchange too */
    cr_assert_eq(o.calls, 1);
    return o;
}

static struct outcome serve_and_exchange(struct server *s, size_t max_body)
{
    server_start(s);
    struct outcome o = exchange(&s->addr, max_body, 2000);
    server_stop(s);
    return o;
}

TestSuite(http_client, .timeout = 20);

Test(http_client, writes_the_request_and_reads_a_content_length_body)
{
    struct server s = {.pieces = {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nworld"}};
    struct outcome o = serve_and_exchange(&s, 1024);
    cr_assert_eq(o.err, 0, "%s", o.why);
    cr_assert_eq(o.status, 200);
    cr_assert_str_eq(o.body, "world");
    cr_assert_str_eq(s.request, "POST /v3/kv/range HTTP/1.1\r\nHost: 127.0.0.1:1\r\n"
                                "User-Agent: keel\r\nContent-Type: application/json\r\n"
                                "Content-Length: 5\r\nConnection: close\r\n\r\nhello");
    free(o.body);
}

Test(http_client, decodes_a_chunked_body_sent_in_pieces_with_a_trailer)
{
    struct server s = {.pieces = {"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r",
                                  "\n5\r\nhel", "lo\r\n6;ext=1\r\n world\r\n0\r\n",
                                  "Grpc-Trailer-Content-Type: application/grpc\r\n\r\n"}};
    struct outcome o = serve_and_exchange(&s, 1024);
    cr_assert_eq(o.err, 0, "%s", o.why);
    cr_assert_eq(o.status, 404);
    cr_assert_str_eq(o.body, "hello world");
    free(o.body);
}

Test(http_client, reads_a_body_delimited_by_close_and_skips_interim_responses)
{
    struct server s = {
        .pieces = {"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.0 200 OK\r\n\r\nuntil ", "close"}};
    struct outcome o = serve_and_exchange(&s, 1024);
    cr_assert_eq(o.err, 0, "%s", o.why);
    cr_assert_eq(o.status, 200);
    cr_assert_str_eq(o.body, "until close");
    free(o.body);
}

Test(http_client, a_response_without_a_body)
{
    struct server s = {.pieces = {"HTTP/1.1 204 No Content\r\n\r\n"}, .is_silent = true};
    struct outcome o = serve_and_exchange(&s, 1024);
    cr_assert_eq(o.err, 0, "%s", o.why);
    cr_assert_eq(o.status, 204);
    cr_assert_eq(o.body_len, 0);
    free(o.body);
}

Test(http_client, a_large_body_grows_the_buffer)
{
    struct server s = {.big_len = 1000003};
    struct outcome o = serve_and_exchange(&s, 2000000);
    cr_assert_eq(o.err, 0, "%s", o.why);
    cr_assert_eq(o.body_len, 1000003);
    for (size_t i = 0; i < o.body_len; i++) {
        cr_assert_eq(o.body[i], (char)('a' + i % 26), "byte %zu", i);
    }
    free(o.body);
}

Test(http_client, bodies_over_the_bound_fail)
{
    struct server a = {.pieces = {"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n0123456789x"}};
    struct outcome o = serve_and_exchange(&a, 10);
    cr_assert_eq(o.err, -EMSGSIZE, "%s", o.why);

    struct server b = {
        .pieces = {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n",
                   "5\r\n6789x\r\n0\r\n\r\n"}};
    o = serve_and_exchange(&b, 10);
    cr_assert_eq(o.err, -EMSGSIZE, "%s", o.why);

    struct server c = {.pieces = {"HTTP/1.1 200 OK\r\n\r\n0123456789", "x"}};
    o = serve_and_exchange(&c, 10);
    cr_assert_eq(o.err, -EMSGSIZE, "%s", o.why);

    /* Exactly the bound is fine. */
    struct server d = {.pieces = {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"}};
    o = serve_and_exchange(&d, 10);
    cr_assert_eq(o.err, 0, "%s", o.why);
    free(o.body);
}

Test(http_client, malformed_responses_fail_with_eproto)
{
    const char *bad[] = {
        "SSH-2.0-OpenSSH\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct server s = {.pieces = {bad[i]}};
        struct outcome o = serve_and_exchange(&s, 1024);
        cr_assert_eq(o.err, -EPROTO, "case %zu: %d %s", i, o.err, o.why);
        cr_assert_not(o.is_connect_failure);
    }
    /* A head over HTTP_CLIENT_MAX_HEAD. */
    static char huge[HTTP_CLIENT_MAX_HEAD + 200];
    int n = snprintf(huge, sizeof(huge), "HTTP/1.1 200 OK\r\nX: ");
    memset(huge + n, 'a', sizeof(huge) - (size_t)n - 1);
    struct server s = {.pieces = {huge}};
    struct outcome o = serve_and_exchange(&s, 1024);
    cr_assert_eq(o.err, -EPROTO, "%s", o.why);
}

Test(http_client, a_close_before_or_during_the_response_is_a_reset)
{
    struct server a = {.pieces = {NULL}};
    struct outcome o = serve_and_exchange(&a, 1024);
    cr_assert_eq(o.err, -ECONNRESET, "%s", o.why);
    cr_assert_str_eq(o.why, "connection closed before the response");
    cr_assert_not(o.is_connect_failure, "the request was sent: not a connect failure");

    struct server b = {.pieces = {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"}};
    o = serve_and_exchange(&b, 1024);
    cr_assert_eq(o.err, -ECONNRESET, "%s", o.why);

    struct server c = {.pieces = {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"}};
    o = serve_and_exchange(&c, 1024);
    cr_assert_eq(o.err, -ECONNRESET, "%s", o.why);
}

Test(http_client, refused_and_silent_servers)
{
    struct server s = {.is_silent = true};
    server_start(&s);
    uint64_t t0 = now_ms();
    struct outcome o = exchange(&s.addr, 1024, 150);
    uint64_t took = now_ms() - t0;
    cr_assert_eq(o.err, -ETIMEDOUT, "%s", o.why);
    cr_assert_str_eq(o.why, "timed out waiting for the response");
    cr_assert_not(o.is_connect_failure);
    cr_assert_geq(took, 145);
    cr_assert_lt(took, 400);
    server_stop(&s);

    /* The listener is closed now: refused, while connecting. */
    o = exchange(&s.addr, 1024, 1000);
    cr_assert_eq(o.err, -ECONNREFUSED, "%s", o.why);
    cr_assert(o.is_connect_failure);
    cr_assert_str_eq(o.why, "connect() failed: Connection refused");
}

static void never_done(void *data, const struct http_client_response *resp)
{
    (void)data;
    (void)resp;
    cr_assert_fail("callback after cancel or a failed start");
}

Test(http_client, bad_requests_are_refused_and_cancel_is_silent)
{
    struct ev_loop *loop = ev_loop_new();
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct http_client_request req = {.addr = (struct sockaddr *)&sin,
                                      .addrlen = sizeof(sin),
                                      .method = "POST",
                                      .host = "h",
                                      .path = "/a b",
                                      .deadline_ms = ev_now_ms(loop) + 1000,
                                      .connect_deadline_ms = ev_now_ms(loop) + 1000,
                                      .max_body = 10};
    struct http_client *h = NULL;
    cr_assert_eq(http_client_start(loop, &req, never_done, NULL, &h), -EINVAL);
    req.path = "/a";
    req.host = "h\r\nX: y";
    cr_assert_eq(http_client_start(loop, &req, never_done, NULL, &h), -EINVAL);
    req.host = "h";
    req.path = "no-slash";
    cr_assert_eq(http_client_start(loop, &req, never_done, NULL, &h), -EINVAL);
    req.path = "/a";
    cr_assert_eq(http_client_start(loop, &req, never_done, NULL, &h), 0);
    http_client_cancel(h);
    http_client_cancel(NULL);
    struct ev_timer guard;
    ev_timer_init(&guard, on_stop, NULL, "guard");
    ev_timer_start(loop, &guard, 50);
    ev_run(loop);
    cr_assert_eq(ev_loop_timer_count(loop), 0, "the exchange's timer is stopped");
    ev_loop_free(loop);
}

/* ------------------------------------------------------------------------------------------
 * Health-check use: status only
 * ------------------------------------------------------------------------------------------ */

Test(http_client, status_only_drops_the_body_and_sends_no_length)
{
    is_check_get = true;
    struct server s = {.pieces = {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n5\r\nbusy!\r\n0\r\n\r\n"}};
    struct outcome o = serve_and_exchange(&s, 0);
    cr_assert_eq(o.err, 0, "%s", o.why);
    cr_assert_eq(o.status, 503);
    cr_assert_str_eq(o.body, "");
    free(o.body);
    cr_assert_str_eq(s.request, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:1\r\n"
                                "User-Agent: keel-check\r\nConnection: close\r\n\r\n");
    /* A body far over max_body (0) is fine: it is not kept. */
    struct server big = {.big_len = 300000};
    o = serve_and_exchange(&big, 0);
    cr_assert_eq(o.err, 0, "%s", o.why);
    cr_assert_eq(o.status, 200);
    free(o.body);
}

Test(http_client, status_only_answers_at_the_deadline_once_the_head_came)
{
    is_check_get = true;
    /* The head, part of the body, then silence: the status is known, the deadline ends the
     * wait for the rest without failing. */
    struct server s = {.pieces = {"HTTP/1.1 204 No Content\r\n\r\n"}};
    struct server t = {.pieces = {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"},
                       .is_silent = true};
    struct outcome o = serve_and_exchange(&s, 0);
    cr_assert_eq(o.err, 0, "%s", o.why);
    cr_assert_eq(o.status, 204);
    free(o.body);
    server_start(&t);
    o = exchange(&t.addr, 0, 200);
    server_stop(&t);
    cr_assert_eq(o.err, 0, "%s", o.why);
    cr_assert_eq(o.status, 200);
    free(o.body);
    /* No head before the deadline is a timeout. */
    struct server u = {.is_silent = true};
    server_start(&u);
    o = exchange(&u.addr, 0, 200);
    server_stop(&u);
    cr_assert_eq(o.err, -ETIMEDOUT);
}

Test(http_client, a_101_is_final)
{
    struct server s = {.pieces = {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n"
                                  "Connection: upgrade\r\n\r\n"}};
    struct outcome o = serve_and_exchange(&s, 100);
    cr_assert_eq(o.err, 0, "%s", o.why);
    cr_assert_eq(o.status, 101);
    free(o.body);
}

Test(http_client, header_values_are_found_by_name_in_a_kept_head)
{
    static const char head[] = "HTTP/1.1 201 Created\r\nreplay-nonce:  abc \r\nLocation: "
                               "https://h/acct/1\r\nRetry-After: 3\r\nX-Bare: a\rb\r\n\r\n";
    char v[32];
    cr_assert_eq(http_client_header(head, sizeof(head) - 1, "Replay-Nonce", v, sizeof(v)), 3);
    cr_assert_str_eq(v, "abc");
    cr_assert_eq(http_client_header(head, sizeof(head) - 1, "location", v, sizeof(v)), 16);
    cr_assert_str_eq(v, "https://h/acct/1");
    cr_assert_eq(http_client_header(head, sizeof(head) - 1, "Retry", v, sizeof(v)), -ENOENT);
    cr_assert_eq(http_client_header(head, sizeof(head) - 1, "Location", v, 8), -ENOSPC);
    cr_assert_eq(http_client_header(head, sizeof(head) - 1, "X-Bare", v, sizeof(v)), 1);
    cr_assert_eq(http_client_header(head, sizeof(head) - 1, "HTTP/1.1 201 Created", v, sizeof(v)),
                 -ENOENT, "the status line is not a field");
}
