/* SPDX-License-Identifier: MIT */
/* Unit tests of db/pg_text.c: LSN parsing, formatting and ordering, postmaster.pid, the
 * quoting of conf strings, conninfo values, SQL literals and identifiers, and the name and
 * CIDR checks that guard pg_hba.conf. */
#include <criterion/criterion.h>

#include "db/pg_text.c"

static uint64_t lsn(const char *s)
{
    uint64_t v = 0;
    cr_assert_eq(pg_lsn_parse(s, strlen(s), &v), 0, "\"%s\" should parse", s);
    return v;
}

static bool lsn_fails(const char *s)
{
    uint64_t v = 42;
    return pg_lsn_parse(s, strlen(s), &v) == -EINVAL && v == 42;
}

Test(pg_lsn, parses_what_postgres_prints)
{
    cr_assert_eq(lsn("0/0"), 0);
    cr_assert_eq(lsn("0/3000060"), 0x3000060u);
    cr_assert_eq(lsn("16/B374D848"), (0x16ull << 32) | 0xB374D848u);
    cr_assert_eq(lsn("ffffffff/ffffffff"), UINT64_MAX);
    cr_assert_eq(lsn("FFFFFFFF/0"), 0xFFFFFFFFull << 32);
    cr_assert_eq(lsn("00000001/00000002"), (1ull << 32) | 2);
}

Test(pg_lsn, refuses_everything_else)
{
    const char *bad[] = {"",      "/",           "0/",          "/0",    "0",     "0//0", "0/0/0",
                         " 0/0",  "0/0 ",        "0/0\n",       "g/0",   "0/x",   "-1/0", "+1/0",
                         "0x1/0", "123456789/0", "0/123456789", "1.5/0", "0/1z3", "0/ 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert(lsn_fails(bad[i]), "\"%s\" should fail", bad[i]);
    }
    uint64_t v;
    cr_assert_eq(pg_lsn_parse("0/1\0"
                              "2",
                              5, &v),
                 -EINVAL);                        /* a NUL inside */
    cr_assert_eq(pg_lsn_parse("0/12", 3, &v), 0); /* len, not the NUL, ends it */
    cr_assert_eq(v, 1);
}

Test(pg_lsn, formats_and_round_trips)
{
    char out[PG_LSN_STRLEN];
    pg_lsn_format(0x3000060u, out);
    cr_assert_str_eq(out, "0/3000060");
    pg_lsn_format(UINT64_MAX, out);
    cr_assert_str_eq(out, "FFFFFFFF/FFFFFFFF");
    pg_lsn_format(0, out);
    cr_assert_str_eq(out, "0/0");
    const uint64_t samples[] = {1, 0xFFFFFFFFu, 1ull << 32, 0x16B374D848ull, UINT64_MAX - 1};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        pg_lsn_format(samples[i], out);
        cr_assert_eq(lsn(out), samples[i]);
    }
}

Test(pg_lsn, compares_as_positions)
{
    cr_assert_eq(pg_lsn_cmp(lsn("0/3000060"), lsn("0/3000060")), 0);
    cr_assert_eq(pg_lsn_cmp(lsn("0/3000060"), lsn("0/3000061")), -1);
    /* The high part counts first: textual order would say otherwise. */
    cr_assert_eq(pg_lsn_cmp(lsn("1/0"), lsn("0/FFFFFFFF")), 1);
    cr_assert_eq(pg_lsn_cmp(lsn("9/0"), lsn("10/0")), -1);
    cr_assert_eq(lsn("1/0") - lsn("0/FFFFFFFF"), 1); /* a difference is a byte count */
}

/* ------------------------------------------------------------------------------------------
 * postmaster.pid
 * ------------------------------------------------------------------------------------------ */

static const char pidfile_ready[] = "4242\n/tmp/data\n1700000000\n5432\n/var/run/postgresql\n"
                                    "127.0.0.2\n  5432001    131072\nready   \n";

Test(pg_pidfile, a_ready_primary_and_a_standby)
{
    struct pg_pidfile pf;
    cr_assert_eq(pg_pidfile_parse(pidfile_ready, strlen(pidfile_ready), &pf), 0);
    cr_assert_eq(pf.pid, 4242);
    cr_assert_eq(pf.port, 5432);
    cr_assert_eq(pf.status, PG_PM_READY);
    char standby[sizeof(pidfile_ready)];
    memcpy(standby, pidfile_ready, sizeof(standby));
    memcpy(strstr(standby, "ready   "), "standby ", 8);
    cr_assert_eq(pg_pidfile_parse(standby, strlen(standby), &pf), 0);
    cr_assert_eq(pf.status, PG_PM_STANDBY);
}

Test(pg_pidfile, partial_and_other_states)
{
    struct pg_pidfile pf;
    const char *starting = "77\n/d\n1\n5433\n/s\n*\n 1 2\nstarting\n";
    cr_assert_eq(pg_pidfile_parse(starting, strlen(starting), &pf), 0);
    cr_assert_eq(pf.status, PG_PM_STARTING);
    const char *stopping = "77\n/d\n1\n5433\n/s\n*\n 1 2\nstopping\n";
    cr_assert_eq(pg_pidfile_parse(stopping, strlen(stopping), &pf), 0);
    cr_assert_eq(pf.status, PG_PM_STOPPING);
    /* Being written: the status line is missing, or cut. */
    size_t cut = (size_t)(strstr(pidfile_ready, "ready") - pidfile_ready) + 3;
    cr_assert_eq(pg_pidfile_parse(pidfile_ready, cut, &pf), 0);
    cr_assert_eq(pf.status, PG_PM_UNKNOWN);
    cr_assert_eq(pg_pidfile_parse("4242\n/tmp", 10, &pf), 0);
    cr_assert_eq(pf.pid, 4242);
    cr_assert_eq(pf.port, 0);
    cr_assert_eq(pf.status, PG_PM_UNKNOWN);
    const char *single = "-99\n/d\n";
    cr_assert_eq(pg_pidfile_parse(single, strlen(single), &pf), 0);
    cr_assert_eq(pf.pid, -99);
    const char *odd = "5\n/d\n1\n5433\n/s\n*\n 1 2\nreadyish\n";
    cr_assert_eq(pg_pidfile_parse(odd, strlen(odd), &pf), 0);
    cr_assert_eq(pf.status, PG_PM_UNKNOWN);
}

Test(pg_pidfile, not_a_pidfile)
{
    struct pg_pidfile pf;
    const char *bad[] = {"", "\n", "x\n", "0\n", "12a\n", "99999999999\n", "-\n", " 12\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(pg_pidfile_parse(bad[i], strlen(bad[i]), &pf), -EINVAL, "\"%s\"", bad[i]);
    }
}

/* ------------------------------------------------------------------------------------------
 * Quoting
 * ------------------------------------------------------------------------------------------ */

Test(pg_quote, conf_strings)
{
    char out[64];
    cr_assert_eq(pg_quote_conf("127.0.0.2", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "'127.0.0.2'");
    cr_assert_eq(pg_quote_conf("it's a \\path", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "'it\\'s a \\\\path'");
    cr_assert_eq(pg_quote_conf("", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "''");
    cr_assert_eq(pg_quote_conf("two\nlines", out, sizeof(out)), -EINVAL);
    cr_assert_str_eq(out, "");
    cr_assert_eq(pg_quote_conf("abcdef", out, 8), -ENOSPC); /* needs 9 */
    cr_assert_str_eq(out, "");
    cr_assert_eq(pg_quote_conf("abcdef", out, 9), 0);
    cr_assert_eq(pg_quote_conf("x", out, 0), -ENOSPC);
}

Test(pg_quote, conninfo_and_sql)
{
    char out[128];
    cr_assert_eq(pg_quote_conninfo("p'w\\d x", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "'p\\'w\\\\d x'");
    cr_assert_eq(pg_quote_literal("ANY 1 (a,\"b c\")", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "E'ANY 1 (a,\"b c\")'");
    cr_assert_eq(pg_quote_literal("o'k\\", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "E'o\\'k\\\\'");
    cr_assert_eq(pg_quote_literal("a\tb", out, sizeof(out)), -EINVAL);
    cr_assert_eq(pg_quote_ident("repl", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "\"repl\"");
    cr_assert_eq(pg_quote_ident("a\"b", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "\"a\"\"b\"");
    cr_assert_eq(pg_quote_ident("", out, sizeof(out)), -EINVAL);
}

Test(pg_quote, conninfo_building)
{
    char buf[64] = "";
    cr_assert_eq(pg_conninfo_add(buf, sizeof(buf), "host", "10.0.0.1"), 0);
    cr_assert_eq(pg_conninfo_add(buf, sizeof(buf), "password", "s'cret"), 0);
    cr_assert_str_eq(buf, "host='10.0.0.1' password='s\\'cret'");
    char small[24] = "";
    cr_assert_eq(pg_conninfo_add(small, sizeof(small), "host", "10.0.0.1"), 0);
    cr_assert_eq(pg_conninfo_add(small, sizeof(small), "port", "5432"), -ENOSPC);
    cr_assert_str_eq(small, "host='10.0.0.1'"); /* unchanged by the failure */
}

/* ------------------------------------------------------------------------------------------
 * Checks
 * ------------------------------------------------------------------------------------------ */

Test(pg_check, names)
{
    cr_assert(pg_name_is_valid("postgres"));
    cr_assert(pg_name_is_valid("Repl_2"));
    cr_assert(pg_name_is_valid("_x"));
    const char *bad[] = {"", "1abc", "a b", "a\"b", "a-b", "a\nb", "é"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_not(pg_name_is_valid(bad[i]), "\"%s\"", bad[i]);
    }
    char longest[65];
    memset(longest, 'a', 64);
    longest[64] = '\0';
    cr_assert_not(pg_name_is_valid(longest));
    longest[63] = '\0';
    cr_assert(pg_name_is_valid(longest));
}

Test(pg_check, cidrs)
{
    const char *good[] = {"127.0.0.0/8", "10.0.0.31", "0.0.0.0/0",
                          "::1/128",     "fd00::/8",  "10.0.0.0/32"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cr_assert(pg_cidr_is_valid(good[i]), "\"%s\"", good[i]);
    }
    const char *bad[] = {"",
                         "/8",
                         "10.0.0.0/33",
                         "::/129",
                         "10.0.0.0/",
                         "10.0.0.0/-1",
                         "10.0.0.0/8 ",
                         "host.example",
                         "all",
                         "10.0.0.0/8\nlocal all all trust",
                         "10.0.0.0/0008",
                         "10.0.0.0/+8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_not(pg_cidr_is_valid(bad[i]), "\"%s\"", bad[i]);
    }
}
