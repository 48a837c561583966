/* SPDX-License-Identifier: MIT */
/* A PostgreSQL data directory as keel prepares it: created 0700 for the instance's user,
 * and the files keel generates in it (postgresql.conf over initdb's postgresql.base.conf,
 * pg_hba.conf, pg_ident.conf, keel_standby.conf, standby.signal), plus reading
 * postmaster.pid. Files are written to a temporary name and renamed, owned by the user,
 * mode 0600; small local writes, not fsync'ed (keel writes them again before every start):
 * fine on the loop. Running programs is pg_inst.c's. */
#ifndef KEEL_DB_PG_DATADIR_H
#define KEEL_DB_PG_DATADIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/child-t.h"
#include "core/err.h"
#include "db/pg_text.h"

#define PG_DATADIR_STANDBY_CONF "keel_standby.conf" /* included last by postgresql.conf */

/* What the files say. Everything is borrowed; the strings were checked (pg_inst_new). */
struct pg_datadir {
    const char *path;            /* the data directory, absolute */
    const char *name;            /* the instance: comments, cluster_name */
    const char *user;            /* OS user running PostgreSQL, also the superuser role */
    const struct child_ids *ids; /* owner of what keel creates; NULL or !is_set: keel's */
    const char *keel_user;       /* keel's own OS user: pg_ident.conf maps it to user */
    const char *listen_addr;     /* listen_addresses */
    uint16_t port;
    const char *socket_dir;   /* unix_socket_directories */
    const char *repl_user;    /* pg_hba.conf: replication connections */
    const char *const *cidrs; /* pg_hba.conf: TCP only from these */
    size_t n_cidrs;
    const char *const *settings; /* extra postgresql.conf lines */
    size_t n_settings;
    bool is_nosync; /* fsync = off (tests) */
};

/* The primary a standby streams from (or pg_basebackup / pg_rewind copy from). */
struct pg_primary {
    const char *host; /* an IP address */
    uint16_t port;
    const char *user;     /* the replication role */
    const char *password; /* its password */
    const char *slot;     /* primary_slot_name; NULL or "": none */
};

/* Create the directory (its parent must exist) or accept an empty one; make it 0700 and the
 * user's. Returns 0, -EEXIST (not empty) or -errno, with a reason in eb. */
int pg_datadir_prepare(const struct pg_datadir *d, struct errbuf *eb) KEEL_MUST_CHECK;

/* Whether PG_VERSION is there (initdb or pg_basebackup ran). */
bool pg_datadir_is_initialized(const struct pg_datadir *d);

/* Whether standby.signal is there: PostgreSQL starts as a standby (and removes the file when
 * promoted). postmaster.pid cannot tell: a hot standby also says "ready" there. */
bool pg_datadir_is_standby(const struct pg_datadir *d);

/* Crash recovery in single-user mode refuses standby.signal ("standby mode is not supported
 * by single-user servers"): remove recovery.signal, and write (is_standby) or remove
 * standby.signal. Returns 0 or -errno. */
int pg_datadir_set_signals(const struct pg_datadir *d, bool is_standby) KEEL_MUST_CHECK;

/* After initdb: rename its postgresql.conf to postgresql.base.conf, which keel's includes
 * (initdb chose memory and locale settings there). Returns 0 or -errno with eb. */
int pg_datadir_adopt_initdb_conf(const struct pg_datadir *d, struct errbuf *eb) KEEL_MUST_CHECK;

/* Write postgresql.conf, pg_hba.conf and pg_ident.conf. Returns 0 or -errno with eb. */
int pg_datadir_write_config(const struct pg_datadir *d, struct errbuf *eb) KEEL_MUST_CHECK;

/* Make the instance a standby of pr at its next start: keel_standby.conf (primary_conninfo
 * with app_name as application_name and the password: the file is 0600; primary_slot_name)
 * and standby.signal. Returns 0 or -errno with eb. */
int pg_datadir_write_standby(const struct pg_datadir *d, const struct pg_primary *pr,
                             const char *app_name, struct errbuf *eb) KEEL_MUST_CHECK;

/* Empty keel_standby.conf (a comment only), if absent or if is_promoted (after a promotion:
 * PostgreSQL removed standby.signal itself). It always exists, so that PostgreSQL does not
 * log its absence at every start. Returns 0 or -errno. */
int pg_datadir_clear_standby(const struct pg_datadir *d, bool is_promoted) KEEL_MUST_CHECK;

/* Read and parse postmaster.pid. Returns 0, -errno (absent: -ENOENT) or -EINVAL. */
int pg_datadir_read_pidfile(const struct pg_datadir *d, struct pg_pidfile *pf) KEEL_MUST_CHECK;

/* What pg_control says: the server's state and where its last checkpoint record begins. */
enum pg_control_state {
    PG_CONTROL_STARTUP = 0,
    PG_CONTROL_SHUT_DOWN,             /* a clean shutdown of a primary */
    PG_CONTROL_SHUT_DOWN_IN_RECOVERY, /* a clean shutdown of a standby */
    PG_CONTROL_SHUTTING_DOWN,
    PG_CONTROL_IN_CRASH_RECOVERY,
    PG_CONTROL_IN_ARCHIVE_RECOVERY,
    PG_CONTROL_IN_PRODUCTION /* running, or crashed */
};

struct pg_control {
    enum pg_control_state state;
    uint64_t checkpoint_lsn; /* after a clean shutdown: the shutdown checkpoint, the last
                              * record a standby must receive to have every write */
};

/* Read global/pg_control (PostgreSQL 15's layout). Returns 0, -errno, or -EPROTO (another
 * version, or a short file). */
int pg_datadir_read_control(const struct pg_datadir *d, struct pg_control *out) KEEL_MUST_CHECK;

/* The conninfo of pr into buf: host, port, user, application_name=app_name, dbname (if not
 * NULL), the password if with_password, no GSSAPI, a 5 s connect timeout. Returns 0 or
 * -ENOSPC. */
int pg_primary_conninfo(const struct pg_primary *pr, const char *app_name, const char *dbname,
                        bool with_password, char *buf, size_t size) KEEL_MUST_CHECK;

/* The texts of the generated files (exposed for tests), into out (size bytes). Return 0 or
 * -E2BIG. */
int pg_datadir_postgresql_conf(const struct pg_datadir *d, char *out, size_t size) KEEL_MUST_CHECK;
int pg_datadir_hba_conf(const struct pg_datadir *d, char *out, size_t size) KEEL_MUST_CHECK;
int pg_datadir_ident_conf(const struct pg_datadir *d, char *out, size_t size) KEEL_MUST_CHECK;

#endif
