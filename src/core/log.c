/* SPDX-License-Identifier: MIT */
/* The error log. Owns the log fd; lines are formatted on the stack and written at once. */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_fd = 2;
static _Atomic int log_level = LOG_LEVEL_INFO;
static _Thread_local char thread_name[16] = "main";

static const char *const level_names[] = {"error", "warn", "notice", "info", "debug"};

int log_level_parse(const char *name)
{
    for (int i = 0; i <= LOG_LEVEL_DEBUG; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *log_level_name(enum log_level level)
{
    return (unsigned)level <= LOG_LEVEL_DEBUG ? level_names[level] : "?";
}

int log_file_open(const char *path)
{
    /* O_NOFOLLOW: keel runs as root; a log path that someone made a symbolic link would make
     * it append to (or create) any file the link names. */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    return fd == -1 ? -errno : fd;
}

const char *log_file_strerror(int rc)
{
    return rc == -ELOOP ? "it is a symbolic link (refused: log files are opened without following "
                          "links)"
                        : strerror(-rc);
}

int log_open(const char *path)
{
    int fd = 2;
    if (strcmp(path, "stderr") != 0) {
        fd = log_file_open(path);
        if (fd < 0) {
            return fd;
        }
    }
    int old = atomic_exchange(&log_fd, fd);
    /* A line being written concurrently to the old fd may be lost on reload; the old fd is
     * closed only after a grace period would be better, but reload is rare. */
    if (old != 2 && old != fd) {
        close(old);
    }
    return 0;
}

void log_set_level(enum log_level level)
{
    atomic_store(&log_level, (int)level);
}

bool log_enabled(enum log_level level)
{
    return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void log_set_thread_name(const char *name)
{
    snprintf(thread_name, sizeof(thread_name), "%s", name);
}

void log_msg(enum log_level level, const char *ctx, const char *fmt, ...)
{
    if (!log_enabled(level)) {
        return;
    }
    int saved_errno = errno;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ [%s] %s %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], thread_name, ctx);
    if (n < 0) {
        n = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
    }
    line[len++] = '\n';
    ssize_t w = write(atomic_load(&log_fd), line, len);
    (void)w; /* nowhere left to report a failed log write */
    errno = saved_errno;
}
