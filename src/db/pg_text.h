/* SPDX-License-Identifier: MIT */
/* PostgreSQL text that keel reads or writes, with no I/O: WAL positions (LSNs, "0/3000060"),
 * the postmaster.pid lock file, and quoting for the three syntaxes keel generates (a
 * postgresql.conf string, a libpq conninfo value, an SQL literal or identifier), plus the
 * checks that keep names and CIDRs from injecting lines into pg_hba.conf. All pure. */
#ifndef KEEL_DB_PG_TEXT_H
#define KEEL_DB_PG_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* ------------------------------------------------------------------------------------------
 * LSNs
 * ------------------------------------------------------------------------------------------ */

#define PG_LSN_STRLEN 18 /* "FFFFFFFF/FFFFFFFF" and its NUL */

/* Parse an LSN as PostgreSQL prints it: 1-8 hex digits, '/', 1-8 hex digits, nothing else
 * (the grammar of pg_lsn_in). len bytes at s, no NUL needed. Returns 0 with *lsn set (high
 * part << 32 | low part), or -EINVAL. */
int pg_lsn_parse(const char *s, size_t len, uint64_t *lsn) KEEL_MUST_CHECK;

/* Format lsn as PostgreSQL does ("%X/%X": upper case, no leading zeros) into out. */
void pg_lsn_format(uint64_t lsn, char out[PG_LSN_STRLEN]);

/* -1, 0 or 1 as a is before, at or after b. LSNs are byte positions in the WAL: the
 * difference of two is a number of bytes. */
static inline int pg_lsn_cmp(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b ? 1 : 0;
}

/* ------------------------------------------------------------------------------------------
 * postmaster.pid
 * ------------------------------------------------------------------------------------------ */

/* Line 8 of postmaster.pid (PostgreSQL 10+, what `pg_ctl -w` waits on). */
enum pg_pm_status {
    PG_PM_UNKNOWN = 0, /* no status line yet (or an unknown word) */
    PG_PM_STARTING,    /* "starting": recovering, not accepting connections */
    PG_PM_STOPPING,    /* "stopping": shutting down */
    PG_PM_READY,       /* "ready": a primary accepting connections */
    PG_PM_STANDBY      /* "standby": a hot standby accepting connections */
};

struct pg_pidfile {
    long pid;      /* line 1: the postmaster's pid; negative for a single-user backend */
    uint32_t port; /* line 4; 0 if absent */
    enum pg_pm_status status;
};

/* Parse the contents of postmaster.pid (len bytes, no NUL needed). Returns 0, or -EINVAL
 * when line 1 is not a pid (a file being written may be empty or cut: try again later). */
int pg_pidfile_parse(const char *text, size_t len, struct pg_pidfile *out) KEEL_MUST_CHECK;

/* ------------------------------------------------------------------------------------------
 * Quoting. Each writes a NUL-terminated quoted string into out and returns 0, -ENOSPC when
 * it does not fit (out then holds ""), or -EINVAL for a value it refuses.
 * ------------------------------------------------------------------------------------------ */

/* A postgresql.conf string: '...' with ' and \ escaped. Refuses control characters
 * (a newline would end the setting). */
int pg_quote_conf(const char *value, char *out, size_t size) KEEL_MUST_CHECK;

/* A libpq conninfo value: '...' with ' and \ escaped by a backslash. */
int pg_quote_conninfo(const char *value, char *out, size_t size) KEEL_MUST_CHECK;

/* An SQL string literal in E'...' form (' and \ escaped by a backslash), correct whatever
 * standard_conforming_strings says. Refuses control characters. */
int pg_quote_literal(const char *value, char *out, size_t size) KEEL_MUST_CHECK;

/* An SQL identifier: "..." with " doubled. Refuses control characters and "". */
int pg_quote_ident(const char *value, char *out, size_t size) KEEL_MUST_CHECK;

/* Append " key=<quoted value>" to the conninfo string in buf (NUL-terminated, size bytes).
 * Returns 0 or -ENOSPC (buf then unchanged). */
int pg_conninfo_add(char *buf, size_t size, const char *key, const char *value) KEEL_MUST_CHECK;

/* ------------------------------------------------------------------------------------------
 * Checks
 * ------------------------------------------------------------------------------------------ */

/* A name keel writes unquoted or double-quoted into pg_hba.conf, pg_ident.conf and SQL
 * (roles, OS users, slots, application names): 1-63 characters of [A-Za-z0-9_], not
 * starting with a digit. Stricter than PostgreSQL, on purpose. */
bool pg_name_is_valid(const char *name);

/* An address or network for pg_hba.conf: an IPv4 or IPv6 address, optionally followed by
 * /prefix (0-32 or 0-128). */
bool pg_cidr_is_valid(const char *cidr);

#endif
