/* SPDX-License-Identifier: MIT */
/* What an app process is started with: its environment and the executable of its `run`
 * command. The fork and exec themselves are core/child_spawn.c. */
#include "app/app_spawn.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool env_key_is(const char *entry, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t klen = eq != NULL ? (size_t)(eq - kv) : strlen(kv);
    return strncmp(entry, kv, klen) == 0 && entry[klen] == '=';
}

char **app_spawn_env(char *const *base, const struct conf_app *conf, char *const *vars,
                     size_t n_vars)
{
    size_t n_base = 0;
    for (char *const *e = base; e != NULL && *e != NULL; e++) {
        n_base++;
    }
    char **envp = calloc(n_base + conf->n_env + n_vars + 1, sizeof(*envp));
    if (envp == NULL) {
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < n_base; i++) {
        bool is_overridden = false;
        for (uint32_t k = 0; k < conf->n_env && !is_overridden; k++) {
            is_overridden = env_key_is(base[i], conf->env[k]);
        }
        for (size_t k = 0; k < n_vars && !is_overridden; k++) {
            is_overridden = env_key_is(base[i], vars[k]);
        }
        if (!is_overridden) {
            envp[n++] = base[i];
        }
    }
    for (uint32_t k = 0; k < conf->n_env; k++) {
        envp[n++] = conf->env[k];
    }
    for (size_t k = 0; k < n_vars; k++) {
        envp[n++] = vars[k];
    }
    return envp;
}

/* ------------------------------------------------------------------------------------------
 * Lookups (boot and reload time)
 * ------------------------------------------------------------------------------------------ */

bool app_spawn_find_command(const struct conf_app *conf, const char *path_env, char *out,
                            size_t size)
{
    if (conf->kind == CONF_APP_BUILTIN_DEMO) {
        (void)snprintf(out, size, "/proc/self/exe");
        return true;
    }
    const char *name = conf->argv[0];
    (void)snprintf(out, size, "%s", name); /* may truncate: execve then fails and says so */
    if (strchr(name, '/') != NULL) {
        return true;
    }
    const char *path = path_env;
    for (uint32_t i = 0; i < conf->n_env; i++) {
        if (strncmp(conf->env[i], "PATH=", 5) == 0) {
            path = conf->env[i] + 5;
        }
    }
    if (path == NULL) {
        path = "/usr/local/bin:/usr/bin:/bin";
    }
    for (const char *dir = path; *dir != '\0';) {
        size_t len = strcspn(dir, ":");
        char candidate[PATH_MAX];
        int n = snprintf(candidate, sizeof(candidate), "%.*s/%s", (int)len, dir, name);
        if (len > 0 && n > 0 && (size_t)n < sizeof(candidate) && access(candidate, X_OK) == 0) {
            (void)snprintf(out, size, "%s", candidate);
            return true;
        }
        dir += len;
        if (*dir == ':') {
            dir++;
        }
    }
    return false;
}
