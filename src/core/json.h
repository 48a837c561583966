/* SPDX-License-Identifier: MIT */
/* A small, strict, bounded JSON reader (RFC 8259) and a string quoter for writers. The reader
 * turns a whole text into a read-only tree owned by one struct json_doc (a single
 * allocation); it does no I/O and keeps no global state. It does not stream, and it is not a
 * general writer: json_quote only helps callers that format JSON themselves. */
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

/* Write s[0, len) as a JSON string literal, with quotes and escapes (\" \\ \b \f \n \r \t,
 * \u00XX for other control bytes), NUL-terminated, at out[0, size). s must be valid UTF-8
 * with no NUL byte: the reader rejects \u0000, and keel never writes what it cannot read
 * back. Returns true and sets *written (if not NULL) to the length without the NUL; false
 * when s is not valid UTF-8, contains NUL, or the literal and its NUL do not fit in size
 * (out is then "" if size > 0, and *written 0). To append, pass out + used and
 * size - used. */
bool json_quote(const char *s, size_t len, char *out, size_t size, size_t *written)
    __attribute__((warn_unused_result));

#endif
