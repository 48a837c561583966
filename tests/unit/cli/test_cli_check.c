/* SPDX-License-Identifier: MIT */
/* Unit tests of cli/cli_check.c: `keel check` output and exit codes. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "cli/cli_check.c"

#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static void redirect(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
}

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/test_cli_check_XXXXXX");
    cr_assert_not_null(path);
    int fd = mkstemp(path);
    cr_assert_neq(fd, -1);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static int run(int argc, const char **argv)
{
    return cli_check(argc, (char **)argv);
}

Test(cli_check, valid_file, .init = redirect)
{
    char *path = write_temp("frontend www { bind 127.0.0.1:18080; backend web; }\n"
                            "frontend pg { bind 127.0.0.1:15432; mode tcp; backend db; }\n"
                            "backend web { server a 127.0.0.1:9001; server b 127.0.0.1:9002; }\n"
                            "backend db { mode tcp; server p 127.0.0.1:5432; }\n");
    const char *argv[] = {"check", "-c", path};
    cr_assert_eq(run(3, argv), KEEL_EXIT_OK);
    fflush(stdout);
    char want[256];
    snprintf(want, sizeof(want), "%s: configuration ok (2 frontends, 2 backends, 3 servers)\n",
             path);
    cr_assert_stdout_eq_str(want);
    unlink(path);
    free(path);
}

Test(cli_check, config_errors_exit_1, .init = redirect)
{
    char *path = write_temp("global { wrokers 2; }\nbackend b { }\n");
    const char *argv[] = {"check", "--config", path};
    cr_assert_eq(run(3, argv), KEEL_EXIT_CONFIG);
    fflush(stderr);
    char want[512];
    snprintf(want, sizeof(want),
             "%s:1:10: error: unknown directive \"wrokers\" (did you mean \"workers\"?)\n"
             "%s:2:1: error: backend \"b\" has no \"server\" directive\n",
             path, path);
    cr_assert_stderr_eq_str(want);
    unlink(path);
    free(path);
}

Test(cli_check, missing_file_exits_1, .init = redirect)
{
    const char *argv[] = {"check", "-c", "/nonexistent/keel.conf"};
    cr_assert_eq(run(3, argv), KEEL_EXIT_CONFIG);
    fflush(stderr);
    cr_assert_stderr_eq_str(
        "error: cannot open /nonexistent/keel.conf: No such file or directory\n");
}

Test(cli_check, attached_option_forms, .init = redirect)
{
    const char *argv1[] = {"check", "-c/nonexistent"};
    cr_assert_eq(run(2, argv1), KEEL_EXIT_CONFIG);
    const char *argv2[] = {"check", "--config=/nonexistent"};
    cr_assert_eq(run(2, argv2), KEEL_EXIT_CONFIG);
}

Test(cli_check, usage_errors_exit_2, .init = redirect)
{
    const char *none[] = {"check"};
    cr_assert_eq(run(1, none), KEEL_EXIT_USAGE);
    const char *dangling[] = {"check", "-c"};
    cr_assert_eq(run(2, dangling), KEEL_EXIT_USAGE);
    const char *extra[] = {"check", "-c", "x", "y"};
    cr_assert_eq(run(4, extra), KEEL_EXIT_USAGE);
    const char *unknown[] = {"check", "--bogus"};
    cr_assert_eq(run(2, unknown), KEEL_EXIT_USAGE);
}

Test(cli_check, help_exits_0, .init = redirect)
{
    const char *argv[] = {"check", "--help"};
    cr_assert_eq(run(2, argv), KEEL_EXIT_OK);
    fflush(stdout);
    cr_assert_stdout_eq_str("usage: keel check -c FILE\n"
                            "  validate a configuration file; errors are printed as "
                            "file:line:col\n");
}

/* The open files limit: keel check sizes each node's frontends against this machine's hard
 * limit (what keel run raises the soft limit to) and refuses a maxconn that cannot fit. */
Test(cli_check, maxconn_over_the_open_files_limit_exits_1, .init = redirect)
{
    struct rlimit rl = {.rlim_cur = 1000, .rlim_max = 1000}; /* this test's own process */
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    char *path = write_temp("node lb1 { address 127.0.0.1; roles lb; }\n"
                            "global { workers 1; }\n"
                            "frontend www { bind :18080; backend web; maxconn 600; }\n"
                            "backend web { mode http; keepalive 1; server a 127.0.0.1:9001; }\n");
    const char *argv[] = {"check", "-c", path};
    cr_assert_eq(run(3, argv), KEEL_EXIT_CONFIG);
    fflush(stderr);
    char want[1024];
    snprintf(want, sizeof(want),
             "%s:3:1: error: frontend \"www\": maxconn 600 does not fit: the frontends need "
             "1266 descriptors (maxconn total 600 x 2 + 1 listening sockets + 1 pooled server "
             "connections + a reserve of 64 for the control plane), more than the open files "
             "limit 1000; lower maxconn or raise the hard limit (ulimit -Hn, systemd "
             "LimitNOFILE=) (node lb1)\n",
             path);
    cr_assert_stderr_eq_str(want);
    unlink(path);
    free(path);
}

Test(cli_check, maxconn_that_fits_the_open_files_limit_is_ok, .init = redirect)
{
    struct rlimit rl = {.rlim_cur = 1000, .rlim_max = 1000};
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    char *path = write_temp("node lb1 { address 127.0.0.1; roles lb; }\n"
                            "global { workers 1; }\n"
                            "frontend www { bind :18080; backend web; maxconn 400; }\n"
                            "backend web { keepalive 1; server a 127.0.0.1:9001; }\n");
    const char *argv[] = {"check", "-c", path};
    cr_assert_eq(run(3, argv), KEEL_EXIT_OK);
    unlink(path);
    free(path);
}
