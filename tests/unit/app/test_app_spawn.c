/* SPDX-License-Identifier: MIT */
/* Unit tests of app/app_spawn.c: the environment of a process, finding a command in PATH,
 * user lookups, and real spawns (output, working directory, environment, the messages and
 * exit codes of a failed setup or execve). */
#include <criterion/criterion.h>

#include "app/app_spawn.c"

#include <sys/stat.h>
#include <sys/wait.h>

#include "core/conf.h"

static struct conf *load(const char *text)
{
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), CONF_LOAD_NO_RESOLVE, &conf, &errs);
    cr_assert_eq(rc, 0, "%s", errs.text ? errs.text : "");
    conf_errors_fini(&errs);
    return conf;
}

Test(app_spawn, environment_overrides_and_order)
{
    struct conf *conf = load("app a { listen :1; run x; env FOO app; env NEW 1; }\n");
    char *base[] = {"PATH=/bin", "FOO=keel", "PORT=1", "FOOBAR=keep", "HOSTX=y", NULL};
    char *vars[] = {"PORT=9000", "HOST=127.0.0.1"};
    char **env = app_spawn_env(base, &conf->apps[0], vars, 2);
    const char *want[] = {"PATH=/bin", "FOOBAR=keep", "HOSTX=y",       "FOO=app",
                          "NEW=1",     "PORT=9000",   "HOST=127.0.0.1"};
    size_t n = 0;
    for (; env[n] != NULL; n++) {
        cr_assert_lt(n, 7);
        cr_assert_str_eq(env[n], want[n], "entry %zu", n);
    }
    cr_assert_eq(n, 7);
    free(env);
    env = app_spawn_env(NULL, &conf->apps[0], NULL, 0);
    cr_assert_str_eq(env[0], "FOO=app");
    cr_assert_null(env[2]);
    free(env);
    conf_free(conf);
}

Test(app_spawn, finding_commands)
{
    char out[PATH_MAX];
    struct conf *conf = load("app a { listen :1; run builtin demo; }\n"
                             "app b { listen :2; run ./bin/x; }\n"
                             "app c { listen :3; run sh -c true; }\n"
                             "app d { listen :4; run sh; env PATH /nonexistent; }\n"
                             "app e { listen :5; run no-such-command-keel; }\n");
    cr_assert(app_spawn_find_command(&conf->apps[0], NULL, out, sizeof(out)));
    cr_assert_str_eq(out, "/proc/self/exe");
    cr_assert(app_spawn_find_command(&conf->apps[1], NULL, out, sizeof(out)));
    cr_assert_str_eq(out, "./bin/x");
    cr_assert(app_spawn_find_command(&conf->apps[2], "/nonexistent::/bin", out, sizeof(out)));
    cr_assert_str_eq(out, "/bin/sh");
    cr_assert(app_spawn_find_command(&conf->apps[2], NULL, out, sizeof(out))); /* default */
    cr_assert(strcmp(out, "/usr/bin/sh") == 0 || strcmp(out, "/bin/sh") == 0, "%s", out);
    cr_assert_not(app_spawn_find_command(&conf->apps[3], "/bin", out, sizeof(out)));
    cr_assert_str_eq(out, "sh"); /* the app's own PATH wins */
    cr_assert_not(app_spawn_find_command(&conf->apps[4], "/bin:/usr/bin", out, sizeof(out)));
    cr_assert_str_eq(out, "no-such-command-keel");
    conf_free(conf);
}

Test(app_spawn, user_lookups)
{
    struct app_ids ids;
    bool is_ignored = true;
    struct errbuf eb;
    cr_assert_eq(app_ids_resolve("root", &ids, &is_ignored, &eb), 0);
    if (geteuid() == 0) {
        cr_assert(ids.is_set);
        cr_assert_eq(ids.uid, 0);
        cr_assert_eq(ids.gid, 0);
        cr_assert_geq(ids.n_groups, 1);
        cr_assert_not(is_ignored);
    } else {
        cr_assert_not(ids.is_set);
        cr_assert(is_ignored);
    }
    cr_assert_eq(app_ids_resolve("no-such-user-keel", &ids, &is_ignored, &eb), -1);
    cr_assert_str_eq(eb.msg, "user \"no-such-user-keel\": no such user");
    cr_assert_not(ids.is_set);
}

/* Run req to its end; its stdout and stderr into out/err; returns the wait status. */
static int run(const struct app_spawn *req, char *out, size_t out_size, char *err, size_t err_size)
{
    pid_t pid;
    int fds[2];
    cr_assert_eq(app_spawn_start(req, &pid, fds), 0);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    for (int i = 0; i < 2; i++) {
        char *dst = i == 0 ? out : err;
        size_t size = i == 0 ? out_size : err_size;
        ssize_t n = read(fds[i], dst, size - 1); /* the child is gone: all of it is there */
        dst[n > 0 ? n : 0] = '\0';
        cr_assert_eq(fcntl(fds[i], F_GETFL) & O_NONBLOCK, O_NONBLOCK);
        close(fds[i]);
    }
    return status;
}

Test(app_spawn, runs_in_its_directory_with_its_environment)
{
    char *argv[] = {"sh", "-c",
                    "pwd; echo \"$PORT $FOO\"; echo oops >&2; "
                    "test \"$(ps -o pgid= $$)\" -eq $$ && echo leader; exit 3",
                    NULL};
    char *envp[] = {"PORT=9000", "FOO=bar", "PATH=/usr/bin:/bin", NULL};
    struct app_spawn req = {.path = "/bin/sh", .argv = argv, .envp = envp, .directory = "/tmp"};
    char out[256], err[256];
    int status = run(&req, out, sizeof(out), err, sizeof(err));
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 3);
    cr_assert_str_eq(out, "/tmp\n9000 bar\nleader\n");
    cr_assert_str_eq(err, "oops\n");
}

Test(app_spawn, failures_are_explained)
{
    char *argv[] = {"x", NULL};
    char *envp[] = {NULL};
    char out[256], err[256];
    struct app_spawn req = {.path = "/nonexistent/keel", .argv = argv, .envp = envp};
    int status = run(&req, out, sizeof(out), err, sizeof(err));
    cr_assert_eq(WEXITSTATUS(status), 127);
    cr_assert_str_eq(err, "keel: cannot execute /nonexistent/keel: No such file or directory\n");
    req.path = "/bin/true";
    req.directory = "/nonexistent-dir";
    status = run(&req, out, sizeof(out), err, sizeof(err));
    cr_assert_eq(WEXITSTATUS(status), 126);
    cr_assert_str_eq(err, "keel: cannot change to directory /nonexistent-dir: No such file or "
                          "directory\n");
    req.directory = NULL;
    req.path = "/tmp"; /* a directory */
    status = run(&req, out, sizeof(out), err, sizeof(err));
    cr_assert_eq(WEXITSTATUS(status), 127);
    cr_assert_str_eq(err, "keel: cannot execute /tmp: Permission denied\n");
}

Test(app_spawn, the_child_gets_default_signals_and_no_stray_fds)
{
    /* Block SIGTERM and ignore SIGPIPE here, as keel's control thread does. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    cr_assert_eq(sigprocmask(SIG_BLOCK, &set, NULL), 0);
    signal(SIGPIPE, SIG_IGN);
    int stray = open("/dev/null", O_RDONLY); /* not close-on-exec */
    cr_assert_geq(stray, 3);
    char *argv[] = {"sh", "-c",
                    "grep -E '^(SigBlk|SigIgn)' /proc/self/status; ls /proc/self/fd | wc -l", NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct app_spawn req = {.path = "/bin/sh", .argv = argv, .envp = envp};
    char out[512], err[256];
    int status = run(&req, out, sizeof(out), err, sizeof(err));
    cr_assert_eq(WEXITSTATUS(status), 0, "%s", err);
    cr_assert(strstr(out, "SigBlk:\t0000000000000000\n") != NULL, "%s", out);
    /* Signals 32 and 33 are glibc's own (thread cancellation, setxid): sigaction() refuses
     * them, so they stay as inherited (make, for one, leaves 32 ignored). */
    const char *ign = strstr(out, "SigIgn:\t");
    cr_assert_not_null(ign, "%s", out);
    unsigned long long mask = strtoull(ign + 8, NULL, 16) & ~(3ULL << 31);
    cr_assert_eq(mask, 0, "%s", out);
    /* 0, 1, 2 and the directory ls reads: 4 (no stray fd). */
    cr_assert(strstr(out, "\n4\n") != NULL, "%s", out);
    close(stray);
}
