/* SPDX-License-Identifier: MIT */
/* A child process of a PostgreSQL instance (see pg_child.h): a core/child.h child without a
 * restart policy, whose output lines are read for PostgreSQL's severities and errors. */
#include "db/pg_child.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/child.h"
#include "core/log.h"

/* PostgreSQL's severity in a line ("[123] FATAL:  ..."): FATAL and PANIC end a session or
 * the server, the operator should see them; the rest is info. */
static enum log_level postgres_level(const char *line, size_t len)
{
    const char *end = line + len;
    for (const char *p = line; p + 6 <= end; p++) {
        if (memcmp(p, "FATAL:", 6) == 0 || memcmp(p, "PANIC:", 6) == 0) {
            return LOG_LEVEL_WARN;
        }
        if (*p == ':') {
            break; /* past the severity */
        }
    }
    return LOG_LEVEL_INFO;
}

/* Whether a line reports a failure: PostgreSQL's "FATAL:"/"PANIC:"/"ERROR:", the tools'
 * "error:"/"fatal:" (pg_rewind: "pg_rewind: error: ..."). */
static bool is_error_line(const char *line, size_t len)
{
    static const char *const marks[] = {"FATAL:", "PANIC:", "ERROR:", "error:", "fatal:"};
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
        if (memmem(line, len, marks[i], strlen(marks[i])) != NULL) {
            return true;
        }
    }
    return false;
}

static int line_level(void *data, const char *line, size_t len)
{
    struct pg_child *c = data;
    if (is_error_line(line, len)) {
        (void)snprintf(c->_last_error, sizeof(c->_last_error), "%.*s", (int)len, line);
    }
    return c->_is_postgres ? (int)postgres_level(line, len) : LOG_LEVEL_INFO;
}

static void on_exit_(void *data, const struct child_exit *e)
{
    struct pg_child *c = data;
    c->_on_exit(c->_data, e->pid != 0 ? e->wstatus : -1);
}

static const struct child_ops pg_child_ops = {.line_level = line_level, .on_exit = on_exit_};

void pg_child_init(struct pg_child *c, struct ev_loop *loop, pg_child_exit_fn on_exit, void *data)
{
    memset(c, 0, sizeof(*c));
    child_init(&c->_child, loop, &pg_child_ops, c);
    c->_on_exit = on_exit;
    c->_data = data;
}

int pg_child_start(struct pg_child *c, const struct pg_child_spec *spec)
{
    if (pg_child_is_running(c)) {
        return -EBUSY;
    }
    c->_is_postgres = spec->is_postgres;
    c->_last_error[0] = '\0';
    struct child_spec req = {.path = spec->path,
                             .argv = spec->argv,
                             .envp = spec->envp,
                             .directory = "/",
                             .ids = spec->ids,
                             .user = spec->user,
                             .output = CHILD_OUTPUT_LOG,
                             .timeout_ms = spec->timeout_ms,
                             .is_env_secret = true, /* PGPASSWORD; nothing here restarts */
                             .ctx = spec->ctx};
    return child_start(&c->_child, &req);
}

void pg_child_signal(struct pg_child *c, int sig, bool is_group)
{
    child_signal(&c->_child, sig, is_group);
}

void pg_child_kill_wait(struct pg_child *c)
{
    (void)child_kill_wait(&c->_child, 0); /* logs a survivor */
}

void pg_child_fini(struct pg_child *c)
{
    child_fini(&c->_child);
}
