/* SPDX-License-Identifier: MIT */
/* The admin listener: a route of the embedded HTTP server (http/http_server.h) on the
 * control thread's loop answering GET requests (/metrics, /status, ...) through a handler.
 * One request per connection. The db agent serves its endpoints (db/db_api.c) with it. */
#ifndef KEEL_MONITOR_ADMIN_H
#define KEEL_MONITOR_ADMIN_H

#include <sys/socket.h>

#include "core/err.h"
#include "core/ev.h"
#include "monitor/metrics.h"

/* Fill out with the body for path (query: what followed '?', "" when nothing did); set
 * *content_type; return the HTTP status. GET, HEAD and OPTIONS (what HAProxy's httpchk
 * sends by default) reach the handler; HEAD gets no body. */
typedef int (*admin_handler_fn)(const char *path, const char *query, struct metrics_out *out,
                                const char **content_type, void *data);

struct admin;

/* Listen on sa and serve with handler. NULL with eb filled on failure. */
struct admin *admin_start(struct ev_loop *loop, const struct sockaddr *sa, socklen_t salen,
                          admin_handler_fn handler, void *data, struct errbuf *eb);
void admin_stop(struct admin *admin);

#endif
