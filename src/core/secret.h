/* SPDX-License-Identifier: MIT */
/* The cluster secret file (cluster { secret_file PATH; }): the one place that reads it and
 * checks that no one else can. Its users (VRRP auth, database passwords) derive keys from it
 * and wipe their copies (explicit_bzero) once they have. */
#ifndef KEEL_CORE_SECRET_H
#define KEEL_CORE_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

#define SECRET_MAX 4096 /* bytes read; a longer file is used truncated */

/* Whether mode lets the group or others read, write or run the file (mode & 077): such a
 * secret file is refused, as ssh refuses a private key others can read. */
static inline bool secret_mode_is_open(mode_t mode)
{
    return (mode & 077) != 0;
}

/* Say in eb why a secret file of this mode is refused: the path, the mode in octal and the
 * fix ("chmod 600 PATH"). */
void secret_mode_error(struct errbuf *eb, const char *path, mode_t mode);

/* Read the secret file at path into buf (cap bytes, at most SECRET_MAX are used); *len is set
 * to the number of bytes. Refused (-EPERM, reason in eb) when the file is not a regular file
 * or when its mode lets the group or others access it; -EINVAL when it is empty; -errno when
 * it cannot be opened or read. The caller owns buf and must wipe it (explicit_bzero) after
 * use. Blocks on the read: start time, reload and command line only. */
int secret_read(const char *path, uint8_t *buf, size_t cap, size_t *len,
                struct errbuf *eb) KEEL_MUST_CHECK;

#endif
