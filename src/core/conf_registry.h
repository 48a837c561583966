/* SPDX-License-Identifier: MIT */
/* The registry of directive tables: one explicit list of every subsystem's struct
 * conf_section (no constructor magic), and the core sections (cluster, global, node). */
#ifndef KEEL_CORE_CONF_REGISTRY_H
#define KEEL_CORE_CONF_REGISTRY_H

#include <stddef.h>

struct conf_section;

/* Every section, in the order the parser searches them and the validators run; *n gets the
 * count. The array and the sections are static and immutable. */
const struct conf_section *const *conf_registry_sections(size_t *n);

#endif
