/* SPDX-License-Identifier: MIT */
/* Fuzz target for the PostgreSQL text parsers of src/db/pg_text.c. Checked: an LSN that
 * parses formats back to the same value, and its text, reformatted, is what PostgreSQL
 * would print for it (case and leading zeros aside); postmaster.pid gives a nonzero pid and
 * a known status; the quoting functions write a NUL-terminated string within the buffer
 * that starts and ends with its quote, and never an unescaped quote or newline inside;
 * pg_cidr_is_valid and pg_name_is_valid accept nothing with a space or a newline (they
 * guard pg_hba.conf lines). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_TARGET "fuzz_pg_lsn"
#include "fuzz_util.h"

#include "db/pg_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_lsn(const char *s, size_t size)
{
    uint64_t lsn = 0;
    if (pg_lsn_parse(s, size, &lsn) != 0) {
        return;
    }
    char out[PG_LSN_STRLEN];
    pg_lsn_format(lsn, out);
    uint64_t again = 0;
    check(pg_lsn_parse(out, strlen(out), &again) == 0 && again == lsn, "LSN round trip");
    check(size >= 3 && size <= 17 && memchr(s, '/', size) != NULL, "LSN shape");
    check(pg_lsn_cmp(lsn, again) == 0 && (lsn == UINT64_MAX || pg_lsn_cmp(lsn, lsn + 1) < 0),
          "LSN order");
}

/* A quoted string: inside its quotes, every quote is escaped (by a backslash, or doubled
 * when esc is 0), and there is no newline. */
static void check_quoted(const char *out, size_t size, size_t open_len, char q, char esc)
{
    size_t n = strnlen(out, size);
    check(n < size, "quoted: NUL-terminated");
    check(n >= open_len + 1 && out[n - 1] == q, "quoted: closing quote");
    for (size_t i = open_len; i + 1 < n; i++) {
        check(out[i] != '\n' && out[i] != '\r', "quoted: no newline");
        if (esc != 0 && out[i] == esc) {
            i++; /* the escaped character */
            continue;
        }
        if (out[i] == q) {
            check(esc == 0 && i + 2 < n && out[i + 1] == q, "quoted: a lone quote");
            i++;
        }
    }
}

static void check_quotes(const char *s)
{
    /* The functions get 256 bytes; the rest is poisoned: writing past the size is caught. */
    static char buf[512];
    char *out = buf;
    poison(buf + 256, 256);
    if (pg_quote_conf(s, out, 256) == 0) {
        check_quoted(out, 256, 1, '\'', '\\');
    }
    if (pg_quote_conninfo(s, out, 256) == 0) {
        check_quoted(out, 256, 1, '\'', '\\');
    }
    if (pg_quote_literal(s, out, 256) == 0) {
        check(out[0] == 'E', "literal: E prefix");
        check_quoted(out, 256, 2, '\'', '\\');
    }
    if (pg_quote_ident(s, out, 256) == 0) {
        check_quoted(out, 256, 1, '"', 0);
    }
    (void)snprintf(out, 256, "host='x'");
    if (pg_conninfo_add(out, 256, "password", s) == 0) {
        check(strnlen(out, 256) < 256, "conninfo: NUL-terminated");
    } else {
        check(strcmp(out, "host='x'") == 0, "conninfo: unchanged on failure");
    }
    unpoison(buf + 256, 256);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    check_lsn(s, size);
    struct pg_pidfile pf;
    if (pg_pidfile_parse(s, size, &pf) == 0) {
        check(pf.pid != 0, "pidfile: pid");
        check(pf.port <= 65535, "pidfile: port");
        check(pf.status <= PG_PM_STANDBY, "pidfile: status");
    }
    /* The string functions take C strings: the input up to its first NUL, copied. */
    char *str = malloc(size + 1);
    if (str == NULL) {
        return 0;
    }
    memcpy(str, data, size);
    str[size] = '\0';
    check_quotes(str);
    if (pg_cidr_is_valid(str) || pg_name_is_valid(str)) {
        check(strpbrk(str, " \t\r\n\"#") == NULL, "check: a pg_hba.conf separator accepted");
    }
    free(str);
    return 0;
}
