/* SPDX-License-Identifier: MIT */
/* `keel demo-app`: the built-in demo application that `run builtin demo` supervises. A
 * small dynamic site on one event loop: / (HTML) and /api/info (JSON) show the app node
 * that answered, the web node that forwarded the request (its X-Served-By header), a
 * request counter of this process and its uptime; /healthz answers "ok"; /guestbook and
 * /guestbook.json are the guestbook (demo_guestbook.c: posts kept in the database tier).
 * HTTP/1.1 with keep-alive and pipelining, HEAD, 404 for other paths, 405 for other
 * methods, served by the embedded HTTP server (http/http_server.c) from a route table; a
 * guestbook request holds its connection's pipeline until the database answered. */
#include "demo/demo.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "demo/demo_form.h"
#include "demo/demo_guestbook.h"
#include "core/conf.h"
#include "core/ev.h"
#include "core/json.h"
#include "http/http_server.h"

#define DEMO_HEAD_MAX 8192  /* larger request heads get 431 */
#define DEMO_OUT_BIG 393216 /* answers queued on a connection (a guestbook page is large) */
#define DEMO_IDLE_MS 60000  /* a connection without a request for this long is closed */
#define DEMO_LINGER_MS 2000 /* after the last answer, how long to read what the client sends */
#define DEMO_PAGE_MAX 8192

struct demo {
    struct ev_loop *loop;
    char node[CONF_NAME_MAX]; /* the app node: --name, KEEL_NODE or the host name */
    char app[CONF_NAME_MAX];  /* KEEL_APP or "demo" */
    char listen[128];
    char headers[CONF_NAME_MAX + 64]; /* on every answer: no caching, the node */
    struct http_server *server;
    struct ev_io sigio; /* SIGTERM and SIGINT, through a signalfd */
    uint64_t requests;
    uint64_t started_ms;
    struct guestbook *gb;
};

/* A guestbook request waiting for the database. */
struct demo_call {
    struct http_server_req *req;
    struct gb_call *call;
};

/* ------------------------------------------------------------------------------------------
 * Pages
 * ------------------------------------------------------------------------------------------ */

static void html_escape(const char *s, size_t len, char *out, size_t size)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 7 < size; i++) {
        const char *rep = demo_html_entity(s[i]);
        if (rep == NULL) {
            out[k++] = s[i];
            continue;
        }
        size_t rl = strlen(rep);
        memcpy(out + k, rep, rl);
        k += rl;
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
                    "<p>guestbook: <a href=\"/guestbook\">/guestbook</a> &middot; JSON: "
                    "<a href=\"/api/info\">/api/info</a> &middot; health: "
                    "<a href=\"/healthz\">/healthz</a></p>\n</body></html>\n",
                    node, node, web[0] != '\0' ? web : "(direct request)", app, d->listen,
                    (int)getpid(), (unsigned long)in->requests, (unsigned long)in->uptime_s);
}

static int page_json(const struct demo *d, const struct demo_info *in, char *out, size_t size)
{
    struct json_w w;
    json_w_init_fixed(&w, out, size);
    json_w_begin_object(&w);
    json_w_key_str(&w, "app", d->app);
    json_w_key_str(&w, "app_node", d->node);
    json_w_key_str(&w, "web_node", in->web[0] != '\0' ? in->web : NULL);
    json_w_key_str(&w, "listen", d->listen);
    json_w_key_int(&w, "pid", getpid());
    json_w_key_uint(&w, "requests", in->requests);
    json_w_key_uint(&w, "uptime_s", in->uptime_s);
    json_w_end_object(&w);
    if (json_w_finish(&w) != 0 || w.len + 1 >= size) {
        return -1; /* cannot happen: names are short and DEMO_PAGE_MAX is not */
    }
    out[w.len] = '\n';
    out[w.len + 1] = '\0';
    return (int)w.len + 1;
}

/* ------------------------------------------------------------------------------------------
 * Routes
 * ------------------------------------------------------------------------------------------ */

static const char TEXT[] = "text/plain; charset=utf-8";

/* The value of header name (lowercase), cut to size - 1 bytes, into out; "" if absent. */
static void header_value(const struct http_server_req *req, const char *name, char *out,
                         size_t size)
{
    size_t vl;
    const char *v = http_server_req_header(req, name, &vl);
    vl = v == NULL ? 0 : vl < size - 1 ? vl : size - 1;
    memcpy(out, v != NULL ? v : "", vl);
    out[vl] = '\0';
}

static void on_guestbook_reply(void *data, const struct gb_reply *r)
{
    struct demo_call *dc = data;
    struct http_server_req *req = dc->req;
    http_server_req_on_abort(req, NULL, NULL);
    free(dc);
    http_server_respond(req, r->status, r->content_type, r->headers, r->body, r->len, 0);
}

static void on_guestbook_abort(void *data)
{
    struct demo_call *dc = data;
    demo_guestbook_cancel(dc->call); /* its answer has nowhere to go */
    free(dc);
}

/* /guestbook and /guestbook.json, their body buffered: the guestbook answers through
 * on_guestbook_reply once the database did. */
static void on_guestbook(struct http_server_req *req, void *data)
{
    struct demo *d = data;
    char web[128], accept[512];
    header_value(req, "x-served-by", web, sizeof(web));
    header_value(req, "accept", accept, sizeof(accept));
    struct gb_request rq = {.method = req->method,
                            .is_json_path = req->path_len == 15, /* "/guestbook.json" */
                            .accepts_json = strcasestr(accept, "application/json") != NULL,
                            .query = req->query,
                            .query_len = req->query_len,
                            .body = req->body != NULL ? req->body : "",
                            .body_len = req->body != NULL ? req->body_len : 0,
                            .web = web};
    rq.content_type = http_server_req_header(req, "content-type", &rq.content_type_len);
    struct demo_call *dc = calloc(1, sizeof(*dc));
    if (dc == NULL || demo_guestbook_serve(d->gb, &rq, on_guestbook_reply, dc, &dc->call) != 0) {
        static const char msg[] = "503 out of memory\n";
        free(dc);
        http_server_respond(req, 503, TEXT, NULL, msg, sizeof(msg) - 1, 0);
        return;
    }
    dc->req = req;
    http_server_req_on_abort(req, on_guestbook_abort, dc);
}

static void on_healthz(struct http_server_req *req, void *data)
{
    (void)data;
    http_server_respond(req, 200, TEXT, NULL, "ok\n", 3, 0);
}

/* / (HTML) and /api/info (JSON). */
static void on_info(struct http_server_req *req, void *data)
{
    struct demo *d = data;
    struct demo_info info = {.requests = ++d->requests,
                             .uptime_s = (mono_ms() - d->started_ms) / 1000};
    header_value(req, "x-served-by", info.web, sizeof(info.web));
    char page[DEMO_PAGE_MAX];
    bool is_json = req->path_len > 1; /* "/api/info" */
    int n =
        is_json ? page_json(d, &info, page, sizeof(page)) : page_html(d, &info, page, sizeof(page));
    size_t plen = n < 0 ? 0 : (size_t)n < sizeof(page) ? (size_t)n : sizeof(page) - 1;
    http_server_respond(req, 200, is_json ? "application/json" : "text/html; charset=utf-8", NULL,
                        page, plen, 0);
}

static void on_other(struct http_server_req *req, void *data)
{
    (void)data;
    if (req->method != HTTP_METHOD_GET && req->method != HTTP_METHOD_HEAD) {
        static const char msg[] = "method not allowed\n";
        http_server_respond(req, 404, TEXT, NULL, msg, sizeof(msg) - 1, 0);
        return;
    }
    static const char msg[] = "not found: try /, /api/info, /guestbook or /healthz\n";
    http_server_respond(req, 404, TEXT, NULL, msg, sizeof(msg) - 1, 0);
}

#define GET_HEAD (HTTP_ROUTE_METHOD(HTTP_METHOD_GET) | HTTP_ROUTE_METHOD(HTTP_METHOD_HEAD))

/* Only guestbook requests have their body read; a request with a body for another path
 * is answered, then its connection closes. */
static const struct http_route demo_routes[] = {
    {.path = "/guestbook",
     .body = HTTP_SERVER_BODY_BUFFER,
     .max_body = GUESTBOOK_BODY_MAX,
     .handler = on_guestbook},
    {.path = "/guestbook.json",
     .body = HTTP_SERVER_BODY_BUFFER,
     .max_body = GUESTBOOK_BODY_MAX,
     .handler = on_guestbook},
    {.path = "/healthz", .methods = GET_HEAD, .handler = on_healthz},
    {.path = "/", .methods = GET_HEAD, .handler = on_info},
    {.path = "/api/info", .methods = GET_HEAD, .handler = on_info},
    {.path = "/", .is_prefix = true, .handler = on_other},
};

static const struct http_server_conf demo_server_conf = {
    .name = "demo",
    .routes = demo_routes,
    .n_routes = sizeof(demo_routes) / sizeof(demo_routes[0]),
    .is_keepalive = true,
    .head_timeout_ms = DEMO_IDLE_MS,
    .linger_ms = DEMO_LINGER_MS,
    .max_head = DEMO_HEAD_MAX,
    .max_response = DEMO_OUT_BIG,
};

/* ------------------------------------------------------------------------------------------
 * The subcommand
 * ------------------------------------------------------------------------------------------ */

static void on_signal(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)events;
    struct signalfd_siginfo si;
    if (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        ev_loop_stop(loop); /* SIGTERM or SIGINT: stop serving, and exit */
    }
}

/* SIGTERM and SIGINT stop the loop, so that the process exits through main (and a
 * sanitizer build checks for leaks then). */
static int watch_signals(struct demo *d)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        return -errno;
    }
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd == -1) {
        return -errno;
    }
    int rc = ev_io_start(d->loop, &d->sigio, fd, EV_READ, on_signal, d, "demo signals");
    if (rc != 0) {
        close(fd);
    }
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: keel demo-app [--name NODE] [--listen IP:PORT]\n"
                    "  (without --listen: $HOST:$PORT, as set by keel's app supervisor)\n");
    return KEEL_EXIT_USAGE;
}

int demo_app_main(int argc, char **argv)
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
    static struct http_server_conf conf;
    conf = demo_server_conf;
    conf.data = &d;
    (void)snprintf(d.headers, sizeof(d.headers), "Cache-Control: no-store\r\nX-App-Node: %s\r\n",
                   d.node);
    conf.headers = d.headers;
    d.server = http_server_start(d.loop, (const struct sockaddr *)&addr.sa, addr.salen, &conf, &eb);
    if (d.server == NULL) {
        fprintf(stderr, "keel demo-app: %s\n", eb.msg);
        return KEEL_EXIT_RUNTIME;
    }
    d.gb = demo_guestbook_new(d.loop, d.node);
    if (d.gb == NULL) {
        fprintf(stderr, "keel demo-app: out of memory\n");
        return KEEL_EXIT_RUNTIME;
    }
    int rc = watch_signals(&d);
    if (rc != 0) {
        fprintf(stderr, "keel demo-app: cannot watch signals: %s\n", strerror(-rc));
        return KEEL_EXIT_RUNTIME;
    }
    d.started_ms = mono_ms();
    fprintf(stderr, "demo-app %s: app %s listening on %s (pid %d)\n", d.node, d.app, d.listen,
            (int)getpid());
    ev_run(d.loop);
    /* Connections still open are closed (their guestbook queries cancelled), then the
     * guestbook goes. */
    http_server_stop(d.server);
    demo_guestbook_free(d.gb);
    d.gb = NULL;
    fprintf(stderr, "demo-app %s: stopped\n", d.node);
    return KEEL_EXIT_OK;
}
