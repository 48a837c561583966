/* SPDX-License-Identifier: MIT */
/* `keel backend`: a tiny HTTP/1.1 server that answers with its own name. It stands in for
 * the web tier in `keel up`, and is the backend of tests and benchmarks (keep-alive,
 * pipelining, request bodies of any size discarded as they arrive, slow and failing
 * answers on demand). One event loop per thread, SO_REUSEPORT listeners, each served by the
 * embedded HTTP server (http/http_server.c) with one catch-all route. */
#include "demo/demo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ev.h"
#include "http/http_server.h"

#define BK_BUF 16384
#define BK_MAX_WORKERS 16

struct bk_server {
    char name[64];
    char headers[96]; /* "X-Server: NAME\r\n" on every answer */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool log_requests;
    struct http_route route;
    struct http_server_conf conf;
};

/* A /slow answer waiting for its timer. */
struct bk_slow {
    struct http_server_req *req;
    const struct bk_server *srv;
    struct ev_timer timer;
};

static bool query_uint(const struct http_server_req *req, const char *key, unsigned long *out)
{
    if (req->query == NULL) {
        return false;
    }
    char q[256];
    (void)snprintf(q, sizeof(q), "%.*s", (int)req->query_len, req->query);
    size_t kl = strlen(key);
    for (const char *p = q; p != NULL; p = strchr(p, '&')) {
        p += *p == '&';
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            char *end;
            errno = 0;
            unsigned long v = strtoul(p + kl + 1, &end, 10);
            if (errno == 0 && end != p + kl + 1) {
                *out = v;
                return true;
            }
            return false;
        }
    }
    return false;
}

static bool path_is(const struct http_server_req *req, const char *p)
{
    size_t n = strlen(p);
    return req->path_len == n && memcmp(req->path, p, n) == 0;
}

static void reply(struct http_server_req *req, int status, const char *body, size_t len,
                  size_t chunk_size)
{
    http_server_respond(req, status, "text/plain", NULL, body, len, chunk_size);
}

static void answer_size(struct http_server_req *req, unsigned long bytes)
{
    static const char fill[BK_BUF] = {[0 ... BK_BUF - 1] = 'x'};
    if (bytes > BK_BUF - 512) {
        bytes = BK_BUF - 512; /* the reply must fit the output buffer */
    }
    reply(req, 200, fill, bytes, 0);
}

/* Answer the request whose body was received (and dropped). */
static void answer(struct http_server_req *req, const struct bk_server *srv)
{
    char body[BK_BUF / 2];
    unsigned long v = 0;
    int n;
    if (path_is(req, "/healthz")) {
        reply(req, 200, "ok\n", 3, 0);
    } else if (path_is(req, "/status") && query_uint(req, "code", &v) && v >= 200 && v <= 599) {
        n = snprintf(body, sizeof(body), "%s status %lu\n", srv->name, v);
        reply(req, (int)v, body, (size_t)n, 0);
    } else if (path_is(req, "/upload")) {
        n = snprintf(body, sizeof(body), "%s received=%lu\n", srv->name,
                     (unsigned long)req->body_len);
        reply(req, 200, body, (size_t)n, 0);
    } else if (path_is(req, "/headers")) {
        size_t len = req->msg->head_len < sizeof(body) ? req->msg->head_len : sizeof(body);
        reply(req, 200, req->head, len, 0);
    } else if (path_is(req, "/chunked")) {
        n = snprintf(body, sizeof(body), "%s chunked response body\n", srv->name);
        /* Three chunks and a trailer-less end. */
        reply(req, 200, body, (size_t)n, (size_t)n / 3 == 0 ? (size_t)n : (size_t)n / 3);
    } else if (path_is(req, "/size") && query_uint(req, "bytes", &v)) {
        answer_size(req, v);
    } else {
        n = snprintf(body, sizeof(body), "%s\n", srv->name);
        reply(req, 200, body, (size_t)n, 0);
    }
}

static void on_slow_done(struct ev_loop *loop, struct ev_timer *t)
{
    struct bk_slow *w = t->data;
    struct http_server_req *req = w->req;
    const struct bk_server *srv = w->srv;
    ev_free_later(loop, w);
    http_server_req_on_abort(req, NULL, NULL);
    answer(req, srv);
}

static void on_slow_abort(void *data)
{
    struct bk_slow *w = data;
    struct ev_loop *loop = http_server_req_loop(w->req);
    ev_timer_stop(loop, &w->timer);
    ev_free_later(loop, w);
}

static void on_request(struct http_server_req *req, void *data)
{
    const struct bk_server *srv = data;
    unsigned long ms = 0;
    if (path_is(req, "/slow") && query_uint(req, "ms", &ms)) {
        struct bk_slow *w = calloc(1, sizeof(*w));
        if (w != NULL) {
            w->req = req;
            w->srv = srv;
            ev_timer_init(&w->timer, on_slow_done, w, "slow");
            ev_timer_start(http_server_req_loop(req), &w->timer, ms);
            http_server_req_on_abort(req, on_slow_abort, w);
            return;
        }
    }
    answer(req, srv);
}

static void on_head(const struct http_server_req *req, void *data)
{
    const struct bk_server *srv = data;
    if (srv->log_requests) {
        fprintf(stderr, "backend %s: request %.*s %.*s\n", srv->name,
                (int)req->msg->method_span.len, req->head + req->msg->method_span.off,
                (int)req->msg->target.len, req->head + req->msg->target.off);
    }
}

struct bk_worker {
    struct ev_loop *loop;
    struct http_server *server;
    pthread_t thread;
};

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

int demo_backend_main(int argc, char **argv)
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
    (void)snprintf(srv.headers, sizeof(srv.headers), "X-Server: %s\r\n", srv.name);
    srv.route = (struct http_route){
        .path = "/", .is_prefix = true, .body = HTTP_SERVER_BODY_DISCARD, .handler = on_request};
    srv.conf = (struct http_server_conf){
        .name = "backend",
        .routes = &srv.route,
        .n_routes = 1,
        .data = &srv,
        .on_head = on_head,
        .headers = srv.headers,
        .is_keepalive = true,
        .is_reuseport = true,
        .backlog = 1024,
        .max_head = BK_BUF,
    };
    for (unsigned long i = 0; i < n_workers; i++) {
        struct errbuf eb = {0};
        struct bk_worker *w = &workers[i];
        w->loop = ev_loop_new();
        if (w->loop != NULL) {
            w->server = http_server_start(w->loop, (const struct sockaddr *)&srv.addr, srv.addrlen,
                                          &srv.conf, &eb);
        }
        if (w->loop == NULL || w->server == NULL) {
            fprintf(stderr, "keel backend: %s\n", w->loop != NULL ? eb.msg : "cannot create loop");
            return KEEL_EXIT_RUNTIME;
        }
        if (pthread_create(&w->thread, NULL, bk_worker_main, w) != 0) {
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
