/* SPDX-License-Identifier: MIT */
/* Unit tests for src/http/http_rewrite.c: what the proxy sends upstream and downstream. */
#include <criterion/criterion.h>
#include <string.h>

#include "http/http_rewrite.c"

static struct buf out;
static struct http_msg msg;
static char text[8192];

static void parse(const char *raw, bool is_response)
{
    struct http_parser p;
    snprintf(text, sizeof(text), "%s", raw);
    http_parser_init(&p, is_response, 8192, 8192);
    cr_assert_eq(http_parse_head(&p, text, strlen(text), &msg), 0, "parse: %s",
                 p.error != NULL ? p.error : "?");
    cr_assert_eq(buf_init(&out, 4096), 0);
}

static char *rewrite_request(const char *raw)
{
    parse(raw, false);
    struct http_rewrite_req opt = {.client_ip = "10.1.2.3", .proto = "http"};
    cr_assert_eq(http_rewrite_request(&msg, text, &opt, &out), 0);
    static char res[4096];
    snprintf(res, sizeof(res), "%.*s", (int)out.len, buf_head(&out));
    buf_fini(&out);
    return res;
}

Test(rewrite, adds_forwarded_headers)
{
    char *r = rewrite_request("GET /a?b HTTP/1.1\r\nHost: ex.com\r\nAccept: */*\r\n\r\n");
    cr_assert_str_eq(r, "GET /a?b HTTP/1.1\r\nHost: ex.com\r\nAccept: */*\r\n"
                        "X-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Proto: http\r\n"
                        "X-Forwarded-Host: ex.com\r\n\r\n");
}

Test(rewrite, appends_to_last_xff_and_replaces_proto_host)
{
    char *r = rewrite_request("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n"
                              "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n"
                              "X-Forwarded-For: 2.2.2.2\r\n\r\n");
    cr_assert(strstr(r, "X-Forwarded-For: 1.1.1.1\r\n") != NULL);
    cr_assert(strstr(r, "X-Forwarded-For: 2.2.2.2, 10.1.2.3\r\n") != NULL);
    cr_assert(strstr(r, "X-Forwarded-Proto: http\r\n") != NULL);
    cr_assert(strstr(r, "https") == NULL);
    cr_assert(strstr(r, "evil") == NULL);
}

Test(rewrite, removes_hop_by_hop_and_connection_named_headers)
{
    char *r =
        rewrite_request("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\n"
                        "Keep-Alive: timeout=5\r\nProxy-Connection: x\r\nTE: trailers\r\n"
                        "Upgrade: websocket\r\nTrailer: X\r\nX-Secret: 1\r\nX-Kept: 2\r\n\r\n");
    cr_assert(strstr(r, "Connection") == NULL, "%s", r);
    cr_assert(strstr(r, "Keep-Alive") == NULL);
    cr_assert(strstr(r, "TE:") == NULL);
    cr_assert(strstr(r, "Upgrade") == NULL);
    cr_assert(strstr(r, "Trailer") == NULL);
    cr_assert(strstr(r, "X-Secret") == NULL);
    cr_assert(strstr(r, "X-Kept: 2\r\n") != NULL);
}

Test(rewrite, never_removes_framing_headers_named_in_connection)
{
    char *r = rewrite_request("POST / HTTP/1.1\r\nHost: h\r\n"
                              "Connection: Content-Length, Host, Transfer-Encoding\r\n"
                              "Content-Length: 3\r\n\r\n");
    cr_assert(strstr(r, "Content-Length: 3\r\n") != NULL, "%s", r);
    cr_assert(strstr(r, "Host: h\r\n") != NULL);
}

Test(rewrite, http10_without_host_gets_empty_host_and_11)
{
    char *r = rewrite_request("GET / HTTP/1.0\r\nAccept: */*\r\n\r\n");
    cr_assert(strncmp(r, "GET / HTTP/1.1\r\n", 16) == 0);
    cr_assert(strstr(r, "Host: \r\n") != NULL);
    cr_assert(strstr(r, "X-Forwarded-Host") == NULL);
}

Test(rewrite, too_small_buffer_leaves_it_unchanged)
{
    parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n", false);
    buf_fini(&out);
    cr_assert_eq(buf_init(&out, 40), 0);
    cr_assert(buf_append(&out, "abc", 3));
    struct http_rewrite_req opt = {.client_ip = "10.1.2.3", .proto = "http"};
    cr_assert_eq(http_rewrite_request(&msg, text, &opt, &out), -ENOSPC);
    cr_assert_eq(out.len, 3);
    buf_fini(&out);
}

Test(rewrite, response_close_and_hop_by_hop)
{
    parse("HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Drop\r\nKeep-Alive: timeout=5\r\n"
          "X-Drop: 1\r\nContent-Length: 2\r\n\r\n",
          true);
    struct http_rewrite_res opt = {.is_close = true};
    cr_assert_eq(http_rewrite_response(&msg, text, &opt, &out), 0);
    char r[1024];
    snprintf(r, sizeof(r), "%.*s", (int)out.len, buf_head(&out));
    cr_assert_str_eq(r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n");
    buf_fini(&out);
}

Test(rewrite, response_dechunk_for_http10_drops_framing)
{
    parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n", true);
    struct http_rewrite_res opt = {.is_close = true, .drop_framing = true};
    cr_assert_eq(http_rewrite_response(&msg, text, &opt, &out), 0);
    char r[1024];
    snprintf(r, sizeof(r), "%.*s", (int)out.len, buf_head(&out));
    cr_assert_str_eq(r, "HTTP/1.1 200 OK\r\nX-A: b\r\nConnection: close\r\n\r\n");
    buf_fini(&out);
}

Test(rewrite, response_with_te_and_cl_drops_cl)
{
    parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", true);
    struct http_rewrite_res opt = {0};
    cr_assert_eq(http_rewrite_response(&msg, text, &opt, &out), 0);
    char r[1024];
    snprintf(r, sizeof(r), "%.*s", (int)out.len, buf_head(&out));
    cr_assert(strstr(r, "Content-Length") == NULL, "%s", r);
    cr_assert(strstr(r, "Transfer-Encoding: chunked\r\n") != NULL);
    buf_fini(&out);
}

Test(rewrite, keepalive_for_http10_client)
{
    parse("HTTP/1.1 204 No Content\r\n\r\n", true);
    struct http_rewrite_res opt = {.is_keepalive_10 = true};
    cr_assert_eq(http_rewrite_response(&msg, text, &opt, &out), 0);
    char r[1024];
    snprintf(r, sizeof(r), "%.*s", (int)out.len, buf_head(&out));
    cr_assert_str_eq(r, "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");
    buf_fini(&out);
}

Test(rewrite, served_by_replaces_the_header_both_ways)
{
    parse("GET / HTTP/1.1\r\nHost: h\r\nX-Served-By: spoofed\r\n\r\n", false);
    struct http_rewrite_req ro = {.client_ip = "10.1.2.3", .proto = "http", .served_by = "web2"};
    cr_assert_eq(http_rewrite_request(&msg, text, &ro, &out), 0);
    char r[4096];
    snprintf(r, sizeof(r), "%.*s", (int)out.len, buf_head(&out));
    buf_fini(&out);
    cr_assert(strstr(r, "spoofed") == NULL, "%s", r);
    cr_assert(strstr(r, "X-Served-By: web2\r\n\r\n") != NULL, "%s", r);

    parse("HTTP/1.1 200 OK\r\nX-Served-By: app\r\nContent-Length: 0\r\n\r\n", true);
    struct http_rewrite_res so = {.served_by = "web2"};
    cr_assert_eq(http_rewrite_response(&msg, text, &so, &out), 0);
    snprintf(r, sizeof(r), "%.*s", (int)out.len, buf_head(&out));
    buf_fini(&out);
    cr_assert_str_eq(r, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Served-By: web2\r\n\r\n");

    parse("HTTP/1.1 200 OK\r\nX-Served-By: app\r\nContent-Length: 0\r\n\r\n", true);
    struct http_rewrite_res none = {0};
    cr_assert_eq(http_rewrite_response(&msg, text, &none, &out), 0);
    snprintf(r, sizeof(r), "%.*s", (int)out.len, buf_head(&out));
    buf_fini(&out);
    cr_assert(strstr(r, "X-Served-By: app\r\n") != NULL, "%s", r); /* untouched off a site */
}

/* Issue 10: "Connection: X-Forwarded-For" plus any X-Forwarded-For made keel drop that header
 * and with it the client address it appends, so the server got no address at all. */
Test(rewrite, regression_connection_cannot_remove_keel_headers)
{
    char *r = rewrite_request("GET / HTTP/1.1\r\nHost: h\r\n"
                              "Connection: X-Forwarded-For, x-forwarded-proto, X-Forwarded-Host, "
                              "X-Served-By\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n");
    cr_assert(strstr(r, "X-Forwarded-For: 1.1.1.1, 10.1.2.3\r\n") != NULL, "%s", r);
    cr_assert(strstr(r, "X-Forwarded-Proto: http\r\n") != NULL, "%s", r);
    cr_assert(strstr(r, "X-Forwarded-Host: h\r\n") != NULL, "%s", r);

    r = rewrite_request("GET / HTTP/1.1\r\nHost: h\r\nConnection: x_forwarded_for\r\n"
                        "X-Forwarded-For: 1.1.1.1\r\n\r\n");
    cr_assert(strstr(r, "X-Forwarded-For: 1.1.1.1, 10.1.2.3\r\n") != NULL, "%s", r);

    parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Served-By\r\nX-Served-By: x\r\n\r\n", false);
    struct http_rewrite_req ro = {.client_ip = "10.1.2.3", .proto = "http", .served_by = "web2"};
    cr_assert_eq(http_rewrite_request(&msg, text, &ro, &out), 0);
    char s[4096];
    snprintf(s, sizeof(s), "%.*s", (int)out.len, buf_head(&out));
    buf_fini(&out);
    cr_assert(strstr(s, "X-Served-By: web2\r\n") != NULL, "%s", s);
}

/* Spellings with '_' of the headers keel writes reach CGI-style servers as the same variable
 * (HTTP_X_FORWARDED_FOR): they are dropped, other headers with '_' are kept. */
Test(rewrite, regression_underscore_variants_of_keel_headers_dropped)
{
    char *r = rewrite_request("GET / HTTP/1.1\r\nHost: h\r\nX_Forwarded_For: 6.6.6.6\r\n"
                              "x_forwarded-proto: https\r\nX-Forwarded_Host: evil\r\n"
                              "X_SERVED_BY: evil2\r\nX_Custom: kept\r\n\r\n");
    cr_assert(strstr(r, "6.6.6.6") == NULL, "%s", r);
    cr_assert(strstr(r, "https") == NULL, "%s", r);
    cr_assert(strstr(r, "evil") == NULL, "%s", r);
    cr_assert(strstr(r, "X_Custom: kept\r\n") != NULL, "%s", r);
    cr_assert(strstr(r, "X-Forwarded-For: 10.1.2.3\r\n") != NULL, "%s", r);
}

/* A Connection header naming more headers than keel can remember is refused as a whole,
 * never half honoured; tokens that need no memory (close, hop-by-hop names) do not count. */
Test(rewrite, regression_too_many_connection_tokens_refused)
{
    char head[2048];
    int n = snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: h\r\nConnection: close");
    for (int i = 0; i < MAX_CONN_TOKENS + 1; i++) {
        n += snprintf(head + n, sizeof(head) - (size_t)n, ", X-H%d", i);
    }
    snprintf(head + n, sizeof(head) - (size_t)n, "\r\nX-H16: secret\r\n\r\n");
    parse(head, false);
    size_t before = out.len;
    struct http_rewrite_req opt = {.client_ip = "10.1.2.3", .proto = "http"};
    cr_assert_eq(http_rewrite_request(&msg, text, &opt, &out), -KEEL_EHTTP_BAD_REQUEST);
    cr_assert_eq(out.len, before);
    buf_fini(&out);

    /* Exactly the limit, plus moot tokens, is honoured in full. */
    n = snprintf(head, sizeof(head),
                 "GET / HTTP/1.1\r\nHost: h\r\nConnection: close, keep-alive, te, upgrade, "
                 "x-forwarded-for, host");
    for (int i = 0; i < MAX_CONN_TOKENS; i++) {
        n += snprintf(head + n, sizeof(head) - (size_t)n, ", X-H%d", i);
    }
    snprintf(head + n, sizeof(head) - (size_t)n, "\r\nX-H15: secret\r\n\r\n");
    char *r = rewrite_request(head);
    cr_assert(strstr(r, "secret") == NULL, "%s", r);

    parse("HTTP/1.1 200 OK\r\nConnection: a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, "
          "a13, a14, a15, a16, a17\r\nContent-Length: 0\r\n\r\n",
          true);
    struct http_rewrite_res so = {0};
    cr_assert_eq(http_rewrite_response(&msg, text, &so, &out), -KEEL_EHTTP_BAD_RESPONSE);
    buf_fini(&out);
}

/* An upgrade keel tunnels keeps Upgrade (even when Connection names it) and says
 * Connection: upgrade; the other hop-by-hop headers still go. */
Test(rewrite, upgrade_request_keeps_upgrade_and_connection_upgrade)
{
    parse("GET /chat HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade, X-Secret\r\n"
          "Upgrade: websocket\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
          false);
    struct http_rewrite_req opt = {.client_ip = "10.1.2.3", .proto = "http", .is_upgrade = true};
    cr_assert_eq(http_rewrite_request(&msg, text, &opt, &out), 0);
    char r[4096];
    snprintf(r, sizeof(r), "%.*s", (int)out.len, buf_head(&out));
    buf_fini(&out);
    cr_assert(strstr(r, "Upgrade: websocket\r\n") != NULL, "%s", r);
    cr_assert(strstr(r, "Connection: upgrade\r\n") != NULL, "%s", r);
    cr_assert(strstr(r, "keep-alive") == NULL, "%s", r);
    cr_assert(strstr(r, "Keep-Alive") == NULL, "%s", r);
    cr_assert(strstr(r, "X-Secret") == NULL, "%s", r);
    cr_assert(strstr(r, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n") != NULL, "%s", r);
}

Test(rewrite, upgrade_response_101_keeps_upgrade_without_close)
{
    parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
          true);
    struct http_rewrite_res opt = {.is_upgrade = true, .is_close = true};
    cr_assert_eq(http_rewrite_response(&msg, text, &opt, &out), 0);
    char r[4096];
    snprintf(r, sizeof(r), "%.*s", (int)out.len, buf_head(&out));
    buf_fini(&out);
    cr_assert_str_eq(r, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                        "Connection: upgrade\r\n\r\n");
}

/* The status line is written digit by digit (no snprintf on the hot path): every status the
 * parser admits (100-599) comes out as it came in, HTTP/1.0 responses as 1.1, and a status
 * a caller set outside 100-999 still comes out whole. */
Test(rewrite, status_line_keeps_every_three_digit_status)
{
    static const int statuses[] = {100, 101, 200, 204, 304, 404, 418, 503, 599};
    for (size_t k = 0; k < sizeof(statuses) / sizeof(statuses[0]); k++) {
        char raw[64];
        snprintf(raw, sizeof(raw), "HTTP/1.0 %d Why\r\n\r\n", statuses[k]);
        parse(raw, true);
        struct http_rewrite_res opt = {0};
        cr_assert_eq(http_rewrite_response(&msg, text, &opt, &out), 0);
        char r[128], want[64];
        snprintf(r, sizeof(r), "%.*s", (int)out.len, buf_head(&out));
        snprintf(want, sizeof(want), "HTTP/1.1 %d Why\r\n\r\n", statuses[k]);
        cr_assert_str_eq(r, want);
        buf_fini(&out);
    }
    parse("HTTP/1.1 200 OK\r\n\r\n", true);
    msg.status = 1000;
    struct http_rewrite_res opt = {0};
    cr_assert_eq(http_rewrite_response(&msg, text, &opt, &out), 0);
    cr_assert_eq(out.len, strlen("HTTP/1.1 1000 OK\r\n\r\n"));
    cr_assert_eq(memcmp(buf_head(&out), "HTTP/1.1 1000 OK\r\n\r\n", out.len), 0);
    buf_fini(&out);
}

Test(rewrite, hsts_replaces_the_servers_header_and_is_absent_when_unset)
{
    char r[4096];
    parse("HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=1\r\nContent-Length: 0\r\n\r\n",
          true);
    struct http_rewrite_res so = {.hsts = "Strict-Transport-Security: max-age=300\r\n"};
    cr_assert_eq(http_rewrite_response(&msg, text, &so, &out), 0);
    snprintf(r, sizeof(r), "%.*s", (int)out.len, buf_head(&out));
    buf_fini(&out);
    cr_assert_str_eq(r, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                        "Strict-Transport-Security: max-age=300\r\n\r\n");

    parse("HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=1\r\nContent-Length: 0\r\n\r\n",
          true);
    struct http_rewrite_res none = {.hsts = ""};
    cr_assert_eq(http_rewrite_response(&msg, text, &none, &out), 0);
    snprintf(r, sizeof(r), "%.*s", (int)out.len, buf_head(&out));
    buf_fini(&out);
    cr_assert(strstr(r, "Strict-Transport-Security: max-age=1\r\n") != NULL, "%s", r);
}
