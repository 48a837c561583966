/* SPDX-License-Identifier: MIT */
/* What has to be resolved before an application process starts: its environment and its
 * executable in PATH. The supervisor (app_supervisor.c) starts it with core/child.h. */
#ifndef KEEL_APP_APP_SPAWN_H
#define KEEL_APP_APP_SPAWN_H

#include <stdbool.h>
#include <stddef.h>

#include "core/conf-t.h"

/* The environment of a process: base (keel's environ) without the variables that the app's
 * env directives or vars ("KEY=VALUE" keel sets itself: PORT, HOST, ...) set, then the
 * app's env, then vars. Returns a NULL-terminated malloc'd array of borrowed strings (free
 * the array alone), NULL on OOM. Pure. */
char **app_spawn_env(char *const *base, const struct conf_app *conf, char *const *vars,
                     size_t n_vars);

/* The executable for conf into out: "/proc/self/exe" for the built-in demo (keel itself,
 * even if its file was replaced), argv[0] when it contains a '/' (relative to the app's
 * directory), else the first directory of PATH where argv[0] is executable (the app's own
 * PATH if its env sets one, else path_env, else /usr/local/bin:/usr/bin:/bin). Returns
 * false when not found (out holds argv[0]: execve will fail and say so). Blocks on file
 * system lookups: boot or reload time only. */
bool app_spawn_find_command(const struct conf_app *conf, const char *path_env, char *out,
                            size_t size);

#endif
