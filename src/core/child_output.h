/* SPDX-License-Identifier: MIT */
/* Reading a child process's stdout or stderr pipe line by line on the event loop: lines are
 * bounded (a longer one is cut and the rest of it dropped), control characters are replaced
 * so that one output line stays one log line, and each read is bounded so that a chatty
 * process cannot starve the loop. What to do with a line (rate limiting, logging) is the
 * caller's (core/child.c logs them). */
#ifndef KEEL_CORE_CHILD_OUTPUT_H
#define KEEL_CORE_CHILD_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/child-t.h"
#include "core/err.h"
#include "core/ev.h"

/* struct child_output and child_line_fn are in core/child-t.h. Zero it, then
 * child_output_init. */

/* Prepare o (closed). */
void child_output_init(struct child_output *o, struct ev_loop *loop, child_line_fn on_line,
                       void *data);

/* Start reading fd (takes ownership: closed by child_output_close). Returns 0, or -errno after
 * closing fd. */
int child_output_open(struct child_output *o, int fd) KEEL_MUST_CHECK;

/* Read what is there now, at most rounds reads of 4 KiB (the loop does the same, 16 at a
 * time, when the pipe is readable). Closes the pipe at its end. Never blocks. */
void child_output_read(struct child_output *o, int rounds);

/* Feed bytes as if read from the pipe (the reading path uses it; tests too). */
void child_output_feed(struct child_output *o, const char *data, size_t n);

/* Hand over a last line without its newline, stop watching and close. Safe when closed. */
void child_output_close(struct child_output *o);

static inline bool child_output_is_open(const struct child_output *o)
{
    return o->_fd != -1;
}

#endif
