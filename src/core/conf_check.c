/* SPDX-License-Identifier: MIT */
/* The check line's option table and parser (see conf_check.h). */
#include "core/conf_check.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/conf_value.h"

/* Option contexts of check lines. */
enum check_ctx { CHECK_CTX_TCP = 1u << 0, CHECK_CTX_HTTP = 1u << 1 };
#define CHECK_CTX_ANY (CHECK_CTX_TCP | CHECK_CTX_HTTP)

static int bad_check_value(struct conf_parser *cp, const struct conf_token *tok, const char *why)
{
    conf_error(cp, &tok[1], "invalid value \"%s\" for \"%s\": %s", tok[1].text, tok[0].text, why);
    return -KEEL_ECONFIG;
}

static int set_check_method(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                            const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf_check *c = obj;
    bool ok = tok[1].len >= 1 && tok[1].len < sizeof(c->method);
    for (size_t i = 0; i < tok[1].len && ok; i++) {
        ok = tok[1].text[i] >= 'A' && tok[1].text[i] <= 'Z';
    }
    if (!ok) {
        return bad_check_value(cp, tok, "expected an uppercase HTTP method such as GET or HEAD");
    }
    memcpy(c->method, tok[1].text, tok[1].len + 1);
    return 0;
}

static int set_check_path(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                          const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf_check *c = obj;
    /* No space or control byte: the path goes verbatim into the probe's request line. */
    bool ok = tok[1].text[0] == '/' && tok[1].len < sizeof(c->path);
    for (size_t i = 0; i < tok[1].len && ok; i++) {
        ok = (unsigned char)tok[1].text[i] > ' ' && tok[1].text[i] != 0x7f;
    }
    if (!ok) {
        return bad_check_value(cp, tok,
                               "expected a path starting with \"/\", without spaces or control "
                               "characters, of at most 255 bytes");
    }
    memcpy(c->path, tok[1].text, tok[1].len + 1);
    return 0;
}

static int set_check_host(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                          const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf_check *c = obj;
    bool ok = tok[1].len >= 1 && tok[1].len < sizeof(c->host);
    for (size_t i = 0; i < tok[1].len && ok; i++) {
        char ch = tok[1].text[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             strchr(".-_:[]", ch) != NULL;
    }
    if (!ok) {
        return bad_check_value(cp, tok, "expected a host name, optionally with :PORT");
    }
    memcpy(c->host, tok[1].text, tok[1].len + 1);
    return 0;
}

static int set_check_status(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                            const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf_check *c = obj;
    struct errbuf eb;
    char lo_text[16], hi_text[16];
    const char *dash = strchr(tok[1].text, '-');
    size_t lo_len = dash != NULL ? (size_t)(dash - tok[1].text) : tok[1].len;
    const char *hi_src = dash != NULL ? dash + 1 : tok[1].text;
    uint64_t lo, hi;
    bool ok = lo_len < sizeof(lo_text) && strlen(hi_src) < sizeof(hi_text);
    if (ok) {
        memcpy(lo_text, tok[1].text, lo_len);
        lo_text[lo_len] = '\0';
        (void)snprintf(hi_text, sizeof(hi_text), "%s", hi_src); /* fits, checked above */
        ok = conf_parse_uint(lo_text, &lo, &eb) == 0 && conf_parse_uint(hi_text, &hi, &eb) == 0;
    }
    if (!ok || lo < 100 || hi > 599 || lo > hi) {
        return bad_check_value(cp, tok, "expected CODE or MIN-MAX with 100 <= MIN <= MAX <= 599");
    }
    c->status_min = (int)lo;
    c->status_max = (int)hi;
    return 0;
}

static const struct conf_directive check_options[] = {
    {.name = "method",
     .contexts = CHECK_CTX_HTTP,
     .min_args = 1,
     .max_args = 1,
     .set = set_check_method,
     .def = "GET",
     .syntax = "method METHOD",
     .help = "HTTP method of the probe"},
    {.name = "path",
     .contexts = CHECK_CTX_HTTP,
     .min_args = 1,
     .max_args = 1,
     .set = set_check_path,
     .def = "/",
     .syntax = "path PATH",
     .help = "path of the probe"},
    {.name = "host",
     .contexts = CHECK_CTX_HTTP,
     .min_args = 1,
     .max_args = 1,
     .set = set_check_host,
     .syntax = "host HOST",
     .help = "Host header of the probe; default: the server's address"},
    {.name = "status",
     .contexts = CHECK_CTX_HTTP,
     .min_args = 1,
     .max_args = 1,
     .set = set_check_status,
     .def = "200-399",
     .syntax = "status CODE|MIN-MAX",
     .help = "status codes that mean healthy"},
    {.name = "interval",
     .contexts = CHECK_CTX_ANY,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_check, interval_ms),
     .min = 10,
     .max = 3600u * 1000u,
     .def = "2s",
     .syntax = "interval DURATION",
     .help = "time between probes"},
    {.name = "timeout",
     .contexts = CHECK_CTX_ANY,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_check, timeout_ms),
     .min = 1,
     .max = 3600u * 1000u,
     .def = "1s",
     .syntax = "timeout DURATION",
     .help = "how long a probe may take"},
    {.name = "rise",
     .contexts = CHECK_CTX_ANY,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_uint,
     CONF_FIELD(struct conf_check, rise),
     .min = 1,
     .max = 100,
     .def = "2",
     .syntax = "rise N",
     .help = "consecutive successes to mark it healthy"},
    {.name = "fall",
     .contexts = CHECK_CTX_ANY,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_uint,
     CONF_FIELD(struct conf_check, fall),
     .min = 1,
     .max = 100,
     .def = "3",
     .syntax = "fall N",
     .help = "consecutive failures to mark it unhealthy"},
    {.name = "port",
     .contexts = CHECK_CTX_ANY,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_uint,
     CONF_FIELD(struct conf_check, port),
     .min = 1,
     .max = 65535,
     .syntax = "port N",
     .help = "probe this port instead of the server's (a health endpoint beside the service)"},
};

static const struct conf_enum check_type_values[] = {
    {"tcp", CONF_CHECK_TCP},
    {"http", CONF_CHECK_HTTP},
    {NULL, 0},
};

int conf_set_check_at(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                      const struct conf_token *tok, size_t n, size_t check_offset)
{
    struct conf_check *check = (struct conf_check *)((char *)obj + check_offset);
    struct conf_directive type = *d;
    type.offset = check_offset + offsetof(struct conf_check, type);
    type.values = check_type_values;
    if (conf_set_enum(cp, &type, obj, tok, 2) != 0) {
        return -KEEL_ECONFIG;
    }
    bool is_http = check->type == CONF_CHECK_HTTP;
    return conf_parse_options(cp, check_options, sizeof(check_options) / sizeof(check_options[0]),
                              is_http ? CHECK_CTX_HTTP : CHECK_CTX_TCP, "check option",
                              is_http ? "an http check" : "a tcp check", check, &tok[2], n - 2);
}
