/* SPDX-License-Identifier: MIT */
/* Fuzz target for the upgrade decision in src/http/http_tunnel.c: the input is parsed as a
 * request head and, when it parses, http_tunnel_requested must agree with its contract
 * (HTTP/1.1, not CONNECT, Connection: upgrade, no Upgrade value naming h2c), and the head
 * rewritten for a tunnel keeps Upgrade and says Connection: upgrade. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_parse.h"
#include "http/http_rewrite.h"
#include "http/http_tunnel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether p[0, len) contains needle, ignoring ASCII case. */
static bool has_ci(const char *p, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++) {
        if (strncasecmp(p + i, needle, n) == 0) {
            return true;
        }
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct http_msg msg;
    struct http_parser p;
    const char *buf = (const char *)data;
    http_parser_init(&p, false, 0, 0);
    if (http_parse_head(&p, buf, size, &msg) != 0) {
        return 0;
    }
    if (!http_tunnel_requested(&msg, buf)) {
        return 0;
    }
    if (msg.version_minor != 1 || msg.method == HTTP_METHOD_CONNECT ||
        (msg.flags & HTTP_F_CONN_UPGRADE) == 0) {
        abort();
    }
    for (uint32_t i = 0; i < msg.n_headers; i++) {
        const struct http_header *h = &msg.headers[i];
        if (http_span_eq(buf, h->name, "upgrade", 7) &&
            http_list_has_token(buf + h->value.off, h->value.len, "h2c", 3)) {
            abort();
        }
    }
    struct buf out;
    if (buf_init(&out, 1u << 17) != 0) {
        return 0;
    }
    struct http_rewrite_req opt = {.client_ip = "10.0.0.1", .proto = "http", .is_upgrade = true};
    if (http_rewrite_request(&msg, buf, &opt, &out) == 0 &&
        (!has_ci(buf_head(&out), out.len, "\r\nconnection: upgrade\r\n") ||
         !has_ci(buf_head(&out), out.len, "\r\nupgrade:"))) {
        abort();
    }
    buf_fini(&out);
    return 0;
}
