/* SPDX-License-Identifier: MIT */
/* `keel backend`: a tiny HTTP/1.1 server that answers with its own name. It stands in for
 * the web tier in `keel up`, and is the backend of tests and benchmarks (keep-alive,
 * pipelining, request bodies of any size discarded as they arrive, slow and failing
 * answers on demand). One event loop per thread, SO_REUSEPORT listeners. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/conf-t.h"
#include "core/ev.h"
#include "core/log.h"
#include "core/sock.h"
#include "http/http_parse.h"

#define BK_BUF 16384
#define BK_MAX_WORKERS 16

struct bk_server {
    char name[64];
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool log_requests;
};

struct bk_conn {
    const struct bk_server *srv;
    struct ev_loop *loop;
    int fd;
    struct ev_io io;
    struct ev_timer timer; /* /slow delay */
    struct ev_defer defer;
    struct buf in;
    struct buf out;
    struct http_parser parser;
    struct http_msg req;
    bool in_body;    /* discarding the current request's body */
    bool is_waiting; /* a /slow answer is pending */
    bool close_after;
    enum http_body_kind body_kind;
    uint64_t body_left;
    struct http_chunked ck;
    uint64_t received;
    char path[256];
    enum http_method method;
    int minor;
    bool keepalive;
    bool is_closed;
};

static void bk_free(struct ev_loop *loop, void *data)
{
    (void)loop;
    struct bk_conn *c = data;
    buf_fini(&c->in);
    buf_fini(&c->out);
    free(c);
}

static void bk_close(struct bk_conn *c)
{
    if (c->is_closed) {
        return;
    }
    c->is_closed = true;
    ev_io_stop(c->loop, &c->io);
    ev_timer_stop(c->loop, &c->timer);
    close(c->fd);
    ev_defer(c->loop, &c->defer, bk_free, c);
}

static bool query_uint(const char *path, const char *key, unsigned long *out)
{
    const char *q = strchr(path, '?');
    size_t kl = strlen(key);
    while (q != NULL) {
        q++;
        if (strncmp(q, key, kl) == 0 && q[kl] == '=') {
            char *end;
            errno = 0;
            unsigned long v = strtoul(q + kl + 1, &end, 10);
            if (errno == 0 && end != q + kl + 1) {
                *out = v;
                return true;
            }
            return false;
        }
        q = strchr(q, '&');
    }
    return false;
}

static bool path_is(const char *path, const char *p)
{
    size_t n = strlen(p);
    return strncmp(path, p, n) == 0 && (path[n] == '\0' || path[n] == '?');
}

static void put_response(struct bk_conn *c, int status, const char *body, size_t len, bool chunked)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nX-Server: %s\r\nContent-Type: text/plain\r\n%s%s", status,
                     http_status_reason(status), c->srv->name,
                     c->close_after ? "Connection: close\r\n" : "",
                     chunked ? "Transfer-Encoding: chunked\r\n" : "");
    if (!chunked) {
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", len);
    }
    n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
    bool ok = buf_append(&c->out, head, (size_t)n);
    if (c->method == HTTP_METHOD_HEAD) {
        len = 0;
    }
    if (chunked && len > 0) {
        /* Three chunks and a trailer-less end. */
        size_t third = len / 3 == 0 ? len : len / 3;
        for (size_t off = 0; off < len && ok; off += third) {
            size_t k = len - off < third ? len - off : third;
            char sz[32];
            int m = snprintf(sz, sizeof(sz), "%zx\r\n", k);
            ok = buf_append(&c->out, sz, (size_t)m) && buf_append(&c->out, body + off, k) &&
                 buf_append(&c->out, "\r\n", 2);
        }
        ok = ok && buf_append(&c->out, "0\r\n\r\n", 5);
    } else if (len > 0) {
        ok = ok && buf_append(&c->out, body, len);
    }
    if (!ok) {
        c->close_after = true;
    }
}

static void answer_size(struct bk_conn *c, unsigned long bytes)
{
    static const char fill[1024] = {[0 ... 1023] = 'x'};
    char head[256];
    if (bytes > BK_BUF - 512) {
        bytes = BK_BUF - 512; /* the reply must fit the output buffer */
    }
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nX-Server: %s\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %lu\r\n%s\r\n",
                     c->srv->name, bytes, c->close_after ? "Connection: close\r\n" : "");
    bool ok = buf_append(&c->out, head, (size_t)n);
    for (unsigned long left = c->method == HTTP_METHOD_HEAD ? 0 : bytes; left > 0 && ok;) {
        size_t k = left < sizeof(fill) ? left : sizeof(fill);
        ok = buf_append(&c->out, fill, k);
        left -= k;
    }
    if (!ok) {
        c->close_after = true;
    }
}

/* Build the answer to the request whose body was just fully received. */
static void answer(struct bk_conn *c)
{
    char body[BK_BUF / 2];
    unsigned long v = 0;
    int n;
    if (path_is(c->path, "/healthz")) {
        put_response(c, 200, "ok\n", 3, false);
    } else if (path_is(c->path, "/status") && query_uint(c->path, "code", &v) && v >= 200 &&
               v <= 599) {
        n = snprintf(body, sizeof(body), "%s status %lu\n", c->srv->name, v);
        put_response(c, (int)v, body, (size_t)n, false);
    } else if (path_is(c->path, "/upload")) {
        n = snprintf(body, sizeof(body), "%s received=%lu\n", c->srv->name,
                     (unsigned long)c->received);
        put_response(c, 200, body, (size_t)n, false);
    } else if (path_is(c->path, "/headers")) {
        size_t len = c->req.head_len < sizeof(body) ? c->req.head_len : sizeof(body);
        memcpy(body, buf_head(&c->in), len);
        put_response(c, 200, body, len, false);
    } else if (path_is(c->path, "/chunked")) {
        n = snprintf(body, sizeof(body), "%s chunked response body\n", c->srv->name);
        put_response(c, 200, body, (size_t)n, true);
    } else if (path_is(c->path, "/size") && query_uint(c->path, "bytes", &v)) {
        answer_size(c, v);
    } else {
        n = snprintf(body, sizeof(body), "%s\n", c->srv->name);
        put_response(c, 200, body, (size_t)n, false);
    }
}

static void bk_step(struct bk_conn *c);

static void on_slow_done(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct bk_conn *c = t->data;
    c->is_waiting = false;
    answer(c);
    buf_consume(&c->in, c->req.head_len);
    c->in_body = false;
    bk_step(c);
}

static void start_request(struct bk_conn *c)
{
    const char *b = buf_head(&c->in);
    snprintf(c->path, sizeof(c->path), "%.*s", (int)c->req.target.len, b + c->req.target.off);
    c->method = c->req.method;
    c->minor = c->req.version_minor;
    c->keepalive = http_msg_keepalive(&c->req);
    c->close_after = !c->keepalive;
    c->received = 0;
    c->body_kind = http_request_body_kind(&c->req);
    c->body_left = c->req.content_length;
    http_chunked_init(&c->ck);
    if (c->srv->log_requests) {
        fprintf(stderr, "backend %s: request %.*s %s\n", c->srv->name, (int)c->req.method_span.len,
                b + c->req.method_span.off, c->path);
    }
    if ((c->req.flags & HTTP_F_EXPECT_CONTINUE) != 0 && c->body_kind != HTTP_BODY_NONE) {
        bool ok = buf_append_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
        (void)ok; /* out is empty between requests */
    }
    c->in_body = true;
}

static void count_data(void *ctx, const char *data, size_t len)
{
    (void)data;
    ((struct bk_conn *)ctx)->received += len;
}

/* Discard body bytes that follow the head. Returns true when the body is complete. */
static bool eat_body(struct bk_conn *c)
{
    size_t base = c->req.head_len;
    size_t avail = c->in.len - base;
    size_t used = 0;
    bool done = false;
    if (c->body_kind == HTTP_BODY_NONE) {
        done = true;
    } else if (c->body_kind == HTTP_BODY_LENGTH) {
        used = c->body_left < avail ? (size_t)c->body_left : avail;
        c->body_left -= used;
        c->received += used;
        done = c->body_left == 0;
    } else {
        int rc = http_chunked_scan(&c->ck, buf_head(&c->in) + base, avail, &used, count_data, c);
        if (rc != 0 && rc != -EAGAIN) {
            c->close_after = true;
            put_response(c, 400, "bad chunked body\n", 17, false);
            return true;
        }
        done = rc == 0;
    }
    /* Drop the consumed body bytes but keep the head (for /headers) in place. */
    memmove(buf_head(&c->in) + base, buf_head(&c->in) + base + used, avail - used);
    c->in.len -= used;
    return done;
}

static void bk_flush(struct bk_conn *c)
{
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, buf_head(&c->out), c->out.len, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                bk_close(c);
            }
            return;
        }
        buf_consume(&c->out, (size_t)n);
    }
}

static void bk_step(struct bk_conn *c)
{
    while (!c->is_closed && !c->is_waiting && c->out.len < BK_BUF / 2) {
        if (!c->in_body) {
            if (c->close_after) {
                break;
            }
            int rc = http_parse_head(&c->parser, buf_head(&c->in), c->in.len, &c->req);
            if (rc == -EAGAIN) {
                break;
            }
            if (rc != 0) {
                c->close_after = true;
                c->method = HTTP_METHOD_GET;
                put_response(c, http_parse_error_status(rc), "bad request\n", 12, false);
                break;
            }
            start_request(c);
        }
        if (!eat_body(c)) {
            break;
        }
        unsigned long ms = 0;
        http_parser_init(&c->parser, false, 8192, BK_BUF);
        if (path_is(c->path, "/slow") && query_uint(c->path, "ms", &ms)) {
            c->is_waiting = true;
            ev_timer_start(c->loop, &c->timer, ms);
            break;
        }
        answer(c);
        buf_consume(&c->in, c->req.head_len);
        c->in_body = false;
    }
    if (c->is_closed) {
        return;
    }
    bk_flush(c);
    if (c->is_closed) {
        return;
    }
    if (c->close_after && c->out.len == 0 && !c->in_body && !c->is_waiting) {
        bk_close(c);
        return;
    }
    uint32_t ev = c->out.len > 0 ? EV_WRITE : 0;
    if (buf_tailroom(&c->in) > 0 && c->out.len < BK_BUF / 2) {
        ev |= EV_READ;
    }
    if (ev_io_set(c->loop, &c->io, ev) != 0) {
        bk_close(c);
    }
}

static void on_conn_event(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    struct bk_conn *c = io->data;
    if ((events & EV_READ) != 0) {
        buf_compact(&c->in);
        ssize_t n = sock_recv(c->fd, buf_tail(&c->in), buf_tailroom(&c->in));
        if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
            bk_close(c);
            return;
        }
        if (n > 0) {
            buf_commit(&c->in, (size_t)n);
        }
    }
    bk_step(c);
}

struct bk_worker {
    const struct bk_server *srv;
    struct ev_loop *loop;
    int lfd;
    struct ev_io lio;
    pthread_t thread;
};

static void on_accept(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)events;
    struct bk_worker *w = io->data;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage peer;
        socklen_t plen;
        int fd = sock_accept(w->lfd, &peer, &plen);
        if (fd < 0) {
            return;
        }
        struct bk_conn *c = calloc(1, sizeof(*c));
        if (c == NULL || buf_init(&c->in, BK_BUF) != 0 || buf_init(&c->out, BK_BUF) != 0) {
            if (c != NULL) {
                buf_fini(&c->in);
                free(c);
            }
            close(fd);
            continue;
        }
        c->srv = w->srv;
        c->loop = loop;
        c->fd = fd;
        http_parser_init(&c->parser, false, 8192, BK_BUF);
        ev_timer_init(&c->timer, on_slow_done, c, "slow");
        if (ev_io_start(loop, &c->io, fd, EV_READ, on_conn_event, c, "backend") != 0) {
            bk_close(c);
        }
    }
}

static void *bk_worker_main(void *arg)
{
    struct bk_worker *w = arg;
    ev_run(w->loop);
    return NULL;
}

static int parse_listen(const char *text, struct bk_server *srv)
{
    char host[128];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof(host)) {
        return -1;
    }
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port == 0 || port > 65535) {
        return -1;
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)&srv->addr;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host[0] == '\0' ? "0.0.0.0" : host, &sin->sin_addr) != 1) {
        return -1;
    }
    srv->addrlen = sizeof(*sin);
    return 0;
}

int cli_backend(int argc, char **argv)
{
    static struct bk_server srv;
    static struct bk_worker workers[BK_MAX_WORKERS];
    const char *listen_text = NULL;
    unsigned long n_workers = 1;
    static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {NULL, 0, NULL, 0}};
    snprintf(srv.name, sizeof(srv.name), "backend");
    srv.log_requests = true;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "n:l:w:q", opts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            snprintf(srv.name, sizeof(srv.name), "%s", optarg);
            break;
        case 'l':
            listen_text = optarg;
            break;
        case 'w':
            n_workers = strtoul(optarg, NULL, 10);
            break;
        case 'q':
            srv.log_requests = false;
            break;
        default:
            goto usage;
        }
    }
    if (listen_text == NULL || parse_listen(listen_text, &srv) != 0 || n_workers == 0 ||
        n_workers > BK_MAX_WORKERS) {
        goto usage;
    }
    signal(SIGPIPE, SIG_IGN);
    for (unsigned long i = 0; i < n_workers; i++) {
        struct errbuf eb;
        struct bk_worker *w = &workers[i];
        w->srv = &srv;
        w->loop = ev_loop_new();
        w->lfd = sock_listen((const struct sockaddr *)&srv.addr, srv.addrlen, true, 1024, &eb);
        if (w->loop == NULL || w->lfd < 0) {
            fprintf(stderr, "keel backend: %s\n", w->lfd < 0 ? eb.msg : "cannot create loop");
            return KEEL_EXIT_RUNTIME;
        }
        if (ev_io_start(w->loop, &w->lio, w->lfd, EV_READ, on_accept, w, "accept") != 0 ||
            pthread_create(&w->thread, NULL, bk_worker_main, w) != 0) {
            fprintf(stderr, "keel backend: cannot start worker\n");
            return KEEL_EXIT_RUNTIME;
        }
    }
    fprintf(stderr, "backend %s: listening on %s\n", srv.name, listen_text);
    for (unsigned long i = 0; i < n_workers; i++) {
        pthread_join(workers[i].thread, NULL);
    }
    return KEEL_EXIT_OK;
usage:
    fprintf(stderr, "usage: keel backend --name NAME --listen IP:PORT [--workers N] [--quiet]\n");
    return KEEL_EXIT_USAGE;
}
