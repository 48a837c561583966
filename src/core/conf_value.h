/* SPDX-License-Identifier: MIT */
/* Parsing configuration values: durations, sizes, integers, socket addresses, names and
 * host names, with a human-readable reason on error. Used by the directive setters and by
 * anything else that reads such values (command-line options, control commands). */
#ifndef KEEL_CORE_CONF_VALUE_H
#define KEEL_CORE_CONF_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf-t.h"
#include "core/err.h"

/* Value parsers. Pure (no parser state); on error they return -KEEL_ECONFIG and describe the
 * problem in eb ("duration needs a unit (ms, s, m, h)"). */
int conf_parse_uint(const char *s, uint64_t *out, struct errbuf *eb) KEEL_MUST_CHECK;
/* "100ms" "1s" "2m" "1h" -> milliseconds. */
int conf_parse_duration_ms(const char *s, uint64_t *out, struct errbuf *eb) KEEL_MUST_CHECK;
/* "512" "16k" "1m" "1g" (also K M G) -> bytes, k = 1024. */
int conf_parse_size(const char *s, uint64_t *out, struct errbuf *eb) KEEL_MUST_CHECK;

enum conf_addr_flags {
    CONF_ADDR_LISTEN = 1u << 0,    /* host may be empty or "*" (0.0.0.0) */
    CONF_ADDR_NO_RESOLVE = 1u << 1 /* host names are errors */
};
/* "1.2.3.4:80", "[::1]:80", ":80" (listen), "host:80" (getaddrinfo: the first IPv4 address,
 * else the first IPv6 one; blocks). Port 1-65535 required. Fills out->text with the
 * canonical "ip:port" ("[ip]:port" for IPv6). */
int conf_parse_addr(const char *s, unsigned flags, struct conf_addr *out,
                    struct errbuf *eb) KEEL_MUST_CHECK;
/* Whether s ("HOST:PORT") names its host by a name rather than an IP literal or a wildcard. */
bool conf_addr_host_is_name(const char *s);
/* s ("HOST:PORT" or ":PORT") with its host replaced by host (an IP literal, or a name that
 * is resolved unless flags has CONF_ADDR_NO_RESOLVE). */
int conf_addr_with_host(const char *s, const char *host, unsigned flags, struct conf_addr *out,
                        struct errbuf *eb) KEEL_MUST_CHECK;
/* Names of frontends, backends, servers, nodes, the cluster: 1-63 of [A-Za-z0-9_.-]. */
int conf_check_name(const char *s, struct errbuf *eb) KEEL_MUST_CHECK;
/* A host name (RFC 1123 labels) or an IPv4/IPv6 literal, without a port. */
int conf_check_host(const char *s, struct errbuf *eb) KEEL_MUST_CHECK;

/* Format ms as the largest exact unit ("1500ms", "2s", "1h") / bytes as "16k", "1g". */
void conf_format_duration(uint64_t ms, char *buf, size_t size);
void conf_format_size(uint64_t bytes, char *buf, size_t size);

#endif
