/* SPDX-License-Identifier: MIT */
/* The admin listener (see admin.h): one route of the embedded HTTP server
 * (http/http_server.c) that hands GET, HEAD and OPTIONS requests to the handler.
 * Connections are short: one request head within a timeout, the whole response, close. The
 * listener is part of the control plane and lives on the reserve of descriptors
 * (core/fdlimit.h), so it caps its own connections: FDLIMIT_ADMIN_CONN_MAX in all,
 * FDLIMIT_ADMIN_CONN_PER_SOURCE from one address (a newcomer over a cap takes the slot of an
 * idle connection, http_server.h). */
#include "monitor/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fdlimit.h"
#include "http/http_server.h"

/* A health check, a scraper or curl sends its request at once: a second is plenty on any
 * network keel runs on, and a connection that sends nothing gives its slot back soon. The
 * response (a large /metrics to a slow reader) gets longer. */
#define ADMIN_HEAD_TIMEOUT_MS 1000
#define ADMIN_WRITE_TIMEOUT_MS 5000
#define ADMIN_HEAD_MAX 8192
#define ADMIN_RESPONSE_MAX (64u << 20)

struct admin {
    struct http_server *server;
    admin_handler_fn handler;
    void *data;
    struct http_route route;
    struct http_server_conf conf;
};

static void on_request(struct http_server_req *req, void *data)
{
    struct admin *a = data;
    char path[512];
    (void)snprintf(path, sizeof(path), "%.*s", (int)req->path_len, req->path);
    char query[512] = "";
    if (req->query != NULL) {
        (void)snprintf(query, sizeof(query), "%.*s", (int)req->query_len, req->query);
    }
    struct metrics_out body = {0};
    const char *ctype = "text/plain; charset=utf-8";
    int status = a->handler(path, query, &body, &ctype, a->data);
    if (body.failed) {
        static const char oom[] = "out of memory\n";
        http_server_respond(req, 500, "text/plain", NULL, oom, sizeof(oom) - 1, 0);
    } else {
        http_server_respond(req, status, ctype, NULL, body.data != NULL ? body.data : "", body.len,
                            0);
    }
    metrics_out_fini(&body);
}

struct admin *admin_start(struct ev_loop *loop, const struct sockaddr *sa, socklen_t salen,
                          admin_handler_fn handler, void *data, struct errbuf *eb)
{
    struct admin *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        errbuf_set(eb, "out of memory");
        return NULL;
    }
    a->handler = handler;
    a->data = data;
    a->route = (struct http_route){
        .path = "/",
        .is_prefix = true,
        .methods = HTTP_ROUTE_METHOD(HTTP_METHOD_GET) | HTTP_ROUTE_METHOD(HTTP_METHOD_HEAD) |
                   HTTP_ROUTE_METHOD(HTTP_METHOD_OPTIONS),
        .handler = on_request,
    };
    a->conf = (struct http_server_conf){
        .name = "admin",
        .routes = &a->route,
        .n_routes = 1,
        .data = a,
        .is_keepalive = false,
        .max_conns = FDLIMIT_ADMIN_CONN_MAX,
        .max_conns_per_source = FDLIMIT_ADMIN_CONN_PER_SOURCE,
        .head_timeout_ms = ADMIN_HEAD_TIMEOUT_MS,
        .write_timeout_ms = ADMIN_WRITE_TIMEOUT_MS,
        .max_head = ADMIN_HEAD_MAX,
        .max_response = ADMIN_RESPONSE_MAX,
    };
    a->server = http_server_start(loop, sa, salen, &a->conf, eb);
    if (a->server == NULL) {
        free(a);
        return NULL;
    }
    return a;
}

void admin_stop(struct admin *a)
{
    if (a == NULL) {
        return;
    }
    struct ev_loop *loop = http_server_loop(a->server);
    http_server_stop(a->server);
    ev_free_later(loop, a); /* the server's connections name a->conf until they are freed */
}
