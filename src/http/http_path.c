/* SPDX-License-Identifier: MIT */
/* The web server's pure helpers (see http_path.h). */
#include "http/http_path.h"

#include "http/http_parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Skip "scheme://authority" of an absolute-form target. */
static size_t skip_authority(const char *t, size_t len)
{
    if (len == 0 || t[0] == '/') {
        return 0;
    }
    const char *sep = memchr(t, ':', len);
    if (sep == NULL || (size_t)(sep - t) + 3 > len || sep[1] != '/' || sep[2] != '/') {
        return len + 1; /* not a path at all */
    }
    size_t i = (size_t)(sep - t) + 3;
    while (i < len && t[i] != '/' && t[i] != '?') {
        i++;
    }
    return i;
}

/* Finish the segment out[seg, *o): drop "." and empty ones, refuse "..". */
static int end_segment(char *out, size_t seg, size_t *o)
{
    size_t n = *o - seg;
    if (n == 0 || (n == 1 && out[seg] == '.')) {
        *o = seg; /* the segment vanishes, its '/' stays as the separator */
        return 0;
    }
    if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
        return -EACCES;
    }
    return 0;
}

int http_path_normalize(const char *target, size_t len, char *out, size_t outlen, size_t *out_len)
{
    size_t i = skip_authority(target, len);
    if (i > len) {
        return -KEEL_EHTTP_BAD_REQUEST;
    }
    if (outlen < 2) {
        return -ENAMETOOLONG;
    }
    size_t o = 0, seg = 1;
    out[o++] = '/';
    if (i < len && target[i] == '/') {
        i++;
    }
    for (; i < len && target[i] != '?' && target[i] != '#'; i++) {
        char c = target[i];
        if (c == '%') {
            int hi = i + 2 < len ? http_hex_value((unsigned char)target[i + 1]) : -1;
            int lo = i + 2 < len ? http_hex_value((unsigned char)target[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                return -KEEL_EHTTP_BAD_REQUEST;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
            if (c == '\0') {
                return -KEEL_EHTTP_BAD_REQUEST;
            }
            if (c == '/' || c == '\\') {
                return -ENOENT; /* an encoded separator names no file */
            }
        } else if (c == '\0') {
            return -KEEL_EHTTP_BAD_REQUEST;
        } else if (c == '\\') {
            return -ENOENT;
        } else if (c == '/') {
            int rc = end_segment(out, seg, &o);
            if (rc != 0) {
                return rc;
            }
            if (o > 0 && out[o - 1] == '/') {
                seg = o;
                continue; /* collapse "//" and "/./" */
            }
        }
        if (o + 1 >= outlen) {
            return -ENAMETOOLONG;
        }
        out[o++] = c;
        if (c == '/') {
            seg = o;
        }
    }
    int rc = end_segment(out, seg, &o);
    if (rc != 0) {
        return rc;
    }
    out[o] = '\0';
    *out_len = o;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Range
 * ------------------------------------------------------------------------------------------ */

static bool parse_u64(const char **p, const char *end, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        if (x > (UINT64_MAX - 9) / 10) {
            return false;
        }
        x = x * 10 + (uint64_t)(*s - '0');
        s++;
    }
    if (s == *p) {
        return false;
    }
    *p = s;
    *v = x;
    return true;
}

enum http_range_result http_range_parse(const char *value, size_t len, uint64_t size,
                                        uint64_t *first, uint64_t *last)
{
    const char *p = value, *end = value + len;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    if (len < 6 || strncasecmp(p, "bytes=", 6) != 0) {
        return HTTP_RANGE_NONE;
    }
    p += 6;
    if (memchr(p, ',', (size_t)(end - p)) != NULL) {
        return HTTP_RANGE_NONE; /* several ranges: the whole file is a valid answer */
    }
    uint64_t a = 0, b = 0;
    if (p < end && *p == '-') {
        p++;
        if (!parse_u64(&p, end, &b) || p != end) {
            return HTTP_RANGE_NONE;
        }
        if (b == 0 || size == 0) {
            return HTTP_RANGE_UNSATISFIABLE;
        }
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return HTTP_RANGE_OK;
    }
    if (!parse_u64(&p, end, &a) || p == end || *p != '-') {
        return HTTP_RANGE_NONE;
    }
    p++;
    bool has_last = p < end;
    if (has_last && (!parse_u64(&p, end, &b) || p != end || b < a)) {
        return HTTP_RANGE_NONE;
    }
    if (a >= size) {
        return HTTP_RANGE_UNSATISFIABLE;
    }
    *first = a;
    *last = !has_last || b >= size ? size - 1 : b;
    return HTTP_RANGE_OK;
}

/* ------------------------------------------------------------------------------------------
 * Dates, validators, codings
 * ------------------------------------------------------------------------------------------ */

static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void http_date_format(time_t t, char *out, size_t outlen)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    (void)snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday],
                   tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                   tm.tm_sec);
}

static int two_digits(const char *s)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9') {
        return -1;
    }
    return (s[0] - '0') * 10 + (s[1] - '0');
}

int http_date_parse(const char *s, size_t len, time_t *out)
{
    /* "Sun, 06 Nov 1994 08:49:37 GMT" is exactly 29 bytes. */
    if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || s[25] != ' ' || memcmp(s + 26, "GMT", 3) != 0) {
        return -1;
    }
    struct tm tm = {0};
    int mon = -1;
    for (int i = 0; i < 12; i++) {
        if (memcmp(s + 8, months[i], 3) == 0) {
            mon = i;
        }
    }
    int day = two_digits(s + 5), yh = two_digits(s + 12), yl = two_digits(s + 14);
    int h = two_digits(s + 17), m = two_digits(s + 20), sec = two_digits(s + 23);
    if (mon < 0 || day < 1 || day > 31 || yh < 0 || yl < 0 || h < 0 || h > 23 || m < 0 || m > 59 ||
        sec < 0 || sec > 60) {
        return -1;
    }
    tm.tm_mday = day;
    tm.tm_mon = mon;
    tm.tm_year = yh * 100 + yl - 1900;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    *out = timegm(&tm);
    return 0;
}

bool http_etag_matches(const char *value, size_t len, const char *etag)
{
    /* Weak comparison: ignore a W/ prefix on either side. */
    if (strncmp(etag, "W/", 2) == 0) {
        etag += 2;
    }
    size_t elen = strlen(etag);
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ',')) {
            i++;
        }
        size_t start = i;
        while (i < len && value[i] != ',') {
            i++;
        }
        size_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t')) {
            end--;
        }
        const char *tag = value + start;
        size_t tlen = end - start;
        if (tlen == 1 && tag[0] == '*') {
            return true;
        }
        if (tlen > 2 && tag[0] == 'W' && tag[1] == '/') {
            tag += 2;
            tlen -= 2;
        }
        if (tlen == elen && memcmp(tag, etag, elen) == 0) {
            return true;
        }
    }
    return false;
}

bool http_accepts_gzip(const char *value, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ',')) {
            i++;
        }
        size_t start = i;
        while (i < len && value[i] != ',' && value[i] != ';' && value[i] != ' ') {
            i++;
        }
        size_t tlen = i - start;
        bool is_gzip = (tlen == 4 && strncasecmp(value + start, "gzip", 4) == 0) ||
                       (tlen == 1 && value[start] == '*');
        double q = 1.0;
        while (i < len && value[i] != ',') {
            if (value[i] == ';') {
                size_t k = i + 1;
                while (k < len && value[k] == ' ') {
                    k++;
                }
                if (k + 1 < len && (value[k] == 'q' || value[k] == 'Q') && value[k + 1] == '=') {
                    q = 0;
                    k += 2;
                    /* q = 0, 0.0, 0.000 mean "not acceptable"; any non-zero digit accepts. */
                    for (; k < len && value[k] != ',' && value[k] != ';'; k++) {
                        if (value[k] >= '1' && value[k] <= '9') {
                            q = 1;
                        }
                    }
                    i = k;
                    continue;
                }
            }
            i++;
        }
        if (is_gzip && q > 0) {
            return true;
        }
    }
    return false;
}

struct mime {
    const char *ext;
    const char *type;
};

static const struct mime mime_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"wasm", "application/wasm"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"csv", "text/csv; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"map", "application/json"},
};

const char *http_mime_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash != NULL ? slash : name, '.');
    if (dot == NULL || dot[1] == '\0') {
        return "application/octet-stream";
    }
    for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++) {
        if (strcasecmp(dot + 1, mime_types[i].ext) == 0) {
            return mime_types[i].type;
        }
    }
    return "application/octet-stream";
}
