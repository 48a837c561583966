/* SPDX-License-Identifier: MIT */
/* The node view of a cluster configuration (core/conf_node.c). */
#ifndef KEEL_CORE_CONF_NODE_H
#define KEEL_CORE_CONF_NODE_H

#include "core/conf.h"

/* Narrow conf to what node_name runs: frontends and sites of its roles, the backends they
 * use, listen addresses without a host bound to the node's address, X-Served-By for sites.
 * node_name NULL (or a file without nodes): everything, on the addresses as written. Either
 * way, no two listeners may overlap. flags: CONF_ADDR_NO_RESOLVE or 0. Returns 0, or
 * -KEEL_ECONFIG with the reason in eb (conf is then only fit for conf_free). */
int conf_apply_node(struct conf *conf, const char *node_name, unsigned flags,
                    struct errbuf *eb) KEEL_MUST_CHECK;

/* conf_load_file + conf_apply_node: the view of one node (NULL: the whole file). Returns 0
 * with *out (conf_free it), or -KEEL_ECONFIG / -errno with the first error in eb (callers
 * that must show every error of a bad file load it with conf_load_file first). */
int conf_load_node(const char *path, const char *node, struct conf **out,
                   struct errbuf *eb) KEEL_MUST_CHECK;

/* "lb web app db" for a bit set of CONF_ROLE_*. */
void conf_roles_text(uint32_t roles, char *out, size_t size);

#endif
