/* SPDX-License-Identifier: MIT */
/* The admin listener (see admin.h). Connections are short: read one request head within
 * a timeout, write the whole response, close. */
#include "monitor/admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sock.h"
#include "http/http_parse.h"

#define ADMIN_TIMEOUT_MS 5000
#define ADMIN_HEAD_MAX 8192

struct admin {
    struct ev_loop *loop;
    int fd;
    struct ev_io io;
    admin_handler_fn handler;
    void *data;
};

struct admin_conn {
    struct admin *admin;
    int fd;
    struct ev_io io;
    struct ev_timer timer;
    struct ev_defer defer;
    char head[ADMIN_HEAD_MAX];
    size_t head_len;
    struct http_parser parser;
    struct http_msg msg;
    struct metrics_out out;
    size_t sent;
    bool is_writing;
};

static void conn_free(struct ev_loop *loop, void *data)
{
    (void)loop;
    struct admin_conn *c = data;
    metrics_out_fini(&c->out);
    free(c);
}

static void conn_close(struct admin_conn *c)
{
    ev_io_stop(c->admin->loop, &c->io);
    ev_timer_stop(c->admin->loop, &c->timer);
    close(c->fd);
    ev_defer(c->admin->loop, &c->defer, conn_free, c);
}

static void respond(struct admin_conn *c, int status, const char *ctype, const char *body,
                    size_t len)
{
    struct metrics_out *o = &c->out;
    o->len = 0;
    metrics_out_printf(o,
                       "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n",
                       status, http_status_reason(status), ctype, len);
    size_t head = o->len;
    metrics_out_printf(o, "%.*s", (int)len, body);
    if (o->failed || o->len != head + len) {
        conn_close(c);
        return;
    }
    c->is_writing = true;
    if (ev_io_set(c->admin->loop, &c->io, EV_WRITE) != 0) {
        conn_close(c);
    }
}

static void handle(struct admin_conn *c)
{
    char path[512];
    const struct http_msg *m = &c->msg;
    snprintf(path, sizeof(path), "%.*s", (int)m->target.len, c->head + m->target.off);
    char *q = strchr(path, '?');
    const char *query = "";
    if (q != NULL) {
        *q = '\0';
        query = q + 1;
    }
    if (m->method != HTTP_METHOD_GET && m->method != HTTP_METHOD_HEAD &&
        m->method != HTTP_METHOD_OPTIONS) {
        const char *b = "method not allowed\n";
        respond(c, 405, "text/plain", b, strlen(b));
        return;
    }
    struct metrics_out body = {0};
    const char *ctype = "text/plain; charset=utf-8";
    int status = c->admin->handler(path, query, &body, &ctype, c->admin->data);
    if (body.failed) {
        metrics_out_fini(&body);
        const char *b = "out of memory\n";
        respond(c, 500, "text/plain", b, strlen(b));
        return;
    }
    respond(c, status, ctype, body.data != NULL ? body.data : "",
            m->method == HTTP_METHOD_HEAD ? 0 : body.len);
    metrics_out_fini(&body);
}

static void on_conn_event(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    struct admin_conn *c = io->data;
    if (c->is_writing) {
        ssize_t n = write(c->fd, c->out.data + c->sent, c->out.len - c->sent);
        if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->sent += (size_t)n;
        if (c->sent == c->out.len) {
            conn_close(c);
        }
        return;
    }
    ssize_t n = read(c->fd, c->head + c->head_len, sizeof(c->head) - c->head_len);
    if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->head_len += (size_t)n;
    int rc = http_parse_head(&c->parser, c->head, c->head_len, &c->msg);
    if (rc == -EAGAIN) {
        if (c->head_len == sizeof(c->head)) {
            respond(c, 431, "text/plain", "head too large\n", 15);
        }
        return;
    }
    if (rc != 0) {
        respond(c, http_parse_error_status(rc), "text/plain", "bad request\n", 12);
        return;
    }
    handle(c);
}

static void on_conn_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    conn_close(t->data);
}

static void on_accept(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)events;
    struct admin *a = io->data;
    for (int i = 0; i < 16; i++) {
        struct sockaddr_storage peer;
        socklen_t plen;
        int fd = sock_accept(a->fd, &peer, &plen);
        if (fd < 0) {
            return;
        }
        struct admin_conn *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->admin = a;
        c->fd = fd;
        http_parser_init(&c->parser, false, 4096, ADMIN_HEAD_MAX);
        ev_timer_init(&c->timer, on_conn_timeout, c, "admin");
        if (ev_io_start(loop, &c->io, fd, EV_READ, on_conn_event, c, "admin") != 0) {
            close(fd);
            free(c);
            continue;
        }
        ev_timer_start(loop, &c->timer, ADMIN_TIMEOUT_MS);
    }
}

struct admin *admin_start(struct ev_loop *loop, const struct sockaddr *sa, socklen_t salen,
                          admin_handler_fn handler, void *data, struct errbuf *eb)
{
    int fd = sock_listen(sa, salen, false, 128, eb);
    if (fd < 0) {
        return NULL;
    }
    struct admin *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        close(fd);
        errbuf_set(eb, "out of memory");
        return NULL;
    }
    a->loop = loop;
    a->fd = fd;
    a->handler = handler;
    a->data = data;
    if (ev_io_start(loop, &a->io, fd, EV_READ, on_accept, a, "admin-accept") != 0) {
        close(fd);
        free(a);
        errbuf_set(eb, "epoll_ctl failed");
        return NULL;
    }
    return a;
}

void admin_stop(struct admin *a)
{
    if (a == NULL) {
        return;
    }
    ev_io_stop(a->loop, &a->io);
    close(a->fd);
    ev_free_later(a->loop, a); /* an accept event may be pending in this batch */
}
