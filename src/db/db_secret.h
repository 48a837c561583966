/* SPDX-License-Identifier: MIT */
/* Passwords derived from the cluster secret, so that every node agrees on them without a
 * second file to distribute: the first 16 bytes, in hex, of HMAC-SHA256(secret, label).
 * The replication role's label is "keel-db-replication-v1"; the application role of
 * database NAME has "keel-db-app-v1:NAME" (`keel db password` prints it). */
#ifndef KEEL_DB_DB_SECRET_H
#define KEEL_DB_DB_SECRET_H

#include <stddef.h>

#include "core/err.h"

#define DB_PASSWORD_SIZE 33 /* 32 hex digits and a NUL */

/* Read secret_file and derive the password for label into out (DB_PASSWORD_SIZE bytes).
 * Returns 0, or -EINVAL with a reason in eb (the file cannot be read or is empty). Blocks
 * on the read: start time and command line only. */
int db_secret_password(const char *secret_file, const char *label, char out[DB_PASSWORD_SIZE],
                       struct errbuf *eb) KEEL_MUST_CHECK;

/* The same for the application role of database name. */
int db_secret_app_password(const char *secret_file, const char *name, char out[DB_PASSWORD_SIZE],
                           struct errbuf *eb) KEEL_MUST_CHECK;

#endif
