/* SPDX-License-Identifier: MIT */
/* The JSON reader (RFC 8259) behind core/json.h (the writer is json_write.c). It owns parsing
 * and the read-only tree; it does no I/O and knows nothing about what the documents mean.
 *
 * One recursive-descent parser runs twice over the text. The first run (measuring) checks
 * everything, reports the first error with its position, and counts what the tree needs: the
 * value slots, the bytes of decoded strings, and the child count of every container in
 * pre-order. The second run (building) fills one allocation of exactly that size: when a
 * container opens, its children get consecutive slots, so json_at is O(1) and no value ever
 * moves. The second run cannot fail; a disagreement between the runs is a bug and aborts.
 *
 * Memory: 24-byte slots, one per value and one per object key, plus the decoded strings with
 * their NULs, plus 4 bytes per container while parsing. The densest input, "[0,0,0,...]",
 * needs 12 bytes per input byte: about 192 MiB at JSON_MAX_LEN. */
#include "core/json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct json_value {
    union {
        struct {
            const char *s; /* NUL-terminated; object keys are strings too */
            size_t len;
        } str;
        struct {
            struct json_value *items; /* arrays: n values; objects: n (key, value) pairs */
            size_t n;
        } kids;
        struct {
            double d;
            int64_t i; /* valid when is_int */
        } num;
    } u;
    unsigned char type; /* enum json_type */
    bool boolean;
    bool is_int;
};

struct json_doc {
    size_t n_slots;
    struct json_value slots[]; /* slots[0] is the root; the strings follow the slots */
};

struct parser {
    const char *text;
    size_t len;
    size_t off;
    struct errbuf *eb;
    bool is_building;
    /* Containers' child counts in pre-order, written by the measuring run. */
    uint32_t *counts;
    size_t n_counts;
    size_t cap_counts;
    size_t next_count; /* building: the next container's index in counts */
    /* Measuring: totals. Building: where the next slot and string go. */
    size_t n_slots;
    size_t n_str_bytes;
    struct json_value *slot_next;
    struct json_value *slot_end;
    char *str_next;
    char *str_end;
};

/* An invariant that only a bug in this file can break: crash rather than build a bad tree. */
static void must(bool ok)
{
    if (!ok) {
        abort();
    }
}

/* ---------------------------------------------------------------------------------------
 * Errors
 */

/* Describe the byte at off for a message: 'x', byte 0x01, or end of input. */
static const char *describe(const struct parser *ps, size_t off, char *buf, size_t size)
{
    if (off >= ps->len) {
        return "end of input";
    }
    unsigned char c = (unsigned char)ps->text[off];
    if (c >= 0x20 && c < 0x7f && c != '\'') {
        (void)snprintf(buf, size, "'%c'", c); /* fits: 4 bytes */
    } else {
        (void)snprintf(buf, size, "byte 0x%02x", c); /* fits: 10 bytes */
    }
    return buf;
}

/* Line (counting LF) and byte column of off, both from 1. Computed only on error. */
static void position(const struct parser *ps, size_t off, size_t *line, size_t *col)
{
    size_t l = 1, line_start = 0;
    for (size_t i = 0; i < off && i < ps->len; i++) {
        if (ps->text[i] == '\n') {
            l++;
            line_start = i + 1;
        }
    }
    *line = l;
    *col = off - line_start + 1;
}

static bool __attribute__((format(printf, 3, 4)))
fail(struct parser *ps, size_t off, const char *fmt, ...)
{
    char msg[256];
    size_t line, col;
    va_list ap;
    must(!ps->is_building);
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap); /* messages are short; truncation is harmless */
    va_end(ap);
    position(ps, off, &line, &col);
    errbuf_set(ps->eb, "%zu:%zu: %s", line, col, msg);
    return false;
}

static bool fail_expected(struct parser *ps, const char *what)
{
    char buf[16];
    return fail(ps, ps->off, "expected %s, found %s", what,
                describe(ps, ps->off, buf, sizeof(buf)));
}

/* ---------------------------------------------------------------------------------------
 * Bytes
 */

static int peek(const struct parser *ps)
{
    return ps->off < ps->len ? (unsigned char)ps->text[ps->off] : -1;
}

static void skip_ws(struct parser *ps)
{
    while (ps->off < ps->len) {
        char c = ps->text[ps->off];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return;
        }
        ps->off++;
    }
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

size_t json_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) {
            lo = 0xa0;
        } else if (c == 0xed) {
            hi = 0x9f;
        }
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) {
            lo = 0x90;
        } else if (c == 0xf4) {
            hi = 0x8f;
        }
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }
    return len;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* ---------------------------------------------------------------------------------------
 * Strings (RFC 8259 section 7)
 */

/* Read the 4 hex digits of a \u escape whose backslash is at off. */
static bool read_hex4(struct parser *ps, size_t off, uint32_t *cp)
{
    uint32_t v = 0;
    if (ps->len - off < 6) {
        return fail(ps, off, "invalid \\u escape (expected 4 hex digits)");
    }
    for (size_t i = off + 2; i < off + 6; i++) {
        char c = ps->text[i];
        uint32_t d;
        if (c >= '0' && c <= '9') {
            d = (uint32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = (uint32_t)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            d = (uint32_t)(c - 'A' + 10);
        } else {
            return fail(ps, off, "invalid \\u escape (expected 4 hex digits)");
        }
        v = v << 4 | d;
    }
    *cp = v;
    return true;
}

/* Decode the \u escape (or surrogate pair) at ps->off into a code point and move past it. */
static bool read_u_escape(struct parser *ps, uint32_t *cp)
{
    size_t start = ps->off;
    uint32_t hi, lo;
    if (!read_hex4(ps, start, &hi)) {
        return false;
    }
    ps->off += 6;
    if (hi == 0) {
        return fail(ps, start, "\\u0000 is not allowed in strings");
    }
    if (hi >= 0xdc00 && hi <= 0xdfff) {
        return fail(ps, start, "lone low surrogate \\u%04X", (unsigned)hi);
    }
    if (hi < 0xd800 || hi > 0xdbff) {
        *cp = hi;
        return true;
    }
    if (ps->len - ps->off < 2 || ps->text[ps->off] != '\\' || ps->text[ps->off + 1] != 'u') {
        return fail(ps, start, "lone high surrogate \\u%04X", (unsigned)hi);
    }
    if (!read_hex4(ps, ps->off, &lo)) {
        return false;
    }
    if (lo < 0xdc00 || lo > 0xdfff) {
        return fail(ps, start, "lone high surrogate \\u%04X", (unsigned)hi);
    }
    ps->off += 6;
    *cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
    return true;
}

/* Read one escape sequence at ps->off (a backslash) into out[0, 4); returns its decoded
 * length, or 0 on error. */
static size_t read_escape(struct parser *ps, char *out)
{
    static const char simple_in[] = "\"\\/bfnrt";
    static const char simple_out[] = "\"\\/\b\f\n\r\t";
    char buf[16];
    int c = ps->off + 1 < ps->len ? (unsigned char)ps->text[ps->off + 1] : -1;
    if (c == 'u') {
        uint32_t cp = 0;
        return read_u_escape(ps, &cp) ? utf8_encode(cp, out) : 0;
    }
    const char *p = c > 0 ? strchr(simple_in, c) : NULL;
    if (p == NULL) {
        (void)fail(ps, ps->off, "invalid escape: %s after '\\'",
                   describe(ps, ps->off + 1, buf, sizeof(buf)));
        return 0;
    }
    out[0] = simple_out[p - simple_in];
    ps->off += 2;
    return 1;
}

/* Parse the string at ps->off (an opening quote). Measuring: count its decoded bytes and NUL.
 * Building: decode it into the string area and point v at it. */
static bool parse_string(struct parser *ps, struct json_value *v)
{
    size_t start = ps->off;
    char *dst = ps->str_next; /* NULL while measuring */
    size_t n = 0;
    ps->off++;
    for (;;) {
        if (ps->off >= ps->len) {
            size_t line, col;
            position(ps, start, &line, &col);
            return fail(ps, ps->off, "unterminated string (opened at %zu:%zu)", line, col);
        }
        unsigned char c = (unsigned char)ps->text[ps->off];
        char tmp[4];
        size_t k;
        if (c == '"') {
            ps->off++;
            break;
        } else if (c == '\\') {
            k = read_escape(ps, tmp);
            if (k == 0) {
                return false;
            }
            if (dst != NULL) {
                must((size_t)(ps->str_end - dst) > n + k);
                memcpy(dst + n, tmp, k);
            }
        } else if (c < 0x20) {
            return fail(ps, ps->off, "unescaped control character 0x%02x in string", c);
        } else {
            k = json_utf8_len((const unsigned char *)ps->text + ps->off, ps->len - ps->off);
            if (k == 0) {
                return fail(ps, ps->off, "invalid UTF-8 in string");
            }
            if (dst != NULL) {
                must((size_t)(ps->str_end - dst) > n + k);
                memcpy(dst + n, ps->text + ps->off, k);
            }
            ps->off += k;
        }
        n += k;
    }
    if (ps->is_building) {
        must((size_t)(ps->str_end - dst) > n);
        dst[n] = '\0';
        ps->str_next = dst + n + 1;
        v->type = JSON_STRING;
        v->u.str.s = dst;
        v->u.str.len = n;
    } else {
        ps->n_str_bytes += n + 1;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Numbers (RFC 8259 section 6)
 */

/* The parts of a number literal that json_int needs. */
struct number_parts {
    bool is_negative;
    const char *int_digits; /* at least one digit */
    size_t n_int;
    const char *frac_digits; /* may be empty */
    size_t n_frac;
    long exp; /* saturated to +-JSON_EXP_SAT */
};

#define JSON_EXP_SAT 100000L

static char digit_at(const struct number_parts *np, size_t i)
{
    return i < np->n_int ? np->int_digits[i] : np->frac_digits[i - np->n_int];
}

/* Whether the literal's exact decimal value is an integer in int64 range, and which. */
static bool number_exact_int(const struct number_parts *np, int64_t *out)
{
    size_t n = np->n_int + np->n_frac, first = 0, last = n;
    while (first < n && digit_at(np, first) == '0') {
        first++;
    }
    if (first == n) {
        *out = 0; /* 0, -0, 0.000, 0e99 */
        return true;
    }
    while (digit_at(np, last - 1) == '0') {
        last--;
    }
    /* value = digits[first, last) * 10^pow */
    long pow = np->exp - (long)np->n_frac + (long)(n - last);
    if (pow < 0 || (long)(last - first) + pow > 19) {
        return false; /* a fraction, or more than 19 digits: beyond int64 */
    }
    uint64_t mag = 0;
    for (size_t i = first; i < last; i++) {
        mag = mag * 10 + (uint64_t)(digit_at(np, i) - '0'); /* <= 19 digits: no overflow */
    }
    for (long i = 0; i < pow; i++) {
        if (mag > UINT64_MAX / 10) {
            return false;
        }
        mag *= 10;
    }
    if (np->is_negative) {
        if (mag > (uint64_t)INT64_MAX + 1) {
            return false;
        }
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX) {
            return false;
        }
        *out = (int64_t)mag;
    }
    return true;
}

/* Scan the digits at ps->off; returns how many. */
static size_t scan_digits(struct parser *ps)
{
    size_t start = ps->off;
    while (is_digit(peek(ps))) {
        ps->off++;
    }
    return ps->off - start;
}

/* Check the literal at ps->off against the grammar and split it into np. */
static bool scan_number(struct parser *ps, struct number_parts *np)
{
    memset(np, 0, sizeof(*np));
    if (peek(ps) == '-') {
        np->is_negative = true;
        ps->off++;
    }
    np->int_digits = ps->text + ps->off;
    if (peek(ps) == '0') {
        ps->off++;
        if (is_digit(peek(ps))) {
            return fail(ps, ps->off, "leading zeros are not allowed in numbers");
        }
    } else if (!is_digit(peek(ps))) {
        return fail_expected(ps, "a digit after '-'");
    } else {
        (void)scan_digits(ps);
    }
    np->n_int = (size_t)(ps->text + ps->off - np->int_digits);
    if (peek(ps) == '.') {
        ps->off++;
        np->frac_digits = ps->text + ps->off;
        np->n_frac = scan_digits(ps);
        if (np->n_frac == 0) {
            return fail_expected(ps, "a digit after '.'");
        }
    }
    if (peek(ps) == 'e' || peek(ps) == 'E') {
        bool is_neg_exp = false;
        ps->off++;
        if (peek(ps) == '+' || peek(ps) == '-') {
            is_neg_exp = peek(ps) == '-';
            ps->off++;
        }
        if (!is_digit(peek(ps))) {
            return fail_expected(ps, "a digit in the exponent");
        }
        while (is_digit(peek(ps))) {
            long d = ps->text[ps->off] - '0';
            np->exp = np->exp >= JSON_EXP_SAT ? JSON_EXP_SAT : np->exp * 10 + d;
            ps->off++;
        }
        np->exp = is_neg_exp ? -np->exp : np->exp;
    }
    return true;
}

static bool parse_number(struct parser *ps, struct json_value *v)
{
    size_t start = ps->off;
    struct number_parts np;
    char copy[JSON_MAX_NUMBER_LEN + 1];
    if (!scan_number(ps, &np)) {
        return false;
    }
    size_t n = ps->off - start;
    if (n > JSON_MAX_NUMBER_LEN) {
        return fail(ps, start, "number too long (%zu bytes, max %d)", n, JSON_MAX_NUMBER_LEN);
    }
    /* strtod needs a NUL-terminated copy: the text is not terminated and must not be read
     * past the literal. The grammar was checked above (no hex, no "inf"), so strtod in the C
     * locale (keel never calls setlocale) consumes exactly these bytes. */
    memcpy(copy, ps->text + start, n);
    copy[n] = '\0';
    char *end;
    double d = strtod(copy, &end);
    must(end == copy + n);
    if (isinf(d)) {
        return fail(ps, start, "number out of range");
    }
    v->type = JSON_NUMBER;
    v->u.num.d = d;
    v->is_int = number_exact_int(&np, &v->u.num.i);
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Values
 */

static bool parse_value(struct parser *ps, struct json_value *v, int depth);

static bool parse_literal(struct parser *ps, struct json_value *v, const char *word,
                          enum json_type type, bool boolean)
{
    size_t n = strlen(word);
    if (ps->len - ps->off < n || memcmp(ps->text + ps->off, word, n) != 0) {
        return fail(ps, ps->off, "invalid literal (expected %s)", word);
    }
    ps->off += n;
    v->type = (unsigned char)type;
    v->boolean = boolean;
    return true;
}

/* Open a container at ps->off with the given nesting depth. Measuring: reserve its entry in
 * counts and return its index. Building: reserve slots for its children (the count the
 * measuring run found) and point v at them. Returns false on error. */
static bool open_container(struct parser *ps, struct json_value *v, int depth, size_t per_item,
                           size_t *index)
{
    if (depth > JSON_MAX_DEPTH) {
        return fail(ps, ps->off, "nesting deeper than %d", JSON_MAX_DEPTH);
    }
    ps->off++;
    if (ps->is_building) {
        must(ps->next_count < ps->n_counts);
        size_t n = ps->counts[ps->next_count++];
        must((size_t)(ps->slot_end - ps->slot_next) >= n * per_item);
        v->u.kids.items = ps->slot_next;
        v->u.kids.n = n;
        ps->slot_next += n * per_item;
        return true;
    }
    if (ps->n_counts == ps->cap_counts) {
        size_t cap = ps->cap_counts == 0 ? 64 : ps->cap_counts * 2;
        uint32_t *counts = realloc(ps->counts, cap * sizeof(*counts));
        if (counts == NULL) {
            errbuf_set(ps->eb, "out of memory");
            return false;
        }
        ps->counts = counts;
        ps->cap_counts = cap;
    }
    *index = ps->n_counts++;
    return true;
}

/* Close a container that got n children: record n (measuring) or check it (building). */
static void close_container(struct parser *ps, struct json_value *v, size_t index, size_t n,
                            size_t per_item)
{
    if (ps->is_building) {
        must(v->u.kids.n == n);
    } else {
        ps->counts[index] = (uint32_t)n; /* n <= len/2 < 2^32 */
        ps->n_slots += n * per_item;
        v->u.kids.items = NULL;
        v->u.kids.n = n;
    }
    ps->off++;
}

/* Where child i of v goes: its slot when building, a scratch value when measuring. */
static struct json_value *child_slot(struct parser *ps, struct json_value *v, size_t i,
                                     struct json_value *scratch)
{
    return ps->is_building ? &v->u.kids.items[i] : scratch;
}

static bool parse_array(struct parser *ps, struct json_value *v, int depth)
{
    size_t index = 0, n = 0;
    struct json_value scratch;
    if (!open_container(ps, v, depth, 1, &index)) {
        return false;
    }
    v->type = JSON_ARRAY;
    skip_ws(ps);
    if (peek(ps) != ']') {
        for (;;) {
            if (!parse_value(ps, child_slot(ps, v, n, &scratch), depth)) {
                return false;
            }
            n++;
            skip_ws(ps);
            if (peek(ps) == ']') {
                break;
            }
            if (peek(ps) != ',') {
                return fail_expected(ps, "',' or ']'");
            }
            ps->off++;
            skip_ws(ps);
        }
    }
    close_container(ps, v, index, n, 1);
    return true;
}

static bool parse_member(struct parser *ps, struct json_value *v, size_t n, int depth)
{
    struct json_value scratch;
    if (peek(ps) != '"') {
        return fail_expected(ps, "a string key");
    }
    if (!parse_string(ps, child_slot(ps, v, 2 * n, &scratch))) {
        return false;
    }
    skip_ws(ps);
    if (peek(ps) != ':') {
        return fail_expected(ps, "':' after the key");
    }
    ps->off++;
    skip_ws(ps);
    return parse_value(ps, child_slot(ps, v, 2 * n + 1, &scratch), depth);
}

static bool parse_object(struct parser *ps, struct json_value *v, int depth)
{
    size_t index = 0, n = 0;
    if (!open_container(ps, v, depth, 2, &index)) {
        return false;
    }
    v->type = JSON_OBJECT;
    skip_ws(ps);
    if (peek(ps) != '}') {
        for (;;) {
            if (!parse_member(ps, v, n, depth)) {
                return false;
            }
            n++;
            skip_ws(ps);
            if (peek(ps) == '}') {
                break;
            }
            if (peek(ps) != ',') {
                return fail_expected(ps, "',' or '}'");
            }
            ps->off++;
            skip_ws(ps);
        }
    }
    close_container(ps, v, index, n, 2);
    return true;
}

/* Parse the value at ps->off (whitespace already skipped) into v. depth is the number of
 * containers around it, so recursion is bounded by JSON_MAX_DEPTH. */
static bool parse_value(struct parser *ps, struct json_value *v, int depth)
{
    memset(v, 0, sizeof(*v));
    switch (peek(ps)) {
    case '{':
        return parse_object(ps, v, depth + 1);
    case '[':
        return parse_array(ps, v, depth + 1);
    case '"':
        return parse_string(ps, v);
    case 't':
        return parse_literal(ps, v, "true", JSON_BOOL, true);
    case 'f':
        return parse_literal(ps, v, "false", JSON_BOOL, false);
    case 'n':
        return parse_literal(ps, v, "null", JSON_NULL, false);
    default:
        if (peek(ps) == '-' || is_digit(peek(ps))) {
            return parse_number(ps, v);
        }
        return fail_expected(ps, "a value");
    }
}

/* One run over the whole text. */
static bool parse_text(struct parser *ps, struct json_value *root)
{
    ps->off = 0;
    skip_ws(ps);
    if (!parse_value(ps, root, 0)) {
        return false;
    }
    skip_ws(ps);
    if (ps->off != ps->len) {
        return fail_expected(ps, "end of input after the value");
    }
    return true;
}

struct json_doc *json_parse(const char *text, size_t len, struct errbuf *eb)
{
    struct parser ps = {.text = text, .len = len, .eb = eb, .n_slots = 1};
    struct json_value scratch;
    struct json_doc *doc = NULL;
    if (len > JSON_MAX_LEN) {
        errbuf_set(eb, "1:1: input too large (%zu bytes, max %u)", len, JSON_MAX_LEN);
        return NULL;
    }
    if (!parse_text(&ps, &scratch)) {
        goto out;
    }
    /* Both totals are bounded by a small multiple of len <= 16 MiB: no overflow. */
    size_t slots_size = ps.n_slots * sizeof(struct json_value);
    doc = malloc(sizeof(*doc) + slots_size + ps.n_str_bytes);
    if (doc == NULL) {
        errbuf_set(eb, "out of memory");
        goto out;
    }
    doc->n_slots = ps.n_slots;
    ps.is_building = true;
    ps.slot_next = doc->slots + 1;
    ps.slot_end = doc->slots + ps.n_slots;
    ps.str_next = (char *)ps.slot_end;
    ps.str_end = ps.str_next + ps.n_str_bytes;
    must(parse_text(&ps, &doc->slots[0]));
    must(ps.slot_next == ps.slot_end && ps.str_next == ps.str_end);
    must(ps.next_count == ps.n_counts);
out:
    free(ps.counts);
    return doc;
}

void json_free(struct json_doc *doc)
{
    free(doc);
}

/* ---------------------------------------------------------------------------------------
 * Accessors
 */

const struct json_value *json_root(const struct json_doc *doc)
{
    return doc != NULL ? &doc->slots[0] : NULL;
}

enum json_type json_type(const struct json_value *v)
{
    return v != NULL ? (enum json_type)v->type : JSON_NULL;
}

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
    if (json_type(obj) != JSON_OBJECT || key == NULL) {
        return NULL;
    }
    size_t klen = strlen(key);
    /* Backwards, so that the last of duplicate keys wins. */
    for (size_t i = obj->u.kids.n; i-- > 0;) {
        const struct json_value *k = &obj->u.kids.items[2 * i];
        if (k->u.str.len == klen && memcmp(k->u.str.s, key, klen) == 0) {
            return &obj->u.kids.items[2 * i + 1];
        }
    }
    return NULL;
}

size_t json_len(const struct json_value *v)
{
    enum json_type t = json_type(v);
    return t == JSON_ARRAY || t == JSON_OBJECT ? v->u.kids.n : 0;
}

const struct json_value *json_at(const struct json_value *v, size_t i)
{
    if (i >= json_len(v)) {
        return NULL;
    }
    return v->type == JSON_ARRAY ? &v->u.kids.items[i] : &v->u.kids.items[2 * i + 1];
}

const char *json_key_at(const struct json_value *obj, size_t i)
{
    if (json_type(obj) != JSON_OBJECT || i >= obj->u.kids.n) {
        return NULL;
    }
    return obj->u.kids.items[2 * i].u.str.s;
}

const char *json_str(const struct json_value *v)
{
    return json_type(v) == JSON_STRING ? v->u.str.s : NULL;
}

size_t json_str_len(const struct json_value *v)
{
    return json_type(v) == JSON_STRING ? v->u.str.len : 0;
}

bool json_bool(const struct json_value *v, bool def)
{
    return json_type(v) == JSON_BOOL ? v->boolean : def;
}

double json_num(const struct json_value *v, double def)
{
    return json_type(v) == JSON_NUMBER ? v->u.num.d : def;
}

/* A string in the JSON integer grammar -?(0|[1-9][0-9]*) within int64 range. */
static bool string_int(const char *s, size_t len, int64_t *out)
{
    struct number_parts np = {.int_digits = s, .n_int = len};
    if (len > 0 && s[0] == '-') {
        np.is_negative = true;
        np.int_digits++;
        np.n_int--;
    }
    if (np.n_int == 0 || (np.int_digits[0] == '0' && np.n_int > 1)) {
        return false;
    }
    for (size_t i = 0; i < np.n_int; i++) {
        if (!is_digit((unsigned char)np.int_digits[i])) {
            return false;
        }
    }
    return number_exact_int(&np, out);
}

bool json_int(const struct json_value *v, int64_t *out)
{
    switch (json_type(v)) {
    case JSON_NUMBER:
        if (v->is_int) {
            *out = v->u.num.i;
        }
        return v->is_int;
    case JSON_STRING:
        return string_int(v->u.str.s, v->u.str.len, out);
    default:
        return false;
    }
}
