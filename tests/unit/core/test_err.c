/* SPDX-License-Identifier: MIT */
/* Unit tests for src/core/err.c: every keel error code has a name and a message. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "core/err.c"

Test(err, every_keel_code_has_a_name_and_message)
{
    for (int code = KEEL_EBASE + 1; code < KEEL_ELAST; code++) {
        const char *name = err_name(-code);
        const char *msg = err_str(-code);
        cr_assert(strncmp(name, "KEEL_E", 6) == 0, "code %d has no name (%s)", code, name);
        cr_assert_str_neq(msg, "unknown error", "code %d has no message", code);
    }
}

Test(err, errno_codes_use_the_system_names)
{
    cr_assert_str_eq(err_name(-ECONNREFUSED), "ECONNREFUSED");
    cr_assert_str_eq(err_str(-ECONNREFUSED), strerror(ECONNREFUSED));
    cr_assert_str_eq(err_name(0), "OK");
}

Test(err, errbuf_formats_and_accepts_null)
{
    struct errbuf eb;
    errbuf_set(&eb, "bind() to %s failed", "1.2.3.4:80");
    cr_assert_str_eq(eb.msg, "bind() to 1.2.3.4:80 failed");
    errbuf_set(NULL, "ignored %d", 1);
}
