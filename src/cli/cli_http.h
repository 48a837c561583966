/* SPDX-License-Identifier: MIT */
/* A small blocking HTTP/1.1 GET for the command line tools (keel up, keel status) that ask
 * nodes' admin listeners how they are. Not for the data path. */
#ifndef KEEL_CLI_CLI_HTTP_H
#define KEEL_CLI_CLI_HTTP_H

#include <stddef.h>
#include <sys/socket.h>

#include "core/err.h"

#define CLI_HTTP_MAX_BODY (4u << 20)

/* GET path from addr with Connection: close; the whole exchange within timeout_ms. On
 * success returns 0 with *status and a NUL-terminated malloc'd *body (the caller frees it)
 * of *len bytes. Otherwise -errno or -KEEL_E* with a reason in eb ("connection refused",
 * "timed out", "bad response"). Bodies over CLI_HTTP_MAX_BODY are an error. */
int cli_http_get(const struct sockaddr *addr, socklen_t addrlen, const char *path, int timeout_ms,
                 int *status, char **body, size_t *len, struct errbuf *eb) KEEL_MUST_CHECK;

#endif
