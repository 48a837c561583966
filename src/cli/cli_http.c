/* SPDX-License-Identifier: MIT */
/* A blocking HTTP/1.1 GET for the command line tools: the asynchronous client
 * (http/http_client.c) run to completion on a private event loop. */
#include "cli/cli_http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/ev.h"
#include "http/http_client.h"

struct get {
    struct ev_loop *loop;
    int rc;
    int status;
    char *body;
    size_t len;
    struct errbuf *eb;
};

static void on_done(void *data, const struct http_client_response *resp)
{
    struct get *g = data;
    ev_loop_stop(g->loop);
    if (resp->err != 0) {
        g->rc = resp->err;
        errbuf_set(g->eb, "%s",
                   resp->err == -ETIMEDOUT      ? "timed out"
                   : resp->err == -ECONNREFUSED ? strerror(ECONNREFUSED)
                                                : resp->why);
        return;
    }
    g->body = malloc(resp->body_len + 1);
    if (g->body == NULL) {
        g->rc = -ENOMEM;
        errbuf_set(g->eb, "out of memory");
        return;
    }
    memcpy(g->body, resp->body, resp->body_len + 1); /* with its NUL */
    g->len = resp->body_len;
    g->status = resp->status;
    g->rc = 0;
}

int cli_http_get(const struct sockaddr *addr, socklen_t addrlen, const char *path, int timeout_ms,
                 int *status, char **body, size_t *len, struct errbuf *eb)
{
    struct get g = {.loop = ev_loop_new(), .rc = -EINPROGRESS, .eb = eb};
    if (g.loop == NULL) {
        errbuf_set(eb, "cannot create an event loop: %s", strerror(errno));
        return -ENOMEM;
    }
    uint64_t deadline = ev_now_ms(g.loop) + (uint64_t)timeout_ms;
    struct http_client_request req = {.addr = addr,
                                      .addrlen = addrlen,
                                      .method = "GET",
                                      .host = "keel",
                                      .path = path,
                                      .connect_deadline_ms = deadline,
                                      .deadline_ms = deadline,
                                      .max_body = CLI_HTTP_MAX_BODY};
    struct http_client *h = NULL;
    int rc = http_client_start(g.loop, &req, on_done, &g, &h);
    if (rc != 0) {
        errbuf_set(eb, "%s", strerror(-rc));
        ev_loop_free(g.loop);
        return rc;
    }
    (void)ev_run(g.loop); /* until on_done */
    ev_loop_free(g.loop);
    if (g.rc != 0) {
        return g.rc;
    }
    *status = g.status;
    *body = g.body;
    *len = g.len;
    return 0;
}
