/* SPDX-License-Identifier: MIT */
/* Line reading of a child process's output pipe: splitting, bounding, sanitizing. */
#include "core/child_output.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

#define CHILD_READ_CHUNK 4096    /* one read() */
#define CHILD_READS_PER_EVENT 16 /* at most 64 KiB per readiness event: no starving the loop */

static void emit(struct child_output *o, bool is_cut)
{
    size_t len = o->_len;
    if (len > 0 && o->_line[len - 1] == '\r') {
        len--;
    }
    /* One log line per output line: control characters would break that (or a terminal). */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)o->_line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            o->_line[i] = '?';
        }
    }
    o->_len = 0;
    o->_on_line(o->_data, o->_line, len, is_cut);
}

void child_output_feed(struct child_output *o, const char *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = data[i];
        if (c == '\n') {
            if (o->_is_skipping) {
                o->_is_skipping = false;
            } else {
                emit(o, false);
            }
            continue;
        }
        if (o->_is_skipping) {
            continue;
        }
        o->_line[o->_len++] = c;
        if (o->_len == sizeof(o->_line)) {
            emit(o, true);
            o->_is_skipping = true;
        }
    }
}

void child_output_init(struct child_output *o, struct ev_loop *loop, child_line_fn on_line,
                       void *data)
{
    o->_loop = loop;
    o->_fd = -1;
    o->_on_line = on_line;
    o->_data = data;
    o->_len = 0;
    o->_is_skipping = false;
}

static void on_readable(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    child_output_read(io->data, CHILD_READS_PER_EVENT);
}

int child_output_open(struct child_output *o, int fd)
{
    o->_fd = fd;
    o->_len = 0;
    o->_is_skipping = false;
    int rc = ev_io_start(o->_loop, &o->_io, fd, EV_READ, on_readable, o, "child output");
    if (rc != 0) {
        (void)close(fd); /* a pipe's read end: nothing to lose */
        o->_fd = -1;
    }
    return rc;
}

void child_output_close(struct child_output *o)
{
    if (o->_fd == -1) {
        return;
    }
    if (o->_len > 0 && !o->_is_skipping) {
        emit(o, false); /* a last line without its newline */
    }
    o->_len = 0;
    o->_is_skipping = false;
    ev_io_stop(o->_loop, &o->_io);
    (void)close(o->_fd); /* a pipe's read end: nothing to lose */
    o->_fd = -1;
}

void child_output_read(struct child_output *o, int rounds)
{
    char buf[CHILD_READ_CHUNK];
    while (o->_fd != -1 && rounds-- > 0) {
        ssize_t n = read(o->_fd, buf, sizeof(buf));
        if (n > 0) {
            child_output_feed(o, buf, (size_t)n);
            continue;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && errno == EAGAIN) {
            return;
        }
        if (n == -1) {
            log_warn("child", "read() from a process's output failed: %s", strerror(errno));
        }
        child_output_close(o);
    }
}
