/* SPDX-License-Identifier: MIT */
/* One PostgreSQL instance (see pg_inst.h). Two machines: the processes (enum pg_inst_state,
 * changed only by inst_set_state) and the operation in progress, a fixed list of steps per
 * operation (op_steps[]) run one after another, each started by run_step and finished by
 * step_done. Process exits, the readiness poll and SQL results drive the steps. The files of
 * the data directory are pg_datadir.c's. */
#include "db/pg_inst.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/child.h"
#include "core/fsm.h"
#include "core/log.h"
#include "db/pg_child.h"
#include "db/pg_datadir.h"
#include "db/pg_sockdir.h"
#include "db/pg_text.h"

#define PG_READY_POLL_MS 50    /* postmaster.pid polls while starting ... */
#define PG_READY_SLOW_MS 500   /* ... and after the start timed out */
#define PG_PROMOTE_WAIT_S 60   /* pg_promote(wait_seconds) */
#define PG_SQL_TIMEOUT_MS 5000 /* the admin connections' default */

/* ------------------------------------------------------------------------------------------
 * Objects
 * ------------------------------------------------------------------------------------------ */

enum pg_inst_op {
    OP_NONE = 0,
    OP_INIT_PRIMARY,
    OP_INIT_REPLICA,
    OP_START,
    OP_STOP,
    OP_PROMOTE,
    OP_FOLLOW,
    OP_DEMOTE,
    OP_UNFOLLOW,
    OP_COUNT
};

static const char *const op_names[] = {
    [OP_NONE] = "none",
    [OP_INIT_PRIMARY] = "init primary",
    [OP_INIT_REPLICA] = "init replica",
    [OP_START] = "start",
    [OP_STOP] = "stop",
    [OP_PROMOTE] = "promote",
    [OP_FOLLOW] = "follow",
    [OP_DEMOTE] = "demote",
    [OP_UNFOLLOW] = "unfollow",
};

enum pg_step {
    STEP_END = 0,       /* the operation succeeded */
    STEP_PREPARE,       /* data directory: absent or empty, then created 0700 for user */
    STEP_INITDB,        /* initdb; postgresql.conf becomes postgresql.base.conf */
    STEP_BASEBACKUP,    /* pg_basebackup from the primary */
    STEP_STANDBY_CONF,  /* keel_standby.conf and standby.signal */
    STEP_STOP,          /* nothing runs any more (signals, SIGKILL of tools) */
    STEP_RECOVER,       /* not shut down cleanly: crash recovery (postgres --single) */
    STEP_REWIND,        /* pg_rewind from the primary */
    STEP_START,         /* configuration written, postmaster ready */
    STEP_BOOTSTRAP_SQL, /* the replication role */
    STEP_PROMOTE_SQL,   /* pg_promote(true) */
    STEP_RELOAD_SQL,    /* pg_reload_conf(): a standby drops the primary_conninfo removed */
    STEP_CHECKPOINT_SQL /* CHECKPOINT: the new timeline reaches pg_control */
};

#define OP_STEPS_MAX 6
static const enum pg_step op_steps[OP_COUNT][OP_STEPS_MAX] = {
    [OP_INIT_PRIMARY] = {STEP_PREPARE, STEP_INITDB, STEP_START, STEP_BOOTSTRAP_SQL, STEP_END},
    [OP_INIT_REPLICA] = {STEP_PREPARE, STEP_BASEBACKUP, STEP_STANDBY_CONF, STEP_START, STEP_END},
    [OP_START] = {STEP_START, STEP_END},
    [OP_STOP] = {STEP_STOP, STEP_END},
    [OP_PROMOTE] = {STEP_PROMOTE_SQL, STEP_CHECKPOINT_SQL, STEP_END},
    [OP_FOLLOW] = {STEP_STOP, STEP_RECOVER, STEP_REWIND, STEP_STANDBY_CONF, STEP_START, STEP_END},
    [OP_DEMOTE] = {STEP_STOP, STEP_STANDBY_CONF, STEP_START, STEP_END},
    [OP_UNFOLLOW] = {STEP_STANDBY_CONF, STEP_RELOAD_SQL, STEP_END},
};

struct pg_inst {
    struct ev_loop *loop;
    /* Configuration (own copies) */
    char *name, *bindir, *datadir, *socket_dir, *user, *listen_addr, *repl_user, *repl_password,
        *app_name;
    char **cidrs;
    size_t n_cidrs;
    char **settings;
    size_t n_settings;
    uint16_t port;
    uint32_t start_timeout_ms, stop_timeout_ms, tool_timeout_ms;
    bool is_nosync;
    bool is_sockdir_checked;
    bool is_sockdir_bad; /* the last check failed (logged once per failure period) */
    struct child_ids ids;
    char keel_user[64];   /* keel's own OS user, mapped to user in pg_ident.conf */
    char ctx[80];         /* "pg NAME" */
    struct pg_datadir dd; /* points into the fields above */
    /* Processes */
    enum pg_inst_state state;
    struct pg_child child;
    struct ev_timer timer; /* STARTING: readiness poll; STOPPING: SIGKILL */
    uint64_t start_deadline_ms;
    bool is_standby;
    enum pg_stop_mode stop_mode;
    char last_exit[96];
    pg_inst_exit_fn on_exit;
    void *exit_data;
    /* The operation */
    enum pg_inst_op op;
    uint32_t step; /* index in op_steps[op] */
    pg_done_fn op_cb;
    void *op_data;
    struct ev_defer begin; /* operations start from the loop, never inside the API call */
    bool is_stop_pending;
    enum pg_stop_mode pending_mode;
    pg_done_fn stop_cb;
    void *stop_data;
    bool is_rewind_skipped;    /* follow: crashed as a standby, its start recovers */
    bool had_standby_signal;   /* follow: standby.signal before the crash recovery */
    char primary_host[64];     /* init_replica, follow */
    char slot[64];             /* "" for none */
    struct pg_primary primary; /* points to the two above */
    /* SQL */
    struct pg_conn *conn;    /* the public admin connection */
    struct pg_conn *op_conn; /* the operations' own, closed when one is cancelled */
    bool is_freed;
};

static void run_step(struct pg_inst *p);
static void step_done(struct pg_inst *p, int rc, const char *reason);

/* ------------------------------------------------------------------------------------------
 * The process state machine
 * ------------------------------------------------------------------------------------------ */

static const char *const pg_inst_state_names[] = {
    [PG_INST_STOPPED] = "stopped",       [PG_INST_INITDB] = "initdb",
    [PG_INST_BASEBACKUP] = "basebackup", [PG_INST_REWIND] = "rewind",
    [PG_INST_STARTING] = "starting",     [PG_INST_RUNNING] = "running",
    [PG_INST_STOPPING] = "stopping",     [PG_INST_RECOVERY] = "recovery",
};

const char *pg_inst_state_name(enum pg_inst_state state)
{
    return (unsigned)state <= PG_INST_RECOVERY ? pg_inst_state_names[state] : "?";
}

#define BIT(s) (1u << (s))
static const uint32_t legal_next[] = {
    /* a tool or the postmaster spawned */
    [PG_INST_STOPPED] = BIT(PG_INST_INITDB) | BIT(PG_INST_BASEBACKUP) | BIT(PG_INST_REWIND) |
                        BIT(PG_INST_STARTING) | BIT(PG_INST_RECOVERY),
    /* the tool exited (or was killed) */
    [PG_INST_INITDB] = BIT(PG_INST_STOPPED),
    [PG_INST_BASEBACKUP] = BIT(PG_INST_STOPPED),
    [PG_INST_REWIND] = BIT(PG_INST_STOPPED),
    [PG_INST_RECOVERY] = BIT(PG_INST_STOPPED),
    /* ready; stop requested; exited */
    [PG_INST_STARTING] = BIT(PG_INST_RUNNING) | BIT(PG_INST_STOPPING) | BIT(PG_INST_STOPPED),
    /* stop requested; crashed or killed */
    [PG_INST_RUNNING] = BIT(PG_INST_STOPPING) | BIT(PG_INST_STOPPED),
    /* exited */
    [PG_INST_STOPPING] = BIT(PG_INST_STOPPED),
};

static void inst_set_state(struct pg_inst *p, enum pg_inst_state to, const char *reason)
{
    enum pg_inst_state from = p->state;
    if ((legal_next[from] & BIT(to)) == 0) {
        fsm_illegal(FSM_MACHINE_PG, p->ctx, pg_inst_state_name(from), pg_inst_state_name(to),
                    reason);
        return; /* refused: the state stays (core/fsm.h) */
    }
    log_notice(p->ctx, "%s -> %s (%s)", pg_inst_state_name(from), pg_inst_state_name(to), reason);
    p->state = to;
}

/* ------------------------------------------------------------------------------------------
 * Children
 * ------------------------------------------------------------------------------------------ */

/* Run bindir/prog with args (NULL-terminated, after argv[0]) as the user, in state. With
 * a password, PGPASSWORD carries it (never on the command line). */
static int spawn(struct pg_inst *p, const char *prog, const char *const *args,
                 enum pg_inst_state state, bool with_password, char *why, size_t size)
{
    char path[4096], ctx[160], pw[1024];
    char *argv[24];
    size_t n = 0;
    (void)snprintf(path, sizeof(path), "%s/%s", p->bindir, prog);
    /* The full path: PostgreSQL's programs find their siblings (initdb needs postgres,
     * pg_rewind runs it) through argv[0]. */
    argv[n++] = path;
    for (size_t i = 0; args[i] != NULL && n < 23; i++) {
        argv[n++] = (char *)args[i];
    }
    argv[n] = NULL;
    /* A clean environment: keel's PG* variables would change what the tools connect to. */
    (void)snprintf(pw, sizeof(pw), "PGPASSWORD=%s", p->repl_password);
    char *envp[] = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "PGCONNECT_TIMEOUT=10",
                    with_password ? pw : NULL, NULL};
    if (state == PG_INST_STARTING) {
        (void)snprintf(ctx, sizeof(ctx), "%s", p->ctx);
    } else if (state == PG_INST_RECOVERY) {
        (void)snprintf(ctx, sizeof(ctx), "%s postgres --single", p->ctx);
    } else {
        (void)snprintf(ctx, sizeof(ctx), "%s %s", p->ctx, prog);
    }
    struct pg_child_spec spec = {.path = path,
                                 .argv = argv,
                                 .envp = envp,
                                 .ids = &p->ids,
                                 .user = p->user,
                                 .ctx = ctx,
                                 .is_postgres =
                                     state == PG_INST_STARTING || state == PG_INST_RECOVERY,
                                 .timeout_ms = state == PG_INST_STARTING ? 0 : p->tool_timeout_ms};
    int rc = pg_child_start(&p->child, &spec);
    explicit_bzero(pw, sizeof(pw));
    if (rc != 0) {
        (void)snprintf(why, size, "cannot start %s: %s", prog, strerror(-rc));
        return rc;
    }
    char reason[64];
    (void)snprintf(reason, sizeof(reason), "%s pid %d", prog, (int)pg_child_pid(&p->child));
    inst_set_state(p, state, reason);
    return 0;
}

static enum pg_step cur_step(const struct pg_inst *p)
{
    return p->op == OP_NONE ? STEP_END : op_steps[p->op][p->step];
}

static void on_child_exit(void *data, int wstatus)
{
    struct pg_inst *p = data;
    enum pg_inst_state was = p->state;
    bool is_postmaster =
        was == PG_INST_STARTING || was == PG_INST_RUNNING || was == PG_INST_STOPPING;
    char how[96], reason[400];
    child_describe_exit(wstatus, how, sizeof(how));
    ev_timer_stop(p->loop, &p->timer);
    if (is_postmaster) {
        (void)snprintf(p->last_exit, sizeof(p->last_exit), "%s", how);
        (void)snprintf(reason, sizeof(reason), "postgres %s", how);
        if (was == PG_INST_STOPPING) {
            log_notice(p->ctx, "postgres stopped (%s)", how);
        } else if (was == PG_INST_RUNNING) {
            log_error(p->ctx, "postgres exited unexpectedly (%s)", how);
        } /* else the start fails, and its failure is logged once, with the operation's */
    } else {
        (void)snprintf(reason, sizeof(reason), "%s %s", pg_inst_state_name(was), how);
    }
    inst_set_state(p, PG_INST_STOPPED, reason);
    if (!is_postmaster && wstatus != 0 && pg_child_last_error(&p->child)[0] != '\0') {
        /* The tool's own reason, for the operation's failure (its output is in the log). */
        (void)snprintf(reason, sizeof(reason), "%s %s: %.120s", pg_inst_state_name(was), how,
                       pg_child_last_error(&p->child));
    }
    switch (cur_step(p)) {
    case STEP_RECOVER:
        if (pg_datadir_set_signals(&p->dd, p->had_standby_signal) != 0) {
            log_warn(p->ctx, "cannot restore the signal files after crash recovery");
        }
        step_done(p, wstatus == 0 ? 0 : -EIO, reason);
        break;
    case STEP_INITDB:
    case STEP_BASEBACKUP:
    case STEP_REWIND:
        step_done(p, wstatus == 0 ? 0 : -EIO, reason);
        break;
    case STEP_STOP:
        step_done(p, 0, "");
        break;
    case STEP_START:
        (void)snprintf(reason, sizeof(reason), "postgres exited while starting: %s%s%.200s", how,
                       pg_child_last_error(&p->child)[0] != '\0' ? ": " : "",
                       pg_child_last_error(&p->child));
        step_done(p, -EIO, reason);
        break;
    default:
        break;
    }
    if (is_postmaster && !p->is_freed && p->on_exit != NULL) {
        p->on_exit(p->exit_data, wstatus, was == PG_INST_STOPPING);
    }
}

/* The readiness poll: postmaster.pid names our postmaster and says "ready" or "standby". */
static void poll_ready(struct pg_inst *p)
{
    struct pg_pidfile pf = {0};
    bool is_ready = pg_datadir_read_pidfile(&p->dd, &pf) == 0 &&
                    pf.pid == (long)pg_child_pid(&p->child) &&
                    (pf.status == PG_PM_READY || pf.status == PG_PM_STANDBY);
    uint64_t now = ev_now_ms(p->loop);
    if (is_ready) {
        inst_set_state(p, PG_INST_RUNNING,
                       p->is_standby ? "accepting connections as a standby"
                                     : "accepting connections as a primary");
        if (cur_step(p) == STEP_START) {
            step_done(p, 0, "");
        }
        return;
    }
    if (p->start_deadline_ms != 0 && now >= p->start_deadline_ms) {
        p->start_deadline_ms = 0;
        if (cur_step(p) == STEP_START) {
            char why[96];
            (void)snprintf(why, sizeof(why), "postgres not ready after %u ms", p->start_timeout_ms);
            step_done(p, -KEEL_ETIMEDOUT, why);
        }
    }
    ev_timer_start(p->loop, &p->timer,
                   p->start_deadline_ms != 0 ? PG_READY_POLL_MS : PG_READY_SLOW_MS);
}

static void on_timer(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    struct pg_inst *p = t->data;
    if (p->state == PG_INST_STARTING) {
        poll_ready(p);
    } else if (p->state == PG_INST_STOPPING) {
        log_warn(p->ctx, "postgres pid %d still running %u ms after the stop signal: SIGKILL",
                 (int)pg_child_pid(&p->child), p->stop_timeout_ms);
        pg_child_signal(&p->child, SIGKILL, true);
    }
}

/* ------------------------------------------------------------------------------------------
 * Steps
 * ------------------------------------------------------------------------------------------ */

static void step_initdb(struct pg_inst *p)
{
    char why[256], user_arg[128];
    (void)snprintf(user_arg, sizeof(user_arg), "--username=%s", p->user);
    const char *args[] = {"-D",
                          p->datadir,
                          user_arg,
                          "--auth-local=peer",
                          "--auth-host=scram-sha-256",
                          "--encoding=UTF8",
                          "--locale=C.UTF-8",
                          "--no-instructions",
                          p->is_nosync ? "--no-sync" : NULL,
                          NULL};
    if (spawn(p, "initdb", args, PG_INST_INITDB, false, why, sizeof(why)) != 0) {
        step_done(p, -EIO, why);
    }
}

static void step_basebackup(struct pg_inst *p)
{
    char why[256], ci[2048];
    if (pg_primary_conninfo(&p->primary, "keel_basebackup", NULL, false, ci, sizeof(ci)) != 0) {
        step_done(p, -ENAMETOOLONG, "primary conninfo too long");
        return;
    }
    char slot_arg[96];
    (void)snprintf(slot_arg, sizeof(slot_arg), "--slot=%s", p->slot);
    const char *args[12] = {"-D",
                            p->datadir,
                            "-d",
                            ci,
                            "--wal-method=stream",
                            "--checkpoint=fast",
                            "--no-password",
                            "--verbose"};
    size_t n = 8;
    if (p->is_nosync) {
        args[n++] = "--no-sync";
    }
    if (p->slot[0] != '\0') {
        args[n++] = slot_arg;
    }
    args[n] = NULL;
    if (spawn(p, "pg_basebackup", args, PG_INST_BASEBACKUP, true, why, sizeof(why)) != 0) {
        step_done(p, -EIO, why);
    }
}

/* Bring a data directory that was not shut down cleanly to a clean shutdown, as pg_rewind
 * requires (Patroni does the same): single-user mode runs crash recovery and a shutdown
 * checkpoint. pg_rewind would do it itself, but fails when standby.signal is there (a fenced
 * primary whose read-only restart failed), and no retry would ever get past that. */
static void step_recover(struct pg_inst *p)
{
    struct pg_control ctl;
    p->is_rewind_skipped = false;
    int rc = pg_datadir_read_control(&p->dd, &ctl);
    if (rc != 0 || ctl.state == PG_CONTROL_SHUT_DOWN ||
        ctl.state == PG_CONTROL_SHUT_DOWN_IN_RECOVERY) {
        step_done(p, 0, ""); /* clean, or unreadable: pg_rewind says what it finds */
        return;
    }
    if (ctl.state == PG_CONTROL_IN_ARCHIVE_RECOVERY) {
        /* A standby that crashed, or a rewind whose start failed: single-user mode refuses
         * standby mode, and recovery without it would end as a primary. Its start as a
         * standby finishes the recovery; a history that diverged is rewound at the next
         * follow, after a clean stop. */
        log_notice(p->ctx, "crashed while in archive recovery: no rewind, the standby's start "
                           "finishes its recovery");
        p->is_rewind_skipped = true;
        step_done(p, 0, "");
        return;
    }
    log_notice(p->ctx, "not shut down cleanly: crash recovery in single-user mode first");
    struct errbuf eb;
    p->had_standby_signal = pg_datadir_is_standby(&p->dd);
    rc = pg_datadir_write_config(&p->dd, &eb);
    if (rc != 0) {
        step_done(p, rc, eb.msg);
        return;
    }
    rc = pg_datadir_set_signals(&p->dd, false);
    if (rc != 0) {
        step_done(p, rc, "cannot remove standby.signal before crash recovery");
        return;
    }
    char why[256];
    /* Before crash recovery PostgreSQL makes the whole data directory durable; one syncfs()
     * is much faster than an fsync() per file on a loaded machine (seconds, on the failover
     * path), and pg_rewind's own run skipped that sync altogether (-F). */
    const char *args[] = {"--single",  "-c", "recovery_init_sync_method=syncfs", "-D", p->datadir,
                          "template1", NULL};
    if (spawn(p, "postgres", args, PG_INST_RECOVERY, false, why, sizeof(why)) != 0) {
        if (pg_datadir_set_signals(&p->dd, p->had_standby_signal) != 0) {
            log_warn(p->ctx, "cannot restore standby.signal");
        }
        step_done(p, -EIO, why);
    }
}

static void step_rewind(struct pg_inst *p)
{
    char why[256], ci[2048], src[2100];
    if (p->is_rewind_skipped) {
        step_done(p, 0, "");
        return;
    }
    if (pg_primary_conninfo(&p->primary, "keel_rewind", "postgres", false, ci, sizeof(ci)) != 0) {
        step_done(p, -ENAMETOOLONG, "primary conninfo too long");
        return;
    }
    (void)snprintf(src, sizeof(src), "--source-server=%s", ci);
    /* --progress: its steps in the log, each timed (the file lists, the copy, the sync): it
     * is most of an old primary's rejoin. */
    const char *args[] = {"-D", p->datadir, src, "--progress", p->is_nosync ? "--no-sync" : NULL,
                          NULL};
    if (spawn(p, "pg_rewind", args, PG_INST_REWIND, true, why, sizeof(why)) != 0) {
        step_done(p, -EIO, why);
    }
}

/* The owner the socket directory must have: the instance's user. */
static uid_t owner_uid(const struct pg_inst *p)
{
    return p->ids.is_set ? p->ids.uid : geteuid();
}

/* Before every connection (pg_conn_set_check): the socket directory is still keel's. */
static int check_socket_dir(void *data, struct errbuf *eb)
{
    struct pg_inst *p = data;
    int rc = pg_sockdir_check(p->socket_dir, owner_uid(p), eb);
    if (rc != 0 && !p->is_sockdir_bad) {
        log_error(p->ctx, "not connecting to PostgreSQL: %s", eb->msg);
    } else if (rc == 0 && p->is_sockdir_bad) {
        log_notice(p->ctx, "socket directory %s passes its check again", p->socket_dir);
    }
    p->is_sockdir_bad = rc != 0;
    return rc;
}

static void step_start(struct pg_inst *p)
{
    char why[512];
    if (p->state == PG_INST_RUNNING) {
        step_done(p, 0, "");
        return;
    }
    if (p->state == PG_INST_STARTING) {
        return; /* the readiness poll finishes the step */
    }
    if (p->state != PG_INST_STOPPED) {
        step_done(p, -EBUSY, "postgres is stopping");
        return;
    }
    if (!pg_datadir_is_initialized(&p->dd)) {
        (void)snprintf(why, sizeof(why), "%s holds no PostgreSQL data directory", p->datadir);
        step_done(p, -ENOENT, why);
        return;
    }
    struct errbuf eb = {.msg = ""};
    int rc = p->is_sockdir_checked ? pg_sockdir_check(p->socket_dir, owner_uid(p), &eb) : 0;
    if (rc != 0) {
        log_error(p->ctx, "not starting PostgreSQL: %s", eb.msg);
        step_done(p, rc, eb.msg);
        return;
    }
    rc = pg_datadir_write_config(&p->dd, &eb);
    if (rc == 0 && pg_datadir_clear_standby(&p->dd, false) != 0) {
        errbuf_set(&eb, "cannot write %s/" PG_DATADIR_STANDBY_CONF, p->datadir);
        rc = -EIO;
    }
    if (rc != 0) {
        step_done(p, rc, eb.msg);
        return;
    }
    p->is_standby = pg_datadir_is_standby(&p->dd);
    const char *args[] = {"-D", p->datadir, NULL};
    if (spawn(p, "postgres", args, PG_INST_STARTING, false, why, sizeof(why)) != 0) {
        step_done(p, -EIO, why);
        return;
    }
    p->start_deadline_ms = ev_now_ms(p->loop) + p->start_timeout_ms;
    ev_timer_start(p->loop, &p->timer, PG_READY_POLL_MS);
}

/* Signal the postmaster for p->stop_mode; SIGKILL after the timeout. */
static void signal_stop(struct pg_inst *p)
{
    int sig = p->stop_mode == PG_STOP_IMMEDIATE ? SIGQUIT : SIGINT;
    pg_child_signal(&p->child, sig, false); /* the postmaster alone: it stops its children */
    if (p->state != PG_INST_STOPPING) {
        char reason[96];
        (void)snprintf(reason, sizeof(reason), "%s sent to pid %d",
                       sig == SIGQUIT ? "SIGQUIT (immediate)" : "SIGINT (fast)",
                       (int)pg_child_pid(&p->child));
        inst_set_state(p, PG_INST_STOPPING, reason);
        ev_timer_stop(p->loop, &p->timer);
        ev_timer_start(p->loop, &p->timer, p->stop_timeout_ms);
    }
}

static void step_stop(struct pg_inst *p)
{
    switch (p->state) {
    case PG_INST_STOPPED:
        step_done(p, 0, "");
        return;
    case PG_INST_INITDB:
    case PG_INST_BASEBACKUP:
    case PG_INST_REWIND:
    case PG_INST_RECOVERY:
        log_warn(p->ctx, "killing %s (pid %d): stop requested", pg_inst_state_name(p->state),
                 (int)pg_child_pid(&p->child));
        pg_child_signal(&p->child, SIGKILL, true);
        return; /* the exit finishes the step */
    case PG_INST_STARTING:
    case PG_INST_RUNNING:
    case PG_INST_STOPPING:
        signal_stop(p);
        return;
    }
}

/* ------------------------------------------------------------------------------------------
 * SQL steps (on op_conn)
 * ------------------------------------------------------------------------------------------ */

/* Whether a result belongs to the step that sent it (a cancelled operation's queries are
 * failed with -ECANCELED by closing op_conn, while the step is no longer theirs). */
static bool sql_is_current(const struct pg_inst *p, enum pg_step step)
{
    return !p->is_freed && cur_step(p) == step;
}

static void on_bootstrap_done(void *data, const struct pg_result *r)
{
    struct pg_inst *p = data;
    if (!sql_is_current(p, STEP_BOOTSTRAP_SQL)) {
        return;
    }
    char why[600];
    (void)snprintf(why, sizeof(why), "creating role %s: %s", p->repl_user, r->msg);
    step_done(p, r->err, r->err == 0 ? "" : why);
}

/* Connected: the verifier is computed here, so the password never reaches the server. */
static void on_bootstrap_connected(void *data, const struct pg_result *r)
{
    struct pg_inst *p = data;
    if (!sql_is_current(p, STEP_BOOTSTRAP_SQL)) {
        return;
    }
    if (r->err != 0) {
        step_done(p, r->err, r->msg);
        return;
    }
    char *verifier = pg_conn_encrypt_password(p->op_conn, p->repl_password, p->repl_user);
    char role[80], lit[600], *sql = malloc(4096);
    int rc = verifier == NULL || sql == NULL ? -ENOMEM : pg_quote_ident(p->repl_user, role, 80);
    rc = rc != 0 ? rc : pg_quote_literal(verifier, lit, sizeof(lit));
    if (rc == 0) {
        /* pg_rewind's source needs these functions (PostgreSQL's pg_rewind documentation);
         * granting them lets the replication role serve as the rewind role too. */
        (void)snprintf(
            sql, 4096,
            "CREATE ROLE %s WITH REPLICATION LOGIN PASSWORD %s;"
            "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO %s;"
            "GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO %s;"
            "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO %s;"
            "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint,"
            " boolean) TO %s",
            role, lit, role, role, role, role);
        rc = pg_query(p->op_conn, sql, on_bootstrap_done, p);
    }
    free(verifier);
    free(sql);
    if (rc != 0) {
        step_done(p, rc, "cannot create the replication role");
    }
}

static void step_bootstrap_sql(struct pg_inst *p)
{
    int rc = pg_query(p->op_conn, "SELECT 1", on_bootstrap_connected, p);
    if (rc != 0) {
        step_done(p, rc, "cannot query the new primary");
    }
}

static void on_checkpoint(void *data, const struct pg_result *r)
{
    struct pg_inst *p = data;
    if (!sql_is_current(p, STEP_CHECKPOINT_SQL)) {
        return;
    }
    if (r->err != 0) {
        /* Promoted all the same: only a rewind of the old primary may now think it has
         * nothing to do until the next checkpoint. */
        log_warn(p->ctx, "CHECKPOINT after the promotion failed: %s", r->msg);
    }
    step_done(p, 0, "");
}

static void on_promoted(void *data, const struct pg_result *r)
{
    struct pg_inst *p = data;
    if (!sql_is_current(p, STEP_PROMOTE_SQL)) {
        return;
    }
    const char *v = pg_result_value(r, 0, 0);
    if (r->err != 0) {
        step_done(p, r->err, r->msg);
        return;
    }
    if (v == NULL || strcmp(v, "t") != 0) {
        step_done(p, -KEEL_ETIMEDOUT, "pg_promote: still in recovery after 60 s");
        return;
    }
    p->is_standby = false;
    int rc = pg_datadir_clear_standby(&p->dd, true);
    if (rc != 0) {
        log_warn(p->ctx, "cannot empty %s/" PG_DATADIR_STANDBY_CONF ": %s", p->datadir,
                 strerror(-rc));
    }
    log_notice(p->ctx, "promoted: now a primary");
    step_done(p, 0, "");
}

static void step_promote_sql(struct pg_inst *p)
{
    if (p->state != PG_INST_RUNNING || !p->is_standby) {
        step_done(p, -EINVAL,
                  p->state != PG_INST_RUNNING ? "postgres is not running"
                                              : "postgres is not a standby");
        return;
    }
    char sql[64];
    (void)snprintf(sql, sizeof(sql), "SELECT pg_promote(true, %d)", PG_PROMOTE_WAIT_S);
    int rc = pg_query_ms(p->op_conn, sql, (PG_PROMOTE_WAIT_S + 10) * 1000, on_promoted, p);
    if (rc != 0) {
        step_done(p, rc, "cannot query the standby");
    }
}

static void on_reloaded(void *data, const struct pg_result *r)
{
    struct pg_inst *p = data;
    if (sql_is_current(p, STEP_RELOAD_SQL)) {
        step_done(p, r->err, r->err != 0 ? r->msg : "");
    }
}

/* ------------------------------------------------------------------------------------------
 * Operations
 * ------------------------------------------------------------------------------------------ */

static void op_end(struct pg_inst *p, int rc, const char *reason)
{
    pg_done_fn cb = p->op_cb;
    void *data = p->op_data;
    enum pg_inst_op op = p->op;
    p->op = OP_NONE;
    p->op_cb = NULL;
    if (rc == 0) {
        log_notice(p->ctx, "%s: done", op_names[op]);
    } else if (rc == -ECANCELED) {
        log_notice(p->ctx, "%s: cancelled (%s)", op_names[op], reason);
    } else {
        log_warn(p->ctx, "%s failed: %s", op_names[op], reason);
    }
    if (cb != NULL) {
        cb(data, rc, reason);
    }
}

static void run_step(struct pg_inst *p)
{
    struct errbuf eb = {.msg = ""};
    int rc;
    switch (cur_step(p)) {
    case STEP_END:
        op_end(p, 0, "");
        return;
    case STEP_PREPARE:
        rc = pg_datadir_prepare(&p->dd, &eb);
        step_done(p, rc, eb.msg);
        return;
    case STEP_INITDB:
        step_initdb(p);
        return;
    case STEP_BASEBACKUP:
        step_basebackup(p);
        return;
    case STEP_STANDBY_CONF:
        rc = pg_datadir_write_standby(&p->dd, &p->primary, p->app_name, &eb);
        p->is_standby = rc == 0 ? true : p->is_standby;
        step_done(p, rc, eb.msg);
        return;
    case STEP_STOP:
        step_stop(p);
        return;
    case STEP_RECOVER:
        step_recover(p);
        return;
    case STEP_REWIND:
        step_rewind(p);
        return;
    case STEP_START:
        step_start(p);
        return;
    case STEP_BOOTSTRAP_SQL:
        step_bootstrap_sql(p);
        return;
    case STEP_PROMOTE_SQL:
        step_promote_sql(p);
        return;
    case STEP_RELOAD_SQL:
        if (pg_query_ms(p->op_conn, "SELECT pg_reload_conf()", 10000, on_reloaded, p) != 0) {
            step_done(p, -EIO, "cannot query postgres");
        }
        return;
    case STEP_CHECKPOINT_SQL:
        if (pg_query_ms(p->op_conn, "CHECKPOINT", 120000, on_checkpoint, p) != 0) {
            step_done(p, 0, "");
        }
        return;
    }
}

static void step_done(struct pg_inst *p, int rc, const char *reason)
{
    if (p->op == OP_NONE) {
        return;
    }
    if (rc != 0) {
        op_end(p, rc, reason);
        return;
    }
    /* After initdb: keel's postgresql.conf includes initdb's, renamed. */
    if (cur_step(p) == STEP_INITDB) {
        struct errbuf eb;
        int err = pg_datadir_adopt_initdb_conf(&p->dd, &eb);
        if (err != 0) {
            op_end(p, err, eb.msg);
            return;
        }
    }
    p->step++;
    run_step(p);
}

/* Cancel the running operation (a stop was asked for): its SQL fails now, its cb gets
 * -ECANCELED. A running tool is left to the stop. */
static void op_cancel(struct pg_inst *p, const char *why)
{
    if (p->op == OP_NONE) {
        return;
    }
    enum pg_inst_op op = p->op;
    pg_done_fn cb = p->op_cb;
    void *data = p->op_data;
    p->op = OP_NONE;
    p->op_cb = NULL;
    pg_conn_close(p->op_conn); /* its callbacks see no current step: ignored */
    log_notice(p->ctx, "%s: cancelled (%s)", op_names[op], why);
    if (cb != NULL) {
        cb(data, -ECANCELED, why);
    }
}

static void on_begin(struct ev_loop *loop, void *data)
{
    (void)loop;
    struct pg_inst *p = data;
    if (p->is_freed) {
        return;
    }
    if (p->is_stop_pending) {
        /* is_stop_pending stays set meanwhile: the callback cannot start another one. */
        op_cancel(p, "stop requested");
        if (p->is_freed) {
            return;
        }
        p->is_stop_pending = false;
        p->op = OP_STOP;
        p->step = 0;
        p->op_cb = p->stop_cb;
        p->op_data = p->stop_data;
        p->stop_mode = p->pending_mode;
    }
    if (p->op != OP_NONE) {
        log_notice(p->ctx, "%s: starting", op_names[p->op]);
        run_step(p);
    }
}

static int op_begin(struct pg_inst *p, enum pg_inst_op op, pg_done_fn cb, void *data)
{
    if (p->is_freed) {
        return -ECANCELED;
    }
    if (p->op != OP_NONE || p->is_stop_pending) {
        return -EBUSY;
    }
    p->op = op;
    p->step = 0;
    p->op_cb = cb;
    p->op_data = data;
    ev_defer(p->loop, &p->begin, on_begin, p);
    return 0;
}

static int set_primary(struct pg_inst *p, const char *host, uint16_t port, const char *slot)
{
    char q[128];
    if (host == NULL || host[0] == '\0' || strlen(host) >= sizeof(p->primary_host) ||
        pg_quote_conninfo(host, q, sizeof(q)) != 0 || port == 0) {
        return -EINVAL;
    }
    if (slot != NULL && (strlen(slot) == 0 || strlen(slot) >= sizeof(p->slot) ||
                         strspn(slot, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(slot))) {
        return -EINVAL;
    }
    (void)snprintf(p->primary_host, sizeof(p->primary_host), "%s", host);
    (void)snprintf(p->slot, sizeof(p->slot), "%s", slot != NULL ? slot : "");
    p->primary.port = port;
    return 0;
}

int pg_inst_init_primary(struct pg_inst *p, pg_done_fn cb, void *data)
{
    if (p->state != PG_INST_STOPPED) {
        return -EBUSY;
    }
    return op_begin(p, OP_INIT_PRIMARY, cb, data);
}

int pg_inst_init_replica(struct pg_inst *p, const char *host, uint16_t port, const char *slot,
                         pg_done_fn cb, void *data)
{
    if (p->state != PG_INST_STOPPED || p->op != OP_NONE || p->is_stop_pending) {
        return -EBUSY;
    }
    int rc = set_primary(p, host, port, slot);
    return rc != 0 ? rc : op_begin(p, OP_INIT_REPLICA, cb, data);
}

int pg_inst_start(struct pg_inst *p, pg_done_fn cb, void *data)
{
    return op_begin(p, OP_START, cb, data);
}

int pg_inst_stop(struct pg_inst *p, enum pg_stop_mode mode, pg_done_fn cb, void *data)
{
    if (p->is_freed) {
        return -ECANCELED;
    }
    if (p->is_stop_pending || p->op == OP_STOP) {
        if (mode == PG_STOP_IMMEDIATE && p->is_stop_pending) {
            p->pending_mode = PG_STOP_IMMEDIATE;
        } else if (mode == PG_STOP_IMMEDIATE && p->stop_mode != PG_STOP_IMMEDIATE) {
            p->stop_mode = PG_STOP_IMMEDIATE;
            if (p->state == PG_INST_STOPPING) {
                signal_stop(p);
            }
        }
        return -EALREADY;
    }
    p->is_stop_pending = true;
    p->pending_mode = mode;
    p->stop_cb = cb;
    p->stop_data = data;
    ev_defer(p->loop, &p->begin, on_begin, p);
    return 0;
}

int pg_inst_promote(struct pg_inst *p, pg_done_fn cb, void *data)
{
    return op_begin(p, OP_PROMOTE, cb, data);
}

int pg_inst_follow(struct pg_inst *p, const char *host, uint16_t port, const char *slot,
                   pg_done_fn cb, void *data)
{
    if (p->op != OP_NONE || p->is_stop_pending) {
        return -EBUSY;
    }
    int rc = set_primary(p, host, port, slot);
    if (rc != 0) {
        return rc;
    }
    p->stop_mode = PG_STOP_FAST; /* pg_rewind wants a clean shutdown */
    return op_begin(p, OP_FOLLOW, cb, data);
}

int pg_inst_demote(struct pg_inst *p, pg_done_fn cb, void *data)
{
    if (p->op != OP_NONE || p->is_stop_pending) {
        return -EBUSY;
    }
    p->primary_host[0] = '\0'; /* no upstream: a standby that follows nobody */
    p->slot[0] = '\0';
    p->primary.port = 0;
    /* Immediate: a fast shutdown waits for the WAL senders, and a fenced node may be cut off
     * from its standbys. The start runs crash recovery; nothing committed is lost. */
    p->stop_mode = PG_STOP_IMMEDIATE;
    return op_begin(p, OP_DEMOTE, cb, data);
}

int pg_inst_unfollow(struct pg_inst *p, pg_done_fn cb, void *data)
{
    if (p->op != OP_NONE || p->is_stop_pending || p->state != PG_INST_RUNNING || !p->is_standby) {
        return p->op != OP_NONE || p->is_stop_pending ? -EBUSY : -EINVAL;
    }
    p->primary_host[0] = '\0';
    p->slot[0] = '\0';
    p->primary.port = 0;
    return op_begin(p, OP_UNFOLLOW, cb, data);
}

/* ------------------------------------------------------------------------------------------
 * Creation
 * ------------------------------------------------------------------------------------------ */

static bool has_ctl(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return true;
        }
    }
    return false;
}

/* Every check on conf, with the first problem in eb. */
static int conf_check(const struct pg_inst_conf *c, struct errbuf *eb)
{
    char q[1024];
    const char *user = c->user != NULL ? c->user : "postgres";
    const char *repl = c->repl_user != NULL ? c->repl_user : "replicator";
    const char *sock = c->socket_dir != NULL ? c->socket_dir : PG_INST_SOCKET_DIR;
    const char *app = c->app_name != NULL ? c->app_name : c->name;
    if (c->name == NULL || c->name[0] == '\0' || strlen(c->name) > 63 ||
        pg_quote_conf(c->name, q, sizeof(q)) != 0 || strchr(c->name, '"') != NULL) {
        errbuf_set(eb, "instance name must have 1-63 printable characters, no '\"'");
    } else if (c->datadir == NULL || c->datadir[0] != '/' || has_ctl(c->datadir) ||
               strlen(c->datadir) > 1024) {
        errbuf_set(eb, "data directory must be an absolute path");
    } else if (sock[0] != '/' || strlen(sock) > 80 || pg_quote_conf(sock, q, sizeof(q)) != 0) {
        errbuf_set(eb, "socket directory must be an absolute path of at most 80 characters");
    } else if (!pg_name_is_valid(user)) {
        errbuf_set(eb, "user \"%s\": not a valid name ([A-Za-z0-9_])", user);
    } else if (!pg_name_is_valid(repl)) {
        errbuf_set(eb, "replication user \"%s\": not a valid name ([A-Za-z0-9_])", repl);
    } else if (c->repl_password == NULL || c->repl_password[0] == '\0' ||
               strlen(c->repl_password) > 256 || has_ctl(c->repl_password)) {
        errbuf_set(eb, "replication password must have 1-256 printable characters");
    } else if (c->listen_addr == NULL || c->listen_addr[0] == '\0' ||
               pg_quote_conf(c->listen_addr, q, sizeof(q)) != 0) {
        errbuf_set(eb, "listen address missing");
    } else if (c->port == 0) {
        errbuf_set(eb, "port missing");
    } else if (app == NULL || app[0] == '\0' || strlen(app) > 63 || has_ctl(app)) {
        errbuf_set(eb, "application name must have 1-63 printable characters");
    } else if (c->bindir != NULL && (c->bindir[0] != '/' || has_ctl(c->bindir))) {
        errbuf_set(eb, "bindir must be an absolute path");
    } else {
        for (size_t i = 0; i < c->n_cidrs; i++) {
            if (!pg_cidr_is_valid(c->allowed_cidrs[i])) {
                errbuf_set(eb, "\"%s\" is not an address or a network", c->allowed_cidrs[i]);
                return -EINVAL;
            }
        }
        for (size_t i = 0; i < c->n_settings; i++) {
            if (has_ctl(c->settings[i])) {
                errbuf_set(eb, "setting %zu has a control character", i + 1);
                return -EINVAL;
            }
        }
        return 0;
    }
    return -EINVAL;
}

static char **dup_strv(const char *const *v, size_t n, bool *is_oom)
{
    char **out = calloc(n + 1, sizeof(*out));
    *is_oom = *is_oom || out == NULL;
    for (size_t i = 0; out != NULL && i < n; i++) {
        out[i] = strdup(v[i]);
        *is_oom = *is_oom || out[i] == NULL;
    }
    return out;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
        free(v[i]);
    }
    free(v);
}

static char *dup_or(const char *s, const char *dflt, bool *is_oom)
{
    char *d = strdup(s != NULL ? s : dflt);
    *is_oom = *is_oom || d == NULL;
    return d;
}

static void free_fields(struct pg_inst *p)
{
    char **strs[] = {&p->name,        &p->bindir,    &p->datadir,       &p->socket_dir, &p->user,
                     &p->listen_addr, &p->repl_user, &p->repl_password, &p->app_name};
    if (p->repl_password != NULL) {
        explicit_bzero(p->repl_password, strlen(p->repl_password));
    }
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    free_strv(p->cidrs);
    free_strv(p->settings);
    p->cidrs = NULL;
    p->settings = NULL;
}

/* keel's own user name (for pg_ident.conf). */
static int own_user(char *out, size_t size, struct errbuf *eb)
{
    char buf[16384];
    struct passwd pw, *found = NULL;
    int err = getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &found);
    if (err != 0 || found == NULL || !pg_name_is_valid(pw.pw_name)) {
        errbuf_set(eb, "cannot find a usable name for keel's own user id %u", (unsigned)geteuid());
        return -EINVAL;
    }
    (void)snprintf(out, size, "%s", pw.pw_name);
    return 0;
}

static int inst_resolve(struct pg_inst *p, struct errbuf *eb)
{
    bool is_ignored = false;
    if (child_ids_resolve(p->user, &p->ids, &is_ignored, eb) != 0) {
        return -EINVAL;
    }
    if (is_ignored) {
        errbuf_set(eb, "keel runs neither as root nor as user %s: it cannot run PostgreSQL",
                   p->user);
        return -EINVAL;
    }
    return own_user(p->keel_user, sizeof(p->keel_user), eb);
}

int pg_inst_new(struct ev_loop *loop, const struct pg_inst_conf *conf, struct pg_inst **out,
                struct errbuf *eb)
{
    *out = NULL;
    int rc = conf_check(conf, eb);
    if (rc != 0) {
        return rc;
    }
    struct pg_inst *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return -ENOMEM;
    }
    bool is_oom = false;
    p->loop = loop;
    p->name = dup_or(conf->name, "", &is_oom);
    p->bindir = dup_or(conf->bindir, PG_INST_BINDIR, &is_oom);
    p->datadir = dup_or(conf->datadir, "", &is_oom);
    p->socket_dir = dup_or(conf->socket_dir, PG_INST_SOCKET_DIR, &is_oom);
    p->user = dup_or(conf->user, "postgres", &is_oom);
    p->listen_addr = dup_or(conf->listen_addr, "", &is_oom);
    p->repl_user = dup_or(conf->repl_user, "replicator", &is_oom);
    p->repl_password = dup_or(conf->repl_password, "", &is_oom);
    p->app_name = dup_or(conf->app_name, conf->name, &is_oom);
    p->cidrs = dup_strv(conf->allowed_cidrs, conf->n_cidrs, &is_oom);
    p->n_cidrs = conf->n_cidrs;
    p->settings = dup_strv(conf->settings, conf->n_settings, &is_oom);
    p->n_settings = conf->n_settings;
    p->port = conf->port;
    p->start_timeout_ms = conf->start_timeout_ms != 0 ? conf->start_timeout_ms : 60000;
    p->stop_timeout_ms = conf->stop_timeout_ms != 0 ? conf->stop_timeout_ms : 60000;
    p->tool_timeout_ms = conf->tool_timeout_ms;
    p->is_nosync = conf->is_nosync;
    p->is_sockdir_checked = conf->is_sockdir_checked;
    (void)snprintf(p->ctx, sizeof(p->ctx), "pg %s", conf->name);
    p->dd = (struct pg_datadir){.path = p->datadir,
                                .name = p->name,
                                .user = p->user,
                                .ids = &p->ids,
                                .keel_user = p->keel_user,
                                .listen_addr = p->listen_addr,
                                .port = p->port,
                                .socket_dir = p->socket_dir,
                                .repl_user = p->repl_user,
                                .cidrs = (const char *const *)p->cidrs,
                                .n_cidrs = p->n_cidrs,
                                .settings = (const char *const *)p->settings,
                                .n_settings = p->n_settings,
                                .is_nosync = p->is_nosync};
    p->primary = (struct pg_primary){.host = p->primary_host,
                                     .user = p->repl_user,
                                     .password = p->repl_password,
                                     .slot = p->slot};
    pg_child_init(&p->child, loop, on_child_exit, p);
    ev_timer_init(&p->timer, on_timer, p, "pg instance");
    char ci[2048], name[96];
    rc = is_oom ? -ENOMEM : inst_resolve(p, eb);
    if (rc == 0 && pg_inst_conninfo(p, ci, sizeof(ci)) != 0) {
        errbuf_set(eb, "connection parameters too long");
        rc = -EINVAL;
    }
    if (rc == 0) {
        (void)snprintf(name, sizeof(name), "pg %s/admin", conf->name);
        p->conn = pg_conn_new(loop, name, ci, PG_SQL_TIMEOUT_MS);
        (void)snprintf(name, sizeof(name), "pg %s/agent", conf->name);
        p->op_conn = pg_conn_new(loop, name, ci, PG_SQL_TIMEOUT_MS);
        rc = p->conn == NULL || p->op_conn == NULL ? -ENOMEM : 0;
    }
    if (rc == 0 && p->is_sockdir_checked) {
        pg_conn_set_check(p->conn, check_socket_dir, p);
        pg_conn_set_check(p->op_conn, check_socket_dir, p);
    }
    if (rc != 0) {
        pg_conn_free(p->conn);
        pg_conn_free(p->op_conn);
        free_fields(p);
        free(p); /* nothing was started: no watcher points here */
        return rc;
    }
    *out = p;
    return 0;
}

void pg_inst_free(struct pg_inst *p)
{
    if (p == NULL || p->is_freed) {
        return;
    }
    p->is_freed = true; /* from here on, no operation starts */
    op_cancel(p, "instance freed");
    if (p->is_stop_pending) {
        p->is_stop_pending = false;
        if (p->stop_cb != NULL) {
            p->stop_cb(p->stop_data, -ECANCELED, "instance freed");
        }
    }
    pg_conn_free(p->op_conn);
    pg_conn_free(p->conn);
    if (pg_child_is_running(&p->child)) {
        log_warn(p->ctx, "killing %s pid %d: the instance is freed", pg_inst_state_name(p->state),
                 (int)pg_child_pid(&p->child));
        pg_child_kill_wait(&p->child);
    }
    pg_child_fini(&p->child);
    ev_timer_stop(p->loop, &p->timer);
    free_fields(p);
    ev_free_later(p->loop, p); /* watchers inside: a pending event may still point here */
}

void pg_inst_set_on_exit(struct pg_inst *p, pg_inst_exit_fn on_exit, void *data)
{
    p->on_exit = on_exit;
    p->exit_data = data;
}

/* ------------------------------------------------------------------------------------------
 * Observation
 * ------------------------------------------------------------------------------------------ */

enum pg_inst_state pg_inst_state(const struct pg_inst *p)
{
    return p->state;
}

pid_t pg_inst_pid(const struct pg_inst *p)
{
    bool is_postmaster =
        p->state == PG_INST_STARTING || p->state == PG_INST_RUNNING || p->state == PG_INST_STOPPING;
    return is_postmaster ? pg_child_pid(&p->child) : 0;
}

bool pg_inst_is_standby(const struct pg_inst *p)
{
    return p->is_standby;
}

const char *pg_inst_last_exit(const struct pg_inst *p)
{
    return p->last_exit;
}

struct pg_conn *pg_inst_conn(struct pg_inst *p)
{
    return p->conn;
}

int pg_inst_conninfo(const struct pg_inst *p, char *buf, size_t size)
{
    char port[8];
    (void)snprintf(port, sizeof(port), "%u", p->port);
    if (size == 0) {
        return -ENOSPC;
    }
    buf[0] = '\0';
    int rc = pg_conninfo_add(buf, size, "host", p->socket_dir);
    rc = rc != 0 ? rc : pg_conninfo_add(buf, size, "port", port);
    rc = rc != 0 ? rc : pg_conninfo_add(buf, size, "user", p->user);
    rc = rc != 0 ? rc : pg_conninfo_add(buf, size, "dbname", "postgres");
    rc = rc != 0 ? rc : pg_conninfo_add(buf, size, "application_name", "keel");
    rc = rc != 0 ? rc : pg_conninfo_add(buf, size, "gssencmode", "disable");
    /* keel's own writes (roles, a database) must not wait for a synchronous standby that
     * may not exist yet: that would stall the status queries behind them. */
    rc = rc != 0 ? rc : pg_conninfo_add(buf, size, "options", "-c synchronous_commit=local");
    return rc;
}

int pg_inst_read_control(const struct pg_inst *p, struct pg_control *out)
{
    return pg_datadir_read_control(&p->dd, out);
}
