/* SPDX-License-Identifier: MIT */
/* Parsing and quoting of PostgreSQL text (see pg_text.h). No I/O, no allocation, no
 * globals: every function works on the bytes it is given, so the fuzz target
 * (tests/fuzz/fuzz_pg_lsn.c) can call them on anything. */
#include "db/pg_text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http/http_parse.h" /* http_hex_value */

/* ------------------------------------------------------------------------------------------
 * LSNs
 * ------------------------------------------------------------------------------------------ */

/* 1-8 hex digits at s[*i..len) into *out; advances *i. */
static int parse_hex32(const char *s, size_t len, size_t *i, uint32_t *out)
{
    uint32_t v = 0;
    size_t start = *i;
    while (*i < len && http_hex_value((unsigned char)s[*i]) >= 0) {
        if (*i - start == 8) {
            return -EINVAL;
        }
        v = (v << 4) | (uint32_t)http_hex_value((unsigned char)s[*i]);
        (*i)++;
    }
    if (*i == start) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int pg_lsn_parse(const char *s, size_t len, uint64_t *lsn)
{
    size_t i = 0;
    uint32_t hi, lo;
    if (parse_hex32(s, len, &i, &hi) != 0 || i >= len || s[i] != '/') {
        return -EINVAL;
    }
    i++;
    if (parse_hex32(s, len, &i, &lo) != 0 || i != len) {
        return -EINVAL;
    }
    *lsn = ((uint64_t)hi << 32) | lo;
    return 0;
}

void pg_lsn_format(uint64_t lsn, char out[PG_LSN_STRLEN])
{
    (void)snprintf(out, PG_LSN_STRLEN, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
}

/* ------------------------------------------------------------------------------------------
 * postmaster.pid
 * ------------------------------------------------------------------------------------------ */

/* Line n (1-based) of text: its start and length (without the newline). False if absent. */
static bool nth_line(const char *text, size_t len, int n, const char **line, size_t *line_len)
{
    size_t pos = 0;
    for (int k = 1; k < n; k++) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        if (nl == NULL) {
            return false;
        }
        pos = (size_t)(nl - text) + 1;
    }
    if (pos >= len) {
        return false;
    }
    const char *nl = memchr(text + pos, '\n', len - pos);
    *line = text + pos;
    *line_len = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
    return true;
}

/* A decimal number, optionally negative, filling the whole line (spaces after it allowed). */
static int parse_long(const char *s, size_t len, long max, long *out)
{
    size_t i = 0;
    bool is_neg = len > 0 && s[0] == '-';
    i += is_neg ? 1 : 0;
    long v = 0;
    size_t start = i;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (max - (s[i] - '0')) / 10) {
            return -EINVAL;
        }
        v = v * 10 + (s[i] - '0');
    }
    if (i == start) {
        return -EINVAL;
    }
    for (; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\r') {
            return -EINVAL;
        }
    }
    *out = is_neg ? -v : v;
    return 0;
}

static bool word_is(const char *s, size_t len, const char *word)
{
    size_t wl = strlen(word);
    if (len < wl || memcmp(s, word, wl) != 0) {
        return false;
    }
    for (size_t i = wl; i < len; i++) {
        if (s[i] != ' ') {
            return false; /* PostgreSQL pads the word with spaces to 8 characters */
        }
    }
    return true;
}

int pg_pidfile_parse(const char *text, size_t len, struct pg_pidfile *out)
{
    const char *line;
    size_t n;
    long v;
    memset(out, 0, sizeof(*out));
    if (!nth_line(text, len, 1, &line, &n) || parse_long(line, n, 0x7fffffffL, &v) != 0 || v == 0) {
        return -EINVAL;
    }
    out->pid = v;
    if (nth_line(text, len, 4, &line, &n) && parse_long(line, n, 65535, &v) == 0 && v > 0) {
        out->port = (uint32_t)v;
    }
    if (nth_line(text, len, 8, &line, &n)) {
        out->status = word_is(line, n, "starting")   ? PG_PM_STARTING
                      : word_is(line, n, "stopping") ? PG_PM_STOPPING
                      : word_is(line, n, "ready")    ? PG_PM_READY
                      : word_is(line, n, "standby")  ? PG_PM_STANDBY
                                                     : PG_PM_UNKNOWN;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Quoting
 * ------------------------------------------------------------------------------------------ */

/* Quote value between open and close, putting esc before each character of escaped (esc
 * 0: double it instead). Refuses control characters if asked. */
static int quote(const char *value, char *out, size_t size, const char *open, char close,
                 const char *escaped, char esc, bool refuse_ctl)
{
    if (size == 0) {
        return -ENOSPC;
    }
    out[0] = '\0';
    size_t k = 0;
    size_t ol = strlen(open);
    if (ol + 2 > size) {
        return -ENOSPC;
    }
    memcpy(out, open, ol);
    k = ol;
    for (const char *p = value; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (refuse_ctl && (c < 0x20 || c == 0x7f)) {
            out[0] = '\0';
            return -EINVAL;
        }
        bool is_special = strchr(escaped, *p) != NULL;
        if (k + (is_special ? 2 : 1) + 2 > size) {
            out[0] = '\0';
            return -ENOSPC;
        }
        if (is_special) {
            out[k++] = esc != 0 ? esc : *p;
        }
        out[k++] = *p;
    }
    out[k++] = close;
    out[k] = '\0';
    return 0;
}

int pg_quote_conf(const char *value, char *out, size_t size)
{
    /* The configuration file lexer (guc-file.l) reads C-style backslash escapes and ''. */
    return quote(value, out, size, "'", '\'', "'\\", '\\', true);
}

int pg_quote_conninfo(const char *value, char *out, size_t size)
{
    /* conninfo_parse(): inside '...', a backslash escapes the next character. A control
     * character would be kept as is; refusing it keeps generated files one line each. */
    return quote(value, out, size, "'", '\'', "'\\", '\\', true);
}

int pg_quote_literal(const char *value, char *out, size_t size)
{
    return quote(value, out, size, "E'", '\'', "'\\", '\\', true);
}

int pg_quote_ident(const char *value, char *out, size_t size)
{
    if (value[0] == '\0') {
        if (size > 0) {
            out[0] = '\0';
        }
        return -EINVAL;
    }
    return quote(value, out, size, "\"", '"', "\"", 0, true);
}

int pg_conninfo_add(char *buf, size_t size, const char *key, const char *value)
{
    size_t used = strnlen(buf, size);
    char q[1024];
    if (used == size || pg_quote_conninfo(value, q, sizeof(q)) != 0) {
        return -ENOSPC;
    }
    int n = snprintf(buf + used, size - used, "%s%s=%s", used > 0 ? " " : "", key, q);
    if (n < 0 || (size_t)n >= size - used) {
        buf[used] = '\0';
        return -ENOSPC;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Checks
 * ------------------------------------------------------------------------------------------ */

bool pg_name_is_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 63 || (name[0] >= '0' && name[0] <= '9')) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool pg_cidr_is_valid(const char *cidr)
{
    char addr[64];
    const char *slash = strchr(cidr, '/');
    size_t alen = slash != NULL ? (size_t)(slash - cidr) : strlen(cidr);
    if (alen == 0 || alen >= sizeof(addr)) {
        return false;
    }
    memcpy(addr, cidr, alen);
    addr[alen] = '\0';
    unsigned char bin[16];
    int max;
    if (inet_pton(AF_INET, addr, bin) == 1) {
        max = 32;
    } else if (inet_pton(AF_INET6, addr, bin) == 1) {
        max = 128;
    } else {
        return false;
    }
    if (slash == NULL) {
        return true;
    }
    long prefix;
    size_t plen = strlen(slash + 1);
    if (plen == 0 || plen > 3 || strspn(slash + 1, "0123456789") != plen) {
        return false;
    }
    return parse_long(slash + 1, plen, max, &prefix) == 0;
}
