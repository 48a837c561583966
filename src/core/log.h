/* SPDX-License-Identifier: MIT */
/* The error log: leveled, one line per message, to stderr or a file. Thread-safe: each
 * message is one write(2). */
#ifndef KEEL_CORE_LOG_H
#define KEEL_CORE_LOG_H

#include <stdbool.h>

enum log_level {
    LOG_LEVEL_ERROR = 0, /* the operator must act */
    LOG_LEVEL_WARN,
    LOG_LEVEL_NOTICE, /* state transitions */
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG
};

/* Parse "error", "warn", "notice", "info", "debug"; returns -1 if unknown. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

/* Route the log to path ("stderr" or a file opened for append). Returns 0 or -errno.
 * Called at boot and on reload, never from workers. */
int log_open(const char *path);

/* Open a log file (error or access log) for append, creating it 0644; never through a symbolic
 * link (the last component). Returns the fd, or -errno: -ELOOP when path is a symbolic link.
 * log_file_strerror(rc) says what went wrong, in words for the operator. May block (boot and
 * reload only). */
int log_file_open(const char *path);
const char *log_file_strerror(int rc);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

/* Set this thread's name, shown in every line ("main", "w0", "ctl"). */
void log_set_thread_name(const char *name);

/* ctx names the subsystem and object, e.g. "backend web/server a". */
void log_msg(enum log_level level, const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(ctx, ...) log_msg(LOG_LEVEL_ERROR, ctx, __VA_ARGS__)
#define log_warn(ctx, ...) log_msg(LOG_LEVEL_WARN, ctx, __VA_ARGS__)
#define log_notice(ctx, ...) log_msg(LOG_LEVEL_NOTICE, ctx, __VA_ARGS__)
#define log_info(ctx, ...) log_msg(LOG_LEVEL_INFO, ctx, __VA_ARGS__)
#define log_debug(ctx, ...)                                                                        \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_DEBUG)) {                                                        \
            log_msg(LOG_LEVEL_DEBUG, ctx, __VA_ARGS__);                                            \
        }                                                                                          \
    } while (0)

#endif
