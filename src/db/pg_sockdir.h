/* SPDX-License-Identifier: MIT */
/* PostgreSQL's Unix socket directory as keel keeps it: /run/keel/pg-HASH (HASH names the data
 * directory), 0700, owned by the instance's user, in a parent that only keel's user (root)
 * can write. keel sends passwords over that socket and believes what it answers, so the
 * directory is checked (opened with O_NOFOLLOW, then fstat: a directory, the owner, the
 * mode) before every start of PostgreSQL and every connection; a check that fails refuses,
 * with the reason. Small local file-system calls: fine on the loop. Not the data directory
 * (pg_datadir.h). docs/internals/pg_inst.md explains the choice. */
#ifndef KEEL_DB_PG_SOCKDIR_H
#define KEEL_DB_PG_SOCKDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/err.h"

#define PG_SOCKDIR_PARENT "/run/keel" /* root's, 0755, on tmpfs: emptied by a reboot */
/* "/run/keel/pg-" + 16 hex digits: 29 bytes, far below the 107 of a socket path (PostgreSQL
 * adds "/.s.PGSQL.NNNNN"), whatever the length of the data directory. */
#define PG_SOCKDIR_PATH_MAX 64

/* The socket directory of the instance whose data directory is data_dir, into out: the
 * parent, "/pg-", and the 64-bit FNV-1a hash of data_dir in hex. Returns 0 or -ENOSPC. */
int pg_sockdir_path(const char *parent, const char *data_dir, char *out,
                    size_t size) KEEL_MUST_CHECK;

/* Check path: its parent a directory (not a symlink) owned by keel's effective user or root
 * and writable by nobody else; path itself a directory (not a symlink), owned by uid, mode
 * exactly 0700. Returns 0, or a negative code with the reason in eb: -ELOOP (a symlink),
 * -ENOTDIR, -EPERM (owner or mode), -errno (cannot open or stat). */
int pg_sockdir_check(const char *path, uid_t uid, struct errbuf *eb) KEEL_MUST_CHECK;

/* Prepare path for the instance's user (uid, gid): create the parent (0755) if absent; create
 * path 0700 for the user if absent; if present, check it (pg_sockdir_check: a hostile or
 * wrong directory is refused, never repaired) and remove what an earlier run left there (the
 * socket and lock files of a postmaster that no longer runs; a postmaster still running
 * keeps its files). *cleaned (if not NULL) tells whether stale files were removed. Returns 0
 * or a negative code with the reason in eb. Blocks on small file-system calls only. */
int pg_sockdir_prepare(const char *path, uid_t uid, gid_t gid, bool *cleaned,
                       struct errbuf *eb) KEEL_MUST_CHECK;

/* At stop: if path passes the check and no live postmaster uses it, remove its stale files
 * and the directory. Returns 0, -EBUSY (a postmaster runs: left alone) or a negative code
 * with the reason in eb. */
int pg_sockdir_remove(const char *path, uid_t uid, struct errbuf *eb) KEEL_MUST_CHECK;

#endif
