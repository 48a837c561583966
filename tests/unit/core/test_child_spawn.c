/* SPDX-License-Identifier: MIT */
/* Unit tests of core/child_spawn.c: user lookups, real spawns (output, working directory,
 * environment, process group, the messages and exit codes of a failed setup or execve,
 * signals and fds), output to a file or inherited, and the pure helpers (exit
 * descriptions, durations, the backoff schedule). */
#include <criterion/criterion.h>

#include "core/child_spawn.c"

#include <sys/stat.h>

Test(child_spawn, user_lookups)
{
    struct child_ids ids;
    bool is_ignored = true;
    struct errbuf eb;
    cr_assert_eq(child_ids_resolve("root", &ids, &is_ignored, &eb), 0);
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
    cr_assert_eq(child_ids_resolve("no-such-user-keel", &ids, &is_ignored, &eb), -1);
    cr_assert_str_eq(eb.msg, "user \"no-such-user-keel\": no such user");
    cr_assert_not(ids.is_set);
}

/* Run req to its end; its stdout and stderr into out/err; returns the wait status. */
static int run(const struct child_spec *req, char *out, size_t out_size, char *err, size_t err_size)
{
    pid_t pid;
    int fds[2];
    cr_assert_eq(child_spawn(req, &pid, fds), 0);
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

Test(child_spawn, runs_in_its_directory_with_its_environment)
{
    char *argv[] = {"sh", "-c",
                    "pwd; echo \"$PORT $FOO\"; echo oops >&2; "
                    "test \"$(ps -o pgid= $$)\" -eq $$ && echo leader; exit 3",
                    NULL};
    char *envp[] = {"PORT=9000", "FOO=bar", "PATH=/usr/bin:/bin", NULL};
    struct child_spec req = {.path = "/bin/sh", .argv = argv, .envp = envp, .directory = "/tmp"};
    char out[256], err[256];
    int status = run(&req, out, sizeof(out), err, sizeof(err));
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 3);
    cr_assert_str_eq(out, "/tmp\n9000 bar\nleader\n");
    cr_assert_str_eq(err, "oops\n");
}

Test(child_spawn, failures_are_explained)
{
    char *argv[] = {"x", NULL};
    char *envp[] = {NULL};
    char out[256], err[256];
    struct child_spec req = {.path = "/nonexistent/keel", .argv = argv, .envp = envp};
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

Test(child_spawn, the_child_gets_default_signals_and_no_stray_fds)
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
    struct child_spec req = {.path = "/bin/sh", .argv = argv, .envp = envp};
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

/* ------------------------------------------------------------------------------------------
 * Output elsewhere than pipes; the pure helpers
 * ------------------------------------------------------------------------------------------ */

Test(child_spawn, output_to_a_file_is_appended_and_inherit_gives_no_fds)
{
    char dir[] = "/tmp/keel-child-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[64];
    (void)snprintf(path, sizeof(path), "%s/out.log", dir);
    char *argv[] = {"sh", "-c", "echo out; echo err >&2", NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct child_spec req = {.path = "/bin/sh",
                             .argv = argv,
                             .envp = envp,
                             .output = CHILD_OUTPUT_FILE,
                             .output_path = path};
    for (int round = 0; round < 2; round++) {
        pid_t pid;
        int fds[2] = {0, 0};
        cr_assert_eq(child_spawn(&req, &pid, fds), 0);
        cr_assert_eq(fds[0], -1);
        cr_assert_eq(fds[1], -1);
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert_eq(WEXITSTATUS(status), 0);
    }
    char text[128] = "";
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    cr_assert_str_eq(text, "out\nerr\nout\nerr\n");
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    /* Never through a symbolic link; the error is the parent's, nothing runs. */
    char link[64];
    (void)snprintf(link, sizeof(link), "%s/link.log", dir);
    cr_assert_eq(symlink(path, link), 0);
    req.output_path = link;
    pid_t pid = 0;
    int fds[2];
    cr_assert_eq(child_spawn(&req, &pid, fds), -ELOOP);
    cr_assert_eq(pid, 0);
    unlink(link);
    unlink(path);
    rmdir(dir);
    /* Inherited: no pipes. */
    char *quiet[] = {"true", NULL};
    struct child_spec inherit = {
        .path = "/bin/true", .argv = quiet, .envp = envp, .output = CHILD_OUTPUT_INHERIT};
    cr_assert_eq(child_spawn(&inherit, &pid, fds), 0);
    cr_assert_eq(fds[0], -1);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert_eq(status, 0);
}

Test(child_describe, exit_descriptions)
{
    char out[96];
    child_describe_exit(0, out, sizeof(out));
    cr_assert_str_eq(out, "exit status 0");
    child_describe_exit(1 << 8, out, sizeof(out));
    cr_assert_str_eq(out, "exit status 1");
    child_describe_exit(SIGKILL, out, sizeof(out));
    cr_assert_str_eq(out, "killed by signal 9 (SIGKILL)");
    child_describe_exit(SIGSEGV | 0x80, out, sizeof(out));
    cr_assert_str_eq(out, "killed by signal 11 (SIGSEGV), core dumped");
    child_describe_exit(-1, out, sizeof(out));
    cr_assert_str_eq(out, "exit status unknown");
}

Test(child_describe, durations)
{
    char out[32];
    child_format_ms(400, out, sizeof(out));
    cr_assert_str_eq(out, "400ms");
    child_format_ms(1000, out, sizeof(out));
    cr_assert_str_eq(out, "1.0s");
    child_format_ms(12345, out, sizeof(out));
    cr_assert_str_eq(out, "12.3s");
}

/* ------------------------------------------------------------------------------------------
 * Backoff
 * ------------------------------------------------------------------------------------------ */

/* The schedule with a 10 s stable run, as apps use it. */
static uint32_t next(struct child_backoff *b, uint64_t uptime_ms, uint32_t initial_ms,
                     uint32_t max_ms)
{
    struct child_restart r = {.initial_ms = initial_ms, .max_ms = max_ms, .stable_ms = 10000};
    return child_backoff_next(b, uptime_ms, &r);
}

Test(child_backoff, doubles_up_to_the_maximum)
{
    struct child_backoff b = {0};
    const uint32_t want[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        cr_assert_eq(next(&b, 100, 500, 30000), want[i], "exit %zu", i);
    }
}

Test(child_backoff, resets_after_a_stable_run)
{
    struct child_backoff b = {0};
    cr_assert_eq(next(&b, 0, 100, 1000), 100);
    cr_assert_eq(next(&b, 0, 100, 1000), 200);
    cr_assert_eq(next(&b, 9999, 100, 1000), 400);
    cr_assert_eq(next(&b, 10000, 100, 1000), 100);
    cr_assert_eq(next(&b, 5, 100, 1000), 200);
    b.next_ms = 0; /* what the stable timer does */
    cr_assert_eq(next(&b, 5, 100, 1000), 100);
}

Test(child_backoff, maximum_equal_to_initial_and_odd_maximum)
{
    struct child_backoff b = {0};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(next(&b, 0, 250, 250), 250);
    }
    struct child_backoff c = {0};
    cr_assert_eq(next(&c, 0, 300, 1000), 300);
    cr_assert_eq(next(&c, 0, 300, 1000), 600);
    cr_assert_eq(next(&c, 0, 300, 1000), 1000);
    cr_assert_eq(next(&c, 0, 300, 1000), 1000);
}

Test(child_backoff, no_overflow_near_the_limits)
{
    struct child_backoff b = {0};
    uint32_t hour = 3600u * 1000u;
    uint32_t last = 0;
    for (int i = 0; i < 40; i++) {
        last = next(&b, 0, 10, hour);
        cr_assert_leq(last, hour);
    }
    cr_assert_eq(last, hour);
}
