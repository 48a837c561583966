/* SPDX-License-Identifier: MIT */
/* TLS to servers in the configuration: the `tls` server option and the tls_ca_file,
 * tls_name and tls_verify options of a server line and directives of a backend, and their
 * checks after parsing (lb_conf.c lists them in its tables and calls the validation). */
#ifndef KEEL_LB_LB_CONF_TLS_H
#define KEEL_LB_LB_CONF_TLS_H

#include <stddef.h>

#include "core/conf.h"

/* Setters for the server options and the backend directives. Each writes into the struct
 * conf_server_tls at d->offset in obj (CONF_FIELD(struct conf_server, tls) for an option,
 * CONF_FIELD(struct conf_backend, tls) for a directive). */
int lb_conf_set_tls(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                    const struct conf_token *tok, size_t n) KEEL_MUST_CHECK;
int lb_conf_set_tls_ca_file(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                            const struct conf_token *tok, size_t n) KEEL_MUST_CHECK;
int lb_conf_set_tls_name(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                         const struct conf_token *tok, size_t n) KEEL_MUST_CHECK;
int lb_conf_set_tls_verify(struct conf_parser *cp, const struct conf_directive *d, void *obj,
                           const struct conf_token *tok, size_t n) KEEL_MUST_CHECK;

/* After parsing (server addresses resolved): complete every tls server's settings from its
 * backend and the defaults, and report tls_* options without `tls` and CA files that cannot
 * be used (read unless the load says CONF_LOAD_NO_RESOLVE). */
void lb_conf_tls_validate(struct conf_parser *cp, struct conf *conf);

/* Whether name is a valid tls_name: a DNS name (letters, digits, '-', dot-separated labels
 * of 1-63 bytes, at most 253 bytes, a trailing dot allowed) or an IPv4 or IPv6 literal. */
bool lb_conf_tls_name_ok(const char *name);

#endif
