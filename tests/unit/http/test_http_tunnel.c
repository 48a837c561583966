/* SPDX-License-Identifier: MIT */
/* Unit tests for src/http/http_tunnel.c: which requests keel lets a server upgrade (the
 * relay itself is exercised by tests/system/test_websocket.py). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "http/http_tunnel.c"

static struct http_msg msg;
static char text[4096];

static bool requested(const char *raw)
{
    struct http_parser p;
    snprintf(text, sizeof(text), "%s", raw);
    http_parser_init(&p, false, 0, 0);
    cr_assert_eq(http_parse_head(&p, text, strlen(text), &msg), 0, "parse: %s",
                 p.error != NULL ? p.error : "?");
    return http_tunnel_requested(&msg, text);
}

Test(tunnel, websocket_handshake_is_an_upgrade)
{
    cr_assert(requested("GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"));
    cr_assert(requested("GET / HTTP/1.1\r\nHost: h\r\nconnection: keep-alive, UPGRADE\r\n"
                        "upgrade: WebSocket\r\n\r\n"));
}

Test(tunnel, needs_both_connection_upgrade_and_upgrade)
{
    cr_assert(!requested("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n"));
    cr_assert(!requested("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n\r\n"));
    cr_assert(!requested("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade:\r\n\r\n"));
}

/* h2c is refused: HTTP/2 behind the proxy's back (h2c smuggling). */
Test(tunnel, h2c_is_never_an_upgrade)
{
    cr_assert(!requested("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                         "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"));
    cr_assert(!requested("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
                         "Upgrade: websocket, H2C\r\n\r\n"));
    cr_assert(!requested("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
                         "Upgrade: websocket\r\nUpgrade: h2c/1\r\n\r\n"));
    /* a protocol that merely starts with h2c is not h2c */
    cr_assert(requested("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
                        "Upgrade: h2cx, foo/2\r\n\r\n"));
}

Test(tunnel, http10_and_connect_are_not_upgrades)
{
    cr_assert(!requested("GET / HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"));
    cr_assert(!requested("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nConnection: Upgrade\r\n"
                         "Upgrade: websocket\r\n\r\n"));
}

Test(tunnel, names_h2c_tokens)
{
    cr_assert(names_h2c("h2c", 3));
    cr_assert(names_h2c(" a , h2c/2 ,b", 13));
    cr_assert(!names_h2c("ah2c, h2", 8));
    cr_assert(!names_h2c("", 0));
}
