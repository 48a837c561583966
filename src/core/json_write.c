/* SPDX-License-Identifier: MIT */
/* The JSON writer of core/json.h: keel's one producer of JSON text. It owns escaping and the
 * nesting state (commas, colons, matching ends); callers own what the documents mean. It
 * does no I/O. The reader is json.c. */
#include "core/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void json_w_init(struct json_w *w)
{
    memset(w, 0, sizeof(*w));
}

void json_w_init_fixed(struct json_w *w, char *buf, size_t size)
{
    memset(w, 0, sizeof(*w));
    w->data = buf;
    w->cap = size;
    w->is_fixed = true;
    if (size > 0) {
        buf[0] = '\0';
    }
}

void json_w_fini(struct json_w *w)
{
    if (w == NULL) {
        return;
    }
    if (!w->is_fixed) {
        free(w->data);
    }
    w->data = NULL;
    w->len = w->cap = 0;
}

static void fail(struct json_w *w, int err)
{
    if (w->err == 0) {
        w->err = err;
    }
}

void json_w_fail(struct json_w *w, int err)
{
    fail(w, err);
}

/* Room for n more bytes and the NUL; false (and the error set) when there is none. */
static bool reserve(struct json_w *w, size_t n)
{
    if (w->err != 0) {
        return false;
    }
    if (w->cap - w->len > n) {
        return true;
    }
    if (w->is_fixed) {
        fail(w, -ENOSPC);
        return false;
    }
    size_t cap = w->cap == 0 ? 256 : w->cap;
    while (cap - w->len <= n) {
        if (cap > SIZE_MAX / 2) {
            fail(w, -ENOMEM);
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(w->data, cap);
    if (p == NULL) {
        fail(w, -ENOMEM);
        return false;
    }
    w->data = p;
    w->cap = cap;
    return true;
}

static void put(struct json_w *w, const char *s, size_t n)
{
    if (reserve(w, n)) {
        memcpy(w->data + w->len, s, n);
        w->len += n;
        w->data[w->len] = '\0';
    }
}

static bool in_object(const struct json_w *w)
{
    return w->depth > 0 && (w->_is_object >> (w->depth - 1) & 1) != 0;
}

/* Before a value: check that one may stand here and write the comma it needs. */
static bool value_begins(struct json_w *w)
{
    if (w->err != 0) {
        return false;
    }
    if (w->depth == 0) {
        if (w->is_done) {
            fail(w, -EINVAL); /* a second top-level value */
            return false;
        }
        return true;
    }
    if (in_object(w)) {
        if (!w->has_key) {
            fail(w, -EINVAL); /* a value where a key is due */
            return false;
        }
        w->has_key = false;
        return true;
    }
    uint64_t bit = UINT64_C(1) << (w->depth - 1);
    if ((w->_has_item & bit) != 0) {
        put(w, ",", 1);
    }
    w->_has_item |= bit;
    return w->err == 0;
}

/* After a scalar or a closed container. */
static void value_ends(struct json_w *w)
{
    if (w->depth == 0 && w->err == 0) {
        w->is_done = true;
    }
}

/* ------------------------------------------------------------------------------------------
 * Strings
 * ------------------------------------------------------------------------------------------ */

/* The escape of byte c, or NULL when c is written as it is. */
static const char *escape_of(unsigned char c, char buf[7])
{
    static const char hex[] = "0123456789abcdef";
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    case 0:
        return "\\ufffd"; /* the reader refuses \u0000 */
    default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
        memcpy(buf, "\\u00", 4);
        buf[4] = hex[c >> 4];
        buf[5] = hex[c & 0xf];
        buf[6] = '\0';
        return buf;
    }
    return NULL;
}

static void put_string(struct json_w *w, const char *s, size_t len)
{
    put(w, "\"", 1);
    size_t i = 0;
    while (i < len && w->err == 0) {
        /* The longest run written as it is, then one escape. */
        size_t start = i;
        const char *esc = NULL;
        char buf[7];
        while (i < len) {
            unsigned char c = (unsigned char)s[i];
            if (c < 0x80) {
                if ((esc = escape_of(c, buf)) != NULL) {
                    break;
                }
                i++;
                continue;
            }
            size_t k = json_utf8_len((const unsigned char *)s + i, len - i);
            if (k == 0) {
                esc = "\\ufffd"; /* not UTF-8: one replacement per byte */
                break;
            }
            i += k;
        }
        put(w, s + start, i - start);
        if (esc != NULL) {
            put(w, esc, strlen(esc));
            i++;
        }
    }
    put(w, "\"", 1);
}

/* ------------------------------------------------------------------------------------------
 * The API
 * ------------------------------------------------------------------------------------------ */

static void begin(struct json_w *w, bool is_object)
{
    if (!value_begins(w)) {
        return;
    }
    if (w->depth >= JSON_MAX_DEPTH) {
        fail(w, -EINVAL); /* json_parse would refuse it */
        return;
    }
    uint64_t bit = UINT64_C(1) << w->depth;
    w->_is_object = is_object ? w->_is_object | bit : w->_is_object & ~bit;
    w->_has_item &= ~bit;
    w->depth++;
    put(w, is_object ? "{" : "[", 1);
}

static void end(struct json_w *w, bool is_object)
{
    if (w->err != 0) {
        return;
    }
    if (w->depth == 0 || in_object(w) != is_object || w->has_key) {
        fail(w, -EINVAL);
        return;
    }
    w->depth--;
    put(w, is_object ? "}" : "]", 1);
    value_ends(w);
}

void json_w_begin_object(struct json_w *w)
{
    begin(w, true);
}

void json_w_end_object(struct json_w *w)
{
    end(w, true);
}

void json_w_begin_array(struct json_w *w)
{
    begin(w, false);
}

void json_w_end_array(struct json_w *w)
{
    end(w, false);
}

void json_w_key(struct json_w *w, const char *key)
{
    if (w->err != 0) {
        return;
    }
    if (!in_object(w) || w->has_key || key == NULL) {
        fail(w, -EINVAL);
        return;
    }
    uint64_t bit = UINT64_C(1) << (w->depth - 1);
    if ((w->_has_item & bit) != 0) {
        put(w, ",", 1);
    }
    w->_has_item |= bit;
    put_string(w, key, strlen(key));
    put(w, ":", 1);
    w->has_key = true;
}

/* A scalar's literal text. */
static void scalar(struct json_w *w, const char *text, size_t n)
{
    if (value_begins(w)) {
        put(w, text, n);
        value_ends(w);
    }
}

void json_w_strn(struct json_w *w, const char *s, size_t len)
{
    if (s == NULL) {
        json_w_null(w);
    } else if (value_begins(w)) {
        put_string(w, s, len);
        value_ends(w);
    }
}

void json_w_str(struct json_w *w, const char *s)
{
    json_w_strn(w, s, s != NULL ? strlen(s) : 0);
}

void json_w_int(struct json_w *w, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRId64, v);
    scalar(w, num, (size_t)n);
}

void json_w_uint(struct json_w *w, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRIu64, v);
    scalar(w, num, (size_t)n);
}

void json_w_bool(struct json_w *w, bool v)
{
    scalar(w, v ? "true" : "false", v ? 4 : 5);
}

void json_w_null(struct json_w *w)
{
    scalar(w, "null", 4);
}

void json_w_num(struct json_w *w, double v, int decimals)
{
    char num[352]; /* %.17f of DBL_MAX: 309 digits, the point, 17 decimals, a sign */
    if (!isfinite(v)) {
        json_w_null(w);
        return;
    }
    decimals = decimals < 0 ? 0 : decimals > 17 ? 17 : decimals;
    int n = snprintf(num, sizeof(num), "%.*f", decimals, v);
    if (n < 0 || (size_t)n >= sizeof(num)) {
        fail(w, -EINVAL);
        return;
    }
    scalar(w, num, (size_t)n);
}

void json_w_double(struct json_w *w, double v)
{
    char num[32];
    if (!isfinite(v)) {
        json_w_null(w);
        return;
    }
    int n = 0;
    for (int digits = 15; digits <= 17; digits++) {
        n = snprintf(num, sizeof(num), "%.*g", digits, v);
        if (strtod(num, NULL) == v) {
            break;
        }
    }
    scalar(w, num, (size_t)n);
}

int json_w_finish(const struct json_w *w)
{
    if (w->err != 0) {
        return w->err;
    }
    return w->is_done ? 0 : -EINVAL;
}

char *json_w_take(struct json_w *w, size_t *len)
{
    if (w->is_fixed || json_w_finish(w) != 0) {
        json_w_fini(w);
        return NULL;
    }
    char *text = w->data;
    *len = w->len;
    w->data = NULL;
    json_w_fini(w);
    json_w_init(w);
    return text;
}
