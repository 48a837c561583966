/* SPDX-License-Identifier: MIT */
/* The illegal-transition convention (src/core/fsm.c): logged, counted per machine, refused;
 * an abort in strict mode. */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsm.c"

Test(fsm, machine_names)
{
    const char *want[FSM_MACHINE_COUNT] = {"http", "tcp",     "app",  "pg",  "vrrp",
                                           "db",   "session", "cert", "acme"};
    for (unsigned m = 0; m < FSM_MACHINE_COUNT; m++) {
        cr_assert_str_eq(fsm_machine_name((enum fsm_machine)m), want[m]);
    }
    cr_assert_str_eq(fsm_machine_name((enum fsm_machine)FSM_MACHINE_COUNT), "?");
    cr_assert_eq(fsm_illegal_count((enum fsm_machine)FSM_MACHINE_COUNT), 0);
}

Test(fsm, strict_follows_the_environment)
{
    cr_assert_eq(setenv("KEEL_FSM_STRICT", "1", 1), 0);
    cr_assert(fsm_is_strict());
    cr_assert_eq(setenv("KEEL_FSM_STRICT", "0", 1), 0);
    cr_assert_not(fsm_is_strict());
}

Test(fsm, illegal_is_counted_per_machine_and_returns_when_not_strict)
{
    cr_assert_eq(setenv("KEEL_FSM_STRICT", "0", 1), 0);
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_DB), 0);
    fsm_illegal(FSM_MACHINE_DB, "db1", "primary", "stopped", "test");
    fsm_illegal(FSM_MACHINE_DB, NULL, "primary", "stopped", NULL);
    fsm_illegal(FSM_MACHINE_HTTP, "conn 3", "closed", "idle", "test");
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_DB), 2);
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_HTTP), 1);
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_VRRP), 0);
}

Test(fsm, illegal_aborts_when_strict, .signal = SIGABRT)
{
    cr_assert_eq(setenv("KEEL_FSM_STRICT", "1", 1), 0);
    fsm_illegal(FSM_MACHINE_PG, "pg db1", "stopped", "stopping", "test");
    cr_assert_fail("fsm_illegal returned in strict mode");
}
