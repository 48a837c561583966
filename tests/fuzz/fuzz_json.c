/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the JSON reader (src/core/json.c) and the base64 codec
 * (src/core/base64.c). Each input is parsed as JSON whole and as a prefix whose remaining
 * bytes are poisoned under ASan (so reading past len is caught); both parses must agree with
 * a parse of an exact copy. A parsed document is walked and checked (strings NUL-terminated,
 * valid UTF-8, lookups consistent, json_int agreeing with json_num), then written back with
 * the writer (core/json_write.c) and re-parsed: the result must be equal. An error must name
 * a position inside the input. The input also goes through json_w_strn (whose output must
 * parse back to it, or to U+FFFD where it is not UTF-8), base64 encode/decode
 * (decode(encode(x)) == x) and base64 decode of the raw bytes (a valid input must re-encode
 * to itself: the decoder is canonical). Under gcc, replay_main.c drives it. */
#include "core/base64.h"
#include "core/json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_TARGET "fuzz_json"
#include "fuzz_util.h"

/* An independent UTF-8 check (RFC 3629), so a bug shared with json.c is not hidden. */
static bool utf8_valid_no_nul(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k;
        if (s[i] == 0) {
            return false;
        } else if (s[i] < 0x80) {
            i++;
            continue;
        } else if ((s[i] & 0xe0) == 0xc0) {
            k = 2;
            cp = s[i] & 0x1f;
        } else if ((s[i] & 0xf0) == 0xe0) {
            k = 3;
            cp = s[i] & 0x0f;
        } else if ((s[i] & 0xf8) == 0xf0) {
            k = 4;
            cp = s[i] & 0x07;
        } else {
            return false;
        }
        if (n - i < k) {
            return false;
        }
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) {
                return false;
            }
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += k;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Document checks
 */

static void check_string(const char *s, size_t len)
{
    check(s != NULL, "string value is NULL");
    check(s[len] == '\0', "string not NUL-terminated at its length");
    check(strlen(s) == len, "string contains a NUL");
    check(utf8_valid_no_nul((const unsigned char *)s, len), "string is not valid UTF-8");
}

static void check_value(const struct json_value *v, int depth)
{
    int64_t i;
    check(depth <= JSON_MAX_DEPTH, "document deeper than the limit");
    switch (json_type(v)) {
    case JSON_NULL:
    case JSON_BOOL:
        check(!json_int(v, &i) && json_len(v) == 0 && json_str(v) == NULL, "scalar accessors");
        break;
    case JSON_NUMBER: {
        double d = json_num(v, 0);
        check(d - d == 0, "number not finite");
        /* The exact integer, rounded, is what strtod rounds the literal to. */
        check(!json_int(v, &i) || (double)i == d, "json_int disagrees with json_num");
        break;
    }
    case JSON_STRING: {
        check_string(json_str(v), json_str_len(v));
        if (json_int(v, &i) && strcmp(json_str(v), "-0") != 0) {
            char buf[32];
            (void)snprintf(buf, sizeof(buf), "%" PRId64, i);
            check(strcmp(buf, json_str(v)) == 0, "integer string is not canonical");
        }
        break;
    }
    case JSON_ARRAY:
        for (size_t k = 0; k < json_len(v); k++) {
            check(json_at(v, k) != NULL, "array element missing");
            check_value(json_at(v, k), depth + 1);
        }
        check(json_at(v, json_len(v)) == NULL && json_key_at(v, 0) == NULL, "array bounds");
        break;
    case JSON_OBJECT: {
        size_t n = json_len(v);
        for (size_t k = 0; k < n; k++) {
            const char *key = json_key_at(v, k);
            check(key != NULL, "object key missing");
            check_string(key, strlen(key));
            check_value(json_at(v, k), depth + 1);
            /* The last member with this key wins (checked on small objects: quadratic). */
            if (n <= 1000) {
                size_t last = k;
                for (size_t j = k + 1; j < n; j++) {
                    if (strcmp(json_key_at(v, j), key) == 0) {
                        last = j;
                    }
                }
                check(json_get(v, key) == json_at(v, last), "json_get: wrong duplicate wins");
            }
        }
        check(json_at(v, n) == NULL && json_key_at(v, n) == NULL, "object bounds");
        break;
    }
    default:
        check(false, "bad type");
    }
}

/* Write a parsed value back with the writer (core/json_write.c). */
static void write_value(struct json_w *w, const struct json_value *v)
{
    switch (json_type(v)) {
    case JSON_NULL:
        json_w_null(w);
        break;
    case JSON_BOOL:
        json_w_bool(w, json_bool(v, false));
        break;
    case JSON_NUMBER: {
        int64_t i;
        if (json_int(v, &i)) {
            json_w_int(w, i);
        } else {
            json_w_double(w, json_num(v, 0));
        }
        break;
    }
    case JSON_STRING:
        json_w_strn(w, json_str(v), json_str_len(v));
        break;
    case JSON_ARRAY:
        json_w_begin_array(w);
        for (size_t k = 0; k < json_len(v); k++) {
            write_value(w, json_at(v, k));
        }
        json_w_end_array(w);
        break;
    case JSON_OBJECT:
        json_w_begin_object(w);
        for (size_t k = 0; k < json_len(v); k++) {
            json_w_key(w, json_key_at(v, k));
            write_value(w, json_at(v, k));
        }
        json_w_end_object(w);
        break;
    }
}

static bool value_eq(const struct json_value *a, const struct json_value *b)
{
    if (json_type(a) != json_type(b) || json_len(a) != json_len(b)) {
        return false;
    }
    switch (json_type(a)) {
    case JSON_NULL:
        return true;
    case JSON_BOOL:
        return json_bool(a, false) == json_bool(b, false);
    case JSON_NUMBER:
        return json_num(a, 0) == json_num(b, 0);
    case JSON_STRING:
        return json_str_len(a) == json_str_len(b) &&
               memcmp(json_str(a), json_str(b), json_str_len(a)) == 0;
    case JSON_ARRAY:
    case JSON_OBJECT:
        for (size_t k = 0; k < json_len(a); k++) {
            if (json_type(a) == JSON_OBJECT && strcmp(json_key_at(a, k), json_key_at(b, k)) != 0) {
                return false;
            }
            if (!value_eq(json_at(a, k), json_at(b, k))) {
                return false;
            }
        }
        return true;
    }
    return false;
}

/* An error message is "line:col: ..." naming a byte in [0, len], or "out of memory". */
static void check_error(const char *msg, const char *text, size_t len)
{
    unsigned long line, col;
    int consumed = 0;
    if (strcmp(msg, "out of memory") == 0) {
        return;
    }
    check(sscanf(msg, "%lu:%lu: %n", &line, &col, &consumed) == 2 && consumed > 0,
          "error without line:col");
    check(line >= 1 && col >= 1 && msg[consumed] != '\0', "error position or text");
    size_t off = 0;
    for (unsigned long l = 1; l < line; l++) {
        const char *nl = memchr(text + off, '\n', len - off);
        check(nl != NULL, "error line beyond the input");
        off = (size_t)(nl - text) + 1;
    }
    check(col - 1 <= len - off, "error column beyond the input");
}

struct outcome {
    struct json_doc *doc;
    struct errbuf eb;
};

static void parse(struct outcome *r, const char *text, size_t len)
{
    memset(&r->eb, 0, sizeof(r->eb));
    r->doc = json_parse(text, len, &r->eb);
}

static bool outcome_eq(const struct outcome *a, const struct outcome *b)
{
    if ((a->doc == NULL) != (b->doc == NULL)) {
        return false;
    }
    if (a->doc == NULL) {
        return strcmp(a->eb.msg, b->eb.msg) == 0;
    }
    return value_eq(json_root(a->doc), json_root(b->doc));
}

/* Parse text[0, len) that sits in a buffer of cap bytes, the rest poisoned, and compare with
 * a parse of an exact copy. Returns the outcome of the exact copy. */
static void parse_prefix(const uint8_t *data, size_t len, size_t cap, struct outcome *exact)
{
    char *copy = malloc(len > 0 ? len : 1);
    char *wide = malloc(cap > 0 ? cap : 1);
    struct outcome in_wide;
    check(copy != NULL && wide != NULL, "out of memory");
    memcpy(copy, data, len);
    memcpy(wide, data, cap);
    poison(wide + len, cap - len);
    parse(&in_wide, wide, len);
    unpoison(wide + len, cap - len);
    parse(exact, copy, len);
    check(outcome_eq(exact, &in_wide), "bytes after len changed the result");
    if (exact->doc == NULL) {
        check_error(exact->eb.msg, copy, len);
    }
    json_free(in_wide.doc);
    free(wide);
    free(copy);
}

static void fuzz_json(const uint8_t *data, size_t size)
{
    struct outcome whole, half;
    parse_prefix(data, size, size, &whole);
    parse_prefix(data, size / 2, size, &half);
    json_free(half.doc);
    if (whole.doc == NULL) {
        return;
    }
    check_value(json_root(whole.doc), 0);
    struct json_w w;
    json_w_init(&w);
    write_value(&w, json_root(whole.doc));
    check(json_w_finish(&w) == 0, "the writer failed on a parsed document");
    struct outcome again;
    parse(&again, w.data, w.len);
    check(again.doc != NULL, "written document does not parse");
    check(value_eq(json_root(whole.doc), json_root(again.doc)), "round trip changed the value");
    json_free(again.doc);
    json_w_fini(&w);
    json_free(whole.doc);
}

/* Any bytes as a string: the text parses back, to the input itself when it is valid UTF-8
 * without NUL (otherwise the writer replaced bytes with U+FFFD). */
static void fuzz_string(const uint8_t *data, size_t size)
{
    struct json_w w;
    json_w_init(&w);
    json_w_strn(&w, (const char *)data, size);
    check(json_w_finish(&w) == 0 && strlen(w.data) == w.len, "json_w_strn failed");
    struct outcome r;
    parse(&r, w.data, w.len);
    check(r.doc != NULL, "a written string does not parse");
    check_string(json_str(json_root(r.doc)), json_str_len(json_root(r.doc)));
    bool same = json_str_len(json_root(r.doc)) == size &&
                memcmp(json_str(json_root(r.doc)), data, size) == 0;
    check(same == utf8_valid_no_nul(data, size), "a written string does not read back");
    json_free(r.doc);
    /* A fixed buffer one byte short of the text and its NUL never holds it, nor overflows. */
    char *q = malloc(w.len + 1);
    check(q != NULL, "out of memory");
    struct json_w f;
    json_w_init_fixed(&f, q, w.len);
    json_w_strn(&f, (const char *)data, size);
    check(json_w_finish(&f) == -ENOSPC, "a fixed buffer too small was not reported");
    free(q);
    json_w_fini(&w);
}

static void fuzz_base64(const uint8_t *data, size_t size)
{
    size_t enc_cap = base64_encoded_len(size) + 1, dec_cap = base64_decoded_max(size) + 1;
    char *enc = malloc(enc_cap);
    unsigned char *dec = malloc(size + 1);
    unsigned char *raw = malloc(dec_cap);
    char *again = malloc(size + 1);
    check(enc != NULL && dec != NULL && raw != NULL && again != NULL, "out of memory");

    size_t n = base64_encode(data, size, enc, enc_cap);
    check(n == enc_cap - 1 && strlen(enc) == n, "base64_encode length");
    check(base64_decode(enc, n, dec, size) == (ssize_t)size, "base64 decode(encode(x)) length");
    check(memcmp(dec, data, size) == 0, "base64 decode(encode(x)) != x");

    ssize_t m = base64_decode((const char *)data, size, raw, dec_cap);
    check(m >= -1, "base64_decode: no room with decoded_max");
    if (m >= 0) {
        check(base64_encode(raw, (size_t)m, again, size + 1) == size, "base64 re-encode length");
        check(memcmp(again, data, size) == 0, "base64: valid input is not canonical");
        if (m > 0) {
            check(base64_decode((const char *)data, size, raw, (size_t)m - 1) == -2,
                  "base64_decode: too small not reported");
        }
    }
    free(again);
    free(raw);
    free(dec);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024 * 1024) {
        return 0; /* keep the quadratic checks and copies cheap */
    }
    fuzz_json(data, size);
    fuzz_string(data, size);
    fuzz_base64(data, size);
    return 0;
}
