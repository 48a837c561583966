/* SPDX-License-Identifier: MIT */
/* The application tier's configuration: the app NAME { } block and its directives, the
 * command-line splitter behind `run "COMMAND ARGS"`, and copying and comparing a struct
 * conf_app (the supervisor keeps its own copy across reloads). */
#ifndef KEEL_APP_APP_CONF_H
#define KEEL_APP_APP_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "core/conf-t.h"
#include "core/err.h"

struct conf_section;

/* Listed by core/conf_registry.c. */
extern const struct conf_section app_conf_section;

#define APP_PROCESSES_MAX 64
#define APP_ARGS_MAX 256 /* arguments of one command */

/* Split a command line into arguments, without a shell: blanks (space, tab) separate
 * arguments; a double quote starts or ends a quoted part in which blanks are kept ("a b"
 * is one argument, "" an empty one); a backslash before '"' or '\' makes it literal (any
 * other backslash is kept as is). line is borrowed. On success returns 0 and *argv_out gets
 * a NULL-terminated malloc'd array of *argc_out (>= 1) malloc'd strings, freed with
 * app_argv_free. Returns -KEEL_ECONFIG with a reason in eb for an empty command, an
 * unterminated quote or too many arguments, -ENOMEM on OOM. Pure; never blocks. */
int app_cmdline_split(const char *line, char ***argv_out, uint32_t *argc_out,
                      struct errbuf *eb) KEEL_MUST_CHECK;

/* Free a NULL-terminated array of malloc'd strings and the array itself. NULL allowed. */
void app_argv_free(char **argv);

/* The port process i of app listens on: the listen port + i. */
uint16_t app_conf_port(const struct conf_app *app, uint32_t i);

/* A deep copy of app (argv and env included) that the caller owns and releases with
 * app_conf_free; NULL on OOM. */
struct conf_app *app_conf_dup(const struct conf_app *app);
void app_conf_free(struct conf_app *app);

/* Whether a and b describe the same processes (everything but positions in the file):
 * a reload keeps such an app running untouched. */
bool app_conf_equal(const struct conf_app *a, const struct conf_app *b);

#endif
