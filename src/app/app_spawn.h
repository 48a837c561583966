/* SPDX-License-Identifier: MIT */
/* Starting one application process (fork + execve, never a shell), and what has to be
 * resolved before: its environment, its executable in PATH, the ids of its `user`. The
 * supervisor (app_supervisor.c) decides when; this file only knows how. */
#ifndef KEEL_APP_APP_SPAWN_H
#define KEEL_APP_APP_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/conf-t.h"
#include "core/err.h"

#define APP_GROUPS_MAX 256 /* supplementary groups of a `user` */

/* Who the processes of an app run as. */
struct app_ids {
    bool is_set; /* false: keel's own ids */
    uid_t uid;
    gid_t gid;
    gid_t groups[APP_GROUPS_MAX];
    int n_groups;
};

/* What to start. Everything is borrowed for the call. */
struct app_spawn {
    const char *path;          /* what execve runs */
    char *const *argv;         /* NULL-terminated */
    char *const *envp;         /* NULL-terminated (see app_spawn_env) */
    const char *directory;     /* working directory; NULL: keel's */
    const struct app_ids *ids; /* NULL or !is_set: keel's own ids */
    const char *user;          /* the user's name, for the error message */
};

/* Fork and exec req. The child gets its own process group, /dev/null as stdin, pipes as
 * stdout and stderr, no other fd, every signal at its default and none blocked, the working
 * directory and ids asked for, and SIGKILL when keel dies (PR_SET_PDEATHSIG). If setting
 * that up or execve fails, it writes "keel: cannot <what> <arg>: <reason>" to its stderr
 * and exits with 126 (setup) or 127 (execve). On success returns 0 with *pid and, in
 * out_fds, the read ends of its stdout and stderr (non-blocking, close-on-exec, owned by the
 * caller); else -errno with nothing left open. Only async-signal-safe calls run in the
 * child (keel has threads). Does not block. */
int app_spawn_start(const struct app_spawn *req, pid_t *pid, int out_fds[2]) KEEL_MUST_CHECK;

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

/* The ids of user (NSS lookups block: boot or reload time only). Returns 0 with ids set
 * when keel runs as root; 0 with ids->is_set false when it does not (*is_ignored tells
 * whether user was another user than keel's, i.e. the directive has no effect); -1 with a
 * reason in eb when the user does not exist. */
int app_ids_resolve(const char *user, struct app_ids *ids, bool *is_ignored,
                    struct errbuf *eb) KEEL_MUST_CHECK;

#endif
