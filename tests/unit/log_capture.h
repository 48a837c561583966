/* SPDX-License-Identifier: MIT */
/* For unit tests that check what was logged: the log is sent to a file of the test's own
 * (/tmp/keel-NAME-PID.log) and read back. Static functions for a test to include; the
 * suite's init calls log_capture_open and its fini log_capture_close. */
#ifndef KEEL_TESTS_UNIT_LOG_CAPTURE_H
#define KEEL_TESTS_UNIT_LOG_CAPTURE_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "core/log.h"

static char log_capture_path[64];

static void log_capture_open(const char *name)
{
    (void)snprintf(log_capture_path, sizeof(log_capture_path), "/tmp/keel-%s-%d.log", name,
                   (int)getpid());
    cr_assert_eq(log_open(log_capture_path), 0);
}

static void log_capture_close(void)
{
    (void)log_open("stderr");
    (void)unlink(log_capture_path);
}

/* What was logged so far (the first 16 KiB). */
static const char *log_capture_text(void)
{
    static char text[16384];
    int fd = open(log_capture_path, O_RDONLY);
    cr_assert_neq(fd, -1);
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    return text;
}

#endif
