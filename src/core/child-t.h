/* SPDX-License-Identifier: MIT */
/* Types of the child-process supervisor (core/child.h): what to run, how its output is read,
 * its restart policy, and the supervised child itself. Types only. */
#ifndef KEEL_CORE_CHILD_T_H
#define KEEL_CORE_CHILD_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/ev.h" /* the watcher structs embedded below (there is no ev-t.h) */

#define CHILD_GROUPS_MAX 256 /* supplementary groups of a user */
#define CHILD_LINE_MAX 1024  /* longer output lines are cut */

/* Who a child runs as. */
struct child_ids {
    bool is_set; /* false: keel's own ids */
    uid_t uid;
    gid_t gid;
    gid_t groups[CHILD_GROUPS_MAX];
    int n_groups;
};

/* Where a child's stdout and stderr go (its stdin is always /dev/null). */
enum child_output_mode {
    CHILD_OUTPUT_LOG = 0, /* pipes read by the loop: each line logged (child.h) */
    CHILD_OUTPUT_FILE,    /* appended to output_path (created 0600, never through a symlink) */
    CHILD_OUTPUT_INHERIT  /* keel's own stdout and stderr */
};

/* What to start. Everything is borrowed for the call (child_start keeps a copy). */
struct child_spec {
    const char *path;            /* what execve runs */
    char *const *argv;           /* NULL-terminated */
    char *const *envp;           /* NULL-terminated */
    const char *directory;       /* working directory; NULL: keel's */
    const struct child_ids *ids; /* NULL or !is_set: keel's own ids */
    const char *user;            /* the user's name, for the error message */
    enum child_output_mode output;
    const char *output_path; /* CHILD_OUTPUT_FILE */
    int pdeath_sig;          /* signal it gets when keel dies; 0: SIGKILL */
    bool is_group_stopped;   /* child_stop signals its process group, not the process alone */
    uint32_t timeout_ms;     /* SIGKILL to its group after running this long; 0: never */
    /* envp holds a secret (a password): keel wipes its copy as soon as the process is
     * spawned, instead of keeping it for the whole run. Only for a child that never restarts
     * (no child_set_restart, before or after the start): a restart would get no environment. */
    bool is_env_secret;
    /* Logging (NULL ctx: the supervisor logs nothing about this child, its owner says what
     * it wants from the callbacks; output lines then go to "child" when logged). */
    const char *ctx;        /* the supervisor's messages: "app web/0" */
    const char *out_ctx;    /* its output lines; NULL: ctx */
    bool is_pid_in_out_ctx; /* output lines go to "OUT_CTX[PID]" */
};

/* One line of output: len bytes at line (no newline, no NUL inside, valid during the call);
 * is_cut when the line was longer than CHILD_LINE_MAX and the rest of it is dropped. */
typedef void (*child_line_fn)(void *data, const char *line, size_t len, bool is_cut);

/* A pipe being read line by line (core/child_output.h). Embed it; fields are private. */
struct child_output {
    struct ev_loop *_loop;
    int _fd; /* read end, non-blocking; -1 when closed */
    struct ev_io _io;
    child_line_fn _on_line;
    void *_data;
    size_t _len;       /* bytes in _line */
    bool _is_skipping; /* the current line was too long: drop the rest of it */
    char _line[CHILD_LINE_MAX];
};

/* Restart with exponential backoff: the first restart waits initial_ms, each following one
 * twice the previous delay, at most max_ms; a run of stable_ms or more starts over. */
struct child_restart {
    uint32_t initial_ms;
    uint32_t max_ms;
    uint32_t stable_ms;
};

struct child_backoff {
    uint32_t next_ms; /* delay of the next quick restart; 0 = the initial delay */
};

/* The life of a supervised child (struct child). */
enum child_state {
    CHILD_STOPPED = 0, /* no process: not started yet, exited (no restart), or stopped */
    CHILD_RUNNING,     /* a process runs */
    CHILD_STOPPING,    /* child_stop: the stop signal sent; SIGKILL when the stop time ends */
    CHILD_KILLING,     /* SIGKILL sent at the end of a stop; given up on after the kill grace */
    CHILD_LOST,        /* survived SIGKILL for the kill grace: no longer waited for (still
                        * reaped if it ever exits) */
    CHILD_BACKOFF      /* exited, or could not start, under a restart policy: started again
                        * when the backoff delay ends */
};

/* How a run ended, for the owner's on_exit. */
struct child_exit {
    pid_t pid;          /* 0: the start failed (start_error) */
    int wstatus;        /* as waitpid gives it; -1 if unknown */
    int start_error;    /* -errno of a failed start; 0 otherwise */
    uint64_t uptime_ms; /* how long it ran */
    bool is_stop;       /* it ended after child_stop (and does not restart) */
    bool was_killed;    /* the supervisor SIGKILLed it (stop time or run deadline over) */
    bool is_restarting; /* it restarts after restart_in_ms (state CHILD_BACKOFF) */
    uint32_t restart_in_ms;
};

/* What the owner hears. Every callback may be NULL; each may call child_stop or
 * child_start (not child_fini). */
struct child_ops {
    /* A line of output (CHILD_OUTPUT_LOG): the level to log it at. NULL: info. */
    int (*line_level)(void *data, const char *line, size_t len);
    /* A process started (first start and every restart). */
    void (*on_start)(void *data, pid_t pid);
    /* A run ended (the process is reaped and its output logged), or, under a restart policy,
     * a start failed. */
    void (*on_exit)(void *data, const struct child_exit *e);
    /* The process survived SIGKILL for the kill grace: state CHILD_LOST. */
    void (*on_lost)(void *data, pid_t pid);
};

/* A supervised child. Embed it; child_init it once. Fields are private. */
struct child {
    struct ev_loop *_loop;
    const struct child_ops *_ops;
    void *_data;
    enum child_state _state;
    pid_t _pid; /* 0: no process */
    int _pidfd; /* -1: none (the exit is polled) */
    struct ev_io _pidio;
    struct ev_timer _timer; /* RUNNING: the run deadline; STOPPING: SIGKILL; KILLING: give up;
                             * BACKOFF: the restart */
    struct ev_timer _poll;  /* polls the exit without a pidfd */
    struct child_output _out[2];
    bool _has_restart;
    struct child_restart _restart;
    struct child_backoff _backoff;
    bool _is_restart_after_stop; /* child_restart: a stop that restarts */
    bool _was_killed;
    uint32_t _stop_ms; /* what the SIGKILL message says */
    int _stop_sig;
    uint64_t _started_ms;
    uint64_t _log_tokens; /* output lines allowed, in thousandths */
    uint64_t _log_refill_ms;
    uint64_t _lines_dropped;
    char *_spec_mem;         /* the copy of the spec (restarts) */
    struct child_spec _spec; /* points into _spec_mem */
    struct child_ids _ids;
    bool _is_pid_in_out_ctx;
    char _ctx[128];      /* "": no messages */
    char _out_base[128]; /* its output lines' context, without the pid */
    char _out_ctx[144];  /* its output lines' context: "app web[1234]" */
};

#endif
