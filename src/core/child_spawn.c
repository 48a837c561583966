/* SPDX-License-Identifier: MIT */
/* fork + execve of a child process (see core/child.h), the user lookup it needs
 * beforehand, and the small pure helpers of the supervisor (exit descriptions, backoff).
 * After fork(), in a child of a multi-threaded process, only async-signal-safe calls are
 * allowed: everything the child uses is prepared in the parent, and its error messages are
 * written piece by piece with write(2). */
#include "core/child.h"

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
#include <sys/wait.h>
#include <unistd.h>

#include "core/proc.h"

/* ------------------------------------------------------------------------------------------
 * The child
 * ------------------------------------------------------------------------------------------ */

struct child_plan {
    const struct child_spec *req;
    int devnull;
    int out_w; /* -1: keel's own stdout (CHILD_OUTPUT_INHERIT) */
    int err_w; /* -1: keel's own stderr */
    int pdeath_sig;
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
    const struct child_spec *req = cp->req;
    (void)setpgid(0, 0); /* its own group, so that a stop reaches its children too (and a
                          * terminal's Ctrl-C does not: the owner stops it in its order) */
    if (dup2(cp->devnull, 0) == -1 || (cp->out_w != -1 && dup2(cp->out_w, 1) == -1) ||
        (cp->err_w != -1 && dup2(cp->err_w, 2) == -1)) {
        _exit(126);
    }
    (void)close_range(3, ~0u, 0); /* every fd keel did not mean to pass (all are CLOEXEC) */
    proc_signals_reset();         /* blocked and ignored signals would survive execve */
    if (req->directory != NULL && chdir(req->directory) == -1) {
        child_fail("change to directory", req->directory, errno, 126);
    }
    if (req->ids != NULL && req->ids->is_set) {
        const struct child_ids *ids = req->ids;
        if (setgroups((size_t)ids->n_groups, ids->groups) == -1 || setgid(ids->gid) == -1 ||
            setuid(ids->uid) == -1) {
            child_fail("switch to user", req->user, errno, 126);
        }
    }
    /* Dies with keel. Set after the id change, which would clear it. */
    (void)prctl(PR_SET_PDEATHSIG, cp->pdeath_sig);
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

/* The file a child's output is appended to (CHILD_OUTPUT_FILE), or -errno. */
static int open_output_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    return fd == -1 ? -errno : fd;
}

/* Where the child's stdout and stderr go: out_w and err_w of cp, and for CHILD_OUTPUT_LOG
 * the read ends in out_r and err_r. Returns 0 or -errno (everything closed by the caller). */
static int plan_output(const struct child_spec *req, struct child_plan *cp, int out_pipe[2],
                       int err_pipe[2])
{
    switch (req->output) {
    case CHILD_OUTPUT_LOG: {
        int rc = make_pipe(out_pipe);
        rc = rc == 0 ? make_pipe(err_pipe) : rc;
        cp->out_w = out_pipe[1];
        cp->err_w = err_pipe[1];
        return rc;
    }
    case CHILD_OUTPUT_FILE: {
        int fd = open_output_file(req->output_path != NULL ? req->output_path : "");
        if (fd < 0) {
            return fd;
        }
        out_pipe[1] = fd; /* closed with the pipes' write ends */
        cp->out_w = fd;
        cp->err_w = fd;
        return 0;
    }
    case CHILD_OUTPUT_INHERIT:
        break;
    }
    return 0;
}

int child_spawn(const struct child_spec *req, pid_t *pid, int out_fds[2])
{
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    struct child_plan cp = {.req = req,
                            .out_w = -1,
                            .err_w = -1,
                            .pdeath_sig = req->pdeath_sig != 0 ? req->pdeath_sig : SIGKILL,
                            .parent = getpid()};
    cp.devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int rc = cp.devnull == -1 ? -errno : 0;
    if (rc == 0) {
        rc = plan_output(req, &cp, out_pipe, err_pipe);
    }
    pid_t child = -1;
    if (rc == 0) {
        child = fork();
        if (child == 0) {
            child_exec(&cp);
        }
        if (child == -1) {
            rc = -errno;
        }
    }
    close_fd(&cp.devnull);
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

/* ------------------------------------------------------------------------------------------
 * Lookups (boot and reload time)
 * ------------------------------------------------------------------------------------------ */

int child_ids_resolve(const char *user, struct child_ids *ids, bool *is_ignored, struct errbuf *eb)
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
    ids->n_groups = CHILD_GROUPS_MAX;
    if (getgrouplist(user, pw.pw_gid, ids->groups, &ids->n_groups) == -1) {
        /* More groups than room: keep the primary one only rather than fail. */
        ids->groups[0] = pw.pw_gid;
        ids->n_groups = 1;
    }
    ids->is_set = true;
    free(buf);
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Pure helpers
 * ------------------------------------------------------------------------------------------ */

void child_describe_exit(int wstatus, char *out, size_t size)
{
    if (wstatus == -1) {
        (void)snprintf(out, size, "exit status unknown");
    } else if (WIFEXITED(wstatus)) {
        (void)snprintf(out, size, "exit status %d", WEXITSTATUS(wstatus));
    } else if (WIFSIGNALED(wstatus)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(wstatus));
        (void)snprintf(out, size, "killed by signal %d (SIG%s)%s", WTERMSIG(wstatus),
                       abbrev != NULL ? abbrev : "?", WCOREDUMP(wstatus) ? ", core dumped" : "");
    } else {
        (void)snprintf(out, size, "wait status %#x", (unsigned)wstatus);
    }
}

void child_format_ms(uint64_t ms, char *out, size_t size)
{
    if (ms < 1000) {
        (void)snprintf(out, size, "%lums", (unsigned long)ms);
    } else {
        (void)snprintf(out, size, "%.1fs", (double)ms / 1000.0);
    }
}

uint32_t child_backoff_next(struct child_backoff *b, uint64_t uptime_ms,
                            const struct child_restart *r)
{
    if (uptime_ms >= r->stable_ms || b->next_ms == 0) {
        b->next_ms = r->initial_ms;
    }
    uint32_t delay = b->next_ms < r->max_ms ? b->next_ms : r->max_ms;
    b->next_ms = delay > r->max_ms / 2 ? r->max_ms : delay * 2;
    return delay;
}
