/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the HTTP/1.1 parsers (src/http/http_parse.c, http_chunked.c). Each
 * input is parsed as a request and as a response, with default and with tight limits, both
 * at once and one byte at a time; the results must agree and satisfy the framing
 * invariants, or the target aborts. The bytes after the head (or the whole input) then go
 * through the chunked scanner, at once and byte by byte, and header lookups in a serialized
 * head (http_head_value) run on the raw bytes, and a request's redirect_https Location is
 * checked (http_redirect.c). Under gcc, replay_main.c drives it. */
#include "http/http_parse.h"
#include "http/http_redirect.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_TARGET "fuzz_http"
#include "fuzz_util.h"

struct outcome {
    int rc;
    const char *error;
    struct http_msg msg;
};

static bool span_eq(struct http_span a, struct http_span b)
{
    return a.off == b.off && a.len == b.len;
}

static bool msg_eq(const struct http_msg *a, const struct http_msg *b)
{
    if (a->method != b->method || !span_eq(a->method_span, b->method_span) ||
        !span_eq(a->target, b->target) || a->status != b->status ||
        !span_eq(a->reason, b->reason) || a->version_minor != b->version_minor ||
        a->n_headers != b->n_headers || a->host_index != b->host_index ||
        a->content_length != b->content_length || a->flags != b->flags ||
        a->head_len != b->head_len) {
        return false;
    }
    for (uint32_t i = 0; i < a->n_headers; i++) {
        if (!span_eq(a->headers[i].name, b->headers[i].name) ||
            !span_eq(a->headers[i].value, b->headers[i].value)) {
            return false;
        }
    }
    return true;
}

static bool span_in(struct http_span s, uint32_t limit)
{
    return s.off <= limit && s.len <= limit - s.off;
}

/* redirect_https's Location from the parsed Host and target (http_redirect.c): an
 * https URL of visible ASCII only, nothing a header could be injected with, and its length
 * within the bound the header promises. */
static void check_redirect(const struct http_msg *m, const char *buf)
{
    const struct http_span *h = &m->headers[m->host_index].value;
    size_t cap = h->len + 3 * m->target.len + 16;
    char *out = malloc(cap);
    if (out == NULL) {
        return;
    }
    int n = http_redirect_location(buf + h->off, h->len, 8443, buf + m->target.off, m->target.len,
                                   out, cap);
    check(n == -EINVAL || (n > 0 && (size_t)n < cap), "redirect: the bound does not hold");
    if (n > 0) {
        check(strncmp(out, "https://", 8) == 0 && strlen(out) == (size_t)n, "redirect: url");
        for (int i = 0; i < n; i++) {
            check(out[i] > 0x20 && out[i] < 0x7f, "redirect: a byte that is not visible ASCII");
        }
        check(memchr(out + 8, '/', (size_t)n - 8) != NULL, "redirect: no path");
        check(memchr(out + 8, '@', (size_t)(strchr(out + 8, '/') - (out + 8))) == NULL,
              "redirect: userinfo in the authority");
    }
    free(out);
}

/* What any successfully parsed head must satisfy. */
static void check_head(const struct http_msg *m, const char *buf, size_t size, bool is_response)
{
    uint32_t hl = m->head_len;

    check(hl >= 2 && hl <= size, "head_len out of range");
    check(buf[hl - 1] == '\n' &&
              (buf[hl - 2] == '\n' || (hl >= 3 && buf[hl - 2] == '\r' && buf[hl - 3] == '\n')),
          "head does not end with an empty line");
    check(m->version_minor == 0 || m->version_minor == 1, "bad version");
    check(m->n_headers <= HTTP_MAX_HEADERS, "too many headers");
    for (uint32_t i = 0; i < m->n_headers; i++) {
        check(span_in(m->headers[i].name, hl) && span_in(m->headers[i].value, hl),
              "header span outside the head");
        check(m->headers[i].name.len > 0, "empty header name");
    }
    if (is_response) {
        check(m->status >= 100 && m->status <= 599, "status out of range");
        check(span_in(m->reason, hl), "reason outside the head");
        check((m->flags & HTTP_F_CHUNKED) == 0 || (m->flags & HTTP_F_HAS_CL) == 0,
              "response both chunked and length");
        return;
    }
    check(span_in(m->method_span, hl) && span_in(m->target, hl), "request line spans");
    check(m->method_span.len > 0 && m->target.len > 0, "empty method or target");
    check(memchr(buf + m->target.off, '#', m->target.len) == NULL, "fragment in the target");
    /* The smuggling invariants: one framing, chunked only as the sole coding in 1.1. */
    check((m->flags & HTTP_F_HAS_TE) == 0 || (m->flags & HTTP_F_HAS_CL) == 0,
          "request with TE and CL accepted");
    check(((m->flags & HTTP_F_HAS_TE) != 0) == ((m->flags & HTTP_F_CHUNKED) != 0),
          "request TE without chunked accepted");
    check((m->flags & HTTP_F_HAS_TE) == 0 || m->version_minor == 1, "TE in HTTP/1.0");
    check(m->version_minor == 0 || (m->flags & HTTP_F_HAS_HOST) != 0, "1.1 without Host");
    if (m->host_index >= 0) {
        check((uint32_t)m->host_index < m->n_headers &&
                  http_span_eq(buf, m->headers[m->host_index].name, "host", 4),
              "host_index is not Host");
    }
}

/* One call on the whole input. */
static void parse_at_once(bool is_response, const uint8_t *data, size_t size, uint32_t max_line,
                          uint32_t max_head, struct outcome *o)
{
    struct http_parser p;

    http_parser_init(&p, is_response, max_line, max_head);
    o->rc = http_parse_head(&p, (const char *)data, size, &o->msg);
    o->error = p.error;
    check(http_parse_head(&p, (const char *)data, size, &o->msg) == o->rc, "repeat call");
}

/* The input arriving one byte at a time in a copy whose unreceived tail is poisoned. */
static void parse_growing(bool is_response, const uint8_t *data, size_t size, uint32_t max_line,
                          uint32_t max_head, struct outcome *o)
{
    struct http_parser p;
    char *copy = malloc(size + 1);

    check(copy != NULL, "out of memory");
    memcpy(copy, data, size);
    poison(copy, size + 1);
    http_parser_init(&p, is_response, max_line, max_head);
    o->rc = -EAGAIN;
    for (size_t k = 0; k <= size && o->rc == -EAGAIN; k++) {
        if (k > 0) {
            unpoison(copy + k - 1, 1);
        }
        o->rc = http_parse_head(&p, copy, k, &o->msg);
    }
    o->error = p.error;
    unpoison(copy, size + 1);
    free(copy);
}

/* Parse both ways and compare; returns the head length on success, else 0. */
static size_t fuzz_head(bool is_response, const uint8_t *data, size_t size, uint32_t max_line,
                        uint32_t max_head)
{
    static struct outcome once;
    static struct outcome grow;

    parse_at_once(is_response, data, size, max_line, max_head, &once);
    parse_growing(is_response, data, size, max_line, max_head, &grow);
    if (once.rc != grow.rc) {
        fprintf(stderr, "fuzz_http: %s: at once %d (%s), byte by byte %d (%s)\n",
                is_response ? "response" : "request", once.rc,
                once.error != NULL ? once.error : "-", grow.rc,
                grow.error != NULL ? grow.error : "-");
        abort();
    }
    if (once.rc == -EAGAIN) {
        return 0;
    }
    if (once.rc != 0) {
        check(once.error != NULL && grow.error != NULL && strcmp(once.error, grow.error) == 0,
              "error reasons differ");
        check(!is_response || once.rc == -KEEL_EHTTP_BAD_RESPONSE, "response error code");
        check(http_parse_error_status(once.rc) >= 400, "error status");
        return 0;
    }
    check(msg_eq(&once.msg, &grow.msg), "messages differ");
    check_head(&once.msg, (const char *)data, size, is_response);
    (void)http_request_body_kind(&once.msg);
    (void)http_response_body_kind(&once.msg, HTTP_METHOD_GET);
    (void)http_response_body_kind(&once.msg, HTTP_METHOD_CONNECT);
    (void)http_msg_keepalive(&once.msg);
    int host = http_msg_find(&once.msg, (const char *)data, "host", 4);
    check(is_response || host == once.msg.host_index, "http_msg_find disagrees on host");
    check(http_method_name(once.msg.method) != NULL, "method name");
    check(http_method_from(http_method_name(once.msg.method),
                           strlen(http_method_name(once.msg.method))) == once.msg.method ||
              once.msg.method == HTTP_METHOD_OTHER,
          "method round trip");
    (void)http_method_is_idempotent(once.msg.method);
    if (!is_response && host >= 0) {
        check_redirect(&once.msg, (const char *)data);
    }
    check(http_status_reason(once.msg.status) != NULL, "status reason");
    return once.msg.head_len;
}

struct digest {
    uint64_t len;
    uint64_t hash; /* FNV-1a of the chunk data */
};

static void on_data(void *ctx, const char *data, size_t len)
{
    struct digest *d = ctx;

    check(len > 0, "empty data run");
    for (size_t i = 0; i < len; i++) {
        d->hash = (d->hash ^ (unsigned char)data[i]) * 0x100000001b3ull;
    }
    d->len += len;
}

static void fuzz_chunked(const uint8_t *data, size_t size)
{
    struct http_chunked once;
    struct http_chunked bytes;
    struct digest d1 = {0, 0xcbf29ce484222325ull};
    struct digest d2 = d1;
    size_t consumed = 0;
    size_t total = 0;
    int rc2 = -EAGAIN;

    http_chunked_init(&once);
    int rc1 = http_chunked_scan(&once, (const char *)data, size, &consumed, on_data, &d1);
    check(consumed <= size && d1.len <= consumed, "chunked consumed out of range");
    check(rc1 != -EAGAIN || consumed == size, "chunked -EAGAIN without consuming all");

    /* Byte by byte; only the byte being fed is addressable, so looking back or ahead in
     * the buffer is caught under ASan. */
    char *copy = malloc(size + 1);
    check(copy != NULL, "out of memory");
    memcpy(copy, data, size);
    poison(copy, size + 1);
    http_chunked_init(&bytes);
    for (size_t i = 0; i < size && rc2 == -EAGAIN; i++) {
        size_t c = 0;
        unpoison(copy + i, 1);
        rc2 = http_chunked_scan(&bytes, copy + i, 1, &c, on_data, &d2);
        poison(copy + i, 1);
        total += c;
        check(rc2 != -EAGAIN || c == 1, "chunked -EAGAIN without consuming the byte");
    }
    unpoison(copy, size + 1);
    free(copy);
    check(rc1 == rc2, "chunked results differ");
    check(size == 0 || total == consumed, "chunked consumed differs");
    check(d1.len == d2.len && d1.hash == d2.hash, "chunked data differs");
}

/* http_head_value on any bytes: a name made of the input's first bytes, looked up in the
 * rest; whatever it returns lies inside the input. */
static void fuzz_head_value(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return;
    }
    size_t name_len = 1 + data[0] % 16;
    if (name_len >= size) {
        return;
    }
    const char *name = (const char *)data + 1;
    const char *head = name + name_len;
    size_t len = size - 1 - name_len;
    size_t value_len = 0;
    const char *v = http_head_value(head, len, name, name_len, &value_len);
    if (v != NULL) {
        check(v >= head && value_len <= len && (size_t)(v - head) <= len - value_len,
              "header value outside the head");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_head_value(data, size);
    size_t head = fuzz_head(false, data, size, 0, 0);
    (void)fuzz_head(false, data, size, 32, 256);
    (void)fuzz_head(true, data, size, 0, 0);
    (void)fuzz_head(true, data, size, 32, 256);
    fuzz_chunked(data + head, size - head);
    return 0;
}
