/* SPDX-License-Identifier: MIT */
/* The demo application's guestbook (see demo_guestbook.h): configuration from the
 * environment, the SQL it runs on its two connections, and its pages. A request is a
 * struct gb_call: it either has its answer at once (bad input, no database), delivered at
 * the end of the loop iteration, or waits for a query whose callback delivers it. User
 * text reaches SQL only hex-encoded (decode(..., 'hex')), so it cannot change the
 * statement, and pages only escaped. */
#include "demo/demo_guestbook.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "demo/demo_form.h"
#include "core/conf-t.h"
#include "core/json.h"
#include "db/pg_query.h"
#include "db/pg_text.h"

#define GB_QUERY_MS 5000   /* a query's deadline, connecting included */
#define GB_TARGETS_MAX 8   /* IP:PORT entries in KEEL_DB_WRITE or KEEL_DB_READ */
#define GB_TEXT_MAX 524288 /* no page grows beyond this */

static const char READ_SQL[] =
    "SELECT s.node, g.id, g.name, g.message,"
    " to_char(g.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    " FROM (SELECT current_setting('cluster_name') AS node) s"
    " LEFT JOIN (SELECT id, name, message, at FROM guestbook ORDER BY id DESC LIMIT 20) g"
    " ON true ORDER BY g.id DESC";
static const char NODE_SQL[] = "SELECT current_setting('cluster_name')";
static const char CREATE_SQL[] = "CREATE TABLE IF NOT EXISTS guestbook (id bigserial primary key,"
                                 " name text, message text, at timestamptz default now()); ";
static const char INSERT_SQL[] = "INSERT INTO guestbook (name, message) VALUES"
                                 " (convert_from(decode('%s', 'hex'), 'UTF8'),"
                                 " convert_from(decode('%s', 'hex'), 'UTF8'))"
                                 " RETURNING id, current_setting('cluster_name')";

struct guestbook {
    struct ev_loop *loop;
    char node[CONF_NAME_MAX];
    bool is_configured;
    char off_reason[320]; /* why the guestbook is off */
    char write_text[256]; /* KEEL_DB_WRITE, for pages and errors */
    char read_text[256];
    struct pg_conn *wr;
    struct pg_conn *rd;
    bool has_table;        /* a write succeeded: no need to create the table */
    struct gb_call *calls; /* every call not finished yet */
};

/* A growing text buffer; is_oom once an allocation failed (the text is then incomplete). */
struct gb_text {
    char *p;
    size_t len;
    size_t cap;
    bool is_oom;
};

struct gb_call {
    struct guestbook *g; /* NULL once the guestbook is freed */
    struct gb_call *prev;
    struct gb_call *next;
    gb_reply_fn cb;
    void *data;
    bool is_cancelled;
    bool is_json;
    bool is_post;
    bool has_create; /* the write being run creates the table first */
    int tries;
    struct ev_defer defer;
    /* the answer */
    int status;
    const char *content_type;
    char headers[256];
    struct gb_text body;
    /* what the page shows besides the posts */
    char web[128];
    char written_by[CONF_NAME_MAX];
    char written_id[24];
    char *insert_sql; /* the INSERT of a POST */
};

/* ------------------------------------------------------------------------------------------
 * Text
 * ------------------------------------------------------------------------------------------ */

static void text_put(struct gb_text *t, const char *s, size_t n)
{
    if (t->is_oom) {
        return;
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap != 0 ? t->cap : 4096;
        while (cap < t->len + n + 1) {
            cap *= 2;
        }
        char *p = cap <= GB_TEXT_MAX ? realloc(t->p, cap) : NULL;
        if (p == NULL) {
            t->is_oom = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void text_str(struct gb_text *t, const char *s)
{
    text_put(t, s, strlen(s));
}

static void text_printf(struct gb_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void text_printf(struct gb_text *t, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        t->is_oom = true; /* callers print bounded values: a bug, not worth a bigger buffer */
        return;
    }
    text_put(t, line, (size_t)n);
}

/* Text from the database or the client, escaped for HTML; a byte that is not UTF-8 becomes
 * U+FFFD. */
static void text_html(struct gb_text *t, const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        size_t n = demo_utf8_seq((const unsigned char *)s + i, len - i);
        const char *rep = n == 0 ? "\xEF\xBF\xBD" : demo_html_entity(s[i]);
        n = n == 0 ? 1 : n;
        if (rep != NULL) {
            text_str(t, rep);
        } else {
            text_put(t, s + i, n);
        }
        i += n;
    }
}

/* Append the document w wrote and a newline, and release w. A writer error (out of memory)
 * counts as the text's. */
static void text_json_doc(struct gb_text *t, struct json_w *w)
{
    if (json_w_finish(w) != 0) {
        t->is_oom = true;
    } else {
        text_put(t, w->data, w->len);
        text_put(t, "\n", 1);
    }
    json_w_fini(w);
}

/* A name from the database or the query string, safe in a URL and a header: letters,
 * digits, '.', '_' and '-' (node names are), else "unknown". */
static void safe_name(const char *in, char *out, size_t size)
{
    size_t n = strlen(in);
    bool ok = n > 0 && n < size &&
              strspn(in, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789._-") == n;
    (void)snprintf(out, size, "%s", ok ? in : "unknown");
}

/* ------------------------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------------------------ */

/* "IP:PORT[,IP:PORT...]" as libpq's comma-separated hostaddr and port lists. */
static int parse_targets(const char *text, char *hosts, size_t hsize, char *ports, size_t psize,
                         const char **why)
{
    hosts[0] = ports[0] = '\0';
    size_t hk = 0, pk = 0;
    int n = 0;
    for (const char *p = text;; n++) {
        size_t len = strcspn(p, ",");
        char item[80];
        if (len == 0 || len >= sizeof(item) || n == GB_TARGETS_MAX) {
            *why = len == 0 ? "an empty entry" : "an entry too long, or too many entries";
            return -EINVAL;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        char *colon = strrchr(item, ':');
        char *host = item;
        if (colon == NULL) {
            *why = "an entry without :PORT";
            return -EINVAL;
        }
        *colon = '\0';
        if (host[0] == '[' && colon[-1] == ']') {
            host++;
            colon[-1] = '\0';
        }
        unsigned char addr[16];
        char *end = NULL;
        errno = 0;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if ((inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1) ||
            colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0 || port == 0 ||
            port > 65535) {
            *why = "an entry that is not IP:PORT (the IP an address, not a host name)";
            return -EINVAL;
        }
        int a = snprintf(hosts + hk, hsize - hk, "%s%s", n == 0 ? "" : ",", host);
        int b = snprintf(ports + pk, psize - pk, "%s%lu", n == 0 ? "" : ",", port);
        if (a < 0 || (size_t)a >= hsize - hk || b < 0 || (size_t)b >= psize - pk) {
            *why = "too many entries";
            return -EINVAL;
        }
        hk += (size_t)a;
        pk += (size_t)b;
        if (p[len] == '\0') {
            return 0;
        }
        p += len + 1;
    }
}

/* The conninfo of one connection. For writes, a commit also waits until a synchronous
 * replica applied it (remote_apply; no effect without synchronous replication), so that a
 * read on a replica right after a post sees it. */
static int conninfo(const char *targets, const char *db, const char *user, const char *password,
                    bool is_write, char *out, size_t size, const char **why)
{
    char hosts[512], ports[128];
    if (parse_targets(targets, hosts, sizeof(hosts), ports, sizeof(ports), why) != 0) {
        return -EINVAL;
    }
    out[0] = '\0';
    int rc = pg_conninfo_add(out, size, "hostaddr", hosts);
    rc = rc != 0 ? rc : pg_conninfo_add(out, size, "port", ports);
    rc = rc != 0 ? rc : pg_conninfo_add(out, size, "dbname", db);
    rc = rc != 0 ? rc : pg_conninfo_add(out, size, "user", user);
    rc = rc != 0 ? rc : pg_conninfo_add(out, size, "password", password);
    rc = rc != 0 ? rc : pg_conninfo_add(out, size, "application_name", "keel-demo-guestbook");
    rc = rc != 0 ? rc : pg_conninfo_add(out, size, "client_encoding", "UTF8");
    rc = rc != 0 ? rc : pg_conninfo_add(out, size, "gssencmode", "disable");
    if (is_write) {
        rc = rc != 0 ? rc
                     : pg_conninfo_add(out, size, "options", "-c synchronous_commit=remote_apply");
    }
    if (rc != 0) {
        *why = "values too long";
    }
    return rc;
}

/* Read the environment; false with g->off_reason set when the guestbook is off. */
static bool configure(struct guestbook *g)
{
    static const char *const vars[] = {"KEEL_DB_WRITE", "KEEL_DB_READ", "KEEL_DB_NAME",
                                       "KEEL_DB_USER", "KEEL_DB_PASSWORD"};
    const char *val[5];
    char missing[160] = "";
    for (size_t i = 0; i < 5; i++) {
        val[i] = getenv(vars[i]);
        if (val[i] == NULL || val[i][0] == '\0') {
            size_t k = strlen(missing);
            (void)snprintf(missing + k, sizeof(missing) - k, "%s%s", k == 0 ? "" : ", ", vars[i]);
        }
    }
    if (missing[0] != '\0') {
        (void)snprintf(g->off_reason, sizeof(g->off_reason),
                       "the guestbook has no database: the app's environment lacks %s (set "
                       "them with env in its app block)",
                       missing);
        return false;
    }
    (void)snprintf(g->write_text, sizeof(g->write_text), "%s", val[0]);
    (void)snprintf(g->read_text, sizeof(g->read_text), "%s", val[1]);
    char wr[2048], rd[2048];
    const char *why = "";
    for (int i = 0; i < 2; i++) {
        if (conninfo(val[i], val[2], val[3], val[4], i == 0, i == 0 ? wr : rd, sizeof(wr), &why) !=
            0) {
            (void)snprintf(g->off_reason, sizeof(g->off_reason), "invalid %s \"%.80s\": %s",
                           vars[i], val[i], why);
            return false;
        }
    }
    g->wr = pg_conn_new(g->loop, "guestbook write", wr, GB_QUERY_MS);
    g->rd = pg_conn_new(g->loop, "guestbook read", rd, GB_QUERY_MS);
    explicit_bzero(wr, sizeof(wr)); /* the password */
    explicit_bzero(rd, sizeof(rd));
    if (g->wr == NULL || g->rd == NULL) {
        (void)snprintf(g->off_reason, sizeof(g->off_reason), "out of memory");
        return false;
    }
    return true;
}

struct guestbook *demo_guestbook_new(struct ev_loop *loop, const char *node)
{
    struct guestbook *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        return NULL;
    }
    g->loop = loop;
    (void)snprintf(g->node, sizeof(g->node), "%s", node);
    g->is_configured = configure(g);
    if (g->is_configured) {
        fprintf(stderr,
                "demo-app %s: guestbook on database %s as %s: writes through %s, reads "
                "through %s\n",
                node, getenv("KEEL_DB_NAME"), getenv("KEEL_DB_USER"), g->write_text, g->read_text);
    } else {
        fprintf(stderr, "demo-app %s: guestbook off: %s\n", node, g->off_reason);
    }
    return g;
}

/* ------------------------------------------------------------------------------------------
 * Calls
 * ------------------------------------------------------------------------------------------ */

static void call_free(struct gb_call *call)
{
    if (call->g != NULL) {
        if (call->prev != NULL) {
            call->prev->next = call->next;
        } else {
            call->g->calls = call->next;
        }
        if (call->next != NULL) {
            call->next->prev = call->prev;
        }
    }
    free(call->body.p);
    free(call->insert_sql);
    free(call);
}

/* Deliver the answer prepared in call (unless cancelled) and free call. */
static void finish(struct gb_call *call)
{
    if (!call->is_cancelled && call->g != NULL) {
        if (call->body.is_oom) {
            static const char msg[] = "out of memory\n";
            struct gb_reply r = {503, "text/plain; charset=utf-8", "", msg, sizeof(msg) - 1};
            call->cb(call->data, &r);
        } else {
            struct gb_reply r = {call->status, call->content_type, call->headers,
                                 call->body.p != NULL ? call->body.p : "", call->body.len};
            call->cb(call->data, &r);
        }
    }
    call_free(call);
}

static void on_defer(struct ev_loop *loop, void *data)
{
    (void)loop;
    finish(data);
}

/* An error answer: JSON {"error": ...} or a line of text. */
static void set_error(struct gb_call *call, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error(struct gb_call *call, int status, const char *fmt, ...)
{
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    call->status = status;
    call->body.len = 0;
    if (call->is_json) {
        call->content_type = "application/json";
        struct json_w w;
        json_w_init(&w);
        json_w_begin_object(&w);
        json_w_key_str(&w, "error", msg);
        json_w_end_object(&w);
        text_json_doc(&call->body, &w);
    } else {
        call->content_type = "text/plain; charset=utf-8";
        text_printf(&call->body, "%d %s: %s\n", status, http_status_reason(status), msg);
    }
}

/* ------------------------------------------------------------------------------------------
 * Pages
 * ------------------------------------------------------------------------------------------ */

static const char PAGE_HEAD[] =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>keel guestbook</title>\n"
    "<style>body{font-family:sans-serif;margin:3em;max-width:48em}"
    "input,textarea{display:block;margin:.3em 0;width:100%}textarea{height:5em}"
    ".note{background:#efe;padding:.5em}.post{border-top:1px solid #ccc;padding:.5em 0}"
    ".message{white-space:pre-wrap}.meta{color:#666;font-size:90%}</style></head>\n<body>\n"
    "<h1>keel guestbook</h1>\n";

static void page_html(struct gb_call *call, const struct pg_result *r, const char *read_by)
{
    const struct guestbook *g = call->g;
    struct gb_text *t = &call->body;
    text_str(t, PAGE_HEAD);
    text_str(t, "<p>Read from database node <b id=\"read-by\">");
    text_html(t, read_by);
    text_str(t, "</b> through the read port (");
    text_html(t, g->read_text);
    text_str(t, "), by app node <b id=\"app-node\">");
    text_html(t, g->node);
    text_str(t, "</b>");
    if (call->web[0] != '\0') {
        text_str(t, " behind web node <b id=\"web-node\">");
        text_html(t, call->web);
        text_str(t, "</b>");
    }
    text_str(t, ".</p>\n");
    if (call->written_by[0] != '\0') {
        text_str(t, "<p class=\"note\">Your message");
        if (call->written_id[0] != '\0') {
            text_printf(t, " #%s", call->written_id);
        }
        text_str(t, " was written by database node <b id=\"written-by\">");
        text_html(t, call->written_by);
        text_str(t, "</b> (the primary) through the write port (");
        text_html(t, g->write_text);
        text_str(t, ").</p>\n");
    }
    text_printf(t,
                "<form method=\"post\" action=\"/guestbook\">\n"
                "<input name=\"name\" maxlength=\"%d\" required placeholder=\"your name\">\n"
                "<textarea name=\"message\" maxlength=\"%d\" required placeholder=\"a message\">"
                "</textarea>\n<button type=\"submit\">Sign the guestbook</button>\n</form>\n"
                "<h2>Latest posts</h2>\n<div id=\"posts\">\n",
                GUESTBOOK_NAME_MAX, GUESTBOOK_MESSAGE_MAX);
    uint32_t shown = 0;
    for (uint32_t i = 0; r != NULL && i < r->n_rows; i++) {
        const char *id = pg_result_value(r, i, 1);
        if (id == NULL) {
            continue; /* the row of an empty guestbook */
        }
        const char *name = pg_result_value(r, i, 2), *msg = pg_result_value(r, i, 3);
        const char *at = pg_result_value(r, i, 4);
        text_printf(t, "<div class=\"post\" id=\"post-%lld\"><div class=\"meta\"><b>",
                    strtoll(id, NULL, 10));
        text_html(t, name != NULL ? name : "");
        text_str(t, "</b> &middot; ");
        text_html(t, at != NULL ? at : "");
        text_printf(t, " &middot; #%lld</div><div class=\"message\">", strtoll(id, NULL, 10));
        text_html(t, msg != NULL ? msg : "");
        text_str(t, "</div></div>\n");
        shown++;
    }
    if (shown == 0) {
        text_str(t, "<p>No posts yet: be the first.</p>\n");
    }
    text_str(t, "</div>\n<p><a href=\"/\">the demo application</a> &middot; JSON: "
                "<a href=\"/guestbook.json\">/guestbook.json</a></p>\n</body></html>\n");
    call->status = 200;
    call->content_type = "text/html; charset=utf-8";
}

static void page_json(struct gb_call *call, const struct pg_result *r, const char *read_by)
{
    struct json_w w;
    json_w_init(&w);
    json_w_begin_object(&w);
    json_w_key(&w, "posts");
    json_w_begin_array(&w);
    for (uint32_t i = 0; r != NULL && i < r->n_rows; i++) {
        const char *id = pg_result_value(r, i, 1);
        if (id == NULL) {
            continue;
        }
        const char *name = pg_result_value(r, i, 2), *msg = pg_result_value(r, i, 3);
        const char *at = pg_result_value(r, i, 4);
        json_w_begin_object(&w);
        json_w_key_int(&w, "id", strtoll(id, NULL, 10));
        json_w_key_str(&w, "name", name != NULL ? name : "");
        json_w_key_str(&w, "message", msg != NULL ? msg : "");
        json_w_key_str(&w, "at", at != NULL ? at : "");
        json_w_end_object(&w);
    }
    json_w_end_array(&w);
    json_w_key_str(&w, "read_by", read_by);
    json_w_key_str(&w, "app_node", call->g->node);
    json_w_end_object(&w);
    text_json_doc(&call->body, &w);
    call->status = 200;
    call->content_type = "application/json";
}

/* ------------------------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------------------------ */

static void on_read(void *data, const struct pg_result *r);

static void read_failed(struct gb_call *call, const struct pg_result *r)
{
    set_error(call, 503, "the database is unavailable for reads (through %s): %s",
              call->g->read_text,
              r->err == 0         ? "no row returned"
              : r->msg[0] != '\0' ? r->msg
                                  : err_str(r->err));
    finish(call);
}

/* The answer of the read query (or of NODE_SQL when there is no table yet). */
static void on_read(void *data, const struct pg_result *r)
{
    struct gb_call *call = data;
    if (call->is_cancelled || call->g == NULL) {
        finish(call);
        return;
    }
    struct guestbook *g = call->g;
    bool is_retry = r->err == -ENOTCONN && call->tries++ < 1; /* a connection gone stale */
    bool is_no_table = r->err == -EREMOTEIO && strcmp(r->sqlstate, "42P01") == 0;
    if (is_retry || is_no_table) {
        int rc = pg_query(g->rd, is_no_table ? NODE_SQL : READ_SQL, on_read, call);
        if (rc == 0) {
            return;
        }
        set_error(call, 503, "cannot query the database: %s", err_str(rc));
        finish(call);
        return;
    }
    if (r->err != 0 || r->n_rows == 0) {
        read_failed(call, r);
        return;
    }
    char read_by[CONF_NAME_MAX];
    const char *node = pg_result_value(r, 0, 0);
    safe_name(node != NULL ? node : "", read_by, sizeof(read_by));
    if (call->is_json) {
        page_json(call, r->n_cols >= 5 ? r : NULL, read_by);
    } else {
        page_html(call, r->n_cols >= 5 ? r : NULL, read_by);
    }
    finish(call);
}

/* ------------------------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------------------------ */

static int run_write(struct gb_call *call);

static void on_write(void *data, const struct pg_result *r)
{
    struct gb_call *call = data;
    if (call->is_cancelled || call->g == NULL) {
        finish(call);
        return;
    }
    struct guestbook *g = call->g;
    /* The statements ran as one transaction: after an error nothing was written, and a
     * retry cannot post twice. Retry when the table is missing (it was dropped, or this is
     * the first post) or when two first posts raced to create it. */
    bool is_no_table = r->err == -EREMOTEIO && strcmp(r->sqlstate, "42P01") == 0;
    bool is_create_race = r->err == -EREMOTEIO && call->has_create &&
                          (strcmp(r->sqlstate, "23505") == 0 || strcmp(r->sqlstate, "42P07") == 0);
    if ((is_no_table || is_create_race) && call->tries++ < 2) {
        g->has_table = false;
        int rc = run_write(call);
        if (rc == 0) {
            return;
        }
        set_error(call, 503, "cannot query the database: %s", err_str(rc));
        finish(call);
        return;
    }
    const char *id = r->err == 0 ? pg_result_value(r, 0, 0) : NULL;
    const char *node = r->err == 0 ? pg_result_value(r, 0, 1) : NULL;
    if (id == NULL || node == NULL) {
        set_error(call, 503, "the database is unavailable for writes (through %s): %s",
                  g->write_text,
                  r->err != 0 ? (r->msg[0] != '\0' ? r->msg : err_str(r->err)) : "no row returned");
        finish(call);
        return;
    }
    g->has_table = true;
    char by[CONF_NAME_MAX];
    safe_name(node, by, sizeof(by));
    long long n = strtoll(id, NULL, 10);
    if (call->is_json) {
        call->status = 201;
        call->content_type = "application/json";
        struct json_w w;
        json_w_init(&w);
        json_w_begin_object(&w);
        json_w_key_int(&w, "id", n);
        json_w_key_str(&w, "written_by", by);
        json_w_end_object(&w);
        text_json_doc(&call->body, &w);
    } else {
        call->status = 303;
        call->content_type = "text/plain; charset=utf-8";
        (void)snprintf(call->headers, sizeof(call->headers),
                       "Location: /guestbook?written_by=%s&id=%lld\r\n", by, n);
        text_printf(&call->body, "posted as #%lld by database node %s: see /guestbook\n", n, by);
    }
    finish(call);
}

static int run_write(struct gb_call *call)
{
    struct guestbook *g = call->g;
    call->has_create = !g->has_table;
    if (!call->has_create) {
        return pg_query(g->wr, call->insert_sql, on_write, call);
    }
    size_t n = sizeof(CREATE_SQL) + strlen(call->insert_sql);
    char *sql = malloc(n);
    if (sql == NULL) {
        return -ENOMEM;
    }
    (void)snprintf(sql, n, "%s%s", CREATE_SQL, call->insert_sql);
    int rc = pg_query(g->wr, sql, on_write, call);
    free(sql);
    return rc;
}

static char *hex(const char *s, size_t len)
{
    char *out = malloc(2 * len + 1);
    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        (void)snprintf(out + 2 * i, 3, "%02x", (unsigned char)s[i]);
    }
    out[2 * len] = '\0';
    return out;
}

static bool is_form(const struct gb_request *rq)
{
    static const char form[] = "application/x-www-form-urlencoded";
    if (rq->content_type == NULL) {
        return true; /* a client that says nothing: take it as a form */
    }
    size_t n = sizeof(form) - 1;
    return rq->content_type_len >= n && strncasecmp(rq->content_type, form, n) == 0 &&
           (rq->content_type_len == n || rq->content_type[n] == ';' || rq->content_type[n] == ' ');
}

/* Check one field into out (size bytes); false with an error answer set. */
static bool form_field(struct gb_call *call, const struct gb_request *rq, const char *field,
                       size_t max_chars, bool is_multiline, char *out, size_t size)
{
    int n = demo_form_get(rq->body, rq->body_len, field, out, size);
    const char *why = n == -ENOENT ? "is missing" : n == -ENOSPC ? "is too long" : "";
    size_t len = n >= 0 ? (size_t)n : 0;
    if (n == -EINVAL) {
        why = "has a bad %-escape";
    } else if (n >= 0 && demo_form_text(out, &len, max_chars, is_multiline, &why) == 0) {
        return true;
    }
    if (strcmp(why, "is too long") == 0) {
        set_error(call, 400, "the form's %s is too long (at most %zu characters)", field,
                  max_chars);
    } else {
        set_error(call, 400, "the form's %s %s", field, why);
    }
    return false;
}

/* A POST: check the form and build the INSERT; false with an error answer set. */
static bool prepare_post(struct gb_call *call, const struct gb_request *rq)
{
    if (!is_form(rq)) {
        set_error(call, 415, "send the form as application/x-www-form-urlencoded");
        return false;
    }
    char name[GUESTBOOK_NAME_MAX * 4 + 1];
    char *message = malloc(GUESTBOOK_MESSAGE_MAX * 4 + 1);
    if (message == NULL) {
        set_error(call, 503, "out of memory");
        return false;
    }
    bool ok = form_field(call, rq, "name", GUESTBOOK_NAME_MAX, false, name, sizeof(name)) &&
              form_field(call, rq, "message", GUESTBOOK_MESSAGE_MAX, true, message,
                         GUESTBOOK_MESSAGE_MAX * 4 + 1);
    char *hn = ok ? hex(name, strlen(name)) : NULL;
    char *hm = ok ? hex(message, strlen(message)) : NULL;
    free(message);
    if (ok && (hn == NULL || hm == NULL)) {
        set_error(call, 503, "out of memory");
        ok = false;
    }
    if (ok) {
        size_t n = sizeof(INSERT_SQL) + strlen(hn) + strlen(hm);
        call->insert_sql = malloc(n);
        if (call->insert_sql == NULL) {
            set_error(call, 503, "out of memory");
            ok = false;
        } else {
            (void)snprintf(call->insert_sql, n, INSERT_SQL, hn, hm);
        }
    }
    free(hn);
    free(hm);
    return ok;
}

/* ------------------------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------------------------ */

/* Start the query of call, or prepare its answer at once; 0 when a query runs. */
static int start(struct gb_call *call, const struct gb_request *rq)
{
    struct guestbook *g = call->g;
    bool is_read = rq->method == HTTP_METHOD_GET || rq->method == HTTP_METHOD_HEAD;
    if (!is_read && !call->is_post) {
        set_error(call, 405, "the guestbook takes GET, HEAD and POST");
        (void)snprintf(call->headers, sizeof(call->headers), "Allow: GET, HEAD, POST\r\n");
        return -EINVAL;
    }
    if (!g->is_configured) {
        set_error(call, 503, "%s", g->off_reason);
        return -EINVAL;
    }
    if (is_read) {
        if (rq->query != NULL) {
            char by[CONF_NAME_MAX * 3], id[24];
            if (demo_form_get(rq->query, rq->query_len, "written_by", by, sizeof(by)) >= 0) {
                safe_name(by, call->written_by, sizeof(call->written_by));
            }
            if (demo_form_get(rq->query, rq->query_len, "id", id, sizeof(id)) > 0 &&
                strspn(id, "0123456789") == strlen(id)) {
                (void)snprintf(call->written_id, sizeof(call->written_id), "%s", id);
            }
        }
        int rc = pg_query(g->rd, READ_SQL, on_read, call);
        if (rc != 0) {
            set_error(call, 503, "cannot query the database: %s", err_str(rc));
        }
        return rc;
    }
    if (!prepare_post(call, rq)) {
        return -EINVAL;
    }
    int rc = run_write(call);
    if (rc != 0) {
        set_error(call, 503, "cannot query the database: %s", err_str(rc));
    }
    return rc;
}

int demo_guestbook_serve(struct guestbook *g, const struct gb_request *rq, gb_reply_fn cb,
                         void *data, struct gb_call **out)
{
    struct gb_call *call = calloc(1, sizeof(*call));
    if (call == NULL) {
        return -ENOMEM;
    }
    call->g = g;
    call->cb = cb;
    call->data = data;
    call->is_json = rq->is_json_path || rq->accepts_json;
    call->is_post = rq->method == HTTP_METHOD_POST;
    call->content_type = "text/plain; charset=utf-8";
    (void)snprintf(call->web, sizeof(call->web), "%s", rq->web != NULL ? rq->web : "");
    call->next = g->calls;
    if (g->calls != NULL) {
        g->calls->prev = call;
    }
    g->calls = call;
    if (start(call, rq) != 0) {
        ev_defer(g->loop, &call->defer, on_defer, call); /* answered at once, but not from here */
    }
    *out = call;
    return 0;
}

void demo_guestbook_cancel(struct gb_call *call)
{
    if (call != NULL) {
        call->is_cancelled = true;
    }
}

void demo_guestbook_free(struct guestbook *g)
{
    if (g == NULL) {
        return;
    }
    for (struct gb_call *c = g->calls; c != NULL; c = c->next) {
        c->is_cancelled = true;
        c->g = NULL; /* each frees itself when its query or deferred answer ends */
    }
    g->calls = NULL;
    pg_conn_free(g->wr); /* their queries' callbacks run now, and free their calls */
    pg_conn_free(g->rd);
    free(g);
}
