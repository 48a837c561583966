/* SPDX-License-Identifier: MIT */
/* keel's JSON: a small, strict, bounded reader (RFC 8259, json.c) and the one writer
 * (json_write.c). The reader turns a whole text into a read-only tree owned by one struct
 * json_doc (a single allocation); the writer appends compact, escaped, well-formed JSON to a
 * text. Neither does I/O or keeps global state; neither streams. */
#ifndef KEEL_CORE_JSON_H
#define KEEL_CORE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Deepest nesting of arrays and objects: "[[1]]" has depth 2, a lone scalar depth 0. */
#define JSON_MAX_DEPTH 64
/* Longest input, in bytes. keel reads small status and etcd documents; this bounds the
 * memory a peer can make it spend (at most 12 bytes per input byte, see json.c). */
#define JSON_MAX_LEN (16u * 1024 * 1024)
/* Longest number literal, in bytes; longer ones are errors rather than a heap copy. */
#define JSON_MAX_NUMBER_LEN 512

enum json_type { JSON_NULL = 0, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_value; /* opaque; valid as long as its json_doc */
struct json_doc;   /* owns every value and string */

/* Parse text[0, len), which must be exactly one JSON value surrounded by optional whitespace
 * (space, tab, CR, LF). text is borrowed, need not be NUL-terminated, and may be freed once
 * this returns; no byte at or after text[len] is read. Strings are decoded to UTF-8: \uXXXX
 * escapes including surrogate pairs are resolved; lone surrogates, \u0000 and invalid UTF-8
 * in the input are errors. Numbers follow the RFC grammar strictly (no leading zeros, no
 * '+', no NaN or Infinity); those that overflow a double are errors. Limits: nesting depth
 * JSON_MAX_DEPTH, len JSON_MAX_LEN, number literals JSON_MAX_NUMBER_LEN bytes.
 * Returns a document the caller owns and releases with json_free, or NULL with
 * "line:col: what is wrong" in eb (eb may be NULL). Lines count LF from 1; columns count
 * bytes from 1; the position is where the problem starts (docs/internals/json.md lists
 * every message). Out of memory gives NULL and "out of memory", with no position. Never
 * blocks; uses recursion at most JSON_MAX_DEPTH deep. */
struct json_doc *json_parse(const char *text, size_t len, struct errbuf *eb)
    __attribute__((warn_unused_result));

/* Release a document and every value and string in it. NULL is fine. */
void json_free(struct json_doc *doc);

/* The top-level value (never NULL for a parsed document; NULL if doc is NULL). */
const struct json_value *json_root(const struct json_doc *doc);

/* Type of v; NULL (an absent value) is JSON_NULL, so lookups chain without checks. */
enum json_type json_type(const struct json_value *v);

/* The value of member key in object obj, or NULL if obj is not an object or has no such
 * member. When a key appears more than once, the LAST one wins (as in JavaScript, Python and
 * Go); json_len/json_at still see every member. Linear in the number of members. */
const struct json_value *json_get(const struct json_value *obj, const char *key);

/* Number of elements of an array or members of an object; 0 for anything else. */
size_t json_len(const struct json_value *v);

/* Element i of an array, or the value of member i of an object (in document order); NULL if
 * i >= json_len(v) or v is not a container. */
const struct json_value *json_at(const struct json_value *v, size_t i);

/* Key of member i of object obj (NUL-terminated UTF-8), or NULL if out of range or obj is
 * not an object. */
const char *json_key_at(const struct json_value *obj, size_t i);

/* A string's value: NUL-terminated UTF-8 with no NUL inside (so json_str_len(v) ==
 * strlen(json_str(v))), valid as long as the document. NULL if v is not a string. */
const char *json_str(const struct json_value *v);
/* Length in bytes of a string's value; 0 if v is not a string. */
size_t json_str_len(const struct json_value *v);

/* The value of a boolean, or def if v is not a boolean. */
bool json_bool(const struct json_value *v, bool def);

/* The value of a number (as strtod rounds it), or def if v is not a number. */
double json_num(const struct json_value *v, double def);

/* Integer value: true and *out set only for a JSON number that is an exact integer in int64
 * range (written as an integer, or as "1.0", "1e3", "25e-1"... when its exact decimal value
 * is an integer), or for a string holding such a decimal integer in the strict JSON integer
 * grammar -?(0|[1-9][0-9]*), because etcd sends int64 values as strings. Otherwise false and
 * *out is untouched. */
bool json_int(const struct json_value *v, int64_t *out);

/* Length of the valid UTF-8 sequence (RFC 3629 section 4) that starts s[0, n), n >= 1, or 0
 * when there is none (a stray continuation byte, an overlong form, a UTF-16 surrogate, a code
 * point above U+10FFFF, or a sequence cut by n). ASCII, NUL included, has length 1. */
size_t json_utf8_len(const unsigned char *s, size_t n);

/* ------------------------------------------------------------------------------------------
 * The writer (json_write.c): the one JSON producer of keel. Every /status document, agent
 * reply, etcd request body, demo page and JSON access log line is written with it.
 *
 * A struct json_w appends compact JSON (no spaces) to a text and checks that the calls form
 * one well-formed value: it writes the commas and colons itself, and a misuse (a key outside
 * an object, a value where a key is due, an end that does not match its begin, nesting
 * deeper than JSON_MAX_DEPTH, a second top-level value) is an error, not bad output.
 * Strings are escaped: \" \\ \b \f \n \r \t, \u00XX for the other bytes below 0x20 and
 * \u007f for DEL; valid UTF-8 passes through; each byte that does not start a valid UTF-8
 * sequence, and NUL, becomes \ufffd (U+FFFD), so the output is always valid UTF-8 that
 * json_parse reads back (the reader refuses \u0000 and invalid UTF-8).
 *
 * Errors are sticky: after the first one every call does nothing, and json_w_finish reports
 * it. Nothing blocks; nothing is global. */

struct json_w {
    char *data;     /* the text so far, NUL-terminated (NULL before the first growable write) */
    size_t len;     /* bytes of text, without the NUL */
    size_t cap;     /* bytes at data */
    int err;        /* 0, -ENOMEM, -ENOSPC (a fixed buffer is full), -EINVAL (misuse) */
    bool is_fixed;  /* data is the caller's buffer: never grown or freed */
    bool has_key;   /* in an object, a key was written and its value is due */
    bool is_done;   /* a whole top-level value was written */
    unsigned depth; /* open containers */
    uint64_t _is_object; /* bit d: the container at depth d + 1 is an object */
    uint64_t _has_item;  /* bit d: the container at depth d + 1 holds an item already */
};

/* Start an empty writer whose text grows on the heap; release it with json_w_fini. */
void json_w_init(struct json_w *w);
/* Start an empty writer over the caller's buf[0, size) (borrowed, never grown or freed):
 * text that does not fit with its NUL is -ENOSPC. For the data path, where a line has a
 * fixed budget. size may be 0 (every write then fails). */
void json_w_init_fixed(struct json_w *w, char *buf, size_t size);
/* Release a growable writer's text (not a fixed one's buffer). NULL and repeats are fine. */
void json_w_fini(struct json_w *w);

/* Record an error the caller met while preparing a value (-ENOMEM...), so that the text is
 * refused like any other failed write. The first error wins. */
void json_w_fail(struct json_w *w, int err);

/* 0 when every call succeeded and the text is exactly one complete value; otherwise the
 * first error, or -EINVAL for a text left incomplete (an open container, nothing written).
 * The text (w->data, w->len) is defined only on 0. */
int json_w_finish(const struct json_w *w) __attribute__((warn_unused_result));

/* Hand a growable writer's text to the caller (malloc'd, NUL-terminated, freed with free())
 * with its length in *len, and leave w empty. NULL (w still released) when json_w_finish
 * would not return 0. */
char *json_w_take(struct json_w *w, size_t *len) __attribute__((warn_unused_result));

/* Containers. begin_* is a value; end_* closes the innermost container, which must be of
 * the same kind and not wait for a key's value. */
void json_w_begin_object(struct json_w *w);
void json_w_end_object(struct json_w *w);
void json_w_begin_array(struct json_w *w);
void json_w_end_array(struct json_w *w);

/* A member's key in the innermost object (escaped like a string); its value must follow. */
void json_w_key(struct json_w *w, const char *key);

/* Values: where a value may stand (top level, array element, after a key). s is borrowed
 * and NUL-terminated (json_w_str) or s[0, len) (json_w_strn); NULL writes null. */
void json_w_str(struct json_w *w, const char *s);
void json_w_strn(struct json_w *w, const char *s, size_t len);
void json_w_int(struct json_w *w, int64_t v);
void json_w_uint(struct json_w *w, uint64_t v);
void json_w_bool(struct json_w *w, bool v);
void json_w_null(struct json_w *w);
/* A number with a fixed count of decimals (0..17): json_w_num(w, 1.5, 3) writes 1.500.
 * NaN and infinities, which JSON cannot hold, are written as null. */
void json_w_num(struct json_w *w, double v, int decimals);
/* A number with as many significant digits as it takes to read back exactly (at most 17:
 * 0.1 is written 0.1, 1e300 as 1.0000000000000001e+300). NaN and infinities: null. */
void json_w_double(struct json_w *w, double v);

/* key then value, for the common members. */
static inline void json_w_key_str(struct json_w *w, const char *key, const char *s)
{
    json_w_key(w, key);
    json_w_str(w, s);
}

static inline void json_w_key_int(struct json_w *w, const char *key, int64_t v)
{
    json_w_key(w, key);
    json_w_int(w, v);
}

static inline void json_w_key_uint(struct json_w *w, const char *key, uint64_t v)
{
    json_w_key(w, key);
    json_w_uint(w, v);
}

static inline void json_w_key_bool(struct json_w *w, const char *key, bool v)
{
    json_w_key(w, key);
    json_w_bool(w, v);
}

static inline void json_w_key_num(struct json_w *w, const char *key, double v, int decimals)
{
    json_w_key(w, key);
    json_w_num(w, v, decimals);
}

#endif
