/* SPDX-License-Identifier: MIT */
/* Configuration values: the pure parsers (durations, sizes, integers, addresses, names,
 * host names) and the generic setters that apply them to a directive's field with range
 * checks and error messages. The parser that calls the setters is core/conf.c. Address
 * parsing may block in getaddrinfo(): load time only. */
#include "core/conf_value.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/conf.h"

/* ------------------------------------------------------------------------------------------
 * Value parsers
 * ------------------------------------------------------------------------------------------ */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Decimal digits at s, up to the first non-digit; *end points there. */
static int parse_digits(const char *s, uint64_t *out, const char **end, struct errbuf *eb)
{
    uint64_t v = 0;
    const char *p = s;
    if (!is_digit(*p)) {
        errbuf_set(eb, "expected a number");
        return -KEEL_ECONFIG;
    }
    for (; is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            errbuf_set(eb, "number too large");
            return -KEEL_ECONFIG;
        }
        v = v * 10 + d;
    }
    *out = v;
    *end = p;
    return 0;
}

int conf_parse_uint(const char *s, uint64_t *out, struct errbuf *eb)
{
    const char *end;
    int rc = parse_digits(s, out, &end, eb);
    if (rc != 0) {
        return rc;
    }
    if (*end != '\0') {
        errbuf_set(eb, "expected a number");
        return -KEEL_ECONFIG;
    }
    return 0;
}

static int scale(uint64_t v, uint64_t mult, uint64_t *out, const char *what, struct errbuf *eb)
{
    if (v > UINT64_MAX / mult) {
        errbuf_set(eb, "%s too large", what);
        return -KEEL_ECONFIG;
    }
    *out = v * mult;
    return 0;
}

int conf_parse_duration_ms(const char *s, uint64_t *out, struct errbuf *eb)
{
    const char *unit;
    uint64_t v;
    if (parse_digits(s, &v, &unit, eb) != 0) {
        if (is_digit(*s)) {
            return -KEEL_ECONFIG; /* too large */
        }
        errbuf_set(eb, "expected a duration such as 100ms, 5s, 2m or 1h");
        return -KEEL_ECONFIG;
    }
    uint64_t mult;
    if (*unit == '\0') {
        errbuf_set(eb, "duration needs a unit (ms, s, m, h)");
        return -KEEL_ECONFIG;
    } else if (strcmp(unit, "ms") == 0) {
        mult = 1;
    } else if (strcmp(unit, "s") == 0) {
        mult = 1000;
    } else if (strcmp(unit, "m") == 0) {
        mult = 60 * 1000;
    } else if (strcmp(unit, "h") == 0) {
        mult = 3600 * 1000;
    } else {
        errbuf_set(eb, "unknown duration unit \"%.16s\" (use ms, s, m, h)", unit);
        return -KEEL_ECONFIG;
    }
    return scale(v, mult, out, "duration", eb);
}

int conf_parse_size(const char *s, uint64_t *out, struct errbuf *eb)
{
    const char *unit;
    uint64_t v;
    if (parse_digits(s, &v, &unit, eb) != 0) {
        if (is_digit(*s)) {
            return -KEEL_ECONFIG;
        }
        errbuf_set(eb, "expected a size such as 512, 16k, 1m or 1g");
        return -KEEL_ECONFIG;
    }
    unsigned shift;
    if (unit[0] == '\0') {
        shift = 0;
    } else if (unit[1] == '\0' && (unit[0] == 'k' || unit[0] == 'K')) {
        shift = 10;
    } else if (unit[1] == '\0' && (unit[0] == 'm' || unit[0] == 'M')) {
        shift = 20;
    } else if (unit[1] == '\0' && (unit[0] == 'g' || unit[0] == 'G')) {
        shift = 30;
    } else {
        errbuf_set(eb, "unknown size unit \"%.16s\" (use k, m or g)", unit);
        return -KEEL_ECONFIG;
    }
    return scale(v, (uint64_t)1 << shift, out, "size", eb);
}

void conf_format_duration(uint64_t ms, char *buf, size_t size)
{
    if (ms != 0 && ms % 3600000 == 0) {
        (void)snprintf(buf, size, "%lluh", (unsigned long long)(ms / 3600000));
    } else if (ms != 0 && ms % 60000 == 0) {
        (void)snprintf(buf, size, "%llum", (unsigned long long)(ms / 60000));
    } else if (ms != 0 && ms % 1000 == 0) {
        (void)snprintf(buf, size, "%llus", (unsigned long long)(ms / 1000));
    } else {
        (void)snprintf(buf, size, "%llums", (unsigned long long)ms);
    }
}

void conf_format_size(uint64_t bytes, char *buf, size_t size)
{
    static const char units[] = {'g', 'm', 'k'};
    for (unsigned i = 0; i < 3; i++) {
        uint64_t unit = (uint64_t)1 << (30 - 10 * i);
        if (bytes != 0 && bytes % unit == 0) {
            (void)snprintf(buf, size, "%llu%c", (unsigned long long)(bytes / unit), units[i]);
            return;
        }
    }
    (void)snprintf(buf, size, "%llu", (unsigned long long)bytes);
}

int conf_check_name(const char *s, struct errbuf *eb)
{
    size_t len = strlen(s);
    bool ok = len >= 1 && len < CONF_NAME_MAX;
    for (size_t i = 0; i < len && ok; i++) {
        char c = s[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' ||
             c == '_' || c == '.';
    }
    if (!ok) {
        errbuf_set(eb, "a name is 1-%d letters, digits, '-', '_' or '.'", CONF_NAME_MAX - 1);
        return -KEEL_ECONFIG;
    }
    return 0;
}

int conf_check_host(const char *s, struct errbuf *eb)
{
    unsigned char tmp[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1) {
        return 0;
    }
    size_t len = strlen(s), label = 0;
    bool ok = len >= 1 && len <= 253, all_digits = true;
    for (size_t i = 0; i < len && ok; i++) {
        char c = s[i];
        if (c == '.') {
            ok = label > 0 && s[i - 1] != '-';
            label = 0;
            all_digits = true;
            continue;
        }
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
             (c == '-' && label > 0);
        all_digits = all_digits && is_digit(c);
        label++;
        ok = ok && label <= 63;
    }
    ok = ok && label > 0 && s[len - 1] != '-';
    if (!ok || all_digits) {
        /* An all-digit last label is a mistyped IPv4 address, not a host name (and
         * getaddrinfo would read "127.1" as 127.0.0.1). */
        errbuf_set(eb, "expected an IP address or a host name");
        return -KEEL_ECONFIG;
    }
    return 0;
}

static void addr_text(struct conf_addr *a)
{
    char ip[INET6_ADDRSTRLEN];
    if (a->sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->sa;
        (void)inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip)); /* cannot fail here */
        (void)snprintf(a->text, sizeof(a->text), "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->sa;
        (void)inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        (void)snprintf(a->text, sizeof(a->text), "%s:%u", ip, ntohs(s4->sin_port));
    }
}

static int resolve(const char *host, struct conf_addr *out, struct errbuf *eb)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        errbuf_set(eb, "cannot resolve \"%s\": %s", host,
                   rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -KEEL_ECONFIG;
    }
    const struct addrinfo *pick = NULL;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            pick = ai;
            break;
        }
        if (ai->ai_family == AF_INET6 && pick == NULL) {
            pick = ai;
        }
    }
    if (pick == NULL || pick->ai_addrlen > sizeof(out->sa)) {
        freeaddrinfo(res);
        errbuf_set(eb, "cannot resolve \"%s\": no IPv4 or IPv6 address", host);
        return -KEEL_ECONFIG;
    }
    memcpy(&out->sa, pick->ai_addr, pick->ai_addrlen);
    out->salen = pick->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Split "host:port" / "[v6]:port" into host (copied into buf) and port text. */
static int split_host_port(const char *s, char *host, size_t size, const char **port,
                           bool *is_bracketed, struct errbuf *eb)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    *is_bracketed = s[0] == '[';
    if (*is_bracketed) {
        const char *close = strchr(s, ']');
        if (close == NULL) {
            errbuf_set(eb, "missing \"]\" after an IPv6 address");
            return -KEEL_ECONFIG;
        }
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close[1] == ':' ? close + 1 : NULL;
        if (close[1] != ':' && close[1] != '\0') {
            errbuf_set(eb, "expected \":PORT\" after \"]\"");
            return -KEEL_ECONFIG;
        }
    } else {
        colon = strrchr(s, ':');
        if (colon != NULL && memchr(s, ':', (size_t)(colon - s)) != NULL) {
            errbuf_set(eb, "an IPv6 address needs brackets, as in [::1]:80");
            return -KEEL_ECONFIG;
        }
        hlen = colon != NULL ? (size_t)(colon - s) : strlen(s);
    }
    if (colon == NULL) {
        errbuf_set(eb, "missing port (expected HOST:PORT)");
        return -KEEL_ECONFIG;
    }
    if (hlen >= size) {
        errbuf_set(eb, "host name too long");
        return -KEEL_ECONFIG;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = colon + 1;
    return 0;
}

bool conf_addr_host_is_name(const char *s)
{
    char host[256];
    const char *port;
    bool is_bracketed;
    struct errbuf eb;
    if (split_host_port(s, host, sizeof(host), &port, &is_bracketed, &eb) != 0 || is_bracketed ||
        host[0] == '\0' || strcmp(host, "*") == 0) {
        return false;
    }
    struct in_addr a;
    return inet_pton(AF_INET, host, &a) != 1;
}

int conf_addr_with_host(const char *s, const char *host, unsigned flags, struct conf_addr *out,
                        struct errbuf *eb)
{
    char h[256];
    const char *port;
    bool is_bracketed;
    if (split_host_port(s, h, sizeof(h), &port, &is_bracketed, eb) != 0) {
        return -KEEL_ECONFIG;
    }
    char text[300];
    bool v6 = strchr(host, ':') != NULL;
    (void)snprintf(text, sizeof(text), "%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
    return conf_parse_addr(text, flags & CONF_ADDR_NO_RESOLVE, out, eb);
}

int conf_parse_addr(const char *s, unsigned flags, struct conf_addr *out, struct errbuf *eb)
{
    char host[256];
    const char *port_text;
    bool is_bracketed;
    int rc = split_host_port(s, host, sizeof(host), &port_text, &is_bracketed, eb);
    if (rc != 0) {
        return rc;
    }
    uint64_t port;
    if (conf_parse_uint(port_text, &port, eb) != 0 || port < 1 || port > 65535) {
        errbuf_set(eb, "port must be between 1 and 65535");
        return -KEEL_ECONFIG;
    }
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&out->sa;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->sa;
    if (!is_bracketed && (host[0] == '\0' || strcmp(host, "*") == 0)) {
        if ((flags & CONF_ADDR_LISTEN) == 0) {
            errbuf_set(eb, "missing host (expected HOST:PORT)");
            return -KEEL_ECONFIG;
        }
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        out->salen = sizeof(*s4);
        out->host_omitted = true;
    } else if (is_bracketed) {
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) {
            errbuf_set(eb, "invalid IPv6 address \"%.64s\"", host);
            return -KEEL_ECONFIG;
        }
        s6->sin6_family = AF_INET6;
        out->salen = sizeof(*s6);
    } else if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        out->salen = sizeof(*s4);
    } else {
        if (conf_check_host(host, eb) != 0) {
            return -KEEL_ECONFIG;
        }
        if (flags & CONF_ADDR_NO_RESOLVE) {
            errbuf_set(eb, "host names are not resolved here, use an IP address");
            return -KEEL_ECONFIG;
        }
        rc = resolve(host, out, eb);
        if (rc != 0) {
            return rc;
        }
    }
    if (out->sa.ss_family == AF_INET6) {
        s6->sin6_port = htons((uint16_t)port);
    } else {
        s4->sin_port = htons((uint16_t)port);
    }
    addr_text(out);
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Generic setters
 * ------------------------------------------------------------------------------------------ */

static void *field(void *obj, const struct conf_directive *d)
{
    return (char *)obj + d->offset;
}

static void store_uint(void *obj, const struct conf_directive *d, uint64_t v)
{
    if (d->size == sizeof(uint64_t)) {
        *(uint64_t *)field(obj, d) = v;
    } else {
        *(uint32_t *)field(obj, d) = (uint32_t)v;
    }
}

static int bad_value(struct conf_parser *cp, const struct conf_token *tok, const struct errbuf *eb)
{
    conf_error(cp, &tok[1], "invalid value \"%s\" for \"%s\": %s", tok[1].text, tok[0].text,
               eb->msg);
    return -KEEL_ECONFIG;
}

int conf_set_uint(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                  const struct conf_token *tok, size_t n)
{
    (void)n;
    struct errbuf eb;
    uint64_t v;
    if (conf_parse_uint(tok[1].text, &v, &eb) != 0) {
        return bad_value(cp, tok, &eb);
    }
    if (v < d->min || v > d->max) {
        errbuf_set(&eb, "must be between %llu and %llu", (unsigned long long)d->min,
                   (unsigned long long)d->max);
        return bad_value(cp, tok, &eb);
    }
    store_uint(obj, d, v);
    return 0;
}

int conf_set_duration(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                      const struct conf_token *tok, size_t n)
{
    (void)n;
    struct errbuf eb;
    uint64_t v;
    if (conf_parse_duration_ms(tok[1].text, &v, &eb) != 0) {
        return bad_value(cp, tok, &eb);
    }
    if (v < d->min || v > d->max) {
        char lo[32], hi[32];
        conf_format_duration(d->min, lo, sizeof(lo));
        conf_format_duration(d->max, hi, sizeof(hi));
        errbuf_set(&eb, "must be between %s and %s", lo, hi);
        return bad_value(cp, tok, &eb);
    }
    store_uint(obj, d, v);
    return 0;
}

int conf_set_size(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                  const struct conf_token *tok, size_t n)
{
    (void)n;
    struct errbuf eb;
    uint64_t v;
    if (conf_parse_size(tok[1].text, &v, &eb) != 0) {
        return bad_value(cp, tok, &eb);
    }
    if (v < d->min || v > d->max) {
        char lo[32], hi[32];
        conf_format_size(d->min, lo, sizeof(lo));
        conf_format_size(d->max, hi, sizeof(hi));
        errbuf_set(&eb, "must be between %s and %s", lo, hi);
        return bad_value(cp, tok, &eb);
    }
    store_uint(obj, d, v);
    return 0;
}

int conf_set_enum(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                  const struct conf_token *tok, size_t n)
{
    (void)n;
    struct conf_match m;
    conf_match_init(&m);
    char choices[160] = "";
    size_t len = 0;
    for (const struct conf_enum *e = d->values; e->name != NULL; e++) {
        if (strcmp(e->name, tok[1].text) == 0) {
            *(int *)field(obj, d) = e->value;
            return 0;
        }
        conf_match_try(&m, tok[1].text, e->name);
        int w = snprintf(choices + len, sizeof(choices) - len, "%s%s", len ? ", " : "", e->name);
        if (w > 0 && (size_t)w < sizeof(choices) - len) {
            len += (size_t)w;
        }
    }
    struct errbuf eb;
    if (m.best != NULL) {
        errbuf_set(&eb, "expected one of %s (did you mean \"%s\"?)", choices, m.best);
    } else {
        errbuf_set(&eb, "expected one of %s", choices);
    }
    return bad_value(cp, tok, &eb);
}

int conf_set_flag(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                  const struct conf_token *tok, size_t n)
{
    (void)cp;
    (void)tok;
    (void)n;
    *(bool *)field(obj, d) = true;
    return 0;
}

int conf_set_onoff(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                   const struct conf_token *tok, size_t n)
{
    (void)n;
    if (strcmp(tok[1].text, "on") == 0 || strcmp(tok[1].text, "off") == 0) {
        *(bool *)field(obj, d) = tok[1].text[1] == 'n';
        return 0;
    }
    conf_error(cp, &tok[1], "invalid value \"%s\" for \"%s\": expected on or off", tok[1].text,
               d->name);
    return -KEEL_ECONFIG;
}

int conf_set_string(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                    const struct conf_token *tok, size_t n)
{
    (void)n;
    struct errbuf eb;
    if (tok[1].len == 0 || tok[1].len >= d->size) {
        errbuf_set(&eb, "must be 1 to %zu bytes long", d->size - 1);
        return bad_value(cp, tok, &eb);
    }
    memcpy(field(obj, d), tok[1].text, tok[1].len + 1);
    return 0;
}

int conf_set_name(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                  const struct conf_token *tok, size_t n)
{
    (void)n;
    struct errbuf eb;
    if (conf_check_name(tok[1].text, &eb) != 0) {
        return bad_value(cp, tok, &eb);
    }
    (void)snprintf(field(obj, d), d->size, "%s", tok[1].text); /* d->size >= CONF_NAME_MAX */
    return 0;
}

int conf_set_node_names(struct conf_parser *cp, const struct conf_token *tok, size_t n,
                        char (*names)[CONF_NAME_MAX], uint32_t *n_names, uint32_t max)
{
    if (n - 1 > max) {
        conf_error(cp, &tok[1 + max], "too many nodes (at most %u)", max);
        return -KEEL_ECONFIG;
    }
    int rc = 0;
    for (size_t i = 1; i < n; i++) {
        struct errbuf eb;
        if (conf_check_name(tok[i].text, &eb) != 0) {
            conf_error(cp, &tok[i], "invalid node name \"%s\": %s", tok[i].text, eb.msg);
            rc = -KEEL_ECONFIG;
            continue;
        }
        for (uint32_t k = 0; k < *n_names; k++) {
            if (strcmp(names[k], tok[i].text) == 0) {
                conf_error(cp, &tok[i], "node \"%s\" listed twice", tok[i].text);
                rc = -KEEL_ECONFIG;
            }
        }
        (void)snprintf(names[(*n_names)++], CONF_NAME_MAX, "%s", tok[i].text);
    }
    return rc;
}

int conf_set_dcs(struct conf_parser *cp, const struct conf_token *tok, size_t n, char (*dcs)[256],
                 uint32_t *n_dcs)
{
    if (strcmp(tok[1].text, "etcd") != 0) {
        conf_error(cp, &tok[1], "invalid value \"%s\" for \"dcs\": only etcd is supported",
                   tok[1].text);
        return -KEEL_ECONFIG;
    }
    if (n - 2 > CONF_DB_MAX_DCS) {
        conf_error(cp, &tok[2 + CONF_DB_MAX_DCS], "too many etcd endpoints (at most %d)",
                   CONF_DB_MAX_DCS);
        return -KEEL_ECONFIG;
    }
    int rc = 0;
    for (size_t i = 2; i < n; i++) {
        const char *url = tok[i].text;
        struct conf_addr addr;
        struct errbuf eb;
        if (strncmp(url, "http://", 7) != 0 || strchr(url + 7, '/') != NULL ||
            conf_parse_addr(url + 7, CONF_ADDR_NO_RESOLVE, &addr, &eb) != 0) {
            conf_error(cp, &tok[i], "invalid etcd endpoint \"%s\": expected http://IP:PORT", url);
            rc = -KEEL_ECONFIG;
            continue;
        }
        (void)snprintf(dcs[(*n_dcs)++], 256, "%s", url);
    }
    return rc;
}

int conf_set_addr(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                  const struct conf_token *tok, size_t n)
{
    (void)n;
    struct errbuf eb;
    unsigned flags = (unsigned)d->min;
    if (conf_parser_flags(cp) & CONF_LOAD_NO_RESOLVE) {
        flags |= CONF_ADDR_NO_RESOLVE;
    }
    if (conf_parse_addr(tok[1].text, flags, field(obj, d), &eb) != 0) {
        return bad_value(cp, tok, &eb);
    }
    return 0;
}
