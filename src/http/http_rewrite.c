/* SPDX-License-Identifier: MIT */
/* Message head serialization for the proxy (see http_rewrite.h). */
#include "http/http_rewrite.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_CONN_TOKENS 16

struct token_list {
    const char *p[MAX_CONN_TOKENS];
    size_t len[MAX_CONN_TOKENS];
    unsigned n;
};

static inline char lower_ascii(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c | 0x20) : c;
}

/* Whether name is lit up to ASCII case; lit is a lower-case literal (its strlen folds to a
 * constant). An inline loop, not strncasecmp: every header of every message goes through a
 * dozen of these, and the libc call was 0.5% of a worker's CPU. */
static inline bool name_is(const char *name, size_t len, const char *lit)
{
    if (strlen(lit) != len) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (lower_ascii(name[i]) != lit[i]) {
            return false;
        }
    }
    return true;
}

bool http_is_hop_by_hop(const char *name, size_t len)
{
    return name_is(name, len, "connection") || name_is(name, len, "keep-alive") ||
           name_is(name, len, "proxy-connection") || name_is(name, len, "te") ||
           name_is(name, len, "trailer") || name_is(name, len, "upgrade");
}

static bool is_framing(const char *name, size_t len)
{
    return name_is(name, len, "host") || name_is(name, len, "content-length") ||
           name_is(name, len, "transfer-encoding");
}

/* Whether name is, up to case and with '_' read as '-', a header keel writes itself. */
static bool is_keel_written(const char *name, size_t len)
{
    static const char *const names[] = {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                                        "x-served-by"};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        const char *lit = names[k];
        if (strlen(lit) != len) {
            continue;
        }
        size_t i = 0;
        while (i < len && (lower_ascii(name[i]) == lit[i] || (name[i] == '_' && lit[i] == '-'))) {
            i++;
        }
        if (i == len) {
            return true;
        }
    }
    return false;
}

/* A spelling with '_' of a header keel writes (X_Forwarded_For): CGI-style servers map it
 * to the same variable as the real one, so a client could forge it. */
static bool is_underscore_variant(const char *name, size_t len)
{
    return memchr(name, '_', len) != NULL && is_keel_written(name, len);
}

/* Whether a Connection token can be ignored: it names a header that is removed anyway or one
 * that is never removed (framing, and the headers keel writes). */
static bool token_is_moot(const char *t, size_t len)
{
    return name_is(t, len, "close") || http_is_hop_by_hop(t, len) || is_framing(t, len) ||
           is_keel_written(t, len);
}

/* Collect the tokens of every Connection header that name a header to remove. Returns 0, or
 * -E2BIG when there are more than MAX_CONN_TOKENS: the caller refuses the message rather
 * than forward some of the headers its sender wanted removed. */
static int connection_tokens(const struct http_msg *m, const char *buf, struct token_list *tl)
{
    tl->n = 0;
    for (uint32_t i = 0; i < m->n_headers; i++) {
        const struct http_header *h = &m->headers[i];
        if (!name_is(buf + h->name.off, h->name.len, "connection")) {
            continue;
        }
        const char *v = buf + h->value.off;
        size_t vl = h->value.len, pos = 0;
        while (pos < vl) {
            while (pos < vl && (v[pos] == ',' || v[pos] == ' ' || v[pos] == '\t')) {
                pos++;
            }
            size_t start = pos;
            while (pos < vl && v[pos] != ',' && v[pos] != ' ' && v[pos] != '\t') {
                pos++;
            }
            if (pos == start || token_is_moot(v + start, pos - start)) {
                continue;
            }
            if (tl->n == MAX_CONN_TOKENS) {
                return -E2BIG;
            }
            tl->p[tl->n] = v + start;
            tl->len[tl->n] = pos - start;
            tl->n++;
        }
    }
    return 0;
}

/* Whether header h must not be forwarded. Upgrade is kept only for a tunnel
 * (RFC 9110 section 7.8), even when Connection names it. */
static bool drop_header(const char *name, size_t len, const struct token_list *tl, bool is_upgrade)
{
    if (is_upgrade && name_is(name, len, "upgrade")) {
        return false;
    }
    if (http_is_hop_by_hop(name, len)) {
        return true;
    }
    if (is_framing(name, len) || is_keel_written(name, len)) {
        return false; /* never removed through Connection (tokens skipped them already) */
    }
    for (unsigned i = 0; i < tl->n; i++) {
        if (tl->len[i] == len && strncasecmp(tl->p[i], name, len) == 0) {
            return true;
        }
    }
    return false;
}

static bool put(struct buf *out, const char *p, size_t n)
{
    if (buf_tailroom(out) < n) {
        return false;
    }
    memcpy(buf_tail(out), p, n);
    out->len += n;
    return true;
}

static bool put_str(struct buf *out, const char *s)
{
    return put(out, s, strlen(s));
}

/* "HTTP/1.1 NNN " without snprintf: once per response, and the parser admits only three
 * digits (other values, from a caller that built the message itself, go through snprintf). */
static bool put_status_line_start(struct buf *out, int status)
{
    if (status < 100 || status > 999) {
        char line[32];
        int n = snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
        return n > 0 && put(out, line, (size_t)n);
    }
    char line[13];
    memcpy(line, "HTTP/1.1 ", 9);
    line[12] = ' ';
    line[9] = (char)('0' + status / 100);
    line[10] = (char)('0' + status / 10 % 10);
    line[11] = (char)('0' + status % 10);
    return put(out, line, sizeof(line));
}

static bool put_header(struct buf *out, const char *buf, const struct http_header *h)
{
    return put(out, buf + h->name.off, h->name.len) && put(out, ": ", 2) &&
           put(out, buf + h->value.off, h->value.len) && put(out, "\r\n", 2);
}

static bool has_text(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static bool put_served_by(struct buf *out, const char *name)
{
    return !has_text(name) ||
           (put_str(out, "X-Served-By: ") && put_str(out, name) && put(out, "\r\n", 2));
}

int http_rewrite_request(const struct http_msg *req, const char *buf,
                         const struct http_rewrite_req *opt, struct buf *out)
{
    struct token_list tl;
    if (connection_tokens(req, buf, &tl) != 0) {
        return -KEEL_EHTTP_BAD_REQUEST;
    }
    buf_compact(out);
    size_t saved = out->len;
    bool ok = put(out, buf + req->method_span.off, req->method_span.len) && put(out, " ", 1) &&
              put(out, buf + req->target.off, req->target.len) && put_str(out, " HTTP/1.1\r\n");
    int last_xff = -1;
    for (uint32_t i = 0; ok && i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        const char *name = buf + h->name.off;
        if (name_is(name, h->name.len, "x-forwarded-for")) {
            last_xff = (int)i;
        }
    }
    for (uint32_t i = 0; ok && i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        const char *name = buf + h->name.off;
        size_t nl = h->name.len;
        if (drop_header(name, nl, &tl, opt->is_upgrade) || is_underscore_variant(name, nl) ||
            name_is(name, nl, "x-forwarded-proto") || name_is(name, nl, "x-forwarded-host") ||
            (has_text(opt->served_by) && name_is(name, nl, "x-served-by"))) {
            continue;
        }
        ok = put_header(out, buf, h);
        if (ok && (int)i == last_xff) {
            /* Append the real peer to the last X-Forwarded-For, as the list grows. */
            out->len -= 2;
            ok = put(out, ", ", 2) && put_str(out, opt->client_ip) && put(out, "\r\n", 2);
        }
    }
    if (ok && last_xff == -1) {
        ok = put_str(out, "X-Forwarded-For: ") && put_str(out, opt->client_ip) &&
             put(out, "\r\n", 2);
    }
    if (ok) {
        ok = put_str(out, "X-Forwarded-Proto: ") && put_str(out, opt->proto) && put(out, "\r\n", 2);
    }
    if (ok && req->host_index >= 0) {
        const struct http_header *h = &req->headers[req->host_index];
        ok = put_str(out, "X-Forwarded-Host: ") && put(out, buf + h->value.off, h->value.len) &&
             put(out, "\r\n", 2);
    } else if (ok) {
        /* An HTTP/1.0 request without Host goes out as 1.1, which requires one: empty,
         * as RFC 9110 section 7.2 says for a target without an authority. */
        ok = put_str(out, "Host: \r\n");
    }
    if (ok && opt->is_upgrade) {
        ok = put_str(out, "Connection: upgrade\r\n");
    }
    ok = ok && put_served_by(out, opt->served_by) && put(out, "\r\n", 2);
    if (!ok) {
        out->len = saved;
        return -ENOSPC;
    }
    return 0;
}

int http_rewrite_response(const struct http_msg *res, const char *buf,
                          const struct http_rewrite_res *opt, struct buf *out)
{
    struct token_list tl;
    if (connection_tokens(res, buf, &tl) != 0) {
        return -KEEL_EHTTP_BAD_RESPONSE;
    }
    buf_compact(out);
    size_t saved = out->len;
    bool ok = put_status_line_start(out, res->status) &&
              put(out, buf + res->reason.off, res->reason.len) && put(out, "\r\n", 2);
    for (uint32_t i = 0; ok && i < res->n_headers; i++) {
        const struct http_header *h = &res->headers[i];
        const char *name = buf + h->name.off;
        size_t nl = h->name.len;
        if (drop_header(name, nl, &tl, opt->is_upgrade) ||
            (has_text(opt->served_by) && name_is(name, nl, "x-served-by")) ||
            (has_text(opt->hsts) && name_is(name, nl, "strict-transport-security"))) {
            continue;
        }
        bool chunked = (res->flags & HTTP_F_CHUNKED) != 0;
        if ((opt->drop_framing &&
             (name_is(name, nl, "transfer-encoding") || name_is(name, nl, "content-length"))) ||
            (chunked && name_is(name, nl, "content-length"))) {
            continue;
        }
        ok = put_header(out, buf, h);
    }
    if (ok && opt->is_upgrade) {
        ok = put_str(out, "Connection: upgrade\r\n");
    } else if (ok && opt->is_close) {
        ok = put_str(out, "Connection: close\r\n");
    } else if (ok && opt->is_keepalive_10) {
        ok = put_str(out, "Connection: keep-alive\r\n");
    }
    if (ok && has_text(opt->hsts)) {
        ok = put_str(out, opt->hsts);
    }
    ok = ok && put_served_by(out, opt->served_by) && put(out, "\r\n", 2);
    if (!ok) {
        out->len = saved;
        return -ENOSPC;
    }
    return 0;
}
