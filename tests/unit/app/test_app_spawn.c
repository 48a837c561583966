/* SPDX-License-Identifier: MIT */
/* Unit tests of app/app_spawn.c: the environment of a process and finding a command in
 * PATH. (Spawning itself is core/child_spawn.c: tests/unit/core/test_child_spawn.c.) */
#include <criterion/criterion.h>

#include "app/app_spawn.c"

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
