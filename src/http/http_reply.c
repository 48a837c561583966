/* SPDX-License-Identifier: MIT */
/* Error responses made by keel and access log formatting (combined and JSON). */
#include "http/http_reply.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/json.h"
#include "http/http_proxy-t.h"
#include "http/http_transport.h"
#include "http/http_upstream.h"
#include "lb/lb.h"

int http_reply_format(struct buf *out, int status, const char *content_type, const char *body,
                      size_t body_len, const char *served_by, int is_close)
{
    return http_reply_format_with(out, status, content_type, body, body_len, served_by, "",
                                  is_close);
}

int http_reply_format_with(struct buf *out, int status, const char *content_type, const char *body,
                           size_t body_len, const char *served_by, const char *extra, int is_close)
{
    char head[640];
    bool by = served_by != NULL && served_by[0] != '\0';
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%s%s%s%s%s\r\n",
                     status, http_status_reason(status), content_type, body_len, extra,
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
    const char *hsts = c->fe != NULL && http_xprt_is_secure(&c->xp) ? c->fe->conf->tls.hsts : "";
    if (http_reply_format_with(&c->out, status, "text/plain; charset=utf-8", body, len, by, hsts,
                               1) != 0) {
        c->out.off = c->out.len = 0;
    }
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

/* The JSON access log line of c into line[0, size), with its newline; its length, or -1
 * when it does not fit. It always fits 8 KiB: the request's fields are bounded by struct
 * hp_logreq (1040 bytes, at most 6 bytes each once escaped), the names by the configuration. */
static int access_log_json(const struct hp_conn *c, const char *time, uint64_t dur_ms,
                           const char *server, const struct http_xprt_info *xi, char *line,
                           size_t size)
{
    const struct hp_logreq *lr = c->ex->log;
    char protocol[16];
    (void)snprintf(protocol, sizeof(protocol), "HTTP/1.%d", lr->minor);
    struct json_w w;
    json_w_init_fixed(&w, line, size);
    json_w_begin_object(&w);
    json_w_key_str(&w, "time", time);
    char ip[SOCK_IP_MAX];
    json_w_key_str(&w, "client", hp_conn_ip(c, ip));
    json_w_key_str(&w, "frontend", c->fe->conf->name);
    json_w_key_str(&w, "backend", c->ex->be != NULL ? c->ex->be->conf->name : "-");
    json_w_key_str(&w, "server", server);
    json_w_key_str(&w, "method", lr->method);
    json_w_key_str(&w, "target", lr->target);
    json_w_key_str(&w, "protocol", protocol);
    json_w_key_int(&w, "status", c->ex->status);
    json_w_key_uint(&w, "bytes", c->ex->res_bytes);
    json_w_key_uint(&w, "duration_ms", dur_ms);
    json_w_key_str(&w, "referer", lr->referer);
    json_w_key_str(&w, "user_agent", lr->user_agent);
    if (c->ex->error_detail != NULL) {
        json_w_key_str(&w, "error", c->ex->error_detail);
    }
    if (xi->version != NULL) {
        json_w_key_str(&w, "tls_version", xi->version);
        json_w_key_str(&w, "tls_cipher", xi->cipher != NULL ? xi->cipher : "-");
    }
    json_w_end_object(&w);
    if (json_w_finish(&w) != 0 || w.len + 1 >= size) {
        return -1;
    }
    line[w.len] = '\n';
    line[w.len + 1] = '\0';
    return (int)w.len + 1;
}

void http_reply_access_log(struct hp_conn *c)
{
    if (c->ex->log == NULL || c->fe->access_log_fd == -1) {
        return;
    }
    struct hp_logreq *lr = c->ex->log;
    char line[8192], ip[SOCK_IP_MAX], tbuf[64], m[64], t[1100], r[600], u[600];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    uint64_t dur_ms = ev_now_ms(c->w->loop) - c->ex->t_start_ms;
    const struct lb_server *srv =
        c->ex->handler == &hp_proxy_handler ? c->ex->h.px.sess.srv : NULL; /* slot held */
    const char *server = srv != NULL ? srv->conf->name : "-";
    /* A TLS connection adds its version and cipher: JSON keys tls_version and tls_cipher, and
     * in the combined format one more field at the end, "TLSv1.3/TLS_AES_128_GCM_SHA256"
     * (plain connections log exactly what they did before). */
    struct http_xprt_info xi;
    http_xprt_get_info(&c->xp, &xi);
    int n;
    if (c->fe->conf->access_log_format == CONF_LOG_JSON) {
        strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%SZ", &tm);
        n = access_log_json(c, tbuf, dur_ms, server, &xi, line, sizeof(line));
    } else {
        strftime(tbuf, sizeof(tbuf), "%d/%b/%Y:%H:%M:%S +0000", &tm);
        n = snprintf(line, sizeof(line),
                     "%s - - [%s] \"%s %s HTTP/1.%d\" %d %lu \"%s\" \"%s\" %s/%s %lums%s%s%s%s\n",
                     hp_conn_ip(c, ip), tbuf, clf_escape(lr->method, m, sizeof(m)),
                     clf_escape(lr->target, t, sizeof(t)), lr->minor, c->ex->status,
                     (unsigned long)c->ex->res_bytes,
                     lr->referer[0] != '\0' ? clf_escape(lr->referer, r, sizeof(r)) : "-",
                     lr->user_agent[0] != '\0' ? clf_escape(lr->user_agent, u, sizeof(u)) : "-",
                     (c->ex->be != NULL ? c->ex->be->conf->name : "-"), server,
                     (unsigned long)dur_ms, xi.version != NULL ? " " : "",
                     xi.version != NULL ? xi.version : "", xi.version != NULL ? "/" : "",
                     xi.version != NULL && xi.cipher != NULL ? xi.cipher
                                                             : (xi.version != NULL ? "-" : ""));
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
