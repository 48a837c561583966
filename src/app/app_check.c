/* SPDX-License-Identifier: MIT */
/* Health checks of supervised application processes: a small state machine per process
 * (idle, connecting, sending, reading) driven by one fd watcher and one timer that is
 * both the interval and the probe deadline. Only the status line of an HTTP answer is
 * read; the connection is closed after each probe. */
#include "app/app_check.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sock.h"

enum app_check_state {
    APP_CHECK_IDLE = 0,   /* waiting for the next probe (the timer is the interval) */
    APP_CHECK_CONNECTING, /* non-blocking connect in progress (the timer is the deadline) */
    APP_CHECK_SENDING,    /* HTTP: writing the request */
    APP_CHECK_READING,    /* HTTP: reading the status line */
    APP_CHECK_DRAINING    /* HTTP: status known; reading the rest up to the server's close,
                           * so that closing does not reset a server still writing */
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
    int fd;
    struct ev_io io;
    struct ev_timer timer;
    char req[768];
    size_t req_len;
    size_t req_sent;
    char resp[64]; /* enough for "HTTP/1.1 200 " */
    size_t resp_len;
    size_t drained;
    int status; /* the status code, once read */
};

#define APP_CHECK_DRAIN_MAX 65536 /* a longer answer is cut (the result is known anyway) */

int app_check_parse_status(const char *buf, size_t len)
{
    static const char prefix[] = "HTTP/1.";
    size_t plen = sizeof(prefix) - 1;
    size_t cmp = len < plen ? len : plen;
    if (memcmp(buf, prefix, cmp) != 0) {
        return -1;
    }
    /* "HTTP/1.x NNN" then a space or the line end. */
    for (size_t i = plen; i < len && i < plen + 6; i++) {
        char c = buf[i];
        bool ok = i == plen       ? c >= '0' && c <= '9'
                  : i == plen + 1 ? c == ' '
                  : i <= plen + 4 ? c >= '0' && c <= '9'
                                  : c == ' ' || c == '\r' || c == '\n';
        if (!ok) {
            return -1;
        }
    }
    if (len < plen + 6) {
        return 0;
    }
    int code = (buf[plen + 2] - '0') * 100 + (buf[plen + 3] - '0') * 10 + (buf[plen + 4] - '0');
    return code >= 100 && code <= 599 ? code : -1;
}

/* End the probe in flight (if any) and go back to waiting for the next one. */
static void probe_close(struct app_check *c)
{
    ev_io_stop(c->loop, &c->io);
    if (c->fd != -1) {
        (void)close(c->fd); /* a probe socket: nothing to flush */
        c->fd = -1;
    }
    c->state = APP_CHECK_IDLE;
}

static void probe_done(struct app_check *c, bool is_ok, const char *reason)
{
    probe_close(c);
    ev_timer_start(c->loop, &c->timer, c->conf->interval_ms);
    c->on_result(c->data, is_ok, reason); /* may stop or free the checker: nothing after */
}

static void build_request(struct app_check *c, const char *host)
{
    const struct conf_check *k = c->conf;
    int n = snprintf(c->req, sizeof(c->req),
                     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: keel-app-check\r\n"
                     "Connection: close\r\n\r\n",
                     k->method, k->path, k->host[0] != '\0' ? k->host : host);
    /* method <= 15, path <= 255, host <= 255 bytes: it always fits. */
    c->req_len = n > 0 && (size_t)n < sizeof(c->req) ? (size_t)n : 0;
}

static void on_writable(struct app_check *c)
{
    char reason[160];
    if (c->state == APP_CHECK_CONNECTING) {
        int rc = sock_connect_result(c->fd);
        if (rc != 0) {
            (void)snprintf(reason, sizeof(reason), "connect: %s", strerror(-rc));
            probe_done(c, false, reason);
            return;
        }
        if (c->conf->type == CONF_CHECK_TCP) {
            probe_done(c, true, "connected");
            return;
        }
        c->state = APP_CHECK_SENDING;
    }
    while (c->req_sent < c->req_len) {
        ssize_t n = send(c->fd, c->req + c->req_sent, c->req_len - c->req_sent, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                return;
            }
            (void)snprintf(reason, sizeof(reason), "send: %s", strerror(errno));
            probe_done(c, false, reason);
            return;
        }
        c->req_sent += (size_t)n;
    }
    c->state = APP_CHECK_READING;
    if (ev_io_set(c->loop, &c->io, EV_READ) != 0) {
        probe_done(c, false, "epoll failed");
    }
}

static void report_status(struct app_check *c)
{
    char reason[32];
    (void)snprintf(reason, sizeof(reason), "status %d", c->status);
    probe_done(c, c->status >= c->conf->status_min && c->status <= c->conf->status_max, reason);
}

/* Status known: discard the rest of the answer until the server closes. */
static void on_drain(struct app_check *c)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && errno == EAGAIN) {
            return;
        }
        if (n > 0 && (c->drained += (size_t)n) < APP_CHECK_DRAIN_MAX) {
            continue;
        }
        report_status(c); /* closed, reset or long enough: the status is what counts */
        return;
    }
}

static void on_readable(struct app_check *c)
{
    char reason[160];
    if (c->state == APP_CHECK_DRAINING) {
        on_drain(c);
        return;
    }
    ssize_t n;
    do {
        n = recv(c->fd, c->resp + c->resp_len, sizeof(c->resp) - c->resp_len, 0);
    } while (n == -1 && errno == EINTR);
    if (n == -1 && errno == EAGAIN) {
        return;
    }
    if (n == -1) {
        (void)snprintf(reason, sizeof(reason), "recv: %s", strerror(errno));
        probe_done(c, false, reason);
        return;
    }
    c->resp_len += (size_t)n;
    int code = app_check_parse_status(c->resp, c->resp_len);
    if (code == 0 && n > 0 && c->resp_len < sizeof(c->resp)) {
        return; /* more bytes needed */
    }
    if (code <= 0) {
        probe_done(c, false,
                   n == 0 ? "connection closed before a status line"
                          : "not an HTTP/1.x status line");
        return;
    }
    c->status = code;
    if (n == 0) {
        report_status(c);
        return;
    }
    c->state = APP_CHECK_DRAINING;
    c->drained = 0;
    on_drain(c);
}

static void on_io(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    struct app_check *c = io->data;
    if (c->state == APP_CHECK_READING || c->state == APP_CHECK_DRAINING) {
        on_readable(c);
    } else if ((events & (EV_WRITE | EPOLLERR | EPOLLHUP)) != 0) {
        on_writable(c);
    }
}

static void probe_start(struct app_check *c)
{
    char reason[160];
    c->req_sent = 0;
    c->resp_len = 0;
    int fd = sock_connect_start((const struct sockaddr *)&c->sa, c->salen);
    if (fd < 0) {
        (void)snprintf(reason, sizeof(reason), "connect: %s", strerror(-fd));
        probe_done(c, false, reason);
        return;
    }
    c->fd = fd;
    c->state = APP_CHECK_CONNECTING;
    if (ev_io_start(c->loop, &c->io, fd, EV_WRITE, on_io, c, "app check") != 0) {
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
    } else if (c->state == APP_CHECK_DRAINING) {
        report_status(c); /* the server did not close in time, but it answered */
    } else {
        probe_done(c, false, "timeout");
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
    c->fd = -1;
    ev_timer_init(&c->timer, on_timer, c, "app check");
    build_request(c, host);
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
