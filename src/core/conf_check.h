/* SPDX-License-Identifier: MIT */
/* The `check tcp|http [options]` line shared by backends (servers) and apps (processes):
 * one option table and one parser, filling a struct conf_check. */
#ifndef KEEL_CORE_CONF_CHECK_H
#define KEEL_CORE_CONF_CHECK_H

#include <stddef.h>

#include "core/conf.h"

/* Parse a check line into the struct conf_check at check_offset in obj (the enclosing
 * block's object). Reports its own errors; returns 0 or -KEEL_ECONFIG. The caller sets the
 * defaults when its block opens. */
int conf_set_check_at(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                      const struct conf_token *tok, size_t n, size_t check_offset);

#endif
