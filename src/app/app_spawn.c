/* SPDX-License-Identifier: MIT */
/* fork + execve of an application process, and the lookups it needs beforehand. After
 * fork(), in a child of a multi-threaded process, only async-signal-safe calls are allowed:
 * everything the child uses is prepared in the parent, and its error messages are written
 * piece by piece with write(2). */
#include "app/app_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "core/proc.h"

/* ------------------------------------------------------------------------------------------
 * The child
 * ------------------------------------------------------------------------------------------ */

struct child_plan {
    const struct app_spawn *req;
    int devnull;
    int out_w;
    int err_w;
    pid_t parent;
};

static void child_write(const char *s)
{
    if (s != NULL) {
        ssize_t w = write(2, s, strlen(s));
        (void)w; /* nowhere else to report it */
    }
}

static void __attribute__((noreturn))
child_fail(const char *what, const char *arg, int err, int code)
{
    child_write("keel: cannot ");
    child_write(what);
    child_write(" ");
    child_write(arg);
    child_write(": ");
    const char *desc = strerrordesc_np(err); /* static text, no locale: async-signal-safe */
    child_write(desc != NULL ? desc : "unknown error");
    child_write("\n");
    _exit(code);
}

static void __attribute__((noreturn)) child_exec(const struct child_plan *cp)
{
    const struct app_spawn *req = cp->req;
    (void)setpgid(0, 0); /* its own group, so that a stop reaches its children too */
    if (dup2(cp->devnull, 0) == -1 || dup2(cp->out_w, 1) == -1 || dup2(cp->err_w, 2) == -1) {
        _exit(126);
    }
    (void)close_range(3, ~0u, 0); /* every fd keel did not mean to pass (all are CLOEXEC) */
    proc_signals_reset();         /* blocked and ignored signals would survive execve */
    if (req->directory != NULL && chdir(req->directory) == -1) {
        child_fail("change to directory", req->directory, errno, 126);
    }
    if (req->ids != NULL && req->ids->is_set) {
        const struct app_ids *ids = req->ids;
        if (setgroups((size_t)ids->n_groups, ids->groups) == -1 || setgid(ids->gid) == -1 ||
            setuid(ids->uid) == -1) {
            child_fail("switch to user", req->user, errno, 126);
        }
    }
    /* Dies with keel. Set after the id change, which would clear it. */
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != cp->parent) {
        _exit(126); /* keel died before the line above */
    }
    execve(req->path, req->argv, req->envp);
    child_fail("execute", req->path, errno, 127);
}

/* ------------------------------------------------------------------------------------------
 * The parent
 * ------------------------------------------------------------------------------------------ */

static void close_fd(int *fd)
{
    if (*fd != -1) {
        (void)close(*fd); /* never written by keel: nothing to lose */
        *fd = -1;
    }
}

/* A pipe whose read end is non-blocking. The child's end stays blocking: a child whose
 * writes failed with EAGAIN would break. */
static int make_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) == -1) {
        return -errno;
    }
    int fl = fcntl(fds[0], F_GETFL);
    if (fl == -1 || fcntl(fds[0], F_SETFL, fl | O_NONBLOCK) == -1) {
        int err = errno;
        close_fd(&fds[0]);
        close_fd(&fds[1]);
        return -err;
    }
    return 0;
}

int app_spawn_start(const struct app_spawn *req, pid_t *pid, int out_fds[2])
{
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int rc = devnull == -1 ? -errno : 0;
    if (rc == 0) {
        rc = make_pipe(out_pipe);
    }
    if (rc == 0) {
        rc = make_pipe(err_pipe);
    }
    pid_t child = -1;
    if (rc == 0) {
        struct child_plan cp = {.req = req,
                                .devnull = devnull,
                                .out_w = out_pipe[1],
                                .err_w = err_pipe[1],
                                .parent = getpid()};
        child = fork();
        if (child == 0) {
            child_exec(&cp);
        }
        if (child == -1) {
            rc = -errno;
        }
    }
    close_fd(&devnull);
    close_fd(&out_pipe[1]);
    close_fd(&err_pipe[1]);
    if (rc != 0) {
        close_fd(&out_pipe[0]);
        close_fd(&err_pipe[0]);
        return rc;
    }
    /* Also here: signals sent before the child ran its own setpgid() must reach the group.
     * EACCES once the child has exec'd: it did it itself by then. */
    (void)setpgid(child, child);
    *pid = child;
    out_fds[0] = out_pipe[0];
    out_fds[1] = err_pipe[0];
    return 0;
}

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

int app_ids_resolve(const char *user, struct app_ids *ids, bool *is_ignored, struct errbuf *eb)
{
    ids->is_set = false;
    *is_ignored = false;
    size_t size = 16384;
    char *buf = malloc(size);
    struct passwd pw, *found = NULL;
    int err = buf == NULL ? ENOMEM : getpwnam_r(user, &pw, buf, size, &found);
    if (err != 0 || found == NULL) {
        errbuf_set(eb, "user \"%s\": %s", user, err != 0 ? strerror(err) : "no such user");
        free(buf);
        return -1;
    }
    if (geteuid() != 0) {
        *is_ignored = pw.pw_uid != geteuid();
        free(buf);
        return 0;
    }
    ids->uid = pw.pw_uid;
    ids->gid = pw.pw_gid;
    ids->n_groups = APP_GROUPS_MAX;
    if (getgrouplist(user, pw.pw_gid, ids->groups, &ids->n_groups) == -1) {
        /* More groups than room: keep the primary one only rather than fail. */
        ids->groups[0] = pw.pw_gid;
        ids->n_groups = 1;
    }
    ids->is_set = true;
    free(buf);
    return 0;
}
