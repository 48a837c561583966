/* SPDX-License-Identifier: MIT */
/* Reading a child process's stdout or stderr pipe line by line on the event loop: lines are
 * bounded (a longer one is cut and the rest of it dropped), control characters are replaced
 * so that one output line stays one log line, and each read is bounded so that a chatty
 * process cannot starve the loop. What to do with a line (rate limiting, logging) is the
 * caller's. */
#ifndef KEEL_APP_APP_OUTPUT_H
#define KEEL_APP_APP_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "core/ev.h"

#define APP_LINE_MAX 1024 /* longer output lines are cut */

/* One line: len bytes at line (no newline, no NUL inside, valid during the call); is_cut
 * when the line was longer than APP_LINE_MAX and the rest of it is dropped. */
typedef void (*app_output_line_fn)(void *data, const char *line, size_t len, bool is_cut);

/* A pipe being read. Embed it; zero it, then app_output_init. Fields are private. */
struct app_output {
    struct ev_loop *_loop;
    int _fd; /* read end, non-blocking; -1 when closed */
    struct ev_io _io;
    app_output_line_fn _on_line;
    void *_data;
    size_t _len;       /* bytes in _line */
    bool _is_skipping; /* the current line was too long: drop the rest of it */
    char _line[APP_LINE_MAX];
};

/* Prepare o (closed). */
void app_output_init(struct app_output *o, struct ev_loop *loop, app_output_line_fn on_line,
                     void *data);

/* Start reading fd (takes ownership: closed by app_output_close). Returns 0, or -errno after
 * closing fd. */
int app_output_open(struct app_output *o, int fd) KEEL_MUST_CHECK;

/* Read what is there now, at most rounds reads of 4 KiB (the loop does the same, 16 at a
 * time, when the pipe is readable). Closes the pipe at its end. Never blocks. */
void app_output_read(struct app_output *o, int rounds);

/* Feed bytes as if read from the pipe (the reading path uses it; tests too). */
void app_output_feed(struct app_output *o, const char *data, size_t n);

/* Hand over a last line without its newline, stop watching and close. Safe when closed. */
void app_output_close(struct app_output *o);

static inline bool app_output_is_open(const struct app_output *o)
{
    return o->_fd != -1;
}

#endif
