/* SPDX-License-Identifier: MIT */
/* The web server's handlers: responses keel makes itself for a location (files under a
 * root, fixed statuses and redirects) and the choice of location for a request. They read
 * the request through struct http_local_req and fill a struct http_local_resp, which the
 * connection sends (http_local.c); they never touch the connection. */
#ifndef KEEL_HTTP_HTTP_STATIC_H
#define KEEL_HTTP_HTTP_STATIC_H

#include <stddef.h>

#include "core/conf-t.h"
#include "http/http_local-t.h"

/* The location of fe for a normalised path: the exact match, else the longest prefix;
 * -1 when none matches. */
int http_location_match(const struct conf_frontend *fe, const char *path, size_t len);

/* Prepare the response to request q from a static location: the head goes to r->out, the
 * body is r->file_* or r->mem_body, r->status is set. r->file_fd must be -1 and r->mem_body
 * NULL on entry. root_fd is the location's root (-1: 404). path is normalised
 * (http_path.h). Never blocks on the network; opens and stats local files. */
void http_static_respond(struct http_local_resp *r, const struct http_local_req *q,
                         const struct conf_location *loc, int root_fd, const char *path,
                         size_t path_len);

/* Prepare a small response made by keel: status, extra header lines (each ending in CRLF,
 * may be ""), and a text body (none for HEAD). */
void http_local_respond(struct http_local_resp *r, const struct http_local_req *q, int status,
                        const char *extra_headers, const char *body, size_t body_len);

/* Prepare the answer of a `return` location (a fixed status and text, or a redirect). */
void http_return_respond(struct http_local_resp *r, const struct http_local_req *q,
                         const struct conf_location *loc);

#endif
