/* SPDX-License-Identifier: MIT */
/* For the unit tests of a state machine's refusals (core/fsm.h): KEEL_FSM_STRICT=0 so that an
 * illegal transition is refused and logged rather than aborting, and the log captured
 * (log_capture.h) for the test to read back. The test names its log (FSM_LOG_NAME) and sets
 * up its suite with fsm_log_setup/teardown. */
#ifndef KEEL_TESTS_UNIT_FSM_LOG_H
#define KEEL_TESTS_UNIT_FSM_LOG_H

#include <stdlib.h>

#include "log_capture.h"

static void fsm_log_setup(void)
{
    cr_assert_eq(setenv("KEEL_FSM_STRICT", "0", 1), 0);
    log_capture_open(FSM_LOG_NAME);
}

static void fsm_log_teardown(void)
{
    log_capture_close();
}

static const char *fsm_log_text(void)
{
    return log_capture_text();
}

#endif
