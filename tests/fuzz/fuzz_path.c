/* SPDX-License-Identifier: MIT */
/* Fuzz target for the web server's parsers in src/http/http_path.c: path normalisation
 * (checked: the result never contains a ".." segment, a NUL or a backslash, and starts
 * with '/'), Range, dates, If-None-Match and Accept-Encoding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char out[1024];
    size_t n = 0;
    if (http_path_normalize(s, size, out, sizeof(out), &n) == 0) {
        if (n == 0 || out[0] != '/' || strlen(out) != n || strchr(out, '\\') != NULL ||
            strstr(out, "/../") != NULL || (n >= 3 && strcmp(out + n - 3, "/..") == 0)) {
            abort();
        }
    }
    uint64_t first = 0, last = 0;
    uint64_t sizes[] = {0, 1, 1000, UINT64_MAX};
    for (size_t i = 0; i < 4; i++) {
        if (http_range_parse(s, size, sizes[i], &first, &last) == HTTP_RANGE_OK &&
            (first > last || last >= sizes[i])) {
            abort();
        }
    }
    time_t t;
    (void)http_date_parse(s, size, &t);
    (void)http_etag_matches(s, size, "\"abc-1\"");
    (void)http_accepts_gzip(s, size);
    return 0;
}
