/* SPDX-License-Identifier: MIT */
/* Unit tests for src/http/http_static.c: the web server's handlers fill a struct
 * http_local_resp from a struct http_local_req, with no connection behind them: fixed
 * answers and redirects, HEAD, files with validators (304) and ranges (206, 416). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http_filecache.h"
#include "http/http_static.c"

struct fixture {
    char raw[1024];
    struct http_parser parser;
    struct http_msg msg;
    struct http_filecache *cache;
    struct buf out;
    struct http_local_req q;
    struct http_local_resp r;
};

/* Parse raw as a request head and make the request view and an empty response. */
static void setup(struct fixture *f, const char *raw)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->raw, sizeof(f->raw), "%s", raw);
    http_parser_init(&f->parser, false, 0, 0);
    cr_assert_eq(http_parse_head(&f->parser, f->raw, strlen(f->raw), &f->msg), 0);
    cr_assert_eq(buf_init(&f->out, 4096), 0);
    f->q = (struct http_local_req){.msg = &f->msg,
                                   .buf = f->raw,
                                   .method = f->msg.method,
                                   .served_by = "",
                                   .cache = &f->cache,
                                   .gen_id = 1,
                                   .now_ms = 1000};
    f->r = (struct http_local_resp){.out = &f->out, .file_fd = -1};
}

static void teardown(struct fixture *f)
{
    if (f->r.file_entry != NULL) {
        http_filecache_release(f->r.file_entry);
    } else if (f->r.file_fd != -1) {
        close(f->r.file_fd);
    }
    if (!f->r.mem_is_borrowed) {
        free(f->r.mem_body);
    }
    http_filecache_free(f->cache);
    buf_fini(&f->out);
}

static bool head_has(const struct fixture *f, const char *s)
{
    return memmem(buf_head(&f->out), f->out.len, s, strlen(s)) != NULL;
}

Test(http_static, return_redirect_and_text)
{
    struct fixture f;
    setup(&f, "GET /old HTTP/1.1\r\nHost: x\r\n\r\n");
    struct conf_location loc = {.action = CONF_LOC_RETURN, .return_status = 301};
    snprintf(loc.return_text, sizeof(loc.return_text), "/new");
    http_return_respond(&f.r, &f.q, &loc);
    cr_assert_eq(f.r.status, 301);
    cr_assert(head_has(&f, "HTTP/1.1 301 "));
    cr_assert(head_has(&f, "Location: /new\r\n"));
    cr_assert_not(head_has(&f, "Connection: close"));
    teardown(&f);

    setup(&f, "HEAD /hz HTTP/1.1\r\nHost: x\r\n\r\n");
    f.r.is_close = true;
    struct conf_location ok = {.action = CONF_LOC_RETURN, .return_status = 200};
    snprintf(ok.return_text, sizeof(ok.return_text), "ok");
    http_return_respond(&f.r, &f.q, &ok);
    cr_assert(head_has(&f, "Content-Length: 3\r\n"));
    cr_assert(head_has(&f, "Connection: close\r\n"));
    cr_assert_not(head_has(&f, "ok\n"), "HEAD gets no body");
    teardown(&f);
}

/* The longest URL and Cache-Control value the configuration accepts go out whole, for every
 * redirect code: the buffers are sized from the fields and the reason phrases (no silent
 * truncation of a Location, which would send the client elsewhere). */
Test(http_static, return_longest_values_go_out_whole)
{
    for (int code = 100; code <= 599; code++) {
        cr_assert_lt(strlen(http_status_reason(code)), RETURN_REASON_MAX, "%d", code);
    }
    struct conf_location loc = {.action = CONF_LOC_RETURN};
    memset(loc.return_text, 'u', sizeof(loc.return_text) - 1);
    loc.return_text[0] = '/';
    memset(loc.cache_control, 'c', sizeof(loc.cache_control) - 1);
    char want_loc[sizeof(loc.return_text) + 32], want_cc[sizeof(loc.cache_control) + 32];
    (void)snprintf(want_loc, sizeof(want_loc), "\r\nLocation: %s\r\n", loc.return_text);
    (void)snprintf(want_cc, sizeof(want_cc), "\r\nCache-Control: %s\r\n", loc.cache_control);
    const int codes[] = {300, 301, 302, 303, 305, 307, 308, 399};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        struct fixture f;
        setup(&f, "GET /old HTTP/1.1\r\nHost: x\r\n\r\n");
        loc.return_status = codes[i];
        http_return_respond(&f.r, &f.q, &loc);
        cr_assert_eq(f.r.status, codes[i]);
        cr_assert(head_has(&f, want_loc), "%d", codes[i]);
        cr_assert(head_has(&f, want_cc), "%d", codes[i]);
        char body[sizeof(loc.return_text) + 64];
        (void)snprintf(body, sizeof(body), "\r\n\r\n%d %s: %s\n", codes[i],
                       http_status_reason(codes[i]), loc.return_text);
        cr_assert(head_has(&f, body), "%d", codes[i]);
        teardown(&f);
    }
    struct fixture f;
    setup(&f, "GET /t HTTP/1.1\r\nHost: x\r\n\r\n");
    loc.return_status = 200;
    http_return_respond(&f.r, &f.q, &loc);
    cr_assert_eq(f.r.status, 200);
    cr_assert(head_has(&f, want_cc));
    cr_assert_not(head_has(&f, "Location:"));
    char body[sizeof(loc.return_text) + 8];
    (void)snprintf(body, sizeof(body), "\r\n\r\n%s\n", loc.return_text);
    cr_assert(head_has(&f, body));
    teardown(&f);
}

/* A root directory with a.txt = "hello world\n"; returns its fd. */
static int make_root(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/keel-static-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/a.txt", dir);
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp);
    fputs("hello world\n", fp);
    fclose(fp);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert(fd >= 0);
    return fd;
}

static void remove_root(char *dir, int fd)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/a.txt", dir);
    unlink(path);
    rmdir(dir);
    close(fd);
}

Test(http_static, file_then_304_then_range)
{
    char dir[64];
    int root = make_root(dir, sizeof(dir));
    struct conf_location loc = {.action = CONF_LOC_STATIC};
    snprintf(loc.index, sizeof(loc.index), "index.html");

    struct fixture f;
    setup(&f, "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    http_static_respond(&f.r, &f.q, &loc, root, "/a.txt", 6);
    cr_assert_eq(f.r.status, 200);
    cr_assert(head_has(&f, "Content-Length: 12\r\n"));
    /* Small: sent from the cache's copy, no sendfile. */
    cr_assert_eq(f.r.file_fd, -1);
    cr_assert_eq(f.r.file_left, 0);
    cr_assert(f.r.mem_is_borrowed);
    cr_assert_eq(f.r.mem_len, 12);
    cr_assert(memcmp(f.r.mem_body, "hello world\n", 12) == 0);
    const char *etag = memmem(buf_head(&f.out), f.out.len, "ETag: ", 6);
    cr_assert_not_null(etag);
    char tag[64];
    cr_assert_eq(sscanf(etag + 6, "%63[^\r]", tag), 1);
    teardown(&f);

    char raw[256];
    snprintf(raw, sizeof(raw), "GET /a.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n\r\n", tag);
    setup(&f, raw);
    http_static_respond(&f.r, &f.q, &loc, root, "/a.txt", 6);
    cr_assert_eq(f.r.status, 304);
    cr_assert_eq(f.r.file_fd, -1, "no body with a 304");
    teardown(&f);

    setup(&f, "GET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=6-\r\n\r\n");
    http_static_respond(&f.r, &f.q, &loc, root, "/a.txt", 6);
    cr_assert_eq(f.r.status, 206);
    cr_assert(head_has(&f, "Content-Range: bytes 6-11/12\r\n"));
    cr_assert_eq(f.r.mem_len, 6);
    cr_assert(memcmp(f.r.mem_body, "world\n", 6) == 0);
    teardown(&f);

    setup(&f, "GET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=50-\r\n\r\n");
    http_static_respond(&f.r, &f.q, &loc, root, "/a.txt", 6);
    cr_assert_eq(f.r.status, 416);
    teardown(&f);

    setup(&f, "POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    http_static_respond(&f.r, &f.q, &loc, root, "/a.txt", 6);
    cr_assert_eq(f.r.status, 405);
    cr_assert(head_has(&f, "Allow: GET, HEAD\r\n"));
    teardown(&f);

    setup(&f, "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n");
    http_static_respond(&f.r, &f.q, &loc, root, "/missing", 8);
    cr_assert_eq(f.r.status, 404);
    teardown(&f);
    remove_root(dir, root);
}

/* The second request for a file takes its header lines from the cache entry (the same head
 * but for Date), and a file beyond HTTP_FILECACHE_BODY_MAX goes out with sendfile. */
Test(http_static, cached_headers_and_large_files)
{
    char dir[64];
    int root = make_root(dir, sizeof(dir));
    char big[256];
    snprintf(big, sizeof(big), "%s/big.bin", dir);
    FILE *fp = fopen(big, "w");
    cr_assert_not_null(fp);
    for (unsigned i = 0; i < HTTP_FILECACHE_BODY_MAX + 100; i++) {
        fputc('x', fp);
    }
    fclose(fp);
    struct conf_location loc = {.action = CONF_LOC_STATIC};
    snprintf(loc.index, sizeof(loc.index), "index.html");
    snprintf(loc.cache_control, sizeof(loc.cache_control), "max-age=60");

    struct fixture f;
    setup(&f, "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    http_static_respond(&f.r, &f.q, &loc, root, "/a.txt", 6);
    char first[1024];
    const char *ct = memmem(buf_head(&f.out), f.out.len, "Content-Type:", 13);
    cr_assert_not_null(ct);
    snprintf(first, sizeof(first), "%.*s", (int)(f.out.len - (size_t)(ct - buf_head(&f.out))), ct);
    cr_assert_not_null(strstr(first, "Cache-Control: max-age=60\r\n"));
    struct http_filecache *cache = f.cache;
    struct http_filecache_entry *e = f.r.file_entry;
    cr_assert_not_null(e);
    cr_assert_neq(e->headers_len, 0, "the first request made the header lines");
    http_filecache_release(f.r.file_entry);
    f.r.file_entry = NULL;
    f.cache = NULL; /* kept for the second request */
    teardown(&f);

    setup(&f, "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    f.cache = cache;
    http_static_respond(&f.r, &f.q, &loc, root, "/a.txt", 6);
    cr_assert_eq(f.r.file_entry, e, "a hit");
    ct = memmem(buf_head(&f.out), f.out.len, "Content-Type:", 13);
    cr_assert_not_null(ct);
    cr_assert_eq(f.out.len - (size_t)(ct - buf_head(&f.out)), strlen(first));
    cr_assert(memcmp(ct, first, strlen(first)) == 0, "the same header lines");
    teardown(&f);

    setup(&f, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    http_static_respond(&f.r, &f.q, &loc, root, "/big.bin", 8);
    cr_assert_eq(f.r.status, 200);
    cr_assert(f.r.file_fd >= 0, "large: sendfile");
    cr_assert_null(f.r.mem_body);
    cr_assert_eq(f.r.file_left, HTTP_FILECACHE_BODY_MAX + 100);
    teardown(&f);
    unlink(big);
    remove_root(dir, root);
}
