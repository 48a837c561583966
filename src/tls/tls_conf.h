/* SPDX-License-Identifier: MIT */
/* The TLS directives of frontends and sites (certificate, tls_protocols, tls_ciphers,
 * tls_ciphersuites, tls_groups, timeout_handshake) and the checks of their certificates. */
#ifndef KEEL_TLS_TLS_CONF_H
#define KEEL_TLS_TLS_CONF_H

struct conf_section;

/* Listed by core/conf_registry.c. */
extern const struct conf_section tls_conf_section;

#endif
