/* SPDX-License-Identifier: MIT */
/* Health checks of supervised application processes: a small state machine per process
 * (idle, connecting, exchanging) driven by one timer that is the interval and, for TCP,
 * the probe deadline. A TCP probe is a non-blocking connect (and the handshake of its
 * transport, http/http_transport.h: none for plain TCP) on one fd watcher; an HTTP
 * probe is one status-only exchange of the asynchronous HTTP client (http/http_client.c:
 * its response parser is http/http_parse.c; it reads the rest of the answer before
 * closing, so that the close does not reset a server still writing). */
#include "app/app_check.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sock.h"
#include "http/http_client.h"
#include "http/http_transport.h"

enum app_check_state {
    APP_CHECK_IDLE = 0,   /* waiting for the next probe (the timer is the interval) */
    APP_CHECK_CONNECTING, /* TCP: non-blocking connect in progress (the timer is the deadline) */
    APP_CHECK_EXCHANGING  /* HTTP: the client's exchange in flight (it has the deadline) */
};

struct app_check {
    struct ev_loop *loop;
    const struct conf_check *conf;
    struct sockaddr_storage sa;
    socklen_t salen;
    app_check_result_fn on_result;
    void *data;
    enum app_check_state state;
    bool is_started;
    struct http_xprt xp; /* TCP: the probe's transport; xp.fd is -1 when none */
    bool is_connected;   /* TCP: connected, the transport's handshake runs */
    struct ev_io io;
    struct ev_timer timer;
    struct http_client *http; /* the HTTP exchange in flight, else NULL */
    /* The transport of both kinds of probe; NULL: plain TCP (TLS later). */
    const struct http_xprt_conf *xprt;
    char host[256]; /* the Host header */
};

/* End the probe in flight (if any) and go back to waiting for the next one. */
static void probe_close(struct app_check *c)
{
    ev_io_stop(c->loop, &c->io);
    http_xprt_close(&c->xp); /* a probe: nothing to flush; nothing when none is open */
    c->is_connected = false;
    http_client_cancel(c->http);
    c->http = NULL;
    c->state = APP_CHECK_IDLE;
}

static void probe_done(struct app_check *c, bool is_ok, const char *reason)
{
    probe_close(c);
    ev_timer_start(c->loop, &c->timer, c->conf->interval_ms);
    c->on_result(c->data, is_ok, reason); /* may stop or free the checker: nothing after */
}

static void on_http_done(void *data, const struct http_client_response *resp)
{
    struct app_check *c = data;
    c->http = NULL; /* dead once this runs */
    char reason[192];
    bool is_ok = false;
    if (resp->err == 0) {
        (void)snprintf(reason, sizeof(reason), "status %d", resp->status);
        is_ok = resp->status >= c->conf->status_min && resp->status <= c->conf->status_max;
    } else if (resp->err == -ETIMEDOUT) {
        (void)snprintf(reason, sizeof(reason), "timeout");
    } else if (resp->is_connect_failure) {
        (void)snprintf(reason, sizeof(reason), "connect: %s", strerror(-resp->err));
    } else if (resp->err == -ECONNRESET) {
        (void)snprintf(reason, sizeof(reason), "connection closed before a status line");
    } else if (resp->err == -EPROTO) {
        (void)snprintf(reason, sizeof(reason), "not an HTTP/1.x status line");
    } else {
        (void)snprintf(reason, sizeof(reason), "%s", resp->why);
    }
    probe_done(c, is_ok, reason);
}

static void on_io(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    struct app_check *c = io->data;
    int rc = http_xprt_connect_step(&c->xp, &c->is_connected); /* TCP: no handshake */
    if (rc == -EAGAIN) {
        uint32_t want = c->is_connected ? 0 : EV_WRITE;
        if (ev_io_set(c->loop, &c->io, http_xprt_events(&c->xp, want)) != 0) {
            probe_done(c, false, "epoll failed");
        }
        return;
    }
    if (rc != 0) {
        char reason[160];
        (void)snprintf(reason, sizeof(reason), "%s: %s", c->is_connected ? "handshake" : "connect",
                       strerror(-rc));
        probe_done(c, false, reason);
        return;
    }
    probe_done(c, true, "connected");
}

static int http_probe_start(struct app_check *c)
{
    const struct conf_check *k = c->conf;
    uint64_t deadline = ev_now_ms(c->loop) + k->timeout_ms;
    struct http_client_request req = {
        .addr = (const struct sockaddr *)&c->sa,
        .addrlen = c->salen,
        .method = k->method,
        .host = c->host,
        .path = k->path,
        .connect_deadline_ms = deadline,
        .deadline_ms = deadline,
        .user_agent = "keel-app-check",
        .is_status_only = true,
        .xprt = c->xprt,
    };
    c->state = APP_CHECK_EXCHANGING;
    return http_client_start(c->loop, &req, on_http_done, c, &c->http);
}

static void probe_start(struct app_check *c)
{
    char reason[160];
    if (c->conf->type == CONF_CHECK_HTTP) {
        int rc = http_probe_start(c);
        if (rc != 0) {
            c->http = NULL;
            (void)snprintf(reason, sizeof(reason), "connect: %s", strerror(-rc));
            probe_done(c, false, reason);
        }
        return;
    }
    int fd = sock_connect_start((const struct sockaddr *)&c->sa, c->salen);
    if (fd < 0) {
        (void)snprintf(reason, sizeof(reason), "connect: %s", strerror(-fd));
        probe_done(c, false, reason);
        return;
    }
    if (http_xprt_open(&c->xp, c->xprt, fd, HTTP_XPRT_CONNECTING) != 0) {
        (void)close(fd); /* no transport took it */
        c->xp.fd = -1;
        probe_done(c, false, "out of memory for the probe's transport");
        return;
    }
    c->state = APP_CHECK_CONNECTING;
    if (ev_io_start(c->loop, &c->io, fd, http_xprt_events(&c->xp, EV_WRITE), on_io, c,
                    "app check") != 0) {
        probe_done(c, false, "epoll failed");
        return;
    }
    ev_timer_start(c->loop, &c->timer, c->conf->timeout_ms);
}

static void on_timer(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct app_check *c = t->data;
    if (c->state == APP_CHECK_IDLE) {
        probe_start(c);
    } else {
        probe_done(c, false, "timeout"); /* a TCP connect (HTTP has the client's deadline) */
    }
}

struct app_check *app_check_new(struct ev_loop *loop, const struct conf_check *conf,
                                const struct sockaddr *sa, socklen_t salen, const char *host,
                                app_check_result_fn on_result, void *data)
{
    struct app_check *c = calloc(1, sizeof(*c));
    if (c == NULL || salen > sizeof(c->sa)) {
        free(c);
        return NULL;
    }
    c->loop = loop;
    c->conf = conf;
    memcpy(&c->sa, sa, salen);
    c->salen = salen;
    /* A process listening on every address is probed on loopback. */
    if (c->sa.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&c->sa;
        if (sin->sin_addr.s_addr == htonl(INADDR_ANY)) {
            sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        }
    } else if (c->sa.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c->sa;
        if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr)) {
            sin6->sin6_addr = in6addr_loopback;
        }
    }
    if (conf->port != 0) {
        sock_addr_set_port(&c->sa, (uint16_t)conf->port);
    }
    c->on_result = on_result;
    c->data = data;
    c->xp.fd = -1;
    ev_timer_init(&c->timer, on_timer, c, "app check");
    (void)snprintf(c->host, sizeof(c->host), "%s", conf->host[0] != '\0' ? conf->host : host);
    return c;
}

void app_check_start(struct app_check *c, uint64_t first_ms)
{
    probe_close(c);
    c->is_started = true;
    ev_timer_start(c->loop, &c->timer, first_ms);
}

void app_check_stop(struct app_check *c)
{
    if (c == NULL) {
        return;
    }
    probe_close(c);
    ev_timer_stop(c->loop, &c->timer);
    c->is_started = false;
}

void app_check_free(struct app_check *c)
{
    if (c == NULL) {
        return;
    }
    app_check_stop(c);
    ev_free_later(c->loop, c);
}
