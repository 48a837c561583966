/* SPDX-License-Identifier: MIT */
/* The application tier's directive table: app NAME { } blocks (listen, run, processes, env,
 * directory, user, stop_timeout, restart_backoff, check) and the checks run after parsing
 * (port ranges past 65535 or colliding with another app, a frontend or the admin listener).
 * It only fills struct conf; app_supervisor.c runs what it describes. Load time only: user
 * and directory are looked up here (blocking), unless the load must not touch the system. */
#include "app/app_conf.h"

#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/conf_check.h"

#define DURATION_MAX (3600u * 1000u) /* 1h */
#define ENV_KEY_MAX 255

/* Variables keel sets itself in every process's environment. */
static const char *const reserved_env[] = {"PORT", "HOST", "KEEL_APP", "KEEL_NODE"};

/* ------------------------------------------------------------------------------------------
 * Command lines and copies (also used by the supervisor)
 * ------------------------------------------------------------------------------------------ */

void app_argv_free(char **argv)
{
    if (argv == NULL) {
        return;
    }
    for (char **a = argv; *a != NULL; a++) {
        free(*a);
    }
    free(argv);
}

int app_cmdline_split(const char *line, char ***argv_out, uint32_t *argc_out, struct errbuf *eb)
{
    size_t len = strlen(line);
    char *word = malloc(len + 1); /* no argument is longer than the line */
    char **argv = calloc(APP_ARGS_MAX + 1, sizeof(*argv));
    uint32_t argc = 0;
    int rc = 0;
    if (word == NULL || argv == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    const char *p = line;
    while (rc == 0) {
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        size_t w = 0;
        bool in_quotes = false;
        for (; *p != '\0' && (in_quotes || (*p != ' ' && *p != '\t')); p++) {
            if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) {
                word[w++] = *++p;
            } else if (*p == '"') {
                in_quotes = !in_quotes;
            } else {
                word[w++] = *p;
            }
        }
        if (in_quotes) {
            errbuf_set(eb, "unterminated quote");
            rc = -KEEL_ECONFIG;
        } else if (argc == APP_ARGS_MAX) {
            errbuf_set(eb, "more than %d arguments", APP_ARGS_MAX);
            rc = -KEEL_ECONFIG;
        } else if ((argv[argc] = strndup(word, w)) == NULL) {
            rc = -ENOMEM;
        } else {
            argc++;
        }
    }
    if (rc == 0 && argc == 0) {
        errbuf_set(eb, "empty command");
        rc = -KEEL_ECONFIG;
    }
out:
    free(word);
    if (rc != 0) {
        app_argv_free(argv);
        return rc;
    }
    /* Shrink to argc + 1 slots; keeping the larger block is fine if realloc fails. */
    char **shrunk = realloc(argv, (argc + 1) * sizeof(*argv));
    *argv_out = shrunk != NULL ? shrunk : argv;
    *argc_out = argc;
    return 0;
}

uint16_t app_conf_port(const struct conf_app *app, uint32_t i)
{
    const struct sockaddr *sa = (const struct sockaddr *)&app->listen.sa;
    uint16_t port = 0;
    if (sa->sa_family == AF_INET) {
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    }
    return (uint16_t)(port + i);
}

/* A copy of n strings, followed by a NULL. */
static char **strings_dup(char *const *v, uint32_t n)
{
    char **out = calloc((size_t)n + 1, sizeof(*out));
    if (out == NULL) {
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        out[i] = strdup(v[i]);
        if (out[i] == NULL) {
            app_argv_free(out);
            return NULL;
        }
    }
    return out;
}

struct conf_app *app_conf_dup(const struct conf_app *app)
{
    struct conf_app *copy = malloc(sizeof(*copy));
    if (copy == NULL) {
        return NULL;
    }
    *copy = *app;
    copy->argv = NULL;
    copy->env = NULL;
    if (app->argc > 0 && (copy->argv = strings_dup(app->argv, app->argc)) == NULL) {
        app_conf_free(copy);
        return NULL;
    }
    if (app->n_env > 0 && (copy->env = strings_dup(app->env, app->n_env)) == NULL) {
        app_conf_free(copy);
        return NULL;
    }
    return copy;
}

void app_conf_free(struct conf_app *app)
{
    if (app == NULL) {
        return;
    }
    for (uint32_t i = 0; app->argv != NULL && i < app->argc; i++) {
        free(app->argv[i]);
    }
    free(app->argv);
    app->argv = NULL;
    for (uint32_t i = 0; app->env != NULL && i < app->n_env; i++) {
        free(app->env[i]);
    }
    free(app->env);
    app->env = NULL;
    free(app);
}

static bool strings_equal(char *const *a, uint32_t na, char *const *b, uint32_t nb)
{
    if (na != nb) {
        return false;
    }
    for (uint32_t i = 0; i < na; i++) {
        if (strcmp(a[i], b[i]) != 0) {
            return false;
        }
    }
    return true;
}

static bool check_equal(const struct conf_check *a, const struct conf_check *b)
{
    return a->type == b->type && strcmp(a->method, b->method) == 0 &&
           strcmp(a->path, b->path) == 0 && strcmp(a->host, b->host) == 0 &&
           a->status_min == b->status_min && a->status_max == b->status_max &&
           a->interval_ms == b->interval_ms && a->timeout_ms == b->timeout_ms &&
           a->rise == b->rise && a->fall == b->fall;
}

bool app_conf_equal(const struct conf_app *a, const struct conf_app *b)
{
    return strcmp(a->name, b->name) == 0 && strcmp(a->listen.text, b->listen.text) == 0 &&
           a->kind == b->kind && strings_equal(a->argv, a->argc, b->argv, b->argc) &&
           strings_equal(a->env, a->n_env, b->env, b->n_env) && a->processes == b->processes &&
           strcmp(a->directory, b->directory) == 0 && strcmp(a->user, b->user) == 0 &&
           a->stop_timeout_ms == b->stop_timeout_ms &&
           a->backoff_initial_ms == b->backoff_initial_ms &&
           a->backoff_max_ms == b->backoff_max_ms && check_equal(&a->check, &b->check);
}

/* ------------------------------------------------------------------------------------------
 * The block
 * ------------------------------------------------------------------------------------------ */

/* Even an app with a bad or duplicate name is built, so that its body is checked too (the
 * configuration is discarded anyway): every error shows in one run. */
static void *open_app(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                      const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf *conf = obj;
    struct errbuf eb;
    if (conf_check_name(tok[1].text, &eb) != 0) {
        conf_error(cp, &tok[1], "invalid app name \"%s\": %s", tok[1].text, eb.msg);
    }
    for (uint32_t i = 0; i < conf->n_apps; i++) {
        if (strcmp(conf->apps[i].name, tok[1].text) == 0) {
            conf_error(cp, &tok[1], "duplicate app \"%s\" (first defined at line %d)", tok[1].text,
                       conf->apps[i].pos.line);
            break;
        }
    }
    struct conf_app *app =
        conf_array_push(cp, (void **)&conf->apps, &conf->n_apps, sizeof(*conf->apps));
    if (app == NULL) {
        return NULL;
    }
    (void)snprintf(app->name, sizeof(app->name), "%s", tok[1].text); /* may truncate */
    conf_pos_set(&app->pos, &tok[0]);
    /* Defaults of the two-value and option directives (the tables' defaults are one word). */
    app->backoff_initial_ms = 500;
    app->backoff_max_ms = 30000;
    struct conf_check *c = &app->check;
    c->type = CONF_CHECK_NONE;
    (void)snprintf(c->method, sizeof(c->method), "GET");
    (void)snprintf(c->path, sizeof(c->path), "/");
    c->status_min = 200;
    c->status_max = 399;
    c->interval_ms = 2000;
    c->timeout_ms = 1000;
    c->rise = 2;
    c->fall = 3;
    return app;
}

/* ------------------------------------------------------------------------------------------
 * Directives
 * ------------------------------------------------------------------------------------------ */

static int bad_value(struct conf_parser *cp, const struct conf_token *at, const char *directive,
                     const char *why)
{
    conf_error(cp, at, "invalid value \"%s\" for \"%s\": %s", at->text, directive, why);
    return -KEEL_ECONFIG;
}

static int set_listen(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                      const struct conf_token *tok, size_t n)
{
    struct conf_app *app = obj;
    int rc = conf_set_addr(cp, d, obj, tok, n);
    if (rc == 0) {
        conf_pos_set(&app->listen_pos, &tok[1]);
    }
    return rc;
}

static int set_run(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                   const struct conf_token *tok, size_t n)
{
    (void)d;
    struct conf_app *app = obj;
    if (tok[1].kind == CONF_TOK_WORD && strcmp(tok[1].text, "builtin") == 0) {
        if (n != 3) {
            conf_error(cp, &tok[1],
                       "\"run builtin\" takes the name of one built-in "
                       "application (available: demo)");
            return -KEEL_ECONFIG;
        }
        if (strcmp(tok[2].text, "demo") != 0) {
            conf_error(cp, &tok[2], "unknown built-in application \"%s\" (available: demo)",
                       tok[2].text);
            return -KEEL_ECONFIG;
        }
        app->kind = CONF_APP_BUILTIN_DEMO;
        return 0;
    }
    struct errbuf eb;
    char **argv = NULL;
    uint32_t argc = 0;
    if (n == 2) {
        /* One argument: a command line, split here (no shell is involved, ever). */
        int rc = app_cmdline_split(tok[1].text, &argv, &argc, &eb);
        if (rc == -ENOMEM) {
            conf_parser_oom(cp);
            return rc;
        }
        if (rc != 0) {
            return bad_value(cp, &tok[1], "run", eb.msg);
        }
    } else {
        /* Several: each is one argument, as written. */
        if (n - 1 > APP_ARGS_MAX) {
            conf_error(cp, &tok[1 + APP_ARGS_MAX], "\"run\" takes at most %d arguments",
                       APP_ARGS_MAX);
            return -KEEL_ECONFIG;
        }
        argv = calloc(n, sizeof(*argv));
        for (size_t i = 1; argv != NULL && i < n; i++) {
            argv[argc] = strdup(tok[i].text);
            if (argv[argc] == NULL) {
                app_argv_free(argv);
                argv = NULL;
                break;
            }
            argc++;
        }
        if (argv == NULL) {
            conf_parser_oom(cp);
            return -ENOMEM;
        }
    }
    if (argv[0][0] == '\0') {
        app_argv_free(argv);
        return bad_value(cp, &tok[1], "run", "the command name is empty");
    }
    app->kind = CONF_APP_COMMAND;
    app->argv = argv;
    app->argc = argc;
    return 0;
}

static bool env_key_ok(const char *s, size_t len)
{
    bool ok = len >= 1 && len <= ENV_KEY_MAX && !(s[0] >= '0' && s[0] <= '9');
    for (size_t i = 0; i < len && ok; i++) {
        char c = s[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    }
    return ok;
}

static int set_env(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                   const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf_app *app = obj;
    const char *key = tok[1].text;
    size_t key_len = tok[1].len;
    if (!env_key_ok(key, key_len)) {
        return bad_value(cp, &tok[1], "env",
                         "a variable name is letters, digits and '_', not starting with a digit");
    }
    for (size_t i = 0; i < sizeof(reserved_env) / sizeof(reserved_env[0]); i++) {
        if (strcmp(key, reserved_env[i]) == 0) {
            conf_error(cp, &tok[1],
                       "\"%s\" is set by keel for each process and cannot be set with "
                       "\"env\"",
                       key);
            return -KEEL_ECONFIG;
        }
    }
    for (uint32_t i = 0; i < app->n_env; i++) {
        if (strncmp(app->env[i], key, key_len) == 0 && app->env[i][key_len] == '=') {
            conf_error(cp, &tok[1], "duplicate env \"%s\" in app \"%s\"", key, app->name);
            return -KEEL_ECONFIG;
        }
    }
    char *kv = malloc(key_len + 1 + tok[2].len + 1);
    char **slot = conf_array_push(cp, (void **)&app->env, &app->n_env, sizeof(*app->env));
    if (kv == NULL || slot == NULL) {
        free(kv);
        conf_parser_oom(cp);
        return -ENOMEM;
    }
    memcpy(kv, key, key_len);
    kv[key_len] = '=';
    memcpy(kv + key_len + 1, tok[2].text, tok[2].len + 1);
    *slot = kv;
    return 0;
}

static int set_directory(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                         const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf_app *app = obj;
    if (tok[1].len == 0 || tok[1].len >= sizeof(app->directory)) {
        return bad_value(cp, &tok[1], "directory", "expected a path of 1 to 1023 bytes");
    }
    if ((conf_parser_flags(cp) & CONF_LOAD_NO_RESOLVE) == 0) {
        struct stat st;
        if (stat(tok[1].text, &st) == -1) {
            return bad_value(cp, &tok[1], "directory", strerror(errno));
        }
        if (!S_ISDIR(st.st_mode)) {
            return bad_value(cp, &tok[1], "directory", "not a directory");
        }
    }
    memcpy(app->directory, tok[1].text, tok[1].len + 1);
    return 0;
}

static int set_user(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                    const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf_app *app = obj;
    const char *name = tok[1].text;
    bool ok = tok[1].len >= 1 && tok[1].len < 33 && name[0] != '-';
    for (size_t i = 0; i < tok[1].len && ok; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-' || c == '.';
    }
    if (!ok) {
        return bad_value(cp, &tok[1], "user",
                         "a user name is 1-32 letters, digits, '_', '-' or '.', not starting "
                         "with '-'");
    }
    if ((conf_parser_flags(cp) & CONF_LOAD_NO_RESOLVE) == 0) {
        /* Blocking lookup (NSS): allowed while loading a configuration. */
        size_t size = 16384;
        char *buf = malloc(size);
        struct passwd pw, *found = NULL;
        int err = buf == NULL ? ENOMEM : getpwnam_r(name, &pw, buf, size, &found);
        free(buf);
        if (err != 0) {
            return bad_value(cp, &tok[1], "user", strerror(err));
        }
        if (found == NULL) {
            return bad_value(cp, &tok[1], "user", "no such user");
        }
    }
    memcpy(app->user, name, tok[1].len + 1);
    return 0;
}

static int set_backoff(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                       const struct conf_token *tok, size_t n)
{
    (void)d;
    (void)n;
    struct conf_app *app = obj;
    struct errbuf eb;
    uint64_t initial, max;
    if (conf_parse_duration_ms(tok[1].text, &initial, &eb) != 0) {
        return bad_value(cp, &tok[1], "restart_backoff", eb.msg);
    }
    if (initial < 10 || initial > DURATION_MAX) {
        return bad_value(cp, &tok[1], "restart_backoff", "must be between 10ms and 1h");
    }
    if (conf_parse_duration_ms(tok[2].text, &max, &eb) != 0) {
        return bad_value(cp, &tok[2], "restart_backoff", eb.msg);
    }
    if (max < initial || max > DURATION_MAX) {
        return bad_value(cp, &tok[2], "restart_backoff",
                         "the maximum must be between the initial delay and 1h");
    }
    app->backoff_initial_ms = (uint32_t)initial;
    app->backoff_max_ms = (uint32_t)max;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * The check line (the same options as a backend's, probing each process)
 * ------------------------------------------------------------------------------------------ */

static int set_check(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                     const struct conf_token *tok, size_t n)
{
    return conf_set_check_at(cp, d, obj, tok, n, offsetof(struct conf_app, check));
}

/* ------------------------------------------------------------------------------------------
 * Table
 * ------------------------------------------------------------------------------------------ */

#define APP CONF_CTX_APP

static const struct conf_directive app_directives[] = {
    /* top level */
    {.name = "app",
     .contexts = CONF_CTX_MAIN,
     .min_args = 1,
     .max_args = 1,
     .flags = CONF_F_REPEAT,
     .block_ctx = APP,
     .open = open_app,
     .syntax = "app NAME { ... }",
     .help = "an application the node runs and supervises"},

    /* app NAME { } */
    {.name = "listen",
     .contexts = APP,
     .min_args = 1,
     .max_args = 1,
     .flags = CONF_F_REQUIRED,
     .set = set_listen,
     CONF_FIELD(struct conf_app, listen),
     .min = CONF_ADDR_LISTEN,
     .syntax = "listen [HOST]:PORT",
     .help = "address of the first process; process i gets PORT + i"},
    {.name = "run",
     .contexts = APP,
     .min_args = 1,
     .max_args = CONF_ARGS_MANY,
     .flags = CONF_F_REQUIRED,
     .set = set_run,
     .syntax = "run builtin demo | run \"COMMAND [ARGS...]\" | run COMMAND [ARGS...]",
     .help = "what each process runs (no shell)"},
    {.name = "processes",
     .contexts = APP,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_uint,
     CONF_FIELD(struct conf_app, processes),
     .min = 1,
     .max = APP_PROCESSES_MAX,
     .def = "1",
     .syntax = "processes N",
     .help = "how many processes, each on its own port"},
    {.name = "env",
     .contexts = APP,
     .min_args = 2,
     .max_args = 2,
     .flags = CONF_F_REPEAT,
     .set = set_env,
     .syntax = "env KEY VALUE",
     .help = "an environment variable of the processes"},
    {.name = "directory",
     .contexts = APP,
     .min_args = 1,
     .max_args = 1,
     .set = set_directory,
     .syntax = "directory PATH",
     .help = "working directory of the processes"},
    {.name = "user",
     .contexts = APP,
     .min_args = 1,
     .max_args = 1,
     .set = set_user,
     .syntax = "user NAME",
     .help = "run the processes as this user (when keel runs as root)"},
    {.name = "stop_timeout",
     .contexts = APP,
     .min_args = 1,
     .max_args = 1,
     .set = conf_set_duration,
     CONF_FIELD(struct conf_app, stop_timeout_ms),
     .min = 0,
     .max = DURATION_MAX,
     .def = "5s",
     .syntax = "stop_timeout DURATION",
     .help = "time between SIGTERM and SIGKILL when stopping a process"},
    {.name = "restart_backoff",
     .contexts = APP,
     .min_args = 2,
     .max_args = 2,
     .set = set_backoff,
     .syntax = "restart_backoff INITIAL MAX",
     .help = "restart delay after an exit, doubled after each quick exit, up to MAX"},
    {.name = "check",
     .contexts = APP,
     .min_args = 1,
     .max_args = CONF_ARGS_MANY,
     .set = set_check,
     .syntax = "check tcp|http [method M] [path P] [host H] [status MIN-MAX] [interval D] "
               "[timeout D] [rise N] [fall N] [port N]",
     .help = "active health check of every process"},
};

/* ------------------------------------------------------------------------------------------
 * Cross-checks: ports
 * ------------------------------------------------------------------------------------------ */

/* Whether two listen addresses share an IP (a wildcard shares every IP of its family). */
static bool same_ip(const struct conf_addr *a, const struct conf_addr *b)
{
    const struct sockaddr *sa = (const struct sockaddr *)&a->sa;
    const struct sockaddr *sb = (const struct sockaddr *)&b->sa;
    if (sa->sa_family != sb->sa_family) {
        return false;
    }
    if (sa->sa_family == AF_INET) {
        uint32_t ia = ((const struct sockaddr_in *)sa)->sin_addr.s_addr;
        uint32_t ib = ((const struct sockaddr_in *)sb)->sin_addr.s_addr;
        return ia == ib || ia == htonl(INADDR_ANY) || ib == htonl(INADDR_ANY);
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *ia = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        const struct in6_addr *ib = &((const struct sockaddr_in6 *)sb)->sin6_addr;
        return memcmp(ia, ib, sizeof(*ia)) == 0 || IN6_IS_ADDR_UNSPECIFIED(ia) ||
               IN6_IS_ADDR_UNSPECIFIED(ib);
    }
    return false;
}

static uint16_t addr_port(const struct conf_addr *a)
{
    struct conf_app tmp = {.listen = *a};
    return app_conf_port(&tmp, 0);
}

/* Whether the app's port range contains addr's port on a shared IP. */
static bool app_covers(const struct conf_app *app, const struct conf_addr *addr)
{
    uint32_t first = app_conf_port(app, 0), port = addr_port(addr);
    return same_ip(&app->listen, addr) && port >= first && port < first + app->processes;
}

static void check_ports(struct conf_parser *cp, const struct conf *conf, uint32_t i)
{
    const struct conf_app *app = &conf->apps[i];
    uint32_t first = app_conf_port(app, 0), last = first + app->processes - 1;
    for (uint32_t k = 0; k < i; k++) {
        const struct conf_app *other = &conf->apps[k];
        uint32_t ofirst = app_conf_port(other, 0), olast = ofirst + other->processes - 1;
        if (other->listen.salen != 0 && same_ip(&app->listen, &other->listen) && first <= olast &&
            ofirst <= last) {
            conf_error_at(cp, &app->listen_pos,
                          "ports %u-%u of app \"%s\" overlap ports %u-%u of app \"%s\" (line %d)",
                          first, last, app->name, ofirst, olast, other->name, other->pos.line);
            return;
        }
    }
    for (uint32_t f = 0; f < conf->n_frontends; f++) {
        const struct conf_frontend *fe = &conf->frontends[f];
        for (uint32_t b = 0; b < fe->n_binds; b++) {
            if (app_covers(app, &fe->binds[b])) {
                conf_error_at(cp, &app->listen_pos,
                              "port %u of app \"%s\" is also bound by frontend \"%s\" (%s)",
                              addr_port(&fe->binds[b]), app->name, fe->name, fe->binds[b].text);
                return;
            }
        }
    }
    if (conf->global.has_admin && app_covers(app, &conf->global.admin)) {
        conf_error_at(cp, &app->listen_pos, "port %u of app \"%s\" is the admin address (%s)",
                      addr_port(&conf->global.admin), app->name, conf->global.admin.text);
    }
}

static void app_conf_validate(struct conf_parser *cp, struct conf *conf)
{
    for (uint32_t i = 0; i < conf->n_apps; i++) {
        const struct conf_app *app = &conf->apps[i];
        if (app->listen.salen == 0 || app->processes == 0) {
            continue; /* missing or invalid: already reported */
        }
        uint32_t first = app_conf_port(app, 0);
        if (first + app->processes - 1 > 65535) {
            conf_error_at(cp, &app->listen_pos,
                          "app \"%s\" needs ports %u-%u (%u processes): past 65535", app->name,
                          first, first + app->processes - 1, app->processes);
            continue;
        }
        check_ports(cp, conf, i);
    }
}

const struct conf_section app_conf_section = {
    .name = "app",
    .directives = app_directives,
    .n_directives = sizeof(app_directives) / sizeof(app_directives[0]),
    .validate = app_conf_validate,
};
