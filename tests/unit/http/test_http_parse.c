/* SPDX-License-Identifier: MIT */
/* Unit tests for src/http/http_parse.c: request and status lines, field syntax, framing
 * semantics, limits, and the promise that feeding a head byte by byte (in a buffer that
 * moves at every call) gives exactly the result of feeding it at once. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_parse.c"

#define MAX_LINE 8192u
#define MAX_HEAD 65536u

/* Results of one parse; the message is large, so keep it off the test stack frames. */
struct parsed {
    int rc;
    struct http_parser p;
    struct http_msg msg;
};

static struct parsed *result;

static void setup(void)
{
    result = calloc(1, sizeof(*result));
    cr_assert_not_null(result);
}

static void teardown(void)
{
    free(result);
}

TestSuite(http_parse, .init = setup, .fini = teardown);

static void assert_span_eq(struct http_span a, struct http_span b, const char *what)
{
    cr_assert(a.off == b.off && a.len == b.len, "%s differs: %u+%u vs %u+%u", what, a.off, a.len,
              b.off, b.len);
}

static void assert_msg_eq(const struct http_msg *a, const struct http_msg *b)
{
    cr_assert_eq(a->method, b->method);
    assert_span_eq(a->method_span, b->method_span, "method");
    assert_span_eq(a->target, b->target, "target");
    cr_assert_eq(a->status, b->status);
    assert_span_eq(a->reason, b->reason, "reason");
    cr_assert_eq(a->version_minor, b->version_minor);
    cr_assert_eq(a->n_headers, b->n_headers);
    for (uint32_t i = 0; i < a->n_headers; i++) {
        assert_span_eq(a->headers[i].name, b->headers[i].name, "header name");
        assert_span_eq(a->headers[i].value, b->headers[i].value, "header value");
    }
    cr_assert_eq(a->host_index, b->host_index);
    cr_assert_eq(a->content_length, b->content_length);
    cr_assert_eq(a->flags, b->flags, "flags %#x vs %#x", a->flags, b->flags);
    cr_assert_eq(a->head_len, b->head_len);
}

/* Parse in[0, len) at once, then again one byte at a time, each time from a fresh heap
 * copy of exactly the bytes given (so the buffer moves and overreads are caught by ASan),
 * and check both agree. Leaves the at-once result in *out. */
static int parse_limits(struct parsed *out, bool is_response, const char *in, size_t len,
                        uint32_t max_line, uint32_t max_head)
{
    struct parsed *inc = calloc(1, sizeof(*inc));
    cr_assert_not_null(inc);

    http_parser_init(&out->p, is_response, max_line, max_head);
    out->rc = http_parse_head(&out->p, in, len, &out->msg);

    http_parser_init(&inc->p, is_response, max_line, max_head);
    inc->rc = -EAGAIN;
    for (size_t k = 0; k <= len && inc->rc == -EAGAIN; k++) {
        char *copy = malloc(k + 1);
        cr_assert_not_null(copy);
        memcpy(copy, in, k);
        inc->rc = http_parse_head(&inc->p, copy, k, &inc->msg);
        free(copy);
    }
    cr_assert_eq(out->rc, inc->rc, "at once %d (%s), byte by byte %d (%s)", out->rc,
                 out->p.error != NULL ? out->p.error : "-", inc->rc,
                 inc->p.error != NULL ? inc->p.error : "-");
    if (out->rc == 0) {
        assert_msg_eq(&out->msg, &inc->msg);
    } else if (out->rc != -EAGAIN) {
        cr_assert_not_null(out->p.error);
        cr_assert_str_eq(out->p.error, inc->p.error);
    }
    /* Calling again repeats the result. */
    cr_assert_eq(http_parse_head(&out->p, in, len, &out->msg), out->rc);
    free(inc);
    return out->rc;
}

static int parse_req(const char *in)
{
    return parse_limits(result, false, in, strlen(in), MAX_LINE, MAX_HEAD);
}

static int parse_resp(const char *in)
{
    return parse_limits(result, true, in, strlen(in), MAX_LINE, MAX_HEAD);
}

static void assert_req_ok(const char *in)
{
    int rc = parse_req(in);
    cr_assert_eq(rc, 0, "rc %d (%s) for [%s]", rc, result->p.error, in);
    cr_assert_eq(result->msg.head_len, strlen(in));
}

static void assert_req_fails(const char *in, int err)
{
    int rc = parse_req(in);
    cr_assert_eq(rc, err, "rc %d (%s), expected %d, for [%s]", rc,
                 result->p.error != NULL ? result->p.error : "-", err, in);
}

static void assert_resp_fails(const char *in)
{
    int rc = parse_resp(in);
    cr_assert_eq(rc, -KEEL_EHTTP_BAD_RESPONSE, "rc %d for [%s]", rc, in);
    cr_assert_not_null(result->p.error);
}

static bool span_is(const char *buf, struct http_span s, const char *str)
{
    return s.len == strlen(str) && memcmp(buf + s.off, str, s.len) == 0;
}

static bool header_is(const char *buf, uint32_t i, const char *name, const char *value)
{
    const struct http_header *h = &result->msg.headers[i];
    return span_is(buf, h->name, name) && span_is(buf, h->value, value);
}

/* ------------------------------------------------------------------------------------ */
/* Valid requests                                                                        */

Test(http_parse, get_with_many_headers)
{
    const char *in = "GET /index.html?q=1 HTTP/1.1\r\n"
                     "Host: example.com\r\n"
                     "User-Agent: curl/8.0\r\n"
                     "Accept: */*\r\n"
                     "Accept-Language: en-US,en;q=0.5\r\n"
                     "Cookie: a=b; c=d\r\n"
                     "X-Empty:\r\n"
                     "X-Spaces:    padded value  \t \r\n"
                     "\r\n";
    assert_req_ok(in);
    const struct http_msg *m = &result->msg;
    cr_assert_eq(m->method, HTTP_METHOD_GET);
    cr_assert(span_is(in, m->method_span, "GET"));
    cr_assert(span_is(in, m->target, "/index.html?q=1"));
    cr_assert_eq(m->version_minor, 1);
    cr_assert_eq(m->n_headers, 7);
    cr_assert(header_is(in, 0, "Host", "example.com"));
    cr_assert(header_is(in, 4, "Cookie", "a=b; c=d"));
    cr_assert(header_is(in, 5, "X-Empty", ""));
    cr_assert(header_is(in, 6, "X-Spaces", "padded value"));
    cr_assert_eq(m->host_index, 0);
    cr_assert_eq(m->flags, HTTP_F_HAS_HOST);
    cr_assert_eq(http_request_body_kind(m), HTTP_BODY_NONE);
    cr_assert(http_msg_keepalive(m));
    cr_assert_eq(http_msg_find(m, in, "user-agent", 10), 1);
    cr_assert_eq(http_msg_find(m, in, "x-missing", 9), -1);
}

Test(http_parse, post_with_content_length)
{
    const char *in = "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world";
    cr_assert_eq(parse_req(in), 0);
    cr_assert_eq(result->msg.method, HTTP_METHOD_POST);
    cr_assert_eq(result->msg.head_len, strlen(in) - 11);
    cr_assert_eq(result->msg.flags, HTTP_F_HAS_HOST | HTTP_F_HAS_CL);
    cr_assert_eq(result->msg.content_length, 11);
    cr_assert_eq(http_request_body_kind(&result->msg), HTTP_BODY_LENGTH);
}

Test(http_parse, content_length_zero_and_max)
{
    assert_req_ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    cr_assert_eq(result->msg.content_length, 0);
    cr_assert_eq(http_request_body_kind(&result->msg), HTTP_BODY_LENGTH);
    assert_req_ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n");
    cr_assert_eq(result->msg.content_length, INT64_MAX);
}

Test(http_parse, identical_content_lengths)
{
    assert_req_ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n");
    cr_assert_eq(result->msg.content_length, 5);
    assert_req_ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
    cr_assert_eq(result->msg.content_length, 5);
    cr_assert_eq(result->msg.flags & HTTP_F_HAS_CL, HTTP_F_HAS_CL);
}

Test(http_parse, chunked_post)
{
    const char *in = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n0\r\n\r\n";
    cr_assert_eq(parse_req(in), 0);
    cr_assert_eq(result->msg.flags, HTTP_F_HAS_HOST | HTTP_F_HAS_TE | HTTP_F_CHUNKED);
    cr_assert_eq(http_request_body_kind(&result->msg), HTTP_BODY_CHUNKED);
    cr_assert_eq(memcmp(in + result->msg.head_len, "5\r\n", 3), 0);
}

Test(http_parse, chunked_case_and_ows)
{
    assert_req_ok("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  ChUnKeD \t\r\n\r\n");
    cr_assert_eq(http_request_body_kind(&result->msg), HTTP_BODY_CHUNKED);
}

Test(http_parse, http10_without_host)
{
    assert_req_ok("GET / HTTP/1.0\r\n\r\n");
    cr_assert_eq(result->msg.version_minor, 0);
    cr_assert_eq(result->msg.host_index, -1);
    cr_assert_not(http_msg_keepalive(&result->msg));
    assert_req_ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    cr_assert(http_msg_keepalive(&result->msg));
    cr_assert_eq(result->msg.flags, HTTP_F_CONN_KEEPALIVE);
}

Test(http_parse, absolute_form)
{
    const char *in = "GET http://example.com:8080/a?b HTTP/1.1\r\nHost: example.com:8080\r\n\r\n";
    assert_req_ok(in);
    cr_assert(span_is(in, result->msg.target, "http://example.com:8080/a?b"));
}

Test(http_parse, options_asterisk)
{
    const char *in = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_req_ok(in);
    cr_assert_eq(result->msg.method, HTTP_METHOD_OPTIONS);
    cr_assert(span_is(in, result->msg.target, "*"));
}

Test(http_parse, connect_authority_form)
{
    const char *in = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    assert_req_ok(in);
    cr_assert_eq(result->msg.method, HTTP_METHOD_CONNECT);
    cr_assert(span_is(in, result->msg.target, "example.com:443"));
    assert_req_ok("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n");
}

Test(http_parse, pipelined_requests)
{
    const char *in = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                     "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                     "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t len = strlen(in);
    cr_assert_eq(parse_limits(result, false, in, len, MAX_LINE, MAX_HEAD), 0);
    uint32_t first = result->msg.head_len;
    cr_assert_eq(first, strlen("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"));
    cr_assert(span_is(in, result->msg.target, "/1"));

    const char *second = in + first;
    cr_assert_eq(parse_limits(result, false, second, len - first, MAX_LINE, MAX_HEAD), 0);
    cr_assert(span_is(second, result->msg.target, "/2"));
    const char *third = second + result->msg.head_len + result->msg.content_length;
    cr_assert_eq(parse_limits(result, false, third, (size_t)(in + len - third), MAX_LINE, MAX_HEAD),
                 0);
    cr_assert(span_is(third, result->msg.target, "/3"));
    cr_assert_eq(third + result->msg.head_len, in + len);
}

Test(http_parse, leading_empty_lines)
{
    const char *in = "\r\n\n\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_req_ok(in);
    cr_assert(span_is(in, result->msg.method_span, "GET"));
    cr_assert_eq(result->msg.method_span.off, 6);
    assert_req_fails("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
                     -KEEL_EHTTP_BAD_REQUEST);
}

Test(http_parse, lf_only_lines)
{
    const char *in = "GET / HTTP/1.1\nHost: a\nX-A: b \n\n";
    assert_req_ok(in);
    cr_assert(header_is(in, 1, "X-A", "b"));
    assert_req_ok("GET / HTTP/1.1\r\nHost: a\n\r\n");
    assert_req_ok("GET / HTTP/1.1\nHost: a\r\n\n");
}

Test(http_parse, obs_text_and_tabs_in_values)
{
    const char *in = "GET / HTTP/1.1\r\nHost: a\r\nX-Utf8: caf\xc3\xa9 \xff\r\nX-Tab: a\tb\r\n\r\n";
    assert_req_ok(in);
    cr_assert(header_is(in, 1, "X-Utf8", "caf\xc3\xa9 \xff"));
    cr_assert(header_is(in, 2, "X-Tab", "a\tb"));
}

Test(http_parse, unknown_method_and_token_chars)
{
    const char *in = "PURGE /x HTTP/1.1\r\nHost: a\r\nX-!#$%&'*+-.^_`|~0z: v\r\n\r\n";
    assert_req_ok(in);
    cr_assert_eq(result->msg.method, HTTP_METHOD_OTHER);
    cr_assert(span_is(in, result->msg.method_span, "PURGE"));
    /* Methods are case-sensitive (RFC 9110 9.1). */
    assert_req_ok("get / HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert_eq(result->msg.method, HTTP_METHOD_OTHER);
}

Test(http_parse, connection_flags_across_fields)
{
    assert_req_ok("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
                  "Upgrade: websocket\r\nconnection: CLOSE\r\n\r\n");
    cr_assert_eq(result->msg.flags,
                 HTTP_F_HAS_HOST | HTTP_F_CONN_KEEPALIVE | HTTP_F_CONN_UPGRADE | HTTP_F_CONN_CLOSE);
    cr_assert_not(http_msg_keepalive(&result->msg));
    assert_req_ok("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed, x-close\r\n\r\n");
    cr_assert_eq(result->msg.flags & HTTP_F_CONN_CLOSE, 0);
}

Test(http_parse, expect_continue)
{
    assert_req_ok("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
    cr_assert_eq(result->msg.flags & HTTP_F_EXPECT_CONTINUE, HTTP_F_EXPECT_CONTINUE);
    assert_req_ok("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continuex\r\n\r\n");
    cr_assert_eq(result->msg.flags & HTTP_F_EXPECT_CONTINUE, 0);
    /* HTTP/1.0 servers ignore it (RFC 9110 10.1.1). */
    assert_req_ok("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n");
    cr_assert_eq(result->msg.flags & HTTP_F_EXPECT_CONTINUE, 0);
}

Test(http_parse, host_forms)
{
    const char *ok[] = {"a",           "example.com:80",        "[::1]",     "[::1]:8080",
                        "127.0.0.1:1", "xn--bcher-kva.example", "a_b-c~d%41"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char in[256];
        snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", ok[i]);
        assert_req_ok(in);
        cr_assert_eq(result->msg.host_index, 0);
    }
    /* An empty Host goes with a target that has no authority (RFC 9112 3.2). */
    assert_req_ok("GET / HTTP/1.1\r\nHost:\r\n\r\n");
    cr_assert_eq(result->msg.flags, HTTP_F_HAS_HOST);
}

Test(http_parse, max_headers_exactly)
{
    char in[8192];
    size_t n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < HTTP_MAX_HEADERS; i++) {
        n += (size_t)snprintf(in + n, sizeof(in) - n, "X-%d: %d\r\n", i, i);
    }
    n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n");
    assert_req_ok(in);
    cr_assert_eq(result->msg.n_headers, HTTP_MAX_HEADERS);
    /* One more field is too many. */
    snprintf(in + n - 2, sizeof(in) - n + 2, "X-Last: 1\r\n\r\n");
    assert_req_fails(in, -KEEL_EHTTP_HEAD_TOO_LARGE);
}

Test(http_parse, incomplete_heads_ask_for_more)
{
    const char *cases[] = {"",
                           "G",
                           "GET",
                           "GET /",
                           "GET / HTTP/1.",
                           "GET / HTTP/1.1\r",
                           "GET / HTTP/1.1\r\nHost: a",
                           "GET / HTTP/1.1\r\nHost: a\r\n",
                           "GET / HTTP/1.1\r\nHost: a\r\n\r",
                           "\r\n"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(parse_req(cases[i]), -EAGAIN, "[%s]", cases[i]);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Rejected request lines                                                                */

Test(http_parse, bad_request_lines)
{
    const char *cases[] = {
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",           /* double space */
        "GET /  HTTP/1.1\r\nHost: a\r\n\r\n",           /* double space */
        " GET / HTTP/1.1\r\nHost: a\r\n\r\n",           /* leading space */
        "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",           /* tab separator */
        "GET /\r\nHost: a\r\n\r\n",                     /* HTTP/0.9 */
        "GET / http/1.1\r\nHost: a\r\n\r\n",            /* lowercase version */
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",           /* trailing space */
        "GET / HTTP/1.1x\r\nHost: a\r\n\r\n",           /* junk after version */
        "GET / HTTP/11\r\nHost: a\r\n\r\n",             /* malformed version */
        "GET / HTXP/1.1\r\nHost: a\r\n\r\n",            /* not HTTP */
        "GET / HTTP/1.10\r\nHost: a\r\n\r\n",           /* three digits */
        "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",            /* method not a token */
        "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n",       /* CTL in target */
        "GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n",        /* non-ASCII in target */
        "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n",       /* DEL in target */
        "GET /\rx HTTP/1.1\r\nHost: a\r\n\r\n",         /* CR in target */
        "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",         /* fragment in target */
        "GET /#/../x HTTP/1.1\r\nHost: a\r\n\r\n",      /* fragment hiding a path */
        "GET /a?q#f HTTP/1.1\r\nHost: a\r\n\r\n",       /* fragment after a query */
        "GET http://a/#x HTTP/1.1\r\nHost: a\r\n\r\n",  /* fragment in absolute form */
        "OPTIONS *# HTTP/1.1\r\nHost: a\r\n\r\n",       /* fragment after asterisk */
        "GET / HTTP/1.1\rHost: a\r\n\r\n",              /* bare CR ending the line */
        "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",          /* bare CR before the line */
        "GET * HTTP/1.1\r\nHost: a\r\n\r\n",            /* asterisk-form outside OPTIONS */
        "GET foo HTTP/1.1\r\nHost: a\r\n\r\n",          /* not origin/absolute form */
        "GET 1http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",   /* bad scheme */
        "CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n",       /* CONNECT needs host:port */
        "CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n",        /* CONNECT without port */
        "CONNECT a:b HTTP/1.1\r\nHost: a\r\n\r\n",      /* non-numeric port */
        "CONNECT u@a:1 HTTP/1.1\r\nHost: a\r\n\r\n",    /* userinfo */
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* TLS ClientHello */
        "GET / HTTP/1.1\x00\r\nHost: a\r\n\r\n",        /* NUL */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* strlen stops at the NUL of the last case, so give lengths explicitly. */
        size_t len = strlen(cases[i]);
        if (i == sizeof(cases) / sizeof(cases[0]) - 1) {
            len = sizeof("GET / HTTP/1.1\x00\r\nHost: a\r\n\r\n") - 1;
        }
        int rc = parse_limits(result, false, cases[i], len, MAX_LINE, MAX_HEAD);
        cr_assert_eq(rc, -KEEL_EHTTP_BAD_REQUEST, "case %zu: rc %d", i, rc);
        cr_assert_eq(http_parse_error_status(rc), 400);
    }
}

/* Issue 10: '#' was accepted and forwarded raw while routing stopped at it, so keel and the
 * server saw different paths. A fragment is never part of a request target (RFC 9112 3.2). */
Test(http_parse, regression_fragment_in_target_is_400)
{
    assert_req_fails("GET /public#/../admin HTTP/1.1\r\nHost: a\r\n\r\n", -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_str_eq(result->p.error, "fragment (#) in request target");
    /* An encoded %23 in the target and '#' in a field value stay accepted. */
    assert_req_ok("GET /a%23b HTTP/1.1\r\nHost: a\r\nX-Tag: #1\r\n\r\n");
}

Test(http_parse, unsupported_versions)
{
    const char *cases[] = {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "GET / HTTP/0.9\r\n\r\n",
                           "GET / HTTP/1.2\r\nHost: a\r\n\r\n", "GET / HTTP/3.1\r\n\r\n"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = parse_req(cases[i]);
        cr_assert_eq(rc, -KEEL_EHTTP_VERSION, "[%s] rc %d", cases[i], rc);
        cr_assert_eq(http_parse_error_status(rc), 505);
    }
    /* An odd version followed by garbage is malformed first. */
    assert_req_fails("GET / HTTP/2.0 x\r\n\r\n", -KEEL_EHTTP_BAD_REQUEST);
}

/* ------------------------------------------------------------------------------------ */
/* Rejected fields                                                                       */

Test(http_parse, bad_field_lines)
{
    const char *cases[] = {
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",                /* space before colon */
        "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n",               /* tab before colon */
        "GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n",          /* empty name */
        "GET / HTTP/1.1\r\nX(Y: z\r\nHost: a\r\n\r\n",       /* separator in name */
        "GET / HTTP/1.1\r\nX\xc3\xa9: z\r\nHost: a\r\n\r\n", /* non-ASCII name */
        "GET / HTTP/1.1\r\nHost a\r\n\r\n",                  /* no colon */
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n",    /* CTL in value */
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fz\r\n\r\n",    /* DEL in value */
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\rz\r\n\r\n",      /* bare CR in value */
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n",       /* CR CR LF */
        "GET / HTTP/1.1\r\nHost: a\r\nX\r: a\r\n\r\n",       /* CR in name */
        "GET / HTTP/1.1\r\nHost: a\r\n\rX\r\n",              /* bare CR at head end */
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",   /* obs-fold */
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n",  /* obs-fold with tab */
        "GET / HTTP/1.1\r\n Host: a\r\n\r\n",                /* space after start line */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_req_fails(cases[i], -KEEL_EHTTP_BAD_REQUEST);
    }
}

Test(http_parse, nul_in_value)
{
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
    int rc = parse_limits(result, false, in, sizeof(in) - 1, MAX_LINE, MAX_HEAD);
    cr_assert_eq(rc, -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_str_eq(result->p.error, "nul in field value");
}

Test(http_parse, bad_content_length)
{
    const char *values[] = {"abc",
                            "-1",
                            "+5",
                            "",
                            " ",
                            "5 5",
                            "0x10",
                            "5,,5",
                            "5,",
                            ",5",
                            "1.0",
                            "5, 6",
                            "99999999999999999999",
                            "9223372036854775808"};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char in[256];
        snprintf(in, sizeof(in), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %s\r\n\r\n",
                 values[i]);
        assert_req_fails(in, -KEEL_EHTTP_BAD_REQUEST);
    }
    assert_req_fails("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                     -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_str_eq(result->p.error, "conflicting content-length");
}

Test(http_parse, content_length_with_transfer_encoding)
{
    assert_req_fails("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n",
                     -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_str_eq(result->p.error, "content-length with transfer-encoding");
    assert_req_fails("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                     "Content-Length: 5\r\n\r\n",
                     -KEEL_EHTTP_BAD_REQUEST);
    /* Even when the coding itself would be 501. */
    assert_req_fails("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n"
                     "Content-Length: 5\r\n\r\n",
                     -KEEL_EHTTP_BAD_REQUEST);
}

Test(http_parse, transfer_encoding_in_http10)
{
    assert_req_fails("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                     -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_str_eq(result->p.error, "transfer-encoding in http/1.0 request");
}

Test(http_parse, transfer_encoding_lists)
{
    const char *bad[] = {"chunked, chunked", "chunked,chunked", "chunked, gzip",  "",
                         ",chunked",         "chunked,",        "chunked, , gzip"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char in[256];
        snprintf(in, sizeof(in), "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: %s\r\n\r\n",
                 bad[i]);
        assert_req_fails(in, -KEEL_EHTTP_BAD_REQUEST);
    }
    assert_req_fails("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n",
                     -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_str_eq(result->p.error, "chunked applied more than once");

    const char *unsupported[] = {"gzip, chunked", "x-foo", "gzip", "chunked;q=1", "chunkedx"};
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        char in[256];
        snprintf(in, sizeof(in), "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: %s\r\n\r\n",
                 unsupported[i]);
        int rc = parse_req(in);
        cr_assert_eq(rc, -KEEL_EHTTP_NOT_IMPLEMENTED, "[%s] rc %d", unsupported[i], rc);
        cr_assert_eq(http_parse_error_status(rc), 501);
    }
    assert_req_fails("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n",
                     -KEEL_EHTTP_NOT_IMPLEMENTED);
}

Test(http_parse, host_rules)
{
    assert_req_fails("GET / HTTP/1.1\r\n\r\n", -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_str_eq(result->p.error, "missing host");
    assert_req_fails("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_str_eq(result->p.error, "multiple host fields");
    assert_req_fails("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", -KEEL_EHTTP_BAD_REQUEST);
    const char *bad[] = {"a b",    "a/b",      "a@b",  "a:b",  "a:",       ":80", "[::1", "[]",
                         "[::1]x", "a:123456", "a\tb", "a\"b", "\xc3\xa9", "a?b", "a#b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char in[256];
        snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", bad[i]);
        assert_req_fails(in, -KEEL_EHTTP_BAD_REQUEST);
        cr_assert_str_eq(result->p.error, "invalid host", "[%s]", bad[i]);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Limits, detected as soon as the limit is passed                                        */

Test(http_parse, request_line_limit)
{
    char in[200];
    /* "GET /" + 'a' * 50 + " HTTP/1.1" is 64 bytes before the CRLF. */
    memset(in, 0, sizeof(in));
    memcpy(in, "GET /", 5);
    memset(in + 5, 'a', 50);
    memcpy(in + 55, " HTTP/1.1\r\nHost: a\r\n\r\n", 22);
    size_t len = strlen(in);
    cr_assert_eq(parse_limits(result, false, in, len, 64, 1000), 0);
    cr_assert_eq(parse_limits(result, false, in, len, 63, 1000), -KEEL_EHTTP_URI_TOO_LONG);
    cr_assert_str_eq(result->p.error, "request line too long");
    cr_assert_eq(http_parse_error_status(-KEEL_EHTTP_URI_TOO_LONG), 414);
    /* Early: fails as soon as byte max_line + 1 of the line arrives, not at its end. */
    cr_assert_eq(parse_limits(result, false, in, 20, 19, 1000), -KEEL_EHTTP_URI_TOO_LONG);
    cr_assert_eq(parse_limits(result, false, in, 19, 19, 1000), -EAGAIN);
    cr_assert_eq(parse_limits(result, false, in, 20, 20, 1000), -EAGAIN);
    /* A bare LF terminator at the limit is fine too. */
    const char *lf = "GET /aaaaa HTTP/1.1\nHost: a\n\n";
    cr_assert_eq(parse_limits(result, false, lf, strlen(lf), 19, 1000), 0);
    cr_assert_eq(parse_limits(result, false, lf, strlen(lf), 18, 1000), -KEEL_EHTTP_URI_TOO_LONG);
    /* Leading empty lines do not count against the line. */
    char in2[300];
    snprintf(in2, sizeof(in2), "\r\n\r\n%s", in);
    cr_assert_eq(parse_limits(result, false, in2, strlen(in2), 64, 1000), 0);
    cr_assert_eq(parse_limits(result, false, in2, strlen(in2), 63, 1000), -KEEL_EHTTP_URI_TOO_LONG);
}

Test(http_parse, head_limit)
{
    const char *in = "GET / HTTP/1.1\r\nHost: a\r\nX-Long: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    size_t len = strlen(in);
    cr_assert_eq(parse_limits(result, false, in, len, 100, (uint32_t)len), 0);
    cr_assert_eq(parse_limits(result, false, in, len, 100, (uint32_t)len - 1),
                 -KEEL_EHTTP_HEAD_TOO_LARGE);
    cr_assert_eq(http_parse_error_status(-KEEL_EHTTP_HEAD_TOO_LARGE), 431);
    /* Early: 30 bytes of an unfinished head over a 29-byte limit. */
    cr_assert_eq(parse_limits(result, false, in, 30, 100, 29), -KEEL_EHTTP_HEAD_TOO_LARGE);
    cr_assert_eq(parse_limits(result, false, in, 29, 100, 29), -KEEL_EHTTP_HEAD_TOO_LARGE);
    cr_assert_eq(parse_limits(result, false, in, 28, 100, 29), -EAGAIN);
    /* A request line beyond a head limit smaller than the line limit: 431. */
    cr_assert_eq(parse_limits(result, false, in, len, 1000, 10), -KEEL_EHTTP_HEAD_TOO_LARGE);
}

Test(http_parse, default_limits)
{
    http_parser_init(&result->p, false, 0, 0);
    cr_assert_eq(result->p.max_line, HTTP_DEFAULT_MAX_LINE);
    cr_assert_eq(result->p.max_head, HTTP_DEFAULT_MAX_HEAD);
}

/* ------------------------------------------------------------------------------------ */
/* Responses                                                                              */

Test(http_parse, response_with_length)
{
    const char *in = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: x\r\n\r\nhi";
    cr_assert_eq(parse_resp(in), 0);
    cr_assert_eq(result->msg.status, 200);
    cr_assert(span_is(in, result->msg.reason, "OK"));
    cr_assert_eq(result->msg.head_len, strlen(in) - 2);
    cr_assert_eq(http_response_body_kind(&result->msg, HTTP_METHOD_GET), HTTP_BODY_LENGTH);
    cr_assert_eq(http_response_body_kind(&result->msg, HTTP_METHOD_HEAD), HTTP_BODY_NONE);
    cr_assert(http_msg_keepalive(&result->msg));
}

Test(http_parse, response_reason_forms)
{
    const char *in = "HTTP/1.1 200\r\n\r\n";
    cr_assert_eq(parse_resp(in), 0);
    cr_assert_eq(result->msg.reason.len, 0);
    cr_assert_eq(parse_resp("HTTP/1.1 200 \r\n\r\n"), 0);
    cr_assert_eq(result->msg.reason.len, 0);
    in = "HTTP/1.1 404 Not \tFound \xe9\r\n\r\n";
    cr_assert_eq(parse_resp(in), 0);
    cr_assert(span_is(in, result->msg.reason, "Not \tFound \xe9"));
    cr_assert_eq(parse_resp("HTTP/1.1 200 OK\n\n"), 0);
}

Test(http_parse, response_body_kinds)
{
    cr_assert_eq(parse_resp("HTTP/1.0 200 OK\r\n\r\n"), 0);
    cr_assert_eq(http_response_body_kind(&result->msg, HTTP_METHOD_GET), HTTP_BODY_UNTIL_CLOSE);
    cr_assert_not(http_msg_keepalive(&result->msg));

    const int none[] = {100, 101, 103, 204, 304};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        char in[64];
        snprintf(in, sizeof(in), "HTTP/1.1 %d X\r\nContent-Length: 5\r\n\r\n", none[i]);
        cr_assert_eq(parse_resp(in), 0);
        cr_assert_eq(http_response_body_kind(&result->msg, HTTP_METHOD_GET), HTTP_BODY_NONE);
    }
    cr_assert_eq(parse_resp("HTTP/1.1 200 Connection established\r\n\r\n"), 0);
    cr_assert_eq(http_response_body_kind(&result->msg, HTTP_METHOD_CONNECT), HTTP_BODY_NONE);
    cr_assert_eq(parse_resp("HTTP/1.1 407 Auth\r\nContent-Length: 0\r\n\r\n"), 0);
    cr_assert_eq(http_response_body_kind(&result->msg, HTTP_METHOD_CONNECT), HTTP_BODY_LENGTH);

    cr_assert_eq(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), 0);
    cr_assert_eq(http_response_body_kind(&result->msg, HTTP_METHOD_GET), HTTP_BODY_CHUNKED);
    cr_assert_eq(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 0);
    cr_assert_eq(http_response_body_kind(&result->msg, HTTP_METHOD_GET), HTTP_BODY_CHUNKED);
    cr_assert_eq(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), 0);
    cr_assert_eq(http_response_body_kind(&result->msg, HTTP_METHOD_GET), HTTP_BODY_UNTIL_CLOSE);
    cr_assert_eq(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 0);
    cr_assert_eq(http_response_body_kind(&result->msg, HTTP_METHOD_GET), HTTP_BODY_UNTIL_CLOSE);
    cr_assert_eq(parse_resp("HTTP/1.1 200 OK\r\n\r\n"), 0);
    cr_assert_eq(http_response_body_kind(&result->msg, HTTP_METHOD_GET), HTTP_BODY_UNTIL_CLOSE);
}

Test(http_parse, response_te_wins_over_cl)
{
    cr_assert_eq(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n"),
                 0);
    cr_assert_eq(result->msg.flags & HTTP_F_HAS_CL, 0);
    cr_assert_eq(result->msg.flags & (HTTP_F_CHUNKED | HTTP_F_FRAMING_SUSPECT),
                 HTTP_F_CHUNKED | HTTP_F_FRAMING_SUSPECT);
    cr_assert_eq(http_response_body_kind(&result->msg, HTTP_METHOD_GET), HTTP_BODY_CHUNKED);
    cr_assert_not(http_msg_keepalive(&result->msg));
}

Test(http_parse, response_connection_and_host)
{
    /* A response Host field has no meaning and is not checked. */
    cr_assert_eq(parse_resp("HTTP/1.1 200 OK\r\nHost: a b\r\nHost: c\r\n"
                            "Connection: close\r\nContent-Length: 0\r\n\r\n"),
                 0);
    cr_assert_eq(result->msg.host_index, -1);
    cr_assert_not(http_msg_keepalive(&result->msg));
    cr_assert_eq(parse_resp("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
                            "Content-Length: 0\r\n\r\n"),
                 0);
    cr_assert(http_msg_keepalive(&result->msg));
}

Test(http_parse, bad_responses)
{
    const char *cases[] = {
        "HTTP/1.1 099 X\r\n\r\n",
        "HTTP/1.1 600 X\r\n\r\n",
        "HTTP/1.1 20 X\r\n\r\n",
        "HTTP/1.1 2x0 X\r\n\r\n",
        "HTTP/1.1 2000 X\r\n\r\n",
        "HTTP/1.1  200 X\r\n\r\n",
        "HTTP/2.0 200 X\r\n\r\n",
        "HTTP/1.2 200 X\r\n\r\n",
        "http/1.1 200 X\r\n\r\n",
        "HTTP/1.1\r\n\r\n",
        "\r\nHTTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 O\x01K\r\n\r\n",
        "HTTP/1.1 200 OK\rX\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: ,chunked\r\n\r\n",
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: \x7f\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_resp_fails(cases[i]);
    }
    cr_assert_eq(http_parse_error_status(-KEEL_EHTTP_BAD_RESPONSE), 502);
}

Test(http_parse, response_limits)
{
    const char *in = "HTTP/1.1 200 OK\r\nServer: xxxxxxxxxxxxxxxxxxxxxx\r\n\r\n";
    cr_assert_eq(parse_limits(result, true, in, strlen(in), 100, 20), -KEEL_EHTTP_BAD_RESPONSE);
    cr_assert_str_eq(result->p.error, "header section too large");
    cr_assert_eq(parse_limits(result, true, in, strlen(in), 10, 100), -KEEL_EHTTP_BAD_RESPONSE);
    cr_assert_str_eq(result->p.error, "status line too long");
    /* "HTTP/1.1 200 OK" is 15 bytes: exactly at the limit, with CRLF or LF. */
    cr_assert_eq(parse_limits(result, true, in, strlen(in), 15, 100), 0);
    cr_assert_eq(parse_limits(result, true, in, strlen(in), 14, 100), -KEEL_EHTTP_BAD_RESPONSE);
    cr_assert_eq(parse_limits(result, true, "HTTP/1.1 200 OK\n\n", 17, 15, 100), 0);
    cr_assert_eq(parse_limits(result, true, "HTTP/1.1 200\r\n\r\n", 16, 12, 100), 0);
}

/* ------------------------------------------------------------------------------------ */
/* Helpers                                                                                */

Test(http_parse, list_has_token)
{
    cr_assert(http_list_has_token("close", 5, "close", 5));
    cr_assert(http_list_has_token(" a ,  , Close\t", 14, "close", 5));
    cr_assert(http_list_has_token(",,keep-alive,", 13, "keep-alive", 10));
    cr_assert_not(http_list_has_token("closed", 6, "close", 5));
    cr_assert_not(http_list_has_token("", 0, "close", 5));
    cr_assert_not(http_list_has_token("x-close", 7, "close", 5));
}

Test(http_parse, span_eq)
{
    const char *buf = "xxContent-Typeyy";
    struct http_span s = {2, 12};
    cr_assert(http_span_eq(buf, s, "content-type", 12));
    cr_assert(http_span_eq(buf, s, "CONTENT-TYPE", 12));
    cr_assert_not(http_span_eq(buf, s, "content-typ", 11));
    cr_assert_not(http_span_eq(buf, s, "content-typx", 12));
}

Test(http_parse, methods)
{
    static const char *const names[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                        "OPTIONS", "CONNECT", "TRACE", "PATCH"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        enum http_method m = http_method_from(names[i], strlen(names[i]));
        cr_assert_eq(m, (enum http_method)(i + 1));
        cr_assert_str_eq(http_method_name(m), names[i]);
    }
    cr_assert_eq(http_method_from("GETX", 4), HTTP_METHOD_OTHER);
    cr_assert_eq(http_method_from("GE", 2), HTTP_METHOD_OTHER);
    cr_assert_eq(http_method_from("get", 3), HTTP_METHOD_OTHER);
    cr_assert_str_eq(http_method_name(HTTP_METHOD_OTHER), "OTHER");
    cr_assert_str_eq(http_method_name((enum http_method)99), "OTHER");

    cr_assert(http_method_is_idempotent(HTTP_METHOD_GET));
    cr_assert(http_method_is_idempotent(HTTP_METHOD_HEAD));
    cr_assert(http_method_is_idempotent(HTTP_METHOD_PUT));
    cr_assert(http_method_is_idempotent(HTTP_METHOD_DELETE));
    cr_assert(http_method_is_idempotent(HTTP_METHOD_OPTIONS));
    cr_assert(http_method_is_idempotent(HTTP_METHOD_TRACE));
    cr_assert_not(http_method_is_idempotent(HTTP_METHOD_POST));
    cr_assert_not(http_method_is_idempotent(HTTP_METHOD_PATCH));
    cr_assert_not(http_method_is_idempotent(HTTP_METHOD_CONNECT));
    cr_assert_not(http_method_is_idempotent(HTTP_METHOD_OTHER));
}

Test(http_parse, status_reasons)
{
    cr_assert_str_eq(http_status_reason(200), "OK");
    cr_assert_str_eq(http_status_reason(404), "Not Found");
    cr_assert_str_eq(http_status_reason(431), "Request Header Fields Too Large");
    cr_assert_str_eq(http_status_reason(502), "Bad Gateway");
    cr_assert_str_eq(http_status_reason(599), "Unknown");
    cr_assert_str_eq(http_status_reason(-1), "Unknown");
}

Test(http_parse, error_status_default)
{
    cr_assert_eq(http_parse_error_status(-EINVAL), 400);
    cr_assert_eq(http_parse_error_status(-KEEL_EHTTP_VERSION), 505);
}
