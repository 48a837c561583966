/* SPDX-License-Identifier: MIT */
/* Unit tests of app/app_conf.c: every directive of the app block with its defaults, every
 * error with its exact "file:line:col: error: ..." text, the command-line splitter, and
 * copying and comparing an app's configuration. */
#include <criterion/criterion.h>

#include "app/app_conf.c"

#include <unistd.h>

/* ------------------------------------------------------------------------------------------
 * Helpers. Loads use CONF_LOAD_NO_RESOLVE (no user, directory or DNS lookups) unless the
 * test is about those lookups.
 * ------------------------------------------------------------------------------------------ */

static struct conf *load_flags(const char *text, unsigned flags)
{
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), flags, &conf, &errs);
    cr_assert_eq(rc, 0, "unexpected errors:\n%s", errs.text ? errs.text : "(none)");
    cr_assert_not_null(conf);
    conf_errors_fini(&errs);
    return conf;
}

static struct conf *load_ok(const char *text)
{
    return load_flags(text, CONF_LOAD_NO_RESOLVE);
}

static void expect_errors_flags(const char *text, unsigned flags, const char *want)
{
    struct conf *conf = (struct conf *)1;
    struct conf_errors errs;
    int rc = conf_load_mem("t.conf", text, strlen(text), flags, &conf, &errs);
    cr_assert_eq(rc, -KEEL_ECONFIG, "rc %d for:\n%s", rc, text);
    cr_assert_null(conf);
    cr_assert_not_null(errs.text, "no error text for:\n%s", text);
    cr_assert_str_eq(errs.text, want, "for:\n%s\ngot:\n%s\nwant:\n%s", text, errs.text, want);
    conf_errors_fini(&errs);
}

static void expect_errors(const char *text, const char *want)
{
    expect_errors_flags(text, CONF_LOAD_NO_RESOLVE, want);
}

/* ------------------------------------------------------------------------------------------
 * Valid blocks
 * ------------------------------------------------------------------------------------------ */

Test(app_conf, minimal_app_gets_the_defaults)
{
    struct conf *conf = load_ok("app web { listen 127.0.0.1:9000; run builtin demo; }\n");
    cr_assert_eq(conf->n_apps, 1);
    const struct conf_app *a = &conf->apps[0];
    cr_assert_str_eq(a->name, "web");
    cr_assert_str_eq(a->listen.text, "127.0.0.1:9000");
    cr_assert_eq(a->listen_pos.line, 1);
    cr_assert_eq(a->listen_pos.col, 18);
    cr_assert_eq(a->kind, CONF_APP_BUILTIN_DEMO);
    cr_assert_null(a->argv);
    cr_assert_eq(a->argc, 0);
    cr_assert_eq(a->n_env, 0);
    cr_assert_eq(a->processes, 1);
    cr_assert_str_eq(a->directory, "");
    cr_assert_str_eq(a->user, "");
    cr_assert_eq(a->stop_timeout_ms, 5000);
    cr_assert_eq(a->backoff_initial_ms, 500);
    cr_assert_eq(a->backoff_max_ms, 30000);
    cr_assert_eq(a->check.type, CONF_CHECK_NONE);
    cr_assert_str_eq(a->check.method, "GET");
    cr_assert_str_eq(a->check.path, "/");
    cr_assert_eq(a->check.status_min, 200);
    cr_assert_eq(a->check.status_max, 399);
    cr_assert_eq(a->check.interval_ms, 2000);
    cr_assert_eq(a->check.timeout_ms, 1000);
    cr_assert_eq(a->check.rise, 2);
    cr_assert_eq(a->check.fall, 3);
    cr_assert_eq(a->pos.line, 1);
    cr_assert_eq(a->pos.col, 1);
    cr_assert_eq(app_conf_port(a, 0), 9000);
    conf_free(conf);
}

Test(app_conf, every_directive)
{
    struct conf *conf =
        load_ok("app shop {\n"
                "    listen :9000;\n"
                "    run \"/usr/bin/python3 -m shop.server --title \\\"my shop\\\"\";\n"
                "    processes 3;\n"
                "    env SHOP_ENV production;\n"
                "    env EMPTY \"\";\n"
                "    directory /srv/shop;\n"
                "    user www-data;\n"
                "    stop_timeout 0s;\n"
                "    restart_backoff 1s 1m;\n"
                "    check http method HEAD path /healthz host shop.local "
                "status 200-299 interval 1s timeout 500ms rise 1 fall 4;\n"
                "}\n");
    const struct conf_app *a = &conf->apps[0];
    cr_assert_str_eq(a->listen.text, "0.0.0.0:9000");
    cr_assert_eq(a->kind, CONF_APP_COMMAND);
    cr_assert_eq(a->argc, 5);
    const char *want[] = {"/usr/bin/python3", "-m", "shop.server", "--title", "my shop"};
    for (int i = 0; i < 5; i++) {
        cr_assert_str_eq(a->argv[i], want[i]);
    }
    cr_assert_null(a->argv[5]);
    cr_assert_eq(a->processes, 3);
    cr_assert_eq(a->n_env, 2);
    cr_assert_str_eq(a->env[0], "SHOP_ENV=production");
    cr_assert_str_eq(a->env[1], "EMPTY=");
    cr_assert_str_eq(a->directory, "/srv/shop");
    cr_assert_str_eq(a->user, "www-data");
    cr_assert_eq(a->stop_timeout_ms, 0);
    cr_assert_eq(a->backoff_initial_ms, 1000);
    cr_assert_eq(a->backoff_max_ms, 60000);
    cr_assert_eq(a->check.type, CONF_CHECK_HTTP);
    cr_assert_str_eq(a->check.method, "HEAD");
    cr_assert_str_eq(a->check.path, "/healthz");
    cr_assert_str_eq(a->check.host, "shop.local");
    cr_assert_eq(a->check.status_min, 200);
    cr_assert_eq(a->check.status_max, 299);
    cr_assert_eq(a->check.interval_ms, 1000);
    cr_assert_eq(a->check.timeout_ms, 500);
    cr_assert_eq(a->check.rise, 1);
    cr_assert_eq(a->check.fall, 4);
    cr_assert_eq(app_conf_port(a, 2), 9002);
    conf_free(conf);
}

Test(app_conf, run_with_several_words_and_tcp_check)
{
    struct conf *conf = load_ok("app a { listen [::1]:9000; run /bin/worker --queue \"high prio\"; "
                                "check tcp interval 100ms; }\n"
                                "app b { listen 127.0.0.1:9001; run \"builtin\"; check http "
                                "status 204; }\n");
    const struct conf_app *a = &conf->apps[0];
    cr_assert_str_eq(a->listen.text, "[::1]:9000");
    cr_assert_eq(a->argc, 3);
    cr_assert_str_eq(a->argv[0], "/bin/worker");
    cr_assert_str_eq(a->argv[1], "--queue");
    cr_assert_str_eq(a->argv[2], "high prio");
    cr_assert_eq(a->check.type, CONF_CHECK_TCP);
    cr_assert_eq(a->check.interval_ms, 100);
    const struct conf_app *b = &conf->apps[1];
    cr_assert_eq(b->kind, CONF_APP_COMMAND); /* a quoted "builtin" is a command name */
    cr_assert_str_eq(b->argv[0], "builtin");
    cr_assert_eq(b->check.status_min, 204);
    cr_assert_eq(b->check.status_max, 204);
    conf_free(conf);
}

Test(app_conf, apps_next_to_frontends_on_other_ports)
{
    struct conf *conf =
        load_ok("global { admin 127.0.0.1:9100; }\n"
                "frontend www { bind 127.0.0.1:8080; backend web; }\n"
                "backend web { server a 127.0.0.1:9000; server b 127.0.0.1:9001; }\n"
                "app a { listen 127.0.0.1:9000; run builtin demo; processes 2; }\n"
                "app b { listen 127.0.0.2:9000; run builtin demo; }\n"
                "app c { listen 127.0.0.1:9101; run builtin demo; processes 64; }\n"
                "app d { listen [::1]:9000; run builtin demo; }\n");
    cr_assert_eq(conf->n_apps, 4);
    conf_free(conf);
}

Test(app_conf, lookups_of_user_and_directory)
{
    /* Without CONF_LOAD_NO_RESOLVE the user and the directory must exist. */
    struct conf *conf = load_flags("app a { listen 127.0.0.1:9000; run builtin demo; user root; "
                                   "directory /; }\n",
                                   0);
    cr_assert_str_eq(conf->apps[0].user, "root");
    conf_free(conf);
    expect_errors_flags(
        "app a { listen 127.0.0.1:9000; run builtin demo; user nosuchuser-keel; }\n", 0,
        "t.conf:1:55: error: invalid value \"nosuchuser-keel\" for \"user\": no such user\n");
    expect_errors_flags(
        "app a { listen 127.0.0.1:9000; run builtin demo; directory /nonexistent/keel; }\n", 0,
        "t.conf:1:60: error: invalid value \"/nonexistent/keel\" for \"directory\": No such "
        "file or directory\n");
    expect_errors_flags(
        "app a { listen 127.0.0.1:9000; run builtin demo; directory /etc/hostname; }\n", 0,
        "t.conf:1:60: error: invalid value \"/etc/hostname\" for \"directory\": not a "
        "directory\n");
}

/* ------------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------------ */

Test(app_conf, required_directives)
{
    expect_errors("app a { }\n", "t.conf:1:1: error: app \"a\" has no \"listen\" directive\n"
                                 "t.conf:1:1: error: app \"a\" has no \"run\" directive\n");
}

Test(app_conf, block_name_and_duplicates)
{
    expect_errors("app a/b { listen :9000; run builtin demo; }\n",
                  "t.conf:1:5: error: invalid app name \"a/b\": a name is 1-63 letters, digits, "
                  "'-', '_' or '.'\n");
    expect_errors("app a { listen :9000; run builtin demo; }\n"
                  "app a { listen :9001; run builtin demo; }\n",
                  "t.conf:2:5: error: duplicate app \"a\" (first defined at line 1)\n");
    expect_errors("app a { listen :9000; listen :9001; run builtin demo; run builtin demo; }\n",
                  "t.conf:1:23: error: duplicate \"listen\" (first at line 1)\n"
                  "t.conf:1:55: error: duplicate \"run\" (first at line 1)\n");
    expect_errors("app { listen :9000; }\n",
                  "t.conf:1:1: error: \"app\" takes 1 argument, got 0 (usage: app NAME { ... })\n");
    expect_errors("app a;\n",
                  "t.conf:1:6: error: \"app\" needs a block (usage: app NAME { ... })\n");
}

Test(app_conf, directives_in_the_wrong_place)
{
    expect_errors("listen :9000;\n", "t.conf:1:1: error: directive \"listen\" is not allowed at "
                                     "top level (allowed in: app)\n");
    expect_errors("backend b { server a 127.0.0.1:1; processes 2; }\n",
                  "t.conf:1:35: error: directive \"processes\" is not allowed in backend "
                  "(allowed in: app)\n");
    expect_errors("app a { listen :9000; run builtin demo; server x 127.0.0.1:1; }\n",
                  "t.conf:1:41: error: directive \"server\" is not allowed in app (allowed in: "
                  "backend)\n");
    expect_errors("app a { listen :9000; run builtin demo; proceses 2; }\n",
                  "t.conf:1:41: error: unknown directive \"proceses\" (did you mean "
                  "\"processes\"?)\n");
}

Test(app_conf, listen_errors)
{
    expect_errors("app a { listen 127.0.0.1; run builtin demo; }\n",
                  "t.conf:1:16: error: invalid value \"127.0.0.1\" for \"listen\": missing port "
                  "(expected HOST:PORT)\n");
    expect_errors("app a { listen 127.0.0.1:9000 127.0.0.1:9001; run builtin demo; }\n",
                  "t.conf:1:31: error: \"listen\" takes 1 argument, got 2 (usage: listen "
                  "[HOST]:PORT)\n");
}

Test(app_conf, run_errors)
{
    expect_errors("app a { listen :9000; run builtin; }\n",
                  "t.conf:1:27: error: \"run builtin\" takes the name of one built-in application "
                  "(available: demo)\n");
    expect_errors("app a { listen :9000; run builtin demo extra; }\n",
                  "t.conf:1:27: error: \"run builtin\" takes the name of one built-in application "
                  "(available: demo)\n");
    expect_errors("app a { listen :9000; run builtin shop; }\n",
                  "t.conf:1:35: error: unknown built-in application \"shop\" (available: demo)\n");
    expect_errors("app a { listen :9000; run \"python3 \\\"app.py\"; }\n",
                  "t.conf:1:27: error: invalid value \"python3 \"app.py\" for \"run\": "
                  "unterminated quote\n");
    expect_errors("app a { listen :9000; run \"  \"; }\n",
                  "t.conf:1:27: error: invalid value \"  \" for \"run\": empty command\n");
    expect_errors("app a { listen :9000; run \"\" x; }\n",
                  "t.conf:1:27: error: invalid value \"\" for \"run\": the command name is "
                  "empty\n");
    expect_errors("app a { listen :9000; run; }\n",
                  "t.conf:1:23: error: \"run\" takes at least 1 argument, got 0 (usage: run "
                  "builtin demo | run \"COMMAND [ARGS...]\" | run COMMAND [ARGS...])\n");
}

Test(app_conf, processes_errors)
{
    expect_errors("app a { listen :9000; run builtin demo; processes 0; }\n",
                  "t.conf:1:51: error: invalid value \"0\" for \"processes\": must be between 1 "
                  "and 64\n");
    expect_errors("app a { listen :9000; run builtin demo; processes 65; }\n",
                  "t.conf:1:51: error: invalid value \"65\" for \"processes\": must be between 1 "
                  "and 64\n");
}

Test(app_conf, env_errors)
{
    expect_errors("app a { listen :9000; run builtin demo; env 1X y; }\n",
                  "t.conf:1:45: error: invalid value \"1X\" for \"env\": a variable name is "
                  "letters, digits and '_', not starting with a digit\n");
    expect_errors("app a { listen :9000; run builtin demo; env A-B y; }\n",
                  "t.conf:1:45: error: invalid value \"A-B\" for \"env\": a variable name is "
                  "letters, digits and '_', not starting with a digit\n");
    expect_errors("app a { listen :9000; run builtin demo; env PORT 80; }\n",
                  "t.conf:1:45: error: \"PORT\" is set by keel for each process and cannot be "
                  "set with \"env\"\n");
    expect_errors("app a { listen :9000; run builtin demo; env KEEL_NODE x; }\n",
                  "t.conf:1:45: error: \"KEEL_NODE\" is set by keel for each process and cannot "
                  "be set with \"env\"\n");
    expect_errors("app a { listen :9000; run builtin demo; env A 1; env A 2; }\n",
                  "t.conf:1:54: error: duplicate env \"A\" in app \"a\"\n");
    expect_errors("app a { listen :9000; run builtin demo; env A; }\n",
                  "t.conf:1:41: error: \"env\" takes 2 arguments, got 1 (usage: env KEY VALUE)\n");
}

Test(app_conf, directory_user_and_durations_errors)
{
    expect_errors("app a { listen :9000; run builtin demo; directory \"\"; }\n",
                  "t.conf:1:51: error: invalid value \"\" for \"directory\": expected a path of 1 "
                  "to 1023 bytes\n");
    expect_errors("app a { listen :9000; run builtin demo; user -root; }\n",
                  "t.conf:1:46: error: invalid value \"-root\" for \"user\": a user name is 1-32 "
                  "letters, digits, '_', '-' or '.', not starting with '-'\n");
    expect_errors("app a { listen :9000; run builtin demo; stop_timeout 5; }\n",
                  "t.conf:1:54: error: invalid value \"5\" for \"stop_timeout\": duration needs a "
                  "unit (ms, s, m, h)\n");
    expect_errors("app a { listen :9000; run builtin demo; stop_timeout 2h; }\n",
                  "t.conf:1:54: error: invalid value \"2h\" for \"stop_timeout\": must be between "
                  "0ms and 1h\n");
}

Test(app_conf, restart_backoff_errors)
{
    expect_errors("app a { listen :9000; run builtin demo; restart_backoff 1s; }\n",
                  "t.conf:1:41: error: \"restart_backoff\" takes 2 arguments, got 1 (usage: "
                  "restart_backoff INITIAL MAX)\n");
    expect_errors("app a { listen :9000; run builtin demo; restart_backoff x 1s; }\n",
                  "t.conf:1:57: error: invalid value \"x\" for \"restart_backoff\": expected a "
                  "duration such as 100ms, 5s, 2m or 1h\n");
    expect_errors("app a { listen :9000; run builtin demo; restart_backoff 5ms 1s; }\n",
                  "t.conf:1:57: error: invalid value \"5ms\" for \"restart_backoff\": must be "
                  "between 10ms and 1h\n");
    expect_errors("app a { listen :9000; run builtin demo; restart_backoff 2s 1s; }\n",
                  "t.conf:1:60: error: invalid value \"1s\" for \"restart_backoff\": the maximum "
                  "must be between the initial delay and 1h\n");
    expect_errors("app a { listen :9000; run builtin demo; restart_backoff 1s 2h; }\n",
                  "t.conf:1:60: error: invalid value \"2h\" for \"restart_backoff\": the maximum "
                  "must be between the initial delay and 1h\n");
    expect_errors("app a { listen :9000; run builtin demo; restart_backoff 1s 2s; "
                  "restart_backoff 1s 2s; }\n",
                  "t.conf:1:64: error: duplicate \"restart_backoff\" (first at line 1)\n");
}

Test(app_conf, check_errors)
{
    expect_errors("app a { listen :9000; run builtin demo; check udp; }\n",
                  "t.conf:1:47: error: invalid value \"udp\" for \"check\": expected one of tcp, "
                  "http (did you mean \"tcp\"?)\n");
    expect_errors("app a { listen :9000; run builtin demo; check tcp path /x; }\n",
                  "t.conf:1:51: error: check option \"path\" is not allowed in a tcp check\n");
    expect_errors("app a { listen :9000; run builtin demo; check http pth /x; }\n",
                  "t.conf:1:52: error: unknown check option \"pth\" (did you mean \"path\"?)\n");
    expect_errors("app a { listen :9000; run builtin demo; check http path x; }\n",
                  "t.conf:1:57: error: invalid value \"x\" for \"path\": expected a path starting "
                  "with \"/\", without spaces or control characters, of at most 255 bytes\n");
    expect_errors("app a { listen :9000; run builtin demo; check http method get; }\n",
                  "t.conf:1:59: error: invalid value \"get\" for \"method\": expected an "
                  "uppercase HTTP method such as GET or HEAD\n");
    expect_errors("app a { listen :9000; run builtin demo; check http host a/b; }\n",
                  "t.conf:1:57: error: invalid value \"a/b\" for \"host\": expected a host name, "
                  "optionally with :PORT\n");
    expect_errors("app a { listen :9000; run builtin demo; check http status 300-200; }\n",
                  "t.conf:1:59: error: invalid value \"300-200\" for \"status\": expected CODE or "
                  "MIN-MAX with 100 <= MIN <= MAX <= 599\n");
    expect_errors("app a { listen :9000; run builtin demo; check http status 2xx; }\n",
                  "t.conf:1:59: error: invalid value \"2xx\" for \"status\": expected CODE or "
                  "MIN-MAX with 100 <= MIN <= MAX <= 599\n");
    expect_errors("app a { listen :9000; run builtin demo; check tcp rise 0; }\n",
                  "t.conf:1:56: error: invalid value \"0\" for \"rise\": must be between 1 and "
                  "100\n");
    expect_errors("app a { listen :9000; run builtin demo; check tcp fall 2 fall 3; }\n",
                  "t.conf:1:58: error: check option \"fall\" given twice\n");
    expect_errors("app a { listen :9000; run builtin demo; check tcp interval; }\n",
                  "t.conf:1:51: error: check option \"interval\" needs a value (usage: interval "
                  "DURATION)\n");
    expect_errors("app a { listen :9000; run builtin demo; check tcp timeout 0ms; }\n",
                  "t.conf:1:59: error: invalid value \"0ms\" for \"timeout\": must be between 1ms "
                  "and 1h\n");
}

Test(app_conf, port_errors)
{
    expect_errors("app a { listen 127.0.0.1:65535; run builtin demo; processes 2; }\n",
                  "t.conf:1:16: error: app \"a\" needs ports 65535-65536 (2 processes): past "
                  "65535\n");
    expect_errors("app a { listen 127.0.0.1:9000; run builtin demo; processes 3; }\n"
                  "app b { listen :9002; run builtin demo; }\n",
                  "t.conf:2:16: error: ports 9002-9002 of app \"b\" overlap ports 9000-9002 of "
                  "app \"a\" (line 1)\n");
    expect_errors("frontend www { bind 127.0.0.1:8080; backend web; }\n"
                  "backend web { server a 127.0.0.1:9000; }\n"
                  "app a { listen :8079; run builtin demo; processes 2; }\n",
                  "t.conf:3:16: error: port 8080 of app \"a\" is also bound by frontend \"www\" "
                  "(127.0.0.1:8080)\n");
    expect_errors("global { admin 127.0.0.1:9100; }\n"
                  "app a { listen 127.0.0.1:9100; run builtin demo; }\n",
                  "t.conf:2:16: error: port 9100 of app \"a\" is the admin address "
                  "(127.0.0.1:9100)\n");
}

Test(app_conf, every_error_at_once)
{
    expect_errors("app a {\n"
                  "    listen :9000;\n"
                  "    run builtin nope;\n"
                  "    processes 100;\n"
                  "    env PORT 1;\n"
                  "    check http rise 0;\n"
                  "}\n",
                  "t.conf:3:17: error: unknown built-in application \"nope\" (available: demo)\n"
                  "t.conf:4:15: error: invalid value \"100\" for \"processes\": must be between 1 "
                  "and 64\n"
                  "t.conf:5:9: error: \"PORT\" is set by keel for each process and cannot be set "
                  "with \"env\"\n"
                  "t.conf:6:21: error: invalid value \"0\" for \"rise\": must be between 1 and "
                  "100\n");
}

/* ------------------------------------------------------------------------------------------
 * The command-line splitter
 * ------------------------------------------------------------------------------------------ */

static void expect_split(const char *line, const char *const *want, uint32_t n)
{
    char **argv = NULL;
    uint32_t argc = 0;
    struct errbuf eb;
    cr_assert_eq(app_cmdline_split(line, &argv, &argc, &eb), 0, "%s: %s", line, eb.msg);
    cr_assert_eq(argc, n, "%s: %u arguments", line, argc);
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_str_eq(argv[i], want[i], "%s: argument %u", line, i);
    }
    cr_assert_null(argv[n]);
    app_argv_free(argv);
}

static void expect_split_error(const char *line, const char *why)
{
    char **argv = (char **)1;
    uint32_t argc = 7;
    struct errbuf eb;
    cr_assert_eq(app_cmdline_split(line, &argv, &argc, &eb), -KEEL_ECONFIG, "%s", line);
    cr_assert_str_eq(eb.msg, why);
    cr_assert_eq(argv, (char **)1);
    cr_assert_eq(argc, 7);
}

Test(app_cmdline, split)
{
    expect_split("a", (const char *[]){"a"}, 1);
    expect_split("  python3   app.py\t--port 80  ",
                 (const char *[]){"python3", "app.py", "--port", "80"}, 4);
    expect_split("echo \"hello world\" x", (const char *[]){"echo", "hello world", "x"}, 3);
    expect_split("a\"b c\"d", (const char *[]){"ab cd"}, 1);
    expect_split("x \"\" y", (const char *[]){"x", "", "y"}, 3);
    expect_split("say \\\"hi\\\"", (const char *[]){"say", "\"hi\""}, 2);
    expect_split("p a\\\\b c\\d", (const char *[]){"p", "a\\b", "c\\d"}, 3);
    expect_split("q \"in \\\" side\"", (const char *[]){"q", "in \" side"}, 2);
}

Test(app_cmdline, split_errors)
{
    expect_split_error("", "empty command");
    expect_split_error(" \t ", "empty command");
    expect_split_error("a \"b", "unterminated quote");
    expect_split_error("a \\\"b\"", "unterminated quote");
    char many[APP_ARGS_MAX * 2 + 8];
    size_t k = 0;
    for (int i = 0; i <= APP_ARGS_MAX; i++) {
        many[k++] = 'x';
        many[k++] = ' ';
    }
    many[k] = '\0';
    expect_split_error(many, "more than 256 arguments");
}

/* ------------------------------------------------------------------------------------------
 * Copies and comparisons
 * ------------------------------------------------------------------------------------------ */

static const char two_apps[] =
    "app a { listen 127.0.0.1:9000; run \"/bin/app --x\"; env K V; env L W; processes 2;\n"
    "        check http path /h; }\n"
    "app b { listen 127.0.0.1:9100; run builtin demo; }\n";

Test(app_conf, dup_is_deep_and_equal)
{
    struct conf *conf = load_ok(two_apps);
    for (uint32_t i = 0; i < conf->n_apps; i++) {
        struct conf_app *copy = app_conf_dup(&conf->apps[i]);
        cr_assert_not_null(copy);
        cr_assert(app_conf_equal(copy, &conf->apps[i]));
        if (copy->argc > 0) {
            cr_assert_neq(copy->argv, conf->apps[i].argv);
            cr_assert_neq(copy->argv[0], conf->apps[i].argv[0]);
            cr_assert_null(copy->argv[copy->argc]);
        }
        app_conf_free(copy);
    }
    cr_assert_not(app_conf_equal(&conf->apps[0], &conf->apps[1]));
    conf_free(conf);
    app_conf_free(NULL);
}

Test(app_conf, equal_ignores_positions_but_not_settings)
{
    struct conf *base = load_ok(two_apps);
    /* Same settings, other lines and spacing. */
    struct conf *moved = load_ok("\n\n"
                                 "app a {\n listen 127.0.0.1:9000;\n run /bin/app --x;\n"
                                 " env K V; env L W; processes 2; check http path /h;\n}\n");
    cr_assert(app_conf_equal(&base->apps[0], &moved->apps[0]));
    conf_free(moved);
    static const char *const changed[] = {
        "app a { listen 127.0.0.1:9001; run /bin/app --x; env K V; env L W; processes 2; "
        "check http path /h; }",
        "app a { listen 127.0.0.1:9000; run /bin/app --y; env K V; env L W; processes 2; "
        "check http path /h; }",
        "app a { listen 127.0.0.1:9000; run /bin/app --x; env K V; processes 2; "
        "check http path /h; }",
        "app a { listen 127.0.0.1:9000; run /bin/app --x; env K V; env L X; processes 2; "
        "check http path /h; }",
        "app a { listen 127.0.0.1:9000; run /bin/app --x; env K V; env L W; processes 3; "
        "check http path /h; }",
        "app a { listen 127.0.0.1:9000; run /bin/app --x; env K V; env L W; processes 2; "
        "check http path /i; }",
        "app a { listen 127.0.0.1:9000; run /bin/app --x; env K V; env L W; processes 2; "
        "check http path /h; stop_timeout 1s; }",
        "app a { listen 127.0.0.1:9000; run /bin/app --x; env K V; env L W; processes 2; "
        "check http path /h; restart_backoff 1s 2s; }",
        "app a { listen 127.0.0.1:9000; run /bin/app --x; env K V; env L W; processes 2; "
        "check http path /h; directory /tmp; }",
        "app a { listen 127.0.0.1:9000; run /bin/app --x; env K V; env L W; processes 2; "
        "check http path /h; user nobody; }",
    };
    for (size_t i = 0; i < sizeof(changed) / sizeof(changed[0]); i++) {
        struct conf *c = load_ok(changed[i]);
        cr_assert_not(app_conf_equal(&base->apps[0], &c->apps[0]), "%s", changed[i]);
        conf_free(c);
    }
    conf_free(base);
}
