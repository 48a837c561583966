/* SPDX-License-Identifier: MIT */
/* The web server: responses keel makes itself for a location (files under a root, fixed
 * statuses and redirects) and the choice of location for a request. The proxy state
 * machine sends what these functions prepare (HP_STATE_LOCAL). */
#ifndef KEEL_HTTP_HTTP_STATIC_H
#define KEEL_HTTP_HTTP_STATIC_H

#include <stddef.h>

#include "core/conf-t.h"

struct hp_conn;

/* The location of fe for a normalised path: the exact match, else the longest prefix;
 * -1 when none matches. */
int http_location_match(const struct conf_frontend *fe, const char *path, size_t len);

/* Prepare the response to c's current request (its head still at the start of c->in) from a
 * static location: the head goes to c->out, the body is c->file_* or c->mem_body, c->status
 * is set. root_fd is the location's root (-1: 404). path is normalised (http_path.h).
 * Never blocks on the network; opens and stats local files. */
void http_static_respond(struct hp_conn *c, const struct conf_location *loc, int root_fd,
                         const char *path, size_t path_len);

/* Prepare a small response made by keel: status, extra header lines (each ending in CRLF,
 * may be ""), and a text body. */
void http_local_respond(struct hp_conn *c, int status, const char *extra_headers, const char *body,
                        size_t body_len);

/* Prepare the answer of a `return` location. */
void http_return_respond(struct hp_conn *c, const struct conf_location *loc);

#endif
