/* SPDX-License-Identifier: MIT */
/* The handler of responses keel makes itself: a static file, a `return`, a redirect, a
 * short text (404 when no location matches). The content comes from http_static.c, which
 * fills the exchange's struct http_local_resp; this file sends it (head, then a memory
 * body or a file through the transport's sendfile) in HP_STATE_LOCAL. */
#ifndef KEEL_HTTP_HTTP_LOCAL_H
#define KEEL_HTTP_HTTP_LOCAL_H

#include <stddef.h>

#include "core/conf-t.h"

struct hp_conn;
struct hp_handler;

extern const struct hp_handler hp_local_handler;

/* Answer c's request (head parsed, still at the start of c->in) from location loc, the
 * index-th of the frontend, for the normalised path. Enters HP_STATE_LOCAL. */
void hp_local_start_location(struct hp_conn *c, const struct conf_location *loc, int index,
                             const char *path, size_t path_len);

/* Answer c's request, which came on a plain bind of a block with redirect_https, with a
 * redirect to the same host, path and query over https (http_redirect.h: 301 or 308), or
 * 400 when its Host is missing or not a host name. Enters HP_STATE_LOCAL. */
void hp_local_start_redirect_https(struct hp_conn *c);

/* Answer c's request with status and a one-line text naming why. Enters HP_STATE_LOCAL. */
void hp_local_start_text(struct hp_conn *c, int status, const char *why);

/* Answer c's request with status and exactly body[0, len) as text/plain (copied). Enters
 * HP_STATE_LOCAL. */
void hp_local_start_body(struct hp_conn *c, int status, const char *body, size_t len);

#endif
