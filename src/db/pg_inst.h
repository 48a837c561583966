/* SPDX-License-Identifier: MIT */
/* One PostgreSQL instance on this node, run by keel the way Patroni runs one: bootstrap as a
 * primary (initdb) or as a replica (pg_basebackup), configuration, start, stop, promotion,
 * rejoining a new primary (pg_rewind), and watching the postmaster. Every PostgreSQL program
 * runs as the instance's OS user (PostgreSQL refuses root), as a child process watched by
 * the event loop (pg_child.h); SQL goes through pg_query.h. Nothing here blocks the loop,
 * except pg_inst_new (user lookups: boot time) and pg_inst_free (reaps a killed child: shut-
 * down); config files are written with plain small writes before a start. The election and
 * the decisions (who is primary, when to promote, the synchronous standby list) belong to
 * the database agent; docs/internals/pg_inst.md explains the choices made here. */
#ifndef KEEL_DB_PG_INST_H
#define KEEL_DB_PG_INST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/ev.h"
#include "db/pg_datadir.h"
#include "db/pg_query.h"

#define PG_INST_BINDIR "/usr/lib/postgresql/15/bin" /* Debian's PostgreSQL 15 */
#define PG_INST_SOCKET_DIR "/var/run/postgresql"    /* Debian's, owned by postgres */

/* What an instance is. Strings and arrays are copied by pg_inst_new. */
struct pg_inst_conf {
    const char *name;        /* "db1": logs ("pg db1"), cluster_name, default app_name */
    const char *bindir;      /* NULL: PG_INST_BINDIR */
    const char *datadir;     /* absolute; created 0700, owned by user */
    const char *socket_dir;  /* NULL: PG_INST_SOCKET_DIR; not inside datadir (pg_rewind) */
    const char *user;        /* OS user running PostgreSQL, also the superuser role; NULL:
                              * "postgres" */
    const char *listen_addr; /* IP address(es) for listen_addresses, "127.0.0.2" */
    uint16_t port;
    const char *repl_user;            /* role for streaming and pg_rewind; NULL: "replicator" */
    const char *repl_password;        /* its password (stored as a SCRAM verifier) */
    const char *const *allowed_cidrs; /* pg_hba.conf: TCP access (replication and normal)
                                       * only from these, with scram-sha-256 */
    size_t n_cidrs;
    const char *app_name;        /* application_name when streaming: the name in
                                  * synchronous_standby_names; NULL: name */
    const char *const *settings; /* extra postgresql.conf lines, "work_mem = '8MB'" */
    size_t n_settings;
    uint32_t start_timeout_ms; /* a start fails after this (the server keeps starting);
                                * 0: 60 s */
    uint32_t stop_timeout_ms;  /* SIGKILL after this; 0: 60 s */
    uint32_t tool_timeout_ms;  /* initdb, pg_basebackup, pg_rewind are killed after this;
                                * 0: never */
    bool is_nosync;            /* tests only: initdb/pg_basebackup/pg_rewind skip fsync and
                                * fsync = off (a machine crash may lose data) */
    bool is_sockdir_checked;   /* socket_dir is keel's (pg_sockdir.h), checked before every
                                * start and connection: 0700, user's, not a symlink */
};

/* The processes of the instance. */
enum pg_inst_state {
    PG_INST_STOPPED = 0, /* nothing runs */
    PG_INST_INITDB,      /* initdb creates the data directory */
    PG_INST_BASEBACKUP,  /* pg_basebackup copies the primary into the data directory */
    PG_INST_REWIND,      /* pg_rewind makes the data directory follow a new primary */
    PG_INST_STARTING,    /* the postmaster runs, not yet accepting connections */
    PG_INST_RUNNING,     /* the postmaster accepts connections (primary or hot standby) */
    PG_INST_STOPPING,    /* a shutdown signal was sent to the postmaster */
    PG_INST_RECOVERY     /* postgres --single runs crash recovery, then a clean shutdown */
};

enum pg_stop_mode {
    PG_STOP_FAST = 0, /* SIGINT: roll back sessions, checkpoint, exit (a clean shutdown) */
    PG_STOP_IMMEDIATE /* SIGQUIT: exit at once; the next start runs crash recovery */
};

/* The postmaster exited (wstatus as waitpid gives it): is_requested when keel had asked it
 * to stop. Called after the operation waiting for the exit (if any) progressed. */
typedef void (*pg_inst_exit_fn)(void *data, int wstatus, bool is_requested);

struct pg_inst;

/* Check conf, resolve the ids of its user and copy it. Returns 0 with *out, -EINVAL with a
 * reason in eb (a bad value; keel not root and not running as user), or -ENOMEM. Blocks on
 * NSS lookups: boot or reload time only. Starts nothing. */
int pg_inst_new(struct ev_loop *loop, const struct pg_inst_conf *conf, struct pg_inst **out,
                struct errbuf *eb) KEEL_MUST_CHECK;

/* Stop watching: the running operation's callback gets -ECANCELED from within this call, a
 * running child is SIGKILLed and reaped (blocks up to a second: shutdown only; stop the
 * instance first for a clean shutdown). NULL allowed. */
void pg_inst_free(struct pg_inst *p);

/* Called on every exit of the postmaster. */
void pg_inst_set_on_exit(struct pg_inst *p, pg_inst_exit_fn on_exit, void *data);

/* ------------------------------------------------------------------------------------------
 * Operations. One at a time: each returns 0 and calls cb exactly once, later, from the loop
 * (never from within the call), with 0 or a negative code and a reason; or returns a
 * negative code at once (then cb is never called): -EBUSY when another operation runs.
 * pg_inst_stop is accepted at any time: it cancels the running operation (-ECANCELED).
 * Failures of the programs are -EIO with their exit in the reason (their output is in the
 * log); a start that does not get ready in time is -KEEL_ETIMEDOUT.
 * ------------------------------------------------------------------------------------------ */

/* Bootstrap a primary: the data directory must be absent or empty (-EEXIST otherwise); its
 * parent must exist. Runs initdb (SCRAM for TCP, peer on the socket, UTF8, C.UTF-8),
 * writes the configuration, starts the server, creates repl_user (REPLICATION, with the
 * execute rights pg_rewind needs) with its password. */
int pg_inst_init_primary(struct pg_inst *p, pg_done_fn cb, void *data) KEEL_MUST_CHECK;

/* Bootstrap a replica of the primary at host:port (an IP address): the data directory as
 * for init_primary; pg_basebackup (fast checkpoint, WAL streamed, through slot if not NULL:
 * the slot must exist, see pg_slot_create), then the standby settings (standby.signal,
 * primary_conninfo with application_name, primary_slot_name) and a start. */
int pg_inst_init_replica(struct pg_inst *p, const char *host, uint16_t port, const char *slot,
                         pg_done_fn cb, void *data) KEEL_MUST_CHECK;

/* Write the configuration and start the postmaster; done when it accepts connections
 * (already running: done at once). Never changes the role: a standby (standby.signal)
 * starts as a standby of the primary it followed last. -ENOENT if never initialised. */
int pg_inst_start(struct pg_inst *p, pg_done_fn cb, void *data) KEEL_MUST_CHECK;

/* Stop: SIGINT (fast) or SIGQUIT (immediate) to the postmaster, SIGKILL after
 * stop_timeout_ms; a running tool is SIGKILLed. Done when nothing runs. While a stop is
 * already under way, returns -EALREADY after escalating it to immediate if asked. */
int pg_inst_stop(struct pg_inst *p, enum pg_stop_mode mode, pg_done_fn cb,
                 void *data) KEEL_MUST_CHECK;

/* Promote a running standby: SELECT pg_promote(wait => true), then a CHECKPOINT (so that the
 * new timeline is in pg_control, which pg_rewind reads on the other nodes). -EINVAL in cb
 * if the server is not a standby. */
int pg_inst_promote(struct pg_inst *p, pg_done_fn cb, void *data) KEEL_MUST_CHECK;

/* Make this instance a standby of the (new) primary at host:port: fast stop if running;
 * then, by pg_control's state: shut down cleanly: pg_rewind from the primary (a no-op when
 * the timelines did not diverge); crashed as a primary (in production, in crash recovery,
 * shutting down): crash recovery first (postgres --single, without the signal files), then
 * pg_rewind; crashed as a standby (in archive recovery, or rewound but not yet started):
 * no rewind (the standby's start finishes its recovery; if its history diverged, the agent
 * sees it not streaming and follows again after a clean stop). Then the standby settings,
 * start.
 * slot as for init_replica. A failed pg_rewind (WAL gone) leaves the instance stopped: the
 * agent may then re-create it with init_replica on an empty data directory. */
int pg_inst_follow(struct pg_inst *p, const char *host, uint16_t port, const char *slot,
                   pg_done_fn cb, void *data) KEEL_MUST_CHECK;

/* Make this instance read-only without a primary to follow (the fence when the leader key
 * cannot be renewed): immediate stop if running (every session ends at once, and no wait
 * for standbys that may be unreachable), standby.signal with no primary_conninfo, start
 * (after crash recovery).
 * The server then answers reads and refuses every write until pg_inst_promote or
 * pg_inst_follow. */
int pg_inst_demote(struct pg_inst *p, pg_done_fn cb, void *data) KEEL_MUST_CHECK;

/* Make a running standby stop streaming, without a restart: keel_standby.conf without
 * primary_conninfo, then pg_reload_conf() (PostgreSQL 15 ends its WAL receiver when the
 * setting changes, and starts none while it is empty). A replica does this when the leader
 * key lapses, so that it no longer confirms the old primary's commits (docs/internals/
 * db_elect.md). -EINVAL if the server is not a running standby; pg_inst_follow undoes it. */
int pg_inst_unfollow(struct pg_inst *p, pg_done_fn cb, void *data) KEEL_MUST_CHECK;

/* ------------------------------------------------------------------------------------------
 * Observation
 * ------------------------------------------------------------------------------------------ */

enum pg_inst_state pg_inst_state(const struct pg_inst *p);
const char *pg_inst_state_name(enum pg_inst_state state);
/* The postmaster's pid, 0 if none. */
pid_t pg_inst_pid(const struct pg_inst *p);
/* Whether the server is a standby (standby.signal at its start; a promotion clears it). */
bool pg_inst_is_standby(const struct pg_inst *p);
/* How the postmaster exited last ("killed by signal 9 (SIGKILL)"), "" if never. */
const char *pg_inst_last_exit(const struct pg_inst *p);

/* A superuser connection over the local socket (peer authentication, keel's OS user mapped
 * to the instance's user in pg_ident.conf), for status queries and orders (pg_status.h).
 * Its commits are synchronous_commit = local: they never wait for a standby.
 * Owned by p; valid until pg_inst_free. */
struct pg_conn *pg_inst_conn(struct pg_inst *p);

/* The data directory's pg_control (pg_datadir_read_control): after a clean stop, where the
 * shutdown checkpoint is. Returns 0, -errno or -EPROTO. */
int pg_inst_read_control(const struct pg_inst *p, struct pg_control *out) KEEL_MUST_CHECK;
/* That connection's conninfo, into buf. Returns 0 or -ENOSPC. */
int pg_inst_conninfo(const struct pg_inst *p, char *buf, size_t size) KEEL_MUST_CHECK;

#endif
