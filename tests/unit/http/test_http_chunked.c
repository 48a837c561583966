/* SPDX-License-Identifier: MIT */
/* Unit tests for src/http/http_chunked.c: chunked framing, extensions, trailers, strict
 * CRLF, bounds, and identical results however the body is split. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_chunked.c"

/* Collects the de-chunked data. */
struct sink {
    char data[8192];
    size_t len;
    size_t calls;
};

static void on_data(void *ctx, const char *data, size_t len)
{
    struct sink *s = ctx;
    cr_assert_leq(s->len + len, sizeof(s->data));
    memcpy(s->data + s->len, data, len);
    s->len += len;
    s->calls++;
}

struct scan_result {
    int rc;
    size_t consumed; /* total bytes consumed over all calls */
    const char *error;
};

/* Scan in[0, len) in pieces of at most step bytes, each a fresh heap copy. */
static struct scan_result scan_steps(const char *in, size_t len, size_t step, struct sink *sink)
{
    struct http_chunked c;
    struct scan_result r = {-EAGAIN, 0, NULL};
    size_t off = 0;

    http_chunked_init(&c);
    memset(sink, 0, sizeof(*sink));
    while (off < len && r.rc == -EAGAIN) {
        size_t n = len - off < step ? len - off : step;
        char *copy = malloc(n);
        cr_assert_not_null(copy);
        memcpy(copy, in + off, n);
        size_t consumed = 0;
        r.rc = http_chunked_scan(&c, copy, n, &consumed, on_data, sink);
        free(copy);
        if (r.rc == -EAGAIN) {
            cr_assert_eq(consumed, n);
        }
        r.consumed = off + consumed;
        off += n;
    }
    r.error = c.error;
    return r;
}

/* Scan at once, byte by byte, and split in two at every position: all must agree. */
static struct scan_result scan_all_ways(const char *in, size_t len, struct sink *sink)
{
    struct scan_result once = scan_steps(in, len, len == 0 ? 1 : len, sink);
    struct sink *other = malloc(sizeof(*other));
    cr_assert_not_null(other);

    struct scan_result bytes = scan_steps(in, len, 1, other);
    cr_assert_eq(bytes.rc, once.rc, "byte by byte %d vs at once %d", bytes.rc, once.rc);
    cr_assert_eq(bytes.consumed, once.consumed);
    cr_assert_eq(other->len, sink->len);
    cr_assert_eq(memcmp(other->data, sink->data, sink->len), 0);

    for (size_t cut = 1; cut < len; cut++) {
        struct http_chunked c;
        size_t c1 = 0;
        size_t c2 = 0;
        memset(other, 0, sizeof(*other));
        http_chunked_init(&c);
        int rc = http_chunked_scan(&c, in, cut, &c1, on_data, other);
        if (rc == -EAGAIN) {
            rc = http_chunked_scan(&c, in + cut, len - cut, &c2, on_data, other);
            c2 += cut;
        } else {
            c2 = c1;
        }
        cr_assert_eq(rc, once.rc, "cut at %zu: %d vs %d", cut, rc, once.rc);
        cr_assert_eq(c2, once.consumed, "cut at %zu", cut);
        cr_assert_eq(other->len, sink->len);
        cr_assert_eq(memcmp(other->data, sink->data, sink->len), 0);
    }
    free(other);
    return once;
}

static struct sink *sink;

static void setup(void)
{
    sink = calloc(1, sizeof(*sink));
    cr_assert_not_null(sink);
}

static void teardown(void)
{
    free(sink);
}

TestSuite(http_chunked, .init = setup, .fini = teardown);

static void assert_body(const char *in, const char *data)
{
    size_t len = strlen(in);
    struct scan_result r = scan_all_ways(in, len, sink);
    cr_assert_eq(r.rc, 0, "rc %d (%s) for [%s]", r.rc, r.error != NULL ? r.error : "-", in);
    cr_assert_eq(r.consumed, len);
    cr_assert_eq(sink->len, strlen(data));
    cr_assert_eq(memcmp(sink->data, data, sink->len), 0);
}

static void assert_bad(const char *in, size_t len)
{
    struct scan_result r = scan_all_ways(in, len, sink);
    cr_assert_eq(r.rc, -KEEL_EHTTP_BAD_REQUEST, "rc %d for [%s]", r.rc, in);
    cr_assert_not_null(r.error);
}

Test(http_chunked, simple)
{
    assert_body("5\r\nhello\r\n0\r\n\r\n", "hello");
    cr_assert_eq(sink->calls, 1);
}

Test(http_chunked, empty_body)
{
    assert_body("0\r\n\r\n", "");
    assert_body("000\r\n\r\n", "");
}

Test(http_chunked, multiple_chunks_and_hex)
{
    assert_body("3\r\nabc\r\nA\r\n0123456789\r\na\r\nABCDEFGHIJ\r\n1\r\n!\r\n0\r\n\r\n",
                "abc0123456789ABCDEFGHIJ!");
    assert_body("0000000000000003\r\nxyz\r\n0\r\n\r\n", "xyz"); /* 16 digits */
}

Test(http_chunked, data_may_hold_anything)
{
    static const char in[] = "6\r\n\r\n\0\n\r0\r\n0\r\n\r\n";
    struct scan_result r = scan_all_ways(in, sizeof(in) - 1, sink);
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(sink->len, 6);
    cr_assert_eq(memcmp(sink->data, "\r\n\0\n\r0", 6), 0);
}

Test(http_chunked, extensions)
{
    assert_body("5;name\r\nhello\r\n0\r\n\r\n", "hello");
    assert_body("5;a=b;c=d\r\nhello\r\n0;last\r\n\r\n", "hello");
    assert_body("5 ; a = b ;c\r\nhello\r\n0\r\n\r\n", "hello");
    assert_body("5;a=\"quoted ; \\\" value\"\r\nhello\r\n0\r\n\r\n", "hello");
    assert_body("5;a=\"\"\r\nhello\r\n0\r\n\r\n", "hello");
    assert_body("5;a=\"x\" ;b\r\nhello\r\n0\r\n\r\n", "hello");
}

Test(http_chunked, trailers)
{
    assert_body("5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Empty:\r\nX-Ows:  v \t\r\n\r\n", "hello");
}

Test(http_chunked, stops_at_end_of_body)
{
    const char *in = "2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    struct scan_result r = scan_all_ways(in, strlen(in), sink);
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(r.consumed, strlen("2\r\nhi\r\n0\r\n\r\n"));
}

Test(http_chunked, incomplete)
{
    const char *cases[] = {"5",
                           "5\r",
                           "5\r\nhel",
                           "5\r\nhello",
                           "5\r\nhello\r",
                           "5\r\nhello\r\n0\r\n",
                           "0\r\nX: y\r\n",
                           "0\r\n\r",
                           "ffffffffffffffff\r\nabc",
                           "5;a=\"x"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct scan_result r = scan_all_ways(cases[i], strlen(cases[i]), sink);
        cr_assert_eq(r.rc, -EAGAIN, "[%s] rc %d", cases[i], r.rc);
        cr_assert_eq(r.consumed, strlen(cases[i]));
    }
}

Test(http_chunked, bad_framing)
{
    const char *cases[] = {
        "g\r\nx\r\n0\r\n\r\n",                 /* bad hex */
        "\r\n0\r\n\r\n",                       /* empty size */
        "-5\r\nhello\r\n0\r\n\r\n",            /* sign */
        "0x5\r\nhello\r\n0\r\n\r\n",           /* 0x prefix */
        " 5\r\nhello\r\n0\r\n\r\n",            /* leading space */
        "5 \r\nhello\r\n0\r\n\r\n",            /* trailing space */
        "5\nhello\r\n0\r\n\r\n",               /* bare LF after size */
        "5\rhello\r\n0\r\n\r\n",               /* bare CR after size */
        "5\r\nhelloX\r\n0\r\n\r\n",            /* data longer than size */
        "5\r\nhello\n0\r\n\r\n",               /* bare LF after data */
        "5\r\nhello\rX0\r\n\r\n",              /* CR without LF after data */
        "5\r\nhello0\r\n\r\n",                 /* no CRLF after data */
        "00000000000000001\r\nx\r\n0\r\n\r\n", /* 17 digits */
        "10000000000000000\r\n",               /* overflow */
        "5;\r\nhello\r\n0\r\n\r\n",            /* empty extension */
        "5;=b\r\nhello\r\n0\r\n\r\n",          /* empty extension name */
        "5;a=\r\nhello\r\n0\r\n\r\n",          /* empty extension value */
        "5;a b\r\nhello\r\n0\r\n\r\n",         /* space inside */
        "5;a \r\nhello\r\n0\r\n\r\n",          /* BWS before CR */
        "5;a=\"x\r\n\"\r\nhello\r\n0\r\n\r\n", /* CR in quoted string */
        "5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n",  /* CTL in quoted string */
        "5;a=b=c\r\nhello\r\n0\r\n\r\n",       /* two '=' */
        "5;a\nb\r\nhello\r\n0\r\n\r\n",        /* LF in extension */
        "0\r\n\n",                             /* bare LF final line */
        "0\r\n\r\r\n",                         /* CR CR */
        "0\r\nX: y\n\r\n",                     /* bare LF in trailer */
        "0\r\nX: y\rz\r\n\r\n",                /* bare CR in trailer */
        "0\r\nX : y\r\n\r\n",                  /* space before colon */
        "0\r\n: y\r\n\r\n",                    /* empty trailer name */
        "0\r\nX\r\n\r\n",                      /* no colon */
        "0\r\nX: y\r\n z\r\n\r\n",             /* obs-fold */
        "0\r\nX: a\x01\r\n\r\n",               /* CTL in trailer value */
        "0\r\nX: a\x7f\r\n\r\n",               /* DEL in trailer value */
        "0\r\nX(: a\r\n\r\n",                  /* separator in name */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_bad(cases[i], strlen(cases[i]));
    }
}

Test(http_chunked, nul_in_trailer)
{
    static const char in[] = "0\r\nX: a\0\r\n\r\n";
    assert_bad(in, sizeof(in) - 1);
}

Test(http_chunked, huge_extension)
{
    size_t len = HTTP_CHUNK_MAX_LINE + 64;
    char *in = malloc(len + 32);
    cr_assert_not_null(in);
    /* "1;" + 'a' * k: the size line is k + 2 bytes before its CRLF. */
    memcpy(in, "1;", 2);
    memset(in + 2, 'a', HTTP_CHUNK_MAX_LINE - 2);
    memcpy(in + HTTP_CHUNK_MAX_LINE, "\r\nx\r\n0\r\n\r\n", 11);
    struct scan_result r = scan_steps(in, HTTP_CHUNK_MAX_LINE + 11, 4096, sink);
    cr_assert_eq(r.rc, 0, "rc %d (%s)", r.rc, r.error);
    /* One byte more is too long. */
    memset(in + 2, 'a', HTTP_CHUNK_MAX_LINE - 1);
    memcpy(in + HTTP_CHUNK_MAX_LINE + 1, "\r\nx\r\n0\r\n\r\n", 11);
    r = scan_steps(in, HTTP_CHUNK_MAX_LINE + 12, 4096, sink);
    cr_assert_eq(r.rc, -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_str_eq(r.error, "chunk size line too long");
    cr_assert_eq(r.consumed, HTTP_CHUNK_MAX_LINE);
    /* And it fails as soon as that byte arrives, without waiting for the line end. */
    memset(in + 2, 'a', len - 2);
    r = scan_steps(in, len, 1, sink);
    cr_assert_eq(r.rc, -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_eq(r.consumed, HTTP_CHUNK_MAX_LINE);
    free(in);
}

Test(http_chunked, huge_trailer)
{
    size_t len = HTTP_CHUNK_MAX_TRAILER + 100;
    char *in = malloc(len);
    cr_assert_not_null(in);
    memcpy(in, "0\r\n", 3);
    size_t off = 3;
    while (off + 12 < len) {
        memcpy(in + off, "X: 12345678\r\n", 13);
        off += 13;
    }
    struct scan_result r = scan_steps(in, off, 512, sink);
    cr_assert_eq(r.rc, -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_str_eq(r.error, "trailer section too large");
    free(in);
}

Test(http_chunked, large_chunk_fast_path)
{
    size_t n = 6000;
    char *in = malloc(n + 32);
    cr_assert_not_null(in);
    int h = snprintf(in, 32, "%zx\r\n", n);
    memset(in + h, 'z', n);
    memcpy(in + h + n, "\r\n0\r\n\r\n", 7);
    struct http_chunked c;
    size_t consumed = 0;
    http_chunked_init(&c);
    memset(sink, 0, sizeof(*sink));
    int rc = http_chunked_scan(&c, in, (size_t)h + n + 7, &consumed, on_data, sink);
    cr_assert_eq(rc, 0);
    cr_assert_eq(consumed, (size_t)h + n + 7);
    cr_assert_eq(sink->calls, 1);
    cr_assert_eq(sink->len, n);
    free(in);
}

Test(http_chunked, null_callback_and_repeat_calls)
{
    struct http_chunked c;
    size_t consumed = 0;
    http_chunked_init(&c);
    cr_assert_eq(http_chunked_scan(&c, "1\r\nx\r\n0\r\n\r\n", 11, &consumed, NULL, NULL), 0);
    cr_assert_eq(consumed, 11);
    cr_assert_eq(http_chunked_scan(&c, "1\r\n", 3, &consumed, NULL, NULL), 0);
    cr_assert_eq(consumed, 0);

    http_chunked_init(&c);
    cr_assert_eq(http_chunked_scan(&c, "1\nx", 3, &consumed, NULL, NULL), -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_eq(consumed, 1);
    cr_assert_str_eq(c.error, "bare lf in chunk size line");
    cr_assert_eq(http_chunked_scan(&c, "0\r\n\r\n", 5, &consumed, NULL, NULL),
                 -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_eq(consumed, 0);
}
