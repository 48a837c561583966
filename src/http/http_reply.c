/* SPDX-License-Identifier: MIT */
/* Error responses made by keel and access log formatting (combined and JSON). */
#include "http/http_reply.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "http/http_proxy-t.h"
#include "lb/lb.h"

int http_reply_format(struct buf *out, int status, const char *content_type, const char *body,
                      size_t body_len, const char *served_by, int is_close)
{
    char head[512];
    bool by = served_by != NULL && served_by[0] != '\0';
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%s%s%s%s\r\n",
                     status, http_status_reason(status), content_type, body_len,
                     by ? "X-Served-By: " : "", by ? served_by : "", by ? "\r\n" : "",
                     is_close ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(head)) {
        return -1;
    }
    buf_compact(out);
    if (buf_tailroom(out) < (size_t)n + body_len) {
        return -1;
    }
    bool ok = buf_append(out, head, (size_t)n) && buf_append(out, body, body_len);
    return ok ? 0 : -1;
}

void http_reply_error(struct hp_conn *c, int status, const char *detail)
{
    char body[512];
    int n = snprintf(
        body, sizeof(body), "%d %s: %s%s%s%s\n", status, http_status_reason(status), detail,
        c->ex->be != NULL && status >= 500 ? " (backend " : "",
        c->ex->be != NULL && status >= 500 ? (c->ex->be != NULL ? c->ex->be->conf->name : "-") : "",
        c->ex->be != NULL && status >= 500 ? ")" : "");
    if (n < 0) {
        n = 0;
    }
    size_t len = (size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1;
    if (c->ex->method == HTTP_METHOD_HEAD && c->state != HP_STATE_READ_HEAD &&
        c->state != HP_STATE_IDLE) {
        len = 0; /* the head says how long the body would be; HEAD gets none */
    }
    const char *by = c->fe != NULL ? c->fe->conf->served_by : NULL;
    if (http_reply_format(&c->out, status, "text/plain; charset=utf-8", body, len, by, 1) != 0) {
        c->out.off = c->out.len = 0;
    }
}

char *http_json_escape(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && o + 7 < outlen; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", *p);
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
    return out;
}

/* Combined log format quotes fields; escape quotes, backslashes and control bytes. */
static char *clf_escape(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && o + 5 < outlen; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else if (*p < 0x20 || *p >= 0x7f) {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", *p);
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
    return out;
}

void http_reply_access_log(struct hp_conn *c)
{
    if (c->ex->log == NULL || c->fe->access_log_fd == -1) {
        return;
    }
    struct hp_logreq *lr = c->ex->log;
    char line[4096], tbuf[64], m[64], t[1100], r[600], u[600];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    uint64_t dur_ms = ev_now_ms(c->w->loop) - c->ex->t_start_ms;
    const char *server = c->ex->srv != NULL ? c->ex->srv->conf->name : "-";
    int n;
    if (c->fe->conf->access_log_format == CONF_LOG_JSON) {
        strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%SZ", &tm);
        n = snprintf(line, sizeof(line),
                     "{\"time\":\"%s\",\"client\":\"%s\",\"frontend\":\"%s\",\"backend\":\"%s\","
                     "\"server\":\"%s\",\"method\":\"%s\",\"target\":\"%s\",\"protocol\":"
                     "\"HTTP/1.%d\",\"status\":%d,\"bytes\":%lu,\"duration_ms\":%lu,"
                     "\"referer\":\"%s\",\"user_agent\":\"%s\"%s%s%s}\n",
                     tbuf, c->peer_ip, c->fe->conf->name,
                     (c->ex->be != NULL ? c->ex->be->conf->name : "-"), server,
                     http_json_escape(lr->method, m, sizeof(m)),
                     http_json_escape(lr->target, t, sizeof(t)), lr->minor, c->ex->status,
                     (unsigned long)c->ex->res_bytes, (unsigned long)dur_ms,
                     http_json_escape(lr->referer, r, sizeof(r)),
                     http_json_escape(lr->user_agent, u, sizeof(u)),
                     c->ex->error_detail != NULL ? ",\"error\":\"" : "",
                     c->ex->error_detail != NULL ? c->ex->error_detail : "",
                     c->ex->error_detail != NULL ? "\"" : "");
    } else {
        strftime(tbuf, sizeof(tbuf), "%d/%b/%Y:%H:%M:%S +0000", &tm);
        n = snprintf(
            line, sizeof(line),
            "%s - - [%s] \"%s %s HTTP/1.%d\" %d %lu \"%s\" \"%s\" %s/%s %lums\n", c->peer_ip, tbuf,
            clf_escape(lr->method, m, sizeof(m)), clf_escape(lr->target, t, sizeof(t)), lr->minor,
            c->ex->status, (unsigned long)c->ex->res_bytes,
            lr->referer[0] != '\0' ? clf_escape(lr->referer, r, sizeof(r)) : "-",
            lr->user_agent[0] != '\0' ? clf_escape(lr->user_agent, u, sizeof(u)) : "-",
            (c->ex->be != NULL ? c->ex->be->conf->name : "-"), server, (unsigned long)dur_ms);
    }
    if (n <= 0) {
        return;
    }
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    if (line[len - 1] != '\n') {
        line[len - 1] = '\n';
    }
    lb_worker_access_log(c->w, c->fe->access_log_fd, line, len);
}
