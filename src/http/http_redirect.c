/* SPDX-License-Identifier: MIT */
/* The HTTP-to-HTTPS redirect's Location (http_redirect.h). */
#include "http/http_redirect.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define HOST_MAX 255 /* a DNS name (RFC 1035 2.3.4) */

int http_redirect_status(enum http_method method)
{
    return method == HTTP_METHOD_GET || method == HTTP_METHOD_HEAD ? 301 : 308;
}

bool http_redirect_is_acme(const char *target, size_t len)
{
    size_t n = sizeof(HTTP_ACME_CHALLENGE_PREFIX) - 1;
    return len > n && memcmp(target, HTTP_ACME_CHALLENGE_PREFIX, n) == 0;
}

static bool is_name_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_';
}

/* The host part of a Host value (RFC 9110 7.2: uri-host [":" port]): its length, or 0 when
 * it is not a name, an IPv4 address or a bracketed IPv6 literal followed by an optional
 * numeric port. Only these characters can reach the Location: no CR, LF, '/', '@', space. */
static size_t host_part(const char *h, size_t len)
{
    size_t i = 0;
    if (len > 0 && h[0] == '[') {
        for (i = 1; i < len && h[i] != ']'; i++) {
            char ch = h[i];
            if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                  (ch >= 'A' && ch <= 'F') || ch == ':' || ch == '.')) {
                return 0;
            }
        }
        if (i >= len || i < 3) {
            return 0;
        }
        i++; /* the ']' */
    } else {
        while (i < len && is_name_char((unsigned char)h[i])) {
            i++;
        }
        if (i == 0 || h[0] == '.' || h[0] == '-') {
            return 0;
        }
    }
    if (i > HOST_MAX) {
        return 0;
    }
    if (i < len) { /* ":" port, 1 to 5 digits */
        if (h[i] != ':' || len - i - 1 < 1 || len - i - 1 > 5) {
            return 0;
        }
        for (size_t k = i + 1; k < len; k++) {
            if (h[k] < '0' || h[k] > '9') {
                return 0;
            }
        }
    }
    return i;
}

/* The path and query of a request target: origin-form as is, absolute-form without its
 * "scheme://authority", anything else "/" (empty). */
static void target_path(const char *t, size_t len, const char **path, size_t *path_len)
{
    *path = t;
    *path_len = len;
    if (len > 0 && t[0] == '/') {
        return;
    }
    const char *sep = len > 3 ? memchr(t, ':', len) : NULL;
    if (sep != NULL && (size_t)(t + len - sep) >= 3 && memcmp(sep, "://", 3) == 0) {
        const char *a = sep + 3, *end = t + len;
        while (a < end && *a != '/' && *a != '?') {
            a++;
        }
        *path = a;
        *path_len = (size_t)(end - a);
        return;
    }
    *path_len = 0;
}

int http_redirect_location(const char *host, size_t host_len, uint16_t port, const char *target,
                           size_t target_len, char *out, size_t cap)
{
    size_t hl = host_part(host, host_len);
    if (hl == 0) {
        return -EINVAL;
    }
    const char *path;
    size_t plen;
    target_path(target, target_len, &path, &plen);
    char portbuf[8] = "";
    if (port != 443) {
        (void)snprintf(portbuf, sizeof(portbuf), ":%u", (unsigned)port);
    }
    int n = snprintf(out, cap, "https://%.*s%s%s", (int)hl, host, portbuf,
                     plen == 0 || path[0] != '/' ? "/" : "");
    if (n < 0 || (size_t)n >= cap) {
        return -ENOSPC;
    }
    size_t o = (size_t)n;
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < plen; i++) {
        unsigned char ch = (unsigned char)path[i];
        bool escape = ch <= 0x20 || ch >= 0x7f;
        if (o + (escape ? 3 : 1) >= cap) {
            return -ENOSPC;
        }
        if (escape) {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    return (int)o;
}
