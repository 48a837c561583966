/* SPDX-License-Identifier: MIT */
/* Pure helpers of the web server: request path normalisation (the guard that keeps file
 * requests inside their root), Range, conditional and Accept-Encoding header parsing, HTTP
 * dates and media types. No I/O. */
#ifndef KEEL_HTTP_HTTP_PATH_H
#define KEEL_HTTP_HTTP_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/err.h"

/* Turn a request target into a clean absolute path in out: the query is cut, the scheme
 * and authority of an absolute-form target are dropped, %XX escapes are decoded, "." and
 * empty segments are removed; a trailing '/' is kept. Returns 0 with *out_len set, or:
 * -KEEL_EHTTP_BAD_REQUEST (malformed escape, NUL byte, not a path: 400), -EACCES (a ".."
 * segment: 403), -ENOENT (an encoded '/' or '\', or a backslash: 404), -ENAMETOOLONG. */
int http_path_normalize(const char *target, size_t len, char *out, size_t outlen,
                        size_t *out_len) KEEL_MUST_CHECK;

enum http_range_result {
    HTTP_RANGE_NONE = 0,     /* no usable range: send the whole representation (200) */
    HTTP_RANGE_OK,           /* one satisfiable range [*first, *last]: 206 */
    HTTP_RANGE_UNSATISFIABLE /* 416 */
};

/* Parse a Range header value for a representation of size bytes (RFC 9110 14.2). Several
 * ranges, other units and syntax errors give HTTP_RANGE_NONE (a server may ignore Range). */
enum http_range_result http_range_parse(const char *value, size_t len, uint64_t size,
                                        uint64_t *first, uint64_t *last);

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into out (at least 30 bytes). */
void http_date_format(time_t t, char *out, size_t outlen);
/* Parse an IMF-fixdate; -1 if it is not one (callers then ignore the header). */
int http_date_parse(const char *s, size_t len, time_t *out);

/* If-None-Match (weak comparison, RFC 9110 13.1.2): whether value lists etag or is "*". */
bool http_etag_matches(const char *value, size_t len, const char *etag);

/* Whether Accept-Encoding accepts gzip (a "gzip" or "*" coding with q > 0). */
bool http_accepts_gzip(const char *value, size_t len);

/* The media type for a file name, by extension; "application/octet-stream" if unknown. */
const char *http_mime_type(const char *name);

#endif
