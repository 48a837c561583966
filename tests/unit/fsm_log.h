/* SPDX-License-Identifier: MIT */
/* For the unit tests of a state machine's refusals (core/fsm.h): KEEL_FSM_STRICT=0 so that an
 * illegal transition is refused and logged rather than aborting, and the log captured in a
 * file the test reads back. Static functions for a test to include after its source file;
 * the test names the file (FSM_LOG_NAME) and sets up its suite with fsm_log_setup/teardown. */
#ifndef KEEL_TESTS_UNIT_FSM_LOG_H
#define KEEL_TESTS_UNIT_FSM_LOG_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"

static char fsm_log_path[64];

static void fsm_log_setup(void)
{
    cr_assert_eq(setenv("KEEL_FSM_STRICT", "0", 1), 0);
    (void)snprintf(fsm_log_path, sizeof(fsm_log_path), "/tmp/keel-%s-%d.log", FSM_LOG_NAME,
                   (int)getpid());
    cr_assert_eq(log_open(fsm_log_path), 0);
}

static void fsm_log_teardown(void)
{
    (void)log_open("stderr");
    (void)unlink(fsm_log_path);
}

/* What was logged so far (the first 8 KiB). */
static const char *fsm_log_text(void)
{
    static char text[8192];
    int fd = open(fsm_log_path, O_RDONLY);
    cr_assert_neq(fd, -1);
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    return text;
}

#endif
