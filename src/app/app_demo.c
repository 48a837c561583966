/* SPDX-License-Identifier: MIT */
/* `keel demo-app`: the built-in demo application that `run builtin demo` supervises. A
 * small dynamic site on one event loop: / (HTML) and /api/info (JSON) show the app node
 * that answered, the web node that forwarded the request (its X-Served-By header), a
 * request counter of this process and its uptime; /healthz answers "ok"; /guestbook and
 * /guestbook.json are the guestbook (app_guestbook.c: posts kept in the database tier).
 * HTTP/1.1 with keep-alive and pipelining, HEAD, 404 for other paths, 405 for other
 * methods. This file owns the connections; a guestbook request holds its connection's
 * pipeline until the database answered. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "app/app_form.h"
#include "app/app_guestbook.h"
#include "cli/cli.h"
#include "core/buf.h"
#include "core/conf.h"
#include "core/ev.h"
#include "core/json.h"
#include "core/sock.h"
#include "http/http_parse.h"

#define DEMO_IN_MAX 16384   /* a request head must fit */
#define DEMO_OUT_MAX 65536  /* answers waiting to be sent... */
#define DEMO_OUT_BIG 393216 /* ...or more, for a guestbook page (buffer grown for it) */
#define DEMO_OUT_HIGH 32768 /* stop answering pipelined requests above this */
#define DEMO_IDLE_MS 60000  /* a connection without a request for this long is closed */
#define DEMO_LINGER_MS                                                                             \
    2000 /* after the last answer, how long to read what the client still sends */
#define DEMO_LINGER_MAX (1u << 20) /* ...and how much of it */
#define DEMO_PAGE_MAX 8192
#define DEMO_HEAD_MAX (DEMO_IN_MAX / 2) /* larger request heads get 431 */

struct demo {
    struct ev_loop *loop;
    char node[CONF_NAME_MAX]; /* the app node: --name, KEEL_NODE or the host name */
    char app[CONF_NAME_MAX];  /* KEEL_APP or "demo" */
    char listen[128];
    int lfd;
    struct ev_io lio;
    struct ev_io sigio; /* SIGTERM and SIGINT, through a signalfd */
    uint64_t requests;
    uint64_t started_ms;
    struct guestbook *gb;
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
    struct gb_call *call; /* a guestbook request waiting for the database, else NULL */
    bool close_after;     /* answer what is queued, then close */
    bool is_closed;
    bool is_lingering;  /* answered and shut down for writing: discarding what comes */
    size_t lingered;    /* bytes discarded meanwhile */
    bool sent_continue; /* 100 Continue sent for the current request */
    bool is_head_call;  /* the guestbook request waiting is a HEAD */
};

/* ------------------------------------------------------------------------------------------
 * Pages
 * ------------------------------------------------------------------------------------------ */

static void html_escape(const char *s, size_t len, char *out, size_t size)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 7 < size; i++) {
        const char *rep = app_html_entity(s[i]);
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
    guestbook_cancel(c->call); /* its answer has nowhere to go */
    c->call = NULL;
    ev_io_stop(c->d->loop, &c->io);
    ev_timer_stop(c->d->loop, &c->idle);
    (void)close(c->fd);                            /* everything queued was sent or is abandoned */
    ev_defer(c->d->loop, &c->defer, conn_free, c); /* after this iteration's events */
}

static void step(struct demo_conn *c);
static void conn_linger(struct demo_conn *c);

static void respond(struct demo_conn *c, int status, const char *ctype, const char *extra,
                    const char *body, size_t len, bool is_head)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-App-Node: %s\r\n%s%s\r\n",
                     status, http_status_reason(status), ctype, len, c->d->node, extra,
                     c->close_after ? "Connection: close\r\n" : "");
    size_t need = c->out.len + (size_t)(n > 0 ? n : 0) + (is_head ? 0 : len);
    if (need > c->out.cap && need <= DEMO_OUT_BIG && buf_grow(&c->out, need) != 0) {
        need = SIZE_MAX; /* out of memory: as if it did not fit */
    }
    if (n < 0 || (size_t)n >= sizeof(head) || need == SIZE_MAX ||
        !buf_append(&c->out, head, (size_t)n) || (!is_head && !buf_append(&c->out, body, len))) {
        c->close_after = true; /* the answer does not fit: give up on the connection */
    }
}

static bool path_is(const char *path, size_t len, const char *want)
{
    size_t wl = strlen(want);
    return len == wl && memcmp(path, want, wl) == 0;
}

/* The path of the request in c->req (its head is at the start of c->in): *len bytes, the
 * query excluded. */
static const char *request_path(const struct demo_conn *c, size_t *len)
{
    const char *target = buf_head(&c->in) + c->req.target.off;
    const char *q = memchr(target, '?', c->req.target.len);
    *len = q != NULL ? (size_t)(q - target) : c->req.target.len;
    return target;
}

static bool is_guestbook(const struct demo_conn *c)
{
    size_t len;
    const char *path = request_path(c, &len);
    return path_is(path, len, "/guestbook") || path_is(path, len, "/guestbook.json");
}

/* The value of header name (lowercase), cut to size - 1 bytes, into out; "" if absent. */
static void header_value(const struct demo_conn *c, const char *name, char *out, size_t size)
{
    const char *b = buf_head(&c->in);
    int h = http_msg_find(&c->req, b, name, strlen(name));
    size_t vl = 0;
    if (h >= 0) {
        struct http_span v = c->req.headers[h].value;
        vl = v.len < size - 1 ? v.len : size - 1;
        memcpy(out, b + v.off, vl);
    }
    out[vl] = '\0';
}

static void on_guestbook_reply(void *data, const struct gb_reply *r)
{
    struct demo_conn *c = data;
    c->call = NULL;
    respond(c, r->status, r->content_type, r->headers, r->body, r->len, c->is_head_call);
    ev_timer_start(c->d->loop, &c->idle, DEMO_IDLE_MS);
    step(c); /* send it, and go on with pipelined requests */
}

/* A guestbook request whose body (body_len bytes, after the head) is buffered: hand it to
 * the guestbook, which answers through on_guestbook_reply. */
static void answer_guestbook(struct demo_conn *c, size_t body_len)
{
    const char *b = buf_head(&c->in);
    size_t len;
    const char *target = request_path(c, &len);
    char web[128], accept[512];
    header_value(c, "x-served-by", web, sizeof(web));
    header_value(c, "accept", accept, sizeof(accept));
    struct gb_request rq = {.method = c->req.method,
                            .is_json_path = path_is(target, len, "/guestbook.json"),
                            .accepts_json = strcasestr(accept, "application/json") != NULL,
                            .body = b + c->req.head_len,
                            .body_len = body_len,
                            .web = web};
    if (len < c->req.target.len) {
        rq.query = target + len + 1;
        rq.query_len = c->req.target.len - len - 1;
    }
    int h = http_msg_find(&c->req, b, "content-type", 12);
    if (h >= 0) {
        rq.content_type = b + c->req.headers[h].value.off;
        rq.content_type_len = c->req.headers[h].value.len;
    }
    c->is_head_call = c->req.method == HTTP_METHOD_HEAD;
    if (guestbook_serve(c->d->gb, &rq, on_guestbook_reply, c, &c->call) != 0) {
        static const char msg[] = "503 out of memory\n";
        c->call = NULL;
        respond(c, 503, "text/plain; charset=utf-8", "", msg, sizeof(msg) - 1, c->is_head_call);
    }
}

/* Answer the request in c->req (its head is at the start of c->in, followed by body_len
 * bytes of body when it is a guestbook request). */
static void answer(struct demo_conn *c, size_t body_len)
{
    struct demo *d = c->d;
    size_t len;
    const char *target = request_path(c, &len);
    bool is_head = c->req.method == HTTP_METHOD_HEAD;
    if (!c->close_after) {
        c->close_after = !http_msg_keepalive(&c->req);
    }
    if (is_guestbook(c)) {
        answer_guestbook(c, body_len);
        return;
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
        static const char msg[] = "not found: try /, /api/info, /guestbook or /healthz\n";
        respond(c, 404, "text/plain; charset=utf-8", "", msg, sizeof(msg) - 1, is_head);
        return;
    }
    struct demo_info info = {.requests = ++d->requests,
                             .uptime_s = (mono_ms() - d->started_ms) / 1000};
    header_value(c, "x-served-by", info.web, sizeof(info.web));
    char page[DEMO_PAGE_MAX];
    bool is_json = path_is(target, len, "/api/info");
    int n =
        is_json ? page_json(d, &info, page, sizeof(page)) : page_html(d, &info, page, sizeof(page));
    size_t plen = n < 0 ? 0 : (size_t)n < sizeof(page) ? (size_t)n : sizeof(page) - 1;
    respond(c, 200, is_json ? "application/json" : "text/html; charset=utf-8", "", page, plen,
            is_head);
}

/* Whether the body of the request in c->req is buffered. Only guestbook requests have
 * their body read: 0 with *len its size (0 for other requests, which are answered and
 * closed instead), -EAGAIN while more is to come, -EINVAL after answering 411 or 413 (the
 * connection closes once that is sent). */
static int request_body(struct demo_conn *c, size_t *len)
{
    *len = 0;
    enum http_body_kind kind = http_request_body_kind(&c->req);
    if (kind == HTTP_BODY_NONE || !is_guestbook(c)) {
        return 0;
    }
    if (kind != HTTP_BODY_LENGTH || c->req.content_length > GUESTBOOK_BODY_MAX) {
        static const char msg[] = "the guestbook takes a form of at most 16 KiB, with a "
                                  "Content-Length\n";
        c->close_after = true;
        respond(c, kind != HTTP_BODY_LENGTH ? 411 : 413, "text/plain; charset=utf-8", "", msg,
                sizeof(msg) - 1, false);
        return -EINVAL;
    }
    size_t need = c->req.head_len + (size_t)c->req.content_length;
    if (c->in.len >= need) {
        *len = (size_t)c->req.content_length;
        return 0;
    }
    if (need > c->in.cap && buf_grow(&c->in, need) != 0) {
        static const char msg[] = "out of memory\n";
        c->close_after = true;
        respond(c, 503, "text/plain; charset=utf-8", "", msg, sizeof(msg) - 1, false);
        return -EINVAL;
    }
    if ((c->req.flags & HTTP_F_EXPECT_CONTINUE) != 0 && !c->sent_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        c->sent_continue = true;
        if (!buf_append(&c->out, cont, sizeof(cont) - 1)) {
            c->close_after = true;
            return -EINVAL;
        }
    }
    return -EAGAIN;
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

/* Answer every complete request buffered (pipelining), send, and set the interest. A
 * guestbook request waiting for the database holds the rest of the pipeline. */
static void step(struct demo_conn *c)
{
    while (c->call == NULL && !c->close_after && c->out.len < DEMO_OUT_HIGH) {
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
        size_t body_len = 0;
        rc = request_body(c, &body_len);
        if (rc == -EAGAIN) {
            break;
        }
        if (rc == 0) {
            answer(c, body_len);
        }
        buf_consume(&c->in, c->req.head_len + body_len); /* the guestbook copied what it needs */
        http_parser_init(&c->parser, false, 8192, DEMO_HEAD_MAX);
        c->sent_continue = false;
        ev_timer_start(c->d->loop, &c->idle, DEMO_IDLE_MS);
    }
    flush_out(c);
    if (c->is_closed) {
        return;
    }
    if (c->close_after && c->out.len == 0 && c->call == NULL) {
        conn_linger(c);
        return;
    }
    uint32_t ev = c->out.len > 0 ? EV_WRITE : 0;
    if (!c->close_after && c->call == NULL && c->out.len < DEMO_OUT_HIGH &&
        buf_tailroom(&c->in) > 0) {
        ev |= EV_READ;
    }
    if (ev_io_set(c->d->loop, &c->io, ev) != 0) {
        conn_close(c);
    }
}

/* Close after the last answer was sent. The client may still be sending (a body the answer
 * refused, pipelined requests): closing with unread bytes would make the kernel send a
 * reset that can destroy the answer in flight, so shut down writing and read and discard
 * for a while first (nginx's lingering close). */
static void conn_linger(struct demo_conn *c)
{
    if (shutdown(c->fd, SHUT_WR) == -1 || ev_io_set(c->d->loop, &c->io, EV_READ) != 0) {
        conn_close(c);
        return;
    }
    c->is_lingering = true;
    ev_timer_stop(c->d->loop, &c->idle);
    ev_timer_start(c->d->loop, &c->idle, DEMO_LINGER_MS);
}

static void linger_read(struct demo_conn *c)
{
    char sink[4096];
    ssize_t n = sock_recv(c->fd, sink, sizeof(sink));
    if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    c->lingered += n > 0 ? (size_t)n : 0;
    if (n <= 0 || c->lingered > DEMO_LINGER_MAX) {
        conn_close(c);
    }
}

static void on_conn(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    struct demo_conn *c = io->data;
    if (c->is_lingering) {
        linger_read(c);
        return;
    }
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
    d.gb = guestbook_new(d.loop, d.node);
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
    /* Connections still open are dropped with the process; the guestbook's queries are
     * cancelled. */
    guestbook_free(d.gb);
    d.gb = NULL;
    fprintf(stderr, "demo-app %s: stopped\n", d.node);
    return KEEL_EXIT_OK;
}
