/* SPDX-License-Identifier: MIT */
/* Form decoding and user-text checks for the demo application (see demo_form.h). */
#include "demo/demo_form.h"

#include <errno.h>
#include <string.h>

#include "http/http_parse.h"

/* Decode s[0, len) ('+' a blank, %XX a byte) into out (size bytes, NUL-terminated).
 * Returns the decoded length, -EINVAL or -ENOSPC. */
static int decode(const char *s, size_t len, char *out, size_t size)
{
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < len ? http_hex_value((unsigned char)s[i + 1]) : -1;
            int lo = hi >= 0 ? http_hex_value((unsigned char)s[i + 2]) : -1;
            if (lo < 0) {
                return -EINVAL;
            }
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (k + 1 >= size) {
            return -ENOSPC;
        }
        out[k++] = (char)c;
    }
    if (size == 0) {
        return -ENOSPC;
    }
    out[k] = '\0';
    return (int)k;
}

int demo_form_get(const char *s, size_t len, const char *name, char *out, size_t size)
{
    if (size > 0) {
        out[0] = '\0';
    }
    size_t want = strlen(name);
    size_t pos = 0;
    while (pos <= len) {
        const char *amp = memchr(s + pos, '&', len - pos);
        size_t end = amp != NULL ? (size_t)(amp - s) : len;
        const char *eq = memchr(s + pos, '=', end - pos);
        size_t key_end = eq != NULL ? (size_t)(eq - s) : end;
        /* A field name longer than the one wanted cannot match once decoded: %XX only
         * shortens, so 3 bytes per character is the longest an equal name can be. */
        char key[64];
        if (key_end - pos <= 3 * want && key_end - pos < sizeof(key) &&
            decode(s + pos, key_end - pos, key, sizeof(key)) == (int)want &&
            memcmp(key, name, want) == 0) {
            size_t v = eq != NULL ? key_end + 1 : end;
            int rc = decode(s + v, end - v, out, size);
            if (rc < 0 && size > 0) {
                out[0] = '\0';
            }
            return rc;
        }
        if (amp == NULL) {
            break;
        }
        pos = end + 1;
    }
    return -ENOENT;
}

size_t demo_utf8_seq(const unsigned char *s, size_t len)
{
    if (len == 0) {
        return 0;
    }
    unsigned char c = s[0];
    if (c < 0x80) {
        return 1;
    }
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlong forms */
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80; /* no overlong forms */
        hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (len < n || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) {
            return 0;
        }
    }
    return n;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int demo_form_text(char *t, size_t *len, size_t max_chars, bool is_multiline, const char **why)
{
    size_t start = 0, end = *len;
    while (start < end && is_blank(t[start])) {
        start++;
    }
    while (end > start && is_blank(t[end - 1])) {
        end--;
    }
    size_t k = 0, chars = 0;
    for (size_t i = start; i < end;) {
        const unsigned char *p = (const unsigned char *)t + i;
        size_t n = demo_utf8_seq(p, end - i);
        if (n == 0) {
            *why = "is not valid UTF-8";
            return -EINVAL;
        }
        unsigned char c = p[0];
        bool is_c1 = n == 2 && c == 0xC2 && p[1] < 0xA0; /* U+0080..U+009F */
        if (is_multiline && c == '\r') {
            t[k++] = '\n'; /* CRLF or a lone CR: one LF */
            i += i + 1 < end && t[i + 1] == '\n' ? 2 : 1;
            chars++;
            continue;
        }
        if ((n == 1 && (c < 0x20 || c == 0x7F) && !(is_multiline && (c == '\n' || c == '\t'))) ||
            is_c1) {
            *why = "contains control characters";
            return -EINVAL;
        }
        memmove(t + k, p, n);
        k += n;
        i += n;
        chars++;
    }
    if (chars > max_chars) {
        *why = "is too long";
        return -EINVAL;
    }
    if (k == 0) {
        *why = "is empty";
        return -EINVAL;
    }
    t[k] = '\0';
    *len = k;
    return 0;
}

const char *demo_html_entity(char c)
{
    switch (c) {
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '&':
        return "&amp;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    default:
        return NULL;
    }
}
