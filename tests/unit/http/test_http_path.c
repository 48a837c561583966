/* SPDX-License-Identifier: MIT */
/* Unit tests for src/http/http_path.c: the root guard, Range, dates, validators, codings. */
#include <criterion/criterion.h>

#include "http/http_path.c"

static int norm(const char *target, char *out)
{
    size_t n;
    return http_path_normalize(target, strlen(target), out, 256, &n);
}

Test(path, clean_paths)
{
    char out[256];
    struct {
        const char *in, *want;
    } cases[] = {
        {"/", "/"},
        {"/a/b.html", "/a/b.html"},
        {"/a//b/./c/", "/a/b/c/"},
        {"/a/%62c?x=1/..", "/a/bc"},
        {"/dir/.", "/dir/"},
        {"http://host:80/x/y?q", "/x/y"},
        {"/%7Euser/", "/~user/"},
        {"/a..b/.c", "/a..b/.c"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(norm(cases[i].in, out), 0, "%s", cases[i].in);
        cr_assert_str_eq(out, cases[i].want, "%s", cases[i].in);
    }
}

Test(path, escapes_are_refused)
{
    char out[256];
    cr_assert_eq(norm("/../etc/passwd", out), -EACCES);
    cr_assert_eq(norm("/a/../../x", out), -EACCES);
    cr_assert_eq(norm("/%2e%2e/etc/passwd", out), -EACCES);
    cr_assert_eq(norm("/%2E%2e/", out), -EACCES);
    cr_assert_eq(norm("/a/..", out), -EACCES);
    cr_assert_eq(norm("/a%2f..%2fb", out), -ENOENT);
    cr_assert_eq(norm("/a%5c..%5cb", out), -ENOENT);
    cr_assert_eq(norm("/a\\b", out), -ENOENT);
    cr_assert_eq(norm("/a%00.html", out), -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_eq(norm("/a%zz", out), -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_eq(norm("/a%4", out), -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_eq(norm("*", out), -KEEL_EHTTP_BAD_REQUEST);
}

/* Regression (found by fuzz_path): a raw NUL byte in the target was copied into the path. */
Test(path, regression_raw_nul_byte)
{
    char out[256];
    size_t n;
    cr_assert_eq(http_path_normalize("/a\0b", 4, out, sizeof(out), &n), -KEEL_EHTTP_BAD_REQUEST);
}

Test(path, too_long)
{
    char big[600], out[256];
    memset(big, 'a', sizeof(big));
    big[0] = '/';
    big[sizeof(big) - 1] = '\0';
    size_t n;
    cr_assert_eq(http_path_normalize(big, strlen(big), out, sizeof(out), &n), -ENAMETOOLONG);
}

static enum http_range_result range(const char *v, uint64_t size, uint64_t *a, uint64_t *b)
{
    return http_range_parse(v, strlen(v), size, a, b);
}

Test(path, ranges)
{
    uint64_t a, b;
    cr_assert_eq(range("bytes=0-99", 1000, &a, &b), HTTP_RANGE_OK);
    cr_assert(a == 0 && b == 99);
    cr_assert_eq(range("bytes=900-", 1000, &a, &b), HTTP_RANGE_OK);
    cr_assert(a == 900 && b == 999);
    cr_assert_eq(range("bytes=-100", 1000, &a, &b), HTTP_RANGE_OK);
    cr_assert(a == 900 && b == 999);
    cr_assert_eq(range("bytes=-5000", 1000, &a, &b), HTTP_RANGE_OK);
    cr_assert(a == 0 && b == 999);
    cr_assert_eq(range("bytes=500-5000", 1000, &a, &b), HTTP_RANGE_OK);
    cr_assert(a == 500 && b == 999);
    cr_assert_eq(range("bytes=1000-", 1000, &a, &b), HTTP_RANGE_UNSATISFIABLE);
    cr_assert_eq(range("bytes=-0", 1000, &a, &b), HTTP_RANGE_UNSATISFIABLE);
    cr_assert_eq(range("bytes=0-1,5-6", 1000, &a, &b), HTTP_RANGE_NONE);
    cr_assert_eq(range("items=0-1", 1000, &a, &b), HTTP_RANGE_NONE);
    cr_assert_eq(range("bytes=5-1", 1000, &a, &b), HTTP_RANGE_NONE);
    cr_assert_eq(range("bytes=x-1", 1000, &a, &b), HTTP_RANGE_NONE);
    cr_assert_eq(range("bytes=99999999999999999999999-", 1000, &a, &b), HTTP_RANGE_NONE);
}

Test(path, dates_round_trip)
{
    char buf[40];
    http_date_format(784111777, buf, sizeof(buf));
    cr_assert_str_eq(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    time_t t;
    cr_assert_eq(http_date_parse(buf, strlen(buf), &t), 0);
    cr_assert_eq(t, 784111777);
    cr_assert_eq(http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", 30, &t), -1);
    cr_assert_eq(http_date_parse("Sun, 06 Xyz 1994 08:49:37 GMT", 29, &t), -1);
}

Test(path, etags)
{
    const char *etag = "\"5f1-2a\"";
    cr_assert(http_etag_matches("\"5f1-2a\"", 8, etag));
    cr_assert(http_etag_matches("W/\"5f1-2a\"", 10, etag));
    cr_assert(http_etag_matches("\"x\", \"5f1-2a\"", 13, etag));
    cr_assert(http_etag_matches("*", 1, etag));
    cr_assert(!http_etag_matches("\"5f1-2b\"", 8, etag));
    cr_assert(!http_etag_matches("", 0, etag));
}

Test(path, gzip_acceptance)
{
    cr_assert(http_accepts_gzip("gzip, deflate, br", 17));
    cr_assert(http_accepts_gzip("br;q=1.0, GZIP;q=0.5", 20));
    cr_assert(http_accepts_gzip("*", 1));
    cr_assert(!http_accepts_gzip("gzip;q=0", 8));
    cr_assert(!http_accepts_gzip("gzip;q=0.000", 12));
    cr_assert(!http_accepts_gzip("br, deflate", 11));
    cr_assert(!http_accepts_gzip("xgzip", 5));
}

Test(path, media_types)
{
    cr_assert_str_eq(http_mime_type("/a/index.html"), "text/html; charset=utf-8");
    cr_assert_str_eq(http_mime_type("/x.PNG"), "image/png");
    cr_assert_str_eq(http_mime_type("/dir.d/README"), "application/octet-stream");
    cr_assert_str_eq(http_mime_type("/noext."), "application/octet-stream");
}
