/* SPDX-License-Identifier: MIT */
/* The handler of responses keel makes itself (see http_local.h). It builds the request view
 * the content handlers read (struct http_local_req), lets http_static.c fill the exchange's
 * struct http_local_resp, and sends the result through the connection's transport: the
 * head (corked when a body follows), then the memory body or the file. A local response
 * never reads the request body, so a request that has one ends the connection. */
#include "http/http_local.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/http_conn.h"
#include "http/http_filecache.h"
#include "http/http_pool.h"
#include "http/http_redirect.h"
#include "http/http_static.h"
#include "http/http_transport.h"
#include "lb/lb.h"

/* A file is sent in pieces of at most this much, so one connection does not hold the loop. */
#define LOCAL_SENDFILE_MAX (1u << 20)

static void local_release(struct hp_conn *c)
{
    struct http_local_resp *r = &c->ex->h.local;
    if (r->file_entry != NULL) {
        http_filecache_release(r->file_entry);
        r->file_entry = NULL;
    } else if (r->file_fd != -1) {
        close(r->file_fd);
    }
    r->file_fd = -1;
    r->file_left = 0;
    if (!r->mem_is_borrowed) {
        free(r->mem_body);
    }
    r->mem_body = NULL;
    r->mem_is_borrowed = false;
    r->mem_len = r->mem_sent = 0;
}

/* The request as the content handlers see it; the head is still at the start of c->in. */
static struct http_local_req local_req(struct hp_conn *c, uint32_t loc_index)
{
    return (struct http_local_req){.msg = &c->ex->req,
                                   .buf = buf_head(&c->in),
                                   .method = c->ex->method,
                                   .served_by = c->fe->conf->served_by,
                                   .hsts = http_xprt_is_secure(&c->xp) ? c->fe->conf->tls.hsts : "",
                                   .cache = &c->w->filecache,
                                   .gen_id = c->gen->id,
                                   .fe_id = c->fe->id,
                                   .loc_index = loc_index,
                                   .now_ms = ev_now_ms(c->w->loop)};
}

/* Make the exchange a local one, before its head is written, and give out its storage.
 * NULL when out of memory: the caller closes the connection. */
static struct http_local_resp *local_begin(struct hp_conn *c)
{
    if (http_buf_acquire(&c->out) != 0) {
        return NULL;
    }
    if (!c->ex->req_body.is_done) {
        c->close_after = true; /* the body is never read: the head says Connection: close */
    }
    struct http_local_resp *r = &c->ex->h.local;
    memset(r, 0, sizeof(*r));
    r->out = &c->out;
    r->file_fd = -1;
    r->is_close = c->close_after || !c->ex->req_keepalive;
    c->ex->handler = &hp_local_handler;
    return r;
}

/* Send what local_begin's caller prepared: HP_STATE_LOCAL. */
static void local_go(struct hp_conn *c)
{
    struct http_local_resp *r = &c->ex->h.local;
    if (r->is_close) {
        c->close_after = true;
    }
    c->ex->status = r->status;
    buf_consume(&c->in, c->ex->req.head_len);
    c->ex->body_scanned = 0;
    c->ex->res_bytes = 0;
    hp_conn_set_state(c, HP_STATE_LOCAL, "local response");
    ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_client_ms);
}

void hp_local_start_text(struct hp_conn *c, int status, const char *why)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, http_status_reason(status), why);
    struct http_local_resp *r = local_begin(c);
    if (r == NULL) {
        hp_conn_close(c, "out of memory for a response");
        return;
    }
    struct http_local_req q = local_req(c, 0);
    http_local_respond(r, &q, status, "", body, n > 0 ? (size_t)n : 0);
    local_go(c);
}

void hp_local_start_body(struct hp_conn *c, int status, const char *body, size_t len)
{
    struct http_local_resp *r = local_begin(c);
    if (r == NULL) {
        hp_conn_close(c, "out of memory for a response");
        return;
    }
    struct http_local_req q = local_req(c, 0);
    http_local_respond(r, &q, status, "", body, len);
    local_go(c);
}

void hp_local_start_redirect_https(struct hp_conn *c)
{
    const struct http_msg *m = &c->ex->req;
    const char *buf = buf_head(&c->in);
    if (m->host_index < 0) {
        hp_local_start_text(c, 400, "no Host header to redirect to https with");
        return;
    }
    const struct http_span *host = &m->headers[m->host_index].value;
    size_t cap = host->len + 3 * m->target.len + 16;
    char *loc = malloc(cap), *head = malloc(cap + 16), *body = malloc(cap + 48);
    int n = -ENOMEM;
    if (loc != NULL && head != NULL && body != NULL) {
        n = http_redirect_location(buf + host->off, host->len, c->fe->conf->tls.https_port,
                                   buf + m->target.off, m->target.len, loc, cap);
    }
    if (n == -EINVAL) {
        hp_local_start_text(c, 400, "the Host header is not a host name");
    } else if (n < 0) {
        hp_conn_close(c, "out of memory for a response");
    } else {
        struct http_local_resp *r = local_begin(c);
        if (r == NULL) {
            hp_conn_close(c, "out of memory for a response");
        } else {
            int status = http_redirect_status(c->ex->method);
            (void)snprintf(head, cap + 16, "Location: %s\r\n", loc);
            int b =
                snprintf(body, cap + 48, "%d %s: %s\n", status, http_status_reason(status), loc);
            struct http_local_req q = local_req(c, 0);
            http_local_respond(r, &q, status, head, body, b > 0 ? (size_t)b : 0);
            local_go(c);
        }
    }
    free(loc);
    free(head);
    free(body);
}

void hp_local_start_location(struct hp_conn *c, const struct conf_location *loc, int index,
                             const char *path, size_t path_len)
{
    struct http_local_resp *r = local_begin(c);
    if (r == NULL) {
        hp_conn_close(c, "out of memory for a response");
        return;
    }
    struct http_local_req q = local_req(c, (uint32_t)index);
    if (loc->action == CONF_LOC_STATIC) {
        http_static_respond(r, &q, loc, c->fe->loc_root_fds[index], path, path_len);
    } else {
        http_return_respond(r, &q, loc);
    }
    local_go(c);
}

static void local_finish(struct hp_conn *c)
{
    local_release(c);
    hp_exchange_account(c);
    hp_exchange_done(c);
}

/* One write of what comes next: the head, the memory body, or a piece of the file. */
static ssize_t local_write(struct hp_conn *c, struct http_local_resp *r)
{
    bool more = r->file_left > 0 || r->mem_sent < r->mem_len;
    if (c->out.len > 0 && r->mem_sent < r->mem_len) {
        struct iovec iov[2] = {
            {.iov_base = buf_head(&c->out), .iov_len = c->out.len},
            {.iov_base = r->mem_body + r->mem_sent, .iov_len = r->mem_len - r->mem_sent},
        };
        return http_xprt_writev(&c->xp, iov, 2, 0);
    }
    if (c->out.len > 0) {
        return http_xprt_write(&c->xp, buf_head(&c->out), c->out.len, more ? HTTP_XPRT_MORE : 0);
    }
    if (r->mem_sent < r->mem_len) {
        return http_xprt_write(&c->xp, r->mem_body + r->mem_sent, r->mem_len - r->mem_sent, 0);
    }
    uint64_t off = r->file_off;
    size_t chunk = r->file_left < LOCAL_SENDFILE_MAX ? (size_t)r->file_left : LOCAL_SENDFILE_MAX;
    return http_xprt_sendfile(&c->xp, r->file_fd, &off, chunk);
}

/* Push the response out until it is all written or the client socket is full. */
static void local_step(struct hp_conn *c)
{
    struct http_local_resp *r = &c->ex->h.local;
    while (!c->client_write_blocked) {
        if (c->out.len == 0 && r->mem_sent == r->mem_len && r->file_left == 0) {
            local_finish(c);
            return;
        }
        ssize_t n = local_write(c, r);
        if (n == 0 && c->out.len == 0 && r->mem_sent == r->mem_len) {
            hp_conn_close(c, "file shrank while being sent");
            return;
        }
        if (n < 0) {
            if (n == -EAGAIN) {
                c->client_write_blocked = true;
                return;
            }
            hp_conn_close(c, "client write failed");
            return;
        }
        size_t done = (size_t)n;
        metrics_add(&metrics_local(c->fe->metrics)->bytes_out, done);
        c->ex->res_bytes += done;
        ev_timer_start(c->w->loop, &c->timer, c->fe->conf->timeout_client_ms);
        if (c->out.len > 0) {
            size_t from_out = done < c->out.len ? done : c->out.len;
            buf_consume(&c->out, from_out);
            r->mem_sent += done - from_out; /* a writev of the head and a memory body */
        } else if (r->mem_sent < r->mem_len) {
            r->mem_sent += done;
        } else {
            r->file_off += done;
            r->file_left -= done;
        }
    }
}

const struct hp_handler hp_local_handler = {
    .name = "local",
    .step = local_step,
    .sync = NULL,
    .release = local_release,
};
