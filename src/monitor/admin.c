/* SPDX-License-Identifier: MIT */
/* The admin listener (see admin.h). Connections are short: read one request head within
 * a timeout, write the whole response, close. The listener is part of the control plane and
 * lives on the reserve of descriptors (core/fdlimit.h), so it caps its own connections:
 * FDLIMIT_ADMIN_CONN_MAX in all, FDLIMIT_ADMIN_CONN_PER_SOURCE from one address. */
#include "monitor/admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fdlimit.h"
#include "core/log.h"
#include "core/sock.h"
#include "http/http_parse.h"

/* A health check, a scraper or curl sends its request at once: a second is plenty on any
 * network keel runs on, and a connection that sends nothing gives its slot back soon. The
 * response (a large /metrics to a slow reader) gets longer. */
#define ADMIN_HEAD_TIMEOUT_MS 1000
#define ADMIN_WRITE_TIMEOUT_MS 5000
#define ADMIN_HEAD_MAX 8192
#define ADMIN_ACCEPT_BATCH 16

struct admin_conn;

struct admin {
    struct ev_loop *loop;
    int fd;
    struct ev_io io;
    struct ev_timer pause; /* armed while accepting is paused (EMFILE) */
    admin_handler_fn handler;
    void *data;
    struct admin_conn *oldest; /* open connections in accept order */
    struct admin_conn *newest;
    uint32_t n_conns;
    struct fdlimit_throttle pause_throttle;  /* "accepting paused" lines */
    struct fdlimit_throttle refuse_throttle; /* "over the cap" lines */
    char addr[64];                           /* where it listens, for the log */
};

struct admin_conn {
    struct admin *admin;
    struct admin_conn *prev; /* older */
    struct admin_conn *next; /* newer */
    struct sockaddr_storage peer;
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
    struct admin *a = c->admin;
    ev_io_stop(a->loop, &c->io);
    ev_timer_stop(a->loop, &c->timer);
    close(c->fd);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        a->oldest = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    } else {
        a->newest = c->prev;
    }
    c->prev = c->next = NULL;
    a->n_conns--;
    ev_defer(a->loop, &c->defer, conn_free, c);
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
        return;
    }
    ev_timer_start(c->admin->loop, &c->timer, ADMIN_WRITE_TIMEOUT_MS);
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

/* ---------------------------------------------------------------- accepting */

static bool same_source(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    unsigned alen, blen;
    const void *ab = sock_addr_bytes((const struct sockaddr *)a, &alen);
    const void *bb = sock_addr_bytes((const struct sockaddr *)b, &blen);
    return alen == blen && memcmp(ab, bb, alen) == 0;
}

static uint32_t source_count(const struct admin *a, const struct sockaddr_storage *peer)
{
    uint32_t n = 0;
    for (const struct admin_conn *c = a->oldest; c != NULL; c = c->next) {
        n += same_source(&c->peer, peer);
    }
    return n;
}

/* At the overall cap, a newcomer from a source holding `have` connections takes the slot of
 * the oldest connection still waiting for its request from the source holding the most, if
 * that source holds more than the newcomer's: busy or hostile addresses then cannot lock out
 * a health checker or a scraper that comes from another one (it holds none, or fewer; among
 * equals the oldest idle connection goes first). NULL: no such connection. */
static struct admin_conn *eviction_victim(const struct admin *a, uint32_t have)
{
    struct admin_conn *victim = NULL;
    uint32_t most = have;
    for (struct admin_conn *c = a->oldest; c != NULL; c = c->next) {
        if (c->is_writing) {
            continue; /* it is being answered: let it finish */
        }
        uint32_t n = source_count(a, &c->peer);
        if (n > most) { /* the oldest of a strictly heavier source: it comes first in order */
            most = n;
            victim = c;
        }
    }
    return victim;
}

static void on_accept_resume(struct ev_loop *loop, struct ev_timer *t)
{
    struct admin *a = t->data;
    if (ev_io_set(loop, &a->io, EV_READ) != 0) {
        log_error("admin", "cannot watch the admin listener again");
    }
}

/* No descriptor for the next connection: stop polling for FDLIMIT_PAUSE_MS rather than wake
 * up again at once for the same pending connection (level-triggered epoll would spin). */
static void accept_pause(struct admin *a, int err)
{
    if (ev_io_set(a->loop, &a->io, 0) == 0) {
        ev_timer_start(a->loop, &a->pause, FDLIMIT_PAUSE_MS);
    }
    uint64_t span_ms;
    uint32_t n = fdlimit_throttle_hit(&a->pause_throttle, ev_now_ms(a->loop), &span_ms);
    if (n > 0) {
        log_warn("admin",
                 "%s: accept() failed: %s; accepting paused for %d ms (%u pause%s in %.1f s)",
                 a->addr, strerror(-err), FDLIMIT_PAUSE_MS, n, n == 1 ? "" : "s",
                 (double)span_ms / 1000.0);
    }
}

/* Close a connection over a cap (is_per_source: its address's, else the listener's). */
static void refuse(struct admin *a, int fd, const struct sockaddr_storage *peer, bool is_per_source)
{
    close(fd);
    uint64_t span_ms;
    uint32_t n = fdlimit_throttle_hit(&a->refuse_throttle, ev_now_ms(a->loop), &span_ms);
    if (n == 0) {
        return;
    }
    char ip[64], why[96];
    if (is_per_source) {
        (void)snprintf(why, sizeof(why),
                       "its address has %d connections open, the most one "
                       "address may",
                       FDLIMIT_ADMIN_CONN_PER_SOURCE);
    } else {
        (void)snprintf(why, sizeof(why), "%d connections open, the most", FDLIMIT_ADMIN_CONN_MAX);
    }
    log_warn("admin", "%s refused a connection from %s: %s (%u refused in %.1f s)", a->addr,
             sock_addr_ip((const struct sockaddr *)peer, ip, sizeof(ip)), why, n,
             (double)span_ms / 1000.0);
}

/* Whether a connection from peer may open now; may close an older one to make room. */
static bool admit(struct admin *a, int fd, const struct sockaddr_storage *peer)
{
    uint32_t have = source_count(a, peer);
    if (have >= FDLIMIT_ADMIN_CONN_PER_SOURCE) {
        refuse(a, fd, peer, true);
        return false;
    }
    if (a->n_conns >= FDLIMIT_ADMIN_CONN_MAX) {
        struct admin_conn *victim = eviction_victim(a, have);
        if (victim == NULL) {
            refuse(a, fd, peer, false);
            return false;
        }
        conn_close(victim);
    }
    return true;
}

static void on_accept(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)events;
    struct admin *a = io->data;
    for (int i = 0; i < ADMIN_ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t plen;
        int fd = sock_accept(a->fd, &peer, &plen);
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            accept_pause(a, fd);
            return;
        }
        if (fd == -ECONNABORTED || fd == -EINTR) {
            continue;
        }
        if (fd < 0) {
            return; /* -EAGAIN, or an error of the pending connection (consumed) */
        }
        if (!admit(a, fd, &peer)) {
            continue;
        }
        struct admin_conn *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->admin = a;
        c->fd = fd;
        c->peer = peer;
        http_parser_init(&c->parser, false, 4096, ADMIN_HEAD_MAX);
        ev_timer_init(&c->timer, on_conn_timeout, c, "admin");
        if (ev_io_start(loop, &c->io, fd, EV_READ, on_conn_event, c, "admin") != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->prev = a->newest;
        if (a->newest != NULL) {
            a->newest->next = c;
        } else {
            a->oldest = c;
        }
        a->newest = c;
        a->n_conns++;
        ev_timer_start(loop, &c->timer, ADMIN_HEAD_TIMEOUT_MS);
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
    (void)sock_addr_text(sa, a->addr, sizeof(a->addr));
    ev_timer_init(&a->pause, on_accept_resume, a, "admin-resume");
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
    ev_timer_stop(a->loop, &a->pause);
    close(a->fd);
    while (a->oldest != NULL) {
        conn_close(a->oldest); /* they point at a */
    }
    ev_free_later(a->loop, a); /* an accept event may be pending in this batch */
}
