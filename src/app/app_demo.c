/* SPDX-License-Identifier: MIT */
/* `keel demo-app`: the built-in demo application that `run builtin demo` supervises. A
 * small dynamic site on one event loop: / (HTML) and /api/info (JSON) show the app node
 * that answered, the web node that forwarded the request (its X-Served-By header), a
 * request counter of this process and its uptime; /healthz answers "ok". HTTP/1.1 with
 * keep-alive and pipelining, HEAD, 404 for other paths, 405 for other methods. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/conf.h"
#include "core/ev.h"
#include "core/sock.h"
#include "http/http_parse.h"

#define DEMO_IN_MAX 16384   /* a request head must fit */
#define DEMO_OUT_MAX 65536  /* answers waiting to be sent */
#define DEMO_OUT_HIGH 32768 /* stop answering pipelined requests above this */
#define DEMO_IDLE_MS 60000  /* a connection without a request for this long is closed */
#define DEMO_PAGE_MAX 8192
#define DEMO_HEAD_MAX (DEMO_IN_MAX / 2) /* larger request heads get 431 */

struct demo {
    struct ev_loop *loop;
    char node[CONF_NAME_MAX]; /* the app node: --name, KEEL_NODE or the host name */
    char app[CONF_NAME_MAX];  /* KEEL_APP or "demo" */
    char listen[128];
    int lfd;
    struct ev_io lio;
    uint64_t requests;
    uint64_t started_ms;
};

struct demo_conn {
    struct demo *d;
    int fd;
    struct ev_io io;
    struct ev_timer idle;
    struct buf in;
    struct buf out;
    struct http_parser parser;
    struct http_msg req;
    struct ev_defer defer;
    bool close_after; /* answer what is queued, then close */
    bool is_closed;
};

/* ------------------------------------------------------------------------------------------
 * Pages
 * ------------------------------------------------------------------------------------------ */

static void html_escape(const char *s, size_t len, char *out, size_t size)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 7 < size; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '&':
            rep = "&amp;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            out[k++] = s[i];
            continue;
        }
        size_t rl = strlen(rep);
        memcpy(out + k, rep, rl);
        k += rl;
    }
    out[k] = '\0';
}

static void json_escape(const char *s, size_t len, char *out, size_t size)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 7 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[k++] = '\\';
            out[k++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            k += (size_t)snprintf(out + k, size - k, "\\u%04x", c);
        } else {
            out[k++] = (char)c;
        }
    }
    out[k] = '\0';
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct demo_info {
    char web[256]; /* X-Served-By, "" when none */
    uint64_t requests;
    uint64_t uptime_s;
};

static int page_html(const struct demo *d, const struct demo_info *in, char *out, size_t size)
{
    char node[CONF_NAME_MAX * 6], app[CONF_NAME_MAX * 6], web[sizeof(in->web) * 6];
    html_escape(d->node, strlen(d->node), node, sizeof(node));
    html_escape(d->app, strlen(d->app), app, sizeof(app));
    html_escape(in->web, strlen(in->web), web, sizeof(web));
    return snprintf(out, size,
                    "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
                    "<title>keel demo: %s</title>\n<style>body{font-family:sans-serif;"
                    "margin:3em}td{padding:.2em 1em}</style></head>\n<body>\n"
                    "<h1>keel demo application</h1>\n<table>\n"
                    "<tr><td>app node</td><td id=\"app-node\">%s</td></tr>\n"
                    "<tr><td>web node</td><td id=\"web-node\">%s</td></tr>\n"
                    "<tr><td>app</td><td id=\"app\">%s</td></tr>\n"
                    "<tr><td>listening on</td><td id=\"listen\">%s</td></tr>\n"
                    "<tr><td>process</td><td id=\"pid\">%d</td></tr>\n"
                    "<tr><td>requests served by this process</td><td id=\"requests\">%lu</td>"
                    "</tr>\n<tr><td>uptime</td><td id=\"uptime\">%lu s</td></tr>\n</table>\n"
                    "<p>JSON: <a href=\"/api/info\">/api/info</a> &middot; health: "
                    "<a href=\"/healthz\">/healthz</a></p>\n</body></html>\n",
                    node, node, web[0] != '\0' ? web : "(direct request)", app, d->listen,
                    (int)getpid(), (unsigned long)in->requests, (unsigned long)in->uptime_s);
}

static int page_json(const struct demo *d, const struct demo_info *in, char *out, size_t size)
{
    char node[CONF_NAME_MAX * 6], app[CONF_NAME_MAX * 6], web[sizeof(in->web) * 6 + 2];
    json_escape(d->node, strlen(d->node), node, sizeof(node));
    json_escape(d->app, strlen(d->app), app, sizeof(app));
    if (in->web[0] != '\0') {
        web[0] = '"';
        json_escape(in->web, strlen(in->web), web + 1, sizeof(web) - 2);
        size_t l = strlen(web);
        web[l] = '"';
        web[l + 1] = '\0';
    } else {
        (void)snprintf(web, sizeof(web), "null");
    }
    return snprintf(out, size,
                    "{\"app\":\"%s\",\"app_node\":\"%s\",\"web_node\":%s,\"listen\":\"%s\","
                    "\"pid\":%d,\"requests\":%lu,\"uptime_s\":%lu}\n",
                    app, node, web, d->listen, (int)getpid(), (unsigned long)in->requests,
                    (unsigned long)in->uptime_s);
}

/* ------------------------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------------------------ */

static void conn_free(struct ev_loop *loop, void *data)
{
    (void)loop;
    struct demo_conn *c = data;
    buf_fini(&c->in);
    buf_fini(&c->out);
    free(c);
}

static void conn_close(struct demo_conn *c)
{
    if (c->is_closed) {
        return;
    }
    c->is_closed = true;
    ev_io_stop(c->d->loop, &c->io);
    ev_timer_stop(c->d->loop, &c->idle);
    (void)close(c->fd);                            /* everything queued was sent or is abandoned */
    ev_defer(c->d->loop, &c->defer, conn_free, c); /* after this iteration's events */
}

static void respond(struct demo_conn *c, int status, const char *ctype, const char *extra,
                    const char *body, size_t len, bool is_head)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-App-Node: %s\r\n%s%s\r\n",
                     status, http_status_reason(status), ctype, len, c->d->node, extra,
                     c->close_after ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(head) || !buf_append(&c->out, head, (size_t)n) ||
        (!is_head && !buf_append(&c->out, body, len))) {
        c->close_after = true; /* the answer does not fit: give up on the connection */
    }
}

static bool path_is(const char *path, size_t len, const char *want)
{
    size_t wl = strlen(want);
    return len == wl && memcmp(path, want, wl) == 0;
}

/* Answer the request in c->req (its head is at the start of c->in). */
static void answer(struct demo_conn *c)
{
    struct demo *d = c->d;
    const char *b = buf_head(&c->in);
    const char *target = b + c->req.target.off;
    size_t len = strcspn(target, "?");
    if (len > c->req.target.len) {
        len = c->req.target.len;
    }
    bool is_head = c->req.method == HTTP_METHOD_HEAD;
    if (!c->close_after) {
        c->close_after = !http_msg_keepalive(&c->req);
    }
    /* A request with a body is not for this application: answer, then close rather than
     * read the body. */
    if (http_request_body_kind(&c->req) != HTTP_BODY_NONE &&
        !(c->req.flags & HTTP_F_HAS_CL && c->req.content_length == 0)) {
        c->close_after = true;
    }
    bool is_known = path_is(target, len, "/") || path_is(target, len, "/api/info") ||
                    path_is(target, len, "/healthz");
    if (c->req.method != HTTP_METHOD_GET && c->req.method != HTTP_METHOD_HEAD) {
        static const char msg[] = "method not allowed\n";
        respond(c, is_known ? 405 : 404, "text/plain; charset=utf-8",
                is_known ? "Allow: GET, HEAD\r\n" : "", msg, sizeof(msg) - 1, false);
        return;
    }
    if (path_is(target, len, "/healthz")) {
        respond(c, 200, "text/plain; charset=utf-8", "", "ok\n", 3, is_head);
        return;
    }
    if (!is_known) {
        static const char msg[] = "not found: try /, /api/info or /healthz\n";
        respond(c, 404, "text/plain; charset=utf-8", "", msg, sizeof(msg) - 1, is_head);
        return;
    }
    struct demo_info info = {.requests = ++d->requests,
                             .uptime_s = (mono_ms() - d->started_ms) / 1000};
    int h = http_msg_find(&c->req, b, "x-served-by", 11);
    if (h >= 0) {
        struct http_span v = c->req.headers[h].value;
        size_t vl = v.len < sizeof(info.web) - 1 ? v.len : sizeof(info.web) - 1;
        memcpy(info.web, b + v.off, vl);
        info.web[vl] = '\0';
    }
    char page[DEMO_PAGE_MAX];
    bool is_json = path_is(target, len, "/api/info");
    int n =
        is_json ? page_json(d, &info, page, sizeof(page)) : page_html(d, &info, page, sizeof(page));
    size_t plen = n < 0 ? 0 : (size_t)n < sizeof(page) ? (size_t)n : sizeof(page) - 1;
    respond(c, 200, is_json ? "application/json" : "text/html; charset=utf-8", "", page, plen,
            is_head);
}

static void flush_out(struct demo_conn *c)
{
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, buf_head(&c->out), c->out.len, MSG_NOSIGNAL);
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1) {
            if (errno != EAGAIN) {
                conn_close(c);
            }
            return;
        }
        buf_consume(&c->out, (size_t)n);
    }
}

/* Answer every complete request buffered (pipelining), send, and set the interest. */
static void step(struct demo_conn *c)
{
    while (!c->close_after && c->out.len < DEMO_OUT_HIGH) {
        int rc = http_parse_head(&c->parser, buf_head(&c->in), c->in.len, &c->req);
        if (rc == -EAGAIN) {
            break;
        }
        if (rc != 0) {
            static const char msg[] = "bad request\n";
            c->close_after = true;
            respond(c, http_parse_error_status(rc), "text/plain; charset=utf-8", "", msg,
                    sizeof(msg) - 1, false);
            break;
        }
        answer(c);
        buf_consume(&c->in, c->req.head_len);
        http_parser_init(&c->parser, false, 8192, DEMO_HEAD_MAX);
        ev_timer_start(c->d->loop, &c->idle, DEMO_IDLE_MS);
    }
    flush_out(c);
    if (c->is_closed) {
        return;
    }
    if (c->close_after && c->out.len == 0) {
        conn_close(c);
        return;
    }
    uint32_t ev = c->out.len > 0 ? EV_WRITE : 0;
    if (!c->close_after && c->out.len < DEMO_OUT_HIGH && buf_tailroom(&c->in) > 0) {
        ev |= EV_READ;
    }
    if (ev_io_set(c->d->loop, &c->io, ev) != 0) {
        conn_close(c);
    }
}

static void on_conn(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    struct demo_conn *c = io->data;
    if ((events & EV_READ) != 0) {
        buf_compact(&c->in);
        if (buf_tailroom(&c->in) == 0) {
            conn_close(c); /* cannot happen: the parser rejects heads over DEMO_IN_MAX */
            return;
        }
        ssize_t n = sock_recv(c->fd, buf_tail(&c->in), buf_tailroom(&c->in));
        if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
            conn_close(c);
            return;
        }
        if (n > 0) {
            buf_commit(&c->in, (size_t)n);
        }
    }
    step(c);
}

static void on_idle(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    conn_close(t->data);
}

static void on_accept(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)events;
    struct demo *d = io->data;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage peer;
        socklen_t plen;
        int fd = sock_accept(d->lfd, &peer, &plen);
        if (fd < 0) {
            return;
        }
        struct demo_conn *c = calloc(1, sizeof(*c));
        if (c == NULL || buf_init(&c->in, DEMO_IN_MAX) != 0 ||
            buf_init(&c->out, DEMO_OUT_MAX) != 0) {
            if (c != NULL) {
                buf_fini(&c->in);
                free(c);
            }
            (void)close(fd); /* out of memory: refuse this client */
            continue;
        }
        c->d = d;
        c->fd = fd;
        http_parser_init(&c->parser, false, 8192, DEMO_HEAD_MAX);
        ev_timer_init(&c->idle, on_idle, c, "demo idle");
        ev_timer_start(loop, &c->idle, DEMO_IDLE_MS);
        if (ev_io_start(loop, &c->io, fd, EV_READ, on_conn, c, "demo conn") != 0) {
            c->is_closed = true;
            ev_timer_stop(loop, &c->idle);
            (void)close(fd);
            conn_free(loop, c);
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * The subcommand
 * ------------------------------------------------------------------------------------------ */

static int usage(void)
{
    fprintf(stderr, "usage: keel demo-app [--name NODE] [--listen IP:PORT]\n"
                    "  (without --listen: $HOST:$PORT, as set by keel's app supervisor)\n");
    return KEEL_EXIT_USAGE;
}

int cli_demo_app(int argc, char **argv)
{
    static struct demo d;
    const char *name = NULL, *listen_text = NULL;
    static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "n:l:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            name = optarg;
            break;
        case 'l':
            listen_text = optarg;
            break;
        case 'h':
            (void)usage();
            return KEEL_EXIT_OK;
        default:
            return usage();
        }
    }
    if (optind != argc) {
        return usage();
    }
    char from_env[128];
    if (listen_text == NULL && getenv("PORT") != NULL) {
        const char *host = getenv("HOST");
        host = host != NULL && host[0] != '\0' ? host : "127.0.0.1";
        (void)snprintf(from_env, sizeof(from_env), strchr(host, ':') ? "[%s]:%s" : "%s:%s", host,
                       getenv("PORT"));
        listen_text = from_env;
    }
    if (listen_text == NULL) {
        return usage();
    }
    if (name == NULL) {
        name = getenv("KEEL_NODE");
    }
    char host_name[CONF_NAME_MAX] = "app";
    if (name == NULL || name[0] == '\0') {
        (void)gethostname(host_name, sizeof(host_name) - 1); /* keeps "app" on failure */
        name = host_name;
    }
    const char *app = getenv("KEEL_APP");
    (void)snprintf(d.node, sizeof(d.node), "%s", name);
    (void)snprintf(d.app, sizeof(d.app), "%s", app != NULL && app[0] != '\0' ? app : "demo");

    struct conf_addr addr;
    struct errbuf eb;
    if (conf_parse_addr(listen_text, CONF_ADDR_LISTEN | CONF_ADDR_NO_RESOLVE, &addr, &eb) != 0) {
        fprintf(stderr, "keel demo-app: invalid --listen \"%s\": %s\n", listen_text, eb.msg);
        return KEEL_EXIT_USAGE;
    }
    (void)snprintf(d.listen, sizeof(d.listen), "%s", addr.text);
    d.loop = ev_loop_new();
    if (d.loop == NULL) {
        fprintf(stderr, "keel demo-app: cannot create the event loop: %s\n", strerror(errno));
        return KEEL_EXIT_RUNTIME;
    }
    d.lfd = sock_listen((const struct sockaddr *)&addr.sa, addr.salen, false, 128, &eb);
    if (d.lfd < 0) {
        fprintf(stderr, "keel demo-app: %s\n", eb.msg);
        return KEEL_EXIT_RUNTIME;
    }
    if (ev_io_start(d.loop, &d.lio, d.lfd, EV_READ, on_accept, &d, "demo accept") != 0) {
        fprintf(stderr, "keel demo-app: cannot watch the listener\n");
        return KEEL_EXIT_RUNTIME;
    }
    d.started_ms = mono_ms();
    fprintf(stderr, "demo-app %s: app %s listening on %s (pid %d)\n", d.node, d.app, d.listen,
            (int)getpid());
    ev_run(d.loop);
    return KEEL_EXIT_OK;
}
