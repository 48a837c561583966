/* SPDX-License-Identifier: MIT */
/* Responses keel writes itself (errors) and the access log lines of the HTTP proxy. */
#ifndef KEEL_HTTP_HTTP_REPLY_H
#define KEEL_HTTP_HTTP_REPLY_H

#include <stddef.h>

struct hp_conn;
struct buf;

/* Write a complete error response (status, short text body naming detail, Connection:
 * close) into c->out. */
void http_reply_error(struct hp_conn *c, int status, const char *detail);

/* Format a complete response with a text body into out (used by the admin listener and
 * the built-in backend too). Returns 0 or -ENOSPC. */
int http_reply_format(struct buf *out, int status, const char *content_type, const char *body,
                      size_t body_len, const char *served_by, int is_close);

/* The same with extra header lines (each ending in CRLF; "" for none), such as
 * Strict-Transport-Security on a TLS connection. */
int http_reply_format_with(struct buf *out, int status, const char *content_type, const char *body,
                           size_t body_len, const char *served_by, const char *extra, int is_close);

/* Write the access log line of the request that just finished on c, if logging is on. */
void http_reply_access_log(struct hp_conn *c);

#endif
