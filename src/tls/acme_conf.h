/* SPDX-License-Identifier: MIT */
/* The directives of managed certificates (acme, acme_names, acme_lifetime) in frontends and
 * sites, and their checks: names that can be put in a certificate, a tls bind to serve it on,
 * and the cluster's state_dir to keep it in. The certificates themselves are cert_mgr.c's. */
#ifndef KEEL_TLS_ACME_CONF_H
#define KEEL_TLS_ACME_CONF_H

struct conf_section;

/* Listed by core/conf_registry.c. */
extern const struct conf_section acme_conf_section;

#endif
